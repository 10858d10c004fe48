//! The NTP server: access control, rate limiting, interleaved mode, and the daemon's
//! batched, multi-socket I/O. [`ServerCore`] decides on one request (sans-IO);
//! [`NtpServer`] runs it on sockets.

mod access;
mod clients;
pub(crate) mod config;
mod core;
mod daemon;
mod metrics;

pub use access::{AccessAction, AccessList, AccessRule, Cidr, CidrError};
pub use clients::{ClientTable, RateLimit, RateVerdict};
pub use config::{AccessConfig, AccessRuleConfig, ConfigError, ServerConfig, TimeSource};
pub use core::{Answer, Counters, DropReason, Request, ServerCore};
pub use daemon::{NtpServer, ServerError};
