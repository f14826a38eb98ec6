//! Loopback throughput of smpp-smol: a server and one client in this
//! process, `submit_sm` with 160-octet text, through a window of 64.
//!
//! `cargo run --release -p smpp-examples --example smol_bench -- [smol|async-std] [submits] [window]`

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_smol::{Client, Connection, Handler, Server, ServerConfig};

struct Smsc(AtomicU64);

impl Handler<Connection> for Smsc {
    async fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
        Ok(())
    }

    async fn submit_sm(&self, _: &Connection, _: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        let id = self.0.fetch_add(1, Ordering::Relaxed);
        Ok(SubmitSmResp {
            message_id: format!("{id:08X}").into(),
            ..Default::default()
        })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let rt = args.next().unwrap_or_else(|| "smol".into());
    let total: usize = args.next().map_or(Ok(100_000), |s| s.parse())?;
    let window: usize = args.next().map_or(Ok(64), |s| s.parse())?;
    match rt.as_str() {
        "smol" => smol::block_on(run(total, window, |f| Box::pin(smol::spawn(f)))),
        "async-std" => {
            async_std::task::block_on(run(total, window, |f| Box::pin(async_std::task::spawn(f))))
        }
        other => Err(format!("unknown runtime {other}: smol or async-std").into()),
    }
}

/// A unit of work, and the executor's way to spawn one (the callers' tasks;
/// the connection tasks run on `async-global-executor` either way).
type Work = Pin<Box<dyn Future<Output = ()> + Send>>;

async fn run(
    total: usize,
    window: usize,
    spawn: fn(Work) -> Work,
) -> Result<(), Box<dyn std::error::Error>> {
    let config = ServerConfig::default()
        .with_session(SessionConfig::default().with_max_inbound(window.max(64)));
    let server = Server::bind("127.0.0.1:0", Smsc(AtomicU64::new(0)), config).await?;
    let addr = server.local_addr()?;
    let control = server.handle();
    let serving = async_global_executor::spawn(server.run());

    let bind = Bind {
        system_id: "bench".into(),
        password: "bench".into(),
        ..Default::default()
    };
    let session = SessionConfig::default().with_max_in_flight(window);
    let (client, _inbound) = Client::connect(addr, BindKind::Transmitter, bind, session).await?;
    let sm = SubmitSm {
        source_addr: "447700900123".into(),
        destination_addr: "447700900456".into(),
        short_message: vec![b'x'; 160].into(),
        ..Default::default()
    };
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    // Twice the window of callers keeps the window full.
    let workers = (window * 2).min(total.max(1));
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (client, sm, done) = (client.clone(), sm.clone(), done.clone());
            let n = total / workers + usize::from(w < total % workers);
            spawn(Box::pin(async move {
                for _ in 0..n {
                    client.submit(sm.clone()).await.expect("submitted");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }))
        })
        .collect();
    for task in tasks {
        task.await;
    }
    let elapsed = started.elapsed();
    let n = done.load(Ordering::Relaxed);
    println!(
        "{n} submit_sm in {elapsed:.2?}: {:.0} submit_sm/s (window {window})",
        n as f64 / elapsed.as_secs_f64()
    );
    client.unbind().await?;
    control.shutdown();
    serving.await?;
    Ok(())
}
