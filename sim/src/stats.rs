//! Statistics as chrony's clknetsim reports them: RMS, max and mean |offset| and the RMS
//! frequency error after sync, and the sync time (the last moment the error exceeded its
//! limit).

use crate::scenario::Bars;

/// The true error of one node, sampled every second.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct NodeTrace {
    /// The node's name.
    pub name: String,
    /// Whether this is the node the scenario is about.
    pub tracked: bool,
    /// Sample times, seconds.
    pub times: Vec<f64>,
    /// Clock minus truth, seconds.
    pub offsets: Vec<f64>,
    /// Frequency error, ppm.
    pub frequencies: Vec<f64>,
    /// Steps taken.
    pub steps: u32,
    /// Leap seconds its kernel took.
    pub leaps: u32,
    /// Updates the discipline refused (panic, out of range, waiting for a confirmation,
    /// no majority).
    pub discipline_errors: u32,
    /// Computed statistics.
    pub stats: Option<Stats>,
}

impl NodeTrace {
    /// An empty trace.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Records one sample.
    pub fn record(&mut self, t: f64, offset: f64, frequency_ppm: f64) {
        self.times.push(t);
        self.offsets.push(offset);
        self.frequencies.push(frequency_ppm);
    }

    /// Statistics after the moment the node came into sync: |offset| within `limit` and,
    /// where given, |frequency error| within `frequency_limit` ppm, for good.
    pub fn compute(&self, limit: f64, frequency_limit: Option<f64>) -> Stats {
        let out = |i: usize| {
            let o = self.offsets[i];
            let f = self.frequencies[i];
            o.abs() > limit || !o.is_finite() || frequency_limit.is_some_and(|l| f.abs() > l)
        };
        let last_out = (0..self.offsets.len()).rev().find(|&i| out(i));
        let start = last_out.map_or(0, |i| i + 1);
        let sync_time = match last_out {
            None => Some(0.0),
            Some(i) if i + 1 < self.times.len() => Some(self.times[i + 1]),
            Some(_) => None,
        };
        let after = &self.offsets[start.min(self.offsets.len())..];
        let freqs = &self.frequencies[start.min(self.frequencies.len())..];
        let n = after.len().max(1) as f64;
        Stats {
            sync_time,
            rms_offset: (after.iter().map(|o| o * o).sum::<f64>() / n).sqrt(),
            max_offset: after.iter().fold(0.0f64, |m, o| m.max(o.abs())),
            mean_abs_offset: after.iter().map(|o| o.abs()).sum::<f64>() / n,
            rms_frequency_ppm: (freqs.iter().map(|f| f * f).sum::<f64>() / n).sqrt(),
            samples: after.len(),
        }
    }
}

/// The statistics of one node.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Stats {
    /// When it came into sync for good (seconds), if it did.
    pub sync_time: Option<f64>,
    /// RMS offset after sync, seconds.
    pub rms_offset: f64,
    /// Largest |offset| after sync, seconds.
    pub max_offset: f64,
    /// Mean |offset| after sync, seconds.
    pub mean_abs_offset: f64,
    /// RMS frequency error after sync, ppm.
    pub rms_frequency_ppm: f64,
    /// Samples after sync.
    pub samples: usize,
}

/// One row of the `sources` table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SourceRow {
    /// The server's name.
    pub name: String,
    /// The selection mark.
    pub mark: char,
    /// The selection verdict.
    pub verdict: String,
    /// Its stratum.
    pub stratum: u8,
    /// Poll, log2 seconds.
    pub poll: i8,
    /// Reach register.
    pub reach: u8,
    /// Seconds since the last sample.
    pub last_rx: f64,
    /// Offset estimate, seconds.
    pub offset: f64,
    /// Its error, seconds.
    pub error: f64,
    /// Minimum delay, seconds.
    pub delay: f64,
}

