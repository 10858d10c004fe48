//! The NTS request path of a server, and the response path of a client: any bytes, and a
//! real request or answer with any bytes changed, never panic; a changed request is
//! never answered as authentic, a changed answer never accepted, and the answer to an
//! authentic request is never longer than it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tempora_ntp::nts::{
    AeadAlgorithm, CookieKeys, NtsClient, NtsKeys, read_nts_request, write_nts_response,
};
use tempora_ntp_proto::{NtpPacket, NtpTimestamp, ServerState, Version, client_request, server_response};

fuzz_target!(|data: &[u8]| {
    let server = CookieKeys::new(1, [7; 32]);
    let _ = read_nts_request(data, &server);

    let keys = NtsKeys::new(AeadAlgorithm::AesSivCmac256, &[1; 32], &[2; 32]).unwrap();
    let cookies = (0..8u8).map(|i| server.seal(&keys, &[i; 16])).collect();
    let mut client = NtsClient::new(keys, cookies);
    let _ = client.read_response(data);

    // A real request, then the input's bytes XORed over it.
    let lost = data.first().map_or(0, |b| b % 8);
    let header = client_request(Version::V4, 0x1234);
    let mut req = [0u8; 1500];
    let mut n = 0;
    for i in 0..=lost {
        n = client.write_request(&header, [i; 32], [i; 16], &mut req).unwrap();
    }
    let request = req[..n].to_vec();
    let mut changed = request.clone();
    for (b, d) in changed.iter_mut().zip(data.iter().skip(1)) {
        *b ^= d;
    }
    let parsed = read_nts_request(&changed, &server);
    if changed != request {
        assert!(!matches!(parsed, Ok(Some(_))), "a changed request authenticated");
    }
    let Ok(Some(authentic)) = read_nts_request(&request, &server) else {
        panic!("a real request refused");
    };
    let h = NtpPacket::parse(&request).unwrap().header;
    let state = ServerState::UNSYNCHRONIZED;
    let answer_header =
        server_response(&h, &state, NtpTimestamp::from_bits(5), NtpTimestamp::from_bits(6)).unwrap();
    let mut out = [0u8; 1500];
    let m = write_nts_response(&answer_header, &authentic, &server, [3; 16], || [4; 16], &mut out)
        .unwrap();
    assert!(m <= request.len());
    let mut bad = out[..m].to_vec();
    for (b, d) in bad.iter_mut().zip(data.iter().skip(1)) {
        *b ^= d;
    }
    if bad != out[..m] {
        assert!(client.read_response(&bad).is_err(), "a changed answer accepted");
    }
    assert!(client.read_response(&out[..m]).is_ok());
});
