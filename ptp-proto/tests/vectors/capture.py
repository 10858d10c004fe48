#!/usr/bin/env python3
"""Captures golden PTP messages from real linuxptp 3.1.1 (Debian 3.1.1-4+b2).

Run from the repository root, as root:

    scripts/fetch-peers.sh && python3 ptp-proto/tests/vectors/capture.py target/peers

The script makes two network namespaces joined by a veth pair (tp-cap-m, tp-cap-s), runs
ptp4l as master in one and as slave in the other, both with software timestamps,
`free_running 1` and without CAP_SYS_TIME (setpriv --bounding-set=-sys_time), so neither
can touch a clock. A raw AF_PACKET socket in the slave's namespace records every frame on
the veth. pmc asks the master for its data sets over ptp4l's Unix socket, through a relay
that records both directions.
Each .hex file written says how it was captured. The namespaces are removed at the end.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/peers")
ROOT = os.path.join(PEERS, "root")
PTP4L = os.path.join(ROOT, "usr/sbin/ptp4l")
PMC = os.path.join(ROOT, "usr/sbin/pmc")
NOPRIV = ["setpriv", "--bounding-set=-sys_time", "--"]
NS_M, NS_S = "tp-cap-m", "tp-cap-s"

SNIFFER = r"""
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("vs", 0))
s.settimeout(0.2)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    try:
        frame, addr = s.recvfrom(4096)
    except socket.timeout:
        continue
    sys.stdout.write(frame.hex() + "\n")
    sys.stdout.flush()
"""

MESSAGE_NAMES = {
    0x0: "sync", 0x1: "delay-req", 0x2: "pdelay-req", 0x3: "pdelay-resp",
    0x8: "follow-up", 0x9: "delay-resp", 0xA: "pdelay-resp-follow-up",
    0xB: "announce", 0xC: "signaling", 0xD: "management",
}


def run(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def netns(ns, *cmd, check=True):
    return run("ip", "netns", "exec", ns, *cmd, check=check)


def setup():
    teardown()
    run("ip", "netns", "add", NS_M)
    run("ip", "netns", "add", NS_S)
    run("ip", "link", "add", "vm", "netns", NS_M, "type", "veth", "peer", "name", "vs", "netns", NS_S)
    for ns, dev, v4, v6 in [(NS_M, "vm", "10.213.0.1/24", "fd00:213::1/64"),
                            (NS_S, "vs", "10.213.0.2/24", "fd00:213::2/64")]:
        netns(ns, "ip", "link", "set", "lo", "up")
        netns(ns, "ip", "addr", "add", v4, "dev", dev)
        netns(ns, "ip", "-6", "addr", "add", v6, "dev", dev, "nodad")
        netns(ns, "ip", "link", "set", dev, "up")
        netns(ns, "ip", "route", "add", "224.0.0.0/4", "dev", dev)
    time.sleep(1.0)


def teardown():
    for ns in (NS_M, NS_S):
        run("ip", "netns", "del", ns, check=False)


def config(tmp, name, transport, mechanism, extra=""):
    path = os.path.join(tmp, name + ".cfg")
    with open(path, "w") as f:
        f.write(f"""[global]
