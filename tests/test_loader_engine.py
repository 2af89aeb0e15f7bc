"""The resolver against `ldd` inside containers of the fixture images.

For every ELF executable and shared library of each fixture image, the
closure computed from the image's files alone must name the same files
(real paths) as `ldd` run on that file in a container of the image. One
container per image runs ldd over the whole list.

Where ldd and the real glibc loader disagree, glibc wins; those cases are
listed in `LDD_IS_WRONG` with the reason, and checked to still be what
happens.
"""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from slimmer.elf.loader import Closure, closure
from slimmer.elf.parse import ET_DYN, ET_EXEC, parse_elf_at
from slimmer.engine import Engine, saver
from slimmer.image.filetree import keep_all
from slimmer.image.reader import open_image
from slimmer.model import TreeView
from tests.fixtures_build import FOREIGN_FIXTURES, fixture_names

pytestmark = pytest.mark.engine

SCRIPT = """#!/bin/sh
while IFS= read -r f; do
  printf '=== %s\\n' "$f"
  {lister} "$f" 2>&1
  printf '=== rc %s\\n' "$?"
done < /tmp/slimmer-ldd.list > /tmp/slimmer-ldd.out
"""
LDD = "ldd"
AARCH64_LDSO = "/lib/ld-linux-aarch64.so.1"
AARCH64_LIST = f"{AARCH64_LDSO} --list"  # the loader itself, no ldd script between

# qemu-user's vDSO for an aarch64 guest has no name: the loader lists it as "\t (0x...)".
_QEMU_VDSO = re.compile(r"^\s*\(0x[0-9a-f]+\)\s*$")
_CANNOT_OPEN = re.compile(r"error while loading shared libraries: (\S+): cannot open shared")
_LINE = re.compile(r"^\s*(?:(\S+) => )?(\S+|not found)(?: \(0x[0-9a-f]+\))?\s*$")


@dataclass
class LddResult:
    paths: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    static: bool = False
    rc: int = 0
    other: list[str] = field(default_factory=list)

    @property
    def failed(self) -> str:
        """ldd gave no answer (it exits 1 after a "not found": that is one)."""
        if self.rc == 0 or self.static or self.paths or self.missing:
            return ""
        return f"exit {self.rc}: " + " | ".join(self.other)


def elf_programs(tree: TreeView) -> list[str]:
    """Every regular ELF executable or shared object (ET_EXEC / ET_DYN)."""
    out = []
    for entry in tree:
        if not (entry.is_regular and entry.is_elf) or "\n" in entry.path:
            continue
        if _elf_type(tree, entry.path) in (ET_EXEC, ET_DYN):
            out.append(entry.path)
    return sorted(out)


def _elf_type(tree: TreeView, path: str) -> int:
    def read_at(offset: int, size: int) -> bytes:
        return tree.read_bytes(path, size, offset)

    return parse_elf_at(read_at).e_type


def run_ldd(
    engine: Engine, image: str, paths: list[str], workdir: str, lister: str = LDD
) -> dict[str, LddResult]:
    """`lister` (ldd, or a loader's `--list`) over `paths` in one container of `image`,
    as root."""
    container = engine.create_container(
        image,
        entrypoint=["/bin/sh"],
        command=["/tmp/slimmer-ldd.sh"],
        user="0:0",
        working_dir=workdir or "/",
        network_disabled=True,
    )
    try:
        engine.put_archive(
            container,
            "/tmp",
            _tar(
                {
                    "slimmer-ldd.sh": SCRIPT.format(lister=lister).encode(),
                    "slimmer-ldd.list": "".join(p + "\n" for p in paths).encode(
                        "utf-8", "surrogateescape"
                    ),
                }
            ),
        )
        engine.start(container)
        code = engine.wait(container, timeout=900)
        assert code == 0, engine.logs(container).decode("utf-8", "replace")
        out = engine.read_file(container, "/tmp/slimmer-ldd.out")
    finally:
        engine.remove_container(container)
    return parse_ldd(out.decode("utf-8", "surrogateescape"))


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def parse_ldd(text: str) -> dict[str, LddResult]:
    results: dict[str, LddResult] = {}
    current: LddResult | None = None
    for line in text.splitlines():
        if line.startswith("=== rc "):
            if current is not None:
                current.rc = int(line[7:])
            continue
        if line.startswith("=== "):
            current = results.setdefault(line[4:], LddResult())
            continue
        assert current is not None
        if "statically linked" in line or "not a dynamic executable" in line:
            current.static = True
            continue
        match = _LINE.match(line)
        if match is None or "linux-vdso" in line or _QEMU_VDSO.match(line):
            if match is None:
                current.other.append(line.strip())
            continue
        name, path = match.groups()
        if path == "not found":
            current.missing.add(name or "")
        else:
            current.paths.add(path)
    return results


