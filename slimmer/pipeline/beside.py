"""Work run beside the run's own thread, that the run can wait for or call off.

Reading the source (the engine's `docker save`, then a pass over every layer) and
tracing it (a container driven by probes) need nothing of each other: the tracer
runs the engine's copy of the image, the reader parses the saved archive. The run
reads in a thread while it traces, and plans once both are done.

The thread's work is told its progress through `Beside.tell`, which raises
`Cancelled` once the run has called it off: a save or a read stops at its next
chunk, so a Ctrl-C or a failed trace never waits for a whole read, and the work's
own cleanup (`except BaseException`) runs in its thread before `cancel` returns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from slimmer.model import Progress, Transfer

T = TypeVar("T")


class Cancelled(BaseException):
    """The run called the work off (a BaseException: no `except Exception` keeps it)."""


class Beside(Generic[T]):
    """`work(tell)` in a thread started at once; `result()` waits for its value or
    raises its error, `cancel()` calls it off."""

    def __init__(self, work: Callable[[Progress], T], progress: Progress, name: str) -> None:
        self._progress = progress
        self._cancel = threading.Event()
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)
        self._thread.start()

    def tell(self, event: str | Transfer) -> None:
        if self._cancel.is_set():
            raise Cancelled
        self._progress(event)

    def _run(self, work: Callable[[Progress], T]) -> None:
        try:
            self._value = work(self.tell)
        except BaseException as exc:  # handed to the run's thread by result()
            self._error = exc

    def result(self) -> T:
        """The work's value, waiting for it; its error, raised here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value

    def cancel(self) -> T | None:
        """Call the work off and wait for its thread to end: its value when it had
        finished anyway (the caller owns it then), else None."""
        self._cancel.set()
        self._thread.join()
        return self._value if self._error is None else None
