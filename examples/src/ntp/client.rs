//! The `ntp-client run` daemon around the client runtime: its TOML configuration, the
//! status server (`/status` JSON, `/metrics` Prometheus), and the tables `ntp-client
//! status` prints.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tempora_clock_discipline::{DisciplineConfig, PanicPolicy, StepMode, StepPolicy};

use super::RefclockConfig;
use super::server::ConfigError;
use super::server::config::{check_log_level, invalid, load_toml, parse_toml};
use super::upstream::{ClientStatus, Upstream, UpstreamConfig};

/// A PTP hardware clock used as a reference clock.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RefclockEntry {
    /// The device, e.g. `/dev/ptp0` (ptp_kvm in a VM guest).
    pub device: String,
    /// Poll interval, log2 seconds.
    #[serde(default)]
    pub poll: i8,
    /// Added to every reading, seconds.
    #[serde(default)]
    pub offset: f64,
    /// Readings per poll (the shortest window wins).
    #[serde(default = "default_refclock_samples")]
    pub samples: u32,
}

fn default_refclock_samples() -> u32 {
    5
}

/// When to step.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StepConfig {
    /// Offsets above this (seconds) are stepped, not slewed (chrony's `makestep` first
    /// number).
    pub threshold: f64,
    /// Updates at start in which a step is allowed (`makestep`'s second number).
    pub startup_updates: u32,
    /// After start: `confirmed` (step when two updates in a row agree: VM snapshot
    /// reverts), `never` (slew only) or `always`.
    pub after_startup: String,
    /// Offsets above this (seconds) are refused as insane (none: no panic threshold).
    pub panic_threshold: Option<f64>,
    /// What to do above the panic threshold: `refuse` (keep going, never apply it) or
    /// `observe` (stop steering).
    pub panic_policy: String,
}

impl Default for StepConfig {
    fn default() -> Self {
        Self {
            threshold: 1.0,
            startup_updates: 3,
            after_startup: "confirmed".into(),
            panic_threshold: None,
            panic_policy: "refuse".into(),
        }
    }
}

/// The client daemon's configuration.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// Servers, HOST or HOST:PORT.
    pub servers: Vec<String>,
    /// Pools, HOST: `pool_size` addresses each, replaced when unreachable.
    pub pools: Vec<String>,
    /// Addresses per pool.
    pub pool_size: usize,
    /// Shortest poll, log2 seconds.
    pub min_poll: i8,
    /// Longest poll, log2 seconds.
    pub max_poll: i8,
    /// A burst of four requests at start and when unreachable.
    pub iburst: bool,
    /// PTP hardware clocks as reference clocks.
    pub refclock: Vec<RefclockEntry>,
    /// Sources that must agree before the clock is steered.
    pub min_sources: usize,
    /// Measure and report, never steer.
    pub observe: bool,
    /// Where the frequency is kept across restarts.
    pub drift_file: Option<PathBuf>,
    /// Pass leap seconds the sources announce to the kernel.
    pub leap_to_kernel: bool,
    /// `/status` and `/metrics` here (`ntp-client status` reads it).
    pub status_listen: SocketAddr,
    /// error, warn, info, debug or trace.
    pub log_level: String,
    /// Step policy.
    pub step: StepConfig,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            pools: Vec::new(),
            pool_size: 4,
            min_poll: 6,
            max_poll: 10,
            iburst: true,
            refclock: Vec::new(),
            min_sources: 1,
            observe: false,
            drift_file: None,
            leap_to_kernel: true,
            status_listen: SocketAddr::from(([127, 0, 0, 1], 9124)),
            log_level: "info".into(),
            step: StepConfig::default(),
        }
    }
}

impl ClientConfig {
    /// Reads a TOML file.
    pub fn from_file(path: &str) -> Result<Self, ConfigError> {
        let config: Self = load_toml(path)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML text and checks every value.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = parse_toml(text, "config")?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.servers.is_empty() && self.pools.is_empty() && self.refclock.is_empty() {
            return Err(invalid(
                "servers",
                "no time sources: give servers, pools or a refclock",
            ));
        }
        if !(-6..=17).contains(&self.min_poll) {
            return Err(invalid("min_poll", "must be -6 to 17"));
        }
        if !(-6..=17).contains(&self.max_poll) || self.max_poll < self.min_poll {
            return Err(invalid(
                "max_poll",
                "must be -6 to 17 and at least min_poll",
            ));
        }
        if !(1..=16).contains(&self.pool_size) {
            return Err(invalid("pool_size", "must be 1-16"));
        }
        if self.min_sources == 0 || self.min_sources > 16 {
            return Err(invalid("min_sources", "must be 1-16"));
        }
        for (i, r) in self.refclock.iter().enumerate() {
            if !r.device.starts_with('/') {
                return Err(invalid(
                    &format!("refclock[{i}].device"),
                    "a device path such as /dev/ptp0",
                ));
            }
            if !(-4..=10).contains(&r.poll) {
                return Err(invalid(&format!("refclock[{i}].poll"), "must be -4 to 10"));
            }
            if !(1..=25).contains(&r.samples) {
                return Err(invalid(&format!("refclock[{i}].samples"), "must be 1-25"));
            }
        }
        let s = &self.step;
        if !s.threshold.is_finite() || s.threshold <= 0.0 {
            return Err(invalid("step.threshold", "must be more than 0 seconds"));
        }
        if !matches!(s.after_startup.as_str(), "confirmed" | "never" | "always") {
            return Err(invalid("step.after_startup", "confirmed, never or always"));
        }
        if s.panic_threshold
            .is_some_and(|p| p.is_nan() || p <= s.threshold)
        {
            return Err(invalid(
                "step.panic_threshold",
                "must be more than step.threshold",
            ));
        }
        if !matches!(s.panic_policy.as_str(), "refuse" | "observe") {
            return Err(invalid("step.panic_policy", "refuse or observe"));
        }
        check_log_level(&self.log_level)?;
        Ok(())
    }

