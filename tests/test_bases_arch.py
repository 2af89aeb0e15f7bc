"""Bases per platform, without network or engine: what differs between amd64 and
arm64 (index, multiarch directories, interpreter, merged-/usr links, config), an
arm64 tree and a whole arm64 `build_base` against a fake mirror and engine, the
per-architecture tags and `find_base`, and `--base` choosing the base of the
image's own architecture."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from slimmer.bases.arch import AMD64, ARCHES, ARM64, DebianArch, arch_of
from slimmer.bases.build import (
    BaseImage,
    base_tag,
    build_base,
    build_command,
    distroless_ref,
    find_base,
    list_bases,
)
from slimmer.bases.control import scan_packages
from slimmer.bases.debfile import DebContents, read_deb
from slimmer.bases.debian import resolve_packages
from slimmer.bases.errors import DebianError
from slimmer.bases.libraries import provided_libraries
from slimmer.bases.rootfs import assemble, rootfs_tree
from slimmer.elf.layout import detect_layout
from slimmer.elf.parse import EM_AARCH64, EM_X86_64, ElfInfo
from slimmer.errors import BaseRefused, UsageError
from slimmer.image.filetree import keep_all
from slimmer.image.store import ContentStore
from slimmer.model import EntryType
from slimmer.pipeline.base import resolve_base
from tests.memtree import Dir, MemTree, make_elf
from tests.test_bases import (
    CERT,
    PACKAGES,
    FakeMirror,
    LoadingEngine,
    Member,
    control_text,
    deb_bytes,
    static_debs,
)

# -- what differs per architecture ------------------------------------------------


def test_each_architecture_names_its_index_interpreter_and_links() -> None:
    assert (AMD64.index, ARM64.index) == (
        "main/binary-amd64/Packages.xz",
        "main/binary-arm64/Packages.xz",
    )
    assert ARM64.interpreter == "/lib/ld-linux-aarch64.so.1"
    assert AMD64.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert ARM64.merged_dirs == ("bin", "sbin", "lib")  # no /lib64 on Debian 12 arm64
    assert AMD64.merged_dirs == ("bin", "sbin", "lib", "lib64")
    assert (AMD64.variant, ARM64.variant) == ("", "v8")
    assert (AMD64.elf_machine, ARM64.elf_machine) == (EM_X86_64, EM_AARCH64)
    assert [a.platform for a in ARCHES.values()] == ["linux/amd64", "linux/arm64"]


@pytest.mark.parametrize("arch", [AMD64, ARM64], ids=lambda a: a.name)
def test_search_dirs_are_the_loaders_and_hold_the_interpreter(arch: DebianArch) -> None:
    """The elf loader's own table (a second source) gives the same built-in path."""
    tree = MemTree({f"/usr/lib/{arch.triplet}": Dir()})
    layout = detect_layout(tree, ElfInfo(elf_class=64, machine=arch.elf_machine))
    assert arch.search_dirs[:4] == layout.default_dirs
    assert arch.interpreter.rsplit("/", 1)[0] in arch.search_dirs
    assert ("/lib64" in arch.search_dirs) is (arch is AMD64)


def test_arch_of_takes_the_two_platforms_and_refuses_others() -> None:
    assert arch_of("arm64") is ARM64 and arch_of("arm64", "linux", "v8") is ARM64
    assert arch_of("amd64", "linux") is AMD64
    for args in (("s390x",), ("arm64", "linux", "v7"), ("amd64", "windows"), ("amd64", "", "v8")):
        with pytest.raises(
            UsageError, match="slimmer builds bases for linux/amd64 and linux/arm64"
        ):
            arch_of(*args)


def test_scan_packages_takes_the_architectures_own_and_all_records() -> None:
    arm = PACKAGES.replace("Architecture: i386", "Architecture: arm64")
    records = list(
        scan_packages(arm, ["libc6", "tzdata"], "bookworm", "http://m/", ("arm64", "all"))
    )
    assert [(r.name, r.architecture) for r in records] == [("libc6", "arm64"), ("tzdata", "all")]
    assert records[0].deb_name == "libc6_2.36-9+deb12u7_i386.deb"  # as the index names it


