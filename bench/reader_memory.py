"""Peak memory of reading an image (`slim inspect`), small and large, in child
processes: the reader streams layers, so the peak should not grow with the
image's bytes (only with its file count).

    python -m bench.reader_memory IMAGE...
"""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import resource, sys
from slimmer import api
ins = api.inspect_image(sys.argv[1])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(ins.size_bytes, ins.files, peak)
"""


def main() -> None:
    images = sys.argv[1:] or [
        "slimmer-fixture/c-static:latest",
        "slimmer-fixture/layers:latest",
        "slimmer-fixture/java-http:latest",
    ]
    print("| image | bytes | files | peak RSS |")
    print("|---|---:|---:|---:|")
    for image in images:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, image], capture_output=True, text=True, check=True
        ).stdout.split()
        size, files, peak_kib = (int(x) for x in out)
        print(f"| {image} | {size / 1e6:.1f} MB | {files} | {peak_kib / 1024:.0f} MiB |")


if __name__ == "__main__":
    main()
