"""Markdown escaping, once for every face (report/common.md_cell and md_code), checked
by rendering with markdown-it-py's GFM tables, which split a row and unescape `\\|`
as GitHub does. The inputs are where the four former copies disagreed: a backslash
before `|` (one copy doubled backslashes), `<` (two wrote raw HTML), a newline (two
made it a space, two `\\x0a`), a byte that is not UTF-8 (one wrote `\\xdcff`, two
passed a lone surrogate that cannot be encoded)."""

from __future__ import annotations

import html
import json
from dataclasses import replace
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from slimmer.analyse.check import Forbid, evaluate
from slimmer.findings.rules import RULES, Finding, FindingsReport
from slimmer.report import check_view, diff_view, lint_view, slim_md, slim_view
from slimmer.report.common import dump_json, md_cell, md_code
from tests.synth import M
from tests.test_check import facts
from tests.test_diff import BASE, diff_of
from tests.test_slim_report import result

GFM = MarkdownIt("commonmark").enable("table")

# (text, what a reader sees): undecodable bytes and control characters as \xNN.
CASES = [
    ("a|b", "a|b"),
    ("a\\|b", "a\\|b"),
    ("C:\\dir\\", "C:\\dir\\"),
    ("<b>bold</b> & co", "<b>bold</b> & co"),
    ("two\nlines", "two\\x0alines"),
    ("bad\udcffname", "bad\\xffname"),
    ("esc\x1b[31m", "esc\\x1b[31m"),
    ("*not* _emphasis_?", "*not* _emphasis_?"),
    ("__init__.py", "__init__.py"),
    ("DATABASE_URL", "DATABASE_URL"),
]


def _cells(markdown: str) -> list[list[str]]:
    """Every table row of `markdown` as GitHub renders it: its cells' inner HTML."""
    rows = []
    for tr in GFM.render(markdown).split("<tr>")[1:]:
        cells = tr.split("</tr>")[0].split("<td")[1:] + tr.split("</tr>")[0].split("<th")[1:]
        rows.append([c.split(">", 1)[1].rsplit("</t", 1)[0] for c in cells])
    return rows


def _one_cell(cell: str) -> str:
    [row] = _cells(f"| h |\n|---|\n| {cell} |\n")[1:]
    assert len(row) == 1, row
    return row[0]


@pytest.mark.parametrize(("text", "seen"), CASES)
def test_a_cell_reads_as_its_text(text: str, seen: str) -> None:
    rendered = _one_cell(md_cell(text))
    assert "<b>" not in rendered and "<em>" not in rendered and "<strong>" not in rendered
    assert html.unescape(rendered) == seen
    md_cell(text).encode("utf-8")


@pytest.mark.parametrize(("text", "seen"), [*CASES, ("a`b", "a'b")])
def test_a_code_span_reads_as_its_text_in_a_table_and_outside(text: str, seen: str) -> None:
    seen = seen.replace("`", "'")
    in_table = _one_cell(f"`{md_code(text)}`")
    assert in_table.startswith("<code>") and html.unescape(in_table[6:-7]) == seen
    outside = GFM.render(f"- `{md_code(text, in_table=False)}`\n")
    assert html.unescape(outside.split("<code>")[1].split("</code>")[0]) == seen


NAME = "/srv/a|b\\c<i>\udcff"
SEEN = "/srv/a|b\\c<i>\\xff"


def _seen_in_a_row(markdown: str) -> bool:
    return any(SEEN in html.unescape(c) for row in _cells(markdown) for c in row)


def test_check_face() -> None:
    res = evaluate([Forbid("/srv/*")], replace(facts(), paths=(NAME,)))
    md = check_view.to_markdown(res)
    page = GFM.render(md)
    assert f"<li><code>{SEEN}</code></li>" in html.unescape(page)
    assert "<summary>forbid:/srv/*: 1 path</summary>" in page


def test_lint_face() -> None:
    finding = Finding(RULES[0], NAME, detail=NAME)
    md = lint_view.to_markdown(FindingsReport("app:1", "sha256:" + "a" * 64, (finding,)))
    rows = [r for r in _cells(md) if len(r) == 5]
    assert [html.unescape(c) for c in rows[-1][2:4]] == [f"<code>{SEEN}</code>", SEEN]


def test_slim_report_face() -> None:
    doc = json.loads(dump_json(slim_view.to_json(result(True))))
    doc["kept"][0]["path"] = NAME
    assert _seen_in_a_row(slim_md.render(doc))


def test_diff_face(tmp_path: Path) -> None:
    d = diff_of(tmp_path, BASE, [*BASE, M("srv/", "dir"), M(NAME[1:], data=b"x" * 9)], {}, {})
    md = diff_view.to_markdown(d)
    assert f"<code>{SEEN}</code>" in html.unescape(GFM.render(md))
