"""slimmer's library entry points: one function per command, values out.

The CLI calls these; so can any Python program.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from slimmer import __version__
from slimmer.analyse.check import (
    BudgetFacts,
    CheckResult,
    Status,
    evaluate,
    needs_compressed,
    needs_findings,
    needs_paths,
)
from slimmer.analyse.checkconfig import CheckSettings, build_rules, load_baseline, resolve
from slimmer.analyse.diff import ImageDiff, diff_images
from slimmer.analyse.inspect import Inspection, analyse, want_for_inspect
from slimmer.analyse.slimreasons import load_slim_reasons
from slimmer.bases.arch import DebianArch, arch_of
from slimmer.bases.build import BaseImage, BaseListing, build_base
from slimmer.bases.build import list_bases as bases_on
from slimmer.bases.recipe import FLAVOURS, flavour
from slimmer.context.run import NO_CONTEXT, RunContext
from slimmer.elf.deps import DepsReport, deps_report
from slimmer.engine import Engine, saver
from slimmer.engine_api import ContainerEngine, Leftover
from slimmer.errors import (
    BudgetExceeded,
    ImageInvalid,
    RegistryError,
    SlimError,
    UsageError,
    VerificationFailed,
)
from slimmer.findings.checks import LARGE_BYTES
from slimmer.findings.lint import finding_facts, want_for_lint
from slimmer.findings.lint import lint_image as lint
from slimmer.findings.rules import FindingsReport, Severity
from slimmer.image.archive import ArchiveImage, open_archive
from slimmer.image.compressed import compressed_sizes
from slimmer.image.filetree import WantContent, keep_all
from slimmer.image.platforms import Platform
from slimmer.image.reader import Image, RemoteOpener, open_image, parse_ref
from slimmer.image.validate import Validation, validate_archive
from slimmer.image.validate import validate_image as validate_archive_image
from slimmer.model import SLIM_SCHEMA, ImageConfig, ImageRef, Progress
from slimmer.pipeline.fleet import FleetFailed, FleetOptions, FleetResult, slim_fleet
from slimmer.pipeline.multiplatform import (
    DEFAULT_PLATFORMS,
    IndexPlan,
    IndexResult,
    PlatformSelection,
    plan_index,
    push_index,
    slim_index,
)
from slimmer.pipeline.preflight import check_engine_image
from slimmer.pipeline.project import ComposeTarget, in_context
from slimmer.pipeline.seccomp import check_writable, traced_calls, write_profile
from slimmer.pipeline.slim import SlimOptions, SlimResult, check_options, slim_image
from slimmer.plan.profiles import profile_dirs, profiles_fn
from slimmer.registry.refs import parse_registry_ref
from slimmer.registry.remote import RegistryOptions, remote_opener
from slimmer.registry.transfer import (
    NO_TRANSFERS,
    PullPolicy,
    Transfers,
    client_as_engine,
    ensure_pulled,
    push,
)
from slimmer.seccomp.profile import Evidence, SeccompProfile, build_profile
from slimmer.trace.events import Trace
from slimmer.trace.probes import ProbeSpec
from slimmer.trace.sensor import host_architecture
from slimmer.trace.tracer import NO_SECCOMP, Limits, SeccompRun, TracedRun, run_traced


def read_image(ref: str, want: WantContent, registry: RegistryOptions | None = None) -> Image:
    """Read an image; connects to the engine only for engine references, to a registry
    only for `registry:` ones (see slimmer.registry)."""
    parsed = parse_ref(ref)
    if parsed.transport != "engine":
        return open_image(parsed, remote=_remote(registry), want=want, platform=_platform(registry))
    with Engine.connect() as engine:
        return open_image(parsed, save=saver(engine), want=want)


def _remote(registry: RegistryOptions | None) -> RemoteOpener:
    return remote_opener(registry or RegistryOptions())


def _platform(registry: RegistryOptions | None) -> Platform | None:
    """`--platform`: which image of an index (a registry's, or an OCI layout's) is read."""
    return registry.platform if registry is not None else None


def _opened(archive: ArchiveImage) -> RemoteOpener:
    """A remote opener that hands out `archive`, opened already (and closed by its opener)."""
    return lambda _name: (archive, lambda: None)


def inspect_image(ref: str, registry: RegistryOptions | None = None) -> Inspection:
    with read_image(ref, want_for_inspect, registry) as image:
        return analyse(image)


def lint_image(
    ref: str,
    *,
    ignore: Sequence[str] = (),
    trace: Path | None = None,
    large_bytes: int = LARGE_BYTES,
    registry: RegistryOptions | None = None,
) -> FindingsReport:
    """`slim lint`: every finding on `ref` (slimmer.findings); no container is run.

    `trace` is a saved `slim profile --json`: with it, large files the process never
    opened are findings too. An engine image's tags come from the engine."""
    opened = _opened_paths(trace) if trace is not None else None
    parsed = parse_ref(ref)
    try:
        if parsed.transport != "engine":
            with open_image(
                parsed, remote=_remote(registry), want=want_for_lint, platform=_platform(registry)
            ) as image:
                return lint(image, ignore=ignore, opened=opened, large_bytes=large_bytes)
        with Engine.connect() as engine:
            tags = engine.inspect_image(parsed.name).tags
            with open_image(parsed, save=saver(engine), want=want_for_lint) as image:
                return lint(image, tags=tags, ignore=ignore, opened=opened, large_bytes=large_bytes)
    except ValueError as exc:
        raise UsageError(f"linting {ref}: {exc}") from exc


