//! Ground truth: our daemon and chronyd as clients, side by side, of one chronyd server
//! on this machine through a delay proxy (client-to-server 0-2 ms, server-to-client
//! 0-0.5 ms, random); the true offset is 0, so the offsets each reports are its errors.
//! Also the falseticker case: three chronyd servers, one lying through the proxy.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{DelayProxy, chronyc, chronyd, free_udp_port, wait_for};
use tempora_examples::ntp_client::{ClientRuntime, UpstreamConfig};

fn rms(v: &[f64]) -> f64 {
    (v.iter().map(|x| x * x).sum::<f64>() / v.len().max(1) as f64).sqrt()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// One side-by-side pair: our daemon and a chronyd client, each through its own proxy
/// whose random delays come from the same seed, so both see the same delays in the same
/// order.
struct Pair {
    seed: u64,
    _proxies: (DelayProxy, DelayProxy),
    chronyd: common::Process,
    ours: ClientRuntime,
    mine: Vec<f64>,
    theirs: Vec<f64>,
    /// The published error bound, read each second: (trusted, bound in seconds).
    bounds: Vec<(bool, f64)>,
    segment: tempora_sys_clock::clock_bound::ClockBoundReader,
}

#[test]
fn more_accurate_than_chronyd_through_the_same_delays() {
    let port = free_udp_port();
    let Some(_server) = chronyd(
        "acc-server",
        &format!("port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 1\ncmdport 0"),
        None,
    ) else {
        return;
    };
    let server: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // One run of random delays can favour either client by chance (in the first minute a
    // few short exchanges decide everything); three seeds side by side average that out.
    let mut pairs = Vec::new();
    for seed in [11u64, 12, 13] {
        let ours_proxy = DelayProxy::start(server, (0.0, 0.002), (0.0, 0.0005), 0.0, seed);
        let theirs_proxy = DelayProxy::start(server, (0.0, 0.002), (0.0, 0.0005), 0.0, seed);
        let Some(client) = chronyd(
            &format!("acc-client-{seed}"),
            &format!(
                "server 127.0.0.1 port {} minpoll 0 maxpoll 0 iburst\nport 0\ncmdport 0",
                theirs_proxy.address.port()
            ),
            None,
        ) else {
            return;
        };
        let segment = common::scratch(&format!("acc-bound-{seed}")).join("shm0");
        let ours = ClientRuntime::start(
            UpstreamConfig {
                servers: vec![ours_proxy.address.to_string()],
                min_poll: 0,
                max_poll: 0,
                clock_bound: Some(tempora_examples::clock_bound::ClockBoundConfig {
                    path: segment.clone(),
                    ..Default::default()
                }),
                ..UpstreamConfig::default()
            },
            true,
        )
        .unwrap();
        let segment = tempora_sys_clock::clock_bound::ClockBoundReader::open(&segment).unwrap();
        pairs.push(Pair {
            seed,
            _proxies: (ours_proxy, theirs_proxy),
            chronyd: client,
            ours,
            mine: Vec::new(),
            theirs: Vec::new(),
            bounds: Vec::new(),
            segment,
        });
    }
    let run = Duration::from_secs(
        std::env::var("TEMPORA_ACCURACY_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(150),
    );
    let warm_up = Duration::from_secs(20);
    let start = Instant::now();
    while start.elapsed() < run {
        std::thread::sleep(Duration::from_secs(1));
        if start.elapsed() < warm_up {
            continue;
        }
        for pair in &mut pairs {
            let s = pair.ours.status();
            if s.tracking.synchronised {
                pair.mine.push(s.tracking.system_offset);
            }
            if let Ok(r) = pair.segment.now() {
                pair.bounds
                    .push((r.status.is_trusted(), r.bound_ns as f64 * 1e-9));
            }
            // chronyc -c tracking: ..., field 5 "System time" (seconds the local clock is
            // fast of NTP time, as chronyd -x tracks the free-running clock).
            if let Some(line) = chronyc(&pair.chronyd, &["-c", "tracking"]) {
                let f: Vec<&str> = line.trim().split(',').collect();
                if f.len() > 5 && f[2] != "0" {
                    if let Ok(v) = f[4].parse::<f64>() {
                        pair.theirs.push(v);
                    }
                }
            }
        }
    }
    let (mut all_mine, mut all_theirs) = (Vec::new(), Vec::new());
    for pair in &pairs {
        assert!(
            pair.mine.len() > 10 && pair.theirs.len() > 10,
            "seed {}: {} {}",
            pair.seed,
            pair.mine.len(),
            pair.theirs.len()
        );
        // How each converges: RMS per 15 s of the run.
        let bins: Vec<String> = pair
            .mine
            .chunks(15)
            .zip(pair.theirs.chunks(15))
            .enumerate()
            .map(|(k, (a, b))| {
                format!(
                    "{}-{} s: {:.0}/{:.0}",
                    20 + 15 * k,
                    35 + 15 * k,
                    rms(a) * 1e6,
                    rms(b) * 1e6
                )
            })
            .collect();
        eprintln!(
            "seed {}: tempora RMS {:.1} us max {:.1} us ({} samples); chronyd RMS {:.1} us max {:.1} us ({} samples); per 15 s, ours/chronyd: {}",
            pair.seed,
            rms(&pair.mine) * 1e6,
            max_abs(&pair.mine) * 1e6,
            pair.mine.len(),
            rms(&pair.theirs) * 1e6,
            max_abs(&pair.theirs) * 1e6,
            pair.theirs.len(),
            bins.join(", ")
        );
        all_mine.extend_from_slice(&pair.mine);
        all_theirs.extend_from_slice(&pair.theirs);
    }
    let (ours_rms, theirs_rms) = (rms(&all_mine), rms(&all_theirs));
    eprintln!(
        "over {:.0} s after {} s warm-up, three seeds: tempora RMS {:.1} us max {:.1} us; chronyd RMS {:.1} us max {:.1} us; ratio {:.2}",
        run.as_secs_f64(),
        warm_up.as_secs(),
        ours_rms * 1e6,
        max_abs(&all_mine) * 1e6,
        theirs_rms * 1e6,
        max_abs(&all_theirs) * 1e6,
        ours_rms / theirs_rms
    );
    // Issue 19: the published bound, against the truth (0: the server runs on this
    // machine's clock, and the client observes only), through the same delays.
    let mut bounds: Vec<f64> = pairs
        .iter()
        .flat_map(|p| p.bounds.iter().filter(|(t, _)| *t).map(|(_, b)| *b))
        .collect();
    let read: usize = pairs.iter().map(|p| p.bounds.len()).sum();
    bounds.sort_by(f64::total_cmp);
    assert!(
        bounds.len() * 2 > read,
        "trusted {} of {read} s",
        bounds.len()
    );
    let covered = bounds.iter().filter(|b| **b >= 0.0).count();
    let median = bounds[bounds.len() / 2];
    eprintln!(
        "error bound through the proxy: trusted {} of {read} s, truth inside in {covered} ({:.2}%), median {:.0} us, max {:.0} us",
        bounds.len(),
        100.0 * covered as f64 / bounds.len() as f64,
        median * 1e6,
        bounds[bounds.len() - 1] * 1e6
    );
    assert_eq!(covered, bounds.len());
    // Up to 2.5 ms of random delay each way: a bound of a few milliseconds is honest, one
    // of a second would be useless.
    assert!(median < 5e-3, "median bound {median} s");
    // The bar is half chronyd's RMS. Asserted with room for runs where chance
    // favours chronyd (see the closing note of issue 9 for the measured ratios): clearly
    // better than chronyd, and the truth within 100 us RMS.
    assert!(ours_rms < 100e-6, "RMS {ours_rms}");
    assert!(
        ours_rms <= 0.75 * theirs_rms,
        "ours {ours_rms} vs chronyd {theirs_rms}"
    );
}

#[test]
fn a_lying_server_is_marked_and_the_client_stays_on_the_truth() {
    let mut servers = Vec::new();
    let mut addresses = Vec::new();
    for i in 0..3 {
        let port = free_udp_port();
        let Some(s) = chronyd(
            &format!("liar-{i}"),
            &format!(
                "port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 1\ncmdport 0"
            ),
            None,
        ) else {
            return;
        };
        servers.push(s);
        addresses.push(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    // The third server lies by 50 ms (its answers' timestamps shifted in the proxy).
    let proxies: Vec<DelayProxy> = addresses
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let lie = if i == 2 { 0.050 } else { 0.0 };
            DelayProxy::start(*a, (0.0, 0.0002), (0.0, 0.0002), lie, 100 + i as u64)
        })
        .collect();
    let ours = ClientRuntime::start(
        UpstreamConfig {
            servers: proxies.iter().map(|p| p.address.to_string()).collect(),
            min_poll: -1,
            max_poll: -1,
            ..UpstreamConfig::default()
        },
        true,
    )
    .unwrap();
    let liar = proxies[2].address.to_string();
    let status = wait_for(Duration::from_secs(40), || {
        let s = ours.status();
        let marked = s
            .sources
            .iter()
            .any(|r| r.address.as_deref() == Some(liar.as_str()) && r.mark == 'x');
        (s.tracking.synchronised && marked && s.tracking.updates > 5).then_some(s)
    })
    .unwrap_or_else(|| panic!("liar never marked: {:#?}", ours.status()));
    assert!(
        status.tracking.system_offset.abs() < 1e-3,
        "{:?}",
        status.tracking
    );
    for r in &status.sources {
        if r.address.as_deref() != Some(liar.as_str()) {
            assert!("*+-".contains(r.mark), "{r:?}");
        }
    }
    assert!(status.tracking.reference.starts_with("127.0.0.1"));
}
