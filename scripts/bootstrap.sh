#!/usr/bin/env bash
# Sourced by the README's commands: a virtualenv with slimmer installed, a
# Docker engine that answers (Debian's docker.io installed and dockerd started
# when none does) and Compose v2 for `slim --compose` and `slim compose`
# (scripts/ensure-compose.sh). Safe to run again: it only does what is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "bootstrap: slimmer needs Python >= 3.11 ($PY is older or missing)" >&2
  exit 1
fi
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
stamp="$VENV/.slimmer-installed"
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "bootstrap: installing slimmer into $VENV" >&2
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]"
  echo "$want" > "$stamp"
fi
bash "$ROOT/scripts/ensure-engine.sh"
bash "$ROOT/scripts/ensure-compose.sh" "$VENV"
export PATH="$VENV/bin:$PATH"
