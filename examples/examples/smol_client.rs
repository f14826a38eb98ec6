//! Sends one message and waits for its delivery receipt, on smol.
//!
//! `cargo run -p smpp-examples --example smol_client -- 127.0.0.1:2775 "Hello"`
//! (start `tokio_server` first: the protocol does not care which runtime the peer uses).

use std::time::{Duration, Instant};

use futures_lite::future;
use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::Bind;
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_smol::Client;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    smol::block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:2775".into());
    let text = args.next().unwrap_or_else(|| "Hello from smpp-smol".into());

    let bind = Bind {
        system_id: "esme".into(),
        password: "secret".into(),
        interface_version: 0x34,
        ..Default::default()
    };
    // Keepalives every 30 s are the default; each call waits at most 30 s for its answer.
    let config = SessionConfig::default().with_max_in_flight(32);
    let (client, inbound) =
        Client::connect(addr.as_str(), BindKind::Transceiver, bind, config).await?;
    println!("bound to {addr}");

    let message = ShortMessage::text(text)
        .from("447700900123")
        .to("447700900456")
        .request_receipt();
    let ids = client.submit_message(&message).await?;
    println!("submitted: {ids:?}");

    let mut waiting = ids.len();
    let deadline = Instant::now() + Duration::from_secs(10);
    while waiting > 0 {
        let next = async { Some(inbound.recv().await) };
        let expired = async {
            async_io::Timer::at(deadline).await;
            None
        };
        match future::or(next, expired).await {
            Some(Some(request)) => {
                match request.receipt() {
                    Some(receipt) => {
                        println!("receipt for {}: {:?}", receipt.id, receipt.state);
                        waiting -= 1;
                    }
                    None => println!("message: {:?}", request.pdu()),
                }
                // Dropping the request answers it (deliver_sm_resp, status 0).
            }
            Some(None) => break,
            None => {
                println!("no receipt in time");
                break;
            }
        }
    }
    client.unbind().await?;
    println!("unbound");
    Ok(())
}
