//! The discrete-event engine: a queue of events in true time, nodes running the real
//! Tempora code, every packet emitted and parsed by ntp-proto or ptp-proto.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tempora_clock_discipline::{
    DisciplineConfig, LeapConfig, LeapScheduler, LeapSecondsList, LeapSmear, RfcConfig, SmearShape,
};
use tempora_clock_filter::{CandidateVerdict, SelectionConfig};
use tempora_clock_types::{BoundSnapshot, ClockAction, Leap, LeapAction, SteeredClock};
use tempora_ntp::{
    DisciplineKind, NtpSource, NtpSystem, REQUEST_LEN, SourceConfig, StepQuorum, SystemConfig,
    SystemEvent,
};
use tempora_ntp_proto::{
    KissCode, Log2Seconds, NtpDuration, NtpHeader, ReferenceId, ServerState, Stratum,
    kiss_of_death, server_response,
};
use tempora_ptp::{Outgoing, PortConfig, PtpPort, Transmit};
use tempora_ptp_proto::{
    AnnounceBody, Body, ClockAccuracy, ClockIdentity, ClockQuality, Flags, LogInterval,
    MessageType, MessageWriter, PortIdentity, PtpHeader, PtpMessage, PtpTimestamp, TimeSource,
};

use crate::model::{Link, Rng, SimClock};
use crate::scenario::{Happening, NtpScenario, PtpScenario, Role, Scenario, Variant, World};
use crate::stats::{BoundTrace, NodeTrace, RunResult, SourceRow, Tracking};

const NS: f64 = 1e9;

fn ns(seconds: f64) -> i64 {
    (seconds * NS).round() as i64
}

/// The event queue: earliest first, ties in order of scheduling (deterministic).
struct Queue<E> {
    heap: BinaryHeap<Reverse<(i64, u64)>>,
    events: std::collections::HashMap<u64, E>,
    seq: u64,
}

impl<E> Queue<E> {
    fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            events: std::collections::HashMap::new(),
            seq: 0,
        }
    }

    fn push(&mut self, at: i64, event: E) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq)));
        self.events.insert(self.seq, event);
    }

    fn pop(&mut self) -> Option<(i64, E)> {
        let Reverse((at, seq)) = self.heap.pop()?;
        self.events.remove(&seq).map(|e| (at, e))
    }
}

enum NtpEvent {
    Request {
        server: usize,
        client: usize,
        source: usize,
        bytes: [u8; 48],
    },
    Response {
        client: usize,
        source: usize,
        bytes: [u8; 48],
    },
    /// The node's system asked to be woken (only the newest wake-up counts).
    Timer {
        node: usize,
        generation: u64,
    },
    Sample,
    Jump {
        node: usize,
        seconds: f64,
    },
}

/// How long a published bound stays trusted without a new write, as the daemon sets it.
const BOUND_VALID_NS: i64 = 10_000_000_000;

struct SimNode {
    clock: SimClock,
    role: Role,
    system: Option<NtpSystem>,
    links: Vec<(usize, Link)>,
    serve_drift: Option<(f64, f64)>,
    discipline_errors: u32,
    trace: NodeTrace,
    /// The generation of the node's newest Timer event.
    timer_generation: u64,
    /// The error bound the node's daemon published last, as applications read it.
    segment: Option<BoundSnapshot>,
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC as the daemon's own steps left it, seconds.
    expected_realtime_offset: Option<f64>,
    /// The leap-seconds list of a leap run.
    leap_list: Option<LeapSecondsList>,
    /// A client's leap scheduler (with the list).
    leap: Option<LeapScheduler>,
    /// Leap seconds the clock had taken at the last publish.
    leaps_seen: u32,
}

/// tzdata 2025b's leap-seconds list, which every node of a leap run has.
const TZDATA_LEAP_LIST: &[u8] = include_bytes!("../../clock-discipline/tests/leap-seconds.list");

impl SimNode {
    /// The clock's reading, Unix seconds.
    fn utc(&self) -> i64 {
        (self.clock.read_unix(0.0).as_nanos() / 1_000_000_000) as i64
    }
}

