//! The Linux clock adapter: everything Tempora does to real clocks and sockets.
//!
//! - [`SystemClock`]: CLOCK_REALTIME through adjtimex. Reads the whole kernel state
//!   ([`KernelTime`], modes 0, no privilege needed); sets the frequency (using the tick
//!   beyond ±500 ppm, as chrony does), steps (ADJ_SETOFFSET | ADJ_NANO), arms leap
//!   seconds, sets the TAI offset, reports synchronisation (so the kernel's 11-minute RTC
//!   mode works), turns the kernel PLL off. Implements
//!   [`tempora_clock_types::SteeredClock`].
//! - [`PhcClock`]: a PTP hardware clock (`/dev/ptpN`, or an interface's via ethtool):
//!   capabilities, reading, frequency within max_adj, steps, and the PHC-to-system offset
//!   by PTP_SYS_OFFSET_PRECISE, _EXTENDED or PTP_SYS_OFFSET with the shortest window of N
//!   readings (as phc2sys does) — the path a VM guest with ptp_kvm takes.
//! - [`TimestampedSocket`] and [`PacketSocket`]: UDP and AF_PACKET sockets with receive
//!   and transmit timestamps (SO_TIMESTAMPING, transmit timestamps matched by OPT_ID), the
//!   SO_TIMESTAMPNS fallback, multicast membership; with the `tokio` feature,
//!   [`AsyncTimestampedSocket`].
//! - [`BatchSocket`]: a server's UDP socket: recvmmsg/sendmmsg batches, SO_REUSEPORT,
//!   receive timestamps on every datagram and transmit timestamps on request.
//!
//! Every error is an [`Error`] that keeps the errno; EPERM becomes
//! [`Error::PermissionDenied`], which says the process lacks CAP_SYS_TIME and that
//! observe-only mode needs none.
//!
//! All of Tempora's `unsafe` lives in this crate; each block says why it is sound.

#![deny(clippy::undocumented_unsafe_blocks)]

mod batch;
mod error;
mod phc;
mod socket;
mod timex;

pub mod clock_bound;

pub use batch::{BatchOptions, BatchSocket, MAX_BATCH, RecvMeta, SendItem};
pub use error::Error;
pub use phc::{
    OffsetMethod, PhcCapabilities, PhcClock, PhcOffset, TimestampingInfo, best_reading,
    fd_to_clockid, phc_index, timestamping_info,
};
pub use socket::{
    PacketSocket, Received, Timestamp, TimestampMode, TimestampSource, TimestampedSocket,
    TxTimestamp, enable_hardware_timestamping, interface_index, poll_readable, tempora_ptp_groups,
};
pub use timex::{
    ClockState, KernelTime, MAX_FREQ_PPM, MAX_STEP_SECONDS, StatusFlags, SystemClock,
    has_cap_sys_time, join_frequency, nominal_tick, split_frequency,
};

/// Async sockets on tokio.
#[cfg(feature = "tokio")]
mod async_socket {
    use std::net::SocketAddr;

    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    use crate::{Error, Received, TimestampedSocket, TxTimestamp};

    /// A [`TimestampedSocket`] driven by tokio's reactor.
    #[derive(Debug)]
    pub struct AsyncTimestampedSocket {
        inner: AsyncFd<TimestampedSocket>,
    }

    fn would_block(e: &Error) -> bool {
        matches!(e, Error::Os { source, .. } if source.kind() == std::io::ErrorKind::WouldBlock)
    }

    impl AsyncTimestampedSocket {
        /// Wraps a socket (made non-blocking here). Must be called inside a tokio runtime.
        pub fn new(socket: TimestampedSocket) -> Result<Self, Error> {
            socket.set_nonblocking(true)?;
            let interest = Interest::READABLE | Interest::WRITABLE | Interest::ERROR;
            // SAFETY: the socket owns its descriptor (an OwnedFd inside a UdpSocket); it
            // stays open and the same for as long as the AsyncFd owns the socket.
            let inner = unsafe { AsyncFd::register_with_interest(socket, interest) }
                .map_err(|e| Error::from_io("AsyncFd", e.into_parts().1))?;
            Ok(Self { inner })
        }

        /// The wrapped socket.
        pub fn get_ref(&self) -> &TimestampedSocket {
            self.inner.get_ref()
        }

        /// Receives a datagram with its receive timestamp.
        pub async fn recv_from(&self, buf: &mut [u8]) -> Result<Received, Error> {
            loop {
                let mut guard = self
                    .inner
                    .readable()
                    .await
                    .map_err(|e| Error::from_io("readable", e))?;
                match guard.get_inner().recv_from(buf) {
                    Err(e) if would_block(&e) => guard.clear_ready(),
                    other => return other,
                }
            }
        }

        /// Sends a datagram; returns its OPT_ID.
        pub async fn send_to(&mut self, buf: &[u8], to: SocketAddr) -> Result<u32, Error> {
            loop {
                let mut guard = self
                    .inner
                    .writable_mut()
                    .await
                    .map_err(|e| Error::from_io("writable", e))?;
                match guard.get_inner_mut().send_to(buf, to) {
                    Err(e) if would_block(&e) => guard.clear_ready(),
                    other => return other,
                }
            }
        }

        /// Waits for the next transmit timestamp on the error queue.
        pub async fn recv_tx_timestamp(&self) -> Result<TxTimestamp, Error> {
            loop {
                let mut guard = self
                    .inner
                    .ready(Interest::ERROR)
                    .await
                    .map_err(|e| Error::from_io("ready (error queue)", e))?;
                match guard.get_inner().recv_tx_timestamp() {
                    Err(e) if would_block(&e) => guard.clear_ready(),
                    other => return other,
                }
            }
        }
    }
}

#[cfg(feature = "tokio")]
pub use async_socket::AsyncTimestampedSocket;
