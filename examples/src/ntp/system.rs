//! The system side of an NTP client: selection over the sources, the discipline, and the
//! state a server built on it passes downstream. Sans-IO.

use tempora_clock_discipline::{
    ActionList, ClockAction, Discipline, DisciplineConfig, DisciplineError, DisciplineInput,
    FrequencyState, RfcConfig, RfcDiscipline,
};
use tempora_clock_filter::{
    Candidate, CandidateVerdict, Leap, LocalInstant, SelectionConfig, SelectionError,
    SelectionMark, SystemEstimate, select,
};
use tempora_ntp_proto::{
    LeapIndicator, Log2Seconds, NtpShort, NtpTimestamp, ReferenceId, ServerState, Stratum,
};

use super::refclock::RefclockSource;
use super::source::NtpSource;

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
}

impl Default for SystemConfig {
    fn default() -> Self {
        Self {
            selection: SelectionConfig::default(),
            discipline: DisciplineKind::Default(DisciplineConfig::default()),
            observe_only: false,
        }
    }
}

/// Why an update produced no clock actions.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
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

/// The sources, the selection and the discipline.
pub struct NtpSystem {
    /// The sources, in configuration order.
    pub sources: Vec<NtpSource>,
    /// Reference clocks; in selection indices they follow the sources.
    pub refclocks: Vec<RefclockSource>,
    config: SystemConfig,
    steering: Steering,
    verdicts: Vec<CandidateVerdict>,
    previous_peer: Option<usize>,
    estimate: Option<SystemEstimate>,
    frequency_ppm: f64,
    last_update: Option<LocalInstant>,
    updates: u64,
}

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
            last_update: None,
            updates: 0,
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

    /// When [`Self::handle_timeout`] wants to run (the end of an offset correction, or the
    /// RFC discipline's once-a-second tick).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<LocalInstant> {
        match &self.steering {
            Steering::Default(d) => d.poll_timeout(),
            Steering::Rfc(r) => r.poll_timeout(),
        }
    }

    /// Runs the discipline's timer, returning the actions to apply (already carried into
    /// the sources' filters).
    pub fn handle_timeout(&mut self, now: LocalInstant) -> ActionList {
        if self.config.observe_only {
            return ActionList::new();
        }
        let actions = match &mut self.steering {
            Steering::Default(d) => d.handle_timeout(now),
            Steering::Rfc(r) => r.tick(now),
        };
        self.carry(&actions, now);
        actions
    }

    /// Runs selection and the discipline after new measurements. At start it waits until
    /// every source has answered or missed its first polls: selecting on the first answer
    /// alone would follow whichever server spoke first, liar or not.
    pub fn update(&mut self, now: LocalInstant) -> Result<ActionList, SystemError> {
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
        if self.config.observe_only {
            self.last_update = Some(now);
            self.updates += 1;
            return Ok(ActionList::new());
        }
        let peer_candidate = candidates[estimate.system_peer];
        let actions = match &mut self.steering {
            Steering::Default(d) => d.update(
                &DisciplineInput {
                    offset: estimate.offset,
                    offset_error: estimate.jitter,
                    frequency: estimate.frequency,
                    root_distance: peer_candidate.root_distance(now),
                },
                now,
            )?,
            Steering::Rfc(r) => r.update(estimate.offset, now)?,
        };
        self.carry(&actions, now);
        self.last_update = Some(now);
        self.updates += 1;
        Ok(actions)
    }

    /// Tells every source of the corrections the actions make.
    fn carry(&mut self, actions: &ActionList, now: LocalInstant) {
        for action in actions {
            if let Some(correction) = action.correction(self.frequency_ppm, now) {
                for source in &mut self.sources {
                    source.apply_correction(correction);
                }
                for refclock in &mut self.refclocks {
                    refclock.apply_correction(correction);
                }
            }
            if let ClockAction::SetFrequency { ppm } = action {
                self.frequency_ppm = *ppm;
            }
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
