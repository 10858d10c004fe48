//! Arming the kernel's leap second flag on the right day.
//!
//! The selection gives the leap indicator that most selected sources agree on. Sources
//! announce a leap second up to a month ahead; the kernel applies a flag at the end of
//! the UTC day on which it is set. So the flag is armed only on the last day of the month
//! (June and December unless configured otherwise), and disarmed when the vote is gone.
//!
//! With a leap-seconds list ([`LeapScheduler::with_list`]) the list decides while it is
//! current: a source's announcement the list does not hold is refused (a falseticker, or
//! a server that misread a bulletin, must not move every client by a second), and a leap
//! the list holds is armed even where the sources forget to announce it. Past the list's
//! expiry the sources' vote is taken again, as without a list.

use tempora_clock_types::Leap;

use tempora_clock_types::{ClockAction, LeapAction};

use crate::leap_file::LeapSecondsList;

/// Settings of a [`LeapScheduler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LeapConfig {
    /// Accept a leap second at the end of any month, not only June and December.
    pub any_month: bool,
}

/// Decides when to arm and disarm the leap flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LeapScheduler {
    config: LeapConfig,
    armed: LeapAction,
    list: Option<LeapSecondsList>,
}

/// What the scheduler makes of the sources' vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeapDecision {
    /// The leap accepted for the end of this month.
    pub leap: Leap,
    /// The sources announced a leap the (current) list does not hold: refused.
    pub refused: bool,
    /// The list has expired: the sources' vote was taken.
    pub list_expired: bool,
}

impl LeapScheduler {
    /// A scheduler with nothing armed.
    pub fn new(config: LeapConfig) -> Self {
        Self {
            config,
            armed: LeapAction::None,
            list: None,
        }
    }

    /// A scheduler that checks announcements against a leap-seconds list.
    pub fn with_list(config: LeapConfig, list: Option<LeapSecondsList>) -> Self {
        Self {
            list,
            ..Self::new(config)
        }
    }

    /// The list, if one was given.
    pub fn list(&self) -> Option<&LeapSecondsList> {
        self.list.as_ref()
    }

    /// TAI−UTC at `utc_seconds` as the list gives it (none without a list).
    pub fn tai_minus_utc(&self, utc_seconds: i64) -> Option<i32> {
        self.list.as_ref()?.tai_minus_utc(utc_seconds)
    }

    /// The leap to accept for the end of the month `utc_seconds` falls in, given the
    /// sources' `vote`.
    pub fn decide(&self, vote: Leap, utc_seconds: i64) -> LeapDecision {
        let announced = matches!(vote, Leap::Insert | Leap::Delete);
        match &self.list {
            Some(list) if !list.is_expired(utc_seconds) => {
                let listed = list.leap_at_end_of_month(utc_seconds);
                LeapDecision {
                    leap: listed,
                    refused: announced && vote != listed,
                    list_expired: false,
                }
            }
            Some(_) => LeapDecision {
                leap: if announced { vote } else { Leap::None },
                refused: false,
                list_expired: true,
            },
            None => LeapDecision {
                leap: if announced { vote } else { Leap::None },
                refused: false,
                list_expired: false,
            },
        }
    }

    /// What is armed now.
    pub fn armed(&self) -> LeapAction {
        self.armed
    }

    /// Takes the majority leap vote at `utc_seconds` (Unix time, UTC) and returns the
    /// action that changes the flag, if it must change.
    pub fn update(&mut self, vote: Leap, utc_seconds: i64) -> Option<ClockAction> {
        let vote = self.decide(vote, utc_seconds).leap;
        let (_, month, day) = civil_from_days(utc_seconds.div_euclid(86_400));
        let last_day = day == days_in_month(utc_seconds.div_euclid(86_400));
        let month_ok = self.config.any_month || month == 6 || month == 12;
        let wanted = match vote {
            Leap::Insert if last_day && month_ok => LeapAction::Insert,
            Leap::Delete if last_day && month_ok => LeapAction::Delete,
            _ => LeapAction::None,
        };
        if wanted == self.armed {
            return None;
        }
        self.armed = wanted;
        Some(ClockAction::SetLeap(wanted))
    }
}

