//! End to end through the real binaries: `smpp serve` with its HTTP API and
//! CDR file, `smpp listen` receiving an MO injected over HTTP, `smpp send`
//! waiting for its receipt, then the message state, the metrics and the CDR.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SMPP: &str = env!("CARGO_BIN_EXE_smpp");

struct Serve {
    child: Child,
    smpp: SocketAddr,
    http: SocketAddr,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(cdr: &std::path::Path) -> Serve {
    let mut child = Command::new(SMPP)
        .args([
            "serve",
            "--memory",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ])
        .args(["--dlr-delay", "0s", "--cdr"])
        .arg(cdr)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("smpp serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut smpp, mut http) = (None, None);
    while smpp.is_none() || http.is_none() {
        let line = lines
            .next()
            .expect("serve prints its addresses")
            .expect("a line");
        if let Some(a) = line.strip_prefix("SMPP listening on ") {
            smpp = a.trim().parse().ok();
        }
        if let Some(a) = line.strip_prefix("HTTP listening on ") {
            http = a.trim().parse().ok();
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    Serve {
        child,
        smpp: smpp.expect("SMPP address"),
        http: http.expect("HTTP address"),
    }
}

/// One HTTP/1.1 request; returns (status, body).
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the HTTP API");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).expect("a response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn smpp_cmd(serve: &Serve, sub: &str) -> Command {
    let mut c = Command::new(SMPP);
    c.args([sub, "--port", &serve.smpp.port().to_string()]);
    c
}

#[test]
fn mo_over_http_reaches_listen_and_a_send_gets_its_receipt_metrics_and_cdr() {
    let dir = tempfile::tempdir().unwrap();
    let cdr = dir.path().join("cdr.jsonl");
    let serve = serve(&cdr);

    // A receiver, and an MO for it injected over HTTP.
    let listen = smpp_cmd(&serve, "listen")
        .args([
            "--bind",
            "receiver",
            "--json",
            "--count",
            "1",
            "--timeout",
            "20s",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("smpp listen starts");
    let mo = r#"{"from":"447700900111","to":"447700900222","text":"hello over HTTP"}"#;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = http(serve.http, "POST", "/api/mo", mo);
        if status == 200 {
            assert!(body.contains("message_ids"), "{body}");
            break;
        }
        // 404 until the receiver is bound.
        assert_eq!(status, 404, "{body}");
        assert!(Instant::now() < deadline, "the receiver never bound");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = listen.wait_with_output().expect("listen ends");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "listen: {printed}");
    assert!(printed.contains("hello over HTTP"), "{printed}");

    // A submit that waits for its receipt.
    let out = smpp_cmd(&serve, "send")
        .args([
            "--from",
            "447700900001",
            "--to",
            "447700900002",
            "--text",
            "billing test",
        ])
        .args(["--wait-receipt", "10s", "--json"])
        .output()
        .expect("smpp send runs");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "send: {printed}");
    assert!(printed.contains("DELIVRD"), "{printed}");
    let id = printed
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "submitted")
        .and_then(|v| v["message_id"].as_str().map(str::to_owned))
        .expect("a submitted event with the message id");

    // Its state over HTTP.
    let (status, body) = http(serve.http, "GET", &format!("/api/messages/{id}"), "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("DELIVRD"), "{body}");
    let (status, _) = http(serve.http, "GET", "/api/messages/NO-SUCH-ID", "");
    assert_eq!(status, 404);

    // The metrics moved.
    let (status, metrics) = http(serve.http, "GET", "/metrics", "");
    assert_eq!(status, 200);
    let value = |prefix: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(
        value("smpp_requests_total{command=\"submit_sm\"") >= 1.0,
        "{metrics}"
    );
    assert!(value("smpp_binds_total") >= 2.0, "{metrics}");
    assert!(value("smpp_receipts_sent_total") >= 1.0, "{metrics}");

    // One billing record for the submit, with its final state.
    let deadline = Instant::now() + Duration::from_secs(10);
    let record = loop {
        let text = std::fs::read_to_string(&cdr).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(&id)) {
            break serde_json::from_str::<serde_json::Value>(line).expect("a JSON line");
        }
        assert!(Instant::now() < deadline, "no CDR for {id}: {text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(record["final_state"], "DELIVRD");
    assert_eq!(record["account"], "smppclient1");
    assert_eq!(record["destination_addr"], "447700900002");
}
