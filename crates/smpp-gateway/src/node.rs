//! The gateway's shared state: the store, the connectors, the router, the
//! customers' binds, the id counters, the receipt outbox and the held
//! upstream receipts. The flows live in their own modules
//! (`customers`, `forward`, `receipts`); they all go through a [`Node`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use smpp_proto::pdu::{decode_frame, Body, DecodeConfig, Pdu, SequenceNumber, SubmitSm};
use tokio::sync::Notify;

use smpp_server::cdr::{rfc3339, CdrRecord, CdrWriter};
use smpp_server::lockout::Lockout;

use crate::config::{GatewayConfig, MoRouteConfig};
use crate::customers::Binds;
use crate::outbox::Outbox;
use crate::topology::Topologies;
use smpp_proto::message::receipt::MessageState as ReceiptState;

use crate::accounts::AccountBook;
use crate::billing::{format_money, Billing};
use crate::metrics::Metrics;
use crate::store::{
    GatewayStore, HeldReceipt, MessageRecord, MessageState, Op, Quota, StoreError, StoreResult,
};
use crate::webhooks::Webhooks;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Everything the flows share.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) store: Arc<dyn GatewayStore>,
    /// Who may bind (credentials, allow-lists; checked as `smpp serve`
    /// does), as they are now.
    pub(crate) accounts: AccountBook,
    /// Failed binds per address (`None`: no lockout).
    pub(crate) lockout: Option<Lockout>,
    /// The accounts' prepaid quotas.
    pub(crate) billing: Billing,
    /// Where final messages are written as CDRs.
    cdr: Option<CdrWriter>,
    /// Receipts and MO messages owed to HTTP receivers.
    pub(crate) webhooks: Webhooks,
    /// The counters behind `/metrics`.
    pub(crate) metrics: Metrics,
    /// The connectors, routes and queues in force.
    pub(crate) topologies: Topologies,
    pub(crate) binds: Binds,
    next_id: AtomicU64,
    next_seq: AtomicU64,
    /// How the counters become ids.
    ids: IdMaker,
    /// Receipts owed to customers.
    pub(crate) outbox: Mutex<Outbox>,
    /// With a store several nodes share: this node's part in the cluster.
    pub(crate) cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Held by every change of the configuration (accounts, quotas set or
    /// credited, connectors and routes: stored, then in force) and by the
    /// reading of another node's changes, so that a reading never puts an
    /// older state over a newer one.
    pub(crate) config_lock: tokio::sync::Mutex<()>,
    /// Wakes the outbox: a new receipt, a new bind.
    pub(crate) outbox_wake: Notify,
    /// Upstream receipts whose id was not in the map yet, by (connector,
    /// normalised upstream id).
    pub(crate) held: Mutex<HashMap<(String, String), Vec<HeldReceipt>>>,
    stopped: AtomicBool,
    /// Messages not forwarded yet, at most.
    pub(crate) max_queued: usize,
    /// Hop count at which a submission is refused as a loop.
    pub(crate) max_hops: u8,
    /// How long an unmatched upstream receipt is held.
    pub(crate) hold_for: Duration,
    /// How long a forwarded message waits for its upstream receipt.
    pub(crate) receipt_timeout: Duration,
    /// Where MO messages go, first match wins.
    pub(crate) mo_routes: Vec<MoRouteConfig>,
    /// Distribution lists for `submit_multi`: members by (account, name).
    pub(crate) distribution_lists: HashMap<(String, String), Vec<String>>,
    /// Binds per account at most.
    pub(crate) max_binds: Option<usize>,
    /// Receipts owed to one account at most before its submissions wait.
    pub(crate) max_owed: usize,
    /// Upstream receipts held at most.
    pub(crate) max_held: usize,
    /// SMS parts per second per account at most.
    tps: Option<u32>,
    /// SMS parts per second per account and source address at most.
    tps_per_sender: Option<u32>,
    /// Per account, and per (account, source): (the current second, parts
    /// in it).
    rates: Mutex<Rates>,
    /// Messages accepted and not yet forwarded or failed (queued or being submitted).
    pub(crate) pending: AtomicUsize,
    /// Submits to upstreams under way.
    pub(crate) submitting: AtomicUsize,
    /// The messages of the submits under way.
    pub(crate) in_submit: Mutex<std::collections::HashSet<u64>>,
    /// A message's final state is decided under its stripe of these (read,
    /// check, write): an upstream receipt, a repeat of it, and the receipt
    /// timeout cannot both find it unfinished and each owe the customer a
    /// final receipt.
    finals: Vec<tokio::sync::Mutex<()>>,
}

/// The rate counters: per account, per (account, source address).
#[derive(Debug, Default)]
struct Rates {
    accounts: HashMap<(String, String), (u64, u32)>,
    senders: HashMap<(String, String), (u64, u32)>,
}

