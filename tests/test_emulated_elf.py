"""Symbol versions per platform, on the real arm64 and amd64 builds of nginx-static.

glibc's version names differ by machine: aarch64's glibc starts at GLIBC_2.17, x86_64's
at GLIBC_2.2.5. The arm64 nginx's needs must all be met by the arm64 image's own
libraries, while the amd64 nginx put on those arm64 libraries must be refused with a
version the aarch64 libc never defined. The definitions come from pyelftools
(slimmer.elf.versions); `readelf -V` cross-checks the arm64 needs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from slimmer.elf.compat import check_base, provided_by
from slimmer.elf.versions import SymbolVersions, read_versions
from slimmer.engine import Engine, saver
from slimmer.image.filetree import keep_all
from slimmer.image.reader import open_image
from slimmer.model import TreeView

pytestmark = [pytest.mark.engine, pytest.mark.emulated]

NGINX = "/usr/sbin/nginx"


def _dir(path: Path) -> Path:
    path.mkdir()
    return path


def _bytes(tree: TreeView, path: str) -> bytes:
    entry = tree.resolve(path).entry
    assert entry is not None and entry.is_regular, path
    return tree.read_bytes(entry.path, entry.size)


def _versions(tree: TreeView) -> dict[str, SymbolVersions]:
    out: dict[str, SymbolVersions] = {}
    for entry in tree:
        if entry.is_regular and entry.is_elf:
            out[entry.path] = read_versions(tree.read_bytes(entry.path, entry.size))
    return out


def test_symbol_versions_are_checked_per_platform(
    engine: Engine,
    arm64_images: dict[str, str],
    fixture_images: dict[str, str],
    tmp_path: Path,
) -> None:
    with open_image(
        arm64_images["nginx-static"],
        save=saver(engine),
        want=keep_all,
        workdir=_dir(tmp_path / "a"),
    ) as arm:
        arm_files = _versions(arm.tree)
        nginx_bytes = _bytes(arm.tree, NGINX)
    with open_image(
        fixture_images["nginx-static"],
        save=saver(engine),
        want=keep_all,
        workdir=_dir(tmp_path / "b"),
    ) as amd:
        amd_nginx = read_versions(_bytes(amd.tree, NGINX))
    arm_nginx = arm_files[NGINX]
    assert arm_nginx.ok and amd_nginx.ok
    arm_libc = arm_nginx.required("libc.so.6")
    assert "GLIBC_2.17" in arm_libc and "GLIBC_2.2.5" not in arm_libc
    assert "GLIBC_2.2.5" in amd_nginx.required("libc.so.6")
    # readelf, not our reader, lists the arm64 program's libc needs
    program = tmp_path / "nginx"
    program.write_bytes(nginx_bytes)
    listed = subprocess.run(["readelf", "-V", str(program)], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert {v for v in arm_libc if f"Name: {v}" not in listed.stdout} == set()

    arm_base = provided_by(arm_files)
    assert check_base({NGINX: arm_nginx}, arm_base).incompatibilities == ()
    refused = check_base({NGINX: amd_nginx}, arm_base).incompatibilities
    assert any(i.library == "libc.so.6" and i.version == "GLIBC_2.2.5" for i in refused), refused
