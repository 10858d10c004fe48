#!/usr/bin/env bash
# Server throughput side by side on this machine: a bare recvmmsg/sendmmsg UDP echo (the
# ceiling), Tempora's ntp-server and chronyd (Debian); each
# server pinned to CPU 1, ntp-load pinned to CPU 0 with the same settings, on loopback.
# Peers run without CAP_SYS_TIME and never steer the clock.
#
#   scripts/bench-server.sh [SECONDS]            (default 10)
#
# Prints a Markdown table: responses/s, ratio to the echo, p50/p99 round trip, RSS idle
# and under load. Needs target/peers (scripts/fetch-peers.sh) for chronyd.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-10}"
LOAD_OPTS=(--duration "$SECONDS_PER_RUN" --rate 3000000 --in-flight 256 --sockets 16 --json)
cargo build --release -q -p tempora-examples --bin ntp-server --bin ntp-load --bin udp-echo
BIN=target/release
PEERS=target/peers/root
WORK="$(mktemp -d)"
chmod 750 "$WORK"
PORT=12123
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

run_one() { # name, then the command
  local name="$1"; shift
  taskset -c 1 "$@" >"$WORK/$name.out" 2>&1 &
  PID=$!
  sleep 1.5
  local idle; idle=$(rss_kib "$PID")
  # Warm up (chrony and the kernel settle), then measure.
  taskset -c 0 "$BIN/ntp-load" "${LOAD_OPTS[@]/$SECONDS_PER_RUN/1}" "127.0.0.1:$PORT" >/dev/null || true
  local peak=0
  ( while kill -0 "$PID" 2>/dev/null; do r=$(rss_kib "$PID"); [ "$r" -gt "$(cat "$WORK/peak" 2>/dev/null || echo 0)" ] && echo "$r" >"$WORK/peak"; sleep 0.2; done ) &
  local sampler=$!
  taskset -c 0 "$BIN/ntp-load" "${LOAD_OPTS[@]}" "127.0.0.1:$PORT" >"$WORK/$name.json"
  kill "$sampler" 2>/dev/null || true
  peak=$(cat "$WORK/peak" 2>/dev/null || echo 0); rm -f "$WORK/peak"
  kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""
  python3 - "$name" "$WORK/$name.json" "$idle" "$peak" >>"$WORK/rows" <<'PY'
import json, sys
name, path, idle, peak = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
r = json.load(open(path))
print(json.dumps({"name": name, "rate": r["responses_per_s"], "p50": r["rtt_p50_us"],
                  "p99": r["rtt_p99_us"], "timeouts": r["timeouts"], "kod": r["kod"],
                  "idle_mib": idle / 1024, "load_mib": peak / 1024}))
PY
  PORT=$((PORT + 1))
}

run_one "udp-echo (ceiling)" "$BIN/udp-echo" "127.0.0.1:$PORT" 120
run_one "tempora ntp-server" "$BIN/ntp-server" --listen "127.0.0.1:$PORT" --threads 1 --log-level warn
if [ -x "$PEERS/usr/sbin/chronyd" ]; then
  printf 'port %s\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 1\ncmdport 0\npidfile %s/chronyd.pid\n' "$PORT" "$WORK" >"$WORK/chrony.conf"
  run_one "chronyd 4.3" setpriv --bounding-set=-sys_time -- "$PEERS/usr/sbin/chronyd" -d -x -u root -f "$WORK/chrony.conf"
fi
# ntpd-rs 1.9 is not in the table: without CAP_SYS_TIME its daemon exits at start ("Could
# not control clock: Insufficient permissions"), and with it, it would steer this
# machine's clock, which no benchmark here may do.

python3 - "$WORK/rows" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ceiling = rows[0]["rate"] or 1
print("| server | responses/s | x echo | p50 rtt | p99 rtt | timeouts | RSS idle | RSS under load |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['name']} | {r['rate']:.0f} | {r['rate']/ceiling:.2f} | {r['p50']:.0f} us | {r['p99']:.0f} us | {r['timeouts']} | {r['idle_mib']:.1f} MiB | {r['load_mib']:.1f} MiB |")
PY
