//! What `ntp-client status` shows and the status server answers: the sources table
//! (chronyc's `sources`), the tracking report (`tracking`), Prometheus metrics and JSON.

use std::fmt::Write as _;
use std::sync::Arc;

use super::runtime::ClientRuntime;
use crate::prometheus::label_value;

/// One row of the sources table.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SourceRow {
    /// `^` server, `#` reference clock (as chronyc).
    pub mode: char,
    /// Selection mark: `*` selected, `+` combined, `-` not combined, `x` falseticker, `~`
    /// too variable, `?` unreachable.
    pub mark: char,
    /// The name configured.
    pub name: String,
    /// The address polled (none while unresolved).
    pub address: Option<String>,
    /// Stratum of the last answer.
    pub stratum: u8,
    /// Poll interval, log2 seconds.
    pub poll: i8,
    /// Reach register.
    pub reach: u8,
    /// Seconds since the last answer.
    pub last_rx: Option<f64>,
    /// Estimated offset now (source minus local), seconds.
    pub offset: f64,
    /// Its error, seconds.
    pub offset_error: f64,
    /// The last sample's offset, seconds.
    pub last_offset: Option<f64>,
    /// Round-trip delay, seconds.
    pub delay: f64,
    /// Jitter, seconds.
    pub jitter: f64,
    /// Kiss code that stopped polling, if any.
    pub stopped: Option<String>,
    /// NTS, for an authenticated source.
    #[serde(default)]
    pub nts: Option<NtsRow>,
    /// The symmetric key the source authenticates with, if any.
    #[serde(default)]
    pub key: Option<u32>,
    /// Declared as serving smeared time around leap seconds.
    #[serde(default)]
    pub smeared: bool,
}

/// An NTS source's authentication state (chronyc's `authdata`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NtsRow {
    /// Cookies held.
    pub cookies: usize,
    /// Key exchanges that succeeded.
    pub key_exchanges: u64,
    /// Answers that did not authenticate (never used).
    pub unauthenticated: u64,
    /// Why the last key exchange failed, if it did.
    pub last_error: Option<String>,
}

/// The tracking report.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tracking {
    /// The system peer, readable.
    pub reference: String,
    /// Our stratum (16: unsynchronised).
    pub stratum: u8,
    /// Seconds since the last clock update.
    pub since_update: Option<f64>,
    /// Current estimate of the offset (server minus local), seconds.
    pub system_offset: f64,
    /// The offset at the last update, seconds.
    pub last_offset: f64,
    /// RMS of recent offsets, seconds.
    pub rms_offset: f64,
    /// Frequency correction set, ppm.
    pub frequency_ppm: f64,
    /// Residual frequency (still measured against the sources), ppm.
    pub residual_frequency_ppm: f64,
    /// Its uncertainty, ppm.
    pub skew_ppm: f64,
    /// Root delay, seconds.
    pub root_delay: f64,
    /// Root dispersion, seconds.
    pub root_dispersion: f64,
    /// Mean seconds between updates.
    pub update_interval: f64,
    /// Normal, Insert second, Delete second, Not synchronised.
    pub leap_status: String,
    /// Whether an estimate exists.
    pub synchronised: bool,
    /// Updates so far.
    pub updates: u64,
    /// Steps made.
    pub steps: u64,
}

/// Everything `status` shows.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClientStatus {
    /// Sources and reference clocks.
    pub sources: Vec<SourceRow>,
    /// The system.
    pub tracking: Tracking,
    /// Measuring only.
    pub observe_only: bool,
    /// Why observe-only, if so.
    pub observe_reason: Option<String>,
    /// The last problem (a refused adjtimex, say).
    pub last_error: Option<String>,
}

/// The status server's answers for a running client.
pub fn status_handler(runtime: Arc<ClientRuntime>) -> crate::http::Handler {
    Arc::new(move |path: &str| match path {
        "/status" | "/" => Some(crate::http::Body {
            content_type: "application/json",
            text: runtime.status_json().to_string() + "\n",
        }),
        "/metrics" => Some(crate::http::Body {
            content_type: "text/plain; version=0.0.4",
            text: prometheus(&runtime.status()),
        }),
        _ => None,
    })
}

