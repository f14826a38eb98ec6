//! `cargo xtask bench codec`: runs the codec race and prints the README table.
//! `cargo xtask bench [e2e]`: the end-to-end race (see `bench_e2e`).
//! `cargo xtask bench gateway`: the gateway race (see `bench_gateway`).
//! `cargo xtask bench idle`: memory per idle bind, up to 100,000 binds (see `bench_idle`).
//! `cargo xtask bench store`: the durable store's candidate engines on one
//! workload (`crates/smpp-bench/src/bin/store-race.rs`).

use std::fmt::Write as _;

use crate::{cargo, root, run, Result};

/// Groups of the race, in README order.
const GROUPS: [&str; 8] = [
    "decode/submit_sm",
    "encode/submit_sm",
    "decode/deliver_sm_receipt",
    "encode/deliver_sm_receipt",
    "decode/submit_sm_resp",
    "encode/submit_sm_resp",
    "decode/enquire_link",
    "encode/enquire_link",
];

const OURS: &str = "smpp-proto";
/// Must match `STREAM_FRAMES` in `crates/smpp-bench/benches/codec_race.rs`.
const STREAM_FRAMES: f64 = 64.0;
const PEERS: [&str; 2] = ["rusmpp", "smpp34"];

pub(crate) fn run_bench(args: &[&str]) -> Result {
    match args {
        ["codec"] => {
            run(cargo().args([
                "bench",
                "-p",
                "smpp-bench",
                "--bench",
                "codec_race",
                "--locked",
            ]))?;
            println!("{}", table()?);
            Ok(())
        }
        ["codec", "--table-only"] => {
            println!("{}", table()?);
            Ok(())
        }
        ["store", rest @ ..] => run(cargo()
            .args([
                "run",
                "--release",
                "--locked",
                "-p",
                "smpp-bench",
                "--bin",
                "store-race",
                "--",
            ])
            .args(rest)),
        ["gateway", rest @ ..] => crate::bench_gateway::run_gateway(rest),
        ["cluster", rest @ ..] => crate::bench_gateway::run_cluster(rest),
        ["idle", rest @ ..] => crate::bench_idle::run_idle(rest),
        [] => crate::bench_e2e::run_e2e(&[]),
        ["e2e", rest @ ..] => crate::bench_e2e::run_e2e(rest),
        [first, ..] if first.starts_with("--") => crate::bench_e2e::run_e2e(args),
        _ => Err("usage: cargo xtask bench codec [--table-only]\n       \
                  cargo xtask bench store [--secs S] [--rounds N]\n       \
                  cargo xtask bench idle [--binds 1000,10000,100000] [--no-build] [--shared-cores]\n       \
                  cargo xtask bench gateway [--rounds N] [--secs S] [--sessions N] [--window W] [--jasmin-count M]\n                                            [--no-jasmin] [--quick] [--json] [--no-build] [--shared-cores]\n       \
                  cargo xtask bench cluster [--rounds N] [--secs S] [--sessions N] [--window W] [--database URL] [--quick] [--no-build]\n       \
                  cargo xtask bench [e2e] [--quick] [--runs N] [--secs S] [--no-build] [--shared-cores]"
            .into()),
    }
}

/// Criterion's median estimate for one benchmark, in nanoseconds.
fn median_ns(group: &str, function: &str) -> Result<Option<f64>> {
    let path = root()
        .join("target/criterion")
        .join(group.replace('/', "_"))
        .join(function)
        .join("new/estimates.json");
    let Ok(json) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let median = json
        .find("\"median\"")
        .ok_or_else(|| format!("{}: no median", path.display()))?;
    let rest = &json[median..];
    let at = rest
        .find("\"point_estimate\":")
        .ok_or_else(|| format!("{}: no point estimate", path.display()))?;
    let number: String = rest[at + 17..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == 'e' || *c == '-')
        .collect();
    number
        .parse()
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 100.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{ns:.1} ns")
    }
}

fn table() -> Result<String> {
    let mut out = String::from(
        "| operation | smpp-proto | smpp-proto (stream) | rusmpp 0.4.0 | smpp34 1.5.1 | vs faster peer |\n|---|---|---|---|---|---|\n",
    );
    for group in GROUPS {
        let ours = median_ns(group, OURS)?
            .ok_or_else(|| format!("no result for {group}/{OURS}: run the bench first"))?;
        // The stream variant decodes STREAM_FRAMES frames per iteration.
        let stream = median_ns(group, "smpp-proto-stream")?.map(|t| t / STREAM_FRAMES);
        let peers: Vec<Option<f64>> = PEERS
            .iter()
            .map(|p| median_ns(group, p))
            .collect::<Result<_>>()?;
        let fastest_peer = peers
            .iter()
            .flatten()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let best_ours = stream.map_or(ours, |s| s.min(ours));
        let _ = writeln!(
            out,
            "| {group} | {} | {} | {} | {} | {:.2}x |",
            fmt_ns(ours),
            stream.map_or("–".into(), fmt_ns),
            peers[0].map_or("–".into(), fmt_ns),
            peers[1].map_or("–".into(), fmt_ns),
            fastest_peer / best_ours
        );
    }
    Ok(out)
}
