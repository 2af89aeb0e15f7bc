"""The context a service runs in (environment, mounts, delivered files, networks),
given for the runs and never for the image: see `slimmer.context.run`."""

from __future__ import annotations

from slimmer.context.run import (
    ContextArgs,
    FileDelivery,
    Mount,
    NetworkAttach,
    RunContext,
    context_of,
    files_archive,
    run_config,
)

__all__ = [
    "ContextArgs",
    "FileDelivery",
    "Mount",
    "NetworkAttach",
    "RunContext",
    "context_of",
    "files_archive",
    "run_config",
]
