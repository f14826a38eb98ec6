//! A stand-in SMSC for `cargo xtask interop` while `smpp serve` is being
//! written: the same contract (`SMPP listening on <addr>` on stdout when
//! ready, account `smppclient1`/`password`, `--listen ADDR`, `--dlr-delay
//! DURATION`), built on `smpp_tokio::Server`.
//!
//! It answers binds of every kind, `submit_sm` (message ids `IOP<n>`),
//! `query_sm` (ENROUTE until the receipt went out, then DELIVERED) and
//! `enquire_link`/`unbind` (the session does those); every other request is
//! refused by `smpp_tokio`'s defaults (`generic_nack ESME_RINVCMDID`). When a
//! submit asks for a receipt, a `deliver_sm` receipt goes after the delay to
//! the submitting connection if it is a transceiver, else to a receiver
//! bound with the same `system_id`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use smpp_interop::{receipt_date_now, smsc_time};
use smpp_proto::message::{DeliveryReceipt, MessageState};
use smpp_proto::pdu::{
    Bind, CommandStatus, EsmClass, QuerySm, QuerySmResp, SubmitSm, SubmitSmResp, TlvTag,
};
use smpp_proto::session::BindKind;
use smpp_tokio::{Connection, Handler, Server, ServerConfig, ServerHandle};

/// The only account, as `smpp serve`'s default.
const SYSTEM_ID: &str = "smppclient1";
const PASSWORD: &str = "password";
/// At most this many messages are remembered for `query_sm` (oldest dropped).
const MAX_STORED: usize = 100_000;

#[derive(Default)]
struct Store {
    /// id -> (state, final date).
    messages: HashMap<String, (MessageState, String)>,
    order: std::collections::VecDeque<String>,
}

struct Smsc {
    next_id: AtomicU64,
    dlr_delay: Duration,
    store: Arc<Mutex<Store>>,
    handle: Arc<OnceLock<ServerHandle>>,
}

impl Smsc {
    fn set_state(store: &Mutex<Store>, id: &str, state: MessageState, date: String) {
        if let Ok(mut store) = store.lock() {
            if !store.messages.contains_key(id) {
                store.order.push_back(id.to_owned());
                if store.order.len() > MAX_STORED {
                    if let Some(old) = store.order.pop_front() {
                        store.messages.remove(&old);
                    }
                }
            }
            store.messages.insert(id.to_owned(), (state, date));
        }
    }
}

impl Handler<Connection> for Smsc {
    async fn bind(
        &self,
        _conn: &Connection,
        _kind: BindKind,
        bind: &Bind,
    ) -> Result<(), CommandStatus> {
        match (bind.system_id.as_bytes(), bind.password.as_bytes()) {
            (s, p) if s == SYSTEM_ID.as_bytes() && p == PASSWORD.as_bytes() => Ok(()),
            (s, _) if s == SYSTEM_ID.as_bytes() => Err(CommandStatus::INVALID_PASSWORD),
            _ => Err(CommandStatus::INVALID_SYSTEM_ID),
        }
    }

    async fn submit_sm(
        &self,
        conn: &Connection,
        sm: SubmitSm,
    ) -> Result<SubmitSmResp, CommandStatus> {
        let id = format!("IOP{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        Self::set_state(&self.store, &id, MessageState::Enroute, String::new());
        if sm.registered_delivery().wants_receipt() {
            let submitted = receipt_date_now();
            let conn = conn.clone();
            let id = id.clone();
            let delay = self.dlr_delay;
            let store = self.store.clone();
            let handle = self.handle.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let target = if conn.bind_kind() == Some(BindKind::Transceiver) {
                    Some(conn.clone())
                } else {
                    conn.system_id()
                        .and_then(|s| handle.get().and_then(|h| h.receiver(s)))
                };
                let mut receipt = DeliveryReceipt::new(id.clone(), MessageState::Delivered);
                receipt.submitted = Some(1);
                receipt.delivered = Some(1);
                receipt.submit_date = Some(submitted);
                receipt.done_date = Some(receipt_date_now());
                receipt.error = Some("000".into());
                // `text:` holds the first characters of the message; printable
                // ASCII only here (no UDH, no UCS-2 octets).
                let text: String = sm
                    .short_message
                    .iter()
                    .filter(|b| b.is_ascii_graphic() || **b == b' ')
                    .take(20)
                    .map(|&b| char::from(b))
                    .collect();
                receipt.text = Some(text);
                let mut dlr = SubmitSm {
                    source_addr: sm.destination_addr.clone(),
                    destination_addr: sm.source_addr.clone(),
                    esm_class: EsmClass::DELIVERY_RECEIPT.bits(),
                    short_message: receipt.to_text().into_bytes().into(),
                    ..Default::default()
                };
                let _ = dlr
                    .tlvs
                    .set_text(TlvTag::RECEIPTED_MESSAGE_ID, id.as_bytes());
                dlr.tlvs
                    .set_u8(TlvTag::MESSAGE_STATE, MessageState::Delivered as u8);
                Smsc::set_state(&store, &id, MessageState::Delivered, smsc_time());
                match target {
                    Some(target) => {
                        if let Err(e) = target.deliver(dlr).await {
                            eprintln!("interop-smsc: receipt for {id} not delivered: {e}");
                        }
                    }
                    None => eprintln!("interop-smsc: no receiver bound for the receipt of {id}"),
                }
            });
        }
        Ok(SubmitSmResp {
            message_id: id.into(),
            ..Default::default()
        })
    }

    async fn query_sm(
        &self,
        _conn: &Connection,
        query: QuerySm,
    ) -> Result<QuerySmResp, CommandStatus> {
        let id = String::from_utf8_lossy(query.message_id.as_bytes()).into_owned();
        let found = self
            .store
            .lock()
            .ok()
            .and_then(|s| s.messages.get(&id).cloned());
        match found {
            Some((state, date)) => Ok(QuerySmResp {
                message_id: query.message_id,
                final_date: date.into(),
                message_state: state as u8,
                ..Default::default()
            }),
            None => Err(CommandStatus::INVALID_MESSAGE_ID),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut listen = "127.0.0.1:2775".to_owned();
    let mut dlr_delay = Duration::from_millis(100);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // Accepted for command-line compatibility with `smpp serve`.
            "--memory" => {}
            "--listen" => listen = args.next().context("--listen needs an address")?,
            "--dlr-delay" => {
                let v = args.next().context("--dlr-delay needs a duration")?;
                dlr_delay = humantime::parse_duration(&v)
                    .with_context(|| format!("--dlr-delay {v}"))?;
            }
            other => anyhow::bail!(
                "unknown argument {other:?}; usage: interop-smsc [--memory] [--listen ADDR] [--dlr-delay DURATION]"
            ),
        }
    }
    let handle_slot = Arc::new(OnceLock::new());
    let smsc = Smsc {
        next_id: AtomicU64::new(1),
        dlr_delay,
        store: Arc::default(),
        handle: handle_slot.clone(),
    };
    let server = Server::bind(&listen, smsc, ServerConfig::default())
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let _ = handle_slot.set(server.handle());
    println!("SMPP listening on {}", server.local_addr()?);
    println!("account: {SYSTEM_ID} / {PASSWORD}");
    server.run().await?;
    Ok(())
}
