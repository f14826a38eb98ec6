//! `cargo xtask soak [--minutes N] [--restart-every M]`: a long mixed-load run
//! against `smpp serve` with its persistent store, sampling the server's RSS
//! and open file descriptors every second.
//!
//! The load is the real `smpp` binary: back-to-back `smpp bench` cycles (two
//! binds, window 64, 500 submit_sm/s, receipts requested and waited for, so every cycle binds,
//! submits, receives receipts and unbinds), a `smpp send --wait-receipt` between
//! cycles, and a server restart every `--restart-every` minutes on the same
//! store (alternately a graceful SIGTERM and a `kill -9`). Restarts happen
//! between cycles, so a cycle that loses anything is a failure, not noise.
//!
//! It fails when any cycle reports a lost or unanswered message or a missing
//! receipt, or when the server's RSS grows more than 10 % within one
//! incarnation after its warm-up. Warm-up is the first four minutes or the
//! first 40 % of the incarnation, whichever is longer: at 500 messages/s the
//! server's bounded caches (the 20,000-message cache and the store's 32 MiB
//! page cache) are full after about three minutes, so growth measured later is
//! growth that would not stop. A summary is printed and written to `target/soak/report.json`, the
//! samples to `target/soak/samples.csv`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{cargo, root, run, Result};

/// One RSS / fd sample of the server.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    fds: usize,
}

/// One server process, from start to stop.
#[derive(Debug, Default)]
struct Incarnation {
    samples: Vec<Sample>,
    ended_by: &'static str,
}

#[derive(Debug, Default)]
struct Totals {
    cycles: u64,
    failed_cycles: u64,
    sent: u64,
    ok: u64,
    failed: u64,
    unanswered: u64,
    receipts: u64,
    missing_receipts: u64,
    sends: u64,
    failed_sends: u64,
}

pub(crate) fn run_soak(args: &[&str]) -> Result {
    let mut minutes = 30.0_f64;
    let mut restart_every = 10.0_f64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> Result<f64> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match *a {
            "--minutes" => minutes = value("--minutes")?,
            "--restart-every" => restart_every = value("--restart-every")?,
            other => return Err(format!("soak: unknown argument {other:?}")),
        }
    }
    let total = Duration::from_secs_f64(minutes * 60.0);
    let restart = Duration::from_secs_f64(restart_every * 60.0);

    run(cargo().args(["build", "--release", "--locked", "-p", "smpp-cli"]))?;
    let dir = root().join("target/soak");
    let store = dir.join("store");
    let _ = std::fs::remove_dir_all(&store);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // A copy: every restart runs the binary the soak started with, even if
    // the workspace is rebuilt meanwhile.
    let smpp = dir.join("smpp");
    std::fs::copy(root().join("target/release/smpp"), &smpp)
        .map_err(|e| format!("copying the smpp binary: {e}"))?;
    let port = free_port()?;

    let started = Instant::now();
    let mut totals = Totals::default();
    let mut incarnations = Vec::new();
    let mut kill_hard = false;
    while started.elapsed() < total {
        let mut server = Server::start(&smpp, &store, port, started)?;
        let life_end = (started.elapsed() + restart).min(total);
        while started.elapsed() < life_end {
            let left = life_end.saturating_sub(started.elapsed());
            let seconds = left.as_secs().clamp(5, 20);
            cycle(&smpp, port, seconds, &mut totals)?;
            send_one(&smpp, port, &mut totals);
        }
        let ended_by = if kill_hard { "kill -9" } else { "SIGTERM" };
        incarnations.push(server.stop(kill_hard)?);
        if let Some(last) = incarnations.last_mut() {
            last.ended_by = ended_by;
        }
        kill_hard = !kill_hard;
    }
    report(&dir, started.elapsed(), &totals, &incarnations)
}

/// A TCP port that was free a moment ago, reused by every incarnation so that
/// clients reconnect to the same address.
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

