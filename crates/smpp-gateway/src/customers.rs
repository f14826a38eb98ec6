//! The customers' side: an SMPP server that authenticates binds of every
//! kind against the accounts and accepts `submit_sm` into the store.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smpp_proto::message::receipt::MessageState as ReceiptState;
use smpp_proto::message::{submit_parts_on_air, Address};
use smpp_proto::pdu::{
    Bind, Body, COctetString, CancelSm, CommandStatus, DataSm, DataSmResp, DestAddress, QuerySm,
    QuerySmResp, ReplaceSm, SubmitMulti, SubmitMultiResp, SubmitSm, SubmitSmResp, TlvTag, Tlvs,
    UnsuccessSme,
};
use smpp_proto::session::BindKind;
use smpp_tokio::{Connection, Handler};

use crate::accept::{accept, Refusal, Submission};
use crate::node::{encode_request, lock, now_ms, stored_sm, Node};
use crate::store::{format_id, parse_id, MessageState, Op};

/// The customers' bound connections (and their accounts), by connection number.
#[derive(Debug, Default)]
pub(crate) struct Binds {
    connections: Mutex<HashMap<u64, (String, Connection, std::time::SystemTime)>>,
}

impl Binds {
    /// Registers a bind of `account`; `BIND_FAILED` when it has `max` already.
    fn add(
        &self,
        conn: &Connection,
        account: &str,
        max: Option<usize>,
    ) -> Result<(), CommandStatus> {
        let mut connections = lock(&self.connections);
        if let Some(max) = max {
            let bound = connections
                .values()
                .filter(|(a, _, _)| a == account)
                .count();
            if bound >= max {
                return Err(CommandStatus::BIND_FAILED);
            }
        }
        connections.insert(
            conn.id(),
            (
                account.to_owned(),
                conn.clone(),
                std::time::SystemTime::now(),
            ),
        );
        Ok(())
    }

    fn remove(&self, id: u64) {
        lock(&self.connections).remove(&id);
    }

    /// How many binds there are.
    pub(crate) fn total(&self) -> usize {
        lock(&self.connections).len()
    }

    /// Every bind, oldest first, with its connection.
    pub(crate) fn list(&self) -> Vec<(smpp_server::SessionView, Option<Connection>)> {
        let mut list: Vec<(smpp_server::SessionView, Option<Connection>)> = lock(&self.connections)
            .iter()
            .filter_map(|(id, (account, conn, since))| {
                Some((
                    smpp_server::SessionView {
                        id: *id,
                        system_id: account.clone(),
                        kind: conn.bind_kind()?,
                        peer: conn.peer_addr(),
                        interface_version: conn.interface_version(),
                        tls: conn.is_tls(),
                        since: *since,
                        address_range: None,
                    },
                    Some(conn.clone()),
                ))
            })
            .collect();
        list.sort_by_key(|(s, _)| (s.since, s.id));
        list
    }

    /// Unbinds bind `id` (an `unbind`, then the connection closes);
    /// `false` when there is none.
    pub(crate) fn unbind(&self, id: u64) -> bool {
        let Some(conn) = lock(&self.connections).get(&id).map(|(_, c, _)| c.clone()) else {
            return false;
        };
        tokio::spawn(async move {
            if conn.unbind().await.is_err() {
                conn.close();
            }
        });
        true
    }

    /// How many binds `account` has.
    pub(crate) fn count(&self, account: &str) -> usize {
        lock(&self.connections)
            .values()
            .filter(|(a, _, _)| a == account)
            .count()
    }

    /// Closes every bind of `account` (deleted); how many there were.
    pub(crate) fn close_account(&self, account: &str) -> usize {
        let closing: Vec<Connection> = lock(&self.connections)
            .values()
            .filter(|(a, _, _)| a == account)
            .map(|(_, c, _)| c.clone())
            .collect();
        for conn in &closing {
            conn.close();
        }
        closing.len()
    }

    /// The accounts bound: how many binds each, and how many of them
    /// receivers or transceivers.
    pub(crate) fn by_account(&self) -> BTreeMap<String, (usize, usize)> {
        let mut by_account = BTreeMap::new();
        for (account, conn, _) in lock(&self.connections).values() {
            let entry: &mut (usize, usize) = by_account.entry(account.clone()).or_default();
            entry.0 += 1;
            if conn.is_receiver(account) {
                entry.1 += 1;
            }
        }
        by_account
    }

