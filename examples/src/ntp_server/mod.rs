//! `ntp-server`: [`tempora_ntp::server::ServerCore`] on batched, timestamped sockets, one
//! per thread, with the time from a local clock, the kernel or upstream servers.

mod config;
mod daemon;
mod metrics;
mod state;

pub use config::{
    AccessConfig, AccessRuleConfig, LeapSmearConfig, NtsConfig, ServerConfig, TimeSource,
};
pub use daemon::{NtpServer, ServerError};
