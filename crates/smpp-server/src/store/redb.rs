//! The persistent message store: [redb](https://docs.rs/redb): pure Rust (no C
//! toolchain, builds everywhere `cargo` does, nothing to install), an
//! embedded ACID key-value store with copy-on-write B-trees whose commits are
//! crash-safe (a `kill -9` leaves the last committed transaction intact). We
//! only need "put a record by id, read it back, scan them all at start-up",
//! which is exactly a key-value table; SQL would buy nothing.
//!
//! Writes go through one writer thread that does **group commit**: it takes
//! every write waiting in its (bounded) queue, puts them all in one write
//! transaction and commits once (one fsync for the whole batch), then
//! releases the waiters. The `submit_sm_resp` is sent only after the
//! message's record is committed, so an acknowledged message survives a
//! crash; later updates (final state reached, receipt delivered) are written
//! the same way but nobody waits for them, so a crash may lose the last few
//! and a receipt can then be delivered twice (at-least-once), never zero times.
//!
//! Retention: the same thread deletes records that are final with nothing
//! left to do (receipts delivered, final state reported) and whose done time
//! is older than the retention, when asked ([`RedbStore::prune`]), in small
//! transactions (at most [`PRUNE_SCAN`] rows read and [`PRUNE_DELETE`]
//! deleted per call) so the submissions queued behind it wait little. Ids
//! start at the time in microseconds and grow by one per message, so an id
//! is (at any rate below a million messages a second) no later than its
//! submission: the scan walks keys from the oldest up to the cutoff time,
//! stops at the first record submitted well after the cutoff (ids of a
//! long-running server lag the clock), and the next call resumes where a
//! scan that hit its limit stopped. The
//! `high_water` id stays, so deleted ids are never reused.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use redb::{Database, ReadableTable, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use super::record::Record;
use super::{Pruned, Store};

/// id (as a number) -> record (JSON).
const MESSAGES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("messages");
/// "high_water" -> the highest message id ever committed.
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// Writes waiting for the writer thread at most.
const QUEUE: usize = 16 * 1024;
/// Records per write transaction at most.
const BATCH: usize = 8 * 1024;
/// Rows read per prune transaction at most.
pub(crate) const PRUNE_SCAN: usize = 16 * 1024;
/// Rows deleted per prune transaction at most.
pub(crate) const PRUNE_DELETE: usize = 2 * 1024;
/// A prune scan stops at a record submitted this long after the cutoff
/// (submission times follow ids up to small races between submitters).
const YOUNG_SLACK_MS: u64 = 60_000;

enum Write {
    Put {
        id: u64,
        json: Vec<u8>,
        done: Option<oneshot::Sender<Result<(), String>>>,
    },
    Flush(oneshot::Sender<()>),
    /// Delete records final before `cutoff_ms` with no work left at `now_ms`.
    Prune {
        now_ms: u64,
        cutoff_ms: u64,
        report: bool,
        done: oneshot::Sender<Pruned>,
    },
}

/// The page cache of the store, in bytes.
const STORE_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// The persistent store: a redb database and its group-commit writer thread.
#[derive(Debug, Clone)]
pub(crate) struct RedbStore {
    db: Arc<Database>,
    writes: mpsc::Sender<Write>,
}

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Write::Put { id, .. } => write!(f, "Put({id})"),
            Write::Flush(_) => f.write_str("Flush"),
            Write::Prune { cutoff_ms, .. } => write!(f, "Prune({cutoff_ms})"),
        }
    }
}

impl RedbStore {
    /// Opens (or creates) the store in `dir`; returns it, the records `keep`
    /// selects, and the highest id ever committed.
    pub(crate) fn open(
        dir: &Path,
        keep: impl Fn(&Record) -> bool,
    ) -> anyhow::Result<(RedbStore, Vec<Record>, u64)> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the store directory {}", dir.display()))?;
        let path = dir.join("messages.redb");
        // redb's page cache defaults to 1 GiB, which a long run fills: the
        // process would grow with the store. The hot records live in the
        // SMSC's own bounded table; the store's cache only helps query_sm of
        // old ids and the pruning scan.
        let db = redb::Builder::new()
            .set_cache_size(STORE_CACHE_BYTES)
            .create(&path)
            .with_context(|| format!("cannot open the store {}", path.display()))?;
        let (records, high_water) = {
            let tx = db.begin_write()?;
            let mut records = Vec::new();
            let high_water;
            {
                let messages = tx.open_table(MESSAGES)?;
                for row in messages.iter()? {
                    let (_, v) = row?;
                    match serde_json::from_slice::<Record>(v.value()) {
                        Ok(r) if keep(&r) => records.push(r),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "skipping an unreadable record"),
                    }
                }
                let meta = tx.open_table(META)?;
                high_water = meta.get("high_water")?.map_or(0, |v| v.value());
            }
            tx.commit()?;
            (records, high_water)
        };
        let db = Arc::new(db);
        let (writes, queue) = mpsc::channel(QUEUE);
        let writer_db = db.clone();
        std::thread::Builder::new()
            .name("smpp-store".into())
            .spawn(move || writer(&writer_db, queue))
            .context("cannot start the store writer")?;
        Ok((RedbStore { db, writes }, records, high_water))
    }
}

impl Store for RedbStore {
    fn is_persistent(&self) -> bool {
        true
    }

    /// Writes `record` and waits until it is durable.
    async fn put_durable(&self, record: &Record) -> Result<(), String> {
        let json = serde_json::to_vec(record).map_err(|e| e.to_string())?;
        let (done, committed) = oneshot::channel();
        self.writes
            .send(Write::Put {
                id: record.id,
                json,
                done: Some(done),
            })
            .await
            .map_err(|_| "store closed".to_string())?;
        committed
            .await
            .map_err(|_| "store writer ended".to_string())?
    }

