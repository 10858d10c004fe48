//! Choosing which sources to believe and combining them (RFC 5905 section 11.2).
//!
//! 1. Every candidate gives a correctness interval: its offset ± its root distance.
//! 2. Intersection (11.2.1): the interval from the lowest to the highest point that more
//!    than half of the intervals cover. This departs from the RFC's loop on purpose: when a
//!    strict majority of sources tell the truth, this interval provably contains it, which
//!    neither the RFC's midpoint count nor plain Marzullo guarantees (the tests show a case
//!    of each). Candidates whose intervals miss it are falsetickers.
//! 3. Clustering (11.2.2): while more than `min_survivors` remain, drop the survivor whose
//!    offset is furthest (RMS) from the others, until that spread is no larger than the
//!    best jitter. The system peer is the best survivor, kept over a slightly better one
//!    to avoid clock hopping.
//! 4. Combining (11.2.3): the survivors' offsets weighted by 1 / root distance.

use crate::{MAX_DISPERSION, PHI};
use tempora_clock_types::{Leap, LocalInstant};

/// The most candidates [`select`] takes (no allocation: it works in fixed arrays).
pub const MAX_CANDIDATES: usize = 64;

/// One source's offer to the selection.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Candidate {
    /// Offset of the source from the local clock, seconds.
    pub offset: f64,
    /// Round-trip delay to the source.
    pub delay: f64,
    /// Dispersion of the source's estimate.
    pub dispersion: f64,
    /// The source's jitter.
    pub jitter: f64,
    /// The source's root delay.
    pub root_delay: f64,
    /// The source's root dispersion.
    pub root_dispersion: f64,
    /// The source's stratum.
    pub stratum: u8,
    /// The source's leap indicator.
    pub leap: Leap,
    /// When the estimate was made.
    pub time: LocalInstant,
    /// Frequency estimate and its standard error (seconds per second), if the estimator
    /// gives one.
    pub frequency: Option<(f64, f64)>,
}

impl Candidate {
    /// The candidate of a regression estimate.
    pub fn from_estimate(estimate: &crate::Estimate) -> Self {
        Self {
            offset: estimate.offset,
            delay: estimate.delay,
            dispersion: estimate.dispersion,
            jitter: estimate.jitter,
            root_delay: estimate.root_delay,
            root_dispersion: estimate.root_dispersion,
            stratum: estimate.stratum,
            leap: estimate.leap,
            time: estimate.time,
            frequency: Some((estimate.frequency, estimate.frequency_error)),
        }
    }

    /// The root distance at `now` (RFC 5905 section 11.2.1): half the total round trip to
    /// the primary reference plus every dispersion, the jitter and the aging since.
    pub fn root_distance(&self, now: LocalInstant) -> f64 {
        let age = now.seconds_since(self.time).max(0.0);
        (self.root_delay + self.delay).max(1e-9) / 2.0
            + self.root_dispersion
            + self.dispersion
            + self.jitter
            + PHI * age
    }
}

/// Settings of [`select`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SelectionConfig {
    /// Fewest truechimers needed to synchronise (chrony's `minsources`). The default, 1,
    /// lets one or two sources work; three or more are needed to outvote a falseticker.
    pub min_sources: usize,
    /// Clustering stops at this many survivors (RFC 5905 NMIN = 3).
    pub min_survivors: usize,
    /// Candidates with a root distance above this are not considered (RFC MAXDIST = 1.5 s).
    pub max_distance: f64,
    /// The stratum at and above which a candidate is not considered.
    pub max_stratum: u8,
}

impl Default for SelectionConfig {
    fn default() -> Self {
        Self {
            min_sources: 1,
            min_survivors: 3,
            max_distance: 1.5,
            max_stratum: 16,
        }
    }
}

