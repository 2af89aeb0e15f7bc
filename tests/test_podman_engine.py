"""The core of the end-to-end tier against Podman (`pytest -m podman`): the installed
`slim` with DOCKER_HOST at `podman system service` (tests/podman_kit.py).

A serving fixture and a batch fixture are slimmed and verified, and pass their wider
held-out probes on the slim image; a static binary migrates onto the smallest
distroless base with its Dockerfile built (by Podman's buildah) and verified; a
verification failure, Ctrl-C and a killed run leave nothing once `slim cleanup` ran;
the output is found under the name the summary prints. The last test asserts that
Podman's store then holds nothing slimmer made but its tagged outputs and bases.
"""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from slimmer.bases.build import FLAVOUR_LABEL
from slimmer.engine import LABEL, Engine
from slimmer.errors import ImageNotFound
from slimmer.model import SOURCE_LABEL
from slimmer.trace.proberun import run_probes_on_image
from slimmer.trace.probes import load_probe_file
from tests.installed import ROOT, popen_slim, run_slim
from tests.podman_kit import Podman, container_ids, image_ids
from tests.private_engine import env_var

pytestmark = [pytest.mark.podman, pytest.mark.engine, pytest.mark.e2e]
OUT = "slimmer-test/podman"
SLIMMED = ["py-http", "py-batch"]  # a serving fixture and a batch one
SCHEMA = "slimmer.slim/v3"


@dataclass(frozen=True)
class Slimmed:
    run: subprocess.CompletedProcess[str]
    report: dict[str, Any]
    output: str


def _probes(name: str) -> str:
    return str(ROOT / "fixtures" / name / "probe.toml")


def _slim(podman: Podman, tag: str, out: str, probes: str, tmp: Path, *extra: str) -> Slimmed:
    res = run_slim(
        tag, "-o", out, "--probes", probes, "--report-dir", str(tmp), *extra,
        env={"DOCKER_HOST": podman.host},
    )  # fmt: skip
    path = tmp / "report.json"
    return Slimmed(res, json.loads(path.read_text()) if path.exists() else {}, out)


def _heldout_failures(engine: Engine, name: str, image: str) -> list[str]:
    spec = load_probe_file(ROOT / "fixtures" / name / "probe.toml")
    return [r.probe.label for r in run_probes_on_image(engine, image, spec, heldout=True)
            if not r.ok]  # fmt: skip


def _podman_cli(*args: str) -> str:
    """Podman's own CLI (it reads the same store as the service): a second opinion."""
    res = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.fixture(scope="module")
def outputs() -> list[str]:
    """The output tags the tier made; the last test removes them."""
    return []


@pytest.fixture(scope="module")
def slimmed(
    podman: Podman,
    podman_fixtures: dict[str, str],
    outputs: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Slimmed]:
    done = {}
    for name in SLIMMED:
        out = f"{OUT}-{name}:slim"
        outputs.append(out)
        tmp = tmp_path_factory.mktemp(f"podman-{name}")
        done[name] = _slim(podman, podman_fixtures[name], out, _probes(name), tmp)
    return done


def test_slim_version_names_podman(podman: Podman) -> None:
    res = run_slim("--version", env={"DOCKER_HOST": podman.host})
    assert res.returncode == 0, res.stderr
    cli = _podman_cli("--version").split()[-1]  # "podman version 4.3.1"
    assert res.stdout.splitlines()[1] == f"engine: Podman {cli}, API 1.41"


@pytest.mark.parametrize("name", SLIMMED)
def test_the_report_names_podman(name: str, slimmed: dict[str, Slimmed]) -> None:
    cli = _podman_cli("--version").split()[-1]
    assert slimmed[name].report["engine"] == f"Podman {cli}"


@pytest.mark.parametrize("name", SLIMMED)
def test_fixture_slims_verifies_and_survives_heldout(
    name: str, podman: Podman, podman_fixtures: dict[str, str], slimmed: dict[str, Slimmed]
) -> None:
    item = slimmed[name]
    assert item.run.returncode == 0, item.run.stderr
    assert item.report["schema"] == SCHEMA
    assert item.report["verification"]["status"] == "passed"
    source = podman.engine.inspect_image(podman_fixtures[name])
    assert source.id == item.report["source"]["id"], "the input image is never changed"
    assert podman.engine.inspect_image(item.output).id == item.report["result"]["id"]
    assert _heldout_failures(podman.engine, name, item.output) == []


