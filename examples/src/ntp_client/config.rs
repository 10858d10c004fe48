//! `ntp-client run`'s configuration: the time sources and how to steer from them
//! ([`UpstreamConfig`], which `ntp-server`'s upstream source takes too), and the daemon's
//! own keys ([`ClientConfig`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use tempora_clock_discipline::{DisciplineConfig, PanicPolicy, StepMode, StepPolicy};
use tempora_ntp::{RefclockConfig, StepQuorum};

pub use crate::clock_bound::ClockBoundConfig;
use crate::config::{ConfigError, ConfigFile, check_log_level, invalid};

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

/// A server with options, as chrony's `server HOST nts` line: `[[server]]` tables.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerEntry {
    /// HOST or HOST:PORT; with `nts`, the NTS-KE server (port 4460 unless given), which
    /// names the NTP server and port to poll.
    pub address: String,
    /// Authenticate with NTS (RFC 8915): a key exchange over TLS, then only answers that
    /// authenticate are used; an NTS source that cannot authenticate is never selected.
    #[serde(default)]
    pub nts: bool,
    /// Authenticate with the symmetric key of this ID from `keys_file` (chrony's
    /// `server HOST key ID`): requests are MAC'd with it, only answers MAC'd with it used.
    #[serde(default)]
    pub key: Option<u32>,
    /// The server serves smeared time around leap seconds (Google's `time.google.com`,
    /// AWS's): near a leap it is never combined with unsmeared sources.
    #[serde(default)]
    pub smeared: bool,
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
    /// Sources that must agree before a step after startup: `majority` (more than half
    /// of the configured ones, the default) or `any` (chrony's and ntpd's behaviour).
    pub quorum: String,
}

impl Default for StepConfig {
    fn default() -> Self {
        Self {
            threshold: 1.0,
            startup_updates: 3,
            after_startup: "confirmed".into(),
            panic_threshold: None,
            panic_policy: "refuse".into(),
            quorum: "majority".into(),
        }
    }
}

/// The time sources and how to steer from them: the top level of `ntp-client run`'s
/// file, and `ntp-server`'s `[source]` with `kind = "upstream"`. One type, so that a key
/// means the same in both.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// Servers, HOST or HOST:PORT.
    pub servers: Vec<String>,
    /// Servers with options (`[[server]]` tables: `address`, `nts`), polled besides
    /// `servers`.
    pub server: Vec<ServerEntry>,
    /// A PEM file of CA certificates NTS-KE servers are checked against, besides the
    /// system's (chrony's `ntstrustedcerts`).
    pub nts_ca_file: Option<PathBuf>,
    /// Symmetric keys for `[[server]]` entries with `key` (chrony's `keyfile`).
    pub keys_file: Option<String>,
    /// The keys file's format: `chrony` or `ntpd`.
    pub keys_format: tempora_ntp::keys::KeysFormat,
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
    /// Where the frequency is kept across restarts.
    pub drift_file: Option<PathBuf>,
    /// Pass leap seconds the sources announce to the kernel.
    pub leap_to_kernel: bool,
    /// The IERS/NIST leap-seconds list (tzdata's `/usr/share/zoneinfo/leap-seconds.list`):
    /// while it is current, only leaps it holds are accepted (and those it holds are
    /// armed even unannounced), and the kernel's TAI offset is set from it.
    pub leap_file: Option<PathBuf>,
    /// How a leap second is taken: `kernel` (the kernel inserts or deletes it at
    /// midnight), `step` (the clock is stepped at midnight) or `slew` (slewed away after
    /// midnight at the fastest slew), as chrony's `leapsecmode`.
    pub leap_mode: String,
    /// Step policy.
    pub step: StepConfig,
    /// The fastest slew on top of the frequency correction, ppm (chrony's
    /// `maxslewrate`): through the kernel's tick beyond ±500 ppm.
    pub max_slew_ppm: f64,
    /// Publish the clock error bound for applications (off unless the table is given).
    pub clock_bound: Option<ClockBoundConfig>,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            server: Vec::new(),
            nts_ca_file: None,
            keys_file: None,
            keys_format: tempora_ntp::keys::KeysFormat::Chrony,
            pools: Vec::new(),
            pool_size: 4,
            min_poll: 6,
            max_poll: 10,
            iburst: true,
            refclock: Vec::new(),
            min_sources: 1,
            drift_file: None,
            leap_to_kernel: true,
            leap_file: None,
            leap_mode: "kernel".into(),
            step: StepConfig::default(),
            max_slew_ppm: DisciplineConfig::default().max_slew_ppm,
            clock_bound: None,
        }
    }
}

