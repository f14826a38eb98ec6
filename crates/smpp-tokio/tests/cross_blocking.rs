//! Cross-runtime: the tokio client against the blocking server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use smpp_proto::message::{DeliveryReceipt, MessageState};
use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp, TlvTag};
use smpp_proto::session::{BindKind, CloseReason, SessionConfig};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);

/// A blocking SMSC that answers each submit and sends its receipt from another thread.
#[derive(Default)]
struct BlockingSmsc {
    next_id: AtomicU64,
}

impl smpp_blocking::Handler<smpp_blocking::Connection> for BlockingSmsc {
    fn bind(
        &self,
        _: &smpp_blocking::Connection,
        _: BindKind,
        bind: &Bind,
    ) -> Result<(), CommandStatus> {
        if bind.password == "secret" {
            Ok(())
        } else {
            Err(CommandStatus::INVALID_PASSWORD)
        }
    }

    fn submit_sm(
        &self,
        conn: &smpp_blocking::Connection,
        sm: SubmitSm,
    ) -> Result<SubmitSmResp, CommandStatus> {
        let id = format!("{:X}", self.next_id.fetch_add(1, Ordering::SeqCst) + 1);
        let receipt = DeliveryReceipt::new(id.clone(), MessageState::Delivered);
        let mut dlr = SubmitSm {
            source_addr: sm.destination_addr,
            destination_addr: sm.source_addr,
            esm_class: 0x04,
            short_message: receipt.to_text().into_bytes().into(),
            ..Default::default()
        };
        dlr.tlvs
            .set_text(TlvTag::RECEIPTED_MESSAGE_ID, id.as_bytes())
            .unwrap();
        let conn = conn.clone();
        std::thread::spawn(move || conn.deliver(dlr));
        Ok(SubmitSmResp {
            message_id: id.into(),
            ..Default::default()
        })
    }
}

#[tokio::test]
async fn tokio_client_against_the_blocking_server() {
    let config = smpp_blocking::ServerConfig::default();
    let server = smpp_blocking::Server::bind("127.0.0.1:0", BlockingSmsc::default(), config)
        .expect("listening");
    let addr = server.local_addr().unwrap();
    let control = server.handle();
    let serving = std::thread::spawn(move || server.run());

    let bind = Bind {
        system_id: "esme".into(),
        password: "secret".into(),
        interface_version: 0x34,
        ..Default::default()
    };
    let connecting =
        smpp_tokio::Client::connect(addr, BindKind::Transceiver, bind, SessionConfig::default());
    let (client, inbound) = timeout(LIMIT, connecting).await.unwrap().expect("bound");
    let submit = SubmitSm {
        source_addr: "447700900123".into(),
        destination_addr: "447700900456".into(),
        short_message: "across runtimes".into(),
        registered_delivery: 1,
        ..Default::default()
    };
    let id = timeout(LIMIT, client.submit(submit))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id, "1");
    let request = timeout(LIMIT, inbound.recv())
        .await
        .unwrap()
        .expect("a receipt");
    let receipt = request.receipt().expect("parsed receipt");
    assert_eq!(receipt.id, "1");
    assert_eq!(receipt.state, MessageState::Delivered);
    drop(request); // deliver_sm_resp, status 0

    timeout(LIMIT, client.unbind()).await.unwrap().unwrap();
    assert_eq!(client.closed().await, CloseReason::Unbound);

    control.shutdown();
    let joined = tokio::task::spawn_blocking(move || serving.join());
    timeout(LIMIT, joined)
        .await
        .expect("shutdown in time")
        .unwrap()
        .unwrap()
        .unwrap();
}
