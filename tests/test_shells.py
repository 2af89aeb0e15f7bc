"""`paths.SHELLS`, the one list of shells. Its copies were the planner's and the
shell-script expander's (sh, bash, dash, ash, busybox, zsh, ksh, mksh) and
`slim inspect`'s (those and fish, tcsh, csh): an image whose only shell was
/bin/csh was reported as holding a shell, yet a `csh -c` HEALTHCHECK's commands
were not kept. The longer list serves both (see `paths.SHELLS`)."""

from __future__ import annotations

from slimmer.analyse import inspect
from slimmer.findings import checks
from slimmer.image import paths
from slimmer.model import ImageConfig
from slimmer.plan import planner
from slimmer.plan.expanders import system
from tests.memtree import File, Link, MemTree

ELF = b"\x7fELF" + b"\x00" * 12


def test_every_user_of_the_list_has_the_same_one() -> None:
    for module in (inspect, checks, planner, system):
        assert vars(module)["SHELLS"] is paths.SHELLS, module.__name__
    assert {"sh", "bash", "dash", "busybox", "fish", "csh", "tcsh"} <= set(paths.SHELLS)


def test_a_csh_healthcheck_is_scanned_and_csh_is_reported() -> None:
    tree = MemTree(
        {
            "/bin": Link("usr/bin"),
            "/usr/bin/csh": Link("tcsh"),
            "/usr/bin/tcsh": File(ELF),
            "/usr/bin/curl": File(ELF),
        }
    )
    config = ImageConfig(
        {"config": {"Healthcheck": {"Test": ["CMD", "csh", "-c", "curl -f localhost"]}}}
    )
    kept = [p for p, _ in planner.config_paths(tree, config)]
    assert "/usr/bin/curl" in kept
    assert inspect.named_binaries(tree, paths.SHELLS) == ("/usr/bin/tcsh",)
    found = list(checks.shells(checks.LintInput(config, tree)))
    assert [f.evidence for f in found] == ["/usr/bin/tcsh"]
