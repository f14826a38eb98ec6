//! What `smpp serve` runs with: [`ServeConfig`], built from the command line
//! and an optional TOML file (`--config`), flags winning over the file.
//!
//! ```toml
//! listen = "127.0.0.1:2775"
//! store = "./smpp-data"        # or: memory = true
//! dlr_delay = "1s"             # receipts within 0..=dlr_delay of the submission
//! max_binds_per_account = 8
//! tps = 500                    # per account; above it: ESME_RTHROTTLED
//! retention = "7d"             # final messages (receipts delivered) older than this are deleted
//!
//! tls_only = false            # true: no plain-TCP listener, [tls] only
//! strict = false              # true: a request carrying a TLV its operation may not carry
//!                             # (in the session's SMPP version) gets ESME_RTLVNOTALLWD
//! proxy_protocol = ["10.0.0.0/8"] # balancers whose connections start with a PROXY header
//! bind_failure_limit = "10/1m/5m" # more than 10 failed binds from one address in 1 minute:
//!                             # its binds get ESME_RBINDFAIL for 5 minutes; "off" disables
//!
//! http = "127.0.0.1:8080"     # HTTP API and /metrics
//! http_token = "$argon2id$..." # bearer token every HTTP request needs (plain or hashed);
//!                             # required when `http` is not a loopback address
//! metrics_open = false        # true: /metrics answers without the token
//! http_tls = false            # true: HTTPS, with the [tls] certificate and key
//!
//! [tls]
//! listen = "127.0.0.1:3775"
//! cert = "cert.pem"
//! key = "key.pem"
//! # client_ca = "clients.pem" # mutual TLS: only clients with a certificate from these CAs
//!
//! [[account]]                  # or [[accounts]]
//! system_id = "smppclient1"
//! password = "password"       # or an argon2id hash from `smpp hash-password`
//! allow = ["127.0.0.0/8", "::1"] # optional: client networks it may bind from
//! # certificate_name = "esme.example" # mutual TLS: binds need a client certificate for this name
//!
//! [[route]]                    # submit_sm to 4470... goes to esme2's receiver (MO)
//! prefix = "4470"
//! account = "esme2"
//!
//! [[rule]]                     # first match wins
//! prefix = "4479"              # destination prefix, and/or
//! contains = "#FAIL"           # a marker in the text
//! state = "UNDELIV"            # final state in the receipt
//! error = 1                    # err: of the receipt
//! # status = "ESME_RTHROTTLED" # answer the submit with this error instead
//! # delay = "2s"               # answer the submit this much later
//!
//! [outcomes]                   # for messages no rule matched: weights
//! DELIVRD = 90
//! UNDELIV = 10
//! ```
//!
//! The optional features (outbind, distribution lists, the USSD menu, the
//! MO feed) add these:
//!
//! ```toml
//! ussd_menu = "menu.toml"      # scripted USSD menu (crate::ussd_menu)
//! mo_csv = "mo.csv"            # MO messages to deliver: from,to,text[,coding]
//! mo_rate = "10/s"             # at this rate
//!
//! [[outbind]]                  # connect to this ESME and send outbind
//! system_id = "esme2"          # the account it binds as over that connection
//! password = "secret"          # sent in the outbind (the ESME checks it)
//! address = "10.0.0.5:2776"    # its outbind listener
//! interval = "30s"             # longest wait between attempts while it is not bound
//!
//! [distribution_lists]         # submit_multi dest_flag=2 (dl_name) expands to these
//! staff = ["447700900001", "447700900002"]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::Deserialize;
use smpp_proto::message::MessageState;
use smpp_proto::pdu::CommandStatus;

use crate::ussd_menu::UssdMenu;

mod features;
mod security;
pub use features::{
    check_distribution_list, parse_distribution_list, OutbindTarget, Rate,
    DEFAULT_OUTBIND_INTERVAL, MAX_DL_ADDRESSES, MAX_DL_NAME,
};
pub use security::{parse_bind_failure_limit, BindFailureLimit};

