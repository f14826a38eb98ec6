//! `cargo xtask bench cluster`: the gateway bench's load on gateways that
//! share one PostgreSQL database, with one node and with two.
//!
//! Each row starts from a fresh database: N `smpp gateway --database URL`
//! nodes (each with both upstream connectors, `binds=2`: the cluster
//! holds two binds per connector, shared among the nodes), and N `smpp
//! bench --receipt` clients at once, client i to node i as its own account
//! `benchI` (so every client's receipts are its own; a receipt reaches the
//! client through whichever node holds the upstream bind it came back on,
//! then the node the client is bound to). The rate is the receipts of all
//! clients over the longest client's wall time; CPU per message for the
//! clients, each node, the two upstreams and PostgreSQL (every `postgres`
//! process of the machine). Rounds are interleaved (1 node, 2 nodes, ...);
//! medians.

use std::process::Command;
use std::time::Duration;

use super::{bench_run, fresh_database, options, pids_named, upstream, Cpu, Options, Sample};
use crate::bench_e2e::measure::load_average;
use crate::bench_e2e::{clean_cargo, Bins, Server};
use crate::{run, Result};

const PASSWORD: &str = "benchpw";

/// The database the nodes share (made afresh for every row).
const DEFAULT_DATABASE: &str = "postgres://postgres@127.0.0.1:5432/bench_cluster";

struct Row {
    nodes: usize,
    samples: Vec<Sample>,
}

