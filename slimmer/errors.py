"""The error tree. Every error slimmer raises on purpose is a `SlimError`.

Each class carries the process exit code it maps to; the CLI is the one place
that turns an error into a one-line message and that code.
"""

from __future__ import annotations

import errno
from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    BUDGET = 3
    VERIFICATION = 4
    BASE = 5
    IMAGE = 6
    INVALID = 7
    NOT_FOUND = 8
    AUTH = 9
    TLS = 10
    UNWRITABLE = 11


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


class OutputUnwritable(SlimError):
    """A file slimmer was asked to write (`--seccomp FILE`) cannot be written: refused
    before any work, so nothing is traced or tagged for an output that would be lost."""

    exit_code = ExitStatus.UNWRITABLE


class EngineError(SlimError):
    """The Docker engine could not be reached or refused an operation."""


class EngineGone(EngineError):
    """The engine stopped answering mid-run (refused or dropped connections).

    `action` is the call that noticed; `stage` (set once by the pipeline's clock
    through `during`) is what slimmer was doing, named first in the message."""

    def __init__(self, action: str, cause: str, stage: str = "") -> None:
        where = f"while {stage}: {action}" if stage else f"while {action}"
        super().__init__(f"the engine went away {where}: {cause}")
        self.action, self.cause, self.stage = action, cause, stage

    def during(self, stage: str) -> EngineGone:
        """This error, naming `stage`; unchanged when a stage is already named."""
        return self if self.stage else EngineGone(self.action, self.cause, stage)


class DiskFull(SlimError):
    """A local disk filled up: the work directory (under TMPDIR) or the read cache."""

    @classmethod
    def during(cls, stage: str, exc: OSError) -> DiskFull | None:
        """The error for `exc` raised while `stage`, when it says the disk is full."""
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            return None
        where = f" ({exc.filename})" if exc.filename else ""
        return cls(
            f"{stage}: no space left on the device{where}; free space, or point TMPDIR "
            "(and SLIMMER_CACHE_DIR) at a bigger disk"
        )


class ImageUnrunnable(SlimError):
    """The image cannot run as configured (a missing entrypoint program or
    interpreter, another architecture or OS): refused before anything runs."""

    exit_code = ExitStatus.IMAGE


class ImageNotFound(SlimError):
    """The named image does not exist on the engine or at the given path."""


class ImageReadError(SlimError):
    """An image archive or one of its layers could not be read."""


class ImageInvalid(SlimError):
    """`slim validate`: the image breaks an invariant (digests, counts, tar entries)."""

    exit_code = ExitStatus.INVALID


class ElfError(SlimError):
    """An ELF file could not be parsed."""


class TraceError(SlimError):
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


class RegistryError(SlimError):
    """A registry could not be reached, answered wrongly, or refused a request.
    Messages never carry a credential (see slimmer.registry.credentials)."""


class RegistryImageNotFound(RegistryError):
    """The registry has no such repository, tag or digest (or no such platform in an
    index)."""

    exit_code = ExitStatus.NOT_FOUND


class RegistryAuthRefused(RegistryError):
    """The registry wants credentials and none were found, or refused the ones given."""

    exit_code = ExitStatus.AUTH


class RegistryTLSError(RegistryError):
    """The registry's certificate could not be verified, or it speaks plain HTTP
    and is not on a loopback address."""

    exit_code = ExitStatus.TLS
