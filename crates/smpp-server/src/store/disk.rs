//! The persistent message store, on [fjall](https://docs.rs/fjall): a pure
//! Rust log-structured (LSM) engine. A write appends to its journal; memory
//! tables are flushed to sorted files and compacted by its own background
//! threads. That is the shape of our load (records appended by the thousand
//! per second, a few rewrites each, deleted when old), and it commits a batch
//! with one append and one `fdatasync`: chosen on measurements against redb
//! (our first engine) and SQLite, in `docs/BENCHMARKS.md`.
//!
//! Writes go through one writer thread that does **group commit**: it takes
//! every write waiting in its (bounded) queue, appends them as one batch and
//! syncs once, then releases the waiters; the next batch fills while a sync
//! runs. The queue (`commit`) hands the writer a client's burst whole. The
//! `submit_sm_resp` is sent only after the message's record is synced
//! (`put_durable`), so an acknowledged message survives a crash, even of the
//! machine. Later updates (final state reached, receipt delivered) are
//! written the same way but nobody waits for them: a batch of those alone is
//! handed to the operating system without a sync (it survives a `kill -9`;
//! the next durable batch syncs it). A machine crash may lose the last few,
//! and a receipt can then be delivered twice (at-least-once), never zero
//! times.
//!
//! Records are in the compact binary format of [`Record::encode`]; keys are
//! ids, big-endian, so they sort by id.
//!
//! Retention: the same thread deletes records that are final with nothing
//! left to do (receipts delivered, final state reported) and whose done time
//! is older than the retention, when asked ([`DiskStore::prune`]), in bounded
//! steps (at most [`PRUNE_SCAN`] rows read and [`PRUNE_DELETE`] deleted per
//! call) so the submissions queued behind it wait little. Ids start at the
//! time in microseconds and grow by one per message, so an id is (at any
//! rate below a million messages a second) no later than its submission: the
//! scan walks keys from the oldest up to the cutoff time, stops at the first
//! record submitted well after the cutoff (ids of a long-running server lag
//! the clock), and the next call resumes where a scan that hit its limit
//! stopped. The `high_water` id stays, so deleted ids are never reused.
//!
//! Migration: a directory written by an earlier version holds
//! `messages.redb`; its records are copied into the new store (one synced
//! batch per few thousand) the first time it opens, then the file is renamed
//! `messages.redb.migrated` (kept: delete it once satisfied). A crash in the
//! middle leaves the old file in place, and the copy starts again.

use std::path::Path;

use anyhow::Context as _;
use fjall::config::{BlockSizePolicy, CompressionPolicy, FilterPolicy};
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use tokio::sync::oneshot;

use super::commit::{self, CommitQueue, Taker, TryPush, Write};
use super::record::Record;
use super::{DurableWrite, Pruned, Store};

/// The keyspace of records: id (big-endian) -> record.
const MESSAGES: &str = "messages";
/// The keyspace of counters: `high_water` -> the highest id ever committed.
const META: &str = "meta";
const HIGH_WATER: &[u8] = b"high_water";
/// Set (in the same synced batch as the last copied records) once a redb
/// store of the first format has been copied in.
const MIGRATED: &[u8] = b"migrated_from_redb";
/// A batch's room to start with: what waits is taken whole (at most the
/// queue's bound, [`commit::QUEUE`]).
const BATCH: usize = 1024;
/// Rows read per prune call at most.
pub(crate) const PRUNE_SCAN: usize = 16 * 1024;
/// Rows deleted per prune call at most.
pub(crate) const PRUNE_DELETE: usize = 2 * 1024;
/// A prune scan stops at a record submitted this long after the cutoff
/// (submission times follow ids up to small races between submitters).
const YOUNG_SLACK_MS: u64 = 60_000;
/// The block cache, in bytes: the hot records live in the server's own
/// bounded table; this only helps query_sm of old ids and the pruning scan
/// (a 30-minute soak with 32 MiB saw the process still growing into it
/// after ten minutes).
const CACHE_BYTES: u64 = 8 * 1024 * 1024;
/// The messages' memory table is sealed and flushed to a sorted file at this
/// size (fjall's default is 64 MiB): the store's memory stays small and
/// bounded, whatever the load, and a restart replays at most this much of
/// the journal.
const MEMTABLE_BYTES: u64 = 8 * 1024 * 1024;
/// The messages' data blocks, before compression (fjall's default is 4 KiB).
/// Like the compression, set when the store is created.
const DATA_BLOCK_BYTES: u32 = 16 * 1024;
/// The engine's background threads (flushes, compactions): one is plenty
/// for this load and leaves the other cores to the sessions.
const WORKERS: usize = 1;
/// Records copied from an old store per synced batch.
const MIGRATE_BATCH: usize = 4096;

