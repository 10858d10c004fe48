//! The AEAD algorithms NTS uses (RFC 8915 section 5.1), through RustCrypto's `aes-siv`:
//! AES-SIV-CMAC-256 (id 15, which every implementation has) and AES-SIV-CMAC-512 (17).
//! Both take a 16-byte nonce and put the 16-byte synthetic IV (the tag) before the
//! ciphertext, as RFC 5297 and every NTS peer do.

use alloc::vec::Vec;

use aes_siv::aead::{Aead, KeyInit, Payload};
use aes_siv::{Aes128SivAead, Aes256SivAead, Nonce};

use super::NtsError;
use tempora_ntp_proto::nts_ke::{AEAD_AES_SIV_CMAC_256, AEAD_AES_SIV_CMAC_512};

/// Bytes of the nonce both algorithms take.
pub const NONCE_LEN: usize = 16;
/// Bytes the tag adds to a plaintext.
pub const TAG_LEN: usize = 16;
/// The longest key (AES-SIV-CMAC-512).
pub const MAX_KEY_LEN: usize = 64;

/// An AEAD algorithm of NTS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AeadAlgorithm {
    /// AEAD_AES_SIV_CMAC_256 (15): two 128-bit AES keys.
    AesSivCmac256,
    /// AEAD_AES_SIV_CMAC_512 (17): two 256-bit AES keys.
    AesSivCmac512,
}

impl AeadAlgorithm {
    /// Every algorithm, in the order a client offers them (the most common first, so
    /// that any server finds one).
    pub const ALL: [Self; 2] = [Self::AesSivCmac256, Self::AesSivCmac512];

    /// The IANA number NTS-KE uses.
    pub const fn id(self) -> u16 {
        match self {
            Self::AesSivCmac256 => AEAD_AES_SIV_CMAC_256,
            Self::AesSivCmac512 => AEAD_AES_SIV_CMAC_512,
        }
    }

    /// The algorithm of an IANA number, if this crate has it.
    pub const fn from_id(id: u16) -> Option<Self> {
        match id {
            AEAD_AES_SIV_CMAC_256 => Some(Self::AesSivCmac256),
            AEAD_AES_SIV_CMAC_512 => Some(Self::AesSivCmac512),
            _ => None,
        }
    }

    /// Bytes of its key.
    pub const fn key_len(self) -> usize {
        match self {
            Self::AesSivCmac256 => 32,
            Self::AesSivCmac512 => 64,
        }
    }

    /// Its RFC name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::AesSivCmac256 => "AES-SIV-CMAC-256",
            Self::AesSivCmac512 => "AES-SIV-CMAC-512",
        }
    }
}

impl core::fmt::Display for AeadAlgorithm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A key of one algorithm. Its bytes are never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AeadKey {
    algorithm: AeadAlgorithm,
    bytes: [u8; MAX_KEY_LEN],
}

impl core::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "AeadKey({}, ..)", self.algorithm)
    }
}

impl AeadKey {
    /// A key of `algorithm` from exactly its length of bytes.
    pub fn new(algorithm: AeadAlgorithm, key: &[u8]) -> Result<Self, NtsError> {
        if key.len() != algorithm.key_len() {
            return Err(NtsError::KeyLength {
                algorithm,
                len: key.len(),
            });
        }
        let mut bytes = [0u8; MAX_KEY_LEN];
        bytes[..key.len()].copy_from_slice(key);
        Ok(Self { algorithm, bytes })
    }

    /// An AES-SIV-CMAC-256 key (its length known at compile time, so nothing can fail).
    pub fn aes_siv_cmac_256(key: [u8; 32]) -> Self {
        let mut bytes = [0u8; MAX_KEY_LEN];
        bytes[..32].copy_from_slice(&key);
        Self {
            algorithm: AeadAlgorithm::AesSivCmac256,
            bytes,
        }
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> AeadAlgorithm {
        self.algorithm
    }

    /// Its bytes (for a key file: handle with care).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.algorithm.key_len()]
    }

