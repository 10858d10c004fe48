//! `tempora-sim`: run a scenario, print chronyc-like tables and statistics, draw an SVG.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use tempora_sim::{Variant, all, by_name, report, run};

const USAGE: &str = "usage: tempora-sim [--scenario NAME] [--seed N] [--duration SECONDS] [--json]
                   [--svg PATH] [--rfc | --slew-only] [--list] [--compare]

With no arguments, runs the `hierarchy` scenario and writes tempora-sim-hierarchy.svg.
  --scenario NAME  run this scenario (see --list)
  --seed N         seed of the run (default 1): the same seed gives the same run
  --duration S     simulated seconds (default: the scenario's)
  --json           print the result as JSON instead of tables
  --svg PATH       where to write the plot (default tempora-sim-NAME.svg)
  --rfc            use the RFC 5905 reference chain (clock filter and PLL/FLL)
  --slew-only      never step the clock
  --list           list the scenarios
  --compare        run every scenario with the default and the RFC chain, print a table";

struct Args {
    scenario: String,
    seed: u64,
    duration: Option<f64>,
    json: bool,
    svg: Option<PathBuf>,
    variant: Variant,
    list: bool,
    compare: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        scenario: "hierarchy".into(),
        seed: 1,
        duration: None,
        json: false,
        svg: None,
        variant: Variant::Default,
        list: false,
        compare: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--scenario" => args.scenario = value("--scenario")?,
            "--seed" => {
                args.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--duration" => {
                let d: f64 = value("--duration")?
                    .parse()
                    .map_err(|e| format!("--duration: {e}"))?;
                if !(d.is_finite() && d > 0.0 && d <= 30.0 * 86_400.0) {
                    return Err("--duration must be between 0 and 30 days of seconds".into());
                }
                args.duration = Some(d);
            }
            "--json" => args.json = true,
            "--svg" => args.svg = Some(PathBuf::from(value("--svg")?)),
            "--rfc" => args.variant = Variant::Rfc,
            "--slew-only" => args.variant = Variant::SlewOnly,
            "--list" => args.list = true,
            "--compare" => args.compare = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("tempora-sim: {e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let mut out = String::new();
    let code = body(&args, &mut out);
    // A reader that stops early (`| head`, `| grep -q`) closes the pipe: that is not an error.
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    code
}

fn body(args: &Args, out: &mut String) -> ExitCode {
    if args.list {
        for s in all() {
            let _ = writeln!(out, "{:<20} {}", s.name, s.description);
        }
        return ExitCode::SUCCESS;
    }
    if args.compare {
        let _ = writeln!(
            out,
            "| scenario | chain | sync time | RMS offset | max offset | RMS freq | bars |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        for s in all() {
            for (label, variant) in [("default", Variant::Default), ("RFC 5905", Variant::Rfc)] {
                if label == "RFC 5905" && matches!(s.world, tempora_sim::scenario::World::Ptp(_)) {
                    continue;
                }
                let r = run(&s, args.seed, args.duration, variant);
                let Some(st) = r.tracked().and_then(|n| n.stats) else {
                    continue;
                };
                let (rms, max, freq) = if st.sync_time.is_some() {
                    (
                        report::human(st.rms_offset)
                            .trim_start_matches('+')
                            .to_string(),
                        report::human(st.max_offset)
                            .trim_start_matches('+')
                            .to_string(),
                        format!("{:.3} ppm", st.rms_frequency_ppm),
                    )
                } else {
                    ("-".into(), "-".into(), "-".into())
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {rms} | {max} | {freq} | {} |",
                    s.name,
                    label,
                    st.sync_time
                        .map_or("not within the run".into(), |t| format!("{t:.0} s")),
                    if r.passed() { "met" } else { "missed" }
                );
            }
        }
        return ExitCode::SUCCESS;
    }
    let Some(scenario) = by_name(&args.scenario) else {
        eprintln!(
            "tempora-sim: no scenario {:?}; --list shows them",
            args.scenario
        );
        return ExitCode::from(2);
    };
    let result = run(&scenario, args.seed, args.duration, args.variant);
    if args.json {
        match serde_json::to_string_pretty(&result) {
            Ok(json) => {
                let _ = writeln!(out, "{json}");
            }
            Err(e) => {
                eprintln!("tempora-sim: {e}");
                return ExitCode::FAILURE;
            }
        }
        return if result.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let _ = writeln!(out, "{}: {}\n", scenario.name, scenario.description);
    if !result.sources.is_empty() {
        let _ = writeln!(out, "{}", report::sources(&result));
        let _ = writeln!(out, "{}", report::tracking(&result));
        let _ = writeln!(out, "{}", report::seen(&result));
    }
    let _ = write!(out, "{}", report::summary(&result));
    let path = args
        .svg
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("tempora-sim-{}.svg", scenario.name)));
    match report::svg(&result, &path) {
        Ok(()) => {
            let _ = writeln!(
                out,
                "\nPlot of every node's true offset and of what the client measures of \
                 each server: {}",
                path.display()
            );
        }
        Err(e) => eprintln!("tempora-sim: could not write {}: {e}", path.display()),
    }
    if result.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
