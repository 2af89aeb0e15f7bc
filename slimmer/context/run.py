"""The run context: what a service needs around it to start, given for the run only.

Environment, mounts, delivered files (secrets and configs), networks, extra hosts
and overrides of the entrypoint, command, working directory and user. All of it
configures the containers slimmer runs (tracing, verification, diagnosis, the
Dockerfile check); none of it reaches the output image, whose config stays the
input's. Context is not content: `describe()` gives keys, targets and names for a
report, never a value, and `secret_values()` lists the values a report or a log
line must never hold.

File contents are delivered through the engine API (`put_archive` before start),
never as host bind mounts, so a remote engine (`DOCKER_HOST` over TCP) works. A
`--volume HOSTPATH:DST` is the one form that names a host path, and it is a path
on the engine's host, as with `docker run`.

The parsers take the command-line forms of `docker run` and raise `UsageError`
(exit 2) naming the bad value; a value that may be secret is shown masked.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import posixpath
import re
import shlex
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from slimmer.errors import UsageError
from slimmer.model import ImageConfig

MountKind = Literal["bind", "volume", "tmpfs"]
MASK = "***"
# A value shorter than this is not searched for when redacting text: "1" or "on"
# would blank out half a log line, and a value that short is no secret.
REDACT_MIN = 4
_ENV_KEY = re.compile(r"^[^\s=]+$")
_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_NETWORK_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_HOST_NAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$")


@dataclass(frozen=True)
class Mount:
    """A filesystem mounted into the run: a host path on the engine's host (`bind`),
    a named or anonymous volume (`volume`, `source` "" for anonymous) or a `tmpfs`
    (`options` as `docker run --tmpfs` takes them, e.g. "size=64m")."""

    kind: MountKind
    target: str
    source: str = ""
    read_only: bool = False
    options: str = ""

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "target": self.target}
        if self.source:
            out["source"] = self.source
        if self.read_only:
            out["read_only"] = True
        return out


@dataclass(frozen=True)
class FileDelivery:
    """A file (a secret, a config) written into the container before it starts,
    through the engine API. Its content is never shown (not even in `repr`)."""

    target: str
    content: bytes = field(repr=False)
    mode: int = 0o444
    uid: int = 0
    gid: int = 0

    def describe(self) -> dict[str, Any]:
        return {"target": self.target, "mode": f"{self.mode:04o}", "bytes": len(self.content)}


@dataclass(frozen=True)
class NetworkAttach:
    """A network the run joins, and the names it answers to on it."""

    name: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunContext:
    """Everything given for the runs and not for the image (see the module docstring).

    `entrypoint`/`cmd` None: the image's. An entrypoint given without a cmd clears
    the image's Cmd, as with `docker run --entrypoint`. `ports` are container ports
    published beside the image's exposed ones (and probed when no probe is given)."""

    env: tuple[tuple[str, str], ...] = ()
    mounts: tuple[Mount, ...] = ()
    files: tuple[FileDelivery, ...] = ()
    networks: tuple[NetworkAttach, ...] = ()
    extra_hosts: tuple[tuple[str, str], ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    workdir: str | None = None
    run_user: str | None = None
    ports: tuple[int, ...] = ()

    def __repr__(self) -> str:  # values never reach a traceback or a debug line
        return f"RunContext({self.describe()!r})"

    @property
    def empty(self) -> bool:
        return self == RunContext()

    def environment(self) -> list[str]:
        """The env as the engine's create call takes it (merged over the image's Env
        by the engine, for the run only)."""
        return [f"{k}={v}" for k, v in self.env]

    def argv(
        self, entrypoint: tuple[str, ...], cmd: tuple[str, ...]
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(entrypoint, cmd) of the run, from the image's and the overrides."""
        if self.entrypoint is not None:
            return self.entrypoint, self.cmd if self.cmd is not None else ()
        return entrypoint, self.cmd if self.cmd is not None else cmd

    def mount_targets(self) -> tuple[str, ...]:
        """Every path the context puts into the container: mount targets, delivered files."""
        return tuple(sorted({m.target for m in self.mounts} | {f.target for f in self.files}))

    def covers(self, path: str) -> str | None:
        """The mount target (or delivered file) `path` lies in or under, if any."""
        for target in self.mount_targets():
            if path == target or path.startswith(target.rstrip("/") + "/"):
                return target
        return None

    def secret_values(self) -> tuple[str, ...]:
        """Every value given for the run that must appear in no output: each env value
        and each delivered file's content (whole, and each of its non-blank lines)."""
        out: dict[str, None] = {}
        for _, value in self.env:
            out.setdefault(value, None)
        for f in self.files:
            text = f.content.decode("utf-8", "replace")
            out.setdefault(text, None)
            for line in text.splitlines():
                out.setdefault(line.strip(), None)
        return tuple(v for v in out if v)

    def redact(self, text: str) -> str:
        """`text` with every secret value (of `REDACT_MIN` characters or more) masked."""
        for value in sorted(self.secret_values(), key=len, reverse=True):
            if len(value) >= REDACT_MIN:
                text = text.replace(value, MASK)
        return text

    def redact_bytes(self, data: bytes) -> bytes:
        """`redact` of raw output (a probe's body or stdout)."""
        for value in sorted(self.secret_values(), key=len, reverse=True):
            if len(value) >= REDACT_MIN:
                data = data.replace(value.encode("utf-8", "surrogateescape"), MASK.encode())
        return data

    def describe(self) -> dict[str, Any]:
        """The context for a report: env keys with masked values, mounts, files by target,
        networks and overrides; never a value of the environment or a file."""
        out: dict[str, Any] = {
            "env": {k: MASK for k, _ in self.env},
            "mounts": [m.describe() for m in self.mounts],
            "files": [f.describe() for f in self.files],
            "networks": [{"name": n.name, "aliases": list(n.aliases)} for n in self.networks],
            "extra_hosts": [f"{name}:{ip}" for name, ip in self.extra_hosts],
        }
        for key in ("entrypoint", "cmd"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value)
        if self.workdir is not None:
            out["workdir"] = self.workdir
        if self.run_user is not None:
            out["run_user"] = self.run_user
        if self.ports:
            out["ports"] = list(self.ports)
        return out


NO_CONTEXT = RunContext()


def run_config(config: ImageConfig, ctx: RunContext) -> ImageConfig:
    """The config the run uses: `config` with the context's entrypoint, cmd, working
    directory and user overrides. The env is not merged here: the engine merges the
    context's env over the image's at create. Never the output's config."""
    if ctx.entrypoint is None and ctx.cmd is None and ctx.workdir is None and ctx.run_user is None:
        return config
    entrypoint, cmd = ctx.argv(config.entrypoint, config.cmd)
    container = {**config.container, "Entrypoint": list(entrypoint), "Cmd": list(cmd)}
    if ctx.workdir is not None:
        container["WorkingDir"] = ctx.workdir
    if ctx.run_user is not None:
        container["User"] = ctx.run_user
    raw = {k: v for k, v in config.raw.items() if k != "Config"}
    return ImageConfig({**raw, "config": container})


def overlay(base: RunContext, given: RunContext) -> RunContext:
    """`given` (the command line's run options) over `base` (a compose service's
    context): the command line wins, as a later `docker run` option would.

    env: `given`'s value of a key replaces `base`'s, new keys are added; mounts and
    delivered files: one at the same target replaces `base`'s, others are added;
    networks: joined both (aliases of one network united); extra hosts and ports:
    both; entrypoint, cmd, workdir, run user: `given`'s when set. An entrypoint given
    without a cmd clears `base`'s cmd too, as `docker run --entrypoint` clears the
    image's."""
    mounts = {m.target: m for m in base.mounts} | {m.target: m for m in given.mounts}
    files = {f.target: f for f in base.files} | {f.target: f for f in given.files}
    _refuse_duplicate_targets([*mounts.values(), *files.values()])
    networks: dict[str, tuple[str, ...]] = {}
    for n in (*base.networks, *given.networks):
        networks[n.name] = tuple(dict.fromkeys((*networks.get(n.name, ()), *n.aliases)))
    cmd = given.cmd if given.cmd is not None or given.entrypoint is not None else base.cmd
    return RunContext(
        env=tuple((dict(base.env) | dict(given.env)).items()),
        mounts=tuple(mounts.values()),
        files=tuple(files.values()),
        networks=tuple(NetworkAttach(name, aliases) for name, aliases in networks.items()),
        extra_hosts=tuple(dict.fromkeys((*base.extra_hosts, *given.extra_hosts))),
        entrypoint=given.entrypoint if given.entrypoint is not None else base.entrypoint,
        cmd=cmd,
        workdir=given.workdir if given.workdir is not None else base.workdir,
        run_user=given.run_user if given.run_user is not None else base.run_user,
        ports=tuple(sorted({*base.ports, *given.ports})),
    )


def files_archive(files: Iterable[FileDelivery]) -> bytes:
    """A tar of the delivered files, to extract at "/" (parents made by the engine):
    sorted, fixed times, each with its own mode and owner."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for f in sorted(files, key=lambda f: f.target):
            info = tarfile.TarInfo(f.target.lstrip("/"))
            info.size, info.mode, info.uid, info.gid = len(f.content), f.mode, f.uid, f.gid
            tar.addfile(info, io.BytesIO(f.content))
    return buf.getvalue()


# -- the command-line forms ------------------------------------------------------------


def _masked(spec: str) -> str:
    """`K=V` shown as `K=***`: the value may be a secret, the key is not."""
    key, sep, _ = spec.partition("=")
    return f"{key}={MASK}" if sep else key


def parse_env(spec: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """`--env K=V`, or `--env K`: the value of K in slimmer's own environment (refused
    when it has none: a silent omission would hide a typo)."""
    key, sep, value = spec.partition("=")
    if not _ENV_KEY.match(key):
        raise UsageError(
            f"--env {_masked(spec)!r}: not K=V or K (the name is empty or has a space)"
        )
    if sep:
        return key, value
    if key not in environ:
        raise UsageError(f"--env {key}: {key} is not set in slimmer's environment; give K=V")
    return key, environ[key]


def parse_env_file(path: Path, environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """`--env-file FILE`, in docker's format: one K=V per line, taken literally (no
    quotes, no expansion); blank lines and lines starting with # are skipped; a bare
    K takes slimmer's value of K and is skipped when it has none."""
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--env-file {path}: {exc}") from exc
    out: list[tuple[str, str]] = []
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.lstrip()
        if not key or not _ENV_KEY.match(key):
            name = "no variable name" if not key else f"the name {key!r} has a space"
            raise UsageError(f"--env-file {path}, line {number}: {name}")
        if sep:
            out.append((key, value))
        elif key in environ:
            out.append((key, environ[key]))
    return tuple(out)


