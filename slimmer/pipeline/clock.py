"""The clock of a run: how long each phase took, and the process's peak memory (RSS)
at its end."""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from slimmer.errors import DiskFull, EngineGone
from slimmer.model import Progress, Transfer


class Clock:
    """Times each phase, and the process's peak memory (RSS) when it ends."""

    def __init__(self, progress: Progress) -> None:
        self.phases: list[tuple[str, float]] = []
        self.peaks: list[tuple[str, int]] = []  # phase -> peak RSS bytes so far
        # phase -> when it started, seconds after the clock did (phases may overlap:
        # reading beside tracing)
        self.starts: list[tuple[str, float]] = []
        self._progress = progress
        self._zero = time.monotonic()
        self._lock = threading.Lock()  # phases end in two threads: reading, tracing

    def sub(self, phase: str) -> Progress:
        """Progress inside `phase`: its stages and transfers are named `PHASE: STEP`."""

        def tell(event: str | Transfer) -> None:
            if isinstance(event, Transfer):
                self._progress(replace(event, step=f"{phase}: {event.step}"))
            else:
                self._progress(f"{phase}: {event}")

        return tell

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._progress(name)
        start = time.monotonic()
        try:
            yield
        except EngineGone as exc:  # name what slimmer was doing when the engine died
            staged = exc.during(name)
            if staged is exc:
                raise
            raise staged from exc
        except OSError as exc:  # a full disk is the user's to fix, not a crash
            full = DiskFull.during(name, exc)
            if full is None:
                raise
            raise full from exc
        finally:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            with self._lock:
                self.phases.append((name, time.monotonic() - start))
                self.starts.append((name, start - self._zero))
                self.peaks.append((name, peak))
