//! The MC side: [`Server`], its [`Handler`], and per-connection [`Connection`] handles.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use smpp_proto::pdu::{
    AlertNotification, Bind, Body, CancelSm, CommandStatus, DataSm, DataSmResp, DeliverSm, Outbind,
    Pdu, QuerySm, QuerySmResp, ReplaceSm, SequenceNumber, SubmitMulti, SubmitMultiResp, SubmitSm,
    SubmitSmResp, Tlvs,
};
use smpp_proto::session::{BindKind, CloseReason, Role, Stats};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::driver::{self, Control, Handle};
use crate::{check_status, Error};
use smpp_proto::endpoint::{answer_at_once, bind_answer, default_answer, Incoming};

/// How long a connection wrapper (a TLS handshake) may take when the session
/// has no init timeout.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(30);

/// The application side of an MC: authenticates binds and answers requests.
///
/// Requests of one connection are handled concurrently (up to the session's
/// inbound window); each answer is sent when its future completes. Implement
/// [`submit_sm`](Handler::submit_sm) for a plain SMSC, or
/// [`request`](Handler::request) to see every operation.
pub trait Handler: Send + Sync + 'static {
    /// Accepts (`Ok`) or rejects (an error status such as
    /// `CommandStatus::INVALID_PASSWORD`) a bind.
    fn bind(
        &self,
        conn: &Connection,
        kind: BindKind,
        bind: &Bind,
    ) -> impl Future<Output = Result<(), CommandStatus>> + Send;

    /// Answers a `submit_sm` with its message id, or an error status.
    fn submit_sm(&self, conn: &Connection, sm: SubmitSm) -> impl Answer<SubmitSmResp> {
        unsupported(conn, sm)
    }

    /// Answers a `data_sm`.
    fn data_sm(&self, conn: &Connection, sm: DataSm) -> impl Answer<DataSmResp> {
        unsupported(conn, sm)
    }

    /// Answers a `submit_multi`.
    fn submit_multi(&self, conn: &Connection, sm: SubmitMulti) -> impl Answer<SubmitMultiResp> {
        unsupported(conn, sm)
    }

    /// Answers a `query_sm`.
    fn query_sm(&self, conn: &Connection, query: QuerySm) -> impl Answer<QuerySmResp> {
        unsupported(conn, query)
    }

    /// Answers a `cancel_sm`.
    fn cancel_sm(&self, conn: &Connection, cancel: CancelSm) -> impl Answer<Tlvs> {
        unsupported(conn, cancel)
    }

    /// Answers a `replace_sm`.
    fn replace_sm(&self, conn: &Connection, replace: ReplaceSm) -> impl Answer<Tlvs> {
        unsupported(conn, replace)
    }

    /// A synchronous fast path: answers a request at once, in the
    /// connection's task (`Ok`), or hands it back (`Err`) to go to
    /// [`request`](Handler::request). Implement it for answers that need no
    /// waiting (an in-memory SMSC's submit_sm): they skip a hand-over
    /// between tasks. By default every request goes to `request`.
    #[allow(clippy::result_large_err)] // handed back at once
    fn answer_now(&self, conn: &Connection, pdu: Pdu) -> Result<Result<Body, CommandStatus>, Pdu> {
        let _ = conn;
        Err(pdu)
    }

    /// Answers any request with its `*_resp` body, or an error status. The
    /// default hands each operation to its method above (each refusing with
    /// `ESME_RINVCMDID` unless implemented) and refuses the others
    /// (`broadcast_sm` and friends: override this method for them).
    fn request(&self, conn: &Connection, pdu: Pdu) -> impl Answer<Body> {
        async move {
            match pdu.body {
                Body::SubmitSm(sm) => self.submit_sm(conn, sm).await.map(Body::SubmitSmResp),
                Body::DataSm(sm) => self.data_sm(conn, sm).await.map(Body::DataSmResp),
                Body::SubmitMulti(sm) => {
                    self.submit_multi(conn, sm).await.map(Body::SubmitMultiResp)
                }
                Body::QuerySm(q) => self.query_sm(conn, q).await.map(Body::QuerySmResp),
                Body::CancelSm(c) => self.cancel_sm(conn, c).await.map(Body::CancelSmResp),
                Body::ReplaceSm(r) => self.replace_sm(conn, r).await.map(Body::ReplaceSmResp),
                _ => Err(CommandStatus::INVALID_COMMAND_ID),
            }
        }
    }
}

/// What a [`Handler`] method returns: the response body, or an error status
/// (sent header-only).
pub trait Answer<T>: Future<Output = Result<T, CommandStatus>> + Send {}

impl<T, F: Future<Output = Result<T, CommandStatus>> + Send> Answer<T> for F {}

