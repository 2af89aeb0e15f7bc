"""Small helpers shared by the expander families."""

from __future__ import annotations

from collections.abc import Iterable

from slimmer.plan.keep import Addition


def not_kept(additions: Iterable[Addition], kept: frozenset[str]) -> list[Addition]:
    """The additions whose path is not kept yet."""
    return [a for a in additions if a.path not in kept]
