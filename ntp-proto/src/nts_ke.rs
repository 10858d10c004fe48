//! NTS Key Establishment records (RFC 8915 section 4): what an NTS-KE client and server
//! say to each other inside TLS on port 4460. Every record type of the RFC, parsed from
//! `&[u8]` and emitted into `&mut [u8]`; unknown types are kept with their critical bit,
//! so that the caller can answer them as the RFC asks (an unknown critical record is an
//! error, an unknown non-critical one is ignored). No allocation, no panic on any input.
//!
//! ```
//! use tempora_ntp_proto::nts_ke::{KeRecord, Record, Records, U16List, AEAD_AES_SIV_CMAC_256,
//!     NEXT_PROTOCOL_NTPV4};
//!
//! // A client's request: NTPv4, AES-SIV-CMAC-256, end of message.
//! let mut buf = [0u8; 64];
//! let mut len = 0;
//! for record in [
//!     Record::critical(KeRecord::NextProtocol(U16List::Values(&[NEXT_PROTOCOL_NTPV4]))),
//!     Record::new(KeRecord::AeadAlgorithm(U16List::Values(&[AEAD_AES_SIV_CMAC_256]))),
//!     Record::critical(KeRecord::EndOfMessage),
//! ] {
//!     len += record.emit(&mut buf[len..])?;
//! }
//! let records: Vec<Record<'_>> = Records::new(&buf[..len]).collect::<Result<_, _>>()?;
//! assert_eq!(records.len(), 3);
//! assert!(matches!(records[2].record, KeRecord::EndOfMessage));
//! # Ok::<(), tempora_ntp_proto::Error>(())
//! ```

use crate::Error;

/// Where a record's parts are.
pub mod field {
    use core::ops::Range;

    /// The critical bit and the 15-bit record type.
    pub const TYPE: Range<usize> = 0..2;
    /// The body's length.
    pub const LENGTH: Range<usize> = 2..4;
    /// Where the body starts.
    pub const BODY: usize = 4;
}

/// Bytes of a record's header.
pub const HEADER_LEN: usize = field::BODY;

/// The critical bit of the type field.
pub const CRITICAL: u16 = 0x8000;

/// Record type codes (RFC 8915 section 7.6, the IANA registry).
pub mod record_type {
    /// End of Message.
    pub const END_OF_MESSAGE: u16 = 0;
    /// NTS Next Protocol Negotiation.
    pub const NEXT_PROTOCOL: u16 = 1;
    /// Error.
    pub const ERROR: u16 = 2;
    /// Warning.
    pub const WARNING: u16 = 3;
    /// AEAD Algorithm Negotiation.
    pub const AEAD_ALGORITHM: u16 = 4;
    /// New Cookie for NTPv4.
    pub const NEW_COOKIE: u16 = 5;
    /// NTPv4 Server Negotiation.
    pub const SERVER: u16 = 6;
    /// NTPv4 Port Negotiation.
    pub const PORT: u16 = 7;
}

/// The Next Protocol ID of NTPv4 (RFC 8915 section 7.7).
pub const NEXT_PROTOCOL_NTPV4: u16 = 0;
/// AEAD_AES_SIV_CMAC_256 (RFC 5297), the algorithm every NTS implementation has.
pub const AEAD_AES_SIV_CMAC_256: u16 = 15;
/// AEAD_AES_SIV_CMAC_384.
pub const AEAD_AES_SIV_CMAC_384: u16 = 16;
/// AEAD_AES_SIV_CMAC_512.
pub const AEAD_AES_SIV_CMAC_512: u16 = 17;
/// AEAD_AES_128_GCM_SIV (RFC 8452).
pub const AEAD_AES_128_GCM_SIV: u16 = 30;

/// The TLS port of NTS-KE.
pub const KE_PORT: u16 = 4460;
/// The ALPN protocol ID of NTS-KE.
pub const ALPN: &[u8] = b"ntske/1";
/// The TLS exporter label for the NTP keys (RFC 8915 section 5.1).
pub const EXPORTER_LABEL: &str = "EXPORTER-network-time-security";

/// Which way an exported key protects traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyDirection {
    /// Client to server (requests).
    ClientToServer,
    /// Server to client (responses).
    ServerToClient,
}

