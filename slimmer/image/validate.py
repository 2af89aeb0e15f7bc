"""Check an image archive's invariants, as go-containerregistry's `validate.Image` does.

Rules (each `Violation` names one, with the layer and entry where it was found):

- `structure`: the archive can be read at all (manifest, config, layer members);
- `config-digest`: the sha256 of the stored config is the image ID (docker-archive)
  or the manifest's config digest (OCI);
- `rootfs`: `rootfs.type` is `layers` and every diff ID is `sha256:` + 64 hex;
- `history`: the history entries that are not `empty_layer` are as many as the layers;
- `diff-id`: the sha256 of each layer's uncompressed tar is its diff ID;
- `blob-digest` (OCI): the sha256 of each stored layer blob is the manifest's digest;
- `tar`: each layer is a complete tar stream;
- `absolute-path`, `dotdot-path`, `empty-path`: entry names stay inside the root;
- `duplicate`: no name twice in one layer;
- `hardlink-order`: a hardlink's target is an earlier entry of the same layer, and
  its name stays inside the root;
- `order`: entries sorted by the bytes of their names. Engines do not require it
  (`docker build` writes walk order), so it is a warning except for the layers the
  caller says must be sorted (slimmer's own).

Layers are streamed once each; what is kept per layer is the set of names seen
(for duplicates and hardlinks), never file bytes, so memory does not grow with
the size of the image.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from slimmer.errors import ImageReadError
from slimmer.image.archive import ArchiveImage, LayerSource, open_archive
from slimmer.image.filetree import stream_members
from slimmer.image.platforms import Platform

SCHEMA = "slimmer.validate/v1"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_CHUNK = 1 << 20
_MAX_PER_LAYER = 100  # a hostile layer could break a rule a million times


@dataclass(frozen=True)
class Violation:
    """One broken invariant; `layer` is 1-based, `entry` a name inside that layer."""

    rule: str
    message: str
    layer: int | None = None
    entry: str | None = None

    def __str__(self) -> str:
        where = f"layer {self.layer}: " if self.layer is not None else ""
        what = f"{self.entry!r}: " if self.entry is not None else ""
        return f"{self.rule}: {where}{what}{self.message}"


@dataclass(frozen=True)
class Validation:
    """What validating one image found. Valid when there are no violations;
    warnings (unsorted third-party layers) do not make it invalid."""

    source: str
    image_id: str
    layers: int
    entries: int
    violations: tuple[Violation, ...]
    warnings: tuple[Violation, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.violations


@dataclass(frozen=True)
class _LayerCheck:
    entries: int
    violations: tuple[Violation, ...]
    warnings: tuple[Violation, ...]


def validate_archive(
    transport: str,
    path: Path,
    *,
    sorted_from: int | None = None,
    platform: Platform | None = None,
    digests: bool = True,
) -> Validation:
    """Validate the image at `path` (`docker-archive`, `oci-archive` or `oci`).

    Layers at index `sorted_from` and above (0-based) must be sorted; the order of
    the others, and of all layers when it is None, only warns. Without `digests`,
    no layer is hashed to check its diff ID (for an archive whose writer hashed each
    layer as it wrote it: the engine checks them again when it loads the archive).
    An archive too broken to open is one `structure` violation; a missing file raises
    `ImageNotFound`.
    """
    source = f"{transport}:{path}"
    try:
        image = open_archive(transport, path, platform)
    except ImageReadError as exc:
        return Validation(source, "", 0, 0, (Violation("structure", exc.message),))
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        message = f"malformed manifest or index ({type(exc).__name__}: {exc})"
        return Validation(source, "", 0, 0, (Violation("structure", message),))
    return validate_image(image, source, sorted_from, digests)


def validate_image(
    image: ArchiveImage, source: str, sorted_from: int | None, digests: bool = True
) -> Validation:
    """Validate an opened archive image: config, then each layer in turn."""
    violations = [*_check_config(image)]
    warnings: list[Violation] = []
    entries = 0
    for layer in image.layers:
        strict = sorted_from is not None and layer.index >= sorted_from
        checked = _check_layer(layer, strict, digests)
        entries += checked.entries
        violations += checked.violations
        warnings += checked.warnings
    return Validation(
        source, image.config_digest, len(image.layers), entries, tuple(violations), tuple(warnings)
    )


# -- config --------------------------------------------------------------------


def _check_config(image: ArchiveImage) -> Iterator[Violation]:
    actual = "sha256:" + hashlib.sha256(image.config_bytes).hexdigest()
    if actual != image.config_digest:
        yield Violation(
            "config-digest", f"config hashes to {actual[:19]}, named {image.config_digest[:19]}"
        )
    rootfs = image.config.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        yield Violation("rootfs", "rootfs.type is not 'layers'")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        yield Violation("rootfs", "rootfs.diff_ids is not a list")
        diff_ids = []
    for i, diff_id in enumerate(diff_ids):
        if not isinstance(diff_id, str) or not _DIGEST.match(diff_id):
            yield Violation("rootfs", f"diff ID {diff_id!r} is not sha256:<64 hex>", i + 1)
    yield from _check_history(image.config.get("history"), len(image.layers))


def _check_history(history: Any, layers: int) -> Iterator[Violation]:
    if history is None:
        return
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        yield Violation("history", "history is not a list of objects")
        return
    non_empty = sum(1 for h in history if not h.get("empty_layer"))
    if non_empty != layers:
        yield Violation(
            "history", f"{non_empty} history entries make layers, the image has {layers} layers"
        )


# -- layers --------------------------------------------------------------------


class _HashingReader:
    """A read-only stream that hashes every byte read through it (unless told not to)."""

    def __init__(self, raw: IO[bytes], hashing: bool = True) -> None:
        self._raw = raw
        self.sha = hashlib.sha256()
        self._hashing = hashing

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if self._hashing:
            self.sha.update(data)
        return data

    def drain(self) -> None:
        for chunk in iter(lambda: self.read(_CHUNK), b""):
            del chunk


def _check_layer(layer: LayerSource, strict: bool, digests: bool = True) -> _LayerCheck:
    n = layer.index + 1
    try:
        with layer.open() as raw:
            reader = _HashingReader(raw, digests)
            walk = _Walk(n, strict)
            walk.run(reader)
            reader.drain()
        blob = _check_blob(layer) if layer.blob and layer.blob != layer.digest else []
    except ImageReadError as exc:
        return _LayerCheck(0, (Violation("tar", exc.message, n),), ())
    except (OSError, EOFError, tarfile.TarError, ValueError, zlib.error) as exc:
        return _LayerCheck(0, (Violation("tar", f"unreadable stream ({exc})", n),), ())
    found = [*blob, *walk.violations]
    actual = "sha256:" + reader.sha.hexdigest()
    if digests and actual != layer.digest:
        message = f"tar hashes to {actual[:19]}, diff ID is {layer.digest[:19]}"
        found.insert(0, Violation("diff-id", message, n))
    return _LayerCheck(walk.entries, tuple(found), tuple(walk.warnings))


def _check_blob(layer: LayerSource) -> list[Violation]:
    """The stored (compressed) blob hashes to the digest the manifest gives it."""
    raw = layer.opener()
    try:
        reader = _HashingReader(raw)
        reader.drain()
    finally:
        raw.close()
    actual = "sha256:" + reader.sha.hexdigest()
    if actual == layer.blob:
        return []
    message = f"stored blob hashes to {actual[:19]}, the manifest says {layer.blob[:19]}"
    return [Violation("blob-digest", message, layer.index + 1)]


class _Walk:
    """The per-entry rules over one layer's tar stream."""

    def __init__(self, layer: int, strict: bool) -> None:
        self.layer = layer
        self.strict = strict
        self.entries = 0
        self.seen: set[str] = set()
        self.previous = b""
        self.violations: list[Violation] = []
        self.warnings: list[Violation] = []
        self.more = 0  # violations past _MAX_PER_LAYER, counted only

    def run(self, stream: _HashingReader) -> None:
        try:
            with tarfile.open(
                fileobj=cast(IO[bytes], stream),
                mode="r|",
                encoding="utf-8",
                errors="surrogateescape",
            ) as tf:
                for info in stream_members(tf):
                    self.entries += 1
                    self.entry(info)
            self._summarise()
        except (tarfile.TarError, EOFError) as exc:
            self.violations.append(
                Violation(
                    "tar", f"broken tar stream after {self.entries} entries ({exc})", self.layer
                )
            )

    def entry(self, info: tarfile.TarInfo) -> None:
        name = _clean(info.name)
        self._path_rules(info.name, name)
        self._order(name)
        if name in self.seen:
            self._bad("duplicate", "appears more than once", info.name)
        if info.islnk():
            self._hardlink(info)
        self.seen.add(name)

    def _path_rules(self, raw: str, name: str) -> None:
        if raw.startswith("/"):
            self._bad("absolute-path", "absolute name", raw)
        if ".." in name.split("/"):
            self._bad("dotdot-path", "name climbs out of the root with '..'", raw)
        if not name and raw not in (".", "./"):
            self._bad("empty-path", "empty name", raw)

    def _order(self, name: str) -> None:
        key = name.encode("utf-8", "surrogateescape")
        if key < self.previous:
            before = self.previous.decode("utf-8", "surrogateescape")
            found = Violation(
                "order", f"sorts before the previous entry {before!r}", self.layer, name
            )
            if self.strict:
                self.violations.append(found)
            elif not self.warnings:  # one warning per layer is enough
                self.warnings.append(found)
        self.previous = key

    def _hardlink(self, info: tarfile.TarInfo) -> None:
        target = _clean(info.linkname)
        if info.linkname.startswith("/") or ".." in target.split("/"):
            self._bad("hardlink-order", f"link target {info.linkname!r} leaves the root", info.name)
        elif target not in self.seen:
            message = f"link target {info.linkname!r} is not an earlier entry of this layer"
            self._bad("hardlink-order", message, info.name)

    def _bad(self, rule: str, message: str, entry: str) -> None:
        if len(self.violations) >= _MAX_PER_LAYER:
            self.more += 1
        else:
            self.violations.append(Violation(rule, message, self.layer, entry))

    def _summarise(self) -> None:
        if self.more:
            message = f"{self.more} more violations in this layer not listed"
            self.violations.append(Violation("more", message, self.layer))


def _clean(name: str) -> str:
    """The name as a path inside the root: no leading `./` or trailing `/`."""
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")
