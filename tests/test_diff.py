"""`slim diff` on synthetic archives built in memory (tests/synth.py): paths added,
removed and changed, symlinks, modes, owners, config, packages, the slim-run
report, the renderers and the `slimmer.diff/v1` schema."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from slimmer.analyse.diff import SCHEMA as DIFF_SCHEMA
from slimmer.analyse.diff import (
    DigestStore,
    FieldChange,
    ImageDiff,
    diff_images,
    read_snapshot,
)
from slimmer.analyse.packages import is_metadata_file
from slimmer.analyse.slimreasons import SLIM_SCHEMAS, load_slim_reasons
from slimmer.errors import UsageError
from slimmer.image.filetree import keep_all
from slimmer.image.reader import open_image
from slimmer.image.store import ContentStore, hash_stream
from slimmer.model import SLIM_SCHEMA, SOURCE_LABEL
from slimmer.report import diff_view
from slimmer.report.common import dump_json
from tests.schemas import json_schema
from tests.synth import M, config_for, layer, oci_archive, oci_layout

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json_schema(DIFF_SCHEMA)
ELF = b"\x7fELF" + b"\0" * 60


def archive(path: Path, layers: list[bytes], **container: Any) -> Path:
    """A docker-archive like `tests.synth.docker_archive`, with `container` merged into
    the config's runtime settings (Labels, Entrypoint, ...)."""
    config = config_for(layers)
    config["config"] = {**dict(config["config"]), **container}  # type: ignore[call-overload]
    data = json.dumps(config).encode()
    cid = hashlib.sha256(data).hexdigest()
    names = [f"{hashlib.sha256(b).hexdigest()}/layer.tar" for b in layers]
    manifest = [{"Config": f"{cid}.json", "RepoTags": ["synth:1"], "Layers": names}]
    with tarfile.open(path, "w") as tf:
        for name, blob in [(f"{cid}.json", data), *zip(names, layers, strict=True)]:
            _add(tf, name, blob)
        _add(tf, "manifest.json", json.dumps(manifest).encode())
    return path


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def image_id(path: Path) -> str:
    """The ID the reader gives a docker-archive: its config's digest."""
    with tarfile.open(path) as tf:
        name = next(n for n in tf.getnames() if n.endswith(".json") and n != "manifest.json")
    return "sha256:" + name.removesuffix(".json")


def dpkg(*pkgs: tuple[str, str]) -> M:
    text = "".join(f"Package: {n}\nStatus: install ok installed\nVersion: {v}\n\n" for n, v in pkgs)
    return M("var/lib/dpkg/status", data=text.encode())


BASE = [
    M("bin/", "dir"),
    M("bin/sh", data=ELF, mode=0o755),
    M("etc/", "dir"),
    M("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n"),
    M("etc/motd", data=b"hello"),
    M("etc/hosts", data=b"127.0.0.1 localhost\n"),
    M("opt/", "dir", mode=0o755),
    M("opt/app/", "dir"),
    M("opt/app/run", data=b"#!/bin/sh\n", mode=0o755),
    M("opt/app/data.bin", data=b"d" * 1000),
    M("opt/app/link", "symlink", link="run"),
    M("opt/app/hard", "hardlink", link="opt/app/run"),
    M("opt/app/cap", data=b"cap", xattrs={"security.capability": "v1"}),
    M("srv/", "dir"),
    M("srv/old", data=b"o" * 300),
    M("srv/gone/", "dir"),
    M("srv/gone/x", data=b"x"),
]


def changed_base() -> list[M]:
    """BASE with one change of each kind; /etc/hosts and /bin/sh unchanged."""
    edits: dict[str, M] = {
        "etc/motd": M("etc/motd", data=b"HELLO"),  # same size, other bytes
        "etc/passwd": M("etc/passwd", data=b"root:x:0:0::/root:/bin/bash\n"),
        "opt/": M("opt/", "dir", mode=0o700),  # directory mode
        "opt/app/": M("opt/app/", "dir", uid=1000, gid=1000),  # directory owner
        "opt/app/run": M("opt/app/run", data=b"#!/bin/sh\n", mode=0o700),  # mode only
        "opt/app/data.bin": M("opt/app/data.bin", data=b"d" * 1000, uid=1, gid=2),
        "opt/app/link": M("opt/app/link", "symlink", link="/opt/app/run"),
        "opt/app/hard": M("opt/app/hard", data=b"#!/bin/sh\n", mode=0o700),  # a copy now
        "opt/app/cap": M("opt/app/cap", data=b"cap", xattrs={"security.capability": "v2"}),
        "srv/old": M("srv/old", "symlink", link="new"),  # file -> symlink
    }
    gone = {"srv/gone/", "srv/gone/x"}
    return [edits.get(m.name, m) for m in BASE if m.name not in gone]


