"""Render a `DepsReport` (`slim deps`): an ldd-like tree, and versioned JSON."""

from __future__ import annotations

from typing import Any

from slimmer.elf.deps import DepNode, DepsReport, ProgramDeps

SCHEMA = "slimmer.deps/v1"


def render_text(report: DepsReport) -> str:
    """An lddtree-like tree per program; "not found" where the loader fails."""
    lines: list[str] = []
    for prog in report.programs:
        head = prog.path
        if any(m.kind == "root" for m in prog.missing):
            lines.append(f"{head} => not found")
            continue
        if prog.interpreter is not None:
            head += f" (interpreter {_describe(prog.interpreter)})"
        lines.append(head)
        lines += _render_nodes(prog.needed, 1)
        if not prog.needed and prog.interpreter is None and not prog.missing:
            lines.append("    (no dynamic dependencies)")
    lines.append(f"{len(report.files)} files")
    lines += [f"warning: {w}" for w in report.warnings]
    return "\n".join(lines) + "\n"


def _render_nodes(nodes: tuple[DepNode, ...], depth: int) -> list[str]:
    lines: list[str] = []
    for node in nodes:
        prefix = "    " * depth
        label = node.name if node.kind == "DT_NEEDED" else f"{node.name} ({node.kind})"
        if not node.found:
            lines.append(f"{prefix}{label} => not found")
            continue
        lines.append(f"{prefix}{label} => {_describe(node)}")
        lines += _render_nodes(node.children, depth + 1)
    return lines


def _describe(node: DepNode) -> str:
    text = node.path if node.path == node.target else f"{node.path} -> {node.target}"
    notes = [node.via] + ([f"CPU variant {node.variant}"] if node.variant else [])
    return f"{text} [{', '.join(notes)}]"


def to_json(report: DepsReport) -> dict[str, Any]:
    """The `slimmer.deps/v1` document; every object's keys sorted."""
    doc = {
        "schema": SCHEMA,
        "programs": [_program_json(p) for p in report.programs],
        "files": list(report.files),
        "warnings": [{"where": w.where, "message": w.message} for w in report.warnings],
    }
    sorted_doc: dict[str, Any] = _sorted(doc)
    return sorted_doc


def _program_json(prog: ProgramDeps) -> dict[str, Any]:
    return {
        "path": prog.path,
        "interpreter": _node_json(prog.interpreter) if prog.interpreter else None,
        "needed": [_node_json(n) for n in prog.needed],
        "files": list(prog.files),
        "missing": [
            {"kind": m.kind, "name": m.name, "requester": m.requester} for m in prog.missing
        ],
    }


def _node_json(node: DepNode) -> dict[str, Any]:
    return {
        "kind": node.kind,
        "name": node.name,
        "found": node.found,
        "path": node.path or None,
        "target": node.target or None,
        "via": node.via or None,
        "variant": node.variant or None,
        "repeated": node.repeated,
        "needed": [_node_json(n) for n in node.children],
    }


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value
