//! The PostgreSQL backend: the same records as the embedded store, in
//! tables, for gateways that share one database.
//!
//! Writes: one writer task takes every batch waiting in its queue, folds
//! them into one set of changes per table (the last write of a key wins,
//! charges of an account add up) and commits them as one transaction: a
//! fixed handful of `UNNEST` statements whatever the group's size, sent
//! pipelined with `BEGIN` and `COMMIT` (one round trip), then releases the
//! waiters (group commit). Charges are applied in SQL (`balance = balance -
//! delta`, NULL staying unlimited), so they add up in commit order whoever
//! commits. Reads go through a second connection. A connection that
//! failed is made again at the next call.
//!
//! Records keep the embedded store's format (postcard bytes in `bytea`
//! columns) beside the columns the reads look up and order by.
//!
//! The schema is created and upgraded by the migrations compiled into the
//! binary ([`PgStore::migrate`]), each applied once (table
//! `schema_migrations`) under an advisory lock, so that nodes starting
//! together do not race.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Statement};

use super::{
    BatchRecord, GatewayStore, HeldReceipt, MessageRecord, MessageState, Op, OwedReceipt, Quota,
    StoreError, StoreFuture, StoreResult, StoredAccount,
};

/// Batches waiting for the writer at most (callers wait beyond it).
const QUEUE: usize = 4096;

/// How long a connection attempt may take when the URL does not say
/// (`connect_timeout=`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The advisory lock the migrations run under ("smppgwm1").
const MIGRATION_LOCK: i64 = 0x736d_7070_6777_6d31;

/// The schema's versions, in order: each applied once, in one transaction.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "gateway store",
    r#"
CREATE TABLE messages (
    id int8 PRIMARY KEY,
    unforwarded bool NOT NULL,
    -- receipt_due_ms while forwarded and not final
    waiting_due int8,
    final_ms int8,
    record bytea NOT NULL
);
CREATE INDEX messages_unforwarded ON messages (id) WHERE unforwarded;
CREATE INDEX messages_waiting ON messages (waiting_due, id) WHERE waiting_due IS NOT NULL;
CREATE INDEX messages_final ON messages (final_ms, id) WHERE final_ms IS NOT NULL;
CREATE TABLE upstream_ids (
    connector bytea NOT NULL,
    upstream_id bytea NOT NULL,
    message int8 NOT NULL,
    PRIMARY KEY (connector, upstream_id)
);
CREATE TABLE receipts_owed (
    seq int8 PRIMARY KEY,
    message int8 NOT NULL,
    account text NOT NULL,
    record bytea NOT NULL
);
CREATE TABLE receipts_held (
    seq int8 PRIMARY KEY,
    connector bytea NOT NULL,
    upstream_id bytea NOT NULL,
    record bytea NOT NULL
);
CREATE TABLE quotas (
    account text COLLATE "C" PRIMARY KEY,
    balance int8,
    sms int8
);
CREATE TABLE accounts (
    system_id text COLLATE "C" PRIMARY KEY,
    record bytea NOT NULL
);
CREATE TABLE settings (
    key text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);
CREATE TABLE batches (
    id int8 PRIMARY KEY,
    account text NOT NULL,
    record bytea NOT NULL
);
CREATE TABLE meta (
    key text PRIMARY KEY,
    value int8 NOT NULL
);
INSERT INTO meta (key, value) VALUES ('max_message_id', 0), ('max_seq', 0);
"#,
)];

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Engine(format!("PostgreSQL: {e}"))
    }
}

/// A number as PostgreSQL's `int8`.
fn int8(n: u64) -> StoreResult<i64> {
    i64::try_from(n).map_err(|_| StoreError::Engine(format!("{n} does not fit PostgreSQL's int8")))
}

/// A bound (a time, a limit) as `int8`: the largest when it does not fit.
fn bound(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored `int8` that is one of our numbers (never negative).
fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Where the database is, for messages (no password).
fn describe(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    format!("{user}@{host}:{port}/{db}")
}

/// Parses a `postgres://USER@HOST[:PORT]/DB` URL (or `key=value` words).
fn parse_url(url: &str) -> StoreResult<Config> {
    let mut config = Config::from_str(url)
        .map_err(|e| StoreError::Engine(format!("bad PostgreSQL URL: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.application_name("smpp-gateway");
    Ok(config)
}

async fn connect_client(config: &Config) -> StoreResult<Client> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| {
        // The cause (refused, unknown database) is the source's text.
        let cause = std::error::Error::source(&e).map_or(String::new(), |s| format!(": {s}"));
        StoreError::Engine(format!(
            "cannot connect to PostgreSQL at {}: {e}{cause}",
            describe(config)
        ))
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection lost");
        }
    });
    Ok(client)
}

/// Polls every future in the order given until all are done: requests on
/// one connection go out in that order, pipelined.
async fn in_order<'a, T>(mut futures: Vec<Pin<Box<dyn Future<Output = T> + Send + 'a>>>) -> Vec<T> {
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, slot) in futures.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// The prepared statements of one connection.
struct Statements {
    upsert_messages: Statement,
    delete_messages: Statement,
    upsert_ids: Statement,
    delete_ids: Statement,
    upsert_receipts: Statement,
    delete_receipts: Statement,
    upsert_held: Statement,
    delete_held: Statement,
    upsert_accounts: Statement,
    delete_accounts: Statement,
    upsert_settings: Statement,
    delete_settings: Statement,
    upsert_batches: Statement,
    set_quotas: Statement,
    add_quotas: Statement,
    charge_quotas: Statement,
    raise_meta: Statement,
    message: Statement,
    lookup: Statement,
    unforwarded: Statement,
    overdue: Statement,
    finished: Statement,
    receipts: Statement,
    held: Statement,
    meta: Statement,
    accounts: Statement,
    settings: Statement,
    batch: Statement,
    quotas: Statement,
}

