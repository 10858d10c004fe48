//! Truth: the host measures a guest's clock from outside. The guest serves its own clock
//! (`ntp-server --local-stratum`, forwarded by QEMU to a port on the host's loopback);
//! the host queries it many times against its own CLOCK_REALTIME and keeps the answer
//! with the shortest round trip, whose offset error is at most half that round trip.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tempora_ntp_proto::{NtpHeader, NtpTimestamp, Version, client_request, offset_and_delay};

/// One measurement of a guest's clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Truth {
    /// Guest minus host, seconds.
    pub offset: f64,
    /// The round trip of the answer used, seconds (the offset is within half of it).
    pub delay: f64,
    /// Answers received of those asked.
    pub answers: usize,
}

fn host_now() -> NtpTimestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    NtpTimestamp::from_unix_nanos(d.as_nanos() as i128)
}

/// Asks the server at `address` `queries` times, 20 ms apart; the shortest round trip's
/// offset. `None` when nothing answered.
pub fn measure(address: SocketAddr, queries: usize) -> Option<Truth> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .ok()?;
    let mut best: Option<Truth> = None;
    let mut answers = 0;
    let mut buf = [0u8; 128];
    for _ in 0..queries {
        let t1 = host_now();
        let request = client_request(Version::V4, t1.to_bits());
        if socket.send_to(&request.to_bytes(), address).is_err() {
            continue;
        }
        let Ok((n, _)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let t4 = host_now();
        let Ok(h) = NtpHeader::parse_bytes(&buf[..n]) else {
            continue;
        };
        if h.origin_timestamp != request.transmit_timestamp {
            continue;
        }
        answers += 1;
        let od = offset_and_delay(t1, h.receive_timestamp, h.transmit_timestamp, t4);
        let t = Truth {
            offset: od.offset.to_seconds_f64(),
            delay: od.delay.to_seconds_f64(),
            answers: 0,
        };
        if best.is_none_or(|b| t.delay < b.delay) {
            best = Some(t);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    best.map(|b| Truth { answers, ..b })
}