/// The system_id of the default account (the well-known simulator's).
pub const DEFAULT_SYSTEM_ID: &str = "smppclient1";
/// The password of the default account.
pub const DEFAULT_PASSWORD: &str = "password";

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:2775";
/// Final messages are deleted this long after their done time (7 days).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// The default store directory.
pub const DEFAULT_STORE: &str = "./smpp-data";
/// Messages kept in memory (older final ones are forgotten, or read back
/// from the persistent store). Twice as many messages still waiting for
/// something (a receipt nobody binds for) make submissions fail with
/// ESME_RMSGQFUL: memory stays bounded whatever the ESMEs do.
pub const DEFAULT_MAX_MESSAGES: usize = 250_000;

/// One account allowed to bind.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// system_id.
    pub system_id: String,
    /// password (never logged).
    pub password: String,
    /// Client networks it may bind from (empty: anywhere). A bind from
    /// elsewhere gets ESME_RBINDFAIL whatever the password.
    #[serde(default)]
    pub allow: Vec<Cidr>,
    /// With mutual TLS: a bind of this account must come over TLS with a
    /// client certificate valid for this DNS name (subjectAltName), else
    /// ESME_RBINDFAIL whatever the password.
    #[serde(default)]
    pub certificate_name: Option<String>,
}

impl Account {
    /// An account that may bind from anywhere.
    pub fn new(system_id: impl Into<String>, password: impl Into<String>) -> Account {
        Account {
            system_id: system_id.into(),
            password: password.into(),
            allow: Vec::new(),
            certificate_name: None,
        }
    }

    /// Whether a client at `peer` may bind to it (an unknown peer address
    /// only when there is no allow-list).
    pub fn allows(&self, peer: Option<std::net::IpAddr>) -> bool {
        self.allow.is_empty() || peer.is_some_and(|ip| self.allow.iter().any(|c| c.contains(ip)))
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("system_id", &self.system_id)
            .field("allow", &self.allow)
            .field("certificate_name", &self.certificate_name)
            .finish_non_exhaustive()
    }
}

impl std::str::FromStr for Account {
    type Err = String;

    /// `SYSTEM_ID:PASSWORD[@CIDR[,CIDR...]]`: the id ends at the first ':';
    /// the allow-list starts after the last '@' only when what follows is a
    /// list of networks, so a password may contain ':' and '@'.
    fn from_str(s: &str) -> Result<Self, String> {
        let Some((id, rest)) = s.split_once(':').filter(|(id, _)| !id.is_empty()) else {
            return Err("expected SYSTEM_ID:PASSWORD[@CIDR,...]".into());
        };
        let (password, allow) = match rest.rsplit_once('@') {
            Some((pw, list)) => match parse_cidr_list(list) {
                Ok(allow) => (pw, allow),
                Err(_) => (rest, Vec::new()),
            },
            None => (rest, Vec::new()),
        };
        Ok(Account {
            system_id: id.into(),
            password: password.into(),
            allow,
            certificate_name: None,
        })
    }
}

/// A network: an address and a prefix length (`10.0.0.0/8`, `::1/128`; a
/// bare address is a single host).
#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr {
    network: std::net::IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the network. An IPv4-mapped IPv6 address
    /// (`::ffff:10.1.2.3`, what a dual-stack socket reports) is taken as the
    /// IPv4 address it carries, on either side.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        match (self.canonical(), canonical_ip(ip)) {
            ((IpAddr::V4(net), prefix), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            ((IpAddr::V6(net), prefix), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// The network with a v4-mapped IPv6 prefix turned into IPv4.
    fn canonical(&self) -> (std::net::IpAddr, u8) {
        match self.network {
            std::net::IpAddr::V6(v6) if self.prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => (v4.into(), self.prefix - 96),
                None => (self.network, self.prefix),
            },
            _ => (self.network, self.prefix),
        }
    }
}

fn canonical_ip(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, Into::into),
        v4 => v4,
    }
}

impl std::fmt::Debug for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: std::net::IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or network"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| format!("{s:?}: prefix length over {max}"))?,
            Some(_) => return Err(format!("{s:?}: bad prefix length")),
        };
        Ok(Cidr { network, prefix })
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// Parses `10.0.0.0/8,::1` (at least one network).
pub fn parse_cidr_list(s: &str) -> Result<Vec<Cidr>, String> {
    if s.trim().is_empty() {
        return Err("empty network list".into());
    }
    s.split(',').map(str::parse).collect()
}

