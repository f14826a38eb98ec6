//! A small SMSC on plain threads (no async runtime): accepts binds
//! (`esme`/`secret`), answers each `submit_sm` with a message id, and sends a
//! delivery receipt 100 ms later when one was requested. Press Enter (or
//! close stdin) to shut down gracefully, unbinding everyone.
//!
//! `cargo run -p smpp-examples --example blocking_server -- 127.0.0.1:2775`

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use smpp_blocking::{Connection, Handler, Server, ServerConfig};
use smpp_proto::message::{DeliveryReceipt, MessageState};
use smpp_proto::pdu::{Bind, CommandStatus, EsmClass, SubmitSm, SubmitSmResp, TlvTag};
use smpp_proto::session::BindKind;

struct Smsc {
    next_id: AtomicU64,
}

impl Handler<Connection> for Smsc {
    fn bind(&self, conn: &Connection, kind: BindKind, bind: &Bind) -> Result<(), CommandStatus> {
        println!(
            "{:?}: {kind:?} bind from {}",
            conn.peer_addr(),
            bind.system_id
        );
        match (bind.system_id.as_bytes(), bind.password.as_bytes()) {
            (b"esme", b"secret") => Ok(()),
            (b"esme", _) => Err(CommandStatus::INVALID_PASSWORD),
            _ => Err(CommandStatus::INVALID_SYSTEM_ID),
        }
    }

    fn submit_sm(&self, conn: &Connection, sm: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        let id = format!("{:08X}", self.next_id.fetch_add(1, Ordering::Relaxed));
        println!(
            "submit_sm {} -> {}: {id}",
            sm.source_addr, sm.destination_addr
        );
        if sm.registered_delivery().wants_receipt() {
            // Receipts go back on this connection (a transceiver), from
            // another thread: this one answers the submit first. For a
            // transmitter, look up its receiver with `ServerHandle::receiver`.
            let conn = conn.clone();
            let id = id.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                let mut receipt = DeliveryReceipt::new(id.clone(), MessageState::Delivered);
                receipt.text = Some(String::from_utf8_lossy(&sm.short_message).into_owned());
                let mut dlr = SubmitSm {
                    source_addr: sm.destination_addr,
                    destination_addr: sm.source_addr,
                    esm_class: EsmClass::DELIVERY_RECEIPT.bits(),
                    short_message: receipt.to_text().into_bytes().into(),
                    ..Default::default()
                };
                let _ = dlr
                    .tlvs
                    .set_text(TlvTag::RECEIPTED_MESSAGE_ID, id.as_bytes());
                dlr.tlvs
                    .set_u8(TlvTag::MESSAGE_STATE, MessageState::Delivered as u8);
                if let Err(e) = conn.deliver(dlr) {
                    eprintln!("receipt for {id} not delivered: {e}");
                }
            });
        }
        Ok(SubmitSmResp {
            message_id: id.into(),
            ..Default::default()
        })
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2775".into());
    let smsc = Smsc {
        next_id: AtomicU64::new(1),
    };
    let server = Server::bind(&addr, smsc, ServerConfig::default())?;
    println!("listening on {} (Enter to stop)", server.local_addr()?);
    let handle = server.handle();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_line(&mut String::new());
        println!("shutting down");
        handle.shutdown();
    });
    server.run()
}
