"""dive's efficiency and wasted bytes, cross-checked against the real dive 0.13.

The archives are built here in memory (tests/synth.py), so this runs without an
engine; the fixture images are compared in tests/test_inspect_engine.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from slimmer.analyse.efficiency import efficiency
from slimmer.image.filetree import keep_none
from slimmer.image.reader import open_image
from tests.dive import dive_json
from tests.synth import M, docker_archive, layer

CASES: dict[str, list[bytes]] = {
    "single": [layer(M("a", data=b"1234"), M("d/", "dir"), M("d/e", data=b"56"))],
    "overwrite": [
        layer(M("f", data=b"x" * 100)),
        layer(M("f", data=b"y" * 40)),
        layer(M("f", data=b"z" * 70)),
    ],
    "delete-file": [layer(M("big", data=b"x" * 1000), M("small", data=b"s")), layer(M(".wh.big"))],
    "delete-dir": [
        layer(
            M("d/", "dir"), M("d/x", data=b"x" * 300), M("d/y/", "dir"), M("d/y/z", data=b"z" * 50)
        ),
        layer(M(".wh.d")),
    ],
    "implicit-dir-then-delete": [
        layer(M("p/", "dir"), M("p/a", data=b"a" * 10)),
        layer(M("p/b", data=b"b" * 20)),  # p only implied: dive's stack forgets it is a dir
        layer(M(".wh.p")),
    ],
    "opaque": [
        layer(M("o/", "dir"), M("o/old", data=b"o" * 30)),
        layer(M("o/", "dir"), M("o/.wh..wh..opq"), M("o/new", data=b"n" * 5)),
    ],
    "whiteout-of-missing": [
        layer(M("k", data=b"k" * 9)),
        layer(M(".wh.nothing"), M("zz", data=b"z" * 4)),
    ],
    "links": [
        layer(
            M("bin/", "dir"),
            M("bin/a", data=b"a" * 64),
            M("bin/b", "hardlink", link="bin/a"),
            M("bin/c", "symlink", link="a"),
        ),
        layer(M("bin/b", "hardlink", link="bin/a"), M("bin/a", data=b"A" * 64)),
    ],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_dive(tmp_path: Path, name: str) -> None:
    archive = docker_archive(tmp_path / "img.tar", CASES[name])
    with open_image(f"docker-archive:{archive}", want=keep_none, workdir=tmp_path) as image:
        ours = efficiency(image.layers)
        size = image.size
    theirs = dive_json(archive, tmp_path)["image"]
    assert ours.score == theirs["efficiencyScore"]
    assert ours.wasted_bytes == theirs["inefficientBytes"]
    assert size == theirs["sizeBytes"]


def test_empty_image_scores_one() -> None:
    assert efficiency([]).score == 1.0
