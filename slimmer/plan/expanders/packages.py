"""Expanders of package databases: a dpkg status (and distroless `status.d/`) or
an apk `installed` trimmed to the packages whose files the slim image keeps, so
that scanners see what it holds."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from slimmer.image.paths import exists, is_dir, read_text, real_file, tree_memo
from slimmer.model import TreeView
from slimmer.plan.keep import Addition, GeneratedFile, ProfileContext, Reason, Result
from slimmer.plan.pkgtrim import (
    ApkRecord,
    DpkgRecord,
    dpkg_records,
    list_paths,
    md5sums_paths,
    trim_apk,
    trim_conffiles,
    trim_dpkg,
    trim_list,
    trim_md5sums,
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
    """A trimmed /var/lib/dpkg/status (generated), and for each surviving package its
    `info/` file list, md5sums and conffiles trimmed to the files kept (generated)
    and its copyright file (kept whole: license scanners read it); distroless
    `status.d/` records of surviving packages, their md5sums trimmed."""
    tree, owners = ctx.tree, _dpkg_owners(ctx.tree)

    def kept(record: DpkgRecord) -> bool:
        name = _list_name(record, owners)
        return name is None or any(p in ctx.kept for p in owners[name])

    generated: list[GeneratedFile] = []
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
            GeneratedFile(
                DPKG_STATUS, trim_dpkg(text, kept).encode(), reason, entry.mode, entry.mtime
            )
        )
        adds, gens = _dpkg_extras(ctx, records, owners, profile_name)
        additions += adds
        generated += gens
    adds, gens = _status_d(ctx, profile_name, owners)
    return additions + adds, generated + gens


# What trims each `info/<name>.<ext>` of a surviving package to the files kept.
_INFO_TRIMS: dict[str, Callable[[str, Callable[[str], bool]], str]] = {
    "list": trim_list,
    "md5sums": trim_md5sums,
    "conffiles": trim_conffiles,
}


def _dpkg_extras(
    ctx: ProfileContext,
    records: list[DpkgRecord],
    owners: dict[str, tuple[str, ...]],
    profile_name: str,
) -> Result:
    """Per surviving package: its copyright (an addition) and its `info/` files
    trimmed to what is kept (generated; a package without a list keeps its
    `info/` files whole, there is nothing to tell its files by)."""
    tree, additions, generated = ctx.tree, [], []
    copyrights = [f"/usr/share/doc/{r.package}/copyright" for r in records]
    kept = _kept_as_listed(ctx, [p for p in copyrights if exists(tree, p)])
    for record, copyright_path in zip(records, copyrights, strict=True):
        reason = Reason(
            "profile",
            f"package metadata of {record.package}, whose files are kept (read by scanners)",
            profile_name,
        )
        name = _list_name(record, owners)
        for ext, trim in _INFO_TRIMS.items():
            path = f"{DPKG_INFO}/{name or record.package}.{ext}"
            gen = _trimmed(tree, path, trim, kept, reason) if name else None
            if gen is not None:
                generated.append(gen)
            elif name is None and exists(tree, path):
                additions.append(Addition(path, reason, False))
        if exists(tree, copyright_path):
            additions.append(Addition(copyright_path, reason, False))
    if generated:  # the directory itself, with its own mode, for the generated files
        reason = Reason("profile", "dpkg's info directory, for the trimmed records", profile_name)
        additions.append(Addition(DPKG_INFO, reason, False))
    return additions, generated


def _kept_as_listed(ctx: ProfileContext, also: Iterable[str]) -> Callable[[str], bool]:
    """Whether a path as dpkg lists it is kept: its real path (merged-/usr: `/lib/...`
    is `/usr/lib/...`) is in the keep set, or is one of `also` (kept in this pass)."""
    dirs: dict[str, str] = {}
    extra = {r for p in also if (r := real_file(ctx.tree, p, dirs)) is not None}

    def kept(path: str) -> bool:
        real = real_file(ctx.tree, path, dirs)
        return real is not None and (real in ctx.kept or real in extra)

    return kept


def _trimmed(
    tree: TreeView,
    path: str,
    trim: Callable[[str, Callable[[str], bool]], str],
    kept: Callable[[str], bool],
    reason: Reason,
) -> GeneratedFile | None:
    """`path` rewritten by `trim` (None when the image has no such file, or nothing
    of it is kept), with the source file's mode and mtime."""
    entry = tree.get(path)
    text = _read_exact(tree, path)
    if entry is None or text is None:
        return None
    data = trim(text, kept)
    if not data:
        return None
    detail = f"{reason.detail}; trimmed to the files kept"
    return GeneratedFile(
        path,
        data.encode("utf-8", "surrogateescape"),
        Reason(reason.kind, detail, reason.source),
        entry.mode,
        entry.mtime,
    )


def _read_exact(tree: TreeView, path: str) -> str | None:
    """The file's text with undecodable bytes kept as they are (written back as read)."""
    try:
        return tree.read_bytes(path).decode("utf-8", "surrogateescape")
    except (LookupError, FileNotFoundError, OSError):
        return None


def _status_d(ctx: ProfileContext, profile_name: str, owners: dict[str, tuple[str, ...]]) -> Result:
    """Distroless keeps one record per package in status.d/<name>, its files in
    status.d/<name>.md5sums (or dpkg's info/ lists). A surviving package keeps its
    record; its md5sums are trimmed to the files kept."""
    additions: list[Addition] = []
    generated: list[GeneratedFile] = []
    dirs: dict[str, str] = {}
    kept = _kept_as_listed(ctx, ())
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
                additions.append(Addition(path, reason, False))
                gen = _trimmed(ctx.tree, f"{path}.md5sums", trim_md5sums, kept, reason)
                if gen is not None:
                    generated.append(gen)
                break
    return additions, generated


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
    return [], [GeneratedFile(APK_INSTALLED, data.encode(), reason, entry.mode, entry.mtime)]
