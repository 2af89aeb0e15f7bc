"""`slim compose` in the unit tier: choosing the services, the slim tags, the override
(merged by the real Compose CLI: `config` needs no engine), the fleet's run on a
recording Compose runner and a fake slim (a failing service is recorded, left out of
the override, and gives the exit code), and the report faces against the schema."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest

from slimmer import api
from slimmer.context.compose import ComposeCli, ComposeMissing, ComposeProject, find_compose
from slimmer.engine_api import ContainerEngine
from slimmer.errors import EngineError, ExitStatus, ImageUnrunnable, UsageError
from slimmer.model import Progress
from slimmer.pipeline.fleet import (
    FleetFailed,
    FleetOptions,
    FleetResult,
    SlimFn,
    choose,
    per_service,
    read_project,
    slim_fleet,
    slim_tag,
)
from slimmer.pipeline.override import OVERRIDE_HEADER, override_text, refuse_foreign_override
from slimmer.pipeline.slim import SlimOptions, SlimResult
from slimmer.report import fleet_html, fleet_md, fleet_view
from slimmer.report.common import dump_json
from tests.fixtures_build import CONTEXT_PROJECT, FIXTURES_DIR
from tests.test_slim_report import result

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs/schemas/fleet-v1.json").read_text())
RECORDED = ROOT / "tests" / "data" / "compose" / "ctx-project.config.json"
FILE = CONTEXT_PROJECT / "compose.yml"
SECRETS = ("ctx-web-key-7f3a91d2c4e8", "s4lt-9d0e6b1f", "redis://redis:6379/0")


def _recorded_text() -> str:
    return RECORDED.read_text().replace("@FIXTURES@", str(FIXTURES_DIR))


def _shop() -> ComposeProject:
    return ComposeProject(FILE, "ctx-shop", json.loads(_recorded_text()))


@pytest.fixture(scope="module")
def compose() -> ComposeCli:
    try:
        return find_compose()
    except ComposeMissing as exc:
        pytest.fail(f"{exc} (run `bash scripts/ensure-compose.sh`)", pytrace=False)


# -- options -----------------------------------------------------------------------


def test_per_service_values() -> None:
    found = per_service(["auto", "web=cc"], "--base", "scratch")
    assert (found.get("web"), found.get("worker")) == ("cc", "auto")
    assert per_service([], "--base", "scratch").get("web") == "scratch"
    assert per_service(["worker=nonroot"], "--user").get("web") is None


@pytest.mark.parametrize("values", [["a", "b"], ["web=a", "web=b"], ["=a"], ["web="]])
def test_per_service_refuses(values: list[str]) -> None:
    with pytest.raises(UsageError) as info:
        per_service(values, "--base")
    assert info.value.exit_code == ExitStatus.USAGE
    assert "--base" in info.value.message


@pytest.mark.parametrize(
    ("image", "template", "tag"),
    [
        ("slimmer-fixture/ctx-web:latest", "{repo}:{tag}-slim",
         "slimmer-fixture/ctx-web:latest-slim"),
        ("localhost:5000/app", "{repo}:{tag}-slim", "localhost:5000/app:latest-slim"),
        ("app@sha256:" + "a" * 64, "{repo}:{tag}-slim", "app:latest-slim"),
        ("shop-web", "slim/{project}-{service}:1", "slim/shop-web:1"),
    ],
)  # fmt: skip
def test_slim_tag(image: str, template: str, tag: str) -> None:
    assert slim_tag(template, image, "web", "shop") == tag


def test_an_unknown_tag_field_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"\{repo\}, \{tag\}, \{service\}, \{project\}"):
        slim_tag("{image}-slim", "app:1", "web", "shop")


# -- choosing the services ---------------------------------------------------------


def test_own_services_are_chosen_and_redis_left_alone() -> None:
    chosen, left = choose(_shop(), (), "{repo}:{tag}-slim")
    assert [(c.service, c.image, c.output) for c in chosen] == [
        ("web", "slimmer-fixture/ctx-web:latest", "slimmer-fixture/ctx-web:latest-slim"),
        ("worker", "slimmer-fixture/ctx-worker:latest", "slimmer-fixture/ctx-worker:latest-slim"),
    ]
    assert [(x.service, x.image) for x in left] == [("redis", "slimmer-fixture/ctx-redis:latest")]
    assert "build" in left[0].why


def test_named_services_are_exactly_the_ones_slimmed() -> None:
    chosen, left = choose(_shop(), ("redis",), "{repo}:{tag}-slim")
    assert [c.service for c in chosen] == ["redis"]
    assert [x.service for x in left] == ["web", "worker"]
    assert all(x.why == "not named with --service" for x in left)


def test_an_unknown_service_lists_the_services() -> None:
    with pytest.raises(UsageError, match="redis, web, worker"):
        choose(_shop(), ("db",), "{repo}:{tag}-slim")


def test_one_tag_for_two_services_is_refused() -> None:
    with pytest.raises(UsageError, match="both be tagged shop:slim"):
        choose(_shop(), (), "shop:slim")


def test_the_real_compose_gives_the_project_its_own_name(compose: ComposeCli) -> None:
    project = read_project(compose, FILE)
    assert project.name == "ctx-shop"
    assert project.image("web") == "slimmer-fixture/ctx-web:latest"
    assert project.is_own("web") and not project.is_own("redis")


# -- the override ------------------------------------------------------------------


def test_the_real_compose_runs_the_slim_images_in_the_context(
    compose: ComposeCli, tmp_path: Path
) -> None:
    override = tmp_path / "compose.slim.yml"
    text = override_text(FILE, override, [("worker", "slim/worker:1"), ("web", "slim/web:1")])
    override.write_text(text)
    assert text.startswith(OVERRIDE_HEADER)
    assert not [s for s in SECRETS if s in text]  # references only, no context value
    args = ["-f", str(FILE), "-f", str(override), "config", "--format", "json"]
    merged = json.loads(compose(args, cwd=FILE.parent))["services"]
    assert merged["web"]["image"] == "slim/web:1"
    assert merged["worker"]["image"] == "slim/worker:1"
    assert "build" not in merged["web"] and "build" not in merged["worker"]
    assert merged["redis"]["image"] == "slimmer-fixture/ctx-redis:latest"
    # the context stays the compose file's: env, secret, volume, env_file
    assert merged["web"]["environment"] == {"REDIS_URL": "redis://redis:6379/0"}
    assert [x["source"] for x in merged["web"]["secrets"]] == ["api_key"]
    assert merged["web"]["volumes"][0]["target"] == "/etc/ctx-web"
    assert merged["worker"]["environment"]["WORKER_NAME"] == "ledger"


def test_the_override_is_deterministic_and_quotes_names(tmp_path: Path) -> None:
    a = override_text(FILE, FILE.parent / "o.yml", [("b", "x:1"), ("a: b", 'y:"2')])
    b = override_text(FILE, FILE.parent / "o.yml", [("a: b", 'y:"2'), ("b", "x:1")])
    assert a == b
    assert '  "a: b":\n    image: "y:\\"2"' in a
    assert "-f compose.yml -f o.yml up" in a


def test_a_file_slim_compose_did_not_write_is_never_replaced(tmp_path: Path) -> None:
    mine = tmp_path / "compose.override.yml"
    mine.write_text("services:\n  web:\n    ports: ['8080']\n")
    with pytest.raises(UsageError, match="slim compose did not write it"):
        refuse_foreign_override(mine)
    ours = tmp_path / "compose.slim.yml"
    ours.write_text(override_text(FILE, ours, [("web", "x:1")]))
    refuse_foreign_override(ours)  # replaced on the next run
    refuse_foreign_override(tmp_path / "none.yml")


# -- the run, on a recording Compose runner and a fake slim -------------------------


class _Runner:
    """Answers `config` with the recorded model, everything else (up, ps, down) with
    nothing; records every call."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str], *, cwd: Path | None = None, usage: bool = False) -> str:
        self.calls.append(list(args))
        if "config" not in args:
            return ""
        name = args[args.index("-p") + 1] if "-p" in args else "ctx-shop"
        return _recorded_text().replace("slimmer-0000test", name)


