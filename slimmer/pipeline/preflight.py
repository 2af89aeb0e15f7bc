"""Before anything runs: can the engine run this image at all?

Two questions, answered from the image's config and merged tree alone, so a
broken image is refused with one line before a container exists:

- **Platform.** The image's OS/architecture must be the engine's, or one the
  engine runs under emulation (qemu-user through binfmt_misc, found out by
  `emulation.can_emulate`): otherwise the engine would fail to start it ("exec
  format error"). The tracer, built for the host, runs natively in an emulated
  container and traces qemu, which makes the guest's file calls itself.
- **Program.** The first word of Entrypoint + Cmd is looked up as runc does:
  a name with a `/` is taken as is (relative to WorkingDir); a bare name is
  searched in the config's PATH (the engine's default PATH when the image sets
  none). The file must exist (symlinks followed inside the image root) and
  carry an execute bit. The kernel then runs a script's `#!` interpreter
  (first word of the first line, up to four levels of scripts) and an ELF
  file's `PT_INTERP` (the dynamic loader); each of those must exist too.

`slim IMAGE` checks the image it has read whole anyway. `slim profile` reads
the image only to check it (`check_engine_image`): the platform first, from the
engine's config, then the program, from a read that keeps only the bytes of the
files in the directories programs are looked up in (`program_dirs`); when the
program leads elsewhere, the saved archive is read again keeping every file's
bytes.
"""

from __future__ import annotations

import posixpath
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from slimmer.elf.parse import is_elf, parse_elf_at
from slimmer.engine_api import ContainerEngine
from slimmer.errors import ImageUnrunnable
from slimmer.image.filetree import WantContent, keep_all
from slimmer.image.paths import search_path, which
from slimmer.image.reader import EngineSaver, Image, open_image
from slimmer.model import ImageConfig, ImageRef, Progress, TreeView
from slimmer.pipeline.emulation import can_emulate, how_to_enable
from slimmer.pipeline.transfers import metered_saver

MAX_SCRIPT_DEPTH = 4  # the kernel's limit on nested #! interpreters (binfmt_script)
SHEBANG_BYTES = 256  # the kernel reads this much of a script for its #! line


def check_runnable(image: Image, engine: ContainerEngine) -> None:
    """Refuse (`ImageUnrunnable`, exit 6) an image the engine cannot run as configured."""
    check_platform_of(str(image.ref), image.config, engine)
    check_program(str(image.ref), image.config, image.tree)


def check_platform_of(name: str, config: ImageConfig, engine: ContainerEngine) -> None:
    """The platform half of `check_runnable`: from the config alone."""
    check_platform(name, config, engine.platform(), _emulates(engine))


def check_engine_image(
    engine: ContainerEngine,
    ref: ImageRef,
    config: ImageConfig,
    progress: Progress = lambda _: None,
) -> None:
    """`check_runnable` for the engine image `ref` (whose config the engine gave as
    `config`), read here for it: cheaply first, whole when the program needs it."""
    name = str(ref)
    check_platform(name, config, engine.platform(), _emulates(engine))  # before any save
    with tempfile.TemporaryDirectory(prefix="slimmer-preflight-") as tmp:
        work = Path(tmp)
        saved = work / "image.tar"  # for a second read, without a second save
        progress("reading the image")
        save = metered_saver(engine, progress, keep=saved)
        try:
            _read_and_check(name, ref, want_program_dirs(config), work, save, progress)
        except _BytesNotKept:  # a link or a `#!` led out of `program_dirs`
            again = ImageRef("docker-archive", str(saved))
            _read_and_check(name, again, keep_all, work, None, progress)


def _read_and_check(
    name: str,
    ref: ImageRef,
    want: WantContent,
    work: Path,
    save: EngineSaver | None,
    progress: Progress,
) -> None:
    with open_image(ref, save=save, want=want, workdir=work, progress=progress) as image:
        check_program(name, image.config, image.tree)


def program_dirs(config: ImageConfig) -> frozenset[str]:
    """Where the entrypoint program and its `#!` interpreters usually are: every PATH
    directory (the engine's default PATH when the image sets none) and the directory
    of a program named with a `/`, relative ones taken from WorkingDir."""
    workdir = config.working_dir or "/"
    dirs = [d or "." for d in search_path(config.env).split(":")]
    argv = [*config.entrypoint, *config.cmd]
    if argv and "/" in argv[0]:
        dirs.append(posixpath.dirname(argv[0]) or ".")
    return frozenset(posixpath.normpath(posixpath.join(workdir, d)) for d in dirs)


