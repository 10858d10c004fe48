//! An honest bound on the clock's error, kept from one update to the next: what the last
//! measurement allows, the part of it the discipline has not yet corrected, and a drift
//! allowance for the time since. Shared by the NTP and PTP engines.
//!
//! At an update at `u` the clock is off by the measured offset θ, give or take the
//! measurement's own uncertainty: `confidence` standard errors of the estimate, half the
//! round trip to the reference (an asymmetry no exchange can see) and the dispersion the
//! reference chain reports. The discipline then removes θ, so at `t > u` the clock is off
//! by the part not yet removed, plus what its frequency error and the oscillator's wander
//! added since `u`:
//!
//! ```text
//! bound(t) = k·σ + root_delay/2 + root_dispersion + |θ not yet corrected at t|
//!          + (max_drift + k·frequency_error) · (t − u) + wander · (t − u)^1.5
//! ```
//!
//! `wander` is what the updates themselves show: an oscillator whose frequency walks
//! (temperature, a busy host) leaves offsets at each update that neither the measurement's
//! noise nor the frequency's error explain. A frequency that walks at random moves the
//! time by the interval to the power 1.5, so that is how the term grows; its coefficient
//! is the largest the recent updates showed (forgotten by a twentieth per update), so a
//! poor oscillator gets a wider bound rather than a wrong one.
//!
//! The status says what the bound is worth: Unknown before the first update, and until
//! the updates have run [`WARM_UP_SECONDS`] and the frequency has settled (an update that
//! moves it by more than [`SETTLED_PPM`] says it has not: a server still slewing its own
//! offset at hundreds of ppm, say); Synchronized while updates keep coming; FreeRunning
//! once none came for a while (the bound keeps growing); Disrupted from a detected
//! disruption to the next update.

use tempora_clock_types::{ClockStatus, ErrorBound, LocalInstant};

/// How the bound is computed.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BoundConfig {
    /// The oscillator's wander the estimator cannot see between updates, ppm: added to the
    /// frequency's own uncertainty. 1 ppm by default, as chrony's `maxclockerror` and
    /// ClockBound's `max-drift-rate`; a quartz oscillator in a room whose temperature
    /// swings by 10 K moves by about that.
    pub max_drift_ppm: f64,
    /// How many standard errors of the estimate (and of its frequency) the bound covers:
    /// 3 by default. The bound's other terms are maxima, not standard errors.
    pub confidence: f64,
}

impl Default for BoundConfig {
    fn default() -> Self {
        Self {
            max_drift_ppm: 1.0,
            confidence: 3.0,
        }
    }
}

/// What an update tells the bound.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoundUpdate {
    /// The offset measured (true time minus the clock), seconds.
    pub offset: f64,
    /// Its standard error, seconds.
    pub offset_error: f64,
    /// Round trip to the reference, seconds (half of it bounds the asymmetry).
    pub root_delay: f64,
    /// The dispersion the reference chain reports, seconds (without the offset itself).
    pub root_dispersion: f64,
    /// How wrong the clock's frequency may be after this update, ppm (one standard error):
    /// the estimator's frequency error where the clock is steered, or the uncorrected
    /// frequency error plus it where it is not.
    pub frequency_error_ppm: f64,
    /// How far the frequency walks from update to update, ppm (what an estimator fitting
    /// a line through recent exchanges lags by); it widens the drift allowance but does
    /// not unsettle the bound. 0 where unknown.
    pub frequency_walk_ppm: f64,
    /// The newest exchange with a source that survived selection, where there is one
    /// from this moment: its offset and the half-width that holds the truth for certain
    /// if the source tells the truth (half its round trip, its dispersion, the source's
    /// root delay / 2 and root dispersion). Estimators can lag a wandering clock; an
    /// exchange cannot, so the bound never claims less than it shows.
    pub sample: Option<(f64, f64)>,
    /// Whether the discipline corrects the offset (the rest of it is then what
    /// [`BoundTracker::bound`] is told is remaining); observe-only or a refused
    /// correction leaves all of it.
    pub corrected: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Anchor {
    at: LocalInstant,
    /// The measurement's uncertainty at `at`, seconds.
    base: f64,
    /// The offset nothing corrects, seconds.
    uncorrected: f64,
    /// Seconds per second.
    drift: f64,
}

