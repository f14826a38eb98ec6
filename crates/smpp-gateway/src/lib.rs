//! An SMS gateway for aggregators: customers bind over SMPP and submit;
//! each message is made durable, answered with the gateway's own message
//! id, and forwarded to an upstream SMSC chosen by its route; the
//! upstream's delivery receipts are mapped back to the customer with the
//! id the customer was given.
//!
//! ```no_run
//! use smpp_gateway::{start, GatewayConfig, StoreConfig};
//!
//! # async fn run() -> anyhow::Result<()> {
//! let mut config = GatewayConfig::default();
//! config.listen = "127.0.0.1:0".into();
//! config.store = StoreConfig::Memory;
//! config.accounts = vec!["esme:secret".parse().map_err(anyhow::Error::msg)?];
//! config.upstreams = vec!["smsc=gw:pw@127.0.0.1:2775".parse().map_err(anyhow::Error::msg)?];
//! let gateway = start(config).await?;
//! println!("SMPP listening on {}", gateway.smpp_addr());
//! // ... customers bind, submit, receive receipts ...
//! gateway.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Parts
//! - [`config`]: accounts, upstream connectors, routes, balances, store
//!   ([`GatewayConfig`]).
//! - [`store`]: the records behind [`GatewayStore`] (memory, durable on
//!   fjall, or a PostgreSQL database; group commit).
//! - Several nodes on one PostgreSQL database form a cluster: each owns
//!   the messages it accepts, receipts go to the node the customer is bound
//!   to, upstream bind slots are shared under advisory locks, balances and
//!   rate limits hold across nodes, configuration changes are notified, a
//!   node that dies is taken over (`docs/SCALE-OUT.md`).
//! - The customers' server (a `smpp_tokio` [`Handler`](smpp_tokio::Handler)):
//!   binds of every kind for the configured accounts (hashed passwords,
//!   allow-lists, a bind limit per account, the bind lockout), `submit_sm`
//!   and `data_sm` (a rate limit per account counted in SMS parts; a
//!   `data_sm` goes upstream as a `submit_sm` carrying its
//!   `message_payload`), `submit_multi` (each destination a message of
//!   its own, all under the first's id; the account's distribution lists,
//!   [`DistributionListConfig`], expand to their members, an unknown name
//!   is `ESME_RINVDLNAME` for it), `query_sm` and `cancel_sm` on the
//!   gateway's ids
//!   (a message still queued is taken out; one forwarded is cancelled
//!   upstream), `replace_sm` on them (a message still queued is changed
//!   in place; one forwarded is replaced upstream with the upstream's id,
//!   then in the store; the new text must take as many SMS parts, which
//!   were charged).
//! - Billing: prepaid money and SMS quotas, a rate per route per part,
//!   charged atomically with the message; CDRs.
//! - Connectors: each a `smpp_tokio::Pool` of binds to an SMSC:
//!   transceivers by default; transmitters, receivers, or a transmitter
//!   and a receiver per slot (receipts and MO come back on the receivers)
//!   with `bind=` ([`ConnectorBind`]).
//! - Routing: ordered routes, first match by destination prefix, account,
//!   source, a regular expression and a time window; tiers that fail
//!   over, weights within a tier. Connectors and routes change while the
//!   gateway runs (the admin API; stored, see `topology`).
//! - Receipts: matched through the id map (normalised per connector),
//!   held when they come before the id, queued while the customer is
//!   unbound, or called back over HTTP. Intermediate notifications (a
//!   customer's `registered_delivery` asking for them goes upstream as
//!   it is) come back to customers that asked, as intermediate
//!   notifications with our id; they leave the message open.
//! - MO messages from upstreams (`deliver_sm`, or `data_sm` passed on as
//!   the `deliver_sm` that says the same): to the account (or the URL) of the first
//!   MO route matching their destination ([`MoRouteConfig`]), queued like
//!   receipts; one no route matches is refused with `ESME_RX_T_APPN` (the
//!   upstream keeps it).
//! - The loop guard: a connector that binds back to this gateway (its
//!   own listener, one of its accounts) is refused at start and in the
//!   admin API; every message forwarded carries a hop count (a private
//!   TLV, `0x1450`, one octet, one more at each gateway), and a submission
//!   that arrives with [`GatewayConfig::max_hops`] (5) or more is refused
//!   with `ESME_RINVDSTADR`: permanent, so the gateway before it fails its
//!   message with a failed receipt instead of trying again (`ESME_RSYSERR`
//!   would be retried, and the loop would go on).
//! - [`http`]: the Jasmin-compatible and JSON APIs, admin, metrics
//!   ([`RunningGateway::http_router`]).
//!
//! # Guarantees
//! - A customer's `submit_sm_resp` is sent only once the message is
//!   durable (with the fjall store: synced to disk, group-committed; with
//!   PostgreSQL: committed, one transaction per group).
//! - A message is accepted while no upstream of its route is up (it waits,
//!   durably, in its route's queue, which is tried again with backoff and
//!   sent in the order accepted when an upstream comes back; several
//!   submits go at once, so the upstream may see neighbours swapped) up to
//!   [`GatewayConfig::max_queued`] messages not yet forwarded, then
//!   `ESME_RMSGQFUL`; the same when every connector of its route has as
//!   many messages waiting as its own limit (`queue=N`,
//!   [`UpstreamConfig::queue`]). A destination no route matches gets
//!   `ESME_RINVDSTADR`.
//! - Each `submit_sm` is one message with its own id, parts of a long
//!   message included: a receipt per part.
//! - After a restart, messages accepted but not forwarded are forwarded,
//!   receipts owed are delivered, and held receipts are matched. A message
//!   whose submit was in flight upstream when the gateway stopped (or
//!   whose submit timed out, or lost its connection) is sent again: it may
//!   be duplicated, it is never lost. A receipt may reach the customer
//!   twice for the same reason (at least once).
//! - An upstream's receipt is answered once what it says is durable (a
//!   store failure answers `ESME_RSYSERR`: the upstream sends it again).
//!   One whose upstream id never becomes known is given up after
//!   [`GatewayConfig::hold_for`] (a day), with a warning.
//! - Every forwarded message reaches a final state: its upstream's receipt,
//!   or after [`GatewayConfig::receipt_timeout`] (48 hours) `UNKNOWN` (a
//!   receipt from upstream after that is ignored).
//! - Storage is bounded by time: a message final for longer than
//!   [`GatewayConfig::retention`] (7 days by default) is forgotten.
//!
//! # Not yet
//! Distribution lists are configured at start only (no admin API or
//! dashboard page for them yet). A replace of a message being submitted
//! upstream at that moment is refused (`ESME_RREPLACEFAIL`: ask again). A
//! connector removed through the admin API
//! takes its binds with it: receipts for messages it forwarded can no
//! longer arrive (they end `UNKNOWN` after the receipt timeout) unless a
//! connector of the same name comes back.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use smpp_proto::session::SessionConfig;
use smpp_tokio::{ServerConfig, ServerHandle};
use tokio::task::JoinHandle;

