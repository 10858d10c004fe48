//! Sample filters for PTP path delay and offset: a moving median (linuxptp's default for
//! the path delay, length 10) and a minimum-delay window.

/// The longest window either filter takes.
pub(crate) const MAX_WINDOW: usize = 64;

/// Median of the last `length` samples. Non-finite samples are refused (`None`) and leave
/// the window as it was.
#[derive(Clone, Debug)]
pub struct MovingMedian {
    window: [f64; MAX_WINDOW],
    length: usize,
    next: usize,
    filled: usize,
}

impl MovingMedian {
    /// A filter over `length` samples (clamped to 1..=64; linuxptp uses 10).
    pub fn new(length: usize) -> Self {
        Self {
            window: [0.0; MAX_WINDOW],
            length: length.clamp(1, MAX_WINDOW),
            next: 0,
            filled: 0,
        }
    }

    /// Adds a sample and returns the median of the window.
    pub fn update(&mut self, sample: f64) -> Option<f64> {
        if !sample.is_finite() {
            return None;
        }
        self.window[self.next] = sample;
        self.next = (self.next + 1) % self.length;
        self.filled = (self.filled + 1).min(self.length);
        self.median()
    }

    /// The median of the window; the mean of the middle two for an even count.
    pub fn median(&self) -> Option<f64> {
        if self.filled == 0 {
            return None;
        }
        let mut sorted = [0.0; MAX_WINDOW];
        let values = &mut sorted[..self.filled];
        values.copy_from_slice(&self.window[..self.filled]);
        values.sort_unstable_by(f64::total_cmp);
        let mid = self.filled / 2;
        Some(if self.filled % 2 == 1 {
            values[mid]
        } else {
            (values[mid - 1] + values[mid]) / 2.0
        })
    }

    /// Empties the window.
    pub fn reset(&mut self) {
        self.next = 0;
        self.filled = 0;
    }
}

/// Keeps the last `length` (delay, offset) pairs and returns the offset of the one with
/// the smallest delay: the sample least disturbed by queuing.
#[derive(Clone, Debug)]
pub struct MinDelayWindow {
    window: [(f64, f64); MAX_WINDOW],
    length: usize,
    next: usize,
    filled: usize,
}

impl MinDelayWindow {
    /// A window of `length` samples (clamped to 1..=64).
    pub fn new(length: usize) -> Self {
        Self {
            window: [(0.0, 0.0); MAX_WINDOW],
            length: length.clamp(1, MAX_WINDOW),
            next: 0,
            filled: 0,
        }
    }

    /// Adds a sample; returns `(delay, offset)` of the minimum-delay sample in the window.
    /// Non-finite input is refused (`None`) and leaves the window as it was.
    pub fn update(&mut self, delay: f64, offset: f64) -> Option<(f64, f64)> {
        if !delay.is_finite() || !offset.is_finite() {
            return None;
        }
        self.window[self.next] = (delay, offset);
        self.next = (self.next + 1) % self.length;
        self.filled = (self.filled + 1).min(self.length);
        self.best()
    }

    /// The minimum-delay sample of the window.
    pub fn best(&self) -> Option<(f64, f64)> {
        self.window[..self.filled]
            .iter()
            .copied()
            .min_by(|a, b| a.0.total_cmp(&b.0))
    }

    /// Empties the window.
    pub fn reset(&mut self) {
        self.next = 0;
        self.filled = 0;
    }
}

/// Settings of an [`OffsetKalman`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OffsetKalmanConfig {
    /// White phase wander of the clock, ns^2 per second.
    pub phase_wander: f64,
    /// Random-walk frequency wander, ppb^2 per second.
    pub frequency_wander: f64,
    /// The smallest measurement noise assumed, ns (the timestamps' resolution).
    pub min_noise_ns: f64,
}

impl Default for OffsetKalmanConfig {
    fn default() -> Self {
        // 20 ns per root second of phase and 1 ppb per root second of frequency: with
        // software timestamps (~300 ns of jitter at 4 Hz) the filter averages over about
        // 8 s (to ~40 ns), short enough to follow the path delay's filter settling and a
        // clock the servo is still pulling in; with hardware ones it hardly smooths.
        Self {
            phase_wander: 400.0,
            frequency_wander: 1.0,
            min_noise_ns: 1.0,
        }
    }
}

