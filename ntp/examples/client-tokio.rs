//! The same client as `examples/client.rs` on tokio: one `select!` loop waits for either
//! the next datagram or the engine's next timer. Observe-only.
//!
//! ```sh
//! cargo run -p tempora-ntp --features tokio --example client-tokio -- 127.0.0.1:123 30
//! ```

use std::time::{Duration, Instant, SystemTime};

use tempora_clock_types::LocalInstant;
use tempora_ntp::{NtpSource, NtpSystem, SourceConfig, SystemConfig, SystemEvent};
use tempora_ntp_proto::NtpTimestamp;
use tokio::net::UdpSocket;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let server = args.next().unwrap_or_else(|| "127.0.0.1:123".into());
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(30.0);

    let socket = UdpSocket::bind("0.0.0.0:0").await?;
    socket.connect(&server).await?;
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
    let end = tokio::time::Instant::now() + Duration::from_secs_f64(seconds);
    loop {
        system.handle_timeout(now(), wall(), || getrandom::u64().ok());
        while let Some(transmit) = system.poll_transmit(&mut request) {
            socket.send(&request[..transmit.len]).await?;
        }
        while let Some(event) = system.poll_event() {
            if let SystemEvent::Updated(e) = event {
                println!("offset {:+.6} s, jitter {:.6} s", e.offset, e.jitter);
            }
        }
        let wait = system
            .poll_timeout()
            .map_or(1.0, |t| t.seconds_since(now()));
        let wake = tokio::time::Instant::now() + Duration::from_secs_f64(wait.clamp(0.001, 1.0));
        tokio::select! {
            received = socket.recv(&mut datagram) => {
                let n = received?;
                system.handle_response(0, &datagram[..n], wall(), now());
            }
            () = tokio::time::sleep_until(wake.min(end)) => {
                if tokio::time::Instant::now() >= end {
                    return Ok(());
                }
            }
        }
    }
}
