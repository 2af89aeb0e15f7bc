"""Render an `Inspection`: terminal tables (rich) and versioned JSON."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from slimmer.analyse.inspect import SCHEMA, Inspection, SizedPath
from slimmer.report.common import count, human_bytes


def to_json(ins: Inspection) -> dict[str, Any]:
    """The `slimmer.inspect/v1` document (documented in docs/json-schemas.md)."""
    return {
        "schema": SCHEMA,
        "image": {
            "ref": ins.ref,
            "id": ins.id,
            "os": ins.os,
            "architecture": ins.architecture,
            "size_bytes": ins.size_bytes,
            "tree_bytes": ins.tree_bytes,
            "files": ins.files,
            "directories": ins.directories,
            "symlinks": ins.symlinks,
        },
        "layers": [
            {
                "index": r.index,
                "digest": r.digest,
                "size_bytes": r.size,
                "files": r.files,
                "created_by": r.created_by,
            }
            for r in ins.layers
        ],
        "largest_files": _sized(ins.largest_files),
        "largest_dirs": _sized(ins.largest_dirs),
        "efficiency": ins.efficiency,
        "wasted_bytes": ins.wasted_bytes,
        "user_wasted_percent": ins.user_wasted_percent,
        "reclaimable_bytes": ins.reclaimable_bytes,
        "inefficient_files": [
            {"path": p, "copies": n, "size_bytes": s} for p, n, s in ins.inefficient_files
        ],
        "elf": {"files": ins.elf_files, "bytes": ins.elf_bytes},
        "shells": list(ins.shells),
        "setuid": list(ins.setuid),
        "setgid": list(ins.setgid),
        "package_managers": list(ins.package_managers),
        "caches": _sized(ins.caches),
        "packages": [
            {"manager": p.manager, "name": p.name, "version": p.version, "source": p.source}
            for p in ins.packages
        ],
        "warnings": list(ins.warnings),
    }


def _sized(rows: tuple[SizedPath, ...]) -> list[dict[str, Any]]:
    return [{"path": r.path, "size_bytes": r.size} for r in rows]


def render(ins: Inspection) -> RenderableType:
    return Group(
        _summary(ins),
        Text(""),
        _layers(ins),
        Text(""),
        _paths("Largest directories", ins.largest_dirs),
        _paths("Largest files", ins.largest_files),
        Text(""),
        _flags(ins),
    )


def print_inspection(ins: Inspection, console: Console) -> None:
    console.print(render(ins))


def _summary(ins: Inspection) -> RenderableType:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    t.add_row("Image", f"{ins.ref}  ({ins.id[:19]})")
    t.add_row("Platform", f"{ins.os}/{ins.architecture}")
    t.add_row(
        "Size",
        f"{human_bytes(ins.size_bytes)} in {count(len(ins.layers), 'layer')}; "
        f"{human_bytes(ins.tree_bytes)} visible",
    )
    t.add_row(
        "Contents",
        f"{count(ins.files, 'file')}, "
        f"{count(ins.directories, 'directory', 'directories')}, "
        f"{count(ins.symlinks, 'symlink')}",
    )
    t.add_row("Efficiency", f"{ins.efficiency * 100:.4f} %  (dive's score)")
    t.add_row(
        "Wasted",
        f"{human_bytes(ins.wasted_bytes)} (dive); "
        f"reclaimable {human_bytes(ins.reclaimable_bytes)} (shadowed or deleted)",
    )
    t.add_row("ELF", f"{count(ins.elf_files, 'file')}, {human_bytes(ins.elf_bytes)}")
    return t


def _layers(ins: Inspection) -> RenderableType:
    t = Table(title="Layers", title_justify="left", expand=False)
    t.add_column("#", justify="right")
    t.add_column("size", justify="right")
    t.add_column("files", justify="right")
    t.add_column("created by", overflow="ellipsis", no_wrap=True, max_width=80)
    for r in ins.layers:
        t.add_row(
            str(r.index + 1),
            human_bytes(r.size),
            str(r.files),
            " ".join(r.created_by.split()) or "-",
        )
    return t


def _paths(title: str, rows: tuple[SizedPath, ...]) -> RenderableType:
    t = Table(title=title, title_justify="left", show_header=False)
    t.add_column(justify="right")
    t.add_column(overflow="fold")
    for r in rows:
        t.add_row(human_bytes(r.size), r.path)
    return t


def _flags(ins: Inspection) -> RenderableType:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    t.add_row("Shells", ", ".join(ins.shells) or "none")
    t.add_row("Package managers", ", ".join(ins.package_managers) or "none")
    t.add_row(
        "Caches", ", ".join(f"{c.path} ({human_bytes(c.size)})" for c in ins.caches) or "none"
    )
    t.add_row("Setuid/setgid", ", ".join(ins.setuid + ins.setgid) or "none")
    by_manager: dict[str, int] = {}
    for p in ins.packages:
        by_manager[p.manager] = by_manager.get(p.manager, 0) + 1
    t.add_row("Packages", ", ".join(f"{n} {m}" for m, n in sorted(by_manager.items())) or "none")
    if ins.warnings:
        t.add_row("Warnings", f"{len(ins.warnings)} (see --json): {ins.warnings[0]}")
    return t
