//! The system side of an NTP client: selection over the sources, the discipline, and the
//! state a server built on it passes downstream. Sans-IO.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use tempora_clock_discipline::{
    BoundConfig, BoundTracker, BoundUpdate, Discipline, DisciplineConfig, DisciplineError,
    DisciplineInput, FrequencyState, RfcConfig, RfcDiscipline,
};
use tempora_clock_filter::{
    Candidate, CandidateVerdict, SelectionConfig, SelectionError, SelectionMark, SystemEstimate,
    select,
};
use tempora_clock_types::{
    ActionList, ClockAction, ClockCorrection, ErrorBound, Leap, LocalInstant,
};
use tempora_ntp_proto::{
    LeapIndicator, Log2Seconds, NtpShort, NtpTimestamp, ReferenceId, ServerState, Stratum,
};

use crate::refclock::RefclockSource;
use crate::source::{NtpSource, NtsRandomness, ResponseOutcome};

/// The frequency error assumed of a clock nobody steers before a frequency is measured,
/// ppm: the most an oscillator the kernel accepts may be off.
const MAX_UNSTEERED_PPM: f64 = 500.0;

/// The frequency error the RFC discipline's bound assumes, ppm (RFC 5905's PHI).
const RFC_FREQUENCY_ERROR_PPM: f64 = 15.0;

/// How a leap second is taken (chrony's `leapsecmode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum LeapMode {
    /// The kernel inserts or deletes the second at midnight (STA_INS/STA_DEL).
    #[default]
    Kernel,
    /// The clock is stepped by the second at midnight.
    Step,
    /// The second is slewed away after midnight at the fastest slew rate.
    Slew,
}

/// Events kept for [`NtpSystem::poll_event`] at most; older ones are dropped first, so a
/// caller that never polls does not grow memory.
const MAX_EVENTS: usize = 64;

/// A request to send: [`Self::len`] bytes of the buffer given to
/// [`NtpSystem::poll_transmit`], to source [`Self::source`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// The source's index (configuration order).
    pub source: usize,
    /// Bytes written.
    pub len: usize,
}

/// What happened, for logs, metrics and status.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SystemEvent {
    /// What an answer from source `source` came to.
    Response {
        /// The source's index.
        source: usize,
        /// The outcome.
        outcome: ResponseOutcome,
    },
    /// A reference clock was read (`measured: false` when the reading failed).
    Reading {
        /// The reference clock's index among the reference clocks.
        refclock: usize,
        /// Whether the reading became a measurement.
        measured: bool,
    },
    /// Selection and the discipline ran: the new system estimate.
    Updated(SystemEstimate),
    /// Selection or the discipline ran and gave nothing (too few sources, waiting for
    /// the first answers, a step refused).
    NotUpdated(SystemError),
}

/// Which discipline steers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DisciplineKind {
    /// The default discipline.
    Default(DisciplineConfig),
    /// The RFC 5905 PLL/FLL (reference).
    Rfc(RfcConfig),
}

/// System settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SystemConfig {
    /// Selection settings.
    pub selection: SelectionConfig,
    /// The discipline.
    pub discipline: DisciplineKind,
    /// Measure and report, never steer.
    pub observe_only: bool,
    /// How many sources must agree before the running clock is stepped.
    pub step_quorum: StepQuorum,
}

impl Default for SystemConfig {
    fn default() -> Self {
        Self {
            selection: SelectionConfig::default(),
            discipline: DisciplineKind::Default(DisciplineConfig::default()),
            observe_only: false,
            step_quorum: StepQuorum::Majority,
        }
    }
}

/// How many sources must agree on an offset before a step after startup (at startup any
/// selected answer may set the clock). Slews need no quorum: they move the clock at most
/// the discipline's slew rate (500 ppm, 1.8 s an hour).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StepQuorum {
    /// More than half of the configured sources (servers, pool slots and reference
    /// clocks) must be truechimers of the selection: an attacker who blocks the others
    /// and answers for one cannot step a running clock. With one source configured, that
    /// one is enough.
    #[default]
    Majority,
    /// Any selected source will do (chrony's and ntpd's behaviour).
    Any,
    // `DisciplineKind::Rfc` follows RFC 5905's state machine as written and takes no
    // quorum.
}

