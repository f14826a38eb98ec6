//! Receipts of messages that came as `data_sm` go back as `data_sm` when
//! the ESME speaks 5.0, or when an address does not fit a `deliver_sm`
//! (a 3.4 ESME's data_sm to a 30-character address got no receipt at all
//! before); every other receipt stays a `deliver_sm`.

use std::time::Duration;

use smpp_proto::message::{DecodeOptions, DeliveryReceipt, MessageState};
use smpp_proto::pdu::{Bind, Body, COctetString, CommandStatus, DataSm, Pdu, SubmitSm, TlvTag};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::Client;
use tokio::time::timeout;

use crate::config::ServeConfig;
use crate::{start_with, Observer};

const WAIT: Duration = Duration::from_secs(10);

struct Quiet;
impl Observer for Quiet {}

/// Binds at `version`, sends `body` (asking for a receipt), and returns the
/// message id and the receipt as received (answered with the matching resp).
async fn receipt_for(addr: std::net::SocketAddr, version: u8, body: Body) -> (String, Pdu) {
    let bind = Bind {
        system_id: "smppclient1".into(),
        password: "password".into(),
        interface_version: version,
        ..Default::default()
    };
    let (client, inbound) = timeout(
        WAIT,
        Client::connect(addr, BindKind::Transceiver, bind, SessionConfig::default()),
    )
    .await
    .expect("bind answered in time")
    .expect("bind accepted");
    let resp = timeout(WAIT, client.request(body))
        .await
        .expect("answered in time")
        .expect("accepted");
    assert_eq!(resp.command_status, CommandStatus::OK);
    let id = resp
        .body
        .message_id()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let request = timeout(WAIT, inbound.recv())
        .await
        .expect("a receipt in time")
        .expect("session open");
    let receipt = request.pdu().clone();
    drop(request); // answered OK with the matching response
    client.unbind().await.unwrap();
    (id, receipt)
}

fn data_sm(from: &str, to: &str) -> Body {
    let mut sm = DataSm {
        source_addr: COctetString::copy_from_str(from),
        destination_addr: COctetString::copy_from_str(to),
        registered_delivery: 1,
        ..Default::default()
    };
    sm.tlvs.set(TlvTag::MESSAGE_PAYLOAD, b"hello data").unwrap();
    Body::DataSm(Box::new(sm))
}

fn submit_sm(from: &str, to: &str) -> Body {
    Body::SubmitSm(Box::new(SubmitSm {
        source_addr: COctetString::copy_from_str(from),
        destination_addr: COctetString::copy_from_str(to),
        registered_delivery: 1,
        short_message: "hello submit"[..].into(),
        ..Default::default()
    }))
}

/// The receipt names `id` and says DELIVRD, by its TLVs and its text.
fn assert_receipt_of(receipt: &Pdu, id: &str) {
    let parsed = DeliveryReceipt::from_body(&receipt.body, &DecodeOptions::default())
        .unwrap_or_else(|| panic!("not a receipt: {receipt:?}"));
    assert_eq!(parsed.id, id);
    assert_eq!(parsed.state, MessageState::Delivered);
    let tlvs = receipt.body.tlvs().unwrap();
    assert_eq!(tlvs.receipted_message_id(), Some(id.as_bytes()));
    assert_eq!(tlvs.message_state(), Some(MessageState::Delivered.to_u8()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_sm_receipts_go_as_data_sm_where_deliver_sm_cannot_or_should_not() {
    let srv = start_with(ServeConfig::for_tests(), std::sync::Arc::new(Quiet))
        .await
        .expect("server starts");
    let addr = srv.smpp_addr();
    let long = "4477009000011234567890123456789"; // 31 digits

    // 5.0 ESME, data_sm: the receipt is a data_sm, its text in message_payload.
    let (id, receipt) = receipt_for(addr, 0x50, data_sm("447700900001", "447700900002")).await;
    let Body::DataSm(sm) = &receipt.body else {
        panic!("{receipt:?}")
    };
    assert!(
        smpp_proto::pdu::EsmClass::from(sm.esm_class).is_delivery_receipt(),
        "MC delivery receipt"
    );
    assert_eq!(sm.source_addr, "447700900002");
    assert_eq!(sm.destination_addr, "447700900001");
    let text = std::str::from_utf8(sm.tlvs.message_payload().unwrap()).unwrap();
    assert!(text.starts_with(&format!("id:{id} ")), "{text}");
    assert!(text.contains("text:hello data"), "{text}");
    assert_receipt_of(&receipt, &id);

    // 3.4 ESME, data_sm to a 31-character address: a data_sm receipt from it.
    let (id, receipt) = receipt_for(addr, 0x34, data_sm("447700900001", long)).await;
    let Body::DataSm(sm) = &receipt.body else {
        panic!("{receipt:?}")
    };
    assert_eq!(sm.source_addr, long);
    assert_receipt_of(&receipt, &id);

    // 3.4 ESME, data_sm with a long source address: the receipt goes to it.
    let (id, receipt) = receipt_for(addr, 0x34, data_sm(long, "447700900002")).await;
    let Body::DataSm(sm) = &receipt.body else {
        panic!("{receipt:?}")
    };
    assert_eq!(sm.destination_addr, long);
    assert_receipt_of(&receipt, &id);

    // 3.4 ESME, data_sm with addresses that fit: deliver_sm as before.
    let (id, receipt) = receipt_for(addr, 0x34, data_sm("447700900001", "447700900002")).await;
    assert!(matches!(receipt.body, Body::DeliverSm(_)), "{receipt:?}");
    assert_receipt_of(&receipt, &id);

    // submit_sm, from 3.4 and 5.0 ESMEs: deliver_sm.
    for version in [0x34, 0x50] {
        let (id, receipt) =
            receipt_for(addr, version, submit_sm("447700900001", "447700900002")).await;
        let Body::DeliverSm(sm) = &receipt.body else {
            panic!("{version:#x}: {receipt:?}")
        };
        let text = std::str::from_utf8(&sm.short_message).unwrap();
        assert!(text.contains("text:hello submit"), "{text}");
        assert_receipt_of(&receipt, &id);
    }
    srv.shutdown().await.unwrap();
}
