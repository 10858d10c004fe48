//! The server's decision for one request, sans-IO: bytes, sender, receive timestamp and a
//! monotonic instant in; the answer's bytes (or the reason for silence) out.

use core::net::IpAddr;

use tempora_ntp_proto::{
    AssociationMode, Error as WireError, KissCode, MacKey, NtpPacket, NtpTimestamp, PacketBuilder,
    ServerState, Version, kiss_of_death, server_response,
};

use crate::keys::SymmetricKeys;
use crate::nts::{
    COOKIES_PER_EXCHANGE, CookieKeys, NONCE_LEN, NtsRefusal, NtsRequest, read_nts_request,
    write_nts_nak, write_nts_response,
};
use crate::server::access::{AccessAction, AccessList};
use crate::server::clients::{ClientTable, RateVerdict};

/// Why a request got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than a header, longer than the buffer, or bad extension fields or MAC.
    Malformed,
    /// Version 0-2 or 5-7.
    BadVersion,
    /// Mode 6 (control): never answered, an old amplification vector.
    Mode6,
    /// Mode 7 (private): never answered, the monlist amplifier.
    Mode7,
    /// Not a client request (server, broadcast, symmetric modes).
    NotClient,
    /// Refused by the access list (action `ignore`).
    Denied,
    /// Over the rate limit.
    RateLimited,
    /// From UDP source port 0, which cannot be answered (RFC 768 reserves it; the kernel
    /// refuses to send there).
    SourcePortZero,
    /// NTS fields that are malformed or incomplete (no cookie, no authenticator), or no
    /// randomness for the answer's nonces.
    NtsInvalid,
}

impl DropReason {
    /// Every reason, for metrics.
    pub const ALL: [Self; 9] = [
        Self::Malformed,
        Self::BadVersion,
        Self::Mode6,
        Self::Mode7,
        Self::NotClient,
        Self::Denied,
        Self::RateLimited,
        Self::SourcePortZero,
        Self::NtsInvalid,
    ];

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::BadVersion => "bad_version",
            Self::Mode6 => "mode6",
            Self::Mode7 => "mode7",
            Self::NotClient => "not_client",
            Self::Denied => "denied",
            Self::RateLimited => "rate_limited",
            Self::SourcePortZero => "source_port_zero",
            Self::NtsInvalid => "nts_invalid",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What to send back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Send `len` bytes of the output buffer.
    Reply {
        /// Bytes.
        len: usize,
        /// Write the transmit timestamp as late as possible (basic mode). Not for
        /// interleaved answers (their transmit field is the previous answer's) and kisses.
        stamp_transmit: bool,
        /// Ask the kernel for this answer's transmit timestamp, for the client's next,
        /// interleaved request; give it to [`ClientTable::record_transmit`].
        want_tx_timestamp: bool,
    },
    /// Send nothing.
    Drop(DropReason),
}

/// Counts of what the server did, per thread; summed into the shared metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams received.
    pub received: u64,
    /// Valid client requests, by version (index 3 and 4).
    pub requests_by_version: [u64; 8],
    /// Valid requests by mode (0-7); mode 6 and 7 counted here too.
    pub requests_by_mode: [u64; 8],
    /// Time answers sent (kisses not included).
    pub responses: u64,
    /// Of those, interleaved.
    pub interleaved: u64,
    /// Drops by [`DropReason`].
    pub drops: [u64; 9],
    /// Kisses sent: RATE, DENY.
    pub kod_rate: u64,
    /// DENY kisses.
    pub kod_deny: u64,
    /// Send failures.
    pub send_errors: u64,
    /// NTS requests that authenticated (each answered with new cookies).
    pub nts_responses: u64,
    /// NTS NAKs sent: a cookie of a key no longer kept, or one that did not authenticate,
    /// or a request whose authenticator failed.
    pub nts_naks: u64,
    /// Answers MAC'd with the symmetric key the request was MAC'd with.
    pub mac_responses: u64,
    /// Crypto-NAKs sent: a MAC'd request of an unknown key, or whose MAC did not verify.
    pub crypto_naks: u64,
}

impl Counters {
    /// Adds `other` in.
    pub fn add(&mut self, other: &Self) {
        self.received += other.received;
        for i in 0..8 {
            self.requests_by_version[i] += other.requests_by_version[i];
            self.requests_by_mode[i] += other.requests_by_mode[i];
        }
        self.responses += other.responses;
        self.interleaved += other.interleaved;
        for i in 0..self.drops.len() {
            self.drops[i] += other.drops[i];
        }
        self.kod_rate += other.kod_rate;
        self.kod_deny += other.kod_deny;
        self.send_errors += other.send_errors;
        self.nts_responses += other.nts_responses;
        self.nts_naks += other.nts_naks;
        self.mac_responses += other.mac_responses;
        self.crypto_naks += other.crypto_naks;
    }

