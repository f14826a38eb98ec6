//! Blocking client and server over 127.0.0.1, and against scripted raw peers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use smpp_blocking::{
    Client, Connection, Error, Handler, Inbound, Server, ServerConfig, ServerHandle,
};
use smpp_proto::message::{DeliveryReceipt, MessageState, ShortMessage};
use smpp_proto::pdu::{
    self, AlertNotification, Bind, Body, CommandId, CommandStatus, DataSm, DecodeConfig, Decoded,
    DeliverSmResp, Pdu, QuerySm, QuerySmResp, SubmitSm, SubmitSmResp, TlvTag,
};
use smpp_proto::session::{BindKind, CloseReason, SessionConfig, SessionError};

const LIMIT: Duration = Duration::from_secs(10);

/// A gate submits wait at until it opens.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cond: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cond.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cond.notify_all();
    }
}

/// A small SMSC: one account, sequential message ids, a receipt per
/// `registered_delivery` submit, and an optional gate that holds submits.
#[derive(Default)]
struct Smsc {
    next_id: AtomicU64,
    gate: Option<Arc<Gate>>,
}

impl Handler<Connection> for Smsc {
    fn bind(&self, _: &Connection, _: BindKind, bind: &Bind) -> Result<(), CommandStatus> {
        match (bind.system_id.as_bytes(), bind.password.as_bytes()) {
            (b"esme", b"secret") => Ok(()),
            (b"esme", _) => Err(CommandStatus::INVALID_PASSWORD),
            _ => Err(CommandStatus::INVALID_SYSTEM_ID),
        }
    }

    fn submit_sm(&self, conn: &Connection, sm: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        if let Some(gate) = &self.gate {
            gate.wait();
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
            thread::spawn(move || conn.deliver(dlr));
        }
        Ok(SubmitSmResp {
            message_id: id.into(),
            ..Default::default()
        })
    }

    fn query_sm(&self, _: &Connection, query: QuerySm) -> Result<QuerySmResp, CommandStatus> {
        if query.message_id == "1" {
            Ok(QuerySmResp {
                message_id: query.message_id,
                message_state: 2,
                ..Default::default()
            })
        } else {
            Err(CommandStatus::QUERY_FAILED)
        }
    }
}

fn start(smsc: Smsc, session: SessionConfig) -> (SocketAddr, ServerHandle, thread::JoinHandle<()>) {
    let config = ServerConfig::default().with_session(session);
    let server = Server::bind("127.0.0.1:0", smsc, config).unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let task = thread::spawn(move || server.run().unwrap());
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

fn connect(addr: SocketAddr, kind: BindKind, config: SessionConfig) -> (Client, Inbound) {
    Client::connect(addr, kind, creds("secret"), config).expect("bound")
}

/// Runs `f` on a thread and waits at most `LIMIT` for it.
fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || drop(tx.send(f())));
    rx.recv_timeout(LIMIT).expect("no hang")
}

#[test]
fn binds_of_each_kind_and_wrong_password() {
    let (addr, server, _task) = start(Smsc::default(), SessionConfig::default());
    for kind in BindKind::ALL {
        let (client, _inbound) = connect(addr, kind, SessionConfig::default());
        assert!(client.bind_response().command_status.is_ok());
        assert!(server
            .connections()
            .iter()
            .any(|c| c.bind_kind() == Some(kind) && c.system_id() == Some("esme")));
        client.unbind().unwrap();
        assert_eq!(client.closed(), CloseReason::Unbound);
    }
    let refused = Client::connect(
        addr,
        BindKind::Transceiver,
        creds("wrong"),
        SessionConfig::default(),
    );
    assert!(
        matches!(refused, Err(Error::Status(CommandStatus::INVALID_PASSWORD))),
        "{refused:?}"
    );
}

