"""`slim IMAGE --compose FILE` below the engine: which service the image runs as, the
command line's run options over the service's context, and the project's lifecycle
around the runs (taken down after a success, an error and a Ctrl-C) on a recording
Compose runner that answers `config` with recorded output (tests/data/compose)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from slimmer.context.compose import ComposeFailed, ComposeProject
from slimmer.context.run import (
    FileDelivery,
    Mount,
    NetworkAttach,
    RunContext,
    overlay,
)
from slimmer.errors import UsageError
from slimmer.pipeline.project import ComposeTarget, ServicesUnhealthy, _target, in_context
from slimmer.trace.probes import ProbeSpec
from tests.fixtures_build import CONTEXT_PROJECT, FIXTURES_DIR

DATA = Path(__file__).parent / "data" / "compose"
SHOP = CONTEXT_PROJECT / "compose.yml"
NAME = "slimmer-0000test"


def _shop_model() -> dict[str, object]:
    text = (DATA / "ctx-project.config.json").read_text()
    model: dict[str, object] = json.loads(
        text.replace("@DIR@", str(DATA)).replace("@FIXTURES@", str(FIXTURES_DIR))
    )
    return model


class Recorder:
    """A ComposeRunner: `config` answers the recorded model, `up` fails when told to,
    `ps` answers `ps_rows`; every call is kept."""

    def __init__(self, up_fails: bool = False, ps_rows: Sequence[dict[str, object]] = ()) -> None:
        self.calls: list[list[str]] = []
        self.up_fails = up_fails
        self.ps_rows = ps_rows

    def __call__(self, args: Sequence[str], *, cwd: Path | None = None, usage: bool = False) -> str:
        self.calls.append(list(args))
        if "config" in args:
            return json.dumps(_shop_model())
        if "up" in args and self.up_fails:
            raise ComposeFailed("compose up: dependency failed to start")
        if "ps" in args and "json" in args:
            return "\n".join(json.dumps(r) for r in self.ps_rows)
        return ""

    def verbs(self) -> list[str]:
        known = ("config", "up", "down", "ps")
        return [next(a for a in call if a in known) for call in self.calls]


# -- which service -------------------------------------------------------------------


def _shop() -> ComposeProject:
    return ComposeProject(SHOP, NAME, _shop_model())


@pytest.mark.parametrize(
    ("image", "service"),
    [
        ("slimmer-fixture/ctx-web:latest", "web"),
        ("slimmer-fixture/ctx-web", "web"),  # no tag: :latest, as the engine reads it
        ("docker.io/slimmer-fixture/ctx-worker:latest", "worker"),
    ],
)
def test_the_service_is_the_one_running_the_image(image: str, service: str) -> None:
    assert _target(_shop(), None, image) == service


def test_an_image_no_service_runs_needs_service_listing_them() -> None:
    with pytest.raises(UsageError) as err:
        _target(_shop(), None, "slimmer-fixture/ctx-web:other")
    assert "--service" in err.value.message
    assert "services: redis, web, worker" in err.value.message


def test_service_wins_over_the_image() -> None:
    assert _target(_shop(), "worker", "slimmer-fixture/ctx-web:latest") == "worker"


# -- the command line over the service ------------------------------------------------


SERVICE = RunContext(
    env=(("REDIS_URL", "redis://redis:6379/0"), ("MODE", "prod")),
    mounts=(Mount("bind", "/etc/ctx-web", "/srv/config", True),),
    files=(FileDelivery("/run/secrets/api_key", b"key-1"),),
    networks=(NetworkAttach("p_default", ("web",)),),
    extra_hosts=(("db", "10.0.0.1"),),
    cmd=("serve", "--fast"),
    workdir="/app",
    ports=(8080,),
)


def test_the_command_line_wins_key_by_key_and_target_by_target() -> None:
    given = RunContext(
        env=(("MODE", "debug"), ("EXTRA", "1")),
        mounts=(Mount("volume", "/etc/ctx-web", "other"), Mount("tmpfs", "/tmp")),
        files=(FileDelivery("/run/secrets/api_key", b"key-2"),),
        networks=(NetworkAttach("p_default", ("api",)), NetworkAttach("mine")),
        run_user="1000",
        ports=(9090,),
    )
    out = overlay(SERVICE, given)
    assert dict(out.env) == {"REDIS_URL": "redis://redis:6379/0", "MODE": "debug", "EXTRA": "1"}
    assert out.mounts == (Mount("volume", "/etc/ctx-web", "other"), Mount("tmpfs", "/tmp"))
    assert [f.content for f in out.files] == [b"key-2"]
    assert out.networks == (NetworkAttach("p_default", ("web", "api")), NetworkAttach("mine"))
    assert out.extra_hosts == (("db", "10.0.0.1"),)
    assert (out.cmd, out.workdir, out.run_user) == (("serve", "--fast"), "/app", "1000")
    assert out.ports == (8080, 9090)


def test_nothing_given_leaves_the_service_as_it_is() -> None:
    assert overlay(SERVICE, RunContext()) == SERVICE


def test_an_entrypoint_given_clears_the_services_cmd_as_docker_run_does() -> None:
    out = overlay(SERVICE, RunContext(entrypoint=("/bin/sh",)))
    assert out.entrypoint == ("/bin/sh",)
    assert out.cmd is None
    assert out.argv(("python3",), ("app.py",)) == (("/bin/sh",), ())


def test_a_mount_over_a_delivered_file_is_refused() -> None:
    with pytest.raises(UsageError, match="/run/secrets/api_key"):
        overlay(SERVICE, RunContext(mounts=(Mount("tmpfs", "/run/secrets/api_key"),)))


# -- the project around the runs ------------------------------------------------------


def test_without_compose_the_context_and_probes_pass_through() -> None:
    probes = (ProbeSpec(kind="tcp", name="p", port=1),)
    with in_context(None, "img", SERVICE, probes) as (ctx, use):
        assert (ctx, use) == (SERVICE, probes)


def test_the_project_runs_around_the_block_and_goes_after_it() -> None:
    rec = Recorder()
    given = RunContext(env=(("REDIS_URL", "redis://elsewhere:6379/1"),))
    target = ComposeTarget(SHOP, None, "depends_on")
    with in_context(target, "slimmer-fixture/ctx-web:latest", given, (), runner=rec) as (
        ctx,
        probes,
    ):
        assert rec.verbs() == ["config", "up"]
        assert dict(ctx.env)["REDIS_URL"] == "redis://elsewhere:6379/1"
        assert [f.target for f in ctx.files] == ["/run/secrets/api_key"]
        assert [p.port for p in probes] == [8080]  # the published port, no healthcheck
    assert rec.verbs()[2:4] == ["down", "ps"]
    up = rec.calls[1]
    assert up[-1] == "web"  # depends_on: Compose starts the target's closure (at scale 0)
    project = up[up.index("-p") + 1]
    assert project.startswith("slimmer-") and project != "ctx-shop"


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_the_project_goes_after_an_error_or_ctrl_c(error: type[BaseException]) -> None:
    rec = Recorder()
    with pytest.raises(error):
        with in_context(ComposeTarget(SHOP, "worker"), None, RunContext(), (), runner=rec):
            raise error()
    assert "down" in rec.verbs()


def test_services_that_never_became_healthy_are_named() -> None:
    rows: list[dict[str, object]] = [
        {"Service": "redis", "State": "running", "Health": "unhealthy"},
        {"Service": "worker", "State": "running", "Health": ""},
    ]
    rec = Recorder(up_fails=True, ps_rows=rows)
    with pytest.raises(ServicesUnhealthy) as err:
        with in_context(ComposeTarget(SHOP, "web"), None, RunContext(), (), runner=rec):
            pytest.fail("the block ran although the project did not start")
    assert err.value.message.endswith("never became healthy: redis (unhealthy)")
    assert "down" in rec.verbs()