    /// Drops for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    fn drop(&mut self, reason: DropReason) -> Answer {
        self.drops[reason.index()] += 1;
        Answer::Drop(reason)
    }
}

/// One request as the I/O layer hands it over.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The datagram.
    pub bytes: &'a [u8],
    /// Whether the datagram was cut by the receive buffer.
    pub truncated: bool,
    /// The sender.
    pub from: IpAddr,
    /// The sender's UDP port.
    pub from_port: u16,
    /// The receive timestamp (kernel's where there is one).
    pub rx: NtpTimestamp,
    /// A monotonic clock, nanoseconds, for the rate limiter.
    pub now_ns: u64,
}

/// What a server needs to answer NTS requests (RFC 8915).
pub struct NtsServing<'a> {
    /// The master keys cookies are sealed with.
    pub keys: &'a CookieKeys,
    /// Fills a buffer with fresh randomness (the answer's nonces); `false` when there is
    /// none to be had, and the request is then dropped.
    pub random: &'a mut dyn FnMut(&mut [u8]) -> bool,
    /// The server's clock now: the transmit timestamp. The authenticator covers the
    /// header, so an NTS answer cannot have it written later, as plain answers do.
    pub transmit: NtpTimestamp,
}

/// The server's request handling.
#[derive(Clone, Debug, Default)]
pub struct ServerCore {
    /// Who may ask.
    pub access: AccessList,
    /// Serve interleaved mode (RFC 9769).
    pub interleaved: bool,
    /// Symmetric keys: a request MAC'd with one of them is answered MAC'd with the same;
    /// any other MAC'd request gets a crypto-NAK.
    pub keys: SymmetricKeys,
}

impl ServerCore {
    /// Decides on one request; a reply is written to `out` (at least 64 bytes). A request
    /// with NTS fields is answered as plain NTP, which its client refuses: use
    /// [`Self::handle_with_nts`] to serve NTS.
    pub fn handle(
        &self,
        request: &Request<'_>,
        state: &ServerState,
        clients: &mut ClientTable,
        counters: &mut Counters,
        out: &mut [u8],
    ) -> Answer {
        self.handle_with_nts(request, state, clients, counters, None, out)
    }

