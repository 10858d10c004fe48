//! `ntp-load`: a bounded NTP load generator for loopback and test network namespaces.
//!
//! ```text
//! ntp-load [--duration S] [--rate R] [--in-flight N] [--sockets K] [--timeout S] [--json]
//!          [--nts KEHOST:PORT [--ca-file F] [--key-exchanges]] ADDR:PORT
//! ```
//!
//! With `--nts`, every request is NTS-authenticated (RFC 8915): one key exchange at
//! start, whose cookies make eight authenticated requests (distinct UIDs) for every
//! request in flight, which each slot then sends in turn. A server keeps no state per request, so this
//! costs it what fresh requests would, while the generator stays far cheaper than the
//! server (it seals nothing per request). An answer counts when it carries its request's
//! UID and an authenticator (not a NAK); `tests/nts_interop.rs` checks the cryptography
//! end to end. `--key-exchanges` measures NTS-KE handshakes per second instead, one
//! connection after another from each of the K sockets' threads.
//!
//! Sends client requests from K source ports with at most N in flight, at most R per
//! second, for S seconds (at most 60), then reports responses/s, round-trip percentiles
//! and counts of timeouts, malformed answers and kisses. It refuses destinations that are
//! not loopback or private (RFC 1918, ULA, link-local): it is for your own servers.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tempora_examples::nts::key_exchange;
use tempora_ntp::nts::{AeadAlgorithm, NtsClient};
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
    /// NTS: the NTS-KE server, HOST:PORT; requests are then authenticated.
    #[arg(long, value_name = "KEHOST:PORT")]
    nts: Option<String>,
    /// With --nts: a PEM file of CA certificates trusted besides the system's.
    #[arg(long, value_name = "FILE", requires = "nts")]
    ca_file: Option<std::path::PathBuf>,
    /// With --nts: measure key exchanges per second (ADDR:PORT is then ignored).
    #[arg(long, requires = "nts")]
    key_exchanges: bool,
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
    nts: Option<(String, std::sync::Arc<rustls::ClientConfig>)>,
    key_exchanges: bool,
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
    let nts = match &cli.nts {
        Some(host) => {
            let ke_address = tempora_examples::net::resolve_with_port(host, 4460)?;
            if !ke_address.iter().all(|a| allowed(a.ip())) {
                return Err(format!(
                    "{host} is neither loopback nor a private address: ntp-load is for your own test servers"
                ));
            }
            let roots = tempora_examples::nts::client_roots(cli.ca_file.as_deref())
                .map_err(|e| e.to_string())?;
            let tls = tempora_examples::nts::client_tls(roots).map_err(|e| e.to_string())?;
            Some((host.clone(), tls))
        }
        None => None,
    };
    Ok(Options {
        nts,
        key_exchanges: cli.key_exchanges,
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
    /// NTS: each slot's authenticated requests (bytes, UID), sent in turn.
    nts: Vec<Vec<(Vec<u8>, [u8; 32])>>,
}

/// Requests an NTS slot makes from its key exchange's cookies.
const NTS_ROUND: usize = 8;

/// A slot's authenticated requests: `NTS_ROUND` of them, generation 1 to `NTS_ROUND` in
/// the tag, each with a UID of its own, each made from the whole association, so it asks
/// for one cookie and no more (a client in its steady state).
fn nts_requests(association: &NtsClient, flow: usize, slot: usize) -> Vec<(Vec<u8>, [u8; 32])> {
    let mut out = Vec::new();
    for g in 1..=NTS_ROUND as u64 {
        let client = &mut association.clone();
        let tag = (1u64 << 63) | (g << 24) | ((flow as u64) << 16) | slot as u64;
        let mut uid = [0u8; 32];
        uid[..8].copy_from_slice(&tag.to_le_bytes());
        uid[8] = 0xA5;
        let mut buf = [0u8; 1024];
        if let Ok(n) = client.write_request(
            &client_request(Version::V4, tag),
            uid,
            uid[..16].try_into().unwrap_or([0; 16]),
            &mut buf,
        ) {
            out.push((buf[..n].to_vec(), uid));
        }
    }
    out
}

/// Whether `bytes` is an NTS answer to a request with `uid`: the UID echoed and an
/// authenticator (an NTS NAK has none).
fn is_nts_answer(bytes: &[u8], uid: &[u8; 32]) -> bool {
    use tempora_ntp_proto::{ExtensionFieldType, NtpPacket};
    let Ok(p) = NtpPacket::parse(bytes) else {
        return false;
    };
    let mut uid_ok = false;
    let mut auth = false;
    for f in p.extension_fields {
        match f.field_type {
            ExtensionFieldType::UniqueIdentifier => uid_ok = f.value == uid,
            ExtensionFieldType::NtsAuthenticator => auth = true,
            _ => {}
        }
    }
    uid_ok && auth
}

/// NTS-KE handshakes per second: each of `threads` threads connects, exchanges keys and
/// closes, one after another, for `duration`.
fn key_exchange_rate(o: &Options, threads: usize) -> serde_json::Value {
    let Some((host, tls)) = &o.nts else {
        return serde_json::Value::Null;
    };
    let end = Instant::now() + o.duration;
    let results: Vec<(u64, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let (mut ok, mut failed) = (0u64, 0u64);
                    while Instant::now() < end {
                        match key_exchange(host, tls.clone(), &AeadAlgorithm::ALL, o.timeout) {
                            Ok(_) => ok += 1,
                            Err(_) => failed += 1,
                        }
                    }
                    (ok, failed)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or((0, 0)))
            .collect()
    });
    let ok: u64 = results.iter().map(|r| r.0).sum();
    let failed: u64 = results.iter().map(|r| r.1).sum();
    serde_json::json!({
        "ke_server": host,
        "duration_s": o.duration.as_secs_f64(),
        "threads": threads,
        "key_exchanges": ok,
        "failed": failed,
        "key_exchanges_per_s": ok as f64 / o.duration.as_secs_f64(),
    })
}