class _Engine:
    def __init__(self, missing: frozenset[str] = frozenset()) -> None:
        self.missing = missing

    def image_exists(self, ref: str) -> bool:
        return ref not in self.missing


def _fleet(
    tmp_path: Path,
    verdicts: dict[str, bool | Exception],
    missing: frozenset[str] = frozenset(),
    services: tuple[str, ...] = (),
) -> tuple[FleetResult, _Runner, list[SlimOptions]]:
    runner, seen = _Runner(), []

    def slim(_e: ContainerEngine, ref: str, o: SlimOptions, _p: Progress) -> SlimResult:
        seen.append(o)
        service = next(s for s in ("web", "worker", "redis") if f"ctx-{s}" in ref)
        verdict = verdicts[service]
        if isinstance(verdict, Exception):
            raise verdict
        return replace(result(verdict), source_ref=ref, output=o.output, options=o)

    opts = FleetOptions(
        FILE,
        services=services,
        tag="slim/{service}:1",
        override=tmp_path / "compose.slim.yml",
        base=per_service(["web=cc"] if not services else [], "--base", "scratch"),
        probes=per_service(
            [] if services else [f"worker={FIXTURES_DIR / 'ctx-worker' / 'probe.toml'}"],
            "--probes",
        ),
    )
    clock = iter(range(100))
    fleet = slim_fleet(_Engine(missing), runner, opts, slim, clock=lambda: float(next(clock)))  # type: ignore[arg-type]
    return fleet, runner, seen