    /// Decides on one request, serving NTS when `nts` is given: an authenticated
    /// request gets an authenticated answer with fresh cookies, never longer than the
    /// request; one whose cookie or authenticator does not check gets an NTS NAK; `out`
    /// must then hold as much as the request.
    pub fn handle_with_nts(
        &self,
        request: &Request<'_>,
        state: &ServerState,
        clients: &mut ClientTable,
        counters: &mut Counters,
        nts: Option<&mut NtsServing<'_>>,
        out: &mut [u8],
    ) -> Answer {
        counters.received += 1;
        if request.truncated {
            return counters.drop(DropReason::Malformed);
        }
        if request.from_port == 0 {
            return counters.drop(DropReason::SourcePortZero);
        }
        let packet = match NtpPacket::parse(request.bytes) {
            Ok(p) => p,
            Err(WireError::ControlMessage) => {
                counters.requests_by_mode[6] += 1;
                return counters.drop(DropReason::Mode6);
            }
            Err(WireError::PrivateMessage) => {
                counters.requests_by_mode[7] += 1;
                return counters.drop(DropReason::Mode7);
            }
            Err(WireError::VersionTooOld { .. } | WireError::VersionTooNew { .. }) => {
                return counters.drop(DropReason::BadVersion);
            }
            Err(_) => return counters.drop(DropReason::Malformed),
        };
        let header = packet.header;
        counters.requests_by_mode[header.mode as usize & 7] += 1;
        if header.mode != AssociationMode::Client {
            return counters.drop(DropReason::NotClient);
        }
        counters.requests_by_version[match header.version {
            Version::V3 => 3,
            Version::V4 => 4,
        }] += 1;
        let kiss = |code: KissCode, counters: &mut Counters, out: &mut [u8]| {
            let Ok(kod) = kiss_of_death(&header, code) else {
                return counters.drop(DropReason::Malformed);
            };
            match kod.emit_bytes(out) {
                Ok(len) => {
                    match code {
                        KissCode::Rate => counters.kod_rate += 1,
                        _ => counters.kod_deny += 1,
                    }
                    Answer::Reply {
                        len,
                        stamp_transmit: false,
                        want_tx_timestamp: false,
                    }
                }
                Err(_) => counters.drop(DropReason::Malformed),
            }
        };
        match self.access.check(request.from) {
            AccessAction::Allow => {}
            AccessAction::Ignore => return counters.drop(DropReason::Denied),
            AccessAction::Deny if clients.kiss_due(request.from, request.now_ns) => {
                return kiss(KissCode::Deny, counters, out);
            }
            AccessAction::Deny => return counters.drop(DropReason::Denied),
        }
        match clients.rate(request.from, request.now_ns) {
            RateVerdict::Answer => {}
            RateVerdict::Drop => return counters.drop(DropReason::RateLimited),
            RateVerdict::Kiss => {
                counters.drops[DropReason::RateLimited.index()] += 1;
                return kiss(KissCode::Rate, counters, out);
            }
        }
        let transmit_now = nts.as_ref().map(|n| n.transmit);
        if let Some(nts) = nts {
            match read_nts_request(request.bytes, nts.keys) {
                Ok(None) => {}
                Ok(Some(authentic)) => {
                    return Self::answer_nts(
                        &header, state, request, &authentic, nts, counters, out,
                    );
                }
                Err(NtsRefusal::Nak { uid, .. }) => {
                    return match write_nts_nak(&header, &uid, request.bytes.len(), out) {
                        Ok(len) => {
                            counters.nts_naks += 1;
                            Answer::Reply {
                                len,
                                stamp_transmit: false,
                                want_tx_timestamp: false,
                            }
                        }
                        Err(_) => counters.drop(DropReason::NtsInvalid),
                    };
                }
                Err(NtsRefusal::Drop(_)) => return counters.drop(DropReason::NtsInvalid),
            }
        }
        // A MAC'd request: the key it names, if it verifies with it.
        let mac_key = match packet.mac {
            Some(mac) if !mac.is_crypto_nak() => {
                match MacKey::verify_packet(request.bytes, |id| self.keys.get(id)) {
                    Ok(id) => Some(self.keys.get(id)),
                    Err(_) => Some(None),
                }
            }
            _ => None,
        };
        let previous_tx = if self.interleaved {
            clients.interleaved_transmit(request.from, header.origin_timestamp)
        } else {
            None
        };
        // The MAC covers the transmit timestamp: it cannot be written after the answer is
        // built, so it is the clock's reading given (or the receive timestamp).
        let late_transmit = match mac_key {
            Some(Some(_)) => Some(transmit_now.unwrap_or(request.rx)),
            _ => None,
        };
        let response = match previous_tx {
            // Interleaved: the origin names the client's request (its receive field), the
            // transmit is the kernel's timestamp of the previous answer.
            Some(tx) => server_response(&header, state, request.rx, tx).map(|mut h| {
                h.origin_timestamp = header.receive_timestamp;
                h
            }),
            None => server_response(
                &header,
                state,
                request.rx,
                late_transmit.unwrap_or(request.rx),
            ),
        };
        let Ok(response) = response else {
            return counters.drop(DropReason::Malformed);
        };
        let built = PacketBuilder::response(out, &response, request.bytes.len()).and_then(|b| {
            match mac_key {
                Some(Some(key)) => b.finish_with_key(&key),
                // A key we do not have, or a MAC that does not verify: tell the client so.
                Some(None) => b.finish_with_crypto_nak(),
                None => b.finish(),
            }
        });
        let Ok(len) = built else {
            return counters.drop(DropReason::Malformed);
        };
        // A client that sends a non-zero origin may come back interleaved.
        let want_tx_timestamp = self.interleaved && !header.origin_timestamp.is_zero();
        if want_tx_timestamp || previous_tx.is_some() {
            clients.record_receive(request.from, request.rx, want_tx_timestamp);
        }
        counters.responses += 1;
        if previous_tx.is_some() {
            counters.interleaved += 1;
        }
        match mac_key {
            Some(Some(_)) => counters.mac_responses += 1,
            Some(None) => counters.crypto_naks += 1,
            None => {}
        }
        Answer::Reply {
            len,
            stamp_transmit: previous_tx.is_none() && late_transmit.is_none(),
            want_tx_timestamp,
        }
    }
}

