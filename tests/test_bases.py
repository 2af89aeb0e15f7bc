"""Distroless-style bases, without network or engine: Debian versions, deb822 and
`Packages` parsing, `.deb` unpacking (on `.deb`s built here with `ar` + `tar`),
hostile members, the recipe's invariants, the tree it assembles, and a whole
`build_base` against a fake mirror and a fake engine.

The version table was cross-checked with `dpkg --compare-versions` on a
Debian 12 host: all 1,444 ordered pairs of its versions agree.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from slimmer.bases import recipe
from slimmer.bases.arch import AMD64, DebianArch
from slimmer.bases.build import (
    FLAVOUR_LABEL,
    PACKAGES_LABEL,
    base_tag,
    build_base,
    distroless_ref,
    find_base,
)
from slimmer.bases.control import (
    Paragraph,
    depends_of,
    parse_paragraphs,
    release_files,
    scan_packages,
    status_text,
)
from slimmer.bases.debfile import DebContents, read_deb
from slimmer.bases.debian import Mirror, default_cache_dir, download, resolve_packages
from slimmer.bases.errors import DebianError
from slimmer.bases.libraries import missing_names, provided_libraries
from slimmer.bases.rootfs import assemble, rootfs_tree
from slimmer.bases.version import compare_versions, parse_version, version_key
from slimmer.engine_api import ImageInfo
from slimmer.errors import SlimError, UsageError
from slimmer.image.filetree import keep_all
from slimmer.image.reader import open_image
from slimmer.image.store import ContentStore
from slimmer.model import EntryType, FileEntry
from tests.fake_engine import UnusedEngine
from tests.memtree import make_elf

# -- versions ---------------------------------------------------------------------

ORDERED = [  # each sorts strictly before the next (dpkg agrees)
    "1.0~~",
    "1.0~",
    "1.0~rc1",
    "1.0",
    "1.0-1~bpo1",
    "1.0-1",
    "1.0-1+b1",
    "1.0-1+deb12u1",
    "1.0-1.1",
    "1.0a",
    "1.0+",
    "1.0.1",
    "1.2.3~a.b",
    "2.36-9+deb12u7",
    "2.36-9+deb12u14",
    "9",
    "10",
    "20230311+deb12u1",
    "20250419~deb12u2",
    "0:20250420",
    "1:0.1",
    "1:2-3-4",
]


def test_versions_sort_in_dpkg_order() -> None:
    for low, high in zip(ORDERED, ORDERED[1:], strict=False):
        assert compare_versions(low, high) == -1, (low, high)
        assert compare_versions(high, low) == 1, (high, low)
    assert sorted(reversed(ORDERED), key=version_key) == ORDERED


@pytest.mark.parametrize(
    ("a", "b"), [("1.0", "1.0-0"), ("0:1.0", "1.0"), ("1.00", "1.0"), ("1.0-01", "1.0-1")]
)
def test_equal_versions(a: str, b: str) -> None:
    assert compare_versions(a, b) == 0


def test_version_parts() -> None:
    v = parse_version("1:2.0-beta-3+b1")
    assert (v.epoch, v.upstream, v.revision, str(v)) == (1, "2.0-beta", "3+b1", "1:2.0-beta-3+b1")
    assert (parse_version("3.0.22").revision, parse_version("3.0.22").epoch) == ("", 0)


@pytest.mark.parametrize("text", ["", "a1.0", "x:1.0", "1:", "1.0-", "1.0 2", "1.0_1"])
def test_bad_versions_are_refused(text: str) -> None:
    with pytest.raises(DebianError, match="reading version"):
        parse_version(text)


# -- deb822, Release, Packages ------------------------------------------------------

PACKAGES = """\
Package: libc6
Version: 2.36-9+deb12u7
Architecture: amd64
Depends: libgcc-s1
Filename: pool/main/g/glibc/libc6_2.36-9+deb12u7_amd64.deb
Size: 2757936
SHA256: {sha}
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: libc6
Version: 2.36-9+deb12u7
Architecture: i386
Filename: pool/main/g/glibc/libc6_2.36-9+deb12u7_i386.deb
Size: 1
SHA256: {sha}

Package: tzdata
Version: 2026f-0+deb12u1
Architecture: all
Pre-Depends: awk:any
Depends: debconf (>= 0.5) | debconf-2.0, libc6:any [amd64] (>= 2.0)
Filename: pool/updates/main/t/tzdata/tzdata_2026f-0+deb12u1_all.deb
Size: 307832
SHA256: {sha}

