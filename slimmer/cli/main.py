"""The `slim` command line. Thin: parse and validate options, call one library
function, render its value. Errors reach the user here and only here."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from slimmer.analyse.checkconfig import RULE_NAMES, with_flags
from slimmer.cli.console import console
from slimmer.cli.lint import lint_command
from slimmer.cli.params import AMOUNT, PATTERN, RATIO, SIZE, format_option
from slimmer.cli.slim import deps_command, profile_command, report_command, slim_command
from slimmer.cli.validate import validate_command
from slimmer.errors import ExitStatus, SlimError
from slimmer.report import check_view
from slimmer.report.check_view import FORMATS as CHECK_FORMATS
from slimmer.report.diff_view import FORMATS as DIFF_FORMATS

_state = {"debug": False}


class _DefaultToSlim(click.Group):
    """`slim IMAGE -o OUT` runs the hidden `slim` command: the first word that is
    neither an option nor a command name is taken as the image."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for i, arg in enumerate(args):
            if arg.startswith("-"):
                continue
            if arg not in self.commands:
                args = [*args[:i], "slim", *args[i:]]
            break
        return super().parse_args(ctx, args)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from slimmer import api

    version, engine = api.version_info()
    click.echo(f"slimmer {version}\n{engine}")
    ctx.exit()


@click.group(cls=_DefaultToSlim, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show slimmer's version and the engine's API version.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
def cli(debug: bool) -> None:
    """Make container images small and keep them working.

    \b
    slim IMAGE -o OUT [probe options]   profile, slim, verify and tag
    slim inspect IMAGE                  layers, waste and contents
    slim check IMAGE --max-size 80MB    CI size budgets
    slim deps IMAGE PATH...             the ELF closure the loader needs
    slim diff A B                       what differs between two images
    slim report DIR/report.json         a saved slim report, rendered again
    slim bases build                    distroless-style bases from Debian
    slim profile IMAGE                  what the app touches under probes
    """
    _state["debug"] = debug


cli.add_command(slim_command)
cli.add_command(profile_command)
cli.add_command(deps_command)
cli.add_command(report_command)
cli.add_command(lint_command)
cli.add_command(validate_command)


@cli.command()
@click.argument("image")
@format_option(("text", "json"), "text, or json (slimmer.inspect/v1).", json_alias=True)
def inspect(image: str, fmt: str) -> None:
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


@cli.command()
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@format_option(DIFF_FORMATS, "text, json (slimmer.diff/v1) or md (a pull-request comment).")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="REPORT.json",
    help="The report.json of the slim run that made B from A: show why each file of B was kept.",
)
def diff(a: str, b: str, fmt: str, report: Path | None) -> None:
    """Files, sizes, packages and config that differ between images A and B.

    A and B are engine references (app:1), or docker-archive:PATH,
    oci-archive:PATH or oci:DIR, which need no engine. File bytes are hashed as
    they stream past and never kept, so two large images need little memory.
    """
    from slimmer import api
    from slimmer.cli.progress import stages
    from slimmer.report import diff_view

    with stages(console(stderr=True), "diff") as progress:
        result = api.diff(a, b, report, progress)
    click.echo(diff_view.render(result, fmt), nl=False)


@cli.group()
def bases() -> None:
    """Distroless-style base images built from Debian 12 packages (for --base)."""


@bases.command("build")
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


@bases.command("list")
def bases_list() -> None:
    """The flavours, and which image of each the engine has."""
    from slimmer import api

    for name, summary, ref in api.list_bases():
        click.echo(
            f"{name:<11} {ref or '(not built: slim bases build ' + name + ')'}  -- {summary}"
        )


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
def cleanup(dry_run: bool) -> None:
    """Remove containers, volumes and temporary images slimmer left behind."""
    from slimmer import api

    for item in api.cleanup(dry_run=dry_run):
        click.echo(
            f"{'would remove' if dry_run else 'removed'} {item.kind} {item.id[:12]} "
            f"{item.name}".rstrip()
        )


_RULE_CHOICE = click.Choice((*RULE_NAMES, "all"))


@cli.command()
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
def check(
    image: str,
    warn_rules: tuple[str, ...],
    fail_rules: tuple[str, ...],
    skip_rules: tuple[str, ...],
    config_file: Path | None,
    no_config: bool,
    fmt: str,
    outputs: tuple[Path, ...],
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
        image, flags, config=config_file, search_config=None if no_config else Path.cwd()
    )
    for path, file_fmt in files.items():
        check_view.write_report(result, path, file_fmt or fmt)
    click.echo(check_view.render(result, fmt), nl=False)
    if fmt == "github":
        check_view.write_step_summary(result, os.environ)
    api.raise_for_budget(image, result)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; turn every error into one line and an exit code."""
    code = _run(argv)
    sys.exit(int(code))


def _run(argv: list[str] | None) -> int:
    try:
        result: Any = cli.main(args=argv, prog_name="slim", standalone_mode=False)
        return int(result) if isinstance(result, int) else ExitStatus.OK
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return ExitStatus.USAGE
    except click.exceptions.Abort:
        click.echo("slim: interrupted", err=True)
        return 130
    except SlimError as exc:
        _debug_traceback()
        click.echo(f"slim: error: {exc.message}", err=True)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("slim: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return ExitStatus.OK
    except Exception as exc:  # the one place an unexpected error reaches the user
        _debug_traceback()
        hint = "" if _state["debug"] else " (run with --debug for a traceback)"
        click.echo(f"slim: internal error: {type(exc).__name__}: {exc}{hint}", err=True)
        return ExitStatus.FAILURE


def _debug_traceback() -> None:
    if _state["debug"]:
        traceback.print_exc()
