//! Leap seconds at the daemons (issue 20): the leap-seconds list decides what a server of
//! its own clock announces and what a client accepts, and a smearing server serves the
//! smear and never announces the leap. The lists here hold a leap second at the coming
//! midnight (with a correct hash), so that the tests need no waiting for a real one.
//! Everything is observe-only: this machine's clock and leap flag are never touched.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use sha1::{Digest, Sha1};
use tempora_clock_discipline::{LeapSmear, SmearShape};
use tempora_clock_types::Leap;
use tempora_examples::config::ConfigFile;
use tempora_examples::ntp_client::UpstreamConfig;
use tempora_examples::ntp_server::{LeapSmearConfig, NtpServer, ServerConfig, TimeSource};
use tempora_ntp_proto::{LeapIndicator, NtpHeader, UnixTime, Version, client_request};
use tempora_sys_clock::SystemClock;

const NTP_TO_UNIX: i64 = 2_208_988_800;

fn unix_now() -> f64 {
    SystemClock::new().now_realtime().unwrap() as f64 * 1e-9
}

/// A leap-seconds list of the real entries to 2017 and one more: a second inserted at
/// the coming midnight UTC.
fn list_with_leap_tonight() -> (String, i64) {
    list(Some((unix_now() as i64 / 86_400 + 1) * 86_400))
}

/// A list whose leap is 12 hours away, wherever the day is: a smear of 48 hours is then
/// a quarter done at any time the tests run (a real leap is at midnight; the smear does
/// not care).
fn list_with_leap_in_12_hours() -> (String, i64) {
    list(Some(unix_now() as i64 + 43_200))
}

/// A current list (expiring in half a year), with or without a leap at `at` (Unix
/// seconds); `at`, or the coming midnight.
fn list(leap_at: Option<i64>) -> (String, i64) {
    let midnight = (unix_now() as i64 / 86_400 + 1) * 86_400;
    let mut entries: Vec<(i64, i32)> = vec![(3_644_697_600, 36), (3_692_217_600, 37)];
    if let Some(at) = leap_at {
        entries.push((at + NTP_TO_UNIX, 38));
    }
    let midnight = leap_at.unwrap_or(midnight);
    let (updated, expires) = (
        midnight + NTP_TO_UNIX - 86_400 * 30,
        midnight + NTP_TO_UNIX + 86_400 * 180,
    );
    let mut text = format!("#$\t{updated}\n#@\t{expires}\n");
    let mut sha = Sha1::new();
    sha.update(format!("{updated}{expires}").as_bytes());
    for (t, o) in &entries {
        text.push_str(&format!("{t}\t{o}\t# entry\n"));
        sha.update(format!("{t}{o}").as_bytes());
    }
    let sum = sha.finalize();
    let words: Vec<String> = sum
        .chunks_exact(4)
        .map(|c| format!("{:x}", u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    text.push_str(&format!("#h\t{}\n", words.join(" ")));
    (text, midnight)
}

fn ask(server: SocketAddr) -> (NtpHeader, f64) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let req = client_request(Version::V4, 0x1234_5678_9abc_def0);
    let before = unix_now();
    socket.send_to(&req.to_bytes(), server).unwrap();
    let mut buf = [0u8; 1024];
    let (n, _) = socket.recv_from(&mut buf).expect("an answer");
    let after = unix_now();
    let h = NtpHeader::parse_bytes(&buf[..n]).unwrap();
    let pivot = UnixTime::from_nanos((before * 1e9) as i128);
    let served = h.receive_timestamp.to_unix(pivot).as_nanos() as f64 * 1e-9;
    // The server's time minus ours, at the middle of the exchange.
    (h, served - (before + after) / 2.0)
}

fn server_config(source: TimeSource, leap_file: &std::path::Path) -> ServerConfig {
    ServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        threads: 1,
        observe: true,
        source,
        leap_file: Some(leap_file.to_owned()),
        ..ServerConfig::default()
    }
}