/// The filtered offset of a slave clock from its master.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OffsetEstimate {
    /// Offset, ns (slave minus master).
    pub offset_ns: f64,
    /// Its standard error, ns.
    pub offset_error_ns: f64,
    /// The clock's own frequency error, ppb (before the correction applied).
    pub drift_ppb: f64,
    /// The measurement noise seen, ns (robust standard deviation of the innovations).
    pub noise_ns: f64,
}

/// Innovations kept to estimate the measurement noise.
const NOISE_WINDOW: usize = 32;

/// A filter over PTP offsets: raw offsets in, an estimate of offset and drift out. The
/// slave's measuring core in `tempora-ptp` takes any; [`OffsetKalman`] is the default.
pub trait OffsetFilter {
    /// Takes a raw offset (ns) measured at `now`, with the frequency correction
    /// (`applied_ppb`) that was set on the clock since the last one.
    fn update(
        &mut self,
        measured_ns: f64,
        applied_ppb: f64,
        now: tempora_clock_types::LocalInstant,
    ) -> Option<OffsetEstimate>;

    /// Forgets everything (the clock was stepped, or the master changed).
    fn reset(&mut self);
}

impl OffsetFilter for OffsetKalman {
    fn update(
        &mut self,
        measured_ns: f64,
        applied_ppb: f64,
        now: tempora_clock_types::LocalInstant,
    ) -> Option<OffsetEstimate> {
        OffsetKalman::update(self, measured_ns, applied_ppb, now)
    }

    fn reset(&mut self) {
        OffsetKalman::reset(self);
    }
}

/// A two-state Kalman filter (offset, frequency) over PTP offset measurements.
///
/// A raw PTP offset carries the timestamps' jitter (hundreds of ns with software
/// timestamps); the clock itself moves slowly and predictably between Syncs, by its
/// frequency error plus the correction the servo applied, which the filter is told. So
/// the filtered offset averages the jitter over tens of seconds and is the better estimate
/// of where the clock is (statime reports such an estimate; ptp4l the raw offset). The
/// measurement noise is learnt from the raw offsets (a robust spread of their second
/// differences, which no drift the filter believes can bias), and an innovation beyond
/// six standard deviations is not taken (three in a row restart the filter: the clock
/// really moved, or the filter's drift was wrong).
#[derive(Clone, Debug)]
pub struct OffsetKalman {
    config: OffsetKalmanConfig,
    /// Offset (ns) and drift (ppb).
    x: [f64; 2],
    p: [[f64; 2]; 2],
    last: Option<tempora_clock_types::LocalInstant>,
    /// Samples of the measurement noise, and how many were taken.
    noise_samples: [f64; NOISE_WINDOW],
    noise_count: usize,
    count: usize,
    rejected_in_a_row: u32,
    /// The last raw offset (ns), its time, and the rate (ns/s, less the correction
    /// applied) from the one before: the noise is learnt from the raw offsets' second
    /// differences.
    previous: Option<(f64, tempora_clock_types::LocalInstant, Option<f64>)>,
}

impl OffsetKalman {
    /// An empty filter.
    pub fn new(config: OffsetKalmanConfig) -> Self {
        let positive = |v: f64, default: f64| if v.is_finite() && v > 0.0 { v } else { default };
        let defaults = OffsetKalmanConfig::default();
        Self {
            config: OffsetKalmanConfig {
                phase_wander: positive(config.phase_wander, defaults.phase_wander),
                frequency_wander: positive(config.frequency_wander, defaults.frequency_wander),
                min_noise_ns: positive(config.min_noise_ns, defaults.min_noise_ns),
            },
            x: [0.0; 2],
            p: [[0.0; 2]; 2],
            last: None,
            noise_samples: [0.0; NOISE_WINDOW],
            noise_count: 0,
            count: 0,
            rejected_in_a_row: 0,
            previous: None,
        }
    }

    /// Forgets everything (after the clock was stepped, or a new master).
    pub fn reset(&mut self) {
        *self = Self::new(self.config);
    }

    /// The measurement noise: 1.4826 times the median absolute noise sample, at least the
    /// floor; a microsecond until there are four.
    fn noise(&self) -> f64 {
        let n = self.noise_count.min(NOISE_WINDOW);
        if n < 4 {
            return 1000.0f64.max(self.config.min_noise_ns);
        }
        let mut abs = [0.0f64; NOISE_WINDOW];
        for (a, v) in abs.iter_mut().zip(&self.noise_samples[..n]) {
            *a = v.abs();
        }
        abs[..n].sort_unstable_by(f64::total_cmp);
        let median = if n % 2 == 1 {
            abs[n / 2]
        } else {
            (abs[n / 2 - 1] + abs[n / 2]) / 2.0
        };
        (1.4826 * median).max(self.config.min_noise_ns)
    }