/// `int8` clamped: quotas saturate as in the other stores (NULL, unlimited,
/// stays so: `GREATEST` and `LEAST` would skip it).
const CLAMP_LOW: &str = "-9223372036854775808";
const CLAMP_HIGH: &str = "9223372036854775807";

impl Statements {
    async fn prepare(client: &Client) -> StoreResult<Statements> {
        let charge = format!(
            "UPDATE quotas q SET \
             balance = CASE WHEN q.balance IS NOT NULL THEN \
             LEAST(GREATEST(q.balance::numeric - d.b, {CLAMP_LOW}), {CLAMP_HIGH})::int8 END, \
             sms = CASE WHEN q.sms IS NOT NULL THEN \
             LEAST(GREATEST(q.sms::numeric - d.s, {CLAMP_LOW}), {CLAMP_HIGH})::int8 END \
             FROM UNNEST($1::text[], $2::int8[], $3::int8[]) AS d(a, b, s) WHERE q.account = d.a"
        );
        let texts: [&str; 29] = [
            "INSERT INTO messages (id, unforwarded, waiting_due, final_ms, record) \
             SELECT * FROM UNNEST($1::int8[], $2::bool[], $3::int8[], $4::int8[], $5::bytea[]) \
             ON CONFLICT (id) DO UPDATE SET unforwarded = EXCLUDED.unforwarded, \
             waiting_due = EXCLUDED.waiting_due, final_ms = EXCLUDED.final_ms, \
             record = EXCLUDED.record",
            "DELETE FROM messages WHERE id = ANY($1::int8[])",
            "INSERT INTO upstream_ids (connector, upstream_id, message) \
             SELECT * FROM UNNEST($1::bytea[], $2::bytea[], $3::int8[]) \
             ON CONFLICT (connector, upstream_id) DO UPDATE SET message = EXCLUDED.message",
            "DELETE FROM upstream_ids u USING UNNEST($1::bytea[], $2::bytea[]) AS d(c, k) \
             WHERE u.connector = d.c AND u.upstream_id = d.k",
            "INSERT INTO receipts_owed (seq, message, account, record) \
             SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::bytea[]) \
             ON CONFLICT (seq) DO UPDATE SET message = EXCLUDED.message, \
             account = EXCLUDED.account, record = EXCLUDED.record",
            "DELETE FROM receipts_owed WHERE seq = ANY($1::int8[])",
            "INSERT INTO receipts_held (seq, connector, upstream_id, record) \
             SELECT * FROM UNNEST($1::int8[], $2::bytea[], $3::bytea[], $4::bytea[]) \
             ON CONFLICT (seq) DO UPDATE SET connector = EXCLUDED.connector, \
             upstream_id = EXCLUDED.upstream_id, record = EXCLUDED.record",
            "DELETE FROM receipts_held WHERE seq = ANY($1::int8[])",
            "INSERT INTO accounts (system_id, record) \
             SELECT * FROM UNNEST($1::text[], $2::bytea[]) \
             ON CONFLICT (system_id) DO UPDATE SET record = EXCLUDED.record",
            "DELETE FROM accounts WHERE system_id = ANY($1::text[])",
            "INSERT INTO settings (key, value) SELECT * FROM UNNEST($1::text[], $2::bytea[]) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            "DELETE FROM settings WHERE key = ANY($1::text[])",
            "INSERT INTO batches (id, account, record) \
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::bytea[]) \
             ON CONFLICT (id) DO UPDATE SET account = EXCLUDED.account, record = EXCLUDED.record",
            "INSERT INTO quotas (account, balance, sms) \
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[]) \
             ON CONFLICT (account) DO UPDATE SET balance = EXCLUDED.balance, sms = EXCLUDED.sms",
            "INSERT INTO quotas (account) SELECT * FROM UNNEST($1::text[]) \
             ON CONFLICT (account) DO NOTHING",
            &charge,
            "UPDATE meta SET value = GREATEST(value, $2::int8) WHERE key = $1::text",
            "SELECT record FROM messages WHERE id = $1::int8",
            "SELECT message FROM upstream_ids WHERE connector = $1::bytea AND upstream_id = $2::bytea",
            "SELECT record FROM messages WHERE unforwarded ORDER BY id",
            "SELECT record FROM messages WHERE waiting_due < $1::int8 \
             ORDER BY waiting_due, id LIMIT $2::int8",
            "SELECT record FROM messages WHERE final_ms < $1::int8 \
             ORDER BY final_ms, id LIMIT $2::int8",
            "SELECT record FROM receipts_owed ORDER BY seq",
            "SELECT record FROM receipts_held ORDER BY seq",
            "SELECT value FROM meta WHERE key = $1::text",
            "SELECT record FROM accounts ORDER BY system_id",
            "SELECT key, value FROM settings ORDER BY key",
            "SELECT record FROM batches WHERE id = $1::int8",
            "SELECT account, balance, sms FROM quotas ORDER BY account",
        ];
        // Prepared together: one round trip.
        let prepared = in_order(
            texts
                .iter()
                .map(|text| {
                    Box::pin(client.prepare(text))
                        as Pin<
                            Box<
                                dyn Future<Output = Result<Statement, tokio_postgres::Error>>
                                    + Send
                                    + '_,
                            >,
                        >
                })
                .collect(),
        )
        .await;
        let mut it = prepared.into_iter();
        let mut next = || -> StoreResult<Statement> {
            Ok(it
                .next()
                .ok_or_else(|| StoreError::Engine("a statement was not prepared".into()))??)
        };
        Ok(Statements {
            upsert_messages: next()?,
            delete_messages: next()?,
            upsert_ids: next()?,
            delete_ids: next()?,
            upsert_receipts: next()?,
            delete_receipts: next()?,
            upsert_held: next()?,
            delete_held: next()?,
            upsert_accounts: next()?,
            delete_accounts: next()?,
            upsert_settings: next()?,
            delete_settings: next()?,
            upsert_batches: next()?,
            set_quotas: next()?,
            add_quotas: next()?,
            charge_quotas: next()?,
            raise_meta: next()?,
            message: next()?,
            lookup: next()?,
            unforwarded: next()?,
            overdue: next()?,
            finished: next()?,
            receipts: next()?,
            held: next()?,
            meta: next()?,
            accounts: next()?,
            settings: next()?,
            batch: next()?,
            quotas: next()?,
        })
    }
}

