//! NTS against ntpd-rs 1.9 (`cargo install ntpd`, which `.ci/run` does into
//! `target/ntpd-rs`) on loopback, both ways: ntpd-rs as an NTS client of our server, and
//! our client against ntpd-rs's NTS server. ntpd-rs exits when it cannot steer the clock,
//! so it runs with `tests/shim/clock_reads_only.c` preloaded (clock reads pass through,
//! writes are answered as done and never made) and, as every peer here, without
//! CAP_SYS_TIME: this machine's clock is never touched. Without ntpd-rs the tests say
//! they were skipped.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Killed, chronyd, free_tcp_port, free_udp_port, pki, scratch, wait_for};
use tempora_examples::ntp_server::{NtpServer, NtsConfig, ServerConfig, TimeSource};

fn ntpd_rs() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/ntpd-rs/bin/ntp-daemon");
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "skipped: no ntpd-rs under target/ntpd-rs (cargo install ntpd --root target/ntpd-rs)"
        );
        None
    }
}

/// The shim, compiled for this test.
fn shim(dir: &Path) -> PathBuf {
    let out = dir.join("clock_reads_only.so");
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/shim/clock_reads_only.c");
    let ok = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .arg("-ldl")
        .status()
        .expect("cc (gcc) builds the shim")
        .success();
    assert!(ok, "the shim did not build");
    out
}

/// ntpd-rs with `config`, the shim preloaded, without CAP_SYS_TIME.
fn start_ntpd_rs(binary: &Path, dir: &Path, config: &str) -> Killed {
    let path = dir.join("ntp.toml");
    std::fs::write(&path, config).unwrap();
    let log = std::fs::File::create(dir.join("ntpd-rs.log")).unwrap();
    Killed(
        Command::new("setpriv")
            .args(["--bounding-set=-sys_time", "--"])
            .arg(binary)
            .arg("-c")
            .arg(&path)
            .env("LD_PRELOAD", shim(dir))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("ntpd-rs.log")).unwrap_or_default()
}

/// ntpd-rs as an NTS client of our server: it key-exchanges with ours and polls it
/// with NTS; our server counts the key exchange and the authenticated requests, and
/// nothing it could not authenticate; ntpd-rs measures from our answers.
#[test]
fn ntpd_rs_is_an_nts_client_of_our_server() {
    let Some(binary) = ntpd_rs() else { return };
    let dir = scratch("ntpd-rs-client");
    let _ = pki(&dir);
    let server = NtpServer::start(&ServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        threads: 1,
        source: TimeSource::Local { stratum: 1 },
        nts: Some(NtsConfig {
            certificate: dir.join("server.pem").to_string_lossy().into_owned(),
            private_key: dir.join("server.key").to_string_lossy().into_owned(),
            ke_listen: vec!["127.0.0.1:0".parse().unwrap()],
            key_rotation: 86_400,
            old_keys: 7,
            key_file: None,
            ntp_server: None,
            ntp_port: None,
            max_connections: 64,
            ke_timeout: 2.0,
        }),
        ..ServerConfig::default()
    })
    .unwrap();
    let ke = server.ke_addrs()[0];
    let _ntpd = start_ntpd_rs(
        &binary,
        &dir,
        &format!(
            "[observability]\nlog-level = \"info\"\nobservation-path = \"{}/observe\"\n\n\
             [[source]]\nmode = \"nts\"\naddress = \"127.0.0.1:{}\"\ncertificate-authority = \"{}/ca.pem\"\n\
             poll-interval-limits = {{ min = 0, max = 0 }}\n\n\
             [synchronization]\nminimum-agreeing-sources = 1\n",
            dir.display(),
            ke.port(),
            dir.display()
        ),
    );
    let counted = wait_for(Duration::from_secs(40), || {
        let c = server.counters();
        (c.nts_responses >= 4).then_some(c)
    });
    let status = server.status_json();
    let c = counted.unwrap_or_else(|| {
        panic!(
            "ntpd-rs sent no NTS requests we could authenticate: {status}\n{}",
            log_of(&dir)
        )
    });
    eprintln!("ntpd-rs as NTS client of ours: {status}");
    // ntpd-rs measures only answers that authenticate: its filter logs each measurement.
    let measured = wait_for(Duration::from_secs(10), || {
        let n = log_of(&dir).matches("kalman: Offset").count();
        (n >= 3).then_some(n)
    });
    assert!(
        measured.is_some(),
        "ntpd-rs took no measurements from our answers:\n{}",
        log_of(&dir)
    );
    assert!(
        status["nts"]["key_exchanges"]["ok"].as_u64().unwrap() >= 1,
        "{status}"
    );
    assert_eq!(c.nts_naks, 0, "{status}");
    assert_eq!(
        c.dropped(tempora_ntp::server::DropReason::NtsInvalid),
        0,
        "{status}"
    );
}

/// Our client against ntpd-rs's NTS server (ntpd-rs itself following chronyd on
/// loopback, so that it serves a synchronised stratum 2).
#[test]
fn our_client_authenticates_against_ntpd_rs() {
    let Some(binary) = ntpd_rs() else { return };
    let dir = scratch("ntpd-rs-server");
    let _ = pki(&dir);
    let upstream = free_udp_port();
    let Some(_chronyd) = chronyd(
        "ntpd-rs-upstream",
        &format!("port {upstream}\nbindaddress 127.0.0.1\nallow 127.0.0.0/8\nlocal stratum 1\n"),
        None,
    ) else {
        return;
    };
    let (ntp, ke) = (free_udp_port(), free_tcp_port());
    let _ntpd = start_ntpd_rs(
        &binary,
        &dir,
        &format!(
            "[observability]\nlog-level = \"info\"\nobservation-path = \"{d}/observe\"\n\n\
             [[source]]\nmode = \"server\"\naddress = \"127.0.0.1:{upstream}\"\n\
             poll-interval-limits = {{ min = 0, max = 0 }}\n\n\
             [[server]]\nlisten = \"127.0.0.1:{ntp}\"\n\n\
             [[nts-ke-server]]\nlisten = \"127.0.0.1:{ke}\"\n\
             certificate-chain-path = \"{d}/server.pem\"\nprivate-key-path = \"{d}/server.key\"\n\
             ntp-port = {ntp}\n\n\
             [synchronization]\nminimum-agreeing-sources = 1\n",
            d = dir.display()
        ),
    );
    let ca = dir.join("ca.pem").to_string_lossy().into_owned();
    let host = format!("127.0.0.1:{ke}");
    let report = wait_for(Duration::from_secs(40), || {
        let out = Command::new(env!("CARGO_BIN_EXE_ntp-client"))
            .args([
                "query",
                "--nts",
                "--ca-file",
                &ca,
                "--json",
                "--samples",
                "3",
                &host,
            ])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap())
    })
    .unwrap_or_else(|| panic!("no authenticated estimate from ntpd-rs:\n{}", log_of(&dir)));
    eprintln!("NTS against ntpd-rs: {report}");
    let server = &report["servers"][0];
    assert_eq!(server["address"], format!("127.0.0.1:{ntp}"), "{report}");
    assert!(
        server["nts"]
            .as_str()
            .is_some_and(|n| n.contains("AES-SIV")),
        "{report}"
    );
    assert!(report["offset"].as_f64().unwrap().abs() < 1e-3, "{report}");
}
