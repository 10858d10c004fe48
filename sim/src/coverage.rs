//! The error bound against the truth: for a scenario over several seeds, how often the
//! bound an application reads held the true error, how wide it was, and the same for the
//! bound ClockBound's formula makes of the same tracking data.

use crate::engine::run;
use crate::scenario::{Scenario, Variant};
use crate::stats::BoundStats;

/// The bar: the truth inside the bound in at least this share of the trusted seconds.
pub const COVERAGE_BAR: f64 = 0.9999;
/// The bar: the median bound at most this many times the RMS error.
pub const WIDTH_BAR: f64 = 10.0;

/// One scenario's bound statistics over its seeds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ScenarioCoverage {
    /// The scenario.
    pub scenario: String,
    /// The seeds run.
    pub seeds: Vec<u64>,
    /// Our bound, all seeds together.
    pub ours: BoundStats,
    /// ClockBound's formula, all seeds together.
    pub clockbound: BoundStats,
    /// RMS true error over every second after sync, all seeds together, seconds.
    pub rms_error: f64,
    /// RMS true error over every second the bound was trusted, seconds.
    pub rms_error_trusted: f64,
}

impl ScenarioCoverage {
    /// Whether the bars are met: coverage, and a median bound no wider than
    /// [`WIDTH_BAR`] times the RMS error.
    pub fn passed(&self) -> bool {
        self.ours.coverage() >= COVERAGE_BAR && self.width_ratio() <= WIDTH_BAR
    }

    /// Median bound over RMS error.
    pub fn width_ratio(&self) -> f64 {
        self.ours.median / self.rms_error
    }
}

/// Runs a scenario over `seeds` (PTP ones have no ClockBound column: ClockBound reads
/// chrony).
pub fn coverage(scenario: &Scenario, seeds: &[u64]) -> Option<ScenarioCoverage> {
    let mut ours = Vec::new();
    let mut cb = Vec::new();
    let (mut squares, mut count) = (0.0, 0usize);
    let (mut squares_trusted, mut count_trusted) = (0.0, 0usize);
    for &seed in seeds {
        let result = run(scenario, seed, None, Variant::Default);
        let Some(trace) = result.bounds.as_ref() else {
            continue;
        };
        if let Some(stats) = result.tracked().and_then(|n| n.stats) {
            squares += stats.rms_offset * stats.rms_offset * stats.samples as f64;
            count += stats.samples;
        }
        for (e, t) in trace.errors.iter().zip(&trace.trusted) {
            if *t {
                squares_trusted += e * e;
                count_trusted += 1;
            }
        }
        ours.push(trace.ours_values());
        cb.push(trace.clockbound_values());
    }
    Some(ScenarioCoverage {
        scenario: scenario.name.into(),
        seeds: seeds.to_vec(),
        ours: BoundStats::merged(&ours),
        clockbound: BoundStats::merged(&cb),
        rms_error: (squares / count.max(1) as f64).sqrt(),
        rms_error_trusted: (squares_trusted / count_trusted.max(1) as f64).sqrt(),
    })
}
