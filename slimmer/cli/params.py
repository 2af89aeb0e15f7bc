"""click parameter types: a bad flag value is a click usage error (exit 2), raised
while the option is converted, before any command runs."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from slimmer.analyse import check
from slimmer.analyse.sizes import Amount, SizeError, parse_amount, parse_ratio, parse_size

if TYPE_CHECKING:  # click >= 8.2 types ParamType by its value; older clicks can't subscript it
    _SizeBase = click.ParamType[int]
    _RatioBase = click.ParamType[float]
    _AmountBase = click.ParamType[Amount]
    _TextBase = click.ParamType[str]
else:
    _SizeBase = _RatioBase = _AmountBase = _TextBase = click.ParamType


class SizeParam(_SizeBase):
    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return parse_size(str(value))
        except SizeError as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)


class RatioParam(_RatioBase):
    name = "ratio"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_ratio(str(value))
        except SizeError as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)


class AmountParam(_AmountBase):
    name = "size|percent"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Amount:
        if isinstance(value, Amount):
            return value
        try:
            return parse_amount(str(value))
        except SizeError as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)


SIZE = SizeParam()
RATIO = RatioParam()
AMOUNT = AmountParam()


class PatternParam(_TextBase):
    """A `--forbid` value: a glob or a class such as `@shells` (see check.Forbid)."""

    name = "glob|@class"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if not check.is_valid_pattern(text):
            self.fail(
                f"{text!r}: not a glob or a known class ({', '.join(check.CLASSES)})", param, ctx
            )
        return text


PATTERN = PatternParam()


F = TypeVar("F", bound=Callable[..., Any])


def format_option(
    choices: Sequence[str], help: str, *, json_alias: bool = False
) -> Callable[[F], F]:
    """`--format` of a command that renders one value several ways (into `fmt`);
    `text` by default. The one way to ask for a format on every command; with
    `json_alias`, `--json` is kept as another spelling of `--format json` (the
    commands that had it first: inspect, profile, deps)."""
    choose = click.option(
        "--format", "fmt", type=click.Choice(choices), default="text", show_default=True, help=help
    )
    if not json_alias:
        return choose

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def merged(*args: Any, fmt: str, as_json: bool, **kwargs: Any) -> Any:
            return command(*args, fmt="json" if as_json else fmt, **kwargs)

        alias = click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
        return cast(F, choose(alias(merged)))

    return decorate
