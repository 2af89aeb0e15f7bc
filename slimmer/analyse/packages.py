"""Package inventories found in an image tree: dpkg, apk, Python, Node.js.

Pure functions over a `TreeView`; they only read the metadata files that
`METADATA_FILES` names, so the reader can keep just those bytes.
"""

from __future__ import annotations

import email.parser
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from slimmer.model import FileEntry, TreeView

DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_STATUS_D = "/var/lib/dpkg/status.d/"
APK_INSTALLED = "/lib/apk/db/installed"
_DIST_INFO = re.compile(r"/[^/]+\.(dist-info|egg-info)/(METADATA|PKG-INFO)$")
_NODE_PKG = re.compile(r"/node_modules/(@[^/]+/)?[^/]+/package\.json$")


@dataclass(frozen=True)
class Package:
    manager: str  # "dpkg", "apk", "python", "npm"
    name: str
    version: str
    source: str  # the metadata file it was read from


def is_metadata_file(path: str) -> bool:
    """Whether the reader should keep this file's bytes for the inventory."""
    return (
        path == DPKG_STATUS
        or path.startswith(DPKG_STATUS_D)
        or path == APK_INSTALLED
        or path == "/etc/os-release"
        or path == "/usr/lib/os-release"
        or bool(_DIST_INFO.search(path))
        or bool(_NODE_PKG.search(path))
    )


def inventory(tree: TreeView) -> tuple[Package, ...]:
    found: list[Package] = []
    for entry in tree:
        if entry.is_regular and is_metadata_file(entry.path):
            found.extend(_packages_in(tree, entry))
    return tuple(sorted(set(found), key=lambda p: (p.manager, p.name, p.version, p.source)))


def _packages_in(tree: TreeView, entry: FileEntry) -> Iterable[Package]:
    try:
        text = tree.read_bytes(entry.path).decode("utf-8", "replace")
    except (LookupError, FileNotFoundError):
        return ()
    path = entry.path
    if path == DPKG_STATUS or path.startswith(DPKG_STATUS_D):
        return _dpkg(text, path)
    if path == APK_INSTALLED:
        return _apk(text, path)
    if _DIST_INFO.search(path):
        return _python(text, path)
    if _NODE_PKG.search(path):
        return _npm(text, path)
    return ()


def _stanzas(text: str) -> Iterable[dict[str, str]]:
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                continue
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if fields:
            yield fields


def _dpkg(text: str, path: str) -> Iterable[Package]:
    for f in _stanzas(text):
        status = f.get("Status", "install ok installed")
        if "Package" in f and status.endswith(" installed"):
            yield Package("dpkg", f["Package"], f.get("Version", ""), path)


def _apk(text: str, path: str) -> Iterable[Package]:
    for block in re.split(r"\n\s*\n", text):
        fields = dict(line.split(":", 1) for line in block.splitlines() if line[1:2] == ":")
        if "P" in fields:
            yield Package("apk", fields["P"], fields.get("V", ""), path)


def _python(text: str, path: str) -> Iterable[Package]:
    msg = email.parser.Parser().parsestr(text, headersonly=True)
    name = msg.get("Name")
    if name:
        yield Package("python", str(name), str(msg.get("Version", "")), path)


def _npm(text: str, path: str) -> Iterable[Package]:
    try:
        doc = json.loads(text)
    except ValueError:
        return
    if isinstance(doc, dict) and isinstance(doc.get("name"), str):
        yield Package("npm", doc["name"], str(doc.get("version", "")), path)
