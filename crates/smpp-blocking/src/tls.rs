//! TLS over rustls (feature `tls`): the handshake runs on the connecting
//! (or the connection's) thread, then the same I/O thread as plain TCP
//! drives the session, encrypting and decrypting in place.

use std::future::Future;
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConfig as TlsServerConfig, ServerConnection};
use smpp_proto::pdu::Bind;
use smpp_proto::session::{BindKind, SessionConfig};

use crate::client::wrap;
use crate::rt::{block_on, Socket, Threads};
use crate::wire::Wire;
use crate::{Client, Error, Handler, Inbound, Server};

/// Runs the handshake to its end (blocking, bounded by `limit`).
fn handshake(
    mut tcp: TcpStream,
    mut tls: rustls::Connection,
    limit: Duration,
) -> io::Result<Socket> {
    let deadline = Instant::now() + limit;
    while tls.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "tls handshake timed out",
            ));
        }
        tcp.set_read_timeout(Some(left))?;
        tcp.set_write_timeout(Some(left))?;
        tls.complete_io(&mut tcp)?;
    }
    while tls.wants_write() {
        tls.write_tls(&mut tcp)?;
    }
    Ok(Socket::new(Wire::tls(tcp, tls)))
}

fn invalid(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

impl smpp_async::Tls for Threads {
    type Client = Socket;
    type Server = Socket;

    fn connect_tls(
        tcp: TcpStream,
        name: ServerName<'static>,
        config: Arc<ClientConfig>,
        limit: Duration,
    ) -> impl Future<Output = io::Result<Socket>> + Send {
        let conn = ClientConnection::new(config, name).map_err(invalid);
        std::future::ready(conn.and_then(|conn| handshake(tcp, conn.into(), limit)))
    }

    /// On the connection's own thread, when first polled.
    async fn accept_tls(
        tcp: TcpStream,
        config: Arc<TlsServerConfig>,
        limit: Duration,
    ) -> io::Result<Socket> {
        handshake(
            tcp,
            ServerConnection::new(config).map_err(invalid)?.into(),
            limit,
        )
    }
}

impl Client {
    /// Connects over TCP, runs the TLS handshake for `server_name` (an
    /// untrusted certificate is an [`Error::Io`]), and binds; each step
    /// within the session's `response_timeout`.
    pub fn connect_tls(
        addr: impl ToSocketAddrs,
        server_name: ServerName<'static>,
        tls: Arc<ClientConfig>,
        kind: BindKind,
        bind: Bind,
        config: impl Into<Arc<SessionConfig>>,
    ) -> Result<(Client, Inbound), Error> {
        let bound = smpp_async::Client::connect_tls(addr, server_name, tls, kind, bind, config);
        wrap(block_on(bound))
    }
}

impl<H: Handler<crate::Connection>> Server<H> {
    /// Like [`Server::run`], with a TLS handshake on every connection (on
    /// the connection's own thread, bounded by the session init timeout).
    pub fn run_tls(self, tls: Arc<TlsServerConfig>) -> io::Result<()> {
        block_on(self.0.run_tls(tls))
    }
}
