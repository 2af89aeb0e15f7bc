"""The seccomp profile of a slim image, built from evidence; pure.

The allow list is the system calls seen in the traced runs (tracing and every
verification round), the calls runtimes need on paths no probe took (the groups of
`runtime.toml`: the engine's start-up, the dynamic loader, threads, signals, timers),
the calls a libc function makes when a kept ELF file imports it, and the calls a
verification round found refused. Every call keeps its reasons, as kept files do.

Rules this module follows:
- The default action is `SCMP_ACT_ERRNO` with the engine's own errno, EPERM: Docker
  20.10 has no `defaultErrnoRet` (it came with 23.0), and EPERM is what a call refused
  by the engine's default profile returns, so the app's error paths are the familiar
  ones. Newer calls that libc gives up on only on ENOSYS (clone3, statx, faccessat2...)
  get their own rule with `errnoRet` ENOSYS when they are not allowed, as the engine's
  default does for clone3: glibc then falls back to the older call.
- The allow list never goes past the engine's default profile for the image's
  architecture: the traced runs ran under that default, so a call it refuses was
  refused there too and the app worked without it. Such calls are listed as dropped.
- Architectures are the image's own, in the engine's `archMap` form (x86_64 with its
  x86 and x32 sub-architectures, aarch64 with arm), as the engine's default has them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from slimmer.errors import UsageError
from slimmer.seccomp.data import EngineDefault, RuntimeNeeds, engine_default, runtime_needs

ENOSYS = 38  # the same number on every Linux architecture the engine runs

# OCI architecture -> (libseccomp architecture, its sub-architectures), as moby's
# default profile maps them.
ARCHES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "amd64": ("SCMP_ARCH_X86_64", ("SCMP_ARCH_X86", "SCMP_ARCH_X32")),
    "arm64": ("SCMP_ARCH_AARCH64", ("SCMP_ARCH_ARM",)),
    "386": ("SCMP_ARCH_X86", ()),
    "arm": ("SCMP_ARCH_ARM", ()),
    "ppc64le": ("SCMP_ARCH_PPC64LE", ()),
    "s390x": ("SCMP_ARCH_S390X", ("SCMP_ARCH_S390",)),
}

# The order reasons are listed in, and the one a call is counted under.
KINDS = ("traced", "engine", "loader", "runtime", "import", "verify")


@dataclass(frozen=True)
class CallReason:
    kind: str  # one of KINDS
    detail: str

    def describe(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass(frozen=True)
class Evidence:
    """What the runs showed: every call traced; (kept ELF file, libc function) pairs it
    imports; (call, why) that a verification round found refused and added."""

    traced: frozenset[str]
    imports: tuple[tuple[str, str], ...] = ()
    widened: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Allowed:
    name: str
    reasons: tuple[CallReason, ...]

    @property
    def kind(self) -> str:
        return self.reasons[0].kind


@dataclass(frozen=True)
class SeccompProfile:
    architecture: str  # OCI name of the image's architecture
    allowed: tuple[Allowed, ...]  # sorted by name
    enosys: tuple[str, ...]  # refused with ENOSYS rather than EPERM
    dropped: tuple[str, ...]  # seen or needed, but refused by the engine's default too
    default_source: str
    default_count: int  # calls the engine's default allows on this architecture
    notes: tuple[str, ...] = field(default=())

    @property
    def names(self) -> frozenset[str]:
        return frozenset(a.name for a in self.allowed)

    @property
    def fewer(self) -> int:
        """How many fewer calls are allowed than under the engine's default profile."""
        return self.default_count - len(self.allowed)

    def by_kind(self) -> dict[str, tuple[str, ...]]:
        """Allowed calls grouped under their first reason, in `KINDS` order."""
        out: dict[str, list[str]] = {}
        for a in self.allowed:
            out.setdefault(a.kind, []).append(a.name)
        return {k: tuple(out[k]) for k in KINDS if k in out}

    def explain(self, name: str) -> str:
        """Why the call `name` is allowed, or that it is not."""
        for a in self.allowed:
            if a.name == name:
                return f"{name}: allowed; " + "; ".join(r.describe() for r in a.reasons)
        if name in self.dropped:
            return f"{name}: not allowed; the engine's default profile refuses it too"
        return f"{name}: not allowed (no run made it and no runtime rule needs it)"


