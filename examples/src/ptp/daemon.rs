//! The `ptp-slave` daemon's I/O: UDPv4 event and general sockets on one interface with
//! kernel timestamps, the port state machine, the PI servo's output applied to the system
//! clock (or, observe-only, nothing applied), and ptp4l-like output.

use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tempora_clock_discipline::SteeredClock;
use tempora_clock_filter::LocalInstant;
use tempora_ptp_proto::EthernetFrame;
use tempora_ptp_proto::{PortIdentity, PortState};
use tempora_sys_clock::{
    PacketSocket, SystemClock, TimestampMode, TimestampedSocket, interface_index, poll_readable,
};

use super::port::{Outgoing, PortConfig, PortEvent, PtpPort, clock_identity_from_mac, parse_mac};

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
    /// UDPv4, UDPv6 or Ethernet.
    pub transport: Transport,
}

/// The network transport (IEEE 1588-2019 annexes C, D and E).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP over IPv4, 224.0.1.129 ports 319/320.
    Udp4,
    /// UDP over IPv6, ff0e::181 ports 319/320.
    Udp6,
    /// Ethernet (IEEE 802.3), ethertype 0x88F7 to 01-1B-19-00-00-00.
    L2,
}

/// The sockets of one transport.
enum Io {
    Udp {
        event: TimestampedSocket,
        general: TimestampedSocket,
        primary: SocketAddr,
        pdelay: SocketAddr,
    },
    L2 {
        socket: PacketSocket,
        mac: [u8; 6],
    },
}

impl Io {
    fn open(
        transport: Transport,
        interface: &str,
        index: u32,
        mac: [u8; 6],
    ) -> Result<Self, SlaveError> {
        use tempora_ptp_proto::transport::{
            EVENT_PORT, GENERAL_PORT, IPV4_PDELAY, IPV4_PRIMARY, IPV6_PDELAY, MAC_PDELAY,
            MAC_PRIMARY,
        };
        match transport {
            Transport::Udp4 | Transport::Udp6 => {
                let v6 = transport == Transport::Udp6;
                let any = |port: u16| -> SocketAddr {
                    if v6 {
                        SocketAddr::from(([0u16; 8], port))
                    } else {
                        SocketAddr::from(([0, 0, 0, 0], port))
                    }
                };
                let event = TimestampedSocket::bind(any(EVENT_PORT), TimestampMode::Software)?;
                let general = TimestampedSocket::bind(any(GENERAL_PORT), TimestampMode::Software)?;
                let group6 = tempora_ptp_proto::transport::ipv6_primary(0x0E);
                for s in [&event, &general] {
                    if v6 {
                        s.join_multicast_v6(group6, index)?;
                        s.join_multicast_v6(IPV6_PDELAY, index)?;
                        s.set_multicast_v6_interface(index)?;
                    } else {
                        s.join_multicast_v4_index(IPV4_PRIMARY, index)?;
                        s.join_multicast_v4_index(IPV4_PDELAY, index)?;
                        s.set_multicast_v4_interface(index)?;
                    }
                    s.set_nonblocking(true)?;
                }
                let (primary, pdelay) = if v6 {
                    (
                        SocketAddr::V6(std::net::SocketAddrV6::new(group6, EVENT_PORT, 0, index)),
                        SocketAddr::V6(std::net::SocketAddrV6::new(
                            IPV6_PDELAY,
                            EVENT_PORT,
                            0,
                            index,
                        )),
                    )
                } else {
                    (
                        SocketAddr::V4(SocketAddrV4::new(IPV4_PRIMARY, EVENT_PORT)),
                        SocketAddr::V4(SocketAddrV4::new(IPV4_PDELAY, EVENT_PORT)),
                    )
                };
                Ok(Io::Udp {
                    event,
                    general,
                    primary,
                    pdelay,
                })
            }
            Transport::L2 => {
                let socket = PacketSocket::open(interface, TimestampMode::Software)?;
                socket.join_multicast(MAC_PRIMARY)?;
                socket.join_multicast(MAC_PDELAY)?;
                Ok(Io::L2 { socket, mac })
            }
        }
    }

