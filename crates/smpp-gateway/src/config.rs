//! What a gateway runs with: the customers' accounts, the upstream
//! connectors, the routes and the store, from flags and a TOML file.
//!
//! Every list item has one text form, shared by the command line and the
//! file (`accounts = ["esme:secret@10.0.0.0/8"]`, `upstreams = [...]`,
//! `routes = [...]`), so there is one parser per item.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;
use smpp_proto::message::receipt::{IdRadix, MessageIdFormat};

use crate::billing::{parse_money, Micros};
use crate::store::Quota;

pub use smpp_server::config::{Account, BindFailureLimit, Cidr, TlsConfig};

/// The default listen address (the same as `smpp serve`).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:2775";
/// The default store directory (the same as `smpp serve`).
pub const DEFAULT_STORE: &str = "./smpp-data";
/// Messages accepted and not yet forwarded, at most (then `ESME_RMSGQFUL`).
pub const DEFAULT_MAX_QUEUED: usize = 100_000;
/// Gateway hops a message may have made before one refuses it as a loop.
pub const DEFAULT_MAX_HOPS: u8 = 5;
/// How long a final message is kept (then forgotten: a late receipt for it
/// is held, then given up).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a forwarded message waits for its upstream receipt.
pub const DEFAULT_RECEIPT_TIMEOUT: Duration = Duration::from_secs(48 * 3600);
/// How long an upstream receipt whose id never gets recorded is kept.
pub const DEFAULT_HOLD_FOR: Duration = Duration::from_secs(24 * 3600);
/// Receipts (and MO) owed to one account, at most, before its new
/// submissions are refused with `ESME_RMSGQFUL` (it does not take them).
pub const DEFAULT_MAX_RECEIPTS_OWED: usize = 100_000;
/// Upstream receipts held (their id not known yet), at most; beyond it an
/// upstream's receipt is answered `ESME_RSYSERR` (it sends it again later).
pub const DEFAULT_MAX_HELD: usize = 100_000;

/// Where the gateway keeps its messages, id map and receipts owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// In memory only: lost on exit.
    Memory,
    /// The durable embedded store (fjall) in this directory.
    Path(PathBuf),
    /// A PostgreSQL database (`postgres://USER@HOST[:PORT]/DB`): the
    /// schema is made and upgraded at start.
    Postgres(String),
}

/// Everything a gateway runs with.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The customers' SMPP address (`host:port`; port 0 for any free one).
    pub listen: String,
    /// The customers' accounts.
    pub accounts: Vec<Account>,
    /// The upstream connectors, in the order given.
    pub upstreams: Vec<UpstreamConfig>,
    /// The routes, first match wins; none: every upstream, in order, as
    /// one failover list for every destination.
    pub routes: Vec<RouteConfig>,
    /// The store.
    pub store: StoreConfig,
    /// The `system_id` the gateway answers binds with.
    pub system_id: String,
    /// Messages accepted and not yet forwarded, at most; beyond it
    /// submissions get `ESME_RMSGQFUL`.
    pub max_queued: usize,
    /// The loop guard: a submission that has already been forwarded this
    /// many times by gateways (the hop count it carries, see the crate
    /// documentation) is refused with `ESME_RINVDSTADR`
    /// ([`DEFAULT_MAX_HOPS`]; at least 1).
    pub max_hops: u8,
    /// How long an upstream receipt whose upstream id is not (yet) known is
    /// held before it is given up (logged): a receipt for a message that
    /// did not go through this gateway would otherwise be kept forever.
    pub hold_for: Duration,
    /// How long a message is kept once final (delivered, failed).
    pub retention: Duration,
    /// Binds per account at most (more get `ESME_RBINDFAIL`).
    pub max_binds_per_account: Option<usize>,
    /// SMS parts per second per account at most (more get `ESME_RTHROTTLED`).
    pub tps_per_account: Option<u32>,
    /// SMS parts per second per account and source address at most (more
    /// get `ESME_RTHROTTLED`; an operator's limit per sender id).
    pub tps_per_sender: Option<u32>,
    /// Where MO messages from upstreams go, first match wins.
    pub mo_routes: Vec<MoRouteConfig>,
    /// How long a forwarded message waits for its upstream's receipt; then
    /// it ends as `UNKNOWN` (with a receipt saying so, if one was asked for).
    pub receipt_timeout: Duration,
    /// Failed binds from one address before it is locked out (`None`: no
    /// lockout); the same rule and default as `smpp serve`.
    pub bind_failure_limit: Option<BindFailureLimit>,
    /// Prepaid quotas of accounts at their first start.
    pub balances: Vec<BalanceConfig>,
    /// Named distribution lists of accounts, for `submit_multi`.
    pub distribution_lists: Vec<DistributionListConfig>,
    /// Receipts owed to one account at most, before its new submissions
    /// are refused (`ESME_RMSGQFUL`, HTTP 503): memory stays bounded when a
    /// customer does not take its receipts.
    pub max_receipts_owed: usize,
    /// Upstream receipts held at most (see [`DEFAULT_MAX_HELD`]).
    pub max_held: usize,
    /// A TLS listener for customers besides the plain one (certificate,
    /// key, and client CAs for mutual TLS), as `smpp serve`'s.
    pub tls: Option<TlsConfig>,
    /// Load balancers whose connections start with a PROXY protocol header
    /// (v1 or v2): the address it carries is what allow-lists, the lockout
    /// and logs see.
    pub proxy_protocol: Vec<Cidr>,
    /// Where to append a CDR (one JSON line) per message that reached a
    /// final state.
    pub cdr: Option<PathBuf>,
    /// With a database several gateways share: how long a node may go
    /// unseen before the others take its work over (its messages, and its
    /// upstream bind slots when its database connection is cut off).
    pub takeover: Duration,
}

/// The default [`GatewayConfig::takeover`].
pub const DEFAULT_TAKEOVER: Duration = Duration::from_secs(15);

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: DEFAULT_LISTEN.into(),
            accounts: Vec::new(),
            upstreams: Vec::new(),
            routes: Vec::new(),
            store: StoreConfig::Path(DEFAULT_STORE.into()),
            system_id: "SMPPGW".into(),
            max_queued: DEFAULT_MAX_QUEUED,
            max_hops: DEFAULT_MAX_HOPS,
            hold_for: DEFAULT_HOLD_FOR,
            retention: DEFAULT_RETENTION,
            max_binds_per_account: None,
            tps_per_account: None,
            tps_per_sender: None,
            mo_routes: Vec::new(),
            receipt_timeout: DEFAULT_RECEIPT_TIMEOUT,
            bind_failure_limit: Some(BindFailureLimit::default()),
            balances: Vec::new(),
            distribution_lists: Vec::new(),
            cdr: None,
            max_receipts_owed: DEFAULT_MAX_RECEIPTS_OWED,
            max_held: DEFAULT_MAX_HELD,
            tls: None,
            proxy_protocol: Vec::new(),
            takeover: DEFAULT_TAKEOVER,
        }
    }
}

