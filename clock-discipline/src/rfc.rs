//! The RFC 5905 clock discipline: the hybrid PLL/FLL of section 11.3 and appendix A.5.5.6
//! (`local_clock`), with the once-a-second phase adjustment of appendix A.5.6.1
//! (`clock_adjust`). Kept faithful as the reference the simulator compares against.

use tempora_clock_types::LocalInstant;

use crate::policy::DisciplineError;
use tempora_clock_types::{ActionList, ClockAction, SyncStatus};

/// Settings, with the RFC's constants as defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RfcConfig {
    /// STEPT: offsets above this are steps or spikes (0.128 s).
    pub step_threshold: f64,
    /// WATCH: stepout interval, seconds (900).
    pub stepout: f64,
    /// PANICT: offsets above this are refused (1000 s).
    pub panic_threshold: f64,
    /// MINPOLL, log2 seconds (4).
    pub min_poll: i8,
    /// MAXPOLL, log2 seconds (17).
    pub max_poll: i8,
    /// MAXFREQ: frequency clamp, seconds per second (500e-6).
    pub max_frequency: f64,
}

impl Default for RfcConfig {
    fn default() -> Self {
        Self {
            step_threshold: 0.128,
            stepout: 900.0,
            panic_threshold: 1000.0,
            min_poll: 4,
            max_poll: 17,
            max_frequency: 500e-6,
        }
    }
}

/// PLL loop gain.
const PLL: f64 = 16.0;
/// FLL loop gain (MAXPOLL + 1).
const FLL: f64 = 18.0;
/// Averaging constant for jitter and wander.
const AVG: f64 = 4.0;
/// Allan intercept, seconds.
const ALLAN: f64 = 1500.0;
/// Poll-adjust threshold.
const LIMIT: i32 = 30;
/// Poll-adjust gate.
const PGATE: f64 = 4.0;

/// The states of the discipline (RFC 5905 figure 24).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RfcState {
    /// No frequency known; no update yet.
    Nset,
    /// Frequency known (drift file); no update yet.
    Fset,
    /// A spike was seen; waiting out the stepout.
    Spik,
    /// Measuring the frequency.
    Freq,
    /// Normal operation.
    Sync,
}

/// The RFC 5905 PLL/FLL discipline.
#[derive(Clone, Debug)]
pub struct RfcDiscipline {
    config: RfcConfig,
    state: RfcState,
    /// Residual phase still to be slewed (c.offset).
    offset: f64,
    /// Last offset taken (c.last).
    last: f64,
    /// Frequency, seconds per second (c.freq).
    frequency: f64,
    jitter: f64,
    wander: f64,
    count: i32,
    poll: i8,
    /// Time of the last update (s.t).
    last_update: Option<LocalInstant>,
    last_tick: Option<LocalInstant>,
    precision: f64,
}

impl RfcDiscipline {
    /// A discipline in state NSET, or FSET when a frequency (ppm) is known.
    pub fn new(config: RfcConfig, frequency_ppm: Option<f64>, precision: f64) -> Self {
        let frequency = frequency_ppm.filter(|f| f.is_finite()).map_or(0.0, |f| {
            (f * 1e-6).clamp(-config.max_frequency, config.max_frequency)
        });
        Self {
            config,
            state: if frequency_ppm.is_some() {
                RfcState::Fset
            } else {
                RfcState::Nset
            },
            offset: 0.0,
            last: 0.0,
            frequency,
            jitter: precision.abs(),
            wander: 0.0,
            count: 0,
            poll: config.min_poll,
            last_update: None,
            last_tick: None,
            precision: precision.abs().max(1e-9),
        }
    }

    /// The state.
    pub fn state(&self) -> RfcState {
        self.state
    }

    /// The poll interval the discipline asks for, log2 seconds.
    pub fn poll(&self) -> i8 {
        self.poll
    }

    /// The frequency correction, ppm.
    pub fn frequency_ppm(&self) -> f64 {
        self.frequency * 1e6
    }

    /// The phase still to be slewed, seconds (the residual of the last offset).
    pub fn offset_remaining(&self) -> f64 {
        self.offset
    }

    /// Clock jitter and frequency wander (RFC section 11.3), seconds and ppm.
    pub fn jitter_and_wander(&self) -> (f64, f64) {
        (self.jitter, self.wander * 1e6)
    }

    fn reset_clock(&mut self, state: RfcState, now: LocalInstant, offset: f64) {
        self.state = state;
        self.last = offset;
        self.offset = offset;
        self.last_update = Some(now);
    }

