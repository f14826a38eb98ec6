//! SMSC server components, and the SMPP simulator assembled from them.
//!
//! ```no_run
//! use smpp_server::{start, ServeConfig};
//!
//! # async fn run() -> anyhow::Result<()> {
//! // An in-memory simulator on a free port, with the default account
//! // (smppclient1 / password): every message is delivered, receipts at once.
//! let server = start(ServeConfig::for_tests()).await?;
//! println!("SMPP listening on {}", server.smpp_addr());
//! // ... bind ESMEs, submit, receive receipts ...
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Components
//! - [`config`]: what a server runs with ([`ServeConfig`]: accounts, store,
//!   rules, routes, limits) and its TOML file.
//! - `accounts`: credentials (compared in constant time), allow-lists of
//!   client networks, per-account request rates.
//! - `store`: the records of messages behind the `Store` trait, in memory or
//!   in an embedded fjall (LSM) database (group commit, one sync per batch).
//! - `routing`: where a submission goes, decided once and returned as data:
//!   a refusal, a simulated outcome, or a locally bound ESME.
//! - `smsc`: the assembly: binds, the one submission path, the other
//!   operations, and delivery (receipts and routed messages to bound
//!   receivers, with retries), driven by timers.
//! - [`clock`]: every time read and wait goes through a [`Clock`]
//!   ([`SystemClock`]; [`ManualClock`] in tests).
//! - [`ussd_menu`]: the scripted USSD menu (a tree of screens per service
//!   code) that the simulator walks with the subscriber.
//! - [`observer`]: the [`Observer`] the server tells what it does; [`metrics`]
//!   and [`cdr`] consume it ([`telemetry::ServeObserver`] wires both).
//!
//! No module imports one that imports it back: `smsc` uses the others, the
//! others know nothing of `smsc`.
//!
//! # Security
//! - Passwords are compared in constant time and never logged.
//! - An account may carry an allow-list of client networks: a bind from
//!   elsewhere gets `ESME_RBINDFAIL`, whether the password was right or not,
//!   and is logged at warn level (system_id and peer only).
//! - TLS-only mode: SMPP over TLS only, no plain-TCP listener.
//! - Passwords may be argon2id hashes (`credentials`); failed binds lock an
//!   address out for a while (`bind_failure_limit`).
//! - PROXY protocol (v1, v2) from configured balancers (`proxy_protocol`):
//!   the client address it carries is the connection's peer address.
//! - Mutual TLS (`client_ca` in [`TlsConfig`]); an account's
//!   `certificate_name` binds it to its client certificate.
//! - Late responses of the sessions (answers to our `deliver_sm` after it
//!   timed out) are counted ([`Observer::late_responses`]).
//!
//! # Guarantees
//! - With the persistent store, a `submit_sm_resp` (and `data_sm_resp`,
//!   `submit_multi_resp`, `broadcast_sm_resp`, a successful `cancel_sm` or
//!   `replace_sm`) is sent only after the message's record is committed to
//!   disk (group commit: one fsync per batch of concurrent submissions). A
//!   `kill -9` loses no acknowledged message and no receipt owed for one;
//!   a receipt may be delivered twice if the crash comes between its
//!   `deliver_sm_resp` and the write that records it (at-least-once).
//! - Memory is bounded: `max_messages` records are kept (older final ones
//!   are forgotten, or read back from disk); twice that many still waiting
//!   for a receiver make submissions fail with `ESME_RMSGQFUL`.
//! - Message ids are hexadecimal numbers starting at the current time in
//!   microseconds and above every id the store ever committed: unique
//!   across restarts.
//! - Disk is bounded too: a message final for longer than the retention
//!   (default 7 days) with nothing left to do (receipts delivered, final
//!   state reported) is deleted from the store and forgotten (query_sm then
//!   answers as for an unknown id), a few thousand per write transaction.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use smpp_proto::pdu::profile::TlvProfile;
use smpp_proto::session::SessionConfig;
use smpp_tokio::{rustls, Server, ServerConfig, ServerHandle};
use tokio::task::JoinHandle;

pub mod accounts;
mod binds;
pub mod cdr;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod dashboard;
mod jobs;
pub mod lockout;
pub mod metrics;
pub mod observer;
mod proxy;
mod routing;
mod smsc;
mod store;
pub mod telemetry;
pub mod ussd_menu;

pub use binds::SessionView;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    Account, BindFailureLimit, Route, Rule, ServeConfig, Simulation, StoreConfig, TlsConfig,
};
pub use observer::{BindEvent, FinalEvent, NoObserver, Observer, ReceiptEvent, RequestEvent};
pub use smsc::{MessageFilter, MessageView, Smsc};
pub use store::Addr;

