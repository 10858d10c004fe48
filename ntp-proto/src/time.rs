//! NTP time formats (RFC 5905 section 6) and their conversions.
//!
//! - [`NtpTimestamp`]: the 64-bit on-wire timestamp, 32.32 fixed point seconds since the
//!   start of its era. It carries no era, so it is not ordered: compare instants through
//!   [`NtpTimestamp::to_unix`] with a pivot, or subtract two timestamps.
//! - [`NtpDuration`]: a signed 32.32 fixed point interval, the difference of two timestamps,
//!   right across the 2036 era wrap as long as the two lie within 68 years of each other.
//! - [`NtpShort`]: the unsigned 16.16 short format of root delay and root dispersion.
//! - [`UnixTime`]: seconds and nanoseconds since 1970, the bridge to the rest of the world.
//! - [`Log2Seconds`]: the poll and precision fields.

use core::ops::{Add, AddAssign, Neg, Sub, SubAssign};

use crate::Error;

/// Seconds from the NTP prime epoch (1900-01-01T00:00:00Z, era 0) to the Unix epoch.
pub const UNIX_EPOCH_NTP_SECONDS: i64 = 2_208_988_800;

const NANOS_PER_SECOND: u32 = 1_000_000_000;
const FRACTION_SCALE: f64 = 4_294_967_296.0; // 2^32

/// A point in time as seconds and nanoseconds since 1970-01-01T00:00:00Z (UTC, leap
/// seconds not counted), with no era ambiguity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "(i64, u32)", into = "(i64, u32)")
)]
pub struct UnixTime {
    seconds: i64,
    nanos: u32,
}

impl UnixTime {
    /// 1970-01-01T00:00:00Z.
    pub const EPOCH: Self = Self {
        seconds: 0,
        nanos: 0,
    };

    /// A time from whole seconds and nanoseconds (`nanos` below 10^9).
    pub const fn new(seconds: i64, nanos: u32) -> Result<Self, Error> {
        if nanos >= NANOS_PER_SECOND {
            return Err(Error::InvalidNanoseconds { nanos });
        }
        Ok(Self { seconds, nanos })
    }

    /// A time from nanoseconds since the epoch (negative before 1970). Saturates at the
    /// range of `i64` seconds.
    pub const fn from_nanos(nanos: i128) -> Self {
        let seconds = nanos.div_euclid(NANOS_PER_SECOND as i128);
        let sub = nanos.rem_euclid(NANOS_PER_SECOND as i128) as u32;
        if seconds > i64::MAX as i128 {
            Self {
                seconds: i64::MAX,
                nanos: NANOS_PER_SECOND - 1,
            }
        } else if seconds < i64::MIN as i128 {
            Self {
                seconds: i64::MIN,
                nanos: 0,
            }
        } else {
            Self {
                seconds: seconds as i64,
                nanos: sub,
            }
        }
    }

    /// Whole seconds since the epoch (floor: negative times have positive `nanos`).
    pub const fn seconds(self) -> i64 {
        self.seconds
    }

    /// Nanoseconds past [`Self::seconds`], below 10^9.
    pub const fn nanos(self) -> u32 {
        self.nanos
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> i128 {
        self.seconds as i128 * NANOS_PER_SECOND as i128 + self.nanos as i128
    }

    /// 32.32 fixed point seconds since the NTP prime epoch (era 0), unbounded.
    const fn to_ntp_fixed(self) -> i128 {
        let seconds = self.seconds as i128 + UNIX_EPOCH_NTP_SECONDS as i128;
        (seconds << 32) + nanos_to_fraction(self.nanos) as i128
    }

    /// The inverse of [`Self::to_ntp_fixed`], saturating where `i64` seconds end.
    const fn from_ntp_fixed(fixed: i128) -> Self {
        let ntp_seconds = fixed >> 32;
        let fraction = (fixed & 0xFFFF_FFFF) as u32;
        let seconds = ntp_seconds - UNIX_EPOCH_NTP_SECONDS as i128;
        if seconds > i64::MAX as i128 {
            return Self {
                seconds: i64::MAX,
                nanos: NANOS_PER_SECOND - 1,
            };
        }
        if seconds < i64::MIN as i128 {
            return Self::from_nanos(i128::MIN);
        }
        Self {
            seconds: seconds as i64,
            nanos: fraction_to_nanos(fraction),
        }
    }
}

impl core::fmt::Display for UnixTime {
    /// RFC 3339 in UTC with nanoseconds: `2036-02-07T06:28:16.000000000Z`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let days = self.seconds.div_euclid(86_400);
        let secs = self.seconds.rem_euclid(86_400);
        // Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
        let z = days as i128 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i128::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            self.nanos
        )
    }
}

