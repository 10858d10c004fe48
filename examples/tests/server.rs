//! The NTP server in-process (bound to 127.0.0.1:0) and against real clients: chronyd
//! (`-Q` one-shot and a running `-x` client), ntpsec's ntpdig in a test-made network
//! namespace (it speaks only to port 123). Real peers run without CAP_SYS_TIME.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Netns, chronyc, chronyd, peer, wait_for};
use tempora_examples::ntp_client::UpstreamConfig;
use tempora_examples::ntp_server::{
    AccessConfig, AccessRuleConfig, NtpServer, ServerConfig, TimeSource,
};
use tempora_ntp::server::{AccessAction, RateLimit};
use tempora_ntp_proto::{
    AssociationMode, KissCode, LeapIndicator, NtpHeader, NtpTimestamp, ReferenceId, Stratum,
    UnixTime, Version, client_request,
};
use tempora_sys_clock::{ClockState, StatusFlags, SystemClock};

fn config(source: TimeSource) -> ServerConfig {
    ServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        threads: 1,
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        source,
        ..ServerConfig::default()
    }
}

fn now_ntp() -> NtpTimestamp {
    NtpTimestamp::from_unix(UnixTime::from_nanos(
        SystemClock::new().now_realtime().unwrap(),
    ))
}

fn client(bind: &str) -> UdpSocket {
    let s = UdpSocket::bind(bind).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s
}

fn exchange(socket: &UdpSocket, server: SocketAddr, request: &[u8]) -> Option<Vec<u8>> {
    socket.send_to(request, server).unwrap();
    let mut buf = [0u8; 1024];
    match socket.recv_from(&mut buf) {
        Ok((n, from)) if from == server => Some(buf[..n].to_vec()),
        _ => None,
    }
}

fn seconds_between(a: NtpTimestamp, b: NtpTimestamp) -> f64 {
    (b.to_bits().wrapping_sub(a.to_bits()) as i64) as f64 / 4_294_967_296.0
}

#[test]
fn local_source_answers_every_field_for_v4_and_v3() {
    let server = NtpServer::start(&config(TimeSource::Local { stratum: 3 })).unwrap();
    let addr = server.local_addrs()[0];
    let socket = client("127.0.0.1:0");
    for version in [Version::V4, Version::V3] {
        let mut req = client_request(version, 0x0123_4567_89AB_CDEF);
        req.poll = tempora_ntp_proto::Log2Seconds(5);
        let before = now_ntp();
        let bytes = exchange(&socket, addr, &req.to_bytes()).expect("an answer");
        let after = now_ntp();
        assert_eq!(bytes.len(), 48);
        let h = NtpHeader::parse_bytes(&bytes).unwrap();
        assert_eq!(h.version, version);
        assert_eq!(h.mode, AssociationMode::Server);
        assert_eq!(h.leap, LeapIndicator::NoWarning);
        assert_eq!(h.stratum, Stratum(3));
        assert_eq!(h.poll, req.poll);
        assert_eq!(
            h.reference_id,
            ReferenceId::from_ipv4("127.127.1.1".parse().unwrap())
        );
        assert_eq!(h.root_delay.to_seconds_f64(), 0.0);
        assert_eq!(h.origin_timestamp, req.transmit_timestamp);
        assert!(seconds_between(before, h.receive_timestamp) >= -1e-6);
        assert!(seconds_between(h.receive_timestamp, h.transmit_timestamp) >= 0.0);
        assert!(seconds_between(h.transmit_timestamp, after) >= -1e-6);
        assert!(seconds_between(h.reference_timestamp, after) < 2.0);
        assert!(h.precision.0 <= -20);
    }
    // The serving thread adds its counts in after the batch is sent.
    let c = wait_for(Duration::from_secs(2), || {
        let c = server.counters();
        (c.responses == 2).then_some(c)
    })
    .expect("both answers counted");
    assert_eq!((c.requests_by_version[3], c.requests_by_version[4]), (1, 1));
}

