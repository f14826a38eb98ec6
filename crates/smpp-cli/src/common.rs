//! What the client subcommands (`send`, `listen`, `bench`, `campaign`) share:
//! where to connect and how to bind. Defaults match `smpp serve`'s defaults.

use clap::Args;

/// The default SMSC address of `smpp serve`.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// The default SMPP port.
pub const DEFAULT_PORT: u16 = 2775;
/// The default account of `smpp serve`, and its password.
pub use smpp_server::config::{DEFAULT_PASSWORD, DEFAULT_SYSTEM_ID};

/// Where to connect and which account to bind with.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// SMSC host name or address.
    #[arg(long, default_value = DEFAULT_HOST)]
    pub host: String,
    /// SMSC port.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Account (system_id) to bind with.
    #[arg(long, default_value = DEFAULT_SYSTEM_ID)]
    pub system_id: String,
    /// Password to bind with.
    #[arg(long, default_value = DEFAULT_PASSWORD, env = "SMPP_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// system_type sent in the bind.
    #[arg(long, default_value = "")]
    pub system_type: String,
    /// Connect over TLS.
    #[arg(long)]
    pub tls: bool,
    /// With --tls: accept any server certificate (test SMSCs with self-signed certificates).
    #[arg(long, requires = "tls")]
    pub insecure: bool,
    /// With --tls: a PEM file of CA certificates to trust (instead of the built-in roots).
    #[arg(long, requires = "tls")]
    pub ca: Option<std::path::PathBuf>,
    /// The interface_version the bind offers (0x34; a command may offer another).
    #[arg(skip = 0x34)]
    pub interface_version: u8,
    /// The address_range the bind registers (empty; a command may set one).
    #[arg(skip)]
    pub address_range: String,
}

use std::sync::Arc;

use anyhow::Context as _;
use smpp_proto::pdu::Bind;
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::rustls;
use smpp_tokio::{Client, Inbound};

impl ConnectArgs {
    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The bind PDU body for this account (interface version 0x34 unless set).
    pub fn bind(&self) -> Bind {
        Bind {
            system_id: (&self.system_id).into(),
            password: (&self.password).into(),
            system_type: (&self.system_type).into(),
            interface_version: self.interface_version,
            address_range: (&self.address_range).into(),
            ..Default::default()
        }
    }

    /// Connects (over TLS with `--tls`) and binds as `kind`.
    pub async fn connect(
        &self,
        kind: BindKind,
        config: impl Into<Arc<SessionConfig>>,
    ) -> anyhow::Result<(Client, Inbound)> {
        let addr = self.addr();
        let bound = if self.tls {
            let server_name = rustls::pki_types::ServerName::try_from(self.host.clone())
                .with_context(|| format!("{:?} is not a valid TLS server name", self.host))?;
            Client::connect_tls(
                &addr,
                server_name,
                self.tls_config()?,
                kind,
                self.bind(),
                config,
            )
            .await
        } else {
            Client::connect(&addr, kind, self.bind(), config).await
        };
        bound.with_context(|| format!("cannot bind to {addr} as {:?}", self.system_id))
    }

    /// The rustls client configuration for `--tls` (`--ca`, `--insecure`).
    pub fn tls_config(&self) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        smpp_tokio::tls_client_config(self.ca.as_deref(), self.insecure).map_err(anyhow::Error::msg)
    }
}

/// Ctrl-C, or SIGTERM on unix (`serve`, `gateway`): installed before the
/// banner is printed, so a signal sent as soon as the addresses are known is
/// never missed.
#[derive(Debug)]
pub struct ShutdownSignal {
    #[cfg(unix)]
    signals: (tokio::signal::unix::Signal, tokio::signal::unix::Signal),
}

impl ShutdownSignal {
    pub fn install() -> anyhow::Result<ShutdownSignal> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
            let int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
            Ok(ShutdownSignal {
                signals: (term, int),
            })
        }
        #[cfg(not(unix))]
        Ok(ShutdownSignal {})
    }

    pub async fn wait(mut self) {
        #[cfg(unix)]
        {
            let (term, int) = &mut self.signals;
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The SMPP TLS listener's flags, shared by `serve` and `gateway`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsListenArgs {
    /// Also listen for SMPP over TLS here (needs --tls-cert and --tls-key).
    #[arg(long, value_name = "ADDR", requires_all = ["tls_cert", "tls_key"])]
    pub tls_listen: Option<String>,
    /// PEM certificate chain for --tls-listen.
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key for --tls-listen.
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Mutual TLS on --tls-listen: PEM CA certificates; only clients that
    /// present a certificate issued by one of them complete the handshake.
    #[arg(long, value_name = "PEM")]
    pub tls_client_ca: Option<std::path::PathBuf>,
}

impl TlsListenArgs {
    /// The listener they describe, over `current` (a config file's): the
    /// flags' address, certificate and key replace it; `--tls-client-ca`
    /// alone adds mutual TLS to the current one (an error without one).
    pub fn apply(
        &self,
        current: Option<smpp_server::TlsConfig>,
    ) -> anyhow::Result<Option<smpp_server::TlsConfig>> {
        let mut tls = current;
        if let (Some(listen), Some(cert), Some(key)) =
            (&self.tls_listen, &self.tls_cert, &self.tls_key)
        {
            let client_ca = tls.as_ref().and_then(|t| t.client_ca.clone());
            tls = Some(smpp_server::TlsConfig {
                listen: listen.clone(),
                cert: cert.clone(),
                key: key.clone(),
                client_ca,
            });
        }
        if let Some(ca) = &self.tls_client_ca {
            let Some(tls) = &mut tls else {
                anyhow::bail!(
                    "--tls-client-ca needs --tls-listen, --tls-cert and --tls-key (or [tls] in the config)"
                );
            };
            tls.client_ca = Some(ca.clone());
        }
        Ok(tls)
    }
}
