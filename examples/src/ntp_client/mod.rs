//! `ntp-client`: the client runtime ([`ClientRuntime`]: sources polled on one thread
//! through `tempora-ntp`'s [`tempora_ntp::NtpSystem`], the actions applied to the system
//! clock), its configuration ([`ClientConfig`], [`UpstreamConfig`]), the status tables
//! and metrics, and one-shot queries.

mod config;
pub mod query;
mod runtime;
mod status;

pub use config::{ClientConfig, ClockBoundConfig, RefclockEntry, StepConfig, UpstreamConfig};
pub use runtime::{ClientRuntime, RuntimeError, read_drift_file, write_drift_file};
pub use status::{ClientStatus, SourceRow, Tracking, prometheus, render_status, status_handler};