/// The TOML file: the same items as the flags, each in its flag's text form
/// (`retention` as a duration: `7d`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    store: Option<PathBuf>,
    memory: Option<bool>,
    /// A PostgreSQL URL (instead of `store`).
    database: Option<String>,
    system_id: Option<String>,
    /// A duration (`7d`, `12h`).
    retention: Option<String>,
    /// A duration (`48h`).
    receipt_timeout: Option<String>,
    /// A duration (`15s`).
    takeover: Option<String>,
    tps: Option<u32>,
    tps_per_sender: Option<u32>,
    max_binds_per_account: Option<usize>,
    max_receipts_owed: Option<usize>,
    max_held: Option<usize>,
    max_hops: Option<u8>,
    /// `N[/WINDOW[/COOLDOWN]]` or `off`, as `--bind-failure-limit`.
    bind_failure_limit: Option<String>,
    #[serde(default)]
    accounts: Vec<String>,
    #[serde(default)]
    upstreams: Vec<String>,
    #[serde(default)]
    routes: Vec<String>,
    #[serde(default)]
    mo_routes: Vec<String>,
    #[serde(default)]
    balances: Vec<String>,
    /// `[[distribution_list]]` tables: `account`, `name`, `members`.
    #[serde(default, rename = "distribution_list")]
    distribution_lists: Vec<DistributionListFile>,
    cdr: Option<PathBuf>,
}

/// A `[[distribution_list]]` table of the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DistributionListFile {
    account: String,
    name: String,
    members: Vec<String>,
}

impl GatewayConfig {
    /// Reads a TOML file and applies it over `self` (lists it gives replace
    /// the current ones).
    pub fn apply_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        self.apply_toml(&text)
            .with_context(|| format!("in {}", path.display()))
    }

    /// [`apply_file`](GatewayConfig::apply_file) on the file's text.
    pub fn apply_toml(&mut self, text: &str) -> anyhow::Result<()> {
        let file: FileConfig = toml::from_str(text)?;
        if let Some(listen) = file.listen {
            self.listen = listen;
        }
        if let Some(id) = file.system_id {
            self.system_id = id;
        }
        if file.tps.is_some() {
            self.tps_per_account = file.tps;
        }
        if file.tps_per_sender.is_some() {
            self.tps_per_sender = file.tps_per_sender;
        }
        if file.max_binds_per_account.is_some() {
            self.max_binds_per_account = file.max_binds_per_account;
        }
        if let Some(timeout) = file.receipt_timeout {
            self.receipt_timeout = humantime::parse_duration(&timeout)
                .map_err(|e| anyhow::anyhow!("receipt_timeout {timeout:?}: {e}"))?;
        }
        if let Some(takeover) = file.takeover {
            self.takeover = humantime::parse_duration(&takeover)
                .map_err(|e| anyhow::anyhow!("takeover {takeover:?}: {e}"))?;
        }
        if let Some(n) = file.max_receipts_owed {
            self.max_receipts_owed = n;
        }
        if let Some(n) = file.max_held {
            self.max_held = n;
        }
        if let Some(n) = file.max_hops {
            self.max_hops = n;
        }
        if let Some(limit) = file.bind_failure_limit {
            self.bind_failure_limit = smpp_server::config::parse_bind_failure_limit(&limit)?;
        }
        if let Some(retention) = file.retention {
            self.retention = humantime::parse_duration(&retention)
                .map_err(|e| anyhow::anyhow!("retention {retention:?}: {e}"))?;
        }
        if file.memory == Some(true) {
            self.store = StoreConfig::Memory;
        } else if let Some(url) = file.database {
            self.store = StoreConfig::Postgres(url);
        } else if let Some(dir) = file.store {
            self.store = StoreConfig::Path(dir);
        }
        if !file.accounts.is_empty() {
            self.accounts = parse_all(&file.accounts, "account")?;
        }
        if !file.upstreams.is_empty() {
            self.upstreams = parse_all(&file.upstreams, "upstream")?;
        }
        if !file.routes.is_empty() {
            self.routes = parse_all(&file.routes, "route")?;
        }
        if !file.mo_routes.is_empty() {
            self.mo_routes = parse_all(&file.mo_routes, "MO route")?;
        }
        if !file.balances.is_empty() {
            self.balances = parse_all(&file.balances, "balance")?;
        }
        if !file.distribution_lists.is_empty() {
            self.distribution_lists = file
                .distribution_lists
                .into_iter()
                .map(|d| DistributionListConfig::new(d.account, d.name, d.members))
                .collect::<Result<_, String>>()
                .map_err(anyhow::Error::msg)?;
        }
        if file.cdr.is_some() {
            self.cdr = file.cdr;
        }
        Ok(())
    }

    /// Checks what parsing alone cannot: unique upstream names, routes that
    /// name known upstreams, at least one account and one upstream.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.accounts.is_empty() {
            anyhow::bail!("no account: give at least one --account ID:PASSWORD");
        }
        for a in &self.accounts {
            smpp_server::credentials::Secret::new(&a.password)
                .map_err(|e| anyhow::anyhow!("account {}: password: {e}", a.system_id))?;
        }
        if self.tps_per_account == Some(0)
            || self.tps_per_sender == Some(0)
            || self.max_binds_per_account == Some(0)
        {
            anyhow::bail!("the rate and bind limits must be at least 1");
        }
        if self.max_hops == 0 {
            anyhow::bail!("max_hops must be at least 1");
        }
        if self.max_receipts_owed == 0 || self.max_held == 0 || self.max_queued == 0 {
            anyhow::bail!("the queue limits must be at least 1");
        }
        if self.retention.is_zero() || self.receipt_timeout.is_zero() {
            anyhow::bail!("the retention and the receipt timeout must be positive");
        }
        // A durable store may hold connectors added through the admin API
        // (checked with them at start); in memory, only these exist.
        let memory = self.store == StoreConfig::Memory;
        if memory && self.upstreams.is_empty() {
            anyhow::bail!("no upstream: give at least one --upstream NAME=ID:PASSWORD@HOST:PORT");
        }
        for (i, u) in self.upstreams.iter().enumerate() {
            if self.upstreams[..i].iter().any(|o| o.name == u.name) {
                anyhow::bail!("upstream {:?} is given twice", u.name);
            }
        }
        for (i, d) in self.distribution_lists.iter().enumerate() {
            if self.distribution_lists[..i]
                .iter()
                .any(|o| o.account == d.account && o.name == d.name)
            {
                anyhow::bail!(
                    "distribution list {:?} of {:?} is given twice",
                    d.name,
                    d.account
                );
            }
        }
        for route in self.routes.iter().filter(|_| memory) {
            for name in route.upstreams() {
                if !self.upstreams.iter().any(|u| u.name == name) {
                    anyhow::bail!(
                        "route {:?} names an unknown upstream {name:?}",
                        route.prefix
                    );
                }
            }
        }
        for b in &self.balances {
            if !self.accounts.iter().any(|a| a.system_id == b.account) {
                anyhow::bail!("balance for an unknown account {:?}", b.account);
            }
        }
        for route in self.mo_routes.iter().filter(|r| r.url.is_none()) {
            if !self.accounts.iter().any(|a| a.system_id == route.account) {
                anyhow::bail!(
                    "MO route {:?} names an unknown account {:?}",
                    route.prefix,
                    route.account
                );
            }
        }
        Ok(())
    }

    /// The routes in force: the configured ones, or one default route
    /// over every upstream in the order given.
    pub fn effective_routes(&self) -> Vec<RouteConfig> {
        if self.routes.is_empty() {
            vec![default_route(&self.upstreams)]
        } else {
            self.routes.clone()
        }
    }
}

