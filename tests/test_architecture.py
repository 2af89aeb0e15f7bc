"""The house rules of docs/architecture.md, checked on the source: which room may import
which, no import cycle between modules (imports inside functions and under
TYPE_CHECKING count too), and each outside library behind its one boundary."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "slimmer"
DOC = PKG.parent / "docs" / "architecture.md"
BASE = {"slimmer", "errors", "model"}  # `slimmer` itself: only __version__


def _table(heading: str) -> list[list[str]]:
    """The rows (cells split, header and rule dropped) of the doc's table whose header
    row starts with `heading`."""
    lines = DOC.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(f"| {heading} |"))
    rows = []
    for line in lines[first + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def _names(cell: str) -> list[str]:
    """The `code` names of a cell, `a/` and `a.py` as the room or module `a`."""
    return [n.removesuffix("/").removesuffix(".py") for n in re.findall(r"`([^`]+)`", cell)]


def _allowed() -> dict[str, set[str]]:
    """Room -> the rooms it may import (besides itself and BASE), from the doc's
    "The rooms" table: the first column names the rooms, the last what they may import."""
    out: dict[str, set[str]] = {}
    for row in _table("room"):
        for room in _names(row[0]):
            out[room] = set(_names(row[-1]))
    return out


def _boundaries() -> dict[str, set[str]]:
    """Outside library -> the modules (or rooms) that may import it, from the doc."""
    return {
        _names(library)[0]: {"slimmer." + n.replace("/", ".") for n in _names(where)}
        for library, where in _table("library")
    }


ALLOWED = _allowed()
BOUNDARIES = _boundaries()


def test_the_doc_tables_are_read() -> None:
    """The parse found the rules (a renamed heading would otherwise allow everything)."""
    assert ALLOWED["engine"] == {"engine_api"} and ALLOWED["errors"] == set()
    assert ALLOWED["cli"] >= {"api", "report"} and "cli" not in ALLOWED["api"]
    assert ALLOWED["__main__"] == {"cli"}
    assert BOUNDARIES["docker"] == {"slimmer.engine"}
    assert BOUNDARIES["rich"] == {"slimmer.cli", "slimmer.report"}
    assert BOUNDARIES["squarify"] == {"slimmer.report.slim_html"}
    assert BOUNDARIES["lief"] == set()
    rooms = {_room(m) for m in MODULES} - {"slimmer"}
    assert rooms <= set(ALLOWED), f"rooms missing from the doc: {sorted(rooms - set(ALLOWED))}"


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
