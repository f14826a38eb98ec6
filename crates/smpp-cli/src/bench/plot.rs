//! `smpp bench --plot FILE.svg`: the run's throughput and submit latency
//! percentiles over time, and with `--sweep-window` both against the
//! window, drawn as SVG with plotters (its SVG backend only: no bitmap, no
//! font files; text is written as SVG `<text>`).

use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::Report;

/// One point of a run's time series: what was answered in one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The interval's end, seconds from the first submit.
    pub t_s: f64,
    /// Accepted submit_sm per second over the interval.
    pub throughput: f64,
    /// Submit latency of the interval's accepted submits, µs: p50, p90,
    /// p99 and max (`None` when none was accepted in it).
    pub latency_us: Option<[f64; 4]>,
}

/// The latency histogram an interval's submits are recorded in (coarser
/// than the run's: 2 significant digits).
pub(super) fn interval_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).unwrap_or_else(|_| {
        Histogram::new(2).unwrap_or_else(|_| unreachable!("2 digits are valid"))
    })
}

/// Turns one interval's counts into a [`Sample`] (and empties the histogram).
pub(super) fn sample(
    start: Instant,
    now: Instant,
    dt: Duration,
    accepted: u64,
    latency: &mut Histogram<u64>,
) -> Sample {
    let secs = dt.as_secs_f64();
    let latency_us = (!latency.is_empty()).then(|| {
        let q = |q: f64| latency.value_at_quantile(q) as f64;
        [q(0.5), q(0.9), q(0.99), latency.max() as f64]
    });
    latency.reset();
    Sample {
        t_s: now.duration_since(start).as_secs_f64(),
        throughput: if secs > 0.0 {
            accepted as f64 / secs
        } else {
            0.0
        },
        latency_us,
    }
}

/// Folds `short` (covering `short_dt`, right after `prev`, which covers
/// `prev_dt`) into `prev`: the rate over both, the larger of each latency.
pub(super) fn fold(prev: &mut Sample, short: &Sample, prev_dt: Duration, short_dt: Duration) {
    let (a, b) = (prev_dt.as_secs_f64(), short_dt.as_secs_f64());
    if a + b > 0.0 {
        prev.throughput = (prev.throughput * a + short.throughput * b) / (a + b);
    }
    prev.t_s = short.t_s;
    prev.latency_us = match (prev.latency_us, short.latency_us) {
        (Some(p), Some(s)) => Some(std::array::from_fn(|i| p[i].max(s[i]))),
        (p, s) => p.or(s),
    };
}

const PERCENTILES: [&str; 4] = ["p50", "p90", "p99", "max"];

fn palette(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    COLORS[i % COLORS.len()]
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("cannot draw the plot: {e}")
}

/// A range that plotters can draw (not empty), with some room at the top.
fn upper(max: f64) -> f64 {
    if max.is_finite() && max > 0.0 {
        max * 1.1
    } else {
        1.0
    }
}

