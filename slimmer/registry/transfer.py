"""Pulling and pushing through the engine, with credentials from Docker's config.json.

`slim IMAGE` pulls an image the engine does not have (`--pull missing`, the
default), always (`--pull always`) or never (`--pull never`: a missing image is
the source stage's "no such image"); `--push` pushes the output tag once it
verified. The engine moves the bytes; slimmer only hands it the login.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol

from slimmer.errors import RegistryError
from slimmer.registry.client import RegistryClient
from slimmer.registry.credentials import lookup
from slimmer.registry.refs import parse_registry_ref

CERTS_D = Path("/etc/docker/certs.d")  # where dockerd finds a registry's CA


class PullPolicy(Enum):
    ALWAYS = "always"
    MISSING = "missing"
    NEVER = "never"


@dataclass(frozen=True)
class Transfers:
    """`--pull` and `--push` of `slim IMAGE`."""

    pull: PullPolicy = PullPolicy.MISSING
    push: bool = False


NO_TRANSFERS = Transfers()  # pull what the engine lacks; push nothing


class PullPushEngine(Protocol):
    """What pulling and pushing need of an engine (slimmer.engine.Engine has it)."""

    def image_exists(self, ref: str) -> bool: ...

    def pull_image(
        self, ref: str, auth: Mapping[str, str] | None = None, platform: str | None = None
    ) -> None: ...

    def push_image(self, ref: str, auth: Mapping[str, str] | None = None) -> str: ...


def ensure_pulled(
    engine: PullPushEngine,
    ref: str,
    policy: PullPolicy,
    env: Mapping[str, str] | None = None,
    platform: str | None = None,
) -> bool:
    """Pull `ref` when `policy` says so; True when it was pulled."""
    if policy is PullPolicy.NEVER:
        return False
    if policy is PullPolicy.MISSING and engine.image_exists(ref):
        return False
    try:
        engine.pull_image(ref, _auth(ref, env), platform)
    except RegistryError as exc:
        why = exc if type(exc) is not RegistryError else (_diagnose(ref, env) or exc)
        if policy is PullPolicy.MISSING:  # the user may only have mistyped a local name
            reason = why.message.removeprefix(f"pulling {ref}: ")
            raise type(why)(
                f"{ref}: no such image on the engine, and pulling it failed: {reason}"
            ) from None
        raise why from None
    return True


def _diagnose(ref: str, env: Mapping[str, str] | None) -> RegistryError | None:
    """Why a pull the engine failed vaguely failed, asked of the registry itself.

    The engine speaks to a loopback registry as an insecure one: after HTTPS fails
    (a 401 included) it retries in plain HTTP, and reports only that retry's error
    ("connection reset by peer" from a TLS port). Our own client, with the same login
    and the CA the engine trusts for that host (/etc/docker/certs.d/HOST/ca.crt),
    tells an unknown image (8), a refused login (9) and TLS (10) apart."""
    parsed = parse_registry_ref(ref)
    client = client_as_engine(parsed.host, env)
    try:
        client.manifest(parsed.repository, parsed.reference)
    except RegistryError as exc:
        return exc if type(exc) is not RegistryError else None
    finally:
        client.close()
    return None


def client_as_engine(
    host: str, env: Mapping[str, str] | None = None, ca_file: Path | None = None
) -> RegistryClient:
    """A client for `host` with the login the engine is given (config.json) and the CA
    the engine trusts for it (/etc/docker/certs.d/HOST/ca.crt), or `ca_file`."""
    ca = CERTS_D / host / "ca.crt"
    trust = ca_file or (ca if ca.is_file() else None)
    return RegistryClient(host, lookup(host, env), trust)


def push(engine: PullPushEngine, ref: str, env: Mapping[str, str] | None = None) -> str:
    """Push `ref` to its registry; the pushed manifest's digest."""
    return engine.push_image(ref, _auth(ref, env))


def _auth(ref: str, env: Mapping[str, str] | None) -> dict[str, str] | None:
    creds = lookup(parse_registry_ref(ref).host, env)
    return creds.engine_auth() if creds is not None else None