Package: zsh
Version: 5.9-4
Architecture: amd64
Filename: pool/main/z/zsh/zsh_5.9-4_amd64.deb
Size: 1
SHA256: {sha}
""".format(sha="ab" * 32)


AMD_ALL = ("amd64", "all")


def test_scan_packages_takes_wanted_amd64_and_all_records() -> None:
    records = list(
        scan_packages(PACKAGES, ["libc6", "tzdata"], "bookworm", "http://m/debian/", AMD_ALL)
    )
    assert [(r.name, r.architecture) for r in records] == [("libc6", "amd64"), ("tzdata", "all")]
    libc = records[0]
    assert libc.url == "http://m/debian/pool/main/g/glibc/libc6_2.36-9+deb12u7_amd64.deb"
    assert (libc.size, libc.sha256, libc.depends) == (2757936, "ab" * 32, ("libgcc-s1",))
    assert libc.deb_name == "libc6_2.36-9+deb12u7_amd64.deb"
    assert records[1].depends == ("awk", "debconf", "libc6")


def test_paragraph_keeps_continuation_lines_and_round_trips() -> None:
    para = parse_paragraphs(PACKAGES, "sample")[0]
    assert para.get("description").startswith("GNU C Library: Shared libraries\n Contains")
    assert parse_paragraphs(para.text(), "again")[0] == para


@pytest.mark.parametrize(
    "text", [" starts with a continuation\n", "Package libc6\n", "Two Words: x\n"]
)
def test_malformed_paragraphs_are_refused(text: str) -> None:
    with pytest.raises(DebianError, match="reading sample"):
        parse_paragraphs(text, "sample")


def test_unsafe_filename_is_refused() -> None:
    text = PACKAGES.replace("pool/main/z/zsh/zsh_5.9-4_amd64.deb", "../../etc/x.deb")
    with pytest.raises(DebianError, match="unsafe Filename"):
        list(scan_packages(text, ["zsh"], "bookworm", "http://m", AMD_ALL))


def test_release_files_and_status_text() -> None:
    release = parse_paragraphs(
        f"Codename: bookworm\nSHA256:\n {'cd' * 32}   1234 main/binary-amd64/Packages.xz\n",
        "Release",
    )[0]
    listed = release_files(release, "Release")["main/binary-amd64/Packages.xz"]
    assert (listed.sha256, listed.size) == ("cd" * 32, 1234)
    with pytest.raises(DebianError, match="no SHA256 list"):
        release_files(Paragraph((("Codename", "bookworm"),)), "Release")
    control = parse_paragraphs("Package: a\nVersion: 1\nStatus: purge\nDepends: b\n", "c")[0]
    assert status_text(control) == (
        "Package: a\nStatus: install ok installed\nVersion: 1\nDepends: b\n"
    )
    assert depends_of(control) == ("b",)


# -- a fake mirror ------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    name: str
    data: bytes = b""
    kind: str = "file"  # file, dir, symlink, hardlink, fifo
    link: str = ""
    mode: int = 0o644
    mtime: int = 1_700_000_000


def tar_bytes(members: Iterable[Member]) -> bytes:
    kinds = {
        "file": tarfile.REGTYPE,
        "dir": tarfile.DIRTYPE,
        "symlink": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
        "fifo": tarfile.FIFOTYPE,
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type, info.linkname, info.mode, info.mtime = kinds[m.kind], m.link, m.mode, m.mtime
            info.size = len(m.data) if m.kind == "file" else 0
            tf.addfile(info, io.BytesIO(m.data) if m.kind == "file" else None)
    return buf.getvalue()


def ar_bytes(members: Iterable[tuple[str, bytes]]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members:
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n"
        out += header.encode() + data + (b"\n" if len(data) % 2 else b"")
    return out


def deb_bytes(
    control: str, members: Iterable[Member], data_ext: str = "xz", md5sums: str = ""
) -> bytes:
    control_files = [Member("./control", control.encode())]
    if md5sums:
        control_files.append(Member("./md5sums", md5sums.encode()))
    compress: dict[str, Callable[[bytes], bytes]] = {
        "xz": lzma.compress,
        "gz": gzip.compress,
        "zst": lambda d: b"(\xb5/\xfd" + d,
    }
    return ar_bytes(
        [
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", gzip.compress(tar_bytes(control_files))),
            (f"data.tar.{data_ext}", compress[data_ext](tar_bytes(members))),
        ]
    )


def md5_lines(members: Iterable[Member]) -> str:
    return "".join(
        f"{hashlib.md5(m.data).hexdigest()}  {m.name.removeprefix('./')}\n"
        for m in members
        if m.kind == "file"
    )


def control_text(name: str, version: str, depends: str = "", arch: str = "amd64") -> str:
    text = f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: t <t@t>\n"
    return text + (f"Depends: {depends}\n" if depends else "") + "Description: test\n"


@dataclass
class FakeMirror:
    """Serves `Release`, `Packages.xz` and `.deb`s of three pockets from memory, of
    `arch`'s index (each package built for `arch`)."""

    files: dict[str, bytes] = field(default_factory=dict)
    packages: dict[str, list[str]] = field(default_factory=dict)
    opened: list[str] = field(default_factory=list)
    mirror: Mirror = Mirror("http://fake/debian", "http://fake/debian-security")
    arch: DebianArch = AMD64

    def add(
        self, suite: str, name: str, version: str, members: list[Member], depends: str = ""
    ) -> None:
        base = self.mirror.security if suite.endswith("security") else self.mirror.debian
        control = control_text(name, version, depends, self.arch.name)
        deb = deb_bytes(control, members, md5sums=md5_lines(members))
        filename = f"pool/main/{name[0]}/{name}/{name}_{version}_{self.arch.name}.deb"
        self.files[f"{base}/{filename}"] = deb
        self.packages.setdefault(suite, []).append(
            control + f"Filename: {filename}\nSize: {len(deb)}\nSHA256: {_sha(deb)}\n"
        )

    def publish(self) -> None:
        index_path = f"main/binary-{self.arch.name}/Packages.xz"
        for pocket in self.mirror.pockets:
            index = lzma.compress("\n".join(self.packages.get(pocket.suite, [])).encode())
            listing = f" {_sha(index)} {len(index)} {index_path}"
            self.files[f"{pocket.dists_url}/{index_path}"] = index
            release = f"Codename: {pocket.suite}\nSHA256:\n{listing}\n"
            self.files[f"{pocket.dists_url}/Release"] = release.encode()

    def open(self, url: str) -> IO[bytes]:
        self.opened.append(url)
        if url not in self.files:
            raise OSError(f"404 {url}")
        return io.BytesIO(self.files[url])


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_resolve_takes_the_highest_version_across_pockets(tmp_path: Path) -> None:
    fake = FakeMirror()
    fake.add("bookworm", "libc6", "2.36-9+deb12u14", [])
    fake.add("bookworm-security", "libc6", "2.36-9+deb12u7", [])
    fake.add("bookworm-security", "libssl3", "3.0.22-1~deb12u2", [])
    fake.add("bookworm-updates", "libssl3", "3.0.17-1~deb12u2", [])
    fake.publish()
    got = resolve_packages(["libc6", "libssl3"], AMD64, fake.mirror, tmp_path, fake.open)
    assert {n: (r.version, r.origin) for n, r in got.items()} == {
        "libc6": ("2.36-9+deb12u14", "bookworm"),
        "libssl3": ("3.0.22-1~deb12u2", "bookworm-security"),
    }
    with pytest.raises(DebianError, match="zsh not found in bookworm, bookworm-updates"):
        resolve_packages(["zsh"], AMD64, fake.mirror, tmp_path, fake.open)


