//! NTS (RFC 8915) per-packet costs: the AEAD on a request's worth of bytes, a cookie
//! sealed and opened, the server's whole path for one authenticated request (read the
//! cookie, check the authenticator, answer with a fresh cookie), and the client's (make
//! a request, check the answer).
//!
//! Run: `cargo bench -p tempora-benches --bench nts`

#![allow(missing_docs)]
// Benchmark set-up panics on a broken fixture, which is what it should do.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tempora_ntp::nts::{
    AeadAlgorithm, AeadKey, CookieKeys, NtsClient, NtsKeys, read_nts_request, write_nts_response,
};
use tempora_ntp_proto::{
    NtpPacket, NtpTimestamp, ServerState, Stratum, Version, client_request, server_response,
};

fn keys() -> NtsKeys {
    NtsKeys::new(AeadAlgorithm::AesSivCmac256, &[1; 32], &[2; 32]).unwrap()
}

fn bench(c: &mut Criterion) {
    let key = AeadKey::new(AeadAlgorithm::AesSivCmac256, &[7; 32]).unwrap();
    let header = [0x23u8; 228];
    let sealed = key.seal(&[1; 16], &header, &[]);
    c.bench_function(
        "nts aead seal (228 bytes of associated data, empty plaintext)",
        |b| {
            b.iter(|| black_box(key.seal(black_box(&[1; 16]), black_box(&header), &[])));
        },
    );
    c.bench_function("nts aead open (228 bytes of associated data)", |b| {
        b.iter(|| black_box(key.open(black_box(&[1; 16]), black_box(&header), &sealed)));
    });

    let server = CookieKeys::new(1, [9; 32]);
    let cookie = server.seal(&keys(), &[3; 16]);
    c.bench_function("nts cookie seal", |b| {
        b.iter(|| black_box(server.seal(black_box(&keys()), black_box(&[3; 16]))));
    });
    c.bench_function("nts cookie open", |b| {
        b.iter(|| black_box(server.open(black_box(&cookie)).unwrap()));
    });

    // The server's path for one request with no placeholder (a client at eight cookies).
    let cookies: Vec<Vec<u8>> = (0..8u8).map(|i| server.seal(&keys(), &[i; 16])).collect();
    let mut client = NtsClient::new(keys(), cookies.clone());
    let request_header = client_request(Version::V4, 0x1234);
    let mut req = [0u8; 1500];
    let n = client
        .write_request(&request_header, [5; 32], [6; 16], &mut req)
        .unwrap();
    let state = ServerState {
        stratum: Stratum(1),
        ..ServerState::UNSYNCHRONIZED
    };
    let mut out = [0u8; 1500];
    c.bench_function(
        "nts server: read, authenticate and answer one request",
        |b| {
            b.iter(|| {
                let request = read_nts_request(black_box(&req[..n]), &server)
                    .unwrap()
                    .unwrap();
                let h = NtpPacket::parse(&req[..n]).unwrap().header;
                let answer = server_response(
                    &h,
                    &state,
                    NtpTimestamp::from_bits(5),
                    NtpTimestamp::from_bits(6),
                )
                .unwrap();
                black_box(
                    write_nts_response(&answer, &request, &server, [7; 16], || [8; 16], &mut out)
                        .unwrap(),
                )
            });
        },
    );

    // The client's path: a request, then the answer checked and its cookie kept.
    let request = read_nts_request(&req[..n], &server).unwrap().unwrap();
    let h = NtpPacket::parse(&req[..n]).unwrap().header;
    let answer = server_response(
        &h,
        &state,
        NtpTimestamp::from_bits(5),
        NtpTimestamp::from_bits(6),
    )
    .unwrap();
    let m = write_nts_response(&answer, &request, &server, [7; 16], || [8; 16], &mut out).unwrap();
    let response = out[..m].to_vec();
    c.bench_function("nts client: make a request and check its answer", |b| {
        b.iter(|| {
            let mut client = NtsClient::new(keys(), cookies.clone());
            let mut buf = [0u8; 1500];
            let _ = client
                .write_request(&request_header, [5; 32], [6; 16], &mut buf)
                .unwrap();
            black_box(client.read_response(black_box(&response)).unwrap())
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
