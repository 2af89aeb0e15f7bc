"""Results of work on a file's bytes, kept by content digest across runs
(slimmer.image.paths.content_memo, slimmer.image.cache.ParsedCache)."""

from __future__ import annotations

from pathlib import Path

from slimmer.image.cache import ReadCache
from slimmer.image.paths import content_memo, using_content_memo
from slimmer.model import EntryType, FileEntry


class _Tree:
    """The one query content_memo asks of a tree."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files

    def get(self, path: str) -> FileEntry | None:
        digest = self.files.get(path)
        return None if digest is None else FileEntry(path, EntryType.FILE, content=digest)


def test_a_second_run_over_the_same_bytes_takes_the_result_from_the_cache(tmp_path: Path) -> None:
    made: list[str] = []

    def work(tree: _Tree, path: str) -> str:
        return content_memo(tree, path, "k", lambda: made.append(path) or f"parsed {path}")  # type: ignore[arg-type, func-returns-value]

    first = ReadCache(tmp_path).parsed("v1")
    with using_content_memo(first):
        assert work(_Tree({"/a.py": "d1", "/b.py": "d2"}), "/a.py") == "parsed /a.py"
        assert work(_Tree({"/a.py": "d1", "/b.py": "d2"}), "/b.py") == "parsed /b.py"
    first.save()
    assert made == ["/a.py", "/b.py"] and (first.hits, first.misses) == (0, 2)
    # another run, another image holding /a.py's bytes under another name
    second = ReadCache(tmp_path).parsed("v1")
    with using_content_memo(second):
        assert work(_Tree({"/c.py": "d1"}), "/c.py") == "parsed /a.py"
    assert made == ["/a.py", "/b.py"] and (second.hits, second.misses) == (1, 0)
    # another parser's results are never read; without a memo, nothing is kept
    other = ReadCache(tmp_path).parsed("v2")
    with using_content_memo(other):
        assert work(_Tree({"/c.py": "d1"}), "/c.py") == "parsed /c.py"
    assert work(_Tree({"/d.py": "d1"}), "/d.py") == "parsed /d.py"
    assert made == ["/a.py", "/b.py", "/c.py", "/d.py"]