#[test]
fn a_server_of_its_own_clock_announces_the_listed_leap_on_its_day() {
    let dir = common::scratch("leap-announce");
    let (text, _) = list_with_leap_tonight();
    let file = dir.join("leap-seconds.list");
    std::fs::write(&file, text).unwrap();
    let server = NtpServer::start(&server_config(TimeSource::Local { stratum: 1 }, &file)).unwrap();
    let (h, offset) = ask(server.local_addrs()[0]);
    assert_eq!(h.leap, LeapIndicator::InsertSecond);
    assert!(offset.abs() < 0.01, "{offset}");
    // tzdata's list holds no leap today: nothing announced.
    let tzdata = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../clock-discipline/tests/leap-seconds.list");
    let plain =
        NtpServer::start(&server_config(TimeSource::Local { stratum: 1 }, &tzdata)).unwrap();
    assert_eq!(ask(plain.local_addrs()[0]).0.leap, LeapIndicator::NoWarning);
}

#[test]
fn a_smearing_server_serves_the_smear_and_never_announces_the_leap() {
    let dir = common::scratch("leap-smear");
    let (text, midnight) = list_with_leap_in_12_hours();
    let file = dir.join("leap-seconds.list");
    std::fs::write(&file, text).unwrap();
    // Two days wide around a leap 12 hours away: a quarter done.
    let config = ServerConfig {
        leap_smear: Some(LeapSmearConfig {
            kind: "linear".into(),
            duration: 172_800.0,
        }),
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..server_config(TimeSource::Local { stratum: 1 }, &file)
    };
    let server = NtpServer::start(&config).unwrap();
    let (h, offset) = ask(server.local_addrs()[0]);
    assert_eq!(
        h.leap,
        LeapIndicator::NoWarning,
        "a smearing server never announces"
    );
    let smear = LeapSmear {
        shape: SmearShape::Linear,
        duration: 172_800.0,
    };
    let expected = smear.offset(unix_now(), midnight, Leap::Insert, false);
    assert!(expected < -0.2 && expected > -0.3, "{expected}");
    assert!(
        (offset - expected).abs() < 2e-3,
        "served {offset:+.6} s from this clock, the smear says {expected:+.6}"
    );
    let status = server.status_json();
    assert_eq!(status["leap"]["smear"]["active"], true, "{status}");
    let shown = status["leap"]["smear"]["offset_seconds"].as_f64().unwrap();
    assert!((shown - expected).abs() < 2e-3, "{status}");
    let metrics = tempora_examples::http::get(server.metrics_addr().unwrap(), "/metrics").unwrap();
    assert!(metrics.contains("leap_smear_active 1"), "{metrics}");
}

#[test]
fn a_boundary_server_passes_on_only_the_leaps_its_list_holds() {
    let dir = common::scratch("leap-boundary");
    let (text, _) = list_with_leap_tonight();
    let liar_file = dir.join("liar.list");
    std::fs::write(&liar_file, text).unwrap();
    // Upstream: a server whose list (wrongly) has a leap tonight.
    let upstream =
        NtpServer::start(&server_config(TimeSource::Local { stratum: 1 }, &liar_file)).unwrap();
    let tzdata = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../clock-discipline/tests/leap-seconds.list");
    let boundary = |leap_file: Option<std::path::PathBuf>| {
        NtpServer::start(&ServerConfig {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            threads: 1,
            observe: true,
            source: TimeSource::Upstream(Box::new(UpstreamConfig {
                servers: vec![upstream.local_addrs()[0].to_string()],
                min_poll: 0,
                max_poll: 0,
                leap_file,
                ..UpstreamConfig::default()
            })),
            ..ServerConfig::default()
        })
        .unwrap()
    };
    let honest_file = dir.join("honest.list");
    std::fs::write(&honest_file, list(None).0).unwrap();
    let trusting = boundary(None);
    let checking = boundary(Some(honest_file));
    let expired = boundary(Some(tzdata.clone()));
    let leap_of = |s: &NtpServer| {
        common::wait_for(Duration::from_secs(20), || {
            let (h, _) = ask(s.local_addrs()[0]);
            (h.leap != LeapIndicator::Unsynchronized).then_some(h.leap)
        })
        .expect("synchronised within 20 s")
    };
    // Without a list the upstream's announcement is passed on; with a current list that
    // does not hold it, it is refused.
    assert_eq!(leap_of(&trusting), LeapIndicator::InsertSecond);
    assert_eq!(leap_of(&checking), LeapIndicator::NoWarning);
    // tzdata's list (2025b) expired in June 2026: past its expiry nothing can be checked,
    // and the sources' vote is taken again.
    let now = unix_now() as i64;
    let tz =
        tempora_clock_discipline::LeapSecondsList::parse(&std::fs::read(&tzdata).unwrap()).unwrap();
    let expected = if tz.is_expired(now) {
        LeapIndicator::InsertSecond
    } else {
        LeapIndicator::NoWarning
    };
    assert_eq!(leap_of(&expired), expected);
}

