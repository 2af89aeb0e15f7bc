"""Each code expander on a synthetic image: what it adds, what it leaves out, and why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from slimmer.image.paths import is_system_dir
from slimmer.plan.expanders import EXPANDERS
from slimmer.plan.expanders.nginx_conf import directives, referenced_paths, tokens
from slimmer.plan.expanders.python_codecs import computed_codec_lines
from slimmer.plan.expanders.system import locale_names, nss_services, runs_as_program
from slimmer.plan.keep import Addition, GeneratedFile, ProfileContext
from slimmer.plan.pkgtrim import apk_records, dpkg_records, md5sums_paths, trim_dpkg
from slimmer.plan.profiles import apply_profiles, load_profiles
from tests.profile_kit import ELF, TRIPLET, Maker, context, d, debian_base, f, factory, ln
from tests.synth import M

PROFILES = {p.name: p for p in load_profiles()}


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Maker]:
    yield from factory(tmp_path)


def expand(
    name: str, ctx: ProfileContext, profile: str = "glibc"
) -> tuple[list[Addition], list[GeneratedFile]]:
    return EXPANDERS[name](ctx, PROFILES[profile].name)


def added(name: str, ctx: ProfileContext, profile: str = "glibc") -> set[str]:
    return {a.path for a in expand(name, ctx, profile)[0]}


# -- nss ---------------------------------------------------------------------------------

NSSWITCH = """\
# /etc/nsswitch.conf
passwd:         files systemd
group:          files [SUCCESS=merge] sss
hosts:          files mdns4_minimal [NOTFOUND=return] dns myhostname
networks:       files
"""


def test_nss_services_parse() -> None:
    assert nss_services(NSSWITCH) == (
        "dns",
        "files",
        "mdns4_minimal",
        "myhostname",
        "sss",
        "systemd",
    )


def test_nss_modules_named_by_nsswitch(make: Maker) -> None:
    image = make(
        [
            *debian_base(),
            f("/etc/nsswitch.conf", NSSWITCH),
            f(f"{TRIPLET}/libnss_systemd.so.2", ELF),
            f(f"{TRIPLET}/libnss_files.so.2", ELF),
            f(f"{TRIPLET}/libnss_mdns4_minimal.so.2", ELF),
            f(f"{TRIPLET}/libnss_ldap.so.2", ELF),
        ]
    )
    adds, _ = expand("nss", context(image, kept=[f"{TRIPLET}/libc.so.6"]))
    assert {a.path for a in adds} == {
        f"{TRIPLET}/libnss_systemd.so.2",
        f"{TRIPLET}/libnss_mdns4_minimal.so.2",
    }
    assert all(a.closure and a.reason.source == "glibc" for a in adds)
    assert "'systemd'" in next(a for a in adds if "systemd" in a.path).reason.detail


def test_nss_files_and_dns_are_modules_before_glibc_2_34(make: Maker) -> None:
    image = make(
        [
            d(TRIPLET),
            f(f"{TRIPLET}/libc-2.31.so", ELF),
            ln(f"{TRIPLET}/libc.so.6", "libc-2.31.so"),
            f("/etc/nsswitch.conf", NSSWITCH),
            f(f"{TRIPLET}/libnss_files.so.2", ELF),
            f(f"{TRIPLET}/libnss_dns.so.2", ELF),
        ]
    )
    assert added("nss", context(image, kept=[f"{TRIPLET}/libc.so.6"])) == {
        f"{TRIPLET}/libnss_files.so.2",
        f"{TRIPLET}/libnss_dns.so.2",
    }


def test_nss_without_nsswitch_adds_nothing(make: Maker) -> None:
    assert expand("nss", context(make(debian_base()))) == ([], [])


# -- locales -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("en_US.UTF-8", ["en_US.UTF-8", "en_US.utf8", "en_US", "en.UTF-8", "en.utf8", "en"]),
        (
            "de_DE.ISO-8859-1@euro",
            [
                "de_DE.ISO-8859-1@euro",
                "de_DE.ISO-8859-1",
                "de_DE.iso88591@euro",
                "de_DE.iso88591",
                "de_DE@euro",
                "de_DE",
                "de.ISO-8859-1@euro",
                "de.ISO-8859-1",
                "de.iso88591@euro",
                "de.iso88591",
                "de@euro",
                "de",
            ],
        ),
        ("C", []),
        ("POSIX", []),
        ("", []),
        ("../../etc", []),
    ],
)
def test_locale_names(value: str, want: list[str]) -> None:
    assert locale_names(value) == want


def test_locales_from_env(make: Maker) -> None:
    members = [
        *debian_base(),
        f("/usr/lib/locale/en_US.utf8/LC_CTYPE", "x"),
        f("/usr/lib/locale/fr_FR.utf8/LC_TIME", "x"),
        f("/opt/loc/fr_FR/LC_TIME", "x"),
        f("/usr/lib/locale/de_DE.utf8/LC_CTYPE", "x"),
    ]
    env = {"LANG": "en_US.UTF-8", "LC_TIME": "fr_FR.UTF-8", "LOCPATH": "/opt/loc"}
    adds, _ = expand("locales", context(make(members, env=env)), "locales")
    assert {a.path for a in adds} == {
        "/usr/lib/locale/en_US.utf8",
        "/usr/lib/locale/en_US.utf8/LC_CTYPE",
        "/usr/lib/locale/fr_FR.utf8",
        "/usr/lib/locale/fr_FR.utf8/LC_TIME",
        "/opt/loc/fr_FR",
        "/opt/loc/fr_FR/LC_TIME",
    }
    assert any("LC_TIME=fr_FR.UTF-8" in a.reason.detail for a in adds)


# -- app-dirs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "system"),
    [
        ("/", True),
        ("/usr", True),
        ("/usr/local/bin", True),
        ("/etc/app", True),
        ("/opt", True),
        ("/app", False),
        ("/opt/app", False),
        ("/srv/www", False),
        ("/usr/src/app", False),
        ("/var/www/html", False),
        ("/home/app", False),
        ("/tmp/x", True),
    ],
)
def test_system_dirs(path: str, system: bool) -> None:
    assert is_system_dir(path) is system


def test_app_dirs_keep_workdir_and_script_dirs(make: Maker) -> None:
    image = make(
        [
            *debian_base(),
            f("/srv/app/server.js", "x"),
            f("/srv/app/views/a.html", "x"),
            f("/opt/tools/health.sh", "#!/bin/sh\n", 0o755),
            f("/opt/tools/lib.sh", "x"),
            f("/usr/local/bin/docker-entrypoint.sh", "#!/bin/sh\n", 0o755),
            f("/usr/local/bin/other", "x"),
        ],
        WorkingDir="/srv/app",
        Entrypoint=["docker-entrypoint.sh"],
        Cmd=["node", "server.js"],
        Healthcheck={"Test": ["CMD-SHELL", "/opt/tools/health.sh || exit 1"]},
    )
    adds, _ = expand("app-dirs", context(image), "app-dirs")
    assert {a.path for a in adds} == {
        "/srv/app",
        "/srv/app/server.js",
        "/srv/app/views",
        "/srv/app/views/a.html",
        "/opt/tools",
        "/opt/tools/health.sh",
        "/opt/tools/lib.sh",
    }
    assert any("WorkingDir /srv/app" in a.reason.detail for a in adds)


def test_app_dirs_leave_out_build_context_junk(make: Maker) -> None:
    """Version control, editor settings and tool caches copied with the app are not
    kept whole with it; the app's own files, dotfiles included, are."""
    image = make(
        [
            *debian_base(),
            f("/app/main.py", "x"),
            f("/app/.env", "A=1"),
            f("/app/.git/config", "x"),
            f("/app/.vscode/settings.json", "{}"),
            f("/app/sub/.pytest_cache/v", "x"),
            f("/app/node_modules/.cache/babel/x.json", "{}"),
            f("/app/node_modules/lib/index.js", "x"),
        ],
        WorkingDir="/app",
        Cmd=["python3", "main.py"],
    )
    adds, _ = expand("app-dirs", context(image), "app-dirs")
    kept = {a.path for a in adds}
    assert {"/app/main.py", "/app/.env", "/app/node_modules/lib/index.js"} <= kept
    assert not {p for p in kept if "/.git" in p or "/.vscode" in p or "cache" in p}