/// The persistent store: a fjall database and its group-commit writer.
#[derive(Clone)]
pub(crate) struct DiskStore {
    messages: Keyspace,
    writes: CommitQueue,
}

impl std::fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStore").finish_non_exhaustive()
    }
}

/// What the writer thread holds.
struct Engine {
    db: Database,
    messages: Keyspace,
    meta: Keyspace,
    high_water: u64,
}

fn key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

fn id_of(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

impl DiskStore {
    /// Opens (or creates) the store in `dir`, migrating an older store found
    /// there; returns it, the records `keep` selects, and the highest id
    /// ever committed.
    pub(crate) fn open(
        dir: &Path,
        keep: impl Fn(&Record) -> bool,
    ) -> anyhow::Result<(DiskStore, Vec<Record>, u64)> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the store directory {}", dir.display()))?;
        let path = dir.join("messages");
        let db = Database::builder(&path)
            .cache_size(CACHE_BYTES)
            .worker_threads(WORKERS)
            .manual_journal_persist(true)
            .open()
            .with_context(|| format!("cannot open the store {}", path.display()))?;
        let messages = db
            .keyspace(MESSAGES, || {
                KeyspaceCreateOptions::default()
                    .max_memtable_size(MEMTABLE_BYTES)
                    // Sorted files in LZ4 blocks: `smpp bench`'s records
                    // took 250 octets each on disk, 27 with it (9x less for
                    // flushes and compactions to write), at no measured cost
                    // in throughput (the journal is not compressed). Set
                    // when the store is created: an older store keeps
                    // writing plain blocks, and reads either.
                    .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
                    // 16 KiB blocks, not 4: the LZ4 encoder zeroes its
                    // tables and its output buffer for each block, so a
                    // flush of 4 KiB blocks spent more on that than on the
                    // compression itself (about 700 instructions per
                    // message fewer for the engine's thread; a point read
                    // of an old id decompresses 16 KiB, some µs).
                    .data_block_size_policy(BlockSizePolicy::all(DATA_BLOCK_BYTES))
                    // No Bloom filters: keys are ids, which grow, so a
                    // sorted file covers the ids written in its time (and
                    // the few older ones rewritten then) and a point read
                    // looks into the few files whose range holds the id; a
                    // filter would only answer "absent" sooner, for ids
                    // that were never stored. Building them cost the
                    // flushes about 350 instructions per message.
                    .filter_policy(FilterPolicy::disabled())
                    .manual_journal_persist(true)
            })
            .context("cannot open the store's messages")?;
        let meta = db
            .keyspace(META, || {
                KeyspaceCreateOptions::default()
                    .max_memtable_size(1024 * 1024)
                    .manual_journal_persist(true)
            })
            .context("cannot open the store's counters")?;
        let high_water = match meta.get(HIGH_WATER)? {
            Some(v) => id_of(&v).context("the store's high-water mark is damaged")?,
            None => 0,
        };
        let mut engine = Engine {
            db,
            messages: messages.clone(),
            meta,
            high_water,
        };
        migrate_redb(dir, &mut engine)?;
        let mut records = Vec::new();
        for row in engine.messages.iter() {
            let (k, v) = row.into_inner().context("cannot read the store")?;
            match Record::decode(&v) {
                Ok(r) if keep(&r) => records.push(r),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(id = ?id_of(&k), error = %e, "skipping an unreadable record")
                }
            }
        }
        let high_water = engine.high_water;
        let (writes, taker) = commit::queue();
        std::thread::Builder::new()
            .name("smpp-store".into())
            .spawn(move || writer(engine, taker))
            .context("cannot start the store writer")?;
        Ok((DiskStore { messages, writes }, records, high_water))
    }

    /// Queues `record`'s durable write now (when the queue has room: else
    /// the write waits for room when polled); the future is done once it
    /// is synced. What [`put_durable`](Store::put_durable) awaits, and what
    /// the submission path calls before it answers: the future it keeps is
    /// then the wait alone.
    pub(crate) fn durable_write(&self, record: &Record) -> DurableWrite {
        let put = Write::Put {
            id: record.id,
            bytes: record.encode(),
            durable: true,
        };
        match self.writes.try_push(put) {
            Ok(ticket) => DurableWrite::Queued(self.writes.synced(ticket)),
            Err(TryPush::Closed) => DurableWrite::Done(Some(Err("store closed".into()))),
            Err(TryPush::Full(put)) => {
                let writes = self.writes.clone();
                DurableWrite::Waiting(Box::pin(async move {
                    let ticket = writes.push(put).await?;
                    writes.synced(ticket).await
                }))
            }
        }
    }

    async fn send_put(&self, record: &Record, durable: bool) -> Result<(), String> {
        let bytes = record.encode();
        let put = Write::Put {
            id: record.id,
            bytes,
            durable,
        };
        let ticket = self.writes.push(put).await?;
        if durable {
            self.writes.synced(ticket).await?;
        }
        Ok(())
    }
}

