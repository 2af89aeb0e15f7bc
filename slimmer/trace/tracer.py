"""Run an image as it really runs, under the tracer, and drive it with probes.

One container per run: the image's own entrypoint and cmd become the argv of
the bundled strace (the sensor), with the image's Env, User and WorkingDir
left as the engine sets them. Exposed ports are published on 127.0.0.1 only.
The run context (`slimmer.context`) is applied to every container: its env
merged over the image's by the engine, its mounts, tmpfs, networks (with
aliases) and extra hosts, its entrypoint/cmd/workdir/user overrides, and its
files put into the container through the engine API before it starts. An error
that quotes the app's output has the context's values masked.
`exec` probes and the HEALTHCHECK are run under the sensor too, each with a
trace file of its own. After the probes the app itself gets the image's
StopSignal (strace, as PID 1, would ignore it), a grace period, then SIGKILL,
so the shutdown path is traced as well. Every container is labelled and
removed in `finally`, also on Ctrl-C.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from slimmer.context.run import NO_CONTEXT, RunContext, files_archive, run_config
from slimmer.engine_api import ContainerEngine
from slimmer.errors import SlimError, TraceError
from slimmer.model import ImageConfig, Progress
from slimmer.trace import proberun as prun
from slimmer.trace import probes as pr
from slimmer.trace.events import Trace, parse
from slimmer.trace.sensor import (
    BUNDLE_DIR,
    KILL,
    TRACE_PATH,
    Bundle,
    build_bundle,
    drop_emulator_calls,
    emulated,
    require_traceable,
    timeout_factor,
    wrap_command,
)

STOP_GRACE = 10.0  # traced runs: the engine's default, so the shutdown path is traced
QUICK_GRACE = 2.0  # untraced verification runs: only the probe answers matter
_PID = re.compile(rb"^(\d+) ", re.M)


DEFAULT_MEMORY = 4 << 30  # bytes; --memory: enough for a JVM, a stop to a runaway app


@dataclass(frozen=True)
class Limits:
    """Resource limits of every container the tracer creates (`--memory`, `--cpus`).

    Swap is capped at the memory limit, so an app over it is killed, not slowed
    to a crawl; `None` leaves a resource unlimited."""

    memory: int | None = DEFAULT_MEMORY
    cpus: float | None = None

    def host_settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.memory is not None:
            out["mem_limit"] = out["memswap_limit"] = self.memory
        if self.cpus is not None:
            out["nano_cpus"] = round(self.cpus * 1e9)
        return out

    def describe_memory(self) -> str:
        return "none" if self.memory is None else f"{self.memory / (1 << 20):.0f} MiB"


@dataclass(frozen=True)
class SeccompRun:
    """`--seccomp` in a run: `record` has the sensor trace every system call (the
    evidence of a profile; without it only file calls are traced), and `profile`,
    a seccomp profile in the engine's JSON format, is what every container runs
    under. The profile goes as the text of `SecurityOpt seccomp=<JSON>` through the
    engine API (as `docker run --security-opt seccomp=FILE` sends it), never as a
    host path, so a remote engine works too."""

    record: bool = False
    profile: str | None = None

    def host_settings(self) -> dict[str, Any]:
        return {} if self.profile is None else {"security_opt": [f"seccomp={self.profile}"]}


NO_SECCOMP = SeccompRun()


@dataclass(frozen=True)
class Run:
    """One traced container or exec: what ran and what it touched."""

    what: str
    trace: Trace
    exit_code: int | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class TracedRun:
    image: str
    runs: tuple[Run, ...]
    results: tuple[pr.ProbeResult, ...]
    probes: tuple[pr.ProbeSpec, ...]

    @property
    def traces(self) -> tuple[Trace, ...]:
        return tuple(r.trace for r in self.runs)


def healthcheck_probe(config: ImageConfig) -> pr.ProbeSpec | None:
    """The image's HEALTHCHECK as an exec probe (so it is traced and verified)."""
    test = config.healthcheck
    if len(test) < 2 or test[0] not in ("CMD", "CMD-SHELL"):
        return None
    argv = tuple(test[1:]) if test[0] == "CMD" else ("/bin/sh", "-c", test[1])
    return pr.ProbeSpec(kind="exec", name="HEALTHCHECK", cmd=argv, expect_exit=0)