# -- jvm -----------------------------------------------------------------------------------


# -- shell-commands -----------------------------------------------------------------------


def test_shell_commands_leave_out_builtins_the_shell_runs_itself(make: Maker) -> None:
    script = "#!/bin/sh\nset -eu\necho start\nprintf '%s' x | sort\ntrue\n"
    image = make(
        [
            *debian_base(),
            *(f(f"/usr/bin/{n}", ELF, 0o755) for n in ("echo", "printf", "true", "sort")),
            f("/app/run.sh", script, 0o755),
            f("/app/each.sh", "#!/bin/bash\nls | xargs -n1 echo\n", 0o755),
            f("/usr/bin/ls", ELF, 0o755),
        ]
    )
    ctx = context(image, kept=["/app/run.sh"])
    assert added("shell-commands", ctx, "shell") == {"/usr/bin/sort"}
    wrapped = added("shell-commands", context(image, kept=["/app/each.sh"]), "shell")
    assert wrapped == {"/usr/bin/ls", "/usr/bin/echo"}


def test_csh_and_fish_scripts_are_scanned_and_csh_runs_true_as_a_program(make: Maker) -> None:
    """`paths.SHELLS` is one list: the planner scans a csh or fish script as it scans
    sh (its old list lacked them: nothing was scanned). csh has only `echo` built in,
    so its `true` and `printf` are programs; fish has them all built in, as sh does."""
    body = "echo start\ntrue\nprintf x\nsort\n"
    image = make(
        [
            *debian_base(),
            *(f(f"/usr/bin/{n}", ELF, 0o755) for n in ("echo", "printf", "true", "sort")),
            f("/app/run.csh", "#!/bin/csh -f\n" + body, 0o755),
            f("/app/run.fish", "#!/usr/bin/env fish\n" + body, 0o755),
        ]
    )
    csh = added("shell-commands", context(image, kept=["/app/run.csh"]), "shell")
    assert csh == {"/usr/bin/true", "/usr/bin/printf", "/usr/bin/sort"}
    fish = added("shell-commands", context(image, kept=["/app/run.fish"]), "shell")
    assert fish == {"/usr/bin/sort"}


@pytest.mark.parametrize(
    ("text", "word", "program"),
    [
        ("echo hi\n", "echo", False),
        ("env echo hi\n", "echo", True),
        ("find . -exec echo {} +\n", "echo", True),
        ("nice -n 5 printf x\n", "printf", True),
        ("env FOO=1; echo hi\n", "echo", False),
        ("xargs echo_all\n", "echo", False),
        ("time echo x\n", "echo", False),
    ],
)
def test_runs_as_program(text: str, word: str, program: bool) -> None:
    assert runs_as_program(text, word) is program


