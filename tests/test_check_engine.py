"""`slim check` on the fixture images, against dive 0.13's CI mode.

For every fixture, `--min-efficiency` and `--max-wasted` (bytes, and as a
percentage: dive's highestUserWastedPercent) must pass or fail exactly where
dive's lowestEfficiency / highestWastedBytes / highestUserWastedPercent do,
with thresholds at the measured value, one float step (or one byte) either side
of it, a little further away, and written with units dive parses its own way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from slimmer import api
from slimmer.analyse.check import BudgetFacts, evaluate
from slimmer.analyse.checkconfig import build_rules, with_flags
from slimmer.analyse.inspect import Inspection
from slimmer.analyse.sizes import Amount, parse_amount, parse_ratio
from slimmer.engine import Engine
from tests.dive import DIVE_FIXTURES
from tests.installed import run_slim
from tests.test_check import dive_ci

pytestmark = pytest.mark.engine

DIVE_RULES = ("lowestEfficiency", "highestWastedBytes", "highestUserWastedPercent")


@dataclass(frozen=True)
class Thresholds:
    """One dive run: its flags, in dive's spelling (None: rule disabled)."""

    efficiency: str | None = None
    wasted: str | None = None
    user_wasted: str | None = None

    def dive(self) -> dict[str, str]:
        given = {
            "lowestEfficiency": self.efficiency,
            "highestWastedBytes": self.wasted,
            "highestUserWastedPercent": self.user_wasted,
        }
        return {k: v for k, v in given.items() if v is not None}


def _ratio_steps(value: float) -> list[str]:
    """The value itself, one float step either side, and 1e-6 either side, in [0, 1]
    (dive refuses ratios outside it)."""
    steps = [
        value,
        math.nextafter(value, -math.inf),
        math.nextafter(value, math.inf),
        value - 1e-6,
        value + 1e-6,
    ]
    return [repr(s) for s in steps if 0 <= s <= 1]


def _byte_steps(value: int) -> list[str]:
    """The value, one byte either side, and the value written with units (which dive
    turns into bytes through float products, truncated)."""
    steps = [
        str(value),
        str(value - 1),
        str(value + 1),
        f"{value / 1000!r}kB",
        f"{value / 1e6!r} MB",
        f"{value / 1024!r}KiB",
        f"{(value - 1) / 1000!r}kb",
    ]
    return [s for s in steps if not s.startswith("-")]


def plans(efficiency: float, wasted: int, user_wasted: float) -> list[Thresholds]:
    eff, waste, user = _ratio_steps(efficiency), _byte_steps(wasted), _ratio_steps(user_wasted)
    return [
        Thresholds(
            eff[i] if i < len(eff) else None,
            waste[i] if i < len(waste) else None,
            user[i] if i < len(user) else None,
        )
        for i in range(max(len(eff), len(waste), len(user)))
    ]


def slim_verdicts(ins: Inspection, t: Thresholds) -> dict[str, str]:
    """slim check's verdict per dive rule for the same thresholds, written as a slim
    user would write them (dive's user-wasted ratio becomes a --max-wasted percentage)."""
    out: dict[str, str] = {}
    runs = [
        (
            "lowestEfficiency",
            with_flags(min_efficiency=parse_ratio(t.efficiency) if t.efficiency else None),
        ),
        ("highestWastedBytes", with_flags(max_wasted=parse_amount(t.wasted) if t.wasted else None)),
        (
            "highestUserWastedPercent",
            with_flags(
                max_wasted=parse_amount(f"{Decimal(t.user_wasted) * 100:f}%")
                if t.user_wasted
                else None
            ),
        ),
    ]
    for dive_rule, flags in runs:
        if dive_rule in t.dive():
            (result,) = evaluate(build_rules(flags), BudgetFacts(ins)).results
            out[dive_rule] = str(result.status)
    return out


def test_min_efficiency_and_max_wasted_decide_as_dive_does(
    engine: Engine, fixture_images: dict[str, str], tmp_path: Path
) -> None:
    compared: list[str] = []
    for name, tag in sorted((n, fixture_images[n]) for n in DIVE_FIXTURES):
        archive = tmp_path / f"{name}.tar"
        with open(archive, "wb") as out:
            engine.save_image(tag, out)
        ref = f"docker-archive:{archive}"
        ins = api.inspect_image(ref)
        m = api.check_image(
            ref,
            with_flags(min_efficiency=0.0, max_wasted=Amount(bytes=0)),
        ).measurements  # the full command path measures the same
        assert (m.efficiency, m.wasted_bytes, m.user_wasted_percent) == (
            ins.efficiency,
            ins.wasted_bytes,
            ins.user_wasted_percent,
        )
        decided: dict[str, set[str]] = {rule: set() for rule in DIVE_RULES}
        for t in plans(m.efficiency, m.wasted_bytes, m.user_wasted_percent):
            theirs = {
                k: v for k, v in dive_ci(archive, tmp_path, **t.dive()).items() if k in t.dive()
            }
            ours = slim_verdicts(ins, t)
            assert ours == theirs, (name, t, m)
            for rule, status in ours.items():
                decided[rule].add(status)
        archive.unlink()
        compared.append(
            f"{name}: efficiency={m.efficiency!r} wasted={m.wasted_bytes} "
            f"user_wasted={m.user_wasted_percent!r} "
            + " ".join(f"{k}={'/'.join(sorted(v))}" for k, v in decided.items())
        )
        if m.wasted_bytes > 0:  # one byte less than the waste fails: both outcomes were seen
            assert decided["highestWastedBytes"] == {"pass", "fail"}, name
        if 0 < m.efficiency < 1:
            assert decided["lowestEfficiency"] == {"pass", "fail"}, name
    assert len(compared) == len(DIVE_FIXTURES)
    print("\n" + "\n".join(compared))


@pytest.mark.e2e
def test_check_through_the_engine(engine: Engine, fixture_images: dict[str, str]) -> None:
    """The CLI on an engine reference: same numbers as `slim inspect`, input untouched,
    exit 3 on a failed rule with the report printed first."""
    tag = fixture_images["layers"]
    before = engine.inspect_image(tag).id
    res = run_slim(
        "check",
        tag,
        "--no-config",
        "--max-size",
        "1kB",
        "--max-compressed-size",
        "10GB",
        "--forbid",
        "@setuid",
        "--warn",
        "forbid",
        "--format",
        "json",
    )
    assert res.returncode == 3, res.stderr
    doc = json.loads(res.stdout)
    assert doc["image"] == {"ref": tag, "id": before}
    statuses = {r["id"]: r["status"] for r in doc["rules"]}
    assert statuses == {"max-size": "fail", "max-compressed-size": "pass", "forbid:@setuid": "warn"}
    inspected = run_slim("inspect", tag, "--json")
    ins = json.loads(inspected.stdout)
    m = doc["measurements"]
    assert m["size_bytes"] == ins["image"]["size_bytes"]
    assert (m["efficiency"], m["wasted_bytes"]) == (ins["efficiency"], ins["wasted_bytes"])
    assert 0 < m["compressed_bytes"] < m["size_bytes"]
    assert engine.inspect_image(tag).id == before
