//! The 48-byte NTP header (RFC 5905 section 7.3): a zero-copy view, [`HeaderView`], and an
//! owned, validated value, [`NtpHeader`].

use core::net::{Ipv4Addr, Ipv6Addr};

use md5::{Digest, Md5};

use crate::Error;
use crate::buffer::output_prefix;
use crate::kiss::KissCode;
use crate::time::{Log2Seconds, NtpShort, NtpTimestamp};

/// Length of the NTP header.
pub const HEADER_LEN: usize = 48;

/// Byte offsets of the header fields.
mod field {
    use core::ops::{Range, RangeFrom};

    pub(super) const LI_VN_MODE: usize = 0;
    pub(super) const STRATUM: usize = 1;
    pub(super) const POLL: usize = 2;
    pub(super) const PRECISION: usize = 3;
    pub(super) const ROOT_DELAY: Range<usize> = 4..8;
    pub(super) const ROOT_DISPERSION: Range<usize> = 8..12;
    pub(super) const REFERENCE_ID: Range<usize> = 12..16;
    pub(super) const REFERENCE_TIMESTAMP: Range<usize> = 16..24;
    pub(super) const ORIGIN_TIMESTAMP: Range<usize> = 24..32;
    pub(super) const RECEIVE_TIMESTAMP: Range<usize> = 32..40;
    pub(super) const TRANSMIT_TIMESTAMP: Range<usize> = 40..48;
    pub(super) const TRAILER: RangeFrom<usize> = 48..;
}

/// The leap indicator: a warning of a leap second at the end of the current UTC day, or
/// the alarm that the clock is not synchronised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum LeapIndicator {
    /// No leap second pending.
    #[default]
    NoWarning,
    /// The last minute of the day has 61 seconds.
    InsertSecond,
    /// The last minute of the day has 59 seconds.
    DeleteSecond,
    /// Clock not synchronised (alarm).
    Unsynchronized,
}

impl LeapIndicator {
    /// The leap indicator of the two-bit wire value (upper bits are ignored).
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0 => Self::NoWarning,
            1 => Self::InsertSecond,
            2 => Self::DeleteSecond,
            _ => Self::Unsynchronized,
        }
    }

    /// The two-bit wire value.
    pub const fn to_bits(self) -> u8 {
        self as u8
    }
}

/// The NTP versions this crate reads and writes as time packets. Other versions are
/// reported by [`Error::VersionTooOld`] and [`Error::VersionTooNew`], so a server can
/// decide what to do with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Version {
    /// NTPv3 (RFC 1305).
    V3,
    /// NTPv4 (RFC 5905).
    #[default]
    V4,
}

impl Version {
    /// The version of a three-bit wire value.
    pub const fn from_bits(bits: u8) -> Result<Self, Error> {
        match bits {
            3 => Ok(Self::V3),
            4 => Ok(Self::V4),
            0..=2 => Err(Error::VersionTooOld { version: bits }),
            _ => Err(Error::VersionTooNew { version: bits }),
        }
    }

    /// The three-bit wire value.
    pub const fn to_bits(self) -> u8 {
        match self {
            Self::V3 => 3,
            Self::V4 => 4,
        }
    }
}

/// All eight values of the mode field. Modes 6 and 7 are not time packets; see
/// [`AssociationMode`] for the modes an [`NtpHeader`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Mode {
    /// 0: reserved.
    Reserved,
    /// 1: symmetric active.
    SymmetricActive,
    /// 2: symmetric passive.
    SymmetricPassive,
    /// 3: client.
    Client,
    /// 4: server.
    Server,
    /// 5: broadcast.
    Broadcast,
    /// 6: NTP control message (ntpq).
    Control,
    /// 7: reserved for private use (ntpdc; the monlist amplifier, CVE-2013-5211).
    Private,
}

