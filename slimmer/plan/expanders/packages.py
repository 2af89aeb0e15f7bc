"""Expanders of package databases: a dpkg status (and distroless `status.d/`) or
an apk `installed` trimmed to the packages whose files the slim image keeps, so
that scanners see what it holds."""

from __future__ import annotations

from collections.abc import Iterable

from slimmer.image.paths import exists, is_dir, read_text, real_file, tree_memo
from slimmer.model import TreeView
from slimmer.plan.keep import Addition, Generated, ProfileContext, Reason, Result
from slimmer.plan.pkgtrim import (
    ApkRecord,
    DpkgRecord,
    dpkg_records,
    list_paths,
    md5sums_paths,
    trim_apk,
    trim_dpkg,
)

DPKG_INFO = "/var/lib/dpkg/info"
DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_STATUS_D = "/var/lib/dpkg/status.d"
APK_INSTALLED = "/lib/apk/db/installed"


def _dpkg_owners(tree: TreeView) -> dict[str, tuple[str, ...]]:
    """`info/<name>.list` name -> real paths of the non-directories it lists."""

    def make() -> dict[str, tuple[str, ...]]:
        dirs: dict[str, str] = {}
        out: dict[str, tuple[str, ...]] = {}
        for name in tree.listdir(DPKG_INFO):
            if name.endswith(".list"):
                text = read_text(tree, f"{DPKG_INFO}/{name}")
                if text is not None:
                    out[name[:-5]] = _real_files(tree, list_paths(text), dirs)
        return out

    return tree_memo(tree, "dpkg-owners", make)


def _real_files(tree: TreeView, paths: Iterable[str], dirs: dict[str, str]) -> tuple[str, ...]:
    """The listed paths that are files. A listed directory that the image holds as a
    symlink to a directory (`/lib` on merged-/usr) owns nothing: keeping that link
    does not mean the package survives."""
    return tuple(
        r for p in paths if (r := real_file(tree, p, dirs)) is not None and not is_dir(tree, r)
    )


def _list_name(record: DpkgRecord, owners: dict[str, tuple[str, ...]]) -> str | None:
    return next((n for n in record.list_names() if n in owners), None)


def dpkg_status(ctx: ProfileContext, profile_name: str) -> Result:
    """A trimmed /var/lib/dpkg/status (generated), and the `info/` file lists, md5sums
    and copyright files of the surviving packages; distroless `status.d/` records
    of surviving packages as they are."""
    tree, owners = ctx.tree, _dpkg_owners(ctx.tree)

    def kept(record: DpkgRecord) -> bool:
        name = _list_name(record, owners)
        return name is None or any(p in ctx.kept for p in owners[name])

    generated: list[Generated] = []
    additions: list[Addition] = []
    text = read_text(tree, DPKG_STATUS)
    entry = tree.get(DPKG_STATUS)
    if text is not None and entry is not None:
        records = [r for r in dpkg_records(text) if r.installed and kept(r)]
        reason = Reason(
            "profile",
            f"dpkg status trimmed to the {len(records)} packages with "
            f"files kept, so scanners see what the slim image holds",
            profile_name,
        )
        generated.append(
            Generated(DPKG_STATUS, trim_dpkg(text, kept).encode(), reason, entry.mode, entry.mtime)
        )
        additions += _dpkg_extras(tree, records, owners, profile_name)
    additions += _status_d(ctx, profile_name, owners)
    return additions, generated


def _dpkg_extras(
    tree: TreeView, records: list[DpkgRecord], owners: dict[str, tuple[str, ...]], profile_name: str
) -> list[Addition]:
    out = []
    for record in records:
        reason = Reason(
            "profile",
            f"package metadata of {record.package}, whose files are kept (read by scanners)",
            profile_name,
        )
        name = _list_name(record, owners) or record.package
        paths = [f"{DPKG_INFO}/{name}.{ext}" for ext in ("list", "md5sums", "conffiles")]
        paths.append(f"/usr/share/doc/{record.package}/copyright")
        out += [Addition(p, reason, False) for p in paths if exists(tree, p)]
    return out


def _status_d(
    ctx: ProfileContext, profile_name: str, owners: dict[str, tuple[str, ...]]
) -> list[Addition]:
    """Distroless keeps one record per package in status.d/<name>, its files in
    status.d/<name>.md5sums (or dpkg's info/ lists)."""
    out: list[Addition] = []
    dirs: dict[str, str] = {}
    for name in ctx.tree.listdir(DPKG_STATUS_D):
        path = f"{DPKG_STATUS_D}/{name}"
        text = None if name.endswith(".md5sums") else read_text(ctx.tree, path)
        if text is None:
            continue
        sums = read_text(ctx.tree, f"{path}.md5sums")
        for record in dpkg_records(text):
            listed = _list_name(record, owners)
            files = (
                _real_files(ctx.tree, md5sums_paths(sums), dirs)
                if sums is not None
                else owners[listed]
                if listed
                else None
            )
            if files is None or any(p in ctx.kept for p in files):
                reason = Reason(
                    "profile",
                    f"package record of {record.package}, whose files are kept (read by scanners)",
                    profile_name,
                )
                out += [
                    Addition(p, reason, False)
                    for p in (path, f"{path}.md5sums")
                    if exists(ctx.tree, p)
                ]
                break
    return out


def apk_installed(ctx: ProfileContext, profile_name: str) -> Result:
    """A trimmed /lib/apk/db/installed (generated) holding the packages with files kept."""
    tree = ctx.tree
    text, entry = read_text(tree, APK_INSTALLED), tree.get(APK_INSTALLED)
    if text is None or entry is None:
        return [], []
    dirs: dict[str, str] = {}

    def kept(record: ApkRecord) -> bool:
        return any(p in ctx.kept for p in _real_files(tree, record.files, dirs))

    data = trim_apk(text, kept)
    count = data.count("\nP:") + data.startswith("P:")
    reason = Reason(
        "profile",
        f"apk database trimmed to the {count} packages with files "
        f"kept, so scanners see what the slim image holds",
        profile_name,
    )
    return [], [Generated(APK_INSTALLED, data.encode(), reason, entry.mode, entry.mtime)]