def test_each_service_is_slimmed_in_its_own_private_project(tmp_path: Path) -> None:
    fleet, runner, seen = _fleet(tmp_path, {"web": True, "worker": True})
    assert [o.status for o in fleet.outcomes] == ["passed", "passed"]
    ups = [c for c in runner.calls if "up" in c]
    downs = [c for c in runner.calls if "down" in c]
    names = [c[c.index("-p") + 1] for c in ups]
    assert len(ups) == len(downs) == 2 and len(set(names)) == 2
    assert all(re.fullmatch(r"slimmer-[0-9a-f]{8}", n) for n in names)
    web, worker = seen
    assert web.base == "cc" and worker.base == "scratch"
    assert ("REDIS_URL", "redis://redis:6379/0") in web.context.env
    assert [f.target for f in web.context.files] == ["/run/secrets/api_key"]
    assert [p.name for p in worker.probes] == ["status", "digest job"]  # its probe file
    assert [p.kind for p in web.probes] == ["tcp"]  # no file: its published port
    assert fleet.override == (tmp_path / "compose.slim.yml").resolve()
    api.raise_for_fleet(fleet)  # passes


def test_a_service_that_fails_verification_is_left_out_and_gives_exit_4(tmp_path: Path) -> None:
    fleet, _runner, _seen = _fleet(tmp_path, {"web": False, "worker": True})
    assert [o.status for o in fleet.outcomes] == ["failed", "passed"]
    assert fleet.override is not None
    text = fleet.override.read_text()
    assert '"worker"' in text and '"web"' not in text
    with pytest.raises(FleetFailed) as info:
        api.raise_for_fleet(fleet)
    assert info.value.exit_code == ExitStatus.VERIFICATION
    assert "web (failed)" in info.value.message


def test_an_error_is_recorded_with_its_code_and_nothing_is_written(tmp_path: Path) -> None:
    stop = ImageUnrunnable("no entrypoint")
    fleet, _runner, _seen = _fleet(tmp_path, {"web": stop, "worker": False})
    assert [o.status for o in fleet.outcomes] == ["error", "failed"]
    assert fleet.override is None and not (tmp_path / "compose.slim.yml").exists()
    with pytest.raises(FleetFailed) as info:
        api.raise_for_fleet(fleet)
    assert info.value.exit_code == ExitStatus.IMAGE  # the first failing service's
    doc = fleet_view.to_json(fleet)
    jsonschema.validate(doc, SCHEMA)
    assert doc["exit_code"] == 6 and doc["override"] is None
    assert doc["services"][0]["error"] == "no entrypoint"


def test_a_missing_own_image_is_built_first(tmp_path: Path) -> None:
    missing = frozenset({"slimmer-fixture/ctx-worker:latest"})
    fleet, runner, _seen = _fleet(tmp_path, {"web": True, "worker": True}, missing)
    builds = [c for c in runner.calls if "build" in c]
    assert builds == [["-f", str(FILE), "build", "worker"]]  # the user's project name
    assert runner.calls.index(builds[0]) < min(i for i, c in enumerate(runner.calls) if "up" in c)
    assert [o.status for o in fleet.outcomes] == ["passed", "passed"]


def test_a_named_image_that_is_missing_is_refused_before_any_run(tmp_path: Path) -> None:
    missing = frozenset({"slimmer-fixture/ctx-redis:latest"})
    with pytest.raises(UsageError, match="is not on the engine"):
        _fleet(tmp_path, {"redis": True}, missing, services=("redis",))


def test_an_option_for_a_service_not_slimmed_is_a_usage_error(tmp_path: Path) -> None:
    opts = FleetOptions(FILE, base=per_service(["redis=cc"], "--base"))
    with pytest.raises(UsageError, match="--base redis=...: 'redis' is not a service"):
        slim_fleet(_Engine(), _Runner(), opts, lambda *_: result(True))  # type: ignore[arg-type]


