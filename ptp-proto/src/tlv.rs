//! TLVs (IEEE 1588-2019 clause 14): a 16-bit type, a 16-bit even length, a value. Read
//! them with [`Tlvs`] (lengths checked by [`crate::PtpMessage::parse`]); write them with
//! [`crate::MessageWriter`]. Typed TLVs implement [`TlvValue`].

use crate::Error;
use crate::buffer::read_array;
use crate::management::{ManagementErrorId, ManagementId};
use crate::types::{ClockIdentity, PtpText};

/// Length of a TLV's type and length fields.
pub const TLV_HEADER_LEN: usize = 4;

/// TLV types (IEEE 1588-2019 Table 52). Unknown types are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum TlvType {
    /// 0x0001.
    Management,
    /// 0x0002.
    ManagementErrorStatus,
    /// 0x0003.
    OrganizationExtension,
    /// 0x0004.
    RequestUnicastTransmission,
    /// 0x0005.
    GrantUnicastTransmission,
    /// 0x0006.
    CancelUnicastTransmission,
    /// 0x0007.
    AcknowledgeCancelUnicastTransmission,
    /// 0x0008.
    PathTrace,
    /// 0x0009.
    AlternateTimeOffsetIndicator,
    /// 0x4000.
    OrganizationExtensionPropagate,
    /// 0x4001.
    EnhancedAccuracyMetrics,
    /// 0x8000.
    OrganizationExtensionDoNotPropagate,
    /// 0x8001.
    L1Sync,
    /// 0x8002.
    PortCommunicationAvailability,
    /// 0x8003.
    ProtocolAddress,
    /// 0x8004.
    SlaveRxSyncTimingData,
    /// 0x8005.
    SlaveRxSyncComputedData,
    /// 0x8006.
    SlaveTxEventTimestamps,
    /// 0x8007.
    CumulativeRateRatio,
    /// 0x8008.
    Pad,
    /// 0x8009.
    Authentication,
    /// Any other type, kept.
    Unknown(u16),
}

const TLV_TYPES: [(TlvType, u16); 21] = [
    (TlvType::Management, 0x0001),
    (TlvType::ManagementErrorStatus, 0x0002),
    (TlvType::OrganizationExtension, 0x0003),
    (TlvType::RequestUnicastTransmission, 0x0004),
    (TlvType::GrantUnicastTransmission, 0x0005),
    (TlvType::CancelUnicastTransmission, 0x0006),
    (TlvType::AcknowledgeCancelUnicastTransmission, 0x0007),
    (TlvType::PathTrace, 0x0008),
    (TlvType::AlternateTimeOffsetIndicator, 0x0009),
    (TlvType::OrganizationExtensionPropagate, 0x4000),
    (TlvType::EnhancedAccuracyMetrics, 0x4001),
    (TlvType::OrganizationExtensionDoNotPropagate, 0x8000),
    (TlvType::L1Sync, 0x8001),
    (TlvType::PortCommunicationAvailability, 0x8002),
    (TlvType::ProtocolAddress, 0x8003),
    (TlvType::SlaveRxSyncTimingData, 0x8004),
    (TlvType::SlaveRxSyncComputedData, 0x8005),
    (TlvType::SlaveTxEventTimestamps, 0x8006),
    (TlvType::CumulativeRateRatio, 0x8007),
    (TlvType::Pad, 0x8008),
    (TlvType::Authentication, 0x8009),
];

wire_number!(TlvType, u16, from_u16, to_u16);

impl TlvType {
    /// The type of a wire value.
    pub fn from_u16(value: u16) -> Self {
        TLV_TYPES
            .iter()
            .find(|(_, v)| *v == value)
            .map_or(Self::Unknown(value), |(t, _)| *t)
    }

    /// The wire value.
    pub fn to_u16(self) -> u16 {
        match self {
            Self::Unknown(v) => v,
            known => TLV_TYPES
                .iter()
                .find(|(t, _)| *t == known)
                .map_or(0, |(_, v)| *v),
        }
    }
}

/// One TLV: its type and value (the lengthField's bytes, padding included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tlv<'a> {
    /// The type.
    pub tlv_type: TlvType,
    /// The value.
    pub value: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Reads the value as a typed TLV.
    pub fn parse_as<T: TlvValue<'a>>(&self) -> Result<T, Error> {
        if self.tlv_type != T::TYPE {
            return Err(Error::WrongTlvType {
                expected: T::TYPE.to_u16(),
                found: self.tlv_type.to_u16(),
            });
        }
        T::parse_value(self.value)
    }
}

