"""The `helper-programs` expander and the `helpers` profile on in-memory trees: each
helper program is kept only on evidence, and its reason names that evidence."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from slimmer.model import ImageConfig
from slimmer.plan.expanders import EXPANDERS
from slimmer.plan.keep import Addition, ProfileContext
from slimmer.plan.planner import TracedPath, plan
from slimmer.plan.profiles import detect, load_profiles, profiles_fn
from tests.memtree import Link, MemTree, Spec
from tests.test_elf_imports import elf_with_dynsym

PY = "/usr/lib/python3.11"
LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"
CALLS_SYSTEM = elf_with_dynsym(True, "<", [("system", 0), ("printf", 0)])
CALLS_NOTHING = elf_with_dynsym(True, "<", [("printf", 0), ("main", 12)])
SHELL: dict[str, Spec] = {
    "/bin": Link("usr/bin"),
    "/usr/bin/sh": Link("dash"),
    "/usr/bin/dash": CALLS_NOTHING,
}
BASE: dict[str, Spec] = {
    **SHELL,
    "/sbin": Link("usr/sbin"),
    "/usr/sbin/ldconfig": CALLS_NOTHING,
    "/usr/bin/uname": CALLS_NOTHING,
    "/etc/ld.so.cache": b"glibc-ld.so.cache1.1",
    f"{PY}/ctypes/util.py": b"import subprocess\n",
    f"{PY}/platform.py": b"import os\n",
    LIBC: CALLS_NOTHING,
    "/app/app.py": b"def find():\n    import ctypes.util\n    return ctypes.util.find_library\n",
}  # fmt: skip


def ctx(
    kept: set[str], extra: Mapping[str, Spec] | None = None, env: dict[str, str] | None = None
) -> ProfileContext:
    tree = MemTree({**BASE, **(extra or {})})
    config = ImageConfig({"config": {"Env": [f"{k}={v}" for k, v in (env or {}).items()]}})
    return ProfileContext(tree, config, frozenset(), frozenset(), frozenset(kept))


def helpers(context: ProfileContext) -> dict[str, Addition]:
    additions, generated = EXPANDERS["helper-programs"](context, "helpers")
    assert generated == []
    return {a.path: a for a in additions}


def test_ctypes_util_keeps_ldconfig_and_its_cache() -> None:
    found = helpers(ctx({"/app/app.py", f"{PY}/ctypes/util.py"}))
    assert set(found) == {"/sbin/ldconfig", "/etc/ld.so.cache"}
    assert found["/sbin/ldconfig"].closure and not found["/etc/ld.so.cache"].closure
    reason = found["/sbin/ldconfig"].reason
    assert (reason.kind, reason.source) == ("profile", "helpers")
    assert "find_library()" in reason.detail and "/app/app.py imports ctypes.util" in reason.detail


def test_without_an_app_importer_the_kept_module_is_the_evidence() -> None:
    found = helpers(ctx({f"{PY}/ctypes/util.py"}))
    assert f"{PY}/ctypes/util.py is kept" in found["/sbin/ldconfig"].reason.detail


def test_nothing_without_evidence() -> None:
    assert helpers(ctx({"/app/app.py"})) == {}  # ctypes.util not kept: the app never imports it
    assert helpers(ctx({"/app/app.py", LIBC})) == {}  # no kept file calls the shell


CACHE = (Path(__file__).parent / "data" / "loader" / "ld.so.cache-debian12").read_bytes()


def test_libraries_named_for_ctypes_are_kept_from_the_ld_so_cache() -> None:
    app = b"from ctypes import CDLL, util\nu = util.find_library('uuid')\nz = CDLL('libz.so.1')\n"
    extra = {"/app/app.py": app, "/etc/ld.so.cache": CACHE}
    found = helpers(ctx({"/app/app.py"}, extra))
    uuid = "/lib/x86_64-linux-gnu/libuuid.so.1"
    assert {uuid, "/lib/x86_64-linux-gnu/libz.so.1"} <= set(found)
    assert not any("libc.so" in p or "libuuid.so.1.3" in p for p in found)
    assert found[uuid].reason.detail == (
        "/app/app.py line 2 loads find_library('uuid') through ctypes: "
        "libuuid.so.1 in /etc/ld.so.cache"
    )
    assert helpers(ctx({"/app/app.py"}, {"/app/app.py": app})) == {}  # not a glibc cache


def test_platform_keeps_uname_found_on_path() -> None:
    found = helpers(ctx({f"{PY}/platform.py"}))
    assert set(found) == {"/usr/bin/uname"}
    assert "uname -p" in found["/usr/bin/uname"].reason.detail
    assert helpers(ctx({f"{PY}/platform.py"}, env={"PATH": "/opt/bin"})) == {}


def test_site_packages_modules_are_not_the_stdlib() -> None:
    vendored = f"{PY}/site-packages/x/ctypes/util.py"
    assert helpers(ctx({vendored}, {vendored: b""})) == {}


def test_an_elf_calling_system_keeps_the_shell() -> None:
    found = helpers(ctx({"/usr/bin/app"}, {"/usr/bin/app": CALLS_SYSTEM}))
    assert set(found) == {"/bin/sh"}
    detail = found["/bin/sh"].reason.detail
    assert detail.startswith("/usr/bin/app imports system from libc") and "sh -c" in detail


def test_runtimes_and_exec_p_callers_are_no_evidence_of_the_shell() -> None:
    python = {"/usr/bin/python3.11": CALLS_SYSTEM, "/usr/lib/libpython3.11.so.1.0": CALLS_SYSTEM}
    assert helpers(ctx(set(python), python)) == {}
    jdk = {"/usr/lib/jvm/java-17-openjdk-amd64/lib/libjli.so": CALLS_SYSTEM}
    assert helpers(ctx(set(jdk), jdk)) == {}  # a library in a runtime's home
    alsa = {"/usr/lib/x86_64-linux-gnu/libasound.so.2.0.0": CALLS_SYSTEM}
    assert helpers(ctx(set(alsa), alsa)) == {}  # a library: its caller decides
    execvp = {"/usr/bin/app": elf_with_dynsym(True, "<", [("execvp", 0)])}
    assert helpers(ctx({"/usr/bin/app"}, execvp)) == {}


def test_python_code_calling_the_shell_keeps_it() -> None:
    app = b"import os\n# os.system('ls') in a comment\ndef f():\n    return os.popen('x').read()\n"
    found = helpers(ctx({"/app/app.py"}, {"/app/app.py": app}))
    assert (
        found["/bin/sh"].reason.detail == "/app/app.py line 4 calls os.popen: it runs `/bin/sh -c`"
    )
    stdlib = {f"{PY}/os.py": b"proc = subprocess.Popen(cmd, shell=True)\n"}
    assert helpers(ctx({f"{PY}/os.py"}, stdlib)) == {}
    site = f"{PY}/site-packages/tool.py"
    found = helpers(ctx({site}, {site: b"subprocess.run(c, shell=True)\n"}))
    assert "line 1 calls shell=True" in found["/bin/sh"].reason.detail


def test_the_shell_is_not_added_twice_or_invented() -> None:
    app = {"/usr/bin/app": CALLS_SYSTEM}
    assert helpers(ctx({"/usr/bin/app", "/bin/sh"}, app)) == {}
    spec = {**BASE, **app}
    del spec["/usr/bin/sh"]  # an image without a shell: nothing to keep
    kept = frozenset({"/usr/bin/app"})
    bare = ProfileContext(MemTree(spec), ImageConfig({}), frozenset(), frozenset(), kept)
    assert helpers(bare) == {}


def test_unreadable_or_foreign_elf_files_are_skipped() -> None:
    truncated = CALLS_SYSTEM[:80]
    assert helpers(ctx({"/usr/bin/app"}, {"/usr/bin/app": truncated})) == {}


def test_the_profile_applies_on_its_evidence_and_the_planner_keeps_the_real_shell() -> None:
    profiles = [p for p in load_profiles() if p.name == "helpers"]
    assert detect(profiles, ctx({"/app/app.py"})) == {}
    assert "helpers" in detect(profiles, ctx({f"{PY}/ctypes/util.py"}))
    tree = MemTree({**BASE, "/usr/bin/app": CALLS_SYSTEM})
    traced = [TracedPath("/usr/bin/app", "exec"), TracedPath(LIBC, "open")]
    keep = plan(tree, ImageConfig({}), traced, lambda *_: [], profiles_fn(only={"helpers"}))
    assert {"/bin", "/usr/bin/sh", "/usr/bin/dash"} <= set(keep.paths())
    assert [r.source for r in keep.reasons["/usr/bin/dash"]] == ["helpers"]
    assert "/usr/sbin/ldconfig" not in keep
