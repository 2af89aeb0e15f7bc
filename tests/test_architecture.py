"""The house rules of docs/architecture.md, checked on the source: which room may import
which, no import cycle between modules (imports inside functions and under
TYPE_CHECKING count too), and each outside library behind its one boundary."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "slimmer"
BASE = {"slimmer", "errors", "model"}  # `slimmer` itself: only __version__
# Room -> the rooms it may import (besides itself and BASE). Mirrors docs/architecture.md.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "model": set(),
    "resources": set(),
    "globs": set(),
    "context": set(),
    "engine_api": set(),
    "engine": {"engine_api"},
    "image": {"globs"},
    "elf": {"image"},
    "trace": {"engine_api", "image", "elf", "context"},
    "plan": {"globs", "resources", "image", "elf"},
    "analyse": {"globs", "image"},
    "findings": {"globs", "image", "analyse"},
    "bases": {"engine_api", "image", "elf"},
    "pipeline": {
        "context",
        "engine",
        "engine_api",
        "image",
        "elf",
        "trace",
        "plan",
        "bases",
        "analyse",
        "findings",
    },
    "report": {"analyse", "elf", "findings", "image", "pipeline", "plan", "trace", "bases"},
    "api": {
        "context",
        "engine",
        "engine_api",
        "image",
        "elf",
        "trace",
        "plan",
        "analyse",
        "pipeline",
        "bases",
        "findings",
    },
    "cli": {
        "api",
        "context",
        "analyse",
        "findings",
        "report",
        "pipeline",
        "plan",
        "trace",
        "bases",
    },
    "__main__": {"cli"},
}
# Outside library -> the one module (or room) that may import it.
BOUNDARIES = {
    "docker": {"slimmer.engine"},
    "requests": {"slimmer.engine"},
    "click": {"slimmer.cli"},
    "rich": {"slimmer.cli", "slimmer.report"},
    "lief": set(),
    "elftools": {"slimmer.elf.versions"},
    "detect_secrets": {"slimmer.findings.secrets"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        name = ".".join(path.relative_to(PKG.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


MODULES = _modules()


def _imports(path: Path) -> Iterator[str]:
    """Every module name an import statement anywhere in `path` names."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield full if full in MODULES else node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "slimmer"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_room_imports_only_what_the_architecture_allows(module: str) -> None:
    room = _room(module)
    allowed = ALLOWED.get(room, set()) | BASE | {room}
    bad = sorted(
        {
            m
            for m in _imports(MODULES[module])
            if m.startswith("slimmer") and _room(m) not in allowed
        }
    )
    assert not bad, f"{module} ({room}) imports {bad}"


def test_outside_libraries_stay_behind_their_boundary() -> None:
    for module, path in MODULES.items():
        for name in _imports(path):
            top = name.split(".")[0]
            if top in BOUNDARIES:
                owners = BOUNDARIES[top]
                assert any(module == o or module.startswith(o + ".") for o in owners), (
                    f"{module} imports {name}; only {sorted(owners) or 'nothing'} may"
                )


def test_no_import_cycles() -> None:
    graph = {m: {i for i in _imports(p) if i in MODULES and i != m} for m, p in MODULES.items()}
    graph = {
        m: deps - {m.rsplit(".", 1)[0]} if m.count(".") > 1 else deps for m, deps in graph.items()
    }  # a module may import its own package's __init__
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
