//! Keeping the system clock on a PHC, as linuxptp's phc2sys does: the PHC carries PTP time
//! (TAI), the system clock UTC, so the system clock's target is the PHC minus the UTC
//! offset the master announces. Sans-IO: readings in, clock actions out.

use tempora_clock_discipline::{DisciplineError, PiServo, PiServoConfig, Servo, ServoOutput};
use tempora_clock_types::{ActionList, ClockAction, LocalInstant};

/// One reading of the system clock against the PHC.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PhcReading {
    /// System clock minus PHC, nanoseconds (as `PhcClock::system_offset` gives it).
    pub system_minus_phc_ns: i64,
    /// Width of the reading window, nanoseconds: readings wider than the recent
    /// shortest by far are skipped, as their midpoint is uncertain.
    pub window_ns: i64,
}

/// The system clock's servo against a PHC (`S`: linuxptp's PI servo unless
/// [`Self::with_servo`] gives another).
///
/// - getters: [`Self::error`];
/// - `handle_*`: [`Self::handle_reading`] (one reading of the system clock against the
///   PHC);
/// - mutators: [`Self::set_utc_offset`] (the master's currentUtcOffset);
/// - `poll_*`: [`Self::poll_action`] (a step, then the frequency, for the system clock).
#[derive(Clone, Debug)]
pub struct PhcToSystem<S = PiServo> {
    servo: S,
    actions: ActionList,
    next_action: usize,
    /// TAI - UTC, seconds, once the master says it is valid (the PHC carries TAI).
    utc_offset: Option<i16>,
    shortest_window: Option<i64>,
}

impl PhcToSystem {
    /// A PI servo for readings `interval` seconds apart (phc2sys's default: 1 s), with the
    /// system clock's current frequency correction.
    pub fn new(interval: f64, frequency_ppb: f64) -> Self {
        Self::with_servo(PiServo::new(
            PiServoConfig::HARDWARE,
            interval,
            frequency_ppb,
        ))
    }
}

impl<S: Servo> PhcToSystem<S> {
    /// Keeps the system clock on the PHC with `servo`.
    pub fn with_servo(servo: S) -> Self {
        Self {
            servo,
            actions: ActionList::new(),
            next_action: 0,
            utc_offset: None,
            shortest_window: None,
        }
    }

    /// The next action for the system clock (a step, then the frequency in ppm).
    #[must_use]
    pub fn poll_action(&mut self) -> Option<ClockAction> {
        let action = self.actions.iter().nth(self.next_action).copied();
        self.next_action += usize::from(action.is_some());
        action
    }

    /// The master's currentUtcOffset (valid).
    pub fn set_utc_offset(&mut self, seconds: i16) {
        self.utc_offset = Some(seconds);
    }

    /// The system clock's offset from where it should be, seconds (positive: ahead).
    pub fn error(&self, reading: PhcReading) -> f64 {
        let utc = f64::from(self.utc_offset.unwrap_or(0));
        // system - (phc - utc) = (system - phc) + utc
        reading.system_minus_phc_ns as f64 * 1e-9 + utc
    }

