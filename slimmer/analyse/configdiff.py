"""The runtime settings that differ between two images' configs (`slim diff`): entrypoint,
cmd, user, workdir, ports, healthcheck, stop signal, and env and labels by key."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slimmer.model import ImageConfig

ConfigValue = str | tuple[str, ...] | None


@dataclass(frozen=True)
class ConfigChange:
    """A runtime setting that differs. `key` names the variable or label of `env` and
    `labels`, and is empty for the other fields; None means "not set"."""

    field: str
    key: str
    a: ConfigValue
    b: ConfigValue


def config_changes(a: ImageConfig, b: ImageConfig) -> tuple[ConfigChange, ...]:
    """The runtime settings that differ, in a fixed order; env and labels by key."""
    out = [
        ConfigChange(name, "", x, y)
        for name, (x, y) in ((n, (fn(a), fn(b))) for n, fn in _SETTINGS)
        if x != y
    ]
    for name, fn in (("env", _env), ("labels", _labels)):
        out.extend(_map_changes(name, fn(a), fn(b)))
    return tuple(out)


def _map_changes(name: str, a: Mapping[str, str], b: Mapping[str, str]) -> list[ConfigChange]:
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return [ConfigChange(name, k, a.get(k), b.get(k)) for k in keys]


def _text(value: Any) -> str | None:
    return str(value) if value else None


def _env(c: ImageConfig) -> dict[str, str]:
    return c.env


def _labels(c: ImageConfig) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(c.container.get("Labels") or {}).items()}


def _healthcheck(c: ImageConfig) -> tuple[str, ...] | None:
    hc = c.container.get("Healthcheck") or {}
    extra = tuple(f"{k}={hc[k]}" for k in sorted(hc) if k != "Test")
    return (*c.healthcheck, *extra) or None


_SETTINGS: tuple[tuple[str, Callable[[ImageConfig], ConfigValue]], ...] = (
    ("entrypoint", lambda c: c.entrypoint or None),
    ("cmd", lambda c: c.cmd or None),
    ("user", lambda c: _text(c.user)),
    ("workdir", lambda c: _text(c.working_dir)),
    ("exposed_ports", lambda c: c.exposed_ports or None),
    ("healthcheck", _healthcheck),
    ("stop_signal", lambda c: _text(c.container.get("StopSignal"))),
)