def test_an_index_whose_hash_does_not_match_its_release_is_refused(tmp_path: Path) -> None:
    fake = FakeMirror()
    fake.publish()
    url = "http://fake/debian/dists/bookworm/main/binary-amd64/Packages.xz"
    fake.files[url] = lzma.compress(b"Package: evil\n")
    with pytest.raises(DebianError, match=f"verifying {url}: "):
        resolve_packages(["libc6"], AMD64, fake.mirror, tmp_path, fake.open)
    fake.files["http://fake/debian/dists/bookworm/Release"] = b"Codename: trixie\n"
    with pytest.raises(DebianError, match="describes 'trixie', not 'bookworm'"):
        resolve_packages(["libc6"], AMD64, fake.mirror, tmp_path, fake.open)


def test_download_verifies_and_reuses_the_cache(tmp_path: Path) -> None:
    data = b"deb bytes"
    fake = FakeMirror(files={"http://x/a.deb": data})
    dest = tmp_path / "a.deb"
    with pytest.raises(DebianError, match="verifying http://x/a.deb: sha256 mismatch"):
        download("http://x/a.deb", dest, "00" * 32, len(data), fake.open)
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left behind
    download("http://x/a.deb", dest, _sha(data), len(data), fake.open)
    download("http://x/a.deb", dest, _sha(data), len(data), fake.open)
    assert dest.read_bytes() == data and fake.opened.count("http://x/a.deb") == 2
    with pytest.raises(DebianError, match="downloading http://x/b.deb: 404"):
        download("http://x/b.deb", tmp_path / "b.deb", _sha(data), 1, fake.open)


