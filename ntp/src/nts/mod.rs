//! Network Time Security (RFC 8915), sans-IO: the key exchange ([`KeClient`],
//! [`KeServer`]) as bytes in and out over the caller's TLS, the AEAD
//! ([`AeadAlgorithm`], [`AeadKey`]), the server's stateless cookies ([`CookieKeys`]),
//! and NTS-protected NTP packets on both sides ([`NtsClient`], [`read_nts_request`],
//! [`write_nts_response`], [`write_nts_nak`]).

mod aead;
mod cookie;
mod ke;
mod packet;

pub use aead::{AeadAlgorithm, AeadKey, MAX_KEY_LEN, NONCE_LEN, TAG_LEN};
pub use cookie::{CookieKeys, MASTER_KEY_LEN, NtsKeys, cookie_len};
pub use ke::{
    COOKIES_PER_EXCHANGE, KeClient, KeRequest, KeResponse, KeServer, MAX_MESSAGE_LEN, ke_error,
    ke_response,
};
pub use packet::{
    NtsClient, NtsRefusal, NtsRequest, UID_LEN, read_nts_request, write_nts_nak, write_nts_response,
};

use tempora_ntp_proto::nts_ke::KeErrorCode;

/// What went wrong in a key exchange or with an NTS packet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NtsError {
    /// A key of the wrong length for its algorithm.
    #[error("{algorithm} key is {len} bytes, it needs {}", algorithm.key_len())]
    KeyLength {
        /// The algorithm.
        algorithm: AeadAlgorithm,
        /// The length given.
        len: usize,
    },
    /// An AEAD nonce of the wrong length.
    #[error("AEAD nonce is {len} bytes, AES-SIV takes 16")]
    NonceLength {
        /// The length given.
        len: usize,
    },
    /// A tag did not verify: forged, damaged, or sealed with another key.
    #[error(
        "authentication failed: the packet or cookie was forged, damaged or sealed with another key"
    )]
    Authentication,
    /// An NTS-KE message longer than this side reads.
    #[error("NTS-KE message longer than {limit} bytes")]
    KeMessageTooLong {
        /// The limit.
        limit: usize,
    },
    /// A malformed NTS-KE record.
    #[error("NTS-KE: {0}")]
    KeMalformed(tempora_ntp_proto::Error),
    /// A negotiation record sent twice.
    #[error("NTS-KE record type {record_type} sent twice")]
    KeDuplicateRecord {
        /// Its type.
        record_type: u16,
    },
    /// The server answered with an Error record.
    #[error("the NTS-KE server refused: {code}")]
    KeRefused {
        /// Its code.
        code: KeErrorCode,
    },
    /// No NTPv4 in the Next Protocol record (or none sent).
    #[error("NTS-KE: no agreement on NTPv4 as the next protocol")]
    KeNoProtocol,
    /// No AEAD algorithm in common (or none sent).
    #[error("NTS-KE: no AEAD algorithm in common")]
    KeNoAlgorithm,
    /// The server chose an algorithm the client did not offer.
    #[error("NTS-KE: the server chose AEAD algorithm {id}, which was not offered")]
    KeAlgorithmNotOffered {
        /// Its ID.
        id: u16,
    },
    /// The server's answer has no cookie.
    #[error("NTS-KE: the server gave no cookies")]
    KeNoCookies,
    /// An empty cookie.
    #[error("NTS-KE: an empty cookie")]
    KeEmptyCookie,
    /// A critical record of a type this side does not know.
    #[error("NTS-KE: critical record of unknown type {record_type}")]
    KeUnrecognizedCritical {
        /// Its type.
        record_type: u16,
    },
    /// A malformed NTP packet or extension field.
    #[error("NTS packet: {0}")]
    Packet(tempora_ntp_proto::Error),
    /// No cookies left to send a request with: a new key exchange is due.
    #[error("no NTS cookies left: a new key exchange is due")]
    NoCookies,
    /// A field NTS requires is missing.
    #[error("NTS packet without its {what}")]
    MissingField {
        /// Which.
        what: &'static str,
    },
    /// A field that may appear once appears twice.
    #[error("NTS packet with two of its {what}")]
    DuplicateField {
        /// Which.
        what: &'static str,
    },
    /// The answer's Unique Identifier is not the request's.
    #[error("NTS answer to another request (unique identifier differs)")]
    UidMismatch,
    /// An answer when no request is in flight (a replay, or a duplicate).
    #[error("NTS answer with no request in flight")]
    NotPending,
    /// The server said NTS NAK: a new key exchange is due.
    #[error("NTS NAK: the server could not use the cookie; a new key exchange is due")]
    Nak,
    /// A cookie of no shape this server makes.
    #[error("NTS cookie of {len} bytes is not one of this server's")]
    CookieMalformed {
        /// Its length.
        len: usize,
    },
    /// A cookie sealed with a master key no longer kept (or never this server's).
    #[error("NTS cookie sealed with key {id}, which this server no longer has")]
    UnknownCookieKey {
        /// The key ID in the cookie.
        id: u32,
    },
    /// A bad line in a cookie key file.
    #[error("NTS cookie key file line {line} {problem}")]
    KeyFile {
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        problem: &'static str,
    },
}

impl NtsError {
    /// The Error record a KE server answers a failed request with.
    pub fn ke_error_code(&self) -> KeErrorCode {
        match self {
            Self::KeUnrecognizedCritical { .. } => KeErrorCode::UNRECOGNIZED_CRITICAL_RECORD,
            Self::KeMalformed(_)
            | Self::KeMessageTooLong { .. }
            | Self::KeDuplicateRecord { .. }
            | Self::KeNoProtocol
            | Self::KeNoAlgorithm => KeErrorCode::BAD_REQUEST,
            _ => KeErrorCode::INTERNAL_SERVER_ERROR,
        }
    }
}
