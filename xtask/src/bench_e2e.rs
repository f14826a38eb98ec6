//! `cargo xtask bench [e2e] [--quick] [--runs N] [--secs S] [--no-build] [--shared-cores]`:
//! the end-to-end race, over loopback, in one run:
//!
//! - our client (`smpp bench`) against our server (`smpp serve --memory`,
//!   or the `smpp-bench serve-ours` stand-in while `serve` cannot do it);
//! - the raw ceiling: `smpp-bench client-raw` against `serve-raw`, a
//!   pipelined byte mover with the same frame sizes and no SMPP parsing;
//! - peers from crates.io: the smpp34 client against its own server, ours
//!   against the smpp34 server, the smpp34 client against ours, and the
//!   rusmppc client against ours (see `crates/smpp-bench/src/rusmppc_peer.rs`
//!   for its stall workaround);
//! - p99 latency of ours at half its measured maximum rate;
//! - our server's RSS per idle bound session (1,000 binds), and whether
//!   10,000 concurrent binds are accepted.
//!
//! Every load is run once per round, rounds interleaved, and the table shows
//! medians, so that drift of this noisy shared machine hits every contender
//! alike; the ratios are taken within the same run.
//!
//! Clients and servers share the machine's cores, so by default every
//! process it starts gets one tokio worker thread (`TOKIO_WORKER_THREADS=1`;
//! `smpp bench` runs its load on one thread anyway): on 2 cores, one for
//! each side, instead of 2 workers per server fighting the client for them
//! (which cost our server a sixth of its rate over 4 binds).
//! `--shared-cores` leaves every runtime at its default, a worker per core.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{cargo, root, run, Result};

pub(crate) mod measure;
mod table;

use measure::{idle_rss, load_average, measure, measure_cpu};
use table::{median, table};

/// A server process, stopped when dropped.
pub(crate) struct Server {
    pub(crate) name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    pub(crate) port: u16,
    /// How long a drop waits for it to exit once its stdin is closed.
    grace: Duration,
    /// Every line the process printed on stdout so far.
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `cmd` and waits for its `SMPP listening on ADDR` line.
    pub(crate) fn start(name: &str, cmd: Command) -> Result<Server> {
        Server::start_within(name, cmd, Duration::from_secs(10))
    }