/// A connection with its statements.
struct Conn {
    client: Client,
    st: Statements,
}

impl Conn {
    async fn open(config: &Config) -> StoreResult<Conn> {
        let client = connect_client(config).await?;
        let st = Statements::prepare(&client).await?;
        Ok(Conn { client, st })
    }

    async fn records<T: serde::de::DeserializeOwned>(
        &self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> StoreResult<Vec<T>> {
        let rows = self.client.query(statement, params).await?;
        rows.iter()
            .map(|row| Ok(postcard::from_bytes(row.try_get::<_, &[u8]>(0)?)?))
            .collect()
    }

    async fn record<T: serde::de::DeserializeOwned>(
        &self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> StoreResult<Option<T>> {
        let row = self.client.query_opt(statement, params).await?;
        match row {
            Some(row) => Ok(Some(postcard::from_bytes(row.try_get::<_, &[u8]>(0)?)?)),
            None => Ok(None),
        }
    }

    async fn meta(&self, key: &str) -> StoreResult<u64> {
        match self.client.query_opt(&self.st.meta, &[&key]).await? {
            Some(row) => Ok(unsigned(row.try_get(0)?)),
            None => Ok(0),
        }
    }
}

/// A statement's parameters, owned.
type Params = Vec<Box<dyn ToSql + Sync + Send>>;

macro_rules! params {
    ($($p:expr),* $(,)?) => {
        vec![$(Box::new($p) as Box<dyn ToSql + Sync + Send>),*]
    };
}

/// What a group of batches changes in the end: per key, its last write
/// (`None`: deleted); per account, its quotas set or the charges summed.
#[derive(Default)]
struct Changes {
    messages: BTreeMap<u64, Option<MessageRecord>>,
    ids: BTreeMap<(String, String), Option<u64>>,
    receipts: BTreeMap<u64, Option<OwedReceipt>>,
    held: BTreeMap<u64, Option<HeldReceipt>>,
    accounts: BTreeMap<String, Option<StoredAccount>>,
    settings: BTreeMap<String, Option<String>>,
    batches: BTreeMap<u64, BatchRecord>,
    quotas: BTreeMap<String, QuotaChange>,
    max_id: u64,
    max_seq: u64,
}

#[derive(Clone, Copy)]
enum QuotaChange {
    Set(Quota),
    Charge { balance: i64, sms: i64 },
}

/// Checks what the database cannot store (numbers beyond `int8`), so
/// that one bad batch fails alone.
fn check(ops: &[Op]) -> StoreResult<()> {
    for op in ops {
        match op {
            Op::PutMessage(r) | Op::DeleteMessage(r) => {
                int8(r.id)?;
                for n in [r.final_ms, r.receipt_due_ms].into_iter().flatten() {
                    int8(n)?;
                }
            }
            Op::MapUpstream { message, .. } => {
                int8(*message)?;
            }
            Op::PutReceipt(r) => {
                int8(r.seq)?;
                int8(r.message)?;
            }
            Op::PutHeld(h) => {
                int8(h.seq)?;
            }
            Op::DeleteReceipt(seq) | Op::DeleteHeld(seq) => {
                int8(*seq)?;
            }
            Op::PutBatch(b) => {
                int8(b.id)?;
            }
            _ => {}
        }
    }
    Ok(())
}

impl Changes {
    fn add(&mut self, ops: Vec<Op>) {
        for op in ops {
            match op {
                Op::PutMessage(record) => {
                    self.max_id = self.max_id.max(record.id);
                    self.messages.insert(record.id, Some(record));
                }
                Op::DeleteMessage(record) => {
                    self.messages.insert(record.id, None);
                    if let Some(up) = record.upstream {
                        self.ids.insert((up.connector, up.key), None);
                    }
                }
                Op::MapUpstream {
                    upstream,
                    upstream_id,
                    message,
                } => {
                    self.ids.insert((upstream, upstream_id), Some(message));
                }
                Op::PutReceipt(receipt) => {
                    self.max_seq = self.max_seq.max(receipt.seq);
                    self.receipts.insert(receipt.seq, Some(receipt));
                }
                Op::DeleteReceipt(seq) => {
                    self.receipts.insert(seq, None);
                }
                Op::PutHeld(held) => {
                    self.max_seq = self.max_seq.max(held.seq);
                    self.held.insert(held.seq, Some(held));
                }
                Op::DeleteHeld(seq) => {
                    self.held.insert(seq, None);
                }
                Op::Charge {
                    account,
                    balance,
                    sms,
                } => {
                    let change = match self.quotas.get(&account) {
                        Some(QuotaChange::Set(quota)) => {
                            QuotaChange::Set(quota.minus(balance, sms))
                        }
                        Some(QuotaChange::Charge { balance: b, sms: s }) => QuotaChange::Charge {
                            balance: b.saturating_add(balance),
                            sms: s.saturating_add(sms),
                        },
                        None => QuotaChange::Charge { balance, sms },
                    };
                    self.quotas.insert(account, change);
                }
                Op::SetQuota { account, quota } => {
                    self.quotas.insert(account, QuotaChange::Set(quota));
                }
                Op::PutBatch(batch) => {
                    self.max_id = self.max_id.max(batch.id);
                    self.batches.insert(batch.id, batch);
                }
                Op::PutAccount(account) => {
                    self.accounts
                        .insert(account.system_id.clone(), Some(account));
                }
                Op::DeleteAccount(id) => {
                    self.accounts.insert(id, None);
                }
                Op::PutSetting { key, value } => {
                    self.settings.insert(key, Some(value));
                }
                Op::DeleteSetting(key) => {
                    self.settings.insert(key, None);
                }
            }
        }
    }

    /// The statements that apply the changes, with their parameters.
    fn statements<'s>(&self, st: &'s Statements) -> StoreResult<Vec<(&'s Statement, Params)>> {
        let mut out: Vec<(&Statement, Params)> = Vec::new();
        let mut push = |statement, params: Params| {
            out.push((statement, params));
        };

        let (mut ids, mut unforwarded, mut waiting, mut finals, mut records) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut gone = Vec::new();
        for (id, record) in &self.messages {
            match record {
                Some(r) => {
                    ids.push(int8(*id)?);
                    unforwarded.push(r.state == MessageState::Accepted);
                    let due = r
                        .receipt_due_ms
                        .filter(|_| r.state == MessageState::Forwarded);
                    waiting.push(due.map(int8).transpose()?);
                    finals.push(r.final_ms.map(int8).transpose()?);
                    records.push(postcard::to_stdvec(r)?);
                }
                None => gone.push(int8(*id)?),
            }
        }
        if !ids.is_empty() {
            push(
                &st.upsert_messages,
                params![ids, unforwarded, waiting, finals, records],
            );
        }
        if !gone.is_empty() {
            push(&st.delete_messages, params![gone]);
        }

        let (mut connectors, mut keys, mut messages) = (Vec::new(), Vec::new(), Vec::new());
        let (mut gone_connectors, mut gone_keys) = (Vec::new(), Vec::new());
        for ((connector, key), message) in &self.ids {
            match message {
                Some(m) => {
                    connectors.push(connector.as_bytes().to_vec());
                    keys.push(key.as_bytes().to_vec());
                    messages.push(int8(*m)?);
                }
                None => {
                    gone_connectors.push(connector.as_bytes().to_vec());
                    gone_keys.push(key.as_bytes().to_vec());
                }
            }
        }
        if !connectors.is_empty() {
            push(&st.upsert_ids, params![connectors, keys, messages]);
        }
        if !gone_connectors.is_empty() {
            push(&st.delete_ids, params![gone_connectors, gone_keys]);
        }

        let (mut seqs, mut messages, mut accounts, mut records, mut gone) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (seq, receipt) in &self.receipts {
            match receipt {
                Some(r) => {
                    seqs.push(int8(*seq)?);
                    messages.push(int8(r.message)?);
                    accounts.push(r.account.clone());
                    records.push(postcard::to_stdvec(r)?);
                }
                None => gone.push(int8(*seq)?),
            }
        }
        if !seqs.is_empty() {
            push(
                &st.upsert_receipts,
                params![seqs, messages, accounts, records],
            );
        }
        if !gone.is_empty() {
            push(&st.delete_receipts, params![gone]);
        }

        let (mut seqs, mut connectors, mut keys, mut records, mut gone) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (seq, held) in &self.held {
            match held {
                Some(h) => {
                    seqs.push(int8(*seq)?);
                    connectors.push(h.upstream.as_bytes().to_vec());
                    keys.push(h.upstream_id.as_bytes().to_vec());
                    records.push(postcard::to_stdvec(h)?);
                }
                None => gone.push(int8(*seq)?),
            }
        }
        if !seqs.is_empty() {
            push(&st.upsert_held, params![seqs, connectors, keys, records]);
        }
        if !gone.is_empty() {
            push(&st.delete_held, params![gone]);
        }

        let (mut names, mut records, mut gone) = (Vec::new(), Vec::new(), Vec::new());
        for (name, account) in &self.accounts {
            match account {
                Some(a) => {
                    names.push(name.clone());
                    records.push(postcard::to_stdvec(a)?);
                }
                None => gone.push(name.clone()),
            }
        }
        if !names.is_empty() {
            push(&st.upsert_accounts, params![names, records]);
        }
        if !gone.is_empty() {
            push(&st.delete_accounts, params![gone]);
        }

        let (mut keys, mut values, mut gone) = (Vec::new(), Vec::new(), Vec::new());
        for (key, value) in &self.settings {
            match value {
                Some(v) => {
                    keys.push(key.clone());
                    values.push(v.as_bytes().to_vec());
                }
                None => gone.push(key.clone()),
            }
        }
        if !keys.is_empty() {
            push(&st.upsert_settings, params![keys, values]);
        }
        if !gone.is_empty() {
            push(&st.delete_settings, params![gone]);
        }

        if !self.batches.is_empty() {
            let (mut ids, mut accounts, mut records) = (Vec::new(), Vec::new(), Vec::new());
            for (id, batch) in &self.batches {
                ids.push(int8(*id)?);
                accounts.push(batch.account.clone());
                records.push(postcard::to_stdvec(batch)?);
            }
            push(&st.upsert_batches, params![ids, accounts, records]);
        }

        let (mut set, mut set_balance, mut set_sms) = (Vec::new(), Vec::new(), Vec::new());
        let (mut charged, mut balances, mut sms) = (Vec::new(), Vec::new(), Vec::new());
        for (account, change) in &self.quotas {
            match *change {
                QuotaChange::Set(q) => {
                    set.push(account.clone());
                    set_balance.push(q.balance);
                    set_sms.push(q.sms);
                }
                QuotaChange::Charge { balance, sms: s } => {
                    charged.push(account.clone());
                    balances.push(balance);
                    sms.push(s);
                }
            }
        }
        if !set.is_empty() {
            push(&st.set_quotas, params![set, set_balance, set_sms]);
        }
        if !charged.is_empty() {
            // A charge to an account without quotas leaves it unlimited
            // (a row of NULLs, as the other stores keep).
            push(&st.add_quotas, params![charged.clone()]);
            push(&st.charge_quotas, params![charged, balances, sms]);
        }

        if self.max_id > 0 {
            push(
                &st.raise_meta,
                params!["max_message_id".to_owned(), int8(self.max_id)?],
            );
        }
        if self.max_seq > 0 {
            push(
                &st.raise_meta,
                params!["max_seq".to_owned(), int8(self.max_seq)?],
            );
        }
        Ok(out)
    }
}

/// Commits `changes` in one transaction, pipelined: `BEGIN`, the
/// statements, `COMMIT` go out together.
async fn commit(conn: &Conn, changes: &Changes) -> StoreResult<()> {
    let statements = changes.statements(&conn.st)?;
    if statements.is_empty() {
        return Ok(());
    }
    type Pending<'a> = Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + Send + 'a>>;
    let client = &conn.client;
    let mut futures: Vec<Pending<'_>> = Vec::with_capacity(statements.len() + 2);
    futures.push(Box::pin(client.batch_execute("BEGIN")));
    for (statement, params) in &statements {
        let params = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync));
        futures.push(Box::pin(async move {
            client.execute_raw(*statement, params).await.map(|_| ())
        }));
    }
    futures.push(Box::pin(client.batch_execute("COMMIT")));
    // The first error is the cause (after it, PostgreSQL refuses the rest
    // of the transaction and `COMMIT` rolls it back).
    for result in in_order(futures).await {
        result?;
    }
    Ok(())
}

