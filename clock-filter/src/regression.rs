//! The default per-source estimator: offset and frequency from every recent exchange.
//!
//! Why it beats the RFC filter: the RFC keeps the one minimum-delay sample of the last eight
//! and throws the rest away. Here every exchange bounds the offset (it lies within half the
//! round trip of the measured one), and the lines through all those bounds give offset and
//! frequency together (see `feasible.rs`): the bounds close in as one over the number of
//! exchanges, where averaging short round trips gains only as one over its root. A weighted
//! regression over the same samples gives the jitter, and a runs test on its residuals
//! (as chrony does) notices when old samples no longer fit a line (the clock's frequency
//! changed) and drops them; so does a window whose older half needs its bounds widened to
//! fit a line the newer half fits without. Exchanges that disagree with most of the others
//! (a server clock's glitch) sit out rather than widen every bound.

use crate::feasible::{Bound, FrequencyPrior, Region, feasible_region, mark_outliers};
use crate::{Measurement, MeasurementError};
use tempora_clock_types::{ClockCorrection, Leap, LocalInstant};

/// The most samples a filter holds.
pub const MAX_SAMPLES: usize = 128;

/// Settings of a [`RegressionFilter`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RegressionConfig {
    /// Samples kept (at most [`MAX_SAMPLES`]).
    pub max_samples: usize,
    /// Fewest samples the runs test may cut down to.
    pub min_samples: usize,
    /// Local clock precision in seconds: the floor of every sample's error.
    pub precision: f64,
    /// Samples older than this (seconds) are dropped.
    pub max_age: f64,
}

impl Default for RegressionConfig {
    fn default() -> Self {
        Self {
            max_samples: 32,
            min_samples: 4,
            precision: 1e-7,
            max_age: 86_400.0,
        }
    }
}

/// The estimate of one source at the time of its newest sample.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Estimate {
    /// Offset of the source from the local clock at `time`, seconds.
    pub offset: f64,
    /// Standard error of `offset`.
    pub offset_error: f64,
    /// Rate at which the offset grows (seconds per second): the local clock runs slow by
    /// this much relative to the source. Zero until there are two samples.
    pub frequency: f64,
    /// Standard error of `frequency`.
    pub frequency_error: f64,
    /// The minimum delay among the samples used.
    pub delay: f64,
    /// Dispersion: the newest sample's, aged, plus the offset error.
    pub dispersion: f64,
    /// Weighted RMS of the residuals: the source's jitter.
    pub jitter: f64,
    /// Root delay of the newest sample.
    pub root_delay: f64,
    /// Root dispersion of the newest sample.
    pub root_dispersion: f64,
    /// Stratum of the newest sample.
    pub stratum: u8,
    /// Leap of the newest sample.
    pub leap: Leap,
    /// Samples used.
    pub samples: usize,
    /// Time of the newest sample.
    pub time: LocalInstant,
}

impl Estimate {
    /// The offset extrapolated to `now` along the estimated frequency.
    pub fn offset_at(&self, now: LocalInstant) -> f64 {
        self.offset + self.frequency * now.seconds_since(self.time)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    time: LocalInstant,
    offset: f64,
    delay: f64,
    dispersion: f64,
}

const EMPTY: Sample = Sample {
    time: LocalInstant(0),
    offset: 0.0,
    delay: 0.0,
    dispersion: 0.0,
};

/// The regression estimator of one source.
///
/// Sample times must be on a timescale that steps of the steered clock do not move (a
/// monotonic clock); steps and frequency changes of the steered clock are reported with
/// [`RegressionFilter::apply_correction`] so old samples stay on the same line.
#[derive(Clone, Debug)]
pub struct RegressionFilter {
    config: RegressionConfig,
    samples: [Sample; MAX_SAMPLES],
    /// Index of the oldest sample.
    head: usize,
    len: usize,
    last: Option<Measurement>,
    estimate: Option<Estimate>,
    /// How much the last fit had to widen the exchanges' bounds to find a line through
    /// them; where the next one starts looking.
    tolerance: f64,
    /// What was known of the frequency before a reset: a step of the local clock (a
    /// reverted snapshot) throws the old samples away, not the clock's frequency.
    frequency_prior: Option<FrequencyPrior>,
}

/// The least uncertainty a frequency carried across a reset keeps, s/s.
const PRIOR_FLOOR: f64 = 1e-6;

impl RegressionFilter {
    /// An empty filter.
    pub fn new(config: RegressionConfig) -> Self {
        let config = RegressionConfig {
            max_samples: config.max_samples.clamp(2, MAX_SAMPLES),
            min_samples: config.min_samples.clamp(2, MAX_SAMPLES),
            precision: if config.precision.is_finite() && config.precision > 0.0 {
                config.precision
            } else {
                1e-9
            },
            max_age: if config.max_age > 0.0 {
                config.max_age
            } else {
                f64::INFINITY
            },
        };
        Self {
            config,
            samples: [EMPTY; MAX_SAMPLES],
            head: 0,
            len: 0,
            last: None,
            estimate: None,
            tolerance: 0.0,
            frequency_prior: None,
        }
    }

