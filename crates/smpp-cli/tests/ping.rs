//! `smpp ping` (the real binary) against the real `smpp serve` binary on
//! 127.0.0.1:0: every probe answered, JSON output, and loss (exit code 1)
//! when the server stops answering mid-run (SIGSTOP) or never answers.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// A running `smpp serve`; killed when dropped.
struct Serve {
    child: Child,
    addr: SocketAddr,
}

impl Serve {
    fn spawn(cwd: &Path) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_smpp"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("smpp runs");
        let lines = lines_of(child.stdout.take().expect("stdout piped"));
        let addr = loop {
            let line = lines.recv_timeout(WAIT).expect("start-up banner in time");
            if let Some(addr) = line.strip_prefix("SMPP listening on ") {
                break addr.parse().expect("an address");
            }
        };
        Serve { child, addr }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill(); // SIGKILL ends a stopped process too
        let _ = self.child.wait();
    }
}

fn lines_of(out: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn ping(addr: SocketAddr, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args(["ping", "--host", "127.0.0.1", "--port"])
        .arg(addr.port().to_string())
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("smpp runs")
}

/// Waits for `child` (at most [`WAIT`]): its exit code, stdout and stderr.
fn finish(child: Child) -> (Option<i32>, String, String) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || drop(tx.send(child.wait_with_output())));
    let out = rx.recv_timeout(WAIT).expect("ping ends in time").unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn every_probe_answered_by_smpp_serve() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::spawn(dir.path());
    let (code, stdout, stderr) = finish(ping(serve.addr, &["--count", "3", "--interval", "20ms"]));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("PING 127.0.0.1:"), "{stdout}");
    for (i, line) in lines[1..4].iter().enumerate() {
        let prefix = format!("enquire_link seq={} time=", i + 1);
        let ms = line
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(" ms"))
            .unwrap_or_else(|| panic!("{line:?} in {stdout}"));
        let ms: f64 = ms.parse().unwrap();
        assert!(ms > 0.0 && ms < 20_000.0, "{line}");
    }
    assert!(lines[4].ends_with("smpp ping statistics ---"), "{stdout}");
    assert_eq!(lines[5], "3 probes, 3 answered, 0.0% loss");
    assert!(lines[6].starts_with("rtt min/avg/max = "), "{stdout}");
    assert_eq!(lines.len(), 7, "{stdout}");

    let (code, stdout, stderr) = finish(ping(
        serve.addr,
        &["--count", "2", "--interval", "10ms", "--json"],
    ));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(events.len(), 3, "{stdout}");
    for (i, e) in events[..2].iter().enumerate() {
        assert_eq!(e["event"], "reply");
        assert_eq!(e["seq"], i as u64 + 1);
        assert!(e["time_ms"].as_f64().unwrap() > 0.0);
    }
    let summary = &events[2];
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["sent"], 2);
    assert_eq!(summary["received"], 2);
    assert_eq!(summary["loss_percent"], 0.0);
    let (min, max) = (summary["min_ms"].as_f64(), summary["max_ms"].as_f64());
    assert!(min.unwrap() <= max.unwrap(), "{summary}");
}

#[test]
fn a_server_that_stops_answering_mid_run_is_loss_and_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::spawn(dir.path());
    let mut child = ping(
        serve.addr,
        &[
            "--count",
            "4",
            "--interval",
            "200ms",
            "--timeout",
            "300ms",
            "--json",
        ],
    );
    let lines = lines_of(child.stdout.take().unwrap());
    let mut events = Vec::new();
    for _ in 0..2 {
        let line = lines.recv_timeout(WAIT).expect("a probe in time");
        let e: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(e["event"], "reply", "{line}");
        events.push(e);
    }
    // The second answer is in: the third probe goes 200 ms later, to a
    // server that no longer runs (its socket stays open, silent).
    serve.signal("-STOP");
    let (code, _, stderr) = finish(child);
    serve.signal("-CONT");
    events.extend(
        lines
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(&l).unwrap()),
    );
    assert_eq!(code, Some(1), "{events:?} {stderr}");
    assert_eq!(events.len(), 5, "{events:?}");
    for e in &events[2..4] {
        assert_eq!(e["event"], "lost", "{e}");
        assert_eq!(e["error"], "timeout", "{e}");
    }
    let summary = &events[4];
    assert_eq!(summary["sent"], 4);
    assert_eq!(summary["received"], 2);
    assert_eq!(summary["loss_percent"], 50.0);
}

#[test]
fn a_listener_that_never_answers_the_bind_fails_with_exit_code_1() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts, reads nothing, answers nothing.
    let held = std::thread::spawn(move || listener.accept().map(|(tcp, _)| tcp));
    let (code, stdout, stderr) = finish(ping(addr, &["--count", "2", "--timeout", "300ms"]));
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("cannot bind") && stderr.contains("no response in time"),
        "{stderr}"
    );
    drop(held.join());
}
