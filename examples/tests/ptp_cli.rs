//! `ptp-slave` refuses what it cannot do with one clear line and a non-zero exit, before
//! it touches the network: a missing interface, hardware timestamps on an interface
//! without them, a PHC steered by software timestamps, a bad or missing config file.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::process::Command;

fn ptp_slave(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ptp-slave"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_settings_get_one_clear_error() {
    let (code, err) = ptp_slave(&["-i", "nosuchif0", "--observe", "--duration", "1"]);
    assert_ne!(code, 0);
    assert!(err.contains("nosuchif0"), "{err}");

    // Loopback has software timestamps only.
    let (code, err) = ptp_slave(&["-i", "lo", "-H", "--observe", "--duration", "1"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("hardware timestamp") && err.contains("lo"),
        "{err}"
    );

    let (code, err) = ptp_slave(&["-i", "lo", "--clock", "/dev/ptp0"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("clock") && err.contains("software timestamps"),
        "{err}"
    );

    let (code, err) = ptp_slave(&["-i", "lo", "--profile", "power"]);
    assert_eq!(code, 2);
    assert!(err.contains("profile"), "{err}");

    let (code, err) = ptp_slave(&["--observe"]);
    assert_eq!(code, 2);
    assert!(err.contains("interface"), "{err}");

    let dir = std::env::temp_dir().join(format!("tempora-ptp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "interface = \"lo\"\ncolour = 1\n").unwrap();
    let (code, err) = ptp_slave(&["--config", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("colour"), "{err}");
    let (code, err) = ptp_slave(&["--config", dir.join("missing.toml").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.toml"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn flags_override_the_file() {
    let dir = std::env::temp_dir().join(format!("tempora-ptp-cli2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ptp.toml");
    std::fs::write(
        &file,
        "interface = \"lo\"\nprofile = \"gptp\"\ndomain = 0\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ptp-slave"))
        .args([
            "--config",
            file.to_str().unwrap(),
            "--domain",
            "7",
            "-4",
            "--check-config",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("domain: 7"), "{text}");
    assert!(
        text.contains("transport: Udp4") && text.contains("sdo_id: 1"),
        "{text}"
    );
    assert!(text.contains("delay_mechanism: P2p"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
