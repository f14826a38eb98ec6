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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use regex::Regex;
use serde::Serialize;
use smpp_proto::message::receipt::DeliveryReceipt;
use smpp_proto::message::{decode_text, DataCoding, DecodeOptions, MessageState, ShortMessage};
use smpp_proto::pdu::{
    Bind, Body, BroadcastSm, BroadcastSmResp, COctetString, CancelBroadcastSm, CancelSm,
    CommandStatus, DataSm, DeliverSm, DestAddress, NetworkErrorCode, Pdu, QueryBroadcastSm,
    QueryBroadcastSmResp, QuerySm, QuerySmResp, ReplaceSm, SubmitMulti, SubmitMultiResp, SubmitSm,
    SubmitSmResp, TlvTag, Tlvs, UnsuccessSme,
};
use smpp_proto::session::BindKind;
use smpp_tokio::{Answer, Connection, Handler};
use subtle::ConstantTimeEq;
use tokio::sync::{Notify, Semaphore};

use super::clock::{now_ms, now_us, receipt_date, smpp_time};
use super::config::{Rule, ServeConfig};
use super::observer::{BindEvent, FinalEvent, Observer, ReceiptEvent, RequestEvent};
use super::store::{Addr, Disk, Kind, Outcome, Record};

const SHARDS: usize = 64;
/// Error answers from an ESME before a receipt or routed message is given up.
const MAX_ATTEMPTS: u32 = 10;
/// Deliveries (receipts, routed messages) in progress at most.
const MAX_DELIVERIES: usize = 4096;
/// How often a job waits for a receiver that is binding right now.
const BINDING_RETRY: Duration = Duration::from_millis(20);

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

/// Requests per second of one account: a fixed one-second window.
#[derive(Debug, Default)]
struct Window {
    second: AtomicU64,
    count: AtomicU32,
}

impl Window {
    fn admit(&self, now_ms: u64, limit: u32) -> bool {
        let second = now_ms / 1000;
        let current = self.second.load(Ordering::Relaxed);
        if current != second
            && self
                .second
                .compare_exchange(current, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.count.store(0, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed) < limit
    }
}

struct AccountState {
    password: Vec<u8>,
    window: Window,
}

/// A bound ESME.
#[derive(Debug, Clone)]
struct Esme {
    conn: Connection,
    account: String,
    kind: BindKind,
    range: Option<Regex>,
}

impl Esme {
    fn receives(&self) -> bool {
        matches!(self.kind, BindKind::Receiver | BindKind::Transceiver)
    }

