"""`slim REF -o OUT --platform all|LIST [--push]` on an image index in a registry.

Each platform's image is pulled by its digest (`HOST/REPO@sha256:...`, through the
engine, with the login from config.json), slimmed and verified as a run of its own
(`slim_one`, the whole single-image pipeline; a foreign platform runs under
emulation), and the pulled image removed again unless the engine had it before.

Which platforms: `--platform all` or a list names them; every one must be in the
index (else exit 8) and runnable by the engine, natively or under emulation (else
exit 6 before any work, naming each and how to enable emulation). Without
`--platform`, every platform of the index the engine runs is slimmed and those it
cannot run are reported as skipped.

Local tags: the engine's own platform's slim image is tagged `OUT`, every other
platform's `OUT-ARCH[VARIANT]` (`app:1-slim-arm64`); the one platform of a run of
one (`--platform linux/arm64`) is tagged `OUT`. With `--push`, and only when
every platform verified, each slim image is pushed to `OUT` in turn (foreign
platforms first, so `OUT` ends on the engine's own platform) and one index naming
all of them is then stored at `OUT`: the registry holds the per-platform manifests
by digest and no other tag.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Protocol

from slimmer.engine import split_tag
from slimmer.engine_api import ContainerEngine
from slimmer.errors import ImageUnrunnable, RegistryImageNotFound, SlimError, UsageError
from slimmer.image.platforms import Platform, choose, matches
from slimmer.model import Progress
from slimmer.pipeline.emulation import can_emulate, how_to_enable
from slimmer.pipeline.slim import SlimOptions, SlimResult
from slimmer.registry.client import Manifest, RegistryClient
from slimmer.registry.index import IndexEntry, compose, entries_of
from slimmer.registry.refs import RegistryRef, parse_registry_ref
from slimmer.registry.transfer import PullPolicy, PullPushEngine, ensure_pulled, push


@dataclass(frozen=True)
class PlatformSelection:
    """`--platform`: every platform of the index (`all`), the ones `named`, or, when
    neither, every one the engine runs (the default)."""

    all: bool = False
    named: tuple[Platform, ...] = ()

    @property
    def explicit(self) -> bool:
        return self.all or bool(self.named)

    def __str__(self) -> str:
        return "all" if self.all else ",".join(map(str, self.named)) or "default"


DEFAULT_PLATFORMS = PlatformSelection()


@dataclass(frozen=True)
class IndexPlan:
    """What one multi-platform run does: the index read, the platforms it slims (in
    the order it runs them: the engine's own first), those it skips."""

    source: RegistryRef
    index_digest: str
    chosen: tuple[IndexEntry, ...]
    skipped: tuple[Platform, ...]
    native: tuple[str, str]


@dataclass(frozen=True)
class PlatformRun:
    """One platform's slim: its source by digest, its local tag, its result, and the
    digest its slim image was pushed as (None: not pushed)."""

    platform: Platform
    source: str
    output: str
    result: SlimResult
    pushed: str | None = None

    @property
    def passed(self) -> bool:
        return self.result.tagged and self.result.verified is not False


@dataclass(frozen=True)
class IndexResult:
    """A whole multi-platform run; `index` is the digest of the index stored at
    `output` (None: nothing was pushed)."""

    source: str
    source_index: str
    output: str
    runs: tuple[PlatformRun, ...]
    skipped: tuple[Platform, ...]
    index: str | None = None
    index_media_type: str | None = None

    @property
    def failed(self) -> tuple[PlatformRun, ...]:
        return tuple(r for r in self.runs if not r.passed)


class ManifestSource(Protocol):
    """What planning needs of a registry client (RegistryClient has it)."""

    def manifest(self, repo: str, reference: str) -> Manifest: ...

    def blob(self, repo: str, digest: str) -> bytes: ...


class IndexEngine(ContainerEngine, PullPushEngine, Protocol):
    """An engine that runs containers and pulls and pushes (slimmer.engine.Engine)."""


SlimOne = Callable[[str, SlimOptions], SlimResult]


def plan_index(
    engine: ContainerEngine,
    client: ManifestSource,
    ref: str,
    selection: PlatformSelection,
) -> IndexPlan | None:
    """The plan for `ref` when its registry holds an index there; None when it holds one
    image (the single-image run applies). Refusals come here, before any work."""
    source = parse_registry_ref(ref)
    manifest = client.manifest(source.repository, source.reference)
    where = f"{source.host}/{source.repository}:{source.reference}"
    if not manifest.is_index:
        if selection.named:
            _check_single(client, source.repository, manifest, selection.named, where)
        return None
    entries = _dedupe(entries_of(manifest.json(), where))
    if selection.named:
        raw = [{"platform": _plat(e.platform), "i": i} for i, e in enumerate(entries)]
        entries = tuple(
            entries[int(choose(raw, p, where, RegistryImageNotFound)["i"])] for p in selection.named
        )
    native = engine.platform()
    runnable = [e for e in entries if _runs(engine, native, e.platform)]
    refused = [e.platform for e in entries if e not in runnable]
    if refused and (selection.explicit or not runnable):
        raise ImageUnrunnable(_refusal(where, native, refused))
    runnable.sort(key=lambda e: (e.platform.os, e.platform.architecture) != native)
    return IndexPlan(source, manifest.digest, tuple(runnable), tuple(refused), native)


def local_tag(output: str, platform: Platform, native: tuple[str, str], alone: bool = False) -> str:
    """`output` for the engine's own platform (or the one platform of a run `alone`),
    `output-ARCH[VARIANT]` for another."""
    if alone or (platform.os, platform.architecture) == native:
        return output
    repo, tag = split_tag(output)
    return f"{repo}:{tag or 'latest'}-{platform.architecture}{platform.variant}"


def slim_index(
    engine: IndexEngine,
    plan: IndexPlan,
    opts: SlimOptions,
    slim_one: SlimOne,
    progress: Progress = lambda _: None,
    env: Mapping[str, str] | None = None,
    pull: PullPolicy = PullPolicy.MISSING,
) -> IndexResult:
    """Each planned platform pulled by digest (unless `pull` is never: then the engine
    must have it), slimmed and verified on its own."""
    runs = []
    src = plan.source
    for entry in plan.chosen:
        ref = f"{src.host}/{src.repository}@{entry.digest}"
        out = local_tag(opts.output, entry.platform, plan.native, len(plan.chosen) == 1)
        progress(f"platform {entry.platform}: {ref} -> {out}")
        policy = PullPolicy.NEVER if pull is PullPolicy.NEVER else PullPolicy.MISSING
        pulled = ensure_pulled(engine, ref, policy, env, str(entry.platform))
        try:
            result = slim_one(ref, replace(opts, output=out))
        finally:
            if pulled:
                with suppress(SlimError):
                    engine.remove_image(ref)
        runs.append(PlatformRun(entry.platform, ref, out, result))
    return IndexResult(str(src), plan.index_digest, opts.output, tuple(runs), plan.skipped)


def push_index(
    engine: IndexEngine,
    client: RegistryClient,
    result: IndexResult,
    progress: Progress = lambda _: None,
    env: Mapping[str, str] | None = None,
) -> IndexResult:
    """Push every platform's slim image to `result.output`, then one index of them
    there. Refused (nothing pushed) unless every platform passed."""
    if result.failed:
        raise UsageError("pushing an index: not every platform verified")  # caller checks
    out = parse_registry_ref(result.output)
    pushed, entries = _push_each(engine, client, result, progress, env)
    by_platform = {str(e.platform): e for e in entries}
    raw, media = compose([by_platform[str(r.platform)] for r in result.runs])
    digest = client.put_manifest(out.repository, out.tag or "latest", raw, media)
    progress(f"pushed the index {result.output}@{digest}")
    runs = {str(r.platform): r for r in pushed}
    return replace(
        result,
        runs=tuple(runs[str(r.platform)] for r in result.runs),
        index=digest,
        index_media_type=media,
    )


def _push_each(
    engine: IndexEngine,
    client: RegistryClient,
    result: IndexResult,
    progress: Progress,
    env: Mapping[str, str] | None,
) -> tuple[list[PlatformRun], list[IndexEntry]]:
    """Each slim image pushed as `result.output` in turn, the engine's own platform's
    last. Meanwhile that image keeps a second local tag: with `OUT` moved to another
    platform's image it would be an untagged slim image, which `slim cleanup` (and any
    other run's leftover sweep) removes. At the end `OUT` names it again (and only the
    push's name when no run is of the engine's own platform: then it is removed)."""
    out = parse_registry_ref(result.output)
    own = [r for r in result.runs if r.output == result.output]
    hold = f"{result.output}-pushing-{secrets.token_hex(4)}"
    for r in own:
        engine.tag_image(r.result.image_id, hold)
    pushed, entries = [], []
    try:
        for run in sorted(result.runs, key=lambda r: r.output == result.output):
            engine.tag_image(run.result.image_id, result.output)
            digest = push(engine, result.output, env)
            manifest = client.manifest(out.repository, digest)
            size = len(manifest.raw)
            entries.append(IndexEntry(run.platform, digest, manifest.media_type, size))
            pushed.append(replace(run, pushed=digest))
            progress(f"pushed {run.platform} as {out.host}/{out.repository}@{digest}")
    finally:
        for r in own:
            engine.tag_image(r.result.image_id, result.output)
            engine.remove_image(hold)
        if not own:
            engine.remove_image(result.output)
    return pushed, entries


def parse_selection(text: str) -> PlatformSelection:
    """`all`, or a comma-separated list of `OS/ARCH[/VARIANT]`."""
    from slimmer.image.platforms import parse_platform

    if text.strip() == "all":
        return PlatformSelection(all=True)
    named = tuple(parse_platform(p) for p in text.split(",") if p.strip())
    if not named:
        raise UsageError("--platform: name `all` or OS/ARCH[,OS/ARCH...]")
    return PlatformSelection(named=named)


def _check_single(
    client: ManifestSource,
    repo: str,
    manifest: Manifest,
    named: Sequence[Platform],
    where: str,
) -> None:
    """A single image is slimmed as today when it is of a named platform; else exit 8."""
    config = json.loads(client.blob(repo, str(manifest.json()["config"]["digest"])))
    entry = {"platform": {k: config.get(k) for k in ("os", "architecture", "variant")}}
    if not any(matches(p, entry) for p in named):
        have = f"{config.get('os', '?')}/{config.get('architecture', '?')}"
        raise RegistryImageNotFound(
            f"reading {where}: it is one image, for {have}, not an index with "
            + ", ".join(map(str, named))
        )


def _runs(engine: ContainerEngine, native: tuple[str, str], p: Platform) -> bool:
    return (p.os, p.architecture) == native or can_emulate(engine, p.os, p.architecture)


def _refusal(where: str, native: tuple[str, str], refused: Sequence[Platform]) -> str:
    names = ", ".join(map(str, refused))
    hints = "; ".join(f"for {p}, {how_to_enable(p.os, p.architecture)}" for p in refused)
    return (
        f"slimming {where}: the engine runs {native[0]}/{native[1]} and cannot run "
        f"{names} under emulation; nothing was slimmed or pushed. {hints}"
    )


def _dedupe(entries: Sequence[IndexEntry]) -> tuple[IndexEntry, ...]:
    seen: dict[str, IndexEntry] = {}
    for e in entries:
        seen.setdefault(str(e.platform), e)
    return tuple(seen.values())


def _plat(p: Platform) -> dict[str, str]:
    out = {"os": p.os, "architecture": p.architecture}
    if p.variant:
        out["variant"] = p.variant
    return out
