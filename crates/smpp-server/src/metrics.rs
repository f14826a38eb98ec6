//! Prometheus metrics of `smpp serve`: counters and gauges updated with
//! atomics on the hot path, rendered in the text exposition format 0.0.4.
//!
//! Label values come only from fixed sets (command and status names of the
//! specification, bind kinds, message states); ids and statuses without a
//! name are counted under `unknown` / `other`, so a peer cannot grow the
//! label sets without bound.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use smpp_proto::message::MessageState;
use smpp_proto::pdu::{CommandId, CommandStatus};
use smpp_proto::session::BindKind;

/// Upper bounds (seconds) of the latency histogram buckets.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Message states in `message_state` order (0..=9).
const STATES: [MessageState; 10] = [
    MessageState::Scheduled,
    MessageState::Enroute,
    MessageState::Delivered,
    MessageState::Expired,
    MessageState::Deleted,
    MessageState::Undeliverable,
    MessageState::Accepted,
    MessageState::Unknown,
    MessageState::Rejected,
    MessageState::Skipped,
];

/// The metrics of one server. Cheap to update from any task (`Send + Sync`);
/// share it in an `Arc`.
///
/// Receipts: call [`receipt_queued`](Metrics::receipt_queued) whenever a receipt
/// is stored for delivery (again when a failed one is queued for a retry), and
/// exactly one of [`receipt_sent`](Metrics::receipt_sent) /
/// [`receipt_failed`](Metrics::receipt_failed) per queued one; the
/// `smpp_receipts_pending` gauge is queued − sent − failed.
#[derive(Debug)]
pub struct Metrics {
    binds: Family<(&'static str, &'static str)>,
    sessions_open: AtomicU64,
    sessions_opened: AtomicU64,
    sessions_closed: AtomicU64,
    requests: ByCommand,
    /// Per command, in [`command_index`] order.
    latency: Box<[Histogram]>,
    pdus_out: ByCommand,
    receipts_queued: AtomicU64,
    receipts_sent: AtomicU64,
    receipts_failed: AtomicU64,
    throttled: AtomicU64,
    lockouts: AtomicU64,
    binds_locked_out: AtomicU64,
    /// Shared with the SMPP servers' sessions (`ServerConfig::late_responses`).
    late_responses: std::sync::Arc<AtomicU64>,
    /// Shared with the SMPP servers' sessions (`ServerConfig::tlvs_dropped`).
    tlvs_dropped: std::sync::Arc<AtomicU64>,
    final_states: [AtomicU64; 10],
}

/// What [`Metrics::snapshot`] reads: totals since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Connections open now.
    pub sessions_open: u64,
    /// Messages received (`submit_sm`, `data_sm`, `submit_multi` requests).
    pub messages_in: u64,
    /// Messages delivered to ESMEs (`deliver_sm`, `data_sm` they accepted).
    pub messages_out: u64,
    /// Receipts delivered.
    pub receipts_sent: u64,
    /// Receipts waiting.
    pub receipts_pending: u64,
    /// Requests refused with `ESME_RTHROTTLED`.
    pub throttled: u64,
    /// Requests answered with an error, by status name, most first.
    pub errors: Vec<(&'static str, u64)>,
    /// Message requests per latency bucket ([`Snapshot::LATENCY_BOUNDS`],
    /// then one beyond the last).
    pub latency_buckets: [u64; LATENCY_BUCKETS.len() + 1],
}

impl Snapshot {
    /// The latency buckets' upper bounds, in seconds.
    pub const LATENCY_BOUNDS: [f64; 14] = LATENCY_BUCKETS;

    /// The `q` quantile (0-1) of the latencies counted in `buckets` (the
    /// difference of two snapshots' buckets), as the upper bound of its
    /// bucket in milliseconds; `None` when nothing was counted.
    pub fn latency_quantile(buckets: &[u64], q: f64) -> Option<f64> {
        let total: u64 = buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let bound = LATENCY_BUCKETS.get(i).copied().unwrap_or(20.0);
                return Some(bound * 1000.0);
            }
        }
        None
    }
}

/// Counters by label set, created on first use.
#[derive(Debug)]
struct Family<K> {
    counters: RwLock<BTreeMap<K, AtomicU64>>,
}

