"""The Ruby expander on in-memory trees laid out like Debian's ruby 3.1: requires
inside methods, require_relative, $LOAD_PATH order, gems' require_paths and
native extensions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from slimmer.model import ImageConfig
from slimmer.plan.expanders import EXPANDERS
from slimmer.plan.expanders.ruby import resolve_require, ruby_load_path
from slimmer.plan.expanders.ruby_encodings import CORE_ENCODINGS, KNOWN_LIBRARIES, table_mismatch
from slimmer.plan.expanders.ruby_gems import gemspec_dependencies, gemspec_require_paths
from slimmer.plan.expanders.ruby_source import SELF, ruby_code, ruby_specs
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


def test_specs_are_found_inside_methods_and_computed_names_are_directories() -> None:
    assert ruby_specs(ROUTER) == ["json", "digest/sha2", "plugins/*"]
    assert ruby_specs('require "#{x}"\nrequire "a#{x}"\n') == []  # no literal directory
    assert ruby_specs("def self.const_missing(n)\n  require lib\nend\n") == [SELF]
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
    """psych.so calls rb_require("psych/syntax_error") from C: no Ruby scan sees it,
    but the name is in the binary. bigdecimal.so names none of bigdecimal/."""
    tree = ruby_tree(
        {
            f"{LIB}/yaml.rb": b"begin\n  require 'psych'\nrescue LoadError\nend\n",
            f"{LIB}/psych.rb": b"require 'psych.so'\n",
            f"{ARCH}/psych.so": File(ELF + b"psych/syntax_error\0Psych::Nodes\0"),
            f"{LIB}/psych/unused.rb": b"# not named by psych.so\n",
            f"{LIB}/psych/syntax_error.rb": b"require_relative 'exception'\n",
            f"{LIB}/psych/exception.rb": b"# exception\n",
            "/srv/app/lib/router.rb": b"def yaml\n  require 'yaml'\nend\n",
        }
    )
    paths = {a.path for a in run(ctx(tree, ["/usr/bin/ruby3.1", "/srv/app/server.rb"]))}
    assert {f"{ARCH}/psych.so", f"{LIB}/psych/syntax_error.rb", f"{LIB}/psych/exception.rb"} <= (
        paths
    )
    assert f"{LIB}/psych/unused.rb" not in paths


def test_requires_in_comments_are_not_code() -> None:
    """json.rb documents `require 'json/add/core'`; specification.rb `require 'rake'`."""
    source = (
        "require 'json/common'\n"
        "#   require 'json/add/set'\n"
        "  # - Date: <tt>require 'json/add/date'</tt>\n"
        "=begin\nrequire 'in_block'\n=end\n"
        "x = 1 # trailing comments stay\n"
        "__END__\nrequire 'data'\n"
    )
    assert ruby_specs(source) == ["json/common"]
    assert "trailing comments stay" in ruby_code(source)


def test_a_computed_require_keeps_its_directory() -> None:
    """digest.rb's const_missing does `require lib` for Digest::MD5: all of digest/."""
    tree = ruby_tree(
        {
            f"{LIB}/digest.rb": b"require 'digest.so'\ndef self.m(n)\n  require lib\nend\n",
            f"{ARCH}/digest/md5.so": SO,
            f"{LIB}/plugins/a.rb": b"",
            "/srv/app/lib/router.rb": b'def x\n  require "digest"\n  require "plugins/#{n}"\nend\n',
        }
    )
    path = (LIB, ARCH)
    assert f"{ARCH}/digest/md5.so" in resolve_require(tree, path, SELF, f"{LIB}/digest.rb")
    adds = run(ctx(tree, ["/usr/bin/ruby3.1", "/srv/app/server.rb"]))
    by = {a.path: a for a in adds}
    assert {f"{ARCH}/digest/md5.so", f"{ARCH}/digest/sha2/loader.so", f"{LIB}/plugins/a.rb"} <= (
        set(by)
    )
    assert "a computed name" in by[f"{ARCH}/digest/md5.so"].reason.detail
    assert "below 'plugins/'" in by[f"{LIB}/plugins/a.rb"].reason.detail


