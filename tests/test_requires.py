"""The helpers the script runtimes' expanders (Ruby, PHP, Perl) share: the
interpreter gate, where a closure starts and the memo key of a search path."""

from __future__ import annotations

import re

from slimmer.model import ImageConfig
from slimmer.plan.expanders._requires import interpreter_kept, script_roots, search_key
from slimmer.plan.keep import ProfileContext
from tests.memtree import File, Link, MemTree

ELF = b"\x7fELF" + b"\0" * 60


def ctx(tree: MemTree, kept: set[str], cmd: list[str], wd: str = "") -> ProfileContext:
    cfg = ImageConfig({"config": {"Cmd": cmd, "WorkingDir": wd}})
    return ProfileContext(tree, cfg, frozenset(), frozenset(), frozenset(kept))


def test_the_gate_is_a_kept_interpreter_file() -> None:
    tree = MemTree({"/usr/bin/perl": Link("perl5.36"), "/usr/bin/perl5.36": File(ELF)})
    perl = re.compile(r"perl(5[\d.]*)?\Z")
    assert interpreter_kept(ctx(tree, {"/usr/bin/perl", "/usr/bin/perl5.36"}, []), perl)
    assert not interpreter_kept(ctx(tree, set(), []), perl)


def test_roots_are_the_named_scripts_then_the_kept_sources_followed() -> None:
    tree = MemTree({"/srv/app.rb": b"", "/lib/a.rb": b"", "/lib/skip.rb": b""})
    context = ctx(tree, {"/lib/a.rb", "/lib/skip.rb", "/lib/x.so"}, ["ruby", "app.rb"], "/srv")
    assert sorted(script_roots(context, (".rb",))) == ["/lib/a.rb", "/lib/skip.rb", "/srv/app.rb"]
    follow = script_roots(context, (".rb",), lambda p: not p.endswith("skip.rb"))
    assert sorted(follow) == ["/lib/a.rb", "/srv/app.rb"]


def test_the_key_names_the_runtime_and_changes_with_the_search_path() -> None:
    assert search_key("perl", ["/a", "/b"]).startswith("perl-")
    assert search_key("perl", ["/a", "/b"]) == search_key("perl", ("/a", "/b"))
    assert search_key("perl", ["/a", "/b"]) != search_key("perl", ["/b", "/a"])