/// Where messages are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// In memory only: fast, lost on exit.
    Memory,
    /// The embedded persistent store in this directory.
    Path(PathBuf),
}

/// The TLS listener.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct TlsConfig {
    /// Address to listen on.
    pub listen: String,
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA certificates: when set, only clients presenting a certificate
    /// issued by one of them complete the handshake (mutual TLS).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// A configured route: destinations with this prefix go to the account's
/// receiver as mobile-originated `deliver_sm`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Destination address prefix ("" matches everything).
    pub prefix: String,
    /// The account whose receiver gets the messages.
    pub account: String,
}

/// What happens to a message a rule matches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// Destination prefix that must match (when set).
    pub prefix: Option<String>,
    /// Marker the text must contain (when set).
    pub contains: Option<String>,
    /// Final state reported (default DELIVRD).
    pub state: Option<MessageState>,
    /// Error code reported with it.
    pub error: u16,
    /// Answer the submission with this error status instead of accepting it.
    pub status: Option<CommandStatus>,
    /// Answer the submission this much later.
    pub delay: Option<Duration>,
}

impl Rule {
    /// Whether the rule applies to this destination and text.
    pub fn matches(&self, destination: &str, text: &[u8]) -> bool {
        self.prefix
            .as_deref()
            .is_none_or(|p| destination.starts_with(p))
            && self.contains.as_deref().is_none_or(|m| {
                !m.is_empty()
                    && text
                        .windows(m.len())
                        .any(|w| w.eq_ignore_ascii_case(m.as_bytes()))
            })
    }
}

/// Everything `smpp serve` runs with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeConfig {
    /// SMPP listen address (port 0 for any).
    pub listen: String,
    /// Accounts allowed to bind.
    pub accounts: Vec<Account>,
    /// Message store.
    pub store: StoreConfig,
    /// TLS listener.
    pub tls: Option<TlsConfig>,
    /// No plain-TCP listener: SMPP over TLS only (needs `tls`).
    pub tls_only: bool,
    /// HTTP control API / metrics address.
    pub http: Option<String>,
    /// Serve HTTP over TLS with the certificate and key of `tls`.
    pub http_tls: bool,
    /// The bearer token every HTTP request must carry (plain text or an
    /// argon2id hash); `None`: no authentication (loopback addresses only).
    pub http_token: Option<crate::credentials::Configured>,
    /// `/metrics` answers without the token.
    pub metrics_open: bool,
    /// Receipts (and final states) come within `0..=dlr_delay` of the submission.
    pub dlr_delay: Duration,
    /// Binds per account at most (further binds get ESME_RBINDFAIL).
    pub max_binds_per_account: Option<usize>,
    /// Requests per second per account; above it ESME_RTHROTTLED.
    pub tps: Option<u32>,
    /// CDR file (JSON lines).
    pub cdr: Option<PathBuf>,
    /// Outcome rules, first match wins.
    pub rules: Vec<Rule>,
    /// Outcome weights for messages no rule matched (empty: all DELIVRD).
    pub outcomes: Vec<(MessageState, u32)>,
    /// Configured routes.
    pub routes: Vec<Route>,
    /// Messages kept in memory at most.
    pub max_messages: usize,
    /// A message final this long with nothing left to do (receipts
    /// delivered) is deleted from the store and forgotten.
    pub retention: Duration,
    /// Our system_id in bind responses.
    pub system_id: String,
    /// The strict TLV profile: a request carrying a TLV its operation may
    /// not carry in the session's version is answered `ESME_RTLVNOTALLWD`
    /// (`smpp_proto::pdu::profile`); off: every TLV is kept, as the
    /// specification asks of receivers.
    pub strict: bool,
    /// The bind lockout (`None`: off); default: more than 10 failed binds
    /// in a minute lock an address out for 5 minutes.
    pub bind_failure_limit: Option<BindFailureLimit>,
    /// Networks of trusted balancers whose connections (plain and TLS)
    /// start with a PROXY protocol header (v1 or v2); the client address it
    /// carries is the peer's. Empty: no PROXY protocol.
    pub proxy_protocol: Vec<Cidr>,
    /// ESMEs to connect to and send `outbind` (they then bind on that
    /// connection), retried while they are not bound.
    pub outbinds: Vec<OutbindTarget>,
    /// Distribution lists by name: a `submit_multi` destination naming one
    /// (dest_flag 2) goes to each of its addresses.
    pub distribution_lists: BTreeMap<String, Vec<String>>,
    /// The scripted USSD menu answering PSSR indications to its codes.
    pub ussd_menu: Option<Arc<UssdMenu>>,
    /// A CSV file of MO messages (`from,to,text[,coding]`) to deliver to the
    /// bound receivers their destinations route to (read by the command).
    pub mo_csv: Option<PathBuf>,
    /// The rate of the MO feed.
    pub mo_rate: Rate,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: DEFAULT_LISTEN.into(),
            accounts: vec![Account::new(DEFAULT_SYSTEM_ID, DEFAULT_PASSWORD)],
            store: StoreConfig::Path(DEFAULT_STORE.into()),
            tls: None,
            tls_only: false,
            http: None,
            http_token: None,
            http_tls: false,
            metrics_open: false,
            dlr_delay: Duration::from_secs(1),
            max_binds_per_account: None,
            tps: None,
            cdr: None,
            rules: Vec::new(),
            outcomes: Vec::new(),
            routes: Vec::new(),
            max_messages: DEFAULT_MAX_MESSAGES,
            retention: DEFAULT_RETENTION,
            system_id: "SMPPSIM".into(),
            strict: false,
            bind_failure_limit: Some(BindFailureLimit::default()),
            proxy_protocol: Vec::new(),
            outbinds: Vec::new(),
            distribution_lists: BTreeMap::new(),
            ussd_menu: None,
            mo_csv: None,
            mo_rate: Rate::default(),
        }
    }
}

