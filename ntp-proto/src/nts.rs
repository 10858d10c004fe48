//! The NTS extension fields of RFC 8915 section 5, read from and written as
//! [`ExtensionField`]s. Structure only: the AEAD that fills the authenticator belongs to the
//! caller, which finds its associated data with [`crate::ExtensionFields::with_offsets`].

use crate::Error;
use crate::extension::{ExtensionField, ExtensionFieldType};
use crate::packet::PacketBuilder;

/// The shortest Unique Identifier body (RFC 8915 section 5.3).
pub const MIN_UNIQUE_IDENTIFIER_LEN: usize = 32;

fn expect_type(field: &ExtensionField<'_>, expected: ExtensionFieldType) -> Result<(), Error> {
    if field.field_type == expected {
        Ok(())
    } else {
        Err(Error::WrongExtensionFieldType {
            expected: expected.to_u16(),
            found: field.field_type.to_u16(),
        })
    }
}

/// Unique Identifier (0x0104): random bytes, at least 32, that the server echoes; protects
/// against replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NtsUniqueIdentifier<'a>(pub &'a [u8]);

impl<'a> NtsUniqueIdentifier<'a> {
    /// Reads the field; its body must be at least 32 bytes.
    pub fn parse(field: &ExtensionField<'a>) -> Result<Self, Error> {
        expect_type(field, ExtensionFieldType::UniqueIdentifier)?;
        if field.value.len() < MIN_UNIQUE_IDENTIFIER_LEN {
            return Err(Error::NtsUniqueIdentifierTooShort {
                len: field.value.len(),
            });
        }
        Ok(Self(field.value))
    }

    /// Appends the field.
    pub fn write(&self, builder: &mut PacketBuilder<'_>) -> Result<(), Error> {
        if self.0.len() < MIN_UNIQUE_IDENTIFIER_LEN {
            return Err(Error::NtsUniqueIdentifierTooShort { len: self.0.len() });
        }
        builder.push(&ExtensionField::new(
            ExtensionFieldType::UniqueIdentifier,
            self.0,
        ))
    }
}

/// NTS Cookie (0x0204): an opaque cookie from the NTS-KE server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NtsCookie<'a>(pub &'a [u8]);

impl<'a> NtsCookie<'a> {
    /// Reads the field.
    pub fn parse(field: &ExtensionField<'a>) -> Result<Self, Error> {
        expect_type(field, ExtensionFieldType::NtsCookie)?;
        Ok(Self(field.value))
    }

    /// Appends the field.
    pub fn write(&self, builder: &mut PacketBuilder<'_>) -> Result<(), Error> {
        builder.push(&ExtensionField::new(ExtensionFieldType::NtsCookie, self.0))
    }
}

/// NTS Cookie Placeholder (0x0304): asks for one more cookie; its body is as long as a
/// cookie and its contents are ignored (written as zeros).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NtsCookiePlaceholder {
    /// Length of the body.
    pub body_len: usize,
}

impl NtsCookiePlaceholder {
    /// Reads the field.
    pub fn parse(field: &ExtensionField<'_>) -> Result<Self, Error> {
        expect_type(field, ExtensionFieldType::NtsCookiePlaceholder)?;
        Ok(Self {
            body_len: field.value.len(),
        })
    }

    /// Appends the field.
    pub fn write(&self, builder: &mut PacketBuilder<'_>) -> Result<(), Error> {
        builder.push_with(
            ExtensionFieldType::NtsCookiePlaceholder,
            self.body_len,
            |body| body.fill(0),
        )
    }
}

/// NTS Authenticator and Encrypted Extension Fields (0x0404): the AEAD nonce and ciphertext
/// (the encrypted fields and the tag), each padded to a multiple of 4, then additional
/// padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NtsAuthenticator<'a> {
    /// The nonce.
    pub nonce: &'a [u8],
    /// The ciphertext.
    pub ciphertext: &'a [u8],
    /// Bytes of additional padding after the padded ciphertext.
    pub additional_padding: usize,
}

const LENGTHS_LEN: usize = 4;

