//! Retention: a message final for longer than the retention is forgotten
//! (its record, its id map entry), a batch at a time. Receipts owed carry
//! their own `deliver_sm`, so they do not need the record.

use std::sync::Arc;
use std::time::Duration;

use crate::node::{now_ms, Node};
use crate::store::Op;

/// Messages forgotten per write.
const BATCH: usize = 1000;

/// How often to look: often enough for short retentions in tests, at most
/// once a minute.
fn interval(retention: Duration) -> Duration {
    (retention / 2).clamp(Duration::from_millis(50), Duration::from_secs(60))
}

/// Forgets final messages older than `retention`, until the node stops.
pub(crate) async fn run(node: Arc<Node>, retention: Duration) {
    let limit = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
    while node.pause(interval(retention)).await {
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
