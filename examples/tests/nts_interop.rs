//! NTS (RFC 8915) against real peers started by the test on loopback: chronyd 4.3's
//! NTS-KE and NTS server (without CAP_SYS_TIME, -x), with a certificate from a CA the test
//! makes with openssl; and a TLS server that speaks no NTS-KE (openssl s_server with
//! another ALPN). Both ends share this machine's clock: the true offset is 0.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Killed, chronyd, free_udp_port, scratch, wait_for};

/// A test CA and a server certificate for 127.0.0.1 and localhost, signed by it.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (apt-get install openssl; .ci/run does)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pki(dir: &Path) -> Pki {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Tempora test CA",
    ]);
    openssl(dir, &args);
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &args);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

fn query(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ntp-client"))
        .arg("query")
        .args(args)
        .output()
        .unwrap()
}

/// A free TCP port on loopback.
fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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

#[test]
fn a_tls_server_without_ntske_alpn_is_refused() {
    let dir = scratch("nts-alpn");
    let pki = pki(&dir);
    let port = free_tcp_port();
    let _server = Killed(
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
    );
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
