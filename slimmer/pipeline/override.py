"""The override `slim compose` writes (`compose.slim.yml`): each service that passed
pointed at its slim image, so that `docker compose -f compose.yml -f compose.slim.yml
up` runs the slim project. It holds image references only; everything else of a
service (environment, secrets, volumes, networks) stays in the user's compose file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from slimmer.errors import UsageError

OVERRIDE_NAME = "compose.slim.yml"
# The first line of every override slim compose writes; a file at the override's
# path that does not start with it is the user's and is never overwritten.
OVERRIDE_HEADER = "# Written by `slim compose`"


def refuse_foreign_override(path: Path) -> None:
    """An existing file at the override's path must be one slim compose wrote."""
    if not path.exists():
        return
    try:
        first = path.read_text(errors="replace").splitlines()[:1]
    except OSError as exc:
        raise UsageError(f"-o {path}: {exc.strerror}") from exc
    if not first or not first[0].startswith(OVERRIDE_HEADER):
        raise UsageError(
            f"-o {path}: the file exists and slim compose did not write it; "
            "remove it or write the override elsewhere with -o"
        )


def override_text(compose_file: Path, override: Path, images: Sequence[tuple[str, str]]) -> str:
    """The override that runs each (service, slim tag) of `images` in place of the
    service's own image. `build: !reset null` (Compose 2.24 or later) drops the
    service's build, so that `up` never builds the original under the slim tag when
    that tag is missing. Only references are written: the service's environment,
    secrets and volumes stay in the compose file, where they are. Keys and values are
    JSON strings (valid YAML double-quoted scalars)."""
    here = override.parent == compose_file.parent
    first, second = (compose_file.name, override.name) if here else (compose_file, override)
    lines = [
        f"{OVERRIDE_HEADER} from {compose_file.name}: the slim image of each service",
        "# below, verified in the project's context. Run the slim project with:",
        f"#   docker compose -f {first} -f {second} up",
        "services:",
    ]
    for service, tag in sorted(images):
        lines += [
            f"  {json.dumps(service)}:",
            f"    image: {json.dumps(tag)}",
            "    build: !reset null",
        ]
    return "\n".join(lines) + "\n"
