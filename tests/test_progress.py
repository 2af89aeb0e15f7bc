"""Progress in bytes: the counters of the long steps, and how the CLI draws them.

The counters are checked on in-memory streams and small archives made by
`tests/synth.py`; the terminal face on a rich Console forced to act as a
terminal and recorded into a string.
"""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from slimmer.cli.progress import stages
from slimmer.image.meter import MeteredReader, MeteredWriter, content_bytes
from slimmer.image.reader import open_image
from slimmer.image.store import ContentStore
from slimmer.image.writer import write_layer
from slimmer.model import EntryType, FileEntry, Transfer, metered
from tests.synth import M, docker_archive, layer


def test_metered_tells_the_start_at_most_every_percent_and_always_the_end() -> None:
    events: list[str | Transfer] = []
    add = metered(events.append, "layer", 200 << 20)
    for _ in range(400):
        add(512 << 10)  # 200 MiB in 400 chunks
    transfers = [e for e in events if isinstance(e, Transfer)]
    assert transfers[0] == Transfer("layer", 0, 200 << 20)
    assert transfers[-1] == Transfer("layer", 200 << 20, 200 << 20)
    assert len(transfers) <= 102  # the start, one per 1% (2 MiB), the end
    assert [t.done for t in transfers] == sorted(t.done for t in transfers)


def test_metered_without_a_total_tells_every_8_mib() -> None:
    events: list[str | Transfer] = []
    add = metered(events.append, "from the engine", None)
    for _ in range(5):
        add(4 << 20)
    assert [e.done for e in events if isinstance(e, Transfer)] == [0, 8 << 20, 16 << 20]


def test_metered_reader_counts_bytes_and_keeps_positions() -> None:
    seen: list[int] = []
    reader = MeteredReader(io.BytesIO(b"0123456789"), seen.append)
    assert reader.read(4) == b"0123"
    assert reader.tell() == 4
    reader.seek(2)
    assert reader.read() == b"23456789"
    assert sum(seen) == 12  # what was read, re-reads included


def test_metered_writer_counts_what_it_passes_on() -> None:
    out, seen = io.BytesIO(), list[int]()
    writer = MeteredWriter(out, seen.append)
    writer.write(b"abc")
    writer.write(b"defg")
    assert out.getvalue() == b"abcdefg" and seen == [3, 4]


def test_the_writer_tells_each_file_s_bytes_once_written(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    app = store.put_bytes(b"x" * 100)
    entries = [
        FileEntry("/bin", EntryType.DIR),
        FileEntry("/bin/app", EntryType.FILE, size=100, content=app),
        FileEntry("/bin/link", EntryType.HARDLINK, size=100, link="/bin/app", content=app),
        FileEntry("/etc", EntryType.DIR),
        FileEntry("/etc/x", EntryType.FILE, size=7, content=store.put_bytes(b"1234567")),
    ]
    seen: list[int] = []
    with open(tmp_path / "layer.tar", "wb") as out:
        write_layer(reversed(entries), store, out, seen.append)
    assert seen == [100, 7]  # in the layer's order; a hardlink carries no bytes
    assert sum(seen) == content_bytes(entries)


def test_reading_an_archive_tells_its_layer_bytes(tmp_path: Path) -> None:
    layers = [layer(M("a", data=b"x" * 5000)), layer(M("b", data=b"y" * 3000))]
    path = docker_archive(tmp_path / "img.tar", layers)
    events: list[str | Transfer] = []
    with open_image(f"docker-archive:{path}", progress=events.append) as image:
        assert image.tree.get("/a") is not None
    transfers = [e for e in events if isinstance(e, Transfer)]
    total = sum(len(data) for data in layers)
    assert transfers[0] == Transfer("layers", 0, total)
    assert transfers[-1].done >= total and transfers[-1].total == total


def test_terminal_draws_a_bar_in_bytes_for_a_transfer() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    with stages(console, "slim") as tell:
        tell("reading the image")
        tell(Transfer("reading the image: from the engine", 0, 50_000_000))
        tell(Transfer("reading the image: from the engine", 25_000_000, 50_000_000))
    text = out.getvalue()
    assert "from the engine" in text
    assert "25.0/50.0 MB" in text


def test_logs_get_one_line_per_stage_and_per_finished_transfer() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with stages(console, "slim") as tell:
        tell("writing")
        tell(Transfer("writing: layer", 0, 3_000_000))
        tell(Transfer("writing: layer", 1_500_000, 3_000_000))
        tell(Transfer("writing: layer", 3_000_000, 3_000_000))
    lines = out.getvalue().splitlines()
    assert lines[0] == "slim: writing"
    assert len(lines) == 2 and lines[1].startswith("slim: writing: layer: 3.0 MB in ")


def test_logs_tell_a_transfer_that_runs_past_its_total_once_and_a_restart_again() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with stages(console, "slim") as tell:
        tell(Transfer("reading: from the engine", 0, 1_000))
        for done in (1_000, 1_010, 1_020):  # `docker save` adds tar headers to the size
            tell(Transfer("reading: from the engine", done, 1_000))
        tell(Transfer("writing: layer", 0, 10))
        tell(Transfer("writing: layer", 10, 10))
        tell(Transfer("writing: layer", 0, 20))  # the next round's layer
        tell(Transfer("writing: layer", 20, 20))
    lines = out.getvalue().splitlines()
    assert [line.split(": ")[1] for line in lines] == ["reading", "writing", "writing"]
    assert len(lines) == 3
