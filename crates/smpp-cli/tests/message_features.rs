//! Every message feature `smpp send` can send (WAP push SI, MMS notification, MWI set
//! and clear with counts, USSD operations, billing ids), through the real `smpp serve`
//! to the real `smpp listen`, which must print what was sent (text and --json).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);
const PHONE: &str = "447700900777";

/// A running `smpp serve --memory` on a free port; killed when dropped.
struct Serve {
    child: Child,
    port: String,
}

impl Serve {
    fn start(extra: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_smpp"))
            .args(["serve", "--memory", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("smpp serve runs");
        let lines = reader(child.stdout.take().expect("stdout"));
        let mut port = None;
        loop {
            let line = lines.recv_timeout(WAIT).expect("start-up banner");
            if let Some(addr) = line.strip_prefix("SMPP listening on ") {
                port = addr.rsplit(':').next().map(str::to_owned);
            }
            if line.starts_with("store:") {
                break;
            }
        }
        Serve {
            child,
            port: port.expect("an SMPP address"),
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn reader(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// `smpp listen` bound for PHONE (5.0), waiting for `count` items; returns once bound.
fn listen(serve: &Serve, count: usize, json: bool) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args([
            "listen",
            "-v",
            "--port",
            &serve.port,
            "--address-range",
            PHONE,
        ])
        .args(["--interface-version", "5.0", "--timeout", "20s", "--count"])
        .arg(count.to_string())
        .args(json.then_some("--json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("smpp listen runs");
    let stderr = reader(child.stderr.take().expect("stderr"));
    loop {
        let line = stderr.recv_timeout(WAIT).expect("smpp listen binds");
        if line.contains("bound; listening") {
            break;
        }
    }
    let stdout = reader(child.stdout.take().expect("stdout"));
    (child, stdout)
}

fn send(serve: &Serve, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args(["send", "--port", &serve.port, "--to", PHONE])
        .args(args)
        .output()
        .expect("smpp send runs");
    assert!(
        out.status.success(),
        "smpp send {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn next(lines: &mpsc::Receiver<String>) -> String {
    lines
        .recv_timeout(WAIT)
        .expect("smpp listen printed a line")
}

fn next_json(lines: &mpsc::Receiver<String>) -> Value {
    serde_json::from_str(&next(lines)).expect("one JSON object per line")
}

#[test]
fn every_feature_arrives_as_sent_in_json() {
    let serve = Serve::start(&[]);
    let (mut child, lines) = listen(&serve, 7, true);

    let url = format!("https://example.com/{}", "offer/".repeat(30));
    send(&serve, &["--wap-push", &url, "--text", "Winter sale"]);
    let m = next_json(&lines);
    assert_eq!(m["kind"], "wap_push_si", "{m}");
    assert!(
        m["parts"].as_u64().unwrap() > 1,
        "a long push is concatenated: {m}"
    );
    assert_eq!(m["wap_push"]["url"], url.as_str());
    assert_eq!(m["wap_push"]["content_type"], "application/vnd.wap.sic");
    assert_eq!(m["wap_push"]["text"], "Winter sale");

    send(
        &serve,
        &[
            "--mms-notify",
            "http://mmsc.example/m/1",
            "--mms-size",
            "4096",
            "--text",
            "Pics",
        ],
    );
    let m = next_json(&lines);
    assert_eq!(m["kind"], "mms_notification", "{m}");
    assert_eq!(m["wap_push"]["content_location"], "http://mmsc.example/m/1");
    assert_eq!(m["wap_push"]["url"], "http://mmsc.example/m/1");
    assert_eq!(m["wap_push"]["size"], 4096);
    assert_eq!(m["wap_push"]["subject"], "Pics");
    assert_eq!(m["wap_push"]["expiry"]["relative"], 7 * 24 * 3600);

    send(&serve, &["--mwi", "on:5", "--text", "5 voicemails"]);
    let m = next_json(&lines);
    assert_eq!(m["kind"], "mwi", "{m}");
    assert_eq!(m["mwi"][0]["active"], true);
    assert_eq!(m["mwi"][0]["kind"], "voicemail");
    assert_eq!(m["mwi"][0]["count"], 5);
    assert_eq!(m["text"], "5 voicemails");

    send(&serve, &["--mwi", "off"]);
    let m = next_json(&lines);
    assert_eq!(
        (m["mwi"][0]["active"].clone(), m["mwi"][0]["count"].clone()),
        (false.into(), 0.into()),
        "{m}"
    );

    send(&serve, &["--ussd", "pssr-indication", "--text", "*100#"]);
    let m = next_json(&lines);
    assert_eq!(m["kind"], "ussd", "{m}");
    assert_eq!(m["ussd"]["op"], 1);
    assert_eq!(m["ussd"]["name"], "PSSR indication");
    assert_eq!(m["text"], "*100#");

    send(&serve, &["--ussd", "0x11", "--text", "Bye"]);
    let m = next_json(&lines);
    assert_eq!(
        (m["ussd"]["name"].clone(), m["text"].clone()),
        ("PSSR response".into(), "Bye".into()),
        "{m}"
    );

    send(
        &serve,
        &[
            "--text",
            "billed",
            "--billing-id",
            "80c0ffee",
            "--interface-version",
            "5.0",
        ],
    );
    let m = next_json(&lines);
    assert_eq!(
        (m["kind"].clone(), m["billing_id"].clone()),
        ("message".into(), "80c0ffee".into()),
        "{m}"
    );

    let status = child.wait().expect("smpp listen ends");
    assert!(status.success(), "smpp listen got its 7 items");
}

#[test]
fn the_text_output_names_each_feature() {
    let serve = Serve::start(&[]);
    let (mut child, lines) = listen(&serve, 4, false);
    send(
        &serve,
        &["--wap-push", "http://x.example/a", "--text", "Hi"],
    );
    let line = next(&lines);
    assert!(line.starts_with("WAP push SI from"), "{line}");
    assert!(line.ends_with(r#"http://x.example/a "Hi""#), "{line}");
    send(&serve, &["--mms-notify", "http://m.example/1"]);
    let line = next(&lines);
    assert!(
        line.starts_with("MMS notification from")
            && line.contains("http://m.example/1 (transaction"),
        "{line}"
    );
    send(&serve, &["--mwi", "on:2"]);
    let line = next(&lines);
    assert!(
        line.starts_with("MWI set voicemail (2 waiting) from"),
        "{line}"
    );
    send(&serve, &["--ussd", "ussr-request", "--text", "1 Yes 2 No"]);
    let line = next(&lines);
    assert!(
        line.starts_with("USSD USSR request from") && line.ends_with(r#""1 Yes 2 No""#),
        "{line}"
    );
    assert!(child.wait().expect("smpp listen ends").success());
}

#[test]
fn feature_flags_need_no_text_and_bad_values_are_usage_errors() {
    for args in [
        vec!["--mwi", "maybe"],
        vec!["--mwi", "on:300"],
        vec!["--mwi", "off:3"],
        vec!["--ussd", "shout"],
        vec!["--wap-push", "http://a", "--mwi", "on"],
        vec!["--hex", "00", "--wap-push", "http://a"],
        vec!["--mms-size", "10", "--text", "x"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_smpp"))
            .args(["send", "--port", "1", "--to", PHONE])
            .args(&args)
            .output()
            .expect("smpp send runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let help = Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args(["send", "--help"])
        .output()
        .expect("help");
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--wap-push",
        "--mms-notify",
        "--mwi",
        "--ussd",
        "--billing-id",
    ] {
        assert!(help.contains(flag), "{flag} in send --help");
    }
}
