//! Time-driven ends: a forwarded message whose upstream receipt has not come
//! within the receipt timeout ends as `UNKNOWN` (with a receipt saying so,
//! if one was asked for); a message final for longer than the retention is
//! forgotten (its record, its id map entry), a batch at a time. Receipts
//! owed carry their own `deliver_sm`, so they do not need the record.

use std::sync::Arc;
use std::time::Duration;

use smpp_proto::message::receipt::{DeliveryReceipt, MessageState as ReceiptState};

use crate::node::{now_ms, Node};
use crate::store::{MessageState, Op};

/// Messages forgotten per write.
const BATCH: usize = 1000;

/// How often to look: often enough for short durations in tests, at most
/// once a minute.
fn interval(retention: Duration, receipt_timeout: Duration) -> Duration {
    (retention.min(receipt_timeout) / 2).clamp(Duration::from_millis(50), Duration::from_secs(60))
}

/// Ends the forwarded messages whose receipt is overdue: `UNKNOWN`.
async fn expire_overdue(node: &Arc<Node>) {
    loop {
        let now = now_ms();
        let overdue = match node.store.overdue(now, BATCH).await {
            Ok(overdue) => overdue,
            Err(e) => {
                tracing::warn!(error = %e, "receipt timeout: cannot read the store");
                return;
            }
        };
        let full = overdue.len() == BATCH;
        // Under the final-state locks of these messages, each read again:
        // a receipt may have finished one since the scan.
        let ids: Vec<u64> = overdue.iter().map(|r| r.id).collect();
        let _finals = node.final_locks(&ids).await;
        let mut ops = Vec::new();
        let mut owed = Vec::new();
        let mut finals = Vec::new();
        for id in ids {
            let mut record = match node.store.message(id).await {
                Ok(Some(record)) => record,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "receipt timeout: cannot read the store");
                    return;
                }
            };
            if record.state != MessageState::Forwarded {
                continue;
            }
            tracing::info!(id = record.id, "no receipt from upstream in time: UNKNOWN");
            record.state = MessageState::Done {
                state: ReceiptState::Unknown.to_u8(),
            };
            record.final_ms = Some(now);
            let mut receipt = DeliveryReceipt::new(String::new(), ReceiptState::Unknown);
            receipt.submit_date = Some(smpp_proto::message::time::receipt_date(record.accepted_ms));
            receipt.done_date = Some(smpp_proto::message::time::receipt_date(now));
            if let Some(o) = crate::receipts::owed_receipt(node, &record, &receipt) {
                ops.push(Op::PutReceipt(o.clone()));
                owed.push(o);
            }
            finals.push(record.clone());
            ops.push(Op::PutMessage(record));
        }
        if ops.is_empty() {
            return;
        }
        if let Err(e) = node.store.write(ops).await {
            tracing::warn!(error = %e, "receipt timeout: cannot store");
            return;
        }
        for record in &finals {
            node.write_cdr(record);
        }
        for o in owed {
            crate::outbox::queue(node, o);
        }
        if !full || node.stopped() {
            return;
        }
    }
}

/// Ends overdue messages and forgets final ones older than `retention`,
/// until the node stops.
pub(crate) async fn run(node: Arc<Node>, retention: Duration) {
    let limit = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
    while node.pause(interval(retention, node.receipt_timeout)).await {
        expire_overdue(&node).await;
        loop {
            let cutoff = now_ms().saturating_sub(limit);
            let old = match node.store.finished_before(cutoff, BATCH).await {
                Ok(old) => old,
                Err(e) => {
                    tracing::warn!(error = %e, "retention: cannot read the store");
                    break;
                }
            };
            let full = old.len() == BATCH;
            if old.is_empty() {
                break;
            }
            let count = old.len();
            let ops = old.into_iter().map(Op::DeleteMessage).collect();
            if let Err(e) = node.store.write(ops).await {
                tracing::warn!(error = %e, "retention: cannot delete");
                break;
            }
            tracing::debug!(count, "retention: messages forgotten");
            if !full || node.stopped() {
                break;
            }
        }
    }
}
