//! The MC side: [`Server`], its [`Handler`], and per-connection [`Connection`] handles.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use smpp_proto::pdu::{AlertNotification, Body, DeliverSm, Outbind, Pdu};
use smpp_proto::session::{CloseReason, Role, Stats};

use crate::driver::{self, Handle};
use crate::wire::Wire;
use crate::{check_status, Error};
use smpp_proto::endpoint::serve::{self, ConnectionInfo, Registered, Registry, Response};
use smpp_proto::endpoint::Command;
use smpp_proto::endpoint::Incoming;

/// The application side of an MC:
/// [`BlockingHandler`](smpp_proto::endpoint::serve::BlockingHandler) over
/// this crate's [`Connection`]s (`impl Handler<Connection> for MySmsc`).
///
/// Each connection has its own handler thread: the requests of one
/// connection are handled one after another, in arrival order (those of
/// different connections in parallel). A method may block, and may call
/// [`Connection::deliver`] from another thread (a delivery receipt after a
/// `submit_sm`) — not from the handler thread itself while the ESME waits
/// for the answer being computed. A panicking method answers
/// `ESME_RSYSERR`.
pub use smpp_proto::endpoint::serve::BlockingHandler as Handler;

/// Prepares an accepted connection: its writing side and a socket to read from.
pub(crate) type WrapFn = dyn Fn(TcpStream) -> io::Result<(Wire, TcpStream)> + Send + Sync;
pub(crate) type Wrap = Arc<WrapFn>;

pub use smpp_proto::endpoint::ServerConfig;

/// One ESME connection, as seen by the server. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Connection {
    inner: Arc<ConnectionInner>,
}

#[derive(Debug)]
struct ConnectionInner {
    info: ConnectionInfo,
    handle: Handle,
}

/// Its number, address, and how it bound.
impl std::ops::Deref for Connection {
    type Target = ConnectionInfo;

    fn deref(&self) -> &ConnectionInfo {
        &self.inner.info
    }
}

impl Registered for Connection {
    fn info(&self) -> &ConnectionInfo {
        self
    }

    fn is_closed(&self) -> bool {
        self.inner.handle.is_closed()
    }

    fn release(&self) {
        self.inner.handle.release();
    }
}

impl Connection {
    /// Sends a request to the ESME (`deliver_sm`, `data_sm`...) and waits for
    /// its response; waits while the window is full. An error status is [`Error::Status`].
    pub fn request(&self, body: Body) -> Result<Pdu, Error> {
        self.inner.handle.request_any(body).and_then(check_status)
    }

    /// Sends a `deliver_sm` (a mobile-originated message or a delivery receipt).
    pub fn deliver(&self, sm: DeliverSm) -> Result<Pdu, Error> {
        self.request(Body::DeliverSm(sm))
    }

    /// Sends an `alert_notification` (it has no response).
    pub fn alert(&self, alert: AlertNotification) -> Result<(), Error> {
        let body = Body::AlertNotification(alert);
        self.inner
            .handle
            .call(|reply| Command::Send { body, reply })
    }

    /// Unbinds and waits for the ESME's answer (or the unbind timeout).
    pub fn unbind(&self) -> Result<(), Error> {
        let handle = &self.inner.handle;
        let resp = handle.call(|reply| Command::Unbind { reply });
        handle.closed();
        resp.map(drop)
    }

    /// The session's counters and window use ([`Error::Closed`] once ended).
    pub fn stats(&self) -> Result<Stats, Error> {
        self.inner.handle.call(Command::Stats)
    }

    /// Closes at once, without unbinding.
    pub fn close(&self) {
        self.inner.handle.close();
    }

    /// Blocks until the session closes, and says why.
    pub fn closed(&self) -> CloseReason {
        self.inner.handle.closed()
    }

    fn respond(&self, (seq, status, body): Response) {
        let _ = self
            .inner
            .handle
            .send(Command::Respond { seq, status, body });
    }
}

/// Starts an MC-initiated connection (an outbind) with the server's handler.
type Outbinder = Box<
    dyn Fn(TcpStream, SocketAddr, Outbind, SyncSender<Result<Connection, Error>>) + Send + Sync,
>;

struct Shared {
    config: ServerConfig,
    /// Set once by [`Server::bind`] (it knows the handler's type).
    outbinder: OnceLock<Outbinder>,
    registry: Registry<Connection>,
    shutdown: AtomicBool,
    local_addr: SocketAddr,
}

/// Finds connections and shuts the server down; cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle").finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// Every open connection.
    pub fn connections(&self) -> Vec<Connection> {
        self.shared.registry.connections()
    }

    /// A connection bound as receiver or transceiver with this `system_id`
    /// (the one to send `deliver_sm` to).
    pub fn receiver(&self, system_id: &str) -> Option<Connection> {
        self.shared.registry.receiver(system_id)
    }

    /// MC-initiated session: connects to an ESME's outbind listener at
    /// `addr` and sends `outbind`; the ESME then binds (as receiver, or
    /// transceiver) and the server's [`Handler`] authenticates it as any
    /// other bind. Returns the connection once `outbind` is sent; it is
    /// bound when [`bind_kind`](ConnectionInfo::bind_kind) says so. Connecting takes at most
    /// the session's `response_timeout`, and its `session_init_timeout`
    /// closes it when no bind follows.
    pub fn outbind(&self, addr: impl ToSocketAddrs, outbind: Outbind) -> Result<Connection, Error> {
        if self.shared.shutdown.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        let tcp = crate::client::connect_any(addr, self.shared.config.session.response_timeout)?;
        tcp.set_nodelay(true)?;
        let peer = tcp.peer_addr()?;
        let start = self.shared.outbinder.get().ok_or(Error::Closed)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        start(tcp, peer, outbind, tx);
        rx.recv().map_err(|_| Error::Closed)?
    }

    /// Stops accepting, unbinds every connection (closing those not bound),
    /// and lets [`Server::run`] return once they are all gone.
    pub fn shutdown(&self) {
        if !self.shared.shutdown.swap(true, Ordering::SeqCst) {
            // Wake the accept loop.
            let mut addr = self.shared.local_addr;
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
    }
}

