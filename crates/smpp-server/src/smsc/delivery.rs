//! What happens after the answer: MO injection, the timer loop, routed
//! deliveries, final states and receipts.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use smpp_proto::message::receipt::DeliveryReceipt;
use smpp_proto::message::{
    decode_text, DataCoding, DecodeOptions, MessageState, ReceiptCarrier, ShortMessage,
};
use smpp_proto::pdu::{
    Body, COctetString, CommandStatus, DeliverSm, EsmClass, NetworkErrorCode, SubmitSm, TlvTag,
    Tlvs,
};

use super::{format_id, lock, parse_id, text, MessageFilter, MessageView, Smsc, EXPIRE_TRIES};
use crate::binds::Esme;
use crate::clock::Clock;
use crate::jobs::{backoff, Job, MAX_ATTEMPTS};
use crate::observer::{FinalEvent, ReceiptEvent};
use crate::store::{Addr, Dests, Kind, Outcome, Record, Store, StoredAddr, Text};
use smpp_proto::message::time::receipt_date;

impl<C: Clock> Smsc<C> {
    // ---- MO injection and the HTTP view ----

    /// Delivers a mobile-originated message to the ESME the destination
    /// routes to (bind `address_range`, a configured route, else any bound
    /// receiver that registered no range); user data over 254 octets goes in
    /// `message_payload`. Returns its id, or `ESME_RINVDSTADR` when no ESME
    /// takes the address.
    pub async fn inject_mo(
        &self,
        from: &str,
        to: &str,
        data_coding: u8,
        user_data: &[u8],
    ) -> Result<Vec<String>, CommandStatus> {
        let mut sm = SubmitSm {
            source_addr: smpp_proto::message::Address::guess(from).addr.clone(),
            destination_addr: COctetString::copy_from_str(to),
            data_coding,
            ..Default::default()
        };
        let source = smpp_proto::message::Address::guess(from);
        sm.source_addr_ton = source.ton;
        sm.source_addr_npi = source.npi;
        if user_data.len() <= 254 {
            sm.short_message = Bytes::copy_from_slice(user_data);
        } else {
            sm.tlvs
                .set(TlvTag::MESSAGE_PAYLOAD, user_data)
                .map_err(|_| CommandStatus::INVALID_MESSAGE_LENGTH)?;
        }
        self.inject_parts(vec![sm]).await
    }

    /// Like [`inject_mo`](Smsc::inject_mo) for a [`ShortMessage`] (its
    /// addresses, coding and segmentation): one deliver_sm, and one id, per part.
    pub async fn inject_mo_message(
        &self,
        message: &ShortMessage,
    ) -> Result<Vec<String>, CommandStatus> {
        self.inject_mo_message_with(message, &[]).await
    }

    /// [`inject_mo_message`](Smsc::inject_mo_message), every part carrying
    /// the TLVs `tlvs` too (`ESME_RINVTLVVAL` for one that cannot be encoded).
    pub async fn inject_mo_message_with(
        &self,
        message: &ShortMessage,
        tlvs: &[(smpp_proto::pdu::TlvTag, Vec<u8>)],
    ) -> Result<Vec<String>, CommandStatus> {
        let mut refs =
            smpp_proto::message::concat::ReferenceCounter::new((self.random() & 0xFFFF) as u16);
        let mut parts = message
            .build(&mut refs)
            .map_err(|_| CommandStatus::INVALID_MESSAGE_LENGTH)?;
        for part in &mut parts {
            for (tag, value) in tlvs {
                part.tlvs
                    .push(*tag, value)
                    .map_err(|_| CommandStatus::INVALID_TLV_VALUE)?;
            }
        }
        self.inject_parts(parts).await
    }

    async fn inject_parts(&self, parts: Vec<SubmitSm>) -> Result<Vec<String>, CommandStatus> {
        self.inject_parts_to(parts, None).await
    }

