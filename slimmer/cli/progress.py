"""Progress of the long commands on stderr.

On a terminal: a spinner naming the stage, and a bar in bytes while a long step
moves an image (read from the engine, its layers parsed, the slim layer written,
the archive loaded). Elsewhere (CI logs): one plain `slim: STAGE` line per
stage, and one line when a step has moved all its bytes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from slimmer.model import Progress as Tell
from slimmer.model import Transfer
from slimmer.report.common import human_bytes


class _BytesOnly(ProgressColumn):
    """Show `column` only on the bar of a transfer, never on the stage line."""

    def __init__(self, column: ProgressColumn) -> None:
        super().__init__()
        self.column = column

    def render(self, task: Task) -> Text:
        if not task.fields.get("transfer"):
            return Text("")
        shown = self.column.render(task)
        return shown if isinstance(shown, Text) else Text(str(shown))


def _bar(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        _BytesOnly(BarColumn()),
        _BytesOnly(DownloadColumn(binary_units=False)),
        _BytesOnly(TransferSpeedColumn()),
        console=console,
        transient=True,
    )


@contextmanager
def stages(console: Console, what: str) -> Iterator[Tell]:
    """A `Progress` callback drawn on `console` for the duration of the block."""
    if not console.is_terminal:
        yield _LineLog(console)
        return
    with _bar(console) as bar:
        stage = bar.add_task(f"{what}...", total=None)
        moving: dict[str, TaskID] = {}

        def tell(event: str | Transfer) -> None:
            if not isinstance(event, Transfer):
                for done in moving.values():
                    bar.remove_task(done)
                moving.clear()
                bar.update(stage, description=f"{what}: {event}...")
                return
            if event.step not in moving:
                moving[event.step] = bar.add_task(f"  {event.step}", total=None, transfer=True)
            bar.update(moving[event.step], completed=event.done, total=event.total)

        yield tell


class _LineLog:
    """Plain lines for logs: each stage, and each transfer once, when it is complete (a
    total known in advance may be passed: `docker save` adds tar headers to the
    engine's size of the image)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started: dict[str, float] = {}
        self.told: set[str] = set()  # transfers whose line is printed

    def __call__(self, event: str | Transfer) -> None:
        if not isinstance(event, Transfer):
            self.console.print(f"slim: {event}", soft_wrap=True)
            return
        if event.done == 0:  # a transfer (re)starts: a later round reuses the step's name
            self.started[event.step] = time.monotonic()
            self.told.discard(event.step)
        start = self.started.setdefault(event.step, time.monotonic())
        if event.total is not None and event.done >= event.total and event.step not in self.told:
            self.told.add(event.step)
            seconds = time.monotonic() - start
            self.console.print(
                f"slim: {event.step}: {human_bytes(event.done)} in {seconds:.1f}s",
                soft_wrap=True,
            )
