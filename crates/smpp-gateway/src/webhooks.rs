//! Receipts and MO messages over HTTP: each owed call is durable in the
//! store (as an [`OwedReceipt`] carrying a [`WebhookCall`]) and made until
//! the receiver answers 2xx, with backoff (1 s doubling to 5 minutes), at
//! most [`IN_FLIGHT`] at once; one that never succeeds is given up after
//! [`GIVE_UP_AFTER`] (logged). A receiver in Jasmin's style answers
//! `ACK/Jasmin` with its 200; any 2xx is taken as received.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smpp_proto::message::receipt::{DeliveryReceipt, MessageState as ReceiptState, ReceiptDate};
use smpp_proto::pdu::CommandStatus;
use tokio::sync::Notify;

use crate::node::{lock, stored_sm, Node};
use crate::store::{
    format_id, HttpMethod, MessageRecord, Op, OwedReceipt, Webhook, WebhookCall, WebhookStyle,
};

/// Calls under way at most.
const IN_FLIGHT: usize = 64;

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A call that has failed for this long is given up.
pub(crate) const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Pending {
    owed: OwedReceipt,
    in_flight: bool,
    failures: u32,
    first_failure: Option<Instant>,
    not_before: Option<Instant>,
}

/// The calls owed, by outbox key.
#[derive(Debug, Default)]
pub(crate) struct Webhooks {
    pending: Mutex<BTreeMap<u64, Pending>>,
    /// How many of `pending` each account has.
    per_account: Mutex<std::collections::HashMap<String, usize>>,
    wake: Notify,
}

impl Webhooks {
    /// Adds a stored call and wakes the caller loop.
    pub(crate) fn queue(&self, owed: OwedReceipt) {
        let mut pending = lock(&self.pending);
        if !pending.contains_key(&owed.seq) {
            *lock(&self.per_account)
                .entry(owed.account.clone())
                .or_default() += 1;
        }
        pending.insert(
            owed.seq,
            Pending {
                owed,
                in_flight: false,
                failures: 0,
                first_failure: None,
                not_before: None,
            },
        );
        self.wake.notify_one();
    }

    /// Calls owed for `account`'s messages.
    pub(crate) fn owed_to(&self, account: &str) -> usize {
        lock(&self.per_account).get(account).copied().unwrap_or(0)
    }

    /// Calls owed and not made yet.
    pub(crate) fn len(&self) -> usize {
        lock(&self.pending).len()
    }

    fn take_due(&self, room: usize) -> Vec<OwedReceipt> {
        let now = Instant::now();
        let mut pending = lock(&self.pending);
        let in_flight = pending.values().filter(|p| p.in_flight).count();
        let mut due = Vec::new();
        // One message's calls in the order they were owed (Jasmin's level
        // 1 before its level 2): none starts while an earlier one waits.
        let mut earlier = std::collections::HashSet::new();
        for p in pending.values_mut() {
            if in_flight + due.len() >= room {
                break;
            }
            let message = p.owed.message;
            if message != 0 && !earlier.insert(message) {
                continue;
            }
            if p.in_flight || p.not_before.is_some_and(|t| t > now) {
                continue;
            }
            p.in_flight = true;
            due.push(p.owed.clone());
        }
        due
    }

    fn forget(&self, pending: &mut BTreeMap<u64, Pending>, seq: u64) {
        if let Some(p) = pending.remove(&seq) {
            let mut counts = lock(&self.per_account);
            if let Some(n) = counts.get_mut(&p.owed.account) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&p.owed.account);
                }
            }
        }
    }

    /// The call ended: gone when `done`, else retried later (or given up:
    /// then `true` is returned too).
    fn finish(&self, seq: u64, done: bool) -> bool {
        let mut pending = lock(&self.pending);
        let Some(p) = pending.get_mut(&seq) else {
            return false;
        };
        if done {
            self.forget(&mut pending, seq);
            return true;
        }
        let now = Instant::now();
        let first = *p.first_failure.get_or_insert(now);
        if now.duration_since(first) >= GIVE_UP_AFTER {
            tracing::warn!(seq, url = ?p.owed.webhook.as_ref().map(|w| &w.url), "webhook failing for a day: given up");
            self.forget(&mut pending, seq);
            return true;
        }
        p.in_flight = false;
        p.not_before = Some(
            now + FIRST_RETRY
                .saturating_mul(1u32 << p.failures.min(16))
                .min(MAX_RETRY),
        );
        p.failures = p.failures.saturating_add(1);
        false
    }
}

