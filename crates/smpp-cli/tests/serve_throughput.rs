//! A throughput measurement, not a test: ignored by default, prints figures.
//!
//! `cargo test --release -p smpp-cli --test serve_throughput -- --ignored --nocapture`
//!
//! One bind of our `Client` against `smpp serve --memory` (in-process, the
//! same 2-core machine runs both ends), `SERVE_BENCH_WINDOW` requests in
//! flight (default 256), `SERVE_BENCH_N` submit_sm (default 1,000,000).
//! `SERVE_BENCH_STORE=1` uses the persistent store (group commit) instead;
//! `SERVE_BENCH_MAX_MESSAGES` and `SERVE_BENCH_DLR_MS` (default 1000) set
//! `--max-messages` and `--dlr-delay`; `SERVE_BENCH_ONLY=serve|trivial` runs
//! one side only (for CPU-time comparisons with `/usr/bin/time`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use smpp_cli::serve::{self, ServeConfig, StoreConfig};
use smpp_proto::pdu::{Bind, SubmitSm};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::Client;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The baseline: a server that answers every submit_sm with a constant id.
struct Trivial;

impl smpp_tokio::Handler<smpp_tokio::Connection> for Trivial {
    async fn bind(
        &self,
        _: &smpp_tokio::Connection,
        _: BindKind,
        _: &Bind,
    ) -> Result<(), smpp_proto::pdu::CommandStatus> {
        Ok(())
    }

    async fn submit_sm(
        &self,
        _: &smpp_tokio::Connection,
        _: SubmitSm,
    ) -> Result<smpp_proto::pdu::SubmitSmResp, smpp_proto::pdu::CommandStatus> {
        Ok(smpp_proto::pdu::SubmitSmResp {
            message_id: "1".into(),
            ..Default::default()
        })
    }
}

#[test]
#[ignore = "a measurement: run with --release --ignored --nocapture"]
fn submit_sm_throughput_one_bind() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServeConfig::for_tests();
        if env("SERVE_BENCH_STORE", 0) == 1 {
            config.store = StoreConfig::Path(dir.path().join("store"));
        }
        config.max_messages = env("SERVE_BENCH_MAX_MESSAGES", config.max_messages);
        config.dlr_delay = std::time::Duration::from_millis(env("SERVE_BENCH_DLR_MS", 1000) as u64);
        let only = std::env::var("SERVE_BENCH_ONLY").unwrap_or_default();
        let srv = serve::start(config).await.unwrap();
        if only != "trivial" {
            drive("smpp serve", srv.smpp_addr()).await;
        }
        srv.shutdown().await.unwrap();
        if only == "serve" {
            return;
        }
        // The same client against smpp-tokio's Server with a trivial handler.
        let config = smpp_tokio::ServerConfig::default().with_session(
            SessionConfig::default()
                .with_max_inbound(1024)
                .with_max_in_flight(64),
        );
        let server = smpp_tokio::Server::bind("127.0.0.1:0", Trivial, config)
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let handle = server.handle();
        let running = tokio::spawn(server.run());
        drive("trivial handler", addr).await;
        handle.shutdown();
        running.await.unwrap().unwrap();
    });
}

async fn drive(label: &str, addr: std::net::SocketAddr) {
    {
        let n = env("SERVE_BENCH_N", 1_000_000);
        let window = env("SERVE_BENCH_WINDOW", 256);
        let bind = Bind {
            system_id: "smppclient1".into(),
            password: "password".into(),
            ..Default::default()
        };
        let session = SessionConfig::default().with_max_in_flight(window);
        let (client, _inbound) = Client::connect(addr, BindKind::Transmitter, bind, session)
            .await
            .unwrap();
        let sm = SubmitSm {
            source_addr: "447700900001".into(),
            destination_addr: "447700900002".into(),
            short_message: "Hello from the throughput run".into(),
            ..Default::default()
        };
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..window {
            let (client, sm, next) = (client.clone(), sm.clone(), next.clone());
            tasks.spawn(async move {
                let mut errors = 0usize;
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    if client.submit(sm.clone()).await.is_err() {
                        errors += 1;
                    }
                }
                errors
            });
        }
        let mut errors = 0;
        while let Some(e) = tasks.join_next().await {
            errors += e.unwrap();
        }
        let elapsed = started.elapsed();
        println!(
            "{label}: submit_sm {n} in {:.2?} = {:.0}/s (window {window}, errors {errors})",
            elapsed,
            n as f64 / elapsed.as_secs_f64()
        );
        client.unbind().await.unwrap();
    }
}
