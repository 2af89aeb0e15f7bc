"""The consoles the CLI writes to: rich's own on a terminal; off a terminal (a CI log,
a pipe, a file) one unwrapped line per row."""

from __future__ import annotations

import os

from rich.console import Console

LOG_WIDTH = 100_000  # off a terminal: wide enough that no row of a table is wrapped


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr). Rich lays a table out for 80 columns when the
    stream is not a terminal, which splits a value (`writing` / `1.3s`) across lines of
    a CI log; a log is read by grep and by scrolling, so there each row stays one line.
    `COLUMNS`, when set, is the user's choice and wins."""
    plain = Console(stderr=stderr, highlight=False)
    if plain.is_terminal or os.environ.get("COLUMNS"):
        return plain
    return Console(stderr=stderr, highlight=False, width=LOG_WIDTH)