def _opened_paths(path: Path) -> frozenset[str]:
    """Every existing path the runs of a saved `slim profile --json` touched."""
    try:
        doc = json.loads(path.read_text())
        traces = [Trace.from_json(json.dumps(run["trace"])) for run in doc["runs"]]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"reading trace {path}: not a `slim profile --json` document ({exc})"
        ) from exc
    return frozenset(p for t in traces for p in t.touched())


def version_info() -> tuple[str, str]:
    """slimmer's version, and a line on the engine it would use (or why none answers)."""
    try:
        engine = Engine.connect(timeout=10)
    except SlimError as exc:
        return __version__, f"engine: {exc.message}"
    with engine:
        server, api_version = engine.versions()
        return __version__, f"engine: {server}, API {api_version}"


def cleanup(dry_run: bool = False) -> list[Leftover]:
    with Engine.connect() as engine:
        items = engine.leftovers()
        if not dry_run:
            for item in items:
                engine.remove_leftover(item)
        return items


def check_image(
    ref: str,
    flags: CheckSettings | None = None,
    *,
    config: Path | None = None,
    search_config: Path | None = None,
    registry: RegistryOptions | None = None,
) -> CheckResult:
    """`slim check`: evaluate the budget rules for `ref` into a `CheckResult`.

    Rules are `flags` over the config file: `config`, or else the one found from
    `search_config` (a directory), or none. Bad rules raise `UsageError` before
    the image is read. The compressed size is computed only when a rule needs it.
    """
    settings = resolve(ref, flags or CheckSettings(), config=config, search_from=search_config)
    rules = build_rules(settings)
    baseline = load_baseline(settings.baseline) if settings.baseline is not None else None
    parsed = parse_ref(ref)
    twice = needs_compressed(rules)  # the layers are read again for the gzip estimate
    with ExitStack() as stack:
        archive_ref, image_id = stack.enter_context(_check_archive(parsed))
        shared = None
        if archive_ref.transport == "registry":  # opened once, for both passes
            shared = stack.enter_context(_archive_of(archive_ref, registry, keep_blobs=twice))
        linting = needs_findings(rules)
        want = want_for_lint if linting else want_for_inspect
        remote = _opened(shared) if shared is not None else None
        with open_image(
            archive_ref, remote=remote, want=want, platform=_platform(registry)
        ) as image:
            ins = replace(analyse(image), ref=str(parsed), id=image_id or image.id)
            paths = tuple(e.path for e in image.tree) if needs_paths(rules) else ()
            findings = finding_facts(lint(image)) if linting else None
        compressed = None
        if twice:
            archive = shared or stack.enter_context(_archive_of(archive_ref, registry))
            compressed = sum(compressed_sizes(archive))
    return evaluate(rules, BudgetFacts(ins, compressed, baseline, paths, findings))


