"""A multi-stage Dockerfile that builds what `slim --base` wrote: a person reads it,
commits it, and rebuilds it in CI whenever the app image changes.

    FROM <the input image> AS app
    FROM <the base>
    COPY --from=app ...      (a bounded number, grouped by directory, each with why)
    COPY slimmer-files/...   (files slimmer generated: merged passwd, trimmed dpkg status)
    ENTRYPOINT/CMD/ENV/WORKDIR/USER/EXPOSE/HEALTHCHECK/STOPSIGNAL/LABEL

It builds with the engine's classic builder (API 1.41): no `# syntax=` line,
no BuildKit-only flags. Grouping rules:

- One `COPY` per directory and owner lists the directory's kept files. The
  destination ends in `/`, so each file lands under its own name.
- Symlinks are not listed there: `COPY --from` copies a listed link's target,
  and a program found through a link (`/usr/bin/java` -> the JDK) would no
  longer find its home. They are written as real symlinks into
  `slimmer-files/links/` of the build context instead. One `COPY` of that
  directory, after the files, puts them in place as links. Links inside a
  directory copied whole come with it.
- When there are more groups than `MAX_COPIES`, whole directories are copied
  instead, one subtree at a time. The next subtree is the one that merges the
  most groups per byte it adds beyond the keep set. A whole-directory COPY takes
  files the keep set left out, so `coarse_bytes` is reported beside the exact
  size. A directory is never copied whole when that would overwrite a base file
  that has other content (the base's libc stays the base's). On scratch, a
  top-level directory is never copied whole.
"""

from __future__ import annotations

import json
import posixpath
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from slimmer.model import EntryType, FileEntry, ImageConfig, TreeView

MAX_COPIES = 24
GENERATED_DIR = "slimmer-files"
LINKS_DIR = GENERATED_DIR + "/links"


@dataclass(frozen=True)
class CopyGroup:
    """One `COPY --from=app` instruction: sources, destination, owner, why."""

    sources: tuple[str, ...]
    dest: str
    owner: tuple[int, int]
    whole_dir: bool
    why: str


@dataclass(frozen=True)
class DockerfilePlan:
    text: str
    copies: tuple[CopyGroup, ...]
    exact_bytes: int  # the app layer's file bytes, as slimmer writes it
    coarse_bytes: int  # what the COPY instructions take from the app image
    generated: tuple[str, ...]  # paths under GENERATED_DIR the build context must hold
    links: tuple[FileEntry, ...]  # symlinks to put under GENERATED_DIR/links


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
    """The Dockerfile for an app layer of `entries` (source paths) on `base_ref`.

    `base_pin` is `name@sha256:...` when the engine knows a registry digest, else
    the base's image ID (given in a comment). `why` maps a kept path to its
    first reason, for the comments. `seccomp` is the path of the seccomp profile
    written with `--seccomp`: a comment says how to run the image under it.
    """
    files = [e for e in entries if e.type is not EntryType.SYMLINK]
    groups = _groups(files, base_tree, source_tree)
    copies = tuple(_copy(g, files, why) for g in groups)
    whole = [c.sources[0] for c in copies if c.whole_dir]
    links = tuple(
        e
        for e in entries
        if e.type is EntryType.SYMLINK and not any(e.path.startswith(d + "/") for d in whole)
    )
    gen = tuple(sorted(generated))
    text = "\n".join(
        [
            *_header(source_ref, source_id, base_ref, base_pin),
            *_seccomp_lines(seccomp),
            *(line for c in copies for line in _copy_lines(c)),
            *_links_lines(links),
            *_generated_lines(gen),
            *_config_lines(config, user, labels or {}),
        ]
    )
    exact = sum(e.size for e in entries if e.is_regular)
    coarse = sum(_bytes_copied(c, source_tree) for c in copies)
    return DockerfilePlan(text + "\n", copies, exact, coarse, gen, links)


# -- grouping ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Group:
    directory: str
    owner: tuple[int, int]
    names: tuple[str, ...]  # file paths; empty for a whole-directory copy
    whole: bool = False


def _groups(entries: Sequence[FileEntry], base: TreeView | None, source: TreeView) -> list[_Group]:
    by_dir: dict[tuple[str, tuple[int, int]], list[str]] = defaultdict(list)
    has_child = {posixpath.dirname(e.path) for e in entries}
    for e in entries:
        if not e.is_dir:
            by_dir[(posixpath.dirname(e.path), (e.uid, e.gid))].append(e.path)
    groups = [_Group(d, o, tuple(sorted(n))) for (d, o), n in sorted(by_dir.items())]
    groups += [
        _Group(e.path, (e.uid, e.gid), (), True)
        for e in entries
        if e.is_dir and e.path not in has_child
    ]
    if len(groups) > MAX_COPIES:
        sizes = _DirSizes(source, base, entries)
        while len(groups) > MAX_COPIES:
            collapsed = _collapse_once(groups, sizes)
            if collapsed is None:
                break
            groups = collapsed
    return sorted(groups, key=lambda g: (g.directory, g.owner))


