"""Peak memory of `slim diff` on two images of about 2 GB each, in a child process.

Image A is the debootstrap fixture base plus one layer of large random files
(`head -c ... /dev/urandom`) and a thousand small ones; image B is A plus a layer
that deletes one large file, rewrites another, adds a third and changes a mode.
`python -m slimmer diff A B --format json` runs as a subprocess; its peak RSS
comes from `getrusage(RUSAGE_CHILDREN)`. `slim diff` hashes file bytes as they
stream past and keeps none, so the peak should stay flat (goal: under 250 MB)
however large the images are. Both images are removed at the end.

    python -m bench.diff_memory [--size-mb 2048] [--files 8]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.results import record
from slimmer.engine import Engine
from tests.fixtures_build import ensure_base

ROOT = Path(__file__).resolve().parent.parent
REPO = "slimmer-bench/diff-memory"
LABELS = {"io.slimmer.bench": "diff-memory"}
GOAL_MB = 250

A_DOCKERFILE = """\
ARG BASE
FROM ${{BASE}}
RUN mkdir -p /data/small \\
 && for i in $(seq 0 {last}); do head -c {chunk_mb}M /dev/urandom > /data/big-$i; done \\
 && for i in $(seq 1 1000); do echo "file $i" > /data/small/f$i; done
"""
B_DOCKERFILE = """\
ARG BASE
FROM ${{BASE}}
RUN rm /data/big-0 \\
 && head -c {chunk_mb}M /dev/urandom > /data/big-1 \\
 && head -c {chunk_mb}M /dev/urandom > /data/big-new \\
 && chmod 0600 /data/big-2 \\
 && echo changed > /data/small/f1
"""


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_bytes: int
    doc: dict[str, object]


def build(engine: Engine, tag: str, dockerfile: str, base: str) -> None:
    """Build `dockerfile` (its `ARG BASE` set to `base`) as `tag`."""
    with tempfile.TemporaryDirectory(prefix="slimmer-bench-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(dockerfile)
        engine.build(Path(tmp), tag, labels=LABELS, buildargs={"BASE": base})


def run_diff(a: str, b: str) -> Run:
    """`python -m slimmer diff A B --format json` in a child; its time and peak RSS."""
    cmd = [sys.executable, "-m", "slimmer", "diff", a, b, "--format", "json"]
    start = time.monotonic()
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if res.returncode != 0:
        raise SystemExit(f"slim diff exited with {res.returncode}:\n{res.stderr}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return Run(seconds, peak_kib * 1024, json.loads(res.stdout))


def summary(run: Run) -> str:
    doc = run.doc
    a, b, s = doc["a"], doc["b"], doc["summary"]
    assert isinstance(a, dict) and isinstance(b, dict) and isinstance(s, dict)
    peak_mb = run.peak_rss_bytes / 1e6
    verdict = "under" if peak_mb < GOAL_MB else "OVER"
    return "\n".join(
        [
            f"A: {a['size_bytes'] / 1e9:.2f} GB, {a['files']} files",
            f"B: {b['size_bytes'] / 1e9:.2f} GB, {b['files']} files",
            f"diff: {s['added']} added, {s['removed']} removed, {s['changed']} changed",
            f"time: {run.seconds:.1f} s",
            f"peak RSS: {peak_mb:.1f} MB ({verdict} the {GOAL_MB} MB goal)",
        ]
    )


def result_row(run: Run) -> dict[str, object]:
    """The section of bench/results.json: both sizes, the time and the peak RSS."""
    a, b = run.doc["a"], run.doc["b"]
    assert isinstance(a, dict) and isinstance(b, dict)
    return {
        "a_bytes": a["size_bytes"],
        "b_bytes": b["size_bytes"],
        "a_files": a["files"],
        "b_files": b["files"],
        "seconds": round(run.seconds, 1),
        "peak_rss_bytes": run.peak_rss_bytes,
        "goal_peak_rss_bytes": GOAL_MB * 1_000_000,
        "within_goal": run.peak_rss_bytes < GOAL_MB * 1_000_000,
    }


def changed_paths(doc: dict[str, object]) -> list[str]:
    changed = doc["changed"]
    assert isinstance(changed, list)
    return sorted(str(c["path"]) for c in changed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=2048, help="bytes of large files in A")
    parser.add_argument("--files", type=int, default=8, help="how many large files (3 or more)")
    args = parser.parse_args()
    if args.files < 3:
        parser.error("--files: B changes the first three large files; give 3 or more")
    chunk = max(1, args.size_mb // args.files)
    with Engine.connect() as engine:
        a_tag, b_tag = f"{REPO}:a", f"{REPO}:b"
        try:
            base = ensure_base(engine, log=lambda msg: print(msg, file=sys.stderr)).tag
            print(f"building {a_tag} and {b_tag} ({args.files} x {chunk} MiB)", file=sys.stderr)
            build(engine, a_tag, A_DOCKERFILE.format(last=args.files - 1, chunk_mb=chunk), base)
            build(engine, b_tag, B_DOCKERFILE.format(chunk_mb=chunk), a_tag)
            run = run_diff(a_tag, b_tag)
            print(summary(run))
            print("changed: " + ", ".join(changed_paths(run.doc)))
            record("diff_memory", result_row(run))
        finally:
            for tag in (b_tag, a_tag):
                engine.remove_image(tag, force=True)


if __name__ == "__main__":
    main()
