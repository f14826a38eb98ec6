//! The SMSC itself: accounts, the message table, receipts, routing between
//! bound ESMEs, and the [`Handler`] that answers every operation.
//!
//! Hot path (`submit_sm` with the in-memory store): a throttle check
//! (atomics), the rule scan, one record built and inserted into one of 64
//! mutex-protected shards (no lock is held across an await), and, only when
//! something must happen later (a receipt, a route, a final-state report),
//! one entry in the timer heap. A message's state needs no timer: the record
//! holds its planned outcome and due time, and readers compute ENROUTE or
//! the final state from the clock.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use smpp_proto::pdu::{Bind, Body, COctetString, CommandStatus, EsmClass, Pdu, SubmitSm};
use smpp_proto::session::BindKind;
use smpp_tokio::{Answer, Connection, Handler, SoonAnswer};

use crate::accounts::{Accounts, LockoutEvent};
use crate::binds::{address_range, Binds, Esme};
use crate::clock::{Clock, SystemClock};
use crate::config::ServeConfig;
use crate::jobs::{Job, JobQueue, BINDING_RETRY};
use crate::lockout::Lockout;
use crate::observer::{BindEvent, Observer};
use crate::routing::{Decision, Router, Target};
use crate::store::{Addr, MessageStore, Outcome, Record, Store};

mod alerts;
mod delivery;
mod mo_feed;
mod ops;
mod outbind;
mod ussd;

const SHARDS: usize = 64;
/// Records of a shard looked at per retention pass at most.
const EXPIRE_TRIES: usize = 1024;

/// A message as the HTTP API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MessageView {
    /// The message id.
    pub id: String,
    /// The submitting account ("" for injected MO messages).
    pub account: String,
    /// Originator.
    pub source: Addr,
    /// Recipients.
    pub destinations: Vec<Addr>,
    /// `ENROUTE`, `DELIVRD`, `UNDELIV`...
    pub state: &'static str,
    /// Submission time, ms since the Unix epoch.
    pub submit_time_ms: u64,
    /// Final-state time, ms since the Unix epoch.
    pub done_time_ms: Option<u64>,
    /// Error code (`err:` of the receipt).
    pub error: u16,
    /// Parts of the concatenated message it belongs to (1 if not).
    pub parts: u32,
    /// Receipts delivered so far.
    pub receipts_sent: u32,
}

/// What [`Smsc::search`] looks for: every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    /// An address (source or a destination) containing this.
    pub address: Option<String>,
    /// The submitting account.
    pub account: Option<String>,
    /// The state's stat word (`DELIVRD`, `ENROUTE`...).
    pub state: Option<String>,
    /// Submitted at or after, ms since the Unix epoch.
    pub since_ms: Option<u64>,
    /// Submitted before, ms since the Unix epoch.
    pub until_ms: Option<u64>,
}

impl MessageFilter {
    /// Whether `view` is one of those looked for.
    pub fn matches(&self, view: &MessageView) -> bool {
        self.address.as_deref().is_none_or(|a| {
            view.source.addr.contains(a) || view.destinations.iter().any(|d| d.addr.contains(a))
        }) && self.account.as_deref().is_none_or(|a| view.account == a)
            && self
                .state
                .as_deref()
                .is_none_or(|s| view.state.eq_ignore_ascii_case(s))
            && self.since_ms.is_none_or(|t| view.submit_time_ms >= t)
            && self.until_ms.is_none_or(|t| view.submit_time_ms < t)
    }
}

/// The boxes of the records forgotten last on this thread, kept for the
/// next records made here.
///
/// At the cache's limit every new record evicts the oldest, which is cold
/// (written a quarter of a million messages ago). Dropping it reads its first
/// lines and freeing it writes one; the new record then went to another
/// block, itself long unused. Filled in the forgotten record's box instead
/// (`ops::fill`, field by field: each field's old value is dropped as the
/// new one is written), the new record is written over the lines that
/// dropping its predecessor reads: one set of cache misses instead of two.
///
/// Up to [`SPARES`] boxes per thread: with a durable store the records of
/// a synced batch are kept (and as many old ones evicted) together, after
/// the batch's records were made; one spare would leave all but one of
/// those evicted to be dropped.
pub(crate) mod spare {
    use std::cell::RefCell;

    use crate::store::Record;

    /// Boxes kept per thread at most: a few windows' worth (a batch of 4
    /// binds at window 64).
    pub(crate) const SPARES: usize = 256;

    thread_local! {
        // The boxes themselves are the point (their blocks are reused).
        #[allow(clippy::vec_box)]
        static SPARE: RefCell<Vec<Box<Record>>> = const { RefCell::new(Vec::new()) };
    }

