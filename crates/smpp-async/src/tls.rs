//! TLS over rustls (feature `tls`): the runtime's handshake, then the same
//! driver as plain TCP.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::drive::Transport;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig as TlsServerConfig};
use smpp_proto::pdu::Bind;
use smpp_proto::session::{BindKind, Role, SessionConfig};

use crate::client::connect;
use crate::{
    driver, timeout, Client, Connect, Connection, Error, Handler, Inbound, Io, Runtime, Server,
};

/// A runtime's rustls handshakes (`tokio-rustls`, `futures-rustls`).
pub trait Tls: Runtime {
    /// A client TLS stream, ready for the driver.
    type Client: Transport + Send + 'static;
    /// A server TLS stream, ready for the driver.
    type Server: Transport + Send + 'static;

    /// The client handshake for `name` over `tcp`. The caller gives up
    /// after `limit` (a blocking handshake bounds itself by it).
    fn connect_tls(
        tcp: Self::Tcp,
        name: ServerName<'static>,
        config: Arc<ClientConfig>,
        limit: Duration,
    ) -> impl Future<Output = io::Result<Self::Client>> + Send;
    /// The server handshake over `tcp`, given up after `limit` as above.
    fn accept_tls(
        tcp: Self::Tcp,
        config: Arc<TlsServerConfig>,
        limit: Duration,
    ) -> impl Future<Output = io::Result<Self::Server>> + Send + 'static;
}

impl<R: Tls> Client<R> {
    /// Connects over TCP, runs the TLS handshake for `server_name`, and
    /// binds; connecting, the handshake and the bind each take at most the
    /// session's `response_timeout` ([`Error::Timeout`]).
    pub async fn connect_tls<A>(
        addr: A,
        server_name: ServerName<'static>,
        tls: Arc<ClientConfig>,
        kind: BindKind,
        bind: Bind,
        config: impl Into<Arc<SessionConfig>>,
    ) -> Result<(Client<R>, Inbound), Error>
    where
        R: Connect<A>,
    {
        let config = config.into();
        let tcp = connect::<R, A>(addr, &config).await?;
        let limit = config.response_timeout;
        let stream = R::connect_tls(tcp, server_name, tls, limit);
        let stream = timeout::<R, _>(limit, stream)
            .await
            .ok_or(Error::Timeout)??;
        let (handle, incoming) = driver::spawn::<R, _>(stream, Role::Esme, config, None, None);
        Client::finish_bind(handle, incoming, kind, bind).await
    }
}

impl<R: Tls, H: Handler<Connection>> Server<R, H>
where
    R: Io<<R as Runtime>::Tcp>,
{
    /// Like [`Server::run`], with a TLS handshake on every connection (in
    /// the connection's own task, bounded by the session init timeout).
    pub async fn run_tls(self, tls: Arc<TlsServerConfig>) -> io::Result<()> {
        let limit = self.shared.handshake_limit();
        self.run_transport(move |tcp, peer| {
            let handshake = R::accept_tls(tcp, tls.clone(), limit);
            async move {
                handshake
                    .await
                    .map(|s| (s, crate::Accepted::new(peer).with_tls()))
            }
        })
        .await
    }
}

/// A rustls client configuration (ring provider, safe protocol versions):
/// the certificate authorities of the PEM file `ca`, or the web PKI's roots
/// without one; `insecure` checks handshake signatures but trusts any
/// certificate (labs and tests only).
pub fn tls_client_config(
    ca: Option<&std::path::Path>,
    insecure: bool,
) -> Result<Arc<ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol versions: {e}"))?;
    let config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match ca {
            Some(path) => {
                for cert in CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                {
                    let cert = cert.map_err(|e| format!("bad PEM in {}: {e}", path.display()))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("bad CA certificate in {}: {e}", path.display()))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// `--insecure`: checks the handshake signatures but trusts any certificate.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
