"""The `slim IMAGE -o OUT`, `slim report`, `slim profile` and `slim deps` commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from slimmer.cli.console import console
from slimmer.cli.params import SIZE, format_option
from slimmer.cli.progress import stages
from slimmer.cli.registry_params import transfer_options
from slimmer.context.run import ContextArgs, RunContext, context_of
from slimmer.errors import UsageError
from slimmer.plan.planner import UserRules
from slimmer.registry.transfer import Transfers
from slimmer.report.common import dump_json, write_json
from slimmer.trace.probes import DEFAULT_TIMEOUT, collect_probes
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


@click.command("slim", hidden=True)
@click.argument("image")
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="REF",
    help="Tag for the slim image. On Podman a short name is stored as localhost/REF, "
    "as `podman tag` does; both engines find it by REF as given.",
)
@probe_options
@click.option("--include", multiple=True, metavar="GLOB", help="Also keep these paths.")
@click.option(
    "--include-bin",
    multiple=True,
    metavar="PATH",
    help="Also keep this program and its ELF closure.",
)
@click.option("--exclude", multiple=True, metavar="GLOB", help="Never keep these paths.")
@click.option(
    "--profile",
    "profile_on",
    multiple=True,
    metavar="NAME",
    help="Apply this profile even if it does not detect itself.",
)
@click.option(
    "--no-profile", "profile_off", multiple=True, metavar="NAME", help="Do not apply this profile."
)
@click.option(
    "--profiles-dir",
    "profiles_extra",
    multiple=True,
    metavar="DIR",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Also read the profiles in DIR; one named like a built-in one replaces it (repeatable).",
)
@click.option(
    "--base",
    default="scratch",
    show_default=True,
    metavar="BASE",
    help="What to write on: scratch; auto (the smallest distroless flavour that has the "
    "app's libraries); static, base-nossl, base or cc (gcr.io/distroless/FLAVOUR-debian12 "
    "if the engine has it, else slimmer/distroless-FLAVOUR:debian12, built from Debian "
    "packages when missing); or any image on the engine.",
)
@click.option(
    "--user",
    metavar="USER",
    help="Run the result as USER: nonroot (65532), UID[:GID] or a name. Paths the "
    "traced app wrote to are given to that user; verification proves it works.",
)
@click.option(
    "--dockerfile",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Also write a multi-stage Dockerfile that builds the result (generated files "
    "go to slimmer-files/ beside it), build it on the engine and verify that image too.",
)
@click.option(
    "--seccomp",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Also write a seccomp profile (the engine's JSON) from every system call the "
    "runs made plus what runtimes need, and verify the slim image under it "
    "(docker run --security-opt seccomp=FILE).",
)
@click.option("--no-verify", is_flag=True, help="Skip verification (loudly).")
@click.option(
    "--force",
    is_flag=True,
    help="Tag even if verification fails, or when -o names the input image.",
)
@click.option(
    "--report-dir", type=click.Path(file_okay=False, path_type=Path), help="Write report.json here."
)
@click.option(
    "--explain",
    multiple=True,
    metavar="PATH",
    help="Say why PATH is (or is not) in the result; with --seccomp, a system call's "
    "name says why it is (or is not) allowed.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="SLIMMER_CACHE_DIR",
    help="Keep images read here, by image ID, for the next run [env SLIMMER_CACHE_DIR].",
)
@limit_options
@context_options
@transfer_options
@compose_options
def slim_command(
    image: str,
    output: str,
    probe_file: Path | None,
    probe_http: tuple[str, ...],
    probe_tcp: tuple[str, ...],
    probe_exec: tuple[str, ...],
    probe_cmd: tuple[str, ...],
    timeout: float | None,
    include: tuple[str, ...],
    include_bin: tuple[str, ...],
    exclude: tuple[str, ...],
    profile_on: tuple[str, ...],
    profile_off: tuple[str, ...],
    profiles_extra: tuple[Path, ...],
    base: str,
    user: str | None,
    dockerfile: Path | None,
    seccomp: Path | None,
    no_verify: bool,
    force: bool,
    report_dir: Path | None,
    explain: tuple[str, ...],
    cache_dir: Path | None,
    memory: int,
    cpus: float | None,
    transfers: Transfers,
    **run: Any,
) -> None:
    """Make IMAGE small: trace, resolve, rewrite, verify, tag OUTPUT.

    The run options (--env, --env-file, --volume, --network, ...) give the app the
    context it needs to start, for every run; --compose FILE runs it as a service of
    its compose project, the other services around it. The output image's config
    stays the input's, and no value given for the run is written into it or its
    reports."""
    from slimmer import api
    from slimmer.pipeline.slim import SlimOptions
    from slimmer.report import slim_view

    probes, limit = collect_probes(
        probe_file, probe_http, probe_tcp, probe_exec, probe_cmd, timeout
    )
    opts = SlimOptions(
        output=output,
        probes=probes,
        timeout=limit,
        verify=not no_verify,
        force=force,
        rules=UserRules(include=include, include_bin=include_bin, exclude=exclude),
        profiles_forced=frozenset(profile_on),
        profiles_disabled=frozenset(profile_off),
        profiles_extra=profiles_extra,
        base=base,
        user=user,
        dockerfile=dockerfile,
        cache_dir=cache_dir,
        limits=limits_of(memory, cpus),
        context=run_context(run),
        seccomp=seccomp,
    )
    compose = compose_target(run)
    err = console(stderr=True)
    if no_verify:
        err.print(
            "[bold yellow]warning:[/] --no-verify: the slim image is tagged "
            "without checking that it still works"
        )
    with stages(err, "slim") as progress:
        result = api.slim(image, opts, progress=progress, transfers=transfers, compose=compose)
    doc = slim_view.to_json(result)
    written = write_reports(doc, report_dir) if report_dir is not None else None
    out = console()
    out.print(slim_view.render(doc, str(written) if written else None))
    for path in explain:
        if result.seccomp is not None and not path.startswith("/"):  # a system call's name
            out.print(result.seccomp.profile.explain(path))
        else:
            out.print(slim_view.explain(result.keep, path))
    report = written
    if result.verified is False and force:
        where = f" (see {report})" if report else ""
        err.print(f"[bold yellow]warning:[/] verification failed; tagged anyway (--force){where}")
    api.raise_for_verdict(result, report)


def write_reports(doc: dict[str, Any], report_dir: Path) -> Path:
    """report.json, report.md and report.html in `report_dir`; the JSON's path."""
    from slimmer.report import slim_html, slim_md

    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.md").write_text(_utf8(slim_md.render(doc)))
    (report_dir / "report.html").write_text(_utf8(slim_html.render(doc)))
    path = report_dir / "report.json"
    write_json(doc, path)
    return path


