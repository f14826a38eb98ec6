//! The message store: the records of submitted messages, in memory, and
//! optionally persisted to disk.
//!
//! The persistent store is [redb](https://docs.rs/redb): pure Rust (no C
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
//! is older than the retention, when asked ([`Disk::prune`]), in small
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
use serde::{Deserialize, Serialize};
use smpp_proto::message::MessageState;
use smpp_proto::pdu::RegisteredDelivery;
use tokio::sync::{mpsc, oneshot};

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

/// An address: TON, NPI and digits (or alphanumeric text).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addr {
    /// Type of number.
    pub ton: u8,
    /// Numbering plan.
    pub npi: u8,
    /// The address.
    pub addr: String,
}

/// Octets held in place up to `N` (at most 255), in one allocation beyond:
/// what [`Text`] and [`Octets`] are made of. A record is cached for every
/// message in memory and forgotten in submission order, so each allocation
/// it owns costs a `malloc` when it is made and a cold `free` when it is
/// evicted.
#[derive(Clone, PartialEq, Eq)]
enum Inline<const N: usize> {
    Here { len: u8, buf: [u8; N] },
    Heap(Box<[u8]>),
}

impl<const N: usize> Inline<N> {
    const EMPTY: Inline<N> = Inline::Here {
        len: 0,
        buf: [0; N],
    };

    fn new(v: &[u8]) -> Inline<N> {
        match u8::try_from(v.len()) {
            Ok(len) if v.len() <= N => {
                let mut buf = [0; N];
                buf[..v.len()].copy_from_slice(v);
                Inline::Here { len, buf }
            }
            _ => Inline::Heap(v.into()),
        }
    }

    /// Takes `v`'s allocation when it does not fit in place.
    fn from_vec(v: Vec<u8>) -> Inline<N> {
        if v.len() <= N {
            Inline::new(&v)
        } else {
            Inline::Heap(v.into_boxed_slice())
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Inline::Here { len, buf } => &buf[..usize::from(*len)],
            Inline::Heap(v) => v,
        }
    }
}

/// A short text of a record (an address, a service type): up to
/// [`TEXT_INLINE`] octets are held in the record itself, longer ones in one
/// allocation. Serialized as a string, like the `String` it replaces (the
/// stored JSON is unchanged).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Text(Inline<TEXT_INLINE>);

/// Fits beside the tags: a `Text` is as large as a `String`.
const TEXT_INLINE: usize = 22;

impl Text {
    /// The empty text.
    pub(crate) const fn new() -> Text {
        Text(Inline::EMPTY)
    }

    /// The text of a received field (lossy: invalid UTF-8 is replaced).
    pub(crate) fn from_field(s: &smpp_proto::pdu::COctetString) -> Text {
        match s.as_str() {
            Ok(s) => Text::from(s),
            Err(_) => Text::from(s.to_string_lossy().as_ref()),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Built from a `str` only, whole: always UTF-8.
        std::str::from_utf8(self.0.bytes()).unwrap_or_default()
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::new()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(Inline::new(s.as_bytes()))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(Inline::from_vec(s.into_bytes()))
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        String::deserialize(d).map(Text::from)
    }
}

/// A record's user data (its `short_message`): up to [`OCTETS_INLINE`]
/// octets (a whole 160-character GSM text, a part of a long message, 70
/// UCS-2 characters) are held in the record itself, longer ones (161 to 255
/// octets) in one allocation, as for [`Text`]. Serialized as hex, like the
/// `Vec` it replaces.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Octets(Inline<OCTETS_INLINE>);

const OCTETS_INLINE: usize = 160;

impl Octets {
    #[cfg(test)]
    fn is_inline(&self) -> bool {
        matches!(self.0, Inline::Here { .. })
    }
}

impl Default for Octets {
    fn default() -> Octets {
        Octets(Inline::EMPTY)
    }
}

impl From<&[u8]> for Octets {
    fn from(v: &[u8]) -> Octets {
        Octets(Inline::new(v))
    }
}

impl From<Vec<u8>> for Octets {
    fn from(v: Vec<u8>) -> Octets {
        Octets(Inline::from_vec(v))
    }
}

impl std::ops::Deref for Octets {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.0.bytes()
    }
}

