"""Running probes against containers: readiness, retries, and results.

Readiness: the engine's port proxy accepts a connection before the app
listens and then drops it, so a successful connect proves nothing. Each
`http`/`tcp`/`exec`/`cmd` probe is retried (backoff from 0.2 s doubling to 2 s)
until it reaches the app and its status or exit code matches, or the timeout
(one deadline shared by the probes of a run) passes; the last failure is
recorded. Once the app has answered (this probe or an earlier one of the same
container), a wrong answer or a dropped connection is retried for SETTLE
seconds only (an app may answer 503 while it warms up), then taken as final.
A `tcp` probe without `send` counts as reached when the connection stays open
for half a second or yields data; closed at once means not ready.
"""

from __future__ import annotations

import http.client
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from slimmer.engine_api import ContainerEngine
from slimmer.errors import SlimError
from slimmer.trace.probes import (
    ATTACHED,
    DEFAULT_TIMEOUT,
    HOST,
    PLACEHOLDER,
    Ports,
    ProbeResult,
    ProbeSet,
    ProbeSpec,
)

BACKOFF_START = 0.2
BACKOFF_CAP = 2.0
ATTEMPT_TIMEOUT = 10.0
TCP_QUIET = 0.5
NOT_FOUND = 127  # the shell's exit code for a command it cannot find
SETTLE = 5.0  # an app that answers wrongly may be warming up (503): retried this long


# -- judging ------------------------------------------------------------------------
def _problems(r: ProbeResult) -> list[str]:
    p = r.probe
    if r.error:
        return [r.error]
    out: list[str] = []
    if not p.code_ok(r.code):
        what = "status" if p.kind == "http" else "exit code"
        want = p.expected_code if p.expected_code is not None else "below 500"
        out.append(f"{what} {r.code}{_signal_note(p.kind, r.code)}, expected {want}")
    out += [f"output lacks {s!r}" for s in p.expect_contains if s not in r.text]
    out += [f"output contains {s!r}" for s in p.expect_not_contains if s in r.text]
    return out


def _signal_note(kind: str, code: int | None) -> str:
    """ " (killed by SIGSEGV)" for an exit code the shell's way of saying 128 + signal."""
    if kind == "http" or code is None or not 128 < code < 128 + 65:
        return ""
    try:
        return f" (killed by {signal.Signals(code - 128).name})"
    except ValueError:
        return ""


def _judge(r: ProbeResult) -> ProbeResult:
    problems = _problems(r)
    return replace(r, ok=not problems, error="; ".join(problems))


def _ready(r: ProbeResult) -> bool:
    """Reached the app and the status/exit code matches: stop retrying."""
    return not r.error and r.probe.code_ok(r.code)


# -- one attempt per kind ---------------------------------------------------------------
@dataclass(frozen=True)
class _Target:
    engine: ContainerEngine
    container: str
    ports: Ports
    default_port: int | None
    answered: list[bool] = field(default_factory=lambda: [False])  # the app answered once


def _address(t: _Target, port: int | None) -> tuple[str, int]:
    port = port or t.default_port
    if port is None:
        raise SlimError("no port: set `port` (the image exposes none)")
    if port not in t.ports:
        raise SlimError(f"container port {port} is not published")
    return t.ports[port]


def _http_attempt(t: _Target, p: ProbeSpec, timeout: float) -> ProbeResult:
    host, port = _address(t, p.port)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(p.method, p.path, body=p.body.encode() or None, headers=dict(p.headers))
        resp = conn.getresponse()
        return ProbeResult(p, False, status=resp.status, output=resp.read())
    except (OSError, http.client.HTTPException) as exc:
        return ProbeResult(p, False, error=f"{p.method} {p.path}: {_why(exc)}")
    finally:
        conn.close()


def _recv_until_quiet(sock: socket.socket, deadline: float) -> bytes:
    """Read until EOF, `TCP_QUIET` s of silence after data, or the deadline."""
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(TCP_QUIET if data else max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def _tcp_attempt(t: _Target, p: ProbeSpec, timeout: float) -> ProbeResult:
    host, port = _address(t, p.port)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if p.send:
                sock.sendall(p.send.encode())
                reply = _recv_until_quiet(sock, time.monotonic() + timeout)
                return _tcp_result(p, reply, bool(reply))
            sock.settimeout(TCP_QUIET)
            try:
                first = sock.recv(65536)
            except TimeoutError:
                return ProbeResult(p, False)  # held open: the app has it
            reply = first + _recv_until_quiet(sock, time.monotonic() + TCP_QUIET) if first else b""
            return _tcp_result(p, reply, bool(first))
    except OSError as exc:
        return ProbeResult(p, False, error=f"tcp {port}: {_why(exc)}")


def _tcp_result(p: ProbeSpec, reply: bytes, reached: bool) -> ProbeResult:
    error = "" if reached else "connection closed without a reply"
    return ProbeResult(p, False, output=reply, error=error)


def _call_with_timeout(fn: Callable[[], tuple[int, bytes]], timeout: float) -> tuple[int, bytes]:
    """Engine.exec has no timeout: run it in a thread and give up after `timeout`.

    An abandoned call ends when its container is removed.
    """
    box: list[tuple[int, bytes] | BaseException] = []

    def target() -> None:
        try:
            box.append(fn())
        except BaseException as exc:  # handed to the caller
            box.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout)
    if not box:
        raise TimeoutError(f"no answer within {timeout:.0f}s")
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def _exec_attempt(t: _Target, p: ProbeSpec, timeout: float) -> ProbeResult:
    try:
        code, out = _call_with_timeout(lambda: t.engine.exec(t.container, list(p.cmd)), timeout)
    except (SlimError, TimeoutError) as exc:
        return ProbeResult(p, False, error=f"exec {p.cmd[0]}: {exc}")
    return ProbeResult(p, False, exit_code=code, output=out)