    /// Keeps `record`'s box for a later [`take`] on this thread, unless
    /// [`SPARES`] are kept already (then it is dropped here). The record in
    /// it is dropped field by field when the box is filled again. Only the
    /// cache's eviction, which new records follow, retires: a record
    /// forgotten otherwise (retention) is dropped at once, its addresses
    /// and text with it.
    pub(crate) fn retire(record: Box<Record>) {
        // During the thread's teardown there is nowhere to keep it.
        let left = SPARE.try_with(|s| {
            let mut spares = s.borrow_mut();
            if spares.len() < SPARES {
                spares.push(record);
                None
            } else {
                Some(record)
            }
        });
        // Dropped outside the borrow.
        drop(left);
    }

    /// The box retired last on this thread, if any (its record still in
    /// it, to be written over).
    pub(crate) fn take() -> Option<Box<Record>> {
        SPARE.try_with(|s| s.borrow_mut().pop()).ok().flatten()
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::store::record::tests::record;

        #[test]
        fn retired_boxes_are_taken_once_last_first_and_spares_kept_at_most() {
            // Runs on its own test thread: no spare box yet.
            assert!(take().is_none());
            let first = Box::new(record(1));
            let at = std::ptr::from_ref::<Record>(&first);
            retire(first);
            let taken = take().expect("the retired box");
            assert_eq!((std::ptr::from_ref::<Record>(&taken), taken.id), (at, 1));
            assert!(take().is_none());
            let second = Box::new(record(2));
            let second_at = std::ptr::from_ref::<Record>(&second);
            retire(taken);
            retire(second);
            assert_eq!(
                take().map(|b| std::ptr::from_ref::<Record>(&b)),
                Some(second_at)
            );
            assert_eq!(take().map(|b| b.id), Some(1));
            assert!(take().is_none());
            // Beyond SPARES a retired box is dropped, not kept.
            for id in 0..SPARES as u64 + 10 {
                retire(Box::new(record(id)));
            }
            let mut kept = Vec::new();
            while let Some(b) = take() {
                kept.push(b.id);
            }
            let expected: Vec<u64> = (0..SPARES as u64).rev().collect();
            assert_eq!(kept, expected);
        }

        #[test]
        fn a_record_filled_over_another_is_as_one_filled_over_a_blank() {
            use smpp_proto::pdu::{COctetString, SubmitSm, Tlvs};

            use crate::store::{Dests, Kind, Octets, Outcome, StoredAddr, Text};

            let text = |s: &str| COctetString::copy_from_slice(s.as_bytes());
            // Every field set, long where it can be, and different from the second's.
            let first = SubmitSm {
                service_type: text("a service type too long to fit in place"),
                source_addr_ton: 5,
                source_addr_npi: 9,
                source_addr: text("a source address too long to fit in place"),
                esm_class: 0x40,
                protocol_id: 0x7F,
                priority_flag: 3,
                data_coding: 8,
                registered_delivery: 0x11,
                short_message: bytes::Bytes::from_static(&[0xAB; 200]),
                tlvs: Tlvs::from_bytes(bytes::Bytes::from_static(&[
                    0x00, 0x19, 0, 1, 1, 0x06, 0x0B, 0, 2, 1, 2,
                ]))
                .expect("two TLVs"),
                ..SubmitSm::default()
            };
            let second = SubmitSm {
                service_type: text("CMT"),
                source_addr_ton: 1,
                source_addr_npi: 1,
                source_addr: text("12"),
                esm_class: 0x03,
                protocol_id: 0x41,
                priority_flag: 1,
                data_coding: 0xF0,
                registered_delivery: 1,
                short_message: bytes::Bytes::from_static(b"hi"),
                ..SubmitSm::default()
            };
            let to = |addr: &str| {
                Dests::One(StoredAddr {
                    ton: 1,
                    npi: 1,
                    addr: addr.into(),
                })
            };
            let outcome = Outcome::Planned {
                due_ms: 9,
                state: 2,
                error: 0,
            };
            let mut used = Record::default();
            super::super::ops::fill(
                &mut used,
                Kind::Broadcast,
                "an-account-name-too-long-to-fit",
                &first,
                Dests::Many(vec![StoredAddr::default(); 3]),
                Some("esme".into()),
                Outcome::Pending,
                7,
                1,
            );
            assert!(used.billing.is_some() && !used.tlvs.is_empty());
            used.receipts_sent = 2;
            used.reported = true;
            // The second over the first, and over a blank...
            let mut fresh = Record::default();
            for r in [&mut used, &mut fresh] {
                super::super::ops::fill(
                    r,
                    Kind::Message,
                    "a",
                    &second,
                    to("4477"),
                    None,
                    outcome,
                    8,
                    2,
                );
            }
            // ...are both the record the second makes, written out here.
            let expected = Record {
                tlvs: Vec::new(),
                billing: None,
                route: None,
                account: Text::from("a"),
                service_type: Text::from("CMT"),
                source: StoredAddr {
                    ton: 1,
                    npi: 1,
                    addr: Text::from("12"),
                },
                dests: to("4477"),
                payload: Octets::from(&b"hi"[..]),
                outcome,
                id: 8,
                submit_ms: 2,
                parts: 1,
                receipts_sent: 0,
                kind: Kind::Message,
                esm_class: 0x03,
                protocol_id: 0x41,
                priority_flag: 1,
                data_coding: 0xF0,
                registered_delivery: 1,
                reported: false,
            };
            assert_eq!(used.encode(), expected.encode());
            assert_eq!(fresh.encode(), expected.encode());
        }
    }
}

