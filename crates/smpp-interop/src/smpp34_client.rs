//! The smpp34 1.5.1 crate's tokio client (an SMPP 3.4 implementation) against
//! our SMSC (scenario A).
//!
//! smpp34 carries octets, it has no text encoder: the GSM 7-bit and UCS-2
//! octets and the long message's UDH parts are made by smpp-proto's
//! `ShortMessage` and sent in smpp34's own `submit_sm`. smpp34 has no
//! enquire_link call either: its keep-alive runs every 300 ms here, and the
//! check reads smpp34's own log to see that each one was answered in time.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use async_trait::async_trait;
use smpp34::client::{SmppClient, SmppClientListener, BIND_TYPE, SMSC};
use smpp34::{deliver_sm, deliver_sm_resp, SmppConnectionInformation};
use smpp_proto::message::{ReferenceCounter, ShortMessage};
use smpp_proto::pdu::SubmitSm;
use tokio::sync::{mpsc, Notify};

use crate::checks::Checks;
use crate::{
    receipt_id, Kind, DESTINATION, GSM7_TEXT, LONG_TEXT, PASSWORD, SOURCE, SYSTEM_ID, UCS2_TEXT,
};

/// The peer's name on every result line.
pub const PEER: &str = "smpp34 1.5.1 client";
const LIMIT: Duration = Duration::from_secs(10);
/// smpp34's keep-alive period here, in milliseconds.
const ENQUIRE_LINK_MS: u64 = 300;

/// smpp34's enquire_link log lines (kept by [`EnquireLinkLog`]): each names
/// the session's client address, so a check reads only its own session's.
#[derive(Debug, Default)]
struct EnquireLinkLines {
    /// (a warning or error?, the line); at most [`MAX_LINES`].
    lines: Vec<(bool, String)>,
}

/// Lines kept at most (a run makes a few dozen).
const MAX_LINES: usize = 10_000;

impl EnquireLinkLines {
    /// (enquire_link sent, problem lines) of the session whose client address is `client`.
    fn of(&self, client: &str) -> (usize, Vec<String>) {
        let mine = self.lines.iter().filter(|(_, l)| l.contains(client));
        let sent = mine
            .clone()
            .filter(|(_, l)| l.contains("sending enquire_link with sequence_number"))
            .count();
        let problems = mine.filter(|(p, _)| *p).map(|(_, l)| l.clone()).collect();
        (sent, problems)
    }
}

static ENQUIRE_LINKS: Mutex<EnquireLinkLines> = Mutex::new(EnquireLinkLines { lines: Vec::new() });

/// A `log` logger that keeps smpp34's enquire_link lines.
#[derive(Debug)]
struct EnquireLinkLog;

impl log::Log for EnquireLinkLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("smpp34")
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = record.args().to_string();
        if !line.contains("enquire_link") {
            return;
        }
        if let Ok(mut lines) = ENQUIRE_LINKS.lock() {
            if lines.lines.len() < MAX_LINES {
                lines.lines.push((record.level() <= log::Level::Warn, line));
            }
        }
    }

    fn flush(&self) {}
}

