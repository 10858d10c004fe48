//! What the demo prints and draws: chronyc-like `sources` and `tracking`, the statistics
//! against the bars, and an SVG of every node's true offset.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::stats::RunResult;

/// Seconds in a short human unit, signed, like chronyc's offsets.
pub fn human(seconds: f64) -> String {
    let a = seconds.abs();
    if !a.is_finite() {
        return "-".into();
    }
    let (value, unit) = if a >= 1.0 {
        (seconds, "s")
    } else if a >= 1e-3 {
        (seconds * 1e3, "ms")
    } else if a >= 1e-6 {
        (seconds * 1e6, "us")
    } else {
        (seconds * 1e9, "ns")
    };
    format!("{value:+.0}{unit}")
}

fn unsigned(seconds: f64) -> String {
    human(seconds).trim_start_matches(['+', '-']).to_string()
}

/// The `sources` table of the demo client.
pub fn sources(result: &RunResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "MS Name/IP             Stratum Poll Reach LastRx Last sample"
    );
    let _ = writeln!(
        out,
        "==============================================================================="
    );
    for row in &result.sources {
        let last_rx = if row.last_rx.is_finite() {
            format!("{:.0}", row.last_rx)
        } else {
            "-".into()
        };
        let _ = writeln!(
            out,
            "^{} {:<20} {:>7} {:>4} {:>5o} {:>6} {:>9} +/- {}",
            row.mark,
            row.name,
            row.stratum,
            row.poll,
            row.reach,
            last_rx,
            human(row.offset),
            unsigned(row.error),
        );
    }
    out
}

/// The `tracking` summary of the demo client.
pub fn tracking(result: &RunResult) -> String {
    let Some(t) = &result.tracking else {
        return String::new();
    };
    let fast = |v: f64| if v >= 0.0 { "fast" } else { "slow" };
    let mut out = String::new();
    let _ = writeln!(out, "Reference ID    : {}", t.reference);
    let _ = writeln!(out, "Stratum         : {}", t.stratum);
    let _ = writeln!(
        out,
        "System time     : {:.9} seconds {} of true time (the simulator knows)",
        t.true_offset.abs(),
        fast(t.true_offset)
    );
    let _ = writeln!(out, "Last offset     : {:+.9} seconds", t.last_offset);
    let _ = writeln!(
        out,
        "Frequency       : {:.3} ppm {}",
        t.frequency_ppm.abs(),
        fast(t.frequency_ppm)
    );
    let _ = writeln!(
        out,
        "Residual freq   : {:+.3} ppm",
        t.residual_frequency_ppm
    );
    let _ = writeln!(out, "Skew            : {:.3} ppm", t.skew_ppm);
    let _ = writeln!(
        out,
        "True freq error : {:+.3} ppm",
        t.true_frequency_error_ppm
    );
    let _ = writeln!(out, "Root delay      : {:.9} seconds", t.root_delay);
    let _ = writeln!(out, "Root dispersion : {:.9} seconds", t.root_dispersion);
    let _ = writeln!(out, "Update interval : {:.1} seconds", t.update_interval);
    let _ = writeln!(out, "Leap status     : {}", t.leap);
    out
}

/// What the client measured of each server, every tenth of the run: where a server
/// serves bad time while its own clock stays true, this is where it shows.
pub fn seen(result: &RunResult) -> String {
    let mut out = String::new();
    if result.seen.is_empty() {
        return out;
    }
    let _ = write!(
        out,
        "What the client measures of each server (server - client)\n{:>8}",
        "time"
    );
    for (name, _) in &result.seen {
        let _ = write!(out, " {name:>9}");
    }
    let _ = writeln!(out);
    for k in 1..=10 {
        let at = result.duration * f64::from(k) / 10.0;
        let _ = write!(out, "{:>7.0}s", at);
        for (_, points) in &result.seen {
            let last = points.iter().take_while(|(t, _)| *t <= at).last();
            let _ = write!(out, " {:>9}", last.map_or("-".into(), |(_, o)| human(*o)));
        }
        let _ = writeln!(out);
    }
    out
}

