//! The proportional-integral servo of linuxptp (`pi.c`), for PTP.
//!
//! Offsets here are master minus slave (positive: the master is ahead, speed up), the
//! same sign as everywhere in Tempora; linuxptp's are the opposite and it negates the
//! servo output, so the behaviour is the same.

use tempora_clock_types::LocalInstant;

use crate::policy::DisciplineError;

/// Settings of a [`PiServo`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PiServoConfig {
    /// Proportional gain at a 1 s sync interval (hardware 0.7, software 0.1).
    pub kp: f64,
    /// Integral gain at a 1 s sync interval (hardware 0.3, software 0.001).
    pub ki: f64,
    /// Exponent scaling kp with the sync interval (linuxptp: -0.3).
    pub kp_exponent: f64,
    /// Exponent scaling ki with the sync interval (linuxptp: 0.4).
    pub ki_exponent: f64,
    /// Largest normalised kp (linuxptp: 0.7).
    pub kp_norm_max: f64,
    /// Largest normalised ki (linuxptp: 0.3).
    pub ki_norm_max: f64,
    /// Step at the first lock when the offset exceeds this (seconds; 20 µs); 0 never.
    pub first_step_threshold: f64,
    /// Step (and unlock) whenever the offset exceeds this (seconds); 0 never.
    pub step_threshold: f64,
    /// The clock's largest frequency correction, ppb (from its capabilities).
    pub max_frequency_ppb: f64,
    /// Offsets within this (seconds) for `stable_samples` in a row make the lock stable.
    pub stable_threshold: f64,
    /// Samples for a stable lock.
    pub stable_samples: u32,
}

impl PiServoConfig {
    /// linuxptp's defaults for hardware timestamping.
    pub const HARDWARE: Self = Self {
        kp: 0.7,
        ki: 0.3,
        kp_exponent: -0.3,
        ki_exponent: 0.4,
        kp_norm_max: 0.7,
        ki_norm_max: 0.3,
        first_step_threshold: 20e-6,
        step_threshold: 0.0,
        max_frequency_ppb: 500_000.0,
        stable_threshold: 1e-6,
        stable_samples: 10,
    };

    /// linuxptp's defaults for software timestamping.
    pub const SOFTWARE: Self = Self {
        kp: 0.1,
        ki: 0.001,
        ..Self::HARDWARE
    };
}

impl Default for PiServoConfig {
    fn default() -> Self {
        Self::HARDWARE
    }
}

/// The servo's state, as linuxptp reports it (s0, s1, s2, s3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ServoState {
    /// Collecting the first samples (s0).
    #[default]
    Unlocked,
    /// Step the clock by the offset, then set the frequency (s1).
    Jump,
    /// Tracking (s2).
    Locked,
    /// Tracking, offsets inside the stable threshold (s3).
    LockedStable,
}

/// One servo output: the state and the frequency to set.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ServoOutput {
    /// The state after this sample.
    pub state: ServoState,
    /// The frequency correction to set, ppb.
    pub frequency_ppb: f64,
    /// In [`ServoState::Jump`], the step to make (seconds).
    pub step: Option<f64>,
}

/// A PTP servo: offsets in, the frequency to set (and a first step) out. The port of
/// `tempora-ptp` takes any; [`PiServo`] is linuxptp's and the default.
pub trait Servo {
    /// Takes an offset (master minus slave, seconds) measured at `now`.
    fn sample(&mut self, offset: f64, now: LocalInstant) -> Result<ServoOutput, DisciplineError>;

    /// Starts again, unlocked (a new master): samples `sync_interval` seconds apart, the
    /// clock's frequency correction now `frequency_ppb`.
    fn restart(&mut self, sync_interval: f64, frequency_ppb: f64);
}

impl Servo for PiServo {
    fn sample(&mut self, offset: f64, now: LocalInstant) -> Result<ServoOutput, DisciplineError> {
        PiServo::sample(self, offset, now)
    }

    fn restart(&mut self, sync_interval: f64, frequency_ppb: f64) {
        *self = PiServo::new(self.config, sync_interval, frequency_ppb);
    }
}

/// The PI servo.
#[derive(Clone, Debug)]
pub struct PiServo {
    config: PiServoConfig,
    kp: f64,
    ki: f64,
    drift_ppb: f64,
    count: u8,
    first: Option<(f64, LocalInstant)>,
    first_update_done: bool,
    stable_count: u32,
}

