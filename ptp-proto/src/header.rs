//! The 34-byte common header (IEEE 1588-2019 clause 13.3).

use crate::Error;
use crate::buffer::read_array;
use crate::types::{PORT_IDENTITY_LEN, PortIdentity, TimeInterval};

/// Length of the common header.
pub const HEADER_LEN: usize = 34;

/// Byte offsets of the common header (IEEE 1588-2019 Table 35).
pub(crate) mod field {
    use core::ops::Range;
    pub(crate) const SDO_TYPE: usize = 0;
    pub(crate) const VERSION: usize = 1;
    pub(crate) const LENGTH: Range<usize> = 2..4;
    pub(crate) const DOMAIN: usize = 4;
    pub(crate) const MINOR_SDO: usize = 5;
    pub(crate) const FLAGS: Range<usize> = 6..8;
    pub(crate) const CORRECTION: Range<usize> = 8..16;
    pub(crate) const TYPE_SPECIFIC: Range<usize> = 16..20;
    pub(crate) const SOURCE_PORT: Range<usize> = 20..30;
    pub(crate) const SEQUENCE: Range<usize> = 30..32;
    pub(crate) const CONTROL: usize = 32;
    pub(crate) const LOG_INTERVAL: usize = 33;
}

/// The message types (IEEE 1588-2019 Table 36).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MessageType {
    /// 0x0, event.
    Sync,
    /// 0x1, event.
    DelayReq,
    /// 0x2, event.
    PdelayReq,
    /// 0x3, event.
    PdelayResp,
    /// 0x8, general.
    FollowUp,
    /// 0x9, general.
    DelayResp,
    /// 0xA, general.
    PdelayRespFollowUp,
    /// 0xB, general.
    Announce,
    /// 0xC, general.
    Signaling,
    /// 0xD, general.
    Management,
}

impl MessageType {
    /// The type of a 4-bit wire value.
    pub const fn from_nibble(value: u8) -> Result<Self, Error> {
        Ok(match value & 0x0F {
            0x0 => Self::Sync,
            0x1 => Self::DelayReq,
            0x2 => Self::PdelayReq,
            0x3 => Self::PdelayResp,
            0x8 => Self::FollowUp,
            0x9 => Self::DelayResp,
            0xA => Self::PdelayRespFollowUp,
            0xB => Self::Announce,
            0xC => Self::Signaling,
            0xD => Self::Management,
            other => return Err(Error::ReservedMessageType { value: other }),
        })
    }

    /// The 4-bit wire value.
    pub const fn to_nibble(self) -> u8 {
        match self {
            Self::Sync => 0x0,
            Self::DelayReq => 0x1,
            Self::PdelayReq => 0x2,
            Self::PdelayResp => 0x3,
            Self::FollowUp => 0x8,
            Self::DelayResp => 0x9,
            Self::PdelayRespFollowUp => 0xA,
            Self::Announce => 0xB,
            Self::Signaling => 0xC,
            Self::Management => 0xD,
        }
    }

    /// Event messages are timestamped and go to UDP port 319; general ones to 320.
    pub const fn is_event(self) -> bool {
        matches!(
            self,
            Self::Sync | Self::DelayReq | Self::PdelayReq | Self::PdelayResp
        )
    }

    /// The body length after the header (without TLVs).
    pub const fn body_len(self) -> usize {
        match self {
            Self::Sync | Self::DelayReq | Self::FollowUp => 10,
            Self::PdelayReq | Self::PdelayResp | Self::DelayResp | Self::PdelayRespFollowUp => 20,
            Self::Announce => 30,
            Self::Signaling => 10,
            Self::Management => 14,
        }
    }

    /// The name, as 1588 spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sync => "Sync",
            Self::DelayReq => "Delay_Req",
            Self::PdelayReq => "Pdelay_Req",
            Self::PdelayResp => "Pdelay_Resp",
            Self::FollowUp => "Follow_Up",
            Self::DelayResp => "Delay_Resp",
            Self::PdelayRespFollowUp => "Pdelay_Resp_Follow_Up",
            Self::Announce => "Announce",
            Self::Signaling => "Signaling",
            Self::Management => "Management",
        }
    }

    /// The controlField value 1588 v1 hardware expects (Table 42).
    pub const fn control_field(self) -> u8 {
        match self {
            Self::Sync => 0,
            Self::DelayReq => 1,
            Self::FollowUp => 2,
            Self::DelayResp => 3,
            Self::Management => 4,
            _ => 5,
        }
    }
}

/// The flagField (IEEE 1588-2019 Table 37) as a typed set. Octet 0 is the high byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Flags(pub u16);

