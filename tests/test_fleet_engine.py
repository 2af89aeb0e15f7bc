"""`slim compose` as a user runs it, on fixtures/ctx-project (web and worker are the
project's own, redis is left alone): one fleet run through the installed CLI, then
the slim project started with `compose -f compose.yml -f compose.slim.yml up`
answers the held-out probes of web and worker (through ports published on
127.0.0.1), and everything of both projects is gone after `down -v`.

One fleet run (`--jobs 2`: both services at once, each in its own private project),
many assertions: it is the slowest part (two slims in context)."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from slimmer.context.compose import PROJECT_LABEL, ComposeCli, find_compose
from slimmer.engine import Engine
from slimmer.model import MANAGED_LABEL
from slimmer.trace.proberun import run_probes
from slimmer.trace.probes import load_probe_file
from tests.fixtures_build import CONTEXT_PROJECT, FIXTURES_DIR, context_project_env
from tests.installed import ROOT, run_slim

pytestmark = [pytest.mark.engine, pytest.mark.e2e]
FILE = CONTEXT_PROJECT / "compose.yml"
TAG = "slimmer-test/fleet-{service}:e2e"
PORTS = {"web": 8080, "worker": 8090}
SECRETS = ("ctx-web-key-7f3a91d2c4e8", "s4lt-9d0e6b1f", "redis://redis:6379/0",
           "grüezi from the volume")  # fmt: skip


@dataclass(frozen=True)
class Fleet:
    run: subprocess.CompletedProcess[str]
    tmp: Path
    override: Path
    report: dict[str, Any]


@pytest.fixture(scope="module")
def compose() -> ComposeCli:
    return find_compose(context_project_env())


@pytest.fixture(scope="module")
def fleet(
    engine: Engine, fixture_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    assert {"ctx-web", "ctx-worker", "ctx-redis"} <= set(fixture_images)
    before = set(engine.leftovers())
    tmp = tmp_path_factory.mktemp("fleet")
    override = tmp / "compose.slim.yml"
    res = run_slim(
        "compose", str(FILE), "--jobs", "2", "--tag", TAG, "-o", str(override),
        "--probes", f"web={FIXTURES_DIR / 'ctx-web' / 'probe.toml'}",
        "--probes", f"worker={FIXTURES_DIR / 'ctx-worker' / 'probe.toml'}",
        "--report-dir", str(tmp / "report"),
        env=context_project_env(), timeout=1800,
    )  # fmt: skip
    report_dir = tmp / "report"
    path = report_dir / "fleet.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    try:
        yield Fleet(res, tmp, override, report)
    finally:
        for service in PORTS:
            engine.remove_image(TAG.format(service=service), force=True)
    # The private projects the fleet ran each service in, named by the services' own
    # reports (their network): nothing of them is left. (The engine is shared: other
    # runs' resources may come and go meanwhile, so only these names are asked about.)
    private = {_private_project(report_dir / s["report"]) for s in report.get("services", ())}
    assert len(private) == len(PORTS)
    left = [x for x in set(engine.leftovers()) - before if any(p in x.name for p in private)]
    assert not left, f"slim compose left behind: {left}"


def _private_project(report: Path) -> str:
    """The private compose project a service was slimmed in: its network's prefix."""
    network = json.loads(report.read_text())["context"]["networks"][0]["name"]
    assert re.fullmatch(r"slimmer-[0-9a-f]{8}_default", network), network
    return str(network.removesuffix("_default"))


