//! Receipts mapped back: an upstream's receipt is matched to our message
//! through the id map, turned into the customer's receipt (our id in the
//! text and in `receipted_message_id`, the upstream's state and error),
//! and made durable in the outbox (the `outbox` module delivers it to any
//! receiver or transceiver bind of the account; while none is bound it waits).
//!
//! A receipt whose upstream id is not in the map yet (it overtook the
//! `submit_sm_resp`) is held, durably, and matched when the id is recorded
//! (and retried on a timer): never dropped.
//!
//! An intermediate notification (`esm_class` says so, or a receipt whose
//! state is not final, such as `ENROUTE`) is mapped back the same way to a
//! customer whose `registered_delivery` asked for intermediate
//! notifications (over SMPP; webhooks hear of final states only), as an
//! intermediate notification; it does not make the message final.
//!
//! The upstream's `deliver_sm` is answered only once what it said is
//! durable; a store failure answers `ESME_RSYSERR` (the upstream sends it
//! again). A customer's receipt may be delivered twice if the gateway
//! stops between the customer's answer and the write that records it
//! (at least once).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use smpp_proto::message::receipt::DeliveryReceipt;
use smpp_proto::pdu::{Body, CommandStatus, EsmClass, NetworkErrorCode, Pdu, TlvTag, Tlvs};
use smpp_tokio::InboundRequest;

use crate::node::{decode_stored, encode_request, lock, stored_sm, Node};
use crate::store::{HeldReceipt, MessageRecord, MessageState, Op, OwedReceipt};
use crate::upstream::Connector;

/// How often held receipts are looked up again. Matching is driven by the
/// recording of upstream ids; this pass is for what that cannot see (the
/// receipts held by the last run, a mapping that failed to store).
const RETRY_EVERY: Duration = Duration::from_secs(30);

/// [`RETRY_EVERY`] when nodes share the store.
const CLUSTER_RETRY_EVERY: Duration = Duration::from_millis(500);

/// Serves the inbound requests (receipts and MO) of one of a connector's
/// binds. They run side by side in this task, not one task each: a store
/// commit releases a batch of them at once, and their answers then reach
/// the connection together and leave in one write (a task each woke the
/// connection per answer: one `deliver_sm_resp` per `sendto`). How many
/// run at once is bounded by the bind's window for peer requests.
pub(crate) async fn serve_upstream(
    node: Arc<Node>,
    connector: Arc<Connector>,
    inbound: smpp_tokio::Inbound,
) {
    use futures_util::stream::{FuturesUnordered, StreamExt as _};
    use futures_util::FutureExt as _;
    let mut running = FuturesUnordered::new();
    loop {
        tokio::select! {
            request = inbound.recv() => match request {
                Some(request) => {
                    // A panic ends that request alone, as it did its own task.
                    let one = on_upstream_request(&node, &connector, request);
                    running.push(std::panic::AssertUnwindSafe(one).catch_unwind().map(|done| {
                        if done.is_err() {
                            tracing::error!("an upstream request's handling panicked");
                        }
                    }));
                }
                None => break,
            },
            Some(()) = running.next(), if !running.is_empty() => {}
        }
    }
    // The bind is gone: what was started still finishes (stored, at least).
    while running.next().await.is_some() {}
}

/// The upstream id a receipt names, normalised by the connector's format:
/// `receipted_message_id` (written as in `submit_sm_resp`) first, else the
/// text's `id:`.
fn receipt_key(connector: &Connector, pdu: &Pdu, receipt: &DeliveryReceipt) -> String {
    let ids = &connector.ids;
    let tlv = match &pdu.body {
        Body::DeliverSm(sm) => sm.tlvs.receipted_message_id(),
        Body::DataSm(sm) => sm.tlvs.receipted_message_id(),
        _ => None,
    };
    match tlv.map(String::from_utf8_lossy) {
        Some(id) if !id.trim_matches(['\0', ' ']).is_empty() => ids.canonical_submit(&id),
        _ => ids.canonical_receipt(&receipt.id),
    }
}

