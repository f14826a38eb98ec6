//! The gateway's records behind one trait, [`GatewayStore`]: messages, the
//! upstream-id map, receipts owed to customers, and upstream receipts held
//! until their message's upstream id is known.
//!
//! One write path: [`GatewayStore::write`] takes a batch of [`Op`]s and
//! returns once they are all durable (a backend commits concurrent batches
//! together: group commit is the API). Reads are by key, plus the scans a
//! restart needs. Backends: [`MemoryStore`] (tests, `--memory`) and
//! [`FjallStore`] (the durable embedded store) and [`PgStore`] (a
//! PostgreSQL database, which several gateways can share).

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

mod fjall_store;
mod memory;
pub(crate) mod pg;

pub use fjall_store::FjallStore;
pub use memory::MemoryStore;
pub use pg::PgStore;

/// A store operation failed (the disk, a corrupt record, the writer gone).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The storage engine failed.
    #[error("storage engine: {0}")]
    Engine(String),
    /// A record could not be encoded or decoded.
    #[error("record encoding: {0}")]
    Encoding(#[from] postcard::Error),
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// A charge would take a prepaid quota below zero (another gateway
    /// sharing the store spent it): nothing of the batch was written.
    #[error("prepaid quota exhausted ({})", if *.sms { "SMS" } else { "balance" })]
    Exhausted {
        /// The SMS count (else the money balance).
        sms: bool,
    },
}

/// What the store's futures return.
pub type StoreResult<T> = Result<T, StoreError>;

/// A boxed future of a store call (the trait is used as `dyn GatewayStore`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageState {
    /// Accepted from the customer, durable, not forwarded yet.
    Accepted,
    /// Accepted by an upstream ([`MessageRecord::upstream`]).
    Forwarded,
    /// Final: the upstream's receipt said this SMPP `message_state` value.
    Done {
        /// The SMPP `message_state` value.
        state: u8,
    },
    /// Refused for good (by an upstream, with this status; or unroutable).
    Failed {
        /// The command status.
        status: u32,
    },
}

/// Which upstream took a message, and under which id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamRef {
    /// The connector's name.
    pub connector: String,
    /// The id as the upstream wrote it.
    pub id: String,
    /// The id normalised by the connector's format (the id map's key).
    pub key: String,
}

/// One customer message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Our message id (given to the customer, formatted by [`format_id`]).
    pub id: u64,
    /// The customer's account (`system_id`).
    pub account: String,
    /// When it was accepted, milliseconds since the Unix epoch.
    pub accepted_ms: u64,
    /// The `submit_sm` as received, as an encoded PDU (everything kept: TLVs too).
    pub submit: Vec<u8>,
    /// Where it stands.
    pub state: MessageState,
    /// The upstream that took it, once one did.
    pub upstream: Option<UpstreamRef>,
    /// When it became final (done or failed), milliseconds since the Unix
    /// epoch; retention counts from here.
    pub final_ms: Option<u64>,
    /// While forwarded and not final: when to stop waiting for the
    /// upstream's receipt, milliseconds since the Unix epoch.
    pub receipt_due_ms: Option<u64>,
    /// SMS parts on the air it counts as (what it was charged and rate
    /// limited by).
    pub parts: u32,
    /// What the account was charged for it, in millionths of its currency
    /// (0: a free route, or an account without a balance).
    pub charge: i64,
    /// When an upstream accepted it, milliseconds since the Unix epoch.
    pub forwarded_ms: Option<u64>,
    /// Where its receipts go over HTTP instead of SMPP (a message sent
    /// over the HTTP API with a receipt URL).
    pub webhook: Option<Webhook>,
    /// The batch it belongs to (HTTP batches), if any.
    pub batch: Option<u64>,
    /// The id the customer knows it by, when not its own: every
    /// destination of a `submit_multi` after the first carries the first's
    /// id (one message id for the submission, as the customer was given).
    pub alias: Option<u64>,
}

impl MessageRecord {
    /// The id the customer was given for it (see [`MessageRecord::alias`]).
    pub fn public_id(&self) -> String {
        format_id(self.alias.unwrap_or(self.id))
    }
}

/// Where and how a message's receipts are posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// The receiver's URL (http or https).
    pub url: String,
    /// `GET` with the fields in the query string, or `POST` with them in
    /// the body.
    pub method: HttpMethod,
    /// The fields' names and layout.
    pub style: WebhookStyle,
}

