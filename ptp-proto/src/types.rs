//! The derived data types of IEEE 1588-2019 clause 5.3 and the enumerations of clause 7.

use core::fmt;

use crate::Error;
use crate::buffer::{output_prefix, read_array};

/// Largest value of the 48-bit seconds field.
pub const MAX_SECONDS: u64 = (1 << 48) - 1;

/// A PTP timestamp: 48-bit seconds and nanoseconds (below 10^9) since the PTP epoch,
/// 1970-01-01T00:00:00 TAI. The PTP timescale is TAI; UTC is TAI minus currentUtcOffset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PtpTimestamp {
    seconds: u64,
    nanos: u32,
}

/// Length of a timestamp on the wire.
pub const TIMESTAMP_LEN: usize = 10;

impl PtpTimestamp {
    /// Zero: the PTP epoch.
    pub const ZERO: Self = Self {
        seconds: 0,
        nanos: 0,
    };

    /// A timestamp, checked: seconds within 48 bits, nanoseconds below 10^9.
    pub const fn new(seconds: u64, nanos: u32) -> Result<Self, Error> {
        if seconds > MAX_SECONDS {
            return Err(Error::SecondsOutOfRange { seconds });
        }
        if nanos >= 1_000_000_000 {
            return Err(Error::InvalidNanoseconds { nanos });
        }
        Ok(Self { seconds, nanos })
    }

    /// Seconds since the epoch.
    pub const fn seconds(self) -> u64 {
        self.seconds
    }

    /// Nanoseconds past the second.
    pub const fn nanos(self) -> u32 {
        self.nanos
    }

    /// Nanoseconds since the PTP epoch (TAI).
    pub const fn as_tai_nanos(self) -> i128 {
        self.seconds as i128 * 1_000_000_000 + self.nanos as i128
    }

    /// A timestamp from nanoseconds since the PTP epoch; errors outside 0..2^48 s.
    pub const fn from_tai_nanos(nanos: i128) -> Result<Self, Error> {
        if nanos < 0 {
            return Err(Error::SecondsOutOfRange { seconds: 0 });
        }
        let seconds = nanos / 1_000_000_000;
        if seconds > MAX_SECONDS as i128 {
            return Err(Error::SecondsOutOfRange {
                seconds: if seconds > u64::MAX as i128 {
                    u64::MAX
                } else {
                    seconds as u64
                },
            });
        }
        Ok(Self {
            seconds: seconds as u64,
            nanos: (nanos % 1_000_000_000) as u32,
        })
    }

    /// Nanoseconds since 1970-01-01T00:00:00 UTC, given currentUtcOffset (TAI - UTC, 37 s
    /// since 2017).
    pub const fn to_utc_nanos(self, current_utc_offset: i16) -> i128 {
        self.as_tai_nanos() - current_utc_offset as i128 * 1_000_000_000
    }

    /// The PTP timestamp of a UTC time given currentUtcOffset.
    pub const fn from_utc_nanos(utc_nanos: i128, current_utc_offset: i16) -> Result<Self, Error> {
        Self::from_tai_nanos(utc_nanos + current_utc_offset as i128 * 1_000_000_000)
    }

    /// Reads 10 bytes at the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let b: [u8; TIMESTAMP_LEN] = read_array(bytes, 0, "timestamp")?;
        let seconds = u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]]);
        let nanos = u32::from_be_bytes([b[6], b[7], b[8], b[9]]);
        Self::new(seconds, nanos)
    }

    /// The 10 wire bytes.
    pub const fn to_bytes(self) -> [u8; TIMESTAMP_LEN] {
        let s = self.seconds.to_be_bytes();
        let n = self.nanos.to_be_bytes();
        [s[2], s[3], s[4], s[5], s[6], s[7], n[0], n[1], n[2], n[3]]
    }
}

/// A signed time interval in units of 2^-16 nanoseconds (the correctionField and the
/// TimeInterval type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TimeInterval(pub i64);

impl TimeInterval {
    /// Zero.
    pub const ZERO: Self = Self(0);