#[test]
fn submit_then_receipt_and_other_requests() {
    let (addr, _server, _task) = start(Smsc::default(), SessionConfig::default());
    let (client, inbound) = connect(addr, BindKind::Transceiver, SessionConfig::default());
    let id = client.submit(submit("hello", true)).unwrap();
    let request = inbound.recv_timeout(LIMIT).expect("a receipt");
    let receipt = request.receipt().expect("parsed receipt");
    assert_eq!(receipt.id, id.to_string());
    assert_eq!(receipt.state, MessageState::Delivered);
    drop(request); // answered with status 0

    let long = ShortMessage::text("x".repeat(400))
        .from("447700900123")
        .to("447700900456");
    assert_eq!(client.submit_message(&long).unwrap().len(), 3);

    let query = |id: &str| {
        Body::QuerySm(Box::new(QuerySm {
            message_id: id.to_owned().into(),
            ..Default::default()
        }))
    };
    let known = client.request(query("1")).unwrap();
    assert!(matches!(known.body, Body::QuerySmResp(r) if r.message_state == 2));
    let unknown = client.request(query("999")).unwrap_err();
    assert!(
        matches!(unknown, Error::Status(CommandStatus::QUERY_FAILED)),
        "{unknown:?}"
    );
    let data = Body::DataSm(Box::new(DataSm {
        destination_addr: "1".into(),
        ..Default::default()
    }));
    let err = client.request(data).unwrap_err();
    assert!(
        matches!(err, Error::Status(CommandStatus::INVALID_COMMAND_ID)),
        "{err:?}"
    );
    client.unbind().unwrap();
}