@contextmanager
def _check_archive(parsed: ImageRef) -> Iterator[tuple[ImageRef, str]]:
    """An archive reference for `parsed` (and the engine's image ID, else ""): an engine
    image is saved into a temporary docker-archive, read twice, then removed."""
    if parsed.transport != "engine":
        yield parsed, ""
        return
    with tempfile.TemporaryDirectory(prefix="slimmer-check-") as tmp:
        spool = Path(tmp) / "image.tar"
        with Engine.connect() as engine:
            image_id = saver(engine)(parsed.name, spool)
        yield ImageRef("docker-archive", str(spool)), image_id


@contextmanager
def _archive_of(
    ref: ImageRef, registry: RegistryOptions | None, keep_blobs: bool = False
) -> Iterator[ArchiveImage]:
    """The archive image of a file or `registry:` reference (its connection closed after).
    `keep_blobs`: a registry image's layers are read more than once; each is fetched
    once and kept in a temporary directory until the end."""
    if ref.transport != "registry":
        yield open_archive(ref.transport, Path(ref.name), _platform(registry))
        return
    opts = replace(registry or RegistryOptions(), keep_blobs=keep_blobs)
    archive, close = _remote(opts)(ref.name)
    try:
        yield archive
    finally:
        close()


def validate_image(ref: str, registry: RegistryOptions | None = None) -> Validation:
    """`slim validate`: every invariant of `ref` checked (see slimmer.image.validate); an
    engine image is saved into a temporary docker-archive first, a `registry:` image is
    read from the registry, its blobs streamed. Layer order only warns."""
    parsed = parse_ref(ref)
    if parsed.transport == "registry":  # each blob is read as stored, then as a tar
        with _archive_of(parsed, registry, keep_blobs=True) as archive:
            return validate_archive_image(archive, str(parsed), None)
    with _check_archive(parsed) as (archive_ref, _image_id):
        found = validate_archive(
            archive_ref.transport, Path(archive_ref.name), platform=_platform(registry)
        )
    return replace(found, source=str(parsed))


def trace_image(
    ref: str,
    probes: Sequence[ProbeSpec],
    timeout: float,
    progress: Progress = lambda _: None,
    *,
    limits: Limits | None = None,
    context: RunContext = NO_CONTEXT,
    compose: ComposeTarget | None = None,
) -> TracedRun:
    """`slim profile`: run an engine image under the tracer with `probes` (the defaults
    when empty), each container under `limits` (the defaults when None), in `context`
    (env, mounts, networks...: for the run only), as service `compose.service` of its
    running project when `compose` is given (see `slim`). The preflight
    of `slim IMAGE` runs first: an image that cannot run raises `ImageUnrunnable`
    (exit 6) before any container exists (see slimmer.pipeline.preflight)."""
    return _trace(ref, probes, timeout, progress, limits, context, compose, NO_SECCOMP)[0]


def trace_seccomp(
    ref: str,
    probes: Sequence[ProbeSpec],
    timeout: float,
    path: Path,
    progress: Progress = lambda _: None,
    *,
    limits: Limits | None = None,
    context: RunContext = NO_CONTEXT,
    compose: ComposeTarget | None = None,
) -> tuple[TracedRun, SeccompProfile]:
    """`slim profile --seccomp FILE`: `trace_image` with every system call recorded, and
    the seccomp profile of that run written to `path` (refused first, exit 11, when it
    cannot be written). Without slimming, the image's programs' imports are not read:
    the evidence is the traced calls and the runtime groups."""
    check_writable(path)
    record = SeccompRun(record=True)
    run, arch = _trace(ref, probes, timeout, progress, limits, context, compose, record)
    profile = build_profile(Evidence(traced_calls(run.traces)), arch)
    write_profile(path, profile)
    return run, profile


