"""Decide what the slim image keeps, and why. Pure: values in, a `KeepSet` out.

Sources of kept paths, each recorded as a `Reason`:
- traced: every path the traced run found (opened, stat-ed, executed, read
  as a link), as the image holds it; virtual filesystems and paths the run
  created itself are not in the image and are skipped;
- config: the entrypoint/cmd programs and the interpreters of scripts, the
  HEALTHCHECK's programs, WorkingDir, VOLUME directories, /etc/passwd and
  /etc/group when a User is set;
- elf: the dynamic loader's closure of every kept ELF file;
- profile: what `profiles/` says a runtime loads without being seen;
- user: --include / --include-bin;
and for every kept path, every symlink crossed to reach it (reason symlink) and
every parent directory (reason parent). Steps repeat until nothing new is
added. `--exclude` is applied last.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from slimmer.errors import UsageError
from slimmer.image.paths import SHELLS, Glob, compile_glob, expand, search_path, which
from slimmer.model import EntryType, ImageConfig, TreeView
from slimmer.plan.keep import GeneratedFile, KeepSet, ProfileContext, ProfilesFn, Reason
from slimmer.plan.runs import program_runs
from slimmer.plan.shellscan import command_words
from slimmer.plan.written_dirs import state_paths

VIRTUAL = ("/proc", "/sys", "/dev")
MAX_ROUNDS = 50

ClosureFn = Callable[
    [TreeView, Sequence[str], Mapping[str, str], str], Iterable[tuple[str, Reason]]
]
"""ELF closure: (tree, ELF paths, env, workdir) -> (path to keep, why) pairs."""


@dataclass(frozen=True, slots=True)
class TracedPath:
    """One path the traced run named and found, with what it did to it."""

    path: str
    kind: str
    by: str = ""
    # the program the naming process ran: the path its last successful exec named
    # (a forked process without an exec of its own: its parent's program)
    program: str = ""


@dataclass(frozen=True)
class UserRules:
    include: tuple[str, ...] = ()  # globs of image paths
    include_bin: tuple[str, ...] = ()  # programs, kept with their closure
    exclude: tuple[str, ...] = ()  # globs removed from the result


@dataclass
class _Keeper:
    tree: TreeView
    # tuples, not lists: most paths have one reason, and a tuple is the smaller object
    reasons: dict[str, tuple[Reason, ...]] = field(default_factory=dict)
    elf_done: set[str] = field(default_factory=set)

    def add(self, path: str, reason: Reason) -> str | None:
        """Keep `path` (as named) with its symlink chain and parents; return its real path."""
        res = self.tree.resolve(path)
        for link in res.chain:
            self._put(link, Reason("symlink", f"on the way to {res.path}", reason.source))
        if res.entry is None:
            return None
        self._put(res.path, reason)
        return res.path

    def _put(self, path: str, reason: Reason) -> None:
        if path == "/":
            return
        have = self.reasons.get(path, ())
        if reason not in have:
            self.reasons[path] = (*have, reason)
        parent = posixpath.dirname(path)
        while parent != "/" and parent not in self.reasons:
            # `path` is a real path (resolved by `add`), so its parents are directories.
            self.reasons[parent] = (Reason("parent", f"directory of {path}"),)
            parent = posixpath.dirname(parent)

    def pending_elf(self) -> list[str]:
        out = []
        for path in self.reasons:
            entry = self.tree.get(path)
            if (
                entry is not None
                and entry.is_regular
                and entry.is_elf
                and path not in self.elf_done
            ):
                out.append(path)
        self.elf_done.update(out)
        return sorted(out)


def plan(
    tree: TreeView,
    config: ImageConfig,
    traced: Iterable[TracedPath],
    closure: ClosureFn,
    profiles: ProfilesFn | None = None,
    rules: UserRules = UserRules(),
) -> KeepSet:
    keeper = _Keeper(tree)
    traced = list(traced)
    env_path = search_path(config.env)
    workdir = config.working_dir or "/"
    for t in traced:
        if not t.path.startswith(VIRTUAL) or t.path in ("/dev", "/proc", "/sys"):
            keeper.add(t.path, Reason("traced", f"{t.kind} by {t.by}" if t.by else t.kind))
        if t.kind == "exec":
            # The kernel loads a script's interpreter itself: no syscall names it.
            for interp in interpreters(tree, t.path, env_path, workdir):
                keeper.add(interp, Reason("traced", f"#! interpreter of {t.path}, executed"))
    for path, reason in state_paths(tree, ((t.path, t.kind, t.by) for t in traced)):
        keeper.add(path, reason)
    for path, reason in config_paths(tree, config):
        keeper.add(path, reason)
    for pattern in rules.include:
        for path in match_glob(tree, pattern):
            keeper.add(path, Reason("user", f"--include {pattern}"))
    for prog in rules.include_bin:
        keeper.add(prog, Reason("user", f"--include-bin {prog}"))
    generated = _fixed_point(keeper, config, traced, closure, profiles)
    reasons = _exclude(keeper.reasons, rules.exclude)
    return KeepSet({p: reasons[p] for p in sorted(reasons)}, tuple(generated))


def _fixed_point(
    keeper: _Keeper,
    config: ImageConfig,
    traced: list[TracedPath],
    closure: ClosureFn,
    profiles: ProfilesFn | None,
) -> list[GeneratedFile]:
    generated: dict[str, GeneratedFile] = {}
    env = config.env
    workdir = config.working_dir or "/"
    traced_set = frozenset(t.path for t in traced)
    executed = frozenset(t.path for t in traced if t.kind == "exec")
    runs = program_runs(traced)
    for _ in range(MAX_ROUNDS):
        before = len(keeper.reasons)
        elf = keeper.pending_elf()
        if elf:
            for path, reason in closure(keeper.tree, elf, env, workdir):
                keeper.add(path, reason)
        if profiles is not None:
            ctx = ProfileContext(
                keeper.tree, config, traced_set, executed, frozenset(keeper.reasons), runs
            )
            additions, gens = profiles(ctx)
            for add in additions:
                keeper.add(add.path, add.reason)
            for gen in gens:
                generated[gen.path] = gen
        if len(keeper.reasons) == before:
            break
    return list(generated.values())


def _exclude(
    reasons: dict[str, tuple[Reason, ...]], patterns: tuple[str, ...]
) -> dict[str, tuple[Reason, ...]]:
    if not patterns:
        return reasons
    rx = [_glob(p, "--exclude").regex for p in patterns]
    return {p: r for p, r in reasons.items() if not any(x.match(p) for x in rx)}


# -- the image config ---------------------------------------------------------


def config_paths(tree: TreeView, config: ImageConfig) -> list[tuple[str, Reason]]:
    """Paths the image config needs whatever the probes did."""
    out: list[tuple[str, Reason]] = []
    env_path, workdir = search_path(config.env), config.working_dir or "/"
    argv = [*config.entrypoint, *config.cmd]
    if argv:
        out += program_paths(tree, argv, env_path, "entrypoint/cmd", workdir)
    hc = config.healthcheck
    if hc and hc[0] == "CMD" and len(hc) > 1:
        out += program_paths(tree, list(hc[1:]), env_path, "HEALTHCHECK", workdir)
    elif hc and hc[0] == "CMD-SHELL" and len(hc) > 1:
        out += program_paths(tree, ["/bin/sh", "-c", hc[1]], env_path, "HEALTHCHECK", workdir)
    if config.working_dir:
        out.append((config.working_dir, Reason("config", "WorkingDir")))
    for vol in sorted((config.container.get("Volumes") or {}).keys()):
        out.append((str(vol), Reason("config", "VOLUME")))
    if config.user:
        for f in ("/etc/passwd", "/etc/group"):
            out.append((f, Reason("config", f"User {config.user} is looked up here")))
    return out


def program_paths(
    tree: TreeView, argv: Sequence[str], env_path: str, what: str, workdir: str = "/"
) -> list[tuple[str, Reason]]:
    """The program of `argv`, the interpreter of a script, and the programs a
    `sh -c` string runs (looked up as `paths.which` does, from `workdir`)."""
    out: list[tuple[str, Reason]] = []
    prog = which(tree, argv[0], env_path, workdir)
    if prog is None:
        return out
    out.append((prog, Reason("config", f"{what} program {argv[0]}")))
    out += [
        (p, Reason("config", f"interpreter of {prog} ({what})"))
        for p in interpreters(tree, prog, env_path, workdir)
    ]
    if posixpath.basename(tree.resolve(prog).path) in SHELLS and "-c" in argv[1:-1]:
        script = argv[list(argv).index("-c") + 1]
        for word in command_words(script):
            found = which(tree, word, env_path, workdir)
            if found:
                out.append((found, Reason("config", f"run by the {what} shell command")))
                out += [
                    (p, Reason("config", f"interpreter of {found} ({what})"))
                    for p in interpreters(tree, found, env_path, workdir)
                ]
    return out


def interpreters(
    tree: TreeView, prog: str, env_path: str, workdir: str = "/", depth: int = 0
) -> list[str]:
    """The `#!` interpreter of a script (and of `env NAME`), recursively."""
    res = tree.resolve(prog)
    if res.entry is None or not res.entry.is_regular or res.entry.is_elf or depth > 4:
        return []
    try:
        head = tree.read_bytes(res.path, 256)
    except (LookupError, FileNotFoundError):
        return []
    if not head.startswith(b"#!"):
        return []
    words = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").split()
    if not words:
        return []
    out = [words[0]]
    if posixpath.basename(words[0]) == "env":
        args = [w for w in words[1:] if not w.startswith("-")]
        if args:
            found = which(tree, args[0], env_path, workdir)
            if found:
                out.append(found)
    return out + [p for w in out for p in interpreters(tree, w, env_path, workdir, depth + 1)]


# -- globs ------------------------------------------------------------------------


def _glob(pattern: str, option: str) -> Glob:
    try:
        return compile_glob(pattern)
    except ValueError as exc:
        raise UsageError(f"{option} {pattern!r}: {exc}") from exc


def match_glob(tree: TreeView, pattern: str, option: str = "--include") -> list[str]:
    """Paths of `tree` matching `pattern` (see slimmer.image.paths for the syntax)."""
    return list(expand(tree, _glob(pattern, option)))


def kept_bytes(keep: KeepSet, tree: TreeView) -> dict[str, int]:
    """Bytes of the kept regular files, attributed to the first reason of each."""
    out: dict[str, int] = {}
    for path, reasons in keep.reasons.items():
        entry = tree.get(path)
        if entry is not None and entry.type is EntryType.FILE and reasons:
            kind = reasons[0].source or reasons[0].kind
            key = f"profile:{kind}" if reasons[0].kind == "profile" else reasons[0].kind
            out[key] = out.get(key, 0) + entry.size
    return out
