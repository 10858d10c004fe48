//! NTPv4 extension fields (RFC 7822): a 16-bit type, a 16-bit length that counts the
//! whole field, and a value padded to a multiple of 4 bytes.
//!
//! Read them with [`ExtensionFields`], which [`crate::NtpPacket::parse`] hands out only
//! after checking every length; write them with [`crate::PacketBuilder`].

use crate::Error;
use crate::buffer::output_prefix;

/// Length of an extension field's type and length words.
pub const EXTENSION_FIELD_HEADER_LEN: usize = 4;
/// The shortest extension field allowed (RFC 7822 section 3).
pub const MIN_EXTENSION_FIELD_LEN: usize = 16;
/// The shortest last extension field when no MAC follows it (RFC 7822 section 3), so that
/// it cannot be mistaken for a 20- or 24-byte MAC.
pub const MIN_LAST_EXTENSION_FIELD_LEN: usize = 28;
/// The longest value a 16-bit length can describe.
pub const MAX_EXTENSION_VALUE_LEN: usize = u16::MAX as usize - EXTENSION_FIELD_HEADER_LEN - 3;

/// Extension field types from the IANA "NTP Extension Field Types" registry that this
/// crate knows; every other type is kept as [`ExtensionFieldType::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ExtensionFieldType {
    /// 0x0104: NTS Unique Identifier (RFC 8915 section 5.3).
    UniqueIdentifier,
    /// 0x0204: NTS Cookie (RFC 8915 section 5.4).
    NtsCookie,
    /// 0x0304: NTS Cookie Placeholder (RFC 8915 section 5.5).
    NtsCookiePlaceholder,
    /// 0x0404: NTS Authenticator and Encrypted Extension Fields (RFC 8915 section 5.6).
    NtsAuthenticator,
    /// 0x2005: UDP Checksum Complement (RFC 7821).
    ChecksumComplement,
    /// Any other type, kept as it was.
    Unknown(u16),
}

impl ExtensionFieldType {
    /// The type of a wire value.
    pub const fn from_u16(value: u16) -> Self {
        match value {
            0x0104 => Self::UniqueIdentifier,
            0x0204 => Self::NtsCookie,
            0x0304 => Self::NtsCookiePlaceholder,
            0x0404 => Self::NtsAuthenticator,
            0x2005 => Self::ChecksumComplement,
            other => Self::Unknown(other),
        }
    }

    /// The wire value.
    pub const fn to_u16(self) -> u16 {
        match self {
            Self::UniqueIdentifier => 0x0104,
            Self::NtsCookie => 0x0204,
            Self::NtsCookiePlaceholder => 0x0304,
            Self::NtsAuthenticator => 0x0404,
            Self::ChecksumComplement => 0x2005,
            Self::Unknown(other) => other,
        }
    }
}

impl From<u16> for ExtensionFieldType {
    fn from(value: u16) -> Self {
        Self::from_u16(value)
    }
}

impl From<ExtensionFieldType> for u16 {
    fn from(value: ExtensionFieldType) -> Self {
        value.to_u16()
    }
}

/// One extension field: its type and its value (the bytes after the 4-byte type and length
/// words, padding included: the wire does not say where a value ends and padding starts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExtensionField<'a> {
    /// The field type.
    pub field_type: ExtensionFieldType,
    /// The value, padding included.
    pub value: &'a [u8],
}

/// The on-wire length of a field whose value is `value_len` bytes, padded to a multiple of
/// 4 and to at least `min_len`.
pub(crate) const fn padded_field_len(value_len: usize, min_len: usize) -> usize {
    let len = (EXTENSION_FIELD_HEADER_LEN + value_len).next_multiple_of(4);
    if len < min_len { min_len } else { len }
}

impl<'a> ExtensionField<'a> {
    /// A field of a given type and value.
    pub const fn new(field_type: ExtensionFieldType, value: &'a [u8]) -> Self {
        Self { field_type, value }
    }

    /// Bytes the field takes on the wire: the value padded to a multiple of 4, and the
    /// field to at least 16 bytes.
    pub const fn buffer_len(&self) -> usize {
        padded_field_len(self.value.len(), MIN_EXTENSION_FIELD_LEN)
    }

    /// Writes the field, zero padded, to the start of `buffer`; returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, Error> {
        write_field(
            buffer,
            self.field_type,
            self.value.len(),
            MIN_EXTENSION_FIELD_LEN,
            |out| out.copy_from_slice(self.value),
        )
    }
}

/// Writes one field whose value `write_value` fills (it gets exactly `value_len` bytes),
/// zero padded to a multiple of 4 and to at least `min_len`; returns the field length.
pub(crate) fn write_field(
    buffer: &mut [u8],
    field_type: ExtensionFieldType,
    value_len: usize,
    min_len: usize,
    write_value: impl FnOnce(&mut [u8]),
) -> Result<usize, Error> {
    if value_len > MAX_EXTENSION_VALUE_LEN {
        return Err(Error::ExtensionFieldTooLong { len: value_len });
    }
    let len = padded_field_len(value_len, min_len);
    let out = output_prefix(buffer, len)?;
    let (head, body) = out.split_at_mut(EXTENSION_FIELD_HEADER_LEN);
    head[..2].copy_from_slice(&field_type.to_u16().to_be_bytes());
    // `len` fits: value_len <= MAX_EXTENSION_VALUE_LEN keeps it at most 65535 (or min_len).
    head[2..].copy_from_slice(&(len as u16).to_be_bytes());
    let (value, padding) = body.split_at_mut(value_len);
    write_value(value);
    padding.fill(0);
    Ok(len)
}