impl ServeConfig {
    /// An in-memory server on `127.0.0.1:0` with the default account and no
    /// receipt delay: what in-process tests want.
    pub fn for_tests() -> Self {
        ServeConfig {
            listen: "127.0.0.1:0".into(),
            store: StoreConfig::Memory,
            dlr_delay: Duration::ZERO,
            ..ServeConfig::default()
        }
    }

    /// Reads a TOML file and applies it over `self`.
    pub fn apply_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file: FileConfig =
            toml::from_str(&text).with_context(|| format!("bad config {}", path.display()))?;
        self.apply(file)
    }

    /// Applies a parsed TOML document over `self`.
    fn apply(&mut self, file: FileConfig) -> anyhow::Result<()> {
        if let Some(listen) = file.listen {
            self.listen = listen;
        }
        match (file.memory, file.store) {
            (Some(true), Some(_)) => bail!("config: `memory = true` and `store` both given"),
            (Some(true), None) => self.store = StoreConfig::Memory,
            (_, Some(path)) => self.store = StoreConfig::Path(path),
            _ => {}
        }
        if file.tls.is_some() {
            self.tls = file.tls;
        }
        if let Some(only) = file.tls_only {
            self.tls_only = only;
        }
        if let Some(strict) = file.strict {
            self.strict = strict;
        }
        if file.http.is_some() {
            self.http = file.http;
        }
        if let Some(token) = file.http_token {
            self.http_token = Some(crate::credentials::Configured(token));
        }
        if let Some(open) = file.metrics_open {
            self.metrics_open = open;
        }
        if let Some(tls) = file.http_tls {
            self.http_tls = tls;
        }
        if let Some(d) = file.dlr_delay {
            self.dlr_delay = humantime::parse_duration(&d).context("config: dlr_delay")?;
        }
        if file.max_binds_per_account.is_some() {
            self.max_binds_per_account = file.max_binds_per_account;
        }
        if file.tps.is_some() {
            self.tps = file.tps;
        }
        if file.cdr.is_some() {
            self.cdr = file.cdr;
        }
        if let Some(n) = file.max_messages {
            self.max_messages = n;
        }
        if let Some(d) = file.retention {
            self.retention = humantime::parse_duration(&d).context("config: retention")?;
        }
        if let Some(id) = file.system_id {
            self.system_id = id;
        }
        if !file.proxy_protocol.is_empty() {
            self.proxy_protocol = file.proxy_protocol;
        }
        if let Some(limit) = file.bind_failure_limit {
            self.bind_failure_limit =
                parse_bind_failure_limit(&limit).context("config: bind_failure_limit")?;
        }
        if !file.account.is_empty() {
            self.accounts = file.account;
        }
        self.routes.extend(file.route);
        for target in &file.outbind {
            features::check_host_port(&target.address).map_err(anyhow::Error::msg)?;
        }
        self.outbinds.extend(file.outbind);
        for (name, addresses) in file.distribution_lists {
            check_distribution_list(&name, &addresses).map_err(anyhow::Error::msg)?;
            self.distribution_lists.insert(name, addresses);
        }
        if let Some(path) = file.ussd_menu {
            self.ussd_menu = Some(Arc::new(UssdMenu::load(&path)?));
        }
        if file.mo_csv.is_some() {
            self.mo_csv = file.mo_csv;
        }
        if let Some(rate) = file.mo_rate {
            self.mo_rate = rate;
        }
        for (i, rule) in file.rule.into_iter().enumerate() {
            self.rules.push(
                rule.resolve()
                    .with_context(|| format!("config: rule #{}", i + 1))?,
            );
        }
        for (word, weight) in file.outcomes {
            self.outcomes.push((parse_state(&word)?, weight));
        }
        Ok(())
    }
}

