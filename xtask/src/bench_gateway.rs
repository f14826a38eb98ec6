//! `cargo xtask bench gateway [--rounds N] [--secs S] [--sessions N]
//! [--window W] [--jasmin-count M] [--no-jasmin] [--quick] [--json]
//! [--no-build] [--shared-cores] [--database URL]`: the gateway race (issue
//! 17), in one run:
//!
//! - ceiling: `smpp bench --receipt` straight to `smpp serve --memory`;
//! - ours: `smpp bench --receipt` (the `bench` account) → `smpp gateway
//!   --store DIR` (durable, fresh directory) → two `smpp serve --memory`
//!   upstreams (routes split the destinations between them, each route a
//!   failover list of both) → receipts back to the customer binds; with
//!   `--database postgres://USER@HOST/DB`, the gateway's store is that
//!   PostgreSQL database instead (dropped and made again first; the
//!   server's `postgres` processes count in the CPU columns);
//! - Jasmin 0.11.1 (PyPI; installed, patched and provisioned by
//!   `xtask/jasmin/jasmin.py`) with the same binds through its SMPP server,
//!   and the same number of messages through its HTTP `/send` with
//!   receipts to a callback URL served here, both to an `smpp serve
//!   --memory` upstream.
//!
//! Every upstream sends its receipts `--dlr-delay` after the submission
//! (0 by default, so receipt latency is the path's own). A message counts
//! end to end when its receipt reached the customer: the rate is receipts
//! received per second of the client's wall-clock time (start, binds and
//! the wait for the last receipt included). What reached the upstreams is
//! read from their `/metrics` (`submit_sm` answered `ESME_ROK`). Ours run
//! for `--secs`; Jasmin forwards ~150 msg/s, so it gets a fixed number of
//! messages (`--jasmin-count`) and the run lasts until the last receipt
//! (or a timeout). CPU time of each process (`/proc/PID/stat`) is divided
//! by the messages that completed. Rounds are interleaved; the table shows
//! medians.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::bench_e2e::measure::{cpu_ticks, load_average, output_limited, TICKS_PER_SECOND};
use crate::bench_e2e::{clean_cargo, Bins, Server};
use crate::{root, run, Result};

mod cluster;
mod jasmin_http;

pub(crate) use cluster::run_cluster;
mod table;

/// The customer account on the gateway and on Jasmin.
const USER: &str = "bench";
const PASSWORD: &str = "benchpw";
/// Destinations: the last digit is the message number's, and the routes
/// send even digits to upstream `a` first, odd ones to `b` first.
const DEST: &str = "44770090000#";

/// What one contender is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Ceiling,
    Gateway,
    JasminSmpp,
    JasminHttp,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Ceiling => "smpp bench → smpp serve --memory (ceiling)",
            Kind::Gateway => "smpp bench → smpp gateway (durable) → 2 × smpp serve",
            Kind::JasminSmpp => "smpp bench → Jasmin 0.11.1 SMPP → smpp serve",
            Kind::JasminHttp => "HTTP /send → Jasmin 0.11.1 → smpp serve, receipts by HTTP",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Kind::Ceiling => "ceiling",
            Kind::Gateway => "gateway",
            Kind::JasminSmpp => "jasmin_smpp",
            Kind::JasminHttp => "jasmin_http",
        }
    }
}

/// One run of one contender.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sample {
    /// Receipts back per second of the client's wall-clock time.
    pub(crate) e2e: f64,
    /// submit_sm (or `/send`) accepted per second, as the client measured.
    pub(crate) accepted_rate: f64,
    pub(crate) accepted: u64,
    /// `submit_sm` the upstream(s) answered `ESME_ROK` during the run.
    pub(crate) upstream: u64,
    pub(crate) receipts: u64,
    /// Receipts for no message of this run (owed from an earlier run).
    pub(crate) unmatched: u64,
    pub(crate) submit_ms: Option<(f64, f64)>,
    pub(crate) receipt_ms: Option<(f64, f64)>,
    /// CPU µs per completed message, per process.
    pub(crate) cpu: Vec<(String, f64)>,
    pub(crate) wall: f64,
    pub(crate) clean: bool,
}

/// Options of the command.
#[derive(Clone)]
struct Options {
    rounds: usize,
    secs: f64,
    sessions: u32,
    window: u32,
    jasmin_count: u64,
    jasmin: bool,
    json: bool,
    dlr_delay: String,
    up_binds: u32,
    up_window: u32,
    /// The gateway's store in this PostgreSQL database instead of a directory.
    database: Option<String>,
}

