//! What goes over the wire follows the version agreed at bind, both ways:
//! a 3.3 ESME gets no `sc_interface_version` and receipts without TLVs
//! (their text still carries the id), and sends none; a 3.4 ESME gets no
//! `congestion_state` nor other 5.0 TLVs and cannot send `broadcast_sm`
//! (a local error, nothing sent); a 5.0 ESME gets and sends everything.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smpp_proto::message::receipt::{DeliveryReceipt, MessageState};
use smpp_proto::pdu::{
    Bind, Body, BroadcastSm, BroadcastSmResp, CommandId, CommandStatus, DeliverSm, Pdu, SubmitSm,
    TlvTag, Tlvs,
};
use smpp_proto::session::{BindKind, SendError, SessionConfig};
use smpp_tokio::{Client, Connection, Error, Handler, Server, ServerConfig, ServerHandle};

/// An MC that records each request it gets (command and TLVs) and
/// answers submit_sm and broadcast_sm.
#[derive(Default)]
struct Recorder(Mutex<Vec<(CommandId, Tlvs)>>);

struct Shared(Arc<Recorder>);

impl Handler<Connection> for Shared {
    async fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
        Ok(())
    }

    async fn request(&self, _: &Connection, pdu: Pdu) -> Result<Body, CommandStatus> {
        let tlvs = pdu.body.tlvs().cloned().unwrap_or_default();
        self.0 .0.lock().unwrap().push((pdu.command_id(), tlvs));
        match pdu.body {
            Body::SubmitSm(_) => Ok(Body::SubmitSmResp(smpp_proto::pdu::SubmitSmResp {
                message_id: "5F3A".into(),
                ..Default::default()
            })),
            Body::BroadcastSm(_) => Ok(Body::BroadcastSmResp(BroadcastSmResp {
                message_id: "B1".into(),
                ..Default::default()
            })),
            _ => Err(CommandStatus::INVALID_COMMAND_ID),
        }
    }
}

