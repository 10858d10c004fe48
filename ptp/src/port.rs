//! The port of a slave-only ordinary clock, sans-IO: the caller passes every message with
//! its receive timestamp and a monotonic instant, and asks when to run again; the port
//! returns the messages to send, the clock actions and what happened. States as IEEE
//! 1588-2019 9.2 defines them for a slave-only port: INITIALIZING, LISTENING,
//! UNCALIBRATED, SLAVE and FAULTY.

use alloc::collections::VecDeque;

use tempora_clock_discipline::{
    BoundConfig, BoundTracker, BoundUpdate, PiServo, PiServoConfig, Servo,
};
use tempora_clock_filter::{OffsetFilter, OffsetKalman, OffsetKalmanConfig};
use tempora_clock_types::{ClockAction, ErrorBound, Leap, LocalInstant};
use tempora_ptp_proto::{
    Body, ComparisonDataset, DelayMechanism, Flags, ForeignMasterTable, LogInterval, MessageType,
    MessageWriter, PortIdentity, PortState, PtpHeader, PtpMessage, PtpTimestamp,
};

use crate::slave::{PtpSlaveCore, SlaveSample};

/// How wrong the frequency may be before a second sample shows it, ppm: the most a
/// clock the kernel accepts may be off.
const BOUND_UNKNOWN_FREQUENCY_PPM: f64 = 500.0;

/// Events and actions kept for the `poll_*` calls at most; the oldest go first, so a
/// caller that never polls does not grow memory.
const MAX_QUEUED: usize = 64;

/// The announce interval taken when an Announce gives none that makes sense: 2 s, the
/// default profile's (logAnnounceInterval 1).
const DEFAULT_ANNOUNCE_INTERVAL_NS: i64 = 2_000_000_000;

/// Settings of a port.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PortConfig {
    /// domainNumber.
    pub domain: u8,
    /// majorSdoId (transportSpecific): 0, or 1 for gPTP.
    pub sdo_id: u8,
    /// Announce intervals without an Announce from the master before it is dropped.
    pub announce_receipt_timeout: u8,
    /// log2 of the Delay_Req interval until the master grants one in Delay_Resp.
    pub log_min_delay_req_interval: i8,
    /// Samples in UNCALIBRATED before SLAVE.
    pub samples_to_calibrate: u32,
    /// The servo.
    pub servo: PiServoConfig,
    /// The clock's frequency correction at start, ppb.
    pub frequency_ppb: f64,
    /// End-to-end (Delay_Req) or peer-to-peer (Pdelay_Req).
    pub delay_mechanism: DelayMechanism,
    /// log2 of the Pdelay_Req interval.
    pub log_min_pdelay_req_interval: i8,
    /// Whether the servo's output is applied to the clock (false: observe-only, and
    /// [`PtpPort::poll_action`] gives nothing).
    pub steering: bool,
    /// Keep single far-off offsets (a Sync delayed by scheduling) from the servo.
    pub spike_guard: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        Self {
            domain: 0,
            sdo_id: 0,
            announce_receipt_timeout: 3,
            log_min_delay_req_interval: 0,
            samples_to_calibrate: 4,
            servo: PiServoConfig::SOFTWARE,
            frequency_ppb: 0.0,
            delay_mechanism: DelayMechanism::E2e,
            log_min_pdelay_req_interval: 0,
            steering: true,
            spike_guard: true,
        }
    }
}

/// A message [`PtpPort::poll_transmit`] wrote: [`Self::len`] bytes of the buffer, sent
/// where [`Self::kind`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// Bytes written.
    pub len: usize,
    /// What it is, and so where it goes.
    pub kind: Outgoing,
}

/// What a port reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PortEvent {
    /// The state changed.
    State {
        /// From.
        from: PortState,
        /// To.
        to: PortState,
    },
    /// A new master was chosen (or the old one lost with none to replace it: `None`).
    Master(Option<ComparisonDataset>),
    /// A measurement.
    Sample(SlaveSample),
    /// The master's currentUtcOffset, when it says it is valid.
    UtcOffset(i16),
    /// The master's leap second warning changed (its Announce's leap61 / leap59 flags):
    /// a second will be inserted (deleted) at the end of the UTC day, or none.
    Leap(Leap),
}

/// A message the port wants sent; where it goes follows from its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// Delay_Req: event port, primary group; report its transmit time.
    DelayReq,
    /// Pdelay_Req: event port, peer-delay group; report its transmit time.
    PdelayReq,
    /// Pdelay_Resp: event port, peer-delay group; report its transmit time (the
    /// follow-up carries it).
    PdelayResp,
    /// Pdelay_Resp_Follow_Up: general port, peer-delay group.
    PdelayRespFollowUp,
}

impl Outgoing {
    /// Whether it goes to the peer-delay address.
    pub fn is_peer_delay(self) -> bool {
        !matches!(self, Outgoing::DelayReq)
    }

    /// Whether it is an event message (sent on the event port, timestamped).
    pub fn is_event(self) -> bool {
        !matches!(self, Outgoing::PdelayRespFollowUp)
    }
}

#[derive(Clone, Copy, Debug)]
enum Intent {
    DelayReq,
    PdelayReq,
    PdelayResp {
        sequence: u16,
        requester: PortIdentity,
        t2: i128,
    },
    PdelayRespFollowUp {
        sequence: u16,
        requester: PortIdentity,
        t3: i128,
    },
}

/// The peer-delay exchange in flight: t1 (our Pdelay_Req out), t2/t3 (the peer's), t4 (its
/// response in), corrections.
#[derive(Clone, Copy, Debug, Default)]
struct Pdelay {
    sequence: u16,
    t1: Option<i128>,
    t2: Option<i128>,
    t4: Option<i128>,
    correction: f64,
}

/// A slave-only port: BMCA over the foreign masters, announce-receipt timeout and
/// failover, E2E or P2P delay, and the servo `S` with the offset filter `F` (linuxptp's PI
/// servo and a Kalman filter unless [`Self::with_servo`] gives others).
///
/// - getters: [`Self::state`], [`Self::parent`], [`Self::path_delay_ns`], [`Self::identity`];
/// - `handle_*`, input, each with `now`: [`Self::handle_message`] (a datagram with its
///   receive timestamp), [`Self::handle_timeout`], [`Self::handle_transmit_timestamp`]
///   (when an event message [`Self::poll_transmit`] gave really left);
/// - mutators: [`Self::fault`], [`Self::recover`], [`Self::clock_stepped`],
///   [`Self::handle_action_refused`] (the clock said no), [`Self::set_steering`];
/// - `poll_*`, output: [`Self::poll_transmit`], [`Self::poll_action`] (steps and
///   frequencies for the clock, in order), [`Self::poll_event`] (state changes, the master,
///   samples, the UTC offset) and [`Self::poll_timeout`].
///
/// After every `handle_*` call, drain `poll_transmit` (sending each where its kind says,
/// and reporting event messages' transmit times), `poll_action` and `poll_event`; then wait
/// until `poll_timeout` or the next datagram.
#[derive(Clone, Debug)]
pub struct PtpPort<S = PiServo, F = OffsetKalman> {
    identity: PortIdentity,
    config: PortConfig,
    state: PortState,
    foreign: ForeignMasterTable,
    parent: Option<ComparisonDataset>,
    parent_announce: Option<LocalInstant>,
    announce_interval_ns: i64,
    core: PtpSlaveCore<S, F>,
    calibrating: u32,
    delay_req_log: i8,
    next_delay_req: Option<LocalInstant>,
    sync_interval: f64,
    utc_offset: Option<i16>,
    /// The parent's leap second warning.
    leap: Leap,
    random: u64,
    intents: [Option<Intent>; 4],
    pdelay: Pdelay,
    pdelay_sequence: u16,
    next_pdelay: Option<LocalInstant>,
    /// The Pdelay_Resp sent last, waiting for its transmit timestamp.
    responding: Option<(u16, PortIdentity)>,
    events: VecDeque<PortEvent>,
    actions: VecDeque<ClockAction>,
    /// The frequency the clock was last given, ppb: where a fresh servo starts (for a new
    /// master, or after a refused action), not the frequency it had at start.
    clock_frequency_ppb: f64,
    /// The one before it, taken back if the clock refuses the newer.
    frequency_before_ppb: f64,
    /// The bound on the clock's error, kept from sample to sample.
    bound: BoundTracker,
    /// The frequency of the last sample, ppb, to see how far the next one moves it.
    bound_frequency_ppb: Option<f64>,
}

