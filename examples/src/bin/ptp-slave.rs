//! `ptp-slave`: a slave-only PTP ordinary clock over UDPv4, UDPv6 or Ethernet with
//! software or hardware timestamps.
//!
//! ```text
//! ptp-slave [--config FILE] [--interface IF] [--profile P] [-4 | -6 | -2] [-E | -P]
//!           [--domain N] [-S | -H] [--clock C] [--sync-system] [--observe] [--json]
//!           [--metrics ADDR] [--clock-identity ID] [--duration S] [--summary N]
//!           [--check-config]
//! ```

use std::process::ExitCode;

use tempora_examples::ptp::config::PtpConfigFile;
use tempora_examples::ptp::daemon::{SlaveConfig, run};

const USAGE: &str = "usage: ptp-slave [--config FILE] [--interface IF] [--profile P]
                 [-4 | -6 | -2] [-E | -P] [--domain N] [-S | -H] [--clock C]
                 [--sync-system] [--observe] [--json] [--metrics ADDR]
                 [--clock-identity ID] [--duration S] [--summary N] [--check-config]
  Follows the best PTP master heard on IF and steers a clock with the PI servo.
  --profile      default-e2e (UDPv4, end-to-end; the default), default-p2p, or gptp
                 (802.1AS: transportSpecific 1, Ethernet, peer-to-peer)
  -4 -6 -2       UDPv4, UDPv6 or Ethernet; -E end-to-end, -P peer-to-peer delay
  -S, -H         software timestamps (the default) or the NIC's hardware timestamps
  --clock C      auto (the system clock with -S, the NIC's PHC with -H), system, or a
                 PHC device such as /dev/ptp0
  --sync-system  when steering a PHC, keep the system clock on it (as phc2sys does)
  --observe      measure and report only; needs no CAP_SYS_TIME
  --json         JSON lines instead of ptp4l-like lines
  --metrics ADDR Prometheus /metrics and JSON /status on ADDR (e.g. 127.0.0.1:9102)
  --summary N    a summary line every N samples (default 16; 0: none)
  --config FILE  TOML with the same settings (see the README); flags override it";

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("ptp-slave: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut file: Option<String> = None;
    let mut flags = PtpConfigFile::default();
    let mut json = false;
    let mut check_only = false;
    let mut duration = None;
    let mut args = std::env::args().skip(1);
    let set = |slot: &mut Option<String>, value: &str| *slot = Some(value.to_string());
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} takes a value"));
        let result: Result<(), String> = (|| {
            match a.as_str() {
                "--config" | "-f" => file = Some(value("--config")?),
                "--interface" | "-i" => flags.interface = Some(value("--interface")?),
                "--profile" => flags.profile = Some(value("--profile")?),
                "--domain" => {
                    flags.domain = Some(
                        value("--domain")?
                            .parse()
                            .map_err(|_| "--domain takes 0-255".to_string())?,
                    )
                }
                "--clock" => flags.clock = Some(value("--clock")?),
                "--clock-identity" => flags.clock_identity = Some(value("--clock-identity")?),
                "--metrics" => {
                    flags.metrics_listen = Some(
                        value("--metrics")?
                            .parse()
                            .map_err(|e| format!("--metrics: {e}"))?,
                    )
                }
                "--summary" => {
                    flags.summary_every = Some(
                        value("--summary")?
                            .parse()
                            .map_err(|_| "--summary takes a number of samples".to_string())?,
                    )
                }
                "--duration" => match value("--duration")?.parse::<f64>() {
                    Ok(d) if d > 0.0 => duration = Some(d),
                    _ => return Err("--duration takes seconds".into()),
                },
                "--observe" => flags.observe = Some(true),
                "--sync-system" => flags.sync_system = Some(true),
                "-4" => set(&mut flags.transport, "udp4"),
                "-6" => set(&mut flags.transport, "udp6"),
                "-2" => set(&mut flags.transport, "l2"),
                "-E" | "--e2e" => set(&mut flags.delay_mechanism, "e2e"),
                "-P" | "--p2p" => set(&mut flags.delay_mechanism, "p2p"),
                "-S" => set(&mut flags.timestamping, "software"),
                "-H" => set(&mut flags.timestamping, "hardware"),
                "--json" => json = true,
                "--check-config" => check_only = true,
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
            Ok(())
        })();
        if a == "-h" || a == "--help" {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        if let Err(e) = result {
            return fail(e);
        }
    }
    let mut config = SlaveConfig::new("");
    if let Some(path) = &file {
        match PtpConfigFile::from_file(path) {
            Ok(f) => {
                if let Err(e) = f.apply(&mut config) {
                    return fail(format!("{path}: {e}"));
                }
            }
            Err(e) => return fail(e),
        }
    }
    if let Err(e) = flags.apply(&mut config).and_then(|()| config.validate()) {
        return fail(e);
    }
    config.duration = duration;
    if check_only {
        println!("configuration OK: {config:?}");
        return ExitCode::SUCCESS;
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
