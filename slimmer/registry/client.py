"""The distribution protocol (OCI distribution spec v1.1), on `requests`: the one module
that speaks HTTP to a registry.

Why not `oras` (PyPI 0.2.43), evaluated first: its `do_request` retries every
exception with sleeps of 3 + 3**n seconds (a registry that is down fails after
about two minutes); every failure is a bare `ValueError`, so an unknown image, a
refused login and a bad certificate cannot be told apart; `get_manifest` returns
parsed JSON without the bytes or the digest, so a manifest cannot be verified;
`insecure` means plain HTTP for every host of a client; it logs registry and
credential-helper messages to stderr itself; it ships no type information. What
we need is small: GET/HEAD of manifests and blobs with the right Accept types,
basic and bearer-token auth, streaming blobs.

Schemes follow the engine: HTTPS always; a loopback registry (127.0.0.0/8, ::1,
localhost) that answers HTTPS with plain HTTP is spoken to in HTTP; any other
host that does is refused. Certificates are checked against the system store
plus `ca_file` (`--registry-ca`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import requests

from slimmer.errors import (
    ImageReadError,
    RegistryAuthRefused,
    RegistryError,
    RegistryImageNotFound,
    RegistryTLSError,
    UsageError,
)
from slimmer.registry.blobs import BlobStream, FetchStats
from slimmer.registry.credentials import Credentials
from slimmer.registry.refs import is_loopback

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
_ACCEPT = ", ".join((*INDEX_TYPES, *MANIFEST_TYPES))
_MAX_DOC = 16 << 20
_TIMEOUT = (15.0, 120.0)
_CHUNK = 1 << 20
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Manifest:
    """A manifest or index as stored: its bytes, media type and digest."""

    raw: bytes
    media_type: str
    digest: str

    def json(self) -> dict[str, Any]:
        doc = json.loads(self.raw)
        if not isinstance(doc, dict):
            raise ImageReadError(f"manifest {self.digest[:19]} is not a JSON object")
        return doc

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


class RegistryClient:
    """One registry host, with its credentials (or none) and its trust."""

    def __init__(
        self, host: str, credentials: Credentials | None = None, ca_file: Path | None = None
    ) -> None:
        self.host = host
        self.stats = FetchStats()
        self._creds = credentials
        self._session = requests.Session()
        self._session.trust_env = False  # only 127.0.0.1 and the named host; no proxies
        self._verify = True
        if ca_file is not None:
            self._session.mount("https://", _TrustAdapter(_trust(ca_file)))
        self._auth: dict[str, str] = {}  # scope -> Authorization header value
        self._base = ""

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------

    def manifest(self, repo: str, reference: str) -> Manifest:
        """The manifest or index `reference` (tag or digest) of `repo`."""
        where = f"{self.host}/{repo}:{reference}"
        resp = self._request("GET", repo, f"manifests/{reference}", where, {"Accept": _ACCEPT})
        raw = _bounded(resp, where)
        self.stats.manifests += 1
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise ImageReadError(f"reading {where}: the manifest hashes to {digest[:19]}")
        media = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if media not in (*INDEX_TYPES, *MANIFEST_TYPES):
            media = _media_from(raw, where)
        return Manifest(raw, media, digest)

    def blob(self, repo: str, digest: str) -> bytes:
        """A small blob (a config), whole and checked against its digest."""
        chunks, size = [], 0
        with self.open_blob(repo, digest) as fh:
            while chunk := fh.read(_CHUNK):  # to the end: the digest is checked there
                chunks.append(chunk)
                size += len(chunk)
                if size > _MAX_DOC:
                    raise ImageReadError(f"reading {self.host}/{repo}@{digest[:19]}: too large")
        return b"".join(chunks)

    def open_blob(self, repo: str, digest: str, copy_to: Path | None = None) -> IO[bytes]:
        """A stream of blob `digest`, checked against it when read to the end. With
        `copy_to`, the bytes are also written there as they pass, and the file is kept
        only once the whole blob passed and matched its digest."""
        where = f"{self.host}/{repo}@{digest[:19]}"
        resp = self._request("GET", repo, f"blobs/{digest}", where, {}, stream=True)
        self.stats.blobs += 1
        self.stats.blob_digests.append(digest)
        return cast(IO[bytes], BlobStream(resp.raw, resp.close, digest, where, self.stats, copy_to))

    # -- writing ---------------------------------------------------------------

    def put_manifest(self, repo: str, reference: str, raw: bytes, media_type: str) -> str:
        """Store manifest or index `raw` as `reference` (a tag) of `repo`; its digest,
        checked against the one the registry answers with."""
        where = f"{self.host}/{repo}:{reference}"
        headers = {"Content-Type": media_type}
        resp = self._request(
            "PUT", repo, f"manifests/{reference}", where, headers, body=raw, push=True
        )
        resp.close()
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        answered = resp.headers.get("Docker-Content-Digest", digest)
        if answered != digest:
            raise RegistryError(f"writing {where}: the registry stored {answered[:19]}")
        return digest

    def has_blob(self, repo: str, digest: str) -> bool:
        where = f"{self.host}/{repo}@{digest[:19]}"
        try:
            self._request("HEAD", repo, f"blobs/{digest}", where, {})
        except RegistryImageNotFound:
            return False
        return True

    # -- the wire -----------------------------------------------------------------

    def _request(
        self,
        method: str,
        repo: str,
        path: str,
        where: str,
        headers: dict[str, str],
        stream: bool = False,
        body: bytes | None = None,
        push: bool = False,
    ) -> requests.Response:
        url = f"{self._root()}/v2/{repo}/{path}"
        scope = f"repository:{repo}:{'pull,push' if push else 'pull'}"
        verb = "writing" if push else "reading"
        resp = self._send(method, url, where, {**headers, **self._header(scope)}, stream, body)
        if resp.status_code == 401:
            resp.close()
            self._auth[scope] = self._answer(resp.headers.get("WWW-Authenticate", ""), scope, where)
            resp = self._send(method, url, where, {**headers, **self._header(scope)}, stream, body)
        if resp.status_code in (401, 403):
            resp.close()
            given = "the credentials from config.json" if self._creds else "no credentials"
            raise RegistryAuthRefused(f"{verb} {where}: the registry refused {given}")
        if resp.status_code == 404:
            resp.close()
            raise RegistryImageNotFound(f"{verb} {where}: {_not_found(resp)}")
        if resp.status_code >= 400:
            resp.close()
            raise RegistryError(f"{verb} {where}: the registry answered {resp.status_code}")
        return resp

    def _header(self, scope: str) -> dict[str, str]:
        value = self._auth.get(scope) or self._auth.get("*")
        return {"Authorization": value} if value else {}

    def _send(
        self,
        method: str,
        url: str,
        where: str,
        headers: Mapping[str, str],
        stream: bool,
        body: bytes | None = None,
    ) -> requests.Response:
        try:
            return self._session.request(
                method,
                url,
                headers=dict(headers),
                data=body,
                stream=stream,
                timeout=_TIMEOUT,
                verify=self._verify,
                allow_redirects=True,
            )
        except requests.exceptions.SSLError as exc:
            raise RegistryTLSError(f"reading {where}: TLS failed ({_tls_reason(exc)})") from None
        except requests.exceptions.RequestException as exc:
            raise RegistryError(f"reading {where}: {type(exc).__name__}") from None

    def _root(self) -> str:
        """`https://HOST`, or `http://HOST` for a loopback registry that speaks HTTP."""
        if self._base:
            return self._base
        try:
            self._session.get(f"https://{self.host}/v2/", timeout=_TIMEOUT, verify=self._verify)
            self._base = f"https://{self.host}"
        except requests.exceptions.SSLError as exc:
            if not _speaks_http(exc):
                raise RegistryTLSError(
                    f"connecting to {self.host}: TLS failed ({_tls_reason(exc)})"
                ) from None
            if not is_loopback(self.host):
                raise RegistryTLSError(
                    f"connecting to {self.host}: it speaks plain HTTP, which is allowed "
                    "only for loopback registries (127.0.0.1, ::1, localhost)"
                ) from None
            self._base = f"http://{self.host}"
        except requests.exceptions.RequestException as exc:
            raise RegistryError(f"connecting to {self.host}: {type(exc).__name__}") from None
        return self._base

    def _answer(self, challenge: str, scope: str, where: str) -> str:
        """The Authorization value that answers a 401's challenge (Basic or Bearer)."""
        kind = challenge.split(" ", 1)[0].lower()
        if kind == "basic":
            if self._creds is None:
                raise RegistryAuthRefused(
                    f"reading {where}: the registry wants a login and config.json has none "
                    f"for {self.host}"
                )
            return "Basic " + _basic(self._creds)
        if kind == "bearer":
            return "Bearer " + self._token(dict(_CHALLENGE.findall(challenge)), scope, where)
        raise RegistryAuthRefused(f"reading {where}: unknown auth scheme {kind!r}")

    def _token(self, params: dict[str, str], scope: str, where: str) -> str:
        realm = params.pop("realm", "")
        if not realm.startswith("https://") and not is_loopback(_host_of(realm)):
            raise RegistryTLSError(f"reading {where}: token realm is not HTTPS")
        query = {"service": params.get("service", ""), "scope": scope}
        auth = (self._creds.username, self._creds.secret) if self._creds else None
        try:
            resp = self._session.get(
                realm, params=query, auth=auth, timeout=_TIMEOUT, verify=self._verify
            )
        except requests.exceptions.SSLError as exc:
            raise RegistryTLSError(f"reading {where}: TLS failed ({_tls_reason(exc)})") from None
        except requests.exceptions.RequestException as exc:
            raise RegistryError(f"reading {where}: token: {type(exc).__name__}") from None
        if resp.status_code in (401, 403):
            given = "the credentials from config.json" if self._creds else "an anonymous login"
            raise RegistryAuthRefused(f"reading {where}: the token service refused {given}")
        try:
            doc = resp.json()
            token = str(doc.get("token") or doc.get("access_token") or "")
        except ValueError:
            token = ""
        if resp.status_code != 200 or not token:
            raise RegistryAuthRefused(f"reading {where}: the token service gave no token")
        return token


