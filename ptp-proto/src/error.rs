//! The one error type of this crate.

/// What was wrong with a message, a TLV or a call, and where. Offsets are from the start of
/// the PTP message (the first byte of the common header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than a structure needs.
    #[error("{what} needs {needed} bytes at byte {offset}, only {available} are there")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes that are there.
        available: usize,
    },
    /// messageLength disagrees with the buffer or is below the message type's minimum.
    #[error(
        "messageLength {declared} does not fit: buffer has {buffer} bytes, {message} needs at least {minimum}"
    )]
    BadMessageLength {
        /// The declared messageLength.
        declared: usize,
        /// The buffer length.
        buffer: usize,
        /// The message type's name.
        message: &'static str,
        /// The minimum for the type.
        minimum: usize,
    },
    /// versionPTP is not 2 (minorVersionPTP 0 and 1 are taken; others reported).
    #[error("PTP version {major}.{minor} is not supported (2.0 and 2.1 are)")]
    UnsupportedVersion {
        /// versionPTP.
        major: u8,
        /// minorVersionPTP.
        minor: u8,
    },
    /// A message type value that 1588 reserves.
    #[error("message type {value:#x} is reserved")]
    ReservedMessageType {
        /// The 4-bit value.
        value: u8,
    },
    /// Nanoseconds of a timestamp at or above 10^9.
    #[error("timestamp nanoseconds {nanos} is not below one second")]
    InvalidNanoseconds {
        /// The value.
        nanos: u32,
    },
    /// Seconds beyond the 48 bits of a PTP timestamp.
    #[error("timestamp seconds {seconds} do not fit 48 bits")]
    SecondsOutOfRange {
        /// The value.
        seconds: u64,
    },
    /// A TLV declares more bytes than the message has left.
    #[error("TLV at byte {offset} declares {length} value bytes, only {available} are left")]
    TlvOverrun {
        /// Where the TLV starts.
        offset: usize,
        /// Its lengthField.
        length: usize,
        /// Bytes left after its 4-byte header.
        available: usize,
    },
    /// A TLV's lengthField is odd (1588 requires an even length).
    #[error("TLV at byte {offset} has odd length {length}")]
    TlvOddLength {
        /// Where the TLV starts.
        offset: usize,
        /// Its lengthField.
        length: usize,
    },
    /// A typed TLV's value is shorter than its fixed fields, or its inner lengths overrun.
    #[error("{what} TLV value is {length} bytes, {needed} are needed")]
    TlvTooShort {
        /// Which TLV.
        what: &'static str,
        /// Its lengthField.
        length: usize,
        /// What its fields need.
        needed: usize,
    },
    /// A typed TLV was read from a TLV of another type.
    #[error("TLV type {found:#06x} where {expected:#06x} was expected")]
    WrongTlvType {
        /// The type expected.
        expected: u16,
        /// The type found.
        found: u16,
    },
    /// Management data of the wrong length for its management ID.
    #[error("management ID {id:#06x} data is {length} bytes, {expected} expected")]
    ManagementDataLength {
        /// The management ID.
        id: u16,
        /// The data length found.
        length: usize,
        /// The length its layout has.
        expected: usize,
    },
    /// A text longer than 255 bytes (PTPText has an 8-bit length).
    #[error("text of {len} bytes is longer than 255")]
    TextTooLong {
        /// Its length.
        len: usize,
    },
    /// The output buffer is too small.
    #[error("output buffer has {available} bytes, {needed} are needed")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A message longer than a 16-bit messageLength can say.
    #[error("message of {len} bytes is longer than 65535")]
    MessageTooLong {
        /// Its length.
        len: usize,
    },
    /// An Ethernet frame whose type is not PTP (0x88F7), after an optional 802.1Q tag.
    #[error("Ethernet type {ethertype:#06x} is not PTP (0x88f7)")]
    NotPtpEthertype {
        /// The EtherType found.
        ethertype: u16,
    },
}
