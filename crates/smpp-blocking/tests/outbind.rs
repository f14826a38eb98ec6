//! Outbind over 127.0.0.1: the MC connects to the ESME's listener, sends
//! `outbind`, and the ESME binds back over the same connection.

use std::thread;
use std::time::Duration;

use smpp_blocking::{
    Client, Connection, Error, Handler, Inbound, OutbindListener, Server, ServerConfig,
    ServerHandle,
};
use smpp_proto::pdu::{Bind, Body, CommandStatus, DeliverSm, Outbind, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, SessionConfig};

const LIMIT: Duration = Duration::from_secs(10);

struct Smsc;

impl Handler<Connection> for Smsc {
    fn bind(&self, _: &Connection, _: BindKind, bind: &Bind) -> Result<(), CommandStatus> {
        if bind.password == "secret" {
            Ok(())
        } else {
            Err(CommandStatus::INVALID_PASSWORD)
        }
    }

    fn submit_sm(&self, _: &Connection, _: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        Ok(SubmitSmResp {
            message_id: "OB1".into(),
            ..Default::default()
        })
    }
}

fn smsc() -> (ServerHandle, thread::JoinHandle<std::io::Result<()>>) {
    let config = ServerConfig::default().with_system_id("SMSC");
    let server = Server::bind("127.0.0.1:0", Smsc, config).unwrap();
    let handle = server.handle();
    (handle, thread::spawn(move || server.run()))
}

fn outbind(password: &str) -> Outbind {
    Outbind {
        system_id: "SMSC".into(),
        password: password.to_owned().into(),
        ..Default::default()
    }
}

/// The ESME accepts on `listener` (a thread) while the MC outbinds to it.
fn run(
    mc: &ServerHandle,
    password: &str,
    kind: BindKind,
) -> (Result<Connection, Error>, Result<(Client, Inbound), Error>) {
    let listener = OutbindListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let esme = thread::spawn(move || {
        let bind = Bind {
            system_id: "esme".into(),
            password: "secret".into(),
            ..Default::default()
        };
        let check = |o: &Outbind| o.system_id == "SMSC" && o.password == "pw";
        listener.accept(kind, bind, SessionConfig::default(), check)
    });
    let conn = mc.outbind(addr, outbind(password));
    (conn, esme.join().unwrap())
}

fn wait_closed(conn: &Connection) {
    let (tx, rx) = std::sync::mpsc::channel();
    let conn = conn.clone();
    thread::spawn(move || tx.send(conn.closed()));
    rx.recv_timeout(LIMIT).expect("MC side closes");
}

#[test]
fn outbind_binds_a_receiver_that_gets_deliveries() {
    let (mc, server) = smsc();
    let (conn, esme) = run(&mc, "pw", BindKind::Transmitter);
    let conn = conn.unwrap();
    let (client, inbound) = esme.unwrap();
    assert_eq!(conn.bind_kind(), Some(BindKind::Receiver));
    let receiver = mc.receiver("esme").expect("bound receiver");
    assert_eq!(receiver.id(), conn.id());
    let delivered = thread::spawn(move || {
        receiver.deliver(DeliverSm {
            short_message: "MO".into(),
            ..Default::default()
        })
    });
    let request = inbound.recv_timeout(LIMIT).unwrap();
    match request.body() {
        Body::DeliverSm(sm) => assert_eq!(sm.short_message, "MO"),
        other => panic!("{other:?}"),
    }
    drop(request); // answered with status 0
    assert!(delivered.join().unwrap().unwrap().command_status.is_ok());
    assert!(client.submit(SubmitSm::default()).is_err());
    client.unbind().unwrap();
    mc.shutdown();
    server.join().unwrap().unwrap();
}

#[test]
fn outbind_binds_a_transceiver_when_asked() {
    let (mc, server) = smsc();
    let (conn, esme) = run(&mc, "pw", BindKind::Transceiver);
    assert_eq!(conn.unwrap().bind_kind(), Some(BindKind::Transceiver));
    let (client, _inbound) = esme.unwrap();
    assert_eq!(client.submit(SubmitSm::default()).unwrap(), "OB1");
    client.unbind().unwrap();
    mc.shutdown();
    server.join().unwrap().unwrap();
}

#[test]
fn a_refused_outbind_closes_the_connection() {
    let (mc, server) = smsc();
    let (conn, esme) = run(&mc, "wrong", BindKind::Receiver);
    assert!(matches!(esme, Err(Error::OutbindRefused)), "{esme:?}");
    let conn = conn.unwrap();
    wait_closed(&conn);
    assert_eq!(conn.bind_kind(), None);
    mc.shutdown();
    server.join().unwrap().unwrap();
}