def test_mirror_and_cache_come_from_the_environment() -> None:
    assert Mirror.from_env({}) == Mirror()
    assert Mirror.from_env({"SLIMMER_DEBIAN_MIRROR": "http://proxy/debian/"}) == Mirror(
        "http://proxy/debian", "http://proxy/debian-security"
    )
    env = {"SLIMMER_DEBIAN_MIRROR": "http://p/d", "SLIMMER_DEBIAN_SECURITY_MIRROR": "http://p/s"}
    assert Mirror.from_env(env) == Mirror("http://p/d", "http://p/s")
    assert default_cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/slimmer/debs")


# -- .deb files --------------------------------------------------------------------

ELF = make_elf(soname="libx.so.1")
MEMBERS = [
    Member("./", kind="dir", mode=0o755),
    Member("./usr/", kind="dir", mode=0o755),
    Member("./usr/lib/", kind="dir", mode=0o755),
    Member("./usr/lib/libx.so.1.0", ELF),
    Member("./usr/lib/libx.so.1", kind="symlink", link="libx.so.1.0", mode=0o777),
    Member("./usr/lib/hard", kind="hardlink", link="./usr/lib/libx.so.1.0"),
    Member("./usr/share/doc/x/changelog.gz", b"log"),
    Member("./usr/share/doc/x/copyright", b"(c)"),
    Member("/etc/abs.conf", b"abs", mode=0o600),
]


def write_deb(tmp_path: Path, members: list[Member], data_ext: str = "xz") -> Path:
    path = tmp_path / "x_1.0_amd64.deb"
    path.write_bytes(deb_bytes(control_text("x", "1.0"), members, data_ext, md5_lines(members)))
    return path


@pytest.mark.parametrize("data_ext", ["xz", "gz"])
def test_read_deb(tmp_path: Path, data_ext: str) -> None:
    store = ContentStore(tmp_path / "store")
    deb = read_deb(write_deb(tmp_path, MEMBERS, data_ext), store, keep_all)
    assert (deb.name, deb.control.get("Version")) == ("x", "1.0")
    assert [name for _, name in deb.md5sums][0] == "usr/lib/libx.so.1.0" and len(deb.md5sums) == 4
    by_path = {e.path: e for e in deb.entries}
    assert "/" not in by_path and by_path["/etc/abs.conf"].mode == 0o600
    lib = by_path["/usr/lib/libx.so.1.0"]
    assert lib.is_elf and lib.content and store.read(lib.content) == ELF
    assert by_path["/usr/lib/libx.so.1"].link == "libx.so.1.0"
    assert by_path["/usr/lib/hard"].type is EntryType.HARDLINK
    assert by_path["/usr/lib/hard"].link == "/usr/lib/libx.so.1.0"
    assert by_path["/usr/lib"].mtime == 1_700_000_000


