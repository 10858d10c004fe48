//! The helpers every NTP client and server needs around one exchange: the request, the
//! response, the kiss-o'-death, the offset and delay, and the checks on a response.
//!
//! Sans-IO: timestamps and randomness are passed in.

use crate::Error;
use crate::header::{AssociationMode, LeapIndicator, NtpHeader, ReferenceId, Stratum, Version};
use crate::kiss::KissCode;
use crate::time::{Log2Seconds, NtpDuration, NtpShort, NtpTimestamp};

/// A client request that tells the server nothing but its version and mode: every field is
/// zero except the transmit timestamp, which is random (`random` comes from the caller's
/// RNG), as the NTP data minimization draft (draft-ietf-ntp-data-minimization) and
/// chrony do. The server copies it to the response's origin; the client keeps it to match
/// the answer and keeps its own send time apart.
pub fn client_request(version: Version, random: u64) -> NtpHeader {
    NtpHeader {
        leap: LeapIndicator::NoWarning,
        version,
        mode: AssociationMode::Client,
        stratum: Stratum(0),
        poll: Log2Seconds(0),
        precision: Log2Seconds(0),
        root_delay: NtpShort::ZERO,
        root_dispersion: NtpShort::ZERO,
        reference_id: ReferenceId::NONE,
        reference_timestamp: NtpTimestamp::ZERO,
        origin_timestamp: NtpTimestamp::ZERO,
        receive_timestamp: NtpTimestamp::ZERO,
        transmit_timestamp: NtpTimestamp::from_bits(random),
    }
}

/// What a server says about its own clock in every response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ServerState {
    /// Leap indicator ([`LeapIndicator::Unsynchronized`] when not synchronised).
    pub leap: LeapIndicator,
    /// Stratum (16 when not synchronised).
    pub stratum: Stratum,
    /// Precision of the server's clock.
    pub precision: Log2Seconds,
    /// Root delay.
    pub root_delay: NtpShort,
    /// Root dispersion.
    pub root_dispersion: NtpShort,
    /// Reference ID.
    pub reference_id: ReferenceId,
    /// When the server's clock was last set or corrected.
    pub reference_timestamp: NtpTimestamp,
}

impl ServerState {
    /// The state of a server that is not synchronised: leap 3, stratum 16.
    pub const UNSYNCHRONIZED: Self = Self {
        leap: LeapIndicator::Unsynchronized,
        stratum: Stratum::UNSYNCHRONIZED,
        precision: Log2Seconds(-20),
        root_delay: NtpShort::ZERO,
        root_dispersion: NtpShort::ZERO,
        reference_id: ReferenceId::NONE,
        reference_timestamp: NtpTimestamp::ZERO,
    };
}

/// The response mode for a request mode, or an error if the mode is no request.
fn response_mode(request: &NtpHeader) -> Result<AssociationMode, Error> {
    match request.mode {
        AssociationMode::Client => Ok(AssociationMode::Server),
        AssociationMode::SymmetricActive => Ok(AssociationMode::SymmetricPassive),
        other => Err(Error::NotARequest { mode: other as u8 }),
    }
}

/// The header of a server's response (RFC 5905 section 8): same version as the request,
/// mode server (or symmetric passive), the request's poll, origin = the request's transmit
/// timestamp, and the server's state. `transmit` is a placeholder the server overwrites
/// as late as it can with [`crate::HeaderView::set_transmit_timestamp`].
pub fn server_response(
    request: &NtpHeader,
    state: &ServerState,
    receive: NtpTimestamp,
    transmit: NtpTimestamp,
) -> Result<NtpHeader, Error> {
    Ok(NtpHeader {
        leap: state.leap,
        version: request.version,
        mode: response_mode(request)?,
        stratum: state.stratum,
        poll: request.poll,
        precision: state.precision,
        root_delay: state.root_delay,
        root_dispersion: state.root_dispersion,
        reference_id: state.reference_id,
        reference_timestamp: state.reference_timestamp,
        origin_timestamp: request.transmit_timestamp,
        receive_timestamp: receive,
        transmit_timestamp: transmit,
    })
}

