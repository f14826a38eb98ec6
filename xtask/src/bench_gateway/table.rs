//! The gateway table (markdown) and its JSON: medians of the rounds, ratios
//! to Jasmin within the same run, the targets met or missed.

use std::fmt::Write as _;

use super::{Kind, Sample};

fn median(v: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = v.into_iter().collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Medians of one contender's rounds.
struct Row {
    e2e: f64,
    accepted_rate: f64,
    accepted: f64,
    upstream: f64,
    receipts: f64,
    unmatched: f64,
    submit: Option<(f64, f64)>,
    receipt: Option<(f64, f64)>,
    cpu: Vec<(String, f64)>,
    wall: f64,
    clean: usize,
    runs: usize,
}

fn row(samples: &[Sample]) -> Row {
    let m = |f: &dyn Fn(&Sample) -> f64| median(samples.iter().map(f));
    let pair = |f: &dyn Fn(&Sample) -> Option<(f64, f64)>| {
        let have: Vec<(f64, f64)> = samples.iter().filter_map(f).collect();
        (!have.is_empty()).then(|| {
            (
                median(have.iter().map(|p| p.0)),
                median(have.iter().map(|p| p.1)),
            )
        })
    };
    let labels: Vec<String> = samples
        .iter()
        .find(|s| !s.cpu.is_empty())
        .map(|s| s.cpu.iter().map(|(l, _)| l.clone()).collect())
        .unwrap_or_default();
    let cpu = labels
        .into_iter()
        .map(|label| {
            let v = median(
                samples
                    .iter()
                    .filter_map(|s| s.cpu.iter().find(|(l, _)| *l == label).map(|(_, v)| *v)),
            );
            (label, v)
        })
        .collect();
    Row {
        e2e: m(&|s| s.e2e),
        accepted_rate: m(&|s| s.accepted_rate),
        accepted: m(&|s| s.accepted as f64),
        upstream: m(&|s| s.upstream as f64),
        receipts: m(&|s| s.receipts as f64),
        unmatched: m(&|s| s.unmatched as f64),
        submit: pair(&|s| s.submit_ms),
        receipt: pair(&|s| s.receipt_ms),
        cpu,
        wall: m(&|s| s.wall),
        clean: samples.iter().filter(|s| s.clean).count(),
        runs: samples.len(),
    }
}

fn ms(p: Option<(f64, f64)>) -> String {
    let f = |v: f64| {
        if v >= 100.0 {
            format!("{v:.0}")
        } else if v >= 1.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.2}")
        }
    };
    p.map_or("–".into(), |(a, b)| format!("{} / {}", f(a), f(b)))
}

