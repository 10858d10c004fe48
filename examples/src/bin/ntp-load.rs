//! `ntp-load`: a bounded NTP load generator for loopback and test network namespaces.
//!
//! ```text
//! ntp-load [--duration S] [--rate R] [--in-flight N] [--sockets K] [--timeout S] [--json]
//!          ADDR:PORT
//! ```
//!
//! Sends client requests from K source ports with at most N in flight, at most R per
//! second, for S seconds (at most 60), then reports responses/s, round-trip percentiles
//! and counts of timeouts, malformed answers and kisses. It refuses destinations that are
//! not loopback or private (RFC 1918, ULA, link-local): it is for your own servers.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tempora_ntp_proto::{KissCode, NtpHeader, ReferenceIdKind, Stratum, Version, client_request};
use tempora_sys_clock::{BatchOptions, BatchSocket, MAX_BATCH, RecvMeta, SendItem};

/// Loads an NTP server on loopback or a private network (your own test namespaces) and
/// reports responses/s, p50/p99/max round trip, timeouts, malformed answers and kisses.
#[derive(clap::Parser)]
#[command(name = "ntp-load", version, about)]
struct Cli {
    /// Seconds to run (at most 60).
    #[arg(long, default_value_t = 10.0, value_parser = range(0.1, 60.0))]
    duration: f64,
    /// Requests per second at most.
    #[arg(long, default_value_t = 500_000.0, value_parser = range(1.0, 10_000_000.0))]
    rate: f64,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    in_flight: u32,
    /// Source ports (sockets).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    sockets: u32,
    /// Seconds before a request counts as lost.
    #[arg(long, default_value_t = 1.0, value_parser = range(0.001, 10.0))]
    timeout: f64,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
    /// The server, ADDR:PORT.
    target: SocketAddr,
}

/// A parser for numbers from `lo` to `hi`.
fn range(lo: f64, hi: f64) -> impl Fn(&str) -> Result<f64, String> + Clone {
    move |text: &str| match text.parse::<f64>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(format!("a number from {lo} to {hi}")),
    }
}

struct Options {
    target: SocketAddr,
    duration: Duration,
    rate: f64,
    in_flight: usize,
    sockets: usize,
    timeout: Duration,
    json: bool,
}

fn allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback() || a.is_private() || a.is_link_local(),
        IpAddr::V6(a) => {
            a.is_loopback()
                || (a.segments()[0] & 0xfe00) == 0xfc00
                || (a.segments()[0] & 0xffc0) == 0xfe80
                || a.to_ipv4_mapped().is_some_and(|v4| allowed(IpAddr::V4(v4)))
        }
    }
}

fn parse() -> Result<Options, String> {
    let cli = <Cli as clap::Parser>::parse();
    if !allowed(cli.target.ip()) {
        return Err(format!(
            "{} is neither loopback nor a private address: ntp-load is for your own test servers",
            cli.target
        ));
    }
    Ok(Options {
        target: cli.target,
        duration: Duration::from_secs_f64(cli.duration),
        rate: cli.rate,
        in_flight: cli.in_flight as usize,
        sockets: (cli.sockets as usize).min(cli.in_flight as usize),
        timeout: Duration::from_secs_f64(cli.timeout),
        json: cli.json,
    })
}

/// Round trips in microseconds, 1 µs buckets up to 1 s.
struct Histogram {
    buckets: Vec<u64>,
    max_ns: u64,
    count: u64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: vec![0; 1_000_001],
            max_ns: 0,
            count: 0,
        }
    }
    fn add(&mut self, ns: u64) {
        let us = (ns / 1000).min(1_000_000) as usize;
        self.buckets[us] += 1;
        self.max_ns = self.max_ns.max(ns);
        self.count += 1;
    }
    fn quantile(&self, q: f64) -> f64 {
        let target = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (us, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= target {
                return us as f64 + 0.5;
            }
        }
        self.max_ns as f64 / 1000.0
    }
}

