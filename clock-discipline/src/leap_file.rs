//! The IERS/NIST `leap-seconds.list` (tzdata ships it as
//! `/usr/share/zoneinfo/leap-seconds.list`): every leap second so far, TAI−UTC after each,
//! when the file was updated and when it expires, and a SHA-1 hash over them.
//!
//! No allocation: the table holds at most [`MAX_LEAP_ENTRIES`] entries (28 since 1972).
//! Every malformed line is an error that names it.
//!
//! The format: `#$ NTP` is the last update, `#@ NTP` the expiry, `#h` five 32-bit hex
//! words of SHA-1, and each data line `NTP TAI-UTC [# comment]`, the NTP second (since
//! 1900) from which that TAI−UTC holds. The hash covers, as digits with no separators,
//! the update time, the expiry, then each data line's two numbers.

use sha1::{Digest, Sha1};
use tempora_clock_types::{Leap, days_from_civil};

/// The most entries a list may hold.
pub const MAX_LEAP_ENTRIES: usize = 64;

/// Seconds from 1900-01-01 (NTP's era 0) to 1970-01-01.
const NTP_TO_UNIX: i64 = 2_208_988_800;

/// One line of the table: from `ntp_seconds` on, TAI−UTC is `tai_minus_utc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LeapEntry {
    /// NTP seconds (since 1900-01-01 UTC) of the start of the day it takes effect.
    pub ntp_seconds: u64,
    /// TAI−UTC from then on, seconds.
    pub tai_minus_utc: i32,
}

impl LeapEntry {
    /// When it takes effect, Unix seconds.
    pub fn unix_seconds(&self) -> i64 {
        self.ntp_seconds as i64 - NTP_TO_UNIX
    }
}

/// What is wrong with a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LeapLineError {
    /// A number that does not parse (or does not fit).
    #[error("{what} is not a number")]
    NotANumber {
        /// Which field.
        what: &'static str,
    },
    /// A data line without its TAI−UTC.
    #[error("a data line needs two numbers, the NTP time and TAI-UTC")]
    MissingField,
    /// More than two numbers before the comment.
    #[error("more than two numbers before the comment")]
    ExtraField,
    /// A time not after the one before it.
    #[error("the time is not after the line before's")]
    NotAscending,
    /// TAI−UTC changing by other than one second (after the first line).
    #[error("TAI-UTC changes by {by} s from the line before (a leap second is 1)")]
    NotALeap {
        /// The change.
        by: i64,
    },
    /// A line that appears twice (`#$`, `#@`, `#h`).
    #[error("appears twice")]
    Repeated,
    /// The hash line does not have five hex words.
    #[error("the hash needs five hex words of 32 bits")]
    BadHash,
    /// Not ASCII text.
    #[error("not ASCII text")]
    NotText,
}

/// Why a file is not a usable leap-seconds list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LeapFileError {
    /// A line is malformed.
    #[error("line {line}: {error}")]
    Line {
        /// 1-based.
        line: usize,
        /// What is wrong.
        error: LeapLineError,
    },
    /// No `#@` line.
    #[error("no expiry date (a line `#@ NTP-SECONDS`)")]
    MissingExpiry,
    /// No `#$` line.
    #[error("no update date (a line `#$ NTP-SECONDS`)")]
    MissingUpdate,
    /// No `#h` line.
    #[error("no hash (a line `#h` with five hex words)")]
    MissingHash,
    /// No data lines.
    #[error("no leap second entries")]
    NoEntries,
    /// More data lines than [`MAX_LEAP_ENTRIES`].
    #[error("line {line}: more than {MAX_LEAP_ENTRIES} entries")]
    TooManyEntries {
        /// The first one too many.
        line: usize,
    },
    /// The hash does not match the contents: damaged or edited.
    #[error("the hash does not match the contents (the file is damaged or was edited)")]
    HashMismatch,
}

/// A parsed, hash-checked leap-seconds list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeapSecondsList {
    updated_ntp: u64,
    expires_ntp: u64,
    entries: [LeapEntry; MAX_LEAP_ENTRIES],
    len: usize,
}

