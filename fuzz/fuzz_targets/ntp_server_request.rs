//! Any datagram through the server's request handling, with interleaved mode and rate
//! limiting on: no panic; an answer is never longer than the request and is a server
//! packet answering it.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use tempora_ntp::server::{Answer, ClientTable, Counters, RateLimit, Request, ServerCore};
use tempora_ntp_proto::{AssociationMode, NtpHeader, NtpTimestamp, ServerState, Stratum};

static CLIENTS: Mutex<Option<ClientTable>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let core = ServerCore {
        interleaved: true,
        ..ServerCore::default()
    };
    let mut guard = CLIENTS.lock().unwrap();
    let clients = guard.get_or_insert_with(|| {
        ClientTable::new(
            RateLimit {
                enabled: true,
                table_size: 64,
                ..RateLimit::default()
            },
            [0x5E; 16],
        )
    });
    let state = ServerState {
        stratum: Stratum(2),
        ..ServerState::UNSYNCHRONIZED
    };
    let from = IpAddr::V4(Ipv4Addr::new(192, 0, 2, data.first().copied().unwrap_or(0)));
    let mut out = [0u8; 64];
    let mut counters = Counters::default();
    let answer = core.handle(
        &Request {
            bytes: data,
            truncated: false,
            from,
            from_port: 123,
            rx: NtpTimestamp::from_bits(0xE000_0000_0000_0001),
            now_ns: data.len() as u64 * 1_000_000_000,
        },
        &state,
        clients,
        &mut counters,
        &mut out,
    );
    if let Answer::Reply { len, .. } = answer {
        assert!(len <= data.len(), "answer longer than the request");
        let h = NtpHeader::parse_bytes(&out[..len]).expect("our answer parses");
        assert_eq!(h.mode, AssociationMode::Server);
        let request = NtpHeader::parse_bytes(data).expect("answered a valid request");
        assert_eq!(request.mode, AssociationMode::Client);
    }
});
