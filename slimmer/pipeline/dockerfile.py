"""A multi-stage Dockerfile that builds what `slim --base` wrote: a person reads it,
commits it, and rebuilds it in CI whenever the app image changes.

    FROM <the input image> AS app
    FROM scratch AS pick
    ADD slimmer-files/tree.tar /pick/     (directories and symlinks, exact)
    COPY --from=app [files..., "/pick/<dir>/"]   (one per directory, each with why)
    FROM <the base>
    COPY --from=pick /pick/ /
    COPY slimmer-files/...   (files slimmer generated: merged passwd, trimmed dpkg status)
    ENTRYPOINT/CMD/ENV/WORKDIR/USER/EXPOSE/HEALTHCHECK/STOPSIGNAL/LABEL

It builds with the engine's classic builder (API 1.41): no `# syntax=` line, no
BuildKit-only flags, no `RUN`, so neither the input nor the base needs a shell
or `tar`. The final image gets exactly the app layer slim writes, in one layer:

- The pick stage starts from scratch and holds the app layer under `/pick`. Its
  directories and symlinks (and any device node or FIFO) come from
  `slimmer-files/tree.tar` in the build context, which slimmer writes with each
  entry's mode, owner and xattrs: `ADD` of a local tar unpacks it with those,
  where a `COPY --from` of a directory would copy its contents and make the
  directory itself 0755 root, and a `COPY --from` of a symlink copies its target.
  Every ancestor of a kept path is in the tar too, with the base's metadata
  where the base has it: the final `COPY` writes each directory's metadata, and
  the base's `/tmp` (1777) must stay 1777.
- Regular files are copied from the app image, one `COPY --from=app` per
  directory; a `COPY --from` keeps each file's owner and mode. A path a `COPY`
  source cannot spell literally (one with `*`, `?`, `[`, `\\` or `$`, which the
  builder reads as a pattern, an escape or a variable, or a name that is not
  printable UTF-8) goes into the tar with its bytes instead.
- The classic builder commits a layer per instruction, and overlay2 stacks at
  most 128: after `PICK_STEPS` instructions a new scratch stage takes the
  previous one's `/pick` in one `COPY` and goes on.
- The final stage takes the last pick stage's `/pick/` in one `COPY`, then the
  generated files.

Documented differences from slim's own image: a hardlink (another name of a
file) is copied as a file of its own, since a `COPY` cannot link; and file
times are those the builder keeps. Paths, types, modes, owners, link targets and
bytes are slim's.

`slimmer-files/keep-list.txt` lists the pick stage's paths for a reviewer
(`keep_list`): it is what the Dockerfile and tree.tar build, in text.
"""

from __future__ import annotations

import json
import posixpath
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from slimmer.model import EntryType, FileEntry, ImageConfig, TreeView

GENERATED_DIR = "slimmer-files"
TREE_TAR = GENERATED_DIR + "/tree.tar"
KEEP_LIST = GENERATED_DIR + "/keep-list.txt"
PICK = "/pick/"
PICK_STEPS = 100  # instructions per pick stage: overlay2 stacks at most 128 layers
_UNSPELLABLE = frozenset("*?[\\$")  # a pattern, an escape or a variable to the builder


@dataclass(frozen=True)
class CopyGroup:
    """One `COPY --from=app` into the pick stage: the files of one directory (and, when
    slim changed their owner, that owner), and why they are kept."""

    sources: tuple[str, ...]
    dest: str  # the directory in the final image, ending in "/"
    chown: tuple[int, int] | None
    why: str


@dataclass(frozen=True)
class DockerfilePlan:
    text: str
    copies: tuple[CopyGroup, ...]
    exact_bytes: int  # the app layer's file bytes, as slimmer writes it
    copied_bytes: int  # the file bytes the pick stage takes (a hardlink's again)
    generated: tuple[str, ...]  # paths under GENERATED_DIR the build context must hold
    tree: tuple[FileEntry, ...]  # what TREE_TAR holds, sorted
    keep_list: str  # the text of KEEP_LIST


