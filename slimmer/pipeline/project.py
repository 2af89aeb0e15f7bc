"""A service's compose project, started around a slim run and torn down after it.

`compose_run(file, service)` is a context manager: it reads the project through
Compose (`slimmer.context.compose`), starts the project's other services under a
private project name (`slimmer-<random>`: a running copy of the user's own project
is never touched), waits for their `depends_on` conditions and healthchecks, and
yields a `ComposeRun`: the `RunContext` that runs an image in the place of the
service, and the probes to use when none is given (the service's healthcheck and its
published ports).

Everything it starts carries slimmer's managed label and the private project's name
(`io.slimmer.compose.project`), so `slim cleanup` finds what an engine death left.
Compose is fed a copy of the normalised model with those labels added, written to a
private temporary directory (it holds interpolated values, secrets among them) and
deleted at the end. On leaving the block, by success, error or Ctrl-C, the project
is taken down with `compose down -v` (its containers, networks and volumes).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from slimmer.context.compose import (
    PROJECT_LABEL,
    ComposeFailed,
    ComposeProject,
    ComposeRunner,
    find_compose,
    load_project,
    managed_model,
    service_context,
)
from slimmer.context.run import RunContext, overlay
from slimmer.errors import SlimError, UsageError
from slimmer.model import MANAGED_LABEL, Progress
from slimmer.trace.probes import ProbeSpec

Deps = Literal["all", "depends_on"]
WAIT_SECONDS = 300  # how long `up --wait` waits for the services to be healthy
DOWN_SECONDS = 5  # how long `down` lets a container stop before killing it


class ServicesUnhealthy(SlimError):
    """A service of the project never became healthy (or stopped) before the run."""


@dataclass(frozen=True)
class ComposeRun:
    """The project as it runs around the slim run."""

    project: ComposeProject  # normalised under the private name
    service: str
    context: RunContext
    default_probes: tuple[ProbeSpec, ...]
    started: tuple[str, ...]  # the other services running (or done), sorted

    @property
    def name(self) -> str:
        return self.project.name


@dataclass(frozen=True)
class ComposeTarget:
    """Where to run an image: as service `service` (None: the one whose image it is)
    of the compose project in `file`, its other services started first (`deps`: all
    of them, or the `depends_on` closure of the service)."""

    file: Path
    service: str | None = None
    deps: Deps = "all"


@contextmanager
def in_context(
    target: ComposeTarget | None,
    image: str | None,
    given: RunContext,
    probes: tuple[ProbeSpec, ...],
    progress: Progress = lambda _: None,
    runner: ComposeRunner | None = None,
) -> Iterator[tuple[RunContext, tuple[ProbeSpec, ...]]]:
    """The context and probes of the runs of `image`: `given` and `probes` as they are
    without a compose `target`; with one, inside its running project, `given` over the
    service's context (the command line wins: `slimmer.context.run.overlay`) and
    `probes`, else the service's defaults (`default_probes`). Every run of a slim
    (tracing, verification, the Dockerfile check) must happen inside this block."""
    if target is None:
        yield given, probes
        return
    with compose_run(
        target.file, target.service, image=image, deps=target.deps, progress=progress,
        runner=runner,
    ) as run:  # fmt: skip
        yield overlay(run.context, given), probes or run.default_probes


def private_name() -> str:
    """A project name no user project has: `slimmer-` and 8 random hex digits."""
    return f"slimmer-{secrets.token_hex(4)}"


def labels_for(name: str) -> dict[str, str]:
    return {MANAGED_LABEL: "true", PROJECT_LABEL: name}


def default_probes(svc: Mapping[str, Any], ports: Sequence[int]) -> tuple[ProbeSpec, ...]:
    """The service's healthcheck as an `exec` probe (CMD as it is, CMD-SHELL through
    /bin/sh, as the engine runs them), then a `tcp` connect to each published port."""
    out: list[ProbeSpec] = []
    check = svc.get("healthcheck") or {}
    test = [str(t) for t in check.get("test") or ()]
    if not check.get("disable") and test and test[0] in ("CMD", "CMD-SHELL"):
        argv = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", " ".join(test[1:])]
        out.append(ProbeSpec(kind="exec", name="healthcheck", cmd=tuple(argv)))
    out += [ProbeSpec(kind="tcp", name=f"port {p}", port=p) for p in ports]
    return tuple(out)


def _selection(project: ComposeProject, service: str, deps: Deps) -> list[str]:
    """What `up` is told to start: nothing (all services) or the target itself, whose
    `depends_on` closure Compose then starts first (the target is at scale 0)."""
    return [] if deps == "all" else [service]


def started_services(project: ComposeProject, service: str, deps: Deps) -> tuple[str, ...]:
    if deps == "all":
        return tuple(s for s in project.services if s != service)
    return project.depends_on(service)


@contextmanager
def _private_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="slimmer-compose-"))  # mode 0700
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def compose_run(
    file: Path,
    service: str | None,
    *,
    image: str | None = None,
    deps: Deps = "all",
    progress: Progress = lambda _: None,
    runner: ComposeRunner | None = None,
    environ: Mapping[str, str] | None = None,
) -> Iterator[ComposeRun]:
    """Start `file`'s project around service `service` (may be None when the project
    has one service), yield its `ComposeRun`, and take it down on leaving."""
    run = runner if runner is not None else find_compose(environ)
    name = private_name()
    progress(f"reading compose project {file}")
    project = load_project(run, file, name)
    target = _target(project, service, image)
    project.service(target)
    context = service_context(project, target, environ=environ)
    probes = default_probes(project.service(target), context.ports)
    with _private_dir() as tmp:
        model_file = tmp / "compose.json"
        model = managed_model(project, target, labels_for(name), image or project.image(target))
        model_file.write_text(json.dumps(model, sort_keys=True))
        base = [
            "-p",
            name,
            "-f",
            str(model_file),
            "--project-directory",
            str(file.parent.resolve()),
        ]
        try:
            started = _up(run, base, project, target, deps, progress)
            yield ComposeRun(project, target, context, probes, started)
        finally:
            progress(f"removing compose project {name}")
            _down(run, base)


def _target(project: ComposeProject, service: str | None, image: str | None) -> str:
    """The service to run the image as: `service`, else the one service whose image is
    `image`, else the project's only service; a usage error listing them otherwise."""
    if service is not None:
        return service
    running = project.running(image) if image is not None else ()
    if len(running) == 1:
        return running[0]
    if len(project.services) == 1:
        return project.services[0]
    which = ""
    if image is not None:
        which = f"several run {image}; " if len(running) > 1 else f"none runs {image}; "
    raise UsageError(
        f"{project.file}: name the service to run the image as with --service ({which}"
        f"services: {', '.join(project.services)})"
    )