impl<'a> NtsAuthenticator<'a> {
    /// Reads the field, checking both declared lengths against its body.
    pub fn parse(field: &ExtensionField<'a>) -> Result<Self, Error> {
        expect_type(field, ExtensionFieldType::NtsAuthenticator)?;
        let body = field.value;
        let body_len = body.len();
        let (lengths, rest) = body
            .split_first_chunk::<LENGTHS_LEN>()
            .ok_or(Error::NtsAuthenticatorTruncated { body_len })?;
        let nonce_len = usize::from(u16::from_be_bytes([lengths[0], lengths[1]]));
        let ciphertext_len = usize::from(u16::from_be_bytes([lengths[2], lengths[3]]));
        let overrun = Error::NtsAuthenticatorOverrun {
            nonce_len,
            ciphertext_len,
            body_len,
        };
        let nonce_padded = nonce_len.next_multiple_of(4);
        let ciphertext_padded = ciphertext_len.next_multiple_of(4);
        let nonce = rest.get(..nonce_len).ok_or(overrun)?;
        let rest = rest.get(nonce_padded..).ok_or(overrun)?;
        let ciphertext = rest.get(..ciphertext_len).ok_or(overrun)?;
        let padding = rest.get(ciphertext_padded..).ok_or(overrun)?;
        Ok(Self {
            nonce,
            ciphertext,
            additional_padding: padding.len(),
        })
    }

    /// Length of the body this field writes.
    pub const fn body_len(&self) -> usize {
        LENGTHS_LEN
            + self.nonce.len().next_multiple_of(4)
            + self.ciphertext.len().next_multiple_of(4)
            + self.additional_padding
    }