/// A started SMSC: its addresses, its state, and how to stop it.
#[derive(Debug)]
pub struct RunningServer<C: Clock = SystemClock> {
    plain_addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    smsc: Arc<Smsc<C>>,
    handles: Vec<ServerHandle>,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
    timers: JoinHandle<()>,
    retention: JoinHandle<()>,
    /// The outbind loops.
    outbinds: Vec<JoinHandle<()>>,
}

impl<C: Clock> RunningServer<C> {
    /// The address SMPP clients connect to: the plain-TCP listener's, or
    /// in TLS-only mode the TLS listener's.
    pub fn smpp_addr(&self) -> SocketAddr {
        self.plain_addr
            .or(self.tls_addr)
            .expect("a server listens somewhere")
    }

    /// The plain-TCP SMPP address (`None` in TLS-only mode).
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain_addr
    }

    /// The TLS address, when enabled.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The SMSC: [`Smsc::inject_mo`], [`Smsc::message`].
    pub fn smsc(&self) -> &Arc<Smsc<C>> {
        &self.smsc
    }

    /// Stops accepting, unbinds every ESME (waiting for their answers),
    /// stops the timers and makes every store write durable.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        for handle in &self.handles {
            handle.shutdown();
        }
        for server in self.servers {
            server.await.context("server task")?.context("server")?;
        }
        self.smsc.stop();
        self.retention.abort();
        for task in &self.outbinds {
            task.abort();
        }
        let _ = self.timers.await;
        self.smsc.flush().await;
        Ok(())
    }
}

/// Session settings of the server side: a wide inbound window (clients
/// pipeline hundreds of submits), a modest outbound one (deliver_sm).
fn session_config(strict: bool) -> SessionConfig {
    let profile = if strict {
        TlvProfile::Strict
    } else {
        TlvProfile::Lenient
    };
    SessionConfig::default()
        .with_max_inbound(1024)
        .with_max_in_flight(64)
        .with_response_timeout(Duration::from_secs(10))
        .with_tlv_profile(profile)
}

/// Connections served at once (binds beyond `--max-binds-per-account` are
/// refused per account); more are closed at accept. Above the 100,000 idle
/// binds `smpp serve` is measured holding (docs/BENCHMARKS.md); the open-file
/// limit is usually the lower bound (`smpp serve` raises its soft limit to
/// the hard one at start).
pub const MAX_CONNECTIONS: usize = 250_000;

/// Starts an SMSC with no observer.
pub async fn start(config: ServeConfig) -> anyhow::Result<RunningServer> {
    start_with(config, Arc::new(NoObserver)).await
}

/// Starts an SMSC: opens the store, binds the listeners, spawns the accept
/// loops and the receipt timers. HTTP and CDR output are not part of it
/// (see [`Observer`], [`Smsc::inject_mo`] and [`Smsc::message`]).
pub async fn start_with(
    config: ServeConfig,
    observer: Arc<dyn Observer>,
) -> anyhow::Result<RunningServer> {
    start_with_clock(config, observer, SystemClock).await
}

/// [`start_with`] on another [`Clock`] (a [`ManualClock`] in tests: the
/// server's timers then move when the clock does).
pub async fn start_with_clock<C: Clock>(
    config: ServeConfig,
    observer: Arc<dyn Observer>,
    clock: C,
) -> anyhow::Result<RunningServer<C>> {
    let tls = config.tls.clone();
    let listen = (!config.tls_only).then(|| config.listen.clone());
    if config.tls_only && tls.is_none() {
        bail!("TLS-only mode needs a TLS listener (--tls-listen, --tls-cert, --tls-key)");
    }
    let mutual = tls.as_ref().is_some_and(|t| t.client_ca.is_some());
    if let Some(a) = config
        .accounts
        .iter()
        .find(|a| a.certificate_name.is_some())
    {
        if !mutual {
            bail!(
                "account {}: certificate_name needs mutual TLS (client_ca in [tls], --tls-client-ca)",
                a.system_id
            );
        }
    }
    // Connections are cheap (tens of KiB each): the process's descriptor
    // limit is the real bound, not this.
    let server_config = ServerConfig::default()
        .with_session(session_config(config.strict))
        .with_max_connections(MAX_CONNECTIONS)
        .with_system_id(config.system_id.clone())
        .with_late_responses(observer.late_responses().unwrap_or_default())
        .with_tlvs_dropped(observer.tlvs_dropped().unwrap_or_default());
    let smsc = Smsc::new(config, observer, clock)?;
    let handler = smsc::SmscHandler(smsc.clone());
    let balancers: Arc<[config::Cidr]> = smsc.config().proxy_protocol.clone().into();
    let Listeners {
        plain_addr,
        tls_addr,
        handles,
        servers,
    } = listen_on(
        handler,
        server_config,
        listen.as_deref(),
        tls.as_ref(),
        balancers,
    )
    .await?;
    let timers = tokio::spawn(smsc.clone().run_timers());
    let retention = tokio::spawn(smsc.clone().run_retention());
    let outbinds = match handles.first() {
        Some(handle) => smsc
            .config()
            .outbinds
            .iter()
            .map(|target| tokio::spawn(smsc.clone().run_outbind(handle.clone(), target.clone())))
            .collect(),
        None => Vec::new(),
    };
    Ok(RunningServer {
        plain_addr,
        tls_addr,
        smsc,
        handles,
        servers,
        timers,
        retention,
        outbinds,
    })
}