struct Flow {
    socket: BatchSocket,
    /// Per slot: generation and send time of the request in flight.
    slots: Vec<Option<(u32, Instant)>>,
    free: Vec<usize>,
    generation: u32,
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ntp-load: {e}");
            return ExitCode::from(2);
        }
    };
    let bind: SocketAddr = if o.target.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let per_socket = o.in_flight.div_ceil(o.sockets).min(1 << 16);
    let mut flows = Vec::new();
    for _ in 0..o.sockets {
        let socket = match BatchSocket::bind(
            bind,
            BatchOptions {
                reuse_port: false,
                receive_buffer: Some(4 << 20),
                timestamps: false,
            },
        ) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("ntp-load: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = socket.socket().set_nonblocking(true) {
            eprintln!("ntp-load: {e}");
            return ExitCode::FAILURE;
        }
        flows.push(Flow {
            socket,
            slots: vec![None; per_socket],
            free: (0..per_socket).rev().collect(),
            generation: 1,
        });
    }
    let mut hist = Histogram::new();
    let (mut sent, mut timeouts, mut malformed, mut other) = (0u64, 0u64, 0u64, 0u64);
    let mut kisses: std::collections::BTreeMap<String, u64> = Default::default();
    let start = Instant::now();
    let end = start + o.duration;
    let mut budget = 0.0f64;
    let mut last_refill = start;
    let mut last_sweep = start;
    let mut requests = [[0u8; 48]; MAX_BATCH];
    let mut bufs = [[0u8; 128]; MAX_BATCH];
    let mut meta = [RecvMeta::default(); MAX_BATCH];
    let mut ids = [None; MAX_BATCH];
    let hard_stop = start + o.duration + o.timeout + Duration::from_secs(1);
    loop {
        let now = Instant::now();
        let sending = now < end;
        let outstanding: usize = flows.iter().map(|f| per_socket - f.free.len()).sum();
        if (!sending && outstanding == 0) || now > hard_stop {
            break;
        }
        budget = (budget + now.duration_since(last_refill).as_secs_f64() * o.rate)
            .min((o.rate * 0.01).max(MAX_BATCH as f64));
        last_refill = now;
        for (fi, flow) in flows.iter_mut().enumerate() {
            if sending {
                let n = flow.free.len().min(MAX_BATCH).min(budget as usize);
                if n > 0 {
                    for request in requests.iter_mut().take(n) {
                        let Some(slot) = flow.free.pop() else { break };
                        flow.generation = flow.generation.wrapping_add(1).max(1);
                        flow.slots[slot] = Some((flow.generation, now));
                        let tag = (1u64 << 63)
                            | (u64::from(flow.generation) << 24)
                            | ((fi as u64) << 16)
                            | slot as u64;
                        *request = client_request(Version::V4, tag).to_bytes();
                    }
                    let items: Vec<SendItem<'_>> = requests[..n]
                        .iter()
                        .map(|r| SendItem {
                            data: r,
                            to: o.target,
                            tx_timestamp: false,
                        })
                        .collect();
                    let k = flow.socket.send_batch(&items, &mut ids).unwrap_or(0);
                    // Requests the kernel did not take go back to the free list.
                    for r in &requests[k..n] {
                        let slot = (u64::from_be_bytes(r[40..48].try_into().unwrap_or([0; 8]))
                            & 0xFFFF) as usize;
                        flow.slots[slot] = None;
                        flow.free.push(slot);
                    }
                    sent += k as u64;
                    budget -= k as f64;
                }
            }
            let got = flow.socket.recv_batch(&mut bufs, &mut meta).unwrap_or(0);
            let at = Instant::now();
            for i in 0..got {
                let Ok(h) = NtpHeader::parse_bytes(&bufs[i][..meta[i].len]) else {
                    malformed += 1;
                    continue;
                };
                // An answer echoes our tag in its origin; the bare echo baseline sends
                // the request back as it was, tag still in the transmit field.
                let tag = if h.mode == tempora_ntp_proto::AssociationMode::Client {
                    h.transmit_timestamp.to_bits()
                } else {
                    h.origin_timestamp.to_bits()
                };
                let slot = (tag & 0xFFFF) as usize;
                let generation = ((tag >> 24) & 0xFFFF_FFFF) as u32;
                match flow.slots.get(slot).copied().flatten() {
                    Some((g, sent_at)) if g == generation && (tag >> 16) & 0xFF == fi as u64 => {
                        flow.slots[slot] = None;
                        flow.free.push(slot);
                        if h.mode != tempora_ntp_proto::AssociationMode::Client
                            && h.stratum == Stratum::KISS_OF_DEATH
                        {
                            let code = match h.reference_id.interpret(h.stratum) {
                                ReferenceIdKind::Kiss(KissCode::Unknown(b)) => {
                                    String::from_utf8_lossy(&b).into_owned()
                                }
                                ReferenceIdKind::Kiss(c) => format!("{c:?}").to_uppercase(),
                                _ => "?".into(),
                            };
                            *kisses.entry(code).or_default() += 1;
                        } else {
                            hist.add(at.duration_since(sent_at).as_nanos() as u64);
                        }
                    }
                    _ => other += 1,
                }
            }
        }
        if now.duration_since(last_sweep) > Duration::from_millis(10) {
            last_sweep = now;
            for flow in &mut flows {
                for slot in 0..flow.slots.len() {
                    if let Some((_, t)) = flow.slots[slot] {
                        if now.duration_since(t) > o.timeout {
                            flow.slots[slot] = None;
                            flow.free.push(slot);
                            timeouts += 1;
                        }
                    }
                }
            }
        }
    }
    let elapsed = o.duration.as_secs_f64();
    let rate = hist.count as f64 / elapsed;
    let report = serde_json::json!({
        "target": o.target.to_string(),
        "duration_s": elapsed,
        "sent": sent,
        "responses": hist.count,
        "responses_per_s": rate,
        "rtt_p50_us": hist.quantile(0.5),
        "rtt_p99_us": hist.quantile(0.99),
        "rtt_max_us": hist.max_ns as f64 / 1000.0,
        "timeouts": timeouts,
        "malformed": malformed,
        "unmatched": other,
        "kod": kisses,
    });
    if o.json {
        println!("{report}");
    } else {
        println!(
            "{}: {} sent, {} answered in {:.1} s: {:.0} responses/s; rtt p50 {:.0} us, p99 {:.0} us, max {:.0} us; {} timeouts, {} malformed, {} unmatched, kod {:?}",
            o.target,
            sent,
            hist.count,
            elapsed,
            rate,
            hist.quantile(0.5),
            hist.quantile(0.99),
            hist.max_ns as f64 / 1000.0,
            timeouts,
            malformed,
            other,
            kisses
        );
    }
    ExitCode::SUCCESS
}
