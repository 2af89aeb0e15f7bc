"""`slim check` settings: the config file, per-image sections, flags, and rules.

Where rules come from, lowest precedence first:
1. the check table of the config file: `[check]` in `.slim.toml`, or
   `[tool.slim.check]` in `pyproject.toml` (`.slim.toml` may use either);
2. every `images."PATTERN"` sub-table whose pattern matches the image, in file
   order, later ones overriding earlier ones;
3. the command-line flags.
A higher level overrides a lower one key by key: `forbid` replaces the whole
list, `warn`/`skip` override per rule.

The config file is `--config PATH`, or else the first `.slim.toml` or
`pyproject.toml` holding a check table, looking in the current directory and
then each parent (in one directory `.slim.toml` is looked at first).

    [tool.slim.check]
    max-size = "80MB"               # uncompressed; 80MB, 1.5GiB or bytes
    max-compressed-size = "30MB"    # gzip, as a registry would store it
    max-layers = 12
    max-files = 20000
    min-efficiency = 0.95           # dive's lowestEfficiency; or "95%"
    max-wasted = "20MB"             # dive's highestWastedBytes; "10%": highestUserWastedPercent
    max-reclaimable = "5%"          # bytes hidden by upper layers; or a size
    forbid = ["@shells", "@package-managers", "@setuid", "/usr/bin/*sh"]
    baseline = "reports/app.json"   # relative to this file
    max-growth = "5%"               # or "10MB"
    max-findings = "high"           # no `slim lint` finding this severe (low ... critical)
    warn = ["max-files"]            # these rules warn instead of failing ("all": every rule)
    skip = []                       # turn off rules set by a lower level

    [tool.slim.check.images."registry.example/app:*"]
    max-size = "120MB"

Keys may be spelled with `_` instead of `-`. Every bad key or value in the file
(in every image section, matching or not) is reported at once, each with its
key and value, as one `UsageError`.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from slimmer.analyse import check, inspect
from slimmer.analyse.sizes import (
    Amount,
    SizeError,
    parse_amount,
    parse_count,
    parse_ratio,
    parse_size,
)
from slimmer.errors import UsageError
from slimmer.model import SLIM_SCHEMA

RULE_NAMES = (
    "max-size",
    "max-compressed-size",
    "max-layers",
    "max-files",
    "min-efficiency",
    "max-wasted",
    "max-reclaimable",
    "forbid",
    "max-growth",
    "max-findings",
)
CONFIG_FILES = (".slim.toml", "pyproject.toml")


@dataclass(frozen=True)
class CheckSettings:
    """Budget rule settings from one level (file, image section or flags); None: not set.

    `warn` maps rule names to whether they only warn (later pairs win); `skip`
    names rules this level turns off, whatever lower levels said.
    """

    max_size: int | None = None
    max_compressed_size: int | None = None
    max_layers: int | None = None
    max_files: int | None = None
    min_efficiency: float | None = None
    max_wasted: Amount | None = None
    max_reclaimable: Amount | None = None
    forbid: tuple[str, ...] | None = None
    baseline: Path | None = None
    max_growth: Amount | None = None
    max_findings: str | None = None
    warn: tuple[tuple[str, bool], ...] = ()
    skip: tuple[str, ...] = ()

    def warns(self, rule: str) -> bool:
        result = False
        for name, warn in self.warn:  # later pairs win; "all" names every rule
            if name in (rule, "all"):
                result = warn
        return result


_RULE_FIELDS = {name: name.replace("-", "_") for name in RULE_NAMES}


def merge(lower: CheckSettings, upper: CheckSettings) -> CheckSettings:
    """`upper` overrides `lower` key by key; a rule `upper` skips is turned off."""
    values: dict[str, Any] = {}
    for name, attr in _RULE_FIELDS.items():
        mine = getattr(upper, attr)
        values[attr] = (
            None if name in upper.skip else (mine if mine is not None else getattr(lower, attr))
        )
    values["baseline"] = upper.baseline if upper.baseline is not None else lower.baseline
    if "max-growth" in upper.skip:
        values["baseline"] = None
    values["warn"] = lower.warn + upper.warn
    values["skip"] = tuple(sorted(set(lower.skip) | set(upper.skip)))
    return CheckSettings(**values)


# -- parsing a table --------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    attr: str
    parse: Callable[[Any, Path], Any]


def _patterns(value: Any, _: Path) -> tuple[str, ...]:
    items = _strings(value)
    bad = [p for p in items if not check.is_valid_pattern(p)]
    if bad:
        raise SizeError(
            f"not a glob or a known class ({', '.join(check.CLASSES)}): "
            + ", ".join(repr(b) for b in bad)
        )
    return items


def _path(value: Any, base: Path) -> Path:
    text: str = _scalar(value, str)
    if not text.strip():
        raise SizeError("empty path")
    return base / text


def _rule_names(value: Any, _: Path) -> tuple[str, ...]:
    names = _strings(value)
    bad = [n for n in names if n not in RULE_NAMES and n != "all"]
    if bad:
        raise SizeError(
            f"unknown rule {bad[0]!r}{_suggest(bad[0], RULE_NAMES)} "
            f"(rules: {', '.join(RULE_NAMES)}, all)"
        )
    return names


def _scalar(value: Any, *types: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, types):
        names = {str: "a string", int: "an integer", float: "a number"}
        wanted = " or ".join(names[t] for t in types)
        raise SizeError(f"must be {wanted}")
    return value


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SizeError("must be a list of strings")
    return tuple(value)


def parse_severity(value: Any) -> str:
    """A `slim lint` severity: low, medium, high or critical (any case)."""
    text = value.strip().lower() if isinstance(value, str) else ""
    if text not in check.SEVERITIES:
        raise SizeError(f"must be a severity: {', '.join(check.SEVERITIES)}")
    return text


_KEYS: dict[str, _Key] = {
    "max-size": _Key("max_size", lambda v, _: parse_size(v)),
    "max-compressed-size": _Key("max_compressed_size", lambda v, _: parse_size(v)),
    "max-layers": _Key("max_layers", lambda v, _: parse_count(v)),
    "max-files": _Key("max_files", lambda v, _: parse_count(v)),
    "min-efficiency": _Key("min_efficiency", lambda v, _: parse_ratio(v)),
    "max-wasted": _Key("max_wasted", lambda v, _: parse_amount(v)),
    "max-reclaimable": _Key("max_reclaimable", lambda v, _: parse_amount(v)),
    "forbid": _Key("forbid", _patterns),
    "baseline": _Key("baseline", _path),
    "max-growth": _Key("max_growth", lambda v, _: parse_amount(v)),
    "max-findings": _Key("max_findings", lambda v, _: parse_severity(v)),
    "warn": _Key("warn", _rule_names),
    "skip": _Key("skip", _rule_names),
}


def parse_table(
    table: Mapping[str, Any], where: str, base: Path
) -> tuple[CheckSettings, list[str]]:
    """One check table (without its `images`) -> settings and the bad values found.

    `where` names the table in messages; `base` is the directory relative paths
    are taken from.
    """
    values: dict[str, Any] = {}
    errors: list[str] = []
    for key, value in table.items():
        if key == "images":
            continue
        spec = _KEYS.get(key.replace("_", "-"))
        if spec is None:
            errors.append(f"{where}: unknown key {key!r}{_suggest(key, _KEYS)}")
            continue
        try:
            values[spec.attr] = spec.parse(value, base)
        except SizeError as exc:
            errors.append(f"{where}: {key} = {_show(value)}: {exc}")
    if "warn" in values:
        values["warn"] = tuple((name, True) for name in values["warn"])
    return CheckSettings(**values), errors


def _show(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word.replace("_", "-"), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- the config file ----------------------------------------------------------------


@dataclass(frozen=True)
class ConfigFile:
    """A check table read from a file, with the name of the table."""

    path: Path
    section: str
    table: Mapping[str, Any]


def find_config(start: Path) -> ConfigFile | None:
    """The first config file with a check table in `start` or a parent (see module doc)."""
    for directory in (start, *start.parents):
        for name in CONFIG_FILES:
            candidate = directory / name
            if candidate.is_file():
                found = load_config(candidate, required=False)
                if found is not None:
                    return found
    return None


def load_config(path: Path, required: bool = True) -> ConfigFile | None:
    """Read the check table of `path`; None (or a UsageError if `required`) when absent."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"reading config {path}: no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"reading config {path}: {exc}") from exc
    for section, keys in (
        ("[tool.slim.check]", ("tool", "slim", "check")),
        ("[check]", ("check",)),
    ):
        table: Any = doc
        for key in keys:
            table = table.get(key) if isinstance(table, dict) else None
        if table is not None:
            if not isinstance(table, dict):
                raise UsageError(f"reading config {path}: {section} is not a table")
            return ConfigFile(path, section, table)
        if path.name == "pyproject.toml":
            break  # pyproject.toml has no top-level [check] of ours
    if required:
        raise UsageError(f"reading config {path}: no [tool.slim.check] or [check] table")
    return None


