//! One NTP server as a client sees it: when to poll, what to send, what to make of the
//! answer. Sans-IO: the caller passes the local clock's reading, a monotonic instant and
//! randomness, and carries the bytes.

/// Bytes of a plain client request (an NTPv4 header, no extension fields).
pub const REQUEST_LEN: usize = 48;

/// The longest request a source makes: an NTS request with a cookie and seven
/// placeholders of AES-SIV-CMAC-512 cookies (1,500 bytes). A buffer this long takes any.
pub const MAX_REQUEST_LEN: usize = 2048;

use alloc::vec::Vec;

use crate::nts::{NtsClient, NtsError, UID_LEN};

use tempora_clock_filter::{
    Candidate, ClockFilter, Measurement, PHI, ReachRegister, RegressionConfig, RegressionFilter,
    SelectionMark, SourceStatus,
};
use tempora_clock_types::{ClockCorrection, Leap, LocalInstant};
use tempora_ntp_proto::{
    KissAction, KissCode, LeapIndicator, MacAlgorithm, MacKey, NtpPacket, NtpTimestamp,
    PacketBuilder, ReferenceId, Rejection, Version, check_response, client_request,
    offset_and_delay,
};

/// Samples the regression keeps per source.
const SAMPLES: usize = 128;

/// The poll interval of `log2` seconds, clamped to 1 s ..= 36 h.
fn poll_seconds(log2: i8) -> f64 {
    f64::from(1u32 << log2.clamp(0, 17))
}

/// Which per-source estimator feeds the selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Estimator {
    /// The regression filter (the default).
    #[default]
    Regression,
    /// The RFC 5905 clock filter (the reference).
    Rfc,
}

/// Per-source settings, as `server` lines write them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SourceConfig {
    /// Shortest poll interval, log2 seconds.
    pub min_poll: i8,
    /// Longest poll interval, log2 seconds.
    pub max_poll: i8,
    /// Send a burst of four requests, two seconds apart, at start and when unreachable.
    pub iburst: bool,
    /// The per-source estimator.
    pub estimator: Estimator,
    /// Local clock precision, seconds.
    pub precision: f64,
    /// How well the local clock's frequency is known before the first exchange (s/s,
    /// a standard error): a drift file applied at start leaves a residual near zero.
    /// `None` when nothing is known.
    pub frequency_error: Option<f64>,
    /// Authenticate with NTS: nothing is sent without an association
    /// ([`NtpSource::set_nts`]), and only answers that authenticate are used.
    pub nts: bool,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            min_poll: 6,
            max_poll: 10,
            iburst: true,
            estimator: Estimator::Regression,
            precision: 1e-7,
            frequency_error: None,
            nts: false,
        }
    }
}

/// What became of an answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ResponseOutcome {
    /// A new measurement was taken.
    Measured(Measurement),
    /// A kiss-o'-death; the source acted on it.
    Kiss(KissCode),
    /// Refused: not a valid answer to the request in flight.
    Rejected(Rejection),
    /// Not an NTP packet, or nothing was in flight.
    Ignored,
    /// An authenticated source's answer that does not authenticate (forged, damaged,
    /// for another request, or a crypto-NAK): not used, and the request stays in flight.
    Unauthenticated,
}

/// The fresh randomness an NTS request needs besides its transmit-timestamp nonce: its
/// Unique Identifier and its AEAD nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NtsRandomness {
    /// The Unique Identifier.
    pub uid: [u8; UID_LEN],
    /// The AEAD nonce.
    pub nonce: [u8; crate::nts::NONCE_LEN],
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    /// The random transmit timestamp the request carried.
    transmit: NtpTimestamp,
    /// The local clock when it left (T1).
    t1: NtpTimestamp,
}