def test_read_deb_keeps_only_what_it_is_told(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    deb = read_deb(write_deb(tmp_path, MEMBERS), store, lambda p: not recipe.is_dropped(p))
    paths = {e.path for e in deb.entries}
    assert "/usr/share/doc/x/copyright" in paths and "/usr/share/doc/x/changelog.gz" not in paths
    assert store.root.joinpath(_sha(b"log")[:2], _sha(b"log")).exists() is False


def test_zstd_data_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(DebianError, match="data.tar.zst is zstd-compressed.*Python 3.14"):
        read_deb(write_deb(tmp_path, MEMBERS, "zst"), ContentStore(tmp_path / "s"), keep_all)


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (Member("./usr/../../etc/passwd", b"x"), "has a '..' component"),
        (Member("./etc/.wh.passwd", b""), "is a whiteout name"),
        (Member("./run/fifo", kind="fifo"), "unsupported type"),
        (Member("./etc/h", kind="hardlink", link="../../etc/shadow"), "'..' component"),
        (Member(".", b"x"), "a non-directory at the root"),
    ],
)
def test_hostile_members_refuse_the_package(tmp_path: Path, member: Member, why: str) -> None:
    with pytest.raises(DebianError, match=f"unpacking x_1.0_amd64.deb: .*{why}"):
        read_deb(write_deb(tmp_path, [member]), ContentStore(tmp_path / "s"), keep_all)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"PK\x03\x04", "not an ar archive"),
        (ar_bytes([("debian-binary", b"2.0\n")])[:30], "truncated or corrupt ar header"),
        (ar_bytes([("debian-binary", b"2.0\n")]), "no control member"),
        (ar_bytes([("debian-binary", b"3.0\n"), ("control.tar", b""), ("data.tar", b"")]), "2.x"),
    ],
)
def test_malformed_debs_are_refused(tmp_path: Path, data: bytes, why: str) -> None:
    path = tmp_path / "bad.deb"
    path.write_bytes(data)
    with pytest.raises(DebianError, match=why):
        read_deb(path, ContentStore(tmp_path / "s"), keep_all)


def test_a_truncated_data_archive_is_refused(tmp_path: Path) -> None:
    good = write_deb(tmp_path, MEMBERS).read_bytes()
    bad = tmp_path / "cut.deb"
    bad.write_bytes(good[: len(good) - 200])
    with pytest.raises(DebianError, match="unpacking cut.deb: "):
        read_deb(bad, ContentStore(tmp_path / "s"), keep_all)


# -- the recipe -------------------------------------------------------------------

# Pre-Depends and Depends (first alternatives) of the Debian 12 packages, as the
# bookworm, bookworm-updates and bookworm-security indexes gave them in 2026.
BOOKWORM_DEPENDS = {
    "base-files": ("awk",),
    "netbase": (),
    "tzdata": ("debconf",),
    "media-types": (),
    "libc6": ("libgcc-s1",),
    "libssl3": ("libc6",),
    "libgcc-s1": ("gcc-12-base", "libc6"),
    "gcc-12-base": (),
    "libgomp1": ("gcc-12-base", "libc6"),
    "libstdc++6": ("gcc-12-base", "libc6", "libgcc-s1"),
}


def test_flavours_nest_as_distroless_does() -> None:
    assert recipe.packages_of("static") == ("base-files", "netbase", "tzdata", "media-types")
    assert recipe.packages_of("base-nossl") == (*recipe.packages_of("static"), "libc6")
    assert recipe.packages_of("base") == (*recipe.packages_of("base-nossl"), "libssl3")
    assert set(recipe.packages_of("cc")) - set(recipe.packages_of("base")) == {
        "libgcc-s1",
        "gcc-12-base",
        "libgomp1",
        "libstdc++6",
    }
    for name in recipe.FLAVOURS:
        assert recipe.downloads_of(name)[-1] == "ca-certificates"
        assert "ca-certificates" not in recipe.packages_of(name)
    with pytest.raises(UsageError, match="base flavour 'java': unknown; known: static"):
        recipe.flavour("java")


@pytest.mark.parametrize("name", sorted(recipe.FLAVOURS))
def test_every_dependency_is_installed_or_ignored_on_purpose(name: str) -> None:
    assert recipe.missing_depends(name, BOOKWORM_DEPENDS) == []
    assert set(BOOKWORM_DEPENDS) >= set(recipe.packages_of(name))


def test_a_new_dependency_is_reported() -> None:
    depends = {**BOOKWORM_DEPENDS, "libssl3": ("libc6", "libzstd1")}
    assert recipe.missing_depends("base", depends) == ["libssl3 needs libzstd1"]
    assert recipe.missing_depends("base-nossl", depends) == []
    assert all(reason for reason in recipe.IGNORED_DEPENDS.values())


@pytest.mark.parametrize(
    ("path", "dropped"),
    [
        ("/usr/share/doc", False),
        ("/usr/share/doc/libc6", False),
        ("/usr/share/doc/libc6/copyright", False),
        ("/usr/share/doc/libc6/changelog.Debian.gz", True),
        ("/usr/share/doc/libc6/examples/copyright", True),
        ("/usr/share/man", True),
        ("/usr/share/man/man1/ls.1.gz", True),
        ("/usr/share/info/dir", True),
        ("/usr/share/lintian/overrides/libc6", True),
        ("/usr/share/mandoc", False),
        ("/usr/share/zoneinfo/UTC", False),
    ],
)
def test_what_is_dropped(path: str, dropped: bool) -> None:
    assert recipe.is_dropped(path) is dropped


