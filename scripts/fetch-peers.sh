#!/usr/bin/env bash
# Downloads the real NTP/PTP peers from Debian and unpacks them into a folder of our own,
# WITHOUT installing them: a plain `apt-get install` would run their init scripts and
# could start a daemon that steers this machine's clock. Tests start every peer without
# CAP_SYS_TIME (setpriv --bounding-set=-sys_time).
#
# Usage: scripts/fetch-peers.sh [DEST]   (default: target/peers)
# Prints DEST. Idempotent: packages already unpacked are not fetched again.
set -euo pipefail

dest=${1:-$(cd "$(dirname "$0")/.." && pwd)/target/peers}
mkdir -p "$dest/debs" "$dest/root"
packages=(chrony ntpsec ntpsec-ntpdig python3-ntp linuxptp)

if [ ! -f "$dest/.unpacked" ]; then
  if [ ! -d /var/lib/apt/lists ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then
    apt-get update -qq >&2
  fi
  (cd "$dest/debs" && apt-get download -q "${packages[@]}" >&2 2>/dev/null) || {
    apt-get update -qq >&2
    (cd "$dest/debs" && apt-get download -q "${packages[@]}" >&2)
  }
  for deb in "$dest"/debs/*.deb; do
    dpkg-deb -x "$deb" "$dest/root"
  done
  # ntpsec's Python tools look for libntpc next to their module first.
  cp "$dest"/root/usr/lib/x86_64-linux-gnu/ntp/libntpc.so* "$dest/root/usr/lib/python3/dist-packages/ntp/" 2>/dev/null || true
  touch "$dest/.unpacked"
fi
echo "$dest"
