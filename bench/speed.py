"""A whole `slim` run against the floor of any verifying slimmer that uses only the
engine's API: the engine's own `docker save` of the image, `docker load` of that
archive, and two runs of the app under the same probes (one to learn it, one to
check the result).

For each image (every fixture that runs alone by default: ctx-web and ctx-worker need
their compose project beside them; plus any `--image REF`), side by side:
- the floor: `save_image` into a file, then `load_image` of it, then two app runs,
  each timed: the original image started, probed until it answers (slimmer's own
  untraced run, `run_traced(traced=False)`, as verification runs it) and removed;
- `slim IMAGE -o OUT` with the fixture's narrow probes, as a child process
  (no read cache; the package's bytecode compiled first, as `pip install` leaves
  it), timed, with its peak RSS from `getrusage(RUSAGE_CHILDREN)`
  read in a wrapper process of its own so that each run's peak is its own;
- with `--cached`, then a run that fills a fresh `--cache-dir` (`cache_fill`) and a
  second run from it (`cached`; goal: at most 1.0 of the floor), both timed;
- what loading the slim image costs the engine as an image it does not hold
  (`result_load_seconds`: saved, removed, loaded again and timed), and the ratio
  to the floor plus that load: the floor's own load is of an image the engine
  holds already, which registers no layer, while every slimmer's output is new;
- the ratio of the times (goal: at most 1.5) and the per-phase times of the run
  (from its report.json), as wall time and as time on the critical path (a phase
  run beside another counts only where nothing else on the path ran; the report's
  phases carry their start), so the reader sees where the time goes.

`--large` also builds an image over 1.5 GB of real files: java-http with the
whole trees of the node-http, py-http, pg-db and ruby-http fixtures copied under
`/usr/local/share/` (binaries, libraries, text: what real layers hold, so the gzip
sizing and the parse do real work; in the system tree, like the unused packages of
a fat image, where no profile keeps a tree whole), probed with java-http's own
probes; it is removed after.

One measured run each; written to `bench/results.json` (section `speed`).

    python -m bench.speed [NAMES...] [--large] [--cached] [--image REF --probes FILE]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.results import record
from slimmer.engine import Engine
from slimmer.model import ImageConfig
from slimmer.report.common import critical_path, human_bytes
from slimmer.trace.probes import load_probe_file
from slimmer.trace.tracer import run_traced
from tests.fixtures_build import build_fixtures, standalone_fixture_names

ROOT = Path(__file__).resolve().parent.parent
GOAL_RATIO = 1.5
GOAL_CACHED = 1.0
GOAL_RSS = 250_000_000
# Runs `argv` and prints its peak RSS (KiB) on the last line of stderr.
_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def app_run_seconds(engine: Engine, ref: str, probes: Path | None) -> float:
    """One run of the original image under `probes`: created, started, probed until it
    answers, stopped and removed (untraced), timed."""
    info = engine.inspect_image(ref)
    config = ImageConfig(
        {"config": dict(info.config), "os": info.os, "architecture": info.architecture}
    )
    probe_set = load_probe_file(probes) if probes is not None else None
    specs = probe_set.probes if probe_set is not None else ()
    timeout = probe_set.timeout if probe_set is not None else 60.0
    start = time.monotonic()
    run = run_traced(engine, info.id, config, specs, timeout, traced=False)
    seconds = time.monotonic() - start
    if not all(r.ok for r in run.results):
        raise SystemExit(f"{ref}: a probe failed in the floor's app run")
    return seconds


def floor_seconds(engine: Engine, ref: str, work: Path) -> tuple[float, float, int]:
    """(save seconds, load seconds, archive bytes) of the engine's own round trip."""
    archive = work / "floor.tar"
    start = time.monotonic()
    with open(archive, "wb") as out:
        size = engine.save_image(ref, out)
    saved = time.monotonic() - start
    start = time.monotonic()
    with open(archive, "rb") as fh:
        engine.load_image(fh)
    loaded = time.monotonic() - start
    archive.unlink()
    return saved, loaded, size


LARGE_TAG = "slimmer-bench/large:latest"
LARGE_BASE = "java-http"
LARGE_EXTRA = ("node-http", "py-http", "pg-db", "ruby-http")