impl PiServo {
    /// A servo for a sync interval of `sync_interval` seconds, starting at the clock's
    /// current frequency (ppb).
    pub fn new(config: PiServoConfig, sync_interval: f64, frequency_ppb: f64) -> Self {
        let mut servo = Self {
            config,
            kp: 0.0,
            ki: 0.0,
            drift_ppb: 0.0,
            count: 0,
            first: None,
            first_update_done: false,
            stable_count: 0,
        };
        servo.set_sync_interval(sync_interval);
        servo.drift_ppb = if frequency_ppb.is_finite() {
            frequency_ppb.clamp(-config.max_frequency_ppb, config.max_frequency_ppb)
        } else {
            0.0
        };
        servo
    }

    /// Rescales the gains for a new sync interval (seconds), as linuxptp does when the
    /// master grants another logMessageInterval.
    pub fn set_sync_interval(&mut self, interval: f64) {
        let interval = if interval.is_finite() && interval > 0.0 {
            interval
        } else {
            1.0
        };
        let c = self.config;
        self.kp = (c.kp * libm::pow(interval, c.kp_exponent)).min(c.kp_norm_max / interval);
        self.ki = (c.ki * libm::pow(interval, c.ki_exponent)).min(c.ki_norm_max / interval);
    }

    /// The frequency the servo holds, ppb.
    pub fn drift_ppb(&self) -> f64 {
        self.drift_ppb
    }

    /// Forgets the samples and starts unlocked (after a fault or a master change).
    pub fn reset(&mut self) {
        self.count = 0;
        self.first = None;
        self.stable_count = 0;
    }

    /// Takes an offset (master minus slave, seconds) measured at `now` on the local
    /// timescale, and returns the new state and frequency.
    pub fn sample(
        &mut self,
        offset: f64,
        now: LocalInstant,
    ) -> Result<ServoOutput, DisciplineError> {
        if !offset.is_finite() {
            return Err(DisciplineError::NotFinite { field: "offset" });
        }
        let max = self.config.max_frequency_ppb;
        let offset_ns = offset * 1e9;
        match (self.count, self.first) {
            (1, Some((first_offset, first_time))) => {
                let dt = now.seconds_since(first_time);
                if dt <= 0.0 {
                    // The first sample must be older than the second: start over.
                    self.reset();
                    return Ok(self.unlocked());
                }
                self.drift_ppb =
                    (self.drift_ppb + (offset - first_offset) / dt * 1e9).clamp(-max, max);
                let first_threshold = self.config.first_step_threshold;
                let step_threshold = self.config.step_threshold;
                let jump = (!self.first_update_done
                    && first_threshold > 0.0
                    && offset.abs() > first_threshold)
                    || (step_threshold > 0.0 && offset.abs() > step_threshold);
                self.first_update_done = true;
                self.count = 2;
                Ok(ServoOutput {
                    state: if jump {
                        ServoState::Jump
                    } else {
                        ServoState::Locked
                    },
                    frequency_ppb: self.drift_ppb,
                    step: jump.then_some(offset),
                })
            }
            (2, _) => {
                if self.config.step_threshold > 0.0 && offset.abs() > self.config.step_threshold {
                    self.reset();
                    return Ok(self.unlocked());
                }
                let ki_term = self.ki * offset_ns;
                let mut ppb = self.kp * offset_ns + self.drift_ppb + ki_term;
                if ppb < -max {
                    ppb = -max;
                } else if ppb > max {
                    ppb = max;
                } else {
                    self.drift_ppb += ki_term;
                }
                if offset.abs() <= self.config.stable_threshold {
                    self.stable_count = self.stable_count.saturating_add(1);
                } else {
                    self.stable_count = 0;
                }
                let state = if self.stable_count >= self.config.stable_samples.max(1) {
                    ServoState::LockedStable
                } else {
                    ServoState::Locked
                };
                Ok(ServoOutput {
                    state,
                    frequency_ppb: ppb,
                    step: None,
                })
            }
            _ => {
                self.first = Some((offset, now));
                self.count = 1;
                Ok(self.unlocked())
            }
        }
    }

