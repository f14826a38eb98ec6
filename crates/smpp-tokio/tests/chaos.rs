//! Chaos: a fault-injecting proxy between client and server cuts connections at
//! random points, delays, splits writes into single bytes, half-closes, or stops
//! reading. Every request must resolve exactly once (no call hangs), the client
//! must reconnect, and nothing may leak (tasks, file descriptors).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_testkit::{open_fds, pick_cut, pick_stall_or_half_close, ChaosProxy};
use smpp_tokio::{
    Backoff, Client, Connection, Error, Handler, ReconnectingClient, Server, ServerConfig,
};
use tokio::time::{timeout, Instant};

/// Descriptors allowed to linger after the run (a socket or two the OS
/// releases late under load); a leak across 1,000 cuts would be hundreds.
const FD_SLACK: usize = 8;

#[derive(Default)]
struct Smsc {
    accepted: AtomicU64,
}

impl Handler<Connection> for Smsc {
    async fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
        Ok(())
    }

    async fn submit_sm(&self, _: &Connection, _: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        let id = self.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(SubmitSmResp {
            message_id: format!("{id:X}").into(),
            ..Default::default()
        })
    }
}

/// The tests count the process's file descriptors: they run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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

async fn settle<F: Fn() -> bool>(what: &str, ok: F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "{what} did not settle");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `workers` tasks submitting through `rc` until the proxy has cut `cuts`
/// connections; returns (issued, ok, failed). Panics if any call hangs.
async fn hammer(
    rc: &ReconnectingClient,
    proxy: &ChaosProxy,
    cuts: usize,
    workers: usize,
) -> (u64, u64, u64) {
    let issued = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (rc, issued, ok, failed, stop) = (
            rc.clone(),
            issued.clone(),
            ok.clone(),
            failed.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                issued.fetch_add(1, Ordering::Relaxed);
                let picked = match rc.client().await {
                    Ok(c) => c,
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                // A call must resolve: the session's own timers bound it well below this.
                match timeout(Duration::from_secs(15), picked.submit(submit())).await {
                    Ok(Ok(_)) => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(Err(
                        Error::NotConnected | Error::Closed | Error::Timeout | Error::Io(_),
                    )) => failed.fetch_add(1, Ordering::Relaxed),
                    Ok(Err(e)) => panic!("unexpected error under chaos: {e}"),
                    Err(_) => {
                        let cur = Some(picked.clone());
                        let stats = match &cur {
                            Some(c) => {
                                format!("{:?}", timeout(Duration::from_secs(1), c.stats()).await)
                            }
                            None => "none".into(),
                        };
                        panic!(
                            "a submit hung for 15 s; current={} stats={stats}",
                            cur.is_some()
                        )
                    }
                };
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while proxy.cuts() < cuts {
        assert!(
            Instant::now() < deadline,
            "only {} cuts in 120 s",
            proxy.cuts()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("a worker panicked");
    }
    (
        issued.load(Ordering::Relaxed),
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_cuts_mid_window_resolve_every_call_and_reconnect() {
    thousand_cuts(false).await;
}

/// The same through a proxy that blocks both directions while one is blocked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_middlebox_that_blocks_both_ways() {
    thousand_cuts(true).await;
}

async fn thousand_cuts(serial: bool) {
    // The fd count is per process: one chaos run at a time.
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let smsc = Server::bind(
        "127.0.0.1:0",
        Smsc::default(),
        ServerConfig::default().with_session(session()),
    )
    .await
    .unwrap();
    let upstream = smsc.local_addr().unwrap();
    let server = smsc.handle();
    tokio::spawn(smsc.run());
    let proxy = ChaosProxy::start(upstream, 0x5EED_0001, pick_cut, serial);

    let metrics = tokio::runtime::Handle::current().metrics();
    let fds_before = open_fds();
    let tasks_before = metrics.num_alive_tasks();

    let addr = proxy.addr();
    let bind = Bind {
        system_id: "esme".into(),
        password: "secret".into(),
        ..Default::default()
    };
    let connect = move || Client::connect(addr, BindKind::Transceiver, bind.clone(), session());
    let backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(20));
    let (rc, _inbound) = ReconnectingClient::new(connect, backoff, Duration::from_secs(2));

    let (issued, ok, failed) = hammer(&rc, &proxy, 1000, 64).await;
    assert_eq!(issued, ok + failed, "every call resolved exactly once");
    assert!(ok > 0, "some submits got through the chaos");

    // The chaos ends: the client reconnects and works.
    proxy.calm();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match rc.submit(submit()).await {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("no reconnect after the chaos: {e}"),
        }
    }
    eprintln!(
        "chaos: {} cuts, {issued} calls: {ok} ok, {failed} failed",
        proxy.cuts(),
    );

    // Nothing leaks: once the client is gone, tasks and fds return to where they were.
    rc.close().await;
    drop(rc);
    drop(_inbound);
    settle("server connections", || server.connections().is_empty()).await;
    drop(proxy);
    settle("file descriptors", || open_fds() <= fds_before + FD_SLACK).await;
    settle("tasks", || metrics.num_alive_tasks() <= tasks_before + 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalls_and_half_closes_are_detected_and_every_call_resolves() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let smsc = Server::bind(
        "127.0.0.1:0",
        Smsc::default(),
        ServerConfig::default().with_session(session()),
    )
    .await
    .unwrap();
    let upstream = smsc.local_addr().unwrap();
    let server = smsc.handle();
    tokio::spawn(smsc.run());
    // Count "cuts" as connections the proxy started to misbehave on and that ended.
    let proxy = ChaosProxy::start(upstream, 0x5EED_0002, pick_stall_or_half_close, false);
    let addr = proxy.addr();
    let bind = Bind {
        system_id: "esme".into(),
        password: "secret".into(),
        ..Default::default()
    };
    let connect = move || Client::connect(addr, BindKind::Transceiver, bind.clone(), session());
    let backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(20));
    let (rc, _inbound) = ReconnectingClient::new(connect, backoff, Duration::from_secs(2));

    // A stalled or half-closed link is noticed by the keepalive or the peer's
    // EOF; track reconnects by the server's accepted connections instead of
    // proxy cuts here.
    let reconnects = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (server, reconnects) = (server.clone(), reconnects.clone());
        tokio::spawn(async move {
            let mut seen = std::collections::HashSet::new();
            loop {
                for c in server.connections() {
                    if seen.insert(c.id()) {
                        reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let issued = Arc::new(AtomicU64::new(0));
    let resolved = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (rc, issued, resolved) = (rc.clone(), issued.clone(), resolved.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..60 {
                issued.fetch_add(1, Ordering::Relaxed);
                let r = timeout(Duration::from_secs(15), rc.submit(submit())).await;
                assert!(r.is_ok(), "a submit hung for 15 s");
                resolved.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        timeout(Duration::from_secs(120), t)
            .await
            .expect("workers finish")
            .expect("no worker panicked");
    }
    watcher.abort();
    assert_eq!(
        issued.load(Ordering::Relaxed),
        resolved.load(Ordering::Relaxed)
    );
    assert!(
        reconnects.load(Ordering::Relaxed) >= 3,
        "the faults forced reconnects: {}",
        reconnects.load(Ordering::Relaxed)
    );
}