/// A fresh association for a slot, or `None` (counted by the caller) when the key
/// exchange fails.
fn associate(o: &Options) -> Option<NtsClient> {
    let (host, tls) = o.nts.as_ref()?;
    key_exchange(
        host,
        tls.clone(),
        &AeadAlgorithm::ALL,
        Duration::from_secs(5),
    )
    .ok()
    .map(|a| a.client)
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ntp-load: {e}");
            return ExitCode::from(2);
        }
    };
    if o.key_exchanges {
        let report = key_exchange_rate(&o, o.sockets);
        if o.json {
            println!("{report}");
        } else {
            println!(
                "{}: {} key exchanges in {:.1} s from {} threads: {:.0}/s; {} failed",
                report["ke_server"].as_str().unwrap_or_default(),
                report["key_exchanges"],
                o.duration.as_secs_f64(),
                o.sockets,
                report["key_exchanges_per_s"].as_f64().unwrap_or(0.0),
                report["failed"]
            );
        }
        return ExitCode::SUCCESS;
    }
    let mut key_exchanges = 0u64;
    let mut ke_failures = 0u64;
    // One key exchange serves every slot: the server keeps no state per cookie.
    let mut association: Option<NtsClient> = None;
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
        let mut nts = Vec::new();
        if o.nts.is_some() {
            if association.is_none() {
                association = associate(&o);
                key_exchanges += u64::from(association.is_some());
                ke_failures += u64::from(association.is_none());
            }
            for slot in 0..per_socket {
                nts.push(
                    association
                        .as_ref()
                        .map_or_else(Vec::new, |a| nts_requests(a, flows.len(), slot)),
                );
            }
        }
        flows.push(Flow {
            socket,
            slots: vec![None; per_socket],
            free: (0..per_socket).rev().collect(),
            generation: 1,
            nts,
        });
    }
    if o.nts.is_some() && key_exchanges == 0 {
        eprintln!("ntp-load: no NTS key exchange succeeded");
        return ExitCode::FAILURE;
    }
    let (mut unauthenticated, mut naks) = (0u64, 0u64);
    let mut hist = Histogram::new();
    let (mut sent, mut timeouts, mut malformed, mut other) = (0u64, 0u64, 0u64, 0u64);
    let mut kisses: std::collections::BTreeMap<String, u64> = Default::default();
    let start = Instant::now();
    let end = start + o.duration;
    let mut budget = 0.0f64;
    let mut last_refill = start;
    let mut last_sweep = start;
    let mut requests = vec![[0u8; 1024]; MAX_BATCH];
    let mut lens = [48usize; MAX_BATCH];
    let mut bufs = vec![[0u8; 1024]; MAX_BATCH];
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
                    let mut made = 0;
                    for _ in 0..n {
                        let Some(slot) = flow.free.pop() else { break };
                        flow.generation = flow.generation.wrapping_add(1).max(1);
                        let len = match flow.nts.get(slot) {
                            None => {
                                let tag = (1u64 << 63)
                                    | (u64::from(flow.generation) << 24)
                                    | ((fi as u64) << 16)
                                    | slot as u64;
                                let header = client_request(Version::V4, tag);
                                requests[made][..48].copy_from_slice(&header.to_bytes());
                                Some(48)
                            }
                            Some(round) if round.is_empty() => None,
                            Some(round) => {
                                // Generation 1..=NTS_ROUND names the request sent.
                                let g = (flow.generation as usize % round.len()) + 1;
                                flow.generation = g as u32;
                                let (bytes, _) = &round[g - 1];
                                requests[made][..bytes.len()].copy_from_slice(bytes);
                                Some(bytes.len())
                            }
                        };
                        match len {
                            Some(len) => {
                                flow.slots[slot] = Some((flow.generation, now));
                                lens[made] = len;
                                made += 1;
                            }
                            None => flow.free.push(slot),
                        }
                    }
                    let items: Vec<SendItem<'_>> = requests[..made]
                        .iter()
                        .zip(&lens[..made])
                        .map(|(r, len)| SendItem {
                            data: &r[..*len],
                            to: o.target,
                            tx_timestamp: false,
                        })
                        .collect();
                    let k = flow.socket.send_batch(&items, &mut ids).unwrap_or(0);
                    // Requests the kernel did not take go back to the free list.
                    for r in &requests[k..made] {
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
                let bytes = &bufs[i][..meta[i].len.min(1024)];
                let Ok(h) = NtpHeader::parse_bytes(bytes) else {
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
                        // NTS: only what authenticates counts; an NTS NAK asks for a new
                        // key exchange.
                        if let Some(round) = flow.nts.get(slot) {
                            let uid = (generation as usize)
                                .checked_sub(1)
                                .and_then(|i| round.get(i))
                                .map(|r| r.1);
                            if !uid.is_some_and(|u| is_nts_answer(bytes, &u)) {
                                if h.stratum == Stratum::KISS_OF_DEATH {
                                    naks += 1;
                                    flow.slots[slot] = None;
                                    flow.free.push(slot);
                                } else {
                                    unauthenticated += 1;
                                }
                                continue;
                            }
                        }
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
        "nts": o.nts.as_ref().map(|(host, _)| serde_json::json!({
            "ke_server": host,
            "key_exchanges": key_exchanges,
            "key_exchange_failures": ke_failures,
            "unauthenticated": unauthenticated,
            "naks": naks,
        })),
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