impl Mode {
    /// The mode of a three-bit wire value (upper bits are ignored).
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0b111 {
            0 => Self::Reserved,
            1 => Self::SymmetricActive,
            2 => Self::SymmetricPassive,
            3 => Self::Client,
            4 => Self::Server,
            5 => Self::Broadcast,
            6 => Self::Control,
            _ => Self::Private,
        }
    }

    /// The three-bit wire value.
    pub const fn to_bits(self) -> u8 {
        self as u8
    }

    /// The mode of a datagram from its first byte, without reading anything else, so a
    /// server can drop mode 6 and 7 packets of any length first. `None` for an empty one.
    pub fn peek(packet: &[u8]) -> Option<Self> {
        packet
            .get(field::LI_VN_MODE)
            .map(|&byte| Self::from_bits(byte))
    }
}

/// The modes of a time packet: every mode but 6 (control) and 7 (private).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AssociationMode {
    /// 0: reserved.
    Reserved,
    /// 1: symmetric active.
    SymmetricActive,
    /// 2: symmetric passive.
    SymmetricPassive,
    /// 3: client.
    #[default]
    Client,
    /// 4: server.
    Server,
    /// 5: broadcast.
    Broadcast,
}

impl TryFrom<Mode> for AssociationMode {
    type Error = Error;
    fn try_from(mode: Mode) -> Result<Self, Error> {
        Ok(match mode {
            Mode::Reserved => Self::Reserved,
            Mode::SymmetricActive => Self::SymmetricActive,
            Mode::SymmetricPassive => Self::SymmetricPassive,
            Mode::Client => Self::Client,
            Mode::Server => Self::Server,
            Mode::Broadcast => Self::Broadcast,
            Mode::Control => return Err(Error::ControlMessage),
            Mode::Private => return Err(Error::PrivateMessage),
        })
    }
}

impl From<AssociationMode> for Mode {
    fn from(mode: AssociationMode) -> Self {
        Mode::from_bits(mode as u8)
    }
}

/// The stratum: 0 kiss-o'-death (or unspecified), 1 primary server, 2..=15 secondary
/// server, 16 unsynchronised, 17..=255 reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Stratum(pub u8);

impl Stratum {
    /// Kiss-o'-death: the reference ID holds a kiss code.
    pub const KISS_OF_DEATH: Self = Self(0);
    /// A primary server, synchronised to a reference clock.
    pub const PRIMARY: Self = Self(1);
    /// Unsynchronised.
    pub const UNSYNCHRONIZED: Self = Self(16);

    /// Stratum 0: a kiss-o'-death packet (or, in old servers, "unspecified").
    pub const fn is_kiss_of_death(self) -> bool {
        self.0 == 0
    }

    /// Stratum 1.
    pub const fn is_primary(self) -> bool {
        self.0 == 1
    }

    /// Strata 2 to 15.
    pub const fn is_secondary(self) -> bool {
        matches!(self.0, 2..=15)
    }

    /// Stratum 16.
    pub const fn is_unsynchronized(self) -> bool {
        self.0 == 16
    }

    /// Strata 17 to 255.
    pub const fn is_reserved(self) -> bool {
        self.0 > 16
    }
}

/// The reference ID: a kiss code (stratum 0), a reference clock name (stratum 1), or
/// the upstream server (2..=15): its IPv4 address, or the first four octets of the MD5
/// hash of its IPv6 address (RFC 5905 section 7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ReferenceId(pub [u8; 4]);

impl ReferenceId {
    /// All zeros, as a client request carries.
    pub const NONE: Self = Self([0; 4]);

    /// The reference ID of an upstream IPv4 server.
    pub const fn from_ipv4(address: Ipv4Addr) -> Self {
        Self(address.octets())
    }

    /// The reference ID of an upstream IPv6 server: the first four octets of the MD5 hash
    /// of the address.
    pub fn from_ipv6(address: Ipv6Addr) -> Self {
        let digest = Md5::digest(address.octets());
        Self([digest[0], digest[1], digest[2], digest[3]])
    }