def test_jvm_home_from_the_real_java(make: Maker) -> None:
    home = "/usr/lib/jvm/java-17-openjdk-amd64"
    image = make(
        [
            *debian_base(),
            f(f"{home}/bin/java", ELF, 0o755),
            ln("/etc/alternatives/java", f"{home}/bin/java"),
            ln("/usr/bin/java", "/etc/alternatives/java"),
            f(f"{home}/lib/modules", "x"),
            f(f"{home}/lib/server/libjvm.so", ELF),
            ln(f"{home}/conf", "/etc/java-17-openjdk"),
            f(f"{home}/release", "x"),
            f("/etc/java-17-openjdk/security/java.security", "x"),
            f(f"{home}/lib/ct.sym", "x"),
            f(f"{home}/man/java.1", "x"),
            f("/opt/temurin/lib/modules", "x"),
        ]
    )
    adds = added("jvm-home", context(image, executed=["/usr/bin/java"]), "jvm")
    assert adds == {
        f"{home}/lib",
        f"{home}/lib/modules",
        f"{home}/lib/server",
        f"{home}/lib/server/libjvm.so",
        f"{home}/conf",
        f"{home}/release",
        "/etc/java-17-openjdk/security",
        "/etc/java-17-openjdk/security/java.security",
    }
    env = make([f("/opt/temurin/lib/modules", "x")], env={"JAVA_HOME": "/opt/temurin"})
    assert added("jvm-home", context(env), "jvm") == {
        "/opt/temurin/lib",
        "/opt/temurin/lib/modules",
    }


# -- python ------------------------------------------------------------------------------

LIB = "/usr/lib/python3.11"
SITE = "/usr/lib/python3/dist-packages"
APP = """\
import json
from http import server

def report():
    import csv
    from decimal import Decimal
    from helpers import util
    return csv, Decimal, util
"""


def _python_members() -> list[M]:
    return [
        *debian_base(),
        f("/usr/bin/python3.11", ELF, 0o755),
        ln("/usr/bin/python3", "python3.11"),
        f("/app/app.py", APP),
        f("/app/helpers/__init__.py", "from . import util\n"),
        f("/app/helpers/util.py", "import yaml\n"),
        f(f"{LIB}/json/__init__.py", "from .decoder import JSONDecoder\n"),
        f(f"{LIB}/json/decoder.py", "import re\n"),
        f(f"{LIB}/re/__init__.py", ""),
        f(f"{LIB}/http/__init__.py", ""),
        f(f"{LIB}/http/server.py", "import email.parser\n"),
        f(f"{LIB}/email/__init__.py", ""),
        f(f"{LIB}/email/parser.py", ""),
        f(f"{LIB}/csv.py", "import re\nfrom _csv import reader\n"),
        f(f"{LIB}/__pycache__/csv.cpython-311.pyc", "pyc"),
        f(
            f"{LIB}/decimal.py",
            "try:\n    from _decimal import *\nexcept ImportError:\n    from _pydecimal import *\n",
        ),
        f(f"{LIB}/_pydecimal.py", ""),
        f(f"{LIB}/numbers.py", ""),  # _decimal's C code imports it
        f(f"{LIB}/unused.py", ""),
        f(f"{LIB}/lib-dynload/_csv.cpython-311-x86_64-linux-gnu.so", ELF),
        f(f"{LIB}/lib-dynload/_decimal.cpython-311-x86_64-linux-gnu.so", ELF),
        f(f"{SITE}/yaml/__init__.py", "from .loader import *\n"),
        f(f"{SITE}/yaml/loader.py", ""),
        f(f"{SITE}/PyYAML-6.0.dist-info/METADATA", "Name: PyYAML\n"),
        f(f"{SITE}/PyYAML-6.0.dist-info/top_level.txt", "_yaml\nyaml\n"),
        f(f"{SITE}/requests-2.28.egg-info", "Name: requests\n"),
        f("/usr/local/bin/tool", "#!/usr/bin/python3\nimport unused\n", 0o755),
    ]


def test_python_imports_reach_a_fixed_point(make: Maker) -> None:
    image = make(_python_members(), WorkingDir="/app", Cmd=["python3", "/app/app.py"])
    kept = ["/usr/bin/python3.11", "/app/app.py", f"{LIB}/json/__init__.py"]
    ctx = context(image, executed=["/usr/bin/python3"], kept=kept)
    adds, _ = expand("python-imports", ctx, "python")
    got = {a.path for a in adds}
    assert {
        f"{LIB}/json/decoder.py",
        f"{LIB}/re/__init__.py",
        f"{LIB}/http/__init__.py",
        f"{LIB}/http/server.py",
        f"{LIB}/email/__init__.py",
        f"{LIB}/email/parser.py",
        f"{LIB}/csv.py",
        f"{LIB}/decimal.py",
        f"{LIB}/lib-dynload/_csv.cpython-311-x86_64-linux-gnu.so",
        f"{LIB}/lib-dynload/_decimal.cpython-311-x86_64-linux-gnu.so",
        f"{LIB}/numbers.py",
        "/app/helpers/__init__.py",
        "/app/helpers/util.py",
        f"{SITE}/yaml/__init__.py",
        f"{SITE}/yaml/loader.py",
    } == got
    assert "/app/app.py" not in got  # already kept: followed, not added again
    assert f"{LIB}/_pydecimal.py" not in got  # the fallback of _decimal, which is there
    # csv.py imports without its compiled cache; only a cache the trace read is kept
    assert f"{LIB}/__pycache__/csv.cpython-311.pyc" not in got
    why = next(a for a in adds if a.path == f"{LIB}/csv.py").reason.detail
    assert "/app/app.py imports csv" in why
    why = next(a for a in adds if a.path == f"{LIB}/numbers.py").reason.detail
    assert "_decimal.cpython-311-x86_64-linux-gnu.so imports numbers" in why


FALLBACK = """\
try:
    from _decimal import *
except ImportError:
    from _pydecimal import *
try:
    from _sha512 import sha512
except ImportError:
    from hashlib import sha512
try:
    from helpers import _fast
except ImportError:
    import slow
"""


