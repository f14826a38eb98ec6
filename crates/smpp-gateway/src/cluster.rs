//! Several gateways on one PostgreSQL database (a store that is
//! [`shared`](crate::store::GatewayStore::shared)): what each node owns and
//! how the others take it over.
//!
//! - **Nodes.** Each node has a row in `nodes` (id, number, last seen),
//!   refreshed every second. A row not refreshed for the takeover time
//!   ([`GatewayConfig::takeover`](crate::GatewayConfig::takeover), 15 s by
//!   default) is deleted by whichever node sees it first; a node that stops
//!   cleanly deletes its own and says so (`NOTIFY`).
//! - **Messages** belong to the node that accepted them: it forwards them
//!   and watches for their receipts. The messages of a node that is gone
//!   (not forwarded yet, or waiting for a receipt), and the upstream
//!   receipts it held, are taken over by one live node (an `UPDATE` of
//!   their owner: two nodes cannot both take one).
//! - **Receipts and MO owed to customers** are delivered by a node where
//!   the account has a receiver bound. The node that made one keeps it when
//!   it has such a bind; otherwise it leaves it (owner `NULL`) and notifies
//!   the others, and every node claims the ones of the accounts bound to it
//!   (`FOR UPDATE SKIP LOCKED`: each receipt goes to one node). A node's
//!   receipts are left for the others when its customer unbinds, and when
//!   it is gone.
//! - **Configuration** (accounts, connectors, routes, quotas): every change
//!   is committed with a `NOTIFY`; the other nodes read it again and apply
//!   it without a restart.
//! - **Upstream binds**: a connector of N binds has N slots cluster-wide,
//!   each held by one node under a PostgreSQL advisory lock on its own
//!   connection; a node binds only on the slots it holds. When a node dies
//!   its connection closes, PostgreSQL releases its locks and the others'
//!   next attempt (every second) takes the slots over. A node that loses
//!   its lock connection closes the binds it held at once (so the cluster
//!   never holds more than N), and takes slots again when it can.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_postgres::{AsyncMessage, Client, NoTls};

use crate::node::{lock, now_ms, Node};
use crate::store::pg::{CONFIG_CHANNEL, NODES_CHANNEL, OUTBOX_CHANNEL};
use crate::store::{HeldReceipt, MessageRecord, OwedReceipt, Shared, StoreError, StoreResult};

/// How often a node says it is alive, claims receipts and looks for nodes
/// that are gone.
const BEAT: Duration = Duration::from_secs(1);

/// A pass woken early follows the last one by this much at least: the
/// receipts and binds that woke it in the meantime go in one pass (one
/// round of statements) instead of one each.
const PASS_GAP: Duration = Duration::from_millis(20);

/// Receipts claimed in one statement at most.
const CLAIM_BATCH: i64 = 1024;

/// Receipts a node holds for its customers at most before it stops
/// claiming more.
const CLAIM_LIMIT: usize = 20_000;

/// A node's part in the cluster.
#[derive(Debug)]
pub(crate) struct Cluster {
    shared: Shared,
    takeover: Duration,
    /// Wakes the outbox pass: receipts left by this node, a new bind, a
    /// notification.
    pub(crate) wake: Notify,
    /// The connection for the cluster's own statements (made again when lost).
    conn: tokio::sync::Mutex<Option<Client>>,
    /// The upstream bind slots this node holds.
    pub(crate) slots: Arc<Slots>,
    /// What the other nodes said of their customers' binds.
    view: Mutex<View>,
    /// When this node's last beat reached the database.
    last_beat: Mutex<Option<std::time::Instant>>,
    /// A statement failed: whether it took rows for this node is unknown
    /// (its answer was lost), so the next pass looks.
    suspect: std::sync::atomic::AtomicBool,
}

/// The other live nodes' binds, as of the last look.
#[derive(Debug, Default)]
struct View {
    /// Per account: binds, and receivers among them.
    others: HashMap<String, (usize, usize)>,
    /// Live nodes other than this one.
    nodes: usize,
}