def build_large(engine: Engine, images: dict[str, str], work: Path) -> str:
    """The large image (see the module), built from the fixtures in `images`; its tag."""
    context = work / "large"
    context.mkdir()
    lines = [f"FROM {images[LARGE_BASE]}"]
    lines += [f"COPY --from={images[name]} / /usr/local/share/{name}/" for name in LARGE_EXTRA]
    (context / "Dockerfile").write_text("\n".join(lines) + "\n")
    with open(work / "large-build.log", "w") as log:
        engine.build(context, LARGE_TAG, labels={"io.slimmer.bench": "speed"}, log=log)
    return LARGE_TAG


def slim_run(
    engine: Engine,
    ref: str,
    probes: Path | None,
    work: Path,
    cache: Path | None = None,
    result_load: bool = False,
) -> dict[str, Any]:
    """`slim REF -o OUT` in a child: seconds, peak RSS, exit code and phase times; with
    `result_load`, also what loading its output costs the engine as a new image."""
    out = "slimmer-bench/speed:slim"
    argv = [sys.executable, "-m", "slimmer", ref, "-o", out, "--report-dir", str(work)]
    if probes is not None:
        argv += ["--probes", str(probes)]
    if cache is not None:
        argv += ["--cache-dir", str(cache)]
    env = {k: v for k, v in os.environ.items() if k != "SLIMMER_CACHE_DIR"}
    start = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *argv], capture_output=True, text=True, env=env
    )
    seconds = time.monotonic() - start
    peak_kib = int(res.stderr.strip().splitlines()[-1])
    report_path = work / "report.json"
    doc = json.loads(report_path.read_text()) if report_path.exists() else {}
    loaded = None
    if engine.image_exists(out):
        if result_load:
            loaded = new_image_load_seconds(engine, out, work)
        engine.remove_image(out, force=True)
    return {
        **({"result_load_seconds": round(loaded, 2)} if loaded is not None else {}),
        "exit": res.returncode,
        "seconds": round(seconds, 2),
        "peak_rss_bytes": peak_kib * 1024,
        "phases": _phase_totals(doc.get("phases", [])),
        "critical_path": _critical_totals(doc.get("phases", [])),
    }


def new_image_load_seconds(engine: Engine, ref: str, work: Path) -> float:
    """Seconds the engine takes to load `ref` as an image it does not hold: saved,
    removed, then loaded again and timed (its layers registered anew, as any tool
    that makes a new image has the engine do)."""
    archive = work / "result.tar"
    with open(archive, "wb") as out:
        engine.save_image(ref, out)
    engine.remove_image(ref, force=True)
    start = time.monotonic()
    with open(archive, "rb") as fh:
        engine.load_image(fh)
    seconds = time.monotonic() - start
    archive.unlink()
    return seconds