impl std::fmt::Debug for Octets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl Serialize for Octets {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        hex_bytes::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for Octets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Octets, D::Error> {
        hex_bytes::deserialize(d).map(Octets::from)
    }
}

/// A record's address ([`Addr`] with its text inline when short).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredAddr {
    pub ton: u8,
    pub npi: u8,
    pub addr: Text,
}

impl From<&StoredAddr> for Addr {
    fn from(a: &StoredAddr) -> Addr {
        Addr {
            ton: a.ton,
            npi: a.npi,
            addr: a.addr.as_str().to_owned(),
        }
    }
}

/// A record's destinations: one (submit_sm, data_sm: no list to allocate)
/// or several (submit_multi). Serialized as a sequence, like the `Vec` it
/// replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dests {
    One(StoredAddr),
    Many(Vec<StoredAddr>),
}

impl From<Vec<StoredAddr>> for Dests {
    fn from(mut v: Vec<StoredAddr>) -> Dests {
        match v.len() {
            1 => Dests::One(v.pop().unwrap_or_default()),
            _ => Dests::Many(v),
        }
    }
}

impl std::ops::Deref for Dests {
    type Target = [StoredAddr];

    fn deref(&self) -> &[StoredAddr] {
        match self {
            Dests::One(a) => std::slice::from_ref(a),
            Dests::Many(v) => v,
        }
    }
}

impl Serialize for Dests {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Dests {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Dests, D::Error> {
        Vec::<StoredAddr>::deserialize(d).map(Dests::from)
    }
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// Becomes `state` at `due_ms` (until then ENROUTE): nothing needs to
    /// happen for the state to move, a reader computes it.
    Planned { due_ms: u64, state: u8, error: u16 },
    /// Reached `state` at `done_ms` (delivered to an ESME, cancelled...).
    Fixed { done_ms: u64, state: u8, error: u16 },
    /// Waits for something (an ESME-to-ESME delivery): ENROUTE.
    Pending,
}

/// What kind of submission a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    /// submit_sm, data_sm, submit_multi.
    Message,
    /// broadcast_sm (v5.0).
    Broadcast,
    /// Mobile-originated (injected): no submitter, no receipt.
    Mo,
}

/// One submitted message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub id: u64,
    pub kind: Kind,
    /// Shared by every record of the account.
    pub account: Arc<str>,
    pub service_type: Text,
    pub source: StoredAddr,
    pub dests: Dests,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub data_coding: u8,
    pub registered_delivery: u8,
    /// The user data (short_message; a message_payload stays in `tlvs`).
    pub payload: Octets,
    /// TLVs to pass on when routed to an ESME (raw wire bytes).
    #[serde(with = "hex_bytes")]
    pub tlvs: Vec<u8>,
    /// Parts of the concatenated message it belongs to (1 if not).
    pub parts: u32,
    pub billing: Option<Vec<u8>>,
    pub submit_ms: u64,
    pub outcome: Outcome,
    /// ESME-to-ESME: the account whose receiver gets it as a deliver_sm.
    pub route: Option<String>,
    /// Receipts sent (one is owed per destination when registered_delivery asks).
    pub receipts_sent: u32,
    /// The final state was reported to the observer.
    pub reported: bool,
}

impl Record {
    /// `registered_delivery`, typed.
    pub(crate) fn registered_delivery(&self) -> RegisteredDelivery {
        RegisteredDelivery::from(self.registered_delivery)
    }

    /// The state now, its time (done) and error code.
    pub(crate) fn state_at(&self, now_ms: u64) -> (MessageState, Option<u64>, u16) {
        match self.outcome {
            Outcome::Planned {
                due_ms,
                state,
                error,
            } if now_ms >= due_ms => (
                MessageState::from_u8(state).unwrap_or(MessageState::Unknown),
                Some(due_ms),
                error,
            ),
            Outcome::Fixed {
                done_ms,
                state,
                error,
            } => (
                MessageState::from_u8(state).unwrap_or(MessageState::Unknown),
                Some(done_ms),
                error,
            ),
            _ => (MessageState::Enroute, None, 0),
        }
    }

    /// Whether it is final at `now_ms`.
    pub(crate) fn is_final(&self, now_ms: u64) -> bool {
        self.state_at(now_ms).1.is_some()
    }

