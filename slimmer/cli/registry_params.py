"""`--registry-ca` and `--platform`: how the commands that read an image reach a
`registry:` one. One decorator gives a command both options and hands it a single
`registry` argument (a `RegistryOptions`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from slimmer.errors import SlimError
from slimmer.image.platforms import Platform, parse_platform
from slimmer.registry.remote import RegistryOptions
from slimmer.registry.transfer import PullPolicy, Transfers

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:  # click >= 8.2 types ParamType by its value (see cli/params.py)
    _PlatformBase = click.ParamType[Platform]
else:
    _PlatformBase = click.ParamType


class PlatformType(_PlatformBase):
    """`OS/ARCH[/VARIANT]`; a malformed one is a usage error."""

    name = "platform"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Platform:
        if isinstance(value, Platform):
            return value
        try:
            return parse_platform(str(value))
        except SlimError as exc:
            self.fail(exc.message, param, ctx)


def registry_options(f: F) -> F:
    """Add `--registry-ca FILE` and `--platform OS/ARCH` to a command; it receives them
    as `registry: RegistryOptions`."""

    @functools.wraps(f)
    def wrapper(*args: Any, registry_ca: Path | None, platform: Platform | None, **kw: Any) -> Any:
        return f(*args, registry=RegistryOptions(registry_ca, platform), **kw)

    wrapped = click.option(
        "--platform",
        type=PlatformType(),
        default=None,
        metavar="OS/ARCH",
        help="The image of a multi-platform index to read (registry: images and OCI "
        "layouts; default: this host's platform).",
    )(wrapper)
    wrapped = click.option(
        "--registry-ca",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        metavar="FILE",
        help="Also trust this CA (PEM) for registry TLS, beside the system store.",
    )(wrapped)
    return cast(F, wrapped)


def platform_selection(f: F) -> F:
    """Add `--platform all|OS/ARCH[,...]` and `--registry-ca FILE` to `slim`; it receives
    them as `platforms: PlatformSelection` and `registry_ca`."""
    from slimmer.pipeline.multiplatform import DEFAULT_PLATFORMS, parse_selection

    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        if value is None:
            return DEFAULT_PLATFORMS
        try:
            return parse_selection(value)
        except SlimError as exc:
            raise click.BadParameter(exc.message, ctx, param) from None

    wrapped = click.option(
        "--platform",
        "platforms",
        default=None,
        metavar="all|OS/ARCH[,...]",
        callback=convert,
        help="IMAGE is an index in a registry: slim and verify these of its platforms, "
        "each on its own (a foreign one under emulation), and with --push push one index "
        "of them to OUTPUT. Default: every platform the engine runs, when IMAGE is pulled.",
    )(f)
    wrapped = click.option(
        "--registry-ca",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        metavar="FILE",
        help="Also trust this CA (PEM) for registry TLS, beside the system store and "
        "/etc/docker/certs.d/HOST/ca.crt.",
    )(wrapped)
    return wrapped


def transfer_options(f: F) -> F:
    """Add `--pull always|missing|never` and `--push` to a command; it receives them as
    `transfers: Transfers`."""

    @functools.wraps(f)
    def wrapper(*args: Any, pull: str, push: bool, **kw: Any) -> Any:
        return f(*args, transfers=Transfers(PullPolicy(pull), push), **kw)

    wrapped = click.option(
        "--push",
        is_flag=True,
        help="Push the output tag to its registry once it verified (login from "
        "Docker's config.json).",
    )(wrapper)
    wrapped = click.option(
        "--pull",
        type=click.Choice([p.value for p in PullPolicy]),
        default=PullPolicy.MISSING.value,
        show_default=True,
        help="Pull IMAGE through the engine: always, when the engine lacks it, or never.",
    )(wrapped)
    return cast(F, wrapped)
