"""`slim deps IMAGE PATHS...`: the ELF closure of programs in an image."""

from __future__ import annotations

import click

from slimmer.cli.params import format_option
from slimmer.report.common import dump_json


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