def build_profile(
    evidence: Evidence,
    architecture: str,
    needs: RuntimeNeeds | None = None,
    default: EngineDefault | None = None,
) -> SeccompProfile:
    """The profile `evidence` supports on `architecture` (an OCI name, e.g. amd64)."""
    needs = needs or runtime_needs()
    default = default or engine_default()
    if architecture not in ARCHES:
        raise UsageError(
            f"--seccomp: no seccomp architecture is known for {architecture!r} "
            f"(known: {', '.join(sorted(ARCHES))})"
        )
    reasons = _reasons(evidence, needs)
    possible = default.allowed(architecture)
    allowed = tuple(
        Allowed(name, tuple(sorted(rs, key=lambda r: (KINDS.index(r.kind), r.detail))))
        for name, rs in sorted(reasons.items())
        if name in possible
    )
    names = {a.name for a in allowed}
    return SeccompProfile(
        architecture=architecture,
        allowed=allowed,
        enosys=tuple(sorted(needs.fallback - names)),
        dropped=tuple(sorted(set(reasons) - possible)),
        default_source=default.source,
        default_count=len(possible),
    )


def _reasons(evidence: Evidence, needs: RuntimeNeeds) -> dict[str, list[CallReason]]:
    out: dict[str, list[CallReason]] = {}

    def add(names: Iterable[str], reason: CallReason) -> None:
        for name in names:
            out.setdefault(name, []).append(reason)

    add(evidence.traced, CallReason("traced", "made in a traced run"))
    for g in needs.groups:
        add(g.names, CallReason(g.kind, f"{g.name}: {g.why}"))
    for path, function in evidence.imports:
        calls = needs.imports.get(function, frozenset())
        add(calls, CallReason("import", f"{path} imports {function}()"))
    for name, why in evidence.widened:
        add([name], CallReason("verify", why))
    return {n: _unique(rs) for n, rs in out.items()}


def _unique(reasons: list[CallReason]) -> list[CallReason]:
    return list(dict.fromkeys(reasons))


def engine_profile(profile: SeccompProfile, also: Iterable[str] = ()) -> dict[str, Any]:
    """`profile` in the engine's JSON format (`docker run --security-opt seccomp=FILE`),
    one rule per reason; `also` allows more calls (the sensor's, in a diagnosis run)."""
    arch, subs = ARCHES[profile.architecture]
    groups = profile.by_kind()
    extra = sorted(set(also) - profile.names)
    rules: list[dict[str, Any]] = [
        _rule(list(names), "SCMP_ACT_ALLOW", kind) for kind, names in groups.items()
    ]
    if extra:
        rules.append(_rule(extra, "SCMP_ACT_ALLOW", "sensor (diagnosis run only)"))
    enosys = [n for n in profile.enosys if n not in extra]
    if enosys:
        rule = _rule(enosys, "SCMP_ACT_ERRNO", "not allowed: ENOSYS, so libc falls back")
        rules.append({**rule, "errnoRet": ENOSYS})
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "archMap": [{"architecture": arch, "subArchitectures": list(subs)}],
        "syscalls": rules,
    }


def _rule(names: list[str], action: str, comment: str) -> dict[str, Any]:
    return {
        "names": names,
        "action": action,
        "args": [],
        "comment": comment,
        "includes": {},
        "excludes": {},
    }


def engine_json(profile: SeccompProfile, also: Iterable[str] = ()) -> str:
    """`engine_profile` as deterministic text: sorted keys, two-space indent."""
    return json.dumps(engine_profile(profile, also), indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class Refusal:
    """A call the profile refused in a run under it: the evidence a verification
    failure names."""

    call: str
    errno: str
    program: str

    def describe(self) -> str:
        return f"{self.call} ({self.errno}, by {self.program})"


def refusals(
    failed: Iterable[tuple[str, str, str]], profile: SeccompProfile, sensor: Iterable[str] = ()
) -> tuple[Refusal, ...]:
    """The (call, errno, program) failures that the profile explains: EPERM or ENOSYS
    from a call it does not allow (an ENOSYS of a fallback call is the profile's
    intent, not a refusal). A call the sensor needs is allowed in a diagnosis run, so
    it never fails there: `SeccompState.refused` finds those apart."""
    allowed = profile.names | frozenset(sensor)
    out = {
        (call, errno): Refusal(call, errno, program)
        for call, errno, program in failed
        if call not in allowed
        and errno in ("EPERM", "ENOSYS")
        and not (errno == "ENOSYS" and call in profile.enosys)  # the intended fallback
    }
    return tuple(out[k] for k in sorted(out))
