"""Expanders of the system an app runs on: glibc's NSS modules, the locales the
Env names, the JVM's home, the commands of shell scripts, and the app's own
directories (those that are no part of the system tree)."""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Iterable

from slimmer.image.paths import (
    SHELLS,
    exists,
    is_dir,
    is_file,
    is_system_dir,
    read_text,
    search_path,
    tree_memo,
    which,
)
from slimmer.model import TreeView
from slimmer.plan.keep import (
    Addition,
    ProfileContext,
    Reason,
    Result,
    argv_words,
    kept_named,
    subtree,
)
from slimmer.plan.shellscan import command_words, sourced_files

LIB_DIRS = ("/lib", "/usr/lib", "/lib64", "/usr/lib64")


# -- glibc: NSS modules -------------------------------------------------------------------

_NSS_BUILTIN = frozenset({"files", "dns"})
_LIBC_OLD = re.compile(r"libc-2\.(\d+)\.so$")


def nss_services(text: str) -> tuple[str, ...]:
    """Service names of an nsswitch.conf (`db: service [STATUS=action] service ...`)."""
    out: set[str] = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        _, sep, rest = line.partition(":")
        if not sep:
            continue
        rest = re.sub(r"\[[^\]]*\]", " ", rest)
        out.update(w for w in rest.split() if re.fullmatch(r"[A-Za-z0-9_-]+", w))
    return tuple(sorted(out))


def _libc_dirs(ctx: ProfileContext) -> list[str]:
    found = sorted({posixpath.dirname(p) for p in ctx.kept if p.endswith("/libc.so.6")})
    return found + [d for d in LIB_DIRS if d not in found]


def _glibc_before_2_34(tree: TreeView, dirs: Iterable[str]) -> bool:
    """Before glibc 2.34 `libc.so.6` linked to `libc-2.N.so` and files/dns were
    separate modules (libnss_files.so.2); since 2.34 they are built into libc."""
    for d in dirs:
        entry = tree.get(f"{d}/libc.so.6")
        if entry is not None:
            m = _LIBC_OLD.search(entry.link)
            return m is not None and int(m.group(1)) < 34
    return False


def nss_modules(ctx: ProfileContext, profile_name: str) -> Result:
    """`libnss_<service>.so.2` for each service nsswitch.conf names: glibc dlopens
    them on the first user, group or host lookup."""
    text = read_text(ctx.tree, "/etc/nsswitch.conf")
    if text is None:
        return [], []
    dirs = _libc_dirs(ctx)
    builtin = frozenset() if _glibc_before_2_34(ctx.tree, dirs) else _NSS_BUILTIN
    out = []
    for service in nss_services(text):
        if service in builtin:
            continue
        reason = Reason(
            "profile",
            f"/etc/nsswitch.conf names the NSS service {service!r}; "
            f"glibc loads it on the first lookup",
            profile_name,
        )
        out += [
            Addition(p, reason)
            for d in dirs
            if is_file(ctx.tree, p := f"{d}/libnss_{service}.so.2")
        ]
    return out, []


# -- locales ----------------------------------------------------------------------------


def locale_names(value: str) -> list[str]:
    """The directory names glibc tries for a locale `language[_territory][.codeset][@modifier]`,
    most specific first, with the codeset as given and normalised (`UTF-8` -> `utf8`)."""
    if value in ("", "C", "POSIX") or "/" in value:
        return []
    m = re.fullmatch(r"([^_.@]+)(_[^.@]+)?(\.[^@]+)?(@.+)?", value)
    if m is None:
        return []
    lang, terr, code, mod = (g or "" for g in m.groups())
    codes = [code, _normalise_codeset(code) if code else "", ""]
    out: list[str] = []
    for t in (terr, ""):
        for c in codes:
            for md in (mod, ""):
                name = lang + t + c + md
                if name not in out:
                    out.append(name)
    return out


def _normalise_codeset(code: str) -> str:
    """glibc's _nl_normalize_codeset: lowercase letters and digits only; "iso" before
    an all-digit name."""
    norm = "".join(c.lower() for c in code[1:] if c.isalnum())
    return "." + ("iso" + norm if norm.isdigit() else norm)