    /// An interval of whole nanoseconds, saturating.
    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos.saturating_mul(1 << 16))
    }

    /// An interval of nanoseconds as `f64`, saturating; NaN gives zero.
    pub fn from_nanos_f64(nanos: f64) -> Self {
        Self((nanos * 65_536.0) as i64)
    }

    /// The interval in nanoseconds as `f64`.
    pub fn to_nanos_f64(self) -> f64 {
        self.0 as f64 / 65_536.0
    }

    /// The interval in whole nanoseconds, rounded toward negative infinity.
    pub const fn to_nanos(self) -> i64 {
        self.0 >> 16
    }
}

/// A clock's EUI-64 identity.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ClockIdentity(pub [u8; 8]);

impl ClockIdentity {
    /// The identity built from a 48-bit MAC address by inserting 0xFF 0xFE in the middle
    /// (IEEE 1588-2019 7.5.2.2.2). Any MAC works, locally administered ones (veth,
    /// containers) included.
    pub const fn from_mac(mac: [u8; 6]) -> Self {
        Self([mac[0], mac[1], mac[2], 0xFF, 0xFE, mac[3], mac[4], mac[5]])
    }
}

impl fmt::Debug for ClockIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ClockIdentity {
    /// As linuxptp prints it: `001122.fffe.334455`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}.{:02x}{:02x}.{:02x}{:02x}{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]
        )
    }
}

/// A port: its clock's identity and its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PortIdentity {
    /// The clock.
    pub clock_identity: ClockIdentity,
    /// The port number (1-based; 0xFFFF means all ports).
    pub port_number: u16,
}

/// Length of a port identity on the wire.
pub const PORT_IDENTITY_LEN: usize = 10;

impl PortIdentity {
    /// Every port of every clock (a management target).
    pub const ALL: Self = Self {
        clock_identity: ClockIdentity([0xFF; 8]),
        port_number: 0xFFFF,
    };

    /// Reads 10 bytes at the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let b: [u8; PORT_IDENTITY_LEN] = read_array(bytes, 0, "port identity")?;
        Ok(Self {
            clock_identity: ClockIdentity([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            port_number: u16::from_be_bytes([b[8], b[9]]),
        })
    }

    /// The 10 wire bytes.
    pub const fn to_bytes(self) -> [u8; PORT_IDENTITY_LEN] {
        let c = self.clock_identity.0;
        let p = self.port_number.to_be_bytes();
        [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], p[0], p[1]]
    }
}

impl fmt::Display for PortIdentity {
    /// As linuxptp prints it: `001122.fffe.334455-1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.clock_identity, self.port_number)
    }
}

/// How accurate a clock claims to be (IEEE 1588-2019 Table 5). Values this crate does not
/// know are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ClockAccuracy {
    /// A known value, with its bound in nanoseconds as the table gives it.
    Within {
        /// The wire value.
        value: u8,
    },
    /// 0xFE: unknown.
    Unknown,
    /// A reserved or profile-specific value, kept. (Not `Unknown(raw)` as in the other
    /// registries: the standard names 0xFE "unknown", which is [`Self::Unknown`].)
    Other(u8),
}

/// Bounds of the known accuracy values 0x17..=0x31 (Table 5), in femtoseconds so that
/// 2.5 ps is a whole number; 0x31 ("greater than 10 s") is `u64::MAX`.
const ACCURACY_FS: [u64; 27] = [
    1_000,
    2_500,
    10_000,
    25_000,
    100_000,
    250_000,
    1_000_000,
    2_500_000,
    10_000_000,
    25_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
    2_500_000_000,
    10_000_000_000,
    25_000_000_000,
    100_000_000_000,
    250_000_000_000,
    1_000_000_000_000,
    2_500_000_000_000,
    10_000_000_000_000,
    25_000_000_000_000,
    100_000_000_000_000,
    250_000_000_000_000,
    1_000_000_000_000_000,
    10_000_000_000_000_000,
    u64::MAX,
];

wire_number!(ClockAccuracy, u8, from_u8, to_u8);

impl ClockAccuracy {
    /// The accuracy of a wire value.
    pub const fn from_u8(value: u8) -> Self {
        match value {
            0x17..=0x31 => Self::Within { value },
            0xFE => Self::Unknown,
            other => Self::Other(other),
        }
    }

