"""`slim report FILE`: a saved report.json rendered again; the report files of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from slimmer.cli.console import console
from slimmer.cli.params import format_option
from slimmer.report.common import dump_json, write_json


def write_reports(doc: dict[str, Any], report_dir: Path) -> Path:
    """report.json, report.md and report.html in `report_dir`; the JSON's path."""
    from slimmer.report import slim_html, slim_md

    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.md").write_text(_utf8(slim_md.render(doc)))
    (report_dir / "report.html").write_text(_utf8(slim_html.render(doc)))
    path = report_dir / "report.json"
    write_json(doc, path)
    return path


def write_index_reports(doc: dict[str, Any], report_dir: Path) -> Path:
    """A multi-platform run's combined report.json, report.md and report.html."""
    from slimmer.report import platforms_html, platforms_md

    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.md").write_text(_utf8(platforms_md.render(doc)))
    (report_dir / "report.html").write_text(_utf8(platforms_html.render(doc)))
    path = report_dir / "report.json"
    write_json(doc, path)
    return path


@click.command("report")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@format_option(("text", "json", "md", "html"), "What to render the saved report as.")
def report_command(file: Path, fmt: str) -> None:
    """Render a saved report.json again: text, json, md or html (a slim run's, or a
    multi-platform run's combined one)."""
    from slimmer import api
    from slimmer.model import SLIM_SCHEMA
    from slimmer.report import (
        platforms_html,
        platforms_md,
        platforms_view,
        slim_html,
        slim_md,
        slim_view,
    )

    doc = api.load_slim_report(file, (SLIM_SCHEMA, platforms_view.SCHEMA))
    if doc["schema"] == platforms_view.SCHEMA:  # a multi-platform run's combined report
        text, md, page = platforms_view.render, platforms_md.render, platforms_html.render
    else:
        text, md, page = slim_view.render, slim_md.render, slim_html.render
    if fmt == "text":
        console().print(text(doc, str(file)))
    else:
        render = {"json": dump_json, "md": md, "html": page}[fmt]
        click.echo(_utf8(render(doc)), nl=False)


def _utf8(text: str) -> str:
    """`text` with the bytes of names that are not UTF-8 (kept by the reader as lone
    surrogates) shown as `\\udcXX` escapes: Markdown and HTML must be valid UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
