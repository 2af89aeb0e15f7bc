"""The tracer on every fixture, through the real engine."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from slimmer import api
from slimmer.engine import Engine
from slimmer.trace.probes import load_probe_file
from slimmer.trace.tracer import TracedRun
from tests.installed import popen_slim

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parent.parent

# A few files per fixture the app cannot run without (existing paths, as named).
NEEDED = {
    "py-http": [
        "/usr/bin/python3.11",
        "/usr/lib/python3.11/json/__init__.py",
        "/app/app.py",
        "/usr/share/zoneinfo/Europe/Berlin",
    ],
    "nginx-static": ["/usr/sbin/nginx", "/etc/nginx/fixture.conf", "/srv/www/index.html"],
    "node-http": ["/usr/bin/node", "/srv/app/server.js"],
    "c-static": ["/server"],
    "py-batch": ["/usr/bin/python3.11", "/opt/batch/report.py", "/opt/batch/data/sales.csv"],
    # A script's interpreter (bash) is loaded by the kernel, not opened by a syscall:
    # the planner adds it from the script's #! line.
    "shell-app": ["/app/entrypoint.sh", "/app/handler.sh", "/usr/bin/socat"],
    "java-http": ["/usr/lib/jvm/java-17-openjdk-amd64/lib/modules", "/opt/app/app.jar"],
    "layers": [],
}


def _trace(name: str, tag: str) -> TracedRun:
    spec = load_probe_file(ROOT / "fixtures" / name / "probe.toml")
    return api.trace_image(tag, spec.probes, spec.timeout)


def _touched(traced_run: TracedRun) -> set[str]:
    return {p for t in traced_run.traces for p in t.touched()}


@pytest.mark.parametrize("name", sorted(NEEDED))
def test_profile_sees_what_the_app_needs(
    name: str, fixture_images: dict[str, str], engine: Engine
) -> None:
    before = engine.inspect_image(fixture_images[name]).id
    leftovers = set(engine.leftovers())
    traced_run = _trace(name, fixture_images[name])
    assert traced_run.results and all(r.ok for r in traced_run.results), [
        r.error for r in traced_run.results
    ]
    touched = _touched(traced_run)
    missing = [p for p in NEEDED[name] if not any(t == p or t.startswith(p) for t in touched)]
    assert not missing, f"{name}: not traced: {missing}"
    assert engine.inspect_image(fixture_images[name]).id == before
    assert set(engine.leftovers()) <= leftovers


def test_shutdown_path_is_traced(fixture_images: dict[str, str]) -> None:
    """nginx gets its STOPSIGNAL (SIGQUIT) and exits by itself: a graceful shutdown."""
    traced_run = _trace("nginx-static", fixture_images["nginx-static"])
    main = traced_run.runs[0]
    assert main.exit_code == 0, "nginx was stopped by its own signal, not killed"


def test_healthcheck_is_run_and_traced(fixture_images: dict[str, str]) -> None:
    traced_run = _trace("shell-app", fixture_images["shell-app"])
    hc = [r for r in traced_run.results if r.probe.label == "HEALTHCHECK"]
    assert hc and hc[0].ok
    curl_runs = [r for r in traced_run.runs if "HEALTHCHECK" in r.what]
    assert curl_runs and any("/usr/bin/curl" in t.touched() for t in (curl_runs[0].trace,))


def test_default_probes(fixture_images: dict[str, str]) -> None:
    traced_run = api.trace_image(fixture_images["py-http"], (), 60)
    assert [r.probe.kind for r in traced_run.results] == ["http"] and traced_run.results[0].ok
    batch = api.trace_image(fixture_images["py-batch"], (), 60)
    assert [r.probe.kind for r in batch.results] == ["batch"] and batch.results[0].exit_code == 0


@pytest.mark.parametrize(
    "stage", ["bundling", "creating", "starting", "probing", "stopping", "reading the trace"]
)
@pytest.mark.e2e
def test_sigint_at_each_stage_leaves_nothing_behind(
    stage: str, fixture_images: dict[str, str], engine: Engine
) -> None:
    """Ctrl-C at each stage of a tracing run: no container, volume or image is left."""
    leftovers = set(engine.leftovers())
    proc = popen_slim(
        "profile",
        fixture_images["shell-app"],
        "--probes",
        str(ROOT / "fixtures/shell-app/probe.toml"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.strip() == f"slim: {stage}":
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()
    proc.wait(timeout=120)
    assert any(stage in line for line in seen), seen
    assert proc.returncode in (130, 0), rest
    assert "Traceback" not in rest
    assert set(engine.leftovers()) <= leftovers
