//! `ntp-client`: one-shot queries, the disciplining daemon, its status, and a wait for
//! synchronisation.
//!
//! ```text
//! ntp-client query [--json] [--samples N] [--timeout S] [--nts [--ca-file F]] HOST[:PORT]...
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

use clap::{Args, Parser, Subcommand};
use tempora_examples::config::ConfigFile;
use tempora_examples::http::{StatusServer, get};
use tempora_examples::ntp_client::query::{QueryConfig, query, render};
use tempora_examples::ntp_client::{
    ClientConfig, ClientRuntime, ClientStatus, render_status, status_handler,
};

/// Asks NTP servers the time, runs the client daemon, and reads its status.
#[derive(Parser)]
#[command(name = "ntp-client", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Asks every address of every host a short burst, prints what each answered and the
    /// selected, combined offset; changes nothing. Exit 0 with a sane estimate, 1 with a
    /// one-line reason otherwise (like `ntpdate -q` or `sntp`).
    Query(QueryArgs),
    /// The daemon: polls the sources, selects, steers the system clock (observe-only
    /// without CAP_SYS_TIME or with --observe). Every config key is in docs/ntp-client.md.
    Run(RunArgs),
    /// The running daemon's sources and tracking tables, as chronyc prints them.
    Status(StatusArgs),
    /// Exits 0 once the daemon is synchronised with |offset| within the bound, 1 at the
    /// timeout: for boot ordering.
    Wait(WaitArgs),
    /// What time it is, give or take how much: reads the clock error bound the daemon
    /// publishes (`[clock_bound]`, ClockBound's segment) and prints earliest, latest, the
    /// bound and the status. Exit 0 when the status is Synchronized or FreeRunning, 1
    /// otherwise, 2 when there is no segment to read.
    Now(NowArgs),
    /// Prints a completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Args)]
struct QueryArgs {
    /// JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Requests per address.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    samples: u32,
    /// Seconds to wait for each answer (more than 0, at most 60).
    #[arg(long, default_value_t = 1.0, value_parser = seconds_up_to_60)]
    timeout: f64,
    /// Authenticate with NTS (RFC 8915): the hosts are NTS-KE servers (port 4460 unless
    /// given); answers that do not authenticate are not used.
    #[arg(long)]
    nts: bool,
    /// With --nts: a PEM file of CA certificates trusted besides the system's.
    #[arg(long, value_name = "FILE", requires = "nts")]
    ca_file: Option<std::path::PathBuf>,
    /// Servers, HOST or HOST:PORT.
    #[arg(required = true, value_name = "HOST[:PORT]")]
    hosts: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    /// The TOML configuration file; the flags below override it.
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
    /// Measure and report, never steer.
    #[arg(long)]
    observe: bool,
    /// A server to poll (repeatable; replaces the file's `servers`).
    #[arg(long = "server", value_name = "HOST[:PORT]")]
    servers: Vec<String>,
    /// Serve /status and /metrics here.
    #[arg(long, value_name = "ADDR:PORT")]
    status_listen: Option<SocketAddr>,
    /// error, warn, info, debug or trace.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
}

#[derive(Args)]
struct StatusArgs {
    /// JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Where the daemon serves its status.
    #[arg(long, default_value = "127.0.0.1:9124", value_name = "ADDR:PORT")]
    address: SocketAddr,
}

#[derive(Args)]
struct WaitArgs {
    /// The largest |offset| that counts as synchronised, seconds.
    #[arg(long, default_value_t = 0.1, value_parser = positive_seconds)]
    bound: f64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300.0, value_parser = positive_seconds)]
    timeout: f64,
    /// Where the daemon serves its status.
    #[arg(long, default_value = "127.0.0.1:9124", value_name = "ADDR:PORT")]
    address: SocketAddr,
}

#[derive(Args)]
struct NowArgs {
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
    /// The segment the daemon writes (`clock_bound.path`).
    #[arg(long, default_value = tempora_sys_clock::clock_bound::DEFAULT_PATH, value_name = "FILE")]
    path: std::path::PathBuf,
    /// Wait (up to --timeout) until the status is Synchronized with a bound within this
    /// many seconds.
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds)]
    within: Option<f64>,
    /// With --within: give up after this many seconds.
    #[arg(long, default_value_t = 300.0, value_parser = positive_seconds, requires = "within")]
    timeout: f64,
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err("a positive number of seconds".into()),
    }
}

