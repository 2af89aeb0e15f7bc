"""Shared pytest fixtures.

`engine` connects to the Docker engine; when none answers the tests that use it
fail (they are never skipped silently): run `bash scripts/ensure-engine.sh`.
`fixture_images` builds (or reuses) the images under `fixtures/` once per session;
`arm64_images` the linux/arm64 builds of a few of them, under emulation.
The Podman tier (marked `podman`, fixtures in tests/podman_kit.py) is collected only
when the `-m` expression names it: `pytest -m podman` runs it, a plain `pytest` (the
dockerd suite) leaves it out, so scripts/test runs it once, as its own invocation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from slimmer.engine import Engine
from slimmer.errors import EngineError
from slimmer.image.cache import ENV
from tests.faultkit import compile_faultapp
from tests.fixtures_build import build_fixtures, build_foreign_fixtures
from tests.podman_kit import podman, podman_fixtures  # noqa: F401 (fixtures)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the `podman` tests out unless the `-m` expression names them."""
    if "podman" in (config.option.markexpr or ""):
        return
    podman_tests = [item for item in items if item.get_closest_marker("podman")]
    if podman_tests:
        config.hook.pytest_deselected(items=podman_tests)
        items[:] = [item for item in items if not item.get_closest_marker("podman")]


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    try:
        eng = Engine.connect()
    except EngineError as exc:
        pytest.fail(f"{exc} (run `bash scripts/ensure-engine.sh`)", pytrace=False)
    with eng:
        yield eng


@pytest.fixture(scope="session")
def fixture_images(engine: Engine) -> dict[str, str]:
    """Fixture name -> image tag (built on first use, then cached on the engine)."""
    return build_fixtures(engine)


@pytest.fixture(scope="session")
def arm64_images(engine: Engine) -> dict[str, str]:
    """Fixture name -> tag of its linux/arm64 build (`FOREIGN_FIXTURES`), built under
    emulation on first use, then cached. Fails (never skips) when the engine cannot
    run linux/arm64: run `bash scripts/ensure-qemu.sh`."""
    from slimmer.pipeline.emulation import can_emulate, how_to_enable

    if not can_emulate(engine, "linux", "arm64"):
        pytest.fail(
            "the engine cannot run linux/arm64 containers under emulation: "
            f"run `bash scripts/ensure-qemu.sh`, or {how_to_enable('linux', 'arm64')}",
            pytrace=False,
        )
    return build_foreign_fixtures(engine, "arm64")


@pytest.fixture(scope="session", autouse=True)
def read_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The slim runs of one session share a read cache (SLIMMER_CACHE_DIR): the same
    fixture image is slimmed several times, and reading it is the slowest phase."""
    path = tmp_path_factory.mktemp("read-cache")
    old = os.environ.get(ENV)
    os.environ[ENV] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = old


@pytest.fixture(scope="session")
def faultapp(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The fault matrix's program (tests/faultkit.py), compiled once per session."""
    return compile_faultapp(tmp_path_factory.mktemp("faultapp"))
