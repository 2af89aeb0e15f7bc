"""slimmer.trace.sensor: the strace bundle, on the host and in a real container."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from slimmer.engine import LABEL, Engine
from slimmer.errors import EngineError, TraceError
from slimmer.model import ImageConfig
from slimmer.trace import sensor
from slimmer.trace.events import STRACE_OPTIONS, parse
from slimmer.trace.sensor import (
    LIB_DIR,
    LOADER,
    STRACE,
    TRACE_PATH,
    Bundle,
    build_bundle,
    make_bundle,
    require_traceable,
    wrap_command,
)
from tests.needs import needs, require

needs_strace = needs("strace")

# -- unit -----------------------------------------------------------------------


def _ldd(binary: str) -> dict[str, str]:
    """DT_NEEDED name -> real host file, as the host's ldd prints them."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    found = re.findall(r"^\s*(\S+) => (/\S+) \(0x", out, re.M)
    return {name: str(Path(path).resolve()) for name, path in found}


@needs_strace
def test_host_closure_is_what_ldd_finds() -> None:
    """The bundle's closure comes from slimmer's own resolver over the host tree;
    it must name the libraries the host's ldd names, as the same real files."""
    strace = sensor.find_strace()
    ours = sensor.host_closure(strace)
    assert dict(ours.libs) == _ldd(strace)
    assert ours.loader is not None and Path(ours.loader).name.startswith("ld-linux")
    assert sensor.host_closure("/bin/true").libs_names() == {"libc.so.6"}


def test_no_strace_on_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(TraceError, match="strace is not installed"):
        sensor.find_strace()


def test_parse_version() -> None:
    assert sensor.parse_version("strace -- version 6.1\nCopyright") == (6, 1)
    assert sensor.parse_version("nonsense") == ()


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    require("strace")
    return build_bundle()


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: m for m in tf.getmembers()}


@needs_strace
def test_bundle_holds_strace_its_loader_and_libraries(bundle: Bundle) -> None:
    tar = members(bundle.data)
    assert {".slimmer", ".slimmer/lib", ".slimmer/strace", ".slimmer/ld.so"} <= set(tar)
    libs = {n.rsplit("/", 1)[1] for n in tar if n.startswith(".slimmer/lib/")}
    assert "libc.so.6" in libs
    assert {name for name, _ in sensor.host_closure(sensor.find_strace()).libs} <= libs
    assert {f.name.lstrip("/") for f in bundle.files} == {n for n in tar if tar[n].isfile()}
    assert bundle.size == len(bundle.data) and bundle.strace_version


@needs_strace
def test_bundle_paths_stay_inside_and_anyone_can_use_them(bundle: Bundle) -> None:
    for name, info in members(bundle.data).items():
        assert not name.startswith("/") and ".." not in name.split("/")
        assert name == ".slimmer" or name.startswith(".slimmer/")
        assert info.isfile() or info.isdir()  # no links to escape through
        assert (info.uid, info.gid, info.mtime) == (0, 0, 0)
        assert info.mode & 0o555 == 0o555
    assert members(bundle.data)[".slimmer"].mode == 0o777


@needs_strace
def test_bundle_is_deterministic_and_cached() -> None:
    strace = sensor.find_strace()
    assert make_bundle(strace).data == make_bundle(strace).data
    assert build_bundle() is build_bundle()


@needs_strace
def test_bundle_runs_by_itself(bundle: Bundle, tmp_path: Path) -> None:
    """Started through its own loader, with an empty environment, it traces."""
    with tarfile.open(fileobj=io.BytesIO(bundle.data)) as tf:
        tf.extractall(tmp_path, filter="fully_trusted")
    root = str(tmp_path)
    launcher = [root + a if a.startswith("/.slimmer") else a for a in bundle.launcher]
    log = tmp_path / "t.log"
    subprocess.run(
        [*launcher, *STRACE_OPTIONS, "-o", str(log), "--", "/bin/cat", "/etc/hostname"],
        env={},
        check=True,
        capture_output=True,
        timeout=60,
    )
    trace = parse(log.read_bytes())
    assert "/etc/hostname" in trace.touched(["open"])


def test_wrap_command() -> None:
    fake = Bundle(b"", (), "amd64", "6.1", (LOADER, "--library-path", LIB_DIR, STRACE))
    argv = wrap_command(fake, ["/app/run", "-v"], ["serve"], "/.slimmer/t.log")
    assert argv == [
        LOADER,
        "--library-path",
        LIB_DIR,
        STRACE,
        *STRACE_OPTIONS,
        "-o",
        "/.slimmer/t.log",
        "--",
        "/app/run",
        "-v",
        "serve",
    ]
    with pytest.raises(TraceError, match="no entrypoint or command"):
        wrap_command(fake, [], [])


