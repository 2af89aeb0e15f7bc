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

Running probes (readiness, retries) is `slimmer.trace.proberun`.

The same specs come from CLI flags: `--probe-http '[METHOD ]PATH'`,
`--probe-tcp PORT`, `--probe-exec CMD`, `--probe-cmd CMD`.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimmer.errors import UsageError

KINDS = ("http", "tcp", "exec", "cmd", "batch", "run")
ATTACHED = frozenset({"http", "tcp", "exec", "cmd"})  # probe a running container
DEFAULT_TIMEOUT = 60.0
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
        used |= {int(m.group(2)) for m in PLACEHOLDER.finditer(self.command) if m.group(2)}
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
PLACEHOLDER = re.compile(r"\{(host|port)(?::(\d+))?\}")
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
    return tuple(
        probe_from_dict(item, f"{source} [[{key}]] #{n}") for n, item in enumerate(items, 1)
    )


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


def collect_probes(
    probe_file: Path | None,
    http: Iterable[str] = (),
    tcp: Iterable[str] = (),
    exec_: Iterable[str] = (),
    cmd: Iterable[str] = (),
    timeout: float | None = None,
) -> tuple[tuple[ProbeSpec, ...], float]:
    """The probes of a run: the probe file's, then the flags'; the timeout from the
    flag, else the file's, else `DEFAULT_TIMEOUT`."""
    specs: tuple[ProbeSpec, ...] = ()
    limit = DEFAULT_TIMEOUT
    if probe_file is not None:
        if not probe_file.is_file():
            raise UsageError(f"--probes {probe_file}: no such file")
        loaded = load_probe_file(probe_file)
        specs, limit = loaded.probes, loaded.timeout
    specs += probes_from_flags(http, tcp, exec_, cmd)
    return specs, timeout if timeout is not None else limit
