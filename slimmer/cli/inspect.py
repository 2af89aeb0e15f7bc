"""The `slim inspect` command: layers, waste and contents of an image."""

from __future__ import annotations

import click

from slimmer.cli.console import console
from slimmer.cli.params import format_option
from slimmer.cli.registry_params import registry_options
from slimmer.registry.remote import RegistryOptions


@click.command("inspect")
@click.argument("image")
@format_option(("text", "json"), "text, or json (slimmer.inspect/v1).", json_alias=True)
@registry_options
def inspect_command(image: str, fmt: str, registry: RegistryOptions) -> None:
    """Layers, waste and contents of IMAGE.

    IMAGE is an engine reference (app:1), or docker-archive:PATH,
    oci-archive:PATH, oci:DIR or registry:HOST/REPO:TAG, which need no engine.
    """
    from slimmer import api
    from slimmer.report import inspect_view
    from slimmer.report.common import dump_json

    ins = api.inspect_image(image, registry)
    if fmt == "json":
        click.echo(dump_json(inspect_view.to_json(ins)), nl=False)
    else:
        inspect_view.print_inspection(ins, console())
