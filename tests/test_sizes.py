"""Sizes, ratios and amounts as users write them (dive's humanize rules for sizes)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from slimmer.analyse.sizes import (
    Amount,
    SizeError,
    parse_amount,
    parse_count,
    parse_ratio,
    parse_size,
)
from slimmer.cli.params import AMOUNT, RATIO, SIZE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("4096", 4096),
        (4096, 4096),
        ("80MB", 80_000_000),
        ("80 MB", 80_000_000),
        ("80mb", 80_000_000),
        ("80M", 80_000_000),
        ("1kB", 1000),
        ("1KB", 1000),
        ("1k", 1000),
        ("2GB", 2_000_000_000),
        ("1TB", 10**12),
        ("1.5GiB", 1_610_612_736),
        ("1.5gib", 1_610_612_736),
        ("1Gi", 1 << 30),
        ("10KiB", 10_240),
        ("3MiB", 3 << 20),
        ("512B", 512),
        ("512b", 512),
        (".5MB", 500_000),
        ("7.", 7),
        # go-humanize multiplies floats and truncates: 8.2 * 1e6 = 8199999.999999999
        ("8.2MB", 8_199_999),
        ("1.005kB", 1004),
        ("1.1MB", 1_100_000),
    ],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text", ["", "MB", "80XB", "-5MB", "1e6", "80 M B", "1,5GB", "abc", "80 MiBs", "5%"]
)
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(SizeError):
        parse_size(text)


@pytest.mark.parametrize("value", [-1, True, 1.5, None, [1]])
def test_parse_size_refuses_other_types(value: object) -> None:
    with pytest.raises(SizeError):
        parse_size(value)  # type: ignore[arg-type]


def test_unknown_unit_is_named() -> None:
    with pytest.raises(SizeError, match="'XB'"):
        parse_size("80XB")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.9", 0.9),
        ("90%", 0.9),
        ("100%", 1.0),
        ("0", 0.0),
        (1, 1.0),
        (0.95, 0.95),
        ("12.5%", 0.125),
        (" 95 % ", 0.95),
        ("1e-1", 0.1),
    ],
)
def test_parse_ratio(text: str | float, expected: float) -> None:
    assert parse_ratio(text) == expected


def test_percent_is_correctly_rounded() -> None:
    assert parse_ratio("0.3%") == float("0.003")
    assert parse_ratio("57.1%") == float("0.571")


@pytest.mark.parametrize("text", ["1.01", "101%", "-0.1", "abc", "nan", "inf", "%", "5%%", ""])
def test_parse_ratio_refuses(text: str) -> None:
    with pytest.raises(SizeError):
        parse_ratio(text)


def test_ratio_above_one_when_allowed() -> None:
    assert parse_ratio("250%", at_most_one=False) == 2.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5%", Amount(ratio=0.05)),
        ("150%", Amount(ratio=1.5)),
        ("10MB", Amount(bytes=10_000_000)),
        ("0", Amount(bytes=0)),
        (0, Amount(bytes=0)),
        ("2KiB", Amount(bytes=2048)),
        ("1000000", Amount(bytes=1_000_000)),
        (5, Amount(bytes=5)),
    ],
)
def test_parse_amount(text: str | int, expected: Amount) -> None:
    assert parse_amount(text) == expected
    assert expected.is_ratio == (expected.ratio is not None)


@pytest.mark.parametrize("text", ["0.1", "5.5", "x%", "10QB", "-5%"])
def test_parse_amount_refuses_ambiguous_and_bad(text: str | int) -> None:
    with pytest.raises(SizeError):
        parse_amount(text)


@pytest.mark.parametrize(("value", "expected"), [("12", 12), (0, 0), (" 3 ", 3)])
def test_parse_count(value: str | int, expected: int) -> None:
    assert parse_count(value) == expected


@pytest.mark.parametrize("value", ["-1", -1, "1.5", 1.5, True, "ten"])
def test_parse_count_refuses(value: object) -> None:
    with pytest.raises(SizeError):
        parse_count(value)  # type: ignore[arg-type]


def _command() -> click.Command:
    @click.command()
    @click.option("--size", type=SIZE)
    @click.option("--ratio", type=RATIO)
    @click.option("--amount", type=AMOUNT)
    def cmd(size: int | None, ratio: float | None, amount: Amount | None) -> None:
        click.echo(f"{size} {ratio} {amount}")

    return cmd


def test_param_types_convert() -> None:
    res = CliRunner().invoke(_command(), ["--size", "1.5GiB", "--ratio", "90%", "--amount", "5%"])
    assert res.exit_code == 0, res.output
    assert res.output == "1610612736 0.9 Amount(bytes=None, ratio=0.05)\n"


@pytest.mark.parametrize(
    ("flag", "value"), [("--size", "80XB"), ("--ratio", "2"), ("--amount", "0.5")]
)
def test_param_types_make_usage_errors(flag: str, value: str) -> None:
    res = CliRunner().invoke(_command(), [flag, value])
    assert res.exit_code == 2
    assert f"Invalid value for '{flag}'" in res.output
    assert repr(value) in res.output
