"""Distroless-style bases built for real: Debian 12 packages from the mirror
($SLIMMER_DEBIAN_MIRROR or deb.debian.org), loaded on the engine, read back.

Needs the network (the mirror) and the engine; a failure to reach either fails
the tests. The `.deb` cache is private to the session, so the first build is a
cold one. Every image built here is removed afterwards, and a tag that pointed
at another image before the test is put back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from slimmer.bases.build import FLAVOUR_LABEL, PACKAGES_LABEL, BaseImage, base_tag, build_base
from slimmer.engine import Engine, saver
from slimmer.image.filetree import keep_all
from slimmer.image.reader import Image, open_image

pytestmark = [pytest.mark.engine]
FLAVOURS = ("static", "base-nossl", "cc")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("debs")


@pytest.fixture(scope="module")
def built(engine: Engine, cache_dir: Path) -> Iterator[dict[str, BaseImage]]:
    """Each flavour built once; the engine's tags restored afterwards."""
    before = {f: _tagged_id(engine, base_tag(f)) for f in FLAVOURS}
    out: dict[str, BaseImage] = {}
    try:
        for flavour in FLAVOURS:
            out[flavour] = build_base(engine, flavour, cache_dir=cache_dir)
        yield out
    finally:
        for flavour in FLAVOURS:
            _restore(engine, base_tag(flavour), before[flavour], out.get(flavour))


def _tagged_id(engine: Engine, tag: str) -> str | None:
    return engine.inspect_image(tag).id if engine.image_exists(tag) else None


def _restore(engine: Engine, tag: str, old_id: str | None, new: BaseImage | None) -> None:
    if new is None or new.image_id == old_id:
        return
    if old_id is not None:
        engine.tag_image(old_id, tag)
    else:
        engine.remove_image(tag, force=True)
    if engine.image_exists(new.image_id):
        engine.remove_image(new.image_id, force=True)


def _read(engine: Engine, ref: str) -> Image:
    return open_image(ref, save=saver(engine), want=keep_all)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_base_loads_with_distroless_users_dirs_and_certs(
    engine: Engine, built: dict[str, BaseImage], flavour: str
) -> None:
    base = built[flavour]
    assert engine.inspect_image(base.tag).id == base.image_id
    with _read(engine, base.tag) as image:
        tree = image.tree
        passwd = tree.read_bytes("/etc/passwd").decode()
        assert [line.split(":")[:3] for line in passwd.splitlines()] == [
            ["root", "x", "0"],
            ["nobody", "x", "65534"],
            ["nonroot", "x", "65532"],
        ]
        tmp, home = tree.get("/tmp"), tree.get("/home/nonroot")
        assert tmp is not None and tmp.is_dir and tmp.mode == 0o1777
        assert home is not None and (home.mode, home.uid, home.gid) == (0o700, 65532, 65532)
        bundle = tree.read_bytes("/etc/ssl/certs/ca-certificates.crt")
        assert bundle.startswith(b"-----BEGIN CERTIFICATE-----\n")
        assert bundle.count(b"-----BEGIN CERTIFICATE-----") > 100
        assert tree.read_bytes("/etc/os-release").startswith(b'PRETTY_NAME="Distroless"')
        assert image.config.container["Labels"][FLAVOUR_LABEL] == flavour
        assert "tzdata=" in image.config.container["Labels"][PACKAGES_LABEL]
        assert tree.get("/usr/share/man") is None and tree.get("/usr/share/doc/tzdata/copyright")


def test_status_records_and_libraries_follow_the_flavour(built: dict[str, BaseImage]) -> None:
    names = {f: {lib.name for lib in b.libraries} for f, b in built.items()}
    assert names["static"] == set()
    assert {"libc.so.6", "ld-linux-x86-64.so.2", "libm.so.6"} <= names["base-nossl"]
    assert {"libstdc++.so.6", "libgcc_s.so.1", "libgomp.so.1", "libssl.so.3"} <= names["cc"]
    assert "libgcc_s.so.1" not in names["base-nossl"]
    assert dict(built["cc"].packages).keys() >= {"libc6", "libssl3", "libstdc++6", "tzdata"}


def test_dpkg_status_d_lists_libc6_in_base_nossl_only(
    engine: Engine, built: dict[str, BaseImage]
) -> None:
    with _read(engine, built["base-nossl"].tag) as image:
        status = image.tree.read_bytes("/var/lib/dpkg/status.d/libc6").decode()
        assert status.startswith("Package: libc6\nStatus: install ok installed\n")
        assert image.tree.get("/var/lib/dpkg/status.d/libc6.md5sums") is not None
    with _read(engine, built["static"].tag) as image:
        assert image.tree.get("/var/lib/dpkg/status.d/libc6") is None
        assert image.tree.get("/var/lib/dpkg/status.d/tzdata") is not None


def test_the_same_packages_give_the_same_image_id(
    engine: Engine, built: dict[str, BaseImage], cache_dir: Path
) -> None:
    again = build_base(engine, "base-nossl", cache_dir=cache_dir)
    assert again == built["base-nossl"]
