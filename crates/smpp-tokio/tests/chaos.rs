//! Chaos: a fault-injecting proxy between client and server cuts connections at
//! random points, delays, splits writes into single bytes, half-closes, or stops
//! reading. Every request must resolve exactly once (no call hangs), the client
//! must reconnect, and nothing may leak (tasks, file descriptors).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{
    Backoff, Client, Connection, Error, Handler, ReconnectingClient, Server, ServerConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, Instant};

#[derive(Default)]
struct Smsc {
    accepted: AtomicU64,
}

impl Handler for Smsc {
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

/// What the proxy does to one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Pass everything through.
    None,
    /// Drop both sides after this many bytes (both directions together).
    CutAfter(usize),
    /// Like `CutAfter`, writing one byte at a time.
    TrickleCutAfter(usize),
    /// Like `CutAfter`, each chunk delayed by up to 2 ms.
    DelayCutAfter(usize),
    /// After this many bytes, shut down the write half towards the server
    /// (it sees EOF) and keep the rest open.
    HalfCloseAfter(usize),
    /// After this many bytes, stop reading from the server (a slow consumer).
    StallAfter(usize),
}

/// A tiny deterministic generator (xorshift64*): reproducible runs, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Proxy {
    addr: SocketAddr,
    /// Connections the proxy broke on purpose.
    cuts: Arc<AtomicUsize>,
    /// When set, new connections pass through untouched.
    calm: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(
        upstream: SocketAddr,
        seed: u64,
        pick: fn(&mut Rng) -> Fault,
        serial: bool,
    ) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cuts = Arc::new(AtomicUsize::new(0));
        let calm = Arc::new(AtomicBool::new(false));
        let (c, q) = (cuts.clone(), calm.clone());
        let task = tokio::spawn(async move {
            let mut rng = Rng(seed | 1);
            while let Ok((client, _)) = listener.accept().await {
                let fault = if q.load(Ordering::SeqCst) {
                    Fault::None
                } else {
                    pick(&mut rng)
                };
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (cuts, seed) = (c.clone(), rng.next());
                if serial {
                    tokio::spawn(old_pipe(client, server, fault, cuts, seed));
                } else {
                    tokio::spawn(pipe(client, server, fault, cuts, seed));
                }
            }
        });
        Proxy {
            addr,
            cuts,
            calm,
            task,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Moves bytes both ways (one task per direction, so a blocked direction never
/// blocks the other), applying `fault`; ends when the client goes away or the fault cuts.
async fn pipe(
    client: TcpStream,
    server: TcpStream,
    fault: Fault,
    cuts: Arc<AtomicUsize>,
    seed: u64,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let moved = Arc::new(AtomicUsize::new(0));
    let (end_tx, end_rx) = tokio::sync::watch::channel(false);
    let end_tx = Arc::new(end_tx);
    let up = one_way(
        cr,
        sw,
        true,
        fault,
        moved.clone(),
        end_tx.clone(),
        end_rx.clone(),
        seed,
    );
    let down = one_way(sr, cw, false, fault, moved, end_tx, end_rx, seed ^ 0xD0);
    let (cut_up, cut_down) = tokio::join!(up, down);
    if cut_up || cut_down {
        cuts.fetch_add(1, Ordering::Relaxed);
    }
}

/// One direction. Returns true when the fault cut the connection.
#[allow(clippy::too_many_arguments)]
async fn one_way(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    up: bool,
    fault: Fault,
    moved: Arc<AtomicUsize>,
    end_tx: Arc<tokio::sync::watch::Sender<bool>>,
    mut end_rx: tokio::sync::watch::Receiver<bool>,
    seed: u64,
) -> bool {
    let budget = match fault {
        Fault::None => usize::MAX,
        Fault::CutAfter(n) | Fault::TrickleCutAfter(n) | Fault::DelayCutAfter(n) => n,
        // These faults act on one direction only; the other flows freely.
        Fault::HalfCloseAfter(n) if up => n,
        Fault::StallAfter(n) if !up => n,
        Fault::HalfCloseAfter(_) | Fault::StallAfter(_) => usize::MAX,
    };
    let mut rng = Rng(seed | 1);
    let mut buf = [0u8; 8192];
    let mut open = true; // false once half-closed: read and discard
    loop {
        let before = moved.load(Ordering::Relaxed);
        if open && before >= budget {
            match fault {
                Fault::HalfCloseAfter(_) => {
                    let _ = w.shutdown().await;
                    open = false;
                }
                Fault::StallAfter(_) => {
                    // Stop reading (a slow consumer) until the pipe ends.
                    let _ = tokio::time::timeout(Duration::from_secs(30), end_rx.changed()).await;
                    return false;
                }
                _ => {
                    end_tx.send_replace(true);
                    return true; // dropping the halves closes both sockets
                }
            }
        }
        tokio::select! {
            read = r.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    let _ = w.shutdown().await;
                    if up {
                        end_tx.send_replace(true); // the client went away: end the pipe
                    }
                    return false;
                }
                Ok(_) if !open => {}
                Ok(n) => {
                    let n = n.min(budget.saturating_sub(before)).max(1);
                    if forward(&mut w, &buf[..n], fault, &mut rng).await.is_err() {
                        end_tx.send_replace(true);
                        return false;
                    }
                    moved.fetch_add(n, Ordering::Relaxed);
                }
            },
            _ = end_rx.changed() => return false,
        }
    }
}

