"""`slim diff` of a fixture and its slim image, checked against the engine's own merge.

Each fixture is slimmed once (`slimmer.api.slim`, its narrow probes). The oracle
lists both images independently of slimmer's reader: a container is created
(never started) from each image and `get_archive(container, "/")` streams the
merged filesystem the engine itself stacked; every member is listed with its
type, size, mode, owner, link target and the SHA-256 of its bytes. The paths
the engine's init layer adds to every container (moby `daemon/initlayer`:
/.dockerenv, /etc/hosts, ... and /dev, /proc, /sys) are left out of both sides.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from slimmer import api
from slimmer.analyse.diff import ImageDiff, diff_images, load_slim_reasons
from slimmer.engine import Engine, saver
from slimmer.pipeline.slim import SlimOptions
from slimmer.report import diff_view, slim_view
from slimmer.report.common import dump_json
from slimmer.trace.probes import load_probe_file

pytestmark = [pytest.mark.engine]
ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs/schemas/diff-v1.json").read_text())
FIXTURES = ["layers", "py-batch"]
# What the engine's init layer puts into every container (moby daemon/initlayer), and
# the directories it creates to hold them: not part of either image.
INIT_LAYER = frozenset(
    {"/.dockerenv", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/mtab", "/etc"}
    | {"/dev", "/proc", "/sys"}
)


@dataclass(frozen=True)
class Listed:
    """One member of the engine's merged filesystem tar."""

    kind: str
    size: int
    mode: int
    owner: str
    link: str
    digest: str


@dataclass(frozen=True)
class Slimmed:
    source: str
    output: str
    report: Path


class _Chunks(io.RawIOBase):
    """A readable file over an iterator of byte chunks (the engine's archive stream)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, out: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buf = chunk
        n = min(len(out), len(self._buf))
        out[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _norm(name: str) -> str:
    return "/" + name.strip("/") if name.strip("/") else "/"


def _outside_init(path: str) -> bool:
    top = "/" + path.split("/")[1]
    return path not in INIT_LAYER and top not in ("/dev", "/proc", "/sys")


def engine_listing(engine: Engine, image: str) -> dict[str, Listed]:
    """The engine's merged filesystem of `image`, path -> `Listed` (init layer left out)."""
    container = engine.create_container(image)
    try:
        stream = io.BufferedReader(_Chunks(engine.get_archive(container, "/")), 1 << 20)
        with tarfile.open(fileobj=stream, mode="r|", errors="surrogateescape") as tf:
            listed = _list_members(tf)
    finally:
        engine.remove_container(container)
    assert container not in {item.id for item in engine.leftovers()}, "container left behind"
    return {p: e for p, e in listed.items() if p != "/" and _outside_init(p)}


def _list_members(tf: tarfile.TarFile) -> dict[str, Listed]:
    out: dict[str, Listed] = {}
    for m in tf:
        path, owner, mode = _norm(m.name), f"{m.uid}:{m.gid}", m.mode & 0o7777
        if m.islnk():  # the same inode as a member listed before it
            target = out[_norm(m.linkname)]
            out[path] = Listed("file", target.size, mode, owner, "", target.digest)
        elif m.isreg():
            out[path] = Listed("file", m.size, mode, owner, "", _sha256(tf, m))
        else:
            link = m.linkname if m.issym() else ""
            out[path] = Listed(_KINDS[m.type], 0, mode, owner, link, "")
    return out


_KINDS = {
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.FIFOTYPE: "fifo",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
}