# -- an arm64 tree ------------------------------------------------------------------


def _arm64_libc(tmp_path: Path, store: ContentStore) -> DebContents:
    members = [
        Member("./lib/", kind="dir", mode=0o755),
        Member(
            "./lib/aarch64-linux-gnu/libc.so.6",
            make_elf(machine=EM_AARCH64, soname="libc.so.6"),
        ),
        Member(
            "./lib/aarch64-linux-gnu/ld-linux-aarch64.so.1",
            make_elf(machine=EM_AARCH64, soname="ld-linux-aarch64.so.1"),
        ),
        Member(
            "./lib/ld-linux-aarch64.so.1",
            kind="symlink",
            link="aarch64-linux-gnu/ld-linux-aarch64.so.1",
        ),
    ]
    path = tmp_path / "libc6_arm64.deb"
    path.write_bytes(deb_bytes(control_text("libc6", "2.36", arch="arm64"), members))
    return read_deb(path, store, keep_all)


def test_an_arm64_tree_is_merged_usr_without_lib64(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    debs = {**static_debs(tmp_path, store), "libc6": _arm64_libc(tmp_path, store)}
    rootfs = assemble("base-nossl", ARM64, debs, store)
    tree = {e.path: e for e in rootfs.entries}
    links = {
        p: e.link for p, e in tree.items() if p.count("/") == 1 and e.type is EntryType.SYMLINK
    }
    assert links == {"/bin": "usr/bin", "/lib": "usr/lib", "/sbin": "usr/sbin"}
    assert "/lib64" not in tree and "/usr/lib64" not in tree
    interp = tree["/usr/lib/ld-linux-aarch64.so.1"]
    assert (interp.type, interp.link) == (
        EntryType.SYMLINK,
        "aarch64-linux-gnu/ld-linux-aarch64.so.1",
    )
    assert rootfs.arch is ARM64
    libs = provided_libraries(rootfs_tree(rootfs, store), ARM64.search_dirs)
    by_path = {lib.path: lib for lib in libs}
    assert by_path["/lib/ld-linux-aarch64.so.1"].target == (
        "/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1"
    )
    assert by_path["/lib/aarch64-linux-gnu/libc.so.6"].soname == "libc.so.6"
    assert provided_libraries(rootfs_tree(rootfs, store), AMD64.search_dirs[:2]) == ()


# -- an arm64 build against a fake mirror and engine --------------------------------------


def arm64_mirror() -> FakeMirror:
    fake = FakeMirror(arch=ARM64)
    fake.add("bookworm", "base-files", "12.4+deb12u15", [Member("./etc/debian_version", b"12\n")])
    fake.add("bookworm", "netbase", "6.4", [Member("./etc/services", b"http 80/tcp\n")])
    fake.add("bookworm", "tzdata", "2026f-0", [Member("./usr/share/zoneinfo/UTC", b"TZ")])
    fake.add("bookworm", "media-types", "10.0.0", [Member("./etc/mime.types", b"")], "debconf")
    ca = Member("./usr/share/ca-certificates/mozilla/A.crt", CERT)
    fake.add("bookworm", "ca-certificates", "20250419", [ca], "openssl (>= 1.1.1)")
    fake.publish()
    return fake


def _build(
    engine: LoadingEngine, fake: FakeMirror, tmp_path: Path, arch: DebianArch | None
) -> BaseImage:
    return build_base(
        engine,
        "static",
        arch,
        workdir=tmp_path,
        cache_dir=tmp_path / "c",
        mirror=fake.mirror,
        opener=fake.open,
    )


def _config(archive: Path) -> dict[str, object]:
    with tarfile.open(archive) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        raw = tf.extractfile(manifest[0]["Config"])
        assert raw is not None
        config: dict[str, object] = json.load(raw)
        return config


def test_an_arm64_build_reads_the_arm64_index_and_says_arm64(tmp_path: Path) -> None:
    fake, engine = arm64_mirror(), LoadingEngine(tmp_path)
    built = [_build(engine, fake, tmp_path, ARM64) for _ in range(2)]
    assert built[0] == built[1]  # the same packages, the same image ID
    assert built[0].arch == "arm64"
    assert built[0].tags == ("slimmer/distroless-static:debian12-arm64",)  # no short tag
    assert engine.tags == {"slimmer/distroless-static:debian12-arm64": built[0].image_id}
    indexes = {u.rsplit("/", 2)[-2] for u in fake.opened if u.endswith("Packages.xz")}
    assert indexes == {"binary-arm64"}
    config = _config(engine.archives[0])
    assert (config["architecture"], config["variant"], config["os"]) == ("arm64", "v8", "linux")


def test_a_build_for_the_engines_own_arm64_also_gets_the_short_tag(tmp_path: Path) -> None:
    fake, engine = arm64_mirror(), LoadingEngine(tmp_path, native="arm64")
    built = _build(engine, fake, tmp_path, None)  # the default: the engine's architecture
    assert built.arch == "arm64"
    assert built.tags == (base_tag("static"), base_tag("static", "arm64"))
    assert built.tag == "slimmer/distroless-static:debian12"


def test_an_engine_of_another_platform_builds_named_platforms_only(tmp_path: Path) -> None:
    fake, engine = arm64_mirror(), LoadingEngine(tmp_path, native="s390x")
    built = _build(engine, fake, tmp_path, ARM64)
    assert built.tags == (base_tag("static", "arm64"),) == (built.tag,)
    with pytest.raises(UsageError, match="bases for linux/s390x"):
        _build(engine, fake, tmp_path, None)
    rows = list_bases(engine)
    assert [r.platform for r in rows[::4]] == ["linux/amd64", "linux/arm64"]
    assert rows[0].build == "slim bases build --platform linux/amd64 static"


def test_an_amd64_config_has_no_variant(tmp_path: Path) -> None:
    from tests.test_bases import static_mirror

    engine = LoadingEngine(tmp_path)
    built = _build(engine, static_mirror(), tmp_path, AMD64)
    config = _config(engine.archives[0])
    assert config["architecture"] == "amd64" and "variant" not in config
    assert built.tag == base_tag("static")


def test_a_deb_of_another_architecture_is_refused(tmp_path: Path) -> None:
    """The arm64 index names an amd64 `.deb` (its control file says so)."""
    fake = arm64_mirror()
    url = next(u for u in fake.files if u.endswith("_arm64.deb") and "/tzdata_" in u)
    members = [Member("./usr/share/zoneinfo/UTC", b"TZ")]
    wrong = deb_bytes(control_text("tzdata", "2026f-0", arch="amd64"), members)
    fake.files[url] = wrong
    listed = f"Size: {len(wrong)}\nSHA256: {hashlib.sha256(wrong).hexdigest()}\n"
    fake.packages["bookworm"] = [
        p.split("Size:")[0] + listed if p.startswith("Package: tzdata") else p
        for p in fake.packages["bookworm"]
    ]
    fake.publish()
    with pytest.raises(DebianError, match="its control file says tzdata 2026f-0 amd64"):
        _build(LoadingEngine(tmp_path), fake, tmp_path, ARM64)


def test_resolving_names_the_architecture_when_a_package_is_missing(tmp_path: Path) -> None:
    fake = arm64_mirror()
    with pytest.raises(DebianError, match="resolving arm64 packages: libc6 not found"):
        resolve_packages(["libc6"], ARM64, fake.mirror, tmp_path, fake.open)


# -- tags and finding a base ----------------------------------------------------------


def test_find_base_takes_only_an_image_of_the_architecture_asked_for(tmp_path: Path) -> None:
    engine = LoadingEngine(tmp_path)
    engine.present[base_tag("cc")] = "amd64"
    engine.present[distroless_ref("cc")] = "amd64"
    assert find_base(engine, "cc", "arm64") is None
    engine.present[base_tag("cc", "arm64")] = "arm64"
    assert find_base(engine, "cc", "arm64") == "slimmer/distroless-cc:debian12-arm64"
    engine.present[distroless_ref("cc", "arm64")] = "arm64"
    assert find_base(engine, "cc", "arm64") == "gcr.io/distroless/cc-debian12:latest-arm64"
    assert find_base(engine, "cc", "amd64") == "gcr.io/distroless/cc-debian12"
    engine.present[distroless_ref("cc")] = "arm64"  # pulled with --platform linux/arm64
    assert find_base(engine, "cc", "arm64") == "gcr.io/distroless/cc-debian12"
    assert find_base(engine, "cc", "amd64") == "slimmer/distroless-cc:debian12"


def test_list_bases_shows_each_platform_native_first_with_its_build_command(
    tmp_path: Path,
) -> None:
    engine = LoadingEngine(tmp_path)
    engine.present[base_tag("base", "arm64")] = "arm64"
    rows = list_bases(engine)
    assert [(r.platform, r.flavour) for r in rows[:5]] == [
        ("linux/amd64", "static"),
        ("linux/amd64", "base-nossl"),
        ("linux/amd64", "base"),
        ("linux/amd64", "cc"),
        ("linux/arm64", "static"),
    ]
    by = {(r.platform, r.flavour): r for r in rows}
    assert by["linux/arm64", "base"].ref == "slimmer/distroless-base:debian12-arm64"
    assert by["linux/arm64", "cc"].ref == ""
    assert by["linux/arm64", "cc"].build == "slim bases build --platform linux/arm64 cc"
    assert by["linux/amd64", "cc"].build == "slim bases build cc"
    assert build_command("cc", AMD64, ARM64) == "slim bases build --platform linux/amd64 cc"


# -- --base picks the image's platform --------------------------------------------------


def test_an_arm64_image_goes_on_the_arm64_base(tmp_path: Path) -> None:
    engine = LoadingEngine(tmp_path)
    engine.present[base_tag("base")] = "amd64"
    engine.present[base_tag("base", "arm64")] = "arm64"
    engine.present[base_tag("static", "arm64")] = "arm64"
    assert resolve_base(engine, "base", {}, "arm64").ref == base_tag("base", "arm64")
    assert resolve_base(engine, "base", {}, "amd64").ref == base_tag("base")
    assert resolve_base(engine, "base", {}, "").ref == base_tag("base")  # the engine's own
    auto = resolve_base(engine, "auto", {}, "arm64")
    assert (auto.flavour, auto.ref) == ("static", base_tag("static", "arm64"))


def test_a_missing_arm64_base_that_cannot_be_built_names_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIMMER_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    engine = LoadingEngine(tmp_path)
    with pytest.raises(DebianError) as caught:
        resolve_base(engine, "cc", {}, "arm64")
    message = str(caught.value)
    assert "127.0.0.1:9" in message and "\n" not in message
    assert "build it ahead with `slim bases build --platform linux/arm64 cc`" in message
    assert engine.tags == {}


def test_a_ref_of_another_platform_and_an_unknown_platform_are_refused(tmp_path: Path) -> None:
    engine = LoadingEngine(tmp_path)
    engine.present["my/base:1"] = "amd64"
    with pytest.raises(BaseRefused, match="my/base:1: it is a linux/amd64 image and the app is"):
        resolve_base(engine, "my/base:1", {}, "arm64")
    assert resolve_base(engine, "my/base:1", {}, "amd64").ref == "my/base:1"
    with pytest.raises(BaseRefused, match="--base auto: bases for linux/s390x"):
        resolve_base(engine, "auto", {}, "s390x")


def test_build_bases_refuses_an_unknown_platform_before_the_engine() -> None:
    from slimmer import api
    from slimmer.image.platforms import Platform

    arm64 = Platform("linux", "arm64")
    with pytest.raises(UsageError, match="bases for linux/riscv64"):
        api.build_bases(["base"], platforms=[arm64, Platform("linux", "riscv64")])


def test_the_cli_refuses_an_unknown_platform_with_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from slimmer.cli.main import main

    for argv, said in (
        (["bases", "build", "--platform", "linux/s390x", "base"], "bases for linux/s390x: "),
        (["bases", "build", "--platform", "arm64"], "expected OS/ARCH"),
    ):
        with pytest.raises(SystemExit) as caught:
            main(argv)
        assert caught.value.code == 2
        assert said in capsys.readouterr().err
