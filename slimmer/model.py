"""Values that flow between slimmer's stages. Frozen; no I/O here."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

MANAGED_LABEL = "io.slimmer.managed"  # on every container slimmer creates
SOURCE_LABEL = "io.slimmer.source"  # on slim images: the source image's ID
VERSION_LABEL = "io.slimmer.version"  # on slim images: the slimmer that wrote it
SOURCE_REF_LABEL = "io.slimmer.source.ref"  # on slim images: the source as the user named it
BASE_ID_LABEL = "io.slimmer.base.id"  # on images written on a base: the base's image ID
# The schema of a slim run's report.json (docs/schemas/slim-v3.json): written by
# report/slim_view, read back by `slim report` (api), `slim diff --report`
# (analyse/slimreasons) and `slim check --baseline` (analyse/checkconfig).
SLIM_SCHEMA = "slimmer.slim/v3"
# The OCI annotations of the base an image was built on (image-spec annotations.md).
OCI_BASE_NAME = "org.opencontainers.image.base.name"
OCI_BASE_DIGEST = "org.opencontainers.image.base.digest"


@dataclass(frozen=True)
class Transfer:
    """Bytes moved so far in a long step (reading, writing or loading an image): the CLI
    draws it as a bar. `total` is what the step will move when it is known in advance."""

    step: str
    done: int
    total: int | None


# Told the name of each stage as a long job enters it, and how far a long step has
# moved its bytes (the CLI shows both).
Progress = Callable[[str | Transfer], None]


def metered(progress: Progress, step: str, total: int | None) -> Callable[[int], None]:
    """A counter for `step`: call it with each chunk's size. It tells `progress` at most
    every 1% of `total` (every 8 MiB when the total is unknown), and always at the end
    (when the count reaches `total`)."""
    done = 0
    told = 0
    every = max(total // 100, 1 << 20) if total else 8 << 20

    def add(n: int) -> None:
        nonlocal done, told
        done += n
        if done - told >= every or (total is not None and done >= total > told):
            told = done
            progress(Transfer(step, done, total))

    progress(Transfer(step, 0, total))
    return add


class EntryType(StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    CHAR = "char"
    BLOCK = "block"
    FIFO = "fifo"


@dataclass(frozen=True, slots=True)  # one per path of an image: slots halve its size
class FileEntry:
    """One path of an image's merged file tree.

    `path` is absolute and normalised ("/usr/bin/env"). `link` is the symlink
    target exactly as stored, or for a hardlink the absolute path of the file it
    links to. A hardlink's `size` and `content` are those of its target.
    `content` is a key into the image's `ContentStore`, or None when the reader
    was told not to keep this file's bytes.
    """

    path: str
    type: EntryType
    size: int = 0
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    link: str = ""
    xattrs: tuple[tuple[str, str], ...] = ()
    layer: int = 0
    devmajor: int = 0
    devminor: int = 0
    content: str | None = None
    is_elf: bool = False
    implicit: bool = False

    @property
    def is_dir(self) -> bool:
        return self.type is EntryType.DIR

    @property
    def is_regular(self) -> bool:
        return self.type in (EntryType.FILE, EntryType.HARDLINK)

    @property
    def is_setuid(self) -> bool:
        return self.is_regular and bool(self.mode & 0o4000)

    @property
    def is_setgid(self) -> bool:
        return self.is_regular and bool(self.mode & 0o2000)


@dataclass(frozen=True, slots=True)
class LayerMember:
    """One member of a layer archive as it was stored, before merging.

    Kept for analyses that look at layers one by one (dive's efficiency).
    `path` is the cleaned member name as an absolute path (the string the tree's
    entry holds too: an image of 100k files keeps one copy of each name).
    """

    path: str
    size: int
    is_dir: bool

    @property
    def name(self) -> str:
        """The member name without its leading slash."""
        return self.path[1:]


@dataclass(frozen=True)
class Layer:
    index: int
    digest: str
    size: int
    created_by: str = ""
    comment: str = ""
    members: tuple[LayerMember, ...] = ()
    archive_bytes: int = 0


@dataclass(frozen=True)
class HistoryEntry:
    created_by: str
    empty_layer: bool
    comment: str = ""


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image config slimmer reads, plus the raw document."""

    raw: Mapping[str, Any]

    @property
    def container(self) -> Mapping[str, Any]:
        cfg = self.raw.get("config") or self.raw.get("Config") or {}
        return cfg if isinstance(cfg, Mapping) else {}

    @property
    def architecture(self) -> str:
        return str(self.raw.get("architecture", ""))

    @property
    def os(self) -> str:
        return str(self.raw.get("os", ""))

    @property
    def entrypoint(self) -> tuple[str, ...]:
        return tuple(self.container.get("Entrypoint") or ())

    @property
    def cmd(self) -> tuple[str, ...]:
        return tuple(self.container.get("Cmd") or ())

    @property
    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.container.get("Env") or ():
            key, _, value = str(item).partition("=")
            out[key] = value
        return out

    @property
    def user(self) -> str:
        return str(self.container.get("User") or "")

    @property
    def working_dir(self) -> str:
        return str(self.container.get("WorkingDir") or "")

    @property
    def exposed_ports(self) -> tuple[str, ...]:
        return tuple(sorted((self.container.get("ExposedPorts") or {}).keys()))

    @property
    def healthcheck(self) -> tuple[str, ...]:
        hc = self.container.get("Healthcheck") or {}
        return tuple(hc.get("Test") or ())

    @property
    def history(self) -> tuple[HistoryEntry, ...]:
        return tuple(
            HistoryEntry(
                created_by=str(h.get("created_by", "")),
                empty_layer=bool(h.get("empty_layer", False)),
                comment=str(h.get("comment", "")),
            )
            for h in self.raw.get("history") or ()
        )


@dataclass(frozen=True)
class Warning_:
    """Something odd in the input that slimmer skipped or worked around."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class TreeView(Protocol):
    """Read-only view of an image's merged file tree."""

    def get(self, path: str) -> FileEntry | None: ...

    def resolve(self, path: str, follow_last: bool = True) -> ResolvedPath: ...

    def listdir(self, path: str) -> list[str]: ...

    def read_bytes(self, path: str, size: int = -1, offset: int = 0) -> bytes: ...

    def __iter__(self) -> Iterator[FileEntry]: ...


@dataclass(frozen=True)
class ResolvedPath:
    """The result of resolving a path inside an image root.

    `path` is the final path with every symlink followed (never outside the
    root: `..` at the root stays at the root, as in a chroot). `chain` lists
    every symlink crossed on the way, in order. `entry` is the entry found at
    `path`, or None when the path does not exist. `error` is set on a symlink
    loop or a non-directory used as a directory.
    """

    path: str
    chain: tuple[str, ...] = ()
    entry: FileEntry | None = None
    error: str = ""

    @property
    def exists(self) -> bool:
        return self.entry is not None


@dataclass(frozen=True)
class ImageRef:
    """Where an image comes from: the engine, or a file/dir without one."""

    transport: str  # "engine", "docker-archive", "oci-archive", "oci"
    name: str

    def __str__(self) -> str:
        return self.name if self.transport == "engine" else f"{self.transport}:{self.name}"