impl Store for DiskStore {
    fn is_persistent(&self) -> bool {
        true
    }

    /// Writes `record` and waits until it is synced to the disk.
    async fn put_durable(&self, record: &Record) -> Result<(), String> {
        self.durable_write(record).await
    }

    /// Writes `record` in the background (waits only for queue room).
    async fn put(&self, record: &Record) {
        if let Err(e) = self.send_put(record, false).await {
            tracing::error!(id = record.id, error = %e, "store write failed");
        }
    }

    /// Reads one record.
    fn get(&self, id: u64) -> Option<Record> {
        let bytes = self.messages.get(key(id)).ok()??;
        Record::decode(&bytes).ok()
    }

    /// Deletes (some of) the records final before `cutoff_ms` that need
    /// nothing more at `now_ms` (`report`: the observer wants final states,
    /// so an unreported one is kept). Runs on the writer thread, after the
    /// writes queued before it.
    async fn prune(&self, now_ms: u64, cutoff_ms: u64, report: bool) -> Pruned {
        let (done, pruned) = oneshot::channel();
        let prune = Write::Prune {
            now_ms,
            cutoff_ms,
            report,
            done,
        };
        if self.writes.push(prune).await.is_err() {
            return Pruned::default();
        }
        pruned.await.unwrap_or_default()
    }

    /// Waits until every write queued so far is synced.
    async fn flush(&self) {
        if let Ok(ticket) = self.writes.push(Write::Flush).await {
            let _ = self.writes.synced(ticket).await;
        }
    }
}

/// The writer thread: group commit until every producer is gone.
fn writer(mut engine: Engine, queue: Taker) {
    /// Fails what waits if the thread unwinds.
    struct Abandon<'a>(&'a Taker);
    impl Drop for Abandon<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.abandon("the store's writer failed");
            }
        }
    }
    let _abandon = Abandon(&queue);
    let mut batch = Vec::with_capacity(BATCH);
    // Where the next prune scan starts (0: from the oldest).
    let mut prune_from = 0u64;
    while let Some((from, to)) = queue.take(&mut batch) {
        let result = engine.commit(&mut batch).map_err(|e| {
            tracing::error!(error = %e, "store commit failed");
            e.to_string()
        });
        // The waiters first: a prune scan (up to PRUNE_SCAN rows) must not
        // delay the answers of the submissions committed with it.
        queue.done(from, to, result);
        for w in batch.drain(..) {
            let Write::Prune {
                now_ms,
                cutoff_ms,
                report,
                done,
            } = w
            else {
                continue;
            };
            let pruned = engine
                .prune(&mut prune_from, now_ms, cutoff_ms, report)
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "store prune failed");
                    Pruned::default()
                });
            if pruned.deleted > 0 {
                tracing::debug!(deleted = pruned.deleted, "store: old messages deleted");
            }
            let _ = done.send(pruned);
        }
    }
    // Every producer is gone: what was written in the background reaches the
    // disk before the thread (and the database) goes.
    if let Err(e) = engine.db.persist(PersistMode::SyncData) {
        tracing::error!(error = %e, "store: the last sync failed");
    }
}

