//! Client and server over 127.0.0.1, and against scripted raw peers; every
//! test runs once on smol and once on async-std.

#[macro_use]
mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_net::{TcpListener, TcpStream};
use bytes::BytesMut;
use common::{sleep, timeout, Rt, LIMIT};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use smpp_proto::message::{DeliveryReceipt, MessageState, ShortMessage};
use smpp_proto::pdu::{
    self, AlertNotification, Bind, Body, CommandId, CommandStatus, DecodeConfig, Decoded,
    DeliverSmResp, Pdu, SubmitSm, SubmitSmResp, TlvTag,
};
use smpp_proto::session::{BindKind, CloseReason, SessionConfig, SessionError};
use smpp_smol::{Client, Connection, Error, Handler, Inbound, Server, ServerConfig, ServerHandle};

/// A small SMSC: one account, sequential message ids, a receipt per
/// `registered_delivery` submit, and an optional gate that holds submits.
#[derive(Default)]
struct Smsc {
    next_id: AtomicU64,
    gate: Option<async_channel::Receiver<()>>,
}

impl Handler<Connection> for Smsc {
    async fn bind(&self, _: &Connection, _: BindKind, bind: &Bind) -> Result<(), CommandStatus> {
        match (bind.system_id.as_bytes(), bind.password.as_bytes()) {
            (b"esme", b"secret") => Ok(()),
            (b"esme", _) => Err(CommandStatus::INVALID_PASSWORD),
            _ => Err(CommandStatus::INVALID_SYSTEM_ID),
        }
    }

    async fn submit_sm(
        &self,
        conn: &Connection,
        sm: SubmitSm,
    ) -> Result<SubmitSmResp, CommandStatus> {
        if let Some(gate) = &self.gate {
            gate.recv().await.unwrap();
        }
        let id = format!("{:X}", self.next_id.fetch_add(1, Ordering::SeqCst) + 1);
        if sm.registered_delivery & 1 == 1 {
            let conn = conn.clone();
            let mut receipt = DeliveryReceipt::new(id.clone(), MessageState::Delivered);
            receipt.text = Some(String::from_utf8_lossy(&sm.short_message).into_owned());
            let mut dlr = SubmitSm {
                source_addr: sm.destination_addr.clone(),
                destination_addr: sm.source_addr.clone(),
                esm_class: 0x04,
                short_message: receipt.to_text().into_bytes().into(),
                ..Default::default()
            };
            dlr.tlvs
                .set_text(TlvTag::RECEIPTED_MESSAGE_ID, id.as_bytes())
                .unwrap();
            dlr.tlvs.set_u8(TlvTag::MESSAGE_STATE, 2);
            async_global_executor::spawn(async move { conn.deliver(dlr).await }).detach();
        }
        Ok(SubmitSmResp {
            message_id: id.into(),
            ..Default::default()
        })
    }
}

async fn start(
    rt: Rt,
    smsc: Smsc,
    session: SessionConfig,
) -> (std::net::SocketAddr, ServerHandle, common::Join<()>) {
    let config = ServerConfig::default().with_session(session);
    let server = Server::bind("127.0.0.1:0", smsc, config).await.unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let task = rt.spawn(async move { server.run().await.unwrap() });
    (addr, handle, task)
}

fn creds(password: &str) -> Bind {
    Bind {
        system_id: "esme".into(),
        password: password.to_owned().into(),
        interface_version: 0x34,
        ..Default::default()
    }
}

fn submit(text: &str, receipt: bool) -> SubmitSm {
    SubmitSm {
        source_addr: "447700900123".into(),
        destination_addr: "447700900456".into(),
        short_message: text.to_owned().into_bytes().into(),
        registered_delivery: u8::from(receipt),
        ..Default::default()
    }
}

async fn connect(
    addr: std::net::SocketAddr,
    kind: BindKind,
    config: SessionConfig,
) -> (Client, Inbound) {
    timeout(LIMIT, Client::connect(addr, kind, creds("secret"), config))
        .await
        .expect("bind in time")
        .expect("bound")
}