def _target(option: str, spec: str, target: str) -> str:
    if not target.startswith("/") or posixpath.normpath(target) == "/":
        raise UsageError(f"{option} {spec!r}: the target {target!r} must be an absolute path")
    return posixpath.normpath(target)


def parse_volume(spec: str) -> Mount:
    """`--volume SRC:DST[:ro|rw]` (SRC an absolute path on the engine's host, or a volume
    name) or `--volume DST` (an anonymous volume, removed with the container)."""
    parts = spec.split(":")
    if len(parts) == 1:
        return Mount("volume", _target("--volume", spec, parts[0]))
    if len(parts) > 3 or not parts[0]:
        raise UsageError(f"--volume {spec!r}: not SRC:DST[:ro]")
    source, target, *opts = parts
    read_only = False
    for opt in (o for part in opts for o in part.split(",")):
        if opt not in ("ro", "rw"):
            raise UsageError(f"--volume {spec!r}: unknown option {opt!r} (ro or rw)")
        read_only = opt == "ro"
    if source.startswith("/"):
        return Mount("bind", _target("--volume", spec, target), source, read_only)
    if not _VOLUME_NAME.match(source):
        raise UsageError(
            f"--volume {spec!r}: {source!r} is neither an absolute path on the engine's "
            "host nor a volume name"
        )
    return Mount("volume", _target("--volume", spec, target), source, read_only)


