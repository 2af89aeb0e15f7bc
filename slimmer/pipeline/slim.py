"""`slim IMAGE -o OUT`: profile, plan, write, verify, tag.

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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from slimmer.elf import loader
from slimmer.engine import Engine, saver
from slimmer.engine_api import ContainerEngine
from slimmer.errors import ProfileError, SlimError, UsageError
from slimmer.image.cache import ReadCache
from slimmer.image.filetree import keep_all
from slimmer.image.reader import Image, open_image, parse_ref
from slimmer.image.writer import write_image
from slimmer.model import Progress, TreeView
from slimmer.pipeline.verify import MissingPath, ProbeDiff, compare, missing_paths
from slimmer.plan.keep import KeepSet, ProfilesFn, Reason
from slimmer.plan.planner import TracedPath, UserRules, kept_bytes, plan
from slimmer.trace.probes import ProbeResult, ProbeSpec
from slimmer.trace.profiler import TracedRun, profile


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


@dataclass(frozen=True)
class Round:
    number: int
    image_id: str
    files: int
    diffs: tuple[ProbeDiff, ...]
    added: tuple[MissingPath, ...]


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

    @property
    def reduction(self) -> float:
        return self.before_bytes / self.after_bytes if self.after_bytes else 0.0

    @property
    def diffs(self) -> tuple[ProbeDiff, ...]:
        return self.rounds[-1].diffs if self.rounds else ()


class _Clock:
    def __init__(self, progress: Progress) -> None:
        self.phases: list[tuple[str, float]] = []
        self._progress = progress

    def sub(self, phase: str) -> Progress:
        return lambda stage: self._progress(f"{phase}: {stage}")

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._progress(name)
        start = time.monotonic()
        try:
            yield
        finally:
            self.phases.append((name, time.monotonic() - start))


class ElfClosure:
    """The planner's ClosureFn over the loader: each file the loader opens, with why.

    What the loader could not do (a corrupt ELF file, a library it would not find)
    is collected in `warnings` for the report, never dropped.
    """

    def __init__(self) -> None:
        self.warnings: dict[str, None] = {}

    def __call__(
        self, tree: TreeView, paths: Sequence[str], env: Mapping[str, str], workdir: str
    ) -> Iterable[tuple[str, Reason]]:
        found = loader.closure(tree, paths, env, workdir)
        for w in found.warnings:
            self.warnings.setdefault(str(w), None)
        for m in found.missing:
            self.warnings.setdefault(
                f"{m.requester}: the loader would not find {m.kind} {m.name}", None
            )
        return [(edge.path, Reason("elf", edge.reason)) for edge in found.edges]


def traced_paths(prof: TracedRun) -> list[TracedPath]:
    """Every path a traced run found, as named, as joined raw, and as the kernel resolved it."""
    out: list[TracedPath] = []
    for trace in prof.traces:
        for e in trace.events:
            if not e.existed or e.path.startswith("/.slimmer"):
                continue
            exe = trace.processes.get(e.pid, ("",))[0] if trace.processes else ""
            for name in dict.fromkeys((e.path, e.raw, e.target if e.kind == "open" else "")):
                if name.startswith("/"):
                    out.append(TracedPath(name, e.kind, exe))
    return out


def slim_image(
    ref: str,
    opts: SlimOptions,
    profiles: ProfilesFn | None = None,
    progress: Progress = lambda _: None,
) -> SlimResult:
    if parse_ref(ref).transport != "engine":
        raise UsageError(
            f"slimming {ref}: the image must be on the engine to run it (docker load it first)"
        )
    engine = Engine.connect()
    try:
        with _Session(engine, ref, opts, profiles, progress) as session:
            return session.run()
    finally:
        engine.close()


class _Session:
    """One slimming run: owns the source image read, the work dir and the temporary images."""

    def __init__(
        self,
        engine: ContainerEngine,
        ref: str,
        opts: SlimOptions,
        profiles: ProfilesFn | None,
        progress: Progress,
    ) -> None:
        self.engine, self.ref, self.opts, self.profiles = engine, ref, opts, profiles
        self.clock = _Clock(progress)
        self.work = Path(tempfile.mkdtemp(prefix="slimmer-slim-"))
        self.temporary: set[str] = set()
        self.source: Image | None = None
        self.closure = ElfClosure()

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc: object) -> None:
        for image_id in self.temporary:
            try:
                if not self.engine.inspect_image(image_id).tags:
                    self.engine.remove_image(image_id)
            except SlimError:  # best effort: `slim cleanup` finds what is left
                pass
        if self.source is not None:
            self.source.close()
        shutil.rmtree(self.work, ignore_errors=True)

    def run(self) -> SlimResult:
        opts = self.opts
        with self.clock.phase("reading the image"):
            self.source = src = self._read()
        self._refuse_overwrite(src)
        with self.clock.phase("profiling"):
            prof = profile(
                self.engine,
                src.id,
                src.config,
                opts.probes,
                opts.timeout,
                progress=self.clock.sub("profiling"),
            )
        failed = [r for r in prof.results if not r.ok]
        if failed:
            raise ProfileError(
                f"probing the original image: {failed[0].probe.label} failed ({failed[0].error})"
            )
        traced = traced_paths(prof)
        extra: list[MissingPath] = []
        rounds: list[Round] = []
        slim_results: tuple[ProbeResult, ...] = ()
        keep = KeepSet({})
        image_id = ""
        files = 0
        for number in range(1, opts.max_rounds + 1):
            with self.clock.phase("planning"):
                keep = self._plan(src, traced, extra)
            with self.clock.phase("writing"):
                image_id, files = self._write(src, keep)
            if not opts.verify:
                break
            with self.clock.phase("verifying"):
                check = profile(
                    self.engine,
                    image_id,
                    src.config,
                    prof.probes,
                    opts.timeout,
                    traced=False,
                    progress=self.clock.sub("verifying"),
                )
            slim_results = check.results
            diffs = compare(prof.results, check.results)
            added: tuple[MissingPath, ...] = ()
            if diffs and number < opts.max_rounds:
                with self.clock.phase("diagnosing"):
                    diag = profile(
                        self.engine,
                        image_id,
                        src.config,
                        prof.probes,
                        opts.timeout,
                        progress=self.clock.sub("diagnosing"),
                    )
                    added = missing_paths(diag.traces, src.tree, keep.paths())
            rounds.append(Round(number, image_id, files, diffs, added))
            if not diffs or not added:
                break
            extra.extend(added)
        verified = None if not opts.verify else not rounds[-1].diffs
        tagged = False
        if verified is not False or opts.force:
            self.engine.tag_image(image_id, opts.output)
            tagged = True
        return SlimResult(
            source_ref=self.ref,
            source_id=src.id,
            output=opts.output,
            image_id=image_id,
            tagged=tagged,
            verified=verified,
            before_bytes=self.engine.inspect_image(src.id).size,
            after_bytes=self.engine.inspect_image(image_id).size,
            before_files=sum(1 for e in src.tree if not e.is_dir),
            after_files=sum(1 for p in keep.paths() if (e := src.tree.get(p)) and not e.is_dir),
            phases=tuple(self.clock.phases),
            rounds=tuple(rounds),
            keep=keep,
            bytes_by_reason=kept_bytes(keep, src.tree),
            original_results=prof.results,
            slim_results=slim_results,
            warnings=(*(str(w) for w in src.warnings), *self.closure.warnings),
        )

    def _read(self) -> Image:
        cache = ReadCache.from_env(self.opts.cache_dir)
        if cache is None:
            return open_image(self.ref, save=saver(self.engine), want=keep_all, workdir=self.work)
        ref = parse_ref(self.ref)
        image_id = self.engine.inspect_image(ref.name).id
        cached = cache.load(ref, image_id)
        if cached is not None:
            return cached
        image = open_image(
            ref, save=saver(self.engine), want=keep_all, workdir=self.work, store=cache.blobs
        )
        cache.save(image)
        return image

    def _refuse_overwrite(self, src: Image) -> None:
        if self.opts.force:
            return
        if self.opts.output == self.ref or self.opts.output in src.repo_tags:
            raise UsageError(
                f"-o {self.opts.output}: that is the input image; pass --force to replace its tag"
            )
        if (
            self.engine.image_exists(self.opts.output)
            and self.engine.inspect_image(self.opts.output).id == src.id
        ):
            raise UsageError(
                f"-o {self.opts.output}: that tag names the input image; pass --force to replace it"
            )

    def _plan(self, src: Image, traced: list[TracedPath], extra: list[MissingPath]) -> KeepSet:
        more = [TracedPath(m.path, "verify", m.by) for m in extra]
        rules = self.opts.rules
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

    def _write(self, src: Image, keep: KeepSet) -> tuple[str, int]:
        out = self.work / "out"
        out.mkdir(exist_ok=True)
        written = write_image(
            src.tree, keep.paths(), src.store, src.config, src.id, out, generated=keep.generated
        )
        existed = self.engine.image_exists(written.image_id)
        with open(written.archive, "rb") as fh:
            self.engine.load_image(fh)
        written.archive.unlink()
        if not existed:
            self.temporary.add(written.image_id)
        return written.image_id, written.files