def test_ca_bundle_is_sorted_pem_each_ending_in_a_newline() -> None:
    pem = "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----"
    certs = [
        ("/usr/share/ca-certificates/mozilla/b.crt", pem.format("B").encode()),
        ("/usr/share/ca-certificates/mozilla/B.crt", (pem.format("upper") + "\n").encode()),
        ("/usr/share/ca-certificates/mozilla/a.crt", pem.format("A").encode()),
    ]
    bundle = recipe.ca_bundle(certs).decode()
    assert [line for line in bundle.splitlines() if "-" not in line] == ["upper", "A", "B"]
    assert bundle.endswith("-----END CERTIFICATE-----\n") and "\n\n" not in bundle
    with pytest.raises(ValueError, match="not a PEM certificate"):
        recipe.ca_bundle([("/x.crt", b"junk")])
    with pytest.raises(ValueError, match="no certificates"):
        recipe.ca_bundle([])
    assert recipe.is_ca_source("/usr/share/ca-certificates/mozilla/a.crt")
    assert not recipe.is_ca_source("/usr/share/ca-certificates/mozilla/sub/a.crt")
    assert not recipe.is_ca_source("/usr/sbin/update-ca-certificates")


def test_users_and_groups_match_distroless() -> None:
    files = {g.path: g for g in recipe.generated()}
    assert files["/etc/passwd"].data == (
        b"root:x:0:0:root:/root:/sbin/nologin\n"
        b"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
        b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
    )
    assert files["/etc/group"].data == (
        b"root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n"
    )
    home = files["/home/nonroot"]
    assert (home.data, home.mode, home.uid, home.gid) == (None, 0o700, 65532, 65532)
    assert (files["/tmp"].mode, files["/root"].mode) == (0o1777, 0o700)


# -- the assembled tree ---------------------------------------------------------------

CERT = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
CERT_Z = CERT.replace(b"MIIB", b"MIIZ")


def static_debs(tmp_path: Path, store: ContentStore) -> dict[str, DebContents]:
    specs: dict[str, list[Member]] = {
        "base-files": [
            Member("./etc/", kind="dir", mode=0o755, mtime=1),
            Member("./etc/os-release", kind="symlink", link="../usr/lib/os-release"),
            Member("./usr/lib/os-release", b'PRETTY_NAME="Debian"\n'),
            Member("./root/", kind="dir", mode=0o700),
            Member("./usr/share/doc/base-files/copyright", b"(c)"),
            Member("./usr/share/doc/base-files/README", b"readme"),
        ],
        "netbase": [
            Member("./etc/", kind="dir", mode=0o755, mtime=2),
            Member("./etc/services", b"http 80/tcp\n"),
        ],
        "tzdata": [Member("./usr/share/zoneinfo/UTC", b"TZif")],
        "media-types": [Member("./etc/mime.types", b"text/plain txt\n")],
        "ca-certificates": [
            Member("./usr/share/ca-certificates/mozilla/Z.crt", CERT_Z),
            Member("./usr/share/ca-certificates/mozilla/A.crt", CERT),
            Member("./usr/share/doc/ca-certificates/copyright", b"(c) ca"),
            Member("./usr/sbin/update-ca-certificates", b"#!/bin/sh\n", mode=0o755),
        ],
    }
    out = {}
    for name, members in specs.items():
        path = tmp_path / f"{name}.deb"
        path.write_bytes(deb_bytes(control_text(name, "1.0"), members, md5sums=md5_lines(members)))
        keep = recipe.is_ca_source if name == "ca-certificates" else _not_dropped
        out[name] = read_deb(path, store, keep)
    return out


def _not_dropped(path: str) -> bool:
    return not recipe.is_dropped(path)


