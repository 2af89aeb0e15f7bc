"""Formatting helpers shared by the renderers."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def human_bytes(n: int | float) -> str:
    """Decimal units, as `docker images` and dive print them (1 MB = 1,000,000 B)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def shown(text: str, keep: str = "") -> str:
    """`text` safe for a terminal or a document: a byte that was not UTF-8 (kept by the
    reader as a surrogate escape) reads `\\xff`, as it is on disk; another unprintable
    character (control, newline) reads `\\x1b`, unless it is in `keep`."""
    return "".join(c if c.isprintable() or c in keep else f"\\x{_byte(c):02x}" for c in text)


def _byte(c: str) -> int:
    code = ord(c)
    return code - 0xDC00 if 0xDC80 <= code <= 0xDCFF else code


# What would make a name markup: backslash-escaped (CommonMark escapes any ASCII
# punctuation), `<`, `>` and `&` as entities.
_MD_TEXT = str.maketrans(
    {c: "\\" + c for c in "\\`*[]~|"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
)
# `_` marks emphasis only at a word's edge (CommonMark: never between letters or digits).
_MD_EDGE_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")


def md_cell(value: object) -> str:
    """`value` as text in a GitHub Markdown table cell or list item: every
    Markdown face escapes with this. Unprintable characters and undecodable bytes as
    `shown`; a backslash doubled and `|` escaped (GitHub splits a row at every `|` with
    no backslash before it and then drops that backslash, so undoubled, the text `a\\|b`
    would read `a|b`); emphasis, code and link marks escaped, so `__init__.py` is not
    bold; `<`, `>` and `&` as entities, so a file name is never HTML."""
    return _MD_EDGE_UNDERSCORE.sub(r"\\_", shown(str(value)).translate(_MD_TEXT))


def md_html(value: object) -> str:
    """`value` inside raw HTML of a Markdown document (`<summary>`), where Markdown is
    not read and a backslash would show: as `shown`, with `<`, `>` and `&` as entities."""
    return html.escape(shown(str(value)), quote=False)


def md_code(value: object, in_table: bool = True) -> str:
    """`value` for inside a `code span` (the caller writes the backticks): as `shown`,
    a backtick as `'` (a code span cannot hold its own fence). In a table, `|` escaped:
    GitHub removes that backslash before it reads the span; elsewhere a code span has
    no escapes, so `|` stays, and so does a backslash everywhere."""
    text = shown(str(value)).replace("`", "'")
    return text.replace("|", "\\|") if in_table else text


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`1 layer`, `2 layers`, `1,234 files`: a number with its noun agreeing."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def dump_json(doc: Any) -> str:
    """The one JSON encoding of machine output: sorted keys, two-space indent."""
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=True) + "\n"


def write_json(doc: Any, path: Path) -> None:
    """`dump_json(doc)` written to `path` as it is encoded, never whole in memory (a
    report of 100k kept paths is tens of MB)."""
    with open(path, "w", encoding="ascii") as out:
        json.dump(doc, out, sort_keys=True, indent=2, ensure_ascii=True)
        out.write("\n")


Cell = str | tuple[str, ...]  # a value, or a list of names (shells, setuid files)


def compressed_cell(facts: Mapping[str, Any]) -> str:
    """An image's compressed size as every face of the slim report shows it: marked
    as an estimate when it is one (sampled, `slimmer.image.compressed`)."""
    n = facts.get("compressed_bytes")
    if n is None:
        return "not measured"
    estimated = facts.get("compressed_method") == "sampled"
    return f"{human_bytes(n)} (estimate)" if estimated else human_bytes(n)


def facts_rows(doc: Mapping[str, Any]) -> list[tuple[str, Cell, Cell]]:
    """The before/after table of a `slimmer.slim` document, as (row, before, after): the
    same rows in the Markdown and HTML reports. Empty when the run has no summary."""
    b, a = doc.get("before"), doc.get("after")
    if not b or not a:
        return []

    return [
        ("size", human_bytes(b["size_bytes"]), human_bytes(a["size_bytes"])),
        ("compressed (gzip)", compressed_cell(b), compressed_cell(a)),
        ("layers", str(b["layers"]), str(a["layers"])),
        ("files", f"{b['files']:,}", f"{a['files']:,}"),
        ("symlinks", f"{b['symlinks']:,}", f"{a['symlinks']:,}"),
        ("ELF files", f"{b['elf_files']:,}", f"{a['elf_files']:,}"),
        ("packages", str(b["packages"]), str(a["packages"])),
        ("shells", tuple(b["shells"]), tuple(a["shells"])),
        ("package managers", tuple(b["package_managers"]), tuple(a["package_managers"])),
        ("setuid files", tuple(b["setuid"]), tuple(a["setuid"])),
    ]


