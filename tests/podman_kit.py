"""The Podman tier (`pytest -m podman`): Podman's Docker-compatible API on a socket of
the test session's own, and the fixture images in Podman's store.

`podman` starts `podman system service` on `<session tmp>/podman/podman.sock` through
`scripts/ensure-podman.sh` (which installs podman and writes
/etc/containers/containers.conf when missing), yields a `Podman` whose `host` is the
DOCKER_HOST the installed `slim` is given, and stops the service at the end.

`podman_fixtures` copies the fixture images the tier uses from dockerd into Podman's
store through the two engines' APIs only: dockerd's `GET /images/{name}/get` (save) into
Podman's `POST /images/load`. Each is asked for by its hashed tag
(`slimmer-fixture/NAME:<input hash>`, tests/fixtures_build.py), so an image already in
Podman's store from an earlier run is reused, and a changed fixture is copied anew.
Podman stores a loaded short name as `localhost/slimmer-fixture/NAME:<hash>` and finds
it by the short name, as `podman run` does.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from slimmer.engine import Engine
from tests.fixtures_build import build_fixtures
from tests.private_engine import connect

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "ensure-podman.sh"
# The fixtures the Podman tier slims: a serving app, a batch job, a static binary (the
# distroless migration onto the smallest base).
PODMAN_FIXTURES = ("c-static", "py-batch", "py-http")


@dataclass(frozen=True)
class Podman:
    """Podman's API served for this session: `host` for DOCKER_HOST, `engine` for the
    test's own looks at Podman's store, and what the store held before the tier ran."""

    host: str
    engine: Engine
    containers_before: frozenset[str]
    images_before: frozenset[str]


def start_service(where: Path) -> str:
    """Start `podman system service` on `where/podman.sock`; its DOCKER_HOST value."""
    res = subprocess.run(
        ["bash", str(SCRIPT), "start", str(where)], capture_output=True, text=True, timeout=600
    )
    if res.returncode != 0:
        pytest.fail(f"starting podman's API service: {res.stderr.strip()}", pytrace=False)
    return f"unix://{res.stdout.strip()}"


def stop_service(where: Path) -> None:
    subprocess.run(["bash", str(SCRIPT), "stop", str(where)], check=True, timeout=60)


def container_ids(engine: Engine) -> frozenset[str]:
    """Every container on the engine (`podman ps -a`), asked through its API."""
    return frozenset(str(c["Id"]) for c in engine._api.containers(all=True))


def image_ids(engine: Engine) -> frozenset[str]:
    """Every image in the store, intermediate ones too (`podman images -a`)."""
    return frozenset(str(i["Id"]) for i in engine._api.images(all=True))


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    where = tmp_path_factory.mktemp("podman")
    host = start_service(where)
    try:
        engine = connect(host)
        with engine:
            yield Podman(host, engine, container_ids(engine), image_ids(engine))
    finally:
        stop_service(where)


def copy_images(source: Engine, dest: Engine, tags: Sequence[str]) -> list[str]:
    """Copy each of `tags` that `dest` lacks from `source`, by save and load through the
    engines' APIs; the tags copied (the others were there already)."""
    copied = []
    for tag in tags:
        if dest.image_exists(tag):
            continue
        with tempfile.TemporaryFile(prefix="slimmer-podman-copy-") as archive:
            source.save_image(tag, archive)
            archive.seek(0)
            dest.load_image(archive)
        copied.append(tag)
    return copied


@pytest.fixture(scope="session")
def podman_fixtures(engine: Engine, podman: Podman) -> dict[str, str]:
    """Fixture name -> hashed tag, for PODMAN_FIXTURES, present in Podman's store."""
    tags = build_fixtures(engine, PODMAN_FIXTURES)
    copy_images(engine, podman.engine, list(tags.values()))
    return tags