impl Options {
    /// The options for one of `clients` clients sharing the load: the binds
    /// split among them (at least one each).
    fn clone_for_share(&self, clients: usize) -> Options {
        let mut o = self.clone();
        o.sessions = (self.sessions / clients.max(1) as u32).max(1);
        o
    }
}

fn options(args: &[&str]) -> Result<Options> {
    let quick = args.contains(&"--quick");
    let value = |name: &str| -> Result<Option<f64>> {
        match args.iter().position(|a| *a == name) {
            None => Ok(None),
            Some(i) => args
                .get(i + 1)
                .and_then(|v| v.parse::<f64>().ok())
                .map(Some)
                .ok_or_else(|| format!("{name} needs a number")),
        }
    };
    let known = [
        "--rounds",
        "--secs",
        "--sessions",
        "--window",
        "--jasmin-count",
        "--dlr-delay-ms",
        "--up-binds",
        "--up-window",
        "--database",
    ];
    for (i, a) in args.iter().enumerate() {
        let flag = [
            "--quick",
            "--no-jasmin",
            "--json",
            "--no-build",
            "--shared-cores",
        ];
        let after_value = i > 0 && known.contains(&args[i - 1]);
        if !flag.contains(a) && !known.contains(a) && !after_value {
            return Err(format!("bench gateway: unknown argument {a:?}"));
        }
    }
    Ok(Options {
        rounds: value("--rounds")?.map_or(if quick { 1 } else { 3 }, |v| v.max(1.0) as usize),
        secs: value("--secs")?.unwrap_or(if quick { 1.5 } else { 5.0 }),
        sessions: value("--sessions")?.map_or(4, |v| v.max(1.0) as u32),
        window: value("--window")?.map_or(64, |v| v.max(1.0) as u32),
        jasmin_count: value("--jasmin-count")?
            .map_or(if quick { 100 } else { 1000 }, |v| v.max(1.0) as u64),
        jasmin: !args.contains(&"--no-jasmin") && !quick,
        json: args.contains(&"--json"),
        dlr_delay: format!("{}ms", value("--dlr-delay-ms")?.unwrap_or(0.0) as u64),
        up_binds: value("--up-binds")?.map_or(2, |v| v.max(1.0) as u32),
        up_window: value("--up-window")?.map_or(256, |v| v.max(1.0) as u32),
        database: match args.iter().position(|a| *a == "--database") {
            None => None,
            Some(i) => Some(args.get(i + 1).ok_or("--database needs a URL")?.to_string()),
        },
    })
}

/// The running processes of one bench.
struct Rig {
    ceiling: Server,
    ceiling_http: u16,
    up_a: Server,
    up_a_http: u16,
    up_b: Server,
    up_b_http: u16,
    gateway: Server,
    store: PathBuf,
    database: Option<String>,
    jasmin: Option<Jasmin>,
}

struct Jasmin {
    upstream: Server,
    upstream_http: u16,
    /// The `jasmin.py run` wrapper; jasmind stops when it does.
    wrapper: Server,
    jasmind: u32,
    http_port: u16,
}