impl SimNode {
    /// After the system ran: sends its requests down the links, applies its actions,
    /// counts the updates that gave nothing, and schedules its next wake-up.
    fn drain(&mut self, index: usize, t: i64, queue: &mut Queue<NtpEvent>, rng: &mut Rng) {
        let Some(system) = self.system.as_mut() else {
            return;
        };
        let seconds = t as f64 / NS;
        let mut buf = [0u8; REQUEST_LEN];
        while let Some(transmit) = system.poll_transmit(&mut buf) {
            let (server, link) = &self.links[transmit.source];
            if let Some(delay) = link.delay(true, seconds, rng) {
                queue.push(
                    t + ns(delay),
                    NtpEvent::Request {
                        server: *server,
                        client: index,
                        source: transmit.source,
                        bytes: buf,
                    },
                );
            }
        }
        while let Some(action) = system.poll_action() {
            apply(&mut self.clock, &action);
            if let (ClockAction::Step { offset }, Some(expected)) =
                (action, self.expected_realtime_offset.as_mut())
            {
                *expected += offset;
            }
        }
        let utc = (self.clock.read_unix(0.0).as_nanos() / 1_000_000_000) as i64;
        while let Some(event) = system.poll_event() {
            match event {
                SystemEvent::NotUpdated(_) => self.discipline_errors += 1,
                // What ntp-client does with the leap vote: checked against the list,
                // armed in the kernel on its day.
                SystemEvent::Updated(e) => {
                    if let Some(ClockAction::SetLeap(l)) =
                        self.leap.as_mut().and_then(|s| s.update(e.leap, utc))
                    {
                        apply(&mut self.clock, &ClockAction::SetLeap(l));
                    }
                }
                _ => {}
            }
        }
        if let Some(list) = &self.leap_list {
            system.set_leap_window(list.leap_near(utc, 86_400).is_some());
        }
        if let Some(due) = system.poll_timeout() {
            self.timer_generation += 1;
            queue.push(
                self.clock.true_time_of(due).max(t + 1),
                NtpEvent::Timer {
                    node: index,
                    generation: self.timer_generation,
                },
            );
        }
        self.publish();
    }
}

impl SimNode {
    /// What the daemon does once a second and after every update: checks that nobody
    /// stepped the clock behind its back (CLOCK_REALTIME against CLOCK_MONOTONIC), then
    /// publishes its error bound.
    fn publish(&mut self) {
        let Some(system) = self.system.as_mut() else {
            return;
        };
        let mono = self.clock.monotonic_adjusted_ns();
        let realtime_offset = (self.clock.realtime_ns() - i128::from(mono)) as f64 * 1e-9;
        // A leap second the kernel took moves the realtime clock too, and is no
        // disruption (the daemon reads the kernel's TIME_OOP/TIME_WAIT for it).
        let leaps = self.clock.leaps_taken();
        if let Some(expected) = self.expected_realtime_offset {
            if (realtime_offset - expected).abs() > 1e-3 && leaps == self.leaps_seen {
                system.handle_disruption();
            }
        }
        self.leaps_seen = leaps;
        self.expected_realtime_offset = Some(realtime_offset);
        let bound = system.error_bound(self.clock.monotonic());
        self.segment = Some(BoundSnapshot::publish(
            &bound,
            mono,
            BOUND_VALID_NS,
            Some((self.clock.realtime_ns() - i128::from(mono)) as i64),
        ));
    }
}

/// Runs a scenario with a seed; `duration` overrides the scenario's.
pub fn run(scenario: &Scenario, seed: u64, duration: Option<f64>, variant: Variant) -> RunResult {
    let duration = duration.unwrap_or(scenario.duration);
    let started = std::time::Instant::now();
    let mut result = match &scenario.world {
        World::Ntp(world) => run_ntp(world, seed, duration, variant),
        World::Ptp(world) => run_ptp(world, seed, duration),
    };
    result.scenario = scenario.name.into();
    result.seed = seed;
    result.duration = duration;
    result.wall_seconds = started.elapsed().as_secs_f64();
    result.evaluate(&scenario.bars);
    result
}

fn reference_id_of(node: usize) -> ReferenceId {
    ReferenceId::from_ipv4(std::net::Ipv4Addr::new(10, 0, 0, (node + 1).min(254) as u8))
}

