//! A whole NTP packet: header, extension fields and MAC. [`NtpPacket`] reads one with every
//! length checked; [`PacketBuilder`] writes one, padding fields as RFC 7822 wants and, for
//! a response, never growing past the request's length.

use crate::Error;
use crate::buffer::output_prefix;
use crate::extension::{
    ExtensionField, ExtensionFieldType, ExtensionFields, MIN_EXTENSION_FIELD_LEN,
    MIN_LAST_EXTENSION_FIELD_LEN, padded_field_len, read_field_header, write_field,
};
use crate::header::{HEADER_LEN, HeaderView, NtpHeader, Version};
use crate::mac::{Mac, is_mac_len};

/// A parsed NTP time packet, borrowing its extension fields and MAC from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NtpPacket<'a> {
    /// The header.
    pub header: NtpHeader,
    /// The extension fields (NTPv4 only), lengths checked.
    pub extension_fields: ExtensionFields<'a>,
    /// The MAC, if the packet ends in one.
    pub mac: Option<Mac<'a>>,
}

impl<'a> NtpPacket<'a> {
    /// Reads a packet.
    ///
    /// After the header, NTPv4 bytes are read as RFC 7822 section 7.5 says: whenever the
    /// bytes left are 4, 20 or 24, they are a MAC (crypto-NAK, 16- or 20-byte digest);
    /// otherwise an extension field of at least 16 bytes, a multiple of 4 long, follows; the
    /// last field must be at least 28 bytes when no MAC follows. NTPv3 has no extension
    /// fields: anything after the header must be a MAC.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let header = NtpHeader::parse(&HeaderView::new_unchecked(bytes))?;
        let trailer = bytes.get(HEADER_LEN..).unwrap_or_default();
        let (fields, mac) = split_trailer(header.version, trailer)?;
        Ok(Self {
            header,
            extension_fields: fields,
            mac,
        })
    }

    /// Bytes the packet takes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + self.extension_fields.as_bytes().len()
            + self.mac.map_or(0, |mac| mac.buffer_len())
    }

    /// Writes the packet exactly as it was read; returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, Error> {
        let needed = self.buffer_len();
        let out = output_prefix(buffer, needed)?;
        let (head, rest) = out.split_at_mut(HEADER_LEN);
        self.header.emit(&mut HeaderView::new_unchecked(head));
        let fields = self.extension_fields.as_bytes();
        let (field_bytes, mac_bytes) = rest.split_at_mut(fields.len());
        field_bytes.copy_from_slice(fields);
        if let Some(mac) = self.mac {
            mac.emit(mac_bytes)?;
        }
        Ok(needed)
    }
}

/// Splits the bytes after the header into extension fields and a MAC.
fn split_trailer(
    version: Version,
    trailer: &[u8],
) -> Result<(ExtensionFields<'_>, Option<Mac<'_>>), Error> {
    if trailer.is_empty() {
        return Ok((ExtensionFields::empty(), None));
    }
    if version == Version::V3 {
        return Mac::parse(trailer)
            .map(|mac| (ExtensionFields::empty(), Some(mac)))
            .ok_or(Error::InvalidMacLength {
                offset: HEADER_LEN,
                len: trailer.len(),
            });
    }
    // Walk the fields until what is left is a MAC by its length, or nothing.
    let mut pos = 0;
    loop {
        let rest = &trailer[pos..];
        if rest.is_empty() || is_mac_len(rest.len()) {
            break;
        }
        match read_field_header(rest) {
            // Lengths that would not advance, or would overrun, are reported below.
            Some((_, length))
                if length >= MIN_EXTENSION_FIELD_LEN && length % 4 == 0 && length <= rest.len() =>
            {
                pos += length
            }
            _ => break,
        }
    }
    let (field_bytes, mac_bytes) = trailer.split_at(pos);
    let mac = Mac::parse(mac_bytes);
    if mac_bytes.is_empty() || mac.is_some() {
        let fields = ExtensionFields::new_checked(field_bytes, HEADER_LEN, mac.is_some())?;
        return Ok((fields, mac));
    }
    // The walk stopped on a bad field: check from there to report what and where.
    ExtensionFields::new_checked(mac_bytes, HEADER_LEN + pos, false)?;
    Err(Error::TrailerTruncated {
        offset: HEADER_LEN + pos,
        len: mac_bytes.len(),
    })
}

