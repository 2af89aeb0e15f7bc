"""The Ruby expander on in-memory trees laid out like Debian's ruby 3.1: requires
inside methods, require_relative, $LOAD_PATH order, gems' require_paths and
native extensions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from slimmer.model import ImageConfig
from slimmer.plan.expanders import EXPANDERS
from slimmer.plan.expanders.ruby import (
    gemspec_require_paths,
    resolve_require,
    ruby_load_path,
    ruby_specs,
)
from slimmer.plan.keep import Addition, ProfileContext
from slimmer.plan.profiles import load_profiles
from tests.memtree import File, Link, MemTree, Spec

LIB = "/usr/lib/ruby/3.1.0"
ARCH = "/usr/lib/x86_64-linux-gnu/ruby/3.1.0"
GEMS = "/usr/lib/ruby/gems/3.1.0"
ELF = b"\x7fELF" + b"\0" * 60
SO = File(ELF)

ROUTER = """\
class Router
  def json_reply
    require 'json'
    JSON.generate({})
  end

  def digest = (require "digest/sha2"; Digest::SHA256)
  def later
    require "plugins/#{name}"   # interpolated: cannot be known
  end
end
"""


def ruby_tree(extra: dict[str, Spec] | None = None) -> MemTree:
    spec: dict[str, Spec] = {
        "/usr/bin/ruby": Link("ruby3.1"),
        "/usr/bin/ruby3.1": File(ELF),
        "/srv/app/server.rb": b"require 'socket'\nrequire_relative 'lib/router'\n",
        "/srv/app/lib/router.rb": ROUTER.encode(),
        f"{LIB}/json.rb": b"require 'json/common'\nrequire 'json/ext'\n",
        f"{LIB}/json/common.rb": b"# common\n",
        f"{LIB}/json/ext.rb": b"  require 'json/ext/parser'\n  require 'json/ext/generator'\n",
        f"{ARCH}/json/ext/parser.so": SO,
        f"{ARCH}/json/ext/generator.so": SO,
        f"{ARCH}/socket.so": SO,
        f"{LIB}/socket.rb": b"require 'socket.so'\n",
        f"{LIB}/digest.rb": b"require 'digest.so'\n",
        f"{ARCH}/digest.so": SO,
        f"{LIB}/digest/sha2.rb": b"require 'digest'\nrequire 'digest/sha2/loader'\n",
        f"{ARCH}/digest/sha2/loader.so": SO,
        f"{ARCH}/zlib.so": SO,
        f"{GEMS}/specifications/rack-3.0.0.gemspec": (b's.require_paths = ["lib".freeze]\n'),
        f"{GEMS}/gems/rack-3.0.0/lib/rack.rb": b"module Rack; end\n",
        f"{GEMS}/gems/rack-3.0.0/README.md": b"docs\n",
    }
    spec.update(extra or {})
    return MemTree(spec)


def ctx(
    tree: MemTree, kept: Iterable[str], ran: Iterable[str] = ("/usr/bin/ruby",), **config: Any
) -> ProfileContext:
    cfg = ImageConfig({"config": {"Cmd": ["ruby", "/srv/app/server.rb"], **config}})
    executed = frozenset(ran)
    return ProfileContext(tree, cfg, executed, executed, frozenset(kept))


def run(context: ProfileContext) -> list[Addition]:
    profile = next(p for p in load_profiles() if p.name == "ruby")
    return EXPANDERS["ruby-requires"](context, profile.name)[0]


def test_specs_are_found_inside_methods_and_interpolation_is_skipped() -> None:
    assert ruby_specs(ROUTER) == ["json", "digest/sha2"]
    assert ruby_specs("require_relative 'lib/x'\nautoload :Foo, 'foo/bar'\n") == [
        "./lib/x",
        "foo/bar",
    ]
    assert ruby_specs("obj.require 'no'\nload('tasks/a.rake')\n") == ["tasks/a.rake"]


def test_gemspec_require_paths() -> None:
    assert gemspec_require_paths('s.require_paths = ["lib".freeze, "ext"]') == ["lib", "ext"]
    assert gemspec_require_paths("s.name = 'x'") == ["lib"]


def test_load_path_order_and_gems() -> None:
    tree = ruby_tree({"/usr/lib/ruby/vendor_ruby/x.rb": b""})
    path = ruby_load_path(ctx(tree, ["/usr/bin/ruby3.1"], Env=["RUBYLIB=/opt/lib"]))
    assert path == (
        "/usr/lib/ruby/vendor_ruby",
        LIB,
        ARCH,
        f"{GEMS}/gems/rack-3.0.0/lib",
    )  # /opt/lib is not in the image


def test_resolve_rb_before_so_per_directory_and_relative_from_real_dir() -> None:
    tree = ruby_tree()
    path = (LIB, ARCH)
    assert resolve_require(tree, path, "socket", "/x.rb") == [f"{LIB}/socket.rb"]
    assert resolve_require(tree, path, "socket.so", "/x.rb") == [f"{ARCH}/socket.so"]
    assert resolve_require(tree, path, "zlib", "/x.rb") == [f"{ARCH}/zlib.so"]
    assert resolve_require(tree, path, "nope", "/x.rb") == []
    rel = resolve_require(tree, path, "./lib/router", "/srv/app/server.rb")
    assert rel == ["/srv/app/lib/router.rb"]


def test_lazy_requires_close_over_stdlib_extensions_and_gems() -> None:
    tree = ruby_tree({"/srv/app/lib/web.rb": b"def app\n  require 'rack'\nend\n"})
    kept = ["/usr/bin/ruby3.1", "/srv/app/server.rb", "/srv/app/lib/web.rb"]
    adds = run(ctx(tree, kept))
    paths = {a.path for a in adds}
    assert {
        "/srv/app/lib/router.rb",
        f"{LIB}/json.rb",
        f"{LIB}/json/common.rb",
        f"{ARCH}/json/ext/parser.so",
        f"{ARCH}/json/ext/generator.so",
        f"{ARCH}/digest.so",
        f"{ARCH}/digest/sha2/loader.so",
        f"{GEMS}/gems/rack-3.0.0/lib/rack.rb",
    } <= paths
    assert f"{ARCH}/zlib.so" not in paths  # nothing requires it
    assert "/srv/app/server.rb" not in paths  # already kept: followed, not added
    by = {a.path: a for a in adds}
    parser = by[f"{ARCH}/json/ext/parser.so"]
    assert parser.closure and parser.reason.source == "ruby"
    assert f"{LIB}/json/ext.rb requires 'json/ext/parser'" in parser.reason.detail


def test_nothing_without_a_ruby() -> None:
    tree = ruby_tree()
    assert run(ctx(tree, ["/srv/app/server.rb"], ran=())) == []


def test_a_native_extension_keeps_the_ruby_files_its_c_code_requires() -> None:
    """psych.so calls rb_require("psych/syntax_error") from C: no Ruby scan sees it."""
    tree = ruby_tree(
        {
            f"{LIB}/yaml.rb": b"begin\n  require 'psych'\nrescue LoadError\nend\n",
            f"{LIB}/psych.rb": b"require 'psych.so'\n",
            f"{ARCH}/psych.so": SO,
            f"{LIB}/psych/syntax_error.rb": b"require_relative 'exception'\n",
            f"{LIB}/psych/exception.rb": b"# exception\n",
            "/srv/app/lib/router.rb": b"def yaml\n  require 'yaml'\nend\n",
        }
    )
    paths = {a.path for a in run(ctx(tree, ["/usr/bin/ruby3.1", "/srv/app/server.rb"]))}
    assert {f"{ARCH}/psych.so", f"{LIB}/psych/syntax_error.rb", f"{LIB}/psych/exception.rb"} <= (
        paths
    )
