//! The server's configuration: a TOML file (every key in the README), flags over it, and
//! defaults that work with no file at all.

use std::net::SocketAddr;

use tempora_ntp::server::{AccessAction, AccessList, AccessRule, Cidr, RateLimit};

use crate::config::{ConfigError, ConfigFile, check_log_level, invalid};
use crate::ntp_client::UpstreamConfig;

/// Where the served time comes from.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase", tag = "kind")]
pub enum TimeSource {
    /// A free-running reference of the given stratum, as chrony's `local stratum N`: the
    /// system clock is served as it is.
    Local {
        /// The stratum claimed (1-15).
        #[serde(default = "default_local_stratum")]
        stratum: u8,
    },
    /// Whatever synchronises the kernel clock (another daemon, PTP, GPS): its state as
    /// adjtimex reports it. Unsynchronised in the kernel means leap 3, stratum 16.
    Kernel {
        /// The stratum claimed while the kernel says synchronised.
        #[serde(default = "default_kernel_stratum")]
        stratum: u8,
        /// The reference ID to give (up to 4 ASCII letters), e.g. "PTP" or "GPS".
        #[serde(default = "default_kernel_refid")]
        reference_id: String,
    },
    /// Upstream NTP servers through the client runtime: a boundary server (stratum of
    /// the system peer + 1, its reference ID, root delay and dispersion passed on). Every
    /// key of `ntp-client run`'s sources works here (servers, pools, min_poll, max_poll,
    /// refclock, step, ...).
    Upstream(Box<UpstreamConfig>),
}

fn default_local_stratum() -> u8 {
    10
}
fn default_kernel_stratum() -> u8 {
    1
}
fn default_kernel_refid() -> String {
    "KERN".into()
}

impl Default for TimeSource {
    fn default() -> Self {
        Self::Local {
            stratum: default_local_stratum(),
        }
    }
}

/// One access rule as written in TOML.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRuleConfig {
    /// allow, ignore or deny (a DENY kiss).
    pub action: AccessAction,
    /// Networks, `ADDRESS[/PREFIX]`, IPv4 or IPv6.
    pub networks: Vec<String>,
}

/// The access section.
#[derive(Clone, Debug, PartialEq, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// The action when no rule matches: `allow` when there are no rules, else `ignore`.
    pub default: Option<AccessAction>,
    /// Rules, first match wins.
    pub rule: Vec<AccessRuleConfig>,
}

/// Network Time Security (RFC 8915): the key exchange server and the cookies.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NtsConfig {
    /// The server's certificate chain, PEM.
    pub certificate: String,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub private_key: String,
    /// Addresses of the NTS-KE server (TLS): `[::]:4460` takes IPv4 too where the
    /// system allows; `0.0.0.0:4460` where it has no IPv6.
    #[serde(default = "default_ke_listen")]
    pub ke_listen: Vec<SocketAddr>,
    /// Seconds between master key rotations; 0 never rotates (a fleet member that takes
    /// its keys from a file another server rotates: the file is read again when it
    /// changes).
    #[serde(default = "default_key_rotation")]
    pub key_rotation: u64,
    /// Old master keys kept after a rotation, so that cookies clients hold still open
    /// (with daily rotation, 7 keeps them a week).
    #[serde(default = "default_old_keys")]
    pub old_keys: usize,
    /// A file for the master keys (written 0600): cookies survive a restart, and several
    /// servers behind one name can share it. Without one, keys live in memory only.
    #[serde(default)]
    pub key_file: Option<String>,
    /// The NTP server to name in key exchange answers, when not this host.
    #[serde(default)]
    pub ntp_server: Option<String>,
    /// The NTP port to name, when not 123 (by default the first `listen` address's port,
    /// if that is not 123).
    #[serde(default)]
    pub ntp_port: Option<u16>,
    /// Key exchange connections served at once; more are closed at once.
    #[serde(default = "default_ke_connections")]
    pub max_connections: usize,
    /// Seconds a key exchange connection may take, whole (a slow or silent client is
    /// dropped).
    #[serde(default = "default_ke_timeout")]
    pub ke_timeout: f64,
}

