"""Small helpers shared by the expander families."""

from __future__ import annotations

import re
from collections.abc import Iterable

from slimmer.plan.keep import Addition


def not_kept(additions: Iterable[Addition], kept: frozenset[str]) -> list[Addition]:
    """The additions whose path is not kept yet."""
    return [a for a in additions if a.path not in kept]


# The runtimes' own libraries: Python's standard library (not its site- or
# dist-packages), Perl's (Debian's perl/5.x, perl-base, upstream's perl5/5.x; not
# /usr/share/perl5, where CPAN modules go), Ruby's (not its gems), npm and corepack.
# Their code runs a helper or loads a module by name only when its caller asks, so
# the caller in the app is the evidence, not them.
RUNTIME_LIBRARY = re.compile(
    r"/lib/python3[\d.]*/(?![^/]*-packages/)"
    r"|/usr/(local/)?share/perl/5|/usr/(local/)?lib/[^/]+/perl(-base|5?/5)"
    r"|/usr/local/lib/perl5/5|/usr/(local/)?lib/ruby/\d[^/]*/|/usr/lib/[^/]+-linux-gnu/ruby/\d"
    r"|/node_modules/(npm|corepack)/"
)
