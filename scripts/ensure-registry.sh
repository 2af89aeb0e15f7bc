#!/usr/bin/env bash
# Test registries: Debian's docker-registry (distribution 2.8) on a loopback port.
#
#   bash scripts/ensure-registry.sh install
#       installs docker-registry, apache2-utils (htpasswd) and openssl when missing.
#   bash scripts/ensure-registry.sh start DIR PORT
#       plain HTTP on 127.0.0.1:PORT, data and access log under DIR.
#   REGISTRY_USER=u REGISTRY_PASSWORD=p bash scripts/ensure-registry.sh start DIR PORT tls
#       basic auth (an htpasswd file made here) behind TLS, with a CA generated here
#       (DIR/ca.crt); the engine is told to trust it through
#       /etc/docker/certs.d/127.0.0.1:PORT/ca.crt. The password comes from the
#       environment, never from the command line (ps shows arguments).
#   bash scripts/ensure-registry.sh stop DIR
#       stops the instance started in DIR and removes the engine's certs.d entry.
#
# The tests' fixtures (tests/registry_kit.py) start and stop these around a
# session, in temporary directories; nothing is left running.
set -euo pipefail

need_install() {
  command -v docker-registry >/dev/null && command -v htpasswd >/dev/null &&
    command -v openssl >/dev/null
}

install() {
  if need_install; then return 0; fi
  echo "ensure-registry: installing docker-registry apache2-utils openssl" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q docker-registry apache2-utils openssl >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q docker-registry apache2-utils openssl >/dev/null; }
  # the package's init script may start a system instance on :5000; the tests use their own
  if [[ -x /etc/init.d/docker-registry ]]; then /etc/init.d/docker-registry stop >/dev/null 2>&1 || true; fi
}

make_ca() {  # DIR: a CA and a server certificate for 127.0.0.1 / localhost
  local dir="$1"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=slimmer test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$dir/san.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 2 -extfile "$dir/san.ext" -out "$dir/server.crt" 2>/dev/null
}

write_config() {  # DIR PORT MODE
  local dir="$1" port="$2" mode="$3"
  {
    echo "version: 0.1"
    echo "log: {level: info, accesslog: {disabled: false}, formatter: json}"
    echo "storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}"
    echo "http:"
    echo "  addr: 127.0.0.1:$port"
    echo "  secret: slimmer-test-$port"
    if [[ "$mode" == tls ]]; then
      echo "  tls: {certificate: $dir/server.crt, key: $dir/server.key}"
      echo "auth: {htpasswd: {realm: slimmer-test, path: $dir/htpasswd}}"
    fi
  } >"$dir/config.yml"
}

start() {
  local dir="$1" port="$2" mode="${3:-plain}"
  install
  mkdir -p "$dir/data"
  if [[ "$mode" == tls ]]; then
    : "${REGISTRY_USER:?REGISTRY_USER is needed for a tls registry}"
    : "${REGISTRY_PASSWORD:?REGISTRY_PASSWORD is needed for a tls registry}"
    make_ca "$dir"
    htpasswd -Bbn "$REGISTRY_USER" "$REGISTRY_PASSWORD" >"$dir/htpasswd" 2>/dev/null
    mkdir -p "/etc/docker/certs.d/127.0.0.1:$port"
    cp "$dir/ca.crt" "/etc/docker/certs.d/127.0.0.1:$port/ca.crt"
  fi
  write_config "$dir" "$port" "$mode"
  setsid docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  local scheme=http curl_ca=()
  if [[ "$mode" == tls ]]; then scheme=https curl_ca=(--cacert "$dir/ca.crt"); fi
  for _ in $(seq 100); do
    # 200 (open) or 401 (auth wanted): the registry answers
    code=$(curl -s -o /dev/null -w '%{http_code}' "${curl_ca[@]}" "$scheme://127.0.0.1:$port/v2/" || true)
    if [[ "$code" == 200 || "$code" == 401 ]]; then echo "$scheme://127.0.0.1:$port"; return 0; fi
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "ensure-registry: the registry in $dir did not answer on port $port:" >&2
  tail -5 "$dir/registry.log" >&2 || true
  stop "$dir"
  return 1
}

stop() {
  local dir="$1"
  if [[ -f "$dir/pid" ]]; then
    local pid
    pid="$(cat "$dir/pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/pid"
  fi
  if [[ -f "$dir/config.yml" ]]; then
    local port
    port="$(sed -n 's/^  addr: 127.0.0.1:\([0-9]*\)$/\1/p' "$dir/config.yml")"
    if [[ -n "$port" ]]; then rm -rf "/etc/docker/certs.d/127.0.0.1:$port"; fi
  fi
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 install | start DIR PORT [tls] | stop DIR" >&2; exit 2 ;;
esac
