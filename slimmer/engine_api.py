"""What the stages need from a container engine, as a `Protocol`.

`slimmer.engine.Engine` (the Docker SDK) is the one implementation; tests pass
any object with these methods (no `cast`). The values here carry no SDK types.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol


@dataclass(frozen=True)
class ImageInfo:
    id: str
    tags: tuple[str, ...]
    config: Mapping[str, Any]
    labels: Mapping[str, str]
    size: int
    architecture: str
    os: str
    digests: tuple[str, ...] = ()  # RepoDigests: name@sha256:... of a registry manifest


@dataclass(frozen=True)
class Leftover:
    kind: str  # "container", "image", "volume", "network"
    id: str
    name: str


class ContainerEngine(Protocol):
    """Images and containers, as slimmer's stages use them. Every method raises
    `EngineError` (or `ImageNotFound`) for a failure of the engine or its transport."""

    # the engine
    def versions(self) -> tuple[str, str]:
        """(the engine's name and version, "Docker 20.10.24" or "Podman 4.3.1"; the API
        version in use)."""
        ...

    def platform(self) -> tuple[str, str]:
        """(OS, architecture) the engine runs containers for, in its names (`linux`, `amd64`)."""
        ...

    # images
    def inspect_image(self, ref: str) -> ImageInfo: ...
    def image_exists(self, ref: str) -> bool: ...
    def save_image(self, ref: str, out: IO[bytes]) -> int: ...
    def load_image(self, archive: IO[bytes] | bytes | Iterable[bytes]) -> list[str]: ...
    def import_layer(self, layer: Iterable[bytes], labels: Mapping[str, str]) -> str | None:
        """Register one uncompressed layer tar as an image of it alone; its ID, or None
        (`layer` unread) where a later `load_image` would not take the layer so
        registered for an archive that names it without its bytes."""
        ...

    def tag_image(self, image_id: str, ref: str) -> None: ...
    def remove_image(self, ref: str, force: bool = False) -> None: ...
    def build(
        self,
        context: Path,
        tag: str,
        *,
        labels: Mapping[str, str] | None = None,
        buildargs: Mapping[str, str] | None = None,
        log: IO[str] | None = None,
    ) -> str: ...

    # containers
    # `create_container` takes the SDK's keywords, plus `networks`: (name, aliases) pairs
    # the container joins before it starts (the host config's `network_mode` names the first)
    def create_container(self, image: str, **kwargs: Any) -> str: ...
    def host_config(self, **kwargs: Any) -> Any: ...
    def put_archive(self, container: str, path: str, data: bytes) -> None: ...
    def get_archive(self, container: str, path: str) -> Iterator[bytes]: ...
    def read_file(self, container: str, path: str) -> bytes: ...
    def start(self, container: str) -> None: ...
    def inspect_container(self, container: str) -> Mapping[str, Any]: ...
    def wait(self, container: str, timeout: float) -> int | None: ...
    def logs(self, container: str, stdout: bool = True, stderr: bool = True) -> bytes: ...
    def kill(self, container: str, signal: str = "SIGKILL") -> None: ...
    def exec(self, container: str, cmd: list[str], user: str = "") -> tuple[int, bytes]: ...
    def published_ports(
        self, container: str, ports: Iterable[int]
    ) -> dict[int, tuple[str, int]]: ...
    def port_binding(self, container: str, port: str) -> tuple[str, int] | None: ...
    def remove_container(self, container: str) -> None: ...

    # hygiene
    def leftovers(self) -> list[Leftover]: ...
    def remove_leftover(self, item: Leftover) -> None: ...
