//! Hostile input over the wire (issue 16): each defect a review found, sent to the real
//! daemon's sockets on loopback as an attacker would send it, with the daemon's own
//! counters and the honest clients' answers as the verdict. The PTP cases run against
//! the `ptp-slave` binary in test-made namespaces (`ptp_interop.rs`, where ptp4l is).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use tempora_examples::ntp_server::{
    AccessConfig, AccessRuleConfig, NtpServer, ServerConfig, TimeSource,
};
use tempora_ntp::server::AccessAction;
use tempora_ntp_proto::{KissCode, NtpHeader, ReferenceId, Stratum, Version, client_request};

fn server(access: AccessConfig) -> NtpServer {
    NtpServer::start(&ServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        threads: 1,
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        source: TimeSource::Local { stratum: 5 },
        access,
        ..ServerConfig::default()
    })
    .unwrap()
}

fn metric(server: &NtpServer, series: &str) -> Option<f64> {
    let text = tempora_examples::http::get(server.metrics_addr().unwrap(), "/metrics").ok()?;
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Sends `payload` to `to` from 127.0.0.1 with UDP source port `port` through a raw
/// socket (the kernel will not bind port 0, so an ordinary socket cannot).
fn send_raw_udp(port: u16, to: SocketAddrV4, payload: &[u8]) {
    let mut datagram = Vec::with_capacity(8 + payload.len());
    datagram.extend_from_slice(&port.to_be_bytes());
    datagram.extend_from_slice(&to.port().to_be_bytes());
    datagram.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    datagram.extend_from_slice(&[0, 0]); // no checksum (allowed over IPv4)
    datagram.extend_from_slice(payload);
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::RAW,
        Some(socket2::Protocol::UDP),
    )
    .expect("a raw socket (the tests run as root, as CI does)");
    let sent = socket
        .send_to(
            &datagram,
            &SocketAddr::V4(SocketAddrV4::new(*to.ip(), 0)).into(),
        )
        .unwrap();
    assert_eq!(sent, datagram.len());
}

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => panic!("an IPv4 listener"),
    }
}

/// Defect 1: one request from UDP source port 0 among honest ones. The kernel refuses to
/// send its answer (EINVAL); before the fix the send loop then dropped every later
/// answer of the batch. Now it is dropped unanswered and nobody else pays.
#[test]
fn a_request_from_port_zero_costs_no_other_client_its_answer() {
    let server = server(AccessConfig::default());
    let addr = v4(server.local_addrs()[0]);
    let request = client_request(Version::V4, 7).to_bytes();
    let clients: Vec<UdpSocket> = (0..16)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            s
        })
        .collect();
    // Ten rounds, each: the port-0 datagram first, then the honest ones at once, so
    // they share the server's receive batch with it.
    let mut answered = 0;
    for round in 0..10u64 {
        send_raw_udp(0, addr, &request);
        for (i, c) in clients.iter().enumerate() {
            let r = client_request(Version::V4, round * 100 + i as u64 + 1).to_bytes();
            c.send_to(&r, addr).unwrap();
        }
        for c in &clients {
            let mut buf = [0u8; 128];
            if let Ok((n, _)) = c.recv_from(&mut buf) {
                let h = NtpHeader::parse_bytes(&buf[..n]).unwrap();
                assert_eq!(h.stratum, Stratum(5));
                answered += 1;
            }
        }
    }
    assert_eq!(answered, 10 * clients.len(), "every honest client answered");
    assert_eq!(
        metric(
            &server,
            "tempora_ntp_server_drops_total{reason=\"source_port_zero\"}"
        ),
        Some(10.0)
    );
}

/// Defect 7: requests forged from a denied address (a victim the attacker wants to
/// flood). Before the fix every one got a DENY kiss; now at most one per interval.
#[test]
fn a_denied_address_gets_no_kiss_for_every_packet() {
    let server = server(AccessConfig {
        default: Some(AccessAction::Allow),
        rule: vec![AccessRuleConfig {
            action: AccessAction::Deny,
            networks: vec!["127.0.0.66".into()],
        }],
    });
    let addr = server.local_addrs()[0];
    let victim = UdpSocket::bind("127.0.0.66:0").unwrap();
    victim
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    for i in 0..100u64 {
        victim
            .send_to(&client_request(Version::V4, i + 1).to_bytes(), addr)
            .unwrap();
    }
    let mut kisses = 0;
    let mut buf = [0u8; 128];
    while let Ok((n, _)) = victim.recv_from(&mut buf) {
        let h = NtpHeader::parse_bytes(&buf[..n]).unwrap();
        assert_eq!(h.reference_id, ReferenceId::from_kiss_code(KissCode::Deny));
        kisses += 1;
    }
    assert!(kisses <= 2, "{kisses} DENY kisses for 100 packets");
    assert!(kisses >= 1, "a denied client is told once");
}

/// Defect 6: a client trickling its request a byte at a time and a handful of silent
/// connections; a scrape beside them is served at once, and the trickler is cut off at
/// the deadline.
#[test]
fn slow_and_silent_metrics_clients_do_not_hold_a_scrape() {
    let server = server(AccessConfig::default());
    let metrics = server.metrics_addr().unwrap();
    let _silent: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(metrics).unwrap())
        .collect();
    let mut slow = TcpStream::connect(metrics).unwrap();
    let trickle = std::thread::spawn(move || {
        let start = Instant::now();
        for b in b"GET /metrics HTTP/1.0\r\n\r\n" {
            if slow.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let mut rest = Vec::new();
        let _ = slow.read_to_end(&mut rest);
        start.elapsed()
    });
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let text = tempora_examples::http::get(metrics, "/metrics").unwrap();
    let took = start.elapsed();
    assert!(text.contains("tempora_ntp_server_"), "{text}");
    assert!(took < Duration::from_secs(1), "scrape took {took:?}");
    let cut = trickle.join().unwrap();
    assert!(cut < Duration::from_secs(4), "the trickler held on {cut:?}");
    // Time is still served beside all that.
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    c.send_to(
        &client_request(Version::V4, 3).to_bytes(),
        server.local_addrs()[0],
    )
    .unwrap();
    assert!(c.recv_from(&mut [0u8; 128]).is_ok());
}

/// Defect 15: a rule written as an IPv4-mapped IPv6 address matches the IPv4 client it
/// names (the sockets are V6ONLY, so such a client never arrives as `::ffff:...`).
#[test]
fn an_ipv4_mapped_deny_rule_denies_the_ipv4_client() {
    let server = server(AccessConfig {
        default: Some(AccessAction::Allow),
        rule: vec![AccessRuleConfig {
            action: AccessAction::Ignore,
            networks: vec!["::ffff:127.0.0.77/128".into()],
        }],
    });
    let addr = server.local_addrs()[0];
    let ask = |ip: Ipv4Addr| {
        let s = UdpSocket::bind(SocketAddrV4::new(ip, 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        s.send_to(&client_request(Version::V4, 5).to_bytes(), addr)
            .unwrap();
        s.recv_from(&mut [0u8; 128]).is_ok()
    };
    assert!(
        !ask(Ipv4Addr::new(127, 0, 0, 77)),
        "the mapped rule applies"
    );
    assert!(ask(Ipv4Addr::new(127, 0, 0, 78)), "others are served");
}
