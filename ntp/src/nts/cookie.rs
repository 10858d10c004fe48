//! Server cookies (RFC 8915 section 6): the keys of an NTS association, sealed under a
//! master key only the server (or its fleet) holds, so the server keeps no state per
//! client. The master keys rotate; a few old ones stay to open the cookies clients still
//! hold. The format is this crate's (the RFC leaves it to the server):
//!
//! ```text
//! key id (4, big-endian) | nonce (16) | AES-SIV-CMAC-256(master, nonce, ad = key id,
//!                                         algorithm id (2) | 0 (2) | C2S key | S2C key)
//! ```
//!
//! 104 bytes for AES-SIV-CMAC-256 associations, a multiple of 4 so that no padding
//! ever joins a cookie.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use super::NtsError;
use super::aead::{AeadAlgorithm, AeadKey, NONCE_LEN, TAG_LEN};

/// Bytes of a master key (AES-SIV-CMAC-256).
pub const MASTER_KEY_LEN: usize = 32;

/// The two keys of an NTS association, exported from its TLS session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NtsKeys {
    /// Client to server: requests are sealed with it.
    pub c2s: AeadKey,
    /// Server to client: responses are sealed with it.
    pub s2c: AeadKey,
}

impl NtsKeys {
    /// Both keys of `algorithm` from the exported bytes.
    pub fn new(algorithm: AeadAlgorithm, c2s: &[u8], s2c: &[u8]) -> Result<Self, NtsError> {
        Ok(Self {
            c2s: AeadKey::new(algorithm, c2s)?,
            s2c: AeadKey::new(algorithm, s2c)?,
        })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> AeadAlgorithm {
        self.c2s.algorithm()
    }
}

/// Bytes of a cookie for an association of `algorithm`.
pub const fn cookie_len(algorithm: AeadAlgorithm) -> usize {
    4 + NONCE_LEN + 4 + 2 * algorithm.key_len() + TAG_LEN
}

/// The server's master keys, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieKeys {
    keys: VecDeque<(u32, AeadKey)>,
    keep: usize,
}

impl CookieKeys {
    /// One master key, `key`, with the ID `id`; two old keys are kept after rotations.
    pub fn new(id: u32, key: [u8; MASTER_KEY_LEN]) -> Self {
        let mut keys = VecDeque::new();
        keys.push_front((id, master(&key)));
        Self { keys, keep: 2 }
    }

    /// How many keys older than the current one still open cookies (chrony keeps 2:
    /// with hourly rotation, a cookie lives two to three hours).
    pub fn set_keep(&mut self, keep: usize) {
        self.keep = keep;
        self.keys.truncate(keep + 1);
    }

    /// Makes `key` (ID `id`) the current key; the oldest beyond what is kept goes. An ID
    /// already there is replaced.
    pub fn rotate(&mut self, id: u32, key: [u8; MASTER_KEY_LEN]) {
        self.keys.retain(|(i, _)| *i != id);
        self.keys.push_front((id, master(&key)));
        self.keys.truncate(self.keep + 1);
    }

    /// The current key's ID.
    pub fn current_id(&self) -> u32 {
        self.keys.front().map_or(0, |(id, _)| *id)
    }

