"""Can the engine run a foreign platform under emulation?

An engine on an amd64 host runs linux/arm64 containers when the host's kernel
has a binfmt_misc handler for aarch64 ELF files registered with the `F` flag
(Debian's `qemu-user-static` with `binfmt-support`): the kernel then hands
every arm64 program to qemu-user, inside any container. Neither the engine's
info nor its version says whether that handler exists, so it is found out the
honest way: a tiny labelled image of that platform (one static ELF program
that exits 0, made here) is loaded, run once and removed, through the engine's
API. The answer is kept for the process.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import struct
import tarfile
import threading
from contextlib import suppress

from slimmer.engine_api import ContainerEngine
from slimmer.errors import SlimError
from slimmer.model import MANAGED_LABEL, ImageConfig
from slimmer.trace.sensor import emulated, host_architecture, timeout_factor

LABEL = "io.slimmer.emulation-check"
HOW_TO_ENABLE = (
    "install qemu-user-static and binfmt-support on the engine's host and register the "
    "handler with the F flag (`update-binfmts --enable qemu-{qemu}`; binfmt_misc must be "
    "mounted), or run slimmer on a {platform} engine"
)

# aarch64: mov x0, #0; mov x8, #93 (exit); svc #0
_EXIT_CODE = {"arm64": (183, struct.pack("<3I", 0xD2800000, 0xD2800BA8, 0xD4000001))}
_QEMU = {"arm64": "aarch64"}
_BASE = 0x400000
_known: dict[tuple[int, str, str], bool] = {}
_lock = threading.Lock()


def how_to_enable(os_: str, arch: str) -> str:
    """The hint a refusal of `os_/arch` carries."""
    return HOW_TO_ENABLE.format(qemu=_QEMU.get(arch, arch), platform=f"{os_}/{arch}")


def emulation_notes(config: ImageConfig, timeout: float) -> tuple[str, ...]:
    """What a report says of a run under emulation (nothing for a native one)."""
    if not emulated(config):
        return ()
    factor = timeout_factor(config)
    return (
        f"{config.os or 'linux'}/{config.architecture} ran under emulation (qemu-user) on "
        f"this {host_architecture()} host: probe timeouts scaled x{factor:g} "
        f"({timeout:g}s -> {timeout * factor:g}s)",
    )


def can_emulate(engine: ContainerEngine, os_: str, arch: str) -> bool:
    """Whether `engine` runs `os_/arch` containers (checked once per engine and platform;
    False for a platform slimmer has no check program for)."""
    if os_ != "linux" or arch not in _EXIT_CODE:
        return False
    key = (id(engine), os_, arch)
    with _lock:
        if key not in _known:
            _known[key] = _runs(engine, arch)
        return _known[key]


def _runs(engine: ContainerEngine, arch: str) -> bool:
    tag = f"slimmer-emulation-check:{arch}-{secrets.token_hex(4)}"
    engine.load_image(check_image(arch, tag))
    container = ""
    try:
        container = engine.create_container(tag, labels={LABEL: arch}, network_disabled=True)
        engine.start(container)
        return engine.wait(container, timeout=60) == 0
    except SlimError:  # "exec format error": no handler for this machine
        return False
    finally:
        with suppress(SlimError):
            if container:
                engine.remove_container(container)
            engine.remove_image(tag, force=True)


def exit_program(arch: str) -> bytes:
    """A static ELF program for `arch` that exits 0: one header, one PT_LOAD, the code."""
    machine, code = _EXIT_CODE[arch]
    size = 64 + 56 + len(code)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH", 2, machine, 1, _BASE + 120, 64, 0, 0, 64, 56, 1, 0, 0, 0
    )
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, _BASE, _BASE, size, size, 0x1000)
    return header + phdr + code


def check_image(arch: str, tag: str) -> bytes:
    """A `docker save` archive of one image, `tag`, for linux/`arch`: `/check`, its
    entrypoint, labelled `LABEL` and as a temporary image of slimmer's (`slim cleanup`
    removes it should this process die before it does)."""
    layer = _tar({"check": exit_program(arch)}, mode=0o755)
    diff_id = hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Entrypoint": ["/check"], "Labels": {LABEL: arch, MANAGED_LABEL: "temporary"}},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
    }
    raw = json.dumps(config, sort_keys=True).encode()
    name = f"{hashlib.sha256(raw).hexdigest()}.json"
    manifest = [{"Config": name, "RepoTags": [tag], "Layers": [f"{diff_id}/layer.tar"]}]
    return _tar(
        {name: raw, "manifest.json": json.dumps(manifest).encode(), f"{diff_id}/layer.tar": layer}
    )


def _tar(files: dict[str, bytes], mode: int = 0o644) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()
