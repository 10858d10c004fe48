//! Timestamps, multicast and AF_PACKET over a veth pair between two network namespaces that
//! the test makes (and removes). Traffic never leaves them. Needs root and iproute2; skips
//! with a message otherwise.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use tempora_sys_clock::{
    PacketSocket, TimestampMode, TimestampSource, TimestampedSocket, tempora_ptp_groups,
};

struct Pair {
    a: String,
    b: String,
}

impl Pair {
    /// Two namespaces joined by veth `va` (10.214.N.1) and `vb` (10.214.N.2).
    fn new(tag: &str, subnet: u8) -> Option<Self> {
        let pid = std::process::id();
        let pair = Self {
            a: format!("tp-{tag}-a-{pid}"),
            b: format!("tp-{tag}-b-{pid}"),
        };
        let ok = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .status()
                .is_ok_and(|s| s.success())
        };
        if !ok(&["netns", "add", &pair.a]) {
            eprintln!("skipped: cannot create network namespaces (needs root and iproute2)");
            return None;
        }
        assert!(ok(&["netns", "add", &pair.b]));
        assert!(ok(&[
            "link", "add", "va", "netns", &pair.a, "type", "veth", "peer", "name", "vb", "netns",
            &pair.b
        ]));
        for (ns, dev, host) in [(&pair.a, "va", 1), (&pair.b, "vb", 2)] {
            let addr = format!("10.214.{subnet}.{host}/24");
            assert!(ok(&["-n", ns, "link", "set", "lo", "up"]));
            assert!(ok(&["-n", ns, "addr", "add", &addr, "dev", dev]));
            assert!(ok(&["-n", ns, "link", "set", dev, "up"]));
            assert!(ok(&["-n", ns, "route", "add", "224.0.0.0/4", "dev", dev]));
        }
        Some(pair)
    }

    /// Runs `f` on a thread that has entered namespace `ns`; sockets made there stay in it.
    fn run<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{ns}");
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            // SAFETY: setns on this thread only, with an open namespace descriptor.
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Sends until the kernel stamps a received packet (datagrams can arrive unstamped just
/// after timestamping is turned on), at most 100 times: `exchange` sends one, receives it, and says whether
/// the receive timestamp came from the kernel.
fn warm_up(mut exchange: impl FnMut() -> bool) {
    for _ in 0..100 {
        if exchange() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the kernel never stamped a packet on the veth");
}

fn realtime() -> i128 {
    tempora_sys_clock::SystemClock::new()
        .now_realtime()
        .unwrap()
}

#[test]
fn udp_timestamps_and_multicast_over_veth() {
    let Some(pair) = Pair::new("udp", 1) else {
        return;
    };
    let receiver = Pair::run(&pair.b, || {
        let socket =
            TimestampedSocket::bind("0.0.0.0:11319".parse().unwrap(), TimestampMode::Software)
                .unwrap();
        socket
            .join_multicast_v4(
                tempora_ptp_groups::IPV4_PRIMARY,
                Ipv4Addr::new(10, 214, 1, 2),
            )
            .unwrap();
        socket
            .socket()
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        socket
    });
    let mut sender = Pair::run(&pair.a, || {
        let socket =
            TimestampedSocket::bind("10.214.1.1:0".parse().unwrap(), TimestampMode::Software)
                .unwrap();
        socket
            .socket()
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        socket
    });
    // Warm-up, bounded: the kernel must stamp a packet before the measured exchange.
    let mut buf = [0u8; 32];
    warm_up(|| {
        let warm = sender
            .send_to(b"warm", "10.214.1.2:11319".parse().unwrap())
            .unwrap();
        let got = receiver.recv_from(&mut buf).unwrap();
        assert_eq!(sender.recv_tx_timestamp().unwrap().id, warm);
        got.timestamp
            .is_some_and(|t| t.source == TimestampSource::Software)
    });
    let before = realtime();
    let unicast = sender
        .send_to(b"unicast", "10.214.1.2:11319".parse().unwrap())
        .unwrap();
    let group: SocketAddr = (tempora_ptp_groups::IPV4_PRIMARY, 11319).into();
    let multicast = sender.send_to(b"multicast", group).unwrap();
    let r1 = receiver.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..r1.len], b"unicast");
    let r2 = receiver.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..r2.len], b"multicast", "the joined group delivers");
    let after = realtime();
    let tx1 = sender.recv_tx_timestamp().unwrap();
    let tx2 = sender.recv_tx_timestamp().unwrap();
    assert_eq!((tx1.id, tx2.id), (unicast, multicast));
    let rx1 = r1.timestamp.unwrap();
    let rx2 = r2.timestamp.unwrap();
    // Kernel stamps (the warm-up proved the kernel stamps) or the user-space fallback.
    for rx in [rx1, rx2] {
        assert!(matches!(
            rx.source,
            TimestampSource::Software | TimestampSource::Userspace
        ));
    }
    for t in [
        tx1.timestamp.nanos,
        tx2.timestamp.nanos,
        rx1.nanos,
        rx2.nanos,
    ] {
        assert!(
            before <= t && t <= after,
            "timestamps lie between the clock reads"
        );
    }
    assert!(tx1.timestamp.nanos <= rx1.nanos && rx1.nanos - tx1.timestamp.nanos < 1_000_000);
    assert!(tx2.timestamp.nanos <= rx2.nanos && rx2.nanos - tx2.timestamp.nanos < 1_000_000);
}

#[test]
fn packet_socket_round_trip_over_veth() {
    let Some(pair) = Pair::new("l2", 2) else {
        return;
    };
    let receiver = Pair::run(&pair.b, || {
        let socket = PacketSocket::open("vb", TimestampMode::Software).unwrap();
        socket.join_multicast([0x01, 0x1B, 0x19, 0, 0, 0]).unwrap();
        socket.set_read_timeout(Duration::from_secs(3)).unwrap();
        socket
    });
    let mut sender = Pair::run(&pair.a, || {
        let socket = PacketSocket::open("va", TimestampMode::Software).unwrap();
        socket.set_read_timeout(Duration::from_secs(3)).unwrap();
        socket
    });
    // A PTP-over-Ethernet frame: PTP multicast MAC, any source, EtherType 0x88F7.
    let mut frame = vec![
        0x01, 0x1B, 0x19, 0, 0, 0, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xF7,
    ];
    frame.extend_from_slice(&[0x5A; 44]);
    // Warm-up, bounded: the kernel must stamp a packet before the measured exchange.
    let mut buf = [0u8; 128];
    warm_up(|| {
        let warm = sender.send(&frame).unwrap();
        let got = receiver.recv(&mut buf).unwrap();
        assert_eq!(sender.recv_tx_timestamp().unwrap().id, warm);
        got.timestamp
            .is_some_and(|t| t.source == TimestampSource::Software)
    });
    let before = realtime();
    let id = sender.send(&frame).unwrap();
    let got = receiver.recv(&mut buf).unwrap();
    let after = realtime();
    assert_eq!(&buf[..got.len], &frame[..]);
    let rx = got.timestamp.unwrap();
    assert!(matches!(
        rx.source,
        TimestampSource::Software | TimestampSource::Userspace
    ));
    assert!(before <= rx.nanos && rx.nanos <= after);
    let tx = sender.recv_tx_timestamp().unwrap();
    assert_eq!(tx.id, id);
    assert!(tx.timestamp.nanos <= rx.nanos && rx.nanos - tx.timestamp.nanos < 1_000_000);
}
