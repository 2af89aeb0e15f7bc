"""The image validator: one hand-made archive per broken invariant, good archives in
every format, the writer's outputs, the `slimmer.validate/v1` contract and the exit code.

Archives are made in memory with `tests/synth.py` (`layer`, `config_for`), then
broken on purpose by `_archive`'s overrides: the config it stores, the name it
stores the config under, or the layer bytes after the diff IDs were computed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from slimmer.cli.main import _run
from slimmer.errors import ExitStatus, ImageNotFound, SlimError
from slimmer.image.filetree import keep_all, stream_members
from slimmer.image.reader import open_image
from slimmer.image.validate import SCHEMA as VALIDATE_SCHEMA
from slimmer.image.validate import Validation, validate_archive
from slimmer.image.writer import WriteRequest, assemble_archive, kept_entries, write_image
from slimmer.report import validate_view
from tests.schemas import json_schema
from tests.synth import M, config_for, docker_archive, layer, oci_archive, oci_layout

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json_schema(VALIDATE_SCHEMA)

GOOD = [
    layer(M("bin/", "dir"), M("bin/sh", data=b"sh"), M("bin/sh2", "hardlink", link="bin/sh")),
    layer(M("etc/", "dir"), M("etc/hosts", data=b"127.0.0.1 localhost\n")),
]


def _archive(
    path: Path,
    layers: list[bytes],
    *,
    config: dict[str, Any] | None = None,
    config_name: str | None = None,
    stored: list[bytes] | None = None,
    manifest: Any = None,
) -> Path:
    """A docker-archive of `layers`; the overrides break one thing each."""
    doc = config if config is not None else config_for(layers)
    data = json.dumps(doc).encode()
    name = config_name or hashlib.sha256(data).hexdigest() + ".json"
    names = [f"{i}/layer.tar" for i in range(len(layers))]
    entry = {"Config": name, "RepoTags": None, "Layers": names}
    with tarfile.open(path, "w") as tf:
        _add(tf, name, data)
        for member, body in zip(names, stored or layers, strict=True):
            _add(tf, member, body)
        _add(
            tf, "manifest.json", json.dumps(manifest if manifest is not None else [entry]).encode()
        )
    return path


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def _check(path: Path, sorted_from: int | None = None) -> Validation:
    return validate_archive("docker-archive", path, sorted_from=sorted_from)


def _rules(found: Validation) -> list[tuple[str, int | None, str | None]]:
    return [(v.rule, v.layer, v.entry) for v in found.violations]


# -- good archives ---------------------------------------------------------------------


def test_good_archives_in_every_format(tmp_path: Path) -> None:
    cases = {
        "docker-archive": docker_archive(tmp_path / "d.tar", GOOD),
        "oci": oci_layout(tmp_path / "oci", GOOD),
        "oci-archive": oci_archive(tmp_path / "o.tar", GOOD),
    }
    for transport, path in cases.items():
        found = validate_archive(transport, path, sorted_from=0)
        assert found.valid, (transport, found.violations)
        assert (found.layers, found.entries, found.warnings) == (2, 5, ())


def test_uncompressed_oci_layers(tmp_path: Path) -> None:
    found = validate_archive("oci", oci_layout(tmp_path / "oci", GOOD, compress=False))
    assert found.valid


def test_a_dot_slash_root_entry_is_fine(tmp_path: Path) -> None:
    found = _check(_archive(tmp_path / "a.tar", [layer(M("./", "dir"), M("./a", data=b"a"))]))
    assert found.valid and not found.warnings


# -- one broken invariant each ---------------------------------------------------------


def test_diff_id_mismatch(tmp_path: Path) -> None:
    other = layer(M("bin/sh", data=b"not the same bytes"))
    found = _check(_archive(tmp_path / "a.tar", GOOD, stored=[other, GOOD[1]]))
    assert _rules(found) == [("diff-id", 1, None)]
    assert "diff ID is sha256:" in found.violations[0].message
    # the writer's own check leaves the diff IDs to the engine's load
    path = tmp_path / "a.tar"
    assert validate_archive("docker-archive", path, digests=False).valid


def test_config_digest_mismatch(tmp_path: Path) -> None:
    found = _check(_archive(tmp_path / "a.tar", GOOD, config_name="ab" * 32 + ".json"))
    assert _rules(found) == [("config-digest", None, None)]


def test_history_counts_disagree(tmp_path: Path) -> None:
    config = config_for(GOOD, history=["only one"])
    found = _check(_archive(tmp_path / "a.tar", GOOD, config=config))
    assert _rules(found) == [("history", None, None)]


def test_empty_layer_history_entries_do_not_count(tmp_path: Path) -> None:
    config = config_for(GOOD)
    config["history"] = [{"created_by": "ENV x", "empty_layer": True}, {}, {}]
    assert _check(_archive(tmp_path / "a.tar", GOOD, config=config)).valid


def test_rootfs_is_checked(tmp_path: Path) -> None:
    config = config_for(GOOD)
    config["rootfs"] = {"type": "tarballs", "diff_ids": config["rootfs"]["diff_ids"]}  # type: ignore[index]
    found = _check(_archive(tmp_path / "a.tar", GOOD, config=config))
    assert _rules(found) == [("rootfs", None, None)]


def test_layer_count_disagrees_with_the_config(tmp_path: Path) -> None:
    found = _check(_archive(tmp_path / "a.tar", GOOD, config=config_for(GOOD[:1])))
    assert _rules(found) == [("structure", None, None)]
    assert "config names 1 layers, manifest 2" in found.violations[0].message


def test_unsorted_entries_warn_or_fail(tmp_path: Path) -> None:
    unsorted = [layer(M("b", data=b"b"), M("a", data=b"a"))]
    path = _archive(tmp_path / "a.tar", unsorted)
    lenient = _check(path)
    assert lenient.valid
    assert [(w.rule, w.layer, w.entry) for w in lenient.warnings] == [("order", 1, "a")]
    assert _rules(_check(path, sorted_from=0)) == [("order", 1, "a")]


def test_duplicate_entries(tmp_path: Path) -> None:
    dup = [layer(M("a", data=b"1"), M("./a", data=b"2"))]
    assert _rules(_check(_archive(tmp_path / "a.tar", dup))) == [("duplicate", 1, "./a")]


def test_absolute_and_dotdot_names(tmp_path: Path) -> None:
    bad = [layer(M("../etc/passwd", data=b"x"), M("/abs", data=b"y"), M("ok/../../z", data=b"z"))]
    found = _check(_archive(tmp_path / "a.tar", bad))
    assert _rules(found) == [
        ("dotdot-path", 1, "../etc/passwd"),
        ("absolute-path", 1, "/abs"),
        ("dotdot-path", 1, "ok/../../z"),
    ]


def test_hardlink_before_its_target(tmp_path: Path) -> None:
    bad = [layer(M("a", "hardlink", link="b"), M("b", data=b"b"))]
    found = _check(_archive(tmp_path / "a.tar", bad))
    assert _rules(found) == [("hardlink-order", 1, "a")]
    assert "not an earlier entry" in found.violations[0].message


def test_hardlink_out_of_the_root(tmp_path: Path) -> None:
    bad = [layer(M("a", "hardlink", link="../../etc/shadow"))]
    found = _check(_archive(tmp_path / "a.tar", bad))
    assert _rules(found) == [("hardlink-order", 1, "a")]
    assert "leaves the root" in found.violations[0].message


def test_truncated_layer(tmp_path: Path) -> None:
    whole = layer(M("big", data=b"x" * 4096), M("c", data=b"c"))
    found = _check(_archive(tmp_path / "a.tar", [whole], stored=[whole[:1000]]))
    assert [r for r, _, _ in _rules(found)] == ["diff-id", "tar"]
    assert found.violations[1].layer == 1


def test_corrupt_gzip_layer_in_an_oci_layout(tmp_path: Path) -> None:
    root = oci_layout(tmp_path / "oci", GOOD)
    blob = next(p for p in (root / "blobs/sha256").iterdir() if p.read_bytes()[:2] == b"\x1f\x8b")
    data = blob.read_bytes()
    blob.write_bytes(data[:20] + b"\x00" * 40 + data[60:])
    found = validate_archive("oci", root)
    assert not found.valid
    assert {v.rule for v in found.violations} <= {"tar", "diff-id"}


def test_oci_blob_that_is_not_its_digest(tmp_path: Path) -> None:
    root = oci_layout(tmp_path / "oci", GOOD)
    blob = next(p for p in (root / "blobs/sha256").iterdir() if p.read_bytes()[:2] == b"\x1f\x8b")
    blob.write_bytes(gzip.compress(gzip.decompress(blob.read_bytes()), compresslevel=1, mtime=1))
    found = validate_archive("oci", root)
    assert [v.rule for v in found.violations] == ["blob-digest"]
    assert found.entries == 5


def test_many_violations_are_capped(tmp_path: Path) -> None:
    bad = [layer(*(M(f"/abs{i:04}", data=b"") for i in range(250)))]
    found = _check(_archive(tmp_path / "a.tar", bad))
    assert len(found.violations) == 101
    assert found.violations[-1].rule == "more"
    assert found.entries == 250


# -- hostile outer archives: clear violations, no tracebacks ---------------------------


@pytest.mark.parametrize(
    "body",
    [b"", b"not a tar at all" * 100, gzip.compress(b"\x00" * 10)],
    ids=["empty", "garbage", "gzip"],
)
def test_unreadable_archives(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "a.tar"
    path.write_bytes(body)
    found = _check(path)
    assert _rules(found) == [("structure", None, None)]


@pytest.mark.parametrize(
    "manifest",
    [{"not": "a list"}, [{"Config": "x.json", "Layers": 5}], [7], [{"Layers": ["nope"]}]],
)
def test_malformed_manifests(tmp_path: Path, manifest: Any) -> None:
    found = _check(_archive(tmp_path / "a.tar", GOOD, manifest=manifest))
    assert [r for r, _, _ in _rules(found)] == ["structure"]


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFound):
        _check(tmp_path / "nope.tar")


# -- the writer's outputs --------------------------------------------------------------


def test_the_writers_output_validates(tmp_path: Path) -> None:
    src = docker_archive(tmp_path / "src.tar", GOOD)
    with open_image(f"docker-archive:{src}", want=keep_all) as image:
        keep = ["/bin", "/bin/sh", "/bin/sh2", "/etc", "/etc/hosts"]
        entries = tuple(kept_entries(image.tree, keep, image.store))
        request = WriteRequest(entries, image.store, image.config, image.id, tmp_path)
        written = write_image(request)
    found = _check(written.archive, sorted_from=0)
    assert found.valid and not found.warnings
    assert (found.image_id, found.entries) == (written.image_id, 5)


def test_the_writer_refuses_to_hand_out_an_invalid_image(tmp_path: Path) -> None:
    tar = tmp_path / "layer.tar"
    tar.write_bytes(layer(M("b", data=b"b"), M("a", data=b"a")))  # unsorted: not ours
    config = config_for([tar.read_bytes()])
    with pytest.raises(SlimError) as err:
        assemble_archive([tar], config, tmp_path / "image.tar")
    assert err.value.exit_code == ExitStatus.FAILURE
    assert "internal error" in err.value.message
    assert "order: layer 1: 'a'" in err.value.message


# -- JSON contract and the CLI ---------------------------------------------------------


def test_json_contract(tmp_path: Path) -> None:
    bad = [layer(M("a", "hardlink", link="b"), M("b", data=b"b"))]
    found = _check(_archive(tmp_path / "a.tar", bad))
    doc = json.loads(validate_view.render(found, "json"))
    jsonschema.validate(doc, SCHEMA)
    assert sorted(doc) == ["image", "schema", "valid", "violations", "warnings"]
    assert doc["schema"] == VALIDATE_SCHEMA
    assert sorted(doc["image"]) == ["entries", "id", "layers", "ref"]
    assert doc["valid"] is False
    assert doc["violations"] == [
        {
            "rule": "hardlink-order",
            "message": "link target 'b' is not an earlier entry of this layer",
            "layer": 1,
            "entry": "a",
        }
    ]


def test_json_of_an_unreadable_archive_validates(tmp_path: Path) -> None:
    path = tmp_path / "a.tar"
    path.write_bytes(b"junk")
    jsonschema.validate(validate_view.to_json(_check(path)), SCHEMA)


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = docker_archive(tmp_path / "good.tar", GOOD)
    assert _run(["validate", f"docker-archive:{good}"]) == ExitStatus.OK
    assert "valid" in capsys.readouterr().out
    other = layer(M("x", data=b"x"))
    bad = _archive(tmp_path / "bad.tar", GOOD, stored=[other, GOOD[1]])
    assert _run(["validate", f"docker-archive:{bad}", "--format", "json"]) == ExitStatus.INVALID
    out, err = capsys.readouterr()
    assert json.loads(out)["valid"] is False
    assert err.strip().splitlines() == [
        f"slim: error: validating docker-archive:{bad}: 1 violation; first: diff-id: layer 1: "
        + json.loads(out)["violations"][0]["message"]
    ]


def test_stream_members_drops_what_it_has_read() -> None:
    data = layer(*(M(f"f{i:03}", data=b"x") for i in range(50)))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tf:
        names, held = [], 0
        for info in stream_members(tf):
            names.append(info.name)
            held = max(held, len(tf.members))  # type: ignore[attr-defined]
    assert names == [f"f{i:03}" for i in range(50)]
    assert held == 1, "tarfile keeps every member read unless they are dropped"