def settings_for(config: ConfigFile, image: str) -> CheckSettings:
    """The file's settings for `image`: the check table, then matching image sections.

    Raises one UsageError listing every bad key and value in the whole table.
    """
    base = config.path.parent
    settings, errors = parse_table(config.table, config.section, base)
    images = config.table.get("images", {})
    if not isinstance(images, dict):
        errors.append(f"{config.section}: images = {_show(images)}: must be a table of tables")
        images = {}
    for pattern, table in images.items():
        where = f"{config.section[:-1]}.images.{json.dumps(pattern)}]"
        if not isinstance(table, dict):
            errors.append(f"{where}: must be a table")
            continue
        section, more = parse_table(table, where, base)
        errors.extend(more)
        if "images" in table:
            errors.append(f"{where}: images sections do not nest")
        if image_matches(pattern, image):
            settings = merge(settings, section)
    if errors:
        raise UsageError(f"bad values in {config.path}:\n  " + "\n  ".join(errors))
    return settings


def image_matches(pattern: str, image: str) -> bool:
    """fnmatch `pattern` against the image as given; an untagged name also as NAME:latest."""
    names = [image]
    last = image.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        names.append(image + ":latest")
    return any(fnmatch.fnmatchcase(name, pattern) for name in names)


def resolve(
    image: str,
    flags: CheckSettings,
    *,
    config: Path | None = None,
    search_from: Path | None = None,
) -> CheckSettings:
    """Settings for `image`: the config file (`config`, or found from `search_from`;
    neither: no file) overridden by `flags`."""
    found = (
        load_config(config)
        if config is not None
        else (find_config(search_from) if search_from is not None else None)
    )
    base = settings_for(found, image) if found is not None else CheckSettings()
    return merge(base, flags)