def _trace(
    ref: str,
    probes: Sequence[ProbeSpec],
    timeout: float,
    progress: Progress,
    limits: Limits | None,
    context: RunContext,
    compose: ComposeTarget | None,
    seccomp: SeccompRun,
) -> tuple[TracedRun, str]:
    """A traced run of an engine image, and the image's architecture."""
    parsed = parse_ref(ref)
    if parsed.transport != "engine":
        raise UsageError(f"tracing {ref}: only engine images can be run (load it first)")
    with Engine.connect() as engine:
        info = engine.inspect_image(parsed.name)
        config = ImageConfig(
            {"config": dict(info.config), "os": info.os, "architecture": info.architecture}
        )
        check_engine_image(engine, parsed, config, progress)
        with in_context(compose, parsed.name, context, tuple(probes), progress) as (ctx, use):
            run = run_traced(
                engine,
                info.id,
                config,
                use,
                timeout,
                progress=progress,
                limits=limits or Limits(),
                context=ctx,
                seccomp=seccomp,
            )
        return run, info.architecture or host_architecture()


def slim(
    ref: str,
    opts: SlimOptions,
    progress: Progress = lambda _: None,
    transfers: Transfers = NO_TRANSFERS,
    compose: ComposeTarget | None = None,
) -> SlimResult:
    """`slim IMAGE -o OUT`: the slim image, verified and tagged (see slimmer.pipeline.slim).

    An engine reference is pulled first as `transfers.pull` says; with `transfers.push`
    the output tag is pushed once it verified (or verification was skipped).

    With `compose`, IMAGE runs as that service of its compose project: the project's
    other services run around the whole slim (tracing, verification, the Dockerfile
    check) and are removed after it; `opts.context` goes over the service's context
    and `opts.probes` default to the service's (slimmer.pipeline.project.in_context)."""
    profiles = profiles_fn(
        profile_dirs(opts.profiles_extra),
        forced=opts.profiles_forced,
        disabled=opts.profiles_disabled,
    )
    check_options(ref, opts)  # a usage error comes before any engine is needed
    parsed = parse_ref(ref)
    if parsed.transport == "registry":
        raise UsageError(
            f"slimming {ref}: the image must run on the engine; name it without "
            "'registry:' and it is pulled (--pull missing)"
        )
    image = parsed.name if parsed.transport == "engine" else None
    with Engine.connect() as engine:
        if parsed.transport == "engine" and ensure_pulled(engine, ref, transfers.pull):
            progress(f"pulled {ref}")
        with in_context(compose, image, opts.context, opts.probes, progress) as (ctx, probes):
            run_opts = replace(opts, context=ctx, probes=probes)
            result = slim_image(engine, ref, run_opts, profiles, progress)
        if transfers.push and result.tagged and result.verified is not False:
            progress(f"pushed {result.output}@{push(engine, result.output)}")
        return result


def slim_platforms(
    ref: str,
    opts: SlimOptions,
    progress: Progress = lambda _: None,
    transfers: Transfers = NO_TRANSFERS,
    compose: ComposeTarget | None = None,
    platforms: PlatformSelection = DEFAULT_PLATFORMS,
    registry_ca: Path | None = None,
) -> SlimResult | IndexResult:
    """`slim IMAGE -o OUT [--platform ...]`: when IMAGE is an image index in its registry
    (and `platforms` names platforms, or the image is pulled: see `_index_plan`), each
    platform slimmed and verified on its own and, with `transfers.push`, one index of
    the slim images pushed to OUT (slimmer.pipeline.multiplatform); else `slim`."""
    plan = _index_plan(ref, opts, transfers, compose, platforms, registry_ca)
    if plan is None:
        return slim(ref, opts, progress, transfers, compose)
    profiles = profiles_fn(
        profile_dirs(opts.profiles_extra),
        forced=opts.profiles_forced,
        disabled=opts.profiles_disabled,
    )
    if plan.skipped:
        progress("skipped (the engine cannot run them): " + ", ".join(map(str, plan.skipped)))
    with Engine.connect() as engine:

        def one(source: str, o: SlimOptions) -> SlimResult:
            return slim_image(engine, source, o, profiles, progress)

        result = slim_index(engine, plan, opts, one, progress, pull=transfers.pull)
        if not transfers.push or result.failed:
            return result
        host = parse_registry_ref(opts.output).host
        with client_as_engine(host, None, registry_ca) as client:
            return push_index(engine, client, result, progress)


