"""The `slim check` command: CI size budgets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from slimmer.analyse.checkconfig import RULE_NAMES, with_flags
from slimmer.cli.params import AMOUNT, PATTERN, RATIO, SIZE, format_option
from slimmer.cli.registry_params import registry_options
from slimmer.registry.remote import RegistryOptions
from slimmer.report import check_view
from slimmer.report.check_view import FORMATS as CHECK_FORMATS

_RULE_CHOICE = click.Choice((*RULE_NAMES, "all"))


@click.command("check")
@click.argument("image")
@click.option(
    "--max-size",
    type=SIZE,
    metavar="SIZE",
    help="Largest uncompressed size (80MB = 80,000,000 B; 1.5GiB; bytes).",
)
@click.option(
    "--max-compressed-size",
    type=SIZE,
    metavar="SIZE",
    help="Largest gzip size, as a registry would store the layers.",
)
@click.option("--max-layers", type=click.IntRange(min=0), metavar="N", help="Most layers.")
@click.option(
    "--max-files",
    type=click.IntRange(min=0),
    metavar="N",
    help="Most regular files in the merged tree.",
)
@click.option(
    "--min-efficiency", type=RATIO, metavar="RATIO", help="dive's lowestEfficiency: 0.95 or 95%."
)
@click.option(
    "--max-wasted",
    type=AMOUNT,
    metavar="SIZE|PCT",
    help="dive's highestWastedBytes (20MB), or highestUserWastedPercent (10%).",
)
@click.option(
    "--max-reclaimable",
    type=AMOUNT,
    metavar="SIZE|PCT",
    help="Bytes hidden by upper layers: a size, or a share of the size.",
)
@click.option(
    "--forbid",
    type=PATTERN,
    multiple=True,
    metavar="GLOB|@CLASS",
    help="No path may match: a glob (/usr/bin/*sh, *.pyc) or @shells, "
    "@package-managers, @setuid, @setgid. Repeatable.",
)
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="REPORT",
    help="A saved `slim inspect --json` or `slim check --format json` report.",
)
@click.option(
    "--max-growth",
    type=AMOUNT,
    metavar="SIZE|PCT",
    help="Largest growth over the baseline's size: 5% or 10MB.",
)
@click.option(
    "--max-findings",
    type=click.Choice(("low", "medium", "high", "critical"), case_sensitive=False),
    metavar="SEVERITY",
    help="No `slim lint` finding at or above SEVERITY (low, medium, high, critical).",
)
@click.option(
    "--warn",
    "warn_rules",
    type=_RULE_CHOICE,
    multiple=True,
    metavar="RULE",
    help="This rule (or all) only warns. Repeatable.",
)
@click.option(
    "--no-warn",
    "fail_rules",
    type=_RULE_CHOICE,
    multiple=True,
    metavar="RULE",
    help="This rule fails even if the config file says it warns. Repeatable.",
)
@click.option(
    "--skip",
    "skip_rules",
    type=_RULE_CHOICE,
    multiple=True,
    metavar="RULE",
    help="Turn off a rule the config file sets. Repeatable.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: .slim.toml or pyproject.toml, here or above).",
)
@click.option("--no-config", is_flag=True, help="Use no config file.")
@format_option(CHECK_FORMATS, "Report format.")
@click.option(
    "-o",
    "--output",
    "outputs",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
    metavar="FILE",
    help="Also write the report to FILE, in the format its name says: "
    ".xml JUnit, .json JSON, .md Markdown, .txt text. Repeatable.",
)
@registry_options
def check_command(
    image: str,
    warn_rules: tuple[str, ...],
    fail_rules: tuple[str, ...],
    skip_rules: tuple[str, ...],
    config_file: Path | None,
    no_config: bool,
    fmt: str,
    outputs: tuple[Path, ...],
    registry: RegistryOptions,
    **rules: Any,
) -> None:
    """Fail (exit 3) when IMAGE breaks a size budget; warnings keep exit 0.

    Rules come from the flags over [tool.slim.check] in pyproject.toml or
    [check] in .slim.toml (see docs/ci.md). Exit 2 on a bad rule.
    """
    from slimmer import api

    files = {path: check_view.format_for(path) for path in outputs}
    for path, file_fmt in files.items():
        if file_fmt is None:
            raise click.BadParameter(
                f"{str(path)!r}: name it .xml (JUnit), .json, .md or .txt", param_hint="'--output'"
            )
    warn = tuple((r, True) for r in warn_rules) + tuple((r, False) for r in fail_rules)
    flags = with_flags(**rules, warn=warn, skip=skip_rules)
    result = api.check_image(
        image,
        flags,
        config=config_file,
        search_config=None if no_config else Path.cwd(),
        registry=registry,
    )
    for path, file_fmt in files.items():
        check_view.write_report(result, path, file_fmt or fmt)
    click.echo(check_view.render(result, fmt), nl=False)
    if fmt == "github":
        check_view.write_step_summary(result, os.environ)
    api.raise_for_budget(image, result)