/// The SMPP listeners of a server: plain TCP and/or TLS, each accepting a
/// PROXY protocol header first from trusted balancers. `smpp serve` and
/// `smpp gateway` both listen through [`listen_on`].
#[derive(Debug)]
pub struct Listeners {
    /// The plain-TCP listener's address.
    pub plain_addr: Option<SocketAddr>,
    /// The TLS listener's address.
    pub tls_addr: Option<SocketAddr>,
    /// Their handles (to shut them down).
    pub handles: Vec<ServerHandle>,
    /// Their accept loops.
    pub servers: Vec<JoinHandle<std::io::Result<()>>>,
}

/// Binds `plain` and/or `tls` for `handler` and spawns their accept loops.
/// Connections from `balancers` start with a PROXY header (v1 or v2),
/// read before anything else (before the TLS handshake on the TLS
/// listener): the address it carries is the client's. With mutual TLS the
/// client's certificate goes with the connection to the bind.
pub async fn listen_on<H>(
    handler: H,
    server_config: ServerConfig,
    plain: Option<&str>,
    tls: Option<&TlsConfig>,
    balancers: Arc<[config::Cidr]>,
) -> anyhow::Result<Listeners>
where
    H: smpp_tokio::Handler<smpp_tokio::Connection> + Clone + Send + Sync + 'static,
{
    let mut handles = Vec::new();
    let mut servers = Vec::new();
    let mut plain_addr = None;
    if let Some(listen) = plain {
        let server = Server::bind(listen, handler.clone(), server_config.clone())
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        plain_addr = Some(server.local_addr()?);
        handles.push(server.handle());
        if balancers.is_empty() {
            servers.push(tokio::spawn(server.run()));
        } else {
            let balancers = balancers.clone();
            servers.push(tokio::spawn(server.run_accepting(move |mut tcp, peer| {
                let trusted = proxy::trusted(&balancers, peer);
                async move {
                    let client = if trusted {
                        proxy::read_client(&mut tcp, peer).await?
                    } else {
                        peer
                    };
                    Ok((tcp, smpp_tokio::Accepted::new(client)))
                }
            })));
        }
    }
    let mut tls_addr = None;
    if let Some(tls) = tls {
        let tls_config = tls_server_config(&tls.cert, &tls.key, tls.client_ca.as_deref())?;
        let server = Server::bind(&tls.listen, handler, server_config)
            .await
            .with_context(|| format!("cannot listen on {}", tls.listen))?;
        tls_addr = Some(server.local_addr()?);
        handles.push(server.handle());
        // A PROXY header comes before the TLS handshake (the balancer
        // passes TLS through); both within the handshake limit. The client's
        // certificate (mutual TLS) goes with the connection to the bind.
        let acceptor = smpp_tokio::tokio_rustls::TlsAcceptor::from(tls_config);
        servers.push(tokio::spawn(server.run_accepting(move |mut tcp, peer| {
            let trusted = proxy::trusted(&balancers, peer);
            let acceptor = acceptor.clone();
            async move {
                let client = if trusted {
                    proxy::read_client(&mut tcp, peer).await?
                } else {
                    peer
                };
                let tls = acceptor.accept(tcp).await?;
                let mut accepted = smpp_tokio::Accepted::new(client).with_tls();
                if let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                    accepted = accepted.with_client_certificate(cert.as_ref());
                }
                Ok((tls, accepted))
            }
        })));
    }
    Ok(Listeners {
        plain_addr,
        tls_addr,
        handles,
        servers,
    })
}

fn read_certs(
    path: &std::path::Path,
) -> anyhow::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("bad PEM in {}", path.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", path.display());
    }
    Ok(certs)
}

/// A rustls server configuration from PEM files: the certificate chain, its
/// private key, and optionally CA certificates that every client must
/// present a certificate from (mutual TLS). For the SMPP and HTTP listeners.
pub fn tls_server_config(
    cert: &std::path::Path,
    key: &std::path::Path,
    client_ca: Option<&std::path::Path>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    let certs = read_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read a private key from {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in read_certs(ca)? {
                roots
                    .add(c)
                    .with_context(|| format!("bad CA certificate in {}", ca.display()))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .with_context(|| format!("client CA {}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, key)
        .context("TLS certificate and key")?;
    Ok(Arc::new(config))
}
