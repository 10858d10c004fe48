//! `ptp-slave`'s configuration: a TOML file (every key in the README), flags over it, and
//! defaults that work with no file at all.

use std::net::SocketAddr;

use tempora_clock_discipline::PiServoConfig;
use tempora_ptp_proto::{ClockIdentity, DelayMechanism};

use tempora_ptp::PortConfig;

use super::daemon::{ClockChoice, SlaveConfig, Timestamping, Transport};
use crate::config::{ConfigError, ConfigFile, invalid};

/// A set of defaults for one PTP profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// IEEE 1588 default delay request-response profile: UDPv4, end-to-end.
    DefaultE2e,
    /// IEEE 1588 default peer-to-peer profile: UDPv4, peer-to-peer.
    DefaultP2p,
    /// IEEE 802.1AS (gPTP): transportSpecific 1, Ethernet to 01-80-C2-00-00-0E,
    /// peer-to-peer, domain 0.
    Gptp,
}

impl Profile {
    /// Parses a profile name as the flag and the file spell it.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "default" | "default-e2e" | "e2e" => Some(Self::DefaultE2e),
            "default-p2p" | "p2p" => Some(Self::DefaultP2p),
            "gptp" | "802.1as" | "automotive" => Some(Self::Gptp),
            _ => None,
        }
    }

    /// Transport, delay mechanism and majorSdoId of the profile.
    pub fn settings(self) -> (Transport, DelayMechanism, u8) {
        match self {
            Self::DefaultE2e => (Transport::Udp4, DelayMechanism::E2e, 0),
            Self::DefaultP2p => (Transport::Udp4, DelayMechanism::P2p, 0),
            Self::Gptp => (Transport::L2, DelayMechanism::P2p, 1),
        }
    }
}

/// The servo's settings in the file (linuxptp's names).
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServoFile {
    /// Proportional gain at a 1 s sync interval (`pi_proportional_const`).
    pub kp: Option<f64>,
    /// Integral gain at a 1 s sync interval (`pi_integral_const`).
    pub ki: Option<f64>,
    /// Step at the first lock beyond this many seconds (`first_step_threshold`); 0 never.
    pub first_step_threshold: Option<f64>,
    /// Step whenever the offset is beyond this many seconds (`step_threshold`); 0 never.
    pub step_threshold: Option<f64>,
}

/// The file as written: every key optional, unknown keys refused.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PtpConfigFile {
    /// The network interface.
    pub interface: Option<String>,
    /// "default-e2e" (the default), "default-p2p" or "gptp"; transport and
    /// delay_mechanism below override it.
    pub profile: Option<String>,
    /// "udp4", "udp6" or "l2".
    pub transport: Option<String>,
    /// "e2e" or "p2p".
    pub delay_mechanism: Option<String>,
    /// domainNumber, 0-255 (gPTP: 0).
    pub domain: Option<u8>,
    /// majorSdoId / transportSpecific, 0-15 (the profile sets it).
    pub transport_specific: Option<u8>,
    /// Announce intervals without an Announce before the master is dropped (2-255).
    pub announce_receipt_timeout: Option<u8>,
    /// "software" or "hardware".
    pub timestamping: Option<String>,
    /// The clock to steer: "auto" (the system clock with software timestamps, the
    /// interface's PHC with hardware ones), "system" or a PHC device such as "/dev/ptp0".
    pub clock: Option<String>,
    /// When steering a PHC, keep the system clock on it as phc2sys does.
    pub sync_system: Option<bool>,
    /// The clock identity, "xxxxxx.xxxx.xxxxxx" in hex; from the interface's MAC when
    /// not given.
    pub clock_identity: Option<String>,
    /// Measure and report, never steer.
    pub observe: Option<bool>,
    /// Print a summary every this many samples (0: none).
    pub summary_every: Option<u32>,
    /// Prometheus `/metrics` and JSON `/status` on this address.
    pub metrics_listen: Option<SocketAddr>,
    /// The PI servo.
    pub servo: ServoFile,
    /// Publish the system clock's error bound for applications (ClockBound's segment);
    /// only where the system clock is the one steered.
    pub clock_bound: Option<crate::clock_bound::ClockBoundConfig>,
}