#[test]
fn kernel_source_serves_what_adjtimex_says() {
    let server = NtpServer::start(&config(TimeSource::Kernel {
        stratum: 1,
        reference_id: "PTP".into(),
    }))
    .unwrap();
    let socket = client("127.0.0.1:0");
    let h = NtpHeader::parse_bytes(
        &exchange(
            &socket,
            server.local_addrs()[0],
            &client_request(Version::V4, 5).to_bytes(),
        )
        .unwrap(),
    )
    .unwrap();
    let k = SystemClock::new().state().unwrap();
    let synced = !k.status.contains(StatusFlags::UNSYNC) && k.state != ClockState::Error;
    if synced {
        assert_eq!(h.stratum, Stratum(1));
        assert_ne!(h.leap, LeapIndicator::Unsynchronized);
        assert_eq!(h.reference_id, ReferenceId::from_name(b"PTP").unwrap());
    } else {
        assert_eq!(h.stratum, Stratum(16), "kernel unsynchronised: stratum 16");
        assert_eq!(h.leap, LeapIndicator::Unsynchronized);
    }
}

#[test]
fn upstream_source_makes_a_boundary_server() {
    let top = NtpServer::start(&config(TimeSource::Local { stratum: 2 })).unwrap();
    let mut boundary_config = config(TimeSource::Upstream(Box::new(UpstreamConfig {
        servers: vec![top.local_addrs()[0].to_string()],
        min_poll: -2,
        max_poll: -2,
        ..UpstreamConfig::default()
    })));
    boundary_config.observe = true;
    let boundary = NtpServer::start(&boundary_config).unwrap();
    let socket = client("127.0.0.1:0");
    let h = wait_for(Duration::from_secs(30), || {
        let h = NtpHeader::parse_bytes(&exchange(
            &socket,
            boundary.local_addrs()[0],
            &client_request(Version::V4, 77).to_bytes(),
        )?)
        .ok()?;
        (h.stratum == Stratum(3)).then_some(h)
    })
    .expect("the boundary server synchronised to its upstream");
    assert_eq!(h.leap, LeapIndicator::NoWarning);
    assert_eq!(
        h.reference_id,
        ReferenceId::from_ipv4("127.0.0.1".parse().unwrap()),
        "refid = the system peer's address"
    );
    let rd = h.root_dispersion.to_seconds_f64();
    assert!(rd < 0.01, "root dispersion {rd}");
    assert!(h.root_delay.to_seconds_f64() < 0.01);
    let status = boundary.status_json();
    assert_eq!(status["upstream"]["sources"][0]["mark"], "*");
    assert_eq!(status["upstream"]["observe_only"], true);
}

#[test]
fn access_list_and_rate_limit_over_the_wire() {
    let mut c = config(TimeSource::Local { stratum: 5 });
    c.access = AccessConfig {
        default: Some(AccessAction::Ignore),
        rule: vec![
            AccessRuleConfig {
                action: AccessAction::Deny,
                networks: vec!["127.0.0.2".into()],
            },
            AccessRuleConfig {
                action: AccessAction::Ignore,
                networks: vec!["127.0.0.3/32".into()],
            },
            AccessRuleConfig {
                action: AccessAction::Allow,
                networks: vec!["127.0.0.0/8".into(), "::1/128".into()],
            },
        ],
    };
    c.rate_limit = RateLimit {
        enabled: true,
        interval: 4,
        burst: 4,
        leak: 16,
        table_size: 64,
    };
    let server = NtpServer::start(&c).unwrap();
    let addr = server.local_addrs()[0];
    let req = client_request(Version::V4, 42).to_bytes();
    // DENY kiss.
    let denied = exchange(&client("127.0.0.2:0"), addr, &req).expect("a DENY kiss");
    let h = NtpHeader::parse_bytes(&denied).unwrap();
    assert_eq!(h.stratum, Stratum::KISS_OF_DEATH);
    assert_eq!(h.reference_id, ReferenceId::from_kiss_code(KissCode::Deny));
    // Ignored.
    assert!(exchange(&client("127.0.0.3:0"), addr, &req).is_none());
    // A burst from one address: four answers, one RATE kiss, then silence.
    let burst = client("127.0.0.4:0");
    let mut answers = 0;
    let mut rate_kisses = 0;
    for i in 0..12u64 {
        let r = client_request(Version::V4, 1000 + i).to_bytes();
        if let Some(bytes) = exchange(&burst, addr, &r) {
            let h = NtpHeader::parse_bytes(&bytes).unwrap();
            if h.stratum == Stratum::KISS_OF_DEATH {
                assert_eq!(h.reference_id, ReferenceId::from_kiss_code(KissCode::Rate));
                rate_kisses += 1;
            } else {
                answers += 1;
            }
        }
    }
    assert_eq!((answers, rate_kisses), (4, 1));
    // Another address is unaffected.
    let other = exchange(&client("127.0.0.5:0"), addr, &req).expect("answered");
    assert_eq!(NtpHeader::parse_bytes(&other).unwrap().stratum, Stratum(5));
    let metrics = tempora_examples::http::get(server.metrics_addr().unwrap(), "/metrics").unwrap();
    assert!(metrics.contains("tempora_ntp_server_kod_sent_total{code=\"RATE\"} 1"));
    assert!(metrics.contains("tempora_ntp_server_kod_sent_total{code=\"DENY\"} 1"));
    assert!(metrics.contains("tempora_ntp_server_drops_total{reason=\"denied\"} 1"));
    assert!(
        metrics.contains("tempora_ntp_server_rate_limited_total 8"),
        "{metrics}"
    );
}

