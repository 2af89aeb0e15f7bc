"""What users install: the wheel holds the code, the profiles and the schemas, and the
`slim` it installs (with pip into a fresh venv, or with pipx) works outside the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from slimmer import __version__
from slimmer.engine import Engine
from tests.installed import ROOT, build_wheel, run_slim, slim_exe
from tests.needs import require

pytestmark = pytest.mark.e2e


def _tracked(*tops: str) -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", *tops], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return {name for name in out.split("\0") if name}


def test_wheel_holds_every_module_profile_and_schema(tmp_path: Path) -> None:
    """Every module under slimmer/, every file under profiles/ and docs/schemas/."""
    names = set(zipfile.ZipFile(build_wheel(tmp_path)).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "slimmer").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    shipped = {n for n in names if n.startswith("slimmer/") and n.endswith(".py")}
    assert shipped <= modules, sorted(shipped - modules)  # nothing stale from a build/ dir
    data = {f"slimmer/_profiles/{Path(p).name}" for p in _tracked("profiles")}
    data |= {f"slimmer/_schemas/{Path(p).name}" for p in _tracked("docs/schemas")}
    assert len(data) >= 15
    assert data <= names, sorted(data - names)
    assert not any(n.startswith(("tests/", "fixtures/", "profiles/")) for n in names)


def test_sdist_holds_every_profile_and_schema(tmp_path: Path) -> None:
    """The sdist carries profiles/ and docs/schemas/, so a wheel built from it has them."""
    subprocess.run([sys.executable, "-m", "build", "--sdist", "-o", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, cwd=tmp_path)  # fmt: skip
    (sdist,) = tmp_path.glob("slimmer-*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    wanted = _tracked("profiles", "docs/schemas")
    assert wanted <= names, sorted(wanted - names)


def test_installed_package_is_not_the_checkout() -> None:
    py = Path(slim_exe()).parent / "python"
    where = subprocess.run(
        [str(py), "-c", "import slimmer; print(slimmer.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    ).stdout
    assert ROOT.as_posix() not in where and "site-packages" in where


@pytest.mark.engine
def test_version_names_the_engine_api(engine: Engine) -> None:
    res = run_slim("--version")
    assert res.returncode == 0, res.stderr
    server, api_version = engine.versions()
    assert server.startswith("Docker ")  # the suite's engine is dockerd (Podman: -m podman)
    assert res.stdout.splitlines() == [
        f"slimmer {__version__}",
        f"engine: {server}, API {api_version}",
    ]
    down = run_slim("--version", env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    assert down.returncode == 0 and "not reachable" in down.stdout.splitlines()[1]


def test_a_bad_extra_profile_is_a_usage_error(tmp_path: Path) -> None:
    """--profiles-dir is read (before any engine work): a broken profile there names
    its file and exits 2."""
    (tmp_path / "broken.toml").write_text('name = "broken"\n')
    res = run_slim("slimmer-test/whatever:1", "-o", "x:1", "--profiles-dir", str(tmp_path))
    assert res.returncode == 2, res.stderr
    assert "broken.toml" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.engine
def test_pipx_installed_slim_slims_a_fixture(
    tmp_path: Path, engine: Engine, fixture_images: dict[str, str]
) -> None:
    """`pipx install WHEEL` on a clean PIPX_HOME gives a `slim` that slims c-static."""
    require("pipx")
    wheel = build_wheel(tmp_path / "wheel")
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "bin"),
        "PIPX_MAN_DIR": str(tmp_path / "man"),
    }
    subprocess.run(
        ["pipx", "install", str(wheel)], check=True, env=env, cwd=tmp_path, capture_output=True
    )
    out = "slimmer-test/pipx-c-static:slim"
    try:
        res = subprocess.run(
            [
                str(tmp_path / "bin" / "slim"),
                fixture_images["c-static"],
                "-o",
                out,
                "--probes",
                str(ROOT / "fixtures/c-static/probe.toml"),
                "--report-dir",
                str(tmp_path / "r"),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=600,
        )
        assert res.returncode == 0, res.stderr
        report = json.loads((tmp_path / "r" / "report.json").read_text())
        assert report["verification"]["status"] == "passed"
        assert engine.inspect_image(out).labels["io.slimmer.source"]
    finally:
        engine.remove_image(out, force=True)