@pytest.mark.parametrize("name", SLIMMED)
def test_output_is_found_under_the_name_the_summary_prints(
    name: str, podman: Podman, slimmed: dict[str, Slimmed]
) -> None:
    """The summary prints the name as the user wrote it; Podman stores a short name
    as `localhost/NAME` (as `podman tag` does) and finds it by the short name, through
    its API and its own CLI alike, before any registry."""
    item = slimmed[name]
    (line,) = [x for x in item.run.stdout.splitlines() if x.startswith("Result ")]
    printed = line.split()[1]
    assert printed == item.output == item.report["result"]["ref"]
    image_id = item.report["result"]["id"]
    assert podman.engine.inspect_image(printed).id == image_id
    assert _podman_cli("image", "inspect", "--format", "{{.Id}}", printed).strip() == (
        image_id.removeprefix("sha256:")
    )
    assert podman.engine.inspect_image(printed).tags == (f"localhost/{item.output}",)


def test_distroless_migration_with_its_dockerfile(
    podman: Podman, podman_fixtures: dict[str, str], outputs: list[str], tmp_path: Path
) -> None:
    """c-static onto the smallest base (`--base auto` picks static); the Dockerfile
    slimmer writes is built by Podman (buildah) and passes the probes; the build's
    intermediate stage image is removed (Engine.build), so nothing dangles."""
    out = f"{OUT}-c-static:distroless"
    outputs.append(out)
    dockerfile = tmp_path / "build" / "Dockerfile"
    item = _slim(
        podman, podman_fixtures["c-static"], out, _probes("c-static"), tmp_path,
        "--base", "auto", "--dockerfile", str(dockerfile),
    )  # fmt: skip
    assert item.run.returncode == 0, item.run.stderr
    assert item.report["verification"]["status"] == "passed"
    assert item.report["base"]["flavour"] == "static"
    assert item.report["dockerfile"]["verification"] == "passed"
    assert "FROM " in dockerfile.read_text()
    info = podman.engine.inspect_image(out)
    assert info.labels["io.slimmer.base.id"] == item.report["base"]["id"]
    assert _heldout_failures(podman.engine, "c-static", out) == []
    dangling = podman.engine._api.images(all=True, filters={"dangling": True, "label": LABEL})
    assert dangling == []


def test_verification_failure_leaves_nothing(
    podman: Podman, podman_fixtures: dict[str, str], tmp_path: Path
) -> None:
    before = set(podman.engine.leftovers())
    out = f"{OUT}-py-http:broken"
    item = _slim(
        podman, podman_fixtures["py-http"], out, _probes("py-http"), tmp_path,
        "--exclude", "/usr/share/zoneinfo/Europe/**",
    )  # fmt: skip
    assert item.run.returncode == 4, item.run.stderr
    assert item.report["verification"]["status"] == "failed"
    assert not podman.engine.image_exists(out)
    assert set(podman.engine.leftovers()) <= before
    assert _untagged_slim_images(podman.engine) == [], item.run.stderr


def _untagged_slim_images(engine: Engine) -> list[str]:
    """Slim images (they carry the source label) no tag names: a run's round images."""
    found = engine._api.images(all=True, filters={"label": SOURCE_LABEL})
    return [f"{i['Id']} created {i.get('Created')} labels {i.get('Labels')}"
            for i in found if not _tagged(i)]  # fmt: skip


def _tagged(image: dict[str, Any]) -> bool:
    return any(t != "<none>:<none>" for t in image.get("RepoTags") or ())