struct Job {
    ops: Vec<Op>,
    done: oneshot::Sender<StoreResult<()>>,
}

/// The writer: takes every job waiting, commits them as one transaction,
/// answers them all.
async fn write_loop(config: Config, mut conn: Option<Conn>, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::new();
    while let Some(first) = rx.recv().await {
        jobs.push(first);
        while jobs.len() < QUEUE {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut changes = Changes::default();
        let mut taken = Vec::with_capacity(jobs.len());
        for job in jobs.drain(..) {
            match check(&job.ops) {
                Ok(()) => {
                    changes.add(job.ops);
                    taken.push(job.done);
                }
                Err(e) => {
                    let _ = job.done.send(Err(e));
                }
            }
        }
        if taken.is_empty() {
            continue;
        }
        if conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            conn = Conn::open(&config).await.map_err(log_failure).ok();
        }
        let result = match &conn {
            Some(c) => commit(c, &changes).await,
            None => Err(StoreError::Engine(format!(
                "cannot reach PostgreSQL at {}",
                describe(&config)
            ))),
        };
        if let Err(e) = &result {
            tracing::warn!(error = %e, "PostgreSQL write failed");
            // A fresh connection next time: no doubt about its state.
            conn = None;
        }
        for done in taken {
            let answer = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Engine(e.to_string())),
            };
            let _ = done.send(answer);
        }
    }
}

