//! End-to-end throughput: tokio client -> tokio server over loopback.
//!
//! `cargo bench -p smpp-tokio --bench throughput -- [--binds N] [--window W] [--secs S] [--sweep]`
//! (also `--threads T`, `--event-interval N`: tokio runtime settings)
//!
//! Each bind has `window` tasks submitting 160-octet `submit_sm`s in a loop, so
//! the window stays full. Prints submit_sm/s and the latency of each call
//! (from the call to its message id). `--sweep` runs windows
//! 1..=4096 briefly to show that none hangs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{Client, Connection, Handler, Server, ServerConfig};

struct Smsc {
    next: AtomicU64,
}

impl Handler<Connection> for Smsc {
    async fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
        Ok(())
    }

    async fn submit_sm(&self, _: &Connection, _: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        Ok(SubmitSmResp {
            message_id: format!("{id:08X}").into(),
            ..Default::default()
        })
    }
}

/// submit_sm/s and latency percentiles (p50, p99, max) in µs.
async fn run(binds: usize, window: usize, secs: f64) -> (f64, [f64; 3]) {
    let session = SessionConfig::default()
        .with_max_in_flight(window)
        .with_max_inbound(window.max(64));
    let config = ServerConfig::default().with_session(session.clone());
    let server = Server::bind(
        "127.0.0.1:0",
        Smsc {
            next: AtomicU64::new(0),
        },
        config,
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let server_task = tokio::spawn(server.run());
    let sm = SubmitSm {
        source_addr: "447700900123".into(),
        destination_addr: "447700900456".into(),
        short_message: vec![b'x'; 160].into(),
        ..Default::default()
    };
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    let mut tasks = Vec::new();
    let stop = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    for _ in 0..binds {
        let bind = Bind {
            system_id: "bench".into(),
            password: "x".into(),
            ..Default::default()
        };
        let (client, _inbound) =
            Client::connect(addr, BindKind::Transmitter, bind, session.clone())
                .await
                .unwrap();
        for _ in 0..window {
            let (client, sm, latencies) = (client.clone(), sm.clone(), latencies.clone());
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::with_capacity(1 << 16);
                let mut sent = Instant::now();
                while sent < stop {
                    client.submit(sm.clone()).await.unwrap();
                    let now = Instant::now();
                    mine.push((now - sent).as_micros() as u32);
                    sent = now;
                }
                latencies.lock().unwrap().extend(mine);
            }));
        }
        clients.push(client);
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs_f64(secs + 30.0), t)
            .await
            .expect("no hang")
            .unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    for c in clients {
        c.unbind().await.unwrap();
    }
    handle.shutdown();
    server_task.await.unwrap().unwrap();
    let mut all = std::mem::take(&mut *latencies.lock().unwrap());
    all.sort_unstable();
    let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize] as f64;
    (all.len() as f64 / elapsed, [at(0.5), at(0.99), at(1.0)])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: f64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(arg("--threads", 2.0) as usize)
        .event_interval(arg("--event-interval", 61.0) as u32)
        .enable_all()
        .build()
        .unwrap();
    if args.iter().any(|a| a == "--sweep") {
        for window in [1, 2, 8, 64, 256, 1024, 4096] {
            let (rate, [p50, p99, max]) = rt.block_on(run(1, window, 0.5));
            println!(
                "sweep binds=1 window={window:5}: {rate:>8.0} submit_sm/s  \
                 latency p50 {p50:.0} µs, p99 {p99:.0} µs, max {max:.0} µs"
            );
        }
        return;
    }
    let (binds, window, secs) = (
        arg("--binds", 1.0) as usize,
        arg("--window", 64.0) as usize,
        arg("--secs", 3.0),
    );
    let (rate, [p50, p99, max]) = rt.block_on(run(binds, window, secs));
    println!(
        "binds={binds} window={window} secs={secs}: {rate:.0} submit_sm/s, \
         latency p50 {p50:.0} µs, p99 {p99:.0} µs, max {max:.0} µs"
    );
}
