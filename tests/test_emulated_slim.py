"""linux/arm64 images slimmed under emulation, through the installed CLI.

Each arm64 fixture (`FOREIGN_FIXTURES`, built on the arm64 Debian base under
qemu-user) is slimmed by the `slim` a user installs, on this amd64 engine: the
preflight lets it through because the engine runs linux/arm64 under emulation, the
host's strace traces qemu (which makes the guest's file calls), qemu's own calls are
dropped, and the probe timeouts scale by `EMULATED_TIMEOUT_FACTOR`. The slim image
must be arm64, verify, and pass the held-out probes (run under emulation too).

Sizes and the tracing phase's seconds are printed and recorded as properties (the
emulated-run slowdown in the report compares them with the same fixture's native
run); nothing asserts a wall-clock time."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from slimmer.engine import Engine
from slimmer.trace.proberun import run_probes_on_image
from slimmer.trace.probes import load_probe_file
from slimmer.trace.sensor import EMULATED_TIMEOUT_FACTOR
from tests.fixtures_build import FOREIGN_FIXTURES
from tests.installed import run_slim

pytestmark = [pytest.mark.engine, pytest.mark.e2e, pytest.mark.emulated]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def out_tag(engine: Engine) -> Iterator[list[str]]:
    tags: list[str] = []
    before = set(engine.leftovers())
    yield tags
    for tag in tags:
        engine.remove_image(tag, force=True)
    assert set(engine.leftovers()) <= before, "slimmer left containers or images behind"


def _phase(report: dict[str, Any], name: str) -> float:
    return float(sum(p["seconds"] for p in report["phases"] if p["name"] == name))


@pytest.mark.parametrize("name", FOREIGN_FIXTURES)
def test_arm64_fixture_slims_verifies_and_survives_heldout_under_emulation(
    name: str,
    engine: Engine,
    arm64_images: dict[str, str],
    out_tag: list[str],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    source = arm64_images[name]
    source_id = engine.inspect_image(source).id
    out = f"slimmer-test/{name}-arm64:slim"
    out_tag.append(out)
    probes = ROOT / "fixtures" / name / "probe.toml"
    res = run_slim(source, "-o", out, "--probes", str(probes), "--report-dir", str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verification"]["status"] == "passed"
    factor = f"probe timeouts scaled x{EMULATED_TIMEOUT_FACTOR:g}"
    assert any("ran under emulation" in w and factor in w for w in report["warnings"])
    assert engine.inspect_image(source).id == source_id, "the input image is never changed"
    written = engine.inspect_image(out)
    assert (written.os, written.architecture) == ("linux", "arm64")
    assert written.id == report["result"]["id"]
    spec = load_probe_file(probes)
    timeout = spec.timeout * EMULATED_TIMEOUT_FACTOR
    heldout = run_probes_on_image(engine, out, spec, heldout=True, timeout=timeout)
    assert heldout, f"{name}: no held-out probes"
    assert [r.probe.label for r in heldout if not r.ok] == []
    before, after = report["source"]["size_bytes"], report["result"]["size_bytes"]
    assert after < before
    tracing = _phase(report, "tracing")
    for key, value in (("before", before), ("after", after), ("tracing_s", tracing)):
        record_property(key, value)
    print(
        f"\n{name} arm64: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB, "
        f"tracing {tracing:.1f}s, phases "
        + ", ".join(f"{p['name']} {p['seconds']:.1f}s" for p in report["phases"])
    )