def context_rows(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The `context` of a slim report as (what, detail) rows for every face: env keys
    (their values masked in the document itself), mounts, delivered files, networks,
    overrides, and the paths the app opened there (left out of the image)."""
    ctx = doc.get("context")
    if not ctx:
        return []
    rows: list[tuple[str, str]] = []
    if ctx["env"]:
        rows.append(("env", ", ".join(f"{k}={v}" for k, v in sorted(ctx["env"].items()))))
    for m in ctx["mounts"]:
        source = f"{m['source']} -> " if m.get("source") else ""
        ro = " (read-only)" if m.get("read_only") else ""
        rows.append((f"{m['kind']} mount", f"{source}{m['target']}{ro}"))
    for f in ctx["files"]:
        rows.append(("file", f"{f['target']} ({f['bytes']} bytes, mode {f['mode']}, delivered)"))
    for n in ctx["networks"]:
        aliases = f" as {', '.join(n['aliases'])}" if n["aliases"] else ""
        rows.append(("network", f"{n['name']}{aliases}"))
    if ctx["extra_hosts"]:
        rows.append(("extra hosts", ", ".join(ctx["extra_hosts"])))
    for key in ("entrypoint", "cmd"):
        if key in ctx:
            rows.append((key, json.dumps(ctx[key])))
    for key, label in (("workdir", "workdir"), ("run_user", "run as"), ("ports", "ports")):
        if key in ctx:
            rows.append((label, str(ctx[key])))
    mounted = ctx.get("mounted_paths") or []
    if mounted:
        shown = ", ".join(mounted[:5]) + (
            f" and {len(mounted) - 5} more" if len(mounted) > 5 else ""
        )
        rows.append(("not kept", f"{len(mounted)} opened path(s) the context provides: {shown}"))
    return rows


def dockerfile_sizes(d: Mapping[str, Any]) -> str:
    """The size of the image the generated Dockerfile built beside the one slim wrote
    (`dockerfile` of a `slimmer.slim/v3` report; a report older than
    `direct_size_bytes` gives the built size alone)."""
    built = human_bytes(d["built_size_bytes"])
    direct = d.get("direct_size_bytes")
    if not direct:
        return built
    return f"{built}, {d['built_size_bytes'] / direct:.2f}x the {human_bytes(direct)} slim wrote"


def critical_path(phases: Sequence[Mapping[str, Any]]) -> list[float]:
    """Seconds of each phase (a `slimmer.slim` document's `phases`, in order) on the
    run's critical path. Each instant is given to the phase that ends last among those
    running then (the one the run waits for), so a phase run beside another counts
    only for the time it alone took. A phase without `start` (an older report) is
    taken to start where the one before it ended."""
    spans: list[tuple[float, float]] = []
    clock = 0.0
    for p in phases:
        start = float(p.get("start", clock))
        spans.append((start, start + float(p["seconds"])))
        clock = start + float(p["seconds"])
    cuts = sorted({t for span in spans for t in span})
    out = [0.0] * len(spans)
    for a, b in zip(cuts, cuts[1:], strict=False):
        running = [(end, i) for i, (start, end) in enumerate(spans) if start <= a and end >= b]
        if running:
            out[max(running)[1]] += b - a
    return out


def phase_bar(wall: float, critical: float, total: float, width: int = 20) -> str:
    """A phase's time as a bar of `width` cells for the run's `total`: solid for its time
    on the critical path, light for the rest of its wall time."""
    if total <= 0:
        return ""
    solid = round(width * critical / total)
    light = max(0, round(width * wall / total) - solid)
    return "█" * solid + "░" * light


def cache_line(doc: Mapping[str, Any]) -> str | None:
    """What the run took from its read cache, in words (None: it had none)."""
    c = doc.get("cache")
    if not c:
        return None
    took = [w for w, yes in (("the image read", c["image"]),
                             ("its compressed size", c["compressed_size"]),
                             ("the slim image's compressed size",
                              c.get("slim_compressed_size", False))) if yes]  # fmt: skip
    took.append(f"the imports of {c['parsed_sources']:,} Python sources")
    return f"{', '.join(took)}; {c['parsed_sources_new']:,} sources parsed and added"


# The one-table summary pages (`slim compose`'s fleet.html, a multi-platform run's
# report.html): one self-contained page, inline CSS, no request leaves it.
SUMMARY_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right}.passed{color:#2a7d2a}.failed,.error{color:#b22}code{background:#f4f4f4}"""


def summary_page(title: str, parts: Sequence[str]) -> str:
    """A summary page titled `title` (escaped here) holding the HTML `parts` that are
    not empty, one per line."""
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title, quote=True)}</title><style>{SUMMARY_STYLE}</style>"
        f"</head><body>\n{chr(10).join(p for p in parts if p)}\n</body></html>\n"
    )
