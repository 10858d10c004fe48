//! The server's I/O: one [`BatchSocket`] per thread per address (SO_REUSEPORT), batches
//! in and out, the transmit timestamp written just before the batch is sent, the kernel's
//! transmit timestamps fed back for interleaved mode; a thread that keeps the served state
//! current; metrics.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempora_ntp_proto::{
    LeapIndicator, Log2Seconds, NtpDuration, NtpShort, NtpTimestamp, ReferenceId, ServerState,
    Stratum,
};
use tempora_sys_clock::{
    BatchOptions, BatchSocket, ClockState, MAX_BATCH, RecvMeta, SendItem, StatusFlags, SystemClock,
    Timestamp, TimestampSource, TxTimestamp,
};

use tempora_ntp::server::{
    Answer, ClientTable, Counters, DropReason, NtsServing, Request, ServerCore, send_all,
};

use super::config::{ServerConfig, TimeSource};
use super::metrics;
use super::state::{ServerLeap, Shared, lock};
use crate::config::ConfigFile;
use crate::ntp_client::{ClientRuntime, RuntimeError};
use tempora_clock_types::Leap;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: tempora_sys_clock::Error,
    },
    /// The metrics address could not be bound.
    #[error("cannot serve metrics on {address}: {source}")]
    Metrics {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The upstream sources could not start.
    #[error(transparent)]
    Upstream(#[from] RuntimeError),
    /// The kernel gave no randomness for the client table's key.
    #[error("no randomness from the kernel (getrandom) to key the client table")]
    NoRandomness,
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    /// NTS could not be set up.
    #[error(transparent)]
    Nts(#[from] crate::nts::NtsSetupError),
}

/// A running server.
pub struct NtpServer {
    shared: Arc<Shared>,
    addresses: Vec<SocketAddr>,
    threads: Vec<JoinHandle<()>>,
    status: Option<crate::http::StatusServer>,
    ke_addresses: Vec<SocketAddr>,
}

fn realtime_nanos() -> i128 {
    SystemClock::new().now_realtime().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128)
    })
}

/// The precision to announce: log2 of the clock's resolution, at most 2^-20.
fn precision() -> Log2Seconds {
    Log2Seconds(-24)
}

/// The served state for a time source, now, with the leap indicator the leap-seconds list
/// and the smear make of it.
fn state_now(
    source: &TimeSource,
    upstream: Option<&ClientRuntime>,
    leap: Option<&ServerLeap>,
) -> ServerState {
    let mut state = source_state(source, upstream);
    if let Some(l) = leap {
        if state.leap != LeapIndicator::Unsynchronized {
            let utc = (realtime_nanos() / 1_000_000_000) as i64;
            if l.smear.is_some() {
                // A smearing server never announces the leap: its clients would insert
                // it on top of the smear.
                state.leap = LeapIndicator::NoWarning;
            } else if !matches!(source, TimeSource::Upstream(_)) && !l.list.is_expired(utc) {
                // On the last day of the month the list holds a leap for, as RFC 5905.
                state.leap = match l.list.leap_at_end_of_day(utc) {
                    Leap::Insert => LeapIndicator::InsertSecond,
                    Leap::Delete => LeapIndicator::DeleteSecond,
                    _ => LeapIndicator::NoWarning,
                };
            }
        }
    }
    state
}

/// The served state for a time source, now.
fn source_state(source: &TimeSource, upstream: Option<&ClientRuntime>) -> ServerState {
    let now = NtpTimestamp::from_unix_nanos(realtime_nanos());
    match source {
        TimeSource::Local { stratum } => ServerState {
            leap: LeapIndicator::NoWarning,
            stratum: Stratum(*stratum),
            precision: precision(),
            root_delay: NtpShort::ZERO,
            root_dispersion: NtpShort::ZERO,
            // 127.127.1.1, as chrony's `local` and ntpd's local clock driver give it.
            reference_id: ReferenceId::from_ipv4(std::net::Ipv4Addr::new(127, 127, 1, 1)),
            reference_timestamp: now,
        },
        TimeSource::Kernel {
            stratum,
            reference_id,
        } => match SystemClock::new().state() {
            Ok(k) if !k.status.contains(StatusFlags::UNSYNC) && k.state != ClockState::Error => {
                ServerState {
                    leap: match k.state {
                        ClockState::Insert => LeapIndicator::InsertSecond,
                        ClockState::Delete => LeapIndicator::DeleteSecond,
                        _ => LeapIndicator::NoWarning,
                    },
                    stratum: Stratum(*stratum),
                    precision: precision(),
                    root_delay: NtpShort::ZERO,
                    root_dispersion: NtpShort::from_seconds_f64(k.max_error),
                    reference_id: ReferenceId::from_name(reference_id.as_bytes())
                        .unwrap_or(ReferenceId::NONE),
                    reference_timestamp: now,
                }
            }
            _ => ServerState {
                precision: precision(),
                ..ServerState::UNSYNCHRONIZED
            },
        },
        TimeSource::Upstream(_) => match upstream {
            Some(u) => u.server_state(precision()),
            None => ServerState::UNSYNCHRONIZED,
        },
    }
}