def run_traced(
    engine: ContainerEngine,
    image: str,
    config: ImageConfig,
    probes: Sequence[pr.ProbeSpec],
    timeout: float = pr.DEFAULT_TIMEOUT,
    *,
    traced: bool = True,
    progress: Progress = lambda _: None,
    limits: Limits = Limits(),
    context: RunContext = NO_CONTEXT,
    seccomp: SeccompRun = NO_SECCOMP,
) -> TracedRun:
    """Run `image` with `probes` (the defaults when empty); traced unless told not to,
    each container under `limits`, in `context` (its overrides applied to `config`
    for the run only), with `seccomp`'s recording and profile.

    `progress` is told each stage as it starts: "bundling", "creating",
    "starting", "probing", "stopping", "reading the trace".
    """
    config = run_config(config, context)
    timeout *= timeout_factor(config)  # emulated: qemu-user starts apps far slower
    bundle = None
    if traced:
        progress("bundling")
        bundle = build_bundle()
        require_traceable(bundle, config)
    runner = _Runner(engine, image, config, bundle, timeout, progress, limits, context, seccomp)
    try:
        return runner.run(tuple(probes))
    except TraceError as exc:  # the app's last output may print what it was given
        masked = context.redact(exc.message)
        if masked == exc.message:
            raise
        raise TraceError(masked) from None