    /// Takes a reading and returns what the servo made of it; `None` when it was skipped
    /// (a window over four times the shortest seen: the reading was preempted) or held:
    /// until the master's UTC offset is known the system clock is not touched, since the
    /// PHC's TAI would set it 37 s ahead. The actions to apply come from
    /// [`Self::poll_action`].
    pub fn handle_reading(
        &mut self,
        reading: PhcReading,
        now: LocalInstant,
    ) -> Result<Option<ServoOutput>, DisciplineError> {
        self.actions = ActionList::new();
        self.next_action = 0;
        if self.utc_offset.is_none() {
            return Ok(None);
        }
        let window = reading.window_ns.max(0);
        let shortest = self.shortest_window.map_or(window, |s| s.min(window));
        self.shortest_window = Some(shortest);
        if window > 4 * shortest.max(250) {
            return Ok(None);
        }
        // The servo takes how far the clock is behind its reference.
        let out = self.servo.sample(-self.error(reading), now)?;
        if let Some(offset) = out.step {
            self.actions.push(ClockAction::Step { offset });
        }
        self.actions.push(ClockAction::SetFrequency {
            ppm: out.frequency_ppb / 1000.0,
        });
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempora_clock_discipline::ServoState;

    /// A system clock 40 ppm fast and 3 ms ahead of a PHC that carries TAI (37 s ahead of
    /// UTC): once the UTC offset is known the servo steps it and holds it within 100 ns.
    #[test]
    fn follows_a_phc_on_tai() {
        let mut core = PhcToSystem::new(1.0, 0.0);
        core.set_utc_offset(37);
        let phc_rate = 0.0;
        let mut system_offset = 0.003; // system - UTC truth, seconds
        let mut system_freq_ppb = 40_000.0; // uncorrected error
        let mut correction_ppb = 0.0;
        let mut worst_late = 0.0f64;
        for k in 0..120i32 {
            let t = f64::from(k);
            // PHC = UTC + 37 s; system - phc = system_offset - 37 s.
            let reading = PhcReading {
                system_minus_phc_ns: ((system_offset - 37.0) * 1e9) as i64,
                window_ns: 500 + i64::from(k % 3) * 100,
            };
            let out = core
                .handle_reading(reading, LocalInstant::from_seconds_f64(t))
                .unwrap()
                .unwrap();
            // The actions carry the same: a step first, then the frequency in ppm.
            let mut stepped = None;
            while let Some(action) = core.poll_action() {
                match action {
                    ClockAction::Step { offset } => {
                        system_offset += offset;
                        stepped = Some(offset);
                    }
                    ClockAction::SetFrequency { ppm } => correction_ppb = ppm * 1000.0,
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(stepped, out.step);
            assert!((correction_ppb - out.frequency_ppb).abs() < 1e-9);
            // One second passes at the corrected rate.
            system_offset += (system_freq_ppb + correction_ppb + phc_rate) * 1e-9;
            if k > 60 {
                worst_late = worst_late.max(system_offset.abs());
                assert!(matches!(
                    out.state,
                    ServoState::Locked | ServoState::LockedStable
                ));
            }
        }
        system_freq_ppb += correction_ppb;
        assert!(worst_late < 100e-9, "{worst_late}");
        assert!(system_freq_ppb.abs() < 5.0, "{system_freq_ppb}");
    }

    #[test]
    fn the_system_clock_is_held_until_the_utc_offset_is_known() {
        // A PHC on TAI, the system clock on UTC: before the master's currentUtcOffset is
        // known, the error looks like 37 s and a step would set the system clock to TAI.
        let mut core = PhcToSystem::new(1.0, 0.0);
        let reading = PhcReading {
            system_minus_phc_ns: -37_000_000_000,
            window_ns: 300,
        };
        for k in 0..4 {
            let out = core
                .handle_reading(reading, LocalInstant::from_seconds_f64(f64::from(k)))
                .unwrap();
            assert_eq!(out, None);
            assert_eq!(core.poll_action(), None, "held");
        }
        core.set_utc_offset(37);
        let mut stepped = false;
        for k in 4..8 {
            core.handle_reading(reading, LocalInstant::from_seconds_f64(f64::from(k)))
                .unwrap();
            while let Some(a) = core.poll_action() {
                if let ClockAction::Step { offset } = a {
                    assert!(offset.abs() < 1e-6, "a step of {offset} s, not 37 s");
                    stepped = true;
                }
            }
        }
        assert!(!stepped, "already on time once the offset is applied");
    }

    #[test]
    fn wide_readings_are_skipped_and_bad_numbers_refused() {
        let mut core = PhcToSystem::new(1.0, 0.0);
        let at = LocalInstant::from_seconds_f64;
        let short = PhcReading {
            system_minus_phc_ns: 1000,
            window_ns: 300,
        };
        assert!(
            (core.error(short) - 1e-6).abs() < 1e-12,
            "no offset known: none applied"
        );
        // An ARB-timescale master: the PHC is not TAI, the offset 0.
        core.set_utc_offset(0);
        assert!(core.handle_reading(short, at(0.0)).unwrap().is_some());
        let wide = PhcReading {
            system_minus_phc_ns: 50_000,
            window_ns: 20_000,
        };
        assert!(core.handle_reading(wide, at(1.0)).unwrap().is_none());
        // A PTP-timescale master's offset: the PHC's TAI is UTC + 37 s.
        core.set_utc_offset(37);
        assert!((core.error(short) - 37.000_001).abs() < 1e-9);
    }
}