/// Arms the kernel's leap flag on the day the list has one, and sets the TAI offset
/// from it (a `local` server with `leap_file`). A refusal (no CAP_SYS_TIME) is logged once.
fn arm_kernel_leap(scheduler: &mut tempora_clock_discipline::LeapScheduler, refused: &mut bool) {
    let clock = SystemClock::new();
    let utc = (realtime_nanos() / 1_000_000_000) as i64;
    let mut result = Ok(());
    if let Some(tempora_clock_types::ClockAction::SetLeap(leap)) = scheduler.update(Leap::None, utc)
    {
        result = clock.set_leap_flag(leap);
        if result.is_ok() {
            tracing::info!("leap second {leap:?} armed in the kernel for the end of the day");
        }
    }
    if let Some(tai) = scheduler.tai_minus_utc(utc) {
        if clock.state().is_ok_and(|k| k.tai_offset != tai) && result.is_ok() {
            result = clock.set_tai_offset(tai);
        }
    }
    if let Err(e) = result {
        if !*refused {
            *refused = true;
            tracing::warn!("keeping the leap second in the kernel: {e}");
        }
    }
}

impl NtpServer {
    /// Binds every address and starts serving.
    pub fn start(config: &ServerConfig) -> Result<Self, ServerError> {
        config.validate()?;
        let access = config.access_list()?;
        let upstream = match &config.source {
            TimeSource::Upstream(upstream) => Some(Arc::new(ClientRuntime::start(
                (**upstream).clone(),
                config.observe,
            )?)),
            _ => None,
        };
        let source_description = match &config.source {
            TimeSource::Local { stratum } => format!("local clock at stratum {stratum}"),
            TimeSource::Kernel { stratum, .. } => {
                format!("kernel clock state (stratum {stratum} when synchronised)")
            }
            TimeSource::Upstream(u) => {
                let names: Vec<&str> = u
                    .servers
                    .iter()
                    .chain(&u.pools)
                    .map(String::as_str)
                    .collect();
                format!("upstream {}", names.join(", "))
            }
        };
        // NTS: credentials and keys before anything is bound, so a bad file stops the start.
        let nts = match &config.nts {
            Some(n) => {
                let tls = crate::nts::server_tls(
                    std::path::Path::new(&n.certificate),
                    std::path::Path::new(&n.private_key),
                )?;
                let keys = crate::nts::load_or_make_keys(
                    n.key_file.as_deref().map(std::path::Path::new),
                    n.old_keys,
                )?;
                let state = Arc::new(crate::nts::NtsServerState {
                    keys: std::sync::RwLock::new(keys),
                    ke: Mutex::new(crate::nts::KeCounts::default()),
                });
                Some((tls, state, n.clone()))
            }
            None => None,
        };
        let leap =
            crate::config::read_leap_file(config.leap_file.as_deref(), "leap_file")?.map(|list| {
                ServerLeap {
                    list,
                    smear: config.leap_smear.as_ref().and_then(|s| s.smear()),
                    smear_offset_ns: std::sync::atomic::AtomicI64::new(0),
                    smearing: AtomicBool::new(false),
                }
            });
        let shared = Arc::new(Shared {
            state: Mutex::new(state_now(
                &config.source,
                upstream.as_deref(),
                leap.as_ref(),
            )),
            clients: Mutex::new(ClientTable::new(
                config.rate_limit,
                crate::random::random_seed().ok_or(ServerError::NoRandomness)?,
            )),
            counters: Mutex::new(Counters::default()),
            stop: AtomicBool::new(false),
            started: Instant::now(),
            source_description,
            upstream,
            nts: nts.as_ref().map(|(_, state, _)| state.clone()),
            leap,
        });
        let core = ServerCore {
            access,
            interleaved: config.interleaved,
            keys: config.symmetric_keys()?,
        };
        let per_address = config.effective_threads();
        let mut sockets = Vec::new();
        let mut addresses = Vec::new();
        for &address in &config.listen {
            let mut bound = address;
            for _ in 0..per_address {
                let socket = BatchSocket::bind(bound, BatchOptions::default())
                    .map_err(|source| ServerError::Bind { address, source })?;
                socket
                    .set_read_timeout(Some(Duration::from_millis(100)))
                    .map_err(|source| ServerError::Bind { address, source })?;
                // Port 0: the later sockets join the port the first one got.
                bound = socket
                    .local_addr()
                    .map_err(|source| ServerError::Bind { address, source })?;
                sockets.push(socket);
            }
            addresses.push(bound);
        }
        let mut threads = Vec::new();
        for (i, socket) in sockets.into_iter().enumerate() {
            let shared = shared.clone();
            let core = core.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("ntp-serve-{i}"))
                    .spawn(move || serve(socket, &core, &shared))
                    .map_err(ServerError::Thread)?,
            );
        }
        let mut ke_addresses = Vec::new();
        if let Some((tls, state, n)) = &nts {
            let options = crate::nts::KeServerOptions {
                ntp_server: n.ntp_server.clone(),
                ntp_port: n.ntp_port.or_else(|| {
                    addresses
                        .first()
                        .map(SocketAddr::port)
                        .filter(|p| *p != 123)
                }),
                max_connections: n.max_connections,
                timeout: Duration::from_secs_f64(n.ke_timeout),
            };
            for &address in &n.ke_listen {
                let listener = match std::net::TcpListener::bind(address) {
                    Ok(l) => l,
                    // `[::]` on a system without IPv6: IPv4 alone.
                    Err(_) if address.ip() == IpAddr::from([0u16; 8]) => {
                        let v4 = SocketAddr::from(([0, 0, 0, 0], address.port()));
                        std::net::TcpListener::bind(v4)
                            .map_err(|source| crate::nts::NtsSetupError::Bind { address, source })?
                    }
                    Err(source) => {
                        return Err(crate::nts::NtsSetupError::Bind { address, source }.into());
                    }
                };
                ke_addresses.push(listener.local_addr().unwrap_or(address));
                let (tls, state, options, shared) =
                    (tls.clone(), state.clone(), options.clone(), shared.clone());
                threads.push(
                    std::thread::Builder::new()
                        .name("nts-ke-accept".into())
                        .spawn(move || {
                            crate::nts::serve_key_exchange(listener, tls, state, options, || {
                                shared.stop.load(Ordering::Relaxed)
                            });
                        })
                        .map_err(ServerError::Thread)?,
                );
            }
            tracing::info!(
                "NTS: key exchange on {ke_addresses:?}, master key {} ({} kept)",
                lock_read(&state.keys).current_id(),
                lock_read(&state.keys).ids().count()
            );
        }
        {
            let shared = shared.clone();
            let source = config.source.clone();
            // The server of its own clock keeps that clock's leap second too, where it
            // may: otherwise its clients would insert the leap it announces and be a
            // second behind it after.
            let arm_local_leap = matches!(config.source, TimeSource::Local { .. })
                && config.leap_file.is_some()
                && !config.observe;
            let rotation = config.nts.as_ref().map(|n| {
                (
                    n.key_rotation,
                    n.key_file.clone().map(std::path::PathBuf::from),
                    n.old_keys,
                )
            });
            threads.push(
                std::thread::Builder::new()
                    .name("ntp-state".into())
                    .spawn(move || {
                        let mut keys =
                            rotation.map(|(every, file, old)| KeyRotation::new(every, file, old));
                        let mut kernel_leap = arm_local_leap.then(|| {
                            tempora_clock_discipline::LeapScheduler::with_list(
                                tempora_clock_discipline::LeapConfig::default(),
                                shared.leap.as_ref().map(|l| l.list),
                            )
                        });
                        let mut kernel_refused = false;
                        while !shared.stop.load(Ordering::Relaxed) {
                            let state = state_now(
                                &source,
                                shared.upstream.as_deref(),
                                shared.leap.as_ref(),
                            );
                            *lock(&shared.state) = state;
                            if let Some(scheduler) = &mut kernel_leap {
                                arm_kernel_leap(scheduler, &mut kernel_refused);
                            }
                            if let (Some(k), Some(nts)) = (&mut keys, &shared.nts) {
                                k.tick(nts);
                            }
                            std::thread::sleep(Duration::from_millis(250));
                        }
                    })
                    .map_err(ServerError::Thread)?,
            );
        }
        let status = match config.metrics_listen {
            Some(address) => {
                let shared = shared.clone();
                let handler: crate::http::Handler =
                    Arc::new(move |path: &str| metrics::handle(path, &shared));
                Some(
                    crate::http::StatusServer::start(address, handler)
                        .map_err(|source| ServerError::Metrics { address, source })?,
                )
            }
            None => None,
        };
        Ok(Self {
            shared,
            addresses,
            threads,
            status,
            ke_addresses,
        })
    }

    /// The NTS-KE addresses served (ports filled in where 0 was asked).
    pub fn ke_addrs(&self) -> &[SocketAddr] {
        &self.ke_addresses
    }

    /// The addresses served (ports filled in where 0 was asked).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addresses
    }

    /// The metrics address, if serving.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.status.as_ref().map(crate::http::StatusServer::address)
    }

    /// The counts so far.
    pub fn counters(&self) -> Counters {
        *lock(&self.shared.counters)
    }

    /// The state served now.
    pub fn state(&self) -> ServerState {
        *lock(&self.shared.state)
    }

    /// The status as JSON (what `/status` serves).
    pub fn status_json(&self) -> serde_json::Value {
        metrics::status_json(&self.shared)
    }

    /// Stops every thread and waits for them.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.status = None;
        if let Some(u) = &self.shared.upstream {
            u.stop();
        }
    }

    /// Blocks until `stop` is set (by a signal handler, say), then stops.
    pub fn run_until(mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.shutdown();
    }
}

