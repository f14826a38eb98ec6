//! Loopback throughput of smpp-blocking: a server and one client in this
//! process, `submit_sm` with 160-octet text, from as many threads as the
//! window (each submitting one message at a time).
//!
//! `cargo run --release -p smpp-examples --example blocking_bench -- [submits] [window]`

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use smpp_blocking::{Client, Connection, Handler, Server, ServerConfig};
use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, SessionConfig};

struct Smsc(AtomicU64);

impl Handler<Connection> for Smsc {
    fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
        Ok(())
    }

    fn submit_sm(&self, _: &Connection, _: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        let id = self.0.fetch_add(1, Ordering::Relaxed);
        Ok(SubmitSmResp {
            message_id: format!("{id:08X}").into(),
            ..Default::default()
        })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map_or(Ok(100_000), |s| s.parse())?;
    let window: usize = args.next().map_or(Ok(64), |s| s.parse())?;
    let server = Server::bind(
        "127.0.0.1:0",
        Smsc(AtomicU64::new(0)),
        ServerConfig::default(),
    )?;
    let addr = server.local_addr()?;
    let control = server.handle();
    let serving = std::thread::spawn(move || server.run());
    let bind = Bind {
        system_id: "bench".into(),
        password: "bench".into(),
        ..Default::default()
    };
    let config = SessionConfig::default().with_max_in_flight(window);
    let (client, _inbound) = Client::connect(addr, BindKind::Transceiver, bind, config)?;
    let submit = SubmitSm {
        source_addr: "447700900123".into(),
        destination_addr: "447700900456".into(),
        short_message: vec![b'x'; 160].into(),
        ..Default::default()
    };
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..window {
            s.spawn(|| {
                for _ in 0..total / window {
                    client.submit(submit.clone()).expect("submitted");
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let sent = total / window * window;
    println!(
        "{sent} submit_sm in {secs:.2} s: {:.0}/s (window {window})",
        sent as f64 / secs
    );
    client.unbind()?;
    control.shutdown();
    serving.join().expect("server thread")?;
    Ok(())
}
