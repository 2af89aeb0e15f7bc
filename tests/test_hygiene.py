"""The tests themselves: an assert must be able to fail.

`assert a == b if c else "x"` parses as `assert (a == b) if c else "x"`: when `c` is
false it asserts the non-empty string "x" and passes whatever `a` is. No ruff rule
catches a conditional expression at the top of an assert (PLW0129 sees only a bare
literal), so this test walks every test file's syntax tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SOURCES = sorted(p for d in (TESTS, TESTS.parent / "bench") for p in d.rglob("*.py"))


def unfailing_asserts(source: str) -> list[int]:
    """Lines of asserts whose condition is a constant or a conditional expression
    (write the condition out, or parenthesise the compared value)."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Assert) and isinstance(node.test, ast.IfExp | ast.Constant)
    ]


def test_the_check_finds_the_pattern_and_lets_a_parenthesised_value_pass() -> None:
    bad = 'assert a == b if c else "x"\nassert "x"\n'
    good = 'assert a == (b if c else "x")\nassert a == b or not c\n'
    assert unfailing_asserts(bad) == [1, 2]
    assert unfailing_asserts(good) == []


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(TESTS.parent)) for p in SOURCES])
def test_every_assert_can_fail(path: Path) -> None:
    lines = unfailing_asserts(path.read_text())
    assert not lines, f"{path.name}: asserts that cannot fail on lines {lines}"
