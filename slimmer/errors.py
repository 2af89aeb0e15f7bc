"""The error tree. Every error slimmer raises on purpose is a `SlimError`.

Each class carries the process exit code it maps to; the CLI is the one place
that turns an error into a one-line message and that code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    BUDGET = 3
    VERIFICATION = 4
    BASE = 5


class SlimError(Exception):
    """Base class: a failure with a user-facing message."""

    exit_code: ExitStatus = ExitStatus.FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(SlimError):
    """The command line or a configuration value is wrong."""

    exit_code = ExitStatus.USAGE


class EngineError(SlimError):
    """The Docker engine could not be reached or refused an operation."""


class ImageNotFound(SlimError):
    """The named image does not exist on the engine or at the given path."""


class ImageReadError(SlimError):
    """An image archive or one of its layers could not be read."""


class ElfError(SlimError):
    """An ELF file could not be parsed."""


class ProfileError(SlimError):
    """Running or probing the image under the tracer failed."""


class BudgetExceeded(SlimError):
    """A `slim check` rule failed."""

    exit_code = ExitStatus.BUDGET


class VerificationFailed(SlimError):
    """The slim image did not behave like the original."""

    exit_code = ExitStatus.VERIFICATION


class BaseRefused(SlimError):
    """The chosen base cannot run the app (symbol versions, libc); nothing was written.
    `reasons` holds every refusal line, the message the first."""

    exit_code = ExitStatus.BASE

    def __init__(self, message: str, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reasons = reasons
