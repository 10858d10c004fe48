//! Golden vectors: messages captured from real linuxptp 3.1.1 (ptp4l and pmc) by
//! `tests/vectors/capture.py` (each file says how). Every one must parse, re-emit byte for
//! byte, and mean what ptp4l meant.

// Helpers panic on a broken fixture: in a test, that is the failure wanted.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use tempora_ptp_proto::tlv::{ManagementTlv, OrganizationExtension, PathTrace};
use tempora_ptp_proto::{
    Body, ClockAccuracy, Comparison, ComparisonDataset, DelayMechanism, EthernetFrame,
    ManagementAction, ManagementData, MessageType, PortState, PtpMessage, TimeSource, TlvType,
    compare,
};

fn vectors() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("vector directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "hex"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable vector");
            let hex: String = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .flat_map(str::split_whitespace)
                .collect();
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            (p.file_name().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    out.sort();
    out
}

fn vector(name: &str) -> Vec<u8> {
    vectors()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, b)| b)
        .unwrap_or_else(|| panic!("no vector {name}"))
}

/// The PTP message of a vector: L2 vectors are whole Ethernet frames.
fn message_bytes(name: &str, bytes: &[u8]) -> Vec<u8> {
    if name.contains("-l2-") {
        let frame = EthernetFrame::parse(bytes).expect("PTP Ethernet frame");
        let mut again = vec![0u8; frame.buffer_len()];
        assert_eq!(frame.emit(&mut again), Ok(bytes.len()));
        assert_eq!(again, bytes, "{name}: frame re-emit");
        frame.payload.to_vec()
    } else {
        bytes.to_vec()
    }
}

#[test]
fn every_vector_parses_and_reemits_exactly() {
    let all = vectors();
    assert!(all.len() >= 40, "only {} vectors", all.len());
    for (name, bytes) in &all {
        let bytes = message_bytes(name, bytes);
        let msg = PtpMessage::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let len = usize::from(msg.header.message_length);
        let mut again = vec![0u8; len];
        assert_eq!(msg.emit(&mut again), Ok(len), "{name}");
        assert_eq!(again, bytes[..len], "{name}: re-emit differs");
    }
}

#[test]
fn e2e_exchange_over_udp4_and_udp6() {
    for transport in ["udp4", "udp6"] {
        let sync_bytes = vector(&format!("ptp4l-3.1.1-{transport}-e2e-sync.hex"));
        let sync = PtpMessage::parse(&sync_bytes).unwrap();
        assert_eq!(sync.header.message_type, MessageType::Sync);
        assert!(sync.header.flags.two_step(), "ptp4l is two-step by default");
        assert_eq!(sync.header.log_message_interval.0, -2);
        let fup_bytes = vector(&format!("ptp4l-3.1.1-{transport}-e2e-follow-up.hex"));
        let fup = PtpMessage::parse(&fup_bytes).unwrap();
        let Body::FollowUp {
            precise_origin_timestamp,
        } = fup.body
        else {
            panic!("{fup:?}")
        };
        assert!(
            precise_origin_timestamp.seconds() > 1_600_000_000,
            "free-running ptp4l uses the system clock"
        );
        let req_bytes = vector(&format!("ptp4l-3.1.1-{transport}-e2e-delay-req.hex"));
        let req = PtpMessage::parse(&req_bytes).unwrap();
        let resp_bytes = vector(&format!("ptp4l-3.1.1-{transport}-e2e-delay-resp.hex"));
        let resp = PtpMessage::parse(&resp_bytes).unwrap();
        let Body::DelayResp {
            requesting_port_identity,
            ..
        } = resp.body
        else {
            panic!()
        };
        assert_eq!(requesting_port_identity, req.header.source_port_identity);
        assert_eq!(
            resp.header.source_port_identity,
            sync.header.source_port_identity
        );
    }
}

#[test]
fn announce_with_path_trace_and_bmca() {
    let bytes = vector("ptp4l-3.1.1-udp4-e2e-announce.hex");
    let msg = PtpMessage::parse(&bytes).unwrap();
    let Body::Announce(announce) = msg.body else {
        panic!()
    };
    assert_eq!(announce.grandmaster_priority1, 128);
    assert_eq!(announce.grandmaster_clock_quality.clock_class, 248);
    assert_eq!(
        announce.grandmaster_clock_quality.clock_accuracy,
        ClockAccuracy::Unknown
    );
    assert_eq!(announce.steps_removed, 0);
    assert_eq!(announce.time_source, TimeSource::InternalOscillator);
    assert_eq!(announce.current_utc_offset, 37);
    let path: PathTrace<'_> = msg
        .tlvs
        .find(TlvType::PathTrace)
        .unwrap()
        .parse_as()
        .unwrap();
    assert_eq!(
        path.identities().collect::<Vec<_>>(),
        vec![announce.grandmaster_identity]
    );
    // The BMCA on the captured Announce: a better priority1 wins; the same data set from
    // another sender with one more step loses by topology.
    let receiver = tempora_ptp_proto::PortIdentity::default();
    let theirs = ComparisonDataset::from_announce(&msg.header, &announce, receiver);
    let better = ComparisonDataset {
        priority1: 1,
        identity: tempora_ptp_proto::ClockIdentity([0; 8]),
        ..theirs
    };
    assert_eq!(compare(&better, &theirs), Comparison::ABetter);
}

