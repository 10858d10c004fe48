//! `ntp-client`: one-shot queries, the disciplining daemon, its status, and a wait for
//! synchronisation.
//!
//! ```text
//! ntp-client query [--json] [--samples N] [--timeout S] HOST[:PORT]...
//! ntp-client run [--config FILE] [--observe] [--server HOST]... [--status-listen ADDR]
//! ntp-client status [--json] [--address ADDR]
//! ntp-client wait [--bound S] [--timeout S] [--address ADDR]
//! ```

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tempora_examples::http::{StatusServer, get};
use tempora_examples::ntp::client::{ClientConfig, render_status, status_handler};
use tempora_examples::ntp::query::{QueryConfig, query, render};
use tempora_examples::ntp::upstream::{ClientStatus, Upstream};

const USAGE: &str = "usage:
  ntp-client query [--json] [--samples N] [--timeout S] HOST[:PORT]...
      Asks every address of every host a short burst, prints what each answered and the
      selected, combined offset; changes nothing. Exit 0 with a sane estimate, 1 with a
      one-line reason otherwise.
  ntp-client run [--config FILE] [--observe] [--server HOST]... [--status-listen ADDR]
      The daemon: polls the sources, selects, steers the system clock (observe-only
      without CAP_SYS_TIME or with --observe). Every config key is in the README.
  ntp-client status [--json] [--address ADDR]
      The running daemon's sources and tracking tables (default 127.0.0.1:9124).
  ntp-client wait [--bound S] [--timeout S] [--address ADDR]
      Exits 0 once the daemon is synchronised with |offset| within the bound (default
      0.1 s), 1 at the timeout (default 300 s): for boot ordering.
Exit status 2: bad arguments.";

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("ntp-client: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        return fail(USAGE);
    }
    let command = args.remove(0);
    match command.as_str() {
        "query" => query_command(args),
        "run" => run_command(args),
        "status" => status_command(args),
        "wait" => wait_command(args),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => fail(format!("unknown command {other:?}\n{USAGE}")),
    }
}

