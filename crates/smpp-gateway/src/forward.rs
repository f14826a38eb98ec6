//! Forwarding: each route has a queue of stored messages, in the order they
//! were accepted, and a dispatcher that sends them, [`IN_FLIGHT`] at a time,
//! to the first connector of the route that has a bind up; the upstream's id
//! is then recorded against ours.
//!
//! - No connector of the route up: the queue waits (its messages are
//!   durable) and is looked at again with backoff; they go, in order, when
//!   one comes back.
//! - A temporary failure (throttled beyond the pool's retries, a dropped
//!   bind, a timeout, `ESME_RSYSERR`, `ESME_RINVBNDSTS` from an upstream
//!   that is unbinding, `ESME_RX_T_APPN`): the next connector of the route; when
//!   none took it, the message goes back to the head of its queue and the
//!   queue pauses (backoff). A message whose submit was lost with its
//!   connection may have reached the upstream: sent again, it may be
//!   duplicated once, never lost.
//! - A permanent refusal (any other error status): the message fails, and
//!   the customer gets a failed receipt (`REJECTD`, the status in `err:`)
//!   if it asked for one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smpp_proto::message::receipt::{DeliveryReceipt, MessageState as ReceiptState};
use smpp_proto::pdu::CommandStatus;
use smpp_proto::session::SendError;
use smpp_tokio::Error;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::node::{lock, stored_sm, Node};
use crate::store::{MessageRecord, MessageState, Op, UpstreamRef};
use crate::topology::Topology;
use crate::upstream::Connector;

/// Submits under way per route at most (each connector's pool has its own
/// window; this bounds the tasks).
pub(crate) const IN_FLIGHT: usize = 512;

/// One route's queue.
#[derive(Debug, Default)]
pub(crate) struct RouteQueue {
    waiting: Mutex<Waiting>,
    wake: Notify,
    /// No new submit before this (after a message no connector took).
    paused_until: Mutex<Option<Instant>>,
    /// Messages no connector took since the last one forwarded (the pause grows with it).
    misses: AtomicU32,
}

#[derive(Debug, Default)]
struct Waiting {
    records: VecDeque<MessageRecord>,
    /// The routes changed: this queue takes nothing more.
    retired: bool,
}

impl RouteQueue {
    /// Queues `record` at the back; given back when the queue is retired.
    fn push_back(&self, record: MessageRecord) -> Option<MessageRecord> {
        let mut waiting = lock(&self.waiting);
        if waiting.retired {
            return Some(record);
        }
        waiting.records.push_back(record);
        drop(waiting);
        self.wake.notify_one();
        None
    }

    /// A message no connector took: back at the head, and the queue
    /// pauses, longer each time in a row. Given back when the queue is
    /// retired.
    fn put_back(&self, record: MessageRecord) -> Option<MessageRecord> {
        let mut waiting = lock(&self.waiting);
        if waiting.retired {
            return Some(record);
        }
        let misses = self.misses.fetch_add(1, Ordering::AcqRel);
        waiting.records.push_front(record);
        drop(waiting);
        *lock(&self.paused_until) = Some(Instant::now() + retry_delay(misses));
        self.wake.notify_one();
        None
    }

    /// Takes nothing more; returns what waits, in order (its dispatcher stops).
    pub(crate) fn retire(&self) -> VecDeque<MessageRecord> {
        let mut waiting = lock(&self.waiting);
        waiting.retired = true;
        let records = std::mem::take(&mut waiting.records);
        drop(waiting);
        self.wake.notify_one();
        records
    }

    /// The ids of what waits.
    pub(crate) fn ids(&self) -> Vec<u64> {
        lock(&self.waiting).records.iter().map(|r| r.id).collect()
    }

    /// Takes out what waits (the queue goes on).
    fn drain(&self) -> VecDeque<MessageRecord> {
        std::mem::take(&mut lock(&self.waiting).records)
    }

    fn is_retired(&self) -> bool {
        lock(&self.waiting).retired
    }

    fn pop_front(&self) -> Option<MessageRecord> {
        lock(&self.waiting).records.pop_front()
    }

    /// How many messages wait here.
    pub(crate) fn len(&self) -> usize {
        lock(&self.waiting).records.len()
    }

    fn is_empty(&self) -> bool {
        lock(&self.waiting).records.is_empty()
    }

