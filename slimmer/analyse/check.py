"""`slim check`: size budgets as small rule objects, evaluated into a verdict.

Pure: rules take `BudgetFacts` (an `Inspection`, plus the compressed size, the
image's paths and a baseline when a rule needs them) and return frozen
`BudgetResult`s; `evaluate` gathers them into a `CheckResult`. Nothing here reads
files or prints; `slimmer.analyse.checkconfig` builds the rules, `slimmer.report.check_view`
renders the result.

Each rule has a `name` (its flag without dashes: `max-size`), a threshold and a
`warn` flag: a warning rule that is broken reports WARN and never fails the
check. Limits are inclusive: a value equal to its limit passes, as in dive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, ClassVar, Protocol

from slimmer.analyse.sizes import Amount
from slimmer.globs import loose_glob

if TYPE_CHECKING:  # only a type here: keeps `slim check --help` from loading the reader
    from slimmer.analyse.inspect import Inspection

SCHEMA = "slimmer.check/v1"


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


class Unit(StrEnum):
    """How a rule's measured value and limit are to be read (and shown)."""

    BYTES = "bytes"
    RATIO = "ratio"
    COUNT = "count"
    PATHS = "paths"


@dataclass(frozen=True)
class Baseline:
    """The image size recorded in an earlier report (`--baseline`)."""

    source: str
    schema: str
    ref: str
    size_bytes: int


@dataclass(frozen=True)
class BudgetFacts:
    """Everything the rules look at. `paths` lists every path of the merged tree."""

    inspection: Inspection
    compressed_bytes: int | None = None
    baseline: Baseline | None = None
    paths: tuple[str, ...] = ()
    findings: tuple[FindingFact, ...] | None = None


@dataclass(frozen=True)
class FindingFact:
    """One `slim lint` finding as `max-findings` sees it: its severity and a label
    (`SLM-SHELL /usr/bin/bash`). The findings themselves are slimmer.findings'."""

    severity: str
    label: str


@dataclass(frozen=True)
class BudgetResult:
    """One rule's outcome.

    `value` is what was measured and `limit` the threshold, both in `unit`;
    `bound` is "max" (value must be <= limit) or "min" (value must be >= limit).
    `offenders` names the paths a `forbid` rule found. `id` is unique within a
    check (`forbid:@shells`); `rule` is the rule's name (`forbid`).
    """

    id: str
    rule: str
    status: Status
    warn: bool
    unit: Unit
    bound: str
    value: float
    limit: float
    offenders: tuple[str, ...] = ()
    note: str = ""

    @property
    def broken(self) -> bool:
        return self.status is not Status.PASS


@dataclass(frozen=True)
class Measurements:
    """The numbers the rules were evaluated on, for the report."""

    size_bytes: int
    compressed_bytes: int | None
    layers: int
    files: int
    efficiency: float
    wasted_bytes: int
    user_wasted_percent: float
    reclaimable_bytes: int
    baseline_bytes: int | None
    baseline_source: str | None


@dataclass(frozen=True)
class CheckResult:
    image: str
    id: str
    results: tuple[BudgetResult, ...]
    measurements: Measurements

    @property
    def verdict(self) -> Status:
        """FAIL when a failing rule broke, WARN when only warning rules did, else PASS."""
        statuses = {r.status for r in self.results}
        for status in (Status.FAIL, Status.WARN):
            if status in statuses:
                return status
        return Status.PASS

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)


class BudgetRule(Protocol):
    name: ClassVar[str]

    @property
    def warn(self) -> bool: ...

    @property
    def id(self) -> str: ...

    def evaluate(self, facts: BudgetFacts) -> BudgetResult: ...


def _status(ok: bool, warn: bool) -> Status:
    if ok:
        return Status.PASS
    return Status.WARN if warn else Status.FAIL


def _at_most(
    rule: BudgetRule, value: float, limit: float, unit: Unit, note: str = ""
) -> BudgetResult:
    return BudgetResult(
        rule.id,
        rule.name,
        _status(value <= limit, rule.warn),
        rule.warn,
        unit,
        "max",
        value,
        limit,
        note=note,
    )


def _at_least(rule: BudgetRule, value: float, limit: float, unit: Unit) -> BudgetResult:
    return BudgetResult(
        rule.id, rule.name, _status(value >= limit, rule.warn), rule.warn, unit, "min", value, limit
    )


