//! The operations an ESME requests: submissions, query/cancel/replace,
//! broadcasts.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use smpp_proto::message::{Address, MessageState};
use smpp_proto::pdu::{
    Body, BroadcastSm, BroadcastSmResp, COctetString, CancelBroadcastSm, CancelSm, CommandId,
    CommandStatus, DataSm, DestAddress, Pdu, QueryBroadcastSm, QueryBroadcastSmResp, QuerySm,
    QuerySmResp, ReplaceSm, SubmitMulti, SubmitMultiResp, SubmitSm, SubmitSmResp, TlvTag, Tlvs,
    UnsuccessSme,
};
use smpp_tokio::Connection;

use super::{format_id, id_field, lock, parse_id, parts_of, store_failed, text, Job, Smsc};
use crate::clock::Clock;
use crate::observer::RequestEvent;
use crate::routing::{Decision, Target};
use crate::store::{Dests, Kind, Octets, Outcome, Record, Store, StoredAddr, Text};
use smpp_proto::message::time::{absolute as smpp_time, parse_octets as parse_smpp_time};

/// A submission past its synchronous half: what the router decided, and
/// the record to keep when it was accepted.
pub(super) enum Admitted {
    /// Answer this error (after the delay, when given).
    Refused(CommandStatus, Option<Duration>),
    /// Keep the record (durable first, with a persistent store), arm its
    /// job, answer its id (after the delay, when given).
    Accepted {
        record: Box<Record>,
        job: Option<(u64, Job)>,
        delay: Option<Duration>,
    },
}

impl<C: Clock> Smsc<C> {
    // ---- submissions ----

