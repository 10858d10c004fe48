//! The vocabulary every Tempora layer shares: instants on the local clock, leap warnings,
//! corrections the filters must learn of, and the actions a discipline asks of a clock,
//! with the [`SteeredClock`] trait of the clocks that carry them out.
//!
//! It sits below the algorithms (`tempora-clock-filter`, `tempora-clock-discipline`), the
//! engines (`tempora-ntp`, `tempora-ptp`) and the platform (`tempora-sys-clock`), so that
//! none of them borrows a type from a sibling. `no_std`, no allocation.

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(
    clippy::std_instead_of_core,
    clippy::alloc_instead_of_core,
    clippy::std_instead_of_alloc
)]

pub mod bound;

pub use bound::{BoundReadError, BoundReading, BoundSnapshot, ClockStatus, ErrorBound};

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// algorithm): the calendar the leap-seconds list and the RTC count in.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A point on the local clock's timescale, in nanoseconds from an arbitrary origin.
/// Integer, so that long runs lose no precision; differences come out as `f64` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LocalInstant(pub i64);

impl LocalInstant {
    /// An instant from nanoseconds.
    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// An instant from seconds (rounded to the nanosecond, saturating).
    pub fn from_seconds_f64(seconds: f64) -> Self {
        Self((seconds * 1e9) as i64)
    }

    /// Nanoseconds from the origin.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Seconds from `earlier` to `self` (negative if `earlier` is later).
    pub fn seconds_since(self, earlier: Self) -> f64 {
        self.0.saturating_sub(earlier.0) as f64 * 1e-9
    }

    /// This instant moved by `seconds` (saturating).
    pub fn add_seconds(self, seconds: f64) -> Self {
        Self(self.0.saturating_add((seconds * 1e9) as i64))
    }
}

/// A leap second warning as a source reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Leap {
    /// No leap second pending.
    #[default]
    None,
    /// A second will be inserted at the end of the month's last day.
    Insert,
    /// A second will be deleted at the end of the month's last day.
    Delete,
    /// The source is not synchronised.
    Unsynchronized,
}

/// A correction applied to the local clock, which every filter holding samples must learn
/// of so that its old samples stay comparable with new ones.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ClockCorrection {
    /// The clock was stepped forward by `offset` seconds (backward if negative).
    Step {
        /// The step.
        offset: f64,
        /// When.
        at: LocalInstant,
    },
    /// The clock's frequency was raised by `delta` (seconds per second; 1e-6 = 1 ppm).
    Frequency {
        /// The change.
        delta: f64,
        /// When.
        at: LocalInstant,
    },
}

/// A leap second to arm in the clock (the kernel applies it at the end of the UTC day).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum LeapAction {
    /// No leap second armed.
    #[default]
    None,
    /// Insert a second at the end of the day.
    Insert,
    /// Delete a second at the end of the day.
    Delete,
}

/// What the clock reports about itself to the kernel (and so to the RTC and to other
/// programs): synchronised or not, and its error bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SyncStatus {
    /// Whether the clock is synchronised (clears the kernel's STA_UNSYNC, which lets its
    /// 11-minute mode keep the RTC).
    pub synchronized: bool,
    /// Maximum error, seconds.
    pub max_error: f64,
    /// Estimated error, seconds.
    pub est_error: f64,
}

/// One thing to do to the steered clock.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ClockAction {
    /// Step the clock by `offset` seconds (forward if positive).
    Step {
        /// The step.
        offset: f64,
    },
    /// Set the frequency correction to `ppm` (positive makes the clock run faster).
    SetFrequency {
        /// The correction, parts per million.
        ppm: f64,
    },
    /// Move the clock by `offset` seconds gradually, at the clock's own slew rate.
    Slew {
        /// The offset to remove.
        offset: f64,
    },
    /// Arm or disarm a leap second.
    SetLeap(LeapAction),
    /// Report the synchronisation status.
    SetStatus(SyncStatus),
}

impl ClockAction {
    /// The correction this action makes to the clock, for the filters that hold samples
    /// (`previous_ppm` is the frequency set before it). `None` for actions that do not
    /// move the clock.
    pub fn correction(&self, previous_ppm: f64, at: LocalInstant) -> Option<ClockCorrection> {
        match *self {
            Self::Step { offset } | Self::Slew { offset } => {
                Some(ClockCorrection::Step { offset, at })
            }
            Self::SetFrequency { ppm } => Some(ClockCorrection::Frequency {
                delta: (ppm - previous_ppm) * 1e-6,
                at,
            }),
            Self::SetLeap(_) | Self::SetStatus(_) => None,
        }
    }
}