fn run_ntp(world: &NtpScenario, seed: u64, duration: f64, variant: Variant) -> RunResult {
    let mut rng = Rng::new(seed);
    let mut queue = Queue::new();
    let end = ns(duration);
    let mut nodes: Vec<SimNode> = world
        .nodes
        .iter()
        .map(|spec| SimNode {
            clock: SimClock::new(spec.clock),
            role: spec.role.clone(),
            system: None,
            links: Vec::new(),
            serve_drift: None,
            discipline_errors: 0,
            trace: NodeTrace::new(&spec.name),
            timer_generation: 0,
            segment: None,
            expected_realtime_offset: None,
            leap_list: None,
            leap: None,
            leaps_seen: 0,
        })
        .collect();
    // A leap run: every clock starts at the epoch; true UTC takes the list's leap; the
    // primaries' kernels take it too, and every client checks announcements against it.
    let leap_list = world
        .leap_epoch
        .and_then(|_| LeapSecondsList::parse(TZDATA_LEAP_LIST).ok());
    if let (Some(epoch), Some(list)) = (world.leap_epoch, leap_list) {
        let utc_leap = list.leap_near(epoch, 2 * 86_400).and_then(|(at, leap)| {
            let second = match leap {
                Leap::Insert => 1.0,
                Leap::Delete => -1.0,
                _ => return None,
            };
            (at > epoch).then_some(((at - epoch) as f64, second))
        });
        for node in &mut nodes {
            node.clock.set_epoch(epoch, utc_leap);
            node.leap_list = Some(list);
            if !matches!(node.role, Role::Client { .. }) {
                let action = match list.leap_at_end_of_day(epoch) {
                    Leap::Insert => LeapAction::Insert,
                    Leap::Delete => LeapAction::Delete,
                    _ => LeapAction::None,
                };
                apply(&mut node.clock, &ClockAction::SetLeap(action));
            }
        }
    }
    for (i, node) in nodes.iter_mut().enumerate() {
        if let Role::Client { upstreams } = &node.role {
            let source_config = SourceConfig {
                min_poll: world.poll.0,
                max_poll: world.poll.1,
                iburst: true,
                estimator: variant.estimator(),
                precision: 1e-7,
                frequency_error: world.drift_file.map(|_| 1e-6),
                nts: false,
            };
            // A drift file: the clock's frequency set to what the oscillator needs, off by
            // the file's error.
            let start_ppm = world
                .drift_file
                .map_or(0.0, |error| error - node.clock.frequency_error_ppm());
            let Ok(()) = node.clock.set_frequency(start_ppm);
            let now = node.clock.monotonic();
            // Spread the first polls a little, as daemons starting together would.
            let sources = (0..upstreams.len())
                .map(|s| NtpSource::new(source_config, now.add_seconds(0.01 * (i * 7 + s) as f64)))
                .collect();
            let discipline = match variant {
                Variant::Rfc => DisciplineKind::Rfc(RfcConfig::default()),
                _ => DisciplineKind::Default(DisciplineConfig {
                    step: variant.step(world.step),
                    ..DisciplineConfig::default()
                }),
            };
            node.system = Some(NtpSystem::new(
                sources,
                SystemConfig {
                    selection: SelectionConfig::default(),
                    discipline,
                    observe_only: false,
                    step_quorum: StepQuorum::Majority,
                },
                start_ppm,
            ));
            if let Some(system) = node.system.as_mut() {
                for (k, u) in upstreams.iter().enumerate() {
                    system.set_source_smeared(k, u.smeared);
                }
            }
            if node.leap_list.is_some() {
                node.leap = Some(LeapScheduler::with_list(
                    LeapConfig::default(),
                    node.leap_list,
                ));
            }
            node.links = upstreams.iter().map(|u| (u.node, u.link.clone())).collect();
            node.drain(i, 0, &mut queue, &mut rng);
        }
    }
    for h in &world.happenings {
        match *h {
            Happening::ClockJump { node, at, seconds } => {
                queue.push(ns(at), NtpEvent::Jump { node, seconds })
            }
            Happening::ServeDrift {
                node,
                from,
                drift_ppm,
            } => {
                if let Some(n) = nodes.get_mut(node) {
                    n.serve_drift = Some((from, drift_ppm));
                }
            }
        }
    }
    // A leap run samples a quarter second past each whole second, so that no sample
    // falls on the instant a clock takes its leap.
    queue.push(
        if world.leap_epoch.is_some() {
            ns(0.25)
        } else {
            0
        },
        NtpEvent::Sample,
    );
    // What the demo client measures of each of its servers, once a second.
    let mut seen: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut bounds = BoundTrace::default();

    while let Some((t, event)) = queue.pop() {
        if t > end {
            break;
        }
        for node in &mut nodes {
            node.clock.advance(t, &mut rng);
        }
        let seconds = t as f64 / NS;
        match event {
            NtpEvent::Sample => {
                for node in &mut nodes {
                    if node.system.is_some() {
                        node.trace.record(
                            seconds,
                            node.clock.error(),
                            node.clock.frequency_error_ppm(),
                        );
                    }
                }
                record_bounds(&nodes[world.client], &mut bounds);
                if let Some(system) = nodes[world.client].system.as_ref() {
                    let sources = system.sources();
                    seen.resize_with(sources.len(), Vec::new);
                    for (points, source) in seen.iter_mut().zip(sources) {
                        if let Some(m) = source.last_measurement() {
                            points.push((seconds, m.offset));
                        }
                    }
                }
                // The daemons' once-a-second write, just after the read: the next read
                // finds a segment a second old (the oldest a daemon leaves it) unless an
                // update wrote it since.
                for node in &mut nodes {
                    node.publish();
                }
                queue.push(t + ns(1.0), NtpEvent::Sample);
            }
            NtpEvent::Jump {
                node,
                seconds: jump,
            } => {
                if let Some(n) = nodes.get_mut(node) {
                    n.clock.jump(jump);
                }
            }
            NtpEvent::Request {
                server,
                client,
                source,
                bytes,
            } => {
                let Some(response) = serve(&mut nodes[server], &bytes, seconds, &mut rng) else {
                    continue;
                };
                let processing = 5e-6;
                let link = &nodes[client].links[source].1;
                if let Some(delay) = link.delay(false, seconds, &mut rng) {
                    queue.push(
                        t + ns(processing + delay),
                        NtpEvent::Response {
                            client,
                            source,
                            bytes: response,
                        },
                    );
                }
            }
            NtpEvent::Response {
                client,
                source,
                bytes,
            } => {
                let n = &mut nodes[client];
                let Some(system) = n.system.as_mut() else {
                    continue;
                };
                let mono = n.clock.monotonic();
                let t4 = n.clock.read_ntp(&mut rng);
                system.handle_response(source, &bytes, t4, mono);
                n.drain(client, t, &mut queue, &mut rng);
            }
            NtpEvent::Timer { node, generation } => {
                let n = &mut nodes[node];
                if generation != n.timer_generation {
                    continue;
                }
                let Some(system) = n.system.as_mut() else {
                    continue;
                };
                let mono = n.clock.monotonic();
                let local = n.clock.read_ntp(&mut rng);
                system.handle_timeout(mono, local, || Some(rng.next_u64()));
                // Not yet due (the monotonic clock rounds), or due again: drain reschedules.
                n.drain(node, t, &mut queue, &mut rng);
            }
        }
    }

    let client = world.client;
    let mut result = RunResult {
        bounds: Some(bounds),
        ..RunResult::default()
    };
    if let Role::Client { upstreams } = &nodes[client].role {
        result.seen = upstreams
            .iter()
            .zip(seen)
            .map(|(u, points)| (world.nodes[u.node].name.clone(), points))
            .collect();
    }
    for (i, node) in nodes.iter_mut().enumerate() {
        if node.system.is_none() {
            continue;
        }
        node.trace.steps = node.clock.steps();
        node.trace.leaps = node.clock.leaps_taken();
        node.trace.discipline_errors = node.discipline_errors;
        node.trace.tracked = i == client;
        result
            .nodes
            .push(std::mem::replace(&mut node.trace, NodeTrace::new("")));
    }
    if let Some(system) = nodes[client].system.as_ref() {
        let mono = nodes[client].clock.monotonic();
        let Role::Client { upstreams } = &nodes[client].role else {
            return result;
        };
        for (i, source) in system.sources().iter().enumerate() {
            let status = source.status(mono);
            let last = source.last_measurement();
            result.sources.push(SourceRow {
                name: world.nodes[upstreams[i].node].name.clone(),
                mark: status.mark.symbol(),
                verdict: format!(
                    "{:?}",
                    system
                        .verdicts()
                        .get(i)
                        .copied()
                        .unwrap_or(CandidateVerdict::None)
                ),
                stratum: last.map_or(0, |m| m.stratum),
                poll: source.poll(),
                reach: status.reach.0,
                last_rx: last.map_or(f64::NAN, |m| mono.seconds_since(m.time)),
                offset: status.offset,
                error: status.offset_error.max(status.jitter),
                delay: status.delay,
            });
        }
        let estimate = system.estimate();
        let peer = estimate.map(|e| world.nodes[upstreams[e.system_peer].node].name.clone());
        result.tracking = Some(Tracking {
            reference: peer.unwrap_or_else(|| "(none)".into()),
            stratum: estimate.map_or(16, |e| e.stratum),
            true_offset: nodes[client].clock.error(),
            last_offset: estimate.map_or(0.0, |e| e.offset),
            frequency_ppm: system.frequency_ppm(),
            true_frequency_error_ppm: nodes[client].clock.frequency_error_ppm(),
            residual_frequency_ppm: estimate
                .and_then(|e| e.frequency)
                .map_or(0.0, |f| f.0 * 1e6),
            skew_ppm: estimate
                .and_then(|e| e.frequency)
                .map_or(0.0, |f| f.1 * 1e6),
            root_delay: estimate.map_or(0.0, |e| e.root_delay),
            root_dispersion: estimate.map_or(0.0, |e| e.root_dispersion),
            update_interval: system
                .sources()
                .iter()
                .map(|s| f64::from(1u32 << s.poll().clamp(0, 17)))
                .fold(f64::INFINITY, f64::min),
            // As chronyc words it.
            leap: match estimate.map(|e| e.leap) {
                Some(tempora_clock_types::Leap::None) => "Normal",
                Some(tempora_clock_types::Leap::Insert) => "Insert second",
                Some(tempora_clock_types::Leap::Delete) => "Delete second",
                _ => "Not synchronised",
            }
            .into(),
            updates: system.updates(),
        });
    }
    result
}