/// How a webhook is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpMethod {
    /// Fields in the query string.
    Get,
    /// Fields in the body.
    Post,
}

/// Which fields a webhook gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebhookStyle {
    /// Jasmin's receipt callback (form fields `id`, `message_status`,
    /// `level`, ...): level 1 is the upstream's answer to the submit, 2 the
    /// final receipt, 3 both.
    Jasmin {
        /// Jasmin's `dlr-level`.
        level: u8,
    },
    /// A JSON body (POST) with the message's id, state and times.
    Json,
}

/// One HTTP call owed: a receipt or an MO message to a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookCall {
    /// The URL.
    pub url: String,
    /// GET or POST.
    pub method: HttpMethod,
    /// The form fields (GET: in the query; POST: form-encoded body), when
    /// `json` is `None`.
    pub fields: Vec<(String, String)>,
    /// A JSON body (POST).
    pub json: Option<String>,
}

/// An account's prepaid quotas: each `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// Money left, in millionths of the currency.
    pub balance: Option<i64>,
    /// SMS parts left.
    pub sms: Option<i64>,
}

/// A `deliver_sm` owed to a customer: a receipt, or an MO message routed
/// to the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwedReceipt {
    /// Its key in the outbox (unique, increasing).
    pub seq: u64,
    /// The message a receipt is about (our id); 0 for an MO message.
    pub message: u64,
    /// The account it goes to.
    pub account: String,
    /// The `deliver_sm`, as an encoded PDU.
    pub deliver: Vec<u8>,
    /// When set, it goes to this HTTP receiver instead (the `deliver_sm`
    /// is then only a record of it).
    pub webhook: Option<WebhookCall>,
}

/// A receipt from an upstream whose id is not (yet) in the id map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldReceipt {
    /// Its key (unique, increasing).
    pub seq: u64,
    /// The upstream connector it came from.
    pub upstream: String,
    /// The upstream id, normalised by the connector's format.
    pub upstream_id: String,
    /// When it arrived, milliseconds since the Unix epoch.
    pub received_ms: u64,
    /// The upstream's `deliver_sm`, as an encoded PDU.
    pub deliver: Vec<u8>,
}

/// A customer account as the store keeps it (the configuration and the
/// admin API write it; every bind and HTTP login reads it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAccount {
    /// The `system_id`.
    pub system_id: String,
    /// The password: an argon2id PHC string, or plain text.
    pub password: String,
    /// Client networks it may bind from (`10.0.0.0/8`; empty: anywhere).
    pub allow: Vec<String>,
    /// With mutual TLS: the DNS name its client certificate must carry.
    pub certificate_name: Option<String>,
}

/// An HTTP batch: the messages sent for each recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRecord {
    /// Its id (from the message id sequence).
    pub id: u64,
    /// The account that sent it.
    pub account: String,
    /// When it was made, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Each accepted recipient and our ids of its parts.
    pub recipients: Vec<(String, Vec<u64>)>,
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Inserts or replaces a message.
    PutMessage(MessageRecord),
    /// Records the upstream's id (normalised) of our message.
    MapUpstream {
        /// The connector.
        upstream: String,
        /// The normalised upstream id.
        upstream_id: String,
        /// Our id.
        message: u64,
    },
    /// Adds a receipt to the outbox.
    PutReceipt(OwedReceipt),
    /// Removes a delivered receipt from the outbox.
    DeleteReceipt(u64),
    /// Holds an unmatched upstream receipt.
    PutHeld(HeldReceipt),
    /// Releases a held receipt (matched).
    DeleteHeld(u64),
    /// Forgets a message: its record, its id map entry, its index entries.
    DeleteMessage(MessageRecord),
    /// Takes from an account's quotas (a negative amount adds): applied in
    /// the order the store commits, so concurrent charges add up whatever
    /// order they were decided in. A quota that is unlimited stays so.
    Charge {
        /// The account.
        account: String,
        /// Money, in millionths.
        balance: i64,
        /// SMS parts.
        sms: i64,
    },
    /// Records an HTTP batch.
    PutBatch(BatchRecord),
    /// Adds or replaces an account.
    PutAccount(StoredAccount),
    /// Removes an account.
    DeleteAccount(String),
    /// Sets a configuration item (`connector/NAME`, `routes`): its text.
    PutSetting {
        /// The item.
        key: String,
        /// Its text form.
        value: String,
    },
    /// Removes a configuration item.
    DeleteSetting(String),
    /// Sets an account's quotas outright.
    SetQuota {
        /// The account.
        account: String,
        /// The new quotas.
        quota: Quota,
    },
}