fn log_failure(e: StoreError) -> StoreError {
    tracing::warn!(error = %e, "PostgreSQL connection failed");
    e
}

/// The store in a PostgreSQL database, shared by every gateway pointing
/// at it.
pub struct PgStore {
    config: Config,
    closed: AtomicBool,
    /// The readers' connection (made again when lost).
    reader: Mutex<Option<Arc<Conn>>>,
    jobs: RwLock<Option<mpsc::Sender<Job>>>,
    writer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("database", &describe(&self.config))
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://USER@HOST[:PORT]/DB`,
    /// without TLS), applies the migrations it lacks, and starts the
    /// writer. Needs a Tokio runtime.
    pub async fn connect(url: &str) -> StoreResult<PgStore> {
        let config = parse_url(url)?;
        migrate_with(&config).await?;
        let writer_conn = Conn::open(&config).await?;
        let reader = Conn::open(&config).await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(write_loop(config.clone(), Some(writer_conn), rx));
        Ok(PgStore {
            config,
            closed: AtomicBool::new(false),
            reader: Mutex::new(Some(Arc::new(reader))),
            jobs: RwLock::new(Some(tx)),
            writer: std::sync::Mutex::new(Some(writer)),
        })
    }

    /// Applies the migrations the database at `url` lacks, under an
    /// advisory lock (concurrent callers wait, then find nothing to do);
    /// returns the versions applied.
    pub async fn migrate(url: &str) -> StoreResult<Vec<i64>> {
        migrate_with(&parse_url(url)?).await
    }

