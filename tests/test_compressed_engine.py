"""The slim report's compressed-size estimate (slimmer.image.compressed) against a full
level-6 gzip of every layer, on every fixture image as `docker save` gives it."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from slimmer.engine import Engine
from slimmer.image.archive import open_archive
from slimmer.image.compressed import BLOCK, ERROR_BOUND, SAMPLES, estimate_image
from tests.fixtures_build import fixture_names

pytestmark = pytest.mark.engine


def _gzip_size(path: Path) -> int:
    """Python's own gzip module at level 6 over one file, streamed: the oracle."""

    class _Count:
        n = 0

        def write(self, data: bytes) -> int:
            self.n += len(data)
            return len(data)

    counter = _Count()
    with open(path, "rb") as src, gzip.GzipFile(fileobj=counter, mode="wb", compresslevel=6) as gz:  # type: ignore[call-overload]
        while chunk := src.read(1 << 20):
            gz.write(chunk)
    return counter.n


@pytest.mark.parametrize("name", fixture_names())
def test_estimate_is_within_the_bound_of_a_full_gzip(
    name: str, engine: Engine, fixture_images: dict[str, str], tmp_path: Path
) -> None:
    saved = tmp_path / "image.tar"
    with open(saved, "wb") as out:
        engine.save_image(fixture_images[name], out)
    archive = open_archive("docker-archive", saved)
    estimate = estimate_image(archive.layers)
    full = 0
    for layer in archive.layers:
        plain = tmp_path / "layer.tar"
        with layer.open() as src, open(plain, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        full += _gzip_size(plain)
        plain.unlink()
    assert abs(estimate.bytes - full) <= ERROR_BOUND * full, (estimate, full)
    big = any(layer.stored_bytes > SAMPLES * BLOCK for layer in archive.layers)
    assert estimate.method == ("sampled" if big else "full")