    /// A reference clock name ("GPS", "PPS", "PHC0"): ASCII, left-justified and padded
    /// with zeros; at most four bytes.
    pub fn from_name(name: &[u8]) -> Result<Self, Error> {
        let mut id = [0u8; 4];
        id.get_mut(..name.len())
            .ok_or(Error::ReferenceNameTooLong { len: name.len() })?
            .copy_from_slice(name);
        Ok(Self(id))
    }

    /// The reference ID that carries a kiss code.
    pub fn from_kiss_code(code: KissCode) -> Self {
        Self(code.to_bytes())
    }

    /// What the reference ID means at a given stratum.
    pub fn interpret(self, stratum: Stratum) -> ReferenceIdKind {
        match stratum.0 {
            0 => ReferenceIdKind::Kiss(KissCode::from_bytes(self.0)),
            1 => ReferenceIdKind::ReferenceClock(self.0),
            2..=15 => ReferenceIdKind::Upstream(self),
            _ => ReferenceIdKind::Unspecified(self),
        }
    }

    /// The ID as an IPv4 address (meaningful for an IPv4 upstream).
    pub const fn to_ipv4(self) -> Ipv4Addr {
        Ipv4Addr::new(self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// The meaning of a reference ID, by stratum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReferenceIdKind {
    /// Stratum 0: a kiss code.
    Kiss(KissCode),
    /// Stratum 1: the ASCII name of the reference clock, zero padded.
    ReferenceClock([u8; 4]),
    /// Strata 2 to 15: the upstream server; compare with [`ReferenceId::from_ipv4`] or
    /// [`ReferenceId::from_ipv6`] to detect a loop.
    Upstream(ReferenceId),
    /// Strata 16 and above: no defined meaning.
    Unspecified(ReferenceId),
}

/// As people read a reference ID (what `chronyc` and `ntpq` print): the kiss code's
/// four letters, the reference clock's name, the upstream's IPv4 address (or the hash of
/// its IPv6 address, dotted), or the bytes in hex when nothing is defined.
impl core::fmt::Display for ReferenceIdKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let text = |f: &mut core::fmt::Formatter<'_>, bytes: &[u8]| {
            bytes
                .iter()
                .take_while(|b| **b != 0)
                .try_for_each(|&b| core::fmt::Write::write_char(f, char::from(b)))
        };
        let printable = |bytes: &[u8; 4]| bytes.iter().all(|b| b.is_ascii_graphic() || *b == 0);
        match self {
            Self::Kiss(code) if printable(&code.to_bytes()) => text(f, &code.to_bytes()),
            Self::ReferenceClock(name) if printable(name) => text(f, name),
            Self::Kiss(code) => write!(f, "{:02x?}", code.to_bytes()),
            Self::ReferenceClock(name) => write!(f, "{}", ReferenceId(*name).to_ipv4()),
            Self::Upstream(id) => write!(f, "{}", id.to_ipv4()),
            Self::Unspecified(id) => write!(f, "{:02x?}", id.0),
        }
    }
}

/// A zero-copy view of an NTP packet: the header fields, and the bytes after it.
///
/// Build it with [`HeaderView::new_checked`] for untrusted bytes; no accessor panics after
/// that. With [`HeaderView::new_unchecked`] the accessors panic on a buffer under 48 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderView<T> {
    buffer: T,
}