/// What the selection made of one candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CandidateVerdict {
    /// Not considered yet (or no selection ran).
    #[default]
    None,
    /// The system peer: its stratum, root delay and dispersion are passed on.
    SystemPeer,
    /// A survivor combined into the system offset.
    Combined,
    /// A truechimer dropped by clustering (its offset is too far from the others).
    Outlier,
    /// Its interval misses the intersection.
    Falseticker,
    /// Root distance above the maximum.
    TooDistant,
    /// Unsynchronised (leap alarm or stratum at or above the maximum).
    Unsynchronized,
}

/// The result of a successful selection.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SystemEstimate {
    /// Combined offset of the survivors, seconds.
    pub offset: f64,
    /// System jitter: survivors' spread and the system peer's own jitter.
    pub jitter: f64,
    /// Index of the system peer in the candidate slice.
    pub system_peer: usize,
    /// Stratum to announce: the system peer's plus one.
    pub stratum: u8,
    /// Root delay to announce.
    pub root_delay: f64,
    /// Root dispersion to announce.
    pub root_dispersion: f64,
    /// The leap indicator that more than half the survivors agree on, else `Leap::None`.
    pub leap: Leap,
    /// Combined frequency estimate and its standard error, where candidates gave one.
    pub frequency: Option<(f64, f64)>,
    /// Lower and upper end of the intersection interval.
    pub interval: (f64, f64),
    /// Truechimers found.
    pub truechimers: usize,
    /// Survivors combined.
    pub survivors: usize,
}

/// Why no system estimate came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectionError {
    /// No candidate was usable (all unsynchronised or too distant, or none at all).
    #[error("no usable source")]
    NoCandidates,
    /// More candidates than [`MAX_CANDIDATES`].
    #[error("{count} candidates, at most {MAX_CANDIDATES} are taken")]
    TooManyCandidates {
        /// How many were given.
        count: usize,
    },
    /// The verdict slice is not as long as the candidate slice.
    #[error("{verdicts} verdict slots for {candidates} candidates")]
    VerdictSlots {
        /// Candidates given.
        candidates: usize,
        /// Verdict slots given.
        verdicts: usize,
    },
    /// No interval is shared by a majority of the candidates.
    #[error("no majority of sources agree")]
    NoMajority,
    /// Fewer truechimers than `min_sources`.
    #[error("{found} sources agree, {required} are required")]
    TooFewSources {
        /// Truechimers found.
        found: usize,
        /// `min_sources`.
        required: usize,
    },
}

#[derive(Clone, Copy)]
struct Endpoint {
    value: f64,
    /// -1 lower end, +1 upper end (the signs of RFC 5905 appendix A.5.5.1).
    kind: i8,
}

