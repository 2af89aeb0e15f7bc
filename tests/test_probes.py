"""Unit tests of slimmer.trace.probes: parsing, and running probes against small
servers this test starts on 127.0.0.1 (no engine; a fake stands in for it)."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from slimmer.errors import ExitStatus, SlimError, UsageError
from slimmer.trace.proberun import expand_placeholders, run_probes
from slimmer.trace.probes import (
    ProbeResult,
    ProbeSpec,
    load_probe_file,
    parse_cmd_flag,
    parse_exec_flag,
    parse_http_flag,
    parse_probe_toml,
    parse_tcp_flag,
    probes_from_flags,
)
from tests.fake_engine import UnusedEngine

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

FULL = """
timeout = 12.5
[[probes]]
kind = "http"
port = 8080
method = "post"
path = "/api?x=1"
headers = { Accept = "application/json", X-Trace = "1" }
body = "{}"
expect_status = 201
expect_contains = ['"ok"']
[[probes]]
kind = "tcp"
port = "6379"
send = "PING\\r\\n"
expect_contains = "PONG"
[[probes]]
kind = "exec"
cmd = "curl -fsS 'http://127.0.0.1:8080/a b'"
[[heldout]]
name = "host"
kind = "cmd"
cmd = "curl -s http://{host}:{port:9090}/"
expect_exit = 0
[[heldout]]
kind = "batch"
expect_exit = 3
[[heldout]]
kind = "run"
cmd = ["--input", "x.json"]
entrypoint = []
env = { TZ = "Asia/Tokyo", A = "1" }
expect_not_contains = ["Traceback"]
"""


# -- parsing --------------------------------------------------------------------------
def test_parse_full_file() -> None:
    spec = parse_probe_toml(FULL, "p.toml")
    assert spec.timeout == 12.5 and spec.source == "p.toml"
    http, tcp, ex = spec.probes
    assert (http.method, http.path, http.port) == ("POST", "/api?x=1", 8080)
    assert http.expect_status == 201 and http.body == "{}"
    assert http.headers == (("Accept", "application/json"), ("X-Trace", "1"))
    assert http.expect_contains == ('"ok"',)
    assert (tcp.port, tcp.send, tcp.expect_contains) == (6379, "PING\r\n", ("PONG",))
    assert ex.cmd == ("curl", "-fsS", "http://127.0.0.1:8080/a b")
    assert ex.expected_code == 0
    host, batch, run = spec.heldout
    assert host.command == "curl -s http://{host}:{port:9090}/" and host.label == "host"
    assert host.ports_used() == {9090}
    assert batch.expected_code == 3
    assert run.cmd == ("--input", "x.json") and run.entrypoint == ()
    assert run.env == (("A", "1"), ("TZ", "Asia/Tokyo"))


def test_defaults() -> None:
    spec = parse_probe_toml('[[probes]]\nkind = "http"\n')
    (p,) = spec.probes
    assert spec.timeout == 60 and spec.heldout == ()
    assert (p.method, p.path, p.port, p.expect_status) == ("GET", "/", None, None)
    assert p.code_ok(404) and not p.code_ok(503) and not p.code_ok(None)


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("timeout = [", ["p.toml"]),
        ('[[probes]]\nkind = "smtp"', ["kind", "'smtp'"]),
        ('[[probes]]\nkind = "http"\nport = 70000', ["port", "70000"]),
        ('[[probes]]\nkind = "http"\nport = true', ["port", "True"]),
        ('[[probes]]\nkind = "tcp"\nport = 1\npath = "/x"', ["path", "'/x'", "tcp"]),
        ('[[probes]]\nkind = "http"\npath = "x"', ["path", "'x'"]),
        ('[[probes]]\nkind = "http"\nmethod = "G T"', ["method", "'G T'"]),
        ('[[probes]]\nkind = "http"\nexpect_status = 99', ["expect_status", "99"]),
        ('[[probes]]\nkind = "http"\nheaders = { A = 1 }', ["headers"]),
        ('[[probes]]\nkind = "exec"', ["needs 'cmd'"]),
        ('[[probes]]\nkind = "exec"\ncmd = []', ["cmd", "[]"]),
        ('[[probes]]\nkind = "run"\nexpect_exit = 256', ["expect_exit", "256"]),
        ('[[probes]]\nkind = "run"\nexpect_contains = [1]', ["expect_contains", "[1]"]),
        ('[[heldout]]\nkind = "batch"\nbogus = 1', ["[[heldout]] #1", "bogus"]),
        ("timeout = -1", ["timeout", "-1"]),
        ("probes = 3", ["probes", "3"]),
        ("extra = 1", ["extra", "unknown key"]),
    ],
)
def test_bad_files_are_usage_errors(text: str, needles: list[str]) -> None:
    with pytest.raises(UsageError) as info:
        parse_probe_toml(text, "p.toml")
    assert info.value.exit_code == ExitStatus.USAGE
    for needle in needles:
        assert needle in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="nope.toml"):
        load_probe_file(tmp_path / "nope.toml")


def test_cli_flags() -> None:
    assert parse_http_flag("/health") == ProbeSpec(kind="http", path="/health")
    assert parse_http_flag("post /x?y=1").method == "POST"
    assert parse_tcp_flag(" 5432 ") == ProbeSpec(kind="tcp", port=5432)
    assert parse_exec_flag("sh -c 'echo hi'").cmd == ("sh", "-c", "echo hi")
    assert parse_cmd_flag("curl {host}:{port}").command == "curl {host}:{port}"
    kinds = [p.kind for p in probes_from_flags(["/"], ["80"], ["true"], ["true"])]
    assert kinds == ["http", "tcp", "exec", "cmd"]


@pytest.mark.parametrize(
    ("fn", "value", "needle"),
    [
        (parse_http_flag, "GET", "'GET'"),
        (parse_http_flag, "GET / extra", "'GET / extra'"),
        (parse_http_flag, "G@T /", "'G@T'"),
        (parse_tcp_flag, "http", "'http'"),
        (parse_tcp_flag, "0", "0"),
        (parse_exec_flag, "  ", "cmd"),
        (parse_exec_flag, "echo 'unterminated", "closing quotation"),
        (parse_cmd_flag, "", "cmd"),
    ],
)
def test_bad_flags(fn: Any, value: str, needle: str) -> None:
    with pytest.raises(UsageError, match="--probe-") as info:
        fn(value)
    assert needle in str(info.value)


def test_every_fixture_probe_file_parses() -> None:
    files = sorted(FIXTURES.glob("*/probe.toml"))
    assert len(files) >= 8
    for path in files:
        spec = load_probe_file(path)
        assert spec.probes and spec.heldout, path


def test_placeholders() -> None:
    ports = {8080: ("127.0.0.1", 32768), 9090: ("127.0.0.1", 32769)}
    cmd = "curl {host}:{port}/ {port:9090} | awk '{print $1}' {x}"
    out = expand_placeholders(cmd, ports, 8080)
    assert out == "curl 127.0.0.1:32768/ 32769 | awk '{print $1}' {x}"
    with pytest.raises(SlimError, match="1234"):
        expand_placeholders("{port:1234}", ports, 8080)


def test_observable_ignores_timing() -> None:
    p = ProbeSpec(kind="http")
    a = ProbeResult(p, True, status=200, output=b"x", attempts=1, seconds=0.1)
    b = ProbeResult(p, True, status=200, output=b"x", attempts=7, seconds=3.0)
    assert a.observable() == b.observable()
    assert a.observable() != ProbeResult(p, True, status=200, output=b"y").observable()


# -- running against local servers ---------------------------------------------------------
class FakeEngine(UnusedEngine):
    """The few engine methods the runner calls for attached probes."""

    def __init__(self, running: bool = True) -> None:
        self.running = running
        self.execs: list[list[str]] = []

    def inspect_container(self, container: str) -> dict[str, Any]:
        return {"State": {"Running": self.running, "ExitCode": 0 if self.running else 3}}

    def logs(self, container: str, stdout: bool = True, stderr: bool = True) -> bytes:
        return b"starting\nfatal: boom\n"

    def exec(self, container: str, cmd: list[str], user: str = "") -> tuple[int, bytes]:
        self.execs.append(cmd)
        if cmd[0] == "hang":
            time.sleep(5)
        return (0, b"healthy\n") if cmd[0] == "check" else (1, b"nope\n")


def _engine(running: bool = True) -> FakeEngine:
    return FakeEngine(running)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 404 if self.path == "/missing" else 200
        body = f"{self.command} {self.path} {self.headers.get('X-Probe', '-')}\n".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ports(port: int, container_port: int = 8080) -> dict[int, tuple[str, int]]:
    return {container_port: ("127.0.0.1", port)}


def test_http_probe(http_port: int) -> None:
    p = ProbeSpec(
        kind="http",
        path="/a",
        headers=(("X-Probe", "yes"),),
        expect_status=200,
        expect_contains=("GET /a yes",),
        expect_not_contains=("Traceback",),
    )
    (r,) = run_probes(_engine(), "c", _ports(http_port), [p], timeout=5)
    assert r.ok and r.status == 200 and r.output == b"GET /a yes\n" and r.attempts == 1
    assert r.error == ""


def test_http_expected_404_and_failed_expectations(http_port: int) -> None:
    ok = ProbeSpec(kind="http", path="/missing", expect_status=404)
    bad = ProbeSpec(
        kind="http", path="/x", expect_contains=("absent",), expect_not_contains=("GET",)
    )
    r1, r2 = run_probes(_engine(), "c", _ports(http_port), [ok, bad], timeout=5)
    assert r1.ok and r1.status == 404
    assert not r2.ok and r2.status == 200 and r2.attempts == 1  # reached: no retry
    assert "lacks 'absent'" in r2.error and "contains 'GET'" in r2.error


def test_status_mismatch_retries_until_the_deadline(http_port: int) -> None:
    p = ProbeSpec(kind="http", path="/missing", expect_status=200)
    (r,) = run_probes(_engine(), "c", _ports(http_port), [p], timeout=1.0)
    assert not r.ok and r.status == 404 and r.attempts >= 3
    assert "status 404, expected 200" in r.error


def test_readiness_waits_for_a_late_server() -> None:
    port = _free_port()
    server: list[ThreadingHTTPServer] = []

    def late_start() -> None:
        time.sleep(0.7)
        server.append(ThreadingHTTPServer(("127.0.0.1", port), _Handler))
        server[0].serve_forever()

    threading.Thread(target=late_start, daemon=True).start()
    try:
        (r,) = run_probes(_engine(), "c", _ports(port), [ProbeSpec(kind="http")], timeout=10)
    finally:
        while not server:
            time.sleep(0.05)
        server[0].shutdown()
        server[0].server_close()
    assert r.ok and r.attempts > 1  # a refused attempt came before the server was up


@pytest.fixture
def dropping_proxy(http_port: int) -> Iterator[int]:
    """Like the engine's port proxy before the app listens: accept, then close,
    for the first three connections; then forward to the HTTP server."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def forward(client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", http_port)) as up:
            up.sendall(client.recv(65536))
            while data := up.recv(65536):
                client.sendall(data)

    def serve() -> None:
        count = 0
        while not stop.is_set():
            client, _ = listener.accept()
            count += 1
            if count <= 3 or stop.is_set():
                client.close()
            else:
                threading.Thread(target=forward, args=(client,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        with socket.create_connection(listener.getsockname()):
            pass
        listener.close()


def test_accept_then_drop_is_not_ready(dropping_proxy: int) -> None:
    (r,) = run_probes(_engine(), "c", _ports(dropping_proxy), [ProbeSpec(kind="http")], timeout=10)
    assert r.ok and r.attempts == 4 and r.output.startswith(b"GET / ")


def test_tcp_probes(dropping_proxy: int, http_port: int) -> None:
    send = ProbeSpec(
        kind="tcp", port=8080, send="GET /t HTTP/1.0\r\n\r\n", expect_contains=("200", "GET /t -")
    )
    quiet = ProbeSpec(kind="tcp", port=9000)
    ports = {8080: ("127.0.0.1", dropping_proxy), 9000: ("127.0.0.1", http_port)}
    r1, r2 = run_probes(_engine(), "c", ports, [send, quiet], timeout=10)
    assert r1.ok and r1.attempts == 4 and b"HTTP/1.0 200" in r1.output
    assert r2.ok and r2.output == b"" and r2.attempts == 1


def test_tcp_closed_at_once_fails_with_the_last_error() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            client.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        p = ProbeSpec(kind="tcp", port=5000)
        ports = {5000: ("127.0.0.1", int(listener.getsockname()[1]))}
        (r,) = run_probes(_engine(), "c", ports, [p], timeout=0.8)
    finally:
        listener.close()
    assert not r.ok and "closed without a reply" in r.error and r.attempts >= 2


def test_nothing_listening_and_container_gone() -> None:
    port = _free_port()
    (r,) = run_probes(
        _engine(running=False), "c", _ports(port), [ProbeSpec(kind="http")], timeout=30
    )
    assert not r.ok and r.attempts == 1
    assert "container exited with code 3; last output: starting | fatal: boom" in r.error


def test_unpublished_port_fails_at_once() -> None:
    p = ProbeSpec(kind="http", port=1234)
    (r,) = run_probes(_engine(), "c", _ports(_free_port()), [p], timeout=30)
    assert not r.ok and "1234 is not published" in r.error and r.attempts == 1


def test_exec_probes_retry_until_the_exit_code_matches() -> None:
    eng = FakeEngine()
    good = ProbeSpec(kind="exec", cmd=("check",), expect_contains=("healthy",))
    bad = ProbeSpec(kind="exec", cmd=("fail",))
    r1, r2 = run_probes(eng, "c", {}, [good, bad], timeout=0.7)
    assert r1.ok and r1.exit_code == 0 and r1.output == b"healthy\n"
    assert not r2.ok and r2.exit_code == 1 and "exit code 1, expected 0" in r2.error
    assert eng.execs.count(["fail"]) >= 2


def test_exec_timeout() -> None:
    p = ProbeSpec(kind="exec", cmd=("hang",))
    (r,) = run_probes(_engine(), "c", {}, [p], timeout=0.5)
    assert not r.ok and "no answer" in r.error


def test_host_cmd_probe(http_port: int) -> None:
    script = (
        "import sys, urllib.request; "
        "print(urllib.request.urlopen(sys.argv[1]).read().decode().strip())"
    )
    cmd = f"{sys.executable} -c '{script}' http://{{host}}:{{port}}/c && echo {{port:8080}}"
    p = ProbeSpec(kind="cmd", command=cmd, expect_contains=("GET /c -",))
    (r,) = run_probes(_engine(), "c", _ports(http_port), [p], timeout=10)
    assert r.ok and r.exit_code == 0
    assert r.text == f"GET /c -\n{http_port}\n"


def test_run_probe_without_image_is_an_error() -> None:
    (r,) = run_probes(_engine(), "c", {}, [ProbeSpec(kind="run")], timeout=1)
    assert not r.ok and "needs the image" in r.error