/// Writes a packet: the header, then extension fields, then optionally a MAC.
///
/// Fields are zero padded to a multiple of 4 and to 16 bytes; when no MAC follows,
/// [`PacketBuilder::finish`] grows the last field to 28 bytes (RFC 7822). A builder made
/// with [`PacketBuilder::response`] refuses to grow past the request's length, so a server
/// built on it can never amplify.
#[derive(Debug)]
pub struct PacketBuilder<'b> {
    buffer: &'b mut [u8],
    len: usize,
    limit: usize,
    last_field: Option<usize>,
    version: Version,
}

impl<'b> PacketBuilder<'b> {
    /// Starts a packet with its header.
    pub fn new(buffer: &'b mut [u8], header: &NtpHeader) -> Result<Self, Error> {
        Self::with_limit(buffer, header, usize::MAX)
    }

    /// Starts a response that may be at most as long as its request.
    pub fn response(
        buffer: &'b mut [u8],
        header: &NtpHeader,
        request_len: usize,
    ) -> Result<Self, Error> {
        Self::with_limit(buffer, header, request_len)
    }

    fn with_limit(buffer: &'b mut [u8], header: &NtpHeader, limit: usize) -> Result<Self, Error> {
        let mut builder = Self {
            buffer,
            len: 0,
            limit,
            last_field: None,
            version: header.version,
        };
        builder.reserve(HEADER_LEN)?;
        header.emit(&mut HeaderView::new_unchecked(
            &mut builder.buffer[..HEADER_LEN],
        ));
        builder.len = HEADER_LEN;
        Ok(builder)
    }

    /// Checks that `extra` more bytes fit the limit and the buffer.
    fn reserve(&self, extra: usize) -> Result<(), Error> {
        let needed = self.len + extra;
        if needed > self.limit {
            return Err(Error::ResponseTooLong {
                request_len: self.limit,
                response_len: needed,
            });
        }
        if needed > self.buffer.len() {
            return Err(Error::BufferTooSmall {
                needed,
                available: self.buffer.len(),
            });
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing but the header is written.
    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN
    }

    /// The bytes written so far (for computing a MAC or an NTS authenticator over them).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer[..self.len]
    }

    /// Appends an extension field. NTPv3 packets take none.
    pub fn push(&mut self, field: &ExtensionField<'_>) -> Result<(), Error> {
        self.push_with(field.field_type, field.value.len(), |out| {
            out.copy_from_slice(field.value)
        })
    }

    /// Appends an extension field whose value `write_value` writes into exactly
    /// `value_len` bytes (for values that are built in place, such as an NTS authenticator).
    pub fn push_with(
        &mut self,
        field_type: ExtensionFieldType,
        value_len: usize,
        write_value: impl FnOnce(&mut [u8]),
    ) -> Result<(), Error> {
        if self.version == Version::V3 {
            return Err(Error::ExtensionFieldInV3);
        }
        self.reserve(padded_field_len(value_len, MIN_EXTENSION_FIELD_LEN))?;
        let written = write_field(
            &mut self.buffer[self.len..],
            field_type,
            value_len,
            MIN_EXTENSION_FIELD_LEN,
            write_value,
        )?;
        self.last_field = Some(self.len);
        self.len += written;
        Ok(())
    }

    /// Ends the packet with no MAC; returns its length. A last extension field under 28
    /// bytes is grown to 28 with zeros.
    pub fn finish(mut self) -> Result<usize, Error> {
        self.grow_last_field()?;
        Ok(self.len)
    }

    /// Grows a last extension field under 28 bytes to 28 with zeros, so that the bytes
    /// after the header cannot end in something of a MAC's length that is not one.
    fn grow_last_field(&mut self) -> Result<(), Error> {
        if let Some(start) = self.last_field {
            let field_len = self.len - start;
            if field_len < MIN_LAST_EXTENSION_FIELD_LEN {
                let grow = MIN_LAST_EXTENSION_FIELD_LEN - field_len;
                self.reserve(grow)?;
                self.buffer[self.len..self.len + grow].fill(0);
                self.len += grow;
                self.buffer[start + 2..start + 4]
                    .copy_from_slice(&(MIN_LAST_EXTENSION_FIELD_LEN as u16).to_be_bytes());
            }
        }
        Ok(())
    }

    /// Ends the packet with a given MAC trailer; returns its length.
    ///
    /// Before a crypto-NAK the last field is grown to 28 bytes as [`Self::finish`] does: a
    /// 16- or 20-byte field and a 4-byte NAK would read back as one 20- or 24-byte MAC.
    pub fn finish_with_mac(mut self, mac: &Mac<'_>) -> Result<usize, Error> {
        if mac.is_crypto_nak() {
            self.grow_last_field()?;
        }
        self.reserve(mac.buffer_len())?;
        self.len += mac.emit(&mut self.buffer[self.len..])?;
        Ok(self.len)
    }