/// The route used when none is configured: every upstream, a failover
/// list in the order given.
pub(crate) fn default_route(upstreams: &[UpstreamConfig]) -> RouteConfig {
    RouteConfig::new(
        "",
        upstreams
            .iter()
            .map(|u| vec![(u.name.clone(), 1)])
            .collect(),
    )
}

fn parse_all<T: FromStr<Err = String>>(items: &[String], what: &str) -> anyhow::Result<Vec<T>> {
    items
        .iter()
        .map(|s| s.parse().map_err(|e| anyhow::anyhow!("{what} {s:?}: {e}")))
        .collect()
}

/// A named distribution list of one account: a `submit_multi` naming it
/// (`dest_flag` 2) goes to each of its members, as if each were given as
/// an SME address; a name the account has no list of is answered
/// `ESME_RINVDLNAME` for that destination (in `unsuccess_smes`).
///
/// Text form: `ACCOUNT:NAME=ADDR,ADDR,...` (the part after `ACCOUNT:` as
/// `smpp serve --distribution-list` takes it: a name of 1 to 20
/// characters, 1 to 1000 addresses of 1 to 20 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributionListConfig {
    /// The account whose list it is.
    pub account: String,
    /// Its name (`dl_name`).
    pub name: String,
    /// Its members' addresses.
    pub members: Vec<String>,
}

impl DistributionListConfig {
    /// A checked list.
    pub fn new(
        account: impl Into<String>,
        name: impl Into<String>,
        members: Vec<String>,
    ) -> Result<DistributionListConfig, String> {
        let (account, name) = (account.into(), name.into());
        if account.is_empty() {
            return Err(format!("distribution list {name:?}: no account"));
        }
        smpp_server::config::check_distribution_list(&name, &members)?;
        Ok(DistributionListConfig {
            account,
            name,
            members,
        })
    }
}

impl FromStr for DistributionListConfig {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (account, list) = s
            .split_once(':')
            .ok_or("expected ACCOUNT:NAME=ADDR,ADDR,...")?;
        let (name, members) = smpp_server::config::parse_distribution_list(list)?;
        DistributionListConfig::new(account.trim(), name, members)
    }
}

/// One upstream connector: a pool of transceiver binds to an SMSC.
///
/// Text form: `NAME=SYSTEM_ID:PASSWORD@HOST:PORT[,binds=N][,window=W][,tps=T][,ids=FORMAT]`
/// `[,system_type=T][,tls][,ca=PEM][,source=ADDR][,queue=N][,bind=KIND]` (`ca` implies `tls`;
/// `source` replaces the source address of what goes there; `queue` caps
/// the messages waiting for this connector, see [`UpstreamConfig::queue`];
/// `bind` is `trx`, `tx`, `rx` or `tx+rx`, see [`ConnectorBind`]),
/// where `FORMAT` is how the SMSC writes its message ids: `text` (the
/// default: as is, case-insensitive), `hex`, `decimal` or `auto`; or
/// `SUBMIT/RECEIPT` when its `submit_sm_resp` and its receipt texts differ
/// (`hex/decimal`). Numeric ids match whatever their leading zeros.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// The connector's name (used by routes and in the id map).
    pub name: String,
    /// The `system_id` to bind with.
    pub system_id: String,
    /// The password to bind with.
    pub password: String,
    /// `host:port` of the SMSC.
    pub addr: String,
    /// Binds in the pool (at least 1).
    pub binds: usize,
    /// Requests in flight per bind.
    pub window: usize,
    /// Submits per second for the whole pool, if limited.
    pub tps: Option<u32>,
    /// How the SMSC writes message ids (in `submit_sm_resp` and receipts).
    pub ids: MessageIdFormat,
    /// The `system_type` to bind with.
    pub system_type: String,
    /// Connect over TLS.
    pub tls: bool,
    /// With TLS: the PEM file of the certificate authorities to trust (the
    /// web PKI's roots without one).
    pub ca: Option<PathBuf>,
    /// The source address every message forwarded here gets (an SMSC that
    /// allows only its own sender ids).
    pub source: Option<String>,
    /// The most messages that may wait, accepted and not yet handed to
    /// one of its binds, in the queues of the routes that lead here (no
    /// limit but [`GatewayConfig::max_queued`] when `None`). A message
    /// whose route leads only to connectors at their limit is refused
    /// with `ESME_RMSGQFUL` (HTTP: the full-queue answer), nothing stored
    /// or charged.
    pub queue: Option<usize>,
    /// The kind of its binds.
    pub bind: ConnectorBind,
}