#[test]
fn malformed_input_gets_no_answer_no_panic_and_is_counted() {
    let server = NtpServer::start(&config(TimeSource::Local { stratum: 4 })).unwrap();
    let addr = server.local_addrs()[0];
    let socket = client("127.0.0.1:0");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let good = client_request(Version::V4, 9).to_bytes();
    let with_mode = |first: u8| {
        let mut b = good;
        b[0] = first;
        b
    };
    let mut bad_field = good.to_vec();
    bad_field.extend_from_slice(&[0x02, 0x04, 0x00, 0x06, 1, 2]);
    let garbage: Vec<u8> = (0..1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        good[..47].to_vec(),
        with_mode((4 << 3) | 6).to_vec(),
        with_mode((2 << 3) | 7).to_vec(),
        with_mode((1 << 3) | 3).to_vec(),
        with_mode((7 << 3) | 3).to_vec(),
        with_mode((4 << 3) | 4).to_vec(),
        bad_field,
        garbage,
        vec![0xFF; 4000],
    ];
    for bytes in &cases {
        assert!(
            exchange(&socket, addr, bytes).is_none(),
            "answered {} bytes",
            bytes.len()
        );
    }
    // Still serving.
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    assert!(exchange(&socket, addr, &good).is_some());
    // The serving thread adds its counts in after the batch is sent.
    let c = wait_for(Duration::from_secs(2), || {
        let c = server.counters();
        (c.responses == 1).then_some(c)
    })
    .expect("the answer counted");
    use tempora_ntp::server::DropReason::*;
    assert_eq!(c.dropped(Mode6), 1);
    assert_eq!(c.dropped(Mode7), 1);
    // Versions 1 and 7, and the garbage (its first byte says version 0).
    assert_eq!(c.dropped(BadVersion), 3);
    assert_eq!(c.dropped(NotClient), 1);
    // Empty, 47 bytes, the bad extension field, 4000 bytes (cut by the buffer).
    assert_eq!(c.dropped(Malformed), 4, "{c:?}");
    assert_eq!(c.responses, 1);
    let metrics = tempora_examples::http::get(server.metrics_addr().unwrap(), "/metrics").unwrap();
    assert!(metrics.contains("tempora_ntp_server_drops_total{reason=\"mode7\"} 1"));
}

#[test]
fn interleaved_mode_gives_the_kernel_transmit_timestamp_of_the_previous_answer() {
    let server = NtpServer::start(&config(TimeSource::Local { stratum: 2 })).unwrap();
    let addr = server.local_addrs()[0];
    let socket = client("127.0.0.1:0");
    // Basic request with a non-zero origin (a client that may go interleaved).
    let mut first = client_request(Version::V4, 0xAAAA);
    first.origin_timestamp = NtpTimestamp::from_bits(1);
    let r1 = NtpHeader::parse_bytes(&exchange(&socket, addr, &first.to_bytes()).unwrap()).unwrap();
    let mut interleaved_seen = false;
    let mut previous = r1;
    for round in 0..5u64 {
        std::thread::sleep(Duration::from_millis(20));
        let mut req = client_request(Version::V4, 0xBBBB + round);
        req.origin_timestamp = previous.receive_timestamp;
        req.receive_timestamp = NtpTimestamp::from_bits(0xCC00 + round);
        let r = NtpHeader::parse_bytes(&exchange(&socket, addr, &req.to_bytes()).unwrap()).unwrap();
        if r.origin_timestamp == req.receive_timestamp {
            // Interleaved: the transmit is when the previous answer left, after its
            // receive timestamp and well before this request arrived.
            let after_rx = seconds_between(previous.receive_timestamp, r.transmit_timestamp);
            let before_now = seconds_between(r.transmit_timestamp, r.receive_timestamp);
            assert!(after_rx > 0.0 && after_rx < 0.01, "{after_rx}");
            assert!(before_now > 0.015, "{before_now}");
            interleaved_seen = true;
        } else {
            assert_eq!(r.origin_timestamp, req.transmit_timestamp, "basic answer");
        }
        previous = r;
    }
    assert!(interleaved_seen);
    assert!(server.counters().interleaved >= 3);
}