    /// The wire value.
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Within { value } | Self::Other(value) => value,
            Self::Unknown => 0xFE,
        }
    }

    /// The bound in femtoseconds for known values (0x31, "greater than 10 s", gives
    /// `u64::MAX`).
    pub const fn bound_femtoseconds(self) -> Option<u64> {
        match self {
            Self::Within { value } => Some(ACCURACY_FS[(value - 0x17) as usize]),
            _ => None,
        }
    }
}

/// The source of a grandmaster's time (IEEE 1588-2019 Table 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum TimeSource {
    /// 0x10.
    AtomicClock,
    /// 0x20 (GPS in 1588-2008).
    Gnss,
    /// 0x30.
    TerrestrialRadio,
    /// 0x39.
    SerialTimeCode,
    /// 0x40.
    Ptp,
    /// 0x50.
    Ntp,
    /// 0x60.
    HandSet,
    /// 0x90.
    Other,
    /// 0xA0.
    InternalOscillator,
    /// Any other value, kept.
    Unknown(u8),
}

wire_number!(TimeSource, u8, from_u8, to_u8);

impl TimeSource {
    /// The source of a wire value.
    pub const fn from_u8(value: u8) -> Self {
        match value {
            0x10 => Self::AtomicClock,
            0x20 => Self::Gnss,
            0x30 => Self::TerrestrialRadio,
            0x39 => Self::SerialTimeCode,
            0x40 => Self::Ptp,
            0x50 => Self::Ntp,
            0x60 => Self::HandSet,
            0x90 => Self::Other,
            0xA0 => Self::InternalOscillator,
            other => Self::Unknown(other),
        }
    }

    /// The wire value.
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::AtomicClock => 0x10,
            Self::Gnss => 0x20,
            Self::TerrestrialRadio => 0x30,
            Self::SerialTimeCode => 0x39,
            Self::Ptp => 0x40,
            Self::Ntp => 0x50,
            Self::HandSet => 0x60,
            Self::Other => 0x90,
            Self::InternalOscillator => 0xA0,
            Self::Unknown(v) => v,
        }
    }
}

/// A clock's quality, as announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ClockQuality {
    /// clockClass (6: primary reference locked; 248: default; 255: slave-only).
    pub clock_class: u8,
    /// clockAccuracy.
    pub clock_accuracy: ClockAccuracy,
    /// offsetScaledLogVariance.
    pub offset_scaled_log_variance: u16,
}

/// Length of a clock quality on the wire.
pub const CLOCK_QUALITY_LEN: usize = 4;

impl ClockQuality {
    /// Reads 4 bytes at the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let b: [u8; CLOCK_QUALITY_LEN] = read_array(bytes, 0, "clock quality")?;
        Ok(Self {
            clock_class: b[0],
            clock_accuracy: ClockAccuracy::from_u8(b[1]),
            offset_scaled_log_variance: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// The 4 wire bytes.
    pub const fn to_bytes(self) -> [u8; CLOCK_QUALITY_LEN] {
        let v = self.offset_scaled_log_variance.to_be_bytes();
        [self.clock_class, self.clock_accuracy.to_u8(), v[0], v[1]]
    }
}

/// A PTPText: an 8-bit length and UTF-8 bytes, borrowed from the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PtpText<'a>(pub &'a [u8]);

impl<'a> PtpText<'a> {
    /// Reads a text at the start of `bytes`; returns it and the bytes it took.
    pub fn parse(bytes: &'a [u8]) -> Result<(Self, usize), Error> {
        let [len] = read_array::<1>(bytes, 0, "text length")?;
        let len = usize::from(len);
        let text = bytes.get(1..1 + len).ok_or(Error::Truncated {
            what: "text",
            offset: 1,
            needed: len,
            available: bytes.len().saturating_sub(1),
        })?;
        Ok((Self(text), 1 + len))
    }

    /// Bytes the text takes on the wire.
    pub const fn buffer_len(&self) -> usize {
        1 + self.0.len()
    }

    /// Writes the text; returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, Error> {
        let len =
            u8::try_from(self.0.len()).map_err(|_| Error::TextTooLong { len: self.0.len() })?;
        let out = output_prefix(buffer, self.buffer_len())?;
        out[0] = len;
        out[1..].copy_from_slice(self.0);
        Ok(self.buffer_len())
    }

    /// The text, if it is UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.0).ok()
    }
}