fn unsupported<T: Send, U>(_: &Connection, _: U) -> impl Answer<T> {
    std::future::ready(Err(CommandStatus::INVALID_COMMAND_ID))
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

    /// Sends a request to the ESME (`deliver_sm`, `data_sm`...) and awaits its
    /// response; waits while the window is full. An error status is [`Error::Status`].
    pub async fn request(&self, body: Body) -> Result<Pdu, Error> {
        self.inner
            .handle
            .request_any(body)
            .await
            .and_then(check_status)
    }

    /// Sends a `deliver_sm` (a mobile-originated message or a delivery receipt).
    pub async fn deliver(&self, sm: DeliverSm) -> Result<Pdu, Error> {
        self.request(Body::DeliverSm(sm)).await
    }

    /// Sends an `alert_notification` (it has no response).
    pub async fn alert(&self, alert: AlertNotification) -> Result<(), Error> {
        let body = Body::AlertNotification(alert);
        self.inner
            .handle
            .send(|reply| Control::Send { body, reply })
            .await
    }

    /// Unbinds and waits for the ESME's answer (or the unbind timeout).
    pub async fn unbind(&self) -> Result<(), Error> {
        let handle = &self.inner.handle;
        let resp = handle.control(|reply| Control::Unbind { reply }).await;
        handle.closed().await;
        resp.map(drop)
    }

    /// The session's counters and window use ([`Error::Closed`] once ended).
    pub async fn stats(&self) -> Result<Stats, Error> {
        self.inner.handle.stats().await
    }

    /// Closes at once, without unbinding.
    pub fn close(&self) {
        self.inner.handle.close();
    }

    /// Waits until the session closes, and says why.
    pub async fn closed(&self) -> CloseReason {
        self.inner.handle.closed().await
    }

    /// Unbinds when bound, closes otherwise.
    fn release(&self) {
        self.inner.handle.release();
    }

    fn respond(&self, seq: SequenceNumber, status: CommandStatus, body: Body) {
        let _ = self
            .inner
            .handle
            .control
            .send(Box::new(Control::Respond { seq, status, body }));
    }
}

/// Starts an MC-initiated connection (an outbind) with the server's handler.
type Outbinder = Box<
    dyn Fn(TcpStream, SocketAddr, Outbind, oneshot::Sender<Result<Connection, Error>>)
        + Send
        + Sync,
>;