    /// Takes message `id` out with its place, if it waits here.
    fn take(&self, id: u64) -> Option<(usize, MessageRecord)> {
        let mut waiting = lock(&self.waiting);
        let at = waiting.records.iter().position(|r| r.id == id)?;
        Some((at, waiting.records.remove(at)?))
    }

    /// Puts a message taken out back at `at` (or the end); given back when
    /// the queue is retired.
    fn insert(&self, at: usize, record: MessageRecord) -> Option<MessageRecord> {
        let mut waiting = lock(&self.waiting);
        if waiting.retired {
            return Some(record);
        }
        let at = at.min(waiting.records.len());
        waiting.records.insert(at, record);
        drop(waiting);
        self.wake.notify_one();
        None
    }

    /// Takes message `id` out, if it waits here.
    fn remove(&self, id: u64) -> Option<MessageRecord> {
        let mut waiting = lock(&self.waiting);
        let at = waiting.records.iter().position(|r| r.id == id)?;
        waiting.records.remove(at)
    }
}

/// Takes out the messages waiting on routes none of whose connectors has
/// a bind up here (nodes sharing a database hand them to a node that has
/// one); they no longer count as pending here.
pub(crate) fn take_stranded(node: &Node, topology: &Topology) -> Vec<MessageRecord> {
    let mut stranded = Vec::new();
    for route in 0..topology.queues.len() {
        let list = topology.router.list(route);
        if list.iter().any(|&i| topology.connectors[i].is_up()) {
            continue;
        }
        stranded.extend(topology.queues[route].drain());
    }
    node.pending.fetch_sub(stranded.len(), Ordering::AcqRel);
    stranded
}

/// Queues a stored message on `route` of `topology` (counted in
/// `Node::forwarding_count` until it is forwarded or failed).
pub(crate) fn enqueue(node: &Arc<Node>, topology: &Topology, route: usize, record: MessageRecord) {
    node.pending.fetch_add(1, Ordering::AcqRel);
    if let Some(record) = topology.queues[route].push_back(record) {
        requeue(node, record);
    }
}

/// Routes a pending message again with the routes in force and queues it
/// there (the routes changed while it waited); one no route matches any
/// more fails.
pub(crate) fn requeue(node: &Arc<Node>, mut record: MessageRecord) {
    loop {
        let topology = node.topologies.current();
        let Some(route) = topology.route_of(&record) else {
            tracing::warn!(id = record.id, "no route for the destination any more");
            let node = node.clone();
            tokio::spawn(async move {
                failed(&node, record, CommandStatus::INVALID_DESTINATION_ADDRESS).await;
            });
            return;
        };
        match topology.queues[route].push_back(record) {
            None => return,
            // Retired between the two reads: the next topology is in force.
            Some(back) => record = back,
        }
    }
}

/// Ends a message that cannot be queued (no route, unreadable).
pub(crate) async fn unroutable(node: Arc<Node>, record: MessageRecord) {
    tracing::warn!(id = record.id, "no route for the destination");
    node.pending.fetch_add(1, Ordering::AcqRel);
    failed(&node, record, CommandStatus::INVALID_DESTINATION_ADDRESS).await;
}

fn retry_delay(attempt: u32) -> Duration {
    Duration::from_millis(200)
        .saturating_mul(1 << attempt.min(5))
        .min(Duration::from_secs(5))
}

/// Temporary: worth trying again (elsewhere or later).
fn is_temporary(e: &Error) -> bool {
    match e {
        // ESME_RINVBNDSTS: the bind is not (or no longer) one that may
        // submit, as while the upstream unbinds it: another bind may.
        Error::Status(s) | Error::GenericNack(s) => matches!(
            *s,
            CommandStatus::THROTTLED
                | CommandStatus::MESSAGE_QUEUE_FULL
                | CommandStatus::SYSTEM_ERROR
                | CommandStatus::INVALID_BIND_STATUS
                | CommandStatus::RECEIVER_TEMPORARY_ERROR
        ),
        _ => true,
    }
}

/// Counts a submit under way (of message `.1`) while it lives.
struct Submitting(Arc<Node>, u64);