def locales(ctx: ProfileContext, profile_name: str) -> Result:
    """The locale directories that LANG, LC_ALL and LC_* in the image Env name."""
    env = ctx.config.env
    roots = [d for d in env.get("LOCPATH", "").split(":") if d.startswith("/")]
    roots.append("/usr/lib/locale")
    out: list[Addition] = []
    for key in sorted(k for k in env if k == "LANG" or k.startswith("LC_")):
        reason = Reason(
            "profile",
            f"{key}={env[key]} in the image Env picks this locale at run time",
            profile_name,
        )
        for name in locale_names(env[key]):
            for root in roots:
                if is_dir(ctx.tree, f"{root}/{name}"):
                    out += subtree(ctx.tree, f"{root}/{name}", reason, closure=False)
    return out, []


# -- the app's own directories ------------------------------------------------------------


def app_dirs(ctx: ProfileContext, profile_name: str) -> Result:
    """The WorkingDir, the directories of entrypoint/cmd/HEALTHCHECK scripts and the
    directories an app was copied into (`_app_trees`), whole, when they are not
    system directories."""
    found: dict[str, str] = {}
    wd = ctx.config.working_dir
    if wd.startswith("/") and is_dir(ctx.tree, wd):
        found.setdefault(ctx.tree.resolve(wd).path, f"WorkingDir {wd}")
    for word in argv_words(ctx):
        path = posixpath.join(wd or "/", word)
        if word.startswith("-") or not is_file(ctx.tree, path):
            continue
        found.setdefault(posixpath.dirname(ctx.tree.resolve(path).path), f"{word} of the config")
    for directory in _app_trees(ctx.tree):
        found.setdefault(directory, "outside the system tree")
    out: list[Addition] = []
    for directory, why in sorted(found.items()):
        if not is_system_dir(directory):
            reason = Reason(
                "profile",
                f"the app's own directory ({why}): any of its files may "
                f"be read on a path the probes did not take",
                profile_name,
            )
            out += [a for a in subtree(ctx.tree, directory, reason) if not _build_junk(a.path)]
    return out, []


