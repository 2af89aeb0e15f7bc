"""The static Python import scanner and the module finder (CPython's PathFinder rules)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from slimmer.plan.expanders.python_imports import (
    BOOTSTRAP_FROZEN,
    STDLIB_FROZEN,
    ModuleFinder,
    builtin_c_imports,
    frozen_names,
    module_of,
    search_path,
)
from slimmer.plan.expanders.python_source import (
    Fallback,
    absolute_name,
    imported_names,
    parse_imports,
)
from tests.profile_kit import ELF, Maker, d, f, factory, ln


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Maker]:
    yield from factory(tmp_path)


def test_plain_and_dotted_imports_bring_their_packages() -> None:
    names = imported_names("import os, email.mime.text as t\nimport json\n", "app", False)
    assert names == {"os", "email", "email.mime", "email.mime.text", "json"}


def test_from_import_names_may_be_submodules() -> None:
    names = imported_names("from http.server import HTTPServer, handlers\n", "app", False)
    assert names == {"http", "http.server", "http.server.HTTPServer", "http.server.handlers"}
    assert imported_names("from os import *\n", "app", False) == {"os"}


def test_imports_in_functions_try_blocks_and_conditions() -> None:
    source = (
        "def report():\n"
        "    import csv\n"
        "    from decimal import Decimal\n"
        "try:\n"
        "    import _decimal\n"
        "except ImportError:\n"
        "    import _pydecimal\n"
        "if False:\n"
        "    import winreg\n"
        "class C:\n"
        "    def m(self):\n"
        "        import xml.dom.minidom\n"
    )
    names = imported_names(source, "app", False)
    assert {
        "csv",
        "decimal",
        "decimal.Decimal",
        "_decimal",
        "_pydecimal",
        "winreg",
        "xml",
        "xml.dom",
        "xml.dom.minidom",
    } <= names


def test_imports_in_functions_are_lazy_by_innermost_function() -> None:
    source = (
        "import os\n"
        "def popen():\n    import subprocess, os\n"
        "class Help:\n    import re\n"
        "    def wrap(self):\n        def inner():\n            import textwrap\n"
        "        return inner\n"
        "shutil_wrap = Help().wrap\n"
        "if __name__ == '__main__':\n    popen()\n"
    )
    got = parse_imports(source, "lib", False)
    assert got.eager() == {"os", "re"}
    assert got.lazy == (("inner", frozenset({"textwrap"})), ("popen", frozenset({"subprocess"})))
    assert got.names == {"os", "re", "subprocess", "textwrap"}
    assert "wrap" in got.mentions and {"Help", "shutil_wrap"} <= got.own - got.mentions
    assert "popen" not in got.own  # a def is not a mention, nor a library's main block
    assert "popen" in parse_imports(source, "lib", False, main=True).own
    star = parse_imports("from os import *\nfrom sys import argv\npopen()\n", "app", False)
    assert {"popen", "argv"} <= star.mentions


def test_relative_imports_resolve_from_the_package() -> None:
    mod = imported_names(
        "from . import sib\nfrom .. import up\nfrom .x.y import z\n", "pkg.sub.mod", False
    )
    assert {"pkg.sub", "pkg.sub.sib", "pkg", "pkg.up", "pkg.sub.x.y", "pkg.sub.x.y.z"} <= mod
    init = imported_names("from . import child\nfrom .. import sibling\n", "pkg.sub", True)
    assert {"pkg.sub.child", "pkg.sibling"} <= init
    assert imported_names("from ... import far\n", "pkg.mod", False) == frozenset()


@pytest.mark.parametrize(
    ("name", "level", "package", "want"),
    [
        ("x", 0, "p", "x"),
        ("x", 1, "p.q", "p.q.x"),
        ("", 1, "p.q", "p.q"),
        ("x", 2, "p.q", "p.x"),
        ("x", 3, "p.q", None),
        ("x", 1, "", None),
    ],
)
def test_absolute_name(name: str, level: int, package: str, want: str | None) -> None:
    assert absolute_name(name, level, package) == want


def test_dynamic_imports_with_literal_names() -> None:
    source = (
        "import importlib\nm = importlib.import_module('plugins.fast')\n"
        "n = __import__('yaml')\nimportlib.import_module(name)\n"
    )
    assert {"plugins", "plugins.fast", "yaml"} <= imported_names(source, "app", False)


def test_unparseable_source_falls_back_to_a_line_scan() -> None:
    py2 = b"import os\nprint 'hello'\nfrom urllib2 import urlopen\nfrom . import rel\n"
    names = imported_names(py2, "pkg.mod", False)
    assert {"os", "urllib2", "urllib2.urlopen", "pkg", "pkg.rel"} <= names
    assert imported_names(b"\0\0 import", "m", False) == frozenset()


def test_encoding_cookie_is_honoured() -> None:
    source = "# -*- coding: latin-1 -*-\nimport os\ns = '\xe9'\n".encode("latin-1")
    assert imported_names(source, "m", False) == {"os"}


GUARDED = """\
import json
if __name__ == "__main__":
    import doctest
    import argparse