/// Counters kept at most before those of past seconds are dropped.
const MAX_RATE_KEYS: usize = 100_000;

/// Drops the counters of seconds before `second` once there are many.
fn for_second(map: &mut HashMap<(String, String), (u64, u32)>, second: u64) {
    if map.len() >= MAX_RATE_KEYS {
        map.retain(|_, (s, _)| *s == second);
    }
}

/// Ids (message ids, outbox keys) from a counter: as they are for a node
/// alone; with the node's number in the low [`NODE_BITS`] bits when nodes
/// share the store, so that no two nodes ever make the same id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdMaker {
    ordinal: Option<u64>,
}

/// Bits of an id that number the node, in a cluster.
const NODE_BITS: u32 = 10;

impl IdMaker {
    fn new(ordinal: Option<u32>) -> IdMaker {
        IdMaker {
            ordinal: ordinal.map(|o| u64::from(o) & ((1 << NODE_BITS) - 1)),
        }
    }

    /// The first counter whose ids are all above `max`.
    fn counter_above(self, max: u64) -> u64 {
        match self.ordinal {
            None => max + 1,
            Some(_) => (max >> NODE_BITS) + 1,
        }
    }

    fn make(self, counter: u64) -> u64 {
        match self.ordinal {
            None => counter,
            Some(o) => (counter << NODE_BITS) | o,
        }
    }
}