def diff_of(
    tmp_path: Path, a: list[M], b: list[M], a_cfg: dict[str, Any], b_cfg: dict[str, Any]
) -> ImageDiff:
    pa = archive(tmp_path / "a.tar", [layer(*a)], **a_cfg)
    pb = archive(tmp_path / "b.tar", [layer(*b)], **b_cfg)
    return diff_images(f"docker-archive:{pa}", f"docker-archive:{pb}")


@pytest.fixture
def pair(tmp_path: Path) -> ImageDiff:
    extra = [M("srv/new", data=b"n" * 50), M("usr/", "dir"), M("usr/lib/", "dir")]
    return diff_of(tmp_path, BASE, changed_base() + extra, {}, {})


def fields(d: ImageDiff) -> dict[str, tuple[FieldChange, ...]]:
    return {c.path: c.fields for c in d.changed}


# -- files ----------------------------------------------------------------------------


def test_added_and_removed(pair: ImageDiff) -> None:
    assert [(p.path, p.type, p.size) for p in pair.added] == [
        ("/srv/new", "file", 50),
        ("/usr", "dir", 0),
        ("/usr/lib", "dir", 0),
    ]
    assert [p.path for p in pair.removed] == ["/srv/gone", "/srv/gone/x"]


def test_changed_fields(pair: ImageDiff) -> None:
    got = {p: {f.field: (f.a, f.b) for f in fs} for p, fs in fields(pair).items()}
    motd_a, motd_b = (hashlib.sha256(x).hexdigest() for x in (b"hello", b"HELLO"))
    assert got == {
        "/etc/motd": {"content": (f"sha256:{motd_a}", f"sha256:{motd_b}")},
        "/etc/passwd": {
            "size": ("26", "28"),
            "content": (
                "sha256:" + hashlib.sha256(b"root:x:0:0::/root:/bin/sh\n").hexdigest(),
                "sha256:" + hashlib.sha256(b"root:x:0:0::/root:/bin/bash\n").hexdigest(),
            ),
        },
        "/opt": {"mode": ("0755", "0700")},
        "/opt/app": {"owner": ("0:0", "1000:1000")},
        "/opt/app/run": {"mode": ("0755", "0700")},
        "/opt/app/hard": {"mode": ("0755", "0700")},  # a hardlink compares as its file
        "/opt/app/data.bin": {"owner": ("0:0", "1:2")},
        "/opt/app/link": {"target": ("run", "/opt/app/run")},
        "/opt/app/cap": {"xattrs": ("security.capability=v1", "security.capability=v2")},
        "/srv/old": {"type": ("file", "symlink")},
    }
    assert {c.path: c.size_delta for c in pair.changed}["/etc/passwd"] == 2
    assert pair.unchanged == len(BASE) + 1 - 2 - len(got)  # + the root, - the removed


def test_identical_images_have_no_differences(tmp_path: Path) -> None:
    d = diff_of(tmp_path, BASE, BASE, {}, {})
    assert (d.added, d.removed, d.changed, d.directories, d.config) == ((), (), (), (), ())
    assert d.unchanged == len(BASE) + 1
    assert not d.b_slimmed_from_a


def test_whiteouts_in_upper_layers_are_removals(tmp_path: Path) -> None:
    pa = archive(tmp_path / "a.tar", [layer(*BASE)])
    upper = layer(M("srv/.wh.gone"), M("opt/app/.wh..wh..opq"), M("opt/app/fresh", data=b"f"))
    pb = archive(tmp_path / "b.tar", [layer(*BASE), upper])
    d = diff_images(f"docker-archive:{pa}", f"docker-archive:{pb}")
    assert [p.path for p in d.added] == ["/opt/app/fresh"]
    assert [p.path for p in d.removed] == [
        "/opt/app/cap",
        "/opt/app/data.bin",
        "/opt/app/hard",
        "/opt/app/link",
        "/opt/app/run",
        "/srv/gone",
        "/srv/gone/x",
    ]


