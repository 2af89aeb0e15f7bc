"""Renderers of a `CheckResult`: JSON against its schema, JUnit against a JUnit XSD,
GitHub annotations, Markdown and text."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from slimmer.analyse.check import SCHEMA as CHECK_SCHEMA
from slimmer.analyse.check import (
    BudgetRule,
    CheckResult,
    Forbid,
    MaxCompressedSize,
    MaxFiles,
    MaxGrowth,
    MaxLayers,
    MaxReclaimable,
    MaxSize,
    MaxWasted,
    MinEfficiency,
    Status,
    evaluate,
)
from slimmer.analyse.sizes import Amount
from slimmer.report import check_view
from tests.schemas import json_schema
from tests.test_check import facts

ROOT = Path(__file__).resolve().parent.parent
JSON_SCHEMA = json_schema(CHECK_SCHEMA)
JUNIT = xmlschema.XMLSchema(str(ROOT / "tests/data/junit.xsd"))

ALL_RULES: list[BudgetRule] = [
    MaxSize(80_000_000),
    MaxCompressedSize(50_000_000),
    MaxLayers(3, warn=True),
    MaxFiles(5000),
    MinEfficiency(0.9),
    MaxWasted(Amount(ratio=0.1)),
    MaxReclaimable(Amount(bytes=1_000_000)),
    Forbid("@shells", warn=True),
    Forbid("*.exe"),
    MaxGrowth(Amount(ratio=0.05)),
]


def result(rules: list[BudgetRule] | None = None, **changes: object) -> CheckResult:
    return evaluate(ALL_RULES if rules is None else rules, facts(**changes))


def results() -> dict[str, CheckResult]:
    return {
        "fail": result(),
        "warn": result([MaxLayers(3, warn=True), MaxSize(200_000_000)]),
        "pass": result([MaxSize(200_000_000)]),
        "empty": evaluate([], replace(facts(), compressed_bytes=None, baseline=None)),
    }


def test_statuses_of_the_sample() -> None:
    statuses = {r.id: r.status for r in result().results}
    assert statuses == {
        "max-size": Status.FAIL,
        "max-compressed-size": Status.PASS,
        "max-layers": Status.WARN,
        "max-files": Status.PASS,
        "min-efficiency": Status.PASS,
        "max-wasted": Status.PASS,
        "max-reclaimable": Status.FAIL,
        "forbid:@shells": Status.WARN,
        "forbid:*.exe": Status.PASS,
        "max-growth": Status.FAIL,
    }


# -- JSON ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fail", "warn", "pass", "empty"])
def test_json_validates_against_its_schema(name: str) -> None:
    doc = json.loads(check_view.render(results()[name], "json"))
    jsonschema.validate(doc, JSON_SCHEMA)
    assert doc["schema"] == CHECK_SCHEMA
    assert doc["verdict"] == ("pass" if name == "empty" else name)
    assert doc["passed"] is (name != "fail")


def test_json_contract() -> None:
    doc = check_view.to_json(result())
    assert sorted(doc) == [
        "image",
        "measurements",
        "passed",
        "rules",
        "schema",
        "summary",
        "verdict",
    ]
    assert doc["summary"] == {"total": 10, "pass": 5, "warn": 2, "fail": 3}
    assert doc["image"] == {"ref": "app:1", "id": "sha256:" + "ab" * 32}
    assert doc["measurements"]["baseline"] == {"source": "base.json", "size_bytes": 95_000_000}
    assert doc["measurements"]["compressed_bytes"] == 40_000_000
    size = doc["rules"][0]
    assert size == {
        "id": "max-size",
        "rule": "max-size",
        "status": "fail",
        "warn": False,
        "unit": "bytes",
        "bound": "max",
        "value": 100_000_000,
        "limit": 80_000_000,
        "offenders": [],
        "message": "uncompressed size 100.0 MB > limit 80.0 MB",
    }
    shells = next(r for r in doc["rules"] if r["id"] == "forbid:@shells")
    assert shells["offenders"] == ["/usr/bin/bash", "/usr/bin/dash"]
    assert shells["status"] == "warn" and shells["value"] == 2
    efficiency = next(r for r in doc["rules"] if r["rule"] == "min-efficiency")
    assert (efficiency["bound"], efficiency["value"], efficiency["limit"]) == ("min", 0.95, 0.9)


def test_json_is_deterministic() -> None:
    assert check_view.render(result(), "json") == check_view.render(result(), "json")
    text = check_view.render(result(), "json")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"


def test_json_check_report_can_be_a_baseline(tmp_path: Path) -> None:
    from slimmer.analyse.checkconfig import load_baseline

    path = tmp_path / "check.json"
    path.write_text(check_view.render(result(), "json"))
    assert load_baseline(path).size_bytes == 100_000_000


# -- JUnit -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fail", "warn", "pass", "empty"])
def test_junit_validates_against_the_jenkins_schema(name: str) -> None:
    xml = check_view.render(results()[name], "junit")
    JUNIT.validate(xml)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')


def test_junit_one_test_case_per_rule() -> None:
    root = ET.fromstring(check_view.to_junit(result()))
    suite = root.find("testsuite")
    assert suite is not None
    assert (root.get("tests"), root.get("failures")) == ("10", "3")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == (
        "slim check app:1",
        "10",
        "3",
    )
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [r.id for r in result().results]
    failed = {str(c.get("name")): c.find("failure") for c in cases if c.find("failure") is not None}
    assert sorted(failed) == ["max-growth", "max-reclaimable", "max-size"]
    size_failure = failed["max-size"]
    assert size_failure is not None
    assert size_failure.get("message") == "uncompressed size 100.0 MB > limit 80.0 MB"
    assert size_failure.get("type") == "max-size"
    warned = [c for c in cases if c.find("system-out") is not None]
    assert [c.get("name") for c in warned] == ["max-layers", "forbid:@shells"]
    out = warned[1].find("system-out")
    assert out is not None and out.text is not None
    assert out.text.startswith("warning: 2 paths match: /usr/bin/bash, /usr/bin/dash")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["verdict"] == "fail" and props["image.id"] == "sha256:" + "ab" * 32


def test_junit_survives_hostile_file_names() -> None:
    hostile = (
        "/evil\x01name",
        "/tab\there",
        "/x<y>&\"z'",
        "/emoji-\U0001f600",
        "/surrogate-\udcff",
    )
    res = evaluate([Forbid("/*")], replace(facts(), paths=hostile))
    xml = check_view.to_junit(res)
    JUNIT.validate(xml)
    failure = ET.fromstring(xml).find("testsuite/testcase/failure")
    assert failure is not None and "/evil\\x01name" in str(failure.get("message"))
    assert "/x<y>&\"z'" in str(failure.get("message"))


def test_junit_lists_every_offender_when_many() -> None:
    many = tuple(f"/bin/tool{i:02}" for i in range(25))
    xml = check_view.to_junit(evaluate([Forbid("/bin/*")], replace(facts(), paths=many)))
    failure = ET.fromstring(xml).find("testsuite/testcase/failure")
    assert failure is not None and failure.text is not None
    assert "(+15 more)" in str(failure.get("message"))
    assert all(p in failure.text for p in many)


# -- GitHub ----------------------------------------------------------------------------------


def test_github_annotations() -> None:
    lines = check_view.render(result(), "github").splitlines()
    annotations = [line for line in lines if line.startswith("::")]
    assert annotations[0] == (
        "::error title=slim check%3A max-size::app:1: uncompressed size 100.0 MB > limit 80.0 MB"
    )
    assert annotations[1].startswith("::warning title=slim check%3A max-layers::app:1: ")
    assert sum(a.startswith("::error ") for a in annotations) == 3
    assert sum(a.startswith("::warning ") for a in annotations) == 2
    assert "::warning title=slim check%3A forbid%3A@shells::" in "\n".join(annotations)
    assert lines[-1] == "FAIL: 3 failed, 2 warned, 5 passed"  # the text report follows


def test_github_escapes_data_and_properties() -> None:
    res = evaluate(
        [Forbid("/a,b:c")],
        replace(facts(), paths=("/a,b:c",), inspection=replace(facts().inspection, ref="app:1%\n")),
    )
    line = check_view.to_github(res).splitlines()[0]
    assert line == (
        "::error title=slim check%3A forbid%3A/a%2Cb%3Ac::app:1%25%0A: 1 path matches: /a,b:c"
    )


def test_github_passing_has_no_annotations() -> None:
    text = check_view.to_github(results()["pass"])
    assert "::" not in text.split("\n", 1)[0] and not text.startswith("::")


def test_step_summary(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    assert check_view.write_step_summary(result(), {}) is None
    assert check_view.write_step_summary(result(), {"GITHUB_STEP_SUMMARY": ""}) is None
    summary.write_text("# build\n")
    env = {"GITHUB_STEP_SUMMARY": str(summary)}
    assert check_view.write_step_summary(result(), env) == summary
    assert summary.read_text() == "# build\n" + check_view.to_markdown(result())


# -- Markdown and text ------------------------------------------------------------------------


def test_markdown() -> None:
    md = check_view.render(result(), "md")
    assert md.startswith("### ❌ slim check `app:1`: FAIL: 3 failed, 2 warned, 5 passed\n")
    assert "| ❌ fail | `max-size` | 100.0 MB | ≤ 80.0 MB |" in md
    assert "| ✅ pass | `min-efficiency` | 95.00% | ≥ 90.00% |" in md
    assert "| ⚠️ warn | `forbid:@shells` | 2 paths | none |" in md
    assert "<details><summary>forbid:@shells: 2 paths</summary>" in md
    assert "- `/usr/bin/bash`" in md


def test_markdown_escapes_table_cells() -> None:
    res = evaluate([Forbid("/a|b")], replace(facts(), paths=("/a|b",)))
    md = check_view.to_markdown(res)
    # in a table `|` is escaped; a list item's code span has no escapes (see
    # test_markdown_cells, which renders both)
    assert "| `forbid:/a\\|b` |" in md and "- `/a|b`" in md


def test_text() -> None:
    text = check_view.render(result(), "text")
    lines = text.splitlines()
    assert lines[0] == "slim check app:1 (sha256:abababababab)"
    assert "100.0 MB uncompressed; 40.0 MB gzip (estimated); 4 layers" in lines[1]
    assert "baseline 95.0 MB (base.json)" in lines[1]
    assert "  FAIL  max-size             uncompressed size 100.0 MB > limit 80.0 MB" in lines
    assert any(line.startswith("  WARN  forbid:@shells ") for line in lines)
    assert "  PASS  forbid:*.exe         nothing matches *.exe" in lines
    assert lines[-1] == "FAIL: 3 failed, 2 warned, 5 passed"


def test_close_values_are_told_apart() -> None:
    bytes_rule = evaluate([MaxSize(99_999_999)], facts()).results[0]
    assert check_view.describe(bytes_rule) == (
        "uncompressed size 100,000,000 B > limit 99,999,999 B"
    )
    ratio_rule = evaluate([MinEfficiency(0.9500001)], facts()).results[0]
    assert check_view.describe(ratio_rule) == "efficiency (dive) 95.00000% < limit 95.00001%"
    growth = evaluate([MaxGrowth(Amount(ratio=0.05))], facts()).results[0]
    assert check_view.describe(growth) == "growth over the baseline 5.26% > limit 5.00%"


def test_every_format_renders_every_result() -> None:
    for res in results().values():
        for fmt in check_view.FORMATS:
            assert check_view.render(res, fmt).endswith("\n")
