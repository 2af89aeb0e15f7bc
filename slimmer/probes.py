"""Probes: what "the image still works" means, and running them.

A probe file (`slim --probes FILE`, `fixtures/*/probe.toml`) is TOML::

    timeout = 60                 # seconds for readiness and for batch/run exits
    [[probes]]                   # narrow probes: exercised while slimming
    kind = "http"
    port = 8080                  # container port; default: the first exposed port
    method = "GET"
    path = "/"
    headers = { Accept = "application/json" }
    body = ""
    expect_status = 200          # default: any status below 500
    expect_contains = ['"ok"']   # substrings the body/reply/stdout must contain
    expect_not_contains = []     # substrings it must not contain
    [[heldout]]                  # wider probes: never used for slimming; the
    ...                          # slim image must pass them too

Every probe has `kind`, an optional `name`, `expect_contains` and
`expect_not_contains`. Per kind:

- `http`: port, method, path, headers, body, expect_status. Records the status
  and the body.
- `tcp`: port, send. Connects, sends `send` (if any) and records the reply.
- `exec`: cmd (argv list, or a string split like a shell), expect_exit. Runs in
  the running container (`docker exec`); records exit code and stdout+stderr.
- `cmd`: cmd (a host shell command), expect_exit. `{host}`, `{port}` (the
  probe's port, or the default) and `{port:NNNN}` (container port NNNN) become
  the published address. Records the exit code and stdout.
- `batch`: expect_exit. No probing: the container runs its own entrypoint/cmd
  to the end; records the exit code and stdout.
- `run`: cmd, entrypoint, env (table), expect_exit. A new container of the
  image with these overrides runs to the end; records exit code and stdout.
`expect_exit` defaults to 0. Unknown keys, keys of another kind and bad values
are usage errors naming the key and the value.

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

The same specs come from CLI flags: `--probe-http '[METHOD ]PATH'`,
`--probe-tcp PORT`, `--probe-exec CMD`, `--probe-cmd CMD`.
"""

from __future__ import annotations

import http.client
import re
import shlex
import socket
import subprocess
import threading
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from slimmer.engine import Engine
from slimmer.errors import SlimError, UsageError

KINDS = ("http", "tcp", "exec", "cmd", "batch", "run")
ATTACHED = frozenset({"http", "tcp", "exec", "cmd"})  # probe a running container
DEFAULT_TIMEOUT = 60.0
BACKOFF_START = 0.2
BACKOFF_CAP = 2.0
ATTEMPT_TIMEOUT = 10.0
TCP_QUIET = 0.5
SETTLE = 5.0  # an app that answers wrongly may be warming up (503): retried this long
HOST = "127.0.0.1"

Ports = Mapping[int, tuple[str, int]]  # container port -> (host address, host port)


@dataclass(frozen=True)
class ProbeSpec:
    """One probe, as parsed; which fields matter depends on `kind`."""

    kind: str
    name: str = ""
    port: int | None = None
    method: str = "GET"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    send: str = ""
    cmd: tuple[str, ...] = ()
    command: str = ""
    entrypoint: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    expect_status: int | None = None
    expect_exit: int | None = None
    expect_contains: tuple[str, ...] = ()
    expect_not_contains: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """A short, stable description: the name, else what the probe does."""
        return self.name or self.describe()

    def describe(self) -> str:
        port = f":{self.port}" if self.port else ""
        if self.kind == "http":
            return f"http {self.method} {port}{self.path}"
        if self.kind == "tcp":
            return f"tcp {port or ':default'}" + (f" send {self.send!r}" if self.send else "")
        if self.kind == "exec":
            return f"exec {shlex.join(self.cmd)}"
        if self.kind == "cmd":
            return f"cmd {self.command}"
        if self.kind == "run":
            env = " ".join(f"{k}={v}" for k, v in self.env)
            return " ".join(x for x in ("run", env, shlex.join(self.cmd)) if x)
        return "batch"

    @property
    def expected_code(self) -> int | None:
        """The status (http) or exit code that must match; None: see `code_ok`."""
        if self.kind == "http":
            return self.expect_status
        if self.kind == "tcp":
            return None
        return 0 if self.expect_exit is None else self.expect_exit

    def code_ok(self, code: int | None) -> bool:
        want = self.expected_code
        if self.kind == "tcp":
            return True
        if want is None:  # http without expect_status
            return code is not None and code < 500
        return code == want

    def ports_used(self) -> set[int]:
        """Container ports this probe talks to, besides the default one."""
        used = {self.port} if self.port else set()
        used |= {int(m.group(2)) for m in _PLACEHOLDER.finditer(self.command) if m.group(2)}
        return used


