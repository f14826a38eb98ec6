//! `smpp bench --plot FILE.svg` against an in-process test SMSC: the file is
//! well-formed SVG with the expected panels and series.

mod bench_support;

use std::path::Path;
use std::time::Duration;

use bench_support::{run_limited, Behaviour, TestSmsc};

const LIMIT: Duration = Duration::from_secs(60);

/// A drawn data series: its colour and its points (pixels).
#[derive(Debug)]
struct Series {
    stroke: String,
    points: Vec<(f64, f64)>,
}

struct Svg {
    height: f64,
    texts: Vec<String>,
    /// The data lines (width 2; axes, grid and legend marks are width 1).
    series: Vec<Series>,
    circles: usize,
}

fn read_svg(path: &Path) -> Svg {
    let text = std::fs::read_to_string(path).expect("the plot was written");
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let height: f64 = root.attribute("height").unwrap().parse().unwrap();
    let mut texts = Vec::new();
    let mut series = Vec::new();
    let mut circles = 0;
    for node in root.descendants().filter(|n| n.is_element()) {
        match node.tag_name().name() {
            "text" => texts.push(node.text().unwrap_or("").trim().to_owned()),
            "circle" => circles += 1,
            "polyline" if node.attribute("stroke-width") == Some("2") => {
                let points = node
                    .attribute("points")
                    .unwrap()
                    .split_whitespace()
                    .map(|p| {
                        let (x, y) = p.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect();
                let stroke = node.attribute("stroke").unwrap().to_owned();
                series.push(Series { stroke, points });
            }
            _ => {}
        }
    }
    Svg {
        height,
        texts,
        series,
        circles,
    }
}

fn has(svg: &Svg, text: &str) -> bool {
    svg.texts.iter().any(|t| t == text)
}

#[test]
fn plot_draws_throughput_and_latency_percentiles_over_time() {
    let smsc = TestSmsc::start(Behaviour::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.svg");
    let out = run_limited(
        smsc.smpp("bench")
            .args(["--duration", "1s", "--rate", "2000", "--window", "8"])
            .args(["--plot-interval", "100ms", "--plot"])
            .arg(&path),
        LIMIT,
    );
    assert!(out.status.success(), "{out:?}");
    let svg = read_svg(&path);
    for text in [
        "Throughput over time",
        "Submit latency over time",
        "time (s)",
        "submit_sm/s",
        "latency (µs)",
        "throughput",
        "p50",
        "p90",
        "p99",
        "max",
    ] {
        assert!(has(&svg, text), "no {text:?} in {:?}", svg.texts);
    }
    // Throughput, then p50, p90, p99 and max, one point per 100 ms.
    assert_eq!(svg.series.len(), 5, "{:?}", svg.series);
    let n = svg.series[0].points.len();
    assert!((8..=13).contains(&n), "{n} samples over 1 s");
    let colours: Vec<&str> = svg.series.iter().map(|s| s.stroke.as_str()).collect();
    assert_eq!(colours[1..], ["#1F77B4", "#FF7F0E", "#2CA02C", "#D62728"]);
    for s in &svg.series {
        assert_eq!(s.points.len(), n, "every series has every sample");
        assert!(
            s.points.windows(2).all(|w| w[0].0 < w[1].0),
            "time moves right"
        );
    }
    // The throughput line in the top panel, the latencies in the bottom one.
    let half = svg.height / 2.0;
    assert!(svg.series[0].points.iter().all(|p| p.1 < half));
    assert!(svg.series[1..]
        .iter()
        .all(|s| s.points.iter().all(|p| p.1 > half)));
    // Percentiles are ordered: p50 lowest on screen, i.e. the largest y.
    for (i, p50) in svg.series[1].points.iter().enumerate() {
        assert!(p50.1 >= svg.series[3].points[i].1, "p50 above p99 at {i}");
    }
}

#[test]
fn plot_of_a_sweep_draws_against_the_window_and_over_time() {
    let smsc = TestSmsc::start(Behaviour::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sweep.svg");
    let out = run_limited(
        smsc.smpp("bench")
            .args([
                "--count",
                "600",
                "--sweep-window",
                "1,4,16",
                "--json",
                "--plot",
            ])
            .arg(&path),
        LIMIT,
    );
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["sweep"].as_array().unwrap().len(), 3);
    let svg = read_svg(&path);
    for text in [
        "Throughput against the window",
        "Submit latency against the window",
        "Throughput over time",
        "Submit latency over time",
        "throughput",
        "p99",
        "throughput, window 1",
        "throughput, window 16",
        "p99, window 4",
    ] {
        assert!(has(&svg, text), "no {text:?} in {:?}", svg.texts);
    }
    // Against the window: throughput and 4 percentiles over 3 windows (a
    // marker per point); over time: throughput and p99 per window.
    assert_eq!(svg.series.len(), 1 + 4 + 3 + 3, "{:?}", svg.series);
    assert!(svg.series[..5].iter().all(|s| s.points.len() == 3));
    assert_eq!(svg.circles, 3 + 4 * 3);
    // Windows 1, 4, 16 on a log axis: equally spaced.
    let xs: Vec<f64> = svg.series[0].points.iter().map(|p| p.0).collect();
    assert!(((xs[1] - xs[0]) - (xs[2] - xs[1])).abs() <= 2.0, "{xs:?}");
}
