"""Test registries: Debian's docker-registry started by scripts/ensure-registry.sh.

`plain_registry` (plain HTTP on a loopback port) and `tls_registry` (basic auth
from an htpasswd file, behind TLS with a CA made for the session) are started once
per session in temporary directories and stopped at its end, also when it is
interrupted. Each keeps a JSON access log; `blob_gets` reads the blob fetches from
it, an oracle that does not depend on slimmer's own counting.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from slimmer.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "ensure-registry.sh"


@dataclass(frozen=True)
class LocalRegistry:
    host: str  # 127.0.0.1:PORT
    root: Path
    ca: Path | None = None
    user: str = ""
    password: str = ""

    @property
    def auth_b64(self) -> str:
        return base64.b64encode(f"{self.user}:{self.password}".encode()).decode()

    def requests(self) -> list[dict[str, Any]]:
        """Every request the registry completed so far, oldest first."""
        out = []
        for line in (self.root / "registry.log").read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            doc = json.loads(line)
            if doc.get("msg") == "response completed":
                out.append(doc)
        return out

    def blob_gets(self, repo: str, since: int = 0) -> list[tuple[str, int]]:
        """(digest, bytes written) of each successful GET of a blob of `repo`, from
        request number `since` on."""
        prefix = f"/v2/{repo}/blobs/"
        return [
            (str(r["http.request.uri"])[len(prefix) :], int(r.get("http.response.written", 0)))
            for r in self.requests()[since:]
            if r.get("http.request.method") == "GET"
            and str(r.get("http.request.uri", "")).startswith(prefix)
            and r.get("http.response.status") == 200
        ]

    def docker_config(self, where: Path) -> dict[str, str]:
        """A config.json with this registry's login under `where`; the env naming it."""
        where.mkdir(parents=True, exist_ok=True)
        doc = {"auths": {self.host: {"auth": self.auth_b64}}}
        (where / "config.json").write_text(json.dumps(doc))
        return {"DOCKER_CONFIG": str(where)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(root: Path, tls: bool) -> LocalRegistry:
    port = _free_port()
    env = dict(os.environ)
    user, password = ("", "")
    if tls:
        user, password = "slimtester", "pw-" + secrets.token_urlsafe(18)
        env |= {"REGISTRY_USER": user, "REGISTRY_PASSWORD": password}
    args = ["bash", str(SCRIPT), "start", str(root), str(port), *(["tls"] if tls else [])]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"starting a test registry: {done.stderr.strip()}", pytrace=False)
    ca = root / "ca.crt" if tls else None
    return LocalRegistry(f"127.0.0.1:{port}", root, ca, user, password)


def stop(reg: LocalRegistry) -> None:
    subprocess.run(["bash", str(SCRIPT), "stop", str(reg.root)], check=False, timeout=60)


@pytest.fixture(scope="session")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    reg = start(tmp_path_factory.mktemp("registry-plain"), tls=False)
    try:
        yield reg
    finally:
        stop(reg)


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    reg = start(tmp_path_factory.mktemp("registry-tls"), tls=True)
    try:
        yield reg
    finally:
        stop(reg)


def push_to(engine: Engine, image: str, reg: LocalRegistry, name: str) -> str:
    """Push engine image `image` to `reg` as `name` (REPO:TAG) through the engine API,
    with the registry's login; the temporary tag is removed again. The pushed ref."""
    ref = f"{reg.host}/{name}"
    engine.tag_image(engine.inspect_image(image).id, ref)
    try:
        auth = {"username": reg.user, "password": reg.password} if reg.user else None
        engine.push_image(ref, auth)
    finally:
        engine.remove_image(ref)
    return ref


def push_index_to(
    engine: Engine, images: dict[str, str], reg: LocalRegistry, name: str
) -> tuple[str, dict[str, str]]:
    """Push engine images (`{"linux/amd64": image, ...}`) to `reg` as one index at
    `name` (REPO:TAG): each image is pushed to that tag in turn, which leaves its
    manifest in the repository by digest, then a Docker manifest list naming them all
    is PUT at the tag (written here by hand, not by slimmer's index code). The ref and
    each platform's manifest digest."""
    ref = f"{reg.host}/{name}"
    repo, tag = name.rsplit(":", 1)
    entries, digests = [], {}
    for plat, image in images.items():
        push_to(engine, image, reg, name)
        raw, media = get_manifest(reg, repo, tag)
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        os_, arch = plat.split("/")[:2]
        entries.append(
            {
                "mediaType": media,
                "digest": digest,
                "size": len(raw),
                "platform": {"os": os_, "architecture": arch},
            }
        )
        digests[plat] = digest
    doc = {"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": entries}
    _put(reg, f"/v2/{repo}/manifests/{tag}", json.dumps(doc).encode(), DOCKER_LIST)
    return ref, digests


DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
_ACCEPT = ", ".join(
    (
        DOCKER_LIST,
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
    )
)


def _session(reg: LocalRegistry) -> tuple[requests.Session, str]:
    s = requests.Session()
    s.trust_env = False
    if reg.ca is not None:
        s.verify = str(reg.ca)
        s.auth = (reg.user, reg.password)
        return s, f"https://{reg.host}"
    return s, f"http://{reg.host}"


def get_manifest(reg: LocalRegistry, repo: str, reference: str) -> tuple[bytes, str]:
    """A manifest's bytes and media type, fetched with plain `requests` (not slimmer's
    client: an oracle of its own)."""
    s, base = _session(reg)
    with s:
        resp = s.get(f"{base}/v2/{repo}/manifests/{reference}", headers={"Accept": _ACCEPT})
        resp.raise_for_status()
        return resp.content, resp.headers["Content-Type"].split(";")[0]


def _put(reg: LocalRegistry, path: str, body: bytes, media: str) -> None:
    s, base = _session(reg)
    with s:
        resp = s.put(f"{base}{path}", data=body, headers={"Content-Type": media})
        resp.raise_for_status()
