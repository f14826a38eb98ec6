//! `smpp gateway`: an SMS gateway for aggregators. Customers bind over
//! SMPP; each message is stored, answered with the gateway's own id, and
//! forwarded to an upstream SMSC by route; receipts come back with the
//! customer's id. The gateway itself is the `smpp-gateway` crate.
//!
//! [`run`] prints `SMPP listening on ADDR` (the same line as `serve`), then
//! one line per upstream and the store, and serves until Ctrl-C / SIGTERM.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use smpp_gateway::{
    Account, BalanceConfig, DistributionListConfig, GatewayConfig, MoRouteConfig, RouteConfig,
    StoreConfig, UpstreamConfig,
};

/// Arguments of `smpp gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// TOML file: listen, store, memory, database, system_id, and the lists accounts,
    /// upstreams, routes in the flags' forms (flags win).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the durable store [default: ./smpp-data].
    #[arg(long, value_name = "DIR", conflicts_with = "memory")]
    pub store: Option<PathBuf>,
    /// Keep everything in memory only (lost on exit).
    #[arg(long)]
    pub memory: bool,
    /// Keep everything in a PostgreSQL database instead of --store
    /// (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`, no TLS): the schema is
    /// made or upgraded at start.
    #[arg(long, value_name = "URL", conflicts_with_all = ["memory", "store"])]
    pub database: Option<String>,
    /// With --database shared by several gateways: how long a node may go
    /// unseen before another takes its work over [default: 15s].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub takeover: Option<std::time::Duration>,
    /// `migrate`: apply the database's migrations (--database) and exit.
    #[command(subcommand)]
    pub action: Option<GatewayAction>,
    /// Address customers bind to (port 0: any free port) [default: 127.0.0.1:2775].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// A customer account (repeatable); after the last '@', optional client
    /// networks it may bind from (esme:secret@10.0.0.0/8).
    #[arg(long = "account", value_name = "ID:PASSWORD[@NETS]")]
    pub accounts: Vec<Account>,
    /// An upstream SMSC (repeatable): a pool of N binds, transceivers unless
    /// bind= says tx (transmitters), rx (receivers: MO and receipts only)
    /// or tx+rx (a transmitter and a receiver per bind).
    /// ids= is how it writes message ids: text (default, case-insensitive),
    /// hex, decimal, auto, or SUBMIT/RECEIPT (hex/decimal). tls connects
    /// over TLS (ca= a PEM file of the CAs to trust; the web PKI's without);
    /// source= replaces the sender of every message sent there. queue= caps
    /// the messages waiting for it: a route whose connectors are all at
    /// their cap refuses with ESME_RMSGQFUL (the global limit still applies).
    #[arg(
        long = "upstream",
        value_name = "NAME=SYSTEM_ID:PASSWORD@HOST:PORT[,binds=N][,window=W][,tps=T][,ids=F][,system_type=T][,tls][,ca=PEM][,source=ADDR][,queue=N][,bind=trx|tx|rx|tx+rx]"
    )]
    pub upstreams: Vec<UpstreamConfig>,
    /// A route (repeatable, first match wins): destinations starting with
    /// PREFIX ("*" or "": all), optionally only of one account= or from=
    /// a source prefix. Each TIER is `UPSTREAM[:WEIGHT][+UPSTREAM[:WEIGHT]...]`:
    /// tiers fail over in order, the upstreams of a tier share it by weight
    /// (*=a:3+b:1,c). rate= is the price of one SMS part (for --balance and
    /// the CDR). None: every upstream, in order, for every destination.
    #[arg(
        long = "route",
        value_name = "PREFIX=UPSTREAM[,UPSTREAM...][,rate=PRICE]"
    )]
    pub routes: Vec<RouteConfig>,
    /// An MO route (repeatable, first match wins): messages from upstreams
    /// (not receipts) to destinations starting with PREFIX go to ACCOUNT's
    /// receiver binds (queued while none is bound).
    #[arg(long = "mo-route", value_name = "PREFIX=ACCOUNT")]
    pub mo_routes: Vec<MoRouteConfig>,
    /// A distribution list of an account (repeatable): a submit_multi of
    /// that account naming NAME (dest_flag 2) goes to each address; a name
    /// the account has no list of gets ESME_RINVDLNAME for it.
    #[arg(long = "distribution-list", value_name = "ACCOUNT:NAME=ADDR,ADDR,...")]
    pub distribution_lists: Vec<DistributionListConfig>,
    /// Forget a message once it has been final (delivered, failed) this
    /// long, e.g. 12h [default: 7d].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub retention: Option<std::time::Duration>,
    /// How long a forwarded message waits for its upstream's receipt; then
    /// it ends as UNKNOWN (with a receipt saying so) [default: 48h].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub receipt_timeout: Option<std::time::Duration>,
    /// SMS parts per second per account (a long message counts each
    /// part); above it ESME_RTHROTTLED (HTTP 429).
    #[arg(long, value_name = "N")]
    pub tps: Option<u32>,
    /// SMS parts per second per account and sender address; above it
    /// ESME_RTHROTTLED (HTTP 429).
    #[arg(long, value_name = "N")]
    pub tps_per_sender: Option<u32>,
    /// Binds per account at most (more get ESME_RBINDFAIL).
    #[arg(long, value_name = "N")]
    pub max_binds_per_account: Option<usize>,
    /// Receipts owed to one account at most; beyond it the account's new
    /// submissions get ESME_RMSGQFUL until it takes them [default: 100000].
    #[arg(long, value_name = "N")]
    pub max_receipts_owed: Option<usize>,
    /// The loop guard: a submission that gateways have already forwarded N
    /// times (the hop count they add) is refused with ESME_RINVDSTADR
    /// [default: 5].
    #[arg(long, value_name = "N")]
    pub max_hops: Option<u8>,
    /// More than N failed binds (wrong credentials, outside the allow-list)
    /// from one address within WINDOW make every bind from it get
    /// ESME_RBINDFAIL for COOLDOWN, whatever the password; `off` disables
    /// it [default: 10/1m/5m, as serve].
    #[arg(long, value_name = "N[/WINDOW[/COOLDOWN]]|off")]
    pub bind_failure_limit: Option<String>,
    /// A prepaid quota (repeatable): money (esme=25.50, charged each SMS
    /// part at its route's rate=) or an SMS count (esme=5000sms). Set at the
    /// account's first start only (kept in the store); when it runs out,
    /// submissions get ESME_RSUBMITFAIL. Accounts without one are not limited.
    #[arg(long = "balance", value_name = "ACCOUNT=AMOUNT|ACCOUNT=Nsms")]
    pub balances: Vec<BalanceConfig>,
    /// Append a CDR (one JSON line: account, addresses, our id, parts,
    /// times, final state, upstream, charge, billing_identification) per
    /// message that reached a final state.
    #[arg(long, value_name = "FILE")]
    pub cdr: Option<PathBuf>,
    /// The TLS listener for customers.
    #[command(flatten)]
    pub tls: crate::common::TlsListenArgs,
    /// Networks of trusted load balancers (e.g. 10.0.0.0/8,127.0.0.1): their
    /// connections, plain and TLS, start with a PROXY protocol header (v1
    /// or v2), whose client address allow-lists, the lockout and logs see.
    #[arg(long, value_name = "CIDR,...")]
    pub proxy_protocol: Option<String>,
    /// HTTP API address: Jasmin-compatible /send, /balance, /rate (the
    /// account's credentials), JSON /api/v1 (HTTP Basic), admin routes and
    /// /metrics (--http-token). An address that is not loopback needs
    /// --http-token.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Bearer token of the admin routes and /metrics (`Authorization:
    /// Bearer TOKEN`), plain or an argon2id hash from `smpp hash-password`.
    /// Prefer the environment variable to the command line.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SMPP_HTTP_TOKEN",
        hide_env_values = true
    )]
    pub http_token: Option<String>,
    /// Hosts customers may name as receipt receivers (dlr-url, webhook),
    /// e.g. hooks.example.com,crm.example.com; without it any host,
    /// internal ones included.
    #[arg(long, value_name = "HOST,...", value_delimiter = ',')]
    pub webhook_hosts: Vec<String>,
    /// Serve --http over TLS (HTTPS) with the certificate and key of --tls-listen.
    #[arg(long, requires_all = ["http", "tls_cert", "tls_key"])]
    pub http_tls: bool,
}