/// A TLV whose value has a layout of its own.
pub trait TlvValue<'a>: Sized {
    /// The TLV type it is carried in.
    const TYPE: TlvType;
    /// Reads the value (as long as the lengthField says).
    fn parse_value(value: &'a [u8]) -> Result<Self, Error>;
    /// Bytes the value takes before padding to an even length.
    fn value_len(&self) -> usize;
    /// Writes the value into exactly `value_len()` bytes.
    fn emit_value(&self, out: &mut [u8]) -> Result<(), Error>;
}

/// A run of TLVs whose lengths have been checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Tlvs<'a> {
    bytes: &'a [u8],
}

impl<'a> Tlvs<'a> {
    /// Checks a run of TLVs; `base_offset` is where it starts in the message.
    pub fn new_checked(bytes: &'a [u8], base_offset: usize) -> Result<Self, Error> {
        let mut pos = 0;
        while pos < bytes.len() {
            let offset = base_offset + pos;
            let head: [u8; TLV_HEADER_LEN] =
                read_array(bytes, pos, "TLV header").map_err(|e| match e {
                    Error::Truncated {
                        what,
                        needed,
                        available,
                        ..
                    } => Error::Truncated {
                        what,
                        offset,
                        needed,
                        available,
                    },
                    other => other,
                })?;
            let length = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let available = bytes.len() - pos - TLV_HEADER_LEN;
            if length > available {
                return Err(Error::TlvOverrun {
                    offset,
                    length,
                    available,
                });
            }
            if length % 2 != 0 {
                return Err(Error::TlvOddLength { offset, length });
            }
            pos += TLV_HEADER_LEN + length;
        }
        Ok(Self { bytes })
    }

    /// The raw bytes of the run.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The first TLV of a type.
    pub fn find(&self, tlv_type: TlvType) -> Option<Tlv<'a>> {
        self.into_iter().find(|t| t.tlv_type == tlv_type)
    }
}

impl<'a> IntoIterator for Tlvs<'a> {
    type Item = Tlv<'a>;
    type IntoIter = TlvIter<'a>;
    fn into_iter(self) -> TlvIter<'a> {
        TlvIter { rest: self.bytes }
    }
}

impl<'a> IntoIterator for &Tlvs<'a> {
    type Item = Tlv<'a>;
    type IntoIter = TlvIter<'a>;
    fn into_iter(self) -> TlvIter<'a> {
        (*self).into_iter()
    }
}

/// Iterator over checked TLVs.
#[derive(Clone, Debug)]
pub struct TlvIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Tlv<'a>;
    fn next(&mut self) -> Option<Tlv<'a>> {
        let (head, rest) = self.rest.split_first_chunk::<TLV_HEADER_LEN>()?;
        let length = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let value = rest.get(..length)?;
        self.rest = rest.get(length..)?;
        Some(Tlv {
            tlv_type: TlvType::from_u16(u16::from_be_bytes([head[0], head[1]])),
            value,
        })
    }
}

fn too_short(what: &'static str, length: usize, needed: usize) -> Error {
    Error::TlvTooShort {
        what,
        length,
        needed,
    }
}

/// MANAGEMENT: a management ID and its data (see [`crate::ManagementData`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ManagementTlv<'a> {
    /// The management ID.
    pub id: ManagementId,
    /// The data (empty in a GET).
    pub data: &'a [u8],
}

impl<'a> TlvValue<'a> for ManagementTlv<'a> {
    const TYPE: TlvType = TlvType::Management;
    fn parse_value(value: &'a [u8]) -> Result<Self, Error> {
        let (id, data) =
            value
                .split_first_chunk::<2>()
                .ok_or(too_short("MANAGEMENT", value.len(), 2))?;
        Ok(Self {
            id: ManagementId::from_u16(u16::from_be_bytes(*id)),
            data,
        })
    }
    fn value_len(&self) -> usize {
        2 + self.data.len()
    }
    fn emit_value(&self, out: &mut [u8]) -> Result<(), Error> {
        out[..2].copy_from_slice(&self.id.to_u16().to_be_bytes());
        out[2..].copy_from_slice(self.data);
        Ok(())
    }
}

