"""The writer: a kept subset round-trips through the reader, deterministically."""

from __future__ import annotations

from pathlib import Path

from slimmer.image.filetree import keep_all
from slimmer.image.reader import open_image
from slimmer.image.writer import write_image
from slimmer.model import SOURCE_LABEL, EntryType
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


def test_round_trip_and_determinism(tmp_path: Path) -> None:
    ids = []
    with open_image(f"docker-archive:{source(tmp_path)}", want=keep_all) as src:
        for i in range(2):
            work = tmp_path / f"w{i}"
            work.mkdir()
            written = write_image(src.tree, KEEP, src.store, src.config, src.id, work)
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


def test_hardlinks_within_the_kept_set_stay_links(tmp_path: Path) -> None:
    arch = docker_archive(
        tmp_path / "h.tar", [layer(M("a", data=b"same", mode=0o755), M("b", "hardlink", link="a"))]
    )
    with open_image(f"docker-archive:{arch}", want=keep_all) as src:
        written = write_image(src.tree, ["/a", "/b"], src.store, src.config, src.id, tmp_path)
    with open_image(f"docker-archive:{written.archive}", want=keep_all) as out:
        b = out.tree.get("/b")
        assert b is not None and b.type is EntryType.HARDLINK and b.link == "/a"
        assert written.content_bytes == 4