class _DirSizes:
    """Per directory of the source: file bytes below it, kept bytes below it, and
    whether copying it whole would overwrite a base file with other content."""

    def __init__(self, source: TreeView, base: TreeView | None, kept: Sequence[FileEntry]):
        self.total: dict[str, int] = defaultdict(int)
        self.kept: dict[str, int] = defaultdict(int)
        self.unsafe: set[str] = {"/"}
        for e in source:
            for d in _ancestors(posixpath.dirname(e.path)):
                self.total[d] += e.size if e.is_regular else 0
            if base is not None and _conflicts(e, base):
                self.unsafe.update(_ancestors(posixpath.dirname(e.path)))
        for e in kept:
            for d in _ancestors(posixpath.dirname(e.path)):
                self.kept[d] += e.size if e.is_regular else 0
        if base is None:  # on scratch only a top-level directory is too coarse to copy
            self.unsafe.update(d for d in self.total if d.count("/") == 1)

    def extra(self, directory: str) -> int:
        return self.total[directory] - self.kept[directory]


def _conflicts(entry: FileEntry, base: TreeView) -> bool:
    theirs = base.get(entry.path)
    if theirs is None or entry.is_dir:
        return theirs is not None and entry.is_dir and not theirs.is_dir
    if entry.is_regular and theirs.is_regular:
        return entry.content is None or entry.content != theirs.content
    return (entry.type, entry.link) != (theirs.type, theirs.link)


def _collapse_once(groups: list[_Group], sizes: _DirSizes) -> list[_Group] | None:
    """Copy one directory whole: the one that merges most groups per byte it adds
    beyond the keep set, among those that overwrite no differing base file."""
    counts: dict[str, int] = defaultdict(int)
    for g in groups:
        for d in _ancestors(g.directory):
            if d not in sizes.unsafe:
                counts[d] += 1
    scored = [
        ((n - 1) / (sizes.extra(d) + (1 << 20)), d.count("/"), d)  # ties: the deepest
        for d, n in counts.items()
        if n > 1
    ]
    if not scored:
        return None
    _, _, top = max(scored)
    inside = [g for g in groups if g.directory == top or g.directory.startswith(top + "/")]
    rest = [g for g in groups if g not in inside]
    owners = {g.owner for g in inside}
    owner = inside[0].owner if len(owners) == 1 else (0, 0)
    return [*rest, _Group(top, owner, (), True)]


def _ancestors(directory: str) -> list[str]:
    out = []
    while directory not in ("/", ""):
        out.append(directory)
        directory = posixpath.dirname(directory)
    return out


def _copy(group: _Group, entries: Sequence[FileEntry], why: Mapping[str, str]) -> CopyGroup:
    if group.whole:
        inside = [
            e.path
            for e in entries
            if e.path == group.directory or e.path.startswith(group.directory + "/")
        ]
        reasons = sorted({why.get(p, "kept") for p in inside})
        text = f"the whole directory ({len(inside)} kept paths: {_summary(reasons)})"
        return CopyGroup((group.directory,), group.directory, group.owner, True, text)
    reasons = sorted({why.get(p, "kept") for p in group.names})
    dest = group.directory.rstrip("/") + "/"
    return CopyGroup(group.names, dest, group.owner, False, _summary(reasons))


def _summary(reasons: Sequence[str], most: int = 2) -> str:
    shown = "; ".join(r if len(r) <= 90 else r[:89] + "…" for r in reasons[:most])
    return shown + (f"; and {len(reasons) - most} more" if len(reasons) > most else "")


def _bytes_copied(copy: CopyGroup, tree: TreeView) -> int:
    if not copy.whole_dir:
        return sum(e.size for p in copy.sources if (e := tree.get(p)) and e.is_regular)
    top = copy.sources[0]
    return sum(
        e.size
        for e in tree
        if e.is_regular and (e.path == top or e.path.startswith(top.rstrip("/") + "/"))
    )


# -- rendering -----------------------------------------------------------------------


def _header(source_ref: str, source_id: str, base_ref: str, base_pin: str) -> list[str]:
    if base_ref == "scratch":
        base_line = "FROM scratch"
    elif "@sha256:" in base_pin:
        base_line = f"FROM {base_pin}"
    else:
        base_line = f"# {base_ref} is image {base_pin} on the engine that wrote this file\n"
        base_line += f"FROM {base_ref}"
    return [
        "# Written by `slim --dockerfile`: the app's files on a smaller base.",
        "# Rebuild it whenever the app image changes; each COPY says why its files are kept.",
        f"# {source_ref} is image {source_id} on the engine that wrote this file",
        f"FROM {source_ref} AS app",
        "",
        base_line,
    ]


def _seccomp_lines(path: str | None) -> list[str]:
    if path is None:
        return []
    return [
        f"# Verified under the seccomp profile {path} (slim --seccomp); run it with:",
        f"#   docker run --security-opt seccomp={path} IMAGE",
    ]


def _copy_lines(c: CopyGroup) -> list[str]:
    chown = f" --chown={c.owner[0]}:{c.owner[1]}" if c.owner != (0, 0) else ""
    args = json.dumps([*c.sources, c.dest], ensure_ascii=False)
    return [f"# {c.why}", f"COPY --from=app{chown} {args}"]


def _links_lines(links: Sequence[FileEntry]) -> list[str]:
    if not links:
        return []
    return [
        f"# {len(links)} symlinks the app uses, as links (COPY --from would copy their targets)",
        f"COPY {json.dumps([LINKS_DIR + '/', '/'])}",
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
