"""The one module that talks to the Docker engine (through the `docker` SDK).

Only the engine API is used, never host paths under /var/lib/docker, so every
operation also works against a remote engine named by DOCKER_HOST.
Everything slimmer creates carries the label `LABEL` so `slim cleanup` can find
leftovers. `Engine` implements `slimmer.engine_api.ContainerEngine`; engine and
transport failures become `EngineError` in one place (`_calling`).
"""

from __future__ import annotations

import io
import json
import secrets
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors
import requests.exceptions

from slimmer.engine_api import ContainerEngine, ImageInfo, Leftover
from slimmer.errors import (
    DiskFull,
    EngineError,
    EngineGone,
    ImageNotFound,
    RegistryAuthRefused,
    RegistryError,
    RegistryImageNotFound,
    RegistryTLSError,
    SlimError,
)
from slimmer.model import MANAGED_LABEL, SOURCE_LABEL

LABEL = MANAGED_LABEL
CHUNK = 1 << 20
# On every image one `build` makes, its own value: what the build left behind (a
# builder's intermediate stage images) is found by it and removed.
BUILD_LABEL = "io.slimmer.build"


# What the engine, the SDK or the transport raise when the engine fails. Anything
# else escaping a call is a bug of ours and reaches the user as an internal error.
_ENGINE_FAULTS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


