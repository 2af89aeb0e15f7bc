"""`slim check` settings: the config file, per-image sections, precedence, rules."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from slimmer.analyse import check
from slimmer.analyse.check import SCHEMA as CHECK_SCHEMA
from slimmer.analyse.checkconfig import (
    RULE_NAMES,
    CheckSettings,
    build_rules,
    find_config,
    image_matches,
    load_baseline,
    load_config,
    merge,
    parse_table,
    resolve,
    settings_for,
    with_flags,
)
from slimmer.analyse.inspect import SCHEMA as INSPECT_SCHEMA
from slimmer.analyse.sizes import Amount
from slimmer.cli.params import PATTERN
from slimmer.errors import UsageError

FULL = """
[tool.slim.check]
max-size = "80MB"
max-compressed-size = "30MiB"
max-layers = 12
max-files = 20000
min-efficiency = "95%"
max-wasted = "20MB"
max-reclaimable = "5%"
forbid = ["@shells", "/usr/bin/apt*"]
baseline = "reports/app.json"
max-growth = "5%"
warn = ["max-files", "forbid"]
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_every_key_parses(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "pyproject.toml", FULL))
    assert cfg is not None and cfg.section == "[tool.slim.check]"
    s = settings_for(cfg, "app:1")
    assert s == CheckSettings(
        max_size=80_000_000,
        max_compressed_size=30 << 20,
        max_layers=12,
        max_files=20000,
        min_efficiency=0.95,
        max_wasted=Amount(bytes=20_000_000),
        max_reclaimable=Amount(ratio=0.05),
        forbid=("@shells", "/usr/bin/apt*"),
        baseline=tmp_path / "reports/app.json",
        max_growth=Amount(ratio=0.05),
        warn=(("max-files", True), ("forbid", True)),
    )


def test_snake_case_keys_and_plain_numbers(tmp_path: Path) -> None:
    settings, errors = parse_table(
        {"max_size": 1000, "min_efficiency": 0.9, "max_wasted": 0, "forbid": "*.pyc"},
        "[check]",
        tmp_path,
    )
    assert errors == []
    assert settings.max_size == 1000 and settings.min_efficiency == 0.9
    assert settings.max_wasted == Amount(bytes=0) and settings.forbid == ("*.pyc",)


def test_all_bad_values_are_reported_at_once_with_key_and_value(tmp_path: Path) -> None:
    write(
        tmp_path / ".slim.toml",
        """
[check]
max-size = "80XB"
max-layers = "many"
max-files = -3
min-efficiency = 1.5
max-wasted = "0.1"
forbid = ["@shell", 3]
warn = ["max-sise"]
max-grwoth = "5%"
baseline = ""

[check.images."app:*"]
max-size = true

[check.images."other:*"]
max-layers = 1.5
""",
    )
    cfg = load_config(tmp_path / ".slim.toml")
    assert cfg is not None
    with pytest.raises(UsageError) as err:
        settings_for(cfg, "unrelated:1")
    message = str(err.value)
    assert message.startswith(f"bad values in {tmp_path / '.slim.toml'}:\n")
    expected = [
        "[check]: max-size = \"80XB\": unknown size unit 'XB'",
        '[check]: max-layers = "many": not a whole number',
        "[check]: max-files = -3: must be a whole number, 0 or more",
        "[check]: min-efficiency = 1.5: must be between 0 and 1",
        '[check]: max-wasted = "0.1": ambiguous',
        '[check]: forbid = ["@shell", 3]: must be a list of strings',
        "[check]: warn = [\"max-sise\"]: unknown rule 'max-sise' (did you mean 'max-size'?)",
        "[check]: unknown key 'max-grwoth' (did you mean 'max-growth'?)",
        '[check]: baseline = "": empty path',
        '[check.images."app:*"]: max-size = true: not a size',
        '[check.images."other:*"]: max-layers = 1.5: must be a whole number, 0 or more',
    ]
    for line in expected:
        assert line in message, line
    assert len(message.splitlines()) == 1 + len(expected)


def test_unknown_forbid_class_is_named(tmp_path: Path) -> None:
    _, errors = parse_table({"forbid": ["@shells", "@shell"]}, "[check]", tmp_path)
    assert errors == [
        '[check]: forbid = ["@shells", "@shell"]: not a glob or a known class '
        "(@shells, @package-managers, @setuid, @setgid): '@shell'"
    ]


