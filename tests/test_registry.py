"""Unit tier of slimmer.registry: references, platforms, config.json credentials (with a
real credential-helper program on PATH), and the client's rules that need no registry:
plain HTTP refused off loopback, a blob checked against its digest, a secret never shown."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from slimmer.errors import (
    ExitStatus,
    ImageReadError,
    RegistryAuthRefused,
    RegistryError,
    RegistryImageNotFound,
    RegistryTLSError,
    UsageError,
)
from slimmer.image.platforms import Platform, choose, parse_platform
from slimmer.image.reader import parse_ref
from slimmer.registry.blobs import BlobStream, FetchStats
from slimmer.registry.client import OCI_MANIFEST, RegistryClient
from slimmer.registry.credentials import Credentials, lookup
from slimmer.registry.refs import is_loopback, parse_registry_ref
from slimmer.registry.transfer import PullPolicy, ensure_pulled


@pytest.mark.parametrize(
    ("text", "host", "repo", "reference"),
    [
        ("debian:12", "registry-1.docker.io", "library/debian", "12"),
        ("org/app", "registry-1.docker.io", "org/app", "latest"),
        ("127.0.0.1:5000/x:1", "127.0.0.1:5000", "x", "1"),
        ("localhost/a/b", "localhost", "a/b", "latest"),
        ("ghcr.io/o/a@sha256:" + "ab" * 32, "ghcr.io", "o/a", "sha256:" + "ab" * 32),
        ("[::1]:5000/x:2", "[::1]:5000", "x", "2"),
    ],
)
def test_references_read_as_docker_reads_them(
    text: str, host: str, repo: str, reference: str
) -> None:
    ref = parse_registry_ref(text)
    assert (ref.host, ref.repository, ref.reference) == (host, repo, reference)


@pytest.mark.parametrize("text", ["x:1@sha256:12", "Upper/Case:1", "127.0.0.1:5000/x:bad tag"])
def test_malformed_references_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_registry_ref(text)


def test_the_registry_transport_is_parsed() -> None:
    ref = parse_ref("registry:127.0.0.1:5000/x:1")
    assert (ref.transport, ref.name, str(ref)) == (
        "registry",
        "127.0.0.1:5000/x:1",
        "registry:127.0.0.1:5000/x:1",
    )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1:5000", True),
        ("127.8.9.1", True),
        ("[::1]:5000", True),
        ("localhost:80", True),
        ("10.0.0.1:5000", False),
        ("registry.example:5000", False),
        ("localhost.example", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


INDEX = [
    {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "amd64"}},
    {"digest": "sha256:b", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    {"digest": "sha256:c", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
]


@pytest.mark.parametrize(
    ("want", "digest"),
    [("linux/amd64", "sha256:a"), ("linux/arm64", "sha256:b"), ("linux/arm64/v8", "sha256:b")],
)
def test_a_platform_is_chosen_from_an_index(want: str, digest: str) -> None:
    assert choose(INDEX, parse_platform(want), "x")["digest"] == digest


def test_a_platform_the_index_lacks_is_not_found_naming_what_is_there() -> None:
    with pytest.raises(RegistryImageNotFound) as err:
        choose(INDEX, Platform("linux", "arm", "v6"), "x", RegistryImageNotFound)
    assert "linux/arm/v6" in err.value.message and "linux/arm64/v8" in err.value.message
    assert err.value.exit_code == ExitStatus.NOT_FOUND
    with pytest.raises(UsageError):
        parse_platform("amd64")


# -- credentials -----------------------------------------------------------------------


def _config(tmp_path: Path, doc: dict[str, Any]) -> dict[str, str]:
    (tmp_path / "config.json").write_text(json.dumps(doc))
    return {"DOCKER_CONFIG": str(tmp_path)}


def test_auths_are_base64_user_password_and_keys_may_be_urls(tmp_path: Path) -> None:
    auth = base64.b64encode(b"alice:pa:ss").decode()
    env = _config(tmp_path, {"auths": {"https://127.0.0.1:5000/v2/": {"auth": auth}}})
    creds = lookup("127.0.0.1:5000", env)
    assert creds is not None and (creds.username, creds.secret) == ("alice", "pa:ss")
    assert lookup("127.0.0.1:5001", env) is None
    assert "pa:ss" not in repr(creds) and "pa:ss" not in str(creds)


def test_docker_hub_is_keyed_as_the_cli_keys_it(tmp_path: Path) -> None:
    auth = base64.b64encode(b"bob:hub").decode()
    env = _config(tmp_path, {"auths": {"https://index.docker.io/v1/": {"auth": auth}}})
    creds = lookup(parse_registry_ref("debian:12").host, env)
    assert creds is not None and creds.username == "bob"


def test_a_bad_auth_entry_is_refused_without_quoting_it(tmp_path: Path) -> None:
    env = _config(tmp_path, {"auths": {"h:1": {"auth": "bm8tY29sb24tc2VjcmV0"}}})  # no-colon…
    with pytest.raises(UsageError) as err:
        lookup("h:1", env)
    assert "bm8tY29sb24tc2VjcmV0" not in err.value.message
    assert "no-colon" not in err.value.message


def _helper(bin_dir: Path, name: str, answer: dict[str, str] | None) -> None:
    """A real `docker-credential-NAME` program speaking the helper protocol."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    body = f"echo '{json.dumps(answer)}'" if answer else "echo 'not found' >&2; exit 1"
    script.write_text(f'#!/bin/sh\n[ "$1" = get ] || exit 2\nread server\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_cred_helpers_and_creds_store_come_before_auths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bins = tmp_path / "bin"
    _helper(bins, "pass", {"ServerURL": "h:1", "Username": "helper-user", "Secret": "s1"})
    _helper(bins, "store", {"ServerURL": "x", "Username": "store-user", "Secret": "s2"})
    _helper(bins, "empty", None)
    monkeypatch.setenv("PATH", f"{bins}{os.pathsep}{os.environ['PATH']}")
    auth = base64.b64encode(b"file-user:s3").decode()
    doc = {"credHelpers": {"h:1": "pass"}, "credsStore": "store", "auths": {"h:3": {"auth": auth}}}
    env = _config(tmp_path, doc)
    first = lookup("h:1", env)
    second = lookup("h:2", env)
    assert first is not None and (first.username, first.source) == (
        "helper-user",
        "credHelpers:pass",
    )
    assert second is not None and second.username == "store-user"
    env = _config(tmp_path, {"credsStore": "empty", "auths": {"h:3": {"auth": auth}}})
    third = lookup("h:3", env)
    assert third is not None and third.username == "file-user"  # the helper had none
    env = _config(tmp_path, {"credsStore": "not-installed", "auths": {"h:3": {"auth": auth}}})
    fourth = lookup("h:3", env)
    assert fourth is not None and fourth.username == "file-user"


# -- the client --------------------------------------------------------------------------


class _Answers(requests.Session):
    """A session whose HTTPS GET of /v2/ raises `error` (what requests raises when the
    server speaks plain HTTP, or its certificate fails)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def get(self, url: str | bytes, **kw: Any) -> requests.Response:  # type: ignore[override]
        raise self.error


WRONG_VERSION = requests.exceptions.SSLError(
    "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)"
)


def test_plain_http_is_refused_off_loopback() -> None:
    client = RegistryClient("registry.example:5000")
    client._session = _Answers(WRONG_VERSION)
    with pytest.raises(RegistryTLSError) as err:
        client.manifest("x", "1")
    assert "only for loopback" in err.value.message
    assert err.value.exit_code == ExitStatus.TLS
    local = RegistryClient("127.0.0.1:5000")
    local._session = _Answers(WRONG_VERSION)
    assert local._root() == "http://127.0.0.1:5000"


def test_an_untrusted_certificate_is_a_tls_error_even_on_loopback() -> None:
    client = RegistryClient("127.0.0.1:5000")
    client._session = _Answers(
        requests.exceptions.SSLError(
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
            "unable to get local issuer certificate"
        )
    )
    with pytest.raises(RegistryTLSError) as err:
        client.manifest("x", "1")
    assert "--registry-ca" in err.value.message


def test_a_login_is_asked_for_only_with_credentials() -> None:
    client = RegistryClient("127.0.0.1:5000")
    with pytest.raises(RegistryAuthRefused) as err:
        client._answer('Basic realm="r"', "repository:x:pull", "x")
    assert err.value.exit_code == ExitStatus.AUTH
    secret = "hunter2-secret"
    given = RegistryClient("127.0.0.1:5000", Credentials("u", secret))
    value = given._answer('Basic realm="r"', "repository:x:pull", "x")
    assert value == "Basic " + base64.b64encode(f"u:{secret}".encode()).decode()


def _stream(data: bytes, digest: str) -> BlobStream:
    return BlobStream(io.BytesIO(data), lambda: None, digest, "x", FetchStats())


def test_a_blob_is_checked_against_its_digest_and_can_peek_its_head() -> None:
    data = bytes(range(256)) * 1000
    good = _stream(data, "sha256:" + hashlib.sha256(data).hexdigest())
    assert good.read(4) == data[:4]
    assert good.seek(0) == 0 and good.tell() == 0
    assert good.read() == data
    bad = _stream(data, "sha256:" + "0" * 64)
    with pytest.raises(ImageReadError, match="hashes to"):
        bad.read()


def test_slim_refuses_a_registry_transport_before_any_engine_is_needed() -> None:
    from slimmer import api
    from slimmer.pipeline.slim import SlimOptions

    with pytest.raises(UsageError, match="without 'registry:'"):
        api.slim("registry:127.0.0.1:1/x:1", SlimOptions(output="x:slim"))


# -- bearer tokens, over real HTTP on 127.0.0.1 -----------------------------------------


class _TokenRegistry(BaseHTTPRequestHandler):
    """A registry that wants a bearer token (as Docker Hub and GHCR do): /v2/ answers
    401 with a challenge naming /token; /token gives a token for the right basic
    login; a manifest GET with that token gets the manifest."""

    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode()
    seen: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        host = self.headers["Host"]
        self.seen.append(self.path)
        if self.path.startswith("/token"):
            good = "Basic " + base64.b64encode(b"u:tok-secret").decode()
            if self.headers.get("Authorization") != good or "scope=repository%3Ax%3Apull" not in (
                self.path
            ):
                return self._send(401)
            return self._send(200, json.dumps({"token": "T0KEN"}).encode())
        if self.headers.get("Authorization") != "Bearer T0KEN":
            challenge = f'Bearer realm="http://{host}/token",service="reg"'
            return self._send(401, b"{}", {"WWW-Authenticate": challenge})
        if self.path == "/v2/x/manifests/1":
            return self._send(200, self.manifest, {"Content-Type": OCI_MANIFEST})
        return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')


@pytest.fixture
def token_registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_bearer_token_is_fetched_with_the_login_and_used(token_registry: str) -> None:
    with RegistryClient(token_registry, Credentials("u", "tok-secret")) as client:
        found = client.manifest("x", "1")
        assert found.raw == _TokenRegistry.manifest and found.media_type == OCI_MANIFEST
        with pytest.raises(RegistryImageNotFound, match="no such tag"):
            client.manifest("x", "2")
    with RegistryClient(token_registry, Credentials("u", "wrong")) as client:
        with pytest.raises(RegistryAuthRefused) as err:
            client.manifest("x", "1")
        assert "wrong" not in err.value.message and "tok-secret" not in err.value.message


class _Unpullable:
    """An engine without the image whose pull fails as the engine says it when no
    registry answers."""

    def image_exists(self, ref: str) -> bool:
        return False

    def pull_image(self, ref: str, auth: object, platform: str | None) -> None:
        raise RegistryError(f'pulling {ref}: Get "https://{ref.split("/")[0]}/v2/": no such host')

    def push_image(self, ref: str, auth: object) -> str:
        raise AssertionError("never pushed")


def test_a_missing_image_that_cannot_be_pulled_says_both(tmp_path: Path) -> None:
    """With --pull missing, an unknown name may just be a typo of a local image: the
    error says it is not on the engine, then why the pull failed, in one line."""
    ref = "127.0.0.1:9/team/api:1"  # nothing listens on port 9: the diagnosis fails fast
    env = {"DOCKER_CONFIG": str(tmp_path)}
    with pytest.raises(RegistryError) as missing:
        ensure_pulled(_Unpullable(), ref, PullPolicy.MISSING, env)  # type: ignore[arg-type]
    assert str(missing.value) == (
        f"{ref}: no such image on the engine, and pulling it failed: "
        'Get "https://127.0.0.1:9/v2/": no such host'
    )
    with pytest.raises(RegistryError) as always:
        ensure_pulled(_Unpullable(), ref, PullPolicy.ALWAYS, env)  # type: ignore[arg-type]
    assert str(always.value).startswith(f"pulling {ref}: ")
