//! SMPP 5.0 billing: a submit_sm with `billing_identification` through a real
//! `smpp serve --cdr FILE`. The routed message reaches the receiving bind with the
//! billing id, and the billing record (CDR) the server writes when the message is
//! delivered carries it too; so does the CDR of a billed cell broadcast
//! (`broadcast_sm`, no destination address). Exit code 1 otherwise.
//!
//! `cargo build -p smpp-cli && cargo run -p smpp-examples --example billing`

use std::time::Duration;

use bytes::Bytes;
use smpp_examples::{check, Receiver, Result, SmppServe, WAIT};
use smpp_proto::message::broadcast::{
    frequency_unit, BillingIdentification, BroadcastArea, BroadcastBuilder,
};
use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::{BroadcastContentType, TlvTag};
use smpp_proto::session::BindKind;

const PHONE: &str = "447700900459";

#[tokio::main]
async fn main() -> Result {
    let cdr =
        std::env::temp_dir().join(format!("smpp-billing-example-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&cdr);
    let result = run(&cdr).await;
    let _ = std::fs::remove_file(&cdr);
    result
}

async fn run(cdr: &std::path::Path) -> Result {
    let serve = SmppServe::start(&["--cdr", cdr.to_str().ok_or("temp path")?])?;
    // billing_identification is a 5.0 TLV: both binds speak 5.0.
    let (listener, inbound) = serve.bind(BindKind::Receiver, PHONE, 0x50).await?;
    let mut phone = Receiver::new(inbound);
    let (sender, _) = serve.bind(BindKind::Transmitter, "", 0x50).await?;

    // Format 0x80 (vendor specific): a customer account and a campaign code.
    let billing = BillingIdentification {
        format: 0x80,
        data: Bytes::from_static(b"acct-42/camp-7"),
    };
    let mut value = vec![billing.format];
    value.extend_from_slice(&billing.data);
    let message = ShortMessage::text("Your order has shipped")
        .from("Shop")
        .to(PHONE)
        .tlv(TlvTag::BILLING_IDENTIFICATION, &value)?;
    let ids = sender.submit_message(&message).await?;
    let id = ids
        .first()
        .ok_or("no message id")?
        .to_string_lossy()
        .into_owned();
    println!("submitted {id}");

    let got = phone.next().await?;
    check(
        "billing id at the receiver",
        got.features.billing.clone(),
        Some(billing.clone()),
    )?;

    // The CDR line is appended when the message reaches its final state (delivered).
    let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
    let record = cdr_line(cdr, &id).await?;
    println!("CDR: {record}");
    check(
        "billing id in the CDR",
        record.contains(&format!("\"billing_identification\":\"{hex}\"")),
        true,
    )?;
    check(
        "final state in the CDR",
        record.contains("\"DELIVRD\""),
        true,
    )?;

    // A cell broadcast billed the same way: its CDR line (no destination
    // address: it goes to an area) carries the billing id too.
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
    .source(5, 0, "Shop")
    .payload(b"Sale today".to_vec(), 0x00.into())
    .billing(&billing)?
    .build()?;
    let broadcast_id = sender
        .broadcast(broadcast)
        .await?
        .to_string_lossy()
        .into_owned();
    println!("broadcast {broadcast_id}");
    let record = cdr_line(cdr, &broadcast_id).await?;
    println!("CDR: {record}");
    check(
        "billing id in the broadcast's CDR",
        record.contains(&format!("\"billing_identification\":\"{hex}\"")),
        true,
    )?;

    sender.unbind().await?;
    listener.unbind().await?;
    println!("billing: OK");
    Ok(())
}

/// The CDR line of message `id`, once the server has written it.
async fn cdr_line(cdr: &std::path::Path, id: &str) -> Result<String> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(cdr).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(&format!("\"{id}\""))) {
            return Ok(line.to_owned());
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("no CDR for {id} in {}", cdr.display()).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
