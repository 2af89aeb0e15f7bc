"""Scale: wall time and peak RSS of `slim inspect`, `slim check` and `slim` on synthetic
images at three sizes, by file count (up to > 100k files and > 2 GB) and by layer
count (up to 1,000 layers). Time should grow at most linearly; peak RSS should stay
flat (goal: at most 250 MB).

    python -m bench.scale [--only files|entries|layers] [--keep]

Each image is written with slimmer's own writer (`assemble_archive`, which also
validates it) and loaded through `slimmer.engine`; it carries the label
`io.slimmer.bench=scale` and the tag `slimmer-bench/NAME:latest`, and is removed at
the end (with the slim outputs) unless `--keep`. The app is the static HTTP server
of `slimmer-fixture/c-static` (its `/server` and `/www/index.txt`), probed over HTTP
with the fixture's own probe file. Every command runs as a child under
`/usr/bin/time`, which reports its wall time and peak RSS.

The engine (Docker 20.10, overlay2) refuses images deeper than 125 layers
(`max depth exceeded`), so the layer series is measured on `docker-archive:`
files at every size: inspect and check read the file, and `slim` reads it and
runs a copy flattened to one layer (`slimmer.pipeline.source`).

The entries series has the files series' file counts at 64 bytes a file, read as
`docker-archive:` files: it shows the per-file costs (the tree, the plan, the
report) without the byte moves, whose time grows with bytes and is mostly the
engine's.

Wall time moves with whatever else the machine runs; the CPU time of the `slim`
process (user + system) moves much less, so both are recorded, and linearity is
judged on the CPU time across the three sizes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.results import load as load_results
from bench.results import record
from slimmer.engine import Engine
from slimmer.image.writer import assemble_archive, sha256_file

ROOT = Path(__file__).resolve().parent.parent
LABEL = "io.slimmer.bench"
FILE_SIZES = (25_000, 50_000, 110_000)  # files, each FILE_BYTES long
FILE_BYTES = 20_000
ENTRY_BYTES = 64  # the entries series: per-file costs without the bytes
LAYER_COUNTS = (10, 100, 1000)
SLIM = str(Path(sys.executable).with_name("slim"))
PROBES = ROOT / "fixtures" / "c-static" / "probe.toml"
GOAL_RSS_MB = 250


@dataclass(frozen=True)
class Measure:
    command: str
    seconds: float
    cpu_seconds: float  # user + system of the slim process
    peak_rss_mb: float
    exit_code: int
    error: str


@dataclass(frozen=True)
class Row:
    kind: str  # "files" or "layers"
    name: str
    files: int
    layers: int
    bytes: int
    measures: tuple[Measure, ...]


# -- building the images -------------------------------------------------------


def app_files(engine: Engine, work: Path) -> dict[str, bytes]:
    """`/server` and `/www/index.txt` of the c-static fixture, from its saved layers."""
    saved = work / "c-static.tar"
    with open(saved, "wb") as out:
        engine.save_image("slimmer-fixture/c-static:latest", out)
    files: dict[str, bytes] = {}
    with tarfile.open(saved) as outer:
        for member in outer:
            if member.name.endswith("layer.tar"):
                inner_fh = outer.extractfile(member)
                assert inner_fh is not None
                with tarfile.open(fileobj=io.BytesIO(inner_fh.read())) as inner:
                    for m in inner:
                        fh = inner.extractfile(m) if m.isfile() else None
                        if fh is not None:
                            files[m.name] = fh.read()
    saved.unlink()
    return files


def _add(tf: tarfile.TarFile, name: str, data: bytes | None, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.mode = mode
    if data is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tf.addfile(info)
    else:
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))


def _write_tar(path: Path, entries: Iterator[tuple[str, bytes | None, int]]) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, mode in entries:
            _add(tf, name, data, mode)


def _app_entries(app: dict[str, bytes]) -> list[tuple[str, bytes | None, int]]:
    return [
        ("server", app["server"], 0o755),
        ("www", None, 0),
        ("www/index.txt", app["www/index.txt"], 0o644),
    ]


def files_layer(path: Path, count: int, app: dict[str, bytes], size: int = FILE_BYTES) -> None:
    """One layer: the app and `count` files of `size` bytes each, 1,000 to a directory,
    sorted by name as slimmer's writer requires of its own layers."""
    block = hashlib.sha256(b"scale").digest() * (size // 32 + 1)

    def entries() -> Iterator[tuple[str, bytes | None, int]]:
        names: list[tuple[str, bytes | None, int]] = [("data", None, 0)]
        for d in range((count + 999) // 1000):
            names.append((f"data/d{d:04}", None, 0))
        names += _app_entries(app)
        files = [(f"data/d{i // 1000:04}/f{i:06}", None, 1) for i in range(count)]
        for name, data, mode in sorted([*names, *files], key=lambda e: e[0].encode()):
            if mode == 1:  # a data file: bytes unique to its name
                yield name, name.encode() + block[: max(size - len(name), 0)], 0o644
            else:
                yield name, data, mode

    _write_tar(path, entries())


def layer_tars(work: Path, count: int, app: dict[str, bytes]) -> list[Path]:
    """`count` layers: the app in the first, then one small file in each."""
    paths = []
    for i in range(count):
        path = work / f"layer-{i:04}.tar"
        entries = (
            _app_entries(app)
            if i == 0
            else [("layers", None, 0), (f"layers/l{i:04}", b"%d\n" % i, 0o644)]
        )
        _write_tar(path, iter(entries))
        paths.append(path)
    return paths


def config(name: str, layers: list[Path]) -> dict[str, Any]:
    diff_ids = ["sha256:" + sha256_file(p) for p in layers]
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Entrypoint": ["/server"],
            "Cmd": ["8080"],
            "User": "65534:65534",
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": {LABEL: "scale", f"{LABEL}.name": name},
        },
        "history": [{"created_by": f"bench.scale layer {i}"} for i in range(len(layers))],
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }


