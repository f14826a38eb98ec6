//! TLS over rustls (feature `tls`): `futures-rustls` handshakes for
//! `Client::connect_tls` and `Server::run_tls`.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_net::TcpStream;
use futures_rustls::rustls::pki_types::ServerName;
use futures_rustls::rustls::{ClientConfig, ServerConfig};
use futures_rustls::{client, server, TlsAcceptor, TlsConnector};

use crate::{Smol, Stream};

impl smpp_async::Tls for Smol {
    type Client = Stream<client::TlsStream<TcpStream>>;
    type Server = Stream<server::TlsStream<TcpStream>>;

    fn connect_tls(
        tcp: TcpStream,
        name: ServerName<'static>,
        config: Arc<ClientConfig>,
        _: Duration,
    ) -> impl Future<Output = io::Result<Self::Client>> + Send {
        let connecting = TlsConnector::from(config).connect(name, tcp);
        async move { connecting.await.map(Stream) }
    }

    fn accept_tls(
        tcp: TcpStream,
        config: Arc<ServerConfig>,
        _: Duration,
    ) -> impl Future<Output = io::Result<Self::Server>> + Send + 'static {
        let accepting = TlsAcceptor::from(config).accept(tcp);
        async move { accepting.await.map(Stream) }
    }
}
