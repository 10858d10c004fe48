#!/usr/bin/env bash
# The VM bench (issue 15): throw-away QEMU guests whose kernel clocks the daemons step,
# slew and leap for real. This machine's clock is only read.
#
# Installs what the bench needs on a fresh Debian machine (QEMU and a static busybox with
# apt-get; the kernel is fetched with `apt-get download` into target/vm-bench/ and never
# installed; the peers with scripts/fetch-peers.sh), then runs every scenario, one at a
# time. Usage: scripts/vm-bench.sh [TEST-NAME-FILTER]
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
# qemu-img for the snapshot disk; the machine's newer qemu-utils may give way to
# qemu-system-x86's own version, so it is checked after that one too.
command -v qemu-img >/dev/null || need+=(qemu-utils)
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || need+=(busybox-static)
command -v setpriv >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "vm-bench: needs ${need[*]} (run as root, or apt-get install them)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v qemu-img >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-utils >/dev/null
fi
scripts/fetch-peers.sh >/dev/null
cargo build --release -q -p tempora-examples --bins
exec cargo test -p tempora-vm-bench --release -- --ignored --test-threads=1 --nocapture "$@"