impl PtpPort {
    /// A port with linuxptp's PI servo (`config.servo`) and the Kalman offset filter that
    /// starts listening at once (initialisation is the caller's sockets).
    pub fn new(identity: PortIdentity, config: PortConfig) -> Self {
        let servo = PiServo::new(config.servo, 1.0, config.frequency_ppb);
        let filter = OffsetKalman::new(OffsetKalmanConfig::default());
        Self::with_servo(identity, config, servo, filter)
    }
}

impl<S: Servo + Clone, F: OffsetFilter + Clone> PtpPort<S, F> {
    /// A port with a servo and an offset filter of the caller's; each new master gets a
    /// fresh copy of both (`config.servo` is not used).
    pub fn with_servo(identity: PortIdentity, config: PortConfig, servo: S, filter: F) -> Self {
        Self {
            identity,
            config,
            state: PortState::Listening,
            foreign: ForeignMasterTable::new(identity.clock_identity),
            parent: None,
            parent_announce: None,
            announce_interval_ns: DEFAULT_ANNOUNCE_INTERVAL_NS,
            core: Self::make_core(identity, 1.0, &config, servo, filter),
            calibrating: 0,
            delay_req_log: config.log_min_delay_req_interval,
            next_delay_req: None,
            sync_interval: 1.0,
            utc_offset: None,
            leap: Leap::None,
            random: u64::from_le_bytes(identity.clock_identity.0) | 1,
            intents: [None; 4],
            pdelay: Pdelay::default(),
            pdelay_sequence: 0,
            next_pdelay: (config.delay_mechanism == DelayMechanism::P2p).then_some(LocalInstant(0)),
            responding: None,
            events: VecDeque::new(),
            actions: VecDeque::new(),
            clock_frequency_ppb: config.frequency_ppb,
            frequency_before_ppb: config.frequency_ppb,
            bound: BoundTracker::new(BoundConfig::default()),
            bound_frequency_ppb: None,
        }
    }

    /// Sets how the error bound is computed ([`Self::error_bound`]); it starts again.
    pub fn set_bound_config(&mut self, config: BoundConfig) {
        self.bound = BoundTracker::new(config);
        self.bound_frequency_ppb = None;
    }

    /// The bound on the steered clock's error at `now` (see
    /// `tempora_clock_discipline::BoundTracker`): from each Sync, the offset filter's
    /// estimate, the raw offset give or take the mean path delay (what no exchange can
    /// tell from an asymmetry), the offset itself until the next Sync (the servo removes
    /// it at its own pace) and the drift since. FreeRunning after eight Sync intervals
    /// (at least 8 s) without one; Disrupted from [`Self::handle_disruption`] or a
    /// refused action to the next Sync.
    pub fn error_bound(&self, now: LocalInstant) -> ErrorBound {
        self.bound
            .bound(now, 0.0, (8.0 * self.sync_interval).max(8.0))
    }

    /// The clock was disturbed behind the port's back (stepped by another program): the
    /// error bound reads Disrupted until the next Sync.
    pub fn handle_disruption(&mut self) {
        self.bound.disrupt();
    }

    fn update_bound(&mut self, sample: &SlaveSample, now: LocalInstant) {
        let change_ppm = self
            .bound_frequency_ppb
            .map_or(BOUND_UNKNOWN_FREQUENCY_PPM, |f| {
                (sample.frequency_ppb - f).abs() / 1000.0
            });
        self.bound_frequency_ppb = Some(sample.frequency_ppb);
        let path_delay = sample.path_delay_ns.abs() * 1e-9;
        // Observe-only, nothing corrects the clock: its own frequency error stays.
        let frequency_error_ppm = if self.config.steering {
            change_ppm
        } else {
            change_ppm + sample.frequency_ppb.abs() / 1000.0
        };
        self.bound.update(
            &BoundUpdate {
                offset: -sample.offset_ns * 1e-9,
                offset_error: (sample.raw_offset_ns - sample.offset_ns).abs() * 1e-9,
                // Half of it bounds the asymmetry: the mean path delay.
                root_delay: 2.0 * path_delay,
                root_dispersion: 0.0,
                frequency_error_ppm,
                frequency_walk_ppm: 0.0,
                sample: Some((-sample.raw_offset_ns * 1e-9, path_delay)),
                corrected: false,
            },
            now,
            0.0,
        );
    }

    /// A fresh measuring core for a (new) master.
    fn make_core(
        identity: PortIdentity,
        sync_interval: f64,
        config: &PortConfig,
        servo: S,
        filter: F,
    ) -> PtpSlaveCore<S, F> {
        let mut core =
            PtpSlaveCore::new(identity, sync_interval, servo, filter, config.frequency_ppb);
        core.set_steering(config.steering);
        core.set_spike_guard(config.spike_guard);
        core
    }

    fn push_event(&mut self, event: PortEvent) {
        if self.events.len() >= MAX_QUEUED {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    fn push_action(&mut self, action: ClockAction) {
        if self.actions.len() >= MAX_QUEUED {
            self.actions.pop_front();
        }
        self.actions.push_back(action);
    }

    /// The next thing that happened, oldest first.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<PortEvent> {
        self.events.pop_front()
    }

    /// The next action for the steered clock: a step (at lock), then the frequency, the
    /// unit in the variant (ppm). Nothing when not steering.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<ClockAction> {
        self.actions.pop_front()
    }

    /// Queues a message. The port's own requests are never lost to others' traffic: a
    /// newer one replaces one still queued, and in a full queue one takes the place of an
    /// answer to a peer. Answers only take free places.
    fn push(&mut self, intent: Intent) {
        let own = |i: &Intent| matches!(i, Intent::DelayReq | Intent::PdelayReq);
        if own(&intent) {
            let same = core::mem::discriminant(&intent);
            if let Some(slot) = self.intents.iter_mut().find(|i| {
                i.as_ref()
                    .is_some_and(|i| core::mem::discriminant(i) == same)
            }) {
                *slot = Some(intent);
                return;
            }
        }
        if let Some(slot) = self.intents.iter_mut().find(|i| i.is_none()) {
            *slot = Some(intent);
        } else if own(&intent) {
            if let Some(slot) = self
                .intents
                .iter_mut()
                .find(|i| i.as_ref().is_some_and(|i| !own(i)))
            {
                *slot = Some(intent);
            }
        }
    }

