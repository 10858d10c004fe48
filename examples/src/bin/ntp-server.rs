//! `ntp-server`: an NTP server daemon.
//!
//! ```text
//! ntp-server [--config FILE] [--listen ADDR:PORT]... [--threads N] [--local-stratum N]
//!            [--kernel] [--upstream HOST]... [--metrics ADDR:PORT] [--log-level LEVEL]
//!            [--observe] [--check-config]
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use tempora_examples::config::ConfigFile;
use tempora_examples::ntp_client::UpstreamConfig;
use tempora_examples::ntp_server::{NtpServer, ServerConfig, TimeSource};

/// Serves NTP on the given addresses (default `0.0.0.0:123` and `[::]:123`). Flags override
/// the TOML file; every key is in docs/ntp-server.md.
#[derive(Parser)]
#[command(name = "ntp-server", version, about)]
struct Cli {
    /// The TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
    /// An address to serve on (repeatable; replaces the file's `listen`).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    /// Sockets and threads per address (0: one per CPU).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Serve the local clock at this stratum (1-15), as chrony's `local stratum N`.
    #[arg(long, value_name = "N", group = "source")]
    local_stratum: Option<u8>,
    /// Serve whatever disciplines the kernel clock (its adjtimex state).
    #[arg(long, group = "source")]
    kernel: bool,
    /// An upstream server to follow: a boundary server (repeatable).
    #[arg(long, value_name = "HOST[:PORT]", group = "source")]
    upstream: Vec<String>,
    /// Serve Prometheus /metrics and JSON /status here.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<SocketAddr>,
    /// error, warn, info, debug or trace.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// With an upstream source: never steer the clock.
    #[arg(long)]
    observe: bool,
    /// Check the configuration, print it as TOML and exit.
    #[arg(long)]
    check_config: bool,
    /// Print a completion script for a shell (bash, zsh, fish, ...) and exit.
    #[arg(long, value_name = "SHELL")]
    completions: Option<clap_complete::Shell>,
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("ntp-server: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(shell) = cli.completions {
        let mut command = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut command, "ntp-server", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let mut config = ServerConfig::default();
    if let Some(path) = &cli.config {
        config = match ServerConfig::from_file(path) {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
    }
    if !cli.listen.is_empty() {
        config.listen = cli.listen;
    }
    if let Some(n) = cli.threads {
        config.threads = n;
    }
    if let Some(stratum) = cli.local_stratum {
        config.source = TimeSource::Local { stratum };
    }
    if cli.kernel {
        config.source = TimeSource::Kernel {
            stratum: 1,
            reference_id: "KERN".into(),
        };
    }
    if !cli.upstream.is_empty() {
        config.source = TimeSource::Upstream(Box::new(UpstreamConfig {
            servers: cli.upstream,
            ..UpstreamConfig::default()
        }));
    }
    if let Some(m) = cli.metrics {
        config.metrics_listen = Some(m);
    }
    if let Some(l) = cli.log_level {
        config.log_level = l;
    }
    config.observe |= cli.observe;
    let check = cli.check_config;
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