/// The bound's state between updates.
#[derive(Clone, Debug, PartialEq)]
pub struct BoundTracker {
    config: BoundConfig,
    anchor: Option<Anchor>,
    disrupted: bool,
    disruptions: u64,
    /// Frequency wander the updates showed: seconds per second^1.5.
    wander: f64,
    /// Whether the last update left the frequency settled.
    settled: bool,
    /// The first update since the bound was last forgotten.
    first: Option<LocalInstant>,
}

/// How long updates must have run before a bound is trusted, seconds: at start, a
/// frequency from a few exchanges a second apart (against servers that may still be
/// settling themselves) can be off by hundreds of ppm, and only a measurement a while
/// later puts it to the test. Until then the bound reads Unknown.
pub(crate) const WARM_UP_SECONDS: f64 = 16.0;

/// The largest frequency change an update may make and leave the bound trusted, ppm.
pub(crate) const SETTLED_PPM: f64 = 10.0;

/// How much of the wander seen is kept from one update to the next.
const WANDER_MEMORY: f64 = 0.95;
/// The shortest interval between updates that wander is learned from, seconds.
const MIN_WANDER_INTERVAL: f64 = 4.0;
/// How much more wander the bound allows than the last interval showed.
const WANDER_MARGIN: f64 = 1.5;

