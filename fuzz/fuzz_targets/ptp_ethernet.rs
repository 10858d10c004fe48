//! Any Ethernet frame: PTP frames re-emit exactly and their payload parses without panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tempora_ptp_proto::{EthernetFrame, PtpMessage};

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = EthernetFrame::parse(data) else {
        return;
    };
    let mut out = vec![0u8; frame.buffer_len()];
    assert_eq!(frame.emit(&mut out), Ok(data.len()));
    assert_eq!(out, data);
    let _ = PtpMessage::parse(frame.payload);
});
