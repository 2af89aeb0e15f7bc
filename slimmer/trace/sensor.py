"""The tracer we put into the image: the host's strace, made self-contained.

An image may have no libc, no shell and a libc other than the host's, so we
bring strace's whole ELF closure with its own dynamic loader and start strace
*through* that loader (`ld.so --library-path DIR strace ...`): nothing of the
image's is used to start the tracer, and nothing of ours is visible to the
traced program (no environment variable, no file outside `/.slimmer`).

Layout (a tar to extract at `/` of a created container):

    /.slimmer/           mode 0777: any user can write the trace there
    /.slimmer/strace     the host's strace
    /.slimmer/ld.so      the host's ELF interpreter (absent for a static strace)
    /.slimmer/lib/NAME   each library under the name strace's closure asks for
"""

from __future__ import annotations

import functools
import io
import platform
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from slimmer.elf.loader import closure
from slimmer.errors import TraceError
from slimmer.image.hosttree import HostTree
from slimmer.model import ImageConfig
from slimmer.trace.events import Trace, strace_options

BUNDLE_DIR = "/.slimmer"
STRACE = f"{BUNDLE_DIR}/strace"
LOADER = f"{BUNDLE_DIR}/ld.so"
LIB_DIR = f"{BUNDLE_DIR}/lib"
TRACE_PATH = f"{BUNDLE_DIR}/trace.log"
KILL = f"{BUNDLE_DIR}/kill"
MIN_STRACE = (5, 3)  # --seccomp-bpf

# `uname -m` -> the OCI/Docker architecture name an image config carries.
_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


@dataclass(frozen=True)
class HostNeeds:
    """A dynamically linked program's runtime needs on the host.

    `loader` is the host path of its ELF interpreter (None: statically
    linked); `libs` pairs each library's name as the program asks for it
    (DT_NEEDED) with the host file that satisfies it.
    """

    loader: str | None
    libs: tuple[tuple[str, str], ...]

    def libs_names(self) -> set[str]:
        return {name for name, _ in self.libs}


@dataclass(frozen=True)
class BundleFile:
    name: str  # path in the container, e.g. "/.slimmer/lib/libc.so.6"
    source: str  # host file it was read from (symlinks resolved)
    size: int


@dataclass(frozen=True)
class Bundle:
    """The tracer bundle: a tar to put at `/` and how to start strace from it."""

    data: bytes
    files: tuple[BundleFile, ...]
    architecture: str
    strace_version: str
    launcher: tuple[str, ...]  # argv prefix that starts /.slimmer/strace

    @property
    def size(self) -> int:
        return len(self.data)


# -- finding strace and its closure on the host ---------------------------------


def host_closure(binary: str) -> HostNeeds:
    """`binary`'s closure on this host, by slimmer's own loader rules (slimmer.elf.loader
    over a HostTree): its ELF interpreter and each DT_NEEDED name with the file the
    baseline CPU loads. A library the loader would not find is a TraceError."""
    found = closure(HostTree(), [binary], {}, "/")
    if found.missing:
        names = ", ".join(sorted({m.name for m in found.missing}))
        raise TraceError(f"bundling {binary}: the host's loader would not find {names}")
    interp = next((e.target for e in found.edges if e.kind == "PT_INTERP"), None)
    libs: dict[str, str] = {}
    for edge in found.edges:
        if edge.kind == "DT_NEEDED" and not edge.variant and edge.target != interp:
            libs.setdefault(edge.name, edge.target)
    return HostNeeds(interp, tuple(sorted(libs.items())))


def find_strace() -> str:
    path = shutil.which("strace")
    if path is None:
        raise TraceError(
            "bundling strace: strace is not installed on this host "
            "(install it, e.g. `apt-get install strace`)"
        )
    return str(Path(path).resolve())


def parse_version(text: str) -> tuple[int, ...]:
    """ "strace -- version 6.1" -> (6, 1); () when there is no version."""
    m = re.search(r"version (\d+(?:\.\d+)*)", text)
    return tuple(int(p) for p in m.group(1).split(".")) if m else ()


