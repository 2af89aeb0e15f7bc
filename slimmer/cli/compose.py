"""`slim compose FILE`: slim every service a compose project builds (see
slimmer.pipeline.fleet), print one row per service, write the fleet report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from slimmer.cli.console import console
from slimmer.cli.params import format_option
from slimmer.cli.progress import stages
from slimmer.errors import UsageError
from slimmer.report.common import dump_json, write_json

if TYPE_CHECKING:
    from slimmer.pipeline.fleet import FleetResult, PerService


@click.command("compose")
@click.argument(
    "file_arg", metavar="FILE", required=False, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option(
    "-f",
    "--file",
    "file_opt",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="The compose file of the project, as `docker compose -f` (or give it as FILE).",
)
@click.option(
    "--service",
    "services",
    multiple=True,
    metavar="NAME",
    help="Slim exactly these services (repeatable) [default: every service with a "
    "build: section; the others, e.g. a database pulled from a registry, are left alone].",
)
@click.option(
    "--tag",
    default="{repo}:{tag}-slim",
    show_default=True,
    metavar="TEMPLATE",
    help="The slim image's tag: {repo} and {tag} of the service's image, {service}, {project}.",
)
@click.option(
    "-o",
    "--override",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Where to write the override naming the slim images [default: compose.slim.yml "
    "beside FILE]. An existing file there is replaced only if slim compose wrote it.",
)
@click.option(
    "--probes",
    "probe_files",
    multiple=True,
    metavar="SERVICE=FILE",
    help="A service's probe file (repeatable) [default: its healthcheck and a TCP "
    "connect to each published port].",
)
@click.option(
    "--base",
    "bases",
    multiple=True,
    metavar="[SERVICE=]BASE",
    help="What to write on, as slim IMAGE --base: one value for every service, or "
    "SERVICE=BASE for one (repeatable) [default: scratch].",
)
@click.option(
    "--user",
    "users",
    multiple=True,
    metavar="[SERVICE=]USER",
    help="Run the result as USER, as slim IMAGE --user: for every service, or "
    "SERVICE=USER for one (repeatable).",
)
@click.option(
    "--dockerfile",
    "dockerfile_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Also write, build and verify a Dockerfile per service: DIR/SERVICE/Dockerfile.",
)
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write fleet.json, fleet.md, fleet.html here, and each service's report in DIR/SERVICE/.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    envvar="SLIMMER_CACHE_DIR",
    help="Keep images read here, by image ID, for the next run [env SLIMMER_CACHE_DIR].",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Slim N services at the same time, each in a compose project of its own. "
    "Ctrl-C cancels the services not started; those running stop at their next step "
    "and clean up.",
)
@format_option(("text", "json"), "text (one row per service), or json (slimmer.fleet/v1).")
def compose_command(
    file_arg: Path | None,
    file_opt: Path | None,
    services: tuple[str, ...],
    tag: str,
    override: Path | None,
    probe_files: tuple[str, ...],
    bases: tuple[str, ...],
    users: tuple[str, ...],
    dockerfile_dir: Path | None,
    report_dir: Path | None,
    cache_dir: Path | None,
    jobs: int,
    fmt: str,
) -> None:
    """Slim every service of the compose project FILE that the project builds.

    Each service is slimmed and verified in its context, as `slim IMAGE --compose
    FILE --service NAME` does: the project's other services run under a private
    project name, the image gets the service's environment, secrets, volumes and
    networks. The override (compose.slim.yml) names the slim image of each service
    that passed, and nothing else: `docker compose -f FILE -f compose.slim.yml up`
    runs the slim project. When a service fails, the others still run, and the
    command exits with the first failure's code (4: verification failed)."""
    from slimmer import api
    from slimmer.pipeline.fleet import FleetOptions, per_service
    from slimmer.report import fleet_view

    if (file_arg is None) == (file_opt is None):
        raise UsageError("slim compose: give the compose file once, as FILE or with -f FILE")
    file: Path = file_arg or file_opt  # type: ignore[assignment]  # one is given
    opts = FleetOptions(
        file=file,
        services=tuple(dict.fromkeys(services)),
        tag=tag,
        override=override,
        base=per_service(bases, "--base", "scratch"),
        user=per_service(users, "--user"),
        probes=_probe_files(probe_files),
        dockerfile_dir=dockerfile_dir,
        cache_dir=cache_dir,
        jobs=jobs,
    )
    with stages(console(stderr=True), "compose") as progress:
        result = api.slim_compose(opts, progress=progress)
    written = None
    if report_dir is not None:
        doc = fleet_view.to_json(result, _service_reports(result, report_dir))
        written = write_fleet_reports(doc, report_dir)
    else:
        doc = fleet_view.to_json(result)
    if fmt == "json":
        click.echo(dump_json(doc), nl=False)
    else:
        console().print(fleet_view.render(doc, str(written) if written else None))
    api.raise_for_fleet(result)


def _probe_files(values: tuple[str, ...]) -> PerService:
    from slimmer.errors import UsageError
    from slimmer.pipeline.fleet import per_service

    found = per_service(values, "--probes")
    if found.default is not None:
        raise UsageError(f"--probes {found.default}: name the service, as SERVICE=FILE")
    return found


def _service_reports(result: FleetResult, report_dir: Path) -> dict[str, str]:
    """Each service's own report (report.json/.md/.html in DIR/SERVICE/); its path
    relative to DIR."""
    from slimmer.cli.report import write_reports
    from slimmer.report import slim_view

    out = {}
    for o in result.outcomes:
        if o.result is not None:
            write_reports(slim_view.to_json(o.result), report_dir / o.chosen.service)
            out[o.chosen.service] = f"{o.chosen.service}/report.json"
    return out


def write_fleet_reports(doc: dict[str, Any], report_dir: Path) -> Path:
    """fleet.json, fleet.md and fleet.html in `report_dir`; the JSON's path."""
    from slimmer.report import fleet_html, fleet_md

    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "fleet.md").write_text(fleet_md.render(doc), encoding="utf-8")
    (report_dir / "fleet.html").write_text(fleet_html.render(doc), encoding="utf-8")
    path = report_dir / "fleet.json"
    write_json(doc, path)
    return path