def test_images_must_be_tables(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / ".slim.toml", '[check]\nimages = "app"\n'))
    assert cfg is not None
    with pytest.raises(UsageError, match="must be a table of tables"):
        settings_for(cfg, "app")


# -- finding the file -------------------------------------------------------------------------


def test_find_config_prefers_slim_toml_and_walks_up(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.slim.check]\nmax-size = "1MB"\n')
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    write(tmp_path / "a" / "pyproject.toml", '[project]\nname = "no-slim-table"\n')
    found = find_config(deep)
    assert found is not None and found.path == tmp_path / "pyproject.toml"
    write(tmp_path / ".slim.toml", "[check]\nmax-layers = 3\n")
    found = find_config(deep)
    assert found is not None and found.path == tmp_path / ".slim.toml"
    assert found.section == "[check]"


def test_slim_toml_may_use_the_pyproject_table(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / ".slim.toml", "[tool.slim.check]\nmax-layers = 3\n"))
    assert cfg is not None and cfg.section == "[tool.slim.check]"


def test_pyproject_check_table_is_not_ours(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", "[check]\nmax-layers = 3\n")
    assert load_config(path, required=False) is None
    with pytest.raises(UsageError, match="no \\[tool.slim.check\\] or \\[check\\] table"):
        load_config(path)


def test_unreadable_config_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(UsageError, match="reading config .*broken.toml"):
        load_config(write(tmp_path / "broken.toml", "[check\n"))
    with pytest.raises(UsageError, match="is not a table"):
        load_config(write(tmp_path / "scalar.toml", "check = 3\n"))


# -- per-image sections and precedence -----------------------------------------------------------

PER_IMAGE = """
[tool.slim.check]
max-size = "100MB"
max-layers = 10
forbid = ["@shells"]
warn = ["max-layers"]

[tool.slim.check.images."app:*"]
max-size = "120MB"
forbid = ["@setuid"]

[tool.slim.check.images."app:debug*"]
max-size = "300MB"
skip = ["forbid"]

[tool.slim.check.images."registry.example/*"]
max-files = 5
"""


@pytest.mark.parametrize(
    ("image", "size", "forbid", "files"),
    [
        ("other:1", 100_000_000, ("@shells",), None),
        ("app:1", 120_000_000, ("@setuid",), None),
        ("app", 120_000_000, ("@setuid",), None),  # an untagged name is NAME:latest
        ("app:debug-2", 300_000_000, None, None),
        ("registry.example/team/app:1", 100_000_000, ("@shells",), 5),
        ("registry.example:5000/app", 100_000_000, ("@shells",), None),
    ],
)
def test_image_sections_apply_in_file_order(
    tmp_path: Path, image: str, size: int, forbid: tuple[str, ...] | None, files: int | None
) -> None:
    cfg = load_config(write(tmp_path / "pyproject.toml", PER_IMAGE))
    assert cfg is not None
    s = settings_for(cfg, image)
    assert (s.max_size, s.forbid, s.max_files, s.max_layers) == (size, forbid, files, 10)
    assert s.warns("max-layers")


def test_image_matches() -> None:
    assert image_matches("app:*", "app")
    assert image_matches("app:latest", "app")
    assert not image_matches("app:latest", "app:1")
    assert not image_matches("app:*", "myapp:1")
    assert image_matches("*/app@sha256:*", "reg.io/app@sha256:abc")
    assert image_matches("docker-archive:*", "docker-archive:/tmp/x.tar")


def test_flags_override_the_file(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", PER_IMAGE)
    flags = with_flags(
        max_size=50_000_000,
        forbid=("*.pyc",),
        warn=(("max-layers", False),),
        max_files=None,
        max_layers=None,
    )
    s = resolve("app:1", flags, search_from=tmp_path)
    assert s.max_size == 50_000_000 and s.forbid == ("*.pyc",) and s.max_layers == 10
    assert not s.warns("max-layers")
    assert resolve("app:1", CheckSettings(), search_from=tmp_path).max_size == 120_000_000
    assert resolve("app:1", flags).max_layers is None  # no config file at all
    explicit = write(tmp_path / "ci" / "budget.toml", "[check]\nmax-layers = 2\n")
    assert resolve("app:1", flags, config=explicit, search_from=tmp_path).max_layers == 2


def test_merge_rules() -> None:
    lower = CheckSettings(max_size=1, max_layers=2, forbid=("a",), warn=(("max-size", True),))
    upper = CheckSettings(max_layers=3, skip=("max-size",), warn=(("all", True),))
    merged = merge(lower, upper)
    assert merged.max_size is None and merged.max_layers == 3 and merged.forbid == ("a",)
    assert merged.warns("max-layers") and merged.warns("forbid")
    assert not merge(merged, CheckSettings(warn=(("max-layers", False),))).warns("max-layers")
    assert merge(merged, CheckSettings(max_size=9)).max_size == 9  # a higher level sets it again
    grown = CheckSettings(baseline=Path("b.json"), max_growth=Amount(ratio=0.1))
    assert merge(grown, CheckSettings(skip=("max-growth",))).baseline is None


def test_with_flags_ignores_unset_values() -> None:
    assert with_flags(max_size=None, forbid=(), warn=(), skip=(), junk=1) == CheckSettings()
    assert with_flags(max_layers=0).max_layers == 0


# -- settings -> rules -----------------------------------------------------------------------------


def test_build_rules_in_a_fixed_order() -> None:
    s = CheckSettings(
        max_growth=Amount(ratio=0.05),
        baseline=Path("b.json"),
        forbid=("@shells", "x", "x"),
        max_size=1,
        min_efficiency=0.9,
        max_layers=3,
        max_compressed_size=2,
        max_files=4,
        max_wasted=Amount(bytes=5),
        max_reclaimable=Amount(ratio=0.1),
        max_findings="high",
        warn=(("forbid", True), ("max-size", True)),
    )
    rules = build_rules(s)
    assert [r.id for r in rules] == [
        "max-size",
        "max-compressed-size",
        "max-layers",
        "max-files",
        "min-efficiency",
        "max-wasted",
        "max-reclaimable",
        "forbid:@shells",
        "forbid:x",
        "max-growth",
        "max-findings",
    ]
    assert [r.warn for r in rules] == [
        True,
        False,
        False,
        False,
        False,
        False,
        False,
        True,
        True,
        False,
        False,
    ]
    assert rules[0] == check.MaxSize(1, True)
    assert {r.name for r in rules} == set(RULE_NAMES)


def test_build_rules_refuses_what_does_not_add_up() -> None:
    with pytest.raises(UsageError, match="no rules to check"):
        build_rules(CheckSettings())
    with pytest.raises(UsageError, match="go together"):
        build_rules(CheckSettings(max_size=1, baseline=Path("b.json")))
    with pytest.raises(UsageError, match="go together"):
        build_rules(CheckSettings(max_growth=Amount(ratio=0.1)))


def test_warn_all() -> None:
    rules = build_rules(CheckSettings(max_size=1, max_layers=1, warn=(("all", True),)))
    assert all(r.warn for r in rules)


# -- the baseline ------------------------------------------------------------------------


def test_load_baseline_from_inspect_and_check_reports(tmp_path: Path) -> None:
    inspect_doc = {"schema": INSPECT_SCHEMA, "image": {"ref": "app:1", "size_bytes": 42}}
    b = load_baseline(write(tmp_path / "i.json", json.dumps(inspect_doc)))
    assert b == check.Baseline(str(tmp_path / "i.json"), INSPECT_SCHEMA, "app:1", 42)
    check_doc = {
        "schema": CHECK_SCHEMA,
        "image": {"ref": "app:2", "id": "x"},
        "measurements": {"size_bytes": 7},
    }
    assert load_baseline(write(tmp_path / "c.json", json.dumps(check_doc))).size_bytes == 7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "reading baseline"),
        ("[]", "not a slimmer report \\(schema missing\\)"),
        ('{"schema": "dive/v1"}', "not a slimmer report \\(schema dive/v1\\)"),
        ('{"schema": "slimmer.inspect/v1", "image": {"size_bytes": "1"}}', "no image.size_bytes"),
        ('{"schema": "slimmer.check/v1"}', "no measurements.size_bytes"),
    ],
)
def test_bad_baselines(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_baseline(write(tmp_path / "b.json", text))
    with pytest.raises(UsageError, match="no such file"):
        load_baseline(tmp_path / "none.json")


def test_pattern_param() -> None:
    @click.command()
    @click.option("--forbid", type=PATTERN, multiple=True)
    def cmd(forbid: tuple[str, ...]) -> None:
        click.echo(",".join(forbid))

    assert CliRunner().invoke(cmd, ["--forbid", "@setuid", "--forbid", "*.pyc"]).output == (
        "@setuid,*.pyc\n"
    )
    bad = CliRunner().invoke(cmd, ["--forbid", "@suid"])
    assert bad.exit_code == 2 and "'@suid': not a glob or a known class" in bad.output
