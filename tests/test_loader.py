"""slimmer.elf.loader: one test (or a few) per loader rule.

Two kinds of cases:
* synthetic trees: ELF files written by hand (`make_elf`) into a `MemTree`
  laid out like Debian 12 (merged /usr, /lib64/ld-linux-x86-64.so.2 a link);
* host cross-checks: programs built with the host's gcc into tmp_path, copied
  into a `MemTree` at the same paths along with the host's ld.so, libc and
  /etc/ld.so.cache, resolved, then *run* with the host's real glibc loader,
  which prints the path of every object it loaded (dl_iterate_phdr). The
  resolver's answer must be exactly that list.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from slimmer.elf.deps import deps_report
from slimmer.elf.loader import Closure, closure, parse_ld_so_cache, read_ld_so_conf
from slimmer.elf.parse import DF_1_NODEFLIB, DF_1_PIE
from slimmer.report.deps_view import SCHEMA as DEPS_SCHEMA
from slimmer.report.deps_view import render_text, to_json
from tests.memtree import (
    HOST_LDSO,
    HOST_LIBC,
    Builder,
    File,
    Link,
    MemTree,
    Spec,
    add_host_dir,
    add_host_path,
    dynstr_offset,
    make_elf,
    patch_dynamic,
    run_host,
)
from tests.needs import F, needs, require, require_paths, require_root

DATA = Path(__file__).parent / "data" / "loader"
ML = "/usr/lib/x86_64-linux-gnu"
LDSO = "/lib64/ld-linux-x86-64.so.2"
REAL_LDSO = f"{ML}/ld-linux-x86-64.so.2"

needs_gcc = needs("gcc")


def needs_host_glibc(fn: F) -> F:
    """Fail (not skip) unless the host is an x86-64 glibc system like the images."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        require_paths(HOST_LDSO, HOST_LIBC, "/etc/ld.so.cache")
        return fn(*args, **kwargs)

    return run  # type: ignore[return-value]


# ---------------------------------------------------------------------------
# Synthetic Debian-like trees


def lib(
    *needed: str,
    soname: str | None = None,
    rpath: str | None = None,
    runpath: str | None = None,
    flags_1: int | None = None,
) -> bytes:
    return make_elf(needed=needed, soname=soname, rpath=rpath, runpath=runpath, flags_1=flags_1)


def exe(
    *needed: str,
    rpath: str | None = None,
    runpath: str | None = None,
    interp: str = LDSO,
    flags_1: int = DF_1_PIE,
) -> bytes:
    return make_elf(
        interp=interp, needed=[*needed, "libc.so.6"], rpath=rpath, runpath=runpath, flags_1=flags_1
    )


