"""The whole `slim` job (`pipeline.slim._Session`) on a fake engine and a scripted tracer.

Everything that needs no container runs here for real: reading a synthetic image,
the preflight, planning, writing, the rounds, tagging and the removal of temporary
images. The engine only keeps a table of images and records what it was asked; the
tracer answers each run of an image with the probe results the test scripts. The
same job against the real engine is covered by the `engine` tier (test_slim_*)."""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

from slimmer import api
from slimmer.context.run import NO_CONTEXT, RunContext
from slimmer.engine_api import ContainerEngine, ImageInfo
from slimmer.errors import EngineError, ImageNotFound, TraceError, UsageError, VerificationFailed
from slimmer.model import ImageConfig, Progress
from slimmer.pipeline.slim import SlimOptions, SlimResult, _Session, drop_untagged, slim_image
from slimmer.trace.events import Event, Trace
from slimmer.trace.probes import ProbeResult, ProbeSpec
from slimmer.trace.tracer import NO_SECCOMP, Limits, Run, SeccompRun, TracedRun
from tests.fake_engine import UnusedEngine
from tests.synth import M, docker_archive, layer

SOURCE = "app:1"
PROBE = ProbeSpec(kind="http")
OK = ProbeResult(PROBE, True, status=200, output=b"hi")
NO_LIMITS = Limits()
BROKEN = ProbeResult(PROBE, True, status=500, output=b"no /app/extra.txt")


class RecordingEngine(UnusedEngine):
    """An engine holding `docker save` archives by image ID; it records every call that
    changes it. Loading reads the archive's config digest as the image's ID."""

    def __init__(self, archive: Path, tag: str = SOURCE) -> None:
        self.archives: dict[str, bytes] = {}
        self.tags: dict[str, set[str]] = {}
        self.calls: list[tuple[str, str]] = []
        self.source_id = self._add(archive.read_bytes())
        self.tags[self.source_id].add(tag)

    def _add(self, data: bytes) -> str:
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            member = tf.extractfile("manifest.json")
            assert member is not None
            config = str(json.load(member)[0]["Config"])
        image_id = "sha256:" + config.removesuffix(".json")
        self.archives[image_id] = data
        self.tags.setdefault(image_id, set())
        return image_id

    def _id(self, ref: str) -> str:
        for image_id, tags in self.tags.items():
            if ref == image_id or ref in tags:
                return image_id
        raise ImageNotFound(f"inspecting {ref}: no such image")

    def versions(self) -> tuple[str, str]:
        return "Docker 20.10.24+dfsg1", "1.41"

    def platform(self) -> tuple[str, str]:
        return "linux", "amd64"

    def inspect_image(self, ref: str) -> ImageInfo:
        image_id = self._id(ref)
        tags = tuple(sorted(self.tags[image_id]))
        size = len(self.archives[image_id])
        return ImageInfo(image_id, tags, {}, {}, size, "amd64", "linux")

    def image_exists(self, ref: str) -> bool:
        try:
            self._id(ref)
        except ImageNotFound:
            return False
        return True

    def save_image(self, ref: str, out: IO[bytes]) -> int:
        data = self.archives[self._id(ref)]
        out.write(data)
        return len(data)

    def load_image(self, archive: IO[bytes] | bytes | Iterable[bytes]) -> list[str]:
        if isinstance(archive, bytes):
            data = archive
        elif hasattr(archive, "read"):
            data = archive.read()
        else:
            data = b"".join(archive)
        image_id = self._add(data)
        self.calls.append(("load", image_id))
        return [image_id]

    def import_layer(self, layer: Iterable[bytes], labels: Mapping[str, str]) -> str | None:
        # declines, as Podman does: each image is loaded whole (`load_image`), so the
        # archives kept are whole (the real engine's early load: test_early_load_engine)
        return None

    def tag_image(self, image_id: str, ref: str) -> None:
        for tags in self.tags.values():
            tags.discard(ref)
        self.tags[image_id].add(ref)
        self.calls.append(("tag", f"{image_id} {ref}"))

    def remove_image(self, ref: str, force: bool = False) -> None:
        image_id = self._id(ref)
        del self.archives[image_id], self.tags[image_id]
        self.calls.append(("remove", image_id))


