"""`--seccomp`: the evidence of a profile from the traced runs, and the runs under it.

Tracing records every system call when a profile is wanted (`SeccompRun.record`).
Verification runs the slim image under the profile. When a probe then fails, a
diagnosis run traces it under the profile plus the sensor's own calls (strace runs
inside the container, under the container's filter): an EPERM or ENOSYS from a call
the profile does not allow is the refused call, named in the report and, while
rounds are left, added to the profile (reason `verify`).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from slimmer.elf.imports import imports_in_tree
from slimmer.errors import OutputUnwritable
from slimmer.model import TreeView
from slimmer.seccomp.data import runtime_needs
from slimmer.seccomp.profile import (
    Evidence,
    Refusal,
    SeccompProfile,
    build_profile,
    engine_json,
    refusals,
)
from slimmer.trace.events import Trace
from slimmer.trace.tracer import SeccompRun


def check_writable(path: Path) -> None:
    """Refuse, before any work, a `--seccomp` path that cannot be written (nothing is
    created here: a run that fails later leaves no empty file behind)."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        cause = "it is a directory"
    elif not parent.is_dir():
        cause = f"no directory {parent}"
    elif not os.access(path if path.exists() else parent, os.W_OK):
        cause = "permission denied"
    else:
        return
    raise OutputUnwritable(f"--seccomp {path}: cannot write the profile there: {cause}")


def traced_calls(traces: Iterable[Trace]) -> frozenset[str]:
    """Every call the runs made, less those refused (EPERM/ENOSYS) by a filter: a
    refused call is evidence only through `refusals`."""
    out: set[str] = set()
    for t in traces:
        refused = {name for name, _, _ in t.refusals}
        ok = {name for name in t.syscalls if name not in refused}
        out |= ok
        # a call refused once but made successfully elsewhere in the run still counts
        out |= _succeeded(t, refused)
    return frozenset(out)


def _succeeded(t: Trace, refused: set[str]) -> set[str]:
    return {e.syscall for e in t.events if e.syscall in refused and not e.errno}


def failed_calls(traces: Iterable[Trace]) -> list[tuple[str, str, str]]:
    """(call, errno, program) for each EPERM/ENOSYS failure in the traces."""
    out = []
    for t in traces:
        for name, errno, pid in t.refusals:
            program = t.processes.get(pid, ("?",))[0] if t.processes else "?"
            out.append((name, errno, program))
    return out


def imported_functions(tree: TreeView, kept_elf: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """(path, function) for each kept ELF file importing a libc function whose calls
    `runtime.toml` lists."""
    table = runtime_needs().imports
    out = []
    for path in sorted(set(kept_elf)):
        found = imports_in_tree(tree, path)
        out += [(path, f) for f in sorted(found.names & table.keys())]
    return tuple(out)


SENSOR_ONLY = "the app; allowed in the diagnosis run only as one of the sensor's calls"


@dataclass(frozen=True)
class SeccompState:
    """The evidence so far and the profile it gives."""

    architecture: str
    evidence: Evidence

    @property
    def profile(self) -> SeccompProfile:
        return build_profile(self.evidence, self.architecture)

    def verifying(self) -> SeccompRun:
        return SeccompRun(record=False, profile=engine_json(self.profile))

    def diagnosing(self) -> SeccompRun:
        """Traced under the profile plus the sensor's own calls."""
        return SeccompRun(record=True, profile=engine_json(self.profile, runtime_needs().sensor))

    def refused(self, traces: Iterable[Trace]) -> tuple[Refusal, ...]:
        """The calls the profile refuses on the diagnosed path: those that failed with
        EPERM/ENOSYS, and those the app made successfully only because the diagnosis
        run also allows the sensor's calls (the verification run refused them)."""
        traces = list(traces)
        profile = self.profile
        failed = refusals(failed_calls(traces), profile, runtime_needs().sensor)
        masked = sorted(traced_calls(traces) - profile.names - {r.call for r in failed})
        return (*failed, *(Refusal(c, "EPERM", SENSOR_ONLY) for c in masked))

    def widened(self, found: Iterable[Refusal], traces: Iterable[Trace]) -> SeccompState:
        """This state with the refused calls added (reason `verify`) and the diagnosis
        run's own calls as traced evidence."""
        more = tuple(
            (r.call, f"refused in a verification run ({r.errno}, by {r.program})") for r in found
        )
        ev = self.evidence
        new = Evidence(
            ev.traced | traced_calls(traces), ev.imports, tuple(dict.fromkeys((*ev.widened, *more)))
        )
        return SeccompState(self.architecture, new)


def start_state(tree: TreeView, architecture: str, traces: Iterable[Trace]) -> SeccompState:
    """The evidence of the tracing run: its calls, and the imports of the programs it
    ran and the shared libraries it opened."""
    traces = list(traces)
    loaded = {tree.resolve(p).path for t in traces for p in _loaded(t)}
    evidence = Evidence(traced_calls(traces), imported_functions(tree, loaded))
    return SeccompState(architecture, evidence)


def _loaded(trace: Trace) -> set[str]:
    """The programs a run executed and the shared libraries it opened."""
    libs = {p for p in trace.touched(["open"]) if ".so" in posixpath.basename(p)}
    return libs | set(trace.executables())


def write_profile(path: Path, profile: SeccompProfile) -> None:
    path.write_text(engine_json(profile))
