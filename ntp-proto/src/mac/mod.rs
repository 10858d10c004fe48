//! The legacy MAC trailer (RFC 5905 section 7.3, RFC 8573): a 32-bit key ID and a digest.
//!
//! The trailer is read and written by [`crate::NtpPacket`] and [`crate::PacketBuilder`]
//! without any feature. With the `mac` feature, [`MacKey`] computes and verifies the
//! digests: MD5 and SHA-1 as `hash(key || packet)` (ntpd's and chrony's legacy keys) and
//! AES-128-CMAC (RFC 8573), compared in constant time.

pub(crate) mod algorithm;

pub use algorithm::MacAlgorithm;

use crate::Error;
use crate::buffer::output_prefix;

/// Length of the key ID.
pub const KEY_ID_LEN: usize = 4;
/// Length of a crypto-NAK: a key ID (zero) and no digest.
pub const CRYPTO_NAK_LEN: usize = KEY_ID_LEN;
/// Length of a MAC with a 16-byte digest (MD5 or AES-CMAC).
pub const MAC_LEN_16: usize = KEY_ID_LEN + 16;
/// Length of a MAC with a 20-byte digest (SHA-1).
pub const MAC_LEN_20: usize = KEY_ID_LEN + 20;
/// The longest digest.
pub const MAX_DIGEST_LEN: usize = 20;

/// Whether `len` trailing bytes are a MAC by their length (RFC 7822 section 7.5): a
/// crypto-NAK (4), a 16-byte digest (20) or a 20-byte digest (24).
pub const fn is_mac_len(len: usize) -> bool {
    matches!(len, CRYPTO_NAK_LEN | MAC_LEN_16 | MAC_LEN_20)
}

/// A MAC trailer as it stands in a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mac<'a> {
    /// Key ID.
    pub key_id: u32,
    /// The digest: 16 or 20 bytes, or empty for a crypto-NAK.
    pub digest: &'a [u8],
}

impl<'a> Mac<'a> {
    /// Reads a trailer of exactly 4, 20 or 24 bytes; `None` for any other length.
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        if !is_mac_len(bytes.len()) {
            return None;
        }
        let (id, digest) = bytes.split_first_chunk::<KEY_ID_LEN>()?;
        Some(Self {
            key_id: u32::from_be_bytes(*id),
            digest,
        })
    }

    /// A crypto-NAK (RFC 5905 section 7.4): key ID zero and no digest, the answer of a
    /// server that could not authenticate a request.
    pub const CRYPTO_NAK: Mac<'static> = Mac {
        key_id: 0,
        digest: &[],
    };

    /// Whether this is a crypto-NAK.
    pub fn is_crypto_nak(&self) -> bool {
        self.digest.is_empty()
    }

    /// Bytes the trailer takes.
    pub const fn buffer_len(&self) -> usize {
        KEY_ID_LEN + self.digest.len()
    }

    /// Writes the trailer to the start of `buffer`; returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, Error> {
        let len = self.buffer_len();
        let out = output_prefix(buffer, len)?;
        let (id, digest) = out.split_at_mut(KEY_ID_LEN);
        id.copy_from_slice(&self.key_id.to_be_bytes());
        digest.copy_from_slice(self.digest);
        Ok(len)
    }
}

/// A symmetric key: its ID, algorithm and secret.
#[cfg(feature = "mac")]
#[derive(Clone, Copy)]
pub struct MacKey<'k> {
    id: u32,
    algorithm: MacAlgorithm,
    secret: &'k [u8],
}

#[cfg(feature = "mac")]
impl core::fmt::Debug for MacKey<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the secret.
        f.debug_struct("MacKey")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "mac")]
impl<'k> MacKey<'k> {
    /// A key, checked to have a length its algorithm accepts.
    pub fn new(id: u32, algorithm: MacAlgorithm, secret: &'k [u8]) -> Result<Self, Error> {
        if !algorithm.accepts_key_len(secret.len()) {
            return Err(Error::InvalidKeyLength {
                algorithm,
                len: secret.len(),
            });
        }
        Ok(Self {
            id,
            algorithm,
            secret,
        })
    }

    /// The key ID.
    pub const fn id(&self) -> u32 {
        self.id
    }

    /// The algorithm.
    pub const fn algorithm(&self) -> MacAlgorithm {
        self.algorithm
    }

    /// Computes the digest of `message` (the packet up to the MAC) into `out`; returns the
    /// digest length.
    pub fn compute(&self, message: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        use cmac::Mac as _;
        use md5::Digest as _;

        let len = self.algorithm.digest_len();
        let out = output_prefix(out, len)?;
        match self.algorithm {
            MacAlgorithm::Md5 => out.copy_from_slice(
                &md5::Md5::new()
                    .chain_update(self.secret)
                    .chain_update(message)
                    .finalize(),
            ),
            MacAlgorithm::Sha1 => out.copy_from_slice(
                &sha1::Sha1::new()
                    .chain_update(self.secret)
                    .chain_update(message)
                    .finalize(),
            ),
            MacAlgorithm::AesCmac128 => {
                let mut cmac =
                    cmac::Cmac::<aes::Aes128>::new_from_slice(self.secret).map_err(|_| {
                        Error::InvalidKeyLength {
                            algorithm: self.algorithm,
                            len: self.secret.len(),
                        }
                    })?;
                cmac.update(message);
                out.copy_from_slice(&cmac.finalize().into_bytes());
            }
        }
        Ok(len)
    }