/// One source: one server as the client sees it.
///
/// - getters: [`Self::poll`], [`Self::reach`], [`Self::candidate`], [`Self::status`], ...
/// - `handle_*`: [`Self::handle_timeout`] (sends the next request when due),
///   [`Self::handle_transmit_timestamp`] (the kernel's time of its departure),
///   [`Self::handle_response`] (an answer with its receive time);
/// - mutators: [`Self::apply_correction`] (the local clock was corrected),
///   [`Self::set_mark`];
/// - `poll_*`: [`Self::poll_transmit`] (the request to send), [`Self::poll_event`] (what
///   the last answer was), [`Self::poll_timeout`] (when the next poll is due).
///
/// [`crate::NtpSystem`] drives its sources in this order; use one alone for a one-shot
/// query.
#[derive(Clone, Debug)]
pub struct NtpSource {
    config: SourceConfig,
    poll: i8,
    next_poll: LocalInstant,
    burst_left: u8,
    good_in_a_row: u32,
    reach: ReachRegister,
    polls: u32,
    pending: Option<Pending>,
    last_transmit: Option<NtpTimestamp>,
    regression: RegressionFilter,
    rfc: ClockFilter,
    rfc_output: Option<Candidate>,
    last: Option<Measurement>,
    reference_id: ReferenceId,
    stopped: Option<KissCode>,
    mark: SelectionMark,
    /// The request [`Self::handle_timeout`] made, until [`Self::poll_transmit`] takes it.
    outgoing: Option<Vec<u8>>,
    /// The NTS association, for an NTS source that has one.
    nts: Option<NtsClient>,
    /// Answers that did not authenticate.
    unauthenticated: u64,
    /// A symmetric key requests are MAC'd with and answers must verify with.
    symmetric: Option<(u32, MacAlgorithm, Vec<u8>)>,
    /// What the last answer came to, until [`Self::poll_event`] takes it.
    outcome: Option<ResponseOutcome>,
    /// The source serves smeared time around leap seconds.
    smeared: bool,
}

impl NtpSource {
    /// A source that polls first at `now`.
    pub fn new(config: SourceConfig, now: LocalInstant) -> Self {
        let config = SourceConfig {
            max_poll: config.max_poll.max(config.min_poll),
            ..config
        };
        let mut regression = RegressionFilter::new(RegressionConfig {
            precision: config.precision,
            max_samples: SAMPLES,
            ..RegressionConfig::default()
        });
        if let Some(error) = config.frequency_error {
            regression.set_frequency_prior(0.0, error);
        }
        Self {
            config,
            poll: config.min_poll,
            next_poll: now,
            burst_left: if config.iburst { 3 } else { 0 },
            good_in_a_row: 0,
            reach: ReachRegister::default(),
            polls: 0,
            pending: None,
            last_transmit: None,
            regression,
            rfc: ClockFilter::new(config.precision),
            rfc_output: None,
            last: None,
            reference_id: ReferenceId::NONE,
            stopped: None,
            mark: SelectionMark::Unreachable,
            outgoing: None,
            outcome: None,
            smeared: false,
            nts: None,
            unauthenticated: 0,
            symmetric: None,
        }
    }

    /// Authenticates with a symmetric key (chrony's `server ... key ID`): requests are
    /// MAC'd with it and only answers MAC'd with it are used. The secret's length must
    /// suit the algorithm.
    pub fn set_key(
        &mut self,
        id: u32,
        algorithm: MacAlgorithm,
        secret: &[u8],
    ) -> Result<(), tempora_ntp_proto::Error> {
        MacKey::new(id, algorithm, secret)?;
        self.symmetric = Some((id, algorithm, secret.to_vec()));
        Ok(())
    }

    /// The symmetric key's ID, if the source has one.
    pub fn key_id(&self) -> Option<u32> {
        self.symmetric.as_ref().map(|(id, _, _)| *id)
    }