    async fn reader(&self) -> StoreResult<Arc<Conn>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let mut reader = self.reader.lock().await;
        if let Some(conn) = reader.as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(conn.clone());
        }
        let conn = Arc::new(Conn::open(&self.config).await?);
        *reader = Some(conn.clone());
        Ok(conn)
    }
}

async fn migrate_with(config: &Config) -> StoreResult<Vec<i64>> {
    // Its own connection: the lock goes with it, whatever happens.
    let client = connect_client(config).await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
             version int8 PRIMARY KEY, name text NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    let done: Vec<i64> = client
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if let Some(newer) = done.iter().find(|v| **v > known) {
        return Err(StoreError::Engine(format!(
            "the database's schema is at version {newer}, newer than this gateway knows \
             ({known}): upgrade the gateway"
        )));
    }
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        client.batch_execute("BEGIN").await?;
        let result = async {
            client.batch_execute(sql).await?;
            client
                .execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    &[version, name],
                )
                .await?;
            client.batch_execute("COMMIT").await
        }
        .await;
        if let Err(e) = result {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(StoreError::Engine(format!(
                "migration {version} ({name}) failed: {e}"
            )));
        }
        tracing::info!(version, name, "database migrated");
        applied.push(*version);
    }
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    Ok(applied)
}

