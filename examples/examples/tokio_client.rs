//! Sends one message and waits for its delivery receipt.
//!
//! `cargo run -p smpp-examples --example tokio_client -- 127.0.0.1:2775 "Hello"`
//! (start `tokio_server` first).

use std::time::Duration;

use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::Bind;
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::Client;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:2775".into());
    let text = args
        .next()
        .unwrap_or_else(|| "Hello from smpp-tokio".into());

    let bind = Bind {
        system_id: "esme".into(),
        password: "secret".into(),
        interface_version: 0x34,
        ..Default::default()
    };
    // Keepalives every 30 s are the default; each call waits at most 30 s for its answer.
    let config = SessionConfig::default().with_max_in_flight(32);
    let (client, inbound) = Client::connect(&addr, BindKind::Transceiver, bind, config).await?;
    println!("bound to {addr}");

    let message = ShortMessage::text(text)
        .from("447700900123")
        .to("447700900456")
        .request_receipt();
    let ids = client.submit_message(&message).await?;
    println!("submitted: {ids:?}");

    let mut waiting = ids.len();
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    while waiting > 0 {
        tokio::select! {
            request = inbound.recv() => {
                let Some(request) = request else { break };
                match request.receipt() {
                    Some(receipt) => {
                        println!("receipt for {}: {:?}", receipt.id, receipt.state);
                        waiting -= 1;
                    }
                    None => println!("message: {:?}", request.pdu()),
                }
                // Dropping the request answers it (deliver_sm_resp, status 0).
            }
            _ = &mut deadline => {
                println!("no receipt in time");
                break;
            }
        }
    }
    client.unbind().await?;
    println!("unbound");
    Ok(())
}