    /// Takes the system offset at `now` (`local_clock`). Returns the actions (a step, a
    /// new frequency, the status); an empty list means the update was ignored (a spike
    /// inside the stepout, or frequency measurement still running).
    pub fn update(
        &mut self,
        offset: f64,
        now: LocalInstant,
    ) -> Result<ActionList, DisciplineError> {
        if !offset.is_finite() {
            return Err(DisciplineError::NotFinite { field: "offset" });
        }
        if offset.abs() > self.config.panic_threshold {
            return Err(DisciplineError::Panic {
                offset,
                threshold: self.config.panic_threshold,
            });
        }
        let since = match self.last_update {
            Some(last) if now < last => {
                return Err(DisciplineError::TimeWentBackwards {
                    seconds: last.seconds_since(now),
                });
            }
            Some(last) => now.seconds_since(last),
            None => 0.0,
        };
        let mut actions = ActionList::new();
        let old_frequency = self.frequency;
        let mut frequency = 0.0;
        let poll_seconds = libm::exp2(f64::from(self.poll));

        if offset.abs() > self.config.step_threshold {
            match self.state {
                RfcState::Sync => {
                    self.state = RfcState::Spik;
                    return Ok(actions);
                }
                RfcState::Freq | RfcState::Spik if since < self.config.stepout => {
                    return Ok(actions);
                }
                _ => {}
            }
            if self.state == RfcState::Freq {
                frequency = (offset - self.offset) / since.max(1.0);
            }
            actions.push(ClockAction::Step { offset });
            self.count = 0;
            self.poll = self.config.min_poll;
            if self.state == RfcState::Nset {
                self.reset_clock(RfcState::Freq, now, 0.0);
                return Ok(actions);
            }
            self.reset_clock(RfcState::Sync, now, 0.0);
        } else {
            let delta = offset - self.last;
            self.jitter = libm::sqrt(
                (self.jitter * self.jitter) + (delta * delta - self.jitter * self.jitter) / AVG,
            );
            match self.state {
                RfcState::Nset => {
                    self.reset_clock(RfcState::Freq, now, offset);
                    return Ok(actions);
                }
                RfcState::Fset => {
                    self.reset_clock(RfcState::Sync, now, offset);
                    actions.push(ClockAction::SetFrequency {
                        ppm: self.frequency * 1e6,
                    });
                    return Ok(actions);
                }
                RfcState::Freq => {
                    if since < self.config.stepout {
                        return Ok(actions);
                    }
                    frequency = (offset - self.offset) / since;
                }
                RfcState::Spik | RfcState::Sync => {}
            }
            if self.state != RfcState::Freq {
                // FLL above the Allan intercept, PLL always.
                if poll_seconds > ALLAN / 2.0 {
                    let gain = (FLL - f64::from(self.poll)).max(AVG);
                    frequency += (offset - self.offset) / (since.max(ALLAN) * gain);
                }
                let integration = since.min(poll_seconds);
                let time_constant = 4.0 * PLL * poll_seconds;
                frequency += offset * integration / (time_constant * time_constant);
            }
            self.reset_clock(RfcState::Sync, now, offset);
        }

        self.frequency = (frequency + self.frequency)
            .clamp(-self.config.max_frequency, self.config.max_frequency);
        let change = self.frequency - old_frequency;
        self.wander = libm::sqrt(
            (self.wander * self.wander) + (change * change - self.wander * self.wander) / AVG,
        );

        // Poll interval: up when the offset is well inside the jitter, down otherwise.
        if self.offset.abs() < PGATE * self.jitter {
            self.count += i32::from(self.poll);
            if self.count > LIMIT {
                self.count = LIMIT;
                if self.poll < self.config.max_poll {
                    self.count = 0;
                    self.poll += 1;
                }
            }
        } else {
            self.count -= 2 * i32::from(self.poll);
            if self.count < -LIMIT {
                self.count = -LIMIT;
                if self.poll > self.config.min_poll {
                    self.count = 0;
                    self.poll -= 1;
                }
            }
        }
        self.last_tick = Some(now);
        actions.push(ClockAction::SetFrequency {
            ppm: self.frequency * 1e6,
        });
        actions.push(ClockAction::SetStatus(SyncStatus {
            synchronized: self.state == RfcState::Sync,
            max_error: self.offset.abs() + self.jitter,
            est_error: self.jitter.max(self.precision),
        }));
        Ok(actions)
    }

