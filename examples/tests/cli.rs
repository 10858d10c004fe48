//! The command lines as a new user meets them: `--help` on every binary and subcommand,
//! `--version`, errors that name the flag with exit status 2, and completion scripts.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::process::Command;

/// Exit status, stdout and stderr.
fn run(binary: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const CLIENT: &str = env!("CARGO_BIN_EXE_ntp-client");
const SERVER: &str = env!("CARGO_BIN_EXE_ntp-server");
const SLAVE: &str = env!("CARGO_BIN_EXE_ptp-slave");
const LOAD: &str = env!("CARGO_BIN_EXE_ntp-load");
const ECHO: &str = env!("CARGO_BIN_EXE_udp-echo");

#[test]
fn help_works_everywhere() {
    for (binary, args, flag) in [
        (CLIENT, &["--help"][..], "query"),
        (CLIENT, &["run", "--help"][..], "--server"),
        (CLIENT, &["query", "--help"][..], "--samples"),
        (CLIENT, &["status", "--help"][..], "--address"),
        (CLIENT, &["wait", "--help"][..], "--bound"),
        (CLIENT, &["help", "run"][..], "--status-listen"),
        (SERVER, &["--help"][..], "--local-stratum"),
        (SLAVE, &["--help"][..], "--interface"),
        (LOAD, &["--help"][..], "--in-flight"),
        (ECHO, &["--help"][..], "SECONDS"),
    ] {
        let (code, out, err) = run(binary, args);
        assert_eq!(code, 0, "{binary} {args:?}: {err}");
        assert!(out.contains(flag), "{binary} {args:?}: {out}");
    }
}

#[test]
fn version_is_the_crate_version() {
    for binary in [CLIENT, SERVER, SLAVE, LOAD, ECHO] {
        let (code, out, _) = run(binary, &["--version"]);
        assert_eq!(code, 0, "{binary}");
        assert!(out.contains(env!("CARGO_PKG_VERSION")), "{binary}: {out}");
    }
}

#[test]
fn bad_arguments_name_the_flag_and_exit_2() {
    for (binary, args, named) in [
        (CLIENT, &["run", "--sever", "x"][..], "--sever"),
        (CLIENT, &["query", "--samples", "0", "x"][..], "--samples"),
        (CLIENT, &["wait", "--bound", "0"][..], "--bound"),
        (CLIENT, &["frobnicate"][..], "frobnicate"),
        (SERVER, &["--listen", "nowhere"][..], "--listen"),
        (
            SERVER,
            &["--kernel", "--local-stratum", "3"][..],
            "--local-stratum",
        ),
        (SLAVE, &["-4", "-6", "-i", "lo"][..], "-6"),
        (
            LOAD,
            &["127.0.0.1:123", "--duration", "1000"][..],
            "--duration",
        ),
    ] {
        let (code, _, err) = run(binary, args);
        assert_eq!(code, 2, "{binary} {args:?}: {err}");
        assert!(err.contains(named), "{binary} {args:?}: {err}");
    }
    // Values clap accepts but the configuration refuses still name the key.
    let (code, _, err) = run(SERVER, &["--local-stratum", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("source.stratum"), "{err}");
}

#[test]
fn completion_scripts_name_the_binary() {
    for (binary, args, name) in [
        (CLIENT, &["completions", "bash"][..], "ntp-client"),
        (SERVER, &["--completions", "zsh"][..], "ntp-server"),
        (SLAVE, &["--completions", "fish"][..], "ptp-slave"),
    ] {
        let (code, out, err) = run(binary, args);
        assert_eq!(code, 0, "{binary}: {err}");
        assert!(out.contains(name) && out.len() > 200, "{binary}: {out}");
    }
}

/// Without CAP_SYS_TIME (dropped from the bounding set, as a container without it) the
/// client runs observe-only and says so once, on stderr and in `/status`.
#[test]
fn without_cap_sys_time_the_client_observes_and_says_so_once() {
    let listen = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut child = Command::new("setpriv")
        .args(["--bounding-set=-sys_time", "--inh-caps=-sys_time", "--"])
        .arg(CLIENT)
        .args(["run", "--server", "127.0.0.1:9", "--status-listen"])
        .arg(listen.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if let Ok(text) = tempora_examples::http::get(listen, "/status") {
            status = Some(text);
            break;
        }
    }
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let status = status.expect("the daemon served /status");
    assert!(status.contains("no CAP_SYS_TIME"), "{status}");
    assert!(status.contains("\"observe_only\":true"), "{status}");
    assert_eq!(stderr.matches("no CAP_SYS_TIME").count(), 1, "{stderr}");
}