    /// Encrypts `plaintext` and authenticates it with `associated_data`: the tag, then the
    /// ciphertext.
    pub fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        associated_data: &[u8],
        plaintext: &[u8],
    ) -> Vec<u8> {
        let payload = Payload {
            msg: plaintext,
            aad: associated_data,
        };
        let nonce = Nonce::from_slice(nonce);
        // Encryption with a key of the right length cannot fail (aes-siv errs only when
        // the output would exceed its length limit, far above a UDP datagram).
        let sealed = match self.algorithm {
            AeadAlgorithm::AesSivCmac256 => Aes128SivAead::new_from_slice(self.as_bytes())
                .ok()
                .and_then(|c| c.encrypt(nonce, payload).ok()),
            AeadAlgorithm::AesSivCmac512 => Aes256SivAead::new_from_slice(self.as_bytes())
                .ok()
                .and_then(|c| c.encrypt(nonce, payload).ok()),
        };
        sealed.unwrap_or_default()
    }

    /// Checks and decrypts what [`Self::seal`] made; [`NtsError::Authentication`] when the
    /// tag does not verify (a forged or damaged packet, or another key).
    pub fn open(
        &self,
        nonce: &[u8],
        associated_data: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, NtsError> {
        if nonce.len() != NONCE_LEN {
            return Err(NtsError::NonceLength { len: nonce.len() });
        }
        let payload = Payload {
            msg: sealed,
            aad: associated_data,
        };
        let nonce = Nonce::from_slice(nonce);
        let opened = match self.algorithm {
            AeadAlgorithm::AesSivCmac256 => Aes128SivAead::new_from_slice(self.as_bytes())
                .ok()
                .and_then(|c| c.decrypt(nonce, payload).ok()),
            AeadAlgorithm::AesSivCmac512 => Aes256SivAead::new_from_slice(self.as_bytes())
                .ok()
                .and_then(|c| c.decrypt(nonce, payload).ok()),
        };
        opened.ok_or(NtsError::Authentication)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_and_tampering_is_refused() {
        for algorithm in AeadAlgorithm::ALL {
            let key = AeadKey::new(algorithm, &[7u8; 64][..algorithm.key_len()]).unwrap();
            let nonce = [1u8; NONCE_LEN];
            let sealed = key.seal(&nonce, b"header", b"cookie");
            assert_eq!(sealed.len(), 6 + TAG_LEN);
            assert_eq!(key.open(&nonce, b"header", &sealed).unwrap(), b"cookie");
            let mut bad = sealed.clone();
            bad[0] ^= 1;
            assert_eq!(
                key.open(&nonce, b"header", &bad),
                Err(NtsError::Authentication)
            );
            assert_eq!(
                key.open(&nonce, b"heade!", &sealed),
                Err(NtsError::Authentication)
            );
            assert_eq!(
                key.open(&[2u8; 16], b"header", &sealed),
                Err(NtsError::Authentication)
            );
            assert!(key.open(&[1u8; 12], b"header", &sealed).is_err());
        }
        assert!(AeadKey::new(AeadAlgorithm::AesSivCmac256, &[0u8; 31]).is_err());
        assert_eq!(
            AeadAlgorithm::from_id(15),
            Some(AeadAlgorithm::AesSivCmac256)
        );
        assert_eq!(AeadAlgorithm::from_id(30), None);
    }

    /// Known answers from another implementation (Python's `cryptography`, OpenSSL's
    /// AES-SIV: `AESSIV(key).encrypt(b"cookie", [b"header", nonce])`, the nonce as the last
    /// associated-data component, as RFC 5297's AEAD interface, chrony and ntpd-rs have it).
    #[test]
    fn known_answers_from_openssl() {
        let nonce: [u8; NONCE_LEN] = core::array::from_fn(|i| 0xa0 + i as u8);
        let key: [u8; 64] = core::array::from_fn(|i| i as u8);
        let hex = |s: &[u8]| {
            s.iter()
                .map(|b| alloc::format!("{b:02x}"))
                .collect::<alloc::string::String>()
        };
        let k256 = AeadKey::new(AeadAlgorithm::AesSivCmac256, &key[..32]).unwrap();
        assert_eq!(
            hex(&k256.seal(&nonce, b"header", b"cookie")),
            "75802be6994c6041f8422276a02667e63976e06bea4c"
        );
        let k512 = AeadKey::new(AeadAlgorithm::AesSivCmac512, &key).unwrap();
        assert_eq!(
            hex(&k512.seal(&nonce, b"header", b"cookie")),
            "31c3f2ebe8bcee8cf72b464405b35dd9572ea901c088"
        );
    }
}
