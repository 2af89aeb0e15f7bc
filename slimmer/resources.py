"""The data slimmer ships beside its code: the built-in profiles and the JSON schemas.

Both live at the top of the repository (`profiles/`, `docs/schemas/`) and are
installed inside the package as `slimmer/_profiles` and `slimmer/_schemas`
(see `[tool.setuptools.package-dir]` in pyproject.toml). They are read through
`importlib.resources`, so an installed wheel, a pipx venv and a zip import all
work; a source checkout that was never installed falls back to the repository.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def _packaged(name: str, checkout: Path) -> Traversable:
    """`slimmer/<name>` of the installed package, else `checkout` in a source tree."""
    shipped = files("slimmer") / name
    return shipped if shipped.is_dir() else checkout


def builtin_profiles() -> Traversable:
    """The directory of the profiles slimmer ships."""
    return _packaged("_profiles", _CHECKOUT / "profiles")


def schemas() -> Traversable:
    """The directory of the JSON schemas of slimmer's machine output."""
    return _packaged("_schemas", _CHECKOUT / "docs" / "schemas")
