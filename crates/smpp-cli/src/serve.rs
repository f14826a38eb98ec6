//! `smpp serve`: an SMSC simulator that is also a usable small SMSC.
//!
//! [`start`] builds everything from a [`ServeConfig`] and returns a
//! [`RunningServer`] (its bound addresses, the [`Smsc`] for MO injection and
//! message lookups, and a shutdown); [`run`] is the command: it prints the
//! bound addresses, one per line (`SMPP listening on ADDR`, then `TLS
//! listening on ADDR` when enabled; with `--tls-only` there is no plain-TCP
//! listener and no `SMPP listening on` line), and serves until Ctrl-C /
//! SIGTERM.
//!
//! The server itself (its components, the simulator, the config file) is
//! the `smpp-server` crate; its API is re-exported here.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;

pub use smpp_server::{
    config, observer, start, start_with, Account, Addr, BindEvent, FinalEvent, MessageView,
    NoObserver, Observer, ReceiptEvent, RequestEvent, Route, Rule, RunningServer, ServeConfig,
    Smsc, StoreConfig, TlsConfig, MAX_CONNECTIONS,
};

/// Arguments of `smpp serve` (boxed: they are large, and `Command` is an enum).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The options.
    #[command(flatten)]
    pub options: Box<ServeOptions>,
}

/// The options of `smpp serve`.
#[derive(Debug, Args)]
pub struct ServeOptions {
    /// Address to listen on for SMPP (port 0: any free port; the real one is printed) [default: 127.0.0.1:2775].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// An account allowed to bind (repeatable; replaces the default smppclient1:password).
    /// The password may be an argon2id hash from `smpp hash-password`
    /// ('$argon2id$...'; quote it in the shell); plain text is logged as a warning.
    /// After the last '@', optional client networks it may bind from
    /// (e.g. esme:secret@10.0.0.0/8,::1); a bind from elsewhere gets ESME_RBINDFAIL.
    #[arg(long = "account", value_name = "SYSTEM_ID:PASSWORD[@CIDR,...]")]
    pub accounts: Vec<Account>,
    /// TOML file with everything the flags can say, plus routes and outcome rules (flags win).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the persistent message store [default: ./smpp-data].
    #[arg(long, value_name = "PATH", conflicts_with = "memory")]
    pub store: Option<PathBuf>,
    /// Keep messages in memory only (fast; lost on exit).
    #[arg(long)]
    pub memory: bool,
    /// Runtime worker threads [default: one per core]. Fewer leave cores to
    /// the clients when they run on the same machine (a test rig, a laptop).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// The TLS listener.
    #[command(flatten)]
    pub tls: crate::common::TlsListenArgs,
    /// No plain-TCP SMPP listener: only --tls-listen (which must be configured).
    #[arg(long)]
    pub tls_only: bool,
    /// Strict TLV profile: a request carrying a TLV its operation may not
    /// carry (in the session's SMPP version) gets ESME_RTLVNOTALLWD; by
    /// default every TLV is kept, as the specification asks of receivers.
    #[arg(long)]
    pub strict: bool,
    /// HTTP control API and metrics address. An address that is not
    /// loopback needs --http-token (the server refuses to start without one).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Bearer token every HTTP request must carry (`Authorization: Bearer
    /// TOKEN`; 401 without it), plain or an argon2id hash from `smpp
    /// hash-password`. Prefer the environment variable to the command line.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SMPP_HTTP_TOKEN",
        hide_env_values = true
    )]
    pub http_token: Option<String>,
    /// Let /metrics answer without the token (the API still needs it).
    #[arg(long)]
    pub metrics_open: bool,
    /// Serve --http over TLS (HTTPS) with the certificate and key of --tls-listen.
    #[arg(long)]
    pub http_tls: bool,
    /// Receipts come within this delay of the submission (uniformly spread), e.g. 500ms [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub dlr_delay: Option<Duration>,
    /// Outcome distribution for messages no rule matches, e.g. DELIVRD=90,UNDELIV=8,EXPIRED=2.
    #[arg(long, value_name = "STATE=WEIGHT,...")]
    pub outcomes: Option<String>,
    /// Binds per account at most (more get ESME_RBINDFAIL).
    #[arg(long, value_name = "N")]
    pub max_binds_per_account: Option<usize>,
    /// Networks of trusted load balancers (e.g. 10.0.0.0/8,127.0.0.1): their
    /// connections, plain and TLS, must start with a PROXY protocol header
    /// (v1 or v2; missing or malformed: closed), and the client address it
    /// carries is what allow-lists, the lockout, logs, metrics and CDRs see.
    /// Other sources speak SMPP directly (a header from them is rejected).
    #[arg(long, value_name = "CIDR,...")]
    pub proxy_protocol: Option<String>,
    /// Bind lockout: more than N failed binds (wrong system_id or password,
    /// or outside the account's networks) from one address within WINDOW
    /// make every bind from it get ESME_RBINDFAIL for COOLDOWN, whatever
    /// the password; `off` disables it. IPv6 counts per /64; loopback is not
    /// exempt [default: 10/1m/5m].
    #[arg(long, value_name = "N[/WINDOW[/COOLDOWN]]|off")]
    pub bind_failure_limit: Option<String>,
    /// Requests per second per account; above it ESME_RTHROTTLED.
    #[arg(long, value_name = "N")]
    pub tps: Option<u32>,
    /// Append one JSON line per message reaching a final state (billing records).
    #[arg(long, value_name = "FILE")]
    pub cdr: Option<PathBuf>,
    /// Messages kept in memory (older final ones are forgotten, or read back from the store;
    /// twice as many still waiting for a receiver make submissions fail with ESME_RMSGQFUL)
    /// [default: 250000].
    #[arg(long, value_name = "N")]
    pub max_messages: Option<usize>,
    /// Delete a message from the store (and forget it: query_sm then finds nothing) once it
    /// has been final this long with nothing left to do (receipts delivered), e.g. 12h [default: 7d].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub retention: Option<Duration>,
    /// An ESME to connect to and send outbind (repeatable): while no receiver of
    /// SYSTEM_ID is bound, serve connects to HOST:PORT and sends outbind (system_id:
    /// serve's own, password: PASSWORD); the ESME binds on that connection as
    /// SYSTEM_ID and gets what waits for it. Failures are retried after 1s, 2s, 4s...
    /// up to the interval [default interval: 30s].
    #[arg(
        long = "outbind",
        value_name = "SYSTEM_ID:PASSWORD@HOST:PORT[,interval=DURATION]"
    )]
    pub outbinds: Vec<config::OutbindTarget>,
    /// A distribution list for submit_multi (repeatable): a destination with
    /// dest_flag 2 naming it goes to each address; an unknown name is refused
    /// in unsuccess_smes with ESME_RINVDLNAME.
    #[arg(long = "distribution-list", value_name = "NAME=ADDR,ADDR,...", value_parser = parse_list)]
    pub distribution_lists: Vec<(String, Vec<String>)>,
    /// A scripted USSD menu (TOML: `[[service]]` code, text, `[[service.option]]`
    /// label, text, nested options): a PSSR indication dialling a code walks it
    /// with the subscriber (see docs/ussd-menu.toml).
    #[arg(long, value_name = "FILE")]
    pub ussd_menu: Option<PathBuf>,
    /// MO messages to deliver, one per line: `from,to,text[,coding]` (CSV; coding
    /// auto, gsm7, ucs2, latin1 or binary). Each goes to the receiver its
    /// destination routes to, in order, waiting until one is bound.
    #[arg(long, value_name = "FILE")]
    pub mo_csv: Option<PathBuf>,
    /// The rate of --mo-csv, e.g. 10/s, 120/m [default: 1/s].
    #[arg(long, value_name = "N/s")]
    pub mo_rate: Option<config::Rate>,
}