def plan_dockerfile(
    source_ref: str,
    source_id: str,
    base_ref: str,
    base_pin: str,
    entries: Sequence[FileEntry],
    generated: Iterable[str],
    config: ImageConfig,
    source_tree: TreeView,
    base_tree: TreeView | None,
    why: Mapping[str, str],
    user: str | None = None,
    labels: Mapping[str, str] | None = None,
    seccomp: str | None = None,
) -> DockerfilePlan:
    """The Dockerfile for an app layer of `entries` (paths as written) on `base_ref`.

    `base_pin` is `name@sha256:...` when the engine knows a registry digest, else
    the base's image ID (given in a comment). `why` maps a kept path to its
    first reason, for the comments. `seccomp` is the path of the seccomp profile
    written with `--seccomp`: a comment says how to run the image under it.
    """
    copied = [e for e in entries if e.is_regular and spellable(e.path)]
    tree = pick_tree(entries, {e.path for e in copied}, base_tree, source_tree)
    copies = _copies(copied, source_tree, why)
    gen = tuple(sorted(generated))
    text = "\n".join(
        [
            *_header(source_ref, source_id),
            *_pick_lines(tree, copies),
            "",
            *_base_lines(base_ref, base_pin),
            *_seccomp_lines(seccomp),
            *_final_copy_lines(tree, copies),
            *_generated_lines(gen),
            *_config_lines(config, user, labels or {}),
        ]
    )
    exact = sum(e.size for e in entries if e.is_regular)
    copied_bytes = sum(e.size for e in copied)
    return DockerfilePlan(
        text + "\n", copies, exact, copied_bytes, gen, tree, keep_list(tree, copied)
    )


def spellable(path: str) -> bool:
    """Whether a `COPY` source can name `path` literally: printable UTF-8 without a
    character the builder reads as a pattern (`*?[`), an escape or a variable."""
    if not path.isprintable() or any(c in _UNSPELLABLE for c in path):
        return False
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # a byte that is not UTF-8, kept as a surrogate
        return False
    return True


# -- the pick stage ------------------------------------------------------------------


def pick_tree(
    entries: Sequence[FileEntry],
    copied: set[str],
    base: TreeView | None,
    source: TreeView,
) -> tuple[FileEntry, ...]:
    """What `tree.tar` holds: every entry not copied from the app, and every ancestor
    directory of a kept path with the base's metadata (the source's on scratch or
    where the base lacks it; 0755 root where neither has it)."""
    out = {e.path: e for e in entries if e.path not in copied}
    for e in entries:
        for d in _ancestors(posixpath.dirname(e.path)):
            if d not in out:
                out[d] = _ancestor(d, base, source)
    return tuple(sorted(out.values(), key=lambda e: e.path.encode("utf-8", "surrogateescape")))


def _ancestor(path: str, base: TreeView | None, source: TreeView) -> FileEntry:
    for tree in (base, source):
        found = tree.get(path) if tree is not None else None
        if found is not None and found.is_dir:
            return FileEntry(path, EntryType.DIR, mode=found.mode, uid=found.uid,
                             gid=found.gid, mtime=found.mtime, xattrs=found.xattrs)  # fmt: skip
    return FileEntry(path, EntryType.DIR, mode=0o755)


def _ancestors(directory: str) -> list[str]:
    out = []
    while directory not in ("/", ""):
        out.append(directory)
        directory = posixpath.dirname(directory)
    return out


def _copies(
    copied: Sequence[FileEntry], source: TreeView, why: Mapping[str, str]
) -> tuple[CopyGroup, ...]:
    """One `COPY` per directory and owner change. A `COPY --from` keeps the app's
    owner; `--chown` only where slim gave the file another (`--user`)."""
    groups: dict[tuple[str, tuple[int, int] | None], list[str]] = defaultdict(list)
    for e in copied:
        theirs = source.get(e.path)
        same = theirs is not None and (theirs.uid, theirs.gid) == (e.uid, e.gid)
        groups[(posixpath.dirname(e.path), None if same else (e.uid, e.gid))].append(e.path)
    return tuple(
        CopyGroup(
            tuple(sorted(paths)),
            d.rstrip("/") + "/",
            chown,
            _summary(sorted({why.get(p, "kept") for p in paths})),
        )  # fmt: skip
        for (d, chown), paths in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or ()))
    )