    /// The IDs kept, newest first.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.iter().map(|(id, _)| *id)
    }

    /// A cookie holding `keys`, sealed with the current master key and `nonce` (fresh
    /// randomness for each cookie).
    pub fn seal(&self, keys: &NtsKeys, nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
        let Some((id, key)) = self.keys.front() else {
            return Vec::new();
        };
        let id_bytes = id.to_be_bytes();
        let mut plain = Vec::with_capacity(4 + 2 * keys.algorithm().key_len());
        plain.extend_from_slice(&keys.algorithm().id().to_be_bytes());
        plain.extend_from_slice(&[0, 0]);
        plain.extend_from_slice(keys.c2s.as_bytes());
        plain.extend_from_slice(keys.s2c.as_bytes());
        let sealed = key.seal(nonce, &id_bytes, &plain);
        let mut cookie = Vec::with_capacity(4 + NONCE_LEN + sealed.len());
        cookie.extend_from_slice(&id_bytes);
        cookie.extend_from_slice(nonce);
        cookie.extend_from_slice(&sealed);
        cookie
    }

    /// The keys a cookie holds. Errors: a cookie of no known shape, a key ID no longer
    /// kept (expired), or one that does not authenticate (forged).
    pub fn open(&self, cookie: &[u8]) -> Result<NtsKeys, NtsError> {
        let malformed = NtsError::CookieMalformed { len: cookie.len() };
        let (id, rest) = cookie.split_first_chunk::<4>().ok_or(malformed.clone())?;
        let (nonce, sealed) = rest
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(malformed.clone())?;
        let id = u32::from_be_bytes(*id);
        let key = self
            .keys
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, k)| k)
            .ok_or(NtsError::UnknownCookieKey { id })?;
        let plain = key.open(nonce, &id.to_be_bytes(), sealed)?;
        let (head, keys) = plain.split_first_chunk::<4>().ok_or(malformed.clone())?;
        let algorithm = AeadAlgorithm::from_id(u16::from_be_bytes([head[0], head[1]]))
            .ok_or(malformed.clone())?;
        let n = algorithm.key_len();
        if keys.len() != 2 * n {
            return Err(malformed);
        }
        NtsKeys::new(algorithm, &keys[..n], &keys[n..])
    }

    /// The keys as a key file's text: a first line naming the format, then `ID HEXKEY`
    /// lines, newest first. Servers behind one name share it; a restart reads it back so
    /// the cookies clients hold still open (as chrony's `ntsdumpdir`).
    pub fn to_text(&self) -> String {
        let mut out = String::from("tempora-nts-cookie-keys 1\n");
        for (id, key) in &self.keys {
            out.push_str(&alloc::format!("{id} "));
            for b in key.as_bytes() {
                out.push_str(&alloc::format!("{b:02x}"));
            }
            out.push('\n');
        }
        out
    }

    /// Reads [`Self::to_text`]'s format; `keep` old keys are kept. An error names the line.
    pub fn from_text(text: &str, keep: usize) -> Result<Self, NtsError> {
        let bad = |line: usize, problem: &'static str| NtsError::KeyFile { line, problem };
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, "tempora-nts-cookie-keys 1")) => {}
            _ => return Err(bad(1, "is not `tempora-nts-cookie-keys 1`")),
        }
        let mut keys = VecDeque::new();
        for (i, line) in lines {
            let line_no = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (id, hex) = line
                .split_once(' ')
                .ok_or(bad(line_no, "is not `ID HEXKEY`"))?;
            let id: u32 = id
                .parse()
                .map_err(|_| bad(line_no, "has no 32-bit key ID"))?;
            let hex = hex.trim();
            if hex.len() != 2 * MASTER_KEY_LEN || !hex.is_ascii() {
                return Err(bad(line_no, "has no 64-digit hex key"));
            }
            let mut key = [0u8; MASTER_KEY_LEN];
            for (k, pair) in key.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
                let digits = core::str::from_utf8(pair)
                    .map_err(|_| bad(line_no, "has no 64-digit hex key"))?;
                *k = u8::from_str_radix(digits, 16)
                    .map_err(|_| bad(line_no, "has no 64-digit hex key"))?;
            }
            if keys.iter().any(|(i, _)| *i == id) {
                return Err(bad(line_no, "repeats a key ID"));
            }
            keys.push_back((id, master(&key)));
        }
        if keys.is_empty() {
            return Err(bad(1, "is followed by no key"));
        }
        keys.truncate(keep + 1);
        Ok(Self { keys, keep })
    }
}

fn master(key: &[u8; MASTER_KEY_LEN]) -> AeadKey {
    AeadKey::aes_siv_cmac_256(*key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> NtsKeys {
        NtsKeys::new(AeadAlgorithm::AesSivCmac256, &[1; 32], &[2; 32]).unwrap()
    }

    #[test]
    fn a_cookie_opens_to_its_keys_until_its_master_key_is_rotated_out() {
        let mut jar = CookieKeys::new(1, [9; 32]);
        let cookie = jar.seal(&keys(), &[5; 16]);
        assert_eq!(cookie.len(), cookie_len(AeadAlgorithm::AesSivCmac256));
        assert_eq!(cookie.len() % 4, 0);
        assert_eq!(jar.open(&cookie).unwrap(), keys());
        jar.rotate(2, [10; 32]);
        jar.rotate(3, [11; 32]);
        assert_eq!(jar.open(&cookie).unwrap(), keys(), "two old keys are kept");
        jar.rotate(4, [12; 32]);
        assert_eq!(jar.open(&cookie), Err(NtsError::UnknownCookieKey { id: 1 }));
        assert_eq!(jar.ids().collect::<Vec<_>>(), [4, 3, 2]);
    }

    #[test]
    fn forged_and_damaged_cookies_do_not_open() {
        let jar = CookieKeys::new(1, [9; 32]);
        let cookie = jar.seal(&keys(), &[5; 16]);
        for i in 0..cookie.len() {
            let mut bad = cookie.clone();
            bad[i] ^= 0x40;
            assert!(jar.open(&bad).is_err(), "byte {i}");
        }
        assert!(jar.open(&cookie[..10]).is_err());
        assert!(jar.open(&[]).is_err());
        // Another server's master key with the same ID.
        let other = CookieKeys::new(1, [8; 32]);
        assert_eq!(other.open(&cookie), Err(NtsError::Authentication));
    }

    #[test]
    fn the_key_file_round_trips_and_its_errors_name_the_line() {
        let mut jar = CookieKeys::new(7, [3; 32]);
        jar.rotate(8, [4; 32]);
        let text = jar.to_text();
        let back = CookieKeys::from_text(&text, 2).unwrap();
        assert_eq!(back, jar);
        let cookie = jar.seal(&keys(), &[1; 16]);
        assert_eq!(back.open(&cookie).unwrap(), keys());
        assert_eq!(
            CookieKeys::from_text("tempora-nts-cookie-keys 1\n7 abcd\n", 2),
            Err(NtsError::KeyFile {
                line: 2,
                problem: "has no 64-digit hex key"
            })
        );
        assert!(CookieKeys::from_text("something else\n", 2).is_err());
        assert!(CookieKeys::from_text("tempora-nts-cookie-keys 1\n", 2).is_err());
    }
}