impl Submitting {
    fn new(node: &Arc<Node>, id: u64) -> Submitting {
        node.submitting.fetch_add(1, Ordering::AcqRel);
        lock(&node.in_submit).insert(id);
        Submitting(node.clone(), id)
    }
}

impl Drop for Submitting {
    fn drop(&mut self) {
        lock(&self.0.in_submit).remove(&self.1);
        self.0.submitting.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The dispatcher of route `route` of `topology`: sends its queue's
/// messages in order, [`IN_FLIGHT`] at a time, while one of its connectors
/// is up, until the queue is retired.
pub(crate) async fn dispatch(node: Arc<Node>, topology: Arc<Topology>, route: usize) {
    let queue = &topology.queues[route];
    let list = topology.router.list(route);
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut attempt = 0u32;
    while !node.stopped() && !queue.is_retired() {
        if queue.is_empty() {
            tokio::select! {
                () = queue.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        let paused = lock(&queue.paused_until).take();
        if let Some(until) = paused.filter(|u| *u > Instant::now()) {
            tokio::time::sleep_until(until).await;
            continue;
        }
        if !list.iter().any(|&i| topology.connectors[i].is_up()) {
            if !node.pause(retry_delay(attempt)).await {
                return;
            }
            attempt = attempt.saturating_add(1);
            continue;
        }
        attempt = 0;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Some(record) = queue.pop_front() else {
            continue;
        };
        let guard = Submitting::new(&node, record.id);
        let topology = topology.clone();
        tokio::spawn(async move {
            let node = guard.0.clone();
            submit(&node, &topology, route, record).await;
            drop((permit, guard));
        });
    }
}

/// Offers `record` to the route's connectors that are up, in order.
async fn submit(node: &Arc<Node>, topology: &Topology, route: usize, record: MessageRecord) {
    let Some(sm) = stored_sm(&record.submit) else {
        tracing::error!(id = record.id, "stored message unreadable; not forwarded");
        node.pending.fetch_sub(1, Ordering::AcqRel);
        return;
    };
    // Connectors up, and those whose upstream's SMPP version cannot take
    // the message (its text in message_payload to a 3.3 SMSC).
    let (mut up, mut too_old) = (0, 0);
    for i in topology
        .router
        .candidates(route, |c| topology.connectors[c].is_up())
    {
        let connector = &topology.connectors[i];
        if !connector.is_up() {
            continue;
        }
        up += 1;
        let mut sm = sm.clone();
        crate::hops::mark(&mut sm.tlvs);
        if let Some(source) = &connector.source {
            sm.source_addr_ton = source.ton;
            sm.source_addr_npi = source.npi;
            sm.source_addr = source.addr.clone();
        }
        match connector.pool.submit(sm).await {
            Ok(upstream_id) => {
                topology.queues[route].misses.store(0, Ordering::Release);
                connector.forwarded.fetch_add(1, Ordering::Relaxed);
                node.metrics.forwarded();
                let upstream_id = upstream_id.to_string_lossy().into_owned();
                return forwarded(node, record, connector, upstream_id).await;
            }
            Err(e @ Error::Refused(SendError::PeerVersion(..))) => {
                tracing::info!(id = record.id, upstream = connector.name, error = %e, "not for this upstream's SMPP version; trying on");
                too_old += 1;
            }
            Err(e) if is_temporary(&e) => {
                tracing::debug!(id = record.id, upstream = connector.name, error = %e, "not forwarded; trying on");
            }
            Err(Error::Status(status) | Error::GenericNack(status)) => {
                tracing::info!(id = record.id, upstream = connector.name, %status, "refused upstream");
                connector.refused.fetch_add(1, Ordering::Relaxed);
                return failed(node, record, status).await;
            }
            Err(e) => {
                tracing::debug!(id = record.id, upstream = connector.name, error = %e, "not forwarded");
            }
        }
    }
    if node.stopped() {
        return; // still stored as accepted: forwarded at the next start
    }
    if up > 0 && too_old == up {
        // No retry changes an upstream's version: fail it, as an SMSC
        // refusing the TLV would.
        return failed(node, record, CommandStatus::TLV_NOT_ALLOWED).await;
    }
    if let Some(record) = topology.queues[route].put_back(record) {
        requeue(node, record);
    }
}

/// Records the upstream's id; then matches the receipts that came first.
async fn forwarded(
    node: &Arc<Node>,
    mut record: MessageRecord,
    c: &Connector,
    upstream_id: String,
) {
    let canonical = c.ids.canonical_submit(&upstream_id);
    record.state = MessageState::Forwarded;
    record.forwarded_ms = Some(crate::node::now_ms());
    let timeout = u64::try_from(node.receipt_timeout.as_millis()).unwrap_or(u64::MAX);
    record.receipt_due_ms = Some(crate::node::now_ms().saturating_add(timeout));
    record.upstream = Some(UpstreamRef {
        connector: c.name.clone(),
        id: upstream_id,
        key: canonical.clone(),
    });
    let mut ops = vec![
        Op::PutMessage(record.clone()),
        Op::MapUpstream {
            upstream: c.name.clone(),
            upstream_id: canonical.clone(),
            message: record.id,
        },
    ];
    let call = crate::webhooks::submit_call(&record, CommandStatus::OK)
        .map(|call| crate::webhooks::owed_call(node, &record, call));
    if let Some(call) = &call {
        ops.push(Op::PutReceipt(call.clone()));
    }
    let written = write_until_done(node, ops).await;
    node.pending.fetch_sub(1, Ordering::AcqRel);
    if let (true, Some(call)) = (written, call) {
        crate::outbox::queue(node, call);
    }
    crate::receipts::release_held(node, &c.name, &canonical).await;
}

/// Ends a message refused for good, with a failed receipt if asked for.
async fn failed(node: &Arc<Node>, mut record: MessageRecord, status: CommandStatus) {
    let now = crate::node::now_ms();
    record.state = MessageState::Failed { status: status.0 };
    record.final_ms = Some(now);
    let mut ops = vec![Op::PutMessage(record.clone())];
    let mut receipt = DeliveryReceipt::new(String::new(), ReceiptState::Rejected);
    receipt.submit_date = Some(smpp_proto::message::time::receipt_date(record.accepted_ms));
    receipt.done_date = Some(smpp_proto::message::time::receipt_date(now));
    // `err:` carries the refusal: its command status, in hex.
    receipt.error = Some(format!("{:03X}", status.0));
    // A Jasmin level-1 or -3 webhook hears of the refusal, then (2 or 3) of the final state.
    let owed: Vec<_> = crate::webhooks::submit_call(&record, status)
        .map(|call| crate::webhooks::owed_call(node, &record, call))
        .into_iter()
        .chain(crate::receipts::owed_receipt(node, &record, &receipt))
        .collect();
    ops.extend(owed.iter().cloned().map(Op::PutReceipt));
    let written = write_until_done(node, ops).await;
    node.pending.fetch_sub(1, Ordering::AcqRel);
    if written {
        node.write_cdr(&record);
        for owed in owed {
            crate::outbox::queue(node, owed);
        }
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

/// A queued message taken out to be changed: its topology, route and place.
pub(crate) struct Taken {
    topology: Arc<Topology>,
    route: usize,
    at: usize,
    /// The message as it waited.
    pub(crate) record: MessageRecord,
}

/// Takes the stored message `record` out of its route's queue to change
/// it (still counted as pending), if it waits there (not being submitted).
pub(crate) fn take_queued(node: &Node, record: &MessageRecord) -> Option<Taken> {
    let topology = node.topologies.current();
    let route = topology.route_of(record)?;
    let (at, record) = topology.queues.get(route)?.take(record.id)?;
    Some(Taken {
        topology,
        route,
        at,
        record,
    })
}

/// Puts a message taken with [`take_queued`] back in its place, as
/// `record` (routed again if the routes changed meanwhile).
pub(crate) fn put_back_queued(node: &Arc<Node>, taken: Taken, record: MessageRecord) {
    if let Some(record) = taken.topology.queues[taken.route].insert(taken.at, record) {
        requeue(node, record);
    }
}

/// Takes the stored message `record` out of its route's queue, if it
/// waits there (not yet being submitted); counted as no longer pending.
pub(crate) fn unqueue(node: &Node, record: &MessageRecord) -> Option<MessageRecord> {
    let topology = node.topologies.current();
    let route = topology.route_of(record)?;
    let record = topology.queues.get(route)?.remove(record.id)?;
    node.pending.fetch_sub(1, Ordering::AcqRel);
    Some(record)
}