/// Installs the enquire_link recorder as the process's logger (once).
fn install_logger() {
    static LOGGER: EnquireLinkLog = EnquireLinkLog;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

struct Listener {
    bound: mpsc::UnboundedSender<SMSC>,
    receipts: mpsc::UnboundedSender<String>,
    unbound: Arc<Notify>,
}

#[async_trait]
impl SmppClientListener for Listener {
    async fn on_deliver_sm(
        &self,
        deliver_sm: deliver_sm,
        _c: &SmppConnectionInformation,
        _s: &String,
    ) -> deliver_sm_resp {
        let text = String::from_utf8_lossy(&deliver_sm.short_message).into_owned();
        if let Some(id) = receipt_id(deliver_sm.esm_class, &text) {
            let _ = self.receipts.send(id);
        }
        deliver_sm.accept()
    }

    async fn on_smsc_bound(&self, smsc: SMSC, _s: &String) {
        let _ = self.bound.send(smsc);
    }

    async fn on_smsc_unbound(&self, _s: &String) {
        self.unbound.notify_waiters();
    }
}

struct Conn {
    client: SmppClient,
    smsc: SMSC,
    receipts: mpsc::UnboundedReceiver<String>,
    seen: HashSet<String>,
}

impl Conn {
    async fn open(host: &str, port: u16, kind: Kind) -> anyhow::Result<Conn> {
        let (bound_tx, mut bound) = mpsc::unbounded_channel();
        let (receipts_tx, receipts) = mpsc::unbounded_channel();
        let listener = Arc::new(Listener {
            bound: bound_tx,
            receipts: receipts_tx,
            unbound: Arc::new(Notify::new()),
        });
        let bind_type = match kind {
            Kind::Transmitter => BIND_TYPE::TX,
            Kind::Receiver => BIND_TYPE::RX,
            Kind::Transceiver => BIND_TYPE::TRX,
        };
        let mut client = SmppClient::new_with_default_timers(
            host.to_owned(),
            port,
            false,
            bind_type,
            SYSTEM_ID.to_owned(),
            PASSWORD.to_owned(),
            String::new(),
            0,
            0,
            String::new(),
            listener,
            5000,
            ENQUIRE_LINK_MS,
            300_000,
            2000,
            1500,
            10,
        );
        client.start().await;
        let smsc = bound
            .recv()
            .await
            .context("smpp34 never reported the bind")?;
        Ok(Conn {
            client,
            smsc,
            receipts,
            seen: HashSet::new(),
        })
    }

    async fn submit(&self, sm: &SubmitSm) -> anyhow::Result<String> {
        let resp = self
            .smsc
            .submit_sm()
            .source_addr_ton(sm.source_addr_ton)
            .source_addr_npi(sm.source_addr_npi)
            .source_addr(String::from_utf8_lossy(sm.source_addr.as_bytes()))
            .dest_addr_ton(sm.dest_addr_ton)
            .dest_addr_npi(sm.dest_addr_npi)
            .destination_addr(String::from_utf8_lossy(sm.destination_addr.as_bytes()))
            .esm_class(sm.esm_class)
            .registered_delivery(sm.registered_delivery)
            .data_coding(sm.data_coding)
            .short_message(sm.short_message.to_vec())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("submit_sm: {e:?}"))?;
        if !resp.is_success() {
            bail!("submit_sm_resp status {:#x}", resp.header.command_status);
        }
        match resp.message_id {
            Some(id) if !id.is_empty() => Ok(id),
            _ => bail!("no message_id"),
        }
    }

    async fn wait_receipts(&mut self, ids: &[String]) -> anyhow::Result<()> {
        while let Some(missing) = ids.iter().find(|id| !self.seen.contains(*id)) {
            let missing = missing.clone();
            match self.receipts.recv().await {
                Some(id) => {
                    self.seen.insert(id);
                }
                None => bail!("session ended before the receipt for {missing}"),
            }
        }
        Ok(())
    }

    async fn unbind(mut self) -> anyhow::Result<()> {
        let resp = self
            .smsc
            .send_unbind()
            .await
            .map_err(|e| anyhow::anyhow!("unbind: {e:?}"))?;
        self.client.stop().await;
        if !resp.is_success() {
            bail!("unbind_resp is not ESME_ROK");
        }
        Ok(())
    }
}

/// smpp-proto's parts of `text`: (short_message octets, data_coding, esm_class) in a SubmitSm.
fn parts(text: &str, receipt: bool) -> anyhow::Result<Vec<SubmitSm>> {
    let mut message = ShortMessage::text(text).from(SOURCE).to(DESTINATION);
    if receipt {
        message = message.request_receipt();
    }
    Ok(message.build(&mut ReferenceCounter::new(42))?)
}

async fn submit_text(conn: &Conn, text: &str, receipt: bool) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for part in parts(text, receipt)? {
        ids.push(conn.submit(&part).await?);
    }
    Ok(ids)
}

