#!/usr/bin/env bash
# ptp4l as a slave and Tempora's ptp-slave, one after the other, on the same veth under
# one ptp4l master (software timestamps, free_running, sync 1/4 s), in namespaces this
# script makes and removes. Neither steers a clock: ptp4l runs free_running without
# CAP_SYS_TIME, ours observe-only. Needs root (ip netns) and target/peers
# (scripts/fetch-peers.sh).
#
#   scripts/ptp-compare.sh [-E | -P] [-4 | -6 | -2] [SECONDS]   (default -E -4 40)
#
# Prints each one's summary lines (rms, max, freq, delay); ours also gives the RMS of its
# raw offsets from --json.
set -euo pipefail
cd "$(dirname "$0")/.."
DELAY=-E; TRANSPORT=-4; SECONDS_PER_RUN=40
for a in "$@"; do
  case "$a" in
    -E|-P) DELAY=$a ;;
    -4|-6|-2) TRANSPORT=$a ;;
    *) SECONDS_PER_RUN=$a ;;
  esac
done
cargo build --release -q -p tempora-examples --bin ptp-slave
PTP4L=target/peers/root/usr/sbin/ptp4l
OURS=target/release/ptp-slave
WORK="$(mktemp -d)"
M=tempora-cmp-m$$; S=tempora-cmp-s$$; VM=tcm$$; VS=tcs$$
cleanup() {
  [ -n "${MASTER:-}" ] && kill "$MASTER" 2>/dev/null && wait "$MASTER" 2>/dev/null
  ip netns del "$M" 2>/dev/null || true
  ip netns del "$S" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add "$M"; ip netns add "$S"
ip link add "$VM" type veth peer name "$VS"
ip link set "$VM" netns "$M"; ip link set "$VS" netns "$S"
ip -n "$M" addr add 10.79.0.1/24 dev "$VM"; ip -n "$S" addr add 10.79.0.2/24 dev "$VS"
ip -n "$M" link set "$VM" up; ip -n "$S" link set "$VS" up
sleep 2
printf '[global]\nfree_running 1\nlogSyncInterval -2\npriority1 100\n' > "$WORK/m.conf"
printf '[global]\nfree_running 1\nlogSyncInterval -2\n' > "$WORK/s.conf"
ip netns exec "$M" setpriv --bounding-set=-sys_time -- \
  "$PTP4L" -i "$VM" "$TRANSPORT" "$DELAY" -S -f "$WORK/m.conf" > "$WORK/m.log" 2>&1 &
MASTER=$!
sleep 4
ip netns exec "$S" setpriv --bounding-set=-sys_time -- \
  "$PTP4L" -i "$VS" "$TRANSPORT" "$DELAY" -S -s -m -f "$WORK/s.conf" > "$WORK/s.log" 2>&1 &
SLAVE=$!
sleep "$SECONDS_PER_RUN"; kill "$SLAVE"; wait "$SLAVE" 2>/dev/null || true
echo "== ptp4l $TRANSPORT $DELAY as slave"
grep rms "$WORK/s.log" || echo "(no summary)"
ip netns exec "$S" setpriv --bounding-set=-sys_time -- \
  "$OURS" -i "$VS" "$TRANSPORT" "$DELAY" --observe --json --summary 16 \
  --duration "$SECONDS_PER_RUN" > "$WORK/ours.json" 2>/dev/null || true
echo "== ptp-slave $TRANSPORT $DELAY"
python3 - "$WORK/ours.json" <<'PY'
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
for r in rows:
    if r["kind"] == "summary":
        print("rms %6.0f max %6.0f freq %+7.0f +/- %4.0f delay %6.0f +/- %4.0f" % (
            r["rms_ns"], r["max_ns"], r["frequency_ppb"], r["frequency_sd"],
            r["delay_ns"], r["delay_sd"]))
s = [r for r in rows if r["kind"] == "sample" and r["state"] == "SLAVE" and not r["spike"]]
if s:
    rms = lambda k: math.sqrt(sum(x[k] ** 2 for x in s) / len(s))
    print("%d samples: RMS %.0f ns filtered, %.0f ns raw" % (
        len(s), rms("offset_ns"), rms("raw_offset_ns")))
PY