#[derive(Debug, Default)]
struct Shard {
    /// Boxed: the table stays small enough to stay in cache, and inserting
    /// or evicting moves a pointer, not a few hundred octets.
    records: HashMap<u64, Slot, IdHash>,
    order: VecDeque<u64>,
}

/// A record in the memory cache.
#[derive(Debug)]
struct Slot {
    /// It can never need anything more ([`Record::never_has_work`]): the
    /// eviction pass forgets it without reading the record itself.
    quiet: bool,
    record: Box<Record>,
}

impl Slot {
    fn new(record: Box<Record>, report: bool) -> Slot {
        Slot {
            quiet: record.never_has_work(report),
            record,
        }
    }

    fn has_work(&self, now: u64, report: bool) -> bool {
        !self.quiet && self.record.has_work(now, report)
    }
}

/// Message ids are our own sequential numbers, not attacker-chosen keys, so
/// SipHash's DoS resistance buys nothing here. A shard holds the ids of one
/// residue mod 64: `id / 64` counts up by one, and as the low bits of the
/// hash (the table position) it puts consecutive messages in consecutive
/// buckets. Inserting the newest and evicting the oldest then touch memory
/// that is already in cache, where a scattering hash missed twice per
/// message. The top seven bits (the table's tag) are mixed, so that a probe
/// still rejects most other keys without comparing them.
#[derive(Debug, Clone, Copy, Default)]
struct IdHash;

impl std::hash::BuildHasher for IdHash {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

#[derive(Debug)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, id: u64) {
        const TAG: u64 = 0x7F << 57;
        self.0 = (id / SHARDS as u64) & !TAG | mix(self.0 ^ id) & TAG;
    }
}

/// The SMSC state shared by every connection: the components (accounts,
/// router, store, clock, observer) and what ties them together (the record
/// cache, the bound ESMEs, the timers of delivery).
pub struct Smsc<C: Clock = SystemClock> {
    config: ServeConfig,
    clock: C,
    observer: Arc<dyn Observer>,
    report_finals: bool,
    accounts: Accounts,
    /// Failed binds per address (`None`: no lockout).
    lockout: Option<Lockout>,
    /// Changed while running by [`Smsc::set_simulation`].
    router: std::sync::RwLock<Router>,
    /// Receipts come within `0..=dlr_delay_ms` (changed with the router).
    dlr_delay_ms: AtomicU64,
    shards: Box<[Mutex<Shard>]>,
    max_per_shard: usize,
    next_id: AtomicU64,
    rng: AtomicU64,
    store: MessageStore,
    /// Every submit_sm can be decided where it arrives: no rule delays an
    /// answer and no USSD menu looks at it. It is then answered at once in
    /// memory ([`answer_now`](Smsc::answer_now)), or once its record is
    /// synced with a persistent store ([`answer_durable`](Smsc::answer_durable)).
    quick: std::sync::atomic::AtomicBool,
    /// The bound ESMEs.
    binds: Binds,
    /// What must happen later, and when.
    jobs: JobQueue,
    /// Records in memory.
    stored: AtomicUsize,
    /// When [`full`](Smsc::full) last swept, ms since the epoch.
    last_sweep: AtomicU64,
    stopping: AtomicBool,
    /// The open dialogs of the USSD menu.
    ussd: ussd::UssdDialogs,
}

impl<C: Clock> std::fmt::Debug for Smsc<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smsc")
            .field("listen", &self.config.listen)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// splitmix64: cheap, well-mixed pseudo-random numbers for delays and outcomes.
