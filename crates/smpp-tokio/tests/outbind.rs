//! Outbind over 127.0.0.1: the MC connects to the ESME's listener, sends
//! `outbind`, and the ESME binds back over the same connection.

use std::time::Duration;

use smpp_proto::pdu::{Bind, CommandStatus, DeliverSm, Outbind, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{
    Client, Connection, Error, Handler, Inbound, OutbindListener, Server, ServerConfig,
    ServerHandle,
};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);

struct Smsc;

impl Handler<Connection> for Smsc {
    async fn bind(&self, _: &Connection, _: BindKind, bind: &Bind) -> Result<(), CommandStatus> {
        if bind.password == "secret" {
            Ok(())
        } else {
            Err(CommandStatus::INVALID_PASSWORD)
        }
    }

    async fn submit_sm(&self, _: &Connection, _: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        Ok(SubmitSmResp {
            message_id: "OB1".into(),
            ..Default::default()
        })
    }
}

async fn smsc() -> ServerHandle {
    let config = ServerConfig::default().with_system_id("SMSC");
    let server = Server::bind("127.0.0.1:0", Smsc, config).await.unwrap();
    let handle = server.handle();
    tokio::spawn(server.run());
    handle
}

fn outbind(password: &str) -> Outbind {
    Outbind {
        system_id: "SMSC".into(),
        password: password.to_owned().into(),
        ..Default::default()
    }
}

fn credentials() -> Bind {
    Bind {
        system_id: "esme".into(),
        password: "secret".into(),
        ..Default::default()
    }
}

/// The MC outbinds to `listener` while the ESME accepts with `kind` and a
/// password check.
async fn run(
    mc: &ServerHandle,
    listener: &OutbindListener,
    password: &str,
    kind: BindKind,
) -> (Result<Connection, Error>, Result<(Client, Inbound), Error>) {
    let addr = listener.local_addr().unwrap();
    let config = SessionConfig::default();
    let check = |o: &Outbind| o.system_id == "SMSC" && o.password == "pw";
    let esme = listener.accept(kind, credentials(), config, check);
    let mc = mc.outbind(addr, outbind(password));
    timeout(LIMIT, async { tokio::join!(mc, esme) })
        .await
        .expect("outbind hung")
}

#[tokio::test]
async fn outbind_binds_a_receiver_that_gets_deliveries() {
    let mc = smsc().await;
    let listener = OutbindListener::bind("127.0.0.1:0").await.unwrap();
    // A transmitter may not answer an outbind: it binds as a receiver.
    let (conn, esme) = run(&mc, &listener, "pw", BindKind::Transmitter).await;
    let conn = conn.unwrap();
    let (client, inbound) = esme.unwrap();
    assert_eq!(conn.bind_kind(), Some(BindKind::Receiver));
    assert_eq!(conn.system_id(), Some("esme"));
    let receiver = mc.receiver("esme").expect("bound receiver");
    assert_eq!(receiver.id(), conn.id());
    let sm = DeliverSm {
        short_message: "MO".into(),
        ..Default::default()
    };
    let delivered = tokio::spawn(async move { receiver.deliver(sm).await });
    let request = timeout(LIMIT, inbound.recv()).await.unwrap().unwrap();
    match request.body() {
        smpp_proto::pdu::Body::DeliverSm(sm) => assert_eq!(sm.short_message, "MO"),
        other => panic!("{other:?}"),
    }
    drop(request); // answered with status 0
    let resp = timeout(LIMIT, delivered).await.unwrap().unwrap().unwrap();
    assert!(resp.command_status.is_ok());
    // A receiver may not submit.
    assert!(client.submit(SubmitSm::default()).await.is_err());
    timeout(LIMIT, client.unbind()).await.unwrap().unwrap();
    mc.shutdown();
}

#[tokio::test]
async fn outbind_binds_a_transceiver_when_asked() {
    let mc = smsc().await;
    let listener = OutbindListener::bind("127.0.0.1:0").await.unwrap();
    let (conn, esme) = run(&mc, &listener, "pw", BindKind::Transceiver).await;
    assert_eq!(conn.unwrap().bind_kind(), Some(BindKind::Transceiver));
    let (client, _inbound) = esme.unwrap();
    assert_eq!(client.submit(SubmitSm::default()).await.unwrap(), "OB1");
    timeout(LIMIT, client.unbind()).await.unwrap().unwrap();
    mc.shutdown();
}

#[tokio::test]
async fn a_refused_outbind_closes_the_connection() {
    let mc = smsc().await;
    let listener = OutbindListener::bind("127.0.0.1:0").await.unwrap();
    let (conn, esme) = run(&mc, &listener, "wrong", BindKind::Receiver).await;
    assert!(matches!(esme, Err(Error::OutbindRefused)), "{esme:?}");
    // The MC sent its outbind; the ESME hung up, so the session ends.
    let conn = conn.unwrap();
    timeout(LIMIT, conn.closed()).await.expect("MC side closes");
    assert_eq!(conn.bind_kind(), None);
    mc.shutdown();
}

#[tokio::test]
async fn outbind_to_nobody_fails() {
    let mc = smsc().await;
    // A port with no listener: connecting fails.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let result = timeout(LIMIT, mc.outbind(addr, outbind("pw")))
        .await
        .unwrap();
    assert!(matches!(result, Err(Error::Io(_))), "{result:?}");
    mc.shutdown();
}
