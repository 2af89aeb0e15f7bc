"""Migrate every serving fixture to distroless (`--base auto --dockerfile`) and onto
scratch, run the held-out probes on the migrated image, and print the README's
migration table and the bytes stored for all of them together (one measured run).

    python -m bench.migrate_table [NAMES...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from slimmer import api
from slimmer.engine import Engine
from slimmer.pipeline.slim import SlimOptions
from slimmer.report.common import human_bytes
from slimmer.trace.proberun import run_probes_on_image
from slimmer.trace.probes import load_probe_file
from tests.fixtures_build import build_fixtures

ROOT = Path(__file__).resolve().parent.parent
SERVING = ["c-static", "java-http", "nginx-static", "node-http", "py-http", "shell-app"]


def measure(engine: Engine, name: str, tag: str, work: Path) -> dict[str, Any]:
    spec = load_probe_file(ROOT / "fixtures" / name / "probe.toml")
    migrated, scratch = f"slimmer-bench/{name}:distroless", f"slimmer-bench/{name}:scratch"
    opts = SlimOptions(output=scratch, probes=spec.probes, timeout=spec.timeout)
    dockerfile = work / name / "Dockerfile"
    on_base = api.slim(tag, replace(opts, output=migrated, base="auto", dockerfile=dockerfile))
    flat = api.slim(tag, opts)
    heldout = run_probes_on_image(engine, migrated, spec, heldout=True)
    assert on_base.on_base is not None and on_base.dockerfile is not None
    row = {
        "fixture": name,
        "base": on_base.on_base.choice.flavour,
        "why": on_base.on_base.choice.why,
        "size": on_base.after_bytes,
        "app_layer": on_base.on_base.app_layer_bytes,
        "dockerfile_size": on_base.dockerfile.size_bytes,
        "dockerfile_copies": on_base.dockerfile.copies,
        "dockerfile_verified": on_base.dockerfile.verified,
        "scratch_size": flat.after_bytes,
        "verified": on_base.verified,
        "heldout_passed": sum(r.ok for r in heldout),
        "heldout_total": len(heldout),
        "base_id": on_base.on_base.choice.image_id,
        "base_size": engine.inspect_image(on_base.on_base.choice.ref).size,
    }
    engine.remove_image(migrated)
    engine.remove_image(scratch)
    return row


def stored(rows: Iterable[dict[str, Any]]) -> tuple[int, int]:
    """(migrated, scratch): bytes the engine stores for all the images together. A base
    is stored once however many images sit on it; a scratch image shares nothing."""
    rows = list(rows)
    bases = {r["base_id"]: r["base_size"] for r in rows}
    on_bases = sum(bases.values()) + sum(r["size"] - r["base_size"] for r in rows)
    return on_bases, sum(r["scratch_size"] for r in rows)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| fixture | base (why) | total | app layer | Dockerfile image | Dockerfile / total "
        "| scratch | verified | held-out |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        ok = "yes" if r["verified"] and r["dockerfile_verified"] else "NO"
        lines.append(
            f"| {r['fixture']} | `{r['base']}` ({r['why']}) | {human_bytes(r['size'])} | "
            f"{human_bytes(r['app_layer'])} | {human_bytes(r['dockerfile_size'])} "
            f"({r['dockerfile_copies']} COPY) | {r['dockerfile_size'] / r['size']:.2f} | "
            f"{human_bytes(r['scratch_size'])} | {ok} | "
            f"{r['heldout_passed']}/{r['heldout_total']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with Engine.connect() as engine:
        images = build_fixtures(engine, args.names or SERVING)
        with tempfile.TemporaryDirectory(prefix="slimmer-bench-") as tmp:
            rows = [measure(engine, n, t, Path(tmp)) for n, t in sorted(images.items())]
        print(table(rows))
        migrated, scratch = stored(rows)
        print(
            f"\nstored for all {len(rows)}: on distroless bases {human_bytes(migrated)}, "
            f"on scratch {human_bytes(scratch)}"
        )
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
