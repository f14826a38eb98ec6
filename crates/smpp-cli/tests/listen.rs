//! `smpp listen` (the real binary) against an in-process SMSC that delivers
//! MO messages and receipts to it.

mod send_support;

use std::process::Stdio;
use std::time::Duration;

use send_support::{start, Smsc};
use smpp_proto::message::{DeliveryReceipt, MessageState, ReferenceCounter, ShortMessage};
use smpp_proto::pdu::{CommandStatus, DataSm, DeliverSm, TlvTag, Tlvs};
use smpp_tokio::Connection;

fn listen(smsc: &Smsc, extra: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args(["listen", "--host", "127.0.0.1", "--port"])
        .arg(smsc.addr.port().to_string())
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn smpp listen")
}

/// Waits until `smpp listen` has bound.
async fn bound(smsc: &Smsc) -> Connection {
    for _ in 0..200 {
        if let Some(conn) = smsc.handle.receiver("smppclient1") {
            return conn;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("smpp listen did not bind");
}

async fn finish(child: tokio::process::Child) -> (i32, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("smpp listen ended in time")
        .expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn deliver(conn: &Connection, sm: DeliverSm) {
    let resp = conn.deliver(sm).await.expect("deliver_sm answered");
    assert_eq!(resp.command_status, CommandStatus::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_messages_reassembled_and_receipts_parsed() {
    let smsc = start().await;
    let child = listen(&smsc, &["--json", "--count", "4", "--timeout", "20s"]);
    let conn = bound(&smsc).await;

    // A 3-part GSM message, parts out of order, one of them twice.
    let long = "The quick brown fox jumps over the lazy dog. ".repeat(8);
    let mut refs = ReferenceCounter::new(7);
    let parts = ShortMessage::text(long.trim_end())
        .from("447700900123")
        .to("1234")
        .build(&mut refs)
        .expect("parts");
    assert_eq!(parts.len(), 3);
    for i in [2, 0, 0, 1] {
        deliver(&conn, parts[i].clone()).await;
    }
    // A UCS-2 message in one part.
    let ucs2 = ShortMessage::text("Привет, мир")
        .from("447700900124")
        .to("1234")
        .build(&mut refs)
        .expect("part");
    deliver(&conn, ucs2[0].clone()).await;
    // A receipt, text and TLVs.
    let mut receipt = DeliveryReceipt::new("0000A1B2", MessageState::Undeliverable);
    receipt.error = Some("034".into());
    let mut tlvs = Tlvs::new();
    tlvs.set_text(TlvTag::RECEIPTED_MESSAGE_ID, b"0000A1B2")
        .expect("tlv");
    tlvs.set_u8(TlvTag::MESSAGE_STATE, MessageState::Undeliverable.to_u8());
    deliver(
        &conn,
        DeliverSm {
            source_addr: "447700900123".into(),
            destination_addr: "Acme".into(),
            esm_class: 0x04,
            short_message: receipt.to_text().into_bytes().into(),
            tlvs,
            ..Default::default()
        },
    )
    .await;
    // A data_sm with its text in message_payload.
    let mut tlvs = Tlvs::new();
    tlvs.set(TlvTag::MESSAGE_PAYLOAD, b"payload text")
        .expect("tlv");
    let resp = conn
        .request(smpp_proto::pdu::Body::DataSm(Box::new(DataSm {
            source_addr: "447700900125".into(),
            destination_addr: "1234".into(),
            data_coding: 0x03,
            tlvs,
            ..Default::default()
        })))
        .await
        .expect("data_sm answered");
    assert_eq!(resp.command_status, CommandStatus::OK);

    let (code, stdout, stderr) = finish(child).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let items: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(items.len(), 4, "{stdout}");
    assert_eq!(items[0]["type"], "message");
    assert_eq!(items[0]["command"], "deliver_sm");
    assert_eq!(items[0]["from"], "447700900123");
    assert_eq!(items[0]["to"], "1234");
    assert_eq!(items[0]["parts"], 3);
    assert_eq!(items[0]["text"], long.trim_end());
    assert_eq!(items[1]["text"], "Привет, мир");
    assert_eq!(items[1]["data_coding"], 8);
    assert_eq!(items[2]["type"], "receipt");
    assert_eq!(items[2]["id"], "0000A1B2");
    assert_eq!(items[2]["state"], "UNDELIV");
    assert_eq!(items[2]["receipt"]["error"], "034");
    assert_eq!(items[3]["command"], "data_sm");
    assert_eq!(items[3]["text"], "payload text");
    // The binary unbinds after --count: the connection goes away.
    for _ in 0..100 {
        if smsc.handle.connections().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("smpp listen did not unbind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_output_and_transceiver_bind() {
    let smsc = start().await;
    let child = listen(&smsc, &["--bind", "transceiver", "--count", "2"]);
    let conn = bound(&smsc).await;
    assert_eq!(
        conn.bind_kind(),
        Some(smpp_proto::session::BindKind::Transceiver)
    );
    let mut refs = ReferenceCounter::new(1);
    let sm = ShortMessage::text("Hello\nthere")
        .from("447700900123")
        .to("1234")
        .build(&mut refs)
        .expect("part");
    deliver(&conn, sm[0].clone()).await;
    let binary = ShortMessage::binary(vec![1u8, 2, 0xff], smpp_proto::message::DataCoding::BINARY)
        .from("447700900123")
        .to("1234")
        .build(&mut refs)
        .expect("part");
    deliver(&conn, binary[0].clone()).await;
    let (code, stdout, stderr) = finish(child).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stdout,
        "message from 447700900123 to 1234 (1 part, data_coding 0x00): \"Hello\\nthere\"\n\
         message from 447700900123 to 1234 (1 part, data_coding 0x04): binary 0102ff\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_before_count_exits_1() {
    let smsc = start().await;
    let child = listen(&smsc, &["--count", "1", "--timeout", "300ms"]);
    let (code, stdout, stderr) = finish(child).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("0 of 1 items received"), "{stderr}");

    // Without --count, a timeout is the normal end.
    let child = listen(&smsc, &["--timeout", "300ms"]);
    let (code, stdout, stderr) = finish(child).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_message_is_reported_when_the_smsc_closes() {
    let smsc = start().await;
    let child = listen(&smsc, &["--json"]);
    let conn = bound(&smsc).await;
    let mut refs = ReferenceCounter::new(1);
    let parts = ShortMessage::text("x".repeat(200))
        .from("447700900123")
        .to("1234")
        .build(&mut refs)
        .expect("parts");
    deliver(&conn, parts[0].clone()).await;
    conn.unbind().await.expect("unbind");
    let (code, stdout, stderr) = finish(child).await;
    // The SMSC ended the session: exit 1, and the half message is reported.
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("the SMSC closed the session"), "{stderr}");
    let item: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(item["type"], "incomplete");
    assert_eq!(
        (item["received"].as_u64(), item["total"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(item["reason"], "ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_unbinds_cleanly() {
    let smsc = start().await;
    let child = listen(&smsc, &[]);
    let conn = bound(&smsc).await;
    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let reason = tokio::time::timeout(Duration::from_secs(10), conn.closed())
        .await
        .expect("closed in time");
    let (code, stdout, stderr) = finish(child).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(reason, smpp_proto::session::CloseReason::Unbound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_account_and_usage_errors() {
    let smsc = start().await;
    let child = listen(&smsc, &["--system-id", "nobody"]);
    let (code, _, stderr) = finish(child).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("ESME_RINVSYSID"), "{stderr}");
    for extra in [
        &["--bind", "transmitter"][..],
        &["--count", "many"],
        &["--timeout", "x"],
    ] {
        let child = listen(&smsc, extra);
        let (code, _, stderr) = finish(child).await;
        assert_eq!(code, 2, "{extra:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_listen_through_the_smsc() {
    let smsc = start().await;
    let child = listen(&smsc, &["--json", "--count", "1"]);
    bound(&smsc).await;
    let long = "Ünïcödé and GSM: 😀 ".repeat(12);
    let out = send_support::smpp(&[
        "send",
        "--host",
        "127.0.0.1",
        "--port",
        &smsc.addr.port().to_string(),
        "--from",
        "447700900999",
        "--to",
        "447700900006",
        "--text",
        &long,
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{:?}", send_support::text(&out));
    let (code, stdout, stderr) = finish(child).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let item: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(item["type"], "message");
    assert_eq!(item["from"], "447700900999");
    assert_eq!(item["to"], "447700900006");
    assert!(item["parts"].as_u64().unwrap_or(0) > 1, "{item}");
    assert_eq!(item["text"], long);
}