/// An SMPP server (MC): an accept loop with one session per connection.
pub struct Server<H> {
    listener: TcpListener,
    handler: Arc<H>,
    shared: Arc<Shared>,
}

impl<H> std::fmt::Debug for Server<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl<H: Handler<Connection>> Server<H> {
    /// Listens on `addr`.
    pub fn bind(
        addr: impl ToSocketAddrs,
        handler: H,
        config: ServerConfig,
    ) -> io::Result<Server<H>> {
        let listener = TcpListener::bind(addr)?;
        let shared = Arc::new(Shared {
            config,
            outbinder: OnceLock::new(),
            registry: Registry::default(),
            shutdown: AtomicBool::new(false),
            local_addr: listener.local_addr()?,
        });
        let handler = Arc::new(handler);
        let (weak, h) = (Arc::downgrade(&shared), handler.clone());
        let start: Outbinder = Box::new(move |tcp, peer, outbind, tx| {
            let Some(shared) = weak.upgrade() else {
                return;
            };
            let handler = h.clone();
            let spawned = std::thread::Builder::new()
                .name("smpp-serve".into())
                .spawn(move || serve(handler, shared, &plain, tcp, peer, Some((outbind, tx))));
            if let Err(e) = spawned {
                tracing::warn!(%peer, error = %e, "cannot start a connection thread");
            }
        });
        let _ = shared.outbinder.set(start);
        Ok(Server {
            listener,
            handler,
            shared,
        })
    }

    #[cfg(feature = "tls")]
    pub(crate) fn session_config(&self) -> &smpp_proto::session::SessionConfig {
        &self.shared.config.session
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle to find connections and shut down.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Accepts TCP connections on the calling thread until
    /// [`ServerHandle::shutdown`], then unbinds everyone and returns when
    /// every connection has ended.
    pub fn run(self) -> io::Result<()> {
        self.run_with(Arc::new(plain))
    }

    /// The accept loop; `wrap` prepares each connection (a TLS handshake)
    /// on the connection's own thread.
    pub(crate) fn run_with(self, wrap: Wrap) -> io::Result<()> {
        let mut threads: Vec<JoinHandle<()>> = Vec::new();
        while !self.shared.shutdown.load(Ordering::SeqCst) {
            let (tcp, peer) = match self.listener.accept() {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            if self.shared.shutdown.load(Ordering::SeqCst) {
                break;
            }
            threads.retain(|t| !t.is_finished());
            if threads.len() >= self.shared.config.max_connections {
                tracing::warn!(%peer, "connection limit reached: closing");
                continue;
            }
            let _ = tcp.set_nodelay(true);
            let (handler, shared) = (self.handler.clone(), self.shared.clone());
            let wrap = wrap.clone();
            let spawned = std::thread::Builder::new()
                .name("smpp-serve".into())
                .spawn(move || serve(handler, shared, &*wrap, tcp, peer, None));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => tracing::warn!(%peer, error = %e, "cannot start a connection thread"),
            }
        }
        drop(self.listener);
        self.shared.registry.release_all();
        for t in threads {
            let _ = t.join();
        }
        Ok(())
    }
}

/// A plain TCP connection: the stream and a clone to read from.
fn plain(tcp: TcpStream) -> io::Result<(Wire, TcpStream)> {
    let reader = tcp.try_clone()?;
    Ok((Wire::plain(tcp), reader))
}

/// One connection: runs the handler for each request in arrival order.
/// With `outbind`, we opened it: send `outbind` first and say how that went.
fn serve<H: Handler<Connection>>(
    handler: Arc<H>,
    shared: Arc<Shared>,
    wrap: &WrapFn,
    tcp: TcpStream,
    peer: SocketAddr,
    outbind: Option<(Outbind, SyncSender<Result<Connection, Error>>)>,
) {
    let started = wrap(tcp).and_then(|(wire, reader)| {
        driver::spawn(wire, reader, Role::Mc, shared.config.session.clone())
    });
    let (handle, incoming, io) = match started {
        Ok(started) => started,
        Err(e) => {
            if let Some((_, tx)) = outbind {
                let _ = tx.send(Err(Error::Io(e)));
                return;
            }
            return tracing::debug!(%peer, error = %e, "connection not started");
        }
    };
    let info = ConnectionInfo::new(shared.registry.next_id(), Some(peer));
    let conn = Connection {
        inner: Arc::new(ConnectionInner { info, handle }),
    };
    let registered = shared.registry.register(conn.clone());
    if shared.shutdown.load(Ordering::SeqCst) {
        conn.release();
    }
    if let Some((outbind, tx)) = outbind {
        let sent = conn
            .inner
            .handle
            .call(|reply| Command::Outbind { outbind, reply });
        if sent.is_err() {
            conn.close();
        }
        let _ = tx.send(sent.map(|()| conn.clone()));
    }
    handle_requests(&*handler, &shared, &conn, incoming);
    drop(registered);
    let _ = io.join();
}

fn handle_requests<H: Handler<Connection>>(
    handler: &H,
    shared: &Shared,
    conn: &Connection,
    incoming: Receiver<Incoming>,
) {
    let (info, system_id) = (&conn.inner.info, &shared.config.system_id);
    for item in incoming {
        if let Some(response) = serve::route_blocking(handler, conn, info, system_id, item) {
            conn.respond(response);
        }
    }
}