impl TryFrom<(i64, u32)> for UnixTime {
    type Error = Error;
    fn try_from((seconds, nanos): (i64, u32)) -> Result<Self, Error> {
        Self::new(seconds, nanos)
    }
}

impl From<UnixTime> for (i64, u32) {
    fn from(time: UnixTime) -> Self {
        (time.seconds, time.nanos)
    }
}

#[cfg(feature = "std")]
impl From<std::time::SystemTime> for UnixTime {
    fn from(time: std::time::SystemTime) -> Self {
        match time.duration_since(std::time::UNIX_EPOCH) {
            Ok(after) => Self::from_nanos(after.as_nanos() as i128),
            Err(before) => Self::from_nanos(-(before.duration().as_nanos() as i128)),
        }
    }
}

#[cfg(feature = "std")]
impl From<UnixTime> for std::time::SystemTime {
    /// Saturates at what `SystemTime` can hold on the platform.
    fn from(time: UnixTime) -> Self {
        let epoch = std::time::UNIX_EPOCH;
        let nanos = time.as_nanos();
        let magnitude = core::time::Duration::new(
            (nanos.unsigned_abs() / NANOS_PER_SECOND as u128).min(u64::MAX as u128) as u64,
            (nanos.unsigned_abs() % NANOS_PER_SECOND as u128) as u32,
        );
        if nanos >= 0 {
            epoch.checked_add(magnitude).unwrap_or(epoch)
        } else {
            epoch.checked_sub(magnitude).unwrap_or(epoch)
        }
    }
}

/// Nanoseconds to a 32-bit binary fraction, rounded up so that converting back with
/// [`fraction_to_nanos`] gives the same nanoseconds.
const fn nanos_to_fraction(nanos: u32) -> u32 {
    let scaled = ((nanos as u64) << 32).div_ceil(NANOS_PER_SECOND as u64);
    if scaled > u32::MAX as u64 {
        u32::MAX
    } else {
        scaled as u32
    }
}

/// A 32-bit binary fraction of a second to nanoseconds, truncated.
const fn fraction_to_nanos(fraction: u32) -> u32 {
    ((fraction as u64 * NANOS_PER_SECOND as u64) >> 32) as u32
}

/// The 64-bit NTP timestamp: seconds (upper 32 bits) and binary fraction (lower 32 bits)
/// since the start of its era. Era 0 began 1900-01-01T00:00:00Z; era 1 begins
/// 2036-02-07T06:28:16Z.
///
/// The value zero means "unknown" on the wire. Timestamps are deliberately not `Ord`: which
/// of two is later depends on the era, so use subtraction (an [`NtpDuration`]) instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NtpTimestamp(u64);

impl NtpTimestamp {
    /// The zero timestamp, "unknown" in a packet.
    pub const ZERO: Self = Self(0);

    /// A timestamp from its on-wire 64 bits.
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The on-wire 64 bits.
    pub const fn to_bits(self) -> u64 {
        self.0
    }

    /// A timestamp from era seconds and a binary fraction of a second.
    pub const fn from_parts(seconds: u32, fraction: u32) -> Self {
        Self(((seconds as u64) << 32) | fraction as u64)
    }

    /// Seconds since the start of the era.
    pub const fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Binary fraction of a second (units of 2^-32 s).
    pub const fn fraction(self) -> u32 {
        self.0 as u32
    }