def test_python_import_fallbacks_only_when_the_module_is_missing(make: Maker) -> None:
    interpreter = b"\x7fELF" + b"\0" * 60 + b"PyInit__sha512\0PyInit_posix\0"
    members = [
        *debian_base(),
        f("/usr/bin/python3.11", interpreter, 0o755),
        f("/app/app.py", FALLBACK),
        f(f"{LIB}/_pydecimal.py", ""),
        f(f"{LIB}/hashlib.py", ""),
        f("/app/helpers/__init__.py", ""),
        f("/app/slow.py", ""),
    ]
    ctx = context(make(members), kept=["/usr/bin/python3.11", "/app/app.py"])
    # _sha512 is built into the interpreter; _decimal is nowhere, nor is the
    # package's submodule _fast: their fallbacks stay
    assert added("python-imports", ctx, "python") == {
        f"{LIB}/_pydecimal.py",
        "/app/helpers/__init__.py",
        "/app/slow.py",
    }
    with_ext = [*members, f(f"{LIB}/lib-dynload/_decimal.cpython-311-x86_64-linux-gnu.so", ELF)]
    ctx = context(make(with_ext), kept=["/usr/bin/python3.11", "/app/app.py"])
    assert added("python-imports", ctx, "python") == {
        f"{LIB}/lib-dynload/_decimal.cpython-311-x86_64-linux-gnu.so",
        "/app/helpers/__init__.py",
        "/app/slow.py",
    }


def _tooling_members() -> list[M]:
    return [
        *debian_base(),
        f("/usr/bin/python3.11", ELF, 0o755),
        f("/app/app.py", "import tool\nif __name__ == '__main__':\n    import cli\n"),
        f(
            f"{LIB}/tool.py",
            "def helpme():\n    import pydoc\nif __name__ == '__main__':\n    import selftest\n",
        ),
        f(f"{LIB}/cli.py", ""),
        f(f"{LIB}/selftest.py", ""),
        f(f"{LIB}/pydoc.py", "import pydoc_data.topics\n"),
        f(f"{LIB}/pydoc_data/__init__.py", ""),
        f(f"{LIB}/pydoc_data/topics.py", ""),
        f(f"{LIB}/site.py", "def register_readline():\n    import readline\n"),
        f(f"{LIB}/lib-dynload/readline.cpython-311-x86_64-linux-gnu.so", ELF),
    ]


def test_python_imports_leave_out_tooling_and_library_main_blocks(make: Maker) -> None:
    image = make(_tooling_members(), Cmd=["python3", "/app/app.py"])
    kept = ["/usr/bin/python3.11", "/app/app.py", f"{LIB}/site.py"]
    ctx = context(image, executed=["/usr/bin/python3.11"], kept=kept)
    adds, _ = expand("python-imports", ctx, "python")
    # the program's own main block runs; a library's does not; pydoc is help()
    # tooling, readline the interactive prompt's
    assert {a.path for a in adds} == {f"{LIB}/tool.py", f"{LIB}/cli.py"}
    why = {a.path: a.reason.detail for a in adds}
    assert why[f"{LIB}/tool.py"].startswith("/app/app.py imports tool (found statically")
    assert "a module found on the image's sys.path" in why[f"{LIB}/tool.py"]


def test_python_imports_follow_tooling_the_trace_saw(make: Maker) -> None:
    image = make(_tooling_members(), Cmd=["python3", "/app/app.py"])
    kept = ["/usr/bin/python3.11", "/app/app.py", f"{LIB}/pydoc.py"]
    got = added("python-imports", context(image, kept=kept), "python")
    assert {f"{LIB}/pydoc_data/__init__.py", f"{LIB}/pydoc_data/topics.py"} <= got


def test_python_modules_run_with_dash_m_are_main(make: Maker) -> None:
    image = make(_tooling_members(), Cmd=["python3", "-m", "tool"])
    kept = ["/usr/bin/python3.11", f"{LIB}/tool.py"]
    assert f"{LIB}/selftest.py" in added("python-imports", context(image, kept=kept), "python")


def test_python_scripts_by_shebang(make: Maker) -> None:
    image = make(_python_members())
    ctx = context(image, kept=["/usr/bin/python3.11", "/usr/local/bin/tool"])
    assert added("python-imports", ctx, "python") == {f"{LIB}/unused.py"}


def test_python_imports_need_an_interpreter(make: Maker) -> None:
    image = make(_python_members())
    assert expand("python-imports", context(image, kept=["/app/app.py"]), "python") == ([], [])


def test_python_dist_info_of_kept_distributions(make: Maker) -> None:
    image = make(_python_members())
    kept = ["/usr/bin/python3.11", f"{SITE}/yaml/__init__.py"]
    assert added("python-dist-info", context(image, kept=kept), "python") == {
        f"{SITE}/PyYAML-6.0.dist-info",
        f"{SITE}/PyYAML-6.0.dist-info/METADATA",
        f"{SITE}/PyYAML-6.0.dist-info/top_level.txt",
    }
    assert added("python-dist-info", context(image, kept=kept[:1]), "python") == set()


# -- node ------------------------------------------------------------------------------------

# CPython 3.11+: importlib's bootstrap and the start-up modules are frozen in
FROZEN_PY = b"\x7fELF" + b"\0" * 60 + b"\0_frozen_importlib_external\0-X frozen_modules\0"
IMPORTLIB = """\
try:
    import _frozen_importlib_external as _bootstrap_external
except ImportError:
    from . import _bootstrap_external
"""


def _frozen_members(interpreter: bytes) -> list[M]:
    return [
        *debian_base(),
        f("/usr/bin/python3.11", interpreter, 0o755),
        f("/app/app.py", "import codecs\nimport importlib._bootstrap_external\ncodecs.open(1)\n"),
        f(f"{LIB}/codecs.py", "def open(f):\n    import builtins_helper\n"),
        f(f"{LIB}/builtins_helper.py", ""),
        f(f"{LIB}/importlib/__init__.py", IMPORTLIB),
        f(f"{LIB}/importlib/_bootstrap_external.py", "def find():\n    import email\n"),
        f(f"{LIB}/email/__init__.py", ""),
        f(f"{LIB}/site.py", "import _sitebuiltins\n"),
        f(f"{LIB}/_sitebuiltins.py", ""),
    ]


