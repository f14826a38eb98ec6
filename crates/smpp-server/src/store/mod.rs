//! The message store: where records outlive the server's memory.
//!
//! The server keeps every recent record in its own bounded cache; a
//! [`Store`] is what lies behind it. Two backends today, with the same
//! contract, chosen by [`StoreConfig`]:
//! - [`MemoryStore`]: nothing outlives the process (`--memory`); the cache
//!   is all there is, and a record it forgets is gone.
//! - [`DiskStore`](disk::DiskStore): an embedded fjall (LSM) database,
//!   group committed by one writer thread, records in a compact binary form.
//!
//! A third (PostgreSQL, for a cluster) is one more variant of
//! [`MessageStore`] implementing [`Store`]; callers never name a backend.
//!
//! Files: `record` (the record model and its stored form), `inline` (the
//! inline-or-boxed buffers records are made of), `disk` (the fjall backend,
//! and the migration from the redb files of earlier versions).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::config::StoreConfig;

mod commit;
pub(crate) mod disk;
pub(crate) mod inline;
pub(crate) mod record;

pub(crate) use inline::{Octets, Text};
pub use record::Addr;
pub(crate) use record::{Dests, Kind, Outcome, Record, StoredAddr};

/// What one prune call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pruned {
    /// Records deleted.
    pub deleted: usize,
    /// The scan stopped at a limit: call again soon.
    pub more: bool,
}

/// What a message store does. Writes may be batched (group commit): a
/// durable write returns once the record survives a crash.
pub(crate) trait Store: Send + Sync {
    /// Whether records survive a restart: a submission is then answered
    /// only after its [`put_durable`](Store::put_durable).
    fn is_persistent(&self) -> bool;

    /// Writes `record` and waits until it is durable.
    fn put_durable(&self, record: &Record) -> impl Future<Output = Result<(), String>> + Send;

    /// Writes `record` in the background (waits only for queue room).
    fn put(&self, record: &Record) -> impl Future<Output = ()> + Send;

    /// Reads one record back.
    fn get(&self, id: u64) -> Option<Record>;

    /// Deletes (some of) the records final before `cutoff_ms` that need
    /// nothing more at `now_ms` (`report`: final states are reported, so an
    /// unreported one stays); [`Pruned::more`] asks for another call soon.
    fn prune(
        &self,
        now_ms: u64,
        cutoff_ms: u64,
        report: bool,
    ) -> impl Future<Output = Pruned> + Send;

    /// Waits until every write so far is durable.
    fn flush(&self) -> impl Future<Output = ()> + Send;
}

/// A durable write queued when it was made: done once the record is
/// durable (see [`MessageStore::durable_write`]).
#[allow(missing_debug_implementations)] // holds a future
pub(crate) enum DurableWrite {
    /// Nothing to wait for (the outcome, taken by the poll that gives it).
    Done(Option<Result<(), String>>),
    /// Queued: waits for its batch's sync.
    Queued(commit::Synced),
    /// The queue was full: waits for room, then for the sync.
    Waiting(Pin<Box<dyn Future<Output = Result<(), String>> + Send>>),
}

impl Future for DurableWrite {
    type Output = Result<(), String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            DurableWrite::Done(outcome) => {
                Poll::Ready(outcome.take().unwrap_or_else(|| Err("polled again".into())))
            }
            DurableWrite::Queued(synced) => Pin::new(synced).poll(cx),
            DurableWrite::Waiting(future) => future.as_mut().poll(cx),
        }
    }
}

/// The store of `--memory`: keeps nothing beyond the server's cache.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MemoryStore;

impl Store for MemoryStore {
    fn is_persistent(&self) -> bool {
        false
    }

    async fn put_durable(&self, _record: &Record) -> Result<(), String> {
        Ok(())
    }

    async fn put(&self, _record: &Record) {}

    fn get(&self, _id: u64) -> Option<Record> {
        None
    }

    async fn prune(&self, _now_ms: u64, _cutoff_ms: u64, _report: bool) -> Pruned {
        Pruned::default()
    }

    async fn flush(&self) {}
}

/// The store a server runs with: one of the backends, dispatched by a
/// `match` (no boxing, no dynamic call on the submission path).
#[derive(Debug)]
pub(crate) enum MessageStore {
    /// In memory only.
    Memory(MemoryStore),
    /// The fjall database.
    Disk(disk::DiskStore),
}

impl MessageStore {
    /// Opens the configured store; returns it, the stored records `keep`
    /// selects (to resume their work), and the highest id it ever committed.
    pub(crate) fn open(
        config: &StoreConfig,
        keep: impl Fn(&Record) -> bool,
    ) -> anyhow::Result<(MessageStore, Vec<Record>, u64)> {
        match config {
            StoreConfig::Memory => Ok((MessageStore::Memory(MemoryStore), Vec::new(), 0)),
            StoreConfig::Path(dir) => {
                let (store, records, high) = disk::DiskStore::open(dir, keep)?;
                Ok((MessageStore::Disk(store), records, high))
            }
        }
    }
}

impl MessageStore {
    /// Queues `record`'s durable write now (see
    /// [`DiskStore::durable_write`](disk::DiskStore::durable_write)); the
    /// future is done once it is durable. The same outcome as
    /// [`put_durable`](Store::put_durable), with the write already queued
    /// when this returns (when there is room).
    pub(crate) fn durable_write(&self, record: &Record) -> DurableWrite {
        match self {
            MessageStore::Memory(_) => DurableWrite::Done(Some(Ok(()))),
            MessageStore::Disk(s) => s.durable_write(record),
        }
    }
}

impl Store for MessageStore {
    fn is_persistent(&self) -> bool {
        match self {
            MessageStore::Memory(s) => s.is_persistent(),
            MessageStore::Disk(s) => s.is_persistent(),
        }
    }

    async fn put_durable(&self, record: &Record) -> Result<(), String> {
        match self {
            MessageStore::Memory(s) => s.put_durable(record).await,
            MessageStore::Disk(s) => s.put_durable(record).await,
        }
    }

    async fn put(&self, record: &Record) {
        match self {
            MessageStore::Memory(s) => s.put(record).await,
            MessageStore::Disk(s) => s.put(record).await,
        }
    }

    fn get(&self, id: u64) -> Option<Record> {
        match self {
            MessageStore::Memory(s) => s.get(id),
            MessageStore::Disk(s) => s.get(id),
        }
    }

    async fn prune(&self, now_ms: u64, cutoff_ms: u64, report: bool) -> Pruned {
        match self {
            MessageStore::Memory(s) => s.prune(now_ms, cutoff_ms, report).await,
            MessageStore::Disk(s) => s.prune(now_ms, cutoff_ms, report).await,
        }
    }

    async fn flush(&self) {
        match self {
            MessageStore::Memory(s) => s.flush().await,
            MessageStore::Disk(s) => s.flush().await,
        }
    }
}
