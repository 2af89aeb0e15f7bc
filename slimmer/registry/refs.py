"""Registry references, as Docker's reference grammar reads them.

`127.0.0.1:5000/app:1`, `ghcr.io/org/app@sha256:...`, `debian:12`. The first path
component is a registry host when it holds a `.` or a `:` or is `localhost`;
otherwise the image is on Docker Hub (`registry-1.docker.io`), and a one-part
name gets `library/` in front, as the engine does.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from slimmer.errors import UsageError

DOCKER_HUB = "registry-1.docker.io"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_REPO = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)


@dataclass(frozen=True)
class RegistryRef:
    """One image in a registry: host (with port), repository, and a tag or digest."""

    host: str
    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def reference(self) -> str:
        """What goes after /manifests/: the digest when given, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        suffix = f"@{self.digest}" if self.digest else f":{self.tag or 'latest'}"
        return f"{self.host}/{self.repository}{suffix}"


def parse_registry_ref(text: str) -> RegistryRef:
    """`text` as a registry reference; a malformed one is a `UsageError`."""
    name, digest = text.strip(), ""
    if "@" in name:
        name, digest = name.split("@", 1)
        if not _DIGEST.match(digest):
            raise UsageError(f"image reference {text!r}: digest is not sha256:<64 hex>")
    host, _, rest = name.partition("/")
    if not rest or not ("." in host or ":" in host or host == "localhost"):
        host, rest = DOCKER_HUB, name
        if "/" not in rest:
            rest = "library/" + rest
    repo, tag = rest, ""
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = rest.rsplit(":", 1)
        if not _TAG.match(tag):
            raise UsageError(f"image reference {text!r}: invalid tag {tag!r}")
    if not host or not _REPO.match(repo):
        raise UsageError(f"image reference {text!r}: invalid repository name {repo!r}")
    return RegistryRef(host, repo, tag if tag or digest else "latest", digest)


def host_name(host: str) -> str:
    """`host` without its port (`[::1]:5000` -> `::1`, `127.0.0.1:5000` -> `127.0.0.1`)."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: the only hosts spoken to in plain HTTP."""
    name = host_name(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
