//! When to step, when to refuse: the policy every discipline shares.

/// When a discipline may step the clock instead of slewing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StepMode {
    /// Never step: slew everything (offsets that would take longer than
    /// `max_slew_duration` to slew are refused with [`DisciplineError::OutOfRange`]).
    Never,
    /// Step during the first `updates` updates only, then slew (chrony's `makestep 1.0 3`).
    Startup {
        /// Updates during which a step is allowed.
        updates: u32,
    },
    /// Step during the first `startup_updates` updates; later, step once the offset has
    /// stayed above the threshold for `confirmations` updates in a row (a reverted VM
    /// snapshot is stepped one poll after it is seen, a lone outlier never is).
    Confirmed {
        /// Updates during which a step needs no confirmation.
        startup_updates: u32,
        /// Consecutive updates above the threshold needed later.
        confirmations: u32,
    },
    /// Step whenever the offset is above the threshold.
    Always,
}

/// What to do with an offset beyond the panic threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum PanicPolicy {
    /// Refuse that update and report it; later updates are judged afresh.
    Refuse,
    /// Stop steering for good and keep running observe-only, reporting it.
    ObserveOnly,
}

/// Step, slew and panic limits.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct StepPolicy {
    /// Offsets above this (seconds) are stepped when the mode allows.
    pub threshold: f64,
    /// When steps are allowed.
    pub mode: StepMode,
    /// Offsets above this (seconds) are never acted on; `None` disables the check.
    pub panic_threshold: Option<f64>,
    /// What a panic does.
    pub panic_policy: PanicPolicy,
    /// The longest slew accepted, in seconds of slewing at the maximum slew rate; a
    /// larger offset that may not be stepped is refused rather than slewed for hours.
    pub max_slew_duration: f64,
}

impl Default for StepPolicy {
    /// Step above 1 s in the first three updates, and later after two updates in a row;
    /// no panic threshold (VM snapshot reverts need big steps); slews of up to an hour.
    fn default() -> Self {
        Self {
            threshold: 1.0,
            mode: StepMode::Confirmed {
                startup_updates: 3,
                confirmations: 2,
            },
            panic_threshold: None,
            panic_policy: PanicPolicy::Refuse,
            max_slew_duration: 3600.0,
        }
    }
}

/// Why a discipline did not act on an update.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DisciplineError {
    /// An input is NaN or infinite.
    #[error("discipline input {field} is not finite")]
    NotFinite {
        /// The field's name.
        field: &'static str,
    },
    /// The update is older than the last one.
    #[error("update time went backwards by {seconds} s")]
    TimeWentBackwards {
        /// How far back.
        seconds: f64,
    },
    /// The offset exceeds the panic threshold.
    #[error("offset {offset} s exceeds the panic threshold of {threshold} s: not steering")]
    Panic {
        /// The offset.
        offset: f64,
        /// The threshold.
        threshold: f64,
    },
    /// A step is due after startup, but too few sources agree on the offset for a step
    /// ([`crate::DisciplineInput::step_quorum`]), and slewing it would take too long.
    /// The update is not acted on; a step follows once enough sources agree.
    #[error(
        "offset {offset} s needs a step, and too few sources agree for one after startup: not steering"
    )]
    NoStepQuorum {
        /// The offset.
        offset: f64,
    },
    /// The discipline went observe-only after a panic and steers no more.
    #[error("observe-only since a panic: not steering")]
    ObserveOnly,
    /// The offset may not be stepped, and slewing it would take too long.
    #[error(
        "offset {offset} s may not be stepped and would take {slew_seconds} s to slew: out of range"
    )]
    OutOfRange {
        /// The offset.
        offset: f64,
        /// How long the slew would take.
        slew_seconds: f64,
    },
}

/// Counts updates and consecutive large offsets, and decides.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub(crate) struct StepGate {
    pub(crate) updates: u32,
    above: u32,
    pub(crate) observe_only: bool,
}

/// The gate's verdict on one offset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Verdict {
    Step,
    Slew,
}

