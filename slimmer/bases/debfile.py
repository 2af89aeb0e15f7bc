"""Unpack a `.deb` into file entries and a content store, never onto the disk.

A `.deb` (deb(5)) is an `ar` archive: `debian-binary` ("2.0\\n"), then
`control.tar[.gz|.xz|.zst]`, then `data.tar[.gz|.xz|.bz2|.lzma|.zst]`. An `ar`
member has a 60-byte header (name 16, mtime 12, uid 6, gid 6, mode 8, size 10,
the magic "`\\n") and its data, padded to an even offset; GNU ar ends names
with "/". Bookworm uses xz; zstd (Ubuntu's default) needs a `compression.zstd`
module, which Python's standard library has only from 3.14, so without it a
zst member is refused with a message saying so.

The tar members are hostile input even though the package's sha256 was
checked: a name with a `..` component, a hardlink whose target has one, a
whiteout name (`.wh.*`, which would delete files of other packages once the
tree is written as a layer) and any member other than a file, directory,
symlink or hardlink refuse the whole package. Names are made absolute ("./usr"
-> "/usr"); nothing from an archive ever names a host path, since file bytes
go to the `ContentStore` under their sha256.
"""

from __future__ import annotations

import bz2
import gzip
import importlib
import io
import lzma
import posixpath
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from slimmer.bases.control import Paragraph, parse_paragraphs
from slimmer.bases.errors import DebianError
from slimmer.image.filetree import entry_from_tar
from slimmer.image.store import ContentStore, FileSpan
from slimmer.model import EntryType, FileEntry

AR_MAGIC = b"!<arch>\n"
_AR_HEADER = 60
_TAR_TYPES = {
    tarfile.REGTYPE: EntryType.FILE,
    tarfile.AREGTYPE: EntryType.FILE,
    tarfile.DIRTYPE: EntryType.DIR,
    tarfile.SYMTYPE: EntryType.SYMLINK,
    tarfile.LNKTYPE: EntryType.HARDLINK,
}
ELF_MAGIC = b"\x7fELF"

Keep = Callable[[str], bool]
"""Told each absolute member path; False leaves it out (its bytes are not stored)."""


@dataclass(frozen=True)
class DebContents:
    """What one `.deb` holds: its control paragraph, the `md5sums` lines (paths
    relative, as dpkg writes them), and the data members it was asked to keep,
    in archive order. A hardlink entry's `link` is the absolute path of the
    member it links to, which is among `entries`."""

    name: str
    control: Paragraph
    md5sums: tuple[tuple[str, str], ...]
    entries: tuple[FileEntry, ...]


@dataclass(frozen=True)
class ArMember:
    name: str
    offset: int
    size: int


def ar_members(fh: IO[bytes], where: str) -> list[ArMember]:
    """The members of the `ar` archive open in `fh`, with their data offsets."""
    fh.seek(0)
    if fh.read(len(AR_MAGIC)) != AR_MAGIC:
        raise DebianError(f"unpacking {where}: not an ar archive")
    members: list[ArMember] = []
    offset = len(AR_MAGIC)
    while True:
        header = fh.read(_AR_HEADER)
        if not header:
            return members
        if len(header) < _AR_HEADER or header[58:60] != b"`\n":
            raise DebianError(f"unpacking {where}: truncated or corrupt ar header")
        size_text = header[48:58].decode("ascii", "replace").strip()
        if not size_text.isdigit():
            raise DebianError(f"unpacking {where}: bad ar member size {size_text!r}")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        offset += _AR_HEADER
        members.append(ArMember(name, offset, int(size_text)))
        offset += int(size_text) + (int(size_text) & 1)
        fh.seek(offset)


def _decompressor(name: str, raw: IO[bytes], where: str) -> IO[bytes]:
    """The decompressed stream of an ar member, chosen by its name's suffix."""
    suffix = name.rsplit(".", 1)[-1] if name.count(".") > 1 else ""
    if suffix == "":
        return raw
    if suffix == "gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if suffix in ("xz", "lzma"):
        return lzma.LZMAFile(raw)
    if suffix == "bz2":
        return bz2.BZ2File(raw)
    if suffix == "zst":
        return _zstd(raw, name, where)
    raise DebianError(f"unpacking {where}: unknown compression of {name!r}")


def _zstd(raw: IO[bytes], name: str, where: str) -> IO[bytes]:
    try:
        module = importlib.import_module("compression.zstd")
    except ImportError:
        raise DebianError(
            f"unpacking {where}: {name} is zstd-compressed, which this Python cannot read"
            " (the standard library reads zstd from Python 3.14)"
        ) from None
    opened: IO[bytes] = module.ZstdFile(raw)
    return opened