fn seconds_up_to_60(text: &str) -> Result<f64, String> {
    positive_seconds(text)
        .ok()
        .filter(|v| *v <= 60.0)
        .ok_or_else(|| "seconds, more than 0 and at most 60".into())
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("ntp-client: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Query(a) => query_command(a),
        Command::Run(a) => run_command(a),
        Command::Status(a) => status_command(a),
        Command::Wait(a) => wait_command(a),
        Command::Now(a) => now_command(a),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "ntp-client", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}

fn query_command(args: QueryArgs) -> ExitCode {
    let nts = if args.nts {
        let tls = tempora_examples::nts::client_roots(args.ca_file.as_deref()).and_then(|roots| {
            tempora_examples::nts::client_tls(roots).map_err(|source| {
                tempora_examples::nts::KeFailure::Tls {
                    host: String::new(),
                    source,
                }
            })
        });
        match tls {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("ntp-client: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let config = QueryConfig {
        samples: args.samples,
        timeout: Duration::from_secs_f64(args.timeout),
        nts,
        ..QueryConfig::default()
    };
    let report = query(&args.hosts, &config);
    let text = if args.json {
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

fn run_command(args: RunArgs) -> ExitCode {
    let mut config = ClientConfig::default();
    if let Some(path) = &args.config {
        config = match ClientConfig::from_file(path) {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
    }
    config.observe |= args.observe;
    if !args.servers.is_empty() {
        config.upstream.servers = args.servers;
    }
    if let Some(a) = args.status_listen {
        config.status_listen = a;
    }
    if let Some(l) = args.log_level {
        config.log_level = l;
    }
    if let Err(e) = config.validate() {
        return fail(if args.config.is_some() {
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
    let upstream = config.upstream.clone();
    let runtime = match ClientRuntime::start(config.upstream.clone(), config.observe) {
        Ok(u) => Arc::new(u),
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let status = match StatusServer::start(config.status_listen, status_handler(runtime.clone())) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot serve status on {}: {e}", config.status_listen);
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        "polling {} source(s); status on http://{}/status, metrics on /metrics",
        upstream.servers.len()
            + upstream.server.len()
            + upstream.pools.len() * upstream.pool_size
            + upstream.refclock.len(),
        status.address()
    );
    let mut last_sync = false;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        let s = runtime.status();
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
    runtime.stop();
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

fn fetch_status(address: SocketAddr) -> Result<ClientStatus, String> {
    let body = get(address, "/status").map_err(|e| {
        format!("cannot reach the daemon at {address}: {e} (is `ntp-client run` running?)")
    })?;
    serde_json::from_str(&body).map_err(|e| format!("unreadable status from {address}: {e}"))
}

fn status_command(args: StatusArgs) -> ExitCode {
    match fetch_status(args.address) {
        Ok(s) => {
            let text = if args.json {
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

fn now_command(args: NowArgs) -> ExitCode {
    use tempora_sys_clock::clock_bound::{ClockBoundReader, wait_until_synchronized};
    let reading = match args.within {
        Some(within) => {
            match wait_until_synchronized(&args.path, within, Duration::from_secs_f64(args.timeout))
            {
                Ok(r) => Ok(r),
                Err(e @ tempora_sys_clock::Error::WaitTimedOut { .. }) => {
                    eprintln!("ntp-client: {e}");
                    return ExitCode::FAILURE;
                }
                Err(e) => Err(e),
            }
        }
        None => ClockBoundReader::open(&args.path).and_then(|r| r.now()),
    };
    let reading = match reading {
        Ok(r) => r,
        Err(e) => {
            return fail(format!(
                "{e} (is `ntp-client run` publishing it? see [clock_bound])"
            ));
        }
    };
    let stamp = |ns: i128| {
        let seconds = ns.div_euclid(1_000_000_000);
        let nanos = ns.rem_euclid(1_000_000_000);
        format!("{seconds}.{nanos:09}")
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "earliest_ns": reading.earliest_ns.to_string(),
                "now_ns": reading.now_ns.to_string(),
                "latest_ns": reading.latest_ns.to_string(),
                "bound_ns": reading.bound_ns,
                "status": reading.status.name(),
            })
        );
    } else {
        println!("Earliest : {} s", stamp(reading.earliest_ns));
        println!("Now      : {} s", stamp(reading.now_ns));
        println!("Latest   : {} s", stamp(reading.latest_ns));
        println!("Bound    : {:.9} s", reading.bound_ns as f64 * 1e-9);
        println!("Status   : {}", reading.status.name());
    }
    if reading.status.is_trusted() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn wait_command(args: WaitArgs) -> ExitCode {
    let (address, bound, timeout) = (args.address, args.bound, args.timeout);
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