impl Engine {
    /// Appends the batch's records as one atomic batch; syncs it when anyone
    /// waits for it (a durable put or a flush), else hands it to the
    /// operating system. Moves the record bytes out of the batch.
    fn commit(&mut self, batch: &mut [Write]) -> fjall::Result<()> {
        let mut durable = false;
        let mut high = self.high_water;
        let mut tx = self.db.batch();
        for w in batch.iter_mut() {
            durable |= w.durable();
            if let Write::Put { id, bytes, .. } = w {
                high = high.max(*id);
                tx.insert(&self.messages, key(*id), std::mem::take(bytes));
            }
        }
        if high != self.high_water {
            tx.insert(&self.meta, HIGH_WATER, key(high).to_vec());
        }
        // Synced after the commit, not in it: fjall applies a batch to its
        // memory tables after the journal's persist, and the waiters need
        // the sync only (answered a few tens of µs sooner per window).
        if !tx.is_empty() {
            tx.durability(Some(PersistMode::Buffer)).commit()?;
            self.high_water = high;
        }
        if durable {
            self.db.persist(PersistMode::SyncData)?;
        }
        Ok(())
    }

    /// One prune step: scans ids from `*from` up to the cutoff time (in
    /// microseconds, as ids are), deletes what may go, and moves `*from` on.
    fn prune(
        &mut self,
        from: &mut u64,
        now_ms: u64,
        cutoff_ms: u64,
        report: bool,
    ) -> fjall::Result<Pruned> {
        let last_id = cutoff_ms.saturating_mul(1000);
        if *from > last_id {
            *from = 0;
        }
        let mut doomed = Vec::new();
        let mut next = None;
        for (scanned, row) in self.messages.range(key(*from)..=key(last_id)).enumerate() {
            let (k, v) = row.into_inner()?;
            let Some(id) = id_of(&k) else { continue };
            if scanned == PRUNE_SCAN || doomed.len() == PRUNE_DELETE {
                next = Some(id);
                break;
            }
            let Ok(record) = Record::decode(&v) else {
                continue;
            };
            if record.submit_ms > cutoff_ms.saturating_add(YOUNG_SLACK_MS) {
                // Ids grow with submission times, and ids lag the clock on a
                // long-running server (one per message from the start-up
                // time): the rest is too young, whatever the key bound says.
                break;
            }
            let (_, done, _) = record.state_at(now_ms);
            if done.is_some_and(|d| d < cutoff_ms) && !record.has_work(now_ms, report) {
                doomed.push(id);
            }
        }
        let pruned = Pruned {
            deleted: doomed.len(),
            // Soon again only while there is a backlog to delete: rows that
            // must stay (receipts owed for months) are rescanned at the
            // normal pace.
            more: next.is_some() && !doomed.is_empty(),
        };
        *from = next.unwrap_or(0);
        if !doomed.is_empty() {
            let mut tx = self.db.batch();
            for id in doomed {
                tx.remove(&self.messages, key(id));
            }
            // A deletion lost in a crash is done again by a later scan.
            tx.durability(Some(PersistMode::Buffer)).commit()?;
        }
        Ok(pruned)
    }
}

/// The redb file of the stores before this one.
const OLD_FILE: &str = "messages.redb";
const OLD_MESSAGES: redb::TableDefinition<'_, u64, &[u8]> = redb::TableDefinition::new("messages");
const OLD_META: redb::TableDefinition<'_, &str, u64> = redb::TableDefinition::new("meta");