impl Cluster {
    pub(crate) fn new(shared: Shared, takeover: Duration) -> Cluster {
        let slots = Arc::new(Slots::new(shared.clone(), takeover));
        Cluster {
            shared,
            takeover,
            wake: Notify::new(),
            conn: tokio::sync::Mutex::new(None),
            slots,
            view: Mutex::default(),
            last_beat: Mutex::default(),
            suspect: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// This node's share of an account's throughput limit: its binds of
    /// the account over the cluster's; an account bound nowhere (HTTP) an
    /// equal share per live node.
    pub(crate) fn share(&self, account: &str, here: usize) -> f64 {
        let view = lock(&self.view);
        let elsewhere = view.others.get(account).map_or(0, |b| b.0);
        if here + elsewhere == 0 {
            return 1.0 / (view.nodes + 1) as f64;
        }
        here as f64 / (here + elsewhere) as f64
    }

    /// Lets the bind slots go at once (their connection closes) and
    /// closes the cluster's connection: the node is stopping.
    pub(crate) async fn close(&self) {
        let lock_client = self.slots.state.lock().await.client.take();
        drop(lock_client);
        let next = self.slots.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.slots.generation.send_replace(next);
        lock(&self.slots.held).clear();
        self.conn.lock().await.take();
    }

    /// This node's id.
    pub(crate) fn node_id(&self) -> &str {
        &self.shared.node
    }

    async fn client(&self) -> StoreResult<tokio::sync::MutexGuard<'_, Option<Client>>> {
        let mut conn = self.conn.lock().await;
        if conn.as_ref().is_none_or(Client::is_closed) {
            *conn = Some(connect(&self.shared.config).await?);
        }
        Ok(conn)
    }

    /// Runs `f` on the cluster's connection; a failed statement drops the
    /// connection (the next call makes it again).
    async fn with_client<T>(
        &self,
        f: impl AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error>,
    ) -> StoreResult<T> {
        let mut guard = self.client().await?;
        let Some(client) = guard.as_ref() else {
            return Err(StoreError::Closed);
        };
        match f(client).await {
            Ok(v) => Ok(v),
            Err(e) => {
                *guard = None;
                self.suspect.store(true, Ordering::Release);
                Err(e.into())
            }
        }
    }

    /// Refreshes this node's row (and re-registers it if another node took
    /// it for gone); deletes the rows of nodes not seen for the takeover
    /// time. `true` when some node is gone (its work is to be taken over).
    async fn beat(&self, binds: &BTreeMap<String, (usize, usize)>) -> StoreResult<bool> {
        let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
        let cutoff = now.saturating_sub(i64::try_from(self.takeover.as_millis()).unwrap_or(0));
        let binds = serde_json::to_string(binds).unwrap_or_else(|_| "{}".into());
        let node = self.node_id().to_owned();
        let ordinal = i32::try_from(self.shared.ordinal).unwrap_or(0);
        // A node that was cut off itself (the database restarting: every
        // node was) does not take the others for gone on its first beat
        // back: they were as silent as it was.
        let steady = lock(&self.last_beat)
            .is_some_and(|at| at.elapsed() < (self.takeover / 2).max(BEAT * 2));
        let beat = self
            .with_client(async |c| {
                let seen = c
                    .execute(
                        "UPDATE nodes SET seen_ms = $2, binds = $3::text::jsonb WHERE id = $1",
                        &[&node, &now, &binds],
                    )
                    .await?;
                if seen == 0 {
                    tracing::error!(
                        node,
                        "this node was taken for gone (not seen for the takeover time): \
                     its messages were taken over; registering again"
                    );
                    c.execute(
                    "INSERT INTO nodes (id, ordinal, started_ms, seen_ms) VALUES ($1, $2, $3, $3) \
                     ON CONFLICT DO NOTHING",
                    &[&node, &ordinal, &now],
                )
                .await?;
                }
                if !steady {
                    return Ok(false);
                }
                let gone = c
                    .query(
                        "DELETE FROM nodes WHERE seen_ms < $1 RETURNING id",
                        &[&cutoff],
                    )
                    .await?;
                for row in &gone {
                    let id: String = row.try_get(0)?;
                    tracing::warn!(node = id, "a node is gone: taking over its work");
                }
                Ok(!gone.is_empty())
            })
            .await;
        if beat.is_ok() {
            *lock(&self.last_beat) = Some(std::time::Instant::now());
        }
        beat
    }

    /// Takes over what nodes no longer in `nodes` owned: their messages
    /// (returned: those not forwarded yet are to be forwarded here) and
    /// held upstream receipts (returned); their receipts owed to customers
    /// are left to whichever node the account binds to, webhook calls
    /// taken here (returned).
    async fn take_over(&self) -> StoreResult<Orphans> {
        let node = self.node_id().to_owned();
        let orphans = self
            .with_client(async |c| {
                let gone = "NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = t.node)";
                let messages = c
                    .query(
                        &format!(
                            "UPDATE messages t SET node = $1 WHERE final_ms IS NULL \
                             AND (t.node IS NULL OR {gone}) RETURNING record"
                        ),
                        &[&node],
                    )
                    .await?;
                let held = c
                    .query(
                        &format!(
                            "UPDATE receipts_held t SET node = $1 \
                             WHERE t.node IS NULL OR {gone} RETURNING record"
                        ),
                        &[&node],
                    )
                    .await?;
                let webhooks = c
                    .query(
                        "UPDATE receipts_owed t SET owner = $1 WHERE webhook \
                         AND (t.owner IS NULL OR NOT EXISTS \
                         (SELECT 1 FROM nodes n WHERE n.id = t.owner)) RETURNING record",
                        &[&node],
                    )
                    .await?;
                let left = c
                    .execute(
                        "UPDATE receipts_owed t SET owner = NULL WHERE NOT webhook \
                         AND t.owner IS NOT NULL AND NOT EXISTS \
                         (SELECT 1 FROM nodes n WHERE n.id = t.owner)",
                        &[],
                    )
                    .await?;
                if left > 0 {
                    c.batch_execute(&format!("NOTIFY {OUTBOX_CHANNEL}")).await?;
                }
                Ok((messages, held, webhooks))
            })
            .await?;
        let (messages, held, webhooks) = orphans;
        Ok(Orphans {
            messages: decode_all(&messages)?,
            held: decode_all(&held)?,
            webhooks: decode_all(&webhooks)?,
        })
    }

    /// Reads what the other live nodes hold of the customers' binds; the
    /// accounts with a receiver bound to one of them.
    async fn bound_elsewhere(&self) -> StoreResult<HashSet<String>> {
        let node = self.node_id().to_owned();
        let rows = self
            .with_client(async |c| {
                c.query("SELECT binds::text FROM nodes WHERE id <> $1", &[&node])
                    .await
            })
            .await?;
        let mut view = View {
            nodes: rows.len(),
            ..View::default()
        };
        for row in &rows {
            let text: String = row.try_get(0)?;
            let binds: HashMap<String, (usize, usize)> =
                serde_json::from_str(&text).unwrap_or_default();
            for (account, (all, receivers)) in binds {
                let entry = view.others.entry(account).or_default();
                entry.0 += all;
                entry.1 += receivers;
            }
        }
        self.slots.nodes.store(view.nodes + 1, Ordering::Relaxed);
        let receiving = view
            .others
            .iter()
            .filter(|(_, b)| b.1 > 0)
            .map(|(a, _)| a.clone())
            .collect();
        *lock(&self.view) = view;
        Ok(receiving)
    }

    /// Tells the other nodes to look at the receipts again (this node's
    /// binds changed, or it left receipts to them).
    async fn notify_outbox(&self) -> StoreResult<()> {
        self.with_client(async |c| c.batch_execute(&format!("NOTIFY {OUTBOX_CHANNEL}")).await)
            .await
    }

    /// Leaves messages not forwarded yet to a node with a bind up for them.
    async fn hand_off(&self, ids: &[u64]) -> StoreResult<()> {
        let node = self.node_id().to_owned();
        let ids: Vec<i64> = ids.iter().filter_map(|s| i64::try_from(*s).ok()).collect();
        self.with_client(async |c| {
            c.execute(
                "UPDATE messages SET node = NULL WHERE node = $1 AND unforwarded \
                 AND id = ANY($2::int8[])",
                &[&node, &ids],
            )
            .await?;
            c.batch_execute(&format!("NOTIFY {OUTBOX_CHANNEL}")).await
        })
        .await
    }

    /// Takes messages not forwarded yet that a node without a bind for
    /// them left.
    async fn claim_messages(&self) -> StoreResult<Vec<MessageRecord>> {
        let node = self.node_id().to_owned();
        let rows = self
            .with_client(async |c| {
                c.query(
                    "UPDATE messages m SET node = $1 FROM (SELECT id FROM messages \
                     WHERE unforwarded AND node IS NULL ORDER BY id LIMIT $2 \
                     FOR UPDATE SKIP LOCKED) c WHERE m.id = c.id RETURNING m.record",
                    &[&node, &CLAIM_BATCH],
                )
                .await
            })
            .await?;
        decode_all(&rows)
    }

    /// The receipts (not webhook calls) and the messages not forwarded yet
    /// that the database says are this node's.
    async fn own(&self) -> StoreResult<(Vec<OwedReceipt>, Vec<MessageRecord>)> {
        let node = self.node_id().to_owned();
        let (receipts, messages) = self
            .with_client(async |c| {
                let receipts = c
                    .query(
                        "SELECT record FROM receipts_owed WHERE owner = $1 AND NOT webhook \
                         ORDER BY seq",
                        &[&node],
                    )
                    .await?;
                let messages = c
                    .query(
                        "SELECT record FROM messages WHERE unforwarded AND node = $1 ORDER BY id",
                        &[&node],
                    )
                    .await?;
                Ok((receipts, messages))
            })
            .await?;
        Ok((decode_all(&receipts)?, decode_all(&messages)?))
    }

    /// Claims receipts owed to `accounts` that no node delivers.
    async fn claim(&self, accounts: &[String]) -> StoreResult<Vec<OwedReceipt>> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let node = self.node_id().to_owned();
        let accounts = accounts.to_vec();
        let rows = self
            .with_client(async |c| {
                c.query(
                    "UPDATE receipts_owed r SET owner = $1 FROM (SELECT seq FROM receipts_owed \
                     WHERE account = ANY($2::text[]) AND owner IS NULL AND NOT webhook \
                     ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED) c \
                     WHERE r.seq = c.seq RETURNING r.record",
                    &[&node, &accounts, &CLAIM_BATCH],
                )
                .await
            })
            .await?;
        decode_all(&rows)
    }

