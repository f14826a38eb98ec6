//! Client and server over 127.0.0.1, and against scripted raw peers.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use smpp_proto::message::DeliveryReceipt;
use smpp_proto::message::{MessageState, ShortMessage};
use smpp_proto::pdu::{
    self, AlertNotification, Bind, Body, CommandId, CommandStatus, DataSm, DecodeConfig, Decoded,
    DeliverSmResp, Pdu, QuerySm, QuerySmResp, SubmitSm, SubmitSmResp, TlvTag,
};
use smpp_proto::session::{BindKind, CloseReason, SessionConfig, SessionError};
use smpp_tokio::{
    Backoff, Client, Connection, Error, Handler, Inbound, Pool, ReconnectingClient, Server,
    ServerConfig, ServerHandle,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);

/// A small SMSC: one account, sequential message ids, a receipt per
/// `registered_delivery` submit, and an optional gate that holds submits.
#[derive(Default)]
struct Smsc {
    next_id: AtomicU64,
    gate: Option<Arc<Semaphore>>,
    active: AtomicUsize,
    max_active: AtomicUsize,
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
        let active = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_active.fetch_max(active, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        self.active.fetch_sub(1, Ordering::SeqCst);
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
            tokio::spawn(async move { conn.deliver(dlr).await });
        }
        Ok(SubmitSmResp {
            message_id: id.into(),
            ..Default::default()
        })
    }

    async fn query_sm(&self, _: &Connection, query: QuerySm) -> Result<QuerySmResp, CommandStatus> {
        if query.message_id == "1" {
            let resp = QuerySmResp {
                message_id: query.message_id,
                message_state: 2,
                ..Default::default()
            };
            Ok(resp)
        } else {
            Err(CommandStatus::QUERY_FAILED)
        }
    }
}

