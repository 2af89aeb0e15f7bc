#!/usr/bin/env bash
# Serve Podman's Docker-compatible API on a socket of our own, for the Podman tier
# of the tests (pytest -m podman) or for trying slimmer against Podman by hand.
#
#   scripts/ensure-podman.sh start DIR   install podman when missing, write
#       /etc/containers/containers.conf when there is none, start
#       `podman system service` on DIR/podman.sock, wait until it answers the Docker
#       API, and print the socket path (DOCKER_HOST=unix://<it> points slimmer there)
#   scripts/ensure-podman.sh stop DIR    stop the service started for DIR
#
# Idempotent: `start` on a DIR whose service already answers only prints the socket.
# The service's log is DIR/podman.log, its PID DIR/podman.pid. Rootful as written
# (the suite runs as root); a rootless user runs the same `podman system service`
# and finds the socket under $XDG_RUNTIME_DIR (see the README).
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
(($# == 2)) || usage
cmd="$1"
dir="$(mkdir -p "$2" && cd "$2" && pwd)"
sock="$dir/podman.sock"
pidfile="$dir/podman.pid"

answers() { curl -fsS --max-time 5 --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; }

install_podman() {
  local need=()
  command -v podman >/dev/null 2>&1 || need+=(podman)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  ((${#need[@]})) || return 0
  echo "ensure-podman: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # podman 4.3 on Debian 12 pulls in conmon, runc or crun and the CNI plugins it needs
  # to publish ports as root; the recommends (buildah, slirp4netns, uidmap...) are for
  # rootless use and image building by the CLI, which the API service does not need.
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

# Containers fail with "error setting rlimit ... operation not permitted" when the
# ulimits Podman asks for exceed the hard limits of a sandboxed host; these fit.
write_conf() {
  local conf=/etc/containers/containers.conf
  [[ -e "$conf" ]] && return 0
  echo "ensure-podman: writing $conf (default_ulimits within this host's hard limits)" >&2
  mkdir -p /etc/containers
  cat >"$conf" <<'EOF'
# Written by slimmer's scripts/ensure-podman.sh: sandboxed hosts refuse the default
# ulimits Podman sets on containers ("error setting rlimit").
[containers]
default_ulimits = [
  "nofile=20000:20000",
  "nproc=20000:20000",
]
EOF
}

start() {
  if answers; then
    echo "$sock"
    return 0
  fi
  install_podman
  write_conf
  rm -f "$sock"
  echo "ensure-podman: starting podman system service on $sock" >&2
  # setsid: the service outlives this script and is stopped by `stop`, not by the
  # Ctrl-C of whoever started it, so a test run's cleanup can still talk to it.
  setsid podman system service --time=0 "unix://$sock" >"$dir/podman.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 60); do
    answers && { echo "$sock"; return 0; }
    kill -0 "$(cat "$pidfile")" 2>/dev/null || break
    sleep 0.5
  done
  echo "ensure-podman: podman's API does not answer on $sock; its log:" >&2
  tail -n 20 "$dir/podman.log" >&2 || true
  stop
  exit 1
}

stop() {
  [[ -f "$pidfile" ]] || return 0
  local pid
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 20); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$pidfile" "$sock"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