fn default_ke_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from(([0u16; 8], 4460))]
}
fn default_key_rotation() -> u64 {
    86_400
}
fn default_old_keys() -> usize {
    7
}
fn default_ke_connections() -> usize {
    64
}
fn default_ke_timeout() -> f64 {
    2.0
}

/// The whole server configuration.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Addresses to serve on.
    pub listen: Vec<SocketAddr>,
    /// Sockets (and threads) per address; 0 means one per CPU.
    pub threads: usize,
    /// Serve interleaved mode (RFC 9769).
    pub interleaved: bool,
    /// Prometheus `/metrics` and JSON `/status` on this address; none when absent.
    pub metrics_listen: Option<SocketAddr>,
    /// error, warn, info, debug or trace.
    pub log_level: String,
    /// Never steer the clock (upstream source only), even with CAP_SYS_TIME.
    pub observe: bool,
    /// Where the time comes from.
    pub source: TimeSource,
    /// Who may ask.
    pub access: AccessConfig,
    /// Per-client rate limiting.
    pub rate_limit: RateLimit,
    /// NTS, when configured.
    pub nts: Option<NtsConfig>,
    /// Symmetric keys: a request MAC'd with one of them is answered MAC'd with the same
    /// (chrony's `keyfile`, ntpd's `keys`).
    pub keys_file: Option<String>,
    /// The keys file's format: `chrony` (`ID TYPE KEY`, `HEX:` keys) or `ntpd`.
    pub keys_format: tempora_ntp::keys::KeysFormat,
    /// The IERS/NIST leap-seconds list: with a `local` or `kernel` source the leap it
    /// holds is announced on the last day of the month (and, `local`, armed in the
    /// kernel and the TAI offset set, where the server may steer).
    pub leap_file: Option<std::path::PathBuf>,
    /// Serve smeared time through a leap second instead of announcing it (needs
    /// `leap_file`).
    pub leap_smear: Option<LeapSmearConfig>,
}

/// `leap_smear = { kind = "linear", duration = 86400 }`.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeapSmearConfig {
    /// `linear` (Google's) or `cosine`.
    pub kind: String,
    /// The window, seconds, centred on the leap (86400: noon to noon).
    pub duration: f64,
}

impl Default for LeapSmearConfig {
    fn default() -> Self {
        Self {
            kind: "linear".into(),
            duration: 86_400.0,
        }
    }
}

impl LeapSmearConfig {
    /// The smear this describes, if the kind is known.
    pub fn smear(&self) -> Option<tempora_clock_discipline::LeapSmear> {
        let shape = match self.kind.as_str() {
            "linear" => tempora_clock_discipline::SmearShape::Linear,
            "cosine" => tempora_clock_discipline::SmearShape::Cosine,
            _ => return None,
        };
        Some(tempora_clock_discipline::LeapSmear {
            shape,
            duration: self.duration,
        })
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: vec![
                "0.0.0.0:123"
                    .parse()
                    .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 123))),
                "[::]:123"
                    .parse()
                    .unwrap_or(SocketAddr::from(([0u16; 8], 123))),
            ],
            threads: 0,
            interleaved: true,
            metrics_listen: None,
            log_level: "info".into(),
            observe: false,
            source: TimeSource::default(),
            access: AccessConfig::default(),
            rate_limit: RateLimit::default(),
            nts: None,
            keys_file: None,
            keys_format: tempora_ntp::keys::KeysFormat::Chrony,
            leap_file: None,
            leap_smear: None,
        }
    }
}