def want_program_dirs(config: ImageConfig) -> WantContent:
    """The reader keeps the bytes of the files directly in `program_dirs(config)`."""
    dirs = program_dirs(config)
    return lambda path: posixpath.dirname(path) in dirs


class _BytesNotKept(Exception):
    """Internal: the check needs the bytes of a file the reader did not keep."""


Emulates = Callable[[str, str], bool]


def _emulates(engine: ContainerEngine) -> Emulates:
    return lambda os_, arch: can_emulate(engine, os_, arch)


def _never(os_: str, arch: str) -> bool:
    return False


def check_platform(
    name: str, config: ImageConfig, engine: tuple[str, str], emulates: Emulates = _never
) -> None:
    """The image's OS and architecture (when it names them) must be the engine's, or
    one `emulates` says the engine runs under emulation (asked only then)."""
    image_os, image_arch = config.os or engine[0], config.architecture or engine[1]
    if (image_os, image_arch) == engine or emulates(image_os, image_arch):
        return
    raise ImageUnrunnable(
        f"checking {name}: it is built for {image_os}/{image_arch} but the engine runs "
        f"{engine[0]}/{engine[1]} and cannot run {image_os}/{image_arch} under emulation; "
        f"to slim it, {how_to_enable(image_os, image_arch)}"
    )


def check_program(name: str, config: ImageConfig, tree: TreeView) -> None:
    """The entrypoint program, its `#!` interpreters and its ELF loader must exist."""
    argv = [*config.entrypoint, *config.cmd]
    if not argv:
        raise ImageUnrunnable(f"checking {name}: it has no entrypoint or command to run")
    workdir, search = config.working_dir or "/", search_path(config.env)
    if "/" in argv[0]:  # no lookup: execve's own refusal, below, says more
        named = posixpath.normpath(posixpath.join(workdir, argv[0]))
        path = named if tree.resolve(named).exists else None
    else:
        path = which(tree, argv[0], search, workdir)
    if path is None:
        where = f"not found in PATH {search}" if "/" not in argv[0] else "does not exist"
        raise ImageUnrunnable(
            f"checking {name}: its entrypoint program {argv[0]!r} {where} in the image"
        )
    _check_executable(name, path, tree, workdir, "entrypoint program", 0)


def _check_executable(
    name: str, path: str, tree: TreeView, workdir: str, what: str, depth: int
) -> None:
    """`path` (a `what`) must be an executable file, and what the kernel runs for it too."""
    resolved = tree.resolve(path)
    entry = resolved.entry
    if entry is None or not entry.is_regular:
        why = resolved.error or ("is not a regular file" if entry else "does not exist")
        raise ImageUnrunnable(f"checking {name}: its {what} {path} {why} in the image")
    if not entry.mode & 0o111:
        raise ImageUnrunnable(f"checking {name}: its {what} {path} is not executable")
    if entry.size and entry.content is None:
        raise _BytesNotKept(resolved.path)
    head = tree.read_bytes(resolved.path, SHEBANG_BYTES)
    interpreter = shebang(head)
    if interpreter is not None:
        if depth >= MAX_SCRIPT_DEPTH:
            raise ImageUnrunnable(f"checking {name}: {path}: too many levels of #! scripts")
        target = posixpath.normpath(posixpath.join(workdir, interpreter))
        _check_executable(name, target, tree, workdir, f"interpreter (#! of {path})", depth + 1)
    elif is_elf(head):
        _check_loader(name, path, resolved.path, tree)


def shebang(head: Sequence[int] | bytes) -> str | None:
    """The interpreter a `#!` line names (its first word), or None for no `#!` line."""
    data = bytes(head)
    if not data.startswith(b"#!"):
        return None
    words = data[2:].split(b"\n", 1)[0].replace(b"\t", b" ").split()
    return words[0].decode("utf-8", "surrogateescape") if words else None


def _check_loader(name: str, path: str, real: str, tree: TreeView) -> None:
    """A dynamically linked program's PT_INTERP (its loader) must exist."""
    info = parse_elf_at(lambda offset, size: tree.read_bytes(real, size, offset))
    if info.interp and not tree.resolve(info.interp).exists:
        raise ImageUnrunnable(
            f"checking {name}: its program {path} needs the loader {info.interp}, "
            "which does not exist in the image"
        )
