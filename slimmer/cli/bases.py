"""The `slim bases` commands: distroless-style bases built from Debian packages."""

from __future__ import annotations

import click

from slimmer.cli.console import console
from slimmer.cli.registry_params import PlatformType
from slimmer.image.platforms import Platform


@click.group("bases")
def bases_group() -> None:
    """Distroless-style base images built from Debian 12 packages, for linux/amd64 and
    linux/arm64 (for --base)."""


@bases_group.command("build")
@click.argument("flavours", nargs=-1, metavar="[FLAVOUR]...")
@click.option(
    "--platform",
    "platforms",
    type=PlatformType(),
    multiple=True,
    metavar="OS/ARCH",
    help="linux/amd64 or linux/arm64: whose Debian packages (repeat for both; "
    "default: the engine's platform).",
)
def bases_build(flavours: tuple[str, ...], platforms: tuple[Platform, ...]) -> None:
    """Build FLAVOURs (static, base-nossl, base, cc; all when none is named) from Debian
    packages of each platform, and tag them slimmer/distroless-FLAVOUR:debian12-ARCH.

    A build for the engine's own platform is also tagged slimmer/distroless-FLAVOUR:debian12.
    --base picks the base of the slimmed image's own platform."""
    from slimmer import api
    from slimmer.cli.progress import stages

    with stages(console(stderr=True), "bases") as progress:
        built = api.build_bases(flavours, progress, platforms)
    for b in built:
        size = f"{b.size / 1e6:.1f} MB  {len(b.packages)} packages"
        click.echo(f"{'  '.join(b.tags)}  {b.image_id[:19]}  linux/{b.arch}  {size}")


@bases_group.command("list")
def bases_list() -> None:
    """The flavours of each platform, and which image of each the engine has."""
    from slimmer import api

    for row in api.list_bases():
        have = row.ref or f"(not built: {row.build})"
        click.echo(f"{row.platform:<12} {row.flavour:<11} {have}  -- {row.summary}")