    /// Leaves receipts (by outbox key) to whichever node their account
    /// binds to, and tells the others.
    async fn release(&self, seqs: &[u64]) -> StoreResult<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        let node = self.node_id().to_owned();
        let seqs: Vec<i64> = seqs.iter().filter_map(|s| i64::try_from(*s).ok()).collect();
        self.with_client(async |c| {
            c.execute(
                "UPDATE receipts_owed SET owner = NULL WHERE owner = $1 AND seq = ANY($2::int8[])",
                &[&node, &seqs],
            )
            .await?;
            c.batch_execute(&format!("NOTIFY {OUTBOX_CHANNEL}")).await
        })
        .await
    }
}

fn seqs(receipts: &[OwedReceipt]) -> Vec<u64> {
    receipts.iter().map(|r| r.seq).collect()
}

/// What a takeover brought.
#[derive(Debug, Default)]
struct Orphans {
    messages: Vec<MessageRecord>,
    held: Vec<HeldReceipt>,
    webhooks: Vec<OwedReceipt>,
}

fn decode_all<T: serde::de::DeserializeOwned>(rows: &[tokio_postgres::Row]) -> StoreResult<Vec<T>> {
    rows.iter()
        .map(|row| Ok(postcard::from_bytes(row.try_get::<_, &[u8]>(0)?)?))
        .collect()
}

