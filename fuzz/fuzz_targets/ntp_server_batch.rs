//! The server's request path as its daemon runs it, a batch at a time: up to 64 arbitrary
//! datagrams from arbitrary addresses and ports (0 included) through `ServerCore`, then
//! the answers through `send_all` with a kernel that refuses whichever datagrams the
//! input says (as EINVAL, EPERM or ENETUNREACH would) and takes at most a few a call.
//! Invariants: no panic; nothing is answered to port 0; every answer is delivered or
//! refused exactly once, in order, and only the refused ones are lost; every delivered
//! answer is a server packet no longer than its request.
#![no_main]

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use tempora_ntp::server::{
    Answer, ClientTable, Counters, RateLimit, Request, ServerCore, send_all,
};
use tempora_ntp_proto::{AssociationMode, NtpHeader, NtpTimestamp, ServerState, Stratum};

static CLIENTS: Mutex<Option<ClientTable>> = Mutex::new(None);

/// One answer waiting to be sent: its bytes and where to.
struct Reply {
    data: [u8; 64],
    len: usize,
    request_len: usize,
    port: u16,
}

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
    let mut counters = Counters::default();
    let mut replies = Vec::new();
    let mut rest = data;
    let mut received = 0u64;
    while received < 64 && rest.len() >= 4 {
        let (ip, port, len) = (rest[0], u16::from_be_bytes([rest[1], rest[2]]), rest[3]);
        let len = usize::from(len).min(rest.len() - 4);
        let bytes = &rest[4..4 + len];
        rest = &rest[4 + len..];
        received += 1;
        let mut out = [0u8; 64];
        let answer = core.handle(
            &Request {
                bytes,
                truncated: false,
                from: IpAddr::V4(Ipv4Addr::new(192, 0, 2, ip)),
                from_port: port,
                rx: NtpTimestamp::from_bits(0xE000_0000_0000_0000 + received),
                now_ns: received * 1_000_000,
            },
            &state,
            clients,
            &mut counters,
            &mut out,
        );
        if let Answer::Reply { len, .. } = answer {
            assert_ne!(port, 0, "an answer to port 0 (the kernel refuses it)");
            assert!(len <= bytes.len(), "answer longer than the request");
            replies.push(Reply {
                data: out,
                len,
                request_len: bytes.len(),
                port,
            });
        }
    }
    // What is left says which answers the kernel refuses and how many it takes a call.
    let refused_by_kernel = |k: usize| rest.get(k).is_some_and(|b| b & 1 == 1);
    let most = rest
        .first()
        .map_or(64, |b| usize::from(b >> 1).clamp(1, 64));
    let indices: Vec<usize> = (0..replies.len()).collect();
    let mut ids = [0usize; 64];
    let seen = RefCell::new(Vec::new());
    let refused = send_all(
        &indices,
        &mut ids,
        |batch, ids| {
            let room = batch.len().min(most).min(ids.len());
            let k = batch[..room]
                .iter()
                .position(|&i| refused_by_kernel(i))
                .unwrap_or(room);
            if k == 0 {
                return Err("refused");
            }
            ids[..k].copy_from_slice(&batch[..k]);
            Ok(k)
        },
        |k, id| {
            assert_eq!(*id, k, "the id written for the datagram sent");
            seen.borrow_mut().push((k, true));
        },
        |k, _| seen.borrow_mut().push((k, false)),
    );
    let seen = seen.into_inner();
    assert_eq!(
        seen.iter().map(|s| s.0).collect::<Vec<_>>(),
        indices,
        "each answer told of once, in order"
    );
    assert_eq!(
        refused,
        (0..replies.len()).filter(|&k| refused_by_kernel(k)).count()
    );
    for (k, delivered) in seen {
        assert_eq!(delivered, !refused_by_kernel(k), "answer {k}");
        if delivered {
            let r = &replies[k];
            assert!(r.len <= r.request_len && r.port != 0);
            let h = NtpHeader::parse_bytes(&r.data[..r.len]).expect("our answer parses");
            assert_eq!(h.mode, AssociationMode::Server);
        }
    }
});