def test_the_preludes_lazy_requires_are_followed_only_when_it_is_named() -> None:
    """rubygems.rb is loaded at every start; `Gem.install` requires its installer."""
    rubygems = "/usr/lib/ruby/vendor_ruby/rubygems.rb"
    tree = ruby_tree(
        {
            rubygems: b"def self.install(n)\n  require 'zlib'\nend\n",
            "/usr/lib/ruby/vendor_ruby/rubygems/util.rb": b"def x\n  require 'zlib'\nend\n",
            "/srv/app/lib/router.rb": b"# plain\n",
        }
    )
    kept = ["/usr/bin/ruby3.1", "/srv/app/server.rb", rubygems]
    assert f"{ARCH}/zlib.so" not in {a.path for a in run(ctx(tree, kept))}
    tree = ruby_tree(
        {
            **{rubygems: b"def i\n  require 'zlib'\nend\n"},
            **{"/srv/app/lib/router.rb": b"require 'rubygems'\n"},
        }
    )
    assert f"{ARCH}/zlib.so" in {a.path for a in run(ctx(tree, kept))}


GEMSPEC = b"""Gem::Specification.new do |s|
  s.name = "sinatra".freeze
  s.require_paths = ["lib".freeze]
  s.add_runtime_dependency(%q<rack>.freeze, ["~> 3.0"])
end
"""


def test_gemspec_dependencies() -> None:
    assert gemspec_dependencies(GEMSPEC.decode()) == ["rack"]
    assert gemspec_dependencies("s.add_dependency 'tilt', '~> 2'") == ["tilt"]


def test_only_the_specs_of_gems_in_use_and_their_dependencies_are_kept() -> None:
    tree = ruby_tree(
        {
            f"{GEMS}/specifications/sinatra-4.0.0.gemspec": GEMSPEC,
            f"{GEMS}/gems/sinatra-4.0.0/lib/sinatra.rb": b"# no requires\n",
            f"{GEMS}/specifications/rake-13.0.6.gemspec": b"s.name = 'rake'\n",
            f"{GEMS}/gems/rake-13.0.6/lib/rake.rb": b"",
            f"{GEMS}/extensions/x86_64-linux/3.1.0/sinatra-4.0.0/gem.build_complete": b"",
            "/srv/app/lib/router.rb": b"require 'sinatra'\n",
        }
    )
    by = {a.path: a for a in run(ctx(tree, ["/usr/bin/ruby3.1", "/srv/app/server.rb"]))}
    spec = f"{GEMS}/specifications/sinatra-4.0.0.gemspec"
    assert {
        spec,
        f"{GEMS}/specifications/rack-3.0.0.gemspec",
        f"{GEMS}/extensions/x86_64-linux/3.1.0/sinatra-4.0.0/gem.build_complete",
    } <= set(by)
    assert f"{GEMS}/specifications/rake-13.0.6.gemspec" not in by
    assert "activates gem sinatra-4.0.0: its files are kept" in by[spec].reason.detail
    rack = by[f"{GEMS}/specifications/rack-3.0.0.gemspec"].reason.detail
    assert "sinatra-4.0.0 depends on it" in rack


ENC = "/usr/lib/x86_64-linux-gnu/ruby/3.1.0/enc"
ENC_FILES = (
    "encdb.so",
    "utf_16le.so",
    "shift_jis.so",
    "windows_31j.so",
    "euc_jp.so",
    "iso_8859_1.so",
    "trans/transdb.so",
    "trans/japanese.so",
    "trans/japanese_sjis.so",
    "trans/japanese_euc.so",
    "trans/single_byte.so",
    "trans/escape.so",
)
ENCODINGS: dict[str, Spec] = {f"{ENC}/{n}": SO for n in ENC_FILES}
CORE = {f"{ENC}/encdb.so", f"{ENC}/utf_16le.so", f"{ENC}/trans/transdb.so"}


def _adds(tree: MemTree, traced: Iterable[str] = (), **config: Any) -> dict[str, Addition]:
    context = ctx(tree, ["/usr/bin/ruby3.1", "/srv/app/server.rb"], **config)
    context = ProfileContext(
        context.tree, context.config, frozenset(traced), context.executed, context.kept
    )
    return {a.path: a for a in run(context) if a.path.startswith(ENC) and a.path.endswith(".so")}


def _enc(tree: MemTree, traced: Iterable[str] = (), **config: Any) -> set[str]:
    return set(_adds(tree, traced, **config))


def _app(code: bytes) -> MemTree:
    return ruby_tree({**ENCODINGS, "/srv/app/lib/router.rb": code})