/// MANAGEMENT_ERROR_STATUS: why a management request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ManagementErrorStatus<'a> {
    /// The error.
    pub error: ManagementErrorId,
    /// The management ID of the request.
    pub id: ManagementId,
    /// Optional text.
    pub display_data: PtpText<'a>,
}

impl<'a> TlvValue<'a> for ManagementErrorStatus<'a> {
    const TYPE: TlvType = TlvType::ManagementErrorStatus;
    fn parse_value(value: &'a [u8]) -> Result<Self, Error> {
        let fixed: [u8; 8] = read_array(value, 0, "MANAGEMENT_ERROR_STATUS")
            .map_err(|_| too_short("MANAGEMENT_ERROR_STATUS", value.len(), 8))?;
        let display_data = match value.get(8..) {
            Some(rest) if !rest.is_empty() => PtpText::parse(rest)?.0,
            _ => PtpText(&[]),
        };
        Ok(Self {
            error: ManagementErrorId::from_u16(u16::from_be_bytes([fixed[0], fixed[1]])),
            id: ManagementId::from_u16(u16::from_be_bytes([fixed[2], fixed[3]])),
            display_data,
        })
    }
    fn value_len(&self) -> usize {
        8 + self.display_data.buffer_len()
    }
    fn emit_value(&self, out: &mut [u8]) -> Result<(), Error> {
        out[..2].copy_from_slice(&self.error.to_u16().to_be_bytes());
        out[2..4].copy_from_slice(&self.id.to_u16().to_be_bytes());
        out[4..8].fill(0);
        self.display_data.emit(&mut out[8..])?;
        Ok(())
    }
}

/// ORGANIZATION_EXTENSION: an OUI, a subtype and data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrganizationExtension<'a> {
    /// organizationId (OUI or CID).
    pub organization_id: [u8; 3],
    /// organizationSubType.
    pub subtype: [u8; 3],
    /// dataField.
    pub data: &'a [u8],
}

impl<'a> TlvValue<'a> for OrganizationExtension<'a> {
    const TYPE: TlvType = TlvType::OrganizationExtension;
    fn parse_value(value: &'a [u8]) -> Result<Self, Error> {
        let fixed: [u8; 6] = read_array(value, 0, "ORGANIZATION_EXTENSION")
            .map_err(|_| too_short("ORGANIZATION_EXTENSION", value.len(), 6))?;
        Ok(Self {
            organization_id: [fixed[0], fixed[1], fixed[2]],
            subtype: [fixed[3], fixed[4], fixed[5]],
            data: &value[6..],
        })
    }
    fn value_len(&self) -> usize {
        6 + self.data.len()
    }
    fn emit_value(&self, out: &mut [u8]) -> Result<(), Error> {
        out[..3].copy_from_slice(&self.organization_id);
        out[3..6].copy_from_slice(&self.subtype);
        out[6..].copy_from_slice(self.data);
        Ok(())
    }
}

/// PATH_TRACE: the clock identities an Announce has passed through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PathTrace<'a>(&'a [u8]);

impl<'a> PathTrace<'a> {
    /// A path from clock identities laid out in `bytes` (8 each).
    pub fn new(bytes: &'a [u8]) -> Result<Self, Error> {
        if bytes.len() % 8 != 0 {
            return Err(too_short(
                "PATH_TRACE",
                bytes.len(),
                bytes.len().next_multiple_of(8),
            ));
        }
        Ok(Self(bytes))
    }

    /// The identities on the path.
    pub fn identities(&self) -> impl Iterator<Item = ClockIdentity> + 'a {
        self.0.chunks_exact(8).map(|c| {
            let mut id = [0u8; 8];
            id.copy_from_slice(c);
            ClockIdentity(id)
        })
    }

    /// Number of identities.
    pub fn len(&self) -> usize {
        self.0.len() / 8
    }

    /// Whether the path is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> TlvValue<'a> for PathTrace<'a> {
    const TYPE: TlvType = TlvType::PathTrace;
    fn parse_value(value: &'a [u8]) -> Result<Self, Error> {
        Self::new(value)
    }
    fn value_len(&self) -> usize {
        self.0.len()
    }
    fn emit_value(&self, out: &mut [u8]) -> Result<(), Error> {
        out.copy_from_slice(self.0);
        Ok(())
    }
}