fn query_command(args: Vec<String>) -> ExitCode {
    let mut config = QueryConfig::default();
    let mut json = false;
    let mut hosts = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--samples" => match args
                .next()
                .and_then(|v| v.parse::<u32>().ok())
                .filter(|n| (1..=64).contains(n))
            {
                Some(n) => config.samples = n,
                None => return fail("--samples takes a number from 1 to 64"),
            },
            "--timeout" => match args
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|t| *t > 0.0 && *t <= 60.0)
            {
                Some(t) => config.timeout = Duration::from_secs_f64(t),
                None => return fail("--timeout takes seconds, more than 0 and at most 60"),
            },
            other if other.starts_with("--") => {
                return fail(format!("unknown option {other:?}\n{USAGE}"));
            }
            host => hosts.push(host.to_string()),
        }
    }
    if hosts.is_empty() {
        return fail(format!("no server given\n{USAGE}"));
    }
    let report = query(&hosts, &config);
    let text = if json {
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
    } else {
        render(&report)
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    match &report.failure {
        None => ExitCode::SUCCESS,
        Some(reason) => {
            eprintln!("ntp-client: no estimate: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn run_command(args: Vec<String>) -> ExitCode {
    let mut config = ClientConfig::default();
    let mut from_file = false;
    if let Some(i) = args.iter().position(|a| a == "--config") {
        let Some(path) = args.get(i + 1) else {
            return fail("--config takes a file");
        };
        config = match ClientConfig::from_file(path) {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        from_file = true;
    }
    let mut servers = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" => {
                it.next();
            }
            "--observe" => config.observe = true,
            "--server" => match it.next() {
                Some(s) => servers.push(s.clone()),
                None => return fail("--server takes HOST[:PORT]"),
            },
            "--status-listen" => match it.next().and_then(|a| a.parse::<SocketAddr>().ok()) {
                Some(a) => config.status_listen = a,
                None => return fail("--status-listen takes ADDR:PORT"),
            },
            "--log-level" => match it.next() {
                Some(l) => config.log_level = l.clone(),
                None => return fail("--log-level takes a level"),
            },
            other => return fail(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if !servers.is_empty() {
        config.servers = servers;
    }
    if let Err(e) = config.validate() {
        return fail(if from_file {
            e.to_string()
        } else {
            format!("{e} (use --config FILE or --server HOST)")
        });
    }
    tempora_examples::startup::init_logging(&config.log_level);
    let stop = match tempora_examples::startup::stop_flag() {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot handle signals: {e}")),
    };
    let upstream = match Upstream::start(config.upstream()) {
        Ok(u) => Arc::new(u),
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let status = match StatusServer::start(config.status_listen, status_handler(upstream.clone())) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot serve status on {}: {e}", config.status_listen);
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        "polling {} source(s); status on http://{}/status, metrics on /metrics",
        config.servers.len() + config.pools.len() * config.pool_size + config.refclock.len(),
        status.address()
    );
    let mut last_sync = false;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        let s = upstream.status();
        if s.tracking.synchronised != last_sync {
            last_sync = s.tracking.synchronised;
            if last_sync {
                tracing::info!(
                    "synchronised to {} (stratum {}), offset {:+.6} s",
                    s.tracking.reference,
                    s.tracking.stratum,
                    s.tracking.system_offset
                );
            } else {
                tracing::warn!("lost synchronisation");
            }
        }
    }
    drop(status);
    upstream.stop();
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

fn fetch_status(address: SocketAddr) -> Result<ClientStatus, String> {
    let body = get(address, "/status").map_err(|e| {
        format!("cannot reach the daemon at {address}: {e} (is `ntp-client run` running?)")
    })?;
    serde_json::from_str(&body).map_err(|e| format!("unreadable status from {address}: {e}"))
}

fn address_option(args: &[String]) -> Result<SocketAddr, String> {
    match args.iter().position(|a| a == "--address") {
        Some(i) => args
            .get(i + 1)
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| "--address takes ADDR:PORT".to_string()),
        None => Ok(ClientConfig::default().status_listen),
    }
}

fn status_command(args: Vec<String>) -> ExitCode {
    let address = match address_option(&args) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    for a in args.iter().filter(|a| a.starts_with("--")) {
        if a != "--json" && a != "--address" {
            return fail(format!("unknown option {a:?}"));
        }
    }
    match fetch_status(address) {
        Ok(s) => {
            let text = if args.iter().any(|a| a == "--json") {
                serde_json::to_string_pretty(&s).unwrap_or_default() + "\n"
            } else {
                render_status(&s)
            };
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ntp-client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn number_option(args: &[String], name: &str, default: f64) -> Result<f64, String> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| *v > 0.0 && v.is_finite())
            .ok_or_else(|| format!("{name} takes a positive number of seconds")),
        None => Ok(default),
    }
}

fn wait_command(args: Vec<String>) -> ExitCode {
    let (address, bound, timeout) = match (
        address_option(&args),
        number_option(&args, "--bound", 0.1),
        number_option(&args, "--timeout", 300.0),
    ) {
        (Ok(a), Ok(b), Ok(t)) => (a, b, t),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return fail(e),
    };
    let end = Instant::now() + Duration::from_secs_f64(timeout);
    let mut last = String::from("no status yet");
    while Instant::now() < end {
        match fetch_status(address) {
            Ok(s) if s.tracking.synchronised && s.tracking.system_offset.abs() <= bound => {
                println!(
                    "synchronised to {}: offset {:+.6} s within {bound} s",
                    s.tracking.reference, s.tracking.system_offset
                );
                return ExitCode::SUCCESS;
            }
            Ok(s) if s.tracking.synchronised => {
                last = format!(
                    "offset {:+.6} s is beyond {bound} s",
                    s.tracking.system_offset
                );
            }
            Ok(_) => last = "not synchronised yet".into(),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("ntp-client: not synchronised within {timeout} s: {last}");
    ExitCode::FAILURE
}