on_both!(
    binds_of_each_kind_and_wrong_password,
    submit_then_receipt,
    ten_thousand_concurrent_submits_through_window_64,
    a_full_window_waits_instead_of_failing,
    server_pushed_deliver_sm_is_answered,
    graceful_shutdown_unbinds_everyone,
    dropping_the_client_unbinds,
    idle_sessions_keep_alive_with_enquire_link,
    enquire_link_dead_peer_detection,
    peer_dying_mid_window_fails_every_pending_call,
    response_timeout_is_a_typed_error,
    session_init_timeout_and_connection_limit,
    a_panicking_handler_answers_system_error,
    answers_given_at_once_keep_the_handler_guarantees,
    dropping_the_server_future_unbinds_its_connections,
);

async fn binds_of_each_kind_and_wrong_password(rt: Rt) {
    let (addr, server, _task) = start(rt, Smsc::default(), SessionConfig::default()).await;
    for kind in BindKind::ALL {
        let (client, _inbound) = connect(addr, kind, SessionConfig::default()).await;
        assert!(client.bind_response().command_status.is_ok());
        let conns = server.connections();
        assert!(conns
            .iter()
            .any(|c| c.bind_kind() == Some(kind) && c.system_id() == Some("esme")));
        client.unbind().await.unwrap();
        assert_eq!(client.closed().await, CloseReason::Unbound);
        assert!(matches!(
            client.submit(submit("late", false)).await,
            Err(Error::Closed)
        ));
    }
    let refused = Client::connect(
        addr,
        BindKind::Transceiver,
        creds("wrong"),
        SessionConfig::default(),
    )
    .await;
    assert!(
        matches!(refused, Err(Error::Status(CommandStatus::INVALID_PASSWORD))),
        "{refused:?}"
    );
}

async fn submit_then_receipt(rt: Rt) {
    let (addr, _server, _task) = start(rt, Smsc::default(), SessionConfig::default()).await;
    let (client, inbound) = connect(addr, BindKind::Transceiver, SessionConfig::default()).await;
    let id = client.submit(submit("hello", true)).await.unwrap();
    let request = timeout(LIMIT, inbound.recv())
        .await
        .unwrap()
        .expect("a receipt");
    let receipt = request.receipt().expect("parsed receipt");
    assert_eq!(receipt.id, id.to_string());
    assert_eq!(receipt.state, MessageState::Delivered);
    drop(request); // answered with status 0

    // A long message: every part gets an id.
    let long = ShortMessage::text("x".repeat(400))
        .from("447700900123")
        .to("447700900456");
    let ids = client.submit_message(&long).await.unwrap();
    assert_eq!(ids.len(), 3);

    let err = client
        .request(Body::QuerySm(Default::default()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Status(CommandStatus::INVALID_COMMAND_ID)),
        "{err:?}"
    );
    client.unbind().await.unwrap();
}