/// A kiss-o'-death response (RFC 5905 section 7.4): leap 3, stratum 0, the kiss code in
/// the reference ID. It carries none of the server's time: origin, receive and transmit are
/// all the request's transmit timestamp (as ntpd does), so the client can match it to its
/// request but learns no time from it.
pub fn kiss_of_death(request: &NtpHeader, code: KissCode) -> Result<NtpHeader, Error> {
    Ok(NtpHeader {
        leap: LeapIndicator::Unsynchronized,
        version: request.version,
        mode: response_mode(request)?,
        stratum: Stratum::KISS_OF_DEATH,
        poll: request.poll,
        precision: Log2Seconds(0),
        root_delay: NtpShort::ZERO,
        root_dispersion: NtpShort::ZERO,
        reference_id: ReferenceId::from_kiss_code(code),
        reference_timestamp: NtpTimestamp::ZERO,
        origin_timestamp: request.transmit_timestamp,
        receive_timestamp: request.transmit_timestamp,
        transmit_timestamp: request.transmit_timestamp,
    })
}

/// Offset and round-trip delay of one exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OffsetDelay {
    /// How far the server's clock is ahead of ours: ((T2 - T1) + (T3 - T4)) / 2.
    pub offset: NtpDuration,
    /// Round trip less the server's processing time: (T4 - T1) - (T3 - T2). Can come out
    /// negative on a fast path with coarse clocks; the caller decides what to do with that.
    pub delay: NtpDuration,
}

/// Offset and delay from the four timestamps of an exchange (RFC 5905 section 8): T1 our
/// send time, T2 the server's receive time, T3 the server's send time, T4 our receive
/// time. Era-safe: each difference is taken between timestamps of the same kind of moment,
/// so the 2036 wrap between them does not matter; sums are taken wide, so no overflow.
pub fn offset_and_delay(
    t1: NtpTimestamp,
    t2: NtpTimestamp,
    t3: NtpTimestamp,
    t4: NtpTimestamp,
) -> OffsetDelay {
    let forward = (t2 - t1).to_bits() as i128;
    let backward = (t3 - t4).to_bits() as i128;
    let offset = (forward + backward).div_euclid(2);
    let round_trip = (t4 - t1).to_bits() as i128;
    let server_time = (t3 - t2).to_bits() as i128;
    let delay = round_trip - server_time;
    OffsetDelay {
        offset: NtpDuration::from_bits(offset.clamp(i64::MIN as i128, i64::MAX as i128) as i64),
        delay: NtpDuration::from_bits(delay.clamp(i64::MIN as i128, i64::MAX as i128) as i64),
    }
}

/// Why a response is not to be used (RFC 5905 section 8 and appendix A.5.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The response's mode is not server.
    #[error("response mode {mode:?} is not server")]
    WrongMode {
        /// The mode found.
        mode: AssociationMode,
    },
    /// Its transmit timestamp equals the previous response's: a duplicate or replay.
    #[error("duplicate response (same transmit timestamp as the last one)")]
    Duplicate,
    /// Its origin timestamp is not our request's transmit timestamp: it answers another
    /// request, or is forged.
    #[error("bogus response: origin timestamp does not match our request")]
    Bogus,
    /// A kiss-o'-death: the code says what to do (see [`KissCode::action`]).
    #[error("kiss-o'-death {code:?}")]
    KissOfDeath {
        /// The kiss code.
        code: KissCode,
    },
    /// Receive or transmit timestamp is zero.
    #[error("response has a zero {which} timestamp")]
    ZeroTimestamp {
        /// Which one: "receive" or "transmit".
        which: &'static str,
    },
    /// The server says it is not synchronised (leap 3 or stratum 16).
    #[error("server is not synchronised")]
    Unsynchronized,
    /// Stratum above 16.
    #[error("stratum {stratum} is out of range")]
    StratumOutOfRange {
        /// The stratum found.
        stratum: u8,
    },
    /// The server's transmit time is before its receive time.
    #[error("server transmit timestamp precedes its receive timestamp")]
    TimestampsOutOfOrder,
}

