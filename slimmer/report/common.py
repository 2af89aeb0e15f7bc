"""Formatting helpers shared by the renderers."""

from __future__ import annotations

import json
from typing import Any


def human_bytes(n: int | float) -> str:
    """Decimal units, as `docker images` and dive print them (1 MB = 1,000,000 B)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`1 layer`, `2 layers`, `1,234 files`: a number with its noun agreeing."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def dump_json(doc: Any) -> str:
    """The one JSON encoding of machine output: sorted keys, two-space indent."""
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=True) + "\n"
