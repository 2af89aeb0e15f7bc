"""Multi-platform runs without an engine: an index's entries, the index slimmer
composes, the local tags, `--platform`, the plan's refusals and the
`slimmer.platforms/v1` report's faces (contract: docs/schemas/platforms-v1.json)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from slimmer.errors import ImageUnrunnable, RegistryImageNotFound, UsageError
from slimmer.image.platforms import Platform
from slimmer.pipeline.multiplatform import (
    IndexResult,
    PlatformRun,
    PlatformSelection,
    local_tag,
    parse_selection,
    plan_index,
    push_index,
    slim_index,
)
from slimmer.pipeline.slim import SlimResult
from slimmer.plan.keep import KeepSet
from slimmer.registry.client import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Manifest
from slimmer.registry.index import IndexEntry, compose, entries_of
from slimmer.registry.transfer import PullPolicy
from slimmer.report import platforms_html, platforms_md, platforms_view
from tests.schemas import json_schema

AMD64, ARM64, S390X = (
    Platform("linux", "amd64"),
    Platform("linux", "arm64", "v8"),
    Platform("linux", "s390x"),
)
D = {n: "sha256:" + hashlib.sha256(n.encode()).hexdigest() for n in ("a", "b", "c", "att")}


def _doc(*extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": D["a"], "size": 10,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": D["b"], "size": 11,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": OCI_MANIFEST, "digest": D["att"], "size": 12,
             "platform": {"os": "unknown", "architecture": "unknown"}},
            *extra,
        ],
    }  # fmt: skip


def test_an_indexs_entries_leave_attestations_out_and_keep_variants() -> None:
    got = entries_of(_doc(), "r")
    assert [(str(e.platform), e.digest, e.size) for e in got] == [
        ("linux/amd64", D["a"], 10),
        ("linux/arm64/v8", D["b"], 11),
    ]


def test_an_entry_without_a_sha256_digest_is_refused() -> None:
    bad = {"digest": "md5:00", "platform": {"os": "linux", "architecture": "ppc64le"}}
    with pytest.raises(Exception, match="no sha256 digest"):
        entries_of(_doc(bad), "r")


def test_the_composed_index_is_a_docker_list_of_docker_manifests_and_reads_back() -> None:
    entries = [
        IndexEntry(AMD64, D["a"], DOCKER_MANIFEST, 10),
        IndexEntry(ARM64, D["b"], DOCKER_MANIFEST, 11),
    ]
    raw, media = compose(entries)
    assert media == DOCKER_LIST
    doc = json.loads(raw)
    assert doc["mediaType"] == DOCKER_LIST and doc["schemaVersion"] == 2
    assert entries_of(doc, "r") == tuple(entries)
    assert compose(list(entries))[0] == raw  # same entries, same bytes
    mixed = [entries[0], IndexEntry(ARM64, D["b"], OCI_MANIFEST, 11)]
    assert compose(mixed)[1] == OCI_INDEX


@pytest.mark.parametrize(
    "out,plat,want",
    [
        ("127.0.0.1:5000/app:1-slim", AMD64, "127.0.0.1:5000/app:1-slim"),
        ("127.0.0.1:5000/app:1-slim", ARM64, "127.0.0.1:5000/app:1-slim-arm64v8"),
        ("127.0.0.1:5000/app", Platform("linux", "arm64"), "127.0.0.1:5000/app:latest-arm64"),
    ],
)
def test_local_tags_are_out_for_the_engines_platform_and_suffixed_for_another(
    out: str, plat: Platform, want: str
) -> None:
    assert local_tag(out, plat, ("linux", "amd64")) == want
    assert local_tag(out, plat, ("linux", "amd64"), alone=True) == out  # a run of one


def test_platform_selection_is_all_or_a_list() -> None:
    assert parse_selection("all") == PlatformSelection(all=True)
    assert parse_selection("linux/amd64,linux/arm64").named == (
        AMD64,
        Platform("linux", "arm64"),
    )
    for bad in ("", "linux", "linux/amd64,arm64"):
        with pytest.raises(UsageError):
            parse_selection(bad)


class _Registry:
    def __init__(self, doc: dict[str, Any] | None) -> None:
        self.doc = doc

    def blob(self, repo: str, digest: str) -> bytes:
        return json.dumps({"os": "linux", "architecture": "amd64"}).encode()

    def manifest(self, repo: str, reference: str) -> Manifest:
        if self.doc is None:
            doc = {"schemaVersion": 2, "config": {"digest": D["c"]}, "layers": []}
            raw = json.dumps(doc).encode()
            return Manifest(raw, OCI_MANIFEST, "sha256:" + hashlib.sha256(raw).hexdigest())
        raw = json.dumps(self.doc).encode()
        return Manifest(raw, OCI_INDEX, "sha256:" + hashlib.sha256(raw).hexdigest())


class _Engine:
    """Only `platform()`: s390x has no check program, so no container is asked for."""

    def platform(self) -> tuple[str, str]:
        return ("linux", "amd64")


S390X_ENTRY = {"mediaType": OCI_MANIFEST, "digest": D["c"], "size": 9,
               "platform": {"os": "linux", "architecture": "s390x"}}  # fmt: skip
REF = "127.0.0.1:5000/app:1"


def _plan(doc: dict[str, Any] | None, sel: PlatformSelection) -> Any:
    return plan_index(_Engine(), _Registry(doc), REF, sel)  # type: ignore[arg-type]


def test_one_image_is_not_a_plan_unless_another_platform_is_named() -> None:
    assert _plan(None, PlatformSelection(all=True)) is None
    assert _plan(None, parse_selection("linux/amd64")) is None
    with pytest.raises(RegistryImageNotFound, match="one image, for linux/amd64"):
        _plan(None, parse_selection("linux/arm64"))


def test_all_refuses_a_platform_the_engine_cannot_run_with_exit_6_before_any_work() -> None:
    doc = {"manifests": [_doc()["manifests"][0], S390X_ENTRY]}
    with pytest.raises(ImageUnrunnable) as err:
        _plan(doc, PlatformSelection(all=True))
    assert err.value.exit_code == 6
    assert "linux/s390x" in err.value.message and "qemu-user-static" in err.value.message
    assert "binfmt" in err.value.message and "nothing was slimmed or pushed" in err.value.message


def test_the_default_skips_what_the_engine_cannot_run_and_says_so() -> None:
    doc = {"manifests": [S390X_ENTRY, _doc()["manifests"][0]]}
    plan = _plan(doc, PlatformSelection())
    assert [str(e.platform) for e in plan.chosen] == ["linux/amd64"]
    assert plan.skipped == (S390X,)


def test_a_named_platform_the_index_lacks_is_exit_8_naming_what_it_has() -> None:
    doc = {"manifests": [_doc()["manifests"][0]]}
    with pytest.raises(RegistryImageNotFound, match="no linux/ppc64le image.*linux/amd64"):
        _plan(doc, parse_selection("linux/ppc64le"))


def _result(verified: bool, pushed: bool) -> IndexResult:
    def slim(out: str, before: int, after: int, emu: bool) -> SlimResult:
        warn = ("linux/arm64 ran under emulation (qemu-user) on this x86_64 host",) if emu else ()
        return SlimResult(
            REF, "sha256:aa", out, "sha256:bb", verified or not emu, verified or not emu,
            before, after, 2, 1, (("tracing", 1.5), ("verifying", 2.0)), (), KeepSet({}), {},
            (), (), warnings=warn,
        )  # fmt: skip

    runs = (
        PlatformRun(AMD64, f"{REF}@{D['a']}", "o:1", slim("o:1", 1000, 100, False),
                    D["a"] if pushed else None),
        PlatformRun(ARM64, f"{REF}@{D['b']}", "o:1-arm64v8", slim("o:1-arm64v8", 2000, 150, True),
                    D["b"] if pushed else None),
    )  # fmt: skip
    return IndexResult(
        REF, D["c"], "o:1", runs, (S390X,), D["att"] if pushed else None,
        DOCKER_LIST if pushed else None,
    )  # fmt: skip


@pytest.mark.parametrize("verified,pushed", [(True, True), (True, False), (False, False)])
def test_the_report_has_a_section_per_platform_and_a_combined_summary(
    verified: bool, pushed: bool
) -> None:
    res = _result(verified, pushed)
    reports = {"linux/amd64": "linux-amd64/report.json"}
    doc = platforms_view.to_json(res, reports)
    jsonschema.validate(doc, json_schema(platforms_view.SCHEMA))
    assert [p["platform"] for p in doc["platforms"]] == ["linux/amd64", "linux/arm64/v8"]
    assert [p["emulated"] for p in doc["platforms"]] == [False, True]
    assert doc["verdict"] == ("passed" if verified else "failed")
    assert doc["exit_code"] == (0 if verified else 4)
    assert doc["skipped"] == ["linux/s390x"]
    assert doc["totals"]["before_bytes"] == 3000
    assert doc["totals"]["after_bytes"] == (250 if verified else 100)
    assert (doc["pushed"] is not None) is pushed
    line = platforms_view.summary_line(doc)
    assert line.startswith(f"{2 if verified else 1} of 2 platform(s) verified")
    assert ("pushed one index of 2" in line) is pushed
    md = platforms_md.render(doc)
    assert md.count("\n## linux/") == 2 and "under emulation" in md
    assert "[linux-amd64/report.json](linux-amd64/report.json)" in md
    page = platforms_html.render(doc)
    assert page.count('data-platform="') == 2
    assert 'href="linux-amd64/report.html"' in page
    assert f'data-verdict="{doc["verdict"]}"' in page
    assert platforms_view.dir_name(ARM64) == "linux-arm64-v8"


def test_slim_report_renders_a_saved_combined_report_again(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from slimmer.cli.main import cli
    from slimmer.report.common import write_json

    doc = platforms_view.to_json(_result(True, True), {})
    saved = tmp_path / "report.json"
    write_json(doc, saved)
    runner = CliRunner()
    text = runner.invoke(cli, ["report", str(saved)])
    assert text.exit_code == 0, text.output
    assert "2 of 2 platform(s) verified" in text.output and "linux/arm64/v8" in text.output
    md = runner.invoke(cli, ["report", str(saved), "--format", "md"]).output
    assert md == platforms_md.render(doc)
    back = runner.invoke(cli, ["report", str(saved), "--format", "json"]).output
    assert json.loads(back) == doc


class _Tags:
    """An engine's tags, pulls and pushes, in memory. `watch`: an image ID that must never
    be left without a tag (a sweep of untagged slim images would remove it)."""

    def __init__(self, have: set[str], watch: str = "") -> None:
        self.tags: dict[str, str] = {}
        self.have, self.watch = have, watch
        self.pulled: list[str] = []
        self.removed: list[str] = []
        self.pushed: list[tuple[str, str]] = []

    def _check(self) -> None:
        if self.watch:
            assert self.watch in self.tags.values(), "the own image was left untagged"

    def image_exists(self, ref: str) -> bool:
        return ref in self.have or ref in self.tags

    def pull_image(self, ref: str, auth: Any = None, platform: str | None = None) -> None:
        self.pulled.append(ref)

    def remove_image(self, ref: str, force: bool = False) -> None:
        self.removed.append(ref)
        self.tags.pop(ref, None)
        self._check()

    def tag_image(self, image_id: str, ref: str) -> None:
        self.tags[ref] = image_id
        self._check()

    def push_image(self, ref: str, auth: Any = None) -> str:
        digest = "sha256:" + hashlib.sha256(self.tags[ref].encode()).hexdigest()
        self.pushed.append((ref, self.tags[ref]))
        return digest


def _plan_of(*entries: IndexEntry) -> Any:
    from slimmer.pipeline.multiplatform import IndexPlan
    from slimmer.registry.refs import parse_registry_ref

    return IndexPlan(parse_registry_ref(REF), D["c"], entries, (), ("linux", "amd64"))


def test_each_platform_is_pulled_by_digest_slimmed_alone_and_the_pull_removed() -> None:
    from slimmer.pipeline.slim import SlimOptions

    plan = _plan_of(
        IndexEntry(AMD64, D["a"], DOCKER_MANIFEST, 1), IndexEntry(ARM64, D["b"], DOCKER_MANIFEST, 1)
    )
    have = {f"127.0.0.1:5000/app@{D['a']}"}  # the engine had amd64's by digest already
    eng = _Tags(have)
    seen: list[tuple[str, str]] = []

    def one(ref: str, o: SlimOptions) -> SlimResult:
        seen.append((ref, o.output))
        return _result(True, False).runs[0].result

    opts = SlimOptions(output="127.0.0.1:5000/app:1-slim")
    res = slim_index(eng, plan, opts, one)  # type: ignore[arg-type]
    assert seen == [
        (f"127.0.0.1:5000/app@{D['a']}", "127.0.0.1:5000/app:1-slim"),
        (f"127.0.0.1:5000/app@{D['b']}", "127.0.0.1:5000/app:1-slim-arm64v8"),
    ]
    assert eng.pulled == [f"127.0.0.1:5000/app@{D['b']}"]
    assert eng.removed == eng.pulled  # only what this run pulled
    assert [r.output for r in res.runs] == [o for _, o in seen]
    never = _Tags(have)  # --pull never: nothing is pulled; each slim gets its digest ref
    seen.clear()
    slim_index(never, plan, opts, one, pull=PullPolicy.NEVER)  # type: ignore[arg-type]
    assert never.pulled == [] and never.removed == []
    assert [ref for ref, _ in seen] == [f"127.0.0.1:5000/app@{D[k]}" for k in ("a", "b")]


class _Pushed:
    def __init__(self) -> None:
        self.put: list[tuple[str, str, bytes, str]] = []

    def manifest(self, repo: str, reference: str) -> Manifest:
        return Manifest(b"x" * 7, DOCKER_MANIFEST, reference)

    def put_manifest(self, repo: str, reference: str, raw: bytes, media: str) -> str:
        self.put.append((repo, reference, raw, media))
        return "sha256:" + hashlib.sha256(raw).hexdigest()


def test_the_index_is_pushed_after_each_image_and_the_own_image_never_goes_untagged() -> None:
    res = _result(True, False)
    res = replace(res, runs=tuple(replace(r, result=replace(r.result, image_id=f"sha256:{i}"))
                                  for i, r in enumerate(res.runs)))  # fmt: skip
    eng = _Tags(set(), watch="sha256:0")
    eng.tags = {"o:1": "sha256:0", "o:1-arm64v8": "sha256:1"}
    client = _Pushed()
    done = push_index(eng, client, res)  # type: ignore[arg-type]
    assert [i for _, i in eng.pushed] == ["sha256:1", "sha256:0"]  # own platform last
    assert eng.tags == {"o:1": "sha256:0", "o:1-arm64v8": "sha256:1"}  # hold tag gone
    [(repo, tag, raw, media)] = client.put
    assert (repo, tag, media) == ("library/o", "1", DOCKER_LIST)
    listed = {m["platform"]["architecture"]: m["digest"] for m in json.loads(raw)["manifests"]}
    assert listed == {"amd64": done.runs[0].pushed, "arm64": done.runs[1].pushed}
    assert done.index == client.put_manifest("library/o", "1", raw, media)
    with pytest.raises(UsageError):
        push_index(eng, client, _result(False, False))  # type: ignore[arg-type]


def test_an_emulated_platform_says_how_much_slower_its_app_phases_ran_than_native() -> None:
    native = {"emulated": False, "phases": {"reading": 9.0, "tracing": 2.0, "verifying": 4.0}}
    emulated = {"emulated": True, "phases": {"reading": 1.0, "tracing": 5.0, "verifying": 7.0}}
    ratio = platforms_view.slowdown(emulated, native)
    assert ratio == {"tracing": 2.5, "verifying": 1.75, "app": 2.0}  # reading is left out
    assert platforms_view.slowdown(emulated, None) is None
    assert platforms_view.how({**emulated, "slowdown": ratio}) == "emulated (2.0x native)"
    assert platforms_view.how(native) == "native"
    doc = platforms_view.to_json(_result(True, True))
    assert [p["slowdown"] for p in doc["platforms"]] == [
        None,
        {"tracing": 1.0, "verifying": 1.0, "app": 1.0},
    ]
    assert "1.0x the native platform's time" in platforms_md.render(doc)
    assert "emulated (1.0x native)" in platforms_html.render(doc)