def _bounded(resp: requests.Response, where: str) -> bytes:
    data = resp.content
    if len(data) > _MAX_DOC:
        raise ImageReadError(f"reading {where}: the manifest is too large")
    return data


def _media_from(raw: bytes, where: str) -> str:
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ImageReadError(f"reading {where}: the manifest is not JSON") from None
    media = doc.get("mediaType") if isinstance(doc, dict) else None
    if isinstance(media, str) and media in (*INDEX_TYPES, *MANIFEST_TYPES):
        return media
    if isinstance(doc, dict) and "manifests" in doc:
        return OCI_INDEX
    if isinstance(doc, dict) and "layers" in doc:
        return OCI_MANIFEST
    raise ImageReadError(f"reading {where}: not an image manifest or index")


def _not_found(resp: requests.Response) -> str:
    try:
        errors = resp.json().get("errors") or []
        code = str(errors[0].get("code", "")) if errors else ""
    except (ValueError, AttributeError, IndexError):
        code = ""
    return {
        "MANIFEST_UNKNOWN": "no such tag or digest",
        "NAME_UNKNOWN": "no such repository",
        "BLOB_UNKNOWN": "no such blob",
    }.get(code, "not found")


def _basic(creds: Credentials) -> str:
    return base64.b64encode(f"{creds.username}:{creds.secret}".encode()).decode()


def _speaks_http(exc: Exception) -> bool:
    """An HTTPS attempt answered by a plain HTTP server (OpenSSL's record-layer errors)."""
    text = str(exc)
    return (
        "WRONG_VERSION_NUMBER" in text
        or "wrong version number" in text
        or ("record layer failure" in text)
    )


def _tls_reason(exc: Exception) -> str:
    text = str(exc)
    for known in ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "hostname mismatch"):
        if known in text:
            return "certificate verify failed: " + (
                "unknown certificate authority (see --registry-ca)"
                if "unable to get local issuer" in text
                or "self-signed" in text
                or "self signed" in text
                else text.split(known, 1)[1].strip(" :()'\"")[:80] or known
            )
    return type(exc).__name__


def _host_of(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


class _TrustAdapter(requests.adapters.HTTPAdapter):
    """HTTPS with the system store plus one more CA file (`--registry-ca`)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


def _trust(ca_file: Path) -> ssl.SSLContext:
    """The system CA store plus `ca_file`; an unreadable or non-PEM file is a usage error."""
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(
            f"--registry-ca {ca_file}: not a readable PEM CA file ({type(exc).__name__})"
        ) from None
    return context
