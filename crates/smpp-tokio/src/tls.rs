//! TLS over rustls (feature `tls`): thin wrappers that hand a TLS stream to
//! the same driver as plain TCP.

use std::io;
use std::sync::Arc;

use smpp_proto::pdu::Bind;
use smpp_proto::session::{BindKind, SessionConfig};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, ServerConfig as TlsServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::{Client, Error, Handler, Inbound, Server};

impl Client {
    /// Connects over TCP, runs the TLS handshake for `server_name`, and binds.
    pub async fn connect_tls(
        addr: impl ToSocketAddrs,
        server_name: ServerName<'static>,
        tls: Arc<ClientConfig>,
        kind: BindKind,
        bind: Bind,
        config: impl Into<Arc<SessionConfig>>,
    ) -> Result<(Client, Inbound), Error> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let stream = TlsConnector::from(tls).connect(server_name, tcp).await?;
        Client::bind_over(stream, kind, bind, config).await
    }
}

impl<H: Handler<crate::Connection>> Server<H> {
    /// Like [`Server::run`], with a TLS handshake on every connection (in
    /// the connection's own task, bounded by the session init timeout).
    pub async fn run_tls(self, tls: Arc<TlsServerConfig>) -> io::Result<()> {
        let acceptor = TlsAcceptor::from(tls);
        self.run_with(move |tcp| acceptor.accept(tcp)).await
    }
}