def _run_until(podman: Podman, tag: str, out: str, trigger: str) -> subprocess.Popen[str]:
    """Start `slim TAG -o OUT` against Podman and return once it printed `trigger`."""
    with env_var("DOCKER_HOST", podman.host):
        proc = popen_slim(
            tag, "-o", out, "--probes", _probes("c-static"),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.strip() == trigger:
            return proc
    proc.wait(timeout=60)
    pytest.fail(f"never saw {trigger!r}: {''.join(seen)}")


@pytest.mark.parametrize("stage", ["slim: tracing: probing", "slim: verifying: probing"])
def test_ctrl_c_leaves_nothing(podman: Podman, podman_fixtures: dict[str, str], stage: str) -> None:
    """SIGINT mid-run (a traced container running; then a slim image loaded and its
    container running): slimmer removes both before it exits, on Podman as on dockerd."""
    before = (container_ids(podman.engine), set(podman.engine.leftovers()))
    out = f"{OUT}-c-static:interrupted"
    proc = _run_until(podman, podman_fixtures["c-static"], out, stage)
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 130, rest
    assert "Traceback" not in rest
    assert not podman.engine.image_exists(out)
    assert (container_ids(podman.engine), set(podman.engine.leftovers())) == before
    assert _untagged_slim_images(podman.engine) == [], rest


def test_slim_cleanup_removes_a_killed_runs_leftovers(
    podman: Podman, podman_fixtures: dict[str, str]
) -> None:
    """SIGKILL gives slimmer no chance to clean up: the running container and the
    loaded slim image stay, labelled; `slim cleanup` finds and removes them."""
    out = f"{OUT}-c-static:killed"
    proc = _run_until(podman, podman_fixtures["c-static"], out, "slim: verifying: probing")
    proc.kill()
    proc.communicate(timeout=60)
    left = podman.engine.leftovers()
    # the slim image is a leftover too unless an image of the same ID is tagged (the
    # same input gives the same image ID): then it is that image, not a leftover
    assert "container" in {item.kind for item in left}, left
    res = run_slim("cleanup", env={"DOCKER_HOST": podman.host}, timeout=120)
    assert res.returncode == 0, res.stderr
    for item in left:
        assert f"removed {item.kind} {item.id[:12]}" in res.stdout, (item, res.stdout)
    assert podman.engine.leftovers() == []
    assert _untagged_slim_images(podman.engine) == []


def test_save_and_load_round_trip(podman: Podman, podman_fixtures: dict[str, str]) -> None:
    """Podman's `save` is read by slimmer's reader and its `load` answers with the
    name it stored (`localhost/...`), and the same image ID: the reading and loading
    phases of every run above rely on both."""
    tag = podman_fixtures["c-static"]
    image_id = podman.engine.inspect_image(tag).id
    with tempfile.TemporaryFile() as archive:
        assert podman.engine.save_image(tag, archive) > 0
        archive.seek(0)
        loaded = podman.engine.load_image(archive)
    assert loaded == [f"localhost/{tag}"]
    assert podman.engine.inspect_image(tag).id == image_id


def test_missing_image_is_named_as_on_dockerd(podman: Podman) -> None:
    """Podman's 404 says "image not known" where dockerd's says "No such image": both
    are ImageNotFound (engine.says_image_missing), and `slim` exits as on dockerd."""
    missing = "slimmer-test/no-such-image:1"
    with pytest.raises(ImageNotFound), tempfile.TemporaryFile() as archive:
        podman.engine.save_image(missing, archive)
    with pytest.raises(ImageNotFound):
        podman.engine.tag_image(missing, f"{OUT}:never")
    res = run_slim(missing, "-o", f"{OUT}:never", env={"DOCKER_HOST": podman.host})
    assert res.returncode == 1 and "no such image" in res.stderr, res.stderr


def test_podman_holds_nothing_slimmer_made_but_its_tagged_outputs(
    podman: Podman, podman_fixtures: dict[str, str], outputs: list[str]
) -> None:
    """Last: `podman ps -a` holds no container it did not hold before the tier, and
    `podman images -a` no image but the fixtures copied in, slimmer's distroless bases
    and the tagged outputs; with the outputs removed, no image slimmer made is left."""
    assert container_ids(podman.engine) <= podman.containers_before
    new = image_ids(podman.engine) - podman.images_before
    allowed = {podman.engine.inspect_image(t).id for t in podman_fixtures.values()}
    allowed |= {podman.engine.inspect_image(t).id for t in outputs if podman.engine.image_exists(t)}
    bases = podman.engine._api.images(filters={"label": FLAVOUR_LABEL})
    allowed |= {str(i["Id"]) for i in bases if _tagged(i)}
    assert new <= allowed, new - allowed
    for tag in outputs:
        podman.engine.remove_image(tag, force=True)
    assert podman.engine.leftovers() == []
    assert _untagged_slim_images(podman.engine) == []