impl<K> Default for Family<K> {
    fn default() -> Self {
        Family {
            counters: RwLock::new(BTreeMap::new()),
        }
    }
}

impl<K: Ord + Copy> Family<K> {
    fn inc(&self, key: K) {
        {
            let map = self.counters.read().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = map.get(&key) {
                c.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut map = self.counters.write().unwrap_or_else(|e| e.into_inner());
        map.entry(key)
            .or_insert_with(|| AtomicU64::new(0))
            .fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Vec<(K, u64)> {
        let map = self.counters.read().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .map(|(k, v)| (*k, v.load(Ordering::Relaxed)))
            .collect()
    }
}

/// The commands of the specification, then `unknown`.
const COMMANDS: usize = CommandId::ALL.len() + 1;
/// The statuses of the specification, then `other`.
const STATUSES: usize = CommandStatus::ALL.len() + 1;

/// A command's place in the dense tables ([`CommandId::index`]), or the
/// last one (`unknown`).
fn command_index(id: CommandId) -> usize {
    id.index().unwrap_or(COMMANDS - 1)
}

/// A status's place ([`CommandStatus::index`]), or the last one (`other`).
fn status_index(status: CommandStatus) -> usize {
    status.index().unwrap_or(STATUSES - 1)
}

fn command_name(i: usize) -> &'static str {
    CommandId::ALL
        .get(i)
        .and_then(|c| c.name())
        .unwrap_or("unknown")
}

fn status_name(i: usize) -> &'static str {
    CommandStatus::ALL
        .get(i)
        .and_then(|s| s.name())
        .unwrap_or("other")
}

/// Counters by (command, status): one atomic each in a dense table, so
/// the request path counts with one relaxed add, without a lock or a
/// lookup by name.
#[derive(Debug)]
struct ByCommand {
    cells: Box<[AtomicU64]>,
}

impl Default for ByCommand {
    fn default() -> Self {
        ByCommand {
            cells: (0..COMMANDS * STATUSES)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }
}

impl ByCommand {
    fn inc(&self, id: CommandId, status: CommandStatus) {
        self.cells[command_index(id) * STATUSES + status_index(status)]
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The counted label pairs, in label order (as Prometheus users read
    /// them), with their counts.
    fn snapshot(&self) -> Vec<((&'static str, &'static str), u64)> {
        let mut out: Vec<_> = self
            .cells
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let v = c.load(Ordering::Relaxed);
                (v > 0).then(|| ((command_name(i / STATUSES), status_name(i % STATUSES)), v))
            })
            .collect();
        out.sort_unstable();
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            binds: Family::default(),
            sessions_open: AtomicU64::new(0),
            sessions_opened: AtomicU64::new(0),
            sessions_closed: AtomicU64::new(0),
            requests: ByCommand::default(),
            latency: (0..COMMANDS).map(|_| Histogram::default()).collect(),
            pdus_out: ByCommand::default(),
            receipts_queued: AtomicU64::new(0),
            receipts_sent: AtomicU64::new(0),
            receipts_failed: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            lockouts: AtomicU64::new(0),
            binds_locked_out: AtomicU64::new(0),
            late_responses: std::sync::Arc::default(),
            tlvs_dropped: std::sync::Arc::default(),
            final_states: Default::default(),
        }
    }
}

#[derive(Debug, Default)]
struct Histogram {
    /// Per bucket (not cumulative); the last one is +Inf.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // No count of its own: the buckets' sum is the count (one shared
        // add fewer per request, and `_count` always equals `+Inf`).
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// A latency histogram on the buckets of [`Snapshot::latency_buckets`],
/// for components that keep their own (the gateway's accept time).
#[derive(Debug, Default)]
pub struct LatencyHistogram(Histogram);

impl LatencyHistogram {
    /// Counts one latency.
    pub fn observe(&self, d: Duration) {
        self.0.observe(d);
    }

    /// The counts per bucket, as [`Snapshot::latency_buckets`] has them.
    pub fn buckets(&self) -> [u64; LATENCY_BUCKETS.len() + 1] {
        let mut out = [0; LATENCY_BUCKETS.len() + 1];
        for (o, b) in out.iter_mut().zip(self.0.buckets.iter()) {
            *o = b.load(Ordering::Relaxed);
        }
        out
    }
}

fn status_label(status: CommandStatus) -> &'static str {
    status.name().unwrap_or("other")
}

fn kind_label(kind: BindKind) -> &'static str {
    match kind {
        BindKind::Transmitter => "transmitter",
        BindKind::Receiver => "receiver",
        BindKind::Transceiver => "transceiver",
    }
}

