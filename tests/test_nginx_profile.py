"""The profiles around nginx-static on synthetic images: nginx keeps the modules its
configuration names, not all of /usr/lib/nginx; OpenSSL keeps its configuration,
and its providers and engines only where one was loaded or the environment
points OpenSSL elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from slimmer.plan.keep import ProfileContext
from slimmer.plan.profiles import apply_profiles, load_profiles
from tests.profile_kit import ELF, TRIPLET, Maker, context, d, debian_base, f, factory, ln

PROFILES = load_profiles()
MODULES = f"{TRIPLET}/ossl-modules/legacy.so"
ENGINE = f"{TRIPLET}/engines-3/afalg.so"


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Maker]:
    yield from factory(tmp_path)


def paths(ctx: ProfileContext, name: str) -> set[str]:
    return {a.path for a in apply_profiles(PROFILES, ctx, only={name})[0]}


def test_nginx_keeps_the_modules_its_configuration_loads_not_every_module(make: Maker) -> None:
    image = make(
        [
            *debian_base(),
            f("/usr/sbin/nginx", ELF, 0o755),
            f("/etc/nginx/nginx.conf", "include /etc/nginx/modules-enabled/*.conf;\n"),
            f("/etc/nginx/modules-enabled/50-geoip.conf", "load_module modules/geoip.so;\n"),
            d("/usr/share/nginx"),
            ln("/usr/share/nginx/modules", "/usr/lib/nginx/modules"),
            f("/usr/lib/nginx/modules/geoip.so", ELF),
            f("/usr/lib/nginx/modules/perl.so", ELF),
        ]
    )
    added = paths(context(image, executed=["/usr/sbin/nginx"]), "nginx")
    assert "/usr/share/nginx/modules/geoip.so" in added  # the planner follows the link
    assert "/usr/lib/nginx/modules/perl.so" not in added


def _ssl_image(make: Maker, env: dict[str, str] | None = None) -> ProfileContext:
    image = make(
        [
            *debian_base(),
            f("/etc/ssl/openssl.cnf", "[openssl_init]\n"),
            f(f"{TRIPLET}/libssl.so.3", ELF),
            f(f"{TRIPLET}/libcrypto.so.3", ELF),
            f(MODULES, ELF),
            f(ENGINE, ELF),
        ],
        env,
    )
    return context(image, kept=[f"{TRIPLET}/libssl.so.3"])


def _with_traced(ctx: ProfileContext, traced: str) -> ProfileContext:
    return ProfileContext(ctx.tree, ctx.config, frozenset({traced}), ctx.executed, ctx.kept)


def test_openssl_keeps_its_configuration_not_its_modules_without_evidence(make: Maker) -> None:
    added = paths(_ssl_image(make), "openssl")
    assert "/etc/ssl/openssl.cnf" in added
    assert not {MODULES, ENGINE} & added


def test_openssl_keeps_modules_and_engines_once_one_is_loaded(make: Maker) -> None:
    ctx = _with_traced(_ssl_image(make), MODULES)
    adds = apply_profiles(PROFILES, ctx, only={"openssl"})[0]
    by = {a.path: a for a in adds}
    assert {MODULES, ENGINE} <= set(by)
    assert f"because {MODULES} was traced" in by[ENGINE].reason.detail


def test_openssl_keeps_modules_when_the_environment_redirects_it(make: Maker) -> None:
    added = paths(_ssl_image(make, {"OPENSSL_CONF": "/app/openssl.cnf"}), "openssl")
    assert {MODULES, ENGINE} <= added
