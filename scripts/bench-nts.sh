#!/usr/bin/env bash
# NTS throughput side by side on this machine: Tempora's ntp-server with [nts] and
# chronyd 4.3 (Debian) as NTS servers, each pinned to CPU 1, `ntp-load --nts` pinned to
# CPU 0 with the same settings, on loopback: authenticated responses per second, and
# NTS-KE handshakes per second. A test CA and server certificate are made with openssl.
# Peers run without CAP_SYS_TIME and never steer the clock.
#
#   scripts/bench-nts.sh [SECONDS]            (default 10)
#
# Two cores cannot load one server to saturation from the other: the generator's side of
# loopback costs as much as the server's. So besides responses/s, the table gives each
# server's CPU time per answered request (user + system, from /proc/PID/stat over the
# measured run) and the rate one core would give at that cost: that is the comparison.
#
# Prints a Markdown table. Needs target/peers (scripts/fetch-peers.sh) for chronyd.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-10}"
LOAD_OPTS=(--duration "$SECONDS_PER_RUN" --rate 3000000 --in-flight 256 --sockets 16 --json)
cargo build --release -q -p tempora-examples --bin ntp-server --bin ntp-load
BIN=target/release
PEERS=target/peers/root
WORK="$(mktemp -d)"
chmod 750 "$WORK"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

# A test PKI: a CA and a certificate for 127.0.0.1.
(
  cd "$WORK"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
    -out ca.pem -days 2 -subj "/CN=bench CA" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key \
    -out server.csr -subj "/CN=localhost" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext.cnf
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
    -days 2 -extfile ext.cnf 2>/dev/null
)

run_one() { # name, ntp port, ke port, then the command
  local name="$1" ntp="$2" ke="$3"; shift 3
  taskset -c 1 "$@" >"$WORK/$name.out" 2>&1 &
  PID=$!
  sleep 2
  local nts=(--nts "127.0.0.1:$ke" --ca-file "$WORK/ca.pem")
  # Warm up, then measure.
  taskset -c 0 "$BIN/ntp-load" "${LOAD_OPTS[@]/$SECONDS_PER_RUN/1}" "${nts[@]}" "127.0.0.1:$ntp" >/dev/null || true
  local before after
  before=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  taskset -c 0 "$BIN/ntp-load" "${LOAD_OPTS[@]}" "${nts[@]}" "127.0.0.1:$ntp" >"$WORK/$name.json"
  after=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  echo $(( after - before )) >"$WORK/$name.ticks"
  taskset -c 0 "$BIN/ntp-load" --duration "$SECONDS_PER_RUN" --sockets 4 --json --key-exchanges \
    "${nts[@]}" "127.0.0.1:$ntp" >"$WORK/$name.ke.json"
  kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""
  python3 - "$name" "$WORK/$name.json" "$WORK/$name.ke.json" "$(cat "$WORK/$name.ticks")" "$(getconf CLK_TCK)" >>"$WORK/rows" <<'PY'
import json, sys
name, path, ke, ticks, hz = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
r = json.load(open(path)); k = json.load(open(ke))
cpu_us = ticks / hz * 1e6 / max(r["responses"], 1)
print(json.dumps({"name": name, "rate": r["responses_per_s"], "p50": r["rtt_p50_us"],
                  "p99": r["rtt_p99_us"], "timeouts": r["timeouts"],
                  "unauth": r["nts"]["unauthenticated"], "naks": r["nts"]["naks"],
                  "cpu_us": cpu_us, "ke": k["key_exchanges_per_s"], "ke_failed": k["failed"]}))
PY
}

cat >"$WORK/server.toml" <<TOML
listen = ["127.0.0.1:12123"]
threads = 1
log_level = "warn"
[source]
kind = "local"
stratum = 1
[nts]
certificate = "$WORK/server.pem"
private_key = "$WORK/server.key"
ke_listen = ["127.0.0.1:14460"]
TOML
run_one "tempora ntp-server" 12123 14460 "$BIN/ntp-server" --config "$WORK/server.toml"
if [ -x "$PEERS/usr/sbin/chronyd" ]; then
  printf 'port 12124\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 1\ncmdport 0\npidfile %s/chronyd.pid\nntsserverkey %s/server.key\nntsservercert %s/server.pem\nntsport 14461\nntsdumpdir %s\n' \
    "$WORK" "$WORK" "$WORK" "$WORK" >"$WORK/chrony.conf"
  run_one "chronyd 4.3" 12124 14461 setpriv --bounding-set=-sys_time -- "$PEERS/usr/sbin/chronyd" -d -x -u root -f "$WORK/chrony.conf"
fi

python3 - "$WORK/rows" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| NTS server | responses/s | CPU per response | responses/s per core at that cost | p50 rtt | p99 rtt | timeouts | unauthenticated | NAKs | KE handshakes/s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    per_core = 1e6 / r["cpu_us"] if r["cpu_us"] else 0
    print(f"| {r['name']} | {r['rate']:.0f} | {r['cpu_us']:.2f} us | {per_core:.0f} | {r['p50']:.0f} us | {r['p99']:.0f} us | {r['timeouts']} | {r['unauth']} | {r['naks']} | {r['ke']:.0f} |")
if len(rows) == 2 and rows[1]["rate"]:
    print(f"\nours / chronyd: {rows[0]['rate'] / rows[1]['rate']:.2f}x responses/s under the same load, "
          f"{rows[1]['cpu_us'] / rows[0]['cpu_us']:.2f}x fewer CPU microseconds per response, "
          f"{rows[0]['ke'] / max(rows[1]['ke'], 1):.2f}x handshakes/s")
PY