async fn ten_thousand_concurrent_submits_through_window_64(rt: Rt) {
    let (addr, _server, _task) = start(rt, Smsc::default(), SessionConfig::default()).await;
    let config = SessionConfig::default().with_max_in_flight(64);
    let (client, _inbound) = connect(addr, BindKind::Transmitter, config).await;
    let tasks: Vec<_> = (0..10_000)
        .map(|i| {
            let client = client.clone();
            rt.spawn(async move { client.submit(submit(&format!("message {i}"), false)).await })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let id = timeout(LIMIT, task).await.expect("no hang");
        ids.insert(id.expect("submitted").to_string());
    }
    assert_eq!(ids.len(), 10_000);
    let stats = client.stats().await.unwrap();
    assert!(stats.sent(CommandId::SUBMIT_SM) == 10_000, "{stats:?}");
    client.unbind().await.unwrap();
}

async fn a_full_window_waits_instead_of_failing(rt: Rt) {
    let (open, gate) = async_channel::unbounded();
    let smsc = Smsc {
        gate: Some(gate),
        ..Default::default()
    };
    let (addr, _server, _task) = start(rt, smsc, SessionConfig::default()).await;
    let config = SessionConfig::default().with_max_in_flight(4);
    let (client, _inbound) = connect(addr, BindKind::Transmitter, config).await;
    let done = Arc::new(AtomicUsize::new(0));
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let client = client.clone();
            let done = done.clone();
            rt.spawn(async move {
                let r = client.submit(submit(&i.to_string(), false)).await;
                done.fetch_add(1, Ordering::SeqCst);
                r
            })
        })
        .collect();
    sleep(Duration::from_millis(200)).await;
    assert_eq!(
        done.load(Ordering::SeqCst),
        0,
        "nothing fails while the window is full"
    );
    let stats = client.stats().await.unwrap();
    assert_eq!(
        stats.sent(CommandId::SUBMIT_SM),
        4,
        "only the window is out"
    );
    for _ in 0..20 {
        open.send(()).await.unwrap();
    }
    for call in calls {
        timeout(LIMIT, call)
            .await
            .unwrap()
            .expect("submitted after waiting");
    }
}

async fn server_pushed_deliver_sm_is_answered(rt: Rt) {
    let (addr, server, _task) = start(rt, Smsc::default(), SessionConfig::default()).await;
    let (_client, inbound) = connect(addr, BindKind::Receiver, SessionConfig::default()).await;
    let conn = server.receiver("esme").expect("a bound receiver");
    let mo = SubmitSm {
        short_message: "mo".into(),
        ..submit("", false)
    };
    let answers = rt.spawn(async move {
        let explicit = conn.deliver(mo.clone()).await;
        let dropped = conn.deliver(mo.clone()).await;
        let rejected = conn.deliver(mo).await;
        (explicit, dropped, rejected)
    });
    let first = inbound.recv().await.unwrap();
    assert!(first.receipt().is_none());
    assert_eq!(first.pdu().command_id(), CommandId::DELIVER_SM);
    let resp = DeliverSmResp {
        message_id: "mine".into(),
        ..Default::default()
    };
    first.respond(CommandStatus::OK, Body::DeliverSmResp(resp));
    drop(inbound.recv().await.unwrap());
    inbound
        .recv()
        .await
        .unwrap()
        .reject(CommandStatus::RECEIVER_TEMPORARY_ERROR);
    let (explicit, dropped, rejected) = timeout(LIMIT, answers).await.unwrap();
    let conn = server.receiver("esme").unwrap();
    let alert = AlertNotification {
        source_addr: "4477".into(),
        ..Default::default()
    };
    conn.alert(alert).await.unwrap();
    let alert = inbound.recv().await.unwrap();
    assert_eq!(alert.pdu().command_id(), CommandId::ALERT_NOTIFICATION);
    alert.reject(CommandStatus::SYSTEM_ERROR); // no response exists: nothing is sent
    assert!(matches!(explicit.unwrap().body, Body::DeliverSmResp(r) if r.message_id == "mine"));
    assert!(dropped.unwrap().command_status.is_ok());
    assert!(matches!(
        rejected,
        Err(Error::Status(CommandStatus::RECEIVER_TEMPORARY_ERROR))
    ));
}