    /// Learns the noise from the raw offsets, not from the filter's innovations: a drift
    /// learnt wrong makes every innovation large, and a noise learnt from them grows to
    /// match, so the outlier test never fires and the estimate runs off (seen over UDPv6
    /// P2P on a veth: raw offsets at 2.6 us RMS, the estimate 62 us off on average). The
    /// second difference of the raw offsets, less the correction applied, is free of any
    /// constant drift; white noise of spread s gives second differences of spread
    /// s * sqrt(6).
    fn learn_noise(
        &mut self,
        measured_ns: f64,
        applied_ppb: f64,
        now: tempora_clock_types::LocalInstant,
    ) {
        let mut rate = None;
        if let Some((raw, at, previous_rate)) = self.previous {
            let dt = now.seconds_since(at);
            if dt > 0.0 {
                let r = (measured_ns - raw) / dt - applied_ppb;
                if let Some(p) = previous_rate {
                    self.noise_samples[self.noise_count % NOISE_WINDOW] =
                        (r - p) * dt / libm::sqrt(6.0);
                    self.noise_count += 1;
                }
                rate = Some(r);
            }
        }
        self.previous = Some((measured_ns, now, rate));
    }

    /// Takes a raw offset (ns) measured at `now`; `applied_ppb` is the frequency
    /// correction that was set on the clock since the last one (0 when not steering).
    /// Returns the estimate, or `None` for a non-finite input or time going backwards
    /// (the filter is left as it was).
    pub fn update(
        &mut self,
        measured_ns: f64,
        applied_ppb: f64,
        now: tempora_clock_types::LocalInstant,
    ) -> Option<OffsetEstimate> {
        if !measured_ns.is_finite() || !applied_ppb.is_finite() {
            return None;
        }
        let Some(last) = self.last else {
            self.learn_noise(measured_ns, applied_ppb, now);
            let r = self.noise();
            self.x = [measured_ns, 0.0];
            // A frequency error of up to 100 ppm is plausible at the start.
            self.p = [[r * r, 0.0], [0.0, 1e10]];
            self.last = Some(now);
            return Some(self.estimate(r));
        };
        let dt = now.seconds_since(last);
        if dt.is_nan() || dt < 0.0 {
            return None;
        }
        // Predict: the offset moves by the clock's drift plus the correction applied.
        let [o, d] = self.x;
        let predicted = [o + (d + applied_ppb) * dt, d];
        let [[p00, p01], [p10, p11]] = self.p;
        let (qo, qf) = (self.config.phase_wander, self.config.frequency_wander);
        let pp00 = p00 + dt * (p01 + p10) + dt * dt * p11 + qo * dt + qf * dt * dt * dt / 3.0;
        let pp01 = p01 + dt * p11 + qf * dt * dt / 2.0;
        let pp11 = p11 + qf * dt;
        let r = self.noise();
        let innovation = measured_ns - predicted[0];
        let s = pp00 + r * r;
        self.last = Some(now);
        self.learn_noise(measured_ns, applied_ppb, now);
        self.count += 1;
        if self.count > 8 && innovation * innovation > 36.0 * s {
            self.rejected_in_a_row += 1;
            if self.rejected_in_a_row >= 3 {
                self.reset();
                return self.update(measured_ns, applied_ppb, now);
            }
            // Not taken: carry the prediction.
            self.x = predicted;
            self.p = [[pp00, pp01], [pp01, pp11]];
            return Some(self.estimate(r));
        }
        self.rejected_in_a_row = 0;
        let k0 = pp00 / s;
        let k1 = pp01 / s;
        self.x = [
            predicted[0] + k0 * innovation,
            predicted[1] + k1 * innovation,
        ];
        self.p = [
            [(1.0 - k0) * pp00, (1.0 - k0) * pp01],
            [(1.0 - k0) * pp01, pp11 - k1 * pp01],
        ];
        Some(self.estimate(r))
    }