    /// Appends the field. Nonce and ciphertext lengths must fit 16 bits.
    pub fn write(&self, builder: &mut PacketBuilder<'_>) -> Result<(), Error> {
        let overrun = Error::NtsAuthenticatorOverrun {
            nonce_len: self.nonce.len(),
            ciphertext_len: self.ciphertext.len(),
            body_len: self.body_len(),
        };
        let nonce_len = u16::try_from(self.nonce.len()).map_err(|_| overrun)?;
        let ciphertext_len = u16::try_from(self.ciphertext.len()).map_err(|_| overrun)?;
        builder.push_with(
            ExtensionFieldType::NtsAuthenticator,
            self.body_len(),
            |body| {
                body.fill(0);
                body[0..2].copy_from_slice(&nonce_len.to_be_bytes());
                body[2..4].copy_from_slice(&ciphertext_len.to_be_bytes());
                let nonce_at = LENGTHS_LEN;
                body[nonce_at..nonce_at + self.nonce.len()].copy_from_slice(self.nonce);
                let ciphertext_at = nonce_at + self.nonce.len().next_multiple_of(4);
                body[ciphertext_at..ciphertext_at + self.ciphertext.len()]
                    .copy_from_slice(self.ciphertext);
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::NtpHeader;
    use crate::packet::NtpPacket;
    use proptest::prelude::*;

    /// A client request laid out as RFC 8915 section 5.7 describes: unique identifier,
    /// cookie, a placeholder, then the authenticator (16-byte nonce as AES-SIV-CMAC-256
    /// uses, and a ciphertext of only the 16-byte tag since the client encrypts nothing).
    #[test]
    fn rfc_8915_client_request_layout() {
        let uid = [0x11u8; 32];
        let cookie = [0x22u8; 100];
        let nonce = [0x33u8; 16];
        let tag = [0x44u8; 16];
        let mut buf = [0u8; 512];
        let mut builder = PacketBuilder::new(&mut buf, &NtpHeader::default()).unwrap();
        NtsUniqueIdentifier(&uid).write(&mut builder).unwrap();
        NtsCookie(&cookie).write(&mut builder).unwrap();
        NtsCookiePlaceholder { body_len: 100 }
            .write(&mut builder)
            .unwrap();
        let auth_at = builder.len();
        NtsAuthenticator {
            nonce: &nonce,
            ciphertext: &tag,
            additional_padding: 0,
        }
        .write(&mut builder)
        .unwrap();
        let len = builder.finish().unwrap();
        assert_eq!(len, 48 + 36 + 104 + 104 + 40);
        // The authenticator's header and length words, byte by byte.
        assert_eq!(
            buf[auth_at..auth_at + 8],
            [0x04, 0x04, 0x00, 40, 0x00, 16, 0x00, 16]
        );

        let packet = NtpPacket::parse(&buf[..len]).unwrap();
        let fields: Vec<_> = packet.extension_fields.with_offsets().collect();
        assert_eq!(
            NtsUniqueIdentifier::parse(&fields[0].1),
            Ok(NtsUniqueIdentifier(&uid))
        );
        assert_eq!(NtsCookie::parse(&fields[1].1), Ok(NtsCookie(&cookie)));
        assert_eq!(
            NtsCookiePlaceholder::parse(&fields[2].1),
            Ok(NtsCookiePlaceholder { body_len: 100 })
        );
        let auth = NtsAuthenticator::parse(&fields[3].1).unwrap();
        assert_eq!(auth.nonce, &nonce);
        assert_eq!(auth.ciphertext, &tag);
        assert_eq!(auth.additional_padding, 0);
        // The associated data is everything before the authenticator.
        assert_eq!(48 + fields[3].0, auth_at);
    }

    #[test]
    fn odd_lengths_are_padded_and_recovered() {
        let auth = NtsAuthenticator {
            nonce: &[1, 2, 3, 4, 5],
            ciphertext: &[
                6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
            ],
            additional_padding: 8,
        };
        assert_eq!(auth.body_len(), 4 + 8 + 20 + 8);
        let mut buf = [0u8; 200];
        let mut builder = PacketBuilder::new(&mut buf, &NtpHeader::default()).unwrap();
        auth.write(&mut builder).unwrap();
        let len = builder.finish().unwrap();
        let packet = NtpPacket::parse(&buf[..len]).unwrap();
        let field = packet.extension_fields.into_iter().next().unwrap();
        assert_eq!(NtsAuthenticator::parse(&field), Ok(auth));
    }

    #[test]
    fn malformed_fields_are_errors() {
        let short_uid = ExtensionField::new(ExtensionFieldType::UniqueIdentifier, &[0; 28]);
        assert_eq!(
            NtsUniqueIdentifier::parse(&short_uid),
            Err(Error::NtsUniqueIdentifierTooShort { len: 28 })
        );
        let cookie = ExtensionField::new(ExtensionFieldType::NtsCookie, &[0; 12]);
        assert_eq!(
            NtsUniqueIdentifier::parse(&cookie),
            Err(Error::WrongExtensionFieldType {
                expected: 0x0104,
                found: 0x0204
            })
        );
        let body = [0x00, 0x10, 0x00, 0x10, 0, 0, 0, 0, 0, 0, 0, 0];
        let auth = ExtensionField::new(ExtensionFieldType::NtsAuthenticator, &body);
        assert_eq!(
            NtsAuthenticator::parse(&auth),
            Err(Error::NtsAuthenticatorOverrun {
                nonce_len: 16,
                ciphertext_len: 16,
                body_len: 12
            })
        );
        let tiny = ExtensionField::new(ExtensionFieldType::NtsAuthenticator, &[0, 1]);
        assert_eq!(
            NtsAuthenticator::parse(&tiny),
            Err(Error::NtsAuthenticatorTruncated { body_len: 2 })
        );
    }

    proptest! {
        #[test]
        fn authenticator_round_trips(nonce in proptest::collection::vec(any::<u8>(), 0..40), ct in proptest::collection::vec(any::<u8>(), 0..80), pad in 0usize..5) {
            let auth = NtsAuthenticator { nonce: &nonce, ciphertext: &ct, additional_padding: pad * 4 };
            let mut buf = vec![0u8; 400];
            let mut builder = PacketBuilder::new(&mut buf, &NtpHeader::default()).unwrap();
            auth.write(&mut builder).unwrap();
            let len = builder.finish().unwrap();
            let packet = NtpPacket::parse(&buf[..len]).unwrap();
            let field = packet.extension_fields.into_iter().next().unwrap();
            let back = NtsAuthenticator::parse(&field).unwrap();
            prop_assert_eq!(back.nonce, &nonce[..]);
            prop_assert_eq!(back.ciphertext, &ct[..]);
            // The builder may add padding to reach the 16- and 28-byte minimums.
            prop_assert!(back.additional_padding >= auth.additional_padding);
        }

        #[test]
        fn arbitrary_authenticator_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..100)) {
            let field = ExtensionField::new(ExtensionFieldType::NtsAuthenticator, &body);
            if let Ok(auth) = NtsAuthenticator::parse(&field) {
                prop_assert_eq!(auth.body_len(), body.len());
            }
        }
    }
}