/// Prometheus text for a client's status.
pub fn prometheus(s: &ClientStatus) -> String {
    let mut o = String::with_capacity(2048);
    let t = &s.tracking;
    let mut gauge = |name: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(o, "# HELP tempora_ntp_client_{name} {help}");
        let _ = writeln!(o, "# TYPE tempora_ntp_client_{name} gauge");
        for (labels, v) in rows {
            let _ = writeln!(o, "tempora_ntp_client_{name}{labels} {v}");
        }
    };
    let one = |v: f64| vec![(String::new(), v)];
    gauge(
        "synchronised",
        "1 when an estimate exists.",
        one(f64::from(u8::from(t.synchronised))),
    );
    gauge(
        "observe_only",
        "1 when measuring only.",
        one(f64::from(u8::from(s.observe_only))),
    );
    gauge(
        "offset_seconds",
        "System offset (server minus local).",
        one(t.system_offset),
    );
    gauge(
        "rms_offset_seconds",
        "RMS of recent offsets.",
        one(t.rms_offset),
    );
    gauge(
        "frequency_ppm",
        "Frequency correction.",
        one(t.frequency_ppm),
    );
    gauge("skew_ppm", "Frequency uncertainty.", one(t.skew_ppm));
    gauge(
        "stratum",
        "Stratum (16: unsynchronised).",
        one(f64::from(t.stratum)),
    );
    gauge("root_delay_seconds", "Root delay.", one(t.root_delay));
    gauge(
        "root_dispersion_seconds",
        "Root dispersion.",
        one(t.root_dispersion),
    );
    gauge("updates", "Clock updates so far.", one(t.updates as f64));
    gauge("steps", "Clock steps so far.", one(t.steps as f64));
    let label = |r: &SourceRow| {
        format!(
            "{{source=\"{}\",address=\"{}\"}}",
            label_value(&r.name),
            label_value(r.address.as_deref().unwrap_or_default())
        )
    };
    gauge(
        "source_reach",
        "Reach register per source.",
        s.sources
            .iter()
            .map(|r| (label(r), f64::from(r.reach)))
            .collect(),
    );
    gauge(
        "source_offset_seconds",
        "Estimated offset per source.",
        s.sources.iter().map(|r| (label(r), r.offset)).collect(),
    );
    gauge(
        "source_delay_seconds",
        "Round-trip delay per source.",
        s.sources.iter().map(|r| (label(r), r.delay)).collect(),
    );
    gauge(
        "source_selected",
        "1 for the system peer, per source.",
        s.sources
            .iter()
            .map(|r| (label(r), f64::from(u8::from(r.mark == '*'))))
            .collect(),
    );
    let nts: Vec<(&SourceRow, &NtsRow)> = s
        .sources
        .iter()
        .filter_map(|r| r.nts.as_ref().map(|n| (r, n)))
        .collect();
    if !nts.is_empty() {
        gauge(
            "source_nts_cookies",
            "NTS cookies held, per NTS source.",
            nts.iter()
                .map(|(r, n)| (label(r), n.cookies as f64))
                .collect(),
        );
        gauge(
            "source_nts_key_exchanges",
            "NTS key exchanges that succeeded, per NTS source.",
            nts.iter()
                .map(|(r, n)| (label(r), n.key_exchanges as f64))
                .collect(),
        );
        gauge(
            "source_nts_unauthenticated",
            "Answers that did not authenticate (never used), per NTS source.",
            nts.iter()
                .map(|(r, n)| (label(r), n.unauthenticated as f64))
                .collect(),
        );
    }
    o
}

fn human(seconds: f64) -> String {
    let a = seconds.abs();
    if a >= 1.0 {
        format!("{seconds:+.3}s")
    } else if a >= 1e-3 {
        format!("{:+.3}ms", seconds * 1e3)
    } else if a >= 1e-6 {
        format!("{:+.1}us", seconds * 1e6)
    } else {
        format!("{:+.0}ns", seconds * 1e9)
    }
}