#[test]
fn leap_configuration_errors_name_the_key_and_the_line() {
    let dir = common::scratch("leap-config");
    let path = dir.join("server.toml");
    std::fs::write(
        &path,
        "listen = [\"127.0.0.1:0\"]\n[leap_smear]\nkind = \"linear\"\nduration = 86400\n",
    )
    .unwrap();
    let e = ServerConfig::from_file(path.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("leap_smear") && e.contains("leap_file"), "{e}");
    let list = dir.join("bad.list");
    std::fs::write(&list, "#$ 1\n#@ 2\n2272060800 ten\n").unwrap();
    std::fs::write(
        &path,
        format!(
            "listen = [\"127.0.0.1:0\"]\nleap_file = \"{}\"\n",
            list.display()
        ),
    )
    .unwrap();
    let e = ServerConfig::from_file(path.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("leap_file") && e.contains("line 3"), "{e}");
    std::fs::write(
        &path,
        "listen = [\"127.0.0.1:0\"]\nleap_file = \"/x\"\n[leap_smear]\nkind = \"quadratic\"\n",
    )
    .unwrap();
    let e = ServerConfig::from_file(path.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("leap_file") || e.contains("leap_smear.kind"),
        "{e}"
    );
}

/// Issue 20: a client with two unsmeared servers and one declared smeared (`[[server]]
/// smeared = true`), a day from a leap in its list, never combines them: the smeared one
/// is left out and the client's offset stays with the unsmeared pair (0 here: they all
/// serve this machine's clock), not part of the way to the smear.
#[test]
fn a_client_near_a_leap_never_mixes_smeared_and_unsmeared_sources() {
    let dir = common::scratch("leap-mix");
    let (text, _) = list_with_leap_in_12_hours();
    let file = dir.join("leap-seconds.list");
    std::fs::write(&file, &text).unwrap();
    let smearing = NtpServer::start(&ServerConfig {
        leap_smear: Some(LeapSmearConfig {
            kind: "linear".into(),
            duration: 172_800.0,
        }),
        ..server_config(TimeSource::Local { stratum: 1 }, &file)
    })
    .unwrap();
    let plain: Vec<NtpServer> = (0..2)
        .map(|_| NtpServer::start(&server_config(TimeSource::Local { stratum: 1 }, &file)).unwrap())
        .collect();
    let (_, smear_now) = ask(smearing.local_addrs()[0]);
    assert!(smear_now < -0.2, "the smear is under way: {smear_now}");
    let status_port = common::free_tcp_port();
    let config = dir.join("client.toml");
    std::fs::write(
        &config,
        format!(
            "min_poll = 0\nmax_poll = 0\nleap_file = \"{}\"\nstatus_listen = \"127.0.0.1:{status_port}\"\n\
             [[server]]\naddress = \"{}\"\nsmeared = true\n\
             [[server]]\naddress = \"{}\"\n[[server]]\naddress = \"{}\"\n",
            file.display(),
            smearing.local_addrs()[0],
            plain[0].local_addrs()[0],
            plain[1].local_addrs()[0],
        ),
    )
    .unwrap();
    let _client = common::observing_client(env!("CARGO_BIN_EXE_ntp-client"), &config);
    let address = format!("127.0.0.1:{status_port}").parse().unwrap();
    let status = common::wait_for(Duration::from_secs(30), || {
        let body = tempora_examples::http::get(address, "/status").ok()?;
        let s: tempora_examples::ntp_client::ClientStatus = serde_json::from_str(&body).ok()?;
        (s.tracking.synchronised && s.sources.iter().all(|r| r.reach & 0o17 == 0o17)).then_some(s)
    })
    .expect("synchronised with all three reachable within 30 s");
    let table = tempora_examples::ntp_client::render_status(&status);
    eprintln!("{table}");
    assert!(status.sources[0].smeared, "{table}");
    assert!(
        !matches!(status.sources[0].mark, '*' | '+'),
        "the smeared source is not combined near the leap: {table}"
    );
    assert!(
        status.tracking.system_offset.abs() < 0.005,
        "the client stays with the unsmeared pair, not part of the way to {smear_now}: {table}"
    );
}