def _sha256(tf: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    fh = tf.extractfile(member)
    assert fh is not None
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def expected_changes(a: Mapping[str, Listed], b: Mapping[str, Listed]) -> set[str]:
    """Paths in both listings that differ, by the rules `slim diff` states: a symlink's
    mode means nothing; a file's bytes count, its time does not."""
    out = set()
    for path in a.keys() & b.keys():
        x, y = a[path], b[path]
        if x.kind == y.kind == "symlink":
            x, y = Listed(**{**x.__dict__, "mode": 0}), Listed(**{**y.__dict__, "mode": 0})
        if x != y:
            out.add(path)
    return out


# -- the slim images ------------------------------------------------------------------


@pytest.fixture(scope="module")
def slimmed(
    engine: Engine, fixture_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Slimmed]]:
    """Each fixture slimmed once with its narrow probes, with its report.json written.

    Only what this module creates is checked for removal: other suites share the engine,
    and `tests/test_slim_engine.py` checks that a slim run leaves nothing behind."""
    out: dict[str, Slimmed] = {}
    try:
        for name in FIXTURES:
            spec = load_probe_file(ROOT / "fixtures" / name / "probe.toml")
            tag = f"slimmer-test/{name}:diff"
            out[name] = Slimmed(fixture_images[name], tag, Path())
            opts = SlimOptions(output=tag, probes=spec.probes, timeout=spec.timeout)
            result = api.slim(fixture_images[name], opts)
            report = tmp_path_factory.mktemp(name) / "report.json"
            report.write_text(dump_json(slim_view.to_json(result)))
            out[name] = Slimmed(fixture_images[name], tag, report)
        yield out
    finally:
        for item in out.values():
            engine.remove_image(item.output, force=True)
    assert not any(engine.image_exists(item.output) for item in out.values())


@pytest.fixture(scope="module")
def diffs(engine: Engine, slimmed: dict[str, Slimmed]) -> dict[str, ImageDiff]:
    return {
        name: diff_images(s.source, s.output, saver(engine), report=load_slim_reasons(s.report))
        for name, s in slimmed.items()
    }


def assert_matches_engine(engine: Engine, d: ImageDiff, a_image: str, b_image: str) -> None:
    """Added, removed and changed paths of `d` are those of the engine's own listings."""
    a, b = engine_listing(engine, a_image), engine_listing(engine, b_image)
    assert {p.path for p in d.added if _outside_init(p.path)} == b.keys() - a.keys()
    assert {p.path for p in d.removed if _outside_init(p.path)} == a.keys() - b.keys()
    assert {c.path for c in d.changed if _outside_init(c.path)} == expected_changes(a, b)


@pytest.mark.parametrize("name", FIXTURES)
def test_slim_paths_match_the_engines_own_merge(
    name: str, engine: Engine, slimmed: dict[str, Slimmed], diffs: dict[str, ImageDiff]
) -> None:
    assert_matches_engine(engine, diffs[name], slimmed[name].source, slimmed[name].output)
    assert diffs[name].removed, "a slim image drops files"


def test_two_fixtures_match_the_engines_own_merge(
    engine: Engine, fixture_images: dict[str, str]
) -> None:
    """Two fixtures on one base: paths added, removed and changed all at once (layers'
    whiteouts, opaque directories and odd names against py-batch's Python)."""
    a, b = fixture_images["layers"], fixture_images["py-batch"]
    d = diff_images(a, b, saver(engine))
    assert d.added and d.removed and d.changed and not d.b_slimmed_from_a
    assert_matches_engine(engine, d, a, b)
    assert {c.field for c in d.config} >= {"cmd", "labels"}


@pytest.mark.parametrize("name", FIXTURES)
def test_slim_output_is_marked_and_its_files_explained(
    name: str, diffs: dict[str, ImageDiff]
) -> None:
    d = diffs[name]
    assert d.b_slimmed_from_a
    assert d.kept is not None and d.kept.matches, d.warnings
    assert d.kept.unexplained == ()
    assert len(d.kept.files) == d.b.files
    assert d.b.size_bytes < d.a.size_bytes and d.directories
    jsonschema.validate(diff_view.to_json(d), SCHEMA)


def test_packages_of_a_slim_image(diffs: dict[str, ImageDiff]) -> None:
    """py-batch's slim image keeps a dpkg status trimmed to the packages whose files
    survive: packages only go away; none is added or changes version."""
    p = diffs["py-batch"].packages
    assert p.removed and not p.added and not p.changed
    assert {x.name for x in p.removed} >= {"apt", "bash"}


def test_engine_and_archive_references_agree(
    engine: Engine, slimmed: dict[str, Slimmed], diffs: dict[str, ImageDiff], tmp_path: Path
) -> None:
    item = slimmed["layers"]
    source_id = engine.inspect_image(item.source).id
    archive = tmp_path / "slim.tar"
    with open(archive, "wb") as out:
        engine.save_image(item.output, out)
    d = diff_images(item.source, f"docker-archive:{archive}", saver(engine))
    want = diffs["layers"]
    assert (d.added, d.removed, d.changed) == (want.added, want.removed, want.changed)
    assert d.b_slimmed_from_a
    assert engine.inspect_image(item.source).id == source_id, "the input is never changed"