/// The end of the UTC month `utc_seconds` falls in: the next month's first midnight, Unix
/// seconds (where a leap second of this month happens).
pub fn end_of_month(utc_seconds: i64) -> i64 {
    crate::leap_file::next_month_start(utc_seconds)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The number of days of the month that `days` (since 1970-01-01) falls in.
fn days_in_month(days: i64) -> u32 {
    let (year, month, _) = civil_from_days(days);
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2016-12-31T12:00:00Z, the day of the last leap second so far.
    const DEC_31_2016_NOON: i64 = 1_483_185_600;

    #[test]
    fn months_end_at_the_next_ones_first_midnight() {
        assert_eq!(end_of_month(DEC_31_2016_NOON), 1_483_228_800);
        assert_eq!(end_of_month(0), 2_678_400);
    }

    #[test]
    fn calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(DEC_31_2016_NOON / 86_400), (2016, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(days_in_month(11_016), 29);
        assert_eq!(days_in_month(0), 31);
    }

    #[test]
    fn arms_on_the_last_day_only() {
        let mut leap = LeapScheduler::new(LeapConfig::default());
        // A week ahead the vote is noted but nothing is armed.
        assert_eq!(
            leap.update(Leap::Insert, DEC_31_2016_NOON - 7 * 86_400),
            None
        );
        assert_eq!(
            leap.update(Leap::Insert, DEC_31_2016_NOON),
            Some(ClockAction::SetLeap(LeapAction::Insert))
        );
        assert_eq!(leap.update(Leap::Insert, DEC_31_2016_NOON + 60), None);
        // The vote is gone: disarm.
        assert_eq!(
            leap.update(Leap::None, DEC_31_2016_NOON + 120),
            Some(ClockAction::SetLeap(LeapAction::None))
        );
    }

    #[test]
    fn a_list_refuses_announcements_it_does_not_hold_and_arms_what_it_does() {
        let tzdata = LeapSecondsList::parse(include_bytes!("../tests/leap-seconds.list")).unwrap();
        let mut leap = LeapScheduler::with_list(LeapConfig::default(), Some(tzdata));
        // 2016-12: the list holds the leap; no source announces it: armed anyway.
        let d = leap.decide(Leap::None, DEC_31_2016_NOON);
        assert_eq!(
            (d.leap, d.refused, d.list_expired),
            (Leap::Insert, false, false)
        );
        assert_eq!(
            leap.update(Leap::None, DEC_31_2016_NOON),
            Some(ClockAction::SetLeap(LeapAction::Insert))
        );
        assert_eq!(leap.tai_minus_utc(DEC_31_2016_NOON), Some(36));
        // 2017-06-30: a falseticker announces one the list does not have: refused.
        let june_30_2017 = 1_498_824_000;
        let d = leap.decide(Leap::Insert, june_30_2017);
        assert_eq!((d.leap, d.refused), (Leap::None, true));
        assert_eq!(
            leap.update(Leap::Insert, june_30_2017),
            Some(ClockAction::SetLeap(LeapAction::None))
        );
        // Past the list's expiry (2026-06-28), the sources' vote is taken.
        let dec_31_2026 = 1_798_718_400;
        let d = leap.decide(Leap::Insert, dec_31_2026);
        assert_eq!(
            (d.leap, d.refused, d.list_expired),
            (Leap::Insert, false, true)
        );
    }

    #[test]
    fn other_months_need_any_month() {
        // 2017-03-31T12:00:00Z.
        let march_31 = 1_490_961_600;
        let mut strict = LeapScheduler::new(LeapConfig::default());
        assert_eq!(strict.update(Leap::Delete, march_31), None);
        let mut any = LeapScheduler::new(LeapConfig { any_month: true });
        assert_eq!(
            any.update(Leap::Delete, march_31),
            Some(ClockAction::SetLeap(LeapAction::Delete))
        );
    }
}
