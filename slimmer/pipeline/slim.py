"""`slim IMAGE -o OUT`: trace, plan, write, verify, tag.

The output tag is written only after the slim image answered every probe as
the original did (or when the user forces it). When a probe differs, the slim
image is run again under the tracer; the paths it looked for and did not find,
although the original has them, are added with the reason `verify`, and the
image is written and verified again, a bounded number of rounds.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from slimmer.analyse.inspect import analyse
from slimmer.context.run import NO_CONTEXT, RunContext
from slimmer.engine_api import ContainerEngine
from slimmer.errors import EngineError, ImageNotFound, SlimError, TraceError, UsageError
from slimmer.findings.delta import FindingsDelta
from slimmer.findings.lint import want_for_lint
from slimmer.image.cache import ReadCache
from slimmer.image.compressed import Compressed
from slimmer.image.meter import content_bytes
from slimmer.image.paths import using_content_memo
from slimmer.image.reader import Image, open_image, parse_ref
from slimmer.image.writer import (
    WriteRequest,
    WrittenImage,
    kept_entries,
    layer_file,
    write_image,
)
from slimmer.model import FileEntry, ImageConfig, ImageRef, Progress
from slimmer.pipeline.base import (
    SCRATCH,
    BaseChoice,
    PreparedBase,
    elf_versions,
    prepare,
    refuse_if_incompatible,
    resolve_base,
)
from slimmer.pipeline.beside import Beside
from slimmer.pipeline.clock import Clock
from slimmer.pipeline.compression import CompressedSize
from slimmer.pipeline.emulation import emulation_notes
from slimmer.pipeline.findings import findings_delta, opened_paths
from slimmer.pipeline.inputs import ElfClosure, outside_context, traced_paths
from slimmer.pipeline.preflight import check_platform_of, check_program, check_runnable
from slimmer.pipeline.rebuild import DockerfileResult, Rebuild, build_dockerfile
from slimmer.pipeline.seccomp import (
    SeccompState,
    check_writable,
    start_state,
    write_profile,
)
from slimmer.pipeline.source import Source, read_archive_image, read_engine_image
from slimmer.pipeline.summary import (
    Summary,
    facts_of_source,
    facts_of_written,
    summarize,
    with_compressed,
)
from slimmer.pipeline.transfers import EarlyLoad, metered_load, write_meter
from slimmer.pipeline.verify import MissingPath, ProbeDiff, compare_probes, denied, missing_paths
from slimmer.plan.expanders.python_source import parser_fingerprint
from slimmer.plan.keep import KeepSet, ProfilesFn, Reason
from slimmer.plan.onbase import AppLayer, app_layer
from slimmer.plan.owners import owners_for, parse_user, user_field, with_owners, written_paths
from slimmer.plan.planner import TracedPath, UserRules, kept_bytes, plan
from slimmer.seccomp.profile import Refusal, SeccompProfile
from slimmer.trace.probes import ProbeResult, ProbeSpec
from slimmer.trace.sensor import host_architecture
from slimmer.trace.tracer import (
    CONTEXT_HINT,
    NO_SECCOMP,
    Limits,
    SeccompRun,
    TracedRun,
    died_at_start,
    run_traced,
)


@dataclass(frozen=True)
class SlimOptions:
    output: str
    probes: tuple[ProbeSpec, ...] = ()
    timeout: float = 60.0
    verify: bool = True
    force: bool = False
    rules: UserRules = UserRules()
    profiles_forced: frozenset[str] = frozenset()
    profiles_disabled: frozenset[str] = frozenset()
    profiles_extra: tuple[Path, ...] = ()
    max_rounds: int = 3
    cache_dir: Path | None = None
    base: str = SCRATCH  # scratch, auto, a flavour, or an engine reference (pipeline.base)
    user: str | None = None  # --user: nonroot, UID[:GID] or a name (plan.owners)
    dockerfile: Path | None = None  # --dockerfile: also write, build and verify one
    limits: Limits = Limits()  # --memory/--cpus of the tracing and verifying containers
    # --env, --volume, --network...: the context of every run (tracing, verifying,
    # diagnosing, the Dockerfile check); never the output's config
    context: RunContext = NO_CONTEXT
    seccomp: Path | None = None  # --seccomp: write a seccomp profile here, verify under it


@dataclass(frozen=True)
class SeccompResult:
    """`--seccomp`: the profile written, and the calls it refused in the last diagnosis
    run (the evidence a failed verification names)."""

    path: Path
    profile: SeccompProfile
    refused: tuple[Refusal, ...] = ()


@dataclass(frozen=True)
class OnBase:
    """How the result sits on its base: the choice, the conflicts settled, the app layer."""

    choice: BaseChoice
    layer: AppLayer  # what the added layer holds, what was left to the base, decisions
    app_layer_bytes: int  # the added layer's tar bytes
    app_files: int  # entries in the added layer


@dataclass(frozen=True)
class Round:
    number: int
    image_id: str
    files: int
    diffs: tuple[ProbeDiff, ...]
    added: tuple[MissingPath, ...]
    refused_calls: tuple[Refusal, ...] = ()  # --seccomp: refused in the diagnosis run


@dataclass(frozen=True)
class CacheUse:
    """What a run with a read cache (`--cache-dir`) took from it."""

    image: bool  # the source as read before: no `docker save`, no pass over its layers
    compressed: bool  # the source's compressed size
    slim_compressed: bool  # the slim image's, noted by an earlier run that wrote it
    parsed: int  # Python sources whose imports came from it, by content digest
    parsed_new: int  # Python sources parsed in this run, added to it


@dataclass(frozen=True)
class SlimResult:
    source_ref: str
    source_id: str
    output: str
    image_id: str
    tagged: bool
    verified: bool | None  # None: --no-verify
    before_bytes: int
    after_bytes: int
    before_files: int
    after_files: int
    phases: tuple[tuple[str, float], ...]
    rounds: tuple[Round, ...]
    keep: KeepSet
    bytes_by_reason: dict[str, int]
    original_results: tuple[ProbeResult, ...]
    slim_results: tuple[ProbeResult, ...]
    warnings: tuple[str, ...] = field(default=())
    on_base: OnBase | None = None
    user: str | None = None
    owned: tuple[str, ...] = ()  # paths given to --user
    denied: tuple[str, ...] = ()  # what the kernel refused the slim run (--user)
    dockerfile: DockerfileResult | None = None
    summary: Summary | None = None
    peaks: tuple[tuple[str, int], ...] = ()  # phase -> peak RSS bytes when it ended
    starts: tuple[float, ...] = ()  # each phase's start, seconds into the run
    options: SlimOptions | None = None
    findings: FindingsDelta | None = None  # `slim lint` of the input and of the result
    # paths the traced app opened that its context provides (a mount, a delivered
    # file): left out of the plan, never kept from the image
    mounted: tuple[str, ...] = ()
    engine: str = ""  # the engine that ran it, "Podman 4.3.1" (empty: not asked)
    seccomp: SeccompResult | None = None
    cache: CacheUse | None = None  # None: no read cache

    @property
    def reduction(self) -> float:
        return self.before_bytes / self.after_bytes if self.after_bytes else 0.0

    @property
    def diffs(self) -> tuple[ProbeDiff, ...]:
        return self.rounds[-1].diffs if self.rounds else ()


def check_options(ref: str, opts: SlimOptions) -> None:
    """Refuse, before any engine is asked, options that cannot go with `ref`."""
    if parse_ref(ref).transport != "engine" and opts.dockerfile is not None:
        raise UsageError(
            f"slimming {ref} --dockerfile: the Dockerfile starts FROM the input image, "
            "which must be on the engine (docker load it first)"
        )
    if opts.seccomp is not None:
        check_writable(opts.seccomp)


def slim_image(
    engine: ContainerEngine,
    ref: str,
    opts: SlimOptions,
    profiles: ProfilesFn | None = None,
    progress: Progress = lambda _: None,
) -> SlimResult:
    """The whole job on `engine` (the caller connects and closes it)."""
    check_options(ref, opts)
    with _Session(engine, ref, opts, profiles, progress) as session:
        return session.run()


class Tracer(Protocol):
    """What runs an image with probes (`slimmer.trace.tracer.run_traced`)."""

    def __call__(
        self,
        engine: ContainerEngine,
        image: str,
        config: ImageConfig,
        probes: Sequence[ProbeSpec],
        timeout: float = ...,
        *,
        traced: bool = ...,
        progress: Progress = ...,
        limits: Limits = ...,
        context: RunContext = ...,
        seccomp: SeccompRun = ...,
    ) -> TracedRun: ...


def drop_untagged(engine: ContainerEngine, image_id: str, attempts: int = 4) -> str | None:
    """Remove `image_id`, an image this run made, unless a tag names it by now (the
    output). An engine may still be letting go of the container that ran it (Podman
    answers a conflict for a moment), so a refusal is tried again; what still fails
    is named in the returned line, and `slim cleanup` finds the image by its label."""
    last = ""
    for attempt in range(attempts):
        try:
            if engine.inspect_image(image_id).tags:
                return None
            engine.remove_image(image_id, force=True)
            return None
        except ImageNotFound:
            return None
        except SlimError as exc:
            last = str(exc)
            time.sleep(0.25 * (attempt + 1))
    return f"could not remove the temporary image {image_id[:19]} ({last}); `slim cleanup` will"


class _Session:
    """One slimming run: owns the source image read, the work dir and the temporary images.
    It receives the engine and the tracer that runs images on it (tests pass fakes)."""

    def __init__(
        self,
        engine: ContainerEngine,
        ref: str,
        opts: SlimOptions,
        profiles: ProfilesFn | None,
        progress: Progress,
        tracer: Tracer = run_traced,
    ) -> None:
        self.engine, self.ref, self.opts, self.profiles = engine, ref, opts, profiles
        self.trace = tracer
        self.clock = Clock(progress)
        self.work = Path(tempfile.mkdtemp(prefix="slimmer-slim-"))
        self.temporary: set[str] = set()
        self.source: Image | None = None
        self.source_bytes = 0  # the source's size, as the engine counts it
        self.closure = ElfClosure()
        self.base: PreparedBase | None = None
        self.on_base: OnBase | None = None
        self.owners: dict[str, tuple[int, int]] = {}
        self.warnings: tuple[str, ...] = ()
        self.gzip_before: CompressedSize | None = None
        # image ID -> the archive written for it, and its gzip size being computed
        self.gzip_after: dict[str, CompressedSize] = {}
        self.seccomp: SeccompState | None = None  # --seccomp: the evidence so far
        self.cache = ReadCache.from_env(opts.cache_dir)  # --cache-dir, or none
        # imports of Python sources by content digest, kept for later runs
        self.parsed = self.cache.parsed(parser_fingerprint()) if self.cache is not None else None
        self.cached_image = self.cached_compressed = False
        # image ID -> its summary and findings, worked out beside its verification
        self._ahead: dict[str, Beside[tuple[Summary, FindingsDelta]]] = {}

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc: object) -> None:
        for ahead in self._ahead.values():  # before the files they read go
            ahead.cancel()
        for sizing in (self.gzip_before, *self.gzip_after.values()):
            if sizing is not None:
                sizing.stop()
        for image_id in self.temporary:
            left = drop_untagged(self.engine, image_id)
            if left is not None:  # said, not raised: the run's own outcome stands
                self.clock.sub("cleaning up")(left)
        if self.base is not None:
            self.base.close()
        if self.source is not None:
            self.source.close()
        shutil.rmtree(self.work, ignore_errors=True)

    def run(self) -> SlimResult:
        opts = self.opts
        src, traced_run = self._read_and_trace()
        self.owners = self._owners(src, traced_run)
        if opts.seccomp is not None:
            arch = src.config.architecture or host_architecture()
            self.seccomp = start_state(src.tree, arch, traced_run.traces)
        traced, mounted = outside_context(traced_paths(traced_run), opts.context)
        keep, rounds, slim_results, refused = self._rounds(src, traced_run, traced)
        if self.parsed is not None:
            self.parsed.save()
        seccomp = self._seccomp_result(rounds)
        image_id, verified = rounds[-1].image_id, None
        if opts.verify:
            verified = not rounds[-1].diffs
        tagged = verified is not False or opts.force
        if tagged:
            self.engine.tag_image(image_id, opts.output)
        after_bytes = self.engine.inspect_image(image_id).size
        summary, findings = self._ahead[image_id].result()
        dockerfile = None
        if opts.dockerfile is not None:
            with self.clock.phase("building the Dockerfile"):
                dockerfile = build_dockerfile(
                    self._rebuild(traced_run), src, keep, traced_run, opts.dockerfile, after_bytes
                )
        return SlimResult(
            source_ref=self.ref,
            source_id=src.id,
            output=opts.output,
            image_id=image_id,
            tagged=tagged,
            verified=verified,
            before_bytes=self.source_bytes,
            after_bytes=after_bytes,
            before_files=summary.before.files,
            after_files=summary.after.files,
            phases=tuple(self.clock.phases),
            rounds=tuple(rounds),
            keep=keep,
            bytes_by_reason=kept_bytes(keep, src.tree),
            original_results=traced_run.results,
            slim_results=slim_results,
            warnings=(*(str(w) for w in src.warnings), *self.closure.warnings, *self.warnings),
            on_base=self.on_base,
            user=opts.user,
            owned=tuple(sorted(self.owners)),
            denied=refused,
            dockerfile=dockerfile,
            summary=summary,
            peaks=tuple(self.clock.peaks),
            starts=tuple(s for _, s in self.clock.starts),
            options=opts,
            findings=findings,
            mounted=mounted,
            engine=self.engine.versions()[0],
            seccomp=seccomp,
            cache=self._cache_use(),
        )

    def _summarize_ahead(
        self, src: Image, keep: KeepSet, image_id: str, traced_run: TracedRun
    ) -> None:
        """Summarize and lint this round's image in a thread while it is verified: the
        run takes the result if the round is its last (`pipeline.beside`)."""

        def work(tell: Progress) -> tuple[Summary, FindingsDelta]:
            after_bytes = self.engine.inspect_image(image_id).size
            # the archive loaded, read back once for both (lint's wants hold inspect's);
            # the read counts as summarizing, the phase that needs it first
            archive = ImageRef("docker-archive", str(self.gzip_after[image_id].path))
            with ExitStack() as held:
                with self.clock.phase("summarizing"):
                    read = open_image(archive, want=want_for_lint, workdir=self.work)
                    written = held.enter_context(read)
                    summary = self._summary(src, keep, written, after_bytes)
                tell("linting")  # where a call-off stops it
                with self.clock.phase("linting"):
                    opened = opened_paths(traced_run.traces)
                    findings = findings_delta(src, self.opts.output, written, opened)
            with self.clock.phase("sizing"):
                return self._with_compressed(summary, src.id, image_id), findings

        if image_id not in self._ahead:  # a round may write the image of an earlier one
            self._ahead[image_id] = Beside(work, lambda _: None, "slimmer-summary")

    def _cache_use(self) -> CacheUse | None:
        if self.parsed is None:
            return None
        hits, misses = self.parsed.hits, self.parsed.misses
        slim = any(sizing.known for sizing in self.gzip_after.values())
        return CacheUse(self.cached_image, self.cached_compressed, slim, hits, misses)

    def _read_and_trace(self) -> tuple[Image, TracedRun]:
        """The source read, and its traced run. An engine image is read (saved and
        parsed) in a thread while its engine copy is traced (pipeline.beside); an
        archive must be read (and loaded) before it can run."""
        ref = parse_ref(self.ref)
        if ref.transport != "engine":
            with self.clock.phase("reading the image"):
                read = self._read()
            src = self._took(read)
            check_runnable(src, self.engine)  # preflight: refuse what cannot run
            self._before_tracing(src.id, src.repo_tags, src.config)
            return src, self._trace_original(read.run_id, src.config)
        info = self.engine.inspect_image(ref.name)
        config = ImageConfig(
            {"config": dict(info.config), "os": info.os, "architecture": info.architecture}
        )
        check_platform_of(str(ref), config, self.engine)  # preflight, before a container
        self._before_tracing(info.id, info.tags, config)
        reading = Beside(self._read_beside, self.clock.sub("reading the image"), "slimmer-read")
        try:
            traced_run = self._trace_original(info.id, config)
        except SlimError:  # an image that cannot run says why, once it is read
            src = self._read_by(reading)
            check_program(str(src.ref), src.config, src.tree)
            raise
        except BaseException:  # Ctrl-C: the read stops at its next chunk
            self._call_off(reading)
            raise
        src = self._read_by(reading)
        check_program(str(src.ref), src.config, src.tree)
        return src, traced_run

    def _read_by(self, reading: Beside[Source]) -> Image:
        """The source, once `reading` is done (called off on a Ctrl-C while waiting)."""
        try:
            return self._took(reading.result())
        except BaseException:
            self._call_off(reading)
            raise

    def _call_off(self, reading: Beside[Source]) -> None:
        done = reading.cancel()
        if done is not None:  # it had finished: close it with the rest
            self._took(done)

    def _read_beside(self, tell: Progress) -> Source:
        with self.clock.phase("reading the image"):
            return self._read(tell)

    def _took(self, read: Source) -> Image:
        """The source read: this session owns it from now (closes it at the end)."""
        self.source = read.image
        self.source_bytes = read.size_bytes
        self.cached_image = read.cached
        return read.image

    def _before_tracing(self, image_id: str, tags: Sequence[str], config: ImageConfig) -> None:
        self.warnings += emulation_notes(config, self.opts.timeout)
        self._refuse_overwrite(image_id, tags)

    def _trace_original(self, run_id: str, config: ImageConfig) -> TracedRun:
        opts = self.opts
        with self.clock.phase("tracing"):
            traced_run = self.trace(
                self.engine,
                run_id,
                config,
                opts.probes,
                opts.timeout,
                progress=self.clock.sub("tracing"),
                limits=opts.limits,
                context=opts.context,
                seccomp=SeccompRun(record=True) if opts.seccomp else NO_SECCOMP,
            )
        failed = [r for r in traced_run.results if not r.ok]
        if failed:
            hint = f"; {CONTEXT_HINT}" if died_at_start(failed[0].error) else ""
            raise TraceError(
                f"probing the original image: {failed[0].probe.label} failed "
                f"({failed[0].error}){hint}"
            )
        return traced_run

    def _seccomp_result(self, rounds: list[Round]) -> SeccompResult | None:
        """Write the profile of the evidence gathered in every round."""
        if self.seccomp is None or self.opts.seccomp is None:
            return None
        profile = self.seccomp.profile
        write_profile(self.opts.seccomp, profile)
        return SeccompResult(self.opts.seccomp, profile, rounds[-1].refused_calls)

    def _compressed_before(self, image_id: str) -> Compressed | None:
        """The source's gzip size: estimated beside this run, or by an earlier run that
        read it into the read cache."""
        if self.gzip_before is None:
            known = self.cache.compressed(image_id) if self.cache is not None else None
            self.cached_compressed = known is not None
            return known
        return self._noted(image_id, self.gzip_before)

    def _noted(self, image_id: str, sizing: CompressedSize) -> Compressed | None:
        """`sizing`'s figure, kept in the read cache for later runs unless it came
        from there."""
        size = sizing.result()
        if self.cache is not None and size is not None and not sizing.known:
            self.cache.note_compressed(image_id, size)
        return size

    def _summary(self, src: Image, keep: KeepSet, written: Image, after_bytes: int) -> Summary:
        # sizes as the engine counts them, the same in every face of the report
        before = replace(facts_of_source(analyse(src)), size_bytes=self.source_bytes)
        return summarize(src.tree, keep, before, facts_of_written(written, after_bytes))

    def _with_compressed(self, summary: Summary, source_id: str, image_id: str) -> Summary:
        """`summary` with both compressed sizes, taken last: their threads had the
        whole summary and lint to finish in."""
        before = self._compressed_before(source_id)
        after = self._noted(image_id, self.gzip_after[image_id])
        return replace(
            summary,
            before=with_compressed(summary.before, before),
            after=with_compressed(summary.after, after),
        )

    def _rounds(
        self, src: Image, traced_run: TracedRun, traced: list[TracedPath]
    ) -> tuple[KeepSet, list[Round], tuple[ProbeResult, ...], tuple[str, ...]]:
        """Plan, write and verify until the probes agree or nothing more can be added:
        (the last keep set, the rounds, the last probe results, what the kernel refused)."""
        opts = self.opts
        extra: list[MissingPath] = []
        rounds: list[Round] = []
        slim_results: tuple[ProbeResult, ...] = ()
        refused: tuple[str, ...] = ()
        keep = KeepSet({})
        for number in range(1, opts.max_rounds + 1):
            with self.clock.phase("planning"):
                keep = self._plan(src, traced, extra)
            if opts.base != SCRATCH and self.base is None:
                with self.clock.phase("choosing the base"):
                    self.base = self._prepare_base(src, keep)
            image_id, files = self._write_and_load(src, keep)
            if not opts.verify:
                self._summarize_ahead(src, keep, image_id, traced_run)
                rounds.append(Round(number, image_id, files, (), ()))
                break
            self._summarize_ahead(src, keep, image_id, traced_run)
            with self.clock.phase("verifying"):
                check = self._run(image_id, traced_run, traced=False, phase="verifying")
            slim_results = check.results
            diffs = compare_probes(traced_run.results, check.results)
            added: tuple[MissingPath, ...] = ()
            calls: tuple[Refusal, ...] = ()
            last = number == opts.max_rounds
            # under --seccomp the last round is diagnosed too: the report names the call
            if diffs and (not last or self.seccomp is not None):
                with self.clock.phase("diagnosing"):
                    diag = self._run(image_id, traced_run, traced=True, phase="diagnosing")
                    found = missing_paths(diag.traces, src.tree, keep.paths())
                    added = tuple(m for m in found if opts.context.covers(m.path) is None)
                    refused = denied(diag.traces) if opts.user else ()
                    if self.seccomp is not None:
                        calls = self.seccomp.refused(diag.traces)
                        if not last:
                            self.seccomp = self.seccomp.widened(calls, diag.traces)
            rounds.append(Round(number, image_id, files, diffs, added, calls))
            if not diffs or not (added or calls) or last:
                break
            self._ahead[image_id].cancel()  # before the next round reads the tree
            del self._ahead[image_id]  # (which may write this same image again)
            extra.extend(added)
        return keep, rounds, slim_results, refused

    def _run(self, image_id: str, traced_run: TracedRun, traced: bool, phase: str) -> TracedRun:
        """Run an image written here with the original run's probes, as the output runs
        (under the seccomp profile so far, with `--seccomp`)."""
        seccomp = NO_SECCOMP
        if self.seccomp is not None:
            seccomp = self.seccomp.diagnosing() if traced else self.seccomp.verifying()
        try:
            return self._trace_under(image_id, traced_run, traced, phase, seccomp)
        except EngineError as exc:
            if seccomp.profile is None:
                raise
            # an engine without seccomp, or one that refuses custom profiles, says so
            # when the container is created or started: one line, nothing tagged
            raise EngineError(
                f"running the slim image under the seccomp profile {self.opts.seccomp}: {exc}"
            ) from None

    def _trace_under(
        self, image_id: str, traced_run: TracedRun, traced: bool, phase: str, seccomp: SeccompRun
    ) -> TracedRun:
        return self.trace(
            self.engine,
            image_id,
            self.out_config,
            traced_run.probes,
            self.opts.timeout,
            traced=traced,
            progress=self.clock.sub(phase),
            limits=self.opts.limits,
            context=self.opts.context,
            seccomp=seccomp,
        )

    def _rebuild(self, traced_run: TracedRun) -> Rebuild:
        def run(image_id: str) -> TracedRun:
            return self._run(image_id, traced_run, traced=False, phase="checking the Dockerfile")

        layer = self.on_base.layer if self.on_base is not None else None
        return Rebuild(
            self.engine,
            self.work,
            self.ref,
            self.out_config,
            self.base,
            layer,
            self.owners,
            run,
            self.opts.seccomp,
        )

    @property
    def out_config(self) -> ImageConfig:
        """The source's config, run as `--user` when given."""
        assert self.source is not None
        config = self.source.config
        if self.opts.user is None:
            return config
        raw = dict(config.raw)
        raw["config"] = {**config.container, "User": user_field(self.opts.user)}
        return ImageConfig(raw)

    def _owners(self, src: Image, traced_run: TracedRun) -> dict[str, tuple[int, int]]:
        ids = parse_user(self.opts.user) if self.opts.user else None
        if ids is None:
            return {}
        events = (
            (e.kind, e.path, e.flags, e.existed)
            for trace in traced_run.traces
            for e in trace.events
        )
        written = [p for p in written_paths(events) if self.opts.context.covers(p) is None]
        return owners_for(src.tree, written, ids)

    def _prepare_base(self, src: Image, keep: KeepSet) -> PreparedBase:
        app = elf_versions(src.tree, (src.tree.resolve(p).path for p in keep.paths()))
        choice = resolve_base(self.engine, self.opts.base, app, src.config.architecture)
        prepared = prepare(self.engine, choice, self.work)
        try:
            self.warnings += refuse_if_incompatible(app, prepared)
        except BaseException:
            prepared.close()
            raise
        return prepared

    def _read(self, tell: Progress | None = None) -> Source:
        ref = parse_ref(self.ref)
        tell = tell or self.clock.sub("reading the image")
        if ref.transport == "engine":
            read = read_engine_image(self.engine, ref, self.cache, self.work, tell)
        else:
            read = read_archive_image(self.engine, ref, self.work, tell)
            if read.loaded is not None:
                self.temporary.add(read.loaded)
        self.gzip_before = read.gzip
        return read

    def _refuse_overwrite(self, image_id: str, tags: Sequence[str]) -> None:
        if self.opts.force:
            return
        if self.opts.output == self.ref or self.opts.output in tags:
            raise UsageError(
                f"-o {self.opts.output}: that is the input image; pass --force to replace its tag"
            )
        if (
            self.engine.image_exists(self.opts.output)
            and self.engine.inspect_image(self.opts.output).id == image_id
        ):
            raise UsageError(
                f"-o {self.opts.output}: that tag names the input image; pass --force to replace it"
            )

    def _plan(self, src: Image, traced: list[TracedPath], extra: list[MissingPath]) -> KeepSet:
        more = [TracedPath(m.path, "verify", m.by) for m in extra]
        rules = self.opts.rules
        with using_content_memo(self.parsed):
            keep = plan(src.tree, src.config, [*traced, *more], self.closure, self.profiles, rules)
        if not extra:
            return keep
        reasons = dict(keep.reasons)
        for m in extra:
            if m.path in reasons:
                reasons[m.path] = (
                    Reason("verify", f"missing in the slim run ({m.by})"),
                    *reasons[m.path],
                )
        return KeepSet(reasons, keep.generated)

    def _write_and_load(self, src: Image, keep: KeepSet) -> tuple[str, int]:
        """Write this round's image and load it: (its ID, its layer's entries). An image
        on scratch is sent to the engine while it is written (`EarlyLoad`)."""
        entries, layer = self._entries(src, keep)
        # a directory per round: an earlier round's archive may still be read for its
        # compressed size (pipeline.compression)
        out = Path(tempfile.mkdtemp(prefix="out-", dir=self.work))
        early = self._early_load(out, entries)
        try:
            with self.clock.phase("writing"):
                written = self._write(src, entries, layer, out)
            with self.clock.phase("loading"):
                return self.load(written, early), written.files
        except BaseException:
            if early is not None:
                early.call_off()
            raise

    def _entries(self, src: Image, keep: KeepSet) -> tuple[list[FileEntry], AppLayer | None]:
        """This round's entries: the kept files on scratch, or the app layer on the base."""
        if self.base is None:
            kept = kept_entries(src.tree, keep.paths(), src.store, keep.generated)
            return with_owners(kept, self.owners), None
        layer = app_layer(src.tree, keep, self.base.image.tree, self.base.libs, self.owners)
        entries = [*layer.entries, *kept_entries(src.tree, (), src.store, layer.generated)]
        return entries, layer

    def _early_load(self, out: Path, entries: list[FileEntry]) -> EarlyLoad | None:
        """The image's layer sent while it is written: on scratch only (one layer), and
        not when the output's tag names an image already (a rerun that writes the
        same image, which then needs no load)."""
        if self.base is not None or self.engine.image_exists(self.opts.output):
            return None
        progress = self.clock.sub("loading")
        total = content_bytes(entries)
        return EarlyLoad(self.engine, layer_file(out), total, progress, self.temporary.add)

    def _write(
        self, src: Image, entries: list[FileEntry], layer: AppLayer | None, out: Path
    ) -> WrittenImage:
        """Write this round's image under `out` (on the base, noted in `on_base`)."""
        request = WriteRequest(
            tuple(entries),
            src.store,
            self.out_config,
            src.id,
            out,
            base=self.base.layers if self.base is not None else None,
            taken=write_meter(entries, self.clock.sub("writing")),
        )
        written = write_image(request)
        if self.base is not None and layer is not None:
            self.on_base = OnBase(self.base.choice, layer, written.layer_bytes, written.files)
        return written

    def load(self, written: WrittenImage, early: EarlyLoad | None = None) -> str:
        """Load a written archive (from its layer sent `early`, when it was); a new
        image is temporary until tagged. An image the engine holds already (an earlier
        run wrote it: its ID, the digest of a config naming every layer's digest, is
        the same) is not sent again."""
        existed = self.engine.image_exists(written.image_id)
        if existed and early is not None:
            early.call_off()
        if not existed:
            if early is None or not early.load(written.archive, written.image_id):
                metered_load(self.engine, written.archive, self.clock.sub("loading"))
            self.temporary.add(written.image_id)
        if written.image_id not in self.gzip_after:  # the archive stays until __exit__
            # sized once the engine has loaded it: the engine's own untar and hashing
            # are on the run's path, the size is not until the summary;
            # an image an earlier run wrote (the same ID) has its size in the cache
            known = self.cache.compressed(written.image_id) if self.cache is not None else None
            self.gzip_after[written.image_id] = CompressedSize(written.archive, known=known)
        return written.image_id