/// One second of the bound trace: what an application reads from the client's segment
/// now, what ClockBound's formula makes of the same tracking data, and the truth.
fn record_bounds(node: &SimNode, trace: &mut BoundTrace) {
    let Some(system) = node.system.as_ref() else {
        return;
    };
    let reading = node.segment.and_then(|s| {
        s.read(node.clock.realtime_ns(), node.clock.monotonic_adjusted_ns())
            .ok()
    });
    trace.errors.push(node.clock.error());
    match reading {
        Some(r) if r.status.is_trusted() => {
            trace.bounds.push(r.bound_ns as f64 * 1e-9);
            trace.trusted.push(true);
        }
        _ => {
            trace.bounds.push(f64::INFINITY);
            trace.trusted.push(false);
        }
    }
    // ClockBound over chrony: root delay / 2 + root dispersion (chrony's, without the
    // offset, grown at its 1 ppm since the update) + |current correction|.
    let now = node.clock.monotonic();
    match (system.estimate(), system.last_update()) {
        (Some(e), Some(at)) => {
            let age = now.seconds_since(at).max(0.0);
            let dispersion = (e.root_dispersion - e.offset.abs()).max(0.0);
            trace.clockbound.push(
                e.root_delay / 2.0
                    + dispersion
                    + system.correction_remaining(now).abs()
                    + 1e-6 * age,
            );
            // ClockBound trusts FreeRunning as much as Synchronized: only Unknown
            // (never synchronised) is not.
            trace.clockbound_trusted.push(true);
        }
        _ => {
            trace.clockbound.push(f64::INFINITY);
            trace.clockbound_trusted.push(false);
        }
    }
}