/// The simulation settings that can change while `smpp serve` runs (its
/// dashboard edits them): the outcome rules, the outcome weights and the
/// receipt delay.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Simulation {
    /// Outcome rules, first match wins.
    pub rules: Vec<Rule>,
    /// Outcome weights for messages no rule matched (empty: all DELIVRD).
    pub outcomes: Vec<(MessageState, u32)>,
    /// Receipts come within `0..=dlr_delay` of the submission.
    pub dlr_delay: Duration,
}

impl Simulation {
    /// The rules as the configuration file writes them (`[[rule]]` tables).
    pub fn rules_toml(&self) -> String {
        let mut out = String::new();
        let quote = |s: &str| {
            let mut q = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => q.push_str("\\\""),
                    '\\' => q.push_str("\\\\"),
                    c if c.is_control() => q.push_str(&format!("\\u{:04X}", c as u32)),
                    c => q.push(c),
                }
            }
            q.push('"');
            q
        };
        for rule in &self.rules {
            out.push_str("[[rule]]\n");
            if let Some(p) = &rule.prefix {
                out.push_str(&format!("prefix = {}\n", quote(p)));
            }
            if let Some(c) = &rule.contains {
                out.push_str(&format!("contains = {}\n", quote(c)));
            }
            if let Some(s) = rule.state {
                out.push_str(&format!("state = {}\n", quote(s.stat_word())));
            }
            if rule.error != 0 {
                out.push_str(&format!("error = {}\n", rule.error));
            }
            if let Some(s) = rule.status {
                let name = s
                    .name()
                    .map_or_else(|| format!("0x{:08X}", s.0), str::to_owned);
                out.push_str(&format!("status = {}\n", quote(&name)));
            }
            if let Some(d) = rule.delay {
                out.push_str(&format!(
                    "delay = {}\n",
                    quote(&humantime::format_duration(d).to_string())
                ));
            }
            out.push('\n');
        }
        out
    }

    /// The outcome weights as `--outcomes` takes them.
    pub fn outcomes_text(&self) -> String {
        self.outcomes
            .iter()
            .map(|(s, w)| format!("{}={w}", s.stat_word()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Settings from the forms of the dashboard: `[[rule]]` tables, an
    /// `--outcomes` list (empty: all DELIVRD) and a duration.
    pub fn parse(rules_toml: &str, outcomes: &str, dlr_delay: &str) -> anyhow::Result<Simulation> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Rules {
            #[serde(default)]
            rule: Vec<FileRule>,
        }
        let file: Rules = toml::from_str(rules_toml).context("rules")?;
        let mut rules = Vec::with_capacity(file.rule.len());
        for (i, rule) in file.rule.into_iter().enumerate() {
            rules.push(rule.resolve().with_context(|| format!("rule #{}", i + 1))?);
        }
        let outcomes = if outcomes.trim().is_empty() {
            Vec::new()
        } else {
            parse_outcomes(outcomes)?
        };
        let dlr_delay = humantime::parse_duration(dlr_delay.trim())
            .map_err(|e| anyhow::anyhow!("receipt delay {dlr_delay:?}: {e}"))?;
        Ok(Simulation {
            rules,
            outcomes,
            dlr_delay,
        })
    }
}

/// Parses `DELIVRD=90,UNDELIV=10` (weights, not necessarily summing to 100).
pub fn parse_outcomes(s: &str) -> anyhow::Result<Vec<(MessageState, u32)>> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (state, weight) = item
            .split_once('=')
            .with_context(|| format!("--outcomes: {item:?} is not STATE=WEIGHT"))?;
        let weight = weight
            .trim()
            .parse()
            .with_context(|| format!("--outcomes: bad weight in {item:?}"))?;
        out.push((parse_state(state.trim())?, weight));
    }
    if out.iter().all(|&(_, w)| w == 0) {
        bail!("--outcomes: no positive weight");
    }
    Ok(out)
}

