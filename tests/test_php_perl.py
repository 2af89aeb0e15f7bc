"""The PHP and Perl expanders on in-memory trees laid out like Debian's php8.2 and
perl 5.36: ini-named extensions, includes, `use`/`require` and XS libraries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from slimmer.model import ImageConfig
from slimmer.plan.expanders import EXPANDERS
from slimmer.plan.expanders.perl import perl_inc, perl_specs, resolve_module
from slimmer.plan.expanders.php import ini_extensions, php_includes
from slimmer.plan.keep import Addition, ProfileContext
from slimmer.plan.profiles import load_profiles
from tests.memtree import File, Link, MemTree, Spec

ELF = b"\x7fELF" + b"\0" * 60
PHPEXT = "/usr/lib/php/20220829"
PERLARCH = "/usr/lib/x86_64-linux-gnu/perl/5.36"
PERLLIB = "/usr/share/perl/5.36"
PROFILES = {p.name: p for p in load_profiles()}


def ctx(tree: MemTree, kept: Iterable[str], cmd: list[str], **config: Any) -> ProfileContext:
    cfg = ImageConfig({"config": {"Cmd": cmd, **config}})
    return ProfileContext(tree, cfg, frozenset(), frozenset(), frozenset(kept))


def run(expander: str, profile: str, context: ProfileContext) -> dict[str, Addition]:
    return {a.path: a for a in EXPANDERS[expander](context, PROFILES[profile].name)[0]}


# -- PHP ------------------------------------------------------------------------------

INDEX = """<?php
require_once __DIR__ . '/lib/db.php';
function report() {
    include 'templates/report.php';   // only on this path
}
require "vendor/{$name}.php";          // dynamic: unknown
"""


def php_tree(extra: dict[str, Spec] | None = None) -> MemTree:
    spec: dict[str, Spec] = {
        "/usr/bin/php": Link("/etc/alternatives/php"),
        "/etc/alternatives/php": Link("/usr/bin/php8.2"),
        "/usr/bin/php8.2": File(ELF),
        "/etc/php/8.2/cli/php.ini": b"[PHP]\nextension_dir = /opt/phpext\n",
        "/etc/php/8.2/mods-available/pdo.ini": b"; priority=10\nextension=pdo.so\n",
        "/etc/php/8.2/cli/conf.d/10-pdo.ini": Link("/etc/php/8.2/mods-available/pdo.ini"),
        "/etc/php/8.2/cli/conf.d/20-intl.ini": b'extension="intl"\n',
        "/etc/php/8.2/cli/conf.d/10-opcache.ini": b"zend_extension=opcache.so\n",
        "/etc/php/8.2/cli/conf.d/30-gone.ini": b"extension=gone.so\n",
        f"{PHPEXT}/pdo.so": File(ELF),
        f"{PHPEXT}/opcache.so": File(ELF),
        "/opt/phpext/intl.so": File(ELF),
        f"{PHPEXT}/mysqli.so": File(ELF),
        "/var/www/index.php": INDEX.encode(),
        "/var/www/lib/db.php": b"<?php include_once('config.inc');\n",
        "/var/www/lib/config.inc": b"<?php $x = 1;\n",
        "/var/www/templates/report.php": b"<?php echo 1;\n",
    }
    spec.update(extra or {})
    return MemTree(spec)


def test_php_include_and_ini_parsing() -> None:
    assert php_includes(INDEX) == ["./lib/db.php", "templates/report.php"]
    assert ini_extensions('extension=pdo.so\n;extension=no\n zend_extension = "x.so"\n') == [
        ("extension", "pdo.so"),
        ("zend_extension", "x.so"),
    ]


def test_php_keeps_ini_extensions_and_the_include_closure() -> None:
    tree = php_tree()
    cmd = ["php", "-S", "0.0.0.0:8080", "-t", "/var/www"]
    kept = ["/usr/bin/php8.2", "/var/www/index.php"]
    adds = run("php-modules", "php", ctx(tree, kept, cmd, WorkingDir="/var/www"))
    assert set(adds) == {
        f"{PHPEXT}/pdo.so",
        f"{PHPEXT}/opcache.so",
        "/opt/phpext/intl.so",
        "/var/www/lib/db.php",
        "/var/www/lib/config.inc",
        "/var/www/templates/report.php",
    }
    assert "extension=pdo.so in /etc/php/8.2/cli/conf.d/10-pdo.ini" in (
        adds[f"{PHPEXT}/pdo.so"].reason.detail
    )
    assert "/var/www/index.php includes 'templates/report.php'" in (
        adds["/var/www/templates/report.php"].reason.detail
    )


def test_php_does_nothing_without_php() -> None:
    tree = php_tree()
    assert run("php-modules", "php", ctx(tree, ["/var/www/index.php"], ["nginx"])) == {}


# -- Perl -----------------------------------------------------------------------------

SCRIPT = """#!/usr/bin/perl
use strict;
use warnings;
use 5.010;
use lib '/opt/app/lib';
use parent -norequire, 'Base::Thing';
sub digest {
    require Digest::SHA;   # only when asked
    return Digest::SHA::sha256_hex(@_);
}
require "helpers.pl";
"""


def perl_tree() -> MemTree:
    return MemTree(
        {
            "/usr/bin/perl": File(ELF),
            "/app/run.pl": SCRIPT.encode(),
            "/app/helpers.pl": b"use POSIX ();\n1;\n",
            f"{PERLLIB}/strict.pm": b"package strict; 1;\n",
            f"{PERLLIB}/warnings.pm": b"package warnings; 1;\n",
            f"{PERLARCH}/Digest/SHA.pm": b"require Exporter;\nrequire XSLoader;\n",
            f"{PERLARCH}/auto/Digest/SHA/SHA.so": File(ELF),
            f"{PERLLIB}/Exporter.pm": b"package Exporter; 1;\n",
            f"{PERLARCH}/XSLoader.pm": b"package XSLoader; 1;\n",
            f"{PERLARCH}/POSIX.pm": b"use XSLoader ();\n",
            f"{PERLARCH}/auto/POSIX/POSIX.so": File(ELF),
            f"{PERLLIB}/Unused.pm": b"1;\n",
        }
    )


def test_perl_specs() -> None:
    assert perl_specs(SCRIPT) == [
        "strict",
        "warnings",
        "Digest::SHA",
        "Base::Thing",
        "./helpers.pl",
    ]


def test_perl_inc_and_module_resolution() -> None:
    tree = perl_tree()
    inc = perl_inc(ctx(tree, [], ["perl", "/app/run.pl"]))
    assert inc == (PERLARCH, PERLLIB)
    assert resolve_module(tree, inc, "Digest::SHA", "/app/run.pl") == [
        f"{PERLARCH}/Digest/SHA.pm",
        f"{PERLARCH}/auto/Digest/SHA/SHA.so",
    ]
    assert resolve_module(tree, inc, "./helpers.pl", "/app/run.pl") == ["/app/helpers.pl"]
    assert resolve_module(tree, inc, "No::Such", "/app/run.pl") == []


def test_perl_keeps_used_modules_with_xs_to_a_fixed_point() -> None:
    tree = perl_tree()
    context = ctx(tree, ["/usr/bin/perl", "/app/run.pl"], ["perl", "/app/run.pl"])
    adds = run("perl-modules", "perl", context)
    assert set(adds) == {
        f"{PERLLIB}/strict.pm",
        f"{PERLLIB}/warnings.pm",
        f"{PERLARCH}/Digest/SHA.pm",
        f"{PERLARCH}/auto/Digest/SHA/SHA.so",
        f"{PERLLIB}/Exporter.pm",
        f"{PERLARCH}/XSLoader.pm",
        "/app/helpers.pl",
        f"{PERLARCH}/POSIX.pm",
        f"{PERLARCH}/auto/POSIX/POSIX.so",
    }
    sha = adds[f"{PERLARCH}/auto/Digest/SHA/SHA.so"]
    assert sha.closure and sha.reason.source == "perl"
    assert "/app/run.pl uses 'Digest::SHA'" in sha.reason.detail
