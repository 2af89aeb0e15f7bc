"""`bench/results.json`: one file for every benchmark's last measured run.

Each benchmark owns one top-level section and replaces only that section, so
running one benchmark never erases another's numbers:

    from bench.results import record
    record("scale", {"rows": [...]})

Each section gets the time it was measured and the machine it ran on.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

# SLIMMER_BENCH_RESULTS sends a trial run elsewhere, leaving the recorded file alone.
RESULTS = Path(
    os.environ.get("SLIMMER_BENCH_RESULTS") or Path(__file__).resolve().parent / "results.json"
)
SCHEMA = "slimmer.bench/v1"


def load(path: Path = RESULTS) -> dict[str, Any]:
    """The sections recorded so far (an empty document when there are none)."""
    if not path.exists():
        return {"schema": SCHEMA, "sections": {}}
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def record(section: str, data: dict[str, Any], path: Path = RESULTS) -> None:
    """Replace `section` in the results file with `data`, stamped with when and where."""
    doc = load(path)
    doc["sections"][section] = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        **data,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
