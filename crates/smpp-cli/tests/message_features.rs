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
    listen_at(serve, count, json, "5.0")
}

/// `smpp listen` bound for PHONE with `version`, waiting for `count` items.
fn listen_at(
    serve: &Serve,
    count: usize,
    json: bool,
    version: &str,
) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args([
            "listen",
            "-v",
            "--port",
            &serve.port,
            "--address-range",
            PHONE,
        ])
        .args([
            "--interface-version",
            version,
            "--timeout",
            "20s",
            "--count",
        ])
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

/// A USSD application bound for `service` on `serve`: answers one dialog with a menu,
/// returns what it heard (the dialled code, then the answers).
async fn ussd_application(serve: &Serve, service: &str) -> tokio::task::JoinHandle<Vec<String>> {
    use smpp_proto::message::ussd::{UssdMessage, UssdServiceDialog};
    use smpp_proto::pdu::{Bind, COctetString};
    use smpp_proto::session::{BindKind, SessionConfig};

    let bind = Bind {
        system_id: "smppclient1".into(),
        password: "password".into(),
        interface_version: 0x34,
        address_range: COctetString::copy_from_str(service),
        ..Default::default()
    };
    let (client, inbound) = smpp_tokio::Client::connect(
        &format!("127.0.0.1:{}", serve.port),
        BindKind::Transceiver,
        bind,
        SessionConfig::default(),
    )
    .await
    .expect("the application binds");
    tokio::spawn(async move {
        let next = || async {
            let request = tokio::time::timeout(WAIT, inbound.recv())
                .await
                .expect("a USSD message in time")
                .expect("session open");
            UssdMessage::from_body(request.body()).expect("a USSD message")
        };
        let send = |m: UssdMessage| {
            let client = &client;
            async move {
                client
                    .submit_message(&m.to_short_message())
                    .await
                    .expect("accepted");
            }
        };
        let (mut dialog, dialled) = UssdServiceDialog::accept(&next().await).expect("a dial");
        let mut heard = vec![dialled];
        send(dialog.prompt("1 Balance\n2 Top-up").unwrap()).await;
        let choice = dialog.handle(&next().await).expect("an answer");
        heard.push(choice);
        if dialog.is_ended() {
            return heard; // cancelled
        }
        send(dialog.prompt("Amount?").unwrap()).await;
        heard.push(dialog.handle(&next().await).expect("an answer"));
        if !dialog.is_ended() {
            send(dialog.end(&format!("Topped up {} EUR", heard[2])).unwrap()).await;
        }
        let _ = client.unbind().await;
        heard
    })
}