/// A clock that can be steered: the system clock, a PTP hardware clock, a simulated one.
pub trait SteeredClock {
    /// What went wrong (a platform error, or a simulated fault).
    type Error;

    /// The time on this clock, in nanoseconds since 1970-01-01T00:00:00 of its timescale.
    fn now(&self) -> Result<i128, Self::Error>;

    /// Steps the clock by `offset` seconds.
    fn step(&mut self, offset: f64) -> Result<(), Self::Error>;

    /// Sets the frequency correction in ppm.
    fn set_frequency(&mut self, ppm: f64) -> Result<(), Self::Error>;

    /// The frequency correction currently set, in ppm.
    fn frequency(&self) -> Result<f64, Self::Error>;

    /// Slews the clock by `offset` seconds at the clock's own rate.
    fn slew(&mut self, offset: f64) -> Result<(), Self::Error>;

    /// Arms or disarms a leap second.
    fn set_leap(&mut self, leap: LeapAction) -> Result<(), Self::Error>;

    /// Reports the synchronisation status.
    fn set_status(&mut self, status: SyncStatus) -> Result<(), Self::Error>;

    /// Carries out one action.
    fn apply(&mut self, action: &ClockAction) -> Result<(), Self::Error> {
        match *action {
            ClockAction::Step { offset } => self.step(offset),
            ClockAction::SetFrequency { ppm } => self.set_frequency(ppm),
            ClockAction::Slew { offset } => self.slew(offset),
            ClockAction::SetLeap(leap) => self.set_leap(leap),
            ClockAction::SetStatus(status) => self.set_status(status),
        }
    }
}

/// The most actions one call returns.
const MAX_ACTIONS: usize = 4;

/// A short list of actions, in the order to apply them. No allocation.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct ActionList {
    actions: [Option<ClockAction>; MAX_ACTIONS],
    len: usize,
}

impl ActionList {
    /// No actions.
    pub const fn new() -> Self {
        Self {
            actions: [None; MAX_ACTIONS],
            len: 0,
        }
    }

    /// Appends an action; past the capacity (four) it is dropped, never a panic.
    pub fn push(&mut self, action: ClockAction) {
        // Every producer pushes at most MAX_ACTIONS; a fifth would be dropped, not panic.
        if let Some(slot) = self.actions.get_mut(self.len) {
            *slot = Some(action);
            self.len += 1;
        }
    }

    /// Number of actions.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The actions, in order.
    pub fn iter(&self) -> impl Iterator<Item = &ClockAction> {
        self.actions[..self.len].iter().flatten()
    }

    /// The step among the actions, if any.
    pub fn step(&self) -> Option<f64> {
        self.iter().find_map(|a| match a {
            ClockAction::Step { offset } => Some(*offset),
            _ => None,
        })
    }
}

impl<'a> IntoIterator for &'a ActionList {
    type Item = &'a ClockAction;
    type IntoIter = core::iter::Flatten<core::slice::Iter<'a, Option<ClockAction>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.actions[..self.len].iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_count_days_from_the_epoch() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        // 2016-12-31, the last leap second's day; 2036-02-07, NTP's era 1.
        assert_eq!(days_from_civil(2016, 12, 31), 17_166);
        assert_eq!(days_from_civil(2036, 2, 7), 24_143);
    }

    #[test]
    fn corrections_of_actions() {
        let at = LocalInstant(5);
        assert_eq!(
            ClockAction::Step { offset: 0.5 }.correction(0.0, at),
            Some(ClockCorrection::Step { offset: 0.5, at })
        );
        match (ClockAction::SetFrequency { ppm: 12.0 }).correction(10.0, at) {
            Some(ClockCorrection::Frequency { delta, .. }) => assert!((delta - 2e-6).abs() < 1e-15),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            ClockAction::SetLeap(LeapAction::Insert).correction(0.0, at),
            None
        );
    }

    #[test]
    fn action_list_is_bounded() {
        let mut list = ActionList::new();
        for i in 0..6 {
            list.push(ClockAction::Step {
                offset: f64::from(i),
            });
        }
        assert_eq!(list.len(), MAX_ACTIONS);
        assert_eq!(list.step(), Some(0.0));
        assert_eq!(list.iter().count(), MAX_ACTIONS);
    }
}