async fn connect(config: &tokio_postgres::Config) -> StoreResult<Client> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "cluster connection lost");
        }
    });
    Ok(client)
}

/// Takes over what a node that is gone left, into this node's queues
/// (when `queue`; at start they are read with this node's own).
pub(crate) async fn take_over(
    node: &Arc<Node>,
    cluster: &Cluster,
    queue: bool,
) -> StoreResult<usize> {
    let orphans = cluster.take_over().await?;
    let count = orphans.messages.len() + orphans.held.len() + orphans.webhooks.len();
    if count > 0 {
        tracing::info!(
            messages = orphans.messages.len(),
            held = orphans.held.len(),
            webhooks = orphans.webhooks.len(),
            "took over the work of a node that is gone"
        );
    }
    if !queue {
        return Ok(count);
    }
    {
        let mut held = lock(&node.held);
        for h in orphans.held {
            held.entry((h.upstream.clone(), h.upstream_id.clone()))
                .or_default()
                .push(h);
        }
    }
    for owed in orphans.webhooks {
        node.webhooks.queue(owed);
    }
    let topology = node.topologies.current();
    for record in orphans
        .messages
        .into_iter()
        .filter(|r| r.state == crate::store::MessageState::Accepted)
    {
        match topology.route_of(&record) {
            Some(route) => crate::forward::enqueue(node, &topology, route, record),
            None => {
                tokio::spawn(crate::forward::unroutable(node.clone(), record));
            }
        }
    }
    Ok(count)
}

