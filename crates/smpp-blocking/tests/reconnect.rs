//! The reconnecting client over 127.0.0.1: backoff, server restarts, no server.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use smpp_blocking::{
    Backoff, Client, Connection, Error, Handler, ReconnectingClient, Server, ServerConfig,
    ServerHandle,
};
use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, SessionConfig};

const LIMIT: Duration = Duration::from_secs(5);

/// Accepts `esme`/`secret`, counts submits (shared across restarts).
struct Smsc(Arc<AtomicU64>);

impl Handler<Connection> for Smsc {
    fn bind(&self, _: &Connection, _: BindKind, bind: &Bind) -> Result<(), CommandStatus> {
        if bind.password == "secret" {
            Ok(())
        } else {
            Err(CommandStatus::INVALID_PASSWORD)
        }
    }

    fn submit_sm(&self, conn: &Connection, sm: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        if sm.short_message.as_ref() == b"drop" {
            conn.close(); // the connection dies with this submit in flight
        }
        let id = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(SubmitSmResp {
            message_id: format!("{id:X}").into(),
            ..Default::default()
        })
    }
}

fn start(addr: SocketAddr, count: &Arc<AtomicU64>) -> (ServerHandle, JoinHandle<()>) {
    let server = Server::bind(addr, Smsc(Arc::clone(count)), ServerConfig::default()).unwrap();
    let handle = server.handle();
    let task = thread::spawn(move || server.run().unwrap());
    (handle, task)
}

fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn connector(addr: SocketAddr) -> impl FnMut() -> Result<(Client, smpp_blocking::Inbound), Error> {
    move || {
        let bind = Bind {
            system_id: "esme".into(),
            password: "secret".into(),
            ..Default::default()
        };
        let config = SessionConfig::default().with_response_timeout(Duration::from_secs(1));
        Client::connect(addr, BindKind::Transceiver, bind, config)
    }
}

fn submit(text: &str) -> SubmitSm {
    SubmitSm {
        source_addr: "447700900123".into(),
        destination_addr: "447700900456".into(),
        short_message: text.to_owned().into_bytes().into(),
        ..Default::default()
    }
}

#[test]
fn backoff_grows_to_its_cap_with_jitter() {
    let exact =
        Backoff::new(Duration::from_millis(10), Duration::from_millis(100)).with_jitter(0.0);
    let delays: Vec<_> = (0..6).map(|a| exact.delay(a).as_millis()).collect();
    assert_eq!(delays, [10, 20, 40, 80, 100, 100]);
    assert_eq!(exact.delay(u32::MAX), Duration::from_millis(100));

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

#[test]
fn reconnects_after_the_server_restarts_on_the_same_port() {
    let addr = free_addr();
    let count = Arc::new(AtomicU64::new(0));
    let (server, task) = start(addr, &count);
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
    let (client, _inbound) = ReconnectingClient::new(connector(addr), backoff, LIMIT);
    for i in 0..3 {
        client
            .submit(submit(&format!("before {i}")))
            .expect("bound");
    }
    assert!(client.is_connected());

    server.shutdown(); // unbinds us, then stops listening
    task.join().unwrap();
    let started = Instant::now();
    while client.is_connected() {
        assert!(started.elapsed() < LIMIT, "noticed the unbind");
        thread::sleep(Duration::from_millis(5));
    }
    // While down, a short wait fails with NotConnected.
    let (down, _) = ReconnectingClient::new(
        connector(addr),
        Backoff::new(Duration::from_millis(10), Duration::from_millis(50)),
        Duration::from_millis(100),
    );
    assert!(matches!(
        down.submit(submit("down")),
        Err(Error::NotConnected)
    ));
    drop(down);

    // A call made while down succeeds once the server is back within `wait`.
    let waiting = {
        let client = client.clone();
        thread::spawn(move || client.submit(submit("while down")))
    };
    thread::sleep(Duration::from_millis(100));
    let (server, task) = start(addr, &count);
    waiting.join().unwrap().expect("reconnected within wait");
    for i in 0..3 {
        client
            .submit(submit(&format!("after {i}")))
            .expect("rebound");
    }
    assert_eq!(count.load(Ordering::SeqCst), 7);

    client.close();
    assert!(!client.is_connected());
    assert!(matches!(
        client.submit(submit("closed")),
        Err(Error::NotConnected)
    ));
    server.shutdown();
    task.join().unwrap();
}

#[test]
fn without_a_server_calls_are_not_connected_after_wait() {
    let addr = free_addr();
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(50));
    let wait = Duration::from_millis(200);
    let (client, _inbound) = ReconnectingClient::new(connector(addr), backoff, wait);
    let started = Instant::now();
    assert!(matches!(
        client.submit(submit("x")),
        Err(Error::NotConnected)
    ));
    let took = started.elapsed();
    assert!(took >= wait && took < LIMIT, "{took:?}");
    assert!(!client.is_connected());
}

#[test]
fn a_request_in_flight_when_the_connection_dies_is_not_resent() {
    let addr = free_addr();
    let count = Arc::new(AtomicU64::new(0));
    let (server, task) = start(addr, &count);
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
    let (client, _inbound) = ReconnectingClient::new(connector(addr), backoff, LIMIT);
    client.submit(submit("first")).expect("bound");
    let lost = client.submit(submit("drop"));
    assert!(lost.is_err(), "{lost:?}");
    assert!(!matches!(lost, Err(Error::NotConnected)), "{lost:?}");
    // A call made before the client notices the death may still land on the
    // dead session and fail with Closed (nothing reaches the MC): retry it.
    let started = Instant::now();
    loop {
        match client.submit(submit("next")) {
            Ok(_) => break,
            Err(Error::Closed) if started.elapsed() < LIMIT => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("reconnected: {e}"),
        }
    }
    // "drop" reached the MC once, and only once.
    assert_eq!(count.load(Ordering::SeqCst), 3);
    client.close();
    server.shutdown();
    task.join().unwrap();
}