/// The TLS exporter context for a key (RFC 8915 section 5.1): the Next Protocol ID
/// (NTPv4), the AEAD algorithm, then 0 for client-to-server or 1 for server-to-client.
pub fn exporter_context(aead: u16, direction: KeyDirection) -> [u8; 5] {
    let p = NEXT_PROTOCOL_NTPV4.to_be_bytes();
    let a = aead.to_be_bytes();
    let d = match direction {
        KeyDirection::ClientToServer => 0,
        KeyDirection::ServerToClient => 1,
    };
    [p[0], p[1], a[0], a[1], d]
}

/// The codes of an Error record (RFC 8915 section 4.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeErrorCode(pub u16);

impl KeErrorCode {
    /// The request had a critical record the server does not know.
    pub const UNRECOGNIZED_CRITICAL_RECORD: Self = Self(0);
    /// The request was malformed.
    pub const BAD_REQUEST: Self = Self(1);
    /// The server could not answer for a reason of its own.
    pub const INTERNAL_SERVER_ERROR: Self = Self(2);

    /// The RFC's name for the code.
    pub const fn name(self) -> &'static str {
        match self.0 {
            0 => "Unrecognized Critical Record",
            1 => "Bad Request",
            2 => "Internal Server Error",
            _ => "unassigned error code",
        }
    }
}