pub(crate) fn run_gateway(args: &[&str]) -> Result {
    let o = options(args)?;
    if !args.contains(&"--no-build") {
        run(clean_cargo().args(["build", "--release", "--locked", "-p", "smpp-cli"]))?;
    }
    let bins = Bins {
        smpp: target_dir().join("release/smpp"),
        bench: PathBuf::new(),
        one_worker: !args.contains(&"--shared-cores"),
    };
    let rig = start_rig(&bins, &o)?;
    let mut kinds = vec![Kind::Ceiling, Kind::Gateway];
    if rig.jasmin.is_some() {
        kinds.extend([Kind::JasminSmpp, Kind::JasminHttp]);
    }
    let load_before = load_average();
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); kinds.len()];
    for round in 1..=o.rounds {
        eprintln!("\n==> round {round} of {}", o.rounds);
        for (i, kind) in kinds.iter().enumerate() {
            let s = measure(&bins, &rig, &o, *kind);
            eprintln!(
                "{:<60} {:>9.0} msg/s e2e  accepted {} upstream {} receipts {} (+{} late from earlier runs){}",
                kind.label(),
                s.e2e,
                s.accepted,
                s.upstream,
                s.receipts,
                s.unmatched,
                if s.clean { "" } else { "  (NOT CLEAN)" }
            );
            samples[i].push(s);
        }
    }
    let load_after = load_average();
    let store = match &rig.database {
        Some(url) => format!(
            "store: PostgreSQL, database {} MiB",
            database_bytes(url).map_or("?".into(), |b| (b / (1024 * 1024)).to_string())
        ),
        None => format!(
            "store directory {} MiB",
            dir_bytes(&rig.store) / (1024 * 1024)
        ),
    };
    let gateway_memory = format!(
        "smpp gateway VmRSS {} MiB at the end (peak {} MiB), {store}",
        status_kib(rig.gateway.pid(), "VmRSS:").map_or("?".into(), |k| (k / 1024).to_string()),
        status_kib(rig.gateway.pid(), "VmHWM:").map_or("?".into(), |k| (k / 1024).to_string()),
    );
    let note = format!(
        "{} round(s); ours {} s each, {} binds × window {}, 160-character GSM texts, receipts requested; \
         {}; upstream receipts after {}; 1-minute load average {} before, {} after; {}",
        o.rounds,
        o.secs,
        o.sessions,
        o.window,
        if o.jasmin {
            format!("Jasmin {} messages per path", o.jasmin_count)
        } else {
            "no Jasmin (--no-jasmin or --quick)".into()
        },
        o.dlr_delay,
        load_before.as_deref().unwrap_or("?"),
        load_after.as_deref().unwrap_or("?"),
        gateway_memory,
    );
    drop(rig);
    if o.json {
        println!("{}", table::json(&kinds, &samples, &note));
    } else {
        println!("{}", table::markdown(&kinds, &samples, &note));
    }
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// `smpp serve --memory` with receipts after `dlr_delay` and its metrics on HTTP.
fn upstream(bins: &Bins, name: &str, o: &Options) -> Result<(Server, u16)> {
    let mut c = bins.command(&bins.smpp);
    c.args(["serve", "--memory", "--listen", "127.0.0.1:0"])
        .args(["--http", "127.0.0.1:0", "--dlr-delay", &o.dlr_delay])
        .args(["--bind-failure-limit", "off", "--max-messages", "2000000"]);
    let server = Server::start(name, c)?;
    let http = server
        .line("HTTP listening on ", Duration::from_secs(5))
        .and_then(|a| a.rsplit(':').next().and_then(|p| p.parse().ok()))
        .ok_or_else(|| format!("{name}: no `HTTP listening on` line"))?;
    Ok((server, http))
}

fn start_rig(bins: &Bins, o: &Options) -> Result<Rig> {
    let (ceiling, ceiling_http) = upstream(bins, "ceiling: smpp serve --memory", o)?;
    let (up_a, up_a_http) = upstream(bins, "upstream a: smpp serve --memory", o)?;
    let (up_b, up_b_http) = upstream(bins, "upstream b: smpp serve --memory", o)?;
    let store = target_dir().join("bench-gateway-store");
    let _ = std::fs::remove_dir_all(&store);
    let mut c = bins.command(&bins.smpp);
    c.args(["gateway", "--listen", "127.0.0.1:0"]);
    match &o.database {
        Some(url) => {
            fresh_database(url)?;
            c.args(["--database", url]);
        }
        None => {
            c.arg("--store").arg(&store);
        }
    }
    c.args(["--account", &format!("{USER}:{PASSWORD}")]);
    for (name, port) in [("a", up_a.port), ("b", up_b.port)] {
        c.arg("--upstream").arg(format!(
            "{name}=smppclient1:password@127.0.0.1:{port},binds={},window={}",
            o.up_binds, o.up_window
        ));
    }
    // One tier shared 1:1 (each fails over to the other when it is down).
    c.args(["--route", "*=a+b"]);
    let gateway = Server::start("smpp gateway (durable store)", c)?;
    let jasmin = if o.jasmin {
        Some(start_jasmin(bins, o)?)
    } else {
        None
    };
    // Let the gateway's upstream binds come up.
    std::thread::sleep(Duration::from_millis(500));
    Ok(Rig {
        ceiling,
        ceiling_http,
        up_a,
        up_a_http,
        up_b,
        up_b_http,
        gateway,
        store,
        database: o.database.clone(),
        jasmin,
    })
}

