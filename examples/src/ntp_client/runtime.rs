//! The client runtime: NTP sources and reference clocks polled on one thread, kernel
//! timestamps for both ends of every exchange, the selection and the discipline, and the
//! actions applied to the system clock (or, observe-only, nothing applied). `ntp-client
//! run` is this plus a status server; `ntp-server` with upstream sources uses it to be a
//! boundary server.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempora_clock_discipline::{LeapConfig, LeapScheduler};
use tempora_clock_types::{ClockAction, Leap, LocalInstant, SteeredClock};
use tempora_ntp::{
    DisciplineKind, Estimator, NtpSource, NtpSystem, RefclockSource, ResponseOutcome, SourceConfig,
    SystemConfig, SystemEvent,
};
use tempora_ntp_proto::{
    LeapIndicator, Log2Seconds, NtpShort, NtpTimestamp, ReferenceId, ServerState,
};
use tempora_sys_clock::{PhcClock, SystemClock, TimestampMode, TimestampedSocket};

use super::config::UpstreamConfig;
use super::status::{ClientStatus, NtsRow, SourceRow, Tracking};
use crate::net::resolve;
use crate::random::random_u64;

/// Why the runtime did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// Nothing to poll.
    #[error("no time sources: give at least one server, pool or refclock")]
    NoSources,
    /// The client socket.
    #[error("client socket: {0}")]
    Socket(#[from] tempora_sys_clock::Error),
    /// The thread.
    #[error("cannot start the client thread: {0}")]
    Thread(std::io::Error),
    /// NTS sources need a TLS configuration that could not be made (a CA file that does
    /// not read).
    #[error(transparent)]
    Nts(#[from] crate::nts::KeFailure),
    /// The clock-bound segment could not be made (a directory that may not be written).
    #[error("clock_bound: {0}")]
    ClockBound(tempora_sys_clock::Error),
}

struct Shared {
    status: Mutex<ClientStatus>,
    server_state: Mutex<ServerState>,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running client: one thread polling the sources, applying what the engine says to
/// the system clock (observe-only: nothing), and publishing its status.
pub struct ClientRuntime {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl ClientRuntime {
    /// Resolves the sources and starts polling; `observe`: never steer, even with
    /// CAP_SYS_TIME.
    pub fn start(config: UpstreamConfig, observe: bool) -> Result<Self, RuntimeError> {
        if config.servers.is_empty()
            && config.server.is_empty()
            && config.pools.is_empty()
            && config.refclock.is_empty()
        {
            return Err(RuntimeError::NoSources);
        }
        let nts_tls = if config.server.iter().any(|s| s.nts) {
            let roots = crate::nts::client_roots(config.nts_ca_file.as_deref())?;
            Some(
                crate::nts::client_tls(roots).map_err(|source| crate::nts::KeFailure::Tls {
                    host: String::new(),
                    source,
                })?,
            )
        } else {
            None
        };
        let bound_writer = match &config.clock_bound {
            Some(cb) => Some(
                crate::clock_bound::BoundPublisher::create(cb).map_err(RuntimeError::ClockBound)?,
            ),
            None => None,
        };
        let socket = ClientSocket::open()?;
        let (observe, reason) = if observe {
            (true, Some("observe-only by configuration".to_string()))
        } else if !tempora_sys_clock::has_cap_sys_time() {
            (
                true,
                Some(
                    "no CAP_SYS_TIME: running observe-only (measuring and reporting, never \
                     steering); grant CAP_SYS_TIME to steer the clock"
                        .to_string(),
                ),
            )
        } else {
            (false, None)
        };
        if let Some(r) = &reason {
            tracing::warn!("{r}");
        }
        let shared = Arc::new(Shared {
            status: Mutex::new(ClientStatus {
                observe_only: observe,
                observe_reason: reason,
                ..ClientStatus::default()
            }),
            server_state: Mutex::new(ServerState::UNSYNCHRONIZED),
            stop: AtomicBool::new(false),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("ntp-client".into())
            .spawn(move || {
                let mut runtime = Runtime::new(config, socket, observe, nts_tls);
                runtime.bound = bound_writer;
                runtime.run(&thread_shared);
            })
            .map_err(RuntimeError::Thread)?;
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// What a server built on this client serves, now.
    pub fn server_state(&self, precision: Log2Seconds) -> ServerState {
        ServerState {
            precision,
            ..*lock(&self.shared.server_state)
        }
    }

    /// The status tables.
    pub fn status(&self) -> ClientStatus {
        lock(&self.shared.status).clone()
    }

    /// The status as JSON.
    pub fn status_json(&self) -> serde_json::Value {
        serde_json::to_value(self.status()).unwrap_or(serde_json::Value::Null)
    }

    /// Stops polling (and writes the drift file); idempotent.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

impl Drop for ClientRuntime {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One dual-stack socket for every source where the host has IPv6, else IPv4 only.
struct ClientSocket {
    socket: TimestampedSocket,
    dual_stack: bool,
}

impl ClientSocket {
    fn open() -> Result<Self, tempora_sys_clock::Error> {
        match TimestampedSocket::bind(SocketAddr::from(([0u16; 8], 0)), TimestampMode::Software) {
            Ok(socket) => Ok(Self {
                socket,
                dual_stack: true,
            }),
            Err(_) => Ok(Self {
                socket: TimestampedSocket::bind(
                    SocketAddr::from(([0, 0, 0, 0], 0)),
                    TimestampMode::Software,
                )?,
                dual_stack: false,
            }),
        }
    }

    fn destination(&self, to: SocketAddr) -> SocketAddr {
        match to {
            SocketAddr::V4(v4) if self.dual_stack => {
                SocketAddr::from((v4.ip().to_ipv6_mapped(), v4.port()))
            }
            other => other,
        }
    }
}

fn canonical(address: SocketAddr) -> SocketAddr {
    SocketAddr::new(address.ip().to_canonical(), address.port())
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Origin {
    Server(String),
    Pool(String),
}

/// An NTS source's key exchanges: one at a time, in a thread of its own (TLS blocks),
/// spaced so that forged NAKs cannot make it hammer the server.
struct NtsSlot {
    /// The NTS-KE server, HOST[:PORT].
    ke_host: String,
    running: Option<std::sync::mpsc::Receiver<Result<crate::nts::NtsAssociation, String>>>,
    next_attempt: Instant,
    /// The wait after a failure, doubled each time up to [`KE_BACKOFF_MAX`].
    backoff: Duration,
    exchanges: u64,
    last_error: Option<String>,
}

/// Key exchanges are at least this far apart, and a failed one waits at least this long.
const KE_BACKOFF_MIN: Duration = Duration::from_secs(10);
/// A failing server is tried again at least hourly.
const KE_BACKOFF_MAX: Duration = Duration::from_secs(3600);
/// Time for a whole key exchange.
const KE_TIMEOUT: Duration = Duration::from_secs(5);

struct Slot {
    origin: Origin,
    address: Option<SocketAddr>,
    /// NTS: the key exchanges (none for a plain source).
    nts: Option<NtsSlot>,
    last_rx: Option<Instant>,
    /// Polls since the address was (re)resolved.
    polls_since_resolve: u32,
    last_resolve: Option<Instant>,
    pending_tx_id: Option<u32>,
}

/// How far from right (s/s, one standard error) the frequency a drift file gives is taken
/// to be: written hourly, it is off by what the temperature moved since.
const DRIFT_FILE_ERROR: f64 = 1e-6;

struct Runtime {
    config: UpstreamConfig,
    socket: ClientSocket,
    observe: bool,
    clock: SystemClock,
    start: Instant,
    system: NtpSystem,
    slots: Vec<Slot>,
    phcs: Vec<Option<PhcClock>>,
    leap: LeapScheduler,
    rms: f64,
    last_offset: f64,
    steps: u64,
    last_drift_write: Instant,
    last_update_real: Option<NtpTimestamp>,
    error: Option<String>,
    nts_tls: Option<Arc<rustls::ClientConfig>>,
    /// Where the clock error bound is published, if it is.
    bound: Option<crate::clock_bound::BoundPublisher>,
    /// The day a refused leap announcement was last logged.
    leap_refused_logged: Option<i64>,
    /// The month's end the sources announced a leap second for, on its last day.
    announced_leap_at: Option<i64>,
    /// A leap second to step or slew at its midnight (`leap_mode` step or slew).
    pending_leap: Option<(i64, Leap)>,
}

/// Reads a drift file: one number, ppm.
pub fn read_drift_file(path: &std::path::Path) -> Option<f64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite() && f.abs() <= 500.0)
}

/// Writes a drift file atomically (a temporary file renamed over it).
pub fn write_drift_file(path: &std::path::Path, ppm: f64) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{ppm:.6}\n"))?;
    std::fs::rename(tmp, path)
}

impl Runtime {
    fn new(
        config: UpstreamConfig,
        socket: ClientSocket,
        observe: bool,
        nts_tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Self {
        let start = Instant::now();
        let clock = SystemClock::new();
        let drift = config.drift_file.as_deref().and_then(read_drift_file);
        let refclock_configs = config.refclocks();
        // Checked when the configuration was; a file changed since is reported here.
        let leap_list =
            match crate::config::read_leap_file(config.leap_file.as_deref(), "leap_file") {
                Ok(list) => list,
                Err(e) => {
                    tracing::error!("{e}: leap seconds are taken from the sources");
                    None
                }
            };
        if let Some(list) = &leap_list {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            if list.is_expired(now) {
                tracing::warn!(
                    "the leap-seconds list expired {} days ago: leaps the sources announce \
                     are taken as they are until it is updated",
                    (now - list.expires_unix()) / 86_400
                );
            }
        }
        let frequency = drift.or_else(|| clock.frequency().ok()).unwrap_or(0.0);
        let source_config = SourceConfig {
            min_poll: config.min_poll,
            max_poll: config.max_poll,
            iburst: config.iburst,
            estimator: Estimator::Regression,
            precision: 1e-7,
            // Steering from a drift file's frequency, the clock starts within about a
            // ppm of right: the first minute's exchanges need not find that out again.
            frequency_error: (drift.is_some() && !observe).then_some(DRIFT_FILE_ERROR),
            nts: false,
        };
        let mut slots = Vec::new();
        let mut sources = Vec::new();
        let now = LocalInstant(0);
        // Checked at start (validate): a file that went away since is no keys.
        let keys = crate::config::read_keys_file(
            config.keys_file.as_deref(),
            config.keys_format,
            "keys_file",
        )
        .unwrap_or_default();
        for entry in config.server_entries() {
            let host = &entry.address;
            if entry.nts {
                // The NTP address comes from the key exchange.
                slots.push(Slot {
                    origin: Origin::Server(host.clone()),
                    address: None,
                    nts: Some(NtsSlot {
                        ke_host: host.clone(),
                        running: None,
                        next_attempt: Instant::now(),
                        backoff: KE_BACKOFF_MIN,
                        exchanges: 0,
                        last_error: None,
                    }),
                    last_rx: None,
                    polls_since_resolve: 0,
                    last_resolve: Some(Instant::now()),
                    pending_tx_id: None,
                });
                let mut source = NtpSource::new(
                    SourceConfig {
                        nts: true,
                        ..source_config
                    },
                    now,
                );
                source.set_smeared(entry.smeared);
                sources.push(source);
                continue;
            }
            let mut source = NtpSource::new(source_config, now);
            source.set_smeared(entry.smeared);
            if let Some((id, (algorithm, secret))) =
                entry.key.and_then(|id| keys.entry(id).map(|e| (id, e)))
            {
                // A key from the file has a length its algorithm takes.
                let _ = source.set_key(id, algorithm, secret);
            }
            let resolved = resolve(host).unwrap_or_default();
            // Two names for one address would be one server counted twice, and the second
            // slot would never be matched an answer: it waits for an address of its own.
            let address = resolved
                .iter()
                .find(|a| !slots.iter().any(|s: &Slot| s.address == Some(**a)))
                .copied();
            match (address, resolved.first()) {
                (None, Some(taken)) => tracing::warn!(
                    "{host}: {taken} is already polled as another source; will look again"
                ),
                (None, None) => tracing::warn!("{host}: cannot resolve now; will try again"),
                _ => {}
            }
            slots.push(Slot {
                origin: Origin::Server(host.clone()),
                address,
                nts: None,
                last_rx: None,
                polls_since_resolve: 0,
                last_resolve: Some(Instant::now()),
                pending_tx_id: None,
            });
            sources.push(source);
        }
        for host in &config.pools {
            let addresses = resolve(host).unwrap_or_default();
            for k in 0..config.pool_size.max(1) {
                slots.push(Slot {
                    origin: Origin::Pool(host.clone()),
                    address: addresses.get(k).copied(),
                    nts: None,
                    last_rx: None,
                    polls_since_resolve: 0,
                    last_resolve: Some(Instant::now()),
                    pending_tx_id: None,
                });
                sources.push(NtpSource::new(source_config, now));
            }
        }
        let refclocks: Vec<RefclockSource> = refclock_configs
            .iter()
            .map(|c| RefclockSource::new(c.clone(), now))
            .collect();
        let phcs = refclock_configs
            .iter()
            .map(|c| match PhcClock::open(&c.name, false) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::error!("refclock {}: {e}", c.name);
                    None
                }
            })
            .collect();
        let mut selection = SystemConfig::default().selection;
        selection.min_sources = config.min_sources.max(1);
        let system = NtpSystem::with_refclocks(
            sources,
            refclocks,
            SystemConfig {
                selection,
                discipline: DisciplineKind::Default(config.discipline()),
                observe_only: observe,
                step_quorum: config.step_quorum(),
            },
            frequency,
        );
        let mut runtime = Self {
            config,
            socket,
            observe,
            clock,
            start,
            system,
            slots,
            phcs,
            leap: LeapScheduler::with_list(LeapConfig::default(), leap_list),
            rms: 0.0,
            last_offset: 0.0,
            steps: 0,
            last_drift_write: Instant::now(),
            last_update_real: None,
            error: None,
            nts_tls,
            bound: None,
            leap_refused_logged: None,
            announced_leap_at: None,
            pending_leap: None,
        };
        if !observe {
            // Start from the drift file's frequency, and take the clock from the kernel's
            // own PLL, which would fight ours.
            let _ = runtime.clock.disable_kernel_pll();
            if let Err(e) = runtime.clock.set_frequency(frequency) {
                runtime.error = Some(format!("setting the frequency: {e}"));
            }
        }
        runtime
    }

    fn now(&self) -> LocalInstant {
        LocalInstant(self.start.elapsed().as_nanos() as i64)
    }

    fn realtime(&self) -> i128 {
        self.clock.now_realtime().unwrap_or(0)
    }

    fn run(&mut self, shared: &Shared) {
        let mut buf = [0u8; 1024];
        while !shared.stop.load(Ordering::Relaxed) {
            let near = self.near_leap();
            self.system.set_leap_window(near);
            self.take_leap();
            self.run_key_exchanges();
            self.run_timers();
            self.poll_refclocks();
            self.drain();
            // Wait for an answer until the next thing is due (at most 200 ms, to notice
            // a stop).
            let next = self.next_deadline();
            let now = self.now();
            let wait = Duration::from_nanos(
                next.as_nanos()
                    .saturating_sub(now.as_nanos())
                    .clamp(1_000_000, 200_000_000) as u64,
            );
            let _ = self.socket.socket.socket().set_read_timeout(Some(wait));
            if let Ok(received) = self.socket.socket.recv_from(&mut buf) {
                if let Some(from) = received.from {
                    let t4 = received
                        .timestamp
                        .map_or_else(|| self.realtime(), |t| t.nanos);
                    self.handle_packet(canonical(from), &buf[..received.len.min(buf.len())], t4);
                }
            }
            self.collect_tx_timestamps();
            self.drain();
            self.publish(shared);
            self.publish_bound();
            if !self.observe && self.last_drift_write.elapsed() > Duration::from_secs(3600) {
                self.write_drift();
            }
        }
        if !self.observe {
            self.write_drift();
        }
    }

    /// Whether a leap second is within a day: the list holds one, or the sources
    /// announced one for this month's end. Smeared and unsmeared sources are kept apart
    /// then.
    fn near_leap(&mut self) -> bool {
        const DAY: i64 = 86_400;
        let utc = (self.realtime() / 1_000_000_000) as i64;
        if let Some(list) = self.leap.list() {
            if !list.is_expired(utc) {
                return list.leap_near(utc, DAY).is_some();
            }
        }
        let end = tempora_clock_discipline::end_of_month(utc);
        let announced = self
            .system
            .estimate()
            .is_some_and(|e| matches!(e.leap, Leap::Insert | Leap::Delete));
        if announced && end - utc <= DAY {
            self.announced_leap_at = Some(end);
        }
        self.announced_leap_at
            .is_some_and(|at| (utc - at).abs() <= DAY)
    }

    /// A leap second this daemon steps or slews (`leap_mode`), at its midnight.
    fn take_leap(&mut self) {
        let Some((at, leap)) = self.pending_leap else {
            return;
        };
        if (self.realtime() / 1_000_000_000) as i64 >= at {
            self.pending_leap = None;
            let mode = self.config.leap_mode().unwrap_or_default();
            tracing::warn!("leap second ({leap:?}) taken by {mode:?}");
            self.system.handle_leap(leap, mode, self.now());
            self.drain();
        }
    }

    /// Sets the kernel's TAI offset from the leap-seconds list where it differs.
    fn set_tai_offset(&mut self, utc: i64) {
        let Some(tai) = self.leap.tai_minus_utc(utc) else {
            return;
        };
        let current = self.clock.state().map(|k| k.tai_offset);
        if current.as_ref().is_ok_and(|c| *c == tai) {
            return;
        }
        match self.clock.set_tai_offset(tai) {
            Ok(()) => tracing::info!("TAI-UTC set to {tai} s from the leap-seconds list"),
            Err(e) => tracing::warn!("setting the TAI offset: {e}"),
        }
    }

    /// Writes the clock error bound once a second and after every update, having first
    /// checked that nobody stepped the clock behind the daemon's back.
    fn publish_bound(&mut self) {
        let local_now = self.now();
        let Some(p) = self.bound.as_mut() else {
            return;
        };
        let updates = self.system.updates();
        if !p.due(updates) {
            return;
        }
        if p.stepped_elsewhere() {
            self.system.handle_disruption();
        }
        p.write(&self.system.error_bound(local_now), updates);
    }

    fn write_drift(&mut self) {
        self.last_drift_write = Instant::now();
        if let Some(path) = &self.config.drift_file {
            if self.system.updates() > 0 {
                if let Err(e) = write_drift_file(path, self.system.frequency_ppm()) {
                    tracing::warn!("drift file {}: {e}", path.display());
                }
            }
        }
    }

    fn next_deadline(&self) -> LocalInstant {
        let next = self.now().add_seconds(0.2);
        self.system.poll_timeout().map_or(next, |t| t.min(next))
    }

    /// Polls that are due (each source's address looked up again first where it went
    /// quiet) and the discipline's timer.
    fn run_timers(&mut self) {
        let now = self.now();
        for i in 0..self.slots.len() {
            if self.system.sources()[i]
                .poll_timeout()
                .is_some_and(|t| t <= now)
            {
                self.maybe_reresolve(i);
            }
        }
        let local = NtpTimestamp::from_unix_nanos(self.realtime());
        self.system.handle_timeout(now, local, random_u64);
    }

    /// Sends what the engine wants sent, applies its actions, logs its events.
    fn drain(&mut self) {
        let mut request = [0u8; tempora_ntp::MAX_REQUEST_LEN];
        while let Some(transmit) = self.system.poll_transmit(&mut request) {
            let i = transmit.source;
            self.slots[i].polls_since_resolve += 1;
            let Some(address) = self.slots[i].address else {
                continue;
            };
            let to = self.socket.destination(address);
            match self.socket.socket.send_to(&request[..transmit.len], to) {
                Ok(id) => self.slots[i].pending_tx_id = Some(id),
                Err(e) => {
                    self.slots[i].pending_tx_id = None;
                    tracing::debug!("send to {address}: {e}");
                }
            }
        }
        while let Some(event) = self.system.poll_event() {
            self.handle_event(event);
        }
        while let Some(action) = self.system.poll_action() {
            if !self.apply(&action) {
                // Not done: the samples must not believe it was.
                self.system.handle_action_refused(action, self.now());
            }
        }
    }

    fn handle_event(&mut self, event: SystemEvent) {
        match event {
            SystemEvent::Response { source, outcome } => {
                let from = self.slots[source]
                    .address
                    .map_or_else(String::new, |a| a.to_string());
                match outcome {
                    ResponseOutcome::Measured(m) => {
                        tracing::trace!(source = %from, offset = m.offset, delay = m.delay, "sample");
                        self.slots[source].last_rx = Some(Instant::now());
                    }
                    ResponseOutcome::Kiss(code) => {
                        tracing::warn!("{from}: kiss-o'-death {code:?}");
                    }
                    _ => {}
                }
            }
            SystemEvent::Updated(e) => {
                self.last_offset = e.offset;
                self.rms = if self.system.updates() <= 1 {
                    e.offset.abs()
                } else {
                    (0.9 * self.rms * self.rms + 0.1 * e.offset * e.offset).sqrt()
                };
                let utc = (self.realtime() / 1_000_000_000) as i64;
                let decision = self.leap.decide(e.leap, utc);
                if decision.refused && self.leap_refused_logged != Some(utc / 86_400) {
                    self.leap_refused_logged = Some(utc / 86_400);
                    tracing::warn!(
                        "the sources announce a leap second ({:?}) the leap-seconds list \
                         does not hold: ignored",
                        e.leap
                    );
                }
                let mode = self.config.leap_mode().unwrap_or_default();
                if self.config.leap_to_kernel && !self.observe {
                    if mode == tempora_ntp::LeapMode::Kernel {
                        if let Some(a) = self.leap.update(e.leap, utc) {
                            self.apply(&a);
                        }
                    }
                    self.set_tai_offset(utc);
                }
                // Stepped or slewed by this daemon: at the month's end, on its last day.
                let end = tempora_clock_discipline::end_of_month(utc);
                self.pending_leap = match decision.leap {
                    Leap::Insert | Leap::Delete
                        if mode != tempora_ntp::LeapMode::Kernel && end - utc <= 86_400 =>
                    {
                        Some((end, decision.leap))
                    }
                    _ => None,
                };
                self.last_update_real = Some(NtpTimestamp::from_unix_nanos(self.realtime()));
            }
            SystemEvent::NotUpdated(e) => tracing::debug!("no update: {e}"),
            SystemEvent::Reading { .. } => {}
        }
    }

    /// NTS sources: starts a key exchange where one is due (none yet, cookies used up,
    /// an NTS NAK) and takes the result of one that finished: the association goes to
    /// the engine, the NTP server it names becomes the source's address.
    fn run_key_exchanges(&mut self) {
        for i in 0..self.slots.len() {
            let needs = self.system.sources()[i].needs_key_exchange();
            let in_use: Vec<SocketAddr> = (0..self.slots.len())
                .filter(|&k| k != i)
                .filter_map(|k| self.slots[k].address)
                .collect();
            let Some(nts) = &mut self.slots[i].nts else {
                continue;
            };
            if let Some(rx) = &nts.running {
                let result = match rx.try_recv() {
                    Ok(r) => r,
                    Err(std::sync::mpsc::TryRecvError::Empty) => continue,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                        Err("the key exchange thread ended".into())
                    }
                };
                nts.running = None;
                let resolved = result.and_then(|a| {
                    let ntp = a.ntp_address();
                    let addresses = resolve(&ntp)?;
                    let address = addresses
                        .iter()
                        .find(|x| !in_use.contains(x))
                        .copied()
                        .ok_or_else(|| format!("{ntp} is already polled as another source"))?;
                    Ok((a, address))
                });
                match resolved {
                    Ok((association, address)) => {
                        nts.exchanges += 1;
                        nts.last_error = None;
                        nts.backoff = KE_BACKOFF_MIN;
                        nts.next_attempt = Instant::now() + KE_BACKOFF_MIN;
                        tracing::info!(
                            "NTS: key exchange with {}: {}, {} cookies, NTP at {address}",
                            nts.ke_host,
                            association.algorithm,
                            association.client.cookies()
                        );
                        let slot = &mut self.slots[i];
                        if slot.address != Some(address) {
                            slot.address = Some(address);
                            slot.last_rx = None;
                        }
                        self.system.set_source_nts(i, association.client);
                    }
                    Err(e) => {
                        tracing::warn!("NTS: key exchange with {}: {e}", nts.ke_host);
                        nts.last_error = Some(e);
                        nts.next_attempt = Instant::now() + nts.backoff;
                        nts.backoff = (nts.backoff * 2).min(KE_BACKOFF_MAX);
                    }
                }
                continue;
            }
            if !needs || Instant::now() < nts.next_attempt {
                continue;
            }
            let Some(tls) = self.nts_tls.clone() else {
                continue;
            };
            let (tx, rx) = std::sync::mpsc::channel();
            let host = nts.ke_host.clone();
            let spawned = std::thread::Builder::new()
                .name("nts-ke-client".into())
                .spawn(move || {
                    let r = crate::nts::key_exchange(
                        &host,
                        tls,
                        &tempora_ntp::nts::AeadAlgorithm::ALL,
                        KE_TIMEOUT,
                    )
                    .map_err(|e| e.to_string());
                    let _ = tx.send(r);
                });
            nts.next_attempt = Instant::now() + nts.backoff;
            if spawned.is_ok() {
                nts.running = Some(rx);
            }
        }
    }

    /// A source unreachable for eight polls (or never resolved) is looked up again, as
    /// daemons that resolve only at boot do not: DNS changes, pools rotate.
    fn maybe_reresolve(&mut self, i: usize) {
        let slot = &self.slots[i];
        if slot.nts.is_some() {
            // Its address is the one its key exchange named.
            return;
        }
        let source = &self.system.sources()[i];
        let unreachable = !source.reach().is_reachable();
        let due = slot.address.is_none()
            || (unreachable && slot.polls_since_resolve >= 8)
            || source.stopped().is_some();
        let recently = slot
            .last_resolve
            .is_some_and(|t| t.elapsed() < Duration::from_secs(60));
        if !due || (recently && slot.address.is_some()) {
            return;
        }
        let in_use: Vec<SocketAddr> = (0..self.slots.len())
            .filter(|&k| k != i)
            .filter_map(|k| self.slots[k].address)
            .collect();
        let (host, pick_new) = match &slot.origin {
            Origin::Server(h) => (h.clone(), false),
            Origin::Pool(h) => (h.clone(), true),
        };
        let Ok(addresses) = resolve(&host) else {
            self.slots[i].last_resolve = Some(Instant::now());
            return;
        };
        // A pool slot takes an address no source polls (its own unreachable one neither);
        // a server the first of its own that no other source polls.
        let own = self.slots[i].address;
        let choice = addresses
            .iter()
            .find(|a| {
                let taken = in_use.contains(a) || (pick_new && own == Some(**a));
                !taken
            })
            .copied();
        let slot = &mut self.slots[i];
        slot.last_resolve = Some(Instant::now());
        slot.polls_since_resolve = 0;
        if let Some(new) = choice {
            if slot.address != Some(new) {
                tracing::info!("{host}: now polling {new}");
                slot.address = Some(new);
                slot.last_rx = None;
                self.system.reset_source(i, self.now());
            }
        }
    }

    fn poll_refclocks(&mut self) {
        let now = self.now();
        for i in 0..self.system.refclocks().len() {
            let refclock = &self.system.refclocks()[i];
            if now < refclock.poll_timeout() {
                continue;
            }
            let samples = refclock.config().samples.max(1);
            let reading = self.phcs[i]
                .as_ref()
                .and_then(|p| p.system_offset(samples).ok())
                .map(|o| (-(o.offset_ns as f64) * 1e-9, o.delay_ns as f64 * 1e-9));
            self.system.handle_refclock_reading(i, now, reading);
        }
    }

    fn handle_packet(&mut self, from: SocketAddr, bytes: &[u8], t4: i128) {
        let Some(i) = self.slots.iter().position(|s| s.address == Some(from)) else {
            return;
        };
        // The kernel's transmit timestamp of the request makes T1 exact.
        self.collect_tx_timestamps();
        let now = self.now();
        self.system
            .handle_response(i, bytes, NtpTimestamp::from_unix_nanos(t4), now);
    }

    fn collect_tx_timestamps(&mut self) {
        let _ = self.socket.socket.set_nonblocking(true);
        while let Ok(tx) = self.socket.socket.recv_tx_timestamp() {
            if let Some(i) = self
                .slots
                .iter()
                .position(|s| s.pending_tx_id == Some(tx.id))
            {
                self.slots[i].pending_tx_id = None;
                self.system.handle_transmit_timestamp(
                    i,
                    NtpTimestamp::from_unix_nanos(tx.timestamp.nanos),
                );
            }
        }
        let _ = self.socket.socket.set_nonblocking(false);
    }

    /// Applies one action to the clock; whether it was done.
    fn apply(&mut self, action: &ClockAction) -> bool {
        if self.observe {
            return false;
        }
        if let Err(e) = self.clock.apply(action) {
            let text = format!("{action:?}: {e}");
            tracing::error!("{text}");
            if e.is_permission_denied() {
                tracing::warn!("the kernel refused: observe-only from now on");
                self.observe = true;
                self.system.set_observe_only(true);
            }
            self.error = Some(text);
            return false;
        }
        if let ClockAction::Step { offset } = action {
            self.steps += 1;
            tracing::warn!("stepped the clock by {offset:+.6} s");
            if let Some(p) = self.bound.as_mut() {
                p.stepped_here(*offset);
            }
        }
        true
    }

    fn peer_reference_id(&self, index: usize) -> ReferenceId {
        match self.slots.get(index).and_then(|s| s.address) {
            Some(a) => match a.ip().to_canonical() {
                IpAddr::V4(v4) => ReferenceId::from_ipv4(v4),
                IpAddr::V6(v6) => ReferenceId::from_ipv6(v6),
            },
            None => ReferenceId::from_name(b"PHC").unwrap_or(ReferenceId::NONE),
        }
    }

    fn publish(&self, shared: &Shared) {
        let now = self.now();
        let reference_time = self.last_update_real.unwrap_or(NtpTimestamp::ZERO);
        let mut state = self
            .system
            .server_state(Log2Seconds(-24), reference_time, |i| {
                self.peer_reference_id(i)
            });
        if let Some(e) = self.system.estimate() {
            // What is not corrected is part of the error bound: observe-only, the whole
            // offset; steering, what is still being slewed away.
            let extra = e.offset.abs()
                + self
                    .system
                    .last_update()
                    .map_or(0.0, |t| now.seconds_since(t).max(0.0) * 15e-6);
            state.root_dispersion =
                NtpShort::from_seconds_f64(state.root_dispersion.to_seconds_f64() + extra);
            // Pass on only the leap accepted (checked against the leap-seconds list).
            if state.leap != LeapIndicator::Unsynchronized {
                let utc = (self.realtime() / 1_000_000_000) as i64;
                state.leap = match self.leap.decide(e.leap, utc).leap {
                    Leap::Insert => LeapIndicator::InsertSecond,
                    Leap::Delete => LeapIndicator::DeleteSecond,
                    _ => LeapIndicator::NoWarning,
                };
            }
        }
        *lock(&shared.server_state) = state;
        let mut rows = Vec::with_capacity(self.slots.len() + self.system.refclocks().len());
        for (slot, source) in self.slots.iter().zip(self.system.sources()) {
            let st = source.status(now);
            let last = source.last_measurement();
            rows.push(SourceRow {
                mode: '^',
                mark: st.mark.symbol(),
                name: match &slot.origin {
                    Origin::Server(h) | Origin::Pool(h) => h.clone(),
                },
                address: slot.address.map(|a| a.to_string()),
                stratum: last.map_or(0, |m| m.stratum),
                poll: source.poll(),
                reach: st.reach.0,
                last_rx: slot.last_rx.map(|t| t.elapsed().as_secs_f64()),
                offset: st.offset,
                offset_error: st.offset_error,
                last_offset: last.map(|m| m.offset),
                delay: st.delay,
                jitter: st.jitter,
                stopped: source.stopped().map(|c| format!("{c:?}").to_uppercase()),
                key: source.key_id(),
                smeared: source.smeared(),
                nts: slot.nts.as_ref().map(|n| NtsRow {
                    cookies: source.nts_cookies().unwrap_or(0),
                    key_exchanges: n.exchanges,
                    unauthenticated: source.unauthenticated(),
                    last_error: n.last_error.clone(),
                }),
            });
        }
        for r in self.system.refclocks() {
            let st = r.status(now);
            rows.push(SourceRow {
                mode: '#',
                mark: st.mark.symbol(),
                name: r.config().name.clone(),
                address: None,
                stratum: r.config().stratum,
                poll: r.config().poll,
                reach: st.reach.0,
                last_rx: st.last_sample.map(|m| now.seconds_since(m.time).max(0.0)),
                offset: st.offset,
                offset_error: st.offset_error,
                last_offset: st.last_sample.map(|m| m.offset),
                delay: st.delay,
                jitter: st.jitter,
                stopped: None,
                nts: None,
                key: None,
                smeared: false,
            });
        }
        let estimate = self.system.estimate();
        let tracking = Tracking {
            reference: estimate.map_or_else(String::new, |e| {
                let id = self.peer_reference_id(e.system_peer);
                match self.slots.get(e.system_peer).and_then(|s| s.address) {
                    Some(a) => format!("{} ({})", a.ip(), id.interpret(state.stratum)),
                    None => self
                        .system
                        .refclocks()
                        .get(e.system_peer - self.slots.len())
                        .map_or_else(String::new, |r| r.config().name.clone()),
                }
            }),
            stratum: state.stratum.0,
            since_update: self.system.last_update().map(|t| now.seconds_since(t)),
            system_offset: estimate.map_or(0.0, |e| e.offset),
            last_offset: self.last_offset,
            rms_offset: self.rms,
            frequency_ppm: self.system.frequency_ppm(),
            residual_frequency_ppm: estimate
                .and_then(|e| e.frequency)
                .map_or(0.0, |(f, _)| f * 1e6),
            skew_ppm: estimate
                .and_then(|e| e.frequency)
                .map_or(0.0, |(_, s)| s * 1e6),
            root_delay: state.root_delay.to_seconds_f64(),
            root_dispersion: state.root_dispersion.to_seconds_f64(),
            update_interval: match (self.system.last_update(), self.system.updates()) {
                (Some(t), n) if n > 1 => t.as_nanos() as f64 * 1e-9 / n as f64,
                _ => 0.0,
            },
            leap_status: match estimate.map(|e| e.leap) {
                None | Some(Leap::Unsynchronized) => "Not synchronised",
                Some(Leap::Insert) => "Insert second",
                Some(Leap::Delete) => "Delete second",
                Some(_) => "Normal",
            }
            .into(),
            synchronised: estimate.is_some(),
            updates: self.system.updates(),
            steps: self.steps,
        };
        let mut status = lock(&shared.status);
        status.sources = rows;
        status.tracking = tracking;
        status.observe_only = self.observe;
        if self.error.is_some() {
            status.last_error = self.error.clone();
        }
    }
}