# What a build context leaves behind that no app reads at run time: version control,
# editor settings and tool caches (the `.dockerignore` entries `slim lint` reports).
# A traced path inside one is still kept: the planner keeps every traced path.
_JUNK_DIRS = frozenset(
    {".git", ".svn", ".hg", ".idea", ".vscode", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
)


def _build_junk(path: str) -> bool:
    parts = path.split("/")
    return any(p in _JUNK_DIRS for p in parts) or "node_modules/.cache" in path


_APP_PARENTS = ("/opt", "/srv", "/home", "/var/www", "/usr/src")
_NOT_APP = frozenset({"/proc", "/sys", "/dev", "/lost+found", "/.slimmer"})


def _app_trees(tree: TreeView) -> list[str]:
    """Directories an app was copied into: top-level directories that are no part of
    the system tree (`/app`, `/www`), and those directly under /opt, /srv, /home,
    /var/www and /usr/src. Their files are the app's own: small, and any of them
    (a static file, a template, a lazily loaded module) may be read on some path."""
    out = []
    for parent in ("/", *_APP_PARENTS):
        if not is_dir(tree, parent):
            continue
        for name in tree.listdir(parent):
            path = posixpath.join(parent, name)
            entry = tree.get(path)
            if (
                entry is not None
                and entry.is_dir
                and path not in _NOT_APP
                and not is_system_dir(path)
                and path not in _APP_PARENTS
            ):
                out.append(path)
    return out


# -- the JVM ------------------------------------------------------------------------------

_JAVA = re.compile(r"java$")
_JDK_ONLY = frozenset({"ct.sym", "src.zip"})  # read by javac and IDEs, never by `java`


def jvm_home(ctx: ProfileContext, profile_name: str) -> Result:
    """JAVA_HOME's `lib/` (less `ct.sym`, `src.zip`), `conf/` and `release`, JAVA_HOME
    being the directory above the real `bin/java` that ran (or the Env's JAVA_HOME)."""
    homes: dict[str, str] = {}
    for path in kept_named(ctx, _JAVA):
        real = ctx.tree.resolve(path).path
        if real.endswith("/bin/java"):
            homes.setdefault(posixpath.dirname(posixpath.dirname(real)), f"{path} runs from it")
    env_home = ctx.config.env.get("JAVA_HOME", "")
    if env_home.startswith("/") and is_dir(ctx.tree, env_home):
        homes.setdefault(ctx.tree.resolve(env_home).path, "JAVA_HOME in the image Env")
    out: list[Addition] = []
    for home, why in sorted(homes.items()):
        reason = Reason(
            "profile",
            f"the JVM loads modules, security settings and its own "
            f"libraries from JAVA_HOME {home} ({why})",
            profile_name,
        )
        for name in ("lib", "conf", "jre/lib"):
            if exists(ctx.tree, f"{home}/{name}"):
                out += [
                    a
                    for a in subtree(ctx.tree, f"{home}/{name}", reason)
                    if a.path.rpartition("/")[2] not in _JDK_ONLY
                ]
        if exists(ctx.tree, f"{home}/release"):
            out.append(Addition(f"{home}/release", reason, False))
    return out, []


# -- shell scripts ------------------------------------------------------------------------

# Built into the Bourne-family shells (dash, bash, busybox ash, zsh, ksh, mksh) and fish:
# a script runs the builtin, never /usr/bin/echo, unless a program runs the word (`env
# echo`, `xargs printf`, `find -exec echo`, `exec echo`: _RUNNERS). `[` and `test` are
# left out by the scanner already. csh and tcsh have only `echo` built in: their
# scripts run /bin/true, /bin/pwd and printf as programs.
_BUILTINS = frozenset({"echo", "printf", "true", "false", "pwd"})
_CSH = frozenset({"csh", "tcsh"})
_CSH_BUILTINS = frozenset({"echo"})
_RUNNERS = r"\b(?:exec|env|xargs|nohup|nice|timeout|sudo|su-exec|gosu|chroot|setsid|stdbuf|ionice)"


def runs_as_program(text: str, word: str) -> bool:
    """Whether `word`, a shell builtin, may still run as a program in the script
    `text`: a program that runs others names it later on the same line."""
    pattern = _RUNNERS + r"\s[^\n;|&]*?(?<![\w./-])" + re.escape(word) + r"(?![\w.-])"
    return re.search(pattern, text) is not None


def _shell_script(tree: TreeView, path: str) -> tuple[str, str] | None:
    """(the text, the shell's name) of `path` when it is a `#!` script of one of
    `paths.SHELLS` (directly or through `env`), else None."""
    entry = tree.get(path)
    if entry is None or not entry.is_regular or entry.is_elf or entry.size > 1 << 20:
        return None
    text = read_text(tree, path)
    if text is None or not text.startswith("#!"):
        return None
    words = text[2:].split("\n", 1)[0].split()
    shell = next((n for w in words[:2] if (n := posixpath.basename(w)) in SHELLS), None)
    return (text, shell) if shell is not None else None


def shell_commands(ctx: ProfileContext, profile_name: str) -> Result:
    """Every program a kept shell script names in command position, and the files it
    sources: the branches a probe did not take run them too (see slimmer.plan.shellscan)."""
    env_path, workdir = search_path(ctx.config.env), ctx.config.working_dir or "/"
    out: list[Addition] = []
    for path in sorted(ctx.kept):
        found = tree_memo(
            ctx.tree,
            f"shell-commands:{env_path}:{workdir}:{path}",
            functools.partial(_script_needs, ctx.tree, path, env_path, workdir),
        )
        for program, why in found:
            out.append(Addition(program, Reason("profile", why, profile_name)))
    return out, []


def _script_needs(
    tree: TreeView, path: str, env_path: str, workdir: str
) -> tuple[tuple[str, str], ...]:
    script = _shell_script(tree, path)
    if script is None:
        return ()
    text, shell = script
    builtins = _CSH_BUILTINS if shell in _CSH else _BUILTINS
    out = []
    for word in command_words(text):
        if word in builtins and not runs_as_program(text, word):
            continue
        program = which(tree, word, env_path, workdir)
        if program is not None:
            out.append((program, f"{path} can run `{word}` on a branch the probes did not take"))
    for name in sourced_files(text):
        if name.startswith("/") and exists(tree, name):
            out.append((name, f"sourced by {path}"))
    return tuple(out)