def _amount(
    rule: BudgetRule, limit: Amount, value_bytes: int, whole: int, note: str = ""
) -> BudgetResult:
    """An `Amount` limit: bytes against bytes, or a ratio of `whole` against a ratio."""
    if limit.ratio is not None:
        ratio = value_bytes / whole if whole else 0.0
        return _at_most(rule, ratio, limit.ratio, Unit.RATIO, note)
    return _at_most(rule, value_bytes, limit.bytes or 0, Unit.BYTES, note)


# -- the rules ------------------------------------------------------------------


class _Named:
    """A rule whose id is its name (one instance per check)."""

    name: ClassVar[str]

    @property
    def id(self) -> str:
        return self.name


@dataclass(frozen=True)
class MaxSize(_Named):
    """Uncompressed size: the bytes of every layer's members (dive's image size)."""

    name: ClassVar[str] = "max-size"
    threshold: int
    warn: bool = False

    def evaluate(self, facts: BudgetFacts) -> BudgetResult:
        return _at_most(self, facts.inspection.size_bytes, self.threshold, Unit.BYTES)


@dataclass(frozen=True)
class MaxCompressedSize(_Named):
    """The gzip size a registry would store (see slimmer.image.compressed)."""

    name: ClassVar[str] = "max-compressed-size"
    threshold: int
    warn: bool = False

    def evaluate(self, facts: BudgetFacts) -> BudgetResult:
        if facts.compressed_bytes is None:
            raise ValueError("max-compressed-size needs the compressed size in BudgetFacts")
        return _at_most(self, facts.compressed_bytes, self.threshold, Unit.BYTES)


@dataclass(frozen=True)
class MaxLayers(_Named):
    name: ClassVar[str] = "max-layers"
    threshold: int
    warn: bool = False

    def evaluate(self, facts: BudgetFacts) -> BudgetResult:
        return _at_most(self, len(facts.inspection.layers), self.threshold, Unit.COUNT)


@dataclass(frozen=True)
class MaxFiles(_Named):
    """Regular files (and hardlinks) in the merged tree, as `slim inspect` counts them."""

    name: ClassVar[str] = "max-files"
    threshold: int
    warn: bool = False

    def evaluate(self, facts: BudgetFacts) -> BudgetResult:
        return _at_most(self, facts.inspection.files, self.threshold, Unit.COUNT)


@dataclass(frozen=True)
class MinEfficiency(_Named):
    """dive's `lowestEfficiency`: fails when efficiency < threshold."""

    name: ClassVar[str] = "min-efficiency"
    threshold: float
    warn: bool = False

    def evaluate(self, facts: BudgetFacts) -> BudgetResult:
        return _at_least(self, facts.inspection.efficiency, self.threshold, Unit.RATIO)


@dataclass(frozen=True)
class MaxWasted(_Named):
    """dive's waste rules. Bytes: `highestWastedBytes` (fails when wasted > limit).
    A ratio: `highestUserWastedPercent` (wasted bytes / bytes of all layers but the
    first; fails when above the limit)."""

    name: ClassVar[str] = "max-wasted"
    threshold: Amount
    warn: bool = False

    def evaluate(self, facts: BudgetFacts) -> BudgetResult:
        ins = facts.inspection
        if self.threshold.ratio is not None:
            return _at_most(self, ins.user_wasted_percent, self.threshold.ratio, Unit.RATIO)
        return _at_most(self, ins.wasted_bytes, self.threshold.bytes or 0, Unit.BYTES)


@dataclass(frozen=True)
class MaxReclaimable(_Named):
    """Bytes stored in layers but invisible in the merged tree (shadowed or deleted).
    A ratio is of the uncompressed size."""

    name: ClassVar[str] = "max-reclaimable"
    threshold: Amount
    warn: bool = False

    def evaluate(self, facts: BudgetFacts) -> BudgetResult:
        ins = facts.inspection
        return _amount(self, self.threshold, ins.reclaimable_bytes, ins.size_bytes)


@dataclass(frozen=True)
class MaxGrowth(_Named):
    """Growth of the uncompressed size over the baseline's; a ratio is of the baseline."""

    name: ClassVar[str] = "max-growth"
    threshold: Amount
    warn: bool = False

    def evaluate(self, facts: BudgetFacts) -> BudgetResult:
        if facts.baseline is None:
            raise ValueError("max-growth needs a baseline in BudgetFacts")
        base = facts.baseline.size_bytes
        growth = facts.inspection.size_bytes - base
        return _amount(self, self.threshold, growth, base, note=facts.baseline.source)


