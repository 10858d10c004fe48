//! Bounds on a clock's error, as a daemon publishes them and applications read them: the
//! clock status and bound of ClockBound's shared-memory protocol (v2), and the rules a
//! reader applies to a published bound as time passes.
//!
//! The daemon computes a bound at one instant (`as_of`) and says how fast it may grow
//! (`max_drift`). A reader, later, grows it by the time passed and checks that the clock
//! was not stepped behind the daemon's back. The rules live here, below the platform and
//! the simulator, so that both read a bound the same way.

/// What a bound is worth: ClockBound's clock status, with its numeric values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(i32)]
pub enum ClockStatus {
    /// Nothing is known: no synchronisation yet, or the daemon stopped publishing long ago.
    /// The bound must not be trusted.
    #[default]
    Unknown = 0,
    /// The clock is kept on time by the daemon; the bound holds.
    Synchronized = 1,
    /// The clock is not being corrected (its sources are lost, or the daemon is gone); the
    /// bound holds, grown by the drift allowance.
    FreeRunning = 2,
    /// The clock was disturbed (stepped by someone else, a VM snapshot reverted, a jump
    /// the daemon found); the bound must not be trusted until the daemon resynchronises.
    Disrupted = 3,
}

impl ClockStatus {
    /// The status with this number, as the protocol stores it.
    pub const fn from_i32(value: i32) -> Option<Self> {
        match value {
            0 => Some(Self::Unknown),
            1 => Some(Self::Synchronized),
            2 => Some(Self::FreeRunning),
            3 => Some(Self::Disrupted),
            _ => None,
        }
    }

    /// Whether a bound with this status may be trusted (Synchronized or FreeRunning).
    pub const fn is_trusted(self) -> bool {
        matches!(self, Self::Synchronized | Self::FreeRunning)
    }

    /// The name ClockBound's documentation gives it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Unknown => "Unknown",
            Self::Synchronized => "Synchronized",
            Self::FreeRunning => "FreeRunning",
            Self::Disrupted => "Disrupted",
        }
    }
}

/// A bound on the clock's error at one instant, as an engine computes it.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ErrorBound {
    /// The most the clock may be from true time at the instant the bound is for, seconds.
    pub bound: f64,
    /// How fast the bound grows afterwards while nothing corrects the clock: the drift
    /// allowance, seconds per second (1e-6 = 1 ppm).
    pub drift: f64,
    /// What the bound is worth.
    pub status: ClockStatus,
}

impl ErrorBound {
    /// No bound: nothing known.
    pub const UNKNOWN: Self = Self {
        bound: f64::INFINITY,
        drift: 0.0,
        status: ClockStatus::Unknown,
    };

    /// The bound `age` seconds later.
    pub fn grown(&self, age: f64) -> f64 {
        self.bound + self.drift * age.max(0.0)
    }
}

/// How long after `as_of` a reader trusts the status written, as ClockBound's reader does:
/// the daemon may restart within it. Past it, a Synchronized status reads as FreeRunning.
pub const RESTART_GRACE_NS: i64 = 5_000_000_000;

/// How far the monotonic reading may be before `as_of` and still count as the same
/// instant (clock resolution), as ClockBound's reader allows.
pub const CAUSALITY_BLUR_NS: i64 = 1_000;

/// How much CLOCK_REALTIME minus CLOCK_MONOTONIC may move before a reader calls the clock
/// stepped. Frequency corrections and slews move both clocks alike; only steps, leap
/// seconds and the like move one against the other.
pub const STEP_TOLERANCE_NS: i64 = 1_000_000;

/// The largest bound published, nanoseconds (about three years): readers add it to the
/// time in 64-bit nanoseconds, which a larger one could overflow. An unknown bound is
/// published as this.
pub const MAX_BOUND_NS: i64 = 100_000_000_000_000_000;

/// A published bound with the instants it is tied to, as the shared-memory segment holds
/// it: what a reader needs to compute the bound at any later moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BoundSnapshot {
    /// The monotonic instant the bound is for, nanoseconds (CLOCK_MONOTONIC_COARSE in the
    /// segment).
    pub as_of_ns: i64,
    /// The monotonic instant past which the bound must not be trusted.
    pub void_after_ns: i64,
    /// The bound at `as_of`, nanoseconds.
    pub bound_ns: i64,
    /// ClockBound's disruption marker (the VMClock counter the daemon last saw).
    pub disruption_marker: u64,
    /// The bound's growth, parts per billion.
    pub max_drift_ppb: u32,
    /// The status written.
    pub status: ClockStatus,
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC at `as_of`, nanoseconds, where the writer gave
    /// it (Tempora's extension of the segment): a reader that finds the difference moved
    /// knows the clock was stepped since, and reads the status as Disrupted.
    pub realtime_minus_monotonic_ns: Option<i64>,
}