/// A server node answers a request: its state, its time, its lie.
fn serve(node: &mut SimNode, request: &[u8; 48], seconds: f64, rng: &mut Rng) -> Option<[u8; 48]> {
    let req = NtpHeader::parse_bytes(request).ok()?;
    let utc = node.utc();
    // A smearing server: its time moves by the smear around the list's leap.
    let smear = match (&node.role, &node.leap_list) {
        (Role::Smearing { duration }, Some(list)) => list
            .leap_near(utc, (*duration / 2.0) as i64 + 2)
            .map_or(0.0, |(at, leap)| {
                let smear = LeapSmear {
                    shape: SmearShape::Linear,
                    duration: *duration,
                };
                let reading = node.clock.read_unix(0.0).as_nanos() as f64 * 1e-9;
                smear.offset(reading, at, leap, node.clock.leaps_taken() > 0)
            }),
        _ => 0.0,
    };
    let bias = match (&node.role, node.serve_drift) {
        (
            Role::Falseticker {
                bias,
                drift_ppm,
                from,
            },
            _,
        ) if seconds >= *from => bias + drift_ppm * 1e-6 * (seconds - from),
        (_, Some((from, drift_ppm))) if seconds >= from => drift_ppm * 1e-6 * (seconds - from),
        _ => 0.0,
    } + smear;
    // What the list says of tonight, for a primary's announcement.
    let listed =
        node.leap_list.map_or(
            tempora_ntp_proto::LeapIndicator::NoWarning,
            |list| match list.leap_at_end_of_day(utc) {
                Leap::Insert => tempora_ntp_proto::LeapIndicator::InsertSecond,
                Leap::Delete => tempora_ntp_proto::LeapIndicator::DeleteSecond,
                _ => tempora_ntp_proto::LeapIndicator::NoWarning,
            },
        );
    let shift = NtpDuration::from_seconds_f64(bias);
    let rx = node.clock.read_ntp(rng) + shift;
    let tx = rx + NtpDuration::from_seconds_f64(5e-6);
    let precision = Log2Seconds(-23);
    let state = match &node.role {
        Role::Primary | Role::Falseticker { .. } | Role::Smearing { .. } | Role::LeapLiar => {
            ServerState {
                leap: match node.role {
                    Role::Primary => listed,
                    Role::LeapLiar => tempora_ntp_proto::LeapIndicator::InsertSecond,
                    _ => tempora_ntp_proto::LeapIndicator::NoWarning,
                },
                stratum: Stratum(1),
                precision,
                root_delay: tempora_ntp_proto::NtpShort::ZERO,
                root_dispersion: tempora_ntp_proto::NtpShort::from_seconds_f64(1e-6),
                reference_id: ReferenceId(*b"GPS\0"),
                reference_timestamp: rx,
            }
        }
        Role::Client { upstreams } => {
            let upstreams: Vec<usize> = upstreams.iter().map(|u| u.node).collect();
            let system = node.system.as_ref()?;
            let mut state = system.server_state(precision, rx, |peer| {
                upstreams
                    .get(peer)
                    .map_or(ReferenceId::NONE, |&n| reference_id_of(n))
            });
            // A boundary server passes on only the leap its list accepts, as the daemon.
            if let (Some(scheduler), Some(e)) = (&node.leap, system.estimate()) {
                if state.leap != tempora_ntp_proto::LeapIndicator::Unsynchronized {
                    state.leap = match scheduler.decide(e.leap, utc).leap {
                        Leap::Insert => tempora_ntp_proto::LeapIndicator::InsertSecond,
                        Leap::Delete => tempora_ntp_proto::LeapIndicator::DeleteSecond,
                        _ => tempora_ntp_proto::LeapIndicator::NoWarning,
                    };
                }
            }
            state
        }
        Role::Unsynchronized => ServerState::UNSYNCHRONIZED,
        Role::KissRate => {
            return kiss_of_death(&req, KissCode::Rate)
                .ok()
                .map(|h| h.to_bytes());
        }
    };
    server_response(&req, &state, rx, tx)
        .ok()
        .map(|h| h.to_bytes())
}