def expand_placeholders(command: str, ports: Ports, default_port: int | None) -> str:
    """Replace {host}, {port} and {port:NNNN} by the published address."""

    def sub(m: re.Match[str]) -> str:
        port = int(m.group(2)) if m.group(2) else default_port
        if port is None or port not in ports:
            raise SlimError(f"{m.group(0)} in {command!r}: container port {port} not published")
        host, host_port = ports[port]
        return host if m.group(1) == "host" else str(host_port)

    return PLACEHOLDER.sub(sub, command)


def _cmd_attempt(t: _Target, p: ProbeSpec, timeout: float) -> ProbeResult:
    command = expand_placeholders(p.command, t.ports, p.port or t.default_port)
    try:
        res = subprocess.run(command, shell=True, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return ProbeResult(p, False, error=f"host command timed out after {timeout:.0f}s")
    if res.returncode == NOT_FOUND and b"not found" in res.stderr:
        # the shell found no such program on the host: retrying cannot help
        why = res.stderr.decode("utf-8", "replace").strip().splitlines()[-1][:200]
        raise SlimError(f"host command not found ({why}); install it on this host")
    return ProbeResult(p, False, exit_code=res.returncode, output=res.stdout)


_ATTEMPTS: dict[str, Callable[[_Target, ProbeSpec, float], ProbeResult]] = {
    "http": _http_attempt,
    "tcp": _tcp_attempt,
    "exec": _exec_attempt,
    "cmd": _cmd_attempt,
}


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


# -- running ------------------------------------------------------------------------------
LOG_LINES = 3  # the last lines of a dead container's output, in its error


def container_gone(engine: ContainerEngine, container: str) -> str:
    """ "" while the container runs; otherwise how it ended, with its last log lines.

    A dead container ends the readiness wait at once: nothing will ever answer."""
    try:
        state = engine.inspect_container(container).get("State") or {}
    except SlimError as exc:
        return str(exc)
    if state.get("Running"):
        return ""
    return ended(engine, container, state)


def ended(engine: ContainerEngine, container: str, state: Mapping[str, Any]) -> str:
    """How a stopped container ended: exit code, OOM kill, its last log lines."""
    code = state.get("ExitCode")
    how = f"container exited with code {code}"
    if state.get("OOMKilled"):
        how = f"container was killed for exceeding its memory limit (exit code {code})"
    try:
        text = engine.logs(container).decode("utf-8", "replace")
    except SlimError:
        text = ""
    tail = [line.strip()[:200] for line in text.strip().splitlines()[-LOG_LINES:] if line.strip()]
    return f"{how}; last output: {' | '.join(tail)}" if tail else f"{how}; no output"


def _retry(t: _Target, p: ProbeSpec, deadline: float) -> ProbeResult:
    attempt = _ATTEMPTS[p.kind]
    start, delay, tries = time.monotonic(), BACKOFF_START, 0
    answered: float | None = None  # when the app first answered, but not as expected
    while True:
        tries += 1
        left = deadline - time.monotonic()
        try:
            res = attempt(t, p, min(ATTEMPT_TIMEOUT, max(1.0, left)))
        except SlimError as exc:  # a probe that can never work (port not published)
            res = ProbeResult(p, False, error=container_gone(t.engine, t.container) or str(exc))
            break
        if _ready(res):
            break
        gone = container_gone(t.engine, t.container)
        if gone:
            res = replace(res, error="; ".join(_problems(res) + [gone]))
            break
        if time.monotonic() + delay > deadline:
            break
        if not res.error or t.answered[0]:
            # The app is up (it answered this or an earlier probe): what it says now
            # is its answer once SETTLE seconds have passed.
            answered = answered if answered is not None else time.monotonic()
            if time.monotonic() - answered >= SETTLE:
                break
        time.sleep(delay)
        delay = min(delay * 2, BACKOFF_CAP)
    if not res.error:
        t.answered[0] = True
    return _judge(replace(res, attempts=tries, seconds=time.monotonic() - start))


def _await_exit(
    engine: ContainerEngine, container: str, p: ProbeSpec, deadline: float
) -> ProbeResult:
    """Wait for `container` to exit; record its exit code and stdout."""
    start = time.monotonic()
    code = engine.wait(container, timeout=max(1.0, deadline - start))
    out = engine.logs(container, stdout=True, stderr=False)
    took = time.monotonic() - start
    if code is None:
        msg = f"did not exit within {max(1.0, deadline - start):.0f}s"
        return _judge(ProbeResult(p, False, output=out, error=msg, attempts=1, seconds=took))
    return _judge(ProbeResult(p, False, exit_code=code, output=out, attempts=1, seconds=took))


def run_probes(
    engine: ContainerEngine,
    container: str,
    ports: Ports,
    probes: Sequence[ProbeSpec],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    default_port: int | None = None,
    image: str | None = None,
) -> list[ProbeResult]:
    """Run `probes` against a started container, in order, under one deadline.

    `ports` maps container ports to their published (127.0.0.1, host port);
    `default_port` (else the lowest published port) serves probes without a
    port. A `batch` probe waits for this container to exit. A `run` probe
    starts a new container of `image`, so it needs `image`.
    """
    if default_port is None and ports:
        default_port = min(ports)
    target = _Target(engine, container, ports, default_port)
    deadline = time.monotonic() + timeout
    return [_run_one(target, p, deadline, image) for p in probes]


def _run_one(t: _Target, p: ProbeSpec, deadline: float, image: str | None) -> ProbeResult:
    if p.kind in ATTACHED:
        return _retry(t, p, deadline)
    if p.kind == "batch":
        return _await_exit(t.engine, t.container, p, deadline)
    if image is None:
        return _judge(ProbeResult(p, False, error="a run probe needs the image"))
    return run_to_exit(t.engine, image, p, max(1.0, deadline - time.monotonic()))


def run_overrides(p: ProbeSpec) -> dict[str, Any]:
    """`create_container` keyword arguments for a `run` probe's overrides."""
    kwargs: dict[str, Any] = {}
    if p.cmd:
        kwargs["command"] = list(p.cmd)
    if p.entrypoint is not None:
        kwargs["entrypoint"] = list(p.entrypoint)
    if p.env:
        kwargs["environment"] = [f"{k}={v}" for k, v in p.env]
    return kwargs


def run_to_exit(engine: ContainerEngine, image: str, p: ProbeSpec, timeout: float) -> ProbeResult:
    """Run a new container of `image` (with a `run` probe's overrides) to its end."""
    container = engine.create_container(image, **run_overrides(p))
    try:
        try:
            engine.start(container)
        except SlimError as exc:  # e.g. the program is not in the image
            return _judge(ProbeResult(p, False, error=f"could not start: {exc}", attempts=1))
        return _await_exit(engine, container, p, time.monotonic() + timeout)
    finally:
        engine.remove_container(container)


# -- a container of an image, for tests and verification ---------------------------------
def exposed_ports(engine: ContainerEngine, image: str) -> list[int]:
    """The image's exposed TCP ports, sorted."""
    exposed = engine.inspect_image(image).config.get("ExposedPorts") or {}
    return sorted(int(k.split("/")[0]) for k in exposed if k.endswith("/tcp") or "/" not in k)


@contextmanager
def running_container(
    engine: ContainerEngine, image: str, ports: Iterable[int], **kwargs: Any
) -> Iterator[tuple[str, dict[int, tuple[str, int]]]]:
    """Start a container of `image` with `ports` published on 127.0.0.1 at random
    host ports; yield its id and the port map; always remove it."""
    wanted = sorted(set(ports))
    bindings = {p: (HOST,) for p in wanted}
    container = engine.create_container(
        image, ports=wanted, host_config=engine.host_config(port_bindings=bindings), **kwargs
    )
    try:
        engine.start(container)
        yield container, engine.published_ports(container, wanted)
    finally:
        engine.remove_container(container)


def run_probes_on_image(
    engine: ContainerEngine,
    image: str,
    spec: ProbeSet,
    *,
    heldout: bool = False,
    timeout: float | None = None,
) -> list[ProbeResult]:
    """Run `spec.probes` (or `spec.heldout`) against fresh containers of `image`.

    Probes of a running container share one container; each `batch` and `run`
    probe gets its own container, run to its end. Results keep the spec order.
    """
    probes = spec.heldout if heldout else spec.probes
    limit = spec.timeout if timeout is None else timeout
    results: dict[int, ProbeResult] = {}
    attached = [(i, p) for i, p in enumerate(probes) if p.kind in ATTACHED]
    if attached:
        exposed = exposed_ports(engine, image)
        wanted = set(exposed).union(*(p.ports_used() for _, p in attached))
        with running_container(engine, image, wanted) as (container, ports):
            found = run_probes(
                engine,
                container,
                ports,
                [p for _, p in attached],
                limit,
                default_port=exposed[0] if exposed else None,
            )
        results.update(zip((i for i, _ in attached), found, strict=True))
    for i, p in enumerate(probes):
        if p.kind not in ATTACHED:
            results[i] = run_to_exit(engine, image, p, limit)
    return [results[i] for i in range(len(probes))]
