//! `tempora-sim`: run a scenario, print chronyc-like tables and statistics, draw an SVG.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use tempora_sim::{Variant, all, by_name, report, run};

const USAGE: &str = "usage: tempora-sim [--scenario NAME] [--seed N] [--duration SECONDS] [--json]
                   [--svg PATH] [--rfc | --slew-only] [--list] [--compare] [--bounds]

With no arguments, runs the `hierarchy` scenario and writes tempora-sim-hierarchy.svg.
  --scenario NAME  run this scenario (see --list)
  --seed N         seed of the run (default 1): the same seed gives the same run
  --duration S     simulated seconds (default: the scenario's)
  --json           print the result as JSON instead of tables
  --svg PATH       where to write the plot (default tempora-sim-NAME.svg)
  --rfc            use the RFC 5905 reference chain (clock filter and PLL/FLL)
  --slew-only      never step the clock
  --list           list the scenarios
  --compare        run every scenario with the default and the RFC chain, print a table
  --bounds         run every scenario over seeds 1-5 (or --seed N alone) and print how
                   often the error bound an application reads held the truth, its width,
                   and the same for ClockBound's formula; exits non-zero if a bar is missed";

struct Args {
    scenario: String,
    seed: u64,
    duration: Option<f64>,
    json: bool,
    svg: Option<PathBuf>,
    variant: Variant,
    list: bool,
    compare: bool,
    bounds: bool,
    seed_given: bool,
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
        bounds: false,
        seed_given: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--scenario" => args.scenario = value("--scenario")?,
            "--seed" => {
                args.seed_given = true;
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
            "--bounds" => args.bounds = true,
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
    if args.bounds {
        return bounds(args, out);
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

/// `--bounds`: the coverage table.
fn bounds(args: &Args, out: &mut String) -> ExitCode {
    use tempora_sim::coverage::{COVERAGE_BAR, WIDTH_BAR, coverage};
    let seeds: Vec<u64> = if args.seed_given {
        vec![args.seed]
    } else {
        (1..=5).collect()
    };
    let pct = |x: f64| format!("{:.4}%", x * 100.0);
    let h = |x: f64| report::human(x).trim_start_matches('+').to_string();
    let _ = writeln!(
        out,
        "Error bound against the truth, seeds {seeds:?}: coverage is the share of trusted seconds \
         (Synchronized or FreeRunning) whose bound held the true error.\n"
    );
    let _ = writeln!(
        out,
        "| scenario | trusted s | coverage (misses) | median bound | p99 bound | RMS error | median/RMS | ClockBound formula: coverage (misses) | its median | its p99 |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut passed = true;
    for s in all() {
        let Some(c) = coverage(&s, &seeds) else {
            continue;
        };
        passed &= c.passed();
        let _ = writeln!(
            out,
            "| {} | {} of {} | {} ({}) | {} | {} | {} | {:.1}x | {} ({}) | {} | {} |",
            c.scenario,
            c.ours.trusted,
            c.ours.seconds,
            pct(c.ours.coverage()),
            c.ours.misses(),
            h(c.ours.median),
            h(c.ours.p99),
            h(c.rms_error),
            c.width_ratio(),
            if c.clockbound.trusted == 0 {
                "-".to_string()
            } else {
                pct(c.clockbound.coverage())
            },
            c.clockbound.misses(),
            h(c.clockbound.median),
            h(c.clockbound.p99),
        );
    }
    let _ = writeln!(
        out,
        "\nBars: coverage at least {} in every scenario, median bound at most {WIDTH_BAR}x the RMS error: {}",
        pct(COVERAGE_BAR),
        if passed { "met" } else { "MISSED" }
    );
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