impl ConfigFile for ServerConfig {
    /// Checks values serde cannot.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.is_empty() {
            return Err(invalid("listen", "at least one address is needed"));
        }
        if self.threads > 256 {
            return Err(invalid("threads", "at most 256"));
        }
        check_log_level(&self.log_level)?;
        match &self.source {
            TimeSource::Local { stratum } | TimeSource::Kernel { stratum, .. }
                if !(1..=15).contains(stratum) =>
            {
                return Err(invalid("source.stratum", "must be 1-15"));
            }
            TimeSource::Kernel { reference_id, .. }
                if reference_id.is_empty()
                    || reference_id.len() > 4
                    || !reference_id.is_ascii() =>
            {
                return Err(invalid(
                    "source.reference_id",
                    "1-4 ASCII characters, e.g. \"PTP\"",
                ));
            }
            TimeSource::Upstream(upstream) => upstream.validate("source.")?,
            _ => {}
        }
        let r = &self.rate_limit;
        if !(-4..=12).contains(&r.interval) {
            return Err(invalid("rate_limit.interval", "must be -4 to 12 (log2 s)"));
        }
        if r.burst == 0 || r.burst > 255 {
            return Err(invalid("rate_limit.burst", "must be 1-255"));
        }
        if r.leak > 16 {
            return Err(invalid("rate_limit.leak", "must be 0-16"));
        }
        if !(4..=1 << 20).contains(&r.table_size) {
            return Err(invalid("rate_limit.table_size", "must be 4 to 1048576"));
        }
        self.access_list()?;
        self.symmetric_keys()?;
        crate::config::read_leap_file(self.leap_file.as_deref(), "leap_file")?;
        if let Some(smear) = &self.leap_smear {
            if smear.smear().is_none() {
                return Err(invalid("leap_smear.kind", "use \"linear\" or \"cosine\""));
            }
            if !(smear.duration >= 1.0 && smear.duration <= 172_800.0) {
                return Err(invalid(
                    "leap_smear.duration",
                    "must be 1 to 172800 seconds",
                ));
            }
            if self.leap_file.is_none() {
                return Err(invalid(
                    "leap_smear",
                    "needs leap_file: the smear is timed from the leap-seconds list",
                ));
            }
        }
        if let Some(nts) = &self.nts {
            if nts.ke_listen.is_empty() {
                return Err(invalid("nts.ke_listen", "at least one address is needed"));
            }
            if !(1..=4096).contains(&nts.max_connections) {
                return Err(invalid("nts.max_connections", "must be 1-4096"));
            }
            if !(nts.ke_timeout > 0.0 && nts.ke_timeout <= 60.0) {
                return Err(invalid(
                    "nts.ke_timeout",
                    "must be more than 0 and at most 60 s",
                ));
            }
            if nts.old_keys > 1000 {
                return Err(invalid("nts.old_keys", "at most 1000"));
            }
            if nts.key_rotation == 0 && nts.key_file.is_none() {
                return Err(invalid(
                    "nts.key_rotation",
                    "0 (never rotate) needs a key_file that another server rotates",
                ));
            }
            if nts
                .ntp_server
                .as_ref()
                .is_some_and(|s| s.is_empty() || !s.is_ascii() || s.len() > 255)
            {
                return Err(invalid("nts.ntp_server", "1-255 ASCII characters"));
            }
            for (key, path) in [
                ("nts.certificate", &nts.certificate),
                ("nts.private_key", &nts.private_key),
            ] {
                if !std::path::Path::new(path).is_file() {
                    return Err(invalid(key, format!("{path}: no such file")));
                }
            }
        }
        Ok(())
    }
}

impl ServerConfig {
    /// The access list the rules make.
    pub fn access_list(&self) -> Result<AccessList, ConfigError> {
        let mut rules = Vec::new();
        for (i, rule) in self.access.rule.iter().enumerate() {
            let mut networks = Vec::new();
            for n in &rule.networks {
                networks.push(
                    n.parse::<Cidr>().map_err(|e| {
                        invalid(&format!("access.rule[{i}].networks"), e.to_string())
                    })?,
                );
            }
            if networks.is_empty() {
                return Err(invalid(
                    &format!("access.rule[{i}].networks"),
                    "at least one network",
                ));
            }
            rules.push(AccessRule {
                action: rule.action,
                networks,
            });
        }
        let default = self.access.default.unwrap_or(if rules.is_empty() {
            AccessAction::Allow
        } else {
            AccessAction::Ignore
        });
        Ok(AccessList { rules, default })
    }

