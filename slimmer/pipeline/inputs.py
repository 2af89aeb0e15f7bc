"""What the planner is fed from a traced run: the paths it named (and the directories
of the paths it created) and the ELF closure of the kept programs."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence

from slimmer.context.run import RunContext
from slimmer.elf import loader
from slimmer.model import TreeView
from slimmer.plan.keep import Reason
from slimmer.plan.planner import TracedPath
from slimmer.plan.written_dirs import WRITE_PARENT, written_dir
from slimmer.trace.events import Trace
from slimmer.trace.tracer import TracedRun


class ElfClosure:
    """The planner's ClosureFn over the loader: each file the loader opens, with why.

    What the loader could not do (a corrupt ELF file, a library it would not find)
    is collected in `warnings` for the report, never dropped.
    """

    def __init__(self) -> None:
        self.warnings: dict[str, None] = {}

    def __call__(
        self, tree: TreeView, paths: Sequence[str], env: Mapping[str, str], workdir: str
    ) -> Iterable[tuple[str, Reason]]:
        found = loader.closure(tree, paths, env, workdir)
        for w in found.warnings:
            self.warnings.setdefault(str(w), None)
        for m in found.missing:
            self.warnings.setdefault(
                f"{m.requester}: the loader would not find {m.kind} {m.name}", None
            )
        return [(edge.path, Reason("elf", edge.reason)) for edge in found.edges]


def traced_paths(traced_run: TracedRun) -> list[TracedPath]:
    """Every path a traced run found, as named, as joined raw, and as the kernel resolved
    it; and the directory of every path it created or tried to create (a lock file, a
    socket, a record written at run time), which must exist for the write to work."""
    out: list[TracedPath] = []
    for trace in traced_run.traces:
        for e, prog in zip(trace.events, event_programs(trace), strict=True):
            if e.path.startswith("/.slimmer"):
                continue
            exe = trace.processes.get(e.pid, ("",))[0] if trace.processes else ""
            if _creates(e.kind, e.flags):  # O_CREAT succeeds whether or not the file was there
                out.append(TracedPath(posixpath.dirname(e.path), "create-parent", exe, prog))
            if wrote := written_dir(e.kind, e.flags, e.path, e.errno):
                out.append(TracedPath(wrote, WRITE_PARENT, exe, prog))
            if not e.existed:
                continue
            for name in dict.fromkeys((e.path, e.raw, e.target if e.kind == "open" else "")):
                if name.startswith("/"):
                    out.append(TracedPath(name, e.kind, exe, prog))
    return out


def event_programs(trace: Trace) -> list[str]:
    """For each event of `trace`, the program its process was running: the path of the
    process's last successful exec before it (the exec's own event counts for the new
    program), or for a forked process that has not exec'd yet, its parent's program
    when it first appears ("" when unknown)."""
    current: dict[int, str] = {}
    out: list[str] = []
    for e in trace.events:
        if e.pid not in current:
            current[e.pid] = current.get(trace.parents.get(e.pid, -1), "")
        if e.kind == "exec" and e.existed and e.result >= 0 and not e.errno:
            current[e.pid] = e.path
        out.append(current[e.pid])
    return out


def outside_context(
    paths: Sequence[TracedPath], ctx: RunContext
) -> tuple[list[TracedPath], tuple[str, ...]]:
    """`paths` without those the run's context provides (under a mount target, or a
    delivered file): what was mounted is the context's, never a file to keep from the
    image. Also the sorted paths so left out, for the report."""
    kept: list[TracedPath] = []
    mounted: set[str] = set()
    for p in paths:
        if ctx.covers(p.path) is None:
            kept.append(p)
        else:
            mounted.add(p.path)
    return kept, tuple(sorted(mounted))


def _creates(kind: str, flags: str) -> bool:
    return kind in ("create", "rename", "link") or (
        kind == "open" and "O_CREAT" in flags.split("|")
    )