@dataclass(frozen=True)
class Forbid:
    """No path of the image may match `pattern`.

    A pattern is either a class:
    - `@shells`: shells found in the usual bin directories (sh, bash, busybox, ...);
    - `@package-managers`: apt, dpkg, apk, pip, npm, ... in those directories;
    - `@setuid` / `@setgid`: regular files with the setuid / setgid bit;
    or a glob matched against every path of the merged tree (any type, symlinks
    included), in `slimmer.globs`'s syntax: `*`, `?` and `[...]` stay within one
    path component, `**` crosses any number of them; a glob with no `/` matches a
    file name in any directory (`*.pyc`), one with a `/` matches the whole path
    (`/usr/bin/*sh`, `/opt/**`; the leading `/` may be left out).
    """

    name: ClassVar[str] = "forbid"
    pattern: str
    warn: bool = False

    @property
    def id(self) -> str:
        return f"forbid:{self.pattern}"

    def evaluate(self, facts: BudgetFacts) -> BudgetResult:
        found = forbidden(self.pattern, facts)
        return BudgetResult(
            self.id,
            self.name,
            _status(not found, self.warn),
            self.warn,
            Unit.PATHS,
            "max",
            len(found),
            0,
            offenders=found,
        )


# slimmer.findings.rules.Severity, lowest first (a test keeps the two in step).
SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class MaxFindings(_Named):
    """No `slim lint` finding at or above `threshold` (a severity); the offenders
    are the findings' labels."""

    name: ClassVar[str] = "max-findings"
    threshold: str
    warn: bool = False

    def evaluate(self, facts: BudgetFacts) -> BudgetResult:
        if facts.findings is None:
            raise ValueError("max-findings needs the findings in BudgetFacts")
        floor = SEVERITIES.index(self.threshold)
        found = tuple(f.label for f in facts.findings if SEVERITIES.index(f.severity) >= floor)
        return BudgetResult(
            self.id,
            self.name,
            _status(not found, self.warn),
            self.warn,
            Unit.COUNT,
            "max",
            len(found),
            0,
            offenders=found,
            note=f"findings at or above {self.threshold}",
        )


CLASSES: dict[str, Callable[[Inspection], tuple[str, ...]]] = {
    "@shells": lambda ins: ins.shells,
    "@package-managers": lambda ins: ins.package_managers,
    "@setuid": lambda ins: ins.setuid,
    "@setgid": lambda ins: ins.setgid,
}


def forbidden(pattern: str, facts: BudgetFacts) -> tuple[str, ...]:
    """The image's paths that `pattern` (a class or a glob, see `Forbid`) matches, sorted."""
    if pattern in CLASSES:
        return tuple(sorted(CLASSES[pattern](facts.inspection)))
    regex = glob_regex(pattern)
    return tuple(sorted(p for p in facts.paths if regex.match(p)))


def is_valid_pattern(pattern: str) -> bool:
    if pattern.startswith("@"):
        return pattern in CLASSES
    return bool(pattern.strip()) and "\x00" not in pattern


@lru_cache(maxsize=64)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a `Forbid` glob into a regex over absolute paths (`slimmer.globs.loose_glob`)."""
    return loose_glob(pattern).regex


# -- evaluation -------------------------------------------------------------------


def evaluate(rules: Sequence[BudgetRule], facts: BudgetFacts) -> CheckResult:
    """Run every rule against `facts`; the result keeps the rules' order."""
    ins = facts.inspection
    measurements = Measurements(
        size_bytes=ins.size_bytes,
        compressed_bytes=facts.compressed_bytes,
        layers=len(ins.layers),
        files=ins.files,
        efficiency=ins.efficiency,
        wasted_bytes=ins.wasted_bytes,
        user_wasted_percent=ins.user_wasted_percent,
        reclaimable_bytes=ins.reclaimable_bytes,
        baseline_bytes=facts.baseline.size_bytes if facts.baseline else None,
        baseline_source=facts.baseline.source if facts.baseline else None,
    )
    return CheckResult(ins.ref, ins.id, tuple(r.evaluate(facts) for r in rules), measurements)


def needs_compressed(rules: Sequence[BudgetRule]) -> bool:
    return any(isinstance(r, MaxCompressedSize) for r in rules)


def needs_paths(rules: Sequence[BudgetRule]) -> bool:
    return any(isinstance(r, Forbid) and r.pattern not in CLASSES for r in rules)


def needs_findings(rules: Sequence[BudgetRule]) -> bool:
    return any(isinstance(r, MaxFindings) for r in rules)
