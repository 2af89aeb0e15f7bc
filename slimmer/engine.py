"""The one module that talks to the Docker engine (through the `docker` SDK).

Only the engine API is used, never host paths under /var/lib/docker, so every
operation also works against a remote engine named by DOCKER_HOST.
Everything slimmer creates carries the label `LABEL` so `slim cleanup` can find
leftovers.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors
import requests.exceptions

from slimmer.errors import EngineError, ImageNotFound, SlimError
from slimmer.model import MANAGED_LABEL, SOURCE_LABEL

LABEL = MANAGED_LABEL
CHUNK = 1 << 20


@dataclass(frozen=True)
class ImageInfo:
    id: str
    tags: tuple[str, ...]
    config: Mapping[str, Any]
    labels: Mapping[str, str]
    size: int
    architecture: str
    os: str


@dataclass(frozen=True)
class Leftover:
    kind: str  # "container", "image", "volume"
    id: str
    name: str


def _wrap(action: str, exc: Exception) -> SlimError:
    if isinstance(exc, docker.errors.ImageNotFound):
        return ImageNotFound(f"{action}: no such image")
    if isinstance(exc, docker.errors.NotFound):
        return EngineError(f"{action}: not found ({_explain(exc)})")
    if isinstance(exc, (requests.exceptions.ConnectionError, docker.errors.DockerException)):
        return EngineError(f"{action}: {_explain(exc)}")
    return EngineError(f"{action}: {exc}")


def _explain(exc: Exception) -> str:
    if isinstance(exc, docker.errors.APIError):
        return str(exc.explanation or exc)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class Engine:
    """A connection to one Docker engine."""

    def __init__(self, client: docker.DockerClient) -> None:
        self._client = client
        self._api = client.api

    # -- connection -------------------------------------------------------
    @classmethod
    def connect(cls, timeout: int = 600) -> Engine:
        try:
            client = docker.from_env(timeout=timeout)
            client.ping()
        except Exception as exc:  # the SDK raises several unrelated types here
            raise EngineError(
                f"connecting to the Docker engine: not reachable ({_explain(exc)}); "
                "start dockerd or set DOCKER_HOST"
            ) from exc
        return cls(client)

    def close(self) -> None:
        self._client.close()

    def versions(self) -> tuple[str, str]:
        """(engine version, API version in use) as the engine reports them."""
        try:
            info = self._api.version()
        except Exception as exc:
            raise _wrap("asking the engine for its version", exc) from exc
        return str(info.get("Version", "?")), str(self._api.api_version)

    # -- images -------------------------------------------------------------
    def inspect_image(self, ref: str) -> ImageInfo:
        try:
            raw = self._api.inspect_image(ref)
        except Exception as exc:
            err = _wrap(f"looking up image {ref!r}", exc)
            if isinstance(exc, docker.errors.NotFound):
                err = ImageNotFound(f"looking up image {ref!r}: no such image on the engine")
            raise err from exc
        cfg = raw.get("Config") or {}
        return ImageInfo(
            id=str(raw["Id"]),
            tags=tuple(raw.get("RepoTags") or ()),
            config=cfg,
            labels=dict(cfg.get("Labels") or {}),
            size=int(raw.get("Size") or 0),
            architecture=str(raw.get("Architecture", "")),
            os=str(raw.get("Os", "")),
        )

    def image_exists(self, ref: str) -> bool:
        try:
            self.inspect_image(ref)
        except ImageNotFound:
            return False
        return True

    def save_image(self, ref: str, out: IO[bytes]) -> int:
        """Stream `docker save REF` into `out`; return the number of bytes."""
        total = 0
        try:
            for chunk in self._api.get_image(ref, chunk_size=CHUNK):
                out.write(chunk)
                total += len(chunk)
        except Exception as exc:
            raise _wrap(f"saving image {ref!r}", exc) from exc
        return total

    def load_image(self, archive: IO[bytes] | bytes | Iterable[bytes]) -> list[str]:
        """Load a `docker save`-format archive; return the loaded image IDs or tags."""
        try:
            data: Any = archive
            if hasattr(archive, "read"):
                data = iter(lambda: archive.read(CHUNK), b"")
            out: list[str] = []
            for msg in self._api.load_image(data):
                text = str(msg.get("stream", "")) if isinstance(msg, dict) else ""
                if "error" in (msg if isinstance(msg, dict) else {}):
                    raise EngineError(f"loading image: {msg['error']}")
                for prefix in ("Loaded image ID: ", "Loaded image: "):
                    if text.startswith(prefix):
                        out.append(text[len(prefix):].strip())
            return out
        except SlimError:
            raise
        except Exception as exc:
            raise _wrap("loading image", exc) from exc

    def tag_image(self, image_id: str, ref: str) -> None:
        repo, tag = split_tag(ref)
        try:
            self._api.tag(image_id, repo, tag or "latest")
        except Exception as exc:
            raise _wrap(f"tagging {image_id[:19]} as {ref!r}", exc) from exc

    def remove_image(self, ref: str, force: bool = False) -> None:
        try:
            self._api.remove_image(ref, force=force, noprune=False)
        except docker.errors.NotFound:
            return
        except Exception as exc:
            raise _wrap(f"removing image {ref!r}", exc) from exc

    def import_rootfs(self, tar_path: Path, tag: str, changes: list[str] | None = None) -> str:
        """Import a root filesystem tarball as a one-layer image (`docker import`)."""
        repo, t = split_tag(tag)
        try:
            with open(tar_path, "rb") as fh:
                self._api.import_image_from_data(
                    fh, repository=repo, tag=t or "latest", changes=changes or []
                )
        except Exception as exc:
            raise _wrap(f"importing {tar_path} as {tag!r}", exc) from exc
        return self.inspect_image(tag).id

    def build(
        self,
        context: Path,
        tag: str,
        *,
        labels: Mapping[str, str] | None = None,
        buildargs: Mapping[str, str] | None = None,
        log: IO[str] | None = None,
    ) -> str:
        """Build `context/Dockerfile` as `tag`; stream the build log into `log`."""
        try:
            stream = self._api.build(
                path=str(context),
                tag=tag,
                labels=dict(labels or {}),
                buildargs=dict(buildargs or {}),
                rm=True,
                forcerm=True,
                decode=True,
                pull=False,
                network_mode="default",
            )
            last = ""
            for msg in stream:
                if "error" in msg:
                    raise EngineError(
                        f"building {tag!r} from {context}: {str(msg['error']).strip()}\n{last}"
                    )
                text = str(msg.get("stream", ""))
                if text:
                    last = (last + text)[-4000:]
                    if log is not None:
                        log.write(text)
        except SlimError:
            raise
        except Exception as exc:
            raise _wrap(f"building {tag!r} from {context}", exc) from exc
        return self.inspect_image(tag).id

    # -- containers ---------------------------------------------------------
    def create_container(self, image: str, **kwargs: Any) -> str:
        labels = dict(kwargs.pop("labels", None) or {})
        labels[LABEL] = "true"
        try:
            res = self._api.create_container(image, labels=labels, **kwargs)
        except Exception as exc:
            raise _wrap(f"creating a container of {image!r}", exc) from exc
        return str(res["Id"])

    def host_config(self, **kwargs: Any) -> Any:
        return self._api.create_host_config(**kwargs)

    def put_archive(self, container: str, path: str, data: bytes) -> None:
        try:
            self._api.put_archive(container, path, data)
        except Exception as exc:
            raise _wrap(f"copying files into container {container[:12]}", exc) from exc

    def get_archive(self, container: str, path: str) -> Iterator[bytes]:
        try:
            stream, _ = self._api.get_archive(container, path, chunk_size=CHUNK)
        except Exception as exc:
            raise _wrap(f"copying {path} out of container {container[:12]}", exc) from exc
        return iter(stream)

    def read_file(self, container: str, path: str) -> bytes:
        """Read one regular file out of a container (created or stopped)."""
        buf = io.BytesIO(b"".join(self.get_archive(container, path)))
        with tarfile.open(fileobj=buf) as tf:
            for member in tf:
                if member.isfile():
                    fh = tf.extractfile(member)
                    return fh.read() if fh else b""
        return b""

    def start(self, container: str) -> None:
        try:
            self._api.start(container)
        except Exception as exc:
            raise _wrap(f"starting container {container[:12]}", exc) from exc

    def inspect_container(self, container: str) -> Mapping[str, Any]:
        try:
            return dict(self._api.inspect_container(container))
        except Exception as exc:
            raise _wrap(f"inspecting container {container[:12]}", exc) from exc

    def wait(self, container: str, timeout: float) -> int | None:
        """Wait for the container to exit; None when `timeout` passes first."""
        try:
            res = self._api.wait(container, timeout=timeout)
        except requests.exceptions.ReadTimeout:
            return None
        except requests.exceptions.ConnectionError as exc:
            if "timed out" in str(exc).lower():
                return None
            raise _wrap(f"waiting for container {container[:12]}", exc) from exc
        except Exception as exc:
            raise _wrap(f"waiting for container {container[:12]}", exc) from exc
        return int(res.get("StatusCode", -1))

    def logs(self, container: str, stdout: bool = True, stderr: bool = True) -> bytes:
        try:
            return bytes(self._api.logs(container, stdout=stdout, stderr=stderr))
        except Exception as exc:
            raise _wrap(f"reading logs of container {container[:12]}", exc) from exc

    def kill(self, container: str, signal: str = "SIGKILL") -> None:
        try:
            self._api.kill(container, signal=signal)
        except docker.errors.APIError:
            pass  # already stopped

    def exec(self, container: str, cmd: list[str], user: str = "") -> tuple[int, bytes]:
        try:
            ex = self._api.exec_create(container, cmd, user=user, stdout=True, stderr=True)
            out = self._api.exec_start(ex["Id"])
            code = self._api.exec_inspect(ex["Id"]).get("ExitCode")
        except Exception as exc:
            raise _wrap(f"running {cmd!r} in container {container[:12]}", exc) from exc
        return int(code if code is not None else -1), bytes(out)

    def published_ports(
        self, container: str, ports: Iterable[int]
    ) -> dict[int, tuple[str, int]]:
        """Container TCP port -> (host address, host port) of each published one."""
        out: dict[int, tuple[str, int]] = {}
        for port in ports:
            binding = self.port_binding(container, f"{port}/tcp")
            if binding is not None:
                out[port] = binding
        return out

    def port_binding(self, container: str, port: str) -> tuple[str, int] | None:
        info = self.inspect_container(container)
        ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
        for binding in ports.get(port) or ():
            return str(binding.get("HostIp") or "127.0.0.1"), int(binding["HostPort"])
        return None

    def remove_container(self, container: str) -> None:
        try:
            self._api.remove_container(container, force=True, v=True)
        except docker.errors.NotFound:
            return
        except Exception as exc:
            raise _wrap(f"removing container {container[:12]}", exc) from exc

    # -- hygiene --------------------------------------------------------------
    def leftovers(self) -> list[Leftover]:
        """Everything on the engine that carries slimmer's label."""
        flt = {"label": LABEL}
        out: list[Leftover] = []
        try:
            for c in self._api.containers(all=True, filters=flt):
                out.append(Leftover("container", c["Id"], ",".join(c.get("Names") or ())))
            for v in (self._api.volumes(filters=flt) or {}).get("Volumes") or ():
                out.append(Leftover("volume", v["Name"], v["Name"]))
            for i in self._api.images(filters=flt):
                tags = [t for t in i.get("RepoTags") or () if t != "<none>:<none>"]
                if (i.get("Labels") or {}).get(LABEL) == "temporary":
                    out.append(Leftover("image", i["Id"], ",".join(tags)))
            # Slim images that were never tagged: a run that failed or was interrupted.
            for i in self._api.images(filters={"label": SOURCE_LABEL, "dangling": True}):
                out.append(Leftover("image", i["Id"], "untagged slim image"))
        except Exception as exc:
            raise _wrap("listing slimmer's leftovers", exc) from exc
        return out

    def remove_leftover(self, item: Leftover) -> None:
        if item.kind == "container":
            self.remove_container(item.id)
        elif item.kind == "volume":
            try:
                self._api.remove_volume(item.id, force=True)
            except docker.errors.NotFound:
                pass
        else:
            self.remove_image(item.id, force=True)


def split_tag(ref: str) -> tuple[str, str]:
    """Split "repo[:tag]" (the repo may have a registry port) into repo and tag."""
    if "@" in ref:
        return ref, ""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, ""


def saver(engine: Engine) -> Callable[[str, Path], str]:
    """A function that saves an engine image into a file and returns its ID."""

    def save(ref: str, dest: Path) -> str:
        image_id = engine.inspect_image(ref).id
        with open(dest, "wb") as out:
            engine.save_image(image_id, out)
        return image_id

    return save
