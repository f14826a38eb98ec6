//! The durable backend on fjall (an LSM-tree engine): one writer thread
//! commits every batch waiting in its queue as one write batch with one
//! `fdatasync`, then releases the waiters (group commit). Values are
//! postcard-encoded records; keys are big-endian numbers, so that scans
//! come out oldest first.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{RwLock, RwLockReadGuard};
use std::thread::JoinHandle;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

use super::{
    BatchRecord, GatewayStore, HeldReceipt, MessageRecord, MessageState, Op, OwedReceipt, Quota,
    StoreError, StoreFuture, StoreResult, StoredAccount,
};

/// Batches waiting for the writer at most (callers wait beyond it).
const QUEUE: usize = 4096;

const MAX_ID: &[u8] = b"max_id";
const MAX_SEQ: &[u8] = b"max_seq";

impl From<fjall::Error> for StoreError {
    fn from(e: fjall::Error) -> Self {
        StoreError::Engine(e.to_string())
    }
}

#[derive(Clone)]
struct Tables {
    db: Database,
    messages: Keyspace,
    unforwarded: Keyspace,
    ids: Keyspace,
    receipts: Keyspace,
    held: Keyspace,
    /// (final_ms, id) of final messages, both big-endian.
    finals: Keyspace,
    /// (receipt_due_ms, id) of forwarded messages waiting for a receipt.
    waiting: Keyspace,
    /// Account -> its [`Quota`].
    quotas: Keyspace,
    /// HTTP batches by id.
    batches: Keyspace,
    /// Accounts by system_id.
    accounts: Keyspace,
    /// Configuration items (connectors, the route table) by key, as text.
    settings: Keyspace,
    meta: Keyspace,
}

impl Tables {
    fn open(dir: &Path) -> StoreResult<Tables> {
        let db = Database::builder(dir).open()?;
        let ks = |name: &str| db.keyspace(name, KeyspaceCreateOptions::default);
        Ok(Tables {
            messages: ks("messages")?,
            unforwarded: ks("unforwarded")?,
            ids: ks("upstream_ids")?,
            receipts: ks("receipts_owed")?,
            held: ks("receipts_held")?,
            finals: ks("finals")?,
            waiting: ks("waiting")?,
            quotas: ks("quotas")?,
            batches: ks("batches")?,
            accounts: ks("accounts")?,
            settings: ks("settings")?,
            meta: ks("meta")?,
            db,
        })
    }

    fn meta(&self, key: &[u8]) -> StoreResult<u64> {
        Ok(self.meta.get(key)?.map_or(0, |v| be_u64(&v)))
    }

    /// The messages of a (time, id) index before `before_ms`, up to `limit`.
    fn by_time(
        &self,
        index: &Keyspace,
        before_ms: u64,
        limit: usize,
    ) -> StoreResult<Vec<MessageRecord>> {
        let mut records = Vec::new();
        for guard in index.range(..final_key(before_ms, 0)).take(limit) {
            let key = guard.key()?;
            let Some(id) = key.get(8..16) else { continue };
            if let Some(v) = self.messages.get(id)? {
                records.push(postcard::from_bytes(&v)?);
            }
        }
        Ok(records)
    }

    fn quotas(&self) -> StoreResult<HashMap<String, Quota>> {
        self.quotas
            .iter()
            .map(|guard| {
                let (key, value) = guard.into_inner()?;
                Ok((
                    String::from_utf8_lossy(&key).into_owned(),
                    postcard::from_bytes(&value)?,
                ))
            })
            .collect()
    }

    fn scan<T: DeserializeOwned>(&self, keyspace: &Keyspace) -> StoreResult<Vec<T>> {
        keyspace
            .iter()
            .map(|guard| {
                let (_, value) = guard.into_inner()?;
                Ok(postcard::from_bytes(&value)?)
            })
            .collect()
    }
}

fn be_u64(bytes: &[u8]) -> u64 {
    bytes.try_into().map_or(0, u64::from_be_bytes)
}

fn final_key(final_ms: u64, id: u64) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&final_ms.to_be_bytes());
    key[8..].copy_from_slice(&id.to_be_bytes());
    key
}