#[test]
fn chronyd_one_shot_query_agrees_within_a_millisecond() {
    let server = NtpServer::start(&config(TimeSource::Local { stratum: 1 })).unwrap();
    let port = server.local_addrs()[0].port();
    let Some(binary) = peer("usr/sbin/chronyd") else {
        eprintln!("skipped: no chronyd under target/peers");
        return;
    };
    let dir = common::scratch("chronyd-q");
    let out = Command::new("setpriv")
        .args(["--bounding-set=-sys_time", "--"])
        .arg(binary)
        .args(["-Q", "-t", "10", "-u", "root"])
        .arg(format!("pidfile {}/p", dir.display()))
        .arg(format!("server 127.0.0.1 port {port} iburst maxsamples 4"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let wrong_by = text
        .lines()
        .find_map(|l| l.split("System clock wrong by ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("chronyd -Q said: {text}"));
    assert!(wrong_by.abs() < 1e-3, "chronyd -Q: {wrong_by} s");
}

#[test]
fn chronyd_client_reaches_377_with_offset_below_a_millisecond() {
    let server = NtpServer::start(&config(TimeSource::Local { stratum: 1 })).unwrap();
    let port = server.local_addrs()[0].port();
    let Some(chrony) = chronyd(
        "chronyd-client",
        &format!(
            "server 127.0.0.1 port {port} minpoll -4 maxpoll -4 iburst xleave\nport 0\ncmdport 0"
        ),
        None,
    ) else {
        return;
    };
    let line = wait_for(Duration::from_secs(30), || {
        let out = chronyc(&chrony, &["-n", "sources"])?;
        out.lines()
            .find(|l| l.starts_with('^') && l.contains("127.0.0.1") && l.contains(" 377 "))
            .map(str::to_string)
    })
    .unwrap_or_else(|| {
        panic!(
            "chronyc sources never showed reach 377: {:?}",
            chronyc(&chrony, &["-n", "sources"])
        )
    });
    // ^* 127.0.0.1   1  -4   377     0   -2us[  -2us] +/-   14us
    let offset_text = line
        .split(']')
        .next()
        .unwrap()
        .rsplit('[')
        .next()
        .unwrap()
        .trim();
    let offset = parse_chrony_duration(offset_text).unwrap_or_else(|| panic!("{line}"));
    assert!(offset.abs() < 1e-3, "{line}");
    assert!(
        server.counters().interleaved > 0,
        "chronyd xleave got interleaved answers"
    );
}

/// Parses chronyc's "-12us", "+3ms", "45ns", "1.2s".
fn parse_chrony_duration(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("ns") {
        (n, 1e-9)
    } else if let Some(n) = text.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else {
        return None;
    };
    number.trim().parse::<f64>().ok().map(|v| v * scale)
}

#[test]
fn ntpdig_in_a_network_namespace_on_port_123() {
    let Some(ntpdig) = peer("usr/bin/ntpdig") else {
        eprintln!("skipped: no ntpdig under target/peers");
        return;
    };
    let Some(ns) = Netns::new("tempora-ntpdig") else {
        return;
    };
    let mut server = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(env!("CARGO_BIN_EXE_ntp-server"))
        .args([
            "--listen",
            "127.0.0.1:123",
            "--threads",
            "1",
            "--local-stratum",
            "2",
            "--log-level",
            "warn",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pythonpath = common::peers_root().join("usr/lib/python3/dist-packages");
    let libpath = common::peers_root().join("usr/lib/x86_64-linux-gnu");
    let result = wait_for(Duration::from_secs(10), || {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                "setpriv",
                "--bounding-set=-sys_time",
                "--",
            ])
            .arg("/usr/bin/python3")
            .arg(&ntpdig)
            .args(["-j", "-t", "1", "127.0.0.1"])
            .env("PYTHONPATH", &pythonpath)
            .env("LD_LIBRARY_PATH", &libpath)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let v: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
        v.get("offset").is_some().then_some(v)
    });
    let _ = server.kill();
    let _ = server.wait();
    let v = result.expect("ntpdig answered");
    let offset = v["offset"].as_f64().unwrap();
    assert!(offset.abs() < 1e-3, "{v}");
    assert_eq!(v["stratum"], 2);
}