    /// When [`Self::tick`] wants to run next: a second after the last tick.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<LocalInstant> {
        self.last_tick.map(|t| t.add_seconds(1.0))
    }

    /// The once-a-second phase adjustment (`clock_adjust`): slews a share of the residual
    /// phase set by the time constant.
    pub fn tick(&mut self, now: LocalInstant) -> ActionList {
        let mut actions = ActionList::new();
        let Some(last) = self.last_tick else {
            return actions;
        };
        let elapsed = now.seconds_since(last);
        if elapsed <= 0.0 {
            return actions;
        }
        self.last_tick = Some(now);
        if self.state != RfcState::Sync {
            return actions;
        }
        let time_constant = PLL * libm::exp2(f64::from(self.poll)).min(ALLAN);
        // The residual decays by 1/time_constant per second.
        let share = 1.0 - libm::pow(1.0 - 1.0 / time_constant, elapsed);
        let amount = self.offset * share;
        self.offset -= amount;
        if amount != 0.0 {
            actions.push(ClockAction::Slew { offset: amount });
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: f64) -> LocalInstant {
        LocalInstant::from_seconds_f64(seconds)
    }

    #[test]
    fn first_update_in_nset_goes_to_freq_and_waits_the_stepout() {
        let mut d = RfcDiscipline::new(RfcConfig::default(), None, 1e-6);
        assert!(d.update(0.01, at(0.0)).unwrap().is_empty());
        assert_eq!(d.state(), RfcState::Freq);
        // Inside the stepout (900 s) updates are ignored.
        assert!(d.update(0.011, at(64.0)).unwrap().is_empty());
        // After it the frequency is measured: 0.005 s over 1000 s = 5 ppm.
        let actions = d.update(0.015, at(1000.0)).unwrap();
        assert_eq!(d.state(), RfcState::Sync);
        assert!(
            (d.frequency_ppm() - 5.0).abs() < 0.1,
            "{}",
            d.frequency_ppm()
        );
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, ClockAction::SetFrequency { .. }))
        );
    }

    #[test]
    fn fset_starts_synchronised() {
        let mut d = RfcDiscipline::new(RfcConfig::default(), Some(-20.0), 1e-6);
        assert_eq!(d.state(), RfcState::Fset);
        let actions = d.update(0.001, at(0.0)).unwrap();
        assert_eq!(d.state(), RfcState::Sync);
        assert_eq!(
            actions.iter().next(),
            Some(&ClockAction::SetFrequency { ppm: -20.0 })
        );
    }

    #[test]
    fn spike_then_step_after_stepout() {
        let mut d = RfcDiscipline::new(RfcConfig::default(), Some(0.0), 1e-6);
        d.update(0.0, at(0.0)).unwrap();
        d.update(0.0, at(16.0)).unwrap();
        // A 0.5 s offset in SYNC is first a spike.
        assert!(d.update(0.5, at(32.0)).unwrap().is_empty());
        assert_eq!(d.state(), RfcState::Spik);
        // Still there inside the stepout: ignored.
        assert!(d.update(0.5, at(100.0)).unwrap().is_empty());
        // After the stepout: stepped.
        let actions = d.update(0.5, at(1000.0)).unwrap();
        assert_eq!(actions.step(), Some(0.5));
        assert_eq!(d.poll(), 4);
    }

    #[test]
    fn panic_and_bad_input() {
        let mut d = RfcDiscipline::new(RfcConfig::default(), None, 1e-6);
        assert!(matches!(
            d.update(2000.0, at(0.0)),
            Err(DisciplineError::Panic { .. })
        ));
        assert!(d.update(f64::NAN, at(0.0)).is_err());
        d.update(0.0, at(10.0)).unwrap();
        assert!(matches!(
            d.update(0.0, at(5.0)),
            Err(DisciplineError::TimeWentBackwards { .. })
        ));
    }

    #[test]
    fn tick_slews_the_residual_away() {
        let mut d = RfcDiscipline::new(RfcConfig::default(), Some(0.0), 1e-6);
        d.update(0.0, at(0.0)).unwrap();
        d.update(0.01, at(16.0)).unwrap();
        let mut slewed = 0.0;
        for s in 17..2000 {
            for action in &d.tick(at(f64::from(s))) {
                if let ClockAction::Slew { offset } = action {
                    slewed += offset;
                }
            }
        }
        // Time constant 16 * 16 s: after ~2000 s nearly all of it is gone.
        assert!((slewed - 0.01).abs() < 0.0005, "{slewed}");
    }

    #[test]
    fn poll_interval_grows_when_quiet() {
        let mut d = RfcDiscipline::new(RfcConfig::default(), Some(0.0), 1e-3);
        let mut t = 0.0;
        for _ in 0..40 {
            d.update(0.0, at(t)).unwrap();
            t += libm::exp2(f64::from(d.poll()));
        }
        assert!(d.poll() > 4, "{}", d.poll());
    }

    #[test]
    fn frequency_is_clamped() {
        let mut d = RfcDiscipline::new(RfcConfig::default(), Some(1e6), 1e-6);
        assert_eq!(d.frequency_ppm(), 500.0);
        d.update(0.1, at(0.0)).unwrap();
        for i in 1..100 {
            d.update(0.12, at(f64::from(i) * 16.0)).unwrap();
            assert!(d.frequency_ppm().abs() <= 500.0);
        }
    }
}