fn read_u32(data: &[u8], at: core::ops::Range<usize>) -> u32 {
    let b = &data[at];
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn read_u64(data: &[u8], at: core::ops::Range<usize>) -> u64 {
    let b = &data[at];
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

impl<T: AsRef<[u8]>> HeaderView<T> {
    /// A view with no length check.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// A view of a buffer checked to hold the whole header.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let view = Self::new_unchecked(buffer);
        view.check_len()?;
        Ok(view)
    }

    /// Checks that the buffer holds the whole header.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated { len });
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The leap indicator.
    pub fn leap(&self) -> LeapIndicator {
        LeapIndicator::from_bits(self.buffer.as_ref()[field::LI_VN_MODE] >> 6)
    }

    /// The raw three-bit version number.
    pub fn version(&self) -> u8 {
        (self.buffer.as_ref()[field::LI_VN_MODE] >> 3) & 0b111
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        Mode::from_bits(self.buffer.as_ref()[field::LI_VN_MODE])
    }

    /// The stratum.
    pub fn stratum(&self) -> Stratum {
        Stratum(self.buffer.as_ref()[field::STRATUM])
    }

    /// The poll interval.
    pub fn poll(&self) -> Log2Seconds {
        Log2Seconds(self.buffer.as_ref()[field::POLL] as i8)
    }

    /// The precision of the sender's clock.
    pub fn precision(&self) -> Log2Seconds {
        Log2Seconds(self.buffer.as_ref()[field::PRECISION] as i8)
    }

    /// The root delay.
    pub fn root_delay(&self) -> NtpShort {
        NtpShort::from_bits(read_u32(self.buffer.as_ref(), field::ROOT_DELAY))
    }

    /// The root dispersion.
    pub fn root_dispersion(&self) -> NtpShort {
        NtpShort::from_bits(read_u32(self.buffer.as_ref(), field::ROOT_DISPERSION))
    }

    /// The reference ID.
    pub fn reference_id(&self) -> ReferenceId {
        ReferenceId(read_u32(self.buffer.as_ref(), field::REFERENCE_ID).to_be_bytes())
    }

    /// The reference timestamp.
    pub fn reference_timestamp(&self) -> NtpTimestamp {
        NtpTimestamp::from_bits(read_u64(self.buffer.as_ref(), field::REFERENCE_TIMESTAMP))
    }

    /// The origin timestamp.
    pub fn origin_timestamp(&self) -> NtpTimestamp {
        NtpTimestamp::from_bits(read_u64(self.buffer.as_ref(), field::ORIGIN_TIMESTAMP))
    }

    /// The receive timestamp.
    pub fn receive_timestamp(&self) -> NtpTimestamp {
        NtpTimestamp::from_bits(read_u64(self.buffer.as_ref(), field::RECEIVE_TIMESTAMP))
    }

    /// The transmit timestamp.
    pub fn transmit_timestamp(&self) -> NtpTimestamp {
        NtpTimestamp::from_bits(read_u64(self.buffer.as_ref(), field::TRANSMIT_TIMESTAMP))
    }

    /// The bytes after the header: extension fields and MAC, unvalidated.
    pub fn trailer(&self) -> &[u8] {
        &self.buffer.as_ref()[field::TRAILER]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> HeaderView<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    fn write_u32(&mut self, at: core::ops::Range<usize>, value: u32) {
        self.data_mut()[at].copy_from_slice(&value.to_be_bytes());
    }

    fn write_u64(&mut self, at: core::ops::Range<usize>, value: u64) {
        self.data_mut()[at].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the leap indicator, version and mode byte.
    pub fn set_leap_version_mode(&mut self, leap: LeapIndicator, version: u8, mode: Mode) {
        self.data_mut()[field::LI_VN_MODE] =
            (leap.to_bits() << 6) | ((version & 0b111) << 3) | mode.to_bits();
    }

    /// Sets the stratum.
    pub fn set_stratum(&mut self, stratum: Stratum) {
        self.data_mut()[field::STRATUM] = stratum.0;
    }

    /// Sets the poll interval.
    pub fn set_poll(&mut self, poll: Log2Seconds) {
        self.data_mut()[field::POLL] = poll.0 as u8;
    }

    /// Sets the precision.
    pub fn set_precision(&mut self, precision: Log2Seconds) {
        self.data_mut()[field::PRECISION] = precision.0 as u8;
    }

    /// Sets the root delay.
    pub fn set_root_delay(&mut self, value: NtpShort) {
        self.write_u32(field::ROOT_DELAY, value.to_bits());
    }

    /// Sets the root dispersion.
    pub fn set_root_dispersion(&mut self, value: NtpShort) {
        self.write_u32(field::ROOT_DISPERSION, value.to_bits());
    }

    /// Sets the reference ID.
    pub fn set_reference_id(&mut self, id: ReferenceId) {
        self.data_mut()[field::REFERENCE_ID].copy_from_slice(&id.0);
    }

    /// Sets the reference timestamp.
    pub fn set_reference_timestamp(&mut self, ts: NtpTimestamp) {
        self.write_u64(field::REFERENCE_TIMESTAMP, ts.to_bits());
    }

    /// Sets the origin timestamp.
    pub fn set_origin_timestamp(&mut self, ts: NtpTimestamp) {
        self.write_u64(field::ORIGIN_TIMESTAMP, ts.to_bits());
    }

    /// Sets the receive timestamp.
    pub fn set_receive_timestamp(&mut self, ts: NtpTimestamp) {
        self.write_u64(field::RECEIVE_TIMESTAMP, ts.to_bits());
    }

    /// Sets the transmit timestamp. A server calls this last, as late as it can.
    pub fn set_transmit_timestamp(&mut self, ts: NtpTimestamp) {
        self.write_u64(field::TRANSMIT_TIMESTAMP, ts.to_bits());
    }
}

/// The NTP header as a validated value: every field typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NtpHeader {
    /// Leap indicator.
    pub leap: LeapIndicator,
    /// Version (3 or 4).
    pub version: Version,
    /// Mode (never control or private).
    pub mode: AssociationMode,
    /// Stratum.
    pub stratum: Stratum,
    /// Poll interval, log2 seconds.
    pub poll: Log2Seconds,
    /// Precision of the sender's clock, log2 seconds.
    pub precision: Log2Seconds,
    /// Round-trip delay to the primary reference.
    pub root_delay: NtpShort,
    /// Dispersion (error bound) relative to the primary reference.
    pub root_dispersion: NtpShort,
    /// Reference ID.
    pub reference_id: ReferenceId,
    /// When the sender's clock was last set or corrected.
    pub reference_timestamp: NtpTimestamp,
    /// The transmit timestamp of the packet this one answers (T1).
    pub origin_timestamp: NtpTimestamp,
    /// When the request arrived at the sender (T2).
    pub receive_timestamp: NtpTimestamp,
    /// When this packet left the sender (T3).
    pub transmit_timestamp: NtpTimestamp,
}

impl NtpHeader {
    /// Reads the header of a packet. Mode 6 and 7 packets are reported as such before
    /// anything else, whatever their length; then the length, then the version.
    pub fn parse<T: AsRef<[u8]>>(view: &HeaderView<T>) -> Result<Self, Error> {
        let data = view.buffer.as_ref();
        let mode = Mode::peek(data).ok_or(Error::Truncated { len: 0 })?;
        let mode = AssociationMode::try_from(mode)?;
        view.check_len()?;
        Ok(Self {
            leap: view.leap(),
            version: Version::from_bits(view.version())?,
            mode,
            stratum: view.stratum(),
            poll: view.poll(),
            precision: view.precision(),
            root_delay: view.root_delay(),
            root_dispersion: view.root_dispersion(),
            reference_id: view.reference_id(),
            reference_timestamp: view.reference_timestamp(),
            origin_timestamp: view.origin_timestamp(),
            receive_timestamp: view.receive_timestamp(),
            transmit_timestamp: view.transmit_timestamp(),
        })
    }

    /// Reads the header from the start of a byte slice.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, Error> {
        Self::parse(&HeaderView::new_unchecked(bytes))
    }

    /// Bytes the header takes: always 48.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into a view (checked with [`HeaderView::new_checked`], or at
    /// least 48 bytes long).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, view: &mut HeaderView<T>) {
        view.set_leap_version_mode(self.leap, self.version.to_bits(), self.mode.into());
        view.set_stratum(self.stratum);
        view.set_poll(self.poll);
        view.set_precision(self.precision);
        view.set_root_delay(self.root_delay);
        view.set_root_dispersion(self.root_dispersion);
        view.set_reference_id(self.reference_id);
        view.set_reference_timestamp(self.reference_timestamp);
        view.set_origin_timestamp(self.origin_timestamp);
        view.set_receive_timestamp(self.receive_timestamp);
        view.set_transmit_timestamp(self.transmit_timestamp);
    }

    /// Writes the header to the start of a byte slice; returns the bytes written (48).
    pub fn emit_bytes(&self, buffer: &mut [u8]) -> Result<usize, Error> {
        let head = output_prefix(buffer, HEADER_LEN)?;
        self.emit(&mut HeaderView::new_unchecked(head));
        Ok(HEADER_LEN)
    }

    /// The header as an array of 48 bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0u8; HEADER_LEN];
        self.emit(&mut HeaderView::new_unchecked(&mut bytes[..]));
        bytes
    }
}