impl Metrics {
    /// A bind request of `kind` answered with `status`.
    pub fn bind(&self, kind: BindKind, status: CommandStatus) {
        self.binds.inc((kind_label(kind), status_label(status)));
    }

    /// A connection was accepted.
    pub fn session_opened(&self) {
        self.sessions_opened.fetch_add(1, Ordering::Relaxed);
        self.sessions_open.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection ended (call once per [`session_opened`](Metrics::session_opened)).
    pub fn session_closed(&self) {
        self.sessions_closed.fetch_add(1, Ordering::Relaxed);
        // Saturating: an unmatched call must not wrap the gauge.
        let _ = self
            .sessions_open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
    }

    /// A request from a peer, answered with `status` after `latency`.
    pub fn request(&self, id: CommandId, status: CommandStatus, latency: Duration) {
        self.requests.inc(id, status);
        self.latency[command_index(id)].observe(latency);
    }

    /// A PDU we sent (a request such as deliver_sm, or a response).
    pub fn pdu_out(&self, id: CommandId, status: CommandStatus) {
        self.pdus_out.inc(id, status);
    }

    /// A delivery receipt was queued for delivery.
    pub fn receipt_queued(&self) {
        self.receipts_queued.fetch_add(1, Ordering::Relaxed);
    }

    /// A queued receipt was delivered (the ESME answered OK).
    pub fn receipt_sent(&self) {
        self.receipts_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// A queued receipt's delivery failed (error status, timeout, no session).
    pub fn receipt_failed(&self) {
        self.receipts_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// A request was refused with `ESME_RTHROTTLED`.
    pub fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// An address was locked out after too many failed binds.
    pub fn lockout(&self) {
        self.lockouts.fetch_add(1, Ordering::Relaxed);
    }

    /// A bind was refused because its address is locked out.
    pub fn bind_locked_out(&self) {
        self.binds_locked_out.fetch_add(1, Ordering::Relaxed);
    }

    /// The counter the servers' sessions add their late responses to
    /// (answers to our deliver_sm that came after it had timed out).
    pub fn late_responses_counter(&self) -> std::sync::Arc<AtomicU64> {
        self.late_responses.clone()
    }

    /// The counter the servers' sessions add the TLVs they left out to
    /// (an ESME's SMPP version could not take them).
    pub fn tlvs_dropped_counter(&self) -> std::sync::Arc<AtomicU64> {
        self.tlvs_dropped.clone()
    }

    /// A message reached `state` (a final state, normally).
    pub fn final_state(&self, state: MessageState) {
        let i = usize::from(state.to_u8()).min(STATES.len() - 1);
        self.final_states[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Receipts queued and not yet sent or failed.
    pub fn receipts_pending(&self) -> u64 {
        let queued = self.receipts_queued.load(Ordering::Relaxed);
        let done = self.receipts_sent.load(Ordering::Relaxed)
            + self.receipts_failed.load(Ordering::Relaxed);
        queued.saturating_sub(done)
    }

    /// Open sessions.
    pub fn sessions_open(&self) -> u64 {
        self.sessions_open.load(Ordering::Relaxed)
    }

    /// The counters a dashboard shows, read now.
    pub fn snapshot(&self) -> Snapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut snapshot = Snapshot {
            sessions_open: self.sessions_open(),
            receipts_sent: load(&self.receipts_sent),
            receipts_pending: self.receipts_pending(),
            throttled: load(&self.throttled),
            ..Snapshot::default()
        };
        for ((command, status), v) in self.requests.snapshot() {
            if matches!(command, "submit_sm" | "data_sm" | "submit_multi") {
                snapshot.messages_in += v;
            }
            if status != "ESME_ROK" {
                match snapshot.errors.iter_mut().find(|(s, _)| *s == status) {
                    Some((_, n)) => *n += v,
                    None => snapshot.errors.push((status, v)),
                }
            }
        }
        for ((command, status), v) in self.pdus_out.snapshot() {
            if matches!(command, "deliver_sm" | "data_sm") && status == "ESME_ROK" {
                snapshot.messages_out += v;
            }
        }
        snapshot.errors.sort_by_key(|e| std::cmp::Reverse(e.1));
        for (i, h) in self.latency.iter().enumerate() {
            if matches!(command_name(i), "submit_sm" | "data_sm" | "submit_multi") {
                for (i, b) in h.buckets.iter().enumerate() {
                    snapshot.latency_buckets[i] += load(b);
                }
            }
        }
        snapshot
    }

    /// Everything in the Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);

        header(
            &mut out,
            "smpp_binds_total",
            "counter",
            "Bind requests by kind and answer status.",
        );
        for ((kind, status), v) in self.binds.snapshot() {
            let _ = writeln!(
                out,
                "smpp_binds_total{{kind=\"{kind}\",status=\"{status}\"}} {v}"
            );
        }
        simple(
            &mut out,
            "smpp_sessions_open",
            "gauge",
            "Connections open now.",
            self.sessions_open(),
        );
        simple(
            &mut out,
            "smpp_sessions_opened_total",
            "counter",
            "Connections accepted.",
            load(&self.sessions_opened),
        );
        simple(
            &mut out,
            "smpp_sessions_closed_total",
            "counter",
            "Connections ended.",
            load(&self.sessions_closed),
        );

        header(
            &mut out,
            "smpp_requests_total",
            "counter",
            "Requests received, by command and the status answered.",
        );
        for ((command, status), v) in self.requests.snapshot() {
            let _ = writeln!(
                out,
                "smpp_requests_total{{command=\"{command}\",status=\"{status}\"}} {v}"
            );
        }

        header(
            &mut out,
            "smpp_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to its answer, by command.",
        );
        {
            // Commands seen, in name order.
            let mut seen: Vec<(&str, &Histogram)> = self
                .latency
                .iter()
                .enumerate()
                .filter(|(_, h)| h.buckets.iter().any(|b| load(b) > 0))
                .map(|(i, h)| (command_name(i), h))
                .collect();
            seen.sort_unstable_by_key(|(name, _)| *name);
            for (command, h) in seen {
                let mut cumulative = 0;
                for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                    cumulative += load(&h.buckets[i]);
                    let _ = writeln!(
                        out,
                        "smpp_request_duration_seconds_bucket{{command=\"{command}\",le=\"{bound}\"}} {cumulative}"
                    );
                }
                cumulative += load(&h.buckets[LATENCY_BUCKETS.len()]);
                let _ = writeln!(
                    out,
                    "smpp_request_duration_seconds_bucket{{command=\"{command}\",le=\"+Inf\"}} {cumulative}"
                );
                let sum = load(&h.sum_nanos) as f64 / 1e9;
                let _ = writeln!(
                    out,
                    "smpp_request_duration_seconds_sum{{command=\"{command}\"}} {sum}"
                );
                let _ = writeln!(
                    out,
                    "smpp_request_duration_seconds_count{{command=\"{command}\"}} {cumulative}"
                );
            }
        }

        header(
            &mut out,
            "smpp_pdus_out_total",
            "counter",
            "PDUs sent, by command and status.",
        );
        for ((command, status), v) in self.pdus_out.snapshot() {
            let _ = writeln!(
                out,
                "smpp_pdus_out_total{{command=\"{command}\",status=\"{status}\"}} {v}"
            );
        }

        simple(
            &mut out,
            "smpp_receipts_queued_total",
            "counter",
            "Delivery receipts queued for delivery (retries included).",
            load(&self.receipts_queued),
        );
        simple(
            &mut out,
            "smpp_receipts_sent_total",
            "counter",
            "Delivery receipts delivered to an ESME.",
            load(&self.receipts_sent),
        );
        simple(
            &mut out,
            "smpp_receipts_failed_total",
            "counter",
            "Delivery receipt attempts that failed.",
            load(&self.receipts_failed),
        );
        simple(
            &mut out,
            "smpp_receipts_pending",
            "gauge",
            "Delivery receipts queued and not yet sent or failed.",
            self.receipts_pending(),
        );
        simple(
            &mut out,
            "smpp_throttled_total",
            "counter",
            "Requests refused with ESME_RTHROTTLED.",
            load(&self.throttled),
        );
        simple(
            &mut out,
            "smpp_late_responses_total",
            "counter",
            "Responses from ESMEs (deliver_sm_resp...) that came after their request timed out.",
            load(&self.late_responses),
        );
        simple(
            &mut out,
            "smpp_tlvs_dropped_total",
            "counter",
            "TLVs left out of PDUs sent to ESMEs whose SMPP version cannot take them (none to 3.3, none of 5.0's to 3.4).",
            load(&self.tlvs_dropped),
        );
        simple(
            &mut out,
            "smpp_bind_lockouts_total",
            "counter",
            "Addresses locked out after too many failed binds.",
            load(&self.lockouts),
        );
        simple(
            &mut out,
            "smpp_binds_locked_out_total",
            "counter",
            "Binds refused because their address was locked out.",
            load(&self.binds_locked_out),
        );

        header(
            &mut out,
            "smpp_messages_final_total",
            "counter",
            "Messages that reached a state, by state.",
        );
        for (state, counter) in STATES.iter().zip(&self.final_states) {
            let _ = writeln!(
                out,
                "smpp_messages_final_total{{state=\"{}\"}} {}",
                state.stat_word(),
                load(counter)
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn simple(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample `name_and_labels` (exact match of everything before the value).
    fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.rsplit_once(' ').filter(|(k, _)| *k == name_and_labels))
            .and_then(|(_, v)| v.parse().ok())
    }

    #[test]
    fn every_named_command_and_status_has_its_own_cell() {
        for &c in CommandId::ALL {
            assert_eq!(Some(command_name(command_index(c))), c.name(), "{c:?}");
        }
        for &s in CommandStatus::ALL {
            assert_eq!(Some(status_name(status_index(s))), s.name(), "{s:?}");
        }
        for id in [0x0000_0200, 0x8000_0115, 0x0000_000A, 0x1234_5678, u32::MAX] {
            assert_eq!(CommandId(id).name(), None);
            assert_eq!(command_name(command_index(CommandId(id))), "unknown");
        }
        for v in [0x0000_0113, 0x0000_011F, 0x0000_0120, 0x0000_0400, u32::MAX] {
            assert_eq!(CommandStatus(v).name(), None);
            assert_eq!(status_name(status_index(CommandStatus(v))), "other");
        }
    }

    #[test]
    fn counters_move() {
        let m = Metrics::default();
        m.bind(BindKind::Transceiver, CommandStatus::OK);
        m.bind(BindKind::Transceiver, CommandStatus::OK);
        m.bind(BindKind::Receiver, CommandStatus::INVALID_PASSWORD);
        m.session_opened();
        m.session_opened();
        m.session_closed();
        m.request(
            CommandId::SUBMIT_SM,
            CommandStatus::OK,
            Duration::from_micros(700),
        );
        m.request(
            CommandId::SUBMIT_SM,
            CommandStatus::THROTTLED,
            Duration::from_millis(30),
        );
        m.pdu_out(CommandId::DELIVER_SM, CommandStatus::OK);
        m.receipt_queued();
        m.receipt_queued();
        m.receipt_queued();
        m.receipt_sent();
        m.receipt_failed();
        m.throttled();
        m.lockout();
        m.bind_locked_out();
        m.bind_locked_out();
        m.late_responses_counter().fetch_add(3, Ordering::Relaxed);
        m.tlvs_dropped_counter().fetch_add(2, Ordering::Relaxed);
        m.final_state(MessageState::Delivered);
        m.final_state(MessageState::Undeliverable);
        m.final_state(MessageState::Delivered);
        let t = m.render();
        let s = |k: &str| sample(&t, k).unwrap_or_else(|| panic!("{k} missing in\n{t}"));
        assert_eq!(s("smpp_bind_lockouts_total"), 1.0);
        assert_eq!(s("smpp_binds_locked_out_total"), 2.0);
        assert_eq!(s("smpp_late_responses_total"), 3.0);
        assert_eq!(s("smpp_tlvs_dropped_total"), 2.0);
        assert_eq!(
            s("smpp_binds_total{kind=\"transceiver\",status=\"ESME_ROK\"}"),
            2.0
        );
        assert_eq!(
            s("smpp_binds_total{kind=\"receiver\",status=\"ESME_RINVPASWD\"}"),
            1.0
        );
        assert_eq!(s("smpp_sessions_open"), 1.0);
        assert_eq!(s("smpp_sessions_opened_total"), 2.0);
        assert_eq!(
            s("smpp_requests_total{command=\"submit_sm\",status=\"ESME_ROK\"}"),
            1.0
        );
        assert_eq!(
            s("smpp_requests_total{command=\"submit_sm\",status=\"ESME_RTHROTTLED\"}"),
            1.0
        );
        assert_eq!(
            s("smpp_request_duration_seconds_bucket{command=\"submit_sm\",le=\"0.0005\"}"),
            0.0
        );
        assert_eq!(
            s("smpp_request_duration_seconds_bucket{command=\"submit_sm\",le=\"0.001\"}"),
            1.0
        );
        assert_eq!(
            s("smpp_request_duration_seconds_bucket{command=\"submit_sm\",le=\"0.05\"}"),
            2.0
        );
        assert_eq!(
            s("smpp_request_duration_seconds_bucket{command=\"submit_sm\",le=\"+Inf\"}"),
            2.0
        );
        assert_eq!(
            s("smpp_request_duration_seconds_count{command=\"submit_sm\"}"),
            2.0
        );
        assert!(
            (s("smpp_request_duration_seconds_sum{command=\"submit_sm\"}") - 0.0307).abs() < 1e-9
        );
        assert_eq!(
            s("smpp_pdus_out_total{command=\"deliver_sm\",status=\"ESME_ROK\"}"),
            1.0
        );
        assert_eq!(s("smpp_receipts_queued_total"), 3.0);
        assert_eq!(s("smpp_receipts_pending"), 1.0);
        assert_eq!(s("smpp_throttled_total"), 1.0);
        assert_eq!(s("smpp_messages_final_total{state=\"DELIVRD\"}"), 2.0);
        assert_eq!(s("smpp_messages_final_total{state=\"UNDELIV\"}"), 1.0);
        assert_eq!(s("smpp_messages_final_total{state=\"EXPIRED\"}"), 0.0);
    }

    #[test]
    fn gauges_never_wrap() {
        let m = Metrics::default();
        m.session_closed();
        m.receipt_sent();
        assert_eq!(m.sessions_open(), 0);
        assert_eq!(m.receipts_pending(), 0);
    }

    #[test]
    fn unknown_ids_share_one_label() {
        let m = Metrics::default();
        for id in 0x0100_0000..0x0100_0100u32 {
            m.request(
                CommandId(id),
                CommandStatus(0x0400_0000 + id),
                Duration::ZERO,
            );
        }
        let t = m.render();
        assert_eq!(
            sample(
                &t,
                "smpp_requests_total{command=\"unknown\",status=\"other\"}"
            ),
            Some(256.0)
        );
        assert_eq!(t.matches("smpp_requests_total{").count(), 1);
    }

    #[test]
    fn exposition_format_is_well_formed() {
        let m = Metrics::default();
        m.request(
            CommandId::ENQUIRE_LINK,
            CommandStatus::OK,
            Duration::from_secs(20),
        );
        let t = m.render();
        let mut typed = std::collections::HashSet::new();
        for line in t.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE line");
                assert!(name.starts_with("smpp_"));
                assert!(["counter", "gauge", "histogram"].contains(&kind));
                assert!(typed.insert(name.to_string()), "{name} typed twice");
            } else if !line.starts_with("# HELP ") {
                let (key, value) = line.rsplit_once(' ').expect("sample line");
                assert!(key.starts_with("smpp_"), "{line}");
                let family = key.split('{').next().unwrap_or(key);
                let base = family
                    .strip_suffix("_bucket")
                    .or_else(|| family.strip_suffix("_sum"))
                    .or_else(|| family.strip_suffix("_count"))
                    .filter(|b| typed.contains(*b))
                    .unwrap_or(family);
                assert!(typed.contains(base), "{line}: no TYPE before it");
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
        assert!(t.ends_with('\n'));
        // 20 s is above the last bound: only +Inf has it.
        assert_eq!(
            sample(
                &t,
                "smpp_request_duration_seconds_bucket{command=\"enquire_link\",le=\"10\"}"
            ),
            Some(0.0)
        );
    }
}
