//! IEEE 1588-2019 (PTPv2.1) on the wire: the common header with typed flags, every message
//! body, TLVs (management with the data sets a monitoring tool reads, management errors,
//! organization extensions, path trace, alternate time offset, unicast negotiation, PAD,
//! authentication), PTP over Ethernet, and the best master clock algorithm.
//!
//! `no_std`, no allocation on any parse or emit path, no panic on any input. Versions 2.0
//! and 2.1 are read; messageLength and every TLV length are checked against the buffer
//! before anything they cover is read.
//!
//! ```
//! use tempora_ptp_proto::{Body, MessageType, MessageWriter, PortIdentity, PtpHeader,
//!     PtpMessage, PtpTimestamp};
//!
//! let header = PtpHeader::new(MessageType::DelayReq, PortIdentity::default(), 1);
//! let body = Body::DelayReq { origin_timestamp: PtpTimestamp::ZERO };
//! let mut buf = [0u8; 64];
//! let len = MessageWriter::new(&mut buf, &header, &body)?.finish()?;
//! assert_eq!(len, 44);
//! assert_eq!(PtpMessage::parse(&buf[..len])?.body, body);
//! # Ok::<(), tempora_ptp_proto::Error>(())
//! ```
//!
//! Features: `std` (default), `serde`, `bytes`.

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(
    clippy::std_instead_of_core,
    clippy::alloc_instead_of_core,
    clippy::std_instead_of_alloc
)]

/// `From` both ways between a registry and its wire number, as every registry in both
/// wire crates has: the registry keeps unknown values (`Unknown(raw)`), so both are total.
macro_rules! wire_number {
    ($name:ident, $raw:ty, $from:ident, $to:ident) => {
        impl From<$raw> for $name {
            fn from(value: $raw) -> Self {
                Self::$from(value)
            }
        }

        impl From<$name> for $raw {
            fn from(value: $name) -> Self {
                value.$to()
            }
        }
    };
}

pub mod bmca;
mod buffer;
mod error;
pub mod header;
pub mod management;
pub mod message;
pub mod tlv;
pub mod transport;
pub mod types;

pub use bmca::{
    Comparison, ComparisonDataset, ForeignMasterTable, StateDecision, compare, state_decision,
};
pub use error::Error;
pub use header::{Flags, HEADER_LEN, LogInterval, MessageType, PtpHeader};
pub use management::{
    ManagementAction, ManagementBody, ManagementData, ManagementErrorId, ManagementId,
};
pub use message::{AnnounceBody, Body, MessageWriter, PtpMessage};
pub use tlv::{Tlv, TlvType, TlvValue, Tlvs};
pub use transport::EthernetFrame;
pub use types::{
    ClockAccuracy, ClockIdentity, ClockQuality, DelayMechanism, PortIdentity, PortState, PtpText,
    PtpTimestamp, TimeInterval, TimeSource,
};

#[cfg(feature = "bytes")]
impl PtpMessage<'_> {
    /// Appends the message to a `bytes::BufMut`, with messageLength set. Messages of up to
    /// 1500 bytes (an Ethernet MTU) are written; longer ones are [`Error::MessageTooLong`].
    pub fn emit_buf<B: bytes::BufMut>(&self, buf: &mut B) -> Result<(), Error> {
        let len = self.buffer_len();
        if buf.remaining_mut() < len {
            return Err(Error::BufferTooSmall {
                needed: len,
                available: buf.remaining_mut(),
            });
        }
        let mut scratch = [0u8; 1500];
        let out = scratch
            .get_mut(..len)
            .ok_or(Error::MessageTooLong { len })?;
        self.emit(out)?;
        buf.put_slice(out);
        Ok(())
    }
}

#[cfg(all(test, feature = "bytes"))]
mod bytes_tests {
    use super::*;

    #[test]
    fn emit_buf_writes_the_message() {
        let header = PtpHeader::new(MessageType::Sync, PortIdentity::default(), 3);
        let body = Body::Sync {
            origin_timestamp: PtpTimestamp::ZERO,
        };
        let mut buf = [0u8; 64];
        let len = MessageWriter::new(&mut buf, &header, &body)
            .unwrap()
            .finish()
            .unwrap();
        let msg = PtpMessage::parse(&buf[..len]).unwrap();
        let mut out = bytes::BytesMut::new();
        msg.emit_buf(&mut out).unwrap();
        assert_eq!(&out[..], &buf[..len]);
    }
}
