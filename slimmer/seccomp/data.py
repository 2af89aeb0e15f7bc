"""The data beside the builder: `runtime.toml` (the groups of calls runtimes need on
unseen paths, each with its reason) and `engine_default.toml` (the names the engine's
default profile allows, moby v20.10.24). Read once, through importlib.resources, so an
installed wheel works as a checkout does."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib.resources import files
from typing import Any


@dataclass(frozen=True)
class Group:
    """Calls a runtime needs on paths no probe took: `kind` is the reason's name in the
    report (engine, loader, runtime), `why` the sentence behind it."""

    name: str
    kind: str
    why: str
    names: frozenset[str]


@dataclass(frozen=True)
class RuntimeNeeds:
    groups: tuple[Group, ...]
    fallback: frozenset[str]  # refused with ENOSYS, not EPERM, when not allowed
    fallback_why: str
    imports: dict[str, frozenset[str]]  # libc function -> the calls it makes
    sensor: frozenset[str]  # strace's own calls: diagnosis runs only


@dataclass(frozen=True)
class EngineDefault:
    """The engine's default profile as names: `names` on every architecture, `arch`
    the extras of one (OCI names: amd64, arm64)."""

    source: str
    engine: str
    names: frozenset[str]
    arch: dict[str, frozenset[str]]

    def allowed(self, architecture: str) -> frozenset[str]:
        """What the default allows a container of `architecture` (default capabilities)."""
        return self.names | self.arch.get(architecture, frozenset())


def _toml(name: str) -> dict[str, Any]:
    return tomllib.loads((files("slimmer.seccomp") / name).read_text(encoding="utf-8"))


@functools.cache
def runtime_needs() -> RuntimeNeeds:
    doc = _toml("runtime.toml")
    groups = tuple(
        Group(name, g["kind"], " ".join(g["why"].split()), frozenset(g["names"]))
        for name, g in doc["group"].items()
    )
    return RuntimeNeeds(
        groups=groups,
        fallback=frozenset(doc["fallback"]["names"]),
        fallback_why=doc["fallback"]["why"],
        imports={f: frozenset(calls) for f, calls in doc["imports"].items()},
        sensor=frozenset(doc["sensor"]["names"]),
    )


@functools.cache
def engine_default() -> EngineDefault:
    doc = _toml("engine_default.toml")
    arch = {a: frozenset(v["names"]) for a, v in doc.get("arch", {}).items()}
    return EngineDefault(doc["source"], doc["engine"], frozenset(doc["names"]), arch)
