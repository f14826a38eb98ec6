//! Sends one message and waits for its delivery receipt, on plain threads.
//!
//! `cargo run -p smpp-examples --example blocking_client -- 127.0.0.1:2775 "Hello"`
//! (start `blocking_server` or `tokio_server` first).

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use smpp_blocking::Client;
use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::Bind;
use smpp_proto::session::{BindKind, SessionConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:2775".into());
    let text = args
        .next()
        .unwrap_or_else(|| "Hello from smpp-blocking".into());

    let bind = Bind {
        system_id: "esme".into(),
        password: "secret".into(),
        interface_version: 0x34,
        ..Default::default()
    };
    // Keepalives every 30 s are the default; each call waits at most 30 s for its answer.
    let config = SessionConfig::default().with_max_in_flight(32);
    let (client, inbound) = Client::connect(&addr, BindKind::Transceiver, bind, config)?;
    println!("bound to {addr}");

    let message = ShortMessage::text(text)
        .from("447700900123")
        .to("447700900456")
        .request_receipt();
    let ids = client.submit_message(&message)?;
    println!("submitted: {ids:?}");

    let mut waiting = ids.len();
    let deadline = Instant::now() + Duration::from_secs(10);
    while waiting > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        match inbound.recv_timeout(left) {
            Ok(request) => match request.receipt() {
                Some(receipt) => {
                    println!("receipt for {}: {:?}", receipt.id, receipt.state);
                    waiting -= 1;
                }
                None => println!("message: {:?}", request.pdu()),
            }, // dropping the request answers it (deliver_sm_resp, status 0)
            Err(RecvTimeoutError::Timeout) => {
                println!("no receipt in time");
                break;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    client.unbind()?;
    println!("unbound");
    Ok(())
}