/// The state of a port (IEEE 1588-2019 Table 20).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum PortState {
    /// 1.
    Initializing,
    /// 2.
    Faulty,
    /// 3.
    Disabled,
    /// 4.
    Listening,
    /// 5.
    PreMaster,
    /// 6.
    Master,
    /// 7.
    Passive,
    /// 8.
    Uncalibrated,
    /// 9.
    Slave,
    /// Any other value, kept.
    Unknown(u8),
}

wire_number!(PortState, u8, from_u8, to_u8);

impl PortState {
    /// The state of a wire value.
    pub const fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Initializing,
            2 => Self::Faulty,
            3 => Self::Disabled,
            4 => Self::Listening,
            5 => Self::PreMaster,
            6 => Self::Master,
            7 => Self::Passive,
            8 => Self::Uncalibrated,
            9 => Self::Slave,
            other => Self::Unknown(other),
        }
    }

    /// The wire value.
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Initializing => 1,
            Self::Faulty => 2,
            Self::Disabled => 3,
            Self::Listening => 4,
            Self::PreMaster => 5,
            Self::Master => 6,
            Self::Passive => 7,
            Self::Uncalibrated => 8,
            Self::Slave => 9,
            Self::Unknown(v) => v,
        }
    }
}

/// The delay mechanism of a port (IEEE 1588-2019 Table 21).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum DelayMechanism {
    /// 0x01: end to end (Delay_Req/Delay_Resp).
    E2e,
    /// 0x02: peer to peer (Pdelay).
    P2p,
    /// 0x03: common peer to peer.
    CommonP2p,
    /// 0x04: special (profile-defined).
    Special,
    /// 0xFE: none.
    NoMechanism,
    /// Any other value, kept.
    Unknown(u8),
}

wire_number!(DelayMechanism, u8, from_u8, to_u8);

