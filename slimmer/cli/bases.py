"""The `slim bases` commands: distroless-style bases built from Debian packages."""

from __future__ import annotations

import click

from slimmer.cli.console import console


@click.group("bases")
def bases_group() -> None:
    """Distroless-style base images built from Debian 12 packages (for --base)."""


@bases_group.command("build")
@click.argument("flavours", nargs=-1, metavar="[FLAVOUR]...")
def bases_build(flavours: tuple[str, ...]) -> None:
    """Build FLAVOURs (static, base-nossl, base, cc; all when none is named) from Debian
    packages and tag them slimmer/distroless-FLAVOUR:debian12."""
    from slimmer import api
    from slimmer.cli.progress import stages

    with stages(console(stderr=True), "bases") as progress:
        built = api.build_bases(flavours, progress)
    for b in built:
        click.echo(f"{b.tag}  {b.image_id[:19]}  {b.size / 1e6:.1f} MB  {len(b.packages)} packages")


@bases_group.command("list")
def bases_list() -> None:
    """The flavours, and which image of each the engine has."""
    from slimmer import api

    for name, summary, ref in api.list_bases():
        click.echo(
            f"{name:<11} {ref or '(not built: slim bases build ' + name + ')'}  -- {summary}"
        )