/// Reads the type and length words at the start of `bytes`.
pub(crate) fn read_field_header(bytes: &[u8]) -> Option<(u16, usize)> {
    match bytes {
        [t0, t1, l0, l1, ..] => Some((
            u16::from_be_bytes([*t0, *t1]),
            usize::from(u16::from_be_bytes([*l0, *l1])),
        )),
        _ => None,
    }
}

/// A run of extension fields whose lengths have been checked (by
/// [`crate::NtpPacket::parse`]). Iterating yields each field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ExtensionFields<'a> {
    bytes: &'a [u8],
}

impl<'a> ExtensionFields<'a> {
    /// Checks a run of extension fields that is followed by a MAC (`mac_follows`) or ends
    /// the packet. `base_offset` is where the run starts in the packet, for error reports.
    pub fn new_checked(
        bytes: &'a [u8],
        base_offset: usize,
        mac_follows: bool,
    ) -> Result<Self, Error> {
        let mut pos = 0;
        let mut last = None;
        while pos < bytes.len() {
            let offset = base_offset + pos;
            let rest = &bytes[pos..];
            let (_, length) = read_field_header(rest).ok_or(Error::TrailerTruncated {
                offset,
                len: rest.len(),
            })?;
            if length < MIN_EXTENSION_FIELD_LEN {
                return Err(Error::ExtensionFieldTooShort { offset, length });
            }
            if length % 4 != 0 {
                return Err(Error::ExtensionFieldMisaligned { offset, length });
            }
            if length > rest.len() {
                return Err(Error::ExtensionFieldOverrun {
                    offset,
                    length,
                    available: rest.len(),
                });
            }
            last = Some((offset, length));
            pos += length;
        }
        if let Some((offset, length)) = last {
            if !mac_follows && length < MIN_LAST_EXTENSION_FIELD_LEN {
                return Err(Error::LastExtensionFieldTooShort { offset, length });
            }
        }
        Ok(Self { bytes })
    }

    /// No extension fields.
    pub const fn empty() -> Self {
        Self { bytes: &[] }
    }

    /// The raw bytes of the run.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The fields with their offsets from the start of the run (the NTS associated data
    /// of a field is the packet up to `48 + offset`).
    pub fn with_offsets(&self) -> impl Iterator<Item = (usize, ExtensionField<'a>)> + 'a {
        let bytes = self.bytes;
        let mut pos = 0;
        core::iter::from_fn(move || {
            let rest = bytes.get(pos..)?;
            let (field_type, length) = read_field_header(rest)?;
            let value = rest.get(EXTENSION_FIELD_HEADER_LEN..length)?;
            let offset = pos;
            pos += length;
            Some((offset, ExtensionField::new(field_type.into(), value)))
        })
    }

    /// The first field of a type.
    pub fn find(&self, field_type: ExtensionFieldType) -> Option<ExtensionField<'a>> {
        self.into_iter().find(|f| f.field_type == field_type)
    }
}

impl<'a> IntoIterator for ExtensionFields<'a> {
    type Item = ExtensionField<'a>;
    type IntoIter = ExtensionFieldIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        ExtensionFieldIter { rest: self.bytes }
    }
}

impl<'a> IntoIterator for &ExtensionFields<'a> {
    type Item = ExtensionField<'a>;
    type IntoIter = ExtensionFieldIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        (*self).into_iter()
    }
}

