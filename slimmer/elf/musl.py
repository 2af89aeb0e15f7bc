"""musl's dynamic loader rules (ldso/dynlink.c `load_library`): when a
program is musl's, which loaded object a name already is, the search order
for a name without a slash, and where a musl library's loader is."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Iterator

from slimmer.elf.ldcache import list_dir, read_file
from slimmer.elf.parse import EM_386, EM_AARCH64, EM_ARM, EM_RISCV, EM_X86_64, ElfInfo
from slimmer.elf.search import DST, Candidate, Obj, Search, Step, join
from slimmer.image.paths import is_file
from slimmer.model import TreeView

__all__ = ["already_loaded", "is_musl", "rtld", "steps"]

_MUSL_ARCH = {
    EM_X86_64: "x86_64",
    EM_386: "i386",
    EM_AARCH64: "aarch64",
    EM_ARM: "armhf",
    21: "powerpc64le",
    22: "s390x",
    EM_RISCV: "riscv64",
}
_MUSL_SELF = ("c.", "pthread.", "rt.", "m.", "dl.", "util.", "xnet.")


def is_musl(info: ElfInfo, tree: TreeView) -> bool:
    """musl when PT_INTERP is ld-musl-*, or, for a library, when it needs
    musl's libc.musl-* or the image has /lib/ld-musl-* and no glibc."""
    if info.interp is not None:
        return posixpath.basename(info.interp).startswith("ld-musl-")
    if any(n.startswith("libc.musl-") for n in info.needed):
        return True
    return any(n.startswith("ld-musl-") for n in list_dir(tree, "/lib")) and not is_file(
        tree, "/etc/ld.so.cache"
    )


def rtld(s: Search) -> Obj | None:
    """A musl library given as a root has no PT_INTERP: its libc is the
    image's /lib/ld-musl-$ARCH.so.1."""
    assert s.main is not None
    path = f"/lib/ld-musl-{_MUSL_ARCH.get(s.main.info.machine, '')}.so.1"
    probe = s.probe(path, check_class=False)
    if probe is None:
        return None
    return Obj(path, probe.real, probe.info, "/lib", names={path})


def already_loaded(name: str, loaded: Iterable[Obj], ldso: Obj | None) -> Obj | None:
    """Rule 1, musl: an object answers to the file name it was found under
    in a search, never to its SONAME, and "libc.*", "libm.*",
    "libpthread.*"... are musl's ld-musl itself (`ldso`)."""
    if ldso is not None and _is_musl_self(name, ldso):
        return ldso
    if "/" in name:
        return None
    return next((o for o in loaded if o.shortname == name), None)


def _is_musl_self(name: str, ldso: Obj) -> bool:
    if name == ldso.opened:
        return True
    return name.startswith("lib") and name[3:].startswith(_MUSL_SELF)


def steps(s: Search, name: str, loader: Obj | None) -> Iterator[Step]:
    """musl `load_library`: LD_LIBRARY_PATH (":" or newline; ignored when
    secure), then DT_RUNPATH or else DT_RPATH of the requester and of each
    object that loaded it (inherited, unlike glibc; a preload has no
    requester: `load_library(name, 0)`), then the lines of
    /etc/ld-musl-$ARCH.path next to the loader, or /lib:/usr/local/lib:
    /usr/lib. Only $ORIGIN is expanded; empty entries are skipped; no
    hwcaps, no cache, no class check."""
    llp = s.env.get("LD_LIBRARY_PATH", "")
    if llp and not s.secure:
        yield "LD_LIBRARY_PATH", _dirs(s, llp, None, name)
    obj: Obj | None = loader
    while obj is not None:
        paths = obj.info.runpath if obj.info.runpath is not None else obj.info.rpath
        if paths is not None:
            yield f"DT_RUNPATH/DT_RPATH of {obj.real}", _dirs(s, paths, obj, name)
        obj = obj.loader
    yield _sys_path(s, name)


def _sys_path(s: Search, name: str) -> Step:
    """The last step: /etc/ld-musl-$ARCH.path, under the prefix the loader
    is in, else musl's built-in default path."""
    ldso = s.rtld.opened if s.rtld is not None else "/lib/ld-musl.so.1"
    arch = posixpath.basename(ldso).removeprefix("ld-musl-").split(".so")[0]
    prefix = posixpath.dirname(posixpath.dirname(ldso)).rstrip("/")
    conf = f"{prefix}/etc/ld-musl-{arch}.path"
    if is_file(s.tree, conf):
        text = read_file(s.tree, conf).decode("utf-8", "replace")
        return conf, _dirs(s, text, None, name)
    return "musl's default path", _dirs(s, "/lib:/usr/local/lib:/usr/lib", None, name)


def _dirs(s: Search, text: str, owner: Obj | None, name: str) -> list[Candidate]:
    """A musl search path: entries split at ":" or newlines, empty ones
    skipped, only $ORIGIN expanded (for `owner`), no CPU subdirectories."""
    dirs = [d for d in re.split(r"[:\n]+", text) if d]
    if owner is not None:
        dirs = [
            DST.sub(lambda m: owner.origin if "ORIGIN" in m.group(0) else m.group(0), d)
            for d in dirs
        ]
    return [Candidate(join(s.workdir, f"{d.rstrip('/')}/{name}")) for d in dirs]
