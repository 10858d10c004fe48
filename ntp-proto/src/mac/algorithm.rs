//! The MAC algorithms and their key and digest lengths: plain values, which the crate's
//! error type names and the MAC code computes with.

/// The MAC algorithms of NTP's symmetric keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MacAlgorithm {
    /// MD5 over key then packet (RFC 5905; deprecated by RFC 8573).
    Md5,
    /// SHA-1 over key then packet (ntpd and chrony's "SHA1" keys).
    Sha1,
    /// AES-128-CMAC over the packet (RFC 8573, the recommended one).
    AesCmac128,
}

impl MacAlgorithm {
    /// Digest length in bytes.
    pub const fn digest_len(self) -> usize {
        match self {
            Self::Md5 | Self::AesCmac128 => 16,
            Self::Sha1 => 20,
        }
    }

    /// Whether a key of `len` bytes suits this algorithm: 16 for AES-128-CMAC; 1 to 64 for
    /// the hashes (ntpd takes up to 20 ASCII or 40 hex characters; chrony longer).
    pub const fn accepts_key_len(self, len: usize) -> bool {
        match self {
            Self::AesCmac128 => len == 16,
            Self::Md5 | Self::Sha1 => len >= 1 && len <= 64,
        }
    }

    pub(crate) const fn key_len_text(self) -> &'static str {
        match self {
            Self::AesCmac128 => "exactly 16 bytes",
            Self::Md5 | Self::Sha1 => "1 to 64 bytes",
        }
    }
}
