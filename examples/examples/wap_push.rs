//! WAP push (Service Indication and Service Loading) through a real `smpp serve`:
//! one bind sends, another bound for the destination receives, and the URL that
//! arrives must be the one sent (exit code 1 otherwise).
//!
//! `cargo build -p smpp-cli && cargo run -p smpp-examples --example wap_push`

use smpp_examples::{check, Receiver, Result, SmppServe};
use smpp_proto::message::features::Feature;
use smpp_proto::message::wap::{PushContent, ServiceIndication, ServiceLoading, SiAction};
use smpp_proto::session::BindKind;

const PHONE: &str = "447700900456";

#[tokio::main]
async fn main() -> Result {
    let serve = SmppServe::start(&[])?;
    // The "phone": a receiver the SMSC routes PHONE's messages to.
    let (listener, inbound) = serve.bind(BindKind::Receiver, PHONE, 0x34).await?;
    let mut phone = Receiver::new(inbound);
    let (sender, _) = serve.bind(BindKind::Transmitter, "", 0x34).await?;

    let si = ServiceIndication {
        href: "https://www.example.com/offers/winter?src=sms".into(),
        text: "50% off today only".into(),
        si_id: Some("offer-2026-12".into()),
        expires: Some("2026-12-31T23:59:59Z".into()),
        action: Some(SiAction::SignalHigh),
        ..Default::default()
    };
    let ids = sender
        .submit_message(&si.to_short_message(1)?.from("Acme").to(PHONE))
        .await?;
    println!("SI sent in {} part(s)", ids.len());
    let got = phone.next().await?;
    check("kind", got.features.kind(), Feature::WapPushSi)?;
    check("SI URL", got.features.url(), Some(si.href.as_str()))?;
    let push = got.features.push.ok_or("no push")??;
    check("SI", push.content, PushContent::ServiceIndication(si))?;

    let sl = ServiceLoading {
        href: "http://example.com/app.jad".into(),
        action: None,
    };
    sender
        .submit_message(&sl.to_short_message(2)?.from("Acme").to(PHONE))
        .await?;
    let got = phone.next().await?;
    check("kind", got.features.kind(), Feature::WapPushSl)?;
    check("SL URL", got.features.url(), Some(sl.href.as_str()))?;

    sender.unbind().await?;
    listener.unbind().await?;
    println!("wap_push: OK");
    Ok(())
}