else:
    import logging
if "__main__" == __name__:
    from unittest import main
"""


def test_main_guard_counts_only_for_the_module_run_as_main() -> None:
    library = imported_names(GUARDED, "lib.tool", False)
    assert library == {"json", "logging"}
    run = {"json", "logging", "doctest", "argparse", "unittest", "unittest.main"}
    assert imported_names(GUARDED, "lib.tool", False, main=True) == run
    assert imported_names(GUARDED, "__main__", False) == run
    assert imported_names(GUARDED, "pkg.__main__", False) == run


SELF_TEST = """\
import os
def _test():
    import doctest
def test():
    import uu
def main():
    import argparse
def helper():
    return _other()
def _other():
    import zlib
if __name__ == "__main__":
    _test(); test(); main(); _other()
"""


def test_private_functions_only_the_main_block_calls_are_left_out() -> None:
    # _test and test: only the main block names them; main is public (an entry
    # point may call it); _other is also called by helper
    assert imported_names(SELF_TEST, "lib", False) == {"os", "argparse", "zlib"}
    assert imported_names(SELF_TEST, "lib", False, main=True) == {
        "os",
        "argparse",
        "zlib",
        "doctest",
        "uu",
    }


SELF_TEST_CHAIN = """\
def _test():
    _test_generator()
def _test_generator():
    from statistics import stdev
def _shared():
    import zlib
def _also():
    _shared()
def public():
    _shared()
if __name__ == "__main__":
    _test(); _also()
