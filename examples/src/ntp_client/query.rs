//! One-shot queries, like `ntpdate -q`, `sntp` or `chronyd -Q`: a short burst to every
//! address of every host, the best exchange of each, selection over them, and a verdict.
//! Observe-only: nothing here touches the clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tempora_clock_filter::{Candidate, CandidateVerdict, PHI, SelectionConfig, select};
use tempora_clock_types::{Leap, LocalInstant};
use tempora_ntp_proto::{
    NtpPacket, NtpTimestamp, Rejection, Version, check_response, client_request, offset_and_delay,
};
use tempora_sys_clock::{SystemClock, TimestampMode, TimestampedSocket};

use tempora_ntp::nts::{AeadAlgorithm, NtsClient, UID_LEN};
use tempora_ntp_proto::nts_ke::KE_PORT;

use crate::nts::key_exchange;
use crate::random::random_u64;

/// How to query.
#[derive(Clone, Debug)]
pub struct QueryConfig {
    /// Requests per address.
    pub samples: u32,
    /// How long to wait for each answer.
    pub timeout: Duration,
    /// Pause between requests to one address (servers rate-limit bursts).
    pub interval: Duration,
    /// Authenticate with NTS: hosts are NTS-KE servers (port 4460 unless given), this is
    /// the TLS configuration to reach them with.
    pub nts: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            samples: 4,
            timeout: Duration::from_secs(1),
            interval: Duration::from_millis(250),
            nts: None,
        }
    }
}

/// One exchange's result.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Exchange {
    /// Server minus local clock, seconds.
    pub offset: f64,
    /// Round trip less the server's time, seconds.
    pub delay: f64,
    /// Dispersion of the sample, seconds.
    pub dispersion: f64,
}

/// What one address answered.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ServerReport {
    /// The host as given.
    pub host: String,
    /// The address asked.
    pub address: SocketAddr,
    /// Stratum of the last answer.
    pub stratum: u8,
    /// Reference ID, readable.
    pub reference_id: String,
    /// Leap indicator.
    pub leap: String,
    /// Root delay, seconds.
    pub root_delay: f64,
    /// Root dispersion, seconds.
    pub root_dispersion: f64,
    /// The minimum-delay exchange, if any answer was usable.
    pub best: Option<Exchange>,
    /// Usable answers.
    pub answers: u32,
    /// Why there is no usable answer (no answer, KoD, unsynchronised), if so.
    pub problem: Option<String>,
    /// The selection's verdict.
    pub verdict: String,
    /// Whether it agreed with the majority.
    pub truechimer: bool,
    /// NTS: the algorithm and the key exchange server, when the answers were
    /// authenticated with it.
    pub nts: Option<String>,
}

/// The whole result.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct QueryReport {
    /// Every address asked.
    pub servers: Vec<ServerReport>,
    /// The combined offset (server time minus local), seconds.
    pub offset: Option<f64>,
    /// Its error bound (half the intersection interval's width), seconds.
    pub error: Option<f64>,
    /// Why no estimate came out, if none did.
    pub failure: Option<String>,
}

impl ServerReport {
    /// The address asked, or the host as given when none was reached (a failed NTS key
    /// exchange).
    pub fn label(&self) -> String {
        if self.address.port() == 0 {
            self.host.clone()
        } else {
            self.address.to_string()
        }
    }
}

/// A report of an address with nothing from it yet.
fn empty_report(host: &str, address: SocketAddr) -> ServerReport {
    ServerReport {
        host: host.into(),
        address,
        stratum: 0,
        reference_id: String::new(),
        leap: String::new(),
        root_delay: 0.0,
        root_dispersion: 0.0,
        best: None,
        answers: 0,
        problem: None,
        verdict: String::new(),
        truechimer: false,
        nts: None,
    }
}