def _strace_version(strace: str) -> str:
    try:
        out = subprocess.run([strace, "-V"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise TraceError(f"bundling strace: running {strace} -V: {exc}") from exc
    version = parse_version(out.stdout)
    if version < MIN_STRACE:
        raise TraceError(
            f"bundling strace: {strace} is version {out.stdout.strip()[:60]!r}; "
            f"slimmer needs {'.'.join(map(str, MIN_STRACE))} or newer"
        )
    return ".".join(map(str, version))


def host_architecture() -> str:
    machine = platform.machine()
    return _ARCH.get(machine, machine)


# -- the bundle -----------------------------------------------------------------


def launcher(closure: HostNeeds) -> tuple[str, ...]:
    """The argv prefix that runs /.slimmer/strace with only the bundle's libraries.

    `--library-path` replaces the image's LD_LIBRARY_PATH for strace alone;
    glibc's `--inhibit-cache` keeps the image's /etc/ld.so.cache out (musl has
    no cache and no such option).
    """
    if closure.loader is None:
        return (STRACE,)
    glibc = not Path(closure.loader).name.startswith("ld-musl")
    return (LOADER, "--library-path", LIB_DIR, *(("--inhibit-cache",) if glibc else ()), STRACE)


def _members(strace: str, closure: HostNeeds) -> list[tuple[str, str]]:
    """(path in the container, host file) for everything the bundle holds."""
    members = [(STRACE, strace)]
    if closure.loader is not None:
        # Run as the program, the loader also answers to its soname (libc's
        # DT_NEEDED on it), so it is not copied into lib/ a second time.
        members.append((LOADER, closure.loader))
    members += [(f"{LIB_DIR}/{name}", source) for name, source in closure.libs]
    kill = shutil.which("kill", path="/usr/bin:/bin")
    if kill and host_closure(kill).libs_names() <= closure.libs_names():
        # Stops the traced app itself (strace, as PID 1, ignores SIGTERM), so
        # that its shutdown path is traced too; it needs no library of its own.
        members.append((KILL, kill))
    return sorted(members)


def make_tar(files: Sequence[tuple[str, bytes]]) -> bytes:
    """A deterministic PAX tar of `/.slimmer`: relative names, owner 0, mtime 0.

    Files are mode 0755 and the directory 0777 so the bundle works for any
    container user, who must also be able to create the trace file.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, mode in ((BUNDLE_DIR, 0o777), (LIB_DIR, 0o755)):
            tf.addfile(_info(name, tarfile.DIRTYPE, mode, 0))
        for name, content in sorted(files):
            tf.addfile(_info(name, tarfile.REGTYPE, 0o755, len(content)), io.BytesIO(content))
    return buf.getvalue()


def _info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name.lstrip("/"))
    info.type, info.mode, info.size = kind, mode, size
    info.uid = info.gid = info.mtime = 0
    info.uname = info.gname = ""
    return info


def make_bundle(strace: str, closure_of: Callable[[str], HostNeeds] = host_closure) -> Bundle:
    """Bundle the strace at host path `strace` with its closure."""
    version = _strace_version(strace)
    closure = closure_of(strace)
    contents: list[tuple[str, bytes]] = []
    files: list[BundleFile] = []
    for name, source in _members(strace, closure):
        real = str(Path(source).resolve())
        try:
            data = Path(real).read_bytes()
        except OSError as exc:
            raise TraceError(f"bundling strace: reading {real}: {exc.strerror}") from exc
        contents.append((name, data))
        files.append(BundleFile(name, real, len(data)))
    return Bundle(
        data=make_tar(contents),
        files=tuple(files),
        architecture=host_architecture(),
        strace_version=version,
        launcher=launcher(closure),
    )


@functools.cache
def build_bundle() -> Bundle:
    """The host strace's bundle, built once per process."""
    return make_bundle(find_strace())


# -- using it -----------------------------------------------------------------


def require_traceable(bundle: Bundle, config: ImageConfig) -> None:
    """Refuse an image the bundled strace cannot run in (another OS).

    An image of another architecture is traced under emulation (the preflight has
    proven the engine runs it): the bundle, built for this host, runs natively in the
    container, and the guest's programs run as qemu-user processes, which strace
    follows like any other; qemu makes the guest's file calls itself, with the
    guest's paths, so the trace reads as a native one once qemu's own calls are
    dropped (`drop_emulator_calls`). Measured with Debian 12's strace 6.1 and
    qemu-user-static 7.2 tracing linux/arm64 images on linux/amd64."""
    if config.os and config.os != "linux":
        raise TraceError(f"tracing the image: its OS is {config.os!r}; only linux is supported")


# -- emulated runs -------------------------------------------------------------------

EMULATED_TIMEOUT_FACTOR = 10.0
"""Probe timeouts (readiness, batch exits, each probe) are multiplied by this for an
image run under emulation. Measured here (Debian 12 qemu-user-static 7.2, arm64 on a
2-core amd64 host): CPU-bound Python code runs about 15x slower than natively, its
imports 13-21x; whole tracing phases, which mostly wait on the engine and the
network, 1-2.5x. Start-up is what timeouts wait for, and it is mostly CPU."""

# qemu-user's own file calls, not the guest's (Debian's qemu-user-static 7.2, read
# from its strace output): every guest path is first looked up under its `-L` prefix
# /etc/qemu-binfmt/ARCH (`access`), it reads /proc/sys/vm/mmap_min_addr and
# /proc/self/maps for its memory layout and readlinks /proc/self/exe (a guest's own
# readlink of /proc/self/exe qemu answers without a call); its binary, registered
# with binfmt_misc's F flag, is opened by the kernel, never by path in the container.
EMULATOR_PREFIXES = ("/etc/qemu-binfmt/", "/usr/libexec/qemu-binfmt/", "/usr/bin/qemu-")
EMULATOR_PATHS = frozenset({"/proc/sys/vm/mmap_min_addr", "/proc/self/maps", "/proc/self/exe"})


def emulated(config: ImageConfig) -> bool:
    """Whether an image with `config` runs under emulation on this host."""
    return bool(config.architecture) and config.architecture != host_architecture()


def timeout_factor(config: ImageConfig) -> float:
    """How much longer probes wait for an image with `config` (1 when native)."""
    return EMULATED_TIMEOUT_FACTOR if emulated(config) else 1.0


def is_emulator_call(path: str) -> bool:
    return path in EMULATOR_PATHS or path.startswith(EMULATOR_PREFIXES)


def drop_emulator_calls(trace: Trace) -> Trace:
    """`trace` without qemu-user's own file calls (a new value)."""
    events = tuple(e for e in trace.events if not is_emulator_call(e.path))
    return replace(trace, events=events)


def wrap_command(
    bundle: Bundle,
    entrypoint: Sequence[str],
    cmd: Sequence[str],
    trace_path: str = TRACE_PATH,
    every_call: bool = False,
) -> list[str]:
    """The container entrypoint that runs `entrypoint + cmd` under the bundled strace.

    Use it as the whole entrypoint with an empty command: the engine then
    does not append the image's Cmd a second time. strace is PID 1 and looks
    the program up in the container's PATH. With `-o FILE PROG` strace blocks
    SIGTERM and SIGINT (its `-I never` default), so stopping the container
    ends in SIGKILL; nothing is lost by that, strace writes each call as it
    happens. `every_call` traces every system call, not only the file calls
    (`--seccomp`).
    """
    program = [*entrypoint, *cmd]
    if not program:
        raise TraceError("tracing the image: it has no entrypoint or command to run")
    return [*bundle.launcher, *strace_options(every_call), "-o", trace_path, "--", *program]