async fn server() -> (std::net::SocketAddr, ServerHandle, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let server = Server::bind(
        "127.0.0.1:0",
        Shared(recorder.clone()),
        ServerConfig::default(),
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    tokio::spawn(server.run());
    (addr, handle, recorder)
}

/// A submit_sm with a 3.4 TLV and a 5.0 one.
fn submit() -> SubmitSm {
    let mut sm = SubmitSm {
        source_addr: "447700900123".into(),
        destination_addr: "447700900456".into(),
        short_message: "hello".into(),
        ..Default::default()
    };
    sm.tlvs.set_u16(TlvTag::USER_MESSAGE_REFERENCE, 7);
    sm.tlvs
        .set(TlvTag::BILLING_IDENTIFICATION, b"\x01ab")
        .unwrap();
    sm
}

/// A receipt as an SMSC sends it, plus a 5.0 TLV.
fn receipt() -> DeliverSm {
    let text = DeliveryReceipt::new("5F3A", MessageState::Delivered).to_text();
    let mut tlvs = Tlvs::new();
    tlvs.set_text(TlvTag::RECEIPTED_MESSAGE_ID, b"5F3A")
        .unwrap();
    tlvs.set_u8(TlvTag::MESSAGE_STATE, MessageState::Delivered.to_u8());
    tlvs.set(TlvTag::SOURCE_NETWORK_ID, b"1234150\0").unwrap();
    DeliverSm {
        source_addr: "447700900456".into(),
        destination_addr: "447700900123".into(),
        esm_class: 0x04,
        short_message: text.into_bytes().into(),
        tlvs,
        ..Default::default()
    }
}

fn broadcast() -> Body {
    let mut bc = BroadcastSm {
        source_addr: "447700900123".into(),
        ..Default::default()
    };
    bc.tlvs
        .set(TlvTag::BROADCAST_AREA_IDENTIFIER, b"\x00area")
        .unwrap();
    bc.tlvs
        .set(TlvTag::BROADCAST_CONTENT_TYPE, b"\x01\x00\x10")
        .unwrap();
    bc.tlvs.set_u16(TlvTag::BROADCAST_REP_NUM, 1);
    bc.tlvs
        .set(TlvTag::BROADCAST_FREQUENCY_INTERVAL, b"\x09\x00\x1f")
        .unwrap();
    Body::BroadcastSm(Box::new(bc))
}

/// What one bind at `version` saw, both ways.
struct Seen {
    sc_interface_version: Option<u8>,
    agreed: u8,
    /// TLV tags of the submit_sm as the MC got it.
    submit_tlvs: Vec<TlvTag>,
    /// TLV tags of the submit_sm_resp as the ESME got it.
    submit_resp_tlvs: Vec<TlvTag>,
    /// TLV tags of the receipt as the ESME got it.
    receipt_tlvs: Vec<TlvTag>,
    /// The receipt's id and state, from its TLVs or (failing those) its text.
    receipt: DeliveryReceipt,
    /// broadcast_sm: `Ok` answered by the MC, or the local error.
    broadcast: Result<CommandStatus, Error>,
    client_dropped: u64,
    server_dropped: u64,
}

async fn run(version: u8) -> Seen {
    let (addr, handle, recorder) = server().await;
    let system_id = format!("esme{version:x}");
    let bind = Bind {
        system_id: smpp_proto::pdu::COctetString::copy_from_str(&system_id),
        password: "pw".into(),
        interface_version: version,
        ..Default::default()
    };
    let config = SessionConfig::default().with_response_timeout(Duration::from_secs(10));
    let (client, inbound) = Client::connect(addr, BindKind::Transceiver, bind, config)
        .await
        .unwrap();
    let sc_interface_version = match &client.bind_response().body {
        Body::BindTransceiverResp(r) => r.tlvs.sc_interface_version(),
        other => panic!("{other:?}"),
    };
    let resp = client
        .request(Body::SubmitSm(Box::new(submit())))
        .await
        .unwrap();
    let submit_resp_tlvs = resp.body.tlvs().unwrap().iter().map(|t| t.tag).collect();

    let conn = handle
        .receiver(&system_id)
        .expect("bound as a receiver too");
    let deliver = tokio::spawn(async move {
        let answer = conn.deliver(receipt()).await.unwrap();
        assert_eq!(answer.command_status, CommandStatus::OK);
        conn.stats().await.unwrap().tlvs_dropped
    });
    let request = tokio::time::timeout(Duration::from_secs(10), inbound.recv())
        .await
        .unwrap()
        .expect("the receipt");
    let receipt_tlvs = request
        .body()
        .tlvs()
        .unwrap()
        .iter()
        .map(|t| t.tag)
        .collect();
    let parsed = request.receipt().expect("a receipt");
    request.respond(CommandStatus::OK, Body::DeliverSmResp(Default::default()));
    let server_dropped = deliver.await.unwrap();

    let broadcast = client
        .request(broadcast())
        .await
        .map(|pdu| pdu.command_status);
    let client_dropped = client.stats().await.unwrap().tlvs_dropped;
    client.unbind().await.unwrap();

    let got = recorder.0.lock().unwrap();
    let submit_tlvs = got
        .iter()
        .find(|(id, _)| *id == CommandId::SUBMIT_SM)
        .map(|(_, t)| t.iter().map(|t| t.tag).collect())
        .unwrap();
    if broadcast.is_err() {
        assert!(
            got.iter().all(|(id, _)| *id != CommandId::BROADCAST_SM),
            "a refused broadcast_sm reached the MC"
        );
    }
    Seen {
        sc_interface_version,
        agreed: client.interface_version(),
        submit_tlvs,
        submit_resp_tlvs,
        receipt_tlvs,
        receipt: parsed,
        broadcast,
        client_dropped,
        server_dropped,
    }
}

#[tokio::test]
async fn a_3_3_bind_gets_and_sends_no_tlvs() {
    let seen = run(0x33).await;
    assert_eq!(seen.sc_interface_version, None);
    assert_eq!(seen.agreed, 0x33);
    assert_eq!(seen.submit_tlvs, []);
    assert_eq!(seen.submit_resp_tlvs, []);
    assert_eq!(seen.receipt_tlvs, []);
    // The text carries what the TLVs would have.
    assert_eq!(seen.receipt.id, "5F3A");
    assert_eq!(seen.receipt.state, MessageState::Delivered);
    assert!(
        matches!(
            seen.broadcast,
            Err(Error::Refused(SendError::PeerVersion((), 0x33)))
        ),
        "{:?}",
        seen.broadcast
    );
    assert_eq!(seen.client_dropped, 2);
    assert_eq!(seen.server_dropped, 3);
}

#[tokio::test]
async fn a_3_4_bind_gets_no_5_0_tlvs_and_cannot_send_broadcast_sm() {
    let seen = run(0x34).await;
    assert_eq!(seen.sc_interface_version, Some(0x34));
    assert_eq!(seen.agreed, 0x34);
    assert_eq!(seen.submit_tlvs, [TlvTag::USER_MESSAGE_REFERENCE]);
    assert!(!seen.submit_resp_tlvs.contains(&TlvTag::CONGESTION_STATE));
    assert_eq!(
        seen.receipt_tlvs,
        [TlvTag::RECEIPTED_MESSAGE_ID, TlvTag::MESSAGE_STATE]
    );
    assert_eq!(seen.receipt.id, "5F3A");
    let err = seen.broadcast.expect_err("refused locally");
    assert!(
        matches!(err, Error::Refused(SendError::PeerVersion((), 0x34))),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "refused: not in SMPP 3.4, the version the peer speaks"
    );
    assert_eq!(seen.client_dropped, 1);
    assert_eq!(seen.server_dropped, 1);
}

#[tokio::test]
async fn a_5_0_bind_gets_and_sends_everything() {
    let seen = run(0x50).await;
    assert_eq!(seen.sc_interface_version, Some(0x50));
    assert_eq!(seen.agreed, 0x50);
    assert_eq!(
        seen.submit_tlvs,
        [
            TlvTag::USER_MESSAGE_REFERENCE,
            TlvTag::BILLING_IDENTIFICATION
        ]
    );
    assert!(seen.submit_resp_tlvs.contains(&TlvTag::CONGESTION_STATE));
    assert_eq!(
        seen.receipt_tlvs,
        [
            TlvTag::RECEIPTED_MESSAGE_ID,
            TlvTag::MESSAGE_STATE,
            TlvTag::SOURCE_NETWORK_ID
        ]
    );
    assert_eq!(seen.broadcast.unwrap(), CommandStatus::OK);
    assert_eq!((seen.client_dropped, seen.server_dropped), (0, 0));
}
