"""Image indexes: the platforms one lists, and a new one composed of pushed manifests.

An index (OCI image index or Docker manifest list) names one manifest per
platform, each by digest, size and media type. Entries whose platform is
`unknown/unknown` are attestations (BuildKit's provenance), not images, and are
left out. The index slimmer writes is a Docker manifest list when every manifest
it names is a Docker one (what the engine pushes), an OCI index otherwise: the
two are not mixed, as registries and engines expect.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slimmer.errors import ImageReadError
from slimmer.image.platforms import Platform
from slimmer.registry.client import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST


@dataclass(frozen=True)
class IndexEntry:
    """One image of an index: its platform and its manifest."""

    platform: Platform
    digest: str
    media_type: str
    size: int


def entries_of(doc: Mapping[str, Any], where: str) -> tuple[IndexEntry, ...]:
    """The image entries of index `doc` (attestations left out), in its order."""
    out = []
    for raw in doc.get("manifests") or ():
        plat = raw.get("platform") if isinstance(raw, Mapping) else None
        if not isinstance(plat, Mapping):
            continue
        os_, arch = str(plat.get("os", "")), str(plat.get("architecture", ""))
        if not os_ or not arch or (os_, arch) == ("unknown", "unknown"):
            continue
        digest = str(raw.get("digest", ""))
        if not digest.startswith("sha256:"):
            raise ImageReadError(f"reading {where}: an index entry has no sha256 digest")
        variant = str(plat.get("variant") or "")
        size = int(raw.get("size") or 0)
        media = str(raw.get("mediaType") or OCI_MANIFEST)
        out.append(IndexEntry(Platform(os_, arch, variant), digest, media, size))
    return tuple(out)


def compose(entries: Sequence[IndexEntry]) -> tuple[bytes, str]:
    """The bytes and media type of an index of `entries`, in their order (same entries,
    same bytes)."""
    media = DOCKER_LIST if all(e.media_type == DOCKER_MANIFEST for e in entries) else OCI_INDEX
    doc = {
        "schemaVersion": 2,
        "mediaType": media,
        "manifests": [_entry(e) for e in entries],
    }
    return json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n", media


def _entry(e: IndexEntry) -> dict[str, Any]:
    plat = {"os": e.platform.os, "architecture": e.platform.architecture}
    if e.platform.variant:
        plat["variant"] = e.platform.variant
    return {"mediaType": e.media_type, "digest": e.digest, "size": e.size, "platform": plat}