    /// A bound receiver or transceiver of `account` (bound: its bind
    /// answer has been sent).
    pub(crate) fn receiver(&self, account: &str) -> Option<Connection> {
        lock(&self.connections)
            .values()
            .find(|(_, c, _)| c.is_receiver(account))
            .map(|(_, c, _)| c.clone())
    }
}

/// Where a forwarded message went: its connector, the upstream's id, and
/// the source address the upstream knows it by (the connector's own, when
/// it sets one).
struct Upstream {
    connector: Arc<crate::upstream::Connector>,
    id: String,
    ton: u8,
    npi: u8,
    source: smpp_proto::pdu::COctetString,
}

impl Upstream {
    /// `None` when it was not forwarded, or its connector is gone.
    fn of(node: &Node, record: &crate::store::MessageRecord, sm: &SubmitSm) -> Option<Upstream> {
        let upstream = record.upstream.as_ref()?;
        let connector = node
            .topologies
            .current()
            .connector(&upstream.connector)?
            .clone();
        let (ton, npi, source) = match &connector.source {
            Some(s) => (s.ton, s.npi, s.addr.clone()),
            None => (
                sm.source_addr_ton,
                sm.source_addr_npi,
                sm.source_addr.clone(),
            ),
        };
        Some(Upstream {
            connector,
            id: upstream.id.clone(),
            ton,
            npi,
            source,
        })
    }
}

/// The [`Handler`] of the customers' server.
#[derive(Debug, Clone)]
pub(crate) struct Customers(pub(crate) Arc<Node>);

impl Customers {
    /// Checks a bind behind the bind lockout: `INVALID_SYSTEM_ID` for an
    /// unknown account, `BIND_FAILED` from outside its allow-list or from a
    /// locked-out address, `INVALID_PASSWORD` (constant time, or argon2id
    /// for a hashed password; see `smpp_server::accounts`).
    async fn authenticate(&self, conn: &Connection, bind: &Bind) -> Result<(), CommandStatus> {
        let system_id = std::str::from_utf8(bind.system_id.as_bytes())
            .map_err(|_| CommandStatus::INVALID_SYSTEM_ID)?;
        let node = &self.0;
        let checked = node
            .accounts
            .current()
            .authenticate_bind(
                node.lockout.as_ref(),
                now_ms,
                system_id,
                bind.password.as_bytes(),
                conn.peer_addr(),
                conn.client_certificate(),
            )
            .await;
        match checked {
            Ok(()) => Ok(()),
            Err(refused) => {
                tracing::info!(system_id, peer = ?conn.peer_addr(), status = %refused.status, "bind refused");
                Err(refused.status)
            }
        }
    }

    /// Accepts a message: durable first, then answered, then forwarded;
    /// returns our id.
    async fn accept(&self, conn: &Connection, sm: SubmitSm) -> Result<String, CommandStatus> {
        let account = conn
            .system_id()
            .ok_or(CommandStatus::INVALID_BIND_STATUS)?
            .to_owned();
        let submission = Submission {
            account,
            parts: vec![sm],
            webhook: None,
            batch: None,
            alias: None,
        };
        let ids = accept(&self.0, submission).await.map_err(Refusal::status)?;
        ids.first()
            .map(|id| format_id(*id))
            .ok_or(CommandStatus::SYSTEM_ERROR)
    }
}