    fn mac_key(&self) -> Option<MacKey<'_>> {
        let (id, algorithm, secret) = self.symmetric.as_ref()?;
        MacKey::new(*id, *algorithm, secret).ok()
    }

    /// Installs an NTS association from a key exchange (its keys and cookies); the next
    /// polls are authenticated with it.
    pub fn set_nts(&mut self, client: NtsClient) {
        self.nts = Some(client);
    }

    /// Whether this NTS source needs a (new) key exchange: none yet, cookies used up, or
    /// the server said NTS NAK. Always false for a plain source.
    pub fn needs_key_exchange(&self) -> bool {
        self.config.nts && self.nts.as_ref().is_none_or(NtsClient::needs_key_exchange)
    }

    /// NTS cookies held (`None` for a plain source).
    pub fn nts_cookies(&self) -> Option<usize> {
        self.config
            .nts
            .then(|| self.nts.as_ref().map_or(0, NtsClient::cookies))
    }

    /// Answers that did not authenticate, so far.
    pub fn unauthenticated(&self) -> u64 {
        self.unauthenticated
    }

    /// Its settings.
    pub fn config(&self) -> SourceConfig {
        self.config
    }

    /// The current poll interval, log2 seconds.
    pub fn poll(&self) -> i8 {
        self.poll
    }

    /// The reach register.
    pub fn reach(&self) -> ReachRegister {
        self.reach
    }

    /// The reference ID the server gave.
    pub fn reference_id(&self) -> ReferenceId {
        self.reference_id
    }

    /// Why the source stopped polling (DENY or RSTR), if it did.
    pub fn stopped(&self) -> Option<KissCode> {
        self.stopped
    }

    /// Whether the source has had its say at start: it answered, or two polls went
    /// unanswered, or a kiss code stopped it.
    pub fn is_settled(&self) -> bool {
        self.last.is_some() || self.polls >= 2 || self.stopped.is_some()
    }

    /// The last measurement.
    pub fn last_measurement(&self) -> Option<Measurement> {
        self.last
    }

    /// Declares the source as serving smeared time around leap seconds (Google's and
    /// AWS's public servers): near a leap it is never combined with unsmeared sources
    /// ([`crate::NtpSystem::set_leap_window`]).
    pub fn set_smeared(&mut self, smeared: bool) {
        self.smeared = smeared;
    }

    /// Whether the source is declared smeared.
    pub fn smeared(&self) -> bool {
        self.smeared
    }

    /// Sets the selection mark the status table shows.
    pub fn set_mark(&mut self, mark: SelectionMark) {
        self.mark = mark;
    }

    /// When to send the next request (`None` once stopped by a kiss code).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<LocalInstant> {
        self.stopped.is_none().then_some(self.next_poll)
    }

    /// Makes the next request if it is due: `local` is the local clock's reading,
    /// `random` a fresh random 64-bit value (the request's nonce: it must come from a
    /// cryptographic source, or an off-path attacker can forge answers). The request is
    /// then given by [`Self::poll_transmit`]. Returns whether one was made.
    pub fn handle_timeout(&mut self, now: LocalInstant, local: NtpTimestamp, random: u64) -> bool {
        self.handle_timeout_nts(now, local, random, None)
    }

    /// [`Self::handle_timeout`] for an NTS source, with the randomness its request needs
    /// (without it, or without an association, the poll passes and nothing is sent).
    pub fn handle_timeout_nts(
        &mut self,
        now: LocalInstant,
        local: NtpTimestamp,
        random: u64,
        nts_random: Option<NtsRandomness>,
    ) -> bool {
        if self.stopped.is_some() || now < self.next_poll {
            return false;
        }
        self.reach.poll_sent();
        self.polls = self.polls.saturating_add(1);
        if self.pending.is_some() {
            // The last request went unanswered.
            self.good_in_a_row = 0;
            self.poll = (self.poll - 1).max(self.config.min_poll);
            if self.config.iburst && !self.reach.is_reachable() && self.burst_left == 0 {
                self.burst_left = 3;
            }
        }
        // A zero transmit timestamp would match a zero origin: never send one.
        let transmit = NtpTimestamp::from_bits(random.max(1));
        self.pending = Some(Pending {
            transmit,
            t1: local,
        });
        let interval = if self.burst_left > 0 {
            self.burst_left -= 1;
            2.0
        } else {
            poll_seconds(self.poll)
        };
        self.next_poll = now.add_seconds(interval);
        let header = client_request(Version::V4, transmit.to_bits());
        if !self.config.nts {
            let mut buf = [0u8; 128];
            let made = match self.mac_key() {
                Some(key) => PacketBuilder::new(&mut buf, &header)
                    .and_then(|b| b.finish_with_key(&key))
                    .ok()
                    .map(|n| buf[..n].to_vec()),
                None => Some(header.to_bytes().to_vec()),
            };
            self.outgoing = made;
            return self.outgoing.is_some();
        }
        let mut buf = [0u8; MAX_REQUEST_LEN];
        let written = match (&mut self.nts, nts_random) {
            (Some(client), Some(r)) if !client.needs_key_exchange() => {
                client.write_request(&header, r.uid, r.nonce, &mut buf).ok()
            }
            _ => None,
        };
        match written {
            Some(len) => {
                self.outgoing = Some(buf[..len].to_vec());
                true
            }
            None => {
                // The poll passes unsent: the reach register shows it.
                self.pending = None;
                false
            }
        }
    }

    /// The request to send, written into `buf`; its length. A buffer shorter than
    /// [`REQUEST_LEN`] gets nothing and the request stays queued.
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<usize> {
        let len = self.outgoing.as_ref()?.len();
        let out = buf.get_mut(..len)?;
        out.copy_from_slice(&self.outgoing.take()?);
        Some(len)
    }

    /// What the last answer came to, once per answer.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ResponseOutcome> {
        self.outcome.take()
    }

    /// Replaces the send time (T1) of the request in flight with a better one: the
    /// kernel's transmit timestamp, which arrives after the send.
    pub fn handle_transmit_timestamp(&mut self, t1: NtpTimestamp) {
        if let Some(p) = &mut self.pending {
            p.t1 = t1;
        }
    }

    /// Takes an answer that arrived when the local clock read `t4`, at `now`; what it
    /// came to is given by [`Self::poll_event`].
    pub fn handle_response(&mut self, bytes: &[u8], t4: NtpTimestamp, now: LocalInstant) {
        self.outcome = Some(self.response(bytes, t4, now));
    }

    fn response(&mut self, bytes: &[u8], t4: NtpTimestamp, now: LocalInstant) -> ResponseOutcome {
        let Some(pending) = self.pending else {
            return ResponseOutcome::Ignored;
        };
        let header = if self.config.nts {
            // Only what authenticates is read at all.
            let Some(client) = &mut self.nts else {
                return ResponseOutcome::Ignored;
            };
            match client.read_response(bytes) {
                Ok(h) => h,
                Err(NtsError::Nak) => {
                    // Unauthenticated by nature: it only asks for a new key exchange.
                    self.pending = None;
                    return ResponseOutcome::Kiss(KissCode::Ntsn);
                }
                Err(_) => {
                    self.unauthenticated += 1;
                    return ResponseOutcome::Unauthenticated;
                }
            }
        } else if let Some(key) = self.mac_key() {
            // Only what verifies with our key is read at all (a crypto-NAK does not).
            let id = key.id();
            if MacKey::verify_packet(bytes, |k| (k == id).then_some(key)).is_err() {
                self.unauthenticated += 1;
                return ResponseOutcome::Unauthenticated;
            }
            let Ok(packet) = NtpPacket::parse(bytes) else {
                return ResponseOutcome::Ignored;
            };
            packet.header
        } else {
            let Ok(packet) = NtpPacket::parse(bytes) else {
                return ResponseOutcome::Ignored;
            };
            packet.header
        };
        match check_response(&header, pending.transmit, self.last_transmit) {
            Ok(()) => {}
            Err(Rejection::KissOfDeath { code }) => {
                self.pending = None;
                match code.action() {
                    KissAction::StopPolling => self.stopped = Some(code),
                    KissAction::ReducePolling => {
                        self.poll = (self.poll + 1)
                            .min(self.config.max_poll)
                            .max(self.config.min_poll);
                        self.burst_left = 0;
                        self.next_poll = now.add_seconds(poll_seconds(self.poll));
                    }
                    _ => {}
                }
                return ResponseOutcome::Kiss(code);
            }
            Err(rejection) => return ResponseOutcome::Rejected(rejection),
        }
        self.pending = None;
        self.last_transmit = Some(header.transmit_timestamp);
        self.reach.answered();
        let m = offset_and_delay(
            pending.t1,
            header.receive_timestamp,
            header.transmit_timestamp,
            t4,
        );
        let precision = self.config.precision + header.precision.to_seconds_f64();
        let delay = m.delay.to_seconds_f64().max(precision);
        let measurement = Measurement {
            offset: m.offset.to_seconds_f64(),
            delay,
            dispersion: precision + PHI * delay,
            root_delay: header.root_delay.to_seconds_f64(),
            root_dispersion: header.root_dispersion.to_seconds_f64(),
            stratum: header.stratum.0,
            leap: match header.leap {
                LeapIndicator::NoWarning => Leap::None,
                LeapIndicator::InsertSecond => Leap::Insert,
                LeapIndicator::DeleteSecond => Leap::Delete,
                LeapIndicator::Unsynchronized => Leap::Unsynchronized,
            },
            time: now,
        };
        self.reference_id = header.reference_id;
        // A sample far off the line (a reverted VM snapshot, a step by someone else) is a
        // new start, not noise to average in: the old samples describe another clock.
        if let Some(e) = self.regression.estimate() {
            let predicted = e.offset_at(now);
            if (measurement.offset - predicted).abs() > (10.0 * e.jitter).max(1.0) {
                self.regression.reset();
                self.rfc.reset();
                self.rfc_output = None;
            }
        }
        // Short exchanges are kept for 256 poll intervals (at most a day): long enough to
        // average many of them and to see the frequency over a long baseline.
        self.regression
            .set_max_age((128.0 * poll_seconds(self.poll)).min(86_400.0));
        if self.regression.update(&measurement).is_err() {
            return ResponseOutcome::Ignored;
        }
        let poll_seconds = poll_seconds(self.poll);
        if let Ok(Some(out)) = self.rfc.update(&measurement, poll_seconds) {
            self.rfc_output = Some(Candidate {
                offset: out.offset,
                delay: out.delay,
                dispersion: out.dispersion,
                jitter: out.jitter,
                root_delay: measurement.root_delay,
                root_dispersion: measurement.root_dispersion,
                stratum: measurement.stratum,
                leap: measurement.leap,
                time: out.time,
                frequency: None,
            });
        }
        self.last = Some(measurement);
        self.adjust_poll(&measurement);
        ResponseOutcome::Measured(measurement)
    }

    /// Raises the poll interval after eight quiet answers in a row, lowers it on a loud one.
    fn adjust_poll(&mut self, m: &Measurement) {
        let jitter = self
            .regression
            .estimate()
            .map_or(f64::INFINITY, |e| e.jitter);
        if m.offset.abs() < 4.0 * jitter.max(m.delay) {
            self.good_in_a_row += 1;
            if self.good_in_a_row >= 8 && self.poll < self.config.max_poll {
                self.poll += 1;
                self.good_in_a_row = 0;
            }
        } else {
            self.good_in_a_row = 0;
            self.poll = (self.poll - 1).max(self.config.min_poll);
        }
    }

    /// What this source offers the selection at `now`, if it has anything.
    pub fn candidate(&self, now: LocalInstant) -> Option<Candidate> {
        if !self.reach.is_reachable() {
            return None;
        }
        match self.config.estimator {
            Estimator::Regression => self.regression.estimate().map(|e| {
                let mut c = Candidate::from_estimate(&e);
                c.offset = e.offset_at(now);
                c
            }),
            Estimator::Rfc => self.rfc_output,
        }
    }

    /// Carries the samples across a correction of the local clock. A step of more than
    /// the RFC step threshold (0.128 s) clears the RFC filter, as ntpd does; smaller
    /// corrections (its once-a-second slews) shift it.
    pub fn apply_correction(&mut self, correction: ClockCorrection) {
        self.regression.apply_correction(correction);
        match correction {
            ClockCorrection::Step { offset, .. } if offset.abs() > 0.128 => {
                self.rfc.reset();
                self.rfc_output = None;
            }
            _ => {
                self.rfc.apply_correction(correction);
                if let Some(c) = &mut self.rfc_output {
                    match correction {
                        ClockCorrection::Step { offset, .. } => c.offset -= offset,
                        ClockCorrection::Frequency { delta, at } => {
                            c.offset -= delta * c.time.seconds_since(at)
                        }
                    }
                }
            }
        }
        if let (ClockCorrection::Step { offset, .. }, Some(last)) = (correction, &mut self.last) {
            last.offset -= offset;
        }
    }

    /// The row of a status table.
    pub fn status(&self, now: LocalInstant) -> SourceStatus {
        SourceStatus::new(
            self.reach,
            self.last,
            self.candidate(now).map(|c| c.offset),
            self.regression.estimate(),
            self.mark,
        )
    }
}