/// How a connector binds to its SMSC (`bind=` in the text form).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConnectorBind {
    /// `trx` (the default): transceivers, so receipts and MO come back on
    /// the binds that submit.
    #[default]
    Transceiver,
    /// `tx`: transmitters only: the SMSC has no bind of ours to send
    /// receipts or MO on (a message sent here whose customer asked for a
    /// receipt ends `UNKNOWN` after the receipt timeout).
    Transmitter,
    /// `rx`: receivers only: MO and receipts come in, nothing is sent
    /// (a route to it never forwards).
    Receiver,
    /// `tx+rx`: a transmitter and a receiver per bind slot (`binds=N`
    /// gives N of each), for SMSCs that take no transceivers; receipts and
    /// MO come back on the receivers.
    TransmitterAndReceiver,
}

impl ConnectorBind {
    /// Its text form.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorBind::Transceiver => "trx",
            ConnectorBind::Transmitter => "tx",
            ConnectorBind::Receiver => "rx",
            ConnectorBind::TransmitterAndReceiver => "tx+rx",
        }
    }

    /// Whether its binds submit.
    pub fn sends(self) -> bool {
        self != ConnectorBind::Receiver
    }
}

impl FromStr for ConnectorBind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "trx" | "transceiver" => Ok(ConnectorBind::Transceiver),
            "tx" | "transmitter" => Ok(ConnectorBind::Transmitter),
            "rx" | "receiver" => Ok(ConnectorBind::Receiver),
            "tx+rx" | "rx+tx" => Ok(ConnectorBind::TransmitterAndReceiver),
            _ => Err(format!("unknown bind kind {s:?} (trx, tx, rx or tx+rx)")),
        }
    }
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("name", &self.name)
            .field("system_id", &self.system_id)
            .field("addr", &self.addr)
            .field("binds", &self.binds)
            .field("window", &self.window)
            .field("tps", &self.tps)
            .field("ids", &self.ids)
            .field("system_type", &self.system_type)
            .field("tls", &self.tls)
            .field("ca", &self.ca)
            .field("source", &self.source)
            .field("queue", &self.queue)
            .field("bind", &self.bind)
            .finish_non_exhaustive()
    }
}

impl UpstreamConfig {
    /// An upstream with one bind, window 64, no rate limit, text ids.
    pub fn new(
        name: impl Into<String>,
        system_id: impl Into<String>,
        password: impl Into<String>,
        addr: impl Into<String>,
    ) -> UpstreamConfig {
        UpstreamConfig {
            name: name.into(),
            system_id: system_id.into(),
            password: password.into(),
            addr: addr.into(),
            binds: 1,
            window: 64,
            tps: None,
            ids: text_ids(),
            system_type: String::new(),
            tls: false,
            ca: None,
            source: None,
            queue: None,
            bind: ConnectorBind::Transceiver,
        }
    }
}

impl UpstreamConfig {
    /// The text form (what [`FromStr`] reads back), password included.
    pub fn spec(&self) -> String {
        let radix = |r: IdRadix| match r {
            IdRadix::Text => "text",
            IdRadix::Hex => "hex",
            IdRadix::Decimal => "decimal",
            IdRadix::Auto => "auto",
        };
        let mut spec = format!(
            "{}={}:{}@{},binds={},window={},ids={}/{}",
            self.name,
            self.system_id,
            self.password,
            self.addr,
            self.binds,
            self.window,
            radix(self.ids.submit_response),
            radix(self.ids.receipt)
        );
        if let Some(tps) = self.tps {
            spec.push_str(&format!(",tps={tps}"));
        }
        if !self.system_type.is_empty() {
            spec.push_str(&format!(",system_type={}", self.system_type));
        }
        if self.tls {
            spec.push_str(",tls");
        }
        if let Some(ca) = &self.ca {
            spec.push_str(&format!(",ca={}", ca.display()));
        }
        if let Some(source) = &self.source {
            spec.push_str(&format!(",source={source}"));
        }
        if let Some(queue) = self.queue {
            spec.push_str(&format!(",queue={queue}"));
        }
        if self.bind != ConnectorBind::Transceiver {
            spec.push_str(&format!(",bind={}", self.bind.as_str()));
        }
        spec
    }

    /// A connector from separate fields (the admin API's and the
    /// dashboard's forms), through the `--upstream` parser so that all three
    /// check the same; `options` are `key=value` options (empty values
    /// skipped).
    pub fn from_fields(
        name: &str,
        system_id: &str,
        password: &str,
        address: &str,
        options: &[(&str, String)],
        tls: bool,
    ) -> Result<UpstreamConfig, String> {
        let fields = [
            ("name", name),
            ("system_id", system_id),
            ("address", address),
        ];
        let values = options.iter().map(|(k, v)| (*k, v.as_str()));
        for (field, value) in fields.into_iter().chain(values) {
            if value.contains([',', '@', '=']) {
                return Err(format!("{field} cannot hold ',', '@' or '='"));
            }
        }
        if system_id.contains(':') || system_id.len() > 15 {
            return Err("system_id: up to 15 characters, no ':'".into());
        }
        if password.len() > 8 {
            // What bind PDUs carry (SMPP 3.4: 9 octets with the NUL).
            return Err("password: up to 8 characters".into());
        }
        let mut spec = format!(
            "{}={}:{password}@{}",
            name.trim(),
            system_id.trim(),
            address.trim()
        );
        for (key, value) in options {
            if !value.trim().is_empty() {
                spec.push_str(&format!(",{key}={}", value.trim()));
            }
        }
        if tls {
            spec.push_str(",tls");
        }
        let upstream: UpstreamConfig = spec.parse()?;
        upstream.check_spec()?;
        Ok(upstream)
    }

    /// Checks that the text form reads back as `self` (a value with a
    /// `,` where the form cannot hold one does not).
    pub fn check_spec(&self) -> Result<(), String> {
        match self.spec().parse::<UpstreamConfig>() {
            Ok(back) if back == *self => Ok(()),
            Ok(_) => Err(format!(
                "upstream {:?}: a value holds a character the configuration cannot keep (',' or '=')",
                self.name
            )),
            Err(e) => Err(format!("upstream {:?}: {e}", self.name)),
        }
    }
}

/// Ids taken as they are, compared case-insensitively.
fn text_ids() -> MessageIdFormat {
    MessageIdFormat {
        submit_response: IdRadix::Text,
        receipt: IdRadix::Text,
    }
}