    /// The last estimate.
    pub fn estimate(&self) -> Option<Estimate> {
        self.estimate
    }

    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no samples are held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn sample(&self, i: usize) -> Sample {
        self.samples[(self.head + i) % MAX_SAMPLES]
    }

    fn drop_oldest(&mut self, count: usize) {
        let count = count.min(self.len);
        self.head = (self.head + count) % MAX_SAMPLES;
        self.len -= count;
    }

    /// Sets the maximum age of a sample, seconds (a source sets it from its poll
    /// interval).
    pub fn set_max_age(&mut self, seconds: f64) {
        if seconds > 0.0 {
            self.config.max_age = seconds;
        }
    }

    /// What is known of the frequency before any exchange, s/s (its value and standard
    /// error): after a drift file set the clock's frequency, the residual is near zero.
    /// The exchanges refine it; one they exclude is ignored. Non-finite values or an error
    /// that is not positive are refused and clear it.
    pub fn set_frequency_prior(&mut self, frequency: f64, error: f64) {
        self.frequency_prior = (frequency.is_finite() && error.is_finite() && error > 0.0)
            .then_some(FrequencyPrior { frequency, error });
    }

    /// Forgets every sample. The frequency measured so far stays, as a prior the new
    /// samples refine: a step of the local clock does not change its rate.
    pub fn reset(&mut self) {
        if let Some(e) = self.estimate.filter(|e| e.samples >= 8) {
            self.frequency_prior = Some(FrequencyPrior {
                frequency: e.frequency,
                error: e.frequency_error.max(PRIOR_FLOOR),
            });
        }
        self.head = 0;
        self.len = 0;
        self.last = None;
        self.estimate = None;
        self.tolerance = 0.0;
    }

    /// Takes a measurement and returns the new estimate.
    pub fn update(&mut self, measurement: &Measurement) -> Result<Estimate, MeasurementError> {
        measurement.validate()?;
        if let Some(last) = &self.last {
            if measurement.time < last.time {
                return Err(MeasurementError::TimeWentBackwards {
                    seconds: last.time.seconds_since(measurement.time),
                });
            }
        }
        if self.len == self.config.max_samples {
            self.drop_oldest(1);
        }
        let slot = (self.head + self.len) % MAX_SAMPLES;
        self.samples[slot] = Sample {
            time: measurement.time,
            offset: measurement.offset,
            delay: measurement.delay,
            dispersion: measurement.dispersion,
        };
        self.len += 1;
        self.last = Some(*measurement);
        // Drop samples past the maximum age.
        while self.len > 1
            && measurement.time.seconds_since(self.sample(0).time) > self.config.max_age
        {
            self.drop_oldest(1);
        }
        let estimate = self.fit_with_runs_test(measurement);
        self.estimate = Some(estimate);
        Ok(estimate)
    }