async fn on_upstream_request(node: &Arc<Node>, connector: &Connector, request: InboundRequest) {
    let name = connector.name.clone();
    let Some(receipt) = request.receipt() else {
        let status = route_mo(node, &name, request.pdu()).await;
        if status != CommandStatus::OK {
            request.reject(status);
        }
        return;
    };
    let intermediate = is_intermediate(request.pdu(), &receipt);
    let key = receipt_key(connector, request.pdu(), &receipt);
    let found = match node.store.lookup(&name, &key).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "id map lookup failed");
            return request.reject(CommandStatus::SYSTEM_ERROR);
        }
    };
    node.metrics.receipt(found.is_some());
    let done = match found {
        Some(id) => map_receipt(node, id, &receipt, intermediate).await,
        None => hold(node, &name, key, request.pdu()).await,
    };
    if !done {
        request.reject(CommandStatus::SYSTEM_ERROR);
    }
    // Dropping `request` answers it: deliver_sm_resp, status 0.
}

/// Routes an MO message (a `deliver_sm` that is not a receipt) to the
/// account of the first MO route matching its destination: stored in the
/// outbox, then delivered like a receipt. The status to answer: `OK` once
/// stored; `ESME_RX_T_APPN` when no route matches (or for a `data_sm`),
/// so that the upstream keeps it rather than it being lost here.
async fn route_mo(node: &Arc<Node>, upstream: &str, pdu: &Pdu) -> CommandStatus {
    let sm = match &pdu.body {
        Body::DeliverSm(sm) => sm.clone(),
        // A data_sm goes on as the deliver_sm that says the same (its user
        // data in message_payload), which every customer takes; one whose
        // addresses do not fit a deliver_sm (over 20 characters) cannot.
        Body::DataSm(data) => {
            let sm = smpp_proto::pdu::SubmitSm::from_data_sm((**data).clone());
            if sm.source_addr.len() > 20 || sm.destination_addr.len() > 20 {
                tracing::warn!(
                    upstream,
                    "MO data_sm refused: an address longer than a deliver_sm takes"
                );
                return CommandStatus::RECEIVER_PERMANENT_ERROR;
            }
            Box::new(sm)
        }
        _ => return CommandStatus::INVALID_COMMAND_ID,
    };
    let sm = &sm;
    let destination = sm.destination_addr.to_string_lossy();
    let Some(route) = node
        .mo_routes
        .iter()
        .find(|r| destination.starts_with(r.prefix.as_str()))
    else {
        tracing::warn!(upstream, %destination, "MO message from upstream refused: no MO route");
        return CommandStatus::RECEIVER_TEMPORARY_ERROR;
    };
    // Passed on as it came (its TLVs, its UDH: the parts of a long message
    // go one by one).
    let Some(deliver) = encode_request(Body::DeliverSm(sm.clone())) else {
        return CommandStatus::SYSTEM_ERROR;
    };
    let webhook = route
        .url
        .as_ref()
        .map(|(url, post)| crate::webhooks::mo_call(node, upstream, sm, url, *post));
    let owed = OwedReceipt {
        seq: node.next_seq(),
        message: 0,
        account: if webhook.is_some() {
            format!("mo:{}", route.prefix)
        } else {
            route.account.clone()
        },
        deliver,
        webhook,
    };
    if let Err(e) = node.store.write(vec![Op::PutReceipt(owed.clone())]).await {
        tracing::error!(error = %e, "cannot store an MO message");
        return CommandStatus::SYSTEM_ERROR;
    }
    tracing::debug!(upstream, account = owed.account, "MO message queued");
    crate::outbox::queue(node, owed);
    CommandStatus::OK
}

/// Holds an unmatched receipt (durably), then looks again: the id may have
/// been recorded meanwhile. Whoever takes it from the held map maps it.
async fn hold(node: &Arc<Node>, upstream: &str, key: String, pdu: &Pdu) -> bool {
    // Upstream ids with receipts held (one each, nearly always).
    let held_now = lock(&node.held).len();
    if held_now >= node.max_held {
        tracing::warn!(
            upstream,
            upstream_id = key,
            "too many receipts held: refused (the upstream sends it again)"
        );
        return false;
    }
    let Ok(deliver) = pdu.to_vec() else {
        return false;
    };
    let held = HeldReceipt {
        seq: node.next_seq(),
        upstream: upstream.to_owned(),
        upstream_id: key.clone(),
        received_ms: crate::node::now_ms(),
        deliver,
    };
    if let Err(e) = node.store.write(vec![Op::PutHeld(held.clone())]).await {
        tracing::error!(error = %e, "cannot hold a receipt");
        return false;
    }
    tracing::debug!(upstream, upstream_id = key, "receipt before its id: held");
    lock(&node.held)
        .entry((upstream.to_owned(), key.clone()))
        .or_default()
        .push(held);
    release_held(node, upstream, &key).await;
    true
}

