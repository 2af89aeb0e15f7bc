"""`slim IMAGE -o OUT`: the main job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from slimmer.cli.console import console
from slimmer.cli.progress import stages
from slimmer.cli.registry_params import platform_selection, transfer_options
from slimmer.cli.report import write_index_reports, write_reports
from slimmer.cli.run_options import (
    compose_options,
    compose_target,
    context_options,
    limit_options,
    limits_of,
    probe_options,
    run_context,
)
from slimmer.pipeline.multiplatform import IndexResult, PlatformSelection
from slimmer.plan.planner import UserRules
from slimmer.registry.transfer import Transfers
from slimmer.trace.probes import collect_probes


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
    "packages when missing; an arm64 image gets the linux/arm64 base, "
    "...:debian12-arm64, see `slim bases build --platform`); or any image on the engine "
    "of the image's platform.",
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
@platform_selection
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
    platforms: PlatformSelection,
    registry_ca: Path | None,
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
        result = api.slim_platforms(
            image, opts, progress, transfers, compose, platforms, registry_ca
        )
    if isinstance(result, IndexResult):
        _index_reports(result, report_dir)
        return
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


def _index_reports(result: IndexResult, report_dir: Path | None) -> None:
    """The multi-platform run's faces: one report per platform under `report_dir`
    (PLATFORM/report.json ...), the combined one beside them, the terminal's summary."""
    from slimmer import api
    from slimmer.report import platforms_view, slim_view

    reports: dict[str, str] = {}
    if report_dir is not None:
        for run in result.runs:
            sub = platforms_view.dir_name(run.platform)
            write_reports(slim_view.to_json(run.result), report_dir / sub)
            reports[str(run.platform)] = f"{sub}/report.json"
    doc = platforms_view.to_json(result, reports)
    written = write_index_reports(doc, report_dir) if report_dir is not None else None
    console().print(platforms_view.render(doc, str(written) if written else None))
    api.raise_for_index(result, written)
