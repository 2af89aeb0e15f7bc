"""The `slim lint` command: findings an image handbook warns about (slimmer.findings)."""

from __future__ import annotations

from pathlib import Path

import click

from slimmer.cli.params import SIZE, format_option
from slimmer.cli.registry_params import registry_options
from slimmer.findings.checks import LARGE_BYTES
from slimmer.findings.rules import RULE_IDS, Severity
from slimmer.registry.remote import RegistryOptions
from slimmer.report.lint_view import FORMATS

SEVERITIES = tuple(s.label for s in Severity)


@click.command("lint")
@click.argument("image")
@format_option(FORMATS, "text, json (slimmer.lint/v1), sarif (2.1.0, for code scanning) or md.")
@click.option(
    "--severity",
    type=click.Choice(SEVERITIES, case_sensitive=False),
    default="high",
    show_default=True,
    help="Exit 3 when a finding at or above this severity is present.",
)
@click.option(
    "--ignore",
    multiple=True,
    type=click.Choice(sorted(RULE_IDS), case_sensitive=False),
    metavar="ID",
    help="Leave out the findings of this check (SLM-SHELL, ...). Repeatable.",
)
@click.option(
    "--trace",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="TRACE.json",
    help="A saved `slim profile --json`: report large files the process never opened.",
)
@click.option(
    "--large",
    type=SIZE,
    default=LARGE_BYTES,
    metavar="SIZE",
    help="With --trace: the size from which an unopened file is a finding (default 5MB).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the report to FILE instead of standard output.",
)
@registry_options
def lint_command(
    image: str,
    fmt: str,
    severity: str,
    ignore: tuple[str, ...],
    trace: Path | None,
    large: int,
    output: Path | None,
    registry: RegistryOptions,
) -> None:
    """Findings in IMAGE: root user, secrets, build leftovers, shells, setuid files,
    missing labels... (docs/lint.md). No container is run.

    IMAGE is an engine reference (app:1), or docker-archive:PATH, oci-archive:PATH
    oci:DIR or registry:HOST/REPO:TAG. Exit 3 when a finding at or above --severity is present.
    """
    from slimmer import api
    from slimmer.report import lint_view

    report = api.lint_image(image, ignore=ignore, trace=trace, large_bytes=large, registry=registry)
    text = lint_view.render(report, fmt)
    if output is not None:
        output.write_text(text)
    else:
        click.echo(text, nl=False)
    api.raise_for_findings(report, Severity.parse(severity))
