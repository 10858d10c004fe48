//! The measuring half of a PTP slave port: end-to-end delay with one- and two-step
//! masters, the path delay through a moving median (as linuxptp), and the PI servo.
//! Sans-IO: the caller passes each message with its receive timestamp (local clock,
//! nanoseconds) and reports when its Delay_Req left. [`crate::PtpPort`] runs it.

use tempora_clock_discipline::{DisciplineError, PiServo, Servo, ServoState};
use tempora_clock_filter::{MovingMedian, OffsetFilter, OffsetKalman};
use tempora_clock_types::LocalInstant;
use tempora_ptp_proto::{
    Body, MessageType, MessageWriter, PortIdentity, PtpHeader, PtpMessage, PtpTimestamp,
};

/// One offset measurement and what the servo made of it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlaveSample {
    /// Slave minus master, nanoseconds: the Kalman estimate over the raw offsets (the
    /// best estimate of where the clock is; statime reports the same kind).
    pub offset_ns: f64,
    /// The raw offset of this Sync, nanoseconds (what ptp4l prints as "master offset",
    /// and what the servo takes).
    pub raw_offset_ns: f64,
    /// The filtered mean path delay, nanoseconds.
    pub path_delay_ns: f64,
    /// The servo state after it.
    pub state: ServoState,
    /// Frequency to set, ppb (observe-only: the correction the clock would need, from the
    /// offset filter's measured drift).
    pub frequency_ppb: f64,
    /// A step to make first (seconds, added to the slave clock), in the servo's jump.
    pub step: Option<f64>,
    /// The offset was a spike (a Sync delayed by scheduling, say): far outside the recent
    /// ones while the servo is locked. It was given neither to the servo nor to the
    /// filter: `raw_offset_ns` is the spike, `offset_ns` the estimate from before it
    /// (what the clock's offset still is, so an alert on it does not fire for what was
    /// discarded), `frequency_ppb` the one already set.
    pub spike: bool,
}

/// Offsets the spike guard looks back on.
const RECENT: usize = 16;

/// The measuring half of a slave port: Sync, Follow_Up and Delay_Resp in, samples out.
/// The servo `S` and the offset filter `F` are choices (linuxptp's PI servo and a Kalman
/// filter by default).
///
/// - getters: [`Self::path_delay_ns`];
/// - `handle_*`: [`Self::handle_message`] (returns a sample when one completed),
///   [`Self::handle_delay_req_sent`], [`Self::handle_link_delay`];
/// - mutators: [`Self::clock_stepped`], [`Self::set_steering`], [`Self::set_spike_guard`];
/// - output: [`Self::delay_request`] writes the next Delay_Req.
#[derive(Clone, Debug)]
pub struct PtpSlaveCore<S = PiServo, F = OffsetKalman> {
    port: PortIdentity,
    servo: S,
    delay: MovingMedian,
    path_delay_ns: Option<f64>,
    sync: Option<(u16, i128, f64)>,
    sync_origin: Option<(u16, i128)>,
    delay_req: Option<(u16, Option<i128>)>,
    /// t1, t2 and the correction of the last complete Sync.
    last_sync: Option<(i128, i128, f64)>,
    /// A Delay_Resp waiting for the next Sync, to pair it with the master-to-slave delay
    /// at its own time rather than at the last Sync's.
    pending_delay: Option<PendingDelay>,
    sequence: u16,
    recent: [f64; RECENT],
    recent_len: usize,
    recent_next: usize,
    spikes_in_a_row: u32,
    last_state: ServoState,
    last_frequency_ppb: f64,
    /// The frequency last reported (observe-only, the measured one).
    last_reported_ppb: f64,
    /// The offset estimate last reported, ns (what a spike reports as the offset).
    last_estimate_ns: f64,
    kalman: F,
    /// Whether the servo's frequency is applied to the clock (not observe-only).
    steering: bool,
    /// Whether spikes are kept from the servo.
    spike_guard: bool,
}