/// Keeps [`Smsc::delay_ms`]'s draws apart from the id hash's tags.
const DELAY_SALT: u64 = 0x5DEE_CE66_D1CE_4E5B;

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn format_id(id: u64) -> String {
    format!("{id:X}")
}

/// [`format_id`] straight into a `message_id` field: the sixteen hex
/// digits are made at once in two words (each nibble spread to its own
/// octet, then shifted into ASCII), without a loop per digit, and stored
/// inline (no heap string, no formatter).
fn id_field(id: u64) -> COctetString {
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(&hex_word((id >> 32) as u32).to_be_bytes());
    buf[8..].copy_from_slice(&hex_word(id as u32).to_be_bytes());
    // At least one digit: 0 is "0".
    let digits = (16 - id.leading_zeros() as usize / 4).max(1);
    COctetString::copy_from_slice(&buf[16 - digits..])
}

/// The eight upper-case hex digits of `x`, most significant first when
/// the word is read big-endian.
fn hex_word(x: u32) -> u64 {
    const LOW_NIBBLES: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    let x = u64::from(x);
    let x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    let x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    let nibbles = (x | (x << 4)) & LOW_NIBBLES;
    // 1 in the octets holding 10..=15 (adding 6 carries into bit 4).
    let letters = ((nibbles + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    nibbles + 0x3030_3030_3030_3030 + letters * 7
}

fn parse_id(id: &str) -> Option<u64> {
    let id = id.trim();
    if id.is_empty() || id.len() > 16 {
        return None;
    }
    u64::from_str_radix(id, 16).ok()
}

fn text(s: &smpp_proto::pdu::COctetString) -> String {
    s.to_string_lossy().into_owned()
}

/// Parts of the concatenated message a submission belongs to.
fn parts_of(sm: &SubmitSm) -> u32 {
    if let Some(total) = sm.tlvs.sar_total_segments() {
        return u32::from(total.max(1));
    }
    if sm.esm_class().udhi() {
        if let Ok((udh, _)) = smpp_proto::message::UserDataHeader::parse(&sm.short_message) {
            if let Some(c) = udh.concat() {
                return u32::from(c.total.max(1));
            }
        }
    }
    1
}

impl<C: Clock> Smsc<C> {
    /// Builds the SMSC: opens the store (replaying what it holds) and
    /// returns it with the records that still need work.
    pub(crate) fn new(
        config: ServeConfig,
        observer: Arc<dyn Observer>,
        clock: C,
    ) -> anyhow::Result<Arc<Smsc<C>>> {
        // Only records with work left come back into memory; the others
        // stay on disk (query_sm reads them back on demand), so a restart
        // costs memory for the pending work alone.
        let (now, report) = (clock.now_ms(), observer.wants_final_states());
        let (store, records, high_water) =
            MessageStore::open(&config.store, |r| r.has_work(now, report))?;
        let accounts = Accounts::new(&config.accounts, config.tps).map_err(anyhow::Error::msg)?;
        let router = Router::new(&config);
        // A USSD menu answers some submissions itself (after a look at them).
        let quick = !router.may_delay() && config.ussd_menu.is_none();
        // Ids are numbers: at least the current time in microseconds (so an
        // in-memory server restarted later never reuses one), and above any
        // id the persistent store ever committed.
        let first_id = clock.now_us().max(high_water.saturating_add(1));
        let max_messages = config.max_messages.max(SHARDS);
        let smsc = Arc::new(Smsc {
            report_finals: observer.wants_final_states(),
            observer,
            accounts,
            lockout: config.bind_failure_limit.map(Lockout::new),
            router: std::sync::RwLock::new(router),
            dlr_delay_ms: AtomicU64::new(
                u64::try_from(config.dlr_delay.as_millis()).unwrap_or(u64::MAX),
            ),
            quick: std::sync::atomic::AtomicBool::new(quick),
            clock,
            // Sized up front: growing a table of large records copies them all.
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        records: HashMap::with_capacity_and_hasher(
                            max_messages / SHARDS + 16,
                            IdHash,
                        ),
                        order: VecDeque::with_capacity(max_messages / SHARDS + 16),
                    })
                })
                .collect(),
            max_per_shard: max_messages / SHARDS,
            next_id: AtomicU64::new(first_id),
            rng: AtomicU64::new(first_id),
            store,
            binds: Binds::default(),
            jobs: JobQueue::default(),
            stored: AtomicUsize::new(0),
            last_sweep: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            ussd: ussd::UssdDialogs::default(),
            config,
        });
        let now = smsc.clock.now_ms();
        let mut replayed = 0usize;
        for record in records {
            let (id, route, pending) = (
                record.id,
                record.outcome == Outcome::Pending,
                record.has_work(now, smsc.report_finals),
            );
            let due = match record.outcome {
                Outcome::Planned { due_ms, .. } => due_ms,
                _ => now,
            };
            smsc.insert(Box::new(record), now);
            if pending {
                replayed += 1;
                smsc.schedule(due, id, if route { Job::Route } else { Job::Finalize });
            }
        }
        if replayed > 0 {
            tracing::info!(replayed, "store: messages with pending work resumed");
        }
        Ok(smsc)
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &ServeConfig {
        &self.config
    }

    /// The clock it runs on.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    fn router(&self) -> std::sync::RwLockReadGuard<'_, Router> {
        self.router.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The outcome rules, weights and receipt delay in force.
    pub fn simulation(&self) -> crate::config::Simulation {
        let (rules, outcomes) = self.router().simulation();
        crate::config::Simulation {
            rules,
            outcomes,
            dlr_delay: std::time::Duration::from_millis(self.dlr_delay_ms.load(Ordering::Relaxed)),
        }
    }

    /// Puts other outcome rules, weights and receipt delay in force, for
    /// the submissions that come next (the dashboard's simulator controls).
    pub fn set_simulation(&self, simulation: crate::config::Simulation) {
        let mut router = self.router.write().unwrap_or_else(|e| e.into_inner());
        *router = router.with_simulation(simulation.rules, simulation.outcomes);
        let quick = !router.may_delay() && self.config.ussd_menu.is_none();
        self.quick.store(quick, Ordering::Release);
        self.dlr_delay_ms.store(
            u64::try_from(simulation.dlr_delay.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        tracing::info!("outcome rules, weights and receipt delay changed");
    }

    /// Every bound session, oldest first.
    pub fn sessions(&self) -> Vec<crate::binds::SessionView> {
        self.binds
            .list()
            .into_iter()
            .map(|(view, _)| view)
            .collect()
    }

    /// Every bound session, oldest first, with its connection (to ask it
    /// for its stats).
    pub fn session_connections(&self) -> Vec<(crate::binds::SessionView, smpp_tokio::Connection)> {
        self.binds.list()
    }

    /// Unbinds the bound session `id` (its ESME is sent an `unbind`, then
    /// the connection closes); `false` when no such session is bound.
    pub fn unbind_session(&self, id: u64) -> bool {
        let Some(conn) = self.binds.connection(id) else {
            return false;
        };
        tracing::info!(id, system_id = ?conn.system_id(), "unbinding a session (asked through the dashboard)");
        tokio::spawn(async move {
            if conn.unbind().await.is_err() {
                conn.close();
            }
        });
        true
    }

    fn shard(&self, id: u64) -> MutexGuard<'_, Shard> {
        lock(&self.shards[(id % SHARDS as u64) as usize])
    }

    /// Caches a record; `now`: the time in milliseconds.
    fn insert(&self, record: Box<Record>, now: u64) {
        let id = record.id;
        let slot = Slot::new(record, self.report_finals);
        let mut shard = self.shard(id);
        let added = shard.records.insert(id, slot).is_none();
        if added {
            shard.order.push_back(id);
        }
        // A few tries per insert keep memory near the limit at a bounded cost.
        let removed = self.evict(&mut shard, now, 4);
        // At the limit one comes as one goes: the shared count is not
        // touched (a locked add right after the record's stores would wait
        // for them). Counted under the shard's lock: a retention pass can
        // only take the record out after its add.
        self.count_stored(usize::from(added), removed);
    }

    /// Moves the count of records in memory by `added - removed`.
    fn count_stored(&self, added: usize, removed: usize) {
        match added.cmp(&removed) {
            std::cmp::Ordering::Greater => {
                self.stored.fetch_add(added - removed, Ordering::Relaxed);
            }
            std::cmp::Ordering::Less => {
                self.stored.fetch_sub(removed - added, Ordering::Relaxed);
            }
            std::cmp::Ordering::Equal => {}
        }
    }

    /// Forgets up to `tries` of the oldest records of a shard over its share
    /// that need nothing more (they remain in the persistent store when there
    /// is one); the others go to the back of the line. Returns how many it
    /// forgot (the caller counts them: [`count_stored`](Self::count_stored)).
    fn evict(&self, shard: &mut Shard, now: u64, tries: usize) -> usize {
        let mut removed = 0;
        for _ in 0..tries {
            if shard.records.len() <= self.max_per_shard {
                break;
            }
            let Some(old) = shard.order.pop_front() else {
                break;
            };
            // One probe of the (cold) table: look and remove in place.
            match shard.records.entry(old) {
                std::collections::hash_map::Entry::Occupied(slot)
                    if slot.get().has_work(now, self.report_finals) =>
                {
                    shard.order.push_back(old);
                }
                std::collections::hash_map::Entry::Occupied(slot) => {
                    spare::retire(slot.remove().record);
                    removed += 1;
                }
                std::collections::hash_map::Entry::Vacant(_) => {}
            }
        }
        removed
    }

    /// Forgets the records at the front of a shard's line that are final
    /// since before `cutoff` with nothing left to do (the store deletes its
    /// copies on its own); looks at `tries` of them at most, and stops at
    /// the first one that is not old enough. Returns whether it stopped at
    /// the limit having forgotten some (a backlog: worth another pass soon).
    fn expire(&self, shard: &mut Shard, now: u64, cutoff: u64, tries: usize) -> bool {
        let mut forgotten = 0;
        for _ in 0..tries {
            let Some(&old) = shard.order.front() else {
                return false;
            };
            let Some(slot) = shard.records.get(&old) else {
                shard.order.pop_front();
                continue;
            };
            if slot.has_work(now, self.report_finals) {
                // Waits for a receiver, say: behind the others.
                shard.order.pop_front();
                shard.order.push_back(old);
            } else if slot
                .record
                .state_at(now)
                .1
                .is_some_and(|done| done < cutoff)
            {
                shard.order.pop_front();
                shard.records.remove(&old);
                self.stored.fetch_sub(1, Ordering::Relaxed);
                forgotten += 1;
            } else {
                return false;
            }
        }
        forgotten > 0
    }

    /// A copy of the record (memory, else the persistent store).
    fn get(&self, id: u64) -> Option<Record> {
        if let Some(slot) = self.shard(id).records.get(&id) {
            return Some(Record::clone(&slot.record));
        }
        let record = self.store.get(id)?;
        self.insert(Box::new(record.clone()), self.clock.now_ms());
        Some(record)
    }

    /// Changes a record in place (loading it first if needed); returns the new copy.
    fn update(&self, id: u64, f: impl FnOnce(&mut Record)) -> Option<Record> {
        self.get(id)?;
        let mut shard = self.shard(id);
        let slot = shard.records.get_mut(&id)?;
        f(&mut slot.record);
        slot.quiet = slot.record.never_has_work(self.report_finals);
        Some(Record::clone(&slot.record))
    }

    async fn persist(&self, record: &Record) {
        self.store.put(record).await;
    }

    async fn persist_durable(&self, record: &Record) -> Result<(), CommandStatus> {
        self.store
            .put_durable(record)
            .await
            .map_err(|e| store_failed(&e))
    }

    /// Whether memory holds all it may: twice `max_messages` (those beyond
    /// `max_messages` are all still waiting for something).
    /// At the limit it sweeps every shard once (at most every 100 ms) for
    /// records that finished waiting.
    fn full(&self) -> bool {
        let limit = self.max_per_shard * SHARDS * 2;
        if self.stored.load(Ordering::Relaxed) < limit {
            return false;
        }
        let now = self.clock.now_ms();
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now >= last + 100
            && self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            for shard in self.shards.iter() {
                let mut shard = lock(shard);
                let tries = shard.order.len();
                let removed = self.evict(&mut shard, now, tries);
                drop(shard);
                self.count_stored(0, removed);
            }
        }
        self.stored.load(Ordering::Relaxed) >= limit
    }

    fn schedule(&self, due_ms: u64, id: u64, job: Job) {
        self.jobs.schedule(due_ms, id, job);
    }

    /// Parks a job until a receiver of `account` binds. The check runs under
    /// the waiting-list lock, which a bind takes (after registering itself)
    /// to release the jobs: a bind cannot slip between the two.
    fn wait_for_receiver(&self, account: &str, id: u64, job: Job) {
        if !self
            .jobs
            .park(account, id, job, || self.receiver(account, None).is_some())
        {
            self.retry_soon(id, job);
        }
    }

    fn random(&self) -> u64 {
        mix(self.rng.fetch_add(1, Ordering::Relaxed))
    }

    /// The receipt delay of message `id`: uniform in `0..=dlr_delay`, drawn
    /// from the id (unique, and already taken: no shared counter to move).
    fn delay_ms(&self, id: u64) -> u64 {
        let max = self.dlr_delay_ms.load(Ordering::Relaxed);
        if max == 0 {
            0
        } else {
            mix(id ^ DELAY_SALT) % max.saturating_add(1)
        }
    }

    /// Schedules `job` again after [`BINDING_RETRY`].
    fn retry_soon(&self, id: u64, job: Job) {
        self.schedule(
            self.clock.now_ms() + BINDING_RETRY.as_millis() as u64,
            id,
            job,
        );
    }

    /// The router's decision for one destination.
    fn decide(
        &self,
        destination: &str,
        esm_class: EsmClass,
        data_coding: u8,
        user_data: &[u8],
    ) -> Decision {
        self.router()
            .decide(destination, esm_class, data_coding, user_data, || {
                self.random()
            })
    }

    /// The bound receivers an address routes to: a receiver whose bind
    /// `address_range` (a regular expression) matches, else a configured
    /// route's account.
    fn target(&self, destination: &str) -> Target {
        self.route_for(destination)
            .map_or(Target::Simulated, Target::Esme)
    }

    fn route_for(&self, destination: &str) -> Option<String> {
        // The hot path: no receiver registered a range, no route configured.
        if !self.binds.any_range() && !self.router().has_routes() {
            return None;
        }
        self.binds
            .by_range(destination)
            .or_else(|| self.router().route(destination).map(str::to_owned))
    }

    /// A bound receiver of `account` (preferring one whose range matches `destination`).
    fn receiver(&self, account: &str, destination: Option<&str>) -> Option<Esme> {
        self.binds.receiver(account, destination)
    }

    /// The account's rate limit refuses this request. With a limit, the
    /// outcome also sets the connection's load (its part of the SMPP 5.0
    /// `congestion_state` a 5.0 ESME reads, with the inbound window's
    /// fill): a refusal sets it to [`RATE_LIMITED_LOAD`] ("nearing
    /// congestion": the ESME narrows its window), and each admitted request
    /// lowers it by one, through the optimum band (hold) down to 0.
    fn throttled(&self, conn: &Connection, account: &str) -> bool {
        // Without a limit, no clock read.
        if !self.accounts.limited() {
            false
        } else if self.accounts.admit(account, self.clock.now_ms()) {
            let load = conn.load();
            if load > 0 {
                conn.set_load(load - 1);
            }
            false
        } else {
            self.observer.throttled(account);
            conn.set_load(RATE_LIMITED_LOAD);
            true
        }
    }

    // ---- binds ----

    async fn bind(
        self: &Arc<Self>,
        conn: &Connection,
        kind: BindKind,
        bind: &Bind,
    ) -> Result<(), CommandStatus> {
        if self.binds.opened(conn.id()) {
            self.observer.session_opened(conn.id(), conn.peer_addr());
            let (smsc, watched) = (self.clone(), conn.clone());
            tokio::spawn(async move {
                watched.closed().await;
                let account = smsc.binds.closed(watched.id()).map(|e| e.account);
                smsc.observer
                    .session_closed(watched.id(), account.as_deref());
            });
        }
        let system_id = text(&bind.system_id);
        let result = self.authenticate(conn, kind, bind, &system_id).await;
        self.observer.bind(&BindEvent {
            connection: conn.id(),
            peer: conn.peer_addr(),
            system_id: &system_id,
            kind,
            status: result.err().unwrap_or(CommandStatus::OK),
        });
        match result {
            Ok(()) => tracing::info!(system_id, ?kind, peer = ?conn.peer_addr(), "bound"),
            Err(status) => {
                tracing::info!(system_id, ?kind, peer = ?conn.peer_addr(), %status, "bind refused")
            }
        }
        if result.is_ok() && matches!(kind, BindKind::Receiver | BindKind::Transceiver) {
            // What waited for this account's receiver goes now (the job
            // waits a moment if the bind answer is not out yet).
            let jobs = self.jobs.release(&system_id);
            self.resume_with_alerts(jobs);
        }
        result
    }

    async fn authenticate(
        &self,
        conn: &Connection,
        kind: BindKind,
        bind: &Bind,
        system_id: &str,
    ) -> Result<(), CommandStatus> {
        let checked = self
            .accounts
            .authenticate_bind(
                self.lockout.as_ref(),
                || self.clock.now_ms(),
                system_id,
                bind.password.as_bytes(),
                conn.peer_addr(),
                conn.client_certificate(),
            )
            .await;
        if let Err(refused) = &checked {
            match refused.lockout {
                Some(LockoutEvent::AlreadyLocked(ip)) => self.observer.bind_locked_out(ip),
                Some(LockoutEvent::Engaged(ip)) => self.observer.lockout(ip),
                None => {}
            }
        }
        let checked = checked.map_err(|r| r.status);
        checked?;
        let range = address_range(&text(&bind.address_range))?;
        self.binds.register(
            conn,
            system_id,
            kind,
            range,
            self.config.max_binds_per_account,
        )
    }
}