impl Flags {
    /// alternateMasterFlag.
    pub const ALTERNATE_MASTER: u16 = 0x0100;
    /// twoStepFlag: a Follow_Up carries the precise time.
    pub const TWO_STEP: u16 = 0x0200;
    /// unicastFlag.
    pub const UNICAST: u16 = 0x0400;
    /// PTP profile specific 1.
    pub const PROFILE_SPECIFIC_1: u16 = 0x2000;
    /// PTP profile specific 2.
    pub const PROFILE_SPECIFIC_2: u16 = 0x4000;
    /// leap61: the last minute of the day has 61 seconds.
    pub const LEAP_61: u16 = 0x0001;
    /// leap59: the last minute of the day has 59 seconds.
    pub const LEAP_59: u16 = 0x0002;
    /// currentUtcOffsetValid.
    pub const UTC_OFFSET_VALID: u16 = 0x0004;
    /// ptpTimescale: the grandmaster's timescale is PTP (TAI).
    pub const PTP_TIMESCALE: u16 = 0x0008;
    /// timeTraceable.
    pub const TIME_TRACEABLE: u16 = 0x0010;
    /// frequencyTraceable.
    pub const FREQUENCY_TRACEABLE: u16 = 0x0020;
    /// synchronizationUncertain.
    pub const SYNCHRONIZATION_UNCERTAIN: u16 = 0x0040;

    /// Whether every bit of `flag` is set.
    pub const fn contains(self, flag: u16) -> bool {
        self.0 & flag == flag
    }

    /// The set with `flag` set or cleared.
    pub const fn with(self, flag: u16, on: bool) -> Self {
        if on {
            Self(self.0 | flag)
        } else {
            Self(self.0 & !flag)
        }
    }

    /// twoStepFlag.
    pub const fn two_step(self) -> bool {
        self.contains(Self::TWO_STEP)
    }

    /// unicastFlag.
    pub const fn unicast(self) -> bool {
        self.contains(Self::UNICAST)
    }

    /// leap61.
    pub const fn leap61(self) -> bool {
        self.contains(Self::LEAP_61)
    }

    /// leap59.
    pub const fn leap59(self) -> bool {
        self.contains(Self::LEAP_59)
    }

    /// currentUtcOffsetValid.
    pub const fn utc_offset_valid(self) -> bool {
        self.contains(Self::UTC_OFFSET_VALID)
    }

    /// ptpTimescale.
    pub const fn ptp_timescale(self) -> bool {
        self.contains(Self::PTP_TIMESCALE)
    }

    /// timeTraceable.
    pub const fn time_traceable(self) -> bool {
        self.contains(Self::TIME_TRACEABLE)
    }

    /// frequencyTraceable.
    pub const fn frequency_traceable(self) -> bool {
        self.contains(Self::FREQUENCY_TRACEABLE)
    }

    /// synchronizationUncertain.
    pub const fn synchronization_uncertain(self) -> bool {
        self.contains(Self::SYNCHRONIZATION_UNCERTAIN)
    }
}

/// A log2 message interval; 0x7F means unspecified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LogInterval(pub i8);

impl LogInterval {
    /// 0x7F: unspecified.
    pub const UNSPECIFIED: Self = Self(0x7F);

    /// The interval in seconds, or `None` when unspecified.
    pub fn seconds(self) -> Option<f64> {
        (self != Self::UNSPECIFIED)
            .then(|| f64::from_bits(((i64::from(self.0) + 1023) as u64) << 52))
    }
}

/// The common header, every field typed. `message_length` is what the header says; the
/// writers fill it in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PtpHeader {
    /// majorSdoId (transportSpecific in 1588-2008): 4 bits; 1 for gPTP (802.1AS).
    pub major_sdo_id: u8,
    /// The message type.
    pub message_type: MessageType,
    /// minorVersionPTP: 0 (1588-2008) or 1 (1588-2019).
    pub minor_version: u8,
    /// messageLength.
    pub message_length: u16,
    /// domainNumber.
    pub domain_number: u8,
    /// minorSdoId.
    pub minor_sdo_id: u8,
    /// The flags.
    pub flags: Flags,
    /// correctionField.
    pub correction: TimeInterval,
    /// messageTypeSpecific.
    pub message_type_specific: [u8; 4],
    /// sourcePortIdentity.
    pub source_port_identity: PortIdentity,
    /// sequenceId.
    pub sequence_id: u16,
    /// controlField.
    pub control_field: u8,
    /// logMessageInterval.
    pub log_message_interval: LogInterval,
}

impl PtpHeader {
    /// A header with the defaults a 1588-2019 port sends (version 2.1, domain 0, the
    /// controlField of its type, interval unspecified).
    pub fn new(message_type: MessageType, source: PortIdentity, sequence_id: u16) -> Self {
        Self {
            major_sdo_id: 0,
            message_type,
            minor_version: 1,
            message_length: 0,
            domain_number: 0,
            minor_sdo_id: 0,
            flags: Flags::default(),
            correction: TimeInterval::ZERO,
            message_type_specific: [0; 4],
            source_port_identity: source,
            sequence_id,
            control_field: message_type.control_field(),
            log_message_interval: LogInterval::UNSPECIFIED,
        }
    }

