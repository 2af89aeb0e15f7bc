"""Render a `SlimResult`: the one-screen terminal summary and `report.json`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from slimmer import __version__
from slimmer.model import SLIM_SCHEMA
from slimmer.pipeline.slim import SlimResult
from slimmer.pipeline.summary import ImageFacts
from slimmer.plan.keep import KeepSet, Reason
from slimmer.report import seccomp_view
from slimmer.report.common import (
    cache_line,
    compressed_cell,
    context_rows,
    dockerfile_sizes,
    human_bytes,
)
from slimmer.report.lint_view import delta_to_json
from slimmer.trace.probes import ProbeResult


def to_json(r: SlimResult) -> dict[str, Any]:
    """The `slimmer.slim/v3` document (docs/schemas/slim-v3.json): every face of the
    report (terminal, Markdown, HTML, `slim report`) is rendered from it."""
    return {
        "schema": SLIM_SCHEMA,
        "slimmer_version": __version__,
        **({"engine": r.engine} if r.engine else {}),
        "source": {
            "ref": r.source_ref,
            "id": r.source_id,
            "size_bytes": r.before_bytes,
            "files": r.before_files,
        },
        "result": {
            "ref": r.output,
            "id": r.image_id,
            "tagged": r.tagged,
            "size_bytes": r.after_bytes,
            "files": r.after_files,
            "reduction": round(r.reduction, 3),
        },
        "verification": {
            "status": {None: "skipped", True: "passed", False: "failed"}[r.verified],
            "rounds": [
                {
                    "round": rd.number,
                    "image_id": rd.image_id,
                    "files": rd.files,
                    "differences": [d.describe() for d in rd.diffs],
                    "added_paths": [{"path": m.path, "looked_up_by": m.by} for m in rd.added],
                }
                for rd in r.rounds
            ],
            "probes": [_probe(a, b) for a, b in _pairs(r.original_results, r.slim_results)],
        },
        "phases": _phases(r),
        "bytes_by_reason": dict(sorted(r.bytes_by_reason.items())),
        "kept": keep_json(r.keep, r.summary.kept_sizes if r.summary else {}),
        "warnings": list(r.warnings),
        "base": _base_json(r),
        "user": None
        if r.user is None
        else {"user": r.user, "owned": list(r.owned), "denied": list(r.denied)},
        "dockerfile": _dockerfile_json(r),
        **_summary_json(r),
        "options": _options_json(r),
        "findings": delta_to_json(r.findings) if r.findings is not None else None,
        **_context_json(r),
        **({"seccomp": seccomp_view.to_json(r.seccomp)} if r.seccomp is not None else {}),
        **_cache_json(r),
    }


def _cache_json(r: SlimResult) -> dict[str, Any]:
    """`cache`, only when the run had a read cache: what came from it."""
    if r.cache is None:
        return {}
    c = r.cache
    return {
        "cache": {
            "image": c.image,
            "compressed_size": c.compressed,
            "slim_compressed_size": c.slim_compressed,
            "parsed_sources": c.parsed,
            "parsed_sources_new": c.parsed_new,
        }
    }


def _context_json(r: SlimResult) -> dict[str, Any]:
    """`context`, only when the run was given one: keys, targets and names, never a
    value (`RunContext.describe`), and the opened paths it provided."""
    o = r.options
    if o is None or o.context.empty:
        return {}
    return {"context": {**o.context.describe(), "mounted_paths": list(r.mounted)}}


def _phases(r: SlimResult) -> list[dict[str, Any]]:
    peaks = dict(r.peaks)
    out = [{"name": n, "seconds": round(s, 3), "peak_rss_bytes": peaks.get(n)} for n, s in r.phases]
    if len(r.starts) == len(out):
        for phase, start in zip(out, r.starts, strict=True):
            phase["start"] = round(start, 3)
    return out


def _facts(f: ImageFacts) -> dict[str, Any]:
    return {
        "size_bytes": f.size_bytes,
        "compressed_bytes": f.compressed_bytes,
        "compressed_method": f.compressed_method,
        "layers": f.layers,
        "files": f.files,
        "symlinks": f.symlinks,
        "elf_files": f.elf_files,
        "packages": f.packages,
        "shells": list(f.shells),
        "package_managers": list(f.package_managers),
        "setuid": list(f.setuid),
    }


def _summary_json(r: SlimResult) -> dict[str, Any]:
    s = r.summary
    if s is None:
        return {"before": None, "after": None, "files_by_reason": {}, "removed": None,
                "packages": [], "dirs": []}  # fmt: skip
    return {
        "before": _facts(s.before),
        "after": _facts(s.after),
        "files_by_reason": dict(s.files_by_reason),
        "removed": {
            "largest_dirs": [
                {"path": d.path, "bytes": d.bytes, "files": d.files} for d in s.removed_dirs
            ],
            "largest_files": [{"path": f.path, "bytes": f.bytes} for f in s.removed_files],
        },
        "dirs": [
            {"path": d.path, "before": d.before, "after": d.after, "by_reason": dict(d.by_reason)}
            for d in s.dirs
        ],
        "packages": [
            {
                "manager": p.manager,
                "name": p.name,
                "version": p.version,
                "status": p.status,
                "kept_files": p.kept_files,
                "files": p.files,
            }
            for p in s.packages
        ],  # fmt: skip
    }


def _options_json(r: SlimResult) -> dict[str, Any]:
    o = r.options
    if o is None:
        return {}
    return {
        "probes": len(o.probes),
        "timeout": o.timeout,
        "verify": o.verify,
        "force": o.force,
        "base": o.base,
        "user": o.user,
        "dockerfile": str(o.dockerfile) if o.dockerfile else None,
        "include": list(o.rules.include),
        "include_bin": list(o.rules.include_bin),
        "exclude": list(o.rules.exclude),
        "profiles_forced": sorted(o.profiles_forced),
        "profiles_disabled": sorted(o.profiles_disabled),
    }


def _base_json(r: SlimResult) -> dict[str, Any] | None:
    if r.on_base is None:
        return None
    b, layer = r.on_base.choice, r.on_base.layer
    return {
        "spec": b.spec,
        "ref": b.ref,
        "id": b.image_id,
        "digest": b.digest,
        "flavour": b.flavour,
        "why": b.why,
        "app_layer_bytes": r.on_base.app_layer_bytes,
        "app_layer_entries": r.on_base.app_files,
        "left_to_base": {"paths": layer.identical, "bytes": layer.identical_bytes},
        "decisions": [
            {"path": d.path, "action": d.action, "detail": d.detail} for d in layer.decisions
        ],
    }


def _dockerfile_json(r: SlimResult) -> dict[str, Any] | None:
    d = r.dockerfile
    if d is None:
        return None
    return {
        "path": str(d.path),
        "copies": d.copies,
        "exact_bytes": d.exact_bytes,
        "coarse_bytes": d.copied_bytes,
        "built_size_bytes": d.size_bytes,
        "direct_size_bytes": d.direct_bytes,
        "verification": "passed" if d.verified else "failed",
        "differences": [x.describe() for x in d.diffs],
    }


def _pairs(
    a: tuple[ProbeResult, ...], b: tuple[ProbeResult, ...]
) -> list[tuple[ProbeResult, ProbeResult | None]]:
    return [(x, b[i] if i < len(b) else None) for i, x in enumerate(a)]


def _probe(a: ProbeResult, b: ProbeResult | None) -> dict[str, Any]:
    return {
        "probe": a.probe.label,
        "original": {"ok": a.ok, "code": a.code, "output_bytes": len(a.output)},
        "slim": None if b is None else {"ok": b.ok, "code": b.code, "output_bytes": len(b.output)},
        "same": None if b is None else a.observable() == b.observable(),
    }


def keep_json(keep: KeepSet, sizes: Mapping[str, int]) -> list[dict[str, Any]]:
    # one dict per distinct reason, shared by its paths: a profile that keeps a whole
    # directory gives the same reason to every file below it
    shared: dict[Reason, dict[str, str]] = {}

    def said(x: Reason) -> dict[str, str]:
        return shared.setdefault(x, {"kind": x.kind, "detail": x.detail, "source": x.source})

    return [
        {
            "path": p,
            "size_bytes": sizes.get(p, 0),
            "reasons": [said(x) for x in keep.reasons[p]],
        }
        for p in sorted(keep.reasons)
    ] + [
        {
            "path": g.path,
            "size_bytes": len(g.data),
            "reasons": [
                {"kind": g.reason.kind, "detail": g.reason.detail, "source": g.reason.source}
            ],
            "generated": True,
        }
        for g in keep.generated
    ]


def explain(keep: KeepSet, path: str) -> str:
    """Why `path` is (or is not) in the slim image."""
    if path in keep.reasons:
        lines = [f"{path} is kept:"]
        lines += [
            f"  - {x.kind}{f' ({x.source})' if x.source else ''}: {x.detail}"
            for x in keep.reasons[path]
        ]
        return "\n".join(lines)
    gen = next((g for g in keep.generated if g.path == path), None)
    if gen is not None:
        return f"{path} is generated: {gen.reason.detail}"
    return f"{path} is not kept: no trace, config, closure, profile or user rule names it"


def render(doc: Mapping[str, Any], report: str | None = None) -> RenderableType:
    """The one-screen terminal summary of a `slimmer.slim/v3` document. `report` names
    where report.json was written (None: say how to get one)."""
    v, src, res = doc["verification"], doc["source"], doc["result"]
    status = {"skipped": "[yellow]skipped (--no-verify)[/]", "passed": "[green]passed[/]",
              "failed": "[red]FAILED[/]"}[v["status"]]  # fmt: skip
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    t.add_row("Source", f"{src['ref']}  ({src['id'][:19]})")
    out = res["ref"] if res["tagged"] else f"{res['ref']} [red](not tagged)[/]"
    t.add_row("Result", f"{out}  ({res['id'][:19]})")
    t.add_row(
        "Size",
        f"{human_bytes(src['size_bytes'])} -> {human_bytes(res['size_bytes'])}  "
        f"([bold]{res['reduction']:.1f}x[/] smaller)",
    )
    gz_before, gz_after = (doc.get(k) or {} for k in ("before", "after"))
    if (
        gz_before.get("compressed_bytes") is not None
        and gz_after.get("compressed_bytes") is not None
    ):
        t.add_row(
            "Compressed", f"{compressed_cell(gz_before)} -> {compressed_cell(gz_after)} (gzip)"
        )
    t.add_row("Files", f"{src['files']:,} -> {res['files']:,} regular files")
    _rows_base(t, doc)
    for what, detail in context_rows(doc):
        t.add_row(f"Context: {what}", Text(detail))
    for what, detail in seccomp_view.rows(doc)[:3]:
        t.add_row(what, Text(detail))
    rounds = f" after {len(v['rounds'])} rounds" if len(v["rounds"]) > 1 else ""
    t.add_row("Verification", f"{status}{rounds}")
    t.add_row("Time", ", ".join(f"{n} {s:.1f}s" for n, s in _merged(doc["phases"])))
    cached = cache_line(doc)
    if cached is not None:
        t.add_row("From the cache", cached)
    reasons = sorted(doc["bytes_by_reason"].items(), key=lambda kv: -kv[1])
    t.add_row("Bytes by reason", ", ".join(f"{k} {human_bytes(n)}" for k, n in reasons))
    warnings = doc["warnings"]
    if warnings:
        where = f"in {report}" if report else "--report-dir DIR lists them all"
        t.add_row("Warnings", f"{len(warnings)} ({where}), e.g. {warnings[0]}")
    findings = doc.get("findings")
    if findings:
        c = findings["counts"]
        t.add_row(
            "Findings",
            f"{c['fixed']} fixed, {c['still']} still present, {c['new']} new (slim lint)",
        )
    t.add_row("Report", report or "--report-dir DIR writes report.json, report.md, report.html")
    return Group(t, *_failure(doc))


def _rows_base(t: Table, doc: Mapping[str, Any]) -> None:
    base, user, dockerfile = doc.get("base"), doc.get("user"), doc.get("dockerfile")
    if base:
        t.add_row("Base", f"{base['ref']}  ({base['why']})")
        left = base["left_to_base"]
        t.add_row(
            "App layer",
            f"{human_bytes(base['app_layer_bytes'])} in {base['app_layer_entries']} entries; "
            f"{left['paths']} kept paths ({human_bytes(left['bytes'])}) left to the base",
        )
        if base["decisions"]:
            shown = [f"{d['path']}: {d['action']} ({d['detail']})" for d in base["decisions"][:3]]
            t.add_row("Decisions", "; ".join(shown))
    if user:
        t.add_row("User", f"{user['user']} (owns {len(user['owned'])} written paths)")
    if dockerfile:
        ok = "[green]passed[/]" if dockerfile["verification"] == "passed" else "[red]FAILED[/]"
        t.add_row(
            "Dockerfile",
            f"{dockerfile['path']}: {dockerfile['copies']} COPY instructions, builds "
            f"{dockerfile_sizes(dockerfile)}; verification {ok}",
        )


def _failure(doc: Mapping[str, Any]) -> list[RenderableType]:
    v = doc["verification"]
    if v["status"] != "failed":
        return []
    parts: list[RenderableType] = [Text("\nWhat differed:", style="bold red")]
    parts += [Text(f"  {d}") for d in v["rounds"][-1]["differences"]]
    refused = seccomp_view.refused_line(doc)
    if refused:
        parts.append(Text(f"Under --seccomp: {refused}", style="bold"))
    user = doc.get("user")
    if user and user["denied"]:
        parts.append(Text(f"Refused to user {user['user']} by the kernel:", style="bold"))
        parts += [Text(f"  {line}") for line in user["denied"][:20]]
    blamed = [a for r in v["rounds"] for a in r["added_paths"]]
    if blamed:
        parts.append(Text("Missing files found by tracing the slim image:", style="bold"))
        parts += [Text(f"  {a['path']}  ({a['looked_up_by']})") for a in blamed[:20]]
    return parts


def _merged(phases: Sequence[Mapping[str, Any]]) -> list[tuple[str, float]]:
    out: dict[str, float] = {}
    for p in phases:
        out[p["name"]] = out.get(p["name"], 0.0) + p["seconds"]
    return list(out.items())