fn id_key(upstream: &str, upstream_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(upstream.len() + 1 + upstream_id.len());
    key.extend_from_slice(upstream.as_bytes());
    key.push(0);
    key.extend_from_slice(upstream_id.as_bytes());
    key
}

struct Job {
    ops: Vec<Op>,
    done: oneshot::Sender<StoreResult<()>>,
}

/// The durable store in a directory (created if missing).
pub struct FjallStore {
    /// `None` once closed.
    tables: RwLock<Option<Tables>>,
    jobs: RwLock<Option<mpsc::Sender<Job>>>,
    writer: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for FjallStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallStore").finish_non_exhaustive()
    }
}

impl FjallStore {
    /// Opens (or creates) the store in `dir` and starts its writer thread.
    pub fn open(dir: &Path) -> StoreResult<FjallStore> {
        let tables = Tables::open(dir)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer_tables = tables.clone();
        let writer = std::thread::Builder::new()
            .name("smpp-gateway-store".into())
            .spawn(move || write_loop(writer_tables, rx))
            .map_err(|e| StoreError::Engine(format!("cannot start the writer: {e}")))?;
        Ok(FjallStore {
            tables: RwLock::new(Some(tables)),
            jobs: RwLock::new(Some(tx)),
            writer: std::sync::Mutex::new(Some(writer)),
        })
    }

    fn tables(&self) -> StoreResult<TablesGuard<'_>> {
        let guard = self.tables.read().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            return Err(StoreError::Closed);
        }
        Ok(TablesGuard(guard))
    }

    fn close_now(&self) {
        // The writer ends once its queue is closed and drained.
        self.jobs.write().unwrap_or_else(|e| e.into_inner()).take();
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        let tables = self
            .tables
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(tables) = tables {
            let _ = tables.db.persist(PersistMode::SyncAll);
        }
    }
}

struct TablesGuard<'a>(RwLockReadGuard<'a, Option<Tables>>);

impl std::ops::Deref for TablesGuard<'_> {
    type Target = Tables;

    fn deref(&self) -> &Tables {
        self.0.as_ref().expect("checked when made")
    }
}

impl Drop for FjallStore {
    fn drop(&mut self) {
        self.close_now();
    }
}

/// The writer: takes every job waiting, commits them as one batch with one
/// sync, answers them all.
fn write_loop(tables: Tables, mut rx: mpsc::Receiver<Job>) {
    let mut max_id = tables.meta(MAX_ID).unwrap_or(0);
    let mut max_seq = tables.meta(MAX_SEQ).unwrap_or(0);
    // Charges apply to what is stored, in commit order.
    let mut quotas = tables.quotas().unwrap_or_default();
    let mut jobs = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        jobs.push(first);
        while jobs.len() < QUEUE {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let result = commit(&tables, &jobs, &mut max_id, &mut max_seq, &mut quotas);
        for job in jobs.drain(..) {
            let answer = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Engine(e.to_string())),
            };
            let _ = job.done.send(answer);
        }
    }
}