fn number<T: core::str::FromStr>(text: &str, what: &'static str) -> Result<T, LeapLineError> {
    text.parse::<T>()
        .map_err(|_| LeapLineError::NotANumber { what })
}

impl LeapSecondsList {
    /// Parses and checks a file's bytes: every line well formed, times ascending,
    /// TAI−UTC moving by one second at each entry, the update, expiry and hash present,
    /// and the hash matching.
    pub fn parse(bytes: &[u8]) -> Result<Self, LeapFileError> {
        let mut list = Self {
            updated_ntp: 0,
            expires_ntp: 0,
            entries: [LeapEntry::default(); MAX_LEAP_ENTRIES],
            len: 0,
        };
        let (mut updated, mut expires, mut hash) = (None, None, None::<[u32; 5]>);
        for (index, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            let line = index + 1;
            let fail = |error| LeapFileError::Line { line, error };
            let text = core::str::from_utf8(raw)
                .ok()
                .filter(|t| t.is_ascii())
                .ok_or(fail(LeapLineError::NotText))?
                .trim_end_matches('\r');
            if let Some(rest) = text.strip_prefix("#$") {
                let digits = rest.trim();
                let value = number::<u64>(digits, "the update time").map_err(fail)?;
                if updated.replace((value, digits.len())).is_some() {
                    return Err(fail(LeapLineError::Repeated));
                }
            } else if let Some(rest) = text.strip_prefix("#@") {
                let digits = rest.trim();
                let value = number::<u64>(digits, "the expiry time").map_err(fail)?;
                if expires.replace((value, digits.len())).is_some() {
                    return Err(fail(LeapLineError::Repeated));
                }
            } else if let Some(rest) = text.strip_prefix("#h") {
                let mut words = [0u32; 5];
                let mut it = rest.split_ascii_whitespace();
                for w in &mut words {
                    let word = it.next().ok_or(fail(LeapLineError::BadHash))?;
                    *w = u32::from_str_radix(word, 16).map_err(|_| fail(LeapLineError::BadHash))?;
                }
                if it.next().is_some() {
                    return Err(fail(LeapLineError::BadHash));
                }
                if hash.replace(words).is_some() {
                    return Err(fail(LeapLineError::Repeated));
                }
            } else if text.starts_with('#') || text.trim().is_empty() {
                continue;
            } else {
                let body = text.split('#').next().unwrap_or("");
                let mut fields = body.split_ascii_whitespace();
                let (Some(time), Some(offset)) = (fields.next(), fields.next()) else {
                    return Err(fail(LeapLineError::MissingField));
                };
                if fields.next().is_some() {
                    return Err(fail(LeapLineError::ExtraField));
                }
                let ntp_seconds = number::<u64>(time, "the NTP time").map_err(fail)?;
                let tai_minus_utc = number::<i32>(offset, "TAI-UTC").map_err(fail)?;
                if let Some(last) = list.entries().last() {
                    if ntp_seconds <= last.ntp_seconds {
                        return Err(fail(LeapLineError::NotAscending));
                    }
                    let by = i64::from(tai_minus_utc) - i64::from(last.tai_minus_utc);
                    if by.abs() != 1 {
                        return Err(fail(LeapLineError::NotALeap { by }));
                    }
                }
                let slot = list
                    .entries
                    .get_mut(list.len)
                    .ok_or(LeapFileError::TooManyEntries { line })?;
                *slot = LeapEntry {
                    ntp_seconds,
                    tai_minus_utc,
                };
                list.len += 1;
            }
        }
        let (updated, _) = updated.ok_or(LeapFileError::MissingUpdate)?;
        let (expires, _) = expires.ok_or(LeapFileError::MissingExpiry)?;
        let hash = hash.ok_or(LeapFileError::MissingHash)?;
        if list.len == 0 {
            return Err(LeapFileError::NoEntries);
        }
        list.updated_ntp = updated;
        list.expires_ntp = expires;
        // The hash runs over the update and expiry digits first, then each entry's.
        let mut all = Sha1::new();
        all.update(digits(updated).as_bytes());
        all.update(digits(expires).as_bytes());
        for e in list.entries() {
            all.update(digits(e.ntp_seconds).as_bytes());
            all.update(signed_digits(e.tai_minus_utc).as_bytes());
        }
        let sum = all.finalize();
        let mut expected = [0u32; 5];
        for (w, chunk) in expected.iter_mut().zip(sum.chunks_exact(4)) {
            *w = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        if expected != hash {
            return Err(LeapFileError::HashMismatch);
        }
        Ok(list)
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[LeapEntry] {
        &self.entries[..self.len]
    }

    /// When the list was last updated, Unix seconds.
    pub fn updated_unix(&self) -> i64 {
        self.updated_ntp as i64 - NTP_TO_UNIX
    }

    /// When the list expires, Unix seconds: past it, a leap second may have been
    /// announced that the list does not hold.
    pub fn expires_unix(&self) -> i64 {
        self.expires_ntp as i64 - NTP_TO_UNIX
    }

    /// Whether the list has expired at `unix` seconds.
    pub fn is_expired(&self, unix: i64) -> bool {
        unix >= self.expires_unix()
    }

    /// TAI−UTC at `unix` seconds (UTC), where the list covers it (from its first entry).
    pub fn tai_minus_utc(&self, unix: i64) -> Option<i32> {
        self.entries()
            .iter()
            .rev()
            .find(|e| e.unix_seconds() <= unix)
            .map(|e| e.tai_minus_utc)
    }

    /// The leap second at the end of the UTC day that `unix` falls in, if the list has one
    /// (the next entry starts at the following midnight).
    pub fn leap_at_end_of_day(&self, unix: i64) -> Leap {
        let midnight = (unix.div_euclid(86_400) + 1) * 86_400;
        self.leap_at(midnight)
    }

    /// The leap second at the end of the UTC month that `unix` falls in, if the list has
    /// one: what a server announces during that month (RFC 5905).
    pub fn leap_at_end_of_month(&self, unix: i64) -> Leap {
        self.leap_at(next_month_start(unix))
    }

    /// The leap second within `within` seconds of `unix`, if the list has one: the
    /// midnight it happens at (Unix seconds) and whether it inserts or deletes.
    pub fn leap_near(&self, unix: i64, within: i64) -> Option<(i64, Leap)> {
        let entries = self.entries();
        (1..entries.len()).find_map(|i| {
            let at = entries[i].unix_seconds();
            ((at - unix).abs() <= within).then(|| {
                let leap = if entries[i].tai_minus_utc > entries[i - 1].tai_minus_utc {
                    Leap::Insert
                } else {
                    Leap::Delete
                };
                (at, leap)
            })
        })
    }

    /// The leap second that ends just before `midnight` (Unix seconds at 00:00:00).
    fn leap_at(&self, midnight: i64) -> Leap {
        let entries = self.entries();
        match entries.iter().position(|e| e.unix_seconds() == midnight) {
            Some(i) if i > 0 => {
                if entries[i].tai_minus_utc > entries[i - 1].tai_minus_utc {
                    Leap::Insert
                } else {
                    Leap::Delete
                }
            }
            _ => Leap::None,
        }
    }
}

/// A number's decimal digits, without allocation.
fn digits(value: u64) -> DigitBuf {
    let mut buf = DigitBuf {
        bytes: [0; 24],
        start: 24,
    };
    let mut v = value;
    loop {
        buf.start -= 1;
        buf.bytes[buf.start] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf
}

fn signed_digits(value: i32) -> DigitBuf {
    let mut buf = digits(u64::from(value.unsigned_abs()));
    if value < 0 {
        buf.start -= 1;
        buf.bytes[buf.start] = b'-';
    }
    buf
}

struct DigitBuf {
    bytes: [u8; 24],
    start: usize,
}

impl DigitBuf {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

/// Unix seconds of the first midnight of the month after the one `unix` falls in.
pub(crate) fn next_month_start(unix: i64) -> i64 {
    let days = unix.div_euclid(86_400);
    let (year, month, _) = crate::leap::civil_from_days(days);
    let (y, m) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    days_from_civil(y, m, 1) * 86_400
}

#[cfg(test)]
mod tests {
    // The tests write lists with std's strings.
    #![allow(clippy::std_instead_of_alloc, clippy::std_instead_of_core)]
    use super::*;
    use proptest::prelude::*;

    /// tzdata 2025b's file, whole.
    const TZDATA: &[u8] = include_bytes!("../tests/leap-seconds.list");

    /// A list with `entries` and the right hash.
    pub(crate) fn make(updated: u64, expires: u64, entries: &[(u64, i32)]) -> std::string::String {
        use std::fmt::Write as _;
        let mut text = std::format!("# a test list\n#$\t{updated}\n#@\t{expires}\n");
        let mut sha = Sha1::new();
        sha.update(std::format!("{updated}{expires}").as_bytes());
        for (t, o) in entries {
            let _ = writeln!(text, "{t}\t{o}\t# entry");
            sha.update(std::format!("{t}{o}").as_bytes());
        }
        let sum = sha.finalize();
        let words: std::vec::Vec<std::string::String> = sum
            .chunks_exact(4)
            .map(|c| std::format!("{:x}", u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect();
        let _ = writeln!(text, "#h\t{}", words.join(" "));
        text
    }

    #[test]
    fn tzdatas_list_parses_with_its_hash() {
        let list = LeapSecondsList::parse(TZDATA).unwrap();
        assert_eq!(list.entries().len(), 28);
        assert_eq!(list.entries()[0].tai_minus_utc, 10);
        // 28 June 2026.
        assert_eq!(list.expires_unix(), 1_782_604_800);
        assert!(list.is_expired(1_796_457_600));
        assert!(!list.is_expired(1_767_225_600));
        // The leap second at the end of 2016-12-31: TAI-UTC 36 then 37.
        let noon = 1_483_185_600; // 2016-12-31T12:00:00Z
        assert_eq!(list.tai_minus_utc(noon), Some(36));
        assert_eq!(list.tai_minus_utc(1_483_228_800), Some(37));
        assert_eq!(list.leap_at_end_of_day(noon), Leap::Insert);
        assert_eq!(list.leap_at_end_of_day(noon - 86_400), Leap::None);
        assert_eq!(list.leap_at_end_of_month(1_480_550_400), Leap::Insert); // 2016-12-01
        assert_eq!(list.leap_at_end_of_month(1_477_958_400), Leap::None); // 2016-11-01
        assert_eq!(list.tai_minus_utc(0), None);
        assert_eq!(
            list.leap_near(noon, 86_400),
            Some((1_483_228_800, Leap::Insert))
        );
        assert_eq!(list.leap_near(noon - 86_400, 86_400), None);
    }

    #[test]
    fn any_change_to_a_number_breaks_the_hash() {
        let text = std::string::String::from_utf8(TZDATA.to_vec()).unwrap();
        let edited: std::string::String = text
            .lines()
            .map(|l| {
                if l.starts_with("3692217600") {
                    l.replacen("37", "38", 1) + "\n"
                } else {
                    std::format!("{l}\n")
                }
            })
            .collect();
        // 36 -> 38 is two seconds: refused before the hash.
        assert!(matches!(
            LeapSecondsList::parse(edited.as_bytes()),
            Err(LeapFileError::Line {
                error: LeapLineError::NotALeap { by: 2 },
                ..
            })
        ));
        let edited = text.replace("3991593600", "4991593600");
        assert_eq!(
            LeapSecondsList::parse(edited.as_bytes()),
            Err(LeapFileError::HashMismatch)
        );
    }

    #[test]
    fn malformed_files_name_the_line() {
        let good = make(
            3_900_000_000,
            3_990_000_000,
            &[(2_272_060_800, 10), (2_287_785_600, 11)],
        );
        assert!(LeapSecondsList::parse(good.as_bytes()).is_ok());
        let bad = good.replace("2287785600\t11", "2287785600\televen");
        assert_eq!(
            LeapSecondsList::parse(bad.as_bytes()),
            Err(LeapFileError::Line {
                line: 5,
                error: LeapLineError::NotANumber { what: "TAI-UTC" }
            })
        );
        let bad = good.replace("2287785600\t11", "2287785600");
        assert!(matches!(
            LeapSecondsList::parse(bad.as_bytes()),
            Err(LeapFileError::Line {
                line: 5,
                error: LeapLineError::MissingField
            })
        ));
        let bad = good.replace("2287785600\t11", "2200000000\t11");
        assert!(matches!(
            LeapSecondsList::parse(bad.as_bytes()),
            Err(LeapFileError::Line {
                line: 5,
                error: LeapLineError::NotAscending
            })
        ));
        let no_hash: std::string::String = good
            .lines()
            .filter(|l| !l.starts_with("#h"))
            .map(|l| l.to_owned() + "\n")
            .collect();
        assert_eq!(
            LeapSecondsList::parse(no_hash.as_bytes()),
            Err(LeapFileError::MissingHash)
        );
        let no_expiry: std::string::String = good
            .lines()
            .filter(|l| !l.starts_with("#@"))
            .map(|l| l.to_owned() + "\n")
            .collect();
        assert_eq!(
            LeapSecondsList::parse(no_expiry.as_bytes()),
            Err(LeapFileError::MissingExpiry)
        );
        assert_eq!(
            LeapSecondsList::parse(b""),
            Err(LeapFileError::MissingUpdate)
        );
        let bad_hash = good.replace("#h\t", "#h\tzz ");
        assert!(matches!(
            LeapSecondsList::parse(bad_hash.as_bytes()),
            Err(LeapFileError::Line {
                error: LeapLineError::BadHash,
                ..
            })
        ));
        // CRLF line ends are fine.
        assert!(LeapSecondsList::parse(good.replace('\n', "\r\n").as_bytes()).is_ok());
    }

    #[test]
    fn a_deleted_second_is_a_delete() {
        let text = make(
            3_900_000_000,
            3_990_000_000,
            &[(3_692_217_600, 37), (3_786_912_000, 36)],
        );
        let list = LeapSecondsList::parse(text.as_bytes()).unwrap();
        // 2030-01-01 minus a day.
        let last_day = 3_786_912_000 - NTP_TO_UNIX as u64 - 43_200;
        assert_eq!(list.leap_at_end_of_day(last_day as i64), Leap::Delete);
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = LeapSecondsList::parse(&bytes);
        }

        #[test]
        fn made_lists_parse_and_answer_for_every_entry(
            start in 2_000_000_000u64..3_000_000_000, gaps in proptest::collection::vec(86_400u64..400_000_000, 1..40),
            steps in proptest::collection::vec(any::<bool>(), 40), first in -5i32..40,
        ) {
            let mut entries = std::vec![(start, first)];
            for (gap, up) in gaps.iter().zip(&steps) {
                let (t, o) = *entries.last().unwrap();
                entries.push((t + gap, if *up { o + 1 } else { o - 1 }));
            }
            let text = make(4_000_000_000, 4_100_000_000, &entries);
            let list = LeapSecondsList::parse(text.as_bytes()).unwrap();
            prop_assert_eq!(list.entries().len(), entries.len());
            for (e, (t, o)) in list.entries().iter().zip(&entries) {
                prop_assert_eq!(list.tai_minus_utc(e.unix_seconds()), Some(*o));
                prop_assert_eq!(e.ntp_seconds, *t);
            }
            // One digit of any data line changed: refused.
            let i = entries.len() / 2;
            let (t, o) = entries[i];
            let edited = text.replacen(&std::format!("{t}\t{o}"), &std::format!("{}\t{o}", t + 1), 1);
            prop_assert!(LeapSecondsList::parse(edited.as_bytes()).is_err());
        }
    }
}
