"""The detect-secrets boundary: the one module that imports `detect_secrets`.

Its token formats (AWS keys, private-key headers, GitHub/GitLab/Slack/Stripe/...
tokens, JWTs) and its keyword rule (`PASSWORD=`, `API_KEY=`, `secret: ...`) decide
what a secret is; slimmer keeps no regex list of its own. The high-entropy plugins
are left out on purpose: on a whole image they flag every hash and UUID.

What comes back never holds a secret's value, only its kind and `mask(value)`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from detect_secrets.core.scan import scan_line
from detect_secrets.settings import transient_settings

PLUGINS = (
    "ArtifactoryDetector",
    "AWSKeyDetector",
    "AzureStorageKeyDetector",
    "BasicAuthDetector",
    "DiscordBotTokenDetector",
    "GitHubTokenDetector",
    "GitLabTokenDetector",
    "JwtTokenDetector",
    "KeywordDetector",
    "MailchimpDetector",
    "NpmDetector",
    "OpenAIDetector",
    "PrivateKeyDetector",
    "PypiTokenDetector",
    "SendGridDetector",
    "SlackDetector",
    "SquareOAuthDetector",
    "StripeDetector",
    "TelegramBotTokenDetector",
    "TwilioKeyDetector",
)
MAX_FILE_BYTES = 256 * 1024  # a larger candidate is read up to here
MAX_LINE = 4096  # longer lines are cut (minified files, base64 blobs)

# File names that hold credentials by convention (the tools that write them).
_NAMES = frozenset(
    {
        ".env",
        ".netrc",
        ".npmrc",
        ".pypirc",
        ".git-credentials",
        ".pgpass",
        "credentials",  # ~/.aws/credentials
        "credentials.json",
        "application_default_credentials.json",  # gcloud
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
    }
)
_SUFFIXES = (".pem", ".key", ".env", ".p8")


@dataclass(frozen=True)
class SecretHit:
    """One secret seen: its kind (detect-secrets' type) and its masked value."""

    kind: str
    masked: str


def mask(value: str) -> str:
    """What a report shows of a secret: its length, never a character of it. Some
    detectors return only a token's prefix (`ghp`); a length that short says
    nothing, so it is left out."""
    return f"<masked, {len(value)} characters>" if len(value) >= 8 else "<masked>"


def is_candidate(path: str) -> bool:
    """Whether a file's name says it may hold a credential (`.env`, `*.pem`,
    `~/.aws/credentials`, `~/.ssh/id_*`, ...). Only these files' bytes are read."""
    name = posixpath.basename(path)
    if name in _NAMES or name.startswith(".env."):
        return True
    if path.startswith(("/etc/ssl/certs/", "/usr/share/ca-certificates/")):
        return False
    return name.endswith(_SUFFIXES)


_depth = [0]  # scanning() nesting: detect-secrets' settings are configured once


@contextmanager
def scanning() -> Iterator[None]:
    """detect-secrets configured with `PLUGINS` for the duration (its settings are
    global; configuring them costs milliseconds, so a whole lint run enters this once
    and the scans inside it reuse it)."""
    if _depth[0]:
        _depth[0] += 1
        try:
            yield
        finally:
            _depth[0] -= 1
        return
    with transient_settings(_settings()):
        _depth[0] = 1
        try:
            yield
        finally:
            _depth[0] = 0


def scan_env(env: Mapping[str, str]) -> dict[str, tuple[SecretHit, ...]]:
    """The secrets in ENV, by variable name: the name (`DB_PASSWORD=...`) and the
    value (`AKIA...`) are both looked at, as one `NAME="value"` line."""
    out: dict[str, tuple[SecretHit, ...]] = {}
    with scanning():
        for name, value in sorted(env.items()):
            hits = _hits(f'{name}="{value}"')
            if hits:
                out[name] = hits
    return out


def scan_lines(lines: Iterable[str]) -> tuple[SecretHit, ...]:
    """The secrets in a file's lines, each kind and masked value once, in order."""
    seen: dict[tuple[str, str], SecretHit] = {}
    with scanning():
        for line in lines:
            for hit in _hits(line[:MAX_LINE]):
                seen.setdefault((hit.kind, hit.masked), hit)
    return tuple(seen.values())


def _hits(line: str) -> tuple[SecretHit, ...]:
    if not line.strip():
        return ()
    found = {(s.type, mask(s.secret_value or "")) for s in scan_line(line)}
    return tuple(SecretHit(kind, masked) for kind, masked in sorted(found))


def _settings() -> dict[str, object]:
    return {"plugins_used": [{"name": name} for name in PLUGINS]}
