//! Sans-IO PTP engines (IEEE 1588-2019): a slave-only port with its BMCA, foreign-master
//! qualification, announce-receipt timeout and failover, end-to-end or peer-to-peer
//! delay; the slave's measuring core with a swappable servo and offset filter; and a
//! phc2sys-like servo that keeps the system clock on a PTP hardware clock.
//!
//! Nothing here opens a socket or reads a clock: the caller passes each datagram with its
//! receive timestamp (nanoseconds on the clock being steered) and a monotonic `now`, and
//! takes back the messages to send, the [`ClockAction`]s for the clock (the same actions
//! the NTP engines emit, frequencies in ppm) and events. `no_std` with `alloc`.
//!
//! [`PtpPort`]'s methods, as quinn-proto sorts its `Connection`'s:
//!
//! - getters: [`PtpPort::state`], [`PtpPort::parent`], [`PtpPort::path_delay_ns`];
//! - `handle_*`, input: [`PtpPort::handle_message`], [`PtpPort::handle_timeout`],
//!   [`PtpPort::handle_transmit_timestamp`];
//! - mutators: [`PtpPort::fault`], [`PtpPort::recover`], [`PtpPort::clock_stepped`];
//! - `poll_*`, output, `#[must_use]`: [`PtpPort::poll_transmit`], [`PtpPort::poll_action`],
//!   [`PtpPort::poll_event`], [`PtpPort::poll_timeout`].
//!
//! The servo and the offset filter are type parameters: [`PtpPort::new`] takes linuxptp's
//! PI servo ([`tempora_clock_discipline::PiServo`]) and a Kalman filter
//! ([`tempora_clock_filter::OffsetKalman`]); [`PtpPort::with_servo`] takes any
//! [`tempora_clock_discipline::Servo`] and [`tempora_clock_filter::OffsetFilter`]. The spike
//! guard is [`PortConfig::spike_guard`].
//!
//! A slave over UDP, IPv4 multicast, software timestamps (`examples/slave.rs`):
//!
//! ```no_run
//! use std::net::{Ipv4Addr, UdpSocket};
//! use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
//! use tempora_clock_types::LocalInstant;
//! use tempora_ptp::{Outgoing, PortConfig, PortEvent, PtpPort};
//! use tempora_ptp_proto::{ClockIdentity, PortIdentity};
//!
//! let group = Ipv4Addr::new(224, 0, 1, 129);
//! let event = UdpSocket::bind("0.0.0.0:319")?;
//! let general = UdpSocket::bind("0.0.0.0:320")?;
//! for s in [&event, &general] {
//!     s.join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)?;
//!     s.set_read_timeout(Some(Duration::from_millis(20)))?;
//! }
//! let start = Instant::now();
//! let now = || LocalInstant::from_nanos(start.elapsed().as_nanos() as i64);
//! let wall = || SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128);
//! let me = PortIdentity { clock_identity: ClockIdentity::from_mac([2, 0, 0, 0, 0, 1]), port_number: 1 };
//! let config = PortConfig { steering: false, ..PortConfig::default() };
//! let mut port = PtpPort::new(me, config);
//! let (mut buf, mut out) = ([0u8; 1500], [0u8; 128]);
//! loop {
//!     for s in [&event, &general] {
//!         if let Ok(n) = s.recv(&mut buf) {
//!             port.handle_message(&buf[..n], wall(), now());
//!         }
//!     }
//!     port.handle_timeout(now());
//!     while let Some(t) = port.poll_transmit(&mut out) {
//!         let socket = if t.kind.is_event() { &event } else { &general };
//!         let port_number = if t.kind.is_event() { 319 } else { 320 };
//!         socket.send_to(&out[..t.len], (group, port_number))?;
//!         if t.kind.is_event() {
//!             port.handle_transmit_timestamp(t.kind, wall());
//!         }
//!     }
//!     while let Some(e) = port.poll_event() {
//!         if let PortEvent::Sample(s) = e {
//!             println!("offset {:.0} ns, path delay {:.0} ns", s.offset_ns, s.path_delay_ns);
//!         }
//!     }
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![deny(
    clippy::std_instead_of_core,
    clippy::alloc_instead_of_core,
    clippy::std_instead_of_alloc
)]

extern crate alloc;

pub mod phc2sys;
mod port;
mod slave;

pub use port::{Outgoing, PortConfig, PortEvent, PtpPort, Transmit};
pub use slave::{PtpSlaveCore, SlaveSample};

#[doc(no_inline)]
pub use tempora_clock_types::{ClockAction, LocalInstant};
