//! The best master clock algorithm as pure functions (IEEE 1588-2019 clause 9.3): the
//! data set comparison (9.3.4), the state decision for an ordinary clock (9.3.3), and
//! foreign-master qualification (9.3.2.5).

use core::cmp::Ordering;

use crate::header::PtpHeader;
use crate::management::DefaultDataSet;
use crate::message::AnnounceBody;
use crate::types::{ClockIdentity, ClockQuality, PortIdentity};

/// What the comparison looks at for one master (IEEE 1588-2019 9.3.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ComparisonDataset {
    /// grandmasterPriority1.
    pub priority1: u8,
    /// grandmasterIdentity.
    pub identity: ClockIdentity,
    /// grandmasterClockQuality.
    pub quality: ClockQuality,
    /// grandmasterPriority2.
    pub priority2: u8,
    /// stepsRemoved.
    pub steps_removed: u16,
    /// The port that sent the Announce (its sourcePortIdentity).
    pub sender: PortIdentity,
    /// The port that received it.
    pub receiver: PortIdentity,
}

impl ComparisonDataset {
    /// The data set of an Announce received on `receiver`.
    pub fn from_announce(
        header: &PtpHeader,
        announce: &AnnounceBody,
        receiver: PortIdentity,
    ) -> Self {
        Self {
            priority1: announce.grandmaster_priority1,
            identity: announce.grandmaster_identity,
            quality: announce.grandmaster_clock_quality,
            priority2: announce.grandmaster_priority2,
            steps_removed: announce.steps_removed,
            sender: header.source_port_identity,
            receiver,
        }
    }

    /// The data set D0 of the local clock (9.3.4): its own default data set, sender and
    /// receiver both its own port.
    pub fn from_default_ds(ds: &DefaultDataSet, port: PortIdentity) -> Self {
        Self {
            priority1: ds.priority1,
            identity: ds.clock_identity,
            quality: ds.clock_quality,
            priority2: ds.priority2,
            steps_removed: 0,
            sender: port,
            receiver: port,
        }
    }
}

/// The outcome of comparing A with B (IEEE 1588-2019 Figures 34 and 35).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Comparison {
    /// A is better.
    ABetter,
    /// B is better.
    BBetter,
    /// Same grandmaster; A is better by topology.
    ABetterByTopology,
    /// Same grandmaster; B is better by topology.
    BBetterByTopology,
    /// A message a port sent to itself (receiver equals sender).
    Error1,
    /// The same message twice (same sender and receiver).
    Error2,
}

impl Comparison {
    /// Whether A comes out better, by quality or by topology.
    pub const fn a_wins(self) -> bool {
        matches!(self, Self::ABetter | Self::ABetterByTopology)
    }
}

/// Compares two data sets (IEEE 1588-2019 9.3.4).
pub fn compare(a: &ComparisonDataset, b: &ComparisonDataset) -> Comparison {
    if a.identity != b.identity {
        // Figure 34, part 1: different grandmasters, by quality.
        let order = a
            .priority1
            .cmp(&b.priority1)
            .then(a.quality.clock_class.cmp(&b.quality.clock_class))
            .then(
                a.quality
                    .clock_accuracy
                    .to_u8()
                    .cmp(&b.quality.clock_accuracy.to_u8()),
            )
            .then(
                a.quality
                    .offset_scaled_log_variance
                    .cmp(&b.quality.offset_scaled_log_variance),
            )
            .then(a.priority2.cmp(&b.priority2))
            .then(a.identity.cmp(&b.identity));
        return if order == Ordering::Less {
            Comparison::ABetter
        } else {
            Comparison::BBetter
        };
    }
    // Figure 35: the same grandmaster, by topology.
    let (sa, sb) = (u32::from(a.steps_removed), u32::from(b.steps_removed));
    if sa > sb + 1 {
        return Comparison::BBetter;
    }
    if sa + 1 < sb {
        return Comparison::ABetter;
    }
    if sa > sb {
        return match a.receiver.cmp(&a.sender) {
            Ordering::Less => Comparison::BBetter,
            Ordering::Greater => Comparison::BBetterByTopology,
            Ordering::Equal => Comparison::Error1,
        };
    }
    if sa < sb {
        return match b.receiver.cmp(&b.sender) {
            Ordering::Less => Comparison::ABetter,
            Ordering::Greater => Comparison::ABetterByTopology,
            Ordering::Equal => Comparison::Error1,
        };
    }
    match a.sender.cmp(&b.sender) {
        Ordering::Less => Comparison::ABetterByTopology,
        Ordering::Greater => Comparison::BBetterByTopology,
        Ordering::Equal => match a.receiver.port_number.cmp(&b.receiver.port_number) {
            Ordering::Less => Comparison::ABetterByTopology,
            Ordering::Greater => Comparison::BBetterByTopology,
            Ordering::Equal => Comparison::Error2,
        },
    }
}