/// A durable write failed: logged, and answered `ESME_RSYSERR`.
fn store_failed(error: &str) -> CommandStatus {
    tracing::error!(error, "store write failed");
    CommandStatus::SYSTEM_ERROR
}

/// The load (`congestion_state`) a connection reports after its account's
/// rate limit refused a request: "nearing congestion".
const RATE_LIMITED_LOAD: u8 = 95;

/// The [`Handler`] given to smpp-tokio's servers (plain and TLS).
#[derive(Debug, Clone)]
pub(crate) struct SmscHandler<C: Clock>(pub(crate) Arc<Smsc<C>>);

impl<C: Clock> Handler<Connection> for SmscHandler<C> {
    fn bind(
        &self,
        conn: &Connection,
        kind: BindKind,
        bind: &Bind,
    ) -> impl std::future::Future<Output = Result<(), CommandStatus>> + Send {
        self.0.bind(conn, kind, bind)
    }

    fn answer_now(
        &self,
        conn: &Connection,
        pdu: &Pdu,
        received: std::time::Instant,
    ) -> Option<Result<Body, CommandStatus>> {
        self.0.answer_now(conn, pdu, Some(received))
    }

    fn answer_soon(
        &self,
        conn: &Connection,
        pdu: &Pdu,
        received: std::time::Instant,
    ) -> Option<SoonAnswer> {
        let answer = Smsc::answer_durable(&self.0, conn, pdu, Some(received))?;
        Some(Box::pin(answer))
    }