    /// Shifts every held sample for a correction of the local clock.
    pub fn apply_correction(&mut self, correction: ClockCorrection) {
        if !correction_is_finite(&correction) {
            return;
        }
        for i in 0..self.len {
            let slot = (self.head + i) % MAX_SAMPLES;
            let sample = &mut self.samples[slot];
            match correction {
                ClockCorrection::Step { offset, .. } => sample.offset -= offset,
                ClockCorrection::Frequency { delta, at } => {
                    sample.offset -= delta * sample.time.seconds_since(at)
                }
            }
        }
        if let Some(estimate) = &mut self.estimate {
            match correction {
                ClockCorrection::Step { offset, .. } => estimate.offset -= offset,
                ClockCorrection::Frequency { delta, at } => {
                    estimate.offset -= delta * estimate.time.seconds_since(at);
                    estimate.frequency -= delta;
                }
            }
        }
        if let (Some(prior), ClockCorrection::Frequency { delta, .. }) =
            (&mut self.frequency_prior, correction)
        {
            prior.frequency -= delta;
        }
    }

    fn fit_with_runs_test(&mut self, newest: &Measurement) -> Estimate {
        let mut fit = self.fit(newest);
        while self.len > self.config.min_samples.max(7) && !fit.runs_pass {
            // Residuals that run in long stretches of one sign: the oldest samples are off
            // the line (the frequency changed). Drop a quarter of them and fit again.
            let drop = (self.len / 4)
                .max(1)
                .min(self.len - self.config.min_samples);
            if drop == 0 {
                break;
            }
            self.drop_oldest(drop);
            // The frequency changed: what was known of it before no longer holds.
            self.frequency_prior = None;
            fit = self.fit(newest);
        }
        // Offset and frequency: the posterior over the lines every exchange allows. The
        // regression keeps the jitter, the runs test and a fallback.
        let len = self.len;
        let region = self.region(newest);
        let mut estimate = if self.len == len {
            fit.estimate
        } else {
            self.fit(newest).estimate
        };
        if let Some(region) = region {
            self.tolerance = region.tolerance;
            estimate.offset = region.offset;
            estimate.offset_error = region.offset_error.max(self.config.precision);
            estimate.frequency = region.frequency;
            estimate.frequency_error = region.frequency_error;
            estimate.dispersion = newest.dispersion + estimate.offset_error;
        }
        estimate
    }

    /// The posterior over the lines the held exchanges allow, after setting aside the
    /// ones that disagree with the rest and dropping old ones no line fits with the new.
    fn region(&mut self, newest: &Measurement) -> Option<Region> {
        let mut bounds = [Bound {
            at: 0.0,
            offset: 0.0,
            half_width: 0.0,
        }; MAX_SAMPLES];
        let start = (self.tolerance / 2.0).max(self.config.precision);
        loop {
            for (i, b) in bounds.iter_mut().enumerate().take(self.len) {
                let s = self.sample(i);
                *b = Bound {
                    at: s.time.seconds_since(newest.time),
                    offset: s.offset,
                    half_width: s.delay / 2.0 + s.dispersion,
                };
            }
            // Answers from a server whose clock was briefly off (a step, a glitch) fit no
            // line with the rest; they sit out, so that they do not widen every bound.
            let mut outlier = [false; MAX_SAMPLES];
            if let Some(previous) = self.estimate {
                mark_outliers(
                    &bounds[..self.len],
                    previous.frequency,
                    3.0 * previous.frequency_error,
                    &mut outlier,
                );
            }
            let mut n = 0;
            for i in 0..self.len {
                if !outlier[i] {
                    bounds[n] = bounds[i];
                    n += 1;
                }
            }
            let region = feasible_region(
                &bounds[..n],
                start,
                self.config.precision,
                self.frequency_prior,
            );
            // No line fits every exchange. If the newer half fits one far better, the
            // older exchanges are off it (the source's clock was still settling, or ours
            // changed frequency): drop the oldest quarter, as the runs test would. If not,
            // the misfit is noise throughout (a wandering server) and the widened strips
            // stand.
            let floor = self.config.min_samples.max(7);
            let widened = region.filter(|r| r.tolerance > 0.0);
            if let Some(r) = widened.filter(|_| n > floor && self.len > floor) {
                let precision = self.config.precision;
                let newer =
                    feasible_region(&bounds[n / 2..n], start, precision, self.frequency_prior);
                if newer.is_some_and(|h| r.tolerance > 4.0 * h.tolerance + precision) {
                    self.drop_oldest((self.len / 4).max(1).min(self.len - floor));
                    continue;
                }
            }
            return region;
        }
    }