#[cfg(feature = "bytes")]
impl NtpHeader {
    /// Reads a header from a `bytes::Buf`, consuming 48 bytes.
    pub fn parse_buf<B: bytes::Buf>(buf: &mut B) -> Result<Self, Error> {
        let available = buf.remaining();
        if available < HEADER_LEN {
            return Err(Error::Truncated { len: available });
        }
        let mut bytes = [0u8; HEADER_LEN];
        buf.copy_to_slice(&mut bytes);
        Self::parse_bytes(&bytes)
    }

    /// Appends the header to a `bytes::BufMut`.
    pub fn emit_buf<B: bytes::BufMut>(&self, buf: &mut B) -> Result<(), Error> {
        if buf.remaining_mut() < HEADER_LEN {
            return Err(Error::BufferTooSmall {
                needed: HEADER_LEN,
                available: buf.remaining_mut(),
            });
        }
        buf.put_slice(&self.to_bytes());
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A server response, byte by byte, with every field distinct.
    const RESPONSE: [u8; 48] = [
        0x24, // LI 0, VN 4, mode 4
        0x02, // stratum 2
        0x06, // poll 6
        0xE9, // precision -23
        0x00, 0x00, 0x01, 0x80, // root delay 0x0180 / 65536 s
        0x00, 0x00, 0x02, 0x40, // root dispersion
        0xC0, 0x00, 0x02, 0x01, // reference ID 192.0.2.1
        0xEC, 0xD4, 0x1E, 0x00, 0x11, 0x22, 0x33, 0x44, // reference
        0xEC, 0xD4, 0x1E, 0x10, 0x55, 0x66, 0x77, 0x88, // origin
        0xEC, 0xD4, 0x1E, 0x10, 0x99, 0xAA, 0xBB, 0xCC, // receive
        0xEC, 0xD4, 0x1E, 0x10, 0x99, 0xAA, 0xBB, 0xDD, // transmit
    ];

    fn response_value() -> NtpHeader {
        NtpHeader {
            leap: LeapIndicator::NoWarning,
            version: Version::V4,
            mode: AssociationMode::Server,
            stratum: Stratum(2),
            poll: Log2Seconds(6),
            precision: Log2Seconds(-23),
            root_delay: NtpShort::from_bits(0x180),
            root_dispersion: NtpShort::from_bits(0x240),
            reference_id: ReferenceId::from_ipv4(Ipv4Addr::new(192, 0, 2, 1)),
            reference_timestamp: NtpTimestamp::from_bits(0xECD4_1E00_1122_3344),
            origin_timestamp: NtpTimestamp::from_bits(0xECD4_1E10_5566_7788),
            receive_timestamp: NtpTimestamp::from_bits(0xECD4_1E10_99AA_BBCC),
            transmit_timestamp: NtpTimestamp::from_bits(0xECD4_1E10_99AA_BBDD),
        }
    }

    #[test]
    #[allow(clippy::std_instead_of_alloc)] // the crate has no `alloc`; its tests have std
    fn reference_ids_read_as_chronyc_prints_them() {
        use std::string::ToString;
        let id = |b: &[u8; 4], s: u8| ReferenceId(*b).interpret(Stratum(s)).to_string();
        assert_eq!(id(b"RATE", 0), "RATE");
        assert_eq!(id(b"GPS\0", 1), "GPS");
        assert_eq!(id(&[10, 0, 0, 1], 2), "10.0.0.1");
        assert_eq!(id(&[0xC0, 1, 0x80, 0], 1), "192.1.128.0", "not a name");
        assert_eq!(id(&[1, 2, 3, 4], 16), "[01, 02, 03, 04]");
    }

    #[test]
    fn parse_and_emit_both_ways() {
        assert_eq!(NtpHeader::parse_bytes(&RESPONSE), Ok(response_value()));
        assert_eq!(response_value().to_bytes(), RESPONSE);
    }

    #[test]
    fn view_reads_every_field() {
        let view = HeaderView::new_checked(&RESPONSE[..]).unwrap();
        assert_eq!(view.leap(), LeapIndicator::NoWarning);
        assert_eq!(view.version(), 4);
        assert_eq!(view.mode(), Mode::Server);
        assert_eq!(view.poll(), Log2Seconds(6));
        assert_eq!(view.precision().to_seconds_f64(), 2f64.powi(-23));
        assert_eq!(view.reference_id().to_ipv4(), Ipv4Addr::new(192, 0, 2, 1));
        assert!(view.trailer().is_empty());
    }

    #[test]
    fn short_packets_are_truncated() {
        assert_eq!(
            NtpHeader::parse_bytes(&[]),
            Err(Error::Truncated { len: 0 })
        );
        assert_eq!(
            NtpHeader::parse_bytes(&RESPONSE[..47]),
            Err(Error::Truncated { len: 47 })
        );
        assert!(HeaderView::new_checked(&RESPONSE[..47]).is_err());
    }

    #[test]
    fn versions_reported_distinctly() {
        let mut packet = RESPONSE;
        for (version, expected) in [
            (0, Err(Error::VersionTooOld { version: 0 })),
            (1, Err(Error::VersionTooOld { version: 1 })),
            (2, Err(Error::VersionTooOld { version: 2 })),
            (3, Ok(Version::V3)),
            (4, Ok(Version::V4)),
            (5, Err(Error::VersionTooNew { version: 5 })),
            (7, Err(Error::VersionTooNew { version: 7 })),
        ] {
            packet[0] = (version << 3) | 4;
            assert_eq!(NtpHeader::parse_bytes(&packet).map(|h| h.version), expected);
        }
    }

    #[test]
    fn control_and_private_modes_are_not_time_packets() {
        // A 12-byte mode 6 READSTAT and an 8-byte mode 7 MON_GETLIST_1 request.
        let control = [0x16, 0x01, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let private = [0x17, 0x00, 0x03, 0x2A, 0, 0, 0, 0];
        assert_eq!(Mode::peek(&control), Some(Mode::Control));
        assert_eq!(Mode::peek(&private), Some(Mode::Private));
        assert_eq!(NtpHeader::parse_bytes(&control), Err(Error::ControlMessage));
        assert_eq!(NtpHeader::parse_bytes(&private), Err(Error::PrivateMessage));
        assert_eq!(Mode::peek(&[]), None);
    }

    #[test]
    fn stratum_classes() {
        assert!(Stratum(0).is_kiss_of_death());
        assert!(Stratum(1).is_primary());
        assert!(Stratum(2).is_secondary() && Stratum(15).is_secondary());
        assert!(Stratum(16).is_unsynchronized());
        assert!(Stratum(17).is_reserved() && Stratum(255).is_reserved());
        assert!(!Stratum(16).is_secondary() && !Stratum(1).is_secondary());
    }

    #[test]
    fn reference_id_meanings() {
        let gps = ReferenceId::from_name(b"GPS").unwrap();
        assert_eq!(gps.0, *b"GPS\0");
        assert_eq!(
            gps.interpret(Stratum(1)),
            ReferenceIdKind::ReferenceClock(*b"GPS\0")
        );
        assert_eq!(
            ReferenceId::from_name(b"TOOLONG"),
            Err(Error::ReferenceNameTooLong { len: 7 })
        );
        let rate = ReferenceId(*b"RATE");
        assert_eq!(
            rate.interpret(Stratum(0)),
            ReferenceIdKind::Kiss(KissCode::Rate)
        );
        let upstream = ReferenceId::from_ipv4(Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(
            upstream.interpret(Stratum(3)),
            ReferenceIdKind::Upstream(upstream)
        );
        assert_eq!(
            upstream.interpret(Stratum(16)),
            ReferenceIdKind::Unspecified(upstream)
        );
    }

    #[test]
    fn ipv6_reference_id_is_md5_prefix() {
        // MD5 of the 16 octets of ::1 is cf404dc806178c245b5b4fe2531e6d8c (computed with
        // `python3 -c "import hashlib;print(hashlib.md5(bytes(15)+b'\x01').hexdigest())"`);
        // the reference ID is its first four octets.
        assert_eq!(
            ReferenceId::from_ipv6(Ipv6Addr::LOCALHOST).0,
            [0xcf, 0x40, 0x4d, 0xc8]
        );
    }

    #[test]
    fn emit_into_short_buffer_fails() {
        let mut short = [0u8; 47];
        assert_eq!(
            response_value().emit_bytes(&mut short),
            Err(Error::BufferTooSmall {
                needed: 48,
                available: 47
            })
        );
    }

    pub(crate) fn any_header() -> impl Strategy<Value = NtpHeader> {
        (
            (
                0u8..4,
                prop_oneof![Just(Version::V3), Just(Version::V4)],
                0u8..6,
            ),
            (any::<u8>(), any::<i8>(), any::<i8>()),
            (any::<u32>(), any::<u32>(), any::<[u8; 4]>()),
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()),
        )
            .prop_map(
                |((li, version, mode), (stratum, poll, precision), (rd, rdisp, refid), ts)| {
                    NtpHeader {
                        leap: LeapIndicator::from_bits(li),
                        version,
                        mode: AssociationMode::try_from(Mode::from_bits(mode)).unwrap(),
                        stratum: Stratum(stratum),
                        poll: Log2Seconds(poll),
                        precision: Log2Seconds(precision),
                        root_delay: NtpShort::from_bits(rd),
                        root_dispersion: NtpShort::from_bits(rdisp),
                        reference_id: ReferenceId(refid),
                        reference_timestamp: NtpTimestamp::from_bits(ts.0),
                        origin_timestamp: NtpTimestamp::from_bits(ts.1),
                        receive_timestamp: NtpTimestamp::from_bits(ts.2),
                        transmit_timestamp: NtpTimestamp::from_bits(ts.3),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn header_round_trips(header in any_header()) {
            let bytes = header.to_bytes();
            prop_assert_eq!(NtpHeader::parse_bytes(&bytes), Ok(header));
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_reemit_exactly(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(header) = NtpHeader::parse_bytes(&bytes) {
                prop_assert_eq!(&header.to_bytes()[..], &bytes[..48]);
            }
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_round_trip() {
        let json = serde_json::to_string(&response_value()).unwrap();
        let back: NtpHeader = serde_json::from_str(&json).unwrap();
        assert_eq!(back, response_value());
    }

    #[cfg(feature = "bytes")]
    #[test]
    fn bytes_helpers() {
        let mut out = bytes::BytesMut::new();
        response_value().emit_buf(&mut out).unwrap();
        assert_eq!(&out[..], &RESPONSE[..]);
        let mut input = &RESPONSE[..];
        assert_eq!(NtpHeader::parse_buf(&mut input), Ok(response_value()));
        assert!(input.is_empty());
        let mut short = &RESPONSE[..10];
        assert_eq!(
            NtpHeader::parse_buf(&mut short),
            Err(Error::Truncated { len: 10 })
        );
    }
}
