"""`slim check` rules on in-memory inspections, and the command as a user runs it
on small synthetic archives (no engine)."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from slimmer.analyse import check
from slimmer.analyse.check import (
    Baseline,
    BudgetFacts,
    BudgetRule,
    CheckResult,
    Forbid,
    MaxCompressedSize,
    MaxFiles,
    MaxGrowth,
    MaxLayers,
    MaxReclaimable,
    MaxSize,
    MaxWasted,
    MinEfficiency,
    Status,
    Unit,
    evaluate,
)
from slimmer.analyse.inspect import Inspection, LayerRow
from slimmer.analyse.sizes import Amount
from slimmer.errors import ImageReadError
from slimmer.image.archive import LayerSource, open_archive
from slimmer.image.compressed import compressed_sizes, layer_gzip_size
from tests.dive import dive_binary
from tests.installed import run_slim
from tests.synth import M, docker_archive, layer, oci_layout


def inspection(**changes: Any) -> Inspection:
    """A 100 MB, 4-layer image with a shell, apt and one setuid file."""
    base = Inspection(
        ref="app:1",
        id="sha256:" + "ab" * 32,
        os="linux",
        architecture="amd64",
        size_bytes=100_000_000,
        tree_bytes=90_000_000,
        files=1000,
        directories=100,
        symlinks=10,
        layers=tuple(
            LayerRow(i, f"sha256:{i}", 25_000_000, 250, f"RUN step {i}") for i in range(4)
        ),
        largest_files=(),
        largest_dirs=(),
        efficiency=0.95,
        wasted_bytes=5_000_000,
        user_wasted_percent=5_000_000 / 75_000_000,
        reclaimable_bytes=4_000_000,
        inefficient_files=(),
        elf_files=10,
        elf_bytes=1000,
        shells=("/usr/bin/bash", "/usr/bin/dash"),
        setuid=("/usr/bin/su",),
        setgid=(),
        package_managers=("/usr/bin/apt",),
        caches=(),
        packages=(),
        warnings=(),
    )
    return replace(base, **changes)


PATHS = (
    "/",
    "/usr",
    "/usr/bin",
    "/usr/bin/bash",
    "/usr/bin/dash",
    "/usr/bin/su",
    "/usr/bin/apt",
    "/app",
    "/app/main.py",
    "/app/__pycache__/main.cpython-311.pyc",
    "/opt/tool/bin/x",
)


def facts(**changes: Any) -> BudgetFacts:
    return BudgetFacts(
        inspection(**changes),
        compressed_bytes=40_000_000,
        baseline=Baseline("base.json", "slimmer.inspect/v1", "app:0", 95_000_000),
        paths=PATHS,
    )


# Each case: a rule factory (threshold, warn) and thresholds that pass and that fail
# on `facts()`; the first passing threshold equals the measured value (limits are
# inclusive, as dive's).
CASES: list[tuple[str, Callable[[Any, bool], BudgetRule], list[Any], list[Any]]] = [
    ("max-size", MaxSize, [100_000_000, 200_000_000], [99_999_999, 0]),
    ("max-compressed-size", MaxCompressedSize, [40_000_000], [39_999_999]),
    ("max-layers", MaxLayers, [4, 10], [3, 0]),
    ("max-files", MaxFiles, [1000, 5000], [999]),
    ("min-efficiency", MinEfficiency, [0.95, 0.5, 0.0], [0.9500000000000001, 1.0]),
    (
        "max-wasted",
        MaxWasted,
        [Amount(bytes=5_000_000), Amount(ratio=5 / 75), Amount(ratio=0.1)],
        [Amount(bytes=4_999_999), Amount(ratio=0.05), Amount(bytes=0)],
    ),
    (
        "max-reclaimable",
        MaxReclaimable,
        [Amount(bytes=4_000_000), Amount(ratio=0.04)],
        [Amount(bytes=3_999_999), Amount(ratio=0.03)],
    ),
    (
        "max-growth",
        MaxGrowth,
        [Amount(bytes=5_000_000), Amount(ratio=5 / 95), Amount(ratio=0.1)],
        [Amount(bytes=4_999_999), Amount(ratio=0.05)],
    ),
    (
        "forbid",
        Forbid,
        ["/usr/bin/zsh", "@setgid", "*.exe", "/opt/*/x"],
        [
            "@shells",
            "@package-managers",
            "@setuid",
            "*.pyc",
            "/usr/bin/*sh",
            "/opt/**",
            "/opt/**/x",
            "main.py",
        ],
    ),
]


@pytest.mark.parametrize(("name", "make", "passing", "failing"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_passes_fails_and_warns(
    name: str, make: Callable[[Any, bool], BudgetRule], passing: list[Any], failing: list[Any]
) -> None:
    for threshold in passing:
        for warn in (False, True):
            result = make(threshold, warn).evaluate(facts())
            assert result.status is Status.PASS, (threshold, result)
            assert result.rule == name and result.warn is warn
    for threshold in failing:
        failed = make(threshold, False).evaluate(facts())
        assert failed.status is Status.FAIL, (threshold, failed)
        assert failed.broken
        warned = make(threshold, True).evaluate(facts())
        assert warned.status is Status.WARN, (threshold, warned)
        assert replace(warned, status=Status.FAIL, warn=False) == failed


def test_rule_results_carry_value_limit_and_bound() -> None:
    r = MaxSize(80_000_000).evaluate(facts())
    assert (r.id, r.unit, r.bound, r.value, r.limit) == (
        "max-size",
        Unit.BYTES,
        "max",
        100_000_000,
        80_000_000,
    )
    e = MinEfficiency(0.99).evaluate(facts())
    assert (e.unit, e.bound, e.value, e.limit) == (Unit.RATIO, "min", 0.95, 0.99)
    w = MaxWasted(Amount(ratio=0.01)).evaluate(facts())
    assert (w.unit, w.value) == (Unit.RATIO, 5_000_000 / 75_000_000)
    g = MaxGrowth(Amount(ratio=0.01)).evaluate(facts())
    assert (g.unit, g.value, g.note) == (Unit.RATIO, 5 / 95, "base.json")


def test_efficiency_and_wasted_follow_dive_comparisons() -> None:
    """dive: lowestEfficiency fails when threshold > efficiency; highestWastedBytes when
    wasted > threshold; highestUserWastedPercent when threshold < user-wasted."""
    ins = facts(efficiency=0.8, wasted_bytes=1000, user_wasted_percent=0.2)
    assert MinEfficiency(0.8).evaluate(ins).status is Status.PASS
    assert MinEfficiency(0.8000000000000002).evaluate(ins).status is Status.FAIL
    assert MaxWasted(Amount(bytes=1000)).evaluate(ins).status is Status.PASS
    assert MaxWasted(Amount(bytes=999)).evaluate(ins).status is Status.FAIL
    assert MaxWasted(Amount(ratio=0.2)).evaluate(ins).status is Status.PASS
    assert MaxWasted(Amount(ratio=0.19999999999999998)).evaluate(ins).status is Status.FAIL


def test_shrinking_passes_growth_rules() -> None:
    shrunk = facts(size_bytes=50_000_000)
    assert MaxGrowth(Amount(bytes=0)).evaluate(shrunk).status is Status.PASS
    assert MaxGrowth(Amount(ratio=0.0)).evaluate(shrunk).value < 0


def test_forbid_reports_every_offender_sorted() -> None:
    r = Forbid("/usr/bin/*").evaluate(facts())
    assert r.id == "forbid:/usr/bin/*" and r.unit is Unit.PATHS
    assert r.offenders == ("/usr/bin/apt", "/usr/bin/bash", "/usr/bin/dash", "/usr/bin/su")
    assert (r.value, r.limit) == (4, 0)
    assert Forbid("@shells").evaluate(facts()).offenders == ("/usr/bin/bash", "/usr/bin/dash")


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.pyc", "/a/b.pyc", True),
        ("*.pyc", "/b.pyc", True),
        ("*.pyc", "/a.pyc/b", False),
        ("bash", "/usr/bin/bash", True),
        ("bash", "/usr/bin/rbash", False),
        ("/usr/bin/*sh", "/usr/bin/bash", True),
        ("/usr/bin/*sh", "/usr/bin/x/bash", False),
        ("/usr/bin/*", "/usr/bin", False),
        ("/opt/**", "/opt/a/b/c", True),
        ("/opt/**", "/opt", False),
        ("/**/apt", "/apt", True),
        ("/**/apt", "/usr/bin/apt", True),
        ("/usr/**/*.a", "/usr/lib/x/libc.a", True),
        ("/usr/**/*.a", "/usr/libc.a", True),
        ("/bin/[bd]ash", "/bin/dash", True),
        ("/bin/[!b]ash", "/bin/bash", False),
        ("/bin/[!b]ash", "/bin/dash", True),
        ("/bin/?ash", "/bin/bash", True),
        ("/bin/?ash", "/bin//ash", False),
        ("/a[", "/a[", True),
        ("/a+b(c)", "/a+b(c)", True),
        ("usr/bin/sh", "/usr/bin/sh", True),
    ],
)
def test_glob_rules(pattern: str, path: str, matches: bool) -> None:
    assert bool(check.glob_regex(pattern).match(path)) is matches


def test_pattern_validation() -> None:
    assert check.is_valid_pattern("@shells") and check.is_valid_pattern("/x/*")
    assert not check.is_valid_pattern("@shell") and not check.is_valid_pattern(" ")


def test_verdict() -> None:
    rules: list[BudgetRule] = [MaxSize(200_000_000), MaxLayers(2, warn=True)]
    warned = evaluate(rules, facts())
    assert warned.verdict is Status.WARN
    assert [r.status for r in warned.results] == [Status.PASS, Status.WARN]
    failed = evaluate([*rules, MaxFiles(1)], facts())
    assert failed.verdict is Status.FAIL and failed.count(Status.FAIL) == 1
    assert evaluate(rules[:1], facts()).verdict is Status.PASS
    assert evaluate([], facts()).verdict is Status.PASS


def test_evaluate_keeps_measurements_and_is_pure() -> None:
    f = facts()
    before = replace(f)
    result = evaluate([MaxSize(1), Forbid("@shells")], f)
    assert f == before
    m = result.measurements
    assert (m.size_bytes, m.compressed_bytes, m.layers, m.files) == (
        100_000_000,
        40_000_000,
        4,
        1000,
    )
    assert (m.baseline_bytes, m.baseline_source) == (95_000_000, "base.json")
    assert (result.image, result.id) == ("app:1", "sha256:" + "ab" * 32)
    assert result == evaluate([MaxSize(1), Forbid("@shells")], f)


def test_rules_that_need_more_facts() -> None:
    assert check.needs_compressed([MaxSize(1), MaxCompressedSize(1)])
    assert not check.needs_compressed([MaxSize(1)])
    assert check.needs_paths([Forbid("*.pyc")])
    assert not check.needs_paths([Forbid("@shells"), MaxSize(1)])
    with pytest.raises(ValueError):
        MaxCompressedSize(1).evaluate(BudgetFacts(inspection()))
    with pytest.raises(ValueError):
        MaxGrowth(Amount(bytes=1)).evaluate(BudgetFacts(inspection()))


# -- the compressed size ------------------------------------------------------------------


def test_compressed_sizes_are_gzip_level_6(tmp_path: Path) -> None:
    layers = [
        layer(M("a", data=os.urandom(3000) + b"x" * 100_000)),
        layer(M("b/", "dir"), M("b/c", data=b"hello " * 5000)),
    ]
    expected = tuple(len(gzip.compress(data, compresslevel=6, mtime=0)) for data in layers)
    archive = open_archive("docker-archive", docker_archive(tmp_path / "d.tar", layers))
    assert compressed_sizes(archive) == expected
    assert expected[0] < len(layers[0]) and expected[1] < len(layers[1]) // 20
    # an OCI layout stores gzip already: it is read back and measured the same way
    oci = open_archive("oci", oci_layout(tmp_path / "oci", layers))
    assert compressed_sizes(oci) == expected


def test_compressed_size_of_a_truncated_layer(tmp_path: Path) -> None:
    data = gzip.compress(layer(M("a", data=os.urandom(50_000))), mtime=0)
    source = LayerSource(2, "sha256:" + "c" * 64, lambda: io.BytesIO(data[:-100]), len(data))
    with pytest.raises(ImageReadError, match=r"compressing layer 3 \(sha256:cccccccccccc\)"):
        layer_gzip_size(source)


# -- the command, end to end, on synthetic archives ------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def slim(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_slim(*args, cwd=cwd, env=env, timeout=300)


def image(tmp_path: Path, junk: int = 500) -> str:
    """Two layers: a shell, dpkg status and `junk` bytes the second layer deletes."""
    path = docker_archive(
        tmp_path / "img.tar",
        [
            layer(
                M("bin/", "dir"),
                M("bin/sh", data=b"\x7fELF" + b"\0" * 60, mode=0o755),
                M(
                    "var/lib/dpkg/status",
                    data=b"Package: dash\nStatus: install ok installed\nVersion: 0.5.12-2\n\n",
                ),
                M("tmp/junk", data=b"j" * junk),
            ),
            layer(M("tmp/.wh.junk"), M("usr/bin/su", data=b"su", mode=0o4755)),
        ],
    )
    return f"docker-archive:{path}"


@pytest.mark.e2e
def test_cli_exit_codes(tmp_path: Path) -> None:
    ref = image(tmp_path)
    ok = slim("check", ref, "--max-size", "1MB", "--max-layers", "2", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[-1] == "PASS: 2 passed" and ok.stderr == ""
    warned = slim("check", ref, "--max-layers", "1", "--warn", "max-layers", cwd=tmp_path)
    assert warned.returncode == 0, warned.stderr
    assert warned.stdout.splitlines()[-1] == "WARN: 1 warned"
    failed = slim("check", ref, "--max-size", "100B", "--max-layers", "2", cwd=tmp_path)
    assert failed.returncode == 3
    assert "FAIL  max-size" in failed.stdout and "PASS  max-layers" in failed.stdout
    assert failed.stderr.strip() == (
        f"slim: error: checking {ref}: budget exceeded, 1 rule failed: max-size"
    )
    bad_flag = slim("check", ref, "--max-size", "80XB", cwd=tmp_path)
    assert bad_flag.returncode == 2 and "'80XB'" in bad_flag.stderr
    no_rules = slim("check", ref, cwd=tmp_path)
    assert no_rules.returncode == 2 and "no rules to check" in no_rules.stderr
    missing = slim(
        "check", f"docker-archive:{tmp_path}/nope.tar", "--max-size", "1MB", cwd=tmp_path
    )
    assert missing.returncode == 1 and "no such file" in missing.stderr


@pytest.mark.e2e
def test_cli_report_is_printed_before_a_failure(tmp_path: Path) -> None:
    res = slim("check", image(tmp_path), "--max-size", "1", "--format", "json", cwd=tmp_path)
    assert res.returncode == 3
    doc = json.loads(res.stdout)
    assert doc["verdict"] == "fail" and doc["passed"] is False


@pytest.mark.e2e
def test_cli_every_rule_on_an_archive(tmp_path: Path) -> None:
    res = slim(
        "check",
        image(tmp_path),
        "--max-size",
        "1MB",
        "--max-compressed-size",
        "1MB",
        "--max-layers",
        "2",
        "--max-files",
        "3",
        "--min-efficiency",
        "0.2",
        "--max-wasted",
        "500B",
        "--max-reclaimable",
        "500B",
        "--forbid",
        "@shells",
        "--forbid",
        "*.pyc",
        "--warn",
        "forbid",
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    statuses = {r["id"]: r["status"] for r in doc["rules"]}
    assert statuses == {
        "max-size": "pass",
        "max-compressed-size": "pass",
        "max-layers": "pass",
        "max-files": "pass",
        "min-efficiency": "pass",
        "max-wasted": "pass",
        "max-reclaimable": "pass",
        "forbid:@shells": "warn",
        "forbid:*.pyc": "pass",
    }
    m = doc["measurements"]
    assert m["wasted_bytes"] == 500 and m["reclaimable_bytes"] == 500 and m["files"] == 3
    assert 0 < m["compressed_bytes"] < m["size_bytes"] + 1000


@pytest.mark.e2e
def test_cli_config_file_and_flags_override_it(tmp_path: Path) -> None:
    ref = image(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.slim.check]\nmax-size = "100B"\nmax-layers = 1\n'
        'warn = ["max-layers"]\n'
    )
    sub = tmp_path / "sub"
    sub.mkdir()
    from_file = slim("check", ref, cwd=sub)  # found in a parent directory
    assert from_file.returncode == 3
    assert "FAIL  max-size" in from_file.stdout and "WARN  max-layers" in from_file.stdout
    overridden = slim("check", ref, "--max-size", "1MB", "--no-warn", "max-layers", cwd=sub)
    assert overridden.returncode == 3
    assert "PASS  max-size" in overridden.stdout and "FAIL  max-layers" in overridden.stdout
    skipped = slim("check", ref, "--max-size", "1MB", "--skip", "max-layers", cwd=sub)
    assert skipped.returncode == 0, skipped.stdout
    ignored = slim("check", ref, "--no-config", "--max-files", "10", cwd=sub)
    assert ignored.returncode == 0 and "max-size" not in ignored.stdout


@pytest.mark.e2e
def test_cli_bad_config_values_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / ".slim.toml").write_text(
        '[check]\nmax-size = "80XB"\nmax-layers = "many"\nmin-efficency = 0.9\n'
    )
    res = slim("check", image(tmp_path), cwd=tmp_path)
    assert res.returncode == 2
    assert 'max-size = "80XB"' in res.stderr and 'max-layers = "many"' in res.stderr
    assert "'min-efficency' (did you mean 'min-efficiency'?)" in res.stderr


@pytest.mark.e2e
def test_cli_baseline_growth(tmp_path: Path) -> None:
    ref = image(tmp_path)
    saved = slim("inspect", ref, "--json", cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    (tmp_path / "base.json").write_text(saved.stdout)
    same = slim("check", ref, "--baseline", "base.json", "--max-growth", "0%", cwd=tmp_path)
    assert same.returncode == 0, same.stdout + same.stderr
    (tmp_path / "big").mkdir()
    bigger = image(tmp_path / "big", junk=5000)
    grown = slim(
        "check",
        bigger,
        "--baseline",
        "base.json",
        "--max-growth",
        "5%",
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert grown.returncode == 3
    rule = json.loads(grown.stdout)["rules"][0]
    assert rule["id"] == "max-growth" and rule["value"] > 0.05
    lonely = slim("check", ref, "--baseline", "base.json", cwd=tmp_path)
    assert lonely.returncode == 2 and "go together" in lonely.stderr
    junk = tmp_path / "junk.json"
    junk.write_text('{"schema": "other/v1"}')
    bad = slim("check", ref, "--baseline", str(junk), "--max-growth", "1%", cwd=tmp_path)
    assert bad.returncode == 2 and "not a slimmer report" in bad.stderr


@pytest.mark.e2e
def test_cli_output_file_and_github_summary(tmp_path: Path) -> None:
    ref = image(tmp_path)
    res = slim(
        "check",
        ref,
        "--max-layers",
        "1",
        "-o",
        "report.xml",
        "-o",
        "r.json",
        "-o",
        "r.md",
        cwd=tmp_path,
    )
    assert res.returncode == 3
    assert (tmp_path / "report.xml").read_text().startswith('<?xml version="1.0" encoding=')
    assert json.loads((tmp_path / "r.json").read_text())["verdict"] == "fail"
    assert (tmp_path / "r.md").read_text().startswith("### ")
    assert res.stdout.startswith("slim check ")  # --format's report goes to the log
    bad = slim("check", ref, "--max-layers", "1", "-o", "report.html", cwd=tmp_path)
    assert bad.returncode == 2 and "'report.html': name it .xml" in bad.stderr
    nowhere = slim("check", ref, "--max-layers", "1", "-o", "no/such/dir/r.xml", cwd=tmp_path)
    assert nowhere.returncode == 1
    assert "slim: error: writing the report to no/such/dir/r.xml: No such file" in nowhere.stderr
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    gh = slim(
        "check",
        ref,
        "--max-layers",
        "1",
        "--warn",
        "all",
        "--format",
        "github",
        cwd=tmp_path,
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert gh.returncode == 0, gh.stderr
    assert gh.stdout.startswith("::warning title=slim check%3A max-layers::")
    text = summary.read_text()
    assert text.startswith("earlier step\n### ") and "| `max-layers` |" in text


# -- dive's size parsing, against dive itself ------------------------------------------------

_DIVE_RULE = re.compile(r"^\s*(PASS|FAIL|WARN|\(skip\)): (\w+)", re.M)


def dive_ci(archive: Path, cwd: Path, **thresholds: str) -> dict[str, str]:
    """dive 0.13's CI verdict per rule for `archive` (rules not given are disabled)."""
    args = [dive_binary(), "--source", "docker-archive", str(archive), "--ci"]
    for rule in ("lowestEfficiency", "highestWastedBytes", "highestUserWastedPercent"):
        args += [f"--{rule}", thresholds.get(rule, "disabled")]
    proc = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env={"CI": "true", "PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )
    plain = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)
    verdicts = {rule: status.lower() for status, rule in _DIVE_RULE.findall(plain)}
    assert proc.returncode == (1 if "fail" in verdicts.values() else 0), plain + proc.stderr
    return verdicts


@pytest.mark.e2e
@pytest.mark.parametrize(
    "threshold", ["1.005kB", "1004", "1005", "1.005 KB", "1kB", "1KiB", "0.98KiB", "1.004999kB"]
)
def test_max_wasted_parses_sizes_as_dive_does(tmp_path: Path, threshold: str) -> None:
    """1.005kB is 1004 bytes to dive (float product, truncated): 1005 wasted bytes fail."""
    ref = image(tmp_path, junk=1005)
    archive = Path(ref.split(":", 1)[1])
    theirs = dive_ci(archive, tmp_path, highestWastedBytes=threshold)["highestWastedBytes"]
    res = slim("check", ref, "--max-wasted", threshold, "--format", "json", cwd=tmp_path)
    assert res.returncode in (0, 3), res.stderr
    ours = json.loads(res.stdout)["rules"][0]
    assert ours["value"] == 1005
    assert ours["status"] == theirs, (threshold, ours["limit"])


def test_check_result_is_a_value() -> None:
    result = evaluate([MaxSize(1)], facts())
    assert isinstance(result, CheckResult)
    with pytest.raises(AttributeError):
        result.image = "x"  # type: ignore[misc]