fn cpu_cell(cpu: &[(String, f64)]) -> String {
    if cpu.is_empty() {
        return "–".into();
    }
    cpu.iter()
        .map(|(l, v)| {
            if *v >= 100.0 {
                format!("{l} {v:.0}")
            } else {
                format!("{l} {v:.1}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The e2e median of `kind`, when it ran.
fn e2e_of(kinds: &[Kind], rows: &[Row], kind: Kind) -> Option<f64> {
    kinds.iter().position(|k| *k == kind).map(|i| rows[i].e2e)
}

pub(super) fn markdown(kinds: &[Kind], samples: &[Vec<Sample>], note: &str) -> String {
    let rows: Vec<Row> = samples.iter().map(|s| row(s)).collect();
    let jasmin = e2e_of(kinds, &rows, Kind::JasminSmpp);
    let jasmin_http = e2e_of(kinds, &rows, Kind::JasminHttp);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nGateway end to end over loopback, with receipts: medians of {note}.\n\
         msg/s end to end: receipts received by the customer per second of the client's wall-clock time. \
         Accepted, at upstream, receipts: messages per run (median); receipts (+N): N more arrived \
         that were owed from an earlier run. \
         CPU: user + system µs per completed message, per process (10 ms ticks).\n"
    );
    out.push_str(
        "| path | msg/s end to end | accepted/s | accepted | at upstream | receipts | submit p50 / p99 ms | receipt p50 / p99 ms | CPU µs/msg | vs Jasmin SMPP | clean runs |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (kind, r) in kinds.iter().zip(&rows) {
        let vs = match jasmin {
            Some(j) if j > 0.0 => format!("{:.0}x", r.e2e / j),
            _ => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0}{} | {} | {} | {} | {vs} | {}/{} |",
            kind.label(),
            r.e2e,
            r.accepted_rate,
            r.accepted,
            r.upstream,
            r.receipts,
            if r.unmatched > 0.0 {
                format!(" (+{:.0})", r.unmatched)
            } else {
                String::new()
            },
            ms(r.submit),
            ms(r.receipt),
            cpu_cell(&r.cpu),
            r.clean,
            r.runs
        );
    }
    let mark = |ok: bool| if ok { "met" } else { "MISSED" };
    let _ = writeln!(out, "\nTargets (this run):");
    if let Some(g) = e2e_of(kinds, &rows, Kind::Gateway) {
        let _ = writeln!(
            out,
            "- gateway, durable store, >= 100,000 msg/s end to end with receipts: {g:.0} ({})",
            mark(g >= 100_000.0)
        );
        if let Some(c) = e2e_of(kinds, &rows, Kind::Ceiling).filter(|c| *c > 0.0) {
            let _ = writeln!(out, "- gateway / ceiling: {:.2}x", g / c);
        }
        for (name, j) in [("SMPP", jasmin), ("HTTP", jasmin_http)] {
            match j {
                Some(j) if j > 0.0 => {
                    let _ = writeln!(
                        out,
                        "- gateway >= 100x Jasmin ({name}, same run): {:.0}x ({})",
                        g / j,
                        mark(g >= 100.0 * j)
                    );
                }
                Some(_) => {
                    let _ = writeln!(out, "- Jasmin ({name}) completed nothing end to end");
                }
                None => {}
            }
        }
    }
    out
}

pub(super) fn json(kinds: &[Kind], samples: &[Vec<Sample>], note: &str) -> String {
    let rows: Vec<serde_json::Value> = kinds
        .iter()
        .zip(samples)
        .map(|(kind, s)| {
            let r = row(s);
            let pair = |p: Option<(f64, f64)>| {
                p.map_or(
                    serde_json::Value::Null,
                    |(a, b)| serde_json::json!({"p50": a, "p99": b}),
                )
            };
            let cpu: serde_json::Map<String, serde_json::Value> = r
                .cpu
                .iter()
                .map(|(l, v)| (l.clone(), serde_json::json!(v)))
                .collect();
            serde_json::json!({
                "path": kind.key(),
                "label": kind.label(),
                "e2e_per_s": r.e2e,
                "accepted_per_s": r.accepted_rate,
                "accepted": r.accepted,
                "at_upstream": r.upstream,
                "receipts": r.receipts,
                "late_receipts": r.unmatched,
                "submit_ms": pair(r.submit),
                "receipt_ms": pair(r.receipt),
                "cpu_us_per_msg": cpu,
                "wall_s": r.wall,
                "clean_runs": r.clean,
                "runs": r.runs,
            })
        })
        .collect();
    serde_json::json!({ "note": note, "rows": rows }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(e2e: f64, cpu: f64) -> Sample {
        Sample {
            e2e,
            accepted: 10,
            receipts: 10,
            submit_ms: Some((1.0, 2.0)),
            cpu: vec![("gw".into(), cpu)],
            clean: true,
            ..Default::default()
        }
    }

    #[test]
    fn the_table_shows_medians_ratios_and_targets() {
        let kinds = [Kind::Gateway, Kind::JasminSmpp];
        let samples = vec![
            vec![
                sample(120_000.0, 5.0),
                sample(90_000.0, 7.0),
                sample(110_000.0, 6.0),
            ],
            vec![
                sample(100.0, 900.0),
                sample(150.0, 800.0),
                sample(50.0, 1000.0),
            ],
        ];
        let t = markdown(&kinds, &samples, "test");
        assert!(t.contains("| 110000 |"), "{t}");
        assert!(t.contains("gw 6.0"), "{t}");
        assert!(t.contains("| 1100x |"), "{t}");
        assert!(
            t.contains("100,000 msg/s end to end with receipts: 110000 (met)"),
            "{t}"
        );
        assert!(t.contains("Jasmin (SMPP, same run): 1100x (met)"), "{t}");
        let j: serde_json::Value = serde_json::from_str(&json(&kinds, &samples, "n")).unwrap();
        assert_eq!(j["rows"][0]["e2e_per_s"], 110_000.0);
        assert_eq!(j["rows"][1]["cpu_us_per_msg"]["gw"], 900.0);
    }
}
