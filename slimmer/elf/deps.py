"""`slim deps IMAGE PATH... [--json]`: what each program loads, and why.

`deps_report()` turns the loader's closure into a tree per program (each
object expanded once, where it is first met, like lddtree); `render_text()`
and `to_json()` format it. Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from slimmer.elf.loader import Closure, Edge, Missing, closure
from slimmer.model import TreeView, Warning_

SCHEMA = "slimmer.deps/v1"


@dataclass(frozen=True)
class DepNode:
    """One request in the tree: found (`target` set) or not found.

    `path` is the path the loader opened, `target` the real file. `repeated`
    marks an object already expanded higher up: its children are not shown
    again. `variant` names a CPU-specific copy ("glibc-hwcaps/x86-64-v3").
    """

    kind: str
    name: str
    path: str = ""
    target: str = ""
    via: str = ""
    variant: str = ""
    repeated: bool = False
    children: tuple[DepNode, ...] = ()

    @property
    def found(self) -> bool:
        return bool(self.target)


@dataclass(frozen=True)
class ProgramDeps:
    path: str
    interpreter: DepNode | None
    needed: tuple[DepNode, ...]
    files: tuple[str, ...]
    missing: tuple[Missing, ...]


@dataclass(frozen=True)
class DepsReport:
    programs: tuple[ProgramDeps, ...]
    files: tuple[str, ...]
    warnings: tuple[Warning_, ...]


def deps_report(tree: TreeView, config_env: Mapping[str, str], paths: Iterable[str],
                workdir: str = "/") -> DepsReport:
    """The dependency tree of each path, as the image's own loader finds it
    with the image's environment."""
    paths = tuple(paths)
    result = closure(tree, paths, config_env, workdir)
    programs = tuple(_program(tree, result, path) for path in paths)
    return DepsReport(programs, result.files, result.warnings)


def _program(tree: TreeView, result: Closure, root: str) -> ProgramDeps:
    edges = [e for e in result.edges if e.root == root]
    missing = tuple(m for m in result.missing if m.root == root)
    resolved = tree.resolve(root)
    real = resolved.path
    interp = next((e for e in edges if e.kind == "PT_INTERP"), None)
    loaders: dict[str, Edge] = {}
    for edge in edges:
        if edge.via != "already loaded" and edge.kind != "PT_INTERP":
            loaders.setdefault(edge.target, edge)
    top = _children(real, edges, missing, loaders, {real})
    files = {*resolved.chain, real} if resolved.exists else set()
    files.update(f for e in edges for f in e.files)
    return ProgramDeps(root, _node(interp) if interp else None,
                       tuple(n for n in top if n.kind != "PT_INTERP"), tuple(sorted(files)),
                       missing)


def _children(requester: str, edges: list[Edge], missing: tuple[Missing, ...],
              loaders: dict[str, Edge], seen: set[str]) -> tuple[DepNode, ...]:
    """In load order. An object's own dependencies are shown under the
    request that loaded it (glibc's `l_loader`); elsewhere it is a leaf."""
    out: list[DepNode] = []
    for edge in edges:
        if edge.requester != requester:
            continue
        if loaders.get(edge.target) is not edge or edge.target in seen:
            out.append(_node(edge, repeated=edge.kind != "PT_INTERP"))
            continue
        seen.add(edge.target)
        out.append(_node(edge, _children(edge.target, edges, missing, loaders, seen)))
    out += [DepNode(m.kind, m.name) for m in missing if m.requester == requester]
    return tuple(out)


def _node(edge: Edge, children: tuple[DepNode, ...] = (), repeated: bool = False) -> DepNode:
    return DepNode(edge.kind, edge.name, edge.path, edge.target, edge.via, edge.variant,
                   repeated, children)


# ---------------------------------------------------------------------------
# Renderers


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
        "missing": [{"kind": m.kind, "name": m.name, "requester": m.requester}
                    for m in prog.missing],
    }


def _node_json(node: DepNode) -> dict[str, Any]:
    return {
        "kind": node.kind, "name": node.name, "found": node.found,
        "path": node.path or None, "target": node.target or None, "via": node.via or None,
        "variant": node.variant or None, "repeated": node.repeated,
        "needed": [_node_json(n) for n in node.children],
    }


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value
