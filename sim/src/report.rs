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
            "  {} {:<40} {:>12.6e} (bar {:.6e})",
            if c.passed { "PASS" } else { "FAIL" },
            c.what,
            c.measured,
            c.bar
        );
    }
    out
}

/// Draws every node's true offset over time.
pub fn svg(result: &RunResult, path: &Path) -> Result<(), String> {
    let root = SVGBackend::new(path, (1000, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    // Clip the y range to the scale of the settled part, so a start far off does not
    // flatten the rest (the first seconds are then cut off at the edge).
    let settled = |n: &crate::stats::NodeTrace| {
        n.stats
            .map_or(1e-3, |s| s.max_offset.max(s.rms_offset * 3.0))
    };
    let span = result.nodes.iter().map(settled).fold(1e-9f64, f64::max) * 1.5;
    let scale = if span < 1e-6 {
        1e9
    } else if span < 1e-3 {
        1e6
    } else {
        1e3
    };
    let unit = if scale == 1e9 {
        "ns"
    } else if scale == 1e6 {
        "us"
    } else {
        "ms"
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: true offset of each node", result.scenario),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..result.duration, -span * scale..span * scale)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(format!("clock - truth ({unit})"))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, node) in result.nodes.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points = node
            .times
            .iter()
            .zip(&node.offsets)
            .map(|(t, o)| (*t, (o * scale).clamp(-span * scale, span * scale)));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(1)))
            .map_err(|e| e.to_string())?
            .label(node.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}