impl StepGate {
    /// Judges `offset` against `policy`, counting the update. `max_slew_rate` is in
    /// seconds per second; `quorum` says whether enough sources agree on the offset for a
    /// step after startup (at startup any answer may set the clock: a board at 1970 has
    /// nothing better).
    pub(crate) fn judge(
        &mut self,
        policy: &StepPolicy,
        offset: f64,
        max_slew_rate: f64,
        quorum: bool,
    ) -> Result<Verdict, DisciplineError> {
        if self.observe_only {
            return Err(DisciplineError::ObserveOnly);
        }
        if let Some(threshold) = policy.panic_threshold {
            if offset.abs() > threshold {
                if policy.panic_policy == PanicPolicy::ObserveOnly {
                    self.observe_only = true;
                }
                return Err(DisciplineError::Panic { offset, threshold });
            }
        }
        let update = self.updates;
        self.updates = self.updates.saturating_add(1);
        let large = offset.abs() > policy.threshold;
        self.above = if large {
            self.above.saturating_add(1)
        } else {
            0
        };
        let mut wants_quorum = false;
        if large {
            let (startup, may_step) = match policy.mode {
                StepMode::Never => (update == 0, false),
                StepMode::Startup { updates } => (update < updates, update < updates),
                StepMode::Confirmed {
                    startup_updates,
                    confirmations,
                } => (
                    update < startup_updates,
                    update < startup_updates || self.above >= confirmations.max(1),
                ),
                StepMode::Always => (update == 0, true),
            };
            if may_step && (startup || quorum) {
                self.above = 0;
                return Ok(Verdict::Step);
            }
            wants_quorum = may_step;
        }
        let slew_seconds = offset.abs() / max_slew_rate;
        if slew_seconds > policy.max_slew_duration && wants_quorum {
            return Err(DisciplineError::NoStepQuorum { offset });
        }
        if slew_seconds > policy.max_slew_duration {
            // Waiting for a confirmation is not a refusal: report, and act next time.
            return Err(DisciplineError::OutOfRange {
                offset,
                slew_seconds,
            });
        }
        Ok(Verdict::Slew)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: f64 = 500e-6;

    #[test]
    fn startup_mode_steps_only_early() {
        let policy = StepPolicy {
            mode: StepMode::Startup { updates: 3 },
            ..StepPolicy::default()
        };
        let mut gate = StepGate::default();
        assert_eq!(gate.judge(&policy, 5.0, RATE, true), Ok(Verdict::Step));
        assert_eq!(gate.judge(&policy, 0.01, RATE, true), Ok(Verdict::Slew));
        assert_eq!(gate.judge(&policy, 0.01, RATE, true), Ok(Verdict::Slew));
        // Fourth update: 1.5 s is slewed (3000 s at 500 ppm is within an hour).
        assert_eq!(gate.judge(&policy, 1.5, RATE, true), Ok(Verdict::Slew));
        // 100 s would take 55 hours: refused, never slewed silently.
        assert!(matches!(
            gate.judge(&policy, 100.0, RATE, true),
            Err(DisciplineError::OutOfRange { .. })
        ));
    }

    #[test]
    fn confirmed_mode_steps_after_two_in_a_row() {
        let policy = StepPolicy::default();
        let mut gate = StepGate::default();
        for _ in 0..3 {
            assert_eq!(gate.judge(&policy, 0.001, RATE, true), Ok(Verdict::Slew));
        }
        // A snapshot revert: three hours off. First sighting waits, second steps.
        assert!(matches!(
            gate.judge(&policy, -10_800.0, RATE, true),
            Err(DisciplineError::OutOfRange { .. })
        ));
        assert_eq!(
            gate.judge(&policy, -10_800.0, RATE, true),
            Ok(Verdict::Step)
        );
        // A lone 2 s outlier between good updates is never stepped.
        assert_eq!(gate.judge(&policy, 0.001, RATE, true), Ok(Verdict::Slew));
        assert_eq!(gate.judge(&policy, 1.2, RATE, true), Ok(Verdict::Slew));
        assert_eq!(gate.judge(&policy, 0.001, RATE, true), Ok(Verdict::Slew));
    }

    /// After startup a step needs the quorum; one source alone can only slew (or is
    /// refused as out of range), and the step follows once the others agree again.
    #[test]
    fn after_startup_a_step_needs_the_quorum() {
        let policy = StepPolicy::default();
        let mut gate = StepGate::default();
        // At startup one source sets the clock, quorum or not (a board at 1970).
        assert_eq!(gate.judge(&policy, 1.7e9, RATE, false), Ok(Verdict::Step));
        for _ in 0..3 {
            assert_eq!(gate.judge(&policy, 0.001, RATE, true), Ok(Verdict::Slew));
        }
        // One source says a day off: seen once it waits for confirmation as ever; then,
        // confirmed, no step without the others.
        assert!(matches!(
            gate.judge(&policy, 86_400.0, RATE, false),
            Err(DisciplineError::OutOfRange { .. })
        ));
        for _ in 0..3 {
            assert_eq!(
                gate.judge(&policy, 86_400.0, RATE, false),
                Err(DisciplineError::NoStepQuorum { offset: 86_400.0 })
            );
        }
        // A large but slewable offset without the quorum is slewed, not stepped.
        assert_eq!(gate.judge(&policy, 1.5, RATE, false), Ok(Verdict::Slew));
        assert_eq!(gate.judge(&policy, 0.001, RATE, true), Ok(Verdict::Slew));
        // The others agree (a reverted snapshot): confirmed, then stepped.
        assert!(gate.judge(&policy, -10_800.0, RATE, true).is_err());
        assert_eq!(
            gate.judge(&policy, -10_800.0, RATE, true),
            Ok(Verdict::Step)
        );
    }

    #[test]
    fn never_and_always() {
        let never = StepPolicy {
            mode: StepMode::Never,
            ..StepPolicy::default()
        };
        let mut gate = StepGate::default();
        assert!(matches!(
            gate.judge(&never, 100.0, RATE, true),
            Err(DisciplineError::OutOfRange { .. })
        ));
        assert_eq!(gate.judge(&never, 1.1, RATE, true), Ok(Verdict::Slew));
        let always = StepPolicy {
            mode: StepMode::Always,
            ..StepPolicy::default()
        };
        let mut gate = StepGate::default();
        for _ in 0..10 {
            gate.judge(&always, 0.0, RATE, true).unwrap();
        }
        assert_eq!(gate.judge(&always, 1.1, RATE, true), Ok(Verdict::Step));
    }

    #[test]
    fn panic_policies() {
        let refuse = StepPolicy {
            panic_threshold: Some(1000.0),
            ..StepPolicy::default()
        };
        let mut gate = StepGate::default();
        assert!(matches!(
            gate.judge(&refuse, 5000.0, RATE, true),
            Err(DisciplineError::Panic { .. })
        ));
        assert_eq!(gate.judge(&refuse, 0.0, RATE, true), Ok(Verdict::Slew));
        let observe = StepPolicy {
            panic_policy: PanicPolicy::ObserveOnly,
            ..refuse
        };
        let mut gate = StepGate::default();
        assert!(matches!(
            gate.judge(&observe, -5000.0, RATE, true),
            Err(DisciplineError::Panic { .. })
        ));
        assert_eq!(
            gate.judge(&observe, 0.0, RATE, true),
            Err(DisciplineError::ObserveOnly)
        );
    }
}
