//! `udp-echo`: the machine's ceiling for a UDP request/response server, for the server
//! benchmark: recvmmsg/sendmmsg batches, no timestamps, no parsing; every datagram goes
//! back as it came.
//!
//! ```text
//! udp-echo ADDR:PORT [SECONDS]
//! ```
//!
//! Stops by itself after SECONDS (default 60, at most 600).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tempora_sys_clock::{BatchOptions, BatchSocket, MAX_BATCH, RecvMeta, SendItem};

/// Echoes every UDP datagram back as it came, in recvmmsg/sendmmsg batches: the ceiling
/// the NTP server's throughput is measured against. Stops by itself.
#[derive(clap::Parser)]
#[command(name = "udp-echo", version, about)]
struct Cli {
    /// Where to listen, ADDR:PORT.
    address: SocketAddr,
    /// Seconds to run (0.1 to 600).
    #[arg(default_value_t = 60.0)]
    seconds: f64,
}

fn main() -> ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    let (address, seconds) = (cli.address, cli.seconds.clamp(0.1, 600.0));
    let mut socket = match BatchSocket::bind(
        address,
        BatchOptions {
            reuse_port: false,
            receive_buffer: Some(4 << 20),
            timestamps: false,
        },
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("udp-echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(100)));
    let mut bufs = vec![[0u8; 1024]; MAX_BATCH];
    let mut meta = [RecvMeta::default(); MAX_BATCH];
    let mut ids = [None; MAX_BATCH];
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < end {
        let n = socket.recv_batch(&mut bufs, &mut meta).unwrap_or(0);
        let items: Vec<SendItem<'_>> = (0..n)
            .filter_map(|i| {
                meta[i].from.map(|to| SendItem {
                    data: &bufs[i][..meta[i].len],
                    to,
                    tx_timestamp: false,
                })
            })
            .collect();
        let mut sent = 0;
        while sent < items.len() {
            match socket.send_batch(&items[sent..], &mut ids) {
                Ok(0) | Err(_) => break,
                Ok(k) => sent += k,
            }
        }
    }
    ExitCode::SUCCESS
}