/// The database a URL names, and the URL of the server's `postgres` one.
fn split_database(url: &str) -> Result<(String, String)> {
    let scheme = url.find("://").ok_or("--database: a postgres:// URL")?;
    let (main, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let slash = main[scheme + 3..]
        .find('/')
        .map(|i| scheme + 3 + i)
        .ok_or("--database: the URL names no database")?;
    let name = &main[slash + 1..];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("--database: {name:?} is not a plain database name"));
    }
    Ok((
        name.to_owned(),
        format!("{}/postgres{query}", &main[..slash]),
    ))
}

/// Drops and makes again the database `url` names (with `psql`).
fn fresh_database(url: &str) -> Result {
    let (name, admin) = split_database(url)?;
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        run(Command::new("psql").args([&admin, "-X", "-q", "-c", &sql]))?;
    }
    Ok(())
}

fn database_bytes(url: &str) -> Option<u64> {
    let out = Command::new("psql")
        .args([
            url,
            "-X",
            "-A",
            "-t",
            "-c",
            "SELECT pg_database_size(current_database())",
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.store);
        if let Some((name, admin)) = self
            .database
            .as_deref()
            .and_then(|url| split_database(url).ok())
        {
            // FORCE ends the gateway's connections (it stops right after).
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            let _ = run(Command::new("psql").args([&admin, "-X", "-q", "-c", &sql]));
        }
    }
}

fn start_jasmin(bins: &Bins, o: &Options) -> Result<Jasmin> {
    let dir = target_dir().join("jasmin");
    let script = root().join("xtask/jasmin/jasmin.py");
    run(Command::new("python3").arg(&script).arg("setup").arg(&dir))?;
    let (upstream, upstream_http) = upstream(bins, "Jasmin's upstream: smpp serve --memory", o)?;
    let mut c = Command::new("python3");
    c.arg(&script)
        .arg("run")
        .arg(&dir)
        .args(["--upstream-port", &upstream.port.to_string()])
        .args(["--user", USER, "--password", PASSWORD]);
    eprintln!("$ {}", crate::show(&c));
    // jasmin.py stops jasmind when its stdin closes (SIGKILL after 10 s):
    // killing the wrapper first would leave jasmind and its lock behind.
    let wrapper = Server::start_within("jasmin.py run", c, Duration::from_secs(120))?
        .with_grace(Duration::from_secs(15));
    let jasmind = wrapper
        .line("JASMIND PID ", Duration::from_secs(1))
        .and_then(|p| p.parse().ok())
        .ok_or("jasmin.py: no `JASMIND PID` line")?;
    let http_port = wrapper
        .line("HTTP listening on ", Duration::from_secs(1))
        .and_then(|a| a.rsplit(':').next().and_then(|p| p.parse().ok()))
        .ok_or("jasmin.py: no `HTTP listening on` line")?;
    Ok(Jasmin {
        upstream,
        upstream_http,
        wrapper,
        jasmind,
        http_port,
    })
}

/// A `KiB` line of `/proc/PID/status`.
fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// `submit_sm` answered `ESME_ROK` by the upstreams on these HTTP ports.
fn upstream_count(http_ports: &[u16]) -> u64 {
    http_ports
        .iter()
        .filter_map(|p| jasmin_http::http_get(*p, "/metrics").ok())
        .map(|(_, body)| submits_ok(&body))
        .sum()
}

