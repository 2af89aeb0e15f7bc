"""The engine's differences, read from its recorded answers (tests/data/engines):
which engine serves the API (`dialect_of`), how it names a short output (`qualify`),
and how its error bodies say an image is missing (`says_image_missing`)."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from slimmer.engine import Dialect, dialect_of, qualify, says_image_missing

DATA = Path(__file__).parent / "data" / "engines"


def _recorded(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def test_dockerd_is_named_docker_with_its_engine_version() -> None:
    assert dialect_of(_recorded("docker-20.10-version.json")) == Dialect(
        "Docker", "20.10.24+dfsg1", ""
    )


def test_podman_is_named_podman_though_it_serves_the_docker_api() -> None:
    version = _recorded("podman-4.3-version.json")
    assert version["ApiVersion"] == "1.41"  # the same API version as dockerd's
    assert dialect_of(version) == Dialect("Podman", "4.3.1", "localhost")


def test_an_engine_without_components_is_taken_for_docker() -> None:
    """API versions before 1.35 have no Components: only dockerd answered them."""
    assert dialect_of({"Version": "17.03.2-ce"}) == Dialect("Docker", "17.03.2-ce", "")


@pytest.mark.parametrize(
    ("ref", "local", "stored"),
    [
        ("team/api:slim", "localhost", "localhost/team/api:slim"),
        ("api", "localhost", "localhost/api"),
        ("api:1", "localhost", "localhost/api:1"),
        ("localhost/team/api:slim", "localhost", "localhost/team/api:slim"),
        ("registry.example:5000/api:1", "localhost", "registry.example:5000/api:1"),
        ("quay.io/team/api", "localhost", "quay.io/team/api"),
        ("localhost:5000/api", "localhost", "localhost:5000/api"),
        ("team/api:slim", "", "team/api:slim"),  # dockerd keeps the name as given
    ],
)
def test_short_output_names_are_qualified_as_the_engines_cli_does(
    ref: str, local: str, stored: str
) -> None:
    assert qualify(ref, local) == stored


@pytest.mark.parametrize(
    ("recorded", "missing"),
    [
        ("docker-20.10-save-missing.json", True),
        ("docker-20.10-tag-missing.json", True),
        ("docker-20.10-container-missing.json", False),
        ("podman-4.3-save-missing.json", True),
        ("podman-4.3-tag-missing.json", True),
        ("podman-4.3-container-missing.json", False),
    ],
)
def test_error_bodies_that_say_an_image_is_missing(recorded: str, missing: bool) -> None:
    assert says_image_missing(_recorded(recorded)["message"]) is missing


def _engine_words(tree: ast.AST) -> list[str]:
    """What in a module tells one engine from another: a comparison with a string naming
    Podman or Docker, or a use of the engine's dialect."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("dialect", "local_domain"):
            found.append(f"line {node.lineno}: .{node.attr}")
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                text = side.value if isinstance(side, ast.Constant) else None
                if isinstance(text, str) and text.lower() in ("podman", "docker"):
                    found.append(f"line {node.lineno}: compares with {text!r}")
    return found


def test_no_module_but_the_engine_boundary_tells_engines_apart() -> None:
    """Podman's differences are handled in slimmer/engine.py alone: no `if podman`
    branch anywhere else (the pipeline, the CLI, the reports)."""
    package = Path(__file__).resolve().parent.parent / "slimmer"
    branches = {
        str(path.relative_to(package)): words
        for path in sorted(package.rglob("*.py"))
        if path.name != "engine.py"
        and (words := _engine_words(ast.parse(path.read_text(), str(path))))
    }
    assert branches == {}
    boundary = ast.parse((package / "engine.py").read_text())
    assert _engine_words(boundary) != []  # the check sees the boundary's own
