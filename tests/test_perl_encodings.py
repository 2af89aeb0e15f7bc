"""Perl's `Encode` modules loaded by an encoding's name (`perl_encodings`, through
the `perl-modules` expander), on an in-memory tree laid out like Debian's perl 5.36:
`Encode/Config.pm`'s table names the module of each encoding."""

from __future__ import annotations

from collections.abc import Iterable

from slimmer.model import ImageConfig
from slimmer.plan.expanders import EXPANDERS
from slimmer.plan.expanders.perl_encode_aliases import UNKNOWN, alias_names, parse_aliases
from slimmer.plan.expanders.perl_encodings import EncodingUse, encoding_table, encoding_uses
from slimmer.plan.keep import Addition, ProfileContext
from tests.memtree import File, MemTree

ELF = b"\x7fELF" + b"\0" * 60
ARCH = "/usr/lib/x86_64-linux-gnu/perl/5.36"
CONFIG = b"""package Encode::Config;
our %ExtModule = (
    # Encode::Byte
    #iso-8859-1 is in Encode.pm itself
    'iso-8859-2'            => 'Encode::Byte',
    'cp1252'                => 'Encode::Byte',
    'UTF-16LE'              => 'Encode::Unicode',
    'UTF-16'                => 'Encode::Unicode',
    'euc-cn'                => 'Encode::CN',
    #'euc-tw'               => 'Encode::HanExtra',
    'gsm0338'               => 'Encode::Byte',
    'gsm0338'               => 'Encode::GSM0338',
);
"""
# In the form of Encode/Alias.pm's init_aliases (Encode 3.x, perl 5.36).
ALIASES = b"""package Encode::Alias;
sub init_aliases {
    define_alias( qr/^(.*)$/ => '"\\L$1"' );
    define_alias(
        qr/^UTF-?(16|32)-?LE$/i => '"UTF-$1LE"',
        qr/^UCS-?4-?(BE|LE|)?$/i => 'uc("UTF-32$1")',
    );
    # define_alias( qr/^never$/ => '"euc-cn"' );
    define_alias( 'C' => 'ascii' );
    define_alias( qr/\\bGB[-_ ]?2312(?!-?raw)/i => '"euc-cn"' );
    define_alias( qr/\\b(?:cp|ibm|ms|windows)[-_ ]?(\\d{2,4})$/i => '"cp$1"' );
}
1;
"""
MODULES = {
    f"{ARCH}/Encode/{name}.pm": f"package Encode::{name};\nuse XSLoader;\n".encode()
    for name in ("Byte", "Unicode", "CN")
}
ALL = {
    path
    for name in ("Byte", "Unicode", "CN")
    for path in (f"{ARCH}/Encode/{name}.pm", f"{ARCH}/auto/Encode/{name}/{name}.so")
}


def tree(app: str) -> MemTree:
    return MemTree(
        {
            "/usr/bin/perl": File(ELF),
            "/app/run.pl": app.encode(),
            f"{ARCH}/Encode.pm": b"package Encode;\nrequire Encode::Config;\n",
            f"{ARCH}/Encode/Config.pm": CONFIG,
            f"{ARCH}/Encode/Alias.pm": ALIASES,
            f"{ARCH}/Encode/Lookup.pm": b"use Encode ();\nfind_encoding($name);\n",
            f"{ARCH}/Encode/Unicode/UTF7.pm": b"use Encode;\nfind_encoding('UTF-16LE');\n",
            f"{ARCH}/XSLoader.pm": b"package XSLoader; 1;\n",
            **MODULES,
            **{f"{ARCH}/auto/Encode/{n}/{n}.so": File(ELF) for n in ("Byte", "Unicode", "CN")},
        }
    )


def added(app: str, kept: Iterable[str] = ()) -> dict[str, Addition]:
    keep = {"/usr/bin/perl", "/app/run.pl", f"{ARCH}/Encode.pm", *kept}
    config = ImageConfig({"config": {"Cmd": ["perl", "/app/run.pl"]}})
    context = ProfileContext(tree(app), config, frozenset(), frozenset(), frozenset(keep))
    additions, _ = EXPANDERS["perl-modules"](context, "perl")
    return {a.path: a for a in additions if a.path in ALL}


