"""The `spawned-programs` expander on in-memory trees, and the per-language scanners
of `spawn_calls`: each program named by a literal in a spawning call of kept code
is kept, looked up on the image's PATH, with its interpreter; reasons name file:line."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from slimmer.model import ImageConfig
from slimmer.plan.expanders import EXPANDERS
from slimmer.plan.expanders.spawn_calls import (
    Scanner,
    Spawn,
    node_spawns,
    perl_spawns,
    php_spawns,
    python_spawns,
    ruby_spawns,
)
from slimmer.plan.expanders.spawned_programs import code_lines
from slimmer.plan.keep import Addition, ProfileContext
from slimmer.plan.planner import TracedPath, plan
from slimmer.plan.profiles import profiles_fn
from tests.memtree import File, Link, MemTree, Spec
from tests.test_elf_imports import elf_with_dynsym

ELF = elf_with_dynsym(True, "<", [("printf", 0)])
LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"
BASE: dict[str, Spec] = {
    "/bin": Link("usr/bin"),
    "/usr/bin/sh": Link("dash"),
    "/usr/bin/dash": ELF,
    "/usr/bin/bash": ELF,
    "/usr/bin/openssl": ELF,
    "/usr/bin/base64": ELF,
    "/usr/bin/git": ELF,
    "/usr/local/bin/report": File(b"#!/bin/bash\necho hi\n"),
    "/usr/bin/notes.txt": File(b"not a program", mode=0o644),
    LIBC: ELF,
}


def ctx(
    kept: set[str], extra: Mapping[str, Spec], env: dict[str, str] | None = None
) -> ProfileContext:
    tree = MemTree({**BASE, **extra})
    config = ImageConfig({"config": {"Env": [f"{k}={v}" for k, v in (env or {}).items()]}})
    return ProfileContext(tree, config, frozenset(), frozenset(), frozenset(kept))


def spawned(context: ProfileContext) -> dict[str, Addition]:
    additions, generated = EXPANDERS["spawned-programs"](context, "helpers")
    assert generated == []
    return {a.path: a for a in additions}


def words(spawns: tuple[Spawn, ...]) -> list[tuple[int, str, str, bool]]:
    return [(s.line, s.call, s.program or s.command, s.shell) for s in spawns]


# -- the scanners, one call form per case -------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('subprocess.run(["openssl", "rand"])', (1, "subprocess.run", "openssl", False)),
        ('subprocess.Popen(args=("git", "log"))', (1, "subprocess.Popen", "git", False)),
        ('subprocess.call("date")', (1, "subprocess.call", "date", False)),
        ('subprocess.check_call(["gpg"])', (1, "subprocess.check_call", "gpg", False)),
        ('check_output(["convert", "a"])', (1, "check_output", "convert", False)),
        ('subprocess.run("ls | wc", shell=True)', (1, "subprocess.run", "ls | wc", True)),
        ('subprocess.getoutput("uname -a")', (1, "subprocess.getoutput", "uname -a", True)),
        ('os.system("openssl dgst x | base64")', (1, "os.system", "openssl dgst x | base64", True)),
        ('os.popen("hostname")', (1, "os.popen", "hostname", True)),
        ('os.execvp("gpg", ["gpg"])', (1, "os.execvp", "gpg", False)),
        ('os.execl("/usr/bin/git", "git")', (1, "os.execl", "/usr/bin/git", False)),
        ('os.spawnlp(os.P_WAIT, "convert", "convert")', (1, "os.spawnlp", "convert", False)),
        ('os.posix_spawnp("tar", ["tar"], {})', (1, "os.posix_spawnp", "tar", False)),
        ('shutil.which("ffmpeg")', (1, "shutil.which", "ffmpeg", False)),
        ('cmd = ["git"]\nsubprocess.check_call(cmd)', (2, "subprocess.check_call", "git", False)),
    ],
)  # fmt: skip
def test_python_call_forms(source: str, expected: tuple[int, str, str, bool]) -> None:
    assert words(python_spawns(source)) == [expected]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('from subprocess import run\nrun(["base64", "-w", "0"])', (2, "run", "base64", False)),
        ('from subprocess import call as c\nc("date")', (2, "c", "date", False)),
        ('import subprocess as sp\nsp.check_output(["gpg"])', (2, "sp.check_output", "gpg", False)),
        ('from os import system\nsystem("hostname")', (2, "system", "hostname", True)),
        ('import os as o\no.execvp("tar", ["tar"])', (2, "o.execvp", "tar", False)),
        ('from shutil import which\nwhich("ffmpeg")', (2, "which", "ffmpeg", False)),
        ('asyncio.create_subprocess_exec("openssl", "version")',
         (1, "asyncio.create_subprocess_exec", "openssl", False)),
        ('from asyncio import create_subprocess_shell as sh\nsh("ls | wc")',
         (2, "sh", "ls | wc", True)),
    ],
)  # fmt: skip
def test_python_calls_through_the_sources_imports(
    source: str, expected: tuple[int, str, str, bool]
) -> None:
    """py-openssl's /base64 runs `run(["base64", ...])` after `from subprocess import run`:
    base64 was not kept and the held-out probe failed with ENOENT."""
    assert words(python_spawns(source)) == [expected]


def test_python_names_imported_from_elsewhere_are_not_spawns() -> None:
    source = (
        "from subprocess import run\nfrom tasks import call\nimport mytool as subprocess2\n"
        'call(["ls"])\nself.jobs.run(["ls"])\nsubprocess2.run(["ls"])\n'
        'from .subprocess import run as r\nr(["ls"])\n'
    )
    assert python_spawns(source) == ()


def test_python_computed_names_and_unparsable_sources_name_nothing() -> None:
    assert python_spawns("subprocess.run(name)\nos.system(f'{x} -v')\nrun('ls')\n") == ()
    assert python_spawns("def broken(:\n    os.system('ls')\n") == ()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('cp.execFile("git", ["log"])', (2, "cp.execFile", "git", False)),
        ("child_process.spawn('convert', [])", (2, "child_process.spawn", "convert", False)),
        ('spawnSync("gpg")', (2, "spawnSync", "gpg", False)),
        ('execFileSync("tar")', (2, "execFileSync", "tar", False)),
        ('cp.exec("openssl rand 4 | base64")', (2, "cp.exec", "openssl rand 4 | base64", True)),
        ("execSync(`date`)", (2, "execSync", "date", True)),
    ],
)  # fmt: skip
def test_node_call_forms(source: str, expected: tuple[int, str, str, bool]) -> None:
    assert words(node_spawns(f'const cp = require("child_process");\n{source};\n')) == [expected]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("require('child_process').spawnSync(`gzip`, [])",
         (1, "require('child_process').spawnSync", "gzip", False)),
        ("const { execFile } = require('child_process');\n"
         "const execFileAsync = util.promisify(execFile);\nawait execFileAsync('date', []);",
         (3, "execFileAsync", "date", False)),
        ("const run = promisify(require('node:child_process').exec);\nawait run('ls | wc');",
         (2, "run", "ls | wc", True)),
        ("const { execFile: run } = require('child_process');\nrun('gzip');",
         (2, "run", "gzip", False)),
    ],
)  # fmt: skip
def test_node_calls_through_other_names(source: str, expected: tuple[int, str, str, bool]) -> None:
    """node-spawn's /epoch runs `date` through `promisify(execFile)`: date was not kept
    and the held-out probe failed with ENOENT."""
    assert words(node_spawns(source)) == [expected]


def test_node_names_renamed_from_another_object_are_not_spawns() -> None:
    source = "const cp = require('child_process');\nconst { exec: e } = other;\ne('ls');\n"
    assert node_spawns(source) == ()


def test_node_other_exec_methods_and_templates_name_nothing() -> None:
    source = 'require("child_process");\n/x/.exec("abc");\ncp.exec(`ls ${dir}`);\n'
    assert node_spawns(source) == ()
    assert node_spawns('db.exec("VACUUM");\n') == ()  # no child_process in the file


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('system("openssl", "rand")', (1, "system", "openssl", False)),
        ('system("gpg --version")', (1, "system", "gpg --version", False)),
        ('system("git log | head")', (1, "system", "git log | head", True)),
        ('spawn({"A" => "1"}, "curl x")', (1, "spawn", "curl x", False)),
        ('exec("convert", "a")', (1, "exec", "convert", False)),
        ('Open3.capture2("ls", "-l")', (1, "Open3.capture2", "ls", False)),
        ('Open3.popen3("tar xf a")', (1, "Open3.popen3", "tar xf a", False)),
        ('IO.popen(["date", "+%s"])', (1, "IO.popen", "date", False)),
        ('IO.popen("uname -a")', (1, "IO.popen", "uname -a", False)),
        ("x = `git log`", (1, "backticks", "git log", True)),
        ("x = %x(convert a b)", (1, "%x", "convert a b", True)),
        ("x = %x{hostname}", (1, "%x", "hostname", True)),
    ],
)  # fmt: skip
def test_ruby_call_forms(source: str, expected: tuple[int, str, str, bool]) -> None:
    assert words(ruby_spawns(source)) == [expected]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('system("openssl", "rand");', (1, "system", "openssl", False)),
        ("system 'gpg --version';", (1, "system", "gpg --version", False)),
        ('exec("tar", "xf", $f);', (1, "exec", "tar", False)),
        ("my $x = `git log`;", (1, "backticks", "git log", True)),
        ("my $x = qx{convert a b};", (1, "qx", "convert a b", True)),
        ("my $x = qx(hostname);", (1, "qx", "hostname", True)),
        ('open(my $fh, "-|", "date", "+%s");', (1, "open", "date", False)),
        ('open(FH, "uname -a |");', (1, "open", "uname -a", False)),
        ('open(my $out, "| gzip -c > x.gz");', (1, "open", "gzip -c > x.gz", True)),
        ("use IPC::Open3;\nopen3($in, $out, $err, 'gzip', '-c');", (2, "open3", "gzip", False)),
        ("use IPC::Open3;\nopen3('<&STDIN', \\*OUT, $e = gensym, \"openssl\", 'x');",
         (2, "open3", "openssl", False)),
        ("use IPC::Open2;\nopen2(my $out, my $in, 'sort -u');", (2, "open2", "sort -u", False)),
        ("use IPC::Open2;\nIPC::Open2::open2($o, $i, 'ls | wc');", (2, "open2", "ls | wc", True)),
    ],
)  # fmt: skip
def test_perl_call_forms(source: str, expected: tuple[int, str, str, bool]) -> None:
    assert words(perl_spawns(source)) == [expected]


def test_perl_open2_open3_with_a_computed_command_or_without_ipc_name_nothing() -> None:
    source = (
        "use IPC::Open3;\nopen3($in, $out, $err, $cmd, '-c');\nopen3($i, $o, $e, \"$cmd -c\");\n"
    )
    assert perl_spawns(source) == ()
    assert perl_spawns("sub open2 { }\nopen2($a, $b, 'ls');\n") == ()


def test_perl_reading_a_file_and_interpolated_commands_name_nothing() -> None:
    assert perl_spawns('open(my $f, "<", "file.txt");\nsystem("ls $dir");\n') == ()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('exec("openssl rand 4");', (2, "exec", "openssl rand 4", True)),
        ("$x = shell_exec('git log');", (2, "shell_exec", "git log", True)),
        ('system("convert a b");', (2, "system", "convert a b", True)),
        ('passthru("gzip -d");', (2, "passthru", "gzip -d", True)),
        ('$p = popen("date", "r");', (2, "popen", "date", True)),
        ('$p = proc_open("tar xf a", $d, $pipes);', (2, "proc_open", "tar xf a", True)),
        ('$p = proc_open(["gpg", "-d"], $d, $pipes);', (2, "proc_open", "gpg", False)),
        ("$y = `hostname`;", (2, "backticks", "hostname", True)),
    ],
)  # fmt: skip
def test_php_call_forms(source: str, expected: tuple[int, str, str, bool]) -> None:
    assert words(php_spawns(f"<?php\n{source}\n")) == [expected]


def test_php_methods_and_interpolated_commands_name_nothing() -> None:
    assert php_spawns('<?php\n$pdo->exec("SELECT 1");\nDB::exec("x");\nexec("ls $d");\n') == ()


def test_comment_lines_are_blanked_in_place() -> None:
    source = "# os.system('rm')\n=begin\nsystem('x')\n=end\n// exec('y')\nsystem('git')\n"
    blanked = code_lines(source)
    assert blanked.count("\n") == source.count("\n")
    assert words(ruby_spawns(blanked)) == [(6, "system", "git", False)]
    assert code_lines("system('git')\n__END__\n`rm -rf`\n") == "system('git')\n"


# -- the expander ----------------------------------------------------------------------------


def test_python_program_is_kept_with_a_reason_naming_file_and_line() -> None:
    source = b"import subprocess\n\ndef sign(x):\n    return subprocess.run(['openssl', 'dgst'])\n"
    found = spawned(ctx({"/app/app.py"}, {"/app/app.py": source}))
    assert set(found) == {"/usr/bin/openssl"}
    reason = found["/usr/bin/openssl"].reason
    assert (reason.kind, reason.source) == ("profile", "helpers")
    assert reason.detail == "/app/app.py:4 runs `openssl` (subprocess.run)"
    assert found["/usr/bin/openssl"].closure


def test_a_command_line_keeps_the_shell_and_each_program_it_runs() -> None:
    source = b'import os\nos.system("openssl dgst x | base64")\n'
    found = spawned(ctx({"/app/app.py"}, {"/app/app.py": source}))
    assert set(found) == {"/bin/sh", "/usr/bin/openssl", "/usr/bin/base64"}
    assert found["/usr/bin/base64"].reason.detail == "/app/app.py:2 runs `base64` (os.system)"
    assert "/app/app.py:2" in found["/bin/sh"].reason.detail


def test_names_are_looked_up_on_the_path_the_config_env_sets() -> None:
    extra: dict[str, Spec] = {
        "/opt/tools/bin/git": ELF,
        "/app/app.rb": b'system("git", "log")\n',
    }
    default = spawned(ctx({"/app/app.rb"}, extra))
    assert set(default) == {"/usr/bin/git"}  # DEFAULT_PATH
    own = spawned(ctx({"/app/app.rb"}, extra, {"PATH": "/opt/tools/bin:/usr/bin"}))
    assert set(own) == {"/opt/tools/bin/git"}
    nowhere = spawned(ctx({"/app/app.rb"}, extra, {"PATH": "/nowhere"}))
    assert nowhere == {}


def test_a_script_keeps_its_interpreter() -> None:
    found = spawned(ctx({"/app/index.js"}, {"/app/index.js": NODE_REPORT}))
    assert set(found) == {"/usr/local/bin/report", "/bin/bash"}
    assert found["/bin/bash"].reason.detail == (
        "interpreter of /usr/local/bin/report, which /app/index.js:2 runs (cp.execFile)"
    )


NODE_REPORT = b'const cp = require("child_process");\ncp.execFile("report", []);\n'


def test_programs_not_in_the_image_or_not_executable_are_skipped() -> None:
    source = b'system("openssl", "x");\nsystem("nonesuch", "y");\nexec("notes.txt", "z");\n'
    found = spawned(ctx({"/app/run.pl"}, {"/app/run.pl": source}))
    assert set(found) == {"/usr/bin/openssl"}
    assert found["/usr/bin/openssl"].reason.detail == "/app/run.pl:1 runs `openssl` (system)"


def test_the_runtimes_own_libraries_and_unkept_sources_are_no_evidence() -> None:
    extra: dict[str, Spec] = {
        "/usr/lib/python3.11/uuid.py": b"import os\nos.popen('git')\n",
        "/usr/lib/python3.11/site-packages/pkg/x.py": b"import shutil\nshutil.which('openssl')\n",
        "/usr/share/perl/5.36/Thing.pm": b"`git`;\n",
        "/app/unkept.php": b"<?php\nexec('openssl');\n",
    }
    kept = {p for p in extra if not p.startswith("/app/")}
    found = spawned(ctx(kept, extra))
    assert set(found) == {"/usr/bin/openssl"}
    assert found["/usr/bin/openssl"].reason.detail.startswith(
        "/usr/lib/python3.11/site-packages/pkg/x.py:2"
    )


def test_already_kept_programs_are_not_added_again() -> None:
    source = b'<?php\nexec("openssl rand 4");\n'
    found = spawned(ctx({"/app/i.php", "/usr/bin/openssl", "/bin/sh"}, {"/app/i.php": source}))
    assert found == {}


def test_the_helpers_profile_keeps_a_spawned_program_and_its_closure() -> None:
    source = b'import subprocess\nsubprocess.run(["git", "log"])\n'
    tree = MemTree({**BASE, "/app/app.py": source})
    traced = [TracedPath("/app/app.py", "open"), TracedPath(LIBC, "open")]
    keep = plan(tree, ImageConfig({}), traced, lambda *_: [], profiles_fn(only={"helpers"}))
    assert "/usr/bin/git" in keep
    assert [r.detail for r in keep.reasons["/usr/bin/git"]] == [
        "/app/app.py:2 runs `git` (subprocess.run)"
    ]


@pytest.mark.parametrize(
    "scan,code",
    [
        # rubygems.rb:849, a message: "Check `gem source list`."
        (ruby_spawns, 'raise "Can\'t find it in any repo. Check `gem source list`."\n'),
        (ruby_spawns, "msg = 'run `make install` first'\n"),
        (perl_spawns, 'die "try `cpan -i Foo` or qx(ls) by hand\\n";\n'),
        (php_spawns, "echo 'see `man php` for more';\n"),
    ],
)
def test_backticks_inside_a_quoted_string_are_text(scan: Scanner, code: str) -> None:
    assert scan(code) == ()


def test_backticks_after_a_closed_string_still_run() -> None:
    (spawn,) = ruby_spawns("name = 'x'; out = `uname -r`\n")
    assert (spawn.call, spawn.command) == ("backticks", "uname -r")


def test_a_here_document_is_text() -> None:
    """rubygems.rb:385 warns with a here-document naming `Gem.paths=` in backticks."""
    ruby = (
        "warn <<-EOWARN\n"
        "Array values in the parameter to `Gem.paths=` are deprecated.\n"
        "EOWARN\n"
        "out = `uname -r`\n"
    )
    (spawn,) = ruby_spawns(ruby)
    assert (spawn.line, spawn.command) == (4, "uname -r")
    php = "echo <<<EOT\nsee `man php`\nEOT;\n"
    perl = 'print <<"END";\ntry `cpan -i Foo`\nEND\n'
    assert php_spawns(php) == () and perl_spawns(perl) == ()


def test_an_append_is_not_a_here_document() -> None:
    (spawn,) = ruby_spawns("list << ITEM\nout = `uname -r`\n")
    assert spawn.command == "uname -r"


def test_a_call_name_inside_a_string_is_not_a_call() -> None:
    """rbconfig.rb: `CONFIG["exec"] = "exec"` is a hash entry, not `exec "…"`."""
    assert ruby_spawns('  CONFIG["exec"] = "exec"\n  CONFIG["system"] = "x"\n') == ()
    assert perl_spawns("my %h = ('system' => 'x', \"exec\" => 1);\n") == ()
    (spawn,) = ruby_spawns('system "ls -l"\n')
    assert spawn.call == "system"
