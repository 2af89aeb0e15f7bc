"""The programs a source runs, found statically: process-spawning calls whose program
or command line is a literal, for the `spawned-programs` expander.

Each scanner takes a source's text and returns `Spawn`s: the line, the call as
written, and either the program (argv[0], run without a shell) or a command line
(run by `/bin/sh -c`, or split by the runtime itself when it has no shell
metacharacters: Ruby's and Perl's `system("prog arg")`). A name computed at run
time is not a literal: nothing is guessed for it.

- Python (`ast`): `subprocess.run`/`Popen`/`call`/`check_call`/`check_output` (a
  string with `shell=True` is a command line, without it the program; a list's
  first item, also through a name bound to a list literal), `subprocess.getoutput`,
  `os.system`, `os.popen`, `os.exec*`, `os.spawn*`, `os.posix_spawn*`, `shutil.which`,
  `asyncio.create_subprocess_exec` (the program) and `_shell` (a command line); also
  through the source's imports (`import subprocess as sp`, `from subprocess import run`).
- Node: `child_process` `exec`/`execSync` (a command line), `spawn`/`spawnSync`/
  `execFile`/`execFileSync` (the program); also on `require("child_process")`,
  renamed when destructured (`{ execFile: run }`) and promisified (`promisify(execFile)`).
- Ruby: `system`, `spawn`, `exec`, `Open3.*` (one string: a command line; more
  arguments: the program), `IO.popen` (a string or an array), backticks, `%x`.
- Perl: `system`, `exec` (as Ruby), `qx`, backticks, pipe `open` (`"cmd |"`,
  `"-|", "cmd"`), IPC::Open2's `open2` and IPC::Open3's `open3` (as `system`).
- PHP: `exec`, `shell_exec`, `system`, `passthru`, `popen`, `proc_open` (a command
  line; `proc_open([...])` the program), backticks.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass

# Characters that make Ruby's and Perl's one-string `system` run `/bin/sh -c`
# (without them the runtime splits the words and runs the program itself).
_SHELL_META = re.compile(r"[*?{}\[\]<>()~&|\\$;'`\"\n#=%]")


@dataclass(frozen=True)
class Spawn:
    """One literal in a spawning call: `program` (argv[0]) or `command` (a command
    line); `shell` when the runtime runs it through `/bin/sh -c`."""

    line: int
    call: str
    program: str = ""
    command: str = ""
    shell: bool = False


def _command(line: int, call: str, text: str, always_shell: bool = True) -> Spawn:
    return Spawn(line, call, command=text, shell=always_shell or bool(_SHELL_META.search(text)))


def _line_of(source: str, offset: int) -> int:
    return source.count("\n", 0, offset) + 1


# -- Python --------------------------------------------------------------------------------

_SUBPROCESS = frozenset({"run", "Popen", "call", "check_call", "check_output"})
_SUBPROCESS_SHELL = frozenset({"getoutput", "getstatusoutput"})
_OS_SHELL = frozenset({"system", "popen"})
_OS_EXEC = re.compile(r"(exec|spawn)[lv]p?e?\Z|posix_spawnp?\Z")
_ASYNCIO = {"create_subprocess_exec": False, "create_subprocess_shell": True}  # name: shell
_PY_MODULES = frozenset({"subprocess", "os", "shutil", "asyncio"})


# A source without one of these words spawns nothing; it is not parsed.
_PY_WORDS = re.compile(r"subprocess|Popen|check_(call|output)|\bos(\.|\s+(import|as)\b)|shutil")


def python_spawns(source: str) -> tuple[Spawn, ...]:
    """The spawns of a Python source (none when `ast` cannot parse it)."""
    if not _PY_WORDS.search(source):
        return ()
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ()
    lists, imports = _literal_lists(tree), _imported_names(tree)
    out = [
        s for n in ast.walk(tree) if isinstance(n, ast.Call) for s in _py_call(n, lists, imports)
    ]
    return tuple(sorted(out, key=lambda s: s.line))


def _imported_names(tree: ast.AST) -> dict[str, tuple[str, str]]:
    """The names a source's imports bind to a spawning module or to one of its
    functions: `import subprocess as sp` binds sp to ("subprocess", ""), `from
    subprocess import run as r` binds r to ("subprocess", "run")."""
    out: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {
                a.asname: (a.name, "") for a in node.names if a.asname and a.name in _PY_MODULES
            }
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module in _PY_MODULES:
            out |= {a.asname or a.name: (node.module, a.name) for a in node.names}
    return out


def _literal_lists(tree: ast.AST) -> dict[str, str]:
    """Names bound to a list or tuple whose first item is a string literal, to it."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, first = node.targets[0], _first_literal(node.value, {})
            if isinstance(target, ast.Name) and first:
                out[target.id] = first
    return out