def test_size_by_directory(pair: ImageDiff) -> None:
    rows = [(r.path, r.a_bytes, r.b_bytes, r.delta) for r in pair.directories]
    # /srv: old became a symlink (-300), gone/x went (-1), new came (+50); the hardlink
    # /opt/app/hard became a copy of its 10 bytes; /etc/passwd grew by 2
    assert rows == [
        ("/srv", 301, 50, -251),
        ("/opt", 1013, 1023, 10),
        ("/opt/app", 1013, 1023, 10),
        ("/etc", 51, 53, 2),
        ("/srv/gone", 1, 0, -1),
    ]


def test_size_by_directory_levels(tmp_path: Path) -> None:
    a = [M("top", data=b"t" * 10), M("usr/bin/x", data=b"x" * 100), M("usr/lib/a/b", data=b"y")]
    b = [M("top", data=b"t" * 5), M("usr/bin/x", data=b"x" * 40), M("usr/lib/a/b", data=b"y")]
    d = diff_of(tmp_path, a, b, {}, {})
    assert [(r.path, r.delta) for r in d.directories] == [
        ("/usr", -60),
        ("/usr/bin", -60),
        ("/", -5),
    ]


# -- content digests without keeping bytes ---------------------------------------------


def test_digests_are_the_content_store_keys_and_only_metadata_is_stored(
    tmp_path: Path,
) -> None:
    files = [*BASE, dpkg(("dash", "1"))]
    path = archive(tmp_path / "a.tar", [layer(*files)])
    ref = f"docker-archive:{path}"
    with open_image(ref, want=keep_all) as full:
        keys = {e.path: e.content for e in full.tree if e.is_regular}
    store = DigestStore(tmp_path / "digests", is_metadata_file)
    with open_image(ref, want=store.want, store=store) as img:
        assert {e.path: e.content for e in img.tree if e.is_regular} == keys
        assert store.keys() == {keys["/var/lib/dpkg/status"]}


def test_hash_stream_matches_put_stream(tmp_path: Path) -> None:
    data = b"z" * (3 << 20) + b"tail"
    key, size = ContentStore(tmp_path / "s").put_stream(io.BytesIO(data[4:]), data[:4])
    assert hash_stream(io.BytesIO(data[4:]), data[:4]) == (key, size)


@pytest.mark.parametrize("transport", ["oci-archive", "oci"])
def test_oci_sources(tmp_path: Path, transport: str) -> None:
    data = [layer(*BASE)]
    if transport == "oci":
        ref = f"oci:{oci_layout(tmp_path / 'layout', data)}"
    else:
        ref = f"oci-archive:{oci_archive(tmp_path / 'a.tar', data)}"
    other = archive(tmp_path / "b.tar", [layer(*changed_base())])
    d = diff_images(ref, f"docker-archive:{other}")
    assert "/etc/motd" in fields(d)
    assert read_snapshot(ref).side.files == read_snapshot(f"docker-archive:{other}").side.files + 1


# -- packages and config ---------------------------------------------------------------


def test_packages_added_removed_changed(tmp_path: Path) -> None:
    a = [dpkg(("dash", "0.5.12-2"), ("libc6", "2.36-9"), ("tzdata", "2024a"))]
    b = [
        dpkg(("dash", "0.5.12-2"), ("libc6", "2.36-9+deb12u4"), ("curl", "7.88")),
        M(
            "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
            data=b"Name: six\nVersion: 1.16.0\n",
        ),
    ]
    p = diff_of(tmp_path, a, b, {}, {}).packages
    assert [(x.manager, x.name, x.version) for x in p.added] == [
        ("dpkg", "curl", "7.88"),
        ("python", "six", "1.16.0"),
    ]
    assert [(x.name, x.version) for x in p.removed] == [("tzdata", "2024a")]
    assert [(x.name, x.a_version, x.b_version) for x in p.changed] == [
        ("libc6", "2.36-9", "2.36-9+deb12u4")
    ]


A_CONFIG: dict[str, Any] = {
    "Entrypoint": ["/opt/app/run"],
    "Cmd": ["serve"],
    "Env": ["PATH=/usr/bin:/bin", "MODE=dev", "GONE=1"],
    "User": "app",
    "WorkingDir": "/opt/app",
    "ExposedPorts": {"8080/tcp": {}},
    "Healthcheck": {"Test": ["CMD", "/opt/app/run", "health"], "Interval": 30_000_000_000},
    "Labels": {"team": "a", "old": "x"},
    "StopSignal": "SIGTERM",
}


