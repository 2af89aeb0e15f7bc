"""The values of `slim lint`: a `Finding` per thing an image handbook warns about.

Pure data. Every finding has a stable ID (`SLM-...`, listed in `RULES` and in
docs/lint.md), a severity, the evidence (a path in the image or a config key,
never a secret's value) and one line on how to fix it in the Dockerfile.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

SCHEMA = "slimmer.lint/v1"


class Severity(IntEnum):
    """Ordered: a gate at `medium` fails on medium, high and critical findings."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        """`low`, `medium`, `high` or `critical` (any case); ValueError otherwise."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (one of {names})") from None


@dataclass(frozen=True)
class LintRule:
    """One check: its stable ID, severity, a title and the fix line."""

    id: str
    severity: Severity
    title: str
    fix: str


@dataclass(frozen=True)
class Finding:
    """One occurrence of a rule. `evidence` is a path (`/root/.env`) or a config
    key (`config.User`); `detail` says what was seen, with secrets masked."""

    rule: LintRule
    evidence: str
    detail: str = ""

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def severity(self) -> Severity:
        return self.rule.severity

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes two findings the same one across images (delta.py)."""
        return (self.rule.id, self.evidence, self.detail)


@dataclass(frozen=True)
class FindingsReport:
    """Every finding on one image, sorted by severity (highest first), ID, evidence."""

    ref: str
    image_id: str
    findings: tuple[Finding, ...]
    ignored: tuple[str, ...] = ()
    traced: bool = False  # whether SLM-UNUSED-LARGE could run (a traced run was given)

    def at_or_above(self, severity: Severity) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity >= severity)


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(set(findings), key=lambda f: (-f.severity, f.id, f.evidence, f.detail)))


def _r(id_: str, severity: Severity, title: str, fix: str) -> LintRule:
    return LintRule(id_, severity, title, fix)


L, M, H, C = Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL
USER_ROOT = _r("SLM-USER-ROOT", M, "runs as root", "add `USER 65532` (or a named non-root user)")
HEALTHCHECK_MISSING = _r(
    "SLM-HEALTHCHECK-MISSING", L, "no HEALTHCHECK", "add `HEALTHCHECK CMD [...]` with a probe"
)
HEALTHCHECK_PROGRAM = _r(
    "SLM-HEALTHCHECK-PROGRAM",
    H,
    "HEALTHCHECK program missing from the image",
    "point HEALTHCHECK at a program the image has (or COPY it in)",
)
SECRET_ENV = _r(
    "SLM-SECRET-ENV",
    C,
    "secret in ENV",
    "remove the ENV; pass it at run time or use `RUN --mount=type=secret`",
)
SECRET_FILE = _r(
    "SLM-SECRET-FILE",
    C,
    "secret in a file",
    "do not COPY it; use `RUN --mount=type=secret` or mount it at run time",
)
BUILD_JUNK = _r(
    "SLM-BUILD-JUNK",
    L,
    "VCS, IDE or build-cache leftovers",
    "add it to .dockerignore, or delete it in the RUN that made it",
)
SHELL = _r("SLM-SHELL", L, "shell present", "use a distroless or scratch final stage")
PKG_MANAGER = _r(
    "SLM-PKG-MANAGER", L, "package manager present", "install in a build stage; copy only the app"
)
SETUID = _r("SLM-SETUID", M, "setuid or setgid file", "`RUN chmod u-s,g-s FILE` or remove it")
WORLD_WRITABLE = _r(
    "SLM-WORLD-WRITABLE",
    M,
    "world-writable file or directory",
    "`RUN chmod o-w PATH` (directories: or add the sticky bit)",
)
UID_DUPLICATE = _r(
    "SLM-UID-DUPLICATE", M, "accounts share a UID", "give each account in /etc/passwd its own UID"
)
SHADOW_EMPTY = _r(
    "SLM-SHADOW-EMPTY",
    H,
    "account with an empty password",
    "lock it: `RUN passwd -l NAME` (a `*` or `!` in /etc/shadow)",
)
LABEL_MISSING = _r(
    "SLM-LABEL-MISSING",
    L,
    "OCI label missing",
    "add `LABEL org.opencontainers.image.NAME=...` (or `docker build --label`)",
)
TAG_LATEST = _r(
    "SLM-TAG-LATEST", L, "`latest` is the only tag", "tag the image with its version or commit"
)
UNUSED_LARGE = _r(
    "SLM-UNUSED-LARGE",
    L,
    "large file the process never opened",
    "do not COPY it, or slim the image (`slim IMAGE -o OUT`)",
)

RULES: tuple[LintRule, ...] = (
    USER_ROOT,
    HEALTHCHECK_MISSING,
    HEALTHCHECK_PROGRAM,
    SECRET_ENV,
    SECRET_FILE,
    BUILD_JUNK,
    SHELL,
    PKG_MANAGER,
    SETUID,
    WORLD_WRITABLE,
    UID_DUPLICATE,
    SHADOW_EMPTY,
    LABEL_MISSING,
    TAG_LATEST,
    UNUSED_LARGE,
)
RULE_IDS = frozenset(r.id for r in RULES)
