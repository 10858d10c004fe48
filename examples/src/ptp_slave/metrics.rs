//! What `ptp-slave` shows on `/metrics` (Prometheus text) and `/status` (JSON).
//!
//! Besides its own `tempora_ptp_*` series it writes the series OpenShift's PTP operator
//! exports for linuxptp (`openshift_ptp_offset_ns`, `..._clock_state`,
//! `..._interface_role`, ...), with the same labels and `process` set to the linuxptp
//! program whose job it does ("ptp4l" for the port, "phc2sys" for the system clock), so
//! the dashboards and alerts written for linuxptp keep working.

use std::fmt::Write;
use std::sync::{Arc, Mutex};

use crate::prometheus::label_value;

/// `/metrics` and `/status` (and `/`) for a status the daemon keeps current.
pub fn handler(status: Arc<Mutex<PtpStatus>>) -> crate::http::Handler {
    Arc::new(move |path: &str| {
        let s = status.lock().ok()?.clone();
        match path {
            "/status" | "/" => Some(crate::http::Body {
                content_type: "application/json",
                text: serde_json::to_string(&s).unwrap_or_default() + "\n",
            }),
            "/metrics" => Some(crate::http::Body {
                content_type: "text/plain; version=0.0.4",
                text: s.prometheus(),
            }),
            _ => None,
        }
    })
}

/// The daemon's state as the metrics show it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct PtpStatus {
    /// The interface.
    pub interface: String,
    /// The node name (the host name).
    pub node: String,
    /// The port state, upper case as ptp4l prints it.
    pub state: String,
    /// The master's port identity.
    pub master: Option<String>,
    /// Whether the clock is steered (false: observe-only).
    pub steering: bool,
    /// The clock steered: "CLOCK_REALTIME" or a PHC path.
    pub clock: String,
    /// Last master offset, ns (slave minus master).
    pub offset_ns: f64,
    /// Largest |offset| of the last summary period, ns.
    pub max_offset_ns: f64,
    /// RMS offset of the last summary period, ns.
    pub rms_offset_ns: f64,
    /// Mean path delay, ns.
    pub path_delay_ns: f64,
    /// Frequency correction, ppb.
    pub frequency_ppb: f64,
    /// Servo state: "s0" unlocked, "s1" stepped, "s2" locked.
    pub servo: String,
    /// Samples taken.
    pub samples: u64,
    /// Spikes kept from the servo.
    pub spikes: u64,
    /// The last spike's raw offset, ns (apart from `offset_ns`, which stays the
    /// estimate: the daemon discarded the spike).
    pub last_spike_ns: Option<f64>,
    /// Changes of master.
    pub master_changes: u64,
    /// Event messages dropped for want of a timestamp on the measuring clock (with
    /// hardware timestamps: ones the NIC did not stamp).
    pub missing_timestamps: u64,
    /// The master's currentUtcOffset, when valid.
    pub utc_offset: Option<i16>,
    /// The system clock against the PHC (phc2sys), when it is kept on it.
    pub system: Option<SystemSyncStatus>,
    /// The last action the clock refused (a kernel that says EPERM though the process
    /// has CAP_SYS_TIME, as in a user namespace).
    pub last_error: Option<String>,
}

/// The system clock kept on the PHC.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct SystemSyncStatus {
    /// System clock minus its target (PHC minus the UTC offset), ns.
    pub offset_ns: f64,
    /// Frequency correction of the system clock, ppb.
    pub frequency_ppb: f64,
    /// Width of the reading window, ns.
    pub delay_ns: f64,
    /// Servo state.
    pub servo: String,
}

fn servo_locked(servo: &str) -> bool {
    servo == "s2" || servo == "s3"
}

/// OpenShift's interface_role numbers.
fn role_number(state: &str) -> u8 {
    match state {
        "PASSIVE" => 0,
        "SLAVE" => 1,
        "MASTER" | "PRE_MASTER" => 2,
        "FAULTY" => 3,
        "LISTENING" | "INITIALIZING" | "UNCALIBRATED" => 5,
        _ => 4,
    }
}