mod accept;
mod accounts;
mod admin;
mod billing;
mod cluster;
pub mod config;
mod customers;
mod dashboard;
mod forward;
mod hops;
pub mod http;
pub mod jasmin;
mod metrics;
mod node;
mod outbox;
mod receipts;
mod retention;
mod routing;
pub mod store;
mod topology;
mod upstream;
mod webhooks;

pub use billing::{format_money, parse_money, Micros};
pub use config::{
    Account, BalanceConfig, Cidr, ConnectorBind, DistributionListConfig, GatewayConfig,
    MoRouteConfig, RouteConfig, StoreConfig, TimeWindow, TlsConfig, UpstreamConfig,
};
pub use store::{format_id, parse_id, FjallStore, GatewayStore, MemoryStore, PgStore, Quota};

use crate::customers::Customers;
use crate::node::{lock, Node};

/// A started gateway: its address, its connectors' state, and how to stop it.
#[derive(Debug)]
pub struct RunningGateway {
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    node: Arc<Node>,
    servers: Vec<ServerHandle>,
    serving: Vec<JoinHandle<std::io::Result<()>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningGateway {
    /// The address customers bind to (plain TCP).
    pub fn smpp_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The TLS listener's address, when there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// How many binds of the connector `name` are up (`None`: no such connector).
    pub fn upstream_binds(&self, name: &str) -> Option<usize> {
        let topology = self.node.topologies.current();
        let c = topology.connector(name)?;
        Some(c.bound())
    }

    /// The prepaid quotas `account` has left (unlimited: `None` in each).
    pub fn quota(&self, account: &str) -> Quota {
        self.node.billing.quota(account)
    }

    /// Receipts (and MO messages) owed to customers and not delivered yet.
    pub fn receipts_owed(&self) -> usize {
        lock(&self.node.outbox).len()
    }

    /// Receipts and MO messages owed to HTTP receivers (webhooks) and not
    /// delivered yet.
    pub fn webhooks_owed(&self) -> usize {
        self.node.webhooks.len()
    }

    /// Upstream receipts held until their message's upstream id is known.
    pub fn receipts_held(&self) -> usize {
        lock(&self.node.held).values().map(Vec::len).sum()
    }

    /// Messages accepted and not yet forwarded (or whose upstream id is
    /// being recorded).
    pub fn messages_forwarding(&self) -> usize {
        self.node.forwarding_count()
    }

    /// The HTTP API (Jasmin-compatible, JSON v1, admin, metrics) as a
    /// router to serve; see [`http`]. Serve it with the client's address
    /// (`into_make_service_with_connect_info::<SocketAddr>()`) so that
    /// allow-lists and the lockout see it.
    pub fn http_router(&self, options: http::HttpOptions) -> axum::Router {
        http::router(self.node.clone(), options)
    }

    /// Stops accepting, unbinds the customers, closes the upstream binds,
    /// stops the background work and closes the store (everything written
    /// is durable; what was not forwarded yet is forwarded at the next start).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.node.stop();
        for server in &self.servers {
            server.shutdown();
        }
        for serving in self.serving {
            serving.await.context("server task")?.context("server")?;
        }
        let topology = self.node.topologies.current();
        for connector in &topology.connectors {
            connector.close().await;
        }
        // A submit that got its upstream id records it before the store
        // closes (the others end with the pools).
        for _ in 0..250 {
            if self.node.submitting_count() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for task in &self.tasks {
            task.abort();
        }
        for task in self
            .tasks
            .into_iter()
            .chain(self.node.topologies.abort_tasks())
        {
            let _ = task.await;
        }
        if let Some(cluster) = &self.node.cluster {
            cluster.close().await;
        }
        self.node.store.close().await.context("closing the store")?;
        Ok(())
    }
}

/// Session settings of the customers' side: a wide inbound window
/// (customers pipeline submits), a modest outbound one (receipts).
fn customer_session() -> SessionConfig {
    SessionConfig::default()
        .with_max_inbound(1024)
        .with_max_in_flight(64)
        .with_response_timeout(Duration::from_secs(10))
}

/// Opens the store `config` names (a database: connects and migrates).
pub async fn open_store(config: &StoreConfig) -> anyhow::Result<Arc<dyn GatewayStore>> {
    Ok(match config {
        StoreConfig::Memory => Arc::new(MemoryStore::default()),
        StoreConfig::Path(dir) => Arc::new(
            FjallStore::open(dir)
                .with_context(|| format!("cannot open the store in {}", dir.display()))?,
        ),
        StoreConfig::Postgres(url) => Arc::new(PgStore::connect(url).await?),
    })
}

/// Starts a gateway on the store `config` names.
pub async fn start(config: GatewayConfig) -> anyhow::Result<RunningGateway> {
    let store = open_store(&config.store).await?;
    start_with_store(config, store).await
}

/// Starts a gateway on `store`: starts the connectors, listens for
/// customers, and resumes what the store says is unfinished (messages not
/// forwarded, receipts owed, receipts held).
pub async fn start_with_store(
    config: GatewayConfig,
    store: Arc<dyn GatewayStore>,
) -> anyhow::Result<RunningGateway> {
    config.validate()?;
    // The connectors and routes: those stored (changed through the admin
    // API), with the configured ones merged in and stored.
    let stored = topology::Layout::from_settings(&store.settings().await?);
    let layout = stored.clone().merged(&config);
    layout.validate().map_err(anyhow::Error::msg)?;
    if layout.upstreams.is_empty() {
        anyhow::bail!("no upstream: give at least one --upstream NAME=ID:PASSWORD@HOST:PORT");
    }
    let ops = layout.ops_from(&stored);
    if !ops.is_empty() {
        store
            .write(ops)
            .await
            .context("storing the configuration")?;
    }
    let node = Arc::new(
        Node::new(store, &config)
            .await
            .context("reading the store")?,
    );
    // A connector to our own listener with one of our accounts loops; the
    // address is known here when the port is given (else once listening).
    let listen: Vec<SocketAddr> = config
        .listen
        .parse()
        .into_iter()
        .filter(|a: &SocketAddr| a.port() != 0)
        .collect();
    topology::check_not_self(&node, &layout, &listen).map_err(anyhow::Error::msg)?;
    topology::install_first(&node, layout).await?;

    // What the last run left unfinished (with others on the database:
    // and what nodes that are gone left).
    if let Some(cluster) = &node.cluster {
        cluster::take_over(&node, cluster, false).await?;
    }
    let unforwarded = node.store.unforwarded().await?;
    for owed in node.store.receipts_owed().await? {
        outbox::queue(&node, owed);
    }
    for held in node.store.held().await? {
        lock(&node.held)
            .entry((held.upstream.clone(), held.upstream_id.clone()))
            .or_default()
            .push(held);
    }
    if !unforwarded.is_empty() {
        tracing::info!(
            count = unforwarded.len(),
            "forwarding messages left from the last run"
        );
    }

    let server_config = ServerConfig::default()
        .with_session(customer_session())
        .with_system_id(config.system_id.clone());
    let listeners = smpp_server::listen_on(
        Customers(node.clone()),
        server_config,
        Some(&config.listen),
        config.tls.as_ref(),
        config.proxy_protocol.clone().into(),
    )
    .await?;
    let addr = listeners
        .plain_addr
        .context("the plain listener's address")?;
    let _ = node
        .topologies
        .listeners
        .set(std::iter::once(addr).chain(listeners.tls_addr).collect());

    let mut tasks = vec![
        tokio::spawn(outbox::run(node.clone())),
        tokio::spawn(webhooks::run(node.clone())),
        tokio::spawn(receipts::retry_held(node.clone())),
        tokio::spawn(retention::run(node.clone(), config.retention)),
    ];
    if let Some(cluster) = &node.cluster {
        tasks.push(tokio::spawn(cluster::run(node.clone(), cluster.clone())));
    }
    // In the order they were accepted.
    let topology = node.topologies.current();
    for record in unforwarded {
        match topology.route_of(&record) {
            Some(route) => forward::enqueue(&node, &topology, route, record),
            None => {
                tokio::spawn(forward::unroutable(node.clone(), record));
            }
        }
    }
    Ok(RunningGateway {
        addr,
        tls_addr: listeners.tls_addr,
        node,
        servers: listeners.handles,
        serving: listeners.servers,
        tasks,
    })
}
