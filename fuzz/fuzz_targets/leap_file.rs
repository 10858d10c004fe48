//! The leap-seconds.list parser over arbitrary bytes: never a panic; a list it accepts
//! has entries, ascending, each a leap second from the one before, and answers TAI-UTC
//! for every entry's own time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tempora_clock_discipline::LeapSecondsList;

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = LeapSecondsList::parse(data) {
        let entries = list.entries();
        assert!(!entries.is_empty());
        for pair in entries.windows(2) {
            assert!(pair[1].ntp_seconds > pair[0].ntp_seconds);
            assert_eq!((pair[1].tai_minus_utc - pair[0].tai_minus_utc).abs(), 1);
        }
        for e in entries {
            assert_eq!(list.tai_minus_utc(e.unix_seconds()), Some(e.tai_minus_utc));
            let _ = list.leap_at_end_of_day(e.unix_seconds() - 1);
            let _ = list.leap_at_end_of_month(e.unix_seconds() - 1);
        }
        let _ = list.is_expired(list.expires_unix());
    }
});