    /// Whether this is the zero ("unknown") timestamp.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The NTP timestamp of a Unix time in nanoseconds (a `CLOCK_REALTIME` reading, a
    /// kernel packet timestamp): the era is implied, as on the wire.
    pub const fn from_unix_nanos(nanos: i128) -> Self {
        Self::from_unix(UnixTime::from_nanos(nanos))
    }

    /// The NTP timestamp of a Unix time; the era is dropped, as on the wire. Exact to the
    /// nanosecond: `NtpTimestamp::from_unix(t).to_unix(t) == t`.
    pub const fn from_unix(time: UnixTime) -> Self {
        Self(time.to_ntp_fixed() as u64)
    }

    /// The Unix time of this timestamp in the era that puts it nearest to `pivot` (within
    /// 68 years), which is how a timestamp read off the wire is placed in time: the pivot
    /// is the local clock.
    pub const fn to_unix(self, pivot: UnixTime) -> UnixTime {
        let pivot_fixed = pivot.to_ntp_fixed();
        let difference = self.0.wrapping_sub(pivot_fixed as u64) as i64;
        UnixTime::from_ntp_fixed(pivot_fixed + difference as i128)
    }

    /// The Unix time of this timestamp in a given era (0: 1900 to 2036, 1: 2036 to 2172).
    pub const fn to_unix_in_era(self, era: i32) -> UnixTime {
        UnixTime::from_ntp_fixed(((era as i128) << 64) + self.0 as i128)
    }

    /// The era in which `time` lies (negative before 1900).
    pub const fn era_of(time: UnixTime) -> i32 {
        (time.to_ntp_fixed() >> 64) as i32
    }

    /// The NTP timestamp of a `SystemTime`.
    #[cfg(feature = "std")]
    pub fn from_system_time(time: std::time::SystemTime) -> Self {
        Self::from_unix(UnixTime::from(time))
    }

    /// This timestamp as a `SystemTime`, in the era nearest to `pivot`.
    #[cfg(feature = "std")]
    pub fn to_system_time(self, pivot: std::time::SystemTime) -> std::time::SystemTime {
        self.to_unix(UnixTime::from(pivot)).into()
    }
}

impl Sub for NtpTimestamp {
    type Output = NtpDuration;
    /// The signed interval from `rhs` to `self`, right across an era wrap as long as the
    /// two lie within 68 years of each other.
    fn sub(self, rhs: Self) -> NtpDuration {
        NtpDuration(self.0.wrapping_sub(rhs.0) as i64)
    }
}

impl Add<NtpDuration> for NtpTimestamp {
    type Output = Self;
    /// Wraps into the next or previous era, as the wire format does.
    fn add(self, rhs: NtpDuration) -> Self {
        Self(self.0.wrapping_add(rhs.0 as u64))
    }
}

impl Sub<NtpDuration> for NtpTimestamp {
    type Output = Self;
    fn sub(self, rhs: NtpDuration) -> Self {
        Self(self.0.wrapping_sub(rhs.0 as u64))
    }
}

/// A signed interval in 32.32 fixed point seconds (range about ±68 years, resolution
/// 2^-32 s ≈ 233 ps). Arithmetic saturates instead of wrapping or panicking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NtpDuration(i64);

impl NtpDuration {
    /// No time at all.
    pub const ZERO: Self = Self(0);
    /// The longest positive interval.
    pub const MAX: Self = Self(i64::MAX);
    /// The longest negative interval.
    pub const MIN: Self = Self(i64::MIN);
    /// One second.
    pub const ONE_SECOND: Self = Self(1 << 32);

    /// An interval from its 32.32 fixed point bits.
    pub const fn from_bits(bits: i64) -> Self {
        Self(bits)
    }

    /// The 32.32 fixed point bits.
    pub const fn to_bits(self) -> i64 {
        self.0
    }

    /// An interval from whole seconds, saturating.
    pub const fn from_seconds(seconds: i64) -> Self {
        Self(saturate_i64((seconds as i128) << 32))
    }

