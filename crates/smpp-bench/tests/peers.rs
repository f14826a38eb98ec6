//! The peer programs `cargo xtask bench` drives: each server announces its
//! address, each client moves messages against it and reports them as JSON,
//! and nothing hangs (briefly, in debug builds: figures come from the xtask).

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smpp-bench");

/// A server, stopped (stdin closed, then killed) when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(sub: &str) -> Server {
        let mut child = Command::new(BIN)
            .arg(sub)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("SMPP listening on 127.0.0.1:")
            .unwrap_or_else(|| panic!("{sub}: {line:?}"))
            .parse()
            .unwrap();
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a client; returns its "ok" count.
fn client(sub: &str, port: u16, extra: &[&str]) -> u64 {
    let mut child = Command::new(BIN)
        .args([sub, "--port", &port.to_string(), "--secs", "0.3"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("{sub} hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{sub}: {out:?}");
    let ok = stdout
        .split("\"ok\":")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{sub}: no ok count in {stdout:?}"));
    assert!(stdout.contains("\"failed\":0"), "{sub}: {stdout}");
    ok
}

#[test]
fn raw_ceiling_moves_frames() {
    let server = Server::start("serve-raw");
    assert!(
        client(
            "client-raw",
            server.port,
            &["--window", "8", "--sessions", "2"]
        ) > 0
    );
}

#[test]
fn smpp34_pair_and_crossings() {
    let smpp34 = Server::start("serve-smpp34");
    assert!(client("client-smpp34", smpp34.port, &["--window", "8"]) > 0);
    let ours = Server::start("serve-ours");
    assert!(client("client-smpp34", ours.port, &["--window", "8"]) > 0);
}

#[test]
fn rusmppc_with_and_without_repolling() {
    let ours = Server::start("serve-ours");
    assert!(client("client-rusmppc", ours.port, &["--window", "4"]) > 0);
    // Window 32: as shipped it would stall; re-polled it moves.
    assert!(
        client(
            "client-rusmppc",
            ours.port,
            &["--window", "32", "--repoll", "8"]
        ) > 0
    );
}

#[test]
fn idle_binds_bind_and_hold() {
    let ours = Server::start("serve-ours");
    let mut probe = Command::new(BIN)
        .args([
            "idle-binds",
            "--port",
            &ours.port.to_string(),
            "--count",
            "50",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(probe.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "BOUND 50");
    drop(probe.stdin.take()); // stdin closed: it lets go
    let start = Instant::now();
    while probe.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the probe did not exit"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
