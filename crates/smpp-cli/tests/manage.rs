//! `smpp query`, `smpp cancel` and `smpp replace` (the real binary) against
//! `smpp serve` run in-process, on a message sent with `smpp send`.

mod send_support;

use std::time::Duration;

use send_support::{smpp, text};
use smpp_cli::serve::{self, ServeConfig};

async fn sent_id(port: &str, from: &str) -> String {
    let out = smpp(&[
        "send",
        "--port",
        port,
        "--from",
        from,
        "--to",
        "447700900001",
        "--text",
        "Hello",
    ])
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    stdout
        .trim()
        .strip_prefix("part 1/1 message_id ")
        .expect("one id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_replace_and_cancel_a_pending_message() {
    let mut config = ServeConfig::for_tests();
    config.dlr_delay = Duration::from_secs(3600); // stays ENROUTE
    let srv = serve::start(config).await.expect("server starts");
    let port = srv.smpp_addr().port().to_string();
    let id = sent_id(&port, "447700900999").await;
    let base =
        |cmd: &'static str| vec![cmd, "--port", &port, "--id", &id, "--from", "447700900999"];

    let out = smpp(&base("query")).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        format!("message_id {id} state ENROUTE final_date - error 0\n")
    );

    let mut replace = base("replace");
    replace.extend(["--text", "Hello again", "--validity", "2h"]);
    let out = smpp(&replace).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, format!("message_id {id} replaced\n"));

    let out = smpp(&base("cancel")).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, format!("message_id {id} cancelled\n"));

    let mut query = base("query");
    query.push("--json");
    let out = smpp(&query).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(v["state"], "DELETED");
    assert_eq!(v["message_id"], id.as_str());

    // A cancelled message cannot be replaced; an unknown id cannot be queried.
    let out = smpp(&replace).await;
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let out = smpp(&["query", "--port", &port, "--id", "FFFFFFFF"]).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("error"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_takes_one_part_only() {
    let long = "x".repeat(300);
    let out = smpp(&["replace", "--port", "1", "--id", "1", "--text", &long]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("replace_sm carries one"), "{stderr}");
}
