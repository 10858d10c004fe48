//! The PTP port driven by arbitrary sequences of messages from several senders (Announces
//! with any data set and interval, Syncs, Follow_Ups, Delay_Resps, Pdelay_Reqs, garbage),
//! timer firings and transmit timestamps. Invariants: no panic; the queues stay bounded;
//! whatever came before, a real master announcing correctly (and better than anyone the
//! script made up) is followed within a few announce intervals, and the port's own
//! Delay_Req then goes out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tempora_clock_types::LocalInstant;
use tempora_ptp::{Outgoing, PortConfig, PtpPort};
use tempora_ptp_proto::{
    AnnounceBody, Body, ClockAccuracy, ClockIdentity, ClockQuality, Flags, LogInterval,
    MessageType, MessageWriter, PortIdentity, PortState, PtpHeader, PtpTimestamp, TimeSource,
};

fn sender(n: u8) -> PortIdentity {
    PortIdentity {
        clock_identity: ClockIdentity([0xAA, n, 0, 0xFF, 0xFE, 0, 0, n]),
        port_number: 1,
    }
}

fn write(header: PtpHeader, body: Body) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let len = MessageWriter::new(&mut buf, &header, &body)
        .and_then(|w| w.finish())
        .unwrap_or(0);
    buf.truncate(len);
    buf
}

fn announce(from: PortIdentity, seq: u16, priority1: u8, class: u8, log_interval: i8) -> Vec<u8> {
    let mut h = PtpHeader::new(MessageType::Announce, from, seq);
    h.log_message_interval = LogInterval(log_interval);
    h.flags = Flags(Flags::PTP_TIMESCALE | Flags::UTC_OFFSET_VALID);
    write(
        h,
        Body::Announce(AnnounceBody {
            origin_timestamp: PtpTimestamp::ZERO,
            current_utc_offset: 37,
            grandmaster_priority1: priority1,
            grandmaster_clock_quality: ClockQuality {
                clock_class: class,
                clock_accuracy: ClockAccuracy::Unknown,
                offset_scaled_log_variance: 0xFFFF,
            },
            grandmaster_priority2: 128,
            grandmaster_identity: from.clock_identity,
            steps_removed: 0,
            time_source: TimeSource::InternalOscillator,
        }),
    )
}

/// Drains the port, checking the queues are bounded; counts the Delay_Reqs sent.
fn drain(port: &mut PtpPort, t: i128) -> usize {
    let mut buf = [0u8; 256];
    let mut delay_reqs = 0;
    let mut n = 0;
    while let Some(tx) = port.poll_transmit(&mut buf) {
        n += 1;
        assert!(n <= 16, "transmit queue unbounded");
        if tx.kind == Outgoing::DelayReq {
            delay_reqs += 1;
        }
        if tx.kind.is_event() {
            port.handle_transmit_timestamp(tx.kind, t);
        }
    }
    assert!(core::iter::from_fn(|| port.poll_event()).take(1000).count() <= 64);
    let b = port.error_bound(LocalInstant::from_seconds_f64(1e6));
    assert!(!b.bound.is_nan() && b.bound >= 0.0 && b.drift >= 0.0, "{b:?}");
    assert!(
        core::iter::from_fn(|| port.poll_action())
            .take(1000)
            .count()
            <= 64
    );
    delay_reqs
}

fuzz_target!(|data: &[u8]| {
    let me = sender(0xFE);
    let mut port = PtpPort::new(me, PortConfig::default());
    let base: i128 = 1_700_000_000_000_000_000;
    let mut now = 0.0f64;
    for op in data.chunks(4) {
        let [kind, a, b, c] = [
            op[0],
            *op.get(1).unwrap_or(&0),
            *op.get(2).unwrap_or(&0),
            *op.get(3).unwrap_or(&0),
        ];
        let from = sender(a % 40);
        let seq = u16::from(b);
        let t = base + (now * 1e9) as i128;
        let rx = t + i128::from(c) * 1000;
        let bytes = match kind % 8 {
            // Made-up masters may claim anything but the real master's priority 0.
            0 => announce(from, seq, b.max(1), c, (c % 16) as i8 - 7),
            1 => write(
                PtpHeader::new(MessageType::Sync, from, seq),
                Body::Sync {
                    origin_timestamp: PtpTimestamp::from_tai_nanos(t).unwrap_or(PtpTimestamp::ZERO),
                },
            ),
            2 => write(
                PtpHeader::new(MessageType::FollowUp, from, seq),
                Body::FollowUp {
                    precise_origin_timestamp: PtpTimestamp::from_tai_nanos(t)
                        .unwrap_or(PtpTimestamp::ZERO),
                },
            ),
            3 => write(
                PtpHeader::new(MessageType::DelayResp, from, seq),
                Body::DelayResp {
                    receive_timestamp: PtpTimestamp::from_tai_nanos(rx)
                        .unwrap_or(PtpTimestamp::ZERO),
                    requesting_port_identity: me,
                },
            ),
            4 => write(
                PtpHeader::new(MessageType::PdelayReq, from, seq),
                Body::PdelayReq {
                    origin_timestamp: PtpTimestamp::ZERO,
                },
            ),
            5 => {
                now += f64::from(c) / 16.0;
                port.handle_timeout(LocalInstant::from_seconds_f64(now));
                drain(&mut port, t);
                continue;
            }
            6 => op.to_vec(),
            _ => {
                port.clock_stepped();
                continue;
            }
        };
        port.handle_message(&bytes, rx, LocalInstant::from_seconds_f64(now));
        drain(&mut port, t);
    }
    // The real master: priority1 0, announcing every second, with Syncs.
    let real = sender(0xF0);
    let mut delay_reqs = 0;
    for k in 0..12u16 {
        now += 1.0;
        let t = base + (now * 1e9) as i128;
        let at = LocalInstant::from_seconds_f64(now);
        port.handle_message(&announce(real, 1000 + k, 0, 6, 0), t, at);
        port.handle_message(
            &write(
                PtpHeader::new(MessageType::Sync, real, 1000 + k),
                Body::Sync {
                    origin_timestamp: PtpTimestamp::from_tai_nanos(t).unwrap_or(PtpTimestamp::ZERO),
                },
            ),
            t,
            at,
        );
        for tenth in 1..10 {
            port.handle_timeout(LocalInstant::from_seconds_f64(
                now + f64::from(tenth) / 10.0,
            ));
            delay_reqs += drain(&mut port, t);
        }
    }
    assert_eq!(
        port.parent().map(|p| p.sender),
        Some(real),
        "the real master is followed"
    );
    assert!(matches!(
        port.state(),
        PortState::Uncalibrated | PortState::Slave
    ));
    assert!(delay_reqs > 0, "our own Delay_Req goes out");
});