/// The node's cluster work: its heartbeat, takeovers, the receipts it
/// claims and leaves, and the notifications from the others.
pub(crate) async fn run(node: Arc<Node>, cluster: Arc<Cluster>) {
    let (config_tx, mut config_rx) = watch::channel(0u64);
    let (nodes_tx, mut nodes_rx) = watch::channel(0u64);
    tokio::spawn(listen(
        Arc::downgrade(&node),
        cluster.clone(),
        config_tx,
        nodes_tx,
    ));
    let mut beat = tokio::time::interval(BEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The binds the other nodes last heard of.
    let mut published: Option<BTreeMap<String, (usize, usize)>> = None;
    while !node.stopped() {
        let mut gone = false;
        let mut due = false;
        tokio::select! {
            _ = beat.tick() => due = true,
            () = cluster.wake.notified() => {}
            Ok(()) = config_rx.changed() => {
                if let Err(e) = reload(&node).await {
                    tracing::warn!(error = %e, "cannot read the changed configuration");
                }
            }
            Ok(()) = nodes_rx.changed() => gone = true,
        }
        // Beats every second, and at once when the binds changed (the
        // others then deliver the account's receipts here).
        let binds = node.binds.by_account();
        let changed = published.as_ref() != Some(&binds);
        if due || changed {
            match cluster.beat(&binds).await {
                Ok(g) => {
                    gone |= g;
                    if changed {
                        published = Some(binds);
                        if let Err(e) = cluster.notify_outbox().await {
                            tracing::warn!(error = %e, "cannot notify the other nodes");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cluster heartbeat failed"),
            }
        }
        if gone {
            if let Err(e) = take_over(&node, &cluster, true).await {
                tracing::warn!(error = %e, "takeover failed (tried again at the next beat)");
            }
        }
        let passed = pass(&node, &cluster).await;
        // Whatever wakes it meanwhile waits for the next pass.
        tokio::time::sleep(PASS_GAP).await;
        if let Err(e) = passed {
            tracing::warn!(error = %e, "cluster outbox pass failed");
        } else if cluster.suspect.swap(false, Ordering::AcqRel) {
            if let Err(e) = reconcile(&node, &cluster).await {
                tracing::warn!(error = %e, "cannot read what this node owns");
                cluster.suspect.store(true, Ordering::Release);
            }
        }
    }
}

/// Hands the messages this node cannot forward (no bind up for their
/// route) to the others, and takes those the others left when it has a
/// bind up.
async fn forward_pass(node: &Arc<Node>, cluster: &Cluster) -> StoreResult<()> {
    let topology = node.topologies.current();
    // Alone, there is nobody to hand them to.
    let others = lock(&cluster.view).nodes;
    let stranded = if others > 0 {
        crate::forward::take_stranded(node, &topology)
    } else {
        Vec::new()
    };
    if !stranded.is_empty() {
        let ids: Vec<u64> = stranded.iter().map(|r| r.id).collect();
        // On a failure, whether the database took them is unknown: the
        // reconciliation after it queues here again what is still this
        // node's (queued again now, they could go from two nodes).
        cluster.hand_off(&ids).await?;
        tracing::debug!(count = ids.len(), "messages left to nodes with a bind up");
    }
    if !topology.connectors.iter().any(|c| c.is_up()) {
        return Ok(());
    }
    loop {
        let records = cluster.claim_messages().await?;
        let full = records.len() as i64 == CLAIM_BATCH;
        for record in records {
            match topology.route_of(&record) {
                Some(route) => crate::forward::enqueue(node, &topology, route, record),
                None => {
                    tokio::spawn(crate::forward::unroutable(node.clone(), record));
                }
            }
        }
        if !full {
            return Ok(());
        }
    }
}

/// Leaves the receipts of accounts bound elsewhere and not here to the
/// nodes they are bound to; claims those of accounts bound here.
async fn pass(node: &Arc<Node>, cluster: &Cluster) -> StoreResult<()> {
    let elsewhere = cluster.bound_elsewhere().await?;
    forward_pass(node, cluster).await?;
    let left = lock(&node.outbox).take_unbound(|account| {
        !elsewhere.contains(account) || node.binds.receiver(account).is_some()
    });
    // On a failure, the reconciliation after it takes back what the
    // database still says is this node's (kept now, a receipt whose release
    // did commit could go from two nodes).
    cluster.release(&seqs(&left)).await?;
    let bound: Vec<String> = node
        .binds
        .by_account()
        .into_iter()
        .filter(|(_, b)| b.1 > 0)
        .map(|(a, _)| a)
        .collect();
    let mut claimed = 0;
    while lock(&node.outbox).len() < CLAIM_LIMIT {
        let receipts = cluster.claim(&bound).await?;
        let full = receipts.len() as i64 == CLAIM_BATCH;
        claimed += receipts.len();
        {
            let mut outbox = lock(&node.outbox);
            for owed in receipts {
                outbox.insert_absent(owed);
            }
        }
        if !full {
            break;
        }
    }
    if claimed > 0 {
        node.outbox_wake.notify_one();
    }
    Ok(())
}

/// After a statement whose outcome is unknown: takes into this node's
/// queues what the database says is its own and is not there (a claim
/// that committed but whose answer was lost). A message being submitted
/// right then may go twice (at least once, as after a crash).
async fn reconcile(node: &Arc<Node>, cluster: &Cluster) -> StoreResult<()> {
    let (receipts, messages) = cluster.own().await?;
    {
        let mut outbox = lock(&node.outbox);
        for owed in receipts {
            outbox.insert_absent(owed);
        }
    }
    node.outbox_wake.notify_one();
    let topology = node.topologies.current();
    let mut queued = std::collections::HashSet::new();
    for queue in &topology.queues {
        queued.extend(queue.ids());
    }
    let submitting = node.submitting_ids();
    for record in messages {
        if queued.contains(&record.id) || submitting.contains(&record.id) {
            continue;
        }
        match topology.route_of(&record) {
            Some(route) => crate::forward::enqueue(node, &topology, route, record),
            None => {
                tokio::spawn(crate::forward::unroutable(node.clone(), record));
            }
        }
    }
    Ok(())
}

/// Reads the configuration again (another node changed it) and applies
/// what differs: accounts, quotas, connectors and routes.
pub(crate) async fn reload(node: &Arc<Node>) -> StoreResult<()> {
    let _changing = node.config_lock.lock().await;
    let stored = node.store.accounts().await?;
    for gone in node.accounts.replace_from_store(&stored) {
        let closed = node.binds.close_account(&gone);
        tracing::info!(account = gone, closed, "account removed on another node");
    }
    for (account, quota) in node.store.quotas().await? {
        node.billing.set(&account, quota);
    }
    let layout = crate::topology::Layout::from_settings(&node.store.settings().await?);
    if let Err(e) = crate::topology::adopt(node, layout).await {
        tracing::warn!(error = %e, "the connectors and routes stored by another node cannot be used here");
    }
    Ok(())
}

/// Listens for the other nodes' notifications (on a connection of its own,
/// made again when lost; after each reconnection everything is read again,
/// as notifications may have been missed).
async fn listen(
    node: Weak<Node>,
    cluster: Arc<Cluster>,
    config: watch::Sender<u64>,
    nodes: watch::Sender<u64>,
) {
    let mut seen = 0u64;
    loop {
        if node.upgrade().is_none_or(|n| n.stopped()) {
            return;
        }
        match cluster.shared.config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    loop {
                        let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
                        match message {
                            Some(Ok(AsyncMessage::Notification(n))) => {
                                if tx
                                    .send((n.channel().to_owned(), n.payload().to_owned()))
                                    .is_err()
                                {
                                    return;
                                }
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "cluster notifications lost");
                                return;
                            }
                            None => return,
                        }
                    }
                });
                let listening = client
                    .batch_execute(&format!(
                        "LISTEN {CONFIG_CHANNEL}; LISTEN {OUTBOX_CHANNEL}; LISTEN {NODES_CHANNEL}"
                    ))
                    .await;
                if listening.is_ok() {
                    // What happened while nobody listened.
                    seen += 1;
                    config.send_replace(seen);
                    nodes.send_replace(seen);
                    cluster.wake.notify_one();
                    while let Some((channel, payload)) = rx.recv().await {
                        seen += 1;
                        if channel == CONFIG_CHANNEL {
                            if payload != cluster.node_id() {
                                config.send_replace(seen);
                            }
                        } else if channel == NODES_CHANNEL {
                            nodes.send_replace(seen);
                        } else {
                            cluster.wake.notify_one();
                        }
                    }
                }
                driver.abort();
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for the other nodes"),
        }
        tokio::time::sleep(BEAT).await;
    }
}