    /// Injects MO parts for the receivers of `target` (by default: of the
    /// account the destination routes to).
    pub(super) async fn inject_parts_to(
        &self,
        parts: Vec<SubmitSm>,
        target: Option<String>,
    ) -> Result<Vec<String>, CommandStatus> {
        let Some(first) = parts.first() else {
            return Ok(Vec::new());
        };
        // deliver_sm addresses hold 20 characters.
        if first.source_addr.len() > 20 {
            return Err(CommandStatus::INVALID_SOURCE_ADDRESS);
        }
        if first.destination_addr.is_empty() || first.destination_addr.len() > 20 {
            return Err(CommandStatus::INVALID_DESTINATION_ADDRESS);
        }
        let to = text(&first.destination_addr);
        let target = target
            .or_else(|| self.route_for(&to))
            .or_else(|| self.binds.rangeless_receiver())
            .ok_or(CommandStatus::INVALID_DESTINATION_ADDRESS)?;
        let mut ids = Vec::with_capacity(parts.len());
        for sm in parts {
            let dests = Dests::One(StoredAddr {
                ton: sm.dest_addr_ton,
                npi: sm.dest_addr_npi,
                addr: Text::from_field(&sm.destination_addr),
            });
            let id = self
                .accept(
                    Kind::Mo,
                    "",
                    &sm,
                    dests,
                    MessageState::Delivered,
                    0,
                    Some(target.clone()),
                )
                .await?;
            ids.push(format_id(id));
        }
        Ok(ids)
    }

    /// A message's current view, by id.
    pub fn message(&self, id: &str) -> Option<MessageView> {
        let record = self.get(parse_id(id)?)?;
        Some(self.view(&record))
    }

    /// The messages in memory (the recent ones) that `filter` matches,
    /// newest first, at most `limit`.
    pub fn search(&self, filter: &MessageFilter, limit: usize) -> Vec<MessageView> {
        let mut found: Vec<MessageView> = Vec::new();
        for shard in self.shards.iter() {
            let shard = lock(shard);
            for slot in shard.records.values() {
                let view = self.view(&slot.record);
                if filter.matches(&view) {
                    found.push(view);
                }
            }
        }
        found.sort_by(|a, b| {
            b.submit_time_ms
                .cmp(&a.submit_time_ms)
                .then(b.id.cmp(&a.id))
        });
        found.truncate(limit);
        found
    }

    fn view(&self, record: &Record) -> MessageView {
        let (state, done, error) = record.state_at(self.clock.now_ms());
        MessageView {
            id: format_id(record.id),
            account: record.account.to_string(),
            source: Addr::from(&record.source),
            destinations: record.dests.iter().map(Addr::from).collect(),
            state: state.stat_word(),
            submit_time_ms: record.submit_ms,
            done_time_ms: done,
            error,
            parts: record.parts,
            receipts_sent: record.receipts_sent,
        }
    }

    // ---- the timer loop: receipts and routed deliveries ----

    /// Runs due jobs until [`stop`](Smsc::stop).
    pub(crate) async fn run_timers(self: Arc<Self>) {
        loop {
            let wake = self.jobs.changed();
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            let (due, next) = self.jobs.take_due(self.clock.now_ms(), 1024);
            let had_due = !due.is_empty();
            for (id, job) in due {
                let Some(permit) = self.jobs.permit().await else {
                    return;
                };
                let smsc = self.clone();
                tokio::spawn(async move {
                    smsc.run_job(id, job).await;
                    drop(permit);
                });
            }
            if had_due {
                continue;
            }
            match next {
                Some(at) => {
                    // Until `at` itself: a wait computed from a reading
                    // would overshoot by any time moved in between.
                    tokio::select! {
                        _ = wake => {}
                        _ = self.clock.sleep_until_ms(at) => {}
                    }
                }
                None => wake.await,
            }
        }
    }

    /// Deletes the messages past their retention, from memory and the
    /// store, until the server stops: every quarter of the retention (at
    /// least every minute), and again at once while a pass hit its limit.
    pub(crate) async fn run_retention(self: Arc<Self>) {
        let period =
            (self.config.retention / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
        let mut wait = period;
        loop {
            self.clock.sleep(wait).await;
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            wait = if self.expire_old().await {
                Duration::from_millis(10)
            } else {
                period
            };
        }
    }

    /// One retention pass; `true` if there is more to delete right away.
    pub(crate) async fn expire_old(&self) -> bool {
        let now = self.clock.now_ms();
        let retention = u64::try_from(self.config.retention.as_millis()).unwrap_or(u64::MAX);
        let Some(cutoff) = now.checked_sub(retention) else {
            return false;
        };
        let mut more = false;
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            more |= self.expire(&mut shard, now, cutoff, EXPIRE_TRIES);
        }
        more |= self.store.prune(now, cutoff, self.report_finals).await.more;
        more
    }