/// The recommended state of a port (IEEE 1588-2019 Figure 33).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StateDecision {
    /// No qualified Announce yet on a listening port: stay listening.
    Listening,
    /// M1: a primary-class clock that is better than what this port hears.
    M1,
    /// M2: a clock better than the best anywhere.
    M2,
    /// M3: the best is elsewhere, and this port's best is not better by topology.
    M3,
    /// S1: follow the best, heard on this port.
    S1,
    /// P1: a primary-class clock hearing a better one.
    P1,
    /// P2: the best is elsewhere and better by topology than this port's best.
    P2,
}

/// The state decision for one port of an ordinary clock.
///
/// `d0` is the local clock; `erbest` the best qualified Announce on this port; `ebest`
/// the best over all ports (for an ordinary clock, the same); `listening` whether the
/// port is LISTENING. A slave-only clock never becomes master: where the algorithm says
/// M1, M2 or M3, it stays listening.
pub fn state_decision(
    d0: &ComparisonDataset,
    erbest: Option<&ComparisonDataset>,
    ebest: Option<&ComparisonDataset>,
    listening: bool,
    slave_only: bool,
) -> StateDecision {
    let decision = state_decision_master_capable(d0, erbest, ebest, listening);
    if slave_only
        && matches!(
            decision,
            StateDecision::M1 | StateDecision::M2 | StateDecision::M3
        )
    {
        StateDecision::Listening
    } else {
        decision
    }
}

fn state_decision_master_capable(
    d0: &ComparisonDataset,
    erbest: Option<&ComparisonDataset>,
    ebest: Option<&ComparisonDataset>,
    listening: bool,
) -> StateDecision {
    let Some(erbest) = erbest else {
        if listening {
            return StateDecision::Listening;
        }
        return match ebest {
            Some(ebest) if !compare(d0, ebest).a_wins() => StateDecision::M3,
            _ => StateDecision::M2,
        };
    };
    if (1..=127).contains(&d0.quality.clock_class) {
        return if compare(d0, erbest).a_wins() {
            StateDecision::M1
        } else {
            StateDecision::P1
        };
    }
    let ebest = ebest.unwrap_or(erbest);
    if compare(d0, ebest).a_wins() {
        return StateDecision::M2;
    }
    if ebest == erbest {
        return StateDecision::S1;
    }
    if compare(ebest, erbest) == Comparison::ABetterByTopology {
        StateDecision::P2
    } else {
        StateDecision::M3
    }
}

/// FOREIGN_MASTER_THRESHOLD: Announces needed within the window to qualify.
pub const FOREIGN_MASTER_THRESHOLD: usize = 2;
/// FOREIGN_MASTER_TIME_WINDOW, in announce intervals.
pub const FOREIGN_MASTER_TIME_WINDOW: i64 = 4;
/// The most foreign masters a table tracks.
pub const MAX_FOREIGN_MASTERS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq)]
struct ForeignMaster {
    dataset: ComparisonDataset,
    /// Receipt times (nanoseconds, monotonic) of the last Announces, newest first.
    times: [Option<i64>; FOREIGN_MASTER_THRESHOLD],
    /// Its own announce interval, nanoseconds: each master is qualified on its own
    /// Announces, so that one master's interval says nothing of another's.
    interval: i64,
}

