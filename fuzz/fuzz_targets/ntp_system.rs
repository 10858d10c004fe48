//! The NTP client system driven by arbitrary answers to its real requests (any leap
//! bits, strata 0 to 255, huge root delay and dispersion, offsets from microseconds to
//! centuries), garbage datagrams, timers, transmit timestamps and refused actions.
//! Invariants: no panic; the queues stay bounded; every clock action is finite and its
//! frequency within the discipline's limit; a step is never asked for once observe-only;
//! the error bound is never negative or NaN and never shrinks as time passes without an
//! update; a leap taken by step or slew asks for nothing beyond the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tempora_clock_types::{ClockAction, LocalInstant};
use tempora_ntp::{NtpSource, NtpSystem, SourceConfig, SystemConfig};
use tempora_ntp_proto::{
    LeapIndicator, NtpDuration, NtpHeader, NtpShort, NtpTimestamp, ReferenceId, ServerState,
    Stratum, server_response,
};

const SOURCES: usize = 3;

fuzz_target!(|data: &[u8]| {
    let sources = (0..SOURCES)
        .map(|_| NtpSource::new(SourceConfig::default(), LocalInstant(0)))
        .collect();
    let mut system = NtpSystem::new(sources, SystemConfig::default(), 0.0);
    // The frequency plus the slew on top of it, and float rounding.
    let max_ppm = (500.0 + 83_333.0) * (1.0 + 1e-9);
    let mut now = 0.0f64;
    let mut observe_only = false;
    let mut nonce = 1u64;
    let mut requests: [Option<NtpHeader>; SOURCES] = [None; SOURCES];
    let epoch = 0xEC00_0000u64 << 32;
    let local = |t: f64| NtpTimestamp::from_bits(epoch + (t * 4_294_967_296.0) as u64);
    for op in data.chunks(6) {
        let byte = |i: usize| op.get(i).copied().unwrap_or(0);
        let source = usize::from(byte(1)) % SOURCES;
        match byte(0) % 6 {
            0 | 1 => {
                // An answer to the request in flight, with whatever the server claims.
                let Some(request) = requests[source] else {
                    continue;
                };
                let offset_exp = i32::from(byte(2) % 40) - 20; // 2^-20 .. 2^19 s
                let sign = if byte(3) & 1 == 0 { 1.0 } else { -1.0 };
                let offset = sign * 2f64.powi(offset_exp);
                let state = ServerState {
                    leap: match byte(3) >> 6 {
                        0 => LeapIndicator::NoWarning,
                        1 => LeapIndicator::InsertSecond,
                        2 => LeapIndicator::DeleteSecond,
                        _ => LeapIndicator::Unsynchronized,
                    },
                    stratum: Stratum(byte(4)),
                    root_delay: NtpShort::from_bits(u32::from(byte(5)) << 20),
                    root_dispersion: NtpShort::from_bits(u32::from(byte(5)).rotate_left(24)),
                    reference_id: ReferenceId(*b"FUZZ"),
                    ..ServerState::UNSYNCHRONIZED
                };
                let server = local(now + 0.001) + NtpDuration::from_seconds_f64(offset);
                if let Ok(reply) = server_response(&request, &state, server, server) {
                    now += 0.002;
                    let at = LocalInstant::from_seconds_f64(now);
                    system.handle_response(source, &reply.to_bytes(), local(now), at);
                }
            }
            2 => {
                now += f64::from(byte(2)) / 4.0;
                let at = LocalInstant::from_seconds_f64(now);
                system.handle_timeout(at, local(now), || {
                    nonce = nonce.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (byte(3) != 0xFF).then_some(nonce | 1)
                });
            }
            3 => {
                let at = LocalInstant::from_seconds_f64(now);
                system.handle_response(source, op, local(now), at);
            }
            4 => system.handle_transmit_timestamp(source, local(now - 0.0001)),
            5 if byte(2) % 3 == 0 => {
                // A leap second taken now, in a mode of the input's choice; the leap
                // window opened or closed.
                let leap = if byte(3) & 1 == 0 {
                    tempora_clock_types::Leap::Insert
                } else {
                    tempora_clock_types::Leap::Delete
                };
                let mode = match byte(4) % 3 {
                    0 => tempora_ntp::LeapMode::Kernel,
                    1 => tempora_ntp::LeapMode::Step,
                    _ => tempora_ntp::LeapMode::Slew,
                };
                system.handle_leap(leap, mode, LocalInstant::from_seconds_f64(now));
                system.set_leap_window(byte(5) & 1 == 1);
                system.set_source_smeared(source, byte(5) & 2 == 2);
            }
            _ => {
                observe_only = true;
                system.set_observe_only(true);
            }
        }
        let mut buf = [0u8; 48];
        while let Some(t) = system.poll_transmit(&mut buf) {
            requests[t.source] = NtpHeader::parse_bytes(&buf[..t.len]).ok();
        }
        let mut n = 0;
        while let Some(action) = system.poll_action() {
            n += 1;
            assert!(n <= 64, "action queue unbounded");
            assert!(!observe_only, "an action once observe-only: {action:?}");
            match action {
                ClockAction::Step { offset } | ClockAction::Slew { offset } => {
                    assert!(offset.is_finite(), "{action:?}");
                }
                ClockAction::SetFrequency { ppm } => {
                    assert!(ppm.is_finite() && ppm.abs() <= max_ppm, "{action:?}");
                }
                _ => {}
            }
            // Now and then the clock refuses.
            if byte(5) % 7 == 0 {
                system.handle_action_refused(action, LocalInstant::from_seconds_f64(now));
            }
        }
        let at = LocalInstant::from_seconds_f64(now);
        let b0 = system.error_bound(at);
        assert!(!b0.bound.is_nan() && b0.bound >= 0.0 && b0.drift >= 0.0, "{b0:?}");
        let later = system.error_bound(LocalInstant::from_seconds_f64(now + 10.0));
        if b0.status == tempora_clock_types::ClockStatus::Synchronized
            && system.correction_remaining(at) == 0.0
        {
            assert!(later.bound >= b0.bound, "{b0:?} then {later:?}");
        }
        assert!(
            core::iter::from_fn(|| system.poll_event())
                .take(1000)
                .count()
                <= 64
        );
    }
});
