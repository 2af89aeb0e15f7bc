"""Shared pytest fixtures.

`engine` connects to the Docker engine; when none answers the tests that use it
fail (they are never skipped silently): run `bash scripts/ensure-engine.sh`.
`fixture_images` builds (or reuses) the images under `fixtures/` once per session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from slimmer.engine import Engine
from slimmer.errors import EngineError
from slimmer.fixtures import build_fixtures


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    try:
        eng = Engine.connect()
    except EngineError as exc:
        pytest.fail(f"{exc} (run `bash scripts/ensure-engine.sh`)", pytrace=False)
    try:
        yield eng
    finally:
        eng.close()


@pytest.fixture(scope="session")
def fixture_images(engine: Engine) -> dict[str, str]:
    """Fixture name -> image tag (built on first use, then cached on the engine)."""
    return build_fixtures(engine)