async fn smpp_ussd(serve: &Serve, stdin: &[u8]) -> Output {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args([
            "ussd",
            "--port",
            &serve.port,
            "--from",
            "+447700900778",
            "--to",
            "555",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("smpp ussd runs");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).await.expect("stdin written");
    drop(input);
    tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("smpp ussd ends in time")
        .expect("wait")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smpp_ussd_walks_a_menu_with_answers_from_stdin() {
    let serve = Serve::start(&[]);
    let app = ussd_application(&serve, "555").await;
    let out = smpp_ussd(&serve, b"2\n10\n").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "1 Balance",
            "2 Top-up",
            "> 2",
            "Amount?",
            "> 10",
            "Topped up 10 EUR"
        ]
    );
    assert_eq!(app.await.unwrap(), ["*555#", "2", "10"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smpp_ussd_cancels_the_dialog_when_stdin_ends_at_a_prompt() {
    let serve = Serve::start(&[]);
    let app = ussd_application(&serve, "555").await;
    let out = smpp_ussd(&serve, b"").await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("> (cancelled)"));
    // The application heard the dial and an empty, session-ending confirm.
    assert_eq!(app.await.unwrap(), ["*555#", ""]);
}

/// `smpp send` to `to` (not PHONE: the message is not routed to the
/// listener, only its receipt comes back to it); returns the message id.
fn send_to(serve: &Serve, to: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args(["send", "--port", &serve.port, "--to", to])
        .args(args)
        .output()
        .expect("smpp send runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "smpp send {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .trim()
        .strip_prefix("part 1/1 message_id ")
        .unwrap_or_else(|| panic!("one id: {stdout}"))
        .to_owned()
}

/// Issue #21, point 6a: the receipt of a data_sm goes back as a data_sm to
/// a 5.0 receiver, and to a 3.4 one when an address is too long for a
/// deliver_sm (that message got no receipt at all before); `smpp listen`
/// recognises it as a receipt either way. A 3.4 receiver gets deliver_sm
/// receipts for everything else, as before.
#[test]
fn data_sm_receipts_come_back_as_data_sm_where_deliver_sm_cannot_or_should_not() {
    let long = "4477009001234567890123456789012"; // 31 digits
    for (version, to, data_sm, command) in [
        ("5.0", "447700900123", true, "data_sm"),
        ("3.4", long, true, "data_sm"),
        ("3.4", "447700900123", true, "deliver_sm"),
        ("5.0", "447700900123", false, "deliver_sm"),
    ] {
        let serve = Serve::start(&[]);
        let (mut child, lines) = listen_at(&serve, 1, true, version);
        let mut args = vec![
            "--text",
            "Hello data",
            "--receipt",
            "--interface-version",
            version,
        ];
        if data_sm {
            args.push("--data-sm");
        }
        let id = send_to(&serve, to, &args);
        let m = next_json(&lines);
        let case = format!("{version} {to} data_sm={data_sm}: {m}");
        assert_eq!(m["type"], "receipt", "{case}");
        assert_eq!(m["command"], command, "{case}");
        assert_eq!(m["id"], id.as_str(), "{case}");
        assert_eq!(m["state"], "DELIVRD", "{case}");
        assert_eq!(m["from"], to, "{case}");
        let status = child.wait().expect("smpp listen ends");
        assert!(status.success(), "{case}");
    }

    // `smpp send --wait-receipt` takes a data_sm receipt as the receipt too.
    let serve = Serve::start(&[]);
    let out = Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args(["send", "--port", &serve.port, "--to", long, "--data-sm"])
        .args(["--text", "Hello", "--wait-receipt", "20s", "--json"])
        .output()
        .expect("smpp send runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"event\":\"receipt\""), "{stdout}");
    assert!(stdout.contains("\"state\":\"DELIVRD\""), "{stdout}");
}

/// Issue #21, v5.0 billing on the broadcast family: a broadcast_sm with
/// billing_identification, sent by our client to the real `smpp serve --cdr`,
/// gets a CDR line that carries it, as a submit_sm does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_billed_broadcast_gets_a_cdr_line_with_its_billing_id() {
    use bytes::Bytes;
    use smpp_proto::message::broadcast::{
        frequency_unit, BillingIdentification, BroadcastArea, BroadcastBuilder,
    };
    use smpp_proto::pdu::{Bind, BroadcastContentType};
    use smpp_proto::session::{BindKind, SessionConfig};

    let dir = tempfile::tempdir().expect("tempdir");
    let cdr = dir.path().join("cdr.jsonl");
    let serve = Serve::start(&["--cdr", cdr.to_str().expect("a UTF-8 path")]);
    let bind = Bind {
        system_id: "smppclient1".into(),
        password: "password".into(),
        interface_version: 0x50,
        ..Default::default()
    };
    let (client, _inbound) = smpp_tokio::Client::connect(
        &format!("127.0.0.1:{}", serve.port),
        BindKind::Transmitter,
        bind,
        SessionConfig::default(),
    )
    .await
    .expect("binds");
    let billing = BillingIdentification {
        format: 0x80,
        data: Bytes::from_static(b"acct-9/cbs"),
    };
    let broadcast = BroadcastBuilder::new(
        vec![BroadcastArea::name("Area1")],
        BroadcastContentType {
            network_type: 1,
            content_type: 0x0001,
        },
        1,
        frequency_unit::MINUTES,
        5,
    )
    .source(5, 0, "CityAlert")
    .payload(b"Storm warning".to_vec(), 0x00.into())
    .billing(&billing)
    .expect("billing fits")
    .build()
    .expect("builds");
    let id = tokio::time::timeout(WAIT, client.broadcast(broadcast))
        .await
        .expect("answered in time")
        .expect("accepted")
        .to_string_lossy()
        .into_owned();
    // A submit_sm billed the same way, for comparison.
    let message = smpp_proto::message::ShortMessage::text("billed")
        .from("Shop")
        .to("447700900123")
        .billing(&billing)
        .expect("billing fits");
    let submitted = tokio::time::timeout(WAIT, client.submit_message(&message))
        .await
        .expect("answered in time")
        .expect("accepted")[0]
        .to_string_lossy()
        .into_owned();
    let _ = client.unbind().await;

    // The lines are appended when each reaches its final state.
    let line_of = |id: &str| {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let text = std::fs::read_to_string(&cdr).unwrap_or_default();
            if let Some(line) = text
                .lines()
                .find(|l| l.contains(&format!("\"message_id\":\"{id}\"")))
            {
                return serde_json::from_str::<Value>(line).expect("a JSON line");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no CDR for {id}: {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let hex = "80616363742d392f636273"; // 0x80 "acct-9/cbs"
    let b = line_of(&id);
    assert_eq!(b["billing_identification"], hex, "{b}");
    assert_eq!(b["source_addr"], "CityAlert", "{b}");
    assert_eq!(b["destination_addr"], "", "{b}");
    assert_eq!(b["final_state"], "DELIVRD", "{b}");
    let s = line_of(&submitted);
    assert_eq!(s["billing_identification"], hex, "{s}");
    assert_eq!(s["destination_addr"], "447700900123", "{s}");
}

/// Issue #21, points 6b and 7 end to end: texts sent in Latin-1, Cyrillic and
/// Hebrew (forced, or chosen from `--smsc-codings`), long ones concatenated,
/// go through the real `smpp serve` to `smpp listen`, which decodes each
/// data_coding (0x03, 0x06, 0x07) back to the text.
#[test]
fn single_octet_codings_arrive_decoded_at_smpp_listen() {
    let serve = Serve::start(&[]);
    let long_hebrew = "שלום עולם ".repeat(20); // 200 characters: 2 parts
    let cases: [(&[&str], &str, u64); 4] = [
        (&["--coding", "latin1"], "Grüße, crêpe «ou» tarte?", 3),
        (&["--coding", "cyrillic"], "Привет, мир! №5", 6),
        (&["--smsc-codings", "latin1,hebrew"], &long_hebrew, 7),
        (&["--smsc-codings", "cyrillic"], "До свидания", 6),
    ];
    let (mut child, lines) = listen(&serve, cases.len(), true);
    for (flags, text, dc) in cases {
        let mut args = vec!["--text", text];
        args.extend_from_slice(flags);
        send(&serve, &args);
        let m = next_json(&lines);
        assert_eq!(m["type"], "message", "{m}");
        assert_eq!(m["data_coding"], dc, "{flags:?}: {m}");
        assert_eq!(m["text"], text, "{flags:?}: {m}");
    }
    let status = child.wait().expect("smpp listen ends");
    assert!(status.success(), "smpp listen got every message");
}
