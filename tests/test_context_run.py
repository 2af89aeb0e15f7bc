"""The run context (slimmer.context.run): the docker-run style parsers (every malformed
form is a usage error, exit 2, naming it without its secret value), the run config,
the delivered files' archive, and what a report may say about the context."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from slimmer.context.run import (
    MASK,
    ContextArgs,
    FileDelivery,
    Mount,
    NetworkAttach,
    RunContext,
    context_of,
    files_archive,
    parse_add_host,
    parse_argv,
    parse_env,
    parse_env_file,
    parse_mount,
    parse_network,
    parse_port,
    parse_run_user,
    parse_tmpfs,
    parse_volume,
    parse_workdir,
    run_config,
)
from slimmer.errors import ExitStatus, UsageError
from slimmer.model import SLIM_SCHEMA, ImageConfig
from tests.schemas import json_schema


def test_env_forms() -> None:
    assert parse_env("A=b=c", {}) == ("A", "b=c")
    assert parse_env("A=", {}) == ("A", "")
    assert parse_env("HOME", {"HOME": "/root"}) == ("HOME", "/root")


@pytest.mark.parametrize("spec", ["=s3cr3tvalue", "A B=s3cr3tvalue", "", " =s3cr3tvalue"])
def test_malformed_env_is_a_usage_error_that_hides_the_value(spec: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_env(spec, {})
    assert err.value.exit_code == ExitStatus.USAGE
    assert "--env" in err.value.message
    assert "s3cr3tvalue" not in err.value.message


def test_env_without_value_needs_it_in_slimmers_environment() -> None:
    with pytest.raises(UsageError, match="--env NOPE: NOPE is not set"):
        parse_env("NOPE", {})


def test_env_file_follows_dockers_format(tmp_path: Path) -> None:
    f = tmp_path / "app.env"
    f.write_text("\ufeff# a comment\n\nA=1\n  B= two words \nC='quoted'\nFROM_ENV\nUNSET\nD=x=y\n")
    got = parse_env_file(f, {"FROM_ENV": "here"})
    assert got == (
        ("A", "1"),
        ("B", " two words "),
        ("C", "'quoted'"),
        ("FROM_ENV", "here"),
        ("D", "x=y"),
    )


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("A=1\n=nokey\n", "line 2"),
        ("A B=1\n", "line 1"),
        ("B =1\n", "line 1"),
        ("OK=1\nX Y\n", "2"),
    ],
)
def test_malformed_env_file_names_the_file_and_line(tmp_path: Path, text: str, line: str) -> None:
    f = tmp_path / "bad.env"
    f.write_text(text)
    with pytest.raises(UsageError) as err:
        parse_env_file(f, {})
    assert str(f) in err.value.message and line in err.value.message
    assert "nokey" not in err.value.message


def test_missing_or_binary_env_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--env-file .*missing"):
        parse_env_file(tmp_path / "missing", {})
    (tmp_path / "bin").write_bytes(b"A=\xff\n")
    with pytest.raises(UsageError, match="--env-file"):
        parse_env_file(tmp_path / "bin", {})


def test_volume_forms() -> None:
    assert parse_volume("/srv/conf:/etc/app:ro") == Mount("bind", "/etc/app", "/srv/conf", True)
    assert parse_volume("data:/var/lib/app") == Mount("volume", "/var/lib/app", "data")
    assert parse_volume("data:/var/lib/app/:rw") == Mount("volume", "/var/lib/app", "data")
    assert parse_volume("/scratch") == Mount("volume", "/scratch")


@pytest.mark.parametrize(
    "spec",
    [
        "rel/path:/x",
        "./conf:/x",
        "data:relative",
        "data:/x:rx",
        "a:/b:ro:extra",
        ":/x",
        "data:/",
        "relative",
        "da ta:/x",
    ],
)
def test_malformed_volume_is_a_usage_error_naming_it(spec: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_volume(spec)
    assert err.value.exit_code == ExitStatus.USAGE
    assert f"--volume {spec!r}" in err.value.message


def test_mount_forms() -> None:
    assert parse_mount("type=bind,source=/srv,target=/etc/app,readonly") == Mount(
        "bind", "/etc/app", "/srv", True
    )
    assert parse_mount("src=data,dst=/data") == Mount("volume", "/data", "data")
    assert parse_mount("type=volume,target=/cache,ro=false") == Mount("volume", "/cache")
    assert parse_mount("type=tmpfs,destination=/run,tmpfs-size=64m") == Mount(
        "tmpfs", "/run", options="size=64m"
    )
    assert parse_mount('type=bind,"source=/a,b",target=/x') == Mount("bind", "/x", "/a,b")


@pytest.mark.parametrize(
    "spec",
    [
        "type=nfs,target=/x",
        "type=bind,source=rel,target=/x",
        "type=volume,source=/abs",
        "source=data",
        "type=volume,source=data,target=x",
        "type=volume,target=/x,readonly=maybe",
        "type=volume,target=/x,colour=red",
        "type=tmpfs,source=x,target=/x",
        "type=volume,target=/x,tmpfs-size=1m",
        "",
    ],
)
def test_malformed_mount_is_a_usage_error_naming_it(spec: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_mount(spec)
    assert f"--mount {spec!r}" in err.value.message


def test_tmpfs_network_hosts_argv_workdir_user_port() -> None:
    assert parse_tmpfs("/run:size=1m") == Mount("tmpfs", "/run", options="size=1m")
    assert parse_network("backend") == NetworkAttach("backend")
    assert parse_add_host("db:10.0.0.5") == ("db", "10.0.0.5")
    assert parse_add_host("db6:::1") == ("db6", "::1")
    assert parse_add_host("gw:host-gateway") == ("gw", "host-gateway")
    assert parse_argv("--cmd", "sh -c 'echo a b'") == ("sh", "-c", "echo a b")
    assert parse_argv("--cmd", '["a", "b c"]') == ("a", "b c")
    assert parse_argv("--entrypoint", "") == ()
    assert parse_workdir("/srv/app/") == "/srv/app"
    assert parse_run_user("1000:1000") == "1000:1000"
    assert parse_port("8080/tcp") == 8080


@pytest.mark.parametrize(
    ("parse", "spec", "named"),
    [
        (parse_tmpfs, "run", "--tmpfs 'run'"),
        (parse_network, "host", "--network host"),
        (parse_network, "none", "--network none"),
        (parse_network, "container:x", "--network container:x"),
        (parse_network, "bad name", "--network 'bad name'"),
        (parse_add_host, "db", "--add-host 'db'"),
        (parse_add_host, "db:10.0.0.300", "--add-host 'db:10.0.0.300'"),
        (parse_add_host, ":10.0.0.1", "--add-host ':10.0.0.1'"),
        (parse_workdir, "srv", "--workdir 'srv'"),
        (parse_run_user, "", "--run-user ''"),
        (parse_run_user, "app:", "--run-user 'app:'"),
        (parse_run_user, "a b", "--run-user 'a b'"),
        (parse_port, "http", "--port 'http'"),
        (parse_port, "70000", "--port '70000'"),
        (parse_port, "53/udp", "--port '53/udp'"),
    ],
)
def test_other_malformed_forms(parse: object, spec: str, named: str) -> None:
    assert callable(parse)
    with pytest.raises(UsageError) as err:
        parse(spec)
    assert named in err.value.message


@pytest.mark.parametrize("spec", ["'unclosed", '["a", 1]', "[not json"])
def test_malformed_argv(spec: str) -> None:
    with pytest.raises(UsageError, match="--entrypoint"):
        parse_argv("--entrypoint", spec)


def test_context_of_merges_env_files_then_env(tmp_path: Path) -> None:
    f = tmp_path / "a.env"
    f.write_text("A=file\nB=file\n")
    ctx = context_of(
        ContextArgs(
            env=("B=flag", "C"),
            env_files=(f,),
            volumes=("data:/data",),
            tmpfs=("/tmp",),
            networks=("n1", "n1"),
            entrypoint="/bin/app --serve",
        ),
        {"C": "from-env"},
    )
    assert ctx.env == (("A", "file"), ("B", "flag"), ("C", "from-env"))
    assert ctx.networks == (NetworkAttach("n1"),)
    assert ctx.entrypoint == ("/bin/app", "--serve") and ctx.cmd is None
    with pytest.raises(UsageError, match="two mounts"):
        context_of(ContextArgs(volumes=("ab:/x",), tmpfs=("/x",)), {})


def test_run_config_overrides_the_run_not_the_input() -> None:
    config = ImageConfig(
        {"config": {"Entrypoint": ["/e"], "Cmd": ["c"], "User": "app", "Env": ["A=1"]}}
    )
    same = run_config(config, RunContext(env=(("A", "2"),)))
    assert same is config
    got = run_config(config, RunContext(entrypoint=("/other",), workdir="/w", run_user="0"))
    assert (got.entrypoint, got.cmd, got.working_dir, got.user) == (("/other",), (), "/w", "0")
    assert got.env == {"A": "1"}
    assert config.entrypoint == ("/e",) and config.user == "app"
    cmd_only = run_config(config, RunContext(cmd=("x", "y")))
    assert (cmd_only.entrypoint, cmd_only.cmd) == (("/e",), ("x", "y"))


def test_files_archive_delivers_each_file_with_mode_and_owner() -> None:
    files = (
        FileDelivery("/run/secrets/key", b"tok", 0o400, 1000, 1000),
        FileDelivery("/etc/app/conf.ini", b"[a]\n"),
    )
    with tarfile.open(fileobj=io.BytesIO(files_archive(files))) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["etc/app/conf.ini", "run/secrets/key"]
        key = members[1]
        assert (key.mode, key.uid, key.gid, key.mtime) == (0o400, 1000, 1000, 0)
        fh = tar.extractfile(key)
        assert fh is not None and fh.read() == b"tok"


def test_describe_and_repr_hold_no_value() -> None:
    ctx = RunContext(
        env=(("DATABASE_URL", "postgres://u:pw-4711@db/app"),),
        files=(FileDelivery("/run/secrets/api_key", b"key-0815\n"),),
        mounts=(Mount("volume", "/etc/app", "conf", True),),
        networks=(NetworkAttach("backend", ("web",)),),
    )
    shown = f"{ctx.describe()} {ctx!r} {ctx.files[0]!r}"
    for value in ctx.secret_values():
        assert value not in shown
    assert ctx.describe()["env"] == {"DATABASE_URL": MASK}
    assert ctx.describe()["files"] == [
        {"target": "/run/secrets/api_key", "mode": "0444", "bytes": 9}
    ]
    assert ctx.describe()["networks"] == [{"name": "backend", "aliases": ["web"]}]


def test_secret_values_and_redact() -> None:
    ctx = RunContext(
        env=(("URL", "postgres://u:pw-4711@db/app"), ("DEBUG", "1")),
        files=(FileDelivery("/run/secrets/k", b"line-one-secret\nline-two-secret\n"),),
    )
    assert "line-two-secret" in ctx.secret_values()
    text = "conn postgres://u:pw-4711@db/app failed; read line-two-secret; DEBUG=1"
    assert ctx.redact(text) == f"conn {MASK} failed; read {MASK}; DEBUG=1"


def test_covers_mount_targets_and_files() -> None:
    ctx = RunContext(
        mounts=(Mount("volume", "/var/lib/app", "d"),),
        files=(FileDelivery("/run/secrets/k", b"x"),),
    )
    assert ctx.covers("/var/lib/app/db.sqlite") == "/var/lib/app"
    assert ctx.covers("/var/lib/app") == "/var/lib/app"
    assert ctx.covers("/var/lib/apple") is None
    assert ctx.covers("/run/secrets/k") == "/run/secrets/k"
    assert ctx.covers("/run/secrets") is None


def test_report_faces_show_the_context_and_no_value() -> None:
    from dataclasses import replace

    import jsonschema

    from slimmer.pipeline.slim import SlimOptions
    from slimmer.report import slim_html, slim_md, slim_view
    from slimmer.report.common import dump_json
    from tests.test_slim_report import result

    ctx = RunContext(
        env=(("DATABASE_URL", "postgres://u:pw-4711@db/app"),),
        files=(FileDelivery("/run/secrets/api_key", b"key-0815-zz\n"),),
        mounts=(Mount("volume", "/etc/app", "conf", True), Mount("tmpfs", "/run/app")),
        networks=(NetworkAttach("backend", ("web",)),),
        extra_hosts=(("db", "10.1.2.3"),),
        run_user="1000",
    )
    plain = slim_view.to_json(result(True))
    assert "context" not in plain  # optional: absent when no context was given
    r = replace(
        result(True), options=SlimOptions(output="x", context=ctx), mounted=("/etc/app/a.ini",)
    )
    doc = json.loads(dump_json(slim_view.to_json(r)))
    jsonschema.validate(doc, json_schema(SLIM_SCHEMA))
    assert doc["context"]["env"] == {"DATABASE_URL": MASK}
    assert doc["context"]["mounted_paths"] == ["/etc/app/a.ini"]
    from io import StringIO

    from rich.console import Console

    buf = StringIO()
    Console(file=buf, width=200).print(slim_view.render(doc))
    faces = {
        "json": dump_json(doc),
        "md": slim_md.render(doc),
        "html": slim_html.render(doc),
        "text": buf.getvalue(),
    }
    for name, text in faces.items():
        assert "DATABASE_URL" in text and "/run/secrets/api_key" in text, name
        assert "backend" in text and "/etc/app" in text, name
        for value in ctx.secret_values():
            assert value not in text, (name, value)


def test_secret_is_read_here_and_delivered_by_target(tmp_path: Path) -> None:
    from slimmer.context.run import parse_secret

    key = tmp_path / "api_key.txt"
    key.write_bytes(b"k-1\n")
    assert parse_secret(str(key)) == FileDelivery("/run/secrets/api_key.txt", b"k-1\n")
    assert parse_secret(f"{key}:api_key").target == "/run/secrets/api_key"
    assert parse_secret(f"{key}:/etc/app/key").target == "/etc/app/key"
    for bad in (":x", str(tmp_path / "missing"), f"{key}:/"):
        with pytest.raises(UsageError) as err:
            parse_secret(bad)
        assert f"--secret {bad!r}" in err.value.message
    with pytest.raises(UsageError, match="two mounts"):
        context_of(ContextArgs(secrets=(f"{key}:/x",), tmpfs=("/x",)), {})