fn parse_list(s: &str) -> Result<(String, Vec<String>), String> {
    config::parse_distribution_list(s)
}

impl ServeArgs {
    /// The configuration: defaults, then the `--config` file, then the flags.
    pub fn to_config(&self) -> anyhow::Result<ServeConfig> {
        self.options.to_config()
    }
}

impl ServeOptions {
    /// The configuration: defaults, then the `--config` file, then the flags.
    pub fn to_config(&self) -> anyhow::Result<ServeConfig> {
        let mut config = ServeConfig::default();
        if let Some(path) = &self.config {
            config.apply_file(path)?;
        }
        if let Some(listen) = &self.listen {
            config.listen.clone_from(listen);
        }
        if !self.accounts.is_empty() {
            config.accounts.clone_from(&self.accounts);
        }
        if self.memory {
            config.store = StoreConfig::Memory;
        }
        if let Some(path) = &self.store {
            config.store = StoreConfig::Path(path.clone());
        }
        config.tls = self.tls.apply(config.tls.take())?;
        if self.http_tls {
            config.http_tls = true;
        }
        if self.tls_only {
            config.tls_only = true;
        }
        if self.strict {
            config.strict = true;
        }
        if self.http.is_some() {
            config.http.clone_from(&self.http);
        }
        if let Some(token) = &self.http_token {
            config.http_token = Some(smpp_server::credentials::Configured(token.clone()));
        }
        if self.metrics_open {
            config.metrics_open = true;
        }
        if let Some(d) = self.dlr_delay {
            config.dlr_delay = d;
        }
        if let Some(outcomes) = &self.outcomes {
            config.outcomes = config::parse_outcomes(outcomes)?;
        }
        if self.max_binds_per_account.is_some() {
            config.max_binds_per_account = self.max_binds_per_account;
        }
        if self.tps.is_some() {
            config.tps = self.tps;
        }
        if let Some(list) = &self.proxy_protocol {
            config.proxy_protocol = config::parse_cidr_list(list)
                .map_err(|e| anyhow::anyhow!("--proxy-protocol: {e}"))?;
        }
        if let Some(limit) = &self.bind_failure_limit {
            config.bind_failure_limit =
                config::parse_bind_failure_limit(limit).context("--bind-failure-limit")?;
        }
        if self.cdr.is_some() {
            config.cdr.clone_from(&self.cdr);
        }
        if let Some(n) = self.max_messages {
            config.max_messages = n;
        }
        if let Some(d) = self.retention {
            config.retention = d;
        }
        config.outbinds.extend(self.outbinds.iter().cloned());
        for (name, addresses) in &self.distribution_lists {
            config
                .distribution_lists
                .insert(name.clone(), addresses.clone());
        }
        if let Some(path) = &self.ussd_menu {
            config.ussd_menu = Some(Arc::new(smpp_server::ussd_menu::UssdMenu::load(path)?));
        }
        if self.mo_csv.is_some() {
            config.mo_csv.clone_from(&self.mo_csv);
        }
        if let Some(rate) = self.mo_rate {
            config.mo_rate = rate;
        }
        if config.retention.is_zero() {
            bail!("--retention must be positive");
        }
        if config.accounts.is_empty() {
            bail!("no accounts configured");
        }
        if config.tls_only && config.tls.is_none() {
            bail!(
                "--tls-only needs --tls-listen, --tls-cert and --tls-key (or [tls] in the config)"
            );
        }
        if config.http_tls && config.http.is_none() {
            bail!("--http-tls needs --http");
        }
        if config.http_tls && config.tls.is_none() {
            bail!(
                "--http-tls needs --tls-listen, --tls-cert and --tls-key (or [tls] in the config)"
            );
        }
        if config.tps == Some(0) {
            bail!("--tps must be at least 1");
        }
        if let Some(token) = &config.http_token {
            if token.0.is_empty() {
                bail!("--http-token is empty");
            }
            smpp_server::credentials::Secret::new(&token.0)
                .map_err(|e| anyhow::anyhow!("--http-token: {e}"))?;
        }
        if let (Some(addr), None) = (&config.http, &config.http_token) {
            check_http_loopback(addr)?;
        }
        Ok(config)
    }
}