def _index_plan(
    ref: str,
    opts: SlimOptions,
    transfers: Transfers,
    compose: ComposeTarget | None,
    platforms: PlatformSelection,
    registry_ca: Path | None,
) -> IndexPlan | None:
    """The multi-platform plan for `ref`, or None for the single-image run. The registry
    is asked when platforms are named, or else when the image is to be pulled (`--pull
    always`, or `missing` and the engine lacks it); unasked, or when the registry
    answers with one image or not at all (the single run's pull then says why), None."""
    check_options(ref, opts)
    if parse_ref(ref).transport != "engine":
        if platforms.explicit:
            raise UsageError(f"slimming {ref}: --platform needs an image in a registry")
        return None
    if compose is not None and platforms.explicit:
        raise UsageError("--platform and --compose cannot be combined")
    with Engine.connect() as engine:
        if not platforms.explicit and (
            compose is not None
            or transfers.pull is PullPolicy.NEVER
            or (transfers.pull is PullPolicy.MISSING and engine.image_exists(ref))
        ):
            return None
        try:
            with client_as_engine(parse_registry_ref(ref).host, None, registry_ca) as client:
                plan = plan_index(engine, client, ref, platforms)
        except RegistryError:
            if platforms.explicit:
                raise
            return None
    one_file = [o for o, v in (("--dockerfile", opts.dockerfile), ("--seccomp", opts.seccomp)) if v]
    if plan is not None and len(plan.chosen) > 1 and one_file:
        raise UsageError(
            f"{' and '.join(one_file)} name one file, and {ref} is slimmed for "
            f"{len(plan.chosen)} platforms: slim one --platform at a time"
        )
    return plan


def deps(ref: str, paths: Sequence[str]) -> DepsReport:
    """`slim deps`: the loader's closure of `paths` inside the image."""
    with read_image(ref, keep_all) as image:
        env = image.config.env
        return deps_report(image.tree, env, paths, image.config.working_dir or "/")


def build_bases(
    flavours: Sequence[str],
    progress: Progress = lambda _: None,
    platforms: Sequence[Platform] = (),
) -> list[BaseImage]:
    """`slim bases build`: build and tag each flavour (all when none is named) for
    each of `platforms` (linux/amd64, linux/arm64; none: the engine's own)."""
    names = list(flavours) or list(FLAVOURS)
    for name in names:
        flavour(name)  # a bad name fails before anything is built
    arches = [arch_of(p.architecture, p.os, p.variant) for p in platforms]
    with Engine.connect() as engine:
        out = []
        targets: list[DebianArch | None] = list(dict.fromkeys(arches)) or [None]
        for arch in targets:
            for name in names:
                progress(f"building {name}" + (f" for {arch.platform}" if arch else ""))
                out.append(build_base(engine, name, arch))
        return out


def list_bases() -> list[BaseListing]:
    """`slim bases list`: each flavour of each platform, and the engine's image of it."""
    with Engine.connect() as engine:
        return bases_on(engine)


def diff(
    a: str,
    b: str,
    report: Path | None = None,
    progress: Progress = lambda _: None,
    registry: RegistryOptions | None = None,
) -> ImageDiff:
    """`slim diff A B`: the files, sizes, packages and config that differ (analyse.diff).

    Each image is read once, its file bytes hashed as they stream past and dropped.
    The engine is connected only when A or B is an engine reference. `report` is the
    report.json of the slim run that made B from A: it adds why each file of B is there.
    """
    reasons = load_slim_reasons(report) if report is not None else None
    remote, platform = _remote(registry), _platform(registry)
    if all(parse_ref(ref).transport != "engine" for ref in (a, b)):
        return diff_images(a, b, None, reasons, progress, remote, platform)
    with Engine.connect() as engine:
        return diff_images(a, b, saver(engine), reasons, progress, remote, platform)