def test_assemble_static(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    rootfs = assemble("static", AMD64, static_debs(tmp_path, store), store)
    tree = {e.path: e for e in rootfs.entries}
    assert [e.path for e in rootfs.entries] == sorted(tree)
    assert tree["/etc"].mtime == 2  # the later package's directory wins, as layers do
    assert "/usr/share/doc/base-files/README" not in tree
    assert "/usr/sbin/update-ca-certificates" not in tree  # ca-certificates is not installed
    assert store.read(_content(tree["/etc/ssl/certs/ca-certificates.crt"])) == CERT + CERT_Z
    assert store.read(_content(tree["/usr/lib/os-release"])).startswith(b'PRETTY_NAME="Distroless"')
    status = store.read(_content(tree["/var/lib/dpkg/status.d/netbase"])).decode()
    assert status.startswith("Package: netbase\nStatus: install ok installed\nVersion: 1.0\n")
    md5 = store.read(_content(tree["/var/lib/dpkg/status.d/base-files.md5sums"])).decode()
    assert md5 == f"{hashlib.md5(b'(c)').hexdigest()}  usr/share/doc/base-files/copyright\n"
    assert "/var/lib/dpkg/status.d/ca-certificates" not in tree
    assert tree["/var/lib/dpkg/status.d"].mode == 0o755 and tree["/var"].is_dir
    assert (tree["/tmp"].mode, tree["/root"].mode, tree["/home/nonroot"].uid) == (
        0o1777,
        0o700,
        65532,
    )
    assert [p.name for p in rootfs.packages] == ["base-files", "media-types", "netbase", "tzdata"]


def _content(entry: FileEntry) -> str:
    assert entry.content is not None
    return entry.content


def test_a_file_two_packages_ship_is_a_conflict(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    debs = static_debs(tmp_path, store)
    clash = FileEntry("/etc/services", EntryType.FILE, size=0)
    debs["tzdata"] = DebContents("tzdata", debs["tzdata"].control, (), (clash,))
    with pytest.raises(DebianError, match="installing tzdata: /etc/services is also in netbase"):
        assemble("static", AMD64, debs, store)


def test_provided_libraries_follow_symlinks_and_read_sonames(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    debs = static_debs(tmp_path, store)
    lib_members = [
        Member("./lib/x86_64-linux-gnu/libc.so.6", make_elf(soname="libc.so.6")),
        Member("./usr/lib/x86_64-linux-gnu/libz.so.1.3", make_elf(soname="libz.so.1")),
        Member("./usr/lib/x86_64-linux-gnu/libz.so.1", kind="symlink", link="libz.so.1.3"),
        Member("./usr/lib/x86_64-linux-gnu/libgone.so.1", kind="symlink", link="nowhere"),
        Member("./usr/lib/x86_64-linux-gnu/notes.so.txt", b"not elf"),
        Member(
            "./lib64/ld-linux-x86-64.so.2", kind="symlink", link="/lib/x86_64-linux-gnu/libc.so.6"
        ),
    ]
    path = tmp_path / "libc6.deb"
    path.write_bytes(deb_bytes(control_text("libc6", "2.36"), lib_members))
    debs["libc6"] = read_deb(path, store, keep_all)
    rootfs = assemble("base-nossl", AMD64, debs, store)
    libs = provided_libraries(rootfs_tree(rootfs, store), AMD64.search_dirs)
    # merged-/usr: /lib and /lib64 are links into /usr, so each library has two names
    libc, libz = "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libz.so.1.3"
    assert [(lib.path, lib.target, lib.soname) for lib in libs] == [
        ("/lib/x86_64-linux-gnu/libc.so.6", libc, "libc.so.6"),
        ("/lib/x86_64-linux-gnu/libz.so.1", libz, "libz.so.1"),
        ("/lib/x86_64-linux-gnu/libz.so.1.3", libz, "libz.so.1"),
        ("/lib64/ld-linux-x86-64.so.2", libc, "libc.so.6"),
        (libc, libc, "libc.so.6"),
        ("/usr/lib/x86_64-linux-gnu/libz.so.1", libz, "libz.so.1"),
        (libz, libz, "libz.so.1"),
    ]
    assert missing_names(libs, ["libc.so.6", "libz.so.1", "libssl.so.3"]) == ("libssl.so.3",)


# -- build_base against a fake mirror and engine ------------------------------------------


@dataclass
class LoadingEngine(UnusedEngine):
    """Keeps each loaded archive on disk and remembers tags; an engine of `native`
    architecture that has the images of `present` (ref -> architecture)."""

    spool: Path
    tags: dict[str, str] = field(default_factory=dict)
    archives: list[Path] = field(default_factory=list)
    present: dict[str, str] = field(default_factory=dict)
    native: str = "amd64"

    def platform(self) -> tuple[str, str]:
        return "linux", self.native

    def load_image(self, archive: IO[bytes] | bytes | Iterable[bytes]) -> list[str]:
        assert isinstance(archive, io.BufferedReader)
        path = self.spool / f"loaded-{len(self.archives)}.tar"
        path.write_bytes(archive.read())
        self.archives.append(path)
        return []

    def tag_image(self, image_id: str, ref: str) -> None:
        self.tags[ref] = image_id

    def image_exists(self, ref: str) -> bool:
        return ref in self.present

    def inspect_image(self, ref: str) -> ImageInfo:
        arch = self.present[ref]
        return ImageInfo(f"sha256:{_sha(ref.encode())}", (ref,), {}, {}, 1, arch, "linux")


def static_mirror() -> FakeMirror:
    fake = FakeMirror()
    fake.add("bookworm", "base-files", "12.4+deb12u15", [Member("./etc/debian_version", b"12\n")])
    fake.add("bookworm", "netbase", "6.4", [Member("./etc/services", b"http 80/tcp\n")])
    fake.add("bookworm", "tzdata", "2026b-0", [Member("./usr/share/zoneinfo/UTC", b"TZ")])
    fake.add("bookworm-security", "tzdata", "2026f-0", [Member("./usr/share/zoneinfo/UTC", b"TZ2")])
    fake.add("bookworm", "media-types", "10.0.0", [Member("./etc/mime.types", b"")], "debconf")
    ca = Member("./usr/share/ca-certificates/mozilla/A.crt", CERT)
    fake.add("bookworm", "ca-certificates", "20250419", [ca], "openssl (>= 1.1.1)")
    fake.publish()
    return fake


def test_build_base_is_deterministic_and_labelled(tmp_path: Path) -> None:
    fake, engine = static_mirror(), LoadingEngine(tmp_path)
    built = [
        build_base(
            engine,
            "static",
            workdir=tmp_path,
            cache_dir=tmp_path / "c",
            mirror=fake.mirror,
            opener=fake.open,
        )
        for _ in range(2)
    ]
    assert built[0] == built[1]
    assert engine.tags == {tag: built[0].image_id for tag in built[0].tags}
    assert built[0].tags == (base_tag("static"), "slimmer/distroless-static:debian12-amd64")
    assert dict(built[0].packages)["tzdata"] == "2026f-0" and built[0].libraries == ()
    assert sum(url.endswith(".deb") for url in fake.opened) == 5  # the second build used the cache
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "loaded-0.tar", "loaded-1.tar"]
    with open_image(f"docker-archive:{engine.archives[0]}", want=keep_all) as image:
        assert image.id == built[0].image_id and len(image.layers) == 1
        labels = image.config.container["Labels"]
        assert labels[FLAVOUR_LABEL] == "static"
        assert labels[PACKAGES_LABEL].startswith("base-files=12.4+deb12u15 media-types=10.0.0")
        assert image.config.env["SSL_CERT_FILE"] == "/etc/ssl/certs/ca-certificates.crt"
        assert (image.config.user, image.config.working_dir) == ("", "/")
        assert image.tree.read_bytes("/usr/share/zoneinfo/UTC") == b"TZ2"
        assert image.tree.read_bytes("/etc/ssl/certs/ca-certificates.crt") == CERT
        entry = image.tree.get("/tmp")
        assert entry is not None and entry.mode == 0o1777


def test_build_base_refuses_an_unmet_dependency(tmp_path: Path) -> None:
    fake = static_mirror()
    fake.add("bookworm-updates", "netbase", "6.5", [], "libc6 (>= 2.36)")
    fake.publish()
    with pytest.raises(DebianError, match="checking the static recipe: netbase needs libc6"):
        build_base(
            LoadingEngine(tmp_path),
            "static",
            workdir=tmp_path,
            cache_dir=tmp_path / "c",
            mirror=fake.mirror,
            opener=fake.open,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # the work directory is gone


def test_find_base_prefers_googles_image(tmp_path: Path) -> None:
    engine = LoadingEngine(tmp_path)
    assert find_base(engine, "cc", "amd64") is None
    engine.present["slimmer/distroless-cc:debian12"] = "amd64"
    assert find_base(engine, "cc", "amd64") == "slimmer/distroless-cc:debian12"
    engine.present["gcr.io/distroless/cc-debian12"] = "amd64"
    got = find_base(engine, "cc", "amd64")
    assert got == distroless_ref("cc") == "gcr.io/distroless/cc-debian12"
    assert base_tag("base-nossl") == "slimmer/distroless-base-nossl:debian12"
    assert issubclass(DebianError, SlimError)