/// Refuses an HTTP address that is not loopback (or does not resolve to
/// loopback only): without a token the API would be open to the network.
pub(crate) fn check_http_loopback(addr: &str) -> anyhow::Result<()> {
    use std::net::ToSocketAddrs as _;
    let resolved: Vec<_> = addr
        .to_socket_addrs()
        .with_context(|| format!("--http {addr}: not an address"))?
        .collect();
    if resolved.is_empty() || resolved.iter().any(|a| !a.ip().is_loopback()) {
        bail!(
            "--http {addr} is not a loopback address: the HTTP API needs a token there \
             (--http-token, SMPP_HTTP_TOKEN, or http_token in the config)"
        );
    }
    Ok(())
}

/// Runs `smpp serve`.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    use crate::obs::{http, wiring};
    use smpp_server::{cdr::CdrWriter, metrics::Metrics, telemetry::ServeObserver};
    let config = args.to_config()?;
    let http_auth = http::HttpAuth {
        token: match &config.http_token {
            Some(token) => Some(
                smpp_server::credentials::Secret::new(&token.0)
                    .map_err(|e| anyhow::anyhow!("--http-token: {e}"))?,
            ),
            None => None,
        },
        metrics_open: config.metrics_open,
        // Wrong tokens count per address like failed binds, in a table of their own.
        lockout: config
            .bind_failure_limit
            .map(smpp_server::lockout::Lockout::new),
    };
    let http_tls = match (&config.tls, config.http_tls) {
        (Some(tls), true) => Some(smpp_server::tls_server_config(&tls.cert, &tls.key, None)?),
        _ => None,
    };
    let accounts = config.accounts.clone();
    let store = config.store.clone();
    let mo_feed = match &config.mo_csv {
        Some(path) => Some((crate::mo_csv::load(path)?, config.mo_rate)),
        None => None,
    };
    let signal = crate::common::ShutdownSignal::install()?;
    let metrics = Arc::new(Metrics::default());
    let cdr = match &config.cdr {
        Some(path) => {
            Some(CdrWriter::open(path).with_context(|| format!("cannot open {}", path.display()))?)
        }
        None => None,
    };
    let http_listener = match &config.http {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (--http)"))?,
        ),
        None => None,
    };
    let observer = Arc::new(ServeObserver::new(metrics.clone(), cdr));
    let server = start_with(config, observer).await?;
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut http_task = None;
    let mut http_addr = None;
    if let Some(listener) = http_listener {
        http_addr = Some(listener.local_addr()?);
        let backend = Arc::new(wiring::SmscBackend::new(server.smsc().clone(), metrics));
        let shutdown = async move {
            let _ = http_stopped.await;
        };
        http_task = Some(tokio::spawn(http::serve_http_secured(
            listener,
            backend,
            shutdown,
            http::HttpLimits::default(),
            http_auth,
            http_tls,
        )));
    }
    // The start-up lines are for whoever reads them: a reader that went
    // away (a closed pipe) must not stop the server.
    let banner = || -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        // Other tools parse this line: keep its wording.
        if let Some(addr) = server.plain_addr() {
            writeln!(out, "SMPP listening on {addr}")?;
        }
        if let Some(addr) = server.tls_addr() {
            writeln!(out, "TLS listening on {addr}")?;
        }
        if let Some(addr) = http_addr {
            writeln!(out, "HTTP listening on {addr}")?;
        }
        for account in &accounts {
            if account.system_id == crate::common::DEFAULT_SYSTEM_ID
                && account.password == crate::common::DEFAULT_PASSWORD
            {
                writeln!(
                    out,
                    "account: {} password: {}",
                    account.system_id, account.password
                )?;
            } else if account.allow.is_empty() {
                writeln!(out, "account: {}", account.system_id)?;
            } else {
                let allow: Vec<String> = account.allow.iter().map(ToString::to_string).collect();
                writeln!(
                    out,
                    "account: {} from {}",
                    account.system_id,
                    allow.join(",")
                )?;
            }
        }
        match &store {
            StoreConfig::Memory => writeln!(out, "store: in memory")?,
            StoreConfig::Path(p) => writeln!(out, "store: {}", p.display())?,
        }
        out.flush()
    };
    if let Err(e) = banner() {
        tracing::warn!(error = %e, "could not print the start-up lines; serving on");
    }
    if let Some((messages, rate)) = mo_feed {
        tokio::spawn(server.smsc().clone().feed_mo(messages, rate));
    }
    signal.wait().await;
    tracing::info!("shutting down: unbinding everyone");
    server.shutdown().await?;
    let _ = stop_http.send(());
    if let Some(task) = http_task {
        task.await.context("HTTP task")?.context("HTTP API")?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::{Cli, Command};

    fn parse(args: &[&str]) -> anyhow::Result<super::ServeConfig> {
        let cli = Cli::try_parse_from(args)?;
        let Command::Serve(args) = cli.command else {
            anyhow::bail!("not the serve command");
        };
        args.to_config()
    }

    #[test]
    fn feature_flags_build_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let menu = dir.path().join("menu.toml");
        std::fs::write(&menu, "[[service]]\ncode = \"*5#\"\ntext = \"hi\"\n").unwrap();
        let config = parse(&[
            "smpp",
            "serve",
            "--memory",
            "--outbind",
            "esme2:pw@127.0.0.1:2776,interval=5s",
            "--outbind",
            "esme3:pw@localhost:2777",
            "--distribution-list",
            "staff=1,2,3",
            "--distribution-list",
            "board=9",
            "--ussd-menu",
            menu.to_str().unwrap(),
            "--mo-csv",
            "mo.csv",
            "--mo-rate",
            "5/s",
        ])
        .unwrap();
        assert_eq!(config.outbinds.len(), 2);
        assert_eq!(config.outbinds[0].system_id, "esme2");
        assert_eq!(
            config.outbinds[0].interval,
            std::time::Duration::from_secs(5)
        );
        assert_eq!(config.outbinds[1].address, "localhost:2777");
        assert_eq!(config.distribution_lists["staff"], ["1", "2", "3"]);
        assert_eq!(config.distribution_lists["board"], ["9"]);
        assert_eq!(config.ussd_menu.unwrap().services[0].code, "*5#");
        assert_eq!(
            config.mo_csv.as_deref(),
            Some(std::path::Path::new("mo.csv"))
        );
        assert_eq!(config.mo_rate.per_second, 5.0);
        for bad in [
            &["--outbind", "esme2:pw"][..],
            &["--distribution-list", "staff"][..],
            &["--mo-rate", "fast"][..],
            &["--ussd-menu", "/nonexistent/menu.toml"][..],
        ] {
            let args = [&["smpp", "serve", "--memory"][..], bad].concat();
            assert!(parse(&args).is_err(), "{bad:?} accepted");
        }
    }
}
