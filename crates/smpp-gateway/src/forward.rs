//! Forwarding: a stored message goes to the first connector of its route
//! that has a bind up; the upstream's id is recorded against ours.
//!
//! - No connector of the route up: the message waits (it is durable) and
//!   is tried again with backoff, in the route's order.
//! - A temporary failure (throttled beyond the pool's retries, a dropped
//!   bind, a timeout): the next connector of the route, then backoff. A
//!   message whose submit was lost with its connection may have reached the
//!   upstream: sent again, it may be duplicated once, never lost.
//! - A permanent refusal (any other error status): the message fails, and
//!   the customer gets a failed receipt if it asked for one.

use std::sync::Arc;
use std::time::Duration;

use smpp_proto::message::receipt::{DeliveryReceipt, MessageState as ReceiptState};
use smpp_proto::pdu::CommandStatus;
use smpp_tokio::Error;

use crate::node::{stored_sm, Node};
use crate::store::{MessageRecord, MessageState, Op};

/// Temporary: worth trying again (elsewhere or later).
fn is_temporary(e: &Error) -> bool {
    match e {
        Error::Status(s) | Error::GenericNack(s) => {
            matches!(
                *s,
                CommandStatus::THROTTLED
                    | CommandStatus::MESSAGE_QUEUE_FULL
                    | CommandStatus::SYSTEM_ERROR
            )
        }
        _ => true,
    }
}

fn retry_delay(attempt: u32) -> Duration {
    Duration::from_millis(200)
        .saturating_mul(1 << attempt.min(5))
        .min(Duration::from_secs(5))
}

/// Forwards `record` until an upstream takes it, refuses it for good, or
/// the node stops (the message then stays in the store for the next start).
pub(crate) async fn forward(node: Arc<Node>, record: MessageRecord) {
    let Some(sm) = stored_sm(&record.submit) else {
        tracing::error!(id = record.id, "stored message unreadable; not forwarded");
        return;
    };
    let Some(route) = node
        .router
        .route(sm.destination_addr.to_string_lossy().as_ref())
    else {
        tracing::warn!(id = record.id, "no route for the destination");
        let status = CommandStatus::INVALID_DESTINATION_ADDRESS;
        return failed(&node, record, None, status).await;
    };
    let mut attempt = 0u32;
    loop {
        for &i in route {
            let connector = &node.connectors[i];
            if !connector.is_up() {
                continue;
            }
            match connector.pool.submit(sm.clone()).await {
                Ok(upstream_id) => {
                    let upstream_id = upstream_id.to_string_lossy().into_owned();
                    return forwarded(&node, record, i, upstream_id).await;
                }
                Err(e) if is_temporary(&e) => {
                    tracing::debug!(id = record.id, upstream = connector.name, error = %e, "not forwarded; trying on");
                }
                Err(Error::Status(status) | Error::GenericNack(status)) => {
                    tracing::info!(id = record.id, upstream = connector.name, %status, "refused upstream");
                    return failed(&node, record, Some(i), status).await;
                }
                Err(e) => {
                    tracing::debug!(id = record.id, upstream = connector.name, error = %e, "not forwarded");
                }
            }
        }
        if !node.pause(retry_delay(attempt)).await {
            return;
        }
        attempt = attempt.saturating_add(1);
    }
}

/// Records the upstream's id; then matches the receipts that came first.
async fn forwarded(
    node: &Arc<Node>,
    mut record: MessageRecord,
    connector: usize,
    upstream_id: String,
) {
    let c = &node.connectors[connector];
    let canonical = c.ids.canonical_submit(&upstream_id);
    record.state = MessageState::Forwarded {
        upstream: c.name.clone(),
        upstream_id,
    };
    let ops = vec![
        Op::PutMessage(record.clone()),
        Op::MapUpstream {
            upstream: c.name.clone(),
            upstream_id: canonical.clone(),
            message: record.id,
        },
    ];
    write_until_done(node, ops).await;
    crate::receipts::release_held(node, &c.name, &canonical).await;
}

/// Ends a message refused for good, with a failed receipt if asked for.
async fn failed(
    node: &Arc<Node>,
    mut record: MessageRecord,
    connector: Option<usize>,
    status: CommandStatus,
) {
    record.state = MessageState::Failed { status: status.0 };
    let mut ops = vec![Op::PutMessage(record.clone())];
    let mut receipt = DeliveryReceipt::new(String::new(), ReceiptState::Rejected);
    // `err:` carries the upstream's refusal: its command status, in hex.
    receipt.error = Some(format!("{:03X}", status.0));
    let owed = crate::receipts::owed_receipt(node, &record, &receipt);
    if let Some(owed) = &owed {
        ops.push(Op::PutReceipt(owed.clone()));
    }
    let upstream = connector.map(|i| node.connectors[i].name.as_str());
    tracing::debug!(id = record.id, ?upstream, "message failed");
    write_until_done(node, ops).await;
    if let Some(owed) = owed {
        crate::receipts::queue(node, owed);
    }
}

/// Writes `ops`, retrying a failing store until it works or the node stops
/// (what happened upstream cannot be undone: it must be recorded).
pub(crate) async fn write_until_done(node: &Node, ops: Vec<Op>) -> bool {
    let mut attempt = 0;
    loop {
        match node.store.write(ops.clone()).await {
            Ok(()) => return true,
            Err(e) => {
                tracing::error!(error = %e, attempt, "store write failed; retrying");
                if !node.pause(retry_delay(attempt)).await {
                    return false;
                }
                attempt += 1;
            }
        }
    }
}