/// Copies the records of an older store in `dir` (redb, JSON records) into
/// `engine`, synced, then renames the old file.
fn migrate_redb(dir: &Path, engine: &mut Engine) -> anyhow::Result<()> {
    let old = dir.join(OLD_FILE);
    if !old.exists() {
        return Ok(());
    }
    let done = dir.join(format!("{OLD_FILE}.migrated"));
    if engine.meta.get(MIGRATED)?.is_some() {
        // Copied before, and the rename lost (a power cut before the
        // directory reached the disk): the copy is not made again, since it
        // would bring back older states over newer ones.
        return finish_migration(dir, &old, &done);
    }
    let db = redb::Database::open(&old)
        .with_context(|| format!("cannot open the old store {} to migrate it", old.display()))?;
    let tx = db.begin_read()?;
    let mut copied = 0usize;
    let mut skipped = 0usize;
    let mut high = engine.high_water;
    match tx.open_table(OLD_META) {
        Ok(meta) => {
            if let Some(v) = meta.get("high_water")? {
                high = high.max(v.value());
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(e.into()),
    }
    match tx.open_table(OLD_MESSAGES) {
        Ok(messages) => {
            use redb::ReadableTable as _;
            let mut batch = engine.db.batch();
            for row in messages.iter()? {
                let (id, json) = row?;
                let id = id.value();
                // Stored again in the binary format (checked readable).
                let bytes = match Record::decode(json.value()).map(|r| r.encode()) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(id, error = %e, "migration: skipping an unreadable record");
                        skipped += 1;
                        continue;
                    }
                };
                high = high.max(id);
                batch.insert(&engine.messages, key(id), bytes);
                copied += 1;
                if batch.len() >= MIGRATE_BATCH {
                    let full = std::mem::replace(&mut batch, engine.db.batch());
                    full.durability(Some(PersistMode::SyncData)).commit()?;
                }
            }
            batch.insert(&engine.meta, HIGH_WATER, key(high).to_vec());
            batch.insert(&engine.meta, MIGRATED, b"1".to_vec());
            batch.durability(Some(PersistMode::SyncData)).commit()?;
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {
            let mut batch = engine.db.batch();
            batch.insert(&engine.meta, HIGH_WATER, key(high).to_vec());
            batch.insert(&engine.meta, MIGRATED, b"1".to_vec());
            batch.durability(Some(PersistMode::SyncData)).commit()?;
        }
        Err(e) => return Err(e.into()),
    }
    engine.high_water = high;
    drop(tx);
    drop(db);
    finish_migration(dir, &old, &done)?;
    tracing::info!(
        copied,
        skipped,
        from = %done.display(),
        "store migrated to the new format (the old file can be deleted)"
    );
    Ok(())
}

/// Renames the migrated file and makes the rename durable.
fn finish_migration(dir: &Path, old: &Path, done: &Path) -> anyhow::Result<()> {
    std::fs::rename(old, done)
        .with_context(|| format!("cannot rename the migrated store {}", old.display()))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync the store directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::super::record::tests::record;
    use super::super::record::Outcome;
    use super::*;

    /// Opens the store in `dir`, waiting for an earlier writer to let go.
    async fn reopen(dir: &Path) -> (DiskStore, Vec<Record>, u64) {
        for _ in 0..200 {
            match DiskStore::open(dir, |_| true) {
                Ok(d) => return d,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
        panic!("the store does not reopen");
    }

    #[tokio::test]
    async fn prune_deletes_old_finished_records_only() {
        let dir = tempfile::tempdir().unwrap();
        let (disk, _, _) = DiskStore::open(dir.path(), |_| true).unwrap();
        // Ids are microseconds; done times milliseconds: cutoff at 1_000 ms.
        let finished = |id: u64, done_ms: u64| {
            let mut r = record(id);
            r.outcome = Outcome::Fixed {
                done_ms,
                state: 2,
                error: 0,
            };
            r.receipts_sent = 1;
            r.reported = true;
            r
        };
        disk.put(&finished(100_000, 500)).await; // old, done: goes
        let mut owed = finished(200_000, 500);
        owed.receipts_sent = 0; // a receipt still owed: stays
        disk.put(&owed).await;
        disk.put(&finished(300_000, 1_500)).await; // done after the cutoff: stays
        let mut enroute = record(400_000);
        enroute.outcome = Outcome::Pending; // not final: stays
        disk.put(&enroute).await;
        let mut unreported = finished(500_000, 500);
        unreported.reported = false;
        disk.put(&unreported).await; // goes unless final states are reported
        disk.put(&finished(2_000_000, 500)).await; // id after the cutoff: not scanned
        let mut young = finished(600_000, 500);
        young.submit_ms = 1_000 + YOUNG_SLACK_MS + 1; // ids lag the clock: stops the scan
        disk.put(&young).await;
        disk.put(&finished(700_000, 500)).await; // behind the young one: not reached
        let pruned = disk.prune(10_000, 1_000, true).await;
        assert_eq!(
            pruned,
            Pruned {
                deleted: 1,
                more: false
            }
        );
        assert!(disk.get(100_000).is_none());
        for id in [
            200_000, 300_000, 400_000, 500_000, 600_000, 700_000, 2_000_000,
        ] {
            assert!(disk.get(id).is_some(), "{id} kept");
        }
        assert_eq!(disk.prune(10_000, 1_000, false).await.deleted, 1);
        assert!(disk.get(500_000).is_none());
        assert_eq!(disk.prune(10_000, 1_000, false).await.deleted, 0);
    }

    #[tokio::test]
    async fn prune_works_in_bounded_steps() {
        let dir = tempfile::tempdir().unwrap();
        let (disk, _, _) = DiskStore::open(dir.path(), |_| true).unwrap();
        let n = PRUNE_DELETE as u64 + 10;
        for id in 1..=n {
            let mut r = record(id);
            r.receipts_sent = 1;
            disk.put(&r).await;
        }
        let first = disk.prune(100, 50, false).await;
        assert_eq!(
            first,
            Pruned {
                deleted: PRUNE_DELETE,
                more: true
            }
        );
        let second = disk.prune(100, 50, false).await;
        assert_eq!(
            second,
            Pruned {
                deleted: 10,
                more: false
            }
        );
        assert!((1..=n).all(|id| disk.get(id).is_none()));
    }

    #[tokio::test]
    async fn records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (disk, records, high) = DiskStore::open(dir.path(), |_| true).unwrap();
            assert!(records.is_empty());
            assert_eq!(high, 0);
            disk.put_durable(&record(7)).await.unwrap();
            // Queued when made (before its first poll), done once synced.
            let eight = disk.durable_write(&record(8));
            disk.put(&record(5)).await;
            eight.await.unwrap();
            disk.flush().await;
            assert_eq!(&*disk.get(7).unwrap().payload, b"hello \x00\xff");
        }
        let (_, mut records, high) = reopen(dir.path()).await;
        records.sort_by_key(|r| r.id);
        assert_eq!(records.iter().map(|r| r.id).collect::<Vec<_>>(), [5, 7, 8]);
        assert_eq!(high, 8);
    }

    #[tokio::test]
    async fn a_redb_store_of_the_first_format_migrates_once() {
        let dir = tempfile::tempdir().unwrap();
        // The first format: redb, JSON records, a high-water mark above
        // every record (deleted ids are never reused).
        {
            let db = redb::Database::create(dir.path().join(OLD_FILE)).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut messages = tx.open_table(OLD_MESSAGES).unwrap();
                for id in [3u64, 4] {
                    let json = serde_json::to_vec(&record(id)).unwrap();
                    messages.insert(id, json.as_slice()).unwrap();
                }
                messages.insert(5, b"{not json".as_slice()).unwrap();
                let mut meta = tx.open_table(OLD_META).unwrap();
                meta.insert("high_water", 9).unwrap();
            }
            tx.commit().unwrap();
        }
        let (disk, mut records, high) = DiskStore::open(dir.path(), |_| true).unwrap();
        records.sort_by_key(|r| r.id);
        assert_eq!(records.iter().map(|r| r.id).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(high, 9);
        assert_eq!(&*records[0].payload, b"hello \x00\xff");
        assert!(!dir.path().join(OLD_FILE).exists());
        assert!(dir.path().join("messages.redb.migrated").exists());
        disk.put_durable(&record(10)).await.unwrap();
        drop(disk);
        // The second start reads the new store only.
        let (disk, records, high) = reopen(dir.path()).await;
        assert_eq!(records.len(), 3);
        assert_eq!(high, 10);
        // A rename lost in a power cut: the old file is back, but the copy
        // is not made again (it would bring back older states).
        let mut newer = record(3);
        newer.receipts_sent = 1;
        disk.put_durable(&newer).await.unwrap();
        drop(disk);
        std::fs::copy(
            dir.path().join("messages.redb.migrated"),
            dir.path().join(OLD_FILE),
        )
        .unwrap();
        let (_, records, _) = reopen(dir.path()).await;
        let three = records.iter().find(|r| r.id == 3).unwrap();
        assert_eq!(three.receipts_sent, 1, "the newer state stays");
        assert!(!dir.path().join(OLD_FILE).exists());
    }
}