def load_slim_report(path: Path, schemas: Sequence[str] = (SLIM_SCHEMA,)) -> dict[str, Any]:
    """A saved `report.json` (`slimmer.slim/v3`, or one of `schemas`), for `slim report`
    to render again."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"reading report {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("schema") not in schemas:
        found = doc.get("schema") if isinstance(doc, dict) else None
        want = " or ".join(schemas)
        raise UsageError(f"reading report {path}: not a {want} document (schema {found!r})")
    return doc


# -- verdicts: which outcomes are failures, and their exit codes -------------------------
# Every command's verdict is here: the command renders its value first, then asks
# its verdict, and the error's class carries the exit code (slimmer.errors).


def raise_for_budget(ref: str, result: CheckResult) -> None:
    """`BudgetExceeded` (exit 3) when a rule failed; warnings pass."""
    failed = [r.id for r in result.results if r.status is Status.FAIL]
    if failed:
        noun = "rule" if len(failed) == 1 else "rules"
        raise BudgetExceeded(
            f"checking {ref}: budget exceeded, {len(failed)} {noun} failed: {', '.join(failed)}"
        )


def raise_for_verdict(result: SlimResult, report: Path | None = None) -> None:
    """`VerificationFailed` (exit 4) when the slim image answered differently and was
    therefore not tagged (a `--force`d result was tagged: no error)."""
    if result.verified is False and not result.tagged:
        where = f" (see {report})" if report else ""
        refused = (
            f"; as {result.user} the kernel refused {result.denied[0]}" if result.denied else ""
        )
        calls = result.seccomp.refused if result.seccomp is not None else ()
        if calls:
            names = ", ".join(r.describe() for r in calls)
            refused += f"; the seccomp profile refused {names}"
        raise VerificationFailed(
            f"verifying {result.output}: {len(result.diffs)} probe(s) answered differently"
            f"{refused}; not tagged{where}"
        )


def raise_for_index(result: IndexResult, report: Path | None = None) -> None:
    """`VerificationFailed` (exit 4) when a platform's slim image answered differently:
    then nothing was pushed."""
    if result.failed:
        where = f" (see {report})" if report else ""
        names = ", ".join(str(r.platform) for r in result.failed)
        pushed = "; nothing was pushed" if result.index is None else ""
        raise VerificationFailed(
            f"slimming {result.source}: {names} did not verify (not tagged){pushed}{where}"
        )


def raise_for_findings(report: FindingsReport, severity: Severity) -> None:
    """`BudgetExceeded` (exit 3, as `slim check`) when a finding is at or above `severity`."""
    failing = report.at_or_above(severity)
    if failing:
        ids = ", ".join(sorted({f.id for f in failing}))
        raise BudgetExceeded(
            f"linting {report.ref}: {len(failing)} finding(s) at or above {severity.label}: {ids}"
        )


def raise_for_validation(result: Validation) -> None:
    """`ImageInvalid` (exit 7) when an invariant is broken; warnings pass."""
    if not result.valid:
        noun = "violation" if len(result.violations) == 1 else "violations"
        raise ImageInvalid(
            f"validating {result.source}: {len(result.violations)} {noun}; "
            f"first: {result.violations[0]}"
        )


# -- slim compose: every own service of a compose project (pipeline.fleet) ---------------


def slim_compose(opts: FleetOptions, progress: Progress = lambda _: None) -> FleetResult:
    """`slim compose FILE`: each service the project builds (or each `--service`)
    slimmed and verified in the project's context, and the override naming those
    that passed (see slimmer.pipeline.fleet)."""
    from slimmer.context.compose import find_compose

    runner = find_compose()
    profiles = profiles_fn(profile_dirs(()))
    with Engine.connect() as engine:

        def one(eng: ContainerEngine, ref: str, o: SlimOptions, tell: Progress) -> SlimResult:
            check_options(ref, o)
            return slim_image(eng, ref, o, profiles, tell)

        return slim_fleet(engine, runner, opts, one, progress)


def raise_for_fleet(result: FleetResult) -> None:
    """`FleetFailed` carrying the exit code of the first service (in the project's
    order) that did not pass: 4 when its verification failed (it was not tagged and
    is not in the override), its error's own code else."""
    failed = result.failed
    if not failed:
        return
    first = failed[0]
    names = ", ".join(f"{o.chosen.service} ({o.status})" for o in failed)
    cause = first.error or f"{first.chosen.output} answered differently; not tagged"
    raise FleetFailed(
        f"slim compose {result.file.name}: {len(failed)} of {len(result.outcomes)} "
        f"service(s) did not pass: {names}; first: {first.chosen.service}: {cause}",
        first.exit_code,
    )
