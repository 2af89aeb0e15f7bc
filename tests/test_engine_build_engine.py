"""Engine.build against the real engine: a build with several labels (the classic
builder adds one LABEL step, so one parent image, per label) succeeds, and leaves no
image behind once its result is removed."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from slimmer.engine import Engine
from tests.fixtures_build import ensure_base

pytestmark = pytest.mark.engine


def test_a_build_with_several_labels_keeps_its_parents_and_leaves_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nRUN true\n")
    labels = {"io.slimmer.test": "build-labels", "io.slimmer.test.b": "2", "io.slimmer.test.c": "3"}
    tag = "slimmer-test/build-labels:1"
    built = engine.build(
        tmp_path, tag, labels=labels, buildargs={"BASE": ensure_base(engine).tag}, log=io.StringIO()
    )
    try:
        assert engine.inspect_image(tag).id == built
        assert labels.items() <= engine.inspect_image(tag).labels.items()
    finally:
        engine.remove_image(tag, force=True)
    flt = {"label": "io.slimmer.test=build-labels"}
    assert engine._api.images(all=True, quiet=True, filters=flt) == []
