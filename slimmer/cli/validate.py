"""`slim validate IMAGE`: check an image's invariants (slimmer.image.validate)."""

from __future__ import annotations

import click

from slimmer.cli.params import format_option
from slimmer.cli.registry_params import registry_options
from slimmer.registry.remote import RegistryOptions
from slimmer.report.validate_view import FORMATS


@click.command("validate")
@click.argument("image")
@format_option(FORMATS, "text, or json (slimmer.validate/v1).")
@registry_options
def validate_command(image: str, fmt: str, registry: RegistryOptions) -> None:
    """Check IMAGE's invariants: diff IDs match the layers, the config digest matches,
    history and layer counts agree, tar entries are unique with no absolute or '..'
    names, and hardlink targets come before their links. Unsorted layers only warn.

    IMAGE is an engine reference, or docker-archive:PATH, oci-archive:PATH, oci:DIR
    or registry:HOST/REPO:TAG
    (archives of unknown origin are welcome). Exit 0 when valid, 7 when not.
    """
    from slimmer import api
    from slimmer.report import validate_view

    result = api.validate_image(image, registry)
    click.echo(validate_view.render(result, fmt), nl=False)
    api.raise_for_validation(result)