    fn header(&self, message_type: MessageType, sequence: u16) -> PtpHeader {
        let mut h = PtpHeader::new(message_type, self.identity, sequence);
        h.domain_number = self.config.domain;
        h.major_sdo_id = self.config.sdo_id;
        h
    }

    /// The next message to send, written into `buf` (sans-IO: the caller sends it where
    /// its kind says, and reports event messages' transmit time with
    /// [`Self::handle_transmit_timestamp`]).
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let intent = self.intents.iter_mut().find_map(Option::take)?;
        let written = match intent {
            Intent::DelayReq => {
                let len = self
                    .core
                    .delay_request(buf, self.config.domain, self.config.sdo_id)?;
                return Some(Transmit {
                    len,
                    kind: Outgoing::DelayReq,
                });
            }
            Intent::PdelayReq => {
                let mut h = self.header(MessageType::PdelayReq, self.pdelay_sequence);
                h.log_message_interval = LogInterval(self.config.log_min_pdelay_req_interval);
                let body = Body::PdelayReq {
                    origin_timestamp: PtpTimestamp::ZERO,
                };
                (h, body, Outgoing::PdelayReq)
            }
            Intent::PdelayResp {
                sequence,
                requester,
                t2,
            } => {
                let mut h = self.header(MessageType::PdelayResp, sequence);
                h.flags = Flags(Flags::TWO_STEP);
                let body = Body::PdelayResp {
                    request_receipt_timestamp: PtpTimestamp::from_tai_nanos(t2).ok()?,
                    requesting_port_identity: requester,
                };
                self.responding = Some((sequence, requester));
                (h, body, Outgoing::PdelayResp)
            }
            Intent::PdelayRespFollowUp {
                sequence,
                requester,
                t3,
            } => {
                let h = self.header(MessageType::PdelayRespFollowUp, sequence);
                let body = Body::PdelayRespFollowUp {
                    response_origin_timestamp: PtpTimestamp::from_tai_nanos(t3).ok()?,
                    requesting_port_identity: requester,
                };
                (h, body, Outgoing::PdelayRespFollowUp)
            }
        };
        let (header, body, kind) = written;
        let len = MessageWriter::new(buf, &header, &body)
            .ok()?
            .finish()
            .ok()?;
        Some(Transmit { len, kind })
    }

    /// The transmit time (ns) of an event message [`Self::poll_transmit`] gave.
    pub fn handle_transmit_timestamp(&mut self, kind: Outgoing, t: i128) {
        match kind {
            Outgoing::DelayReq => self.core.handle_delay_req_sent(t),
            Outgoing::PdelayReq => self.pdelay.t1 = Some(t),
            Outgoing::PdelayResp => {
                if let Some((sequence, requester)) = self.responding.take() {
                    self.push(Intent::PdelayRespFollowUp {
                        sequence,
                        requester,
                        t3: t,
                    });
                }
            }
            Outgoing::PdelayRespFollowUp => {}
        }
    }

    /// The port's state.
    pub fn state(&self) -> PortState {
        self.state
    }

    /// The chosen master.
    pub fn parent(&self) -> Option<ComparisonDataset> {
        self.parent
    }

    /// The path delay measured, ns.
    pub fn path_delay_ns(&self) -> Option<f64> {
        self.core.path_delay_ns()
    }

    /// The port's identity.
    pub fn identity(&self) -> PortIdentity {
        self.identity
    }

    /// A fault in the sockets: FAULTY until [`Self::recover`].
    pub fn fault(&mut self) {
        self.set_state(PortState::Faulty);
    }

    /// Back from FAULTY: listen again.
    pub fn recover(&mut self) {
        if self.state == PortState::Faulty {
            self.parent = None;
            self.set_state(PortState::Listening);
        }
    }

    fn set_state(&mut self, to: PortState) {
        if self.state != to {
            self.push_event(PortEvent::State {
                from: self.state,
                to,
            });
            self.state = to;
        }
    }

    fn jitter(&mut self) -> f64 {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        (self.random >> 11) as f64 / (1u64 << 53) as f64
    }

    /// When to call [`Self::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<LocalInstant> {
        let announce = self.parent_announce.map(|t| {
            t.add_seconds(
                f64::from(self.config.announce_receipt_timeout)
                    * self.announce_interval_ns as f64
                    * 1e-9,
            )
        });
        [announce, self.next_delay_req, self.next_pdelay]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs the timers: the announce receipt timeout (failover to the next-best master),
    /// the Delay_Req (E2E) and the Pdelay_Req (P2P); what to send then comes from
    /// [`Self::poll_transmit`].
    pub fn handle_timeout(&mut self, now: LocalInstant) {
        if self.state == PortState::Faulty {
            return;
        }
        if let Some(last) = self.parent_announce {
            let timeout = f64::from(self.config.announce_receipt_timeout)
                * self.announce_interval_ns as f64
                * 1e-9;
            if now.seconds_since(last) > timeout {
                // The parent stays set until the choice, so that losing it with no other
                // master to take is a change: LISTENING, and `Master(None)` reported.
                if let Some(p) = self.parent {
                    self.foreign.remove(p.sender);
                }
                self.parent_announce = None;
                self.choose_master(now);
            }
        }
        if let Some(t) = self.next_pdelay {
            if now >= t {
                let interval = libm::exp2(f64::from(self.config.log_min_pdelay_req_interval));
                self.next_pdelay = Some(now.add_seconds(interval));
                self.pdelay_sequence = self.pdelay_sequence.wrapping_add(1);
                self.pdelay = Pdelay {
                    sequence: self.pdelay_sequence,
                    ..Pdelay::default()
                };
                self.push(Intent::PdelayReq);
            }
        }
        match self.next_delay_req {
            Some(t)
                if now >= t
                    && self.config.delay_mechanism != DelayMechanism::P2p
                    && matches!(self.state, PortState::Uncalibrated | PortState::Slave) =>
            {
                // The next one at a random time within twice the interval (9.5.11.2).
                let interval = libm::exp2(f64::from(self.delay_req_log));
                let wait = interval * 2.0 * self.jitter();
                self.next_delay_req = Some(now.add_seconds(wait.max(interval * 0.1)));
                self.push(Intent::DelayReq);
            }
            _ => {}
        }
    }

    /// Tells the port the clock it measures was stepped.
    pub fn clock_stepped(&mut self) {
        self.core.clock_stepped();
    }

    /// The clock refused `action` (the kernel said no): the port must not go on as if it
    /// were done. The servo believed a step moved the clock and would steer the frequency
    /// against an offset it thinks is gone; instead the measuring core starts again for the
    /// same master (a fresh servo and filter, from the frequency the clock really has),
    /// the port goes back to UNCALIBRATED, and the next samples ask for the step again.
    /// Actions still queued behind the refused one assumed it and are dropped. Call it for
    /// each refused action, in the order given; [`Self::set_steering`] usually follows a
    /// refusal that will not change (no CAP_SYS_TIME).
    pub fn handle_action_refused(&mut self, action: ClockAction) {
        self.bound.disrupt();
        if let ClockAction::SetFrequency { ppm } = action {
            if (ppm * 1000.0 - self.clock_frequency_ppb).abs() < 1e-6 {
                self.clock_frequency_ppb = self.frequency_before_ppb;
            }
        }
        self.actions.clear();
        if self.parent.is_none() {
            return;
        }
        self.core
            .restart(self.sync_interval, self.clock_frequency_ppb);
        if self.state == PortState::Slave {
            self.set_state(PortState::Uncalibrated);
        }
        self.calibrating = 0;
    }

    /// Steers the clock (the default) or measures and reports only from now on: no
    /// actions are given, and those still queued are dropped.
    pub fn set_steering(&mut self, steering: bool) {
        self.config.steering = steering;
        self.core.set_steering(steering);
        if !steering {
            self.actions.clear();
        }
    }

    /// Whether the port gives actions for the clock ([`Self::set_steering`]).
    pub fn steering(&self) -> bool {
        self.config.steering
    }

    fn choose_master(&mut self, now: LocalInstant) {
        let best = self.foreign.best(now.as_nanos());
        let changed = best.map(|b| b.sender) != self.parent.map(|p| p.sender);
        if !changed {
            if let (Some(b), Some(p)) = (best, &mut self.parent) {
                *p = b;
            }
            return;
        }
        self.parent = best;
        self.push_event(PortEvent::Master(best));
        match best {
            Some(_) => {
                self.parent_announce = Some(now);
                self.core
                    .restart(self.sync_interval, self.clock_frequency_ppb);
                self.calibrating = 0;
                self.next_delay_req = Some(now);
                self.set_state(PortState::Uncalibrated);
            }
            None => {
                self.next_delay_req = None;
                self.set_state(PortState::Listening);
            }
        }
    }

    /// The peer's answers to our Pdelay_Req: link delay = ((t4 - t1) - (t3 - t2)) / 2 less
    /// the corrections (one-step responders put t3 - t2 in the correction instead).
    fn handle_peer_delay(&mut self, bytes: &[u8], rx: i128) {
        let Ok(message) = PtpMessage::parse(bytes) else {
            return;
        };
        let header = message.header;
        if header.sequence_id != self.pdelay.sequence {
            return;
        }
        let correction = header.correction.to_nanos_f64();
        match message.body {
            Body::PdelayResp {
                request_receipt_timestamp,
                requesting_port_identity,
            } if requesting_port_identity == self.identity => {
                self.pdelay.t4 = Some(rx);
                self.pdelay.correction = correction;
                if header.flags.two_step() {
                    self.pdelay.t2 = Some(request_receipt_timestamp.as_tai_nanos());
                } else if let Some(t1) = self.pdelay.t1 {
                    self.core
                        .handle_link_delay(((rx - t1) as f64 - correction) / 2.0);
                }
            }
            Body::PdelayRespFollowUp {
                response_origin_timestamp,
                requesting_port_identity,
            } if requesting_port_identity == self.identity => {
                if let (Some(t1), Some(t2), Some(t4)) =
                    (self.pdelay.t1, self.pdelay.t2, self.pdelay.t4)
                {
                    let t3 = response_origin_timestamp.as_tai_nanos();
                    let turnaround = (t3 - t2) as f64 + self.pdelay.correction + correction;
                    self.core
                        .handle_link_delay(((t4 - t1) as f64 - turnaround) / 2.0);
                }
            }
            _ => {}
        }
    }

    /// Takes one received message with its receive timestamp (ns on the measured clock).
    pub fn handle_message(&mut self, bytes: &[u8], rx: i128, now: LocalInstant) {
        if self.state == PortState::Faulty {
            return;
        }
        let Ok(header) = PtpHeader::parse(bytes) else {
            return;
        };
        if header.domain_number != self.config.domain
            || header.major_sdo_id != self.config.sdo_id
            || header.source_port_identity.clock_identity == self.identity.clock_identity
        {
            return;
        }
        let from_parent = self
            .parent
            .is_some_and(|p| p.sender == header.source_port_identity);
        match header.message_type {
            MessageType::Announce => {
                let Ok(message) = PtpMessage::parse(bytes) else {
                    return;
                };
                let Body::Announce(announce) = message.body else {
                    return;
                };
                // The receipt timeout follows the parent's interval only: a stranger
                // announcing every 64 s must not stretch our failover.
                let interval = header
                    .log_message_interval
                    .seconds()
                    .filter(|s| *s > 0.0 && *s <= 64.0)
                    .map(|s| (s * 1e9) as i64);
                let dataset = ComparisonDataset::from_announce(&header, &announce, self.identity);
                // Each master qualifies on its own interval (a made-up parent announcing
                // every few ms must not shrink the window every other master is judged by).
                let _taken = self.foreign.record(
                    dataset,
                    now.as_nanos(),
                    interval.unwrap_or(DEFAULT_ANNOUNCE_INTERVAL_NS),
                );
                if from_parent {
                    self.parent_announce = Some(now);
                }
                self.choose_master(now);
                let from_parent = self
                    .parent
                    .is_some_and(|p| p.sender == header.source_port_identity);
                if let (true, Some(interval)) = (from_parent, interval) {
                    self.announce_interval_ns = interval;
                }
                // The offset between the master's time and UTC: currentUtcOffset on the PTP
                // timescale (TAI) when the master says it is valid; 0 on an arbitrary
                // timescale, whose time is no TAI to correct.
                let offset = if !header.flags.contains(Flags::PTP_TIMESCALE) {
                    Some(0)
                } else if header.flags.contains(Flags::UTC_OFFSET_VALID) {
                    Some(announce.current_utc_offset)
                } else {
                    None
                };
                if let (true, Some(offset)) = (from_parent, offset) {
                    if self.utc_offset != Some(offset) {
                        self.utc_offset = Some(offset);
                        self.push_event(PortEvent::UtcOffset(offset));
                    }
                }
                if from_parent {
                    let leap = match (
                        header.flags.contains(Flags::LEAP_61),
                        header.flags.contains(Flags::LEAP_59),
                    ) {
                        (true, false) => Leap::Insert,
                        (false, true) => Leap::Delete,
                        // Both or neither: nothing a clock could do.
                        _ => Leap::None,
                    };
                    if self.leap != leap {
                        self.leap = leap;
                        self.push_event(PortEvent::Leap(leap));
                    }
                }
            }
            // A peer's Pdelay_Req is answered in P2P only: an end-to-end port has no
            // peer to serve, and answering anyone would hand a flood our output queue.
            MessageType::PdelayReq if self.config.delay_mechanism == DelayMechanism::P2p => {
                self.push(Intent::PdelayResp {
                    sequence: header.sequence_id,
                    requester: header.source_port_identity,
                    t2: rx,
                });
            }
            MessageType::PdelayResp | MessageType::PdelayRespFollowUp => {
                self.handle_peer_delay(bytes, rx);
            }
            MessageType::Sync | MessageType::FollowUp | MessageType::DelayResp if from_parent => {
                if header.message_type == MessageType::Sync {
                    if let Some(s) = header.log_message_interval.seconds() {
                        if s > 0.0 && s <= 16.0 && (s - self.sync_interval).abs() > 1e-9 {
                            self.sync_interval = s;
                        }
                    }
                }
                if header.message_type == MessageType::DelayResp {
                    let log = header.log_message_interval.0;
                    if (-7..=6).contains(&log) {
                        self.delay_req_log = log;
                    }
                }
                match self.core.handle_message(bytes, rx, now) {
                    Ok(Some(sample)) => {
                        if !sample.spike {
                            self.update_bound(&sample, now);
                        }
                        if self.config.steering && !sample.spike {
                            if let Some(offset) = sample.step {
                                self.push_action(ClockAction::Step { offset });
                            }
                            self.push_action(ClockAction::SetFrequency {
                                ppm: sample.frequency_ppb / 1000.0,
                            });
                            self.frequency_before_ppb = self.clock_frequency_ppb;
                            self.clock_frequency_ppb = sample.frequency_ppb;
                        }
                        self.push_event(PortEvent::Sample(sample));
                        if self.state == PortState::Uncalibrated {
                            self.calibrating += 1;
                            if self.calibrating >= self.config.samples_to_calibrate {
                                self.set_state(PortState::Slave);
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(_) => {}
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use tempora_ptp_proto::{
        AnnounceBody, ClockAccuracy, ClockIdentity, ClockQuality, LogInterval, MessageWriter,
        PtpTimestamp, TimeSource,
    };

    fn master(n: u8) -> PortIdentity {
        PortIdentity {
            clock_identity: ClockIdentity([n, 1, 2, 0xFF, 0xFE, 3, 4, n]),
            port_number: 1,
        }
    }

    fn announce(from: PortIdentity, priority1: u8, seq: u16) -> Vec<u8> {
        let mut h = PtpHeader::new(MessageType::Announce, from, seq);
        h.log_message_interval = LogInterval(0);
        h.flags = Flags(Flags::PTP_TIMESCALE | Flags::UTC_OFFSET_VALID);
        let body = Body::Announce(AnnounceBody {
            origin_timestamp: PtpTimestamp::ZERO,
            current_utc_offset: 37,
            grandmaster_priority1: priority1,
            grandmaster_clock_quality: ClockQuality {
                clock_class: 248,
                clock_accuracy: ClockAccuracy::Unknown,
                offset_scaled_log_variance: 0xFFFF,
            },
            grandmaster_priority2: 128,
            grandmaster_identity: from.clock_identity,
            steps_removed: 0,
            time_source: TimeSource::InternalOscillator,
        });
        let mut buf = [0u8; 128];
        let len = MessageWriter::new(&mut buf, &h, &body)
            .unwrap()
            .finish()
            .unwrap();
        buf[..len].to_vec()
    }

    fn sync(from: PortIdentity, seq: u16, t1: i128) -> Vec<u8> {
        let h = PtpHeader::new(MessageType::Sync, from, seq);
        let mut buf = [0u8; 64];
        let len = MessageWriter::new(
            &mut buf,
            &h,
            &Body::Sync {
                origin_timestamp: PtpTimestamp::from_tai_nanos(t1).unwrap(),
            },
        )
        .unwrap()
        .finish()
        .unwrap();
        buf[..len].to_vec()
    }

    fn delay_resp(from: PortIdentity, to: PortIdentity, seq: u16, t4: i128) -> Vec<u8> {
        let h = PtpHeader::new(MessageType::DelayResp, from, seq);
        let mut buf = [0u8; 64];
        let len = MessageWriter::new(
            &mut buf,
            &h,
            &Body::DelayResp {
                receive_timestamp: PtpTimestamp::from_tai_nanos(t4).unwrap(),
                requesting_port_identity: to,
            },
        )
        .unwrap()
        .finish()
        .unwrap();
        buf[..len].to_vec()
    }

    /// Moves the port's events into `ev`.
    fn drain(port: &mut PtpPort, ev: &mut Vec<PortEvent>) {
        while let Some(e) = port.poll_event() {
            ev.push(e);
        }
    }

    /// Runs the timers, then returns the first message to send.
    fn timeout(
        port: &mut PtpPort,
        now: LocalInstant,
        buf: &mut [u8],
        ev: &mut Vec<PortEvent>,
    ) -> Option<Transmit> {
        port.handle_timeout(now);
        drain(port, ev);
        port.poll_transmit(buf)
    }

    fn at(s: f64) -> LocalInstant {
        LocalInstant::from_seconds_f64(s)
    }

    /// A slave clock 30 ppm fast (a VM at start) whose Delay_Req leaves half a second
    /// after the Sync: the master-to-slave leg is taken at the Delay_Req's time, so the
    /// path delay comes out right rather than 7.5 us short (and negative, so dropped).
    #[test]
    fn path_delay_is_right_while_the_clock_is_off_in_frequency() {
        let me = PortIdentity {
            clock_identity: ClockIdentity::from_mac([0x02, 0, 0, 0, 0, 9]),
            port_number: 1,
        };
        let config = PortConfig {
            samples_to_calibrate: 100,
            ..PortConfig::default()
        };
        let mut port = PtpPort::new(me, config);
        let mut ev = Vec::new();
        let good = master(1);
        port.handle_message(&announce(good, 100, 1), 0, at(0.0));
        drain(&mut port, &mut ev);
        port.handle_message(&announce(good, 100, 2), 0, at(1.0));
        drain(&mut port, &mut ev);
        assert_eq!(port.state(), PortState::Uncalibrated);
        let base: i128 = 1_700_000_000_000_000_000;
        // Slave clock = master time + 30 ppm of the time since base; 200 ns each way.
        let slave_at = |master_ns: i128| master_ns + (master_ns - base) * 30 / 1_000_000;
        let mut buf = [0u8; 128];
        for seq in 1..=8u16 {
            let t = 1.0 + f64::from(seq);
            let t1 = base + (t * 1e9) as i128;
            let t2 = slave_at(t1 + 200);
            port.handle_message(&sync(good, seq, t1), t2, at(t));
            drain(&mut port, &mut ev);
            // Delay_Reqs when the port's timer says, up to a second after the Sync.
            for tenth in 1..10i32 {
                let now = t + f64::from(tenth) / 10.0;
                let mut next = timeout(&mut port, at(now), &mut buf, &mut ev);
                while let Some(Transmit { len, kind }) =
                    next.take().or_else(|| port.poll_transmit(&mut buf))
                {
                    let req = PtpHeader::parse(&buf[..len]).unwrap();
                    assert_eq!(kind, Outgoing::DelayReq);
                    let t3_master = t1 + i128::from(tenth) * 100_000_000;
                    port.handle_transmit_timestamp(kind, slave_at(t3_master));
                    let t4 = t3_master + 200;
                    port.handle_message(
                        &delay_resp(good, me, req.sequence_id, t4),
                        0,
                        at(now + 0.01),
                    );
                    drain(&mut port, &mut ev);
                }
            }
        }
        let delay = port.path_delay_ns().expect("a path delay");
        assert!((delay - 200.0).abs() < 5.0, "{delay}");
    }

    #[test]
    fn listening_uncalibrated_slave_then_failover_on_announce_timeout() {
        let me = PortIdentity {
            clock_identity: ClockIdentity::from_mac([0x02, 0, 0, 0, 0, 9]),
            port_number: 1,
        };
        let mut port = PtpPort::new(me, PortConfig::default());
        let mut ev = Vec::new();
        assert_eq!(port.state(), PortState::Listening);
        let (good, backup) = (master(1), master(2));
        // Both announce; the first Announce alone does not qualify a master.
        port.handle_message(&announce(backup, 200, 1), 0, at(0.0));
        drain(&mut port, &mut ev);
        port.handle_message(&announce(good, 100, 1), 0, at(0.1));
        drain(&mut port, &mut ev);
        assert_eq!(port.state(), PortState::Listening);
        port.handle_message(&announce(backup, 200, 2), 0, at(1.0));
        drain(&mut port, &mut ev);
        port.handle_message(&announce(good, 100, 2), 0, at(1.1));
        drain(&mut port, &mut ev);
        assert_eq!(port.state(), PortState::Uncalibrated);
        assert_eq!(port.parent().unwrap().sender, good, "priority1 100 wins");
        assert!(ev.contains(&PortEvent::UtcOffset(37)));
        // A master on an arbitrary timescale: no TAI to correct, the offset is 0.
        let mut arb = announce(good, 100, 3);
        arb[7] &= !(Flags::PTP_TIMESCALE as u8); // flagField byte 1 (Table 37)
        port.handle_message(&arb, 0, at(1.15));
        drain(&mut port, &mut ev);
        assert_eq!(ev.last(), Some(&PortEvent::UtcOffset(0)), "{ev:?}");
        // The parent's leap61 flag (flagField byte 1, bit 0): a second to insert; then
        // withdrawn. A stranger's flag is nobody's business.
        let mut leap = announce(good, 100, 4);
        leap[7] |= Flags::LEAP_61 as u8;
        port.handle_message(&leap, 0, at(1.16));
        drain(&mut port, &mut ev);
        assert_eq!(ev.last(), Some(&PortEvent::Leap(Leap::Insert)), "{ev:?}");
        let mut stranger = announce(master(7), 200, 1);
        stranger[7] |= Flags::LEAP_59 as u8;
        port.handle_message(&stranger, 0, at(1.17));
        drain(&mut port, &mut ev);
        assert_eq!(ev.last(), Some(&PortEvent::Leap(Leap::Insert)), "{ev:?}");
        port.handle_message(&announce(good, 100, 5), 0, at(1.18));
        drain(&mut port, &mut ev);
        assert!(ev.contains(&PortEvent::Leap(Leap::None)), "{ev:?}");
        // Exchanges: the master is 1 us ahead, 50 us each way.
        let base: i128 = 1_700_000_000_000_000_000;
        let mut buf = [0u8; 128];
        let mut seq = 0u16;
        let mut t = 1.2;
        for _ in 0..12 {
            seq += 1;
            let t1 = base + (t * 1e9) as i128;
            let t2 = t1 + 50_000 - 1_000;
            port.handle_message(&sync(good, seq, t1), t2, at(t));
            drain(&mut port, &mut ev);
            if let Some(Transmit { len, .. }) = timeout(&mut port, at(t + 0.01), &mut buf, &mut ev)
            {
                let req = PtpHeader::parse(&buf[..len]).unwrap();
                assert_eq!(req.message_type, MessageType::DelayReq);
                let t3 = t2 + 10_000_000;
                port.handle_transmit_timestamp(Outgoing::DelayReq, t3);
                let t4 = t3 + 50_000 + 1_000;
                port.handle_message(&delay_resp(good, me, req.sequence_id, t4), 0, at(t + 0.02));
                drain(&mut port, &mut ev);
            }
            if seq % 2 == 0 {
                port.handle_message(&announce(good, 100, 2 + seq), 0, at(t));
                drain(&mut port, &mut ev);
                port.handle_message(&announce(backup, 200, 2 + seq), 0, at(t));
                drain(&mut port, &mut ev);
            }
            t += 1.0;
        }
        assert_eq!(port.state(), PortState::Slave);
        let delay = port.path_delay_ns().unwrap();
        assert!((delay - 50_000.0).abs() < 1.0, "{delay}");
        let last = ev
            .iter()
            .rev()
            .find_map(|e| match e {
                PortEvent::Sample(s) => Some(*s),
                _ => None,
            })
            .unwrap();
        assert!((last.raw_offset_ns + 1_000.0).abs() < 1.0, "{last:?}");
        // The script does not apply the servo's frequency to its clock: the filtered
        // estimate, which expects it to, is off by a little.
        assert!((last.offset_ns + 1_000.0).abs() < 10.0, "{last:?}");
        // The good master falls silent; the backup goes on. After three announce
        // intervals the port fails over.
        ev.clear();
        for k in 0..5 {
            let tk = t + f64::from(k);
            port.handle_message(&announce(backup, 200, 100 + k as u16), 0, at(tk));
            drain(&mut port, &mut ev);
            if let Some(due) = port.poll_timeout() {
                if due <= at(tk) {
                    let _ = timeout(&mut port, at(tk), &mut buf, &mut ev);
                }
            }
        }
        assert_eq!(port.parent().unwrap().sender, backup, "{ev:?}");
        assert_eq!(port.state(), PortState::Uncalibrated);
    }

    #[test]
    fn peer_delay_measures_the_link_and_answers_the_peer() {
        let me = master(7);
        let peer = master(1);
        let mut port = PtpPort::new(
            me,
            PortConfig {
                delay_mechanism: DelayMechanism::P2p,
                ..PortConfig::default()
            },
        );
        let mut ev = Vec::new();
        let mut buf = [0u8; 128];
        // Our Pdelay_Req goes out at once, even while listening.
        let Transmit { len, kind } = timeout(&mut port, at(0.0), &mut buf, &mut ev).unwrap();
        assert_eq!(kind, Outgoing::PdelayReq);
        let req = PtpHeader::parse(&buf[..len]).unwrap();
        assert_eq!(req.message_type, MessageType::PdelayReq);
        let t1: i128 = 1_700_000_000_000_000_000;
        port.handle_transmit_timestamp(Outgoing::PdelayReq, t1);
        // A two-step responder: t2 = t1 + 30 us (link 30 us, clocks equal), t3 = t2 + 100 us.
        let (t2, t3) = (t1 + 30_000, t1 + 130_000);
        let t4 = t3 + 30_000;
        let mut h = PtpHeader::new(MessageType::PdelayResp, peer, req.sequence_id);
        h.flags = Flags(Flags::TWO_STEP);
        let mut out = [0u8; 64];
        let n = MessageWriter::new(
            &mut out,
            &h,
            &Body::PdelayResp {
                request_receipt_timestamp: PtpTimestamp::from_tai_nanos(t2).unwrap(),
                requesting_port_identity: me,
            },
        )
        .unwrap()
        .finish()
        .unwrap();
        port.handle_message(&out[..n], t4, at(0.001));
        drain(&mut port, &mut ev);
        let h = PtpHeader::new(MessageType::PdelayRespFollowUp, peer, req.sequence_id);
        let n = MessageWriter::new(
            &mut out,
            &h,
            &Body::PdelayRespFollowUp {
                response_origin_timestamp: PtpTimestamp::from_tai_nanos(t3).unwrap(),
                requesting_port_identity: me,
            },
        )
        .unwrap()
        .finish()
        .unwrap();
        port.handle_message(&out[..n], 0, at(0.002));
        drain(&mut port, &mut ev);
        assert_eq!(port.path_delay_ns(), Some(30_000.0));
        // The peer asks us: a two-step answer with our receive time, then the follow-up
        // with the transmit time we report.
        let h = PtpHeader::new(MessageType::PdelayReq, peer, 77);
        let n = MessageWriter::new(
            &mut out,
            &h,
            &Body::PdelayReq {
                origin_timestamp: PtpTimestamp::ZERO,
            },
        )
        .unwrap()
        .finish()
        .unwrap();
        port.handle_message(&out[..n], t1 + 5_000, at(0.5));
        drain(&mut port, &mut ev);
        let Transmit { len, kind } = port.poll_transmit(&mut buf).unwrap();
        assert_eq!(kind, Outgoing::PdelayResp);
        let resp = PtpMessage::parse(&buf[..len]).unwrap();
        assert_eq!(resp.header.sequence_id, 77);
        assert!(resp.header.flags.two_step());
        assert_eq!(
            resp.body,
            Body::PdelayResp {
                request_receipt_timestamp: PtpTimestamp::from_tai_nanos(t1 + 5_000).unwrap(),
                requesting_port_identity: peer,
            }
        );
        port.handle_transmit_timestamp(Outgoing::PdelayResp, t1 + 9_000);
        let Transmit { len, kind } = port.poll_transmit(&mut buf).unwrap();
        assert_eq!(kind, Outgoing::PdelayRespFollowUp);
        let fup = PtpMessage::parse(&buf[..len]).unwrap();
        assert_eq!(
            fup.body,
            Body::PdelayRespFollowUp {
                response_origin_timestamp: PtpTimestamp::from_tai_nanos(t1 + 9_000).unwrap(),
                requesting_port_identity: peer,
            }
        );
        assert!(port.poll_transmit(&mut buf).is_none());
    }

    /// Runs a port through a master 3 ms ahead (a step at lock, then frequencies) and
    /// returns the actions it asked for.
    fn actions_with(steering: bool) -> Vec<ClockAction> {
        actions_refusing(steering, 8, None, |_| false)
    }

    /// The same for `syncs` Syncs, with the clock refusing the actions `refuse` picks
    /// (told to the port, and not returned), and the port told to stop steering at Sync
    /// `stop_at` before its actions are taken; the clock itself never moves.
    fn actions_refusing(
        steering: bool,
        syncs: u16,
        stop_at: Option<u16>,
        mut refuse: impl FnMut(&ClockAction) -> bool,
    ) -> Vec<ClockAction> {
        let me = PortIdentity {
            clock_identity: ClockIdentity::from_mac([0x02, 0, 0, 0, 0, 9]),
            port_number: 1,
        };
        let mut port = PtpPort::new(
            me,
            PortConfig {
                steering,
                ..PortConfig::default()
            },
        );
        let mut ev = Vec::new();
        let good = master(1);
        port.handle_message(&announce(good, 100, 1), 0, at(0.0));
        port.handle_message(&announce(good, 100, 2), 0, at(1.0));
        let base: i128 = 1_700_000_000_000_000_000;
        let mut buf = [0u8; 128];
        let mut actions = Vec::new();
        for seq in 1..=syncs {
            let t = 1.0 + f64::from(seq);
            port.handle_message(&announce(good, 100, 2 + seq), 0, at(t));
            let t1 = base + (t * 1e9) as i128;
            let t2 = t1 + 50_000 - 3_000_000;
            port.handle_message(&sync(good, seq, t1), t2, at(t));
            if let Some(Transmit { len, .. }) = timeout(&mut port, at(t + 0.01), &mut buf, &mut ev)
            {
                let req = PtpHeader::parse(&buf[..len]).unwrap();
                let t3 = t2 + 10_000_000;
                port.handle_transmit_timestamp(Outgoing::DelayReq, t3);
                let t4 = t3 + 50_000 + 3_000_000;
                port.handle_message(&delay_resp(good, me, req.sequence_id, t4), 0, at(t + 0.02));
            }
            if stop_at == Some(seq) {
                port.set_steering(false);
                assert!(!port.steering());
            }
            while let Some(action) = port.poll_action() {
                if refuse(&action) {
                    port.handle_action_refused(action);
                } else {
                    actions.push(action);
                }
            }
        }
        actions
    }

    /// A step the clock refused (a kernel that said no, a step out of its range) is asked
    /// for again: the servo no longer believes it moved the clock.
    #[test]
    fn a_refused_step_is_asked_for_again() {
        let mut refused = 0;
        let actions = actions_refusing(true, 12, None, |a| {
            let step = matches!(a, ClockAction::Step { .. });
            if step && refused == 0 {
                refused += 1;
                return true;
            }
            false
        });
        assert_eq!(refused, 1);
        let step = actions.iter().find_map(|a| match a {
            ClockAction::Step { offset } => Some(*offset),
            _ => None,
        });
        assert!(
            step.is_some_and(|s| (s - 0.003).abs() < 1e-6),
            "a second step of the whole 3 ms: {actions:?}"
        );
    }

    /// Told to stop steering at the Sync that locks (the step and a frequency queued),
    /// the port drops what is queued and gives nothing after.
    #[test]
    fn a_port_told_to_stop_steering_gives_no_actions() {
        let steering = actions_with(true);
        let step_at = steering
            .iter()
            .position(|a| matches!(a, ClockAction::Step { .. }))
            .unwrap();
        let stopped = actions_refusing(true, 8, Some(3), |_| false);
        assert!(
            !stopped
                .iter()
                .any(|a| matches!(a, ClockAction::Step { .. })),
            "{stopped:?}"
        );
        // Only what came before the stop: the actions before the step.
        assert_eq!(stopped, steering[..step_at], "{stopped:?}");
    }

    #[test]
    fn a_steering_port_asks_for_a_step_then_frequencies_and_an_observing_one_for_nothing() {
        let actions = actions_with(true);
        let step = actions.iter().find_map(|a| match a {
            ClockAction::Step { offset } => Some(*offset),
            _ => None,
        });
        // The slave is 3 ms behind: the servo's first step moves it forward.
        assert!(
            step.is_some_and(|s| (s - 0.003).abs() < 1e-6),
            "{actions:?}"
        );
        assert!(
            actions
                .iter()
                .filter(|a| matches!(a, ClockAction::SetFrequency { .. }))
                .count()
                >= 2,
            "{actions:?}"
        );
        assert!(actions_with(false).is_empty());
    }

    /// A Sync delayed 97 us (a scheduling spike, seen about once a minute on a veth):
    /// the sample says so, keeps the estimate as its offset and the spike apart.
    #[test]
    fn a_spike_reports_the_estimate_as_offset_and_the_spike_apart() {
        let me = PortIdentity {
            clock_identity: ClockIdentity::from_mac([0x02, 0, 0, 0, 0, 9]),
            port_number: 1,
        };
        let mut port = PtpPort::new(
            me,
            PortConfig {
                steering: false,
                ..PortConfig::default()
            },
        );
        let mut ev = Vec::new();
        let good = master(1);
        port.handle_message(&announce(good, 100, 1), 0, at(0.0));
        port.handle_message(&announce(good, 100, 2), 0, at(1.0));
        let base: i128 = 1_700_000_000_000_000_000;
        let mut buf = [0u8; 128];
        let mut samples = Vec::new();
        for seq in 1..=60u16 {
            let t = 1.0 + f64::from(seq) / 8.0;
            if seq % 8 == 0 {
                port.handle_message(&announce(good, 100, 2 + seq), 0, at(t));
            }
            let t1 = base + (t * 1e9) as i128;
            // 1 us behind, 50 us each way, 100 ns of jitter; the 50th Sync 97 us late.
            let jitter = i128::from(seq % 3) * 100 - 100;
            let late = if seq == 50 { 97_000 } else { 0 };
            let t2 = t1 + 50_000 - 1_000 + jitter + late;
            port.handle_message(&sync(good, seq, t1), t2, at(t));
            if let Some(Transmit { len, .. }) = timeout(&mut port, at(t + 0.01), &mut buf, &mut ev)
            {
                let req = PtpHeader::parse(&buf[..len]).unwrap();
                let t3 = t2 - late + 10_000_000;
                port.handle_transmit_timestamp(Outgoing::DelayReq, t3);
                let t4 = t3 + 50_000 + 1_000;
                port.handle_message(&delay_resp(good, me, req.sequence_id, t4), 0, at(t + 0.02));
            }
            drain(&mut port, &mut ev);
            samples.extend(ev.drain(..).filter_map(|e| match e {
                PortEvent::Sample(s) => Some(s),
                _ => None,
            }));
        }
        let spikes: Vec<_> = samples.iter().filter(|s| s.spike).collect();
        assert_eq!(spikes.len(), 1, "{samples:?}");
        let spike = spikes[0];
        assert!(
            (spike.raw_offset_ns - 96_000.0).abs() < 500.0,
            "the spike itself: {spike:?}"
        );
        assert!(
            (spike.offset_ns + 1_000.0).abs() < 500.0,
            "the offset is the estimate, not the spike: {spike:?}"
        );
    }

    #[test]
    fn sixteen_spoofed_announces_do_not_lock_the_port_out() {
        let me = master(9);
        let mut port = PtpPort::new(me, PortConfig::default());
        for n in 0..16u8 {
            let spoofed = PortIdentity {
                clock_identity: ClockIdentity([0xEE, n, 0, 0xFF, 0xFE, 0, 0, n]),
                port_number: 1,
            };
            port.handle_message(&announce(spoofed, 1, 1), 0, at(0.0));
        }
        let real = master(1);
        port.handle_message(&announce(real, 128, 1), 0, at(1.0));
        port.handle_message(&announce(real, 128, 2), 0, at(2.0));
        assert_eq!(port.parent().map(|p| p.sender), Some(real));
        assert_eq!(port.state(), PortState::Uncalibrated);
    }

    fn pdelay_req(from: PortIdentity, seq: u16) -> Vec<u8> {
        let h = PtpHeader::new(MessageType::PdelayReq, from, seq);
        let mut buf = [0u8; 64];
        let body = Body::PdelayReq {
            origin_timestamp: PtpTimestamp::ZERO,
        };
        let len = MessageWriter::new(&mut buf, &h, &body)
            .unwrap()
            .finish()
            .unwrap();
        buf[..len].to_vec()
    }

    #[test]
    fn a_pdelay_req_flood_never_stops_an_e2e_slaves_delay_req() {
        let me = master(9);
        let mut port = PtpPort::new(me, PortConfig::default());
        let good = master(1);
        port.handle_message(&announce(good, 100, 1), 0, at(0.0));
        port.handle_message(&announce(good, 100, 2), 0, at(1.0));
        let stranger = master(5);
        let mut buf = [0u8; 128];
        let (mut delay_reqs, mut answers) = (0, 0);
        for tenth in 10..100u16 {
            let now = at(f64::from(tenth) / 10.0);
            if tenth % 10 == 0 {
                port.handle_message(&announce(good, 100, 2 + tenth), 0, now);
            }
            for k in 0..5 {
                port.handle_message(&pdelay_req(stranger, tenth * 5 + k), 1, now);
            }
            port.handle_timeout(now);
            while let Some(Transmit { kind, .. }) = port.poll_transmit(&mut buf) {
                match kind {
                    Outgoing::DelayReq => {
                        delay_reqs += 1;
                        port.handle_transmit_timestamp(kind, 2);
                    }
                    _ => answers += 1,
                }
            }
        }
        assert_eq!(answers, 0, "E2E answers no Pdelay_Req");
        assert!(delay_reqs >= 4, "{delay_reqs} Delay_Req in 9 s");
    }

    #[test]
    fn only_the_parents_announce_interval_sets_the_receipt_timeout() {
        let me = master(9);
        let mut port = PtpPort::new(me, PortConfig::default());
        let good = master(1);
        let stranger = master(5);
        let mut slow = announce(stranger, 200, 1);
        slow[33] = 6; // logMessageInterval 6: 64 s
        port.handle_message(&announce(good, 100, 1), 0, at(0.0));
        port.handle_message(&announce(good, 100, 2), 0, at(1.0));
        port.handle_message(&slow, 0, at(1.5));
        assert_eq!(port.parent().map(|p| p.sender), Some(good));
        // The parent falls silent: three of its 1 s intervals later it is gone.
        for k in 0..10 {
            let now = at(1.5 + 0.5 * f64::from(k));
            if port.poll_timeout().is_some_and(|due| due <= now) {
                port.handle_timeout(now);
            }
        }
        assert_eq!(
            port.parent(),
            None,
            "failover waited on a stranger's interval"
        );
        assert_eq!(port.state(), PortState::Listening);
    }

    #[test]
    fn a_parent_announcing_every_few_ms_does_not_shrink_everyone_elses_window() {
        // Found by the ptp_port fuzz target: a made-up master announcing every 7.8 ms
        // (logMessageInterval -7) became parent, then went quiet; the real master,
        // announcing every second, could never qualify within 4 x 7.8 ms again.
        let me = master(9);
        let mut port = PtpPort::new(me, PortConfig::default());
        let mut fast = announce(master(5), 1, 1);
        fast[33] = (-7i8) as u8;
        port.handle_message(&fast, 0, at(0.0));
        port.handle_message(&fast, 0, at(0.0));
        let real = master(1);
        for k in 1..=4u16 {
            let now = at(f64::from(k));
            port.handle_timeout(now);
            port.handle_message(&announce(real, 0, k), 0, now);
        }
        assert_eq!(port.parent().map(|p| p.sender), Some(real));
    }

    #[test]
    fn messages_of_other_domains_and_from_itself_are_ignored() {
        let me = master(9);
        let mut port = PtpPort::new(me, PortConfig::default());
        let mut ev = Vec::new();
        let mut other_domain = announce(master(1), 1, 1);
        other_domain[4] = 5;
        for k in 0..4 {
            port.handle_message(&other_domain, 0, at(f64::from(k)));
            drain(&mut port, &mut ev);
            port.handle_message(&announce(me, 1, k as u16), 0, at(f64::from(k)));
            drain(&mut port, &mut ev);
            port.handle_message(&[0xFF; 20], 0, at(f64::from(k)));
            drain(&mut port, &mut ev);
        }
        assert_eq!(port.state(), PortState::Listening);
        assert!(ev.is_empty());
    }
}
