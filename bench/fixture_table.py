"""Slim every fixture with its narrow probes, run its held-out probes on the
result, and print the README's Markdown table (one measured run).

    python -m bench.fixture_table [NAMES...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from slimmer import api
from slimmer.engine import Engine
from slimmer.pipeline.slim import SlimOptions
from slimmer.report.common import human_bytes
from slimmer.trace.proberun import run_probes_on_image
from slimmer.trace.probes import load_probe_file
from tests.fixtures_build import build_fixtures

ROOT = Path(__file__).resolve().parent.parent
# The `layers` fixture's held-out probes check the reader against the engine's own
# merge (with ls, stat, getcap), not a path of an app: they say nothing of a slim image.
NOT_AN_APP = {"layers"}


def measure(engine: Engine, name: str, tag: str) -> dict[str, object]:
    spec = load_probe_file(ROOT / "fixtures" / name / "probe.toml")
    facts = api.inspect_image(tag)
    out = f"slimmer-bench/{name}:slim"
    start = time.monotonic()
    result = api.slim(tag, SlimOptions(output=out, probes=spec.probes, timeout=spec.timeout))
    seconds = time.monotonic() - start
    wider = spec.heldout and name not in NOT_AN_APP
    heldout = run_probes_on_image(engine, out, spec, heldout=True) if wider else []
    engine.remove_image(out)
    return {
        "fixture": name,
        "before": result.before_bytes,
        "after": result.after_bytes,
        "layers": len(facts.layers),
        "efficiency": facts.efficiency,
        "wasted": facts.wasted_bytes,
        "reduction": result.reduction,
        "seconds": round(seconds, 1),
        "verified": result.verified,
        "files": [result.before_files, result.after_files],
        "heldout_passed": sum(r.ok for r in heldout),
        "heldout_total": len(heldout),
        "failed_heldout": [f"{r.probe.label}: {r.error}" for r in heldout if not r.ok],
    }


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| fixture | original | layers | dive efficiency | dive wasted | slim | reduction "
        "| files | time | verified | held-out |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        files = r["files"]
        assert isinstance(files, list)
        lines.append(
            f"| {r['fixture']} | {human_bytes(int(str(r['before'])))} | {r['layers']} | "
            f"{float(str(r['efficiency'])) * 100:.2f} % | {human_bytes(int(str(r['wasted'])))} | "
            f"{human_bytes(int(str(r['after'])))} | {float(str(r['reduction'])):.1f}x | "
            f"{files[0]} -> {files[1]} | {r['seconds']} s | "
            f"{'yes' if r['verified'] else 'NO'} | {r['heldout_passed']}/{r['heldout_total']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with Engine.connect() as engine:
        images = build_fixtures(engine, args.names or None)
        rows = [measure(engine, name, tag) for name, tag in sorted(images.items())]
        print(table(rows))
        for r in rows:
            for failure in r["failed_heldout"]:  # type: ignore[attr-defined]
                print(f"  {r['fixture']}: held-out failed: {failure}")
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
