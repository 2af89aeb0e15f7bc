"""Profiles: the TOML format and its errors, globs, and each shipped profile on a
synthetic image: applies when it should, not when it should not, adds what it says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from slimmer.errors import UsageError
from slimmer.image.filetree import FileTree, LayerChanges
from slimmer.image.paths import PathIndex, compile_glob, expand
from slimmer.model import EntryType, FileEntry, ImageConfig
from slimmer.plan.keep import Addition, GeneratedFile, ProfileContext
from slimmer.plan.profiles import (
    apply_profiles,
    detect,
    list_profiles,
    load_profile,
    load_profiles,
    profile_dirs,
    profiles_fn,
)
from slimmer.resources import builtin_profiles
from tests.profile_kit import ELF, TRIPLET, Maker, context, d, debian_base, f, factory, ln
from tests.synth import M
from tests.test_elf_imports import elf_with_dynsym

PROFILES = load_profiles()
NAMES = {p.name for p in PROFILES}


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Maker]:
    yield from factory(tmp_path)


def run(ctx: ProfileContext, name: str) -> tuple[list[Addition], list[GeneratedFile]]:
    return apply_profiles(PROFILES, ctx, only={name})


def paths(ctx: ProfileContext, name: str) -> set[str]:
    return {a.path for a in run(ctx, name)[0]}


# -- the shipped set ------------------------------------------------------------------


def test_shipped_profiles_load_and_are_listed() -> None:
    required = {
        "glibc",
        "ca-certificates",
        "tzdata",
        "locales",
        "openssl",
        "python",
        "node",
        "jvm",
        "nginx",
        "app-dirs",
        "dpkg",
        "apk",
        "runtime-dirs",
    }
    assert required <= NAMES
    assert list_profiles() == tuple(sorted(NAMES))
    assert profile_dirs() == (builtin_profiles(),)
    shipped = sorted(
        p.name for p in (Path(__file__).resolve().parent.parent / "profiles").glob("*.toml")
    )
    assert sorted(f"{n}.toml" for n in NAMES) == shipped


def test_profiles_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "only-one.toml").write_text(
        'name = "only-one"\ndescription = "x"\n[when]\nalways = true\n'
        '[keep]\nreason = "r"\npaths = ["/x"]\n'
    )
    monkeypatch.setenv("SLIMMER_PROFILES", str(tmp_path))
    assert list_profiles() == ("only-one",)
    monkeypatch.setenv("SLIMMER_PROFILES", str(tmp_path / "missing"))
    with pytest.raises(UsageError, match="SLIMMER_PROFILES"):
        load_profiles()


def test_extra_profile_dirs_add_and_replace_by_name(tmp_path: Path) -> None:
    """--profiles-dir adds a directory beside the built-in profiles; a profile named
    like a built-in one replaces it."""
    (tmp_path / "site.toml").write_text(
        'name = "site"\ndescription = "ours"\n[when]\nalways = true\n'
        '[keep]\nreason = "r"\npaths = ["/srv/**"]\n'
    )
    (tmp_path / "tzdata.toml").write_text(
        'name = "tzdata"\ndescription = "only UTC"\n[when]\nalways = true\n'
        '[keep]\nreason = "r"\npaths = ["/usr/share/zoneinfo/UTC"]\n'
    )
    loaded = {p.name: p for p in load_profiles(profile_dirs([tmp_path]))}
    assert set(loaded) == NAMES | {"site"}
    assert loaded["tzdata"].description == "only UTC"
    assert loaded["tzdata"].source == str(tmp_path / "tzdata.toml")


# -- bad files ---------------------------------------------------------------------------

GOOD = 'name = "p"\ndescription = "d"\n[when]\nalways = true\n'


@pytest.mark.parametrize(
    ("body", "key", "value"),
    [
        ('name = "p"\ndescription = "d"\n[when\n', "TOML", ""),
        (GOOD + '[keep]\nreason = "r"\npaths = ["usr/lib"]\n', "keep.paths", "'usr/lib'"),
        (GOOD + '[keep]\nreason = "r"\npaths = ["/usr/../etc"]\n', "keep.paths", "'/usr/../etc'"),
        (GOOD + '[keep]\nreason = "r"\npaths = "/x"\n', "keep.paths", "'/x'"),
        (GOOD + '[keep]\nexpand = ["nope"]\n', "keep.expand", "'nope'"),
        (GOOD + '[keep]\npaths = ["/x"]\n', "keep.reason", "''"),
        (GOOD + '[keep]\nreason = "r"\npaths = ["/x"]\nclosure = "yes"\n', "keep.closure", "'yes'"),
        (GOOD + '[keep]\nreason = "r"\npaths = ["/x"]\ncolsure = true\n', "keep.colsure", "True"),
        (GOOD + '[keep]\nreason = "r"\n', "keep", "{'reason': 'r'}"),
        (GOOD, "keep", "None"),
        (
            'name = "q"\ndescription = "d"\n[when]\nalways = true\n[keep]\nexpand = ["nss"]\n',
            "name",
            "'q'",
        ),
        ('name = "p"\ndescription = "d"\n[keep]\nexpand = ["nss"]\n', "when", "None"),
        (
            'name = "p"\ndescription = "d"\n[when]\nenv = ["A=B"]\n[keep]\nexpand = ["nss"]\n',
            "when.env",
            "'A=B'",
        ),
        (
            'name = "p"\ndescription = "d"\n[when]\ntraced = [1]\n[keep]\nexpand = ["nss"]\n',
            "when.traced",
            "[1]",
        ),
        (
            GOOD + '[[rule]]\nwhen.imports = ["iconv_open@GLIBC_2.2.5"]\nkeep.expand = ["nss"]\n',
            "rule[0].when.imports",
            "'iconv_open@GLIBC_2.2.5'",
        ),
        (
            GOOD + '[[rule]]\nwhen.kept = ["/x"]\nwhen.imports_except = ["/y"]\n'
            'keep.expand = ["nss"]\n',
            "rule[0].when.imports_except",
            "['/y']",
        ),
        (
            GOOD + '[[rule]]\nwhen.kept = ["/x"]\nwhen.imports_ran_without = ["/y"]\n'
            'keep.expand = ["nss"]\n',
            "rule[0].when.imports_ran_without",
            "['/y']",
        ),
        (
            GOOD + '[[rule]]\nwhen.imports = ["f"]\nwhen.imports_ran_locale = ["C"]\n'
            'keep.expand = ["nss"]\n',
            "rule[0].when.imports_ran_locale",
            "['C']",
        ),
        (
            GOOD + '[[rule]]\nwhen.kept = []\nkeep.expand = ["nss"]\n',
            "rule[0].when",
            "{'kept': []}",
        ),
        (
            GOOD + '[[rule]]\nkeep.paths = ["/x"]\nkeep.reason = "r"\nsometimes = 1\n',
            "rule[0].sometimes",
            "1",
        ),
    ],
)
def test_bad_profile_names_file_key_and_value(
    tmp_path: Path, body: str, key: str, value: str
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(body)
    with pytest.raises(UsageError) as err:
        load_profile(path)
    assert str(path) in str(err.value)
    assert key in str(err.value)
    assert value in str(err.value)


def test_unknown_profile_names_are_usage_errors(make: Maker) -> None:
    ctx = context(make(debian_base()))
    with pytest.raises(UsageError, match="--no-profile nope: no such profile"):
        apply_profiles(PROFILES, ctx, disabled={"nope"})
    with pytest.raises(UsageError, match="--profile nope"):
        profiles_fn(only={"nope"})


# -- globs ---------------------------------------------------------------------------------


def test_glob_regex_semantics() -> None:
    deep = compile_glob("/usr/**/libc.so.6")
    assert deep.regex.match("/usr/libc.so.6") and deep.regex.match("/usr/a/b/libc.so.6")
    assert not deep.regex.match("/usr/a/libc.so.60")
    below = compile_glob("/etc/ssl/**")
    assert below.regex.match("/etc/ssl/certs/x.pem") and not below.regex.match("/etc/ssl")
    star = compile_glob("/usr/lib/*/libssl.so.[0-9]")
    assert star.regex.match("/usr/lib/x86_64-linux-gnu/libssl.so.3")
    assert not star.regex.match("/usr/lib/a/b/libssl.so.3")
    negated = compile_glob("/a/[!x]").regex
    assert negated.match("/a/y") and not negated.match("/a/x")


def test_glob_over_tree_follows_dir_links_but_not_with_doublestar(make: Maker) -> None:
    image = make(
        [
            *debian_base(),
            d("/usr/share/zoneinfo/Europe"),
            f("/usr/share/zoneinfo/Europe/Berlin", "TZif"),
            ln("/usr/share/zoneinfo/posix", "."),
            f("/usr/share/zoneinfo/UTC", "TZif"),
        ]
    )
    tree = image.tree
    assert expand(tree, compile_glob("/lib/*/libgcc_s.so.1")) == (
        "/lib/x86_64-linux-gnu/libgcc_s.so.1",
    )
    assert expand(tree, compile_glob("/usr/share/zoneinfo/**")) == (
        "/usr/share/zoneinfo/Europe",
        "/usr/share/zoneinfo/Europe/Berlin",
        "/usr/share/zoneinfo/UTC",
        "/usr/share/zoneinfo/posix",
    )
    assert expand(tree, compile_glob("/var/run")) == ("/var/run",)
    assert expand(tree, compile_glob("/nope/**")) == ()


def test_path_index_reports_smallest_match() -> None:
    index = PathIndex({"/b/libssl.so.3", "/a/libssl.so.3", "/c/x"})
    assert index.first([compile_glob("/**/libssl.so.*")]) == "/a/libssl.so.3"
    assert index.first([compile_glob("/**/libssl.so.3")]) == "/a/libssl.so.3"
    assert index.first([compile_glob("/c/x")]) == "/c/x"
    assert index.first([compile_glob("/d/*")]) is None


# -- applying ---------------------------------------------------------------------------


def test_reasons_name_the_profile_and_the_trigger(make: Maker) -> None:
    ctx = context(make(debian_base()), kept=[f"{TRIPLET}/libc.so.6"])
    adds, _ = run(ctx, "glibc")
    by_path = {a.path: a for a in adds}
    reason = by_path["/etc/passwd"].reason
    assert (reason.kind, reason.source) == ("profile", "glibc")
    assert f"because {TRIPLET}/libc.so.6 is kept" in reason.detail
    assert not by_path["/etc/passwd"].closure
    assert adds == sorted(adds, key=lambda a: (a.path, a.reason.source))


def test_only_disabled_and_forced(make: Maker) -> None:
    ctx = context(make(debian_base()))
    assert "glibc" not in detect(PROFILES, ctx)
    adds, _ = apply_profiles(PROFILES, ctx, only={"glibc"}, forced={"glibc"})
    assert "/etc/passwd" in {a.path for a in adds}
    assert "applies because --profile glibc was given" in adds[0].reason.detail
    adds, _ = apply_profiles(PROFILES, ctx, disabled={"runtime-dirs"})
    assert "/tmp" not in {a.path for a in adds}


def test_glibc(make: Maker) -> None:
    image = make(
        [
            *debian_base(),
            f("/etc/nsswitch.conf", "passwd: files\n"),
            f("/etc/services", "http 80/tcp\n"),
            d(f"{TRIPLET}/gconv"),
            f(f"{TRIPLET}/gconv/gconv-modules", "alias x y\n"),
            f(f"{TRIPLET}/gconv/ISO8859-1.so", ELF),
            f("/usr/bin/iconv", ELF, 0o755),
        ]
    )
    kept = [f"{TRIPLET}/libc.so.6"]
    added = paths(context(image, kept=kept), "glibc")
    assert {"/etc/nsswitch.conf", "/etc/services", "/etc/passwd", "/etc/ld.so.cache"} <= added
    # libgcc_s.so.1 only for a program that calls what makes glibc dlopen it
    assert "/lib/x86_64-linux-gnu/libgcc_s.so.1" not in added
    assert f"{TRIPLET}/gconv/gconv-modules" not in added
    # the index read by locale set-up alone keeps the index, not the converters
    index_only = paths(
        context(image, kept=kept, traced=[f"{TRIPLET}/gconv/gconv-modules"]), "glibc"
    )
    assert f"{TRIPLET}/gconv/gconv-modules" in index_only
    assert f"{TRIPLET}/gconv/ISO8859-1.so" not in index_only
    for ctx in (
        context(image, kept=kept, traced=[f"{TRIPLET}/gconv/ISO8859-1.so"]),
        context(image, kept=[*kept, "/usr/bin/iconv"]),
    ):
        assert {f"{TRIPLET}/gconv/gconv-modules", f"{TRIPLET}/gconv/ISO8859-1.so"} <= paths(
            ctx, "glibc"
        )
    assert paths(context(image), "glibc") == set()


def test_glibc_keeps_what_kept_elf_imports_ask_for(make: Maker) -> None:
    """libgcc_s.so.1 for a caller of pthread_exit; the converters for a caller of
    iconv_open (the reason names it), but not for one that only converts to the
    locale's charset (bash, libstdc++: the profile's imports_except)."""

    def importing(*names: str) -> bytes:
        return elf_with_dynsym(True, "<", [(n, 0) for n in names])

    image = make(
        [
            *debian_base(),
            d(f"{TRIPLET}/gconv"),
            f(f"{TRIPLET}/gconv/ISO8859-1.so", ELF),
            f("/usr/local/bin/worker", importing("pthread_exit", "printf"), 0o755),
            f("/usr/local/bin/convert", importing("iconv_open", "iconv"), 0o755),
            f("/usr/bin/bash", importing("iconv_open"), 0o755),
            f(f"{TRIPLET}/libstdc++.so.6.0.30", importing("iconv_open")),
            f("/usr/local/bin/plain", importing("printf"), 0o755),
        ]
    )
    libc, gcc_s = f"{TRIPLET}/libc.so.6", "/lib/x86_64-linux-gnu/libgcc_s.so.1"
    converter = f"{TRIPLET}/gconv/ISO8859-1.so"
    plain = paths(context(image, kept=[libc, "/usr/local/bin/plain"]), "glibc")
    assert gcc_s not in plain and converter not in plain
    assert gcc_s in paths(context(image, kept=[libc, "/usr/local/bin/worker"]), "glibc")
    locale_only = [libc, "/usr/bin/bash", f"{TRIPLET}/libstdc++.so.6.0.30"]
    assert converter not in paths(context(image, kept=locale_only), "glibc")
    added, _ = run(context(image, kept=[*locale_only, "/usr/local/bin/convert"]), "glibc")
    why = {a.reason.detail for a in added if a.path == converter}
    assert why == {
        "iconv_open() loads the converter of whichever charset it is asked for "
        "(gconv-modules); applies because /usr/local/bin/convert imports iconv_open"
    }


def test_musl(make: Maker) -> None:
    image = make(
        [
            f("/lib/ld-musl-x86_64.so.1", ELF),
            f("/etc/ld-musl-x86_64.path", "/lib\n"),
            f("/etc/passwd", "root:x:0:0\n"),
        ]
    )
    ctx = context(image, kept=["/lib/ld-musl-x86_64.so.1"])
    assert paths(ctx, "musl") == {"/etc/ld-musl-x86_64.path", "/etc/passwd"}
    assert paths(context(image), "musl") == set()


def _ca_image(make: Maker) -> ProfileContext:
    pem = "/usr/share/ca-certificates/mozilla/Root_CA.crt"
    image = make(
        [
            *debian_base(),
            f(pem, "-----BEGIN CERTIFICATE-----\n"),
            ln("/etc/ssl/certs/Root_CA.pem", pem),
            ln("/etc/ssl/certs/1234abcd.0", "Root_CA.pem"),
            f("/etc/ssl/certs/ca-certificates.crt", "bundle"),
            f("/etc/ssl/openssl.cnf", "[openssl_init]\n"),
            d("/usr/lib/ssl"),
            ln("/usr/lib/ssl/certs", "/etc/ssl/certs"),
            f(f"{TRIPLET}/libssl.so.3", ELF),
            f(f"{TRIPLET}/libcrypto.so.3", ELF),
            f(f"{TRIPLET}/ossl-modules/legacy.so", ELF),
            f(f"{TRIPLET}/engines-3/afalg.so", ELF),
        ]
    )
    return context(image)


def test_ca_certificates(make: Maker) -> None:
    base = _ca_image(make)
    assert paths(base, "ca-certificates") == set()
    for ctx in (
        context_with(base, kept=[f"{TRIPLET}/libssl.so.3"]),
        context_with(base, traced=["/etc/ssl/certs/ca-certificates.crt"]),
        context_with(base, executed=["/usr/lib/jvm/x/bin/java"]),
    ):
        added = paths(ctx, "ca-certificates")
        assert {
            "/etc/ssl/certs/Root_CA.pem",
            "/etc/ssl/certs/1234abcd.0",
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/ssl/openssl.cnf",
            "/usr/share/ca-certificates/mozilla/Root_CA.crt",
            "/usr/lib/ssl/certs",
        } <= added


def context_with(
    ctx: ProfileContext,
    traced: list[str] | None = None,
    executed: list[str] | None = None,
    kept: list[str] | None = None,
) -> ProfileContext:
    return ProfileContext(
        ctx.tree,
        ctx.config,
        frozenset(traced or executed or ()),
        frozenset(executed or ()),
        frozenset(kept or ()),
    )


def test_openssl(make: Maker) -> None:
    base = _ca_image(make)
    assert paths(base, "openssl") == set()
    added = paths(context_with(base, kept=[f"{TRIPLET}/libcrypto.so.3"]), "openssl")
    assert "/etc/ssl/openssl.cnf" in added
    assert f"{TRIPLET}/ossl-modules/legacy.so" not in added  # no module loaded
    legacy = f"{TRIPLET}/ossl-modules/legacy.so"
    loaded = ProfileContext(
        base.tree,
        base.config,
        frozenset({legacy}),
        frozenset(),
        frozenset({f"{TRIPLET}/libcrypto.so.3"}),
    )
    assert {legacy, f"{TRIPLET}/engines-3/afalg.so"} <= paths(loaded, "openssl")
    adds, _ = run(context_with(base, kept=[f"{TRIPLET}/libssl.so.3"]), "openssl")
    assert all(a.closure for a in adds)


def _tz_members() -> list[M]:
    return [
        *debian_base(),
        f("/usr/share/zoneinfo/Asia/Tokyo", "TZif"),
        f("/usr/share/zoneinfo/Etc/UTC", "TZif"),
        ln("/etc/localtime", "/usr/share/zoneinfo/Etc/UTC"),
        f("/etc/timezone", "Etc/UTC\n"),
        f("/usr/lib/python3.11/zoneinfo/__init__.py", ""),
    ]


def test_tzdata(make: Maker) -> None:
    plain = make(_tz_members())
    assert paths(context(plain), "tzdata") == set()
    want = {
        "/usr/share/zoneinfo/Asia/Tokyo",
        "/usr/share/zoneinfo/Etc/UTC",
        "/etc/localtime",
        "/etc/timezone",
    }
    assert want <= paths(context(make(_tz_members(), env={"TZ": "UTC"})), "tzdata")
    assert want <= paths(context(plain, traced=["/usr/share/zoneinfo/Etc/UTC"]), "tzdata")
    assert want <= paths(
        context(plain, kept=["/usr/lib/python3.11/zoneinfo/__init__.py"]), "tzdata"
    )
    assert want <= paths(context(plain, executed=["/usr/bin/java"]), "tzdata")
    adds, _ = run(context(make(_tz_members(), env={"TZ": "UTC"})), "tzdata")
    assert "zone files are chosen at run time" in adds[0].reason.detail
    assert "env TZ is set" in adds[0].reason.detail


def test_locales(make: Maker) -> None:
    members = [
        *debian_base(),
        f("/usr/lib/locale/locale-archive", "x"),
        f("/usr/lib/locale/C.utf8/LC_CTYPE", "x"),
        f("/usr/lib/locale/en_US.utf8/LC_CTYPE", "x"),
        f("/usr/lib/locale/de_DE.utf8/LC_CTYPE", "x"),
    ]
    assert paths(context(make(members)), "locales") == set()
    added = paths(context(make(members, env={"LANG": "en_US.UTF-8"})), "locales")
    assert {
        "/usr/lib/locale/locale-archive",
        "/usr/lib/locale/C.utf8/LC_CTYPE",
        "/usr/lib/locale/en_US.utf8",
        "/usr/lib/locale/en_US.utf8/LC_CTYPE",
    } <= added
    assert "/usr/lib/locale/de_DE.utf8/LC_CTYPE" not in added


def test_python(make: Maker) -> None:
    lib = "/usr/lib/python3.11"
    image = make(
        [
            *debian_base(),
            f("/usr/bin/python3.11", ELF, 0o755),
            ln("/usr/bin/python3", "python3.11"),
            f(f"{lib}/encodings/__init__.py", ""),
            f(f"{lib}/encodings/latin_1.py", ""),
            f(f"{lib}/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so", ELF),
            f(f"{lib}/site.py", ""),
            f(f"{lib}/os.py", ""),
            f(f"{lib}/json/__init__.py", ""),
            f("/usr/lib/python3/dist-packages/distutils-precedence.pth", "import os\n"),
        ]
    )
    assert paths(context(image), "python") == set()
    added = paths(context(image, executed=["/usr/bin/python3"]), "python")
    assert {
        f"{lib}/encodings/latin_1.py",
        f"{lib}/site.py",
        f"{lib}/os.py",
        "/usr/lib/python3/dist-packages/distutils-precedence.pth",
    } <= added
    assert f"{lib}/json/__init__.py" not in added  # nothing imports it
    # extension modules come through the import closure, not the whole lib-dynload
    assert f"{lib}/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so" not in added


def test_node(make: Maker) -> None:
    image = make(
        [
            *debian_base(),
            f("/usr/bin/node", ELF, 0o755),
            f("/usr/share/icu/72.1/icudt72l.dat", "icu"),
        ]
    )
    assert paths(context(image), "node") == set()
    assert "/usr/share/icu/72.1/icudt72l.dat" in paths(
        context(image, executed=["/usr/bin/node"]), "node"
    )


def test_jvm(make: Maker) -> None:
    home = "/usr/lib/jvm/java-17-openjdk-amd64"
    image = make(
        [
            *debian_base(),
            f(f"{home}/bin/java", ELF, 0o755),
            ln("/etc/alternatives/java", f"{home}/bin/java"),
            ln("/usr/bin/java", "/etc/alternatives/java"),
            f(f"{home}/lib/modules", "jimage"),
            f(f"{home}/release", "JAVA_VERSION=17"),
            f("/etc/java-17-openjdk/security/java.security", "x"),
            f("/etc/ssl/certs/java/cacerts", "jks"),
        ]
    )
    assert paths(context(image), "jvm") == set()
    added = paths(context(image, executed=["/usr/bin/java"]), "jvm")
    assert {
        f"{home}/lib/modules",
        f"{home}/release",
        "/etc/java-17-openjdk/security/java.security",
        "/etc/ssl/certs/java/cacerts",
    } <= added


def test_nginx(make: Maker) -> None:
    image = make(
        [
            *debian_base(),
            f("/usr/sbin/nginx", ELF, 0o755),
            f("/etc/nginx/nginx.conf", "http { server { root /srv/www; } }\n"),
            f("/etc/nginx/mime.types", "types {}\n"),
            f("/usr/share/nginx/html/index.html", "hi"),
            d("/var/lib/nginx/body"),
            f("/srv/www/index.html", "hi"),
            f("/srv/www/img/logo.png", "png"),
        ]
    )
    assert paths(context(image), "nginx") == set()
    added = paths(context(image, executed=["/usr/sbin/nginx"]), "nginx")
    assert {
        "/etc/nginx/nginx.conf",
        "/etc/nginx/mime.types",
        "/usr/share/nginx/html/index.html",
        "/var/lib/nginx",
        "/srv/www/img/logo.png",
    } <= added


def test_app_dirs_and_runtime_dirs(make: Maker) -> None:
    image = make(
        [*debian_base(), f("/app/app.py", "print(1)"), f("/app/static/a.css", "x")],
        WorkingDir="/app",
        Cmd=["python3", "/app/app.py"],
    )
    added = paths(context(image), "app-dirs")
    assert {"/app", "/app/app.py", "/app/static/a.css"} <= added
    runtime = paths(context(image), "runtime-dirs")
    assert {"/tmp", "/run", "/var/run"} <= runtime
    assert run(context(image), "runtime-dirs")[0][0].reason.detail.endswith("; applies always")
    assert "/tmp/leftover" not in runtime
    assert paths(context(make(debian_base(), WorkingDir="/")), "app-dirs") == set()


def test_dpkg_and_apk_apply_only_when_present(make: Maker) -> None:
    deb = make(
        [
            *debian_base(),
            f("/var/lib/dpkg/status", "Package: a\nStatus: install ok installed\n"),
            f("/etc/os-release", "ID=debian\n"),
        ]
    )
    adds, gens = run(context(deb), "dpkg")
    assert [g.path for g in gens] == ["/var/lib/dpkg/status"]
    assert "/etc/os-release" in {a.path for a in adds}
    assert run(context(deb), "apk") == ([], [])
    alpine = make(
        [
            f("/lib/apk/db/installed", "P:musl\nF:lib\nR:libc.so\n\n"),
            f("/etc/alpine-release", "3.19\n"),
        ]
    )
    adds, gens = run(context(alpine), "apk")
    assert [g.path for g in gens] == ["/lib/apk/db/installed"]
    assert "/etc/alpine-release" in {a.path for a in adds}


def test_terminfo(make: Maker) -> None:
    image = make(
        [
            *debian_base(),
            f(f"{TRIPLET}/libtinfo.so.6", ELF),
            f("/usr/share/terminfo/x/xterm", "ti"),
            f("/usr/share/terminfo/a/ansi", "ti"),
        ]
    )
    assert paths(context(image), "terminfo") == set()
    added = paths(context(image, kept=[f"{TRIPLET}/libtinfo.so.6"]), "terminfo")
    assert "/usr/share/terminfo/x/xterm" in added and "/usr/share/terminfo/a/ansi" not in added


def _large_tree() -> FileTree:
    """~30k entries straight into a FileTree (no tar round trip): a Debian-like root."""
    entries = [
        FileEntry(f"{TRIPLET}/libc.so.6", EntryType.FILE, is_elf=True),
        FileEntry("/lib", EntryType.SYMLINK, link="usr/lib"),
        FileEntry("/etc/passwd", EntryType.FILE),
        FileEntry("/tmp", EntryType.DIR),
    ]
    for i in range(280):
        entries += [FileEntry(f"/usr/share/doc/pkg{i}/file{j}", EntryType.FILE) for j in range(100)]
    entries += [
        FileEntry(f"/usr/share/zoneinfo/Area{i // 50}/Zone{i}", EntryType.FILE) for i in range(1800)
    ]
    tree = FileTree()
    tree.apply(LayerChanges(0, "sha256:" + "0" * 64, entries=entries))
    return tree


def test_applying_is_deterministic_on_a_large_tree() -> None:
    tree = _large_tree()
    assert len(tree) > 30_000
    config = ImageConfig({"config": {"Env": ["TZ=UTC", "LANG=C.UTF-8"], "WorkingDir": "/"}})
    kept = frozenset(
        [f"{TRIPLET}/libc.so.6", *(f"/usr/share/doc/pkg{i}/file0" for i in range(280))]
    )
    ctx = ProfileContext(
        tree, config, frozenset(["/usr/bin/true"]), frozenset(["/usr/bin/true"]), kept
    )
    first = apply_profiles(PROFILES, ctx)
    for _ in range(9):
        assert apply_profiles(PROFILES, ctx) == first
    assert len({a.path for a in first[0]}) > 1800


def test_with_the_planner_reaches_a_fixed_point(make: Maker) -> None:
    from slimmer.plan.planner import TracedPath, plan

    lib = "/usr/lib/python3.11"
    image = make(
        [
            *debian_base(),
            f("/usr/bin/python3.11", ELF, 0o755),
            ln("/usr/bin/python3", "python3.11"),
            f("/app/app.py", "def later():\n    import csv\n"),
            f("/app/data.txt", "x"),
            f(f"{lib}/csv.py", "import re\n"),
            f(f"{lib}/re/__init__.py", ""),
            f(f"{lib}/encodings/__init__.py", ""),
            f(f"{lib}/unused.py", ""),
            f(
                "/var/lib/dpkg/status",
                "Package: libc6\nStatus: install ok installed\n\n"
                "Package: vim\nStatus: install ok installed\n",
            ),
            f("/var/lib/dpkg/info/libc6.list", f"{TRIPLET}/libc.so.6\n"),
            f("/var/lib/dpkg/info/vim.list", "/usr/bin/vim\n"),
            f("/usr/bin/vim", ELF, 0o755),
        ],
        WorkingDir="/app",
        Cmd=["python3", "/app/app.py"],
    )
    traced = [
        TracedPath("/usr/bin/python3", "exec"),
        TracedPath("/app/app.py", "open"),
        TracedPath(f"{TRIPLET}/libc.so.6", "open"),
    ]
    keep = plan(image.tree, image.config, traced, lambda *_: [], profiles_fn())
    assert {
        f"{lib}/csv.py",
        f"{lib}/re/__init__.py",
        f"{lib}/encodings/__init__.py",
        "/app/data.txt",
        "/etc/passwd",
        "/tmp",
    } <= set(keep.paths())
    assert f"{lib}/unused.py" not in keep and "/tmp/leftover" not in keep
    assert [r.source for r in keep.reasons[f"{lib}/csv.py"]] == ["python"]
    status = {g.path: g for g in keep.generated}["/var/lib/dpkg/status"]
    assert status.data == b"Package: libc6\nStatus: install ok installed\n\n"


def _ran(ctx: ProfileContext, runs: dict[str, frozenset[str]]) -> ProfileContext:
    return ProfileContext(ctx.tree, ctx.config, ctx.traced, ctx.executed, ctx.kept, runs)


def test_glibc_excuses_a_program_that_ran_without_a_converter(make: Maker) -> None:
    """A program that imports iconv_open (envsubst: gnulib's propername, gettext's
    catalogs) and that the trace ran without loading a converter module is no evidence
    in a locale whose charset glibc converts itself, even if its locale set-up read the
    gconv index; it is when a run loaded a module, when it never ran, in another
    charset's locale, and a library never is."""

    def importing(*names: str) -> bytes:
        return elf_with_dynsym(True, "<", [(n, 0) for n in names])

    members = [
        *debian_base(),
        d(f"{TRIPLET}/gconv"),
        f(f"{TRIPLET}/gconv/gconv-modules.cache", "index"),
        f(f"{TRIPLET}/gconv/ISO8859-1.so", ELF),
        f("/usr/bin/envsubst", importing("iconv_open", "dcgettext"), 0o755),
        ln("/usr/local/bin/envsubst", "/usr/bin/envsubst"),
        f(f"{TRIPLET}/libxml2.so.2", importing("iconv_open")),
    ]
    converter, libc = f"{TRIPLET}/gconv/ISO8859-1.so", f"{TRIPLET}/libc.so.6"
    index = f"{TRIPLET}/gconv/gconv-modules.cache"
    quiet = {"/usr/bin/envsubst": frozenset({"/usr/bin/envsubst", "/etc/nginx/t", index})}
    loud = {"/usr/bin/envsubst": quiet["/usr/bin/envsubst"] | {converter}}

    def keeps(env: dict[str, str], runs: dict[str, frozenset[str]], *more: str) -> bool:
        ctx = context(make(members, env), kept=[libc, "/usr/bin/envsubst", *more])
        return converter in paths(_ran(ctx, runs), "glibc")

    assert not keeps({}, quiet)
    assert not keeps({"LANG": "C.UTF-8"}, quiet)
    assert not keeps({"LANG": "de_DE.ISO-8859-1", "LC_ALL": "en_US.utf8"}, quiet)
    assert not keeps({}, {"/usr/local/bin/envsubst": quiet["/usr/bin/envsubst"]})
    assert keeps({}, loud)
    assert keeps({}, {})
    assert keeps({"LANG": "de_DE.ISO-8859-1"}, quiet)
    assert keeps({"LC_CTYPE": "de_DE@euro", "LANG": "C.UTF-8"}, quiet)
    assert keeps({}, quiet, f"{TRIPLET}/libxml2.so.2")