fn parse_state(word: &str) -> anyhow::Result<MessageState> {
    let state = MessageState::from_stat_word(word);
    if state == MessageState::Unknown && !word.eq_ignore_ascii_case("UNKNOWN") {
        bail!("unknown message state {word:?} (DELIVRD, UNDELIV, EXPIRED, REJECTD, DELETED, ACCEPTD, UNKNOWN)");
    }
    Ok(state)
}

fn parse_status(s: &str) -> anyhow::Result<CommandStatus> {
    if let Some(status) = CommandStatus::from_name(s) {
        return Ok(status);
    }
    let n = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    };
    n.map(CommandStatus)
        .map_err(|_| anyhow::anyhow!("unknown command status {s:?}"))
}

/// The TOML file's layout.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    store: Option<PathBuf>,
    memory: Option<bool>,
    tls: Option<TlsConfig>,
    tls_only: Option<bool>,
    strict: Option<bool>,
    http: Option<String>,
    http_token: Option<String>,
    metrics_open: Option<bool>,
    http_tls: Option<bool>,
    dlr_delay: Option<String>,
    max_binds_per_account: Option<usize>,
    tps: Option<u32>,
    cdr: Option<PathBuf>,
    max_messages: Option<usize>,
    retention: Option<String>,
    system_id: Option<String>,
    bind_failure_limit: Option<String>,
    #[serde(default)]
    proxy_protocol: Vec<Cidr>,
    #[serde(default, alias = "accounts")]
    account: Vec<Account>,
    #[serde(default)]
    route: Vec<Route>,
    #[serde(default)]
    rule: Vec<FileRule>,
    #[serde(default)]
    outcomes: std::collections::BTreeMap<String, u32>,
    #[serde(default)]
    outbind: Vec<OutbindTarget>,
    #[serde(default)]
    distribution_lists: BTreeMap<String, Vec<String>>,
    ussd_menu: Option<PathBuf>,
    mo_csv: Option<PathBuf>,
    mo_rate: Option<Rate>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRule {
    prefix: Option<String>,
    contains: Option<String>,
    state: Option<String>,
    #[serde(default)]
    error: u16,
    status: Option<String>,
    delay: Option<String>,
}

