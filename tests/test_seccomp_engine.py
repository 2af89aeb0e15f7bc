"""`--seccomp` against the real engine: a serving fixture slims and verifies under its
profile, its held-out probes pass under it (sent through the API as `docker run
--security-opt seccomp=FILE` sends it), and the profile is enforced: a path that
makes a call outside it fails, and the diagnosis names the call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from slimmer import api
from slimmer.engine import Engine
from slimmer.model import ImageConfig
from slimmer.pipeline.seccomp import SeccompState
from slimmer.pipeline.slim import SlimOptions, SlimResult
from slimmer.seccomp.profile import Evidence
from slimmer.trace.probes import ProbeSpec, load_probe_file
from slimmer.trace.tracer import SeccompRun, run_traced

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parent.parent
SERVING = ("py-http",)  # the serving fixtures run here (CI time: one is enough today)
# A path no probe of py-http takes: getpriority(2), allowed by the engine's default
# profile and by no runtime group of ours.
UNUSUAL = ProbeSpec(
    kind="exec",
    name="getpriority",
    cmd=("python3", "-c", "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"),
    expect_exit=0,
)


@pytest.fixture(scope="module")
def slimmed(
    engine: Engine, fixture_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[SlimResult, Path]]]:
    out: dict[str, tuple[SlimResult, Path]] = {}
    for name in SERVING:
        path = tmp_path_factory.mktemp(name) / "seccomp.json"
        spec = load_probe_file(ROOT / "fixtures" / name / "probe.toml")
        opts = SlimOptions(
            output=f"slimmer-seccomp-test/{name}:slim",
            probes=spec.probes,
            timeout=spec.timeout,
            seccomp=path,
        )
        out[name] = (api.slim(fixture_images[name], opts), path)
    yield out
    for result, _ in out.values():
        engine.remove_image(result.output, force=True)


def _config(engine: Engine, image: str) -> ImageConfig:
    info = engine.inspect_image(image)
    return ImageConfig({"config": dict(info.config), "architecture": info.architecture})


@pytest.mark.parametrize("name", SERVING)
def test_slims_and_verifies_under_its_profile(
    name: str, slimmed: dict[str, tuple[SlimResult, Path]], engine: Engine
) -> None:
    result, path = slimmed[name]
    assert result.verified is True and result.tagged
    assert result.seccomp is not None and path.exists()
    profile = result.seccomp.profile
    assert 0 < len(profile.allowed) < profile.default_count
    spec = load_probe_file(ROOT / "fixtures" / name / "probe.toml")
    held = run_traced(
        engine,
        result.output,
        _config(engine, result.output),
        spec.heldout,
        spec.timeout,
        traced=False,
        seccomp=SeccompRun(profile=path.read_text()),
    )
    assert [r.probe.label for r in held.results if not r.ok] == []


def test_a_call_outside_the_profile_is_refused_and_named(
    slimmed: dict[str, tuple[SlimResult, Path]], engine: Engine
) -> None:
    result, path = slimmed["py-http"]
    assert result.seccomp is not None and "getpriority" not in result.seccomp.profile.names
    config = _config(engine, result.output)
    free = run_traced(engine, result.output, config, [UNUSUAL], traced=False)
    assert free.results[0].ok  # the path works without the profile
    under = run_traced(
        engine, result.output, config, [UNUSUAL], traced=False,
        seccomp=SeccompRun(profile=path.read_text()),
    )  # fmt: skip
    assert not under.results[0].ok
    assert b"PermissionError" in under.results[0].output
    # the diagnosis slimmer runs on a failed probe: traced, under the profile plus the
    # sensor's own calls; the EPERM of a call outside the profile names it
    state = SeccompState(config.architecture or "amd64", _evidence_of(result))
    diag = run_traced(engine, result.output, config, [UNUSUAL], seccomp=state.diagnosing())
    assert [r.call for r in state.refused(diag.traces)] == ["getpriority"]


def _evidence_of(result: SlimResult) -> Evidence:
    """Evidence that rebuilds the written profile exactly: each allowed call as traced."""
    assert result.seccomp is not None
    return Evidence(result.seccomp.profile.names)