def test_a_literal_encoding_keeps_its_module_and_xs_library() -> None:
    found = added('use Encode;\n\nmy $b = encode("UTF-16LE", $text);\n')
    assert set(found) == {f"{ARCH}/Encode/Unicode.pm", f"{ARCH}/auto/Encode/Unicode/Unicode.so"}
    reason = found[f"{ARCH}/Encode/Unicode.pm"].reason
    assert (reason.kind, reason.source) == ("profile", "perl")
    assert reason.detail == (
        "/app/run.pl:3 asks Encode for 'UTF-16LE', which Encode loads from Encode::Unicode"
    )


def test_names_match_the_table_as_encode_does_ignoring_case() -> None:
    found = added("use Encode;\nmy $s = decode('utf-16le', $b);\nfrom_to($d, 'CP1252', 'utf8');\n")
    assert {p.rpartition("/")[2] for p in found} == {
        "Unicode.pm",
        "Unicode.so",
        "Byte.pm",
        "Byte.so",
    }


def test_a_computed_name_keeps_every_module_of_the_table() -> None:
    found = added("use Encode;\nsub conv { return Encode::decode($charset, $_[0]) }\n")
    assert set(found) == ALL
    detail = found[f"{ARCH}/Encode/CN.pm"].reason.detail
    assert detail == "/app/run.pl:2 asks Encode for an encoding named at run time"


def test_a_name_the_table_does_not_list_keeps_every_module() -> None:
    found = added('use Encode;\nencode("UTF16-LE-ALIAS", $x);\n')
    assert set(found) == ALL
    assert (
        "which Encode's table and aliases do not settle"
        in found[f"{ARCH}/Encode/Byte.pm"].reason.detail
    )


def test_an_io_layer_names_an_encoding_too() -> None:
    found = added('binmode(STDOUT, ":encoding(euc-cn)");\n')
    assert set(found) == {f"{ARCH}/Encode/CN.pm", f"{ARCH}/auto/Encode/CN/CN.so"}


def test_encodings_encode_holds_itself_keep_nothing() -> None:
    assert added('use Encode;\nencode("UTF-8", $x);\ndecode("latin1", $y);\n') == {}


def added_with_xs(app: str, encode_so: bytes) -> dict[str, Addition]:
    keep = {"/usr/bin/perl", "/app/run.pl", f"{ARCH}/Encode.pm"}
    with_so = tree(app)
    with_so.add(f"{ARCH}/auto/Encode/Encode.so", File(encode_so))
    config = ImageConfig({"config": {"Cmd": ["perl", "/app/run.pl"]}})
    context = ProfileContext(with_so, config, frozenset(), frozenset(), frozenset(keep))
    additions, _ = EXPANDERS["perl-modules"](context, "perl")
    return {a.path: a for a in additions if a.path in ALL}


# Debian's Encode.so (Encode 3.17) compiles in cp1252 beside the names Encode.pm holds:
# its C strings include "null", "iso-8859-1", "cp1252", "ascii-ctrl", "ascii".
XS_CP1252 = ELF + b"\0Cannot find encoding\0null\0iso-8859-1\0cp1252\0ascii-ctrl\0ascii\0"


def test_an_encoding_encode_so_compiles_in_keeps_nothing() -> None:
    """perl-utf16's `encode 'cp1252', …` answered right without Encode::Byte (Encode
    found cp1252 in Encode.so first), yet the rule kept Byte.pm and its 371 kB Byte.so."""
    app = 'use Encode;\nencode("cp1252", $x);\ndecode("windows-1252", $y);\n'
    assert added_with_xs(app, XS_CP1252) == {}
    older = added_with_xs(app, ELF + b"\0null\0iso-8859-1\0ascii\0")
    assert set(older) == {f"{ARCH}/Encode/Byte.pm", f"{ARCH}/auto/Encode/Byte/Byte.so"}
    other = added_with_xs('use Encode;\nencode("iso-8859-2", $x);\n', XS_CP1252)
    assert set(other) == {f"{ARCH}/Encode/Byte.pm", f"{ARCH}/auto/Encode/Byte/Byte.so"}


def test_nothing_without_encode_kept_or_from_perls_own_library() -> None:
    app = 'use Encode;\nencode("UTF-16LE", $x);\n'
    keep = {"/usr/bin/perl", "/app/run.pl"}
    config = ImageConfig({"config": {"Cmd": ["perl", "/app/run.pl"]}})
    context = ProfileContext(tree(app), config, frozenset(), frozenset(), frozenset(keep))
    assert [a for a in EXPANDERS["perl-modules"](context, "perl")[0] if a.path in ALL] == []
    # Perl's own library looks names up computed for its callers: no evidence.
    assert added("print 1;\n", [f"{ARCH}/Encode/Lookup.pm"]) == {}


