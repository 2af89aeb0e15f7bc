"""Sizes, ratios and percentages as users write them (click types: `slimmer.cli.params`).

Sizes follow dive's parser (go-humanize `ParseBytes`), so a `--max-wasted`
copied from a dive CI config means the same number of bytes:

- a number, optionally with a fraction (`1.5`), then optional spaces, then an
  optional unit, case-insensitive;
- decimal units: `B`, `k`/`kB`, `M`/`MB`, `G`/`GB`, `T`/`TB`, `P`/`PB`,
  `E`/`EB` (1 MB = 1,000,000 bytes);
- binary units: `Ki`/`KiB`, `Mi`/`MiB`, `Gi`/`GiB`, ... (1 MiB = 1,048,576 bytes);
- a plain number is bytes; the product is truncated to whole bytes, as dive does.

A ratio is `0.9` or `90%`. An amount (`--max-wasted`, `--max-reclaimable`,
`--max-growth`) is either: `20MB` is bytes, `10%` is a ratio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_UNITS: dict[str, int] = {"": 1, "b": 1}
for _i, _prefix in enumerate("kmgtpe", start=1):
    _UNITS[_prefix] = _UNITS[_prefix + "b"] = 1000**_i
    _UNITS[_prefix + "i"] = _UNITS[_prefix + "ib"] = 1024**_i

_NUMBER = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)$")
_PERCENT = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*%$")


class SizeError(ValueError):
    """A value that is not a size, ratio or amount; the message says why."""


def parse_size(value: str | int) -> int:
    """`80MB` -> 80_000_000, `1.5GiB` -> 1_610_612_736, `4096` -> 4096."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SizeError("not a size (expected e.g. 80MB, 1.5GiB or a number of bytes)")
    if isinstance(value, int):
        if value < 0:
            raise SizeError("a size cannot be negative")
        return value
    match = _NUMBER.match(value.strip())
    if match is None:
        raise SizeError("not a size (expected e.g. 80MB, 1.5GiB or a number of bytes)")
    number, unit = match.groups()
    multiplier = _UNITS.get(unit.lower())
    if multiplier is None:
        raise SizeError(f"unknown size unit {unit!r} (use B, kB, MB, GB, KiB, MiB, GiB, ...)")
    # float arithmetic and truncation on purpose: go-humanize does the same
    return int(float(number) * multiplier)


def parse_ratio(value: str | int | float, *, at_most_one: bool = True) -> float:
    """`0.9` -> 0.9, `90%` -> 0.9; within [0, 1] unless `at_most_one` is false."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SizeError("not a ratio (expected e.g. 0.9 or 90%)")
    ratio = _percent(value) if isinstance(value, str) and "%" in value else _plain(value)
    if ratio < 0 or (at_most_one and ratio > 1):
        raise SizeError("must be between 0 and 1 (or 0% and 100%)")
    return ratio


def _percent(text: str) -> float:
    match = _PERCENT.match(text.strip())
    if match is None:
        raise SizeError("not a percentage (expected e.g. 5%)")
    return float(Decimal(match.group(1)) / 100)  # correctly rounded, like float("0.05")


def _plain(value: str | int | float) -> float:
    try:
        ratio = float(Decimal(str(value).strip()))
    except InvalidOperation:
        raise SizeError("not a ratio (expected e.g. 0.9 or 90%)") from None
    if ratio != ratio or ratio in (float("inf"), float("-inf")):
        raise SizeError("not a ratio (expected e.g. 0.9 or 90%)")
    return ratio


@dataclass(frozen=True)
class Amount:
    """A limit given either as bytes (`20MB`) or as a ratio (`10%`): one is None."""

    bytes: int | None = None
    ratio: float | None = None

    @property
    def is_ratio(self) -> bool:
        return self.ratio is not None


def parse_amount(value: str | int) -> Amount:
    """`20MB` -> Amount(bytes=20_000_000); `10%` -> Amount(ratio=0.1).

    Percentages may exceed 100%. A whole number is bytes (dive's
    `highestWastedBytes: 1000000`); a bare fraction is refused: `0.1` is likely
    a ratio meant as `10%` and would otherwise be 0 bytes.
    """
    if isinstance(value, float):
        raise SizeError("not a size or percentage (expected e.g. 20MB or 10%)")
    if isinstance(value, str) and value.strip().endswith("%"):
        return Amount(ratio=parse_ratio(value, at_most_one=False))
    if isinstance(value, str) and "." in value and not _has_unit(value):
        raise SizeError("ambiguous: write a ratio as a percentage (10%), or give a unit (0.5MB)")
    return Amount(bytes=parse_size(value))


def _has_unit(text: str) -> bool:
    return any(c.isalpha() for c in text)


def parse_count(value: str | int) -> int:
    """A non-negative whole number (`--max-layers`, `--max-files`)."""
    if isinstance(value, bool):
        raise SizeError("not a whole number")
    try:
        count = int(value.strip()) if isinstance(value, str) else int(value)
    except (ValueError, TypeError):
        raise SizeError("not a whole number") from None
    if isinstance(value, float) or count < 0:
        raise SizeError("must be a whole number, 0 or more")
    return count