@contextmanager
def _calling(action: str) -> Iterator[None]:
    """The one place engine failures become slimmer's errors, named by `action`."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise ImageNotFound(f"{action}: no such image") from exc
    except docker.errors.NotFound as exc:
        if says_image_missing(_explain(exc)):
            raise ImageNotFound(f"{action}: no such image") from exc
        raise EngineError(f"{action}: not found ({_explain(exc)})") from exc
    except _STREAM_FAULTS as exc:  # a response cut off mid-stream: the engine died
        raise EngineGone(action, f"the connection was cut ({_explain(exc)})") from exc
    except _ENGINE_FAULTS as exc:
        full = DiskFull.during(action, exc) if isinstance(exc, OSError) else None
        if full is not None:  # our disk, not the engine: streaming a save into TMPDIR
            raise full from exc
        gone = _gone(exc)
        if gone:
            raise EngineGone(action, gone) from exc
        raise EngineError(f"{action}: {_explain(exc)}") from exc


# A refused or dropped connection (or a vanished socket) means the engine itself
# went away, not that it refused one operation: the error says so.
_GONE = (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)
_STREAM_FAULTS = (requests.exceptions.ChunkedEncodingError,)


def _gone(exc: BaseException, depth: int = 0) -> str:
    """Why the engine is unreachable, when `exc` (or what it wraps) says it is; else ""."""
    if isinstance(exc, _GONE):
        return f"connection refused or dropped ({type(exc).__name__})"
    if isinstance(exc, FileNotFoundError) and depth:
        return "its socket is gone"
    if depth > 4:
        return ""
    inner = [exc.__cause__, exc.__context__, *(a for a in exc.args if isinstance(a, BaseException))]
    for sub in inner:
        why = _gone(sub, depth + 1) if sub is not None else ""
        if why:
            return why
    return ""


def says_image_missing(message: str) -> bool:
    """Whether an engine's 404 message says the image is missing: dockerd's
    "No such image: x" (or "reference does not exist" for `save`), or Podman's
    "failed to find image x: ...: image not known" (containers/storage's
    ErrImageUnknown, for `save` and `tag`), which the docker SDK does not class as
    ImageNotFound. A missing container or network is not a missing image."""
    said = message.lower()
    return any(words in said for words in _NO_IMAGE)


_NO_IMAGE = ("no such image", "reference does not exist", "image not known")


def _explain(exc: Exception) -> str:
    if isinstance(exc, docker.errors.APIError):
        return str(exc.explanation or exc)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class Engine:
    """A connection to one Docker engine; a context manager that closes it:
    `with Engine.connect() as engine: ...`."""

    def __init__(self, client: docker.DockerClient) -> None:
        self._client = client
        self._api = client.api

    # -- connection -------------------------------------------------------
    @classmethod
    def connect(cls, timeout: int = 600) -> Engine:
        try:
            client = docker.from_env(timeout=timeout)
            client.ping()
        except _ENGINE_FAULTS as exc:
            raise EngineError(
                f"connecting to the Docker engine: not reachable ({_explain(exc)}); "
                "start dockerd or set DOCKER_HOST"
            ) from exc
        return cls(client)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @cached_property
    def dialect(self) -> Dialect:
        """Which engine serves the Docker API here, and its naming rule."""
        with _calling("asking the engine for its version"):
            return dialect_of(self._api.version())

    def versions(self) -> tuple[str, str]:
        """(engine name and version, e.g. "Podman 4.3.1"; API version in use)."""
        d = self.dialect
        return f"{d.name} {d.version}", str(self._api.api_version)

    def platform(self) -> tuple[str, str]:
        """(OS, architecture) the engine runs containers for (`linux`, `amd64`)."""
        with _calling("asking the engine for its platform"):
            info = self._api.version()
        return str(info.get("Os", "")), str(info.get("Arch", ""))

    # -- images -------------------------------------------------------------
    def inspect_image(self, ref: str) -> ImageInfo:
        try:
            raw = self._api.inspect_image(ref)
        except docker.errors.NotFound as exc:
            raise ImageNotFound(f"looking up image {ref!r}: no such image on the engine") from exc
        except _ENGINE_FAULTS as exc:
            if _gone(exc):
                raise EngineGone(f"looking up image {ref!r}", _gone(exc)) from exc
            raise EngineError(f"looking up image {ref!r}: {_explain(exc)}") from exc
        cfg = raw.get("Config") or {}
        return ImageInfo(
            id=str(raw["Id"]),
            tags=tuple(raw.get("RepoTags") or ()),
            config=cfg,
            labels=dict(cfg.get("Labels") or {}),
            size=int(raw.get("Size") or 0),
            architecture=str(raw.get("Architecture", "")),
            os=str(raw.get("Os", "")),
            digests=tuple(str(d) for d in raw.get("RepoDigests") or ()),
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
        with _calling(f"saving image {ref!r}"):
            for chunk in self._api.get_image(ref, chunk_size=CHUNK):
                out.write(chunk)
                total += len(chunk)
        return total

    def load_image(self, archive: IO[bytes] | bytes | Iterable[bytes]) -> list[str]:
        """Load a `docker save`-format archive; return the loaded image IDs or tags."""
        with _calling("loading image"):
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
                        out.append(text[len(prefix) :].strip())
            return out

    def import_layer(self, layer: Iterable[bytes], labels: Mapping[str, str]) -> str | None:
        """Register `layer`, one uncompressed layer tar, as a new image of that layer
        alone (`docker import`), labelled `labels`; its ID. None, without reading
        `layer`, from an engine whose `docker load` does not take a layer so registered
        for an archive that names it without its bytes (Podman's reads every layer)."""
        if self.dialect.name != "Docker":
            return None
        changes = [f"LABEL {key}={value}" for key, value in labels.items()]
        with _calling("sending the slim layer"):
            answer = self._api.import_image_from_data(layer, changes=changes)
        image_id = ""
        for line in str(answer).splitlines():
            msg = json.loads(line) if line.strip() else {}
            if "error" in msg:
                raise EngineError(f"sending the slim layer: {msg['error']}")
            image_id = str(msg.get("status") or image_id)
        if not image_id.startswith("sha256:"):
            raise EngineError(f"sending the slim layer: the engine answered {answer!r:.200}")
        return image_id

    def tag_image(self, image_id: str, ref: str) -> None:
        """Tag `image_id` as `ref`, a short name qualified as the engine's own CLI
        qualifies it (`qualify`): Podman's `podman tag` stores `team/api:slim` as
        `localhost/team/api:slim`, which `podman run team/api:slim` finds first."""
        repo, tag = split_tag(qualify(ref, self.dialect.local_domain))
        with _calling(f"tagging {image_id[:19]} as {ref!r}"):
            self._api.tag(image_id, repo, tag or "latest")

    def remove_image(self, ref: str, force: bool = False) -> None:
        with _calling(f"removing image {ref!r}"), suppress(docker.errors.NotFound):
            self._api.remove_image(ref, force=force, noprune=False)

    def pull_image(
        self, ref: str, auth: Mapping[str, str] | None = None, platform: str | None = None
    ) -> None:
        """Pull `ref` from its registry through the engine, with `auth` (user, password)
        when given; `REPO@sha256:...` pulls that manifest. The engine's answers become
        `RegistryError`s (see `_registry_error`)."""
        repo, tag = ref.split("@", 1) if "@" in ref else split_tag(ref)  # the API's `tag`
        with _calling(f"pulling {ref}"), _registry_faults(f"pulling {ref}"):  # holds a digest
            stream = self._api.pull(
                repo,
                tag=tag or "latest",
                stream=True,
                decode=True,
                auth_config=dict(auth) if auth else None,
                platform=platform,
            )
            _raise_stream_error(f"pulling {ref}", stream)

    def push_image(self, ref: str, auth: Mapping[str, str] | None = None) -> str:
        """Push `ref` to its registry through the engine; return the pushed digest."""
        repo, tag = split_tag(ref)
        with _calling(f"pushing {ref}"), _registry_faults(f"pushing {ref}"):
            stream = self._api.push(
                repo,
                tag=tag or "latest",
                stream=True,
                decode=True,
                auth_config=dict(auth) if auth else None,
            )
            return _raise_stream_error(f"pushing {ref}", stream)

    def import_rootfs(self, tar_path: Path, tag: str, changes: list[str] | None = None) -> str:
        """Import a root filesystem tarball as a one-layer image (`docker import`)."""
        repo, t = split_tag(qualify(tag, self.dialect.local_domain))
        with _calling(f"importing {tar_path} as {tag!r}"):
            with open(tar_path, "rb") as fh:
                self._api.import_image_from_data(
                    fh, repository=repo, tag=t or "latest", changes=changes or []
                )
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
        """Build `context/Dockerfile` as `tag`; stream the build log into `log`.

        Every image the build makes carries `BUILD_LABEL` with this build's own token.
        A builder that keeps intermediate stages as untagged images (Podman's buildah
        keeps the `FROM ... AS app` stage, labelled like the result) leaves them found
        by it; they are removed here, and so is everything a build that failed or was
        interrupted made. The built image itself is the caller's."""
        token = secrets.token_hex(8)
        all_labels = {**(labels or {}), BUILD_LABEL: token}
        try:
            built = self._build(context, tag, all_labels, buildargs or {}, log)
        except BaseException:
            with suppress(SlimError):  # the build's own failure is the one to report
                self._remove_built(token, keep="")
            raise
        self._remove_built(token, keep=built)
        return built

    def _build(
        self,
        context: Path,
        tag: str,
        labels: Mapping[str, str],
        buildargs: Mapping[str, str],
        log: IO[str] | None,
    ) -> str:
        with _calling(f"building {tag!r} from {context}"):
            stream = self._api.build(
                path=str(context),
                tag=tag,
                labels=dict(labels),
                buildargs=dict(buildargs),
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
        return self.inspect_image(tag).id

    def _remove_built(self, token: str, keep: str) -> None:
        """Remove every image the build `token` made except `keep` (its result) and the
        images `keep` stands on: dockerd's classic builder leaves each step's image as
        a parent of the result (removed with it; removing one first is a conflict),
        while buildah leaves a finished stage as an image of its own. Newest first, so
        a child goes before its parent."""
        with _calling("listing the images a build made"):
            made = self._api.images(all=True, filters={"label": f"{BUILD_LABEL}={token}"})
            line = (
                {_bare_id(str(h.get("Id", ""))) for h in self._api.history(keep)} if keep else set()
            )
        for image in sorted(made, key=lambda i: int(i.get("Created") or 0), reverse=True):
            image_id = str(image["Id"])
            if _bare_id(image_id) not in line | {_bare_id(keep)}:
                self.remove_image(image_id, force=True)

    # -- containers ---------------------------------------------------------
    def create_container(self, image: str, **kwargs: Any) -> str:
        """Create a labelled container. `networks`, a sequence of (name, aliases), joins
        those networks before it starts: the first at create (the caller's host config
        names it as `network_mode`), the others connected next, each with its aliases
        (engine API 1.41 takes one network at create)."""
        labels = dict(kwargs.pop("labels", None) or {})
        labels[LABEL] = "true"
        networks = [(str(n), list(a)) for n, a in kwargs.pop("networks", None) or ()]
        if networks:
            first, aliases = networks[0]
            endpoint = self._api.create_endpoint_config(aliases=aliases or None)
            kwargs["networking_config"] = self._api.create_networking_config({first: endpoint})
        # named here, so a container whose ID never came back (Ctrl-C while the engine
        # was creating it) can still be found and removed
        name = kwargs.pop("name", None) or f"slimmer-{secrets.token_hex(6)}"
        try:
            with _calling(f"creating a container of {image!r}"):
                res = self._api.create_container(image, labels=labels, name=name, **kwargs)
            ctr = str(res["Id"])
            try:
                for network, more in networks[1:]:
                    with _calling(f"connecting container {ctr[:12]} to network {network!r}"):
                        self._api.connect_container_to_network(ctr, network, aliases=more or None)
            except BaseException:
                self.remove_container(ctr)
                raise
        except (KeyboardInterrupt, SystemExit):  # the engine's answer was not awaited
            self._remove_late(name)
            raise
        return ctr

    def _remove_late(self, name: str) -> None:
        """Remove the container `name` if the engine made it after all: its create call
        may still be in flight when the caller gave up, so look again a few times."""
        for _ in range(4):
            try:
                self._api.remove_container(name, force=True, v=True)
                return
            except docker.errors.NotFound:
                time.sleep(0.25)
            except (docker.errors.DockerException, requests.exceptions.RequestException):
                return  # the engine is gone or refuses: `slim cleanup` finds it by label

    def host_config(self, **kwargs: Any) -> Any:
        with _calling("preparing a container's host settings"):
            return self._api.create_host_config(**kwargs)

    def put_archive(self, container: str, path: str, data: bytes) -> None:
        with _calling(f"copying files into container {container[:12]}"):
            self._api.put_archive(container, path, data)

    def get_archive(self, container: str, path: str) -> Iterator[bytes]:
        with _calling(f"copying {path} out of container {container[:12]}"):
            stream, _ = self._api.get_archive(container, path, chunk_size=CHUNK)
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
        with _calling(f"starting container {container[:12]}"):
            self._api.start(container)

    def inspect_container(self, container: str) -> Mapping[str, Any]:
        with _calling(f"inspecting container {container[:12]}"):
            return dict(self._api.inspect_container(container))

    def wait(self, container: str, timeout: float) -> int | None:
        """Wait for the container to exit; None when `timeout` passes first."""
        with _calling(f"waiting for container {container[:12]}"):
            try:
                res = self._api.wait(container, timeout=timeout)
            except requests.exceptions.ReadTimeout:
                return None
            except requests.exceptions.ConnectionError as exc:
                if "timed out" in str(exc).lower():
                    return None
                raise
        return int(res.get("StatusCode", -1))

    def logs(self, container: str, stdout: bool = True, stderr: bool = True) -> bytes:
        with _calling(f"reading logs of container {container[:12]}"):
            return bytes(self._api.logs(container, stdout=stdout, stderr=stderr))

    def kill(self, container: str, signal: str = "SIGKILL") -> None:
        # An APIError here means the container has already stopped.
        with _calling(f"stopping container {container[:12]}"), suppress(docker.errors.APIError):
            self._api.kill(container, signal=signal)

    def exec(self, container: str, cmd: list[str], user: str = "") -> tuple[int, bytes]:
        with _calling(f"running {cmd!r} in container {container[:12]}"):
            ex = self._api.exec_create(container, cmd, user=user, stdout=True, stderr=True)
            out = self._api.exec_start(ex["Id"])
            code = self._api.exec_inspect(ex["Id"]).get("ExitCode")
        return int(code if code is not None else -1), bytes(out)

    def published_ports(self, container: str, ports: Iterable[int]) -> dict[int, tuple[str, int]]:
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
        with _calling(f"removing container {container[:12]}"), suppress(docker.errors.NotFound):
            self._api.remove_container(container, force=True, v=True)

    # -- networks -------------------------------------------------------------
    def create_network(self, name: str) -> str:
        """Create a labelled bridge network `name` (for a run's context); its ID."""
        with _calling(f"creating network {name!r}"):
            res = self._api.create_network(name, driver="bridge", labels={LABEL: "true"})
        return str(res["Id"])

    def remove_network(self, name: str) -> None:
        with _calling(f"removing network {name!r}"), suppress(docker.errors.NotFound):
            self._api.remove_network(name)

    # -- hygiene --------------------------------------------------------------
    def leftovers(self) -> list[Leftover]:
        """Everything on the engine that carries slimmer's label."""
        flt = {"label": LABEL}
        out: list[Leftover] = []
        with _calling("listing slimmer's leftovers"):
            for c in self._api.containers(all=True, filters=flt):
                out.append(Leftover("container", c["Id"], ",".join(c.get("Names") or ())))
            for v in (self._api.volumes(filters=flt) or {}).get("Volumes") or ():
                out.append(Leftover("volume", v["Name"], v["Name"]))
            for n in self._api.networks(filters=flt):
                out.append(Leftover("network", n["Id"], str(n.get("Name") or "")))
            for i in self._api.images(filters=flt):
                tags = [t for t in i.get("RepoTags") or () if t != "<none>:<none>"]
                if (i.get("Labels") or {}).get(LABEL) == "temporary":
                    out.append(Leftover("image", i["Id"], ",".join(tags)))
            # Slim images that were never tagged: a run that failed or was interrupted.
            # Judged by their tags, not the `dangling` filter, which Podman answers by
            # other rules; an untagged image another stands on is not listed (not `all`).
            for i in self._api.images(filters={"label": SOURCE_LABEL}):
                if not any(t != "<none>:<none>" for t in i.get("RepoTags") or ()):
                    out.append(Leftover("image", i["Id"], "untagged slim image"))
        return out

    def remove_leftover(self, item: Leftover) -> None:
        if item.kind == "container":
            self.remove_container(item.id)
        elif item.kind == "network":
            self.remove_network(item.id)
        elif item.kind == "volume":
            with _calling(f"removing volume {item.id}"), suppress(docker.errors.NotFound):
                self._api.remove_volume(item.id, force=True)
        else:
            self.remove_image(item.id, force=True)


@contextmanager
def _registry_faults(action: str) -> Iterator[None]:
    """The engine's refusals of a pull or push (HTTP errors of its API) as registry errors."""
    try:
        yield
    except docker.errors.APIError as exc:
        raise _registry_error(action, str(exc.explanation or exc)) from exc


def _raise_stream_error(action: str, stream: Iterable[Any]) -> str:
    """Read a pull or push progress stream to its end; its error line raises. Returns
    the digest a push reports (`... digest: sha256:... size: N`), else ""."""
    digest = ""
    for msg in stream:
        if not isinstance(msg, dict):
            continue
        if msg.get("error"):
            raise _registry_error(action, str(msg["error"]))
        status = str(msg.get("status", ""))
        if "digest: sha256:" in status:
            digest = "sha256:" + status.split("digest: sha256:", 1)[1].split()[0]
        aux = msg.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
            digest = aux["Digest"]
    return digest


def _registry_error(action: str, text: str) -> RegistryError:
    """The engine's one-line registry error as slimmer's: not found (8), auth (9), TLS (10)."""
    low = text.lower()
    if "x509" in low or "certificate" in low or "tls" in low:
        return RegistryTLSError(f"{action}: TLS failed ({text})")
    if any(word in low for word in ("unauthorized", "authentication required", "denied",
                                    "no basic auth credentials")):  # fmt: skip
        return RegistryAuthRefused(f"{action}: the registry refused the login ({text})")
    if "not found" in low or "manifest unknown" in low or "does not exist" in low:
        return RegistryImageNotFound(f"{action}: no such image in the registry ({text})")
    return RegistryError(f"{action}: {text}")


@dataclass(frozen=True)
class Dialect:
    """Which engine serves the Docker API, and where its differences lie.

    `local_domain` is the registry part the engine's own CLI puts before a short
    name given to a local image: none for Docker (`docker tag` keeps `team/api`,
    shown as given), `localhost` for Podman (`podman tag`, `podman build` and
    `podman load` store `team/api` as `localhost/team/api`, while Podman's
    Docker-compatible API alone would store it as `docker.io/team/api`)."""

    name: str  # "Docker", "Podman"
    version: str
    local_domain: str = ""


def dialect_of(version: Mapping[str, Any]) -> Dialect:
    """The dialect of an engine from its `GET /version` answer. Its `Components`
    name the engine: dockerd's is `Engine`, Podman's `Podman Engine`."""
    for comp in version.get("Components") or ():
        name = str(comp.get("Name", ""))
        if name == "Engine" or name.endswith(" Engine"):
            product = name.removesuffix("Engine").strip() or "Docker"
            number = str(comp.get("Version") or version.get("Version") or "?")
            return Dialect(product, number, "localhost" if product == "Podman" else "")
    return Dialect("Docker", str(version.get("Version", "?")))


def qualify(ref: str, local_domain: str) -> str:
    """`ref` with `local_domain` before it when it names no registry. The first part
    of a reference is a registry when it holds a `.` or a `:` or is `localhost`
    (the rule of docker/distribution's `reference` package)."""
    if not local_domain or ("/" in ref and _is_domain(ref.split("/", 1)[0])):
        return ref
    return f"{local_domain}/{ref}"


def _is_domain(part: str) -> bool:
    return "." in part or ":" in part or part == "localhost"


def _bare_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")


def split_tag(ref: str) -> tuple[str, str]:
    """Split "repo[:tag]" (the repo may have a registry port) into repo and tag."""
    if "@" in ref:
        return ref, ""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, ""


def saver(engine: ContainerEngine) -> Callable[[str, Path], str]:
    """A function that saves an engine image into a file and returns its ID."""

    def save(ref: str, dest: Path) -> str:
        image_id = engine.inspect_image(ref).id
        with open(dest, "wb") as out:
            engine.save_image(image_id, out)
        return image_id

    return save