/// ALTERNATE_TIME_OFFSET_INDICATOR: a local timescale's offset and its next jump.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AlternateTimeOffsetIndicator<'a> {
    /// keyField.
    pub key: u8,
    /// currentOffset, seconds.
    pub current_offset: i32,
    /// jumpSeconds.
    pub jump_seconds: i32,
    /// timeOfNextJump, 48-bit seconds.
    pub time_of_next_jump: u64,
    /// displayName.
    pub display_name: PtpText<'a>,
}

impl<'a> TlvValue<'a> for AlternateTimeOffsetIndicator<'a> {
    const TYPE: TlvType = TlvType::AlternateTimeOffsetIndicator;
    fn parse_value(value: &'a [u8]) -> Result<Self, Error> {
        let f: [u8; 15] = read_array(value, 0, "ALTERNATE_TIME_OFFSET_INDICATOR")
            .map_err(|_| too_short("ALTERNATE_TIME_OFFSET_INDICATOR", value.len(), 16))?;
        let (display_name, _) = PtpText::parse(&value[15..])?;
        Ok(Self {
            key: f[0],
            current_offset: i32::from_be_bytes([f[1], f[2], f[3], f[4]]),
            jump_seconds: i32::from_be_bytes([f[5], f[6], f[7], f[8]]),
            time_of_next_jump: u64::from_be_bytes([0, 0, f[9], f[10], f[11], f[12], f[13], f[14]]),
            display_name,
        })
    }
    fn value_len(&self) -> usize {
        15 + self.display_name.buffer_len()
    }
    fn emit_value(&self, out: &mut [u8]) -> Result<(), Error> {
        out[0] = self.key;
        out[1..5].copy_from_slice(&self.current_offset.to_be_bytes());
        out[5..9].copy_from_slice(&self.jump_seconds.to_be_bytes());
        out[9..15].copy_from_slice(&self.time_of_next_jump.to_be_bytes()[2..]);
        self.display_name.emit(&mut out[15..])?;
        Ok(())
    }
}

/// REQUEST_UNICAST_TRANSMISSION: ask a master for a stream of one message type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RequestUnicastTransmission {
    /// The message type asked for (upper nibble on the wire).
    pub message_type: u8,
    /// logInterMessagePeriod.
    pub log_inter_message_period: i8,
    /// durationField, seconds.
    pub duration: u32,
}

impl TlvValue<'_> for RequestUnicastTransmission {
    const TYPE: TlvType = TlvType::RequestUnicastTransmission;
    fn parse_value(value: &[u8]) -> Result<Self, Error> {
        let f: [u8; 6] = read_array(value, 0, "REQUEST_UNICAST_TRANSMISSION")
            .map_err(|_| too_short("REQUEST_UNICAST_TRANSMISSION", value.len(), 6))?;
        Ok(Self {
            message_type: f[0] >> 4,
            log_inter_message_period: f[1] as i8,
            duration: u32::from_be_bytes([f[2], f[3], f[4], f[5]]),
        })
    }
    fn value_len(&self) -> usize {
        6
    }
    fn emit_value(&self, out: &mut [u8]) -> Result<(), Error> {
        out[0] = self.message_type << 4;
        out[1] = self.log_inter_message_period as u8;
        out[2..6].copy_from_slice(&self.duration.to_be_bytes());
        Ok(())
    }
}

/// GRANT_UNICAST_TRANSMISSION: a master's answer to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GrantUnicastTransmission {
    /// The message type granted.
    pub message_type: u8,
    /// logInterMessagePeriod.
    pub log_inter_message_period: i8,
    /// durationField, seconds (0: denied).
    pub duration: u32,
    /// The R flag: the master invites renewal.
    pub renewal_invited: bool,
}

impl TlvValue<'_> for GrantUnicastTransmission {
    const TYPE: TlvType = TlvType::GrantUnicastTransmission;
    fn parse_value(value: &[u8]) -> Result<Self, Error> {
        let f: [u8; 8] = read_array(value, 0, "GRANT_UNICAST_TRANSMISSION")
            .map_err(|_| too_short("GRANT_UNICAST_TRANSMISSION", value.len(), 8))?;
        Ok(Self {
            message_type: f[0] >> 4,
            log_inter_message_period: f[1] as i8,
            duration: u32::from_be_bytes([f[2], f[3], f[4], f[5]]),
            renewal_invited: f[7] & 1 != 0,
        })
    }
    fn value_len(&self) -> usize {
        8
    }
    fn emit_value(&self, out: &mut [u8]) -> Result<(), Error> {
        out[0] = self.message_type << 4;
        out[1] = self.log_inter_message_period as u8;
        out[2..6].copy_from_slice(&self.duration.to_be_bytes());
        out[6] = 0;
        out[7] = u8::from(self.renewal_invited);
        Ok(())
    }
}