def _first_literal(node: ast.expr | None, lists: dict[str, str]) -> str:
    if isinstance(node, (ast.List, ast.Tuple)) and node.elts:
        return _literal(node.elts[0])
    if isinstance(node, ast.Name):
        return lists.get(node.id, "")
    return ""


def _literal(node: ast.expr | None) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return ""


def _dotted(func: ast.expr) -> tuple[str, str]:
    """(`os`, `system`) of `os.system`; ("", `Popen`) of a bare `Popen`."""
    if isinstance(func, ast.Attribute):
        owner = func.value.id if isinstance(func.value, ast.Name) else ""
        return owner, func.attr
    return ("", func.id) if isinstance(func, ast.Name) else ("", "")


def _resolved(func: ast.expr, imports: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """(module, function) of a call written `owner.name` or `name`, through the
    source's imports: `sp.run` is subprocess.run after `import subprocess as sp`,
    a bare `run` after `from subprocess import run` (not `x.y.run`)."""
    owner, name = _dotted(func)
    if owner:
        module, function = imports.get(owner, (owner, ""))
        return (owner, name) if function else (module, name)
    if isinstance(func, ast.Name) and name in imports:
        return imports[name]
    return "", name


def _py_call(
    node: ast.Call, lists: dict[str, str], imports: dict[str, tuple[str, str]]
) -> list[Spawn]:
    call = ".".join(filter(None, _dotted(node.func)))
    owner, name = _resolved(node.func, imports)
    args = list(node.args)
    first = args[0] if args else next((k.value for k in node.keywords if k.arg == "args"), None)
    if (owner == "subprocess" and name in _SUBPROCESS) or (
        not owner and name in ("Popen", "check_output", "check_call")
    ):
        return _py_subprocess(node, call, first, lists)
    if (owner == "os" and name in _OS_SHELL) or (
        owner == "subprocess" and name in _SUBPROCESS_SHELL
    ):
        text = _literal(first)
        return [_command(node.lineno, call, text)] if text else []
    if owner == "os" and _OS_EXEC.match(name):
        where = args[1] if name.startswith("spawn") and len(args) > 1 else first
        program = _literal(where)
        return [Spawn(node.lineno, call, program=program)] if program else []
    if owner == "shutil" and name == "which" and (program := _literal(first)):
        return [Spawn(node.lineno, call, program=program)]
    if owner == "asyncio" and name in _ASYNCIO and (text := _literal(first)):
        shell = _ASYNCIO[name]
        return [
            _command(node.lineno, call, text) if shell else Spawn(node.lineno, call, program=text)
        ]
    return []


def _py_subprocess(
    node: ast.Call, call: str, first: ast.expr | None, lists: dict[str, str]
) -> list[Spawn]:
    shell = any(
        k.arg == "shell" and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in node.keywords
    )
    text = _literal(first)
    if text and shell:
        return [_command(node.lineno, call, text)]
    program = text or _first_literal(first, lists)
    return [Spawn(node.lineno, call, program=program)] if program else []


# -- Node ----------------------------------------------------------------------------------

_JS_STRING = r"""(?P<q>['"`])((?:(?!(?P=q))[^\\\n]|\\.)+)(?P=q)"""
_NODE_FUNCS = r"exec|execSync|spawn|spawnSync|execFile|execFileSync"
_CHILD_PROCESS = r"""require\(\s*['"](?:node:)?child_process['"]\s*\)"""
# `cp.`, `child_process.` or `require("child_process").` before the function's name
_NODE_OWNER = rf"(?:[A-Za-z_$][\w$]*\.|{_CHILD_PROCESS}\s*\.)"
_NODE = re.compile(rf"(?<![\w$.])({_NODE_OWNER}?({_NODE_FUNCS}))\s*\(\s*" + _JS_STRING)
_NODE_COMMAND = frozenset({"exec", "execSync"})
# Other names of those functions: `const { execFile: run } = require("child_process")`
# and `const run = util.promisify(execFile)` (or promisify(cp.execFile))
_NODE_DESTRUCTURED = re.compile(rf"\{{([^{{}}]*)\}}\s*=\s*{_CHILD_PROCESS}")
_NODE_RENAMED = re.compile(rf"\b({_NODE_FUNCS})\s*:\s*([A-Za-z_$][\w$]*)")
_NODE_PROMISIFIED = re.compile(
    rf"\b([A-Za-z_$][\w$]*)\s*=\s*(?:util\.)?promisify\(\s*{_NODE_OWNER}?({_NODE_FUNCS})\s*\)"
)


def node_spawns(source: str) -> tuple[Spawn, ...]:
    """The spawns of a JavaScript source that loads `child_process` (a method of
    another object, `regex.exec("…")`, is not counted without that module)."""
    if "child_process" not in source:
        return ()
    found = [(m.start(), m.group(1), m.group(2), m.group(4)) for m in _NODE.finditer(source)]
    names = _node_names(source)
    if names:
        renamed = re.compile(
            rf"(?<![\w$.])({'|'.join(map(re.escape, names))})\s*\(\s*" + _JS_STRING
        )
        found += [
            (m.start(), m.group(1), names[m.group(1)], m.group(3)) for m in renamed.finditer(source)
        ]
    out = []
    for start, call, name, text in sorted(found):
        if "${" in text:  # a template literal with a substitution is computed
            continue
        line = _line_of(source, start)
        out.append(
            _command(line, call, text) if name in _NODE_COMMAND else Spawn(line, call, program=text)
        )
    return tuple(out)


def _node_names(source: str) -> dict[str, str]:
    """Other names the source gives `child_process` functions (renamed when destructured,
    promisified), to the function's name."""
    out = {m.group(1): m.group(2) for m in _NODE_PROMISIFIED.finditer(source)}
    for block in _NODE_DESTRUCTURED.finditer(source):
        out |= {m.group(2): m.group(1) for m in _NODE_RENAMED.finditer(block.group(1))}
    return {alias: name for alias, name in out.items() if alias != name}


# -- Ruby and Perl ---------------------------------------------------------------------------

_STRING = r"""(?P<q>['"])((?:(?!(?P=q))[^\\\n]|\\.)+)(?P=q)"""
_RUBY_CALL = re.compile(
    r"(?<![\w.$@:'\"])((?:Open3\.\w+|Process\.spawn|Kernel\.(?:system|spawn|exec))|system|spawn|exec)"
    r"(?:\s*\(\s*|\s+)(?:\{[^}]*\}\s*,\s*|ENV\.to_h\s*,\s*)?" + _STRING + r"\s*(,)?"
)
_RUBY_POPEN = re.compile(r"\bIO\.popen\s*\(\s*(\[\s*)?" + _STRING)
_BACKTICKS = re.compile(r"`([^`\n]+)`")
_PERCENT_X = re.compile(r"%x(?:\(([^)\n]+)\)|\{([^}\n]+)\}|\[([^\]\n]+)\]|\|([^|\n]+)\|)")
_PERL_CALL = re.compile(r"(?<![\w$@%&>:'\"])(system|exec)(?:\s*\(\s*|\s+)" + _STRING + r"\s*(,)?")
_QX = re.compile(
    r"(?<![\w$@%])qx\s*(?:\(([^)\n]+)\)|\{([^}\n]+)\}|\[([^\]\n]+)\]|([^\w\s])([^\n]+?)\4)"
)
_PERL_OPEN3 = re.compile(
    r"""\bopen\s*\(?\s*[^,;]+,\s*(['"])(-\||\|-)\1\s*,\s*""" + _STRING + r"\s*(,)?"
)
_PERL_OPEN2 = re.compile(r"""\bopen\s*\(?\s*[^,;]+,\s*(['"])\s*(\|?)\s*([^'"|\n]+?)\s*(\|?)\s*\1""")
# IPC::Open2's open2($out, $in, CMD...) and IPC::Open3's open3($in, $out, $err, CMD...):
# the command after the N handles
_PERL_IPC_OPEN = {
    n: re.compile(
        rf"(?<![\w$@%&>:'\"])(?:IPC::Open{n}::)?open{n}\s*\(\s*(?:[^,;]+,\s*){{{n}}}"
        + _STRING
        + r"\s*(,)?"
    )
    for n in (2, 3)
}


def _direct_or_shell(line: int, call: str, text: str, more_args: bool) -> Spawn:
    """Ruby's and Perl's rule: a list runs its program; one string runs through the
    shell only when it has metacharacters."""
    if more_args:
        return Spawn(line, call, program=text)
    return _command(line, call, text, always_shell=False)


def _interpolates(text: str) -> bool:
    return "#{" in text or "$" in text or "@" in text


def ruby_spawns(code: str) -> tuple[Spawn, ...]:
    """The spawns of Ruby code (comments already removed: `ruby_source.ruby_code`)."""
    out = []
    for m in _RUBY_CALL.finditer(code):
        if not _interpolates(m.group(3)):
            line = _line_of(code, m.start())
            out.append(_direct_or_shell(line, m.group(1), m.group(3), bool(m.group(4))))
    for m in _RUBY_POPEN.finditer(code):
        if not _interpolates(m.group(3)):
            out.append(
                _direct_or_shell(
                    _line_of(code, m.start()), "IO.popen", m.group(3), bool(m.group(1))
                )
            )
    out += _quoted_commands(code, _BACKTICKS, "backticks")
    out += _quoted_commands(code, _PERCENT_X, "%x")
    return tuple(sorted(out, key=lambda s: s.line))


def perl_spawns(code: str) -> tuple[Spawn, ...]:
    """The spawns of Perl code (POD and comments are the caller's to drop)."""
    out = []
    for m in _PERL_CALL.finditer(code):
        if not _interpolates(m.group(3)):
            line = _line_of(code, m.start())
            out.append(_direct_or_shell(line, m.group(1), m.group(3), bool(m.group(4))))
    for m in _PERL_OPEN3.finditer(code):
        if not _interpolates(m.group(4)):
            out.append(
                _direct_or_shell(_line_of(code, m.start()), "open", m.group(4), bool(m.group(5)))
            )
    for m in _PERL_OPEN2.finditer(code):
        piped = bool(m.group(2) or m.group(4)) and m.group(3) != "-"
        if piped and not _interpolates(m.group(3)):
            out.append(_command(_line_of(code, m.start()), "open", m.group(3), always_shell=False))
    for n, pattern in _PERL_IPC_OPEN.items() if "IPC::Open" in code else ():
        for m in pattern.finditer(code):
            if not _interpolates(m.group(2)):
                line = _line_of(code, m.start())
                out.append(_direct_or_shell(line, f"open{n}", m.group(2), bool(m.group(3))))
    out += _quoted_commands(code, _BACKTICKS, "backticks")
    out += _quoted_commands(code, _QX, "qx")
    return tuple(sorted(out, key=lambda s: s.line))


def _quoted_commands(code: str, pattern: re.Pattern[str], call: str) -> list[Spawn]:
    """Backticks, `%x` and `qx` commands; not inside a quoted string, where they are
    text ("Check `gem source list`." in rubygems.rb is a message, not a command)."""
    out = []
    code = _without_heredocs(code)
    for m in pattern.finditer(code):
        text = next((g for g in reversed(m.groups()) if g and len(g) > 1), "")
        if text and not _interpolates(text) and not _in_string(code, m.start()):
            out.append(_command(_line_of(code, m.start()), call, text))
    return out


# `<<EOT`, `<<-EOT`, `<<~"EOT"` (Ruby, Perl) and `<<<EOT` (PHP): a here-document's body
# is text, up to a line holding only its tag
_HEREDOC = re.compile(r"<<(?:<\s*|[-~]?)(['\"]?)([A-Z_][A-Z0-9_]*)\1")


def _without_heredocs(code: str) -> str:
    """`code` with every here-document's body blanked (same length, same lines), so a
    backtick in a message is not read as a command. An opener whose tag never ends a
    line is not a here-document (Ruby's `<<` also appends)."""
    out = code
    for m in _HEREDOC.finditer(code):
        start = code.find("\n", m.end())
        end = (
            re.search(rf"^[ \t]*{m.group(2)};?[ \t]*$", code[start + 1 :], re.M)
            if start >= 0
            else None
        )
        if end is not None:
            stop = start + 1 + end.start()
            out = out[:start] + re.sub(r"[^\n]", " ", out[start:stop]) + out[stop:]
    return out


def _in_string(code: str, pos: int) -> bool:
    """Whether `pos` is inside a '…' or "…" literal that opens on its own line."""
    quote = ""
    escaped = False
    for char in code[code.rfind("\n", 0, pos) + 1 : pos]:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quote and char == quote:
            quote = ""
        elif not quote and char in "'\"":
            quote = char
    return bool(quote)


# -- PHP -------------------------------------------------------------------------------------

_PHP_CALL = re.compile(
    r"(?<![\w>:$\\])(exec|shell_exec|system|passthru|popen|proc_open)\s*\(\s*(\[\s*)?" + _STRING
)


def php_spawns(code: str) -> tuple[Spawn, ...]:
    """The spawns of PHP code (a method `$pdo->exec("…")` is not a spawn)."""
    out = []
    for m in _PHP_CALL.finditer(code):
        call, array, quote, text = m.group(1), m.group(2), m.group(3), m.group(4)
        if quote == '"' and _interpolates(text):
            continue
        line = _line_of(code, m.start())
        out.append(Spawn(line, call, program=text) if array else _command(line, call, text))
    out += _quoted_commands(code, _BACKTICKS, "backticks")
    return tuple(sorted(out, key=lambda s: s.line))


Scanner = Callable[[str], tuple[Spawn, ...]]
