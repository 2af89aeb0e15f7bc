"""`--dockerfile PATH`: write the Dockerfile that rebuilds the slim image, build it with
the engine's own `docker build`, and verify what it builds with the same probes.

The Dockerfile goes to PATH, and `slimmer-files/` beside it holds the rest of its
build context: the files slimmer generated (merged accounts, the trimmed dpkg
status), `tree.tar` (the app layer's directories and symlinks) and
`keep-list.txt` (the app layer's paths as text, for a reviewer; see
`pipeline.dockerfile`). The build itself runs in a private context holding only those, is
labelled temporary, and its image is removed once it has been measured and
verified (`slim cleanup` finds it after a crash).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from slimmer.engine_api import ContainerEngine
from slimmer.errors import SlimError
from slimmer.image.reader import Image
from slimmer.image.store import ContentStore
from slimmer.image.writer import ExtraFile, kept_entries, write_layer
from slimmer.model import (
    MANAGED_LABEL,
    OCI_BASE_DIGEST,
    OCI_BASE_NAME,
    SOURCE_LABEL,
    ImageConfig,
)
from slimmer.pipeline.base import PreparedBase
from slimmer.pipeline.dockerfile import (
    GENERATED_DIR,
    KEEP_LIST,
    TREE_TAR,
    DockerfilePlan,
    plan_dockerfile,
)
from slimmer.pipeline.verify import ProbeDiff, compare_probes
from slimmer.plan.keep import KeepSet
from slimmer.plan.onbase import AppLayer
from slimmer.plan.owners import with_owners
from slimmer.trace.tracer import TracedRun


@dataclass(frozen=True)
class DockerfileResult:
    """The generated Dockerfile, the image `docker build` made of it, and its verdict."""

    path: Path
    copies: int
    exact_bytes: int
    copied_bytes: int  # the file bytes the pick stage takes from the app (a hardlink's again)
    image_id: str
    size_bytes: int
    direct_bytes: int  # the size of the image slim wrote itself, for comparison
    diffs: tuple[ProbeDiff, ...]

    @property
    def verified(self) -> bool:
        return not self.diffs


@dataclass(frozen=True)
class Rebuild:
    """What building the Dockerfile needs from the slimming run."""

    engine: ContainerEngine
    workdir: Path
    source_ref: str
    config: ImageConfig  # the output's config (`--user` applied)
    base: PreparedBase | None
    layer: AppLayer | None  # the app layer written on `base` (None on scratch)
    owners: Mapping[str, tuple[int, int]]
    run: Callable[[str], TracedRun]  # run an image with the original probes, untraced
    seccomp: Path | None = None  # --seccomp: the profile the runs use, named in a comment


def build_dockerfile(
    job: Rebuild, src: Image, keep: KeepSet, traced_run: TracedRun, path: Path, direct_bytes: int
) -> DockerfileResult:
    """Write the Dockerfile for this run's result to `path`, build and verify it.
    `direct_bytes` is the size of the image slim wrote, reported beside the built one's."""
    base, layer = job.base, job.layer
    if base is None or layer is None:
        entries = with_owners(kept_entries(src.tree, keep.paths(), src.store), job.owners)
        generated: tuple[ExtraFile, ...] = tuple(keep.generated)
        base_ref = base_pin = "scratch"
        base_tree = None
    else:
        entries, generated = list(layer.entries), layer.generated
        base_ref, base_tree = base.choice.ref, base.image.tree
        base_pin = base.choice.digest or base.choice.image_id
    config = job.config
    plan = plan_dockerfile(
        source_ref=job.source_ref,
        source_id=src.id,
        base_ref=base_ref,
        base_pin=base_pin,
        entries=entries,
        generated=[g.path for g in generated],
        config=config,
        source_tree=src.tree,
        base_tree=base_tree,
        why=_first_reasons(keep),
        labels=_labels(config.container.get("Labels") or {}, src.id, base),
        seccomp=str(job.seccomp) if job.seccomp is not None else None,
    )
    _write_files(path, plan, generated, src.store)
    image_id = _build(job, path)
    try:
        check = job.run(image_id)
        size = job.engine.inspect_image(image_id).size
    finally:
        job.engine.remove_image(image_id, force=True)
    return DockerfileResult(
        path=path,
        copies=len(plan.copies),
        exact_bytes=plan.exact_bytes,
        copied_bytes=plan.copied_bytes,
        image_id=image_id,
        size_bytes=size,
        direct_bytes=direct_bytes,
        diffs=compare_probes(traced_run.results, check.results),
    )


def _first_reasons(keep: KeepSet) -> dict[str, str]:
    out = {}
    for path, reasons in keep.reasons.items():
        r = reasons[0]
        out[path] = f"{r.source or r.kind}: {r.detail}" if r.detail else (r.source or r.kind)
    return out


def _labels(source: Mapping[str, str], source_id: str, base: PreparedBase | None) -> dict[str, str]:
    labels = {k: v for k, v in source.items() if k not in (OCI_BASE_NAME, OCI_BASE_DIGEST)}
    labels[SOURCE_LABEL] = source_id
    if base is not None:
        labels[OCI_BASE_NAME] = base.choice.ref
    return labels


def _write_files(
    path: Path, plan: DockerfilePlan, generated: Iterable[ExtraFile], store: ContentStore
) -> None:
    """The Dockerfile at `path`; under `slimmer-files/` beside it the tree tar, the keep
    list and the generated files (replacing what an earlier run left there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(plan.text)
    shutil.rmtree(path.parent / GENERATED_DIR, ignore_errors=True)
    (path.parent / GENERATED_DIR).mkdir()
    if plan.tree:
        with (path.parent / TREE_TAR).open("wb") as out:
            write_layer(plan.tree, store, out)
    (path.parent / KEEP_LIST).write_text(plan.keep_list, encoding="utf-8")
    for gen in generated:
        dest = path.parent / GENERATED_DIR / gen.path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(gen.data)
        dest.chmod(gen.mode)


def _build(job: Rebuild, path: Path) -> str:
    """Build the Dockerfile in a private context of its own files; the image ID."""
    context = Path(tempfile.mkdtemp(prefix="slimmer-dockerfile-", dir=job.workdir))
    try:
        shutil.copyfile(path, context / "Dockerfile")
        generated_dir = path.parent / GENERATED_DIR
        if generated_dir.is_dir():
            shutil.copytree(generated_dir, context / GENERATED_DIR, symlinks=True)
        tag = f"slimmer-build/{uuid.uuid4().hex[:12]}:dockerfile"
        return job.engine.build(context, tag, labels={MANAGED_LABEL: "temporary"})
    except SlimError as exc:
        raise SlimError(f"building {path} with the engine: {exc.message}") from exc
    finally:
        shutil.rmtree(context, ignore_errors=True)