/// CANCEL_UNICAST_TRANSMISSION and ACKNOWLEDGE_CANCEL_UNICAST_TRANSMISSION share this
/// value; `acknowledge` says which TLV it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CancelUnicastTransmission {
    /// The message type cancelled.
    pub message_type: u8,
    /// The low-nibble flags (maintain request, maintain grant).
    pub flags: u8,
}

impl TlvValue<'_> for CancelUnicastTransmission {
    const TYPE: TlvType = TlvType::CancelUnicastTransmission;
    fn parse_value(value: &[u8]) -> Result<Self, Error> {
        let f: [u8; 2] = read_array(value, 0, "CANCEL_UNICAST_TRANSMISSION")
            .map_err(|_| too_short("CANCEL_UNICAST_TRANSMISSION", value.len(), 2))?;
        Ok(Self {
            message_type: f[0] >> 4,
            flags: f[0] & 0x0F,
        })
    }
    fn value_len(&self) -> usize {
        2
    }
    fn emit_value(&self, out: &mut [u8]) -> Result<(), Error> {
        out[0] = (self.message_type << 4) | (self.flags & 0x0F);
        out[1] = 0;
        Ok(())
    }
}

/// ACKNOWLEDGE_CANCEL_UNICAST_TRANSMISSION.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AcknowledgeCancelUnicastTransmission(pub CancelUnicastTransmission);

impl TlvValue<'_> for AcknowledgeCancelUnicastTransmission {
    const TYPE: TlvType = TlvType::AcknowledgeCancelUnicastTransmission;
    fn parse_value(value: &[u8]) -> Result<Self, Error> {
        CancelUnicastTransmission::parse_value(value).map(Self)
    }
    fn value_len(&self) -> usize {
        2
    }
    fn emit_value(&self, out: &mut [u8]) -> Result<(), Error> {
        self.0.emit_value(out)
    }
}

/// PAD: zeros that only take up room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Pad {
    /// Bytes of padding.
    pub len: usize,
}

impl TlvValue<'_> for Pad {
    const TYPE: TlvType = TlvType::Pad;
    fn parse_value(value: &[u8]) -> Result<Self, Error> {
        Ok(Self { len: value.len() })
    }
    fn value_len(&self) -> usize {
        self.len
    }
    fn emit_value(&self, out: &mut [u8]) -> Result<(), Error> {
        out.fill(0);
        Ok(())
    }
}

/// AUTHENTICATION (IEEE 1588-2019 16.14.3): the security parameter pointer, the
/// indicator of optional fields, the key ID, and the rest (optional fields and the ICV,
/// whose lengths the security association defines).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Authentication<'a> {
    /// securityParameterPointer.
    pub spp: u8,
    /// secParamIndicator.
    pub sec_param_indicator: u8,
    /// keyID.
    pub key_id: u32,
    /// disclosedKey, sequenceNo, RES (as the indicator says) and the ICV.
    pub rest: &'a [u8],
}