impl GatewayStore for PgStore {
    fn write(&self, ops: Vec<Op>) -> StoreFuture<'_, ()> {
        let jobs = self.jobs.read().unwrap_or_else(|e| e.into_inner()).clone();
        Box::pin(async move {
            let jobs = jobs.ok_or(StoreError::Closed)?;
            let (done, wait) = oneshot::channel();
            jobs.send(Job { ops, done })
                .await
                .map_err(|_| StoreError::Closed)?;
            wait.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn message(&self, id: u64) -> StoreFuture<'_, Option<MessageRecord>> {
        Box::pin(async move {
            let Ok(id) = i64::try_from(id) else {
                return Ok(None);
            };
            let c = self.reader().await?;
            c.record(&c.st.message, &[&id]).await
        })
    }

    fn lookup<'a>(
        &'a self,
        upstream: &'a str,
        upstream_id: &'a str,
    ) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async move {
            let c = self.reader().await?;
            let row = c
                .client
                .query_opt(
                    &c.st.lookup,
                    &[&upstream.as_bytes(), &upstream_id.as_bytes()],
                )
                .await?;
            Ok(row
                .map(|r| r.try_get::<_, i64>(0))
                .transpose()?
                .map(unsigned))
        })
    }

    fn unforwarded(&self) -> StoreFuture<'_, Vec<MessageRecord>> {
        Box::pin(async move {
            let c = self.reader().await?;
            c.records(&c.st.unforwarded, &[]).await
        })
    }

    fn overdue(&self, now_ms: u64, limit: usize) -> StoreFuture<'_, Vec<MessageRecord>> {
        Box::pin(async move {
            let c = self.reader().await?;
            let (now, limit) = (bound(now_ms), bound(limit as u64));
            c.records(&c.st.overdue, &[&now, &limit]).await
        })
    }

    fn finished_before(&self, cutoff_ms: u64, limit: usize) -> StoreFuture<'_, Vec<MessageRecord>> {
        Box::pin(async move {
            let c = self.reader().await?;
            let (cutoff, limit) = (bound(cutoff_ms), bound(limit as u64));
            c.records(&c.st.finished, &[&cutoff, &limit]).await
        })
    }

    fn receipts_owed(&self) -> StoreFuture<'_, Vec<OwedReceipt>> {
        Box::pin(async move {
            let c = self.reader().await?;
            c.records(&c.st.receipts, &[]).await
        })
    }

    fn held(&self) -> StoreFuture<'_, Vec<HeldReceipt>> {
        Box::pin(async move {
            let c = self.reader().await?;
            c.records(&c.st.held, &[]).await
        })
    }

    fn max_message_id(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move { self.reader().await?.meta("max_message_id").await })
    }

    fn max_seq(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move { self.reader().await?.meta("max_seq").await })
    }

    fn accounts(&self) -> StoreFuture<'_, Vec<StoredAccount>> {
        Box::pin(async move {
            let c = self.reader().await?;
            c.records(&c.st.accounts, &[]).await
        })
    }

    fn settings(&self) -> StoreFuture<'_, Vec<(String, String)>> {
        Box::pin(async move {
            let c = self.reader().await?;
            let rows = c.client.query(&c.st.settings, &[]).await?;
            rows.iter()
                .map(|row| {
                    let key: String = row.try_get(0)?;
                    let value: &[u8] = row.try_get(1)?;
                    Ok((key, String::from_utf8_lossy(value).into_owned()))
                })
                .collect()
        })
    }

    fn batch(&self, id: u64) -> StoreFuture<'_, Option<BatchRecord>> {
        Box::pin(async move {
            let Ok(id) = i64::try_from(id) else {
                return Ok(None);
            };
            let c = self.reader().await?;
            c.record(&c.st.batch, &[&id]).await
        })
    }

    fn quotas(&self) -> StoreFuture<'_, Vec<(String, Quota)>> {
        Box::pin(async move {
            let c = self.reader().await?;
            let rows = c.client.query(&c.st.quotas, &[]).await?;
            rows.iter()
                .map(|row| {
                    Ok((
                        row.try_get(0)?,
                        Quota {
                            balance: row.try_get(1)?,
                            sms: row.try_get(2)?,
                        },
                    ))
                })
                .collect()
        })
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            // The writer ends once its queue is closed and drained.
            self.jobs.write().unwrap_or_else(|e| e.into_inner()).take();
            let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(writer) = writer {
                let _ = writer.await;
            }
            self.closed.store(true, Ordering::Release);
            self.reader.lock().await.take();
            Ok(())
        })
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // The writer finishes what is queued, then ends with its connection.
        self.jobs.write().unwrap_or_else(|e| e.into_inner()).take();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// The server tests use: `SMPP_TEST_DATABASE_URL`, or the local one.
    fn server_url() -> String {
        std::env::var("SMPP_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    }

    /// `url` naming the database `name` instead.
    fn with_database(url: &str, name: &str) -> String {
        let Some(scheme) = url.find("://") else {
            return format!("{url} dbname={name}");
        };
        let (main, query) = url.split_at(url.find('?').unwrap_or(url.len()));
        let authority_end = main[scheme + 3..]
            .find('/')
            .map_or(main.len(), |i| scheme + 3 + i);
        format!("{}/{name}{query}", &main[..authority_end])
    }

    /// A database of its own for one test, dropped at the end (after a
    /// panic too), so that runs never see each other's data.
    pub(crate) struct TestDatabase {
        pub(crate) url: String,
        name: String,
    }

    impl TestDatabase {
        pub(crate) async fn new() -> TestDatabase {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let name = format!(
                "t_{}_{}_unit",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let admin = connect_client(&parse_url(&server_url()).unwrap())
                .await
                .expect("a PostgreSQL server for the tests (SMPP_TEST_DATABASE_URL)");
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .unwrap();
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            TestDatabase {
                url: with_database(&server_url(), &name),
                name,
            }
        }
    }

    impl Drop for TestDatabase {
        fn drop(&mut self) {
            let name = self.name.clone();
            // Its own thread and runtime: drop may run inside a runtime.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                runtime.block_on(async {
                    let admin = connect_client(&parse_url(&server_url()).ok()?).await.ok()?;
                    admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                        .ok()
                })
            })
            .join();
            if !matches!(dropped, Ok(Some(()))) {
                eprintln!("could not drop the test database {}", self.name);
            }
        }
    }

    #[test]
    fn urls_name_the_test_database() {
        assert_eq!(
            with_database("postgres://u@h:5432/test", "t_1"),
            "postgres://u@h:5432/t_1"
        );
        assert_eq!(
            with_database("postgres://u@h/test?sslmode=disable", "t_1"),
            "postgres://u@h/t_1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "t_1"), "postgres://u@h/t_1");
        assert_eq!(
            with_database("host=h user=u", "t_1"),
            "host=h user=u dbname=t_1"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pg_store_passes_the_script_and_survives_a_reopen() {
        let db = TestDatabase::new().await;
        {
            let store = PgStore::connect(&db.url).await.unwrap();
            crate::store::tests::exercise(&store).await;
            store.close().await.unwrap();
            assert!(matches!(store.message(8).await, Err(StoreError::Closed)));
            assert!(matches!(
                store.write(Vec::new()).await,
                Err(StoreError::Closed)
            ));
        }
        let store = PgStore::connect(&db.url).await.unwrap();
        assert_eq!(store.lookup("a", "abc").await.unwrap(), None, "deleted");
        assert_eq!(store.message(8).await.unwrap().map(|m| m.id), Some(8));
        assert_eq!(store.finished_before(5_000, 10).await.unwrap().len(), 1);
        assert_eq!(store.max_message_id().await.unwrap(), 8);
        assert_eq!(store.max_seq().await.unwrap(), 4);
        assert_eq!(store.quotas().await.unwrap()[0].1.balance, Some(945_000));
        store
            .write(vec![Op::Charge {
                account: "esme".into(),
                balance: 45_000,
                sms: 0,
            }])
            .await
            .unwrap();
        assert_eq!(store.quotas().await.unwrap()[0].1.balance, Some(900_000));
        store.close().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_from_two_stores_on_one_database_all_count() {
        let db = TestDatabase::new().await;
        let a = Arc::new(PgStore::connect(&db.url).await.unwrap());
        let b = Arc::new(PgStore::connect(&db.url).await.unwrap());
        a.write(vec![Op::SetQuota {
            account: "esme".into(),
            quota: Quota {
                balance: Some(1_000),
                sms: Some(100),
            },
        }])
        .await
        .unwrap();
        // Many small batches at once: the writers group them, and every
        // charge counts whichever store and group it went through.
        let mut tasks = Vec::new();
        for i in 0..200_u64 {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                let ops = vec![
                    Op::PutAccount(StoredAccount {
                        system_id: format!("acc{i}"),
                        password: "pw".into(),
                        allow: Vec::new(),
                        certificate_name: None,
                    }),
                    Op::Charge {
                        account: "esme".into(),
                        balance: 3,
                        sms: 1,
                    },
                    Op::Charge {
                        account: "unlimited".into(),
                        balance: 3,
                        sms: 1,
                    },
                    Op::PutSetting {
                        key: "shared".into(),
                        value: i.to_string(),
                    },
                ];
                store.write(ops).await.unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let quotas = b.quotas().await.unwrap();
        assert_eq!(
            quotas,
            [
                (
                    "esme".to_owned(),
                    Quota {
                        balance: Some(400),
                        sms: Some(-100)
                    }
                ),
                ("unlimited".to_owned(), Quota::default())
            ]
        );
        assert_eq!(a.accounts().await.unwrap().len(), 200);
        assert_eq!(a.settings().await.unwrap().len(), 1);
        a.close().await.unwrap();
        b.close().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migrations_apply_once_even_when_nodes_start_together() {
        let db = TestDatabase::new().await;
        let migrators: Vec<_> = (0..4)
            .map(|_| {
                let url = db.url.clone();
                tokio::spawn(async move { PgStore::migrate(&url).await.unwrap() })
            })
            .collect();
        let mut applied = Vec::new();
        for m in migrators {
            applied.push(m.await.unwrap());
        }
        applied.sort();
        let all: Vec<i64> = MIGRATIONS.iter().map(|m| m.0).collect();
        assert_eq!(applied, [vec![], vec![], vec![], all], "one of them did it");
        assert!(PgStore::migrate(&db.url).await.unwrap().is_empty());
        let client = connect_client(&parse_url(&db.url).unwrap()).await.unwrap();
        let count: i64 = client
            .query_one("SELECT count(*) FROM schema_migrations", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, i64::try_from(MIGRATIONS.len()).unwrap());
        // A schema newer than this binary knows is refused.
        client
            .batch_execute("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')")
            .await
            .unwrap();
        let refused = PgStore::connect(&db.url).await.unwrap_err();
        assert!(refused.to_string().contains("upgrade"), "{refused}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_lost_are_made_again() {
        let db = TestDatabase::new().await;
        let store = PgStore::connect(&db.url).await.unwrap();
        let setting = |n: u32| Op::PutSetting {
            key: format!("k{n}"),
            value: "v".into(),
        };
        store.write(vec![setting(0)]).await.unwrap();
        assert_eq!(store.settings().await.unwrap().len(), 1);
        // The server ends every connection of the store (as a restart would).
        let admin = connect_client(&parse_url(&server_url()).unwrap())
            .await
            .unwrap();
        let ended: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
                &[&db.name],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(ended, 2, "the writer's and the reader's");
        // A call may fail while the loss is noticed; then they work again,
        // and what was answered Ok is there.
        let mut written = vec![0];
        for n in 1..=5 {
            if store.write(vec![setting(n)]).await.is_ok() {
                written.push(n);
            }
        }
        assert!(written.len() >= 4, "written again: {written:?}");
        let mut settings = None;
        for _ in 0..3 {
            settings = store.settings().await.ok();
            if settings.is_some() {
                break;
            }
        }
        let keys: Vec<String> = settings.unwrap().into_iter().map(|(k, _)| k).collect();
        for n in written {
            assert!(keys.contains(&format!("k{n}")), "{keys:?}");
        }
        store.close().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_database_is_a_clear_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("postgres://gw@127.0.0.1:{port}/smpp");
        let e = PgStore::connect(&url).await.unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "cannot connect to PostgreSQL at gw@127.0.0.1:{port}/smpp"
            )),
            "{e}"
        );
        let e = PgStore::connect("postgres://[nope").await.unwrap_err();
        assert!(e.to_string().contains("bad PostgreSQL URL"), "{e}");
    }
}