def read_deb(path: Path, store: ContentStore, keep: Keep) -> DebContents:
    """Unpack the `.deb` at `path`: control paragraph, md5sums, kept data members
    (their bytes put in `store`). `DebianError` on anything malformed or hostile."""
    where = path.name
    with open(path, "rb") as fh:
        members: dict[str, ArMember] = {}
        for member in ar_members(fh, where):
            kind = member.name.split(".")[0]
            if kind in members:
                raise DebianError(f"unpacking {where}: more than one {kind} member")
            members[kind] = member
        for needed in ("debian-binary", "control", "data"):
            if needed not in members:
                raise DebianError(f"unpacking {where}: no {needed} member")
        fh.seek(members["debian-binary"].offset)
        if not fh.read(min(members["debian-binary"].size, 16)).startswith(b"2."):
            raise DebianError(f"unpacking {where}: not a format 2.x package")
        control, md5sums = _read_control(fh, members["control"], where)
        entries = _read_data(fh, members["data"], where, store, keep)
    return DebContents(control.get("Package"), control, md5sums, entries)


def _tar(fh: IO[bytes], member: ArMember, where: str) -> tarfile.TarFile:
    raw = io.BufferedReader(FileSpan(fh.fileno(), member.offset, member.size))
    stream = _decompressor(member.name, raw, where)
    return tarfile.open(fileobj=stream, mode="r|", errors="surrogateescape")


def _read_control(
    fh: IO[bytes], member: ArMember, where: str
) -> tuple[Paragraph, tuple[tuple[str, str], ...]]:
    files: dict[str, bytes] = {}
    try:
        with _tar(fh, member, where) as tf:
            for info in tf:
                name = posixpath.normpath(info.name).lstrip("/")
                extracted = tf.extractfile(info) if info.isfile() else None
                if name in ("control", "md5sums") and extracted is not None:
                    files[name] = extracted.read(1 << 22)
    except (tarfile.TarError, OSError, EOFError, lzma.LZMAError) as exc:
        raise DebianError(f"unpacking {where}: control archive: {exc or 'truncated'}") from exc
    if "control" not in files:
        raise DebianError(f"unpacking {where}: the control archive has no control file")
    paragraphs = parse_paragraphs(files["control"].decode("utf-8", "replace"), f"{where} control")
    if len(paragraphs) != 1 or not paragraphs[0].get("Package"):
        raise DebianError(f"unpacking {where}: the control file is not one package paragraph")
    return paragraphs[0], _md5sums(files.get("md5sums", b""), where)


def _md5sums(data: bytes, where: str) -> tuple[tuple[str, str], ...]:
    out = []
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        digest, _, name = line.partition("  ")
        if len(digest) != 32 or not name:
            raise DebianError(f"unpacking {where}: bad md5sums line {line[:80]!r}")
        out.append((digest, name))
    return tuple(out)


def _read_data(
    fh: IO[bytes], member: ArMember, where: str, store: ContentStore, keep: Keep
) -> tuple[FileEntry, ...]:
    entries: list[FileEntry] = []
    try:
        with _tar(fh, member, where) as tf:
            for info in tf:
                entry = _entry(info, where)
                if entry is not None and keep(entry.path):
                    entries.append(_with_bytes(tf, info, entry, store, where))
    except (tarfile.TarError, OSError, EOFError, lzma.LZMAError) as exc:
        raise DebianError(f"unpacking {where}: data archive: {exc or 'truncated'}") from exc
    return tuple(entries)


def member_path(name: str, where: str) -> str | None:
    """The absolute path of a member name ("./usr/bin" -> "/usr/bin"; None for the
    root itself); `DebianError` for a `..` component or a whiteout name."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DebianError(f"unpacking {where}: member {name!r} has a '..' component")
    if parts and parts[-1].startswith(".wh."):
        raise DebianError(f"unpacking {where}: member {name!r} is a whiteout name")
    return "/" + "/".join(parts) if parts else None


def _entry(info: tarfile.TarInfo, where: str) -> FileEntry | None:
    path = member_path(info.name, where)
    etype = _TAR_TYPES.get(info.type)
    if etype is None:
        raise DebianError(f"unpacking {where}: member {info.name!r} is of unsupported type")
    if path is None:
        if etype is not EntryType.DIR:
            raise DebianError(f"unpacking {where}: a non-directory at the root")
        return None
    link = info.linkname if etype is EntryType.SYMLINK else ""
    if etype is EntryType.HARDLINK:
        link = member_path(info.linkname, where) or ""
        if not link:
            raise DebianError(f"unpacking {where}: hardlink {info.name!r} to the root")
    return replace(entry_from_tar(info, path, etype), link=link, xattrs=())


def _with_bytes(
    tf: tarfile.TarFile, info: tarfile.TarInfo, entry: FileEntry, store: ContentStore, where: str
) -> FileEntry:
    if entry.type is not EntryType.FILE:
        return entry
    fh = tf.extractfile(info)
    if fh is None:
        raise DebianError(f"unpacking {where}: no data for {entry.path}")
    head = fh.read(4)
    key, size = store.put_stream(fh, head)
    if size != entry.size:
        raise EOFError(f"{entry.path}: unexpected end of data")
    return replace(entry, content=key, is_elf=head == ELF_MAGIC)
