//! Symmetric keys (RFC 5905 MACs, RFC 8573 AES-CMAC) for the hierarchies that
//! authenticate with them: a key table, read from a keys file in chrony's format
//! (`ID TYPE KEY`, `HEX:` or `ASCII:` keys) or ntpd's (`ID TYPE KEY`, ASCII up to 20
//! characters, else hex). MD5, SHA-1 and AES-128-CMAC, which is what `tempora-ntp-proto`
//! computes; other types are refused naming the line.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use tempora_ntp_proto::{MacAlgorithm, MacKey};

/// A bad line in a keys file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("keys file line {line}: {problem}")]
pub struct KeysFileError {
    /// The line, from 1.
    pub line: usize,
    /// What is wrong.
    pub problem: &'static str,
}

/// Which daemon's keys file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum KeysFormat {
    /// chrony's `keyfile`: `ID [TYPE] KEY`, TYPE MD5, SHA1 or AES128, KEY ASCII (or
    /// `ASCII:...`) or `HEX:...`; a missing TYPE is MD5.
    #[default]
    Chrony,
    /// ntpd's and ntpsec's `keys`: `ID TYPE KEY`, TYPE `M`/`MD5`, `SHA1` or
    /// `AES128CMAC` (`AES-128`), KEY ASCII if at most 20 characters, else hex.
    Ntpd,
}

/// Symmetric keys by ID. The secrets are never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SymmetricKeys {
    keys: BTreeMap<u32, (MacAlgorithm, Vec<u8>)>,
}

