"""Build synthetic images and planner contexts for the profile and expander tests.

`build(tmp_path, members, **container)` writes a one-layer docker-archive with
the given members and container config (Env as a dict, WorkingDir, Entrypoint,
Cmd, Healthcheck) and reads it back with every byte kept; `context(...)` makes
the `ProfileContext` one planner pass would pass.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from slimmer.image.filetree import keep_all
from slimmer.image.reader import Image, open_image
from slimmer.plan.keep import ProfileContext
from tests.synth import M, layer

ELF = b"\x7fELF" + b"\0" * 60
TRIPLET = "/usr/lib/x86_64-linux-gnu"
Maker = Callable[..., Image]


def f(name: str, data: bytes | str = b"", mode: int = 0o644) -> M:
    return M(name, "file", data.encode() if isinstance(data, str) else data, mode=mode)


def d(name: str) -> M:
    return M(name, "dir")


def ln(name: str, target: str) -> M:
    return M(name, "symlink", link=target)


def build(
    tmp_path: Path, members: Iterable[M], env: dict[str, str] | None = None, **container: Any
) -> Image:
    data = layer(*members)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": [f"{k}={v}" for k, v in (env or {}).items()], **container},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(data).hexdigest()]},
        "history": [{"created_by": "synth"}],
    }
    raw = json.dumps(config).encode()
    cid = hashlib.sha256(raw).hexdigest()
    name = f"{hashlib.sha256(data).hexdigest()}/layer.tar"
    manifest = [{"Config": f"{cid}.json", "RepoTags": ["synth:1"], "Layers": [name]}]
    archive = tmp_path / f"image-{cid[:12]}.tar"
    with tarfile.open(archive, "w") as tf:
        for member, blob in (
            (f"{cid}.json", raw),
            (name, data),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(member)
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    return open_image(f"docker-archive:{archive}", want=keep_all, workdir=tmp_path)


def context(
    image: Image, traced: Iterable[str] = (), executed: Iterable[str] = (), kept: Iterable[str] = ()
) -> ProfileContext:
    executed = frozenset(executed)
    return ProfileContext(
        image.tree, image.config, frozenset(traced) | executed, executed, frozenset(kept)
    )


def factory(tmp_path: Path) -> Iterator[Maker]:
    """A `build` bound to `tmp_path` that closes every image it made afterwards."""
    images: list[Image] = []

    def make(members: Iterable[M], env: dict[str, str] | None = None, **container: Any) -> Image:
        image = build(tmp_path, members, env, **container)
        images.append(image)
        return image

    try:
        yield make
    finally:
        for image in images:
            image.close()


def debian_base() -> list[M]:
    """A merged-/usr Debian-like root: libc, the loader, libgcc_s, /tmp, /run."""
    return [
        d("/usr"),
        d("/usr/bin"),
        d(TRIPLET),
        d("/etc"),
        d("/tmp"),
        d("/run"),
        d("/var"),
        ln("/lib", "usr/lib"),
        ln("/bin", "usr/bin"),
        ln("/lib64", "usr/lib64"),
        d("/usr/lib64"),
        ln("/usr/lib64/ld-linux-x86-64.so.2", "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
        f(f"{TRIPLET}/ld-linux-x86-64.so.2", ELF, 0o755),
        f(f"{TRIPLET}/libc.so.6", ELF, 0o755),
        f(f"{TRIPLET}/libgcc_s.so.1", ELF),
        f("/etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
        f("/etc/group", "root:x:0:\n"),
        f("/etc/ld.so.cache", b"glibc-ld.so.cache1.1"),
        f("/tmp/leftover", "x"),
        ln("/var/run", "../run"),
    ]