    fn request(&self, conn: &Connection, pdu: Pdu) -> impl Answer<Body> {
        // The common cases need no large state machine (nor its allocation).
        if let Some(answer) = self.0.answer_now(conn, &pdu, None) {
            return Quick::Ready(Some(answer));
        }
        match Smsc::answer_durable(&self.0, conn, &pdu, None) {
            Some(durable) => Quick::Durable(Box::pin(durable)),
            None => Quick::Later(Box::pin(self.0.answer(conn, pdu))),
        }
    }
}

/// An answer ready at once, a small future that waits for the store, or
/// the general (large) future.
// Unboxed on purpose: the ready answer is the hot path.
#[allow(clippy::large_enum_variant)]
enum Quick<F, D> {
    Ready(Option<Result<Body, CommandStatus>>),
    Durable(std::pin::Pin<Box<D>>),
    Later(std::pin::Pin<Box<F>>),
}

impl<F, D> std::future::Future for Quick<F, D>
where
    F: std::future::Future<Output = Result<Body, CommandStatus>>,
    D: std::future::Future<Output = Result<Body, CommandStatus>>,
{
    type Output = Result<Body, CommandStatus>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.get_mut() {
            Quick::Ready(answer) => {
                std::task::Poll::Ready(answer.take().unwrap_or(Err(CommandStatus::SYSTEM_ERROR)))
            }
            Quick::Durable(future) => future.as_mut().poll(cx),
            Quick::Later(future) => future.as_mut().poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher as _;

    use super::*;

    #[test]
    fn ids_of_one_shard_spread_over_the_table() {
        let buckets: HashSet<u64> = (0..1024u64)
            .map(|i| IdHash.hash_one(i * SHARDS as u64 + 5) & 1023)
            .collect();
        assert!(buckets.len() > 600, "{} buckets used", buckets.len());
    }

    #[test]
    fn id_fields_are_the_formatted_ids() {
        let mut ids = vec![0, 1, 9, 10, 15, 16, 0xABC, 0x1234_5678_9ABC, u64::MAX];
        // Every digit value at every position, and every length.
        for shift in (0..64).step_by(4) {
            for digit in 0..16u64 {
                ids.push(digit << shift);
                ids.push((digit << shift) | 1);
                ids.push(u64::MAX >> (60 - shift) & !(0xF << shift) | (digit << shift));
            }
        }
        let mut z = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..10_000 {
            z = z
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ids.push(z >> (z % 64));
        }
        for id in ids {
            assert_eq!(id_field(id).as_str(), Ok(format_id(id).as_str()), "{id:#x}");
        }
    }

    #[test]
    fn ids_round_trip_and_bad_ones_are_refused() {
        assert_eq!(
            parse_id(&format_id(0x1234_5678_9ABC)),
            Some(0x1234_5678_9ABC)
        );
        assert_eq!(parse_id("abc"), Some(0xABC));
        assert_eq!(parse_id(""), None);
        assert_eq!(parse_id("xyz"), None);
        assert_eq!(parse_id("12345678901234567"), None);
    }
}

#[cfg(test)]
mod virtual_clock;

#[cfg(test)]
mod congestion_tests;

#[cfg(test)]
mod version_tests;

#[cfg(test)]
mod feature_tests;

#[cfg(test)]
mod receipt_carrier_tests;
