//! The MC side: [`Server`], its [`Handler`], and per-connection [`Connection`] handles.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use smpp_proto::pdu::{AlertNotification, Body, DeliverSm, Outbind, Pdu};
use smpp_proto::session::{CloseReason, Role, Stats};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::driver::{self, Control, Handle};
use crate::{check_status, Error};
use smpp_proto::endpoint::serve::{
    self, ConnectionInfo, QuickAnswers, Registered, Registry, Response, Routed,
};

/// How long a connection wrapper (a TLS handshake) may take when the session
/// has no init timeout.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(30);

/// The application side of an MC, shared by the async adapters: implement
/// it over this crate's [`Connection`]s (`impl Handler<Connection> for MySmsc`).
pub use smpp_proto::endpoint::serve::{Answer, Handler};
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
            .call(|reply| Control::Send { body, reply })
            .await
    }

    /// Unbinds and waits for the ESME's answer (or the unbind timeout).
    pub async fn unbind(&self) -> Result<(), Error> {
        let handle = &self.inner.handle;
        let resp = handle.call(|reply| Control::Unbind { reply }).await;
        handle.closed().await;
        resp.map(drop)
    }

    /// The session's counters and window use ([`Error::Closed`] once ended).
    pub async fn stats(&self) -> Result<Stats, Error> {
        self.inner.handle.call(Control::Stats).await
    }

    /// Closes at once, without unbinding.
    pub fn close(&self) {
        self.inner.handle.close();
    }

    /// Waits until the session closes, and says why.
    pub async fn closed(&self) -> CloseReason {
        self.inner.handle.closed().await
    }

    fn respond(&self, (seq, status, body): Response) {
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
    registry: Registry<Connection>,
    shutdown: watch::Sender<bool>,
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

impl<H: Handler<Connection>> Server<H> {
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
            registry: Registry::default(),
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
        drop(self.listener);
        self.shared.registry.release_all();
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

/// One connection: runs the handler for each request, answers in completion
/// order. With `outbind`, we opened it: send `outbind` first and say how that went.
async fn serve<H: Handler<Connection>, S>(
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
    let quick = Arc::new(QuickAnswers::default());
    let (handle, mut incoming) = driver::spawn(
        io,
        Role::Mc,
        shared.config.session.clone(),
        Some(quick.clone()),
    );
    let info = ConnectionInfo::new(shared.registry.next_id(), Some(peer));
    let conn = Connection {
        inner: Arc::new(ConnectionInner { info, handle }),
    };
    // The handler's synchronous answers, given in the connection's task.
    quick.set(Arc::downgrade(&conn.inner), handler.clone(), |inner| {
        Connection { inner }
    });
    let _registered = shared.registry.register(conn.clone());
    let shutting_down = *shared.shutdown.borrow();
    if shutting_down {
        conn.release();
    }
    if let Some((outbind, tx)) = outbind {
        let handle = &conn.inner.handle;
        let sent = handle
            .call(|reply| Control::Outbind { outbind, reply })
            .await;
        let failed = sent.is_err();
        let _ = tx.send(sent.map(|()| conn.clone()));
        if failed {
            return conn.close();
        }
    }
    let (handler, info, system_id) = (&*handler, &conn.inner.info, &shared.config.system_id);
    let mut running = FuturesUnordered::new();
    loop {
        tokio::select! {
            biased;
            Some(response) = running.next(), if !running.is_empty() => conn.respond(response),
            item = incoming.recv() => match item.map(|i| *i) {
                None => break,
                Some(item) => match serve::route(handler, &conn, info, system_id, item) {
                    Routed::Answer(response) => conn.respond(response),
                    Routed::Later(answer) => running.push(answer),
                    Routed::Nothing => {}
                },
            }
        }
    }
}