/// A measured slave-to-master leg and the Sync before it.
#[derive(Clone, Copy, Debug)]
struct PendingDelay {
    /// The Delay_Req's transmit time (slave clock).
    t3: i128,
    /// t4 - t3 less the correction, ns.
    slave_to_master: f64,
    /// t2 of the Sync before it.
    sync_t2: i128,
    /// That Sync's t2 - t1 less its correction, ns.
    sync_master_to_slave: f64,
}

fn ts_ns(t: PtpTimestamp) -> i128 {
    t.as_tai_nanos()
}

impl<S: Servo, F: OffsetFilter> PtpSlaveCore<S, F> {
    /// A slave port `port` with its servo and offset filter (both start afresh), sync
    /// interval `sync_interval` seconds, the clock's frequency correction `frequency_ppb`.
    pub fn new(
        port: PortIdentity,
        sync_interval: f64,
        mut servo: S,
        mut filter: F,
        frequency_ppb: f64,
    ) -> Self {
        servo.restart(sync_interval, frequency_ppb);
        filter.reset();
        Self {
            port,
            servo,
            delay: MovingMedian::new(10),
            path_delay_ns: None,
            sync: None,
            sync_origin: None,
            delay_req: None,
            last_sync: None,
            pending_delay: None,
            sequence: 0,
            recent: [0.0; RECENT],
            recent_len: 0,
            recent_next: 0,
            spikes_in_a_row: 0,
            last_state: ServoState::Unlocked,
            last_frequency_ppb: frequency_ppb,
            last_reported_ppb: frequency_ppb,
            last_estimate_ns: 0.0,
            kalman: filter,
            steering: true,
            spike_guard: true,
        }
    }

    /// Whether offsets far outside the recent ones (a Sync delayed by scheduling) are kept
    /// from the servo (the default) or given to it like any other.
    pub fn set_spike_guard(&mut self, on: bool) {
        self.spike_guard = on;
    }

    /// Whether the servo's output is applied to the clock (the default) or not
    /// (observe-only): the offset filter's prediction depends on it.
    pub fn set_steering(&mut self, steering: bool) {
        self.steering = steering;
    }

    /// The filtered mean path delay, nanoseconds.
    pub fn path_delay_ns(&self) -> Option<f64> {
        self.path_delay_ns
    }

