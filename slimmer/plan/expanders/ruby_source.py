"""Ruby source as the Ruby expanders read it: code without comments, and the
names its `require`, `require_relative`, `load` and `autoload` statements load.

Comments are not code: a `require` in a comment or an `=begin` block is not
followed. Statements are read anywhere in a file, inside methods too.
"""

from __future__ import annotations

import re

_REQUIRE = re.compile(
    r"""(?<![\w.$:])(require_relative|require|load)\b\s*\(?\s*(['"])([^'"\n]+)\2"""
)
_AUTOLOAD = re.compile(r"""(?<![\w$])autoload\??\s*\(?\s*:\w+\s*,\s*(['"])([^'"\n]+)\1""")
# `require lib` / `require(name)`: a name computed at run time from a variable.
_COMPUTED = re.compile(
    r"(?<![\w.$:])(?:require|load)\b[ \t]*\(?[ \t]*[a-z_@][\w.]*[ \t]*\)?[ \t]*$"
)
_BLOCK_COMMENT = re.compile(r"^=begin\b.*?^=end\b[^\n]*", re.M | re.S)
SELF = "*"
"""The spec of a computed require without a literal prefix: the requiring file's
own namespace directory (`digest.rb`'s `require lib` loads `digest/<name>`)."""


def ruby_code(source: str) -> str:
    """Ruby source without its comments: `=begin`/`=end` blocks, whole-line `#`
    comments and everything after `__END__` (a trailing `# x` after code stays)."""
    source = _BLOCK_COMMENT.sub("", source.split("\n__END__\n", 1)[0])
    return "\n".join(line for line in source.split("\n") if not line.lstrip().startswith("#"))


def ruby_specs(source: str) -> list[str]:
    """Literal names of `require`, `require_relative` (marked with a leading `./`
    when not already relative), `load` and `autoload` in Ruby source, anywhere in
    the code (comments are skipped). A computed name is a directory: the literal
    prefix of an interpolated name (`"x/#{y}"` -> `x/*`), else the requiring
    file's own namespace (`require lib` -> `*`)."""
    code = ruby_code(source)
    out = []
    for m in _REQUIRE.finditer(code):
        verb, name = m.group(1), m.group(3)
        if verb == "require_relative" and not name.startswith(("./", "../", "/")):
            name = "./" + name
        if "#{" in name:
            prefix = name[: name.index("#{")].rpartition("/")[0]
            name = f"{prefix}/*" if prefix.strip("./") else ""
        out.append(name)
    out += [m.group(2) for m in _AUTOLOAD.finditer(code) if "#{" not in m.group(2)]
    out += [SELF for line in code.split("\n") if _COMPUTED.search(line)]
    return list(dict.fromkeys(n for n in out if n.strip() == n and n))


def describe_spec(spec: str) -> str:
    """A spec as a reason shows it: a computed name says which directory it keeps."""
    if spec == SELF:
        return "a computed name (its own namespace directory, whole)"
    if spec.endswith("/*"):
        return f"a computed name below {spec[:-1]!r} (that directory, whole)"
    return repr(spec)