/// Queries one address, with NTS when `nts` is given (every answer then must
/// authenticate, or it is not used).
fn query_address(
    host: &str,
    address: SocketAddr,
    config: &QueryConfig,
    mut nts: Option<&mut NtsClient>,
) -> ServerReport {
    let mut report = empty_report(host, address);
    let bind: SocketAddr = if address.is_ipv4() {
        "0.0.0.0:0".parse().unwrap_or(address)
    } else {
        "[::]:0".parse().unwrap_or(address)
    };
    let mut socket = match TimestampedSocket::bind(bind, TimestampMode::Software) {
        Ok(s) => s,
        Err(e) => {
            report.problem = Some(e.to_string());
            return report;
        }
    };
    let clock = SystemClock::new();
    let mut last_transmit = None;
    for i in 0..config.samples {
        if i > 0 {
            std::thread::sleep(config.interval);
        }
        let Some(random) = random_u64() else {
            report.problem = Some("no randomness from the kernel for the request nonce".into());
            break;
        };
        let header = client_request(Version::V4, random);
        let mut request = [0u8; 1024];
        let request_len = match nts.as_deref_mut() {
            Some(client) => {
                let (mut uid, mut nonce) = ([0u8; UID_LEN], [0u8; 16]);
                if getrandom::fill(&mut uid).is_err() || getrandom::fill(&mut nonce).is_err() {
                    report.problem = Some("no randomness from the kernel for NTS".into());
                    break;
                }
                match client.write_request(&header, uid, nonce, &mut request) {
                    Ok(n) => n,
                    Err(e) => {
                        report.problem = Some(format!("NTS: {e}"));
                        break;
                    }
                }
            }
            None => {
                request[..48].copy_from_slice(&header.to_bytes());
                48
            }
        };
        let before = clock.now_realtime().unwrap_or(0);
        let Ok(id) = socket.send_to(&request[..request_len], address) else {
            report.problem = Some("send failed".into());
            continue;
        };
        let deadline = Instant::now() + config.timeout;
        let mut buf = [0u8; 1024];
        let answer = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break None;
            }
            let _ = socket.socket().set_read_timeout(Some(left));
            match socket.recv_from(&mut buf) {
                Ok(r) if r.from == Some(address) => break Some(r),
                Ok(_) => continue,
                Err(_) => break None,
            }
        };
        let Some(received) = answer else {
            report.problem.get_or_insert_with(|| "no answer".into());
            continue;
        };
        // T1: the kernel's transmit timestamp where there is one, else the clock before.
        let t1 = match socket.recv_tx_timestamp() {
            Ok(tx) if tx.id == id => tx.timestamp.nanos,
            _ => before,
        };
        let t4 = received
            .timestamp
            .map_or_else(|| clock.now_realtime().unwrap_or(0), |t| t.nanos);
        let h = match nts.as_deref_mut() {
            // Only what authenticates is read at all.
            Some(client) => match client.read_response(&buf[..received.len]) {
                Ok(h) => h,
                Err(e) => {
                    report.problem = Some(format!("NTS: {e}"));
                    continue;
                }
            },
            None => match NtpPacket::parse(&buf[..received.len]) {
                Ok(packet) => packet.header,
                Err(_) => {
                    report.problem = Some("malformed answer".into());
                    continue;
                }
            },
        };
        report.stratum = h.stratum.0;
        report.reference_id = h.reference_id.interpret(h.stratum).to_string();
        report.leap = format!("{:?}", h.leap);
        report.root_delay = h.root_delay.to_seconds_f64();
        report.root_dispersion = h.root_dispersion.to_seconds_f64();
        match check_response(&h, NtpTimestamp::from_bits(random), last_transmit) {
            Ok(()) => {}
            Err(Rejection::KissOfDeath { code }) => {
                report.problem = Some(format!("kiss-o'-death {code:?}"));
                break;
            }
            Err(r) => {
                report.problem = Some(r.to_string());
                continue;
            }
        }
        last_transmit = Some(h.transmit_timestamp);
        let m = offset_and_delay(
            NtpTimestamp::from_unix_nanos(t1),
            h.receive_timestamp,
            h.transmit_timestamp,
            NtpTimestamp::from_unix_nanos(t4),
        );
        let precision = h.precision.to_seconds_f64() + 1e-7;
        let delay = m.delay.to_seconds_f64().max(precision);
        let exchange = Exchange {
            offset: m.offset.to_seconds_f64(),
            delay,
            dispersion: precision + PHI * delay,
        };
        report.answers += 1;
        if report.best.is_none_or(|b| exchange.delay < b.delay) {
            report.best = Some(exchange);
        }
    }
    if report.answers > 0 {
        report.problem = None;
    }
    report
}

