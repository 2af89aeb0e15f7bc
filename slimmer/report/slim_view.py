"""Render a `SlimResult`: the one-screen terminal summary and `report.json`."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from slimmer import __version__
from slimmer.pipeline.slim import SlimResult
from slimmer.plan.keep import KeepSet
from slimmer.report.common import human_bytes
from slimmer.trace.probes import ProbeResult

SCHEMA = "slimmer.slim/v1"


def to_json(r: SlimResult) -> dict[str, Any]:
    """The `slimmer.slim/v1` document (docs/schemas/slim-v1.json)."""
    return {
        "schema": SCHEMA,
        "slimmer_version": __version__,
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
        "phases": [{"name": n, "seconds": round(s, 3)} for n, s in r.phases],
        "bytes_by_reason": dict(sorted(r.bytes_by_reason.items())),
        "kept": keep_json(r.keep),
        "warnings": list(r.warnings),
        "base": _base_json(r),
        "user": None
        if r.user is None
        else {"user": r.user, "owned": list(r.owned), "denied": list(r.denied)},
        "dockerfile": _dockerfile_json(r),
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
        "coarse_bytes": d.coarse_bytes,
        "built_size_bytes": d.size_bytes,
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


def keep_json(keep: KeepSet) -> list[dict[str, Any]]:
    return [
        {
            "path": p,
            "reasons": [{"kind": x.kind, "detail": x.detail, "source": x.source} for x in rs],
        }
        for p, rs in sorted(keep.reasons.items())
    ] + [
        {
            "path": g.path,
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


def render(r: SlimResult) -> RenderableType:
    status = {
        None: "[yellow]skipped (--no-verify)[/]",
        True: "[green]passed[/]",
        False: "[red]FAILED[/]",
    }[r.verified]
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    t.add_row("Source", f"{r.source_ref}  ({r.source_id[:19]})")
    out = r.output if r.tagged else f"{r.output} [red](not tagged)[/]"
    t.add_row("Result", f"{out}  ({r.image_id[:19]})")
    t.add_row(
        "Size",
        f"{human_bytes(r.before_bytes)} -> {human_bytes(r.after_bytes)}  "
        f"([bold]{r.reduction:.1f}x[/] smaller)",
    )
    t.add_row("Files", f"{r.before_files} -> {r.after_files}")
    if r.on_base is not None:
        b = r.on_base
        t.add_row("Base", f"{b.choice.ref}  ({b.choice.why})")
        t.add_row(
            "App layer",
            f"{human_bytes(b.app_layer_bytes)} in {b.app_files} entries; "
            f"{b.layer.identical} kept paths ({human_bytes(b.layer.identical_bytes)}) "
            f"left to the base",
        )
        if b.layer.decisions:
            t.add_row("Decisions", "; ".join(d.describe() for d in b.layer.decisions[:3]))
    if r.user is not None:
        t.add_row("User", f"{r.user} (owns {len(r.owned)} written paths)")
    if r.dockerfile is not None:
        d = r.dockerfile
        verdict = "[green]passed[/]" if d.verified else "[red]FAILED[/]"
        t.add_row(
            "Dockerfile",
            f"{d.path}: {d.copies} COPY instructions, builds {human_bytes(d.size_bytes)} "
            f"(exact keep set {human_bytes(d.exact_bytes)}, copied {human_bytes(d.coarse_bytes)})"
            f"; verification {verdict}",
        )
    rounds = f" after {len(r.rounds)} rounds" if len(r.rounds) > 1 else ""
    t.add_row("Verification", f"{status}{rounds}")
    t.add_row("Time", ", ".join(f"{n} {s:.1f}s" for n, s in _merged(r.phases)))
    reasons = sorted(r.bytes_by_reason.items(), key=lambda kv: -kv[1])
    t.add_row("Bytes by reason", ", ".join(f"{k} {human_bytes(v)}" for k, v in reasons))
    if r.warnings:
        t.add_row("Warnings", f"{len(r.warnings)} (in report.json), e.g. {r.warnings[0]}")
    parts: list[RenderableType] = [t]
    if r.verified is False:
        parts.append(Text("\nWhat differed:", style="bold red"))
        parts += [Text(f"  {d.describe()}") for d in r.diffs]
        if r.denied:
            parts.append(Text(f"Refused to user {r.user} by the kernel:", style="bold"))
            parts += [Text(f"  {line}") for line in r.denied[:20]]
        blamed = [m for rd in r.rounds for m in rd.added]
        if blamed:
            parts.append(Text("Missing files found by tracing the slim image:", style="bold"))
            parts += [Text(f"  {m.path}  ({m.by})") for m in blamed[:20]]
    return Group(*parts)


def _merged(phases: tuple[tuple[str, float], ...]) -> list[tuple[str, float]]:
    out: dict[str, float] = {}
    for name, secs in phases:
        out[name] = out.get(name, 0.0) + secs
    return list(out.items())
