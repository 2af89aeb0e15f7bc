"""What a test needs from the host, checked so that a missing tool fails the test
instead of skipping it: `scripts/bootstrap.sh` installs all of them."""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

F = TypeVar("F", bound=Callable[..., Any])


def require(*tools: str) -> None:
    """Fail the calling test unless every program in `tools` is on PATH."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(
            f"needs {', '.join(missing)} on PATH (scripts/bootstrap.sh installs it)", pytrace=False
        )


def require_paths(*paths: str) -> None:
    """Fail the calling test unless every host path in `paths` exists."""
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        pytest.fail(f"needs an x86-64 glibc host with {', '.join(missing)}", pytrace=False)


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root (the suite runs as root, as CI does)", pytrace=False)


def needs(*tools: str) -> Callable[[F], F]:
    """Decorator form of `require`."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            require(*tools)
            return fn(*args, **kwargs)

        return run  # type: ignore[return-value]

    return wrap
