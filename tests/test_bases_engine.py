"""Distroless-style bases built for real: Debian 12 packages from the mirror
($SLIMMER_DEBIAN_MIRROR or deb.debian.org), loaded on the engine, read back.

Needs the network (the mirror) and the engine; a failure to reach either fails
the tests. The `.deb` cache is private to the session, so the first build is a
cold one. Every image built here is removed afterwards, and a tag that pointed
at another image before the test is put back.

The arm64 `base` flavour is built too (Debian's arm64 packages, on this engine
whatever its own platform): its config says arm64, its libc and loader are
aarch64 ELF files at arm64's paths, and the same packages give the same image ID.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from slimmer.bases.arch import AMD64, ARM64, DebianArch
from slimmer.bases.build import (
    FLAVOUR_LABEL,
    PACKAGES_LABEL,
    BaseImage,
    base_tag,
    base_tags,
    build_base,
    default_arch,
    engine_arch,
)
from slimmer.elf.parse import parse_elf_at
from slimmer.engine import Engine, saver
from slimmer.image.filetree import keep_all
from slimmer.image.reader import Image, open_image
from slimmer.model import TreeView

pytestmark = [pytest.mark.engine]
FLAVOURS = ("static", "base-nossl", "cc")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("debs")


@pytest.fixture(scope="module")
def built(engine: Engine, cache_dir: Path) -> Iterator[dict[str, BaseImage]]:
    """Each flavour built once for the engine's own platform; tags restored afterwards."""
    with _restoring(engine, FLAVOURS, default_arch(engine)) as out:
        for flavour in FLAVOURS:
            out[flavour] = build_base(engine, flavour, cache_dir=cache_dir)
        yield out


@pytest.fixture(scope="module")
def built_arm64(engine: Engine, cache_dir: Path) -> Iterator[BaseImage]:
    """The arm64 `base` flavour, built once; tags restored afterwards."""
    with _restoring(engine, ("base",), ARM64) as out:
        out["base"] = build_base(engine, "base", ARM64, cache_dir=cache_dir)
        yield out["base"]


@contextmanager
def _restoring(
    engine: Engine, flavours: tuple[str, ...], arch: DebianArch
) -> Iterator[dict[str, BaseImage]]:
    """The builds the body puts in the dict it is given; afterwards every tag they
    were given points where it pointed before (or is gone), and their images are
    removed unless a tag held them before."""
    native = engine_arch(engine)
    tags = {f: base_tags(f, arch, native) for f in flavours}
    before = {t: _tagged_id(engine, t) for f in flavours for t in tags[f]}
    out: dict[str, BaseImage] = {}
    try:
        yield out
    finally:
        for built in out.values():
            _restore(engine, {t: before[t] for t in built.tags}, built)


def _tagged_id(engine: Engine, tag: str) -> str | None:
    return engine.inspect_image(tag).id if engine.image_exists(tag) else None


def _restore(engine: Engine, before: Mapping[str, str | None], new: BaseImage) -> None:
    for tag, old_id in before.items():
        if old_id == new.image_id:
            continue
        if old_id is not None:
            engine.tag_image(old_id, tag)
        elif engine.image_exists(tag):
            engine.remove_image(tag)  # untags; the image goes with its last tag
    if new.image_id not in before.values() and engine.image_exists(new.image_id):
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
    loader = "ld-linux-aarch64.so.1" if built["cc"].arch == "arm64" else "ld-linux-x86-64.so.2"
    assert {"libc.so.6", loader, "libm.so.6"} <= names["base-nossl"]
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


def test_the_arm64_base_says_arm64_and_holds_aarch64_libc(
    engine: Engine, built_arm64: BaseImage
) -> None:
    base = built_arm64
    assert base.arch == "arm64" and base_tag("base", "arm64") in base.tags
    assert engine.inspect_image(base_tag("base", "arm64")).id == base.image_id
    info = engine.inspect_image(base.image_id)
    assert (info.os, info.architecture) == ("linux", "arm64")
    names = {lib.name: lib for lib in base.libraries}
    assert {"libc.so.6", "ld-linux-aarch64.so.1", "libssl.so.3", "libcrypto.so.3"} <= set(names)
    assert "ld-linux-x86-64.so.2" not in names
    with _read(engine, base.image_id) as image:
        assert image.config.raw.get("variant") == "v8"
        tree = image.tree
        assert tree.get("/lib64") is None and tree.get("/usr/lib64") is None
        for path in ("/lib/aarch64-linux-gnu/libc.so.6", ARM64.interpreter):
            assert _machine(tree, path) == ARM64.elf_machine != AMD64.elf_machine, path
        assert tree.resolve(ARM64.interpreter).path == (
            "/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1"
        )
        libc6 = tree.read_bytes("/var/lib/dpkg/status.d/libc6").decode()
        assert "\nArchitecture: arm64\n" in libc6
        assert "\nArchitecture: all\n" in tree.read_bytes("/var/lib/dpkg/status.d/tzdata").decode()


def _machine(tree: TreeView, path: str) -> int:
    """The e_machine of the ELF file `path` resolves to."""
    real = tree.resolve(path).path

    def read(offset: int, size: int) -> bytes:
        return tree.read_bytes(real, size, offset)

    return parse_elf_at(read).machine


def test_the_same_arm64_packages_give_the_same_image_id(
    engine: Engine, built_arm64: BaseImage, cache_dir: Path
) -> None:
    again = build_base(engine, "base", ARM64, cache_dir=cache_dir)
    assert again == built_arm64