async fn graceful_shutdown_unbinds_everyone(rt: Rt) {
    let (addr, server, task) = start(rt, Smsc::default(), SessionConfig::default()).await;
    let mut clients = Vec::new();
    for kind in BindKind::ALL {
        clients.push(connect(addr, kind, SessionConfig::default()).await);
    }
    // One connection that never binds is closed too.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    sleep(Duration::from_millis(50)).await; // accepted, not just queued
    server.shutdown();
    timeout(LIMIT, task).await.expect("shutdown in time");
    for (client, inbound) in clients {
        assert_eq!(
            timeout(LIMIT, client.closed()).await.unwrap(),
            CloseReason::Unbound
        );
        assert!(inbound.recv().await.is_none());
        assert!(matches!(
            client.submit(submit("late", false)).await,
            Err(Error::Closed)
        ));
    }
    let mut buf = [0u8; 64];
    assert_eq!(
        timeout(LIMIT, idle.read(&mut buf)).await.unwrap().unwrap(),
        0
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

async fn dropping_the_client_unbinds(rt: Rt) {
    let (addr, server, _task) = start(rt, Smsc::default(), SessionConfig::default()).await;
    let (client, inbound) = connect(addr, BindKind::Transceiver, SessionConfig::default()).await;
    let conn = server.connections().pop().unwrap();
    drop((client, inbound));
    assert_eq!(
        timeout(LIMIT, conn.closed()).await.unwrap(),
        CloseReason::Unbound
    );
}

async fn idle_sessions_keep_alive_with_enquire_link(rt: Rt) {
    let (addr, server, _task) = start(rt, Smsc::default(), SessionConfig::default()).await;
    let config =
        SessionConfig::default().with_enquire_link_interval(Some(Duration::from_millis(50)));
    let (client, _inbound) = connect(addr, BindKind::Transmitter, config).await;
    // At least three keepalives, however slow the machine.
    let mut ours = client.stats().await.unwrap();
    while ours.received(CommandId::ENQUIRE_LINK_RESP) < 3 {
        sleep(Duration::from_millis(50)).await;
        ours = client.stats().await.unwrap();
    }
    let theirs = server.connections().pop().unwrap().stats().await.unwrap();
    assert!(ours.sent(CommandId::ENQUIRE_LINK) >= 3, "{ours:?}");
    assert!(theirs.received(CommandId::ENQUIRE_LINK) >= 3);
    client.submit(submit("still bound", false)).await.unwrap();
    client.unbind().await.unwrap();
    assert!(matches!(client.stats().await, Err(Error::Closed)));
}

// ---- against a scripted raw peer ----

/// A raw MC on a socket: reads PDUs, writes what the test says.
struct RawPeer {
    tcp: TcpStream,
    buf: BytesMut,
}

impl RawPeer {
    async fn accept(listener: &TcpListener) -> RawPeer {
        let (tcp, _) = listener.accept().await.unwrap();
        RawPeer {
            tcp,
            buf: BytesMut::new(),
        }
    }

    async fn read(&mut self) -> Option<Pdu> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Decoded::Pdu(pdu) = pdu::decode(&mut self.buf, &DecodeConfig::default()).unwrap()
            {
                return Some(pdu);
            }
            let n = self.tcp.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn write(&mut self, pdu: Pdu) {
        self.tcp.write_all(&pdu.to_vec().unwrap()).await.unwrap();
    }

    /// Accepts the bind that must come first.
    async fn accept_bind(&mut self) {
        let bind = self.read().await.unwrap();
        let body = Body::default_for(bind.command_id().response_id().unwrap()).unwrap();
        self.write(Pdu::response(bind.sequence_number, CommandStatus::OK, body))
            .await;
    }
}

async fn raw_mc() -> (TcpListener, std::net::SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

async fn enquire_link_dead_peer_detection(rt: Rt) {
    let (listener, addr) = raw_mc().await;
    let config = SessionConfig::default()
        .with_enquire_link_interval(Some(Duration::from_millis(100)))
        .with_enquire_link_timeout(Duration::from_millis(300));
    let peer = rt.spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        peer.accept_bind().await;
        // Answer two keepalives, then play dead.
        for _ in 0..2 {
            let ping = peer.read().await.unwrap();
            assert_eq!(ping.command_id(), CommandId::ENQUIRE_LINK);
            let pong = Body::default_for(CommandId::ENQUIRE_LINK_RESP).unwrap();
            peer.write(Pdu::response(ping.sequence_number, CommandStatus::OK, pong))
                .await;
        }
        let third = peer.read().await.unwrap();
        assert_eq!(third.command_id(), CommandId::ENQUIRE_LINK);
        peer // keep the socket open but silent
    });
    let (client, _inbound) = connect(addr, BindKind::Transceiver, config).await;
    let reason = timeout(LIMIT, client.closed()).await.unwrap();
    assert_eq!(reason, CloseReason::Error(SessionError::KeepaliveTimeout));
    drop(peer.await);
}

async fn peer_dying_mid_window_fails_every_pending_call(rt: Rt) {
    let (listener, addr) = raw_mc().await;
    let peer = rt.spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        peer.accept_bind().await;
        // Answer one submit, take 63 more without answering, then vanish.
        let first = peer.read().await.unwrap();
        let resp = Body::SubmitSmResp(SubmitSmResp {
            message_id: "1".into(),
            ..Default::default()
        });
        peer.write(Pdu::response(
            first.sequence_number,
            CommandStatus::OK,
            resp,
        ))
        .await;
        for _ in 0..63 {
            assert_eq!(
                peer.read().await.unwrap().command_id(),
                CommandId::SUBMIT_SM
            );
        }
    });
    let config = SessionConfig::default().with_max_in_flight(64);
    let (client, _inbound) = connect(addr, BindKind::Transmitter, config).await;
    let calls: Vec<_> = (0..200)
        .map(|i| {
            let client = client.clone();
            rt.spawn(async move { client.submit(submit(&i.to_string(), false)).await })
        })
        .collect();
    peer.await;
    let mut ok = 0;
    for call in calls {
        match timeout(LIMIT, call).await.expect("no call hangs") {
            Ok(_) => ok += 1,
            Err(Error::Closed) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(
        client.closed().await,
        CloseReason::Error(SessionError::ConnectionLost)
    );
}

async fn response_timeout_is_a_typed_error(rt: Rt) {
    let (listener, addr) = raw_mc().await;
    let peer = rt.spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        peer.accept_bind().await;
        let _ignored = peer.read().await;
        let nack = peer.read().await.unwrap();
        peer.write(Pdu::generic_nack(
            nack.sequence_number,
            CommandStatus::SYSTEM_ERROR,
        ))
        .await;
        peer
    });
    let config = SessionConfig::default().with_response_timeout(Duration::from_millis(200));
    let (client, _inbound) = connect(addr, BindKind::Transmitter, config).await;
    assert!(matches!(
        client.submit(submit("a", false)).await,
        Err(Error::Timeout)
    ));
    let nacked = client.submit(submit("b", false)).await;
    assert!(
        matches!(nacked, Err(Error::GenericNack(CommandStatus::SYSTEM_ERROR))),
        "{nacked:?}"
    );
    drop(peer.await);
}

