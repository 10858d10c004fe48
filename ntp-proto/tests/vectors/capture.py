#!/usr/bin/env python3
"""Captures golden NTP packets from real chronyd (chrony 4.3) and ntpsec (1.2.2) on loopback.

Run from the repository root, as root (ntpsec only speaks to and from port 123):

    scripts/fetch-peers.sh && python3 ntp-proto/tests/vectors/capture.py target/peers

Every peer runs from the unpacked Debian packages, without CAP_SYS_TIME
(setpriv --bounding-set=-sys_time), and chronyd with -x as well: none of them can touch the
clock. Traffic stays on 127.0.0.1. Each .hex file written here says how it was captured.
Rerunning rewrites the files with fresh timestamps; the tests check structure and MACs, not
time values, so they pass with any capture.
"""

import contextlib
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/peers")
ROOT = os.path.join(PEERS, "root")
CHRONYD = os.path.join(ROOT, "usr/sbin/chronyd")
NTPD = os.path.join(ROOT, "usr/sbin/ntpd")
NTPDIG = os.path.join(ROOT, "usr/bin/ntpdig")
NOPRIV = ["setpriv", "--bounding-set=-sys_time", "--"]
NTP_UNIX_OFFSET = 2208988800

# Test-only keys; the same bytes are in the keyed-vector tests.
KEYS = {
    1: ("MD5", bytes(range(1, 21))),
    2: ("SHA1", bytes(range(21, 41))),
    3: ("AES128", bytes(range(41, 57))),
}


def ntp_now():
    t = time.time()
    return (((int(t) + NTP_UNIX_OFFSET) << 32) | int((t % 1) * 2**32)) % 2**64


def reply_to(request):
    """A plain stratum-1 answer, enough to keep a client under test talking."""
    now = ntp_now()
    version = (request[0] >> 3) & 7
    return struct.pack(
        "!BBbbII4sQQQQ", (version << 3) | 4, 1, request[2], -20, 0, 16, b"TEST", now,
        struct.unpack("!Q", request[40:48])[0], now, now,
    )


def write_vector(name, packet, how):
    path = os.path.join(HERE, name)
    with open(path, "w") as f:
        for line in how.strip().splitlines():
            f.write("# " + line.strip() + "\n")
        f.write("# captured " + time.strftime("%Y-%m-%d", time.gmtime()) + ", "
                + str(len(packet)) + " bytes\n")
        for i in range(0, len(packet), 16):
            f.write(packet[i:i + 16].hex(" ") + "\n")
    print(f"wrote {name} ({len(packet)} bytes)")


def capture_requests(cmd, port, count=1, timeout=15.0, env=None):
    """Runs a client under test against a socket of ours; returns its first requests."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    sock.settimeout(timeout)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    packets = []
    try:
        while len(packets) < count:
            data, addr = sock.recvfrom(2048)
            packets.append(data)
            sock.sendto(reply_to(data), addr)
    except socket.timeout:
        err = proc.stderr.read1(4096) if proc.poll() is not None else b""
        raise SystemExit(f"no request from {cmd[len(NOPRIV)]}: {err.decode(errors='replace')}")
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        sock.close()
    return packets


def query(port, request, count=1, timeout=5.0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    answers = []
    try:
        for _ in range(count):
            sock.sendto(request, ("127.0.0.1", port))
            try:
                answers.append(sock.recv(2048))
            except socket.timeout:
                answers.append(None)
    finally:
        sock.close()
    return answers


def wait_for_udp_port(port, deadline=10.0):
    end = time.time() + deadline
    while time.time() < end:
        out = subprocess.run(["ss", "-Hualn", "sport", "=", f":{port}"], capture_output=True, text=True).stdout
        if out.strip():
            return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on UDP port {port}")


@contextlib.contextmanager
def running(cmd, port):
    """Starts a server under test, waits until it listens on `port`, stops it afterwards."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_udp_port(port)
        time.sleep(1.0)
        yield proc
    finally:
        proc.terminate()
        proc.wait(5)


def plain_request():
    return struct.pack("!BBbbII4sQQQQ", 0x23, 0, 6, -20, 0, 0, b"\0\0\0\0", 0, 0, 0, ntp_now())


def md5_request():
    """A client request made here, with key 1 (MD5) appended as chrony and ntpd do."""
    header = plain_request()
    digest = hashlib.md5(KEYS[1][1] + header).digest()
    return header + struct.pack("!I", 1) + digest


def chrony_keyfile(tmp):
    path = os.path.join(tmp, "keys")
    with open(path, "w") as f:
        for key_id, (kind, secret) in KEYS.items():
            f.write(f"{key_id} {kind} HEX:{secret.hex().upper()}\n")
    return path