fn parse_radix(s: &str) -> Result<IdRadix, String> {
    match s.to_ascii_lowercase().as_str() {
        "text" => Ok(IdRadix::Text),
        "hex" => Ok(IdRadix::Hex),
        "decimal" | "dec" => Ok(IdRadix::Decimal),
        "auto" => Ok(IdRadix::Auto),
        _ => Err(format!(
            "unknown id format {s:?} (text, hex, decimal or auto)"
        )),
    }
}

impl FromStr for UpstreamConfig {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        const FORM: &str =
            "expected NAME=SYSTEM_ID:PASSWORD@HOST:PORT[,binds=N][,window=W][,tps=T][,ids=FORMAT]";
        let (name, rest) = s
            .split_once('=')
            .filter(|(n, _)| !n.is_empty())
            .ok_or(FORM)?;
        // Options come after the address, which has no ','; the password
        // may contain ':' and '@' (the address follows the last '@').
        let (head, options) = match rest.rfind('@') {
            Some(at) => match rest[at..].find(',') {
                Some(comma) => (&rest[..at + comma], Some(&rest[at + comma + 1..])),
                None => (rest, None),
            },
            None => return Err(FORM.into()),
        };
        let (credentials, addr) = head.rsplit_once('@').ok_or(FORM)?;
        let (system_id, password) = credentials
            .split_once(':')
            .filter(|(id, _)| !id.is_empty())
            .ok_or(FORM)?;
        if addr
            .rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            return Err(format!("bad address {addr:?}: expected HOST:PORT"));
        }
        let mut upstream = UpstreamConfig::new(name, system_id, password, addr);
        for option in options.into_iter().flat_map(|o| o.split(',')) {
            if option == "tls" {
                upstream.tls = true;
                continue;
            }
            let (key, value) = option
                .split_once('=')
                .ok_or_else(|| format!("bad option {option:?}: expected KEY=VALUE or tls"))?;
            let number = || {
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("bad {key}: {value:?} (a positive number)"))
            };
            match key {
                "binds" => upstream.binds = number()? as usize,
                "window" => upstream.window = number()? as usize,
                "tps" => upstream.tps = Some(number()?),
                "queue" => upstream.queue = Some(number()? as usize),
                "bind" => upstream.bind = value.parse()?,
                "ids" => {
                    // One format for both, or SUBMIT/RECEIPT.
                    let (submit, receipt) = value.split_once('/').unwrap_or((value, value));
                    upstream.ids = MessageIdFormat {
                        submit_response: parse_radix(submit)?,
                        receipt: parse_radix(receipt)?,
                    };
                }
                "system_type" if value.len() <= 12 => upstream.system_type = value.to_owned(),
                "ca" => {
                    upstream.ca = Some(PathBuf::from(value));
                    upstream.tls = true;
                }
                "source" if !value.is_empty() && value.len() <= 20 => {
                    upstream.source = Some(value.to_owned());
                }
                _ => {
                    return Err(format!(
                        "unknown option {key:?} (binds, window, tps, ids, system_type, tls, ca, source, queue, bind)"
                    ))
                }
            }
        }
        Ok(upstream)
    }
}

/// A route: messages to destinations starting with `prefix` (and, when
/// given, of one account, from sources starting with a prefix) go to its
/// connectors.
///
/// Text form: `PREFIX=TIER[,TIER...][,rate=PRICE][,account=ID][,from=PREFIX]`,
/// where each `TIER` is `UPSTREAM[:WEIGHT][+UPSTREAM[:WEIGHT]...]`: tiers
/// are tried in order (failover), and the upstreams of one tier share its
/// traffic by weight (1 by default). `*` or an empty prefix matches every
/// destination. `rate` is the price of one SMS part on this route (charged
/// to accounts with a balance, written in the CDR), 0 when not given.
/// `hours=`, `days=` and `tz=` limit it to a time window ([`TimeWindow`]);
/// `re=REGEX`, last, to destinations a regular expression matches.
/// Examples: `44=a,b` (a, failing over to b), `*=a:3+b:1,c` (a and b share
/// 3:1, c when neither is up), `447=vip,account=bank,rate=0.04`,
/// `*=night,hours=22:00-06:00`, `*=a,re=^33[67]\d{8}$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// The destination prefix ("" matches all).
    pub prefix: String,
    /// The tiers, in failover order: (upstream, weight) each.
    pub tiers: Vec<Vec<(String, u32)>>,
    /// The price of one SMS part, in millionths of the currency.
    pub rate: Micros,
    /// Only this account's messages.
    pub account: Option<String>,
    /// Only messages whose source address starts with this.
    pub source: Option<String>,
    /// Only destinations this regular expression matches (besides the
    /// prefix; anchor it with `^...$` to match the whole address).
    pub pattern: Option<String>,
    /// Only while the clock is in this window.
    pub window: Option<TimeWindow>,
}

impl RouteConfig {
    /// A route of `prefix` to one tier of `upstreams` (weight 1 each).
    pub fn new(prefix: impl Into<String>, tiers: Vec<Vec<(String, u32)>>) -> RouteConfig {
        RouteConfig {
            prefix: prefix.into(),
            tiers,
            rate: 0,
            account: None,
            source: None,
            pattern: None,
            window: None,
        }
    }

    /// Every upstream the route names, tiers in order.
    pub fn upstreams(&self) -> impl Iterator<Item = &str> {
        self.tiers.iter().flatten().map(|(name, _)| name.as_str())
    }

    /// What decides whether a message takes the route (two routes with the
    /// same key are the same route, with possibly other upstreams or rate).
    pub fn key(&self) -> String {
        let mut key = if self.prefix.is_empty() {
            "*".to_owned()
        } else {
            self.prefix.clone()
        };
        for (name, value) in [
            ("account", self.account.clone()),
            ("from", self.source.clone()),
            ("re", self.pattern.clone()),
            ("window", self.window.map(|w| w.to_string())),
        ] {
            if let Some(v) = value {
                key.push_str(&format!(",{name}={v}"));
            }
        }
        key
    }

