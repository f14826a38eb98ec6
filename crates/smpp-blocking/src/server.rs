//! The MC side: [`Server`], its [`Handler`], and per-connection [`Connection`] handles.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use smpp_proto::pdu::{
    AlertNotification, Bind, Body, CancelSm, CommandStatus, DataSm, DataSmResp, DeliverSm, Outbind,
    Pdu, QuerySm, QuerySmResp, ReplaceSm, SequenceNumber, SubmitMulti, SubmitMultiResp, SubmitSm,
    SubmitSmResp, Tlvs,
};
use smpp_proto::session::{BindKind, CloseReason, Role, Stats};

use crate::driver::{self, Handle};
use crate::wire::Wire;
use crate::{check_status, Error};
use smpp_proto::endpoint::Command;
use smpp_proto::endpoint::{bind_answer, default_answer, Incoming};

/// The application side of an MC: authenticates binds and answers requests.
///
/// Each connection has its own handler thread: the requests of one
/// connection are handled one after another, in arrival order (those of
/// different connections in parallel). A method may block, and may call
/// [`Connection::deliver`] from another thread (a delivery receipt after a
/// `submit_sm`) — not from the handler thread itself while the ESME waits
/// for the answer being computed. A panicking method answers
/// `ESME_RSYSERR`. Implement [`submit_sm`](Handler::submit_sm) for a plain
/// SMSC, or [`request`](Handler::request) to see every operation.
pub trait Handler: Send + Sync + 'static {
    /// Accepts (`Ok`) or rejects (an error status such as
    /// `CommandStatus::INVALID_PASSWORD`) a bind.
    fn bind(&self, conn: &Connection, kind: BindKind, bind: &Bind) -> Result<(), CommandStatus>;

    /// Answers a `submit_sm` with its message id, or an error status.
    fn submit_sm(&self, conn: &Connection, sm: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        unsupported(conn, sm)
    }

    /// Answers a `data_sm`.
    fn data_sm(&self, conn: &Connection, sm: DataSm) -> Result<DataSmResp, CommandStatus> {
        unsupported(conn, sm)
    }

    /// Answers a `submit_multi`.
    fn submit_multi(
        &self,
        conn: &Connection,
        sm: SubmitMulti,
    ) -> Result<SubmitMultiResp, CommandStatus> {
        unsupported(conn, sm)
    }

    /// Answers a `query_sm`.
    fn query_sm(&self, conn: &Connection, query: QuerySm) -> Result<QuerySmResp, CommandStatus> {
        unsupported(conn, query)
    }

    /// Answers a `cancel_sm`.
    fn cancel_sm(&self, conn: &Connection, cancel: CancelSm) -> Result<Tlvs, CommandStatus> {
        unsupported(conn, cancel)
    }

    /// Answers a `replace_sm`.
    fn replace_sm(&self, conn: &Connection, replace: ReplaceSm) -> Result<Tlvs, CommandStatus> {
        unsupported(conn, replace)
    }

    /// Answers any request with its `*_resp` body, or an error status. The
    /// default hands each operation to its method above (each refusing with
    /// `ESME_RINVCMDID` unless implemented) and refuses the others
    /// (`broadcast_sm` and friends: override this method for them).
    fn request(&self, conn: &Connection, pdu: Pdu) -> Result<Body, CommandStatus> {
        match pdu.body {
            Body::SubmitSm(sm) => self.submit_sm(conn, sm).map(Body::SubmitSmResp),
            Body::DataSm(sm) => self.data_sm(conn, sm).map(Body::DataSmResp),
            Body::SubmitMulti(sm) => self.submit_multi(conn, sm).map(Body::SubmitMultiResp),
            Body::QuerySm(q) => self.query_sm(conn, q).map(Body::QuerySmResp),
            Body::CancelSm(c) => self.cancel_sm(conn, c).map(Body::CancelSmResp),
            Body::ReplaceSm(r) => self.replace_sm(conn, r).map(Body::ReplaceSmResp),
            _ => Err(CommandStatus::INVALID_COMMAND_ID),
        }
    }
}

/// Prepares an accepted connection: its writing side and a socket to read from.
pub(crate) type WrapFn = dyn Fn(TcpStream) -> io::Result<(Wire, TcpStream)> + Send + Sync;
pub(crate) type Wrap = Arc<WrapFn>;

fn unsupported<T, U>(_: &Connection, _: U) -> Result<T, CommandStatus> {
    Err(CommandStatus::INVALID_COMMAND_ID)
}

pub use smpp_proto::endpoint::ServerConfig;

/// One ESME connection, as seen by the server. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Connection {
    inner: Arc<ConnectionInner>,
}

#[derive(Debug)]
struct ConnectionInner {
    id: u64,
    peer: Option<SocketAddr>,
    bound: OnceLock<(String, BindKind)>,
    handle: Handle,
}

