"""Logs as users read them: off a terminal (a CI log, a pipe), each row of a summary
is one line, however long its value; on a terminal rich lays it out for the window.
The CLI runs here as a process whose stdout is a pipe, not a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from slimmer.report import slim_view
from tests.synth import M, docker_archive, layer
from tests.test_slim_report import result

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("reading the image", "tracing", "planning", "writing", "loading", "verifying")


def _slim(*args: str, columns: str | None = None) -> list[str]:
    """`slim ARGS`, its stdout a pipe; its lines."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TERM")}
    env["PYTHONPATH"] = str(ROOT)
    if columns is not None:
        env["COLUMNS"] = columns
    proc = subprocess.run(
        [sys.executable, "-m", "slimmer", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def _report(tmp_path: Path) -> Path:
    long = replace(result(True), phases=tuple((name, 1.3) for name in PHASES * 3))
    path = tmp_path / "report.json"
    path.write_text(json.dumps(slim_view.to_json(long)))
    return path


def _row(lines: list[str], label: str) -> str:
    (row,) = [line for line in lines if line.startswith(label)]
    return row


def test_a_summary_row_is_one_line_in_a_log(tmp_path: Path) -> None:
    lines = _slim("report", str(_report(tmp_path)))
    time_row = _row(lines, "Time")
    assert len(time_row) > 80  # longer than the 80 columns rich assumes off a terminal
    assert "writing 3.9s" in time_row and time_row.rstrip().endswith("verifying 3.9s")
    for label in ("Source", "Result", "Size", "Files", "Verification", "Report"):
        _row(lines, label)  # each label once, at the start of its line
    assert not any(line.startswith(" ") and "s," in line for line in lines)  # no continuation


def test_columns_set_by_the_user_still_wrap(tmp_path: Path) -> None:
    lines = _slim("report", str(_report(tmp_path)), columns="80")
    assert "verifying 3.9s" not in _row(lines, "Time")  # wrapped onto a later line
    assert all(len(line.rstrip()) <= 80 for line in lines)


def test_a_long_path_in_inspect_is_one_line(tmp_path: Path) -> None:
    name = "srv/" + "/".join(["a-rather-long-directory-name"] * 6) + "/data.bin"
    arch = docker_archive(tmp_path / "img.tar", [layer(M(name, data=b"x" * 5000))])
    lines = _slim("inspect", f"docker-archive:{arch}")
    assert any("/" + name in line for line in lines), "\n".join(lines)