/// Why an update produced no clock actions.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SystemError {
    /// No system estimate.
    #[error("selection: {0}")]
    Selection(#[from] SelectionError),
    /// The discipline refused.
    #[error("discipline: {0}")]
    Discipline(#[from] DisciplineError),
    /// Waiting for every source's first answer (or missed polls) before selecting.
    #[error("waiting for the first answers of every source")]
    Starting,
}

enum Steering {
    Default(Discipline),
    Rfc(RfcDiscipline),
}

/// The sources, the selection and the discipline: an NTP client.
///
/// - getters: [`Self::sources`], [`Self::refclocks`], [`Self::estimate`],
///   [`Self::frequency_ppm`], [`Self::last_update`], [`Self::updates`], [`Self::verdicts`],
///   [`Self::server_state`];
/// - `handle_*`, input, each with `now`: [`Self::handle_timeout`],
///   [`Self::handle_transmit_timestamp`], [`Self::handle_response`],
///   [`Self::handle_refclock_reading`];
/// - mutators: [`Self::reset_source`], [`Self::set_observe_only`],
///   [`Self::handle_action_refused`] (the clock refused an action: its correction is taken
///   back);
/// - `poll_*`, output: [`Self::poll_transmit`], [`Self::poll_action`], [`Self::poll_event`],
///   [`Self::poll_timeout`].
///
/// After every `handle_*` call, drain `poll_transmit` (send each request to its source),
/// `poll_action` (apply each to the clock, in order) and `poll_event`; then wait until
/// `poll_timeout` or the next datagram. Selection indices (the system peer,
/// [`Self::verdicts`]) count the NTP sources first, then the reference clocks.
pub struct NtpSystem {
    sources: Vec<NtpSource>,
    refclocks: Vec<RefclockSource>,
    config: SystemConfig,
    steering: Steering,
    verdicts: Vec<CandidateVerdict>,
    previous_peer: Option<usize>,
    estimate: Option<SystemEstimate>,
    frequency_ppm: f64,
    /// The frequency before the last one set, to take a refused one back.
    frequency_before: f64,
    last_update: Option<LocalInstant>,
    updates: u64,
    actions: VecDeque<ClockAction>,
    events: VecDeque<SystemEvent>,
    /// The next source [`Self::poll_transmit`] looks at (round robin).
    next_transmit: usize,
    /// The bound on the clock's error, kept from update to update.
    bound: BoundTracker,
    /// Near a leap second: smeared and unsmeared sources are not combined.
    leap_window: bool,
    /// The base frequency's recent changes, ppm (a ring).
    frequency_changes: [f64; FREQUENCY_HISTORY],
    frequency_change_next: usize,
}

/// Updates whose frequency changes measure the walk.
const FREQUENCY_HISTORY: usize = 8;
/// How far, in steps of its walk, the estimator's frequency may lag a walking one: the
/// regression fits a line through up to 32 exchanges, and trails a random walk by about
/// √32 ≈ 6 of its per-update steps in RMS. 8 is the smallest factor that held the
/// simulator's wandering oscillator (5 left five seconds of 17874 outside the bound).
const WALK_LAG: f64 = 8.0;
/// The largest change taken for a step of the walk, ppm.
const WALK_MAX_PPM: f64 = 10.0;

impl NtpSystem {
    /// A system over `sources`, starting from the frequency the clock has now.
    pub fn new(sources: Vec<NtpSource>, config: SystemConfig, frequency_ppm: f64) -> Self {
        Self::with_refclocks(sources, Vec::new(), config, frequency_ppm)
    }

    /// A system over NTP sources and reference clocks.
    pub fn with_refclocks(
        sources: Vec<NtpSource>,
        refclocks: Vec<RefclockSource>,
        config: SystemConfig,
        frequency_ppm: f64,
    ) -> Self {
        let steering = match config.discipline {
            DisciplineKind::Default(c) => {
                let (d, _) = Discipline::with_frequency(
                    c,
                    FrequencyState {
                        ppm: frequency_ppm,
                        error_ppm: c.max_frequency_ppm,
                    },
                );
                Steering::Default(d)
            }
            DisciplineKind::Rfc(c) => {
                Steering::Rfc(RfcDiscipline::new(c, Some(frequency_ppm), 1e-7))
            }
        };
        let verdicts = vec![CandidateVerdict::None; sources.len() + refclocks.len()];
        Self {
            sources,
            refclocks,
            config,
            steering,
            verdicts,
            previous_peer: None,
            estimate: None,
            frequency_ppm,
            frequency_before: frequency_ppm,
            last_update: None,
            updates: 0,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            next_transmit: 0,
            bound: BoundTracker::new(BoundConfig::default()),
            leap_window: false,
            frequency_changes: [0.0; FREQUENCY_HISTORY],
            frequency_change_next: 0,
        }
    }

    /// Declares source `index` as serving smeared time (see [`NtpSource::set_smeared`]).
    pub fn set_source_smeared(&mut self, index: usize, smeared: bool) {
        if let Some(s) = self.sources.get_mut(index) {
            s.set_smeared(smeared);
        }
    }

    /// Whether it is near a leap second now (the caller knows UTC and the leap: a day
    /// either side covers every smear in use). Within it, smeared and unsmeared sources
    /// are never combined: of the two kinds, the one with more usable sources is
    /// selected from alone, the unsmeared on a tie, and the others are left out as if
    /// unreachable. Reference clocks count as unsmeared. Outside it, all combine as
    /// usual (a smear is then zero).
    pub fn set_leap_window(&mut self, in_window: bool) {
        self.leap_window = in_window;
    }

    /// Sets how the error bound is computed ([`Self::error_bound`]); the bound so far is
    /// kept until the next update.
    pub fn set_bound_config(&mut self, config: BoundConfig) {
        let mut tracker = BoundTracker::new(config);
        if self.bound.bound(LocalInstant(0), 0.0, f64::INFINITY).status
            != tempora_clock_types::ClockStatus::Unknown
        {
            // An anchor cannot be carried over with other terms: wait for the next update.
            tracker.disrupt();
        }
        self.bound = tracker;
    }

    /// The bound on the clock's error at `now`: what the last update measured (its
    /// standard error times the confidence, half the root delay, the root dispersion), the
    /// part of its offset not yet corrected, and the drift allowance times the time
    /// since. FreeRunning after eight poll intervals of the system peer without an update;
    /// Disrupted from a disruption ([`Self::handle_disruption`], a refused correction, an
    /// update that finds the clock outside the bound it had) to the next update.
    pub fn error_bound(&self, now: LocalInstant) -> ErrorBound {
        let remaining = self.correction_remaining(now);
        let poll = self
            .estimate
            .and_then(|e| self.sources.get(e.system_peer))
            .map_or(6, NtpSource::poll);
        let free_running_after = 8.0 * f64::from(1u32 << poll.clamp(0, 17));
        self.bound.bound(now, remaining, free_running_after)
    }

    /// The part of the last offset correction still to be made at `now`, seconds (what
    /// chronyc calls the system time's offset); zero when observing only.
    pub fn correction_remaining(&self, now: LocalInstant) -> f64 {
        if self.config.observe_only {
            return 0.0;
        }
        match &self.steering {
            Steering::Default(d) => d.correction_remaining(now),
            Steering::Rfc(r) => r.offset_remaining(),
        }
    }

    /// A leap second happens now (the caller's clock reached the midnight it was
    /// announced for), taken as `mode` says: `Step` steps the clock by a second (back
    /// for an inserted one), `Slew` removes the second by slewing at the fastest slew
    /// rate (the samples are carried across the sources' own step). `Kernel` does
    /// nothing here: the kernel inserted or deleted the second itself.
    pub fn handle_leap(&mut self, leap: Leap, mode: LeapMode, now: LocalInstant) {
        let second = match leap {
            Leap::Insert => -1.0,
            Leap::Delete => 1.0,
            _ => return,
        };
        if self.config.observe_only {
            return;
        }
        match mode {
            LeapMode::Kernel => {}
            LeapMode::Step => {
                // The sources stepped the same second: offsets stay as they were, so the
                // samples are not carried.
                self.actions.push_back(ClockAction::Step { offset: second });
            }
            LeapMode::Slew => {
                // The sources stepped and this clock has not: to the samples it is as
                // if this clock had stepped the other way; the slew then takes it back.
                self.correct_samples(ClockCorrection::Step {
                    offset: -second,
                    at: now,
                });
                if let Steering::Default(d) = &mut self.steering {
                    let actions = d.begin_correction(second, now);
                    self.carry(&actions, now);
                    self.actions.extend(actions.iter().copied());
                }
            }
        }
    }

    /// Disruptions of the clock found so far (see [`Self::error_bound`]).
    pub fn disruptions(&self) -> u64 {
        self.bound.disruptions()
    }

    /// The clock was disturbed behind this system's back (stepped by another program, a
    /// VM snapshot reverted, found by the caller): the error bound reads Disrupted until
    /// the next update.
    pub fn handle_disruption(&mut self) {
        self.bound.disrupt();
    }

    /// The NTP sources, in configuration order.
    pub fn sources(&self) -> &[NtpSource] {
        &self.sources
    }

    /// The reference clocks; in selection indices they follow the sources.
    pub fn refclocks(&self) -> &[RefclockSource] {
        &self.refclocks
    }

    /// Starts source `index` afresh at `now` (the address behind its name changed): its
    /// samples, reach and poll interval go; it polls at once. Out of range: nothing.
    pub fn reset_source(&mut self, index: usize, now: LocalInstant) {
        if let Some(s) = self.sources.get_mut(index) {
            *s = NtpSource::new(s.config(), now);
        }
    }

    fn push_event(&mut self, event: SystemEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// The next thing that happened, oldest first.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SystemEvent> {
        self.events.pop_front()
    }

    /// The next action to apply to the clock, in order. Their corrections are already
    /// carried into every source's samples.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<ClockAction> {
        self.actions.pop_front()
    }

    /// The next request to send, written into `buf` ([`crate::MAX_REQUEST_LEN`] takes any;
    /// a plain request is [`crate::REQUEST_LEN`]
    /// bytes), and the source it goes to. Report when it left with
    /// [`Self::handle_transmit_timestamp`].
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let n = self.sources.len();
        for k in 0..n {
            let i = (self.next_transmit + k) % n;
            if let Some(len) = self.sources[i].poll_transmit(buf) {
                self.next_transmit = (i + 1) % n;
                return Some(Transmit { source: i, len });
            }
        }
        None
    }

    /// Installs an NTS association (from a key exchange) for source `index`.
    pub fn set_source_nts(&mut self, index: usize, client: crate::nts::NtsClient) {
        if let Some(s) = self.sources.get_mut(index) {
            s.set_nts(client);
        }
    }

    /// The kernel's transmit timestamp of source `index`'s request: T1 made exact.
    pub fn handle_transmit_timestamp(&mut self, index: usize, t1: NtpTimestamp) {
        if let Some(s) = self.sources.get_mut(index) {
            s.handle_transmit_timestamp(t1);
        }
    }

    /// Takes a datagram from source `index` that arrived when the local clock read `t4`,
    /// at `now`. A new measurement runs the selection and the discipline.
    pub fn handle_response(
        &mut self,
        index: usize,
        bytes: &[u8],
        t4: NtpTimestamp,
        now: LocalInstant,
    ) {
        let Some(source) = self.sources.get_mut(index) else {
            return;
        };
        source.handle_response(bytes, t4, now);
        let Some(outcome) = source.poll_event() else {
            return;
        };
        self.push_event(SystemEvent::Response {
            source: index,
            outcome,
        });
        if matches!(outcome, ResponseOutcome::Measured(_)) {
            self.run_update(now);
        }
    }

    /// Takes a reading of reference clock `index` at `now` (see
    /// [`RefclockSource::handle_reading`]); a measurement runs the selection and the
    /// discipline. Read it when its [`RefclockSource::poll_timeout`] is due.
    pub fn handle_refclock_reading(
        &mut self,
        index: usize,
        now: LocalInstant,
        reading: Option<(f64, f64)>,
    ) {
        let Some(refclock) = self.refclocks.get_mut(index) else {
            return;
        };
        let measured = refclock.handle_reading(now, reading).is_some();
        self.push_event(SystemEvent::Reading {
            refclock: index,
            measured,
        });
        if measured {
            self.run_update(now);
        }
    }

    fn run_update(&mut self, now: LocalInstant) {
        match self.update(now) {
            Ok(actions) => {
                self.actions.extend(actions.iter().copied());
                if let Some(e) = self.estimate {
                    self.push_event(SystemEvent::Updated(e));
                }
            }
            Err(e) => self.push_event(SystemEvent::NotUpdated(e)),
        }
    }

    /// The last system estimate.
    pub fn estimate(&self) -> Option<SystemEstimate> {
        self.estimate
    }

    /// The frequency correction set now, ppm.
    pub fn frequency_ppm(&self) -> f64 {
        self.frequency_ppm
    }

    /// Time of the last update.
    pub fn last_update(&self) -> Option<LocalInstant> {
        self.last_update
    }

    /// Number of successful updates.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// The verdicts of the last selection, one per source.
    pub fn verdicts(&self) -> &[CandidateVerdict] {
        &self.verdicts
    }

    /// When [`Self::handle_timeout`] wants to run: the next source's poll, the next
    /// reference clock reading, the end of an offset correction or the RFC discipline's
    /// once-a-second tick.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<LocalInstant> {
        let discipline = if self.config.observe_only {
            None
        } else {
            self.discipline_timeout()
        };
        self.sources
            .iter()
            .filter_map(NtpSource::poll_timeout)
            .chain(self.refclocks.iter().map(RefclockSource::poll_timeout))
            .chain(discipline)
            .min()
    }

    fn discipline_timeout(&self) -> Option<LocalInstant> {
        match &self.steering {
            Steering::Default(d) => d.poll_timeout(),
            Steering::Rfc(r) => r.poll_timeout(),
        }
    }

    /// Runs what is due at `now`: every source whose poll is due makes its request
    /// (`local` is the local clock's reading, `random` gives each request's nonce: use a
    /// cryptographic source; where it gives `None` the source does not poll, as a
    /// guessable nonce would let an off-path attacker forge answers), and the discipline's
    /// timer runs. Reference clocks are read by the caller
    /// ([`Self::handle_refclock_reading`]).
    pub fn handle_timeout(
        &mut self,
        now: LocalInstant,
        local: NtpTimestamp,
        mut random: impl FnMut() -> Option<u64>,
    ) {
        for source in &mut self.sources {
            if source.poll_timeout().is_some_and(|t| t <= now) {
                let Some(nonce) = random() else { continue };
                let nts = if source.config().nts {
                    // A Unique Identifier and an AEAD nonce: six more draws.
                    let mut bytes = [0u8; 48];
                    let mut ok = true;
                    for chunk in bytes.chunks_exact_mut(8) {
                        match random() {
                            Some(v) => chunk.copy_from_slice(&v.to_le_bytes()),
                            None => ok = false,
                        }
                    }
                    ok.then(|| {
                        let mut r = NtsRandomness {
                            uid: [0; 32],
                            nonce: [0; 16],
                        };
                        r.uid.copy_from_slice(&bytes[..32]);
                        r.nonce.copy_from_slice(&bytes[32..]);
                        r
                    })
                } else {
                    None
                };
                let _made = source.handle_timeout_nts(now, local, nonce, nts);
            }
        }
        if self.config.observe_only || self.discipline_timeout().is_none_or(|t| t > now) {
            return;
        }
        let actions = match &mut self.steering {
            Steering::Default(d) => d.handle_timeout(now),
            Steering::Rfc(r) => r.tick(now),
        };
        self.carry(&actions, now);
        self.actions.extend(actions.iter().copied());
    }

    /// Runs selection and the discipline after new measurements. At start it waits until
    /// every source has answered or missed its first polls: selecting on the first answer
    /// alone would follow whichever server spoke first, liar or not.
    fn update(&mut self, now: LocalInstant) -> Result<ActionList, SystemError> {
        if self.updates == 0
            && !(self.sources.iter().all(NtpSource::is_settled)
                && self.refclocks.iter().all(RefclockSource::is_settled))
        {
            return Err(SystemError::Starting);
        }
        let total = self.sources.len() + self.refclocks.len();
        let mut candidates: Vec<Candidate> = Vec::with_capacity(total);
        let mut index = Vec::with_capacity(total);
        let offered = self
            .sources
            .iter()
            .map(|s| s.candidate(now))
            .chain(self.refclocks.iter().map(|r| r.candidate(now)));
        for (i, c) in offered.enumerate() {
            if let Some(c) = c {
                candidates.push(c);
                index.push(i);
            }
        }
        if self.leap_window {
            // Never half-way between a smeared and an unsmeared clock near a leap.
            let n_sources = self.sources.len();
            let smeared =
                |i: usize| i < n_sources && self.sources.get(i).is_some_and(NtpSource::smeared);
            let count = index.iter().filter(|&&i| smeared(i)).count();
            let keep_smeared = count * 2 > index.len();
            let mut k = 0;
            while k < index.len() {
                if smeared(index[k]) == keep_smeared {
                    k += 1;
                } else {
                    index.remove(k);
                    candidates.remove(k);
                }
            }
        }
        self.verdicts.resize(total, CandidateVerdict::None);
        let mut verdicts = vec![CandidateVerdict::None; candidates.len()];
        let previous = self
            .previous_peer
            .and_then(|p| index.iter().position(|&i| i == p));
        let result = select(
            &candidates,
            &mut verdicts,
            previous,
            &self.config.selection,
            now,
        );
        self.verdicts.fill(CandidateVerdict::None);
        for (v, &i) in verdicts.iter().zip(&index) {
            self.verdicts[i] = *v;
        }
        let verdicts = &self.verdicts;
        let mark = |i: usize, reachable: bool| {
            if reachable {
                SelectionMark::from(verdicts[i])
            } else {
                SelectionMark::Unreachable
            }
        };
        let n = self.sources.len();
        for (i, source) in self.sources.iter_mut().enumerate() {
            source.set_mark(mark(i, source.reach().is_reachable()));
        }
        for (i, refclock) in self.refclocks.iter_mut().enumerate() {
            refclock.set_mark(mark(n + i, refclock.reach().is_reachable()));
        }
        let estimate = result?;
        let peer = index[estimate.system_peer];
        self.previous_peer = Some(peer);
        self.estimate = Some(SystemEstimate {
            system_peer: peer,
            ..estimate
        });
        let peer_candidate = candidates[estimate.system_peer];
        // The exchanges that just came in, from sources that survived selection.
        let sample = self
            .sources
            .iter()
            .zip(&self.verdicts)
            .filter(|(_, v)| matches!(v, CandidateVerdict::SystemPeer | CandidateVerdict::Combined))
            .filter_map(|(s, _)| s.last_measurement())
            .filter(|m| m.time <= now && now.seconds_since(m.time) < 1.0)
            .map(|m| {
                let half_width =
                    m.delay / 2.0 + m.dispersion + m.root_delay / 2.0 + m.root_dispersion;
                (m.offset, half_width)
            })
            // Every survivor's interval holds the truth if selection is right: the one
            // that bounds the estimate's error most tightly.
            .min_by(|a, b| {
                let gap = |(o, h): &(f64, f64)| (o - estimate.offset).abs() + h;
                gap(a).total_cmp(&gap(b))
            });
        let measured =
            |frequency_error_ppm: f64, frequency_walk_ppm: f64, corrected: bool| BoundUpdate {
                offset: estimate.offset,
                // The system jitter: the system peer's own and the survivors' spread.
                offset_error: estimate.jitter,
                // To the primary reference and back: the server's root delay and ours to it.
                root_delay: estimate.root_delay,
                // What the server says of its own error, and our sample's (precision, the
                // estimate's standard error). The announced root dispersion also carries the
                // jitter, the offset and RFC 5905's 15 ppm aging; the bound has terms of its
                // own for those.
                root_dispersion: peer_candidate.root_dispersion + peer_candidate.dispersion,
                frequency_error_ppm,
                frequency_walk_ppm,
                sample,
                corrected,
            };
        if self.config.observe_only {
            // Nothing corrects the clock: its whole offset and frequency error stay.
            let drift_ppm = estimate
                .frequency
                .map_or(MAX_UNSTEERED_PPM, |(f, e)| (f.abs() + e.abs()) * 1e6);
            self.bound
                .update(&measured(drift_ppm, 0.0, false), now, 0.0);
            self.last_update = Some(now);
            self.updates += 1;
            return Ok(ActionList::new());
        }
        let agreeing = self
            .verdicts
            .iter()
            .filter(|v| {
                matches!(
                    v,
                    CandidateVerdict::SystemPeer
                        | CandidateVerdict::Combined
                        | CandidateVerdict::Outlier
                )
            })
            .count();
        let step_quorum = match self.config.step_quorum {
            StepQuorum::Majority => agreeing > total / 2,
            StepQuorum::Any => true,
        };
        let (remaining_before, frequency_error_ppm) = match &self.steering {
            Steering::Default(d) => (d.correction_remaining(now), d.frequency_error_ppm()),
            Steering::Rfc(r) => (r.offset_remaining(), RFC_FREQUENCY_ERROR_PPM),
        };
        let result = match &mut self.steering {
            Steering::Default(d) => d.update(
                &DisciplineInput {
                    offset: estimate.offset,
                    offset_error: estimate.jitter,
                    frequency: estimate.frequency,
                    root_distance: peer_candidate.root_distance(now),
                    step_quorum,
                },
                now,
            ),
            Steering::Rfc(r) => r.update(estimate.offset, now),
        };
        let mut walk = 0.0;
        let frequency_error_ppm = match &self.steering {
            Steering::Default(d) => {
                let change = d.frequency_change_ppm();
                // The walk of a settled frequency: the large moves while it settles are
                // the frequency error's business, not the walk's.
                if result.is_ok() && change.abs() <= WALK_MAX_PPM {
                    self.frequency_changes[self.frequency_change_next % FREQUENCY_HISTORY] = change;
                    self.frequency_change_next += 1;
                }
                // A frequency that walks: the estimator, fitting a line through the
                // last several exchanges, lags it by about the walk over them.
                let seen = self.frequency_change_next.min(FREQUENCY_HISTORY);
                if seen >= 4 {
                    let squares: f64 = self.frequency_changes[..seen].iter().map(|c| c * c).sum();
                    walk = WALK_LAG * libm::sqrt(squares / seen as f64);
                }
                d.frequency_error_ppm().max(change.abs())
            }
            Steering::Rfc(_) => frequency_error_ppm,
        };
        // A refused correction (a step beyond the panic threshold, say) leaves the whole
        // offset on the clock.
        self.bound.update(
            &measured(frequency_error_ppm, walk, result.is_ok()),
            now,
            remaining_before,
        );
        let actions = result?;
        self.carry(&actions, now);
        self.last_update = Some(now);
        self.updates += 1;
        Ok(actions)
    }

    /// Tells every source of the corrections the actions make.
    fn carry(&mut self, actions: &ActionList, now: LocalInstant) {
        for action in actions {
            if let Some(correction) = action.correction(self.frequency_ppm, now) {
                self.correct_samples(correction);
            }
            if let ClockAction::SetFrequency { ppm } = action {
                self.frequency_before = self.frequency_ppm;
                self.frequency_ppm = *ppm;
            }
        }
    }

    fn correct_samples(&mut self, correction: ClockCorrection) {
        for source in &mut self.sources {
            source.apply_correction(correction);
        }
        for refclock in &mut self.refclocks {
            refclock.apply_correction(correction);
        }
    }

    /// The clock refused `action` (an EPERM the process could not foresee, say): its
    /// correction, already carried into every source's samples when the action was
    /// given, is taken back, so that offsets, frequency and what a server built on this
    /// system passes on stay true. Call it for each refused action, in the order given;
    /// [`Self::set_observe_only`] usually follows.
    pub fn handle_action_refused(&mut self, action: ClockAction, now: LocalInstant) {
        if action.correction(self.frequency_ppm, now).is_some() {
            // The correction the bound counts on was not made.
            self.bound.disrupt();
        }
        match action {
            ClockAction::Step { offset } | ClockAction::Slew { offset } => {
                self.correct_samples(ClockCorrection::Step {
                    offset: -offset,
                    at: now,
                });
            }
            ClockAction::SetFrequency { ppm } if ppm == self.frequency_ppm => {
                let back = self.frequency_before;
                self.correct_samples(ClockCorrection::Frequency {
                    delta: (back - ppm) * 1e-6,
                    at: now,
                });
                self.frequency_ppm = back;
            }
            _ => {}
        }
    }

    /// Measures and reports only from now on (or steers again): no actions are given,
    /// and those still queued are dropped.
    pub fn set_observe_only(&mut self, observe_only: bool) {
        if observe_only && !self.config.observe_only {
            // A correction under way stops: the bound assumed it would finish.
            self.bound.disrupt();
        }
        self.config.observe_only = observe_only;
        if observe_only {
            self.actions.clear();
        }
    }

    /// What a server built on this system says about its clock: stratum one below the
    /// system peer, its reference ID, the root delay and dispersion passed on;
    /// unsynchronised (leap 3, stratum 16) without an estimate.
    /// `peer_reference_id` gives the reference ID of a source (its address), which only
    /// the caller knows; indices past the NTP sources are reference clocks.
    pub fn server_state(
        &self,
        precision: Log2Seconds,
        reference_time: NtpTimestamp,
        peer_reference_id: impl Fn(usize) -> ReferenceId,
    ) -> ServerState {
        let Some(est) = self.estimate else {
            return ServerState {
                precision,
                ..ServerState::UNSYNCHRONIZED
            };
        };
        let leap = match est.leap {
            Leap::Insert => LeapIndicator::InsertSecond,
            Leap::Delete => LeapIndicator::DeleteSecond,
            _ => LeapIndicator::NoWarning,
        };
        ServerState {
            leap,
            stratum: Stratum(est.stratum.min(16)),
            precision,
            root_delay: NtpShort::from_seconds_f64(est.root_delay),
            root_dispersion: NtpShort::from_seconds_f64(est.root_dispersion),
            reference_id: peer_reference_id(est.system_peer),
            reference_timestamp: reference_time,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SourceConfig;
    use tempora_ntp_proto::{NtpHeader, server_response};

    /// NTP time at `seconds` into a run.
    fn ts(seconds: f64) -> NtpTimestamp {
        NtpTimestamp::from_bits((0xEC00_0000u64 << 32) + (seconds * 4_294_967_296.0) as u64)
    }

    fn system(n: usize, observe_only: bool) -> NtpSystem {
        let sources = (0..n)
            .map(|_| NtpSource::new(SourceConfig::default(), LocalInstant(0)))
            .collect();
        let config = SystemConfig {
            observe_only,
            ..SystemConfig::default()
        };
        NtpSystem::new(sources, config, 0.0)
    }

    /// Every request the system wants sent now, answered by a server `offset` seconds
    /// ahead over a 2 ms round trip.
    fn answer_all(s: &mut NtpSystem, at: f64, offset: f64) -> Vec<usize> {
        let mut buf = [0u8; 48];
        let mut asked = Vec::new();
        while let Some(t) = s.poll_transmit(&mut buf) {
            asked.push(t.source);
            let request = NtpHeader::parse_bytes(&buf[..t.len]).unwrap();
            let state = ServerState {
                stratum: Stratum(1),
                leap: LeapIndicator::NoWarning,
                ..ServerState::UNSYNCHRONIZED
            };
            let server = ts(at + 0.001 + offset);
            let reply = server_response(&request, &state, server, server).unwrap();
            s.handle_transmit_timestamp(t.source, ts(at));
            let now = LocalInstant::from_seconds_f64(at + 0.002);
            s.handle_response(t.source, &reply.to_bytes(), ts(at + 0.002), now);
        }
        asked
    }

    fn events(s: &mut NtpSystem) -> Vec<SystemEvent> {
        core::iter::from_fn(|| s.poll_event()).collect()
    }

    #[test]
    fn every_due_source_sends_and_the_answers_make_an_estimate() {
        let mut s = system(3, true);
        s.handle_timeout(LocalInstant(0), ts(0.0), || Some(7));
        assert_eq!(answer_all(&mut s, 0.0, 0.010), vec![0, 1, 2]);
        let ev = events(&mut s);
        let responses = ev
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    SystemEvent::Response {
                        outcome: ResponseOutcome::Measured(_),
                        ..
                    }
                )
            })
            .count();
        assert_eq!(responses, 3, "{ev:?}");
        // The first two answers wait for the third (selection waits for every source).
        assert!(
            ev.iter()
                .any(|e| matches!(e, SystemEvent::NotUpdated(SystemError::Starting)))
        );
        let Some(SystemEvent::Updated(e)) = ev.last().copied() else {
            panic!("{ev:?}")
        };
        assert!((e.offset - 0.010).abs() < 1e-4, "{e:?}");
        assert_eq!(s.poll_action(), None, "observe-only: nothing to apply");
        // Nothing more is due until the burst's next poll, two seconds on.
        let next = s.poll_timeout().unwrap();
        assert!(
            (next.seconds_since(LocalInstant(0)) - 2.0).abs() < 1e-6,
            "{next:?}"
        );
    }

    #[test]
    fn without_randomness_no_request_leaves() {
        let mut s = system(2, true);
        s.handle_timeout(LocalInstant(0), ts(0.0), || None);
        assert_eq!(s.poll_transmit(&mut [0u8; 48]), None);
        // Still due: it polls once randomness is back.
        assert_eq!(s.poll_timeout(), Some(LocalInstant(0)));
        s.handle_timeout(LocalInstant(0), ts(0.0), || Some(9));
        assert!(s.poll_transmit(&mut [0u8; 48]).is_some());
    }

    /// Runs `s` for `seconds` with a local clock that obeys the actions: `offset(source,
    /// t)` is what each source answers (`None`: silent). Returns the steps taken.
    fn run_answering(
        s: &mut NtpSystem,
        from: f64,
        seconds: f64,
        local_behind: &mut f64,
        offset: impl Fn(usize, f64) -> Option<f64>,
    ) -> Vec<f64> {
        let mut steps = Vec::new();
        let mut buf = [0u8; 48];
        let mut at = from;
        while at < from + seconds {
            let now = LocalInstant::from_seconds_f64(at);
            s.handle_timeout(now, ts(at), || Some(17));
            while let Some(t) = s.poll_transmit(&mut buf) {
                let Some(truth) = offset(t.source, at) else {
                    continue;
                };
                let request = NtpHeader::parse_bytes(&buf[..t.len]).unwrap();
                let state = ServerState {
                    stratum: Stratum(1),
                    leap: LeapIndicator::NoWarning,
                    ..ServerState::UNSYNCHRONIZED
                };
                let server = ts(at + 0.001 + truth + *local_behind);
                let reply = server_response(&request, &state, server, server).unwrap();
                s.handle_transmit_timestamp(t.source, ts(at));
                let then = LocalInstant::from_seconds_f64(at + 0.002);
                s.handle_response(t.source, &reply.to_bytes(), ts(at + 0.002), then);
            }
            while let Some(action) = s.poll_action() {
                if let ClockAction::Step { offset } = action {
                    *local_behind -= offset;
                    steps.push(offset);
                }
            }
            at += 1.0;
        }
        steps
    }

    /// Issue 20's leap modes: `Step` steps the clock back a second at the leap and leaves
    /// the samples (the sources stepped too, so offsets go on as before); `Slew` slows
    /// the clock at the fastest slew to lose the second; `Kernel` leaves it to the kernel.
    #[test]
    fn a_leap_is_stepped_or_slewed_as_the_mode_says() {
        let mut s = system(3, false);
        let mut behind = 0.0;
        run_answering(&mut s, 0.0, 40.0, &mut behind, |_, _| Some(0.0));
        while s.poll_action().is_some() {}
        s.handle_leap(
            Leap::Insert,
            LeapMode::Kernel,
            LocalInstant::from_seconds_f64(40.0),
        );
        assert_eq!(s.poll_action(), None);
        s.handle_leap(
            Leap::Insert,
            LeapMode::Step,
            LocalInstant::from_seconds_f64(40.0),
        );
        assert_eq!(s.poll_action(), Some(ClockAction::Step { offset: -1.0 }));
        // The sources took the same second: the next answers agree with the clock.
        behind += 1.0;
        let steps = run_answering(&mut s, 41.0, 60.0, &mut behind, |_, _| Some(-1.0));
        assert!(steps.is_empty(), "no step after the leap: {steps:?}");
        let e = s.estimate().unwrap();
        assert!(e.offset.abs() < 1e-3, "{e:?}");
        let before = s.frequency_ppm();
        s.handle_leap(
            Leap::Insert,
            LeapMode::Slew,
            LocalInstant::from_seconds_f64(101.0),
        );
        match s.poll_action() {
            Some(ClockAction::SetFrequency { ppm }) => {
                assert!(
                    ppm < before - 100.0,
                    "slowed to lose the second: {ppm} from {before}"
                )
            }
            other => panic!("{other:?}"),
        }
        // Observe-only, a leap changes nothing.
        let mut o = system(1, true);
        o.handle_leap(Leap::Delete, LeapMode::Step, LocalInstant(0));
        assert_eq!(o.poll_action(), None);
    }

    /// Issue 20: near a leap, a smeared source (half a second from the others at the
    /// leap; ahead here, as `ts` takes no time before the run's start) and
    /// two unsmeared ones are never combined: the estimate follows the unsmeared pair,
    /// not a point between. With two smeared and one unsmeared, it follows the smeared
    /// pair whole. Outside the window all three are candidates again.
    #[test]
    fn smeared_and_unsmeared_sources_are_never_combined_near_a_leap() {
        for (smeared, expect) in [(vec![0], 0.0), (vec![0, 1], 0.5)] {
            let mut s = system(3, true);
            for &i in &smeared {
                s.set_source_smeared(i, true);
            }
            s.set_leap_window(true);
            let mut behind = 0.0;
            let offset = |i: usize, _| Some(if smeared.contains(&i) { 0.5 } else { 0.0 });
            run_answering(&mut s, 0.0, 40.0, &mut behind, offset);
            let e = s.estimate().unwrap();
            assert!(
                (e.offset - expect).abs() < 1e-3,
                "smeared {smeared:?}: {e:?}"
            );
            let verdicts = s.verdicts().to_vec();
            for (i, v) in verdicts.iter().enumerate() {
                let in_use = smeared.contains(&i) == (expect != 0.0);
                assert_eq!(
                    *v != CandidateVerdict::None,
                    in_use,
                    "source {i} {v:?} with smeared {smeared:?}"
                );
            }
        }
        // Outside the window the half second apart is a disagreement, as with any two
        // sources: the smeared one is no longer left out of selection.
        let mut s = system(3, true);
        s.set_source_smeared(0, true);
        let mut behind = 0.0;
        run_answering(&mut s, 0.0, 40.0, &mut behind, |i, _| {
            Some(if i == 0 { 0.5 } else { 0.0 })
        });
        assert_ne!(s.verdicts()[0], CandidateVerdict::None);
    }

    /// Issue 16's default limit: once running, one source an attacker answers for (the
    /// other two blocked) cannot step the clock a day; with `StepQuorum::Any` it could.
    /// A reverted snapshot, seen by all three, is still stepped.
    #[test]
    fn one_source_of_three_cannot_step_a_running_clock() {
        for quorum in [StepQuorum::Majority, StepQuorum::Any] {
            let sources = (0..3)
                .map(|_| NtpSource::new(SourceConfig::default(), LocalInstant(0)))
                .collect();
            let config = SystemConfig {
                step_quorum: quorum,
                ..SystemConfig::default()
            };
            let mut s = NtpSystem::new(sources, config, 0.0);
            let mut behind = 3.0;
            // Startup: all three agree, the clock is stepped once and runs.
            let steps = run_answering(&mut s, 0.0, 600.0, &mut behind, |_, _| Some(0.0));
            assert_eq!(steps.len(), 1, "{steps:?}");
            // Sources 1 and 2 blocked; source 0 says a day ahead for three hours.
            let steps = run_answering(&mut s, 600.0, 3.0 * 3600.0, &mut behind, |i, _| {
                (i == 0).then_some(86_400.0)
            });
            match quorum {
                StepQuorum::Majority => assert!(steps.is_empty(), "{steps:?}"),
                StepQuorum::Any => assert!(
                    steps.iter().any(|o| (o - 86_400.0).abs() < 1.0),
                    "{steps:?}"
                ),
            }
            if quorum == StepQuorum::Majority {
                // A reverted snapshot: all three see the clock two hours behind.
                behind += 7200.0;
                let steps = run_answering(&mut s, 11_400.0, 3600.0, &mut behind, |_, _| Some(0.0));
                assert!(
                    steps.iter().any(|o| (o - 7200.0).abs() < 1.0),
                    "{steps:?} behind {behind}"
                );
            }
        }
    }

    #[test]
    fn a_steering_system_asks_for_the_step_and_carries_it() {
        // A server 5 s ahead of a local clock that obeys the actions.
        let mut s = system(1, false);
        let mut local_behind = 5.0;
        let mut at = 0.0;
        let mut steps = Vec::new();
        for _ in 0..8 {
            let now = LocalInstant::from_seconds_f64(at);
            s.handle_timeout(now, ts(at), || Some(11));
            answer_all(&mut s, at, local_behind);
            while let Some(action) = s.poll_action() {
                if let ClockAction::Step { offset } = action {
                    local_behind -= offset;
                    steps.push(offset);
                }
            }
            at += 2.0;
        }
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert!((steps[0] - 5.0).abs() < 1e-3, "{steps:?}");
        // The samples from before the step were carried across it: the estimate is the
        // new offset (about 0), not a mix with the 5 s ones.
        let c = s.sources()[0]
            .candidate(LocalInstant::from_seconds_f64(at))
            .unwrap();
        assert!(c.offset.abs() < 1e-3, "{c:?}");
        assert!(s.estimate().is_some_and(|e| e.offset.abs() < 1e-3));
    }

    #[test]
    fn a_refused_step_is_taken_back_and_observe_only_follows() {
        // The kernel refuses the step (EPERM in a user namespace): the samples must not
        // believe the clock moved, and nothing more is asked of it.
        let mut s = system(1, false);
        let mut at = 0.0;
        let mut refused = None;
        while refused.is_none() && at < 20.0 {
            let now = LocalInstant::from_seconds_f64(at);
            s.handle_timeout(now, ts(at), || Some(13));
            answer_all(&mut s, at, 5.0);
            while let Some(action) = s.poll_action() {
                if let ClockAction::Step { .. } = action {
                    s.handle_action_refused(action, now);
                    s.set_observe_only(true);
                    refused = Some(action);
                }
            }
            at += 2.0;
        }
        assert!(refused.is_some(), "a step was asked for");
        let c = s.sources()[0]
            .candidate(LocalInstant::from_seconds_f64(at))
            .unwrap();
        assert!(
            (c.offset - 5.0).abs() < 1e-3,
            "the clock never moved: {c:?}"
        );
        // Observe-only now: more answers, no actions.
        for _ in 0..4 {
            let now = LocalInstant::from_seconds_f64(at);
            s.handle_timeout(now, ts(at), || Some(17));
            answer_all(&mut s, at, 5.0);
            assert_eq!(s.poll_action(), None);
            at += 2.0;
        }
        assert!(s.estimate().is_some_and(|e| (e.offset - 5.0).abs() < 1e-3));
    }

    #[test]
    fn events_are_bounded_when_nobody_polls_them() {
        let mut s = system(1, true);
        for k in 0..1000 {
            s.handle_response(0, &[0xFF; 48], ts(0.0), LocalInstant(k));
        }
        assert!(events(&mut s).len() <= MAX_EVENTS);
        // Out-of-range indices are ignored, not a panic.
        s.handle_response(5, &[0; 48], ts(0.0), LocalInstant(0));
        s.handle_transmit_timestamp(5, ts(0.0));
        s.handle_refclock_reading(5, LocalInstant(0), None);
        s.reset_source(5, LocalInstant(0));
    }

    #[test]
    fn a_reset_source_polls_again_at_once() {
        let mut s = system(1, true);
        s.handle_timeout(LocalInstant(0), ts(0.0), || Some(3));
        answer_all(&mut s, 0.0, 0.0);
        assert!(s.sources()[0].reach().is_reachable());
        let later = LocalInstant::from_seconds_f64(1.0);
        s.reset_source(0, later);
        assert!(!s.sources()[0].reach().is_reachable());
        assert_eq!(s.poll_timeout(), Some(later));
    }
}
