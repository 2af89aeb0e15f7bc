"""Build small image archives in memory for unit tests (no engine needed).

`layer(...)` makes one layer tar from member specs; `docker_archive`,
`oci_layout` and `oci_archive` wrap layers into the three file formats the
reader accepts.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class M:
    """One layer member: name, kind ('file', 'dir', 'symlink', 'hardlink', 'char', 'fifo')."""

    name: str
    kind: str = "file"
    data: bytes = b""
    link: str = ""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    xattrs: dict[str, str] = field(default_factory=dict)


_KINDS = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "char": tarfile.CHRTYPE,
    "fifo": tarfile.FIFOTYPE,
}


def layer(*members: M) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(
        fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape"
    ) as tf:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type = _KINDS[m.kind]
            info.mode = m.mode if m.kind != "dir" or m.mode != 0o644 else 0o755
            info.uid, info.gid = m.uid, m.gid
            info.mtime = 1_600_000_000
            info.linkname = m.link
            if m.xattrs:
                info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in m.xattrs.items()}
            if m.kind == "file":
                info.size = len(m.data)
                tf.addfile(info, io.BytesIO(m.data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_for(
    layers: list[bytes], history: list[str] | None = None, cmd: list[str] | None = None
) -> dict[str, object]:
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": cmd or ["/bin/true"], "Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [_sha(b) for b in layers]},
        "history": [
            {"created_by": h} for h in (history or [f"layer {i}" for i in range(len(layers))])
        ],
    }


def docker_archive(path: Path, layers: list[bytes], **kw: object) -> Path:
    config = json.dumps(config_for(layers, **kw)).encode()  # type: ignore[arg-type]
    cid = hashlib.sha256(config).hexdigest()
    names = [f"{hashlib.sha256(b).hexdigest()}/layer.tar" for b in layers]
    manifest = [{"Config": f"{cid}.json", "RepoTags": ["synth:1"], "Layers": names}]
    with tarfile.open(path, "w") as tf:
        _add(tf, f"{cid}.json", config)
        for name, data in zip(names, layers, strict=True):
            _add(tf, name, data)
        _add(tf, "manifest.json", json.dumps(manifest).encode())
    return path


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def _blob(files: dict[str, bytes], data: bytes) -> dict[str, object]:
    digest = _sha(data)
    files["blobs/sha256/" + digest.split(":")[1]] = data
    return {"digest": digest, "size": len(data)}


def oci_files(layers: list[bytes], compress: bool = True) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    config = json.dumps(config_for(layers)).encode()
    mtype = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
    descs = []
    for data in layers:
        stored = gzip.compress(data, mtime=0) if compress else data
        descs.append({"mediaType": mtype, **_blob(files, stored)})
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(files, config)},
        "layers": descs,
    }
    mdesc = _blob(files, json.dumps(manifest).encode())
    files["index.json"] = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    **mdesc,
                    "annotations": {"org.opencontainers.image.ref.name": "synth:1"},
                }
            ],
        }
    ).encode()
    files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
    return files


def oci_layout(root: Path, layers: list[bytes], compress: bool = True) -> Path:
    for name, data in oci_files(layers, compress).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def oci_archive(path: Path, layers: list[bytes], compress: bool = True) -> Path:
    with tarfile.open(path, "w") as tf:
        for name, data in sorted(oci_files(layers, compress).items()):
            _add(tf, name, data)
    return path


def mixed_layer(seed: int, megabytes: int) -> bytes:
    """A layer of files of uneven content: text, random bytes, runs, as real layers are
    (seeded: the same bytes every run)."""
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randint(2, 9)).hex() for _ in range(2000)]
    members: list[M] = []
    total = 0
    while total < megabytes << 20:
        kind, size = rng.choice(("text", "random", "run")), rng.randint(10_000, 2_000_000)
        if kind == "text":
            data = " ".join(rng.choices(words, k=size // 8)).encode()[:size]
        elif kind == "random":
            data = rng.randbytes(size)
        else:
            data = bytes([rng.randrange(256)]) * size
        members.append(M(f"f{len(members)}", data=data))
        total += size
    return layer(*members)
