//! Running one client against a server and reading what it cost: throughput
//! and latency from `smpp bench --json` (or a peer's equivalent), CPU time
//! from `/proc/<pid>/stat`, and the server's RSS with many idle binds.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{bench_cmd, Bins, ClientKind, Sample, Scenario, Server};

/// Clock ticks per second of `/proc/*/stat` times (USER_HZ: 100 on Linux).
pub(crate) const TICKS_PER_SECOND: f64 = 100.0;

/// (utime + stime, cutime + cstime) of a process, in clock ticks.
pub(crate) fn cpu_ticks(pid: &str) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some((field(14)? + field(15)?, field(16)? + field(17)?))
}

/// [`measure`], plus the CPU time the client and the server spent per message:
/// a figure that other load on the machine disturbs much less than throughput.
pub(super) fn measure_cpu(bins: &Bins, s: &Scenario, port: u16, secs: f64, server: u32) -> Sample {
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
pub(super) fn measure(
    bins: &Bins,
    s: &Scenario,
    port: u16,
    secs: f64,
    rate: Option<f64>,
) -> Sample {
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
pub(crate) fn output_limited(cmd: &mut Command, limit: Duration) -> Option<std::process::Output> {
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

/// What the idle-binds probe measured.
pub(crate) struct Rss {
    pub(crate) binds: usize,
    pub(crate) bound: Option<usize>,
    pub(crate) before_kib: Option<u64>,
    pub(crate) after_kib: Option<u64>,
    pub(crate) note: String,
}

/// Opens `binds` idle binds to our server and reads its VmRSS before and after.
pub(crate) fn idle_rss(bins: &Bins, server: &Server, binds: usize) -> Rss {
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
    // About 2,000 binds a second here; generous beyond that.
    let limit = Duration::from_secs(120 + binds as u64 / 500);
    match rx.recv_timeout(limit) {
        Ok(bound) => {
            rss.bound = bound;
            // Let the server settle: quiet sessions give their buffers back
            // after a second (smpp-async's `QUIET`).
            std::thread::sleep(Duration::from_secs(2));
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
pub(crate) fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(str::to_owned)
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
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
}