impl ForeignMaster {
    /// FOREIGN_MASTER_TIME_WINDOW of its intervals, nanoseconds.
    fn window(&self) -> i64 {
        self.interval.saturating_mul(FOREIGN_MASTER_TIME_WINDOW)
    }

    fn is_qualified(&self, now: i64) -> bool {
        let window = self.window();
        self.times
            .iter()
            .flatten()
            .filter(|&&t| now.saturating_sub(t) <= window)
            .count()
            >= FOREIGN_MASTER_THRESHOLD
    }

    fn is_silent(&self, now: i64) -> bool {
        self.times[0].is_none_or(|t| now.saturating_sub(t) > self.window())
    }
}

/// The foreign masters one port hears (IEEE 1588-2019 9.3.2.5): a master qualifies once
/// FOREIGN_MASTER_THRESHOLD Announces from it arrived within FOREIGN_MASTER_TIME_WINDOW of
/// its announce intervals. Fixed capacity; no allocation.
#[derive(Clone, Debug)]
pub struct ForeignMasterTable {
    own_clock: ClockIdentity,
    entries: [Option<ForeignMaster>; MAX_FOREIGN_MASTERS],
}

impl ForeignMasterTable {
    /// An empty table for a port of the clock `own_clock`.
    pub fn new(own_clock: ClockIdentity) -> Self {
        Self {
            own_clock,
            entries: [None; MAX_FOREIGN_MASTERS],
        }
    }

    /// Records an Announce received at `now` (nanoseconds, monotonic) whose sender
    /// announces every `interval` nanoseconds (its logMessageInterval). Announces from this
    /// clock itself and with stepsRemoved of 255 or more are not taken (9.3.2.5); returns
    /// whether it was taken.
    ///
    /// Masters silent for FOREIGN_MASTER_TIME_WINDOW of their intervals are dropped
    /// first. When the table is still full, a newcomer takes the place of the stalest
    /// master that is not qualified, or else of the worst qualified one; the best is never
    /// given up. So a burst of Announces from made-up identities cannot keep a real master
    /// out: at the latest when they go quiet, it is heard again.
    pub fn record(&mut self, dataset: ComparisonDataset, now: i64, interval: i64) -> bool {
        if dataset.sender.clock_identity == self.own_clock || dataset.steps_removed >= 255 {
            return false;
        }
        let interval = interval.max(1);
        if let Some(entry) = self
            .entries
            .iter_mut()
            .flatten()
            .find(|e| e.dataset.sender == dataset.sender)
        {
            entry.dataset = dataset;
            entry.interval = interval;
            entry.times.rotate_right(1);
            entry.times[0] = Some(now);
            return true;
        }
        self.expire(now);
        let mut times = [None; FOREIGN_MASTER_THRESHOLD];
        times[0] = Some(now);
        let slot = match self.entries.iter().position(Option::is_none) {
            Some(free) => free,
            None => match self.victim(now) {
                Some(victim) => victim,
                None => return false,
            },
        };
        self.entries[slot] = Some(ForeignMaster {
            dataset,
            times,
            interval,
        });
        true
    }

    /// The entry a newcomer replaces in a full table: the stalest unqualified one, else the
    /// worst qualified one (never the best).
    fn victim(&self, now: i64) -> Option<usize> {
        let entries = || {
            self.entries
                .iter()
                .enumerate()
                .filter_map(|(i, e)| e.map(|e| (i, e)))
        };
        let stalest_unqualified = entries()
            .filter(|(_, e)| !e.is_qualified(now))
            .min_by_key(|(_, e)| e.times[0].unwrap_or(i64::MIN));
        if let Some((i, _)) = stalest_unqualified {
            return Some(i);
        }
        let mut worst: Option<(usize, ComparisonDataset)> = None;
        let mut count = 0;
        for (i, e) in entries() {
            count += 1;
            worst = match worst {
                Some((w, d)) if compare(&e.dataset, &d).a_wins() => Some((w, d)),
                _ => Some((i, e.dataset)),
            };
        }
        // With one master only, it is the best: keep it.
        worst.filter(|_| count > 1).map(|(i, _)| i)
    }