    /// Whether receipts are still owed at `now_ms` (final, asked for, not all sent).
    pub(crate) fn receipts_owed(&self, now_ms: u64) -> bool {
        let (state, done, _) = self.state_at(now_ms);
        self.kind == Kind::Message
            && done.is_some()
            && self
                .registered_delivery()
                .wants_receipt_for(state == MessageState::Delivered)
            && (self.receipts_sent as usize) < self.dests.len()
    }

    /// It needs nothing now and never will, whatever the time: not routed,
    /// no receipt asked for, final states not reported (`report`). Only a
    /// change to the record (replace_sm) can undo that.
    pub(crate) fn never_has_work(&self, report: bool) -> bool {
        !report
            && self.outcome != Outcome::Pending
            && !(self.kind == Kind::Message && self.registered_delivery().wants_receipt())
    }

    /// Whether it still needs something done (receipts, routing, reporting).
    /// A message that will become final with nothing to do then needs nothing.
    pub(crate) fn has_work(&self, now_ms: u64, report: bool) -> bool {
        if self.is_final(now_ms) {
            self.receipts_owed(now_ms) || (report && !self.reported)
        } else {
            self.outcome == Outcome::Pending
                || report
                || (self.kind == Kind::Message && self.registered_delivery().wants_receipt())
        }
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(v.len() * 2);
        for b in v {
            out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        s.serialize_str(&out)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <&str>::deserialize(d)?;
        let digit = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(serde::de::Error::custom("bad hex")),
        };
        s.as_bytes()
            .chunks(2)
            .map(|p| match p {
                [h, l] => Ok(digit(*h)? << 4 | digit(*l)?),
                _ => Err(serde::de::Error::custom("odd hex length")),
            })
            .collect()
    }
}

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

/// What one prune call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pruned {
    /// Records deleted.
    pub deleted: usize,
    /// The scan stopped at a limit: call again soon.
    pub more: bool,
}

/// The page cache of the store, in bytes.
const STORE_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// The persistent store: a redb database and its group-commit writer thread.
#[derive(Debug, Clone)]
pub(crate) struct Disk {
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

impl Disk {
    /// Opens (or creates) the store in `dir`; returns it, the records `keep`
    /// selects, and the highest id ever committed.
    pub(crate) fn open(
        dir: &Path,
        keep: impl Fn(&Record) -> bool,
    ) -> anyhow::Result<(Disk, Vec<Record>, u64)> {
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
        Ok((Disk { db, writes }, records, high_water))
    }

