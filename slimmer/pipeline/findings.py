"""What slimming did to the handbook's findings (`slim lint`) of its input: the input
is linted from the tree the run already read; the result from the archive the run
wrote (the image as the engine holds it, base layers included), both with the
paths the traced run touched (so large files nobody opened are findings too)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from slimmer.findings.delta import FindingsDelta, compare_findings
from slimmer.findings.lint import lint_image, want_for_lint
from slimmer.image.reader import Image, open_image
from slimmer.trace.events import Trace


def opened_paths(traces: Iterable[Trace]) -> frozenset[str]:
    """Every path a traced run touched."""
    return frozenset(p for t in traces for p in t.touched())


def findings_delta(
    source: Image, output: str, archive: Path, opened: frozenset[str]
) -> FindingsDelta:
    """The findings of `source` against those of the image written to `archive` (which
    will be tagged `output`): fixed, still present, new."""
    before = lint_image(source, opened=opened)
    with open_image(f"docker-archive:{archive}", want=want_for_lint) as written:
        after = lint_image(written, tags=(output,), opened=opened)
    return replace(compare_findings(before, after), before=source.ref.name, after=output)