impl UpstreamConfig {
    /// The leap mode, if the word is known.
    pub fn leap_mode(&self) -> Option<tempora_ntp::LeapMode> {
        match self.leap_mode.as_str() {
            "kernel" => Some(tempora_ntp::LeapMode::Kernel),
            "step" => Some(tempora_ntp::LeapMode::Step),
            "slew" => Some(tempora_ntp::LeapMode::Slew),
            _ => None,
        }
    }

    /// Every server source in order: `servers` (plain), then `[[server]]` entries.
    pub fn server_entries(&self) -> Vec<ServerEntry> {
        self.servers
            .iter()
            .map(|s| ServerEntry {
                address: s.clone(),
                nts: false,
                key: None,
                smeared: false,
            })
            .chain(self.server.iter().cloned())
            .collect()
    }

    /// Checks values serde cannot; `prefix` is where the keys sit (`""` at the top level
    /// of the client's file, `"source."` in the server's).
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let key = |k: &str| format!("{prefix}{k}");
        if self.servers.is_empty()
            && self.server.is_empty()
            && self.pools.is_empty()
            && self.refclock.is_empty()
        {
            return Err(invalid(
                &key("servers"),
                "no time sources: give servers, pools or a refclock",
            ));
        }
        let keys = crate::config::read_keys_file(
            self.keys_file.as_deref(),
            self.keys_format,
            &key("keys_file"),
        )?;
        for (i, s) in self.server.iter().enumerate() {
            if s.address.trim().is_empty() {
                return Err(invalid(&key(&format!("server[{i}].address")), "is empty"));
            }
            if let Some(id) = s.key {
                if s.nts {
                    return Err(invalid(
                        &key(&format!("server[{i}].key")),
                        "a server authenticates with NTS or a key, not both",
                    ));
                }
                if keys.get(id).is_none() {
                    return Err(invalid(
                        &key(&format!("server[{i}].key")),
                        format!("no key {id} in keys_file"),
                    ));
                }
            }
        }
        if let Some(cb) = &self.clock_bound {
            cb.validate(prefix)?;
        }
        crate::config::read_leap_file(self.leap_file.as_deref(), &key("leap_file"))?;
        if self.leap_mode().is_none() {
            return Err(invalid(
                &key("leap_mode"),
                format!("{:?}: use kernel, step or slew", self.leap_mode),
            ));
        }
        if let Some(ca) = &self.nts_ca_file {
            if !ca.is_file() {
                return Err(invalid(
                    &key("nts_ca_file"),
                    format!("{}: no such file", ca.display()),
                ));
            }
        }
        if !(self.max_slew_ppm > 0.0 && self.max_slew_ppm <= 99_000.0) {
            // The tick moves at most 10%; the frequency correction takes up to 500 ppm.
            return Err(invalid(
                &key("max_slew_ppm"),
                "must be more than 0 and at most 99000",
            ));
        }
        if !(-6..=17).contains(&self.min_poll) {
            return Err(invalid(&key("min_poll"), "must be -6 to 17"));
        }
        if !(-6..=17).contains(&self.max_poll) || self.max_poll < self.min_poll {
            return Err(invalid(
                &key("max_poll"),
                "must be -6 to 17 and at least min_poll",
            ));
        }
        if !(1..=16).contains(&self.pool_size) {
            return Err(invalid(&key("pool_size"), "must be 1-16"));
        }
        let total = self.servers.len()
            + self.server.len()
            + self.pools.len() * self.pool_size
            + self.refclock.len();
        if total > tempora_clock_filter::MAX_CANDIDATES {
            return Err(invalid(
                &key("servers"),
                format!(
                    "{total} sources (servers + pools x pool_size + refclocks): at most {}",
                    tempora_clock_filter::MAX_CANDIDATES
                ),
            ));
        }
        for (i, name) in self.servers.iter().enumerate() {
            if self.servers[..i]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name))
            {
                return Err(invalid(
                    &key(&format!("servers[{i}]")),
                    format!("{name} is listed twice"),
                ));
            }
        }
        for (i, entry) in self.server.iter().enumerate() {
            let name = &entry.address;
            if self.servers.iter().any(|n| n.eq_ignore_ascii_case(name))
                || self.server[..i]
                    .iter()
                    .any(|n| n.address.eq_ignore_ascii_case(name))
            {
                return Err(invalid(
                    &key(&format!("server[{i}].address")),
                    format!("{name} is listed twice"),
                ));
            }
        }
        if self.min_sources == 0 || self.min_sources > 16 {
            return Err(invalid(&key("min_sources"), "must be 1-16"));
        }
        for (i, r) in self.refclock.iter().enumerate() {
            if !r.device.starts_with('/') {
                return Err(invalid(
                    &key(&format!("refclock[{i}].device")),
                    "a device path such as /dev/ptp0",
                ));
            }
            if !(-4..=10).contains(&r.poll) {
                return Err(invalid(
                    &key(&format!("refclock[{i}].poll")),
                    "must be -4 to 10",
                ));
            }
            if !r.offset.is_finite() || r.offset.abs() > 1.0 {
                return Err(invalid(
                    &key(&format!("refclock[{i}].offset")),
                    "seconds, a finite number within +/-1",
                ));
            }
            if !(1..=25).contains(&r.samples) {
                return Err(invalid(
                    &key(&format!("refclock[{i}].samples")),
                    "must be 1-25",
                ));
            }
        }
        let s = &self.step;
        if !s.threshold.is_finite() || s.threshold <= 0.0 {
            return Err(invalid(
                &key("step.threshold"),
                "must be more than 0 seconds",
            ));
        }
        if !matches!(s.after_startup.as_str(), "confirmed" | "never" | "always") {
            return Err(invalid(
                &key("step.after_startup"),
                "confirmed, never or always",
            ));
        }
        if s.panic_threshold
            .is_some_and(|p| p.is_nan() || p <= s.threshold)
        {
            return Err(invalid(
                &key("step.panic_threshold"),
                "must be more than step.threshold",
            ));
        }
        if !matches!(s.panic_policy.as_str(), "refuse" | "observe") {
            return Err(invalid(&key("step.panic_policy"), "refuse or observe"));
        }
        if !matches!(s.quorum.as_str(), "majority" | "any") {
            return Err(invalid(&key("step.quorum"), "majority or any"));
        }
        Ok(())
    }

    /// How many sources must agree before a step after startup (`step.quorum`).
    pub fn step_quorum(&self) -> StepQuorum {
        if self.step.quorum == "any" {
            StepQuorum::Any
        } else {
            StepQuorum::Majority
        }
    }

    /// The discipline the step keys make.
    pub fn discipline(&self) -> DisciplineConfig {
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
        DisciplineConfig {
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
            max_slew_ppm: self.max_slew_ppm,
            ..DisciplineConfig::default()
        }
    }

    /// The reference clocks' settings for the engine.
    pub fn refclocks(&self) -> Vec<RefclockConfig> {
        self.refclock
            .iter()
            .map(|r| RefclockConfig {
                name: r.device.clone(),
                poll: r.poll,
                offset: r.offset,
                stratum: 0,
                samples: r.samples,
            })
            .collect()
    }
}

