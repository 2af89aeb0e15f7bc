"""`slim lint` as a user runs it (the installed `slim`) on the fixture images: the
planted fixture `findings` gets every finding with its secrets masked, a clean
fixture (`c-static`) passes the checks it should, SARIF validates, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from slimmer.engine import Engine
from slimmer.findings.rules import RULE_IDS
from slimmer.report.trace_view import SCHEMA as PROFILE_SCHEMA
from slimmer.trace.events import Event, Trace
from tests.installed import run_slim
from tests.test_lint import LINT_SCHEMA, load_sarif_schema

pytestmark = [pytest.mark.engine, pytest.mark.e2e]

# The fake secrets planted in fixtures/findings: none may appear in any output.
SECRETS = (
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AKIAI44QH8DHBEXAMPLE",
    "ghp_Xq7vB2mK9pL4sT8wZ1nR6yC3dF5hJ0aE2gUi",
    "Xq7vB2mK9pL4sT8wZ1nR6yC3dF5hJ0aE2gUi",
)
# fixtures/findings has a HEALTHCHECK whose program is missing, so not this one.
NOT_PLANTED = {"SLM-HEALTHCHECK-MISSING"}


@pytest.fixture(scope="module")
def findings_archive(
    engine: Engine, fixture_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """fixtures/findings saved by its `latest` tag alone (so `latest` is its only tag)."""
    assert "findings" in fixture_images
    path = tmp_path_factory.mktemp("lint") / "findings.tar"
    with open(path, "wb") as out:
        engine.save_image("slimmer-fixture/findings:latest", out)
    return path


def _trace_file(where: Path) -> Path:
    """A saved `slim profile --json` whose one run opened only the job's script."""
    event = Event(1, "openat", "open", "/app/app.sh", "/app/app.sh", 3, "", True)
    run = {"what": "batch", "exit_code": 0, "seconds": 0.1}
    doc = {
        "schema": PROFILE_SCHEMA,
        "image": "x",
        "probes": [],
        "runs": [{**run, "trace": json.loads(Trace(events=(event,)).to_json())}],
    }
    path = where / "profile.json"
    path.write_text(json.dumps(doc))
    return path


def test_the_planted_fixture_gets_every_finding_masked(
    findings_archive: Path, tmp_path: Path
) -> None:
    ref = f"docker-archive:{findings_archive}"
    res = run_slim("lint", ref, "--format", "json", "--trace", str(_trace_file(tmp_path)))
    assert res.returncode == 3, res.stderr  # critical findings, default --severity high
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, LINT_SCHEMA)
    found = {f["id"] for f in doc["findings"]}
    assert found == RULE_IDS - NOT_PLANTED
    evidence = {(f["id"], f["evidence"]) for f in doc["findings"]}
    for planted in (
        ("SLM-SECRET-ENV", "config.Env[AWS_ACCESS_KEY_ID]"),
        ("SLM-SECRET-FILE", "/app/.env"),
        ("SLM-SECRET-FILE", "/app/deploy.pem"),
        ("SLM-SECRET-FILE", "/root/.aws/credentials"),
        ("SLM-BUILD-JUNK", "/app/.git"),
        ("SLM-SETUID", "/usr/local/bin/helper"),
        ("SLM-UNUSED-LARGE", "/app/assets/unused.bin"),
    ):
        assert planted in evidence
    for secret in SECRETS:
        assert secret not in res.stdout and secret not in res.stderr
    assert res.stderr.startswith("slim: error: linting") and "SLM-SECRET-ENV" in res.stderr


def test_sarif_from_the_cli_validates_and_ignores_pass(
    fixture_images: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "lint.sarif"
    res = run_slim(
        "lint",
        fixture_images["findings"],
        "--format",
        "sarif",
        "-o",
        str(out),
        "--severity",
        "critical",
        "--ignore",
        "SLM-SECRET-ENV",
        "--ignore",
        "slm-secret-file",
    )
    assert res.returncode == 0, res.stderr  # the only critical findings are ignored
    doc: dict[str, Any] = json.loads(out.read_text())
    jsonschema.Draft7Validator(load_sarif_schema(tmp_path)).validate(doc)
    ids = {r["ruleId"] for r in doc["runs"][0]["results"]}
    assert "SLM-SHADOW-EMPTY" in ids and "SLM-SECRET-ENV" not in ids
    assert "SLM-TAG-LATEST" not in ids  # on the engine it also has its hashed tag


def test_a_clean_fixture_passes_the_checks_it_should(fixture_images: dict[str, str]) -> None:
    res = run_slim("lint", fixture_images["c-static"], "--format", "json", "--severity", "low")
    doc = json.loads(res.stdout)
    found = {f["id"] for f in doc["findings"]}
    # c-static is a static server on scratch as UID 65534, tagged by hash: it has no
    # HEALTHCHECK and no OCI labels, and nothing else.
    assert found == {"SLM-HEALTHCHECK-MISSING", "SLM-LABEL-MISSING"}
    assert res.returncode == 3, res.stderr  # low findings fail --severity low
    ok = run_slim("lint", fixture_images["c-static"], "--severity", "medium")
    assert ok.returncode == 0, ok.stderr
    assert "SLM-LABEL-MISSING" in ok.stdout
