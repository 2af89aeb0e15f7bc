"""`slim profile` as a user runs it: the preflight and the resource limits of `slim IMAGE`.

The images are rows of the fault matrix (tests/test_faults_engine.py): its static
`faultapp` in hand-written `docker save` archives, here with one more Env entry so
that their image IDs are this module's own. Another run of the fault matrix on
the same engine then neither removes them nor sees what these tests leave.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from slimmer.engine import Engine
from tests.faultkit import (
    SHARED_IMAGES,
    error_line,
    image_archive,
    left_by,
    leftover_ids,
    remove_images,
)
from tests.installed import run_slim, slim_exe

pytestmark = pytest.mark.e2e

ROWS = ("noentry", "s390x", "hog")  # fault matrix rows whose images these tests run


@pytest.fixture(scope="module")
def images(engine: Engine, faultapp: bytes) -> Iterator[dict[str, str]]:
    """Fault matrix row -> a tag of its image, loaded for this module, removed after."""
    tags = {}
    for name in ROWS:
        entrypoint, extra, arch = SHARED_IMAGES[name]
        tag = f"slimmer-profile-test/{name}:latest"
        config = {"Entrypoint": entrypoint, **extra, "Env": ["SLIMMER_TEST=profile"]}
        engine.load_image(image_archive(tag, {"app": (faultapp, 0o755)}, config, arch))
        tags[name] = tag
    ids = [engine.inspect_image(t).id for t in tags.values()]
    try:
        yield tags
    finally:
        remove_images(engine, ids)


REFUSED = [
    ("noentry", ("noentry:latest: its entrypoint program '/app/missing' does not exist",)),
    ("s390x", ("built for linux/s390x", "the engine runs linux/amd64")),
]


@pytest.mark.engine
@pytest.mark.parametrize("row,words", REFUSED, ids=[r[0] for r in REFUSED])
def test_an_image_that_cannot_run_is_refused_before_profiling(
    row: str, words: tuple[str, ...], images: dict[str, str], engine: Engine
) -> None:
    tag = images[row]
    before = engine.inspect_image(tag).id
    existing = leftover_ids(engine)
    slim_exe()  # built (once per session) before the run
    res = run_slim("profile", tag, timeout=120)
    assert res.returncode == 6, res.stderr
    line = error_line(res.stderr)
    assert all(w in line for w in words), line
    assert "slim: bundling" not in res.stderr  # refused before the tracer was built
    assert res.stdout == ""
    assert engine.inspect_image(tag).id == before
    assert not left_by(engine, {before}, existing)


@pytest.mark.engine
def test_an_app_over_the_memory_limit_is_a_clear_error(
    images: dict[str, str], engine: Engine
) -> None:
    tag = images["hog"]
    before = engine.inspect_image(tag).id
    existing = leftover_ids(engine)
    res = run_slim("profile", "--memory", "64MiB", "--cpus", "1", tag, timeout=120)
    assert res.returncode == 1, res.stderr
    line = error_line(res.stderr)
    assert "memory limit" in line and "--memory 64 MiB" in line, line
    assert not left_by(engine, {before}, existing)


def test_profile_takes_the_limits_of_slim() -> None:
    res = run_slim("profile", "--help")
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.split())
    assert "--memory SIZE" in text and "[default: 4GiB]" in text, res.stdout
    assert "--cpus N" in text and "[default: no limit]" in text, res.stdout
    assert "exit 6" in text  # refused first, as `slim IMAGE` refuses it
