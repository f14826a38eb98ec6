//! The standard observer: counts everything into [`Metrics`] and, with a
//! CDR file, writes one billing record per message reaching its final state.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use smpp_proto::message::MessageState;

use crate::cdr::{hex, rfc3339, CdrRecord, CdrWriter};
use crate::metrics::Metrics;
use crate::observer::{BindEvent, FinalEvent, Observer, ReceiptEvent, RequestEvent};

/// Counts everything into [`Metrics`]; with a CDR file, writes one record per
/// message that reaches its final state.
#[derive(Debug)]
pub struct ServeObserver {
    metrics: Arc<Metrics>,
    cdr: Option<CdrWriter>,
}

impl ServeObserver {
    /// An observer counting into `metrics`, writing CDRs to `cdr` when given.
    pub fn new(metrics: Arc<Metrics>, cdr: Option<CdrWriter>) -> ServeObserver {
        ServeObserver { metrics, cdr }
    }
}

fn time_of(ms: u64) -> String {
    rfc3339(UNIX_EPOCH + Duration::from_millis(ms))
}

/// The CDR of one message in its final state (one record per destination of a
/// `submit_multi`, each billed on its own; one with an empty
/// `destination_addr` for a `broadcast_sm`, which has no address).
pub fn cdr_records(event: &FinalEvent<'_>) -> Vec<CdrRecord> {
    let billing = event.billing_identification.map(hex);
    let error = (event.error != 0).then_some(u32::from(event.error));
    let broadcast = [""];
    let destinations = if event.destinations.is_empty() {
        &broadcast[..]
    } else {
        &event.destinations[..]
    };
    destinations
        .iter()
        .map(|destination| CdrRecord {
            account: event.account.to_owned(),
            source_addr: event.source.to_owned(),
            destination_addr: (*destination).to_owned(),
            message_id: event.message_id.to_owned(),
            parts: event.parts,
            data_coding: event.data_coding,
            submit_time: time_of(event.submit_time_ms),
            done_time: time_of(event.done_time_ms),
            final_state: event.state.to_owned(),
            error,
            billing_identification: billing.clone(),
        })
        .collect()
}

impl Observer for ServeObserver {
    fn session_opened(&self, _connection: u64, _peer: Option<std::net::SocketAddr>) {
        self.metrics.session_opened();
    }

    fn session_closed(&self, _connection: u64, _account: Option<&str>) {
        self.metrics.session_closed();
    }

    fn bind(&self, event: &BindEvent<'_>) {
        self.metrics.bind(event.kind, event.status);
    }

    fn lockout(&self, _ip: std::net::IpAddr) {
        self.metrics.lockout();
    }

    fn bind_locked_out(&self, _ip: std::net::IpAddr) {
        self.metrics.bind_locked_out();
    }

    fn request(&self, event: &RequestEvent<'_>) {
        self.metrics
            .request(event.command, event.status, event.latency);
    }

    fn throttled(&self, _account: &str) {
        self.metrics.throttled();
    }

    fn receipt(&self, _account: &str, _message_id: &str, event: ReceiptEvent) {
        match event {
            ReceiptEvent::Queued => self.metrics.receipt_queued(),
            ReceiptEvent::Sent => self.metrics.receipt_sent(),
            // A retry is queued again: count the failed attempt, then the new wait.
            ReceiptEvent::Retrying => {
                self.metrics.receipt_failed();
                self.metrics.receipt_queued();
            }
            ReceiptEvent::Failed => self.metrics.receipt_failed(),
        }
    }

    fn final_state(&self, event: &FinalEvent<'_>) {
        self.metrics
            .final_state(MessageState::from_stat_word(event.state));
        if let Some(cdr) = &self.cdr {
            for record in cdr_records(event) {
                if let Err(e) = cdr.write(&record) {
                    tracing::error!(error = %e, message_id = event.message_id, "CDR not written");
                }
            }
        }
    }

    fn late_responses(&self) -> Option<Arc<std::sync::atomic::AtomicU64>> {
        Some(self.metrics.late_responses_counter())
    }

    fn tlvs_dropped(&self) -> Option<Arc<std::sync::atomic::AtomicU64>> {
        Some(self.metrics.tlvs_dropped_counter())
    }

    fn wants_final_states(&self) -> bool {
        // Only a CDR file needs every final state: it costs a timer entry and
        // a pending mark per message, kept across restarts. Without one, the
        // final-state counter of the metrics stays at zero.
        self.cdr.is_some()
    }
}