def test_config_changes(tmp_path: Path) -> None:
    b_config: dict[str, Any] = {
        "Entrypoint": None,
        "Cmd": ["/opt/app/run", "serve"],
        "Env": ["PATH=/usr/bin:/bin", "MODE=prod", "NEW=2"],
        "User": "",
        "WorkingDir": "/srv",
        "ExposedPorts": {"8080/tcp": {}, "9090/tcp": {}},
        "Healthcheck": {"Test": ["NONE"]},
        "Labels": {"team": "b", "new": "y"},
        "StopSignal": "SIGQUIT",
    }
    d = diff_of(tmp_path, BASE, BASE, A_CONFIG, b_config)
    got = [(c.field, c.key, c.a, c.b) for c in d.config]
    assert got == [
        ("entrypoint", "", ("/opt/app/run",), None),
        ("cmd", "", ("serve",), ("/opt/app/run", "serve")),
        ("user", "", "app", None),
        ("workdir", "", "/opt/app", "/srv"),
        ("exposed_ports", "", ("8080/tcp",), ("8080/tcp", "9090/tcp")),
        ("healthcheck", "", ("CMD", "/opt/app/run", "health", "Interval=30000000000"), ("NONE",)),
        ("stop_signal", "", "SIGTERM", "SIGQUIT"),
        ("env", "GONE", "1", None),
        ("env", "MODE", "dev", "prod"),
        ("env", "NEW", None, "2"),
        ("labels", "new", None, "y"),
        ("labels", "old", "x", None),
        ("labels", "team", "a", "b"),
    ]


# -- a slimmer output of A, and the report of that run -----------------------------------


def slim_pair(tmp_path: Path) -> tuple[Path, Path]:
    pa = archive(tmp_path / "a.tar", [layer(*BASE)])
    slim = [M("bin/sh", data=ELF, mode=0o755), M("opt/app/run", data=b"#!/bin/sh\n", mode=0o755)]
    slim += [M("var/lib/dpkg/status", data=b"")]
    labels = {SOURCE_LABEL: image_id(pa)}
    pb = archive(tmp_path / "b.tar", [layer(*slim)], Labels=labels)
    return pa, pb


def report(path: Path, source: str, result: str, schema: str = SLIM_SCHEMA) -> Path:
    """A slim-run report with the keys `slim diff` reads (v1 and v2 share them)."""
    doc = {
        "schema": schema,
        "source": {"ref": "a", "id": source, "size_bytes": 1, "files": 1},
        "result": {"ref": "b", "id": result, "size_bytes": 1, "files": 1},
        "kept": [
            {"path": "/bin/sh", "reasons": [{"kind": "elf", "detail": "interp", "source": ""}]},
            {
                "path": "/opt/app/run",
                "reasons": [
                    {"kind": "config", "detail": "the entrypoint", "source": ""},
                    {"kind": "traced", "detail": "execve", "source": ""},
                ],
            },
            {
                "path": "/var/lib/dpkg/status",
                "generated": True,
                "reasons": [{"kind": "profile", "detail": "trimmed", "source": "dpkg"}],
            },
        ],
    }
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("schema", SLIM_SCHEMAS)
def test_slimmer_output_is_marked_and_reasons_are_shown(tmp_path: Path, schema: str) -> None:
    pa, pb = slim_pair(tmp_path)
    rep = load_slim_reasons(report(tmp_path / "r.json", image_id(pa), image_id(pb), schema))
    d = diff_images(f"docker-archive:{pa}", f"docker-archive:{pb}", report=rep)
    assert d.b_slimmed_from_a
    assert d.kept is not None and d.kept.matches and d.warnings == ()
    got = {f.path: ([r.kind for r in f.reasons], f.generated) for f in d.kept.files}
    assert got == {
        "/bin/sh": (["elf"], False),
        "/opt/app/run": (["config", "traced"], False),
        "/var/lib/dpkg/status": (["profile"], True),
    }
    text = diff_view.to_text(d)
    assert "B is a slimmer output of A" in text
    assert "/opt/app/run  config: the entrypoint (+1 more)" in text
    reverse = diff_images(f"docker-archive:{pb}", f"docker-archive:{pa}")
    assert not reverse.b_slimmed_from_a