/// A bound read at one moment: the interval true time lies in, and what it is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BoundReading {
    /// The clock's reading minus the bound, nanoseconds since the Unix epoch.
    pub earliest_ns: i128,
    /// The clock's reading, nanoseconds since the Unix epoch.
    pub now_ns: i128,
    /// The clock's reading plus the bound, nanoseconds since the Unix epoch.
    pub latest_ns: i128,
    /// The bound now (half the interval), nanoseconds.
    pub bound_ns: i64,
    /// The status, aged as ClockBound's reader ages it.
    pub status: ClockStatus,
}

/// Why a snapshot gave no reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BoundReadError {
    /// The monotonic reading is before the snapshot's `as_of`: the segment was written by
    /// a writer on another clock, or is corrupt.
    #[error("the monotonic clock reads {behind_ns} ns before the bound's as_of")]
    CausalityBreach {
        /// How far before.
        behind_ns: i64,
    },
    /// The drift is a billion ppb or more: no clock runs that fast.
    #[error("max drift of {ppb} ppb is not a clock's")]
    DriftMalformed {
        /// The value found.
        ppb: u32,
    },
}

impl BoundSnapshot {
    /// What a writer publishes for `bound`, computed at the monotonic instant `as_of_ns`:
    /// trusted for `valid_for_ns` (then `void_after`), with the realtime clock's distance
    /// from the monotonic one at that instant so that readers find later steps. The bound
    /// is rounded up to the nanosecond and the drift up to the ppb; a bound that is not
    /// finite is published as Unknown.
    pub fn publish(
        bound: &ErrorBound,
        as_of_ns: i64,
        valid_for_ns: i64,
        realtime_minus_monotonic_ns: Option<i64>,
    ) -> Self {
        let finite = bound.bound.is_finite() && bound.drift.is_finite();
        // Up to the next whole unit (no_std has no f64::ceil); NaN is 0.
        let ceil = |seconds: f64, max: f64| {
            let x = (seconds * 1e9).clamp(0.0, max);
            let whole = x as i64 as f64;
            if whole < x { whole + 1.0 } else { whole }
        };
        Self {
            as_of_ns,
            void_after_ns: as_of_ns.saturating_add(valid_for_ns),
            bound_ns: if finite {
                ceil(bound.bound, MAX_BOUND_NS as f64) as i64
            } else {
                MAX_BOUND_NS
            },
            disruption_marker: 0,
            max_drift_ppb: if finite {
                ceil(bound.drift, 999_999_999.0) as u32
            } else {
                0
            },
            status: if finite {
                bound.status
            } else {
                ClockStatus::Unknown
            },
            realtime_minus_monotonic_ns,
        }
    }

