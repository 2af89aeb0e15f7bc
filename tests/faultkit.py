"""What the fault matrix's tests share: a tiny static program whose modes are the
faults (`tests/data/faults/faultapp.c`), one-layer `docker save` archives of it
written by hand, and the checks every row makes of a run's output and of what it
left on the engine."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

from slimmer.engine import Engine
from slimmer.errors import SlimError
from slimmer.model import SOURCE_LABEL
from tests.needs import require

FAULTAPP = Path(__file__).resolve().parent / "data" / "faults" / "faultapp.c"
TEST_LABEL = {"io.slimmer.test": "faults"}  # the test's own images, removed at the end


# -- images written by hand ----------------------------------------------------------------
def tar_of(files: Mapping[str, tuple[bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def image_archive(
    tag: str, files: Mapping[str, tuple[bytes, int]], config: Mapping[str, object], arch: str
) -> bytes:
    """A one-layer `docker save` archive of `files` with this container config."""
    layer = tar_of(files)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    image_config = {
        "architecture": arch,
        "os": "linux",
        "config": {**config, "Labels": TEST_LABEL},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "tests/test_faults_engine.py"}],
    }
    blob = json.dumps(image_config, sort_keys=True).encode()
    name = hashlib.sha256(blob).hexdigest() + ".json"
    manifest = [{"Config": name, "RepoTags": [tag], "Layers": ["layer.tar"]}]
    return tar_of(
        {
            "manifest.json": (json.dumps(manifest).encode(), 0o644),
            name: (blob, 0o644),
            "layer.tar": (layer, 0o644),
        }
    )


def compile_faultapp(where: Path) -> bytes:
    """The fault program, compiled static in `where` (the `faultapp` fixture)."""
    require("gcc")
    out = where / "faultapp"
    subprocess.run(["gcc", "-static", "-Os", "-o", str(out), str(FAULTAPP)], check=True)
    return out.read_bytes()


PORTS: dict[str, object] = {"ExposedPorts": {"8080/tcp": {}}}
Spec = tuple[list[str], Mapping[str, object], str]  # entrypoint, more config, architecture
SHARED_IMAGES: dict[str, Spec] = {
    "exit": (["/app", "exit", "3"], PORTS, "amd64"),
    "crash": (["/app", "crash"], {}, "amd64"),
    "daemon": (["/app", "daemon", "8080"], PORTS, "amd64"),
    "stubborn": (["/app", "stubborn", "8080"], {**PORTS, "StopSignal": "SIGTERM"}, "amd64"),
    "hog": (["/app", "hog", "8080"], PORTS, "amd64"),
    "serve": (["/app", "serve", "8080"], PORTS, "amd64"),
    "noentry": (["/app/missing"], PORTS, "amd64"),
    # a platform the engine neither runs nor emulates here (arm64 runs under qemu-user)
    "s390x": (["/app", "serve", "8080"], PORTS, "s390x"),
}


def load_fault_image(
    engine: Engine, name: str, files: Mapping[str, tuple[bytes, int]], spec: Spec
) -> str:
    entrypoint, extra, arch = spec
    tag = f"slimmer-faults/{name}:latest"
    engine.load_image(image_archive(tag, files, {"Entrypoint": entrypoint, **extra}, arch))
    return tag


def remove_images(engine: Engine, refs: list[str]) -> None:
    for ref in refs:
        with suppress(SlimError):
            engine.remove_image(ref, force=True)


# -- the four assertions ---------------------------------------------------------------------
def error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("slim: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def leftover_ids(engine: Engine) -> set[str]:
    """The IDs of slimmer's leftovers on the engine now: a snapshot taken before a run."""
    return {item.id for item in engine.leftovers()}


def left_by(engine: Engine, source_ids: set[str], existing: set[str]) -> list[str]:
    """slimmer's leftovers that came from these images and were not among `existing`
    (other runs share the engine, and a run killed earlier may have left its own)."""
    out = []
    for item in engine.leftovers():
        if item.id in existing:
            continue
        try:
            if item.kind == "container":
                origin = str(engine.inspect_container(item.id).get("Image", ""))
            else:
                origin = engine.inspect_image(item.id).labels.get(SOURCE_LABEL, "")
        except SlimError:  # removed meanwhile by its own run
            continue
        if origin in source_ids:
            out.append(f"{item.kind} {item.id[:12]}")
    return out