def debian(files: Mapping[str, Spec]) -> MemTree:
    """A Debian 12 skeleton: merged /usr, ld.so reached through /lib64."""
    base: dict[str, Spec] = {
        "/lib": Link("usr/lib"),
        "/lib64": Link("usr/lib64"),
        "/bin": Link("usr/bin"),
        "/usr/lib64/ld-linux-x86-64.so.2": Link("../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
        REAL_LDSO: lib(soname="ld-linux-x86-64.so.2"),
        f"{ML}/libc.so.6": lib("ld-linux-x86-64.so.2", soname="libc.so.6"),
    }
    return MemTree({**base, **files})


def edge_for(c: Closure, name: str, requester: str | None = None) -> list[str]:
    """The paths `name` was opened under (primary first), for a requester."""
    return [
        e.path
        for e in c.edges
        if e.name == name and not e.variant and (requester is None or e.requester == requester)
    ]


def targets(c: Closure, name: str) -> list[str]:
    return [e.target for e in c.edges if e.name == name]


def test_debian_program_with_merged_usr_keeps_every_symlink() -> None:
    tree = debian(
        {
            "/usr/bin/app": exe("libfoo.so.1"),
            f"{ML}/libfoo.so.1": Link("libfoo.so.1.2.3"),
            f"{ML}/libfoo.so.1.2.3": lib(soname="libfoo.so.1"),
        }
    )
    c = closure(tree, ["/bin/app"], {})
    assert set(c.files) == {
        "/bin",
        "/usr/bin/app",
        "/lib64",
        "/usr/lib64/ld-linux-x86-64.so.2",
        REAL_LDSO,
        "/lib",
        f"{ML}/libfoo.so.1",
        f"{ML}/libfoo.so.1.2.3",
        f"{ML}/libc.so.6",
    }
    foo = next(e for e in c.edges if e.name == "libfoo.so.1")
    assert foo.path == "/lib/x86_64-linux-gnu/libfoo.so.1"
    assert foo.chain == ("/lib", f"{ML}/libfoo.so.1")
    assert foo.reason == ("DT_NEEDED libfoo.so.1 of /usr/bin/app, found via default directories")
    assert c.missing == () and c.warnings == ()
    assert c.reasons(f"{ML}/libfoo.so.1.2.3") == (foo.reason,)


def test_interpreter_is_loaded_and_reused_by_soname() -> None:
    """libc.so.6 needs ld-linux-x86-64.so.2: the interpreter, never searched."""
    c = closure(debian({"/usr/bin/app": exe()}), ["/usr/bin/app"], {})
    interp = next(e for e in c.edges if e.kind == "PT_INTERP")
    assert interp.target == REAL_LDSO and interp.path == LDSO
    reuse = next(e for e in c.edges if e.name == "ld-linux-x86-64.so.2")
    assert reuse.via == "already loaded" and reuse.target == REAL_LDSO


def test_reuse_by_soname_beats_search() -> None:
    """Rule 1: an object answers to its DT_SONAME even if it was loaded under
    another name, so the copy in the default dirs is never opened."""
    tree = debian(
        {
            "/usr/bin/app": exe("libfirst.so", "libuser.so", rpath="/opt/a"),
            "/opt/a/libfirst.so": lib(soname="libshared.so.1"),
            "/opt/a/libuser.so": lib("libshared.so.1"),
            f"{ML}/libshared.so.1": lib(soname="libshared.so.1"),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert targets(c, "libshared.so.1") == ["/opt/a/libfirst.so"]
    assert f"{ML}/libshared.so.1" not in c.files


def test_same_file_under_two_names_is_one_object() -> None:
    tree = debian(
        {
            "/usr/bin/app": exe("liba.so", "libb.so", rpath="/opt/a"),
            "/opt/a/liba.so": lib(soname="liba.so"),
            "/opt/a/libb.so": Link("liba.so"),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert targets(c, "libb.so") == ["/opt/a/liba.so"]
    assert "/opt/a/libb.so" in c.files  # the link was opened: it is needed


def test_rpath_is_inherited_down_the_chain() -> None:
    """Rule 2: DT_RPATH of the requester, then of whoever loaded it, up to
    the executable."""
    tree = debian(
        {
            "/usr/bin/app": exe("liba.so", rpath="/opt/a"),
            "/opt/a/liba.so": lib("libb.so"),
            "/opt/a/libb.so": lib(),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    b = next(e for e in c.edges if e.name == "libb.so")
    assert b.target == "/opt/a/libb.so" and b.via == "DT_RPATH of /usr/bin/app"


def test_runpath_is_not_inherited() -> None:
    """Rule 4 (lddtree.py gets this wrong): DT_RUNPATH only serves the
    object's own DT_NEEDED."""
    tree = debian(
        {
            "/usr/bin/app": exe("liba.so", runpath="/opt/a"),
            "/opt/a/liba.so": lib("libb.so"),
            "/opt/a/libb.so": lib(),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert [(m.name, m.requester) for m in c.missing] == [("libb.so", "/opt/a/liba.so")]
    assert "/opt/a/libb.so" not in c.files


def test_requester_with_runpath_skips_the_whole_rpath_chain() -> None:
    tree = debian(
        {
            "/usr/bin/app": exe("liba.so", rpath="/opt/a"),
            "/opt/a/liba.so": lib("libb.so", runpath="/nowhere"),
            "/opt/a/libb.so": lib(),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert [m.name for m in c.missing] == ["libb.so"]


def test_rpath_of_an_object_with_runpath_is_ignored() -> None:
    tree = debian(
        {
            "/usr/bin/app": exe("liba.so", rpath="/opt/a", runpath="/nowhere"),
            "/opt/a/liba.so": lib(),
        }
    )
    assert [m.name for m in closure(tree, ["/usr/bin/app"], {}).missing] == ["liba.so"]


def test_search_order_rpath_then_ld_library_path_then_runpath() -> None:
    def tree(rpath: str | None = None, runpath: str | None = None) -> MemTree:
        return debian(
            {
                "/usr/bin/app": exe("libx.so", rpath=rpath, runpath=runpath),
                "/r/libx.so": lib(),
                "/llp/libx.so": lib(),
                "/run/libx.so": lib(),
            }
        )

    env = {"LD_LIBRARY_PATH": "/nothing;/llp"}  # ";" separates too
    assert edge_for(closure(tree(rpath="/r"), ["/usr/bin/app"], env), "libx.so") == ["/r/libx.so"]
    assert edge_for(closure(tree(runpath="/run"), ["/usr/bin/app"], env), "libx.so") == [
        "/llp/libx.so"
    ]
    assert edge_for(closure(tree(runpath="/run"), ["/usr/bin/app"], {}), "libx.so") == [
        "/run/libx.so"
    ]


def test_ld_library_path_ignored_for_setuid_and_setgid() -> None:
    for mode in (0o4755, 0o2755):
        tree = debian({"/usr/bin/app": File(exe("libx.so"), mode=mode), "/llp/libx.so": lib()})
        c = closure(tree, ["/usr/bin/app"], {"LD_LIBRARY_PATH": "/llp"})
        assert [m.name for m in c.missing] == ["libx.so"]
    plain = debian({"/usr/bin/app": exe("libx.so"), "/llp/libx.so": lib()})
    assert closure(plain, ["/usr/bin/app"], {"LD_LIBRARY_PATH": "/llp"}).missing == ()


def test_origin_of_the_executable_is_its_real_directory() -> None:
    tree = debian(
        {
            "/usr/bin/app": Link("/opt/app/bin/app"),
            "/opt/app/bin/app": exe("libx.so", runpath="$ORIGIN/../lib"),
            "/opt/app/lib/libx.so": lib(),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert edge_for(c, "libx.so") == ["/opt/app/bin/../lib/libx.so"]
    assert {"/usr/bin/app", "/opt/app/bin/app", "/opt/app/lib/libx.so"} <= set(c.files)


def test_origin_of_a_library_is_the_directory_it_was_opened_under() -> None:
    """lddtree.py resolves the link first; glibc uses the search directory
    the library was found in (its l_name), links and all."""
    tree = debian(
        {
            "/usr/bin/app": exe("libfoo.so", rpath="/opt/d1"),
            "/opt/d1/libfoo.so": Link("../real/libfoo.so"),
            "/opt/real/libfoo.so": lib("libdep.so", runpath="$ORIGIN/sub"),
            "/opt/d1/sub/libdep.so": lib(),
            "/opt/real/sub/libdep.so": lib(),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert targets(c, "libdep.so") == ["/opt/d1/sub/libdep.so"]
    assert "/opt/real/sub/libdep.so" not in c.files


def test_lib_token_debian_multiarch() -> None:
    """Debian's glibc expands $LIB to "lib/x86_64-linux-gnu" (measured:
    RPATH /opt/$LIB searches /opt/lib/x86_64-linux-gnu); lddtree leaves it."""
    tree = debian(
        {
            "/usr/bin/app": exe("libx.so", runpath="/opt/${LIB}:/o2/$LIB/"),
            "/o2/lib/x86_64-linux-gnu/libx.so": lib(),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert edge_for(c, "libx.so") == ["/o2/lib/x86_64-linux-gnu/libx.so"]


def test_lib_token_lib64_and_plain_layouts() -> None:
    fedora = MemTree(
        {
            "/usr/lib64/libc.so.6": lib(soname="libc.so.6"),
            "/lib64": Link("usr/lib64"),
            LDSO: lib(),
            "/usr/bin/app": exe("libx.so", runpath="/opt/$LIB"),
            "/opt/lib64/libx.so": lib(),
        }
    )
    c = closure(fedora, ["/usr/bin/app"], {})
    assert edge_for(c, "libx.so") == ["/opt/lib64/libx.so"]
    assert edge_for(c, "libc.so.6") == ["/lib64/libc.so.6"]
    plain = MemTree(
        {
            "/lib/libc.so.6": lib(),
            LDSO: lib(),
            "/usr/bin/app": exe("libx.so", runpath="/opt/$LIB"),
            "/opt/lib/libx.so": lib(),
        }
    )
    assert edge_for(closure(plain, ["/usr/bin/app"], {}), "libx.so") == ["/opt/lib/libx.so"]


def test_platform_token_and_unknown_tokens() -> None:
    tree = debian(
        {
            "/usr/bin/app": exe("libx.so", "liby.so", runpath="/p/$PLATFORM:/q/$PLATFORMX"),
            "/p/x86_64/libx.so": lib(),
            "/q/$PLATFORMX/liby.so": lib(),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert edge_for(c, "libx.so") == ["/p/x86_64/libx.so"]
    assert edge_for(c, "liby.so") == ["/q/$PLATFORMX/liby.so"]


def test_relative_and_empty_entries_are_relative_to_the_working_directory() -> None:
    tree = debian(
        {
            "/usr/bin/app": exe("liba.so", "libb.so", runpath="rel"),
            "/srv/rel/liba.so": lib(),
            "/srv/libb.so": lib(),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {"LD_LIBRARY_PATH": "/x::/y"}, workdir="/srv")
    assert edge_for(c, "liba.so") == ["/srv/rel/liba.so"]
    assert edge_for(c, "libb.so") == ["/srv/libb.so"]


def test_hwcaps_every_variant_is_kept_baseline_is_primary() -> None:
    d = "/opt/a"
    tree = debian(
        {
            "/usr/bin/app": exe("libx.so", runpath=d),
            f"{d}/glibc-hwcaps/x86-64-v3/libx.so": lib(),
            f"{d}/glibc-hwcaps/x86-64-v2/libx.so": lib("libv2only.so"),
            f"{d}/libx.so": lib(),
            f"{ML}/libv2only.so": lib(),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert edge_for(c, "libx.so") == [f"{d}/libx.so"]
    variants = {e.variant: e.target for e in c.edges if e.name == "libx.so" and e.variant}
    assert variants == {
        "glibc-hwcaps/x86-64-v3": f"{d}/glibc-hwcaps/x86-64-v3/libx.so",
        "glibc-hwcaps/x86-64-v2": f"{d}/glibc-hwcaps/x86-64-v2/libx.so",
    }
    assert f"{ML}/libv2only.so" in c.files  # a variant's own dependencies count
    assert any("CPU variant glibc-hwcaps/x86-64-v3" in e.reason for e in c.edges)


def test_hwcaps_variant_in_an_earlier_directory_is_kept_with_the_later_base() -> None:
    tree = debian(
        {
            "/usr/bin/app": exe("libx.so", runpath="/opt/a"),
            "/opt/a/glibc-hwcaps/x86-64-v4/libx.so": lib(),
            f"{ML}/libx.so": lib(),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert edge_for(c, "libx.so") == ["/lib/x86_64-linux-gnu/libx.so"]
    assert "/opt/a/glibc-hwcaps/x86-64-v4/libx.so" in c.files


def test_hwcaps_variant_only_is_used_with_a_warning() -> None:
    tree = debian(
        {
            "/usr/bin/app": exe("libx.so", runpath="/opt/a"),
            "/opt/a/glibc-hwcaps/x86-64-v3/libx.so": lib(),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert c.missing == ()
    assert "/opt/a/glibc-hwcaps/x86-64-v3/libx.so" in c.files
    assert any("x86-64-v3" in w.message for w in c.warnings)


def test_legacy_hwcap_subdirectories_are_variants() -> None:
    tree = debian(
        {
            "/usr/bin/app": exe("libx.so", runpath="/opt/a"),
            "/opt/a/tls/x86_64/libx.so": lib(),
            "/opt/a/libx.so": lib(),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert edge_for(c, "libx.so") == ["/opt/a/libx.so"]
    assert "/opt/a/tls/x86_64/libx.so" in c.files


@pytest.mark.parametrize("other", [dict(elf_class=32, machine=3), dict(machine=183)])
def test_wrong_class_or_machine_is_skipped_and_search_goes_on(other: dict[str, int]) -> None:
    tree = debian(
        {
            "/usr/bin/app": exe("libx.so", rpath="/opt/a"),
            "/opt/a/libx.so": make_elf(**other),  # type: ignore[arg-type]
            f"{ML}/libx.so": lib(),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert targets(c, "libx.so") == [f"{ML}/libx.so"]
    assert "/opt/a/libx.so" not in c.files


def test_nodeflib_skips_default_dirs_and_cached_system_entries(tmp_path: Path) -> None:
    cache = _ldconfig_cache(tmp_path, {"/opt/conf/libc2.so": "libc2.so"})
    tree = debian(
        {
            "/usr/bin/app": exe("libdef.so", "libc2.so", flags_1=DF_1_PIE | DF_1_NODEFLIB),
            f"{ML}/libdef.so": lib(),
            "/opt/conf/libc2.so": lib(soname="libc2.so"),
            "/etc/ld.so.cache": cache,
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert edge_for(c, "libc2.so") == ["/opt/conf/libc2.so"]
    assert sorted(m.name for m in c.missing) == ["libc.so.6", "libdef.so"]


def test_ld_so_cache_path_is_opened_as_written(tmp_path: Path) -> None:
    cache = _ldconfig_cache(tmp_path, {"/opt/conf/libc2.so.1": "libc2.so.1"})
    tree = debian(
        {
            "/usr/bin/app": exe("libc2.so.1"),
            "/opt/link": Link("conf"),
            "/opt/conf/libc2.so.1": lib(soname="libc2.so.1"),
            "/etc/ld.so.cache": cache,
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    edge = next(e for e in c.edges if e.name == "libc2.so.1")
    assert edge.via == "ld.so.cache" and edge.target == "/opt/conf/libc2.so.1"


def test_stale_cache_entry_falls_through_to_default_dirs(tmp_path: Path) -> None:
    cache = _ldconfig_cache(tmp_path, {"/opt/conf/libc2.so": "libc2.so"})
    tree = debian(
        {"/usr/bin/app": exe("libc2.so"), f"{ML}/libc2.so": lib(), "/etc/ld.so.cache": cache}
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert targets(c, "libc2.so") == [f"{ML}/libc2.so"]


def test_no_cache_falls_back_to_ld_so_conf_with_include_globs() -> None:
    tree = debian(
        {
            "/usr/bin/app": exe("libconf.so"),
            "/etc/ld.so.conf": b"# comment\ninclude /etc/ld.so.conf.d/*.conf\n",
            "/etc/ld.so.conf.d/a.conf": b"/opt/one/   # trailing comment\nhwcap 0 nosegneg\n",
            "/etc/ld.so.conf.d/b.conf": b"include ../extra.conf\n",
            "/etc/ld.so.conf.d/.hidden.conf": b"/opt/hidden\n",
            "/etc/extra.conf": b"/opt/two\n",
            "/opt/two/libconf.so": lib(),
        }
    )
    assert read_ld_so_conf(tree) == ("/opt/one", "/opt/two")
    c = closure(tree, ["/usr/bin/app"], {})
    edge = next(e for e in c.edges if e.name == "libconf.so")
    assert edge.target == "/opt/two/libconf.so" and "ld.so.conf" in edge.via
    assert any(w.where == "/etc/ld.so.cache" for w in c.warnings)


def test_corrupt_cache_is_ignored_with_a_warning() -> None:
    tree = debian({"/usr/bin/app": exe(), "/etc/ld.so.cache": b"garbage"})
    c = closure(tree, ["/usr/bin/app"], {})
    assert c.missing == ()
    assert any(w.where == "/etc/ld.so.cache" and "bad magic" in w.message for w in c.warnings)


def test_truncated_library_is_a_named_warning_not_a_crash() -> None:
    good = lib("libdeep.so", soname="libbad.so.1")
    tree = debian({"/usr/bin/app": exe("libbad.so.1"), f"{ML}/libbad.so.1": good[:-20]})
    c = closure(tree, ["/usr/bin/app"], {})
    assert f"{ML}/libbad.so.1" in c.files
    [warning] = [w for w in c.warnings if w.where == f"{ML}/libbad.so.1"]
    assert "incomplete" in warning.message and "truncated" in warning.message


def test_truncated_program_and_non_elf_library() -> None:
    tree = debian(
        {
            "/usr/bin/app": exe("libtext.so")[:100],
            "/usr/bin/ok": exe("libtext.so"),
            f"{ML}/libtext.so": b"INPUT(-lfoo)\n",
        }
    )
    c = closure(tree, ["/usr/bin/app", "/usr/bin/ok"], {})
    assert any(w.where == "/usr/bin/app" and "truncated" in w.message for w in c.warnings)
    assert any(w.where == f"{ML}/libtext.so" and "not an ELF" in w.message for w in c.warnings)
    assert f"{ML}/libtext.so" in c.files


def test_needed_with_a_slash_and_origin() -> None:
    tree = debian(
        {
            "/opt/app/app": exe("$ORIGIN/plugins/libp.so", "/opt/abs/liba.so"),
            "/opt/app/plugins/libp.so": lib(),
            "/opt/abs/liba.so": lib(),
        }
    )
    c = closure(tree, ["/opt/app/app"], {})
    assert edge_for(c, "$ORIGIN/plugins/libp.so") == ["/opt/app/plugins/libp.so"]
    assert edge_for(c, "/opt/abs/liba.so") == ["/opt/abs/liba.so"]


def test_preloads_env_then_file() -> None:
    tree = debian(
        {
            "/usr/bin/app": exe(),
            "/opt/p/libenv.so": lib(),
            f"{ML}/libfile.so": lib(),
            f"{ML}/libname.so": lib(),
            "/etc/ld.so.preload": b"# comment\nlibfile.so\t/opt/gone.so\n",
        }
    )
    c = closure(tree, ["/usr/bin/app"], {"LD_PRELOAD": "/opt/p/libenv.so libname.so"})
    kinds = [(e.kind, e.name) for e in c.edges if "PRELOAD" in e.kind or "preload" in e.kind]
    assert kinds == [
        ("LD_PRELOAD", "/opt/p/libenv.so"),
        ("LD_PRELOAD", "libname.so"),
        ("/etc/ld.so.preload", "libfile.so"),
    ]
    assert [(m.kind, m.name) for m in c.missing] == [("/etc/ld.so.preload", "/opt/gone.so")]


def test_setuid_preload_only_setuid_libraries_without_slash() -> None:
    tree = debian(
        {
            "/usr/bin/app": File(exe(), mode=0o4755),
            "/opt/p/libenv.so": lib(),
            f"{ML}/libplain.so": lib(),
            f"{ML}/libsuid.so": File(lib(), mode=0o4755),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {"LD_PRELOAD": "/opt/p/libenv.so:libplain.so:libsuid.so"})
    assert [e.name for e in c.edges if e.kind == "LD_PRELOAD"] == ["libsuid.so"]


def test_static_program_needs_only_itself() -> None:
    tree = debian({"/usr/bin/static": make_elf(dynamic=False, e_type=2)})
    c = closure(tree, ["/usr/bin/static"], {})
    assert c.files == ("/usr/bin/static",) and c.edges == ()


def test_missing_root_and_missing_interpreter() -> None:
    tree = MemTree({"/usr/bin/app": exe()})
    c = closure(tree, ["/usr/bin/app", "/nope"], {})
    assert {(m.kind, m.name) for m in c.missing} == {
        ("PT_INTERP", LDSO),
        ("root", "/nope"),
        ("DT_NEEDED", "libc.so.6"),
    }


def test_library_root_without_interpreter() -> None:
    tree = debian(
        {f"{ML}/libfoo.so.1": lib("libc.so.6", runpath="$ORIGIN/x"), f"{ML}/x/libc.so.6": lib()}
    )
    c = closure(tree, [f"{ML}/libfoo.so.1"], {})
    assert edge_for(c, "libc.so.6") == [f"{ML}/x/libc.so.6"]


# ---------------------------------------------------------------------------
# musl


def musl_tree(files: Mapping[str, Spec]) -> MemTree:
    base: dict[str, Spec] = {
        "/lib/ld-musl-x86_64.so.1": lib(soname="libc.musl-x86_64.so.1"),
        "/lib/libc.musl-x86_64.so.1": Link("ld-musl-x86_64.so.1"),
    }
    return MemTree({**base, **files})


def musl_exe(*needed: str, **kw: Any) -> bytes:
    return make_elf(
        interp="/lib/ld-musl-x86_64.so.1", needed=[*needed, "libc.musl-x86_64.so.1"], **kw
    )


def test_musl_runpath_is_inherited_and_libc_names_are_the_loader() -> None:
    tree = musl_tree(
        {
            "/usr/bin/app": musl_exe("liba.so", runpath="/opt/a"),
            "/opt/a/liba.so": lib("libb.so", "libc.so.6", "libpthread.so.0"),
            "/opt/a/libb.so": lib(),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert c.missing == ()
    assert targets(c, "libb.so") == ["/opt/a/libb.so"]
    assert set(targets(c, "libc.so.6")) == {"/lib/ld-musl-x86_64.so.1"}
    assert set(targets(c, "libc.musl-x86_64.so.1")) == {"/lib/ld-musl-x86_64.so.1"}


def test_musl_path_file_and_default_path() -> None:
    files: dict[str, Spec] = {
        "/usr/bin/app": musl_exe("libsys.so", "libdef.so"),
        "/opt/sys/libsys.so": lib(),
        "/usr/local/lib/libdef.so": lib(),
    }
    c = closure(musl_tree(files), ["/usr/bin/app"], {})
    assert [m.name for m in c.missing] == ["libsys.so"]
    files["/etc/ld-musl-x86_64.path"] = b"/opt/sys\n/usr/local/lib\n"
    c = closure(musl_tree(files), ["/usr/bin/app"], {})
    assert c.missing == ()
    assert next(e for e in c.edges if e.name == "libsys.so").via == "/etc/ld-musl-x86_64.path"


def test_musl_ld_library_path_first_and_no_soname_reuse() -> None:
    tree = musl_tree(
        {
            "/usr/bin/app": musl_exe("libx.so", rpath="/r"),
            "/r/libx.so": lib(),
            "/llp/libx.so": lib(),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {"LD_LIBRARY_PATH": "/llp"})
    assert targets(c, "libx.so") == ["/llp/libx.so"]


# ---------------------------------------------------------------------------
# ld.so.cache parsing: recorded host data and caches made by ldconfig


def test_recorded_debian12_cache_matches_ldconfig_print() -> None:
    """tests/data/loader/: ld.so.cache and `ldconfig -p` of a Debian 12 host."""
    entries = parse_ld_so_cache((DATA / "ld.so.cache-debian12").read_bytes())
    printed = (DATA / "ldconfig-p-debian12.txt").read_text().splitlines()
    assert printed[0].startswith(f"{len(entries)} libs found")
    expected = [
        (line.split(" (")[0].strip(), line.split(" => ")[1])
        for line in printed[1:]
        if " => " in line
    ]
    assert [(e.name, e.path) for e in entries] == expected
    assert {e.flags for e in entries} <= {0x0303, 0x0003, 0x0001}


@needs_host_glibc
def test_live_host_cache_matches_ldconfig_print() -> None:
    entries = parse_ld_so_cache(Path("/etc/ld.so.cache").read_bytes())
    printed = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    assert printed.splitlines()[0].startswith(f"{len(entries)} libs found")


@pytest.mark.parametrize("fmt", ["new", "old", "compat"])
def test_ldconfig_generated_cache_formats(tmp_path: Path, fmt: str) -> None:
    data = _ldconfig_cache(
        tmp_path,
        {"/opt/conf/libc2.so.1": "libc2.so.1", "/opt/conf/glibc-hwcaps/x86-64-v3/libc2.so.1": ""},
        fmt=fmt,
    )
    entries = parse_ld_so_cache(data)
    mine = [e for e in entries if e.name == "libc2.so.1"]
    paths = {e.path for e in mine}
    assert "/opt/conf/libc2.so.1" in paths
    if fmt != "old":  # the old format has no glibc-hwcaps entries
        assert any(e.is_hwcaps and "x86-64-v3" in e.path for e in mine)


def test_truncated_cache_raises_value_error() -> None:
    data = (DATA / "ld.so.cache-debian12").read_bytes()
    for cut in (10, 30, 100, 48 + 24 * 540 + 2000):  # the last: inside the strings
        with pytest.raises(ValueError):
            parse_ld_so_cache(data[:cut])


def _ldconfig_cache(tmp_path: Path, libs: dict[str, str], fmt: str = "new") -> bytes:
    """Run the host's ldconfig over a synthetic root holding `libs` (path ->
    soname, "" for a copy of the previous library) and return the cache."""
    require("gcc", "ldconfig")
    root = tmp_path / f"root-{fmt}"
    b = Builder(tmp_path / "src")
    last: Path | None = None
    for path, soname in libs.items():
        target = root / path.lstrip("/")
        if soname:
            last = b.lib(target, soname=soname)
        else:
            assert last is not None
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(last, target)
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/ld.so.conf").write_text("/opt/conf\n")
    subprocess.run(
        [
            "ldconfig",
            "-X",
            "-c",
            fmt,
            "-r",
            str(root),
            "-C",
            "/etc/ld.so.cache",
            "-f",
            "/etc/ld.so.conf",
        ],
        check=True,
        capture_output=True,
    )
    return (root / "etc/ld.so.cache").read_bytes()


# ---------------------------------------------------------------------------
# Host cross-checks: the real glibc loader must load exactly what we predict


class Scenario:
    def __init__(self, tmp_path: Path) -> None:
        self.top = tmp_path / "t"
        self.b = Builder(tmp_path / "src")

    def lib(self, rel: str, needs: tuple[Path, ...] = (), flags: tuple[str, ...] = ()) -> Path:
        return self.b.lib(self.top / rel, needs=needs, flags=flags)

    def exe(self, rel: str, needs: tuple[Path, ...] = (), flags: tuple[str, ...] = ()) -> Path:
        return self.b.exe(self.top / rel, needs=needs, flags=flags)

    def tree(self) -> MemTree:
        tree = MemTree({})
        add_host_dir(tree, str(self.top))
        for path in (HOST_LDSO, HOST_LIBC, "/etc/ld.so.cache"):
            add_host_path(tree, path)
        return tree

    def check(
        self, program: Path | str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> Closure:
        """Resolve, run for real, and compare: loaded paths (or failure)."""
        env = env or {}
        c = closure(self.tree(), [str(program)], env, workdir=str(cwd or "/"))
        code, loaded, err = run_host(program, env, cwd)
        if code != 0:
            assert c.missing, err
            assert all(m.name in err for m in c.missing if m.kind == "DT_NEEDED"), err
            return c
        assert c.missing == ()
        predicted = {e.path for e in c.edges if not e.variant}
        # glibc keeps a path found through a relative entry relative (its
        # l_name); the resolver makes it absolute with the working directory.
        assert predicted == {str(Path(cwd or "/") / p) for p in loaded}
        return c


def rpath(*dirs: str) -> tuple[str, ...]:
    return ("-Wl,--disable-new-dtags", "-Wl,-rpath," + ":".join(dirs))


def runpath(*dirs: str) -> tuple[str, ...]:
    return ("-Wl,--enable-new-dtags", "-Wl,-rpath," + ":".join(dirs))


@needs_gcc
@needs_host_glibc
def test_host_rpath_inherited(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    libb = s.lib("a/libb.so")
    liba = s.lib("a/liba.so", needs=(libb,))
    c = s.check(s.exe("app", needs=(liba,), flags=rpath(str(s.top / "a"))))
    assert targets(c, "libb.so") == [str(libb)]


@needs_gcc
@needs_host_glibc
def test_host_runpath_not_inherited(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    libb = s.lib("a/libb.so")
    liba = s.lib("a/liba.so", needs=(libb,))
    c = s.check(s.exe("app", needs=(liba,), flags=runpath(str(s.top / "a"))))
    assert [m.name for m in c.missing] == ["libb.so"]


@needs_gcc
@needs_host_glibc
def test_host_origin_of_library_through_symlink(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    dep = s.lib("d1/sub/libdep.so")
    foo = s.lib("real/libfoo.so", needs=(dep,), flags=runpath("$ORIGIN/sub"))
    (s.top / "d1/libfoo.so").symlink_to("../real/libfoo.so")
    c = s.check(s.exe("app", needs=(foo,), flags=runpath(str(s.top / "d1"))))
    assert targets(c, "libdep.so") == [str(dep)]


@needs_gcc
@needs_host_glibc
def test_host_origin_of_executable_through_symlink(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    libx = s.lib("opt/lib/libx.so")
    app = s.exe("opt/bin/app", needs=(libx,), flags=runpath("$ORIGIN/../lib"))
    (s.top / "app-link").symlink_to(app)
    s.check(s.top / "app-link")


@needs_gcc
@needs_host_glibc
def test_host_lib_token(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    libx = s.lib("lib/x86_64-linux-gnu/libx.so")
    c = s.check(s.exe("app", needs=(libx,), flags=rpath("$ORIGIN/$LIB")))
    assert targets(c, "libx.so") == [str(libx)]


@needs_gcc
@needs_host_glibc
def test_host_search_order(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    for d in ("r", "llp", "run"):
        s.lib(f"{d}/libx.so")
    libx = s.top / "r/libx.so"
    env = {"LD_LIBRARY_PATH": str(s.top / "llp")}
    c = s.check(s.exe("app1", needs=(libx,), flags=rpath(str(s.top / "r"))), env)
    assert edge_for(c, "libx.so") == [str(s.top / "r/libx.so")]
    c = s.check(s.exe("app2", needs=(libx,), flags=runpath(str(s.top / "run"))), env)
    assert edge_for(c, "libx.so") == [str(s.top / "llp/libx.so")]
    s.check(s.top / "app2")


@needs_gcc
@needs_host_glibc
def test_host_relative_runpath_and_workdir(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    libx = s.lib("w/rel/libx.so")
    c = s.check(s.exe("app", needs=(libx,), flags=runpath("rel")), cwd=s.top / "w")
    assert targets(c, "libx.so") == [str(libx)]


@needs_gcc
@needs_host_glibc
def test_host_wrong_machine_skipped(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    good = s.lib("b/libx.so")
    bad = s.lib("a/libx.so")
    data = bytearray(bad.read_bytes())
    data[18:20] = (183).to_bytes(2, "little")  # e_machine = EM_AARCH64
    bad.write_bytes(bytes(data))
    c = s.check(s.exe("app", needs=(good,), flags=rpath(str(s.top / "a"), str(s.top / "b"))))
    assert targets(c, "libx.so") == [str(good)]


@needs_gcc
@needs_host_glibc
def test_host_rpath_ignored_when_runpath_present(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    libx = s.lib("a/libx.so")
    app = s.exe("app", needs=(libx,), flags=rpath(str(s.top / "a")))
    data = app.read_bytes()  # DT_DEBUG -> DT_RUNPATH "libc.so.6": present, useless
    app.write_bytes(patch_dynamic(data, 21, 29, dynstr_offset(data, "libc.so.6")))
    c = s.check(app)
    assert [m.name for m in c.missing] == ["libx.so"]


@needs_gcc
@needs_host_glibc
def test_host_nodeflib_skips_cached_system_libc(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    app = s.exe("app")
    app.write_bytes(
        patch_dynamic(app.read_bytes(), 0x6FFFFFFB, 0x6FFFFFFB, DF_1_PIE | DF_1_NODEFLIB)
    )
    c = s.check(app)
    assert [m.name for m in c.missing] == ["libc.so.6"]


@needs_gcc
@needs_host_glibc
def test_host_hwcaps_variant_loaded_is_in_the_closure(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    base = s.lib("a/libx.so")
    v2 = s.top / "a/glibc-hwcaps/x86-64-v2/libx.so"
    v2.parent.mkdir(parents=True)
    shutil.copy(base, v2)
    app = s.exe("app", needs=(base,), flags=runpath(str(s.top / "a")))
    c = closure(s.tree(), [str(app)], {})
    code, loaded, _ = run_host(app)
    assert code == 0
    opened = {e.path for e in c.edges}
    assert set(loaded) <= opened  # whatever this CPU picked, we kept it
    assert {str(base), str(v2)} <= set(c.files)


@needs_gcc
@needs_host_glibc
def test_host_ld_preload(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    pre = s.lib("p/libpre.so")
    s.check(s.exe("app"), {"LD_PRELOAD": str(pre)})


@needs_gcc
@needs_host_glibc
def test_host_setuid_ignores_ld_library_path_where_ldd_does_not(tmp_path: Path) -> None:
    """ldd and glibc disagree here, and glibc wins: a setuid program started
    by another user runs in secure mode and ignores LD_LIBRARY_PATH, but
    `ldd` (which does not exec it setuid) still honours it."""
    require_root()
    require("setpriv")  # to run a setuid program as another user
    top = Path(tempfile.mkdtemp(dir="/tmp"))  # tmp_path is not reachable by nobody
    try:
        top.chmod(0o755)
        b = Builder(tmp_path / "src")
        run = b.lib(top / "run/libx.so")
        b.lib(top / "llp/libx.so")
        app = b.exe(top / "app", needs=(run,), flags=runpath(str(top / "run")))
        app.chmod(0o4755)
        env = {"LD_LIBRARY_PATH": str(top / "llp"), "PATH": "/usr/bin:/bin"}
        tree = MemTree({})
        add_host_dir(tree, str(top))
        for path in (HOST_LDSO, HOST_LIBC, "/etc/ld.so.cache"):
            add_host_path(tree, path)
        c = closure(tree, [str(app)], env)
        assert targets(c, "libx.so") == [str(run)]
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        real = subprocess.run([*as_nobody, str(app)], env=env, capture_output=True, text=True)
        assert str(run) in real.stdout.splitlines()
        ldd = subprocess.run([*as_nobody, "ldd", str(app)], env=env, capture_output=True, text=True)
        assert f"libx.so => {top}/llp/libx.so" in ldd.stdout
    finally:
        shutil.rmtree(top)


# ---------------------------------------------------------------------------
# slim deps: the report, its text and its JSON contract


def _deps_tree() -> MemTree:
    return debian(
        {
            "/usr/bin/app": exe("libfoo.so.1", "libgone.so", rpath="/opt/a"),
            "/opt/a/libfoo.so.1": lib("libc.so.6", "libbar.so"),
            f"{ML}/libbar.so": lib(),
        }
    )


def test_deps_text_is_a_tree_with_not_found() -> None:
    report = deps_report(_deps_tree(), {}, ["/usr/bin/app"])
    assert render_text(report) == (
        "/usr/bin/app (interpreter /lib64/ld-linux-x86-64.so.2 -> "
        f"{REAL_LDSO} [the kernel (path in PT_INTERP)])\n"
        "    libfoo.so.1 => /opt/a/libfoo.so.1 [DT_RPATH of /usr/bin/app]\n"
        f"        libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 -> {ML}/libc.so.6 "
        "[already loaded]\n"
        f"        libbar.so => /lib/x86_64-linux-gnu/libbar.so -> {ML}/libbar.so "
        "[default directories]\n"
        f"    libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 -> {ML}/libc.so.6 "
        "[default directories]\n"
        f"        ld-linux-x86-64.so.2 => /lib64/ld-linux-x86-64.so.2 -> {REAL_LDSO} "
        "[already loaded]\n"
        "    libgone.so => not found\n"
        "8 files\n"
    )


def test_deps_json_contract() -> None:
    doc = to_json(deps_report(_deps_tree(), {}, ["/usr/bin/app", "/nope"]))
    assert doc["schema"] == DEPS_SCHEMA
    assert list(doc) == ["files", "programs", "schema", "warnings"]
    prog = doc["programs"][0]
    assert list(prog) == ["files", "interpreter", "missing", "needed", "path"]
    node = prog["needed"][0]
    assert list(node) == [
        "found",
        "kind",
        "name",
        "needed",
        "path",
        "repeated",
        "target",
        "variant",
        "via",
    ]
    assert prog["missing"] == [
        {"kind": "DT_NEEDED", "name": "libgone.so", "requester": "/usr/bin/app"}
    ]
    assert prog["needed"][-1] == {
        "found": False,
        "kind": "DT_NEEDED",
        "name": "libgone.so",
        "needed": [],
        "path": None,
        "repeated": False,
        "target": None,
        "variant": None,
        "via": None,
    }
    assert doc["programs"][1]["missing"][0]["kind"] == "root"
    assert json.loads(json.dumps(doc, sort_keys=True)) == doc