/// The stripe of [`Node::finals`] of message `id`: from all its bits (in a
/// cluster the low ones are the node's number, the same for all of a
/// node's messages).
fn stripe(id: u64) -> usize {
    (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % FINAL_STRIPES
}

/// Stripes of [`Node::finals`].
const FINAL_STRIPES: usize = 64;

impl Node {
    /// A node over `store`; ids continue above what the store has seen.
    pub(crate) async fn new(
        store: Arc<dyn GatewayStore>,
        config: &GatewayConfig,
    ) -> StoreResult<Node> {
        // Ids start at the current time in microseconds (unique across
        // restarts even if the store was lost) and above every stored id.
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        // Nodes sharing a store make ids of their own: their number in the
        // low bits, a counter above it.
        let ids = IdMaker::new(store.shared().map(|s| s.ordinal));
        let first_id = micros.max(ids.counter_above(store.max_message_id().await?));
        let first_seq = ids.counter_above(store.max_seq().await?);
        // The stored accounts, with the configured ones added or updated
        // (and written back, so that the store has them all).
        let mut all = Vec::new();
        for s in store.accounts().await? {
            if config.accounts.iter().any(|a| a.system_id == s.system_id) {
                continue;
            }
            match crate::accounts::from_stored(&s) {
                Ok(a) => all.push(a),
                Err(e) => {
                    tracing::error!(system_id = s.system_id, error = %e, "stored account unreadable: skipped")
                }
            }
        }
        all.extend(config.accounts.iter().cloned());
        let accounts =
            AccountBook::new(all).map_err(|e| StoreError::Engine(format!("accounts: {e}")))?;
        let ops: Vec<Op> = config
            .accounts
            .iter()
            .map(|a| Op::PutAccount(crate::accounts::stored(a)))
            .collect();
        if !ops.is_empty() {
            store.write(ops).await?;
        }
        let billing = Billing::new(store.quotas().await?);
        // Configured quotas apply once: a restart does not refill them.
        let mut first: Vec<(String, Quota)> = Vec::new();
        for b in config.balances.iter().filter(|b| !billing.has(&b.account)) {
            let i = match first.iter().position(|(a, _)| a == &b.account) {
                Some(i) => i,
                None => {
                    first.push((b.account.clone(), Quota::default()));
                    first.len() - 1
                }
            };
            let quota = &mut first[i].1;
            quota.balance = b.quota.balance.or(quota.balance);
            quota.sms = b.quota.sms.or(quota.sms);
        }
        for (account, quota) in &first {
            billing.set(account, *quota);
        }
        if !first.is_empty() {
            let ops = first
                .into_iter()
                .map(|(account, quota)| Op::SetQuota { account, quota })
                .collect();
            store.write(ops).await?;
        }
        let cdr = match &config.cdr {
            Some(path) => Some(CdrWriter::open(path).map_err(|e| {
                StoreError::Engine(format!("cannot open the CDR file {}: {e}", path.display()))
            })?),
            None => None,
        };
        let cluster = store
            .shared()
            .map(|s| Arc::new(crate::cluster::Cluster::new(s, config.takeover)));
        Ok(Node {
            accounts,
            lockout: config.bind_failure_limit.map(Lockout::new),
            billing,
            cdr,
            webhooks: Webhooks::default(),
            metrics: Metrics::new(),
            store,
            topologies: Topologies::default(),
            binds: Binds::default(),
            next_id: AtomicU64::new(first_id),
            next_seq: AtomicU64::new(first_seq),
            ids,
            outbox: Mutex::default(),
            cluster,
            config_lock: tokio::sync::Mutex::new(()),
            outbox_wake: Notify::new(),
            held: Mutex::default(),
            stopped: AtomicBool::new(false),
            pending: AtomicUsize::new(0),
            submitting: AtomicUsize::new(0),
            in_submit: Mutex::default(),
            max_queued: config.max_queued,
            max_hops: config.max_hops,
            hold_for: config.hold_for,
            max_binds: config.max_binds_per_account,
            max_owed: config.max_receipts_owed,
            max_held: config.max_held,
            mo_routes: config.mo_routes.clone(),
            distribution_lists: config
                .distribution_lists
                .iter()
                .map(|d| ((d.account.clone(), d.name.clone()), d.members.clone()))
                .collect(),
            receipt_timeout: config.receipt_timeout,
            tps: config.tps_per_account,
            tps_per_sender: config.tps_per_sender,
            rates: Mutex::default(),
            finals: (0..FINAL_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        })
    }

    /// Holds the final-state stripe of message `id` (see [`Node::finals`]).
    pub(crate) async fn final_lock(&self, id: u64) -> tokio::sync::MutexGuard<'_, ()> {
        self.finals[stripe(id)].lock().await
    }

    /// Holds the final-state stripes of every message of `ids`, in stripe
    /// order (so that two holders never wait on each other).
    pub(crate) async fn final_locks(&self, ids: &[u64]) -> Vec<tokio::sync::MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = ids
            .iter()
            .map(|id| (id % FINAL_STRIPES as u64) as usize)
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for s in stripes {
            guards.push(self.finals[s].lock().await);
        }
        guards
    }

    /// Counts `parts` SMS parts of `account` in the current second;
    /// `false` when that is over its rate (answer `ESME_RTHROTTLED`). A
    /// `submit_sm` carrying one part of a long message counts one; one
    /// carrying a long `message_payload` counts the parts it will take.
    /// The rate limits: SMS parts per second per account, and per account
    /// and sender.
    pub(crate) fn rate_limits(&self) -> (Option<u32>, Option<u32>) {
        (self.tps, self.tps_per_sender)
    }

    /// With a limit per sender, `source` counts too (both must admit).
    pub(crate) fn admit(&self, account: &str, source: &str, parts: u32) -> bool {
        if self.tps.is_none() && self.tps_per_sender.is_none() {
            return true;
        }
        let second = now_ms() / 1000;
        let mut rates = lock(&self.rates);
        let Rates { accounts, senders } = &mut *rates;
        // Old seconds' counters go before the maps grow past a bound.
        for_second(accounts, second);
        for_second(senders, second);
        let fits = |entry: &mut (u64, u32), limit: u32| {
            if entry.0 != second {
                *entry = (second, 0);
            }
            entry.1.saturating_add(parts) <= limit
        };
        let key = (account.to_owned(), String::new());
        let sender_key = (account.to_owned(), source.to_owned());
        // Nodes sharing a database each take a share of the limits.
        let share = self
            .cluster
            .as_ref()
            .map_or(1.0, |c| c.share(account, self.binds.count(account)));
        let shared = |limit: u32| ((f64::from(limit) * share).round() as u32).max(1);
        if let Some(limit) = self.tps.map(shared) {
            if !fits(accounts.entry(key.clone()).or_insert((second, 0)), limit) {
                return false;
            }
        }
        if let Some(limit) = self.tps_per_sender.map(shared) {
            let entry = senders.entry(sender_key.clone()).or_insert((second, 0));
            if !fits(entry, limit) {
                return false;
            }
            entry.1 += parts;
        }
        if self.tps.is_some() {
            if let Some(entry) = accounts.get_mut(&key) {
                entry.1 += parts;
            }
        }
        true
    }

    /// Writes the CDR of a message that has just become final (when a CDR
    /// file is configured; a failure is logged, not fatal).
    pub(crate) fn write_cdr(&self, record: &MessageRecord) {
        self.metrics.finished(record);
        let Some(cdr) = &self.cdr else { return };
        let Some(line) = cdr_record(record) else {
            return;
        };
        if let Err(e) = cdr.write(&line) {
            tracing::error!(error = %e, id = record.id, "cannot write a CDR");
        }
    }

    /// Receipts (SMPP and webhook) owed to `account`.
    pub(crate) fn owed_to(&self, account: &str) -> usize {
        lock(&self.outbox).owed_to(account) + self.webhooks.owed_to(account)
    }

    /// A new message id.
    pub(crate) fn next_id(&self) -> u64 {
        self.ids.make(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// A new outbox or held key.
    pub(crate) fn next_seq(&self) -> u64 {
        self.ids.make(self.next_seq.fetch_add(1, Ordering::Relaxed))
    }

    /// Messages accepted and not yet forwarded or failed.
    pub(crate) fn forwarding_count(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// The messages being submitted upstream now.
    pub(crate) fn submitting_ids(&self) -> std::collections::HashSet<u64> {
        lock(&self.in_submit).clone()
    }

    /// Submits to upstreams under way.
    pub(crate) fn submitting_count(&self) -> usize {
        self.submitting.load(Ordering::Acquire)
    }

    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.outbox_wake.notify_waiters();
    }

    pub(crate) fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Sleeps `delay`, or less when the node stops; `false` if stopped.
    pub(crate) async fn pause(&self, delay: Duration) -> bool {
        tokio::time::sleep(delay).await;
        !self.stopped()
    }
}

/// The CDR of a final message (`None`: not final, or unreadable).
fn cdr_record(record: &MessageRecord) -> Option<GatewayCdr> {
    let sm = stored_sm(&record.submit)?;
    let (final_state, error) = match record.state {
        MessageState::Done { state } => (
            ReceiptState::from_u8(state)
                .map_or_else(|| format!("STATE{state}"), |s| s.stat_word().to_owned()),
            None,
        ),
        MessageState::Failed { status } => ("REJECTD".to_owned(), Some(status)),
        _ => return None,
    };
    let time = |ms: u64| rfc3339(UNIX_EPOCH + Duration::from_millis(ms));
    Some(GatewayCdr {
        cdr: CdrRecord {
            account: record.account.clone(),
            source_addr: sm.source_addr.to_string_lossy().into_owned(),
            destination_addr: sm.destination_addr.to_string_lossy().into_owned(),
            message_id: record.public_id(),
            parts: record.parts,
            data_coding: sm.data_coding,
            submit_time: time(record.accepted_ms),
            done_time: time(record.final_ms.unwrap_or(record.accepted_ms)),
            final_state,
            error,
            billing_identification: CdrRecord::billing_identification(&sm.tlvs),
        },
        upstream: record.upstream.as_ref().map(|u| u.connector.clone()),
        upstream_id: record.upstream.as_ref().map(|u| u.id.clone()),
        charge: format_money(record.charge),
    })
}

/// The gateway's CDR line: serve's fields, plus the upstream that took the
/// message and the charge.
#[derive(Debug, serde::Serialize)]
pub(crate) struct GatewayCdr {
    #[serde(flatten)]
    cdr: CdrRecord,
    upstream: Option<String>,
    upstream_id: Option<String>,
    /// The price charged, a decimal number as text (exact).
    charge: String,
}

/// Encodes a request body as a PDU (how the store keeps PDUs).
pub(crate) fn encode_request(body: Body) -> Option<Vec<u8>> {
    Pdu::request(SequenceNumber::new(1), body).to_vec().ok()
}

/// Decodes a stored PDU.
pub(crate) fn decode_stored(bytes: &[u8]) -> Option<Pdu> {
    let mut config = DecodeConfig::default();
    // Whatever we accepted once must read back.
    config.allow_oversize_strings = true;
    config.max_pdu_len = config.max_pdu_len.max(bytes.len());
    let frame: Bytes = BytesMut::from(bytes).freeze();
    decode_frame(frame, &config).ok()
}

/// The `submit_sm` (or `deliver_sm`, the same layout) of a stored PDU.
pub(crate) fn stored_sm(bytes: &[u8]) -> Option<SubmitSm> {
    match decode_stored(bytes)?.body {
        Body::SubmitSm(sm) | Body::DeliverSm(sm) => Some(*sm),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_make_different_ids_and_each_node_s_ids_spread_over_the_stripes() {
        let (a, b) = (IdMaker::new(Some(1)), IdMaker::new(Some(2)));
        let start = a.counter_above(0x1234_5678);
        let ids_a: Vec<u64> = (start..start + 1000).map(|c| a.make(c)).collect();
        let ids_b: Vec<u64> = (start..start + 1000).map(|c| b.make(c)).collect();
        assert!(ids_a.iter().all(|id| !ids_b.contains(id)), "no id twice");
        assert!(
            ids_a.iter().all(|id| *id > 0x1234_5678),
            "above what is stored"
        );
        assert_eq!(IdMaker::new(None).make(42), 42, "alone: the counter itself");
        // One node's ids share their low bits: the stripes must not.
        let stripes: std::collections::HashSet<usize> =
            ids_a.iter().map(|id| stripe(*id)).collect();
        assert!(
            stripes.len() > FINAL_STRIPES / 2,
            "{} stripes used",
            stripes.len()
        );
    }
}
