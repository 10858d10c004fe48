//! `ptp-slave`: a slave-only PTP ordinary clock over UDPv4, UDPv6 or Ethernet with
//! software or hardware timestamps.
//!
//! ```text
//! ptp-slave [--config FILE] [--interface IF] [--profile P] [-4 | -6 | -2] [-E | -P]
//!           [--domain N] [-S | -H] [--clock C] [--sync-system] [--observe] [--json]
//!           [--metrics ADDR] [--clock-identity ID] [--duration S] [--summary N]
//!           [--check-config]
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use tempora_examples::config::ConfigFile;
use tempora_examples::ptp_slave::config::PtpConfigFile;
use tempora_examples::ptp_slave::daemon::{SlaveConfig, run};

/// Follows the best PTP master heard on an interface and steers a clock with the PI
/// servo. Flags override the TOML file (docs/ptp-slave.md has every key).
#[derive(Parser)]
#[command(name = "ptp-slave", version, about)]
struct Cli {
    /// TOML with the same settings.
    #[arg(long, short = 'f', value_name = "FILE")]
    config: Option<String>,
    /// The interface.
    #[arg(long, short = 'i', value_name = "IF")]
    interface: Option<String>,
    /// default-e2e (UDPv4, end-to-end; the default), default-p2p, or gptp (802.1AS:
    /// transportSpecific 1, Ethernet, peer-to-peer).
    #[arg(long, value_name = "P")]
    profile: Option<String>,
    /// UDP over IPv4.
    #[arg(short = '4', group = "transport")]
    udp4: bool,
    /// UDP over IPv6.
    #[arg(short = '6', group = "transport")]
    udp6: bool,
    /// Ethernet (IEEE 802.3).
    #[arg(short = '2', group = "transport")]
    l2: bool,
    /// End-to-end delay (Delay_Req).
    #[arg(short = 'E', long, group = "delay")]
    e2e: bool,
    /// Peer-to-peer delay (Pdelay_Req).
    #[arg(short = 'P', long, group = "delay")]
    p2p: bool,
    /// The domain (0-255).
    #[arg(long, value_name = "N")]
    domain: Option<u8>,
    /// Software timestamps (the default).
    #[arg(short = 'S', group = "timestamps")]
    software: bool,
    /// The NIC's hardware timestamps.
    #[arg(short = 'H', group = "timestamps")]
    hardware: bool,
    /// auto (the system clock with -S, the NIC's PHC with -H), system, or a PHC device
    /// such as /dev/ptp0.
    #[arg(long, value_name = "C")]
    clock: Option<String>,
    /// When steering a PHC, keep the system clock on it (as phc2sys does).
    #[arg(long)]
    sync_system: bool,
    /// Measure and report only; needs no CAP_SYS_TIME.
    #[arg(long)]
    observe: bool,
    /// JSON lines instead of ptp4l-like lines.
    #[arg(long)]
    json: bool,
    /// Prometheus /metrics and JSON /status here (e.g. 127.0.0.1:9102).
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<SocketAddr>,
    /// The clock identity to use, e.g. 02:00:00:ff:fe:00:00:01 (default: from the MAC).
    #[arg(long, value_name = "ID")]
    clock_identity: Option<String>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "S", value_parser = positive_seconds)]
    duration: Option<f64>,
    /// A summary line every N samples (default 16; 0: none).
    #[arg(long, value_name = "N")]
    summary: Option<u32>,
    /// Check the configuration, print it and exit.
    #[arg(long)]
    check_config: bool,
    /// Print a completion script for a shell (bash, zsh, fish, ...) and exit.
    #[arg(long, value_name = "SHELL")]
    completions: Option<clap_complete::Shell>,
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err("a positive number of seconds".into()),
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("ptp-slave: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(shell) = cli.completions {
        let mut command = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut command, "ptp-slave", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let word = |w: &str| Some(w.to_string());
    let flags = PtpConfigFile {
        interface: cli.interface.clone(),
        profile: cli.profile.clone(),
        domain: cli.domain,
        clock: cli.clock.clone(),
        clock_identity: cli.clock_identity.clone(),
        metrics_listen: cli.metrics,
        summary_every: cli.summary,
        observe: cli.observe.then_some(true),
        sync_system: cli.sync_system.then_some(true),
        transport: match (cli.udp4, cli.udp6, cli.l2) {
            (true, _, _) => word("udp4"),
            (_, true, _) => word("udp6"),
            (_, _, true) => word("l2"),
            _ => None,
        },
        delay_mechanism: match (cli.e2e, cli.p2p) {
            (true, _) => word("e2e"),
            (_, true) => word("p2p"),
            _ => None,
        },
        timestamping: match (cli.software, cli.hardware) {
            (true, _) => word("software"),
            (_, true) => word("hardware"),
            _ => None,
        },
        ..PtpConfigFile::default()
    };
    let (file, json, check_only, duration) = (cli.config, cli.json, cli.check_config, cli.duration);
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
