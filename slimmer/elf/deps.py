"""`slim deps IMAGE PATH... [--json]`: what each program loads, and why.

`deps_report()` turns the loader's closure into a tree per program (each
object expanded once, where it is first met, like lddtree);
`slimmer.report.deps_view` formats it. Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from slimmer.elf.loader import Closure, Edge, Missing, closure
from slimmer.model import TreeView, Warning_


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


def deps_report(
    tree: TreeView, config_env: Mapping[str, str], paths: Iterable[str], workdir: str = "/"
) -> DepsReport:
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
    return ProgramDeps(
        root,
        _node(interp) if interp else None,
        tuple(n for n in top if n.kind != "PT_INTERP"),
        tuple(sorted(files)),
        missing,
    )


def _children(
    requester: str,
    edges: list[Edge],
    missing: tuple[Missing, ...],
    loaders: dict[str, Edge],
    seen: set[str],
) -> tuple[DepNode, ...]:
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
    return DepNode(
        edge.kind, edge.name, edge.path, edge.target, edge.via, edge.variant, repeated, children
    )


# ---------------------------------------------------------------------------
# Renderers
