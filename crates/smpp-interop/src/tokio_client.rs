//! Our `smpp_tokio::Client` against an independent SMSC, the smpp34 crate's
//! server (`smpp34-smsc`; scenario C): binds of each kind, GSM 7-bit, UCS-2
//! and concatenated submits, the receipts on a transceiver and on a receiver
//! bound with the same account, query_sm, enquire_link and unbind.
//!
//! Two smpp34 1.5.1 server defects show here and are allowed for, each said
//! in the check's name:
//! - on unbind it queues its unbind_resp and closes the connection at once,
//!   so the answer is usually lost: our `unbind` then ends in
//!   `Error::Closed`, accepted here when the session is indeed closed;
//! - it only reads deliver_sm_resp on TX/TRX sessions, so a receipt to a
//!   receiver is shown on our side but times out on its side.
//!
//! `Client::request` refuses enquire_link (the session owns keep-alives), so
//! one check runs the session's keep-alive every 200 ms and reads the
//! counters; another asks `Client::enquire_link()` (the connection status
//! inquiry of `smpp ping`) for its round trip.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{bail, Context as _};
use smpp_proto::message::{MessageState, ShortMessage};
use smpp_proto::pdu::{Bind, Body, CommandId, QuerySm};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{Client, Error, Inbound};

use crate::checks::Checks;
use crate::{Kind, DESTINATION, GSM7_TEXT, LONG_TEXT, PASSWORD, SOURCE, SYSTEM_ID, UCS2_TEXT};

/// The name on every result line.
pub const PEER: &str = "smpp-tokio Client vs smpp34 1.5.1 server";
const LIMIT: Duration = Duration::from_secs(10);
const KEEPALIVE: Duration = Duration::from_millis(200);
const UNBIND: &str = "unbind (a close instead of unbind_resp accepted: smpp34's server drops it)";

struct Conn {
    client: Client,
    inbound: Inbound,
    seen: HashSet<String>,
}

impl Conn {
    async fn open(addr: &str, kind: Kind) -> anyhow::Result<Conn> {
        Self::open_with(addr, kind, SessionConfig::default()).await
    }

    async fn open_with(addr: &str, kind: Kind, config: SessionConfig) -> anyhow::Result<Conn> {
        let bind = Bind {
            system_id: SYSTEM_ID.into(),
            password: PASSWORD.into(),
            interface_version: 0x34,
            ..Default::default()
        };
        let kind = match kind {
            Kind::Transmitter => BindKind::Transmitter,
            Kind::Receiver => BindKind::Receiver,
            Kind::Transceiver => BindKind::Transceiver,
        };
        let (client, inbound) = Client::connect(addr, kind, bind, config).await?;
        Ok(Conn {
            client,
            inbound,
            seen: HashSet::new(),
        })
    }

    async fn submit(&self, message: ShortMessage) -> anyhow::Result<Vec<String>> {
        let ids = self
            .client
            .submit_message(&message.from(SOURCE).to(DESTINATION))
            .await?;
        Ok(ids
            .iter()
            .map(|id| String::from_utf8_lossy(id.as_bytes()).into_owned())
            .collect())
    }

    /// Waits for a receipt of each id (each deliver_sm is answered OK when dropped).
    async fn wait_receipts(&mut self, ids: &[String]) -> anyhow::Result<()> {
        while let Some(missing) = ids.iter().find(|id| !self.seen.contains(*id)) {
            let missing = missing.clone();
            let Some(request) = self.inbound.recv().await else {
                bail!("session ended before the receipt for {missing}");
            };
            if let Some(receipt) = request.receipt() {
                if receipt.state != MessageState::Delivered {
                    bail!("receipt for {} says {:?}", receipt.id, receipt.state);
                }
                self.seen.insert(receipt.id);
            }
        }
        Ok(())
    }

    /// Unbinds; smpp34's server closing without its unbind_resp is accepted.
    async fn unbind(self) -> anyhow::Result<()> {
        match self.client.unbind().await {
            Ok(()) => Ok(()),
            Err(Error::Closed) if self.client.is_closed() => Ok(()),
            Err(e) => Err(e).context("unbind"),
        }
    }
}

