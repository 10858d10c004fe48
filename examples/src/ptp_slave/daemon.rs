//! The `ptp-slave` daemon's I/O: UDPv4, UDPv6 or Ethernet sockets on one interface with
//! kernel software or NIC hardware timestamps, the port state machine, the PI servo's
//! output applied to the system clock or the NIC's PHC (and the system clock kept on that
//! PHC, as phc2sys does), or observe-only nothing applied; ptp4l-like output and
//! Prometheus metrics.

use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempora_clock_discipline::{PiServoConfig, ServoState};
use tempora_clock_types::{ClockAction, LocalInstant, SteeredClock};
use tempora_ptp::phc2sys::{PhcReading, PhcToSystem};
use tempora_ptp::{Outgoing, PortConfig, PortEvent, PtpPort, Transmit};
use tempora_ptp_proto::EthernetFrame;
use tempora_ptp_proto::{ClockIdentity, MessageType, PortIdentity, PortState};
use tempora_sys_clock::{
    PacketSocket, PhcClock, SystemClock, Timestamp, TimestampMode, TimestampSource,
    TimestampedSocket, enable_hardware_timestamping, interface_index, poll_readable,
};

use super::config::parse_mac;
use super::metrics::PtpStatus;

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
    /// Software or hardware timestamps.
    pub timestamping: Timestamping,
    /// The clock to steer.
    pub clock: ClockChoice,
    /// When steering a PHC, keep the system clock on it (phc2sys).
    pub sync_system: bool,
    /// The clock identity; from the interface's MAC when `None`.
    pub clock_identity: Option<ClockIdentity>,
    /// Prometheus `/metrics` and JSON `/status` here.
    pub metrics_listen: Option<SocketAddr>,
    /// Publish the system clock's error bound (the steered clock must be the system
    /// clock).
    pub clock_bound: Option<crate::clock_bound::ClockBoundConfig>,
}

/// Where packet timestamps come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timestamping {
    /// The kernel's, on the system clock (works on any interface).
    Software,
    /// The NIC's, on its PHC (needs a NIC that has them and CAP_NET_ADMIN).
    Hardware,
}

/// The clock the servo steers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClockChoice {
    /// The system clock with software timestamps, the interface's PHC with hardware ones.
    Auto,
    /// The system clock.
    System,
    /// This PHC device.
    Phc(String),
}

/// The clock being steered: the system clock or a PHC.
enum Steered {
    System(SystemClock),
    Phc(PhcClock),
}

impl Steered {
    /// The clock, as the engine's actions steer it.
    fn clock(&mut self) -> &mut dyn SteeredClock<Error = tempora_sys_clock::Error> {
        match self {
            Steered::System(c) => c,
            Steered::Phc(c) => c,
        }
    }

    fn max_frequency_ppb(&self) -> Option<f64> {
        match self {
            Steered::System(_) => None,
            Steered::Phc(c) => Some(f64::from(c.capabilities().max_adj_ppb)),
        }
    }
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
        primary: [u8; 6],
    },
}