async fn session_init_timeout_and_connection_limit(rt: Rt) {
    let session =
        SessionConfig::default().with_session_init_timeout(Some(Duration::from_millis(200)));
    let config = ServerConfig::default()
        .with_session(session)
        .with_max_connections(1);
    let server = Server::bind("127.0.0.1:0", Smsc::default(), config)
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let _task = rt.spawn(server.run());
    let mut first = TcpStream::connect(addr).await.unwrap();
    sleep(Duration::from_millis(50)).await;
    let mut second = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 64];
    // Over the limit: closed at once. Never bound: closed by the session init timer.
    assert_eq!(
        timeout(LIMIT, second.read(&mut buf))
            .await
            .unwrap()
            .unwrap(),
        0
    );
    assert_eq!(
        timeout(LIMIT, first.read(&mut buf)).await.unwrap().unwrap(),
        0
    );
}

async fn a_panicking_handler_answers_system_error(rt: Rt) {
    struct Panics;
    impl Handler<Connection> for Panics {
        async fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
            Ok(())
        }
        async fn submit_sm(
            &self,
            _: &Connection,
            sm: SubmitSm,
        ) -> Result<SubmitSmResp, CommandStatus> {
            assert!(sm.short_message.as_ref() != b"boom", "handler bug");
            Ok(SubmitSmResp::default())
        }
    }
    let server = Server::bind("127.0.0.1:0", Panics, ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let _task = rt.spawn(server.run());
    let (client, _inbound) = connect(addr, BindKind::Transmitter, SessionConfig::default()).await;
    let boom = client.submit(submit("boom", false)).await;
    assert!(
        matches!(boom, Err(Error::Status(CommandStatus::SYSTEM_ERROR))),
        "{boom:?}"
    );
    client
        .submit(submit("fine", false))
        .await
        .expect("the connection survives");
}