fn commit(
    tables: &Tables,
    jobs: &[Job],
    max_id: &mut u64,
    max_seq: &mut u64,
    quotas: &mut HashMap<String, Quota>,
) -> StoreResult<()> {
    // Synced after the commit, not in it: fjall applies a batch to its
    // memory tables after the journal's persist, and the waiters need the
    // sync only, so they are answered as soon as it is done.
    let mut batch = tables.db.batch().durability(Some(PersistMode::Buffer));
    let (old_id, old_seq) = (*max_id, *max_seq);
    // The quotas this batch changes (kept only if it commits).
    let mut changed: HashMap<&str, Quota> = HashMap::new();
    for op in jobs.iter().flat_map(|j| &j.ops) {
        match op {
            Op::PutMessage(record) => {
                let key = record.id.to_be_bytes();
                *max_id = (*max_id).max(record.id);
                batch.insert(&tables.messages, key, postcard::to_stdvec(record)?);
                if record.state == MessageState::Accepted {
                    batch.insert(&tables.unforwarded, key, []);
                } else {
                    batch.remove(&tables.unforwarded, key);
                }
                if let Some(at) = record.final_ms {
                    batch.insert(&tables.finals, final_key(at, record.id), []);
                }
                if let Some(due) = record.receipt_due_ms {
                    if record.state == MessageState::Forwarded {
                        batch.insert(&tables.waiting, final_key(due, record.id), []);
                    } else {
                        batch.remove(&tables.waiting, final_key(due, record.id));
                    }
                }
            }
            Op::MapUpstream {
                upstream,
                upstream_id,
                message,
            } => batch.insert(
                &tables.ids,
                id_key(upstream, upstream_id),
                message.to_be_bytes(),
            ),
            Op::PutReceipt(receipt) => {
                *max_seq = (*max_seq).max(receipt.seq);
                let value = postcard::to_stdvec(receipt)?;
                batch.insert(&tables.receipts, receipt.seq.to_be_bytes(), value);
            }
            Op::DeleteReceipt(seq) => batch.remove(&tables.receipts, seq.to_be_bytes()),
            Op::PutHeld(held) => {
                *max_seq = (*max_seq).max(held.seq);
                let value = postcard::to_stdvec(held)?;
                batch.insert(&tables.held, held.seq.to_be_bytes(), value);
            }
            Op::DeleteHeld(seq) => batch.remove(&tables.held, seq.to_be_bytes()),
            Op::Charge {
                account,
                balance,
                sms,
            } => {
                let current = changed
                    .get(account.as_str())
                    .or_else(|| quotas.get(account))
                    .copied()
                    .unwrap_or_default();
                changed.insert(account, current.minus(*balance, *sms));
            }
            Op::SetQuota { account, quota } => {
                changed.insert(account, *quota);
            }
            Op::PutAccount(account) => batch.insert(
                &tables.accounts,
                account.system_id.as_bytes(),
                postcard::to_stdvec(account)?,
            ),
            Op::DeleteAccount(id) => batch.remove(&tables.accounts, id.as_bytes()),
            Op::PutSetting { key, value } => {
                batch.insert(&tables.settings, key.as_bytes(), value.as_bytes())
            }
            Op::DeleteSetting(key) => batch.remove(&tables.settings, key.as_bytes()),
            Op::PutBatch(record) => {
                *max_id = (*max_id).max(record.id);
                batch.insert(
                    &tables.batches,
                    record.id.to_be_bytes(),
                    postcard::to_stdvec(record)?,
                );
            }
            Op::DeleteMessage(record) => {
                let key = record.id.to_be_bytes();
                batch.remove(&tables.messages, key);
                batch.remove(&tables.unforwarded, key);
                if let Some(at) = record.final_ms {
                    batch.remove(&tables.finals, final_key(at, record.id));
                }
                if let Some(due) = record.receipt_due_ms {
                    batch.remove(&tables.waiting, final_key(due, record.id));
                }
                if let Some(up) = &record.upstream {
                    batch.remove(&tables.ids, id_key(&up.connector, &up.key));
                }
            }
        }
    }
    if *max_id != old_id {
        batch.insert(&tables.meta, MAX_ID, max_id.to_be_bytes());
    }
    if *max_seq != old_seq {
        batch.insert(&tables.meta, MAX_SEQ, max_seq.to_be_bytes());
    }
    for (account, quota) in &changed {
        batch.insert(
            &tables.quotas,
            account.as_bytes(),
            postcard::to_stdvec(quota)?,
        );
    }
    let committed = batch
        .commit()
        .and_then(|()| tables.db.persist(PersistMode::SyncData));
    if committed.is_err() {
        (*max_id, *max_seq) = (old_id, old_seq);
    } else {
        for (account, quota) in changed {
            quotas.insert(account.to_owned(), quota);
        }
    }
    Ok(committed?)
}

