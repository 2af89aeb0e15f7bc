"""`slim REF -o OUT --platform all --push` on a two-platform index in a registry.

Each fixture that exists for both platforms (`FOREIGN_FIXTURES`: py-http, an
interpreted service; nginx-static, an ELF program with shared libraries) is pushed
to a test registry as one index (linux/amd64 + linux/arm64; tests/registry_kit.py
composes it by hand). The installed `slim` then slims and verifies each platform
(arm64 under qemu-user), pushes each slim image and one index of them. What the
registry holds afterwards is read with plain `requests` (not slimmer's client); the
held-out probes run on each platform's slim image, the arm64 one after a
`pull --platform linux/arm64` of the pushed index through the engine API."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from slimmer.engine import Engine
from slimmer.report.platforms_view import SCHEMA as PLATFORMS_SCHEMA
from slimmer.trace.proberun import run_probes_on_image
from slimmer.trace.probes import load_probe_file
from slimmer.trace.sensor import EMULATED_TIMEOUT_FACTOR
from tests.fixtures_build import FOREIGN_FIXTURES
from tests.installed import run_slim
from tests.registry_kit import (
    LocalRegistry,
    get_manifest,
    plain_registry,
    push_index_to,
    tls_registry,
)

__all__ = ["plain_registry", "tls_registry"]  # the fixtures, for pytest

pytestmark = [pytest.mark.engine, pytest.mark.e2e, pytest.mark.emulated]

ROOT = Path(__file__).resolve().parent.parent


class Cleanup(list[str]):
    """Refs to remove after the test (tags of slim images, images pulled); `reports`:
    the report directories of its runs; `ids`: other image IDs its runs made."""

    reports: list[Path]
    ids: set[str]


@pytest.fixture
def cleanup(engine: Engine) -> Iterator[Cleanup]:
    refs = Cleanup()
    refs.reports, refs.ids = [], set()
    before = {x.id for x in engine.leftovers() if x.kind == "image"}
    yield refs
    for ref in refs:
        engine.remove_image(ref, force=True)
    # Only the images this test's runs made count: other helpers' runs share this engine
    # (and slim the same fixtures), their temporary images coming and going meanwhile.
    made = set(refs.ids)
    for f in (f for d in refs.reports for f in d.glob("*/report.json")):
        doc = json.loads(f.read_text())
        made |= {doc["result"]["id"], *(r["image_id"] for r in doc["verification"]["rounds"])}
    extra = [x for x in engine.leftovers() if x.kind == "image" and x.id not in before]
    assert [x for x in extra if x.id in made] == [], "slimmer left images behind"


IndexPusher = Callable[[str, str], tuple[str, dict[str, str]]]


@pytest.fixture
def two_platform_index(
    engine: Engine,
    plain_registry: LocalRegistry,
    fixture_images: dict[str, str],
    arm64_images: dict[str, str],
) -> IndexPusher:
    """Push fixture NAME's amd64 and arm64 images to the plain registry as one index at
    REPO:TAG; the index's ref and each platform's manifest digest."""

    def push(name: str, at: str) -> tuple[str, dict[str, str]]:
        images = {"linux/amd64": fixture_images[name], "linux/arm64": arm64_images[name]}
        return push_index_to(engine, images, plain_registry, at)

    return push


def _platforms(raw: bytes) -> dict[str, str]:
    doc = json.loads(raw)
    return {
        f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
        for m in doc["manifests"]
    }


def _tags(reg: LocalRegistry, repo: str) -> list[str]:
    with requests.Session() as s:
        s.trust_env = False
        if reg.ca is not None:
            s.verify, s.auth = str(reg.ca), (reg.user, reg.password)
        scheme = "https" if reg.ca is not None else "http"
        resp = s.get(f"{scheme}://{reg.host}/v2/{repo}/tags/list")
        resp.raise_for_status()
        return sorted(resp.json().get("tags") or [])


def _heldout(engine: Engine, image: str, name: str, emulated: bool) -> None:
    spec = load_probe_file(ROOT / "fixtures" / name / "probe.toml")
    timeout = spec.timeout * (EMULATED_TIMEOUT_FACTOR if emulated else 1)
    results = run_probes_on_image(engine, image, spec, heldout=True, timeout=timeout)
    assert results, f"{name}: no held-out probes"
    assert [r.probe.label for r in results if not r.ok] == [], f"{image}: held-out failed"


def _slim_index(
    engine: Engine,
    reg: LocalRegistry,
    name: str,
    fixture_images: dict[str, str],
    arm64_images: dict[str, str],
    cleanup: Cleanup,
    report_dir: Path,
    env: dict[str, str] | None = None,
) -> tuple[str, str, dict[str, Any], Any]:
    """Push NAME's index, run the Done-when command on it; the source ref, the output
    ref, the combined report and the finished process."""
    images = {"linux/amd64": fixture_images[name], "linux/arm64": arm64_images[name]}
    source, _ = push_index_to(engine, images, reg, f"mp/{name}:1")
    out = f"{reg.host}/mp/{name}:1-slim"
    cleanup.extend([out, f"{out}-arm64"])
    probes = ROOT / "fixtures" / name / "probe.toml"
    args = [source, "-o", out, "--platform", "all", "--push", "--probes", str(probes)]
    cleanup.reports.append(report_dir)
    res = run_slim(*args, "--report-dir", str(report_dir), env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((report_dir / "report.json").read_text())
    return source, out, report, res


def _check_pushed(
    engine: Engine,
    reg: LocalRegistry,
    name: str,
    out: str,
    report: dict[str, Any],
    cleanup: Cleanup,
) -> None:
    assert report["schema"] == PLATFORMS_SCHEMA
    assert report["verdict"] == "passed"
    by = {p["platform"]: p for p in report["platforms"]}
    assert set(by) == {"linux/amd64", "linux/arm64"}
    assert [by[p]["verification"] for p in sorted(by)] == ["passed", "passed"]
    assert (by["linux/amd64"]["emulated"], by["linux/arm64"]["emulated"]) == (False, True)
    for p in by.values():
        assert p["after_bytes"] < p["before_bytes"]
        own = json.loads((Path(report["_dir"]) / p["report"]).read_text())
        assert own["schema"].startswith("slimmer.slim/")
        assert own["verification"]["status"] == "passed"
    # the registry: one index at the tag, naming both slim images, no other tag
    repo = f"mp/{name}"
    raw, media = get_manifest(reg, repo, "1-slim")
    assert media in (
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    )
    listed = _platforms(raw)
    assert listed == {p: by[p]["pushed_digest"] for p in by}
    assert report["pushed"]["digest"] == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert _tags(reg, repo) == ["1", "1-slim"]
    # amd64 natively: the slim image tagged OUT on this engine passes the held-out probes
    assert engine.inspect_image(out).architecture == "amd64"
    _heldout(engine, out, name, emulated=False)
    # arm64 under emulation: pulled from the pushed index by platform, it runs
    engine.remove_image(out)
    engine.remove_image(f"{out}-arm64")
    auth = {"username": reg.user, "password": reg.password} if reg.user else None
    engine.pull_image(out, auth, "linux/arm64")
    pulled = engine.inspect_image(out)
    assert (pulled.os, pulled.architecture) == ("linux", "arm64")
    assert pulled.id == by["linux/arm64"]["output_id"]
    _heldout(engine, out, name, emulated=True)


@pytest.mark.parametrize("name", FOREIGN_FIXTURES)
def test_an_index_is_slimmed_per_platform_and_pushed_as_one_index(
    name: str,
    engine: Engine,
    plain_registry: LocalRegistry,
    fixture_images: dict[str, str],
    arm64_images: dict[str, str],
    cleanup: Cleanup,
    tmp_path: Path,
) -> None:
    ids = {engine.inspect_image(i).id for i in (fixture_images[name], arm64_images[name])}
    _, out, report, res = _slim_index(
        engine, plain_registry, name, fixture_images, arm64_images, cleanup, tmp_path
    )
    report["_dir"] = str(tmp_path)
    assert "2 of 2 platform(s) verified" in res.stdout
    _check_pushed(engine, plain_registry, name, out, report, cleanup)
    after = {engine.inspect_image(i).id for i in (fixture_images[name], arm64_images[name])}
    assert after == ids, "the input images are never changed"
    for p in report["platforms"]:  # pulled by digest for the run, removed after it
        assert not engine.image_exists(p["source"])
    print(
        f"\n{name}: "
        + "; ".join(
            f"{p['platform']} {p['before_bytes'] / 1e6:.1f} MB -> {p['after_bytes'] / 1e6:.1f} MB"
            f" in {p['seconds']:.1f}s ("
            + ", ".join(f"{k} {v:.1f}s" for k, v in p["phases"].items())
            + ")"
            for p in report["platforms"]
        )
    )


def test_an_index_is_slimmed_and_pushed_to_the_tls_registry_with_config_json_credentials(
    engine: Engine,
    tls_registry: LocalRegistry,
    fixture_images: dict[str, str],
    arm64_images: dict[str, str],
    cleanup: Cleanup,
    tmp_path: Path,
) -> None:
    name = "nginx-static"
    env = tls_registry.docker_config(tmp_path / "docker")
    reports = tmp_path / "reports"
    _, out, report, res = _slim_index(
        engine, tls_registry, name, fixture_images, arm64_images, cleanup, reports, env
    )
    report["_dir"] = str(reports)
    _check_pushed(engine, tls_registry, name, out, report, cleanup)
    secrets = (tls_registry.password, tls_registry.auth_b64)
    outputs = {"stdout": res.stdout, "stderr": res.stderr}
    outputs |= {str(f): f.read_text(errors="replace") for f in reports.rglob("*") if f.is_file()}
    assert len(outputs) >= 2 + 3 * 3, sorted(outputs)  # combined + one report per platform
    leaked = [where for where, text in outputs.items() for s in secrets if s in text]
    assert leaked == []


def test_a_platform_the_engine_cannot_run_is_refused_with_exit_6_and_nothing_is_pushed(
    engine: Engine,
    plain_registry: LocalRegistry,
    fixture_images: dict[str, str],
    cleanup: Cleanup,
) -> None:
    from tests.test_emulated_slim import _foreign_image

    tag = "slimmer-test/s390x-app:mp"
    engine.load_image(_foreign_image("s390x", tag))
    cleanup.append(tag)
    images = {"linux/amd64": fixture_images["nginx-static"], "linux/s390x": tag}
    source, _ = push_index_to(engine, images, plain_registry, "mp/s390x:1")
    out = f"{plain_registry.host}/mp/s390x:1-slim"
    cleanup.append(out)
    res = run_slim(source, "-o", out, "--platform", "all", "--push")
    assert res.returncode == 6, res.stderr[-2000:]
    assert "linux/s390x" in res.stderr and "qemu-user-static" in res.stderr
    assert "binfmt" in res.stderr
    assert not engine.image_exists(out)
    assert _tags(plain_registry, "mp/s390x") == ["1"], "nothing is pushed"


def test_without_platform_a_pulled_index_is_slimmed_on_what_the_engine_runs(
    engine: Engine,
    plain_registry: LocalRegistry,
    fixture_images: dict[str, str],
    cleanup: Cleanup,
    tmp_path: Path,
) -> None:
    """The default: every platform of the index the engine runs (amd64 here), and one
    line naming the one it skipped (s390x, which it cannot show it emulates)."""
    from tests.test_emulated_slim import _foreign_image

    tag = "slimmer-test/s390x-app:mp-default"
    engine.load_image(_foreign_image("s390x", tag))
    cleanup.append(tag)
    images = {"linux/amd64": fixture_images["nginx-static"], "linux/s390x": tag}
    source, digests = push_index_to(engine, images, plain_registry, "mp/default:1")
    out = "slimmer-test/mp-default:slim"
    cleanup.extend([out, f"{out}-s390x"])
    probes = ROOT / "fixtures" / "nginx-static" / "probe.toml"
    cleanup.reports.append(tmp_path)
    res = run_slim(
        source, "-o", out, "--pull", "always", "--probes", str(probes),
        "--report-dir", str(tmp_path),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert "skipped (the engine cannot run them): linux/s390x" in res.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert [p["platform"] for p in report["platforms"]] == ["linux/amd64"]
    assert report["skipped"] == ["linux/s390x"] and report["pushed"] is None
    assert report["platforms"][0]["source"].endswith(digests["linux/amd64"])
    assert engine.inspect_image(out).architecture == "amd64"
    assert not engine.image_exists(f"{out}-s390x")


def test_when_a_platform_does_not_verify_nothing_is_pushed_and_the_exit_is_4(
    engine: Engine,
    plain_registry: LocalRegistry,
    two_platform_index: IndexPusher,
    cleanup: Cleanup,
    tmp_path: Path,
) -> None:
    """The stylesheet the probes fetch is excluded: every platform's slim image answers
    404 where the original answered 200, so none is tagged and nothing is pushed."""
    name = "nginx-static"
    source, _ = two_platform_index(name, "mp/failing:1")
    out = f"{plain_registry.host}/mp/failing:1-slim"
    cleanup.extend([out, f"{out}-arm64"])
    probes = ROOT / "fixtures" / name / "probe.toml"
    cleanup.reports.append(tmp_path)
    res = run_slim(
        source, "-o", out, "--platform", "linux/amd64,linux/arm64", "--push",
        "--probes", str(probes), "--exclude", "/srv/www/style.css",
        "--report-dir", str(tmp_path),
    )  # fmt: skip
    assert res.returncode == 4, res.stderr[-3000:]
    assert "nothing was pushed" in res.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verdict"] == "failed" and report["pushed"] is None
    assert [p["verification"] for p in report["platforms"]] == ["failed", "failed"]
    assert not engine.image_exists(out) and not engine.image_exists(f"{out}-arm64")
    assert _tags(plain_registry, "mp/failing") == ["1"], "nothing is pushed"


def test_one_file_options_with_several_platforms_are_a_usage_error_before_any_work(
    engine: Engine,
    plain_registry: LocalRegistry,
    two_platform_index: IndexPusher,
    cleanup: Cleanup,
    tmp_path: Path,
) -> None:
    name = "nginx-static"
    source, digests = two_platform_index(name, "mp/onefile:1")
    out = f"{plain_registry.host}/mp/onefile:1-slim"
    cleanup.extend([out, f"{out}-arm64"])
    res = run_slim(source, "-o", out, "--platform", "all", "--dockerfile", str(tmp_path / "D"))
    assert res.returncode == 2, res.stderr[-2000:]
    assert "--dockerfile name one file" in res.stderr and "2 platforms" in res.stderr
    assert not engine.image_exists(out) and not (tmp_path / "D").exists()
    assert not any(engine.image_exists(f"{source.rsplit(':', 1)[0]}@{d}") for d in digests.values())


def test_one_named_platform_is_tagged_out_and_pushed_as_an_index_of_one(
    engine: Engine,
    plain_registry: LocalRegistry,
    two_platform_index: IndexPusher,
    cleanup: Cleanup,
) -> None:
    name = "nginx-static"
    source, _ = two_platform_index(name, "mp/one:1")
    out = f"{plain_registry.host}/mp/one:1-slim"
    cleanup.extend([out, f"{out}-arm64"])
    probes = ROOT / "fixtures" / name / "probe.toml"
    res = run_slim(
        source, "-o", out, "--platform", "linux/arm64", "--push", "--probes", str(probes)
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "1 of 1 platform(s) verified" in res.stdout
    local = engine.inspect_image(out)
    cleanup.ids.add(local.id)
    assert local.architecture == "arm64"
    assert not engine.image_exists(f"{out}-arm64")
    raw, _ = get_manifest(plain_registry, "mp/one", "1-slim")
    listed = _platforms(raw)
    assert list(listed) == ["linux/arm64"]
    assert any(d.endswith(listed["linux/arm64"]) for d in local.digests)
    assert _tags(plain_registry, "mp/one") == ["1", "1-slim"]


def test_base_auto_puts_each_platform_on_the_base_of_its_own_platform(
    engine: Engine,
    two_platform_index: IndexPusher,
    cleanup: Cleanup,
    tmp_path: Path,
) -> None:
    """`--base auto` chooses per platform: the amd64 image lands on the amd64 base, the
    arm64 one on the arm64 base (built from Debian's arm64 packages when missing), and
    each verifies and answers its held-out probes."""
    name = "nginx-static"
    source, _ = two_platform_index(name, "mp/based:1")
    out = "slimmer-test/mp-based:slim"
    cleanup.extend([out, f"{out}-arm64"])
    probes = ROOT / "fixtures" / name / "probe.toml"
    cleanup.reports.append(tmp_path)
    res = run_slim(
        source, "-o", out, "--platform", "all", "--base", "auto", "--probes", str(probes),
        "--report-dir", str(tmp_path),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    bases = {}
    for p in report["platforms"]:
        own = json.loads((tmp_path / p["report"]).read_text())
        assert own["verification"]["status"] == "passed"
        bases[p["platform"]] = engine.inspect_image(own["base"]["id"]).architecture
    assert bases == {"linux/amd64": "amd64", "linux/arm64": "arm64"}
    assert engine.inspect_image(out).architecture == "amd64"
    assert engine.inspect_image(f"{out}-arm64").architecture == "arm64"
    _heldout(engine, out, name, emulated=False)
    _heldout(engine, f"{out}-arm64", name, emulated=True)


_WHERE = frozenset({"ref", "source", "repo_tags", "tags"})


def _without(doc: Any) -> Any:
    """`doc` without the keys that name where the image was read from, at any depth."""
    if isinstance(doc, dict):
        return {k: _without(v) for k, v in doc.items() if k not in _WHERE}
    if isinstance(doc, list):
        return [_without(v) for v in doc]
    return doc


def _inspect(*args: str) -> Any:
    res = run_slim("inspect", *args, "--format", "json")
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout)


@pytest.mark.parametrize("name", FOREIGN_FIXTURES)
def test_inspect_of_each_platform_from_the_index_equals_the_pulled_image(
    name: str,
    engine: Engine,
    two_platform_index: IndexPusher,
    cleanup: Cleanup,
) -> None:
    """`slim inspect registry:REF --platform P` reads P's image straight from the index;
    its numbers equal `slim inspect` of that image pulled to the engine by digest."""
    source, digests = two_platform_index(name, f"mp/inspect-{name}:1")
    repo = source.rsplit(":", 1)[0]
    for platform, digest in digests.items():
        remote = _inspect(f"registry:{source}", "--platform", platform)
        pulled = f"{repo}@{digest}"
        engine.pull_image(pulled, None, platform)
        cleanup.append(pulled)
        assert engine.inspect_image(pulled).architecture == platform.split("/")[1]
        local = _inspect(pulled)
        assert remote["layers"], platform
        assert _without(remote) == _without(local), platform
