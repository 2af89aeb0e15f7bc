"""`slim compose`: the services of a compose project that are its own, each slimmed and
verified in the project's context, and the override file that runs the slim project.

Which services: a service is the project's own when it has a `build:` section (the
project makes its image). One that only names an `image:` (redis, postgres pulled
from a registry) is left alone unless `--service` names it; `--service` given at
all means exactly the services named. An own service whose image is not on the
engine is built first with `compose build SERVICE`, as `compose up` would.

Each service is slimmed inside `compose_run` (pipeline.project): the project's other
services run under a private labelled project name, the image runs with the
service's environment, secrets, volumes and networks, and verification happens in
that same context. A service that fails is recorded and the others still run; only
verified (hence tagged) services go into the override, `compose.slim.yml`, which
holds image references and nothing of the context (no env value, no secret).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from slimmer.context.compose import (
    ComposeFailed,
    ComposeProject,
    ComposeRunner,
    service_context,
)
from slimmer.context.run import RunContext
from slimmer.engine_api import ContainerEngine
from slimmer.errors import EngineError, ExitStatus, SlimError, UsageError
from slimmer.model import Progress, Transfer
from slimmer.pipeline.clock import Clock
from slimmer.pipeline.override import OVERRIDE_NAME, override_text, refuse_foreign_override
from slimmer.pipeline.project import compose_run
from slimmer.pipeline.slim import SlimOptions, SlimResult
from slimmer.trace.probes import DEFAULT_TIMEOUT, ProbeSpec, collect_probes

DEFAULT_TAG = "{repo}:{tag}-slim"
TAG_FIELDS = ("repo", "tag", "service", "project")
OWN = "built by the project (build:)"
NAMED = "named with --service"


class FleetFailed(SlimError):
    """A service of the fleet failed; the exit code is that service's verdict's."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = ExitStatus(exit_code)


@dataclass(frozen=True)
class PerService:
    """An option's value for every service (`default`), with exceptions by service
    (`--base web=cc`)."""

    default: str | None = None
    by_service: tuple[tuple[str, str], ...] = ()

    def get(self, service: str) -> str | None:
        return dict(self.by_service).get(service, self.default)

    @property
    def named(self) -> tuple[str, ...]:
        return tuple(s for s, _ in self.by_service)


def per_service(values: Sequence[str], option: str, default: str | None = None) -> PerService:
    """`[SERVICE=]VALUE` options: VALUE alone for every service, SERVICE=VALUE for one.
    A second plain value, or a service given twice, is a usage error."""
    plain: list[str] = []
    pairs: dict[str, str] = {}
    for value in values:
        service, sep, rest = value.partition("=")
        if not sep:
            plain.append(value)
        elif not service or not rest:
            raise UsageError(f"{option} {value!r}: give VALUE or SERVICE=VALUE")
        elif service in pairs:
            raise UsageError(f"{option}: service {service!r} given twice")
        else:
            pairs[service] = rest
    if len(plain) > 1:
        raise UsageError(f"{option}: one value for every service, or SERVICE=VALUE for one")
    return PerService(plain[0] if plain else default, tuple(sorted(pairs.items())))


@dataclass(frozen=True)
class FleetOptions:
    file: Path
    services: tuple[str, ...] = ()  # --service: exactly these (own or not)
    tag: str = DEFAULT_TAG  # --tag: the slim tag's template (TAG_FIELDS)
    override: Path | None = None  # -o: default compose.slim.yml beside the file
    base: PerService = PerService("scratch")
    user: PerService = PerService()
    probes: PerService = PerService()  # probe files
    dockerfile_dir: Path | None = None  # --dockerfile DIR: DIR/SERVICE/Dockerfile
    cache_dir: Path | None = None
    jobs: int = 1  # --jobs: services slimmed at the same time, each in its own project

    @property
    def override_path(self) -> Path:
        return (self.override or self.file.parent / OVERRIDE_NAME).resolve()


@dataclass(frozen=True)
class Chosen:
    """A service the fleet slims: its image, the slim tag, why it was chosen."""

    service: str
    image: str
    output: str
    why: str


@dataclass(frozen=True)
class LeftAlone:
    service: str
    image: str
    why: str


@dataclass(frozen=True)
class ServiceOutcome:
    """One service's run: its `SlimResult`, or the error that stopped it."""

    chosen: Chosen
    seconds: float
    result: SlimResult | None = None
    error: str | None = None
    exit_code: int = ExitStatus.OK
    probes: int = 0  # how many probes it was slimmed and verified with

    @property
    def status(self) -> str:
        """passed (verified and tagged), failed (verification) or error."""
        if self.result is None:
            return "error"
        return "passed" if self.result.verified and self.result.tagged else "failed"


