//! `smpp serve` speaks each ESME's version: a 3.3 ESME gets a bind answer
//! without `sc_interface_version` and receipts without TLVs (their text
//! carries the id and state), counted in the observer's `tlvs_dropped`
//! (`smpp_tlvs_dropped_total`); 3.4 and 5.0 ESMEs get the receipt TLVs,
//! and only 5.0 ones `congestion_state`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use smpp_proto::message::MessageState;
use smpp_proto::pdu::{Bind, Body, CommandStatus, Pdu, SubmitSm, TlvTag};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::Client;
use tokio::time::timeout;

use crate::config::ServeConfig;
use crate::{start_with, Observer};

const WAIT: Duration = Duration::from_secs(10);

/// Counts what the servers' sessions leave out.
#[derive(Default)]
struct Dropped(Arc<AtomicU64>);

impl Observer for Dropped {
    fn tlvs_dropped(&self) -> Option<Arc<AtomicU64>> {
        Some(self.0.clone())
    }
}

/// What one ESME bound at some version saw.
struct Seen {
    /// The bind answer's `sc_interface_version`.
    sc_interface_version: Option<u8>,
    /// The submit_sm_resp carried `congestion_state`.
    congestion_state: bool,
    /// The submit's message id.
    id: String,
    /// The receipt as received.
    receipt: Pdu,
}

/// Binds at `version`, submits asking for a receipt, takes the receipt.
async fn exchange(addr: std::net::SocketAddr, version: u8) -> Seen {
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
    let sc_interface_version = match &client.bind_response().body {
        Body::BindTransceiverResp(r) => r.tlvs.sc_interface_version(),
        other => panic!("{other:?}"),
    };
    let sm = SubmitSm {
        source_addr: "447700900001".into(),
        destination_addr: "447700900002".into(),
        registered_delivery: 1,
        short_message: "hello"[..].into(),
        ..Default::default()
    };
    let resp = timeout(WAIT, client.request(Body::SubmitSm(Box::new(sm))))
        .await
        .expect("answered in time")
        .expect("accepted");
    assert_eq!(resp.command_status, CommandStatus::OK);
    let congestion_state = resp.body.tlvs().unwrap().contains(TlvTag::CONGESTION_STATE);
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
    request.respond(CommandStatus::OK, Body::DeliverSmResp(Default::default()));
    client.unbind().await.unwrap();
    Seen {
        sc_interface_version,
        congestion_state,
        id,
        receipt,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_esme_gets_what_its_version_takes() {
    let observer = Arc::new(Dropped::default());
    let dropped = observer.0.clone();
    let srv = start_with(ServeConfig::for_tests(), observer)
        .await
        .expect("server starts");
    let addr = srv.smpp_addr();

    // 3.3: no sc_interface_version, a receipt without TLVs whose text
    // still says which message and what became of it.
    let seen = exchange(addr, 0x33).await;
    assert_eq!(seen.sc_interface_version, None);
    assert!(!seen.congestion_state);
    let tlvs = seen.receipt.body.tlvs().unwrap();
    assert!(tlvs.is_empty(), "{:?}", seen.receipt);
    let Body::DeliverSm(sm) = &seen.receipt.body else {
        panic!("{:?}", seen.receipt)
    };
    let text = std::str::from_utf8(&sm.short_message).unwrap();
    let parsed = smpp_proto::message::receipt::DeliveryReceipt::parse(text).unwrap();
    assert_eq!(parsed.id, seen.id, "{text}");
    assert_eq!(parsed.state, MessageState::Delivered);
    // receipted_message_id and message_state were left out, and counted.
    assert_eq!(dropped.load(Ordering::Relaxed), 2);

    // 3.4: the receipt's TLVs, no congestion_state.
    let seen = exchange(addr, 0x34).await;
    assert_eq!(seen.sc_interface_version, Some(0x34));
    assert!(!seen.congestion_state);
    let tlvs = seen.receipt.body.tlvs().unwrap();
    assert_eq!(tlvs.receipted_message_id(), Some(seen.id.as_bytes()));
    assert_eq!(tlvs.message_state(), Some(MessageState::Delivered.to_u8()));

    // 5.0: the same, and congestion_state.
    let seen = exchange(addr, 0x50).await;
    assert_eq!(seen.sc_interface_version, Some(0x50));
    assert!(seen.congestion_state);
    let tlvs = seen.receipt.body.tlvs().unwrap();
    assert_eq!(tlvs.receipted_message_id(), Some(seen.id.as_bytes()));

    assert_eq!(
        dropped.load(Ordering::Relaxed),
        2,
        "nothing left out for 3.4/5.0"
    );
    srv.shutdown().await.unwrap();
}
