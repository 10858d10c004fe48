//! Any datagram as a PTP message: whatever parses re-emits, and re-parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tempora_ptp_proto::{ManagementData, PtpMessage, TlvType, tlv::ManagementTlv};

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = PtpMessage::parse(data) else {
        return;
    };
    let mut out = vec![0u8; msg.buffer_len()];
    let len = msg.emit(&mut out).expect("emit into buffer_len bytes");
    let again = PtpMessage::parse(&out[..len]).expect("re-parse");
    assert_eq!(
        (again.header.message_type, again.body, again.tlvs.as_bytes()),
        (msg.header.message_type, msg.body, msg.tlvs.as_bytes())
    );
    if let Some(tlv) = msg.tlvs.find(TlvType::Management) {
        if let Ok(m) = tlv.parse_as::<ManagementTlv<'_>>() {
            if let Ok(data) = ManagementData::parse(m.id, m.data) {
                let mut buf = [0u8; 1024];
                if let Ok(n) = data.emit(&mut buf) {
                    assert_eq!(ManagementData::parse(m.id, &buf[..n]).ok(), Some(data));
                }
            }
        }
    }
});
