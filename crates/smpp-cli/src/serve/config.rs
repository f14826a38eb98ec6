//! What `smpp serve` runs with: [`ServeConfig`], built from the command line
//! and an optional TOML file (`--config`), flags winning over the file.
//!
//! ```toml
//! listen = "127.0.0.1:2775"
//! store = "./smpp-data"        # or: memory = true
//! dlr_delay = "1s"             # receipts within 0..=dlr_delay of the submission
//! max_binds_per_account = 8
//! tps = 500                    # per account; above it: ESME_RTHROTTLED
//!
//! [tls]
//! listen = "127.0.0.1:3775"
//! cert = "cert.pem"
//! key = "key.pem"
//!
//! [[account]]
//! system_id = "smppclient1"
//! password = "password"
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

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::Deserialize;
use smpp_proto::message::MessageState;
use smpp_proto::pdu::CommandStatus;

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:2775";
/// The default store directory.
pub const DEFAULT_STORE: &str = "./smpp-data";
/// Messages kept in memory (older final ones are forgotten, or read back
/// from the persistent store). Twice as many messages still waiting for
/// something (a receipt nobody binds for) make submissions fail with
/// ESME_RMSGQFUL: memory stays bounded whatever the ESMEs do.
pub const DEFAULT_MAX_MESSAGES: usize = 250_000;

/// One account allowed to bind.
#[derive(Clone, Deserialize, PartialEq, Eq)]
pub struct Account {
    /// system_id.
    pub system_id: String,
    /// password (never logged).
    pub password: String,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("system_id", &self.system_id)
            .finish_non_exhaustive()
    }
}

impl std::str::FromStr for Account {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some((id, pw)) if !id.is_empty() => Ok(Account {
                system_id: id.into(),
                password: pw.into(),
            }),
            _ => Err("expected SYSTEM_ID:PASSWORD".into()),
        }
    }
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
    /// HTTP control API / metrics address.
    pub http: Option<String>,
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
    /// Our system_id in bind responses.
    pub system_id: String,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: DEFAULT_LISTEN.into(),
            accounts: vec![Account {
                system_id: crate::common::DEFAULT_SYSTEM_ID.into(),
                password: crate::common::DEFAULT_PASSWORD.into(),
            }],
            store: StoreConfig::Path(DEFAULT_STORE.into()),
            tls: None,
            http: None,
            dlr_delay: Duration::from_secs(1),
            max_binds_per_account: None,
            tps: None,
            cdr: None,
            rules: Vec::new(),
            outcomes: Vec::new(),
            routes: Vec::new(),
            max_messages: DEFAULT_MAX_MESSAGES,
            system_id: "SMPPSIM".into(),
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
        if file.http.is_some() {
            self.http = file.http;
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
        if let Some(id) = file.system_id {
            self.system_id = id;
        }
        if !file.account.is_empty() {
            self.accounts = file.account;
        }
        self.routes.extend(file.route);
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
    http: Option<String>,
    dlr_delay: Option<String>,
    max_binds_per_account: Option<usize>,
    tps: Option<u32>,
    cdr: Option<PathBuf>,
    max_messages: Option<usize>,
    system_id: Option<String>,
    #[serde(default)]
    account: Vec<Account>,
    #[serde(default)]
    route: Vec<Route>,
    #[serde(default)]
    rule: Vec<FileRule>,
    #[serde(default)]
    outcomes: std::collections::BTreeMap<String, u32>,
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
            dlr_delay = "250ms"
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
        assert_eq!(config.dlr_delay, Duration::from_millis(250));
        assert_eq!(config.accounts.len(), 1);
        assert_eq!(config.rules[0].state, Some(MessageState::Undeliverable));
        assert_eq!(config.rules[1].status, Some(CommandStatus::THROTTLED));
        assert!(config.rules[1].matches("1", b"hello #throttle"));
        assert!(!config.rules[0].matches("4478", b""));
        assert!(config.outcomes.contains(&(MessageState::Expired, 1)));
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
}
