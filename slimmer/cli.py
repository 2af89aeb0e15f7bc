"""The `slim` command line. Thin: parse and validate options, call one library
function, render its value. Errors reach the user here and only here."""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click
from rich.console import Console

from slimmer import __version__
from slimmer.errors import ExitStatus, SlimError

_state = {"debug": False}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="slimmer")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
def cli(debug: bool) -> None:
    """Make container images small and keep them working."""
    _state["debug"] = debug


@cli.command()
@click.argument("image")
@click.option("--json", "as_json", is_flag=True, help="Print versioned JSON.")
def inspect(image: str, as_json: bool) -> None:
    """Layers, waste and contents of IMAGE.

    IMAGE is an engine reference (app:1), or docker-archive:PATH,
    oci-archive:PATH or oci:DIR, which need no engine.
    """
    from slimmer import api
    from slimmer.report import inspect_view
    from slimmer.report.common import dump_json

    ins = api.inspect_image(image)
    if as_json:
        click.echo(dump_json(inspect_view.to_json(ins)), nl=False)
    else:
        inspect_view.print_inspection(ins, _console())


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
def cleanup(dry_run: bool) -> None:
    """Remove containers, volumes and temporary images slimmer left behind."""
    from slimmer import api

    for item in api.cleanup(dry_run=dry_run):
        click.echo(f"{'would remove' if dry_run else 'removed'} {item.kind} {item.id[:12]} "
                   f"{item.name}".rstrip())


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


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
