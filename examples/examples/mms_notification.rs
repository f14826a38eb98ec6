//! An MMS notification (M-Notification.ind in a WAP push) through a real `smpp serve`:
//! long enough to need concatenated parts, reassembled at the receiving bind, and its
//! content location, transaction id and size must come back as sent (exit code 1
//! otherwise).
//!
//! `cargo build -p smpp-cli && cargo run -p smpp-examples --example mms_notification`

use smpp_examples::{check, Receiver, Result, SmppServe};
use smpp_proto::message::features::Feature;
use smpp_proto::message::mms::{MmsExpiry, MmsMessageClass, MmsNotification};
use smpp_proto::message::wap::PushContent;
use smpp_proto::session::BindKind;

const PHONE: &str = "447700900457";

#[tokio::main]
async fn main() -> Result {
    let serve = SmppServe::start(&[])?;
    let (listener, inbound) = serve.bind(BindKind::Receiver, PHONE, 0x34).await?;
    let mut phone = Receiver::new(inbound);
    let (sender, _) = serve.bind(BindKind::Transmitter, "", 0x34).await?;

    let mut notification = MmsNotification::new(
        "T-20261206-0001",
        format!(
            "http://mmsc.example.com/retrieve?id={}&sig={}",
            "0123456789abcdef".repeat(4),
            "f".repeat(40)
        ),
        48_213,
        MmsExpiry::Relative(3 * 24 * 3600),
    );
    notification.from = Some("+447700900123/TYPE=PLMN".into());
    notification.subject = Some("Photos from the weekend".into());
    notification.class = MmsMessageClass::Personal;

    let ids = sender
        .submit_message(
            &notification
                .to_short_message(7)?
                .from("447700900123")
                .to(PHONE),
        )
        .await?;
    println!("MMS notification sent in {} parts", ids.len());
    if ids.len() < 2 {
        return Err("expected a notification in concatenated parts".into());
    }
    let got = phone.next().await?;
    check("parts received", got.message.parts.len(), ids.len())?;
    check("kind", got.features.kind(), Feature::MmsNotification)?;
    check(
        "content location",
        got.features.url(),
        Some(notification.content_location.as_str()),
    )?;
    let push = got.features.push.ok_or("no push")??;
    check(
        "content type",
        push.content_type.as_str(),
        "application/vnd.wap.mms-message",
    )?;
    let PushContent::MmsNotification(received) = push.content else {
        return Err("not an MMS notification".into());
    };
    check(
        "transaction id",
        &received.transaction_id,
        &notification.transaction_id,
    )?;
    check("size", received.size, notification.size)?;
    check("notification", received, notification)?;

    sender.unbind().await?;
    listener.unbind().await?;
    println!("mms_notification: OK");
    Ok(())
}