@dataclass(frozen=True)
class Comparison:
    path: str
    ldd: frozenset[str]
    ours: frozenset[str]
    ldd_missing: frozenset[str]
    our_missing: frozenset[str]

    @property
    def agrees(self) -> bool:
        return self.ldd == self.ours and self.ldd_missing == self.our_missing


def compare_with_ldd(
    tree: TreeView, result: Closure, path: str, ldd: LddResult, rtld: set[str]
) -> Comparison:
    """Real paths on both sides; a library given to ldd is run as a program,
    so ld.so shows up for it even when nothing needs it: left out there."""
    edges = [e for e in result.edges if e.root == path]
    ours = {e.target for e in edges if not e.variant}
    variants = {e.target for e in edges if e.variant}
    real = {tree.resolve(p).path for p in ldd.paths}
    if not any(e.kind == "PT_INTERP" for e in edges):
        real -= rtld - ours
    real -= {tree.resolve(path).path}
    # A CPU variant this host picked counts as ours.
    swapped = {p for p in real if p in variants}
    ours_cmp = (
        ours
        - {
            e.target
            for e in edges
            if not e.variant and any(v.name == e.name and v.target in swapped for v in edges)
        }
    ) | swapped
    return Comparison(
        path,
        frozenset(real),
        frozenset(ours_cmp),
        frozenset(ldd.missing),
        frozenset(m.name for m in result.missing if m.root == path),
    )


# (image, path) -> why ldd is wrong and glibc is right. None in the fixtures
# so far. The known case (a setuid program ignores LD_LIBRARY_PATH when run
# by another user, ldd does not) is pinned on the host in test_loader.py:
# test_host_setuid_ignores_ld_library_path_where_ldd_does_not.
LDD_IS_WRONG: dict[tuple[str, str], str] = {
    ("musl-app", "/usr/local/bin/hello"): (
        "glibc's ldd runs a musl program under glibc's loader, which looks for musl's "
        "`libc.so` in glibc's paths; musl's own loader is that libc "
        "(test_musl_closure_matches_musls_own_ldd)"
    ),
}


# One fixture per distinct set of ELF programs: the others repeat a runtime already
# here (py-batch and py-ctypes are py-http's python, root-batch and findings the
# base's bash, layers and c-static have no dynamic ELF of their own).
LDD_FIXTURES = [
    "glibc-new",
    "java-http",
    "musl-app",
    "nginx-static",
    "node-http",
    "pg-db",
    "py-http",
    "ruby-http",
    "shell-app",
]


def test_ldd_fixtures_are_fixtures() -> None:
    assert set(LDD_FIXTURES) <= set(fixture_names())