impl core::fmt::Display for KeErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// A list of 16-bit values (protocol IDs, AEAD algorithms): as read from the wire, or as
/// given to be written.
#[derive(Clone, Copy, Debug)]
pub enum U16List<'a> {
    /// Big-endian pairs of bytes, as on the wire (an even length).
    Wire(&'a [u8]),
    /// Values to write.
    Values(&'a [u16]),
}

impl<'a> U16List<'a> {
    /// How many values.
    pub fn len(&self) -> usize {
        match self {
            Self::Wire(b) => b.len() / 2,
            Self::Values(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values, in order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + 'a {
        let (wire, values): (&'a [u8], &'a [u16]) = match *self {
            Self::Wire(b) => (b, &[]),
            Self::Values(v) => (&[], v),
        };
        wire.chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .chain(values.iter().copied())
    }

    /// Whether `value` is among them.
    pub fn contains(&self, value: u16) -> bool {
        self.iter().any(|v| v == value)
    }
}

impl PartialEq for U16List<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for U16List<'_> {}

/// What a record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeRecord<'a> {
    /// End of Message (type 0): the last record of every message.
    EndOfMessage,
    /// NTS Next Protocol Negotiation (type 1): the protocols offered or chosen.
    NextProtocol(U16List<'a>),
    /// Error (type 2): the exchange failed.
    Error(KeErrorCode),
    /// Warning (type 3): a code the receiver may act on.
    Warning(u16),
    /// AEAD Algorithm Negotiation (type 4): the algorithms offered or chosen.
    AeadAlgorithm(U16List<'a>),
    /// New Cookie for NTPv4 (type 5): one opaque cookie.
    NewCookie(&'a [u8]),
    /// NTPv4 Server Negotiation (type 6): the NTP server to use, an ASCII host name or
    /// address.
    Server(&'a str),
    /// NTPv4 Port Negotiation (type 7): the NTP port to use.
    Port(u16),
    /// A type this crate does not know, kept whole.
    Unknown {
        /// Its type (critical bit cleared).
        record_type: u16,
        /// Its body.
        body: &'a [u8],
    },
}

impl KeRecord<'_> {
    /// The record's type code.
    pub fn record_type(&self) -> u16 {
        use record_type::*;
        match self {
            Self::EndOfMessage => END_OF_MESSAGE,
            Self::NextProtocol(_) => NEXT_PROTOCOL,
            Self::Error(_) => ERROR,
            Self::Warning(_) => WARNING,
            Self::AeadAlgorithm(_) => AEAD_ALGORITHM,
            Self::NewCookie(_) => NEW_COOKIE,
            Self::Server(_) => SERVER,
            Self::Port(_) => PORT,
            Self::Unknown { record_type, .. } => *record_type,
        }
    }

    fn body_len(&self) -> usize {
        match self {
            Self::EndOfMessage => 0,
            Self::NextProtocol(l) | Self::AeadAlgorithm(l) => 2 * l.len(),
            Self::Error(_) | Self::Warning(_) | Self::Port(_) => 2,
            Self::NewCookie(b) | Self::Unknown { body: b, .. } => b.len(),
            Self::Server(s) => s.len(),
        }
    }
}

/// One record: its critical bit and what it says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The critical bit: a receiver that does not know the type must fail the exchange.
    pub critical: bool,
    /// What it says.
    pub record: KeRecord<'a>,
}

impl<'a> Record<'a> {
    /// A record without the critical bit.
    pub const fn new(record: KeRecord<'a>) -> Self {
        Self {
            critical: false,
            record,
        }
    }

    /// A record with the critical bit.
    pub const fn critical(record: KeRecord<'a>) -> Self {
        Self {
            critical: true,
            record,
        }
    }

    /// Reads the record at the start of `bytes`, which starts `offset` bytes into the
    /// message (for errors); returns it and the bytes it took.
    pub fn parse_at(bytes: &'a [u8], offset: usize) -> Result<(Self, usize), Error> {
        let header = bytes
            .first_chunk::<HEADER_LEN>()
            .ok_or(Error::KeRecordTruncated {
                offset,
                needed: HEADER_LEN,
                available: bytes.len(),
            })?;
        let type_field = u16::from_be_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let critical = type_field & CRITICAL != 0;
        let record_type = type_field & !CRITICAL;
        let body = bytes
            .get(field::BODY..field::BODY + len)
            .ok_or(Error::KeRecordTruncated {
                offset,
                needed: HEADER_LEN + len,
                available: bytes.len(),
            })?;
        let bad = |problem| Error::KeRecordBody {
            offset,
            record_type,
            len,
            problem,
        };
        let u16_body = || -> Result<u16, Error> {
            let b = body.first_chunk::<2>().ok_or(bad("is not 2 bytes"))?;
            if len != 2 {
                return Err(bad("is not 2 bytes"));
            }
            Ok(u16::from_be_bytes(*b))
        };
        let record = match record_type {
            record_type::END_OF_MESSAGE => {
                if len != 0 {
                    return Err(bad("is not empty"));
                }
                KeRecord::EndOfMessage
            }
            record_type::NEXT_PROTOCOL | record_type::AEAD_ALGORITHM => {
                if len % 2 != 0 {
                    return Err(bad("is not a list of 16-bit values"));
                }
                let list = U16List::Wire(body);
                if record_type == record_type::NEXT_PROTOCOL {
                    KeRecord::NextProtocol(list)
                } else {
                    KeRecord::AeadAlgorithm(list)
                }
            }
            record_type::ERROR => KeRecord::Error(KeErrorCode(u16_body()?)),
            record_type::WARNING => KeRecord::Warning(u16_body()?),
            record_type::NEW_COOKIE => KeRecord::NewCookie(body),
            record_type::SERVER => {
                if !body.is_ascii() {
                    return Err(bad("is not ASCII"));
                }
                // ASCII is UTF-8.
                let name = core::str::from_utf8(body).map_err(|_| bad("is not ASCII"))?;
                KeRecord::Server(name)
            }
            record_type::PORT => KeRecord::Port(u16_body()?),
            _ => KeRecord::Unknown { record_type, body },
        };
        Ok((Self { critical, record }, HEADER_LEN + len))
    }

    /// Reads the record at the start of `bytes`; returns it and the bytes it took.
    pub fn parse(bytes: &'a [u8]) -> Result<(Self, usize), Error> {
        Self::parse_at(bytes, 0)
    }

    /// Bytes [`Self::emit`] writes.
    pub fn emitted_len(&self) -> usize {
        HEADER_LEN + self.record.body_len()
    }

    /// Writes the record at the start of `out`; returns the bytes written.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        let body_len = self.record.body_len();
        let len = u16::try_from(body_len).map_err(|_| Error::KeRecordTooLong { len: body_len })?;
        let needed = HEADER_LEN + body_len;
        let available = out.len();
        let out = out
            .get_mut(..needed)
            .ok_or(Error::KeBufferTooSmall { needed, available })?;
        let type_field =
            self.record.record_type() & !CRITICAL | if self.critical { CRITICAL } else { 0 };
        out[field::TYPE].copy_from_slice(&type_field.to_be_bytes());
        out[field::LENGTH].copy_from_slice(&len.to_be_bytes());
        let body = &mut out[field::BODY..];
        match self.record {
            KeRecord::EndOfMessage => {}
            KeRecord::NextProtocol(l) | KeRecord::AeadAlgorithm(l) => {
                for (slot, v) in body.chunks_exact_mut(2).zip(l.iter()) {
                    slot.copy_from_slice(&v.to_be_bytes());
                }
            }
            KeRecord::Error(KeErrorCode(v)) | KeRecord::Warning(v) | KeRecord::Port(v) => {
                body.copy_from_slice(&v.to_be_bytes());
            }
            KeRecord::NewCookie(b) | KeRecord::Unknown { body: b, .. } => body.copy_from_slice(b),
            KeRecord::Server(s) => body.copy_from_slice(s.as_bytes()),
        }
        Ok(needed)
    }
}

/// The records of a message, in order; after an error it yields nothing more.
#[derive(Clone, Debug)]
pub struct Records<'a> {
    bytes: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> Records<'a> {
    /// The records in `bytes`.
    pub const fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            offset: 0,
            failed: false,
        }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.bytes.len() {
            return None;
        }
        match Record::parse_at(&self.bytes[self.offset..], self.offset) {
            Ok((record, used)) => {
                self.offset += used;
                Some(Ok(record))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// How much of a stream is a whole message: the length up to and including its End of
/// Message record once that has arrived, `None` while more bytes are needed. Only the
/// record headers are read, so a caller reading TLS a piece at a time asks this after
/// each piece.
pub fn message_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let header = bytes.get(at..)?.first_chunk::<HEADER_LEN>()?;
        let record_type = u16::from_be_bytes([header[0], header[1]]) & !CRITICAL;
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let end = at + HEADER_LEN + len;
        if end > bytes.len() {
            return None;
        }
        if record_type == record_type::END_OF_MESSAGE {
            return Some(end);
        }
        at = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The records of RFC 8915 section 4 as a chrony 4.3 server sends them (the layout
    /// of its response, cookie contents made up).
    #[test]
    fn a_server_response_reads_record_by_record() {
        let mut m = Vec::new();
        m.extend_from_slice(&[0x80, 0x01, 0x00, 0x02, 0x00, 0x00]); // NTPv4, critical
        m.extend_from_slice(&[0x00, 0x04, 0x00, 0x02, 0x00, 0x0f]); // AES-SIV-CMAC-256
        m.extend_from_slice(&[0x00, 0x06, 0x00, 0x09]);
        m.extend_from_slice(b"127.0.0.1"); // server
        m.extend_from_slice(&[0x00, 0x07, 0x00, 0x02, 0x01, 0x7b]); // port 379
        for i in 0..8u8 {
            m.extend_from_slice(&[0x00, 0x05, 0x00, 0x03, i, i, i]);
        }
        m.extend_from_slice(&[0x80, 0x00, 0x00, 0x00]);
        assert_eq!(message_len(&m), Some(m.len()));
        assert_eq!(message_len(&m[..m.len() - 1]), None);
        let records: Vec<_> = Records::new(&m).collect::<Result<_, _>>().unwrap();
        assert_eq!(records.len(), 13);
        assert_eq!(
            records[0],
            Record::critical(KeRecord::NextProtocol(U16List::Values(&[0])))
        );
        assert_eq!(
            records[1].record,
            KeRecord::AeadAlgorithm(U16List::Values(&[AEAD_AES_SIV_CMAC_256]))
        );
        assert_eq!(records[2].record, KeRecord::Server("127.0.0.1"));
        assert_eq!(records[3].record, KeRecord::Port(379));
        assert_eq!(records[4].record, KeRecord::NewCookie(&[0, 0, 0]));
        assert_eq!(records[12], Record::critical(KeRecord::EndOfMessage));
    }

    #[test]
    fn malformed_records_say_what_and_where() {
        // An error record of 3 bytes, after a 6-byte record.
        let m = [
            0x80, 0x01, 0x00, 0x02, 0x00, 0x00, 0x80, 0x02, 0x00, 0x03, 0, 1, 2,
        ];
        let errors: Vec<_> = Records::new(&m).filter_map(Result::err).collect();
        assert_eq!(
            errors,
            [Error::KeRecordBody {
                offset: 6,
                record_type: record_type::ERROR,
                len: 3,
                problem: "is not 2 bytes"
            }]
        );
        // A record declaring more than is there.
        assert_eq!(
            Record::parse(&[0x00, 0x05, 0x01, 0x00, 1, 2]),
            Err(Error::KeRecordTruncated {
                offset: 0,
                needed: 260,
                available: 6
            })
        );
        // An odd protocol list, a non-empty end, a server name with a byte over 127.
        assert!(Record::parse(&[0x80, 0x01, 0x00, 0x01, 0]).is_err());
        assert!(Record::parse(&[0x80, 0x00, 0x00, 0x01, 0]).is_err());
        assert!(Record::parse(&[0x00, 0x06, 0x00, 0x01, 0xc3]).is_err());
        // An unknown critical record is kept as such, for the caller to refuse.
        let (r, used) = Record::parse(&[0x80, 0x63, 0x00, 0x01, 7]).unwrap();
        assert_eq!(used, 5);
        assert_eq!(
            r,
            Record::critical(KeRecord::Unknown {
                record_type: 0x63,
                body: &[7]
            })
        );
    }

    #[test]
    fn an_emit_into_a_short_buffer_or_of_an_oversized_body_fails() {
        let mut buf = [0u8; 5];
        assert_eq!(
            Record::new(KeRecord::NewCookie(&[1, 2])).emit(&mut buf),
            Err(Error::KeBufferTooSmall {
                needed: 6,
                available: 5
            })
        );
        let big = [0u8; 70_000];
        let mut out = [0u8; 70_010];
        assert_eq!(
            Record::new(KeRecord::NewCookie(&big)).emit(&mut out),
            Err(Error::KeRecordTooLong { len: 70_000 })
        );
    }

    #[test]
    fn exporter_contexts_are_the_rfcs() {
        assert_eq!(
            exporter_context(AEAD_AES_SIV_CMAC_256, KeyDirection::ClientToServer),
            [0, 0, 0, 15, 0]
        );
        assert_eq!(
            exporter_context(AEAD_AES_SIV_CMAC_256, KeyDirection::ServerToClient),
            [0, 0, 0, 15, 1]
        );
    }

    fn any_record() -> impl Strategy<Value = (bool, u16, Vec<u8>)> {
        (
            any::<bool>(),
            0u16..0x8000,
            proptest::collection::vec(any::<u8>(), 0..64),
        )
    }

    proptest! {
        /// Any bytes: no panic, and every record read is written back to the same bytes.
        #[test]
        fn any_bytes_parse_and_what_parses_round_trips(
            bytes in proptest::collection::vec(any::<u8>(), 0..256)
        ) {
            let mut at = 0;
            for r in Records::new(&bytes) {
                let Ok(r) = r else { break };
                let mut out = [0u8; 300];
                let n = r.emit(&mut out).unwrap();
                prop_assert_eq!(&out[..n], &bytes[at..at + n]);
                at += n;
            }
            let _ = message_len(&bytes);
        }

        /// A record made of any type and body, written and read, is itself; the message
        /// length finds its end.
        #[test]
        fn records_round_trip((critical, ty, body) in any_record()) {
            let mut buf = [0u8; 80];
            let n = Record { critical, record: KeRecord::Unknown { record_type: ty, body: &body } }
                .emit(&mut buf)
                .unwrap();
            match Record::parse(&buf[..n]) {
                Ok((r, used)) => {
                    prop_assert_eq!(used, n);
                    prop_assert_eq!(r.critical, critical);
                    prop_assert_eq!(r.record.record_type(), ty);
                    let mut again = [0u8; 80];
                    let m = r.emit(&mut again).unwrap();
                    prop_assert_eq!(&again[..m], &buf[..n]);
                }
                // A known type whose body does not fit it.
                Err(Error::KeRecordBody { record_type, .. }) => prop_assert_eq!(record_type, ty),
                Err(e) => prop_assert!(false, "{e}"),
            }
            let eom = Record::critical(KeRecord::EndOfMessage).emit(&mut buf[n..]).unwrap();
            prop_assert_eq!(message_len(&buf[..n + eom]), Some(n + eom));
        }
    }
}
