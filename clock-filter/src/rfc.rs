//! The RFC 5905 clock filter (section 10, appendix A.5.2): the reference implementation the
//! simulator compares the default estimator against.

use crate::{MAX_DISPERSION, Measurement, MeasurementError, PHI};
use tempora_clock_types::LocalInstant;

/// Stages of the shift register.
const STAGES: usize = 8;
/// Popcorn spike gate: a new offset further than SGATE jitters from the last is a spike.
const SGATE: f64 = 3.0;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Stage {
    offset: f64,
    delay: f64,
    dispersion: f64,
    time: LocalInstant,
}

const EMPTY: Stage = Stage {
    offset: 0.0,
    delay: MAX_DISPERSION,
    dispersion: MAX_DISPERSION,
    time: LocalInstant(i64::MIN),
};

/// What the filter hands on: the peer variables of RFC 5905 section 10.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FilterOutput {
    /// Offset of the minimum-delay sample.
    pub offset: f64,
    /// Its delay.
    pub delay: f64,
    /// The filter dispersion (weighted sum of the stages' dispersions).
    pub dispersion: f64,
    /// The peer jitter: RMS of the other samples' offsets from the chosen one.
    pub jitter: f64,
    /// When the chosen sample was taken.
    pub time: LocalInstant,
}

/// The 8-stage clock filter of one source.
#[derive(Clone, Debug)]
pub struct ClockFilter {
    stages: [Stage; STAGES],
    precision: f64,
    last_update: Option<LocalInstant>,
    last_used: Option<LocalInstant>,
    output: Option<FilterOutput>,
}

impl ClockFilter {
    /// An empty filter; `precision` (seconds) floors the jitter.
    pub fn new(precision: f64) -> Self {
        Self {
            stages: [EMPTY; STAGES],
            precision: if precision.is_finite() && precision > 0.0 {
                precision
            } else {
                1e-9
            },
            last_update: None,
            last_used: None,
            output: None,
        }
    }

    /// The last output, if any.
    pub fn output(&self) -> Option<FilterOutput> {
        self.output
    }

    /// Takes a measurement. Returns the new peer variables when the minimum-delay sample is
    /// newer than the last one used and not a popcorn spike; `None` otherwise (the sample
    /// still enters the register).
    ///
    /// `poll` is the current poll interval in seconds (the spike gate ages out after two).
    pub fn update(
        &mut self,
        measurement: &Measurement,
        poll: f64,
    ) -> Result<Option<FilterOutput>, MeasurementError> {
        measurement.validate()?;
        let now = measurement.time;
        if let Some(last) = self.last_update {
            if now < last {
                return Err(MeasurementError::TimeWentBackwards {
                    seconds: last.seconds_since(now),
                });
            }
        }
        // Shift the register, aging the dispersion of what was there.
        let aged = self
            .last_update
            .map_or(0.0, |last| PHI * now.seconds_since(last));
        for i in (1..STAGES).rev() {
            let mut stage = self.stages[i - 1];
            stage.dispersion = (stage.dispersion + aged).min(MAX_DISPERSION);
            self.stages[i] = stage;
        }
        self.stages[0] = Stage {
            offset: measurement.offset,
            delay: measurement.delay,
            dispersion: measurement.dispersion.min(MAX_DISPERSION),
            time: now,
        };
        self.last_update = Some(now);

        // Sort by delay; stages at maximum dispersion go last.
        let mut sorted = self.stages;
        sorted.sort_unstable_by(|a, b| {
            let key = |s: &Stage| {
                if s.dispersion >= MAX_DISPERSION {
                    MAX_DISPERSION
                } else {
                    s.delay
                }
            };
            // Equal delays: the newer sample first.
            key(a).total_cmp(&key(b)).then(b.time.cmp(&a.time))
        });
        let valid = sorted
            .iter()
            .filter(|s| s.dispersion < MAX_DISPERSION)
            .count();
        let best = sorted[0];
        let mut dispersion = 0.0;
        let mut weight = 0.5;
        for stage in &sorted {
            dispersion += stage.dispersion * weight;
            weight *= 0.5;
        }
        let mut squares = 0.0;
        for stage in sorted.iter().take(valid).skip(1) {
            let d = stage.offset - best.offset;
            squares += d * d;
        }
        let jitter = if valid > 1 {
            libm::sqrt(squares / (valid - 1) as f64)
        } else {
            0.0
        }
        .max(self.precision);

        // A sample is used once, and never one older than the last used.
        if self.last_used.is_some_and(|used| best.time <= used) {
            return Ok(None);
        }
        // Popcorn spike suppressor. The gate is the jitter known before this sample: the
        // jitter just computed includes the spike itself (and the previous best sample, so
        // with eight stages it can never reach three jitters), and the gate only shuts once
        // half the register holds real samples, so that a jitter exists to compare with.
        if let (Some(previous), Some(used)) = (self.output, self.last_used) {
            if valid >= STAGES / 2
                && (best.offset - previous.offset).abs() > SGATE * previous.jitter
                && best.time.seconds_since(used) < 2.0 * poll
            {
                return Ok(None);
            }
        }
        self.last_used = Some(best.time);
        let output = FilterOutput {
            offset: best.offset,
            delay: best.delay,
            dispersion,
            jitter,
            time: best.time,
        };
        self.output = Some(output);
        Ok(Some(output))
    }

