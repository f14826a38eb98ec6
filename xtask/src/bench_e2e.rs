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

/// A server process, stopped when dropped.
struct Server {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
}

impl Server {
    /// Starts `cmd` and waits for its `SMPP listening on ADDR` line.
    fn start(name: &str, mut cmd: Command) -> Result<Server> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{name}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.trim().strip_prefix("SMPP listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let mut server = Server {
            name: name.to_owned(),
            child,
            stdin,
            port: 0,
        };
        let until = Instant::now() + Duration::from_secs(10);
        let addr = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(addr) => break addr,
                Err(_) if Instant::now() >= until => {
                    return Err(format!("{name}: no `SMPP listening on` line within 10 s"))
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

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take()); // our stand-ins stop when stdin closes
        let until = Instant::now() + Duration::from_secs(2);
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

struct Bins {
    smpp: PathBuf,
    bench: PathBuf,
    /// Every process gets one runtime worker thread (see the module docs).
    one_worker: bool,
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
    let release = root().join("target/release");
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
                Which::Smpp34 => smpp34.port,
                Which::Raw => raw.port,
            };
            let server_pid = match s.server {
                Which::Ours => ours.pid(),
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

    // p99 at half the maximum rate, 1 bind window 64.
    let ours_64 = scenarios
        .iter()
        .position(|s| s.kind == ClientKind::Ours && s.sessions == 1 && s.window == 64);
    let half_rate = ours_64.map(|i| median(&samples[i], |s| s.throughput) / 2.0);
    let paced = half_rate.filter(|r| *r > 0.0).map(|rate| {
        let s = Scenario {
            load: "1 bind, window 64",
            pair: format!("smpp bench --rate {rate:.0} → {our_server}"),
            server: Which::Ours,
            sessions: 1,
            window: 64,
            kind: ClientKind::Ours,
        };
        let sample = measure(&bins, &s, ours.port, secs, Some(rate));
        (rate, sample)
    });

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
            paced,
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
fn clean_cargo() -> Command {
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
    fn command(&self, program: &std::path::Path) -> Command {
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

/// Clock ticks per second of `/proc/*/stat` times (USER_HZ: 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// (utime + stime, cutime + cstime) of a process, in clock ticks.
fn cpu_ticks(pid: &str) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some((field(14)? + field(15)?, field(16)? + field(17)?))
}

/// [`measure`], plus the CPU time the client and the server spent per message:
/// a figure that other load on the machine disturbs much less than throughput.
fn measure_cpu(bins: &Bins, s: &Scenario, port: u16, secs: f64, server: u32) -> Sample {
    let server = server.to_string();
    let before = (cpu_ticks("self"), cpu_ticks(&server));
    let mut sample = measure(bins, s, port, secs, None);
    let after = (cpu_ticks("self"), cpu_ticks(&server));
    if let (Some((_, c0)), Some((s0, _)), Some((_, c1)), Some((s1, _))) =
        (before.0, before.1, after.0, after.1)
    {
        let messages = sample.throughput * sample.elapsed;
        if messages > 0.0 {
            let per = |ticks: u64| ticks as f64 / TICKS_PER_SECOND * 1e6 / messages;
            sample.cpu_us = Some((per(c1.saturating_sub(c0)), per(s1.saturating_sub(s0))));
        }
    }
    sample
}

/// Runs one client once; a failure or a hang gives a zero sample.
fn measure(bins: &Bins, s: &Scenario, port: u16, secs: f64, rate: Option<f64>) -> Sample {
    let (sessions, window, port_s) = (
        s.sessions.to_string(),
        s.window.to_string(),
        port.to_string(),
    );
    let mut cmd = match s.kind {
        ClientKind::Ours => {
            let mut c = bins.command(&bins.smpp);
            c.args(["bench", "--port", &port_s, "--sessions", &sessions])
                .args(["--window", &window, "--json"])
                .arg("--duration")
                .arg(format!("{}ms", (secs * 1000.0) as u64));
            if let Some(rate) = rate {
                c.arg("--rate").arg(format!("{rate:.0}"));
            }
            c
        }
        ClientKind::Smpp34 | ClientKind::Raw | ClientKind::Rusmppc { .. } => {
            let sub = match s.kind {
                ClientKind::Smpp34 => "client-smpp34",
                ClientKind::Raw => "client-raw",
                _ => "client-rusmppc",
            };
            let mut c = bench_cmd(bins, sub);
            c.args([
                "--port",
                &port_s,
                "--sessions",
                &sessions,
                "--window",
                &window,
            ])
            .arg("--secs")
            .arg(secs.to_string());
            if let ClientKind::Rusmppc { repoll } = s.kind {
                c.arg("--repoll").arg(repoll.to_string());
            }
            c
        }
    };
    let out = match output_limited(&mut cmd, Duration::from_secs_f64(secs + 30.0)) {
        Some(out) => out,
        None => {
            eprintln!("xtask: {} hung: killed", s.pair);
            return Sample::default();
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let throughput = json_number(&stdout, "throughput").unwrap_or(0.0);
    let clean = out.status.success()
        && json_number(&stdout, "failed").is_none_or(|f| f == 0.0)
        && throughput > 0.0;
    if !clean {
        eprintln!(
            "xtask: {}: exit {}, stderr: {}",
            s.pair,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Sample {
        throughput,
        p50: json_number(&stdout, "p50"),
        p99: json_number(&stdout, "p99"),
        clean,
        cpu_us: None,
        elapsed: json_number(&stdout, "elapsed_s").unwrap_or(0.0),
    }
}

/// Like `Command::output`, killing the child after `limit`.
fn output_limited(cmd: &mut Command, limit: Duration) -> Option<std::process::Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().ok(),
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// The first number after `"key":` in a JSON text (no JSON crate in xtask).
fn json_number(json: &str, key: &str) -> Option<f64> {
    let at = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let number: String = json[at..]
        .chars()
        .skip_while(|c| c.is_whitespace())
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E' | '+'))
        .collect();
    number.parse().ok()
}

fn median(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    let mut v: Vec<f64> = samples.iter().map(f).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// What the idle-binds probe measured.
struct Rss {
    binds: usize,
    bound: Option<usize>,
    before_kib: Option<u64>,
    after_kib: Option<u64>,
    note: String,
}

/// Opens `binds` idle binds to our server and reads its VmRSS before and after.
fn idle_rss(bins: &Bins, server: &Server, binds: usize) -> Rss {
    let before = vm_rss_kib(server.pid());
    let mut rss = Rss {
        binds,
        bound: None,
        before_kib: before,
        after_kib: None,
        note: String::new(),
    };
    let mut child = match bench_cmd(bins, "idle-binds")
        .args([
            "--port",
            &server.port.to_string(),
            "--count",
            &binds.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            rss.note = e.to_string();
            return rss;
        }
    };
    let stdout = child.stdout.take();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if let Some(out) = stdout {
            for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
                if let Some(n) = line.strip_prefix("BOUND ") {
                    let _ = tx.send(n.trim().parse::<usize>().ok());
                }
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(bound) => {
            rss.bound = bound;
            std::thread::sleep(Duration::from_secs(1)); // let the server settle
            rss.after_kib = vm_rss_kib(server.pid());
        }
        Err(_) => rss.note = "the probe did not bind in time (or failed)".into(),
    }
    drop(child.stdin.take());
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    if let Ok(out) = child.wait_with_output() {
        if rss.bound.is_none() {
            rss.note = format!(
                "{} {}",
                rss.note,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    // Give the server time to drop the sessions before the next probe.
    std::thread::sleep(Duration::from_secs(1));
    rss
}

/// The 1-minute load average.
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(str::to_owned)
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[allow(clippy::too_many_arguments)]
fn table(
    scenarios: &[Scenario],
    samples: &[Vec<Sample>],
    runs: usize,
    secs: f64,
    our_server: &str,
    paced: Option<(f64, Sample)>,
    rss: &Rss,
    many: Option<&Rss>,
) -> String {
    use std::fmt::Write as _;
    let rate = |i: usize| median(&samples[i], |s| s.throughput);
    let find = |kind: ClientKind, server: Which, sessions: u32, window: u32| {
        scenarios.iter().position(|s| {
            s.kind == kind && s.server == server && s.sessions == sessions && s.window == window
        })
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nEnd-to-end over loopback: submit_sm with 160 octets of text, receipts off; \
         median of {runs} interleaved run(s) of {secs} s each; our server: {our_server}. \
         CPU µs/msg: user + system time of the client process and of the server process \
         during the run, per message (10 ms tick resolution): less disturbed by other load \
         than throughput.\n"
    );
    out.push_str(
        "| load | client → server | submit_sm/s | vs ceiling | vs ours | latency p50 / p99 µs | CPU µs/msg client + server | clean runs |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for (i, s) in scenarios.iter().enumerate() {
        let r = rate(i);
        let ceiling = find(ClientKind::Raw, Which::Raw, s.sessions, s.window).map(rate);
        let ours = find(ClientKind::Ours, Which::Ours, s.sessions, s.window).map(rate);
        let ratio = |base: Option<f64>| match base {
            Some(b) if b > 0.0 && s.kind != ClientKind::Raw => format!("{:.2}", r / b),
            _ => "–".into(),
        };
        let latency = if s.kind == ClientKind::Ours {
            let p50 = median(&samples[i], |x| x.p50.unwrap_or(0.0));
            let p99 = median(&samples[i], |x| x.p99.unwrap_or(0.0));
            format!("{p50:.0} / {p99:.0}")
        } else {
            "–".into()
        };
        let clean = samples[i].iter().filter(|x| x.clean).count();
        let cpu = if samples[i].iter().any(|x| x.cpu_us.is_some()) {
            let c = median(&samples[i], |x| x.cpu_us.map_or(0.0, |v| v.0));
            let v = median(&samples[i], |x| x.cpu_us.map_or(0.0, |v| v.1));
            format!("{c:.2} + {v:.2}")
        } else {
            "–".into()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} | {} | {cpu} | {clean}/{} |",
            s.load,
            s.pair,
            r,
            ratio(ceiling),
            if s.kind == ClientKind::Ours && s.server == Which::Ours {
                "1.00".into()
            } else {
                ratio(ours)
            },
            latency,
            samples[i].len()
        );
    }
    if let Some((rate, sample)) = paced {
        let _ = writeln!(
            out,
            "| 1 bind, window 64, paced at half the max | smpp bench --rate {rate:.0} → {our_server} | {:.0} | – | – | {:.0} / {:.0} | – | {}/1 |",
            sample.throughput,
            sample.p50.unwrap_or(0.0),
            sample.p99.unwrap_or(0.0),
            u8::from(sample.clean)
        );
    }
    out.push('\n');
    for probe in std::iter::once(rss).chain(many) {
        match (probe.bound, probe.before_kib, probe.after_kib) {
            (Some(bound), Some(before), Some(after)) => {
                let per = (after.saturating_sub(before) as f64) / bound.max(1) as f64;
                let _ = writeln!(
                    out,
                    "Idle binds: {bound} of {} bound; server VmRSS {before} KiB → {after} KiB: {per:.1} KiB per bound session.",
                    probe.binds
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "Idle binds: {} requested: failed ({})",
                    probe.binds,
                    probe.note.trim()
                );
            }
        }
    }
    // The issue's targets, as ratios measured in this run.
    let get = |kind, server, sessions, window| find(kind, server, sessions, window).map(rate);
    let ours_64 = get(ClientKind::Ours, Which::Ours, 1, 64).unwrap_or(0.0);
    let ceil_64 = get(ClientKind::Raw, Which::Raw, 1, 64).unwrap_or(0.0);
    let ours_256 = get(ClientKind::Ours, Which::Ours, 1, 256).unwrap_or(0.0);
    let ours_4 = get(ClientKind::Ours, Which::Ours, 4, 64).unwrap_or(0.0);
    let pair_64 = get(ClientKind::Smpp34, Which::Smpp34, 1, 64).unwrap_or(0.0);
    let mark = |ok: bool| if ok { "met" } else { "MISSED" };
    let _ = writeln!(out, "\nTargets (this run):");
    let _ = writeln!(
        out,
        "- 1 bind window 64 >= 400,000/s: {ours_64:.0} ({})",
        mark(ours_64 >= 400_000.0)
    );
    if ceil_64 > 0.0 {
        let _ = writeln!(
            out,
            "- 1 bind window 64 >= 75% of the ceiling: {:.0}% ({})",
            100.0 * ours_64 / ceil_64,
            mark(ours_64 >= 0.75 * ceil_64)
        );
    }
    let _ = writeln!(
        out,
        "- 1 bind window 256 >= 800,000/s: {ours_256:.0} ({})",
        mark(ours_256 >= 800_000.0)
    );
    let _ = writeln!(
        out,
        "- 4 binds window 64 >= 1,000,000/s: {ours_4:.0} ({})",
        mark(ours_4 >= 1_000_000.0)
    );
    if pair_64 > 0.0 {
        let _ = writeln!(
            out,
            "- >= 2x the smpp34 pair (1 bind window 64): {:.2}x ({})",
            ours_64 / pair_64,
            mark(ours_64 >= 2.0 * pair_64)
        );
    }
    if let Some((_, s)) = paced {
        let p99 = s.p99.unwrap_or(f64::INFINITY);
        let _ = writeln!(
            out,
            "- p99 < 2 ms at half the max rate: {p99:.0} µs ({})",
            mark(p99 < 2000.0)
        );
    }
    if let (Some(bound), Some(before), Some(after)) = (rss.bound, rss.before_kib, rss.after_kib) {
        let per = (after.saturating_sub(before) as f64) / bound.max(1) as f64;
        let _ = writeln!(
            out,
            "- idle bound session <= 16 KiB: {per:.1} KiB ({})",
            mark(per <= 16.0)
        );
    }
    if let Some(m) = many {
        let _ = writeln!(
            out,
            "- 10,000 concurrent binds accepted: {} ({})",
            m.bound.unwrap_or(0),
            mark(m.bound == Some(10_000))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_are_found() {
        let j = r#"{"throughput":412345.0,"failed":{},"latency_us":{"p50":150.5,"p99":900.0}}"#;
        assert_eq!(json_number(j, "throughput"), Some(412345.0));
        assert_eq!(json_number(j, "p99"), Some(900.0));
        assert_eq!(json_number(j, "failed"), None);
        assert_eq!(json_number(j, "nope"), None);
    }

    #[test]
    fn cpu_ticks_of_this_process_are_readable() {
        let (own, children) = cpu_ticks("self").expect("/proc/self/stat");
        let _ = (own, children);
        assert!(cpu_ticks("0").is_none());
    }

    #[test]
    fn median_of_odd_and_even() {
        let s = |t: f64| Sample {
            throughput: t,
            ..Default::default()
        };
        assert_eq!(median(&[s(3.0), s(1.0), s(2.0)], |x| x.throughput), 2.0);
        assert_eq!(median(&[s(4.0), s(1.0)], |x| x.throughput), 2.5);
    }
}