def _up(
    run: ComposeRunner,
    base: list[str],
    project: ComposeProject,
    target: str,
    deps: Deps,
    progress: Progress,
) -> tuple[str, ...]:
    started = started_services(project, target, deps)
    progress(f"starting {', '.join(started) or 'the project'} (compose project {project.name})")
    args = [*base, "up", "--detach", "--wait", "--wait-timeout", str(WAIT_SECONDS)]
    args += ["--pull", "never", "--no-build", *_selection(project, target, deps)]
    try:
        run(args)
    except ComposeFailed as exc:
        raise ServicesUnhealthy(_unhealthy_line(run, base, exc)) from exc
    return started


def _unhealthy_line(run: ComposeRunner, base: list[str], exc: ComposeFailed) -> str:
    """One line naming each service that is not running and healthy, from `compose ps`."""
    try:
        text = run([*base, "ps", "--all", "--format", "json"])
    except SlimError:
        return f"starting the compose project: {exc}"
    bad = sorted({f"{c['Service']} ({_state(c)})" for c in _ps_rows(text) if _state(c) != "ok"})
    if not bad:
        return f"starting the compose project: {exc}"
    return f"starting the compose project: never became healthy: {', '.join(bad)}"


def _ps_rows(text: str) -> list[dict[str, Any]]:
    """`compose ps --format json`: one JSON object a line (newer Compose) or one array."""
    text = text.strip()
    if text.startswith("["):
        return list(json.loads(text))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _state(row: Mapping[str, Any]) -> str:
    state, health = str(row.get("State") or ""), str(row.get("Health") or "")
    if state == "running" and health in ("", "healthy"):
        return "ok"
    if state == "exited" and int(row.get("ExitCode") or 0) == 0:
        return "ok"  # a one-shot job that finished
    if state == "exited":
        return f"exited {row.get('ExitCode')}"
    return health or state or "unknown"


def _down(run: ComposeRunner, base: list[str]) -> None:
    """`compose down -v` of the private project. A failure here must not hide the
    run's own error; what is left carries the labels `slim cleanup` looks for."""
    args = [*base, "down", "--volumes", "--remove-orphans", "--timeout", str(DOWN_SECONDS)]
    for attempt in range(3):  # again after a second Ctrl-C, or a container made late
        try:
            run(args)
            if not run([*base, "ps", "--all", "--quiet"]).strip():
                return
        except SlimError:
            return
        except KeyboardInterrupt:
            if attempt == 2:
                raise


def describe_services(run: ComposeRun) -> dict[str, Any]:
    """The project for a report: its file, the service run, the others started."""
    return {
        "file": str(run.project.file),
        "service": run.service,
        "project": run.name,
        "started": list(run.started),
        "cwd": os.fspath(run.project.file.parent),
    }