def test_python_frozen_modules_are_followed_not_kept(make: Maker) -> None:
    kept = ["/usr/bin/python3.11", "/app/app.py"]
    image = make(_frozen_members(FROZEN_PY), Cmd=["python3", "/app/app.py"])
    ctx = context(image, executed=["/usr/bin/python3.11"], kept=kept)
    # codecs.py, site.py and _sitebuiltins.py are never read (frozen); what the
    # frozen codecs imports still is; importlib's bootstrap is frozen in: neither
    # importlib's fallback to _bootstrap_external.py nor an import of it by name
    # keeps the file, and its imports in functions (email here) are not followed
    assert added("python-imports", ctx, "python") == {
        f"{LIB}/builtins_helper.py",
        f"{LIB}/importlib/__init__.py",
    }
    off = make(_frozen_members(FROZEN_PY), Cmd=["python3", "-X", "frozen_modules=off", "app.py"])
    ctx = context(off, executed=["/usr/bin/python3.11"], kept=kept)
    assert {f"{LIB}/codecs.py", f"{LIB}/site.py", f"{LIB}/_sitebuiltins.py"} <= added(
        "python-imports", ctx, "python"
    )


def _lazy_members(app: str) -> list[M]:
    shutil = (
        "import os\ndef unpack(f):\n    import zipfile\ndef __repr__(self):\n    import reprlib\n"
    )
    return [
        *debian_base(),
        f("/usr/bin/python3.11", ELF, 0o755),
        f("/app/app.py", app),
        f(f"{LIB}/os.py", ""),
        f(f"{LIB}/shutil.py", shutil),
        f(f"{LIB}/zipfile.py", "import struct\n"),
        f(f"{LIB}/struct.py", ""),
        f(f"{LIB}/reprlib.py", ""),
        f(f"{SITE}/lib.py", "def later():\n    import struct\n"),
    ]


def test_python_stdlib_function_imports_only_when_the_function_is_named(make: Maker) -> None:
    kept = ["/usr/bin/python3.11", "/app/app.py"]
    image = make(_lazy_members("import shutil\nshutil.copy(1)\n"), Cmd=["python3", "/app/app.py"])
    got = added("python-imports", context(image, kept=kept), "python")
    # shutil's unpack() is never named: its zipfile is left out; a dunder always counts
    assert got == {f"{LIB}/shutil.py", f"{LIB}/os.py", f"{LIB}/reprlib.py"}
    image = make(_lazy_members("import shutil\nshutil.unpack(1)\n"), Cmd=["python3", "/app/app.py"])
    adds, _ = expand("python-imports", context(image, kept=kept), "python")
    why = {a.path: a.reason.detail for a in adds}
    assert {f"{LIB}/zipfile.py", f"{LIB}/struct.py"} <= set(why)
    assert "imports zipfile in unpack(), a function kept code names," in why[f"{LIB}/zipfile.py"]
    # a bare name is the module's own: the app's unpack() is not shutil's
    app = "import shutil\ndef unpack():\n    pass\nunpack()\n"
    image = make(_lazy_members(app), Cmd=["python3", "/app/app.py"])
    assert f"{LIB}/zipfile.py" not in added("python-imports", context(image, kept=kept), "python")
    # outside the standard library, imports in functions are followed as before
    image = make(_lazy_members("import lib\n"), Cmd=["python3", "/app/app.py"])
    assert f"{LIB}/struct.py" in added("python-imports", context(image, kept=kept), "python")


def test_python_startup_modules_of_an_unfrozen_interpreter(make: Maker) -> None:
    image = make(_frozen_members(ELF), Cmd=["python3", "/app/app.py"])
    ctx = context(image, executed=["/usr/bin/python3.11"], kept=["/usr/bin/python3.11"])
    adds, _ = expand("python-imports", ctx, "python")
    why = {a.path: a.reason.detail for a in adds}
    assert "start-up" in why[f"{LIB}/site.py"] and f"{LIB}/_sitebuiltins.py" in why
    assert f"{LIB}/importlib/_bootstrap_external.py" not in why  # /app/app.py is not kept


ENCODE = """\
def encode(text, codec):
    return text.encode(codec)
"""


def _codec_members(app: str) -> list[M]:
    enc = f"{LIB}/encodings"
    return [
        *debian_base(),
        f("/usr/bin/python3.11", ELF, 0o755),
        f("/app/app.py", app),
        f(f"{enc}/__init__.py", "from . import aliases\n"),
        f(f"{enc}/aliases.py", "aliases = {\n    'eucjp': 'euc_jp',\n}\n"),
        f(f"{enc}/utf_8.py", ""),
        f(f"{enc}/__pycache__/utf_8.cpython-311.pyc", "pyc"),
        f(f"{enc}/latin_1.py", ""),
        f(f"{enc}/euc_jp.py", "import _codecs_jp\n"),
        f(f"{enc}/shift_jis.py", "import _codecs_jp\n"),
        f(f"{enc}/cp1252.py", ""),
        f(f"{LIB}/lib-dynload/_codecs_jp.cpython-311-x86_64-linux-gnu.so", ELF),
    ]


