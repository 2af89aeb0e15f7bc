"""Build the test fixture images under `fixtures/` on the engine.

Every fixture starts from one base image made here with
`debootstrap --variant=minbase bookworm` and imported as a single layer
(`slimmer-fixture/base:bookworm-<hash>`), so nothing is ever pulled from a
registry. Each `fixtures/NAME/Dockerfile` begins with `ARG BASE` /
`FROM ${BASE}` and is built as `slimmer-fixture/NAME:<hash>` (and `:latest`),
where the hash covers the fixture folder (minus `probe.toml`), the base tag and
`BUILDER_VERSION`. An existing hashed tag is reused: nothing is rebuilt.

Build output goes to `.cache/fixtures/NAME.log`, never to stdout. Builds run one
at a time, serialised across processes by a lock file.

A Dockerfile that mentions `host-ca.crt` gets the host's CA bundle copied into
its (temporary) build context, for pip/npm behind this machine's TLS proxy; the
Dockerfile must delete it in the same RUN that uses it.

    python -m tests.fixtures_build [NAMES...]
    python -m tests.fixtures_build --arch arm64 [NAMES...]   (FOREIGN_FIXTURES by default)

A foreign architecture (`FOREIGN_ARCHES`) has its own base, built under qemu-user
emulation (scripts/ensure-qemu.sh), and its fixtures are `NAME-ARCH` images.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from slimmer.engine import Engine, split_tag
from slimmer.errors import SlimError, UsageError

BUILDER_VERSION = "1"
ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR = ROOT / "fixtures"
CACHE_DIR = ROOT / ".cache" / "fixtures"
REPO = "slimmer-fixture"
FIXTURE_LABEL = "io.slimmer.fixture"
HASH_LABEL = "io.slimmer.fixture.hash"
NOT_CONTEXT = frozenset({"probe.toml", "README.md"})
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
HOST_CA_NAME = "host-ca.crt"

# The compose project of the context fixtures (ctx-redis, ctx-web, ctx-worker): not a
# fixture image itself (no Dockerfile), the project `slim --compose`/`slim compose` run.
CONTEXT_PROJECT = FIXTURES_DIR / "ctx-project"
CONTEXT_BASE_ENV = "SLIMMER_FIXTURE_BASE"  # its compose.yml builds on this base tag
# Fixtures that exit at start without their context (env, secret, volume, database):
# their probes run only inside CONTEXT_PROJECT (service name -> fixture name).
CONTEXT_FIXTURES = {"web": "ctx-web", "worker": "ctx-worker"}

HOST_ARCH = "amd64"  # the engine's own architecture: fixtures run natively
# A foreign architecture's base is built with `debootstrap --foreign`, its second stage
# run under qemu-user (scripts/ensure-qemu.sh), and loaded as an image of that arch.
FOREIGN_ARCHES = ("arm64",)
FOREIGN_BUILDER = "1"
# The fixtures also built for each foreign arch: an interpreted service and a compiled
# ELF program with shared libraries (nginx: libpcre2, libssl, libcrypto, libz, libcrypt).
FOREIGN_FIXTURES = ("py-http", "nginx-static")
SUITE = "bookworm"  # the default; a Dockerfile line `# suite: NAME` picks another
SUITES = ("bookworm", "trixie")
MIRROR = "http://deb.debian.org/debian"
_SUITE_LINE = re.compile(r"^# suite: ([a-z]+)$", re.M)


def sources_list(suite: str) -> str:
    return (
        f"deb http://deb.debian.org/debian {suite} main\n"
        f"deb http://deb.debian.org/debian {suite}-updates main\n"
        f"deb http://deb.debian.org/debian-security {suite}-security main\n"
    )


# Like the official debian images: no service starts during `apt-get install`.
POLICY_RC_D = "#!/bin/sh\nexit 101\n"
BASE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    'CMD ["bash"]',
    f"LABEL {FIXTURE_LABEL}=base",
)
TAR_EXCLUDES = (
    "./dev/*",
    "./proc/*",
    "./sys/*",
    "./tmp/*",
    "./var/cache/apt/archives/*.deb",
    "./var/lib/apt/lists/*_*",  # stale: builds run update
)

Log = Callable[[str], None]


@dataclass(frozen=True)
class FixtureImage:
    """One fixture image on the engine, and how it got there."""

    name: str
    tag: str
    image_id: str
    size: int
    cached: bool
    seconds: float


def _quiet(_: str) -> None:
    pass


def fixture_names() -> list[str]:
    """Every folder under `fixtures/` that holds a Dockerfile, sorted."""
    return sorted(p.parent.name for p in FIXTURES_DIR.glob("*/Dockerfile"))


def standalone_fixture_names() -> list[str]:
    """The fixtures whose probes pass on the image run alone (all but CONTEXT_FIXTURES)."""
    return [n for n in fixture_names() if n not in CONTEXT_FIXTURES.values()]


def fixture_dir(name: str) -> Path:
    path = FIXTURES_DIR / name
    if not (path / "Dockerfile").is_file():
        known = ", ".join(fixture_names())
        raise UsageError(f"fixture {name!r}: no fixtures/{name}/Dockerfile (known: {known})")
    return path


# -- hashing -------------------------------------------------------------------
def _context_files(folder: Path) -> list[Path]:
    files = [p for p in folder.rglob("*") if p.is_file() or p.is_symlink()]
    return sorted(p for p in files if p.relative_to(folder).as_posix() not in NOT_CONTEXT)


def fixture_hash(name: str, base_tag: str) -> str:
    """Hash of what the image is built from: the folder, the base, the builder."""
    folder = fixture_dir(name)
    h = hashlib.sha256(f"{BUILDER_VERSION}\0{base_tag}\0".encode())
    for path in _context_files(folder):
        rel = path.relative_to(folder).as_posix()
        executable = path.stat().st_mode & 0o111 != 0
        h.update(f"{rel}\0{int(executable)}\0".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def base_hash(suite: str = SUITE) -> str:
    recipe = "\0".join(
        [BUILDER_VERSION, suite, MIRROR, "minbase", sources_list(suite), POLICY_RC_D]
    )
    recipe += "\0".join(BASE_CHANGES + TAR_EXCLUDES)
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def base_tag(suite: str = SUITE, arch: str = HOST_ARCH) -> str:
    if arch == HOST_ARCH:
        return f"{REPO}/base:{suite}-{base_hash(suite)}"
    return f"{REPO}/base:{suite}-{arch}-{foreign_base_hash(suite, arch)}"


def foreign_base_hash(suite: str, arch: str) -> str:
    """The base hash of a foreign architecture: the host recipe plus the arch and the
    two-stage debootstrap that builds it under emulation."""
    recipe = f"{base_hash(suite)}\0{arch}\0--foreign\0--second-stage\0{FOREIGN_BUILDER}"
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def image_name(name: str, arch: str = HOST_ARCH) -> str:
    """The repository name of fixture `name` built for `arch` (`nginx-static-arm64`)."""
    return name if arch == HOST_ARCH else f"{name}-{arch}"


def fixture_suite(name: str) -> str:
    """The Debian suite a fixture is built on: `# suite: NAME` in its Dockerfile."""
    found = _SUITE_LINE.search((fixture_dir(name) / "Dockerfile").read_text())
    suite = found.group(1) if found else SUITE
    if suite not in SUITES:
        raise UsageError(f"fixture {name!r}: suite {suite!r} is not one of {', '.join(SUITES)}")
    return suite


# -- locking and logs -------------------------------------------------------------
@contextmanager
def _build_lock() -> Iterator[None]:
    """One builder at a time on this machine (two cores; parallel test runs)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _log_path(name: str) -> Path:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    return CACHE_DIR / f"{name}.log"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _build_failed(what: str, log_path: Path, cause: object) -> SlimError:
    return SlimError(
        f"building fixture {what!r}: {cause}\nlast lines of {log_path}:\n{_tail(log_path)}"
    )