def build_archive(name: str, layers: list[Path], work: Path) -> Path:
    archive = work / f"{name}.tar"
    assemble_archive(layers, config(name, layers), archive)
    for layer in layers:
        layer.unlink()
    return archive


def load_tagged(engine: Engine, name: str, archive: Path) -> str:
    """Load `archive` into the engine and tag it; the tag."""
    with open(archive, "rb") as fh:
        engine.load_image(fh)
    tag = f"slimmer-bench/{name}:latest"
    engine.tag_image("sha256:" + _config_digest(archive), tag)
    return tag


def _config_digest(archive: Path) -> str:
    with tarfile.open(archive) as tf:
        name = next(m.name for m in tf if m.name.endswith(".json") and m.name != "manifest.json")
    return name.removesuffix(".json")


# -- measuring -----------------------------------------------------------------


def measure(label: str, *args: str) -> Measure:
    """Run `slim ARGS` as a child under /usr/bin/time: wall seconds, peak RSS."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        res = subprocess.run(
            ["/usr/bin/time", "-o", timing.name, "-f", "%e %U %S %M", SLIM, *args],
            capture_output=True,
            text=True,
        )
        seconds, user, system, kib = timing.read().strip().splitlines()[-1].split()
    error = res.stderr.strip().splitlines()[-1] if res.returncode and res.stderr.strip() else ""
    rss = int(kib) / 1024
    cpu = round(float(user) + float(system), 2)
    took = f"{float(seconds):.1f} s ({cpu:.1f} s CPU), {rss:.0f} MiB"
    print(f"  {label}: {took}, exit {res.returncode} {error}")
    return Measure(label, float(seconds), cpu, round(rss, 1), res.returncode, error)


def measure_image(ref: str, out: str, work: Path) -> list[Measure]:
    report = work / f"report-{out.replace('/', '_').replace(':', '_')}"
    return [
        measure("inspect", "inspect", ref, "--json"),
        measure(
            "check", "check", ref, "--max-size", "10GB", "--max-files", "1000000", "--no-config"
        ),
        measure("slim", ref, "-o", out, "--probes", str(PROBES), "--report-dir", str(report)),
    ]


def archive_row(
    kind: str, name: str, layers: list[Path], files: int, work: Path, made: list[str]
) -> Row:
    """The row of an image measured as a `docker-archive:` file of `layers`."""
    archive = build_archive(name, layers, work)
    out = f"slimmer-bench/{name}:slim"
    made.append(out)
    measures = measure_image(f"docker-archive:{archive}", out, work)
    size = archive.stat().st_size
    archive.unlink()
    return Row(kind, name, files, len(layers), size, tuple(measures))


# -- the three series -----------------------------------------------------------


def files_series(engine: Engine, app: dict[str, bytes], work: Path, made: list[str]) -> list[Row]:
    rows = []
    for count in FILE_SIZES:
        name = f"files-{count}"
        print(f"{name}: building")
        layer = work / "layer.tar"
        files_layer(layer, count, app)
        archive = build_archive(name, [layer], work)
        size = archive.stat().st_size
        tag = load_tagged(engine, name, archive)
        archive.unlink()
        made.append(tag)
        out = f"slimmer-bench/{name}:slim"
        made.append(out)
        rows.append(Row("files", name, count + 2, 1, size, tuple(measure_image(tag, out, work))))
    return rows


def entries_series(app: dict[str, bytes], work: Path, made: list[str]) -> list[Row]:
    """The per-file costs alone: the file counts of the files series, each file
    ENTRY_BYTES long, read as `docker-archive:` files (no engine save or load, whose
    time is the engine's and grows with bytes, not files)."""
    rows = []
    for count in FILE_SIZES:
        name = f"entries-{count}"
        print(f"{name}: building")
        layer = work / "layer.tar"
        files_layer(layer, count, app, ENTRY_BYTES)
        rows.append(archive_row("entries", name, [layer], count + 2, work, made))
    return rows


def layers_series(engine: Engine, app: dict[str, bytes], work: Path, made: list[str]) -> list[Row]:
    rows = []
    for count in LAYER_COUNTS:
        name = f"layers-{count}"
        print(f"{name}: building")
        layers = layer_tars(work, count, app)
        rows.append(archive_row("layers", name, layers, count + 2, work, made))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("files", "layers", "entries"))
    parser.add_argument("--keep", action="store_true", help="keep the images built")
    args = parser.parse_args()
    with Engine.connect() as engine:
        made: list[str] = []
        rows: list[Row] = []
        try:
            with tempfile.TemporaryDirectory(prefix="slimmer-bench-scale-", dir="/var/tmp") as tmp:
                work = Path(tmp)
                app = app_files(engine, work)
                if args.only in (None, "layers"):
                    rows += layers_series(engine, app, work, made)
                if args.only in (None, "entries"):
                    rows += entries_series(app, work, made)
                if args.only in (None, "files"):
                    rows += files_series(engine, app, work, made)
        finally:
            if not args.keep:
                for tag in made:
                    if engine.image_exists(tag):
                        engine.remove_image(tag, force=True)
        _record(rows)