    /// [`Server::start`], waiting up to `limit` for the line.
    pub(crate) fn start_within(name: &str, mut cmd: Command, limit: Duration) -> Result<Server> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{name}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.trim().strip_prefix("SMPP listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let mut server = Server {
            name: name.to_owned(),
            child,
            stdin,
            port: 0,
            grace: Duration::from_secs(2),
            lines,
        };
        let until = Instant::now() + limit;
        let addr = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(addr) => break addr,
                Err(_) if Instant::now() >= until => {
                    return Err(format!(
                        "{name}: no `SMPP listening on` line within {limit:?}"
                    ))
                }
                Err(_) => {
                    if let Ok(Some(status)) = server.child.try_wait() {
                        return Err(format!("{name}: exited ({status}) before listening"));
                    }
                }
            }
        };
        server.port = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("{name}: cannot read the port of {addr:?}"))?;
        Ok(server)
    }

    /// Waits up to `grace` on drop (after closing stdin) before killing it.
    pub(crate) fn with_grace(mut self, grace: Duration) -> Server {
        self.grace = grace;
        self
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The rest of the first stdout line starting with `prefix`, waiting up
    /// to `limit` for it.
    pub(crate) fn line(&self, prefix: &str, limit: Duration) -> Option<String> {
        let until = Instant::now() + limit;
        loop {
            let found = self
                .lines
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .find_map(|l| l.trim().strip_prefix(prefix).map(str::to_owned));
            if found.is_some() || Instant::now() >= until {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take()); // our stand-ins stop when stdin closes
        let until = Instant::now() + self.grace;
        while Instant::now() < until {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One measured load.
#[derive(Clone)]
struct Scenario {
    /// Table row group, e.g. "1 bind, window 64".
    load: &'static str,
    /// "client → server".
    pair: String,
    /// Which server it needs.
    server: Which,
    sessions: u32,
    window: u32,
    kind: ClientKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Ours,
    /// `smpp serve` with its durable store (the default).
    Durable,
    Smpp34,
    Raw,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientKind {
    Ours,
    Smpp34,
    Rusmppc { repoll: u32 },
    Raw,
}

/// What one run of a scenario gave.
#[derive(Clone, Copy, Default)]
struct Sample {
    throughput: f64,
    p50: Option<f64>,
    p99: Option<f64>,
    clean: bool,
    /// CPU time (user + system) per accepted submit_sm, µs: client, server.
    cpu_us: Option<(f64, f64)>,
    /// Seconds the client measured over.
    elapsed: f64,
}

pub(crate) struct Bins {
    pub(crate) smpp: PathBuf,
    pub(crate) bench: PathBuf,
    /// Every process gets one runtime worker thread (see the module docs).
    pub(crate) one_worker: bool,
}

pub(crate) fn run_e2e(args: &[&str]) -> Result {
    let quick = args.contains(&"--quick");
    let value = |name: &str| {
        args.iter()
            .position(|a| *a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let runs = value("--runs").map_or(if quick { 1 } else { 3 }, |v| v.max(1.0) as usize);
    let secs = value("--secs").unwrap_or(if quick { 1.5 } else { 3.0 });
    if !args.contains(&"--no-build") {
        run(clean_cargo().args([
            "build",
            "--release",
            "--locked",
            "-p",
            "smpp-cli",
            "-p",
            "smpp-bench",
        ]))?;
    }
    let release = target_dir().join("release");
    let bins = Bins {
        smpp: release.join("smpp"),
        bench: release.join("smpp-bench"),
        one_worker: !args.contains(&"--shared-cores"),
    };

    // Our server: the real `smpp serve --memory` when it can, else the stand-in.
    let ours = match Server::start("smpp serve --memory", {
        let mut c = bins.command(&bins.smpp);
        c.args(["serve", "--memory", "--listen", "127.0.0.1:0"]);
        c
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xtask: {e}; using the stand-in `smpp-bench serve-ours` (smpp-tokio Server, in-memory ids)");
            Server::start("smpp-bench serve-ours", bench_cmd(&bins, "serve-ours"))?
        }
    };
    // The same server with its durable store, in a fresh directory.
    let store_dir = root().join("target/bench-store");
    let _ = std::fs::remove_dir_all(&store_dir);
    let durable = Server::start("smpp serve (durable store)", {
        let mut c = bins.command(&bins.smpp);
        c.args(["serve", "--listen", "127.0.0.1:0", "--store"])
            .arg(&store_dir);
        c
    })?;
    let smpp34 = Server::start("smpp34 server", bench_cmd(&bins, "serve-smpp34"))?;
    let raw = Server::start("raw server", bench_cmd(&bins, "serve-raw"))?;
    let our_server = if ours.name.starts_with("smpp serve") {
        "smpp serve"
    } else {
        "smpp-tokio Server (stand-in)"
    };

    let load_before = load_average();
    let scenarios = scenarios(our_server);
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); scenarios.len()];
    for round in 1..=runs {
        eprintln!("\n==> round {round} of {runs}");
        for (i, s) in scenarios.iter().enumerate() {
            let port = match s.server {
                Which::Ours => ours.port,
                Which::Durable => durable.port,
                Which::Smpp34 => smpp34.port,
                Which::Raw => raw.port,
            };
            let server_pid = match s.server {
                Which::Ours => ours.pid(),
                Which::Durable => durable.pid(),
                Which::Smpp34 => smpp34.pid(),
                Which::Raw => raw.pid(),
            };
            let sample = measure_cpu(&bins, s, port, secs, server_pid);
            eprintln!(
                "{:<22} {:<40} {:>10.0}/s  cpu µs/msg {}{}",
                s.load,
                s.pair,
                sample.throughput,
                sample
                    .cpu_us
                    .map_or("–".into(), |(c, s)| format!("{c:.2} + {s:.2}")),
                if sample.clean { "" } else { "  (errors)" }
            );
            samples[i].push(sample);
        }
    }

    // p99 at half the maximum rate, 1 bind window 64, in memory and durable.
    let paced: Vec<(Which, f64, Sample)> =
        [(Which::Ours, ours.port), (Which::Durable, durable.port)]
            .into_iter()
            .filter_map(|(server, port)| {
                let i = scenarios.iter().position(|s| {
                    s.kind == ClientKind::Ours
                        && s.server == server
                        && s.sessions == 1
                        && s.window == 64
                })?;
                let rate = median(&samples[i], |s| s.throughput) / 2.0;
                if rate <= 0.0 {
                    return None;
                }
                let s = Scenario {
                    load: "1 bind, window 64",
                    pair: format!("smpp bench --rate {rate:.0}"),
                    server,
                    sessions: 1,
                    window: 64,
                    kind: ClientKind::Ours,
                };
                Some((server, rate, measure(&bins, &s, port, secs, Some(rate))))
            })
            .collect();
    drop(durable);
    let _ = std::fs::remove_dir_all(&store_dir);

    // Memory per idle bound session, and 10,000 concurrent binds.
    let rss = idle_rss(&bins, &ours, 1000);
    let many = if quick {
        None
    } else {
        Some(idle_rss(&bins, &ours, 10_000))
    };

    println!(
        "{}",
        table(
            &scenarios,
            &samples,
            runs,
            secs,
            our_server,
            &paced,
            &rss,
            many.as_ref()
        )
    );
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "Runtime threads: {}.",
        if bins.one_worker {
            "one tokio worker per process (TOKIO_WORKER_THREADS=1; --shared-cores for the default)"
        } else {
            "tokio's default, a worker per core, in every process (--shared-cores)"
        }
    );
    println!(
        "Machine: {cores} cores; 1-minute load average {} before, {} after. Other load makes \
         loopback figures faster and erratic (busy cores do not sleep): with a load above ~0.5 \
         compare the ratios and CPU µs/msg, not the absolute rates.",
        load_before.as_deref().unwrap_or("?"),
        load_average().as_deref().unwrap_or("?")
    );
    Ok(())
}

/// `cargo` without the package variables `cargo run` gave us: build scripts
/// (ring's) watch some of them, so with them set the release build of this
/// command and a plain `cargo build --release` would keep rebuilding each
/// other's dependencies.
/// Where cargo puts its builds: `CARGO_TARGET_DIR`, else the workspace's `target`.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

pub(crate) fn clean_cargo() -> Command {
    let mut c = cargo();
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || key.starts_with("CARGO_CRATE_")
            || key == "CARGO_PRIMARY_PACKAGE"
        {
            c.env_remove(key);
        }
    }
    c
}

impl Bins {
    /// `program`, with one runtime worker thread unless `--shared-cores`.
    pub(crate) fn command(&self, program: &std::path::Path) -> Command {
        let mut c = Command::new(program);
        if self.one_worker {
            c.env("TOKIO_WORKER_THREADS", "1");
        }
        c
    }
}

fn bench_cmd(bins: &Bins, sub: &str) -> Command {
    let mut c = bins.command(&bins.bench);
    c.arg(sub);
    c
}

fn scenarios(our_server: &str) -> Vec<Scenario> {
    let ours = |load, sessions, window| Scenario {
        load,
        pair: format!("smpp bench → {our_server}"),
        server: Which::Ours,
        sessions,
        window,
        kind: ClientKind::Ours,
    };
    let raw = |load, sessions, window| Scenario {
        load,
        pair: "raw ceiling (byte mover, no SMPP)".into(),
        server: Which::Raw,
        sessions,
        window,
        kind: ClientKind::Raw,
    };
    let mut v = Vec::new();
    for (load, sessions, window) in [
        ("1 bind, window 1", 1, 1),
        ("1 bind, window 64", 1, 64),
        ("1 bind, window 256", 1, 256),
        ("1 bind, window 512", 1, 512),
        ("4 binds, window 64", 4, 64),
    ] {
        v.push(raw(load, sessions, window));
        v.push(ours(load, sessions, window));
        if matches!((sessions, window), (1, 64) | (1, 256) | (4, 64)) {
            v.push(Scenario {
                load,
                pair: format!("smpp bench → {our_server}, durable store"),
                server: Which::Durable,
                sessions,
                window,
                kind: ClientKind::Ours,
            });
        }
        if (sessions, window) == (1, 64) || (sessions, window) == (4, 64) {
            v.push(Scenario {
                load,
                pair: "smpp34 client → smpp34 server".into(),
                server: Which::Smpp34,
                sessions,
                window,
                kind: ClientKind::Smpp34,
            });
        }
        if (sessions, window) == (1, 64) {
            v.push(Scenario {
                load,
                pair: "smpp bench → smpp34 server".into(),
                server: Which::Smpp34,
                sessions,
                window,
                kind: ClientKind::Ours,
            });
            v.push(Scenario {
                load,
                pair: format!("smpp34 client → {our_server}"),
                server: Which::Ours,
                sessions,
                window,
                kind: ClientKind::Smpp34,
            });
            v.push(Scenario {
                load,
                pair: format!("rusmppc (re-polled, stall worked around) → {our_server}"),
                server: Which::Ours,
                sessions,
                window,
                kind: ClientKind::Rusmppc {
                    repoll: window / 5 + 2,
                },
            });
        }
    }
    v.push(Scenario {
        load: "1 bind, window 4",
        pair: format!("rusmppc (as shipped) → {our_server}"),
        server: Which::Ours,
        sessions: 1,
        window: 4,
        kind: ClientKind::Rusmppc { repoll: 1 },
    });
    v.push(raw("1 bind, window 4", 1, 4));
    v.push(ours("1 bind, window 4", 1, 4));
    v
}