/// The `tracking` summary.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Tracking {
    /// The system peer.
    pub reference: String,
    /// Stratum.
    pub stratum: u8,
    /// The true offset (only a simulator knows it).
    pub true_offset: f64,
    /// The last system offset estimate.
    pub last_offset: f64,
    /// Frequency correction, ppm.
    pub frequency_ppm: f64,
    /// The true frequency error left, ppm.
    pub true_frequency_error_ppm: f64,
    /// Residual frequency, ppm.
    pub residual_frequency_ppm: f64,
    /// Skew (frequency error bound), ppm.
    pub skew_ppm: f64,
    /// Root delay, seconds.
    pub root_delay: f64,
    /// Root dispersion, seconds.
    pub root_dispersion: f64,
    /// Shortest poll interval, seconds.
    pub update_interval: f64,
    /// Leap status.
    pub leap: String,
    /// Updates of the discipline.
    pub updates: u64,
}

/// One bar and whether the run met it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BarCheck {
    /// What was checked.
    pub what: String,
    /// The measured value.
    pub measured: f64,
    /// The bar.
    pub bar: f64,
    /// Whether it was met.
    pub passed: bool,
}

/// Everything a run produced.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RunResult {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Simulated seconds.
    pub duration: f64,
    /// Wall-clock seconds the run took.
    pub wall_seconds: f64,
    /// Every client node.
    pub nodes: Vec<NodeTrace>,
    /// The demo client's sources.
    pub sources: Vec<SourceRow>,
    /// The demo client's tracking summary.
    pub tracking: Option<Tracking>,
    /// The bars of the tracked node.
    pub checks: Vec<BarCheck>,
    /// What the demo client measured of each server over time: (name, [(time s, the
    /// server's offset from the client s)]), one point a second while it has a sample.
    pub seen: Vec<(String, Vec<(f64, f64)>)>,
    /// The demo client's published error bound against the truth, once a second.
    pub bounds: Option<BoundTrace>,
}

/// Once a second: the error bound an application would read from the client's published
/// segment, ours and the one ClockBound's formula gives from the same tracking data, and
/// the truth.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct BoundTrace {
    /// Clock minus truth, seconds.
    pub errors: Vec<f64>,
    /// The bound read, seconds (infinite when untrusted).
    pub bounds: Vec<f64>,
    /// Whether the status read was trusted (Synchronized or FreeRunning).
    pub trusted: Vec<bool>,
    /// ClockBound's bound from the tracking data: root delay / 2 + root dispersion +
    /// |the correction still to make| + 1 ppm since the update.
    pub clockbound: Vec<f64>,
    /// Whether ClockBound would call it trusted (synchronised, or free running within
    /// eight update intervals).
    pub clockbound_trusted: Vec<bool>,
}

/// What a bound trace adds up to.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct BoundStats {
    /// Seconds recorded.
    pub seconds: usize,
    /// Seconds the status was trusted.
    pub trusted: usize,
    /// Trusted seconds whose bound held the truth.
    pub covered: usize,
    /// Median bound over the trusted seconds, seconds.
    pub median: f64,
    /// 99th percentile bound over the trusted seconds, seconds.
    pub p99: f64,
}

impl BoundStats {
    /// Covered over trusted seconds (1 when nothing was claimed).
    pub fn coverage(&self) -> f64 {
        if self.trusted == 0 {
            1.0
        } else {
            self.covered as f64 / self.trusted as f64
        }
    }

    /// Trusted seconds whose bound missed the truth.
    pub fn misses(&self) -> usize {
        self.trusted - self.covered
    }
}

/// The seconds of one bound: (|error|, bound) where trusted, and how many were recorded.
#[derive(Clone, Debug, Default)]
pub struct BoundValues {
    /// (true |error|, bound) of every trusted second, seconds.
    pub trusted: Vec<(f64, f64)>,
    /// Seconds recorded.
    pub seconds: usize,
}

impl BoundTrace {
    /// Our bound's statistics.
    pub fn ours(&self) -> BoundStats {
        BoundStats::merged(&[self.ours_values()])
    }

    /// ClockBound's formula's statistics.
    pub fn clockbound(&self) -> BoundStats {
        BoundStats::merged(&[self.clockbound_values()])
    }

