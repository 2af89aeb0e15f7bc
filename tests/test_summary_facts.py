"""The slim report's before and after facts, counted one way: by `slim inspect`'s
`analyse`, the after side on the archive as written.

Two copies used to disagree. `analyse` (before, and `slim inspect OUT`) counted an
ELF file only at its first name, `summary.facts_of_kept` (after) at every name;
and the after side was read off the keep set, which misses the files the run
generates (py-http: 991 files in the report, 1,033 in the image). The rule now:
names are counted (`files`, `elf_files`, hardlinks included), bytes once. The
counts are checked against a second computation straight from the layer tar.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from slimmer.analyse.inspect import analyse, want_for_inspect
from slimmer.findings.lint import want_for_lint
from slimmer.image.filetree import keep_all
from slimmer.image.reader import Image, open_image
from slimmer.image.writer import WriteRequest, WrittenImage, kept_entries, write_image
from slimmer.pipeline.summary import ImageFacts, facts_of_source, facts_of_written
from slimmer.plan.keep import GeneratedFile, Reason
from tests.synth import M, docker_archive, layer

PERL = b"\x7fELF" + b"perl" * 10
TOOL = b"\x7fELF" + b"tool"


def _source(tmp_path: Path) -> Path:
    return docker_archive(
        tmp_path / "src.tar",
        [
            layer(
                M("usr/", "dir"),
                M("usr/bin/", "dir"),
                M("usr/bin/perl", data=PERL, mode=0o755),
                M("usr/bin/perl5.36.0", "hardlink", link="usr/bin/perl"),
                M("usr/bin/tool", data=TOOL, mode=0o755),
                M("usr/bin/notes", data=b"text"),
                M("usr/bin/notes.bak", "hardlink", link="usr/bin/notes"),
            )
        ],
    )


def _tar_counts(archive: Path) -> tuple[int, int, int]:
    """(regular files, ELF files, ELF bytes) of a one-layer docker-save archive, read
    with tarfile alone: every regular or hardlink member a name, bytes once."""
    with tarfile.open(archive) as outer:
        name = next(n for n in outer.getnames() if n.endswith("layer.tar"))
        inner = outer.extractfile(name)
        assert inner is not None
        with tarfile.open(fileobj=inner) as tf:
            heads = {}
            for m in tf.getmembers():
                if m.isreg():
                    data = tf.extractfile(m)
                    assert data is not None
                    heads[m.name] = (data.read(4), m.size)
            files = [m for m in tf.getmembers() if m.isreg() or m.islnk()]
            elf = [m for m in files if heads[m.linkname if m.islnk() else m.name][0] == b"\x7fELF"]
            elf_bytes = sum(m.size for m in elf if m.isreg())
    return len(files), len(elf), elf_bytes


def test_a_hardlinked_elf_file_is_counted_at_each_name(tmp_path: Path) -> None:
    src = _source(tmp_path)
    with open_image(f"docker-archive:{src}", want=want_for_inspect) as img:
        ins = analyse(img)
    assert (ins.files, ins.elf_files, ins.elf_bytes) == _tar_counts(src)
    assert (ins.files, ins.elf_files, ins.elf_bytes) == (5, 3, len(PERL) + len(TOOL))


def _write(
    img: Image, paths: list[str], workdir: Path, generated: list[GeneratedFile] | None = None
) -> WrittenImage:
    entries = kept_entries(img.tree, paths, img.store, generated or [])
    return write_image(WriteRequest(tuple(entries), img.store, img.config, img.id, workdir))


def _facts_of_archive(archive: Path, size_bytes: int) -> ImageFacts:
    """`facts_of_written` of an archive read back as the run reads it (lint's wants)."""
    with open_image(f"docker-archive:{archive}", want=want_for_lint) as written:
        return facts_of_written(written, size_bytes)


def test_after_facts_are_the_written_archive_counted_as_before(tmp_path: Path) -> None:
    src = _source(tmp_path)
    generated = GeneratedFile("/usr/bin/made", b"\x7fELF made", Reason("profile", "test"), 0o755)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with open_image(f"docker-archive:{src}", want=keep_all) as img:
        before = facts_of_source(analyse(img))
        paths = [e.path for e in img.tree]
        whole = _write(img, paths, tmp_path / "a")
        # only the hardlink's name kept: the writer writes it as the file itself
        one = _write(img, ["/usr", "/usr/bin", "/usr/bin/perl5.36.0"], tmp_path / "b", [generated])
    after = _facts_of_archive(whole.archive, 123)
    assert (after.files, after.elf_files) == (before.files, before.elf_files) == (5, 3)
    assert after.size_bytes == 123  # the engine's size, as given
    small = _facts_of_archive(one.archive, 0)
    # the generated file counts: the keep set alone would have said 1 and 1
    assert (small.files, small.elf_files) == _tar_counts(one.archive)[:2] == (2, 2)