    /// Builds the record of an accepted message and the job it needs later.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        kind: Kind,
        account: &str,
        sm: &SubmitSm,
        dests: Dests,
        state: MessageState,
        error: u16,
        route: Option<String>,
        now: u64,
    ) -> (Box<Record>, Option<(u64, Job)>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let outcome = if route.is_some() {
            Outcome::Pending
        } else {
            // Delivered (or failed) after its scheduled time, unless it
            // expires first.
            // Read as octets: a valid time is ASCII (no UTF-8 check first).
            let time = |t: &COctetString| parse_smpp_time(t.as_bytes(), now);
            let scheduled = time(&sm.schedule_delivery_time).unwrap_or(now).max(now);
            let due_ms = scheduled.saturating_add(self.delay_ms(id));
            match time(&sm.validity_period) {
                Some(expiry) if expiry < due_ms => Outcome::Planned {
                    due_ms: expiry.max(now),
                    state: MessageState::Expired.to_u8(),
                    error: 0,
                },
                _ => Outcome::Planned {
                    due_ms,
                    state: state.to_u8(),
                    error,
                },
            }
        };
        // Filled in the box of the last forgotten record (`spare`).
        let mut record = super::spare::take().unwrap_or_default();
        fill(
            &mut record,
            kind,
            account,
            sm,
            dests,
            route,
            outcome,
            id,
            now,
        );
        let job = match (&record.route, record.outcome) {
            (Some(_), _) => Some((now, Job::Route)),
            (None, Outcome::Planned { due_ms, .. })
                if record.registered_delivery().wants_receipt() || self.report_finals =>
            {
                Some((due_ms, Job::Finalize))
            }
            _ => None,
        };
        (record, job)
    }

    /// Keeps an accepted (and, with a persistent store, durable) record and
    /// arms its job.
    fn keep(&self, record: Box<Record>, job: Option<(u64, Job)>) -> u64 {
        let id = record.id;
        let intermediate =
            record.registered_delivery().intermediate_notification() && record.kind.is_message();
        // Accepted just now: its submit time is the time.
        let now = record.submit_ms;
        self.insert(record, now);
        if let Some((due, job)) = job {
            self.schedule(due, id, job);
        }
        if intermediate {
            self.schedule(now, id, Job::Intermediate);
        }
        id
    }

    /// Accepts one message: the common part of submit_sm, data_sm and
    /// submit_multi. Returns the id, or the status to answer.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn accept(
        &self,
        kind: Kind,
        account: &str,
        sm: &SubmitSm,
        dests: Dests,
        state: MessageState,
        error: u16,
        route: Option<String>,
    ) -> Result<u64, CommandStatus> {
        if self.full() {
            return Err(CommandStatus::MESSAGE_QUEUE_FULL);
        }
        let now = self.clock.now_ms();
        let (record, job) = self.record(kind, account, sm, dests, state, error, route, now);
        self.commit(record, job).await
    }

    /// Keeps an accepted record: durable first with a persistent store
    /// (before it is acknowledged, and before any job sees it).
    async fn commit(
        &self,
        record: Box<Record>,
        job: Option<(u64, Job)>,
    ) -> Result<u64, CommandStatus> {
        if self.store.is_persistent() {
            self.persist_durable(&record).await?;
        }
        Ok(self.keep(record, job))
    }

    /// The synchronous half of the one submit_sm (and data_sm) path: the
    /// router decides once, and an accepted message gets its record, built
    /// at `now` (ms since the epoch). The rate limit is checked before.
    pub(super) fn admit(&self, account: &str, sm: &SubmitSm, now: u64) -> Admitted {
        // Checked as UTF-8 once, here (a `Text` checks again at each look).
        let destination = sm.destination_addr.to_string_lossy();
        match self.decide(&destination, sm.esm_class(), sm.data_coding, sm.payload()) {
            Decision::Refuse(status, delay) => Admitted::Refused(status, delay),
            // Refused at once, whatever delay the rule asks for.
            Decision::Accept { .. } if self.full() => {
                Admitted::Refused(CommandStatus::MESSAGE_QUEUE_FULL, None)
            }
            Decision::Accept {
                state,
                error,
                delay,
            } => {
                let route = match self.target(&destination) {
                    Target::Esme(account) => Some(account),
                    Target::Simulated => None,
                };
                let dests = Dests::One(StoredAddr {
                    ton: sm.dest_addr_ton,
                    npi: sm.dest_addr_npi,
                    addr: Text::from(&*destination),
                });
                let (record, job) =
                    self.record(Kind::Message, account, sm, dests, state, error, route, now);
                Admitted::Accepted { record, job, delay }
            }
        }
    }

    /// The asynchronous half: the durable write and the delays.
    async fn finish(&self, admitted: Admitted) -> Result<u64, CommandStatus> {
        match admitted {
            Admitted::Refused(status, delay) => {
                if let Some(d) = delay {
                    self.clock.sleep(d).await;
                }
                Err(status)
            }
            Admitted::Accepted { record, job, delay } => {
                let id = self.commit(record, job).await?;
                if let Some(d) = delay {
                    self.clock.sleep(d).await;
                }
                Ok(id)
            }
        }
    }

    /// The hot path, answered without a future: a submit_sm when nothing
    /// can make it wait (the in-memory store, no rule that delays an
    /// answer); `None` otherwise, without looking at it (the request then
    /// goes to [`answer`](Smsc::answer), which decides once). `received`:
    /// the request's arrival on the runtime's clock, when the connection's
    /// task gave it (else the clock is read, once the request qualifies).
    pub(super) fn answer_now(
        &self,
        conn: &Connection,
        pdu: &Pdu,
        received: Option<Instant>,
    ) -> Option<Result<Body, CommandStatus>> {
        if self.store.is_persistent() || !self.quick.load(Ordering::Acquire) {
            return None;
        }
        let Body::SubmitSm(sm) = &pdu.body else {
            return None;
        };
        let started = match received {
            Some(at) => self.clock.arrival(at),
            None => self.clock.now(),
        };
        let account = conn.system_id().unwrap_or_default();
        let result = if self.throttled(conn, account) {
            Err(CommandStatus::THROTTLED)
        } else {
            match self.admit(account, sm, self.clock.wall_ms_at(started)) {
                // No delays here (`quick`), and nothing to make durable.
                Admitted::Refused(status, _) => Err(status),
                Admitted::Accepted { record, job, .. } => Ok(self.keep(record, job)),
            }
        }
        .map(|id| {
            Body::SubmitSmResp(SubmitSmResp {
                message_id: id_field(id),
                ..Default::default()
            })
        });
        self.report(account, pdu.command_id(), started, &result);
        Some(result)
    }

    /// The durable hot path: a submit_sm when nothing but the store makes
    /// it wait (a persistent store, no rule that delays an answer): decided
    /// at once, its record's write queued at once, answered once the record
    /// is synced, by a future much smaller than [`answer`](Smsc::answer)'s
    /// (it owns what it needs: the connection's task polls it itself,
    /// [`Handler::answer_soon`](smpp_tokio::Handler::answer_soon)). `None`
    /// otherwise, without looking at it. Gives the answers `answer` would
    /// give. `received`: as for [`answer_now`](Smsc::answer_now).
    pub(super) fn answer_durable(
        this: &Arc<Self>,
        conn: &Connection,
        pdu: &Pdu,
        received: Option<Instant>,
    ) -> Option<impl std::future::Future<Output = Result<Body, CommandStatus>> + Send + 'static>
    {
        if !this.store.is_persistent() || !this.quick.load(Ordering::Acquire) {
            return None;
        }
        let Body::SubmitSm(sm) = &pdu.body else {
            return None;
        };
        let started = match received {
            Some(at) => this.clock.arrival(at),
            None => this.clock.now(),
        };
        let command = pdu.command_id();
        let account = conn.system_id().unwrap_or_default();
        let admitted = if this.throttled(conn, account) {
            Admitted::Refused(CommandStatus::THROTTLED, None)
        } else {
            this.admit(account, sm, this.clock.wall_ms_at(started))
        };
        // The write is queued now, in the order the requests came: the
        // future keeps only the wait for its sync (not the nest of async
        // calls of `finish`, polled layer by layer).
        let queued = match admitted {
            Admitted::Accepted {
                record,
                job,
                delay: None,
            } => {
                let write = this.store.durable_write(&record);
                Ok((record, job, write))
            }
            other => Err(other),
        };
        // The connection's handle, for its account at the end (a shared
        // count; copying the account into a `Text` and reading it back as
        // a `str` cost more). Held until the write is synced: the session
        // still ends when its peer goes (only a server that waits for every
        // handle to drop waits for the sync too).
        let (this, conn) = (this.clone(), conn.clone());
        Some(async move {
            let id = match queued {
                Ok((record, job, write)) => match write.await {
                    Ok(()) => Ok(this.keep(record, job)),
                    Err(e) => Err(store_failed(&e)),
                },
                Err(admitted) => this.finish(admitted).await,
            };
            let result = id.map(|id| {
                Body::SubmitSmResp(SubmitSmResp {
                    message_id: id_field(id),
                    ..Default::default()
                })
            });
            let account = conn.system_id().unwrap_or_default();
            this.report(account, command, started, &result);
            result
        })
    }

    pub(super) async fn submit_sm(
        &self,
        account: &str,
        sm: &SubmitSm,
        started: Instant,
    ) -> Result<SubmitSmResp, CommandStatus> {
        self.submit_as(Kind::Message, account, sm, started).await
    }

    pub(super) async fn data_sm(
        &self,
        account: &str,
        sm: DataSm,
        started: Instant,
    ) -> Result<SubmitSmResp, CommandStatus> {
        // Kept as a data_sm: its receipt may go back as one.
        let as_submit = SubmitSm::from_data_sm(sm);
        self.submit_as(Kind::Data, account, &as_submit, started)
            .await
    }

    /// The one path of submit_sm and data_sm (`kind` says which it was).
    async fn submit_as(
        &self,
        kind: Kind,
        account: &str,
        sm: &SubmitSm,
        started: Instant,
    ) -> Result<SubmitSmResp, CommandStatus> {
        // A USSD request to the scripted menu is answered by it.
        if let Some(answered) = self.ussd_submit(account, sm).await {
            return answered.map(|id| SubmitSmResp {
                message_id: id_field(id),
                ..Default::default()
            });
        }
        let mut admitted = self.admit(account, sm, self.clock.wall_ms_at(started));
        if let Admitted::Accepted { record, .. } = &mut admitted {
            record.kind = kind;
        }
        let id = self.finish(admitted).await?;
        Ok(SubmitSmResp {
            message_id: id_field(id),
            ..Default::default()
        })
    }

    pub(super) async fn submit_multi(
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
        // One SME destination: refused here, or accepted with its outcome.
        let mut one = |ton: u8, npi: u8, addr: &COctetString| {
            if addr.is_empty() {
                return unsuccess_smes.push(UnsuccessSme {
                    ton,
                    npi,
                    addr: addr.clone(),
                    error_status: CommandStatus::INVALID_DESTINATION_ADDRESS,
                });
            }
            match self.decide(&text(addr), sm.esm_class(), sm.data_coding, &payload) {
                Decision::Refuse(status, _) => unsuccess_smes.push(UnsuccessSme {
                    ton,
                    npi,
                    addr: addr.clone(),
                    error_status: status,
                }),
                Decision::Accept { state, error, .. } => {
                    outcome.get_or_insert((state, error));
                    accepted.push(StoredAddr {
                        ton,
                        npi,
                        addr: Text::from_field(addr),
                    });
                }
            }
        };
        let mut unknown_lists = Vec::new();
        let mut expanded: Vec<&COctetString> = Vec::new();
        for dest in &sm.dest_addresses {
            match dest {
                DestAddress::Sme { ton, npi, addr } => one(*ton, *npi, addr),
                // A list named twice is expanded once.
                DestAddress::DistributionList(name) if expanded.contains(&name) => {}
                // A configured list goes to each of its addresses.
                DestAddress::DistributionList(name) => {
                    expanded.push(name);
                    match self.config.distribution_lists.get(&*text(name)) {
                        Some(list) => {
                            for a in list {
                                let a = Address::guess(a);
                                one(a.ton, a.npi, &a.addr);
                            }
                        }
                        None => unknown_lists.push(name.clone()),
                    }
                }
            }
        }
        unsuccess_smes.extend(unknown_lists.into_iter().map(|name| UnsuccessSme {
            ton: 0,
            npi: 0,
            addr: name,
            error_status: CommandStatus::INVALID_DISTRIBUTION_LIST_NAME,
        }));
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
                        Dests::from(accepted),
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
    pub(super) fn owned(&self, account: &str, message_id: &str, source: &str) -> Option<Record> {
        let record = self.get(parse_id(message_id)?)?;
        let mine = &*record.account == account
            && record.kind != Kind::Mo
            && (source.is_empty() || *source == *record.source.addr);
        mine.then_some(record)
    }

    pub(super) fn query_sm(
        &self,
        account: &str,
        q: &QuerySm,
    ) -> Result<QuerySmResp, CommandStatus> {
        let record = self
            .owned(account, &text(&q.message_id), &text(&q.source_addr))
            .filter(|r| r.kind.is_message())
            .ok_or(CommandStatus::QUERY_FAILED)?;
        let (state, done, error) = record.state_at(self.clock.now_ms());
        Ok(QuerySmResp {
            message_id: q.message_id.clone(),
            final_date: done.map(smpp_time).unwrap_or_default().into(),
            message_state: state.to_u8(),
            error_code: u8::try_from(error).unwrap_or(u8::MAX),
            ..Default::default()
        })
    }

    /// Moves a pending message to DELETED; `false` if it was already final.
    pub(super) async fn cancel_one(&self, id: u64) -> bool {
        let now = self.clock.now_ms();
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
            if record.registered_delivery().wants_receipt() || self.report_finals {
                self.schedule(now, id, Job::Finalize);
            }
        }
        cancelled
    }

    pub(super) async fn cancel_sm(
        &self,
        account: &str,
        c: &CancelSm,
    ) -> Result<Tlvs, CommandStatus> {
        let message_id = text(&c.message_id);
        let source = text(&c.source_addr);
        if !message_id.is_empty() {
            let record = self
                .owned(account, &message_id, &source)
                .filter(|r| r.kind.is_message())
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
        let now = self.clock.now_ms();
        let mut ids = Vec::new();
        for shard in self.shards.iter() {
            let shard = lock(shard);
            ids.extend(
                shard
                    .records
                    .values()
                    .map(|slot| &slot.record)
                    .filter_map(|r| {
                        let matches = r.kind.is_message()
                            && &*r.account == account
                            && *r.source.addr == *source
                            && (destination.is_empty()
                                || r.dests.iter().any(|d| *d.addr == *destination))
                            && (service_type.is_empty() || *r.service_type == *service_type)
                            && !r.is_final(now);
                        matches.then_some(r.id)
                    }),
            );
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

    pub(super) async fn replace_sm(
        &self,
        account: &str,
        r: &ReplaceSm,
    ) -> Result<Tlvs, CommandStatus> {
        let record = self
            .owned(account, &text(&r.message_id), &text(&r.source_addr))
            .filter(|r| r.kind.is_message())
            .ok_or(CommandStatus::REPLACE_FAILED)?;
        let now = self.clock.now_ms();
        let mut replaced = false;
        let updated = self.update(record.id, |rec| {
            if rec.is_final(now) || rec.outcome == Outcome::Pending {
                return;
            }
            rec.payload = Octets::from(&r.short_message[..]);
            // The new user data replaces the old, wherever either was.
            let mut tlvs = Tlvs::from_bytes(Bytes::from(rec.tlvs.clone())).unwrap_or_default();
            tlvs.remove(TlvTag::MESSAGE_PAYLOAD);
            if let Some(payload) = r.tlvs.message_payload() {
                let _ = tlvs.set(TlvTag::MESSAGE_PAYLOAD, payload);
            }
            rec.tlvs = tlvs.as_bytes().to_vec();
            rec.registered_delivery = r.registered_delivery;
            replaced = true;
        });
        match updated {
            Some(rec) if replaced => {
                self.persist_durable(&rec).await?;
                if let Outcome::Planned { due_ms, .. } = rec.outcome {
                    if rec.registered_delivery().wants_receipt() {
                        self.schedule(due_ms, rec.id, Job::Finalize);
                    }
                }
                Ok(Tlvs::new())
            }
            _ => Err(CommandStatus::REPLACE_FAILED),
        }
    }

    // ---- broadcast (v5.0) ----

    pub(super) async fn broadcast_sm(
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
                Dests::Many(Vec::new()),
                MessageState::Delivered,
                0,
                None,
            )
            .await?;
        Ok(BroadcastSmResp {
            message_id: id_field(id),
            ..Default::default()
        })
    }

    pub(super) fn query_broadcast_sm(
        &self,
        account: &str,
        q: &QueryBroadcastSm,
    ) -> Result<QueryBroadcastSmResp, CommandStatus> {
        let record = self
            .owned(account, &text(&q.message_id), &text(&q.source_addr))
            .filter(|r| r.kind == Kind::Broadcast)
            .ok_or(CommandStatus::BROADCAST_QUERY_FAILED)?;
        let (state, _, _) = record.state_at(self.clock.now_ms());
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

    pub(super) async fn cancel_broadcast_sm(
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
    pub(super) async fn answer(&self, conn: &Connection, pdu: Pdu) -> Result<Body, CommandStatus> {
        let account = conn.system_id().unwrap_or_default();
        let started = self.clock.now();
        let command = pdu.command_id();
        let result = if self.throttled(conn, account) {
            Err(CommandStatus::THROTTLED)
        } else {
            match pdu.body {
                Body::SubmitSm(sm) => self
                    .submit_sm(account, &sm, started)
                    .await
                    .map(Body::SubmitSmResp),
                Body::DataSm(sm) => self
                    .data_sm(account, *sm, started)
                    .await
                    .map(Body::DataSmResp),
                Body::SubmitMulti(sm) => self
                    .submit_multi(account, *sm)
                    .await
                    .map(|r| Body::SubmitMultiResp(r.into())),
                Body::QuerySm(q) => self
                    .query_sm(account, &q)
                    .map(|r| Body::QuerySmResp(r.into())),
                Body::CancelSm(c) => self.cancel_sm(account, &c).await.map(Body::CancelSmResp),
                Body::ReplaceSm(r) => self.replace_sm(account, &r).await.map(Body::ReplaceSmResp),
                Body::BroadcastSm(b) => self
                    .broadcast_sm(account, *b)
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
        self.report(account, command, started, &result);
        result
    }

    /// Tells the observer how a request went.
    fn report(
        &self,
        account: &str,
        command: CommandId,
        started: Instant,
        result: &Result<Body, CommandStatus>,
    ) {
        self.observer.request(&RequestEvent {
            account,
            command,
            status: result.as_ref().err().copied().unwrap_or(CommandStatus::OK),
            latency: self.clock.now().saturating_duration_since(started),
        });
    }
}

/// Writes an accepted message's record over `r` (a spare one's or a blank),
/// field by field: no record is built elsewhere and moved in, and the user
/// data is copied once, in place. Every field is named (no `..`): a field
/// added to [`Record`] must be given its value here.
#[allow(clippy::too_many_arguments)]
pub(super) fn fill(
    r: &mut Record,
    kind: Kind,
    account: &str,
    sm: &SubmitSm,
    dests: Dests,
    route: Option<String>,
    outcome: Outcome,
    id: u64,
    now: u64,
) {
    let Record {
        tlvs,
        billing,
        route: r_route,
        account: r_account,
        service_type,
        source,
        dests: r_dests,
        payload,
        outcome: r_outcome,
        id: r_id,
        submit_ms,
        parts,
        receipts_sent,
        kind: r_kind,
        esm_class,
        protocol_id,
        priority_flag,
        data_coding,
        registered_delivery,
        reported,
    } = r;
    *tlvs = sm.tlvs.as_bytes().to_vec();
    *billing = sm.tlvs.billing_identification().map(<[u8]>::to_vec);
    *r_route = route;
    r_account.set(account);
    service_type.set_field(&sm.service_type);
    source.ton = sm.source_addr_ton;
    source.npi = sm.source_addr_npi;
    source.addr.set_field(&sm.source_addr);
    *r_dests = dests;
    payload.set(&sm.short_message);
    *r_outcome = outcome;
    *r_id = id;
    *submit_ms = now;
    *parts = parts_of(sm);
    *receipts_sent = 0;
    *r_kind = kind;
    *esm_class = sm.esm_class;
    *protocol_id = sm.protocol_id;
    *priority_flag = sm.priority_flag;
    *data_coding = sm.data_coding;
    *registered_delivery = sm.registered_delivery;
    *reported = false;
}
