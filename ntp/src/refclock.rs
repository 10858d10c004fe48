//! A reference clock as a source: a PTP hardware clock read against the system clock
//! (PTP_SYS_OFFSET_PRECISE / _EXTENDED, shortest window), the path a VM guest with
//! ptp_kvm takes to its host's clock. Sans-IO: the caller reads the device and passes the
//! reading in.

use alloc::string::String;

use tempora_clock_filter::{
    Candidate, Measurement, ReachRegister, RegressionConfig, RegressionFilter, SelectionMark,
    SourceStatus,
};
use tempora_clock_types::{ClockCorrection, Leap, LocalInstant};

/// Settings of one reference clock.
#[derive(Clone, Debug, PartialEq)]
pub struct RefclockConfig {
    /// What the status table shows (e.g. `/dev/ptp0`).
    pub name: String,
    /// Poll interval, log2 seconds (0: every second).
    pub poll: i8,
    /// Added to every reading, seconds (a known cable or conversion delay).
    pub offset: f64,
    /// The stratum the clock counts as (0: a primary reference).
    pub stratum: u8,
    /// Readings averaged per poll (the shortest-window one of each batch is kept).
    pub samples: u32,
}

impl Default for RefclockConfig {
    fn default() -> Self {
        Self {
            name: "/dev/ptp0".into(),
            poll: 0,
            offset: 0.0,
            stratum: 0,
            samples: 5,
        }
    }
}

/// One reference clock's state.
#[derive(Clone, Debug)]
pub struct RefclockSource {
    config: RefclockConfig,
    filter: RegressionFilter,
    reach: ReachRegister,
    next_poll: LocalInstant,
    polls: u32,
    last: Option<Measurement>,
    mark: SelectionMark,
}

impl RefclockSource {
    /// A reference clock first read at `now`.
    pub fn new(config: RefclockConfig, now: LocalInstant) -> Self {
        Self {
            config,
            filter: RegressionFilter::new(RegressionConfig {
                precision: 1e-9,
                ..RegressionConfig::default()
            }),
            reach: ReachRegister::default(),
            next_poll: now,
            polls: 0,
            last: None,
            mark: SelectionMark::Unreachable,
        }
    }

    /// Its settings.
    pub fn config(&self) -> &RefclockConfig {
        &self.config
    }

    /// When to read next.
    pub fn poll_timeout(&self) -> LocalInstant {
        self.next_poll
    }

    /// Whether it has had its say at start.
    pub fn is_settled(&self) -> bool {
        self.last.is_some() || self.polls >= 2
    }

    /// The reach register.
    pub fn reach(&self) -> ReachRegister {
        self.reach
    }

    /// Sets the status table's mark.
    pub fn set_mark(&mut self, mark: SelectionMark) {
        self.mark = mark;
    }

    /// Takes one reading at `now`: `reference_minus_local` (seconds; the PHC minus the
    /// system clock) and the reading's window (seconds), or `None` when the device failed.
    pub fn handle_reading(
        &mut self,
        now: LocalInstant,
        reading: Option<(f64, f64)>,
    ) -> Option<Measurement> {
        self.polls = self.polls.saturating_add(1);
        self.reach.poll_sent();
        self.next_poll = now.add_seconds(libm::exp2(f64::from(self.config.poll)));
        let (offset, window) = reading?;
        self.reach.answered();
        let delay = window.max(1e-9);
        let m = Measurement {
            offset: offset + self.config.offset,
            delay,
            dispersion: 1e-9 + delay / 2.0,
            root_delay: 0.0,
            root_dispersion: 0.0,
            stratum: self.config.stratum,
            leap: Leap::None,
            time: now,
        };
        if let Some(e) = self.filter.estimate() {
            if (m.offset - e.offset_at(now)).abs() > (10.0 * e.jitter).max(0.01) {
                self.filter.reset();
            }
        }
        self.filter.update(&m).ok()?;
        self.last = Some(m);
        Some(m)
    }

    /// What it offers the selection.
    pub fn candidate(&self, now: LocalInstant) -> Option<Candidate> {
        if !self.reach.is_reachable() {
            return None;
        }
        self.filter.estimate().map(|e| {
            let mut c = Candidate::from_estimate(&e);
            c.offset = e.offset_at(now);
            c
        })
    }

    /// Carries its samples across a correction of the local clock.
    pub fn apply_correction(&mut self, correction: ClockCorrection) {
        self.filter.apply_correction(correction);
        if let (ClockCorrection::Step { offset, .. }, Some(last)) = (correction, &mut self.last) {
            last.offset -= offset;
        }
    }

    /// Its status row.
    pub fn status(&self, now: LocalInstant) -> SourceStatus {
        SourceStatus::new(
            self.reach,
            self.last,
            self.candidate(now).map(|c| c.offset),
            self.filter.estimate(),
            self.mark,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_become_a_candidate_and_failures_empty_the_reach() {
        let mut r = RefclockSource::new(RefclockConfig::default(), LocalInstant(0));
        for i in 0..8 {
            let now = LocalInstant::from_seconds_f64(f64::from(i));
            let m = r.handle_reading(now, Some((2e-6 + 1e-7 * f64::from(i % 2), 3e-8)));
            assert!(m.is_some());
        }
        let c = r
            .candidate(LocalInstant::from_seconds_f64(7.0))
            .expect("candidate");
        assert!((c.offset - 2.05e-6).abs() < 2e-7, "{c:?}");
        assert_eq!(c.stratum, 0);
        for i in 8..16 {
            r.handle_reading(LocalInstant::from_seconds_f64(f64::from(i)), None);
        }
        assert!(r.candidate(LocalInstant::from_seconds_f64(16.0)).is_none());
    }
}
