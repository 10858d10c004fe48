//! `ptp-slave`: a slave-only PTP ordinary clock over UDPv4, UDPv6 or Ethernet with software
//! timestamps.
//!
//! ```text
//! ptp-slave --interface IF [-4 | -6 | -2] [-E | -P] [--domain N] [--observe] [--json]
//!           [--duration S] [--summary N]
//! ```

use std::process::ExitCode;

use tempora_examples::ptp::PortConfig;
use tempora_examples::ptp::daemon::{SlaveConfig, Transport, run};

const USAGE: &str = "usage: ptp-slave --interface IF [-4 | -6 | -2] [-E | -P] [--domain N]
                 [--observe] [--json] [--duration S] [--summary N]
  Follows the best PTP master heard on IF (UDPv4 by default, -6 UDPv6, -2 Ethernet;
  -E end-to-end delay by default, -P peer-to-peer; software timestamps)
  and steers the system clock with the PI servo; --observe measures and reports only and
  needs no CAP_SYS_TIME. Prints a line per sample as ptp4l does (--json: JSON lines) and
  a summary every N samples (default 16).";

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("ptp-slave: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut config = SlaveConfig {
        interface: String::new(),
        port: PortConfig::default(),
        observe: false,
        duration: None,
        summary_every: 16,
        transport: Transport::Udp4,
    };
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--interface" | "-i" => match args.next() {
                Some(i) => config.interface = i,
                None => return fail("--interface takes a name"),
            },
            "--domain" => match args.next().and_then(|v| v.parse().ok()) {
                Some(d) => config.port.domain = d,
                None => return fail("--domain takes 0-255"),
            },
            "--observe" => config.observe = true,
            "-4" => config.transport = Transport::Udp4,
            "-6" => config.transport = Transport::Udp6,
            "-2" => config.transport = Transport::L2,
            "-P" | "--p2p" => {
                config.port.delay_mechanism = tempora_ptp_proto::DelayMechanism::P2p;
            }
            "-E" | "--e2e" => {
                config.port.delay_mechanism = tempora_ptp_proto::DelayMechanism::E2e;
            }
            "--json" => json = true,
            "--duration" => match args.next().and_then(|v| v.parse::<f64>().ok()) {
                Some(d) if d > 0.0 => config.duration = Some(d),
                _ => return fail("--duration takes seconds"),
            },
            "--summary" => match args.next().and_then(|v| v.parse().ok()) {
                Some(n) => config.summary_every = n,
                None => return fail("--summary takes a number of samples"),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return fail(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if config.interface.is_empty() {
        return fail(format!("no interface\n{USAGE}"));
    }
    if !config.observe && !tempora_sys_clock::has_cap_sys_time() {
        eprintln!(
            "ptp-slave: no CAP_SYS_TIME: running observe-only (measuring and reporting, never \
             steering); grant CAP_SYS_TIME to steer the clock"
        );
        config.observe = true;
    }
    let stop = match tempora_examples::startup::stop_flag() {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot handle signals: {e}")),
    };
    let result = run(&config, &stop, |report| {
        if json {
            println!("{}", serde_json::to_string(report).unwrap_or_default());
        } else {
            println!("{}", report.text());
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ptp-slave: {e}");
            ExitCode::FAILURE
        }
    }
}
