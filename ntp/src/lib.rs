//! Sans-IO NTP engines: the client (sources, selection, discipline driving, reference
//! clocks) and the server's request handling (access lists, rate limiting, interleaved
//! mode, kiss-o'-death), for programs that want NTP inside them and for Tempora's own
//! daemons.
//!
//! Nothing here opens a socket, reads a clock, sleeps or spawns: every entry point takes
//! `now` (a [`LocalInstant`] on a monotonic timescale) and the bytes that arrived, and
//! hands back what should happen: bytes to send, when to be woken, what to do to the
//! clock. The same code runs in `ntp-client`, in the simulator at a thousand times real
//! speed and under the fuzzer. `no_std` with `alloc`.
//!
//! # The client
//!
//! [`NtpSystem`] owns the [`NtpSource`]s (one per server) and [`RefclockSource`]s, runs
//! the selection over them and drives the discipline. Its methods, as quinn-proto sorts
//! its `Connection`'s:
//!
//! - getters: [`NtpSystem::sources`], [`NtpSystem::estimate`], [`NtpSystem::server_state`], ...
//! - `handle_*`, input: [`NtpSystem::handle_timeout`] (polls that are due and the
//!   discipline's timer), [`NtpSystem::handle_response`] (a datagram from source `i` with
//!   its receive timestamp), [`NtpSystem::handle_transmit_timestamp`] (when the request
//!   really left), [`NtpSystem::handle_refclock_reading`];
//! - mutators: [`NtpSystem::reset_source`] (the address behind a name changed);
//! - `poll_*`, output, `#[must_use]`: [`NtpSystem::poll_transmit`] (a request to send to
//!   source `i`), [`NtpSystem::poll_action`] (a [`ClockAction`] to apply),
//!   [`NtpSystem::poll_event`] (what happened, for logs and metrics) and
//!   [`NtpSystem::poll_timeout`] (when to call `handle_timeout` next).
//!
//! After any `handle_*` call, drain `poll_transmit`, `poll_action` and `poll_event`, then
//! sleep until `poll_timeout` or the next datagram. A client in a few lines over
//! `std::net::UdpSocket` is `examples/client.rs` (the same on tokio, one `select!` loop:
//! `examples/client-tokio.rs`, built with the `tokio` feature):
//!
//! ```no_run
//! use std::net::UdpSocket;
//! use std::time::{Duration, Instant, SystemTime};
//! use tempora_clock_types::LocalInstant;
//! use tempora_ntp::{NtpSource, NtpSystem, SourceConfig, SystemConfig, SystemEvent};
//! use tempora_ntp_proto::NtpTimestamp;
//!
//! let socket = UdpSocket::bind("0.0.0.0:0")?;
//! socket.connect("pool.ntp.org:123")?;
//! let start = Instant::now();
//! let now = || LocalInstant::from_nanos(start.elapsed().as_nanos() as i64);
//! let wall = || NtpTimestamp::from_system_time(SystemTime::now());
//! let config = SystemConfig { observe_only: true, ..SystemConfig::default() };
//! let source = NtpSource::new(SourceConfig::default(), now());
//! let mut system = NtpSystem::new(vec![source], config, 0.0);
//! let mut seed = 0x9E37_79B9_7F4A_7C15u64; // use a real random source (getrandom)
//! let mut random = move || { seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1); Some(seed) };
//! let (mut buf, mut out) = ([0u8; 1024], [0u8; 128]);
//! loop {
//!     system.handle_timeout(now(), wall(), &mut random);
//!     while let Some(t) = system.poll_transmit(&mut out) {
//!         socket.send(&out[..t.len])?;
//!     }
//!     while let Some(event) = system.poll_event() {
//!         if let SystemEvent::Updated(e) = event {
//!             println!("offset {:+.6} s", e.offset);
//!         }
//!     }
//!     let wait = system.poll_timeout().map_or(1.0, |t| t.seconds_since(now()));
//!     socket.set_read_timeout(Some(Duration::from_secs_f64(wait.clamp(0.001, 1.0))))?;
//!     if let Ok(n) = socket.recv(&mut buf) {
//!         system.handle_response(0, &buf[..n], wall(), now());
//!     }
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The per-source estimator is a choice ([`Estimator`]: the default regression over the
//! lines every exchange allows, or the RFC 5905 clock filter), and so is the discipline
//! ([`DisciplineKind`]).
//!
//! # The server
//!
//! [`server::ServerCore`] decides on one request: bytes, sender, receive timestamp and a
//! monotonic instant in; the answer's bytes (or why there is none) out. It keeps no
//! per-request allocation: [`server::ClientTable`] is a fixed-size, keyed table for rate
//! limiting and interleaved mode, its key a seed the caller gives. See
//! `examples/server.rs` for a server loop.

#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![deny(
    clippy::std_instead_of_core,
    clippy::alloc_instead_of_core,
    clippy::std_instead_of_alloc
)]

extern crate alloc;

pub mod keys;
pub mod nts;
mod refclock;
pub mod server;
mod source;
mod system;

pub use refclock::{RefclockConfig, RefclockSource};
pub use source::{
    Estimator, MAX_REQUEST_LEN, NtpSource, NtsRandomness, REQUEST_LEN, ResponseOutcome,
    SourceConfig,
};
pub use system::{
    DisciplineKind, LeapMode, NtpSystem, StepQuorum, SystemConfig, SystemError, SystemEvent,
    Transmit,
};

#[doc(no_inline)]
pub use tempora_clock_discipline::BoundConfig;
#[doc(no_inline)]
pub use tempora_clock_types::{ClockAction, ClockStatus, ErrorBound, LocalInstant};
