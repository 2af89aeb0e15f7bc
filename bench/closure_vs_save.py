"""The ELF closure of every ELF file of an image, timed against the engine's
`docker save` of the same image (one run, reported as a ratio).

    python -m bench.closure_vs_save [IMAGE]   (default: the java-http fixture)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from slimmer.elf.loader import closure
from slimmer.engine import Engine
from slimmer.image.filetree import keep_all
from slimmer.image.reader import open_image


def main() -> None:
    image = sys.argv[1] if len(sys.argv) > 1 else "slimmer-fixture/java-http:latest"
    with Engine.connect() as engine:
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "image.tar"
            start = time.monotonic()
            with open(archive, "wb") as out:
                engine.save_image(image, out)
            save = time.monotonic() - start
            with open_image(f"docker-archive:{archive}", want=keep_all, workdir=Path(tmp)) as img:
                elf = sorted(e.path for e in img.tree if e.is_elf and e.type.value == "file")
                start = time.monotonic()
                found = closure(img.tree, elf, img.config.env, img.config.working_dir or "/")
                took = time.monotonic() - start
        print(f"image: {image}")
        print(f"engine save: {save:.2f} s ({archive.name})")
        print(
            f"closure of {len(elf)} ELF files: {took:.2f} s, {len(found.files)} files, "
            f"{len(found.edges)} edges, {len(found.missing)} missing, "
            f"{len(found.warnings)} warnings"
        )
        print(f"ratio closure/save: {took / save:.2f}")


if __name__ == "__main__":
    main()
