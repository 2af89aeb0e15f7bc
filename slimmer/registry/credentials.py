"""Registry credentials from Docker's config.json, as the docker CLI finds them.

The file is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. For a
registry host the lookup order is the CLI's: `credHelpers[host]`, then
`credsStore`, then `auths[host]` (`auth` is base64 of `user:password`). A helper
is the program `docker-credential-NAME`, asked with `get` and the server on its
standard input; one that is not installed is skipped. Docker Hub's entry is keyed
`https://index.docker.io/v1/`.

Context is not content: a `Credentials` never shows its secret (`repr` masks it),
and no message here quotes the file's values or a helper's output.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimmer.errors import RegistryAuthRefused, UsageError
from slimmer.registry.refs import DOCKER_HUB

_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", DOCKER_HUB)


@dataclass(frozen=True)
class Credentials:
    """A user name and its secret (a password or token) for one registry."""

    username: str
    secret: str = field(repr=False)
    source: str = ""  # where they came from: "auths", "credHelpers:NAME", "credsStore:NAME"

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, secret='***', source={self.source!r})"

    def engine_auth(self) -> dict[str, str]:
        """The auth config the engine API takes for a pull or push."""
        return {"username": self.username, "password": self.secret}


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    root = env.get("DOCKER_CONFIG")
    return Path(root) / "config.json" if root else Path.home() / ".docker" / "config.json"


def lookup(host: str, env: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials config.json gives for `host` (`HOST[:PORT]`), or None."""
    doc = _load(config_path(env))
    keys = _HUB_KEYS if host in _HUB_KEYS else (host,)
    helpers = doc.get("credHelpers")
    for key in keys:
        if isinstance(helpers, dict) and isinstance(helpers.get(key), str):
            found = _from_helper(helpers[key], keys[0] if host in _HUB_KEYS else key)
            if found is not None:
                return found
    store = doc.get("credsStore")
    if isinstance(store, str) and store:
        found = _from_helper(store, keys[0] if host in _HUB_KEYS else host)
        if found is not None:
            return found
    return _from_auths(doc.get("auths"), keys)


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        # the position only, never the text around it: the file holds secrets
        raise UsageError(f"reading {path}: not a JSON document ({type(exc).__name__})") from None
    return doc if isinstance(doc, dict) else {}


def _normalise(key: str) -> str:
    """An `auths` key as a host: `https://127.0.0.1:5000/v2/` -> `127.0.0.1:5000`."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
    return key.split("/", 1)[0]


def _from_auths(auths: Any, keys: tuple[str, ...]) -> Credentials | None:
    if not isinstance(auths, dict):
        return None
    by_host = {_normalise(str(k)): v for k, v in auths.items()}
    for key in keys:
        entry = auths.get(key) or by_host.get(_normalise(key))
        if isinstance(entry, dict) and isinstance(entry.get("auth"), str) and entry["auth"]:
            return _decode(entry["auth"], key)
        if isinstance(entry, dict) and entry.get("username") and entry.get("password"):
            return Credentials(str(entry["username"]), str(entry["password"]), "auths")
    return None


def _decode(value: str, key: str) -> Credentials:
    try:
        user, sep, secret = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        sep, user, secret = "", "", ""
    if not sep or not user:
        raise UsageError(f"config.json: the auth entry of {key} is not base64 of user:password")
    return Credentials(user, secret, "auths")


def _from_helper(name: str, server: str) -> Credentials | None:
    program = shutil.which(f"docker-credential-{name}")
    if program is None:
        return None
    try:
        done = subprocess.run(
            [program, "get"], input=server.encode(), capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RegistryAuthRefused(
            f"asking docker-credential-{name} for {server}: {type(exc).__name__}"
        ) from None
    if done.returncode != 0:
        return None  # "credentials not found in native keychain": not an error
    try:
        doc = json.loads(done.stdout)
        return Credentials(str(doc["Username"]), str(doc["Secret"]), f"credHelpers:{name}")
    except (ValueError, KeyError, TypeError):
        raise RegistryAuthRefused(
            f"asking docker-credential-{name} for {server}: its answer is not the helper protocol"
        ) from None