impl core::fmt::Debug for SymmetricKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_map()
            .entries(self.keys.iter().map(|(id, (a, _))| (id, a)))
            .finish()
    }
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|p| u8::from_str_radix(core::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

impl SymmetricKeys {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) key `id`; the secret's length must suit the algorithm.
    pub fn insert(
        &mut self,
        id: u32,
        algorithm: MacAlgorithm,
        secret: &[u8],
    ) -> Result<(), tempora_ntp_proto::Error> {
        MacKey::new(id, algorithm, secret)?;
        self.keys.insert(id, (algorithm, secret.to_vec()));
        Ok(())
    }

    /// The key with ID `id`.
    pub fn get(&self, id: u32) -> Option<MacKey<'_>> {
        let (algorithm, secret) = self.keys.get(&id)?;
        MacKey::new(id, *algorithm, secret).ok()
    }

    /// Key `id`'s algorithm and secret (to give a source, say).
    pub fn entry(&self, id: u32) -> Option<(MacAlgorithm, &[u8])> {
        self.keys.get(&id).map(|(a, s)| (*a, s.as_slice()))
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key IDs, in order.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.keys().copied()
    }

    /// Reads a keys file of `format`. Blank lines and `#` comments are skipped; a bad
    /// line is an error naming it.
    pub fn parse(text: &str, format: KeysFormat) -> Result<Self, KeysFileError> {
        let mut keys = Self::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.split('#').next().unwrap_or_default().trim();
            if content.is_empty() {
                continue;
            }
            let bad = |problem| KeysFileError { line, problem };
            let mut words = content.split_whitespace();
            let id: u32 = words
                .next()
                .and_then(|w| w.parse().ok())
                .filter(|id| *id > 0)
                .ok_or(bad("has no key ID (1 to 4294967295)"))?;
            let first = words.next().ok_or(bad("has no key"))?;
            let second = words.next();
            let (algorithm, secret) = match format {
                KeysFormat::Chrony => {
                    let (kind, key) = match second {
                        Some(k) => (Some(first), k),
                        None => (None, first),
                    };
                    let algorithm = match kind.map(str::to_ascii_uppercase).as_deref() {
                        None | Some("MD5") => MacAlgorithm::Md5,
                        Some("SHA1") => MacAlgorithm::Sha1,
                        Some("AES128") => MacAlgorithm::AesCmac128,
                        Some(_) => {
                            return Err(bad("has a key type other than MD5, SHA1 or AES128"));
                        }
                    };
                    let secret = if let Some(h) = key.strip_prefix("HEX:") {
                        hex(h).ok_or(bad("has a HEX: key that is not hex"))?
                    } else {
                        key.strip_prefix("ASCII:")
                            .unwrap_or(key)
                            .as_bytes()
                            .to_vec()
                    };
                    (algorithm, secret)
                }
                KeysFormat::Ntpd => {
                    let key = second.ok_or(bad("is not `ID TYPE KEY`"))?;
                    let algorithm = match first.to_ascii_uppercase().as_str() {
                        "M" | "MD5" => MacAlgorithm::Md5,
                        "SHA1" | "SHA-1" => MacAlgorithm::Sha1,
                        "AES128CMAC" | "AES-128" | "AES128" | "AES-128-CMAC" => {
                            MacAlgorithm::AesCmac128
                        }
                        _ => return Err(bad("has a key type other than MD5, SHA1 or AES128CMAC")),
                    };
                    // ntpd: up to 20 printable characters are the key itself, more are hex.
                    let secret = if key.len() <= 20 {
                        key.as_bytes().to_vec()
                    } else {
                        hex(key).ok_or(bad("has a key over 20 characters that is not hex"))?
                    };
                    (algorithm, secret)
                }
            };
            if keys.keys.contains_key(&id) {
                return Err(bad("repeats a key ID"));
            }
            keys.insert(id, algorithm, &secret).map_err(|_| {
                bad("has a key of a length its type does not take (AES128: 16 bytes)")
            })?;
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chronys_format() {
        let text = "# keys\n1 MD5 secret\n2 SHA1 HEX:A6CFC50C9C93AB6E5A19754C246242FC5471BCDF\n\
                    3 AES128 HEX:000102030405060708090A0B0C0D0E0F\n4 ASCII:plain\n\n";
        let k = SymmetricKeys::parse(text, KeysFormat::Chrony).unwrap();
        assert_eq!(k.ids().collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(k.get(1).unwrap().algorithm(), MacAlgorithm::Md5);
        assert_eq!(k.get(2).unwrap().algorithm(), MacAlgorithm::Sha1);
        assert_eq!(k.get(3).unwrap().algorithm(), MacAlgorithm::AesCmac128);
        assert_eq!(k.get(4).unwrap().algorithm(), MacAlgorithm::Md5);
        assert!(k.get(5).is_none());
        // Secrets are not printed.
        assert!(!alloc::format!("{k:?}").contains("secret"));
    }

    #[test]
    fn ntpds_format() {
        let text = "1 M shortpassword\n2 SHA1 a6cfc50c9c93ab6e5a19754c246242fc5471bcdf\n\
                    3 AES128CMAC 000102030405060708090a0b0c0d0e0f\n";
        let k = SymmetricKeys::parse(text, KeysFormat::Ntpd).unwrap();
        assert_eq!(k.len(), 3);
        assert_eq!(k.get(3).unwrap().algorithm(), MacAlgorithm::AesCmac128);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("1 MD5 a\n1 MD5 b", KeysFormat::Chrony, 2),
            ("x MD5 a", KeysFormat::Chrony, 1),
            ("1 SHA256 HEX:00", KeysFormat::Chrony, 1),
            ("1 AES128 HEX:0011", KeysFormat::Chrony, 1),
            ("1 MD5 HEX:0g", KeysFormat::Chrony, 1),
            ("\n\n0 MD5 a", KeysFormat::Chrony, 3),
            ("1 secret", KeysFormat::Ntpd, 1),
            ("1 M 0123456789abcdef0123456789xy", KeysFormat::Ntpd, 1),
        ];
        for (text, format, line) in cases {
            let e = SymmetricKeys::parse(text, format).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
    }

    proptest! {
        #[test]
        fn any_text_parses_or_names_a_line(text in "[ -~\\n]{0,200}") {
            for format in [KeysFormat::Chrony, KeysFormat::Ntpd] {
                if let Err(e) = SymmetricKeys::parse(&text, format) {
                    prop_assert!(e.line >= 1 && e.line <= text.lines().count());
                }
            }
        }
    }
}
