#!/usr/bin/env bash
# Make sure a Docker engine answers, installing Debian's docker.io and starting
# dockerd in the background when none does. Also installs the host tools slimmer,
# the test-suite and the fixture builder use: strace (the sensor), debootstrap (the
# fixture base), gcc, g++, libc6-dev, binutils and musl-tools (tests build and read
# real ELF programs, glibc and musl ones).
# Idempotent: does nothing that is already done.
set -euo pipefail

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v strace >/dev/null 2>&1 || need_pkgs+=(strace)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
command -v gcc >/dev/null 2>&1 || need_pkgs+=(gcc)
command -v g++ >/dev/null 2>&1 || need_pkgs+=(g++)
command -v readelf >/dev/null 2>&1 || need_pkgs+=(binutils)
command -v musl-gcc >/dev/null 2>&1 || need_pkgs+=(musl-tools)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)  # the HTML report test
dpkg -s libc6-dev >/dev/null 2>&1 || need_pkgs+=(libc6-dev)
if ((${#need_pkgs[@]})); then
  echo "ensure-engine: installing ${need_pkgs[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || \
  python3 -c 'import docker,sys; docker.from_env().ping()' >/dev/null 2>&1; }

if [[ -z "${DOCKER_HOST:-}" ]] && ! engine_up; then
  echo "ensure-engine: starting dockerd" >&2
  mkdir -p /var/log
  nohup dockerd >/var/log/slimmer-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    [[ -S /var/run/docker.sock ]] && engine_up && break
    sleep 1
  done
fi
if ! engine_up; then
  echo "ensure-engine: no Docker engine answers (see /var/log/slimmer-dockerd.log)" >&2
  exit 1
fi
echo "ensure-engine: engine $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo up)" >&2