def test_python_codecs_only_the_core_without_evidence(make: Maker) -> None:
    enc = f"{LIB}/encodings"
    image = make(_codec_members("print('x'.encode('utf-8'))\n"), env={"LANG": "ja_JP.eucJP"})
    ctx = context(image, kept=["/usr/bin/python3.11", "/app/app.py"])
    adds, _ = expand("python-imports", ctx, "python")
    why = {a.path: a.reason.detail for a in adds}
    # the core codecs, and the locale's (LANG names eucJP: aliases say euc_jp),
    # whose C module comes as its import; no compiled caches
    assert set(why) == {
        f"{enc}/__init__.py",
        f"{enc}/aliases.py",
        f"{enc}/utf_8.py",
        f"{enc}/latin_1.py",
        f"{enc}/euc_jp.py",
        f"{LIB}/lib-dynload/_codecs_jp.cpython-311-x86_64-linux-gnu.so",
    }
    assert "literal names" in why[f"{enc}/utf_8.py"]
    assert "LANG=ja_JP.eucJP" in why[f"{enc}/euc_jp.py"]


def test_python_codecs_all_when_the_app_computes_a_codec_name(make: Maker) -> None:
    enc = f"{LIB}/encodings"
    image = make(_codec_members(ENCODE))
    ctx = context(image, kept=["/usr/bin/python3.11", "/app/app.py"])
    adds, _ = expand("python-imports", ctx, "python")
    why = {a.path: a.reason.detail for a in adds}
    assert {f"{enc}/shift_jis.py", f"{enc}/cp1252.py", f"{enc}/euc_jp.py"} <= set(why)
    assert (
        "/app/app.py:2 looks a codec up by a name computed at run time" in why[f"{enc}/cp1252.py"]
    )
    so = f"{LIB}/lib-dynload/_codecs_jp.cpython-311-x86_64-linux-gnu.so"
    assert "imports _codecs_jp" in why[so]
    assert f"{enc}/__pycache__/utf_8.cpython-311.pyc" not in why


def test_python_codecs_evidence_only_outside_the_standard_library(make: Maker) -> None:
    members = [*_codec_members("import mailbox\n"), f(f"{LIB}/mailbox.py", ENCODE)]
    ctx = context(make(members), kept=["/usr/bin/python3.11", "/app/app.py", f"{LIB}/mailbox.py"])
    assert f"{LIB}/encodings/cp1252.py" not in added("python-imports", ctx, "python")


def test_computed_codec_lines() -> None:
    source = """\
import codecs
a = b"x".decode("utf-8")
b = "x".encode(name)
c = codecs.lookup(charset)
d = open(path, encoding=enc)
e = open(path, encoding="latin-1")
f = registry.lookup(key)
g = "x".encode()
h = codecs.lookup("ascii")
"""
    assert computed_codec_lines(source) == (3, 4, 5)
    assert computed_codec_lines("def (") == ()


def test_python_c_imports_of_built_in_extension_modules(make: Maker) -> None:
    # Debian's python3.11 has _pickle built in (its PyInit__pickle in the binary),
    # python.org's has it in lib-dynload: either way its C code imports copyreg
    members = [
        *debian_base(),
        f("/usr/bin/python3.11", ELF + b"\0PyInit__pickle\0", 0o755),
        f("/app/app.py", "import _pickle\n"),
        f(f"{LIB}/copyreg.py", ""),
        f(f"{LIB}/_compat_pickle.py", ""),
        f(f"{LIB}/unused.py", ""),
    ]
    ctx = context(make(members), kept=["/usr/bin/python3.11", "/app/app.py"])
    adds, _ = expand("python-imports", ctx, "python")
    why = {a.path: a.reason.detail for a in adds}
    assert {f"{LIB}/copyreg.py", f"{LIB}/_compat_pickle.py"} <= set(why)
    assert f"{LIB}/unused.py" not in why
    assert "imports _pickle, built in, whose C code imports copyreg" in why[f"{LIB}/copyreg.py"]


def _apply(make: Maker, members: list[M], traced: list[str], kept: list[str]) -> set[str]:
    ctx = context(make(members), traced=traced, kept=kept)
    return {
        a.path for a in apply_profiles(list(PROFILES.values()), ctx, only={"tzdata", "python"})[0]
    }


def test_tzdata_leap_second_zones_and_tzdata_zi_on_evidence(make: Maker) -> None:
    zi = "/usr/share/zoneinfo"
    members = [
        *debian_base(),
        f(f"{zi}/Asia/Tokyo", "TZif"),
        f(f"{zi}/UTC", "TZif"),
        f(f"{zi}/right/UTC", "TZif"),
        f(f"{zi}/right/Asia/Tokyo", "TZif"),
        f(f"{zi}/tzdata.zi", "# version"),
        f(f"{TRIPLET}/libstdc++.so.6", ELF),
    ]
    got = _apply(make, members, [f"{zi}/UTC"], [f"{zi}/UTC"])
    assert {f"{zi}/Asia/Tokyo", f"{zi}/UTC"} <= got
    assert not {p for p in got if "/right/" in p or p.endswith(".zi")}
    got = _apply(make, members, [f"{zi}/right/UTC"], [f"{zi}/right/UTC"])
    assert f"{zi}/right/Asia/Tokyo" in got
    got = _apply(make, members, [f"{zi}/UTC"], [f"{zi}/UTC", f"{TRIPLET}/libstdc++.so.6"])
    assert f"{zi}/tzdata.zi" in got


def test_python_sysconfigdata_only_with_sysconfig(make: Maker) -> None:
    data = f"{LIB}/_sysconfigdata__x86_64-linux-gnu.py"
    members = [
        *debian_base(),
        f("/usr/bin/python3.11", FROZEN_PY, 0o755),
        f(f"{LIB}/os.py", ""),
        f(f"{LIB}/sysconfig.py", ""),
        f(data, ""),
    ]
    kept = ["/usr/bin/python3.11"]
    assert data not in _apply(make, members, [], kept)
    got = _apply(make, members, [], [*kept, f"{LIB}/sysconfig.py"])
    assert {data, f"{LIB}/os.py"} <= got