    /// An interval from nanoseconds, rounded to the nearest 2^-32 s and saturating.
    pub const fn from_nanos(nanos: i64) -> Self {
        let scaled = ((nanos as i128) << 32) + (NANOS_PER_SECOND as i128 / 2);
        Self(saturate_i64(scaled.div_euclid(NANOS_PER_SECOND as i128)))
    }

    /// The interval in nanoseconds, rounded toward negative infinity.
    pub const fn as_nanos(self) -> i64 {
        ((self.0 as i128 * NANOS_PER_SECOND as i128) >> 32) as i64
    }

    /// An interval from seconds as `f64`, saturating; NaN gives zero.
    pub fn from_seconds_f64(seconds: f64) -> Self {
        // `as` from float to int saturates and maps NaN to 0.
        Self((seconds * FRACTION_SCALE) as i64)
    }

    /// The interval in seconds as `f64`.
    pub fn to_seconds_f64(self) -> f64 {
        self.0 as f64 / FRACTION_SCALE
    }

    /// The absolute value, saturating at [`Self::MAX`].
    pub const fn abs(self) -> Self {
        Self(self.0.saturating_abs())
    }

    /// Half the interval, rounded toward negative infinity.
    pub const fn half(self) -> Self {
        Self(self.0 >> 1)
    }

    /// Sum, or `None` on overflow.
    pub const fn checked_add(self, rhs: Self) -> Option<Self> {
        match self.0.checked_add(rhs.0) {
            Some(bits) => Some(Self(bits)),
            None => None,
        }
    }

    /// Difference, or `None` on overflow.
    pub const fn checked_sub(self, rhs: Self) -> Option<Self> {
        match self.0.checked_sub(rhs.0) {
            Some(bits) => Some(Self(bits)),
            None => None,
        }
    }
}

const fn saturate_i64(value: i128) -> i64 {
    if value > i64::MAX as i128 {
        i64::MAX
    } else if value < i64::MIN as i128 {
        i64::MIN
    } else {
        value as i64
    }
}

impl Add for NtpDuration {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for NtpDuration {
    fn add_assign(&mut self, rhs: Self) {
        *self = *self + rhs;
    }
}

impl Sub for NtpDuration {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        Self(self.0.saturating_sub(rhs.0))
    }
}

impl SubAssign for NtpDuration {
    fn sub_assign(&mut self, rhs: Self) {
        *self = *self - rhs;
    }
}

impl Neg for NtpDuration {
    type Output = Self;
    fn neg(self) -> Self {
        Self(self.0.saturating_neg())
    }
}

/// The NTP short format: unsigned 16.16 fixed point seconds, used for root delay and root
/// dispersion. Conversions into it saturate at 0 and at 65535.99998 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NtpShort(u32);

impl NtpShort {
    /// Zero.
    pub const ZERO: Self = Self(0);
    /// The largest value, 65535.99998 s.
    pub const MAX: Self = Self(u32::MAX);

    /// A value from its on-wire 32 bits.
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The on-wire 32 bits.
    pub const fn to_bits(self) -> u32 {
        self.0
    }

    /// A value from whole seconds and a 16-bit binary fraction.
    pub const fn from_parts(seconds: u16, fraction: u16) -> Self {
        Self(((seconds as u32) << 16) | fraction as u32)
    }

    /// The interval as a signed duration (exact).
    pub const fn to_duration(self) -> NtpDuration {
        NtpDuration((self.0 as i64) << 16)
    }

    /// A duration in short format, rounded up to the next 2^-16 s (a delay or dispersion
    /// is never understated) and saturating: negative gives zero, too long gives
    /// [`Self::MAX`].
    pub const fn from_duration(duration: NtpDuration) -> Self {
        if duration.0 <= 0 {
            return Self(0);
        }
        let rounded_up = (duration.0 as u64).div_ceil(1 << 16);
        if rounded_up > u32::MAX as u64 {
            Self(u32::MAX)
        } else {
            Self(rounded_up as u32)
        }
    }

    /// Seconds as `f64`, saturating; negative and NaN give zero.
    pub fn from_seconds_f64(seconds: f64) -> Self {
        Self((seconds * 65_536.0) as u32)
    }