@click.command("report")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@format_option(("text", "json", "md", "html"), "What to render the saved report as.")
def report_command(file: Path, fmt: str) -> None:
    """Render a saved report.json again: text, json, md or html."""
    from slimmer import api
    from slimmer.report import slim_html, slim_md, slim_view

    doc = api.load_slim_report(file)
    if fmt == "text":
        console().print(slim_view.render(doc, str(file)))
    else:
        render = {"json": dump_json, "md": slim_md.render, "html": slim_html.render}[fmt]
        click.echo(_utf8(render(doc)), nl=False)


def _utf8(text: str) -> str:
    """`text` with the bytes of names that are not UTF-8 (kept by the reader as lone
    surrogates) shown as `\\udcXX` escapes: Markdown and HTML must be valid UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@click.command("profile")
@click.argument("image")
@probe_options
@limit_options
@context_options
@compose_options
@click.option(
    "--seccomp",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Also write a seccomp profile (the engine's JSON) from every system call the "
    "run made plus what runtimes need, as `slim IMAGE --seccomp` does, without slimming.",
)
@format_option(
    ("text", "json"), "text, or json (slimmer.profile/v1, the whole trace).", json_alias=True
)
def profile_command(
    image: str,
    probe_file: Path | None,
    probe_http: tuple[str, ...],
    probe_tcp: tuple[str, ...],
    probe_exec: tuple[str, ...],
    probe_cmd: tuple[str, ...],
    timeout: float | None,
    memory: int,
    cpus: float | None,
    seccomp: Path | None,
    fmt: str,
    **run: Any,
) -> None:
    """Run IMAGE under the tracer with probes; show what it touched.

    The run options and --compose give it its context, as for `slim IMAGE`.

    IMAGE is refused first (exit 6) when it cannot run, as `slim IMAGE` refuses it."""
    from slimmer import api
    from slimmer.report import seccomp_view, trace_view

    probes, limit = collect_probes(
        probe_file, probe_http, probe_tcp, probe_exec, probe_cmd, timeout
    )
    context, compose = run_context(run), compose_target(run)
    err = console(stderr=True)
    with stages(err, "profile") as progress:
        if seccomp is None:
            traced_run = api.trace_image(
                image,
                probes,
                limit,
                progress,
                limits=limits_of(memory, cpus),
                context=context,
                compose=compose,
            )
        else:
            traced_run, profile = api.trace_seccomp(
                image,
                probes,
                limit,
                seccomp,
                progress,
                limits=limits_of(memory, cpus),
                context=context,
                compose=compose,
            )
            err.print(seccomp_view.summary_line(profile, seccomp))
    if fmt == "json":
        click.echo(dump_json(trace_view.to_json(traced_run)), nl=False)
    else:
        console().print(trace_view.render(traced_run))


@click.command("deps")
@click.argument("image")
@click.argument("paths", nargs=-1, required=True)
@format_option(("text", "json"), "text, or json (slimmer.deps/v1).", json_alias=True)
def deps_command(image: str, paths: tuple[str, ...], fmt: str) -> None:
    """The ELF closure of PATHS inside IMAGE: what the dynamic loader opens, and why."""
    from slimmer import api
    from slimmer.report.deps_view import render_text, to_json

    report = api.deps(image, paths)
    if fmt == "json":
        click.echo(dump_json(to_json(report)), nl=False)
    else:
        click.echo(render_text(report), nl=False)
