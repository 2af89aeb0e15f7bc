"""A lean reader of plain tar streams for the common case: the headers Docker and
the Go `archive/tar` write (ustar, pax `x` records, GNU long names), each member
given as the `tarfile.TarInfo` that `tarfile` would give, and its data as a reader
bounded to the member.

`tarfile` reads a stream through several layers of Python per call; on an image of
tens of thousands of files that parse, not the engine's save, was the longer half
of reading an image. This reader takes each 512-byte header in one read and the
data straight from the buffered stream below.

It reads what `tarfile` reads the same way (tests/test_tarscan.py compares the two
member by member, on synthetic archives of every format and on the fixtures'
layers). Anything else (a global pax header, sparse files, a bad checksum, a
stream cut short) raises `Unusual`, and the caller
reads that archive with `tarfile`, which knows every rule and gives the error
messages users see.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from typing import IO

BLOCK = 512
_REGULAR = frozenset(tarfile.REGULAR_TYPES)
_SUPPORTED = frozenset(tarfile.SUPPORTED_TYPES)
_PAX = frozenset((tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE))
_LONG = frozenset((tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK))
_UNUSUAL = frozenset((tarfile.XGLTYPE, tarfile.GNUTYPE_SPARSE))
_RECORD = re.compile(rb"(\d+) ([^=]+)=")
_EMPTY = bytes(BLOCK)
_PAX_NUMBERS = {"uid": int, "gid": int, "size": int, "mtime": float}
_PAX_TEXT = frozenset(("path", "linkpath", "uname", "gname"))


class Unusual(Exception):
    """An archive this reader leaves to `tarfile`."""


class Bounded:
    """A member's data: reads stop at its end; a stream that ends sooner is `Unusual`."""

    __slots__ = ("_src", "left")

    def __init__(self, src: IO[bytes] | Bounded, size: int) -> None:
        self._src = src
        self.left = size

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        if n < 0 or n > self.left:
            n = self.left
        data = self._src.read(n)
        if len(data) != n:
            raise Unusual("the stream ended inside a member")
        self.left -= n
        return data

    def skip(self, n: int) -> None:
        while n > 0:
            n -= len(self.read(min(n, 1 << 20)))


def members(stream: IO[bytes] | Bounded) -> Iterator[tuple[tarfile.TarInfo, Bounded]]:
    """Each member of the plain tar `stream` with its data. A member's data not read
    by the caller is skipped before the next header is read."""
    offset = 0
    data: _Data | None = None
    while True:
        if data is not None:  # the rest of the last member, and its padding
            data.skip(data.left)
            _read_exact(stream, data.pad)
            offset += data.pad
        start = offset
        chain: list[tuple[bytes, bytes]] = []  # pax and long-name headers: (type, payload)
        while True:
            block = _read_exact(stream, BLOCK, "between members")
            offset += BLOCK
            if block == _EMPTY:
                if chain:
                    raise Unusual("the archive ends after an extended header")
                return
            info = _header(block)
            if info.type in _PAX or info.type in _LONG:
                padded = _padded(info.size)
                payload = _read_exact(stream, padded)
                offset += padded
                chain.append((info.type, payload[: info.size]))
                continue
            break
        info.offset, info.offset_data = start, offset
        for kind, payload in reversed(chain):
            _patch(info, kind, payload)
        length = info.size if info.type in _REGULAR or info.type not in _SUPPORTED else 0
        data = _Data(stream, length)
        offset += length
        yield info, data


class _Data(Bounded):
    __slots__ = ("pad",)

    def __init__(self, src: IO[bytes] | Bounded, size: int) -> None:
        super().__init__(src, size)
        self.pad = _padded(size) - size


def _read_exact(stream: IO[bytes] | Bounded, n: int, where: str = "inside a header") -> bytes:
    data = stream.read(n)
    if len(data) != n:  # a cut, or no end-of-archive blocks: left to tarfile's rules
        raise Unusual(f"the stream ended {where}")
    return data


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _number(field: bytes) -> int:
    if field[:1] in (b"\x80", b"\xff"):  # GNU base-256: big-endian after the flag byte
        n = int.from_bytes(field[1:], "big")
        return n - 256 ** (len(field) - 1) if field[0] == 0xFF else n
    try:
        return int(field.split(b"\0", 1)[0].strip() or b"0", 8)
    except ValueError:
        raise Unusual("a header number that is not octal") from None


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _header(block: bytes) -> tarfile.TarInfo:
    """One 512-byte header as `tarfile.TarInfo.frombuf` reads it."""
    if _number(block[148:156]) != sum(block) - sum(block[148:156]) + 256:
        raise Unusual("a header checksum that does not add up")
    kind = block[156:157]
    if kind in _UNUSUAL:
        raise Unusual(f"member type {kind!r}")
    info = tarfile.TarInfo(_text(block[0:100]))
    info.mode = _number(block[100:108])
    info.uid = _number(block[108:116])
    info.gid = _number(block[116:124])
    info.size = _number(block[124:136])
    info.mtime = _number(block[136:148])
    info.type = kind
    info.linkname = _text(block[157:257])
    info.uname = _text(block[265:297])
    info.gname = _text(block[297:329])
    info.devmajor = _number(block[329:337])
    info.devminor = _number(block[337:345])
    prefix = _text(block[345:500])
    if kind == tarfile.AREGTYPE and info.name.endswith("/"):
        info.type = tarfile.DIRTYPE
    if info.isdir():
        info.name = info.name.rstrip("/")
    if prefix and kind not in tarfile.GNU_TYPES:
        info.name = prefix + "/" + info.name
    return info


def _patch(info: tarfile.TarInfo, kind: bytes, payload: bytes) -> None:
    """Apply one extended header to the member after it, as `tarfile` does."""
    if kind in _LONG:
        text = _text(payload)
        if kind == tarfile.GNUTYPE_LONGNAME:
            info.name = text
        else:
            info.linkname = text
        if info.isdir():
            info.name = info.name.removesuffix("/")
        return
    records = _pax_records(payload)
    for keyword, value in records.items():
        if keyword.startswith("GNU.sparse."):
            raise Unusual(f"pax keyword {keyword}")
        if keyword in _PAX_NUMBERS:
            try:
                setattr(info, keyword, _PAX_NUMBERS[keyword](value))
            except ValueError:
                setattr(info, keyword, 0)
        elif keyword in _PAX_TEXT:
            setattr(info, keyword, value.rstrip("/") if keyword == "path" else value)
    info.pax_headers = records


def _pax_records(payload: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while (match := _RECORD.match(payload, pos)) is not None:
        length = int(match.group(1))
        if length == 0:
            raise Unusual("a pax record of length 0")
        value = payload[match.end(2) + 1 : match.start(1) + length - 1]
        keyword = match.group(2).decode("utf-8", "surrogateescape")
        out[keyword] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out
