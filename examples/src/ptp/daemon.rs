//! The `ptp-slave` daemon's I/O: UDPv4 event and general sockets on one interface with
//! kernel timestamps, the port state machine, the PI servo's output applied to the system
//! clock (or, observe-only, nothing applied), and ptp4l-like output.

use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tempora_clock_discipline::SteeredClock;
use tempora_clock_filter::LocalInstant;
use tempora_ptp_proto::{PortIdentity, PortState};
use tempora_sys_clock::{
    SystemClock, TimestampMode, TimestampedSocket, interface_index, poll_readable,
};

use super::port::{PortConfig, PortEvent, PtpPort, clock_identity_from_mac, parse_mac};

/// How the slave runs.
#[derive(Clone, Debug, PartialEq)]
pub struct SlaveConfig {
    /// The interface.
    pub interface: String,
    /// The port's settings (domain, servo...).
    pub port: PortConfig,
    /// Measure and report, never steer.
    pub observe: bool,
    /// Stop after this long (seconds), if set.
    pub duration: Option<f64>,
    /// Print a summary every this many samples (ptp4l prints one per second of samples).
    pub summary_every: u32,
}

/// Why the slave could not run.
#[derive(Debug, thiserror::Error)]
pub enum SlaveError {
    /// The interface.
    #[error("interface {interface}: {detail}")]
    Interface {
        /// Its name.
        interface: String,
        /// What is wrong.
        detail: String,
    },
    /// A socket.
    #[error(transparent)]
    Socket(#[from] tempora_sys_clock::Error),
    /// A thread.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

/// One line of output, as text and as JSON.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Report {
    /// A state change.
    State {
        /// Seconds since start.
        time: f64,
        /// From.
        from: String,
        /// To.
        to: String,
    },
    /// A new master.
    Master {
        /// Seconds since start.
        time: f64,
        /// Its port identity, or none.
        master: Option<String>,
    },
    /// One sample.
    Sample {
        /// Seconds since start.
        time: f64,
        /// The port state.
        state: String,
        /// Master offset, ns.
        offset_ns: f64,
        /// Servo state: s0 unlocked, s1 stepped, s2 locked.
        servo: String,
        /// Frequency, ppb.
        frequency_ppb: f64,
        /// Path delay, ns.
        path_delay_ns: f64,
    },
    /// A summary of the last samples.
    Summary {
        /// Seconds since start.
        time: f64,
        /// RMS offset, ns.
        rms_ns: f64,
        /// Max |offset|, ns.
        max_ns: f64,
        /// Mean frequency, ppb.
        frequency_ppb: f64,
        /// Its standard deviation.
        frequency_sd: f64,
        /// Mean path delay, ns.
        delay_ns: f64,
        /// Its standard deviation.
        delay_sd: f64,
    },
    /// The master's UTC offset, set as the kernel's TAI offset when steering.
    UtcOffset {
        /// Seconds since start.
        time: f64,
        /// TAI - UTC.
        seconds: i16,
    },
}

impl Report {
    /// ptp4l's wording.
    pub fn text(&self) -> String {
        match self {
            Report::State { time, from, to } => {
                format!("ptp-slave[{time:.3}]: port 1: {from} to {to}")
            }
            Report::Master { time, master } => match master {
                Some(m) => format!("ptp-slave[{time:.3}]: selected best master clock {m}"),
                None => format!("ptp-slave[{time:.3}]: no master"),
            },
            Report::Sample {
                time,
                offset_ns,
                servo,
                frequency_ppb,
                path_delay_ns,
                ..
            } => format!(
                "ptp-slave[{time:.3}]: master offset {offset_ns:>10.0} {servo} freq {frequency_ppb:>+8.0} path delay {path_delay_ns:>9.0}"
            ),
            Report::Summary {
                time,
                rms_ns,
                max_ns,
                frequency_ppb,
                frequency_sd,
                delay_ns,
                delay_sd,
            } => format!(
                "ptp-slave[{time:.3}]: rms {rms_ns:>6.0} max {max_ns:>6.0} freq {frequency_ppb:>+7.0} +/- {frequency_sd:>4.0} delay {delay_ns:>6.0} +/- {delay_sd:>4.0}"
            ),
            Report::UtcOffset { time, seconds } => {
                format!("ptp-slave[{time:.3}]: master's UTC offset {seconds} s")
            }
        }
    }
}

fn state_name(s: PortState) -> String {
    format!("{s:?}").to_uppercase()
}

fn mac_of(interface: &str) -> Result<[u8; 6], SlaveError> {
    let path = format!("/sys/class/net/{interface}/address");
    let text = std::fs::read_to_string(&path).map_err(|e| SlaveError::Interface {
        interface: interface.into(),
        detail: format!("{path}: {e}"),
    })?;
    match parse_mac(&text) {
        // Interfaces without a MAC (lo, tun) still get an identity: from the index.
        Some(mac) if mac != [0; 6] => Ok(mac),
        _ => {
            let index = interface_index(interface)?;
            let b = index.to_be_bytes();
            Ok([0x02, 0, b[0], b[1], b[2], b[3]])
        }
    }
}

/// Runs the slave until `stop` is set or the duration ends, giving every report to `out`.
pub fn run(
    config: &SlaveConfig,
    stop: &AtomicBool,
    mut out: impl FnMut(&Report),
) -> Result<(), SlaveError> {
    let index = interface_index(&config.interface)?;
    let identity = PortIdentity {
        clock_identity: clock_identity_from_mac(mac_of(&config.interface)?),
        port_number: 1,
    };
    let event = TimestampedSocket::bind(
        SocketAddr::from(([0, 0, 0, 0], tempora_ptp_proto::transport::EVENT_PORT)),
        TimestampMode::Software,
    )?;
    let general = TimestampedSocket::bind(
        SocketAddr::from(([0, 0, 0, 0], tempora_ptp_proto::transport::GENERAL_PORT)),
        TimestampMode::Software,
    )?;
    let group = tempora_ptp_proto::transport::IPV4_PRIMARY;
    for s in [&event, &general] {
        s.join_multicast_v4_index(group, index)?;
        s.set_multicast_v4_interface(index)?;
        s.socket()
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| SlaveError::Interface {
                interface: config.interface.clone(),
                detail: e.to_string(),
            })?;
    }
    let mut event = event;
    for s in [&event, &general] {
        s.set_nonblocking(true)?;
    }
    let start = Instant::now();
    let now = || LocalInstant(start.elapsed().as_nanos() as i64);
    let elapsed = || start.elapsed().as_secs_f64();
    let mut port = PtpPort::new(identity, config.port);
    let mut steered = SystemClock::new();
    let mut events = Vec::new();
    let mut buf = [0u8; 128];
    let mut rx_buf = [0u8; 1500];
    let mut window: Vec<(f64, f64, f64)> = Vec::new();
    let destination = SocketAddr::V4(SocketAddrV4::new(
        group,
        tempora_ptp_proto::transport::EVENT_PORT,
    ));
    while !stop.load(Ordering::Relaxed) && config.duration.is_none_or(|d| elapsed() < d) {
        let wait = port.poll_timeout().map_or(Duration::from_millis(100), |t| {
            Duration::from_nanos(t.as_nanos().saturating_sub(now().as_nanos()).max(0) as u64)
                .min(Duration::from_millis(100))
        });
        // One thread for both sockets: a reader blocked on the event socket would be
        // woken by the Delay_Req's transmit timestamp, between the timestamp and the
        // packet's departure (measured: 4-10 us of false asymmetry on a veth).
        let mut ready = [false; 2];
        match poll_readable(&[event.as_fd(), general.as_fd()], wait, &mut ready) {
            Ok(_) => {
                for (socket, is_ready) in [(&event, ready[0]), (&general, ready[1])] {
                    if !is_ready {
                        continue;
                    }
                    while let Ok(r) = socket.recv_from(&mut rx_buf) {
                        if let Some(ts) = r.timestamp {
                            port.handle_message(&rx_buf[..r.len], ts.nanos, now(), &mut events);
                        }
                    }
                }
            }
            Err(_) => {
                port.fault(&mut events);
                std::thread::sleep(Duration::from_millis(100));
                port.recover(&mut events);
            }
        }
        if let Some(len) = port.handle_timeout(now(), &mut buf, &mut events) {
            let socket = &mut event;
            let before = steered.now_realtime().unwrap_or(0);
            if let Ok(id) = socket.send_to(&buf[..len], destination) {
                // The kernel's transmit timestamp arrives on the error queue at once.
                let mut t3 = before;
                for _ in 0..50 {
                    match socket.recv_tx_timestamp() {
                        Ok(t) if t.id == id => {
                            t3 = t.timestamp.nanos;
                            break;
                        }
                        Ok(_) => continue,
                        Err(_) => std::thread::sleep(Duration::from_micros(200)),
                    }
                }
                if t3 == before {
                    tracing::debug!("no transmit timestamp for the Delay_Req; using the send time");
                }
                port.delay_req_sent(t3);
            }
        }
        for e in events.drain(..) {
            let time = elapsed();
            let report = match e {
                PortEvent::State { from, to } => Report::State {
                    time,
                    from: state_name(from),
                    to: state_name(to),
                },
                PortEvent::Master(m) => Report::Master {
                    time,
                    master: m.map(|d| {
                        let c = d.sender.clock_identity.0;
                        format!(
                            "{:02x}{:02x}{:02x}.{:02x}{:02x}.{:02x}{:02x}{:02x}-{}",
                            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], d.sender.port_number
                        )
                    }),
                },
                PortEvent::UtcOffset(seconds) => {
                    if !config.observe {
                        let _ = steered.set_tai_offset(i32::from(seconds));
                    }
                    Report::UtcOffset { time, seconds }
                }
                PortEvent::Sample(s) => {
                    if !config.observe {
                        if let Some(step) = s.step {
                            let _ = SteeredClock::step(&mut steered, step);
                        }
                        let _ = SteeredClock::set_frequency(&mut steered, s.frequency_ppb / 1000.0);
                    }
                    if port.state() == PortState::Slave {
                        window.push((s.offset_ns, s.frequency_ppb, s.path_delay_ns));
                    }
                    Report::Sample {
                        time,
                        state: state_name(port.state()),
                        offset_ns: s.offset_ns,
                        servo: match s.state {
                            tempora_clock_discipline::ServoState::Unlocked => "s0",
                            tempora_clock_discipline::ServoState::Jump => "s1",
                            _ => "s2",
                        }
                        .into(),
                        frequency_ppb: s.frequency_ppb,
                        path_delay_ns: s.path_delay_ns,
                    }
                }
            };
            out(&report);
        }
        if config.summary_every > 0 && window.len() >= config.summary_every as usize {
            let n = window.len() as f64;
            let mean = |f: &dyn Fn(&(f64, f64, f64)) -> f64| window.iter().map(f).sum::<f64>() / n;
            let sd = |f: &dyn Fn(&(f64, f64, f64)) -> f64, m: f64| {
                (window.iter().map(|x| (f(x) - m).powi(2)).sum::<f64>() / n).sqrt()
            };
            let fm = mean(&|x| x.1);
            let dm = mean(&|x| x.2);
            out(&Report::Summary {
                time: elapsed(),
                rms_ns: mean(&|x| x.0 * x.0).sqrt(),
                max_ns: window.iter().fold(0.0f64, |m, x| m.max(x.0.abs())),
                frequency_ppb: fm,
                frequency_sd: sd(&|x| x.1, fm),
                delay_ns: dm,
                delay_sd: sd(&|x| x.2, dm),
            });
            window.clear();
        }
    }
    Ok(())
}