impl<'a> TlvValue<'a> for Authentication<'a> {
    const TYPE: TlvType = TlvType::Authentication;
    fn parse_value(value: &'a [u8]) -> Result<Self, Error> {
        let f: [u8; 6] = read_array(value, 0, "AUTHENTICATION")
            .map_err(|_| too_short("AUTHENTICATION", value.len(), 6))?;
        Ok(Self {
            spp: f[0],
            sec_param_indicator: f[1],
            key_id: u32::from_be_bytes([f[2], f[3], f[4], f[5]]),
            rest: &value[6..],
        })
    }
    fn value_len(&self) -> usize {
        6 + self.rest.len()
    }
    fn emit_value(&self, out: &mut [u8]) -> Result<(), Error> {
        out[0] = self.spp;
        out[1] = self.sec_param_indicator;
        out[2..6].copy_from_slice(&self.key_id.to_be_bytes());
        out[6..].copy_from_slice(self.rest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_types_keep_unknown() {
        for v in [1u16, 2, 3, 8, 9, 0x4000, 0x8008, 0x8009, 0x1234, 0xFFFF] {
            assert_eq!(TlvType::from_u16(v).to_u16(), v);
        }
        assert_eq!(TlvType::from_u16(0x8008), TlvType::Pad);
        assert_eq!(TlvType::from_u16(0x7F00), TlvType::Unknown(0x7F00));
    }

    #[test]
    fn checked_runs() {
        let bytes = [
            0x00, 0x08, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x80, 0x08, 0x00, 0x02, 0, 0,
        ];
        let tlvs = Tlvs::new_checked(&bytes, 64).unwrap();
        let all: Vec<_> = tlvs.into_iter().collect();
        assert_eq!(all.len(), 2);
        let path: PathTrace<'_> = all[0].parse_as().unwrap();
        assert_eq!(path.len(), 1);
        assert_eq!(
            path.identities().next(),
            Some(ClockIdentity([1, 2, 3, 4, 5, 6, 7, 8]))
        );
        assert_eq!(all[1].parse_as::<Pad>(), Ok(Pad { len: 2 }));
        assert_eq!(
            all[1].parse_as::<PathTrace<'_>>(),
            Err(Error::WrongTlvType {
                expected: 8,
                found: 0x8008
            })
        );
        assert_eq!(
            Tlvs::new_checked(&bytes[..10], 64),
            Err(Error::TlvOverrun {
                offset: 64,
                length: 8,
                available: 6
            })
        );
        assert_eq!(
            Tlvs::new_checked(&[0, 8, 0, 3, 1, 2, 3], 64),
            Err(Error::TlvOddLength {
                offset: 64,
                length: 3
            })
        );
        assert!(matches!(
            Tlvs::new_checked(&bytes[..14], 64),
            Err(Error::Truncated { offset: 76, .. })
        ));
    }

    fn round_trip<'a, T: TlvValue<'a> + PartialEq + core::fmt::Debug>(
        value: &T,
        buf: &'a mut [u8],
    ) {
        let len = value.value_len();
        value.emit_value(&mut buf[..len]).unwrap();
        let back = T::parse_value(&buf[..len]).unwrap();
        assert_eq!(&back, value);
    }

    #[test]
    fn typed_tlvs_round_trip() {
        round_trip(
            &RequestUnicastTransmission {
                message_type: 0xB,
                log_inter_message_period: -3,
                duration: 300,
            },
            &mut [0; 16],
        );
        round_trip(
            &GrantUnicastTransmission {
                message_type: 0,
                log_inter_message_period: -4,
                duration: 60,
                renewal_invited: true,
            },
            &mut [0; 16],
        );
        round_trip(
            &CancelUnicastTransmission {
                message_type: 9,
                flags: 3,
            },
            &mut [0; 16],
        );
        round_trip(
            &AcknowledgeCancelUnicastTransmission(CancelUnicastTransmission {
                message_type: 9,
                flags: 0,
            }),
            &mut [0; 16],
        );
        round_trip(
            &OrganizationExtension {
                organization_id: [0, 0x80, 0xC2],
                subtype: [0, 0, 1],
                data: &[1, 2, 3, 4],
            },
            &mut [0; 16],
        );
        round_trip(
            &AlternateTimeOffsetIndicator {
                key: 1,
                current_offset: 3600,
                jump_seconds: -3600,
                time_of_next_jump: 0x1234_5678_9ABC,
                display_name: PtpText(b"CET"),
            },
            &mut [0; 32],
        );
        round_trip(
            &ManagementErrorStatus {
                error: ManagementErrorId::NoSuchId,
                id: ManagementId::Time,
                display_data: PtpText(b""),
            },
            &mut [0; 16],
        );
        round_trip(
            &Authentication {
                spp: 1,
                sec_param_indicator: 0,
                key_id: 77,
                rest: &[9; 16],
            },
            &mut [0; 32],
        );
        round_trip(
            &ManagementTlv {
                id: ManagementId::DefaultDataSet,
                data: &[],
            },
            &mut [0; 4],
        );
    }

    #[test]
    fn short_values_are_errors() {
        assert!(matches!(
            RequestUnicastTransmission::parse_value(&[0; 5]),
            Err(Error::TlvTooShort { .. })
        ));
        assert!(matches!(
            ManagementTlv::parse_value(&[0]),
            Err(Error::TlvTooShort { .. })
        ));
        assert!(PathTrace::parse_value(&[0; 12]).is_err());
        assert!(AlternateTimeOffsetIndicator::parse_value(&[0; 15]).is_err());
    }
}
