"""Debian version numbers, compared the way dpkg compares them.

A version is `[epoch:]upstream[-revision]` (Debian Policy 5.6.12). The epoch is
the digits before the first `:` (0 when absent); the revision is what follows
the last `-` ("" when absent, which compares equal to "0"); the upstream part is
what is left, so it may itself hold `:` and `-`.

Two versions compare by epoch (as a number), then upstream, then revision. The
upstream and revision strings compare as dpkg's `verrevcmp` does: alternately a
run of non-digits, compared character by character, then a run of digits,
compared as numbers (an empty run is 0). In the non-digit runs letters sort
before non-letters, `~` sorts before everything, even the end of the string
(so `1.0~rc1` < `1.0`), and the end sorts before anything but `~`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from slimmer.bases.errors import DebianError

_VALID = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.+-~:")


@dataclass(frozen=True)
class DebVersion:
    """One parsed version; `str()` gives back the text it was parsed from."""

    epoch: int
    upstream: str
    revision: str
    text: str

    def __str__(self) -> str:
        return self.text


def parse_version(text: str) -> DebVersion:
    """Split `text` into epoch, upstream and revision; `DebianError` when it is not
    a version dpkg would accept (empty upstream, a non-numeric epoch, a stray
    character, an upstream that does not start with a digit)."""
    text = text.strip()
    epoch_text, colon, rest = text.partition(":")
    if not colon:
        epoch_text, rest = "0", text
    upstream, hyphen, revision = rest.rpartition("-")
    if not hyphen:
        upstream, revision = rest, ""
    problem = _problem(epoch_text, upstream, revision, bool(hyphen))
    if problem:
        raise DebianError(f"reading version {text!r}: {problem}")
    return DebVersion(int(epoch_text), upstream, revision, text)


def _problem(epoch: str, upstream: str, revision: str, has_revision: bool) -> str:
    if not epoch.isdigit():
        return "the epoch is not a number"
    if not upstream or not upstream[0].isdigit():
        return "the upstream version must start with a digit"
    if has_revision and not revision:
        return "the revision after '-' is empty"
    bad = sorted(set(upstream + revision) - _VALID)
    return f"invalid character {bad[0]!r}" if bad else ""


def compare_versions(a: str | DebVersion, b: str | DebVersion) -> int:
    """-1, 0 or 1 as `a` sorts before, equal to or after `b` (dpkg's order)."""
    va = a if isinstance(a, DebVersion) else parse_version(a)
    vb = b if isinstance(b, DebVersion) else parse_version(b)
    if va.epoch != vb.epoch:
        return -1 if va.epoch < vb.epoch else 1
    return _verrevcmp(va.upstream, vb.upstream) or _verrevcmp(va.revision, vb.revision)


version_key: Any = functools.cmp_to_key(compare_versions)
"""A sort key: `sorted(versions, key=version_key)` sorts in dpkg's order."""


def _order(char: str) -> int:
    """The weight of one character in a non-digit run ("" is the end of the run)."""
    if char == "~":
        return -1
    if not char or char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _verrevcmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ca = a[i] if i < len(a) and not a[i].isdigit() else ""
            cb = b[j] if j < len(b) and not b[j].isdigit() else ""
            if _order(ca) != _order(cb):
                return -1 if _order(ca) < _order(cb) else 1
            i += 1 if ca else 0
            j += 1 if cb else 0
        i, da = _digits(a, i)
        j, db = _digits(b, j)
        if da != db:
            return -1 if da < db else 1
    return 0


def _digits(text: str, start: int) -> tuple[int, int]:
    """(index after the run of digits at `start`, its value; 0 for an empty run)."""
    end = start
    while end < len(text) and text[end].isdigit():
        end += 1
    return end, int(text[start:end] or "0")
