"""`slim IMAGE -o OUT` end to end, as a user runs it, on every fixture (on scratch;
tests/test_migrate_engine.py moves the serving ones onto distroless bases).

Each fixture is slimmed with its narrow probes only; its held-out probes are
then run against the slim image (the `layers` fixture's held-out probes check
the reader with ls/stat/getcap, not an app path, so they are not run there).
The serving fixtures are slimmed with `--seccomp` too: they verify under their
profile, and their held-out probes run against the slim image under it (sent
through the engine API, as `docker run --security-opt seccomp=FILE` sends it).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from slimmer.analyse.inspect import analyse, want_for_inspect
from slimmer.engine import Engine, saver
from slimmer.image.reader import open_image
from slimmer.model import SLIM_SCHEMA, EntryType, ImageConfig
from slimmer.pipeline.seccomp import SeccompState
from slimmer.report.common import compressed_cell, human_bytes
from slimmer.seccomp.profile import Evidence
from slimmer.trace.proberun import run_probes_on_image
from slimmer.trace.probes import ProbeSpec, load_probe_file
from slimmer.trace.tracer import SeccompRun, run_traced
from tests.engine_listing import expected_sets, outside_init
from tests.installed import run_slim
from tests.needs import require
from tests.schemas import json_schema

pytestmark = [pytest.mark.engine, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parent.parent
NOT_AN_APP = {"layers"}
# serving fixtures, slimmed with --seccomp (ctx-web/ctx-worker need their context: their
# seccomp runs are in test_context_e2e)
SERVING = (
    "c-static", "ctx-redis", "java-http", "nginx-envsubst", "nginx-static", "node-http",
    "node-spawn", "perl-utf16", "pg-db", "py-ctypes", "py-http", "py-openssl", "ruby-http",
    "shell-app",
)  # fmt: skip
FIXTURES = [
    "c-static",
    "ctx-redis",
    "findings",
    "glibc-new",
    "java-http",
    "layers",
    "musl-app",
    "nginx-envsubst",
    "nginx-static",
    "node-http",
    "node-spawn",
    "perl-utf16",
    "pg-db",
    "py-batch",
    "py-ctypes",
    "py-http",
    "py-openssl",
    "root-batch",
    "ruby-http",
    "shell-app",
]


slim = run_slim


@pytest.fixture
def out_tags(engine: Engine) -> Iterator[list[str]]:
    tags: list[str] = []
    before = set(engine.leftovers())
    yield tags
    for tag in tags:
        engine.remove_image(tag, force=True)
    assert set(engine.leftovers()) <= before, "slimmer left containers or images behind"


def _slim_fixture(
    name: str, tag: str, out: str, tmp: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    probes = ROOT / "fixtures" / name / "probe.toml"
    res = slim(tag, "-o", out, "--probes", str(probes), "--report-dir", str(tmp), *extra)
    report = json.loads((tmp / "report.json").read_text()) if (tmp / "report.json").exists() else {}
    return res, report


def _heldout_failures(engine: Engine, name: str, image: str) -> list[str]:
    spec = load_probe_file(ROOT / "fixtures" / name / "probe.toml")
    results = run_probes_on_image(engine, image, spec, heldout=True)
    return [r.probe.label for r in results if not r.ok]


def _config(engine: Engine, image: str) -> ImageConfig:
    info = engine.inspect_image(image)
    return ImageConfig({"config": dict(info.config), "architecture": info.architecture})


def _heldout_failures_under_profile(engine: Engine, name: str, item: Slimmed) -> list[str]:
    """The held-out probes run against the slim image under its seccomp profile."""
    sec = item.report["seccomp"]
    assert 0 < sec["allowed_count"] < sec["engine_default"]["allowed_count"]
    assert (
        sec["fewer_than_default"] == sec["engine_default"]["allowed_count"] - sec["allowed_count"]
    )
    profile = (item.report_dir / "seccomp.json").read_text()
    assert json.loads(profile)["defaultAction"] == "SCMP_ACT_ERRNO"
    spec = load_probe_file(ROOT / "fixtures" / name / "probe.toml")
    config = _config(engine, item.output)
    held = run_traced(engine, item.output, config, spec.heldout, spec.timeout, traced=False,
                      seccomp=SeccompRun(profile=profile))  # fmt: skip
    return [r.probe.label for r in held.results if not r.ok]


@dataclass(frozen=True)
class Slimmed:
    run: subprocess.CompletedProcess[str]
    report: dict[str, Any]
    output: str
    source_id: str
    report_dir: Path


EXPLAIN = ("/usr/share/zoneinfo/Asia/Tokyo", "/usr/bin/apt")
# Debian's perl-base installs /usr/bin/perl5.36.0 as a hardlink of /usr/bin/perl (ELF),
# in every bookworm fixture; root-batch keeps both names, so the hardlinked ELF file
# is in its slim image too (test_hardlinked_elf_files_are_counted_alike).
EXTRA = {
    "py-http": [a for p in EXPLAIN for a in ("--explain", p)],
    "root-batch": ["--include", "/usr/bin/perl*"],
}


@pytest.fixture(scope="module")
def slimmed(
    engine: Engine, fixture_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Slimmed]]:
    """Every fixture slimmed once with its narrow probes (and its `EXTRA` flags)."""
    before = set(engine.leftovers())
    out: dict[str, Slimmed] = {}
    for name in FIXTURES:
        tag = fixture_images[name]
        source_id = engine.inspect_image(tag).id
        extra = EXTRA.get(name, [])
        report_dir = tmp_path_factory.mktemp(name)
        if name in SERVING:
            extra += ["--seccomp", str(report_dir / "seccomp.json")]
        res, report = _slim_fixture(name, tag, f"slimmer-test/{name}:slim", report_dir, *extra)
        out[name] = Slimmed(res, report, f"slimmer-test/{name}:slim", source_id, report_dir)
    yield out
    for item in out.values():
        engine.remove_image(item.output, force=True)
    assert set(engine.leftovers()) <= before, "slimmer left containers or images behind"


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_slims_verifies_and_survives_heldout(
    name: str, engine: Engine, fixture_images: dict[str, str], slimmed: dict[str, Slimmed]
) -> None:
    item = slimmed[name]
    assert item.run.returncode == 0, item.run.stderr
    report = item.report
    assert report["schema"] == SLIM_SCHEMA
    assert report["verification"]["status"] == "passed"
    assert engine.inspect_image(fixture_images[name]).id == item.source_id, (
        "the input image is never changed"
    )
    assert engine.inspect_image(item.output).id == report["result"]["id"]
    assert sum(report["bytes_by_reason"].values()) > 0
    if name in SERVING:
        assert _heldout_failures_under_profile(engine, name, item) == []
    elif name not in NOT_AN_APP:
        assert _heldout_failures(engine, name, item.output) == []
    with open_image(item.output, save=saver(engine), want=want_for_inspect) as img:
        facts = analyse(img)
    # the report's "after" is `slim inspect OUT`: the image as written, not the keep set
    after = report["after"]
    seen = (facts.files, facts.elf_files, facts.symlinks, len(facts.layers))
    said = ("files", "elf_files", "symlinks", "layers")
    assert tuple(after[k] for k in said) == seen, name
    # its size is the engine's, as in `docker images` (symlink targets' bytes counted);
    # `slim inspect` counts file bytes only, as dive does
    assert after["size_bytes"] == engine.inspect_image(item.output).size, name
    assert (after["shells"], after["setuid"]) == (list(facts.shells), list(facts.setuid))
    if name == "c-static":
        assert report["result"]["size_bytes"] <= report["source"]["size_bytes"]
    else:
        assert facts.package_managers == ()
        # Only shell-app, root-batch, findings and nginx-envsubst (shell-script
        # entrypoints), py-ctypes (os.popen) and pg-db (postgres calls popen/system for
        # COPY ... PROGRAM and archive_command) run a shell.
        shells = ("shell-app", "root-batch", "findings", "nginx-envsubst", "py-ctypes", "pg-db")
        assert (facts.shells != ()) == (name in shells), facts.shells


def test_envsubst_keeps_no_converter(slimmed: dict[str, Slimmed]) -> None:
    """envsubst imports iconv_open (gnulib's propername, gettext's catalogs), but the
    trace ran it under LANG=C.UTF-8 without loading a converter module: the slim image
    keeps none of glibc's 8 MB of converters, only the index its locale set-up read
    (#24)."""
    kept = [k["path"] for k in slimmed["nginx-envsubst"].report["kept"]]
    assert "/usr/bin/envsubst" in kept
    gconv = [p for p in kept if "/gconv/" in p]
    assert "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache" in gconv
    assert [p for p in gconv if p.endswith(".so")] == []


def _facts(engine: Engine, ref: str) -> tuple[dict[str, object], list[str]]:
    """`slim inspect`'s facts of `ref` (its `analyse`), keyed as the report's, with the
    engine's size (the report's sizes are the engine's, `slim inspect`'s dive's: the
    engine also counts the bytes of symlink targets), and the names of its hardlinked
    ELF files."""
    with open_image(ref, save=saver(engine), want=want_for_inspect) as img:
        facts = analyse(img)
        links = [e.path for e in img.tree if e.type is EntryType.HARDLINK and e.is_elf]
    counted = {
        "files": facts.files,
        "elf_files": facts.elf_files,
        "symlinks": facts.symlinks,
        "layers": len(facts.layers),
        "size_bytes": engine.inspect_image(ref).size,
        "shells": list(facts.shells),
        "setuid": list(facts.setuid),
        "package_managers": list(facts.package_managers),
        "packages": len(facts.packages),
    }
    return counted, links


def test_hardlinked_elf_files_are_counted_alike(
    engine: Engine, fixture_images: dict[str, str], slimmed: dict[str, Slimmed]
) -> None:
    """The report's before facts are `slim inspect` of the input, its after facts `slim
    inspect` of the output, on an image with a hardlinked ELF file on both sides (the
    keep set used to count it at every name and `analyse` at one)."""
    item = slimmed["root-batch"]
    sides = {"before": fixture_images["root-batch"], "after": item.output}
    for side, ref in sides.items():
        counted, links = _facts(engine, ref)
        assert links != [], f"{side}: no hardlinked ELF file in {ref}"
        said = {k: item.report[side][k] for k in counted}
        assert said == counted, side


def test_report_shows_the_findings_slimming_removed(slimmed: dict[str, Slimmed]) -> None:
    """The planted fixture: slimming drops the package managers, the setuid files and
    the build junk; the secrets in ENV stay (the config is kept) and stay masked."""
    found = slimmed["findings"].report["findings"]
    fixed = {f["id"] for f in found["fixed"]}
    still = {f["id"] for f in found["still"]}
    assert {"SLM-PKG-MANAGER", "SLM-SETUID", "SLM-BUILD-JUNK"} <= fixed, fixed
    assert {"SLM-SECRET-ENV", "SLM-USER-ROOT"} <= still, still
    assert found["counts"]["fixed"] == len(found["fixed"]) > 0
    text = json.dumps(found)
    assert "AKIAIOSFODNN7EXAMPLE" not in text and "<masked" in text
    md = (slimmed["findings"].report_dir / "report.md").read_text()
    assert f"**Findings** (`slim lint`): {len(found['fixed'])} fixed by slimming" in md


def test_explain(slimmed: dict[str, Slimmed]) -> None:
    out = slimmed["py-http"].run.stdout
    assert "/usr/share/zoneinfo/Asia/Tokyo is kept" in out and "tzdata" in out
    assert "/usr/bin/apt is not kept" in out


def test_same_input_gives_same_image_id(
    engine: Engine,
    fixture_images: dict[str, str],
    tmp_path: Path,
    out_tags: list[str],
    slimmed: dict[str, Slimmed],
) -> None:
    out = "slimmer-test/py-batch:again"
    out_tags.append(out)
    res, _ = _slim_fixture("py-batch", fixture_images["py-batch"], out, tmp_path)
    assert res.returncode == 0, res.stderr
    assert engine.inspect_image(out).id == engine.inspect_image(slimmed["py-batch"].output).id


# The default probe (GET / on the first exposed port) is the same for every runtime;
# java-http, the slowest to slim, is left out to keep the suite within its budget.
@pytest.mark.parametrize("name", ["py-http", "nginx-static", "node-http", "c-static"])
def test_http_fixtures_pass_with_default_probes(
    name: str, fixture_images: dict[str, str], tmp_path: Path, out_tags: list[str]
) -> None:
    out = f"slimmer-test/{name}:default"
    out_tags.append(out)
    res = slim(fixture_images[name], "-o", out, "--report-dir", str(tmp_path))
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verification"]["status"] == "passed"
    assert [p["probe"] for p in report["verification"]["probes"]][0].startswith("http GET")


# A fixture that needed a profile rule: without the rule, a held-out probe fails.
NEEDED_RULES = [
    ("py-http", "tzdata", "other time zone"),
    ("py-http", "ca-certificates", "tls context"),
    ("py-http", "python", "lazy imports"),
    ("shell-app", "shell", "report mode"),
    ("c-static", "app-dirs", "file"),
    ("py-openssl", "helpers", "openssl hmac"),
    ("node-spawn", "helpers", "gzip"),
    ("perl-utf16", "perl", "utf-16le"),
]


@pytest.mark.parametrize("name,rule,probe", NEEDED_RULES)
def test_profile_rule_is_needed(
    name: str,
    rule: str,
    probe: str,
    engine: Engine,
    fixture_images: dict[str, str],
    tmp_path: Path,
    out_tags: list[str],
) -> None:
    out = f"slimmer-test/{name}:no-{rule}"
    out_tags.append(out)
    res, _ = _slim_fixture(name, fixture_images[name], out, tmp_path, "--no-profile", rule)
    assert res.returncode == 0, res.stderr  # the narrow probes still pass
    assert probe in _heldout_failures(engine, name, out)


def test_verification_failure_is_not_tagged(
    engine: Engine, fixture_images: dict[str, str], tmp_path: Path, out_tags: list[str]
) -> None:
    out = "slimmer-test/py-http:broken"
    out_tags.append(out)
    res, report = _slim_fixture(
        "py-http",
        fixture_images["py-http"],
        out,
        tmp_path,
        "--exclude",
        "/usr/share/zoneinfo/Europe/**",
    )
    assert res.returncode == 4, res.stderr
    assert not engine.image_exists(out)
    verification = report["verification"]
    assert verification["status"] == "failed"  # type: ignore[index]
    diffs = [d for r in verification["rounds"] for d in r["differences"]]  # type: ignore[index]
    assert any("time?tz=Europe/Berlin" in d for d in diffs)
    blamed = [a["path"] for r in verification["rounds"] for a in r["added_paths"]]  # type: ignore[index]
    assert "/usr/share/zoneinfo/Europe/Berlin" in blamed
    assert "/usr/share/zoneinfo/Europe/Berlin" in res.stdout  # the terminal report names it
    forced = slim(
        fixture_images["py-http"],
        "-o",
        out,
        "--probes",
        str(ROOT / "fixtures/py-http/probe.toml"),
        "--force",
        "--exclude",
        "/usr/share/zoneinfo/Europe/**",
    )
    assert forced.returncode == 0 and engine.image_exists(out)


def test_usage_and_input_errors(fixture_images: dict[str, str]) -> None:
    tag = fixture_images["py-batch"]
    same = slim(tag, "-o", tag)
    assert same.returncode == 2 and "input image" in same.stderr
    unknown = slim("slimmer-test/no-such-image:1", "-o", "x:1")
    assert unknown.returncode == 1 and "no such image" in unknown.stderr
    never = slim(tag, "-o", "slimmer-test/x:1", "--probe-tcp", "9", "--timeout", "5")
    assert never.returncode == 1 and "Traceback" not in never.stderr
    assert len(never.stderr.strip().splitlines()[-1]) > 0


def test_scanners_still_see_the_surviving_packages(
    engine: Engine, slimmed: dict[str, Slimmed], tmp_path: Path
) -> None:
    """syft (a real scanner) reads the trimmed dpkg status of the slim image: the
    packages whose files survive are listed, the package manager that was dropped is not."""
    archive = tmp_path / "slim.tar"
    with open(archive, "wb") as out:
        engine.save_image(slimmed["py-http"].output, out)
    syft = Path(sys.executable).parent / "syft"
    res = subprocess.run(
        [str(syft), f"docker-archive:{archive}", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    debs = {a["name"] for a in json.loads(res.stdout)["artifacts"] if a["type"] == "deb"}
    assert {"libc6", "libpython3.11-minimal", "tzdata", "ca-certificates", "libssl3"} <= debs
    assert not {"apt", "dpkg", "bash", "coreutils"} & debs, debs


ARTIFACTS = ROOT / ".cache" / "artifacts"


@pytest.mark.parametrize("name", FIXTURES)
def test_report_faces_agree_with_the_engine(
    name: str, engine: Engine, fixture_images: dict[str, str], slimmed: dict[str, Slimmed]
) -> None:
    """report.json, report.md and report.html of every run: the schema holds, and the
    sizes in all three are the engine's sizes of both images."""
    item = slimmed[name]
    before = engine.inspect_image(fixture_images[name]).size
    after = engine.inspect_image(item.output).size
    doc = item.report
    jsonschema.validate(doc, json_schema(SLIM_SCHEMA))
    assert (doc["source"]["size_bytes"], doc["result"]["size_bytes"]) == (before, after)
    assert (doc["before"]["size_bytes"], doc["after"]["size_bytes"]) == (before, after)
    gz = (doc["before"]["compressed_bytes"], doc["after"]["compressed_bytes"])
    assert 0 < gz[1] <= gz[0] and gz[0] < before, gz
    md = (item.report_dir / "report.md").read_text()
    assert len(md.encode()) < 1 << 20 and md.startswith("### ✅ slim ")
    assert f"{human_bytes(before)} | {human_bytes(after)} |" in md
    cells = [compressed_cell(doc[k]) for k in ("before", "after")]
    assert f"| {cells[0]} | {cells[1]} |" in md
    # a layer over SAMPLES * BLOCK bytes is estimated from a sample, and says so
    assert all(doc[k]["compressed_method"] in ("full", "sampled") for k in ("before", "after"))
    assert ("(estimate)" in cells[0]) == (doc["before"]["compressed_method"] == "sampled")
    # the long byte moves were drawn as progress (plain lines when not on a terminal)
    assert "slim: writing: layer: " in item.run.stderr
    assert "slim: loading: into the engine: " in item.run.stderr
    out = run_slim("report", str(item.report_dir / "report.json"), "--format", "md")
    assert out.returncode == 0 and out.stdout == md


@pytest.mark.parametrize("name", FIXTURES)
def test_slim_diff_agrees_with_the_engines_own_listing(
    name: str, engine: Engine, fixture_images: dict[str, str], slimmed: dict[str, Slimmed]
) -> None:
    """`slim diff SOURCE SLIM --report report.json` (the installed CLI) names exactly the
    paths the engine's own listings of the two images say were added, removed and
    changed (tests/engine_listing.py), and a reason for every file of the slim image."""
    item = slimmed[name]
    report = item.report_dir / "report.json"
    res = run_slim(
        "diff", fixture_images[name], item.output, "--format", "json", "--report", str(report)
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    added, removed, changed = expected_sets(engine, fixture_images[name], item.output)
    assert {p["path"] for p in doc["added"] if outside_init(p["path"])} == added
    assert {p["path"] for p in doc["removed"] if outside_init(p["path"])} == removed
    assert {c["path"] for c in doc["changed"] if outside_init(c["path"])} == changed
    assert doc["b_slimmed_from_a"] and doc["kept"]["matches"]
    assert doc["kept"]["unexplained"] == 0


@pytest.mark.parametrize("name", ["c-static", "py-batch"])
def test_compressed_size_is_gzip_of_the_saved_layers(
    name: str, engine: Engine, slimmed: dict[str, Slimmed], tmp_path: Path
) -> None:
    """The report's compressed size of the slim image is what gzip (level 6, as
    `docker push` uses) makes of each layer tar that `docker save` gives."""
    item = slimmed[name]
    archive = tmp_path / "out.tar"
    with open(archive, "wb") as out:
        engine.save_image(item.output, out)
    with tarfile.open(archive) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        members = manifest[0]["Layers"]
        layers = [tf.extractfile(m).read() for m in members]  # type: ignore[union-attr]
    expected = sum(len(gzip.compress(data, compresslevel=6, mtime=0)) for data in layers)
    assert item.report["after"]["compressed_bytes"] == expected
    assert item.report["after"]["compressed_method"] == "full"  # small layers: whole


@pytest.mark.parametrize("name", FIXTURES)
def test_html_report_in_a_real_browser(
    name: str, engine: Engine, fixture_images: dict[str, str], slimmed: dict[str, Slimmed]
) -> None:
    """Debian's chromium, driven by playwright, loads report.html offline: the
    treemaps are drawn, their numbers match report.json, no request leaves the page
    and the console has no error. The screenshot is kept in .cache/artifacts/."""
    require("chromium")
    from playwright.sync_api import sync_playwright

    item, doc = slimmed[name], slimmed[name].report
    page_path = item.report_dir / "report.html"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(page_path.as_uri())
            page.screenshot(path=str(ARTIFACTS / f"report-{name}.png"))
            after_rects = page.locator("#map-after rect").count()
            drawn = int(page.locator("#map-after").get_attribute("data-total") or -1)
            shown_after = page.locator("[data-bytes-after]").get_attribute("data-bytes-after")
            shown_before = page.locator("[data-bytes-before]").get_attribute("data-bytes-before")
            facts_rows = page.locator("table.facts tbody tr").count()
            page.locator("#kept th").nth(1).click()  # sort by bytes: the script runs
        finally:
            browser.close()
    assert requests == [page_path.as_uri()] and errors == []
    assert after_rects > 0 and drawn == sum(d["after"] for d in doc["dirs"])
    assert int(shown_after or -1) == doc["result"]["size_bytes"]
    assert int(shown_before or -1) == doc["source"]["size_bytes"]
    assert facts_rows >= 10  # the before/after table, as in report.md


CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


# A path no probe of py-http takes: getpriority(2), which the engine's default profile
# allows and no runtime group of ours does.
UNUSUAL = ProbeSpec(
    kind="exec",
    name="getpriority",
    cmd=("python3", "-c", "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"),
    expect_exit=0,
)


def test_seccomp_profile_is_enforced_and_the_refused_call_named(
    engine: Engine, slimmed: dict[str, Slimmed]
) -> None:
    item = slimmed["py-http"]
    allowed = {a["name"] for a in item.report["seccomp"]["allowed"]}
    assert "getpriority" not in allowed and {"socket", "accept4", "execve"} <= allowed
    profile = (item.report_dir / "seccomp.json").read_text()
    config = _config(engine, item.output)
    free = run_traced(engine, item.output, config, [UNUSUAL], traced=False)
    assert free.results[0].ok  # the path works without the profile
    under = run_traced(engine, item.output, config, [UNUSUAL], traced=False,
                       seccomp=SeccompRun(profile=profile))  # fmt: skip
    assert not under.results[0].ok and b"PermissionError" in under.results[0].output
    # the diagnosis slimmer runs when a probe fails: traced, under the profile plus the
    # sensor's own calls; the EPERM of a call outside the profile names it
    state = SeccompState(config.architecture or "amd64", Evidence(frozenset(allowed)))
    diag = run_traced(engine, item.output, config, [UNUSUAL], seccomp=state.diagnosing())
    assert [r.describe() for r in state.refused(diag.traces)] == ["getpriority (EPERM, by python3)"]
