//! An NTP client in a few dozen lines over `std::net::UdpSocket`: polls one server,
//! selects, and prints the offset the discipline would correct. Observe-only: it never
//! touches the clock.
//!
//! ```sh
//! cargo run -p tempora-ntp --example client -- 127.0.0.1:123 30
//! ```

use std::net::UdpSocket;
use std::time::{Duration, Instant, SystemTime};

use tempora_clock_types::LocalInstant;
use tempora_ntp::{NtpSource, NtpSystem, SourceConfig, SystemConfig, SystemEvent};
use tempora_ntp_proto::NtpTimestamp;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let server = args.next().unwrap_or_else(|| "127.0.0.1:123".into());
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(30.0);

    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.connect(&server)?;
    // The engine's clocks: a monotonic one for timers, the wall clock for timestamps.
    let start = Instant::now();
    let now = || LocalInstant::from_nanos(start.elapsed().as_nanos() as i64);
    let wall = || NtpTimestamp::from_system_time(SystemTime::now());

    let source = NtpSource::new(
        SourceConfig {
            min_poll: 1,
            max_poll: 4,
            ..SourceConfig::default()
        },
        now(),
    );
    let config = SystemConfig {
        observe_only: true,
        ..SystemConfig::default()
    };
    let mut system = NtpSystem::new(vec![source], config, 0.0);
    let (mut datagram, mut request) = ([0u8; 1024], [0u8; 128]);
    while start.elapsed().as_secs_f64() < seconds {
        // Request nonces must be unguessable: take them from the kernel.
        system.handle_timeout(now(), wall(), || getrandom::u64().ok());
        while let Some(transmit) = system.poll_transmit(&mut request) {
            socket.send(&request[..transmit.len])?;
        }
        while let Some(event) = system.poll_event() {
            match event {
                SystemEvent::Updated(e) => {
                    println!("offset {:+.6} s, jitter {:.6} s", e.offset, e.jitter)
                }
                SystemEvent::Response { outcome, .. } => println!("answer: {outcome:?}"),
                _ => {}
            }
        }
        // Observe-only, there are no actions; a steering program applies each in order.
        while let Some(action) = system.poll_action() {
            println!("would apply {action:?}");
        }
        let wait = system
            .poll_timeout()
            .map_or(1.0, |t| t.seconds_since(now()));
        socket.set_read_timeout(Some(Duration::from_secs_f64(wait.clamp(0.001, 1.0))))?;
        if let Ok(n) = socket.recv(&mut datagram) {
            system.handle_response(0, &datagram[..n], wall(), now());
        }
    }
    Ok(())
}