fn apply(clock: &mut SimClock, action: &ClockAction) {
    // The simulated clock cannot fail.
    let Ok(()) = clock.apply(action);
}

enum PtpEvent {
    Announce,
    Sync,
    ToSlave {
        bytes: Vec<u8>,
    },
    DelayReq {
        bytes: Vec<u8>,
    },
    /// The port's timer, for the wake-up numbered so (older ones are stale).
    PortTimer(u64),
    Sample,
}

/// The master's Announce: a grandmaster of clock class 6 on GNSS (within 100 ns), UTC
/// offset 37 s.
fn master_announce(master: PortIdentity, sequence: u16) -> (PtpHeader, Body) {
    let mut header = PtpHeader::new(MessageType::Announce, master, sequence);
    header.log_message_interval = LogInterval(0);
    header.flags = Flags(Flags::UTC_OFFSET_VALID | Flags::PTP_TIMESCALE);
    let body = Body::Announce(AnnounceBody {
        origin_timestamp: PtpTimestamp::ZERO,
        current_utc_offset: 37,
        grandmaster_priority1: 128,
        grandmaster_clock_quality: ClockQuality {
            clock_class: 6,
            clock_accuracy: ClockAccuracy::Within { value: 0x21 },
            offset_scaled_log_variance: 0x4E5D,
        },
        grandmaster_priority2: 128,
        grandmaster_identity: master.clock_identity,
        steps_removed: 0,
        time_source: TimeSource::Gnss,
    });
    (header, body)
}

