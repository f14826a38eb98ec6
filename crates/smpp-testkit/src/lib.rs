//! Test helpers shared by the adapters' test suites (not published).
//!
//! The adapter conformance suite: the client and server behaviour tests
//! (binds, submit, windows, receipts, outbind, reconnect, pool, TLS, chaos,
//! shutdown) written once in [`suite`], over the traits of [`adapter`],
//! and run for each adapter of [`adapters`] (tokio, smol, async-std,
//! blocking) by [`conformance_suite!`] in that adapter's test target.
//!
//! [`ChaosProxy`] sits between a client and a server on loopback and breaks
//! connections on purpose: cuts at random byte offsets, writes split into
//! single bytes, delays, half-closes, stalls (stops reading), or a serial
//! middlebox that blocks both directions while one is blocked.

pub mod adapter;
pub mod adapters;
mod offload;
pub mod raw;
mod smsc;
pub mod suite;

pub use smsc::{Gate, Smsc};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Threads of this process now (from `/proc/self/status`).
pub fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// What the proxy does to one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
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
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A fault-injecting TCP proxy on 127.0.0.1, running on its own runtime (one
/// worker thread), so tests of any adapter (tokio, smol, async-std, threads)
/// can put it between their client and server.
#[derive(Debug)]
pub struct ChaosProxy {
    addr: SocketAddr,
    cuts: Arc<AtomicUsize>,
    calm: Arc<AtomicBool>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl ChaosProxy {
    /// Listens on a free loopback port and forwards each connection to
    /// `upstream`, applying the fault `pick` chooses for it (from a generator
    /// seeded with `seed`: runs are reproducible). With `serial`, each
    /// connection is served by [`serial_pipe`] instead of [`pipe`].
    pub fn start(
        upstream: SocketAddr,
        seed: u64,
        pick: fn(&mut Rng) -> Fault,
        serial: bool,
    ) -> ChaosProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("chaos-proxy")
            .enable_all()
            .build()
            .expect("a runtime for the chaos proxy");
        // No `block_on`: the caller may itself run inside a runtime.
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a loopback port for the chaos proxy");
        std_listener.set_nonblocking(true).expect("non-blocking");
        let addr = std_listener.local_addr().expect("its address");
        let listener = {
            let _in_runtime = runtime.enter();
            TcpListener::from_std(std_listener).expect("a tokio listener")
        };
        let cuts = Arc::new(AtomicUsize::new(0));
        let calm = Arc::new(AtomicBool::new(false));
        let (c, q) = (cuts.clone(), calm.clone());
        runtime.spawn(async move {
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
                let (cuts, seed) = (c.clone(), rng.next_u64());
                if serial {
                    tokio::spawn(serial_pipe(client, server, fault, cuts, seed));
                } else {
                    tokio::spawn(pipe(client, server, fault, cuts, seed));
                }
            }
        });
        ChaosProxy {
            addr,
            cuts,
            calm,
            runtime: Some(runtime),
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections the proxy broke on purpose so far.
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::Relaxed)
    }

    /// From now on, new connections pass through untouched.
    pub fn calm(&self) {
        self.calm.store(true, Ordering::SeqCst);
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        // Closes the listener and every proxied connection at once.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Moves bytes both ways (one task per direction, so a blocked direction never
/// blocks the other), applying `fault`; ends when the client goes away or the fault cuts.
pub async fn pipe(
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

/// Both directions served from one loop and one byte budget. While it is blocked writing one way it reads nothing the
/// other way, like a stuck middlebox, and calls on the adapter then hang.
pub async fn serial_pipe(
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

/// File descriptors open in this process now.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Cuts: anywhere from inside the bind to deep inside a full window, some
/// trickling one byte at a time, some delayed.
pub fn pick_cut(rng: &mut Rng) -> Fault {
    // Cut anywhere from inside the bind to deep inside a full window.
    let at = rng.below(6000) as usize;
    match rng.below(3) {
        0 => Fault::CutAfter(at),
        1 => Fault::TrickleCutAfter(at.min(600)),
        _ => Fault::DelayCutAfter(at),
    }
}

/// After some traffic, either stop reading from the server (a slow consumer)
/// or half-close towards it.
pub fn pick_stall_or_half_close(rng: &mut Rng) -> Fault {
    let at = 200 + rng.below(4000) as usize;
    if rng.below(2) == 0 {
        Fault::StallAfter(at)
    } else {
        Fault::HalfCloseAfter(at)
    }
}