async fn start(
    smsc: Smsc,
    session: SessionConfig,
) -> (
    std::net::SocketAddr,
    ServerHandle,
    tokio::task::JoinHandle<()>,
) {
    let config = ServerConfig::default().with_session(session);
    let server = Server::bind("127.0.0.1:0", smsc, config).await.unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let task = tokio::spawn(async move { server.run().await.unwrap() });
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

#[tokio::test]
async fn binds_of_each_kind_and_wrong_password() {
    let (addr, server, _task) = start(Smsc::default(), SessionConfig::default()).await;
    for kind in BindKind::ALL {
        let (client, _inbound) = connect(addr, kind, SessionConfig::default()).await;
        assert!(client.bind_response().command_status.is_ok());
        let conns = server.connections();
        assert!(conns
            .iter()
            .any(|c| c.bind_kind() == Some(kind) && c.system_id() == Some("esme")));
        client.unbind().await.unwrap();
        assert_eq!(client.closed().await, CloseReason::Unbound);
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

#[tokio::test]
async fn submit_then_receipt_and_unsupported_request() {
    let (addr, _server, _task) = start(Smsc::default(), SessionConfig::default()).await;
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

    let query = |id: &str| {
        let message_id = id.to_owned().into();
        Body::QuerySm(Box::new(QuerySm {
            message_id,
            ..Default::default()
        }))
    };
    let known = client.request(query("1")).await.unwrap();
    assert!(matches!(known.body, Body::QuerySmResp(r) if r.message_state == 2));
    let unknown = client.request(query("999")).await.unwrap_err();
    assert!(
        matches!(unknown, Error::Status(CommandStatus::QUERY_FAILED)),
        "{unknown:?}"
    );
    let data = Body::DataSm(Box::new(DataSm {
        destination_addr: "1".into(),
        ..Default::default()
    }));
    let err = client.request(data).await.unwrap_err();
    assert!(
        matches!(err, Error::Status(CommandStatus::INVALID_COMMAND_ID)),
        "{err:?}"
    );
    client.unbind().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_submits_through_window_64() {
    let (addr, _server, _task) = start(Smsc::default(), SessionConfig::default()).await;
    let config = SessionConfig::default().with_max_in_flight(64);
    let (client, _inbound) = connect(addr, BindKind::Transmitter, config).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10_000 {
        let client = client.clone();
        tasks.spawn(async move { client.submit(submit(&format!("message {i}"), false)).await });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(result) = timeout(LIMIT, tasks.join_next()).await.expect("no hang") {
        ids.insert(result.unwrap().expect("submitted").to_string());
    }
    assert_eq!(ids.len(), 10_000);
    client.unbind().await.unwrap();
}

#[tokio::test]
async fn a_full_window_waits_instead_of_failing() {
    let gate = Arc::new(Semaphore::new(0));
    let smsc = Smsc {
        gate: Some(gate.clone()),
        ..Default::default()
    };
    let (addr, _server, _task) = start(smsc, SessionConfig::default()).await;
    let config = SessionConfig::default().with_max_in_flight(4);
    let (client, _inbound) = connect(addr, BindKind::Transmitter, config).await;
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.submit(submit(&i.to_string(), false)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        calls.iter().all(|c| !c.is_finished()),
        "nothing fails while the window is full"
    );
    gate.add_permits(20);
    for call in calls {
        timeout(LIMIT, call)
            .await
            .unwrap()
            .unwrap()
            .expect("submitted after waiting");
    }
}

#[tokio::test]
async fn server_pushed_deliver_sm_is_answered() {
    let (addr, server, _task) = start(Smsc::default(), SessionConfig::default()).await;
    let (_client, inbound) = connect(addr, BindKind::Receiver, SessionConfig::default()).await;
    let conn = server.receiver("esme").expect("a bound receiver");
    let mo = SubmitSm {
        short_message: "mo".into(),
        ..submit("", false)
    };
    let answers = tokio::spawn(async move {
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
    let (explicit, dropped, rejected) = timeout(LIMIT, answers).await.unwrap().unwrap();
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

#[tokio::test]
async fn graceful_shutdown_unbinds_everyone() {
    let (addr, server, task) = start(Smsc::default(), SessionConfig::default()).await;
    let mut clients = Vec::new();
    for kind in BindKind::ALL {
        clients.push(connect(addr, kind, SessionConfig::default()).await);
    }
    // One connection that never binds is closed too.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await; // accepted, not just queued
    server.shutdown();
    timeout(LIMIT, task)
        .await
        .expect("shutdown in time")
        .unwrap();
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

#[tokio::test]
async fn dropping_the_client_unbinds() {
    let (addr, server, _task) = start(Smsc::default(), SessionConfig::default()).await;
    let (client, inbound) = connect(addr, BindKind::Transceiver, SessionConfig::default()).await;
    let conn = server.connections().pop().unwrap();
    drop((client, inbound));
    assert_eq!(
        timeout(LIMIT, conn.closed()).await.unwrap(),
        CloseReason::Unbound
    );
}

#[tokio::test]
async fn session_init_timeout_and_connection_limit() {
    let session =
        SessionConfig::default().with_session_init_timeout(Some(Duration::from_millis(200)));
    let config = ServerConfig::default()
        .with_session(session)
        .with_max_connections(1);
    let server = Server::bind("127.0.0.1:0", Smsc::default(), config)
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run());
    let mut first = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
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
        loop {
            if let Decoded::Pdu(pdu) = pdu::decode(&mut self.buf, &DecodeConfig::default()).unwrap()
            {
                return Some(pdu);
            }
            if self.tcp.read_buf(&mut self.buf).await.ok()? == 0 {
                return None;
            }
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

#[tokio::test]
async fn enquire_link_keepalive_and_dead_peer_detection() {
    let (listener, addr) = raw_mc().await;
    let config = SessionConfig::default()
        .with_enquire_link_interval(Some(Duration::from_millis(100)))
        .with_enquire_link_timeout(Duration::from_millis(300));
    let peer = tokio::spawn(async move {
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
    drop(peer.await.unwrap());
}

#[tokio::test]
async fn peer_dying_mid_window_fails_every_pending_call() {
    let (listener, addr) = raw_mc().await;
    let peer = tokio::spawn(async move {
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
            tokio::spawn(async move { client.submit(submit(&i.to_string(), false)).await })
        })
        .collect();
    peer.await.unwrap();
    let mut ok = 0;
    for call in calls {
        match timeout(LIMIT, call).await.expect("no call hangs").unwrap() {
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

#[tokio::test]
async fn response_timeout_is_a_typed_error() {
    let (listener, addr) = raw_mc().await;
    let peer = tokio::spawn(async move {
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
    drop(peer.await.unwrap());
}

// ---- reconnect and pool ----

#[test]
fn backoff_grows_to_its_cap_with_jitter() {
    let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).with_jitter(0.5);
    for _ in 0..100 {
        let first = backoff.delay(0);
        assert!(
            first >= Duration::from_millis(50) && first <= Duration::from_millis(100),
            "{first:?}"
        );
        let capped = backoff.delay(40);
        assert!(
            capped >= Duration::from_millis(500) && capped <= Duration::from_secs(1),
            "{capped:?}"
        );
    }
    let delays: std::collections::HashSet<_> = (0..20).map(|_| backoff.delay(3)).collect();
    assert!(delays.len() > 1, "jittered");
}

type Connecting =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(Client, Inbound), Error>> + Send>>;

fn tcp_connector(
    addr: std::net::SocketAddr,
    kind: BindKind,
) -> impl FnMut() -> Connecting + Clone + Send + 'static {
    move || {
        Box::pin(Client::connect(
            addr,
            kind,
            creds("secret"),
            SessionConfig::default(),
        ))
    }
}

#[tokio::test]
async fn reconnecting_client_comes_back_after_the_connection_dies() {
    let (addr, server, _task) = start(Smsc::default(), SessionConfig::default()).await;
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
    let (client, inbound) =
        ReconnectingClient::new(tcp_connector(addr, BindKind::Transceiver), backoff, LIMIT);
    client.submit(submit("before", false)).await.unwrap();
    let first = server.connections().pop().unwrap();
    first.close(); // the MC drops us without unbinding
    first.closed().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    client
        .submit(submit("after", true))
        .await
        .expect("reconnected");
    let ids: Vec<u64> = server.connections().iter().map(|c| c.id()).collect();
    assert_eq!(ids.len(), 1);
    assert_ne!(ids[0], first.id());
    // Receipts of the new session arrive on the same Inbound.
    assert!(timeout(LIMIT, inbound.recv())
        .await
        .unwrap()
        .unwrap()
        .receipt()
        .is_some());
    client.close().await;
    assert!(timeout(LIMIT, first.closed()).await.is_ok());
}

#[tokio::test]
async fn reconnecting_client_without_a_server_is_not_connected() {
    let (listener, addr) = raw_mc().await;
    drop(listener);
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(50));
    let (client, _inbound) = ReconnectingClient::new(
        tcp_connector(addr, BindKind::Transmitter),
        backoff,
        Duration::from_millis(200),
    );
    assert!(matches!(
        client.submit(submit("x", false)).await,
        Err(Error::NotConnected)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_spreads_submits_over_its_binds() {
    let (addr, server, _task) = start(Smsc::default(), SessionConfig::default()).await;
    let backoff = Backoff::default();
    let (pool, inbound) = Pool::new(
        4,
        tcp_connector(addr, BindKind::Transceiver),
        backoff,
        LIMIT,
    );
    while pool.bound() < 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let results = futures_util::future::join_all(
        (0..1000).map(|i| pool.submit(submit(&i.to_string(), i % 100 == 0))),
    )
    .await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(pool.bound(), 4);
    assert_eq!(server.connections().len(), 4);
    for conn in server.connections() {
        let submits = conn.stats().await.unwrap().received(CommandId::SUBMIT_SM);
        assert_eq!(submits, 250, "round robin over the binds");
    }
    for _ in 0..10 {
        assert!(timeout(LIMIT, inbound.recv())
            .await
            .unwrap()
            .unwrap()
            .receipt()
            .is_some());
    }
    pool.close().await;
    assert_eq!(pool.bound(), 0);
}

#[tokio::test]
async fn a_panicking_handler_answers_system_error() {
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
    tokio::spawn(server.run());
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

#[tokio::test]
async fn answers_given_at_once_skip_the_handler_task_and_keep_its_guarantees() {
    /// Answers submit_sm at once (by text: an id, a status, a panic, or
    /// "later" for the asynchronous path); anything else goes to `request`.
    struct Quick {
        later: AtomicUsize,
    }
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
            self.later.fetch_add(1, Ordering::SeqCst);
            Ok(SubmitSmResp {
                message_id: "later".into(),
                ..Default::default()
            })
        }
    }
    let quick = Quick {
        later: AtomicUsize::new(0),
    };
    let server = Server::bind("127.0.0.1:0", quick, ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run());
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
    let calls = (0..1000).map(|i| {
        let client = client.clone();
        async move {
            let text = if i % 10 == 0 { "later" } else { "hello" };
            client.submit(submit(text, false)).await
        }
    });
    let results = futures_util::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok));
    // A query is not answered at once, so it reaches `request` (and is
    // refused there: not implemented).
    let query = client.request(Body::QuerySm(Box::default())).await;
    assert!(
        matches!(query, Err(Error::Status(CommandStatus::INVALID_COMMAND_ID))),
        "{query:?}"
    );
    client.unbind().await.unwrap();
}

#[tokio::test]
async fn dropping_the_server_future_unbinds_its_connections() {
    let server = Server::bind("127.0.0.1:0", Smsc::default(), ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle(); // keeps the registry alive: the guard must unbind
    let task = tokio::spawn(server.run());
    let (client, _inbound) = connect(addr, BindKind::Transceiver, SessionConfig::default()).await;
    task.abort();
    assert_eq!(
        timeout(LIMIT, client.closed()).await.unwrap(),
        CloseReason::Unbound
    );
    // Its connection task ends (and leaves the registry) once the session has.
    let gone = async {
        while !handle.connections().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    timeout(LIMIT, gone).await.expect("connection deregistered");
}

#[tokio::test]
async fn inbound_backpressure_holds_the_peer_until_answered() {
    let (addr, server, _task) = start(Smsc::default(), SessionConfig::default()).await;
    let config = SessionConfig::default()
        .with_max_inbound(2)
        .with_inbound_overflow(smpp_proto::session::InboundOverflow::Backpressure);
    let (_client, inbound) = connect(addr, BindKind::Receiver, config).await;
    let conn = server.receiver("esme").unwrap();
    let pushes: Vec<_> = (0..10)
        .map(|i| {
            let conn = conn.clone();
            tokio::spawn(async move { conn.deliver(submit(&format!("mo {i}"), false)).await })
        })
        .collect();
    // Hold every request we get: only the inbound window's worth arrives.
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(timeout(LIMIT, inbound.recv()).await.unwrap().unwrap());
    }
    let third = timeout(Duration::from_millis(200), inbound.recv()).await;
    assert!(third.is_err(), "the rest wait in TCP, not in memory");
    assert!(pushes.iter().all(|p| !p.is_finished()), "none answered yet");
    drop(held); // answered: the rest flow
    let mut answered = 2;
    while answered < 10 {
        drop(timeout(LIMIT, inbound.recv()).await.unwrap().unwrap());
        answered += 1;
    }
    for push in pushes {
        let resp = timeout(LIMIT, push).await.unwrap().unwrap();
        assert!(resp
            .expect("no ESME_RTHROTTLED in backpressure mode")
            .command_status
            .is_ok());
    }
}

#[tokio::test]
async fn idle_sessions_keep_alive_with_enquire_link() {
    let (addr, server, _task) = start(Smsc::default(), SessionConfig::default()).await;
    let config =
        SessionConfig::default().with_enquire_link_interval(Some(Duration::from_millis(50)));
    let (client, _inbound) = connect(addr, BindKind::Transmitter, config).await;
    // At least three keepalives, however slow the machine.
    let mut ours = client.stats().await.unwrap();
    while ours.received(CommandId::ENQUIRE_LINK_RESP) < 3 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        ours = client.stats().await.unwrap();
    }
    let theirs = server.connections().pop().unwrap().stats().await.unwrap();
    assert!(ours.sent(CommandId::ENQUIRE_LINK) >= 3, "{ours:?}");
    assert!(ours.received(CommandId::ENQUIRE_LINK_RESP) >= 3);
    assert!(theirs.received(CommandId::ENQUIRE_LINK) >= 3);
    client.submit(submit("still bound", false)).await.unwrap();
    client.unbind().await.unwrap();
    assert!(matches!(client.stats().await, Err(Error::Closed)));
}

#[tokio::test]
async fn unframeable_input_gets_its_generic_nack_before_the_close() {
    let (addr, server, _task) = start(Smsc::default(), SessionConfig::default()).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut peer = RawPeer {
        tcp,
        buf: BytesMut::new(),
    };
    // command_length 0xFFFF_FFFF: cannot be framed.
    peer.tcp
        .write_all(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1])
        .await
        .unwrap();
    let nack = timeout(LIMIT, peer.read())
        .await
        .unwrap()
        .expect("generic_nack");
    assert_eq!(nack.command_id(), CommandId::GENERIC_NACK);
    assert_eq!(nack.command_status, CommandStatus::INVALID_COMMAND_LENGTH);
    assert!(
        timeout(LIMIT, peer.read()).await.unwrap().is_none(),
        "then closed"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(server.connections().is_empty());
}

#[tokio::test]
async fn submits_waiting_behind_an_unbind_fail_as_closed() {
    let gate = Arc::new(Semaphore::new(0));
    let smsc = Smsc {
        gate: Some(gate.clone()),
        ..Default::default()
    };
    let (addr, _server, _task) = start(smsc, SessionConfig::default()).await;
    let config = SessionConfig::default().with_max_in_flight(4);
    let (client, _inbound) = connect(addr, BindKind::Transmitter, config).await;
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.submit(submit(&i.to_string(), false)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await; // 4 in flight, 16 waiting
    let unbinding = tokio::spawn({
        let client = client.clone();
        async move { client.unbind().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.add_permits(1); // one answer: window room while unbinding
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.add_permits(100); // the other 3, then the unbind
    timeout(LIMIT, unbinding).await.unwrap().unwrap().unwrap();
    let (mut ok, mut closed) = (0, 0);
    for call in calls {
        match timeout(LIMIT, call).await.unwrap().unwrap() {
            Ok(_) => ok += 1,
            Err(Error::Closed) => closed += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((ok, closed), (4, 16));
}