def test_report_of_another_run_warns(tmp_path: Path) -> None:
    pa, pb = slim_pair(tmp_path)
    rep = load_slim_reasons(report(tmp_path / "r.json", "sha256:" + "0" * 64, image_id(pb)))
    d = diff_images(f"docker-archive:{pa}", f"docker-archive:{pb}", report=rep)
    assert d.kept is not None and not d.kept.matches
    assert len(d.warnings) == 1 and "report of another run" in d.warnings[0]


@pytest.mark.parametrize(
    "content,needle",
    [
        (None, "no such file"),
        ("{not json", "reading slim report"),
        ('{"schema": "slimmer.inspect/v1"}', "not a slim run's report"),
    ],
)
def test_bad_report_is_a_usage_error(tmp_path: Path, content: str | None, needle: str) -> None:
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=needle):
        load_slim_reasons(path)


# -- renderers and the schema ------------------------------------------------------------


def test_json_validates_and_is_pinned(pair: ImageDiff, tmp_path: Path) -> None:
    doc = diff_view.to_json(pair)
    jsonschema.validate(doc, SCHEMA)
    assert sorted(doc) == [
        "a",
        "added",
        "b",
        "b_slimmed_from_a",
        "changed",
        "config",
        "directories",
        "kept",
        "packages",
        "removed",
        "schema",
        "summary",
        "warnings",
    ]
    assert doc["schema"] == DIFF_SCHEMA
    assert doc["summary"] == {
        "added": 3,
        "removed": 2,
        "changed": 10,
        "unchanged": pair.unchanged,
        "size_delta_bytes": pair.b.size_bytes - pair.a.size_bytes,
        "tree_delta_bytes": pair.b.tree_bytes - pair.a.tree_bytes,
    }
    assert doc["changed"][0] == {
        "path": "/etc/motd",
        "type": "file",
        "size_delta_bytes": 0,
        "fields": [
            {
                "field": "content",
                "a": "sha256:" + hashlib.sha256(b"hello").hexdigest(),
                "b": "sha256:" + hashlib.sha256(b"HELLO").hexdigest(),
            }
        ],
    }
    text = dump_json(doc)
    assert text == diff_view.render(pair, "json") and json.loads(text) == doc


def test_json_with_report_and_config_validates(tmp_path: Path) -> None:
    pa, pb = slim_pair(tmp_path)
    rep = load_slim_reasons(report(tmp_path / "report.json", image_id(pa), image_id(pb)))
    d = diff_images(f"docker-archive:{pa}", f"docker-archive:{pb}", report=rep)
    doc = diff_view.to_json(d)
    jsonschema.validate(doc, SCHEMA)
    assert doc["kept"]["unexplained"] == 0 and doc["kept"]["matches"] is True
    assert doc["config"] == [{"field": "labels", "key": SOURCE_LABEL, "a": None, "b": image_id(pa)}]
    d2 = diff_of(tmp_path, BASE, BASE, A_CONFIG, {})
    jsonschema.validate(diff_view.to_json(d2), SCHEMA)


def test_schema_rejects_unknown_keys(pair: ImageDiff) -> None:
    doc = diff_view.to_json(pair)
    doc["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_text_lists_everything_and_escapes_names(tmp_path: Path) -> None:
    odd = "srv/bad\udcffname"
    d = diff_of(tmp_path, BASE, [*BASE, M(odd, data=b"x")], {}, {})
    text = diff_view.to_text(d)
    assert "+ /srv/bad\\xffname  (file, 1 B)" in text
    text.encode("utf-8")  # printable: no lone surrogate reaches the terminal


def test_markdown_folds_and_cuts_long_lists(tmp_path: Path) -> None:
    many = [M(f"srv/f{i:04d}", data=b"x") for i in range(diff_view.MD_ROWS + 5)]
    d = diff_of(tmp_path, BASE, [*changed_base(), *many], A_CONFIG, {})
    md = diff_view.to_markdown(d)
    assert md.startswith("### slim diff `docker-archive:")
    assert f"<details><summary>Added: {diff_view.MD_ROWS + 5}</summary>" in md
    assert "- … and 5 more (see `--format json`)" in md
    assert md.count("</details>") == md.count("<details>")
    assert '| cmd | `["serve"]` | `["/bin/true"]` |' in md
    assert len(md) < 65_536


@pytest.mark.parametrize("fmt", diff_view.FORMATS)
def test_every_format_renders_deterministically(pair: ImageDiff, fmt: str) -> None:
    assert diff_view.render(pair, fmt) == diff_view.render(pair, fmt)
