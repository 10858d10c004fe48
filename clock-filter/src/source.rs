//! What a status table shows per source: reach register, last sample, estimate and the
//! selection mark.

use crate::{CandidateVerdict, Measurement};

/// The 8-bit reach register (RFC 5905 section 13): shifted left at every poll, bit 0 set
/// when a valid answer came back. 0o377 is eight answers out of eight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ReachRegister(pub u8);

impl ReachRegister {
    /// Shifts in a poll: sent, and not (yet) answered.
    pub fn poll_sent(&mut self) {
        self.0 <<= 1;
    }

    /// Marks the current poll as answered.
    pub fn answered(&mut self) {
        self.0 |= 1;
    }

    /// Whether any of the last eight polls was answered.
    pub const fn is_reachable(self) -> bool {
        self.0 != 0
    }

    /// Answers among the last eight polls.
    pub const fn answers(self) -> u32 {
        self.0.count_ones()
    }
}

impl core::fmt::Display for ReachRegister {
    /// Octal, as ntpq and chronyc print it.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:o}", self.0)
    }
}

/// A source's standing, as the status tables mark it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SelectionMark {
    /// The system peer ('*').
    Selected,
    /// Combined with the system peer ('+').
    Combined,
    /// A truechimer not combined ('-').
    Candidate,
    /// A falseticker ('x').
    Falseticker,
    /// Too variable or too distant to use ('~').
    TooVariable,
    /// Not reachable, or no usable answer yet ('?').
    #[default]
    Unreachable,
}

impl SelectionMark {
    /// The one-character mark chronyc uses.
    pub const fn symbol(self) -> char {
        match self {
            Self::Selected => '*',
            Self::Combined => '+',
            Self::Candidate => '-',
            Self::Falseticker => 'x',
            Self::TooVariable => '~',
            Self::Unreachable => '?',
        }
    }
}

impl From<CandidateVerdict> for SelectionMark {
    fn from(verdict: CandidateVerdict) -> Self {
        match verdict {
            CandidateVerdict::SystemPeer => Self::Selected,
            CandidateVerdict::Combined => Self::Combined,
            CandidateVerdict::Outlier => Self::Candidate,
            CandidateVerdict::Falseticker => Self::Falseticker,
            CandidateVerdict::TooDistant => Self::TooVariable,
            CandidateVerdict::Unsynchronized | CandidateVerdict::None => Self::Unreachable,
        }
    }
}

/// Per-source state for a status table.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SourceStatus {
    /// Reach register.
    pub reach: ReachRegister,
    /// The last measurement taken in.
    pub last_sample: Option<Measurement>,
    /// Current offset estimate, seconds.
    pub offset: f64,
    /// Its error bound (standard error or filter dispersion), seconds.
    pub offset_error: f64,
    /// Delay, seconds.
    pub delay: f64,
    /// Jitter, seconds.
    pub jitter: f64,
    /// Selection mark.
    pub mark: SelectionMark,
}

impl SourceStatus {
    /// The row of a source whose estimator gave `estimate` (its error, delay and jitter)
    /// and whose candidate offset is `offset` now (0 without one).
    pub fn new(
        reach: ReachRegister,
        last_sample: Option<Measurement>,
        offset: Option<f64>,
        estimate: Option<crate::Estimate>,
        mark: SelectionMark,
    ) -> Self {
        Self {
            reach,
            last_sample,
            offset: offset.unwrap_or(0.0),
            offset_error: estimate.map_or(0.0, |e| e.offset_error),
            delay: estimate.map_or(0.0, |e| e.delay),
            jitter: estimate.map_or(0.0, |e| e.jitter),
            mark,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reach_register_shifts_and_prints_octal() {
        let mut reach = ReachRegister::default();
        assert!(!reach.is_reachable());
        for _ in 0..8 {
            reach.poll_sent();
            reach.answered();
        }
        assert_eq!(reach.to_string(), "377");
        reach.poll_sent();
        assert_eq!(reach.to_string(), "376");
        assert_eq!(reach.answers(), 7);
        for _ in 0..8 {
            reach.poll_sent();
        }
        assert!(!reach.is_reachable());
    }

    #[test]
    fn marks_follow_verdicts() {
        assert_eq!(
            SelectionMark::from(CandidateVerdict::SystemPeer).symbol(),
            '*'
        );
        assert_eq!(
            SelectionMark::from(CandidateVerdict::Combined).symbol(),
            '+'
        );
        assert_eq!(SelectionMark::from(CandidateVerdict::Outlier).symbol(), '-');
        assert_eq!(
            SelectionMark::from(CandidateVerdict::Falseticker).symbol(),
            'x'
        );
        assert_eq!(
            SelectionMark::from(CandidateVerdict::TooDistant).symbol(),
            '~'
        );
        assert_eq!(
            SelectionMark::from(CandidateVerdict::Unsynchronized).symbol(),
            '?'
        );
    }
}
