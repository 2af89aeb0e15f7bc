"""Progress of the long commands on stderr: a spinner on a terminal, plain lines in CI."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console


@contextmanager
def stages(console: Console, what: str) -> Iterator[Callable[[str], None]]:
    """Show progress: a spinner on a terminal, one plain `slim: STAGE` line otherwise."""
    if console.is_terminal:
        with console.status(f"{what}...") as status:
            yield lambda stage: status.update(f"{what}: {stage}...")
    else:
        yield lambda stage: console.print(f"slim: {stage}", soft_wrap=True)