#[test]
fn p2p_and_gptp_over_ethernet() {
    let frame_bytes = vector("ptp4l-3.1.1-l2-p2p-pdelay-req.hex");
    let frame = EthernetFrame::parse(&frame_bytes).unwrap();
    assert_eq!(frame.destination, tempora_ptp_proto::transport::MAC_PDELAY);
    let msg = PtpMessage::parse(frame.payload).unwrap();
    assert_eq!(msg.header.message_type, MessageType::PdelayReq);
    assert_eq!(msg.header.major_sdo_id, 0);

    let frame_bytes = vector("ptp4l-3.1.1-l2-gptp-follow-up.hex");
    let frame = EthernetFrame::parse(&frame_bytes).unwrap();
    let msg = PtpMessage::parse(frame.payload).unwrap();
    assert_eq!(msg.header.major_sdo_id, 1, "802.1AS transportSpecific");
    let org: OrganizationExtension<'_> = msg
        .tlvs
        .find(TlvType::OrganizationExtension)
        .unwrap()
        .parse_as()
        .unwrap();
    assert_eq!(org.organization_id, [0x00, 0x80, 0xC2], "IEEE 802.1 OUI");
    assert_eq!(org.subtype, [0, 0, 1], "Follow_Up information TLV");
    assert_eq!(org.data.len(), 22);
}

fn management_response(id: u16) -> (PtpMessage<'static>, ManagementData<'static>) {
    let bytes: &'static [u8] =
        Box::leak(vector(&format!("ptp4l-3.1.1-pmc-response-{id:04x}.hex")).into_boxed_slice());
    let msg = PtpMessage::parse(bytes).unwrap();
    let Body::Management(body) = msg.body else {
        panic!()
    };
    assert_eq!(body.action, ManagementAction::Response);
    let tlv: ManagementTlv<'_> = msg.tlvs.into_iter().next().unwrap().parse_as().unwrap();
    assert_eq!(tlv.id.to_u16(), id);
    let data = ManagementData::parse(tlv.id, tlv.data).unwrap();
    // The typed data re-emits to exactly ptp4l's bytes.
    let mut again = [0u8; 256];
    let len = data.emit(&mut again).unwrap();
    assert_eq!(&again[..len], tlv.data, "management ID {id:#06x}");
    (msg, data)
}

#[test]
fn pmc_management_data_sets() {
    let (msg, data) = management_response(0x2000);
    let ManagementData::DefaultDataSet(ds) = data else {
        panic!("{data:?}")
    };
    assert_eq!(
        ds.clock_identity,
        msg.header.source_port_identity.clock_identity
    );
    assert!(ds.two_step && !ds.slave_only);
    assert_eq!(
        (
            ds.number_ports,
            ds.priority1,
            ds.priority2,
            ds.domain_number
        ),
        (1, 128, 128, 0)
    );
    assert_eq!(ds.clock_quality.clock_class, 248);

    let (_, data) = management_response(0x2001);
    let ManagementData::CurrentDataSet(cur) = data else {
        panic!("{data:?}")
    };
    assert_eq!(cur.steps_removed, 0);

    let (_, data) = management_response(0x2002);
    let ManagementData::ParentDataSet(parent) = data else {
        panic!("{data:?}")
    };
    assert_eq!(
        parent.grandmaster_identity, ds.clock_identity,
        "its own grandmaster"
    );

    let (_, data) = management_response(0x2003);
    let ManagementData::TimePropertiesDataSet(tp) = data else {
        panic!("{data:?}")
    };
    assert_eq!(tp.current_utc_offset, 37);
    assert_eq!(tp.time_source, TimeSource::InternalOscillator);

    let (_, data) = management_response(0x2004);
    let ManagementData::PortDataSet(port) = data else {
        panic!("{data:?}")
    };
    assert_eq!(port.port_identity.port_number, 1);
    assert!(matches!(
        port.port_state,
        PortState::Listening | PortState::Master
    ));
    assert_eq!(port.delay_mechanism, DelayMechanism::E2e);
    assert_eq!(port.version_number, 2);
    assert_eq!(port.log_sync_interval, -2);

    let (_, data) = management_response(0x0001);
    let ManagementData::ClockDescription(cd) = data else {
        panic!("{data:?}")
    };
    assert_eq!(cd.physical_layer_protocol.as_str(), Some("IEEE 802.3"));
    assert_eq!(cd.physical_address.len(), 6);
    assert_eq!(cd.network_protocol, 1, "UDP/IPv4");

    assert!(matches!(
        management_response(0x0002).1,
        ManagementData::UserDescription(_)
    ));
    assert_eq!(
        management_response(0x2005).1,
        ManagementData::Priority1(128)
    );
    assert_eq!(management_response(0x2007).1, ManagementData::Domain(0));
    assert_eq!(
        management_response(0x2009).1,
        ManagementData::LogAnnounceInterval(0)
    );
    assert_eq!(
        management_response(0x2010).1,
        ManagementData::ClockAccuracy(ClockAccuracy::Unknown)
    );
    assert!(matches!(
        management_response(0x2013).1,
        ManagementData::TimescaleProperties { .. }
    ));
}

#[test]
fn pmc_get_requests() {
    for (name, bytes) in vectors().into_iter().filter(|(n, _)| n.contains("pmc-get")) {
        let msg = PtpMessage::parse(&bytes).unwrap();
        let Body::Management(body) = msg.body else {
            panic!("{name}")
        };
        assert_eq!(body.action, ManagementAction::Get, "{name}");
        assert_eq!(
            body.target_port_identity,
            tempora_ptp_proto::PortIdentity::ALL,
            "{name}"
        );
    }
}