    /// Waits up to `wait`, then gives every message received to `f` with its timestamp.
    fn receive(
        &mut self,
        wait: Duration,
        buf: &mut [u8],
        mut f: impl FnMut(&[u8], i128),
    ) -> Result<(), SlaveError> {
        match self {
            Io::Udp { event, general, .. } => {
                let mut ready = [false; 2];
                poll_readable(&[event.as_fd(), general.as_fd()], wait, &mut ready)?;
                for (socket, is_ready) in [(&*event, ready[0]), (&*general, ready[1])] {
                    if !is_ready {
                        continue;
                    }
                    while let Ok(r) = socket.recv_from(buf) {
                        if let Some(ts) = r.timestamp {
                            f(&buf[..r.len], ts.nanos);
                        }
                    }
                }
            }
            Io::L2 { socket, mac } => {
                let mut ready = [false; 1];
                poll_readable(&[socket.as_fd()], wait, &mut ready)?;
                if ready[0] {
                    let r = socket.recv(buf)?;
                    if let (Ok(frame), Some(ts)) =
                        (EthernetFrame::parse(&buf[..r.len]), r.timestamp)
                    {
                        // AF_PACKET also shows this host's own frames going out.
                        if frame.source != *mac {
                            f(frame.payload, ts.nanos);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends a message where its kind says; for an event message returns its transmit
    /// timestamp (the clock just before the send when the kernel gives none).
    fn send(&mut self, message: &[u8], kind: Outgoing, clock: &SystemClock) -> Option<i128> {
        use tempora_ptp_proto::transport::{GENERAL_PORT, MAC_PDELAY, MAC_PRIMARY};
        let before = clock.now_realtime().unwrap_or(0);
        let mut frame = [0u8; 256];
        let id = match self {
            Io::Udp {
                event,
                general,
                primary,
                pdelay,
            } => {
                let mut to = if kind.is_peer_delay() {
                    *pdelay
                } else {
                    *primary
                };
                if kind.is_event() {
                    event.send_to(message, to).ok()?
                } else {
                    to.set_port(GENERAL_PORT);
                    general.send_to(message, to).ok()?;
                    return None;
                }
            }
            Io::L2 { socket, mac } => {
                let len = EthernetFrame {
                    destination: if kind.is_peer_delay() {
                        MAC_PDELAY
                    } else {
                        MAC_PRIMARY
                    },
                    source: *mac,
                    vlan: None,
                    payload: message,
                }
                .emit(&mut frame)
                .ok()?;
                let id = socket.send(&frame[..len]).ok()?;
                if !kind.is_event() {
                    return None;
                }
                id
            }
        };
        // The kernel's transmit timestamp arrives on the error queue at once.
        for _ in 0..50 {
            let stamp = match self {
                Io::Udp { event, .. } => event.recv_tx_timestamp(),
                Io::L2 { socket, .. } => socket.recv_tx_timestamp(),
            };
            match stamp {
                Ok(t) if t.id == id => return Some(t.timestamp.nanos),
                Ok(_) => continue,
                Err(_) => std::thread::sleep(Duration::from_micros(200)),
            }
        }
        Some(before)
    }
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
        /// A spike, not given to the servo.
        spike: bool,
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
                spike,
                ..
            } => format!(
                "ptp-slave[{time:.3}]: master offset {offset_ns:>10.0} {servo} freq {frequency_ppb:>+8.0} path delay {path_delay_ns:>9.0}{}",
                if *spike { " (spike, ignored)" } else { "" }
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
    let mac = mac_of(&config.interface)?;
    let identity = PortIdentity {
        clock_identity: clock_identity_from_mac(mac),
        port_number: 1,
    };
    let mut io = Io::open(config.transport, &config.interface, index, mac)?;
    let start = Instant::now();
    let now = || LocalInstant(start.elapsed().as_nanos() as i64);
    let elapsed = || start.elapsed().as_secs_f64();
    let mut port = PtpPort::new(identity, config.port);
    let mut steered = SystemClock::new();
    let mut events = Vec::new();
    let mut buf = [0u8; 128];
    let mut rx_buf = [0u8; 1500];
    let mut window: Vec<(f64, f64, f64)> = Vec::new();
    while !stop.load(Ordering::Relaxed) && config.duration.is_none_or(|d| elapsed() < d) {
        let wait = port.poll_timeout().map_or(Duration::from_millis(100), |t| {
            Duration::from_nanos(t.as_nanos().saturating_sub(now().as_nanos()).max(0) as u64)
                .min(Duration::from_millis(100))
        });
        // One thread for every socket: a reader blocked on the event socket would be
        // woken by the Delay_Req's transmit timestamp, between the timestamp and the
        // packet's departure (measured: 4-10 us of false asymmetry on a veth).
        let received = io.receive(wait, &mut rx_buf, |bytes, rx| {
            port.handle_message(bytes, rx, now(), &mut events);
        });
        if received.is_err() {
            port.fault(&mut events);
            std::thread::sleep(Duration::from_millis(100));
            port.recover(&mut events);
        }
        let mut next = port.handle_timeout(now(), &mut buf, &mut events);
        while let Some((len, kind)) = next.take().or_else(|| port.poll_transmit(&mut buf)) {
            if let Some(t) = io.send(&buf[..len], kind, &steered) {
                port.transmitted(kind, t);
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
                    if !config.observe && !s.spike {
                        if let Some(step) = s.step {
                            let _ = SteeredClock::step(&mut steered, step);
                        }
                        let _ = SteeredClock::set_frequency(&mut steered, s.frequency_ppb / 1000.0);
                    }
                    if port.state() == PortState::Slave && !s.spike {
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
                        spike: s.spike,
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