def test_perls_own_library_counts_with_its_literal_names() -> None:
    found = added("print 1;\n", [f"{ARCH}/Encode/Unicode/UTF7.pm"])
    assert set(found) == {f"{ARCH}/Encode/Unicode.pm", f"{ARCH}/auto/Encode/Unicode/Unicode.so"}
    assert found[f"{ARCH}/Encode/Unicode.pm"].reason.detail.startswith(
        f"{ARCH}/Encode/Unicode/UTF7.pm:2 asks Encode for 'UTF-16LE'"
    )


def test_an_alias_names_the_module_of_its_target() -> None:
    found = added('use Encode;\nmy $s = decode("GB_2312", $b);\n')
    assert set(found) == {f"{ARCH}/Encode/CN.pm", f"{ARCH}/auto/Encode/CN/CN.so"}
    assert added('use Encode;\nencode("Windows-1252", $s);\n').keys() == {
        f"{ARCH}/Encode/Byte.pm",
        f"{ARCH}/auto/Encode/Byte/Byte.so",
    }


def test_an_alias_that_cannot_be_read_keeps_every_module() -> None:
    found = added('use Encode;\nencode("UCS-4LE", $s);\n')
    assert set(found) == ALL
    assert "do not settle" in found[f"{ARCH}/Encode/CN.pm"].reason.detail


def test_parse_aliases_follows_each_readable_alias() -> None:
    aliases = parse_aliases(ALIASES.decode())
    assert len(aliases) == 6  # the commented-out one is not read
    assert alias_names(aliases, "UTF16-LE") >= {"utf16-le", "UTF-16LE", "utf-16le"}
    assert alias_names(aliases, "c") == {"ascii"}
    assert alias_names(aliases, "ms-1251") == {"cp1251"}
    assert UNKNOWN in alias_names(aliases, "ucs-4")
    assert UNKNOWN not in alias_names(aliases, "koi8-r")


def test_encoding_table_skips_comments_and_a_later_entry_wins() -> None:
    tree = MemTree({f"{ARCH}/Encode/Config.pm": CONFIG})
    table = encoding_table(tree, (ARCH,))
    assert table["gsm0338"] == "Encode::GSM0338"
    assert "euctw" not in table
    assert table["utf16le"] == "Encode::Unicode"


def test_encoding_uses_reads_each_call_form() -> None:
    code = (
        "use Encode;\n"
        'my $x = encode("UTF-16LE", $s);\n'
        "from_to($d, 'latin1', 'iso-8859-2');\n"
        "Encode::decode($cs, $b);\n"
        'open(my $f, "<:encoding(cp1252)", $p);\n'
        "MIME::Base64::encode($b); $json->encode($x);\n"
        "find_encoding('euc-cn');\n"
    )
    assert encoding_uses(code) == (
        EncodingUse(2, "UTF-16LE"),
        EncodingUse(3, "latin1"),
        EncodingUse(3, "iso-8859-2"),
        EncodingUse(4, ""),
        EncodingUse(5, "cp1252"),
        EncodingUse(7, "euc-cn"),
    )
    assert encoding_uses("sub encode { }\nencode($data);\n") == ()  # no Encode in the file


def test_encoding_uses_reads_calls_without_parentheses_barewords_and_constants() -> None:
    """`encode 'UTF-16LE', $s` was not read at all: no module kept, not even every one."""
    code = (
        "use Encode;\n"
        "print encode 'UTF-16LE', $s;\n"
        "from_to $d, 'latin1', 'UTF-16BE';\n"
        "encode(utf8 => $s); decode(UTF16 => $b);\n"
        "use constant ENC => 'UTF-32';\nencode(ENC, $s);\n"
        "my %h = (encode => 1); encode_utf8($s); die 'cannot decode the input';\n"
    )
    assert encoding_uses(code) == (
        EncodingUse(2, "UTF-16LE"),
        EncodingUse(3, "latin1"),
        EncodingUse(3, "UTF-16BE"),
        EncodingUse(4, "utf8"),
        EncodingUse(4, "UTF16"),
        EncodingUse(6, ""),
    )
