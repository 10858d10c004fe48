//! Parse any datagram as an NTP packet; whatever parses must emit back to the same bytes
//! and parse again to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tempora_ntp_proto::{HeaderView, Mode, NtpHeader, NtpPacket};

fuzz_target!(|data: &[u8]| {
    let _ = Mode::peek(data);
    if let Ok(view) = HeaderView::new_checked(data) {
        // No accessor panics after the length check.
        let _ = (
            view.leap(),
            view.version(),
            view.mode(),
            view.stratum(),
            view.trailer(),
        );
    }
    let Ok(packet) = NtpPacket::parse(data) else {
        return;
    };
    let mut out = vec![0u8; packet.buffer_len()];
    let len = packet.emit(&mut out).expect("emit into buffer_len bytes");
    assert_eq!(&out[..len], data, "emit differs from input");
    let again = NtpPacket::parse(&out).expect("re-parse");
    assert_eq!(again, packet);
    assert_eq!(NtpHeader::parse_bytes(data), Ok(packet.header));
});
