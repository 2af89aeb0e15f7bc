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

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from slimmer.engine import Engine
from slimmer.errors import SlimError
from slimmer.model import SOURCE_LABEL
from tests.installed import popen_slim, run_slim
from tests.needs import require, require_root

pytestmark = [pytest.mark.engine, pytest.mark.e2e]

FAULTAPP = Path(__file__).resolve().parent / "data" / "faults" / "faultapp.c"
TEST_LABEL = {"io.slimmer.test": "faults"}  # the test's own images, removed at the end
OUT = "slimmer-faults-out"
PORTS: dict[str, object] = {"ExposedPorts": {"8080/tcp": {}}}
TCP_PROBE = """timeout = 10
[[probes]]
kind = "tcp"
port = 8080
send = "hi"
expect_contains = ["ok"]
"""


# -- images written by hand ----------------------------------------------------------------
def _tar(files: Mapping[str, tuple[bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def image_archive(
    tag: str, files: Mapping[str, tuple[bytes, int]], config: Mapping[str, object], arch: str
) -> bytes:
    """A one-layer `docker save` archive of `files` with this container config."""
    layer = _tar(files)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    image_config = {
        "architecture": arch,
        "os": "linux",
        "config": {**config, "Labels": TEST_LABEL},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "tests/test_faults_engine.py"}],
    }
    blob = json.dumps(image_config, sort_keys=True).encode()
    name = hashlib.sha256(blob).hexdigest() + ".json"
    manifest = [{"Config": name, "RepoTags": [tag], "Layers": ["layer.tar"]}]
    return _tar(
        {
            "manifest.json": (json.dumps(manifest).encode(), 0o644),
            name: (blob, 0o644),
            "layer.tar": (layer, 0o644),
        }
    )


@pytest.fixture(scope="module")
def faultapp(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    require("gcc")
    out = tmp_path_factory.mktemp("faultapp") / "faultapp"
    subprocess.run(["gcc", "-static", "-Os", "-o", str(out), str(FAULTAPP)], check=True)
    return out.read_bytes()


Spec = tuple[list[str], Mapping[str, object], str]  # entrypoint, more config, architecture
SHARED_IMAGES: dict[str, Spec] = {
    "exit": (["/app", "exit", "3"], PORTS, "amd64"),
    "crash": (["/app", "crash"], {}, "amd64"),
    "daemon": (["/app", "daemon", "8080"], PORTS, "amd64"),
    "stubborn": (["/app", "stubborn", "8080"], {**PORTS, "StopSignal": "SIGTERM"}, "amd64"),
    "hog": (["/app", "hog", "8080"], PORTS, "amd64"),
    "serve": (["/app", "serve", "8080"], PORTS, "amd64"),
    "noentry": (["/app/missing"], PORTS, "amd64"),
    "arm": (["/app", "serve", "8080"], PORTS, "arm64"),
}


def _load(engine: Engine, name: str, files: Mapping[str, tuple[bytes, int]], spec: Spec) -> str:
    entrypoint, extra, arch = spec
    tag = f"slimmer-faults/{name}:latest"
    engine.load_image(image_archive(tag, files, {"Entrypoint": entrypoint, **extra}, arch))
    return tag


def _remove_images(engine: Engine, refs: list[str]) -> None:
    for ref in refs:
        with suppress(SlimError):
            engine.remove_image(ref, force=True)


@pytest.fixture(scope="module")
def fault_images(engine: Engine, faultapp: bytes) -> Iterator[dict[str, str]]:
    files = {"app": (faultapp, 0o755)}
    tags = {name: _load(engine, name, files, spec) for name, spec in SHARED_IMAGES.items()}
    ids = [engine.inspect_image(t).id for t in tags.values()]
    try:
        yield tags
    finally:
        _remove_images(engine, ids)


# -- the four assertions ---------------------------------------------------------------------
def _error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("slim: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def _left_by(engine: Engine, source_ids: set[str]) -> list[str]:
    """slimmer's leftovers that came from these images (other runs share the engine)."""
    out = []
    for item in engine.leftovers():
        try:
            if item.kind == "container":
                origin = str(engine.inspect_container(item.id).get("Image", ""))
            else:
                origin = engine.inspect_image(item.id).labels.get(SOURCE_LABEL, "")
        except SlimError:  # removed meanwhile by its own run
            continue
        if origin in source_ids:
            out.append(f"{item.kind} {item.id[:12]}")
    return out


@dataclass(frozen=True)
class Row:
    name: str
    image: str
    code: int
    words: tuple[str, ...]  # what the one error line must say
    args: tuple[str, ...] = ()
    probes: str = ""  # a probe file's text
    within: float = 120.0  # seconds the run may take
    env: dict[str, str] = field(default_factory=dict)


ROWS = [
    Row("app exits at once", "exit", 1, ("stopped before answering", "code 3", "dying"), within=30),
    Row("app crashes under the tracer", "crash", 1, ("exit code 139", "SIGSEGV")),
    Row("app double-forks a daemon", "daemon", 1, ("background process",), probes=TCP_PROBE),
    Row("app ignores SIGTERM (its STOPSIGNAL)", "stubborn", 0, (), probes=TCP_PROBE),
    Row("app exceeds the memory limit", "hog", 1, ("memory limit", "--memory 64 MiB"),
        args=("--memory", "64MiB"), within=60),
    Row("a probe that hangs", "serve", 1, ("timed out after 3s",),
        probes='timeout = 3\n[[probes]]\nkind = "cmd"\ncmd = "sleep 60"\n', within=60),
    Row("a probe command missing on the host", "serve", 1, ("host command not found",),
        probes='timeout = 20\n[[probes]]\nkind = "cmd"\ncmd = "slimmer-no-such-tool {port}"\n',
        within=30),
    Row("an entrypoint that does not exist", "noentry", 6, ("'/app/missing'", "does not exist"),
        within=30),
    Row("an image for another architecture", "arm", 6, ("linux/arm64", "linux/amd64"), within=30),
    Row("the engine unreachable at start", "serve", 1, ("not reachable",),
        env={"DOCKER_HOST": "unix:///nonexistent/slimmer-faults.sock"}, within=30),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_fault(row: Row, fault_images: dict[str, str], engine: Engine, tmp_path: Path) -> None:
    tag = fault_images[row.image]
    before = engine.inspect_image(tag).id
    out = f"{OUT}/{row.image}:slim"
    args = [*row.args]
    if row.probes:
        (tmp_path / "probes.toml").write_text(row.probes)
        args += ["--probes", str(tmp_path / "probes.toml")]
    start = time.monotonic()
    try:
        res = run_slim(tag, "-o", out, *args, env=row.env, timeout=300)
        took = time.monotonic() - start
        _check(row, res, took)
        assert engine.inspect_image(tag).id == before
        assert engine.image_exists(out) == (row.code == 0)
        assert not _left_by(engine, {before})
    finally:
        _remove_images(engine, [out])


def _check(row: Row, res: subprocess.CompletedProcess[str], took: float) -> None:
    assert res.returncode == row.code, res.stderr
    assert took < row.within, f"{row.name}: {took:.1f}s"
    if row.code == 0:
        assert "Traceback" not in res.stderr and "slim: error" not in res.stderr
        return
    line = _error_line(res.stderr)
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
    (tmp_path / "probes.toml").write_text(TCP_PROBE)
    out = f"{OUT}/disk-full:slim"
    cache = tmp_path / "cache"  # the image is read to a roomy disk, written to the full one
    env = {"TMPDIR": str(full_tmp), "SLIMMER_CACHE_DIR": str(cache)}
    try:
        res = run_slim(tag, "-o", out, "--probes", str(tmp_path / "probes.toml"), env=env)
        assert res.returncode == 1, res.stderr
        line = _error_line(res.stderr)
        assert "writing: no space left on the device" in line and "TMPDIR" in line, line
        assert engine.inspect_image(tag).id == before
        assert not engine.image_exists(out)
        assert not _left_by(engine, {before})
        assert not os.listdir(full_tmp)  # the work directory went too
    finally:
        _remove_images(engine, [out])


# -- a private engine, killed mid-run ------------------------------------------------------
class PrivateEngine:
    """A second dockerd with its own data root, exec root, socket and bridge.

    Never `--bridge=none`: dockerd then deletes the host's docker0, the shared
    engine's bridge. Its own bridge, no iptables, no forwarding instead."""

    BRIDGE = "slimfault0"
    SUBNET = "10.213.77.1/24"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = f"unix://{root}/docker.sock"

    def start(self) -> None:
        (self.root / "dockerd.pid").unlink(missing_ok=True)  # left by a killed dockerd
        pidfile = self.root / "exec" / "containerd" / "containerd.pid"
        if pidfile.exists() and not _alive(int(pidfile.read_text().strip() or 0)):
            pidfile.unlink()  # its containerd died with it (or lingers as a zombie)
        log = open(self.root / "dockerd.log", "ab")  # noqa: SIM115 (the daemon keeps it)
        self.proc = subprocess.Popen(
            [
                "/usr/sbin/dockerd",
                f"--data-root={self.root}/data",
                f"--exec-root={self.root}/exec",
                f"--pidfile={self.root}/dockerd.pid",
                f"-H={self.host}",
                f"--bridge={self.BRIDGE}",
                "--iptables=false",
                "--ip-forward=false",
                "--ip-masq=false",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with suppress(SlimError):
                connect(self.host).close()
                return
            time.sleep(0.2)
        tail = (self.root / "dockerd.log").read_text(errors="replace").splitlines()[-3:]
        pytest.fail(f"the private dockerd did not answer: {' | '.join(tail)}", pytrace=False)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def own_processes(self) -> list[int]:
        """Pids of the processes started for this engine: its containerd and shims."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and entry.name != str(os.getpid()):
                with suppress(OSError):
                    if str(self.root).encode() in (entry / "cmdline").read_bytes():
                        pids.append(int(entry.name))
        return pids


def _alive(pid: int) -> bool:
    """A running process (not a zombie nobody reaped) has this pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return pid > 0 and stat.rpartition(")")[2].split()[0] != "Z"


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def connect(host: str) -> Engine:
    with _env("DOCKER_HOST", host):
        return Engine.connect(timeout=60)


def _teardown(private: PrivateEngine) -> None:
    private.stop()
    for pid in private.own_processes():
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    mounts = Path("/proc/mounts").read_text().splitlines()
    for where in sorted((m.split()[1] for m in mounts if str(private.root) in m), reverse=True):
        subprocess.run(["umount", "-l", where], check=False)
    subprocess.run(["ip", "link", "del", PrivateEngine.BRIDGE], check=False, capture_output=True)
    shutil.rmtree(private.root, ignore_errors=True)


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
            tag = _load(eng, "sleep", files, (["/app", "sleep", "1", "/data/big"], {}, "amd64"))
            image_id = eng.inspect_image(tag).id
        finally:
            eng.close()
        yield private, tag, image_id
    finally:
        _teardown(private)


# (stage row, the stderr line that starts it, the stage the error must name)
ENGINE_DEATHS = [
    ("reading", "slim: reading the image", "reading the image"),
    ("profiling", "slim: profiling: probing", "profiling"),
    # writing talks to no engine: its death is noticed when the archive is loaded
    ("writing", "slim: writing", "loading"),
    ("loading", "slim: loading", "loading"),  # then: once the engine receives it
    ("verifying", "slim: verifying: probing", "verifying"),
]


def _run_until(host: str, tag: str, out: str, trigger: str, cache: Path) -> subprocess.Popen[str]:
    with _env("DOCKER_HOST", host), _env("SLIMMER_CACHE_DIR", str(cache)):
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
    line = _error_line(rest)
    assert line.startswith(f"slim: error: the engine went away while {named}: "), line
    if stage == "loading":
        assert "loading image" in line, line
    _cleaned_up(private, tag, image_id, out)


def _receiving(private: PrivateEngine) -> None:
    """Wait until the engine is receiving an image archive (`docker load` spools it
    in a `docker-import-*` directory under its data root's tmp)."""
    deadline = time.monotonic() + 30
    while not any((private.root / "data" / "tmp").glob("docker-import-*")):
        if time.monotonic() > deadline:
            pytest.fail("the engine never started receiving the slim image")
        time.sleep(0.005)


def test_engine_restarted_mid_run(
    private_engine: tuple[PrivateEngine, str, str], tmp_path: Path
) -> None:
    private, tag, image_id = private_engine
    out = f"{OUT}/engine-restart:slim"
    proc = _run_until(private.host, tag, out, "slim: profiling: probing", tmp_path / "cache")
    private.kill()
    private.start()
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 1, rest
    line = _error_line(rest)
    assert "profiling" in line or "probing" in line, line
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
