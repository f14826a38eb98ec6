//! Accepting a message, whichever way it came (SMPP or HTTP): routed,
//! rate-limited and charged by its SMS parts on the air, made durable with
//! its charge in one store write, then queued for its route. The parts of
//! one HTTP message are accepted together (all or none).

use std::sync::Arc;

use smpp_proto::message::submit_parts_on_air;
use smpp_proto::pdu::{Body, CommandStatus, SubmitSm};

use crate::billing::Exhausted;
use crate::node::{encode_request, now_ms, Node};
use crate::store::{MessageRecord, MessageState, Op, StoreError, Webhook};
use crate::topology::Topology;

/// A message to accept: one `submit_sm` per part.
#[derive(Debug)]
pub(crate) struct Submission {
    /// The submitting account.
    pub(crate) account: String,
    /// Its parts (one, from SMPP), all to the same destination.
    pub(crate) parts: Vec<SubmitSm>,
    /// Where its receipts go over HTTP.
    pub(crate) webhook: Option<Webhook>,
    /// The HTTP batch it belongs to.
    pub(crate) batch: Option<u64>,
    /// The id the customer knows it by, when not its own (`submit_multi`).
    pub(crate) alias: Option<u64>,
}

/// Why a message was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No route matches the destination (`ESME_RINVDSTADR`).
    NoRoute,
    /// Over the account's rate (`ESME_RTHROTTLED`).
    Throttled,
    /// Too many messages wait to be forwarded (`ESME_RMSGQFUL`).
    QueueFull,
    /// A prepaid quota ran out (`ESME_RSUBMITFAIL`).
    Exhausted(Exhausted),
    /// The store failed, or the message could not be encoded (`ESME_RSYSERR`).
    System,
    /// It has been forwarded too many times: a routing loop
    /// (`ESME_RINVDSTADR`; see [`crate::hops`]).
    Loop,
}

impl Refusal {
    /// The SMPP status that says it.
    pub(crate) fn status(self) -> CommandStatus {
        match self {
            Refusal::NoRoute => CommandStatus::INVALID_DESTINATION_ADDRESS,
            Refusal::Throttled => CommandStatus::THROTTLED,
            Refusal::QueueFull => CommandStatus::MESSAGE_QUEUE_FULL,
            Refusal::Exhausted(_) => CommandStatus::SUBMIT_FAILED,
            Refusal::System => CommandStatus::SYSTEM_ERROR,
            Refusal::Loop => CommandStatus::INVALID_DESTINATION_ADDRESS,
        }
    }

    /// In words, for HTTP answers and logs.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::NoRoute => "No route found",
            Refusal::Throttled => "Throughput exceeded",
            Refusal::QueueFull => "Queue full",
            Refusal::Exhausted(Exhausted::Balance) => "Insufficient balance",
            Refusal::Exhausted(Exhausted::Sms) => "SMS quota exhausted",
            Refusal::System => "Cannot store the message",
            Refusal::Loop => "Routing loop",
        }
    }
}

/// The route (in the topology in force) of a message of `account` from
/// `source` to `destination`, or why there is none.
pub(crate) fn route(
    node: &Node,
    account: &str,
    source: &str,
    destination: &str,
) -> Result<(Arc<Topology>, usize), Refusal> {
    let topology = node.topologies.current();
    let route = topology
        .router
        .route_index(account, source, destination)
        .ok_or(Refusal::NoRoute)?;
    Ok((topology, route))
}

/// Accepts `submission`: returns our ids, one per part, once durable.
pub(crate) async fn accept(node: &Arc<Node>, submission: Submission) -> Result<Vec<u64>, Refusal> {
    let account = submission.account.clone();
    let started = std::time::Instant::now();
    let result = accept_counted(node, submission).await;
    node.metrics.accept_latency.observe(started.elapsed());
    if let Err(refusal) = result {
        node.metrics.refused(&account, refusal);
    }
    result
}

async fn accept_counted(node: &Arc<Node>, submission: Submission) -> Result<Vec<u64>, Refusal> {
    let Submission {
        account,
        parts,
        webhook,
        batch,
        alias,
    } = submission;
    let Some(first) = parts.first() else {
        return Ok(Vec::new());
    };
    if parts
        .iter()
        .any(|sm| crate::hops::hops(&sm.tlvs) >= u32::from(node.max_hops))
    {
        tracing::warn!(
            account,
            destination = %first.destination_addr.to_string_lossy(),
            "message refused: it has passed through too many gateways (a routing loop)"
        );
        return Err(Refusal::Loop);
    }
    let (topology, route) = route(
        node,
        &account,
        &first.source_addr.to_string_lossy(),
        &first.destination_addr.to_string_lossy(),
    )?;
    let on_air = parts
        .iter()
        .map(submit_parts_on_air)
        .fold(0u32, u32::saturating_add);
    if !node.admit(&account, &first.source_addr.to_string_lossy(), on_air) {
        return Err(Refusal::Throttled);
    }
    if node.forwarding_count().saturating_add(parts.len()) > node.max_queued
        || topology.route_full(route, parts.len())
    {
        return Err(Refusal::QueueFull);
    }
    // A customer that does not take its receipts stops being served
    // before they fill the memory.
    if node.owed_to(&account) >= node.max_owed {
        tracing::debug!(
            account,
            "submission refused: too many receipts owed to the account"
        );
        return Err(Refusal::QueueFull);
    }
    let charge = node
        .billing
        .charge(&account, topology.router.rate(route), on_air)
        .map_err(|exhausted| {
            tracing::info!(
                account,
                ?exhausted,
                parts = on_air,
                "message refused: prepaid quota exhausted"
            );
            Refusal::Exhausted(exhausted)
        })?;
    let accepted_ms = now_ms();
    let rate = topology.router.rate(route);
    let mut records = Vec::with_capacity(parts.len());
    for sm in parts {
        let parts = submit_parts_on_air(&sm);
        let Some(submit) = encode_request(Body::SubmitSm(Box::new(sm))) else {
            node.billing.refund(&account, &charge);
            return Err(Refusal::System);
        };
        records.push(MessageRecord {
            id: node.next_id(),
            account: account.clone(),
            accepted_ms,
            submit,
            state: MessageState::Accepted,
            upstream: None,
            final_ms: None,
            receipt_due_ms: None,
            parts,
            charge: rate.saturating_mul(i64::from(parts)),
            forwarded_ms: None,
            webhook: webhook.clone(),
            batch,
            alias,
        });
    }
    let mut ops: Vec<Op> = records.iter().cloned().map(Op::PutMessage).collect();
    ops.extend(charge.op(&account));
    match node.store.write(ops).await {
        Ok(()) => {}
        // Another node sharing the store spent what this one thought was left.
        Err(StoreError::Exhausted { sms }) => {
            node.billing.refund(&account, &charge);
            node.billing.exhausted(&account, sms);
            tracing::info!(
                account,
                parts = on_air,
                "message refused: prepaid quota exhausted"
            );
            return Err(Refusal::Exhausted(if sms {
                Exhausted::Sms
            } else {
                Exhausted::Balance
            }));
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot store a message");
            node.billing.refund(&account, &charge);
            return Err(Refusal::System);
        }
    }
    node.metrics.accepted(&account, records.len(), on_air);
    topology.router.hit(route, records.len());
    let ids = records.iter().map(|r| r.id).collect();
    for record in records {
        crate::forward::enqueue(node, &topology, route, record);
    }
    Ok(ids)
}