async fn answers_given_at_once_keep_the_handler_guarantees(rt: Rt) {
    /// Answers submit_sm at once (by text: an id, a status, a panic, or
    /// "later" for the asynchronous path); anything else goes to `request`.
    struct Quick;
    impl Handler<Connection> for Quick {
        async fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
            Ok(())
        }
        fn answer_now(&self, conn: &Connection, pdu: &Pdu) -> Option<Result<Body, CommandStatus>> {
            let Body::SubmitSm(sm) = &pdu.body else {
                return None;
            };
            assert_eq!(conn.system_id(), Some("esme"), "the bound connection");
            match sm.short_message.as_ref() {
                b"boom" => panic!("handler bug"),
                b"refuse" => Some(Err(CommandStatus::THROTTLED)),
                b"later" => None,
                _ => Some(Ok(Body::SubmitSmResp(SubmitSmResp {
                    message_id: "now".into(),
                    ..Default::default()
                }))),
            }
        }
        async fn submit_sm(
            &self,
            _: &Connection,
            _: SubmitSm,
        ) -> Result<SubmitSmResp, CommandStatus> {
            Ok(SubmitSmResp {
                message_id: "later".into(),
                ..Default::default()
            })
        }
    }
    let server = Server::bind("127.0.0.1:0", Quick, ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let _task = rt.spawn(server.run());
    let (client, _inbound) = connect(addr, BindKind::Transceiver, SessionConfig::default()).await;
    let id = client.submit(submit("hello", false)).await.unwrap();
    assert_eq!(id.as_bytes(), b"now");
    let id = client.submit(submit("later", false)).await.unwrap();
    assert_eq!(id.as_bytes(), b"later");
    let refused = client.submit(submit("refuse", false)).await;
    assert!(
        matches!(refused, Err(Error::Status(CommandStatus::THROTTLED))),
        "{refused:?}"
    );
    let boom = client.submit(submit("boom", false)).await;
    assert!(
        matches!(boom, Err(Error::Status(CommandStatus::SYSTEM_ERROR))),
        "{boom:?}"
    );
    // Many at once, mixed: every one answered exactly once.
    let calls: Vec<_> = (0..1000)
        .map(|i| {
            let client = client.clone();
            let text = if i % 10 == 0 { "later" } else { "hello" };
            rt.spawn(async move { client.submit(submit(text, false)).await })
        })
        .collect();
    for call in calls {
        call.await.expect("answered");
    }
    client.unbind().await.unwrap();
}

async fn dropping_the_server_future_unbinds_its_connections(_rt: Rt) {
    let server = Server::bind("127.0.0.1:0", Smsc::default(), ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle(); // keeps the registry alive: the guard must unbind
                                  // A smol task cancels its future when dropped (async-std's would detach).
    let task = smol::spawn(server.run());
    let (client, _inbound) = connect(addr, BindKind::Transceiver, SessionConfig::default()).await;
    drop(task);
    assert_eq!(
        timeout(LIMIT, client.closed()).await.unwrap(),
        CloseReason::Unbound
    );
    // Its connection task ends (and leaves the registry) once the session has.
    let gone = async {
        while !handle.connections().is_empty() {
            sleep(Duration::from_millis(5)).await;
        }
    };
    timeout(LIMIT, gone).await.expect("connection deregistered");
}