/// Runs every check against the SMSC at `addr`.
pub async fn run(addr: &str, checks: &mut Checks) {
    for kind in Kind::ALL {
        checks
            .run(
                &format!("bind_{} then {UNBIND}", kind.name()),
                LIMIT,
                async { Conn::open(addr, kind).await?.unbind().await },
            )
            .await;
    }

    if let Some(mut trx) = checks
        .run(
            "transceiver: bind",
            LIMIT,
            Conn::open_with(
                addr,
                Kind::Transceiver,
                SessionConfig::default().with_enquire_link_interval(Some(KEEPALIVE)),
            ),
        )
        .await
    {
        let gsm7 = checks
            .run(
                "transceiver: submit GSM 7-bit text (receipt requested)",
                LIMIT,
                async {
                    let ids = trx
                        .submit(ShortMessage::text(GSM7_TEXT).request_receipt())
                        .await?;
                    match ids.as_slice() {
                        [id] => Ok(id.clone()),
                        _ => bail!("{} parts for a short text", ids.len()),
                    }
                },
            )
            .await;
        checks
            .run(
                "transceiver: submit UCS-2 text",
                LIMIT,
                trx.submit(ShortMessage::text(UCS2_TEXT)),
            )
            .await;
        let long = checks
            .run(
                "transceiver: submit a 3-part concatenated message (UDH)",
                LIMIT,
                async {
                    let ids = trx
                        .submit(ShortMessage::text(LONG_TEXT).request_receipt())
                        .await?;
                    if ids.len() != 3 {
                        bail!("{} parts", ids.len());
                    }
                    Ok(ids)
                },
            )
            .await;
        checks
            .run(
                "transceiver: receipts for the GSM7 message and every part",
                LIMIT,
                async {
                    let mut ids: Vec<String> = gsm7.iter().cloned().collect();
                    ids.extend(long.iter().flatten().cloned());
                    if ids.is_empty() {
                        bail!("nothing was submitted");
                    }
                    trx.wait_receipts(&ids).await
                },
            )
            .await;
        checks
            .run(
                "transceiver: query_sm of the GSM7 id says DELIVERED",
                LIMIT,
                async {
                    let id = gsm7.clone().context("nothing was submitted")?;
                    let resp = trx
                        .client
                        .request(Body::QuerySm(Box::new(QuerySm {
                            message_id: id.clone().into(),
                            source_addr_ton: 1,
                            source_addr_npi: 1,
                            source_addr: SOURCE.into(),
                            ..Default::default()
                        })))
                        .await?;
                    let Body::QuerySmResp(q) = resp.body else {
                        bail!("answer was {}", resp.command_id());
                    };
                    if q.message_id.as_bytes() != id.as_bytes() {
                        bail!("query_sm_resp names {:?}", q.message_id);
                    }
                    if q.message_state != MessageState::Delivered as u8 {
                        bail!("message_state {}, want 2 (DELIVERED)", q.message_state);
                    }
                    Ok(())
                },
            )
            .await;
        checks
            .run(
                "transceiver: enquire_link (the session's keep-alive, every 200 ms)",
                LIMIT,
                async {
                    let before = trx.client.stats().await?;
                    let counts = |now: &smpp_proto::session::Stats| {
                        (
                            now.sent(CommandId::ENQUIRE_LINK)
                                - before.sent(CommandId::ENQUIRE_LINK),
                            now.received(CommandId::ENQUIRE_LINK_RESP)
                                - before.received(CommandId::ENQUIRE_LINK_RESP),
                        )
                    };
                    // Two keep-alives answered (the check's time limit ends the wait).
                    loop {
                        tokio::time::sleep(KEEPALIVE).await;
                        let (sent, answered) = counts(&trx.client.stats().await?);
                        if answered >= 2 {
                            break;
                        }
                        if sent > answered + 1 {
                            bail!(
                                "{sent} enquire_link sent, {answered} enquire_link_resp received"
                            );
                        }
                    }
                    Ok(())
                },
            )
            .await;
        checks
            .run(
                "transceiver: Client::enquire_link() answers with its round trip",
                LIMIT,
                async {
                    let before = trx.client.last_round_trip();
                    let rtt = trx.client.enquire_link().await?;
                    if rtt.is_zero() || rtt >= LIMIT {
                        bail!("round trip {rtt:?}");
                    }
                    if before.is_some() || trx.client.last_round_trip() != Some(rtt) {
                        bail!(
                            "last_round_trip {before:?} then {:?}",
                            trx.client.last_round_trip()
                        );
                    }
                    Ok(())
                },
            )
            .await;
        checks
            .run(&format!("transceiver: {UNBIND}"), LIMIT, trx.unbind())
            .await;
    }

    let rx = checks
        .run("receiver: bind", LIMIT, Conn::open(addr, Kind::Receiver))
        .await;
    let tx = checks
        .run(
            "transmitter: bind",
            LIMIT,
            Conn::open(addr, Kind::Transmitter),
        )
        .await;
    if let (Some(mut rx), Some(tx)) = (rx, tx) {
        let id = checks
            .run(
                "transmitter: submit GSM 7-bit text (receipt requested)",
                LIMIT,
                async {
                    let ids = tx
                        .submit(ShortMessage::text("receipt to the receiver").request_receipt())
                        .await?;
                    ids.into_iter().next().context("no part")
                },
            )
            .await;
        checks
            .run(
                "receiver (same account): receipt of the transmitter's message",
                LIMIT,
                async {
                    let id = id.context("nothing was submitted")?;
                    rx.wait_receipts(&[id]).await
                },
            )
            .await;
        checks
            .run(&format!("transmitter: {UNBIND}"), LIMIT, tx.unbind())
            .await;
        checks
            .run(&format!("receiver: {UNBIND}"), LIMIT, rx.unbind())
            .await;
    }
}

/// Binds a transmitter at `addr`, submits one message asking for a receipt,
/// unbinds, and returns its id: the submitter for the `smpp listen` check
/// (a transmitter cannot take the receipt, so it goes to the listener).
pub async fn submit_one(addr: &str) -> anyhow::Result<String> {
    let conn = Conn::open(addr, Kind::Transmitter).await?;
    let ids = conn
        .submit(ShortMessage::text("hello to smpp listen").request_receipt())
        .await?;
    conn.unbind().await?;
    ids.into_iter().next().context("no part")
}