def _summary(reasons: Sequence[str], most: int = 2) -> str:
    shown = "; ".join(r if len(r) <= 90 else r[:89] + "…" for r in reasons[:most])
    return shown + (f"; and {len(reasons) - most} more" if len(reasons) > most else "")


# -- the keep list -------------------------------------------------------------------


def keep_list(tree: Sequence[FileEntry], copied: Sequence[FileEntry]) -> str:
    """The pick stage's paths as text, one a line, sorted by their bytes:
    `PATH<TAB>KIND MODE UID:GID`, then a file's size, a link's `-> TARGET`, and
    `(tree.tar)` for a file whose bytes are in the tar. Names are escaped as
    `escape_name` says, so every line is one path."""
    lines = [
        "# The app layer the Dockerfile's pick stage builds, one path a line (slim --dockerfile).",
        "# PATH<TAB>KIND MODE UID:GID [SIZE] [-> TARGET]; in names \\\\ \\t \\n and \\xHH"
        " (a byte that is not printable UTF-8)",
    ]
    in_tar = {e.path for e in tree}
    everything = sorted([*tree, *copied], key=lambda e: e.path.encode("utf-8", "surrogateescape"))
    for e in everything:
        line = f"{escape_name(e.path)}\t{e.type.value} {e.mode & 0o7777:04o} {e.uid}:{e.gid}"
        if e.is_regular:
            line += f" {e.size}"
        if e.type in (EntryType.SYMLINK, EntryType.HARDLINK):
            line += f" -> {escape_name(e.link)}"
        if e.is_regular and e.path in in_tar:
            line += " (tree.tar)"
        lines.append(line)
    return "\n".join(lines) + "\n"


def escape_name(name: str) -> str:
    """`name` on one line of printable UTF-8: `\\` as `\\\\`, tab and newline as `\\t`
    and `\\n`, and every other byte of a character that is not printable, or not
    UTF-8 at all, as `\\xHH`."""
    out = []
    for c in name:
        if c == "\\":
            out.append("\\\\")
        elif c in "\t\n":
            out.append("\\t" if c == "\t" else "\\n")
        elif c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF:
            out.append(c)
        else:
            out += [f"\\x{b:02x}" for b in c.encode("utf-8", "surrogateescape")]
    return "".join(out)


# -- rendering -----------------------------------------------------------------------


def _header(source_ref: str, source_id: str) -> list[str]:
    return [
        "# Written by `slim --dockerfile`: the app's files on a smaller base.",
        "# Rebuild it whenever the app image changes; each COPY says why its files are kept.",
        f"# {source_ref} is image {source_id} on the engine that wrote this file",
        f"FROM {source_ref} AS app",
    ]


def _base_lines(base_ref: str, base_pin: str) -> list[str]:
    if base_ref == "scratch":
        return ["FROM scratch"]
    if "@sha256:" in base_pin:
        return [f"FROM {base_pin}"]
    return [f"# {base_ref} is image {base_pin} on the engine that wrote this file",
            f"FROM {base_ref}"]  # fmt: skip


def _pick_lines(tree: Sequence[FileEntry], copies: Sequence[CopyGroup]) -> list[str]:
    """The pick stages: the tar, then a `COPY` per group; a new stage every
    `PICK_STEPS` instructions."""
    steps: list[list[str]] = []
    if tree:
        odd = sum(1 for e in tree if e.is_regular)
        what = f" and {odd} files whose names a COPY cannot spell" if odd else ""
        steps.append([f"# directories and symlinks with their modes and owners{what}",
                      f"ADD {json.dumps([TREE_TAR, PICK])}"])  # fmt: skip
    for c in copies:
        chown = f" --chown={c.chown[0]}:{c.chown[1]}" if c.chown is not None else ""
        args = json.dumps([*c.sources, PICK.rstrip("/") + c.dest], ensure_ascii=False)
        steps.append([f"# {c.why}", f"COPY --from=app{chown} {args}"])
    if not steps:
        return []
    lines = ["", f"# the app layer, exactly; {KEEP_LIST} lists its paths", "FROM scratch AS pick"]
    for i, step in enumerate(steps):
        if i and i % PICK_STEPS == 0:
            n = i // PICK_STEPS
            lines += ["", f"FROM scratch AS {_stage(n)}",
                      f"COPY --from={_stage(n - 1)} {json.dumps([PICK, PICK])}"]  # fmt: skip
        lines += step
    return lines