/// Maps the receipts held for (`upstream`, `key`) if the id is known now.
pub(crate) async fn release_held(node: &Arc<Node>, upstream: &str, key: &str) {
    let map_key = (upstream.to_owned(), key.to_owned());
    if !lock(&node.held).contains_key(&map_key) {
        return;
    }
    let Ok(Some(id)) = node.store.lookup(upstream, key).await else {
        return;
    };
    let Some(held) = lock(&node.held).remove(&map_key) else {
        return; // another task took them
    };
    for h in held {
        let receipt = decode_stored(&h.deliver).and_then(|pdu| {
            let receipt = DeliveryReceipt::from_body(&pdu.body, &Default::default())?;
            let intermediate = is_intermediate(&pdu, &receipt);
            Some((receipt, intermediate))
        });
        let mapped = match receipt {
            Some((receipt, intermediate)) => map_receipt(node, id, &receipt, intermediate).await,
            None => true, // unreadable: nothing to map
        };
        if mapped {
            let _ = node.store.write(vec![Op::DeleteHeld(h.seq)]).await;
        } else {
            lock(&node.held).entry(map_key.clone()).or_default().push(h);
        }
    }
}

/// Retries the held receipts now and then (their id may have come by a
/// path that did not release them: a restart), and gives up those held
/// longer than `hold_for` (logged).
pub(crate) async fn retry_held(node: Arc<Node>) {
    loop {
        let keys: Vec<(String, String)> = lock(&node.held).keys().cloned().collect();
        for (upstream, key) in keys {
            release_held(&node, &upstream, &key).await;
        }
        let limit = u64::try_from(node.hold_for.as_millis()).unwrap_or(u64::MAX);
        let cutoff = crate::node::now_ms().saturating_sub(limit);
        let expired: Vec<HeldReceipt> = {
            let mut held = lock(&node.held);
            let mut expired = Vec::new();
            held.retain(|_, list| {
                list.retain(|h| {
                    let keep = h.received_ms >= cutoff;
                    if !keep {
                        expired.push(h.clone());
                    }
                    keep
                });
                !list.is_empty()
            });
            expired
        };
        for h in &expired {
            tracing::warn!(
                upstream = h.upstream,
                upstream_id = h.upstream_id,
                "receipt for an unknown upstream id given up"
            );
        }
        if !expired.is_empty() {
            let ops = expired.iter().map(|h| Op::DeleteHeld(h.seq)).collect();
            if let Err(e) = node.store.write(ops).await {
                // They stay in the store: the next start gives them up again.
                tracing::warn!(error = %e, "cannot delete receipts given up");
            }
        }
        // With other nodes, the id is often recorded by another node (the
        // one that forwarded the message): nobody releases these but this
        // loop, so it looks often.
        let every = if node.cluster.is_some() {
            CLUSTER_RETRY_EVERY
        } else {
            RETRY_EVERY
        }
        .min(node.hold_for / 2)
        .max(Duration::from_millis(50));
        if !node.pause(every).await {
            return;
        }
    }
}

/// Whether an upstream receipt is an intermediate notification: its
/// `esm_class` says so, or its state is not final.
fn is_intermediate(pdu: &Pdu, receipt: &DeliveryReceipt) -> bool {
    let esm = match &pdu.body {
        Body::DeliverSm(sm) => sm.esm_class(),
        Body::DataSm(sm) => sm.esm_class(),
        _ => EsmClass::default(),
    };
    esm.is_intermediate_notification() || !receipt.state.is_final()
}