/// The upstream bind slots this node holds: advisory locks on a connection
/// of their own.
#[derive(Debug)]
pub(crate) struct Slots {
    shared: Shared,
    takeover: Duration,
    state: tokio::sync::Mutex<SlotConn>,
    /// Which (connector, slot) this node holds.
    held: Mutex<HashSet<(String, usize)>>,
    /// Bumped when the lock connection is lost: every slot of the earlier
    /// generations is gone.
    generation: watch::Sender<u64>,
    next: AtomicU64,
    /// Live nodes (this one included), as of the last look: each holds at
    /// most its fair share of a connector's slots.
    nodes: std::sync::atomic::AtomicUsize,
}

#[derive(Debug, Default)]
struct SlotConn {
    client: Option<Client>,
}

/// A held bind slot: released when dropped; [`SlotGuard::lost`] ends when
/// the lock is lost with its connection.
#[derive(Debug)]
pub(crate) struct SlotGuard {
    slots: Arc<Slots>,
    key: (String, usize),
    generation: u64,
}

impl SlotGuard {
    /// Resolves when the slot's lock is lost (its connection closed).
    pub(crate) async fn lost(&self) {
        let mut rx = self.slots.generation.subscribe();
        while *rx.borrow_and_update() == self.generation {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let slots = self.slots.clone();
        let key = self.key.clone();
        let generation = self.generation;
        lock(&slots.held).remove(&key);
        tokio::spawn(async move {
            if *slots.generation.borrow() != generation {
                return;
            }
            let state = slots.state.lock().await;
            if let Some(client) = &state.client {
                let _ = client
                    .execute("SELECT pg_advisory_unlock($1)", &[&slot_key(&key.0, key.1)])
                    .await;
            }
        });
    }
}

/// The advisory lock key of a connector's bind slot (FNV-1a of its name
/// and number).
fn slot_key(connector: &str, slot: usize) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"smpp-gateway-slot\0"
        .iter()
        .chain(connector.as_bytes())
        .chain(&[0])
        .chain(slot.to_string().as_bytes())
    {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

impl Slots {
    fn new(shared: Shared, takeover: Duration) -> Slots {
        Slots {
            shared,
            takeover,
            state: tokio::sync::Mutex::default(),
            held: Mutex::default(),
            generation: watch::channel(0).0,
            next: AtomicU64::new(0),
            nodes: std::sync::atomic::AtomicUsize::new(1),
        }
    }

    /// The slots of a connector of `slots` one node holds at most: an
    /// equal share of them among the live nodes, rounded up.
    fn fair(&self, slots: usize) -> usize {
        slots.div_ceil(self.nodes.load(Ordering::Relaxed).max(1))
    }

    /// Whether the bind on `guard`'s slot should make room (its node holds
    /// more than its share since another node came): at most the excess
    /// answer yes; a yes gives the slot up at once.
    pub(crate) fn should_yield(&self, guard: &SlotGuard, slots: usize) -> bool {
        let mut held = lock(&self.held);
        let mine = held.iter().filter(|(c, _)| *c == guard.key.0).count();
        if mine > self.fair(slots) && held.remove(&guard.key) {
            return true;
        }
        false
    }

    /// Waits until this node holds one of the `slots` bind slots of
    /// `connector` (trying every second).
    pub(crate) async fn acquire(self: &Arc<Self>, connector: &str, slots: usize) -> SlotGuard {
        loop {
            match self.try_acquire(connector, slots).await {
                Ok(Some(guard)) => return guard,
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, connector, "cannot take a bind slot"),
            }
            tokio::time::sleep(BEAT).await;
        }
    }

    async fn try_acquire(
        self: &Arc<Self>,
        connector: &str,
        slots: usize,
    ) -> StoreResult<Option<SlotGuard>> {
        let mut state = self.state.lock().await;
        if state.client.as_ref().is_none_or(Client::is_closed) {
            state.client = None;
            let mut config = self.shared.config.clone();
            // A node cut off is seen dead (and its locks go) within the
            // takeover time.
            let idle = (self.takeover / 3).max(Duration::from_secs(1));
            config
                .keepalives(true)
                .keepalives_idle(idle)
                .keepalives_interval(Duration::from_secs(1))
                .keepalives_retries(3);
            let (client, connection) = config.connect(NoTls).await?;
            let slots = Arc::downgrade(self);
            let generation = self.next.fetch_add(1, Ordering::Relaxed) + 1;
            self.generation.send_replace(generation);
            tokio::spawn(async move {
                let _ = connection.await;
                // Every lock went with the connection.
                if let Some(slots) = slots.upgrade() {
                    if *slots.generation.borrow() == generation {
                        let next = slots.next.fetch_add(1, Ordering::Relaxed) + 1;
                        slots.generation.send_replace(next);
                        lock(&slots.held).clear();
                    }
                    tracing::warn!("lost the connection holding the upstream bind slots");
                }
            });
            state.client = Some(client);
        }
        let generation = *self.generation.borrow();
        let Some(client) = state.client.as_ref() else {
            return Ok(None);
        };
        let fair = self.fair(slots);
        for slot in 0..slots {
            let key = (connector.to_owned(), slot);
            {
                let held = lock(&self.held);
                if held.iter().filter(|(c, _)| c == connector).count() >= fair {
                    return Ok(None);
                }
                if held.contains(&key) {
                    continue;
                }
            }
            let taken: bool = client
                .query_one(
                    "SELECT pg_try_advisory_lock($1)",
                    &[&slot_key(connector, slot)],
                )
                .await?
                .try_get(0)?;
            if taken {
                lock(&self.held).insert(key.clone());
                return Ok(Some(SlotGuard {
                    slots: self.clone(),
                    key,
                    generation,
                }));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_keys_differ_by_connector_and_slot() {
        let keys: HashSet<i64> = ["a", "b", "ab"]
            .iter()
            .flat_map(|c| (0..10).map(move |s| slot_key(c, s)))
            .collect();
        assert_eq!(keys.len(), 30);
        assert_eq!(slot_key("a", 1), slot_key("a", 1));
    }
}