    /// Writes `record` in the background (waits only for queue room).
    async fn put(&self, record: &Record) {
        let Ok(json) = serde_json::to_vec(record) else {
            return;
        };
        let _ = self
            .writes
            .send(Write::Put {
                id: record.id,
                json,
                done: None,
            })
            .await;
    }

    /// Reads one record.
    fn get(&self, id: u64) -> Option<Record> {
        let tx = self.db.begin_read().ok()?;
        let table = tx.open_table(MESSAGES).ok()?;
        let row = table.get(id).ok()??;
        serde_json::from_slice(row.value()).ok()
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
        if self.writes.send(prune).await.is_err() {
            return Pruned::default();
        }
        pruned.await.unwrap_or_default()
    }

    /// Waits until every write queued so far is committed.
    async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.writes.send(Write::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// The writer thread: group commit until every sender is gone.
fn writer(db: &Database, mut queue: mpsc::Receiver<Write>) {
    let mut batch = Vec::with_capacity(BATCH);
    // Where the next prune scan starts (0: from the oldest).
    let mut prune_from = 0u64;
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let result = commit(db, &batch).map_err(|e| {
            let e = *e;
            tracing::error!(error = %e, "store commit failed");
            e.to_string()
        });
        for w in batch.drain(..) {
            match w {
                Write::Put { done: Some(d), .. } => drop(d.send(result.clone())),
                Write::Put { done: None, .. } => {}
                Write::Flush(d) => drop(d.send(())),
                Write::Prune {
                    now_ms,
                    cutoff_ms,
                    report,
                    done,
                } => {
                    let pruned = prune(db, &mut prune_from, now_ms, cutoff_ms, report)
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
        }
    }
}

/// One prune transaction: scans ids from `*from` up to the cutoff time (in
/// microseconds, as ids are), deletes what may go, and moves `*from` on.
fn prune(
    db: &Database,
    from: &mut u64,
    now_ms: u64,
    cutoff_ms: u64,
    report: bool,
) -> Result<Pruned, Box<redb::Error>> {
    let last_id = cutoff_ms.saturating_mul(1000);
    if *from > last_id {
        *from = 0;
    }
    let tx = db.begin_write().map_err(redb::Error::from)?;
    let mut pruned = Pruned::default();
    {
        let mut messages = tx.open_table(MESSAGES).map_err(redb::Error::from)?;
        let mut doomed = Vec::new();
        let mut next = None;
        let rows = messages.range(*from..=last_id).map_err(redb::Error::from)?;
        for (scanned, row) in rows.enumerate() {
            let (id, json) = row.map_err(redb::Error::from)?;
            let id = id.value();
            if scanned == PRUNE_SCAN || doomed.len() == PRUNE_DELETE {
                next = Some(id);
                break;
            }
            let Ok(record) = serde_json::from_slice::<Record>(json.value()) else {
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
        for id in &doomed {
            messages.remove(*id).map_err(redb::Error::from)?;
        }
        pruned.deleted = doomed.len();
        // Soon again only while there is a backlog to delete: rows that must
        // stay (receipts owed for months) are rescanned at the normal pace.
        pruned.more = next.is_some() && !doomed.is_empty();
        *from = next.unwrap_or(0);
    }
    tx.commit().map_err(redb::Error::from)?;
    Ok(pruned)
}

fn commit(db: &Database, batch: &[Write]) -> Result<(), Box<redb::Error>> {
    let tx = db.begin_write().map_err(redb::Error::from)?;
    {
        let mut messages = tx.open_table(MESSAGES).map_err(redb::Error::from)?;
        let mut meta = tx.open_table(META).map_err(redb::Error::from)?;
        let mut high = meta
            .get("high_water")
            .map_err(redb::Error::from)?
            .map_or(0, |v| v.value());
        let old_high = high;
        for w in batch {
            if let Write::Put { id, json, .. } = w {
                messages
                    .insert(*id, json.as_slice())
                    .map_err(redb::Error::from)?;
                high = high.max(*id);
            }
        }
        if high != old_high {
            meta.insert("high_water", high).map_err(redb::Error::from)?;
        }
    }
    tx.commit().map_err(redb::Error::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::record::tests::record;
    use super::super::record::Outcome;
    use super::*;

    #[tokio::test]
    async fn prune_deletes_old_finished_records_only() {
        let dir = tempfile::tempdir().unwrap();
        let (disk, _, _) = RedbStore::open(dir.path(), |_| true).unwrap();
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
        let (disk, _, _) = RedbStore::open(dir.path(), |_| true).unwrap();
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
            let (disk, records, high) = RedbStore::open(dir.path(), |_| true).unwrap();
            assert!(records.is_empty());
            assert_eq!(high, 0);
            disk.put_durable(&record(7)).await.unwrap();
            disk.put(&record(5)).await;
            disk.flush().await;
            assert_eq!(&*disk.get(7).unwrap().payload, b"hello \x00\xff");
        }
        // The writer thread ends when the last sender is dropped; redb allows
        // one Database per file, so wait for it to let go.
        let mut reopened = None;
        for _ in 0..100 {
            match RedbStore::open(dir.path(), |_| true) {
                Ok(d) => {
                    reopened = Some(d);
                    break;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
        let (_, mut records, high) = reopened.expect("store reopens");
        records.sort_by_key(|r| r.id);
        assert_eq!(records.iter().map(|r| r.id).collect::<Vec<_>>(), [5, 7]);
        assert_eq!(high, 7);
    }
}
