"""`slim lint`: run every check over one image into a `FindingsReport`.

Pure over an already-read image: `want_for_lint` tells the reader which files'
bytes the checks read (the account files and the secret candidates), so lint
reads an image the way `slim inspect` does, plus a few small files.
"""

from __future__ import annotations

from collections.abc import Collection

from slimmer.analyse.check import FindingFact
from slimmer.analyse.packages import is_metadata_file
from slimmer.findings import secrets
from slimmer.findings.checks import CHECKS, CONTENT_PATHS, LARGE_BYTES, Check, LintInput
from slimmer.findings.rules import RULE_IDS, FindingsReport, sort_findings
from slimmer.image.reader import Image
from slimmer.model import ImageConfig, TreeView


def want_for_lint(path: str) -> bool:
    """The reader keeps these files' bytes (besides what `slim inspect` keeps)."""
    return path in CONTENT_PATHS or secrets.is_candidate(path) or is_metadata_file(path)


def check_ignores(ignore: Collection[str]) -> tuple[str, ...]:
    """The IDs to ignore, upper-cased and sorted; ValueError names an unknown one."""
    ids = tuple(sorted({i.strip().upper() for i in ignore}))
    unknown = [i for i in ids if i not in RULE_IDS]
    if unknown:
        raise ValueError(f"unknown finding ID {', '.join(unknown)} (see docs/lint.md)")
    return ids


def lint_tree(
    ref: str,
    image_id: str,
    config: ImageConfig,
    tree: TreeView,
    *,
    tags: tuple[str, ...] = (),
    opened: frozenset[str] | None = None,
    ignore: Collection[str] = (),
    large_bytes: int = LARGE_BYTES,
    checks: tuple[Check, ...] = CHECKS,
) -> FindingsReport:
    """Every finding of every check, without the ignored IDs, sorted."""
    ignored = check_ignores(ignore)
    inp = LintInput(config, tree, tags, opened, large_bytes)
    with secrets.scanning():
        found = sort_findings(f for check in checks for f in check(inp) if f.id not in ignored)
    return FindingsReport(
        ref=ref,
        image_id=image_id,
        findings=found,
        ignored=ignored,
        traced=opened is not None,
    )


def lint_image(
    image: Image,
    *,
    tags: tuple[str, ...] = (),
    opened: frozenset[str] | None = None,
    ignore: Collection[str] = (),
    large_bytes: int = LARGE_BYTES,
) -> FindingsReport:
    """`lint_tree` over an image read with `want_for_lint`; its own tags when none
    are given (an archive's RepoTags)."""
    return lint_tree(
        str(image.ref),
        image.id,
        image.config,
        image.tree,
        tags=tags or image.repo_tags,
        opened=opened,
        ignore=ignore,
        large_bytes=large_bytes,
    )


def finding_facts(report: FindingsReport) -> tuple[FindingFact, ...]:
    """The findings as `slim check --max-findings` sees them (analyse may not import
    this room, so it gets plain severities and labels)."""
    facts = (FindingFact(f.severity.label, f"{f.id} {f.evidence}") for f in report.findings)
    return tuple(dict.fromkeys(facts))
