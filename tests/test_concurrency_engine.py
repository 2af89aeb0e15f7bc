"""Four installed `slim` runs at once on one engine: two inputs, each twice under two
output tags (two inputs, not four, to stay within the suite's time budget). All
succeed, with no name, port or temp-directory collision (they share one TMPDIR and
one read cache), and each output is the image a lone run gives (same image ID).
Nothing is left behind: no containers or temporary images of these inputs on the
engine, nothing in the shared TMPDIR."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from slimmer.engine import Engine
from slimmer.engine_api import Leftover
from slimmer.errors import SlimError
from slimmer.model import SOURCE_LABEL
from tests.installed import popen_slim, run_slim

pytestmark = [pytest.mark.engine, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parent.parent
RUNS = [
    ("c-static", "slimmer-test/concurrent-c-static:a"),
    ("c-static", "slimmer-test/concurrent-c-static:b"),
    ("musl-app", "slimmer-test/concurrent-musl-app:a"),
    ("musl-app", "slimmer-test/concurrent-musl-app:b"),
]


@dataclass(frozen=True)
class Run:
    fixture: str
    output: str
    report_dir: Path
    returncode: int
    stderr: str


def _args(fixture_images: dict[str, str], name: str, out: str, report: Path) -> list[str]:
    probes = ROOT / "fixtures" / name / "probe.toml"
    return [fixture_images[name], "-o", out, "--probes", str(probes), "--report-dir", str(report)]


def _all_at_once(fixture_images: dict[str, str], tmp: Path) -> list[Run]:
    started = []
    for i, (name, out) in enumerate(RUNS):
        report = tmp / f"report-{i}"
        err = open(tmp / f"stderr-{i}", "w+")
        proc = popen_slim(
            *_args(fixture_images, name, out, report),
            stdout=subprocess.DEVNULL,
            stderr=err.fileno(),
        )
        started.append((name, out, report, proc, err))
    runs = []
    for name, out, report, proc, err in started:
        code = proc.wait(timeout=600)
        err.seek(0)
        runs.append(Run(name, out, report, code, err.read()))
        err.close()
    return runs


def test_four_runs_at_once_match_lone_runs(
    engine: Engine,
    fixture_images: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shared_tmp = tmp_path / "tmpdir"
    shared_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(shared_tmp))
    sources = {engine.inspect_image(fixture_images[n]).id for n in _inputs()}
    before = _ours(engine, sources)
    outputs = [out for _, out in RUNS] + [f"slimmer-test/lone-{n}:slim" for n in _inputs()]
    try:
        runs = _all_at_once(fixture_images, tmp_path)
        for run in runs:
            assert run.returncode == 0, f"{run.output}: {run.stderr[-2000:]}"
            report = json.loads((run.report_dir / "report.json").read_text())
            assert report["result"]["id"] == engine.inspect_image(run.output).id
        lone = _lone_ids(fixture_images, tmp_path)
        assert {r.output: engine.inspect_image(r.output).id for r in runs} == {
            r.output: lone[r.fixture] for r in runs
        }
    finally:
        for out in outputs:
            if engine.image_exists(out):
                engine.remove_image(out, force=True)
    assert _settled(engine, sources, before) <= before, "slimmer left containers or images"
    assert list(shared_tmp.iterdir()) == [], "slimmer left temporary files behind"


def _inputs() -> list[str]:
    return sorted({name for name, _ in RUNS})


def _lone_ids(fixture_images: dict[str, str], tmp: Path) -> dict[str, str]:
    """Each input slimmed alone, one after the other: its image ID."""
    ids = {}
    for name in _inputs():
        out = f"slimmer-test/lone-{name}:slim"
        res = run_slim(*_args(fixture_images, name, out, tmp / f"lone-{name}"))
        assert res.returncode == 0, res.stderr[-2000:]
        ids[name] = json.loads((tmp / f"lone-{name}" / "report.json").read_text())["result"]["id"]
    return ids


def _ours(engine: Engine, sources: set[str]) -> set[Leftover]:
    """The leftovers that come from slimming `sources`: images labelled with one as their
    source, containers of such an image or of a source. Other sessions may share the
    engine; their leftovers are not this test's business."""
    mine = set()
    for item in engine.leftovers():
        try:
            if item.kind == "image":
                if engine.inspect_image(item.id).labels.get(SOURCE_LABEL) in sources:
                    mine.add(item)
            elif item.kind == "container":
                image = str(engine.inspect_container(item.id).get("Image", ""))
                info = engine.inspect_image(image)
                if image in sources or info.labels.get(SOURCE_LABEL) in sources:
                    mine.add(item)
        except SlimError:  # gone meanwhile
            continue
    return mine


def _settled(
    engine: Engine, sources: set[str], before: set[Leftover], wait: float = 15
) -> set[Leftover]:
    """Our leftovers once nothing new is left (a run's cleanup may lag a moment)."""
    deadline = time.monotonic() + wait
    while True:
        now = _ours(engine, sources)
        if now <= before or time.monotonic() > deadline:
            return now
        time.sleep(1)