def test_require_traceable() -> None:
    fake = Bundle(b"", (), "amd64", "6.1", (STRACE,))
    require_traceable(fake, ImageConfig({"architecture": "amd64", "os": "linux"}))
    # another architecture runs under emulation, the host's strace tracing qemu
    require_traceable(fake, ImageConfig({"architecture": "arm64", "os": "linux"}))
    with pytest.raises(TraceError, match="windows"):
        require_traceable(fake, ImageConfig({"architecture": "amd64", "os": "windows"}))


# -- integration: a FROM-scratch image with one static program ---------------------

PROGRAM = r"""
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct stat st;
    if (argc < 2 || open(argv[1], O_RDONLY) < 0) return 2;   /* relative to WORKDIR */
    if (open("missing.txt", O_RDONLY) >= 0) return 3;
    if (stat("/etc/motd", &st) != 0) return 4;
    pid_t child = fork();
    if (child == 0) {
        if (chdir("/etc") != 0) _exit(5);
        _exit(open("motd", O_RDONLY) < 0 ? 6 : 0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    printf("traced %d\n", WEXITSTATUS(status));
    return WEXITSTATUS(status);
}
"""


def _rootfs(tmp: Path) -> Path:
    src = tmp / "hello.c"
    src.write_text(PROGRAM)
    exe = tmp / "hello"
    require("gcc")
    subprocess.run(
        ["gcc", "-static", "-O2", "-o", str(exe), str(src)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    out = tmp / "rootfs.tar"
    with tarfile.open(out, "w") as tf:
        for name in ("app", "etc"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(info)
        for name, data, mode in (
            ("app/hello", exe.read_bytes(), 0o755),
            ("app/data.txt", b"data\n", 0o644),
            ("etc/motd", b"hello\n", 0o644),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tf.addfile(info, io.BytesIO(data))
    return out


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    try:
        eng = Engine.connect(timeout=120)
    except EngineError as exc:
        pytest.fail(f"{exc} (run `bash scripts/ensure-engine.sh`)", pytrace=False)
    with eng:
        yield eng


@pytest.fixture(scope="module")
def static_image(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tar = _rootfs(tmp_path_factory.mktemp("static"))
    tag = f"slimmer-test/sensor-static:{uuid.uuid4().hex[:12]}"
    image = engine.import_rootfs(
        tar,
        tag,
        changes=[
            f"LABEL {LABEL}=temporary",
            'ENTRYPOINT ["/app/hello"]',
            'CMD ["data.txt"]',
            "WORKDIR /app",
        ],
    )
    try:
        yield image
    finally:
        engine.remove_image(image, force=True)


@pytest.mark.engine
@needs_strace
@pytest.mark.parametrize("user", ["", "65534:65534"])
def test_traces_a_static_program_in_a_scratch_image(
    engine: Engine, static_image: str, bundle: Bundle, user: str
) -> None:
    info = engine.inspect_image(static_image)
    config = ImageConfig({"config": info.config, "architecture": info.architecture, "os": info.os})
    require_traceable(bundle, config)
    argv = wrap_command(bundle, config.entrypoint, config.cmd)
    container = engine.create_container(
        static_image,
        entrypoint=argv,
        command=[],
        user=user,
        environment=["PATH=/usr/bin:/bin"],
        working_dir=config.working_dir,
    )
    try:
        engine.put_archive(container, "/", bundle.data)
        engine.start(container)
        code = engine.wait(container, timeout=120)
        logs = engine.logs(container).decode(errors="replace")
        assert code == 0, logs
        assert "traced 0" in logs
        trace = parse(engine.read_file(container, TRACE_PATH), cwd=config.working_dir)
    finally:
        engine.remove_container(container)
    assert trace.warnings == ()
    assert list(trace.processes.values())[0] == ("/app/hello", "data.txt")
    assert trace.executables() == ("/app/hello",)
    opened = trace.touched(["open"])
    assert "/app/data.txt" in opened and "/etc/motd" in opened  # the child's, after chdir
    assert "/app/missing.txt" in trace.missing()
    assert "/etc/motd" in trace.touched(["stat"])
    assert not [e for e in trace.events if e.path.startswith("/.slimmer")]