@dataclass
class _Runner:
    engine: ContainerEngine
    image: str
    config: ImageConfig
    bundle: Bundle | None
    timeout: float
    progress: Progress
    limits: Limits
    context: RunContext = NO_CONTEXT
    seccomp: SeccompRun = NO_SECCOMP

    def run(self, probes: tuple[pr.ProbeSpec, ...]) -> TracedRun:
        runs: list[Run] = []
        results: list[pr.ProbeResult] = []
        main = [p for p in probes if p.kind in pr.ATTACHED or p.kind == "batch"]
        if main or not probes:  # no probes: the defaults are chosen once it runs
            runs_, results_ = self._main_run(main)
            runs += runs_
            results += results_
        for p in probes:
            if p.kind == "run":
                run, res = self._override_run(p)
                runs.append(run)
                results.append(res)
        masked = tuple(_masked(r, self.context) for r in results)
        return TracedRun(self.image, tuple(runs), masked, tuple(r.probe for r in results))

    def _main_run(self, probes: list[pr.ProbeSpec]) -> tuple[list[Run], list[pr.ProbeResult]]:
        exposed = sorted(
            {
                int(k.split("/")[0])
                for k in self.config.exposed_ports
                if k.endswith("/tcp") or "/" not in k
            }.union(self.context.ports)
        )
        ports = set(exposed).union(*(p.ports_used() for p in probes))
        start = time.monotonic()
        entrypoint = self._argv(self.config.entrypoint, self.config.cmd)
        with self._container(ports, **entrypoint) as (ctr, published):
            self.progress("probing")
            if not probes:
                probes = _default_probes(self.engine, ctr, published, exposed, self.timeout)
            hc = healthcheck_probe(self.config)
            if hc is not None and hc not in probes and any(p.kind in pr.ATTACHED for p in probes):
                probes = [*probes, hc]
            results = self._probe(ctr, published, probes, exposed[0] if exposed else None)
            self._refuse_daemonized(ctr)
            self.progress("stopping")
            code = _stop(self.engine, ctr, self.config, self.bundle)
            self._refuse_oom(ctr)
            if self.bundle is None:
                return [], results
            self.progress("reading the trace")
            runs = [Run("entrypoint", self._trace(ctr, TRACE_PATH), code, time.monotonic() - start)]
            runs += [
                Run(f"exec {r.probe.label}", self._trace(ctr, _exec_trace(i)))
                for i, r in enumerate(results)
                if r.probe.kind == "exec"
            ]
        return runs, results

    def _probe(
        self, ctr: str, published: pr.Ports, probes: list[pr.ProbeSpec], default_port: int | None
    ) -> list[pr.ProbeResult]:
        """Run probes; exec probes run under the sensor; results keep the original spec."""
        bundle = self.bundle
        runnable = [
            replace(p, cmd=tuple(wrap_command(bundle, (), p.cmd, _exec_trace(i), self._every)))
            if p.kind == "exec" and bundle is not None
            else p
            for i, p in enumerate(probes)
        ]
        found = prun.run_probes(
            self.engine, ctr, published, runnable, self.timeout, default_port=default_port
        )
        return [replace(r, probe=p) for r, p in zip(found, probes, strict=True)]

    def _override_run(self, p: pr.ProbeSpec) -> tuple[Run, pr.ProbeResult]:
        """A `run` probe: a new container with the probe's entrypoint/cmd/env, run to exit."""
        entrypoint = p.entrypoint if p.entrypoint is not None else self.config.entrypoint
        cmd = p.cmd if (p.cmd or p.entrypoint is not None) else self.config.cmd
        kwargs = self._argv(entrypoint, cmd)
        if p.env:
            env = dict(self.context.env) | dict(p.env)  # the probe's own env wins
            kwargs["environment"] = [f"{k}={v}" for k, v in env.items()]
        start = time.monotonic()
        with self._container(set(), **kwargs) as (ctr, _):
            self.progress("probing")
            res = replace(
                prun.run_probes(self.engine, ctr, {}, [replace(p, kind="batch")], self.timeout)[0],
                probe=p,
            )
            if res.exit_code is None:
                self.progress("stopping")
                self.engine.kill(ctr)
            self._refuse_oom(ctr)
            trace = Trace(())
            if self.bundle is not None:
                self.progress("reading the trace")
                trace = self._trace(ctr, TRACE_PATH)
        return Run(p.label, trace, res.exit_code, time.monotonic() - start), res

    @property
    def _every(self) -> bool:
        return self.seccomp.record

    def _argv(self, entrypoint: Sequence[str], cmd: Sequence[str]) -> dict[str, Any]:
        if self.bundle is not None:
            wrapped = wrap_command(self.bundle, entrypoint, cmd, every_call=self._every)
            return {"entrypoint": wrapped, "command": []}
        out: dict[str, Any] = {}
        if entrypoint:
            out["entrypoint"] = list(entrypoint)
        if cmd:
            out["command"] = list(cmd)
        return out

    @contextmanager
    def _container(self, ports: set[int], **kwargs: Any) -> Iterator[tuple[str, pr.Ports]]:
        """A created container with the sensor copied in, started; always removed."""
        wanted = sorted(ports)
        self.progress("creating")
        engine = self.engine
        ctr = engine.create_container(
            self.image,
            ports=wanted,
            healthcheck={"test": ["NONE"]},
            host_config=engine.host_config(
                port_bindings={p: (pr.HOST,) for p in wanted},
                **self.limits.host_settings(),
                **context_host_settings(self.context),
                **self.seccomp.host_settings(),
            ),
            **{**context_create_settings(self.context), **kwargs},
        )
        try:
            if self.bundle is not None:
                engine.put_archive(ctr, "/", self.bundle.data)
            if self.context.files:
                engine.put_archive(ctr, "/", files_archive(self.context.files))
            self.progress("starting")
            engine.start(ctr)
            yield ctr, engine.published_ports(ctr, wanted)
        except TraceError:
            self._refuse_oom(ctr)  # an app killed for memory: say so, naming the limit
            raise
        finally:
            engine.remove_container(ctr)

    def _refuse_daemonized(self, ctr: str) -> None:
        """The traced entrypoint exited while the container runs on: the app forked
        into the background. strace (PID 1) waits for its descendants, the engine
        does not: without the tracer the container stops with its entrypoint."""
        bundle = self.bundle
        pid = _app_pid(self.engine, ctr) if bundle is not None else None
        if bundle is None or pid is None:
            return
        if not (self.engine.inspect_container(ctr).get("State") or {}).get("Running"):
            return
        code, _ = self.engine.exec(ctr, [*bundle.launcher[:-1], KILL, "-0", str(pid)], user="0")
        if code != 0:
            raise TraceError(
                f"running {self.image[:19]}: the entrypoint process exited and left a "
                "background process running (a daemon that forks); the engine stops a "
                "container when its entrypoint exits: run the app in the foreground"
            )

    def _refuse_oom(self, ctr: str) -> None:
        """An app the kernel killed for memory is a clear error naming the limit."""
        state = self.engine.inspect_container(ctr).get("State") or {}
        if state.get("OOMKilled"):
            raise TraceError(
                f"running {self.image[:19]}: {prun.ended(self.engine, ctr, state)}; "
                f"the limit is --memory {self.limits.describe_memory()}: raise it"
            )

    def _trace(self, ctr: str, path: str) -> Trace:
        return _read_trace(self.engine, ctr, path, self.config)


CONTEXT_HINT = (
    "if it needs its environment, secrets or services to start, give them "
    "(--env, --env-file, --volume, --network or --compose)"
)


def died_at_start(error: str) -> bool:
    """Whether a probe's error says the container ended (see `proberun.ended`)."""
    return "container exited with code" in error or "container was killed" in error


def _masked(r: pr.ProbeResult, ctx: RunContext) -> pr.ProbeResult:
    """`r` with the context's values masked in its error and output, alike in every
    run (so comparing the original's results with the slim image's still holds)."""
    if ctx.empty:
        return r
    return replace(r, error=ctx.redact(r.error), output=ctx.redact_bytes(r.output))