def test_encodings_core_set_without_evidence() -> None:
    assert _enc(ruby_tree(ENCODINGS)) == CORE
    # Ruby's own library converting encodings is not evidence: the app chooses
    lib = {f"{LIB}/json.rb": b"require 'json/common'\ndef c(s) = s.force_encoding(e)\n"}
    assert _enc(ruby_tree({**ENCODINGS, **lib})) == CORE
    # its literal names count: Ruby loads what it names
    lib = {f"{LIB}/json.rb": b"require 'json/common'\ndef c(s) = s.encode('ISO-8859-1')\n"}
    latin1 = {f"{ENC}/iso_8859_1.so", f"{ENC}/trans/single_byte.so"}
    assert _enc(ruby_tree({**ENCODINGS, **lib})) == CORE | latin1
    assert _enc(ruby_tree(ENCODINGS), Env=["LANG=C.UTF-8", "LC_ALL=en_US.utf8"]) == CORE
    # no encoding named: options only, no argument, a method of that name defined
    for code in (
        b"s.encode(xml: :text)\n",
        b"s.encode\n",
        b"def encode(x) = x\n",
        b"t = s.encode if x\n",
        b"Encoding.default_internal = nil\n",
        b"out_encoding = s.encoding\n",  # a local variable
        b"Encoding.find('locale')\n",  # UTF-8 or US-ASCII: the locale is UTF-8 or C
        b"File.join(d.encode(::Encoding::UTF_8))\n",
    ):
        xml = {f"{ENC}/trans/escape.so"} if b"xml" in code else set()
        assert _enc(_app(code)) == CORE | xml, code


def test_encodings_whole_on_evidence() -> None:
    every = set(ENCODINGS)
    assert _enc(ruby_tree(ENCODINGS), traced=[f"{ENC}/shift_jis.so"]) == every
    assert _enc(ruby_tree(ENCODINGS), Env=["LANG=ja_JP.eucJP"]) == every
    assert _enc(ruby_tree(ENCODINGS), Env=["RUBYOPT=-Eiso-8859-1"]) == every
    for code in (
        b"def r(b, cs) = b.force_encoding(cs)\n",  # computed
        b"File.read(p, encoding: enc)\n",
        b"s.encode(to, 'UTF-8')\n",
        b"s.encode('UTF-8', from, invalid: :replace)\n",
        b"Encoding.find(ENV['CHARSET'])\n",
        b"NKF.nkf('-w', s)\n",
        b"s.encode('latin1')\n",  # a name Ruby does not know (it raises; kept whole)
        b"x = Encoding::Klingon\n",
        b'File.open(p, "r:#{enc}")\n',
        b"File.open(p, 'r:' + enc)\n",
        b"# -*- coding: euc-jp -*-\nputs 1\n",
    ):
        assert _enc(_app(code)) == every, code
    assert _enc(_app(b"# force_encoding(x)\n")) != every  # a comment is not evidence
    why = _adds(_app(b"x = 1\ns.force_encoding(cs)\n"))[f"{ENC}/shift_jis.so"].reason.detail
    assert "/srv/app/lib/router.rb:2 names an encoding at run time" in why


def test_encodings_named_by_literals_keep_their_libraries() -> None:
    # ISO-8859-1: its library and the single-byte transcoders to and from UTF-8
    latin1 = {f"{ENC}/iso_8859_1.so", f"{ENC}/trans/single_byte.so"}
    for code in (
        b's = "h\xc3\xa9".encode("ISO-8859-1")\n',
        b"s.force_encoding 'iso8859-1'\n",  # an alias
        b"x = Encoding::ISO_8859_1\n",
        b"File.open(p, 'r:iso-8859-1:utf-8')\n",
        b"File.open(p, 'rb:BOM|iso-8859-1')\n",
        b"Encoding.default_external = 'ISO-8859-1'\n",
        b"config.default_encoding = 'ISO-8859-1'\n",
        b"File.read(p, encoding: 'ISO-8859-1')\n",
    ):
        assert _enc(_app(code)) == CORE | latin1, code
    # CP932 and SJIS are Windows-31J in Ruby 3.1: windows_31j.so, not shift_jis.so
    sjis = {f"{ENC}/windows_31j.so", f"{ENC}/trans/japanese_sjis.so"}
    assert _enc(_app(b"Encoding.find('cp932')\n")) == CORE | sjis
    assert _enc(_app(b"s.encode('SJIS')\n")) == CORE | sjis
    assert _enc(_app(b"s.encode(Encoding::Windows_31J)\n")) == CORE | sjis
    adds = _adds(_app(b"x = 1\ns.encode('CP932')\n"))
    why = adds[f"{ENC}/windows_31j.so"].reason.detail
    assert why.startswith("/srv/app/lib/router.rb:2 asks Ruby for 'CP932'"), why
    adds = _adds(_app(b"s.encode(xml: :text)\n"))
    why = adds[f"{ENC}/trans/escape.so"].reason.detail
    assert (
        why
        == "/srv/app/lib/router.rb:1 asks Ruby for XML escaping, which needs enc/trans/escape.so"
    )