# -- base image --------------------------------------------------------------------
def _run_logged(cmd: Sequence[str], log: IO[str], what: str, log_path: Path) -> None:
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    res = subprocess.run(list(cmd), stdout=log, stderr=subprocess.STDOUT, check=False)
    if res.returncode != 0:
        log.flush()
        raise _build_failed(what, log_path, f"{cmd[0]} exited with {res.returncode}")


def _prepare_rootfs(rootfs: Path, suite: str) -> None:
    """Make the debootstrapped tree a plain container base."""
    (rootfs / "etc/apt/sources.list").write_text(sources_list(suite))
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text(POLICY_RC_D)
    policy.chmod(0o755)
    for leaked in ("etc/resolv.conf", "etc/hostname"):  # the engine provides these
        (rootfs / leaked).unlink(missing_ok=True)


def _debootstrap(rootfs: Path, suite: str, arch: str, log: IO[str], log_path: Path) -> None:
    """debootstrap `suite` into `rootfs`; a foreign `arch` in two stages, the second run
    in the tree under emulation (binfmt_misc's F flag reaches qemu inside the chroot)."""
    if arch == HOST_ARCH:
        cmd = ["debootstrap", "--variant=minbase", suite, str(rootfs), MIRROR]
        _run_logged(cmd, log, "base", log_path)
        return
    first = ["debootstrap", f"--arch={arch}", "--foreign", "--variant=minbase"]
    _run_logged([*first, suite, str(rootfs), MIRROR], log, f"base-{arch}", log_path)
    second = ["chroot", str(rootfs), "/debootstrap/debootstrap", "--second-stage"]
    _run_logged(second, log, f"base-{arch}", log_path)