/// An NTS key exchange with `host`, then a query of every address of the NTP server it
/// named, authenticated. A failed exchange is one report saying why.
fn query_nts_host(
    host: &str,
    tls: std::sync::Arc<rustls::ClientConfig>,
    config: &QueryConfig,
) -> Vec<ServerReport> {
    let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
    let ke_timeout = config.timeout.max(Duration::from_secs(3));
    let mut association = match key_exchange(host, tls, &AeadAlgorithm::ALL, ke_timeout) {
        Ok(a) => a,
        Err(e) => {
            let mut r = empty_report(host, unknown);
            r.problem = Some(e.to_string());
            return vec![r];
        }
    };
    let ntp = association.ntp_address();
    let addresses = match crate::net::resolve(&ntp) {
        Ok(a) => a,
        Err(e) => {
            let mut r = empty_report(host, unknown);
            r.problem = Some(e);
            return vec![r];
        }
    };
    let (ke_host, ke_port) = crate::net::split_host_port(host, KE_PORT);
    addresses
        .into_iter()
        .map(|address| {
            let mut r = query_address(host, address, config, Some(&mut association.client));
            r.nts = Some(format!(
                "{} from NTS-KE {ke_host}:{ke_port}",
                association.algorithm
            ));
            r
        })
        .collect()
}

/// Queries every address of every host, then selects over them.
pub fn query(hosts: &[String], config: &QueryConfig) -> QueryReport {
    let mut servers = Vec::new();
    let mut failures = Vec::new();
    for host in hosts {
        if let Some(tls) = &config.nts {
            servers.extend(query_nts_host(host, tls.clone(), config));
            continue;
        }
        match crate::net::resolve(host) {
            Ok(addrs) => {
                for address in addrs {
                    servers.push(query_address(host, address, config, None));
                }
            }
            Err(e) => failures.push(e),
        }
    }
    let mut candidates = Vec::new();
    let mut index = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        if let Some(b) = s.best {
            candidates.push(Candidate {
                offset: b.offset,
                delay: b.delay,
                dispersion: b.dispersion,
                jitter: 0.0,
                root_delay: s.root_delay,
                root_dispersion: s.root_dispersion,
                stratum: s.stratum,
                leap: if s.leap == "Unsynchronized" {
                    Leap::Unsynchronized
                } else {
                    Leap::None
                },
                time: LocalInstant(0),
                frequency: None,
            });
            index.push(i);
        }
    }
    let mut verdicts = vec![CandidateVerdict::None; candidates.len()];
    let result = select(
        &candidates,
        &mut verdicts,
        None,
        &SelectionConfig::default(),
        LocalInstant(0),
    );
    for (v, &i) in verdicts.iter().zip(&index) {
        servers[i].verdict = format!("{v:?}");
        servers[i].truechimer = matches!(
            v,
            CandidateVerdict::SystemPeer | CandidateVerdict::Combined | CandidateVerdict::Outlier
        );
    }
    let (offset, error, failure) = match result {
        Ok(est) => (
            Some(est.offset),
            Some((est.interval.1 - est.interval.0) / 2.0),
            None,
        ),
        Err(e) => {
            let reason = if servers.is_empty() {
                failures.join("; ")
            } else if candidates.is_empty() {
                let problems: Vec<String> = servers
                    .iter()
                    .map(|s| {
                        format!(
                            "{}: {}",
                            s.label(),
                            s.problem
                                .clone()
                                .unwrap_or_else(|| "no usable answer".into())
                        )
                    })
                    .collect();
                problems.join("; ")
            } else {
                e.to_string()
            };
            (None, None, Some(reason))
        }
    };
    QueryReport {
        servers,
        offset,
        error,
        failure,
    }
}

/// The report as tables a chrony or ntpdate user reads at a glance.
pub fn render(report: &QueryReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:>3} {:<15} {:<14} {:>14} {:>12} {:>12}  verdict",
        "server", "st", "refid", "leap", "offset", "delay", "disp"
    );
    for s in &report.servers {
        let (offset, delay, disp) = s.best.map_or(("-".into(), "-".into(), "-".into()), |b| {
            (
                format!("{:+.6} s", b.offset),
                format!("{:.6} s", b.delay),
                format!("{:.6} s", b.dispersion),
            )
        });
        let mut verdict = s.problem.clone().unwrap_or_else(|| s.verdict.clone());
        if let (Some(nts), None) = (&s.nts, &s.problem) {
            verdict = format!("{verdict}, authenticated ({nts})");
        }
        let _ = writeln!(
            out,
            "{:<28} {:>3} {:<15} {:<14} {:>14} {:>12} {:>12}  {}",
            s.label(),
            s.stratum,
            s.reference_id,
            s.leap,
            offset,
            delay,
            disp,
            verdict
        );
    }
    match (report.offset, report.error) {
        (Some(o), Some(e)) => {
            let _ = writeln!(
                out,
                "offset {o:+.6} s +/- {e:.6} s (server time minus this clock)"
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "no estimate: {}",
                report.failure.clone().unwrap_or_default()
            );
        }
    }
    out
}