struct Server {
    child: Child,
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(smpp: &Path, store: &Path, port: u16, epoch: Instant) -> Result<Server> {
        let mut child = Command::new(smpp)
            .args(["serve", "--store"])
            .arg(store)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--dlr-delay",
                "0s",
            ])
            // A small cache, full within a minute: growth after warm-up is a leak.
            .args(["--max-messages", "20000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{}: {e}", smpp.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("SMPP listening on") => break,
                Some(Ok(_)) => {}
                _ => {
                    let _ = child.kill();
                    return Err("smpp serve exited before listening".into());
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err("smpp serve did not start in 30 s".into());
            }
        }
        // Keep draining its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let pid = child.id();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (samples, stop) = (samples.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(s) = sample(pid, epoch) {
                        if let Ok(mut v) = samples.lock() {
                            v.push(s);
                        }
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
        };
        eprintln!("soak: smpp serve pid {pid} on 127.0.0.1:{port}");
        Ok(Server {
            child,
            samples,
            stop,
            sampler: Some(sampler),
        })
    }

    fn stop(&mut self, hard: bool) -> Result<Incarnation> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.sampler.take() {
            let _ = t.join();
        }
        if hard {
            let _ = self.child.kill();
        } else {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while self.child.try_wait().map_err(|e| e.to_string())?.is_none() {
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    return Err("smpp serve did not stop within 20 s of SIGTERM".into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.wait();
        let samples = self.samples.lock().map(|v| v.clone()).unwrap_or_default();
        Ok(Incarnation {
            samples,
            ended_by: "",
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sample(pid: u32, epoch: Instant) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some(Sample {
        at: epoch.elapsed(),
        rss_kib,
        fds,
    })
}

/// One `smpp bench` cycle with receipts; folds its JSON summary into `totals`.
fn cycle(smpp: &Path, port: u16, seconds: u64, totals: &mut Totals) -> Result {
    static CYCLE: AtomicU32 = AtomicU32::new(0);
    let n = CYCLE.fetch_add(1, Ordering::Relaxed);
    let out = Command::new(smpp)
        .args(["bench", "--port", &port.to_string(), "--sessions", "2"])
        .args(["--window", "64", "--rate", "500"])
        .args(["--duration", &format!("{seconds}s")])
        .args(["--receipt", "--wait-receipts", "15s", "--json"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("smpp bench: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("smpp bench cycle {n} printed no JSON summary: {text}"))?;
    // `smpp bench --json` (see `smpp bench --help`).
    let field = |path: &[&str]| {
        path.iter()
            .try_fold(&json, |v, k| v.get(*k))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    totals.cycles += 1;
    totals.sent += field(&["sent"]);
    totals.ok += field(&["ok"]);
    totals.failed += field(&["failed_total"]);
    totals.unanswered += field(&["unanswered"]) + field(&["lost"]);
    totals.receipts += field(&["receipts", "received"]);
    totals.missing_receipts += field(&["receipts", "missing"]);
    if !out.status.success() {
        totals.failed_cycles += 1;
        eprintln!("soak: cycle {n} FAILED: {}", text.trim());
    } else {
        eprintln!(
            "soak: cycle {n}: sent {} ok {} receipts {}",
            field(&["sent"]),
            field(&["ok"]),
            field(&["receipts", "received"])
        );
    }
    Ok(())
}

/// A one-off `smpp send --wait-receipt` (a fresh bind, a receipt, an unbind).
fn send_one(smpp: &Path, port: u16, totals: &mut Totals) {
    let ok = Command::new(smpp)
        .args(["send", "--port", &port.to_string()])
        .args(["--from", "447700900001", "--to", "447700900002"])
        .args(["--text", "soak", "--wait-receipt", "15s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    totals.sends += 1;
    if !ok {
        totals.failed_sends += 1;
    }
}

/// RSS growth within one incarnation after warm-up: the median of the last
/// 30 samples over the median of the 30 samples after warm-up.
fn growth(inc: &Incarnation) -> Option<(u64, u64, f64)> {
    let s = &inc.samples;
    if s.len() < 120 {
        return None;
    }
    // Four minutes or 40 % of the samples (one per second), leaving at least
    // one minute to measure.
    let warm = (s.len() * 2 / 5).max(240).min(s.len() - 60);
    let median = |w: &[Sample]| {
        let mut v: Vec<u64> = w.iter().map(|x| x.rss_kib).collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let start = median(&s[warm..warm + 30]);
    let end = median(&s[s.len() - 30..]);
    Some((start, end, end as f64 / start.max(1) as f64 - 1.0))
}

fn report(dir: &Path, elapsed: Duration, t: &Totals, incs: &[Incarnation]) -> Result {
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    for (i, inc) in incs.iter().enumerate() {
        let first = inc.samples.first();
        let last = inc.samples.last();
        let max_fds = inc.samples.iter().map(|s| s.fds).max().unwrap_or(0);
        let g = growth(inc);
        eprintln!(
            "soak: server {i}: {} samples, RSS {} -> {} KiB, fds {} -> {} (max {max_fds}), growth after warm-up {}, ended by {}",
            inc.samples.len(),
            first.map_or(0, |s| s.rss_kib),
            last.map_or(0, |s| s.rss_kib),
            first.map_or(0, |s| s.fds),
            last.map_or(0, |s| s.fds),
            g.map_or("n/a (too short)".into(), |(a, b, r)| format!("{a} -> {b} KiB ({:+.1} %)", r * 100.0)),
            inc.ended_by,
        );
        if let Some((_, _, r)) = g {
            if r > 0.10 {
                problems.push(format!(
                    "server {i}: RSS grew {:.1} % after warm-up",
                    r * 100.0
                ));
            }
        }
        rows.push(serde_json::json!({
            "samples": inc.samples.len(),
            "rss_kib_first": first.map(|s| s.rss_kib),
            "rss_kib_last": last.map(|s| s.rss_kib),
            "fds_first": first.map(|s| s.fds),
            "fds_last": last.map(|s| s.fds),
            "fds_max": max_fds,
            "growth_after_warmup": g.map(|(_, _, r)| r),
            "ended_by": inc.ended_by,
        }));
    }
    let mut csv = String::from("server,seconds,rss_kib,fds\n");
    for (i, inc) in incs.iter().enumerate() {
        for s in &inc.samples {
            csv.push_str(&format!(
                "{i},{:.0},{},{}\n",
                s.at.as_secs_f64(),
                s.rss_kib,
                s.fds
            ));
        }
    }
    let samples = dir.join("samples.csv");
    std::fs::write(&samples, csv).map_err(|e| format!("{}: {e}", samples.display()))?;
    let lost = t.sent.saturating_sub(t.ok + t.failed) + t.unanswered;
    if t.failed_cycles > 0 {
        problems.push(format!("{} bench cycles failed", t.failed_cycles));
    }
    if t.failed_sends > 0 {
        problems.push(format!(
            "{} `smpp send --wait-receipt` runs failed",
            t.failed_sends
        ));
    }
    if t.missing_receipts > 0 {
        problems.push(format!("{} receipts never came", t.missing_receipts));
    }
    if t.failed > 0 {
        problems.push(format!(
            "{} submits answered with an error status",
            t.failed
        ));
    }
    if lost > 0 {
        problems.push(format!("{lost} messages lost or unanswered"));
    }
    let summary = serde_json::json!({
        "minutes": elapsed.as_secs_f64() / 60.0,
        "cycles": t.cycles,
        "failed_cycles": t.failed_cycles,
        "sent": t.sent,
        "ok": t.ok,
        "failed": t.failed,
        "unanswered": t.unanswered,
        "lost": lost,
        "receipts": t.receipts,
        "missing_receipts": t.missing_receipts,
        "sends": t.sends,
        "failed_sends": t.failed_sends,
        "servers": rows,
        "problems": problems,
    });
    let path: PathBuf = dir.join("report.json");
    std::fs::write(&path, format!("{summary:#}\n"))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!(
        "soak: {:.1} min, {} cycles, sent {} ok {} failed {} lost {} receipts {}, sends {} ({} failed); report in {}",
        elapsed.as_secs_f64() / 60.0,
        t.cycles,
        t.sent,
        t.ok,
        t.failed,
        lost,
        t.receipts,
        t.sends,
        t.failed_sends,
        path.display()
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