/// Runs every check against the SMSC at `host:port`.
pub async fn run(host: &str, port: u16, checks: &mut Checks) {
    install_logger();
    for kind in Kind::ALL {
        checks
            .run(&format!("bind_{} then unbind", kind.name()), LIMIT, async {
                Conn::open(host, port, kind).await?.unbind().await
            })
            .await;
    }

    if let Some(mut trx) = checks
        .run(
            "transceiver: bind",
            LIMIT,
            Conn::open(host, port, Kind::Transceiver),
        )
        .await
    {
        let gsm7 = checks
            .run(
                "transceiver: submit GSM 7-bit text (registered_delivery=1)",
                LIMIT,
                async {
                    let ids = submit_text(&trx, GSM7_TEXT, true).await?;
                    match ids.as_slice() {
                        [id] => Ok(id.clone()),
                        _ => bail!("{} parts for a short text", ids.len()),
                    }
                },
            )
            .await;
        checks
            .run("transceiver: submit UCS-2 text", LIMIT, async {
                let p = parts(UCS2_TEXT, false)?;
                if p.first().map(|p| p.data_coding) != Some(0x08) {
                    bail!("not UCS-2");
                }
                submit_text(&trx, UCS2_TEXT, false).await
            })
            .await;
        let long = checks
            .run(
                "transceiver: submit a 3-part concatenated message (UDH)",
                LIMIT,
                async {
                    let ids = submit_text(&trx, LONG_TEXT, true).await?;
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
                        .smsc
                        .send_query_sm(id.clone(), 1, 1, SOURCE.to_owned())
                        .await
                        .map_err(|e| anyhow::anyhow!("query_sm: {e:?}"))?;
                    if resp.header.command_status != 0 {
                        bail!("query_sm_resp status {:#x}", resp.header.command_status);
                    }
                    if resp.message_id != id {
                        bail!("query_sm_resp names {:?}, not {id:?}", resp.message_id);
                    }
                    if resp.message_state != 2 {
                        bail!("message_state {}, want 2 (DELIVERED)", resp.message_state);
                    }
                    Ok(())
                },
            )
            .await;
        checks
            .run(
                "transceiver: enquire_link (smpp34's keep-alive, each answered in time)",
                LIMIT,
                async {
                    // smpp34 logs each line as "[<client address> on server ...]".
                    let me = format!("[{} on server", trx.smsc.client_address);
                    let of = || {
                        ENQUIRE_LINKS
                            .lock()
                            .map(|l| l.of(&me))
                            .map_err(|_| anyhow::anyhow!("log lock poisoned"))
                    };
                    // At least two keep-alives, each answered (smpp34 logs an
                    // error for a missing or mismatched enquire_link_resp).
                    while of()?.0 < 2 {
                        tokio::time::sleep(Duration::from_millis(ENQUIRE_LINK_MS)).await;
                    }
                    tokio::time::sleep(Duration::from_millis(ENQUIRE_LINK_MS)).await;
                    let (_, problems) = of()?;
                    if !problems.is_empty() {
                        bail!("smpp34 logged {problems:?}");
                    }
                    Ok(())
                },
            )
            .await;
        checks.run("transceiver: unbind", LIMIT, trx.unbind()).await;
    }

    let rx = checks
        .run(
            "receiver: bind",
            LIMIT,
            Conn::open(host, port, Kind::Receiver),
        )
        .await;
    let tx = checks
        .run(
            "transmitter: bind",
            LIMIT,
            Conn::open(host, port, Kind::Transmitter),
        )
        .await;
    if let (Some(mut rx), Some(tx)) = (rx, tx) {
        let id = checks
            .run(
                "transmitter: submit GSM 7-bit text (registered_delivery=1)",
                LIMIT,
                async {
                    let ids = submit_text(&tx, "receipt to the receiver", true).await?;
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
        checks.run("transmitter: unbind", LIMIT, tx.unbind()).await;
        checks.run("receiver: unbind", LIMIT, rx.unbind()).await;
    }
}