def test_encodings_a_literal_pair_keeps_its_transcoder() -> None:
    # Shift_JIS -> EUC-JP is one step, in trans/japanese.so; each side to UTF-8 too
    kept = _enc(_app(b"s.encode('EUC-JP', 'Shift_JIS')\n"))
    assert kept == CORE | {
        f"{ENC}/shift_jis.so",
        f"{ENC}/euc_jp.so",
        f"{ENC}/trans/japanese.so",
        f"{ENC}/trans/japanese_sjis.so",
        f"{ENC}/trans/japanese_euc.so",
    }
    assert f"{ENC}/trans/japanese.so" not in _enc(_app(b"s.encode('EUC-JP')\n"))


def test_encodings_whole_when_the_image_is_not_the_table() -> None:
    latin1 = b"s.encode('ISO-8859-1')\n"
    assert _enc(_app(latin1)) == CORE | {f"{ENC}/iso_8859_1.so", f"{ENC}/trans/single_byte.so"}
    # a library Ruby 3.1 does not have
    tree = ruby_tree({**ENCODINGS, f"{ENC}/klingon.so": SO, "/srv/app/lib/router.rb": latin1})
    assert _enc(tree) == {*ENCODINGS, f"{ENC}/klingon.so"}
    # encdb.so declares a name the table does not know
    encdb = File(ELF + b"UTF-8\0Shift_JIS\0Klingon-8\0rb_encdb_declare\0.rodata\0")
    tree = ruby_tree({**ENCODINGS, f"{ENC}/encdb.so": encdb, "/srv/app/lib/router.rb": latin1})
    adds = _adds(tree)
    assert set(adds) == set(ENCODINGS)
    assert "declares 'Klingon-8'" in adds[f"{ENC}/shift_jis.so"].reason.detail
    encdb = File(ELF + b"UTF-8\0Shift_JIS\0SJIS\0rb_encdb_declare\0.rodata\0")
    tree = ruby_tree({**ENCODINGS, f"{ENC}/encdb.so": encdb, "/srv/app/lib/router.rb": latin1})
    assert _enc(tree) != set(ENCODINGS)


# The libraries of Debian bookworm's ruby3.1 (`ls enc enc/trans` in the ruby-http
# fixture): every one is in the tables, so literal names keep only their own.
DEBIAN_RUBY31_ENC = (
    "big5 cesu_8 cp949 emacs_mule encdb euc_jp euc_kr euc_tw gb18030 gb2312 gbk iso_8859_1"
    " iso_8859_10 iso_8859_11 iso_8859_13 iso_8859_14 iso_8859_15 iso_8859_16 iso_8859_2"
    " iso_8859_3 iso_8859_4 iso_8859_5 iso_8859_6 iso_8859_7 iso_8859_8 iso_8859_9 koi8_r"
    " koi8_u shift_jis utf_16be utf_16le utf_32be utf_32le windows_1250 windows_1251"
    " windows_1252 windows_1253 windows_1254 windows_1257 windows_31j trans/big5 trans/cesu_8"
    " trans/chinese trans/ebcdic trans/emoji trans/emoji_iso2022_kddi trans/emoji_sjis_docomo"
    " trans/emoji_sjis_kddi trans/emoji_sjis_softbank trans/escape trans/gb18030 trans/gbk"
    " trans/iso2022 trans/japanese trans/japanese_euc trans/japanese_sjis trans/korean"
    " trans/single_byte trans/transdb trans/utf8_mac trans/utf_16_32"
).split()


def test_encodings_table_knows_debian_ruby31() -> None:
    files = {f"{n}.so" for n in DEBIAN_RUBY31_ENC}
    assert files == set(KNOWN_LIBRARIES)
    tree = ruby_tree({f"{ENC}/{n}": SO for n in files})
    assert table_mismatch(tree, ENC) == ""
    kept = _enc(
        ruby_tree(
            {**{f"{ENC}/{n}": SO for n in files}, "/srv/app/lib/router.rb": b"s.encode('GB2312')\n"}
        )
    )
    assert kept == {f"{ENC}/{n}" for n in CORE_ENCODINGS} | {
        f"{ENC}/euc_kr.so",
        f"{ENC}/trans/chinese.so",
    }