_MOUNT_KEYS = {
    "type": "type",
    "source": "source",
    "src": "source",
    "target": "target",
    "destination": "target",
    "dst": "target",
    "readonly": "readonly",
    "ro": "readonly",
    "tmpfs-size": "tmpfs-size",
    "tmpfs-mode": "tmpfs-mode",
}


def parse_mount(spec: str) -> Mount:
    """`--mount type=bind|volume|tmpfs,source=S,target=T[,readonly]`, the engine's
    syntax (comma-separated key=value, CSV-quoted; type defaults to volume)."""
    try:
        fields = next(csv.reader([spec]), [])
    except csv.Error as exc:
        raise UsageError(f"--mount {spec!r}: {exc}") from exc
    seen: dict[str, str] = {}
    for item in fields:
        key, sep, value = item.partition("=")
        name = _MOUNT_KEYS.get(key.strip().lower())
        if name is None:
            raise UsageError(f"--mount {spec!r}: unknown field {key!r}")
        if name == "readonly" and not sep:
            value = "true"
        seen[name] = value.strip()
    kind = seen.get("type", "volume")
    if kind not in ("bind", "volume", "tmpfs"):
        raise UsageError(f"--mount {spec!r}: type {kind!r} is not bind, volume or tmpfs")
    if "target" not in seen:
        raise UsageError(f"--mount {spec!r}: no target")
    target = _target("--mount", spec, seen["target"])
    ro = seen.get("readonly", "false").lower()
    if ro not in ("true", "false", "1", "0"):
        raise UsageError(f"--mount {spec!r}: readonly={ro!r} is not true or false")
    source = seen.get("source", "")
    return _mount_of(spec, kind, target, source, ro in ("true", "1"), seen)