#[cfg(test)]
mod nts_tests {
    use super::*;
    use crate::nts::{AeadAlgorithm, CookieKeys, NtsKeys, read_nts_request, write_nts_response};
    use tempora_ntp_proto::{ServerState, Stratum, server_response};

    fn ts(seconds: f64) -> NtpTimestamp {
        NtpTimestamp::from_bits((0xEC00_0000u64 << 32) + (seconds * 4_294_967_296.0) as u64)
    }

    const R: NtsRandomness = NtsRandomness {
        uid: [7; 32],
        nonce: [8; 16],
    };

    /// An NTS source sends nothing until it has an association; then its requests are
    /// authenticated, an authentic answer is measured, and a plain answer (a forger's)
    /// is not used and leaves the request in flight.
    #[test]
    fn an_nts_source_measures_only_what_authenticates() {
        let config = SourceConfig {
            nts: true,
            iburst: false,
            ..SourceConfig::default()
        };
        let mut s = NtpSource::new(config, LocalInstant(0));
        assert!(s.needs_key_exchange());
        assert!(!s.handle_timeout_nts(LocalInstant(0), ts(0.0), 42, Some(R)));
        let mut buf = [0u8; MAX_REQUEST_LEN];
        assert_eq!(
            s.poll_transmit(&mut buf),
            None,
            "nothing without an association"
        );

        let server = CookieKeys::new(1, [9; 32]);
        let keys = NtsKeys::new(AeadAlgorithm::AesSivCmac256, &[1; 32], &[2; 32]).unwrap();
        let cookies = (0..8u8).map(|i| server.seal(&keys, &[i; 16])).collect();
        s.set_nts(crate::nts::NtsClient::new(keys, cookies));
        assert!(!s.needs_key_exchange());
        assert_eq!(s.nts_cookies(), Some(8));
        let later = LocalInstant::from_seconds_f64(100.0);
        assert!(s.handle_timeout_nts(later, ts(100.0), 42, Some(R)));
        let n = s.poll_transmit(&mut buf).unwrap();
        assert!(n > REQUEST_LEN);
        let request = read_nts_request(&buf[..n], &server).unwrap().unwrap();
        let header = NtpPacket::parse(&buf[..n]).unwrap().header;
        let state = ServerState {
            stratum: Stratum(1),
            leap: tempora_ntp_proto::LeapIndicator::NoWarning,
            ..ServerState::UNSYNCHRONIZED
        };
        let answer = server_response(&header, &state, ts(100.001), ts(100.001)).unwrap();
        // A forger's plain answer first: refused, the request still in flight.
        let plain = answer.to_bytes();
        s.handle_response(&plain, ts(100.002), later);
        assert_eq!(s.poll_event(), Some(ResponseOutcome::Unauthenticated));
        assert_eq!(s.unauthenticated(), 1);
        let mut out = [0u8; MAX_REQUEST_LEN];
        let m =
            write_nts_response(&answer, &request, &server, [3; 16], || [4; 16], &mut out).unwrap();
        s.handle_response(&out[..m], ts(100.002), later);
        assert!(matches!(s.poll_event(), Some(ResponseOutcome::Measured(_))));
        assert_eq!(s.nts_cookies(), Some(8));
    }
}

