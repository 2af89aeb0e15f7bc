"""The writer: a kept subset round-trips through the reader, deterministically."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from pathlib import Path

from slimmer.image.filetree import keep_all
from slimmer.image.reader import Image, open_image
from slimmer.image.writer import (
    BaseLayers,
    WriteRequest,
    WrittenImage,
    kept_entries,
    without_layers,
    write_image,
)
from slimmer.model import (
    BASE_ID_LABEL,
    OCI_BASE_DIGEST,
    OCI_BASE_NAME,
    SOURCE_LABEL,
    EntryType,
    TreeView,
)
from tests.synth import M, docker_archive, layer

BAD = b"bad\xffname".decode("utf-8", "surrogateescape")
LONG = "/".join(["d" * 70] * 4) + "/leaf"


def source(tmp_path: Path) -> Path:
    return docker_archive(
        tmp_path / "src.tar",
        [
            layer(
                M("bin/", "dir"),
                M("bin/tool", data=b"\x7fELF tool", mode=0o4755, uid=3, gid=4),
                M("bin/alias", "hardlink", link="bin/tool"),
                M("bin/cap", data=b"cap", xattrs={"security.capability": "\x01\x00\x00\x02"}),
                M("lib", "symlink", link="usr/lib"),
                M("usr/lib/x.so", data=b"so"),
                M(BAD, data=b"b"),
                M(LONG, data=b"long"),
                M("drop/me", data=b"gone" * 100),
            ),
            layer(M("bin/tool", data=b"\x7fELF tool v2", mode=0o755)),
        ],
        cmd=["/bin/tool", "--serve"],
    )


KEEP = [
    "/bin",
    "/bin/tool",
    "/bin/alias",
    "/bin/cap",
    "/lib",
    "/usr",
    "/usr/lib",
    "/usr/lib/x.so",
    "/" + BAD,
    *["/" + "/".join(LONG.split("/")[:i]) for i in range(1, 6)],
]


def _write(
    src: Image, keep: Iterable[str], work: Path, base: BaseLayers | None = None
) -> WrittenImage:
    entries = tuple(kept_entries(src.tree, keep, src.store))
    return write_image(WriteRequest(entries, src.store, src.config, src.id, work, base=base))


def test_round_trip_and_determinism(tmp_path: Path) -> None:
    ids = []
    with open_image(f"docker-archive:{source(tmp_path)}", want=keep_all) as src:
        for i in range(2):
            work = tmp_path / f"w{i}"
            work.mkdir()
            written = _write(src, KEEP, work)
            ids.append(written.image_id)
            out = open_image(f"docker-archive:{written.archive}", want=keep_all)
        assert out.id == ids[-1]
        with out:
            tree = out.tree
            assert {e.path for e in tree} == {"/", *KEEP}
            tool, alias = tree.get("/bin/tool"), tree.get("/bin/alias")
            assert (
                tool is not None
                and tool.mode == 0o755
                and tree.read_bytes("/bin/tool") == b"\x7fELF tool v2"
            )
            # The hardlink's target was overwritten in layer 2: the link keeps the old bytes.
            assert alias is not None and tree.read_bytes("/bin/alias") == b"\x7fELF tool"
            assert alias.mode == 0o4755 and (alias.uid, alias.gid) == (3, 4)
            cap = tree.get("/bin/cap")
            assert cap is not None and dict(cap.xattrs)["security.capability"] == "\x01\x00\x00\x02"
            lib = tree.get("/lib")
            assert lib is not None and lib.type is EntryType.SYMLINK and lib.link == "usr/lib"
            assert tree.read_bytes("/" + BAD) == b"b" and tree.read_bytes("/" + LONG) == b"long"
            assert out.config.cmd == ("/bin/tool", "--serve")
            assert out.config.container["Labels"][SOURCE_LABEL] == src.id
            assert len(out.layers) == 1
    assert ids[0] == ids[1]


def test_an_archive_without_its_layers_holds_its_config_and_manifest(tmp_path: Path) -> None:
    with open_image(f"docker-archive:{source(tmp_path)}", want=keep_all) as src:
        written = _write(src, KEEP, tmp_path)
    with tarfile.open(written.archive) as whole:
        members = {m.name: whole.extractfile(m).read() for m in whole if m.isfile()}  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(without_layers(written.archive))) as thin:
        kept = {m.name: thin.extractfile(m).read() for m in thin if m.isfile()}  # type: ignore[union-attr]
    layer = f"{written.layer_digest.removeprefix('sha256:')}/layer.tar"
    assert layer in members and set(members) - set(kept) == {layer}
    assert all(kept[name] == members[name] for name in kept)
    config = f"{written.image_id.removeprefix('sha256:')}.json"
    assert json.loads(kept["manifest.json"])[0]["Config"] == config and config in kept


def test_hardlinks_within_the_kept_set_stay_links(tmp_path: Path) -> None:
    arch = docker_archive(
        tmp_path / "h.tar", [layer(M("a", data=b"same", mode=0o755), M("b", "hardlink", link="a"))]
    )
    with open_image(f"docker-archive:{arch}", want=keep_all) as src:
        written = _write(src, ["/a", "/b"], tmp_path)
    with open_image(f"docker-archive:{written.archive}", want=keep_all) as out:
        b = out.tree.get("/b")
        assert b is not None and b.type is EntryType.HARDLINK and b.link == "/a"
        assert written.content_bytes == 4


def _base(tmp_path: Path) -> BaseLayers:
    """A one-layer base as `pipeline.base` prepares it: its layer tar and config."""
    data = layer(M("etc/", "dir"), M("etc/base-release", data=b"base 1"))
    tar = tmp_path / "base-layer.tar"
    tar.write_bytes(data)
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    config = {"rootfs": {"type": "layers", "diff_ids": [diff_id]}, "history": [{"created_by": "b"}]}
    return BaseLayers("base:1", "sha256:" + "c" * 64, "base@sha256:" + "d" * 64, config, (tar,))


def _paths(tree: TreeView) -> set[str]:
    return {e.path for e in tree}


def test_on_a_base_the_base_layers_come_first_unchanged(tmp_path: Path) -> None:
    base = _base(tmp_path)
    work = tmp_path / "w"
    work.mkdir()
    with open_image(f"docker-archive:{source(tmp_path)}", want=keep_all) as src:
        written = _write(src, ["/bin", "/bin/tool"], work, base)
    with open_image(f"docker-archive:{written.archive}", want=keep_all) as out:
        assert len(out.layers) == 2
        assert _paths(out.tree) == {"/", "/etc", "/etc/base-release", "/bin", "/bin/tool"}
        assert out.tree.read_bytes("/etc/base-release") == b"base 1"
        labels = out.config.container["Labels"]
        history = out.config.raw["history"]
    assert labels[OCI_BASE_NAME] == "base:1" and labels[BASE_ID_LABEL] == "sha256:" + "c" * 64
    assert labels[OCI_BASE_DIGEST] == "sha256:" + "d" * 64
    assert [h.get("created_by") for h in history][0] == "b" and len(history) == 2
    with tarfile.open(written.archive) as tf:  # the app layer's bytes, not the base's
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        app_member = tf.getmember(manifest[0]["Layers"][-1])
    assert written.layer_bytes == app_member.size
