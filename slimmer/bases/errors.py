"""The one error of the `bases` room.

None of `slimmer.errors`' subclasses fits a package mirror or a package
(`ImageReadError` is about image archives, `EngineError` about the engine), so
this derives from `SlimError` itself and exits with its code (1, a failure).
"""

from __future__ import annotations

from slimmer.errors import SlimError


class DebianError(SlimError):
    """Fetching, verifying or unpacking Debian packages failed, or a flavour's
    package set is inconsistent. The message names the action, the object and
    the cause: "verifying libc6_2.36-9+deb12u7_amd64.deb: sha256 mismatch"."""