    /// Ends the packet with a crypto-NAK (RFC 5905 section 7.4).
    pub fn finish_with_crypto_nak(self) -> Result<usize, Error> {
        self.finish_with_mac(&Mac::CRYPTO_NAK)
    }

    /// Ends the packet with a MAC computed with `key` over everything written.
    #[cfg(feature = "mac")]
    pub fn finish_with_key(self, key: &crate::mac::MacKey<'_>) -> Result<usize, Error> {
        let mut digest = [0u8; crate::mac::MAX_DIGEST_LEN];
        let len = key.compute(self.as_bytes(), &mut digest)?;
        self.finish_with_mac(&Mac {
            key_id: key.id(),
            digest: &digest[..len],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::tests::any_header;
    use proptest::prelude::*;

    fn v4_header() -> NtpHeader {
        NtpHeader::default()
    }

    #[test]
    fn plain_packet_has_no_trailer() {
        let bytes = v4_header().to_bytes();
        let packet = NtpPacket::parse(&bytes).unwrap();
        assert!(packet.extension_fields.is_empty());
        assert_eq!(packet.mac, None);
        assert_eq!(packet.buffer_len(), 48);
    }

    #[test]
    fn fields_then_mac() {
        let mut buf = [0u8; 200];
        let mut builder = PacketBuilder::new(&mut buf, &v4_header()).unwrap();
        builder
            .push(&ExtensionField::new(
                ExtensionFieldType::UniqueIdentifier,
                &[1; 32],
            ))
            .unwrap();
        builder
            .push(&ExtensionField::new(
                ExtensionFieldType::Unknown(0x7777),
                &[2; 3],
            ))
            .unwrap();
        let len = builder
            .finish_with_mac(&Mac {
                key_id: 42,
                digest: &[0xCC; 16],
            })
            .unwrap();
        assert_eq!(len, 48 + 36 + 16 + 20);
        let packet = NtpPacket::parse(&buf[..len]).unwrap();
        let fields: Vec<_> = packet.extension_fields.into_iter().collect();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].value, &[1; 32]);
        assert_eq!(fields[1].value, &[2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(packet.mac.map(|m| m.key_id), Some(42));
        let mut again = [0u8; 200];
        assert_eq!(packet.emit(&mut again), Ok(len));
        assert_eq!(again[..len], buf[..len]);
    }

    #[test]
    fn finish_grows_short_last_field_to_28() {
        let mut buf = [0xFFu8; 200];
        let mut builder = PacketBuilder::new(&mut buf, &v4_header()).unwrap();
        builder
            .push(&ExtensionField::new(ExtensionFieldType::NtsCookie, &[5; 4]))
            .unwrap();
        let len = builder.finish().unwrap();
        assert_eq!(len, 48 + 28);
        assert_eq!(buf[50..52], [0, 28]);
        assert!(buf[52 + 4..len].iter().all(|&b| b == 0));
        let packet = NtpPacket::parse(&buf[..len]).unwrap();
        assert_eq!(packet.extension_fields.into_iter().count(), 1);
        assert_eq!(packet.mac, None);
    }

    #[test]
    fn response_never_longer_than_request() {
        let mut buf = [0u8; 200];
        let mut builder = PacketBuilder::response(&mut buf, &v4_header(), 48 + 20).unwrap();
        assert_eq!(
            builder.push(&ExtensionField::new(
                ExtensionFieldType::NtsCookie,
                &[0; 32]
            )),
            Err(Error::ResponseTooLong {
                request_len: 68,
                response_len: 84
            })
        );
        // A 16-byte field fits, but growing it to 28 with no MAC would not.
        builder
            .push(&ExtensionField::new(
                ExtensionFieldType::NtsCookie,
                &[0; 12],
            ))
            .unwrap();
        assert!(matches!(
            builder.finish(),
            Err(Error::ResponseTooLong { .. })
        ));
        assert!(matches!(
            PacketBuilder::response(&mut buf, &v4_header(), 40),
            Err(Error::ResponseTooLong { .. })
        ));
    }

    #[test]
    fn builder_reports_small_buffer() {
        let mut small = [0u8; 40];
        assert!(matches!(
            PacketBuilder::new(&mut small, &v4_header()),
            Err(Error::BufferTooSmall {
                needed: 48,
                available: 40
            })
        ));
    }

    #[test]
    fn crypto_nak_packet() {
        let mut buf = [0u8; 64];
        let len = PacketBuilder::new(&mut buf, &v4_header())
            .unwrap()
            .finish_with_crypto_nak()
            .unwrap();
        assert_eq!(len, 52);
        let packet = NtpPacket::parse(&buf[..len]).unwrap();
        assert!(packet.mac.unwrap().is_crypto_nak());
    }

    #[test]
    fn v3_trailer_is_mac_only() {
        let header = NtpHeader {
            version: Version::V3,
            ..v4_header()
        };
        let mut buf = [0u8; 100];
        let mut builder = PacketBuilder::new(&mut buf, &header).unwrap();
        assert!(
            builder
                .push(&ExtensionField::new(
                    ExtensionFieldType::NtsCookie,
                    &[0; 32]
                ))
                .is_err()
        );
        let len = builder
            .finish_with_mac(&Mac {
                key_id: 1,
                digest: &[9; 20],
            })
            .unwrap();
        assert_eq!(
            NtpPacket::parse(&buf[..len]).unwrap().mac.unwrap().digest,
            &[9; 20]
        );
        assert_eq!(
            NtpPacket::parse(&buf[..60]),
            Err(Error::InvalidMacLength {
                offset: 48,
                len: 12
            })
        );
    }

    #[test]
    fn bad_trailers_say_what_and_where() {
        let mut bytes = [0u8; 48 + 36];
        bytes[..48].copy_from_slice(&v4_header().to_bytes());
        // 16-byte field, then a field claiming 64 bytes with only 20 left... which is a MAC
        // length, so it is read as a MAC. Make it 21 left instead by trimming the buffer.
        bytes[48..52].copy_from_slice(&[0x01, 0x04, 0x00, 0x10]);
        bytes[64..68].copy_from_slice(&[0x02, 0x04, 0x00, 0x40]);
        assert_eq!(
            NtpPacket::parse(&bytes[..48 + 16 + 16]),
            Err(Error::ExtensionFieldOverrun {
                offset: 64,
                length: 64,
                available: 16
            })
        );
        // A field of length 8.
        bytes[51] = 0x08;
        assert_eq!(
            NtpPacket::parse(&bytes[..48 + 32]),
            Err(Error::ExtensionFieldTooShort {
                offset: 48,
                length: 8
            })
        );
        // Two stray bytes.
        assert_eq!(
            NtpPacket::parse(&bytes[..50]),
            Err(Error::TrailerTruncated { offset: 48, len: 2 })
        );
        // A single 16-byte field with no MAC: too short to be last.
        bytes[51] = 0x10;
        assert_eq!(
            NtpPacket::parse(&bytes[..64]),
            Err(Error::LastExtensionFieldTooShort {
                offset: 48,
                length: 16
            })
        );
        // Misaligned.
        bytes[51] = 0x1E;
        assert_eq!(
            NtpPacket::parse(&bytes[..48 + 32]),
            Err(Error::ExtensionFieldMisaligned {
                offset: 48,
                length: 30
            })
        );
    }

    proptest! {
        #[test]
        fn built_packets_round_trip(
            header in any_header(),
            values in proptest::collection::vec((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..64)), 0..4),
            mac in proptest::option::of((any::<u32>(), prop_oneof![Just(0usize), Just(16), Just(20)])),
        ) {
            let mut buf = vec![0u8; 1024];
            let mut builder = PacketBuilder::new(&mut buf, &header).unwrap();
            let v4 = header.version == Version::V4;
            if v4 {
                for (t, v) in &values {
                    builder.push(&ExtensionField::new((*t).into(), v)).unwrap();
                }
            }
            let digest = [0xAB; 20];
            let len = match mac {
                Some((key_id, n)) => builder.finish_with_mac(&Mac { key_id, digest: &digest[..n] }).unwrap(),
                None => builder.finish().unwrap(),
            };
            let packet = NtpPacket::parse(&buf[..len]).unwrap();
            prop_assert_eq!(packet.header, header);
            prop_assert_eq!(packet.extension_fields.into_iter().count(), if v4 { values.len() } else { 0 });
            for (field, (t, v)) in packet.extension_fields.into_iter().zip(&values) {
                prop_assert_eq!(field.field_type.to_u16(), *t);
                prop_assert_eq!(&field.value[..v.len()], &v[..]);
            }
            prop_assert_eq!(packet.mac.map(|m| (m.key_id, m.digest.len())), mac);
            let mut again = vec![0u8; len];
            prop_assert_eq!(packet.emit(&mut again), Ok(len));
            prop_assert_eq!(&again[..], &buf[..len]);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_reemit_exactly(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(packet) = NtpPacket::parse(&bytes) {
                let mut again = vec![0u8; bytes.len()];
                prop_assert_eq!(packet.emit(&mut again), Ok(bytes.len()));
                prop_assert_eq!(again, bytes);
            }
        }
    }
}
