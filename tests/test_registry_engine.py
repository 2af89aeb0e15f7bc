"""`registry:REF` read straight from a registry, and `slim IMAGE --pull/--push`.

Each fixture is pushed to a local registry through the engine API; then every
number `slim inspect|check|lint|validate` gives for `registry:REF` must equal the
number it gives for the same image on the engine, and `slim diff` between the two
must find nothing. What a command fetched is read from the registry's own access
log, not from slimmer's counters.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from slimmer.engine import Engine
from slimmer.registry.client import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX
from slimmer.registry.refs import parse_registry_ref
from slimmer.registry.remote import RegistryOptions, connect, open_remote
from slimmer.registry.transfer import PullPolicy, ensure_pulled
from tests.installed import run_slim
from tests.registry_kit import LocalRegistry, plain_registry, push_to, tls_registry

__all__ = ["plain_registry", "tls_registry"]  # the fixtures, for pytest

pytestmark = [pytest.mark.engine]


def _without(doc: Any, keys: frozenset[str]) -> Any:
    """`doc` with the keys that name where the image was read from dropped, at any depth."""
    if isinstance(doc, dict):
        return {k: _without(v, keys) for k, v in doc.items() if k not in keys}
    if isinstance(doc, list):
        return [_without(v, keys) for v in doc]
    return doc


_WHERE = frozenset({"ref", "source", "repo_tags", "tags"})


def _json(*args: str, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> Any:
    res = run_slim(*args, "--format", "json", env=env)
    assert res.returncode in ok, res.stderr
    assert "Traceback" not in res.stderr
    return json.loads(res.stdout)


def _manifest(reg: LocalRegistry, ref: str) -> dict[str, Any]:
    with connect(reg.host, RegistryOptions()) as client:
        return open_remote(client, parse_registry_ref(ref), RegistryOptions()).manifest.json()


def _sizes(reg: LocalRegistry, ref: str) -> dict[str, int]:
    manifest = _manifest(reg, ref)
    return {d["digest"]: int(d["size"]) for d in [manifest["config"], *manifest["layers"]]}


def _blobs(reg: LocalRegistry, ref: str) -> list[str]:
    """The config's and every layer's digest, sorted."""
    return sorted(_sizes(reg, ref))


@pytest.fixture(scope="module")
def pushed(
    engine: Engine, fixture_images: dict[str, str], plain_registry: LocalRegistry
) -> dict[str, str]:
    """Fixture name -> its ref in the plain registry."""
    return {
        name: push_to(engine, fixture_images[name], plain_registry, f"fx/{name}:1")
        for name in ("c-static", "layers", "findings")
    }


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["c-static", "layers"])
def test_inspect_from_the_registry_equals_the_engine_and_fetches_each_blob_once(
    name: str, pushed: dict[str, str], fixture_images: dict[str, str], plain_registry: LocalRegistry
) -> None:
    ref = pushed[name]
    before = len(plain_registry.requests())
    remote = _json("inspect", f"registry:{ref}")
    gets = plain_registry.blob_gets(f"fx/{name}", before)
    local = _json("inspect", fixture_images[name])
    assert len(remote["layers"]) > 0
    assert _without(remote, _WHERE) == _without(local, _WHERE)
    # the config and every layer, each fetched exactly once, whole
    assert sorted(d for d, _ in gets) == _blobs(plain_registry, ref)
    sizes = _sizes(plain_registry, ref)
    assert all(written == sizes[d] for d, written in gets)


def test_a_config_only_question_fetches_no_layer(
    pushed: dict[str, str], plain_registry: LocalRegistry
) -> None:
    """Opening a registry image reads manifest and config; layers wait to be opened."""
    ref = parse_registry_ref(pushed["layers"])
    before = len(plain_registry.requests())
    with connect(ref.host, RegistryOptions()) as client:
        found = open_remote(client, ref, RegistryOptions())
        assert client.stats.blobs == 1
    gets = plain_registry.blob_gets("fx/layers", before)
    assert [d for d, _ in gets] == [found.archive.config_digest]
    assert len(found.archive.layers) == 14
    assert found.archive.config["rootfs"]["diff_ids"] == [s.digest for s in found.archive.layers]


@pytest.mark.e2e
def test_check_lint_validate_and_diff_from_the_registry_equal_the_engine(
    pushed: dict[str, str], fixture_images: dict[str, str], plain_registry: LocalRegistry
) -> None:
    ref, local = pushed["findings"], fixture_images["findings"]
    wanted = _blobs(plain_registry, ref)
    budget = ("--max-size", "1GB", "--max-compressed-size", "1GB", "--max-layers", "40")
    for args, ok in (
        (("check", *budget), (0,)),
        (("lint", "--severity", "critical"), (0, 3)),
        (("validate",), (0,)),
    ):
        before = len(plain_registry.requests())
        remote = _json(*args[:1], f"registry:{ref}", *args[1:], ok=ok)
        gets = plain_registry.blob_gets("fx/findings", before)
        engine_side = _json(*args[:1], local, *args[1:], ok=ok)
        assert _without(remote, _WHERE) == _without(engine_side, _WHERE), args[0]
        # validate and the gzip estimate read each layer twice; each is fetched once
        assert sorted(d for d, _ in gets) == wanted, args[0]
    diff = _json("diff", f"registry:{ref}", local)
    assert diff["a"]["id"] == diff["b"]["id"]
    assert _without(diff["a"], _WHERE) == _without(diff["b"], _WHERE)
    assert (diff["added"], diff["removed"], diff["changed"], diff["config"]) == ([], [], [], [])
    assert diff["summary"]["unchanged"] > 100


def test_the_pull_policy(
    engine: Engine, pushed: dict[str, str], plain_registry: LocalRegistry
) -> None:
    ref = pushed["c-static"]
    assert not engine.image_exists(ref)
    try:
        assert ensure_pulled(engine, ref, PullPolicy.NEVER) is False
        assert not engine.image_exists(ref)
        before = len(plain_registry.requests())
        assert ensure_pulled(engine, ref, PullPolicy.MISSING) is True
        assert engine.image_exists(ref)
        assert len(plain_registry.requests()) > before
        before = len(plain_registry.requests())
        assert ensure_pulled(engine, ref, PullPolicy.MISSING) is False
        assert len(plain_registry.requests()) == before  # the engine had it: no traffic
        assert ensure_pulled(engine, ref, PullPolicy.ALWAYS) is True
        assert len(plain_registry.requests()) > before
    finally:
        if engine.image_exists(ref):
            engine.remove_image(ref)


def _no_secret(reg: LocalRegistry, texts: list[str]) -> None:
    assert texts
    for text in texts:
        assert reg.password not in text
        assert reg.auth_b64 not in text


@pytest.mark.e2e
def test_the_auth_tls_registry_with_a_config_json_and_no_secret_in_any_output(
    engine: Engine, fixture_images: dict[str, str], tls_registry: LocalRegistry, tmp_path: Path
) -> None:
    assert tls_registry.ca is not None
    ref = push_to(engine, fixture_images["c-static"], tls_registry, "fx/c-static:1")
    env = tls_registry.docker_config(tmp_path / "docker")
    ca = ("--registry-ca", str(tls_registry.ca))
    outputs: list[str] = []

    def slim(*args: str, env: dict[str, str] | None = env) -> int:
        res = run_slim(*args, env=env)
        outputs.extend((res.stdout, res.stderr))
        assert "Traceback" not in res.stderr
        return res.returncode

    report = tmp_path / "check.json"
    assert slim("inspect", f"registry:{ref}", *ca, "--format", "json") == 0
    remote = json.loads(outputs[-2])
    assert _without(remote, _WHERE) == _without(
        _json("inspect", fixture_images["c-static"]), _WHERE
    )
    assert slim("check", f"registry:{ref}", *ca, "--max-size", "10MB", "-o", str(report)) == 0
    assert slim("validate", f"registry:{ref}", *ca) == 0
    # each refusal: its own exit code, one line, no secret
    assert slim("inspect", f"registry:{ref}") == 10  # the CA is not trusted
    assert slim("inspect", f"registry:{ref}", *ca, env={"DOCKER_CONFIG": str(tmp_path)}) == 9
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    bad = {"auths": {tls_registry.host: {"auth": "c2xpbXRlc3Rlcjpub3BlCg=="}}}
    (wrong / "config.json").write_text(json.dumps(bad))
    assert slim("inspect", f"registry:{ref}", *ca, env={"DOCKER_CONFIG": str(wrong)}) == 9
    assert slim("inspect", f"registry:{ref[:-1]}404", *ca) == 8
    refusals = outputs[-7::2]  # the stderr of the four refusals
    assert all(len(t.strip().splitlines()) == 1 for t in refusals), refusals
    outputs.append(report.read_text())
    _no_secret(tls_registry, outputs)


@pytest.mark.e2e
def test_slim_pulls_a_missing_image_pushes_the_verified_result_and_it_pulls_back(
    engine: Engine, fixture_images: dict[str, str], tls_registry: LocalRegistry, tmp_path: Path
) -> None:
    """Through the auth+TLS registry: the input is pulled with the login from config.json,
    the verified output pushed; no output or report holds the secret."""
    src = push_to(engine, fixture_images["c-static"], tls_registry, "fx/c-static:2")
    out = src.replace(":2", ":2-slim")
    env = tls_registry.docker_config(tmp_path / "docker")
    probes = str(Path(__file__).resolve().parent.parent / "fixtures/c-static/probe.toml")
    assert not engine.image_exists(src)
    try:
        res = run_slim(
            src, "-o", out, "--probes", probes, "--push", "--report-dir", str(tmp_path), env=env
        )
        assert res.returncode == 0, res.stderr
        assert engine.image_exists(src)  # pulled (--pull missing)
        slim_id = engine.inspect_image(out).id
        texts = [res.stdout, res.stderr]
        texts += [p.read_text() for p in tmp_path.glob("report.*")]
        _no_secret(tls_registry, texts)
        # the registry has it: read straight from there, then pulled back
        assert tls_registry.ca is not None
        remote = _json("inspect", f"registry:{out}", "--registry-ca", str(tls_registry.ca), env=env)
        assert remote["image"]["id"] == slim_id
        engine.remove_image(out)
        assert ensure_pulled(engine, out, PullPolicy.MISSING, env) is True
        assert engine.inspect_image(out).id == slim_id
    finally:
        for ref in (src, out):
            if engine.image_exists(ref):
                engine.remove_image(ref)


def _put_index(reg: LocalRegistry, repo: str, tag: str, media: str, entries: list[Any]) -> None:
    """An index (OCI or Docker list) over manifests already in `repo`, put with plain
    HTTP calls: the test's own writer, not slimmer's reader."""
    base = f"http://{reg.host}/v2/{repo}/manifests"
    manifests = []
    for ref_tag, plat in entries:
        resp = requests.get(f"{base}/{ref_tag}", headers={"Accept": DOCKER_MANIFEST}, timeout=30)
        resp.raise_for_status()
        digest = "sha256:" + hashlib.sha256(resp.content).hexdigest()
        manifests.append(
            {"mediaType": DOCKER_MANIFEST, "digest": digest, "size": len(resp.content),
             "platform": plat}
        )  # fmt: skip
    doc = {"schemaVersion": 2, "mediaType": media, "manifests": manifests}
    put = requests.put(
        f"{base}/{tag}", data=json.dumps(doc), headers={"Content-Type": media}, timeout=30
    )
    assert put.status_code == 201, put.text


@pytest.mark.e2e
@pytest.mark.parametrize("media", [OCI_INDEX, DOCKER_LIST])
def test_platform_picks_the_image_of_an_index(
    media: str,
    engine: Engine,
    fixture_images: dict[str, str],
    plain_registry: LocalRegistry,
) -> None:
    """An index whose linux/amd64 entry is c-static and whose linux/arm64/v8 entry is
    (claimed to be) `layers`: the platform chooses which image is read."""
    push_to(engine, fixture_images["c-static"], plain_registry, "fx/multi:amd")
    push_to(engine, fixture_images["layers"], plain_registry, "fx/multi:arm")
    arm = {"os": "linux", "architecture": "arm64", "variant": "v8"}
    amd = {"os": "linux", "architecture": "amd64"}
    _put_index(plain_registry, "fx/multi", "1", media, [("amd", amd), ("arm", arm)])
    ref = f"registry:{plain_registry.host}/fx/multi:1"
    for platform, fixture in (("linux/arm64", "layers"), ("linux/amd64", "c-static")):
        remote = _json("inspect", ref, "--platform", platform)
        assert remote["image"]["id"] == engine.inspect_image(fixture_images[fixture]).id
    default = _json("inspect", ref)  # this host's platform: amd64
    assert default["image"]["id"] == engine.inspect_image(fixture_images["c-static"]).id
    res = run_slim("inspect", ref, "--platform", "linux/s390x")
    assert res.returncode == 8, res.stderr
    assert "linux/s390x" in res.stderr and "linux/arm64/v8" in res.stderr


@pytest.mark.e2e
def test_slim_pull_refusals_are_one_line_with_their_own_codes(
    engine: Engine,
    fixture_images: dict[str, str],
    plain_registry: LocalRegistry,
    tls_registry: LocalRegistry,
    tmp_path: Path,
) -> None:
    """An unknown image: 8; a registry that wants a login config.json lacks: 9; a
    wrong one: 9. Nothing runs, nothing is left on the engine."""
    secret_ref = push_to(engine, fixture_images["c-static"], tls_registry, "fx/c-static:3")
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    bad = {"auths": {tls_registry.host: {"auth": "c2xpbXRlc3Rlcjpub3Bl"}}}  # slimtester:nope
    (wrong / "config.json").write_text(json.dumps(bad))
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = (
        (f"{plain_registry.host}/fx/none:1", {"DOCKER_CONFIG": str(empty)}, 8),
        (secret_ref, {"DOCKER_CONFIG": str(empty)}, 9),
        (secret_ref, {"DOCKER_CONFIG": str(wrong)}, 9),
    )
    for ref, env, code in cases:
        res = run_slim(ref, "-o", "slimmer-test/registry-refused:1", env=env)
        assert res.returncode == code, (ref, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert not engine.image_exists(ref)
    assert not engine.image_exists("slimmer-test/registry-refused:1")
