//! Turning estimates into clock actions: when to step, how to slew, what frequency to set.
//!
//! Sans-IO and `no_std`: every entry point takes `now` (a
//! [`LocalInstant`](tempora_clock_types::LocalInstant) on a monotonic timescale) and
//! returns [`ClockAction`](tempora_clock_types::ClockAction)s. The clock that carries them
//! out implements [`SteeredClock`](tempora_clock_types::SteeredClock):
//! `tempora-sys-clock` for the kernel's clocks, the simulator for its simulated ones.
//!
//! - [`Discipline`]: the default. Fed the system estimate of the regression filters, it
//!   sets the frequency the regression measured and removes the offset by a temporary
//!   frequency offset, within a slew rate limit, stepping as [`StepPolicy`] allows.
//! - [`RfcDiscipline`]: the PLL/FLL hybrid of RFC 5905 section 11.3 and appendix A.5.5.6,
//!   kept as the reference.
//! - [`PiServo`]: the proportional-integral servo of linuxptp, for PTP.
//! - [`LeapScheduler`]: arms the kernel's leap flag on the right day.

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(
    clippy::std_instead_of_core,
    clippy::alloc_instead_of_core,
    clippy::std_instead_of_alloc
)]

mod bound;
mod discipline;
mod leap;
mod leap_file;
mod policy;
mod rfc;
mod servo;
mod smear;

pub use bound::{BoundConfig, BoundTracker, BoundUpdate};
pub use discipline::{
    Discipline, DisciplineConfig, DisciplineInput, FrequencyState, SLOW_SLEW_PPM,
};
pub use leap::{LeapConfig, LeapDecision, LeapScheduler, end_of_month};
pub use leap_file::{LeapEntry, LeapFileError, LeapLineError, LeapSecondsList, MAX_LEAP_ENTRIES};
pub use policy::{DisciplineError, PanicPolicy, StepMode, StepPolicy};
pub use rfc::{RfcConfig, RfcDiscipline, RfcState};
pub use servo::{PiServo, PiServoConfig, Servo, ServoOutput, ServoState};
pub use smear::{LeapSmear, SmearShape};
