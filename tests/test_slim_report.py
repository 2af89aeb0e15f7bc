"""The slim report is a stable interface: its JSON is pinned by a schema."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest

from slimmer import __version__, api
from slimmer.errors import UsageError
from slimmer.findings.delta import compare_findings
from slimmer.findings.rules import RULES, Finding, FindingsReport
from slimmer.model import SLIM_SCHEMA
from slimmer.pipeline.rebuild import DockerfileResult
from slimmer.pipeline.slim import Round, SlimResult
from slimmer.pipeline.verify import MissingPath, ProbeDiff
from slimmer.plan.keep import GeneratedFile, KeepSet, Reason
from slimmer.report import slim_html, slim_md, slim_view
from slimmer.report.common import dump_json
from slimmer.trace.probes import Observation, ProbeResult, ProbeSpec
from tests.schemas import json_schema

ROOT = Path(__file__).resolve().parent.parent


def result(verified: bool | None) -> SlimResult:
    probe = ProbeSpec(kind="http", path="/")
    ok = ProbeResult(probe, True, status=200, output=b"hi")
    bad = ProbeResult(probe, False, status=500, output=b"err", error="status 500")
    keep = KeepSet(
        {
            "/app": (Reason("parent", "directory of /app/x"),),
            "/app/x": (
                Reason("traced", "open by python3"),
                Reason("profile", "app dir", "app-dirs"),
            ),
        },
        (GeneratedFile("/var/lib/dpkg/status", b"", Reason("profile", "trimmed", "dpkg")),),
    )
    diff = ProbeDiff(
        "http GET /",
        Observation("http GET /", True, 200, b"hi"),
        Observation("http GET /", False, 500, b"err"),
    )
    return SlimResult(
        source_ref="app:1",
        source_id="sha256:" + "a" * 64,
        output="app:1-slim",
        image_id="sha256:" + "b" * 64,
        tagged=verified is not False,
        verified=verified,
        before_bytes=1000,
        after_bytes=100,
        before_files=10,
        after_files=2,
        phases=(("tracing", 1.5), ("verifying", 0.5)),
        rounds=(
            Round(
                1,
                "sha256:" + "b" * 64,
                2,
                () if verified else (diff,),
                () if verified else (MissingPath("/etc/x", "open by app"),),
            ),
        ),
        keep=keep,
        bytes_by_reason={"traced": 90, "profile:app-dirs": 10},
        original_results=(ok,),
        slim_results=(ok if verified else bad,),
    )


def test_report_matches_schema_and_is_stable() -> None:
    schema = json_schema(SLIM_SCHEMA)
    for verified in (True, False, None):
        doc = slim_view.to_json(result(verified))
        jsonschema.validate(doc, schema)
        assert json.loads(dump_json(doc)) == doc
    failed = slim_view.to_json(result(False))
    assert failed["verification"]["status"] == "failed"
    assert failed["verification"]["rounds"][0]["added_paths"] == [
        {"path": "/etc/x", "looked_up_by": "open by app"}
    ]
    assert failed["result"]["reduction"] == 10.0


def test_the_report_names_the_engine_that_ran_it() -> None:
    schema = json.loads((ROOT / "docs/schemas/slim-v3.json").read_text())
    doc = slim_view.to_json(replace(result(True), engine="Podman 4.3.1"))
    jsonschema.validate(doc, schema)
    assert doc["engine"] == "Podman 4.3.1"
    assert (
        slim_md.render(doc).split("\n\n")[1].endswith(f"; slimmer {__version__} on Podman 4.3.1.")
    )
    assert "engine" not in slim_view.to_json(result(True))  # not asked: not said


def test_every_face_gives_the_dockerfile_image_size_beside_the_direct_one() -> None:
    built = DockerfileResult(
        path=Path("out/Dockerfile"), copies=3, exact_bytes=90, copied_bytes=90,
        image_id="sha256:" + "c" * 64, size_bytes=102_000_000, direct_bytes=100_000_000, diffs=(),
    )  # fmt: skip
    doc = json.loads(dump_json(slim_view.to_json(replace(result(True), dockerfile=built))))
    jsonschema.validate(doc, json_schema(SLIM_SCHEMA))
    assert doc["dockerfile"]["built_size_bytes"] == 102_000_000
    assert doc["dockerfile"]["direct_size_bytes"] == 100_000_000
    said = "102.0 MB, 1.02x the 100.0 MB slim wrote"
    assert said in slim_md.render(doc) and said in slim_html.render(doc)
    older = {**doc, "dockerfile": {k: v for k, v in doc["dockerfile"].items()
                                   if k != "direct_size_bytes"}}  # fmt: skip
    assert "builds 102.0 MB; its verification passed" in slim_md.render(older)


def test_explain() -> None:
    keep = result(True).keep
    assert "traced: open by python3" in slim_view.explain(keep, "/app/x")
    assert "is generated" in slim_view.explain(keep, "/var/lib/dpkg/status")
    assert "is not kept" in slim_view.explain(keep, "/usr/bin/apt")


def test_markdown_and_html_render_from_the_document_alone() -> None:
    for verified in (True, False, None):
        doc = json.loads(dump_json(slim_view.to_json(result(verified))))
        md = slim_md.render(doc)
        page = slim_html.render(doc)
        assert md.startswith("### ") and "| http GET / |" in md
        assert page.startswith("<!doctype html>") and 'data-bytes-after="100"' in page
        assert "http" not in page.replace("http GET", "").split("<body>")[1].split("<script>")[0]
    failed = slim_md.render(slim_view.to_json(result(False)))
    assert "What differed:" in failed and "`/etc/x` (open by app)" in failed


def test_slim_report_rejects_other_documents(tmp_path: Path) -> None:
    bad = tmp_path / "inspect.json"
    bad.write_text(json.dumps({"schema": "slimmer.inspect/v1"}))
    with pytest.raises(UsageError, match="not a slimmer.slim/v3 document"):
        api.load_slim_report(bad)
    good = tmp_path / "report.json"
    good.write_text(dump_json(slim_view.to_json(result(True))))
    assert api.load_slim_report(good)["result"]["ref"] == "app:1-slim"


def _with_findings() -> SlimResult:
    """A run whose input had a root user and a shell, and whose result has neither but
    keeps a secret in ENV."""
    rules = {r.id: r for r in RULES}
    root = Finding(rules["SLM-USER-ROOT"], "config.User", "the user is root")
    env = Finding(rules["SLM-SECRET-ENV"], "config.Env.API_TOKEN", "<masked, 40 characters>")
    before = FindingsReport("app:1", "sha256:a", (root, env))
    after = FindingsReport("app:1-slim", "sha256:b", (env,))
    return replace(result(True), findings=compare_findings(before, after))


def test_findings_of_input_and_result_side_by_side() -> None:
    doc = json.loads(dump_json(slim_view.to_json(_with_findings())))
    jsonschema.validate(doc, json_schema(SLIM_SCHEMA))
    assert doc["findings"]["counts"] == {"fixed": 1, "still": 1, "new": 0}
    assert [f["id"] for f in doc["findings"]["fixed"]] == ["SLM-USER-ROOT"]
    md = slim_md.render(doc)
    assert "**Findings** (`slim lint`): 1 fixed by slimming, 1 still present, 0 new" in md
    assert "<summary>Fixed (1)</summary>" in md and "`SLM-USER-ROOT`" in md
    page = slim_html.render(doc)
    assert '<table class="sortable" id="findings">' in page and "SLM-SECRET-ENV" in page
    assert "40 characters" in page and "API_TOKEN=" not in page