impl Io {
    fn open(
        transport: Transport,
        interface: &str,
        index: u32,
        mac: [u8; 6],
        mode: TimestampMode,
        gptp: bool,
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
                let event = TimestampedSocket::bind(any(EVENT_PORT), mode)?;
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
                let socket = PacketSocket::open(interface, mode)?;
                socket.join_multicast(MAC_PRIMARY)?;
                socket.join_multicast(MAC_PDELAY)?;
                Ok(Io::L2 {
                    socket,
                    mac,
                    // 802.1AS sends every message to the peer-delay address.
                    primary: if gptp { MAC_PDELAY } else { MAC_PRIMARY },
                })
            }
        }
    }

    /// Waits up to `wait`, then gives every message received to `f` with its timestamp;
    /// counts in `dropped` the event messages without a timestamp of `mode`'s clock.
    fn receive(
        &mut self,
        wait: Duration,
        buf: &mut [u8],
        mode: TimestampMode,
        dropped: &mut u64,
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
                        match receive_time(&buf[..r.len], r.timestamp, mode) {
                            Some(rx) => f(&buf[..r.len], rx),
                            None => *dropped += 1,
                        }
                    }
                }
            }
            Io::L2 { socket, mac, .. } => {
                let mut ready = [false; 1];
                poll_readable(&[socket.as_fd()], wait, &mut ready)?;
                if ready[0] {
                    let r = socket.recv(buf)?;
                    if let Ok(frame) = EthernetFrame::parse(&buf[..r.len]) {
                        // AF_PACKET also shows this host's own frames going out.
                        if frame.source != *mac {
                            match receive_time(frame.payload, r.timestamp, mode) {
                                Some(rx) => f(frame.payload, rx),
                                None => *dropped += 1,
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends a message where its kind says; for an event message returns its transmit
    /// timestamp (with software timestamps, the clock just before the send when the
    /// kernel gives none; with hardware ones, none then).
    fn send(
        &mut self,
        message: &[u8],
        kind: Outgoing,
        mode: TimestampMode,
        fallback: Option<i128>,
    ) -> Option<i128> {
        use tempora_ptp_proto::transport::{GENERAL_PORT, MAC_PDELAY};
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
            Io::L2 {
                socket,
                mac,
                primary,
            } => {
                let len = EthernetFrame {
                    destination: if kind.is_peer_delay() {
                        MAC_PDELAY
                    } else {
                        *primary
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
                // A NIC that missed the send leaves no hardware stamp: the kernel's
                // software one is on another clock.
                Ok(t) if t.id == id => return stamp_of(t.timestamp, mode),
                Ok(_) => continue,
                Err(_) => std::thread::sleep(Duration::from_micros(200)),
            }
        }
        fallback
    }
}

/// A packet timestamp's nanoseconds if it is on the clock `mode` measures with: with
/// hardware timestamps only the NIC's own (PHC, TAI); a NIC that misses one leaves the
/// kernel's software stamp or a user-space reading (CLOCK_REALTIME, UTC) in its place.
fn stamp_of(stamp: Timestamp, mode: TimestampMode) -> Option<i128> {
    match (mode, stamp.source) {
        (TimestampMode::Hardware, TimestampSource::Hardware) | (TimestampMode::Software, _) => {
            Some(stamp.nanos)
        }
        (TimestampMode::Hardware, _) => None,
    }
}

/// The receive time to give the port for `message`, or none to drop it. An event message
/// (Sync, Delay_Req, Pdelay_*) needs a timestamp on the measuring clock ([`stamp_of`]):
/// UTC and TAI in one measurement are 37 s apart, and before lock one such sample steps
/// the clock. A general message's arrival time is not used, so any reading does.
fn receive_time(message: &[u8], stamp: Option<Timestamp>, mode: TimestampMode) -> Option<i128> {
    let event = message
        .first()
        .and_then(|b| MessageType::from_nibble(*b).ok())
        .is_some_and(MessageType::is_event);
    match stamp {
        Some(t) if event => stamp_of(t, mode),
        Some(t) => Some(t.nanos),
        None if event => None,
        None => Some(0),
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
    /// The clock to steer or its timestamps.
    #[error("{what}: {source}")]
    Clock {
        /// What was being set up.
        what: String,
        /// Why it failed.
        source: tempora_sys_clock::Error,
    },
    /// The clock error bound cannot be published.
    #[error("clock_bound: {0}")]
    ClockBound(String),
    /// The metrics listener.
    #[error("metrics on {address}: {source}")]
    Metrics {
        /// The address.
        address: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
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
        /// Master offset, ns: the filtered estimate (for a spike, the estimate from
        /// before it).
        offset_ns: f64,
        /// This Sync's raw offset, ns (ptp4l's "master offset").
        raw_offset_ns: f64,
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
    /// The master's leap second warning (leap61: `insert`, leap59: `delete`, or `none`).
    Leap {
        /// Seconds since start.
        time: f64,
        /// What the master announces.
        leap: String,
    },
    /// The system clock against the PHC it is kept on (phc2sys's line).
    SystemClock {
        /// Seconds since start.
        time: f64,
        /// System clock minus its target, ns.
        offset_ns: f64,
        /// Servo state.
        servo: String,
        /// The system clock's frequency correction, ppb.
        frequency_ppb: f64,
        /// Width of the reading window, ns.
        delay_ns: f64,
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
                raw_offset_ns,
                ..
            } => format!(
                "ptp-slave[{time:.3}]: master offset {offset_ns:>10.0} {servo} freq {frequency_ppb:>+8.0} path delay {path_delay_ns:>9.0}{}",
                if *spike {
                    format!(" (spike of {raw_offset_ns:.0} ignored)")
                } else {
                    String::new()
                }
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
            Report::Leap { time, leap } => {
                format!("ptp-slave[{time:.3}]: master's leap second warning: {leap}")
            }
            Report::SystemClock {
                time,
                offset_ns,
                servo,
                frequency_ppb,
                delay_ns,
            } => format!(
                "ptp-slave[{time:.3}]: CLOCK_REALTIME phc offset {offset_ns:>10.0} {servo} freq {frequency_ppb:>+8.0} delay {delay_ns:>6.0}"
            ),
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

/// Opens the clock the servo steers (read-only when observing).
fn open_clock(config: &SlaveConfig) -> Result<Steered, SlaveError> {
    let writable = !config.observe;
    let phc = |path: Option<&str>| {
        let opened = match path {
            Some(p) => PhcClock::open(p, writable),
            None => PhcClock::of_interface(&config.interface, writable),
        };
        opened
            .map(Steered::Phc)
            .map_err(|source| SlaveError::Clock {
                what: match path {
                    Some(p) => format!("PHC {p}"),
                    None => format!("the PHC of {}", config.interface),
                },
                source,
            })
    };
    match (&config.clock, config.timestamping) {
        (ClockChoice::Phc(path), _) => phc(Some(path)),
        (ClockChoice::Auto, Timestamping::Hardware) => phc(None),
        _ => Ok(Steered::System(SystemClock::new())),
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
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
        clock_identity: config
            .clock_identity
            .unwrap_or_else(|| ClockIdentity::from_mac(mac)),
        port_number: 1,
    };
    let hardware = config.timestamping == Timestamping::Hardware;
    let mode = if hardware {
        enable_hardware_timestamping(&config.interface).map_err(|source| SlaveError::Clock {
            what: format!("hardware timestamps on {}", config.interface),
            source,
        })?;
        TimestampMode::Hardware
    } else {
        TimestampMode::Software
    };
    let mut steered = open_clock(config)?;
    let mut port_config = config.port;
    port_config.steering = !config.observe;
    if hardware && port_config.servo == PiServoConfig::SOFTWARE {
        // linuxptp's constants for hardware timestamps.
        port_config.servo = PiServoConfig::HARDWARE;
    }
    if let Some(max) = steered.max_frequency_ppb().filter(|m| *m > 0.0) {
        port_config.servo.max_frequency_ppb = max;
    }
    let gptp = config.port.sdo_id == 1;
    let mut io = Io::open(config.transport, &config.interface, index, mac, mode, gptp)?;
    let start = Instant::now();
    let now = || LocalInstant(start.elapsed().as_nanos() as i64);
    let elapsed = || start.elapsed().as_secs_f64();
    let mut port = PtpPort::new(identity, port_config);
    let mut bound = match (&config.clock_bound, &steered) {
        (None, _) => None,
        (Some(cb), Steered::System(_)) => {
            port.set_bound_config(tempora_clock_discipline::BoundConfig {
                max_drift_ppm: cb.max_drift_ppm,
                confidence: cb.confidence,
            });
            Some(
                crate::clock_bound::BoundPublisher::create(cb)
                    .map_err(|e| SlaveError::ClockBound(e.to_string()))?,
            )
        }
        (Some(_), Steered::Phc(_)) => {
            return Err(SlaveError::ClockBound(
                "the bound is the system clock's, and this slave steers a PHC: use \
                 software timestamps or clock = \"system\""
                    .into(),
            ));
        }
    };
    let mut samples = 0u64;
    // The master's leap second warning, armed in the system clock's kernel on the last
    // day of the month (as ptp4l does), where this slave steers the system clock.
    let mut leap_vote = tempora_clock_types::Leap::None;
    let mut leap_scheduler = tempora_clock_discipline::LeapScheduler::new(
        tempora_clock_discipline::LeapConfig::default(),
    );
    let mut last_leap_check = Instant::now() - Duration::from_secs(2);
    // The system clock kept on the PHC (phc2sys), once a second.
    let mut system_sync = match (&steered, config.sync_system) {
        (Steered::Phc(_), true) => {
            let system = SystemClock::new();
            let frequency = SteeredClock::frequency(&system).unwrap_or(0.0) * 1000.0;
            Some((system, PhcToSystem::new(1.0, frequency), Instant::now()))
        }
        _ => None,
    };
    let status = Arc::new(Mutex::new(PtpStatus {
        interface: config.interface.clone(),
        node: host_name(),
        state: state_name(port.state()),
        steering: !config.observe,
        clock: match &steered {
            Steered::System(_) => "CLOCK_REALTIME".into(),
            Steered::Phc(p) => p.path().into(),
        },
        servo: "s0".into(),
        ..PtpStatus::default()
    }));
    let _metrics = match config.metrics_listen {
        Some(address) => Some(
            crate::http::StatusServer::start(address, super::metrics::handler(status.clone()))
                .map_err(|source| SlaveError::Metrics { address, source })?,
        ),
        None => None,
    };
    let update = |f: &mut dyn FnMut(&mut PtpStatus)| {
        if let Ok(mut s) = status.lock() {
            f(&mut s);
        }
    };
    let mut buf = [0u8; 128];
    let mut rx_buf = [0u8; 1500];
    let mut steering_refused = false;
    let mut summary = None;
    let mut window = SummaryWindow::new(config.summary_every);
    while !stop.load(Ordering::Relaxed) && config.duration.is_none_or(|d| elapsed() < d) {
        if !config.observe && last_leap_check.elapsed() >= Duration::from_secs(1) {
            last_leap_check = Instant::now();
            let system = match (&steered, &system_sync) {
                (Steered::System(c), _) | (_, Some((c, _, _))) => Some(c),
                _ => None,
            };
            if let Some(c) = system {
                let utc = c.now_realtime().map_or(0, |n| (n / 1_000_000_000) as i64);
                if let Some(ClockAction::SetLeap(leap)) = leap_scheduler.update(leap_vote, utc) {
                    match c.set_leap_flag(leap) {
                        Ok(()) => eprintln!("ptp-slave: leap second {leap:?} armed in the kernel"),
                        Err(e) => eprintln!("ptp-slave: arming the leap second: {e}"),
                    }
                }
            }
        }
        // The error bound: once a second and after every sample, once it is checked that
        // nobody stepped the clock behind the port's back.
        if let Some(b) = bound.as_mut() {
            if b.due(samples) {
                if b.stepped_elsewhere() {
                    port.handle_disruption();
                }
                b.write(&port.error_bound(now()), samples);
            }
        }
        let wait = port.poll_timeout().map_or(Duration::from_millis(100), |t| {
            Duration::from_nanos(t.as_nanos().saturating_sub(now().as_nanos()).max(0) as u64)
                .min(Duration::from_millis(100))
        });
        // One thread for every socket: a reader blocked on the event socket would be
        // woken by the Delay_Req's transmit timestamp, between the timestamp and the
        // packet's departure (measured: 4-10 us of false asymmetry on a veth).
        let mut dropped = 0;
        let received = io.receive(wait, &mut rx_buf, mode, &mut dropped, |bytes, rx| {
            port.handle_message(bytes, rx, now());
        });
        if dropped > 0 {
            update(&mut |s| s.missing_timestamps += dropped);
        }
        if received.is_err() {
            port.fault();
            std::thread::sleep(Duration::from_millis(100));
            port.recover();
        }
        port.handle_timeout(now());
        while let Some(Transmit { len, kind }) = port.poll_transmit(&mut buf) {
            // With software timestamps the steered clock is the system clock.
            let fallback = match &steered {
                Steered::System(c) if !hardware => c.now_realtime().ok(),
                _ => None,
            };
            if let Some(t) = io.send(&buf[..len], kind, mode, fallback) {
                port.handle_transmit_timestamp(kind, t);
            }
        }
        // The servo's steps and frequencies (none observe-only: the port is not steering).
        while let Some(action) = port.poll_action() {
            if let (ClockAction::Step { offset }, Some(b)) = (action, bound.as_mut()) {
                b.stepped_here(offset);
            }
            if let Err(e) = steered.clock().apply(&action) {
                // Not done: the servo must not believe it was (a refused step is asked
                // for again).
                port.handle_action_refused(action);
                // Once, not at the Sync rate: the kernel refuses every one the same way.
                if !steering_refused {
                    eprintln!("ptp-slave: the clock refused {action:?}: {e}");
                    steering_refused = true;
                }
                if e.is_permission_denied() {
                    // It will not change: measure and report only from now on.
                    eprintln!("ptp-slave: no permission to steer: observe-only from now on");
                    port.set_steering(false);
                    update(&mut |s| s.steering = false);
                }
                update(&mut |s| s.last_error = Some(format!("{action:?}: {e}")));
            }
        }
        while let Some(e) = port.poll_event() {
            let time = elapsed();
            let report = match e {
                PortEvent::State { from, to } => {
                    update(&mut |s| s.state = state_name(to));
                    Report::State {
                        time,
                        from: state_name(from),
                        to: state_name(to),
                    }
                }
                PortEvent::Master(m) => {
                    let master = m.map(|d| {
                        let c = d.sender.clock_identity.0;
                        format!(
                            "{:02x}{:02x}{:02x}.{:02x}{:02x}.{:02x}{:02x}{:02x}-{}",
                            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], d.sender.port_number
                        )
                    });
                    update(&mut |s| {
                        s.master_changes += u64::from(master.is_some());
                        s.master = master.clone();
                    });
                    Report::Master { time, master }
                }
                PortEvent::UtcOffset(seconds) => {
                    // The kernel's TAI offset belongs to the system clock, steered directly
                    // or kept on the PHC.
                    // 0 is an arbitrary-timescale master's: it says nothing of TAI.
                    if !config.observe && seconds > 0 {
                        match (&steered, &system_sync) {
                            (Steered::System(c), _) | (_, Some((c, _, _))) => {
                                let _ = c.set_tai_offset(i32::from(seconds));
                            }
                            _ => {}
                        }
                    }
                    if let Some((_, core, _)) = &mut system_sync {
                        core.set_utc_offset(seconds);
                    }
                    update(&mut |s| s.utc_offset = Some(seconds));
                    Report::UtcOffset { time, seconds }
                }
                PortEvent::Leap(leap) => {
                    leap_vote = leap;
                    Report::Leap {
                        time,
                        leap: match leap {
                            tempora_clock_types::Leap::Insert => "insert",
                            tempora_clock_types::Leap::Delete => "delete",
                            _ => "none",
                        }
                        .into(),
                    }
                }
                PortEvent::Sample(s) => {
                    samples += 1;
                    if port.state() == PortState::Slave && !s.spike {
                        summary = window.push(s.offset_ns, s.frequency_ppb, s.path_delay_ns);
                    }
                    let servo: String = match s.state {
                        ServoState::Unlocked => "s0",
                        ServoState::Jump => "s1",
                        _ => "s2",
                    }
                    .into();
                    update(&mut |st| {
                        st.samples += 1;
                        st.spikes += u64::from(s.spike);
                        // A spike's offset is the estimate from before it; the spike
                        // itself is shown apart.
                        st.offset_ns = s.offset_ns;
                        if s.spike {
                            st.last_spike_ns = Some(s.raw_offset_ns);
                        } else {
                            st.frequency_ppb = s.frequency_ppb;
                            st.path_delay_ns = s.path_delay_ns;
                            st.servo = servo.clone();
                        }
                    });
                    Report::Sample {
                        time,
                        state: state_name(port.state()),
                        offset_ns: s.offset_ns,
                        raw_offset_ns: s.raw_offset_ns,
                        servo,
                        frequency_ppb: s.frequency_ppb,
                        path_delay_ns: s.path_delay_ns,
                        spike: s.spike,
                    }
                }
            };
            out(&report);
        }
        if let (Some((system, core, due)), Steered::Phc(phc)) = (&mut system_sync, &steered) {
            // The system clock follows the PHC only once the PHC follows a master (SLAVE);
            // the engine holds it until the master's UTC offset is known too.
            let run_now = Instant::now() >= *due;
            if run_now {
                // Once a second, and no burst to catch up after a wait.
                *due = Instant::now() + Duration::from_secs(1);
            }
            if run_now && port.state() == PortState::Slave {
                if let Some(report) =
                    keep_system_on_phc(phc, system, core, config.observe, now(), elapsed())
                {
                    if let Report::SystemClock {
                        offset_ns,
                        servo,
                        frequency_ppb,
                        delay_ns,
                        ..
                    } = &report
                    {
                        update(&mut |st| {
                            st.system = Some(super::metrics::SystemSyncStatus {
                                offset_ns: *offset_ns,
                                frequency_ppb: *frequency_ppb,
                                delay_ns: *delay_ns,
                                servo: servo.clone(),
                            });
                        });
                    }
                    out(&report);
                }
            }
        }
        if let Some(s) = summary.take() {
            update(&mut |st| {
                st.rms_offset_ns = s.rms_ns;
                st.max_offset_ns = s.max_ns;
            });
            out(&Report::Summary {
                time: elapsed(),
                rms_ns: s.rms_ns,
                max_ns: s.max_ns,
                frequency_ppb: s.frequency_ppb,
                frequency_sd: s.frequency_sd,
                delay_ns: s.delay_ns,
                delay_sd: s.delay_sd,
            });
        }
    }
    Ok(())
}

/// The summary ptp4l prints every N samples, from running sums: the memory is the same
/// whatever N is, and N = 0 (no summaries) keeps nothing (a list of samples kept for a
/// summary that never came grew without bound at the Sync rate).
#[derive(Clone, Debug, Default)]
struct SummaryWindow {
    every: u32,
    n: u32,
    offset_sq: f64,
    max: f64,
    frequency: f64,
    frequency_sq: f64,
    delay: f64,
    delay_sq: f64,
}

/// One summary: RMS and largest offset, mean and spread of frequency and path delay.
#[derive(Clone, Copy, Debug, PartialEq)]
struct SummaryStats {
    rms_ns: f64,
    max_ns: f64,
    frequency_ppb: f64,
    frequency_sd: f64,
    delay_ns: f64,
    delay_sd: f64,
}

impl SummaryWindow {
    fn new(every: u32) -> Self {
        Self {
            every,
            ..Self::default()
        }
    }

    /// Takes one sample; every `every`-th gives the summary and starts again.
    fn push(&mut self, offset_ns: f64, frequency_ppb: f64, delay_ns: f64) -> Option<SummaryStats> {
        if self.every == 0 {
            return None;
        }
        self.n += 1;
        self.offset_sq += offset_ns * offset_ns;
        self.max = self.max.max(offset_ns.abs());
        self.frequency += frequency_ppb;
        self.frequency_sq += frequency_ppb * frequency_ppb;
        self.delay += delay_ns;
        self.delay_sq += delay_ns * delay_ns;
        if self.n < self.every {
            return None;
        }
        let n = f64::from(self.n);
        let spread = |sum: f64, sq: f64| (sq / n - (sum / n).powi(2)).max(0.0).sqrt();
        let stats = SummaryStats {
            rms_ns: (self.offset_sq / n).sqrt(),
            max_ns: self.max,
            frequency_ppb: self.frequency / n,
            frequency_sd: spread(self.frequency, self.frequency_sq),
            delay_ns: self.delay / n,
            delay_sd: spread(self.delay, self.delay_sq),
        };
        *self = Self::new(self.every);
        Some(stats)
    }
}

/// One round of phc2sys: read the system clock against the PHC, run the servo, steer.
fn keep_system_on_phc(
    phc: &PhcClock,
    system: &mut SystemClock,
    core: &mut PhcToSystem,
    observe: bool,
    now: LocalInstant,
    time: f64,
) -> Option<Report> {
    let reading = phc.system_offset(5).ok()?;
    let reading = PhcReading {
        system_minus_phc_ns: reading.offset_ns,
        window_ns: reading.delay_ns,
    };
    let offset_ns = core.error(reading) * 1e9;
    let output = core.handle_reading(reading, now).ok()??;
    while let Some(action) = core.poll_action() {
        if !observe {
            if let Err(e) = system.apply(&action) {
                tracing::warn!("system clock {action:?}: {e}");
            }
        }
    }
    Some(Report::SystemClock {
        time,
        offset_ns,
        servo: match output.state {
            ServoState::Unlocked => "s0",
            ServoState::Jump => "s1",
            _ => "s2",
        }
        .into(),
        frequency_ppb: output.frequency_ppb,
        delay_ns: reading.window_ns as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Defect 10: a NIC that missed a hardware stamp leaves a CLOCK_REALTIME one; in
    /// hardware mode the event message is dropped, a general one is kept.
    #[test]
    fn hardware_mode_drops_event_messages_without_a_hardware_stamp() {
        let sync = [0x10u8, 0x02]; // transportSpecific 1, Sync
        let follow_up = [0x08u8, 0x02];
        let hw = Timestamp {
            nanos: 1_700_000_037_000_000_000,
            source: TimestampSource::Hardware,
        };
        let sw = |source| Timestamp {
            nanos: 1_700_000_000_000_000_000,
            source,
        };
        let hard = TimestampMode::Hardware;
        assert_eq!(receive_time(&sync, Some(hw), hard), Some(hw.nanos));
        for source in [
            TimestampSource::Software,
            TimestampSource::Fallback,
            TimestampSource::Userspace,
        ] {
            assert_eq!(
                receive_time(&sync, Some(sw(source)), hard),
                None,
                "{source:?}"
            );
            assert!(receive_time(&follow_up, Some(sw(source)), hard).is_some());
            assert_eq!(
                receive_time(&sync, Some(sw(source)), TimestampMode::Software),
                Some(sw(source).nanos)
            );
        }
        assert_eq!(receive_time(&sync, None, TimestampMode::Software), None);
        assert!(receive_time(&follow_up, None, hard).is_some());
        assert_eq!(stamp_of(sw(TimestampSource::Software), hard), None);
        assert_eq!(stamp_of(hw, hard), Some(hw.nanos));
    }

    #[test]
    fn summaries_come_every_n_samples_and_none_keeps_nothing() {
        let mut w = SummaryWindow::new(4);
        let samples = [
            (3.0, 10.0, 100.0),
            (-4.0, 12.0, 102.0),
            (0.0, 8.0, 98.0),
            (5.0, 10.0, 100.0),
        ];
        let mut out = None;
        for (o, f, d) in samples {
            out = w.push(o, f, d);
        }
        let s = out.expect("a summary on the fourth");
        assert!((s.rms_ns - (50.0f64 / 4.0).sqrt()).abs() < 1e-9, "{s:?}");
        assert_eq!(s.max_ns, 5.0);
        assert!((s.frequency_ppb - 10.0).abs() < 1e-9);
        assert!((s.frequency_sd - 2.0f64.sqrt()).abs() < 1e-9, "{s:?}");
        assert!((s.delay_ns - 100.0).abs() < 1e-9);
        assert_eq!(w.push(1.0, 1.0, 1.0), None, "a new window");
        // summary_every = 0: a day of 16 Syncs a second, and nothing is kept.
        let mut none = SummaryWindow::new(0);
        for k in 0..(16 * 86_400) {
            assert_eq!(none.push(f64::from(k), 0.0, 0.0), None);
        }
        assert_eq!(none.n, 0);
    }
}
