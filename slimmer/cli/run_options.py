"""The options `slim IMAGE` and `slim profile` share: probes, limits, the run context
and the compose project."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from slimmer.cli.params import SIZE
from slimmer.context.run import ContextArgs, RunContext, context_of
from slimmer.errors import UsageError
from slimmer.trace.probes import DEFAULT_TIMEOUT
from slimmer.trace.tracer import Limits

if TYPE_CHECKING:
    from slimmer.pipeline.project import ComposeTarget


def probe_options(fn: Any) -> Any:
    """The probe options `slim IMAGE` and `slim profile` share."""
    for opt in reversed(
        [
            click.option(
                "--probes",
                "probe_file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="A probe file (TOML, the format of fixtures/*/probe.toml).",
            ),
            click.option(
                "--probe-http",
                multiple=True,
                metavar="'[METHOD ]PATH'",
                help="An HTTP request to the first exposed port (repeatable).",
            ),
            click.option(
                "--probe-tcp",
                multiple=True,
                metavar="PORT",
                help="A TCP connect to a container port (repeatable).",
            ),
            click.option(
                "--probe-exec",
                multiple=True,
                metavar="CMD",
                help="A command run inside the container (repeatable).",
            ),
            click.option(
                "--probe-cmd",
                multiple=True,
                metavar="CMD",
                help="A host command; {host} {port} {port:N} are filled in (repeatable).",
            ),
            click.option(
                "--timeout",
                type=click.FloatRange(1, 3600),
                default=None,
                help=f"Seconds to wait for readiness or exit [default: {DEFAULT_TIMEOUT:.0f}].",
            ),
        ]
    ):
        fn = opt(fn)
    return fn


def limit_options(fn: Any) -> Any:
    """The resource limits `slim IMAGE` and `slim profile` share (see `limits_of`)."""
    for opt in reversed(
        [
            click.option(
                "--memory",
                type=SIZE,
                default="4GiB",
                show_default=True,
                metavar="SIZE",
                help="Memory limit of the tracing and verifying containers (swap "
                "included); an app over it stops with a clear error. 0: no limit.",
            ),
            click.option(
                "--cpus",
                type=click.FloatRange(min=0.01),
                metavar="N",
                help="CPU limit of the tracing and verifying containers, as with docker "
                "run --cpus [default: no limit].",
            ),
        ]
    ):
        fn = opt(fn)
    return fn


def context_options(fn: Any) -> Any:
    """The run context `slim IMAGE` and `slim profile` share (see `run_context`): it
    configures every container slimmer runs, never the output image."""
    many: dict[str, Any] = {"multiple": True}
    for opt in reversed(
        [
            click.option(
                "--env", "-e", "env", **many, metavar="K=V|K",
                help="Set K in the app's environment for the runs (K alone: slimmer's "
                "own value of K). The output's Env stays the input's; reports show the "
                "key, never the value (repeatable).",
            ),
            click.option(
                "--env-file", "env_files", **many, metavar="FILE",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Read K=V lines for the runs, in docker's env-file format (repeatable).",
            ),
            click.option(
                "--secret", "secrets", **many, metavar="FILE[:TARGET]",
                help="Deliver FILE (on this machine) into the runs' containers at TARGET "
                "[default: /run/secrets/NAME] through the engine API, as a compose secret "
                "(works with a remote engine). Never kept, never shown (repeatable).",
            ),
            click.option(
                "--volume", "-v", "volumes", **many, metavar="SRC:DST[:ro]",
                help="Mount a volume for the runs: SRC is a named volume, or an absolute "
                "path on the engine's host (not necessarily this machine), as with docker "
                "run. What the app opens there is never kept (repeatable).",
            ),
            click.option(
                "--mount", "mounts", **many, metavar="SPEC",
                help="Mount for the runs in the engine's syntax: "
                "type=bind|volume|tmpfs,source=S,target=T[,readonly] (repeatable).",
            ),
            click.option(
                "--tmpfs", **many, metavar="DST[:OPTS]",
                help="Mount a tmpfs at DST for the runs (repeatable).",
            ),
            click.option(
                "--network", "networks", **many, metavar="NAME",
                help="Join this engine network for the runs (repeatable).",
            ),
            click.option(
                "--add-host", "add_hosts", **many, metavar="NAME:IP",
                help="Add NAME to the runs' /etc/hosts (repeatable).",
            ),
            click.option(
                "--entrypoint", metavar="CMD",
                help="Run this entrypoint instead of the image's (the output keeps the "
                "image's); a JSON array or shell words.",
            ),
            click.option(
                "--cmd", metavar="CMD",
                help="Run this command instead of the image's (the output keeps the "
                "image's); a JSON array or shell words.",
            ),
            click.option(
                "--workdir", metavar="DIR", help="Run in DIR instead of the image's WorkingDir."
            ),
            click.option(
                "--run-user", metavar="USER[:GROUP]",
                help="Run as this user instead of the image's User (the output's user is "
                "--user's).",
            ),
            click.option(
                "--port", "ports", **many, metavar="PORT",
                help="Also publish this container TCP port (on 127.0.0.1) and, without "
                "probes, probe it (repeatable).",
            ),
        ]
    ):  # fmt: skip
        fn = opt(fn)
    return fn


def compose_options(fn: Any) -> Any:
    """Run the image as a service of a compose project (`slim IMAGE` and `slim profile`;
    see `compose_target`)."""
    for opt in reversed(
        [
            click.option(
                "--compose", "compose_file", metavar="FILE",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Run IMAGE in the place of a service of this compose project, as "
                "`docker compose up` would run it (its env, secrets, configs, volumes, "
                "networks, ports), with the project's other services started first under "
                "a private project name and removed at the end. The run options above go "
                "over the service's: a key, target or override given on the command line "
                "wins. Needs Compose v2.",
            ),
            click.option(
                "--service", metavar="NAME",
                help="The service IMAGE runs as [default: the one whose image is IMAGE].",
            ),
            click.option(
                "--compose-deps", type=click.Choice(["all", "depends_on"]),
                help="Which other services to start: all of them (compose files often "
                "leave depends_on incomplete), or the service's depends_on closure "
                "[default: all].",
            ),
        ]
    ):  # fmt: skip
        fn = opt(fn)
    return fn


def compose_target(run: dict[str, Any]) -> ComposeTarget | None:
    """The `ComposeTarget` of the `compose_options` (taken out of `run`); None without
    --compose (--service and --compose-deps alone are usage errors)."""
    from slimmer.pipeline.project import ComposeTarget

    file, service, deps = run.pop("compose_file"), run.pop("service"), run.pop("compose_deps")
    if file is None:
        given = "--service" if service is not None else "--compose-deps" if deps else None
        if given is not None:
            raise UsageError(f"{given} is about --compose FILE's services; give --compose")
        return None
    return ComposeTarget(file, service, deps or "all")


def run_context(run: dict[str, Any]) -> RunContext:
    """The `RunContext` of the `context_options` among a command's keyword arguments
    (taken out of `run`); a malformed value is a usage error (exit 2) naming it."""
    args = ContextArgs(
        env=run.pop("env"),
        env_files=run.pop("env_files"),
        secrets=run.pop("secrets"),
        volumes=run.pop("volumes"),
        mounts=run.pop("mounts"),
        tmpfs=run.pop("tmpfs"),
        networks=run.pop("networks"),
        add_hosts=run.pop("add_hosts"),
        entrypoint=run.pop("entrypoint"),
        cmd=run.pop("cmd"),
        workdir=run.pop("workdir"),
        run_user=run.pop("run_user"),
        ports=run.pop("ports"),
    )
    return context_of(args, os.environ)


def limits_of(memory: int, cpus: float | None) -> Limits:
    """The `Limits` of `--memory` (0: none) and `--cpus`."""
    return Limits(memory=memory or None, cpus=cpus)
