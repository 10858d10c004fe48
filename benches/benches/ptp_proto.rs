//! ptp-proto hot paths: what a slave does per Sync/Follow_Up/Announce, and the BMCA.
//!
//! Run: `cargo bench -p tempora-benches --bench ptp_proto`

#![allow(missing_docs)]
// Benchmark set-up panics on a broken fixture, which is what it should do.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tempora_ptp_proto::tlv::PathTrace;
use tempora_ptp_proto::{
    AnnounceBody, Body, ClockAccuracy, ClockIdentity, ClockQuality, ComparisonDataset, Flags,
    MessageType, MessageWriter, PortIdentity, PtpHeader, PtpMessage, PtpTimestamp, TimeSource,
    compare,
};

fn source() -> PortIdentity {
    PortIdentity {
        clock_identity: ClockIdentity::from_mac([0x02, 0x42, 0xac, 0x11, 0, 2]),
        port_number: 1,
    }
}

fn write(body: Body, path: Option<&[u8]>) -> Vec<u8> {
    let mut header = PtpHeader::new(body.message_type(), source(), 1);
    header.flags = Flags(Flags::TWO_STEP | Flags::PTP_TIMESCALE);
    let mut buf = vec![0u8; 256];
    let mut w = MessageWriter::new(&mut buf, &header, &body).unwrap();
    if let Some(ids) = path {
        w.push(&PathTrace::new(ids).unwrap()).unwrap();
    }
    let n = w.finish().unwrap();
    buf.truncate(n);
    buf
}

fn announce() -> AnnounceBody {
    AnnounceBody {
        origin_timestamp: PtpTimestamp::new(1_700_000_037, 5).unwrap(),
        current_utc_offset: 37,
        grandmaster_priority1: 128,
        grandmaster_clock_quality: ClockQuality {
            clock_class: 248,
            clock_accuracy: ClockAccuracy::Unknown,
            offset_scaled_log_variance: 0xFFFF,
        },
        grandmaster_priority2: 128,
        grandmaster_identity: source().clock_identity,
        steps_removed: 1,
        time_source: TimeSource::InternalOscillator,
    }
}

fn benches(c: &mut Criterion) {
    let ts = PtpTimestamp::new(1_700_000_037, 123_456_789).unwrap();
    let sync = write(
        Body::Sync {
            origin_timestamp: ts,
        },
        None,
    );
    let follow_up = write(
        Body::FollowUp {
            precise_origin_timestamp: ts,
        },
        None,
    );
    let ids = [0x11u8; 16];
    let announce_bytes = write(Body::Announce(announce()), Some(&ids));

    c.bench_function("ptp/parse_sync", |b| {
        b.iter(|| PtpMessage::parse(black_box(&sync)).unwrap())
    });
    c.bench_function("ptp/parse_follow_up", |b| {
        b.iter(|| PtpMessage::parse(black_box(&follow_up)).unwrap())
    });
    c.bench_function("ptp/parse_announce_path_trace", |b| {
        b.iter(|| {
            let msg = PtpMessage::parse(black_box(&announce_bytes)).unwrap();
            msg.tlvs.into_iter().count()
        })
    });
    let header = PtpHeader::new(MessageType::DelayReq, source(), 7);
    let body = Body::DelayReq {
        origin_timestamp: PtpTimestamp::ZERO,
    };
    let mut out = [0u8; 64];
    c.bench_function("ptp/emit_delay_req", |b| {
        b.iter(|| {
            MessageWriter::new(&mut out, black_box(&header), black_box(&body))
                .unwrap()
                .finish()
                .unwrap()
        })
    });
    let msg = PtpMessage::parse(&announce_bytes).unwrap();
    let a = ComparisonDataset::from_announce(&msg.header, &announce(), PortIdentity::default());
    let other = ComparisonDataset {
        sender: PortIdentity {
            port_number: 2,
            ..a.sender
        },
        ..a
    };
    c.bench_function("ptp/bmca_compare", |b| {
        b.iter(|| compare(black_box(&a), black_box(&other)))
    });
}

criterion_group!(ptp_proto, benches);
criterion_main!(ptp_proto);
