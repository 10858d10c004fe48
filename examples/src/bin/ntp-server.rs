//! `ntp-server`: an NTP server daemon.
//!
//! ```text
//! ntp-server [--config FILE] [--listen ADDR:PORT]... [--threads N] [--local-stratum N]
//!            [--kernel] [--upstream HOST]... [--metrics ADDR:PORT] [--log-level LEVEL]
//!            [--observe] [--check-config]
//! ```

use std::process::ExitCode;
use tempora_examples::ntp::server::{NtpServer, ServerConfig, TimeSource};

const USAGE: &str = "usage: ntp-server [--config FILE] [--listen ADDR:PORT]... [--threads N]
                  [--local-stratum N | --kernel | --upstream HOST...]
                  [--metrics ADDR:PORT] [--log-level LEVEL] [--observe] [--check-config]
  Serves NTP on the given addresses (default 0.0.0.0:123 and [::]:123). Flags override
  the TOML file; every key is documented in the README. --check-config parses the
  configuration, prints it as TOML and exits.";

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("ntp-server: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut config = ServerConfig::default();
    if let Some(i) = args.iter().position(|a| a == "--config") {
        let Some(path) = args.get(i + 1) else {
            return fail("--config takes a file");
        };
        config = match ServerConfig::from_file(path) {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
    }
    let mut listen = Vec::new();
    let mut upstream = Vec::new();
    let mut check = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} takes a value"))
        };
        let result: Result<(), String> =
            (|| {
                match arg.as_str() {
                    "--config" => {
                        value("--config")?;
                    }
                    "--listen" => listen.push(value("--listen")?.parse().map_err(
                        |_| "--listen takes ADDR:PORT, e.g. 127.0.0.1:123 or [::1]:123",
                    )?),
                    "--threads" => {
                        config.threads = value("--threads")?
                            .parse()
                            .map_err(|_| "--threads takes a number (0: one per CPU)")?;
                    }
                    "--local-stratum" => {
                        config.source = TimeSource::Local {
                            stratum: value("--local-stratum")?
                                .parse()
                                .map_err(|_| "--local-stratum takes 1-15")?,
                        };
                    }
                    "--kernel" => {
                        config.source = TimeSource::Kernel {
                            stratum: 1,
                            reference_id: "KERN".into(),
                        };
                    }
                    "--upstream" => upstream.push(value("--upstream")?),
                    "--metrics" => {
                        config.metrics_listen = Some(
                            value("--metrics")?
                                .parse()
                                .map_err(|_| "--metrics takes ADDR:PORT, e.g. 127.0.0.1:9123")?,
                        );
                    }
                    "--log-level" => config.log_level = value("--log-level")?,
                    "--observe" => config.observe = true,
                    "--check-config" => check = true,
                    "-h" | "--help" => return Err(USAGE.into()),
                    other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
                }
                Ok(())
            })();
        if let Err(e) = result {
            return fail(e);
        }
    }
    if !listen.is_empty() {
        config.listen = listen;
    }
    if !upstream.is_empty() {
        config.source = TimeSource::Upstream {
            servers: upstream,
            min_poll: 6,
            max_poll: 10,
        };
    }
    if let Err(e) = config.validate() {
        return fail(e);
    }
    if check {
        match toml::to_string(&config) {
            Ok(text) => {
                print!("{text}");
                return ExitCode::SUCCESS;
            }
            Err(e) => return fail(e),
        }
    }
    tempora_examples::startup::init_logging(&config.log_level);
    let stop = match tempora_examples::startup::stop_flag() {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot handle signals: {e}")),
    };
    let server = match NtpServer::start(&config) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        "serving NTP on {} ({} thread(s) per address), time from {}",
        server
            .local_addrs()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        config.effective_threads(),
        server.status_json()["source"].as_str().unwrap_or("?"),
    );
    if let Some(m) = server.metrics_addr() {
        tracing::info!("metrics on http://{m}/metrics, status on http://{m}/status");
    }
    server.run_until(&stop);
    tracing::info!("stopped");
    ExitCode::SUCCESS
}