pub(crate) fn run_cluster(args: &[&str]) -> Result {
    let o = options(args)?;
    let url = o
        .database
        .clone()
        .unwrap_or_else(|| DEFAULT_DATABASE.into());
    if !args.contains(&"--no-build") {
        run(clean_cargo().args(["build", "--release", "--locked", "-p", "smpp-cli"]))?;
    }
    let bins = Bins {
        smpp: super::target_dir().join("release/smpp"),
        bench: std::path::PathBuf::new(),
        one_worker: !args.contains(&"--shared-cores"),
    };
    let (up_a, _) = upstream(&bins, "upstream a: smpp serve --memory", &o)?;
    let (up_b, _) = upstream(&bins, "upstream b: smpp serve --memory", &o)?;
    let load_before = load_average();
    let mut rows: Vec<Row> = [1, 2]
        .into_iter()
        .map(|nodes| Row {
            nodes,
            samples: Vec::new(),
        })
        .collect();
    for round in 1..=o.rounds {
        eprintln!("\n==> round {round} of {}", o.rounds);
        for row in &mut rows {
            let s = measure(
                &bins,
                &o,
                &url,
                row.nodes,
                [up_a.port, up_b.port],
                [up_a.pid(), up_b.pid()],
            )?;
            eprintln!(
                "{} node(s): {:>9.0} msg/s e2e  accepted {} receipts {}{}",
                row.nodes,
                s.e2e,
                s.accepted,
                s.receipts,
                if s.clean { "" } else { "  (NOT CLEAN)" }
            );
            row.samples.push(s);
        }
    }
    let load_after = load_average();
    let (name, admin) = super::split_database(&url)?;
    let _ = run(Command::new("psql").args([
        &admin,
        "-X",
        "-q",
        "-c",
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    ]));
    println!(
        "| nodes | msg/s end to end | accepted/s | accepted | receipts | submit p50 / p99 ms | receipt p50 / p99 ms | CPU µs/msg | clean runs |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for row in &rows {
        let m = |f: fn(&Sample) -> f64| median(row.samples.iter().map(f).collect());
        let pair = |f: fn(&Sample) -> Option<(f64, f64)>| {
            let p50 = median(row.samples.iter().filter_map(f).map(|p| p.0).collect());
            let p99 = median(row.samples.iter().filter_map(f).map(|p| p.1).collect());
            format!("{p50:.1} / {p99:.1}")
        };
        let labels: Vec<String> = row.samples[0].cpu.iter().map(|(l, _)| l.clone()).collect();
        let cpu: Vec<String> = labels
            .iter()
            .enumerate()
            .map(|(i, label)| {
                let us = median(
                    row.samples
                        .iter()
                        .filter_map(|s| s.cpu.get(i).map(|c| c.1))
                        .collect(),
                );
                format!("{label} {us:.1}")
            })
            .collect();
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {}/{} |",
            row.nodes,
            m(|s| s.e2e),
            m(|s| s.accepted_rate),
            m(|s| s.accepted as f64),
            m(|s| s.receipts as f64),
            pair(|s| s.submit_ms),
            pair(|s| s.receipt_ms),
            cpu.join(", "),
            row.samples.iter().filter(|s| s.clean).count(),
            row.samples.len(),
        );
    }
    println!(
        "\n{} round(s) of {} s; {} binds × window {} in all (split among the clients), \
         160-character GSM texts, receipts requested; upstream receipts after {}; \
         1-minute load average {} before, {} after",
        o.rounds,
        o.secs,
        o.sessions,
        o.window,
        o.dlr_delay,
        load_before.as_deref().unwrap_or("?"),
        load_after.as_deref().unwrap_or("?"),
    );
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One row's run: `nodes` gateways on a fresh database, a client each.
fn measure(
    bins: &Bins,
    o: &Options,
    url: &str,
    nodes: usize,
    upstreams: [u16; 2],
    upstream_pids: [u32; 2],
) -> Result<Sample> {
    fresh_database(url)?;
    let mut gateways = Vec::new();
    for n in 0..nodes {
        let mut c = bins.command(&bins.smpp);
        c.args(["gateway", "--listen", "127.0.0.1:0", "--database", url]);
        for i in 1..=nodes {
            c.args(["--account", &format!("bench{i}:{PASSWORD}")]);
        }
        for (name, port) in [("a", upstreams[0]), ("b", upstreams[1])] {
            c.arg("--upstream").arg(format!(
                "{name}=smppclient1:password@127.0.0.1:{port},binds={},window={}",
                o.up_binds, o.up_window
            ));
        }
        c.args(["--route", "*=a+b"]);
        gateways.push(Server::start(&format!("smpp gateway node {}", n + 1), c)?);
        // The first node makes the schema; the others find it.
        std::thread::sleep(Duration::from_millis(300));
    }
    // Binds up, shared among the nodes (each node looks every second).
    std::thread::sleep(Duration::from_millis(3000));
    let mut procs = vec![("smpp bench".to_owned(), vec!["children".to_owned()])];
    for (i, g) in gateways.iter().enumerate() {
        procs.push((format!("node {}", i + 1), vec![g.pid().to_string()]));
    }
    procs.push((
        "2 × smpp serve".into(),
        upstream_pids.iter().map(u32::to_string).collect(),
    ));
    procs.push((
        "PostgreSQL".into(),
        pids_named("postgres").iter().map(u32::to_string).collect(),
    ));
    let cpu = Cpu::start(procs);
    let mut per_client = o.clone_for_share(nodes);
    per_client.jasmin = false;
    let samples: Vec<Sample> = std::thread::scope(|scope| {
        let runs: Vec<_> = gateways
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let (port, user, o) = (g.port, format!("bench{}", i + 1), &per_client);
                scope.spawn(move || bench_run(bins, port, &user, PASSWORD, o, None))
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap_or_default())
            .collect()
    });
    // Before the nodes stop: waited for, they would count as children (the clients).
    let cpu = cpu.per_message(samples.iter().map(|s| s.receipts).sum());
    drop(gateways);
    let mut total = Sample {
        clean: samples.iter().all(|s| s.clean),
        ..Sample::default()
    };
    let wall = samples.iter().map(|s| s.wall).fold(0.0, f64::max);
    for s in &samples {
        total.accepted += s.accepted;
        total.receipts += s.receipts;
        total.unmatched += s.unmatched;
        total.accepted_rate += s.accepted_rate;
    }
    total.wall = wall;
    total.e2e = total.receipts as f64 / wall.max(f64::EPSILON);
    // The slower client's latencies (the worse of the two).
    total.submit_ms = samples
        .iter()
        .filter_map(|s| s.submit_ms)
        .max_by(|a, b| a.1.total_cmp(&b.1));
    total.receipt_ms = samples
        .iter()
        .filter_map(|s| s.receipt_ms)
        .max_by(|a, b| a.1.total_cmp(&b.1));
    total.cpu = cpu;
    Ok(total)
}
