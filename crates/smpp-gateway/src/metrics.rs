//! Prometheus counters of the gateway, per account and per connector,
//! rendered in the text exposition format on `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::accept::Refusal;
use crate::node::{lock, Node};
use crate::store::{MessageRecord, MessageState};

/// One account's counters.
#[derive(Debug, Default)]
struct AccountCounters {
    accepted: AtomicU64,
    parts: AtomicU64,
    refused: [AtomicU64; 6],
    /// Final states by stat word.
    finals: std::sync::Mutex<BTreeMap<&'static str, u64>>,
    charged_micros: AtomicU64,
}

const REFUSALS: [&str; 6] = [
    "no_route",
    "throttled",
    "queue_full",
    "quota_exhausted",
    "system",
    "loop",
];

fn refusal_index(r: Refusal) -> usize {
    match r {
        Refusal::NoRoute => 0,
        Refusal::Throttled => 1,
        Refusal::QueueFull => 2,
        Refusal::Exhausted(_) => 3,
        Refusal::System => 4,
        Refusal::Loop => 5,
    }
}

/// One account's counters, as the dashboard shows them.
#[derive(Debug, Clone)]
pub(crate) struct AccountSummary {
    pub(crate) account: String,
    pub(crate) accepted: u64,
    pub(crate) parts: u64,
    /// Final states by stat word.
    pub(crate) finals: Vec<(&'static str, u64)>,
}

/// The gateway's counters.
#[derive(Debug)]
pub(crate) struct Metrics {
    accounts: RwLock<BTreeMap<String, Arc<AccountCounters>>>,
    receipts_matched: AtomicU64,
    receipts_held: AtomicU64,
    /// Messages accepted by an upstream, all connectors (kept across
    /// connector changes).
    forwarded: AtomicU64,
    /// Time from a submission's arrival to its answer (durable or refused).
    pub(crate) accept_latency: smpp_server::metrics::LatencyHistogram,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        Metrics {
            accounts: RwLock::default(),
            receipts_matched: AtomicU64::new(0),
            receipts_held: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            accept_latency: smpp_server::metrics::LatencyHistogram::default(),
        }
    }

    /// A message an upstream accepted.
    pub(crate) fn forwarded(&self) {
        self.forwarded.fetch_add(1, Ordering::Relaxed);
    }