"""


def test_functions_only_main_only_functions_call_are_left_out() -> None:
    # random.py: the main block calls _test, which alone calls _test_generator
    # (statistics); _shared is also called by a public function, so it stays
    assert imported_names(SELF_TEST_CHAIN, "lib", False) == {"zlib"}
    assert imported_names(SELF_TEST_CHAIN, "lib", False, main=True) == {
        "zlib",
        "statistics",
        "statistics.stdev",
    }


def test_import_error_handlers_are_fallbacks() -> None:
    source = (
        "import os\n"
        "try:\n    from . import _speedups\n    import yaml.cyaml\n"
        "except (ModuleNotFoundError, OSError):\n    import slowpath\n"
        "try:\n    import json\nexcept ValueError:\n    import other\n"
        "try:\n    x = 1\nexcept ImportError:\n    import nothing_tried\n"
    )
    got = parse_imports(source, "pkg.mod", False)
    want = {"os", "pkg", "pkg._speedups", "yaml", "yaml.cyaml", "json", "other", "nothing_tried"}
    assert got.names == want
    tried = frozenset({("pkg", ("_speedups",)), ("yaml.cyaml", ())})
    assert got.fallbacks == (Fallback(tried, frozenset({"slowpath"})),)
    assert "slowpath" in imported_names(source, "pkg.mod", False)


def test_blocks_of_other_platforms_are_left_out() -> None:
    source = (
        "import sys, os\n"
        "if sys.platform == 'win32':\n    import winreg\n"
        "elif sys.platform.startswith('darwin'):\n    import _osx_support\n"
        "else:\n    import termios\n"
        "if 'nt' == os.name:\n    import nt\n"
        "if sys.platform != 'win32':\n    import fcntl\n"
        "if sys.platform == 'linux':\n    import linuxonly\n"
    )
    assert imported_names(source, "m", False) == {"sys", "os", "termios", "fcntl", "linuxonly"}


def test_other_conditions_on_name_are_walked() -> None:
    source = "if __name__ != '__main__':\n    import a\nif __name__ == 'x':\n    import b\n"
    assert imported_names(source, "m", False) == {"a", "b"}


def test_module_of_uses_the_deepest_search_dir() -> None:
    dirs = (
        "/usr/lib/python3.11",
        "/usr/lib/python3.11/lib-dynload",
        "/usr/lib/python3/dist-packages",
    )
    assert module_of("/usr/lib/python3.11/email/mime/text.py", dirs) == ("email.mime.text", False)
    assert module_of("/usr/lib/python3.11/email/__init__.py", dirs) == ("email", True)
    assert module_of(
        "/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so", dirs
    ) == ("_ssl", False)
    assert module_of("/app/main.py", dirs) is None
    assert module_of("/usr/lib/python3/dist-packages/foo-1.0.dist-info/x.py", dirs) is None


def test_finder_follows_pathfinder_order(make: Maker) -> None:
    lib, site = "/usr/lib/python3.11", "/usr/lib/python3/dist-packages"
    image = make(
        [
            f(f"{lib}/json/__init__.py"),
            f(f"{lib}/json/decoder.py"),
            f(f"{lib}/json/__pycache__/decoder.cpython-311.pyc"),
            f(f"{lib}/csv.py"),
            f(f"{lib}/__pycache__/csv.cpython-311.pyc"),
            f(f"{lib}/lib-dynload/_csv.cpython-311-x86_64-linux-gnu.so", ELF),
            f(f"{site}/json.py"),  # shadowed: the stdlib package comes first
            f(f"{site}/ns/a/mod.py"),
            f(f"{lib}/ns/b.py"),  # a namespace package in two dirs
            f(f"{site}/old.pyc"),
            ln(f"{site}/linked", "/opt/real"),
            f("/opt/real/__init__.py"),
        ]
    )
    dirs = search_path(image.tree, [lib, f"{lib}/lib-dynload", "/usr/lib/none", site])
    assert dirs == (lib, f"{lib}/lib-dynload", site)
    finder = ModuleFinder(image.tree)
    # a source's __pycache__ is never among the files: it imports without it
    assert finder.find("json.decoder", dirs) == (
        f"{lib}/json/__init__.py",
        f"{lib}/json/decoder.py",
    )
    assert finder.find("csv", dirs) == (f"{lib}/csv.py",)
    assert finder.find("_csv", dirs) == (f"{lib}/lib-dynload/_csv.cpython-311-x86_64-linux-gnu.so",)
    assert finder.find("ns.a.mod", dirs) == (f"{site}/ns/a/mod.py",)
    assert finder.find("ns.b", dirs) == (f"{lib}/ns/b.py",)
    assert finder.find("old", dirs) == (f"{site}/old.pyc",)
    assert finder.find("linked", dirs) == (f"{site}/linked/__init__.py",)
    assert finder.find("json.nothing", dirs) == ()
    assert finder.find("missing", dirs) == ()


def test_extension_modules_of_every_abi_are_kept(make: Maker) -> None:
    site = "/usr/lib/python3/dist-packages"
    image = make(
        [
            d(site),
            f(f"{site}/_fast.cpython-311-x86_64-linux-gnu.so", ELF),
            f(f"{site}/_fast.cpython-312-x86_64-linux-gnu.so", ELF),
            f(f"{site}/_fast.py"),
        ]
    )
    found = ModuleFinder(image.tree).find("_fast", (site,))
    assert found == (
        f"{site}/_fast.cpython-311-x86_64-linux-gnu.so",
        f"{site}/_fast.cpython-312-x86_64-linux-gnu.so",
    )


def test_frozen_names() -> None:
    assert frozen_names(b"\0nothing\0") == frozenset()
    assert frozen_names(b"\0_frozen_importlib_external\0") == BOOTSTRAP_FROZEN
    both = frozen_names(b"\0_frozen_importlib_external\0frozen_modules=on")
    assert both == BOOTSTRAP_FROZEN | STDLIB_FROZEN and "os" in both


def test_builtin_c_imports() -> None:
    # only the built-in ones among the names; an extension module in a file is
    # followed as a source instead
    got = builtin_c_imports({"_pickle", "_decimal", "os"}, frozenset({"_pickle", "posix"}))
    assert got == {n: "_pickle" for n in ("codecs", "copyreg", "_compat_pickle", "functools")}