    /// The server marks the connection bound once our bind answer is sent.
    fn ready(&self) -> bool {
        self.conn.bind_kind().is_some()
    }
}

#[derive(Debug, Default)]
struct Shard {
    records: HashMap<u64, Record>,
    order: VecDeque<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Job {
    /// The message is (or will be) final: report it, send its receipts.
    Finalize,
    /// Deliver the message to the routed ESME.
    Route,
}

type Timer = Reverse<(u64, u64, Job)>;

/// The SMSC state shared by every connection.
pub struct Smsc {
    config: ServeConfig,
    observer: Arc<dyn Observer>,
    report_finals: bool,
    accounts: HashMap<String, AccountState>,
    shards: Box<[Mutex<Shard>]>,
    max_per_shard: usize,
    next_id: AtomicU64,
    rng: AtomicU64,
    disk: Option<Disk>,
    /// Connections that tried to bind: `Some` once bound.
    sessions: Mutex<HashMap<u64, Option<Esme>>>,
    /// Jobs waiting for a receiver of the account to bind.
    waiting: Mutex<HashMap<String, Vec<(u64, Job)>>>,
    timers: Mutex<BinaryHeap<Timer>>,
    wake: Notify,
    deliveries: Arc<Semaphore>,
    /// Error answers per message (receipts, routed deliveries) while retrying.
    attempts: Mutex<HashMap<u64, u32>>,
    stopping: AtomicBool,
}

impl std::fmt::Debug for Smsc {
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
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn format_id(id: u64) -> String {
    format!("{id:X}")
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
fn parts_of(esm_class: u8, short_message: &[u8], tlvs: &Tlvs) -> u32 {
    if let Some(total) = tlvs.sar_total_segments() {
        return u32::from(total.max(1));
    }
    if esm_class & 0x40 != 0 {
        if let Ok((udh, _)) = smpp_proto::message::UserDataHeader::parse(short_message) {
            if let Some(c) = udh.concat() {
                return u32::from(c.total.max(1));
            }
        }
    }
    1
}

/// What a submission's rule scan decided.
enum Decision {
    Refuse(CommandStatus, Option<Duration>),
    Accept {
        state: MessageState,
        error: u16,
        delay: Option<Duration>,
    },
}

impl Smsc {
    /// Builds the SMSC: opens the store (replaying what it holds) and
    /// returns it with the records that still need work.
    pub(crate) fn new(
        config: ServeConfig,
        observer: Arc<dyn Observer>,
    ) -> anyhow::Result<Arc<Smsc>> {
        let (disk, records, high_water) = match &config.store {
            super::config::StoreConfig::Memory => (None, Vec::new(), 0),
            super::config::StoreConfig::Path(dir) => {
                let (disk, records, high) = Disk::open(dir)?;
                (Some(disk), records, high)
            }
        };
        let accounts = config
            .accounts
            .iter()
            .map(|a| {
                (
                    a.system_id.clone(),
                    AccountState {
                        password: a.password.as_bytes().to_vec(),
                        window: Window::default(),
                    },
                )
            })
            .collect();
        // Ids are numbers: at least the current time in microseconds (so an
        // in-memory server restarted later never reuses one), and above any
        // id the persistent store ever committed.
        let first_id = now_us().max(high_water.saturating_add(1));
        let max_messages = config.max_messages.max(SHARDS);
        let smsc = Arc::new(Smsc {
            report_finals: observer.wants_final_states(),
            observer,
            accounts,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            max_per_shard: max_messages / SHARDS,
            next_id: AtomicU64::new(first_id),
            rng: AtomicU64::new(first_id),
            disk,
            sessions: Mutex::new(HashMap::new()),
            waiting: Mutex::new(HashMap::new()),
            timers: Mutex::new(BinaryHeap::new()),
            wake: Notify::new(),
            deliveries: Arc::new(Semaphore::new(MAX_DELIVERIES)),
            attempts: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            config,
        });
        let now = now_ms();
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
            smsc.insert(record);
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

    fn shard(&self, id: u64) -> MutexGuard<'_, Shard> {
        lock(&self.shards[(id % SHARDS as u64) as usize])
    }

    fn insert(&self, record: Record) {
        let id = record.id;
        let now = now_ms();
        let mut shard = self.shard(id);
        shard.records.insert(id, record);
        shard.order.push_back(id);
        // Forget the oldest records that need nothing more (they remain in the
        // persistent store when there is one). A few tries per insert keep it bounded.
        for _ in 0..4 {
            if shard.records.len() <= self.max_per_shard {
                break;
            }
            let Some(old) = shard.order.pop_front() else {
                break;
            };
            let done = shard
                .records
                .get(&old)
                .is_none_or(|r| !r.has_work(now, self.report_finals));
            if done {
                shard.records.remove(&old);
            } else {
                shard.order.push_back(old);
            }
        }
    }

    /// A copy of the record (memory, else the persistent store).
    fn get(&self, id: u64) -> Option<Record> {
        if let Some(r) = self.shard(id).records.get(&id) {
            return Some(r.clone());
        }
        let record = self.disk.as_ref()?.get(id)?;
        self.insert(record.clone());
        Some(record)
    }

    /// Changes a record in place (loading it first if needed); returns the new copy.
    fn update(&self, id: u64, f: impl FnOnce(&mut Record)) -> Option<Record> {
        self.get(id)?;
        let mut shard = self.shard(id);
        let record = shard.records.get_mut(&id)?;
        f(record);
        Some(record.clone())
    }

    async fn persist(&self, record: &Record) {
        if let Some(disk) = &self.disk {
            disk.put(record).await;
        }
    }

    async fn persist_durable(&self, record: &Record) -> Result<(), CommandStatus> {
        match &self.disk {
            Some(disk) => disk.put_durable(record).await.map_err(|e| {
                tracing::error!(error = %e, "store write failed");
                CommandStatus::SYSTEM_ERROR
            }),
            None => Ok(()),
        }
    }

    fn schedule(&self, due_ms: u64, id: u64, job: Job) {
        lock(&self.timers).push(Reverse((due_ms, id, job)));
        self.wake.notify_one();
    }

    /// Parks a job until a receiver of `account` binds. The check runs under
    /// the waiting-list lock, which a bind takes (after registering itself)
    /// to release the jobs: a bind cannot slip between the two.
    fn wait_for_receiver(&self, account: &str, id: u64, job: Job) {
        let mut waiting = lock(&self.waiting);
        if self.receiver(account, None).is_some() {
            drop(waiting);
            return self.schedule(now_ms() + BINDING_RETRY.as_millis() as u64, id, job);
        }
        waiting
            .entry(account.to_owned())
            .or_default()
            .push((id, job));
    }

    fn random(&self) -> u64 {
        mix(self.rng.fetch_add(1, Ordering::Relaxed))
    }

    fn delay_ms(&self) -> u64 {
        let max = u64::try_from(self.config.dlr_delay.as_millis()).unwrap_or(u64::MAX);
        if max == 0 {
            0
        } else {
            self.random() % (max + 1)
        }
    }

    fn decide(&self, destination: &str, text: &[u8]) -> Decision {
        if let Some(rule) = self
            .config
            .rules
            .iter()
            .find(|r| r.matches(destination, text))
        {
            return match rule {
                Rule {
                    status: Some(status),
                    delay,
                    ..
                } => Decision::Refuse(*status, *delay),
                Rule {
                    state,
                    error,
                    delay,
                    ..
                } => Decision::Accept {
                    state: state.unwrap_or(MessageState::Delivered),
                    error: *error,
                    delay: *delay,
                },
            };
        }
        let total: u64 = self
            .config
            .outcomes
            .iter()
            .map(|&(_, w)| u64::from(w))
            .sum();
        let mut state = MessageState::Delivered;
        if total > 0 {
            let mut pick = self.random() % total;
            for &(s, w) in &self.config.outcomes {
                if pick < u64::from(w) {
                    state = s;
                    break;
                }
                pick -= u64::from(w);
            }
        }
        let error = if state == MessageState::Delivered {
            0
        } else {
            1
        };
        Decision::Accept {
            state,
            error,
            delay: None,
        }
    }

    /// The bound receivers an address routes to: a receiver whose bind
    /// `address_range` (a regular expression) matches, else a configured
    /// route's account.
    fn route_for(&self, destination: &str) -> Option<String> {
        let by_range = lock(&self.sessions).values().flatten().find_map(|e| {
            (e.receives() && e.range.as_ref().is_some_and(|r| r.is_match(destination)))
                .then(|| e.account.clone())
        });
        by_range.or_else(|| {
            self.config
                .routes
                .iter()
                .filter(|r| destination.starts_with(&r.prefix))
                .max_by_key(|r| r.prefix.len())
                .map(|r| r.account.clone())
        })
    }

    /// A bound receiver of `account` (preferring one whose range matches `destination`).
    fn receiver(&self, account: &str, destination: Option<&str>) -> Option<Esme> {
        let sessions = lock(&self.sessions);
        let mut candidates = sessions
            .values()
            .flatten()
            .filter(|e| e.account == account && e.receives());
        let first = candidates.next()?.clone();
        if let Some(d) = destination {
            if !first.range.as_ref().is_some_and(|r| r.is_match(d)) {
                if let Some(better) =
                    candidates.find(|e| e.range.as_ref().is_some_and(|r| r.is_match(d)))
                {
                    return Some(better.clone());
                }
            }
        }
        Some(first)
    }

    fn throttled(&self, account: &str) -> bool {
        let Some(limit) = self.config.tps else {
            return false;
        };
        let Some(state) = self.accounts.get(account) else {
            return false;
        };
        if state.window.admit(now_ms(), limit) {
            false
        } else {
            self.observer.throttled(account);
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
        let first_sight = {
            let mut sessions = lock(&self.sessions);
            let new = !sessions.contains_key(&conn.id());
            if new {
                sessions.insert(conn.id(), None);
            }
            new
        };
        if first_sight {
            self.observer.session_opened(conn.id(), conn.peer_addr());
            let (smsc, watched) = (self.clone(), conn.clone());
            tokio::spawn(async move {
                watched.closed().await;
                let gone = lock(&smsc.sessions).remove(&watched.id());
                let account = gone.flatten().map(|e| e.account);
                smsc.observer
                    .session_closed(watched.id(), account.as_deref());
            });
        }
        let system_id = text(&bind.system_id);
        let result = self.authenticate(conn, kind, bind, &system_id);
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
            let jobs = lock(&self.waiting).remove(&system_id).unwrap_or_default();
            let now = now_ms();
            for (id, job) in jobs {
                self.schedule(now, id, job);
            }
        }
        result
    }

    fn authenticate(
        &self,
        conn: &Connection,
        kind: BindKind,
        bind: &Bind,
        system_id: &str,
    ) -> Result<(), CommandStatus> {
        let account = self
            .accounts
            .get(system_id)
            .ok_or(CommandStatus::INVALID_SYSTEM_ID)?;
        let given = bind.password.as_bytes();
        let ok =
            given.len() == account.password.len() && bool::from(given.ct_eq(&account.password));
        if !ok {
            return Err(CommandStatus::INVALID_PASSWORD);
        }
        let range = text(&bind.address_range);
        let range = if range.is_empty() {
            None
        } else {
            // A regular expression per the spec; a string that is not one is
            // taken literally.
            let pattern = format!("^(?:{range})$");
            Some(
                Regex::new(&pattern)
                    .or_else(|_| Regex::new(&format!("^{}$", regex::escape(&range))))
                    .map_err(|_| CommandStatus::BIND_FAILED)?,
            )
        };
        let mut sessions = lock(&self.sessions);
        if let Some(max) = self.config.max_binds_per_account {
            let bound = sessions
                .values()
                .flatten()
                .filter(|e| e.account == system_id)
                .count();
            if bound >= max {
                return Err(CommandStatus::BIND_FAILED);
            }
        }
        sessions.insert(
            conn.id(),
            Some(Esme {
                conn: conn.clone(),
                account: system_id.to_owned(),
                kind,
                range,
            }),
        );
        Ok(())
    }

    // ---- submissions ----

    /// Accepts one message: the common part of submit_sm, data_sm and
    /// submit_multi. Returns the id, or the status to answer.
    #[allow(clippy::too_many_arguments)]
    async fn accept(
        &self,
        kind: Kind,
        account: &str,
        sm: &SubmitSm,
        dests: Vec<Addr>,
        state: MessageState,
        error: u16,
        route: Option<String>,
    ) -> Result<u64, CommandStatus> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let now = now_ms();
        let outcome = if route.is_some() {
            Outcome::Pending
        } else {
            Outcome::Planned {
                due_ms: now + self.delay_ms(),
                state: state.to_u8(),
                error,
            }
        };
        let record = Record {
            id,
            kind,
            account: account.to_owned(),
            service_type: text(&sm.service_type),
            source: Addr {
                ton: sm.source_addr_ton,
                npi: sm.source_addr_npi,
                addr: text(&sm.source_addr),
            },
            dests,
            esm_class: sm.esm_class,
            protocol_id: sm.protocol_id,
            priority_flag: sm.priority_flag,
            data_coding: sm.data_coding,
            registered_delivery: sm.registered_delivery,
            payload: sm.short_message.to_vec(),
            tlvs: sm.tlvs.as_bytes().to_vec(),
            parts: parts_of(sm.esm_class, &sm.short_message, &sm.tlvs),
            billing: sm.tlvs.billing_identification().map(<[u8]>::to_vec),
            submit_ms: now,
            outcome,
            route,
            receipts_sent: 0,
            reported: false,
        };
        let job = match (&record.route, record.outcome) {
            (Some(_), _) => Some((now, Job::Route)),
            (None, Outcome::Planned { due_ms, .. })
                if record.registered_delivery & 0x03 != 0 || self.report_finals =>
            {
                Some((due_ms, Job::Finalize))
            }
            _ => None,
        };
        if self.disk.is_some() {
            // Durable before it is acknowledged (and before any job sees it).
            self.persist_durable(&record).await?;
        }
        self.insert(record);
        if let Some((due, job)) = job {
            self.schedule(due, id, job);
        }
        Ok(id)
    }

    async fn submit_sm(&self, account: &str, sm: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        let destination = text(&sm.destination_addr);
        let decision = self.decide(&destination, sm.payload());
        let (state, error, delay) = match decision {
            Decision::Refuse(status, delay) => {
                if let Some(d) = delay {
                    tokio::time::sleep(d).await;
                }
                return Err(status);
            }
            Decision::Accept {
                state,
                error,
                delay,
            } => (state, error, delay),
        };
        let route = self.route_for(&destination);
        let dests = vec![Addr {
            ton: sm.dest_addr_ton,
            npi: sm.dest_addr_npi,
            addr: destination,
        }];
        let id = self
            .accept(Kind::Message, account, &sm, dests, state, error, route)
            .await?;
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        Ok(SubmitSmResp {
            message_id: format_id(id).into(),
            ..Default::default()
        })
    }

    async fn data_sm(&self, account: &str, sm: DataSm) -> Result<SubmitSmResp, CommandStatus> {
        let as_submit = SubmitSm {
            service_type: sm.service_type,
            source_addr_ton: sm.source_addr_ton,
            source_addr_npi: sm.source_addr_npi,
            source_addr: sm.source_addr,
            dest_addr_ton: sm.dest_addr_ton,
            dest_addr_npi: sm.dest_addr_npi,
            destination_addr: sm.destination_addr,
            esm_class: sm.esm_class,
            registered_delivery: sm.registered_delivery,
            data_coding: sm.data_coding,
            tlvs: sm.tlvs,
            ..Default::default()
        };
        self.submit_sm(account, as_submit).await
    }

    async fn submit_multi(
        &self,
        account: &str,
        sm: SubmitMulti,
    ) -> Result<SubmitMultiResp, CommandStatus> {
        if sm.dest_addresses.is_empty() {
            return Err(CommandStatus::INVALID_NUMBER_OF_DESTINATIONS);
        }
        let payload = sm
            .tlvs
            .message_payload()
            .unwrap_or(&sm.short_message)
            .to_vec();
        let mut accepted = Vec::new();
        let mut unsuccess_smes = Vec::new();
        let mut outcome = None;
        for dest in &sm.dest_addresses {
            match dest {
                DestAddress::Sme { ton, npi, addr } if addr.is_empty() => {
                    unsuccess_smes.push(UnsuccessSme {
                        ton: *ton,
                        npi: *npi,
                        addr: addr.clone(),
                        error_status: CommandStatus::INVALID_DESTINATION_ADDRESS,
                    })
                }
                DestAddress::Sme { ton, npi, addr } => match self.decide(&text(addr), &payload) {
                    Decision::Refuse(status, _) => unsuccess_smes.push(UnsuccessSme {
                        ton: *ton,
                        npi: *npi,
                        addr: addr.clone(),
                        error_status: status,
                    }),
                    Decision::Accept { state, error, .. } => {
                        outcome.get_or_insert((state, error));
                        accepted.push(Addr {
                            ton: *ton,
                            npi: *npi,
                            addr: text(addr),
                        });
                    }
                },
                // No distribution lists are configured.
                DestAddress::DistributionList(name) => unsuccess_smes.push(UnsuccessSme {
                    ton: 0,
                    npi: 0,
                    addr: name.clone(),
                    error_status: CommandStatus::INVALID_DISTRIBUTION_LIST_NAME,
                }),
            }
        }
        let message_id = match outcome {
            None => Default::default(),
            Some((state, error)) => {
                let as_submit = SubmitSm {
                    service_type: sm.service_type,
                    source_addr_ton: sm.source_addr_ton,
                    source_addr_npi: sm.source_addr_npi,
                    source_addr: sm.source_addr,
                    esm_class: sm.esm_class,
                    protocol_id: sm.protocol_id,
                    priority_flag: sm.priority_flag,
                    registered_delivery: sm.registered_delivery,
                    data_coding: sm.data_coding,
                    short_message: sm.short_message,
                    tlvs: sm.tlvs,
                    ..Default::default()
                };
                let id = self
                    .accept(
                        Kind::Message,
                        account,
                        &as_submit,
                        accepted,
                        state,
                        error,
                        None,
                    )
                    .await?;
                format_id(id).into()
            }
        };
        Ok(SubmitMultiResp {
            message_id,
            unsuccess_smes,
            ..Default::default()
        })
    }

    /// The record `message_id` names, if it belongs to `account` and (when
    /// given) has this source address.
    fn owned(&self, account: &str, message_id: &str, source: &str) -> Option<Record> {
        let record = self.get(parse_id(message_id)?)?;
        let mine = record.account == account
            && record.kind != Kind::Mo
            && (source.is_empty() || source == record.source.addr);
        mine.then_some(record)
    }

    fn query_sm(&self, account: &str, q: &QuerySm) -> Result<QuerySmResp, CommandStatus> {
        let record = self
            .owned(account, &text(&q.message_id), &text(&q.source_addr))
            .filter(|r| r.kind == Kind::Message)
            .ok_or(CommandStatus::QUERY_FAILED)?;
        let (state, done, error) = record.state_at(now_ms());
        Ok(QuerySmResp {
            message_id: q.message_id.clone(),
            final_date: done.map(smpp_time).unwrap_or_default().into(),
            message_state: state.to_u8(),
            error_code: u8::try_from(error).unwrap_or(u8::MAX),
            ..Default::default()
        })
    }

    /// Moves a pending message to DELETED; `false` if it was already final.
    async fn cancel_one(&self, id: u64) -> bool {
        let now = now_ms();
        let mut cancelled = false;
        let record = self.update(id, |r| {
            if !r.is_final(now) {
                r.outcome = Outcome::Fixed {
                    done_ms: now,
                    state: MessageState::Deleted.to_u8(),
                    error: 0,
                };
                cancelled = true;
            }
        });
        if let (true, Some(record)) = (cancelled, record) {
            if self.persist_durable(&record).await.is_err() {
                return false;
            }
            if record.registered_delivery & 0x03 != 0 || self.report_finals {
                self.schedule(now, id, Job::Finalize);
            }
        }
        cancelled
    }

    async fn cancel_sm(&self, account: &str, c: CancelSm) -> Result<Tlvs, CommandStatus> {
        let message_id = text(&c.message_id);
        let source = text(&c.source_addr);
        if !message_id.is_empty() {
            let record = self
                .owned(account, &message_id, &source)
                .filter(|r| r.kind == Kind::Message)
                .ok_or(CommandStatus::CANCEL_FAILED)?;
            return if self.cancel_one(record.id).await {
                Ok(Tlvs::new())
            } else {
                Err(CommandStatus::CANCEL_FAILED)
            };
        }
        // Every pending message of this source (and destination, service type).
        let destination = text(&c.destination_addr);
        let service_type = text(&c.service_type);
        let now = now_ms();
        let mut ids = Vec::new();
        for shard in self.shards.iter() {
            let shard = lock(shard);
            ids.extend(shard.records.values().filter_map(|r| {
                let matches = r.kind == Kind::Message
                    && r.account == account
                    && r.source.addr == source
                    && (destination.is_empty() || r.dests.iter().any(|d| d.addr == destination))
                    && (service_type.is_empty() || r.service_type == service_type)
                    && !r.is_final(now);
                matches.then_some(r.id)
            }));
        }
        let mut any = false;
        for id in ids {
            any |= self.cancel_one(id).await;
        }
        if any {
            Ok(Tlvs::new())
        } else {
            Err(CommandStatus::CANCEL_FAILED)
        }
    }

    async fn replace_sm(&self, account: &str, r: ReplaceSm) -> Result<Tlvs, CommandStatus> {
        let record = self
            .owned(account, &text(&r.message_id), &text(&r.source_addr))
            .filter(|r| r.kind == Kind::Message)
            .ok_or(CommandStatus::REPLACE_FAILED)?;
        let now = now_ms();
        let mut replaced = false;
        let updated = self.update(record.id, |rec| {
            if rec.is_final(now) || rec.outcome == Outcome::Pending {
                return;
            }
            rec.payload = r.short_message.to_vec();
            if let Some(payload) = r.tlvs.message_payload() {
                let mut tlvs = Tlvs::from_bytes(Bytes::from(rec.tlvs.clone())).unwrap_or_default();
                if tlvs.set(TlvTag::MESSAGE_PAYLOAD, payload).is_ok() {
                    rec.tlvs = tlvs.as_bytes().to_vec();
                }
            }
            rec.registered_delivery = r.registered_delivery;
            replaced = true;
        });
        match updated {
            Some(rec) if replaced => {
                self.persist_durable(&rec).await?;
                if let Outcome::Planned { due_ms, .. } = rec.outcome {
                    if rec.registered_delivery & 0x03 != 0 {
                        self.schedule(due_ms, rec.id, Job::Finalize);
                    }
                }
                Ok(Tlvs::new())
            }
            _ => Err(CommandStatus::REPLACE_FAILED),
        }
    }

    // ---- broadcast (v5.0) ----

    async fn broadcast_sm(
        &self,
        account: &str,
        b: BroadcastSm,
    ) -> Result<BroadcastSmResp, CommandStatus> {
        if b.tlvs.broadcast_area_identifier().is_none() {
            return Err(CommandStatus::INVALID_BROADCAST_AREA_FORMAT);
        }
        for tag in [
            TlvTag::BROADCAST_CONTENT_TYPE,
            TlvTag::BROADCAST_REP_NUM,
            TlvTag::BROADCAST_FREQUENCY_INTERVAL,
        ] {
            if !b.tlvs.contains(tag) {
                return Err(CommandStatus::MISSING_TLV);
            }
        }
        if !b.message_id.is_empty() && b.replace_if_present_flag == 1 {
            // Broadcast replace: the earlier one ends.
            if let Some(old) = self
                .owned(account, &text(&b.message_id), "")
                .filter(|r| r.kind == Kind::Broadcast)
            {
                self.cancel_one(old.id).await;
            }
        }
        let as_submit = SubmitSm {
            service_type: b.service_type,
            source_addr_ton: b.source_addr_ton,
            source_addr_npi: b.source_addr_npi,
            source_addr: b.source_addr,
            priority_flag: b.priority_flag,
            data_coding: b.data_coding,
            tlvs: b.tlvs,
            ..Default::default()
        };
        let id = self
            .accept(
                Kind::Broadcast,
                account,
                &as_submit,
                Vec::new(),
                MessageState::Delivered,
                0,
                None,
            )
            .await?;
        Ok(BroadcastSmResp {
            message_id: format_id(id).into(),
            ..Default::default()
        })
    }

    fn query_broadcast_sm(
        &self,
        account: &str,
        q: &QueryBroadcastSm,
    ) -> Result<QueryBroadcastSmResp, CommandStatus> {
        let record = self
            .owned(account, &text(&q.message_id), &text(&q.source_addr))
            .filter(|r| r.kind == Kind::Broadcast)
            .ok_or(CommandStatus::BROADCAST_QUERY_FAILED)?;
        let (state, _, _) = record.state_at(now_ms());
        let mut tlvs = Tlvs::new();
        tlvs.set_u8(TlvTag::MESSAGE_STATE, state.to_u8());
        let stored = Tlvs::from_bytes(Bytes::from(record.tlvs)).unwrap_or_default();
        let success = if state == MessageState::Delivered {
            100
        } else {
            0
        };
        for area in stored.get_all(TlvTag::BROADCAST_AREA_IDENTIFIER) {
            if tlvs.push(TlvTag::BROADCAST_AREA_IDENTIFIER, area).is_ok() {
                let _ = tlvs.push(TlvTag::BROADCAST_AREA_SUCCESS, &[success]);
            }
        }
        if let Some(r) = q.tlvs.get(TlvTag::USER_MESSAGE_REFERENCE) {
            let _ = tlvs.push(TlvTag::USER_MESSAGE_REFERENCE, r);
        }
        Ok(QueryBroadcastSmResp {
            message_id: q.message_id.clone(),
            tlvs,
        })
    }

    async fn cancel_broadcast_sm(
        &self,
        account: &str,
        c: &CancelBroadcastSm,
    ) -> Result<Tlvs, CommandStatus> {
        let record = self
            .owned(account, &text(&c.message_id), &text(&c.source_addr))
            .filter(|r| r.kind == Kind::Broadcast)
            .ok_or(CommandStatus::BROADCAST_CANCEL_FAILED)?;
        if self.cancel_one(record.id).await {
            Ok(Tlvs::new())
        } else {
            Err(CommandStatus::BROADCAST_CANCEL_FAILED)
        }
    }

    /// Answers one request (everything but binds, enquire_link and unbind).
    async fn answer(&self, conn: &Connection, pdu: Pdu) -> Result<Body, CommandStatus> {
        let account = conn.system_id().unwrap_or_default();
        let started = Instant::now();
        let command = pdu.command_id();
        let result = if self.throttled(account) {
            Err(CommandStatus::THROTTLED)
        } else {
            match pdu.body {
                Body::SubmitSm(sm) => self.submit_sm(account, sm).await.map(Body::SubmitSmResp),
                Body::DataSm(sm) => self.data_sm(account, sm).await.map(Body::DataSmResp),
                Body::SubmitMulti(sm) => self
                    .submit_multi(account, sm)
                    .await
                    .map(Body::SubmitMultiResp),
                Body::QuerySm(q) => self.query_sm(account, &q).map(Body::QuerySmResp),
                Body::CancelSm(c) => self.cancel_sm(account, c).await.map(Body::CancelSmResp),
                Body::ReplaceSm(r) => self.replace_sm(account, r).await.map(Body::ReplaceSmResp),
                Body::BroadcastSm(b) => self
                    .broadcast_sm(account, b)
                    .await
                    .map(Body::BroadcastSmResp),
                Body::QueryBroadcastSm(q) => self
                    .query_broadcast_sm(account, &q)
                    .map(Body::QueryBroadcastSmResp),
                Body::CancelBroadcastSm(c) => self
                    .cancel_broadcast_sm(account, &c)
                    .await
                    .map(Body::CancelBroadcastSmResp),
                _ => Err(CommandStatus::INVALID_COMMAND_ID),
            }
        };
        self.observer.request(&RequestEvent {
            account,
            command,
            status: result.as_ref().err().copied().unwrap_or(CommandStatus::OK),
            latency: started.elapsed(),
        });
        result
    }

    // ---- MO injection and the HTTP view ----

    /// Delivers a mobile-originated message to the ESME the destination
    /// routes to (bind `address_range`, a configured route, else any bound
    /// receiver that registered no range); user data over 254 octets goes in
    /// `message_payload`. Returns its id, or `ESME_RINVDSTADR` when no ESME
    /// takes the address.
    pub async fn inject_mo(
        &self,
        from: &str,
        to: &str,
        data_coding: u8,
        user_data: &[u8],
    ) -> Result<Vec<String>, CommandStatus> {
        let mut sm = SubmitSm {
            source_addr: smpp_proto::message::Address::guess(from).addr.clone(),
            destination_addr: COctetString::copy_from_str(to),
            data_coding,
            ..Default::default()
        };
        let source = smpp_proto::message::Address::guess(from);
        sm.source_addr_ton = source.ton;
        sm.source_addr_npi = source.npi;
        if user_data.len() <= 254 {
            sm.short_message = Bytes::copy_from_slice(user_data);
        } else {
            sm.tlvs
                .set(TlvTag::MESSAGE_PAYLOAD, user_data)
                .map_err(|_| CommandStatus::INVALID_MESSAGE_LENGTH)?;
        }
        self.inject_parts(vec![sm]).await
    }

    /// Like [`inject_mo`](Smsc::inject_mo) for a [`ShortMessage`] (its
    /// addresses, coding and segmentation): one deliver_sm, and one id, per part.
    pub async fn inject_mo_message(
        &self,
        message: &ShortMessage,
    ) -> Result<Vec<String>, CommandStatus> {
        let mut refs =
            smpp_proto::message::concat::ReferenceCounter::new((self.random() & 0xFFFF) as u16);
        let parts = message
            .build(&mut refs)
            .map_err(|_| CommandStatus::INVALID_MESSAGE_LENGTH)?;
        self.inject_parts(parts).await
    }

    async fn inject_parts(&self, parts: Vec<SubmitSm>) -> Result<Vec<String>, CommandStatus> {
        let Some(first) = parts.first() else {
            return Ok(Vec::new());
        };
        let to = text(&first.destination_addr);
        let target =
            self.route_for(&to)
                .or_else(|| {
                    lock(&self.sessions).values().flatten().find_map(|e| {
                        (e.receives() && e.range.is_none()).then(|| e.account.clone())
                    })
                })
                .ok_or(CommandStatus::INVALID_DESTINATION_ADDRESS)?;
        let mut ids = Vec::with_capacity(parts.len());
        for sm in parts {
            let dests = vec![Addr {
                ton: sm.dest_addr_ton,
                npi: sm.dest_addr_npi,
                addr: text(&sm.destination_addr),
            }];
            let id = self
                .accept(
                    Kind::Mo,
                    "",
                    &sm,
                    dests,
                    MessageState::Delivered,
                    0,
                    Some(target.clone()),
                )
                .await?;
            ids.push(format_id(id));
        }
        Ok(ids)
    }

    /// A message's current view, by id.
    pub fn message(&self, id: &str) -> Option<MessageView> {
        let record = self.get(parse_id(id)?)?;
        let (state, done, error) = record.state_at(now_ms());
        Some(MessageView {
            id: format_id(record.id),
            account: record.account,
            source: record.source,
            destinations: record.dests,
            state: state.stat_word(),
            submit_time_ms: record.submit_ms,
            done_time_ms: done,
            error,
            parts: record.parts,
            receipts_sent: record.receipts_sent,
        })
    }

    // ---- the timer loop: receipts and routed deliveries ----

    /// Runs due jobs until [`stop`](Smsc::stop).
    pub(crate) async fn run_timers(self: Arc<Self>) {
        loop {
            let wake = self.wake.notified();
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            let now = now_ms();
            let mut due = Vec::new();
            let next = {
                let mut timers = lock(&self.timers);
                while let Some(Reverse((at, id, job))) = timers.peek().copied() {
                    if at > now || due.len() >= 1024 {
                        break;
                    }
                    timers.pop();
                    due.push((id, job));
                }
                timers.peek().map(|Reverse((at, ..))| *at)
            };
            let had_due = !due.is_empty();
            for (id, job) in due {
                let Ok(permit) = self.deliveries.clone().acquire_owned().await else {
                    return;
                };
                let smsc = self.clone();
                tokio::spawn(async move {
                    smsc.run_job(id, job).await;
                    drop(permit);
                });
            }
            if had_due {
                continue;
            }
            match next {
                Some(at) => {
                    let sleep = Duration::from_millis(at.saturating_sub(now_ms()));
                    tokio::select! {
                        _ = wake => {}
                        _ = tokio::time::sleep(sleep) => {}
                    }
                }
                None => wake.await,
            }
        }
    }

    /// Stops the timer loop.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Waits until every store write so far is durable.
    pub(crate) async fn flush(&self) {
        if let Some(disk) = &self.disk {
            disk.flush().await;
        }
    }

    async fn run_job(&self, id: u64, job: Job) {
        match job {
            Job::Route => self.route(id).await,
            Job::Finalize => self.finalize(id).await,
        }
    }

    fn backoff(attempts: u32) -> u64 {
        (500u64 << attempts.min(7)).min(60_000)
    }

    async fn route(&self, id: u64) {
        let Some(record) = self.get(id) else { return };
        if record.outcome != Outcome::Pending {
            return self.finalize(id).await;
        }
        let Some(target) = record.route.clone() else {
            return;
        };
        let destination = record.dests.first().map(|d| d.addr.clone());
        let Some(esme) = self.receiver(&target, destination.as_deref()) else {
            return self.wait_for_receiver(&target, id, Job::Route);
        };
        if !esme.ready() {
            return self.schedule(now_ms() + BINDING_RETRY.as_millis() as u64, id, Job::Route);
        }
        let dest = record.dests.first().cloned().unwrap_or_default();
        let deliver = DeliverSm {
            service_type: COctetString::copy_from_str(&record.service_type),
            source_addr_ton: record.source.ton,
            source_addr_npi: record.source.npi,
            source_addr: COctetString::copy_from_str(&record.source.addr),
            dest_addr_ton: dest.ton,
            dest_addr_npi: dest.npi,
            destination_addr: COctetString::copy_from_str(&dest.addr),
            // UDHI and reply path pass through; the message type is "default".
            esm_class: record.esm_class & 0xC0,
            protocol_id: record.protocol_id,
            priority_flag: record.priority_flag,
            data_coding: record.data_coding,
            short_message: Bytes::from(record.payload.clone()),
            tlvs: Tlvs::from_bytes(Bytes::from(record.tlvs.clone())).unwrap_or_default(),
            ..Default::default()
        };
        let now = now_ms();
        let fixed = match esme.conn.deliver(deliver).await {
            Ok(_) => Some((MessageState::Delivered, 0)),
            Err(smpp_tokio::Error::Status(status)) => {
                let attempts = self.bump_attempts(id);
                if attempts >= MAX_ATTEMPTS {
                    Some((MessageState::Undeliverable, (status.0 & 0xFFFF) as u16))
                } else {
                    self.schedule(now + Self::backoff(attempts), id, Job::Route);
                    None
                }
            }
            Err(e) => {
                tracing::debug!(id, error = %e, "routed delivery failed; retrying");
                self.schedule(now + 1000, id, Job::Route);
                None
            }
        };
        if let Some((state, error)) = fixed {
            let done_ms = now_ms();
            if let Some(r) = self.update(id, |r| {
                r.outcome = Outcome::Fixed {
                    done_ms,
                    state: state.to_u8(),
                    error,
                }
            }) {
                self.persist(&r).await;
            }
            self.finalize(id).await;
        }
    }

    fn bump_attempts(&self, id: u64) -> u32 {
        let mut attempts = lock(&self.attempts);
        let n = attempts.entry(id).or_insert(0);
        *n += 1;
        let v = *n;
        if v >= MAX_ATTEMPTS {
            attempts.remove(&id);
        }
        // Bound the table: it only matters while an ESME keeps answering errors.
        if attempts.len() > 100_000 {
            attempts.clear();
        }
        v
    }

    async fn finalize(&self, id: u64) {
        let Some(record) = self.get(id) else { return };
        let now = now_ms();
        let (state, done, error) = record.state_at(now);
        let Some(done) = done else {
            if let Outcome::Planned { due_ms, .. } = record.outcome {
                self.schedule(due_ms, id, Job::Finalize);
            }
            return;
        };
        let mut changed = false;
        if self.report_finals && !record.reported {
            self.observer.final_state(&FinalEvent {
                account: &record.account,
                message_id: &format_id(id),
                source: &record.source.addr,
                destinations: record.dests.iter().map(|d| d.addr.as_str()).collect(),
                parts: record.parts,
                data_coding: record.data_coding,
                submit_time_ms: record.submit_ms,
                done_time_ms: done,
                state: state.stat_word(),
                error,
                billing_identification: record.billing.as_deref(),
            });
            changed = true;
        }
        let wanted = record.receipts_owed(now);
        let reported = if changed {
            self.update(id, |r| r.reported = true)
        } else {
            None
        };
        let sent = if wanted {
            self.send_receipts(record, state, done, error).await
        } else {
            None
        };
        if let Some(r) = sent.or(reported) {
            self.persist(&r).await;
        }
    }

    /// Sends the receipts still owed for `record`; returns the updated record.
    async fn send_receipts(
        &self,
        record: Record,
        state: MessageState,
        done: u64,
        error: u16,
    ) -> Option<Record> {
        let id = record.id;
        let message_id = format_id(id);
        let Some(esme) = self.receiver(&record.account, None) else {
            self.observer
                .receipt(&record.account, &message_id, ReceiptEvent::Queued);
            self.wait_for_receiver(&record.account, id, Job::Finalize);
            return None;
        };
        if !esme.ready() {
            self.schedule(
                now_ms() + BINDING_RETRY.as_millis() as u64,
                id,
                Job::Finalize,
            );
            return None;
        }
        let mut latest = None;
        for index in record.receipts_sent as usize..record.dests.len() {
            let deliver = self.receipt_pdu(&record, index, state, done, error);
            match esme.conn.deliver(deliver).await {
                Ok(_) => {
                    latest = self.update(id, |r| {
                        r.receipts_sent = r.receipts_sent.max(index as u32 + 1)
                    });
                    self.observer
                        .receipt(&record.account, &message_id, ReceiptEvent::Sent);
                }
                Err(smpp_tokio::Error::Status(status)) => {
                    let attempts = self.bump_attempts(id);
                    tracing::debug!(id, %status, attempts, "receipt refused");
                    if attempts >= MAX_ATTEMPTS {
                        self.observer
                            .receipt(&record.account, &message_id, ReceiptEvent::Failed);
                        return self.update(id, |r| r.receipts_sent = r.dests.len() as u32);
                    }
                    self.observer
                        .receipt(&record.account, &message_id, ReceiptEvent::Retrying);
                    self.schedule(now_ms() + Self::backoff(attempts), id, Job::Finalize);
                    return latest;
                }
                Err(e) => {
                    tracing::debug!(id, error = %e, "receipt not delivered; retrying");
                    self.observer
                        .receipt(&record.account, &message_id, ReceiptEvent::Retrying);
                    self.schedule(now_ms() + 200, id, Job::Finalize);
                    return latest;
                }
            }
        }
        latest
    }

    fn receipt_pdu(
        &self,
        record: &Record,
        index: usize,
        state: MessageState,
        done: u64,
        error: u16,
    ) -> DeliverSm {
        let dest = record.dests.get(index).cloned().unwrap_or_default();
        let message_id = format_id(record.id);
        let tlvs = Tlvs::from_bytes(Bytes::from(record.tlvs.clone())).unwrap_or_default();
        let user_data = tlvs.message_payload().unwrap_or(&record.payload);
        let user_data = if record.esm_class & 0x40 != 0 {
            let skip = user_data.first().map_or(0, |&l| usize::from(l) + 1);
            user_data.get(skip..).unwrap_or_default()
        } else {
            user_data
        };
        let original = decode_text(
            DataCoding(record.data_coding),
            user_data,
            &DecodeOptions::default(),
        )
        .unwrap_or_default();
        let mut receipt = DeliveryReceipt::new(message_id.clone(), state);
        receipt.submitted = Some(1);
        receipt.submit_date = Some(receipt_date(record.submit_ms));
        receipt.done_date = Some(receipt_date(done));
        receipt.error = Some(format!("{error:03}"));
        receipt.text = Some(original.chars().take(20).collect());
        let mut out = Tlvs::new();
        let _ = out.set_text(TlvTag::RECEIPTED_MESSAGE_ID, message_id.as_bytes());
        out.set_u8(TlvTag::MESSAGE_STATE, state.to_u8());
        if error != 0 {
            out.set_network_error_code(NetworkErrorCode {
                network_type: 3, // GSM
                error_code: error,
            });
        }
        DeliverSm {
            source_addr_ton: dest.ton,
            source_addr_npi: dest.npi,
            source_addr: COctetString::copy_from_str(&dest.addr),
            dest_addr_ton: record.source.ton,
            dest_addr_npi: record.source.npi,
            destination_addr: COctetString::copy_from_str(&record.source.addr),
            esm_class: 0x04,
            short_message: Bytes::from(receipt.to_text().into_bytes()),
            tlvs: out,
            ..Default::default()
        }
    }
}

/// The [`Handler`] given to smpp-tokio's servers (plain and TLS).
#[derive(Debug, Clone)]
pub(crate) struct SmscHandler(pub(crate) Arc<Smsc>);

impl Handler for SmscHandler {
    fn bind(
        &self,
        conn: &Connection,
        kind: BindKind,
        bind: &Bind,
    ) -> impl std::future::Future<Output = Result<(), CommandStatus>> + Send {
        self.0.bind(conn, kind, bind)
    }

    fn request(&self, conn: &Connection, pdu: Pdu) -> impl Answer<Body> {
        self.0.answer(conn, pdu)
    }
}
