"""An optional on-disk cache of images already read, keyed by image ID.

Reading an engine image means `docker save` and a pass over every layer; a user
who slims the same image again (another probe, another --exclude) need not pay
that twice. An image ID is the digest of the image's config, which names every
layer's digest, so an entry can never be stale. File bytes live in one shared
content-addressed store (`blobs/`), so images that share layers share bytes.

Enabled by `SLIMMER_CACHE_DIR` (or `slim --cache-dir`); remove the directory
to empty it. Only reads that kept every file's bytes are cached.

Beside the images, `parsed/` keeps results of work on a file's bytes (the
modules a Python source imports), by the bytes' digest (`ParsedCache`): a second
run, or a run over another image holding the same file, skips that work. Each
file of it belongs to one version of the code that made its results (its
`fingerprint`), so a changed parser never reads an older one's results.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

from slimmer.image.compressed import METHODS, Compressed
from slimmer.image.filetree import FileTree
from slimmer.image.reader import Image
from slimmer.image.store import ContentStore
from slimmer.model import ImageConfig, ImageRef, Layer, Warning_

ENV = "SLIMMER_CACHE_DIR"
_FORMAT = 2  # 2: FileEntry has slots


@dataclass(frozen=True)
class _Entry:
    format: int
    id: str
    config: dict[str, object]
    layers: tuple[Layer, ...]
    tree: FileTree
    warnings: tuple[Warning_, ...]
    repo_tags: tuple[str, ...]


class ReadCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = ContentStore(root / "blobs", shared=True)
        (root / "images").mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_env(cls, explicit: Path | None = None) -> ReadCache | None:
        where = explicit or (Path(os.environ[ENV]) if os.environ.get(ENV) else None)
        return cls(where) if where is not None else None

    def _path(self, image_id: str) -> Path:
        return self.root / "images" / (image_id.replace(":", "-") + ".pickle")

    def load(self, ref: ImageRef, image_id: str) -> Image | None:
        path = self._path(image_id)
        if not path.is_file():
            return None
        try:
            with open(path, "rb") as fh:
                entry = pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
            return None  # an entry of another slimmer version: read the image again
        if not isinstance(entry, _Entry) or entry.format != _FORMAT or entry.id != image_id:
            return None
        entry.tree.attach_store(self.blobs)
        return Image(
            ref=ref,
            id=entry.id,
            config=ImageConfig(entry.config),
            layers=entry.layers,
            tree=entry.tree,
            store=self.blobs,
            warnings=entry.warnings,
            repo_tags=entry.repo_tags,
        )

    def _compressed_path(self, image_id: str) -> Path:
        return self.root / "images" / (image_id.replace(":", "-") + ".gzip-bytes")

    def compressed(self, image_id: str) -> Compressed | None:
        """The gzip size of the image's layers, when a run noted it ("BYTES METHOD"; an
        older entry's bare number was a full gzip)."""
        try:
            fields = self._compressed_path(image_id).read_text().split()
            method = fields[1] if len(fields) > 1 else "full"
            for known in METHODS:
                if method == known:
                    return Compressed(int(fields[0]), known)
            return None
        except (OSError, ValueError, IndexError):
            return None

    def note_compressed(self, image_id: str, size: Compressed) -> None:
        """Keep the gzip size of an image's layers with its entry; a better figure
        (`METHODS`) is never replaced by a worse one."""
        known = self.compressed(image_id)
        if known is not None and METHODS.index(known.method) < METHODS.index(size.method):
            return
        path = self._compressed_path(image_id)
        tmp = path.with_name(f".in-{path.name}")
        tmp.write_text(f"{size.bytes} {size.method}")
        os.replace(tmp, path)

    def parsed(self, fingerprint: str) -> ParsedCache:
        """The results by content digest of the code `fingerprint` names."""
        return ParsedCache(self.root, fingerprint)

    def save(self, image: Image) -> None:
        tree = image.tree
        tree.attach_store(None)
        try:
            entry = _Entry(
                _FORMAT,
                image.id,
                dict(image.config.raw),
                image.layers,
                tree,
                image.warnings,
                image.repo_tags,
            )
            fd, tmp = tempfile.mkstemp(dir=self.root / "images", prefix=".in-")
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(entry, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self._path(image.id))
        finally:
            tree.attach_store(self.blobs)


class ParsedCache:
    """Results by content digest (`slimmer.image.paths.ContentMemo`), loaded from one
    file under `parsed/` and written back by `save()` when a run added to it. Counts
    its hits and misses, for the report."""

    def __init__(self, root: Path, fingerprint: str) -> None:
        self.path = root / "parsed" / f"{fingerprint}.pickle"
        self.hits = self.misses = 0
        self._new: dict[str, object] = {}
        self._known = self._load()

    def _load(self) -> dict[str, object]:
        try:
            with open(self.path, "rb") as fh:
                known = pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
            return {}
        return known if isinstance(known, dict) else {}

    def get(self, key: str) -> object | None:
        value = self._known.get(key, self._new.get(key))
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def put(self, key: str, value: object) -> None:
        self._new[key] = value

    def save(self) -> None:
        """Add this run's results to the file (another run's, written meanwhile, kept)."""
        if not self._new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        merged = {**self._load(), **self._new}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".in-")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(merged, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, self.path)
        self._known, self._new = merged, {}