/// `ntp-client run`'s file: every key of [`UpstreamConfig`] at the top level, and the
/// daemon's own.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct ClientConfig {
    /// The sources and the step policy.
    #[serde(flatten)]
    pub upstream: UpstreamConfig,
    /// Measure and report, never steer.
    pub observe: bool,
    /// `/status` and `/metrics` here (`ntp-client status` reads it).
    pub status_listen: SocketAddr,
    /// error, warn, info, debug or trace.
    pub log_level: String,
    /// Keys neither part knows: refused by [`Self::validate`], naming the first.
    #[serde(flatten, skip_serializing)]
    unknown: BTreeMap<String, toml::Value>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            upstream: UpstreamConfig::default(),
            observe: false,
            status_listen: SocketAddr::from(([127, 0, 0, 1], 9124)),
            log_level: "info".into(),
            unknown: BTreeMap::new(),
        }
    }
}

impl ConfigFile for ClientConfig {
    /// Checks values serde cannot, and refuses unknown keys.
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(key) = self.unknown.keys().next() {
            return Err(invalid(key, "unknown key"));
        }
        self.upstream.validate("")?;
        check_log_level(&self.log_level)
    }
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
        let up = &c.upstream;
        assert_eq!(up.servers.len(), 2);
        assert_eq!(up.refclocks()[0].name, "/dev/ptp0");
        assert_eq!(up.discipline().step.threshold, 0.5);
        assert_eq!(up.discipline().step.mode, StepMode::Startup { updates: 1 });
        assert_eq!(up.step_quorum(), StepQuorum::Majority);
        assert_eq!(
            ClientConfig::from_toml("servers = [\"a\"]")
                .unwrap()
                .status_listen
                .port(),
            9124
        );
        for (text, key) in [
            ("", "servers"),
            ("servers = [\"a\"]\nminpoll = 3", "minpoll"),
            ("servers = [\"a\"]\nmin_poll = 30", "min_poll"),
            (
                "servers = [\"a\"]\n[step]\nafter_startup = \"sometimes\"",
                "step.after_startup",
            ),
            (
                "servers = [\"a\"]\n[step]\nquorum = \"half\"",
                "step.quorum",
            ),
            (
                "servers = [\"a\"]\n[[refclock]]\ndevice = \"ptp0\"",
                "refclock[0].device",
            ),
            ("servers = \"a\"", "servers"),
            ("servers = [\"a\", \"b\", \"A\"]", "servers[2]"),
            (
                "servers = [\"a\"]\n[[server]]\naddress = \"a\"\nnts = true",
                "server[0].address",
            ),
            ("[[server]]\naddress = \"\"", "server[0].address"),
            // toml points at the table for a bad value in an array of tables.
            (
                "[[server]]\naddress = \"a\"\nnts = \"yes\"",
                "expected a boolean",
            ),
            ("[[server]]\nhost = \"a\"", "host"),
            (
                "[[server]]\naddress = \"a\"\nnts = true\nnts_ca_file = \"/nonexistent\"",
                "nts_ca_file",
            ),
            ("[[server]]\naddress = \"a\"\nkey = 1", "server[0].key"),
            (
                "keys_file = \"/nonexistent\"\nservers = [\"a\"]",
                "keys_file",
            ),
            ("servers = [\"a\"]\nkeys_format = \"openntpd\"", "openntpd"),
            (
                "pools = [\"p\", \"q\", \"r\", \"s\", \"t\"]\npool_size = 16",
                "at most 64",
            ),
            (
                "[[refclock]]\ndevice = \"/dev/ptp0\"\noffset = nan",
                "refclock[0].offset",
            ),
            (
                "[[refclock]]\ndevice = \"/dev/ptp0\"\noffset = inf",
                "refclock[0].offset",
            ),
        ] {
            let e = ClientConfig::from_toml(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text:?}: {e}");
        }
    }
}