def _phase_totals(phases: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per phase name, the rounds of a phase added up."""
    out: dict[str, float] = {}
    for p in phases:
        out[p["name"]] = round(out.get(p["name"], 0.0) + p["seconds"], 2)
    return out


def _critical_totals(phases: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per phase name on the run's critical path (`report.common.critical_path`)."""
    out: dict[str, float] = {}
    for p, seconds in zip(phases, critical_path(phases), strict=True):
        out[p["name"]] = round(out.get(p["name"], 0.0) + seconds, 2)
    return out


def measure(
    engine: Engine, name: str, ref: str, probes: Path | None, cached: bool = False
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="slimmer-bench-speed-", dir="/var/tmp") as tmp:
        saved, loaded, size = floor_seconds(engine, ref, Path(tmp))
        apps = [app_run_seconds(engine, ref, probes) for _ in range(2)]
        run = slim_run(engine, ref, probes, Path(tmp), result_load=True)
        fill = again = None
        if cached:  # a run that fills a fresh cache, then the one that is timed
            cache = Path(tmp) / "cache"
            fill = slim_run(engine, ref, probes, Path(tmp), cache)
            again = slim_run(engine, ref, probes, Path(tmp), cache)
    floor = saved + loaded + sum(apps)
    row = {
        "image": name,
        "bytes": engine.inspect_image(ref).size,
        "archive_bytes": size,
        "save_seconds": round(saved, 2),
        "load_seconds": round(loaded, 2),
        "app_run_seconds": [round(s, 2) for s in apps],
        "floor_seconds": round(floor, 2),
        **run,
        "ratio_to_floor": round(run["seconds"] / floor, 2),
        # the floor plus the load of the output as a new image: the engine's own cost
        # of the one thing every slimmer makes (the floor's load is of an image the
        # engine holds already, so its layers are not registered again)
        "ratio_to_floor_with_result_load": (
            round(run["seconds"] / (floor + run["result_load_seconds"]), 2)
            if "result_load_seconds" in run
            else None
        ),
        "within_goal": run["seconds"] / floor <= GOAL_RATIO and run["peak_rss_bytes"] <= GOAL_RSS,
    }
    if fill is not None and again is not None:
        row["cache_fill"] = {**fill, "ratio_to_floor": round(fill["seconds"] / floor, 2)}
        row["cached"] = {**again, "ratio_to_floor": round(again["seconds"] / floor, 2)}
        row["within_goal"] = row["within_goal"] and again["seconds"] / floor <= GOAL_CACHED
    return row


def large_row(engine: Engine, cached: bool = False) -> dict[str, Any]:
    """The large image's row; the image is removed after."""
    images = build_fixtures(engine, [LARGE_BASE, *LARGE_EXTRA])
    with tempfile.TemporaryDirectory(prefix="slimmer-bench-large-", dir="/var/tmp") as tmp:
        tag = build_large(engine, images, Path(tmp))
    try:
        probes = ROOT / "fixtures" / LARGE_BASE / "probe.toml"
        name = f"large ({LARGE_BASE} + {', '.join(LARGE_EXTRA)})"
        row = measure(engine, name, tag, probes, cached)
    finally:
        engine.remove_image(tag, force=True)
    print(table([row]).splitlines()[-1], file=sys.stderr)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| image | size | floor (save + load + 2 app runs) | slim | ratio | cached "
        "| slim image's load | ratio with it | peak RSS | critical path (slowest phases) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        phases = sorted(r["critical_path"].items(), key=lambda kv: -kv[1])[:3]
        slowest = ", ".join(f"{n} {s:.1f} s" for n, s in phases)
        floor = (
            f"{r['floor_seconds']:.1f} s ({r['save_seconds']:.1f} + {r['load_seconds']:.1f} + "
            + " + ".join(f"{s:.1f}" for s in r["app_run_seconds"])
            + ")"
        )
        cached = f"{r['cached']['ratio_to_floor']}" if "cached" in r else "-"
        load = r.get("result_load_seconds")
        with_load = r.get("ratio_to_floor_with_result_load")
        lines.append(
            f"| {r['image']} | {human_bytes(r['bytes'])} | {floor} | {r['seconds']:.1f} s "
            f"| {r['ratio_to_floor']} | {cached} | {'-' if load is None else f'{load:.1f} s'} "
            f"| {'-' if with_load is None else with_load} "
            f"| {human_bytes(r['peak_rss_bytes'])} | {slowest} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "names", nargs="*", help="fixtures (default: all that run alone, but layers)"
    )
    parser.add_argument("--image", action="append", default=[], help="another image to time")
    parser.add_argument("--probes", type=Path, help="probe file for --image")
    parser.add_argument("--no-fixtures", action="store_true")
    parser.add_argument("--large", action="store_true", help="also an image over 1.5 GB")
    parser.add_argument("--cached", action="store_true", help="also a second run from a cache")
    args = parser.parse_args()
    # `pip install` compiles a package's bytecode; a checkout run with
    # PYTHONDONTWRITEBYTECODE (as this machine sets it) would compile every module on
    # every run, about 0.17 s that no user pays
    compileall.compile_dir(ROOT / "slimmer", quiet=1)
    with Engine.connect() as engine:
        rows = []
        if not args.no_fixtures:
            # the fixtures that run alone: a context fixture's probes need its compose
            # project beside it (`slim --compose`), which the floor's app runs lack
            images = build_fixtures(engine, args.names or standalone_fixture_names())
            for name, tag in sorted(images.items()):
                if name != "layers":
                    probes = ROOT / "fixtures" / name / "probe.toml"
                    rows.append(measure(engine, name, tag, probes, args.cached))
                    print(table(rows[-1:]).splitlines()[-1], file=sys.stderr)
        for ref in args.image:
            rows.append(measure(engine, ref, ref, args.probes, args.cached))
        if args.large:
            rows.append(large_row(engine, args.cached))
        print(table(rows))
        goals = {"goal_ratio": GOAL_RATIO, "goal_cached_ratio": GOAL_CACHED}
        record("speed", {**goals, "goal_peak_rss_bytes": GOAL_RSS, "rows": rows})


if __name__ == "__main__":
    main()