class ScriptedTracer:
    """Answers the original's run with `OK` and a trace of what it opened; each later
    run of a written image with the next of `verifies` (untraced) and, when traced
    (diagnosing), a trace of `missing` looked for and not found."""

    def __init__(self, verifies: Sequence[ProbeResult] = (), missing: Sequence[str] = ()) -> None:
        self.verifies = list(verifies)
        self.missing = missing
        self.runs: list[tuple[str, bool]] = []  # (image, traced), in order
        self.original = OK

    def __call__(
        self,
        engine: ContainerEngine,
        image: str,
        config: ImageConfig,
        probes: Sequence[ProbeSpec],
        timeout: float = 60.0,
        *,
        traced: bool = True,
        progress: Progress = lambda _: None,
        limits: Limits = NO_LIMITS,
        context: RunContext = NO_CONTEXT,
        seccomp: SeccompRun = NO_SECCOMP,
    ) -> TracedRun:
        first = not self.runs
        self.runs.append((image, traced))
        if first:
            trace = _trace(("/usr/bin/app", True), ("/app/data.txt", True))
            return TracedRun(image, (Run("main", trace),), (self.original,), (PROBE,))
        if traced:
            trace = _trace(*((path, False) for path in self.missing))
            return TracedRun(image, (Run("main", trace),), (BROKEN,), (PROBE,))
        return TracedRun(image, (), (self.verifies.pop(0),), (PROBE,))


def _trace(*opened: tuple[str, bool]) -> Trace:
    events = tuple(
        Event(1, "openat", "open", path, path, 3 if found else -1, "" if found else "ENOENT", found)
        for path, found in opened
    )
    return Trace(events, {1: ("/usr/bin/app",)})


def _source(tmp_path: Path) -> Path:
    members = [
        M("bin", "symlink", link="usr/bin"),
        M("usr/bin/dash", data=b"\x00" * 8, mode=0o755),
        M("usr/bin/sh", "symlink", link="dash"),
        M("usr/bin/app", data=b"#!/bin/sh\ncat /app/data.txt\n", mode=0o755),
        M("app/data.txt", data=b"data"),
        M("app/extra.txt", data=b"extra"),
        M("app/unused.bin", data=b"u" * 4096),
    ]
    return docker_archive(tmp_path / "source.tar", [layer(*members)], cmd=["app"])


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory every session's work dir is made in (checked empty)."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


def _slim(
    engine: RecordingEngine,
    tracer: ScriptedTracer,
    *,
    ref: str = SOURCE,
    **options: Any,
) -> SlimResult:
    opts = SlimOptions(output="app:slim", probes=(PROBE,), **options)
    with _Session(engine, ref, opts, None, lambda _: None, tracer) as session:
        return session.run()


# -- refusals before anything runs ------------------------------------------------------------


@pytest.mark.parametrize("output", [SOURCE, "app:other"])
def test_the_input_images_tag_is_not_overwritten(output: str, tmp_path: Path, work: Path) -> None:
    engine = RecordingEngine(_source(tmp_path))
    engine.tags[engine.source_id].add("app:other")  # a second tag of the same image
    tracer = ScriptedTracer()
    opts = SlimOptions(output=output, probes=(PROBE,), cache_dir=tmp_path / "cache")
    with pytest.raises(UsageError, match=f"-o {output}: that .* pass --force"):
        with _Session(engine, SOURCE, opts, None, lambda _: None, tracer) as session:
            session.run()
    assert tracer.runs == [] and engine.calls == []
    assert engine.tags[engine.source_id] == {SOURCE, "app:other"}
    assert list(work.iterdir()) == []


def test_an_archive_cannot_have_a_dockerfile(tmp_path: Path) -> None:
    opts = SlimOptions(output="app:slim", dockerfile=tmp_path / "Dockerfile")
    with pytest.raises(UsageError, match="--dockerfile: the Dockerfile starts FROM"):
        slim_image(UnusedEngine(), f"docker-archive:{tmp_path / 'a.tar'}", opts)


def test_a_probe_the_original_fails_stops_the_run(tmp_path: Path, work: Path) -> None:
    engine = RecordingEngine(_source(tmp_path))
    tracer = ScriptedTracer()
    tracer.original = ProbeResult(PROBE, False, error="connection refused")
    with pytest.raises(TraceError, match="probing the original image: .*connection refused"):
        _slim(engine, tracer, cache_dir=tmp_path / "cache")
    assert engine.calls == []  # nothing written, loaded or tagged
    assert list(work.iterdir()) == []


# -- rounds ------------------------------------------------------------------------------------


