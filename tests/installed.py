"""The `slim` users get: built as a wheel, installed into a fresh virtualenv outside
the checkout, and run from a directory outside it with no PYTHONPATH.

`scripts/test` builds that virtualenv once (`python tests/installed.py DIR`) and
passes its `slim` in `SLIMMER_E2E_SLIM`; a plain `pytest` run builds one itself
the first time an end-to-end test asks. Unit tests import from the source; every
test that runs the CLI runs this `slim`, and is marked `e2e`.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = "SLIMMER_E2E_SLIM"


def build_wheel(dest: Path) -> Path:
    """`pip wheel` of the checkout's files into `dest`; the wheel's path.

    It builds from a copy of the files git sees (tracked, and new ones not ignored):
    setuptools reuses an in-tree `build/` directory, so a module deleted from the
    source would otherwise still ship in the wheel."""
    dest.mkdir(parents=True, exist_ok=True)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    with tempfile.TemporaryDirectory(prefix="slimmer-wheel-src-") as tmp:
        for name in filter(None, listed.split("\0")):
            src = ROOT / name
            if src.is_file():  # a file deleted but not yet committed is listed too
                (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, Path(tmp) / name)
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", tmp, "-w", str(dest)],
            check=True,
            cwd=dest,
        )
    return next(dest.glob("slimmer-*.whl"))


def install(where: Path) -> Path:
    """A fresh virtualenv at `where` (outside the checkout) with the built wheel and its
    dependencies installed, not editable; the path of its `slim`."""
    if ROOT in where.resolve().parents:
        raise ValueError(f"{where} is inside the checkout")
    shutil.rmtree(where, ignore_errors=True)
    wheel = build_wheel(where / "wheel")
    venv.create(where / "venv", with_pip=True, clear=True)
    py = where / "venv" / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, cwd=where, env=_clean_env()
    )
    return where / "venv" / "bin" / "slim"


@functools.cache
def slim_exe() -> str:
    """The installed `slim` to test: `$SLIMMER_E2E_SLIM`, else one built now."""
    given = os.environ.get(ENV)
    if given:
        if not os.access(given, os.X_OK):
            raise FileNotFoundError(f"{ENV}={given} is not an executable")
        return given
    where = Path(tempfile.mkdtemp(prefix="slimmer-e2e-"))
    atexit.register(shutil.rmtree, where, True)
    return str(install(where / "env"))


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without anything that would point Python at the checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("GITHUB_")
    }
    return {**env, **(extra or {})}


def run_slim(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run the installed `slim` with `args` from `cwd` (default: a directory outside the
    checkout) and capture its output as text."""
    where = cwd or Path(tempfile.gettempdir())
    return subprocess.run(
        [slim_exe(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=where,
        env=_clean_env(env),
    )


def popen_slim(
    *args: str, stdout: int | None = None, stderr: int | None = None
) -> subprocess.Popen[str]:
    """Start the installed `slim` (for tests that signal it midway)."""
    return subprocess.Popen(
        [slim_exe(), *args],
        text=True,
        env=_clean_env(),
        cwd=tempfile.gettempdir(),
        stdout=stdout,
        stderr=stderr,
    )


if __name__ == "__main__":
    print(install(Path(sys.argv[1])))
