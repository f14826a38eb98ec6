//! Outbind over 127.0.0.1: the MC connects to the ESME's listener, sends
//! `outbind`, and the ESME binds back over the same connection. Every test
//! runs once on smol and once on async-std.

#[macro_use]
mod common;

use common::{timeout, Join, Rt, LIMIT};
use smpp_proto::pdu::{Bind, Body, CommandStatus, DeliverSm, Outbind, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_smol::{
    Client, Connection, Error, Handler, Inbound, OutbindListener, Server, ServerConfig,
    ServerHandle,
};

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

/// The server's handle, and its task (smol cancels a dropped task: keep it).
async fn smsc(rt: Rt) -> (ServerHandle, Join<std::io::Result<()>>) {
    let config = ServerConfig::default().with_system_id("SMSC");
    let server = Server::bind("127.0.0.1:0", Smsc, config).await.unwrap();
    let handle = server.handle();
    (handle, rt.spawn(server.run()))
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

async fn run(
    mc: &ServerHandle,
    listener: &OutbindListener,
    password: &str,
    kind: BindKind,
) -> (Result<Connection, Error>, Result<(Client, Inbound), Error>) {
    let addr = listener.local_addr().unwrap();
    let check = |o: &Outbind| o.system_id == "SMSC" && o.password == "pw";
    let esme = listener.accept(kind, credentials(), SessionConfig::default(), check);
    let mc = mc.outbind(addr, outbind(password));
    timeout(LIMIT, futures_lite::future::zip(mc, esme))
        .await
        .expect("outbind hung")
}

async fn outbind_binds_a_receiver_that_gets_deliveries(rt: Rt) {
    let (mc, _serving) = smsc(rt).await;
    let listener = OutbindListener::bind("127.0.0.1:0").await.unwrap();
    let (conn, esme) = run(&mc, &listener, "pw", BindKind::Transmitter).await;
    let conn = conn.unwrap();
    let (client, inbound) = esme.unwrap();
    assert_eq!(conn.bind_kind(), Some(BindKind::Receiver));
    let receiver = mc.receiver("esme").expect("bound receiver");
    assert_eq!(receiver.id(), conn.id());
    let sm = DeliverSm {
        short_message: "MO".into(),
        ..Default::default()
    };
    let delivered = rt.spawn(async move { receiver.deliver(sm).await });
    let request = timeout(LIMIT, inbound.recv()).await.unwrap().unwrap();
    match request.body() {
        Body::DeliverSm(sm) => assert_eq!(sm.short_message, "MO"),
        other => panic!("{other:?}"),
    }
    drop(request); // answered with status 0
    let resp = timeout(LIMIT, delivered).await.unwrap().unwrap();
    assert!(resp.command_status.is_ok());
    assert!(client.submit(SubmitSm::default()).await.is_err());
    timeout(LIMIT, client.unbind()).await.unwrap().unwrap();
    mc.shutdown();
}

async fn outbind_binds_a_transceiver_when_asked(rt: Rt) {
    let (mc, _serving) = smsc(rt).await;
    let listener = OutbindListener::bind("127.0.0.1:0").await.unwrap();
    let (conn, esme) = run(&mc, &listener, "pw", BindKind::Transceiver).await;
    assert_eq!(conn.unwrap().bind_kind(), Some(BindKind::Transceiver));
    let (client, _inbound) = esme.unwrap();
    assert_eq!(client.submit(SubmitSm::default()).await.unwrap(), "OB1");
    timeout(LIMIT, client.unbind()).await.unwrap().unwrap();
    mc.shutdown();
}

async fn a_refused_outbind_closes_the_connection(rt: Rt) {
    let (mc, _serving) = smsc(rt).await;
    let listener = OutbindListener::bind("127.0.0.1:0").await.unwrap();
    let (conn, esme) = run(&mc, &listener, "wrong", BindKind::Receiver).await;
    assert!(matches!(esme, Err(Error::OutbindRefused)), "{esme:?}");
    let conn = conn.unwrap();
    timeout(LIMIT, conn.closed()).await.expect("MC side closes");
    assert_eq!(conn.bind_kind(), None);
    mc.shutdown();
}

on_both!(
    outbind_binds_a_receiver_that_gets_deliveries,
    outbind_binds_a_transceiver_when_asked,
    a_refused_outbind_closes_the_connection,
);
