//! MAC verification on any packet with each algorithm: never a panic, and a packet that we
//! sign ourselves always verifies while a flipped byte never does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tempora_ntp_proto::{MacAlgorithm, MacKey, NtpPacket, PacketBuilder};

const SECRET: [u8; 16] = *b"0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    for (id, algorithm) in [
        (1, MacAlgorithm::Md5),
        (2, MacAlgorithm::Sha1),
        (3, MacAlgorithm::AesCmac128),
    ] {
        let key = MacKey::new(id, algorithm, &SECRET).unwrap();
        let _ = MacKey::verify_packet(data, |_| Some(key));

        // Sign whatever parses, then check the signature holds and a flip breaks it.
        let Ok(packet) = NtpPacket::parse(data) else {
            continue;
        };
        let mut buf = vec![0u8; data.len() + 64];
        let mut builder = PacketBuilder::new(&mut buf, &packet.header).unwrap();
        for field in packet.extension_fields {
            if builder.push(&field).is_err() {
                return;
            }
        }
        let len = builder.finish_with_key(&key).unwrap();
        assert_eq!(MacKey::verify_packet(&buf[..len], |_| Some(key)), Ok(id));
        buf[len - 1] ^= 0x80;
        assert!(MacKey::verify_packet(&buf[..len], |_| Some(key)).is_err());
    }
});
