//! ntp-proto hot paths: what a server does per request and a client per response.
//!
//! Run: `cargo bench -p tempora-benches --bench ntp_proto`

#![allow(missing_docs)]
// Benchmark set-up panics on a broken fixture, which is what it should do.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tempora_ntp_proto::{
    HeaderView, NtpHeader, NtpPacket, NtsAuthenticator, NtsCookie, NtsCookiePlaceholder,
    NtsUniqueIdentifier, PacketBuilder, ReferenceId, ServerState, Stratum, Version, client_request,
    offset_and_delay, server_response,
};
use tempora_ntp_proto::{LeapIndicator, Log2Seconds, MacAlgorithm, MacKey, NtpShort, NtpTimestamp};

fn plain_request() -> [u8; 48] {
    client_request(Version::V4, 0x1234_5678_9ABC_DEF0).to_bytes()
}

/// A client request shaped like an NTS one: unique identifier, a 100-byte cookie, one
/// placeholder and an authenticator with a 16-byte nonce and tag.
fn nts_request(buf: &mut [u8]) -> usize {
    let mut builder = PacketBuilder::new(buf, &client_request(Version::V4, 7)).unwrap();
    NtsUniqueIdentifier(&[1; 32]).write(&mut builder).unwrap();
    NtsCookie(&[2; 100]).write(&mut builder).unwrap();
    NtsCookiePlaceholder { body_len: 100 }
        .write(&mut builder)
        .unwrap();
    NtsAuthenticator {
        nonce: &[3; 16],
        ciphertext: &[4; 16],
        additional_padding: 0,
    }
    .write(&mut builder)
    .unwrap();
    builder.finish().unwrap()
}

fn state() -> ServerState {
    ServerState {
        leap: LeapIndicator::NoWarning,
        stratum: Stratum(2),
        precision: Log2Seconds(-24),
        root_delay: NtpShort::from_bits(0x100),
        root_dispersion: NtpShort::from_bits(0x200),
        reference_id: ReferenceId([192, 0, 2, 1]),
        reference_timestamp: NtpTimestamp::from_bits(0xECD4_1E00_0000_0000),
    }
}

fn benches(c: &mut Criterion) {
    let plain = plain_request();
    c.bench_function("ntp/parse_plain_48", |b| {
        b.iter(|| NtpPacket::parse(black_box(&plain[..])).unwrap())
    });
    c.bench_function("ntp/parse_header_only_48", |b| {
        b.iter(|| NtpHeader::parse_bytes(black_box(&plain[..])).unwrap())
    });

    let mut nts = [0u8; 512];
    let nts_len = nts_request(&mut nts);
    c.bench_function(&format!("ntp/parse_nts_{nts_len}"), |b| {
        b.iter(|| {
            let packet = NtpPacket::parse(black_box(&nts[..nts_len])).unwrap();
            packet.extension_fields.into_iter().count()
        })
    });

    let header = NtpHeader::parse_bytes(&plain).unwrap();
    let mut out = [0u8; 64];
    c.bench_function("ntp/emit_48", |b| {
        b.iter(|| black_box(&header).emit(&mut HeaderView::new_unchecked(&mut out[..])))
    });

    let rx = NtpTimestamp::from_bits(0xECD4_1E10_0000_0000);
    let tx = NtpTimestamp::from_bits(0xECD4_1E10_0000_1000);
    let server = state();
    c.bench_function("ntp/request_to_response", |b| {
        b.iter(|| {
            let request = NtpPacket::parse(black_box(&plain[..])).unwrap();
            let response = server_response(&request.header, &server, rx, tx).unwrap();
            PacketBuilder::response(&mut out, &response, plain.len())
                .unwrap()
                .finish()
                .unwrap()
        })
    });

    let mut signed = [0u8; 128];
    for (name, algorithm, secret) in [
        ("md5", MacAlgorithm::Md5, &b"0123456789abcdefghij"[..]),
        ("sha1", MacAlgorithm::Sha1, &b"0123456789abcdefghij"[..]),
        (
            "aes_cmac",
            MacAlgorithm::AesCmac128,
            &b"0123456789abcdef"[..],
        ),
    ] {
        let key = MacKey::new(1, algorithm, secret).unwrap();
        let len = PacketBuilder::new(&mut signed, &header)
            .unwrap()
            .finish_with_key(&key)
            .unwrap();
        c.bench_function(&format!("ntp/mac_verify_{name}"), |b| {
            b.iter(|| MacKey::verify_packet(black_box(&signed[..len]), |_| Some(key)).unwrap())
        });
    }

    c.bench_function("ntp/offset_and_delay", |b| {
        b.iter(|| offset_and_delay(black_box(rx), black_box(tx), black_box(tx), black_box(rx)))
    });
}

criterion_group!(ntp_proto, benches);
criterion_main!(ntp_proto);
