"""A second dockerd for the rows that kill the engine: its own data root, exec
root, socket and bridge, so killing it never touches the shared engine."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from slimmer.engine import Engine
from slimmer.errors import SlimError


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
        if pidfile.exists() and not alive(int(pidfile.read_text().strip() or 0)):
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


def alive(pid: int) -> bool:
    """A running process (not a zombie nobody reaped) has this pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return pid > 0 and stat.rpartition(")")[2].split()[0] != "Z"


@contextmanager
def env_var(name: str, value: str) -> Iterator[None]:
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
    with env_var("DOCKER_HOST", host):
        return Engine.connect(timeout=60)


def teardown(private: PrivateEngine) -> None:
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
