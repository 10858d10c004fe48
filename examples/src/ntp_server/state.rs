//! What the serving threads, the metrics and the status share: one place, so that the
//! daemon and its metrics both depend on it and not on each other.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tempora_ntp::server::{ClientTable, Counters};
use tempora_ntp_proto::ServerState;

use crate::ntp_client::ClientRuntime;

/// What the threads share.
pub(crate) struct Shared {
    pub(crate) state: Mutex<ServerState>,
    pub(crate) clients: Mutex<ClientTable>,
    pub(crate) counters: Mutex<Counters>,
    pub(crate) stop: AtomicBool,
    pub(crate) started: Instant,
    pub(crate) source_description: String,
    pub(crate) upstream: Option<Arc<ClientRuntime>>,
    /// NTS: the master keys and the key exchange counts, when configured.
    pub(crate) nts: Option<Arc<crate::nts::NtsServerState>>,
    /// The leap-seconds list and the smear, when configured.
    pub(crate) leap: Option<ServerLeap>,
}

/// What the server knows of leap seconds: the list, the smear, and the smear's state now
/// (for `/status` and `/metrics`).
pub(crate) struct ServerLeap {
    pub(crate) list: tempora_clock_discipline::LeapSecondsList,
    pub(crate) smear: Option<tempora_clock_discipline::LeapSmear>,
    /// The offset served last, nanoseconds (0 outside a smear).
    pub(crate) smear_offset_ns: std::sync::atomic::AtomicI64,
    /// Whether a smear is in progress.
    pub(crate) smearing: AtomicBool,
}

impl ServerLeap {
    /// The smear's offset (seconds) to add to the clock's time `clock_ns` (Unix
    /// nanoseconds) to serve it; `None` where no smear is configured or none is near.
    pub(crate) fn smear_offset(&self, clock_ns: i128) -> Option<f64> {
        let smear = self.smear?;
        let t = clock_ns as f64 * 1e-9;
        let reach = (smear.duration / 2.0) as i64 + 2;
        let Some((at, leap)) = self.list.leap_near(t as i64, reach) else {
            self.record(false, 0.0);
            return None;
        };
        // Near midnight, the kernel's state tells the repeated second from the first.
        let inserted = (t - at as f64).abs() < 2.0
            && tempora_sys_clock::SystemClock::new()
                .state()
                .is_ok_and(|k| {
                    matches!(
                        k.state,
                        tempora_sys_clock::ClockState::InProgress
                            | tempora_sys_clock::ClockState::Wait
                    )
                });
        let offset = smear.offset(t, at, leap, inserted);
        self.record(smear.in_window(t, at), offset);
        Some(offset)
    }

    fn record(&self, active: bool, offset: f64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.smearing.store(active, Relaxed);
        self.smear_offset_ns
            .store((offset * 1e9).round() as i64, Relaxed);
    }
}

/// The guarded value, even if a thread panicked holding it (the counters stay usable).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