    /// Drops masters not heard from within FOREIGN_MASTER_TIME_WINDOW of their intervals.
    pub fn expire(&mut self, now: i64) {
        for slot in &mut self.entries {
            if slot.is_some_and(|e| e.is_silent(now)) {
                *slot = None;
            }
        }
    }

    /// Forgets one master (its port was seen to stop, or it was chosen away).
    pub fn remove(&mut self, sender: PortIdentity) {
        for slot in &mut self.entries {
            if slot.is_some_and(|e| e.dataset.sender == sender) {
                *slot = None;
            }
        }
    }

    /// The qualified masters at `now`.
    pub fn qualified(&self, now: i64) -> impl Iterator<Item = &ComparisonDataset> {
        self.entries
            .iter()
            .flatten()
            .filter(move |e| e.is_qualified(now))
            .map(|e| &e.dataset)
    }

    /// The best qualified master at `now` (Erbest).
    pub fn best(&self, now: i64) -> Option<ComparisonDataset> {
        let mut best: Option<ComparisonDataset> = None;
        for candidate in self.qualified(now) {
            best = match best {
                Some(b) if !compare(candidate, &b).a_wins() => Some(b),
                _ => Some(*candidate),
            };
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ClockAccuracy;

    fn id(n: u8) -> ClockIdentity {
        ClockIdentity([n, 0, 0, 0xFF, 0xFE, 0, 0, n])
    }

    fn port(n: u8, p: u16) -> PortIdentity {
        PortIdentity {
            clock_identity: id(n),
            port_number: p,
        }
    }

    fn ds(gm: u8, p1: u8, class: u8) -> ComparisonDataset {
        ComparisonDataset {
            priority1: p1,
            identity: id(gm),
            quality: ClockQuality {
                clock_class: class,
                clock_accuracy: ClockAccuracy::from_u8(0x21),
                offset_scaled_log_variance: 0x4E5D,
            },
            priority2: 128,
            steps_removed: 0,
            sender: port(gm, 1),
            receiver: port(200, 1),
        }
    }

    #[test]
    fn part1_every_field_in_order() {
        let base = ds(5, 128, 248);
        let better = |b: ComparisonDataset| {
            assert_eq!(compare(&b, &base), Comparison::ABetter, "{b:?}");
            assert_eq!(compare(&base, &b), Comparison::BBetter, "{b:?}");
        };
        better(ComparisonDataset {
            priority1: 127,
            identity: id(9),
            ..base
        });
        better(ComparisonDataset {
            quality: ClockQuality {
                clock_class: 6,
                ..base.quality
            },
            identity: id(9),
            ..base
        });
        better(ComparisonDataset {
            quality: ClockQuality {
                clock_accuracy: ClockAccuracy::from_u8(0x20),
                ..base.quality
            },
            identity: id(9),
            ..base
        });
        better(ComparisonDataset {
            quality: ClockQuality {
                offset_scaled_log_variance: 0x4000,
                ..base.quality
            },
            identity: id(9),
            ..base
        });
        better(ComparisonDataset {
            priority2: 1,
            identity: id(9),
            ..base
        });
        // Everything equal: the lower identity wins.
        better(ComparisonDataset {
            identity: id(1),
            ..base
        });
        // priority1 outranks clock class.
        let p1_only = ComparisonDataset {
            priority1: 1,
            quality: ClockQuality {
                clock_class: 255,
                ..base.quality
            },
            identity: id(9),
            ..base
        };
        assert_eq!(compare(&p1_only, &base), Comparison::ABetter);
    }

    #[test]
    fn part2_steps_removed_and_topology() {
        let a = ComparisonDataset {
            steps_removed: 1,
            sender: port(10, 1),
            ..ds(5, 128, 248)
        };
        // Two or more steps apart: the closer one is simply better.
        let far = ComparisonDataset {
            steps_removed: 3,
            sender: port(11, 1),
            ..a
        };
        assert_eq!(compare(&a, &far), Comparison::ABetter);
        assert_eq!(compare(&far, &a), Comparison::BBetter);
        // One step apart: decided by receiver vs sender of the farther one.
        let b = ComparisonDataset {
            steps_removed: 2,
            sender: port(11, 1),
            receiver: port(200, 1),
            ..a
        };
        // b.receiver (200) > b.sender (11): A better by topology.
        assert_eq!(compare(&a, &b), Comparison::ABetterByTopology);
        let b_low = ComparisonDataset {
            receiver: port(1, 1),
            ..b
        };
        // receiver < sender: A better.
        assert_eq!(compare(&a, &b_low), Comparison::ABetter);
        assert_eq!(compare(&b_low, &a), Comparison::BBetter);
        assert_eq!(compare(&b, &a), Comparison::BBetterByTopology);
        let looped = ComparisonDataset {
            receiver: b.sender,
            ..b
        };
        assert_eq!(compare(&a, &looped), Comparison::Error1);
        // Equal steps: the lower sender wins; then the receiving port number.
        let c = ComparisonDataset {
            sender: port(12, 1),
            ..a
        };
        assert_eq!(compare(&a, &c), Comparison::ABetterByTopology);
        assert_eq!(compare(&c, &a), Comparison::BBetterByTopology);
        let d = ComparisonDataset {
            receiver: port(200, 2),
            ..a
        };
        assert_eq!(compare(&a, &d), Comparison::ABetterByTopology);
        assert_eq!(compare(&a, &a), Comparison::Error2);
    }

    #[test]
    fn state_decisions() {
        let local = ComparisonDataset {
            sender: port(100, 1),
            receiver: port(100, 1),
            ..ds(100, 128, 248)
        };
        let better = ds(1, 100, 248);
        let worse = ds(2, 200, 248);
        assert_eq!(
            state_decision(&local, None, None, true, false),
            StateDecision::Listening
        );
        assert_eq!(
            state_decision(&local, None, None, false, false),
            StateDecision::M2
        );
        assert_eq!(
            state_decision(&local, Some(&better), Some(&better), false, false),
            StateDecision::S1
        );
        assert_eq!(
            state_decision(&local, Some(&worse), Some(&worse), false, false),
            StateDecision::M2
        );
        // A primary-class local clock: M1 or P1.
        let primary = ComparisonDataset {
            quality: ClockQuality {
                clock_class: 6,
                ..local.quality
            },
            ..local
        };
        assert_eq!(
            state_decision(&primary, Some(&worse), Some(&worse), false, false),
            StateDecision::M1
        );
        let better_primary = ComparisonDataset {
            priority1: 1,
            ..better
        };
        assert_eq!(
            state_decision(
                &primary,
                Some(&better_primary),
                Some(&better_primary),
                false,
                false
            ),
            StateDecision::P1
        );
        // The best is on another port: P2 when it beats this port's best by topology,
        // else M3.
        let elsewhere = ComparisonDataset {
            steps_removed: 1,
            sender: port(50, 1),
            receiver: port(100, 2),
            ..better
        };
        let here_same_gm = ComparisonDataset {
            steps_removed: 1,
            sender: port(60, 1),
            receiver: port(100, 1),
            ..better
        };
        assert_eq!(
            state_decision(&local, Some(&here_same_gm), Some(&elsewhere), false, false),
            StateDecision::P2
        );
        assert_eq!(
            state_decision(&local, Some(&worse), Some(&better), false, false),
            StateDecision::M3
        );
        // Slave-only clocks never become master.
        assert_eq!(
            state_decision(&local, Some(&worse), Some(&worse), false, true),
            StateDecision::Listening
        );
        assert_eq!(
            state_decision(&local, Some(&better), Some(&better), false, true),
            StateDecision::S1
        );
    }

    #[test]
    fn foreign_masters_qualify_after_two_announces_in_the_window() {
        let second = 1_000_000_000i64;
        let mut table = ForeignMasterTable::new(id(100));
        let m1 = ds(1, 128, 248);
        let m2 = ds(2, 100, 248);
        assert!(table.record(m1, 0, second));
        assert_eq!(table.best(0), None, "one Announce does not qualify");
        assert!(table.record(m1, second, second));
        assert_eq!(table.best(second), Some(m1));
        // m2 is better but not yet qualified.
        table.record(m2, second, second);
        assert_eq!(table.best(second), Some(m1));
        table.record(m2, 2 * second, second);
        assert_eq!(table.best(2 * second), Some(m2));
        // m2 goes quiet: after the window it no longer qualifies and m1 is best again.
        table.record(m1, 6 * second, second);
        table.record(m1, 7 * second, second);
        assert_eq!(table.best(7 * second), Some(m1));
        table.expire(7 * second);
        assert_eq!(table.qualified(7 * second).count(), 1);
        // Our own Announces and 255 steps are not taken.
        let own = ComparisonDataset {
            sender: port(100, 1),
            ..m1
        };
        assert!(!table.record(own, 0, second));
        assert!(!table.record(
            ComparisonDataset {
                steps_removed: 255,
                sender: port(3, 1),
                ..m1
            },
            0,
            second
        ));
        table.remove(m1.sender);
        assert_eq!(table.best(7 * second), None);
    }

    #[test]
    fn sixteen_spoofed_masters_sent_once_do_not_lock_the_real_one_out() {
        let second = 1_000_000_000i64;
        let mut table = ForeignMasterTable::new(id(100));
        // Sixteen made-up identities, one Announce each, all better than the real one.
        for n in 0..MAX_FOREIGN_MASTERS as u8 {
            table.record(ds(200 + n, 10, 6), 0, second);
        }
        let real = ds(1, 128, 248);
        for k in 1..=2 {
            table.record(real, k * second, second);
        }
        assert_eq!(table.best(2 * second), Some(real));
    }

    #[test]
    fn a_full_table_of_qualified_masters_gives_up_the_worst_never_the_best() {
        let second = 1_000_000_000i64;
        let mut table = ForeignMasterTable::new(id(100));
        let best = ds(1, 1, 6);
        for n in 0..MAX_FOREIGN_MASTERS as u8 {
            let m = if n == 0 {
                best
            } else {
                ds(10 + n, 100 + n, 248)
            };
            table.record(m, 0, second);
            table.record(m, second / 2, second);
        }
        let worst = ds(
            10 + MAX_FOREIGN_MASTERS as u8 - 1,
            100 + MAX_FOREIGN_MASTERS as u8 - 1,
            248,
        );
        assert!(table.qualified(second).any(|d| *d == worst));
        // A newcomer takes the worst's place; the best stays best.
        assert!(table.record(ds(99, 50, 248), second, second));
        assert!(!table.qualified(second).any(|d| *d == worst));
        assert_eq!(table.best(second), Some(best));
        // Masters silent for the window make room on their own.
        let mut table = ForeignMasterTable::new(id(100));
        for n in 0..MAX_FOREIGN_MASTERS as u8 {
            table.record(ds(10 + n, 100, 248), 0, second);
        }
        let late = ds(1, 128, 248);
        assert!(table.record(late, 5 * second, second));
        assert!(table.record(late, 6 * second, second));
        assert_eq!(table.best(6 * second), Some(late));
        assert_eq!(table.qualified(6 * second).count(), 1);
    }

    #[test]
    fn compare_is_antisymmetric_for_different_grandmasters() {
        for p1 in [0u8, 127, 128, 255] {
            for class in [6u8, 7, 248, 255] {
                let a = ds(1, p1, class);
                let b = ds(2, 128, 248);
                let ab = compare(&a, &b);
                let ba = compare(&b, &a);
                assert_ne!(ab.a_wins(), ba.a_wins());
            }
        }
    }
}