impl ServerCore {
    /// The answer to an authenticated NTS request (basic mode: interleaved NTS is not
    /// served).
    fn answer_nts(
        header: &tempora_ntp_proto::NtpHeader,
        state: &ServerState,
        request: &Request<'_>,
        authentic: &NtsRequest,
        nts: &mut NtsServing<'_>,
        counters: &mut Counters,
        out: &mut [u8],
    ) -> Answer {
        let Ok(response) = server_response(header, state, request.rx, nts.transmit) else {
            return counters.drop(DropReason::Malformed);
        };
        let mut nonces = [0u8; NONCE_LEN * (1 + COOKIES_PER_EXCHANGE)];
        if !(nts.random)(&mut nonces) {
            return counters.drop(DropReason::NtsInvalid);
        }
        let mut chunks = nonces.chunks_exact(NONCE_LEN).map(|c| {
            let mut n = [0u8; NONCE_LEN];
            n.copy_from_slice(c);
            n
        });
        let nonce = chunks.next().unwrap_or_default();
        match write_nts_response(
            &response,
            authentic,
            nts.keys,
            nonce,
            || chunks.next().unwrap_or_default(),
            out,
        ) {
            Ok(len) => {
                counters.responses += 1;
                counters.nts_responses += 1;
                Answer::Reply {
                    len,
                    stamp_transmit: false,
                    want_tx_timestamp: false,
                }
            }
            Err(_) => counters.drop(DropReason::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::access::AccessRule;
    use crate::server::clients::RateLimit;
    use alloc::vec::Vec;
    use tempora_ntp_proto::{
        LeapIndicator, Log2Seconds, NtpHeader, NtpShort, ReferenceId, Stratum, client_request,
    };

    fn state() -> ServerState {
        ServerState {
            leap: LeapIndicator::NoWarning,
            stratum: Stratum(2),
            precision: Log2Seconds(-24),
            root_delay: NtpShort::from_seconds_f64(0.01),
            root_dispersion: NtpShort::from_seconds_f64(0.02),
            reference_id: ReferenceId::from_name(b"GPS").unwrap(),
            reference_timestamp: NtpTimestamp::from_bits(0xE000_0000_0000_0000),
        }
    }

    fn ask(
        core: &ServerCore,
        clients: &mut ClientTable,
        counters: &mut Counters,
        bytes: &[u8],
        from: &str,
        rx: u64,
    ) -> (Answer, Vec<u8>) {
        let mut out = [0u8; 128];
        let a = core.handle(
            &Request {
                bytes,
                truncated: false,
                from: from.parse().unwrap(),
                from_port: 123,
                rx: NtpTimestamp::from_bits(rx),
                now_ns: rx,
            },
            &state(),
            clients,
            counters,
            &mut out,
        );
        let len = match a {
            Answer::Reply { len, .. } => len,
            Answer::Drop(_) => 0,
        };
        (a, out[..len].to_vec())
    }

    /// An NTS client's request through the whole request path: authenticated, answered
    /// with fresh cookies no longer than the request, the transmit timestamp the one
    /// given; a cookie of another server's key gets an NTS NAK; without NTS serving the
    /// same request gets a plain answer its client refuses.
    #[test]
    fn nts_requests_are_authenticated_answered_or_naked() {
        use crate::nts::{AeadAlgorithm, NtsClient, NtsError, NtsKeys};
        let keys = CookieKeys::new(1, [7; 32]);
        let assoc = NtsKeys::new(AeadAlgorithm::AesSivCmac256, &[1; 32], &[2; 32]).unwrap();
        let cookies = (0..8u8).map(|i| keys.seal(&assoc, &[i; 16])).collect();
        let mut client = NtsClient::new(assoc.clone(), cookies);
        let header = client_request(Version::V4, 0x5eed);
        let mut req = [0u8; 1024];
        let n = client
            .write_request(&header, [3; 32], [4; 16], &mut req)
            .unwrap();
        let core = ServerCore::default();
        let mut clients = ClientTable::new(RateLimit::default(), [7; 16]);
        let mut c = Counters::default();
        let mut random = |b: &mut [u8]| {
            b.fill(9);
            true
        };
        fn ask(bytes: &[u8]) -> Request<'_> {
            Request {
                bytes,
                truncated: false,
                from: "192.0.2.1".parse().unwrap(),
                from_port: 123,
                rx: NtpTimestamp::from_bits(100),
                now_ns: 1,
            }
        }
        let request = ask(&req[..n]);
        let mut out = [0u8; 1024];
        let mut serving = NtsServing {
            keys: &keys,
            random: &mut random,
            transmit: NtpTimestamp::from_bits(200),
        };
        let a = core.handle_with_nts(
            &request,
            &state(),
            &mut clients,
            &mut c,
            Some(&mut serving),
            &mut out,
        );
        let Answer::Reply {
            len,
            stamp_transmit,
            ..
        } = a
        else {
            panic!("{a:?}");
        };
        assert!(
            !stamp_transmit,
            "the authenticator covers the transmit timestamp"
        );
        assert!(len <= n);
        let h = client.read_response(&out[..len]).unwrap();
        assert_eq!(h.transmit_timestamp, NtpTimestamp::from_bits(200));
        assert_eq!(h.receive_timestamp, NtpTimestamp::from_bits(100));
        assert_eq!(client.cookies(), 8);
        assert_eq!(c.nts_responses, 1);

        // Another server's cookies: NAK, and the client knows to re-key.
        let other = CookieKeys::new(2, [8; 32]);
        let n = client
            .write_request(&header, [5; 32], [6; 16], &mut req)
            .unwrap();
        let request = ask(&req[..n]);
        let mut serving = NtsServing {
            keys: &other,
            random: &mut random,
            transmit: NtpTimestamp::from_bits(200),
        };
        let a = core.handle_with_nts(
            &request,
            &state(),
            &mut clients,
            &mut c,
            Some(&mut serving),
            &mut out,
        );
        let Answer::Reply { len, .. } = a else {
            panic!("{a:?}");
        };
        assert_eq!(client.read_response(&out[..len]), Err(NtsError::Nak));
        assert_eq!(c.nts_naks, 1);

        // A server without NTS answers plainly; the client refuses what is not its UID's.
        let n = client
            .write_request(&header, [6; 32], [7; 16], &mut req)
            .unwrap();
        let request = ask(&req[..n]);
        let a = core.handle(&request, &state(), &mut clients, &mut c, &mut out);
        let Answer::Reply { len, .. } = a else {
            panic!("{a:?}");
        };
        assert!(client.read_response(&out[..len]).is_err());

        // NTS fields without a cookie: dropped as invalid.
        let mut b = tempora_ntp_proto::PacketBuilder::new(&mut req, &header).unwrap();
        tempora_ntp_proto::NtsUniqueIdentifier(&[1; 32])
            .write(&mut b)
            .unwrap();
        let n = b.finish().unwrap();
        let request = ask(&req[..n]);
        let mut serving = NtsServing {
            keys: &keys,
            random: &mut random,
            transmit: NtpTimestamp::from_bits(200),
        };
        let a = core.handle_with_nts(
            &request,
            &state(),
            &mut clients,
            &mut c,
            Some(&mut serving),
            &mut out,
        );
        assert_eq!(a, Answer::Drop(DropReason::NtsInvalid));
    }

    /// A request MAC'd with a key the server has is answered MAC'd with it (the MAC
    /// covering the transmit timestamp, so none is written later), never longer than the
    /// request; an unknown key or a wrong digest gets a crypto-NAK; all counted.
    #[test]
    fn mac_requests_get_mac_answers_or_a_crypto_nak() {
        use tempora_ntp_proto::MacAlgorithm;
        let mut keys = SymmetricKeys::new();
        keys.insert(7, MacAlgorithm::AesCmac128, &[5; 16]).unwrap();
        keys.insert(8, MacAlgorithm::Sha1, b"secret").unwrap();
        let core = ServerCore {
            keys,
            ..ServerCore::default()
        };
        let mut clients = ClientTable::new(RateLimit::default(), [7; 16]);
        let mut c = Counters::default();
        let header = client_request(Version::V4, 0x77);
        for (id, algorithm, secret) in [
            (7, MacAlgorithm::AesCmac128, &[5u8; 16][..]),
            (8, MacAlgorithm::Sha1, &b"secret"[..]),
        ] {
            let key = MacKey::new(id, algorithm, secret).unwrap();
            let mut req = [0u8; 128];
            let n = PacketBuilder::new(&mut req, &header)
                .unwrap()
                .finish_with_key(&key)
                .unwrap();
            let (a, bytes) = ask(&core, &mut clients, &mut c, &req[..n], "192.0.2.9", 500);
            let Answer::Reply { stamp_transmit, .. } = a else {
                panic!("{a:?}");
            };
            assert!(!stamp_transmit);
            assert!(bytes.len() <= n);
            assert_eq!(
                MacKey::verify_packet(&bytes, |i| (i == id).then_some(key)),
                Ok(id)
            );
            // The same request with a wrong digest, and one naming a key we do not have.
            let mut bad = req[..n].to_vec();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            let (_, nak) = ask(&core, &mut clients, &mut c, &bad, "192.0.2.9", 600);
            assert_eq!(
                NtpPacket::parse(&nak).unwrap().mac,
                Some(tempora_ntp_proto::Mac::CRYPTO_NAK)
            );
        }
        let unknown = MacKey::new(99, MacAlgorithm::Md5, b"x").unwrap();
        let mut req = [0u8; 128];
        let n = PacketBuilder::new(&mut req, &header)
            .unwrap()
            .finish_with_key(&unknown)
            .unwrap();
        let (_, nak) = ask(&core, &mut clients, &mut c, &req[..n], "192.0.2.9", 700);
        assert_eq!(
            NtpPacket::parse(&nak).unwrap().mac,
            Some(tempora_ntp_proto::Mac::CRYPTO_NAK)
        );
        assert_eq!((c.mac_responses, c.crypto_naks), (2, 3));
    }

    #[test]
    fn every_field_of_a_basic_answer() {
        let core = ServerCore::default();
        let mut clients = ClientTable::new(RateLimit::default(), [7; 16]);
        let mut c = Counters::default();
        for version in [Version::V3, Version::V4] {
            let mut req = client_request(version, 0xABCD);
            req.poll = Log2Seconds(6);
            let (a, bytes) = ask(&core, &mut clients, &mut c, &req.to_bytes(), "::1", 77);
            assert!(matches!(
                a,
                Answer::Reply {
                    len: 48,
                    stamp_transmit: true,
                    ..
                }
            ));
            let h = NtpHeader::parse_bytes(&bytes).unwrap();
            let s = state();
            assert_eq!(h.version, version, "v3 asked, v3 answered");
            assert_eq!(h.mode, AssociationMode::Server);
            assert_eq!(h.leap, s.leap);
            assert_eq!(h.stratum, s.stratum);
            assert_eq!(h.poll, Log2Seconds(6));
            assert_eq!(h.precision, s.precision);
            assert_eq!(h.root_delay, s.root_delay);
            assert_eq!(h.root_dispersion, s.root_dispersion);
            assert_eq!(h.reference_id, s.reference_id);
            assert_eq!(h.reference_timestamp, s.reference_timestamp);
            assert_eq!(h.origin_timestamp, NtpTimestamp::from_bits(0xABCD));
            assert_eq!(h.receive_timestamp, NtpTimestamp::from_bits(77));
        }
        assert_eq!(c.responses, 2);
        assert_eq!(c.requests_by_version[3], 1);
        assert_eq!(c.requests_by_version[4], 1);
    }

    #[test]
    fn malformed_input_is_dropped_and_counted() {
        let core = ServerCore::default();
        let mut clients = ClientTable::new(RateLimit::default(), [7; 16]);
        let mut c = Counters::default();
        let good = client_request(Version::V4, 1).to_bytes();
        let mut mode6 = good;
        mode6[0] = (4 << 3) | 6;
        let mut mode7 = good;
        mode7[0] = (2 << 3) | 7;
        let mut v1 = good;
        v1[0] = (1 << 3) | 3;
        let mut server_mode = good;
        server_mode[0] = (4 << 3) | 4;
        let mut bad_ef = good.to_vec();
        bad_ef.extend_from_slice(&[0x01, 0x04, 0x00, 0x07, 0, 0, 0, 0]);
        let garbage: Vec<u8> = (0..1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let cases: [(&[u8], DropReason); 7] = [
            (&good[..47], DropReason::Malformed),
            (&[], DropReason::Malformed),
            (&mode6, DropReason::Mode6),
            (&mode7, DropReason::Mode7),
            (&v1, DropReason::BadVersion),
            (&server_mode, DropReason::NotClient),
            (&bad_ef, DropReason::Malformed),
        ];
        for (bytes, reason) in cases {
            let (a, _) = ask(&core, &mut clients, &mut c, bytes, "10.0.0.1", 5);
            assert_eq!(a, Answer::Drop(reason), "{bytes:?}");
        }
        let (a, _) = ask(&core, &mut clients, &mut c, &garbage, "10.0.0.1", 5);
        assert!(matches!(a, Answer::Drop(_)), "1 KB of garbage: {a:?}");
        assert_eq!(c.dropped(DropReason::Mode6), 1);
        assert_eq!(c.dropped(DropReason::Mode7), 1);
        assert_eq!(c.responses, 0);
        assert_eq!(c.received, 8);
    }

    #[test]
    fn access_list_ignores_or_kisses() {
        use crate::server::access::Cidr;
        let core = ServerCore {
            access: AccessList {
                rules: vec![
                    AccessRule {
                        action: AccessAction::Deny,
                        networks: vec!["10.9.0.0/16".parse::<Cidr>().unwrap()],
                    },
                    AccessRule {
                        action: AccessAction::Allow,
                        networks: vec!["10.0.0.0/8".parse().unwrap()],
                    },
                ],
                default: AccessAction::Ignore,
            },
            interleaved: false,
            keys: SymmetricKeys::new(),
        };
        let mut clients = ClientTable::new(RateLimit::default(), [7; 16]);
        let mut c = Counters::default();
        let req = client_request(Version::V4, 99).to_bytes();
        let (a, _) = ask(&core, &mut clients, &mut c, &req, "192.0.2.1", 1);
        assert_eq!(a, Answer::Drop(DropReason::Denied));
        let (_, bytes) = ask(&core, &mut clients, &mut c, &req, "10.9.1.1", 1);
        let h = NtpHeader::parse_bytes(&bytes).unwrap();
        assert_eq!(h.stratum, Stratum::KISS_OF_DEATH);
        assert_eq!(h.reference_id, ReferenceId::from_kiss_code(KissCode::Deny));
        assert_eq!(h.origin_timestamp, NtpTimestamp::from_bits(99));
        let (a, _) = ask(&core, &mut clients, &mut c, &req, "10.1.1.1", 1);
        assert!(matches!(a, Answer::Reply { .. }));
        assert_eq!(c.kod_deny, 1);
    }

    #[test]
    fn deny_kisses_are_not_reflected_one_for_one() {
        // A spoofed victim inside a deny range: an attacker's every request would make a
        // DENY for it. Rate limiting is off, as by default.
        let core = ServerCore {
            access: AccessList {
                rules: vec![AccessRule {
                    action: AccessAction::Deny,
                    networks: vec!["198.51.100.0/24".parse().unwrap()],
                }],
                default: AccessAction::Allow,
            },
            interleaved: false,
            keys: SymmetricKeys::new(),
        };
        let mut clients = ClientTable::new(RateLimit::default(), [7; 16]);
        let mut c = Counters::default();
        let req = client_request(Version::V4, 3).to_bytes();
        let kisses = (0..100u64)
            .filter(|i| {
                let (a, _) = ask(
                    &core,
                    &mut clients,
                    &mut c,
                    &req,
                    "198.51.100.9",
                    i * 1_000_000,
                );
                matches!(a, Answer::Reply { .. })
            })
            .count();
        assert_eq!(kisses, 1, "one DENY per interval, never an amplifier");
        assert_eq!(c.kod_deny, 1);
        assert_eq!(c.dropped(DropReason::Denied), 99);
        // The interval later (8 s by default), one more.
        let (a, _) = ask(
            &core,
            &mut clients,
            &mut c,
            &req,
            "198.51.100.9",
            9_000_000_000,
        );
        assert!(matches!(a, Answer::Reply { .. }), "{a:?}");
    }

    #[test]
    fn a_burst_gets_rate_kisses_and_another_client_is_unaffected() {
        let core = ServerCore::default();
        let mut clients = ClientTable::new(
            RateLimit {
                enabled: true,
                interval: 4,
                burst: 4,
                leak: 63,
                table_size: 64,
            },
            [7; 16],
        );
        let mut c = Counters::default();
        let req = client_request(Version::V4, 5).to_bytes();
        let mut kisses = 0;
        let mut answers = 0;
        for i in 0..50 {
            let (a, bytes) = ask(&core, &mut clients, &mut c, &req, "203.0.113.5", i);
            if let Answer::Reply { .. } = a {
                let h = NtpHeader::parse_bytes(&bytes).unwrap();
                if h.stratum == Stratum::KISS_OF_DEATH {
                    assert_eq!(h.reference_id, ReferenceId::from_kiss_code(KissCode::Rate));
                    kisses += 1;
                } else {
                    answers += 1;
                }
            }
        }
        assert_eq!(answers, 4);
        assert_eq!(kisses, 1, "one kiss per interval, never an amplifier");
        let (a, bytes) = ask(&core, &mut clients, &mut c, &req, "203.0.113.6", 60);
        assert!(matches!(a, Answer::Reply { .. }));
        assert_ne!(
            NtpHeader::parse_bytes(&bytes).unwrap().stratum,
            Stratum::KISS_OF_DEATH
        );
        assert_eq!(c.dropped(DropReason::RateLimited), 46);
        assert_eq!(c.kod_rate, 1);
    }

    #[test]
    fn interleaved_exchange_as_chrony_does_it() {
        let core = ServerCore {
            interleaved: true,
            ..ServerCore::default()
        };
        let mut clients = ClientTable::new(RateLimit::default(), [7; 16]);
        let mut c = Counters::default();
        // First request, basic (origin non-zero: the client may go interleaved).
        let mut req = client_request(Version::V4, 0x1111);
        req.origin_timestamp = NtpTimestamp::from_bits(0x0F0F);
        let (a, _) = ask(
            &core,
            &mut clients,
            &mut c,
            &req.to_bytes(),
            "192.0.2.9",
            1000,
        );
        assert!(matches!(
            a,
            Answer::Reply {
                stamp_transmit: true,
                want_tx_timestamp: true,
                ..
            }
        ));
        // The kernel reports when the answer left.
        let tx1 = NtpTimestamp::from_bits(1005);
        clients.record_transmit(
            "192.0.2.9".parse().unwrap(),
            NtpTimestamp::from_bits(1000),
            tx1,
        );
        // Second request, interleaved: origin = our receive timestamp of the first,
        // receive = the client's receive timestamp of our first answer.
        let mut req2 = client_request(Version::V4, 0x2222);
        req2.origin_timestamp = NtpTimestamp::from_bits(1000);
        req2.receive_timestamp = NtpTimestamp::from_bits(0x7777);
        let (a, bytes) = ask(
            &core,
            &mut clients,
            &mut c,
            &req2.to_bytes(),
            "192.0.2.9",
            2000,
        );
        assert!(matches!(
            a,
            Answer::Reply {
                stamp_transmit: false,
                ..
            }
        ));
        let h = NtpHeader::parse_bytes(&bytes).unwrap();
        assert_eq!(h.origin_timestamp, NtpTimestamp::from_bits(0x7777));
        assert_eq!(h.receive_timestamp, NtpTimestamp::from_bits(2000));
        assert_eq!(h.transmit_timestamp, tx1);
        assert_eq!(c.interleaved, 1);
        // A basic client (origin zero) never gets an interleaved answer nor a TX stamp.
        let basic = client_request(Version::V4, 0x3333);
        let (a, _) = ask(
            &core,
            &mut clients,
            &mut c,
            &basic.to_bytes(),
            "192.0.2.10",
            3000,
        );
        assert!(matches!(
            a,
            Answer::Reply {
                stamp_transmit: true,
                want_tx_timestamp: false,
                ..
            }
        ));
    }

    #[test]
    fn a_request_from_port_zero_gets_no_answer() {
        let core = ServerCore::default();
        let mut clients = ClientTable::new(RateLimit::default(), [7; 16]);
        let mut c = Counters::default();
        let req = client_request(Version::V4, 1).to_bytes();
        let mut out = [0u8; 64];
        let request = Request {
            bytes: &req,
            truncated: false,
            from: "192.0.2.1".parse().unwrap(),
            from_port: 0,
            rx: NtpTimestamp::from_bits(1),
            now_ns: 1,
        };
        let a = core.handle(&request, &state(), &mut clients, &mut c, &mut out);
        assert_eq!(a, Answer::Drop(DropReason::SourcePortZero));
        assert_eq!(c.dropped(DropReason::SourcePortZero), 1);
    }

    #[test]
    fn two_clients_behind_one_address_both_stay_interleaved() {
        let core = ServerCore {
            interleaved: true,
            ..ServerCore::default()
        };
        let mut clients = ClientTable::new(RateLimit::default(), [7; 16]);
        let mut c = Counters::default();
        let nat = "192.0.2.44";
        // Each client's first request (non-zero origin: it may go interleaved), and the
        // kernel's transmit timestamps of both answers.
        for (rx, origin) in [(1000u64, 0x0A0A), (1500, 0x0B0B)] {
            let mut req = client_request(Version::V4, rx);
            req.origin_timestamp = NtpTimestamp::from_bits(origin);
            ask(&core, &mut clients, &mut c, &req.to_bytes(), nat, rx);
            let t = NtpTimestamp::from_bits(rx + 5);
            clients.record_transmit(nat.parse().unwrap(), NtpTimestamp::from_bits(rx), t);
        }
        // Each comes back interleaved, naming its own previous request.
        for (rx, previous) in [(2000u64, 1000u64), (2500, 1500)] {
            let mut req = client_request(Version::V4, rx);
            req.origin_timestamp = NtpTimestamp::from_bits(previous);
            let (_, bytes) = ask(&core, &mut clients, &mut c, &req.to_bytes(), nat, rx);
            let h = NtpHeader::parse_bytes(&bytes).unwrap();
            assert_eq!(
                h.transmit_timestamp,
                NtpTimestamp::from_bits(previous + 5),
                "client of {previous}"
            );
        }
        assert_eq!(c.interleaved, 2);
    }

    #[test]
    fn a_request_with_a_mac_gets_a_crypto_nak_and_no_more_bytes_than_it_sent() {
        let core = ServerCore::default();
        let mut clients = ClientTable::new(RateLimit::default(), [7; 16]);
        let mut c = Counters::default();
        let mut req = client_request(Version::V4, 8).to_bytes().to_vec();
        req.extend_from_slice(&[0, 0, 0, 1]);
        req.extend_from_slice(&[0xAA; 20]);
        let (a, bytes) = ask(&core, &mut clients, &mut c, &req, "127.0.0.1", 1);
        assert!(matches!(a, Answer::Reply { len: 52, .. }), "{a:?}");
        assert_eq!(&bytes[48..], &[0, 0, 0, 0]);
        assert!(bytes.len() <= req.len());
    }
}