/// Writes the plot of `reports` (one run, or one per window of a sweep).
pub(super) fn write(path: &Path, reports: &[Report], sweep: bool) -> anyhow::Result<()> {
    let height = if sweep { 1400 } else { 760 };
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    if sweep {
        let panels = root.split_evenly((4, 1));
        against_window(&panels[0], &panels[1], reports)?;
        over_time(&panels[2], &panels[3], reports)?;
    } else {
        let panels = root.split_evenly((2, 1));
        over_time(&panels[0], &panels[1], reports)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Throughput (one line per run) and latency over time: every percentile
/// for one run, p99 per window for a sweep.
fn over_time(top: &Area<'_>, bottom: &Area<'_>, reports: &[Report]) -> anyhow::Result<()> {
    let samples = || reports.iter().flat_map(|r| r.timeline.iter());
    let t_max = upper(samples().map(|s| s.t_s).fold(0.0, f64::max));
    let tp_max = upper(samples().map(|s| s.throughput).fold(0.0, f64::max));
    let lat_max = upper(
        samples()
            .filter_map(|s| s.latency_us)
            .map(|l| if reports.len() == 1 { l[3] } else { l[2] })
            .fold(0.0, f64::max),
    );
    let sweep = reports.len() > 1;
    let label = |r: &Report| format!("window {}", r.window);

    let mut chart = ChartBuilder::on(top)
        .caption("Throughput over time", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..tp_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("submit_sm/s")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(err)?;
    for (i, r) in reports.iter().enumerate() {
        let color = palette(i);
        let points = r.timeline.iter().map(|s| (s.t_s, s.throughput));
        let name = if sweep {
            format!("throughput, {}", label(r))
        } else {
            "throughput".to_owned()
        };
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;

    let mut chart = ChartBuilder::on(bottom)
        .caption("Submit latency over time", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..lat_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("latency (µs)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(err)?;
    if sweep {
        for (i, r) in reports.iter().enumerate() {
            let color = palette(i);
            let points = r
                .timeline
                .iter()
                .filter_map(|s| s.latency_us.map(|l| (s.t_s, l[2])));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(err)?
                .label(format!("p99, {}", label(r)))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
    } else if let Some(r) = reports.first() {
        for (k, name) in PERCENTILES.iter().enumerate() {
            let color = palette(k);
            let points = r
                .timeline
                .iter()
                .filter_map(|s| s.latency_us.map(|l| (s.t_s, l[k])));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(err)?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// A sweep's throughput and latency percentiles against the window (log scale).
fn against_window(top: &Area<'_>, bottom: &Area<'_>, reports: &[Report]) -> anyhow::Result<()> {
    let w_min = reports.iter().map(|r| r.window).min().unwrap_or(1).max(1) as f64;
    let w_max = reports.iter().map(|r| r.window).max().unwrap_or(1).max(1) as f64;
    // A range of one window is widened so the log axis has a span.
    let (w_lo, w_hi) = (w_min / 1.5, w_max * 1.5);
    let tp_max = upper(reports.iter().map(|r| r.throughput).fold(0.0, f64::max));
    let lat = |r: &Report| r.latency_us.as_ref().map(|l| [l.p50, l.p90, l.p99, l.max]);
    let lat_max = upper(
        reports
            .iter()
            .filter_map(lat)
            .map(|l| l[3])
            .fold(0.0, f64::max),
    );

    let mut chart = ChartBuilder::on(top)
        .caption("Throughput against the window", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((w_lo..w_hi).log_scale(), 0.0..tp_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("window (submit_sm in flight per bind)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_desc("submit_sm/s")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(err)?;
    let color = palette(0);
    let points: Vec<(f64, f64)> = reports
        .iter()
        .map(|r| (r.window as f64, r.throughput))
        .collect();
    chart
        .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
        .map_err(err)?
        .label("throughput")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    chart
        .draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 4, color.filled())),
        )
        .map_err(err)?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;

    let mut chart = ChartBuilder::on(bottom)
        .caption("Submit latency against the window", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((w_lo..w_hi).log_scale(), 0.0..lat_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("window (submit_sm in flight per bind)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_desc("latency (µs)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(err)?;
    for (k, name) in PERCENTILES.iter().enumerate() {
        let color = palette(k);
        let points: Vec<(f64, f64)> = reports
            .iter()
            .filter_map(|r| lat(r).map(|l| (r.window as f64, l[k])))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_the_intervals_rate_and_percentiles() {
        let start = Instant::now();
        let mut h = interval_histogram();
        for v in 1..=100 {
            h.record(v * 10).unwrap();
        }
        let s = sample(
            start,
            start + Duration::from_secs(3),
            Duration::from_millis(500),
            250,
            &mut h,
        );
        assert_eq!(s.t_s, 3.0);
        assert_eq!(s.throughput, 500.0);
        let [p50, p90, p99, max] = s.latency_us.unwrap();
        assert!((495.0..=505.0).contains(&p50), "{p50}");
        assert!((895.0..=905.0).contains(&p90), "{p90}");
        assert!((985.0..=1000.0).contains(&p99), "{p99}");
        assert!((995.0..=1010.0).contains(&max), "{max}");
        assert!(h.is_empty(), "the next interval starts empty");
        let idle = sample(start, start, Duration::ZERO, 0, &mut h);
        assert_eq!((idle.throughput, idle.latency_us), (0.0, None));
    }

    #[test]
    fn a_short_last_piece_folds_into_the_sample_before() {
        let mut prev = Sample {
            t_s: 1.0,
            throughput: 1000.0,
            latency_us: Some([10.0, 20.0, 30.0, 40.0]),
        };
        let short = Sample {
            t_s: 1.05,
            throughput: 4000.0,
            latency_us: Some([5.0, 25.0, 25.0, 90.0]),
        };
        let ms = Duration::from_millis;
        fold(&mut prev, &short, ms(150), ms(50));
        assert_eq!(prev.t_s, 1.05);
        assert_eq!(prev.throughput, 1750.0); // (150 + 200) messages in 0.2 s
        assert_eq!(prev.latency_us, Some([10.0, 25.0, 30.0, 90.0]));
    }
}
