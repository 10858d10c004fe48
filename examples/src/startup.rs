//! What every daemon binary does at start: logging at the configured level, and a flag
//! that SIGTERM and SIGINT set.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// The `log_level` names a configuration accepts.
pub const LOG_LEVELS: &str = "error, warn, info, debug or trace";

/// The tracing level of a `log_level` name.
pub fn log_level(name: &str) -> Option<tracing::Level> {
    match name {
        "error" => Some(tracing::Level::ERROR),
        "warn" => Some(tracing::Level::WARN),
        "info" => Some(tracing::Level::INFO),
        "debug" => Some(tracing::Level::DEBUG),
        "trace" => Some(tracing::Level::TRACE),
        _ => None,
    }
}

/// Logs to stderr at `name`'s level (info for an unknown name), in colour on a terminal.
pub fn init_logging(name: &str) {
    tracing_subscriber::fmt()
        .with_max_level(log_level(name).unwrap_or(tracing::Level::INFO))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// A flag SIGTERM and SIGINT set, for a clean stop.
pub fn stop_flag() -> std::io::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    Ok(stop)
}
