"""Findings before and after slimming, side by side: fixed, still present, new.

Pure. Two findings are the same when their ID, evidence and detail are (a path
kept by slimming keeps its findings; a secret in ENV survives because slimming
keeps the config).
"""

from __future__ import annotations

from dataclasses import dataclass

from slimmer.findings.rules import Finding, FindingsReport, Severity, sort_findings


@dataclass(frozen=True)
class FindingsDelta:
    """What slimming did to the findings of its input."""

    before: str  # the input's reference
    after: str  # the result's reference
    fixed: tuple[Finding, ...]  # in the input, gone from the result
    still: tuple[Finding, ...]  # in both
    new: tuple[Finding, ...]  # only in the result

    def counts(self) -> dict[str, int]:
        return {"fixed": len(self.fixed), "still": len(self.still), "new": len(self.new)}

    def remaining(self, severity: Severity) -> tuple[Finding, ...]:
        """The result's findings at or above `severity` (still present and new)."""
        return tuple(f for f in (*self.still, *self.new) if f.severity >= severity)


def compare_findings(before: FindingsReport, after: FindingsReport) -> FindingsDelta:
    old = {f.key: f for f in before.findings}
    now = {f.key: f for f in after.findings}
    return FindingsDelta(
        before=before.ref,
        after=after.ref,
        fixed=sort_findings(f for k, f in old.items() if k not in now),
        still=sort_findings(f for k, f in now.items() if k in old),
        new=sort_findings(f for k, f in now.items() if k not in old),
    )