impl Connection {
    /// A number unique within the server.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The ESME's address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.inner.peer
    }

    /// The `system_id` it bound with (`None` until bound).
    pub fn system_id(&self) -> Option<&str> {
        self.inner.bound.get().map(|(s, _)| s.as_str())
    }

    /// How it bound (`None` until bound).
    pub fn bind_kind(&self) -> Option<BindKind> {
        self.inner.bound.get().map(|&(_, k)| k)
    }

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
        let (reply, sent) = std::sync::mpsc::sync_channel(1);
        self.inner.handle.send(Command::Send { body, reply })?;
        sent.recv().map_err(|_| Error::Closed)?
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
        self.inner.handle.stats()
    }

    /// Closes at once, without unbinding.
    pub fn close(&self) {
        self.inner.handle.close();
    }

    /// Blocks until the session closes, and says why.
    pub fn closed(&self) -> CloseReason {
        self.inner.handle.closed()
    }

    /// Unbinds when bound, closes otherwise.
    fn release(&self) {
        self.inner.handle.release();
    }

    fn respond(&self, seq: SequenceNumber, status: CommandStatus, body: Body) {
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
    connections: Mutex<HashMap<u64, Connection>>,
    next_id: AtomicU64,
    shutdown: AtomicBool,
    local_addr: SocketAddr,
}

impl Shared {
    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Connection>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }
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
        self.shared.registry().values().cloned().collect()
    }

    /// A connection bound as receiver or transceiver with this `system_id`
    /// (the one to send `deliver_sm` to).
    pub fn receiver(&self, system_id: &str) -> Option<Connection> {
        self.connections().into_iter().find(|c| {
            c.system_id() == Some(system_id)
                && matches!(
                    c.bind_kind(),
                    Some(BindKind::Receiver | BindKind::Transceiver)
                )
                && !c.inner.handle.is_closed()
        })
    }

    /// MC-initiated session: connects to an ESME's outbind listener at
    /// `addr` and sends `outbind`; the ESME then binds (as receiver, or
    /// transceiver) and the server's [`Handler`] authenticates it as any
    /// other bind. Returns the connection once `outbind` is sent; it is
    /// bound when [`Connection::bind_kind`] says so. Connecting takes at most
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

impl<H: Handler> Server<H> {
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
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
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
        let handle = self.handle();
        drop(self.listener);
        for conn in handle.connections() {
            conn.release();
        }
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
fn serve<H: Handler>(
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
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let conn = Connection {
        inner: Arc::new(ConnectionInner {
            id,
            peer: Some(peer),
            bound: OnceLock::new(),
            handle,
        }),
    };
    shared.registry().insert(id, conn.clone());
    let registered = Registered {
        shared: &shared,
        conn: conn.clone(),
    };
    if shared.shutdown.load(Ordering::SeqCst) {
        conn.release();
    }
    if let Some((outbind, tx)) = outbind {
        let (reply, sent) = std::sync::mpsc::sync_channel(1);
        let sent = match conn.inner.handle.send(Command::Outbind { outbind, reply }) {
            Ok(()) => sent.recv().unwrap_or(Err(Error::Closed)),
            Err(e) => Err(e),
        };
        if sent.is_err() {
            conn.close();
        }
        let _ = tx.send(sent.map(|()| conn.clone()));
    }
    handle_requests(&*handler, &shared, &conn, incoming);
    drop(registered);
    let _ = io.join();
}

fn handle_requests<H: Handler>(
    handler: &H,
    shared: &Shared,
    conn: &Connection,
    incoming: Receiver<Incoming>,
) {
    for item in incoming {
        match item {
            Incoming::Request(pdu) => {
                let (seq, status, body) = answer(handler, conn, pdu);
                conn.respond(seq, status, body);
            }
            Incoming::Bind { seq, kind, bind } => {
                let result = catch_unwind(AssertUnwindSafe(|| handler.bind(conn, kind, &bind)))
                    .unwrap_or(Err(CommandStatus::SYSTEM_ERROR));
                if result.is_ok() {
                    let system_id = bind.system_id.to_string_lossy().into_owned();
                    let _ = conn.inner.bound.set((system_id, kind));
                }
                let (status, body) = bind_answer(kind, result, &shared.config.system_id);
                conn.respond(seq, status, body);
            }
            _ => {} // alerts and outbinds: only an MC sends these
        }
    }
}

/// Unregisters a connection and unbinds it when its thread ends (even by a
/// panic): nobody would answer its requests any more.
struct Registered<'a> {
    shared: &'a Shared,
    conn: Connection,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.shared.registry().remove(&self.conn.id());
        self.conn.release();
    }
}

fn answer<H: Handler>(
    handler: &H,
    conn: &Connection,
    pdu: Pdu,
) -> (SequenceNumber, CommandStatus, Body) {
    let (seq, _, default) = default_answer(&pdu);
    match catch_unwind(AssertUnwindSafe(|| handler.request(conn, pdu))) {
        Ok(Ok(body)) => (seq, CommandStatus::OK, body),
        Ok(Err(status)) => (seq, status, default),
        Err(_) => {
            tracing::error!(%seq, "handler panicked: answered ESME_RSYSERR");
            (seq, CommandStatus::SYSTEM_ERROR, default)
        }
    }
}