impl FileRule {
    fn resolve(self) -> anyhow::Result<Rule> {
        if self.prefix.is_none() && self.contains.is_none() {
            bail!("a rule needs `prefix` or `contains`");
        }
        Ok(Rule {
            prefix: self.prefix,
            contains: self.contains,
            state: self.state.as_deref().map(parse_state).transpose()?,
            error: self.error,
            status: self.status.as_deref().map(parse_status).transpose()?,
            delay: self
                .delay
                .as_deref()
                .map(humantime::parse_duration)
                .transpose()
                .context("delay")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file() {
        let file: FileConfig = toml::from_str(
            r##"
            listen = "127.0.0.1:0"
            memory = true
            tls_only = true
            dlr_delay = "250ms"
            retention = "2h"
            tps = 10
            [[account]]
            system_id = "a"
            password = "b"
            [[route]]
            prefix = "4470"
            account = "a"
            [[rule]]
            prefix = "4479"
            state = "UNDELIV"
            error = 12
            [[rule]]
            contains = "#THROTTLE"
            status = "ESME_RTHROTTLED"
            delay = "10ms"
            [outcomes]
            DELIVRD = 9
            EXPIRED = 1
            "##,
        )
        .unwrap();
        let mut config = ServeConfig::default();
        config.apply(file).unwrap();
        assert_eq!(config.store, StoreConfig::Memory);
        assert!(config.tls_only);
        assert_eq!(config.retention, Duration::from_secs(7200));
        assert_eq!(config.dlr_delay, Duration::from_millis(250));
        assert_eq!(config.accounts.len(), 1);
        assert_eq!(config.rules[0].state, Some(MessageState::Undeliverable));
        assert_eq!(config.rules[1].status, Some(CommandStatus::THROTTLED));
        assert!(config.rules[1].matches("1", b"hello #throttle"));
        assert!(!config.rules[0].matches("4478", b""));
        assert!(config.outcomes.contains(&(MessageState::Expired, 1)));
    }

    #[test]
    fn parses_the_feature_tables() {
        let dir = tempfile::tempdir().unwrap();
        let menu = dir.path().join("menu.toml");
        std::fs::write(&menu, "[[service]]\ncode = \"*1#\"\ntext = \"hi\"\n").unwrap();
        let text = format!(
            r#"
            ussd_menu = {menu:?}
            mo_csv = "mo.csv"
            mo_rate = "120/m"
            [[outbind]]
            system_id = "esme2"
            password = "pw"
            address = "127.0.0.1:2776"
            [[outbind]]
            system_id = "esme3"
            password = "pw"
            address = "127.0.0.1:2777"
            interval = "5s"
            [distribution_lists]
            staff = ["1", "2"]
            "#
        );
        let file: FileConfig = toml::from_str(&text).unwrap();
        let mut config = ServeConfig::default();
        config.apply(file).unwrap();
        assert_eq!(config.outbinds.len(), 2);
        assert_eq!(config.outbinds[0].interval, DEFAULT_OUTBIND_INTERVAL);
        assert_eq!(config.outbinds[1].interval, Duration::from_secs(5));
        assert_eq!(config.distribution_lists["staff"], ["1", "2"]);
        assert_eq!(config.ussd_menu.as_ref().unwrap().services[0].code, "*1#");
        assert_eq!(config.mo_csv.as_deref(), Some(Path::new("mo.csv")));
        assert_eq!(config.mo_rate.per_second, 2.0);
        for bad in [
            "[distribution_lists]\nstaff = []",
            "[distribution_lists]\nstaff = [\"\"]",
            "mo_rate = \"0/s\"",
            "[[outbind]]\nsystem_id = \"e\"\npassword = \"p\"",
            "[[outbind]]\nsystem_id = \"e\"\npassword = \"p\"\naddress = \"h:1\"\ninterval = \"0s\"",
            "ussd_menu = \"/nonexistent/menu.toml\"",
            "[[outbind]]\nsystem_id = \"e\"\npassword = \"p\"\naddress = \"nowhere\"",
        ] {
            let parsed = toml::from_str::<FileConfig>(bad)
                .map_err(anyhow::Error::from)
                .and_then(|f| ServeConfig::default().apply(f));
            assert!(parsed.is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn parses_outcome_weights() {
        assert_eq!(
            parse_outcomes("DELIVRD=90, undeliv=10").unwrap(),
            [
                (MessageState::Delivered, 90),
                (MessageState::Undeliverable, 10)
            ]
        );
        assert!(parse_outcomes("DELIVRD").is_err());
        assert!(parse_outcomes("DELIVRD=x").is_err());
        assert!(parse_outcomes("DELIVRD=0").is_err());
        assert!(parse_outcomes("NOPE=1").is_err());
    }

    #[test]
    fn refuses_bad_values() {
        let bad: Result<FileConfig, _> = toml::from_str("nonsense = 1");
        assert!(bad.is_err());
        let file: FileConfig =
            toml::from_str("[[rule]]\nprefix = \"1\"\nstate = \"NOPE\"").unwrap();
        assert!(ServeConfig::default().apply(file).is_err());
        assert!("nocolon".parse::<Account>().is_err());
        assert_eq!(
            "id:pw:x".parse::<Account>().unwrap().password,
            "pw:x".to_string()
        );
    }

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> std::net::IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_networks() {
        assert_eq!(cidr("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(cidr("10.1.2.3").to_string(), "10.1.2.3/32");
        assert_eq!(cidr(" ::1 ").to_string(), "::1/128");
        assert_eq!(cidr("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(cidr("0.0.0.0/0").to_string(), "0.0.0.0/0");
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/+8",
            "10.0.0.0/8/1",
            "host",
            "10.0.0.0/x",
            "1.2.3.4:5",
            "10.0.0.0/-1",
            "10.0.0.0/256",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_cidr_list("10.0.0.0/8,::1").unwrap().len(), 2);
        assert!(parse_cidr_list("").is_err());
        assert!(parse_cidr_list("10.0.0.0/8,").is_err());
    }

    #[test]
    fn matches_networks() {
        assert!(cidr("10.0.0.0/8").contains(ip("10.255.1.2")));
        assert!(!cidr("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(cidr("10.1.2.3/32").contains(ip("10.1.2.3")));
        assert!(!cidr("10.1.2.3/32").contains(ip("10.1.2.4")));
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(
            !cidr("0.0.0.0/0").contains(ip("2001:db8::1")),
            "v4 /0 is not v6"
        );
        assert!(cidr("::/0").contains(ip("2001:db8::1")));
        assert!(cidr("::1/128").contains(ip("::1")));
        assert!(!cidr("::1/128").contains(ip("::2")));
        assert!(cidr("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!cidr("2001:db8::/32").contains(ip("2001:db9::1")));
        assert!(!cidr("::1").contains(ip("127.0.0.1")));
        // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
        assert!(cidr("127.0.0.0/8").contains(ip("::ffff:127.0.0.1")));
        assert!(!cidr("10.0.0.0/8").contains(ip("::ffff:127.0.0.1")));
        assert!(cidr("::ffff:10.0.0.0/104").contains(ip("10.9.9.9")));
        assert!(!cidr("::ffff:10.0.0.0/104").contains(ip("11.9.9.9")));
    }

    #[test]
    fn account_flags_carry_allow_lists() {
        let a: Account = "esme:pw@10.0.0.0/8,::1".parse().unwrap();
        assert_eq!((a.system_id.as_str(), a.password.as_str()), ("esme", "pw"));
        assert_eq!(a.allow, [cidr("10.0.0.0/8"), cidr("::1")]);
        assert!(a.allows(Some(ip("10.2.3.4"))));
        assert!(!a.allows(Some(ip("127.0.0.1"))));
        assert!(!a.allows(None));
        // '@' and ':' in passwords: only a network list after the last '@' is one.
        let a: Account = "esme:p@ss:w@rd@127.0.0.1".parse().unwrap();
        assert_eq!(a.password, "p@ss:w@rd");
        assert_eq!(a.allow, [cidr("127.0.0.1")]);
        let a: Account = "esme:user@example".parse().unwrap();
        assert_eq!(a.password, "user@example");
        assert!(a.allow.is_empty());
        assert!(a.allows(None));
        let a: Account = "esme:pw@".parse().unwrap();
        assert_eq!(a.password, "pw@");
        assert!(":pw@10.0.0.1".parse::<Account>().is_err());
        assert!(!format!("{a:?}").contains("pw"), "Debug hides the password");
    }

    #[test]
    fn file_accounts_carry_allow_lists() {
        let file: FileConfig = toml::from_str(
            "[[accounts]]\nsystem_id = \"a\"\npassword = \"p\"\nallow = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        let mut config = ServeConfig::default();
        config.apply(file).unwrap();
        assert_eq!(config.accounts[0].allow, [cidr("10.0.0.0/8")]);
        let bad: Result<FileConfig, _> = toml::from_str(
            "[[account]]\nsystem_id = \"a\"\npassword = \"p\"\nallow = [\"10/8\"]\n",
        );
        assert!(bad.is_err());
    }
}
