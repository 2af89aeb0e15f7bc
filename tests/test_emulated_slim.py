"""linux/arm64 images slimmed under emulation, through the installed CLI.

Each arm64 fixture (`FOREIGN_FIXTURES`, built on the arm64 Debian base under
qemu-user) is slimmed by the `slim` a user installs, on this amd64 engine: the
preflight lets it through because the engine runs linux/arm64 under emulation, the
host's strace traces qemu (which makes the guest's file calls), qemu's own calls are
dropped, and the probe timeouts scale by `EMULATED_TIMEOUT_FACTOR`. The slim image
must be arm64, verify, and pass the held-out probes (run under emulation too).
One of them (`MIGRATED`) also moves onto the arm64 distroless base with `--base auto`.

Sizes and the tracing phase's seconds are printed and recorded as properties (the
emulated-run slowdown in the report compares them with the same fixture's native
run); nothing asserts a wall-clock time."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from slimmer.bases.build import base_tag
from slimmer.bases.recipe import FLAVOURS
from slimmer.engine import Engine
from slimmer.model import MANAGED_LABEL
from slimmer.pipeline.emulation import exit_program
from slimmer.trace.proberun import run_probes_on_image
from slimmer.trace.probes import load_probe_file
from slimmer.trace.sensor import EMULATED_TIMEOUT_FACTOR
from tests.fixtures_build import FOREIGN_FIXTURES
from tests.installed import run_slim

pytestmark = [pytest.mark.engine, pytest.mark.e2e, pytest.mark.emulated]

ROOT = Path(__file__).resolve().parent.parent
MIGRATED = "py-http"  # the arm64 fixture migrated to distroless (--base auto)


@pytest.fixture
def out_tag(engine: Engine) -> Iterator[list[str]]:
    tags: list[str] = []
    before = set(engine.leftovers())
    yield tags
    for tag in tags:
        engine.remove_image(tag, force=True)
    assert set(engine.leftovers()) <= before, "slimmer left containers or images behind"


def _phase(report: dict[str, Any], name: str) -> float:
    return float(sum(p["seconds"] for p in report["phases"] if p["name"] == name))


@pytest.mark.parametrize("name", FOREIGN_FIXTURES)
def test_arm64_fixture_slims_verifies_and_survives_heldout_under_emulation(
    name: str,
    engine: Engine,
    arm64_images: dict[str, str],
    out_tag: list[str],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    source = arm64_images[name]
    source_id = engine.inspect_image(source).id
    out = f"slimmer-test/{name}-arm64:slim"
    out_tag.append(out)
    probes = ROOT / "fixtures" / name / "probe.toml"
    res = run_slim(source, "-o", out, "--probes", str(probes), "--report-dir", str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verification"]["status"] == "passed"
    factor = f"probe timeouts scaled x{EMULATED_TIMEOUT_FACTOR:g}"
    assert any("ran under emulation" in w and factor in w for w in report["warnings"])
    assert engine.inspect_image(source).id == source_id, "the input image is never changed"
    written = engine.inspect_image(out)
    assert (written.os, written.architecture) == ("linux", "arm64")
    assert written.id == report["result"]["id"]
    spec = load_probe_file(probes)
    timeout = spec.timeout * EMULATED_TIMEOUT_FACTOR
    heldout = run_probes_on_image(engine, out, spec, heldout=True, timeout=timeout)
    assert heldout, f"{name}: no held-out probes"
    assert [r.probe.label for r in heldout if not r.ok] == []
    before, after = report["source"]["size_bytes"], report["result"]["size_bytes"]
    assert after < before
    tracing = _phase(report, "tracing")
    for key, value in (("before", before), ("after", after), ("tracing_s", tracing)):
        record_property(key, value)
    print(
        f"\n{name} arm64: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB, "
        f"tracing {tracing:.1f}s, phases "
        + ", ".join(f"{p['name']} {p['seconds']:.1f}s" for p in report["phases"])
    )


@pytest.fixture
def arm64_bases_kept(engine: Engine) -> Iterator[None]:
    """The arm64 base tags the engine has afterwards are the ones it had before: a
    base `--base auto` built on demand is removed again."""
    tags = [base_tag(f, "arm64") for f in FLAVOURS]
    before = {t for t in tags if engine.image_exists(t)}
    yield
    for tag in tags:
        if tag not in before and engine.image_exists(tag):
            engine.remove_image(tag)


def test_arm64_fixture_migrates_onto_the_arm64_base_under_emulation(
    engine: Engine,
    arm64_images: dict[str, str],
    arm64_bases_kept: None,
    out_tag: list[str],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """`--base auto` on an arm64 image picks the arm64 base (built from Debian's arm64
    packages when the engine has none); the result is arm64, verifies, keeps the
    base's layers as they are and passes the held-out probes under emulation."""
    name = MIGRATED
    out = f"slimmer-test/{name}-arm64:distroless"
    out_tag.append(out)
    probes = ROOT / "fixtures" / name / "probe.toml"
    res = run_slim(
        arm64_images[name], "-o", out, "--probes", str(probes), "--base", "auto",
        "--report-dir", str(tmp_path),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verification"]["status"] == "passed"
    base = report["base"]
    assert base["flavour"] in ("base-nossl", "base") and base["ref"].endswith("-arm64")
    base_info = engine.inspect_image(base["ref"])
    assert (base_info.architecture, base_info.id) == ("arm64", base["id"])
    written = engine.inspect_image(out)
    assert (written.os, written.architecture) == ("linux", "arm64")
    ours, theirs = _layers(engine, out), _layers(engine, base["ref"])
    assert ours[: len(theirs)] == theirs and len(ours) == len(theirs) + 1
    spec = load_probe_file(probes)
    timeout = spec.timeout * EMULATED_TIMEOUT_FACTOR
    heldout = run_probes_on_image(engine, out, spec, heldout=True, timeout=timeout)
    assert heldout, f"{name}: no held-out probes"
    assert [r.probe.label for r in heldout if not r.ok] == []
    before, after = report["source"]["size_bytes"], report["result"]["size_bytes"]
    assert after < before
    for key, value in (("before", before), ("after", after), ("base", base["ref"])):
        record_property(key, value)
    print(f"\n{name} arm64 on {base['ref']}: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")


def _layers(engine: Engine, ref: str) -> list[str]:
    raw = engine._api.inspect_image(ref)  # the layer digests: not a stage's concern
    return list(raw["RootFS"]["Layers"])


def _foreign_image(arch: str, tag: str) -> bytes:
    """A `docker save` archive of one image that says it is for linux/`arch`."""
    layer = _tar({"app": exit_program("arm64")})
    diff_id = hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Entrypoint": ["/app"], "Labels": {MANAGED_LABEL: "temporary"}},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
    }
    raw = json.dumps(config).encode()
    manifest = [{"Config": "config.json", "RepoTags": [tag], "Layers": ["layer.tar"]}]
    return _tar(
        {"config.json": raw, "manifest.json": json.dumps(manifest).encode(), "layer.tar": layer}
    )


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_a_platform_the_engine_cannot_be_shown_to_run_is_refused_with_exit_6(
    engine: Engine, out_tag: list[str]
) -> None:
    """linux/s390x: slimmer has no check program for it, so it cannot prove the engine
    emulates it; the refusal names the platform and how to enable emulation."""
    tag = "slimmer-test/s390x-app:1"
    engine.load_image(_foreign_image("s390x", tag))
    out_tag.append(tag)
    res = run_slim(tag, "-o", "slimmer-test/s390x-app:slim")
    assert res.returncode == 6, res.stderr
    assert "built for linux/s390x" in res.stderr
    assert "cannot run linux/s390x under emulation" in res.stderr
    assert "qemu-user-static" in res.stderr and "binfmt" in res.stderr
    assert not engine.image_exists("slimmer-test/s390x-app:slim")
