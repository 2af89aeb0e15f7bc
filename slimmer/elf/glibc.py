"""glibc's search order for a DT_NEEDED or preloaded name (elf/dl-load.c
`_dl_map_object`, as of glibc 2.36, not lddtree): the DT_RPATH chain,
LD_LIBRARY_PATH, DT_RUNPATH, /etc/ld.so.cache, the default directories
(unless DF_1_NODEFLIB); which loaded object a name already is; and
LD_PRELOAD in a setuid program."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from slimmer.elf.ldcache import FLAG_ELF, FLAG_TYPE_ELF_LIBC6, CacheEntry
from slimmer.elf.search import Candidate, Found, Obj, Search, Step

__all__ = ["already_loaded", "secure_preload", "steps"]


def already_loaded(name: str, loaded: Iterable[Obj]) -> Obj | None:
    """Rule 1 (`_dl_map_object`, before any search): an object answers to
    the path it was opened under, every name it was requested by, and its
    DT_SONAME."""
    return next(
        (
            o
            for o in loaded
            if name in o.names or (o.info.soname is not None and o.info.soname == name)
        ),
        None,
    )


def steps(s: Search, name: str, loader: Obj) -> Iterator[Step]:
    """glibc `_dl_map_object`, for a name without a slash:
    2. DT_RPATH of the requester, then of the object that loaded it, and
       on up to the executable (then the executable's own) -- only when
       the requester has no DT_RUNPATH. An object with a DT_RUNPATH has
       its DT_RPATH ignored (elf/get-dynamic-info.h).
    3. LD_LIBRARY_PATH (separated by ":" or ";"), not for setuid/setgid.
    4. DT_RUNPATH of the requester only: never inherited.
    5. /etc/ld.so.cache (see `_cache_candidates`).
    6. The default directories, unless the requester has DF_1_NODEFLIB.
    """
    if loader.info.runpath is None:
        for owner in _rpath_owners(s, loader):
            if owner.info.rpath is not None and owner.info.runpath is None:
                yield (
                    f"DT_RPATH of {owner.real}",
                    s.dirs(s.split(owner.info.rpath, ":", owner), name),
                )
    llp = s.env.get("LD_LIBRARY_PATH", "")
    if llp and not s.secure and s.main is not None:
        yield "LD_LIBRARY_PATH", s.dirs(s.split(llp, ":;", s.main), name)
    if loader.info.runpath is not None:
        yield (
            f"DT_RUNPATH of {loader.real}",
            s.dirs(s.split(loader.info.runpath, ":", loader), name),
        )
    yield from _cache_step(s, name, loader)
    if not loader.info.nodeflib:
        yield "default directories", s.dirs(list(s.layout.default_dirs), name)


def _rpath_owners(s: Search, loader: Obj) -> list[Obj]:
    """Rule 2's chain: the requester, the object that loaded it, and so on
    up; then the executable, if not already on it."""
    chain: list[Obj] = []
    obj: Obj | None = loader
    while obj is not None:
        chain.append(obj)
        obj = obj.loader
    if s.main is not None and s.main not in chain:
        chain.append(s.main)
    return chain


def _cache_step(s: Search, name: str, loader: Obj) -> Iterator[Step]:
    """Rule 5's step. With no usable ld.so.cache, the /etc/ld.so.conf
    directories are searched in its place (glibc does not; warned)."""
    entries, problem = s.image.ld_cache()
    if problem:
        s.warn("/etc/ld.so.cache", problem)
    if entries is None:
        conf = s.image.conf_dirs()
        if conf:
            s.warn(
                "/etc/ld.so.cache",
                "missing; the /etc/ld.so.conf directories were "
                "searched in its place, which glibc itself does not do",
            )
            yield (
                "/etc/ld.so.conf (no ld.so.cache)",
                s.dirs(_nodeflib_filter(s, list(conf), loader), name),
            )
        return
    yield "ld.so.cache", _cache_candidates(s, entries, name, loader)


def _cache_candidates(
    s: Search, entries: tuple[CacheEntry, ...], name: str, loader: Obj
) -> list[Candidate]:
    """Rule 5 (elf/dl-cache.c): entries for `name` whose flags fit the
    program (ELF libc6 of its architecture, or plain ELF). The first
    plain entry is what a baseline CPU gets; glibc-hwcaps entries are
    CPU variants. If the file is gone or of the wrong class, glibc goes
    on to the default directories. With DF_1_NODEFLIB, entries inside
    the default directories are skipped."""
    want = s.layout.cache_flags
    fits = [
        e
        for e in entries
        if e.name == name
        and (
            e.flags in (FLAG_ELF, want)
            if want is not None
            else e.flags & 0xFF == FLAG_TYPE_ELF_LIBC6
        )
    ]
    picked = [Candidate(e.path, _cache_variant(e.path)) for e in fits if e.hwcap]
    picked += [Candidate(e.path) for e in fits if not e.hwcap][:1]
    allowed = _nodeflib_filter(s, [c.path for c in picked], loader)
    return [c for c in picked if c.path in allowed]


def _nodeflib_filter(s: Search, paths: list[str], loader: Obj) -> list[str]:
    """DF_1_NODEFLIB: no path inside the default directories."""
    if not loader.info.nodeflib:
        return paths
    system = tuple(d.rstrip("/") + "/" for d in s.layout.default_dirs)
    return [p for p in paths if not (p + "/").startswith(system)]


def _cache_variant(path: str) -> str:
    match = re.search(r"glibc-hwcaps/[^/]+", path)
    return match.group(0) if match else "ld.so.cache hwcap entry"


def secure_preload(s: Search, name: str) -> Found | None:
    """LD_PRELOAD of a setuid/setgid glibc program: only the default
    directories, and only a library that is itself setuid."""
    only = iter(
        [("default directories (setuid program)", s.dirs(list(s.layout.default_dirs), name))]
    )
    found = s.search(name, only)
    if found is None:
        return None
    entry = s.tree.resolve(found.probe.real).entry
    return found if entry is not None and entry.is_setuid else None
