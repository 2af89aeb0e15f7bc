#!/usr/bin/env bash
# Make sure the engine can run linux/arm64 containers under emulation: Debian's
# qemu-user-static and binfmt-support installed, binfmt_misc mounted, and the
# qemu-aarch64 handler registered with the F flag (the kernel opens the interpreter
# at registration, so it works inside containers that do not have it).
# Idempotent: does nothing that is already done. Exits non-zero, naming what is
# missing, when emulation cannot be set up (the emulated tests then fail, never skip).
set -euo pipefail
BINFMT=/proc/sys/fs/binfmt_misc
HANDLER=qemu-aarch64

need_pkgs=()
command -v qemu-aarch64-static >/dev/null 2>&1 || need_pkgs+=(qemu-user-static)
command -v update-binfmts >/dev/null 2>&1 || need_pkgs+=(binfmt-support)
if ((${#need_pkgs[@]})); then
  echo "ensure-qemu: installing ${need_pkgs[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
if [[ ! -e "$BINFMT/register" ]]; then
  mount -t binfmt_misc binfmt_misc "$BINFMT" 2>/dev/null || {
    echo "ensure-qemu: cannot mount binfmt_misc on $BINFMT (needs root and a kernel with binfmt_misc)" >&2
    exit 1
  }
fi
if [[ ! -e "$BINFMT/$HANDLER" ]]; then
  update-binfmts --enable "$HANDLER" >/dev/null 2>&1 || update-binfmts --import "$HANDLER" >/dev/null 2>&1 || true
fi
if [[ ! -e "$BINFMT/$HANDLER" ]]; then
  echo "ensure-qemu: the $HANDLER binfmt_misc handler is not registered (update-binfmts --enable $HANDLER failed)" >&2
  exit 1
fi
if ! grep -q '^flags:.*F' "$BINFMT/$HANDLER"; then
  echo "ensure-qemu: the $HANDLER handler lacks the F flag (containers cannot reach its interpreter);" \
    "re-register it: update-binfmts --disable $HANDLER && update-binfmts --enable $HANDLER" >&2
  exit 1
fi
echo "ensure-qemu: $HANDLER $(sed -n 's/^interpreter //p' "$BINFMT/$HANDLER") ($(grep '^flags:' "$BINFMT/$HANDLER"))" >&2
