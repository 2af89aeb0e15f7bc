"""An engine for unit tests: every `ContainerEngine` method fails the test unless a
subclass overrides it, so a fake states exactly which calls it expects."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, NoReturn

from slimmer.engine_api import ContainerEngine, ImageInfo, Leftover


def _unused(name: str) -> NoReturn:
    raise AssertionError(f"the code under test called engine.{name}(), which this fake lacks")


class UnusedEngine(ContainerEngine):
    """Implements the protocol; each method says it was not expected."""

    def versions(self) -> tuple[str, str]:
        _unused("versions")

    def platform(self) -> tuple[str, str]:
        _unused("platform")

    def inspect_image(self, ref: str) -> ImageInfo:
        _unused("inspect_image")

    def image_exists(self, ref: str) -> bool:
        _unused("image_exists")

    def save_image(self, ref: str, out: IO[bytes]) -> int:
        _unused("save_image")

    def load_image(self, archive: IO[bytes] | bytes | Iterable[bytes]) -> list[str]:
        _unused("load_image")

    def import_layer(self, layer: Iterable[bytes], labels: Mapping[str, str]) -> str | None:
        _unused("import_layer")

    def tag_image(self, image_id: str, ref: str) -> None:
        _unused("tag_image")

    def remove_image(self, ref: str, force: bool = False) -> None:
        _unused("remove_image")

    def build(
        self,
        context: Path,
        tag: str,
        *,
        labels: Mapping[str, str] | None = None,
        buildargs: Mapping[str, str] | None = None,
        log: IO[str] | None = None,
    ) -> str:
        _unused("build")

    def create_container(self, image: str, **kwargs: Any) -> str:
        _unused("create_container")

    def host_config(self, **kwargs: Any) -> Any:
        _unused("host_config")

    def put_archive(self, container: str, path: str, data: bytes) -> None:
        _unused("put_archive")

    def get_archive(self, container: str, path: str) -> Iterator[bytes]:
        _unused("get_archive")

    def read_file(self, container: str, path: str) -> bytes:
        _unused("read_file")

    def start(self, container: str) -> None:
        _unused("start")

    def inspect_container(self, container: str) -> Mapping[str, Any]:
        _unused("inspect_container")

    def wait(self, container: str, timeout: float) -> int | None:
        _unused("wait")

    def logs(self, container: str, stdout: bool = True, stderr: bool = True) -> bytes:
        _unused("logs")

    def kill(self, container: str, signal: str = "SIGKILL") -> None:
        _unused("kill")

    def exec(self, container: str, cmd: list[str], user: str = "") -> tuple[int, bytes]:
        _unused("exec")

    def published_ports(self, container: str, ports: Iterable[int]) -> dict[int, tuple[str, int]]:
        _unused("published_ports")

    def port_binding(self, container: str, port: str) -> tuple[str, int] | None:
        _unused("port_binding")

    def remove_container(self, container: str) -> None:
        _unused("remove_container")

    def leftovers(self) -> list[Leftover]:
        _unused("leftovers")

    def remove_leftover(self, item: Leftover) -> None:
        _unused("remove_leftover")
