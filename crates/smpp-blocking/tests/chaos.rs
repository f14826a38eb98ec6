//! Chaos: the fault-injecting proxy of `smpp-testkit` between the blocking
//! client and server cuts 1,000 connections mid-window (some trickled one byte
//! at a time, some delayed), then stalls and half-closes others. Every call
//! must return (none hangs), the client must reconnect, and threads and file
//! descriptors must come back to where they were.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use smpp_blocking::{
    Backoff, Client, Connection, Error, Handler, ReconnectingClient, Server, ServerConfig,
};
use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_testkit::{open_fds, pick_cut, pick_stall_or_half_close, threads, ChaosProxy};

/// Descriptors allowed to linger after the run (a socket or two the OS
/// releases late under load); a leak across 1,000 cuts would be hundreds.
const FD_SLACK: usize = 8;

/// The tests count the process's threads and descriptors: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Smsc(AtomicU64);

impl Handler<Connection> for Smsc {
    fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
        Ok(())
    }

    fn submit_sm(&self, _: &Connection, _: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        let id = self.0.fetch_add(1, Ordering::Relaxed);
        Ok(SubmitSmResp {
            message_id: format!("{id:X}").into(),
            ..Default::default()
        })
    }
}

fn session() -> SessionConfig {
    SessionConfig::default()
        .with_max_in_flight(64)
        .with_response_timeout(Duration::from_secs(2))
        .with_enquire_link_interval(Some(Duration::from_millis(500)))
        .with_enquire_link_timeout(Duration::from_millis(500))
}

fn submit() -> SubmitSm {
    SubmitSm {
        source_addr: "447700900123".into(),
        destination_addr: "447700900456".into(),
        short_message: vec![b'x'; 160].into(),
        ..Default::default()
    }
}

fn settle(what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "{what} did not settle");
        thread::sleep(Duration::from_millis(20));
    }
}

fn start_server() -> (SocketAddr, smpp_blocking::ServerHandle) {
    let config = ServerConfig::default().with_session(session());
    let server = Server::bind("127.0.0.1:0", Smsc(AtomicU64::new(0)), config).unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    thread::spawn(move || server.run());
    (addr, handle)
}

fn reconnecting(proxy: &ChaosProxy) -> ReconnectingClient {
    let addr = proxy.addr();
    let connect = move || {
        let bind = Bind {
            system_id: "esme".into(),
            password: "secret".into(),
            ..Default::default()
        };
        Client::connect(addr, BindKind::Transceiver, bind, session())
    };
    let backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(20));
    let (rc, inbound) = ReconnectingClient::new(connect, backoff, Duration::from_secs(2));
    drop(inbound); // peer requests are answered with status 0
    rc
}

/// `workers` threads submit until `stop` says so; returns (issued, ok, failed).
/// A call that does not return within 15 s fails the test.
fn hammer(rc: &ReconnectingClient, workers: usize, stop: impl Fn() -> bool) -> (u64, u64, u64) {
    let issued = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (rc, issued, ok, failed, done) = (
            rc.clone(),
            issued.clone(),
            ok.clone(),
            failed.clone(),
            done.clone(),
        );
        handles.push(thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                issued.fetch_add(1, Ordering::Relaxed);
                let started = Instant::now();
                let result = rc.submit(submit());
                assert!(
                    started.elapsed() < Duration::from_secs(15),
                    "a submit took 15 s"
                );
                match result {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(Error::NotConnected | Error::Closed | Error::Timeout | Error::Io(_)) => {
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(e) => panic!("unexpected error under chaos: {e}"),
                };
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stop() {
        assert!(
            Instant::now() < deadline,
            "the chaos did not finish in 120 s"
        );
        thread::sleep(Duration::from_millis(10));
    }
    done.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("a worker panicked");
    }
    (
        issued.load(Ordering::Relaxed),
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    )
}

#[test]
fn a_thousand_cuts_mid_window_resolve_every_call_and_reconnect() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (upstream, server) = start_server();
    let fds_before = open_fds();
    let threads_before = threads();
    let proxy = ChaosProxy::start(upstream, 0x5EED_0101, pick_cut, false);
    let rc = reconnecting(&proxy);

    let (issued, ok, failed) = hammer(&rc, 16, || proxy.cuts() >= 1000);
    assert_eq!(issued, ok + failed, "every call returned exactly once");
    assert!(ok > 0, "some submits got through the chaos");

    proxy.calm();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = rc.submit(submit()) {
        assert!(
            Instant::now() < deadline,
            "no reconnect after the chaos: {e}"
        );
        thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "chaos (blocking): {} cuts, {issued} calls: {ok} ok, {failed} failed",
        proxy.cuts()
    );

    rc.close();
    drop(rc);
    drop(proxy);
    settle("server connections", || server.connections().is_empty());
    // The proxy's own runtime threads are gone too.
    settle("threads", || threads() <= threads_before);
    settle("file descriptors", || open_fds() <= fds_before + FD_SLACK);
}

#[test]
fn stalls_and_half_closes_are_detected_and_every_call_returns() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (upstream, server) = start_server();
    let proxy = ChaosProxy::start(upstream, 0x5EED_0102, pick_stall_or_half_close, false);
    let rc = reconnecting(&proxy);
    let seen = Arc::new(Mutex::new(std::collections::HashSet::new()));
    let watcher_stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (seen, stop, server) = (seen.clone(), watcher_stop.clone(), server.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for c in server.connections() {
                    seen.lock().unwrap().insert(c.id());
                }
                thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let started = Instant::now();
    let (issued, ok, failed) = hammer(&rc, 16, || started.elapsed() > Duration::from_secs(6));
    watcher_stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    assert_eq!(issued, ok + failed);
    let sessions = seen.lock().unwrap().len();
    assert!(
        sessions >= 3,
        "the faults forced reconnects: {sessions} sessions"
    );
}