def growth(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per series and command, the exponent k of time ~ size^k between successive sizes,
    on CPU time and on wall time (1.0 is linear; fixed costs push it below 1), and the
    peak RSS at each size."""
    out = []
    for kind, unit in (("files", "files"), ("entries", "files"), ("layers", "layers")):
        series = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r[unit])
        commands = dict.fromkeys(m["command"] for r in series for m in r["measures"])
        for command in commands:
            points = [
                (r[unit], m) for r in series for m in r["measures"] if m["command"] == command
            ]
            out.append(
                {
                    "series": kind,
                    "command": command,
                    "sizes": [n for n, _ in points],
                    "cpu_exponents": _exponents(
                        [(n, m.get("cpu_seconds", 0.0)) for n, m in points]
                    ),
                    "wall_exponents": _exponents([(n, m["seconds"]) for n, m in points]),
                    "peak_rss_mb": [m["peak_rss_mb"] for _, m in points],
                    "within_rss_goal": all(m["peak_rss_mb"] <= GOAL_RSS_MB for _, m in points),
                }
            )
    return out


def _exponents(points: list[tuple[int, float]]) -> list[float | None]:
    return [
        round(math.log(t2 / t1) / math.log(n2 / n1), 2) if t1 > 0 and t2 > 0 else None
        for (n1, t1), (n2, t2) in zip(points, points[1:], strict=False)
    ]


def _record(rows: list[Row]) -> None:
    """Replace the rows of the series measured now; keep the other series' rows."""
    kinds = {r.kind for r in rows}
    old = load_results().get("sections", {}).get("scale", {}).get("rows", [])
    kept = [r for r in old if r.get("kind") not in kinds]
    every = [*kept, *(asdict(r) for r in rows)]
    record("scale", {"goal_peak_rss_mb": GOAL_RSS_MB, "growth": growth(every), "rows": every})


if __name__ == "__main__":
    main()
