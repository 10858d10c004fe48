//! Tempora's daemons, as libraries their binaries and tests share: the I/O around the
//! sans-IO engines of `tempora-ntp` and `tempora-ptp` (sockets with kernel timestamps,
//! threads, timers, TOML configuration, metrics, status tables and logging). Protocol and
//! algorithm code lives in the engine crates; what is here is how the daemons run it.
//!
//! - [`ntp_client`]: `ntp-client` (`query`, `run`, `status`, `wait`, `now`): the client
//!   runtime, its configuration and status tables, one-shot queries.
//! - [`ntp_server`]: `ntp-server`: batched multi-socket serving, its configuration and
//!   metrics.
//! - [`ptp_slave`]: `ptp-slave`: transports, clocks, phc2sys, configuration, metrics.
//! - [`nts`]: NTS key exchange over TLS (rustls).
//! - [`config`], [`http`], [`net`], [`prometheus`], [`random`], [`startup`]: what the
//!   daemons share.

pub mod clock_bound;
pub mod config;
pub mod http;
pub mod net;
pub mod ntp_client;
pub mod ntp_server;
pub mod nts;
pub mod prometheus;
pub mod ptp_slave;
pub mod random;
pub mod startup;