    /// The text form (what [`FromStr`] reads back).
    pub fn spec(&self) -> String {
        let prefix = if self.prefix.is_empty() {
            "*"
        } else {
            self.prefix.as_str()
        };
        let tiers: Vec<String> = self
            .tiers
            .iter()
            .map(|tier| {
                tier.iter()
                    .map(|(name, w)| {
                        if *w == 1 {
                            name.clone()
                        } else {
                            format!("{name}:{w}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect();
        let mut spec = format!("{prefix}={}", tiers.join(","));
        if self.rate != 0 {
            spec.push_str(&format!(
                ",rate={}",
                crate::billing::format_money(self.rate)
            ));
        }
        if let Some(a) = &self.account {
            spec.push_str(&format!(",account={a}"));
        }
        if let Some(s) = &self.source {
            spec.push_str(&format!(",from={s}"));
        }
        if let Some(w) = &self.window {
            spec.push_str(&format!(",{}", w.options()));
        }
        // Last: a regular expression may hold ',' and '='.
        if let Some(p) = &self.pattern {
            spec.push_str(&format!(",re={p}"));
        }
        spec
    }
}

/// When a route applies: days of the week and a time of day range, at a
/// fixed offset from UTC.
///
/// Text form (route options): `hours=HH:MM-HH:MM` (the end excluded; a
/// range past midnight such as `22:00-06:00` wraps), `days=mon-fri` or
/// `days=sat+sun` (a range or a `+` list; every day when not given), and
/// `tz=+HH:MM` or `tz=-HH:MM` (UTC when not given). The days are those of
/// the window's start: `days=fri,hours=22:00-06:00` is Friday 22:00 to
/// Saturday 06:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// Bit 0 Monday ... bit 6 Sunday.
    pub days: u8,
    /// Start, minutes after midnight.
    pub from: u16,
    /// End (excluded), minutes after midnight; equal to `from`: all day.
    pub to: u16,
    /// Minutes east of UTC.
    pub offset: i16,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl TimeWindow {
    /// Every day, all day, UTC.
    pub const ALWAYS: TimeWindow = TimeWindow {
        days: 0x7f,
        from: 0,
        to: 0,
        offset: 0,
    };

    /// Whether `unix_seconds` falls in the window.
    pub fn contains(&self, unix_seconds: i64) -> bool {
        let local = unix_seconds + i64::from(self.offset) * 60;
        let minute = local.div_euclid(60).rem_euclid(24 * 60) as u16;
        // 1970-01-01 was a Thursday (day 3 from Monday).
        let day = (local.div_euclid(86_400) + 3).rem_euclid(7) as u8;
        let day_before = (day + 6) % 7;
        let on = |d: u8| self.days & (1 << d) != 0;
        if self.from == self.to {
            on(day)
        } else if self.from < self.to {
            on(day) && (self.from..self.to).contains(&minute)
        } else {
            // Past midnight: the evening part on its day, the morning
            // part belongs to the day before.
            (minute >= self.from && on(day)) || (minute < self.to && on(day_before))
        }
    }

    /// The route options that give this window.
    fn options(&self) -> String {
        let mut parts = Vec::new();
        if self.from != self.to {
            parts.push(format!(
                "hours={:02}:{:02}-{:02}:{:02}",
                self.from / 60,
                self.from % 60,
                self.to / 60,
                self.to % 60
            ));
        }
        if self.days != 0x7f {
            let days: Vec<&str> = (0..7)
                .filter(|d| self.days & (1 << d) != 0)
                .map(|d| DAYS[d])
                .collect();
            parts.push(format!("days={}", days.join("+")));
        }
        if self.offset != 0 {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let m = self.offset.unsigned_abs();
            parts.push(format!("tz={sign}{:02}:{:02}", m / 60, m % 60));
        }
        parts.join(",")
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "hours" => {
                let (from, to) = value
                    .split_once('-')
                    .ok_or_else(|| format!("bad hours {value:?}: expected HH:MM-HH:MM"))?;
                self.from = clock_minutes(from)?;
                self.to = clock_minutes(to)?;
                if self.from == self.to {
                    return Err(format!("empty hours {value:?}"));
                }
            }
            "days" => {
                let day = |d: &str| {
                    DAYS.iter()
                        .position(|n| n.eq_ignore_ascii_case(d.trim()))
                        .ok_or_else(|| format!("unknown day {d:?} (mon ... sun)"))
                };
                let mut mask = 0u8;
                for item in value.split('+') {
                    match item.split_once('-') {
                        Some((a, b)) => {
                            let (a, b) = (day(a)?, day(b)?);
                            let mut d = a;
                            loop {
                                mask |= 1 << d;
                                if d == b {
                                    break;
                                }
                                d = (d + 1) % 7;
                            }
                        }
                        None => mask |= 1 << day(item)?,
                    }
                }
                self.days = mask;
            }
            "tz" => {
                let (sign, rest) = match value.as_bytes().first() {
                    Some(b'+') => (1, &value[1..]),
                    Some(b'-') => (-1, &value[1..]),
                    _ => return Err(format!("bad tz {value:?}: expected +HH:MM or -HH:MM")),
                };
                let m = clock_minutes(rest)?;
                if m > 14 * 60 {
                    return Err(format!("bad tz {value:?}"));
                }
                self.offset = sign * m as i16;
            }
            _ => unreachable!("only hours, days and tz"),
        }
        Ok(())
    }
}

impl std::fmt::Display for TimeWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.options())
    }
}

fn clock_minutes(s: &str) -> Result<u16, String> {
    let bad = || format!("bad time {s:?}: expected HH:MM");
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok((h * 60 + m) % (24 * 60))
}

impl FromStr for RouteConfig {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (prefix, list) = s
            .split_once('=')
            .ok_or("expected PREFIX=UPSTREAM[,UPSTREAM...][,rate=PRICE]")?;
        let prefix = match prefix.trim() {
            "*" => String::new(),
            p => p.to_owned(),
        };
        // `re=` comes last and takes the rest (a regular expression may
        // hold ',').
        let (list, pattern) = match list
            .match_indices("re=")
            .map(|(at, _)| at)
            .find(|&at| at == 0 || list[..at].ends_with(','))
        {
            Some(at) => (&list[..at], Some(list[at + 3..].to_owned())),
            None => (list, None),
        };
        let mut route = RouteConfig::new(prefix, Vec::new());
        if let Some(p) = pattern {
            regex::Regex::new(&p).map_err(|e| format!("bad re {p:?}: {e}"))?;
            if p.len() > 1000 {
                return Err("a route's re is limited to 1,000 characters".into());
            }
            route.pattern = Some(p);
        }
        for item in list.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            match item.split_once('=') {
                Some((key @ ("hours" | "days" | "tz"), value)) => {
                    route
                        .window
                        .get_or_insert(TimeWindow::ALWAYS)
                        .set(key, value)?;
                }
                Some(("rate", price)) => {
                    route.rate = parse_money(price)?;
                    if route.rate < 0 {
                        return Err("a route's rate cannot be negative".into());
                    }
                }
                Some(("account", id)) if !id.is_empty() => route.account = Some(id.to_owned()),
                Some(("from", source)) => route.source = Some(source.to_owned()),
                Some((key, _)) => {
                    return Err(format!(
                        "unknown route option {key:?} (rate, account, from, hours, days, tz, re)"
                    ))
                }
                None => {
                    let mut tier = Vec::new();
                    for member in item.split('+').map(str::trim) {
                        let (name, weight) = match member.split_once(':') {
                            Some((name, w)) => (
                                name,
                                w.parse::<u32>()
                                    .ok()
                                    .filter(|w| (1..=1000).contains(w))
                                    .ok_or_else(|| format!("bad weight {w:?} (1 to 1000)"))?,
                            ),
                            None => (member, 1),
                        };
                        if name.is_empty() {
                            return Err(format!("empty upstream name in {item:?}"));
                        }
                        tier.push((name.to_owned(), weight));
                    }
                    route.tiers.push(tier);
                }
            }
        }
        if route.tiers.is_empty() {
            return Err("a route needs at least one upstream".into());
        }
        Ok(route)
    }
}