def _stage(n: int) -> str:
    return "pick" if n == 0 else f"pick{n + 1}"


def _final_copy_lines(tree: Sequence[FileEntry], copies: Sequence[CopyGroup]) -> list[str]:
    steps = len(copies) + (1 if tree else 0)
    if not steps:
        return []
    last = _stage((steps - 1) // PICK_STEPS)
    return [f"COPY --from={last} {json.dumps([PICK, '/'])}"]


def _seccomp_lines(path: str | None) -> list[str]:
    if path is None:
        return []
    return [
        f"# Verified under the seccomp profile {path} (slim --seccomp); run it with:",
        f"#   docker run --security-opt seccomp={path} IMAGE",
    ]


def _generated_lines(generated: Sequence[str]) -> list[str]:
    if not generated:
        return []
    lines = [f"# generated by slimmer (in {GENERATED_DIR}/ beside this file)"]
    by_dir: dict[str, list[str]] = defaultdict(list)
    for path in generated:
        by_dir[posixpath.dirname(path)].append(path)
    for directory, paths in sorted(by_dir.items()):  # a layer per directory, not per file
        if len(paths) == 1:
            lines.append(f"COPY {json.dumps([GENERATED_DIR + paths[0], paths[0]])}")
        else:
            dest = directory.rstrip("/") + "/"
            lines.append(f"COPY {json.dumps([*(GENERATED_DIR + p for p in sorted(paths)), dest])}")
    return lines


def _config_lines(config: ImageConfig, user: str | None, labels: Mapping[str, str]) -> list[str]:
    c = config.container
    lines = [""]
    env = [str(item).partition("=") for item in c.get("Env") or ()]
    if env:  # one instruction: the classic builder commits a layer per instruction
        lines.append("ENV " + " \\\n    ".join(f"{k}={_quote(v)}" for k, _, v in env))
    if config.working_dir:
        lines.append(f"WORKDIR {config.working_dir}")
    for port in config.exposed_ports:
        lines.append(f"EXPOSE {port}")
    for volume in sorted((c.get("Volumes") or {}).keys()):
        lines.append(f"VOLUME {json.dumps([volume])}")
    if labels:
        pairs = [f"{_quote(k)}={_quote(v)}" for k, v in sorted(labels.items())]
        lines.append("LABEL " + " \\\n      ".join(pairs))
    if c.get("StopSignal"):
        lines.append(f"STOPSIGNAL {c['StopSignal']}")
    lines += _healthcheck(c.get("Healthcheck") or {})
    run_as = user if user is not None else config.user
    if run_as:
        lines.append(f"USER {run_as}")
    if config.entrypoint:
        lines.append(f"ENTRYPOINT {json.dumps(list(config.entrypoint))}")
    if config.cmd:
        lines.append(f"CMD {json.dumps(list(config.cmd))}")
    return lines


def _duration(nanos: int) -> str:
    """A Go duration as a HEALTHCHECK option takes it: whole seconds as `10s`."""
    return f"{nanos // 1_000_000_000}s" if nanos % 1_000_000_000 == 0 else f"{nanos // 1_000_000}ms"


def _quote(value: str) -> str:
    """A double-quoted Dockerfile word: `\\`, `"` and `$` (which ENV and LABEL would
    expand) escaped with a backslash."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def _healthcheck(hc: Mapping[str, object]) -> list[str]:
    test = list(hc.get("Test") or [])  # type: ignore[call-overload]
    if not test or test == ["NONE"]:
        return ["HEALTHCHECK NONE"] if test == ["NONE"] else []
    opts = []
    for key, flag in (
        ("Interval", "interval"),
        ("Timeout", "timeout"),
        ("StartPeriod", "start-period"),
    ):
        nanos = hc.get(key)
        if isinstance(nanos, int) and nanos:
            opts.append(f"--{flag}={_duration(nanos)}")
    retries = hc.get("Retries")
    if isinstance(retries, int) and retries:
        opts.append(f"--retries={retries}")
    form = json.dumps(test[1:]) if test[0] == "CMD" else str(test[1])
    return [f"HEALTHCHECK {' '.join(opts)} CMD {form}".replace("  ", " ")]