/// Each value is checked as [`PtpConfigFile::apply`] sets it.
impl ConfigFile for PtpConfigFile {}

impl PtpConfigFile {
    /// Applies every key that is set to `config`, checking each value.
    pub fn apply(&self, config: &mut SlaveConfig) -> Result<(), ConfigError> {
        if let Some(p) = &self.profile {
            let profile = Profile::parse(p).ok_or_else(|| {
                invalid(
                    "profile",
                    format!("{p:?}: use default-e2e, default-p2p or gptp"),
                )
            })?;
            config.apply_profile(profile);
        }
        if let Some(i) = &self.interface {
            if i.is_empty() || i.len() > 15 || i.contains('/') {
                return Err(invalid(
                    "interface",
                    format!("{i:?} is not an interface name"),
                ));
            }
            config.interface = i.clone();
        }
        if let Some(t) = &self.transport {
            config.transport = parse_transport(t)
                .ok_or_else(|| invalid("transport", format!("{t:?}: use udp4, udp6 or l2")))?;
        }
        if let Some(d) = &self.delay_mechanism {
            config.port.delay_mechanism = parse_delay_mechanism(d)
                .ok_or_else(|| invalid("delay_mechanism", format!("{d:?}: use e2e or p2p")))?;
        }
        if let Some(d) = self.domain {
            config.port.domain = d;
        }
        if let Some(s) = self.transport_specific {
            if s > 15 {
                return Err(invalid("transport_specific", format!("{s} is not 0-15")));
            }
            config.port.sdo_id = s;
        }
        if let Some(t) = self.announce_receipt_timeout {
            if t < 2 {
                return Err(invalid(
                    "announce_receipt_timeout",
                    format!("{t}: at least 2"),
                ));
            }
            config.port.announce_receipt_timeout = t;
        }
        if let Some(t) = &self.timestamping {
            config.timestamping = parse_timestamping(t).ok_or_else(|| {
                invalid("timestamping", format!("{t:?}: use software or hardware"))
            })?;
        }
        if let Some(c) = &self.clock {
            config.clock = parse_clock(c).ok_or_else(|| {
                invalid(
                    "clock",
                    format!("{c:?}: use auto, system or a PHC device such as /dev/ptp0"),
                )
            })?;
        }
        if let Some(s) = self.sync_system {
            config.sync_system = s;
        }
        if let Some(id) = &self.clock_identity {
            config.clock_identity = Some(parse_clock_identity(id).ok_or_else(|| {
                invalid(
                    "clock_identity",
                    format!("{id:?}: write 8 bytes in hex as xxxxxx.xxxx.xxxxxx"),
                )
            })?);
        }
        if let Some(o) = self.observe {
            config.observe = o;
        }
        if let Some(n) = self.summary_every {
            config.summary_every = n;
        }
        if let Some(a) = self.metrics_listen {
            config.metrics_listen = Some(a);
        }
        if let Some(cb) = &self.clock_bound {
            cb.validate("")?;
            config.clock_bound = Some(cb.clone());
        }
        let servo = &mut config.port.servo;
        for (key, value, slot) in [
            ("servo.kp", self.servo.kp, &mut servo.kp),
            ("servo.ki", self.servo.ki, &mut servo.ki),
            (
                "servo.first_step_threshold",
                self.servo.first_step_threshold,
                &mut servo.first_step_threshold,
            ),
            (
                "servo.step_threshold",
                self.servo.step_threshold,
                &mut servo.step_threshold,
            ),
        ] {
            if let Some(v) = value {
                if !v.is_finite() || v < 0.0 {
                    return Err(invalid(key, format!("{v}: a number >= 0")));
                }
                *slot = v;
            }
        }
        Ok(())
    }
}

