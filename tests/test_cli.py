"""The CLI as a user runs it: exit codes, one-line errors, versioned JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest

from slimmer.analyse.inspect import SCHEMA as INSPECT_SCHEMA
from slimmer.report.deps_view import SCHEMA as DEPS_SCHEMA
from tests.installed import run_slim
from tests.schemas import json_schema
from tests.synth import M, docker_archive, layer

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.e2e
slim = run_slim


def archive(tmp_path: Path) -> Path:
    return docker_archive(
        tmp_path / "img.tar",
        [
            layer(
                M("bin/", "dir"),
                M("bin/sh", data=b"\x7fELF" + b"\0" * 60, mode=0o755),
                M(
                    "var/lib/dpkg/status",
                    data=b"Package: dash\nStatus: install ok installed\nVersion: 0.5.12-2\n\n",
                ),
                M("tmp/junk", data=b"j" * 500),
            ),
            layer(M("tmp/.wh.junk"), M("usr/bin/su", data=b"su", mode=0o4755)),
        ],
    )


def test_inspect_json_contract(tmp_path: Path) -> None:
    res = slim("inspect", f"docker-archive:{archive(tmp_path)}", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    schema = json_schema(INSPECT_SCHEMA)
    jsonschema.validate(doc, schema)
    assert doc["schema"] == INSPECT_SCHEMA
    assert doc["wasted_bytes"] == 500 and doc["reclaimable_bytes"] == 500
    assert doc["shells"] == ["/bin/sh"] and doc["setuid"] == ["/usr/bin/su"]
    assert doc["packages"] == [
        {"manager": "dpkg", "name": "dash", "version": "0.5.12-2", "source": "/var/lib/dpkg/status"}
    ]
    assert res.stdout == slim("inspect", f"docker-archive:{archive(tmp_path)}", "--json").stdout


def test_inspect_text(tmp_path: Path) -> None:
    res = slim("inspect", f"docker-archive:{archive(tmp_path)}")
    assert res.returncode == 0, res.stderr
    assert "Efficiency" in res.stdout and "Layers" in res.stdout


@pytest.mark.parametrize(
    "args,code,needle",
    [
        (["inspect", "docker-archive:/nonexistent.tar"], 1, "no such file"),
        (["inspect"], 2, "Missing argument"),
        (["nosuchimage"], 2, "Missing option '-o'"),
        (["inspect", "--bogus", "x"], 2, "No such option"),
    ],
)
def test_bad_input_is_one_line(args: list[str], code: int, needle: str) -> None:
    res = slim(*args)
    assert res.returncode == code
    assert needle in res.stderr
    assert "Traceback" not in res.stderr


def test_malformed_archive(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"garbage" * 100)
    res = slim("inspect", f"docker-archive:{bad}")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.startswith("slim: error: reading archive")
    assert len(res.stderr.strip().splitlines()) == 1


def test_truncated_layer(tmp_path: Path) -> None:
    good = layer(M("a", data=b"x" * 4000))
    path = docker_archive(tmp_path / "t.tar", [good[:2000]])
    res = slim("inspect", f"docker-archive:{path}")
    assert res.returncode == 1
    assert "unexpected end of archive" in res.stderr and "Traceback" not in res.stderr


def test_engine_not_reachable() -> None:
    res = slim("inspect", "app:1", env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    assert res.returncode == 1
    assert "Docker engine" in res.stderr and "not reachable" in res.stderr
    assert "Traceback" not in res.stderr


def test_debug_shows_traceback(tmp_path: Path) -> None:
    res = slim("--debug", "inspect", f"docker-archive:{tmp_path / 'none.tar'}")
    assert res.returncode == 1 and "Traceback" in res.stderr


def test_deps_from_an_archive(tmp_path: Path) -> None:
    """`slim deps` on a file image: a real dynamic ELF built here, its closure in JSON."""
    src = tmp_path / "hello.c"
    src.write_text("int main(void) { return 0; }\n")
    prog = tmp_path / "hello"
    subprocess.run(["gcc", "-o", str(prog), str(src)], check=True)
    libc = Path("/usr/lib/x86_64-linux-gnu/libc.so.6").read_bytes()
    ldso = Path("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2").read_bytes()
    arch = docker_archive(
        tmp_path / "d.tar",
        [
            layer(
                M("usr/bin/hello", data=prog.read_bytes(), mode=0o755),
                M("usr/lib/x86_64-linux-gnu/libc.so.6", data=libc),
                M("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", data=ldso, mode=0o755),
                M("lib64", "dir"),
                M(
                    "lib64/ld-linux-x86-64.so.2",
                    "symlink",
                    link="/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                ),
            )
        ],
    )
    res = slim("deps", f"docker-archive:{arch}", "/usr/bin/hello", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["schema"] == DEPS_SCHEMA
    assert "/usr/lib/x86_64-linux-gnu/libc.so.6" in doc["files"]
    assert "/lib64/ld-linux-x86-64.so.2" in doc["files"]
    text = slim("deps", f"docker-archive:{arch}", "/usr/bin/hello")
    assert "libc.so.6 => /usr/lib/x86_64-linux-gnu/libc.so.6" in text.stdout