    /// What the dashboard charts: messages accepted (in) and forwarded
    /// (out), the accept times, refusals by reason.
    pub(crate) fn snapshot(&self, node: &Node) -> smpp_server::metrics::Snapshot {
        let mut snapshot = smpp_server::metrics::Snapshot {
            sessions_open: node.binds.total() as u64,
            messages_out: self.forwarded.load(Ordering::Relaxed),
            receipts_sent: self.receipts_matched.load(Ordering::Relaxed),
            receipts_pending: (lock(&node.outbox).len() + node.webhooks.len()) as u64,
            latency_buckets: self.accept_latency.buckets(),
            ..Default::default()
        };
        let accounts = self.accounts.read().unwrap_or_else(|e| e.into_inner());
        let mut refused = [0u64; REFUSALS.len()];
        for c in accounts.values() {
            snapshot.messages_in += c.accepted.load(Ordering::Relaxed);
            for (r, n) in refused.iter_mut().zip(c.refused.iter()) {
                *r += n.load(Ordering::Relaxed);
            }
        }
        snapshot.throttled = refused[1];
        snapshot.errors = REFUSALS
            .iter()
            .zip(refused)
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| (*name, n))
            .collect();
        snapshot
    }

    /// Each account's counters, read now.
    pub(crate) fn accounts(&self) -> Vec<AccountSummary> {
        let accounts = self.accounts.read().unwrap_or_else(|e| e.into_inner());
        accounts
            .iter()
            .map(|(name, c)| AccountSummary {
                account: name.clone(),
                accepted: c.accepted.load(Ordering::Relaxed),
                parts: c.parts.load(Ordering::Relaxed),
                finals: lock(&c.finals).iter().map(|(k, v)| (*k, *v)).collect(),
            })
            .collect()
    }

    fn account(&self, name: &str) -> Arc<AccountCounters> {
        if let Some(c) = self
            .accounts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return c.clone();
        }
        self.accounts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    pub(crate) fn accepted(&self, account: &str, messages: usize, parts: u32) {
        let c = self.account(account);
        c.accepted.fetch_add(messages as u64, Ordering::Relaxed);
        c.parts.fetch_add(u64::from(parts), Ordering::Relaxed);
    }

    pub(crate) fn refused(&self, account: &str, refusal: Refusal) {
        self.account(account).refused[refusal_index(refusal)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn receipt(&self, matched: bool) {
        let c = if matched {
            &self.receipts_matched
        } else {
            &self.receipts_held
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// A message became final.
    pub(crate) fn finished(&self, record: &MessageRecord) {
        let word = match record.state {
            MessageState::Done { state } => smpp_proto::message::MessageState::from_u8(state)
                .map_or("UNKNOWN", |s| s.stat_word()),
            MessageState::Failed { .. } => "REJECTD",
            _ => return,
        };
        let c = self.account(&record.account);
        *lock(&c.finals).entry(word).or_default() += 1;
        c.charged_micros
            .fetch_add(u64::try_from(record.charge).unwrap_or(0), Ordering::Relaxed);
    }

    /// The text exposition of everything, with `node`'s gauges.
    pub(crate) fn render(&self, node: &Node) -> String {
        let mut out = String::new();
        let accounts = self.accounts.read().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "# HELP smpp_gateway_messages_accepted_total Messages (submits, or HTTP message parts) accepted from customers.\n# TYPE smpp_gateway_messages_accepted_total counter");
        for (name, c) in accounts.iter() {
            let _ = writeln!(
                out,
                "smpp_gateway_messages_accepted_total{{account=\"{}\"}} {}",
                escape(name),
                c.accepted.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP smpp_gateway_parts_accepted_total SMS parts on the air accepted (what rates and charges count).\n# TYPE smpp_gateway_parts_accepted_total counter");
        for (name, c) in accounts.iter() {
            let _ = writeln!(
                out,
                "smpp_gateway_parts_accepted_total{{account=\"{}\"}} {}",
                escape(name),
                c.parts.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP smpp_gateway_messages_refused_total Messages refused at submission, by reason.\n# TYPE smpp_gateway_messages_refused_total counter");
        for (name, c) in accounts.iter() {
            for (i, reason) in REFUSALS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "smpp_gateway_messages_refused_total{{account=\"{}\",reason=\"{reason}\"}} {}",
                    escape(name),
                    c.refused[i].load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(out, "# HELP smpp_gateway_messages_final_total Messages that reached a final state, by state.\n# TYPE smpp_gateway_messages_final_total counter");
        for (name, c) in accounts.iter() {
            for (state, n) in lock(&c.finals).iter() {
                let _ = writeln!(
                    out,
                    "smpp_gateway_messages_final_total{{account=\"{}\",state=\"{state}\"}} {n}",
                    escape(name)
                );
            }
        }
        let _ = writeln!(out, "# HELP smpp_gateway_charged_total Money charged for final messages, in the currency's units.\n# TYPE smpp_gateway_charged_total counter");
        for (name, c) in accounts.iter() {
            let micros = c.charged_micros.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "smpp_gateway_charged_total{{account=\"{}\"}} {}",
                escape(name),
                micros as f64 / 1e6
            );
        }
        let _ = writeln!(out, "# HELP smpp_gateway_forwarded_total Messages accepted by an upstream.\n# TYPE smpp_gateway_forwarded_total counter");
        let topology = node.topologies.current();
        for c in &topology.connectors {
            let _ = writeln!(
                out,
                "smpp_gateway_forwarded_total{{connector=\"{}\"}} {}",
                escape(&c.name),
                c.forwarded.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP smpp_gateway_upstream_refused_total Messages refused for good by an upstream.\n# TYPE smpp_gateway_upstream_refused_total counter");
        for c in &topology.connectors {
            let _ = writeln!(
                out,
                "smpp_gateway_upstream_refused_total{{connector=\"{}\"}} {}",
                escape(&c.name),
                c.refused.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP smpp_gateway_upstream_binds Binds up per connector.\n# TYPE smpp_gateway_upstream_binds gauge");
        for c in &topology.connectors {
            let _ = writeln!(
                out,
                "smpp_gateway_upstream_binds{{connector=\"{}\"}} {}",
                escape(&c.name),
                c.bound()
            );
        }
        let gauges = [
            (
                "smpp_gateway_queued_messages",
                "Messages accepted and not yet forwarded.",
                node.forwarding_count() as u64,
            ),
            (
                "smpp_gateway_receipts_owed",
                "Receipts and MO owed to customers over SMPP.",
                lock(&node.outbox).len() as u64,
            ),
            (
                "smpp_gateway_webhooks_owed",
                "Receipts and MO owed to HTTP receivers.",
                node.webhooks.len() as u64,
            ),
            (
                "smpp_gateway_receipts_held",
                "Upstream receipts held until their id is known.",
                lock(&node.held).values().map(Vec::len).sum::<usize>() as u64,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let _ = writeln!(out, "# HELP smpp_gateway_upstream_receipts_total Receipts from upstreams: matched at once, or held first.\n# TYPE smpp_gateway_upstream_receipts_total counter");
        let _ = writeln!(
            out,
            "smpp_gateway_upstream_receipts_total{{outcome=\"matched\"}} {}",
            self.receipts_matched.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "smpp_gateway_upstream_receipts_total{{outcome=\"held\"}} {}",
            self.receipts_held.load(Ordering::Relaxed)
        );
        out
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
