//! Parse and emit allocate nothing (allocation-counter counts this thread's allocations).

use tempora_ptp_proto::tlv::{ManagementTlv, PathTrace};
use tempora_ptp_proto::{
    Body, ClockIdentity, ComparisonDataset, EthernetFrame, ForeignMasterTable, ManagementData,
    MessageType, MessageWriter, PortIdentity, PtpHeader, PtpMessage, PtpTimestamp, TlvType,
    compare,
};

#[test]
fn parse_and_emit_allocate_nothing() {
    let mut buf = [0u8; 256];
    let mut frame_buf = [0u8; 300];
    let ids = [7u8; 16];
    let info = allocation_counter::measure(|| {
        let source = PortIdentity {
            clock_identity: ClockIdentity::from_mac([2, 0, 0, 0, 0, 1]),
            port_number: 1,
        };
        let header = PtpHeader::new(MessageType::Announce, source, 9);
        let body = Body::Announce(tempora_ptp_proto::AnnounceBody {
            origin_timestamp: PtpTimestamp::new(1_700_000_037, 1).unwrap(),
            current_utc_offset: 37,
            grandmaster_priority1: 128,
            grandmaster_clock_quality: tempora_ptp_proto::ClockQuality {
                clock_class: 248,
                clock_accuracy: tempora_ptp_proto::ClockAccuracy::Unknown,
                offset_scaled_log_variance: 0xFFFF,
            },
            grandmaster_priority2: 128,
            grandmaster_identity: source.clock_identity,
            steps_removed: 0,
            time_source: tempora_ptp_proto::TimeSource::InternalOscillator,
        });
        let mut w = MessageWriter::new(&mut buf, &header, &body).unwrap();
        w.push(&PathTrace::new(&ids).unwrap()).unwrap();
        let mut data = [0u8; 32];
        let n = ManagementData::Priority1(1).emit(&mut data).unwrap();
        w.push(&ManagementTlv {
            id: tempora_ptp_proto::ManagementId::Priority1,
            data: &data[..n],
        })
        .unwrap();
        let len = w.finish().unwrap();
        let msg = PtpMessage::parse(&buf[..len]).unwrap();
        let _ = msg
            .tlvs
            .find(TlvType::PathTrace)
            .unwrap()
            .parse_as::<PathTrace<'_>>()
            .unwrap()
            .identities()
            .count();
        let frame = EthernetFrame {
            destination: [1; 6],
            source: [2; 6],
            vlan: Some(5),
            payload: &buf[..len],
        };
        let flen = frame.emit(&mut frame_buf).unwrap();
        let parsed = EthernetFrame::parse(&frame_buf[..flen]).unwrap();
        let msg = PtpMessage::parse(parsed.payload).unwrap();
        if let Body::Announce(a) = msg.body {
            let ds = ComparisonDataset::from_announce(&msg.header, &a, source);
            let _ = compare(&ds, &ds);
            let mut table = ForeignMasterTable::new(ClockIdentity([9; 8]));
            table.record(ds, 0, 1_000_000_000);
            table.record(ds, 1, 1_000_000_000);
            let _ = table.best(1);
        }
        assert!(PtpMessage::parse(&buf[..20]).is_err());
    });
    assert_eq!(info.count_total, 0, "{info:?}");
}