    /// Reads the header at the start of `bytes`: version, then type, then every field.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let b: [u8; HEADER_LEN] = read_array(bytes, 0, "common header")?;
        let major = b[field::VERSION] & 0x0F;
        let minor = b[field::VERSION] >> 4;
        if major != 2 || minor > 1 {
            return Err(Error::UnsupportedVersion { major, minor });
        }
        let message_type = MessageType::from_nibble(b[field::SDO_TYPE])?;
        let word = |r: core::ops::Range<usize>| u16::from_be_bytes([b[r.start], b[r.start + 1]]);
        let mut correction = [0u8; 8];
        correction.copy_from_slice(&b[field::CORRECTION]);
        let mut specific = [0u8; 4];
        specific.copy_from_slice(&b[field::TYPE_SPECIFIC]);
        Ok(Self {
            major_sdo_id: b[field::SDO_TYPE] >> 4,
            message_type,
            minor_version: minor,
            message_length: word(field::LENGTH),
            domain_number: b[field::DOMAIN],
            minor_sdo_id: b[field::MINOR_SDO],
            flags: Flags(word(field::FLAGS)),
            correction: TimeInterval(i64::from_be_bytes(correction)),
            message_type_specific: specific,
            source_port_identity: PortIdentity::parse(&b[field::SOURCE_PORT])?,
            sequence_id: word(field::SEQUENCE),
            control_field: b[field::CONTROL],
            log_message_interval: LogInterval(b[field::LOG_INTERVAL] as i8),
        })
    }

    /// The 34 wire bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[field::SDO_TYPE] = (self.major_sdo_id << 4) | self.message_type.to_nibble();
        b[field::VERSION] = (self.minor_version << 4) | 2;
        b[field::LENGTH].copy_from_slice(&self.message_length.to_be_bytes());
        b[field::DOMAIN] = self.domain_number;
        b[field::MINOR_SDO] = self.minor_sdo_id;
        b[field::FLAGS].copy_from_slice(&self.flags.0.to_be_bytes());
        b[field::CORRECTION].copy_from_slice(&self.correction.0.to_be_bytes());
        b[field::TYPE_SPECIFIC].copy_from_slice(&self.message_type_specific);
        let port: [u8; PORT_IDENTITY_LEN] = self.source_port_identity.to_bytes();
        b[field::SOURCE_PORT].copy_from_slice(&port);
        b[field::SEQUENCE].copy_from_slice(&self.sequence_id.to_be_bytes());
        b[field::CONTROL] = self.control_field;
        b[field::LOG_INTERVAL] = self.log_message_interval.0 as u8;
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ClockIdentity;

    #[test]
    fn header_both_ways() {
        let source = PortIdentity {
            clock_identity: ClockIdentity([1, 2, 3, 0xff, 0xfe, 4, 5, 6]),
            port_number: 1,
        };
        let mut h = PtpHeader::new(MessageType::FollowUp, source, 0x1234);
        h.message_length = 44;
        h.domain_number = 24;
        h.flags = Flags(Flags::PTP_TIMESCALE | Flags::UTC_OFFSET_VALID);
        h.correction = TimeInterval(-0x10000);
        h.log_message_interval = LogInterval(-3);
        let bytes = h.to_bytes();
        assert_eq!(
            bytes,
            [
                0x08, 0x12, 0x00, 0x2C, 24, 0, 0x00, 0x0C, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                0x00, 0x00, 0, 0, 0, 0, 1, 2, 3, 0xff, 0xfe, 4, 5, 6, 0, 1, 0x12, 0x34, 2, 0xFD
            ]
        );
        assert_eq!(PtpHeader::parse(&bytes), Ok(h));
    }

    #[test]
    fn version_and_type_are_checked() {
        let h = PtpHeader::new(MessageType::Sync, PortIdentity::default(), 0);
        let mut bytes = h.to_bytes();
        bytes[1] = 0x01; // PTPv1
        assert_eq!(
            PtpHeader::parse(&bytes),
            Err(Error::UnsupportedVersion { major: 1, minor: 0 })
        );
        bytes[1] = 0x22; // 2.2
        assert!(PtpHeader::parse(&bytes).is_err());
        bytes[1] = 0x02;
        bytes[0] = 0x05;
        assert_eq!(
            PtpHeader::parse(&bytes),
            Err(Error::ReservedMessageType { value: 5 })
        );
        assert!(matches!(
            PtpHeader::parse(&bytes[..33]),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn flags_and_intervals() {
        let f = Flags(0x0208).with(Flags::LEAP_61, true);
        assert!(f.two_step() && f.ptp_timescale() && f.leap61() && !f.unicast());
        assert!(!f.with(Flags::TWO_STEP, false).two_step());
        assert_eq!(LogInterval(-2).seconds(), Some(0.25));
        assert_eq!(LogInterval(1).seconds(), Some(2.0));
        assert_eq!(LogInterval::UNSPECIFIED.seconds(), None);
        for t in 0..16u8 {
            if let Ok(mt) = MessageType::from_nibble(t) {
                assert_eq!(mt.to_nibble(), t);
                assert_eq!(mt.is_event(), t < 4);
            }
        }
    }
}