def context_host_settings(ctx: RunContext) -> dict[str, Any]:
    """The host settings of `ctx`: mounts, tmpfs, extra hosts and the first network."""
    out: dict[str, Any] = {}
    mounts = [
        {"Type": m.kind, "Target": m.target, "Source": m.source or None, "ReadOnly": m.read_only}
        for m in ctx.mounts
        if m.kind != "tmpfs"
    ]
    if mounts:
        out["mounts"] = mounts
    tmpfs = {m.target: m.options for m in ctx.mounts if m.kind == "tmpfs"}
    if tmpfs:
        out["tmpfs"] = tmpfs
    if ctx.extra_hosts:
        out["extra_hosts"] = [f"{name}:{ip}" for name, ip in ctx.extra_hosts]
    if ctx.networks:
        out["network_mode"] = ctx.networks[0].name
    return out


def context_create_settings(ctx: RunContext) -> dict[str, Any]:
    """The create settings of `ctx`: env, networks, working directory and user."""
    out: dict[str, Any] = {}
    if ctx.env:
        out["environment"] = ctx.environment()
    if ctx.networks:
        out["networks"] = [(n.name, n.aliases) for n in ctx.networks]
    if ctx.workdir is not None:
        out["working_dir"] = ctx.workdir
    if ctx.run_user is not None:
        out["user"] = ctx.run_user
    return out


def _default_probes(
    engine: ContainerEngine, ctr: str, published: pr.Ports, exposed: list[int], timeout: float
) -> list[pr.ProbeSpec]:
    """No probes given: GET / on each exposed port that speaks HTTP, a TCP
    connect on the others; no ports: run to exit."""
    if not exposed:
        return [pr.ProbeSpec(kind="batch")]
    out = []
    for port in exposed:
        tcp = pr.ProbeSpec(kind="tcp", port=port)
        ready = prun.run_probes(engine, ctr, published, [tcp], timeout)[0]
        if not ready.ok:
            gone = prun.container_gone(engine, ctr)
            if gone:
                raise TraceError(
                    f"probing port {port}: the app stopped before answering: {gone}; {CONTEXT_HINT}"
                )
            raise TraceError(
                f"probing port {port}: never answered within {timeout:.0f}s ({ready.error})"
            )
        http = pr.ProbeSpec(kind="http", port=port, path="/")
        answer = prun.run_probes(engine, ctr, published, [http], 5.0)[0]
        out.append(http if answer.status is not None else tcp)
    return out


def _exec_trace(index: int) -> str:
    return f"{BUNDLE_DIR}/exec-{index}.log"


def _stop(
    engine: ContainerEngine, ctr: str, config: ImageConfig, bundle: Bundle | None
) -> int | None:
    """Stop the app with its StopSignal, wait the grace period, then kill."""
    state = engine.inspect_container(ctr).get("State") or {}
    if not state.get("Running"):
        return int(state.get("ExitCode", -1))
    sig = _signal_number(str(config.container.get("StopSignal") or "SIGTERM"))
    pid = _app_pid(engine, ctr) if bundle is not None else None
    if pid is not None and bundle is not None:
        engine.exec(ctr, [*bundle.launcher[:-1], KILL, f"-{sig}", str(pid)], user="0")
    else:
        engine.kill(ctr, signal=str(sig))
    code = engine.wait(ctr, timeout=STOP_GRACE if bundle is not None else QUICK_GRACE)
    if code is None:
        engine.kill(ctr)
        code = engine.wait(ctr, timeout=STOP_GRACE)
    return code


def _signal_number(name: str) -> int:
    name = name.upper()
    if name.isdigit():
        return int(name)
    try:
        return int(signal.Signals[name if name.startswith("SIG") else f"SIG{name}"])
    except KeyError:
        return int(signal.SIGTERM)


def _app_pid(engine: ContainerEngine, ctr: str) -> int | None:
    """The traced app's pid inside the container: the first pid of the trace."""
    try:
        head = engine.read_file(ctr, TRACE_PATH)[:4096]
    except SlimError:  # no trace yet: the app never ran
        return None
    m = _PID.search(head)
    return int(m.group(1)) if m else None


def _read_trace(engine: ContainerEngine, ctr: str, path: str, config: ImageConfig) -> Trace:
    try:
        data = engine.read_file(ctr, path)
    except SlimError as exc:
        raise TraceError(f"reading the trace {path} back from the container: {exc}") from exc
    trace = parse(data, cwd=config.working_dir or "/")
    return drop_emulator_calls(trace) if emulated(config) else trace