# -- the faces ---------------------------------------------------------------------


def test_the_document_matches_its_schema_and_the_faces_render_it(tmp_path: Path) -> None:
    fleet, _runner, _seen = _fleet(tmp_path, {"web": True, "worker": True})
    reports = {"web": "web/report.json", "worker": "worker/report.json"}
    doc = fleet_view.to_json(fleet, reports)
    jsonschema.validate(doc, SCHEMA)
    assert doc["schema"] == fleet_view.SCHEMA == SCHEMA["$id"]
    assert [s["service"] for s in doc["services"]] == ["web", "worker"]
    assert [x["service"] for x in doc["left_alone"]] == ["redis"]
    assert doc["totals"] == {"services": 2, "passed": 2, "before_bytes": 2000, "after_bytes": 200}
    assert [s["seconds"] for s in doc["services"]] == [1.0, 1.0]
    text = dump_json(doc)
    assert not [s for s in SECRETS if s in text]
    md = fleet_md.render(doc)
    assert "[web/report.md](web/report.md)" in md and "`redis`" in md
    assert "| `worker` | `slim/worker:1` |" in md
    page = fleet_html.render(doc)
    assert '<a href="worker/report.html">' in page
    assert 'data-left-alone="redis"' in page and 'data-service="web"' in page
    assert not [s for s in SECRETS if s in md + page]


def test_the_pinned_keys() -> None:
    assert sorted(SCHEMA["required"]) == sorted(
        ["schema", "slimmer_version", "compose_file", "project", "override", "verdict",
         "exit_code", "services", "left_alone", "totals"]
    )  # fmt: skip


def _parallel_fleet(tmp_path: Path, slim: SlimFn, runner: _Runner) -> FleetResult:
    opts = FleetOptions(
        FILE, tag="slim/{service}:1", override=tmp_path / "compose.slim.yml", jobs=2
    )
    return slim_fleet(_Engine(), runner, opts, slim)  # type: ignore[arg-type]


def _projects(runner: _Runner, verb: str) -> list[str]:
    return sorted(c[c.index("-p") + 1] for c in runner.calls if verb in c)


def test_jobs_slims_services_at_the_same_time_each_in_its_own_project(tmp_path: Path) -> None:
    both_running = threading.Barrier(2, timeout=30)  # broken unless the two overlap

    def slim(_e: ContainerEngine, ref: str, o: SlimOptions, _p: Progress) -> SlimResult:
        both_running.wait()
        return replace(result(True), source_ref=ref, output=o.output, options=o)

    runner = _Runner()
    fleet = _parallel_fleet(tmp_path, slim, runner)
    assert [o.chosen.service for o in fleet.outcomes] == ["web", "worker"]  # the project's order
    assert [o.status for o in fleet.outcomes] == ["passed", "passed"]
    ups = _projects(runner, "up")
    assert len(set(ups)) == 2 and ups == _projects(runner, "down")


def test_a_stopped_fleet_stops_the_running_service_through_its_cleanup(tmp_path: Path) -> None:
    """An engine error in one service stops the fleet; the other service, running in
    its own thread, is stopped at its next progress step and its project goes down."""
    started = threading.Event()
    steps: list[int] = []

    def slim(_e: ContainerEngine, ref: str, o: SlimOptions, progress: Progress) -> SlimResult:
        if "ctx-web" in ref:
            started.wait(timeout=30)
            raise EngineError("the engine went away")
        started.set()
        for step in range(100_000):  # stopped at the first step after the error
            progress(f"step {step}")
            steps.append(step)
            time.sleep(0.001)
        raise AssertionError("the running service was never stopped")

    runner = _Runner()
    with pytest.raises(EngineError, match="went away"):
        _parallel_fleet(tmp_path, slim, runner)
    assert 0 < len(steps) < 100_000
    ups = _projects(runner, "up")
    assert len(ups) == 2 and ups == _projects(runner, "down")
    assert not (tmp_path / "compose.slim.yml").exists()


def test_the_compose_file_is_given_once(capsys: pytest.CaptureFixture[str]) -> None:
    from slimmer.cli.main import main

    for argv in (["compose", str(FILE), "-f", str(FILE)], ["compose"]):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 2, argv
        assert "once, as FILE or with -f FILE" in capsys.readouterr().err