    fn unlocked(&self) -> ServoOutput {
        ServoOutput {
            state: ServoState::Unlocked,
            frequency_ppb: self.drift_ppb,
            step: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(seconds: f64) -> LocalInstant {
        LocalInstant::from_seconds_f64(seconds)
    }

    #[test]
    fn gains_scale_with_interval() {
        let s = PiServo::new(PiServoConfig::HARDWARE, 1.0, 0.0);
        assert!((s.kp - 0.7).abs() < 1e-12 && (s.ki - 0.3).abs() < 1e-12);
        let s = PiServo::new(PiServoConfig::HARDWARE, 0.25, 0.0);
        // kp = 0.7 * 0.25^-0.3 = 1.06, capped by 0.7 / 0.25 = 2.8: 1.06.
        assert!((s.kp - 0.7 * 0.25f64.powf(-0.3)).abs() < 1e-12);
        // ki = 0.3 * 0.25^0.4 = 0.172.
        assert!((s.ki - 0.3 * 0.25f64.powf(0.4)).abs() < 1e-12);
        let s = PiServo::new(PiServoConfig::SOFTWARE, 1.0, 0.0);
        assert!((s.kp - 0.1).abs() < 1e-12 && (s.ki - 0.001).abs() < 1e-12);
    }

    #[test]
    fn first_two_samples_measure_drift_and_may_jump() {
        let mut s = PiServo::new(PiServoConfig::HARDWARE, 1.0, 0.0);
        assert_eq!(
            s.sample(0.001, at(0.0)).unwrap().state,
            ServoState::Unlocked
        );
        // Offset grew by 10 µs in 1 s: the slave is 10 ppm slow.
        let out = s.sample(0.00101, at(1.0)).unwrap();
        assert_eq!(out.state, ServoState::Jump);
        assert_eq!(out.step, Some(0.00101));
        assert!((out.frequency_ppb - 10_000.0).abs() < 1e-6);
        // Small first offset: no jump.
        let mut s = PiServo::new(PiServoConfig::HARDWARE, 1.0, 0.0);
        s.sample(1e-6, at(0.0)).unwrap();
        assert_eq!(s.sample(1e-6, at(1.0)).unwrap().state, ServoState::Locked);
    }

    #[test]
    fn step_threshold_unlocks() {
        let config = PiServoConfig {
            step_threshold: 1e-3,
            ..PiServoConfig::HARDWARE
        };
        let mut s = PiServo::new(config, 1.0, 0.0);
        s.sample(0.0, at(0.0)).unwrap();
        s.sample(0.0, at(1.0)).unwrap();
        assert_eq!(s.sample(0.01, at(2.0)).unwrap().state, ServoState::Unlocked);
    }

    #[test]
    fn same_time_samples_restart() {
        let mut s = PiServo::new(PiServoConfig::HARDWARE, 1.0, 0.0);
        s.sample(0.0, at(1.0)).unwrap();
        assert_eq!(s.sample(0.0, at(1.0)).unwrap().state, ServoState::Unlocked);
    }

    /// A slave clock with a constant frequency error under the servo, sync every second.
    fn run(error_ppb: f64, config: PiServoConfig, samples: usize) -> (Vec<f64>, PiServo) {
        let mut servo = PiServo::new(config, 1.0, 0.0);
        let mut offset = 5e-6; // master minus slave
        let mut freq = 0.0;
        let mut offsets = Vec::new();
        for i in 0..samples {
            let out = servo.sample(offset, at(i as f64)).unwrap();
            if let Some(step) = out.step {
                offset -= step;
            }
            freq = out.frequency_ppb;
            // The slave runs at error + correction; the offset shrinks as it speeds up.
            offset -= (error_ppb + freq) * 1e-9;
            offsets.push(offset);
        }
        let _ = freq;
        (offsets, servo)
    }

    #[test]
    fn settles_on_a_constant_frequency_error() {
        let (offsets, servo) = run(-30_000.0, PiServoConfig::HARDWARE, 60);
        assert!(offsets.last().unwrap().abs() < 1e-9, "{:?}", &offsets[50..]);
        assert!(
            (servo.drift_ppb() - 30_000.0).abs() < 1.0,
            "{}",
            servo.drift_ppb()
        );
    }

    proptest! {
        /// The PI servo settles on any constant frequency error within its range.
        #[test]
        fn settles_for_any_error(error in -400_000.0f64..400_000.0) {
            let (offsets, servo) = run(error, PiServoConfig::HARDWARE, 80);
            prop_assert!(offsets.last().unwrap().abs() < 1e-8, "{:?}", &offsets[70..]);
            prop_assert!((servo.drift_ppb() + error).abs() < 10.0);
        }

        #[test]
        fn output_stays_clamped(offsets in proptest::collection::vec(-10.0f64..10.0, 1..50)) {
            let mut servo = PiServo::new(PiServoConfig::HARDWARE, 1.0, 0.0);
            for (i, o) in offsets.into_iter().enumerate() {
                let out = servo.sample(o, at(i as f64)).unwrap();
                prop_assert!(out.frequency_ppb.abs() <= 500_000.0);
                prop_assert!(servo.drift_ppb().abs() <= 500_000.0 + 1e-6);
            }
        }
    }
}