struct Shared {
    config: ServerConfig,
    /// Set once by [`Server::bind`] (it knows the handler's type).
    outbinder: OnceLock<Outbinder>,
    connections: Mutex<HashMap<u64, Connection>>,
    next_id: AtomicU64,
    shutdown: watch::Sender<bool>,
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
    pub async fn outbind(
        &self,
        addr: impl ToSocketAddrs,
        outbind: Outbind,
    ) -> Result<Connection, Error> {
        if *self.shared.shutdown.borrow() {
            return Err(Error::Closed);
        }
        let timeout = self.shared.config.session.response_timeout;
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| Error::Timeout)??;
        tcp.set_nodelay(true)?;
        let peer = tcp.peer_addr()?;
        let start = self.shared.outbinder.get().ok_or(Error::Closed)?;
        let (tx, rx) = oneshot::channel();
        start(tcp, peer, outbind, tx);
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Stops accepting, unbinds every connection (closing those not bound),
    /// and lets [`Server::run`] return once they are all gone.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
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
    pub async fn bind(
        addr: impl ToSocketAddrs,
        handler: H,
        config: ServerConfig,
    ) -> io::Result<Server<H>> {
        let listener = TcpListener::bind(addr).await?;
        let shared = Arc::new(Shared {
            config,
            outbinder: OnceLock::new(),
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            shutdown: watch::channel(false).0,
        });
        let handler = Arc::new(handler);
        let (weak, h) = (Arc::downgrade(&shared), handler.clone());
        let start: Outbinder = Box::new(move |tcp, peer, outbind, tx| {
            if let Some(shared) = weak.upgrade() {
                let stream = async move { Ok(tcp) };
                tokio::spawn(serve(h.clone(), shared, stream, peer, Some((outbind, tx))));
            }
        });
        let _ = shared.outbinder.set(start);
        Ok(Server {
            listener,
            handler,
            shared,
        })
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

    /// Accepts plain TCP connections until [`ServerHandle::shutdown`], then
    /// unbinds everyone and returns when every connection has ended.
    pub async fn run(self) -> io::Result<()> {
        self.run_with(|tcp| async move { Ok(tcp) }).await
    }

    /// Like [`run`](Server::run), with each accepted connection wrapped by
    /// `wrap` first (a TLS handshake: `|tcp| acceptor.accept(tcp)`). The
    /// wrapping runs in the connection's task.
    pub async fn run_with<F, Fut, S>(self, mut wrap: F) -> io::Result<()>
    where
        F: FnMut(TcpStream) -> Fut,
        Fut: Future<Output = io::Result<S>> + Send + 'static,
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut tasks = JoinSet::new();
        let mut shutdown = self.shared.shutdown.subscribe();
        loop {
            tokio::select! {
                _ = async { drop(shutdown.wait_for(|s| *s).await) } => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = self.listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of descriptors and the like: do not spin.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    if tasks.len() >= self.shared.config.max_connections {
                        tracing::warn!(%peer, "connection limit reached: closing");
                        continue;
                    }
                    let _ = tcp.set_nodelay(true);
                    let stream = wrap(tcp);
                    let (handler, shared) = (self.handler.clone(), self.shared.clone());
                    tasks.spawn(serve(handler, shared, stream, peer, None));
                }
            }
        }
        let handle = self.handle();
        drop(self.listener);
        for conn in handle.connections() {
            conn.release();
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

/// One connection: runs the handler for each request, answers in completion
/// order. With `outbind`, we opened it: send `outbind` first and say how that went.
async fn serve<H: Handler, S>(
    handler: Arc<H>,
    shared: Arc<Shared>,
    stream: impl Future<Output = io::Result<S>>,
    peer: SocketAddr,
    outbind: Option<(Outbind, oneshot::Sender<Result<Connection, Error>>)>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // A wrapping handshake (TLS) must not hold a connection slot for ever.
    let limit = shared.config.session.session_init_timeout;
    let io = match tokio::time::timeout(limit.unwrap_or(HANDSHAKE_LIMIT), stream).await {
        Ok(Ok(io)) => io,
        Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "handshake failed"),
        Err(_) => return tracing::debug!(%peer, "handshake timed out"),
    };
    let quick = Arc::new(driver::Quick::new());
    let (handle, mut incoming) = driver::spawn(
        io,
        Role::Mc,
        shared.config.session.clone(),
        Some(quick.clone()),
    );
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let conn = Connection {
        inner: Arc::new(ConnectionInner {
            id,
            peer: Some(peer),
            bound: OnceLock::new(),
            handle,
        }),
    };
    // The handler's synchronous answers, given in the connection's task.
    // Weak: the driver must not keep its own handles alive.
    let (weak, quick_handler) = (Arc::downgrade(&conn.inner), handler.clone());
    #[allow(clippy::result_large_err)] // handed back at once, not propagated
    let _ = quick.set(Box::new(move |pdu: Pdu| match weak.upgrade() {
        Some(inner) => answer_at_once(pdu, |pdu| {
            quick_handler.answer_now(&Connection { inner }, pdu)
        }),
        None => Err(pdu),
    }));
    shared.registry().insert(id, conn.clone());
    let _registered = Registered {
        shared: &shared,
        conn: conn.clone(),
    };
    let shutting_down = *shared.shutdown.borrow();
    if shutting_down {
        conn.release();
    }
    if let Some((outbind, tx)) = outbind {
        let handle = &conn.inner.handle;
        let sent = handle
            .send(|reply| Control::Outbind { outbind, reply })
            .await;
        let failed = sent.is_err();
        let _ = tx.send(sent.map(|()| conn.clone()));
        if failed {
            return conn.close();
        }
    }
    let handler = &*handler;
    let mut running = FuturesUnordered::new();
    loop {
        tokio::select! {
            biased;
            Some((seq, status, body)) = running.next(), if !running.is_empty() => {
                conn.respond(seq, status, body);
            }
            item = incoming.recv() => match item.map(|i| *i) {
                None => break,
                Some(Incoming::Request(pdu)) => {
                    let mut answer = Box::pin(answer(handler, &conn, pdu));
                    match (&mut answer).now_or_never() {
                        Some((seq, status, body)) => conn.respond(seq, status, body),
                        None => running.push(answer),
                    }
                }
                Some(Incoming::Bind { seq, kind, bind }) => {
                    let result = AssertUnwindSafe(handler.bind(&conn, kind, &bind))
                        .catch_unwind()
                        .await
                        .unwrap_or(Err(CommandStatus::SYSTEM_ERROR));
                    if result.is_ok() {
                        let system_id = bind.system_id.to_string_lossy().into_owned();
                        let _ = conn.inner.bound.set((system_id, kind));
                    }
                    let (status, body) = bind_answer(kind, result, &shared.config.system_id);
                    conn.respond(seq, status, body);
                }
                Some(_) => {} // alerts and outbinds: only an MC sends these
            }
        }
    }
}

/// Unregisters a connection and unbinds it when its task ends, even if the
/// task is aborted (the server's `run` future dropped): nobody would answer
/// its requests any more.
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

async fn answer<H: Handler>(
    handler: &H,
    conn: &Connection,
    pdu: Pdu,
) -> (SequenceNumber, CommandStatus, Body) {
    let (seq, _, default) = default_answer(&pdu);
    match AssertUnwindSafe(handler.request(conn, pdu))
        .catch_unwind()
        .await
    {
        Ok(Ok(body)) => (seq, CommandStatus::OK, body),
        Ok(Err(status)) => (seq, status, default),
        Err(_) => {
            tracing::error!(%seq, "handler panicked: answered ESME_RSYSERR");
            (seq, CommandStatus::SYSTEM_ERROR, default)
        }
    }
}
