"""The values the planner works with: why a path is kept, and what profiles add."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from slimmer.image.paths import walk_below
from slimmer.model import ImageConfig, TreeView


@dataclass(frozen=True, slots=True)
class Reason:
    """Why one path is in the slim image.

    `kind` is one of: traced, elf, config, profile, user, verify, parent, symlink,
    runtime-dir. `detail` is a sentence a user can read ("DT_NEEDED libssl.so.3
    of /usr/bin/curl, found via ld.so.cache"); `source` names the profile or
    rule when there is one.
    """

    kind: str
    detail: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class Addition:
    """A path a profile (or another rule) wants kept.

    `path` may be a glob-free absolute path in the image; the planner adds its
    symlink chain and parents, and the ELF closure when `closure` is set.
    """

    path: str
    reason: Reason
    closure: bool = True


@dataclass(frozen=True)
class GeneratedFile:
    """A file slimmer writes into the slim image that the source does not hold as-is
    (e.g. a dpkg status trimmed to the packages whose files survive)."""

    path: str
    data: bytes
    reason: Reason
    mode: int = 0o644
    mtime: int = 0


@dataclass(frozen=True)
class ProfileContext:
    """What a profile may look at to decide whether it applies and what it adds."""

    tree: TreeView
    config: ImageConfig
    traced: frozenset[str]  # every path the trace named, as named (existing or not)
    executed: frozenset[str]  # paths of executed programs, as named
    kept: frozenset[str]  # the keep set so far (paths as kept, symlinks included)
    # each program the trace ran (as its exec named it) -> the paths its processes named
    runs: Mapping[str, frozenset[str]] = field(default_factory=dict)


# What an expander (code behind a profile's `expand = [...]`) returns, given the
# context and the name of the profile that asked for it.
Result = tuple[list[Addition], list[GeneratedFile]]
Expander = Callable[[ProfileContext, str], Result]
# The planner's per-pass callback: every applicable profile's additions.
ProfilesFn = Callable[[ProfileContext], tuple[Sequence[Addition], Sequence[GeneratedFile]]]


@dataclass(frozen=True)
class KeepSet:
    reasons: Mapping[str, tuple[Reason, ...]]
    generated: tuple[GeneratedFile, ...] = field(default=())

    def __contains__(self, path: object) -> bool:
        return path in self.reasons

    def paths(self) -> Iterable[str]:
        return self.reasons.keys()


# -- small queries of a ProfileContext, shared by the expanders ---------------------


def subtree(tree: TreeView, directory: str, reason: Reason, closure: bool = True) -> list[Addition]:
    """Additions for `directory` and everything below it."""
    return [Addition(p, reason, closure) for p in (directory, *walk_below(tree, directory))]


def argv_words(ctx: ProfileContext) -> list[str]:
    """Entrypoint, Cmd and HEALTHCHECK words (a CMD-SHELL string split on blanks)."""
    hc = list(ctx.config.healthcheck)
    health = (
        hc[1:]
        if hc[:1] == ["CMD"]
        else hc[1].split()
        if hc[:1] == ["CMD-SHELL"] and len(hc) > 1
        else []
    )
    return [*ctx.config.entrypoint, *ctx.config.cmd, *health]


def kept_named(ctx: ProfileContext, pattern: re.Pattern[str]) -> list[str]:
    """Kept and executed paths whose last name matches `pattern`, sorted."""
    return sorted(p for p in ctx.kept | ctx.executed if pattern.match(p.rpartition("/")[2]))
