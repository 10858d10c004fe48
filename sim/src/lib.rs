//! A deterministic clock-and-network simulator: the truth that time synchronization is
//! judged against, hours of network time in seconds.
//!
//! Clocks have an initial offset, a frequency error, random-walk wander, read noise and a
//! kernel-like frequency limit and slew; they are steered by the very same
//! [`tempora_clock_types::ClockAction`]s as real clocks, through the same
//! [`tempora_clock_types::SteeredClock`] trait sys-clock implements. Links have a
//! base delay and jitter from several distributions per direction, loss, delay steps and
//! outages. Nodes run the real client core of `tempora-examples` (sources, selection,
//! discipline) and answer with `tempora-ntp-proto`; a PTP master and slave exchange real
//! `tempora-ptp-proto` messages. The same seed gives the same run, bit for bit.

pub mod coverage;
pub mod engine;
pub mod model;
pub mod report;
pub mod scenario;
pub mod stats;

pub use engine::run;
pub use scenario::{Scenario, Variant, all, by_name};
pub use stats::RunResult;
