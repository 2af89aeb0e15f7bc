"""The `slim inspect` command: layers, waste and contents of an image."""

from __future__ import annotations

import click

from slimmer.cli.console import console
from slimmer.cli.params import format_option


@click.command("inspect")
@click.argument("image")
@format_option(("text", "json"), "text, or json (slimmer.inspect/v1).", json_alias=True)
def inspect_command(image: str, fmt: str) -> None:
    """Layers, waste and contents of IMAGE.

    IMAGE is an engine reference (app:1), or docker-archive:PATH,
    oci-archive:PATH or oci:DIR, which need no engine.
    """
    from slimmer import api
    from slimmer.report import inspect_view
    from slimmer.report.common import dump_json

    ins = api.inspect_image(image)
    if fmt == "json":
        click.echo(dump_json(inspect_view.to_json(ins)), nl=False)
    else:
        inspect_view.print_inspection(ins, console())
