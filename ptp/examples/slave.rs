//! A PTP slave over UDP/IPv4 multicast with software timestamps taken in user space:
//! it follows the best master on the network and prints the offset and path delay.
//! Observe-only: `poll_action` gives nothing to apply. `ptp-slave` adds kernel and
//! hardware timestamps, Ethernet and IPv6, PHCs and metrics. Binding ports 319 and 320
//! needs CAP_NET_BIND_SERVICE (or root).
//!
//! ```sh
//! cargo run -p tempora-ptp --example slave -- 60
//! ```

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempora_clock_types::LocalInstant;
use tempora_ptp::{PortConfig, PortEvent, PtpPort};
use tempora_ptp_proto::{ClockIdentity, PortIdentity};

fn main() -> std::io::Result<()> {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60.0);
    let group = Ipv4Addr::new(224, 0, 1, 129);
    let event = UdpSocket::bind("0.0.0.0:319")?;
    let general = UdpSocket::bind("0.0.0.0:320")?;
    for socket in [&event, &general] {
        socket.join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)?;
        socket.set_read_timeout(Some(Duration::from_millis(10)))?;
    }
    let start = Instant::now();
    let now = || LocalInstant::from_nanos(start.elapsed().as_nanos() as i64);
    // PTP's timescale is TAI; a system clock on UTC reads 37 s behind, which the offset
    // shows unless the master says otherwise (ptp-slave reads the UTC offset it announces).
    let wall = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128)
    };
    let identity = PortIdentity {
        clock_identity: ClockIdentity::from_mac([0x02, 0, 0, 0x5e, 0x11, 0x01]),
        port_number: 1,
    };
    let config = PortConfig {
        steering: false,
        ..PortConfig::default()
    };
    let mut port = PtpPort::new(identity, config);
    let (mut datagram, mut message) = ([0u8; 1500], [0u8; 128]);
    while start.elapsed().as_secs_f64() < seconds {
        for socket in [&event, &general] {
            if let Ok(n) = socket.recv(&mut datagram) {
                port.handle_message(&datagram[..n], wall(), now());
            }
        }
        port.handle_timeout(now());
        while let Some(transmit) = port.poll_transmit(&mut message) {
            let (socket, udp_port) = if transmit.kind.is_event() {
                (&event, 319)
            } else {
                (&general, 320)
            };
            socket.send_to(&message[..transmit.len], (group, udp_port))?;
            if transmit.kind.is_event() {
                port.handle_transmit_timestamp(transmit.kind, wall());
            }
        }
        while let Some(action) = port.poll_action() {
            println!("would apply {action:?}");
        }
        while let Some(event) = port.poll_event() {
            match event {
                PortEvent::Sample(s) => println!(
                    "offset {:>9.0} ns  path delay {:>7.0} ns  {:?}",
                    s.offset_ns, s.path_delay_ns, s.state
                ),
                other => println!("{other:?}"),
            }
        }
    }
    Ok(())
}