SERVER_JS = """\
'use strict';
const http = require('http');
const fs = require('node:fs');
const local = require("./lib/util");
function later() { const debug = require('debug'); return import('@scope/pkg'); }
"""


def test_node_requires(make: Maker) -> None:
    image = make(
        [
            *debian_base(),
            f("/usr/bin/node", ELF, 0o755),
            f("/srv/app/server.js", SERVER_JS),
            f("/srv/app/lib/util.js", "module.exports = require('../data/x.json');\n"),
            f("/srv/app/data/x.json", "{}"),
            f("/srv/app/data/unused.json", "{}"),
            f("/usr/share/nodejs/debug/package.json", '{"main": "src/index.js"}'),
            f("/usr/share/nodejs/debug/src/index.js", "require('ms');\n"),
            f("/usr/share/nodejs/ms/index.js", ""),
            f("/usr/share/nodejs/unused/index.js", ""),
            f("/srv/app/node_modules/@scope/pkg/index.js", "export * from 'ms';\n"),
        ],
        Cmd=["node", "/srv/app/server.js"],
    )
    ctx = context(image, executed=["/usr/bin/node"], kept=["/srv/app/server.js"])
    got = added("node-requires", ctx, "node")
    assert {
        "/srv/app/lib/util.js",
        "/srv/app/data/x.json",
        "/usr/share/nodejs/debug",
        "/usr/share/nodejs/debug/src/index.js",
        "/usr/share/nodejs/debug/package.json",
        "/usr/share/nodejs/ms",
        "/usr/share/nodejs/ms/index.js",
        "/srv/app/node_modules/@scope/pkg/index.js",
    } <= got
    assert not {"/srv/app/data/unused.json", "/usr/share/nodejs/unused/index.js"} & got


# -- nginx ----------------------------------------------------------------------------------

NGINX_CONF = """\
# main
load_module modules/ngx_stream_module.so;
http {
    include mime.types;
    include sites-enabled/*;
    server {
        listen 443 ssl;
        ssl_certificate "/etc/ssl/site.crt"; # quoted
        ssl_certificate_key /etc/ssl/private/site.key;
        root /srv/www;
        location /static/ { alias /opt/static/; }
        location /u/ { root /data/users/$host/public; }
        location /h { return 200 "root /not/a/root;"; }
    }
}
"""


def test_nginx_tokens_and_directives() -> None:
    toks = list(tokens('a \'b c\' "d\\"e"; # x\nf {g;}'))
    assert toks == ["a", "b c", 'd"e', ";", "f", "{", "g", ";", "}"]
    assert ("root", ["/srv/www"]) in list(directives(NGINX_CONF))
    assert ("return", ["200", "root /not/a/root;"]) in list(directives(NGINX_CONF))


def test_nginx_referenced_paths_follow_includes() -> None:
    files = {
        "/etc/nginx/nginx.conf": NGINX_CONF,
        "/etc/nginx/mime.types": "types {}",
        "/etc/nginx/sites-enabled/default": "server { root html; }",
    }
    found = referenced_paths(
        "/etc/nginx/nginx.conf",
        files.get,
        lambda p: [k for k in files if k.startswith(p.rstrip("*"))],
        ("/usr/share/nginx",),
    )
    got = {(n.path, n.directive, n.tree) for n in found}
    assert got == {
        ("/usr/share/nginx/modules/ngx_stream_module.so", "load_module", False),
        ("/etc/ssl/site.crt", "ssl_certificate", False),
        ("/etc/ssl/private/site.key", "ssl_certificate_key", False),
        ("/srv/www", "root", True),
        ("/opt/static", "alias", True),
        ("/data/users", "root", True),
        ("/usr/share/nginx/html", "root", True),
    }


def test_nginx_roots_keep_whole_trees(make: Maker) -> None:
    image = make(
        [
            *debian_base(),
            f("/usr/sbin/nginx", ELF, 0o755),
            f("/etc/nginx/fixture.conf", "http { include /etc/nginx/conf.d/*.conf; }"),
            f(
                "/etc/nginx/conf.d/site.conf",
                "server { root /srv/www; ssl_certificate /etc/ssl/s.crt; }",
            ),
            f("/etc/nginx/nginx.conf", "http { root /var/www/html; }"),
            f("/srv/www/index.html", "x"),
            f("/srv/www/img/a.png", "x"),
            f("/etc/ssl/s.crt", "x"),
            f("/var/www/html/index.html", "x"),
        ],
        Cmd=["nginx", "-c", "/etc/nginx/fixture.conf", "-e", "stderr"],
    )
    adds, _ = expand("nginx-roots", context(image, executed=["/usr/sbin/nginx"]), "nginx")
    assert {a.path for a in adds} == {
        "/srv/www",
        "/srv/www/index.html",
        "/srv/www/img",
        "/srv/www/img/a.png",
        "/etc/ssl/s.crt",
    }
    why = next(a for a in adds if a.path == "/srv/www/img/a.png").reason.detail
    assert "root /srv/www in /etc/nginx/conf.d/site.conf" in why
    default = make(
        [
            *debian_base(),
            f("/etc/nginx/nginx.conf", "http { root /var/www/html; }"),
            f("/var/www/html/index.html", "x"),
        ],
        Cmd=["nginx", "-g", "daemon off;"],
    )
    assert added("nginx-roots", context(default), "nginx") == {
        "/var/www/html",
        "/var/www/html/index.html",
    }


# -- dpkg -----------------------------------------------------------------------------------

STATUS = """\
Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Version: 2.36-9
Description: GNU C Library
 continuation line

Package: curl
Status: install ok installed
Architecture: amd64
Version: 7.88

Package: gone
Status: deinstall ok config-files
Architecture: amd64

Package: nolist
Status: install ok installed
Architecture: all

Package: emptydirs
Status: install ok installed
Architecture: all
"""


