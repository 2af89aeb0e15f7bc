"""What slimming did to the handbook's findings (`slim lint`) of its input: the input
is linted from the tree the run already read; the result from the archive the run
wrote (the image as the engine holds it, base layers included), both with the
paths the traced run touched (so large files nobody opened are findings too)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from slimmer.findings.delta import FindingsDelta, compare_findings
from slimmer.findings.lint import lint_image
from slimmer.image.reader import Image
from slimmer.trace.events import Trace


def opened_paths(traces: Iterable[Trace]) -> frozenset[str]:
    """Every path a traced run touched."""
    return frozenset(p for t in traces for p in t.touched())


def findings_delta(
    source: Image, output: str, written: Image, opened: frozenset[str]
) -> FindingsDelta:
    """The findings of `source` against those of the image `written` (its archive read
    back with `want_for_lint`; it will be tagged `output`): fixed, still present, new."""
    before = lint_image(source, opened=opened)
    after = lint_image(written, tags=(output,), opened=opened)
    return replace(compare_findings(before, after), before=source.ref.name, after=output)
