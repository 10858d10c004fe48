//! `ntp-client query` against a real chronyd 4.3 started by the test on loopback, without
//! CAP_SYS_TIME and with -x: both share this machine's clock, so the true offset is 0.
//! The peers come from `scripts/fetch-peers.sh` (CI runs it); without them the test says
//! it was skipped.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempora_examples::ntp_client::query::{QueryConfig, query};

struct Chronyd {
    child: Child,
    _dir: PathBuf,
}

impl Drop for Chronyd {
    fn drop(&mut self) {
        // Stop only the process this test started, by its PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chronyd_binary() -> Option<PathBuf> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/peers/root/usr/sbin/chronyd");
    path.exists().then_some(path)
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_chronyd(port: u16) -> Option<Chronyd> {
    let Some(binary) = chronyd_binary() else {
        eprintln!("skipped: no chronyd under target/peers (run scripts/fetch-peers.sh)");
        return None;
    };
    let dir = std::env::temp_dir().join(format!("tempora-chronyd-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("chrony.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 1\ncmdport 0\npidfile {}\n",
            dir.join("chronyd.pid").display()
        ),
    )
    .unwrap();
    let child = Command::new("setpriv")
        .args(["--bounding-set=-sys_time", "--"])
        .arg(binary)
        .args(["-d", "-x", "-u", "root", "-f"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Some(Chronyd { child, _dir: dir })
}

#[test]
fn query_against_chronyd_on_loopback() {
    let port = free_udp_port();
    let Some(_chronyd) = start_chronyd(port) else {
        return;
    };
    let config = QueryConfig {
        samples: 4,
        timeout: Duration::from_millis(500),
        interval: Duration::from_millis(100),
        nts: None,
    };
    let host = format!("127.0.0.1:{port}");
    // chronyd needs a moment to bind: ask again, bounded, until it answers.
    let mut report = query(std::slice::from_ref(&host), &config);
    for _ in 0..20 {
        if report.offset.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        report = query(std::slice::from_ref(&host), &config);
    }
    let offset = report
        .offset
        .unwrap_or_else(|| panic!("no estimate: {:?}", report.failure));
    assert!(
        offset.abs() < 1e-3,
        "|offset| {offset} s against the same clock"
    );
    let server = &report.servers[0];
    assert_eq!(server.stratum, 1);
    assert_eq!(
        server.reference_id, "127.127.1.1",
        "chrony's local reference"
    );
    assert!(server.truechimer);
    assert!(server.answers >= 3, "{server:?}");
    let best = server.best.unwrap();
    assert!(best.delay > 0.0 && best.delay < 1e-3, "{best:?}");
}

#[test]
fn no_answer_is_a_clear_failure() {
    let port = free_udp_port();
    let config = QueryConfig {
        samples: 2,
        timeout: Duration::from_millis(200),
        interval: Duration::from_millis(10),
        nts: None,
    };
    let report = query(&[format!("127.0.0.1:{port}")], &config);
    assert_eq!(report.offset, None);
    assert!(report.failure.unwrap().contains("no answer"));
    let unresolvable = query(&["no-such-host.invalid".to_string()], &config);
    assert!(unresolvable.failure.unwrap().contains("cannot resolve"));
}

#[test]
fn the_binary_exits_with_status_and_reason() {
    let exe = env!("CARGO_BIN_EXE_ntp-client");
    let out = Command::new(exe)
        .args(["query", "--samples", "1", "--timeout", "0.2"])
        .arg(format!("127.0.0.1:{}", free_udp_port()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no estimate"));
    let bad = Command::new(exe)
        .args(["query", "--samples", "0", "x"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