LIBC6_LIST = """\
/.
/lib
/lib/x86_64-linux-gnu
/lib/x86_64-linux-gnu/libc.so.6
/lib/x86_64-linux-gnu/libm.so.6
/etc
/etc/ld.so.conf.d
/etc/ld.so.conf.d/x86_64-linux-gnu.conf
/usr
/usr/share
/usr/share/doc
/usr/share/doc/libc6
/usr/share/doc/libc6/copyright
"""


def _dpkg_image(make: Maker) -> ProfileContext:
    info = "/var/lib/dpkg/info"
    image = make(
        [
            *debian_base(),
            f("/var/lib/dpkg/status", STATUS),
            f(f"{info}/libc6:amd64.list", LIBC6_LIST),
            f(
                f"{info}/libc6:amd64.md5sums",
                "abc  lib/x86_64-linux-gnu/libc.so.6\ndef  lib/x86_64-linux-gnu/libm.so.6\n",
            ),
            f(f"{info}/libc6:amd64.conffiles", "/etc/ld.so.conf.d/x86_64-linux-gnu.conf\n"),
            f(f"{TRIPLET}/libm.so.6", ELF),
            f(f"{info}/curl.list", "/usr/bin/curl\n"),
            f("/usr/bin/curl", ELF, 0o755),
            f(f"{info}/emptydirs.list", "/.\n/usr\n/usr/lib\n"),
            f("/usr/share/doc/libc6/copyright", "GPL"),
        ]
    )
    return context(image, kept=[f"{TRIPLET}/libc.so.6"])


def test_dpkg_status_trimmed_to_packages_with_kept_files(make: Maker) -> None:
    ctx = _dpkg_image(make)
    adds, gens = expand("dpkg-status", ctx, "dpkg")
    assert gens[0].path == "/var/lib/dpkg/status"
    text = gens[0].data.decode()
    assert [r.package for r in dpkg_records(text)] == ["libc6", "nolist"]
    assert " continuation line\n" in text
    assert "2 packages" in gens[0].reason.detail
    assert {a.path for a in adds} == {"/var/lib/dpkg/info", "/usr/share/doc/libc6/copyright"}


def test_dpkg_info_files_trimmed_to_the_files_kept(make: Maker) -> None:
    """merged-/usr: the list names /lib/..., the kept path is /usr/lib/...; the
    copyright the expander keeps is listed, libm and the conffile (not kept) are not."""
    _, gens = expand("dpkg-status", _dpkg_image(make), "dpkg")
    data = {g.path: g.data.decode() for g in gens}
    info = "/var/lib/dpkg/info/libc6:amd64"
    assert data[f"{info}.list"] == (
        "/.\n/lib\n/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libc.so.6\n"
        "/usr\n/usr/share\n/usr/share/doc\n/usr/share/doc/libc6\n/usr/share/doc/libc6/copyright\n"
    )
    assert data[f"{info}.md5sums"] == "abc  lib/x86_64-linux-gnu/libc.so.6\n"
    assert f"{info}.conffiles" not in data  # nothing of it kept: no file at all
    assert set(data) == {"/var/lib/dpkg/status", f"{info}.list", f"{info}.md5sums"}


def test_dpkg_status_d_distroless(make: Maker) -> None:
    sd = "/var/lib/dpkg/status.d"
    image = make(
        [
            *debian_base(),
            f(f"{sd}/libc6", "Package: libc6\nArchitecture: amd64\n"),
            f(f"{sd}/libc6.md5sums", "abc  usr/lib/x86_64-linux-gnu/libc.so.6\n"),
            f(f"{sd}/tzdata", "Package: tzdata\nArchitecture: all\n"),
            f(f"{sd}/tzdata.md5sums", "abc  usr/share/zoneinfo/UTC\n"),
            f(f"{sd}/mystery", "Package: mystery\n"),
        ]
    )
    adds, gens = expand("dpkg-status", context(image, kept=[f"{TRIPLET}/libc.so.6"]), "dpkg")
    assert [(g.path, g.data.decode()) for g in gens] == [
        (f"{sd}/libc6.md5sums", "abc  usr/lib/x86_64-linux-gnu/libc.so.6\n")
    ]
    assert {a.path for a in adds} == {f"{sd}/libc6", f"{sd}/mystery"}


def test_pkgtrim_text_helpers() -> None:
    assert md5sums_paths("d41d8  usr/bin/x\nbad line\n") == ("/usr/bin/x",)
    assert trim_dpkg(STATUS, lambda r: r.package == "curl").startswith("Package: curl\n")
    assert trim_dpkg(STATUS, lambda r: False) == ""


# -- apk -----------------------------------------------------------------------------------

INSTALLED = """\
C:Q1abc=
P:musl
V:1.2.4-r2
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
R:libc.musl-x86_64.so.1

C:Q1def=
P:curl
V:8.5.0-r0
F:usr/bin
R:curl

C:Q1ghi=
P:.virtual
V:20240101

"""


def test_apk_installed_trimmed(make: Maker) -> None:
    image = make(
        [
            f("/lib/apk/db/installed", INSTALLED),
            f("/lib/ld-musl-x86_64.so.1", ELF),
            ln("/lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1"),
            f("/usr/bin/curl", ELF, 0o755),
        ]
    )
    _, gens = expand("apk-installed", context(image, kept=["/lib/ld-musl-x86_64.so.1"]), "apk")
    assert [r.package for r in apk_records(gens[0].data.decode())] == ["musl"]
    assert gens[0].data.decode().endswith("R:libc.musl-x86_64.so.1\n\n")
    assert apk_records(INSTALLED)[0].files == (
        "/lib/ld-musl-x86_64.so.1",
        "/lib/libc.musl-x86_64.so.1",
    )
