"""The `slim diff` command: what differs between two images."""

from __future__ import annotations

from pathlib import Path

import click

from slimmer.cli.console import console
from slimmer.cli.params import format_option
from slimmer.cli.registry_params import registry_options
from slimmer.registry.remote import RegistryOptions
from slimmer.report.diff_view import FORMATS as DIFF_FORMATS


@click.command("diff")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@format_option(DIFF_FORMATS, "text, json (slimmer.diff/v1) or md (a pull-request comment).")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="REPORT.json",
    help="The report.json of the slim run that made B from A: show why each file of B was kept.",
)
@registry_options
def diff_command(a: str, b: str, fmt: str, report: Path | None, registry: RegistryOptions) -> None:
    """Files, sizes, packages and config that differ between images A and B.

    A and B are engine references (app:1), or docker-archive:PATH,
    oci-archive:PATH, oci:DIR or registry:HOST/REPO:TAG, which need no engine.
    File bytes are hashed as they stream past and never kept, so two large images
    need little memory.
    """
    from slimmer import api
    from slimmer.cli.progress import stages
    from slimmer.report import diff_view

    with stages(console(stderr=True), "diff") as progress:
        result = api.diff(a, b, report, progress, registry)
    click.echo(diff_view.render(result, fmt), nl=False)