@pytest.mark.parametrize("name", LDD_FIXTURES)
def test_closure_matches_ldd(
    name: str,
    engine: Engine,
    fixture_images: dict[str, str],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    rtld = ("/lib64/ld-linux-x86-64.so.2",)
    _compare_closures(engine, name, fixture_images[name], tmp_path, record_property, LDD, rtld)


@pytest.mark.emulated
@pytest.mark.parametrize("name", FOREIGN_FIXTURES)
def test_aarch64_closure_matches_the_aarch64_loaders_list(
    name: str,
    engine: Engine,
    arm64_images: dict[str, str],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """The arm64 build of `name`: every ELF file's closure by slimmer's aarch64 rules
    against `ld-linux-aarch64.so.1 --list`, the aarch64 loader itself run under qemu."""
    tag = arm64_images[name]
    assert engine.inspect_image(tag).architecture == "arm64"
    rtld = (AARCH64_LDSO,)
    _compare_closures(engine, name, tag, tmp_path, record_property, AARCH64_LIST, rtld)


def _compare_closures(
    engine: Engine,
    name: str,
    tag: str,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
    lister: str,
    rtld_paths: tuple[str, ...],
) -> None:
    with open_image(tag, save=saver(engine), want=keep_all, workdir=tmp_path) as image:
        tree = image.tree
        programs = elf_programs(tree)
        assert programs, f"{name}: no ELF files to resolve"
        env, workdir = image.config.env, image.config.working_dir or "/"
        if not (tree.resolve("/bin/sh").exists and tree.resolve("/usr/bin/ldd").exists):
            # No ldd inside (FROM scratch): what a static program needs is nothing, and
            # the kernel runs it without a loader; the resolver must say exactly that.
            result = closure(tree, programs, env, workdir=workdir)
            assert result.edges == () and result.missing == (), result
            assert result.files == tuple(sorted(programs))
            record_property("compared", 0)
            return
        result = closure(tree, programs, env, workdir=workdir)
        ldd = run_ldd(engine, tag, programs, workdir, lister)
        rtld = {tree.resolve(p).path for p in rtld_paths}
        failed = sorted(p for p in programs if ldd[p].failed)
        compared = [
            compare_with_ldd(tree, result, p, ldd[p], rtld) for p in programs if not ldd[p].failed
        ]
        wrong = [c for c in compared if not c.agrees and (name, c.path) not in LDD_IS_WRONG]
        record_property("compared", len(compared))
        print(
            f"\n{name}: {len(programs)} ELF files, {len(compared)} compared with ldd, "
            f"{len(failed)} where ldd failed, {len(wrong)} disagreements"
        )
        for path in failed:
            print(f"  ldd failed on {path}: {ldd[path].failed}")
            # `ld.so --list` stops at the first library it cannot open (ldd goes on and
            # prints "not found"): that one must be among the ones we find missing
            stopped = _CANNOT_OPEN.search(ldd[path].failed)
            ours_missing = {m.name for m in result.missing if m.root == path}
            assert stopped is None or stopped.group(1) in ours_missing, (path, ours_missing)
        assert not wrong, "\n".join(
            f"{c.path}: ldd-only {sorted(c.ldd - c.ours)} ours-only {sorted(c.ours - c.ldd)} "
            f"missing ldd {sorted(c.ldd_missing)} ours {sorted(c.our_missing)}"
            for c in wrong[:20]
        )


def test_parse_ldd_output() -> None:
    text = """=== /usr/bin/x
\tlinux-vdso.so.1 (0x00007ffd)
\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f)
\tlibgone.so => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007f)
=== rc 1
=== /usr/bin/static
\tnot a dynamic executable
=== rc 1
=== /usr/bin/arm
\t (0x0000005502850000)
\tlibc.so.6 => /lib/aarch64-linux-gnu/libc.so.6 (0x0000005502d70000)
\t/lib/ld-linux-aarch64.so.1 (0x0000005500000000)
=== rc 0
"""
    res = parse_ldd(text)
    assert res["/usr/bin/x"].paths == {
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/lib64/ld-linux-x86-64.so.2",
    }
    assert res["/usr/bin/x"].missing == {"libgone.so"}
    assert res["/usr/bin/static"].static and not res["/usr/bin/static"].failed
    assert not res["/usr/bin/x"].failed
    # under qemu-user (ld-linux-aarch64.so.1 --list): its vDSO is listed without a name
    assert res["/usr/bin/arm"].paths == {
        "/lib/aarch64-linux-gnu/libc.so.6",
        "/lib/ld-linux-aarch64.so.1",
    }
    assert res["/usr/bin/arm"].other == []


def test_musl_closure_matches_musls_own_ldd(
    engine: Engine, fixture_images: dict[str, str], tmp_path: Path
) -> None:
    """For a musl program the oracle is musl's loader itself (`ld-musl --list`)."""
    tag, program = fixture_images["musl-app"], "/usr/local/bin/hello"
    container = engine.create_container(
        tag, entrypoint=["/lib/ld-musl-x86_64.so.1", "--list", program], network_disabled=True
    )
    try:
        engine.start(container)
        assert engine.wait(container, timeout=120) == 0
        out = engine.logs(container, stderr=False).decode()
    finally:
        engine.remove_container(container)
    listed = set(re.findall(r"(?:=> )?(/\S+) \(0x", out))
    with open_image(tag, save=saver(engine), want=keep_all, workdir=tmp_path) as image:
        ours = closure(image.tree, [program], image.config.env)
        real = {image.tree.resolve(p).path for p in listed}
        assert {image.tree.resolve(e.path).path for e in ours.edges} == real
    assert real == {"/usr/lib/x86_64-linux-musl/libc.so"}, out
    assert real <= set(ours.files) and ours.missing == ()
    assert {image_path for image_path in ours.files if image_path.endswith(".so")} == real
