"""`--platform` on an OCI layout (`oci:DIR`, `oci-archive:FILE`) whose index lists an
image per platform: the reader takes the image of the platform asked for (default:
this host's), and a platform the index lacks is a one-line error naming what it has."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from slimmer import api
from slimmer.cli.main import cli
from slimmer.errors import ImageNotFound
from slimmer.image.filetree import keep_all
from slimmer.image.platforms import Platform, host_platform
from slimmer.image.reader import open_image
from slimmer.registry.remote import RegistryOptions
from tests.synth import M, _add, _blob, config_for, layer

ARCHES = ("amd64", "arm64")


def _two_platform_files() -> dict[str, bytes]:
    """An OCI layout of two images, each with `/arch` holding its architecture."""
    files: dict[str, bytes] = {}
    entries = []
    for arch in ARCHES:
        data = layer(M("arch", data=arch.encode()))
        config = config_for([data]) | {"architecture": arch}
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                **_blob(files, json.dumps(config).encode()),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", **_blob(files, data)}
            ],
        }
        entries.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **_blob(files, json.dumps(manifest).encode()),
                "platform": {"os": "linux", "architecture": arch},
            }
        )
    files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": entries}).encode()
    files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
    return files


@pytest.fixture(params=["oci", "oci-archive"])
def two_platform_ref(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    files = _two_platform_files()
    if request.param == "oci":
        for name, data in files.items():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_bytes(data)
        return f"oci:{tmp_path}"
    path = tmp_path / "image.tar"
    with tarfile.open(path, "w") as tf:
        for name, data in sorted(files.items()):
            _add(tf, name, data)
    return f"oci-archive:{path}"


def _arch_file(ref: str, platform: Platform | None) -> tuple[str, bytes]:
    with open_image(ref, want=keep_all, platform=platform) as image:
        assert image.tree.get("/arch") is not None
        return image.config.architecture, image.tree.read_bytes("/arch")


@pytest.mark.parametrize("arch", ARCHES)
def test_the_image_of_the_platform_asked_for_is_read(two_platform_ref: str, arch: str) -> None:
    assert _arch_file(two_platform_ref, Platform("linux", arch)) == (arch, arch.encode())


def test_without_a_platform_the_hosts_image_is_read(two_platform_ref: str) -> None:
    host = host_platform().architecture
    assert _arch_file(two_platform_ref, None) == (host, host.encode())


def test_a_platform_the_layout_lacks_is_not_found_naming_what_it_has(
    two_platform_ref: str,
) -> None:
    with pytest.raises(ImageNotFound) as err:
        _arch_file(two_platform_ref, Platform("linux", "s390x"))
    assert "linux/s390x" in err.value.message
    assert "linux/amd64" in err.value.message and "linux/arm64" in err.value.message


def test_inspect_and_validate_take_platform(two_platform_ref: str) -> None:
    arm = RegistryOptions(platform=Platform("linux", "arm64"))
    assert api.inspect_image(two_platform_ref, arm).architecture == "arm64"
    assert api.validate_image(two_platform_ref, arm).valid
    res = CliRunner().invoke(
        cli, ["inspect", two_platform_ref, "--platform", "linux/arm64", "--format", "json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["image"]["architecture"] == "arm64"
    res = CliRunner().invoke(cli, ["inspect", two_platform_ref, "--platform", "linux/s390x"])
    assert isinstance(res.exception, ImageNotFound)  # cli.main prints it as one line
    assert "it has linux/amd64, linux/arm64" in res.exception.message
