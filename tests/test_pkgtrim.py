"""The pure text trims of dpkg's `info/` files: what a line is, which lines stay."""

from __future__ import annotations

from slimmer.plan.pkgtrim import trim_conffiles, trim_list, trim_md5sums

LIST = """\
/.
/usr
/usr/bin
/usr/bin/curl
/usr/share
/usr/share/doc
/usr/share/doc/curl
/usr/share/doc/curl/copyright
/usr/share/man
/usr/share/man/man1
/usr/share/man/man1/curl.1.gz
"""


def test_list_keeps_kept_paths_and_the_directories_above_them() -> None:
    kept = {"/usr/bin/curl", "/usr/share/doc/curl/copyright"}
    assert trim_list(LIST, kept.__contains__) == (
        "/.\n/usr\n/usr/bin\n/usr/bin/curl\n/usr/share\n/usr/share/doc\n"
        "/usr/share/doc/curl\n/usr/share/doc/curl/copyright\n"
    )


def test_list_with_nothing_kept_is_empty() -> None:
    assert trim_list(LIST, lambda p: False) == ""


def test_list_never_asks_about_the_root_and_keeps_its_order() -> None:
    asked: list[str] = []

    def kept(path: str) -> bool:
        asked.append(path)
        return path == "/usr/share/man/man1/curl.1.gz"

    out = trim_list(LIST + "\n", kept).splitlines()
    assert "/." not in asked and "" not in asked
    assert out == ["/.", "/usr", "/usr/share", "/usr/share/man", "/usr/share/man/man1", out[-1]]


def test_list_keeps_a_kept_directory_symlink_line_as_it_is() -> None:
    """merged-/usr: the caller answers for `/lib` (a kept symlink) as for a file."""
    text = "/.\n/lib\n/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libc.so.6\n"
    assert trim_list(text, lambda p: p == "/lib") == "/.\n/lib\n"


def test_md5sums_keeps_lines_of_kept_files_as_written() -> None:
    text = "d41d8  usr/bin/curl\nabcd1  usr/share/man/man1/curl.1.gz\nbad line\n"
    assert trim_md5sums(text, {"/usr/bin/curl"}.__contains__) == "d41d8  usr/bin/curl\n"
    assert trim_md5sums(text, lambda p: False) == ""


def test_md5sums_path_with_spaces() -> None:
    text = "d41d8  usr/share/a b.txt\n"
    assert trim_md5sums(text, {"/usr/share/a b.txt"}.__contains__) == text


def test_conffiles_keeps_kept_paths_and_their_flags() -> None:
    text = "/etc/curlrc\nremove-on-upgrade /etc/old.conf\n/etc/gone\n\n"
    kept = {"/etc/curlrc", "/etc/old.conf"}.__contains__
    assert trim_conffiles(text, kept) == "/etc/curlrc\nremove-on-upgrade /etc/old.conf\n"