def capture_chrony(tmp):
    keyfile = chrony_keyfile(tmp)
    common = ["-u", "root", "-x"]
    # chronyd as a client (-Q: measure once, never set the clock).
    for name, key in [("", None), ("-md5", 1), ("-sha1", 2), ("-aes128", 3)]:
        server = "server 127.0.0.1 port 11123 iburst" + (f" key {key}" if key else "")
        # Directives given on the command line replace the config file.
        cmd = NOPRIV + [CHRONYD, "-Q", *common, f"keyfile {keyfile}",
                        f"pidfile {tmp}/client.pid", "cmdport 0", server]
        packet = capture_requests(cmd, 11123)[0]
        write_vector(
            f"chrony-4.3-client-request{name}.hex", packet,
            f"""A request from chronyd 4.3 (Debian 4.3-2+deb12u3) as a client:
            setpriv --bounding-set=-sys_time -- chronyd -Q -u root -x 'keyfile KEYS' '{server}'
            received by a UDP socket on 127.0.0.1:11123 (ntp-proto/tests/vectors/capture.py).
            """ + (f"Key {key}: {KEYS[key][0]} HEX:{KEYS[key][1].hex().upper()}" if key else ""),
        )

    # chronyd as a server (local stratum 1), answering a plain and an MD5-keyed request.
    conf = os.path.join(tmp, "server.conf")
    with open(conf, "w") as f:
        f.write(f"""port 11124
bindaddress 127.0.0.1
allow 127.0.0.1
local stratum 1
cmdport 0
keyfile {keyfile}
pidfile {tmp}/server.pid
""")
    with running(NOPRIV + [CHRONYD, "-d", "-f", conf, *common], 11124):
        response = query(11124, plain_request())[0]
        write_vector("chrony-4.3-server-response.hex", response,
                     """chronyd 4.3 as a server ('local stratum 1', -x, no CAP_SYS_TIME) on
                     127.0.0.1:11124, answering a plain NTPv4 client request.""")
        response = query(11124, md5_request())[0]
        write_vector("chrony-4.3-server-response-md5.hex", response,
                     f"""chronyd 4.3 as a server ('local stratum 1', -x, no CAP_SYS_TIME) on
                     127.0.0.1:11124, answering a client request carrying key 1 (MD5,
                     HEX:{KEYS[1][1].hex().upper()}); the answer carries the same key.""")


def capture_ntpsec(tmp):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "usr/lib/python3/dist-packages"))
    # ntpdig as a client: it only speaks to port 123.
    packet = capture_requests(NOPRIV + ["/usr/bin/python3", NTPDIG, "-t", "2", "127.0.0.1"], 123, env=env)[0]
    write_vector("ntpsec-1.2.2-ntpdig-request.hex", packet,
                 """A request from ntpsec 1.2.2's ntpdig (Debian 1.2.2+dfsg1-1+deb12u1):
                 setpriv --bounding-set=-sys_time -- python3 ntpdig -t 2 127.0.0.1
                 received by a UDP socket on 127.0.0.1:123.""")

    # ntpd as a server: unsynchronised (no source), with rate limiting and KoD.
    conf = os.path.join(tmp, "ntp.conf")
    with open(conf, "w") as f:
        f.write("""interface ignore wildcard
interface listen 127.0.0.1
restrict default kod limited
discard average 3 minimum 2
disable kernel
disable ntp
""")
    with running(NOPRIV + [NTPD, "-n", "-c", conf, "-l", os.path.join(tmp, "ntpd.log")], 123):
        response = query(123, plain_request())[0]
        write_vector("ntpsec-1.2.2-ntpd-response-unsync.hex", response,
                     """ntpsec 1.2.2's ntpd as a server with no source (unsynchronised), no
                     CAP_SYS_TIME, 'disable kernel', 'disable ntp', listening on 127.0.0.1:123,
                     answering a plain NTPv4 client request.""")
        kod = None
        # Unsynchronised, ntpd answers with stratum 0 and refid INIT; the KoD has RATE.
        for _ in range(50):
            answer = query(123, plain_request(), timeout=0.5)[0]
            if answer and answer[1] == 0 and answer[12:16] == b"RATE":
                kod = answer
                break
        if kod is None:
            raise SystemExit("ntpd sent no kiss-o'-death")
        write_vector("ntpsec-1.2.2-ntpd-kod-rate.hex", kod,
                     """ntpsec 1.2.2's ntpd ('restrict default kod limited', 'discard average 3
                     minimum 2') answering a burst of client requests from one address on
                     127.0.0.1:123 with a kiss-o'-death.""")


def main():
    for path in [CHRONYD, NTPD, NTPDIG]:
        if not os.path.exists(path):
            raise SystemExit(f"{path} missing: run scripts/fetch-peers.sh first")
    if shutil.which("setpriv") is None:
        raise SystemExit("setpriv (util-linux) is needed")
    with tempfile.TemporaryDirectory() as tmp:
        capture_chrony(tmp)
        capture_ntpsec(tmp)


if __name__ == "__main__":
    main()