impl GatewayStore for FjallStore {
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
        let found = (|| {
            let t = self.tables()?;
            match t.messages.get(id.to_be_bytes())? {
                Some(v) => Ok(Some(postcard::from_bytes(&v)?)),
                None => Ok(None),
            }
        })();
        Box::pin(std::future::ready(found))
    }

    fn lookup<'a>(
        &'a self,
        upstream: &'a str,
        upstream_id: &'a str,
    ) -> StoreFuture<'a, Option<u64>> {
        let found = (|| {
            let t = self.tables()?;
            Ok(t.ids
                .get(id_key(upstream, upstream_id))?
                .map(|v| be_u64(&v)))
        })();
        Box::pin(std::future::ready(found))
    }

    fn unforwarded(&self) -> StoreFuture<'_, Vec<MessageRecord>> {
        let found = (|| {
            let t = self.tables()?;
            let mut records = Vec::new();
            for guard in t.unforwarded.iter() {
                let key = guard.key()?;
                if let Some(v) = t.messages.get(&key)? {
                    records.push(postcard::from_bytes(&v)?);
                }
            }
            Ok(records)
        })();
        Box::pin(std::future::ready(found))
    }

    fn overdue(&self, now_ms: u64, limit: usize) -> StoreFuture<'_, Vec<MessageRecord>> {
        let found = self
            .tables()
            .and_then(|t| t.by_time(&t.waiting, now_ms, limit));
        Box::pin(std::future::ready(found))
    }

    fn finished_before(&self, cutoff_ms: u64, limit: usize) -> StoreFuture<'_, Vec<MessageRecord>> {
        let found = self
            .tables()
            .and_then(|t| t.by_time(&t.finals, cutoff_ms, limit));
        Box::pin(std::future::ready(found))
    }

    fn receipts_owed(&self) -> StoreFuture<'_, Vec<OwedReceipt>> {
        let found = self
            .tables()
            .and_then(|t| t.scan::<OwedReceipt>(&t.receipts));
        Box::pin(std::future::ready(found))
    }

    fn held(&self) -> StoreFuture<'_, Vec<HeldReceipt>> {
        let found = self.tables().and_then(|t| t.scan::<HeldReceipt>(&t.held));
        Box::pin(std::future::ready(found))
    }

    fn max_message_id(&self) -> StoreFuture<'_, u64> {
        let found = self.tables().and_then(|t| t.meta(MAX_ID));
        Box::pin(std::future::ready(found))
    }

    fn max_seq(&self) -> StoreFuture<'_, u64> {
        let found = self.tables().and_then(|t| t.meta(MAX_SEQ));
        Box::pin(std::future::ready(found))
    }

    fn accounts(&self) -> StoreFuture<'_, Vec<StoredAccount>> {
        let found = self
            .tables()
            .and_then(|t| t.scan::<StoredAccount>(&t.accounts));
        Box::pin(std::future::ready(found))
    }

    fn recent<'a>(
        &'a self,
        scan: usize,
        limit: usize,
        matches: &'a (dyn Fn(&MessageRecord) -> bool + Send + Sync),
    ) -> StoreFuture<'a, Vec<MessageRecord>> {
        let found = self.tables().and_then(|t| {
            let mut found = Vec::new();
            for guard in t.messages.iter().rev().take(scan) {
                let (_, value) = guard.into_inner()?;
                let record: MessageRecord = postcard::from_bytes(&value)?;
                if matches(&record) {
                    found.push(record);
                    if found.len() == limit {
                        break;
                    }
                }
            }
            Ok(found)
        });
        Box::pin(std::future::ready(found))
    }

    fn settings(&self) -> StoreFuture<'_, Vec<(String, String)>> {
        let found = self.tables().and_then(|t| {
            t.settings
                .iter()
                .map(|guard| {
                    let (key, value) = guard.into_inner()?;
                    Ok((
                        String::from_utf8_lossy(&key).into_owned(),
                        String::from_utf8_lossy(&value).into_owned(),
                    ))
                })
                .collect()
        });
        Box::pin(std::future::ready(found))
    }

    fn batch(&self, id: u64) -> StoreFuture<'_, Option<BatchRecord>> {
        let found = (|| {
            let t = self.tables()?;
            match t.batches.get(id.to_be_bytes())? {
                Some(v) => Ok(Some(postcard::from_bytes(&v)?)),
                None => Ok(None),
            }
        })();
        Box::pin(std::future::ready(found))
    }

    fn quotas(&self) -> StoreFuture<'_, Vec<(String, Quota)>> {
        let found = self
            .tables()
            .and_then(|t| Ok(t.quotas()?.into_iter().collect()));
        Box::pin(std::future::ready(found))
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            // The writer ends once its queue is closed and drained: wait for
            // it without blocking the runtime, then release the database.
            self.jobs.write().unwrap_or_else(|e| e.into_inner()).take();
            loop {
                let finished = self
                    .writer
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .is_none_or(JoinHandle::is_finished);
                if finished {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            self.close_now();
            Ok(())
        })
    }
}
