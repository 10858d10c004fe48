//! An NTP server loop over `std::net::UdpSocket`: the local clock served at stratum 10
//! (as chrony's `local stratum 10`), with rate limiting and interleaved mode. For real
//! service, `ntp-server` adds kernel timestamps, batches and one socket per core.
//!
//! ```sh
//! cargo run -p tempora-ntp --example server -- 127.0.0.1:12300 60
//! ```

use std::net::UdpSocket;
use std::time::{Duration, Instant, SystemTime};

use tempora_ntp::server::{Answer, ClientTable, Counters, RateLimit, Request, ServerCore};
use tempora_ntp_proto::{
    LeapIndicator, Log2Seconds, NtpShort, NtpTimestamp, ReferenceId, ServerState, Stratum,
};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:12300".into());
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60.0);
    let socket = UdpSocket::bind(&address)?;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    println!("serving on {}", socket.local_addr()?);

    let core = ServerCore {
        interleaved: true,
        ..ServerCore::default()
    };
    let mut seed = [0u8; 16];
    getrandom::fill(&mut seed).map_err(std::io::Error::other)?;
    let limit = RateLimit {
        enabled: true,
        ..RateLimit::default()
    };
    let mut clients = ClientTable::new(limit, seed);
    let mut counters = Counters::default();
    let wall = || NtpTimestamp::from_system_time(SystemTime::now());
    let start = Instant::now();
    let (mut datagram, mut answer) = ([0u8; 1024], [0u8; 1024]);
    while start.elapsed().as_secs_f64() < seconds {
        let Ok((n, from)) = socket.recv_from(&mut datagram) else {
            continue;
        };
        let rx = wall();
        let state = ServerState {
            leap: LeapIndicator::NoWarning,
            stratum: Stratum(10),
            precision: Log2Seconds(-20),
            root_delay: NtpShort::ZERO,
            root_dispersion: NtpShort::ZERO,
            reference_id: ReferenceId::from_ipv4(std::net::Ipv4Addr::new(127, 127, 1, 1)),
            reference_timestamp: rx,
        };
        let request = Request {
            bytes: &datagram[..n],
            truncated: false,
            from: from.ip(),
            from_port: from.port(),
            rx,
            now_ns: start.elapsed().as_nanos() as u64,
        };
        if let Answer::Reply {
            len,
            stamp_transmit,
            ..
        } = core.handle(&request, &state, &mut clients, &mut counters, &mut answer)
        {
            if stamp_transmit {
                // The transmit timestamp as late as possible (bytes 40..48).
                answer[40..48].copy_from_slice(&wall().to_bits().to_be_bytes());
            }
            socket.send_to(&answer[..len], from)?;
        }
    }
    println!("{counters:?}");
    Ok(())
}