/// An account's prepaid quota at its first start.
///
/// Text form: `ACCOUNT=AMOUNT` (money, e.g. `esme=25.50`) or
/// `ACCOUNT=Nsms` (an SMS count, e.g. `esme=5000sms`); both may be given
/// for one account. Applied only when the store has no quota for the
/// account yet (a restart does not refill it); change it later through
/// the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceConfig {
    /// The account.
    pub account: String,
    /// The quota.
    pub quota: Quota,
}

impl FromStr for BalanceConfig {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (account, amount) = s
            .split_once('=')
            .filter(|(a, _)| !a.trim().is_empty())
            .ok_or("expected ACCOUNT=AMOUNT or ACCOUNT=Nsms")?;
        let amount = amount.trim();
        let mut quota = Quota::default();
        if let Some(count) = amount.strip_suffix("sms") {
            let n: i64 = count
                .trim()
                .parse()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| format!("bad SMS count {count:?}"))?;
            quota.sms = Some(n);
        } else {
            let money = parse_money(amount)?;
            if money < 0 {
                return Err("a balance cannot start negative".into());
            }
            quota.balance = Some(money);
        }
        Ok(BalanceConfig {
            account: account.trim().to_owned(),
            quota,
        })
    }
}

/// An MO route: messages from upstreams (not receipts) whose destination
/// starts with `prefix` go to `account`'s receiver binds, or to an HTTP
/// receiver in Jasmin's MO format (`id`, `from`, `to`,
/// `origin-connector`, `priority`, `coding`, `validity`, `content`,
/// `binary`), retried until it answers 2xx.
///
/// Text form: `PREFIX=ACCOUNT` or `PREFIX=URL[,method=post]` (GET by
/// default); `*` or an empty prefix matches all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoRouteConfig {
    /// The destination prefix (a short code, a number range; "" matches all).
    pub prefix: String,
    /// The account (`system_id`) they go to (empty with a URL).
    pub account: String,
    /// The HTTP receiver they go to instead, and whether by POST.
    pub url: Option<(String, bool)>,
}