# -- settings -> rules ------------------------------------------------------------------

_BUILDERS: dict[str, Callable[[Any, bool], check.BudgetRule]] = {
    "max-size": lambda v, w: check.MaxSize(v, w),
    "max-compressed-size": lambda v, w: check.MaxCompressedSize(v, w),
    "max-layers": lambda v, w: check.MaxLayers(v, w),
    "max-files": lambda v, w: check.MaxFiles(v, w),
    "min-efficiency": lambda v, w: check.MinEfficiency(v, w),
    "max-wasted": lambda v, w: check.MaxWasted(v, w),
    "max-reclaimable": lambda v, w: check.MaxReclaimable(v, w),
    "max-growth": lambda v, w: check.MaxGrowth(v, w),
    "max-findings": lambda v, w: check.MaxFindings(v, w),
}


def build_rules(settings: CheckSettings) -> tuple[check.BudgetRule, ...]:
    """The rules `settings` asks for, in `RULE_NAMES` order; UsageError when they
    don't add up (no rule at all, a baseline without `max-growth` or the reverse)."""
    if (settings.baseline is None) != (settings.max_growth is None):
        raise UsageError("--baseline and --max-growth go together: give both or neither")
    rules: list[check.BudgetRule] = []
    for name in RULE_NAMES:
        value = getattr(settings, _RULE_FIELDS[name])
        if value is None:
            continue
        if name == "forbid":
            rules.extend(check.Forbid(p, settings.warns(name)) for p in dict.fromkeys(value))
        else:
            rules.append(_BUILDERS[name](value, settings.warns(name)))
    if not rules:
        raise UsageError(
            "no rules to check: give one (e.g. --max-size 80MB) or set them in "
            "[tool.slim.check] of pyproject.toml or [check] of .slim.toml"
        )
    return tuple(rules)


def with_flags(**values: Any) -> CheckSettings:
    """CheckSettings from keyword flags, ignoring unset (None or empty) ones."""
    names = {f.name for f in fields(CheckSettings)}
    given = {k: v for k, v in values.items() if k in names and v not in (None, (), [])}
    return replace(CheckSettings(), **given)


# -- the baseline ---------------------------------------------------------------------------


def _family(schema: str) -> str:
    """`slimmer.inspect/` of `slimmer.inspect/v1`: a baseline of any version is read."""
    return schema.rsplit("/", 1)[0] + "/"


_BASELINE_KEYS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (_family(inspect.SCHEMA), ("image", "size_bytes")),
    (_family(check.SCHEMA), ("measurements", "size_bytes")),
    (_family(SLIM_SCHEMA), ("result", "size_bytes")),
)


def load_baseline(path: Path) -> check.Baseline:
    """Read the image size from a saved `slim inspect --json` or `slim check --format
    json` report (or a slim report); UsageError when it is not one."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"reading baseline {path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"reading baseline {path}: {exc}") from exc
    schema = str(doc.get("schema", "")) if isinstance(doc, dict) else ""
    for prefix, keys in _BASELINE_KEYS:
        if schema.startswith(prefix):
            size = _dig(doc, keys)
            if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
                return check.Baseline(str(path), schema, _baseline_ref(doc), size)
            raise UsageError(f"reading baseline {path}: no {'.'.join(keys)} in a {schema} report")
    raise UsageError(
        f"reading baseline {path}: not a slimmer report (schema {schema or 'missing'}); "
        "save one with `slim inspect --json` or `slim check --format json`"
    )


def _dig(doc: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        doc = doc.get(key) if isinstance(doc, dict) else None
    return doc


def _baseline_ref(doc: Mapping[str, Any]) -> str:
    ref = _dig(doc, ("image", "ref"))
    return ref if isinstance(ref, str) else ""