/// What `smpp gateway` does other than serving.
#[derive(Debug, clap::Subcommand)]
pub enum GatewayAction {
    /// Apply the migrations the database (--database, or database= in
    /// --config) lacks, then exit; a gateway also does it at start.
    Migrate,
}

impl GatewayArgs {
    /// The configuration: defaults, then the `--config` file, then the flags.
    pub fn to_config(&self) -> anyhow::Result<GatewayConfig> {
        let mut config = GatewayConfig::default();
        if let Some(path) = &self.config {
            config.apply_file(path)?;
        }
        if let Some(listen) = &self.listen {
            config.listen.clone_from(listen);
        }
        if self.memory {
            config.store = StoreConfig::Memory;
        }
        if let Some(dir) = &self.store {
            config.store = StoreConfig::Path(dir.clone());
        }
        if let Some(url) = &self.database {
            config.store = StoreConfig::Postgres(url.clone());
        }
        if !self.accounts.is_empty() {
            config.accounts.clone_from(&self.accounts);
        }
        if !self.upstreams.is_empty() {
            config.upstreams.clone_from(&self.upstreams);
        }
        if !self.routes.is_empty() {
            config.routes.clone_from(&self.routes);
        }
        if !self.mo_routes.is_empty() {
            config.mo_routes.clone_from(&self.mo_routes);
        }
        if !self.distribution_lists.is_empty() {
            config
                .distribution_lists
                .clone_from(&self.distribution_lists);
        }
        if let Some(takeover) = self.takeover {
            config.takeover = takeover;
        }
        if let Some(retention) = self.retention {
            config.retention = retention;
        }
        if let Some(timeout) = self.receipt_timeout {
            config.receipt_timeout = timeout;
        }
        if self.tps.is_some() {
            config.tps_per_account = self.tps;
        }
        if self.tps_per_sender.is_some() {
            config.tps_per_sender = self.tps_per_sender;
        }
        if self.max_binds_per_account.is_some() {
            config.max_binds_per_account = self.max_binds_per_account;
        }
        config.tls = self.tls.apply(config.tls.take())?;
        if let Some(list) = &self.proxy_protocol {
            config.proxy_protocol = smpp_server::config::parse_cidr_list(list)
                .map_err(|e| anyhow::anyhow!("--proxy-protocol: {e}"))?;
        }
        if let Some(n) = self.max_receipts_owed {
            config.max_receipts_owed = n;
        }
        if let Some(n) = self.max_hops {
            config.max_hops = n;
        }
        if !self.balances.is_empty() {
            config.balances.clone_from(&self.balances);
        }
        if self.cdr.is_some() {
            config.cdr.clone_from(&self.cdr);
        }
        if let Some(limit) = &self.bind_failure_limit {
            config.bind_failure_limit = smpp_server::config::parse_bind_failure_limit(limit)
                .context("--bind-failure-limit")?;
        }
        config.validate()?;
        Ok(config)
    }
}