impl FromStr for MoRouteConfig {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (prefix, target) = s
            .split_once('=')
            .ok_or("expected PREFIX=ACCOUNT or PREFIX=URL")?;
        let target = target.trim();
        if target.is_empty() {
            return Err("an MO route needs an account or a URL".into());
        }
        let prefix = match prefix.trim() {
            "*" => String::new(),
            p => p.to_owned(),
        };
        if target.starts_with("http://") || target.starts_with("https://") {
            let (url, post) = match target.rsplit_once(",method=") {
                Some((url, m)) if m.eq_ignore_ascii_case("post") => (url, true),
                Some((url, m)) if m.eq_ignore_ascii_case("get") => (url, false),
                Some((_, m)) => return Err(format!("bad method {m:?} (get or post)")),
                None => (target, false),
            };
            return Ok(MoRouteConfig {
                prefix,
                account: String::new(),
                url: Some((url.to_owned(), post)),
            });
        }
        Ok(MoRouteConfig {
            prefix,
            account: target.to_owned(),
            url: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_parse_with_options() {
        let u: UpstreamConfig = "a=sys:p@ss:w@smsc.example:2775,binds=4,window=32,tps=100,ids=hex"
            .parse()
            .unwrap();
        assert_eq!(u.name, "a");
        assert_eq!(u.system_id, "sys");
        assert_eq!(u.password, "p@ss:w");
        assert_eq!(u.addr, "smsc.example:2775");
        assert_eq!((u.binds, u.window, u.tps), (4, 32, Some(100)));
        assert_eq!(u.ids.receipt, IdRadix::Hex);
        let mixed: UpstreamConfig = "m=s:p@h:1,ids=hex/decimal".parse().unwrap();
        assert_eq!(mixed.ids.submit_response, IdRadix::Hex);
        assert_eq!(mixed.ids.receipt, IdRadix::Decimal);
        let secure: UpstreamConfig = "s=sys:pw@h:3550,tls,system_type=VMA,source=Acme"
            .parse()
            .unwrap();
        assert!(secure.tls && secure.ca.is_none());
        assert_eq!(
            (secure.system_type.as_str(), secure.source.as_deref()),
            ("VMA", Some("Acme"))
        );
        let pinned: UpstreamConfig = "s=sys:pw@h:3550,ca=/etc/smsc-ca.pem".parse().unwrap();
        assert!(pinned.tls);
        let plain: UpstreamConfig = "b=sys:pw@127.0.0.1:1".parse().unwrap();
        assert_eq!((plain.binds, plain.ids.receipt), (1, IdRadix::Text));
        for bad in [
            "sys:pw@h:1",
            "a=sys:pw@h",
            "a=syspw@h:1",
            "a=sys:pw@h:1,binds=0",
            "a=sys:pw@h:1,colour=red",
            "a=sys:pw@h:1,ids=roman",
            "a=sys:pw@h:1,queue=0",
        ] {
            assert!(bad.parse::<UpstreamConfig>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_queue_limit_reads_back() {
        let u: UpstreamConfig = "q=sys:pw@h:1,queue=500".parse().unwrap();
        assert_eq!(u.queue, Some(500));
        assert_eq!(u.spec().parse::<UpstreamConfig>().unwrap(), u);
        let fields =
            UpstreamConfig::from_fields("q", "sys", "pw", "h:1", &[("queue", "7".into())], false)
                .unwrap();
        assert_eq!(fields.queue, Some(7));
    }

    #[test]
    fn bind_kinds_read_back() {
        for (text, kind) in [
            ("trx", ConnectorBind::Transceiver),
            ("tx", ConnectorBind::Transmitter),
            ("rx", ConnectorBind::Receiver),
            ("tx+rx", ConnectorBind::TransmitterAndReceiver),
        ] {
            let u: UpstreamConfig = format!("k=sys:pw@h:1,bind={text}").parse().unwrap();
            assert_eq!(u.bind, kind);
            assert_eq!(u.spec().parse::<UpstreamConfig>().unwrap(), u);
        }
        assert!("k=sys:pw@h:1,bind=both".parse::<UpstreamConfig>().is_err());
        let plain: UpstreamConfig = "k=sys:pw@h:1".parse().unwrap();
        assert_eq!(plain.bind, ConnectorBind::Transceiver);
    }

    #[test]
    fn distribution_lists_parse_from_flags_and_files() {
        let d: DistributionListConfig = "esme:staff=447700900001, 447700900002".parse().unwrap();
        assert_eq!((d.account.as_str(), d.name.as_str()), ("esme", "staff"));
        assert_eq!(d.members, ["447700900001", "447700900002"]);
        for bad in [
            "staff=1,2",
            ":staff=1",
            "esme:=1",
            "esme:staff=",
            "esme:staff=1,,2",
        ] {
            assert!(bad.parse::<DistributionListConfig>().is_err(), "{bad:?}");
        }
        let mut config = GatewayConfig::default();
        config
            .apply_toml(
                "[[distribution_list]]\naccount = \"esme\"\nname = \"ops\"\nmembers = [\"1\", \"2\"]\n",
            )
            .unwrap();
        assert_eq!(
            config.distribution_lists,
            [DistributionListConfig::new("esme", "ops", vec!["1".into(), "2".into()]).unwrap()]
        );
        assert!(config
            .apply_toml("[[distribution_list]]\naccount = \"esme\"\nname = \"ops\"\nmembers = []\n")
            .is_err());
    }

    #[test]
    fn routes_parse_and_default_to_one_failover_list() {
        let r: RouteConfig = "44=a,b".parse().unwrap();
        assert_eq!(r.prefix, "44");
        assert_eq!(r.upstreams().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(r.rate, 0);
        let priced: RouteConfig = "44=a,rate=0.035,b".parse().unwrap();
        assert_eq!((priced.tiers.len(), priced.rate), (2, 35_000));
        let mixed: RouteConfig = "*=a:3+b,c,account=bank,from=Acme".parse().unwrap();
        assert_eq!(
            mixed.tiers,
            [
                vec![("a".to_owned(), 3), ("b".to_owned(), 1)],
                vec![("c".to_owned(), 1)]
            ]
        );
        assert_eq!(mixed.account.as_deref(), Some("bank"));
        assert_eq!(mixed.source.as_deref(), Some("Acme"));
        for bad in ["44=a:0", "44=a:x", "44=+b", "44=rate=1"] {
            assert!(bad.parse::<RouteConfig>().is_err(), "{bad}");
        }
        assert!("44=a,rate=-1".parse::<RouteConfig>().is_err());
        assert!("44=a,colour=red".parse::<RouteConfig>().is_err());
        let b: BalanceConfig = "esme=25.5".parse().unwrap();
        assert_eq!(b.quota.balance, Some(25_500_000));
        let n: BalanceConfig = "esme=500sms".parse().unwrap();
        assert_eq!((n.quota.sms, n.quota.balance), (Some(500), None));
        for bad in ["esme", "=5", "esme=-1", "esme=xsms", "esme=-3sms"] {
            assert!(bad.parse::<BalanceConfig>().is_err(), "{bad}");
        }
        assert_eq!("*=a".parse::<RouteConfig>().unwrap().prefix, "");
        assert!("44=".parse::<RouteConfig>().is_err());
        let config = GatewayConfig {
            upstreams: vec![
                UpstreamConfig::new("x", "s", "p", "h:1"),
                UpstreamConfig::new("y", "s", "p", "h:2"),
            ],
            ..GatewayConfig::default()
        };
        assert_eq!(
            config.effective_routes()[0].upstreams().collect::<Vec<_>>(),
            ["x", "y"]
        );
    }

    #[test]
    fn the_file_uses_the_flag_forms() {
        let mut config = GatewayConfig::default();
        config
            .apply_toml(
                r#"
                listen = "127.0.0.1:0"
                memory = true
                accounts = ["esme:secret"]
                upstreams = ["a=s:p@127.0.0.1:2775"]
                routes = ["*=a"]
                mo_routes = ["7000=esme"]
                retention = "12h"
                tps = 50
                max_binds_per_account = 2
                "#,
            )
            .unwrap();
        assert_eq!(config.store, StoreConfig::Memory);
        assert_eq!(config.retention, Duration::from_secs(12 * 3600));
        assert_eq!(config.tps_per_account, Some(50));
        assert_eq!(config.mo_routes[0].account, "esme");
        let hook: MoRouteConfig = "7000=https://app.example/mo,method=post".parse().unwrap();
        assert_eq!(hook.url, Some(("https://app.example/mo".into(), true)));
        assert!("7=http://x,method=put".parse::<MoRouteConfig>().is_err());
        assert_eq!(config.max_binds_per_account, Some(2));
        assert_eq!(config.accounts[0].system_id, "esme");
        config.validate().unwrap();
        config.mo_routes = vec!["7=nobody".parse().unwrap()];
        assert!(config.validate().is_err(), "an unknown account");
        config.mo_routes.clear();
        config.routes = vec!["1=nope".parse().unwrap()];
        assert!(config.validate().is_err());
        assert!(GatewayConfig::default().apply_toml("colour = 1").is_err());
        let mut config = GatewayConfig::default();
        config
            .apply_toml(r#"database = "postgres://gw@db.example/smpp""#)
            .unwrap();
        assert_eq!(
            config.store,
            StoreConfig::Postgres("postgres://gw@db.example/smpp".into())
        );
    }
}
