"""Every command's verdict, in one place (`slimmer.api`): which outcome fails, and
with which exit code. The command has rendered its value before it asks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from slimmer import api
from slimmer.analyse.check import BudgetResult, CheckResult, Measurements, Status, Unit
from slimmer.errors import ExitStatus, SlimError
from slimmer.findings.rules import RULES, Finding, FindingsReport, Severity
from slimmer.image.validate import Validation, Violation
from slimmer.pipeline.slim import SlimResult
from slimmer.plan.keep import KeepSet

MEASURED = Measurements(1, None, 1, 1, 1.0, 0, 0.0, 0, None, None)


def _rule(id: str, status: Status) -> BudgetResult:
    return BudgetResult(id, id, status, status is Status.WARN, Unit.BYTES, "max", 2.0, 1.0)


def _check(*statuses: Status) -> CheckResult:
    rules = tuple(_rule(f"rule-{n}", s) for n, s in enumerate(statuses))
    return CheckResult("app:1", "sha256:ab", rules, MEASURED)


def _exit(call: Callable[[], None]) -> tuple[ExitStatus, str] | None:
    """The exit code and message of the error `call()` raises, None when it passes."""
    try:
        call()
    except SlimError as exc:
        return exc.exit_code, str(exc)
    return None


def test_budget_fails_with_3_on_a_failed_rule_and_passes_warnings() -> None:
    assert _exit(lambda: api.raise_for_budget("app:1", _check())) is None
    assert _exit(lambda: api.raise_for_budget("app:1", _check(Status.PASS, Status.WARN))) is None
    code = _exit(lambda: api.raise_for_budget("app:1", _check(Status.WARN, Status.FAIL)))
    assert code == (
        ExitStatus.BUDGET,
        "checking app:1: budget exceeded, 1 rule failed: rule-1",
    )
    assert int(ExitStatus.BUDGET) == 3


def _findings(*severities: Severity) -> FindingsReport:
    by_severity = {r.severity: r for r in RULES}
    found = tuple(Finding(by_severity[s], f"/f{n}") for n, s in enumerate(severities))
    return FindingsReport("app:1", "sha256:ab", found)


def test_findings_fail_with_3_at_or_above_the_severity() -> None:
    report = _findings(Severity.LOW)
    assert _exit(lambda: api.raise_for_findings(report, Severity.MEDIUM)) is None
    low = _exit(lambda: api.raise_for_findings(report, Severity.LOW))
    assert low is not None and low[0] == ExitStatus.BUDGET
    assert low[1].startswith("linting app:1: 1 finding(s) at or above low: SLM-")
    assert _exit(lambda: api.raise_for_findings(_findings(), Severity.LOW)) is None


def test_validation_fails_with_7_on_a_violation_and_passes_warnings() -> None:
    ok = Validation("app:1", "sha256:ab", 1, 3, (), (Violation("order", "unsorted"),))
    assert _exit(lambda: api.raise_for_validation(ok)) is None
    bad = replace(ok, violations=(Violation("diff-id", "layer 1 does not match"),) * 2)
    code = _exit(lambda: api.raise_for_validation(bad))
    assert code is not None and int(code[0]) == 7
    assert code[1].startswith("validating app:1: 2 violations; first: ")


def _slim(verified: bool | None, tagged: bool) -> SlimResult:
    return SlimResult(
        "app:1", "sha256:aa", "app:slim", "sha256:bb", tagged, verified,
        10, 5, 2, 1, (), (), KeepSet({}), {}, (), (),
    )  # fmt: skip


@pytest.mark.parametrize(
    "verified,tagged,fails",
    [(True, True, False), (None, True, False), (False, True, False), (False, False, True)],
    ids=["verified", "--no-verify", "--force", "differed"],
)
def test_a_slim_fails_with_4_only_when_it_differed_and_was_not_tagged(
    verified: bool | None, tagged: bool, fails: bool
) -> None:
    code = _exit(lambda: api.raise_for_verdict(_slim(verified, tagged)))
    if fails:
        assert code is not None and int(code[0]) == 4
        assert "not tagged" in code[1]
    else:
        assert code is None