/// The `sources` and `tracking` tables, as a chrony user reads them.
pub fn render_status(s: &ClientStatus) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "MS Name/IP address              Stratum Poll Reach LastRx Offset     +/- error   Delay"
    );
    let _ = writeln!(o, "{}", "=".repeat(88));
    for r in &s.sources {
        let name = match &r.address {
            Some(a) if a != &r.name && !a.starts_with(&r.name) => format!("{} ({a})", r.name),
            Some(a) => a.clone(),
            None => r.name.clone(),
        };
        let last = r
            .last_rx
            .map_or_else(|| "-".to_string(), |t| format!("{t:.0}"));
        let _ = writeln!(
            o,
            "{}{} {:<30} {:>7} {:>4} {:>5o} {:>6} {:>10} {:>10} {:>8}{}",
            r.mode,
            r.mark,
            name.chars().take(30).collect::<String>(),
            r.stratum,
            r.poll,
            r.reach,
            last,
            human(r.offset),
            human(r.offset_error).trim_start_matches('+'),
            human(r.delay).trim_start_matches('+'),
            r.stopped
                .as_ref()
                .map_or_else(String::new, |k| format!("  stopped: {k}"))
                + &r.nts
                    .as_ref()
                    .map_or_else(String::new, |n| match &n.last_error {
                        Some(e) if n.cookies == 0 => format!("  NTS: no cookies ({e})"),
                        _ => format!("  NTS, {} cookies", n.cookies),
                    })
                + &r.key.map_or_else(String::new, |k| format!("  key {k}"))
                + if r.smeared { "  smeared" } else { "" },
        );
    }
    let t = &s.tracking;
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Reference ID    : {}",
        if t.reference.is_empty() {
            "(none)"
        } else {
            &t.reference
        }
    );
    let _ = writeln!(o, "Stratum         : {}", t.stratum);
    let _ = writeln!(
        o,
        "System offset   : {:+.9} seconds (server minus local)",
        t.system_offset
    );
    let _ = writeln!(o, "Last offset     : {:+.9} seconds", t.last_offset);
    let _ = writeln!(o, "RMS offset      : {:.9} seconds", t.rms_offset);
    let _ = writeln!(o, "Frequency       : {:+.3} ppm", t.frequency_ppm);
    let _ = writeln!(o, "Residual freq   : {:+.3} ppm", t.residual_frequency_ppm);
    let _ = writeln!(o, "Skew            : {:.3} ppm", t.skew_ppm);
    let _ = writeln!(o, "Root delay      : {:.9} seconds", t.root_delay);
    let _ = writeln!(o, "Root dispersion : {:.9} seconds", t.root_dispersion);
    let _ = writeln!(o, "Update interval : {:.1} seconds", t.update_interval);
    let _ = writeln!(o, "Leap status     : {}", t.leap_status);
    let _ = writeln!(
        o,
        "Mode            : {}",
        if s.observe_only {
            s.observe_reason
                .as_deref()
                .unwrap_or("observe-only")
                .to_string()
        } else {
            format!("steering the system clock ({} steps)", t.steps)
        }
    );
    if let Some(e) = &s.last_error {
        let _ = writeln!(o, "Last error      : {e}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_show_marks_reach_in_octal_and_tracking() {
        let s = ClientStatus {
            sources: vec![SourceRow {
                mode: '^',
                mark: '*',
                name: "127.0.0.1:123".into(),
                address: Some("127.0.0.1:123".into()),
                stratum: 1,
                poll: 6,
                reach: 0o377,
                last_rx: Some(3.0),
                offset: -2.5e-6,
                offset_error: 1e-6,
                last_offset: Some(-3e-6),
                delay: 4e-5,
                jitter: 1e-6,
                stopped: None,
                nts: None,
                key: None,
                smeared: false,
            }],
            tracking: Tracking {
                reference: "127.0.0.1".into(),
                stratum: 2,
                leap_status: "Normal".into(),
                synchronised: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let text = render_status(&s);
        assert!(text.contains("^* 127.0.0.1:123"), "{text}");
        assert!(text.contains(" 377 "), "{text}");
        assert!(text.contains("-2.5us"), "{text}");
        assert!(text.contains("Leap status     : Normal"));
        let metrics = prometheus(&s);
        assert!(metrics.contains("tempora_ntp_client_source_reach{source=\"127.0.0.1:123\",address=\"127.0.0.1:123\"} 255"));
        assert!(metrics.contains("tempora_ntp_client_synchronised 1"));
    }

    #[test]
    fn a_source_name_cannot_break_out_of_its_label() {
        let s = ClientStatus {
            sources: vec![SourceRow {
                mode: '^',
                mark: ' ',
                name: "evil\"} 1\ntempora_ntp_client_synchronised 1\n#\\".into(),
                address: None,
                stratum: 2,
                poll: 6,
                reach: 1,
                last_rx: None,
                offset: 0.0,
                offset_error: 0.0,
                last_offset: None,
                delay: 0.0,
                jitter: 0.0,
                stopped: None,
                nts: None,
                key: None,
                smeared: false,
            }],
            ..Default::default()
        };
        let metrics = prometheus(&s);
        assert!(
            metrics.contains("tempora_ntp_client_synchronised 0"),
            "{metrics}"
        );
        assert!(
            !metrics
                .lines()
                .any(|l| l.starts_with("tempora_ntp_client_synchronised 1")),
            "the name made a series of its own:\n{metrics}"
        );
        assert!(
            metrics.contains("source=\"evil\\\"} 1\\ntempora_ntp_client_synchronised 1\\n#\\\\\"")
        );
    }
}
