"""The command table of `slim` (slimmer.cli.main): every command under its own name,
each loaded only when asked for, so a run imports its own command's modules alone."""

from __future__ import annotations

import subprocess
import sys

import click

from slimmer.cli.main import COMMANDS, cli


def test_each_command_loads_by_its_own_name_and_only_when_asked() -> None:
    ctx = click.Context(cli)
    loaded = {name: cli.get_command(ctx, name) for name in COMMANDS}
    assert {name: cmd.name if cmd else None for name, cmd in loaded.items()} == {
        n: n for n in COMMANDS
    }
    assert cli.list_commands(ctx) == sorted(COMMANDS)
    # in a fresh interpreter: `slim IMAGE` loads the slim command's modules, not the rest
    probe = (
        "import sys, click\n"
        "from slimmer.cli.main import cli\n"
        "assert not any(m.startswith('slimmer.cli.') and m != 'slimmer.cli.main'"
        " for m in sys.modules), sorted(sys.modules)\n"
        "cli.get_command(click.Context(cli), 'slim')\n"
        "print('slimmer.cli.inspect' in sys.modules, 'slimmer.cli.slim' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
