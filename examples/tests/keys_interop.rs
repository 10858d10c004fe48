//! Symmetric keys (RFC 5905 MACs, RFC 8573 AES-CMAC) against chronyd 4.3 on loopback, both
//! ways: our client daemon polling chronyd with a key from a chrony-format keys file,
//! and chronyd (`server ... key N`) polling our server with the same file. Peers run
//! without CAP_SYS_TIME (-x); our daemon observe-only.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{chronyc, chronyd, free_tcp_port, free_udp_port, scratch, wait_for};
use tempora_examples::ntp_client::ClientStatus;
use tempora_examples::ntp_server::{NtpServer, ServerConfig, TimeSource};

/// Keys as chrony writes them: AES-128-CMAC (RFC 8573), SHA-1 and an ASCII MD5 key.
const KEYS: &str = "1 AES128 HEX:8A3E0C1D2B4F5A6978E1D2C3B4A59687\n\
                    2 SHA1 HEX:A6CFC50C9C93AB6E5A19754C246242FC5471BCDF\n\
                    3 MD5 tempora-test\n";

/// Our client with three keyed sources on chronyd's port: key 1 and key 2, which
/// chronyd has, and, against our own keyless server, key 3, which gets crypto-NAKs and is
/// never used.
#[test]
fn our_client_authenticates_to_chronyd_with_symmetric_keys() {
    let dir = scratch("keys-client");
    let keys = dir.join("chrony.keys");
    std::fs::write(&keys, KEYS).unwrap();
    let (a, b) = (free_udp_port(), free_udp_port());
    let conf = |port: u16| {
        format!(
            "port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.0/8\nlocal stratum 1\nkeyfile {}\n",
            keys.display()
        )
    };
    let Some(_one) = chronyd("keys-chronyd-a", &conf(a), None) else {
        return;
    };
    let Some(_two) = chronyd("keys-chronyd-b", &conf(b), None) else {
        return;
    };
    let keyless = NtpServer::start(&ServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        threads: 1,
        source: TimeSource::Local { stratum: 1 },
        ..ServerConfig::default()
    })
    .unwrap();
    let status_port = free_tcp_port();
    let config = dir.join("client.toml");
    std::fs::write(
        &config,
        format!(
            "min_poll = 0\nmax_poll = 0\nkeys_file = \"{}\"\nstatus_listen = \"127.0.0.1:{status_port}\"\n\
             [[server]]\naddress = \"127.0.0.1:{a}\"\nkey = 1\n\
             [[server]]\naddress = \"127.0.0.1:{b}\"\nkey = 2\n\
             [[server]]\naddress = \"{}\"\nkey = 3\n",
            keys.display(),
            keyless.local_addrs()[0]
        ),
    )
    .unwrap();
    let _client = common::observing_client(env!("CARGO_BIN_EXE_ntp-client"), &config);
    let address = format!("127.0.0.1:{status_port}").parse().unwrap();
    let status = wait_for(Duration::from_secs(30), || {
        let body = tempora_examples::http::get(address, "/status").ok()?;
        let s: ClientStatus = serde_json::from_str(&body).ok()?;
        let keyed = s.sources.iter().filter(|r| r.reach == 0o377).count();
        (s.tracking.synchronised && keyed == 2).then_some(s)
    })
    .expect("both keyed chronyd sources at reach 377 within 30 s");
    let table = tempora_examples::ntp_client::render_status(&status);
    eprintln!("{table}");
    assert!(
        table.contains("key 1") && table.contains("key 2"),
        "{table}"
    );
    let refused = &status.sources[2];
    assert_eq!(refused.reach, 0, "crypto-NAKs are no answers: {table}");
    assert!(!matches!(refused.mark, '*' | '+'), "{table}");
    assert_eq!(keyless.counters().crypto_naks, keyless.counters().responses);
    assert!(
        keyless.counters().crypto_naks >= 3,
        "{:?}",
        keyless.counters()
    );
}

/// chronyd polling our server with key 1 (AES-128-CMAC) of the same file: reach 377,
/// every answer MAC'd with its key (chronyc authdata: mode SK, key 1, AES-128-CMAC).
#[test]
fn chronyd_authenticates_to_our_server_with_a_symmetric_key() {
    let dir = scratch("keys-server");
    let keys = dir.join("chrony.keys");
    std::fs::write(&keys, KEYS).unwrap();
    let server = NtpServer::start(&ServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        threads: 1,
        source: TimeSource::Local { stratum: 1 },
        keys_file: Some(keys.to_string_lossy().into_owned()),
        ..ServerConfig::default()
    })
    .unwrap();
    let port = server.local_addrs()[0].port();
    let Some(client) = chronyd(
        "keys-chronyd-client",
        &format!(
            "server 127.0.0.1 port {port} key 1 iburst minpoll 0 maxpoll 0\nkeyfile {}\nport 0\n",
            keys.display()
        ),
        None,
    ) else {
        return;
    };
    let sources = wait_for(Duration::from_secs(30), || {
        let s = chronyc(&client, &["-n", "sources"])?;
        s.lines()
            .any(|l| l.starts_with("^*") && l.contains("377"))
            .then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "chronyd never reached 377 with key 1: {:?}",
            chronyc(&client, &["-n", "sources"])
        )
    });
    let auth = chronyc(&client, &["-n", "authdata"]).unwrap();
    eprintln!("{sources}\n{auth}");
    let row: Vec<&str> = auth
        .lines()
        .find(|l| l.starts_with("127.0.0.1"))
        .unwrap()
        .split_whitespace()
        .collect();
    // Mode SK (symmetric key), key 1, type 13 (AES-128-CMAC), 128 bits.
    assert_eq!(
        (row[1], row[2], row[3], row[4]),
        ("SK", "1", "13", "128"),
        "{auth}"
    );
    let c = server.counters();
    assert!(c.mac_responses >= 8, "{c:?}");
    assert_eq!(c.crypto_naks, 0, "{c:?}");
}
