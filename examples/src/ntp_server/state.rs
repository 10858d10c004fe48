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
}

/// The guarded value, even if a thread panicked holding it (the counters stay usable).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
