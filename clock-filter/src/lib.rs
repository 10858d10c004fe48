//! From noisy time measurements to estimates: the per-source clock filter, the selection
//! of truechimers, clustering and combining, and the sample filters PTP uses.
//!
//! Sans-IO and `no_std`: everything takes measurements and `now` as arguments. Nothing here
//! knows NTP or PTP wire formats or Linux. A [`Measurement`] is an offset, a delay, a
//! dispersion, root delay and root dispersion, stratum, leap, and when it was taken.
//!
//! - [`ClockFilter`]: the RFC 5905 section 10 filter (8 stages, minimum delay, popcorn
//!   spike gate), kept as the reference the simulator compares against.
//! - [`RegressionFilter`]: the default estimator: offset and frequency from the lines every
//!   recent exchange allows (each bounds the offset by half its round trip), weighted by
//!   how each leg queues, with a runs test that drops stale samples (as chrony does).
//! - [`select`]: intersection (RFC 5905 section 11.2.1), clustering with anti-clockhop
//!   (11.2.2) and combining (11.2.3), giving the system offset, jitter, root delay and root
//!   dispersion.
//! - [`MovingMedian`] and [`MinDelayWindow`]: PTP path-delay and offset filters.
//! - [`SourceStatus`]: what a status table shows per source (reach, offset, selection mark).

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(
    clippy::std_instead_of_core,
    clippy::alloc_instead_of_core,
    clippy::std_instead_of_alloc
)]

mod feasible;
mod ptp;
mod regression;
mod rfc;
mod selection;
mod source;

pub use ptp::{
    MinDelayWindow, MovingMedian, OffsetEstimate, OffsetFilter, OffsetKalman, OffsetKalmanConfig,
};
pub use regression::{Estimate, MAX_SAMPLES, RegressionConfig, RegressionFilter};
pub use rfc::{ClockFilter, FilterOutput};
pub use selection::{
    Candidate, CandidateVerdict, MAX_CANDIDATES, SelectionConfig, SelectionError, SystemEstimate,
    select,
};
pub use source::{ReachRegister, SelectionMark, SourceStatus};

use tempora_clock_types::{Leap, LocalInstant};

/// Frequency tolerance of a clock: dispersion grows at PHI = 15 ppm (RFC 5905 section 7.2).
pub const PHI: f64 = 15e-6;
/// Maximum dispersion: a sample or source at or beyond it is worthless (RFC 5905: 16 s).
pub const MAX_DISPERSION: f64 = 16.0;

/// One measurement of a source, as the protocol layer computed it.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Measurement {
    /// How far the source is ahead of the local clock, in seconds.
    pub offset: f64,
    /// Round-trip delay to the source, in seconds (clamp tiny negatives from coarse clocks
    /// to the precision before passing them: negative delays are rejected).
    pub delay: f64,
    /// Dispersion of this sample: both clocks' precision and PHI times the round trip.
    pub dispersion: f64,
    /// The source's root delay.
    pub root_delay: f64,
    /// The source's root dispersion.
    pub root_dispersion: f64,
    /// The source's stratum.
    pub stratum: u8,
    /// The source's leap indicator.
    pub leap: Leap,
    /// When the measurement was taken, on the local clock (the exchange's end, T4).
    pub time: LocalInstant,
}

/// Why a measurement was refused. A refused measurement leaves the state untouched.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MeasurementError {
    /// A field is NaN or infinite.
    #[error("measurement field {field} is not finite")]
    NotFinite {
        /// The field's name.
        field: &'static str,
    },
    /// The delay is negative.
    #[error("measurement delay {delay} s is negative")]
    NegativeDelay {
        /// The delay given.
        delay: f64,
    },
    /// A dispersion, root delay or root dispersion is negative.
    #[error("measurement field {field} is negative ({value} s)")]
    Negative {
        /// The field's name.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// The measurement is older than one already taken in.
    #[error("measurement time went backwards by {seconds} s")]
    TimeWentBackwards {
        /// How far back, in seconds.
        seconds: f64,
    },
}

impl Measurement {
    /// Checks that every field is finite and non-negative where it must be.
    pub fn validate(&self) -> Result<(), MeasurementError> {
        for (field, value) in [
            ("offset", self.offset),
            ("delay", self.delay),
            ("dispersion", self.dispersion),
            ("root_delay", self.root_delay),
            ("root_dispersion", self.root_dispersion),
        ] {
            if !value.is_finite() {
                return Err(MeasurementError::NotFinite { field });
            }
        }
        if self.delay < 0.0 {
            return Err(MeasurementError::NegativeDelay { delay: self.delay });
        }
        for (field, value) in [
            ("dispersion", self.dispersion),
            ("root_delay", self.root_delay),
            ("root_dispersion", self.root_dispersion),
        ] {
            if value < 0.0 {
                return Err(MeasurementError::Negative { field, value });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn measurement(offset: f64, delay: f64, seconds: f64) -> Measurement {
        Measurement {
            offset,
            delay,
            dispersion: 1e-6,
            root_delay: 0.0,
            root_dispersion: 0.0,
            stratum: 1,
            leap: Leap::None,
            time: LocalInstant::from_seconds_f64(seconds),
        }
    }

    #[test]
    fn bad_measurements_are_typed() {
        let good = measurement(0.1, 0.01, 1.0);
        assert_eq!(good.validate(), Ok(()));
        let nan = Measurement {
            offset: f64::NAN,
            ..good
        };
        assert_eq!(
            nan.validate(),
            Err(MeasurementError::NotFinite { field: "offset" })
        );
        let inf = Measurement {
            root_dispersion: f64::INFINITY,
            ..good
        };
        assert_eq!(
            inf.validate(),
            Err(MeasurementError::NotFinite {
                field: "root_dispersion"
            })
        );
        let negative = Measurement {
            delay: -0.001,
            ..good
        };
        assert_eq!(
            negative.validate(),
            Err(MeasurementError::NegativeDelay { delay: -0.001 })
        );
        let negative_disp = Measurement {
            dispersion: -1.0,
            ..good
        };
        assert!(matches!(
            negative_disp.validate(),
            Err(MeasurementError::Negative {
                field: "dispersion",
                ..
            })
        ));
    }

    #[test]
    fn instants() {
        let a = LocalInstant::from_seconds_f64(1.5);
        let b = a.add_seconds(2.25);
        assert_eq!(b.as_nanos(), 3_750_000_000);
        assert_eq!(b.seconds_since(a), 2.25);
        assert_eq!(a.seconds_since(b), -2.25);
        assert_eq!(
            LocalInstant(i64::MAX).add_seconds(1.0),
            LocalInstant(i64::MAX)
        );
    }
}