/// Statistics of every node and the bars of the tracked one.
pub fn summary(result: &RunResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Scenario {} (seed {}): {:.0} s simulated in {:.3} s ({:.0}x real time)",
        result.scenario,
        result.seed,
        result.duration,
        result.wall_seconds,
        result.duration / result.wall_seconds.max(1e-9)
    );
    let _ = writeln!(
        out,
        "{:<10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>6}",
        "node", "sync (s)", "RMS", "max", "mean", "RMS freq", "steps"
    );
    for node in &result.nodes {
        let Some(s) = node.stats else { continue };
        let _ = writeln!(
            out,
            "{:<10} {:>10} {:>10} {:>10} {:>10} {:>8.3} ppm {:>6}",
            node.name,
            s.sync_time.map_or("never".into(), |t| format!("{t:.0}")),
            unsigned(s.rms_offset),
            unsigned(s.max_offset),
            unsigned(s.mean_abs_offset),
            s.rms_frequency_ppm,
            node.steps
        );
    }
    for c in &result.checks {
        let _ = writeln!(
            out,
            "  {} {:<38} {}",
            if c.passed { "PASS" } else { "FAIL" },
            c.what,
            bar_text(&c.what, c.measured, c.bar)
        );
    }
    out
}

/// A measured value against its bar in the bar's unit: "226 s (bar 400 s)", "85us (bar
/// 1ms)", "0.012 ppm (bar 0.100 ppm)".
fn bar_text(what: &str, measured: f64, bar: f64) -> String {
    if what.contains("(ppm)") {
        format!("{measured:.3} ppm (bar {bar:.3} ppm)")
    } else if what.starts_with("sync time") {
        let m = if measured.is_finite() {
            format!("{measured:.0} s")
        } else {
            "never".into()
        };
        format!("{m} (bar {bar:.0} s)")
    } else {
        format!("{} (bar {})", unsigned(measured), unsigned(bar))
    }
}

/// Draws every node's true offset over time, and what the demo client measured of each
/// of its servers.
pub fn svg(result: &RunResult, path: &Path) -> Result<(), String> {
    let height = if result.seen.is_empty() { 500 } else { 900 };
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = if result.seen.is_empty() {
        (root.clone(), None)
    } else {
        let (a, b) = root.split_vertically(450);
        (a, Some(b))
    };
    // Clip the y range to the scale of the settled part, so a start far off does not
    // flatten the rest (the first seconds are then cut off at the edge).
    let settled = |n: &crate::stats::NodeTrace| {
        n.stats
            .map_or(1e-3, |s| s.max_offset.max(s.rms_offset * 3.0))
    };
    let span = result.nodes.iter().map(settled).fold(1e-9f64, f64::max) * 1.5;
    let clocks: Vec<(String, Vec<(f64, f64)>)> = result
        .nodes
        .iter()
        .map(|n| {
            let points = n.times.iter().copied().zip(n.offsets.iter().copied());
            (n.name.clone(), points.collect())
        })
        .collect();
    let caption = format!("{}: true offset of each node's clock", result.scenario);
    line_chart(
        &top,
        &caption,
        "clock - truth",
        result.duration,
        span,
        &clocks,
        0,
    )?;
    if let Some(area) = bottom {
        // The scale of the honest servers' offsets (the median server's largest after
        // the start), so a drifting one runs off the top and the others stay readable.
        let mut spans: Vec<f64> = result
            .seen
            .iter()
            .map(|(_, p)| {
                let n = p.len();
                p.iter()
                    .skip(n / 10)
                    .fold(1e-9f64, |m, (_, o)| m.max(o.abs()))
            })
            .collect();
        spans.sort_by(f64::total_cmp);
        let span = spans.get(spans.len() / 2).copied().unwrap_or(1e-3) * 4.0;
        let caption = "what the client measures of each server (server - client)";
        line_chart(
            &area,
            caption,
            "measured offset",
            result.duration,
            span,
            &result.seen,
            5,
        )?;
    }
    root.present().map_err(|e| e.to_string())
}

/// One chart of lines in seconds over `0..duration`, its y range +/- `span` in the unit
/// that suits it; a line that leaves the range is cut at its edge and its label says how
/// far it went.
fn line_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    y_name: &str,
    duration: f64,
    span: f64,
    series: &[(String, Vec<(f64, f64)>)],
    first_color: usize,
) -> Result<(), String> {
    let (scale, unit) = if span < 1e-6 {
        (1e9, "ns")
    } else if span < 1e-3 {
        (1e6, "us")
    } else {
        (1e3, "ms")
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..duration, -span * scale..span * scale)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(format!("{y_name} ({unit})"))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(first_color + i).to_rgba();
        let label = match points.last() {
            Some((_, o)) if o.abs() > span => {
                format!("{name} (off the scale: {} at the end)", human(*o))
            }
            _ => name.clone(),
        };
        let clipped = points
            .iter()
            .map(|(t, o)| (*t, (o * scale).clamp(-span * scale, span * scale)));
        chart
            .draw_series(LineSeries::new(clipped, color.stroke_width(1)))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}
