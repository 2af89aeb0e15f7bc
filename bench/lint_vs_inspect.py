"""`slim lint` against `slim inspect` on every fixture: lint reads the image the way
inspect does (plus a few small files' bytes) and should take under 1.5x its time.

    python -m bench.lint_vs_inspect [NAMES...]

Each fixture image is saved from the engine once into a docker-archive and read
once by each function untimed (so the OS page cache is warm for both, and
detect-secrets' one-time set-up, about 0.1 s per process, is paid before timing;
it is measured on its own as `secrets_init_s`). Then `api.inspect_image` and
`api.lint_image` each read that same archive once, timed. Both are warm; neither
uses slimmer's read cache. Records the `lint_vs_inspect` section of results.json.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.results import record
from slimmer import api
from slimmer.engine import Engine
from slimmer.errors import SlimError
from slimmer.findings import secrets

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
GOAL = 1.5


def _save(engine: Engine, name: str, where: Path) -> Path | None:
    path = where / f"{name}.tar"
    try:
        with open(path, "wb") as out:
            engine.save_image(f"slimmer-fixture/{name}:latest", out)
    except SlimError as exc:
        print(f"{name}: not built ({exc}); python -m tests.fixtures_build {name}", file=sys.stderr)
        return None
    return path


def _timed(fn: Any, ref: str) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn(ref)
    return time.perf_counter() - start, value


def measure(name: str, archive: Path) -> dict[str, Any]:
    ref = f"docker-archive:{archive}"
    api.inspect_image(ref)  # warm-up, untimed
    api.lint_image(ref)
    inspect_s, ins = _timed(api.inspect_image, ref)
    lint_s, report = _timed(api.lint_image, ref)
    return {
        "fixture": name,
        "bytes": ins.size_bytes,
        "files": ins.files,
        "inspect_s": round(inspect_s, 3),
        "lint_s": round(lint_s, 3),
        "ratio": round(lint_s / inspect_s, 3),
        "findings": len(report.findings),
    }


def _secrets_init() -> float:
    """The one-time cost of detect-secrets' first scan in a process."""
    start = time.perf_counter()
    secrets.scan_env({"HOME": "/root"})
    return time.perf_counter() - start


def main(argv: list[str]) -> None:
    init_s = _secrets_init()
    names = argv or sorted(p.name for p in FIXTURES.iterdir() if (p / "Dockerfile").exists())
    rows = []
    with Engine.connect() as engine, tempfile.TemporaryDirectory(prefix="slimmer-bench-") as tmp:
        for name in names:
            archive = _save(engine, name, Path(tmp))
            if archive is not None:
                rows.append(measure(name, archive))
                archive.unlink()
    print("| fixture | size | files | inspect | lint | lint / inspect | findings |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['fixture']} | {r['bytes'] / 1e6:.1f} MB | {r['files']} | {r['inspect_s']:.2f} s "
            f"| {r['lint_s']:.2f} s | {r['ratio']:.2f} | {r['findings']} |"
        )
    worst = max((r["ratio"] for r in rows), default=0.0)
    print(f"worst ratio {worst:.2f} (goal < {GOAL}); detect-secrets set-up {init_s:.2f} s")
    record(
        "lint_vs_inspect",
        {
            "cache": "warm page cache, no read cache",
            "goal": GOAL,
            "worst_ratio": worst,
            "secrets_init_s": round(init_s, 3),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main(sys.argv[1:])
