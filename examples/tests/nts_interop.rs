//! NTS (RFC 8915) on loopback, with a certificate from a CA the test makes with openssl:
//! our client against chronyd 4.3's NTS server, chronyd as an NTS client of our server
//! (both without CAP_SYS_TIME, -x), our client and server together, a TLS server that
//! speaks no NTS-KE (openssl s_server with another ALPN), and hostile input to our
//! server. Both ends share this machine's clock: the true offset is 0.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Killed, Pki, chronyc, chronyd, free_tcp_port, free_udp_port, pki, scratch, wait_for};
use tempora_examples::ntp_server::{NtpServer, NtsConfig, ServerConfig, TimeSource};

fn query(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ntp-client"))
        .arg("query")
        .args(args)
        .output()
        .unwrap()
}

/// chronyd as an NTS server: NTP on `ntp_port`, NTS-KE on `ke_port`.
fn chronyd_nts(name: &str, pki: &Pki, ntp_port: u16, ke_port: u16) -> Option<common::Process> {
    let dir = scratch(&format!("{name}-dump"));
    chronyd(
        name,
        &format!(
            "port {ntp_port}\nbindaddress 127.0.0.1\nallow 127.0.0.0/8\nlocal stratum 1\n\
             ntsserverkey {}\nntsservercert {}\nntsport {ke_port}\nntsdumpdir {}\n",
            pki.key.display(),
            pki.cert.display(),
            dir.display()
        ),
        None,
    )
}

#[test]
fn our_client_authenticates_against_chronyds_nts_server() {
    let dir = scratch("nts-chronyd");
    let pki = pki(&dir);
    let (ntp_port, ke_port) = (free_udp_port(), free_tcp_port());
    let Some(_chronyd) = chronyd_nts("nts-chronyd-server", &pki, ntp_port, ke_port) else {
        return;
    };
    let host = format!("127.0.0.1:{ke_port}");
    let ca = pki.ca.to_string_lossy().into_owned();
    // chronyd needs a moment to listen: ask again, bounded, until it answers.
    let report = wait_for(Duration::from_secs(10), || {
        let out = query(&["--nts", "--ca-file", &ca, "--json", "--samples", "4", &host]);
        out.status
            .success()
            .then(|| serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap())
    })
    .expect("no authenticated estimate from chronyd's NTS server within 10 s");
    let server = &report["servers"][0];
    assert_eq!(
        server["address"],
        format!("127.0.0.1:{ntp_port}"),
        "the NTP port chronyd named in its KE answer: {report}"
    );
    assert!(
        server["nts"]
            .as_str()
            .is_some_and(|n| n.contains("AES-SIV-CMAC-256")),
        "{report}"
    );
    assert!(server["answers"].as_u64().unwrap() >= 3, "{report}");
    let offset = report["offset"].as_f64().unwrap();
    assert!(
        offset.abs() < 1e-3,
        "|offset| {offset} s against the same clock"
    );
    eprintln!("NTS against chronyd 4.3: {report}");
}

#[test]
fn a_certificate_our_roots_do_not_trust_gives_no_time() {
    let dir = scratch("nts-untrusted");
    let pki = pki(&dir);
    let (ntp_port, ke_port) = (free_udp_port(), free_tcp_port());
    let Some(_chronyd) = chronyd_nts("nts-untrusted-server", &pki, ntp_port, ke_port) else {
        return;
    };
    let host = format!("127.0.0.1:{ke_port}");
    // Wait until chronyd listens (a refused connection is another error).
    let out = wait_for(Duration::from_secs(10), || {
        let out = query(&["--nts", "--json", "--samples", "1", &host]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (!text.contains("Connection refused")).then_some(out)
    })
    .unwrap();
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["offset"].is_null(), "{report}");
    let problem = report["servers"][0]["problem"].as_str().unwrap();
    assert!(problem.contains("invalid peer certificate"), "{problem}");
}