@dataclass(frozen=True)
class ProbeSet:
    """A probe file: narrow probes, heldout probes and the timeout."""

    probes: tuple[ProbeSpec, ...] = ()
    heldout: tuple[ProbeSpec, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    source: str = ""


@dataclass(frozen=True)
class Observation:
    """What a probe saw that must be the same on the original and the slim image."""

    label: str
    ok: bool
    code: int | None
    output: bytes


@dataclass(frozen=True)
class ProbeResult:
    """One probe run. `status` for http, `exit_code` for the others; `output`
    is the body (http), the reply (tcp) or stdout (exec: stdout+stderr)."""

    probe: ProbeSpec
    ok: bool
    status: int | None = None
    exit_code: int | None = None
    output: bytes = b""
    error: str = ""
    attempts: int = 0
    seconds: float = 0.0

    @property
    def code(self) -> int | None:
        return self.status if self.probe.kind == "http" else self.exit_code

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    def observable(self) -> Observation:
        """The fields compared between runs (not timing, attempts or messages)."""
        return Observation(self.probe.label, self.ok, self.code, self.output)


# -- parsing ----------------------------------------------------------------------
_PLACEHOLDER = re.compile(r"\{(host|port)(?::(\d+))?\}")
_METHOD = re.compile(r"[A-Z]+")
_COMMON_KEYS = frozenset({"kind", "name", "expect_contains", "expect_not_contains"})
_KIND_KEYS = {
    "http": frozenset({"port", "method", "path", "headers", "body", "expect_status"}),
    "tcp": frozenset({"port", "send"}),
    "exec": frozenset({"cmd", "expect_exit"}),
    "cmd": frozenset({"cmd", "port", "expect_exit"}),
    "batch": frozenset({"expect_exit"}),
    "run": frozenset({"cmd", "entrypoint", "env", "expect_exit"}),
}
_REQUIRED = {"exec": "cmd", "cmd": "cmd", "tcp": "port"}
_ROOT_KEYS = frozenset({"timeout", "probes", "heldout"})


def _bad(where: str, key: str, value: object, why: str) -> UsageError:
    return UsageError(f"{where}: {key} = {value!r}: {why}")


def _port(where: str, key: str, value: object) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise _bad(where, key, value, "expected a port number 1-65535")
    return value


def _int(lo: int, hi: int) -> Callable[[str, str, object], int]:
    def convert(where: str, key: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise _bad(where, key, value, f"expected an integer {lo}-{hi}")
        return value

    return convert


def _str(where: str, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise _bad(where, key, value, "expected a string")
    return value


def _strings(where: str, key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(where, key, value, "expected a string or a list of strings")
    return tuple(value)


def _argv(where: str, key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            value = shlex.split(value)
        except ValueError as exc:
            raise _bad(where, key, value, str(exc)) from exc
    return _strings(where, key, value)


def _table(where: str, key: str, value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _bad(where, key, value, "expected a table of strings")
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))


def _method(where: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not _METHOD.fullmatch(value.upper()):
        raise _bad(where, key, value, "expected an HTTP method such as GET")
    return value.upper()


def _path(where: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not value.startswith("/") or any(c.isspace() for c in value):
        raise _bad(where, key, value, "expected a path starting with '/' without spaces")
    return value


def _command(where: str, key: str, value: object) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = shlex.join(value)
    if not isinstance(value, str) or not value.strip():
        raise _bad(where, key, value, "expected a non-empty command")
    return value


_CONVERT: dict[str, Callable[[str, str, object], Any]] = {
    "name": _str,
    "port": _port,
    "method": _method,
    "path": _path,
    "headers": _table,
    "body": _str,
    "send": _str,
    "entrypoint": _argv,
    "env": _table,
    "expect_status": _int(100, 599),
    "expect_exit": _int(0, 255),
    "expect_contains": _strings,
    "expect_not_contains": _strings,
}


def probe_from_dict(raw: Mapping[str, object], where: str) -> ProbeSpec:
    """One probe table -> ProbeSpec; `where` names it in error messages."""
    kind = raw.get("kind")
    if kind not in KINDS:
        raise _bad(where, "kind", kind, f"expected one of {', '.join(KINDS)}")
    assert isinstance(kind, str)
    allowed = _COMMON_KEYS | _KIND_KEYS[kind]
    fields: dict[str, Any] = {"kind": kind}
    for key, value in raw.items():
        if key not in allowed:
            raise _bad(where, key, value, f"not a key of a {kind} probe")
        if key == "cmd":
            conv = _command if kind == "cmd" else _argv
            fields["command" if kind == "cmd" else "cmd"] = conv(where, key, value)
        elif key != "kind":
            fields[key] = _CONVERT[key](where, key, value)
    required = _REQUIRED.get(kind)
    if required and required not in raw:
        raise UsageError(f"{where}: a {kind} probe needs {required!r}")
    if kind == "exec" and not fields["cmd"]:
        raise _bad(where, "cmd", raw["cmd"], "expected a non-empty command")
    return ProbeSpec(**fields)


def _probe_list(doc: Mapping[str, object], key: str, source: str) -> tuple[ProbeSpec, ...]:
    items = doc.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise _bad(source, key, items, f"expected [[{key}]] tables")
    return tuple(probe_from_dict(item, f"{source} [[{key}]] #{n}") for n, item in
                 enumerate(items, 1))


def parse_probe_toml(text: str, source: str = "<probes>") -> ProbeSet:
    """Parse the text of a probe file (see the module docstring)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"reading probes from {source}: {exc}") from exc
    for key, value in doc.items():
        if key not in _ROOT_KEYS:
            raise _bad(source, key, value, "unknown key (expected timeout, probes, heldout)")
    timeout = doc.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise _bad(source, "timeout", timeout, "expected a positive number of seconds")
    return ProbeSet(
        probes=_probe_list(doc, "probes", source),
        heldout=_probe_list(doc, "heldout", source),
        timeout=float(timeout),
        source=source,
    )


def load_probe_file(path: Path) -> ProbeSet:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"reading probes from {path}: {exc}") from exc
    return parse_probe_toml(text, str(path))


def parse_http_flag(value: str) -> ProbeSpec:
    """`--probe-http '[METHOD ]PATH'`."""
    parts = value.split()
    if len(parts) not in (1, 2):
        raise _bad("--probe-http", "value", value, "expected '[METHOD ]PATH'")
    method = _method("--probe-http", "method", parts[0]) if len(parts) == 2 else "GET"
    return ProbeSpec(kind="http", method=method, path=_path("--probe-http", "path", parts[-1]))


def parse_tcp_flag(value: str) -> ProbeSpec:
    """`--probe-tcp PORT`."""
    return ProbeSpec(kind="tcp", port=_port("--probe-tcp", "port", value.strip()))


def parse_exec_flag(value: str) -> ProbeSpec:
    """`--probe-exec CMD` (split like a shell)."""
    argv = _argv("--probe-exec", "cmd", value)
    if not argv:
        raise _bad("--probe-exec", "cmd", value, "expected a non-empty command")
    return ProbeSpec(kind="exec", cmd=argv)


def parse_cmd_flag(value: str) -> ProbeSpec:
    """`--probe-cmd CMD` (a host shell command with placeholders)."""
    return ProbeSpec(kind="cmd", command=_command("--probe-cmd", "cmd", value))


def probes_from_flags(
    http: Iterable[str] = (),
    tcp: Iterable[str] = (),
    exec_: Iterable[str] = (),
    cmd: Iterable[str] = (),
) -> tuple[ProbeSpec, ...]:
    """All CLI probe flags, in the order http, tcp, exec, cmd."""
    return (
        tuple(parse_http_flag(v) for v in http)
        + tuple(parse_tcp_flag(v) for v in tcp)
        + tuple(parse_exec_flag(v) for v in exec_)
        + tuple(parse_cmd_flag(v) for v in cmd)
    )


# -- judging ------------------------------------------------------------------------
def _problems(r: ProbeResult) -> list[str]:
    p = r.probe
    if r.error:
        return [r.error]
    out: list[str] = []
    if not p.code_ok(r.code):
        what = "status" if p.kind == "http" else "exit code"
        want = p.expected_code if p.expected_code is not None else "below 500"
        out.append(f"{what} {r.code}, expected {want}")
    out += [f"output lacks {s!r}" for s in p.expect_contains if s not in r.text]
    out += [f"output contains {s!r}" for s in p.expect_not_contains if s in r.text]
    return out


def _judge(r: ProbeResult) -> ProbeResult:
    problems = _problems(r)
    return replace(r, ok=not problems, error="; ".join(problems))


def _ready(r: ProbeResult) -> bool:
    """Reached the app and the status/exit code matches: stop retrying."""
    return not r.error and r.probe.code_ok(r.code)


# -- one attempt per kind ---------------------------------------------------------------
@dataclass(frozen=True)
class _Target:
    engine: Engine
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

    return _PLACEHOLDER.sub(sub, command)


def _cmd_attempt(t: _Target, p: ProbeSpec, timeout: float) -> ProbeResult:
    command = expand_placeholders(p.command, t.ports, p.port or t.default_port)
    try:
        res = subprocess.run(
            command, shell=True, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return ProbeResult(p, False, error=f"host command timed out after {timeout:.0f}s")
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
def _container_gone(engine: Engine, container: str) -> str:
    """"" while the container runs; otherwise how it ended, with its last log line."""
    try:
        state = engine.inspect_container(container).get("State") or {}
    except SlimError as exc:
        return str(exc)
    if state.get("Running"):
        return ""
    tail = engine.logs(container).decode("utf-8", "replace").strip().splitlines()[-1:]
    last = f" ({tail[0][:200]})" if tail else ""
    return f"container exited with code {state.get('ExitCode')}{last}"


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
            res = ProbeResult(p, False, error=str(exc))
            break
        if _ready(res) or time.monotonic() + delay > deadline:
            break
        if not res.error or t.answered[0]:
            # The app is up (it answered this or an earlier probe): what it says now
            # is its answer once SETTLE seconds have passed.
            answered = answered if answered is not None else time.monotonic()
            if time.monotonic() - answered >= SETTLE:
                break
        gone = _container_gone(t.engine, t.container)
        if gone:
            res = replace(res, error="; ".join(_problems(res) + [gone]))
            break
        time.sleep(delay)
        delay = min(delay * 2, BACKOFF_CAP)
    if not res.error:
        t.answered[0] = True
    return _judge(replace(res, attempts=tries, seconds=time.monotonic() - start))


def _await_exit(engine: Engine, container: str, p: ProbeSpec, deadline: float) -> ProbeResult:
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
    engine: Engine,
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


def run_to_exit(engine: Engine, image: str, p: ProbeSpec, timeout: float) -> ProbeResult:
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
def exposed_ports(engine: Engine, image: str) -> list[int]:
    """The image's exposed TCP ports, sorted."""
    exposed = engine.inspect_image(image).config.get("ExposedPorts") or {}
    return sorted(int(k.split("/")[0]) for k in exposed if k.endswith("/tcp") or "/" not in k)


@contextmanager
def running_container(
    engine: Engine, image: str, ports: Iterable[int], **kwargs: Any
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
    engine: Engine,
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
            found = run_probes(engine, container, ports, [p for _, p in attached], limit,
                               default_port=exposed[0] if exposed else None)
        results.update(zip((i for i, _ in attached), found, strict=True))
    for i, p in enumerate(probes):
        if p.kind not in ATTACHED:
            results[i] = run_to_exit(engine, image, p, limit)
    return [results[i] for i in range(len(probes))]
