"""The precision oracle: how many bytes each fixture really needs, against what the
default profiles keep.

For every app fixture (`layers` is a reader fixture, not an app):
1. slim it with its narrow probes and the default profiles, and run its held-out
   probes on the result (how many pass);
2. the oracle: slim it again with every profile disabled and the narrow *and*
   held-out probes together. The ELF closure, the image config and the traced
   paths still count, and verification's rounds add what the slim run missed:
   what the probed paths really cost.

The safety ratio is slim / oracle (the goal: every held-out probe passing, ratio
<= 1.15). Both slims run with `force`, so an image that fails verification is
still measured; `verified` says whether it passed. Every image made is removed.

    python -m bench.precision [NAMES...] [--dump DIR]

Records section "precision" of `bench/results.json` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.results import load, record
from slimmer import api
from slimmer.engine import Engine
from slimmer.errors import SlimError
from slimmer.pipeline.slim import SlimOptions, SlimResult
from slimmer.plan.profiles import list_profiles
from slimmer.report.common import human_bytes
from slimmer.trace.proberun import run_probes_on_image
from slimmer.trace.probes import ProbeSet, load_probe_file
from tests.fixtures_build import build_fixtures, standalone_fixture_names

ROOT = Path(__file__).resolve().parent.parent
NOT_AN_APP = {"layers", "ctx-web", "ctx-worker"}  # ctx-*: they start only in their context
GOAL = 1.15


def _slim(tag: str, out: str, spec: ProbeSet, **kw: Any) -> tuple[SlimResult, float]:
    start = time.monotonic()
    opts = SlimOptions(output=out, timeout=spec.timeout, force=True, **kw)
    result = api.slim(tag, opts)
    return result, round(time.monotonic() - start, 1)


def measure(
    engine: Engine, name: str, tag: str, dump: Path | None = None, repo: str = "slimmer-bench"
) -> dict[str, Any]:
    """One fixture's row: the default slim, its held-out probes, and the oracle."""
    spec = load_probe_file(ROOT / "fixtures" / name / "probe.toml")
    out = f"{repo}/{name}:precision"
    oracle_out = f"{repo}/{name}:oracle"
    try:
        slim, slim_s = _slim(tag, out, spec, probes=spec.probes)
        heldout = run_probes_on_image(engine, out, spec, heldout=True) if spec.heldout else []
        every = frozenset(list_profiles())
        oracle, oracle_s = _slim(
            tag, oracle_out, spec, probes=(*spec.probes, *spec.heldout), profiles_disabled=every
        )
    finally:
        for image in (out, oracle_out):
            if engine.image_exists(image):
                engine.remove_image(image)
    if dump is not None:
        _dump(dump, name, slim, oracle)
    return {
        "fixture": name,
        "before": slim.before_bytes,
        "slim": slim.after_bytes,
        "slim_files": slim.after_files,
        "slim_verified": slim.verified,
        "slim_seconds": slim_s,
        "oracle": oracle.after_bytes,
        "oracle_files": oracle.after_files,
        "oracle_verified": oracle.verified,
        "oracle_seconds": oracle_s,
        "ratio": round(slim.after_bytes / oracle.after_bytes, 3) if oracle.after_bytes else None,
        "heldout_passed": sum(r.ok for r in heldout),
        "heldout_total": len(heldout),
        "failed_heldout": [f"{r.probe.label}: {r.error}" for r in heldout if not r.ok],
        "slim_bytes_by_reason": slim.bytes_by_reason,
    }


def _dump(where: Path, name: str, slim: SlimResult, oracle: SlimResult) -> None:
    """Both keep sets (path -> first reason), to see where the margin goes."""

    def first(result: SlimResult) -> dict[str, str]:
        return {
            p: f"{r[0].kind}:{r[0].source}: {r[0].detail}" if r else ""
            for p, r in sorted(result.keep.reasons.items())
        }

    where.mkdir(parents=True, exist_ok=True)
    doc = {"slim": first(slim), "oracle": first(oracle)}
    (where / f"{name}.json").write_text(json.dumps(doc, indent=1))


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| fixture | original | slim | oracle | safety ratio | held-out | verified |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        ok = "yes" if r["slim_verified"] else "NO"
        ok += "" if r["oracle_verified"] else " (oracle NO)"
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        lines.append(
            f"| {r['fixture']} | {human_bytes(r['before'])} | {human_bytes(r['slim'])} | "
            f"{human_bytes(r['oracle'])} | {ratio} | "
            f"{r['heldout_passed']}/{r['heldout_total']} | {ok} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*")
    parser.add_argument("--dump", type=Path, help="write both keep sets per fixture here")
    args = parser.parse_args()
    names = [n for n in (args.names or standalone_fixture_names()) if n not in NOT_AN_APP]
    with Engine.connect() as engine:
        images = build_fixtures(engine, names)
        rows, errors = [], {}
        for name in sorted(images):
            try:
                rows.append(measure(engine, name, images[name], args.dump))
            except SlimError as exc:  # one fixture's failure is reported, not the run's end
                errors[name] = str(exc)
        print(table(rows))
        for name, error in errors.items():
            print(f"  {name}: not measured: {error}")
        for r in rows:
            for failure in r["failed_heldout"]:
                print(f"  {r['fixture']}: held-out failed: {failure}")
        if args.names:  # a partial run replaces only its fixtures' rows
            rows, errors = _merged(rows, errors)
        record("precision", {"goal_ratio": GOAL, "rows": rows, "errors": errors})


def _merged(
    rows: list[dict[str, Any]], errors: dict[str, str]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """This run's rows and errors over those of the last recorded run."""
    old = load()["sections"].get("precision", {})
    mine = {r["fixture"] for r in rows} | set(errors)
    kept = [r for r in old.get("rows", []) if r["fixture"] not in mine]
    old_errors = {k: v for k, v in old.get("errors", {}).items() if k not in mine}
    merged = sorted([*kept, *rows], key=lambda r: str(r["fixture"]))
    return merged, {**old_errors, **errors}


if __name__ == "__main__":
    main()
