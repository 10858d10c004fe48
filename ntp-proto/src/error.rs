//! The one error type of this crate.

use crate::mac::algorithm::MacAlgorithm;

/// What was wrong with a packet, a field or a call, and where.
///
/// Offsets are byte offsets from the start of the NTP packet (the first byte of the
/// header), so they can be matched against a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the 48-byte NTP header.
    #[error("packet is {len} bytes, the NTP header needs 48")]
    Truncated {
        /// Length of the buffer that was given.
        len: usize,
    },
    /// The version number is older than NTPv3 (0, 1 or 2).
    #[error("NTP version {version} is older than the versions accepted (3 and 4)")]
    VersionTooOld {
        /// The version number found in the packet.
        version: u8,
    },
    /// The version number is newer than NTPv4 (5, 6 or 7).
    #[error("NTP version {version} is newer than the versions accepted (3 and 4)")]
    VersionTooNew {
        /// The version number found in the packet.
        version: u8,
    },
    /// A mode 6 (control, ntpq) packet: never to be read as a time packet.
    #[error("mode 6 (control) packet: not a time packet")]
    ControlMessage,
    /// A mode 7 (private, ntpdc/monlist) packet: never to be read as a time packet.
    #[error("mode 7 (private) packet: not a time packet")]
    PrivateMessage,
    /// The bytes after the header end in a piece too short to be an extension field header.
    #[error("{len} bytes left at byte {offset}: too few for an extension field or a MAC")]
    TrailerTruncated {
        /// Where the leftover bytes start.
        offset: usize,
        /// How many bytes are left.
        len: usize,
    },
    /// An extension field declares a length under the minimum of 16 bytes (RFC 7822).
    #[error("extension field at byte {offset} has length {length}, minimum is 16")]
    ExtensionFieldTooShort {
        /// Where the extension field starts.
        offset: usize,
        /// The length it declares.
        length: usize,
    },
    /// An extension field declares a length that is not a multiple of 4 (RFC 7822).
    #[error("extension field at byte {offset} has length {length}, not a multiple of 4")]
    ExtensionFieldMisaligned {
        /// Where the extension field starts.
        offset: usize,
        /// The length it declares.
        length: usize,
    },
    /// An extension field declares more bytes than the packet has left.
    #[error(
        "extension field at byte {offset} has length {length}, only {available} bytes are left"
    )]
    ExtensionFieldOverrun {
        /// Where the extension field starts.
        offset: usize,
        /// The length it declares.
        length: usize,
        /// How many bytes the packet has from `offset` on.
        available: usize,
    },
    /// With no MAC after it, the last extension field must be at least 28 bytes (RFC 7822),
    /// so it cannot be mistaken for a MAC.
    #[error(
        "last extension field at byte {offset} has length {length}, minimum is 28 when no MAC follows"
    )]
    LastExtensionFieldTooShort {
        /// Where the extension field starts.
        offset: usize,
        /// The length it declares.
        length: usize,
    },
    /// An NTPv3 packet carries a trailer that is no MAC length (4, 20 or 24 bytes).
    #[error("NTPv3 trailer at byte {offset} is {len} bytes; a MAC is 4, 20 or 24")]
    InvalidMacLength {
        /// Where the trailer starts.
        offset: usize,
        /// Its length.
        len: usize,
    },
    /// The output buffer is too small for what is to be written.
    #[error("output buffer has {available} bytes, {needed} are needed")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A response would be longer than the request it answers (an amplifier).
    #[error("response of {response_len} bytes would be longer than its {request_len}-byte request")]
    ResponseTooLong {
        /// Length of the request.
        request_len: usize,
        /// Length the response would have.
        response_len: usize,
    },
    /// An extension field value longer than a 16-bit length can describe.
    #[error("extension field value of {len} bytes is longer than 65528")]
    ExtensionFieldTooLong {
        /// The value length asked for.
        len: usize,
    },
    /// Extension fields were to be written into an NTPv3 packet, which has none.
    #[error("NTPv3 packets carry no extension fields")]
    ExtensionFieldInV3,
    /// A typed extension field was read from a field of another type.
    #[error("extension field type {found:#06x} where {expected:#06x} was expected")]
    WrongExtensionFieldType {
        /// The type code that the typed field has.
        expected: u16,
        /// The type code that was found.
        found: u16,
    },
    /// An NTS Unique Identifier is shorter than the 32 bytes RFC 8915 section 5.3 demands.
    #[error("NTS unique identifier is {len} bytes, minimum is 32")]
    NtsUniqueIdentifierTooShort {
        /// Its length.
        len: usize,
    },
    /// An NTS Authenticator body is too short for its nonce and ciphertext length fields.
    #[error("NTS authenticator body is {body_len} bytes, too short for its 4-byte length fields")]
    NtsAuthenticatorTruncated {
        /// Length of the body.
        body_len: usize,
    },
    /// An NTS Authenticator's nonce and ciphertext (each padded to 4) exceed its body.
    #[error(
        "NTS authenticator declares nonce {nonce_len} and ciphertext {ciphertext_len} bytes, its body has only {body_len}"
    )]
    NtsAuthenticatorOverrun {
        /// The declared nonce length.
        nonce_len: usize,
        /// The declared ciphertext length.
        ciphertext_len: usize,
        /// Length of the body.
        body_len: usize,
    },
    /// Nanoseconds outside `0..1_000_000_000`.
    #[error("{nanos} nanoseconds is not below one second")]
    InvalidNanoseconds {
        /// The value given.
        nanos: u32,
    },
    /// A reference clock name longer than the 4 bytes of a reference ID.
    #[error("reference clock name is {len} bytes, at most 4 fit in a reference ID")]
    ReferenceNameTooLong {
        /// Its length.
        len: usize,
    },
    /// A server response was asked for a packet that is no request (not client or
    /// symmetric-active mode).
    #[error("mode {mode} packet is not a request a server answers")]
    NotARequest {
        /// The raw mode of the packet.
        mode: u8,
    },
    /// A MAC key of the wrong length for its algorithm.
    #[error("{algorithm:?} key is {len} bytes: {algorithm:?} needs {}", algorithm.key_len_text())]
    InvalidKeyLength {
        /// The algorithm.
        algorithm: MacAlgorithm,
        /// The key length given.
        len: usize,
    },
    /// The packet carries no MAC where one was required.
    #[error("packet carries no MAC")]
    MacMissing,
    /// The MAC's digest length does not match the key's algorithm.
    #[error("MAC digest is {len} bytes, {algorithm:?} gives {}", algorithm.digest_len())]
    MacLengthMismatch {
        /// The key's algorithm.
        algorithm: MacAlgorithm,
        /// The digest length in the packet.
        len: usize,
    },
    /// The MAC does not verify with the key of its key ID.
    #[error("MAC with key ID {key_id} does not verify")]
    MacMismatch {
        /// The key ID in the packet.
        key_id: u32,
    },
    /// The packet's key ID names no key the caller has.
    #[error("no key with ID {key_id}")]
    UnknownKey {
        /// The key ID in the packet.
        key_id: u32,
    },
    /// An NTS-KE record runs past the bytes given (offsets count from the start of the
    /// NTS-KE message, not of an NTP packet).
    #[error("NTS-KE record at byte {offset} needs {needed} bytes, {available} are there")]
    KeRecordTruncated {
        /// Where the record starts.
        offset: usize,
        /// Bytes the record needs (its 4-byte header and the body length it declares).
        needed: usize,
        /// Bytes there from its start.
        available: usize,
    },
    /// An NTS-KE record's body does not fit its type (RFC 8915 section 4.1).
    #[error("NTS-KE record type {record_type} at byte {offset}: body of {len} bytes {problem}")]
    KeRecordBody {
        /// Where the record starts.
        offset: usize,
        /// Its type (critical bit cleared).
        record_type: u16,
        /// Its body length.
        len: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// An NTS-KE record's body is over 65,535 bytes, more than its length field holds.
    #[error("NTS-KE record body of {len} bytes does not fit its 16-bit length")]
    KeRecordTooLong {
        /// The body's length.
        len: usize,
    },
    /// The output buffer is too small for an NTS-KE record.
    #[error("NTS-KE record needs {needed} bytes, the buffer has {available}")]
    KeBufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes there.
        available: usize,
    },
}