    /// Shifts the held samples for a correction of the local clock (a slew or a frequency
    /// change), so they stay comparable with new ones.
    pub fn apply_correction(&mut self, correction: tempora_clock_types::ClockCorrection) {
        let shift = |offset: &mut f64, time: LocalInstant| match correction {
            tempora_clock_types::ClockCorrection::Step { offset: step, .. } if step.is_finite() => {
                *offset -= step
            }
            tempora_clock_types::ClockCorrection::Frequency { delta, at } if delta.is_finite() => {
                *offset -= delta * time.seconds_since(at)
            }
            _ => {}
        };
        for stage in &mut self.stages {
            if stage.dispersion < MAX_DISPERSION {
                shift(&mut stage.offset, stage.time);
            }
        }
        if let Some(out) = &mut self.output {
            shift(&mut out.offset, out.time);
        }
    }

    /// Forgets every sample, as after a step of the clock (RFC 5905 clears the filters).
    pub fn reset(&mut self) {
        *self = Self::new(self.precision);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::measurement;
    use proptest::prelude::*;

    #[test]
    fn picks_the_minimum_delay_sample() {
        let mut filter = ClockFilter::new(1e-6);
        let out = filter
            .update(&measurement(0.010, 0.050, 0.0), 16.0)
            .unwrap();
        assert_eq!(out.map(|o| o.offset), Some(0.010));
        // A lower-delay sample wins.
        let out = filter
            .update(&measurement(0.002, 0.010, 16.0), 16.0)
            .unwrap();
        assert_eq!(out.map(|o| (o.offset, o.delay)), Some((0.002, 0.010)));
        // A higher-delay sample does not replace it: its minimum-delay sample is old.
        let out = filter
            .update(&measurement(0.030, 0.090, 32.0), 16.0)
            .unwrap();
        assert_eq!(out, None, "the minimum-delay sample was used already");
    }

    #[test]
    fn dispersion_ages_at_phi_and_weights_halve() {
        let mut filter = ClockFilter::new(1e-6);
        let out = filter
            .update(&measurement(0.0, 0.01, 0.0), 16.0)
            .unwrap()
            .unwrap();
        // One real stage at 1e-6 weighted 1/2, seven empty ones at 16 s.
        let empty: f64 = (2..=8).map(|i| MAX_DISPERSION / f64::from(1u32 << i)).sum();
        assert!((out.dispersion - (0.5e-6 + empty)).abs() < 1e-12);
        let out = filter
            .update(&measurement(0.0, 0.005, 1000.0), 16.0)
            .unwrap()
            .unwrap();
        // The older stage aged by PHI * 1000 s.
        let expected_second = (1e-6 + PHI * 1000.0) * 0.25;
        let empty: f64 = (3..=8).map(|i| MAX_DISPERSION / f64::from(1u32 << i)).sum();
        assert!((out.dispersion - (0.5e-6 + expected_second + empty)).abs() < 1e-12);
    }

    #[test]
    fn jitter_is_rms_of_offsets_and_floored_by_precision() {
        let mut filter = ClockFilter::new(1e-3);
        filter.update(&measurement(0.0, 0.01, 0.0), 1.0).unwrap();
        let out = filter.update(&measurement(0.0, 0.01, 1.0), 1.0).unwrap();
        assert_eq!(out.map(|o| o.jitter), Some(1e-3), "floored by precision");
        let mut filter = ClockFilter::new(1e-9);
        filter.update(&measurement(0.004, 0.02, 0.0), 64.0).unwrap();
        let out = filter
            .update(&measurement(0.0, 0.01, 64.0), 64.0)
            .unwrap()
            .unwrap();
        assert!((out.jitter - 0.004).abs() < 1e-12, "{out:?}");
    }

    #[test]
    fn popcorn_spike_is_suppressed() {
        let mut filter = ClockFilter::new(1e-6);
        for i in 0..8 {
            filter
                .update(
                    &measurement(0.001, 0.010 - f64::from(i) * 1e-4, f64::from(i) * 16.0),
                    16.0,
                )
                .unwrap();
        }
        // A sudden 1 s offset with the lowest delay yet: a spike, refused.
        let spike = filter
            .update(&measurement(1.0, 0.001, 128.0), 16.0)
            .unwrap();
        assert_eq!(spike, None);
        // After two poll intervals the gate lets a persistent change through.
        let later = filter
            .update(&measurement(1.0, 0.0009, 200.0), 16.0)
            .unwrap();
        assert_eq!(later.map(|o| o.offset), Some(1.0));
    }

    #[test]
    fn corrections_shift_the_register() {
        let mut filter = ClockFilter::new(1e-6);
        filter.update(&measurement(0.010, 0.01, 0.0), 16.0).unwrap();
        filter.apply_correction(tempora_clock_types::ClockCorrection::Step {
            offset: 0.004,
            at: LocalInstant(0),
        });
        assert!((filter.output().unwrap().offset - 0.006).abs() < 1e-12);
        // The next sample at the corrected offset is no spike and is taken.
        let out = filter
            .update(&measurement(0.006, 0.005, 16.0), 16.0)
            .unwrap();
        assert!(out.is_some_and(|o| o.jitter < 1e-3), "{out:?}");
    }

    #[test]
    fn bad_input_leaves_state_untouched() {
        let mut filter = ClockFilter::new(1e-6);
        filter
            .update(&measurement(0.001, 0.01, 10.0), 16.0)
            .unwrap();
        let before = filter.output();
        assert!(
            filter
                .update(&measurement(f64::NAN, 0.01, 11.0), 16.0)
                .is_err()
        );
        assert!(matches!(
            filter.update(&measurement(0.0, 0.01, 5.0), 16.0),
            Err(MeasurementError::TimeWentBackwards { .. })
        ));
        assert_eq!(filter.output(), before);
    }

    proptest! {
        #[test]
        fn outputs_are_finite_and_from_the_register(
            samples in proptest::collection::vec((-1e3f64..1e3, 0f64..10.0, 0f64..5.0), 1..40)
        ) {
            let mut filter = ClockFilter::new(1e-6);
            let mut t = 0.0;
            for (offset, delay, step) in samples {
                t += step;
                if let Some(out) = filter.update(&measurement(offset, delay, t), 16.0).unwrap() {
                    prop_assert!(out.offset.is_finite() && out.jitter.is_finite() && out.dispersion.is_finite());
                    prop_assert!(out.dispersion <= MAX_DISPERSION);
                    prop_assert!(out.jitter >= 1e-6);
                }
            }
        }
    }
}