/// The first version of this proxy: both directions served from one loop and
/// one byte budget. While it is blocked writing one way it reads nothing the
/// other way, like a stuck middlebox, and calls on the adapter then hang.
async fn old_pipe(
    client: TcpStream,
    server: TcpStream,
    fault: Fault,
    cuts: Arc<AtomicUsize>,
    seed: u64,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let budget = match fault {
        Fault::None => usize::MAX,
        Fault::CutAfter(n)
        | Fault::TrickleCutAfter(n)
        | Fault::DelayCutAfter(n)
        | Fault::HalfCloseAfter(n)
        | Fault::StallAfter(n) => n,
    };
    let mut moved = 0usize;
    let mut rng = Rng(seed | 1);
    let mut up = [0u8; 8192];
    let mut down = [0u8; 8192];
    loop {
        if moved >= budget {
            cuts.fetch_add(1, Ordering::Relaxed);
            return;
        }
        tokio::select! {
            r = cr.read(&mut up) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let n = n.min(budget - moved).max(1);
                    if forward(&mut sw, &up[..n], fault, &mut rng).await.is_err() { return; }
                    moved += n;
                }
            },
            r = sr.read(&mut down) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let n = n.min(budget - moved).max(1);
                    if forward(&mut cw, &down[..n], fault, &mut rng).await.is_err() { return; }
                    moved += n;
                }
            },
        }
    }
}

async fn forward(
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    data: &[u8],
    fault: Fault,
    rng: &mut Rng,
) -> std::io::Result<()> {
    match fault {
        Fault::TrickleCutAfter(_) => {
            for b in data {
                w.write_all(std::slice::from_ref(b)).await?;
            }
            Ok(())
        }
        Fault::DelayCutAfter(_) => {
            tokio::time::sleep(Duration::from_micros(rng.below(2000))).await;
            w.write_all(data).await
        }
        _ => w.write_all(data).await,
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

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

async fn settle<F: Fn() -> bool>(what: &str, ok: F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "{what} did not settle");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `workers` tasks submitting through `rc` until the proxy has cut `cuts`
/// connections; returns (issued, ok, failed). Panics if any call hangs.
async fn hammer(
    rc: &ReconnectingClient,
    proxy: &Proxy,
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
    while proxy.cuts.load(Ordering::Relaxed) < cuts {
        assert!(
            Instant::now() < deadline,
            "only {} cuts in 120 s",
            proxy.cuts.load(Ordering::Relaxed)
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

fn pick_cut(rng: &mut Rng) -> Fault {
    // Cut anywhere from inside the bind to deep inside a full window.
    let at = rng.below(6000) as usize;
    match rng.below(3) {
        0 => Fault::CutAfter(at),
        1 => Fault::TrickleCutAfter(at.min(600)),
        _ => Fault::DelayCutAfter(at),
    }
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
    let proxy = Proxy::start(upstream, 0x5EED_0001, pick_cut, serial).await;

    let metrics = tokio::runtime::Handle::current().metrics();
    let fds_before = open_fds();
    let tasks_before = metrics.num_alive_tasks();

    let addr = proxy.addr;
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
    proxy.calm.store(true, Ordering::SeqCst);
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
        proxy.cuts.load(Ordering::Relaxed),
    );

    // Nothing leaks: once the client is gone, tasks and fds return to where they were.
    rc.close().await;
    drop(rc);
    drop(_inbound);
    settle("server connections", || server.connections().is_empty()).await;
    drop(proxy);
    settle("file descriptors", || open_fds() <= fds_before + 2).await;
    settle("tasks", || metrics.num_alive_tasks() <= tasks_before + 2).await;
}

fn pick_stall_or_half_close(rng: &mut Rng) -> Fault {
    let at = 200 + rng.below(4000) as usize;
    if rng.below(2) == 0 {
        Fault::StallAfter(at)
    } else {
        Fault::HalfCloseAfter(at)
    }
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
    let proxy = Proxy::start(upstream, 0x5EED_0002, pick_stall_or_half_close, false).await;
    let addr = proxy.addr;
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