    /// Stops the timer loop.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.jobs.wake();
    }

    /// Waits until every store write so far is durable.
    pub(crate) async fn flush(&self) {
        self.store.flush().await;
    }

    /// Runs one job; a job for a message another job is working on waits
    /// (so a receipt is never sent twice by two jobs at once).
    async fn run_job(&self, id: u64, job: Job) {
        // Another job of this message running: this one is armed again
        // when that one ends.
        let Some(_started) = self.jobs.start(id, job) else {
            return;
        };
        match job {
            Job::Route => self.route(id).await,
            Job::Finalize => self.finalize(id).await,
            Job::Intermediate => self.intermediate(id).await,
        }
    }

    async fn route(&self, id: u64) {
        let Some(record) = self.get(id) else { return };
        if record.outcome != Outcome::Pending {
            return self.finalize(id).await;
        }
        let Some(target) = record.route.clone() else {
            return;
        };
        let destination = record.dests.first().map(|d| d.addr.clone());
        let Some(esme) = self.receiver(&target, destination.as_deref()) else {
            return self.wait_for_receiver(&target, id, Job::Route);
        };
        if !esme.ready() {
            return self.retry_soon(id, Job::Route);
        }
        let dest = record.dests.first().cloned().unwrap_or_default();
        let deliver = DeliverSm {
            service_type: COctetString::copy_from_str(&record.service_type),
            source_addr_ton: record.source.ton,
            source_addr_npi: record.source.npi,
            source_addr: COctetString::copy_from_str(&record.source.addr),
            dest_addr_ton: dest.ton,
            dest_addr_npi: dest.npi,
            destination_addr: COctetString::copy_from_str(&dest.addr),
            // UDHI and reply path pass through; the message type is "default".
            esm_class: EsmClass::from(record.esm_class).network_features().bits(),
            protocol_id: record.protocol_id,
            priority_flag: record.priority_flag,
            data_coding: record.data_coding,
            short_message: Bytes::copy_from_slice(&record.payload),
            tlvs: Tlvs::from_bytes(Bytes::from(record.tlvs.clone())).unwrap_or_default(),
            ..Default::default()
        };
        let now = self.clock.now_ms();
        let fixed = match esme.conn.deliver(deliver).await {
            Ok(_) => Some((MessageState::Delivered, 0)),
            Err(smpp_tokio::Error::Status(status)) => {
                let attempts = self.jobs.failed(id);
                if attempts >= MAX_ATTEMPTS {
                    Some((MessageState::Undeliverable, (status.0 & 0xFFFF) as u16))
                } else {
                    self.schedule(now + backoff(attempts).as_millis() as u64, id, Job::Route);
                    None
                }
            }
            // Refused by a session that is closing or full: another bind, or
            // this one later, takes it (as for a delivery that failed).
            Err(smpp_tokio::Error::Refused(e)) if e.is_transient() => {
                tracing::debug!(id, error = %e, "routed delivery refused for now; retrying");
                self.schedule(now + 1000, id, Job::Route);
                None
            }
            Err(smpp_tokio::Error::Refused(e)) => {
                // The PDU cannot be sent at all (a field too long): no retry helps.
                tracing::warn!(id, error = %e, "routed message cannot be delivered");
                Some((
                    MessageState::Undeliverable,
                    (CommandStatus::SYSTEM_ERROR.0 & 0xFFFF) as u16,
                ))
            }
            Err(e) => {
                tracing::debug!(id, error = %e, "routed delivery failed; retrying");
                self.schedule(now + 1000, id, Job::Route);
                None
            }
        };
        if let Some((state, error)) = fixed {
            let done_ms = self.clock.now_ms();
            if let Some(r) = self.update(id, |r| {
                r.outcome = Outcome::Fixed {
                    done_ms,
                    state: state.to_u8(),
                    error,
                }
            }) {
                self.persist(&r).await;
            }
            self.finalize(id).await;
        }
    }

    async fn finalize(&self, id: u64) {
        let Some(record) = self.get(id) else { return };
        let now = self.clock.now_ms();
        let (state, done, error) = record.state_at(now);
        let Some(done) = done else {
            if let Outcome::Planned { due_ms, .. } = record.outcome {
                self.schedule(due_ms, id, Job::Finalize);
            }
            return;
        };
        let mut changed = false;
        if self.report_finals && !record.reported {
            self.observer.final_state(&FinalEvent {
                account: &record.account,
                message_id: &format_id(id),
                source: &record.source.addr,
                destinations: record.dests.iter().map(|d| d.addr.as_str()).collect(),
                parts: record.parts,
                data_coding: record.data_coding,
                submit_time_ms: record.submit_ms,
                done_time_ms: done,
                state: state.stat_word(),
                error,
                billing_identification: record.billing.as_deref(),
            });
            changed = true;
        }
        let wanted = record.receipts_owed(now);
        let reported = if changed {
            self.update(id, |r| r.reported = true)
        } else {
            None
        };
        let sent = if wanted {
            self.send_receipts(record, state, done, error).await
        } else {
            None
        };
        if let Some(r) = sent.or(reported) {
            self.persist(&r).await;
        }
    }

    /// Sends the receipts still owed for `record`; returns the updated record.
    async fn send_receipts(
        &self,
        record: Record,
        state: MessageState,
        done: u64,
        error: u16,
    ) -> Option<Record> {
        let id = record.id;
        let message_id = format_id(id);
        let Some(esme) = self.receiver(&record.account, None) else {
            self.observer
                .receipt(&record.account, &message_id, ReceiptEvent::Queued);
            self.wait_for_receiver(&record.account, id, Job::Finalize);
            return None;
        };
        if !esme.ready() {
            self.retry_soon(id, Job::Finalize);
            return None;
        }
        let mut latest = None;
        for index in record.receipts_sent as usize..record.dests.len() {
            let deliver = self.receipt_pdu(&record, index, state, done, error);
            match esme
                .conn
                .request(receipt_body(&record, &esme, deliver))
                .await
            {
                Ok(_) => {
                    latest = self.update(id, |r| {
                        r.receipts_sent = r.receipts_sent.max(index as u32 + 1)
                    });
                    self.observer
                        .receipt(&record.account, &message_id, ReceiptEvent::Sent);
                }
                Err(smpp_tokio::Error::Status(status)) => {
                    let attempts = self.jobs.failed(id);
                    tracing::debug!(id, %status, attempts, "receipt refused");
                    if attempts >= MAX_ATTEMPTS {
                        self.observer
                            .receipt(&record.account, &message_id, ReceiptEvent::Failed);
                        return self.update(id, |r| r.receipts_sent = r.dests.len() as u32);
                    }
                    self.observer
                        .receipt(&record.account, &message_id, ReceiptEvent::Retrying);
                    self.schedule(
                        self.clock.now_ms() + backoff(attempts).as_millis() as u64,
                        id,
                        Job::Finalize,
                    );
                    return latest;
                }
                // Refused by a receiver that is closing (unbinding) or full:
                // not a reason to drop the receipt; another bind, or this one
                // later, takes it. (Giving up here lost a receipt that
                // query_sm reported DELIVERED.)
                Err(smpp_tokio::Error::Refused(e)) if e.is_transient() => {
                    tracing::debug!(id, error = %e, "receipt refused for now; retrying");
                    self.observer
                        .receipt(&record.account, &message_id, ReceiptEvent::Retrying);
                    self.schedule(self.clock.now_ms() + 200, id, Job::Finalize);
                    return latest;
                }
                Err(smpp_tokio::Error::Refused(e)) => {
                    tracing::warn!(id, error = %e, "receipt cannot be sent");
                    self.observer
                        .receipt(&record.account, &message_id, ReceiptEvent::Failed);
                    return self.update(id, |r| r.receipts_sent = r.dests.len() as u32);
                }
                Err(e) => {
                    tracing::debug!(id, error = %e, "receipt not delivered; retrying");
                    self.observer
                        .receipt(&record.account, &message_id, ReceiptEvent::Retrying);
                    self.schedule(self.clock.now_ms() + 200, id, Job::Finalize);
                    return latest;
                }
            }
        }
        latest
    }

    async fn intermediate(&self, id: u64) {
        let Some(record) = self.get(id) else { return };
        let Some(esme) = self.receiver(&record.account, None) else {
            return;
        };
        let now = self.clock.now_ms();
        if record.is_final(now) || !esme.ready() {
            return;
        }
        let mut notification = self.receipt_pdu(&record, 0, MessageState::Enroute, now, 0);
        notification.set_esm_class(EsmClass::INTERMEDIATE_NOTIFICATION);
        let body = receipt_body(&record, &esme, notification);
        if let Err(e) = esme.conn.request(body).await {
            tracing::debug!(id, error = %e, "intermediate notification not delivered");
        }
    }

    fn receipt_pdu(
        &self,
        record: &Record,
        index: usize,
        state: MessageState,
        done: u64,
        error: u16,
    ) -> DeliverSm {
        let dest = record.dests.get(index).cloned().unwrap_or_default();
        let message_id = format_id(record.id);
        let tlvs = Tlvs::from_bytes(Bytes::from(record.tlvs.clone())).unwrap_or_default();
        let user_data = tlvs.message_payload().unwrap_or(&record.payload);
        let user_data = EsmClass::from(record.esm_class).strip_udh(user_data);
        let original = decode_text(
            DataCoding(record.data_coding),
            user_data,
            &DecodeOptions::default(),
        )
        .unwrap_or_default();
        let mut receipt = DeliveryReceipt::new(message_id.clone(), state);
        receipt.submitted = Some(1);
        receipt.submit_date = Some(receipt_date(record.submit_ms));
        receipt.done_date = Some(receipt_date(done));
        receipt.error = Some(format!("{error:03}"));
        // The receipt goes out with data_coding 0: keep its text to the
        // characters that read the same in ASCII and in GSM 03.38 (receivers
        // decode it either way), others become '?'.
        receipt.text = Some(original.chars().take(20).map(receipt_safe).collect());
        let mut out = Tlvs::new();
        let _ = out.set_text(TlvTag::RECEIPTED_MESSAGE_ID, message_id.as_bytes());
        out.set_u8(TlvTag::MESSAGE_STATE, state.to_u8());
        if error != 0 {
            out.set_network_error_code(NetworkErrorCode {
                network_type: 3, // GSM
                error_code: error,
            });
        }
        DeliverSm {
            source_addr_ton: dest.ton,
            source_addr_npi: dest.npi,
            source_addr: COctetString::copy_from_str(&dest.addr),
            dest_addr_ton: record.source.ton,
            dest_addr_npi: record.source.npi,
            destination_addr: COctetString::copy_from_str(&record.source.addr),
            esm_class: EsmClass::DELIVERY_RECEIPT.bits(),
            short_message: Bytes::from(receipt.to_text().into_bytes()),
            tlvs: out,
            ..Default::default()
        }
    }
}

/// The receipt `deliver_sm` for `record` as `esme` gets it: as it is, or as
/// a data_sm when the message came as one and the ESME speaks 5.0 or an
/// address does not fit a deliver_sm ([`ReceiptCarrier`]).
fn receipt_body(record: &Record, esme: &Esme, receipt: DeliverSm) -> Body {
    let carrier = ReceiptCarrier::choose(
        record.kind == Kind::Data,
        esme.conn.interface_version().unwrap_or(0x34),
        &receipt.source_addr.to_string_lossy(),
        &receipt.destination_addr.to_string_lossy(),
    );
    // A receipt's text always fits a message_payload; were it not to, the
    // deliver_sm is refused when sent, as any PDU that cannot be encoded.
    carrier
        .body(receipt.clone())
        .unwrap_or_else(|_| Body::DeliverSm(Box::new(receipt)))
}

/// `c` when it has the same code in ASCII and in the GSM 03.38 default
/// alphabet, else `?`.
fn receipt_safe(c: char) -> char {
    if c.is_ascii_alphanumeric() || " !\"#%&'()*+,-./:;<=>?".contains(c) {
        c
    } else {
        '?'
    }
}