#[test]
fn ten_thousand_submits_from_many_threads_through_window_64() {
    let (addr, _server, _task) = start(Smsc::default(), SessionConfig::default());
    let config = SessionConfig::default().with_max_in_flight(64);
    let (client, _inbound) = connect(addr, BindKind::Transmitter, config);
    let started = Instant::now();
    // 100 threads: more callers than window slots, so some always wait.
    let ids = within(move || {
        let threads: Vec<_> = (0..100)
            .map(|t| {
                let client = client.clone();
                thread::spawn(move || {
                    (0..100)
                        .map(|i| {
                            let text = format!("message {t}/{i}");
                            client
                                .submit(submit(&text, false))
                                .expect("submitted")
                                .to_string()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let ids: std::collections::HashSet<_> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let stats = client.stats().unwrap();
        client.unbind().unwrap();
        (ids, stats)
    });
    let (ids, stats) = ids;
    assert_eq!(ids.len(), 10_000);
    assert_eq!(stats.received(CommandId::SUBMIT_SM_RESP), 10_000);
    eprintln!("10,000 submits in {:?}", started.elapsed());
}

#[test]
fn a_full_window_waits_instead_of_failing() {
    let gate = Arc::new(Gate::default());
    let smsc = Smsc {
        gate: Some(gate.clone()),
        ..Default::default()
    };
    let (addr, _server, _task) = start(smsc, SessionConfig::default());
    let config = SessionConfig::default().with_max_in_flight(4);
    let (client, _inbound) = connect(addr, BindKind::Transmitter, config);
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let client = client.clone();
            thread::spawn(move || client.submit(submit(&i.to_string(), false)))
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    assert!(
        calls.iter().all(|c| !c.is_finished()),
        "nothing fails while the window is full"
    );
    assert_eq!(client.stats().unwrap().window_in_flight, 4);
    gate.open();
    within(move || {
        for call in calls {
            call.join().unwrap().expect("submitted after waiting");
        }
    });
}

#[test]
fn server_pushed_deliver_sm_is_answered() {
    let (addr, server, _task) = start(Smsc::default(), SessionConfig::default());
    let (_client, inbound) = connect(addr, BindKind::Receiver, SessionConfig::default());
    let conn = server.receiver("esme").expect("a bound receiver");
    let mo = SubmitSm {
        short_message: "mo".into(),
        ..submit("", false)
    };
    let pusher = conn.clone();
    let answers = thread::spawn(move || {
        let explicit = pusher.deliver(mo.clone());
        let dropped = pusher.deliver(mo.clone());
        let rejected = pusher.deliver(mo);
        (explicit, dropped, rejected)
    });
    let first = inbound.recv_timeout(LIMIT).unwrap();
    assert!(first.receipt().is_none());
    assert_eq!(first.pdu().command_id(), CommandId::DELIVER_SM);
    let resp = DeliverSmResp {
        message_id: "mine".into(),
        ..Default::default()
    };
    first.respond(CommandStatus::OK, Body::DeliverSmResp(resp));
    drop(inbound.recv_timeout(LIMIT).unwrap());
    inbound
        .recv_timeout(LIMIT)
        .unwrap()
        .reject(CommandStatus::RECEIVER_TEMPORARY_ERROR);
    let (explicit, dropped, rejected) = answers.join().unwrap();
    let alert = AlertNotification {
        source_addr: "4477".into(),
        ..Default::default()
    };
    conn.alert(alert).unwrap();
    let alert = inbound.recv_timeout(LIMIT).unwrap();
    assert_eq!(alert.pdu().command_id(), CommandId::ALERT_NOTIFICATION);
    alert.reject(CommandStatus::SYSTEM_ERROR); // no response exists: nothing is sent
    assert!(matches!(explicit.unwrap().body, Body::DeliverSmResp(r) if r.message_id == "mine"));
    assert!(dropped.unwrap().command_status.is_ok());
    assert!(matches!(
        rejected,
        Err(Error::Status(CommandStatus::RECEIVER_TEMPORARY_ERROR))
    ));
}

#[test]
fn idle_sessions_keep_alive_with_enquire_link() {
    let (addr, server, _task) = start(Smsc::default(), SessionConfig::default());
    let config =
        SessionConfig::default().with_enquire_link_interval(Some(Duration::from_millis(50)));
    let (client, _inbound) = connect(addr, BindKind::Transmitter, config);
    let deadline = Instant::now() + LIMIT;
    let mut ours = client.stats().unwrap();
    while ours.received(CommandId::ENQUIRE_LINK_RESP) < 3 {
        assert!(Instant::now() < deadline, "keepalives answered: {ours:?}");
        thread::sleep(Duration::from_millis(50));
        ours = client.stats().unwrap();
    }
    let theirs = server.connections().pop().unwrap().stats().unwrap();
    assert!(ours.sent(CommandId::ENQUIRE_LINK) >= 3, "{ours:?}");
    assert!(theirs.received(CommandId::ENQUIRE_LINK) >= 3);
    client.submit(submit("still bound", false)).unwrap();
    client.unbind().unwrap();
    assert!(matches!(client.stats(), Err(Error::Closed)));
}

#[test]
fn graceful_shutdown_unbinds_everyone() {
    let (addr, server, task) = start(Smsc::default(), SessionConfig::default());
    let clients: Vec<_> = BindKind::ALL
        .into_iter()
        .map(|kind| connect(addr, kind, SessionConfig::default()))
        .collect();
    // One connection that never binds is closed too.
    let mut idle = TcpStream::connect(addr).unwrap();
    thread::sleep(Duration::from_millis(50)); // accepted, not just queued
    server.shutdown();
    within(move || task.join().unwrap());
    for (client, inbound) in clients {
        assert_eq!(client.closed(), CloseReason::Unbound);
        assert!(inbound.recv().is_none());
        assert!(matches!(
            client.submit(submit("late", false)),
            Err(Error::Closed)
        ));
    }
    idle.set_read_timeout(Some(LIMIT)).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(idle.read(&mut buf).unwrap(), 0);
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
}

#[test]
fn dropping_the_client_unbinds() {
    let (addr, server, _task) = start(Smsc::default(), SessionConfig::default());
    let (client, inbound) = connect(addr, BindKind::Transceiver, SessionConfig::default());
    let conn = server.connections().pop().unwrap();
    drop((client, inbound));
    assert_eq!(within(move || conn.closed()), CloseReason::Unbound);
}

#[test]
fn dropping_the_client_unbinds_while_its_inbound_lives() {
    let (addr, server, _task) = start(Smsc::default(), SessionConfig::default());
    let (client, inbound) = connect(addr, BindKind::Transceiver, SessionConfig::default());
    let conn = server.connections().pop().unwrap();
    // A reader that runs until the session ends.
    let reader = thread::spawn(move || inbound.count());
    drop(client);
    assert_eq!(within(move || conn.closed()), CloseReason::Unbound);
    assert_eq!(within(move || reader.join().unwrap()), 0);
}

// ---- against a scripted raw peer ----

/// A raw MC on a socket: reads PDUs, writes what the test says.
struct RawPeer {
    tcp: TcpStream,
    buf: BytesMut,
}

impl RawPeer {
    fn accept(listener: &TcpListener) -> RawPeer {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(LIMIT)).unwrap();
        RawPeer {
            tcp,
            buf: BytesMut::new(),
        }
    }

    fn read(&mut self) -> Option<Pdu> {
        loop {
            if let Decoded::Pdu(pdu) = pdu::decode(&mut self.buf, &DecodeConfig::default()).unwrap()
            {
                return Some(pdu);
            }
            let mut chunk = [0u8; 4096];
            match self.tcp.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn write(&mut self, pdu: Pdu) {
        self.tcp.write_all(&pdu.to_vec().unwrap()).unwrap();
    }

    /// Accepts the bind that must come first.
    fn accept_bind(&mut self) {
        let bind = self.read().unwrap();
        let body = Body::default_for(bind.command_id().response_id().unwrap()).unwrap();
        self.write(Pdu::response(bind.sequence_number, CommandStatus::OK, body));
    }
}

fn raw_mc() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

#[test]
fn enquire_link_keepalive_and_dead_peer_detection() {
    let (listener, addr) = raw_mc();
    let config = SessionConfig::default()
        .with_enquire_link_interval(Some(Duration::from_millis(100)))
        .with_enquire_link_timeout(Duration::from_millis(300));
    let peer = thread::spawn(move || {
        let mut peer = RawPeer::accept(&listener);
        peer.accept_bind();
        // Answer two keepalives, then play dead.
        for _ in 0..2 {
            let ping = peer.read().unwrap();
            assert_eq!(ping.command_id(), CommandId::ENQUIRE_LINK);
            let pong = Body::default_for(CommandId::ENQUIRE_LINK_RESP).unwrap();
            peer.write(Pdu::response(ping.sequence_number, CommandStatus::OK, pong));
        }
        let third = peer.read().unwrap();
        assert_eq!(third.command_id(), CommandId::ENQUIRE_LINK);
        peer // keep the socket open but silent
    });
    let (client, _inbound) = connect(addr, BindKind::Transceiver, config);
    let reason = within(move || client.closed());
    assert_eq!(reason, CloseReason::Error(SessionError::KeepaliveTimeout));
    drop(peer.join().unwrap());
}

#[test]
fn peer_dying_mid_window_fails_every_pending_call() {
    let (listener, addr) = raw_mc();
    let peer = thread::spawn(move || {
        let mut peer = RawPeer::accept(&listener);
        peer.accept_bind();
        // Answer one submit, take 63 more without answering, then vanish.
        let first = peer.read().unwrap();
        let resp = Body::SubmitSmResp(SubmitSmResp {
            message_id: "1".into(),
            ..Default::default()
        });
        peer.write(Pdu::response(
            first.sequence_number,
            CommandStatus::OK,
            resp,
        ));
        for _ in 0..63 {
            assert_eq!(peer.read().unwrap().command_id(), CommandId::SUBMIT_SM);
        }
    });
    let config = SessionConfig::default().with_max_in_flight(64);
    let (client, _inbound) = connect(addr, BindKind::Transmitter, config);
    let calls: Vec<_> = (0..200)
        .map(|i| {
            let client = client.clone();
            thread::spawn(move || client.submit(submit(&i.to_string(), false)))
        })
        .collect();
    peer.join().unwrap();
    let ok = within(move || {
        let mut ok = 0;
        for call in calls {
            match call.join().unwrap() {
                Ok(_) => ok += 1,
                Err(Error::Closed) => {}
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        ok
    });
    assert_eq!(ok, 1);
    assert_eq!(
        client.closed(),
        CloseReason::Error(SessionError::ConnectionLost)
    );
}

#[test]
fn response_timeout_is_a_typed_error() {
    let (listener, addr) = raw_mc();
    let peer = thread::spawn(move || {
        let mut peer = RawPeer::accept(&listener);
        peer.accept_bind();
        let _ignored = peer.read();
        let nack = peer.read().unwrap();
        peer.write(Pdu::generic_nack(
            nack.sequence_number,
            CommandStatus::SYSTEM_ERROR,
        ));
        peer
    });
    let config = SessionConfig::default().with_response_timeout(Duration::from_millis(200));
    let (client, _inbound) = connect(addr, BindKind::Transmitter, config);
    assert!(matches!(
        client.submit(submit("a", false)),
        Err(Error::Timeout)
    ));
    let nacked = client.submit(submit("b", false));
    assert!(
        matches!(nacked, Err(Error::GenericNack(CommandStatus::SYSTEM_ERROR))),
        "{nacked:?}"
    );
    drop(peer.join().unwrap());
}

#[test]
fn session_init_timeout_and_connection_limit() {
    let session =
        SessionConfig::default().with_session_init_timeout(Some(Duration::from_millis(200)));
    let config = ServerConfig::default()
        .with_session(session)
        .with_max_connections(1);
    let server = Server::bind("127.0.0.1:0", Smsc::default(), config).unwrap();
    let addr = server.local_addr().unwrap();
    thread::spawn(move || server.run());
    let mut first = TcpStream::connect(addr).unwrap();
    thread::sleep(Duration::from_millis(50));
    let mut second = TcpStream::connect(addr).unwrap();
    let mut buf = [0u8; 64];
    // Over the limit: closed at once. Never bound: closed by the session init timer.
    second.set_read_timeout(Some(LIMIT)).unwrap();
    assert_eq!(second.read(&mut buf).unwrap(), 0);
    let started = Instant::now();
    first.set_read_timeout(Some(LIMIT)).unwrap();
    assert_eq!(first.read(&mut buf).unwrap(), 0);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_panicking_handler_answers_system_error() {
    struct Panics;
    impl Handler<Connection> for Panics {
        fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
            Ok(())
        }
        fn submit_sm(&self, _: &Connection, sm: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
            assert!(sm.short_message.as_ref() != b"boom", "handler bug");
            Ok(SubmitSmResp::default())
        }
    }
    let server = Server::bind("127.0.0.1:0", Panics, ServerConfig::default()).unwrap();
    let addr = server.local_addr().unwrap();
    thread::spawn(move || server.run());
    let (client, _inbound) = connect(addr, BindKind::Transmitter, SessionConfig::default());
    let boom = client.submit(submit("boom", false));
    assert!(
        matches!(boom, Err(Error::Status(CommandStatus::SYSTEM_ERROR))),
        "{boom:?}"
    );
    client
        .submit(submit("fine", false))
        .expect("the connection survives");
}

#[test]
fn submits_waiting_behind_an_unbind_fail_as_closed() {
    let gate = Arc::new(Gate::default());
    let smsc = Smsc {
        gate: Some(gate.clone()),
        ..Default::default()
    };
    let (addr, _server, _task) = start(smsc, SessionConfig::default());
    let config = SessionConfig::default().with_max_in_flight(4);
    let (client, _inbound) = connect(addr, BindKind::Transmitter, config);
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let client = client.clone();
            thread::spawn(move || client.submit(submit(&i.to_string(), false)))
        })
        .collect();
    thread::sleep(Duration::from_millis(100)); // 4 in flight, 16 waiting
    let unbinding = thread::spawn({
        let client = client.clone();
        move || client.unbind()
    });
    thread::sleep(Duration::from_millis(100));
    gate.open(); // the 4 answers, then the unbind's
    within(move || unbinding.join().unwrap()).unwrap();
    let (ok, closed) = within(move || {
        let (mut ok, mut closed) = (0, 0);
        for call in calls {
            match call.join().unwrap() {
                Ok(_) => ok += 1,
                Err(Error::Closed) => closed += 1,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        (ok, closed)
    });
    assert_eq!((ok, closed), (4, 16));
}

#[test]
fn timers_fire_while_traffic_keeps_flowing() {
    let (listener, addr) = raw_mc();
    let peer = thread::spawn(move || {
        let mut peer = RawPeer::accept(&listener);
        peer.accept_bind();
        // Answer every submit at once, except the one marked "ignored".
        while let Some(pdu) = peer.read() {
            match &pdu.body {
                Body::SubmitSm(sm) if sm.short_message.as_ref() == b"ignored" => {}
                Body::SubmitSm(_) => {
                    let resp = Body::SubmitSmResp(SubmitSmResp::default());
                    peer.write(Pdu::response(pdu.sequence_number, CommandStatus::OK, resp));
                }
                _ => {
                    assert_eq!(pdu.command_id(), CommandId::UNBIND);
                    let body = Body::default_for(CommandId::UNBIND_RESP).unwrap();
                    peer.write(Pdu::response(pdu.sequence_number, CommandStatus::OK, body));
                    break;
                }
            }
        }
    });
    let config = SessionConfig::default().with_response_timeout(Duration::from_millis(300));
    let (client, _inbound) = connect(addr, BindKind::Transmitter, config);
    // Four threads keep the connection busy (commands and input never stop)...
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy: Vec<_> = (0..4)
        .map(|_| {
            let (client, done) = (client.clone(), done.clone());
            thread::spawn(move || {
                let mut n = 0u64;
                while !done.load(Ordering::SeqCst) {
                    client.submit(submit("busy", false)).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(100));
    // ...while the unanswered one still times out on time.
    let started = Instant::now();
    let ignored = client.submit(submit("ignored", false));
    let took = started.elapsed();
    assert!(matches!(ignored, Err(Error::Timeout)), "{ignored:?}");
    assert!(took < Duration::from_secs(2), "timed out after {took:?}");
    done.store(true, Ordering::SeqCst);
    let answered: u64 = busy.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(answered > 100, "traffic kept flowing: {answered}");
    client.unbind().unwrap();
    peer.join().unwrap();
}