def _mount_of(
    spec: str, kind: str, target: str, source: str, read_only: bool, seen: Mapping[str, str]
) -> Mount:
    if kind == "tmpfs":
        if source:
            raise UsageError(f"--mount {spec!r}: a tmpfs has no source")
        opts = [f"size={seen['tmpfs-size']}"] if "tmpfs-size" in seen else []
        opts += [f"mode={seen['tmpfs-mode']}"] if "tmpfs-mode" in seen else []
        return Mount("tmpfs", target, read_only=read_only, options=",".join(opts))
    if "tmpfs-size" in seen or "tmpfs-mode" in seen:
        raise UsageError(f"--mount {spec!r}: tmpfs-size and tmpfs-mode are for type=tmpfs")
    if kind == "bind":
        if not source.startswith("/"):
            raise UsageError(
                f"--mount {spec!r}: a bind source must be an absolute path on the engine's host"
            )
        return Mount("bind", target, source, read_only)
    if source and not _VOLUME_NAME.match(source):
        raise UsageError(f"--mount {spec!r}: {source!r} is not a volume name")
    return Mount("volume", target, source, read_only)


def parse_tmpfs(spec: str) -> Mount:
    """`--tmpfs DST[:OPTIONS]` (options as the engine takes them: size=64m,mode=1777)."""
    target, _, options = spec.partition(":")
    return Mount("tmpfs", _target("--tmpfs", spec, target), options=options)


def parse_network(spec: str) -> NetworkAttach:
    """`--network NAME`: a network on the engine the run joins. host, none and
    container:X are refused: probes reach the app only through published ports."""
    if spec in ("host", "none") or spec.startswith("container:"):
        raise UsageError(
            f"--network {spec}: the app must be reachable through published ports; "
            "use a bridge or user-defined network"
        )
    if not _NETWORK_NAME.match(spec):
        raise UsageError(f"--network {spec!r}: not a network name")
    return NetworkAttach(spec)


def parse_add_host(spec: str) -> tuple[str, str]:
    """`--add-host NAME:IP` (IP may be IPv6, or the engine's `host-gateway`)."""
    name, sep, ip = spec.partition(":")
    if not sep or not _HOST_NAME.match(name):
        raise UsageError(f"--add-host {spec!r}: not NAME:IP")
    if ip != "host-gateway":
        try:
            ipaddress.ip_address(ip.strip("[]"))
        except ValueError as exc:
            raise UsageError(f"--add-host {spec!r}: {ip!r} is not an IP address") from exc
    return name, ip