impl Quota {
    /// The quotas after taking `balance` and `sms` (unlimited stays unlimited).
    pub fn minus(self, balance: i64, sms: i64) -> Quota {
        Quota {
            balance: self.balance.map(|b| b.saturating_sub(balance)),
            sms: self.sms.map(|n| n.saturating_sub(sms)),
        }
    }
}

/// The gateway's storage: one batched, durable write path and keyed reads.
///
/// Object-safe (`Arc<dyn GatewayStore>`); every call is async so that a
/// networked backend fits behind it.
pub trait GatewayStore: Send + Sync + std::fmt::Debug + 'static {
    /// Applies `ops` atomically; returns once they are durable.
    fn write(&self, ops: Vec<Op>) -> StoreFuture<'_, ()>;

    /// A message by our id.
    fn message(&self, id: u64) -> StoreFuture<'_, Option<MessageRecord>>;

    /// Our id of an upstream's (normalised) message id.
    fn lookup<'a>(
        &'a self,
        upstream: &'a str,
        upstream_id: &'a str,
    ) -> StoreFuture<'a, Option<u64>>;

    /// The messages accepted and not forwarded yet, oldest first.
    fn unforwarded(&self) -> StoreFuture<'_, Vec<MessageRecord>>;

    /// Up to `limit` forwarded messages, not final, whose receipt was due
    /// before `now_ms`, the most overdue first.
    fn overdue(&self, now_ms: u64, limit: usize) -> StoreFuture<'_, Vec<MessageRecord>>;

    /// Up to `limit` messages that became final before `cutoff_ms`, oldest first.
    fn finished_before(&self, cutoff_ms: u64, limit: usize) -> StoreFuture<'_, Vec<MessageRecord>>;

    /// The receipts owed to customers, oldest first.
    fn receipts_owed(&self) -> StoreFuture<'_, Vec<OwedReceipt>>;

    /// The upstream receipts held, oldest first.
    fn held(&self) -> StoreFuture<'_, Vec<HeldReceipt>>;

    /// The highest message id ever stored (new ids start above it).
    fn max_message_id(&self) -> StoreFuture<'_, u64>;

    /// The highest outbox or held key ever stored.
    fn max_seq(&self) -> StoreFuture<'_, u64>;

    /// Every stored account.
    fn accounts(&self) -> StoreFuture<'_, Vec<StoredAccount>>;

    /// The newest messages `matches` accepts, newest first: at most
    /// `limit`, looking at the newest `scan` messages at most (a search of
    /// the recent ones; ids grow with time).
    fn recent<'a>(
        &'a self,
        scan: usize,
        limit: usize,
        matches: &'a (dyn Fn(&MessageRecord) -> bool + Send + Sync),
    ) -> StoreFuture<'a, Vec<MessageRecord>>;

    /// Every configuration item (connectors, the route table), by key.
    fn settings(&self) -> StoreFuture<'_, Vec<(String, String)>>;

    /// An HTTP batch by id.
    fn batch(&self, id: u64) -> StoreFuture<'_, Option<BatchRecord>>;

    /// Every account's stored quotas.
    fn quotas(&self) -> StoreFuture<'_, Vec<(String, Quota)>>;

    /// Makes everything durable and releases the storage (a directory can
    /// then be opened again); later calls fail with [`StoreError::Closed`].
    fn close(&self) -> StoreFuture<'_, ()>;

    /// When several gateways share this store (a database): where it is
    /// and who this node is among them. `None` for a store of one node.
    fn shared(&self) -> Option<Shared> {
        None
    }
}

/// A store several gateways share: the database and this node's identity
/// in it ([`GatewayStore::shared`]).
#[derive(Clone)]
pub struct Shared {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) node: std::sync::Arc<str>,
    pub(crate) ordinal: u32,
}

