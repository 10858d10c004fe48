//! `ntp-client`: query NTP servers (observe-only).
//!
//! ```text
//! ntp-client query [--json] [--samples N] [--timeout S] HOST[:PORT]...
//! ```

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use tempora_examples::ntp::query::{QueryConfig, query, render};

const USAGE: &str = "usage: ntp-client query [--json] [--samples N] [--timeout S] HOST[:PORT]...
  Asks every address of every host a short burst of questions, prints what each answered
  and the selected, combined offset; changes nothing. Exit status 0 when a sane estimate
  exists, 1 with a one-line reason otherwise, 2 on bad arguments.";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("query") => {}
        Some("-h" | "--help") | None => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
        Some(other) => {
            eprintln!(
                "ntp-client: unknown command {other:?} (the daemon comes with a later release)\n{USAGE}"
            );
            return ExitCode::from(2);
        }
    }
    let mut config = QueryConfig::default();
    let mut json = false;
    let mut hosts = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--samples" => match args
                .next()
                .and_then(|v| v.parse::<u32>().ok())
                .filter(|n| (1..=64).contains(n))
            {
                Some(n) => config.samples = n,
                None => {
                    eprintln!("ntp-client: --samples takes a number from 1 to 64");
                    return ExitCode::from(2);
                }
            },
            "--timeout" => match args
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|t| *t > 0.0 && *t <= 60.0)
            {
                Some(t) => config.timeout = Duration::from_secs_f64(t),
                None => {
                    eprintln!("ntp-client: --timeout takes seconds, more than 0 and at most 60");
                    return ExitCode::from(2);
                }
            },
            other if other.starts_with("--") => {
                eprintln!("ntp-client: unknown option {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
            host => hosts.push(host.to_string()),
        }
    }
    if hosts.is_empty() {
        eprintln!("ntp-client: no server given\n{USAGE}");
        return ExitCode::from(2);
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
