//! TLS over rustls (feature `tls`): the handshake runs on the connecting
//! (or the connection's) thread, then the same I/O thread as plain TCP
//! drives the session, encrypting and decrypting in place.

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConfig as TlsServerConfig, ServerConnection};
use smpp_proto::pdu::Bind;
use smpp_proto::session::{BindKind, SessionConfig};

use crate::wire::Wire;
use crate::{Client, Error, Handler, Inbound, Server};

/// How long a handshake may take when the session has no init timeout.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(30);

/// Runs the handshake to its end, bounded by `limit`.
fn handshake(tcp: &mut TcpStream, tls: &mut rustls::Connection, limit: Duration) -> io::Result<()> {
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
        tls.complete_io(tcp)?;
    }
    while tls.wants_write() {
        tls.write_tls(tcp)?;
    }
    Ok(())
}

impl Client {
    /// Connects over TCP, runs the TLS handshake for `server_name` (at most
    /// the session's `response_timeout`; an untrusted certificate is an
    /// [`Error::Io`]), and binds.
    pub fn connect_tls(
        addr: impl ToSocketAddrs,
        server_name: ServerName<'static>,
        tls: Arc<ClientConfig>,
        kind: BindKind,
        bind: Bind,
        config: impl Into<Arc<SessionConfig>>,
    ) -> Result<(Client, Inbound), Error> {
        let config = config.into();
        let mut tcp = crate::client::connect_any(addr, config.response_timeout)?;
        tcp.set_nodelay(true)?;
        let conn = ClientConnection::new(tls, server_name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut conn = rustls::Connection::Client(conn);
        handshake(&mut tcp, &mut conn, config.response_timeout)?;
        let reader = tcp.try_clone()?;
        Client::bind_on(Wire::tls(tcp, conn), reader, kind, bind, config)
    }
}

impl<H: Handler<crate::Connection>> Server<H> {
    /// Like [`Server::run`], with a TLS handshake on every connection (on
    /// the connection's own thread, bounded by the session init timeout).
    pub fn run_tls(self, tls: Arc<TlsServerConfig>) -> io::Result<()> {
        let limit = self.session_config().session_init_timeout;
        self.run_with(Arc::new(move |mut tcp: TcpStream| {
            let conn = ServerConnection::new(tls.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let mut conn = rustls::Connection::Server(conn);
            handshake(&mut tcp, &mut conn, limit.unwrap_or(HANDSHAKE_LIMIT))?;
            let reader = tcp.try_clone()?;
            Ok((Wire::tls(tcp, conn), reader))
        }))
    }
}