impl Shared {
    /// This node's id (unique among the nodes, new at each start).
    pub fn node(&self) -> &str {
        &self.node
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("node", &self.node)
            .field("ordinal", &self.ordinal)
            .finish_non_exhaustive()
    }
}

/// Our message id as the customer sees it: upper-case hexadecimal.
pub fn format_id(id: u64) -> String {
    format!("{id:X}")
}

/// Reads back an id written by [`format_id`].
pub fn parse_id(id: &str) -> Option<u64> {
    u64::from_str_radix(id.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        assert_eq!(parse_id(&format_id(0x5F3A_0001)), Some(0x5F3A_0001));
        assert_eq!(parse_id("zz"), None);
    }

    /// The same script against every backend: what a restart needs is there.
    pub(crate) async fn exercise(store: &dyn GatewayStore) {
        let record = MessageRecord {
            id: 7,
            account: "esme".into(),
            accepted_ms: 1,
            submit: vec![1, 2, 3],
            state: MessageState::Accepted,
            upstream: None,
            final_ms: None,
            receipt_due_ms: None,
            parts: 1,
            charge: 0,
            forwarded_ms: None,
            webhook: None,
            batch: None,
            alias: None,
        };
        store
            .write(vec![Op::PutMessage(record.clone())])
            .await
            .unwrap();
        assert_eq!(
            store.unforwarded().await.unwrap(),
            std::slice::from_ref(&record)
        );
        let forwarded = MessageRecord {
            state: MessageState::Forwarded,
            upstream: Some(UpstreamRef {
                connector: "a".into(),
                id: "AbC".into(),
                key: "abc".into(),
            }),
            ..record
        };
        let owed = OwedReceipt {
            seq: 3,
            message: 7,
            account: "esme".into(),
            deliver: vec![9],
            webhook: None,
        };
        let held = HeldReceipt {
            seq: 4,
            upstream: "a".into(),
            upstream_id: "x".into(),
            received_ms: 5,
            deliver: vec![8],
        };
        store
            .write(vec![
                Op::PutMessage(forwarded.clone()),
                Op::MapUpstream {
                    upstream: "a".into(),
                    upstream_id: "abc".into(),
                    message: 7,
                },
                Op::PutReceipt(owed.clone()),
                Op::PutHeld(held.clone()),
            ])
            .await
            .unwrap();
        assert!(store.unforwarded().await.unwrap().is_empty());
        assert_eq!(store.message(7).await.unwrap().as_ref(), Some(&forwarded));
        assert_eq!(store.lookup("a", "abc").await.unwrap(), Some(7));
        assert_eq!(store.lookup("b", "abc").await.unwrap(), None);
        assert_eq!(store.receipts_owed().await.unwrap(), [owed]);
        assert_eq!(store.held().await.unwrap(), [held]);
        assert_eq!(store.max_message_id().await.unwrap(), 7);
        assert_eq!(store.max_seq().await.unwrap(), 4);
        store
            .write(vec![Op::DeleteReceipt(3), Op::DeleteHeld(4)])
            .await
            .unwrap();
        assert!(store.receipts_owed().await.unwrap().is_empty());
        assert!(store.held().await.unwrap().is_empty());
        assert_eq!(store.max_seq().await.unwrap(), 4, "a high-water mark");

        // Forwarded ones waiting for a receipt, by when it is due.
        let mut waiting = forwarded.clone();
        waiting.receipt_due_ms = Some(500);
        store
            .write(vec![Op::PutMessage(waiting.clone())])
            .await
            .unwrap();
        assert!(store.overdue(500, 10).await.unwrap().is_empty());
        assert_eq!(
            store.overdue(501, 10).await.unwrap(),
            std::slice::from_ref(&waiting)
        );

        // Final messages, found by when they became final, then forgotten.
        assert!(store
            .finished_before(u64::MAX, 10)
            .await
            .unwrap()
            .is_empty());
        let done = MessageRecord {
            state: MessageState::Done { state: 2 },
            final_ms: Some(1_000),
            ..waiting
        };
        let mut later = done.clone();
        later.id = 8;
        later.upstream = None;
        later.final_ms = Some(2_000);
        store
            .write(vec![
                Op::PutMessage(later.clone()),
                Op::PutMessage(done.clone()),
            ])
            .await
            .unwrap();
        assert!(
            store.overdue(u64::MAX, 10).await.unwrap().is_empty(),
            "final"
        );
        assert_eq!(store.finished_before(1_000, 10).await.unwrap(), []);
        assert_eq!(
            store.finished_before(1_001, 10).await.unwrap(),
            std::slice::from_ref(&done)
        );
        assert_eq!(
            store.finished_before(5_000, 10).await.unwrap(),
            [done.clone(), later.clone()]
        );
        assert_eq!(store.finished_before(5_000, 1).await.unwrap().len(), 1);
        store.write(vec![Op::DeleteMessage(done)]).await.unwrap();
        assert_eq!(store.message(7).await.unwrap(), None);
        assert_eq!(store.lookup("a", "abc").await.unwrap(), None);
        assert_eq!(store.finished_before(5_000, 10).await.unwrap(), [later]);
        assert_eq!(
            store.max_message_id().await.unwrap(),
            8,
            "ids never go back"
        );

        // Quotas: set, then charges (and a credit) add up in commit order.
        let quota = Quota {
            balance: Some(1_000_000),
            sms: None,
        };
        store
            .write(vec![Op::SetQuota {
                account: "esme".into(),
                quota,
            }])
            .await
            .unwrap();
        for (balance, sms) in [(30_000, 1), (-5_000, 0), (30_000, 2)] {
            store
                .write(vec![Op::Charge {
                    account: "esme".into(),
                    balance,
                    sms,
                }])
                .await
                .unwrap();
        }
        let account = StoredAccount {
            system_id: "esme".into(),
            password: "pw".into(),
            allow: vec!["10.0.0.0/8".into()],
            certificate_name: None,
        };
        store
            .write(vec![
                Op::PutAccount(account.clone()),
                Op::PutAccount(StoredAccount {
                    system_id: "gone".into(),
                    ..account.clone()
                }),
                Op::DeleteAccount("gone".into()),
            ])
            .await
            .unwrap();
        assert_eq!(store.accounts().await.unwrap(), [account]);
        // The recent search: newest first, filtered, limited.
        let all = |_: &MessageRecord| true;
        let recent = store.recent(100, 10, &all).await.unwrap();
        assert!(recent.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        let none = |_: &MessageRecord| false;
        assert!(store.recent(100, 10, &none).await.unwrap().is_empty());
        let setting = |k: &str, v: &str| Op::PutSetting {
            key: k.into(),
            value: v.into(),
        };
        store
            .write(vec![
                setting("connector/a", "a=x:y@h:1"),
                setting("connector/b", "b=x:y@h:2"),
                setting("routes", "[]"),
                setting("routes", "[\"*=a\"]"),
                Op::DeleteSetting("connector/b".into()),
            ])
            .await
            .unwrap();
        assert_eq!(
            store.settings().await.unwrap(),
            [
                ("connector/a".to_owned(), "a=x:y@h:1".to_owned()),
                ("routes".to_owned(), "[\"*=a\"]".to_owned())
            ]
        );
        assert_eq!(
            store.quotas().await.unwrap(),
            [(
                "esme".to_owned(),
                Quota {
                    balance: Some(945_000),
                    sms: None
                }
            )]
        );
    }

    #[tokio::test]
    async fn memory_store() {
        exercise(&MemoryStore::default()).await;
    }

    #[tokio::test]
    async fn fjall_store_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = FjallStore::open(dir.path()).unwrap();
            exercise(&store).await;
        }
        let store = FjallStore::open(dir.path()).unwrap();
        assert_eq!(store.lookup("a", "abc").await.unwrap(), None, "deleted");
        assert_eq!(store.message(8).await.unwrap().map(|m| m.id), Some(8));
        assert_eq!(store.finished_before(5_000, 10).await.unwrap().len(), 1);
        assert_eq!(store.max_message_id().await.unwrap(), 8);
        assert_eq!(store.max_seq().await.unwrap(), 4);
        assert_eq!(store.quotas().await.unwrap()[0].1.balance, Some(945_000));
        // The writer starts from the stored quotas.
        store
            .write(vec![Op::Charge {
                account: "esme".into(),
                balance: 45_000,
                sms: 0,
            }])
            .await
            .unwrap();
        assert_eq!(store.quotas().await.unwrap()[0].1.balance, Some(900_000));
    }
}