    /// The reading at the moment the realtime clock read `realtime_ns` (since the Unix
    /// epoch) and the monotonic clock `monotonic_ns` (CLOCK_MONOTONIC or its coarse
    /// twin), read in that order. The bound grows by `max_drift` times the time since
    /// `as_of`; the status ages as ClockBound's reader ages it (Synchronized for the
    /// restart grace, FreeRunning until `void_after`, then Unknown), and reads Disrupted
    /// when the clock was stepped since the snapshot.
    pub fn read(
        &self,
        realtime_ns: i128,
        monotonic_ns: i64,
    ) -> Result<BoundReading, BoundReadError> {
        if self.max_drift_ppb >= 1_000_000_000 {
            return Err(BoundReadError::DriftMalformed {
                ppb: self.max_drift_ppb,
            });
        }
        let age_ns = monotonic_ns.saturating_sub(self.as_of_ns);
        if age_ns < -CAUSALITY_BLUR_NS {
            return Err(BoundReadError::CausalityBreach {
                behind_ns: age_ns.saturating_neg(),
            });
        }
        let age_ns = age_ns.max(0);
        let mut status = match self.status {
            ClockStatus::Unknown | ClockStatus::Disrupted => self.status,
            ClockStatus::Synchronized | ClockStatus::FreeRunning => {
                if age_ns < RESTART_GRACE_NS {
                    self.status
                } else if monotonic_ns < self.void_after_ns {
                    ClockStatus::FreeRunning
                } else {
                    ClockStatus::Unknown
                }
            }
        };
        if let Some(then) = self.realtime_minus_monotonic_ns {
            let now = realtime_ns - i128::from(monotonic_ns);
            if (now - i128::from(then)).abs() > i128::from(STEP_TOLERANCE_NS)
                && status != ClockStatus::Unknown
            {
                status = ClockStatus::Disrupted;
            }
        }
        // Integer arithmetic: ppb times nanoseconds, in i128 so that no age overflows.
        let growth = i128::from(self.max_drift_ppb) * i128::from(age_ns) / 1_000_000_000;
        let bound = (i128::from(self.bound_ns.max(0)) + growth).min(i128::from(MAX_BOUND_NS));
        Ok(BoundReading {
            earliest_ns: realtime_ns - bound,
            now_ns: realtime_ns,
            latest_ns: realtime_ns + bound,
            bound_ns: bound as i64,
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn snapshot(status: ClockStatus) -> BoundSnapshot {
        BoundSnapshot {
            as_of_ns: 0,
            void_after_ns: 10_000_000_000,
            bound_ns: 10_000,
            disruption_marker: 0,
            max_drift_ppb: 1_000,
            status,
            realtime_minus_monotonic_ns: None,
        }
    }

    #[test]
    fn the_bound_grows_with_the_drift_and_the_status_ages() {
        let s = snapshot(ClockStatus::Synchronized);
        let r = s.read(2_000_000_000, 2_000_000_000).unwrap();
        // 2 s at 1000 ppb: 2 us on top of 10 us, as ClockBound's own test.
        assert_eq!(r.bound_ns, 12_000);
        assert_eq!(r.earliest_ns, 2_000_000_000 - 12_000);
        assert_eq!(r.latest_ns, 2_000_000_000 + 12_000);
        assert_eq!(r.status, ClockStatus::Synchronized);
        let r = s.read(8_000_000_000, 8_000_000_000).unwrap();
        assert_eq!(r.status, ClockStatus::FreeRunning);
        let r = s.read(20_000_000_000, 20_000_000_000).unwrap();
        assert_eq!(r.status, ClockStatus::Unknown);
        assert_eq!(
            snapshot(ClockStatus::Disrupted).read(0, 0).unwrap().status,
            ClockStatus::Disrupted
        );
    }

    #[test]
    fn a_step_behind_the_writers_back_reads_disrupted() {
        let s = BoundSnapshot {
            realtime_minus_monotonic_ns: Some(1_000_000_000_000),
            ..snapshot(ClockStatus::Synchronized)
        };
        let mono = 1_000_000_000;
        let real = 1_000_000_000_000i128 + i128::from(mono);
        assert_eq!(
            s.read(real, mono).unwrap().status,
            ClockStatus::Synchronized
        );
        assert_eq!(
            s.read(real + 999_000, mono).unwrap().status,
            ClockStatus::Synchronized
        );
        // A reverted snapshot: the realtime clock three hours back.
        assert_eq!(
            s.read(real - 10_800_000_000_000, mono).unwrap().status,
            ClockStatus::Disrupted
        );
        assert_eq!(
            s.read(real + 2_000_000, mono).unwrap().status,
            ClockStatus::Disrupted
        );
    }

    #[test]
    fn a_published_bound_is_rounded_up_and_an_infinite_one_is_unknown() {
        let b = ErrorBound {
            bound: 1.5e-9,
            drift: 1.2e-9,
            status: ClockStatus::Synchronized,
        };
        let s = BoundSnapshot::publish(&b, 7, 10, Some(3));
        assert_eq!((s.bound_ns, s.max_drift_ppb, s.void_after_ns), (2, 2, 17));
        assert_eq!(s.status, ClockStatus::Synchronized);
        let s = BoundSnapshot::publish(&ErrorBound::UNKNOWN, i64::MAX, 10, None);
        assert_eq!(s.status, ClockStatus::Unknown);
        assert_eq!(s.void_after_ns, i64::MAX);
    }

    #[test]
    fn bad_snapshots_are_errors() {
        let s = snapshot(ClockStatus::Synchronized);
        assert_eq!(
            s.read(0, -5_000),
            Err(BoundReadError::CausalityBreach { behind_ns: 5_000 })
        );
        assert!(s.read(0, -500).is_ok());
        let s = BoundSnapshot {
            max_drift_ppb: 1_000_000_000,
            ..s
        };
        assert!(matches!(
            s.read(0, 0),
            Err(BoundReadError::DriftMalformed { .. })
        ));
    }

    #[test]
    fn status_numbers_round_trip() {
        for s in [
            ClockStatus::Unknown,
            ClockStatus::Synchronized,
            ClockStatus::FreeRunning,
            ClockStatus::Disrupted,
        ] {
            assert_eq!(ClockStatus::from_i32(s as i32), Some(s));
        }
        assert_eq!(ClockStatus::from_i32(4), None);
    }

    proptest! {
        /// Any snapshot and any moment: no panic, and a reading's interval is centred on
        /// the clock's reading and never narrower than the bound written.
        #[test]
        fn reading_never_panics_and_never_shrinks(
            as_of in any::<i64>(), void in any::<i64>(), bound in any::<i64>(),
            drift in any::<u32>(), status in 0i32..4, step in proptest::option::of(any::<i64>()),
            real in any::<i64>(), mono in any::<i64>(),
        ) {
            let s = BoundSnapshot {
                as_of_ns: as_of, void_after_ns: void, bound_ns: bound, disruption_marker: 0,
                max_drift_ppb: drift, status: ClockStatus::from_i32(status).unwrap(),
                realtime_minus_monotonic_ns: step,
            };
            if let Ok(r) = s.read(i128::from(real), mono) {
                prop_assert!(i128::from(r.bound_ns) >= i128::from(bound.clamp(0, MAX_BOUND_NS)));
                prop_assert_eq!(r.latest_ns - r.now_ns, r.now_ns - r.earliest_ns);
            }
        }
    }
}
