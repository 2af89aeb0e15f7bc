"""Package databases trimmed to the packages that survive in the slim image.

Scanners (syft, trivy, grype) read what is installed from these databases; a
slim image that keeps the whole database reports packages whose files are
gone, one that drops it reports nothing. So the database is rewritten to hold
exactly the packages with at least one non-directory file kept. A package
whose files cannot be told (no file list) is kept: over-reporting is the safe
side for a scanner. A surviving package's own records (dpkg's `info/<pkg>.list`,
`.md5sums`, `.conffiles`) are trimmed the same way, to the files kept: a
scanner that reads them for file ownership must not be told of files that are
gone.

Pure text functions; the caller decides what "kept" means.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable
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


def trim_list(text: str, kept: Callable[[str], bool]) -> str:
    """An `info/<pkg>.list` holding only the paths `kept` accepts and, as dpkg lists
    them, the directories above those (`/.` included), in the list's own order.

    `kept` is asked about every listed path but `/.`; it answers for the path as
    listed (the caller maps merged-/usr names to real ones). A directory with no
    kept path below it is dropped: it no longer holds anything of the package."""
    lines = text.splitlines()  # as written: a name may end in a space
    files = {p for p in lines if p.startswith("/") and p not in ("/", "/.") and kept(p)}
    above = _ancestors(files) | ({"/."} if files else set())
    return "".join(p + "\n" for p in lines if p in files or p in above)


def _ancestors(paths: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for path in paths:
        parent = posixpath.dirname(path)
        while parent not in out and parent != "/":
            out.add(parent)
            parent = posixpath.dirname(parent)
    return out


def trim_md5sums(text: str, kept: Callable[[str], bool]) -> str:
    """A `<pkg>.md5sums` holding only the lines of files `kept` accepts (asked with
    the absolute path, as `md5sums_paths` gives it)."""
    out = []
    for line in text.splitlines():
        paths = md5sums_paths(line)
        if paths and kept(paths[0]):
            out.append(line + "\n")
    return "".join(out)


def trim_conffiles(text: str, kept: Callable[[str], bool]) -> str:
    """An `info/<pkg>.conffiles` holding only the conffiles `kept` accepts. A line is
    a path, or (dpkg >= 1.20.1) a flag such as `remove-on-upgrade` and a path."""
    out = []
    for line in text.splitlines():
        path = _conffile_path(line)
        if path and kept(path):
            out.append(line + "\n")
    return "".join(out)


def _conffile_path(line: str) -> str:
    line = line.strip()
    return line if line.startswith("/") else line.partition(" ")[2].strip()


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
