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

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Statement};

use super::{
    BatchRecord, GatewayStore, HeldReceipt, MessageRecord, Op, OwedReceipt, Quota, StoreError,
    StoreFuture, StoreResult, StoredAccount,
};

mod changes;
mod migrations;
#[cfg(test)]
mod tests;

use changes::{check, Changes};
use migrations::migrate_with;

/// Batches waiting for the writer at most (callers wait beyond it).
const QUEUE: usize = 4096;

/// The channel a commit that changes the configuration (accounts,
/// connectors, routes, quotas) notifies, with the committing node's id.
pub(crate) const CONFIG_CHANNEL: &str = "smpp_gateway_config";

/// The channel a node notifies when it leaves receipts to whichever node
/// their account binds to.
pub(crate) const OUTBOX_CHANNEL: &str = "smpp_gateway_outbox";

/// The channel a node notifies when it leaves the cluster (the others take
/// over what it owned).
pub(crate) const NODES_CHANNEL: &str = "smpp_gateway_nodes";

/// Nodes in a cluster at most (the ordinals of [`PgStore::ordinal`]).
pub(crate) const MAX_NODES: i32 = 1024;

/// How long a connection attempt may take when the URL does not say
/// (`connect_timeout=`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
    recent: Statement,
    notify: Statement,
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
        let texts: [&str; 31] = [
            // A message stays with the node that accepted it (or took it over).
            "INSERT INTO messages (id, unforwarded, waiting_due, final_ms, record, node) \
             SELECT u.*, $6::text FROM \
             UNNEST($1::int8[], $2::bool[], $3::int8[], $4::int8[], $5::bytea[]) AS u \
             ON CONFLICT (id) DO UPDATE SET unforwarded = EXCLUDED.unforwarded, \
             waiting_due = EXCLUDED.waiting_due, final_ms = EXCLUDED.final_ms, \
             record = EXCLUDED.record",
            "DELETE FROM messages WHERE id = ANY($1::int8[])",
            "INSERT INTO upstream_ids (connector, upstream_id, message) \
             SELECT * FROM UNNEST($1::bytea[], $2::bytea[], $3::int8[]) \
             ON CONFLICT (connector, upstream_id) DO UPDATE SET message = EXCLUDED.message",
            "DELETE FROM upstream_ids u USING UNNEST($1::bytea[], $2::bytea[]) AS d(c, k) \
             WHERE u.connector = d.c AND u.upstream_id = d.k",
            "INSERT INTO receipts_owed (seq, message, account, record, webhook, owner) \
             SELECT u.*, $6::text FROM \
             UNNEST($1::int8[], $2::int8[], $3::text[], $4::bytea[], $5::bool[]) AS u \
             ON CONFLICT (seq) DO UPDATE SET message = EXCLUDED.message, \
             account = EXCLUDED.account, record = EXCLUDED.record, webhook = EXCLUDED.webhook",
            "DELETE FROM receipts_owed WHERE seq = ANY($1::int8[])",
            "INSERT INTO receipts_held (seq, connector, upstream_id, record, node) \
             SELECT u.*, $5::text FROM \
             UNNEST($1::int8[], $2::bytea[], $3::bytea[], $4::bytea[]) AS u \
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
            "SELECT record FROM messages WHERE unforwarded AND node = $1::text ORDER BY id",
            "SELECT record FROM messages WHERE waiting_due < $1::int8 AND node = $3::text \
             ORDER BY waiting_due, id LIMIT $2::int8",
            "SELECT record FROM messages WHERE final_ms < $1::int8 \
             ORDER BY final_ms, id LIMIT $2::int8",
            "SELECT record FROM receipts_owed WHERE owner = $1::text ORDER BY seq",
            "SELECT record FROM receipts_held WHERE node = $1::text ORDER BY seq",
            "SELECT value FROM meta WHERE key = $1::text",
            "SELECT record FROM accounts ORDER BY system_id",
            "SELECT key, value FROM settings ORDER BY key",
            "SELECT record FROM batches WHERE id = $1::int8",
            "SELECT account, balance, sms FROM quotas ORDER BY account",
            "SELECT record FROM messages ORDER BY id DESC LIMIT $1::int8",
            "SELECT pg_notify($1::text, $2::text)",
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
            recent: next()?,
            notify: next()?,
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

/// Commits `changes` in one transaction, pipelined: `BEGIN`, the
/// statements, `COMMIT` go out together.
async fn commit(conn: &Conn, changes: &Changes, node: &str) -> StoreResult<()> {
    let statements = changes.statements(&conn.st, node)?;
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
        result.map_err(exhausted_or)?;
    }
    Ok(())
}