/// openssl's TLS 1.3 server with our certificate and ALPN http/1.1 (no NTS-KE) on
/// `port`, stopped by PID when dropped.
fn tls_server_without_ntske(pki: &Pki, port: u16) -> Killed {
    Killed(
        Command::new("openssl")
            .args([
                "s_server", "-quiet", "-tls1_3", "-alpn", "http/1.1", "-accept",
            ])
            .arg(port.to_string())
            .arg("-cert")
            .arg(&pki.cert)
            .arg("-key")
            .arg(&pki.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn a_tls_server_without_ntske_alpn_is_refused() {
    let dir = scratch("nts-alpn");
    let pki = pki(&dir);
    let port = free_tcp_port();
    let _server = tls_server_without_ntske(&pki, port);
    let host = format!("127.0.0.1:{port}");
    let ca = pki.ca.to_string_lossy().into_owned();
    let out = wait_for(Duration::from_secs(10), || {
        let out = query(&[
            "--nts",
            "--ca-file",
            &ca,
            "--json",
            "--timeout",
            "2",
            "--samples",
            "1",
            &host,
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (!text.contains("Connection refused")).then_some(out)
    })
    .unwrap();
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problem = report["servers"][0]["problem"].as_str().unwrap();
    assert!(
        problem.contains("ALPN") || problem.contains("NoApplicationProtocol"),
        "{problem}"
    );
}

/// Our server with NTS on loopback (NTP and NTS-KE on ports the kernel picks), in
/// this process.
fn our_nts_server(pki: &Pki, tweak: impl FnOnce(&mut NtsConfig)) -> NtpServer {
    let mut nts = NtsConfig {
        certificate: pki.cert.to_string_lossy().into_owned(),
        private_key: pki.key.to_string_lossy().into_owned(),
        ke_listen: vec!["127.0.0.1:0".parse().unwrap()],
        key_rotation: 86_400,
        old_keys: 7,
        key_file: None,
        ntp_server: None,
        ntp_port: None,
        max_connections: 64,
        ke_timeout: 2.0,
    };
    tweak(&mut nts);
    NtpServer::start(&ServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        threads: 1,
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        source: TimeSource::Local { stratum: 1 },
        nts: Some(nts),
        ..ServerConfig::default()
    })
    .unwrap()
}

/// chronyd 4.3 as an NTS client of our server: key exchange with our CA trusted, then
/// polling every second until reach 377, every answer authenticated (chronyc authdata:
/// mode NTS, no NAK, cookies kept), and our server counted it all.
#[test]
fn chronyd_is_an_authenticated_nts_client_of_our_server() {
    let dir = scratch("nts-ours-chronyd");
    let pki = pki(&dir);
    let server = our_nts_server(&pki, |_| {});
    let ntp = server.local_addrs()[0];
    let ke = server.ke_addrs()[0];
    let Some(client) = chronyd(
        "nts-ours-chronyd-client",
        &format!(
            "server 127.0.0.1 nts ntsport {} iburst minpoll 0 maxpoll 0\n\
             ntstrustedcerts {}\nntsdumpdir {}\nport 0\n",
            ke.port(),
            pki.ca.display(),
            dir.display()
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
            "chronyd never reached 377 on our NTS server: {:?}\n{:?}",
            chronyc(&client, &["-n", "sources"]),
            chronyc(&client, &["-n", "authdata"])
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
    // Name Mode KeyID Type KLen Last Atmp NAK Cook CLen
    assert_eq!(row[1], "NTS", "{auth}");
    assert_eq!(row[3], "15", "AES-SIV-CMAC-256: {auth}");
    assert_eq!(row[7], "0", "no NAK: {auth}");
    assert!(row[8].parse::<u32>().unwrap() >= 7, "cookies kept: {auth}");
    // The port our KE named (NTP is not on 123 here) was followed.
    assert!(
        server.counters().nts_responses >= 8,
        "{:?}",
        server.counters()
    );
    assert_eq!(server.counters().nts_naks, 0);
    let status = server.status_json();
    assert_eq!(status["nts"]["key_exchanges"]["ok"], 1, "{status}");
    assert!(ntp.port() != 123);
}

/// Our client and our server, and what a hostile sender gets: a request whose
/// authenticator was changed gets an NTS NAK and no time; a cookie from another server
/// too; malformed NTS fields nothing; every case is counted.
#[test]
fn our_client_and_server_and_tampered_requests() {
    use tempora_examples::nts::{client_roots, client_tls, key_exchange};
    use tempora_ntp::nts::{AeadAlgorithm, NtsError};
    use tempora_ntp_proto::{Version, client_request};
    let dir = scratch("nts-ours");
    let pki = pki(&dir);
    let server = our_nts_server(&pki, |_| {});
    let ke = server.ke_addrs()[0];
    let ca = pki.ca.to_string_lossy().into_owned();
    let out = query(&["--nts", "--ca-file", &ca, "--json", &ke.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["offset"].as_f64().unwrap().abs() < 1e-3, "{report}");
    assert_eq!(
        report["servers"][0]["address"],
        server.local_addrs()[0].to_string()
    );

    let tls = client_tls(client_roots(Some(&pki.ca)).unwrap()).unwrap();
    let mut assoc = key_exchange(
        &ke.to_string(),
        tls,
        &AeadAlgorithm::ALL,
        Duration::from_secs(5),
    )
    .unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let ntp = server.local_addrs()[0];
    let mut buf = [0u8; 1024];
    let mut req = [0u8; 1024];
    let header = client_request(Version::V4, 0x1234_5678);
    // Authentic.
    let n = assoc
        .client
        .write_request(&header, [1; 32], [2; 16], &mut req)
        .unwrap();
    socket.send_to(&req[..n], ntp).unwrap();
    let (m, _) = socket.recv_from(&mut buf).unwrap();
    assert!(m <= n, "no amplification");
    assoc.client.read_response(&buf[..m]).unwrap();
    // The authenticator's tag changed in flight.
    let n = assoc
        .client
        .write_request(&header, [3; 32], [4; 16], &mut req)
        .unwrap();
    req[n - 1] ^= 0x55;
    socket.send_to(&req[..n], ntp).unwrap();
    let (m, _) = socket.recv_from(&mut buf).unwrap();
    assert_eq!(assoc.client.read_response(&buf[..m]), Err(NtsError::Nak));
    // NTS fields without a cookie: nothing at all.
    let mut b = tempora_ntp_proto::PacketBuilder::new(&mut req, &header).unwrap();
    tempora_ntp_proto::NtsUniqueIdentifier(&[9; 32])
        .write(&mut b)
        .unwrap();
    let n = b.finish().unwrap();
    socket.send_to(&req[..n], ntp).unwrap();
    assert!(
        socket.recv_from(&mut buf).is_err(),
        "an answer to a request without a cookie"
    );
    let c = server.counters();
    assert_eq!(c.nts_naks, 1, "{c:?}");
    assert!(c.nts_responses >= 5, "{c:?}");
    assert_eq!(
        c.dropped(tempora_ntp::server::DropReason::NtsInvalid),
        1,
        "{c:?}"
    );
}

/// Bad key exchanges: a TCP client that never speaks is cut off at the timeout; a
/// critical record of an unknown type gets Error "Unrecognized Critical Record"; an
/// oversized record gets Error "Bad Request"; the server keeps serving and counts each.
#[test]
fn bad_key_exchanges_are_refused_with_errors_and_counted() {
    use std::io::{Read, Write};
    use tempora_examples::nts::{client_roots, client_tls};
    use tempora_ntp::nts::{AeadAlgorithm, KeClient, NtsError};
    use tempora_ntp_proto::nts_ke::{KeErrorCode, KeRecord, Record, U16List};
    let dir = scratch("nts-bad-ke");
    let pki = pki(&dir);
    let server = our_nts_server(&pki, |n| n.ke_timeout = 1.0);
    let ke = server.ke_addrs()[0];
    // Silent: the server closes it within its 1 s.
    let mut silent = std::net::TcpStream::connect(ke).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let start = std::time::Instant::now();
    let mut one = [0u8; 1];
    let closed = matches!(silent.read(&mut one), Ok(0) | Err(_));
    assert!(
        closed && start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );

    let tls = client_tls(client_roots(Some(&pki.ca)).unwrap()).unwrap();
    let exchange = |records: &[u8]| {
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(tls.clone(), name).unwrap();
        let sock = std::net::TcpStream::connect(ke).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut s = rustls::StreamOwned::new(conn, sock);
        s.write_all(records).unwrap();
        s.flush().unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        KeClient::new(&AeadAlgorithm::ALL).handle_bytes(&answer)
    };
    let write = |records: &[Record<'_>]| {
        let mut out = vec![0u8; 70_000];
        let mut at = 0;
        for r in records {
            at += r.emit(&mut out[at..]).unwrap();
        }
        out.truncate(at);
        out
    };
    let ntp = Record::critical(KeRecord::NextProtocol(U16List::Values(&[0])));
    let eom = Record::critical(KeRecord::EndOfMessage);
    let odd = Record::critical(KeRecord::Unknown {
        record_type: 0x1234,
        body: &[],
    });
    assert_eq!(
        exchange(&write(&[ntp, odd, eom])),
        Err(NtsError::KeRefused {
            code: KeErrorCode::UNRECOGNIZED_CRITICAL_RECORD
        })
    );
    let huge = vec![0u8; 20_000];
    let big = Record::new(KeRecord::NewCookie(&huge));
    assert_eq!(
        exchange(&write(&[ntp, big, eom])),
        Err(NtsError::KeRefused {
            code: KeErrorCode::BAD_REQUEST
        })
    );
    // No algorithm in common: empty negotiation records, no cookies.
    let gcm = Record::critical(KeRecord::AeadAlgorithm(U16List::Values(&[30])));
    assert_eq!(
        exchange(&write(&[ntp, gcm, eom])),
        Err(NtsError::KeNoAlgorithm)
    );
    // Each connection's thread counts once it has closed: wait for the last, bounded.
    let status = wait_for(Duration::from_secs(3), || {
        let s = server.status_json();
        (s["nts"]["key_exchanges"]["no_agreement"] == 1).then_some(s)
    })
    .unwrap_or_else(|| server.status_json());
    let ke_counts = &status["nts"]["key_exchanges"];
    assert_eq!(ke_counts["timeout"], 1, "{status}");
    assert_eq!(ke_counts["bad_request"], 2, "{status}");
    assert_eq!(ke_counts["no_agreement"], 1, "{status}");
    // And it still serves.
    let ca = pki.ca.to_string_lossy().into_owned();
    assert!(
        query(&["--nts", "--ca-file", &ca, &ke.to_string()])
            .status
            .success()
    );
}

/// `ntp-client run` (observe-only, without CAP_SYS_TIME) with three NTS sources:
/// chronyd's NTS server, ours, and a TLS server that is no NTS-KE server. The first two
/// authenticate and are used; the third never gets cookies, says why in `status`, and is
/// never selected.
#[test]
fn the_client_daemon_uses_only_authenticated_nts_sources() {
    let dir = scratch("nts-daemon");
    let pki = pki(&dir);
    let (ntp_port, ke_port) = (free_udp_port(), free_tcp_port());
    let Some(_chronyd) = chronyd_nts("nts-daemon-chronyd", &pki, ntp_port, ke_port) else {
        return;
    };
    let ours = our_nts_server(&pki, |_| {});
    let bogus_port = free_tcp_port();
    let _bogus = tls_server_without_ntske(&pki, bogus_port);
    let status_port = free_tcp_port();
    let config = dir.join("client.toml");
    std::fs::write(
        &config,
        format!(
            "min_poll = 0\nmax_poll = 0\nnts_ca_file = \"{}\"\nstatus_listen = \"127.0.0.1:{status_port}\"\n\
             [[server]]\naddress = \"127.0.0.1:{ke_port}\"\nnts = true\n\
             [[server]]\naddress = \"{}\"\nnts = true\n\
             [[server]]\naddress = \"127.0.0.1:{bogus_port}\"\nnts = true\n",
            pki.ca.display(),
            ours.ke_addrs()[0]
        ),
    )
    .unwrap();
    let _client = common::observing_client(env!("CARGO_BIN_EXE_ntp-client"), &config);
    let address = format!("127.0.0.1:{status_port}").parse().unwrap();
    let status = wait_for(Duration::from_secs(30), || {
        let body = tempora_examples::http::get(address, "/status").ok()?;
        let s: tempora_examples::ntp_client::ClientStatus = serde_json::from_str(&body).ok()?;
        let authenticated = s
            .sources
            .iter()
            .filter(|r| r.reach == 0o377 && r.nts.as_ref().is_some_and(|n| n.cookies >= 7))
            .count();
        (s.tracking.synchronised && authenticated == 2).then_some(s)
    })
    .expect("two authenticated NTS sources at reach 377 within 30 s");
    let table = tempora_examples::ntp_client::render_status(&status);
    eprintln!("{table}");
    let bogus = &status.sources[2];
    let nts = bogus.nts.as_ref().unwrap();
    assert_eq!(nts.cookies, 0, "{table}");
    assert!(
        nts.last_error
            .as_deref()
            .is_some_and(|e| e.contains("ALPN") || e.contains("NoApplicationProtocol")),
        "{table}"
    );
    assert!(!matches!(bogus.mark, '*' | '+'), "{table}");
    assert!(
        table.contains("NTS, 8 cookies") || table.contains("NTS, 7 cookies"),
        "{table}"
    );
    assert!(status.tracking.system_offset.abs() < 1e-3, "{table}");
}
