#!/usr/bin/env bash
# Builds ntpd-rs 1.9 (crates.io's `ntpd`) into target/ntpd-rs for the NTS interop tests
# (examples/tests/ntpd_rs_interop.rs). Never installed system-wide, never run with the
# privilege to steer the clock: the tests run it without CAP_SYS_TIME and with a shim
# that answers its clock writes without making them. About 2.5 minutes on two cores;
# idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)/target/ntpd-rs"
if [ ! -x "$root/bin/ntp-daemon" ]; then
  cargo install ntpd@1.9.0 --locked --quiet --root "$root" --target-dir "$root/build"
fi
echo "$root"