    /// Writes `record` and waits until it is durable.
    pub(crate) async fn put_durable(&self, record: &Record) -> Result<(), String> {
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
    pub(crate) async fn put(&self, record: &Record) {
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
    pub(crate) fn get(&self, id: u64) -> Option<Record> {
        let tx = self.db.begin_read().ok()?;
        let table = tx.open_table(MESSAGES).ok()?;
        let row = table.get(id).ok()??;
        serde_json::from_slice(row.value()).ok()
    }

    /// Deletes (some of) the records final before `cutoff_ms` that need
    /// nothing more at `now_ms` (`report`: the observer wants final states,
    /// so an unreported one is kept). Runs on the writer thread, after the
    /// writes queued before it.
    pub(crate) async fn prune(&self, now_ms: u64, cutoff_ms: u64, report: bool) -> Pruned {
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
    pub(crate) async fn flush(&self) {
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
    use super::*;

    fn record(id: u64) -> Record {
        Record {
            id,
            kind: Kind::Message,
            account: Arc::from("a"),
            service_type: Text::new(),
            source: StoredAddr::default(),
            dests: Dests::One(StoredAddr {
                ton: 1,
                npi: 1,
                addr: "447700900000".into(),
            }),
            esm_class: 0,
            protocol_id: 0,
            priority_flag: 0,
            data_coding: 0,
            registered_delivery: 1,
            payload: b"hello \x00\xff".to_vec().into(),
            tlvs: vec![],
            parts: 1,
            billing: None,
            submit_ms: 1,
            outcome: Outcome::Planned {
                due_ms: 10,
                state: 2,
                error: 0,
            },
            route: None,
            receipts_sent: 0,
            reported: false,
        }
    }

    #[test]
    fn inline_texts_and_one_destination_store_as_strings_and_lists() {
        let mut r = record(9);
        r.service_type = Text::from("CMT");
        r.source.addr = Text::from("a source longer than twenty-two octets");
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""service_type":"CMT""#), "{json}");
        assert!(json.contains(r#""addr":"a source longer than twenty-two octets""#));
        assert!(json.contains(r#""dests":[{"ton":1,"npi":1,"addr":"447700900000"}]"#));
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(back.source, r.source);
        assert_eq!(back.dests, r.dests);
        assert_eq!(&*back.service_type, "CMT");
        let many = r#"[{"ton":1,"npi":1,"addr":"1"},{"ton":1,"npi":1,"addr":"2"}]"#;
        let dests: Dests = serde_json::from_str(many).unwrap();
        assert_eq!(dests.len(), 2);
        assert_eq!(serde_json::to_string(&dests).unwrap(), many);
        let none: Dests = serde_json::from_str("[]").unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn inline_values_are_as_small_as_promised() {
        assert_eq!(size_of::<Text>(), size_of::<String>());
        assert!(size_of::<Octets>() <= OCTETS_INLINE + 8);
        for len in [0, 21, 22, 23, 300] {
            let s = "é".repeat(len / 2) + &"x".repeat(len % 2);
            assert_eq!(Text::from(s.as_str()).as_str(), s);
            assert_eq!(Text::from(s.clone()).as_str(), s);
        }
    }

    #[test]
    fn user_data_inline_or_not_stores_as_hex() {
        for len in [0, 1, 159, 160, 161, 254, 64_000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut r = record(3);
            r.payload = Octets::from(data.as_slice());
            assert_eq!(r.payload.is_inline(), len <= 160, "{len}");
            assert_eq!(&*r.payload, &data[..]);
            assert_eq!(r.payload, Octets::from(data.clone()));
            let json = serde_json::to_string(&r).unwrap();
            let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
            assert!(json.contains(&format!(r#""payload":"{hex}""#)), "{len}");
            let back: Record = serde_json::from_str(&json).unwrap();
            assert_eq!(&*back.payload, &data[..], "{len}");
        }
    }

    #[test]
    fn a_record_that_never_has_work_has_none_at_any_time() {
        let outcomes = [
            Outcome::Planned {
                due_ms: 10,
                state: 2,
                error: 0,
            },
            Outcome::Planned {
                due_ms: 10,
                state: 5,
                error: 1,
            },
            Outcome::Fixed {
                done_ms: 10,
                state: 2,
                error: 0,
            },
            Outcome::Pending,
        ];
        let mut quiet = 0;
        for kind in [Kind::Message, Kind::Broadcast, Kind::Mo] {
            for outcome in outcomes {
                for registered_delivery in 0..=0x1F {
                    for report in [false, true] {
                        for reported in [false, true] {
                            let mut r = record(1);
                            (r.kind, r.outcome, r.reported) = (kind, outcome, reported);
                            r.registered_delivery = registered_delivery;
                            if !r.never_has_work(report) {
                                continue;
                            }
                            quiet += 1;
                            for now in [0, 9, 10, 11, u64::MAX] {
                                assert!(!r.has_work(now, report), "{r:?} at {now}");
                            }
                        }
                    }
                }
            }
        }
        assert!(quiet > 0);
    }

    #[test]
    fn state_moves_at_the_due_time() {
        let mut r = record(1);
        assert_eq!(r.state_at(9).0, MessageState::Enroute);
        assert_eq!(r.state_at(10), (MessageState::Delivered, Some(10), 0));
        assert!(r.has_work(9, false));
        assert!(r.has_work(10, false), "a receipt is owed");
        r.receipts_sent = 1;
        assert!(!r.has_work(10, false));
        assert!(r.has_work(10, true), "not reported yet");
        r.registered_delivery = 0;
        r.receipts_sent = 0;
        assert!(!r.has_work(9, false), "nothing to do when it becomes final");
    }

    #[tokio::test]
    async fn prune_deletes_old_finished_records_only() {
        let dir = tempfile::tempdir().unwrap();
        let (disk, _, _) = Disk::open(dir.path(), |_| true).unwrap();
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
        let (disk, _, _) = Disk::open(dir.path(), |_| true).unwrap();
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
            let (disk, records, high) = Disk::open(dir.path(), |_| true).unwrap();
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
            match Disk::open(dir.path(), |_| true) {
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
