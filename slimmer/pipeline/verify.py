"""Verification: the slim image must answer the probes as the original did.

`compare_probes` lines up two runs' probe results and names what differs;
`missing_paths` reads a traced run of the slim image for the paths it looked
for and did not find although the original image has them: the files to blame.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from slimmer.model import TreeView
from slimmer.trace.events import Event, Trace
from slimmer.trace.probes import Observation, ProbeResult


@dataclass(frozen=True)
class ProbeDiff:
    label: str
    original: Observation
    slim: Observation

    def describe(self) -> str:
        a, b = self.original, self.slim
        parts = []
        if a.ok != b.ok:
            parts.append(f"passed {a.ok} -> {b.ok}")
        if a.code != b.code:
            parts.append(f"code {a.code} -> {b.code}")
        if a.output != b.output:
            at = next(
                (i for i, (x, y) in enumerate(zip(a.output, b.output, strict=False)) if x != y),
                min(len(a.output), len(b.output)),
            )
            parts.append(
                f"output differs from byte {at} ({len(a.output)} -> "
                f"{len(b.output)} bytes): {b.output[at : at + 80]!r}"
            )
        return f"{self.label}: " + "; ".join(parts)


def compare_probes(
    original: Sequence[ProbeResult], slim: Sequence[ProbeResult]
) -> tuple[ProbeDiff, ...]:
    """The probes whose observable result differs (ok, status/exit code, output)."""
    diffs = []
    for a, b in zip(original, slim, strict=True):
        if a.observable() != b.observable():
            diffs.append(ProbeDiff(a.probe.label, a.observable(), b.observable()))
    return tuple(diffs)


@dataclass(frozen=True)
class MissingPath:
    path: str
    by: str  # what looked for it: the syscall kind and the program


def missing_paths(
    traces: Iterable[Trace], source: TreeView, kept: Iterable[str]
) -> tuple[MissingPath, ...]:
    """Paths the slim run did not find that exist in the source image and were not kept."""
    have = set(kept)
    found: dict[str, MissingPath] = {}
    for trace in traces:
        for e in trace.events:
            if e.existed or e.path.startswith(_NOT_IMAGE):
                continue
            exe = trace.processes.get(e.pid, ("?",))[0] if trace.processes else "?"
            for name in {e.path, e.raw}:
                res = source.resolve(name)
                if res.entry is not None and res.path not in have and name not in found:
                    found[name] = MissingPath(name, f"{e.kind} by {exe}")
            parent = _missing_parent(e, source, have)
            if parent is not None and parent not in found:
                found[parent] = MissingPath(
                    parent, f"{PARENT_MISSING}: {e.path} ({e.kind} by {exe})"
                )
    return tuple(sorted(found.values(), key=lambda m: m.path))


PARENT_MISSING = "the parent directory of a created path is missing"
"""The cause named when the slim run could not create a file (a lock file, a socket,
a pid file) because its directory, which the source image has, was not kept: the
created path never existed in the source, so only its directory can be blamed."""


def _missing_parent(e: Event, source: TreeView, have: set[str]) -> str | None:
    """The directory of a path the slim run failed to create for want of it, when the
    source image has that directory and the slim image does not."""
    creating = e.kind == "create" or (e.kind == "open" and "O_CREAT" in e.flags.split("|"))
    if not creating or e.errno != "ENOENT":
        return None
    parent = posixpath.dirname(e.path)
    res = source.resolve(parent)
    if res.entry is None or not res.entry.is_dir or res.path in have:
        return None
    return parent


def denied(traces: Iterable[Trace]) -> tuple[str, ...]:
    """What the kernel refused the slim run (EACCES, EPERM) on paths of the image: the
    writes and reads that need another user (`--user`), one line each."""
    out: dict[str, None] = {}
    for trace in traces:
        for e in trace.events:
            if e.errno not in ("EACCES", "EPERM") or e.path.startswith(_NOT_IMAGE):
                continue
            exe = trace.processes.get(e.pid, ("?",))[0] if trace.processes else "?"
            mode = f" ({e.flags})" if e.flags else ""
            out.setdefault(f"{e.kind} {e.path}{mode}: {e.errno}, by {exe}", None)
    return tuple(out)


_NOT_IMAGE = ("/proc/", "/sys/", "/dev/", "/.slimmer")