impl PtpStatus {
    /// The Prometheus text exposition.
    pub fn prometheus(&self) -> String {
        let mut o = String::new();
        let iface = label_value(&self.interface);
        let node = label_value(&self.node);
        let mut gauge = |name: &str, help: &str, labels: &str, value: f64| {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} gauge");
            let _ = writeln!(o, "{name}{{{labels}}} {value}");
        };
        let l = format!("interface=\"{iface}\"");
        gauge(
            "tempora_ptp_offset_seconds",
            "Last master offset (slave minus master).",
            &l,
            self.offset_ns / 1e9,
        );
        gauge(
            "tempora_ptp_rms_offset_seconds",
            "RMS master offset over the last summary period.",
            &l,
            self.rms_offset_ns / 1e9,
        );
        gauge(
            "tempora_ptp_max_offset_seconds",
            "Largest |master offset| over the last summary period.",
            &l,
            self.max_offset_ns / 1e9,
        );
        gauge(
            "tempora_ptp_path_delay_seconds",
            "Mean path delay to the master.",
            &l,
            self.path_delay_ns / 1e9,
        );
        gauge(
            "tempora_ptp_frequency_ppb",
            "Frequency correction of the steered clock.",
            &l,
            self.frequency_ppb,
        );
        gauge(
            "tempora_ptp_steering",
            "1 when the clock is steered, 0 observe-only.",
            &l,
            f64::from(u8::from(self.steering)),
        );
        gauge(
            "tempora_ptp_servo_locked",
            "1 when the servo is locked.",
            &l,
            f64::from(u8::from(servo_locked(&self.servo))),
        );
        if let Some(u) = self.utc_offset {
            gauge(
                "tempora_ptp_utc_offset_seconds",
                "The master's currentUtcOffset (TAI - UTC).",
                &l,
                f64::from(u),
            );
        }
        if let Some(spike) = self.last_spike_ns {
            gauge(
                "tempora_ptp_last_spike_offset_seconds",
                "Raw offset of the last Sync kept from the servo as a spike.",
                &l,
                spike / 1e9,
            );
        }
        let _ = writeln!(
            o,
            "# HELP tempora_ptp_port_state 1 for the port's current state.\n# TYPE tempora_ptp_port_state gauge"
        );
        for state in [
            "INITIALIZING",
            "FAULTY",
            "LISTENING",
            "UNCALIBRATED",
            "SLAVE",
            "PASSIVE",
        ] {
            let _ = writeln!(
                o,
                "tempora_ptp_port_state{{{l},state=\"{state}\"}} {}",
                u8::from(self.state == state)
            );
        }
        if let Some(m) = &self.master {
            let _ = writeln!(
                o,
                "# HELP tempora_ptp_master_info The master followed.\n# TYPE tempora_ptp_master_info gauge\ntempora_ptp_master_info{{{l},port_identity=\"{}\"}} 1",
                label_value(m)
            );
        }
        for (name, help, value) in [
            (
                "tempora_ptp_samples_total",
                "Offset samples taken.",
                self.samples,
            ),
            (
                "tempora_ptp_spikes_total",
                "Samples kept from the servo as spikes.",
                self.spikes,
            ),
            (
                "tempora_ptp_master_changes_total",
                "Changes of master.",
                self.master_changes,
            ),
            (
                "tempora_ptp_missing_timestamps_total",
                "Event messages dropped without a timestamp on the measuring clock.",
                self.missing_timestamps,
            ),
        ] {
            let _ = writeln!(
                o,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{{l}}} {value}"
            );
        }
        if let Some(s) = &self.system {
            let l = "interface=\"CLOCK_REALTIME\"";
            let _ = writeln!(
                o,
                "# HELP tempora_ptp_system_offset_seconds System clock minus the PHC's UTC.\n# TYPE tempora_ptp_system_offset_seconds gauge\ntempora_ptp_system_offset_seconds{{{l}}} {}",
                s.offset_ns / 1e9
            );
            let _ = writeln!(
                o,
                "# HELP tempora_ptp_system_frequency_ppb Frequency correction of the system clock.\n# TYPE tempora_ptp_system_frequency_ppb gauge\ntempora_ptp_system_frequency_ppb{{{l}}} {}",
                s.frequency_ppb
            );
        }
        // OpenShift PTP operator's series.
        let ptp4l = format!("iface=\"{iface}\",node=\"{node}\",process=\"ptp4l\"");
        let master = format!("from=\"master\",{ptp4l}");
        let locked = self.state == "SLAVE" && servo_locked(&self.servo);
        let _ = writeln!(o, "# TYPE openshift_ptp_offset_ns gauge");
        let _ = writeln!(o, "openshift_ptp_offset_ns{{{master}}} {}", self.offset_ns);
        let _ = writeln!(o, "# TYPE openshift_ptp_max_offset_ns gauge");
        let _ = writeln!(
            o,
            "openshift_ptp_max_offset_ns{{{master}}} {}",
            self.max_offset_ns
        );
        let _ = writeln!(o, "# TYPE openshift_ptp_frequency_adjustment_ns gauge");
        let _ = writeln!(
            o,
            "openshift_ptp_frequency_adjustment_ns{{{master}}} {}",
            self.frequency_ppb
        );
        let _ = writeln!(o, "# TYPE openshift_ptp_delay_ns gauge");
        let _ = writeln!(
            o,
            "openshift_ptp_delay_ns{{{master}}} {}",
            self.path_delay_ns
        );
        let _ = writeln!(o, "# TYPE openshift_ptp_clock_state gauge");
        let _ = writeln!(
            o,
            "openshift_ptp_clock_state{{{ptp4l}}} {}",
            u8::from(locked)
        );
        let _ = writeln!(o, "# TYPE openshift_ptp_interface_role gauge");
        let _ = writeln!(
            o,
            "openshift_ptp_interface_role{{{ptp4l}}} {}",
            role_number(&self.state)
        );
        if let Some(s) = &self.system {
            let p = format!("iface=\"CLOCK_REALTIME\",node=\"{node}\",process=\"phc2sys\"");
            let _ = writeln!(
                o,
                "openshift_ptp_offset_ns{{from=\"phc\",{p}}} {}",
                s.offset_ns
            );
            let _ = writeln!(
                o,
                "openshift_ptp_frequency_adjustment_ns{{from=\"phc\",{p}}} {}",
                s.frequency_ppb
            );
            let _ = writeln!(
                o,
                "openshift_ptp_delay_ns{{from=\"phc\",{p}}} {}",
                s.delay_ns
            );
            let _ = writeln!(
                o,
                "openshift_ptp_clock_state{{{p}}} {}",
                u8::from(locked && servo_locked(&s.servo))
            );
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn series_carry_the_state() {
        let mut s = PtpStatus {
            interface: "ens1f0".into(),
            node: "worker-1".into(),
            state: "SLAVE".into(),
            master: Some("001122.fffe.334455-1".into()),
            steering: true,
            clock: "/dev/ptp0".into(),
            offset_ns: -12.0,
            max_offset_ns: 40.0,
            rms_offset_ns: 15.0,
            path_delay_ns: 2800.0,
            frequency_ppb: 1234.0,
            servo: "s2".into(),
            samples: 99,
            spikes: 1,
            last_spike_ns: Some(97_000.0),
            master_changes: 2,
            missing_timestamps: 3,
            utc_offset: Some(37),
            system: Some(SystemSyncStatus {
                offset_ns: 5.0,
                frequency_ppb: -6768.0,
                delay_ns: 500.0,
                servo: "s2".into(),
            }),
            last_error: None,
        };
        let t = s.prometheus();
        assert_eq!(
            value(&t, "tempora_ptp_offset_seconds{interface=\"ens1f0\"}"),
            Some(-12e-9)
        );
        assert_eq!(
            value(
                &t,
                "tempora_ptp_port_state{interface=\"ens1f0\",state=\"SLAVE\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &t,
                "tempora_ptp_port_state{interface=\"ens1f0\",state=\"LISTENING\"}"
            ),
            Some(0.0)
        );
        assert_eq!(value(&t, "tempora_ptp_spikes_total"), Some(1.0));
        assert_eq!(value(&t, "tempora_ptp_missing_timestamps_total"), Some(3.0));
        assert_eq!(
            value(
                &t,
                "tempora_ptp_last_spike_offset_seconds{interface=\"ens1f0\"}"
            ),
            Some(97e-6)
        );
        assert_eq!(value(&t, "tempora_ptp_utc_offset_seconds"), Some(37.0));
        let ocp = "iface=\"ens1f0\",node=\"worker-1\",process=\"ptp4l\"";
        assert_eq!(
            value(
                &t,
                &format!("openshift_ptp_offset_ns{{from=\"master\",{ocp}}}")
            ),
            Some(-12.0)
        );
        assert_eq!(
            value(&t, &format!("openshift_ptp_clock_state{{{ocp}}}")),
            Some(1.0)
        );
        assert_eq!(
            value(&t, &format!("openshift_ptp_interface_role{{{ocp}}}")),
            Some(1.0)
        );
        assert_eq!(
            value(
                &t,
                "openshift_ptp_frequency_adjustment_ns{from=\"phc\",iface=\"CLOCK_REALTIME\""
            ),
            Some(-6768.0)
        );
        // Listening, unlocked, no system clock kept: the roles and states follow.
        s.state = "LISTENING".into();
        s.servo = "s0".into();
        s.system = None;
        let t = s.prometheus();
        assert_eq!(
            value(&t, &format!("openshift_ptp_clock_state{{{ocp}}}")),
            Some(0.0)
        );
        assert_eq!(
            value(&t, &format!("openshift_ptp_interface_role{{{ocp}}}")),
            Some(5.0)
        );
        assert!(!t.contains("phc2sys"));
        // Every sample line is `name{labels} number`.
        for line in t.lines().filter(|l| !l.starts_with('#')) {
            let (series, v) = line.rsplit_once(' ').unwrap();
            assert!(series.ends_with('}'), "{line}");
            assert!(v.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let s = PtpStatus {
            interface: "a\"b".into(),
            ..PtpStatus::default()
        };
        assert!(s.prometheus().contains("interface=\"a\\\"b\""));
    }
}
