"""One way to ask for a format: `--format` on every command that renders its value more
than one way; `--json` only as the documented alias on inspect, profile and deps."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from slimmer.cli.main import cli
from slimmer.cli.params import format_option
from tests.synth import M, docker_archive, layer

MANY_FACES = {
    "inspect",
    "profile",
    "deps",
    "lint",
    "validate",
    "check",
    "diff",
    "report",
    "compose",
}
JSON_ALIAS = {"inspect", "profile", "deps"}


def _commands() -> dict[str, click.Command]:
    ctx = click.Context(cli)
    commands = {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}
    return {
        name: cmd
        for name, cmd in commands.items()
        if isinstance(cmd, click.Command) and not isinstance(cmd, click.Group)
    }


def _options(cmd: click.Command) -> set[str]:
    return {o for p in cmd.params if isinstance(p, click.Option) for o in p.opts}


def test_every_command_with_several_faces_takes_format() -> None:
    with_format = {name for name, cmd in _commands().items() if "--format" in _options(cmd)}
    assert with_format == MANY_FACES
    for name in MANY_FACES:
        fmt = next(p for p in _commands()[name].params if p.name == "fmt")
        assert isinstance(fmt.type, click.Choice) and {"text", "json"} <= set(fmt.type.choices)


def test_json_is_only_the_documented_alias() -> None:
    with_json = {name for name, cmd in _commands().items() if "--json" in _options(cmd)}
    assert with_json == JSON_ALIAS
    for name in JSON_ALIAS:
        text = CliRunner().invoke(cli, [name, "--help"]).output
        assert "--json" in text and "Same as --format json." in text, name


def test_the_alias_and_the_option_ask_for_the_same_thing() -> None:
    @click.command()
    @format_option(("text", "json"), "a format", json_alias=True)
    def show(fmt: str) -> None:
        click.echo(fmt)

    runner = CliRunner()
    assert runner.invoke(show, []).output == "text\n"
    assert runner.invoke(show, ["--json"]).output == "json\n"
    assert runner.invoke(show, ["--format", "json"]).output == "json\n"
    assert runner.invoke(show, ["--format", "text", "--json"]).output == "json\n"
    bad = runner.invoke(show, ["--format", "md"])
    assert bad.exit_code == 2 and "'md' is not one of" in bad.output


def _archive(tmp_path: Path) -> str:
    path = docker_archive(tmp_path / "img.tar", [layer(M("etc/hostname", data=b"box\n"))])
    return f"docker-archive:{path}"


@pytest.mark.parametrize("command", ["inspect", "validate"])
def test_format_json_prints_the_versioned_document(command: str, tmp_path: Path) -> None:
    ref = _archive(tmp_path)
    runner = CliRunner()
    as_json = runner.invoke(cli, [command, ref, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.output)
    assert doc["schema"].startswith(f"slimmer.{command}/")
    text = runner.invoke(cli, [command, ref])
    assert text.exit_code == 0 and not text.output.lstrip().startswith("{")
    if command in JSON_ALIAS:
        assert runner.invoke(cli, [command, ref, "--json"]).output == as_json.output