impl Handler<Connection> for Customers {
    async fn bind(
        &self,
        conn: &Connection,
        kind: BindKind,
        bind: &Bind,
    ) -> Result<(), CommandStatus> {
        self.authenticate(conn, bind).await?;
        let node = self.0.clone();
        let account = bind.system_id.to_string_lossy();
        node.binds.add(conn, &account, node.max_binds)?;
        let conn = conn.clone();
        tokio::spawn(async move {
            // The connection counts as bound once our answer is sent: then
            // the receipts queued for its account can go.
            if matches!(kind, BindKind::Receiver | BindKind::Transceiver) {
                for _ in 0..500 {
                    if conn.bind_kind().is_some() {
                        node.outbox_wake.notify_one();
                        // Receipts other nodes left for the account.
                        if let Some(cluster) = &node.cluster {
                            cluster.wake.notify_one();
                        }
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            conn.closed().await;
            node.binds.remove(conn.id());
            // Its receipts may go to a bind on another node now.
            if let Some(cluster) = &node.cluster {
                cluster.wake.notify_one();
            }
        });
        Ok(())
    }

    async fn submit_sm(
        &self,
        conn: &Connection,
        sm: SubmitSm,
    ) -> Result<SubmitSmResp, CommandStatus> {
        let id = self.accept(conn, sm).await?;
        Ok(SubmitSmResp {
            message_id: id.into(),
            ..Default::default()
        })
    }

    async fn data_sm(&self, conn: &Connection, sm: DataSm) -> Result<DataSmResp, CommandStatus> {
        let id = self.accept(conn, SubmitSm::from_data_sm(sm)).await?;
        Ok(DataSmResp {
            message_id: id.into(),
            ..Default::default()
        })
    }

    async fn query_sm(
        &self,
        conn: &Connection,
        query: QuerySm,
    ) -> Result<QuerySmResp, CommandStatus> {
        self.query(conn, &query).await
    }

    /// Each SME destination becomes a message of its own (routed, rate
    /// limited and charged as one), all known to the customer by the first
    /// accepted one's id; a distribution list of the account goes to each
    /// of its members (a list named twice, once). A destination refused
    /// goes in `unsuccess_smes` with its status, a list name the account
    /// has no list of with `ESME_RINVDLNAME`. None accepted: the first
    /// refusal's status.
    async fn submit_multi(
        &self,
        conn: &Connection,
        sm: SubmitMulti,
    ) -> Result<SubmitMultiResp, CommandStatus> {
        let account = conn
            .system_id()
            .ok_or(CommandStatus::INVALID_BIND_STATUS)?
            .to_owned();
        let mut first: Option<u64> = None;
        let mut first_refusal = None;
        let mut unsuccess = Vec::new();
        // Every destination in order, lists expanded (each list once); an
        // unknown list's name as an error.
        let mut expanded: Vec<&COctetString> = Vec::new();
        let mut destinations: Vec<Result<(u8, u8, COctetString), COctetString>> = Vec::new();
        for dest in &sm.dest_addresses {
            match dest {
                DestAddress::Sme { ton, npi, addr } => {
                    destinations.push(Ok((*ton, *npi, addr.clone())));
                }
                DestAddress::DistributionList(name) if expanded.contains(&name) => {}
                DestAddress::DistributionList(name) => {
                    expanded.push(name);
                    let key = (account.clone(), name.to_string_lossy().into_owned());
                    match self.0.distribution_lists.get(&key) {
                        Some(members) => destinations.extend(members.iter().map(|m| {
                            let a = Address::guess(m);
                            Ok((a.ton, a.npi, a.addr))
                        })),
                        None => destinations.push(Err(name.clone())),
                    }
                }
            }
        }
        for destination in &destinations {
            let (ton, npi, addr) = match destination {
                Ok(sme) => sme,
                Err(list) => {
                    unsuccess.push(UnsuccessSme {
                        ton: 0,
                        npi: 0,
                        addr: list.clone(),
                        error_status: CommandStatus::INVALID_DISTRIBUTION_LIST_NAME,
                    });
                    first_refusal.get_or_insert(CommandStatus::INVALID_DISTRIBUTION_LIST_NAME);
                    continue;
                }
            };
            let submission = Submission {
                account: account.clone(),
                parts: vec![sm.to_submit_sm(*ton, *npi, addr.clone())],
                webhook: None,
                batch: None,
                alias: first,
            };
            match accept(&self.0, submission).await {
                Ok(ids) => {
                    first = first.or(ids.first().copied());
                }
                Err(refusal) => {
                    first_refusal.get_or_insert(refusal.status());
                    unsuccess.push(UnsuccessSme {
                        ton: *ton,
                        npi: *npi,
                        addr: addr.clone(),
                        error_status: refusal.status(),
                    });
                }
            }
        }
        // `no_unsuccess` is one octet: the first 255 refusals are listed.
        unsuccess.truncate(usize::from(u8::MAX));
        match first {
            Some(id) => Ok(SubmitMultiResp {
                message_id: format_id(id).into(),
                unsuccess_smes: unsuccess,
                ..Default::default()
            }),
            None => Err(first_refusal.unwrap_or(CommandStatus::INVALID_NUMBER_OF_DESTINATIONS)),
        }
    }

    async fn cancel_sm(&self, conn: &Connection, cancel: CancelSm) -> Result<Tlvs, CommandStatus> {
        self.cancel(conn, &cancel).await.map(|()| Tlvs::new())
    }

    async fn replace_sm(
        &self,
        conn: &Connection,
        replace: ReplaceSm,
    ) -> Result<Tlvs, CommandStatus> {
        self.replace(conn, &replace).await.map(|()| Tlvs::new())
    }
}

/// `sm` with what `replace` changes: the user data (`short_message`, or
/// `message_payload`: the new one replaces the old wherever either was),
/// `registered_delivery`, `sm_default_msg_id`, and the schedule and
/// validity when given.
fn replaced(mut sm: SubmitSm, replace: &ReplaceSm) -> SubmitSm {
    sm.short_message = replace.short_message.clone();
    sm.tlvs.remove(TlvTag::MESSAGE_PAYLOAD);
    if let Some(payload) = replace.tlvs.message_payload() {
        let _ = sm.tlvs.set(TlvTag::MESSAGE_PAYLOAD, payload);
    }
    sm.registered_delivery = replace.registered_delivery;
    sm.sm_default_msg_id = replace.sm_default_msg_id;
    if !replace.schedule_delivery_time.is_empty() {
        sm.schedule_delivery_time = replace.schedule_delivery_time.clone();
    }
    if !replace.validity_period.is_empty() {
        sm.validity_period = replace.validity_period.clone();
    }
    sm
}

impl Customers {
    /// `cancel_sm` of one of our ids (a cancel of "all matching", with no
    /// id, is refused): a message still queued here is taken out; one
    /// forwarded is cancelled upstream (with the upstream's id); either
    /// way it ends as `DELETED`, with no receipt. A final message, another
    /// account's, or one whose `source_addr` differs: `ESME_RCANCELFAIL`.
    async fn cancel(&self, conn: &Connection, cancel: &CancelSm) -> Result<(), CommandStatus> {
        let node = &self.0;
        let account = conn.system_id().ok_or(CommandStatus::INVALID_BIND_STATUS)?;
        let id =
            parse_id(&cancel.message_id.to_string_lossy()).ok_or(CommandStatus::CANCEL_FAILED)?;
        let _final = node.final_lock(id).await;
        let record = match node.store.message(id).await {
            Ok(Some(record)) if record.account == account => record,
            Ok(_) => return Err(CommandStatus::CANCEL_FAILED),
            Err(e) => {
                tracing::error!(error = %e, "cannot read a message");
                return Err(CommandStatus::SYSTEM_ERROR);
            }
        };
        let sm = stored_sm(&record.submit).ok_or(CommandStatus::CANCEL_FAILED)?;
        if !cancel.source_addr.is_empty() && sm.source_addr != cancel.source_addr {
            return Err(CommandStatus::CANCEL_FAILED);
        }
        let mut record = match record.state {
            MessageState::Accepted => {
                // Not in the queue: being submitted right now (ask again).
                crate::forward::unqueue(node, &record).ok_or(CommandStatus::CANCEL_FAILED)?
            }
            MessageState::Forwarded => {
                let up = Upstream::of(node, &record, &sm).ok_or(CommandStatus::CANCEL_FAILED)?;
                let connector = up.connector.clone();
                let upstream_cancel = CancelSm {
                    message_id: up.id.into(),
                    source_addr_ton: up.ton,
                    source_addr_npi: up.npi,
                    source_addr: up.source,
                    ..Default::default()
                };
                match connector
                    .pool
                    .request(Body::CancelSm(Box::new(upstream_cancel)))
                    .await
                {
                    Ok(_) => record,
                    Err(e) => {
                        tracing::info!(id, upstream = connector.name, error = %e, "cancel refused upstream");
                        return Err(CommandStatus::CANCEL_FAILED);
                    }
                }
            }
            MessageState::Done { .. } | MessageState::Failed { .. } => {
                return Err(CommandStatus::CANCEL_FAILED);
            }
        };
        record.state = MessageState::Done {
            state: ReceiptState::Deleted.to_u8(),
        };
        record.final_ms = Some(now_ms());
        if !crate::forward::write_until_done(node, vec![Op::PutMessage(record.clone())]).await {
            return Err(CommandStatus::SYSTEM_ERROR);
        }
        node.write_cdr(&record);
        tracing::info!(id, account, "cancelled by the customer");
        Ok(())
    }

    /// `replace_sm` of one of our ids: a message still queued here is
    /// changed in the store and keeps its place in the queue; one
    /// forwarded is replaced upstream (with the upstream's id) and then in
    /// the store. The replacement must take as many SMS parts as the
    /// message it replaces (those were charged). A final message, another
    /// account's, one whose `source_addr` differs, or one the upstream
    /// would not replace: `ESME_RREPLACEFAIL`.
    async fn replace(&self, conn: &Connection, replace: &ReplaceSm) -> Result<(), CommandStatus> {
        let node = &self.0;
        let account = conn.system_id().ok_or(CommandStatus::INVALID_BIND_STATUS)?;
        let id =
            parse_id(&replace.message_id.to_string_lossy()).ok_or(CommandStatus::REPLACE_FAILED)?;
        let _final = node.final_lock(id).await;
        let record = match node.store.message(id).await {
            Ok(Some(record)) if record.account == account => record,
            Ok(_) => return Err(CommandStatus::REPLACE_FAILED),
            Err(e) => {
                tracing::error!(error = %e, "cannot read a message");
                return Err(CommandStatus::SYSTEM_ERROR);
            }
        };
        let sm = stored_sm(&record.submit).ok_or(CommandStatus::REPLACE_FAILED)?;
        if !replace.source_addr.is_empty() && sm.source_addr != replace.source_addr {
            return Err(CommandStatus::REPLACE_FAILED);
        }
        let new_sm = replaced(sm.clone(), replace);
        if submit_parts_on_air(&new_sm) != record.parts {
            tracing::info!(
                id,
                "replace refused: the new text takes another number of parts"
            );
            return Err(CommandStatus::REPLACE_FAILED);
        }
        let submit =
            encode_request(Body::SubmitSm(Box::new(new_sm))).ok_or(CommandStatus::SYSTEM_ERROR)?;
        match record.state {
            MessageState::Accepted => {
                // Not in the queue: being submitted right now (ask again).
                let taken = crate::forward::take_queued(node, &record)
                    .ok_or(CommandStatus::REPLACE_FAILED)?;
                let mut changed = taken.record.clone();
                changed.submit = submit;
                if let Err(e) = node
                    .store
                    .write(vec![Op::PutMessage(changed.clone())])
                    .await
                {
                    tracing::error!(error = %e, "cannot store a replaced message");
                    let before = taken.record.clone();
                    crate::forward::put_back_queued(node, taken, before);
                    return Err(CommandStatus::SYSTEM_ERROR);
                }
                crate::forward::put_back_queued(node, taken, changed);
            }
            MessageState::Forwarded => {
                let up = Upstream::of(node, &record, &sm).ok_or(CommandStatus::REPLACE_FAILED)?;
                let connector = up.connector.clone();
                let upstream_replace = ReplaceSm {
                    message_id: up.id.into(),
                    source_addr_ton: up.ton,
                    source_addr_npi: up.npi,
                    source_addr: up.source,
                    ..replace.clone()
                };
                if let Err(e) = connector
                    .pool
                    .request(Body::ReplaceSm(Box::new(upstream_replace)))
                    .await
                {
                    tracing::info!(id, upstream = connector.name, error = %e, "replace refused upstream");
                    return Err(CommandStatus::REPLACE_FAILED);
                }
                let mut record = record;
                record.submit = submit;
                if !crate::forward::write_until_done(node, vec![Op::PutMessage(record)]).await {
                    return Err(CommandStatus::SYSTEM_ERROR);
                }
            }
            MessageState::Done { .. } | MessageState::Failed { .. } => {
                return Err(CommandStatus::REPLACE_FAILED);
            }
        }
        tracing::info!(id, account, "replaced by the customer");
        Ok(())
    }

    /// `query_sm` on one of our ids, for the account that submitted it
    /// (and the same `source_addr`, when given); `ESME_RQUERYFAIL` otherwise.
    async fn query(
        &self,
        conn: &Connection,
        query: &QuerySm,
    ) -> Result<QuerySmResp, CommandStatus> {
        let account = conn.system_id().ok_or(CommandStatus::INVALID_BIND_STATUS)?;
        let id =
            parse_id(&query.message_id.to_string_lossy()).ok_or(CommandStatus::QUERY_FAILED)?;
        let record = match self.0.store.message(id).await {
            Ok(record) => record,
            Err(e) => {
                tracing::error!(error = %e, "cannot read a message");
                return Err(CommandStatus::SYSTEM_ERROR);
            }
        };
        let record = record
            .filter(|r| r.account == account)
            .ok_or(CommandStatus::QUERY_FAILED)?;
        if !query.source_addr.is_empty() {
            let sm = stored_sm(&record.submit).ok_or(CommandStatus::QUERY_FAILED)?;
            if sm.source_addr != query.source_addr {
                return Err(CommandStatus::QUERY_FAILED);
            }
        }
        let state = match record.state {
            MessageState::Accepted | MessageState::Forwarded => ReceiptState::Enroute.to_u8(),
            MessageState::Done { state } => state,
            MessageState::Failed { .. } => ReceiptState::Rejected.to_u8(),
        };
        let final_date = record
            .final_ms
            .map(smpp_proto::message::time::absolute)
            .unwrap_or_default();
        Ok(QuerySmResp {
            message_id: query.message_id.clone(),
            final_date: final_date.into(),
            message_state: state,
            ..Default::default()
        })
    }
}