@dataclass(frozen=True)
class FleetResult:
    file: Path
    project: str
    outcomes: tuple[ServiceOutcome, ...]
    left_alone: tuple[LeftAlone, ...]
    override: Path | None  # None: no service passed, nothing written

    @property
    def failed(self) -> tuple[ServiceOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status != "passed")


# -- reading the project and choosing ----------------------------------------------


def read_project(runner: ComposeRunner, file: Path) -> ComposeProject:
    """The project under its own name (the file's `name:`, else its directory's), as
    `compose config` gives it: the names its built images get are the user's."""
    if not file.is_file():
        raise UsageError(f"slim compose {file}: no such file")
    where = file.resolve()
    text = runner(["-f", str(where), "config", "--format", "json"], cwd=where.parent, usage=True)
    try:
        model = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ComposeFailed(f"compose config: not JSON ({exc.msg})") from exc
    return ComposeProject(where, str(model.get("name") or where.parent.name), model)


def choose(
    project: ComposeProject, named: Sequence[str], tag: str
) -> tuple[tuple[Chosen, ...], tuple[LeftAlone, ...]]:
    """The services to slim (the named ones, else the own ones) and those left alone."""
    for name in named:
        project.service(name)  # a usage error listing the services
    chosen: list[Chosen] = []
    left: list[LeftAlone] = []
    for name in project.services:
        image = project.image(name)
        if name in named or (not named and project.is_own(name)):
            why = NAMED if named else OWN
            chosen.append(Chosen(name, image, slim_tag(tag, image, name, project.name), why))
        elif named:
            left.append(LeftAlone(name, image, "not named with --service"))
        else:
            left.append(LeftAlone(name, image, "not built by the project (no build:)"))
    if not chosen:
        raise UsageError(
            f"{project.file}: no service is built by the project (build:); name the ones "
            f"to slim with --service (services: {', '.join(project.services)})"
        )
    _refuse_clashes(chosen)
    return tuple(chosen), tuple(left)