def test_the_fleet_slims_web_and_worker_and_leaves_redis_alone(
    fleet: Fleet, engine: Engine
) -> None:
    assert fleet.run.returncode == 0, fleet.run.stderr[-3000:]
    doc = fleet.report
    jsonschema.validate(doc, json.loads((ROOT / "docs/schemas/fleet-v1.json").read_text()))
    assert [s["service"] for s in doc["services"]] == ["web", "worker"]
    assert [x["service"] for x in doc["left_alone"]] == ["redis"]
    for s in doc["services"]:
        assert s["verification"] == "passed" and s["tagged"], s
        assert s["after_bytes"] < s["before_bytes"] / 2, s
        assert s["output_id"] == engine.inspect_image(s["output"]).id
        # the slim image keeps the input's config: the context was for the runs only
        slim, original = engine.inspect_image(s["output"]), engine.inspect_image(s["image"])
        assert slim.config.get("Env") == original.config.get("Env")
        own = json.loads((fleet.tmp / "report" / s["report"]).read_text())
        assert own["schema"] == "slimmer.slim/v3"
        assert own["verification"]["status"] == "passed"
        assert own["context"]["networks"], "slimmed in the project's network"
    rows = [line.split() for line in fleet.run.stdout.splitlines()]
    assert any(r[:2] == ["web", "slimmer-test/fleet-web:e2e"] and "passed" in r for r in rows)
    assert any(r[:2] == ["worker", "slimmer-test/fleet-worker:e2e"] for r in rows)
    assert "left alone: redis" in fleet.run.stdout
    md = (fleet.tmp / "report" / "fleet.md").read_text()
    assert "[web/report.md](web/report.md)" in md and "[worker/report.md]" in md
    html = (fleet.tmp / "report" / "fleet.html").read_text()
    assert 'data-left-alone="redis"' in html and 'href="worker/report.html"' in html


def test_no_context_value_is_written_or_printed(fleet: Fleet) -> None:
    outputs = {p: p.read_bytes() for p in fleet.tmp.rglob("*") if p.is_file()}
    outputs[Path("stdout")] = fleet.run.stdout.encode()
    outputs[Path("stderr")] = fleet.run.stderr.encode()
    assert len(outputs) >= 10  # override, 3 fleet faces, 2 x 3 service faces, stdout, stderr
    found = [(str(p), s) for p, data in outputs.items() for s in SECRETS if s.encode() in data]
    assert not found


def test_the_slim_project_answers_the_heldout_probes(
    fleet: Fleet, engine: Engine, compose: ComposeCli
) -> None:
    assert fleet.run.returncode == 0, fleet.run.stderr[-3000:]
    text = fleet.override.read_text()
    assert '"slimmer-test/fleet-web:e2e"' in text and '"redis"' not in text
    name = f"slimmer-fleet-{uuid.uuid4().hex[:8]}"
    labels = fleet.tmp / "labels.yml"  # so `slim cleanup` finds it after a crash
    label = f'{{"{MANAGED_LABEL}": "true", "{PROJECT_LABEL}": "{name}"}}'
    labels.write_text(
        "services:\n"
        + "".join(f"  {s}:\n    labels: {label}\n" for s in ("redis", *PORTS))
        + f"networks:\n  default:\n    labels: {label}\n"
    )
    base = ["-p", name, "-f", str(FILE), "-f", str(fleet.override), "-f", str(labels)]
    try:
        compose([*base, "up", "-d", "--wait", "--pull", "never", "--no-build"], cwd=FILE.parent)
        for service, port in PORTS.items():
            cid = compose([*base, "ps", "-q", service], cwd=FILE.parent).strip()
            assert engine.inspect_container(cid)["Config"]["Image"] == TAG.format(service=service)
            ports = engine.published_ports(cid, [port])
            assert ports[port][0] == "127.0.0.1"
            spec = load_probe_file(FIXTURES_DIR / f"ctx-{service}" / "probe.toml")
            assert len(spec.heldout) >= 5
            results = run_probes(engine, cid, ports, spec.heldout, spec.timeout)
            failed = [(r.probe.label, r.error) for r in results if not r.ok]
            assert not failed, f"{service}: {failed}"
    finally:
        compose([*base, "down", "-v", "--remove-orphans", "--timeout", "5"], cwd=FILE.parent)
    assert not compose([*base, "ps", "-a", "-q"], cwd=FILE.parent).strip()
    left = [x for x in engine.leftovers() if name in x.name]
    assert not left, f"left behind: {left}"