    /// Our bound's seconds.
    pub fn ours_values(&self) -> BoundValues {
        Self::values(&self.errors, &self.bounds, &self.trusted)
    }

    /// ClockBound's formula's seconds.
    pub fn clockbound_values(&self) -> BoundValues {
        Self::values(&self.errors, &self.clockbound, &self.clockbound_trusted)
    }

    fn values(errors: &[f64], bounds: &[f64], trusted: &[bool]) -> BoundValues {
        BoundValues {
            trusted: errors
                .iter()
                .zip(bounds)
                .zip(trusted)
                .filter(|(_, t)| **t)
                .map(|((e, b), _)| (e.abs(), *b))
                .collect(),
            seconds: errors.len(),
        }
    }
}

impl BoundStats {
    /// The statistics of several runs' seconds together.
    pub fn merged(runs: &[BoundValues]) -> Self {
        let mut claimed: Vec<f64> = Vec::new();
        let mut covered = 0;
        let mut seconds = 0;
        for run in runs {
            seconds += run.seconds;
            for &(e, b) in &run.trusted {
                claimed.push(b);
                if e <= b {
                    covered += 1;
                }
            }
        }
        claimed.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if claimed.is_empty() {
                f64::NAN
            } else {
                claimed[((claimed.len() - 1) as f64 * q).round() as usize]
            }
        };
        BoundStats {
            seconds,
            trusted: claimed.len(),
            covered,
            median: at(0.5),
            p99: at(0.99),
        }
    }
}

impl RunResult {
    /// Computes the statistics and checks the bars on the tracked node.
    pub fn evaluate(&mut self, bars: &Bars) {
        // As chrony's simulation tests: in sync once offset and frequency stay within
        // their limits (the frequency limit three times the RMS bar).
        let frequency_limit = bars.rms_frequency_ppm.map(|bar| 3.0 * bar);
        for node in &mut self.nodes {
            node.stats = Some(node.compute(bars.sync_limit, frequency_limit));
        }
        let Some(stats) = self.tracked().and_then(|n| n.stats) else {
            return;
        };
        let mut check = |what: &str, measured: f64, bar: f64| {
            self.checks.push(BarCheck {
                what: what.into(),
                measured,
                bar,
                passed: measured <= bar,
            });
        };
        check(
            "sync time (s)",
            stats.sync_time.unwrap_or(f64::INFINITY),
            bars.max_sync_time,
        );
        check(
            "max |offset| after sync (s)",
            stats.max_offset,
            bars.max_offset,
        );
        check(
            "RMS offset after sync (s)",
            stats.rms_offset,
            bars.rms_offset,
        );
        if let Some(bar) = bars.rms_frequency_ppm {
            check(
                "RMS frequency error after sync (ppm)",
                stats.rms_frequency_ppm,
                bar,
            );
        }
    }

    /// The node the scenario is about.
    pub fn tracked(&self) -> Option<&NodeTrace> {
        self.nodes.iter().find(|n| n.tracked)
    }

    /// Whether every bar was met.
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_time_is_the_last_moment_out_of_limit() {
        let mut t = NodeTrace::new("n");
        for (i, o) in [0.1, 0.01, 0.0005, 0.002, 0.0001, -0.0002]
            .iter()
            .enumerate()
        {
            t.record(i as f64, *o, 0.0);
        }
        let s = t.compute(1e-3, None);
        assert_eq!(s.sync_time, Some(4.0));
        assert_eq!(s.samples, 2);
        assert!((s.max_offset - 0.0002).abs() < 1e-12);
        let never = {
            let mut t = NodeTrace::new("n");
            t.record(0.0, 1.0, 0.0);
            t.compute(1e-3, None)
        };
        assert_eq!(never.sync_time, None);
        let mut f = NodeTrace::new("f");
        f.record(0.0, 0.0, 500.0);
        f.record(1.0, 0.0, 1.0);
        assert_eq!(f.compute(1e-3, Some(30.0)).sync_time, Some(1.0));
    }
}
