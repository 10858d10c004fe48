//! Issue 19's interop: AWS's own `clock-bound-client` (crates.io) reads the clock error
//! bound `ntp-client run` publishes, as it reads ClockBound's daemon's. The client runs
//! observe-only against a chronyd on loopback; nothing touches this machine's clock.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clock_bound_client::{ClockBoundClient, ClockStatus};
use common::{chronyd, free_udp_port, scratch, wait_for};

fn unix_ns(t: SystemTime) -> i128 {
    t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as i128
}

fn timespec_ns(t: nix::sys::time::TimeSpec) -> i128 {
    i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec())
}

#[test]
fn clock_bound_client_reads_the_bound_ntp_client_publishes() {
    let dir = scratch("clock-bound");
    let port = free_udp_port();
    let Some(_chronyd) = chronyd(
        "clock-bound-chronyd",
        &format!("port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.0/8\nlocal stratum 1\n"),
        None,
    ) else {
        return;
    };
    let segment = dir.join("clockbound").join("shm0");
    let config = dir.join("client.toml");
    std::fs::write(
        &config,
        format!(
            "servers = [\"127.0.0.1:{port}\"]\nmin_poll = 0\nmax_poll = 0\n\
             [clock_bound]\npath = \"{}\"\nmode = \"0640\"\n",
            segment.display()
        ),
    )
    .unwrap();
    let binary = env!("CARGO_BIN_EXE_ntp-client");
    let _client = common::observing_client(binary, &config);
    let path = segment.to_str().unwrap().to_owned();
    let mut reader = wait_for(Duration::from_secs(10), || {
        ClockBoundClient::new_with_path(&path).ok()
    })
    .expect("the segment appears and clock-bound-client opens it");
    let mode = std::fs::metadata(&segment).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o640,
        "the configured mode"
    );
    // Before the bound has been through its warm-up, nothing is claimed.
    let first = reader.now().unwrap();
    assert_eq!(first.clock_status, ClockStatus::Unknown, "{first:?}");
    let synced = wait_for(Duration::from_secs(60), || {
        let r = reader.now().ok()?;
        (r.clock_status == ClockStatus::Synchronized).then_some(r)
    })
    .expect("Synchronized within 60 s");
    eprintln!("first synchronised reading: {synced:?}");
    // Many reads over a few seconds: true time (this machine's clock, which chronyd
    // serves) always lies within [earliest, latest].
    let mut widest = 0i128;
    for _ in 0..50 {
        let before = unix_ns(SystemTime::now());
        let r = reader.now().unwrap();
        let after = unix_ns(SystemTime::now());
        let (earliest, latest) = (timespec_ns(r.earliest), timespec_ns(r.latest));
        assert_eq!(r.clock_status, ClockStatus::Synchronized, "{r:?}");
        assert!(
            earliest <= after && before <= latest,
            "{r:?} before {before} after {after}"
        );
        assert!(latest > earliest);
        widest = widest.max(latest - earliest);
        std::thread::sleep(Duration::from_millis(50));
    }
    // An honest bound over loopback is well under a millisecond either way.
    assert!(widest < 2_000_000, "bound interval {widest} ns");
    eprintln!("widest interval over 50 reads: {widest} ns");
    // `ntp-client now` reads the same segment.
    let out = std::process::Command::new(binary)
        .args(["now", "--json", "--path", &path])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], "Synchronized", "{json}");
    let bound = json["bound_ns"].as_i64().unwrap();
    assert!(bound > 0 && bound < 1_000_000, "{json}");
}

#[test]
fn ntp_client_now_without_a_segment_says_so() {
    let dir = scratch("clock-bound-none");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ntp-client"))
        .args(["now", "--path"])
        .arg(dir.join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("clock_bound"), "{err}");
}
