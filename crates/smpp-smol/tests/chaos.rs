//! Chaos: the fault-injecting proxy of `smpp-testkit` between the smol client
//! and server cuts 1,000 connections mid-window (some trickled one byte at a
//! time, some delayed), then stalls and half-closes others. Every call must
//! resolve (none hangs), the client must reconnect, and threads and file
//! descriptors must come back to where they were. Each test runs on smol and
//! on async-std.

#[macro_use]
mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{sleep, timeout, Rt};
use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_smol::{
    Backoff, Client, Connection, Error, Handler, Inbound, ReconnectingClient, Server, ServerConfig,
    ServerHandle,
};
use smpp_testkit::{open_fds, pick_cut, pick_stall_or_half_close, ChaosProxy};

/// Descriptors allowed to linger after the run (a socket or two the OS
/// releases late under load); a leak across 1,000 cuts would be hundreds.
const FD_SLACK: usize = 8;

/// The tests count the process's descriptors: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Smsc(AtomicU64);

impl Handler<Connection> for Smsc {
    async fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
        Ok(())
    }

    async fn submit_sm(&self, _: &Connection, _: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
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

async fn settle(what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "{what} did not settle");
        sleep(Duration::from_millis(20)).await;
    }
}

async fn start_server(rt: Rt) -> (SocketAddr, ServerHandle, common::Join<()>) {
    let config = ServerConfig::default().with_session(session());
    let server = Server::bind("127.0.0.1:0", Smsc(AtomicU64::new(0)), config)
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    // Keep the task: smol cancels a task whose handle is dropped.
    let task = rt.spawn(async move {
        let _ = server.run().await;
    });
    (addr, handle, task)
}

type Connecting =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(Client, Inbound), Error>> + Send>>;

fn reconnecting(proxy: &ChaosProxy) -> ReconnectingClient {
    let addr = proxy.addr();
    let connect = move || -> Connecting {
        let bind = Bind {
            system_id: "esme".into(),
            password: "secret".into(),
            ..Default::default()
        };
        Box::pin(Client::connect(
            addr,
            BindKind::Transceiver,
            bind,
            session(),
        ))
    };
    let backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(20));
    let (rc, inbound) = ReconnectingClient::new(connect, backoff, Duration::from_secs(2));
    drop(inbound); // peer requests are answered with status 0
    rc
}

/// `workers` tasks submit until `stop` says so; returns (issued, ok, failed).
/// A call that does not resolve within 15 s fails the test.
async fn hammer(
    rt: Rt,
    rc: &ReconnectingClient,
    workers: usize,
    stop: impl Fn() -> bool,
) -> (u64, u64, u64) {
    let issued = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (rc, issued, ok, failed, done) = (
            rc.clone(),
            issued.clone(),
            ok.clone(),
            failed.clone(),
            done.clone(),
        );
        tasks.push(rt.spawn(async move {
            while !done.load(Ordering::Relaxed) {
                issued.fetch_add(1, Ordering::Relaxed);
                match timeout(Duration::from_secs(15), rc.submit(submit())).await {
                    Some(Ok(_)) => ok.fetch_add(1, Ordering::Relaxed),
                    Some(Err(
                        Error::NotConnected | Error::Closed | Error::Timeout | Error::Io(_),
                    )) => failed.fetch_add(1, Ordering::Relaxed),
                    Some(Err(e)) => panic!("unexpected error under chaos: {e}"),
                    None => panic!("a submit hung for 15 s"),
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
        sleep(Duration::from_millis(10)).await;
    }
    done.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await;
    }
    (
        issued.load(Ordering::Relaxed),
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    )
}

// The guard only serializes whole tests, each on its own `block_on` thread.
#[allow(clippy::await_holding_lock)]
async fn a_thousand_cuts(rt: Rt) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (upstream, server, _serving) = start_server(rt).await;
    let fds_before = open_fds();
    let proxy = ChaosProxy::start(upstream, 0x5EED_0201, pick_cut, false);
    let rc = reconnecting(&proxy);

    let (issued, ok, failed) = hammer(rt, &rc, 32, || proxy.cuts() >= 1000).await;
    assert_eq!(issued, ok + failed, "every call resolved exactly once");
    assert!(ok > 0, "some submits got through the chaos");

    proxy.calm();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = rc.submit(submit()).await {
        assert!(
            Instant::now() < deadline,
            "no reconnect after the chaos: {e}"
        );
        sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "chaos ({rt:?}): {} cuts, {issued} calls: {ok} ok, {failed} failed",
        proxy.cuts()
    );

    rc.close().await;
    drop(rc);
    drop(proxy);
    settle("server connections", || server.connections().is_empty()).await;
    settle("file descriptors", || open_fds() <= fds_before + FD_SLACK).await;
}

// The guard only serializes whole tests, each on its own `block_on` thread.
#[allow(clippy::await_holding_lock)]
async fn stalls_and_half_closes(rt: Rt) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (upstream, server, _serving) = start_server(rt).await;
    let proxy = ChaosProxy::start(upstream, 0x5EED_0202, pick_stall_or_half_close, false);
    let rc = reconnecting(&proxy);
    let seen = Arc::new(Mutex::new(std::collections::HashSet::new()));
    let started = Instant::now();
    let watch = {
        let (seen, server) = (seen.clone(), server.clone());
        move || {
            for c in server.connections() {
                seen.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(c.id());
            }
            started.elapsed() > Duration::from_secs(6)
        }
    };
    let (issued, ok, failed) = hammer(rt, &rc, 16, watch).await;
    assert_eq!(issued, ok + failed);
    let sessions = seen.lock().unwrap_or_else(|e| e.into_inner()).len();
    assert!(
        sessions >= 3,
        "the faults forced reconnects: {sessions} sessions"
    );
}

on_both!(a_thousand_cuts, stalls_and_half_closes);
