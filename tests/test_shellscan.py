"""The shell scanner: programs in command position on every branch."""

from __future__ import annotations

from slimmer.plan.shellscan import command_words, sourced_files

SCRIPT = r"""#!/bin/bash
# a comment naming rm
set -eu
. /etc/app/env.sh
source ./lib.sh
greet() { printf 'hi\n'; }
A=1 B=2 exec nginx -g 'daemon off;'
if [ -f /x ]; then cat /x > /dev/null 2>&1; elif test -d /y; then ls /y; fi
for f in one two; do gzip "$f"; done
case "$1" in
  a) sed -n p ;;
  *) awk 1 | sort -u ;;
esac
top="$(sort -k2 data | head -n 1 | cut -d: -f1)"
old=`date +%s`
timeout 5 curl -fsS http://x || exit 1
xargs -0 rm -f < list
long_command \
  --flag
"""


def test_every_branch_is_seen() -> None:
    words = command_words(SCRIPT)
    for program in (
        "printf",
        "nginx",
        "cat",
        "ls",
        "gzip",
        "sed",
        "awk",
        "sort",
        "head",
        "cut",
        "date",
        "curl",
        "rm",
        "long_command",
        "set",
    ):
        assert program in words, program
    for not_a_program in (
        "A=1",
        "one",
        "two",
        "f",
        "--flag",
        "/dev/null",
        "exec",
        "xargs",
        "timeout",
        "[",
        "test",
        "greet()",
    ):
        assert not_a_program not in words, not_a_program


def test_comments_are_not_commands() -> None:
    assert "rm" not in command_words("# rm -rf /\necho ok")


def test_sourced_files() -> None:
    assert sourced_files(SCRIPT) == ["/etc/app/env.sh", "./lib.sh"]