free_running 1
network_transport {transport}
delay_mechanism {mechanism}
time_stamping software
logAnnounceInterval 0
logSyncInterval -2
logMinDelayReqInterval -2
logMinPdelayReqInterval -2
path_trace_enabled 1
udp6_scope 0x02
uds_address {tmp}/{name}.sock
{extra}
""")
    return path


def ptp4l(ns, dev, cfg, *args):
    return subprocess.Popen(["ip", "netns", "exec", ns] + NOPRIV + [PTP4L, "-i", dev, "-f", cfg, *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def sniff(seconds):
    return subprocess.Popen(["ip", "netns", "exec", NS_S, sys.executable, "-c", SNIFFER, str(seconds)],
                            stdout=subprocess.PIPE, text=True)


def ptp_payload(frame):
    """The PTP message in a frame: (transport, message bytes) or None."""
    ethertype = int.from_bytes(frame[12:14], "big")
    if ethertype == 0x88F7:
        return "l2", frame[14:]
    if ethertype == 0x0800:
        ihl = (frame[14] & 0x0F) * 4
        if frame[14 + 9] != 17:
            return None
        udp = frame[14 + ihl:]
        if int.from_bytes(udp[2:4], "big") in (319, 320):
            return "udp4", udp[8:]
    if ethertype == 0x86DD and frame[14 + 6] == 17:
        udp = frame[14 + 40:]
        if int.from_bytes(udp[2:4], "big") in (319, 320):
            return "udp6", udp[8:]
    return None


def write_vector(name, data, how):
    path = os.path.join(HERE, name)
    with open(path, "w") as f:
        for line in how.strip().splitlines():
            f.write("# " + line.strip() + "\n")
        f.write("# captured " + time.strftime("%Y-%m-%d", time.gmtime()) + ", " + str(len(data)) + " bytes\n")
        for i in range(0, len(data), 16):
            f.write(data[i:i + 16].hex(" ") + "\n")
    print(f"wrote {name} ({len(data)} bytes)")


def capture_run(tmp, label, transport, mechanism, extra="", seconds=6, whole_frames=False):
    """Runs master and slave, sniffs, and writes the first message of each type."""
    cfg = config(tmp, label, transport, mechanism, extra)
    cfg_s = config(tmp, label + "-slave", transport, mechanism, extra)
    master = ptp4l(NS_M, "vm", cfg, "-S")
    slave = ptp4l(NS_S, "vs", cfg_s, "-S", "-s")
    sniffer = sniff(seconds)
    out, _ = sniffer.communicate()
    for proc in (master, slave):
        proc.terminate()
        proc.wait(5)
    seen = set()
    for line in out.split():
        frame = bytes.fromhex(line)
        found = ptp_payload(frame)
        if not found:
            continue
        kind, message = found
        name = MESSAGE_NAMES.get(message[0] & 0x0F)
        if name is None or name in seen:
            continue
        seen.add(name)
        data = frame if whole_frames else message[:int.from_bytes(message[2:4], "big")]
        write_vector(f"ptp4l-3.1.1-{label}-{name}.hex", data, f"""
            A {name} message from linuxptp 3.1.1 ptp4l ({'whole Ethernet frame' if whole_frames else 'PTP message'}),
            network_transport {transport}, delay_mechanism {mechanism}, software timestamps,
            free_running 1, no CAP_SYS_TIME, master and slave in two network namespaces
            joined by a veth pair; recorded by an AF_PACKET socket in the slave's namespace
            (ptp-proto/tests/vectors/capture.py). {extra.strip()}""")
    return seen


def capture_management(tmp):
    """pmc talks to ptp4l over a Unix datagram socket; a relay of ours in between records
    both directions (the bytes are ordinary PTP management messages)."""
    import socket
    import threading

    cfg = config(tmp, "mgmt", "UDPv4", "E2E")
    master = ptp4l(NS_M, "vm", cfg, "-S")
    relay_path = os.path.join(tmp, "relay.sock")
    relay = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    relay.bind(relay_path)
    relay.settimeout(0.5)
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    upstream.bind(os.path.join(tmp, "relay-up.sock"))
    upstream.settimeout(0.5)
    recorded = []
    stop = threading.Event()

    def pump():
        import select
        client = None
        while not stop.is_set():
            ready, _, _ = select.select([relay, upstream], [], [], 0.05)
            for sock in ready:
                data, sender = sock.recvfrom(4096)
                recorded.append(data)
                try:
                    if sock is relay:
                        client = sender
                        upstream.sendto(data, os.path.join(tmp, "mgmt.sock"))
                    elif client:
                        relay.sendto(data, client)
                except OSError:
                    pass  # pmc gave up waiting; the message is recorded all the same

    thread = threading.Thread(target=pump)
    thread.start()
    time.sleep(2.0)
    queries = ["GET DEFAULT_DATA_SET", "GET CURRENT_DATA_SET", "GET PARENT_DATA_SET",
               "GET TIME_PROPERTIES_DATA_SET", "GET PORT_DATA_SET", "GET CLOCK_DESCRIPTION",
               "GET USER_DESCRIPTION", "GET PRIORITY1", "GET DOMAIN", "GET TIME",
               "GET CLOCK_ACCURACY", "GET UTC_PROPERTIES", "GET TIMESCALE_PROPERTIES",
               "GET LOG_ANNOUNCE_INTERVAL"]
    for i, query in enumerate(queries):
        netns(NS_M, *NOPRIV, PMC, "-u", "-s", relay_path, "-i", os.path.join(tmp, f"pmc{i}.sock"),
              "-b", "0", query, check=False)
    stop.set()
    thread.join()
    master.terminate()
    master.wait(5)
    written = 0
    for message in recorded:
        if len(message) < 54 or (message[0] & 0x0F) != 0xD:
            continue
        message = message[:int.from_bytes(message[2:4], "big")]
        action = message[46] & 0x0F
        tlv_type = int.from_bytes(message[48:50], "big")
        mid = int.from_bytes(message[54:56] if tlv_type == 2 else message[52:54], "big")
        kind = "error" if tlv_type == 2 else {0: "get", 2: "response"}.get(action, f"action{action}")
        name = f"ptp4l-3.1.1-pmc-{kind}-{mid:04x}.hex"
        if os.path.exists(os.path.join(HERE, name)):
            continue
        write_vector(name, message, f"""
            A management message ({kind}, management ID {mid:#06x}) between linuxptp 3.1.1's
            pmc ('pmc -u -b 0 GET ...') and ptp4l (software timestamps, free_running 1, no
            CAP_SYS_TIME) over their Unix datagram socket, recorded by a relay socket placed
            between them (ptp-proto/tests/vectors/capture.py).""")
        written += 1
    return written


def main():
    for path in [PTP4L, PMC]:
        if not os.path.exists(path):
            raise SystemExit(f"{path} missing: run scripts/fetch-peers.sh first")
    if shutil.which("setpriv") is None or shutil.which("ip") is None:
        raise SystemExit("setpriv (util-linux) and ip (iproute2) are needed")
    for old in os.listdir(HERE):
        if old.startswith("ptp4l-") and old.endswith(".hex"):
            os.remove(os.path.join(HERE, old))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            setup()
            capture_run(tmp, "udp4-e2e", "UDPv4", "E2E")
            capture_run(tmp, "udp6-e2e", "UDPv6", "E2E")
            capture_run(tmp, "udp4-p2p", "UDPv4", "P2P")
            capture_run(tmp, "l2-p2p", "L2", "P2P", whole_frames=True)
            capture_run(tmp, "l2-gptp", "L2", "P2P",
                        extra="transportSpecific 0x1\nfollow_up_info 1\nptp_dst_mac 01:80:C2:00:00:0E",
                        whole_frames=True)
            capture_management(tmp)
        finally:
            teardown()


if __name__ == "__main__":
    main()
