"""Expander of helper programs: programs a runtime or a library runs by name.

A probe sees a helper run only on the path that runs it; on the others the slim
image must still hold it, or the caller quietly gets a worse answer (ctypes'
`find_library()` returns None) or fails (`os.popen` raises). Each helper is
kept only on evidence found in the image, which its reason names:

- Python's `ctypes.util` kept (the `python` profile keeps what kept code imports):
  `find_library()` on Linux runs `/sbin/ldconfig -p` (the path is written in
  ctypes/util.py), which prints `/etc/ld.so.cache`; its fallbacks (gcc, ld,
  objdump) are build tools a slim image does not need once ldconfig answers.
- Python's `platform` kept: `platform.processor()` and `uname().processor` run
  `uname -p` (found on PATH).
- A kept dynamically linked program (not a shared library: a library runs the
  shell only when its caller asks) that imports `system`, `popen` or `wordexp`
  from libc: these run `/bin/sh -c` (see `slimmer.elf.imports`); the planner
  keeps the links to the shell's real file. Language runtimes (python, node,
  java, ruby, perl, php, and everything in their homes) import `system` for the
  scripts they run, so their binaries are no evidence: the scripts are.
- Kept Python sources outside the standard library that call `os.system`,
  `os.popen`, `subprocess.getoutput`/`getstatusoutput` or pass `shell=True`:
  these run `/bin/sh -c` too.
- Kept Python sources outside the standard library that name a library for
  ctypes in a literal (`find_library("uuid")`, `CDLL("libuuid.so.1")`): the
  libraries `/etc/ld.so.cache` lists under that name (`ldconfig -p` answers
  find_library from it, and dlopen finds the file through it), with their closure.

`execvp` and its kin also run `/bin/sh`, but only for a file without `#!` the
kernel refuses; that alone is too weak a sign to put a shell into every image.

Programs that shell scripts name (`uname`, `getconf`, `locale`…) are kept by
the `shell-commands` expander of the `shell` profile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial

from slimmer.elf.imports import imports_in_tree
from slimmer.elf.ldcache import CacheEntry, parse_ld_so_cache
from slimmer.image.paths import is_file, read_text, search_path, tree_memo, which
from slimmer.model import TreeView
from slimmer.plan.expanders._common import not_kept
from slimmer.plan.expanders.python_source import imported_names
from slimmer.plan.keep import Addition, ProfileContext, Reason, Result

SHELL = "/bin/sh"  # glibc's and musl's _PATH_BSHELL
SHELL_FUNCTIONS = frozenset({"system", "popen", "wordexp"})
# Interpreters and their libraries (by file name): no evidence of their own.
# The directories a runtime's own libraries live in (a JDK's lib/*.so, Python's
# lib-dynload, Ruby's and Perl's extensions): part of the runtime, like its binary.
RUNTIME_HOME = re.compile(r"/(jvm|python[\d.]*|ruby|perl5?|php[\d.]*|node|nodejs|lua[\d.]*)/")
# A shared library that imports system()/popen() (ALSA's libasound does) runs the
# shell only when its caller asks for that feature; the evidence is the app's own
# programs calling them, so libraries are not counted.
_SHARED_LIBRARY = re.compile(r"\.so(\.[\d.]+)?\Z")
RUNTIME = re.compile(
    r"(lib)?(python|node|nodejs|java|jvm|ruby|perl|php|php-fpm|lua|tclsh|tcl)[\d.-]*(\.so[\d.]*)?\Z"
)
# Python calls that run `/bin/sh -c`, as written in a source line.
PY_SHELL_CALL = re.compile(
    r"\bos\.(system|popen)\s*\(|\bshell\s*=\s*True\b|\bget(status)?output\s*\("
)


@dataclass(frozen=True)
class PythonHelper:
    """Programs (absolute, or names looked up on PATH) and files a stdlib module runs
    or reads when its functions are called."""

    module: str
    programs: tuple[str, ...]
    files: tuple[str, ...]
    why: str

    @property
    def pattern(self) -> re.Pattern[str]:
        tail = self.module.replace(".", "/")
        return re.compile(rf"/lib/python3(\.\d+)?/{re.escape(tail)}\.py\Z")


PYTHON_HELPERS = (
    PythonHelper(
        "ctypes.util",
        ("/sbin/ldconfig",),
        ("/etc/ld.so.cache",),
        "ctypes.util.find_library() runs `/sbin/ldconfig -p`, which prints "
        "/etc/ld.so.cache; without it find_library() returns None",
    ),
    PythonHelper(
        "platform",
        ("uname",),
        (),
        "platform.processor() runs `uname -p`",
    ),
)
# Libraries Python code hands to ctypes by a literal name (find_library's argument
# is a name without `lib` and suffix; CDLL and LoadLibrary take a file name).
PY_FIND_LIBRARY = re.compile(r"""\bfind_library\(\s*(['"])([\w.+-]+)\1""")
PY_LOAD_LIBRARY = re.compile(
    r"""\b(?:CDLL|PyDLL|LoadLibrary)\(\s*(['"])(lib[\w.+-]*\.so[\w.]*)\1"""
)


def helper_programs(ctx: ProfileContext, profile_name: str) -> Result:
    """The helpers of kept Python modules and the shell of kept ELF files and Python
    sources (module doc)."""
    out = [*_python_helpers(ctx, profile_name), *_ctypes_libraries(ctx, profile_name)]
    if SHELL not in ctx.kept and ctx.tree.resolve(SHELL).entry is not None:
        out += [*_elf_shell_users(ctx, profile_name), *_python_shell_users(ctx, profile_name)]
    return not_kept(out, ctx.kept), []


# -- Python ---------------------------------------------------------------------------


def _python_helpers(ctx: ProfileContext, profile_name: str) -> list[Addition]:
    env_path, workdir = search_path(ctx.config.env), ctx.config.working_dir or "/"
    out: list[Addition] = []
    for helper in PYTHON_HELPERS:
        modules = sorted(p for p in ctx.kept if helper.pattern.search(p))
        for module_file in modules:
            evidence = _python_evidence(ctx, helper.module, module_file)
            reason = Reason("profile", f"{helper.why} ({evidence})", profile_name)
            for program in helper.programs:
                found = which(ctx.tree, program, env_path, workdir)
                if found is not None:
                    out.append(Addition(found, reason))
            out += [Addition(f, reason, False) for f in helper.files if is_file(ctx.tree, f)]
    return out


def _python_evidence(ctx: ProfileContext, module: str, module_file: str) -> str:
    """Which kept source imports `module`, for the reason; the kept module itself when
    no kept `.py` outside the standard library names it."""
    for path in sorted(ctx.kept):
        if path.endswith(".py") and not _STDLIB.search(path):
            key = f"helpers-python_imports:{path}"
            if module in tree_memo(ctx.tree, key, partial(_imports, ctx.tree, path)):
                return f"{path} imports {module}"
    return f"{module_file} is kept"


_STDLIB = re.compile(r"/lib/python3(\.\d+)?/(?![^/]*-packages/)")
_TOP_NAMES = tuple(h.module.split(".")[0] for h in PYTHON_HELPERS)


def _imports(tree: TreeView, path: str) -> frozenset[str]:
    """The imports of an app source that names a helper module (others are not parsed)."""
    source = read_text(tree, path)
    if source is None or not any(name in source for name in _TOP_NAMES):
        return frozenset()
    return imported_names(source, "__main__", False)


def _ctypes_libraries(ctx: ProfileContext, profile_name: str) -> list[Addition]:
    out: list[Addition] = []
    cache: tuple[CacheEntry, ...] | None = None
    for path in sorted(ctx.kept):
        if not path.endswith(".py") or _STDLIB.search(path):
            continue
        asked = tree_memo(
            ctx.tree, f"helpers-ctypes:{path}", partial(_ctypes_names, ctx.tree, path)
        )
        if asked and cache is None:
            cache = tree_memo(ctx.tree, "helpers-ldcache", partial(_ld_cache, ctx.tree))
        for line, call, prefix in asked:
            for entry in cache or ():
                if entry.name.startswith(prefix) or entry.name == prefix.rstrip("."):
                    detail = (
                        f"{path} line {line} loads {call} through ctypes: "
                        f"{entry.name} in /etc/ld.so.cache"
                    )
                    out.append(Addition(entry.path, Reason("profile", detail, profile_name)))
    return out


def _ctypes_names(tree: TreeView, path: str) -> tuple[tuple[int, str, str], ...]:
    """(line, call, cache-name prefix) of each literal library name given to ctypes."""
    out = []
    for number, line in enumerate((read_text(tree, path) or "").splitlines(), 1):
        for m in PY_FIND_LIBRARY.finditer(line):
            out.append((number, m.group(0) + ")", f"lib{m.group(2)}."))
        for m in PY_LOAD_LIBRARY.finditer(line):
            out.append((number, m.group(0) + ")", m.group(2) + "."))
    return tuple(out)


def _ld_cache(tree: TreeView) -> tuple[CacheEntry, ...]:
    try:
        return parse_ld_so_cache(tree.read_bytes("/etc/ld.so.cache"))
    except (ValueError, LookupError, FileNotFoundError, OSError):  # no cache, or not glibc's
        return ()


# -- ELF files that run the shell ----------------------------------------------------------


def _elf_shell_users(ctx: ProfileContext, profile_name: str) -> list[Addition]:
    out = []
    for path in sorted(ctx.kept):
        entry = ctx.tree.get(path)
        if entry is None or not entry.is_regular or not entry.is_elf:
            continue
        name = path.rpartition("/")[2]
        if RUNTIME.match(name) or RUNTIME_HOME.search(path) or _SHARED_LIBRARY.search(name):
            continue
        calls = sorted(imports_in_tree(ctx.tree, path).names & SHELL_FUNCTIONS)
        if calls:
            detail = f"{path} imports {', '.join(calls)} from libc, which runs `{SHELL} -c`"
            out.append(Addition(SHELL, Reason("profile", detail, profile_name)))
    return out


def _python_shell_users(ctx: ProfileContext, profile_name: str) -> list[Addition]:
    out = []
    for path in sorted(ctx.kept):
        if path.endswith(".py") and not _STDLIB.search(path):
            found = tree_memo(
                ctx.tree, f"helpers-pyshell:{path}", partial(_shell_line, ctx.tree, path)
            )
            if found is not None:
                line, call = found
                detail = f"{path} line {line} calls {call}: it runs `{SHELL} -c`"
                out.append(Addition(SHELL, Reason("profile", detail, profile_name)))
    return out


def _shell_line(tree: TreeView, path: str) -> tuple[int, str] | None:
    """The first line of a Python source that runs the shell (comments skipped)."""
    for number, line in enumerate((read_text(tree, path) or "").splitlines(), 1):
        m = PY_SHELL_CALL.search(line.split("#", 1)[0])
        if m is not None:
            return number, m.group(0).rstrip("( ")
    return None