    /// The symmetric keys of `keys_file` (none without one); an error names the file's
    /// line.
    pub fn symmetric_keys(&self) -> Result<tempora_ntp::keys::SymmetricKeys, ConfigError> {
        crate::config::read_keys_file(self.keys_file.as_deref(), self.keys_format, "keys_file")
    }

    /// Threads per address.
    pub fn effective_threads(&self) -> usize {
        if self.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.threads
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_work_without_a_file() {
        let c = ServerConfig::from_toml("").unwrap();
        assert_eq!(c, ServerConfig::default());
        assert_eq!(c.access_list().unwrap(), AccessList::default());
    }

    #[test]
    fn a_full_file_parses() {
        let c = ServerConfig::from_toml(
            r#"
            listen = ["127.0.0.1:1123", "[::1]:1123"]
            threads = 2
            interleaved = false
            metrics_listen = "127.0.0.1:9123"
            log_level = "debug"
            [source]
            kind = "upstream"
            servers = ["192.0.2.1", "ntp.example:123"]
            min_poll = 4
            [access]
            [[access.rule]]
            action = "deny"
            networks = ["10.9.0.0/16"]
            [[access.rule]]
            action = "allow"
            networks = ["10.0.0.0/8", "fd00::/8"]
            [rate_limit]
            enabled = true
            burst = 16
            "#,
        )
        .unwrap();
        assert_eq!(c.threads, 2);
        let TimeSource::Upstream(upstream) = &c.source else {
            panic!("{:?}", c.source)
        };
        assert_eq!((upstream.min_poll, upstream.max_poll), (4, 10));
        assert_eq!(upstream.servers.len(), 2);
        let list = c.access_list().unwrap();
        assert_eq!(list.rules.len(), 2);
        assert_eq!(
            list.default,
            AccessAction::Ignore,
            "rules given: others ignored"
        );
        assert!(c.rate_limit.enabled && c.rate_limit.burst == 16 && c.rate_limit.interval == 3);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("lisen = []", "lisen"),
            ("threads = \"two\"", "threads"),
            ("[source]\nkind = \"local\"\nstratum = 0", "source.stratum"),
            ("[source]\nkind = \"gps\"", "gps"),
            ("[rate_limit]\nburst = 0", "rate_limit.burst"),
            ("[rate_limit]\nspeed = 1", "speed"),
            (
                "[[access.rule]]\naction = \"allow\"\nnetworks = [\"10.1.2.3/8\"]",
                "access.rule[0].networks",
            ),
            (
                "[[access.rule]]\naction = \"maybe\"\nnetworks = []",
                "maybe",
            ),
            ("log_level = \"loud\"", "log_level"),
            (
                "[nts]\ncertificate = \"/nonexistent.pem\"\nprivate_key = \"/k\"",
                "nts.certificate",
            ),
            (
                "[nts]\ncertificate = \"/etc/hostname\"\nprivate_key = \"/k\"",
                "nts.private_key",
            ),
            (
                "[nts]\ncertificate = \"c\"\nprivate_key = \"k\"\nkey_rotation = 0",
                "nts.key_rotation",
            ),
            (
                "[nts]\ncertificate = \"c\"\nprivate_key = \"k\"\nke_timeout = 0",
                "nts.ke_timeout",
            ),
            ("[nts]\ncertificate = \"c\"", "private_key"),
        ];
        for (text, key) in cases {
            let e = ServerConfig::from_toml(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text:?} -> {e}");
        }
    }
}
