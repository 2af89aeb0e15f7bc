"""The fault matrix (issue 14): one row per way a `slim` run can go wrong.

Every row runs the installed `slim` and asserts four things: the exit code and
a one-line error naming the cause; no traceback; the input image's ID unchanged
and no output tag unless verification passed; nothing slimmer created left on
the engine, or, where the engine itself died, `slim cleanup` after it came back
removes everything and says what it removed.

The images are tiny: one static program, `tests/data/faults/faultapp.c`,
compiled here and put in hand-written `docker save` archives, each mode of it
a fault. Rows that kill the engine use a private dockerd (its own data root,
exec root, socket and bridge), never the shared one.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from slimmer.engine import Engine
from tests.faultkit import (
    SHARED_IMAGES,
    error_line,
    left_by,
    leftover_ids,
    load_fault_image,
    remove_images,
)
from tests.installed import popen_slim, run_slim
from tests.needs import require, require_root
from tests.private_engine import PrivateEngine, connect, env_var, teardown

pytestmark = [pytest.mark.engine, pytest.mark.e2e]

OUT = "slimmer-faults-out"
TCP_PROBE = """timeout = 10
[[probes]]
kind = "tcp"
port = 8080
send = "hi"
expect_contains = ["ok"]
"""


@pytest.fixture(scope="module")
def fault_images(engine: Engine, faultapp: bytes) -> Iterator[dict[str, str]]:
    files = {"app": (faultapp, 0o755)}
    tags = {
        name: load_fault_image(engine, name, files, spec) for name, spec in SHARED_IMAGES.items()
    }
    ids = [engine.inspect_image(t).id for t in tags.values()]
    try:
        yield tags
    finally:
        remove_images(engine, ids)


@dataclass(frozen=True)
class Row:
    name: str
    image: str
    code: int
    words: tuple[str, ...]  # what the one error line must say
    args: tuple[str, ...] = ()
    probes: str = ""  # a probe file's text
    env: dict[str, str] = field(default_factory=dict)


ROWS = [
    Row("app exits at once", "exit", 1, ("stopped before answering", "code 3", "dying")),
    Row("app crashes under the tracer", "crash", 1, ("exit code 139", "SIGSEGV")),
    Row("app double-forks a daemon", "daemon", 1, ("background process",), probes=TCP_PROBE),
    Row("app ignores SIGTERM (its STOPSIGNAL)", "stubborn", 0, (), probes=TCP_PROBE),
    Row("app exceeds the memory limit", "hog", 1, ("memory limit", "--memory 64 MiB"),
        args=("--memory", "64MiB")),
    Row("a probe that hangs", "serve", 1, ("timed out after 3s",),
        probes='timeout = 3\n[[probes]]\nkind = "cmd"\ncmd = "sleep 60"\n'),
    Row("a probe command missing on the host", "serve", 1, ("host command not found",),
        probes='timeout = 20\n[[probes]]\nkind = "cmd"\ncmd = "slimmer-no-such-tool {port}"\n'),
    Row("an entrypoint that does not exist", "noentry", 6, ("'/app/missing'", "does not exist")),
    Row("an image for an unrunnable platform", "s390x", 6, ("linux/s390x", "linux/amd64")),
    Row("the engine unreachable at start", "serve", 1, ("not reachable",),
        env={"DOCKER_HOST": "unix:///nonexistent/slimmer-faults.sock"}),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_fault(row: Row, fault_images: dict[str, str], engine: Engine, tmp_path: Path) -> None:
    tag = fault_images[row.image]
    before = engine.inspect_image(tag).id
    existing = leftover_ids(engine)
    out = f"{OUT}/{row.image}:slim"
    args = [*row.args]
    if row.probes:
        (tmp_path / "probes.toml").write_text(row.probes)
        args += ["--probes", str(tmp_path / "probes.toml")]
    try:
        res = run_slim(tag, "-o", out, *args, env=row.env, timeout=300)
        _check(row, res)
        assert engine.inspect_image(tag).id == before
        assert engine.image_exists(out) == (row.code == 0)
        assert not left_by(engine, {before}, existing)
    finally:
        remove_images(engine, [out])


def _check(row: Row, res: subprocess.CompletedProcess[str]) -> None:
    assert res.returncode == row.code, res.stderr
    if row.code == 0:
        assert "Traceback" not in res.stderr and "slim: error" not in res.stderr
        return
    line = error_line(res.stderr)
    missing = [w for w in row.words if w not in line]
    assert not missing, line


@pytest.fixture
def full_tmp(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs: room for the image slimmer reads (785 kB, spooled), not for the
    layer and archive it writes."""
    require_root()
    where = tmp_path / "full"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(f"mount -t tmpfs refused: {mounted.stderr.strip()}", pytrace=False)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_disk_full_while_writing(
    full_tmp: Path, fault_images: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    tag = fault_images["serve"]
    before = engine.inspect_image(tag).id
    existing = leftover_ids(engine)
    (tmp_path / "probes.toml").write_text(TCP_PROBE)
    out = f"{OUT}/disk-full:slim"
    cache = tmp_path / "cache"  # the image is read to a roomy disk, written to the full one
    env = {"TMPDIR": str(full_tmp), "SLIMMER_CACHE_DIR": str(cache)}
    try:
        res = run_slim(tag, "-o", out, "--probes", str(tmp_path / "probes.toml"), env=env)
        assert res.returncode == 1, res.stderr
        line = error_line(res.stderr)
        assert "writing: no space left on the device" in line and "TMPDIR" in line, line
        assert engine.inspect_image(tag).id == before
        assert not engine.image_exists(out)
        assert not left_by(engine, {before}, existing)
        assert not os.listdir(full_tmp)  # the work directory went too
    finally:
        remove_images(engine, [out])


@pytest.fixture(scope="module")
def private_engine(faultapp: bytes) -> Iterator[tuple[PrivateEngine, str, str]]:
    """A private engine holding one batch image that reads 16 MB and sleeps 1 s."""
    require_root()
    require("ip")
    root = Path(tempfile.mkdtemp(prefix="slimfault-", dir="/tmp"))
    private = PrivateEngine(root)
    try:
        ip = ["ip", "link", "add", PrivateEngine.BRIDGE, "type", "bridge"]
        subprocess.run(ip, check=True)
        subprocess.run(
            ["ip", "addr", "add", PrivateEngine.SUBNET, "dev", private.BRIDGE], check=True
        )
        subprocess.run(["ip", "link", "set", PrivateEngine.BRIDGE, "up"], check=True)
        private.start()
        files = {"app": (faultapp, 0o755), "data/big": (os.urandom(1 << 20) * 16, 0o644)}
        eng = connect(private.host)
        try:
            tag = load_fault_image(
                eng, "sleep", files, (["/app", "sleep", "1", "/data/big"], {}, "amd64")
            )
            image_id = eng.inspect_image(tag).id
        finally:
            eng.close()
        yield private, tag, image_id
    finally:
        teardown(private)


# (stage row, the stderr line that starts it, the stage the error must name)
ENGINE_DEATHS = [
    ("reading", "slim: reading the image", "reading the image"),
    ("tracing", "slim: tracing: probing", "tracing"),
    # writing talks to no engine: its death is noticed when the archive is loaded
    # (the slim layer goes to the engine while it is written: its death is noticed
    # then, and the whole archive's load, tried next, names it)
    ("writing", "slim: writing", "loading"),
    ("loading", "slim: writing", "loading"),  # then: once the engine receives the layer
    ("verifying", "slim: verifying: probing", "verifying"),
]


def _run_until(host: str, tag: str, out: str, trigger: str, cache: Path) -> subprocess.Popen[str]:
    with env_var("DOCKER_HOST", host), env_var("SLIMMER_CACHE_DIR", str(cache)):
        proc = popen_slim(tag, "-o", out, stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.rstrip() == trigger or line.startswith(trigger + " "):
            return proc
    pytest.fail(f"never saw {trigger!r}: {''.join(seen)}")


@pytest.mark.parametrize("stage,trigger,named", ENGINE_DEATHS, ids=[d[0] for d in ENGINE_DEATHS])
def test_engine_killed_mid_run(
    stage: str,
    trigger: str,
    named: str,
    private_engine: tuple[PrivateEngine, str, str],
    tmp_path: Path,
) -> None:
    private, tag, image_id = private_engine
    out = f"{OUT}/engine-{stage}:slim"
    proc = _run_until(private.host, tag, out, trigger, tmp_path / "cache")
    if stage == "loading":
        _receiving(private)
    private.kill()
    _, rest = proc.communicate(timeout=120)
    private.start()
    assert proc.returncode == 1, rest
    line = error_line(rest)
    assert line.startswith(f"slim: error: the engine went away while {named}: "), line
    if stage == "loading":  # the engine died receiving the layer: the load's first call says so
        assert "looking up image" in line or "loading image" in line, line
    _cleaned_up(private, tag, image_id, out)


def _receiving(private: PrivateEngine) -> None:
    """Wait until the engine is receiving the slim image: registering its layer (in a
    `write-set-*` directory of its layer store's tmp) or spooling a whole archive
    (`docker load`, in a `docker-import-*` directory under its data root's tmp)."""
    data = private.root / "data"
    deadline = time.monotonic() + 30
    while not (
        any(data.glob("image/*/layerdb/tmp/write-set-*")) or any(data.glob("tmp/docker-import-*"))
    ):
        if time.monotonic() > deadline:
            pytest.fail("the engine never started receiving the slim image")
        time.sleep(0.005)


def test_engine_restarted_mid_run(
    private_engine: tuple[PrivateEngine, str, str], tmp_path: Path
) -> None:
    private, tag, image_id = private_engine
    out = f"{OUT}/engine-restart:slim"
    proc = _run_until(private.host, tag, out, "slim: tracing: probing", tmp_path / "cache")
    private.kill()
    private.start()
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 1, rest
    line = error_line(rest)
    assert "tracing" in line or "probing" in line, line
    _cleaned_up(private, tag, image_id, out)


def _cleaned_up(private: PrivateEngine, tag: str, image_id: str, out: str) -> None:
    """The input unchanged, no output tag, and `slim cleanup` removes what is left."""
    eng = connect(private.host)
    try:
        assert eng.inspect_image(tag).id == image_id
        assert not eng.image_exists(out)
        left = eng.leftovers()
        res = run_slim("cleanup", env={"DOCKER_HOST": private.host}, timeout=120)
        assert res.returncode == 0, res.stderr
        for item in left:
            assert f"removed {item.kind} {item.id[:12]}" in res.stdout, (item, res.stdout)
        assert not eng.leftovers()
    finally:
        eng.close()
