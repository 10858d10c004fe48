//! Parse and emit allocate nothing: a counting global allocator watches this thread while
//! every parse and emit path runs.

use tempora_ntp_proto::{
    ExtensionField, ExtensionFieldType, KissCode, Mac, NtpHeader, NtpPacket, NtsAuthenticator,
    NtsCookie, NtsUniqueIdentifier, PacketBuilder, ServerState, Version, check_response,
    client_request, kiss_of_death, offset_and_delay, server_response,
};

/// Allocations made on this thread while `f` runs (allocation-counter replaces the global
/// allocator of this test binary and counts per thread).
fn allocations_during(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).count_total
}

#[test]
fn parse_and_emit_allocate_nothing() {
    // Inputs are built before watching starts.
    let mut buf = [0u8; 1024];
    let mut out = [0u8; 1024];
    let uid = [7u8; 32];
    let cookie = [9u8; 96];

    let count = allocations_during(|| {
        let request = client_request(Version::V4, 0xDEAD_BEEF);
        let mut builder = PacketBuilder::new(&mut buf, &request).unwrap();
        NtsUniqueIdentifier(&uid).write(&mut builder).unwrap();
        NtsCookie(&cookie).write(&mut builder).unwrap();
        NtsAuthenticator {
            nonce: &uid[..16],
            ciphertext: &uid[..16],
            additional_padding: 0,
        }
        .write(&mut builder)
        .unwrap();
        let len = builder.finish().unwrap();

        let packet = NtpPacket::parse(&buf[..len]).unwrap();
        for field in packet.extension_fields {
            if field.field_type == ExtensionFieldType::NtsAuthenticator {
                NtsAuthenticator::parse(&field).unwrap();
            }
        }
        packet.emit(&mut out).unwrap();

        let header = NtpHeader::parse_bytes(&out).unwrap();
        let response = server_response(
            &header,
            &ServerState::UNSYNCHRONIZED,
            header.transmit_timestamp,
            header.transmit_timestamp,
        )
        .unwrap();
        let response_len = PacketBuilder::response(&mut out, &response, len)
            .unwrap()
            .finish()
            .unwrap();
        let parsed = NtpPacket::parse(&out[..response_len]).unwrap().header;
        let _ = check_response(&parsed, request.transmit_timestamp, None);
        let kod = kiss_of_death(&header, KissCode::Rate).unwrap();
        kod.emit_bytes(&mut out).unwrap();
        let t = parsed.transmit_timestamp;
        let _ = offset_and_delay(t, t, t, t);
        let mut with_mac = PacketBuilder::new(&mut out, &header).unwrap();
        with_mac
            .push(&ExtensionField::new(ExtensionFieldType::Unknown(1), &uid))
            .unwrap();
        let mac_len = with_mac
            .finish_with_mac(&Mac {
                key_id: 1,
                digest: &uid[..20],
            })
            .unwrap();
        NtpPacket::parse(&out[..mac_len]).unwrap();
        // Errors allocate nothing either.
        assert!(NtpPacket::parse(&out[..50]).is_err());
    });
    assert_eq!(count, 0, "parse/emit paths allocated {count} times");
}

#[test]
fn the_counter_counts() {
    // The check above could not fail if the counter never counted.
    let count = allocations_during(|| {
        let v: Vec<u8> = Vec::with_capacity(64);
        std::hint::black_box(v);
    });
    assert_eq!(count, 1);
}
