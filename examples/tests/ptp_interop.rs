//! `ptp-slave` (observe-only) against linuxptp 3.1's ptp4l as master (`-S`, software
//! timestamps, `free_running 1`, no CAP_SYS_TIME), over veth pairs between network
//! namespaces the test makes, over UDPv4, UDPv6 and Ethernet (E2E). Both share this
//! machine's clock: the true offset is 0.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Killed, Netns, peer, scratch};

/// One test at a time: on two cores, parallel runs make scheduling spikes of tens of
/// microseconds in each other's software timestamps.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn ip(args: &[&str]) {
    let ok = Command::new("ip").args(args).status().unwrap().success();
    assert!(ok, "ip {args:?}");
}

fn ptp4l_master(
    ns: &Netns,
    interface: &str,
    priority1: u8,
    transport: &str,
    delay: &str,
    dir: &std::path::Path,
) -> Killed {
    let conf = dir.join(format!("ptp4l-{interface}.conf"));
    std::fs::write(
        &conf,
        format!("[global]\nfree_running 1\nlogSyncInterval -2\npriority1 {priority1}\n"),
    )
    .unwrap();
    Killed(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                "setpriv",
                "--bounding-set=-sys_time",
                "--",
            ])
            .arg(peer("usr/sbin/ptp4l").unwrap())
            .args(["-i", interface, transport, delay, "-S", "-f"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn slave(ns: &Netns, interface: &str, transport: &str, delay: &str, seconds: u32) -> Child {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "setpriv",
            "--bounding-set=-sys_time",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_ptp-slave"))
        .args([
            "--interface",
            interface,
            transport,
            delay,
            "--observe",
            "--json",
            "--summary",
            "0",
        ])
        .args(["--duration", &seconds.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn reports(child: Child) -> Vec<serde_json::Value> {
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn follows_ptp4l_over_udpv4_e2e() {
    follows_ptp4l("-4", 'a');
}

#[test]
fn follows_ptp4l_over_udpv6_e2e() {
    follows_ptp4l("-6", 'b');
}

/// Peer-to-peer delay over UDPv4: both ends measure the link and answer each other's
/// Pdelay_Req. Measured here: SLAVE, link delay about 1 us, RMS 1.0-1.8 us (the link
/// delay comes out about 1.5 us below the end-to-end path delay: not yet explained), so
/// the bound is 5 us, not the E2E tests' 1 us.
#[test]
fn follows_ptp4l_over_udpv4_p2p() {
    follows_ptp4l_with("-4", "-P", 'd', 5_000.0);
}

#[test]
fn follows_ptp4l_over_ethernet_e2e() {
    follows_ptp4l("-2", 'c');
}

fn follows_ptp4l(transport: &str, tag: char) {
    follows_ptp4l_with(transport, "-E", tag, 1_000.0);
}

fn follows_ptp4l_with(transport: &str, delay: &str, tag: char, max_rms: f64) {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if peer("usr/sbin/ptp4l").is_none() {
        eprintln!("skipped: no ptp4l under target/peers");
        return;
    }
    let (Some(m), Some(s)) = (
        Netns::new(&format!("tempora-ptpm{tag}")),
        Netns::new(&format!("tempora-ptps{tag}")),
    ) else {
        return;
    };
    let pid = std::process::id() % 10000;
    let (vm, vs) = (format!("tpm{tag}{pid}"), format!("tps{tag}{pid}"));
    let transport_name = format!("{transport} {delay}");
    ip(&["link", "add", &vm, "type", "veth", "peer", "name", &vs]);
    ip(&["link", "set", &vm, "netns", &m.name]);
    ip(&["link", "set", &vs, "netns", &s.name]);
    m.exec(&["ip", "addr", "add", "10.78.0.1/24", "dev", &vm]);
    s.exec(&["ip", "addr", "add", "10.78.0.2/24", "dev", &vs]);
    m.exec(&["ip", "link", "set", &vm, "up"]);
    s.exec(&["ip", "link", "set", &vs, "up"]);
    // IPv6 multicast needs the link-local addresses out of duplicate address detection.
    std::thread::sleep(Duration::from_secs(2));
    let dir = scratch(&format!("ptp-e2e-{tag}"));
    let _master = ptp4l_master(&m, &vm, 100, transport, delay, &dir);
    let started = Instant::now();
    let lines = reports(slave(&s, &vs, transport, delay, 32));
    let slave_at = lines
        .iter()
        .find(|r| r["kind"] == "state" && r["to"] == "SLAVE")
        .map(|r| r["time"].as_f64().unwrap())
        .unwrap_or_else(|| panic!("never SLAVE: {lines:?}"));
    // ptp4l needs its own announce timeout (3 s) to become master; then two Announces
    // qualify it here.
    assert!(slave_at < 15.0, "SLAVE after {slave_at} s");
    let spikes = lines
        .iter()
        .filter(|r| r["kind"] == "sample" && r["spike"] == true)
        .count();
    let samples: Vec<(f64, f64)> = lines
        .iter()
        .filter(|r| r["kind"] == "sample" && r["state"] == "SLAVE" && r["spike"] == false)
        .map(|r| {
            (
                r["offset_ns"].as_f64().unwrap(),
                r["path_delay_ns"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(samples.len() > 30, "{} samples", samples.len());
    for (_, delay) in &samples {
        assert!(*delay > 0.0 && *delay < 1e6, "path delay {delay} ns");
    }
    let rms = (samples.iter().map(|(o, _)| o * o).sum::<f64>() / samples.len() as f64).sqrt();
    let mean = samples.iter().map(|(o, _)| o).sum::<f64>() / samples.len() as f64;
    eprintln!(
        "ptp-slave vs ptp4l {transport_name} over veth ({:.0} s): {} samples, RMS {rms:.0} ns, mean {mean:.0} ns, {spikes} spikes set aside",
        started.elapsed().as_secs_f64(),
        samples.len()
    );
    // Scheduling spikes (tens of us) are reported and kept from the servo; they must
    // stay rare.
    assert!(
        spikes * 10 <= samples.len(),
        "{spikes} spikes in {}",
        samples.len()
    );
    assert!(rms < max_rms, "RMS {rms} ns, mean {mean} ns");
    assert!(mean.abs() < max_rms / 2.0, "mean {mean} ns");
}

#[test]
fn picks_the_better_master_and_fails_over_when_it_stops() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if peer("usr/sbin/ptp4l").is_none() {
        eprintln!("skipped: no ptp4l under target/peers");
        return;
    }
    let names = [
        "tempora-bmca-br",
        "tempora-bmca-a",
        "tempora-bmca-b",
        "tempora-bmca-s",
    ];
    let mut nss = Vec::new();
    for n in names {
        let Some(ns) = Netns::new(n) else { return };
        nss.push(ns);
    }
    let (br, a, b, s) = (&nss[0], &nss[1], &nss[2], &nss[3]);
    let pid = std::process::id() % 10000;
    br.exec(&["ip", "link", "add", "br0", "type", "bridge"]);
    br.exec(&["ip", "link", "set", "br0", "up"]);
    for (i, ns) in [a, b, s].into_iter().enumerate() {
        let (outer, inner) = (format!("tb{i}o{pid}"), format!("tb{i}i{pid}"));
        ip(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ]);
        ip(&["link", "set", &outer, "netns", &br.name]);
        ip(&["link", "set", &inner, "netns", &ns.name]);
        br.exec(&["ip", "link", "set", &outer, "master", "br0"]);
        br.exec(&["ip", "link", "set", &outer, "up"]);
        ns.exec(&[
            "ip",
            "addr",
            "add",
            &format!("10.79.0.{}/24", i + 1),
            "dev",
            &inner,
        ]);
        ns.exec(&["ip", "link", "set", &inner, "up"]);
    }
    let dir = scratch("ptp-bmca");
    let master_a = ptp4l_master(a, &format!("tb0i{pid}"), 100, "-4", "-E", &dir);
    let _master_b = ptp4l_master(b, &format!("tb1i{pid}"), 120, "-4", "-E", &dir);
    let child = slave(s, &format!("tb2i{pid}"), "-4", "-E", 40);
    // Let the slave settle on the better master, then stop it.
    std::thread::sleep(Duration::from_secs(18));
    drop(master_a);
    let lines = reports(child);
    let masters: Vec<(f64, String)> = lines
        .iter()
        .filter(|r| r["kind"] == "master")
        .filter_map(|r| Some((r["time"].as_f64()?, r["master"].as_str()?.to_string())))
        .collect();
    assert!(masters.len() >= 2, "{lines:?}");
    // The master followed when the better one was stopped (at about 18 s; the slave
    // started about 0.1 s after the masters), and the one followed at the end.
    let before = masters
        .iter()
        .rfind(|(t, _)| *t < 17.0)
        .unwrap_or_else(|| panic!("{masters:?}"));
    let last = masters.last().unwrap();
    assert_ne!(
        before.1, last.1,
        "failed over to the other master: {masters:?}"
    );
    // Failover within the announce receipt timeout: ptp4l announces every 2 s, so three
    // intervals after its last Announce, which may be up to one interval after the stop
    // was asked; measured here 7-8 s after it.
    assert!(
        last.0 > 17.0 && last.0 < 18.0 + 10.0,
        "failover at {} s: {masters:?}",
        last.0
    );
    let after: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|r| r["kind"] == "sample" && r["time"].as_f64().unwrap() > last.0 + 2.0)
        .collect();
    assert!(!after.is_empty(), "no samples from the new master");
    assert!(
        lines.iter().any(|r| r["kind"] == "state"
            && r["to"] == "SLAVE"
            && r["time"].as_f64().unwrap() > last.0),
        "SLAVE again after the failover"
    );
}