#[cfg(test)]
mod mac_tests {
    use super::*;
    use tempora_ntp_proto::{ServerState, Stratum, server_response};

    /// A source with a symmetric key MACs its requests and uses only answers MAC'd with
    /// the same key: a plain answer, a crypto-NAK and one MAC'd with another key are
    /// refused and leave the request in flight.
    #[test]
    fn a_keyed_source_uses_only_answers_macd_with_its_key() {
        let config = SourceConfig {
            iburst: false,
            ..SourceConfig::default()
        };
        let mut s = NtpSource::new(config, LocalInstant(0));
        s.set_key(3, MacAlgorithm::AesCmac128, &[9; 16]).unwrap();
        assert!(s.set_key(3, MacAlgorithm::AesCmac128, &[9; 15]).is_err());
        assert_eq!(s.key_id(), Some(3));
        let t = NtpTimestamp::from_bits(0xEC00_0000_0000_0000);
        assert!(s.handle_timeout(LocalInstant(0), t, 42));
        let mut buf = [0u8; MAX_REQUEST_LEN];
        let n = s.poll_transmit(&mut buf).unwrap();
        assert_eq!(n, 48 + 4 + 16);
        let key = MacKey::new(3, MacAlgorithm::AesCmac128, &[9; 16]).unwrap();
        assert_eq!(MacKey::verify_packet(&buf[..n], |_| Some(key)), Ok(3));
        let request = NtpPacket::parse(&buf[..n]).unwrap().header;
        let state = ServerState {
            stratum: Stratum(1),
            leap: tempora_ntp_proto::LeapIndicator::NoWarning,
            ..ServerState::UNSYNCHRONIZED
        };
        let answer = server_response(&request, &state, t, t).unwrap();
        let other = MacKey::new(3, MacAlgorithm::AesCmac128, &[8; 16]).unwrap();
        let mut out = [0u8; 128];
        for bad in [
            answer.to_bytes().to_vec(),
            {
                let m = PacketBuilder::new(&mut out, &answer)
                    .unwrap()
                    .finish_with_crypto_nak()
                    .unwrap();
                out[..m].to_vec()
            },
            {
                let m = PacketBuilder::new(&mut out, &answer)
                    .unwrap()
                    .finish_with_key(&other)
                    .unwrap();
                out[..m].to_vec()
            },
        ] {
            s.handle_response(&bad, t, LocalInstant(1));
            assert_eq!(s.poll_event(), Some(ResponseOutcome::Unauthenticated));
        }
        let m = PacketBuilder::new(&mut out, &answer)
            .unwrap()
            .finish_with_key(&key)
            .unwrap();
        s.handle_response(&out[..m], t, LocalInstant(1));
        assert!(matches!(s.poll_event(), Some(ResponseOutcome::Measured(_))));
        assert_eq!(s.unauthenticated(), 3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempora_ntp_proto::{NtpHeader, ServerState, Stratum, kiss_of_death, server_response};

    fn ts(seconds: f64) -> NtpTimestamp {
        NtpTimestamp::from_bits((0xEC00_0000u64 << 32) + (seconds * 4_294_967_296.0) as u64)
    }

    /// Polls when due and returns the request.
    fn request(s: &mut NtpSource, now: LocalInstant, local: NtpTimestamp, random: u64) -> [u8; 48] {
        assert!(s.handle_timeout(now, local, random));
        let mut buf = [0u8; 48];
        assert_eq!(s.poll_transmit(&mut buf), Some(48));
        buf
    }

    fn respond(
        s: &mut NtpSource,
        bytes: &[u8],
        t4: NtpTimestamp,
        now: LocalInstant,
    ) -> ResponseOutcome {
        s.handle_response(bytes, t4, now);
        s.poll_event().expect("an outcome")
    }

    fn answer(request: &[u8; 48], rx: NtpTimestamp, tx: NtpTimestamp) -> [u8; 48] {
        let req = NtpHeader::parse_bytes(request).unwrap();
        let state = ServerState {
            stratum: Stratum(1),
            ..ServerState::UNSYNCHRONIZED
        };
        let state = ServerState {
            leap: LeapIndicator::NoWarning,
            ..state
        };
        server_response(&req, &state, rx, tx).unwrap().to_bytes()
    }

    #[test]
    fn burst_then_poll_and_measure() {
        let mut s = NtpSource::new(SourceConfig::default(), LocalInstant(0));
        let req = request(&mut s, LocalInstant(0), ts(100.0), 42);
        assert_eq!(
            s.poll_timeout(),
            Some(LocalInstant::from_seconds_f64(2.0)),
            "iburst"
        );
        // The server is 10 ms ahead; 2 ms each way.
        let out = respond(
            &mut s,
            &answer(&req, ts(100.012), ts(100.013)),
            ts(100.005),
            LocalInstant(5_000_000),
        );
        let ResponseOutcome::Measured(m) = out else {
            panic!("{out:?}")
        };
        assert!((m.offset - 0.010).abs() < 1e-6, "{m:?}");
        assert!((m.delay - 0.004).abs() < 1e-6, "{m:?}");
        assert_eq!(s.reach().0, 1);
        // A replay is refused.
        let again = respond(
            &mut s,
            &answer(&req, ts(100.012), ts(100.013)),
            ts(100.005),
            LocalInstant(6_000_000),
        );
        assert_eq!(again, ResponseOutcome::Ignored);
        assert!(s.candidate(LocalInstant(5_000_000)).is_some());
    }

    #[test]
    fn a_known_frequency_is_not_measured_again() {
        // Three exchanges 2 s apart with 1 ms of one-sided queueing here and there leave
        // the frequency open by tens of ppm; after a drift file, it is known to a ppm.
        let frequency_error = |config: SourceConfig| {
            let mut s = NtpSource::new(config, LocalInstant(0));
            for (k, queueing) in [0.0, 0.001, 0.0005].into_iter().enumerate() {
                let t = 100.0 + 2.0 * k as f64;
                let now = LocalInstant::from_seconds_f64(2.0 * k as f64);
                let req = request(&mut s, now, ts(t), 42 + k as u64);
                let out = respond(
                    &mut s,
                    &answer(&req, ts(t + 0.001 + queueing), ts(t + 0.001 + queueing)),
                    ts(t + 0.002 + queueing),
                    now.add_seconds(0.002 + queueing),
                );
                assert!(matches!(out, ResponseOutcome::Measured(_)), "{out:?}");
            }
            let c = s.candidate(LocalInstant::from_seconds_f64(4.1)).unwrap();
            c.frequency.unwrap().1
        };
        let unknown = frequency_error(SourceConfig::default());
        let known = frequency_error(SourceConfig {
            frequency_error: Some(1e-6),
            ..SourceConfig::default()
        });
        assert!(unknown > 20e-6, "{unknown:e}");
        assert!(known < 2e-6, "{known:e}");
    }

    #[test]
    fn kiss_codes_are_obeyed() {
        let mut s = NtpSource::new(SourceConfig::default(), LocalInstant(0));
        let req = request(&mut s, LocalInstant(0), ts(1.0), 7);
        let kod = kiss_of_death(&NtpHeader::parse_bytes(&req).unwrap(), KissCode::Rate).unwrap();
        assert_eq!(
            respond(&mut s, &kod.to_bytes(), ts(1.1), LocalInstant(1)),
            ResponseOutcome::Kiss(KissCode::Rate)
        );
        assert_eq!(s.poll(), 7, "RATE backs off");
        let now = s.poll_timeout().unwrap();
        let req = request(&mut s, now, ts(200.0), 8);
        let kod = kiss_of_death(&NtpHeader::parse_bytes(&req).unwrap(), KissCode::Deny).unwrap();
        respond(&mut s, &kod.to_bytes(), ts(200.1), now);
        assert_eq!(s.stopped(), Some(KissCode::Deny));
        assert_eq!(s.poll_timeout(), None, "DENY stops polling");
        // A forged KoD (wrong origin) is not obeyed.
        let mut s = NtpSource::new(SourceConfig::default(), LocalInstant(0));
        let req = request(&mut s, LocalInstant(0), ts(1.0), 9);
        let mut forged = NtpHeader::parse_bytes(&req).unwrap();
        forged.transmit_timestamp = NtpTimestamp::from_bits(12345);
        let kod = kiss_of_death(&forged, KissCode::Deny).unwrap();
        assert!(matches!(
            respond(&mut s, &kod.to_bytes(), ts(1.1), LocalInstant(1)),
            ResponseOutcome::Rejected(Rejection::Bogus)
        ));
        assert_eq!(s.stopped(), None);
    }

    #[test]
    fn unanswered_polls_empty_the_reach_register() {
        let mut s = NtpSource::new(
            SourceConfig {
                iburst: false,
                ..SourceConfig::default()
            },
            LocalInstant(0),
        );
        for _ in 0..9 {
            let now = s.poll_timeout().unwrap();
            request(&mut s, now, ts(now.as_nanos() as f64 * 1e-9), 5);
        }
        assert_eq!(s.reach().0, 0);
        assert!(s.candidate(LocalInstant(0)).is_none());
    }
}
