"""The glibc profile's `when.imports` rules on the real files of a Debian fixture image.

A stock Debian base holds programs and libraries that import `iconv_open` only to
convert between UTF-8 and the locale's charset (bash, tar, diff, libstdc++…): the
profile lists them in `imports_except`, so keeping them must not keep the 8 MB of
gconv converters. `/usr/bin/iconv` itself converts any charset it is given (the
`when.kept` rule). gettext-base's `envsubst` imports it too and is on no list: it
is excused only when the trace ran it without loading a converter module
(`imports_ran_without`) in a C or UTF-8 locale. Nothing in the base calls
`pthread_cancel`, `pthread_exit` or `backtrace`, so `libgcc_s.so.1` is kept only when
the app does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from slimmer.elf.imports import imports_in_tree
from slimmer.engine import Engine, saver
from slimmer.image.filetree import keep_all
from slimmer.image.reader import open_image
from slimmer.model import ImageConfig, TreeView
from slimmer.plan.keep import ProfileContext
from slimmer.plan.profiles import apply_profiles, load_profiles

pytestmark = pytest.mark.engine

GLIBC = [p for p in load_profiles() if p.name == "glibc"]
TRIPLET = "/usr/lib/x86_64-linux-gnu"
CONVERTER = f"{TRIPLET}/gconv/ISO8859-1.so"


def _elf_files(tree: TreeView) -> list[str]:
    return sorted(e.path for e in tree if e.is_regular and e.is_elf)


def _glibc_adds(
    tree: TreeView,
    kept: list[str],
    runs: dict[str, frozenset[str]] | None = None,
    env: tuple[str, ...] = (),
) -> dict[str, str]:
    config = ImageConfig({"config": {"Env": list(env)}})
    ctx = ProfileContext(
        tree, config, frozenset(), frozenset(runs or {}), frozenset(kept), runs or {}
    )
    adds, _ = apply_profiles(GLIBC, ctx)
    return {a.path: a.reason.detail for a in adds}


def test_base_importers_are_no_evidence(
    engine: Engine, fixture_images: dict[str, str], tmp_path: Path
) -> None:
    tag = fixture_images["root-batch"]
    with open_image(tag, save=saver(engine), want=keep_all, workdir=tmp_path) as image:
        tree = image.tree
        importers = [p for p in _elf_files(tree) if "iconv_open" in imports_in_tree(tree, p).names]
        assert {"/usr/bin/bash", "/usr/bin/iconv", "/usr/bin/tar"} <= set(importers)
        rule = next(r for r in GLIBC[0].rules if r.when is not None and r.when.imports_except)
        assert rule.when is not None
        unexcepted = [p for p in importers if not any(g.match(p) for g in rule.when.imports_except)]
        assert unexcepted == ["/usr/bin/iconv"]
        base = [f"{TRIPLET}/libc.so.6", *importers]
        base.remove("/usr/bin/iconv")
        added = _glibc_adds(tree, base)
        assert CONVERTER not in added and f"{TRIPLET}/libgcc_s.so.1" not in added
        with_iconv = _glibc_adds(tree, [*base, "/usr/bin/iconv"])
        assert with_iconv[CONVERTER].endswith("applies because /usr/bin/iconv is kept")


def test_envsubst_is_evidence_until_a_run_shows_otherwise(
    engine: Engine, fixture_images: dict[str, str], tmp_path: Path
) -> None:
    """The real envsubst of nginx-envsubst: kept and never run, it keeps the converters;
    run without loading a converter module (its UTF-8 locale set-up read the index) it
    does not, unless the locale's charset is one glibc does not convert itself; a run
    that loaded a module keeps them."""
    tag = fixture_images["nginx-envsubst"]
    with open_image(tag, save=saver(engine), want=keep_all, workdir=tmp_path) as image:
        tree = image.tree
        envsubst = "/usr/bin/envsubst"
        assert "iconv_open" in imports_in_tree(tree, envsubst).names
        kept = [f"{TRIPLET}/libc.so.6", envsubst]
        index = f"{TRIPLET}/gconv/gconv-modules.cache"
        quiet = {envsubst: frozenset({envsubst, index})}
        assert _glibc_adds(tree, kept)[CONVERTER].endswith(f"{envsubst} imports iconv_open")
        assert CONVERTER not in _glibc_adds(tree, kept, quiet)
        assert CONVERTER not in _glibc_adds(tree, kept, quiet, ("LANG=C.UTF-8",))
        assert CONVERTER in _glibc_adds(tree, kept, quiet, ("LANG=fr_FR.ISO-8859-15",))
        assert CONVERTER in _glibc_adds(tree, kept, {envsubst: quiet[envsubst] | {CONVERTER}})