/// Makes the calls owed, whenever woken or every second.
pub(crate) async fn run(node: Arc<Node>) {
    let client = match reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .user_agent(concat!("smpp-gateway/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot make the webhook HTTP client: webhooks are not called");
            return;
        }
    };
    while !node.stopped() {
        for owed in node.webhooks.take_due(IN_FLIGHT) {
            let (node, client) = (node.clone(), client.clone());
            tokio::spawn(async move {
                let ok = match &owed.webhook {
                    Some(call) => send(&client, call).await,
                    None => true,
                };
                // Made, but not recorded: it is made again (at least once).
                let recorded = !ok
                    || node
                        .store
                        .write(vec![Op::DeleteReceipt(owed.seq)])
                        .await
                        .is_ok();
                let gone = node.webhooks.finish(owed.seq, ok && recorded);
                if gone && !ok {
                    let _ = node.store.write(vec![Op::DeleteReceipt(owed.seq)]).await;
                }
                node.webhooks.wake.notify_one();
            });
        }
        tokio::select! {
            () = node.webhooks.wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// One call; `true` on a 2xx answer.
async fn send(client: &reqwest::Client, call: &WebhookCall) -> bool {
    let request = match (call.method, &call.json) {
        (HttpMethod::Get, _) => client.get(&call.url).query(&call.fields),
        (HttpMethod::Post, Some(json)) => client
            .post(&call.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(json.clone()),
        (HttpMethod::Post, None) => client.post(&call.url).form(&call.fields),
    };
    match request.send().await {
        Ok(response) if response.status().is_success() => true,
        Ok(response) => {
            tracing::debug!(url = call.url, status = %response.status(), "webhook refused; retrying");
            false
        }
        Err(e) => {
            tracing::debug!(url = call.url, error = %e, "webhook failed; retrying");
            false
        }
    }
}

/// `YYMMDDhhmm`, as Jasmin writes receipt dates.
fn yymmddhhmm(date: ReceiptDate) -> String {
    format!(
        "{:02}{:02}{:02}{:02}{:02}",
        date.year % 100,
        date.month,
        date.day,
        date.hour,
        date.minute
    )
}

/// The call reporting `record`'s final `receipt` to its webhook (`None`:
/// no webhook, or a Jasmin level-1 one, which wants only the submit's fate).
pub(crate) fn final_call(record: &MessageRecord, receipt: &DeliveryReceipt) -> Option<WebhookCall> {
    let hook = record.webhook.as_ref()?;
    let id = record.public_id();
    let upstream_id = record.upstream.as_ref().map(|u| u.id.clone());
    let stat = receipt
        .stat_word
        .clone()
        .unwrap_or_else(|| receipt.state.stat_word().to_owned());
    let error = receipt.error.clone().unwrap_or_else(|| "000".into());
    let date = |ms: u64| yymmddhhmm(smpp_proto::message::time::receipt_date(ms));
    let done_ms = record.final_ms.unwrap_or(record.accepted_ms);
    match hook.style {
        WebhookStyle::Jasmin { level: 1 } => None,
        WebhookStyle::Jasmin { level } => {
            let text: String = stored_sm(&record.submit)
                .map(|sm| {
                    String::from_utf8_lossy(&sm.short_message)
                        .chars()
                        .take(20)
                        .collect()
                })
                .unwrap_or_default();
            let delivered = u8::from(receipt.state == ReceiptState::Delivered);
            Some(form_call(
                hook,
                vec![
                    ("id", id),
                    ("id_smsc", upstream_id.unwrap_or_default()),
                    ("message_status", stat),
                    ("level", level.to_string()),
                    ("subdate", date(record.accepted_ms)),
                    ("donedate", date(done_ms)),
                    ("sub", "001".into()),
                    ("dlvrd", format!("{delivered:03}")),
                    ("err", error),
                    ("text", text),
                ],
            ))
        }
        WebhookStyle::Json => Some(json_call(
            hook,
            &serde_json::json!({
                "id": id,
                "state": stat,
                "error": error,
                "upstream_id": upstream_id,
                "parts": record.parts,
                "submitted_ms": record.accepted_ms,
                "done_ms": done_ms,
            }),
        )),
    }
}

/// The Jasmin level-1 call (the upstream's answer to the submit) for a
/// message that was just forwarded (`status` OK) or refused upstream.
pub(crate) fn submit_call(record: &MessageRecord, status: CommandStatus) -> Option<WebhookCall> {
    let hook = record.webhook.as_ref()?;
    match hook.style {
        WebhookStyle::Jasmin {
            level: level @ (1 | 3),
        } => Some(form_call(
            hook,
            vec![
                ("id", record.public_id()),
                (
                    "message_status",
                    status.name().unwrap_or("ESME_RUNKNOWNERR").to_owned(),
                ),
                ("level", level.to_string()),
            ],
        )),
        _ => None,
    }
}

/// The call passing an MO message from `upstream` to `url`, in Jasmin's
/// MO format (the content decoded by its `data_coding`; `binary` is its
/// octets in hex).
pub(crate) fn mo_call(
    node: &Node,
    upstream: &str,
    sm: &smpp_proto::pdu::SubmitSm,
    url: &str,
    post: bool,
) -> WebhookCall {
    use std::fmt::Write as _;
    // message_payload when present (a long MO, or one that came as data_sm).
    let data = sm.payload();
    let content = smpp_proto::message::decode_text(
        smpp_proto::message::DataCoding(sm.data_coding),
        data,
        &smpp_proto::message::DecodeOptions::default(),
    )
    .unwrap_or_else(|_| String::from_utf8_lossy(data).into_owned());
    let mut binary = String::with_capacity(data.len() * 2);
    for b in data {
        let _ = write!(binary, "{b:02x}");
    }
    let hook = Webhook {
        url: url.to_owned(),
        method: if post {
            HttpMethod::Post
        } else {
            HttpMethod::Get
        },
        style: WebhookStyle::Jasmin { level: 0 },
    };
    form_call(
        &hook,
        vec![
            ("id", format_id(node.next_id())),
            ("from", sm.source_addr.to_string_lossy().into_owned()),
            ("to", sm.destination_addr.to_string_lossy().into_owned()),
            ("origin-connector", upstream.to_owned()),
            ("priority", sm.priority_flag.to_string()),
            ("coding", sm.data_coding.to_string()),
            (
                "validity",
                sm.validity_period.to_string_lossy().into_owned(),
            ),
            ("content", content),
            ("binary", binary),
        ],
    )
}

fn form_call(hook: &Webhook, fields: Vec<(&str, String)>) -> WebhookCall {
    WebhookCall {
        url: hook.url.clone(),
        method: hook.method,
        fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        json: None,
    }
}

fn json_call(hook: &Webhook, body: &serde_json::Value) -> WebhookCall {
    WebhookCall {
        url: hook.url.clone(),
        method: HttpMethod::Post,
        fields: Vec::new(),
        json: Some(body.to_string()),
    }
}

/// Stores `call` for `record`'s account and queues it (the caller has the
/// record written in the same batch when it can; here it is its own write).
pub(crate) fn owed_call(node: &Node, record: &MessageRecord, call: WebhookCall) -> OwedReceipt {
    OwedReceipt {
        seq: node.next_seq(),
        message: record.id,
        account: record.account.clone(),
        deliver: Vec::new(),
        webhook: Some(call),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_and_success_removes() {
        let hooks = Webhooks::default();
        let owed = OwedReceipt {
            seq: 1,
            message: 1,
            account: "a".into(),
            deliver: Vec::new(),
            webhook: None,
        };
        hooks.queue(owed);
        assert_eq!(hooks.take_due(8).len(), 1);
        assert!(hooks.take_due(8).is_empty(), "in flight");
        assert!(!hooks.finish(1, false));
        assert!(hooks.take_due(8).is_empty(), "backing off");
        assert_eq!(hooks.len(), 1);
        lock(&hooks.pending).get_mut(&1).unwrap().not_before = None;
        assert_eq!(hooks.take_due(8).len(), 1);
        assert!(hooks.finish(1, true));
        assert_eq!(hooks.len(), 0);
    }

    #[test]
    fn one_message_s_calls_go_in_order() {
        let hooks = Webhooks::default();
        for seq in [1, 2] {
            hooks.queue(OwedReceipt {
                seq,
                message: 7,
                account: "a".into(),
                deliver: Vec::new(),
                webhook: None,
            });
        }
        let first = hooks.take_due(8);
        assert_eq!(first.iter().map(|o| o.seq).collect::<Vec<_>>(), [1]);
        assert!(
            hooks.take_due(8).is_empty(),
            "the second waits for the first"
        );
        assert!(hooks.finish(1, true));
        assert_eq!(
            hooks.take_due(8).iter().map(|o| o.seq).collect::<Vec<_>>(),
            [2]
        );
    }
}