/// Applies an upstream receipt to our message `id`: its state, and the
/// customer's receipt if one was asked for. `false` if nothing was stored.
/// An intermediate notification changes no state: it is passed on if the
/// customer asked for those, while the message is not final.
async fn map_receipt(
    node: &Arc<Node>,
    id: u64,
    receipt: &DeliveryReceipt,
    intermediate: bool,
) -> bool {
    // Read, check and write under the message's final-state lock.
    let _final = node.final_lock(id).await;
    let mut record = match node.store.message(id).await {
        Ok(Some(record)) => record,
        Ok(None) => {
            tracing::warn!(id, "receipt for a message no longer stored: dropped");
            return true;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read a message");
            return false;
        }
    };
    if intermediate {
        if !matches!(record.state, MessageState::Forwarded) {
            return true; // final already (or not known to be forwarded)
        }
        let Some(owed) = owed_notification(node, &record, receipt) else {
            return true;
        };
        if let Err(e) = node.store.write(vec![Op::PutReceipt(owed.clone())]).await {
            tracing::error!(error = %e, "cannot store an intermediate notification");
            return false;
        }
        crate::outbox::queue(node, owed);
        return true;
    }
    if matches!(record.state, MessageState::Done { .. }) {
        tracing::debug!(id, "second final receipt ignored");
        return true;
    }
    record.state = MessageState::Done {
        state: receipt.state.to_u8(),
    };
    record.final_ms = Some(crate::node::now_ms());
    let mut ops = vec![Op::PutMessage(record.clone())];
    let owed = owed_receipt(node, &record, receipt);
    if let Some(owed) = &owed {
        ops.push(Op::PutReceipt(owed.clone()));
    }
    if let Err(e) = node.store.write(ops).await {
        tracing::error!(error = %e, "cannot store a receipt");
        return false;
    }
    node.write_cdr(&record);
    if let Some(owed) = owed {
        crate::outbox::queue(node, owed);
    }
    true
}

/// The customer's receipt for `record` from the upstream's `receipt`, if
/// the customer asked for one for this outcome.
pub(crate) fn owed_receipt(
    node: &Node,
    record: &MessageRecord,
    receipt: &DeliveryReceipt,
) -> Option<OwedReceipt> {
    if record.webhook.is_some() {
        let call = crate::webhooks::final_call(record, receipt)?;
        return Some(crate::webhooks::owed_call(node, record, call));
    }
    let sm = stored_sm(&record.submit)?;
    let success = receipt.state == smpp_proto::message::receipt::MessageState::Delivered;
    if !sm.registered_delivery().wants_receipt_for(success) {
        return None;
    }
    customer_receipt(node, record, &sm, receipt, EsmClass::DELIVERY_RECEIPT)
}

/// The customer's intermediate notification for `record` from the
/// upstream's, if the customer asked for intermediate notifications (over
/// SMPP: webhooks get final states only).
fn owed_notification(
    node: &Node,
    record: &MessageRecord,
    receipt: &DeliveryReceipt,
) -> Option<OwedReceipt> {
    if record.webhook.is_some() {
        return None;
    }
    let sm = stored_sm(&record.submit)?;
    if !sm.registered_delivery().intermediate_notification() {
        return None;
    }
    customer_receipt(
        node,
        record,
        &sm,
        receipt,
        EsmClass::INTERMEDIATE_NOTIFICATION,
    )
}

/// The `deliver_sm` telling the sender of `sm` (our message `record`)
/// what `receipt` says, with our id, as `esm` (a receipt or an
/// intermediate notification).
fn customer_receipt(
    node: &Node,
    record: &MessageRecord,
    sm: &smpp_proto::pdu::SubmitSm,
    receipt: &DeliveryReceipt,
    esm: EsmClass,
) -> Option<OwedReceipt> {
    let our_id = record.public_id();
    let mut ours = receipt.clone();
    ours.id.clone_from(&our_id);
    if ours.error.is_none() {
        ours.error = receipt
            .network_error
            .map(|n| format!("{:03}", n.error_code));
    }
    let mut tlvs = Tlvs::new();
    let _ = tlvs.set_text(TlvTag::RECEIPTED_MESSAGE_ID, our_id.as_bytes());
    tlvs.set_u8(TlvTag::MESSAGE_STATE, receipt.state.to_u8());
    if let Some(network_error) = receipt.network_error {
        tlvs.set_network_error_code(NetworkErrorCode { ..network_error });
    }
    let deliver = smpp_proto::pdu::DeliverSm {
        source_addr_ton: sm.dest_addr_ton,
        source_addr_npi: sm.dest_addr_npi,
        source_addr: sm.destination_addr.clone(),
        dest_addr_ton: sm.source_addr_ton,
        dest_addr_npi: sm.source_addr_npi,
        destination_addr: sm.source_addr.clone(),
        esm_class: esm.bits(),
        short_message: Bytes::from(ours.to_text().into_bytes()),
        tlvs,
        ..Default::default()
    };
    Some(OwedReceipt {
        seq: node.next_seq(),
        message: record.id,
        account: record.account.clone(),
        deliver: encode_request(Body::DeliverSm(Box::new(deliver)))?,
        webhook: None,
    })
}