    /// Checks `digest` against the digest of `message`, in constant time.
    pub fn verify(&self, message: &[u8], digest: &[u8]) -> Result<(), Error> {
        use subtle::ConstantTimeEq as _;

        if digest.len() != self.algorithm.digest_len() {
            return Err(Error::MacLengthMismatch {
                algorithm: self.algorithm,
                len: digest.len(),
            });
        }
        let mut expected = [0u8; MAX_DIGEST_LEN];
        let len = self.compute(message, &mut expected)?;
        if bool::from(expected[..len].ct_eq(digest)) {
            Ok(())
        } else {
            Err(Error::MacMismatch { key_id: self.id })
        }
    }

    /// Verifies a whole packet's MAC, looking its key up by ID. Returns the key ID.
    pub fn verify_packet<'p, F>(packet: &'p [u8], lookup: F) -> Result<u32, Error>
    where
        F: FnOnce(u32) -> Option<MacKey<'p>>,
    {
        let parsed = crate::NtpPacket::parse(packet)?;
        let mac = parsed.mac.ok_or(Error::MacMissing)?;
        if mac.is_crypto_nak() {
            return Err(Error::MacMissing);
        }
        let key = lookup(mac.key_id).ok_or(Error::UnknownKey { key_id: mac.key_id })?;
        let covered = packet
            .len()
            .checked_sub(mac.buffer_len())
            .and_then(|end| packet.get(..end))
            .ok_or(Error::MacMissing)?;
        key.verify(covered, mac.digest)?;
        Ok(mac.key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_lengths() {
        assert!(is_mac_len(4) && is_mac_len(20) && is_mac_len(24));
        assert!(!is_mac_len(0) && !is_mac_len(16) && !is_mac_len(28) && !is_mac_len(12));
        assert_eq!(Mac::parse(&[0; 16]), None);
    }

    #[test]
    fn trailer_both_ways() {
        let mut bytes = [0u8; 24];
        bytes[..4].copy_from_slice(&7u32.to_be_bytes());
        bytes[4..].copy_from_slice(&[0x5A; 20]);
        let mac = Mac::parse(&bytes).unwrap();
        assert_eq!(mac.key_id, 7);
        assert_eq!(mac.digest, &[0x5A; 20]);
        let mut out = [0u8; 24];
        assert_eq!(mac.emit(&mut out), Ok(24));
        assert_eq!(out, bytes);
        let nak = Mac::parse(&[0, 0, 0, 0]).unwrap();
        assert!(nak.is_crypto_nak());
        assert_eq!(nak, Mac::CRYPTO_NAK);
    }

    #[cfg(feature = "mac")]
    mod keyed {
        use super::super::*;

        #[test]
        fn aes_cmac_matches_rfc_4493_vectors() {
            // RFC 4493 section 4, example 2 (16-byte message) and example 1 (empty).
            let key = [
                0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf,
                0x4f, 0x3c,
            ];
            let message = [
                0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93,
                0x17, 0x2a,
            ];
            let expected = [
                0x07, 0x0a, 0x16, 0xb4, 0x6b, 0x4d, 0x41, 0x44, 0xf7, 0x9b, 0xdd, 0x9d, 0xd0, 0x4a,
                0x28, 0x7c,
            ];
            let empty_expected = [
                0xbb, 0x1d, 0x69, 0x29, 0xe9, 0x59, 0x37, 0x28, 0x7f, 0xa3, 0x7d, 0x12, 0x9b, 0x75,
                0x67, 0x46,
            ];
            let k = MacKey::new(1, MacAlgorithm::AesCmac128, &key).unwrap();
            let mut out = [0u8; 20];
            assert_eq!(k.compute(&message, &mut out), Ok(16));
            assert_eq!(out[..16], expected);
            assert_eq!(k.verify(&message, &expected), Ok(()));
            assert_eq!(k.verify(&[], &empty_expected), Ok(()));
        }

        #[test]
        fn md5_and_sha1_are_hash_of_key_then_message() {
            // md5("abc") and sha1("abc") split as key "a" and message "bc".
            let md5 = MacKey::new(2, MacAlgorithm::Md5, b"a").unwrap();
            let mut out = [0u8; 20];
            md5.compute(b"bc", &mut out).unwrap();
            assert_eq!(
                out[..16],
                [
                    0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0, 0xd6, 0x96, 0x3f, 0x7d, 0x28,
                    0xe1, 0x7f, 0x72
                ]
            );
            let sha1 = MacKey::new(3, MacAlgorithm::Sha1, b"a").unwrap();
            sha1.compute(b"bc", &mut out).unwrap();
            assert_eq!(
                out,
                [
                    0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e, 0x25, 0x71, 0x78,
                    0x50, 0xc2, 0x6c, 0x9c, 0xd0, 0xd8, 0x9d
                ]
            );
        }

        #[test]
        fn wrong_digest_key_and_lengths_are_errors() {
            let key = MacKey::new(9, MacAlgorithm::Md5, b"secret").unwrap();
            assert_eq!(
                key.verify(b"message", &[0; 16]),
                Err(Error::MacMismatch { key_id: 9 })
            );
            assert_eq!(
                key.verify(b"message", &[0; 20]),
                Err(Error::MacLengthMismatch {
                    algorithm: MacAlgorithm::Md5,
                    len: 20
                })
            );
            assert_eq!(
                MacKey::new(1, MacAlgorithm::AesCmac128, &[0; 15]).map(|k| k.id()),
                Err(Error::InvalidKeyLength {
                    algorithm: MacAlgorithm::AesCmac128,
                    len: 15
                })
            );
            assert!(MacKey::new(1, MacAlgorithm::Sha1, &[]).is_err());
            assert_eq!(
                key.compute(b"m", &mut [0u8; 8]),
                Err(Error::BufferTooSmall {
                    needed: 16,
                    available: 8
                })
            );
            let debug = format!("{key:?}");
            assert!(!debug.contains("secret"), "{debug}");
        }
    }
}