    /// The value in seconds as `f64`.
    pub fn to_seconds_f64(self) -> f64 {
        f64::from(self.0) / 65_536.0
    }
}

/// An interval of 2^n seconds, as in the poll and precision fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Log2Seconds(pub i8);

impl Log2Seconds {
    /// 2^n seconds as `f64` (exact for every `i8`).
    pub fn to_seconds_f64(self) -> f64 {
        // An f64 holds every power of two from 2^-1022 to 2^1023 exactly: build it from
        // its exponent bits, which needs neither `std` nor `libm`.
        f64::from_bits(((i64::from(self.0) + 1023) as u64) << 52)
    }

    /// 2^n seconds as a duration (saturating for n > 30; 0 for n < -32).
    pub const fn to_duration(self) -> NtpDuration {
        let shift = self.0 as i32 + 32;
        if shift < 0 {
            NtpDuration(0)
        } else if shift > 62 {
            NtpDuration::MAX
        } else {
            NtpDuration(1 << shift)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unix(seconds: i64, nanos: u32) -> UnixTime {
        UnixTime::new(seconds, nanos).unwrap()
    }

    /// 2036-02-07T06:28:16Z, the first second of era 1.
    const ERA1_START_UNIX: i64 = (1 << 32) - UNIX_EPOCH_NTP_SECONDS;

    #[test]
    fn prime_epoch_1900_is_zero_in_era_0() {
        let t = unix(-UNIX_EPOCH_NTP_SECONDS, 0);
        assert_eq!(NtpTimestamp::from_unix(t), NtpTimestamp::ZERO);
        assert_eq!(NtpTimestamp::era_of(t), 0);
        assert_eq!(NtpTimestamp::ZERO.to_unix_in_era(0), t);
        // One nanosecond before 1900 is the last instant of era -1.
        let before = UnixTime::from_nanos(t.as_nanos() - 1);
        assert_eq!(NtpTimestamp::era_of(before), -1);
        assert_eq!(NtpTimestamp::from_unix(before).seconds(), u32::MAX);
    }

    #[test]
    fn unix_epoch_1970() {
        let ts = NtpTimestamp::from_unix(UnixTime::EPOCH);
        assert_eq!(ts.to_bits(), 0x83AA_7E80_0000_0000);
        assert_eq!(ts.to_unix(unix(1_000_000_000, 0)), UnixTime::EPOCH);
    }

    #[test]
    fn both_sides_of_the_2036_wrap() {
        let last_of_era0 = unix(ERA1_START_UNIX - 1, 999_999_999);
        let first_of_era1 = unix(ERA1_START_UNIX, 0);
        let a = NtpTimestamp::from_unix(last_of_era0);
        let b = NtpTimestamp::from_unix(first_of_era1);
        assert_eq!(a.seconds(), u32::MAX);
        assert_eq!(b, NtpTimestamp::ZERO, "era 1 starts at raw zero");
        assert_eq!(NtpTimestamp::era_of(last_of_era0), 0);
        assert_eq!(NtpTimestamp::era_of(first_of_era1), 1);
        // Both are placed right from a pivot on either side of the wrap.
        for pivot in [
            unix(ERA1_START_UNIX - 86_400, 0),
            unix(ERA1_START_UNIX + 86_400, 0),
        ] {
            assert_eq!(a.to_unix(pivot), last_of_era0);
            assert_eq!(b.to_unix(pivot), first_of_era1);
        }
        // The difference across the wrap is one nanosecond (to 2^-32 s).
        let d = b - a;
        assert!(d > NtpDuration::ZERO);
        assert!(d.as_nanos() <= 1, "{d:?}");
        assert!((a - b) < NtpDuration::ZERO);
        // And adding it back wraps into era 1.
        assert_eq!(a + d, b);
    }

    #[test]
    fn time_t_overflow_2038_01_19() {
        let t = unix(i64::from(i32::MAX), 0); // 2038-01-19T03:14:07Z
        let ts = NtpTimestamp::from_unix(t);
        assert_eq!(
            ts.seconds(),
            (i64::from(i32::MAX) + UNIX_EPOCH_NTP_SECONDS - (1 << 32)) as u32
        );
        assert_eq!(ts.to_unix(unix(ERA1_START_UNIX - 10, 0)), t);
        assert_eq!(ts.to_unix(unix(1_700_000_000, 0)), t);
        let after = unix(i64::from(i32::MAX) + 1, 0);
        assert_eq!(NtpTimestamp::from_unix(after) - ts, NtpDuration::ONE_SECOND);
    }

    #[test]
    fn year_2106_unix_u32_wrap() {
        let t = unix(1 << 32, 0); // 2106-02-07T06:28:16Z
        let ts = NtpTimestamp::from_unix(t);
        assert_eq!(NtpTimestamp::era_of(t), 1);
        assert_eq!(ts.to_unix(unix((1 << 32) - 1_000_000, 0)), t);
        assert_eq!(ts.to_unix_in_era(1), t);
    }

    #[test]
    fn nearest_era_is_chosen_across_68_years() {
        let t = unix(1_800_000_000, 123_456_789);
        let ts = NtpTimestamp::from_unix(t);
        let pivot_before = unix(1_800_000_000 - 60 * 365 * 86_400, 0);
        let pivot_after = unix(1_800_000_000 + 60 * 365 * 86_400, 0);
        assert_eq!(ts.to_unix(pivot_before), t);
        assert_eq!(ts.to_unix(pivot_after), t);
    }

    #[test]
    fn fraction_conversions() {
        assert_eq!(nanos_to_fraction(0), 0);
        assert_eq!(nanos_to_fraction(500_000_000), 0x8000_0000);
        assert_eq!(fraction_to_nanos(0x8000_0000), 500_000_000);
        assert_eq!(fraction_to_nanos(u32::MAX), 999_999_999);
        assert_eq!(nanos_to_fraction(999_999_999), 0xFFFF_FFFC);
    }

    #[test]
    fn durations_saturate_and_convert() {
        assert_eq!(NtpDuration::from_seconds_f64(f64::NAN), NtpDuration::ZERO);
        assert_eq!(NtpDuration::from_seconds_f64(1e30), NtpDuration::MAX);
        assert_eq!(NtpDuration::from_seconds_f64(-1e30), NtpDuration::MIN);
        assert_eq!(NtpDuration::from_seconds_f64(0.5).to_bits(), 1 << 31);
        assert_eq!(
            NtpDuration::from_nanos(1_000_000_000),
            NtpDuration::ONE_SECOND
        );
        assert_eq!(
            NtpDuration::from_nanos(-1_500_000_000).as_nanos(),
            -1_500_000_000
        );
        assert_eq!(NtpDuration::MAX + NtpDuration::ONE_SECOND, NtpDuration::MAX);
        assert_eq!(-NtpDuration::MIN, NtpDuration::MAX);
        assert_eq!(NtpDuration::MIN.abs(), NtpDuration::MAX);
        assert_eq!(NtpDuration::from_seconds(i64::MAX), NtpDuration::MAX);
    }

    #[test]
    fn short_format() {
        assert_eq!(NtpShort::from_parts(1, 0x8000).to_seconds_f64(), 1.5);
        assert_eq!(NtpShort::from_seconds_f64(-1.0), NtpShort::ZERO);
        assert_eq!(NtpShort::from_seconds_f64(f64::NAN), NtpShort::ZERO);
        assert_eq!(NtpShort::from_seconds_f64(1e9), NtpShort::MAX);
        assert_eq!(
            NtpShort::from_duration(-NtpDuration::ONE_SECOND),
            NtpShort::ZERO
        );
        assert_eq!(
            NtpShort::from_duration(NtpDuration::from_seconds(70_000)),
            NtpShort::MAX
        );
        // Rounded up: one tick of 2^-32 s becomes one tick of 2^-16 s.
        assert_eq!(
            NtpShort::from_duration(NtpDuration::from_bits(1)).to_bits(),
            1
        );
        assert_eq!(
            NtpShort::from_parts(2, 3).to_duration(),
            NtpDuration::from_bits((2 << 32) | (3 << 16))
        );
    }

    #[test]
    fn log2_seconds() {
        assert_eq!(Log2Seconds(0).to_seconds_f64(), 1.0);
        assert_eq!(Log2Seconds(6).to_seconds_f64(), 64.0);
        assert_eq!(Log2Seconds(-20).to_seconds_f64(), 1.0 / 1_048_576.0);
        assert_eq!(Log2Seconds(i8::MIN).to_seconds_f64(), 2f64.powi(-128));
        assert_eq!(Log2Seconds(i8::MAX).to_seconds_f64(), 2f64.powi(127));
        assert_eq!(Log2Seconds(4).to_duration(), NtpDuration::from_seconds(16));
        assert_eq!(Log2Seconds(-40).to_duration(), NtpDuration::ZERO);
        assert_eq!(Log2Seconds(40).to_duration(), NtpDuration::MAX);
    }

    #[test]
    fn rfc3339_display() {
        assert_eq!(
            UnixTime::EPOCH.to_string(),
            "1970-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            unix(ERA1_START_UNIX, 5).to_string(),
            "2036-02-07T06:28:16.000000005Z"
        );
        assert_eq!(
            unix(i64::from(i32::MAX), 0).to_string(),
            "2038-01-19T03:14:07.000000000Z"
        );
        assert_eq!(
            unix(-UNIX_EPOCH_NTP_SECONDS, 0).to_string(),
            "1900-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            unix(951_782_400, 0).to_string(),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn invalid_nanoseconds_rejected() {
        assert_eq!(
            UnixTime::new(0, 1_000_000_000),
            Err(Error::InvalidNanoseconds {
                nanos: 1_000_000_000
            })
        );
    }

    #[cfg(feature = "std")]
    #[test]
    fn system_time_round_trip() {
        use core::time::Duration;
        use std::time::{SystemTime, UNIX_EPOCH};
        let now = UNIX_EPOCH + Duration::new(1_763_776_000, 123_456_789);
        let ts = NtpTimestamp::from_system_time(now);
        assert_eq!(ts.to_system_time(now), now);
        let before = UNIX_EPOCH - Duration::new(5, 250_000_000);
        assert_eq!(UnixTime::from(before), unix(-6, 750_000_000));
        assert_eq!(SystemTime::from(unix(-6, 750_000_000)), before);
    }

    proptest! {
        /// Unix -> NTP -> Unix is exact to the nanosecond when the pivot is within 68 years.
        #[test]
        fn unix_round_trip(seconds in -3_000_000_000i64..7_000_000_000, nanos in 0u32..1_000_000_000, pivot_shift in -2_000_000_000i64..2_000_000_000) {
            let t = unix(seconds, nanos);
            let pivot = unix(seconds + pivot_shift, 0);
            prop_assert_eq!(NtpTimestamp::from_unix(t).to_unix(pivot), t);
        }

        /// The difference of two timestamps equals the difference of the times they stand
        /// for, wherever the era boundary falls between them.
        #[test]
        fn difference_is_era_safe(a in -3_000_000_000i64..7_000_000_000, delta in -2_000_000_000i64..2_000_000_000, na in 0u32..1_000_000_000, nb in 0u32..1_000_000_000) {
            let ta = unix(a, na);
            let tb = unix(a + delta, nb);
            let d = NtpTimestamp::from_unix(tb) - NtpTimestamp::from_unix(ta);
            let expected = tb.as_nanos() - ta.as_nanos();
            prop_assert!((i128::from(d.as_nanos()) - expected).abs() <= 1);
        }

        #[test]
        fn short_round_trips_through_duration(bits: u32) {
            prop_assert_eq!(NtpShort::from_duration(NtpShort::from_bits(bits).to_duration()), NtpShort::from_bits(bits));
        }

        #[test]
        fn nanos_round_trip_through_duration(nanos in -2_000_000_000_000_000_000i64..2_000_000_000_000_000_000) {
            let d = NtpDuration::from_nanos(nanos);
            prop_assert!((d.as_nanos() - nanos).abs() <= 1);
        }
    }
}
