"""`slim profile IMAGE`: a traced run, shown (and a seccomp profile written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from slimmer.cli.console import console
from slimmer.cli.params import format_option
from slimmer.cli.progress import stages
from slimmer.cli.run_options import (
    compose_options,
    compose_target,
    context_options,
    limit_options,
    limits_of,
    probe_options,
    run_context,
)
from slimmer.report.common import dump_json
from slimmer.trace.probes import collect_probes


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