/// Checks a response against the request it should answer (RFC 5905 section 8): mode,
/// duplicate, bogus (origin), then kiss-o'-death (only once the origin matches, so a
/// forged KoD cannot silence a server), zero timestamps, synchronisation and stratum.
///
/// `request_transmit` is the transmit timestamp we sent; `previous_transmit` is the
/// transmit timestamp of the last response accepted from this server, if any.
pub fn check_response(
    response: &NtpHeader,
    request_transmit: NtpTimestamp,
    previous_transmit: Option<NtpTimestamp>,
) -> Result<(), Rejection> {
    if response.mode != AssociationMode::Server {
        return Err(Rejection::WrongMode {
            mode: response.mode,
        });
    }
    if previous_transmit == Some(response.transmit_timestamp) {
        return Err(Rejection::Duplicate);
    }
    if response.origin_timestamp != request_transmit || request_transmit.is_zero() {
        return Err(Rejection::Bogus);
    }
    if response.stratum.is_kiss_of_death() {
        return Err(Rejection::KissOfDeath {
            code: KissCode::from_bytes(response.reference_id.0),
        });
    }
    if response.receive_timestamp.is_zero() {
        return Err(Rejection::ZeroTimestamp { which: "receive" });
    }
    if response.transmit_timestamp.is_zero() {
        return Err(Rejection::ZeroTimestamp { which: "transmit" });
    }
    if response.stratum.is_reserved() {
        return Err(Rejection::StratumOutOfRange {
            stratum: response.stratum.0,
        });
    }
    if response.leap == LeapIndicator::Unsynchronized || response.stratum.is_unsynchronized() {
        return Err(Rejection::Unsynchronized);
    }
    if (response.transmit_timestamp - response.receive_timestamp) < NtpDuration::ZERO {
        return Err(Rejection::TimestampsOutOfOrder);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::UnixTime;
    use proptest::prelude::*;

    fn state() -> ServerState {
        ServerState {
            leap: LeapIndicator::NoWarning,
            stratum: Stratum(2),
            precision: Log2Seconds(-24),
            root_delay: NtpShort::from_bits(100),
            root_dispersion: NtpShort::from_bits(200),
            reference_id: ReferenceId(*b"\xC0\x00\x02\x01"),
            reference_timestamp: NtpTimestamp::from_bits(0xECD4_1E00_0000_0000),
        }
    }

    #[test]
    fn request_leaks_only_version_mode_and_random_transmit() {
        let request = client_request(Version::V4, 0x0123_4567_89AB_CDEF);
        let bytes = request.to_bytes();
        assert_eq!(bytes[0], 0x23); // LI 0, VN 4, mode 3
        assert!(bytes[1..40].iter().all(|&b| b == 0));
        assert_eq!(bytes[40..], 0x0123_4567_89AB_CDEFu64.to_be_bytes());
    }

    #[test]
    fn response_fields_follow_the_request_and_state() {
        let request = NtpHeader {
            poll: Log2Seconds(7),
            transmit_timestamp: NtpTimestamp::from_bits(0xAAAA),
            version: Version::V3,
            ..client_request(Version::V3, 0)
        };
        let rx = NtpTimestamp::from_bits(0xECD4_1E10_0000_0000);
        let tx = NtpTimestamp::from_bits(0xECD4_1E10_0001_0000);
        let response = server_response(&request, &state(), rx, tx).unwrap();
        assert_eq!(
            response.version,
            Version::V3,
            "v3 requests are answered as v3"
        );
        assert_eq!(response.mode, AssociationMode::Server);
        assert_eq!(response.poll, Log2Seconds(7));
        assert_eq!(response.origin_timestamp, NtpTimestamp::from_bits(0xAAAA));
        assert_eq!(response.receive_timestamp, rx);
        assert_eq!(response.transmit_timestamp, tx);
        assert_eq!(response.stratum, Stratum(2));
        assert_eq!(response.reference_id, state().reference_id);
        assert_eq!(response.root_delay, state().root_delay);
        assert_eq!(
            check_response(&response, NtpTimestamp::from_bits(0xAAAA), None),
            Ok(())
        );

        let symmetric = NtpHeader {
            mode: AssociationMode::SymmetricActive,
            ..request
        };
        assert_eq!(
            server_response(&symmetric, &state(), rx, tx).unwrap().mode,
            AssociationMode::SymmetricPassive
        );
        let not_a_request = NtpHeader {
            mode: AssociationMode::Server,
            ..request
        };
        assert_eq!(
            server_response(&not_a_request, &state(), rx, tx),
            Err(Error::NotARequest { mode: 4 })
        );
    }

    #[test]
    fn unsynchronized_server_answers_leap_3_stratum_16() {
        let request = client_request(Version::V4, 77);
        let response = server_response(
            &request,
            &ServerState::UNSYNCHRONIZED,
            NtpTimestamp::from_bits(5),
            NtpTimestamp::from_bits(6),
        )
        .unwrap();
        assert_eq!(response.leap, LeapIndicator::Unsynchronized);
        assert_eq!(response.stratum, Stratum(16));
        assert_eq!(
            check_response(&response, NtpTimestamp::from_bits(77), None),
            Err(Rejection::Unsynchronized)
        );
    }

    #[test]
    fn kiss_of_death_carries_no_time() {
        let request = client_request(Version::V4, 0x1234);
        for code in [KissCode::Rate, KissCode::Deny, KissCode::Rstr] {
            let kod = kiss_of_death(&request, code).unwrap();
            assert_eq!(kod.stratum, Stratum(0));
            assert_eq!(kod.leap, LeapIndicator::Unsynchronized);
            assert_eq!(kod.reference_id.0, code.to_bytes());
            assert_eq!(kod.receive_timestamp, request.transmit_timestamp);
            assert_eq!(kod.transmit_timestamp, request.transmit_timestamp);
            assert_eq!(
                check_response(&kod, request.transmit_timestamp, None),
                Err(Rejection::KissOfDeath { code })
            );
            // A KoD that does not match our request is bogus, never obeyed.
            assert_eq!(
                check_response(&kod, NtpTimestamp::from_bits(0x9999), None),
                Err(Rejection::Bogus)
            );
        }
    }

    #[test]
    fn response_checks_in_order() {
        let t1 = NtpTimestamp::from_bits(0x1111);
        let good = server_response(
            &client_request(Version::V4, 0x1111),
            &state(),
            NtpTimestamp::from_bits(0x2222_0000_0000),
            NtpTimestamp::from_bits(0x2222_0000_1000),
        )
        .unwrap();
        assert_eq!(check_response(&good, t1, None), Ok(()));
        assert_eq!(
            check_response(&good, t1, Some(good.transmit_timestamp)),
            Err(Rejection::Duplicate)
        );
        assert_eq!(
            check_response(&good, NtpTimestamp::from_bits(1), None),
            Err(Rejection::Bogus)
        );
        assert_eq!(
            check_response(&good, NtpTimestamp::ZERO, None),
            Err(Rejection::Bogus),
            "a zero origin never matches"
        );
        let zero_rx = NtpHeader {
            receive_timestamp: NtpTimestamp::ZERO,
            ..good
        };
        assert_eq!(
            check_response(&zero_rx, t1, None),
            Err(Rejection::ZeroTimestamp { which: "receive" })
        );
        let zero_tx = NtpHeader {
            transmit_timestamp: NtpTimestamp::ZERO,
            ..good
        };
        assert_eq!(
            check_response(&zero_tx, t1, None),
            Err(Rejection::ZeroTimestamp { which: "transmit" })
        );
        let reserved = NtpHeader {
            stratum: Stratum(17),
            ..good
        };
        assert_eq!(
            check_response(&reserved, t1, None),
            Err(Rejection::StratumOutOfRange { stratum: 17 })
        );
        let leap3 = NtpHeader {
            leap: LeapIndicator::Unsynchronized,
            ..good
        };
        assert_eq!(
            check_response(&leap3, t1, None),
            Err(Rejection::Unsynchronized)
        );
        let client = NtpHeader {
            mode: AssociationMode::Client,
            ..good
        };
        assert_eq!(
            check_response(&client, t1, None),
            Err(Rejection::WrongMode {
                mode: AssociationMode::Client
            })
        );
        let backwards = NtpHeader {
            transmit_timestamp: NtpTimestamp::from_bits(0x2221_0000_0000),
            ..good
        };
        assert_eq!(
            check_response(&backwards, t1, None),
            Err(Rejection::TimestampsOutOfOrder)
        );
    }

    fn ts(seconds: i64, nanos: u32) -> NtpTimestamp {
        NtpTimestamp::from_unix(UnixTime::new(seconds, nanos).unwrap())
    }

    #[test]
    fn offset_and_delay_textbook() {
        // Server 1 s ahead, 10 ms each way, 1 ms processing.
        let t1 = ts(1_700_000_000, 0);
        let t2 = ts(1_700_000_001, 10_000_000);
        let t3 = ts(1_700_000_001, 11_000_000);
        let t4 = ts(1_700_000_000, 21_000_000);
        let m = offset_and_delay(t1, t2, t3, t4);
        assert!((m.offset.as_nanos() - 1_000_000_000).abs() <= 1, "{m:?}");
        assert!((m.delay.as_nanos() - 20_000_000).abs() <= 1, "{m:?}");
    }

    #[test]
    fn offset_and_delay_across_the_2036_wrap() {
        // Client just before the wrap, server just after it, 3 s ahead.
        let wrap = (1i64 << 32) - crate::time::UNIX_EPOCH_NTP_SECONDS;
        let t1 = ts(wrap - 2, 0);
        let t2 = ts(wrap + 1, 5_000_000);
        let t3 = ts(wrap + 1, 6_000_000);
        let t4 = ts(wrap - 2, 11_000_000);
        let m = offset_and_delay(t1, t2, t3, t4);
        assert!((m.offset.as_nanos() - 3_000_000_000).abs() <= 1, "{m:?}");
        assert!((m.delay.as_nanos() - 10_000_000).abs() <= 1, "{m:?}");
    }

    proptest! {
        /// With a symmetric path the offset is exactly the clock difference and the delay
        /// the round trip, whatever the era and magnitude.
        #[test]
        fn offset_recovers_truth(start in -2_000_000_000i64..6_000_000_000, offset_ms in -1_000_000_000i64..1_000_000_000, one_way_us in 0i64..1_000_000, proc_us in 0i64..1_000) {
            let n = |ns: i64| UnixTime::from_nanos(i128::from(start) * 1_000_000_000 + i128::from(ns));
            let off = offset_ms * 1_000_000;
            let t1 = n(0);
            let t2 = n(one_way_us * 1000 + off);
            let t3 = n(one_way_us * 1000 + proc_us * 1000 + off);
            let t4 = n(2 * one_way_us * 1000 + proc_us * 1000);
            let m = offset_and_delay(
                NtpTimestamp::from_unix(t1), NtpTimestamp::from_unix(t2),
                NtpTimestamp::from_unix(t3), NtpTimestamp::from_unix(t4));
            prop_assert!((m.offset.as_nanos() - off).abs() <= 2);
            prop_assert!((m.delay.as_nanos() - 2 * one_way_us * 1000).abs() <= 2);
        }

        /// Any four timestamps: no panic, and swapping the roles of client and server
        /// negates the offset (to the last bit of rounding) and the delay.
        #[test]
        fn swapping_roles_negates_offset_and_delay(a: u64, b: u64, c: u64, d: u64) {
            let t = |x| NtpTimestamp::from_bits(x);
            let m = offset_and_delay(t(a), t(b), t(c), t(d));
            let swapped = offset_and_delay(t(b), t(a), t(d), t(c));
            let sum = i128::from(m.offset.to_bits()) + i128::from(swapped.offset.to_bits());
            prop_assert!((-1..=0).contains(&sum), "{m:?} {swapped:?}");
            if m.delay != NtpDuration::MIN && m.delay != NtpDuration::MAX {
                prop_assert_eq!(swapped.delay, -m.delay);
            }
        }
    }
}