    fn estimate(&self, noise: f64) -> OffsetEstimate {
        OffsetEstimate {
            offset_ns: self.x[0],
            offset_error_ns: libm::sqrt(self.p[0][0].max(0.0)),
            drift_ppb: self.x[1],
            noise_ns: noise,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Deterministic Gaussian-ish noise: the sum of four uniforms, scaled to unit spread.
    struct Noise(u64);
    impl Noise {
        fn next(&mut self) -> f64 {
            let mut sum = 0.0;
            for _ in 0..4 {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                sum += (self.0 >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            }
            sum * 1.732
        }
    }

    fn at(s: f64) -> tempora_clock_types::LocalInstant {
        tempora_clock_types::LocalInstant::from_seconds_f64(s)
    }

    #[test]
    fn kalman_averages_jitter_and_follows_a_drift() {
        // A clock 20 ppb fast measured four times a second with 300 ns of jitter; no
        // correction applied (observe-only). After a minute the estimate is within 60 ns
        // RMS of the truth where the raw offsets are at 300 ns.
        let mut noise = Noise(5);
        let mut kalman = OffsetKalman::new(OffsetKalmanConfig::default());
        let (mut raw_sq, mut est_sq, mut n) = (0.0, 0.0, 0.0);
        let mut last = None;
        for k in 0..480 {
            let t = f64::from(k) * 0.25;
            let truth = 1500.0 + 20.0 * t;
            let raw = truth + 300.0 * noise.next();
            let e = kalman.update(raw, 0.0, at(t)).unwrap();
            if t >= 60.0 {
                raw_sq += (raw - truth).powi(2);
                est_sq += (e.offset_ns - truth).powi(2);
                n += 1.0;
            }
            last = Some(e);
        }
        let (raw_rms, est_rms) = ((raw_sq / n).sqrt(), (est_sq / n).sqrt());
        assert!(raw_rms > 250.0, "{raw_rms}");
        assert!(est_rms < 60.0, "estimate {est_rms} ns RMS vs raw {raw_rms}");
        let last = last.unwrap();
        assert!((last.drift_ppb - 20.0).abs() < 5.0, "{last:?}");
        assert!((last.noise_ns - 300.0).abs() < 90.0, "{last:?}");
    }

    #[test]
    fn kalman_recovers_from_a_drift_learnt_from_a_settling_start() {
        // The first seconds' offsets slide by several microseconds (the path delay's
        // median settling with software timestamps), then hold at 0 with 1 us of jitter.
        // A drift learnt from the slide is wrong: the estimate must come back to the
        // offsets rather than run off with it while its noise estimate grows to match
        // (seen over UDPv6 P2P on a veth: raw offsets at 2.6 us RMS, the estimate 62 us
        // off on average and its drift 3.3 ppm).
        for seed in 1..=20 {
            let mut noise = Noise(seed);
            let mut kalman = OffsetKalman::new(OffsetKalmanConfig::default());
            let mut worst_late = 0.0f64;
            for k in 0..400 {
                let t = f64::from(k) * 0.25;
                let truth = if t < 2.0 { -6_000.0 * t } else { 0.0 };
                let e = kalman
                    .update(truth + 1_000.0 * noise.next(), 0.0, at(t))
                    .unwrap();
                if t >= 40.0 {
                    worst_late = worst_late.max((e.offset_ns - truth).abs());
                }
            }
            assert!(worst_late < 2_000.0, "seed {seed}: {worst_late} ns");
        }
    }

    #[test]
    fn kalman_follows_a_level_shift_within_seconds() {
        // The raw offsets shift by 500 ns (the path delay's median settling, say) under
        // 300 ns of jitter: 30 s later the estimate has followed it.
        let mut noise = Noise(11);
        let mut kalman = OffsetKalman::new(OffsetKalmanConfig::default());
        let mut worst_late = 0.0f64;
        for k in 0..480 {
            let t = f64::from(k) * 0.25;
            let truth = if t < 40.0 { 0.0 } else { -500.0 };
            let e = kalman
                .update(truth + 300.0 * noise.next(), 0.0, at(t))
                .unwrap();
            if t >= 70.0 {
                worst_late = worst_late.max((e.offset_ns - truth).abs());
            }
        }
        assert!(worst_late < 150.0, "{worst_late}");
    }

    #[test]
    fn kalman_takes_the_applied_correction_into_account() {
        // A clock 10 ppm slow runs free for a second, then is steered by +10 ppm: the
        // offset stops moving, and the filter knows why (its drift stays -10 ppm).
        let mut kalman = OffsetKalman::new(OffsetKalmanConfig::default());
        let mut truth = 0.0;
        let mut applied = 0.0;
        for k in 0..200 {
            let e = kalman.update(truth, applied, at(f64::from(k))).unwrap();
            if k > 20 {
                assert!((e.offset_ns - truth).abs() < 1.0, "{k}: {e:?}");
                assert!((e.drift_ppb + 10_000.0).abs() < 1.0, "{k}: {e:?}");
            }
            if k >= 1 {
                applied = 10_000.0;
            }
            truth += -10_000.0 + applied;
        }
    }

    #[test]
    fn kalman_skips_a_spike_and_restarts_on_a_real_jump() {
        let mut noise = Noise(9);
        let mut kalman = OffsetKalman::new(OffsetKalmanConfig::default());
        let mut t = 0.0;
        for _ in 0..100 {
            kalman.update(100.0 * noise.next(), 0.0, at(t)).unwrap();
            t += 0.25;
        }
        // One 50 us spike: not taken.
        let e = kalman.update(50_000.0, 0.0, at(t)).unwrap();
        assert!(e.offset_ns.abs() < 100.0, "{e:?}");
        // The clock really moved by 1 ms: after three the filter follows.
        for _ in 0..4 {
            t += 0.25;
            kalman
                .update(1e6 + 100.0 * noise.next(), 0.0, at(t))
                .unwrap();
        }
        t += 0.25;
        let e = kalman.update(1e6, 0.0, at(t)).unwrap();
        assert!((e.offset_ns - 1e6).abs() < 1_000.0, "{e:?}");
        // Bad input changes nothing.
        assert!(kalman.update(f64::NAN, 0.0, at(t + 1.0)).is_none());
        assert!(kalman.update(0.0, 0.0, at(t - 10.0)).is_none());
    }

    #[test]
    fn median_of_ten_ignores_spikes() {
        let mut filter = MovingMedian::new(10);
        for i in 0..10 {
            filter.update(100.0 + f64::from(i));
        }
        assert_eq!(filter.median(), Some(104.5));
        // Three spikes replace the oldest three samples: the median barely moves.
        filter.update(1e6);
        filter.update(1e6);
        assert_eq!(filter.update(-1e6), Some(106.5));
        assert_eq!(filter.update(f64::NAN), None);
        assert_eq!(filter.median(), Some(106.5));
        filter.reset();
        assert_eq!(filter.median(), None);
    }

    #[test]
    fn min_delay_window_slides() {
        let mut window = MinDelayWindow::new(3);
        assert_eq!(window.update(5.0, 0.5), Some((5.0, 0.5)));
        assert_eq!(window.update(2.0, 0.2), Some((2.0, 0.2)));
        assert_eq!(window.update(9.0, 0.9), Some((2.0, 0.2)));
        assert_eq!(window.update(8.0, 0.8), Some((2.0, 0.2)));
        // The 2.0 sample slides out.
        assert_eq!(window.update(7.0, 0.7), Some((7.0, 0.7)));
        assert_eq!(window.update(f64::INFINITY, 0.0), None);
    }

    proptest! {
        /// No finite input gives a non-finite estimate.
        #[test]
        fn kalman_stays_finite(
            samples in proptest::collection::vec((-1e9f64..1e9, -1e6f64..1e6, 0f64..100.0), 1..100)
        ) {
            let mut kalman = OffsetKalman::new(OffsetKalmanConfig::default());
            let mut t = 0.0;
            for (measured, applied, dt) in samples {
                t += dt;
                if let Some(e) = kalman.update(measured, applied, at(t)) {
                    prop_assert!(e.offset_ns.is_finite() && e.drift_ppb.is_finite());
                    prop_assert!(e.offset_error_ns.is_finite() && e.noise_ns.is_finite());
                }
            }
        }
    }

    proptest! {
        #[test]
        fn median_lies_within_the_window(samples in proptest::collection::vec(-1e9f64..1e9, 1..100), length in 1usize..20) {
            let mut filter = MovingMedian::new(length);
            for (i, &s) in samples.iter().enumerate() {
                let median = filter.update(s).unwrap();
                let start = (i + 1).saturating_sub(length);
                let window = &samples[start..=i];
                let min = window.iter().copied().fold(f64::INFINITY, f64::min);
                let max = window.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                prop_assert!(min <= median && median <= max);
            }
        }
    }
}