def _make_base_tar(
    workdir: Path, suite: str, log: IO[str], log_path: Path, arch: str = HOST_ARCH
) -> Path:
    rootfs = workdir / "rootfs"
    _debootstrap(rootfs, suite, arch, log, log_path)
    _prepare_rootfs(rootfs, suite)
    tar_path = workdir / "rootfs.tar"
    excludes = [f"--exclude={pattern}" for pattern in TAR_EXCLUDES]
    _run_logged(
        [
            "tar",
            "--numeric-owner",
            "--xattrs",
            "--xattrs-include=*",
            *excludes,
            "-C",
            str(rootfs),
            "-cf",
            str(tar_path),
            ".",
        ],
        log,
        "base",
        log_path,
    )
    return tar_path


def ensure_base(
    engine: Engine, log: Log = _quiet, suite: str = SUITE, arch: str = HOST_ARCH
) -> FixtureImage:
    """The debootstrap base image of `suite` for `arch`, built and imported unless
    already there."""
    tag = base_tag(suite, arch)
    if engine.image_exists(tag):
        info = engine.inspect_image(tag)
        return FixtureImage("base", tag, info.id, info.size, True, 0.0)
    foreign = arch != HOST_ARCH
    took = "many minutes, emulated" if foreign else "about a minute"
    log(f"base: debootstrap {suite} {arch} ({took})")
    start = time.monotonic()
    log_path = _log_path(f"base-{suite}" + (f"-{arch}" if foreign else ""))
    with tempfile.TemporaryDirectory(prefix="slimmer-base-") as tmp, open(log_path, "w") as fh:
        tar_path = _make_base_tar(Path(tmp), suite, fh, log_path, arch)
        if foreign:
            image_id = _load_foreign_base(engine, tar_path, tag, arch)
        else:
            image_id = engine.import_rootfs(tar_path, tag, changes=list(BASE_CHANGES))
    if suite == SUITE and not foreign:
        _prune_stale(engine, "base", tag)
    info = engine.inspect_image(image_id)
    return FixtureImage("base", tag, info.id, info.size, False, time.monotonic() - start)


def _load_foreign_base(engine: Engine, layer: Path, tag: str, arch: str) -> str:
    """Load the rootfs tar `layer` as a one-layer image whose config names `arch`:
    `docker import` would stamp the engine's own architecture on it."""
    diff_id = _sha256_file(layer)
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["bash"],
            "Labels": {FIXTURE_LABEL: "base"},
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [
            {"created_by": f"debootstrap --arch={arch} --foreign (tests/fixtures_build.py)"}
        ],
    }
    raw = json.dumps(config, sort_keys=True).encode()
    config_name = f"{hashlib.sha256(raw).hexdigest()}.json"
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": [f"{diff_id}/layer.tar"]}]
    archive = layer.with_name("image.tar")
    with tarfile.open(archive, "w") as out:
        _add_bytes(out, config_name, raw)
        _add_bytes(out, "manifest.json", json.dumps(manifest).encode())
        out.add(layer, arcname=f"{diff_id}/layer.tar")
    with open(archive, "rb") as fh:
        engine.load_image(fh)
    return engine.inspect_image(tag).id


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _add_bytes(out: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    out.addfile(info, io.BytesIO(data))


# -- fixture images ----------------------------------------------------------------
def _copy_context(name: str, dest: Path) -> None:
    folder = fixture_dir(name)
    for path in _context_files(folder):
        target = dest / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target, follow_symlinks=False)
    if HOST_CA_NAME in (folder / "Dockerfile").read_text():
        shutil.copyfile(HOST_CA, dest / HOST_CA_NAME)


def _build(engine: Engine, name: str, tag: str, base: str, digest: str, image: str = "") -> str:
    log_path = _log_path(image or name)
    labels = {FIXTURE_LABEL: image or name, HASH_LABEL: digest}
    with tempfile.TemporaryDirectory(prefix=f"slimmer-{name}-") as tmp, open(log_path, "w") as fh:
        context = Path(tmp)
        _copy_context(name, context)
        try:
            return engine.build(context, tag, labels=labels, buildargs={"BASE": base}, log=fh)
        except SlimError as exc:
            fh.flush()
            raise _build_failed(name, log_path, str(exc).splitlines()[0]) from exc


