"""Choosing one image of an image index (OCI index or Docker manifest list) by platform:
an index in a registry, or the `index.json` of an OCI layout.

A platform is `os/architecture[/variant]` as the OCI image spec writes it
(`linux/amd64`, `linux/arm64/v8`). When the index gives no variant, or the asked
platform names none, the variant does not decide; `arm64` with no variant matches
`arm64/v8`, as containerd's platform matcher takes v8 to be arm64's default.
"""

from __future__ import annotations

import platform as _host
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slimmer.errors import ImageNotFound, SlimError, UsageError

_MACHINES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        tail = f"/{self.variant}" if self.variant else ""
        return f"{self.os}/{self.architecture}{tail}"


def parse_platform(text: str) -> Platform:
    """`linux/amd64`, `linux/arm64/v8`; anything else is a `UsageError`."""
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"--platform {text!r}: expected OS/ARCH[/VARIANT], e.g. linux/arm64")
    return Platform(*parts)


def host_platform() -> Platform:
    """The platform of this machine (the engine's own when it runs here)."""
    machine = _host.machine().lower()
    return Platform("linux", _MACHINES.get(machine, machine))


def matches(want: Platform, entry: Mapping[str, Any]) -> bool:
    """Whether an index entry's `platform` object is `want`."""
    plat = entry.get("platform") or {}
    if not isinstance(plat, Mapping):
        return False
    if plat.get("os") != want.os or plat.get("architecture") != want.architecture:
        return False
    variant = str(plat.get("variant") or "")
    if not want.variant or not variant:
        return True
    return _variant(want.architecture, variant) == _variant(want.architecture, want.variant)


def _variant(arch: str, variant: str) -> str:
    return "v8" if arch == "arm64" and variant in ("", "v8") else variant


def choose(
    entries: Sequence[Mapping[str, Any]],
    want: Platform,
    where: str,
    missing: Callable[[str], SlimError] = ImageNotFound,
) -> Mapping[str, Any]:
    """The index entry for `want`; none is the `missing` error (a registry's
    `RegistryImageNotFound`, a file's `ImageNotFound`) naming what is there."""
    for entry in entries:
        if matches(want, entry):
            return entry
    have = sorted({_describe(e) for e in entries})
    raise missing(
        f"reading {where}: the index has no {want} image (it has {', '.join(have) or 'none'})"
    )


def _describe(entry: Mapping[str, Any]) -> str:
    plat = entry.get("platform") or {}
    if not isinstance(plat, Mapping):
        return "?"
    tail = f"/{plat['variant']}" if plat.get("variant") else ""
    return f"{plat.get('os', '?')}/{plat.get('architecture', '?')}{tail}"