    fn fit(&self, newest: &Measurement) -> Fit {
        let n = self.len;
        let mut min_delay = f64::INFINITY;
        for i in 0..n {
            min_delay = min_delay.min(self.sample(i).delay);
        }
        let floor = self.config.precision;
        // The shortest round trip seen is not free of queueing either: its own excess over
        // the path's true minimum is about the gap to the eighth-shortest sample.
        let mut sorted = [0.0f64; MAX_SAMPLES];
        for (i, d) in sorted.iter_mut().enumerate().take(n) {
            *d = self.sample(i).delay;
        }
        sorted[..n].sort_unstable_by(f64::total_cmp);
        let scale = (sorted[(n / 8).min(n - 1)] - min_delay).max(floor);
        // For the line, each sample's standard error is the floor plus the spread of a
        // uniform error over half its excess delay (x / 2 / sqrt(3)), the excess counted
        // from below the shortest sample by that gap: no single sample dominates, so the
        // slope rests on many samples spread in time.
        let weight = |s: &Sample| {
            let sigma = floor + (s.delay - min_delay + scale) * 0.288_675_134_594_812_9;
            1.0 / (sigma * sigma)
        };
        let t0 = newest.time;
        let (mut sw, mut swx, mut swy) = (0.0, 0.0, 0.0);
        for i in 0..n {
            let s = self.sample(i);
            let w = weight(&s);
            let x = s.time.seconds_since(t0);
            sw += w;
            swx += w * x;
            swy += w * s.offset;
        }
        let mean_x = swx / sw;
        let mean_y = swy / sw;
        let (mut sxx, mut sxy) = (0.0, 0.0);
        for i in 0..n {
            let s = self.sample(i);
            let w = weight(&s);
            let dx = s.time.seconds_since(t0) - mean_x;
            sxx += w * dx * dx;
            sxy += w * dx * (s.offset - mean_y);
        }
        // Two samples closer together than a microsecond carry no frequency information.
        let slope = if n >= 2 && sxx > sw * 1e-12 {
            sxy / sxx
        } else {
            0.0
        };
        let line_intercept = mean_y - slope * mean_x;

        let mut weighted_squares = 0.0;
        let mut runs = 0usize;
        let mut positives = 0usize;
        let mut previous_sign = None;
        for i in 0..n {
            let s = self.sample(i);
            let residual = s.offset - (line_intercept + slope * s.time.seconds_since(t0));
            weighted_squares += weight(&s) * residual * residual;
            let sign = residual >= 0.0;
            positives += usize::from(sign);
            if previous_sign != Some(sign) {
                runs += 1;
                previous_sign = Some(sign);
            }
        }
        let dof = n.saturating_sub(2).max(1) as f64;
        // Reduced chi-square scales the a-priori errors to the scatter actually seen, but
        // never below them.
        let scale = (weighted_squares / dof).max(1.0);
        let offset_variance = scale * (1.0 / sw + mean_x * mean_x / sxx.max(f64::MIN_POSITIVE));
        let frequency_variance = if n >= 2 && sxx > 0.0 {
            scale / sxx
        } else {
            0.0
        };
        let offset_error = libm::sqrt(offset_variance.max(0.0)).max(floor);
        let jitter = libm::sqrt(weighted_squares / sw).max(floor);

        let estimate = Estimate {
            offset: line_intercept,
            offset_error,
            frequency: slope,
            frequency_error: libm::sqrt(frequency_variance.max(0.0)),
            delay: min_delay,
            dispersion: newest.dispersion + offset_error,
            jitter,
            root_delay: newest.root_delay,
            root_dispersion: newest.root_dispersion,
            stratum: newest.stratum,
            leap: newest.leap,
            samples: n,
            time: t0,
        };
        Fit {
            estimate,
            runs_pass: runs_test_passes(runs, positives, n),
        }
    }
}

struct Fit {
    estimate: Estimate,
    runs_pass: bool,
}

fn correction_is_finite(correction: &ClockCorrection) -> bool {
    match *correction {
        ClockCorrection::Step { offset, .. } => offset.is_finite(),
        ClockCorrection::Frequency { delta, .. } => delta.is_finite(),
    }
}

/// Wald–Wolfowitz runs test, one-sided at about 2.5%: too few runs of equal signs means
/// the residuals are not noise.
fn runs_test_passes(runs: usize, positives: usize, n: usize) -> bool {
    let negatives = n - positives;
    if positives == 0 || negatives == 0 {
        // All one sign: a trend the line does not follow, if there are enough samples.
        return n < 8;
    }
    let (p, q, n) = (positives as f64, negatives as f64, n as f64);
    let mean = 2.0 * p * q / n + 1.0;
    let variance = (mean - 1.0) * (mean - 2.0) / (n - 1.0);
    (runs as f64) >= mean - 2.0 * libm::sqrt(variance.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::measurement;
    use proptest::prelude::*;

    /// A deterministic generator so that tests need no RNG crate.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
        fn exponential(&mut self, mean: f64) -> f64 {
            -mean * libm::log(1.0 - self.next())
        }
    }

    #[test]
    fn recovers_offset_and_frequency_of_a_clean_line() {
        let mut filter = RegressionFilter::new(RegressionConfig::default());
        let mut est = None;
        for i in 0..16 {
            let t = f64::from(i) * 16.0;
            est = Some(
                filter
                    .update(&measurement(0.001 + 20e-6 * t, 0.001, t))
                    .unwrap(),
            );
        }
        let est = est.unwrap();
        assert!(
            (est.offset - (0.001 + 20e-6 * 240.0)).abs() < 1e-9,
            "{est:?}"
        );
        assert!((est.frequency - 20e-6).abs() < 1e-12, "{est:?}");
        assert!(
            (est.offset_at(LocalInstant::from_seconds_f64(256.0)) - (0.001 + 20e-6 * 256.0)).abs()
                < 1e-9
        );
    }

    #[test]
    fn prefers_short_round_trips() {
        // Truth: offset 0. Asymmetric queuing: the outbound leg waits exp(100 us), so the
        // measured offset is half the excess delay. Short exchanges carry the truth.
        let mut rng = Lcg(7);
        let mut filter = RegressionFilter::new(RegressionConfig::default());
        let mut plain_mean = 0.0;
        let mut est = None;
        for i in 0..32 {
            let queue = rng.exponential(100e-6);
            let offset = queue / 2.0;
            plain_mean += offset / 32.0;
            est = Some(
                filter
                    .update(&measurement(offset, 100e-6 + queue, f64::from(i)))
                    .unwrap(),
            );
        }
        let est = est.unwrap();
        assert!(
            est.offset.abs() < plain_mean / 3.0,
            "regression {:e} vs plain mean {plain_mean:e}",
            est.offset
        );
        assert!(
            est.offset_error > 0.0 && est.offset_error < 50e-6,
            "{est:?}"
        );
    }

    #[test]
    fn corrections_keep_old_samples_on_the_line() {
        let mut filter = RegressionFilter::new(RegressionConfig::default());
        for i in 0..8 {
            let t = f64::from(i) * 10.0;
            filter
                .update(&measurement(0.5 + 10e-6 * t, 0.001, t))
                .unwrap();
        }
        // Step the clock forward by 0.5 s and speed it up by 10 ppm at t = 75 s.
        let at = LocalInstant::from_seconds_f64(75.0);
        filter.apply_correction(ClockCorrection::Step {
            offset: 0.5 + 10e-6 * 75.0,
            at,
        });
        filter.apply_correction(ClockCorrection::Frequency { delta: 10e-6, at });
        // From now on the source reads zero offset: the line must agree, with no step.
        let est = filter.update(&measurement(0.0, 0.001, 80.0)).unwrap();
        assert!(est.offset.abs() < 1e-9, "{est:?}");
        assert!(est.frequency.abs() < 1e-12, "{est:?}");
    }

    #[test]
    fn runs_test_drops_samples_from_before_a_frequency_change() {
        let mut filter = RegressionFilter::new(RegressionConfig::default());
        let mut rng = Lcg(3);
        // 24 samples at +50 ppm, then the frequency changes to -50 ppm for 8 samples.
        let mut offset = 0.0;
        let mut est = None;
        for i in 0..32 {
            offset += if i < 24 { 50e-6 } else { -50e-6 };
            let noise = (rng.next() - 0.5) * 2e-6;
            est = Some(
                filter
                    .update(&measurement(offset + noise, 0.001, f64::from(i)))
                    .unwrap(),
            );
        }
        let est = est.unwrap();
        assert!(est.samples < 32, "stale samples were dropped: {est:?}");
        assert!((est.frequency + 50e-6).abs() < 15e-6, "{est:?}");
    }

    #[test]
    fn exchanges_from_before_the_source_settled_are_dropped() {
        // The first 40 answers came from a server clock still being stepped about, 0.7 ms
        // either way in turn, then it held still. Alternating signs pass the runs test;
        // but those exchanges fit no line with the rest and must go, not widen every
        // bound by hundreds of microseconds.
        let mut filter = RegressionFilter::new(RegressionConfig {
            max_samples: 128,
            ..RegressionConfig::default()
        });
        let mut rng = Lcg(5);
        let mut est = None;
        for i in 0..100 {
            let (out, back) = (rng.exponential(50e-6), rng.exponential(50e-6));
            let m = if i < 40 {
                let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
                measurement(sign * 0.0007, 0.001, 16.0 * f64::from(i))
            } else {
                measurement((out - back) / 2.0, 100e-6 + out + back, 16.0 * f64::from(i))
            };
            est = Some(filter.update(&m).unwrap());
        }
        let est = est.unwrap();
        assert!(est.samples < 100, "{est:?}");
        assert!(est.offset.abs() < 20e-6, "{est:?}");
        assert!(est.offset_error < 20e-6, "{est:?}");
    }

    #[test]
    fn a_noisy_server_keeps_its_window() {
        // A server whose own clock reads with 20 us of Gaussian-like noise, on a LAN
        // (50 us + exponential 30 us each way): no line fits every exchange, anywhere in
        // the window. That is noise to widen the bounds for, not old samples to drop.
        let mut filter = RegressionFilter::new(RegressionConfig {
            max_samples: 128,
            ..RegressionConfig::default()
        });
        let mut rng = Lcg(11);
        let (mut smallest, mut squares) = (usize::MAX, 0.0);
        for i in 0..400 {
            let noise = 20e-6 * ((0..4).map(|_| rng.next()).sum::<f64>() - 2.0) * 1.7
                + if rng.next() < 0.02 { 300e-6 } else { 0.0 };
            let (out, back) = (rng.exponential(30e-6), rng.exponential(30e-6));
            let m = measurement(
                noise + (out - back) / 2.0,
                100e-6 + out + back,
                16.0 * f64::from(i),
            );
            let est = filter.update(&m).unwrap();
            if i >= 200 {
                smallest = smallest.min(est.samples);
                squares += est.offset * est.offset;
            }
        }
        let rms = (squares / 200.0).sqrt();
        eprintln!("smallest window {smallest}, RMS {rms:e}");
        assert!(smallest >= 32, "the window collapsed to {smallest}");
        assert!(rms < 10e-6, "RMS {rms:e}");
    }

    /// Three exchanges a second apart from `start`, on the line `offset + frequency * t`,
    /// each up to 100 us off by queueing: alone they leave the frequency open by about a
    /// hundred ppm.
    fn three_short_exchanges(
        filter: &mut RegressionFilter,
        start: f64,
        offset: f64,
        frequency: f64,
    ) -> Estimate {
        let mut est = None;
        for (i, queueing) in [100e-6, -80e-6, 60e-6].into_iter().enumerate() {
            let t = start + i as f64;
            let m = measurement(offset + frequency * t + queueing, 300e-6, t);
            est = Some(filter.update(&m).unwrap());
        }
        est.unwrap()
    }

    #[test]
    fn a_reset_keeps_the_frequency() {
        let mut filter = RegressionFilter::new(RegressionConfig::default());
        let mut rng = Lcg(9);
        for i in 0..32 {
            let t = 16.0 * f64::from(i);
            let (out, back) = (rng.exponential(50e-6), rng.exponential(50e-6));
            filter
                .update(&measurement(
                    50e-6 * t + (out - back) / 2.0,
                    100e-6 + out + back,
                    t,
                ))
                .unwrap();
        }
        // The local clock was stepped (a snapshot revert): the samples go, the rate stays.
        filter.reset();
        let est = three_short_exchanges(&mut filter, 1000.0, 0.2, 50e-6);
        assert!((est.frequency - 50e-6).abs() < 2e-6, "{est:?}");
    }

    #[test]
    fn a_frequency_prior_is_taken_and_bad_ones_refused() {
        let mut filter = RegressionFilter::new(RegressionConfig::default());
        filter.set_frequency_prior(f64::NAN, 1e-6);
        filter.set_frequency_prior(20e-6, 0.0);
        let est = three_short_exchanges(&mut filter, 0.0, 0.0, 20e-6);
        assert!(est.frequency_error > 20e-6, "refused: {est:?}");
        filter.reset();
        filter.set_frequency_prior(20e-6, 1e-6);
        let est = three_short_exchanges(&mut filter, 10.0, 0.0, 20e-6);
        assert!((est.frequency - 20e-6).abs() < 2e-6, "{est:?}");
    }

    #[test]
    fn runs_test_statistic() {
        // Alternating signs: many runs, passes. Two long blocks: fails.
        assert!(runs_test_passes(16, 8, 16));
        assert!(!runs_test_passes(2, 8, 16));
        assert!(!runs_test_passes(1, 16, 16));
        assert!(runs_test_passes(1, 4, 4));
    }

    #[test]
    fn bad_input_is_refused_without_harm() {
        let mut filter = RegressionFilter::new(RegressionConfig::default());
        filter.update(&measurement(0.001, 0.001, 10.0)).unwrap();
        let before = filter.estimate();
        assert!(
            filter
                .update(&measurement(f64::INFINITY, 0.001, 11.0))
                .is_err()
        );
        assert!(filter.update(&measurement(0.0, 0.001, 9.0)).is_err());
        filter.apply_correction(ClockCorrection::Step {
            offset: f64::NAN,
            at: LocalInstant(0),
        });
        assert_eq!(filter.estimate(), before);
        assert_eq!(filter.len(), 1);
    }

    proptest! {
        /// No finite input gives a NaN or infinite estimate.
        #[test]
        fn estimates_stay_finite(
            samples in proptest::collection::vec((-1e6f64..1e6, 0f64..100.0, 0f64..1e4), 1..80)
        ) {
            let mut filter = RegressionFilter::new(RegressionConfig::default());
            let mut t = 0.0;
            for (offset, delay, step) in samples {
                t += step;
                let est = filter.update(&measurement(offset, delay, t)).unwrap();
                prop_assert!(est.offset.is_finite() && est.frequency.is_finite());
                prop_assert!(est.offset_error.is_finite() && est.frequency_error.is_finite());
                prop_assert!(est.jitter.is_finite() && est.dispersion.is_finite());
                prop_assert!(est.samples >= 1 && est.samples <= 32);
            }
        }
    }
}