def parse_argv(option: str, spec: str) -> tuple[str, ...]:
    """`--entrypoint`/`--cmd`: a JSON array of strings, or words split as a shell would
    (no expansion). An empty string is an empty argv (it clears the image's)."""
    if spec.lstrip().startswith("["):
        try:
            value = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{option} {spec!r}: not a JSON array ({exc.msg})") from exc
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{option} {spec!r}: not a JSON array of strings")
        return tuple(value)
    try:
        return tuple(shlex.split(spec))
    except ValueError as exc:
        raise UsageError(f"{option} {spec!r}: {exc}") from exc


def parse_workdir(spec: str) -> str:
    return _target("--workdir", spec, spec) if spec != "/" else "/"


def parse_run_user(spec: str) -> str:
    """`--run-user USER[:GROUP]` (names or numbers), as `docker run --user` takes it."""
    user, sep, group = spec.partition(":")
    if not user or (sep and not group) or any(c.isspace() for c in spec) or group.count(":"):
        raise UsageError(f"--run-user {spec!r}: not USER[:GROUP]")
    return spec


SECRETS_DIR = "/run/secrets"


def parse_secret(spec: str) -> FileDelivery:
    """`--secret FILE[:TARGET]`: FILE (on this machine) delivered into the container
    through the engine API, as a compose secret is: at TARGET, by default
    /run/secrets/NAME (a relative TARGET is under /run/secrets), mode 0444."""
    source, _, target = spec.partition(":")
    if not source:
        raise UsageError(f"--secret {spec!r}: not FILE[:TARGET]")
    path = Path(source)
    target = target or path.name
    if not target.startswith("/"):
        target = f"{SECRETS_DIR}/{target}"
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--secret {spec!r}: {exc.strerror or exc}") from exc
    return FileDelivery(_target("--secret", spec, target), content)


def parse_port(spec: str) -> int:
    try:
        port = int(spec.split("/")[0])
    except ValueError:
        port = 0
    if not 0 < port < 65536 or spec.split("/", 1)[1:] not in ([], ["tcp"]):
        raise UsageError(f"--port {spec!r}: not a TCP port number")
    return port


@dataclass(frozen=True)
class ContextArgs:
    """The run options as given on a command line (each repeatable one as a tuple)."""

    env: tuple[str, ...] = ()
    env_files: tuple[Path, ...] = ()
    secrets: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    mounts: tuple[str, ...] = ()
    tmpfs: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    add_hosts: tuple[str, ...] = ()
    entrypoint: str | None = None
    cmd: str | None = None
    workdir: str | None = None
    run_user: str | None = None
    ports: tuple[str, ...] = ()


def context_of(args: ContextArgs, environ: Mapping[str, str]) -> RunContext:
    """The `RunContext` of the command-line options: env-files first, then each --env
    over them (a later value of a key wins, as with docker run)."""
    env: dict[str, str] = {}
    for path in args.env_files:
        env.update(parse_env_file(path, environ))
    env.update(parse_env(spec, environ) for spec in args.env)
    mounts = [parse_volume(s) for s in args.volumes]
    mounts += [parse_mount(s) for s in args.mounts]
    mounts += [parse_tmpfs(s) for s in args.tmpfs]
    files = [parse_secret(s) for s in args.secrets]
    _refuse_duplicate_targets([*mounts, *files])
    return RunContext(
        env=tuple(env.items()),
        mounts=tuple(mounts),
        files=tuple(files),
        networks=tuple(dict.fromkeys(parse_network(n) for n in args.networks)),
        extra_hosts=tuple(parse_add_host(h) for h in args.add_hosts),
        entrypoint=None if args.entrypoint is None else parse_argv("--entrypoint", args.entrypoint),
        cmd=None if args.cmd is None else parse_argv("--cmd", args.cmd),
        workdir=None if args.workdir is None else parse_workdir(args.workdir),
        run_user=None if args.run_user is None else parse_run_user(args.run_user),
        ports=tuple(sorted({parse_port(p) for p in args.ports})),
    )


def _refuse_duplicate_targets(mounts: Iterable[Mount | FileDelivery]) -> None:
    seen: set[str] = set()
    for m in mounts:
        if m.target in seen:
            raise UsageError(f"mounting {m.target}: two mounts have that target")
        seen.add(m.target)