impl Drop for NtpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn lock_read<T>(l: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Rotates the NTS master keys on schedule (writing the key file), or, when this server
/// never rotates, reads the key file again whenever another server changed it.
struct KeyRotation {
    every: Duration,
    file: Option<std::path::PathBuf>,
    old_keys: usize,
    last: Instant,
    modified: Option<std::time::SystemTime>,
}

impl KeyRotation {
    fn new(every: u64, file: Option<std::path::PathBuf>, old_keys: usize) -> Self {
        let modified = file
            .as_ref()
            .and_then(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok());
        Self {
            every: Duration::from_secs(every),
            file,
            old_keys,
            last: Instant::now(),
            modified,
        }
    }

    fn tick(&mut self, nts: &crate::nts::NtsServerState) {
        if self.every.is_zero() {
            let Some(file) = &self.file else { return };
            let modified = std::fs::metadata(file).and_then(|m| m.modified()).ok();
            if modified.is_some() && modified != self.modified {
                match crate::nts::read_key_file(file, self.old_keys) {
                    Ok(keys) => {
                        tracing::info!("NTS: master keys read again from {}", file.display());
                        *nts.keys
                            .write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
                        self.modified = modified;
                    }
                    Err(e) => tracing::warn!("{e}"),
                }
            }
            return;
        }
        if self.last.elapsed() < self.every {
            return;
        }
        self.last = Instant::now();
        let Ok(key) = crate::nts::new_master_key() else {
            tracing::error!("NTS: no randomness for a new master key; the old one stays");
            return;
        };
        let mut keys = nts
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let id = keys.current_id().wrapping_add(1);
        keys.rotate(id, key);
        tracing::info!("NTS: master key rotated to {id}");
        if let Some(file) = &self.file {
            if let Err(e) = crate::nts::write_key_file(file, &keys) {
                tracing::error!("{e}");
            }
        }
    }
}

/// Pending transmit timestamps of one socket: OPT_ID -> (client, receive timestamp).
const PENDING: usize = 256;

/// One serving thread.
fn serve(mut socket: BatchSocket, core: &ServerCore, shared: &Shared) {
    let mut bufs = vec![[0u8; 1024]; MAX_BATCH];
    let mut meta = [RecvMeta::default(); MAX_BATCH];
    // As long as a request may be: an NTS answer is as long as its request.
    let mut out = vec![[0u8; 1024]; MAX_BATCH];
    let mut answers = [Answer::Drop(DropReason::Malformed); MAX_BATCH];
    let mut ids = [None; MAX_BATCH];
    let mut pending: Vec<Option<(u32, IpAddr, NtpTimestamp)>> = vec![None; PENDING];
    let mut outstanding = 0usize;
    let mut stamps = [TxTimestamp {
        id: 0,
        timestamp: Timestamp {
            nanos: 0,
            source: TimestampSource::Software,
        },
    }; 32];
    let mut counters = Counters::default();
    let mut randomness = crate::random::BufferedRandom::new();
    let mut rxs = [NtpTimestamp::ZERO; MAX_BATCH];
    let idle = SendItem {
        data: &[],
        to: SocketAddr::from(([127, 0, 0, 1], 9)),
        tx_timestamp: false,
    };
    while !shared.stop.load(Ordering::Relaxed) {
        let n = match socket.recv_batch(&mut bufs, &mut meta) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("receive failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
                0
            }
        };
        if n > 0 {
            let mut state = *lock(&shared.state);
            // A smear in progress: every timestamp served moves by it.
            let smear = shared
                .leap
                .as_ref()
                .and_then(|l| l.smear_offset(realtime_nanos()))
                .filter(|o| *o != 0.0)
                .map(NtpDuration::from_seconds_f64);
            let shift = |t: NtpTimestamp| smear.map_or(t, |d| t + d);
            state.reference_timestamp = shift(state.reference_timestamp);
            let now_ns = shared.started.elapsed().as_nanos() as u64;
            {
                let mut clients = lock(&shared.clients);
                let nts_keys = shared.nts.as_ref().map(|n| lock_read(&n.keys));
                let mut random = |b: &mut [u8]| randomness.fill(b);
                for i in 0..n {
                    let m = meta[i];
                    let Some(from) = m.from else {
                        answers[i] = Answer::Drop(DropReason::Malformed);
                        continue;
                    };
                    rxs[i] = shift(NtpTimestamp::from_unix_nanos(
                        m.timestamp.map_or_else(realtime_nanos, |t| t.nanos),
                    ));
                    let mut serving = nts_keys.as_deref().map(|keys| NtsServing {
                        keys,
                        random: &mut random,
                        transmit: shift(NtpTimestamp::from_unix_nanos(realtime_nanos())),
                    });
                    answers[i] = core.handle_with_nts(
                        &Request {
                            bytes: &bufs[i][..m.len.min(1024)],
                            truncated: m.truncated,
                            from: from.ip(),
                            from_port: from.port(),
                            rx: rxs[i],
                            now_ns,
                        },
                        &state,
                        &mut clients,
                        &mut counters,
                        serving.as_mut(),
                        &mut out[i],
                    );
                }
            }
            // The transmit timestamp, as late as user space can take it.
            let tx = shift(NtpTimestamp::from_unix_nanos(realtime_nanos()))
                .to_bits()
                .to_be_bytes();
            for i in 0..n {
                if let Answer::Reply {
                    stamp_transmit: true,
                    ..
                } = answers[i]
                {
                    out[i][40..48].copy_from_slice(&tx);
                }
            }
            let mut items = [idle; MAX_BATCH];
            let mut origin_of = [0usize; MAX_BATCH];
            let mut count = 0;
            for i in 0..n {
                if let (
                    Answer::Reply {
                        len,
                        want_tx_timestamp,
                        ..
                    },
                    Some(to),
                ) = (answers[i], meta[i].from)
                {
                    items[count] = SendItem {
                        data: &out[i][..len],
                        to,
                        tx_timestamp: want_tx_timestamp,
                    };
                    origin_of[count] = i;
                    count += 1;
                }
            }
            // A refused answer costs only itself (see `send_all`).
            counters.send_errors += send_all(
                &items[..count],
                &mut ids,
                |batch, ids| socket.send_batch(batch, ids),
                |k, id| {
                    let i = origin_of[k];
                    if let (Some(id), Some(from)) = (*id, meta[i].from) {
                        pending[id as usize % PENDING] = Some((id, from.ip(), rxs[i]));
                        outstanding += 1;
                    }
                },
                |k, e| {
                    if let Some(e) = e {
                        tracing::debug!("send to {} refused: {e}", items[k].to);
                    }
                },
            ) as u64;
        }
        if outstanding > 0 {
            loop {
                let got = socket.recv_tx_timestamps(&mut stamps).unwrap_or(0);
                if got == 0 {
                    break;
                }
                let mut clients = lock(&shared.clients);
                for t in &stamps[..got] {
                    let slot = &mut pending[t.id as usize % PENDING];
                    if let Some((id, client, rx)) = *slot {
                        if id == t.id {
                            let sent = NtpTimestamp::from_unix_nanos(t.timestamp.nanos);
                            let smear = shared
                                .leap
                                .as_ref()
                                .and_then(|l| l.smear_offset(t.timestamp.nanos))
                                .map_or(sent, |o| sent + NtpDuration::from_seconds_f64(o));
                            clients.record_transmit(client, rx, smear);
                            *slot = None;
                            outstanding = outstanding.saturating_sub(1);
                        }
                    }
                }
            }
            if n == 0 {
                // Nothing arrived for a read timeout: what is still pending will not come.
                outstanding = 0;
            }
        }
        if counters != Counters::default() {
            lock(&shared.counters).add(&counters);
            counters = Counters::default();
        }
    }
}
