//! `cargo xtask bench idle [--binds 1000,10000,100000] [--no-build] [--shared-cores]`:
//! server memory per idle bound session, and how many concurrent binds
//! `smpp serve --memory` holds.
//!
//! For each count a fresh `smpp serve --memory` starts; `smpp-bench
//! idle-binds` opens that many transmitter binds (from several loopback
//! source addresses, 127.0.0.2 upwards, above 20,000 so ephemeral ports do
//! not run out) and holds them; the figure is the server's VmRSS after the
//! binds less before, over the binds. The open-file limit of this process
//! (inherited by both) is raised to fit: the soft limit to the hard one, and
//! the hard one as well where we may (root).

use std::process::Command;
use std::time::Duration;

use crate::bench_e2e::measure::idle_rss;
use crate::bench_e2e::{clean_cargo, Bins, Server};
use crate::{run, Result};

pub(crate) fn run_idle(args: &[&str]) -> Result {
    let counts: Vec<usize> = match args.iter().position(|a| *a == "--binds") {
        Some(i) => args
            .get(i + 1)
            .ok_or("--binds needs a list, e.g. 1000,10000")?
            .split(',')
            .map(|n| n.trim().replace('_', "").parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| format!("--binds: {e}"))?,
        None => vec![1_000, 10_000, 100_000],
    };
    if !args.contains(&"--no-build") {
        run(clean_cargo().args([
            "build",
            "--release",
            "--locked",
            "-p",
            "smpp-cli",
            "--bin",
            "smpp",
            "-p",
            "smpp-bench",
            "--bin",
            "smpp-bench",
        ]))?;
    }
    let most = counts.iter().copied().max().unwrap_or(0) as u64;
    // Each bind is a descriptor on both sides; both processes inherit ours.
    let limit = raise_file_limit(most + 4096);
    eprintln!("open-file limit: {limit:?} (for {most} binds)");
    let release = crate::bench_e2e::target_dir().join("release");
    let bins = Bins {
        smpp: release.join("smpp"),
        bench: release.join("smpp-bench"),
        one_worker: !args.contains(&"--shared-cores"),
    };
    let mut rows = Vec::new();
    for &binds in &counts {
        let server = Server::start("smpp serve --memory", {
            let mut c: Command = bins.command(&bins.smpp);
            c.args(["serve", "--memory", "--listen", "127.0.0.1:0"]);
            c
        })?
        .with_grace(Duration::from_secs(20));
        std::thread::sleep(Duration::from_secs(1)); // let it settle
        let rss = idle_rss(&bins, &server, binds);
        drop(server);
        let per = match (rss.bound, rss.before_kib, rss.after_kib) {
            (Some(bound), Some(before), Some(after)) if bound > 0 => {
                let per = after.saturating_sub(before) as f64 / bound as f64;
                eprintln!(
                    "{binds} binds: {bound} bound; server VmRSS {before} KiB -> {after} KiB: \
                     {per:.1} KiB per bound session"
                );
                format!("{bound} | {before} | {after} | {per:.1} KiB")
            }
            _ => {
                eprintln!("{binds} binds: failed ({})", rss.note.trim());
                format!("failed ({}) | | |", rss.note.trim())
            }
        };
        rows.push(format!("| {binds} | {per} |"));
    }
    println!(
        "| binds asked | bound | server VmRSS before (KiB) | after (KiB) | per bound session |"
    );
    println!("|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}

/// Raises RLIMIT_NOFILE towards `wanted`: both limits where we may, else the
/// soft one to the hard one. Returns the soft limit now in force.
fn raise_file_limit(wanted: u64) -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    if now.current.is_none_or(|soft| soft >= wanted) {
        return now.current;
    }
    let both = Rlimit {
        current: Some(wanted),
        maximum: Some(now.maximum.map_or(wanted, |hard| hard.max(wanted))),
    };
    if setrlimit(Resource::Nofile, both).is_err() {
        let soft = Rlimit {
            current: now.maximum,
            maximum: now.maximum,
        };
        let _ = setrlimit(Resource::Nofile, soft);
    }
    getrlimit(Resource::Nofile).current
}
