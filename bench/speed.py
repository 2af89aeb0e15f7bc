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

The bench removes no image between two timed runs. On the development machine the
engine's filesystem is ext4 without a journal, where the kernel's inode allocator
passes over every inode freed in the last 60 s (360 s while the inode's table block
is still dirty: `recently_deleted` in `find_inode_bit`); right after a slim image
is removed, creating a file in the engine's layer directory costs about 1 ms instead
of 0.03 ms, so each new layer the engine registers pays for the last removal's
files, which a user's engine (journalled, or fresh in CI) does not. So the timed
runs go in passes, with the images removed between passes and the filesystem
left `--settle` seconds (370 by default) before the next:
1. each image's floor, first run (its output kept) and, with `--cached`, the run
   that fills its cache (which finds the output loaded already: that run's load
   is skipped, so `cache_fill` is shown, not a goal);
2. with `--cached`, the outputs removed, then every run from the cache, each
   loading its output anew;
3. every output saved and removed, then each loaded again and timed.

`--large` also builds an image over 1.5 GB of real files: java-http with the
whole trees of the node-http, py-http, pg-db and ruby-http fixtures copied under
`/usr/local/share/` (binaries, libraries, text: what real layers hold, so the gzip
sizing and the parse do real work; in the system tree, like the unused packages of
a fat image, where no profile keeps a tree whole), probed with java-http's own
probes; it is removed after.

One measured run each; written to `bench/results.json` (section `speed`).

    python -m bench.speed [NAMES...] [--large] [--cached] [--settle S]
                          [--image REF --probes FILE]
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
from dataclasses import dataclass
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
# ext4 without a journal skips inodes freed in the last 60 s (360 s while their table
# block is dirty) when it allocates one (see the module)
SETTLE_SECONDS = 370
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
    ref: str, out: str, probes: Path | None, work: Path, cache: Path | None = None
) -> dict[str, Any]:
    """`slim REF -o OUT` in a child: seconds, peak RSS, exit code and phase times. The
    output stays in the engine (the bench removes its outputs together, see the module)."""
    argv = [sys.executable, "-m", "slimmer", ref, "-o", out, "--report-dir", str(work)]
    if probes is not None:
        argv += ["--probes", str(probes)]
    if cache is not None:
        argv += ["--cache-dir", str(cache)]
    env = {k: v for k, v in os.environ.items() if k != "SLIMMER_CACHE_DIR"}
    report_path = work / "report.json"
    report_path.unlink(missing_ok=True)
    start = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *argv], capture_output=True, text=True, env=env
    )
    seconds = time.monotonic() - start
    peak_kib = int(res.stderr.strip().splitlines()[-1])
    doc = json.loads(report_path.read_text()) if report_path.exists() else {}
    return {
        "exit": res.returncode,
        "seconds": round(seconds, 2),
        "peak_rss_bytes": peak_kib * 1024,
        "phases": _phase_totals(doc.get("phases", [])),
        "critical_path": _critical_totals(doc.get("phases", [])),
    }


def settle(seconds: float, why: str) -> None:
    """Wait `seconds` (see the module: what the engine's filesystem does after removals)."""
    if seconds > 0:
        print(f"settling {seconds:.0f} s: {why}", file=sys.stderr)
        time.sleep(seconds)


def remove_all(engine: Engine, refs: list[str]) -> None:
    for ref in refs:
        engine.remove_image(ref, force=True)


def new_image_loads(
    engine: Engine, outs: dict[str, str], work: Path, settle_seconds: float
) -> dict[str, float]:
    """Seconds the engine takes to load each output as an image it does not hold: all
    saved, all removed, the filesystem settled, then each loaded again and timed (its
    layers registered anew, as any tool that makes a new image has the engine do)."""
    archives: dict[str, Path] = {}
    for name, ref in outs.items():
        if engine.image_exists(ref):
            archives[name] = work / f"result-{len(archives)}.tar"
            with open(archives[name], "wb") as out:
                engine.save_image(ref, out)
    remove_all(engine, list(outs.values()))
    settle(settle_seconds, "before the slim images are loaded again")
    seconds: dict[str, float] = {}
    for name, archive in archives.items():
        start = time.monotonic()
        with open(archive, "rb") as fh:
            engine.load_image(fh)
        seconds[name] = time.monotonic() - start
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


@dataclass(frozen=True)
class Target:
    """One image the bench times: its row's name, its reference and its probes."""

    name: str
    ref: str
    probes: Path | None