/// "udp4", "udp6", "l2" (and linuxptp's UDPv4, UDPv6, L2).
pub fn parse_transport(text: &str) -> Option<Transport> {
    match text.to_ascii_lowercase().as_str() {
        "udp4" | "udpv4" => Some(Transport::Udp4),
        "udp6" | "udpv6" => Some(Transport::Udp6),
        "l2" | "ethernet" => Some(Transport::L2),
        _ => None,
    }
}

/// "e2e" or "p2p".
pub fn parse_delay_mechanism(text: &str) -> Option<DelayMechanism> {
    match text.to_ascii_lowercase().as_str() {
        "e2e" => Some(DelayMechanism::E2e),
        "p2p" => Some(DelayMechanism::P2p),
        _ => None,
    }
}

/// "software" or "hardware".
pub fn parse_timestamping(text: &str) -> Option<Timestamping> {
    match text.to_ascii_lowercase().as_str() {
        "software" | "sw" => Some(Timestamping::Software),
        "hardware" | "hw" => Some(Timestamping::Hardware),
        _ => None,
    }
}

/// "auto", "system" (or CLOCK_REALTIME) or a PHC device path.
pub fn parse_clock(text: &str) -> Option<ClockChoice> {
    match text {
        "auto" => Some(ClockChoice::Auto),
        "system" | "CLOCK_REALTIME" => Some(ClockChoice::System),
        path if path.starts_with("/dev/") && path.len() > 5 => {
            Some(ClockChoice::Phc(path.to_string()))
        }
        _ => None,
    }
}

/// A clock identity as linuxptp prints it ("001122.fffe.334455"), or 16 hex digits.
pub fn parse_clock_identity(text: &str) -> Option<ClockIdentity> {
    let digits: String = text.chars().filter(|c| *c != '.' && *c != ':').collect();
    if digits.len() != 16 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut id = [0u8; 8];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(ClockIdentity(id))
}

impl SlaveConfig {
    /// The defaults: UDPv4, end-to-end, domain 0, software timestamps, the system clock.
    pub fn new(interface: &str) -> Self {
        Self {
            interface: interface.into(),
            port: PortConfig::default(),
            observe: false,
            duration: None,
            summary_every: 16,
            transport: Transport::Udp4,
            timestamping: Timestamping::Software,
            clock: ClockChoice::Auto,
            sync_system: false,
            clock_identity: None,
            metrics_listen: None,
            clock_bound: None,
        }
    }

    /// Sets transport, delay mechanism and majorSdoId as `profile` has them.
    pub fn apply_profile(&mut self, profile: Profile) {
        let (transport, delay, sdo) = profile.settings();
        self.transport = transport;
        self.port.delay_mechanism = delay;
        self.port.sdo_id = sdo;
        if profile == Profile::Gptp {
            self.port.domain = 0;
        }
    }

    /// Checks the combination of settings (each value was checked as it was read).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interface.is_empty() {
            return Err(invalid("interface", "no interface given"));
        }
        if self.timestamping == Timestamping::Software {
            if let ClockChoice::Phc(path) = &self.clock {
                return Err(invalid(
                    "clock",
                    format!(
                        "{path}: software timestamps are taken on the system clock, so only \
                         the system clock can be steered by them; use timestamping = \
                         \"hardware\""
                    ),
                ));
            }
            if self.sync_system {
                return Err(invalid(
                    "sync_system",
                    "with software timestamps the system clock is steered directly",
                ));
            }
        }
        if self.timestamping == Timestamping::Hardware && self.clock == ClockChoice::System {
            return Err(invalid(
                "clock",
                "hardware timestamps are on the NIC's PHC: steer it (clock = \"auto\") and \
                 set sync_system = true to follow it with the system clock",
            ));
        }
        let servo: &PiServoConfig = &self.port.servo;
        if servo.kp <= 0.0 || servo.ki < 0.0 {
            return Err(invalid("servo.kp", "kp must be above 0 and ki at least 0"));
        }
        Ok(())
    }
}