    /// Writes the next Delay_Req (of domain `domain`, majorSdoId `sdo_id`) into `buf`;
    /// report its transmit timestamp with [`Self::handle_delay_req_sent`].
    pub fn delay_request(&mut self, buf: &mut [u8], domain: u8, sdo_id: u8) -> Option<usize> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = PtpHeader::new(MessageType::DelayReq, self.port, self.sequence);
        header.domain_number = domain;
        header.major_sdo_id = sdo_id;
        let len = MessageWriter::new(
            buf,
            &header,
            &Body::DelayReq {
                origin_timestamp: PtpTimestamp::ZERO,
            },
        )
        .ok()?
        .finish()
        .ok()?;
        self.delay_req = Some((self.sequence, None));
        Some(len)
    }

    /// Takes one peer-delay measurement (P2P): the link delay, ns, into the same median
    /// filter the end-to-end path delay goes through.
    pub fn handle_link_delay(&mut self, raw_ns: f64) {
        if raw_ns.is_finite() && raw_ns >= 0.0 {
            self.path_delay_ns = self.delay.update(raw_ns);
        }
    }

    /// The local transmit time (t3, nanoseconds) of the last Delay_Req.
    pub fn handle_delay_req_sent(&mut self, t3: i128) {
        if let Some((seq, _)) = self.delay_req {
            self.delay_req = Some((seq, Some(t3)));
        }
    }

    /// Starts again for a new master: a fresh copy of the servo and the filter, no
    /// samples, no path delay.
    pub fn restart(&mut self, sync_interval: f64, frequency_ppb: f64)
    where
        S: Clone,
        F: Clone,
    {
        let mut fresh = Self::new(
            self.port,
            sync_interval,
            self.servo.clone(),
            self.kalman.clone(),
            frequency_ppb,
        );
        fresh.steering = self.steering;
        fresh.spike_guard = self.spike_guard;
        *self = fresh;
    }

    /// Resets the samples after the slave clock was stepped.
    pub fn clock_stepped(&mut self) {
        self.sync = None;
        self.sync_origin = None;
        self.delay_req = None;
        self.last_sync = None;
        self.pending_delay = None;
        self.kalman.reset();
    }

    /// Takes a message received at local time `rx` (nanoseconds); returns a sample when a
    /// Sync (with its Follow_Up) completed one.
    pub fn handle_message(
        &mut self,
        bytes: &[u8],
        rx: i128,
        now: LocalInstant,
    ) -> Result<Option<SlaveSample>, DisciplineError> {
        let Ok(msg) = PtpMessage::parse(bytes) else {
            return Ok(None);
        };
        let correction = msg.header.correction.to_nanos_f64();
        match msg.body {
            Body::Sync { origin_timestamp } => {
                let seq = msg.header.sequence_id;
                if msg.header.flags.two_step() {
                    self.sync = Some((seq, rx, correction));
                    if let Some((s, t1)) = self.sync_origin.take() {
                        if s == seq {
                            return self.sample(t1, rx, correction, now);
                        }
                    }
                    Ok(None)
                } else {
                    self.sample(ts_ns(origin_timestamp), rx, correction, now)
                }
            }
            Body::FollowUp {
                precise_origin_timestamp,
            } => {
                let seq = msg.header.sequence_id;
                match self.sync {
                    Some((s, t2, sync_correction)) if s == seq => {
                        self.sync = None;
                        self.sample(
                            ts_ns(precise_origin_timestamp),
                            t2,
                            sync_correction + correction,
                            now,
                        )
                    }
                    _ => {
                        self.sync_origin = Some((seq, ts_ns(precise_origin_timestamp)));
                        Ok(None)
                    }
                }
            }
            Body::DelayResp {
                receive_timestamp,
                requesting_port_identity,
            } => {
                if requesting_port_identity != self.port {
                    return Ok(None);
                }
                if let (Some((seq, Some(t3))), Some((t1, t2, sync_correction))) =
                    (self.delay_req, self.last_sync)
                {
                    if seq == msg.header.sequence_id {
                        self.delay_req = None;
                        let t4 = ts_ns(receive_timestamp);
                        let pending = PendingDelay {
                            t3,
                            slave_to_master: (t4 - t3) as f64 - correction,
                            sync_t2: t2,
                            sync_master_to_slave: (t2 - t1) as f64 - sync_correction,
                        };
                        if t3 > t2 {
                            // Completed at the next Sync (see `resolve_delay`).
                            self.pending_delay = Some(pending);
                        } else {
                            self.resolve_delay(pending, None);
                        }
                    }
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn sample(
        &mut self,
        t1: i128,
        t2: i128,
        correction: f64,
        now: LocalInstant,
    ) -> Result<Option<SlaveSample>, DisciplineError> {
        self.last_sync = Some((t1, t2, correction));
        if let Some(pending) = self.pending_delay.take() {
            self.resolve_delay(pending, Some((t2, (t2 - t1) as f64 - correction)));
        }
        let Some(path_delay_ns) = self.path_delay_ns else {
            return Ok(None);
        };
        let offset_ns = (t2 - t1) as f64 - correction - path_delay_ns;
        if self.is_spike(offset_ns) {
            self.spikes_in_a_row += 1;
            return Ok(Some(SlaveSample {
                offset_ns: self.last_estimate_ns,
                raw_offset_ns: offset_ns,
                path_delay_ns,
                state: self.last_state,
                frequency_ppb: self.last_reported_ppb,
                step: None,
                spike: true,
            }));
        }
        self.spikes_in_a_row = 0;
        self.recent[self.recent_next] = offset_ns;
        self.recent_next = (self.recent_next + 1) % RECENT;
        self.recent_len = (self.recent_len + 1).min(RECENT);
        // The correction in effect since the last Sync moved the clock too.
        let applied = if self.steering {
            self.last_frequency_ppb
        } else {
            0.0
        };
        let estimate = self.kalman.update(offset_ns, applied, now);
        let filtered = estimate.map_or(offset_ns, |e| e.offset_ns);
        let out = self.servo.sample(-offset_ns * 1e-9, now)?;
        self.last_state = out.state;
        self.last_frequency_ppb = out.frequency_ppb;
        if out.step.is_some() {
            self.clock_stepped();
            self.recent_len = 0;
        }
        // Observe-only, the servo runs open loop and its integral wanders off with any
        // bias; the correction the clock would need is the filter's measured drift.
        let frequency_ppb = match estimate {
            Some(e) if !self.steering => -e.drift_ppb,
            _ => out.frequency_ppb,
        };
        self.last_reported_ppb = frequency_ppb;
        self.last_estimate_ns = filtered;
        Ok(Some(SlaveSample {
            offset_ns: filtered,
            raw_offset_ns: offset_ns,
            path_delay_ns,
            state: out.state,
            frequency_ppb,
            step: out.step,
            spike: false,
        }))
    }

    /// Adds a path delay measurement. The master-to-slave leg is taken at the Delay_Req's
    /// own time, interpolated between the Sync before it and the one after (`next`): a
    /// clock off in frequency by `f` otherwise adds `f` times the time between the Sync
    /// and the Delay_Req (30 ppm over half a second is 15 us, and the raw delay would come
    /// out negative or far too long until the servo has the frequency).
    fn resolve_delay(&mut self, pending: PendingDelay, next: Option<(i128, f64)>) {
        let master_to_slave = match next {
            Some((t2, m2s)) if t2 > pending.sync_t2 && t2 - pending.sync_t2 < 4_000_000_000 => {
                let fraction = ((pending.t3 - pending.sync_t2) as f64
                    / (t2 - pending.sync_t2) as f64)
                    .clamp(0.0, 1.0);
                pending.sync_master_to_slave + (m2s - pending.sync_master_to_slave) * fraction
            }
            _ => pending.sync_master_to_slave,
        };
        let raw = (master_to_slave + pending.slave_to_master) / 2.0;
        if raw.is_finite() && raw >= 0.0 {
            self.path_delay_ns = self.delay.update(raw);
        }
    }

    /// Whether `offset_ns` is a spike: the servo is locked, and the offset lies more than
    /// eight robust standard deviations (1.4826 x the median absolute deviation) and 5 us
    /// from the median of the last offsets. Three in a row are taken as real (the master
    /// moved) and the window starts again.
    fn is_spike(&mut self, offset_ns: f64) -> bool {
        if !self.spike_guard
            || self.recent_len < RECENT / 2
            || !matches!(
                self.last_state,
                ServoState::Locked | ServoState::LockedStable
            )
        {
            return false;
        }
        if self.spikes_in_a_row >= 3 {
            self.recent_len = 0;
            self.recent_next = 0;
            return false;
        }
        let n = self.recent_len;
        let mut v = self.recent;
        v[..n].sort_unstable_by(f64::total_cmp);
        let median = v[n / 2];
        let mut dev = [0.0f64; RECENT];
        for (d, x) in dev.iter_mut().zip(&v[..n]) {
            *d = (x - median).abs();
        }
        dev[..n].sort_unstable_by(f64::total_cmp);
        let mad = dev[n / 2];
        (offset_ns - median).abs() > (8.0 * 1.4826 * mad).max(5_000.0)
    }
}