/// A PTP master and `ptp-slave`'s real port ([`PtpPort`]: announce qualification, BMCA,
/// UNCALIBRATED to SLAVE, Delay_Req timing, the servo) exchanging real messages over the
/// scenario's link.
fn run_ptp(world: &PtpScenario, seed: u64, duration: f64) -> RunResult {
    let mut rng = Rng::new(seed);
    let mut queue = Queue::new();
    let end = ns(duration);
    let mut slave = SimClock::new(world.slave);
    let master_port = PortIdentity {
        clock_identity: ClockIdentity::from_mac([2, 0, 0, 0, 0, 1]),
        port_number: 1,
    };
    let slave_port = PortIdentity {
        clock_identity: ClockIdentity::from_mac([2, 0, 0, 0, 0, 2]),
        port_number: 1,
    };
    let mut port = PtpPort::new(
        slave_port,
        PortConfig {
            servo: world.servo,
            ..PortConfig::default()
        },
    );
    let mut trace = NodeTrace::new("slave");
    trace.tracked = true;
    let mut bounds = BoundTrace::default();
    let mut sequence: u16 = 0;
    let mut announce_sequence: u16 = 0;
    let mut timer_generation = 0u64;
    let log_sync = world.sync_interval.log2().round() as i8;
    let noise = world.timestamp_noise;
    let master_time = |t: i64, rng: &mut Rng| -> i128 {
        i128::from(crate::model::EPOCH_UNIX) * 1_000_000_000
            + i128::from(t)
            + (noise * rng.uniform() * NS).round() as i128
    };
    let write = |header: PtpHeader, body: Body| -> Vec<u8> {
        let mut buf = vec![0u8; 128];
        let len = MessageWriter::new(&mut buf, &header, &body)
            .and_then(|w| w.finish())
            .unwrap_or(0);
        buf.truncate(len);
        buf
    };
    queue.push(ns(0.1), PtpEvent::Announce);
    queue.push(ns(0.5), PtpEvent::Sync);
    queue.push(0, PtpEvent::Sample);
    while let Some((t, event)) = queue.pop() {
        if t > end {
            break;
        }
        slave.advance(t, &mut rng);
        let seconds = t as f64 / NS;
        let mut port_ran = false;
        let mut buf = [0u8; 128];
        match event {
            PtpEvent::Sample => {
                trace.record(seconds, slave.error(), slave.frequency_error_ppm());
                let b = port.error_bound(slave.monotonic());
                bounds.errors.push(slave.error());
                bounds.trusted.push(b.status.is_trusted());
                bounds.bounds.push(if b.status.is_trusted() {
                    b.bound
                } else {
                    f64::INFINITY
                });
                // ClockBound reads chrony; over ptp4l it has no formula.
                bounds.clockbound.push(f64::INFINITY);
                bounds.clockbound_trusted.push(false);
                queue.push(t + ns(1.0), PtpEvent::Sample);
            }
            PtpEvent::Announce => {
                announce_sequence = announce_sequence.wrapping_add(1);
                let (header, body) = master_announce(master_port, announce_sequence);
                if let Some(d) = world.link.delay(false, seconds, &mut rng) {
                    queue.push(
                        t + ns(d),
                        PtpEvent::ToSlave {
                            bytes: write(header, body),
                        },
                    );
                }
                queue.push(t + ns(1.0), PtpEvent::Announce);
            }
            PtpEvent::Sync => {
                sequence = sequence.wrapping_add(1);
                let t1 = master_time(t, &mut rng);
                let mut header = PtpHeader::new(MessageType::Sync, master_port, sequence);
                header.flags = Flags(Flags::TWO_STEP | Flags::PTP_TIMESCALE);
                header.log_message_interval = LogInterval(log_sync);
                let sync = write(
                    header,
                    Body::Sync {
                        origin_timestamp: PtpTimestamp::ZERO,
                    },
                );
                let mut follow_header =
                    PtpHeader::new(MessageType::FollowUp, master_port, sequence);
                follow_header.log_message_interval = LogInterval(log_sync);
                let follow = write(
                    follow_header,
                    Body::FollowUp {
                        precise_origin_timestamp: PtpTimestamp::from_tai_nanos(t1)
                            .unwrap_or(PtpTimestamp::ZERO),
                    },
                );
                if let Some(d) = world.link.delay(false, seconds, &mut rng) {
                    let rx = t + ns(d);
                    queue.push(rx, PtpEvent::ToSlave { bytes: sync });
                    queue.push(rx + ns(20e-6), PtpEvent::ToSlave { bytes: follow });
                }
                queue.push(t + ns(world.sync_interval), PtpEvent::Sync);
            }
            PtpEvent::ToSlave { bytes } => {
                let rx =
                    slave.read_ns(0.0, &mut rng) + (noise * rng.uniform() * NS).round() as i128;
                port.handle_message(&bytes, rx, slave.monotonic());
                port_ran = true;
            }
            PtpEvent::PortTimer(generation) => {
                if generation == timer_generation {
                    port.handle_timeout(slave.monotonic());
                    port_ran = true;
                }
            }
            PtpEvent::DelayReq { bytes } => {
                let t4 = master_time(t, &mut rng);
                let Ok(req) = PtpMessage::parse(&bytes) else {
                    continue;
                };
                let mut header =
                    PtpHeader::new(MessageType::DelayResp, master_port, req.header.sequence_id);
                header.log_message_interval = LogInterval(0);
                let resp = write(
                    header,
                    Body::DelayResp {
                        receive_timestamp: PtpTimestamp::from_tai_nanos(t4)
                            .unwrap_or(PtpTimestamp::ZERO),
                        requesting_port_identity: req.header.source_port_identity,
                    },
                );
                if let Some(d) = world.link.delay(false, seconds, &mut rng) {
                    queue.push(t + ns(d), PtpEvent::ToSlave { bytes: resp });
                }
            }
        }
        if !port_ran {
            continue;
        }
        // What the port sends: Delay_Req to the master, stamped as it leaves.
        while let Some(Transmit { len, kind }) = port.poll_transmit(&mut buf) {
            if kind.is_event() {
                let t3 =
                    slave.read_ns(0.0, &mut rng) + (noise * rng.uniform() * NS).round() as i128;
                port.handle_transmit_timestamp(kind, t3);
            }
            if kind == Outgoing::DelayReq {
                if let Some(d) = world.link.delay(true, seconds, &mut rng) {
                    queue.push(
                        t + ns(d),
                        PtpEvent::DelayReq {
                            bytes: buf[..len].to_vec(),
                        },
                    );
                }
            }
        }
        // The servo's steps and frequencies, as the daemon applies them.
        while let Some(action) = port.poll_action() {
            let Ok(()) = slave.apply(&action);
        }
        while port.poll_event().is_some() {}
        // Wake the port when it asks (one pending wake-up at a time).
        if let Some(at) = port.poll_timeout() {
            timer_generation += 1;
            queue.push(
                slave.true_time_of(at).max(t),
                PtpEvent::PortTimer(timer_generation),
            );
        }
    }
    trace.steps = slave.steps();
    RunResult {
        nodes: vec![trace],
        bounds: Some(bounds),
        ..RunResult::default()
    }
}
