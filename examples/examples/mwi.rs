//! Voicemail indication through a real `smpp serve`: set with a count (and a text the
//! phone stores), then clear (no text: the phone discards the message and turns the
//! icon off). The receiving bind must read back the same indication and count (exit
//! code 1 otherwise).
//!
//! `cargo build -p smpp-cli && cargo run -p smpp-examples --example mwi`

use smpp_examples::{check, Receiver, Result, SmppServe};
use smpp_proto::message::features::Feature;
use smpp_proto::message::mwi::{MessageWaiting, MwiKind};
use smpp_proto::message::DecodeOptions;
use smpp_proto::session::BindKind;

const PHONE: &str = "447700900458";

#[tokio::main]
async fn main() -> Result {
    let serve = SmppServe::start(&[])?;
    let (listener, inbound) = serve.bind(BindKind::Receiver, PHONE, 0x34).await?;
    let mut phone = Receiver::new(inbound);
    let (sender, _) = serve.bind(BindKind::Transmitter, "", 0x34).await?;

    let set = MessageWaiting::set(MwiKind::Voicemail, 3);
    let text = "You have 3 new voicemails";
    sender
        .submit_message(&set.to_short_message(text).from("VoiceMail").to(PHONE))
        .await?;
    let got = phone.next().await?;
    check("kind", got.features.kind(), Feature::MessageWaiting)?;
    check(
        "indication",
        got.features.message_waiting.clone(),
        vec![set],
    )?;
    check("count", got.features.message_waiting[0].count, Some(3))?;
    check(
        "text",
        got.message.decode_text(&DecodeOptions::default())?.as_str(),
        text,
    )?;

    let clear = MessageWaiting::clear(MwiKind::Voicemail);
    sender
        .submit_message(&clear.to_short_message("").from("VoiceMail").to(PHONE))
        .await?;
    let got = phone.next().await?;
    check("indication", got.features.message_waiting, vec![clear])?;

    sender.unbind().await?;
    listener.unbind().await?;
    println!("mwi: OK");
    Ok(())
}