def slim_tag(template: str, image: str, service: str, project: str) -> str:
    """The slim tag of `image` by `template`: {repo} and {tag} of the image (tag
    `latest` when it has none; a digest is dropped), {service}, {project}."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    repo, sep, tag = name.rpartition(":") if name.rfind(":") > slash else (name, "", "")
    if not sep:
        repo, tag = name, "latest"
    fields = {"repo": repo, "tag": tag, "service": service, "project": project}
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise UsageError(
            f"--tag {template!r}: {exc}; the fields are "
            + ", ".join("{" + f + "}" for f in TAG_FIELDS)
        ) from exc


def _refuse_clashes(chosen: Sequence[Chosen]) -> None:
    seen: dict[str, str] = {}
    for c in chosen:
        if c.output == c.image:
            raise UsageError(f"--tag: the slim tag of {c.service} is its own image {c.image}")
        if c.output in seen:
            raise UsageError(
                f"--tag: {seen[c.output]} and {c.service} would both be tagged {c.output}; "
                "put {service} in the template"
            )
        seen[c.output] = c.service


def _refuse_stray_names(opts: FleetOptions, chosen: Sequence[Chosen]) -> None:
    slimmed = {c.service for c in chosen}
    for option, values in (("--base", opts.base), ("--user", opts.user), ("--probes", opts.probes)):
        for name in values.named:
            if name not in slimmed:
                raise UsageError(
                    f"{option} {name}=...: {name!r} is not a service slim compose slims "
                    f"(slimmed: {', '.join(sorted(slimmed))})"
                )


# -- the run -----------------------------------------------------------------------


SlimFn = Callable[[ContainerEngine, str, SlimOptions, Progress], SlimResult]


def slim_fleet(
    engine: ContainerEngine,
    runner: ComposeRunner,
    opts: FleetOptions,
    slim: SlimFn,
    progress: Progress = lambda _: None,
    clock: Callable[[], float] = time.monotonic,
) -> FleetResult:
    """Slim the chosen services of `opts.file`, `opts.jobs` at a time, each in its
    context; write the override naming those that passed."""
    project = read_project(runner, opts.file)
    chosen, left = choose(project, opts.services, opts.tag)
    _refuse_stray_names(opts, chosen)
    refuse_foreign_override(opts.override_path)
    probes = {c.service: _probes(opts.probes.get(c.service)) for c in chosen}
    for c in chosen:  # a context slimmer cannot give is a usage error before any run
        service_context(project, c.service)
    _ensure_images(engine, runner, project, chosen, progress)
    stop = threading.Event()
    told = _stoppable(progress, stop)
    outcomes = _slim_all(
        chosen,
        lambda c: _slim_one(engine, runner, opts, c, probes[c.service], slim, told, clock),
        opts.jobs,
        stop,
    )
    passed = [(o.chosen.service, o.chosen.output) for o in outcomes if o.status == "passed"]
    override = None
    if passed:
        override = opts.override_path
        override.write_text(override_text(project.file, override, passed))
    return FleetResult(project.file, project.name, outcomes, left, override)


def _slim_all(
    chosen: Sequence[Chosen],
    one: Callable[[Chosen], ServiceOutcome],
    jobs: int,
    stop: threading.Event,
) -> tuple[ServiceOutcome, ...]:
    """`one` for each service, in the project's order; `jobs` at a time in threads
    (each service runs in a compose project of its own, so they share nothing but the
    engine). When the fleet stops (Ctrl-C, an engine error), `stop` is set: the
    services not started are cancelled, and the running ones stop at their next
    progress step and clean up (see `_stoppable`) before the error is raised."""
    if jobs <= 1 or len(chosen) <= 1:
        return tuple(one(c) for c in chosen)
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="slim-compose")
    try:
        futures = [pool.submit(one, c) for c in chosen]
        return tuple(f.result() for f in futures)
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stoppable(progress: Progress, stop: threading.Event) -> Progress:
    """`progress`, raising KeyboardInterrupt once in a thread that calls it after `stop`
    is set: a Ctrl-C reaches only the main thread, so a service slimmed in another stops
    at its next step, through the same cleanup as an interrupted `slim` (whose own
    progress steps then pass, as after one Ctrl-C)."""
    stopped = threading.local()

    def told(event: str | Transfer) -> None:
        if stop.is_set() and not getattr(stopped, "raised", False):
            stopped.raised = True
            raise KeyboardInterrupt
        progress(event)

    return told


def _probes(file: str | None) -> tuple[tuple[ProbeSpec, ...], float]:
    if file is None:
        return (), DEFAULT_TIMEOUT
    return collect_probes(Path(file))


def _ensure_images(
    engine: ContainerEngine,
    runner: ComposeRunner,
    project: ComposeProject,
    chosen: Sequence[Chosen],
    progress: Progress,
) -> None:
    """Build an own service's missing image with `compose build` (under the user's
    project name, as `compose up` would); a missing image of a service the project
    does not build is a usage error (slimmer pulls nothing)."""
    for c in chosen:
        if engine.image_exists(c.image):
            continue
        if not project.is_own(c.service):
            raise UsageError(
                f"service {c.service}: its image {c.image} is not on the engine (pull it first)"
            )
        progress(f"{c.service}: building {c.image} (compose build)")
        runner(["-f", str(project.file), "build", c.service], cwd=project.file.parent)


def _slim_one(
    engine: ContainerEngine,
    runner: ComposeRunner,
    opts: FleetOptions,
    chosen: Chosen,
    probes: tuple[tuple[ProbeSpec, ...], float],
    slim: SlimFn,
    progress: Progress,
    clock: Callable[[], float],
) -> ServiceOutcome:
    """One service slimmed inside its compose run; a `SlimError` other than the
    engine's is recorded as the service's outcome, and the fleet goes on."""
    tell = Clock(progress).sub(chosen.service)
    start = clock()
    specs, timeout = probes
    try:
        with compose_run(
            opts.file, chosen.service, image=chosen.image, progress=tell, runner=runner
        ) as run:
            used = specs or run.default_probes
            options = _options(opts, chosen, run.context, used, timeout)
            result = slim(engine, chosen.image, options, tell)
    except EngineError:
        raise
    except SlimError as exc:
        return ServiceOutcome(chosen, clock() - start, None, exc.message, int(exc.exit_code))
    code = ExitStatus.OK if result.verified and result.tagged else ExitStatus.VERIFICATION
    return ServiceOutcome(chosen, clock() - start, result, None, int(code), len(used))


def _options(
    opts: FleetOptions,
    chosen: Chosen,
    context: RunContext,
    probes: tuple[ProbeSpec, ...],
    timeout: float,
) -> SlimOptions:
    dockerfile = None
    if opts.dockerfile_dir is not None:
        dockerfile = opts.dockerfile_dir / chosen.service / "Dockerfile"
    return SlimOptions(
        output=chosen.output,
        probes=probes,
        timeout=timeout,
        base=opts.base.get(chosen.service) or "scratch",
        user=opts.user.get(chosen.service),
        dockerfile=dockerfile,
        cache_dir=opts.cache_dir,
        context=context,
    )