/// Iterator over checked extension fields.
#[derive(Clone, Debug)]
pub struct ExtensionFieldIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ExtensionFieldIter<'a> {
    type Item = ExtensionField<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        let (field_type, length) = read_field_header(self.rest)?;
        let value = self.rest.get(EXTENSION_FIELD_HEADER_LEN..length)?;
        self.rest = self.rest.get(length..)?;
        Some(ExtensionField::new(field_type.into(), value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn type_registry_keeps_unknown() {
        for value in [0x0104, 0x0204, 0x0304, 0x0404, 0x2005, 0x0002, 0xFFFF] {
            assert_eq!(ExtensionFieldType::from_u16(value).to_u16(), value);
        }
        assert_eq!(
            ExtensionFieldType::from_u16(0x0204),
            ExtensionFieldType::NtsCookie
        );
        assert_eq!(
            ExtensionFieldType::from_u16(0x0505),
            ExtensionFieldType::Unknown(0x0505)
        );
    }

    #[test]
    fn emit_pads_to_16_and_to_words() {
        let mut buf = [0xAAu8; 40];
        let field = ExtensionField::new(ExtensionFieldType::Unknown(0x1234), &[1, 2, 3]);
        assert_eq!(field.buffer_len(), 16);
        assert_eq!(field.emit(&mut buf), Ok(16));
        assert_eq!(
            buf[..16],
            [0x12, 0x34, 0x00, 0x10, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        let long = [7u8; 13];
        let field = ExtensionField::new(ExtensionFieldType::NtsCookie, &long);
        assert_eq!(field.buffer_len(), 20);
        assert_eq!(field.emit(&mut buf), Ok(20));
        assert_eq!(buf[..4], [0x02, 0x04, 0x00, 0x14]);
        assert_eq!(buf[16..20], [7, 0, 0, 0]);
    }

    #[test]
    fn emit_reports_small_buffer_and_huge_value() {
        let mut buf = [0u8; 15];
        let field = ExtensionField::new(ExtensionFieldType::NtsCookie, &[]);
        assert_eq!(
            field.emit(&mut buf),
            Err(Error::BufferTooSmall {
                needed: 16,
                available: 15
            })
        );
        let huge = [0u8; MAX_EXTENSION_VALUE_LEN + 1];
        let mut out = [0u8; 70_000];
        assert_eq!(
            ExtensionField::new(ExtensionFieldType::NtsCookie, &huge).emit(&mut out),
            Err(Error::ExtensionFieldTooLong {
                len: MAX_EXTENSION_VALUE_LEN + 1
            })
        );
        let largest = [0u8; MAX_EXTENSION_VALUE_LEN];
        let len = ExtensionField::new(ExtensionFieldType::NtsCookie, &largest)
            .emit(&mut out)
            .unwrap();
        assert!(len <= usize::from(u16::MAX) && len % 4 == 0);
    }

    #[test]
    fn length_rules_are_checked() {
        // Too short, misaligned, overrunning, and a short last field with no MAC.
        let mut bytes = [0u8; 32];
        bytes[..4].copy_from_slice(&[0x01, 0x04, 0x00, 0x0C]);
        assert_eq!(
            ExtensionFields::new_checked(&bytes[..16], 48, true),
            Err(Error::ExtensionFieldTooShort {
                offset: 48,
                length: 12
            })
        );
        bytes[3] = 0x12;
        assert_eq!(
            ExtensionFields::new_checked(&bytes[..20], 48, true),
            Err(Error::ExtensionFieldMisaligned {
                offset: 48,
                length: 18
            })
        );
        bytes[3] = 0x24;
        assert_eq!(
            ExtensionFields::new_checked(&bytes, 48, true),
            Err(Error::ExtensionFieldOverrun {
                offset: 48,
                length: 36,
                available: 32
            })
        );
        bytes[3] = 0x10;
        assert!(ExtensionFields::new_checked(&bytes[..16], 48, true).is_ok());
        assert_eq!(
            ExtensionFields::new_checked(&bytes[..16], 48, false),
            Err(Error::LastExtensionFieldTooShort {
                offset: 48,
                length: 16
            })
        );
        assert_eq!(
            ExtensionFields::new_checked(&bytes[..18], 48, true),
            Err(Error::TrailerTruncated { offset: 64, len: 2 })
        );
    }

    #[test]
    fn iterates_with_offsets() {
        let mut bytes = [0u8; 44];
        ExtensionField::new(ExtensionFieldType::UniqueIdentifier, &[9; 12])
            .emit(&mut bytes)
            .unwrap();
        ExtensionField::new(ExtensionFieldType::NtsCookie, &[8; 24])
            .emit(&mut bytes[16..])
            .unwrap();
        let fields = ExtensionFields::new_checked(&bytes, 48, false).unwrap();
        let got: Vec<_> = fields.with_offsets().collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, 0);
        assert_eq!(got[1].0, 16);
        assert_eq!(got[1].1.value, &[8; 24]);
        assert_eq!(fields.into_iter().count(), 2);
        assert_eq!(
            fields
                .find(ExtensionFieldType::NtsCookie)
                .map(|f| f.value.len()),
            Some(24)
        );
        assert!(fields.find(ExtensionFieldType::NtsAuthenticator).is_none());
    }

    proptest! {
        #[test]
        fn field_round_trips(field_type: u16, words in 3usize..40, fill: u8) {
            // A value that is already padded parses back to itself.
            let value = vec![fill; words * 4];
            let field = ExtensionField::new(field_type.into(), &value);
            let mut buf = vec![0u8; field.buffer_len()];
            prop_assert_eq!(field.emit(&mut buf), Ok(buf.len()));
            let fields = ExtensionFields::new_checked(&buf, 0, true).unwrap();
            prop_assert_eq!(fields.into_iter().collect::<Vec<_>>(), vec![field]);
        }

        #[test]
        fn arbitrary_runs_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), mac: bool) {
            if let Ok(fields) = ExtensionFields::new_checked(&bytes, 48, mac) {
                let total: usize = fields.into_iter().map(|f| f.value.len() + 4).sum();
                prop_assert_eq!(total, bytes.len());
            }
        }
    }
}
