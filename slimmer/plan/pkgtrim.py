"""Package databases trimmed to the packages that survive in the slim image.

Scanners (syft, trivy, grype) read what is installed from these databases; a
slim image that keeps the whole database reports packages whose files are
gone, one that drops it reports nothing. So the database is rewritten to hold
exactly the packages with at least one non-directory file kept. A package
whose files cannot be told (no file list) is kept: over-reporting is the safe
side for a scanner.

Pure text functions; the caller decides what "kept" means.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_BLANK = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True)
class DpkgRecord:
    """One stanza of a dpkg status file, with its text exactly as stored."""

    text: str
    package: str
    architecture: str
    status: str

    @property
    def installed(self) -> bool:
        """dpkg's third Status word; a stanza without Status (distroless) is installed."""
        return not self.status or self.status.split()[-1:] == ["installed"]

    def list_names(self) -> tuple[str, ...]:
        """The `info/<name>.list` names dpkg may have used: `pkg:arch` (Multi-Arch:
        same packages since dpkg 1.16.2), then `pkg`."""
        return (
            (f"{self.package}:{self.architecture}", self.package)
            if self.architecture
            else (self.package,)
        )


def blocks(text: str) -> list[str]:
    """Blank-line separated records, surrounding newlines stripped."""
    return [b.strip("\n") for b in _BLANK.split(text) if b.strip()]


def dpkg_records(text: str) -> list[DpkgRecord]:
    out = []
    for block in blocks(text):
        fields = _fields(block)
        if "Package" in fields:
            out.append(
                DpkgRecord(
                    block,
                    fields["Package"],
                    fields.get("Architecture", ""),
                    fields.get("Status", ""),
                )
            )
    return out


def _fields(block: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in block.splitlines():
        if line[:1] in (" ", "\t"):
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def trim_dpkg(text: str, keep: Callable[[DpkgRecord], bool]) -> str:
    """The status file with only the installed stanzas `keep` accepts, in order."""
    kept = [r.text for r in dpkg_records(text) if r.installed and keep(r)]
    return "".join(t + "\n\n" for t in kept)


def md5sums_paths(text: str) -> tuple[str, ...]:
    """The files of a `<pkg>.md5sums` (`<md5>  <path relative to />` per line)."""
    out = []
    for line in text.splitlines():
        _, sep, path = line.partition("  ")
        if sep and path.strip():
            out.append("/" + path.strip().lstrip("/"))
    return tuple(out)


def list_paths(text: str) -> tuple[str, ...]:
    """The paths of an `info/<pkg>.list`, one absolute path a line."""
    return tuple(
        line
        for line in (x.strip() for x in text.splitlines())
        if line.startswith("/") and line != "/." and line != "/"
    )


@dataclass(frozen=True)
class ApkRecord:
    """One package of apk's installed database: `P:` name, files from `F:`/`R:` lines."""

    text: str
    package: str
    files: tuple[str, ...]


def apk_records(text: str) -> list[ApkRecord]:
    out = []
    for block in blocks(text):
        name, files, directory = "", [], ""
        for line in block.splitlines():
            key, value = line[:2], line[2:]
            if key == "P:":
                name = value
            elif key == "F:":
                directory = value.strip("/")
            elif key == "R:":
                files.append("/" + "/".join(p for p in (directory, value) if p))
        if name:
            out.append(ApkRecord(block, name, tuple(files)))
    return out


def trim_apk(text: str, keep: Callable[[ApkRecord], bool]) -> str:
    """The installed database with only the packages `keep` accepts, in order."""
    return "".join(r.text + "\n\n" for r in apk_records(text) if keep(r))