    /// The runtime's configuration.
    pub fn upstream(&self) -> UpstreamConfig {
        let s = &self.step;
        let mode = match s.after_startup.as_str() {
            "never" => StepMode::Startup {
                updates: s.startup_updates,
            },
            "always" => StepMode::Always,
            _ => StepMode::Confirmed {
                startup_updates: s.startup_updates,
                confirmations: 2,
            },
        };
        UpstreamConfig {
            servers: self.servers.clone(),
            pools: self.pools.clone(),
            pool_size: self.pool_size,
            min_poll: self.min_poll,
            max_poll: self.max_poll,
            iburst: self.iburst,
            refclocks: self
                .refclock
                .iter()
                .map(|r| RefclockConfig {
                    name: r.device.clone(),
                    poll: r.poll,
                    offset: r.offset,
                    stratum: 0,
                    samples: r.samples,
                })
                .collect(),
            observe: self.observe,
            discipline: DisciplineConfig {
                step: StepPolicy {
                    threshold: s.threshold,
                    mode,
                    panic_threshold: s.panic_threshold,
                    panic_policy: if s.panic_policy == "observe" {
                        PanicPolicy::ObserveOnly
                    } else {
                        PanicPolicy::Refuse
                    },
                    ..StepPolicy::default()
                },
                ..DisciplineConfig::default()
            },
            drift_file: self.drift_file.clone(),
            leap_to_kernel: self.leap_to_kernel,
            min_sources: self.min_sources,
        }
    }
}

/// The status server's answers for a running client.
pub fn status_handler(upstream: Arc<Upstream>) -> crate::http::Handler {
    Arc::new(move |path: &str| match path {
        "/status" | "/" => Some(crate::http::Body {
            content_type: "application/json",
            text: upstream.status_json().to_string() + "\n",
        }),
        "/metrics" => Some(crate::http::Body {
            content_type: "text/plain; version=0.0.4",
            text: prometheus(&upstream.status()),
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
    let label = |r: &super::upstream::SourceRow| {
        format!(
            "{{source=\"{}\",address=\"{}\"}}",
            r.name.replace('"', ""),
            r.address.clone().unwrap_or_default()
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
                .map_or_else(String::new, |k| format!("  stopped: {k}")),
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
    fn config_parses_and_errors_name_the_key() {
        let c = ClientConfig::from_toml(
            r#"
            servers = ["192.0.2.1", "ntp.example:123"]
            pools = ["pool.example"]
            min_poll = 4
            drift_file = "/var/lib/tempora/drift"
            [[refclock]]
            device = "/dev/ptp0"
            [step]
            threshold = 0.5
            startup_updates = 1
            after_startup = "never"
            "#,
        )
        .unwrap();
        let up = c.upstream();
        assert_eq!(up.servers.len(), 2);
        assert_eq!(up.refclocks[0].name, "/dev/ptp0");
        assert_eq!(up.discipline.step.threshold, 0.5);
        assert_eq!(up.discipline.step.mode, StepMode::Startup { updates: 1 });
        for (text, key) in [
            ("", "servers"),
            ("servers = [\"a\"]\nminpoll = 3", "minpoll"),
            ("servers = [\"a\"]\nmin_poll = 30", "min_poll"),
            (
                "servers = [\"a\"]\n[step]\nafter_startup = \"sometimes\"",
                "step.after_startup",
            ),
            (
                "servers = [\"a\"]\n[[refclock]]\ndevice = \"ptp0\"",
                "refclock[0].device",
            ),
            ("servers = \"a\"", "servers"),
        ] {
            let e = ClientConfig::from_toml(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text:?}: {e}");
        }
    }

    #[test]
    fn tables_show_marks_reach_in_octal_and_tracking() {
        let s = ClientStatus {
            sources: vec![super::super::upstream::SourceRow {
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
            }],
            tracking: super::super::upstream::Tracking {
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
}