/// Parses a MAC address, `aa:bb:cc:dd:ee:ff` (as /sys/class/net/IF/address has it).
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = text.trim().split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_and_bad_ones_do_not() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:02\n"),
            Some([0x02, 0x42, 0xac, 0x11, 0x00, 0x02])
        );
        assert_eq!(parse_mac("02:42:ac:11:00"), None);
        assert_eq!(parse_mac("02:42:ac:11:00:02:03"), None);
        assert_eq!(parse_mac("zz:42:ac:11:00:02"), None);
    }

    fn applied(text: &str) -> Result<SlaveConfig, ConfigError> {
        let mut c = SlaveConfig::new("eth0");
        PtpConfigFile::from_toml(text)?.apply(&mut c)?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn no_file_gives_default_e2e_over_udp4_on_the_system_clock() {
        let c = applied("").unwrap();
        assert_eq!(c.transport, Transport::Udp4);
        assert_eq!(c.port.delay_mechanism, DelayMechanism::E2e);
        assert_eq!(c.port.sdo_id, 0);
        assert_eq!(c.timestamping, Timestamping::Software);
        assert_eq!(c.clock, ClockChoice::Auto);
    }

    #[test]
    fn gptp_profile_sets_l2_p2p_and_transport_specific_1() {
        let c = applied("profile = \"gptp\"\ndomain = 0").unwrap();
        assert_eq!(c.transport, Transport::L2);
        assert_eq!(c.port.delay_mechanism, DelayMechanism::P2p);
        assert_eq!(c.port.sdo_id, 1);
        // Keys after the profile override it.
        let c = applied("profile = \"default-p2p\"\ntransport = \"udp6\"").unwrap();
        assert_eq!(c.transport, Transport::Udp6);
        assert_eq!(c.port.delay_mechanism, DelayMechanism::P2p);
    }

    #[test]
    fn every_key_is_read() {
        let c = applied(
            r#"
interface = "ens3"
transport = "l2"
delay_mechanism = "p2p"
domain = 24
transport_specific = 1
announce_receipt_timeout = 4
timestamping = "hardware"
clock = "/dev/ptp1"
sync_system = true
clock_identity = "001122.fffe.334455"
observe = true
summary_every = 8
metrics_listen = "127.0.0.1:9101"
[servo]
kp = 0.5
ki = 0.2
first_step_threshold = 0.00002
step_threshold = 1.0
"#,
        )
        .unwrap();
        assert_eq!(c.interface, "ens3");
        assert_eq!(c.port.domain, 24);
        assert_eq!(c.port.announce_receipt_timeout, 4);
        assert_eq!(c.clock, ClockChoice::Phc("/dev/ptp1".into()));
        assert!(c.sync_system && c.observe);
        assert_eq!(
            c.clock_identity,
            Some(ClockIdentity([
                0x00, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55
            ]))
        );
        assert_eq!(c.summary_every, 8);
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9101".parse().unwrap()));
        assert_eq!(c.port.servo.kp, 0.5);
        assert_eq!(c.port.servo.step_threshold, 1.0);
    }

    #[test]
    fn errors_name_the_key() {
        for (text, key) in [
            ("transport = \"udp5\"", "transport"),
            ("delay_mechanism = \"x\"", "delay_mechanism"),
            ("profile = \"power\"", "profile"),
            ("timestamping = \"gps\"", "timestamping"),
            ("clock = \"ptp0\"", "clock"),
            ("clock_identity = \"0011\"", "clock_identity"),
            ("transport_specific = 16", "transport_specific"),
            ("announce_receipt_timeout = 1", "announce_receipt_timeout"),
            ("[servo]\nkp = -1.0", "servo.kp"),
            ("clock = \"/dev/ptp0\"", "clock"),
            ("sync_system = true", "sync_system"),
            ("timestamping = \"hardware\"\nclock = \"system\"", "clock"),
        ] {
            match applied(text) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            applied("colour = 1"),
            Err(ConfigError::Parse { .. })
        ));
        assert!(matches!(
            applied("domain = 300"),
            Err(ConfigError::Parse { .. })
        ));
    }
}