/// Runs intersection, clustering and combining over `candidates` at `now`, writing each
/// candidate's verdict into `verdicts` (same length). `previous_peer` is the last system
/// peer's index, kept if it survives and is nearly as good (anti-clockhop).
pub fn select(
    candidates: &[Candidate],
    verdicts: &mut [CandidateVerdict],
    previous_peer: Option<usize>,
    config: &SelectionConfig,
    now: LocalInstant,
) -> Result<SystemEstimate, SelectionError> {
    if candidates.len() > MAX_CANDIDATES {
        return Err(SelectionError::TooManyCandidates {
            count: candidates.len(),
        });
    }
    if verdicts.len() != candidates.len() {
        return Err(SelectionError::VerdictSlots {
            candidates: candidates.len(),
            verdicts: verdicts.len(),
        });
    }
    verdicts.fill(CandidateVerdict::None);

    // Who may take part at all.
    let mut distance = [0.0f64; MAX_CANDIDATES];
    let mut usable = [0usize; MAX_CANDIDATES];
    let mut n = 0;
    for (i, c) in candidates.iter().enumerate() {
        let lambda = c.root_distance(now);
        distance[i] = lambda;
        let finite = c.offset.is_finite() && lambda.is_finite();
        if !finite || c.leap == Leap::Unsynchronized || c.stratum >= config.max_stratum {
            verdicts[i] = CandidateVerdict::Unsynchronized;
        } else if lambda > config.max_distance || lambda >= MAX_DISPERSION {
            verdicts[i] = CandidateVerdict::TooDistant;
        } else {
            usable[n] = i;
            n += 1;
        }
    }
    if n == 0 {
        return Err(SelectionError::NoCandidates);
    }

    // Intersection: the hull of the points that more than half the intervals cover. If a
    // strict majority of intervals contain the truth, the truth is such a point, so the
    // hull contains it (the RFC's midpoint count and plain Marzullo can both miss it).
    let mut endpoints = [Endpoint {
        value: 0.0,
        kind: 0,
    }; 2 * MAX_CANDIDATES];
    for (k, &i) in usable[..n].iter().enumerate() {
        let c = &candidates[i];
        endpoints[2 * k] = Endpoint {
            value: c.offset - distance[i],
            kind: -1,
        };
        endpoints[2 * k + 1] = Endpoint {
            value: c.offset + distance[i],
            kind: 1,
        };
    }
    let endpoints = &mut endpoints[..2 * n];
    // Lower ends before upper ends at equal values: touching intervals overlap.
    endpoints.sort_unstable_by(|a, b| a.value.total_cmp(&b.value).then(a.kind.cmp(&b.kind)));
    let majority = (n / 2 + 1) as i32;
    let mut coverage = 0i32;
    let mut low = None;
    for e in endpoints.iter() {
        coverage -= i32::from(e.kind);
        if coverage >= majority {
            low = Some(e.value);
            break;
        }
    }
    coverage = 0;
    let mut high = None;
    for e in endpoints.iter().rev() {
        coverage += i32::from(e.kind);
        if coverage >= majority {
            high = Some(e.value);
            break;
        }
    }
    let (low, high) = match (low, high) {
        (Some(low), Some(high)) if low <= high => (low, high),
        _ => return Err(SelectionError::NoMajority),
    };

    // Truechimers: intervals that reach the intersection.
    let mut survivors = [0usize; MAX_CANDIDATES];
    let mut count = 0;
    for &i in &usable[..n] {
        let c = &candidates[i];
        if c.offset + distance[i] < low || c.offset - distance[i] > high {
            verdicts[i] = CandidateVerdict::Falseticker;
        } else {
            survivors[count] = i;
            count += 1;
        }
    }
    let truechimers = count;
    if truechimers < config.min_sources.max(1) {
        return Err(SelectionError::TooFewSources {
            found: truechimers,
            required: config.min_sources.max(1),
        });
    }

    // Clustering, best merit (stratum, then distance) first.
    let merit = |i: usize| f64::from(candidates[i].stratum) * config.max_distance + distance[i];
    survivors[..count].sort_unstable_by(|&a, &b| merit(a).total_cmp(&merit(b)));
    while count > config.min_survivors.max(1) {
        let mut worst = 0;
        let mut worst_spread = f64::NEG_INFINITY;
        let mut best_jitter = f64::INFINITY;
        for (k, &i) in survivors[..count].iter().enumerate() {
            let mut squares = 0.0;
            for &j in &survivors[..count] {
                let d = candidates[j].offset - candidates[i].offset;
                squares += d * d;
            }
            let spread = libm::sqrt(squares / (count - 1) as f64);
            if spread > worst_spread {
                worst_spread = spread;
                worst = k;
            }
            best_jitter = best_jitter.min(candidates[i].jitter);
        }
        if worst_spread <= best_jitter {
            break;
        }
        verdicts[survivors[worst]] = CandidateVerdict::Outlier;
        survivors.copy_within(worst + 1..count, worst);
        count -= 1;
    }
    let survivors = &survivors[..count];

    // System peer, with anti-clockhop: keep the previous one while it survives and is
    // within half a root distance of the best.
    let best = survivors[0];
    let peer = match previous_peer {
        Some(previous)
            if survivors.contains(&previous)
                && merit(previous) <= merit(best) + 0.5 * distance[best] =>
        {
            previous
        }
        _ => best,
    };

    // Combining.
    let (mut sum_w, mut sum_wo) = (0.0, 0.0);
    for &i in survivors {
        let w = 1.0 / distance[i];
        sum_w += w;
        sum_wo += w * candidates[i].offset;
    }
    // The truth lies in the intersection: never offer a point outside it.
    let offset = (sum_wo / sum_w).clamp(low, high);
    let peer_offset = candidates[peer].offset;
    let mut spread = 0.0;
    for &i in survivors {
        let d = candidates[i].offset - peer_offset;
        spread += d * d / distance[i];
    }
    let selection_jitter = libm::sqrt(spread / sum_w);
    let jitter = libm::sqrt(
        selection_jitter * selection_jitter + candidates[peer].jitter * candidates[peer].jitter,
    );

    let (mut freq_w, mut freq_sum) = (0.0, 0.0);
    for &i in survivors {
        if let Some((f, err)) = candidates[i].frequency {
            if f.is_finite() && err.is_finite() {
                let w = 1.0 / (err * err + 1e-18);
                freq_w += w;
                freq_sum += w * f;
            }
        }
    }
    let frequency = (freq_w > 0.0).then(|| (freq_sum / freq_w, libm::sqrt(1.0 / freq_w)));

    let mut votes = [0usize; 3];
    for &i in survivors {
        match candidates[i].leap {
            Leap::Insert => votes[1] += 1,
            Leap::Delete => votes[2] += 1,
            _ => votes[0] += 1,
        }
    }
    let leap = if 2 * votes[1] > count {
        Leap::Insert
    } else if 2 * votes[2] > count {
        Leap::Delete
    } else {
        Leap::None
    };

    for &i in survivors {
        verdicts[i] = if i == peer {
            CandidateVerdict::SystemPeer
        } else {
            CandidateVerdict::Combined
        };
    }
    let p = &candidates[peer];
    let age = now.seconds_since(p.time).max(0.0);
    Ok(SystemEstimate {
        offset,
        jitter,
        system_peer: peer,
        stratum: p.stratum.saturating_add(1),
        root_delay: p.root_delay + p.delay,
        root_dispersion: p.root_dispersion + p.dispersion + jitter + PHI * age + offset.abs(),
        leap,
        frequency,
        interval: (low, high),
        truechimers,
        survivors: count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn candidate(offset: f64, distance: f64) -> Candidate {
        // root_delay chosen so that root_distance == distance at time 0.
        Candidate {
            offset,
            delay: 0.0,
            dispersion: 0.0,
            jitter: 0.0,
            root_delay: 2.0 * distance,
            root_dispersion: 0.0,
            stratum: 2,
            leap: Leap::None,
            time: LocalInstant(0),
            frequency: None,
        }
    }

    fn run(
        cands: &[Candidate],
    ) -> (
        Result<SystemEstimate, SelectionError>,
        Vec<CandidateVerdict>,
    ) {
        let mut verdicts = vec![CandidateVerdict::None; cands.len()];
        let result = select(
            cands,
            &mut verdicts,
            None,
            &SelectionConfig::default(),
            LocalInstant(0),
        );
        (result, verdicts)
    }

    #[test]
    fn one_source_is_enough_by_default() {
        let (result, verdicts) = run(&[candidate(0.01, 0.005)]);
        let est = result.unwrap();
        assert_eq!(est.offset, 0.01);
        assert_eq!(verdicts, [CandidateVerdict::SystemPeer]);
        assert_eq!(est.stratum, 3);
    }

    #[test]
    fn two_agreeing_sources_combine() {
        let (result, verdicts) = run(&[candidate(0.010, 0.004), candidate(0.012, 0.004)]);
        let est = result.unwrap();
        assert!((est.offset - 0.011).abs() < 1e-12);
        assert_eq!(
            verdicts
                .iter()
                .filter(|v| **v == CandidateVerdict::SystemPeer)
                .count(),
            1
        );
        assert_eq!(
            verdicts
                .iter()
                .filter(|v| **v == CandidateVerdict::Combined)
                .count(),
            1
        );
    }

    #[test]
    fn two_disagreeing_sources_have_no_majority() {
        let (result, _) = run(&[candidate(0.0, 0.001), candidate(1.0, 0.001)]);
        assert_eq!(result, Err(SelectionError::NoMajority));
    }

    #[test]
    fn falseticker_is_marked_among_five() {
        let cands = [
            candidate(0.001, 0.002),
            candidate(-0.001, 0.002),
            candidate(0.0005, 0.002),
            candidate(0.250, 0.002),
            candidate(0.0, 0.002),
        ];
        let (result, verdicts) = run(&cands);
        let est = result.unwrap();
        assert_eq!(verdicts[3], CandidateVerdict::Falseticker);
        assert_eq!(est.truechimers, 4);
        assert!(est.offset.abs() < 0.002);
        assert!(est.interval.0 <= 0.0 && 0.0 <= est.interval.1);
    }

    #[test]
    fn truth_kept_where_plain_marzullo_loses_it() {
        // Two honest intervals around 0 and a liar overlapping only their edge: all three
        // share [0.5, 1], which misses the truth. The majority hull is [-1, 1].
        let cands = [
            candidate(0.0, 1.0),
            candidate(0.0, 1.0),
            candidate(1.75, 1.25),
        ];
        let (result, _) = run(&cands);
        let est = result.unwrap();
        assert!(est.interval.0 <= 0.0 && 0.0 <= est.interval.1, "{est:?}");
    }

    #[test]
    fn truth_kept_where_the_rfc_midpoint_count_loses_it() {
        // Proptest's find: four tight honest sources, one wide honest source with its
        // midpoint off centre, and three liars. The RFC loop counts four midpoints outside
        // and gives up; the majority hull keeps the honest five.
        let mut cands = vec![candidate(0.0, 0.001); 4];
        cands.push(candidate(0.034, 0.47));
        cands.extend([
            candidate(36.7, 0.001),
            candidate(15.6, 0.001),
            candidate(-68.8, 0.001),
        ]);
        let (result, verdicts) = run(&cands);
        let est = result.unwrap();
        assert!(est.interval.0 <= 0.0 && 0.0 <= est.interval.1, "{est:?}");
        assert_eq!(&verdicts[5..], [CandidateVerdict::Falseticker; 3]);
        assert!(
            verdicts[..5]
                .iter()
                .all(|v| *v != CandidateVerdict::Falseticker)
        );
    }

    #[test]
    fn unusable_candidates_are_marked() {
        let mut unsync = candidate(0.0, 0.001);
        unsync.leap = Leap::Unsynchronized;
        let mut stratum16 = candidate(0.0, 0.001);
        stratum16.stratum = 16;
        let far = candidate(0.0, 2.0);
        let (result, verdicts) = run(&[unsync, stratum16, far]);
        assert_eq!(result, Err(SelectionError::NoCandidates));
        assert_eq!(
            verdicts,
            [
                CandidateVerdict::Unsynchronized,
                CandidateVerdict::Unsynchronized,
                CandidateVerdict::TooDistant
            ]
        );
    }

    #[test]
    fn min_sources_is_enforced() {
        let mut verdicts = [CandidateVerdict::None; 2];
        let config = SelectionConfig {
            min_sources: 3,
            ..SelectionConfig::default()
        };
        let result = select(
            &[candidate(0.0, 0.01), candidate(0.001, 0.01)],
            &mut verdicts,
            None,
            &config,
            LocalInstant(0),
        );
        assert_eq!(
            result,
            Err(SelectionError::TooFewSources {
                found: 2,
                required: 3
            })
        );
    }

    #[test]
    fn clustering_drops_the_outlier() {
        let mut cands = [
            candidate(0.0000, 0.01),
            candidate(0.0001, 0.01),
            candidate(-0.0001, 0.01),
            candidate(0.0002, 0.01),
            candidate(0.0080, 0.01),
        ];
        for c in &mut cands {
            c.jitter = 0.0001;
        }
        let (result, verdicts) = run(&cands);
        let est = result.unwrap();
        assert_eq!(verdicts[4], CandidateVerdict::Outlier);
        assert!(est.offset.abs() < 0.0002);
    }

    #[test]
    fn anti_clockhop_keeps_a_nearly_as_good_peer() {
        let cands = [candidate(0.0, 0.0100), candidate(0.0, 0.0102)];
        let mut verdicts = [CandidateVerdict::None; 2];
        let est = select(
            &cands,
            &mut verdicts,
            Some(1),
            &SelectionConfig::default(),
            LocalInstant(0),
        )
        .unwrap();
        assert_eq!(est.system_peer, 1);
        let est = select(
            &cands,
            &mut verdicts,
            None,
            &SelectionConfig::default(),
            LocalInstant(0),
        )
        .unwrap();
        assert_eq!(est.system_peer, 0);
    }

    #[test]
    fn leap_by_majority() {
        let mut cands = [
            candidate(0.0, 0.01),
            candidate(0.0, 0.01),
            candidate(0.0, 0.01),
        ];
        cands[0].leap = Leap::Insert;
        assert_eq!(run(&cands).0.unwrap().leap, Leap::None);
        cands[1].leap = Leap::Insert;
        assert_eq!(run(&cands).0.unwrap().leap, Leap::Insert);
    }

    #[test]
    fn bad_slices_are_errors() {
        let mut verdicts = [CandidateVerdict::None; 1];
        assert_eq!(
            select(
                &[candidate(0.0, 1.0); 2],
                &mut verdicts,
                None,
                &SelectionConfig::default(),
                LocalInstant(0)
            ),
            Err(SelectionError::VerdictSlots {
                candidates: 2,
                verdicts: 1
            })
        );
        let many = [candidate(0.0, 1.0); MAX_CANDIDATES + 1];
        let mut verdicts = [CandidateVerdict::None; MAX_CANDIDATES + 1];
        assert!(matches!(
            select(
                &many,
                &mut verdicts,
                None,
                &SelectionConfig::default(),
                LocalInstant(0)
            ),
            Err(SelectionError::TooManyCandidates { .. })
        ));
    }

    proptest! {
        /// When a strict majority of intervals contain the truth (0), the intersection
        /// contains it and the combined offset lies inside the intersection.
        #[test]
        fn majority_truth_is_kept(
            honest in proptest::collection::vec((-1.0f64..1.0, 0.001f64..1.0), 1..8),
            liars in proptest::collection::vec((-100.0f64..100.0, 0.001f64..1.0), 0..7),
        ) {
            // A strict minority of liars.
            let liars = &liars[..liars.len().min(honest.len() - 1)];
            let mut cands = Vec::new();
            for &(f, d) in &honest {
                // An honest interval: offset within its distance of the truth.
                cands.push(candidate(f * d, d));
            }
            for &(o, d) in liars {
                cands.push(candidate(o, d));
            }
            let (result, verdicts) = run(&cands);
            let est = result.expect("a majority agrees on the truth");
            prop_assert!(est.interval.0 <= 0.0 && 0.0 <= est.interval.1, "{:?}", est);
            prop_assert!(est.interval.0 <= est.offset && est.offset <= est.interval.1, "{:?}", est);
            prop_assert!(est.offset.is_finite() && est.jitter.is_finite());
            for (i, v) in verdicts.iter().enumerate().take(honest.len()) {
                prop_assert!(*v != CandidateVerdict::Falseticker, "honest {} marked falseticker", i);
            }
        }

        #[test]
        fn any_finite_input_gives_finite_output(
            cands in proptest::collection::vec((-1e6f64..1e6, 0f64..10.0, 0u8..20), 0..20)
        ) {
            let cands: Vec<_> = cands.iter().map(|&(o, d, s)| Candidate { stratum: s, ..candidate(o, d) }).collect();
            if let (Ok(est), _) = run(&cands) {
                prop_assert!(est.offset.is_finite() && est.jitter.is_finite() && est.root_dispersion.is_finite());
            }
        }
    }
}