impl DelayMechanism {
    /// The mechanism of a wire value.
    pub const fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::E2e,
            2 => Self::P2p,
            3 => Self::CommonP2p,
            4 => Self::Special,
            0xFE => Self::NoMechanism,
            other => Self::Unknown(other),
        }
    }

    /// The wire value.
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::E2e => 1,
            Self::P2p => 2,
            Self::CommonP2p => 3,
            Self::Special => 4,
            Self::NoMechanism => 0xFE,
            Self::Unknown(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn timestamp_both_ways() {
        let ts = PtpTimestamp::new(0x0000_1234_5678, 999_999_999).unwrap();
        let bytes = [0x00, 0x00, 0x12, 0x34, 0x56, 0x78, 0x3B, 0x9A, 0xC9, 0xFF];
        assert_eq!(ts.to_bytes(), bytes);
        assert_eq!(PtpTimestamp::parse(&bytes), Ok(ts));
        let bad = [0, 0, 0, 0, 0, 0, 0x3B, 0x9A, 0xCA, 0x00];
        assert_eq!(
            PtpTimestamp::parse(&bad),
            Err(Error::InvalidNanoseconds {
                nanos: 1_000_000_000
            })
        );
        assert!(PtpTimestamp::new(1 << 48, 0).is_err());
        assert!(matches!(
            PtpTimestamp::parse(&bytes[..9]),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn tai_and_utc() {
        // 2017-01-01T00:00:00 UTC is 1483228800 UTC seconds; TAI is 37 s ahead.
        let ts = PtpTimestamp::from_utc_nanos(1_483_228_800_000_000_000, 37).unwrap();
        assert_eq!(ts.seconds(), 1_483_228_837);
        assert_eq!(ts.to_utc_nanos(37), 1_483_228_800_000_000_000);
        assert!(PtpTimestamp::from_tai_nanos(-1).is_err());
    }

    #[test]
    fn clock_identity_from_any_mac() {
        // A locally administered veth MAC works as any other.
        let id = ClockIdentity::from_mac([0x02, 0x42, 0xac, 0x11, 0x00, 0x02]);
        assert_eq!(id.0, [0x02, 0x42, 0xac, 0xff, 0xfe, 0x11, 0x00, 0x02]);
        assert_eq!(id.to_string(), "0242ac.fffe.110002");
        let port = PortIdentity {
            clock_identity: id,
            port_number: 1,
        };
        assert_eq!(port.to_string(), "0242ac.fffe.110002-1");
        assert_eq!(PortIdentity::parse(&port.to_bytes()), Ok(port));
    }

    #[test]
    fn enumerations_keep_unknown_values() {
        for v in 0..=255u8 {
            assert_eq!(ClockAccuracy::from_u8(v).to_u8(), v);
            assert_eq!(TimeSource::from_u8(v).to_u8(), v);
            assert_eq!(PortState::from_u8(v).to_u8(), v);
            assert_eq!(DelayMechanism::from_u8(v).to_u8(), v);
        }
        assert_eq!(
            ClockAccuracy::from_u8(0x18).bound_femtoseconds(),
            Some(2_500)
        );
        assert_eq!(
            ClockAccuracy::from_u8(0x21).bound_femtoseconds(),
            Some(100_000_000)
        );
        assert_eq!(
            ClockAccuracy::from_u8(0x23).bound_femtoseconds(),
            Some(1_000_000_000)
        );
        assert_eq!(
            ClockAccuracy::from_u8(0x31).bound_femtoseconds(),
            Some(u64::MAX)
        );
        assert_eq!(ClockAccuracy::from_u8(0xFE), ClockAccuracy::Unknown);
        assert_eq!(TimeSource::from_u8(0xA0), TimeSource::InternalOscillator);
    }

    #[test]
    fn time_interval() {
        assert_eq!(TimeInterval::from_nanos(3).0, 3 << 16);
        assert_eq!(TimeInterval(0x18000).to_nanos_f64(), 1.5);
        assert_eq!(TimeInterval::from_nanos(i64::MAX).0, i64::MAX);
        assert_eq!(TimeInterval::from_nanos_f64(f64::NAN), TimeInterval::ZERO);
    }

    #[test]
    fn text() {
        let mut buf = [0u8; 8];
        assert_eq!(PtpText(b"eth0").emit(&mut buf), Ok(5));
        assert_eq!(buf[..5], [4, b'e', b't', b'h', b'0']);
        let (text, used) = PtpText::parse(&buf).unwrap();
        assert_eq!((text.as_str(), used), (Some("eth0"), 5));
        assert!(PtpText::parse(&[9, 1, 2]).is_err());
        let long = [0u8; 256];
        assert_eq!(
            PtpText(&long).emit(&mut [0u8; 300]),
            Err(Error::TextTooLong { len: 256 })
        );
    }

    proptest! {
        /// Every registry keeps every wire number, through `From` both ways.
        #[test]
        fn registries_keep_every_wire_number(b in any::<u8>(), w in any::<u16>()) {
            prop_assert_eq!(u8::from(TimeSource::from(b)), b);
            prop_assert_eq!(u8::from(ClockAccuracy::from(b)), b);
            prop_assert_eq!(u8::from(DelayMechanism::from(b)), b);
            prop_assert_eq!(u16::from(crate::tlv::TlvType::from(w)), w);
            prop_assert_eq!(u16::from(crate::management::ManagementId::from(w)), w);
            prop_assert_eq!(
                u8::from(crate::management::ManagementAction::from(b & 0x0F)),
                b & 0x0F
            );
        }
    }

    proptest! {
        #[test]
        fn timestamps_round_trip(seconds in 0u64..=MAX_SECONDS, nanos in 0u32..1_000_000_000) {
            let ts = PtpTimestamp::new(seconds, nanos).unwrap();
            prop_assert_eq!(PtpTimestamp::parse(&ts.to_bytes()), Ok(ts));
            prop_assert_eq!(PtpTimestamp::from_tai_nanos(ts.as_tai_nanos()), Ok(ts));
        }

        #[test]
        fn quality_round_trips(bytes: [u8; 4]) {
            let q = ClockQuality::parse(&bytes).unwrap();
            prop_assert_eq!(q.to_bytes(), bytes);
        }
    }
}