def measure(
    engine: Engine, targets: list[Target], cached: bool, settle_seconds: float
) -> list[dict[str, Any]]:
    """Every target's row, in the passes the module describes."""
    outs = {t.name: f"slimmer-bench/speed-{i}:slim" for i, t in enumerate(targets)}
    with tempfile.TemporaryDirectory(prefix="slimmer-bench-speed-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        try:
            settle(settle_seconds, "after the images were built")
            caches = {t.name: work / f"cache-{n}" for n, t in enumerate(targets) if cached}
            rows = {
                t.name: first_pass(engine, t, outs[t.name], work, caches.get(t.name))
                for t in targets
            }
            if cached:
                remove_all(engine, list(outs.values()))
                settle(settle_seconds, "before the runs from the cache")
                for t in targets:
                    again = slim_run(t.ref, outs[t.name], t.probes, work, caches[t.name])
                    row = rows[t.name]
                    row["cached"] = {**again, "ratio_to_floor": _ratio(again, row)}
                    row["within_goal"] = row["within_goal"] and _ratio(again, row) <= GOAL_CACHED
                    print(f"{t.name}: cached {row['cached']['ratio_to_floor']}", file=sys.stderr)
            loads = new_image_loads(engine, outs, work, settle_seconds)
        finally:
            remove_all(engine, list(outs.values()))
    for name, row in rows.items():
        if name in loads:
            row["result_load_seconds"] = round(loads[name], 2)
            # the floor plus the load of the output as a new image: the engine's own
            # cost of the one thing every slimmer makes (the floor's load is of an
            # image the engine holds already, so its layers are not registered again)
            with_load = row["seconds"] / (row["floor_seconds"] + loads[name])
            row["ratio_to_floor_with_result_load"] = round(with_load, 2)
    return [rows[t.name] for t in targets]


def first_pass(
    engine: Engine, target: Target, out: str, work: Path, cache: Path | None
) -> dict[str, Any]:
    """The floor and the first `slim` run of `target` (its output kept), and with a
    `cache` the run that fills it (the output is then in the engine already, so that
    run does not load it)."""
    saved, loaded, size = floor_seconds(engine, target.ref, work)
    apps = [app_run_seconds(engine, target.ref, target.probes) for _ in range(2)]
    run = slim_run(target.ref, out, target.probes, work)
    floor = saved + loaded + sum(apps)
    row = {
        "image": target.name,
        "bytes": engine.inspect_image(target.ref).size,
        "archive_bytes": size,
        "save_seconds": round(saved, 2),
        "load_seconds": round(loaded, 2),
        "app_run_seconds": [round(s, 2) for s in apps],
        "floor_seconds": round(floor, 2),
        **run,
        "ratio_to_floor": round(run["seconds"] / floor, 2),
        "within_goal": run["seconds"] / floor <= GOAL_RATIO and run["peak_rss_bytes"] <= GOAL_RSS,
    }
    if cache is not None:
        fill = slim_run(target.ref, out, target.probes, work, cache)
        row["cache_fill"] = {**fill, "ratio_to_floor": _ratio(fill, row)}
    print(table([row]).splitlines()[-1], file=sys.stderr)
    return row


def _ratio(run: dict[str, Any], row: dict[str, Any]) -> float:
    return round(float(run["seconds"]) / float(row["floor_seconds"]), 2)


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


def large_target(engine: Engine, work: Path) -> Target:
    """The large image (see the module), built; the caller removes it."""
    images = build_fixtures(engine, [LARGE_BASE, *LARGE_EXTRA])
    tag = build_large(engine, images, work)
    name = f"large ({LARGE_BASE} + {', '.join(LARGE_EXTRA)})"
    return Target(name, tag, ROOT / "fixtures" / LARGE_BASE / "probe.toml")


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
    parser.add_argument(
        "--settle",
        type=float,
        default=SETTLE_SECONDS,
        help="seconds to wait after removing images, before timing (see the module)",
    )
    args = parser.parse_args()
    # `pip install` compiles a package's bytecode; a checkout run with
    # PYTHONDONTWRITEBYTECODE (as this machine sets it) would compile every module on
    # every run, about 0.17 s that no user pays
    compileall.compile_dir(ROOT / "slimmer", quiet=1)
    with Engine.connect() as engine:
        targets = []
        if not args.no_fixtures:
            # the fixtures that run alone: a context fixture's probes need its compose
            # project beside it (`slim --compose`), which the floor's app runs lack
            images = build_fixtures(engine, args.names or standalone_fixture_names())
            for name, tag in sorted(images.items()):
                if name != "layers":
                    targets.append(Target(name, tag, ROOT / "fixtures" / name / "probe.toml"))
        targets += [Target(ref, ref, args.probes) for ref in args.image]
        with tempfile.TemporaryDirectory(prefix="slimmer-bench-large-", dir="/var/tmp") as tmp:
            if args.large:
                targets.append(large_target(engine, Path(tmp)))
            try:
                rows = measure(engine, targets, args.cached, args.settle)
            finally:
                if args.large:
                    engine.remove_image(LARGE_TAG, force=True)
        print(table(rows))
        goals = {"goal_ratio": GOAL_RATIO, "goal_cached_ratio": GOAL_CACHED}
        record(
            "speed",
            {
                **goals,
                "goal_peak_rss_bytes": GOAL_RSS,
                "settle_seconds": args.settle,
                "rows": rows,
            },
        )


if __name__ == "__main__":
    main()
