"""slimmer.image.tarscan reads a tar stream as `tarfile` does: each member's header
fields and bytes, compared one by one on archives of every format Python writes
(ustar, GNU, pax) with what breaks naive readers, and on the layers of every
fixture image as `docker save` gives them. What it leaves to `tarfile` it refuses
as `Unusual`, never misreads."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from slimmer.engine import Engine
from slimmer.image import tarscan
from tests.fixtures_build import fixture_names

FIELDS = ("name", "type", "size", "mode", "uid", "gid", "mtime", "linkname", "uname", "gname",
          "devmajor", "devminor", "pax_headers", "offset", "offset_data")  # fmt: skip


def _by_tarfile(data: bytes) -> list[tuple[dict[str, Any], bytes]]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|", errors="surrogateescape") as tf:
        for info in tf:
            fh = tf.extractfile(info) if info.isreg() else None
            out.append(({f: getattr(info, f) for f in FIELDS}, fh.read() if fh else b""))
    return out


def _by_tarscan(data: bytes) -> list[tuple[dict[str, Any], bytes]]:
    out = []
    for info, member in tarscan.members(io.BufferedReader(io.BytesIO(data))):
        body = member.read() if info.isreg() else b""
        out.append(({f: getattr(info, f) for f in FIELDS}, body))
    return out


def _member(name: str, kind: bytes = tarfile.REGTYPE, **attrs: Any) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode, info.uid, info.gid, info.mtime = 0o644, 1000, 1000, 1_700_000_000
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def _archive(fmt: int, members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, errors="surrogateescape") as tf:
        for info, body in members:
            info.size = len(body) if info.isreg() else 0
            tf.addfile(info, io.BytesIO(body) if info.isreg() else None)
    return buf.getvalue()


LONG = "usr/lib/" + "/".join(f"deep-{i:02d}" for i in range(30)) + "/module.py"  # > 255 bytes


def _everything() -> list[tuple[tarfile.TarInfo, bytes]]:
    return [
        (_member("etc/", tarfile.DIRTYPE, mode=0o755), b""),
        (_member("etc/hostname"), b"box\n"),
        (_member("etc/empty"), b""),
        (_member("usr/bin/app"), b"\x7fELF" + bytes(range(256)) * 9),  # not block-sized
        (_member("usr/bin/alias", tarfile.SYMTYPE, linkname="app"), b""),
        (_member("usr/bin/again", tarfile.LNKTYPE, linkname="usr/bin/app"), b""),
        (_member("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3), b""),
        (_member("dev/loop0", tarfile.BLKTYPE, devmajor=7, devminor=0), b""),
        (_member("run/fifo", tarfile.FIFOTYPE), b""),
        (_member("opt/" + "n" * 70 + "/" + "m" * 60), b"a name the ustar prefix splits"),
        (_member(LONG), b"a name only pax or GNU holds"),
        (_member("opt/link", tarfile.SYMTYPE, linkname="/" + "t" * 140), b""),
        (_member("srv/caf\u00e9/\u00fcber.txt"), b"utf-8 names"),
        (_member("srv/raw-\udce9"), b"a name that is not utf-8"),
        (_member("usr/bin/ping", uid=0, gid=0, mode=0o4755), b"setuid"),
        (_member("var/big-ids", uid=3_000_000, gid=3_000_000), b"ids past 7 octal digits"),
        (_member(".wh..wh..opq"), b""),
        (_member("etc/.wh.gone"), b""),
    ]


@pytest.mark.parametrize(
    "fmt",
    [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT],
    ids=["ustar", "gnu", "pax"],
)
def test_every_member_reads_as_tarfile_reads_it(fmt: int) -> None:
    members = _everything()
    if fmt == tarfile.USTAR_FORMAT:  # ustar holds neither long names nor big ids
        members = [
            (i, b)
            for i, b in members
            if len(i.name) < 256 and len(i.linkname) < 100 and i.uid < 1 << 21
        ]
    data = _archive(fmt, members)
    assert _by_tarscan(data) == _by_tarfile(data)


def test_pax_xattrs_binary_values_and_times_read_as_tarfile_reads_them() -> None:
    info = _member("usr/bin/ping")
    info.pax_headers = {
        "SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20",
        "SCHILY.xattr.user.note": "caf\u00e9",
        "mtime": "1700000000.123456789",
        "comment": "kept as tarfile keeps it",
    }
    data = _archive(tarfile.PAX_FORMAT, [(info, b"binary")])
    scanned = _by_tarscan(data)
    assert scanned == _by_tarfile(data)
    assert scanned[0][0]["pax_headers"]["SCHILY.xattr.security.capability"].startswith("\x01")


def test_a_v7_directory_with_a_slash_is_a_directory() -> None:
    data = _archive(tarfile.GNU_FORMAT, [(_member("old/", tarfile.AREGTYPE), b"")])
    assert _by_tarscan(data) == _by_tarfile(data)
    assert _by_tarscan(data)[0][0]["type"] == tarfile.DIRTYPE


def test_members_whose_data_is_not_read_are_skipped() -> None:
    data = _archive(tarfile.PAX_FORMAT, _everything())
    names = [i.name for i, _ in tarscan.members(io.BufferedReader(io.BytesIO(data)))]
    assert names == [i["name"] for i, _ in _by_tarfile(data)]


def _unusual(data: bytes) -> str:
    with pytest.raises(tarscan.Unusual) as caught:
        _by_tarscan(data)
    return str(caught.value)


def test_what_only_tarfile_reads_is_refused_not_misread() -> None:
    plain = _archive(tarfile.PAX_FORMAT, [(_member("a"), b"x" * 700), (_member("b"), b"y")])
    # a global pax header
    glob = io.BytesIO()
    with tarfile.open(fileobj=glob, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"comment": "global"}) as tf:  # fmt: skip
        tf.addfile(_member("a", size=0))
    assert "b'g'" in _unusual(glob.getvalue())
    # a bad checksum (tarfile ends the archive there without a word)
    broken = bytearray(plain)
    broken[1024 + 1536 + 3] ^= 0xFF  # the second member's name
    assert "checksum" in _unusual(bytes(broken))
    # cut inside a member's bytes, and between members
    assert "ended" in _unusual(plain[:900])
    assert "ended" in _unusual(plain[: 1024 + 512])
    # no end-of-archive blocks at all
    assert "ended" in _unusual(plain[: plain.index(b"y") + 512])
    # a sparse member
    sparse = bytearray(_archive(tarfile.GNU_FORMAT, [(_member("a"), b"z")]))
    sparse[156:157] = tarfile.GNUTYPE_SPARSE
    sparse[148:156] = b"%06o\0 " % (sum(sparse[:148]) + 256 + sum(sparse[156:512]))
    assert "b'S'" in _unusual(bytes(sparse))


@pytest.mark.engine
@pytest.mark.parametrize("name", fixture_names())
def test_every_fixture_layer_reads_as_tarfile_reads_it(
    name: str, engine: Engine, fixture_images: dict[str, str], tmp_path: Path
) -> None:
    saved = tmp_path / "image.tar"
    with open(saved, "wb") as out:
        engine.save_image(fixture_images[name], out)
    layers = 0
    with tarfile.open(saved) as outer:
        for info in outer:
            if not info.name.endswith("layer.tar") and not info.name.startswith("blobs/"):
                continue
            fh = outer.extractfile(info)
            assert fh is not None
            data = fh.read()
            if not data.startswith(b"\x1f\x8b"):
                assert _by_tarscan(data) == _by_tarfile(data), info.name
                layers += 1
    assert layers > 0