def test_a_differing_probe_adds_what_the_slim_run_missed_and_verifies_again(
    tmp_path: Path, work: Path
) -> None:
    engine = RecordingEngine(_source(tmp_path))
    tracer = ScriptedTracer(verifies=[BROKEN, OK], missing=["/app/extra.txt"])
    result = _slim(engine, tracer, cache_dir=tmp_path / "cache")
    first, second = result.rounds
    assert [m.path for m in first.added] == ["/app/extra.txt"] and first.diffs
    assert second.added == () and second.diffs == ()
    assert "/app/extra.txt" in result.keep.paths() and "/app/unused.bin" not in result.keep.paths()
    assert result.verified is True and result.tagged
    assert result.engine == "Docker 20.10.24+dfsg1"  # as the engine names itself
    # the original, then each round: verify; diagnose only after a difference
    assert tracer.runs == [
        (engine.source_id, True),
        (first.image_id, False),
        (first.image_id, True),
        (second.image_id, False),
    ]
    assert ("tag", f"{second.image_id} app:slim") in engine.calls
    # the first round's image was temporary: removed when the session ended
    assert ("remove", first.image_id) in engine.calls
    assert engine.tags[second.image_id] == {"app:slim"}
    assert list(work.iterdir()) == []


def test_a_difference_nothing_explains_is_not_tagged(tmp_path: Path, work: Path) -> None:
    engine = RecordingEngine(_source(tmp_path))
    tracer = ScriptedTracer(verifies=[BROKEN], missing=[])  # nothing to add
    result = _slim(engine, tracer, cache_dir=tmp_path / "cache")
    (only,) = result.rounds
    assert result.verified is False and not result.tagged
    assert not any(call == "tag" for call, _ in engine.calls)
    assert ("remove", only.image_id) in engine.calls and not engine.image_exists("app:slim")
    with pytest.raises(VerificationFailed, match="1 probe.* answered differently; not tagged"):
        api.raise_for_verdict(result)


def test_force_tags_a_result_that_differs(tmp_path: Path, work: Path) -> None:
    engine = RecordingEngine(_source(tmp_path))
    tracer = ScriptedTracer(verifies=[BROKEN, BROKEN], missing=["/app/extra.txt"])
    result = _slim(engine, tracer, force=True, max_rounds=2, cache_dir=tmp_path / "cache")
    assert len(result.rounds) == 2  # the last round does not diagnose: nothing can follow
    assert tracer.runs[-1] == (result.image_id, False)
    assert result.verified is False and result.tagged
    assert engine.tags[result.image_id] == {"app:slim"}
    api.raise_for_verdict(result)  # forced: no error


def test_no_verify_writes_once_and_tags(tmp_path: Path, work: Path) -> None:
    engine = RecordingEngine(_source(tmp_path))
    tracer = ScriptedTracer()
    result = _slim(engine, tracer, verify=False, cache_dir=tmp_path / "cache")
    assert tracer.runs == [(engine.source_id, True)]  # the original only
    assert result.verified is None and result.tagged and len(result.rounds) == 1
    assert [c for c, _ in engine.calls] == ["load", "tag"]


# -- an archive source -------------------------------------------------------------------------


def test_an_archive_is_run_from_a_flattened_copy_removed_at_the_end(
    tmp_path: Path, work: Path
) -> None:
    archive = _source(tmp_path)
    engine = RecordingEngine(docker_archive(tmp_path / "other.tar", [layer(M("x", data=b"x"))]))
    tracer = ScriptedTracer(verifies=[OK])
    result = _slim(engine, tracer, ref=f"docker-archive:{archive}")
    flattened = tracer.runs[0][0]
    assert flattened != result.source_id  # the copy runs, not the archive's own ID
    loads = [image_id for call, image_id in engine.calls if call == "load"]
    assert loads == [flattened, result.image_id]
    assert ("remove", flattened) in engine.calls and not engine.image_exists(flattened)
    assert engine.image_exists("app:slim")
    assert list(work.iterdir()) == []


# -- --seccomp: the profile's evidence, verification under it, widening ---------------------


class SeccompTracer(ScriptedTracer):
    """A ScriptedTracer whose traces carry system calls: the original made `socket`;
    the first verification under the profile fails, and its diagnosis shows the app
    refused `getpriority`; the next verification passes."""

    def __init__(self) -> None:
        super().__init__(verifies=[BROKEN, OK])
        self.seccomp: list[SeccompRun] = []

    def __call__(self, *args: Any, **kwargs: Any) -> TracedRun:
        self.seccomp.append(kwargs.get("seccomp", NO_SECCOMP))
        run = super().__call__(*args, **kwargs)
        if not run.runs:
            return run
        first = len(self.runs) == 1
        calls = ("openat", "read", "socket") if first else ("getpriority", "openat")
        refusals = () if first else (("getpriority", "EPERM", 1),)
        trace = Trace(run.runs[0].trace.events, {1: ("/usr/bin/app",)}, syscalls=calls,
                      refusals=refusals)  # fmt: skip
        return TracedRun(run.image, (Run("main", trace),), run.results, run.probes)


