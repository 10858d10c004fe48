//! NTPv4 on the wire: the packet of RFC 5905, extension fields (RFC 7822), the NTS fields and
//! NTS-KE records of RFC 8915, legacy MACs (RFC 5905, RFC 8573), kiss-o'-death codes, and timestamps that
//! stay right across the 2036 era wrap.
//!
//! `no_std`, no allocation on any parse or emit path, no panic on any input.
//!
//! Two layers, as in smoltcp:
//! - zero-copy views over bytes: [`HeaderView`] for the header fields;
//! - validated values: [`NtpHeader`] (every field typed) and [`NtpPacket`] (header,
//!   [`ExtensionFields`], [`Mac`]), written back by [`NtpHeader::emit`], [`NtpPacket::emit`]
//!   and [`PacketBuilder`].
//!
//! ```
//! use tempora_ntp_proto::{client_request, NtpPacket, Version, PacketBuilder};
//!
//! let request = client_request(Version::V4, 0x5eed_1234_5678_9abc);
//! let mut buf = [0u8; 48];
//! let len = PacketBuilder::new(&mut buf, &request)?.finish()?;
//! let parsed = NtpPacket::parse(&buf[..len])?;
//! assert_eq!(parsed.header, request);
//! # Ok::<(), tempora_ntp_proto::Error>(())
//! ```
//!
//! Features: `std` (default; `SystemTime` conversions), `serde`, `bytes`, `mac`.

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(
    clippy::std_instead_of_core,
    clippy::alloc_instead_of_core,
    clippy::std_instead_of_alloc
)]

mod buffer;
mod error;
pub mod exchange;
pub mod extension;
pub mod header;
pub mod kiss;
pub mod mac;
pub mod nts;
pub mod nts_ke;
pub mod packet;
pub mod time;

pub use error::Error;
pub use exchange::{
    OffsetDelay, Rejection, ServerState, check_response, client_request, kiss_of_death,
    offset_and_delay, server_response,
};
pub use extension::{ExtensionField, ExtensionFieldType, ExtensionFields};
pub use header::{
    AssociationMode, HEADER_LEN, HeaderView, LeapIndicator, Mode, NtpHeader, ReferenceId,
    ReferenceIdKind, Stratum, Version,
};
pub use kiss::{KissAction, KissCode};
#[cfg(feature = "mac")]
pub use mac::MacKey;
pub use mac::{Mac, MacAlgorithm};
pub use nts::{NtsAuthenticator, NtsCookie, NtsCookiePlaceholder, NtsUniqueIdentifier};
pub use packet::{NtpPacket, PacketBuilder};
pub use time::{Log2Seconds, NtpDuration, NtpShort, NtpTimestamp, UnixTime};

/// The wire-format examples of `docs/crates.md`, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../docs/crates.md")]
pub struct CratesDocDoctests;
