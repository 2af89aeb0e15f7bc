"""The `slim cleanup` command: what slimmer left behind, removed."""

from __future__ import annotations

import click


@click.command("cleanup")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
def cleanup_command(dry_run: bool) -> None:
    """Remove containers, volumes and temporary images slimmer left behind."""
    from slimmer import api

    for item in api.cleanup(dry_run=dry_run):
        click.echo(
            f"{'would remove' if dry_run else 'removed'} {item.kind} {item.id[:12]} "
            f"{item.name}".rstrip()
        )