impl BoundTracker {
    /// No bound yet (Unknown).
    pub fn new(config: BoundConfig) -> Self {
        Self {
            config,
            anchor: None,
            disrupted: false,
            disruptions: 0,
            wander: 0.0,
            settled: false,
            first: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> BoundConfig {
        self.config
    }

    /// Disruptions found so far (by [`Self::disrupt`] or by an update outside the bound).
    pub fn disruptions(&self) -> u64 {
        self.disruptions
    }

    /// Takes an update at `now`. `remaining_before` is the correction that was still to
    /// be made just before it (to judge whether the clock kept within the bound claimed).
    pub fn update(&mut self, update: &BoundUpdate, now: LocalInstant, remaining_before: f64) {
        let values = [
            update.offset,
            update.offset_error,
            update.root_delay,
            update.root_dispersion,
            update.frequency_error_ppm,
            update.frequency_walk_ppm,
            update.sample.map_or(0.0, |(o, h)| o + h),
        ];
        if values.iter().any(|v| !v.is_finite()) {
            // Nothing honest can be said from it: no bound until a sound update.
            self.reset();
            return;
        }
        let k = self.config.confidence;
        let statistical = k * update.offset_error.abs()
            + update.root_delay.abs() / 2.0
            + update.root_dispersion.abs();
        // Where the clock is for certain (the exchange) and for likely (the estimate).
        let (found, half_width) = update
            .sample
            .map_or((update.offset, k * update.offset_error.abs()), |(o, h)| {
                (o, h.abs())
            });
        // The exchange holds the truth for certain; an estimate can lag a wandering clock.
        let base = update.sample.map_or(statistical, |(o, h)| {
            statistical.max((o - update.offset).abs() + h.abs())
        });
        // The clock was outside the bound claimed if even the most favourable reading of
        // this measurement puts it there.
        let claimed = self.bound(now, remaining_before, f64::INFINITY);
        let was_disrupted = self.disrupted;
        let least_error = found.abs() - half_width;
        self.disrupted = claimed.status.is_trusted() && least_error > claimed.bound;
        if self.disrupted && !was_disrupted {
            self.disruptions += 1;
        }
        // The error found now beyond all the last bound allowed but its drift, accrued
        // since the last update: the drift it should have allowed. Wander.
        if let Some(a) = self.anchor.filter(|a| a.uncorrected == 0.0) {
            let interval = now.seconds_since(a.at);
            // Over a short interval the noise would pass for wander (it is divided by the
            // interval to the power 1.5).
            if interval >= MIN_WANDER_INTERVAL && claimed.status.is_trusted() && !self.disrupted {
                // The estimate's offset is what the clock gained since the last update's
                // correction, give or take its noise.
                // Beyond what the linear drift allowance already covered.
                let unexplained = (update.offset.abs()
                    - k * update.offset_error.abs()
                    - remaining_before.abs()
                    - a.drift * interval)
                    .max(0.0);
                // A random walk the last interval showed may walk further in the next.
                self.wander = (self.wander * WANDER_MEMORY)
                    .max(WANDER_MARGIN * unexplained / (interval * libm::sqrt(interval)));
            }
        }
        self.first.get_or_insert(now);
        self.anchor = Some(Anchor {
            at: now,
            base,
            uncorrected: if update.corrected {
                0.0
            } else {
                update.offset.abs()
            },
            drift: (self.config.max_drift_ppm
                + k * update
                    .frequency_error_ppm
                    .abs()
                    .max(update.frequency_walk_ppm.abs()))
                * 1e-6,
        });
        self.settled = update.frequency_error_ppm.abs() <= SETTLED_PPM;
    }

    /// The clock was disturbed behind the discipline's back (stepped by someone else, a VM
    /// snapshot reverted): no bound can be trusted until the next update.
    pub fn disrupt(&mut self) {
        if !self.disrupted {
            self.disruptions += 1;
        }
        self.disrupted = true;
    }

    /// Forgets the bound (the clock was set from nothing, the sources were replaced).
    pub fn reset(&mut self) {
        self.anchor = None;
        self.disrupted = false;
        self.wander = 0.0;
        self.settled = false;
        self.first = None;
    }

    /// The bound at `now`: `remaining` is the correction the discipline has still to make
    /// (seconds, signed), `free_running_after` how long without an update the clock counts
    /// as free running (seconds).
    pub fn bound(&self, now: LocalInstant, remaining: f64, free_running_after: f64) -> ErrorBound {
        let Some(a) = self.anchor else {
            return ErrorBound::UNKNOWN;
        };
        let age = now.seconds_since(a.at).max(0.0);
        let remaining = if remaining.is_finite() {
            remaining.abs()
        } else {
            f64::INFINITY
        };
        let status = if self.disrupted {
            ClockStatus::Disrupted
        } else if !self.settled
            || self
                .first
                .is_none_or(|first| a.at.seconds_since(first) < WARM_UP_SECONDS)
        {
            ClockStatus::Unknown
        } else if age > free_running_after {
            ClockStatus::FreeRunning
        } else {
            ClockStatus::Synchronized
        };
        // The wander term's slope a second on, so that a reader growing the bound
        // linearly for the second until the next write stays above it.
        let wander_slope = 1.5 * self.wander * libm::sqrt(age + 1.0);
        ErrorBound {
            bound: a.base
                + a.uncorrected
                + remaining
                + a.drift * age
                + self.wander * age * libm::sqrt(age),
            drift: a.drift + wander_slope,
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn update(offset: f64) -> BoundUpdate {
        BoundUpdate {
            offset,
            offset_error: 10e-6,
            root_delay: 200e-6,
            root_dispersion: 20e-6,
            frequency_error_ppm: 0.1,
            frequency_walk_ppm: 0.0,
            sample: None,
            corrected: true,
        }
    }

    #[test]
    fn the_bound_is_the_measurement_the_residual_and_the_drift() {
        let mut t = BoundTracker::new(BoundConfig::default());
        assert_eq!(
            t.bound(LocalInstant(0), 0.0, 100.0).status,
            ClockStatus::Unknown
        );
        t.update(&update(0.0), LocalInstant(-20_000_000_000), 0.0);
        // One update: a bound, not yet trusted.
        assert_eq!(
            t.bound(LocalInstant(0), 0.0, 100.0).status,
            ClockStatus::Unknown
        );
        t.update(&update(50e-6), LocalInstant(0), 0.0);
        let b = t.bound(LocalInstant(0), 50e-6, 100.0);
        // 3 x 10 us + 100 us + 20 us + 50 us to correct.
        assert!((b.bound - 200e-6).abs() < 1e-12, "{b:?}");
        assert_eq!(b.status, ClockStatus::Synchronized);
        // 10 s later, corrected, grown by (1 + 3 x 0.1) ppm.
        let b = t.bound(LocalInstant::from_nanos(10_000_000_000), 0.0, 100.0);
        assert!((b.bound - (150e-6 + 13e-6)).abs() < 1e-12, "{b:?}");
        assert!((b.drift - 1.3e-6).abs() < 1e-15);
        let b = t.bound(LocalInstant::from_nanos(200_000_000_000), 0.0, 100.0);
        assert_eq!(b.status, ClockStatus::FreeRunning);
    }

    #[test]
    fn an_uncorrected_offset_stays_in_the_bound() {
        let mut t = BoundTracker::new(BoundConfig::default());
        t.update(
            &BoundUpdate {
                corrected: false,
                ..update(-0.25)
            },
            LocalInstant(0),
            0.0,
        );
        assert!(t.bound(LocalInstant(1_000_000_000), 0.0, 100.0).bound > 0.25);
    }

    #[test]
    fn a_clock_found_outside_its_bound_or_stepped_is_disrupted_until_the_next_update() {
        let mut t = BoundTracker::new(BoundConfig::default());
        t.update(&update(0.0), LocalInstant(-20_000_000_000), 0.0);
        t.update(&update(10e-6), LocalInstant(0), 0.0);
        // 16 s later the clock is found 5 ms off: far outside the ~170 us claimed.
        let later = LocalInstant::from_nanos(16_000_000_000);
        t.update(&update(5e-3), later, 0.0);
        assert_eq!(t.bound(later, 5e-3, 100.0).status, ClockStatus::Disrupted);
        assert_eq!(t.disruptions(), 1);
        let next = LocalInstant::from_nanos(32_000_000_000);
        t.update(&update(5e-6), next, 0.0);
        assert_eq!(t.bound(next, 0.0, 100.0).status, ClockStatus::Synchronized);
        t.disrupt();
        assert_eq!(t.bound(next, 0.0, 100.0).status, ClockStatus::Disrupted);
        assert_eq!(t.disruptions(), 2);
        // A measurement that is not finite forgets the bound.
        t.update(&update(f64::NAN), next, 0.0);
        assert_eq!(t.bound(next, 0.0, 100.0).status, ClockStatus::Unknown);
    }

    proptest! {
        /// Whatever the updates, the bound covers the uncorrected offset plus the
        /// remaining correction, never shrinks with age, and is never negative.
        #[test]
        fn the_bound_covers_what_is_known_and_grows(
            offset in -1e3f64..1e3, err in 0f64..1.0, delay in 0f64..1.0, disp in 0f64..1.0,
            freq in 0f64..500.0, corrected in any::<bool>(), remaining in -1.0f64..1.0,
            age in 0i64..10_000_000_000_000,
        ) {
            let mut t = BoundTracker::new(BoundConfig::default());
            let u = BoundUpdate { offset, offset_error: err, root_delay: delay, root_dispersion: disp,
                frequency_error_ppm: freq, frequency_walk_ppm: 0.0, sample: None, corrected };
            t.update(&u, LocalInstant(0), 0.0);
            let b0 = t.bound(LocalInstant(0), remaining, 1e9);
            let b1 = t.bound(LocalInstant(age), remaining, 1e9);
            prop_assert!(b0.bound >= remaining.abs() + delay / 2.0);
            if !corrected { prop_assert!(b0.bound >= offset.abs()); }
            prop_assert!(b1.bound >= b0.bound);
        }
    }
}
