//! `ptp-slave`: [`tempora_ptp::PtpPort`] on UDPv4, UDPv6 or Ethernet sockets with software
//! or hardware timestamps, steering the system clock or a PHC (and the system clock kept
//! on it, as phc2sys), with TOML configuration and Prometheus metrics.

pub mod config;
pub mod daemon;
pub mod metrics;