/// `smpp_requests_total{command="submit_sm",status="ESME_ROK"}` of a
/// Prometheus text.
fn submits_ok(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("smpp_requests_total{")
                && l.contains("command=\"submit_sm\"")
                && l.contains("status=\"ESME_ROK\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// Polls the upstream count until it reaches `want` or stops moving for `quiet`.
fn settle(http_ports: &[u16], want: u64, quiet: Duration, limit: Duration) -> u64 {
    let start = Instant::now();
    let mut last = upstream_count(http_ports);
    let mut since = Instant::now();
    while last < want && since.elapsed() < quiet && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(100));
        let now = upstream_count(http_ports);
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
    last
}

/// PIDs of processes whose `comm` is `name` (shared services: RabbitMQ, Redis).
fn pids_named(name: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .collect()
}

/// CPU ticks of a set of processes, by label ("self" counts the children
/// this process waited for: the `smpp bench` clients).
struct Cpu {
    procs: Vec<(String, Vec<String>)>,
    before: Vec<u64>,
}

impl Cpu {
    fn start(procs: Vec<(String, Vec<String>)>) -> Cpu {
        let before = procs.iter().map(|(_, pids)| ticks(pids)).collect();
        Cpu { procs, before }
    }

    fn per_message(self, messages: u64) -> Vec<(String, f64)> {
        self.procs
            .iter()
            .zip(self.before)
            .map(|((label, pids), before)| {
                let used = ticks(pids).saturating_sub(before);
                let us = used as f64 / TICKS_PER_SECOND * 1e6 / messages.max(1) as f64;
                (label.clone(), us)
            })
            .collect()
    }
}

fn ticks(pids: &[String]) -> u64 {
    pids.iter()
        .filter_map(|p| match p.as_str() {
            "children" => cpu_ticks("self").map(|(_, children)| children),
            "self" => cpu_ticks("self").map(|(own, _)| own),
            pid => cpu_ticks(pid).map(|(own, _)| own),
        })
        .sum()
}

fn measure(bins: &Bins, rig: &Rig, o: &Options, kind: Kind) -> Sample {
    let id = |s: &Server| vec![s.pid().to_string()];
    match kind {
        Kind::Ceiling => {
            let cpu = Cpu::start(vec![
                ("smpp bench".into(), vec!["children".into()]),
                ("smpp serve".into(), id(&rig.ceiling)),
            ]);
            let ports = [rig.ceiling_http];
            let before = upstream_count(&ports);
            let mut s = bench_run(bins, rig.ceiling.port, "smppclient1", "password", o, None);
            s.upstream = settle(
                &ports,
                before + s.accepted,
                Duration::from_millis(500),
                Duration::from_secs(5),
            )
            .saturating_sub(before);
            s.cpu = cpu.per_message(s.receipts);
            s
        }
        Kind::Gateway => {
            let mut procs = vec![
                ("smpp bench".into(), vec!["children".into()]),
                ("smpp gateway".into(), id(&rig.gateway)),
                (
                    "2 × smpp serve".into(),
                    vec![rig.up_a.pid().to_string(), rig.up_b.pid().to_string()],
                ),
            ];
            if rig.database.is_some() {
                let pids = pids_named("postgres").iter().map(u32::to_string).collect();
                procs.push(("PostgreSQL".into(), pids));
            }
            let cpu = Cpu::start(procs);
            let ports = [rig.up_a_http, rig.up_b_http];
            let before = upstream_count(&ports);
            let mut s = bench_run(bins, rig.gateway.port, USER, PASSWORD, o, None);
            s.upstream = settle(
                &ports,
                before + s.accepted,
                Duration::from_millis(500),
                Duration::from_secs(5),
            )
            .saturating_sub(before);
            s.cpu = cpu.per_message(s.receipts);
            s
        }
        Kind::JasminSmpp | Kind::JasminHttp => {
            let Some(j) = &rig.jasmin else {
                return Sample::default();
            };
            let mut procs = vec![
                (
                    if kind == Kind::JasminSmpp {
                        "smpp bench".into()
                    } else {
                        "HTTP client (xtask)".into()
                    },
                    vec![if kind == Kind::JasminSmpp {
                        "children"
                    } else {
                        "self"
                    }
                    .into()],
                ),
                ("jasmind".into(), vec![j.jasmind.to_string()]),
                ("smpp serve".into(), id(&j.upstream)),
            ];
            for (label, comm) in [("RabbitMQ", "beam.smp"), ("Redis", "redis-server")] {
                let pids: Vec<String> = pids_named(comm).iter().map(u32::to_string).collect();
                if !pids.is_empty() {
                    procs.push((label.into(), pids));
                }
            }
            let cpu = Cpu::start(procs);
            let ports = [j.upstream_http];
            let before = upstream_count(&ports);
            let mut s = if kind == Kind::JasminSmpp {
                bench_run(
                    bins,
                    j.wrapper.port,
                    USER,
                    PASSWORD,
                    o,
                    Some(o.jasmin_count),
                )
            } else {
                jasmin_http::run(j.http_port, o.jasmin_count, (o.sessions * 4).min(32), DEST)
            };
            s.upstream = settle(
                &ports,
                before + s.accepted,
                Duration::from_secs(3),
                Duration::from_secs(30),
            )
            .saturating_sub(before);
            s.cpu = cpu.per_message(s.receipts);
            s
        }
    }
}

/// One `smpp bench --receipt` run: for `--secs`, or `count` messages.
fn bench_run(
    bins: &Bins,
    port: u16,
    user: &str,
    password: &str,
    o: &Options,
    count: Option<u64>,
) -> Sample {
    let mut c = bins.command(&bins.smpp);
    c.args(["bench", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--system-id", user, "--password", password])
        .args(["--sessions", &o.sessions.to_string()])
        .args(["--window", &o.window.to_string()])
        .args(["--dest", DEST, "--receipt", "--json"]);
    // Jasmin completes ~30-150 messages per second: wait for its receipts.
    let wait = match count {
        Some(n) => {
            c.args(["--count", &n.to_string(), "--response-timeout", "60s"]);
            Duration::from_secs(30 + n / 10)
        }
        // Receipts may trail the submits by seconds when a path accepts
        // faster than it completes: the run lasts until the last one (or
        // until 10 s + 6 × --secs), so the rate counts the tail.
        None => {
            c.arg("--duration")
                .arg(format!("{}ms", (o.secs * 1000.0) as u64));
            Duration::from_secs_f64(10.0 + 6.0 * o.secs)
        }
    };
    c.arg("--wait-receipts").arg(format!("{}s", wait.as_secs()));
    let started = Instant::now();
    let limit = Duration::from_secs_f64(o.secs + 60.0) + wait * 2;
    let Some(out) = output_limited(&mut c, limit) else {
        eprintln!("xtask: smpp bench to port {port} hung: killed");
        return Sample::default();
    };
    let wall = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut s = parse_bench(&stdout, wall);
    if !s.clean {
        eprintln!(
            "xtask: smpp bench to port {port}: exit {}, stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    s.clean &= out.status.success();
    s
}

/// A [`Sample`] from `smpp bench --json --receipt` output and the client's wall time.
fn parse_bench(stdout: &str, wall: f64) -> Sample {
    let Some(v) = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    else {
        return Sample::default();
    };
    let pair = |p: &serde_json::Value, scale: f64| {
        Some((p["p50"].as_f64()? * scale, p["p99"].as_f64()? * scale))
    };
    let receipts = v["receipts"]["received"].as_u64().unwrap_or(0);
    let accepted = v["ok"].as_u64().unwrap_or(0);
    Sample {
        e2e: if wall > 0.0 {
            receipts as f64 / wall
        } else {
            0.0
        },
        accepted_rate: v["throughput"].as_f64().unwrap_or(0.0),
        accepted,
        upstream: 0,
        receipts,
        unmatched: v["receipts"]["unmatched"].as_u64().unwrap_or(0),
        submit_ms: pair(&v["latency_us"], 0.001),
        receipt_ms: pair(&v["receipts"]["latency_ms"], 1.0),
        cpu: Vec::new(),
        wall,
        clean: v["success"].as_bool() == Some(true) && receipts == accepted && accepted > 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submits_ok_are_read_from_metrics() {
        let m = "# TYPE smpp_requests_total counter\n\
                 smpp_requests_total{command=\"submit_sm\",status=\"ESME_ROK\"} 1234\n\
                 smpp_requests_total{command=\"submit_sm\",status=\"ESME_RTHROTTLED\"} 7\n\
                 smpp_requests_total{command=\"enquire_link\",status=\"ESME_ROK\"} 3\n";
        assert_eq!(submits_ok(m), 1234);
        assert_eq!(submits_ok(""), 0);
    }

    #[test]
    fn bench_json_gives_a_sample() {
        let j = r#"{"sessions":1,"ok":1000,"throughput":50000.0,"latency_us":{"p50":150.0,"p99":900.0},"receipts":{"expected":1000,"received":1000,"unmatched":0,"missing":0,"latency_ms":{"p50":1.5,"p99":7.0}},"success":true}"#;
        let s = parse_bench(j, 2.0);
        assert_eq!(s.e2e, 500.0);
        assert_eq!(s.submit_ms, Some((0.15, 0.9)));
        assert_eq!(s.receipt_ms, Some((1.5, 7.0)));
        assert!(s.clean);
        // A missing receipt, or no output at all: not clean.
        let missing = j.replace("\"received\":1000", "\"received\":999");
        assert!(!parse_bench(&missing, 2.0).clean);
        assert!(!parse_bench("", 1.0).clean);
    }

    #[test]
    fn options_are_parsed_and_unknown_ones_refused() {
        let o = options(&["--rounds", "2", "--secs", "3", "--no-jasmin"]).unwrap();
        assert_eq!((o.rounds, o.secs, o.jasmin), (2, 3.0, false));
        let q = options(&["--quick"]).unwrap();
        assert!(!q.jasmin);
        assert!(options(&["--bogus"]).is_err());
        assert!(options(&["--rounds"]).is_err());
    }
}