/// A quota's check failing is [`StoreError::Exhausted`].
fn exhausted_or(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION) {
        let constraint = e.as_db_error().and_then(|d| d.constraint()).unwrap_or("");
        return StoreError::Exhausted {
            sms: constraint.contains("sms"),
        };
    }
    e.into()
}

/// Whether `ops` take from a quota (a charge that can fail).
fn debits(ops: &[Op]) -> bool {
    ops.iter()
        .any(|op| matches!(op, Op::Charge { balance, sms, .. } if *balance > 0 || *sms > 0))
}

fn same_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Exhausted { sms } => StoreError::Exhausted { sms: *sms },
        StoreError::Closed => StoreError::Closed,
        e => StoreError::Engine(e.to_string()),
    }
}

/// Adds this gateway to the `nodes` table under a new id and the lowest
/// free ordinal (nodes starting together retry on a conflict).
async fn register(client: &Client) -> StoreResult<(Arc<str>, u32)> {
    let now = bound(crate::node::now_ms());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let id = format!("{}-{:x}-{nanos:08x}", std::process::id(), now);
    for _ in 0..20 {
        let row = client
            .query_opt(
                "INSERT INTO nodes (id, ordinal, started_ms, seen_ms) \
                 SELECT $1::text, o, $2::int8, $2::int8 FROM generate_series(0, $3::int4 - 1) o \
                 WHERE o NOT IN (SELECT ordinal FROM nodes) ORDER BY o LIMIT 1 \
                 ON CONFLICT DO NOTHING RETURNING ordinal",
                &[&id, &now, &MAX_NODES],
            )
            .await?;
        if let Some(row) = row {
            let ordinal: i32 = row.try_get(0)?;
            return Ok((id.into(), u32::try_from(ordinal).unwrap_or(0)));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(StoreError::Engine(format!(
        "no free node number among {MAX_NODES}: too many gateways share the database \
         (a stopped one leaves its number when its entry expires)"
    )))
}

struct Job {
    ops: Vec<Op>,
    done: oneshot::Sender<StoreResult<()>>,
}

/// The writer: takes every job waiting, commits them as one transaction,
/// answers them all.
async fn write_loop(
    config: Config,
    node: Arc<str>,
    mut conn: Option<Conn>,
    mut rx: mpsc::Receiver<Job>,
    groups: Arc<AtomicUsize>,
) {
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
        // With a charge in the group, each batch's writes are kept: when a
        // quota runs out, the batches are committed one by one, so that
        // only those it refuses fail.
        let mut kept: Option<Vec<Vec<Op>>> = jobs.iter().any(|j| debits(&j.ops)).then(Vec::new);
        for job in jobs.drain(..) {
            match check(&job.ops) {
                Ok(()) => {
                    if let Some(kept) = &mut kept {
                        kept.push(job.ops.clone());
                    }
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
        groups.fetch_add(1, Ordering::Relaxed);
        let result = match &conn {
            Some(c) => commit(c, &changes, &node).await,
            None => Err(StoreError::Engine(format!(
                "cannot reach PostgreSQL at {}",
                describe(&config)
            ))),
        };
        if let (Err(StoreError::Exhausted { .. }), Some(kept), Some(c)) = (&result, kept, &conn) {
            if taken.len() > 1 {
                for (ops, done) in kept.into_iter().zip(taken) {
                    let mut alone = Changes::default();
                    alone.add(ops);
                    let _ = done.send(commit(c, &alone, &node).await);
                }
                continue;
            }
        }
        if let Err(e) = &result {
            if !matches!(e, StoreError::Exhausted { .. }) {
                tracing::warn!(error = %e, "PostgreSQL write failed");
                // A fresh connection next time: no doubt about its state.
                conn = None;
            }
        }
        for done in taken {
            let answer = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(same_error(e)),
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
    /// This gateway's id among the nodes sharing the database.
    node: Arc<str>,
    /// Its number among them (unique while it runs).
    ordinal: u32,
    closed: AtomicBool,
    /// The readers' connection (made again when lost).
    reader: Mutex<Option<Arc<Conn>>>,
    jobs: RwLock<Option<mpsc::Sender<Job>>>,
    writer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Groups the writer committed (or tried to).
    groups: Arc<AtomicUsize>,
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
        let (node, ordinal) = register(&reader.client).await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let groups = Arc::new(AtomicUsize::new(0));
        let writer = tokio::spawn(write_loop(
            config.clone(),
            node.clone(),
            Some(writer_conn),
            rx,
            groups.clone(),
        ));
        Ok(PgStore {
            config,
            node,
            ordinal,
            closed: AtomicBool::new(false),
            reader: Mutex::new(Some(Arc::new(reader))),
            jobs: RwLock::new(Some(tx)),
            writer: std::sync::Mutex::new(Some(writer)),
            groups,
        })
    }

    /// Applies the migrations the database at `url` lacks, under an
    /// advisory lock (concurrent callers wait, then find nothing to do);
    /// returns the versions applied.
    pub async fn migrate(url: &str) -> StoreResult<Vec<i64>> {
        migrate_with(&parse_url(url)?).await
    }

    /// Groups of batches the writer committed (or tried to) so far: fewer
    /// than the batches when they came together.
    pub fn groups_committed(&self) -> usize {
        self.groups.load(Ordering::Relaxed)
    }

    /// Batches waiting for the writer.
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |tx| tx.max_capacity() - tx.capacity())
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
            c.records(&c.st.unforwarded, &[&&*self.node]).await
        })
    }

    fn overdue(&self, now_ms: u64, limit: usize) -> StoreFuture<'_, Vec<MessageRecord>> {
        Box::pin(async move {
            let c = self.reader().await?;
            let (now, limit) = (bound(now_ms), bound(limit as u64));
            c.records(&c.st.overdue, &[&now, &limit, &&*self.node])
                .await
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
            c.records(&c.st.receipts, &[&&*self.node]).await
        })
    }

    fn held(&self) -> StoreFuture<'_, Vec<HeldReceipt>> {
        Box::pin(async move {
            let c = self.reader().await?;
            c.records(&c.st.held, &[&&*self.node]).await
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

    fn recent<'a>(
        &'a self,
        scan: usize,
        limit: usize,
        matches: &'a (dyn Fn(&MessageRecord) -> bool + Send + Sync),
    ) -> StoreFuture<'a, Vec<MessageRecord>> {
        Box::pin(async move {
            let c = self.reader().await?;
            let scan = bound(scan as u64);
            let newest: Vec<MessageRecord> = c.records(&c.st.recent, &[&scan]).await?;
            Ok(newest
                .into_iter()
                .filter(|r| matches(r))
                .take(limit)
                .collect())
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
            // Leaves the cluster: what it still owns (messages not forwarded
            // or waiting for a receipt, receipts held or owed) is taken over
            // by the other nodes at once, or by this one's next start.
            if let Ok(c) = self.reader().await {
                let left = c
                    .client
                    .batch_execute(&format!(
                        "DELETE FROM nodes WHERE id = '{}'; \
                         UPDATE receipts_owed SET owner = NULL WHERE owner = '{}'; \
                         NOTIFY {NODES_CHANNEL}; NOTIFY {OUTBOX_CHANNEL}",
                        self.node, self.node
                    ))
                    .await;
                if let Err(e) = left {
                    tracing::warn!(error = %e, "could not leave the cluster: taken over when it expires");
                }
            }
            self.closed.store(true, Ordering::Release);
            self.reader.lock().await.take();
            Ok(())
        })
    }

    fn shared(&self) -> Option<super::Shared> {
        Some(super::Shared {
            config: self.config.clone(),
            node: self.node.clone(),
            ordinal: self.ordinal,
        })
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // The writer finishes what is queued, then ends with its connection.
        self.jobs.write().unwrap_or_else(|e| e.into_inner()).take();
    }
}