def _prune_stale(engine: Engine, name: str, keep: str) -> None:
    """Drop tags of older builds of fixture `name` (images in use stay)."""
    repo = f"{REPO}/{name}"
    flt = {"label": f"{FIXTURE_LABEL}={name}"}
    for image in engine._api.images(filters=flt):  # no Engine method lists images
        for tag in image.get("RepoTags") or ():
            if split_tag(tag)[0] == repo and tag not in (keep, f"{repo}:latest"):
                try:
                    engine.remove_image(tag)
                except SlimError:
                    pass  # still used by a container: keep it


def ensure_fixture(
    engine: Engine, name: str, base: str, log: Log = _quiet, arch: str = HOST_ARCH
) -> FixtureImage:
    """Build fixture `name` on `base` (an `arch` base) unless its hashed tag already
    exists; a foreign `arch` is its own repository (`image_name`), built under emulation."""
    image = image_name(name, arch)
    digest = fixture_hash(name, base)
    tag = f"{REPO}/{image}:{digest}"
    cached = engine.image_exists(tag)
    start = time.monotonic()
    if not cached:
        log(f"{image}: building (log: {_log_path(image)})")
        _build(engine, name, tag, base, digest, image)
        _prune_stale(engine, image, tag)
    info = engine.inspect_image(tag)
    engine.tag_image(info.id, f"{split_tag(tag)[0]}:latest")
    return FixtureImage(image, tag, info.id, info.size, cached, time.monotonic() - start)


def build_foreign_fixtures(
    engine: Engine, arch: str, names: Sequence[str] = FOREIGN_FIXTURES, log: Log = _quiet
) -> dict[str, str]:
    """Ensure the `arch` base and the named fixtures built on it, under emulation;
    return fixture name -> hashed image tag."""
    if arch not in FOREIGN_ARCHES:
        raise UsageError(f"architecture {arch!r}: not one of {', '.join(FOREIGN_ARCHES)}")
    with _build_lock():
        base = ensure_base(engine, log, SUITE, arch)
        return {n: ensure_fixture(engine, n, base.tag, log, arch).tag for n in names}


def iter_fixtures(
    engine: Engine, names: Sequence[str] | None = None, log: Log = _quiet
) -> Iterator[FixtureImage]:
    """Ensure the base, then the named fixtures (all when None), yielding each."""
    wanted = list(names) if names else fixture_names()
    for name in wanted:
        fixture_dir(name)  # fail on a bad name before building anything
    with _build_lock():
        base = ensure_base(engine, log)
        yield base
        for name in wanted:
            suite = fixture_suite(name)
            on = base if suite == SUITE else ensure_base(engine, log, suite)
            yield ensure_fixture(engine, name, on.tag, log)


def build_fixtures(
    engine: Engine, names: Sequence[str] | None = None, log: Log = _quiet
) -> dict[str, str]:
    """Ensure the fixture images; return fixture name -> hashed image tag."""
    return {img.name: img.tag for img in iter_fixtures(engine, names, log) if img.name != "base"}


def context_project_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for running Compose on `CONTEXT_PROJECT`: `environ` (default: this
    process's) with `SLIMMER_FIXTURE_BASE` set to the base tag its `build:` sections use."""
    env = dict(os.environ if environ is None else environ)
    env[CONTEXT_BASE_ENV] = base_tag()
    return env


def _row(img: FixtureImage) -> str:
    state = "cached" if img.cached else f"built in {img.seconds:.0f}s"
    return f"{img.name:<14} {img.tag:<46} {img.size / 1e6:8.1f} MB  {state}"


def main(argv: Sequence[str] | None = None) -> int:
    names = list(sys.argv[1:] if argv is None else argv)
    arch = HOST_ARCH
    if names[:1] == ["--arch"] and len(names) > 1:
        arch, names = names[1], names[2:]

    def log(msg: str) -> None:
        print(msg, file=sys.stderr)

    try:
        with Engine.connect() as engine:
            if arch != HOST_ARCH:
                built = build_foreign_fixtures(engine, arch, names or FOREIGN_FIXTURES, log)
                for name, tag in built.items():
                    print(f"{image_name(name, arch):<20} {tag}", flush=True)
                return 0
            for img in iter_fixtures(engine, names, log=log):
                print(_row(img), flush=True)
    except SlimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
