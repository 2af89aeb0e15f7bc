"""The merged tree: every whiteout and link rule, and every hostile case."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from slimmer.errors import ImageNotFound, ImageReadError
from slimmer.image.filetree import FileTree, keep_all, read_layer
from slimmer.image.reader import open_image
from slimmer.image.store import ContentStore
from slimmer.model import EntryType
from tests.synth import M, docker_archive, layer, oci_archive, oci_layout


def build(tmp_path: Path, *layers: bytes) -> FileTree:
    store = ContentStore(tmp_path / "store")
    tree = FileTree()
    for i, data in enumerate(layers):
        tree.apply(read_layer(io.BytesIO(data), i, f"sha256:{i:064d}", store, keep_all))
    tree.attach_store(store)
    return tree


def paths(tree: FileTree) -> set[str]:
    return {e.path for e in tree}


def test_metadata_is_kept(tmp_path: Path) -> None:
    tree = build(
        tmp_path,
        layer(
            M("etc/", "dir"),
            M(
                "etc/app.conf",
                data=b"x=1\n",
                mode=0o640,
                uid=10,
                gid=20,
                xattrs={"user.note": "hi"},
            ),
            M("usr/bin/tool", data=b"\x7fELFrest", mode=0o4755),
        ),
    )
    conf = tree.get("/etc/app.conf")
    assert conf is not None
    assert (conf.type, conf.size, conf.mode, conf.uid, conf.gid, conf.mtime) == (
        EntryType.FILE,
        4,
        0o640,
        10,
        20,
        1_600_000_000,
    )
    assert conf.xattrs == (("user.note", "hi"),)
    assert tree.read_bytes("/etc/app.conf") == b"x=1\n"
    tool = tree.get("/usr/bin/tool")
    assert tool is not None and tool.is_elf and tool.is_setuid
    implicit = tree.get("/usr/bin")
    assert implicit is not None and implicit.is_dir and implicit.implicit


def test_whiteout_deletes_file_and_counts_reclaimable(tmp_path: Path) -> None:
    tree = build(
        tmp_path, layer(M("a/big", data=b"x" * 100), M("a/keep", data=b"k")), layer(M("a/.wh.big"))
    )
    assert "/a/big" not in paths(tree) and "/a/keep" in paths(tree)
    assert tree.reclaimable_bytes == 100


def test_whiteout_of_directory_removes_subtree(tmp_path: Path) -> None:
    tree = build(
        tmp_path,
        layer(M("d/", "dir"), M("d/x/y", data=b"12"), M("d/z", data=b"3")),
        layer(M(".wh.d")),
    )
    assert not any(p.startswith("/d") for p in paths(tree))
    assert tree.reclaimable_bytes == 3


def test_opaque_directory_hides_lower_but_keeps_same_layer(tmp_path: Path) -> None:
    # The marker comes after the new child in the archive: opaque is applied first anyway.
    tree = build(
        tmp_path,
        layer(M("opt/d/", "dir"), M("opt/d/old", data=b"old")),
        layer(M("opt/d/", "dir"), M("opt/d/new", data=b"new"), M("opt/d/.wh..wh..opq")),
    )
    assert "/opt/d/old" not in paths(tree)
    assert tree.read_bytes("/opt/d/new") == b"new"
    assert tree.reclaimable_bytes == 3


def test_overwrite_in_later_layer(tmp_path: Path) -> None:
    tree = build(tmp_path, layer(M("f", data=b"one")), layer(M("f", data=b"second")))
    entry = tree.get("/f")
    assert entry is not None and entry.layer == 1 and tree.read_bytes("/f") == b"second"
    assert tree.reclaimable_bytes == 3


def test_file_replacing_directory_drops_subtree(tmp_path: Path) -> None:
    tree = build(tmp_path, layer(M("p/", "dir"), M("p/q", data=b"qq")), layer(M("p", data=b"f")))
    entry = tree.get("/p")
    assert entry is not None and entry.type is EntryType.FILE
    assert "/p/q" not in paths(tree)


def test_directory_replacing_file_and_symlink(tmp_path: Path) -> None:
    tree = build(
        tmp_path,
        layer(M("p", data=b"f"), M("lib", "symlink", link="usr/lib")),
        layer(M("p/child", data=b"c"), M("lib/x.so", data=b"so")),
    )
    for d in ("/p", "/lib"):
        entry = tree.get(d)
        assert entry is not None and entry.is_dir
    assert tree.read_bytes("/lib/x.so") == b"so"


def test_directory_over_directory_keeps_children(tmp_path: Path) -> None:
    tree = build(
        tmp_path,
        layer(M("d/", "dir", mode=0o700), M("d/a", data=b"a")),
        layer(M("d/", "dir", mode=0o755)),
    )
    d = tree.get("/d")
    assert d is not None and d.mode == 0o755 and "/d/a" in paths(tree)


def test_hardlink_shares_bytes_and_survives_target_deletion(tmp_path: Path) -> None:
    tree = build(
        tmp_path,
        layer(M("bin/a", data=b"payload", mode=0o755), M("bin/b", "hardlink", link="bin/a")),
        layer(M("bin/.wh.a")),
    )
    b = tree.get("/bin/b")
    assert b is not None and b.type is EntryType.HARDLINK and b.size == 7
    assert b.link == "/bin/a"
    assert tree.read_bytes("/bin/b") == b"payload"


def test_hardlink_to_missing_target_is_skipped_with_warning(tmp_path: Path) -> None:
    tree = build(tmp_path, layer(M("x", "hardlink", link="nowhere")))
    assert "/x" not in paths(tree)
    assert any("hardlink to missing" in str(w) for w in tree.warnings)


def test_symlink_resolution_stays_inside_root(tmp_path: Path) -> None:
    tree = build(
        tmp_path,
        layer(
            M("usr/lib/libz.so.1.2", data=b"z"),
            M("usr/lib/libz.so.1", "symlink", link="libz.so.1.2"),
            M("lib", "symlink", link="usr/lib"),
            M("etc/passwd", data=b"root"),
            M("escape", "symlink", link="../../../../etc/passwd"),
            M("abs", "symlink", link="/lib/libz.so.1"),
            M("loop1", "symlink", link="loop2"),
            M("loop2", "symlink", link="loop1"),
            M("file", data=b"f"),
        ),
    )
    res = tree.resolve("/abs")
    assert res.path == "/usr/lib/libz.so.1.2"
    assert res.chain == ("/abs", "/lib", "/usr/lib/libz.so.1")
    assert tree.resolve("/escape").path == "/etc/passwd"
    assert tree.resolve("/abs", follow_last=False).path == "/abs"
    assert "too many levels" in tree.resolve("/loop1").error
    assert tree.resolve("/file/x").error == "not a directory"
    missing = tree.resolve("/lib/nothing/here")
    assert missing.path == "/usr/lib/nothing/here" and not missing.exists


def test_hostile_member_names(tmp_path: Path) -> None:
    tree = build(
        tmp_path,
        layer(
            M("../../etc/evil", data=b"x"),
            M("a/../../b", data=b"x"),
            M("/abs/file", data=b"a"),
            M("dev/null", "char"),
            M("ok", data=b"1"),
            M("ok", data=b"22"),
        ),
    )
    assert paths(tree) >= {"/abs/file", "/dev/null", "/ok"}
    assert not any("evil" in p or p == "/b" for p in paths(tree))
    text = "\n".join(str(w) for w in tree.warnings)
    for needle in ("contains '..'", "absolute member name", "device node", "duplicate member"):
        assert needle in text
    assert tree.read_bytes("/ok") == b"22"
    # Nothing was written outside the store: the only files on disk are content blobs.
    assert {p.name for p in tmp_path.iterdir()} == {"store"}


def test_non_utf8_and_long_names(tmp_path: Path) -> None:
    bad = b"bad\xffname".decode("utf-8", "surrogateescape")
    long = "/".join(["d" * 60] * 5) + "/leaf"
    tree = build(tmp_path, layer(M(bad, data=b"b"), M(long, data=b"l")))
    assert tree.get("/" + bad) is not None
    assert tree.read_bytes("/" + long) == b"l"


def test_truncated_layer_is_a_clear_error(tmp_path: Path) -> None:
    data = layer(M("big", data=b"x" * 5000))
    with pytest.raises(ImageReadError, match=r"reading layer 1 .*unexpected end of archive"):
        build(tmp_path, data[:3000])


def test_garbage_layer_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match=r"reading layer 1"):
        build(tmp_path, b"\x00not a tar at all" * 100)


@pytest.mark.parametrize("fmt", ["docker-archive", "oci", "oci-archive", "oci-raw"])
def test_reader_formats(tmp_path: Path, fmt: str) -> None:
    layers = [layer(M("a", data=b"1"), M("d/", "dir")), layer(M(".wh.a"), M("d/b", data=b"2"))]
    if fmt == "docker-archive":
        ref = f"docker-archive:{docker_archive(tmp_path / 'i.tar', layers)}"
    elif fmt == "oci":
        ref = f"oci:{oci_layout(tmp_path / 'layout', layers)}"
    elif fmt == "oci-raw":
        ref = f"oci:{oci_layout(tmp_path / 'layout', layers, compress=False)}"
    else:
        ref = f"oci-archive:{oci_archive(tmp_path / 'o.tar', layers)}"
    with open_image(ref, want=keep_all, workdir=tmp_path) as image:
        assert {e.path for e in image.tree} == {"/", "/d", "/d/b"}
        assert image.tree.read_bytes("/d/b") == b"2"
        assert [lay.created_by for lay in image.layers] == ["layer 0", "layer 1"]
        assert image.id.startswith("sha256:")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("slimmer-")] == []


def test_missing_archive_and_bad_manifest(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFound):
        open_image(f"docker-archive:{tmp_path / 'none.tar'}")
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar")
    with pytest.raises(ImageReadError):
        open_image(f"docker-archive:{bad}")


def test_store_round_trips_bytes(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "s")
    for data in (b"", b"x", b"y" * (3 << 20)):
        assert store.read(store.put_bytes(data)) == data
    assert store.read(store.put_stream(io.BytesIO(b"rest"), b"he")[0]) == b"herest"
