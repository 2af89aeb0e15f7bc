"""`paths.which`, the one PATH lookup (the planner, the expanders, preflight and
`slim lint` all use it), at the edges where its three former copies disagreed.

The copies were: `image.paths.which` (the planner: a name with a `/` only when
absolute, any existing entry; an empty PATH entry meant `/`; no execute bit
needed), `pipeline.preflight.find_program` (relative names and PATH entries from
WorkingDir; an execute bit needed) and `findings.checks._program_exists` (a name
with a `/` but not absolute was searched on PATH; an empty PATH entry meant `/`; a
PATH set empty meant the default PATH; no execute bit needed). What execvp(3)
does decides each case; runc's stricter refusals are noted on `which`.
"""

from __future__ import annotations

import pytest

from slimmer.errors import ImageUnrunnable
from slimmer.findings import checks
from slimmer.image.paths import DEFAULT_PATH, search_path, which
from slimmer.model import ImageConfig
from slimmer.pipeline.preflight import check_program
from slimmer.plan.planner import config_paths
from tests.memtree import Dir, File, Link, MemTree

ELF = b"\x7fELF" + b"\x00" * 12


def _tree() -> MemTree:
    return MemTree(
        {
            "/bin": Link("usr/bin"),
            "/usr/bin/app": File(ELF),
            "/usr/bin/sh": Link("dash"),
            "/usr/bin/dash": File(ELF),
            "/srv/tools/run": File(ELF),
            "/srv/data.txt": File(b"x", 0o644),
            "/usr/local/bin/app": Dir(),  # a directory named like the program
            "/usr/local/sbin/app": Link("/nowhere/app"),  # dangling
            "/opt/noexec/app": File(ELF, 0o644),
            "/opt/bin/app": File(ELF, 0o700),
            "/opt/bin/up": Link("../../../../../usr/bin/dash"),  # `..` stops at the root
        }
    )


def test_a_bare_name_is_the_first_executable_file_along_path() -> None:
    tree = _tree()
    # dangling link, directory, non-executable file: each passed over, as execvp does
    path = "/usr/local/sbin:/usr/local/bin:/opt/noexec:/opt/bin:/usr/bin"
    assert which(tree, "app", path) == "/opt/bin/app"
    assert which(tree, "app", "/usr/local/sbin:/usr/local/bin:/opt/noexec") is None


def test_a_symlinked_path_directory_is_followed_inside_the_image() -> None:
    tree = _tree()
    assert which(tree, "app", "/bin") == "/bin/app"  # the name found, not resolved
    assert which(tree, "sh", "/bin") == "/bin/sh"
    assert tree.resolve("/bin/sh").path == "/usr/bin/dash"
    assert which(tree, "up", "/opt/bin") == "/opt/bin/up"


def test_an_unset_path_is_the_default_and_an_empty_one_stays_empty() -> None:
    assert search_path({}) == DEFAULT_PATH
    assert search_path({"PATH": ""}) == ""  # the engine puts PATH= in place of its default
    tree = _tree()
    assert which(tree, "app", search_path({})) == "/usr/bin/app"
    # PATH= is one empty entry: the current directory, and only that
    assert which(tree, "run", "", "/srv/tools") == "/srv/tools/run"
    assert which(tree, "app", "", "/srv") is None


def test_empty_and_relative_path_entries_start_at_the_working_dir() -> None:
    tree = _tree()
    assert which(tree, "run", "/usr/bin::", "/srv/tools") == "/srv/tools/run"
    assert which(tree, "run", "/usr/bin:", "/") is None  # not at the root
    assert which(tree, "run", "tools", "/srv") == "/srv/tools/run"
    assert which(tree, "run", "tools", "/") is None


def test_a_name_with_a_slash_is_not_looked_up() -> None:
    tree = _tree()
    assert which(tree, "/srv/tools/run", "") == "/srv/tools/run"
    assert which(tree, "tools/run", DEFAULT_PATH, "/srv") == "/srv/tools/run"
    assert which(tree, "./tools/../tools/run", DEFAULT_PATH, "/srv") == "/srv/tools/run"
    assert which(tree, "tools/run", "/srv", "/") is None  # never searched on PATH
    assert which(tree, "/srv/data.txt") is None  # no execute bit
    assert which(tree, "/usr/local/bin/app") is None  # a directory
    assert which(tree, "/usr/local/sbin/app") is None  # dangling


def _config(**container: object) -> ImageConfig:
    return ImageConfig({"config": container})


@pytest.mark.parametrize(
    ("healthcheck", "env", "workdir", "found"),
    [
        (["CMD", "run"], ["PATH=tools"], "/srv", True),
        (["CMD", "./tools/run"], [], "/srv", True),
        (["CMD", "tools/run"], ["PATH=/srv"], "/", False),  # the old copy found it
        (["CMD", "run"], ["PATH=:/usr/bin"], "/srv/tools", True),  # the old copy: no
        (["CMD", "data.txt"], ["PATH=/srv"], "/", False),  # not executable
        (["CMD", "app"], ["PATH="], "/", False),  # the old copy used the default
    ],
)
def test_lint_healthcheck_and_preflight_agree_with_which(
    healthcheck: list[str], env: list[str], workdir: str, found: bool
) -> None:
    tree = _tree()
    config = _config(Healthcheck={"Test": healthcheck}, Env=env, WorkingDir=workdir)
    lint = list(checks.healthcheck(checks.LintInput(config, tree)))
    assert (lint == []) is found, lint
    run = _config(Entrypoint=healthcheck[1:], Env=env, WorkingDir=workdir)
    if found:
        check_program("app:1", run, tree)
    else:
        with pytest.raises(ImageUnrunnable, match="entrypoint program"):
            check_program("app:1", run, tree)


def test_the_planner_keeps_what_which_finds_from_the_working_dir() -> None:
    tree = _tree()
    config = _config(Entrypoint=["run"], Env=["PATH=tools:/usr/bin"], WorkingDir="/srv")
    assert "/srv/tools/run" in [p for p, _ in config_paths(tree, config)]
    config = _config(Entrypoint=["./tools/run"], WorkingDir="/srv")  # the old copy: none
    assert "/srv/tools/run" in [p for p, _ in config_paths(tree, config)]