/// The database URL of `migrate`: the flag, else the config file's.
fn database_url(args: &GatewayArgs) -> anyhow::Result<String> {
    if let Some(url) = &args.database {
        return Ok(url.clone());
    }
    let mut config = GatewayConfig::default();
    if let Some(path) = &args.config {
        config.apply_file(path)?;
    }
    match config.store {
        StoreConfig::Postgres(url) => Ok(url),
        _ => anyhow::bail!("migrate needs a database: --database postgres://USER@HOST/DB"),
    }
}

/// The URL without its password (for the start-up lines).
fn redacted(url: &str) -> String {
    let Some(scheme) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme + 3..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme + 3],
            &authority[..colon],
            &url[scheme + 3 + at..]
        ),
        _ => url.to_owned(),
    }
}

/// Runs `smpp gateway` until Ctrl-C or SIGTERM (or `migrate`, once).
pub async fn run(args: GatewayArgs) -> anyhow::Result<ExitCode> {
    if let Some(GatewayAction::Migrate) = args.action {
        let url = database_url(&args)?;
        let applied = smpp_gateway::PgStore::migrate(&url).await?;
        let mut out = std::io::stdout().lock();
        if applied.is_empty() {
            writeln!(out, "database {}: up to date", redacted(&url))?;
        }
        for version in applied {
            writeln!(
                out,
                "database {}: migration {version} applied",
                redacted(&url)
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let config = args.to_config()?;
    let admin_token = match &args.http_token {
        Some(t) if t.is_empty() => anyhow::bail!("--http-token is empty"),
        Some(t) => Some(
            smpp_server::credentials::Secret::new(t)
                .map_err(|e| anyhow::anyhow!("--http-token: {e}"))?,
        ),
        None => None,
    };
    if let (Some(addr), None) = (&args.http, &admin_token) {
        crate::serve::check_http_loopback(addr)?;
    }
    let http_listener = match &args.http {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (--http)"))?,
        ),
        None => None,
    };
    let http_tls = match (&args.tls.tls_cert, &args.tls.tls_key, args.http_tls) {
        (Some(cert), Some(key), true) => Some(smpp_server::tls_server_config(cert, key, None)?),
        _ => None,
    };
    let upstreams = config.upstreams.clone();
    let store = config.store.clone();
    let stop = crate::common::ShutdownSignal::install()?;
    let gateway = smpp_gateway::start(config).await?;
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut http = None;
    if let Some(listener) = http_listener {
        let addr = listener.local_addr()?;
        let router = gateway.http_router(smpp_gateway::http::HttpOptions {
            admin_token,
            webhook_hosts: args.webhook_hosts.clone(),
        });
        let task = tokio::spawn(crate::obs::http::serve_router(
            listener,
            router,
            async move {
                let _ = http_stopped.await;
            },
            crate::obs::http::HttpLimits::default(),
            http_tls,
        ));
        http = Some((addr, task));
    }
    // The start-up lines are for whoever reads them: a reader that went
    // away (a closed pipe) must not stop the server.
    let banner = || -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        // The same wording as `serve`: tools parse it.
        writeln!(out, "SMPP listening on {}", gateway.smpp_addr())?;
        if let Some(addr) = gateway.tls_addr() {
            writeln!(out, "TLS listening on {addr}")?;
        }
        if let Some((addr, _)) = &http {
            writeln!(out, "HTTP listening on {addr}")?;
        }
        for u in &upstreams {
            writeln!(
                out,
                "upstream: {} at {} ({} binds)",
                u.name, u.addr, u.binds
            )?;
        }
        match &store {
            StoreConfig::Memory => writeln!(out, "store: in memory")?,
            StoreConfig::Path(p) => writeln!(out, "store: {}", p.display())?,
            StoreConfig::Postgres(url) => writeln!(out, "store: {}", redacted(url))?,
        }
        out.flush()
    };
    if let Err(e) = banner() {
        tracing::warn!(error = %e, "could not print the start-up lines; serving on");
    }
    stop.wait().await;
    tracing::info!("shutting down");
    let _ = stop_http.send(());
    if let Some((_, task)) = http {
        task.await.context("HTTP task")?.context("HTTP server")?;
    }
    gateway.shutdown().await.context("shutdown")?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::{Cli, Command};

    fn parse(args: &[&str]) -> anyhow::Result<smpp_gateway::GatewayConfig> {
        let cli = Cli::try_parse_from(args)?;
        let Command::Gateway(args) = cli.command else {
            anyhow::bail!("not the gateway command");
        };
        args.to_config()
    }

    #[test]
    fn the_command_line_builds_the_config() {
        let config = parse(&[
            "smpp",
            "gateway",
            "--memory",
            "--account",
            "esme:secret@10.0.0.0/8",
            "--upstream",
            "a=sys:pw@127.0.0.1:2776,binds=2",
            "--upstream",
            "b=sys:pw@127.0.0.1:2777",
            "--route",
            "4470=b,a",
            "--retention",
            "2h",
            "--tps",
            "10",
            "--mo-route",
            "7000=esme",
            "--distribution-list",
            "esme:staff=447700900001,447700900002",
            "--max-hops",
            "3",
        ])
        .unwrap();
        assert_eq!(config.distribution_lists[0].members.len(), 2);
        assert_eq!(config.max_hops, 3);
        assert_eq!(config.listen, "127.0.0.1:2775");
        assert_eq!(config.store, smpp_gateway::StoreConfig::Memory);
        assert_eq!(config.upstreams[0].binds, 2);
        assert_eq!(config.routes[0].upstreams().collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(config.retention, std::time::Duration::from_secs(7200));
        assert_eq!(config.tps_per_account, Some(10));
        assert_eq!(config.mo_routes[0].prefix, "7000");
        // A route to an unknown upstream, no upstream at all: refused.
        let base = ["smpp", "gateway", "--memory", "--account", "e:p"];
        let unknown = [&base[..], &["--upstream", "a=s:p@h:1", "--route", "*=z"]].concat();
        assert!(parse(&unknown).is_err());
        assert!(parse(&base).is_err());
        assert!(parse(&[&base[..], &["--upstream", "nonsense"]].concat()).is_err());
        let no_hops = [&base[..], &["--upstream", "a=s:p@h:1", "--max-hops", "0"]].concat();
        assert!(parse(&no_hops).is_err());
    }

    #[test]
    fn a_database_replaces_the_store_and_migrate_is_its_subcommand() {
        let url = "postgres://gw:pw@db.example:5433/smpp";
        let config = parse(&[
            "smpp",
            "gateway",
            "--database",
            url,
            "--account",
            "e:p",
            "--upstream",
            "a=s:p@h:1",
        ])
        .unwrap();
        assert_eq!(
            config.store,
            smpp_gateway::StoreConfig::Postgres(url.into())
        );
        let both = ["smpp", "gateway", "--database", url, "--memory"];
        assert!(Cli::try_parse_from(both).is_err());
        let cli = Cli::try_parse_from(["smpp", "gateway", "--database", url, "migrate"]).unwrap();
        let Command::Gateway(args) = cli.command else {
            panic!("not the gateway command");
        };
        assert!(matches!(args.action, Some(super::GatewayAction::Migrate)));
        assert_eq!(super::database_url(&args).unwrap(), url);
        assert_eq!(
            super::redacted(url),
            "postgres://gw:***@db.example:5433/smpp"
        );
        assert_eq!(super::redacted("postgres://gw@h/db"), "postgres://gw@h/db");
        let cli = Cli::try_parse_from(["smpp", "gateway", "migrate"]).unwrap();
        let Command::Gateway(args) = cli.command else {
            panic!("not the gateway command");
        };
        assert!(super::database_url(&args).is_err());
    }
}
