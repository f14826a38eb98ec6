//! Outbind over 127.0.0.1: the MC connects to the ESME's listener, sends
//! `outbind`, and the ESME binds back over the same connection.

use smpp_async::{Error, ServerConfig};
use smpp_proto::pdu::{Bind, Body, DeliverSm, Outbind, SubmitSm};
use smpp_proto::session::{BindKind, SessionConfig};

use super::{local, LIMIT};
use crate::adapter::{
    timeout, Adapter, ClientOps, ConnOps, InboundOps, ListenerOps, ServerOps, Serving,
};
use crate::raw::free_addr;
use crate::Smsc;

async fn smsc<A: Adapter>() -> Serving<A> {
    let smsc = Smsc {
        fixed_id: Some("OB1"),
        ..Smsc::default()
    };
    let config = ServerConfig::default().with_system_id("SMSC");
    A::serve(local(), smsc, config, None).await
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

type Outcome<A> = (
    Result<<A as Adapter>::Conn, Error>,
    Result<(<A as Adapter>::Client, <A as Adapter>::Inbound), Error>,
);

/// The MC outbinds with `password` to a listener that accepts as `kind`
/// with a password check.
async fn run<A: Adapter>(mc: &A::Server, password: &str, kind: BindKind) -> Outcome<A> {
    let listener = A::listen_outbind().await.unwrap();
    let check = |o: &Outbind| o.system_id == "SMSC" && o.password == "pw";
    let esme = listener.accept(check, kind, credentials(), SessionConfig::default());
    let mc = mc.outbind(listener.local_addr(), outbind(password));
    timeout(LIMIT, futures_lite::future::zip(mc, esme))
        .await
        .expect("outbind hung")
}

pub async fn binds_a_receiver_that_gets_deliveries<A: Adapter>() {
    let mc = smsc::<A>().await;
    // A transmitter may not answer an outbind: it binds as a receiver.
    let (conn, esme) = run::<A>(&mc.server, "pw", BindKind::Transmitter).await;
    let conn = conn.unwrap();
    let (client, inbound) = esme.unwrap();
    assert_eq!(conn.bind_kind(), Some(BindKind::Receiver));
    assert_eq!(conn.system_id().as_deref(), Some("esme"));
    let receiver = mc.server.receiver("esme").expect("bound receiver");
    assert_eq!(receiver.id(), conn.id());
    let sm = DeliverSm {
        short_message: "MO".into(),
        ..Default::default()
    };
    let delivered = A::spawn(async move { receiver.deliver(sm).await });
    let request = inbound.recv(LIMIT).await.unwrap().unwrap();
    match request.body() {
        Body::DeliverSm(sm) => assert_eq!(sm.short_message, "MO"),
        other => panic!("{other:?}"),
    }
    drop(request); // answered with status 0
    let resp = timeout(LIMIT, delivered.join()).await.unwrap().unwrap();
    assert!(resp.command_status.is_ok());
    // A receiver may not submit.
    assert!(client.submit(SubmitSm::default()).await.is_err());
    timeout(LIMIT, client.unbind()).await.unwrap().unwrap();
    mc.server.shutdown();
}

pub async fn binds_a_transceiver_when_asked<A: Adapter>() {
    let mc = smsc::<A>().await;
    let (conn, esme) = run::<A>(&mc.server, "pw", BindKind::Transceiver).await;
    assert_eq!(conn.unwrap().bind_kind(), Some(BindKind::Transceiver));
    let (client, _inbound) = esme.unwrap();
    assert_eq!(client.submit(SubmitSm::default()).await.unwrap(), "OB1");
    timeout(LIMIT, client.unbind()).await.unwrap().unwrap();
    mc.server.shutdown();
}

pub async fn a_refused_outbind_closes_the_connection<A: Adapter>() {
    let mc = smsc::<A>().await;
    let (conn, esme) = run::<A>(&mc.server, "wrong", BindKind::Receiver).await;
    assert!(matches!(esme, Err(Error::OutbindRefused)), "{esme:?}");
    // The MC sent its outbind; the ESME hung up, so the session ends.
    let conn = conn.unwrap();
    timeout(LIMIT, conn.closed()).await.expect("MC side closes");
    assert_eq!(conn.bind_kind(), None);
    mc.server.shutdown();
}

pub async fn outbind_to_nobody_fails<A: Adapter>() {
    let mc = smsc::<A>().await;
    // A port with no listener: connecting fails.
    let result = timeout(LIMIT, mc.server.outbind(free_addr(), outbind("pw"))).await;
    let result = result.unwrap();
    assert!(matches!(result, Err(Error::Io(_))), "{result:?}");
    mc.server.shutdown();
}