def test_seccomp_profile_is_verified_and_widened_by_the_refused_call(
    tmp_path: Path, work: Path
) -> None:
    engine = RecordingEngine(_source(tmp_path))
    tracer = SeccompTracer()
    path = tmp_path / "seccomp.json"
    result = _slim(engine, tracer, seccomp=path)
    tracing, verify1, diagnose, verify2 = tracer.seccomp
    assert tracing == SeccompRun(record=True)  # every call recorded, no profile yet
    assert verify1.profile is not None and not verify1.record
    assert '"socket"' in verify1.profile and '"getpriority"' not in verify1.profile
    assert diagnose.record and diagnose.profile is not None and '"ptrace"' in diagnose.profile
    assert verify2.profile is not None and '"getpriority"' in verify2.profile
    assert '"ptrace"' not in verify2.profile  # the sensor's calls stay out
    assert result.verified is True and result.tagged
    assert result.seccomp is not None
    allowed = {a.name: a for a in result.seccomp.profile.allowed}
    assert allowed["getpriority"].kind == "verify"
    assert "EPERM, by /usr/bin/app" in allowed["getpriority"].reasons[0].detail
    assert json.loads(path.read_text()) == json.loads(verify2.profile)
    assert result.rounds[0].refused_calls[0].call == "getpriority"


class RefusingEngine(UnusedEngine):
    """Refuses the first `refusals` removals (a container still letting go of the
    image), then removes; records each attempt."""

    def __init__(self, refusals: int, tags: tuple[str, ...] = ()) -> None:
        self.refusals = refusals
        self.tags = tags
        self.attempts: list[tuple[str, bool]] = []

    def inspect_image(self, ref: str) -> ImageInfo:
        return ImageInfo(ref, self.tags, {}, {}, 0, "amd64", "linux")

    def remove_image(self, ref: str, force: bool = False) -> None:
        self.attempts.append((ref, force))
        if len(self.attempts) <= self.refusals:
            raise EngineError(f"removing image {ref!r}: image is in use by a container")


def test_a_temporary_image_refused_for_a_moment_is_removed_on_a_later_try() -> None:
    engine = RefusingEngine(refusals=2)
    assert drop_untagged(engine, "sha256:" + "a" * 64) is None
    assert engine.attempts == [("sha256:" + "a" * 64, True)] * 3


def test_a_temporary_image_that_stays_is_named_for_slim_cleanup() -> None:
    engine = RefusingEngine(refusals=99)
    said = drop_untagged(engine, "sha256:" + "b" * 64, attempts=2)
    assert said is not None
    assert "sha256:bbbbbbbbbbbb" in said and "in use by a container" in said
    assert "slim cleanup" in said
    assert len(engine.attempts) == 2


def test_a_temporary_image_tagged_meanwhile_is_kept() -> None:
    engine = RefusingEngine(refusals=0, tags=("app:slim",))
    assert drop_untagged(engine, "sha256:" + "c" * 64) is None
    assert engine.attempts == []


def test_a_second_run_takes_both_compressed_sizes_from_the_cache(
    tmp_path: Path, work: Path
) -> None:
    """The slim image an earlier run wrote (the same image ID) is not compressed again:
    its size is the cache's, and the report says so."""
    engine = RecordingEngine(_source(tmp_path))
    first = _slim(engine, ScriptedTracer(verifies=[OK]), cache_dir=tmp_path / "cache")
    second = _slim(engine, ScriptedTracer(verifies=[OK]), cache_dir=tmp_path / "cache")
    assert first.image_id == second.image_id
    assert first.cache is not None and second.cache is not None
    assert (first.cache.compressed, first.cache.slim_compressed) == (False, False)
    assert (second.cache.compressed, second.cache.slim_compressed) == (True, True)
    assert first.summary is not None and second.summary is not None
    assert second.summary.after.compressed_bytes == first.summary.after.compressed_bytes
    assert second.summary.after.compressed_method == first.summary.after.compressed_method
    assert second.summary.before.compressed_bytes == first.summary.before.compressed_bytes


def test_an_image_the_engine_holds_already_is_not_loaded_again(tmp_path: Path, work: Path) -> None:
    engine = RecordingEngine(_source(tmp_path))
    first = _slim(engine, ScriptedTracer(verifies=[OK]))
    loads = [c for c in engine.calls if c[0] == "load"]
    assert loads == [("load", first.image_id)]
    second = _slim(engine, ScriptedTracer(verifies=[OK]))
    assert second.image_id == first.image_id and second.tagged
    assert [c for c in engine.calls if c[0] == "load"] == loads  # the same image: not sent again
    assert first.image_id in engine.archives  # and not removed as a temporary one
