//! The MC side: [`Server`], its [`Handler`], and per-connection [`Connection`] handles.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::drive::Transport;
use crate::handler::{
    self as serve, Accepted, ConnectionInfo, QuickAnswers, Registered, Registry, Routed,
};
use futures_channel::oneshot;
use futures_lite::future::or;
use futures_util::stream::{FuturesUnordered, StreamExt};
use smpp_proto::endpoint::Response;
use smpp_proto::pdu::{AlertNotification, Body, DeliverSm, Outbind, Pdu};
use smpp_proto::session::{CloseReason, Role, Stats};

use crate::client::connect;
use crate::driver::{self, Control, Handle};
use crate::{timeout, Connect, Error, Io, Runtime};

pub use crate::handler::ServerConfig;
/// The application side of an MC, shared by the async adapters: implement
/// it over [`Connection`]s (`impl Handler<Connection> for MySmsc`).
pub use crate::handler::{Answer, Handler, SoonAnswer};

/// How long a connection wrapper (a TLS handshake) may take when the session
/// has no init timeout.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(30);

/// One ESME connection, as seen by the server. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Connection {
    inner: Arc<ConnectionInner>,
}

#[derive(Debug)]
struct ConnectionInner {
    info: ConnectionInfo,
    handle: Handle,
    /// The load last given to [`Connection::set_load`] (commands only on change).
    load: std::sync::atomic::AtomicU8,
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
    /// Like [`Client::submit`](crate::Client::submit), the request is boxed
    /// when this is called: the future holds a pointer.
    pub fn request(&self, body: Body) -> impl Future<Output = Result<Pdu, Error>> + Send + '_ {
        self.inner.handle.request(body)
    }

    /// Sends a `deliver_sm` (a mobile-originated message or a delivery receipt).
    pub fn deliver(&self, sm: DeliverSm) -> impl Future<Output = Result<Pdu, Error>> + Send + '_ {
        self.request(Body::DeliverSm(Box::new(sm)))
    }

    /// Sends an `alert_notification` (it has no response).
    pub async fn alert(&self, alert: AlertNotification) -> Result<(), Error> {
        let body = Body::AlertNotification(Box::new(alert));
        let handle = &self.inner.handle;
        handle.call(|reply| Control::Send { body, reply }).await
    }

    /// Unbinds and waits for the ESME's answer ([`Error::Timeout`] when
    /// none comes within the session's `unbind_timeout`).
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

    /// Sets the application's load for this connection, 0-100 (queue
    /// depth, store backlog, rate-limit headroom, as the application
    /// measures it): with the inbound window's fill, it makes the
    /// `congestion_state` this connection's responses carry to an SMPP 5.0
    /// ESME (see `Session::congestion_state` in smpp-proto). Cheap to call
    /// often: the connection hears of it only when the value changes.
    pub fn set_load(&self, load: u8) {
        let load = load.min(100);
        if self
            .inner
            .load
            .swap(load, std::sync::atomic::Ordering::Relaxed)
            != load
        {
            let _ = self.inner.handle.command(Control::SetLoad(load));
        }
    }

    /// The load last given to [`Connection::set_load`] (0 at first).
    pub fn load(&self) -> u8 {
        self.inner.load.load(std::sync::atomic::Ordering::Relaxed)
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
            .command(Control::Respond { seq, status, body });
    }
}

/// Starts an MC-initiated connection (an outbind) with the server's handler.
type Outbinder<R> = Box<
    dyn Fn(<R as Runtime>::Tcp, SocketAddr, Outbind, oneshot::Sender<Result<Connection, Error>>)
        + Send
        + Sync,
>;

pub(crate) struct Shared<R: Runtime> {
    config: ServerConfig,
    /// Set once by [`Server::bind`] (it knows the handler's type).
    outbinder: OnceLock<Outbinder<R>>,
    registry: Registry<Connection>,
    /// Closed on shutdown (which wakes the accept loop); nothing is ever sent.
    shutdown: (async_channel::Sender<()>, async_channel::Receiver<()>),
}

impl<R: Runtime> Shared<R> {
    fn is_shutting_down(&self) -> bool {
        self.shutdown.1.is_closed()
    }

    /// How long a connection's wrapping (a TLS handshake) may take.
    pub(crate) fn handshake_limit(&self) -> Duration {
        let limit = self.config.session.session_init_timeout;
        limit.unwrap_or(HANDSHAKE_LIMIT)
    }

    fn stop(&self) {
        self.shutdown.1.close();
    }
}

/// Dropping the accept loop's future stops the server and unbinds everyone
/// (as if shut down, without waiting).
struct StopOnDrop<R: Runtime>(Arc<Shared<R>>);

impl<R: Runtime> Drop for StopOnDrop<R> {
    fn drop(&mut self) {
        self.0.stop();
        self.0.registry.release_all();
    }
}

/// Finds connections and shuts the server down; cheap to clone.
#[derive(Clone)]
pub struct ServerHandle<R: Runtime> {
    shared: Arc<Shared<R>>,
}

impl<R: Runtime> std::fmt::Debug for ServerHandle<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle").finish_non_exhaustive()
    }
}

impl<R: Runtime> ServerHandle<R> {
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
    pub async fn outbind<A>(&self, addr: A, outbind: Outbind) -> Result<Connection, Error>
    where
        R: Connect<A>,
    {
        if self.shared.is_shutting_down() {
            return Err(Error::Closed);
        }
        let tcp = connect::<R, A>(addr, &self.shared.config.session).await?;
        let peer = R::prepare(&tcp)?;
        let start = self.shared.outbinder.get().ok_or(Error::Closed)?;
        let (tx, rx) = oneshot::channel();
        start(tcp, peer, outbind, tx);
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Stops accepting, unbinds every connection (closing those not bound),
    /// and lets [`Server::run`] return once they are all gone.
    pub fn shutdown(&self) {
        self.shared.stop();
    }
}

/// An SMPP server (MC): an accept loop with one session per connection.
pub struct Server<R: Runtime, H> {
    listener: R::Listener,
    handler: Arc<H>,
    pub(crate) shared: Arc<Shared<R>>,
}

impl<R: Runtime, H> std::fmt::Debug for Server<R, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let listener = &self.listener;
        f.debug_struct("Server")
            .field("listener", listener)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime, H: Handler<Connection>> Server<R, H>
where
    R: Io<<R as Runtime>::Tcp>,
{
    /// Listens on `addr`.
    pub async fn bind<A>(addr: A, handler: H, config: ServerConfig) -> io::Result<Server<R, H>>
    where
        R: Connect<A>,
    {
        let listener = R::listen(addr).await?;
        let shared = Arc::new(Shared {
            config,
            outbinder: OnceLock::new(),
            registry: Registry::default(),
            shutdown: async_channel::bounded(1),
        });
        let handler = Arc::new(handler);
        let (weak, h) = (Arc::downgrade(&shared), handler.clone());
        let start: Outbinder<R> = Box::new(move |tcp, peer, outbind, tx| {
            if let Some(shared) = weak.upgrade() {
                let stream = async move { Ok((R::transport(tcp), Accepted::new(peer))) };
                R::spawn(serve(h.clone(), shared, stream, peer, Some((outbind, tx))));
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
        R::local_addr(&self.listener)
    }

    /// A handle to find connections and shut down.
    pub fn handle(&self) -> ServerHandle<R> {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Accepts plain TCP connections until [`ServerHandle::shutdown`], then
    /// unbinds everyone and returns when every connection has ended. Each
    /// connection runs as tasks of the runtime; `run` itself runs wherever
    /// it is awaited.
    pub async fn run(self) -> io::Result<()> {
        self.run_transport(|tcp, peer| async move { Ok((R::transport(tcp), Accepted::new(peer))) })
            .await
    }

    /// Like [`run`](Server::run), with each accepted connection wrapped by
    /// `wrap` first (a TLS handshake: `|tcp| acceptor.accept(tcp)`). The
    /// wrapping runs in the connection's task.
    pub async fn run_with<F, Fut, S>(self, mut wrap: F) -> io::Result<()>
    where
        F: FnMut(R::Tcp) -> Fut,
        Fut: Future<Output = io::Result<S>> + Send + 'static,
        R: Io<S>,
    {
        self.run_transport(|tcp, peer| {
            let wrapped = wrap(tcp);
            async move {
                wrapped
                    .await
                    .map(|s| (R::transport(s), Accepted::new(peer)))
            }
        })
        .await
    }

    /// Like [`run_with`](Server::run_with), where `wrap` also gets the
    /// connection's peer address and says what it learnt of the client
    /// ([`Accepted`]): the address a PROXY protocol header carries (read in
    /// `wrap`, before any TLS handshake) or the peer itself, and the TLS
    /// client certificate. They become the connection's
    /// [`peer_addr`](ConnectionInfo::peer_addr) and
    /// [`client_certificate`](ConnectionInfo::client_certificate). The
    /// wrapping runs in the connection's task, bounded like a handshake
    /// (the session init timeout); an error closes the connection.
    pub async fn run_accepting<F, Fut, S>(self, mut wrap: F) -> io::Result<()>
    where
        F: FnMut(R::Tcp, SocketAddr) -> Fut,
        Fut: Future<Output = io::Result<(S, Accepted)>> + Send + 'static,
        R: Io<S>,
    {
        self.run_transport(|tcp, peer| {
            let wrapped = wrap(tcp, peer);
            async move { wrapped.await.map(|(s, client)| (R::transport(s), client)) }
        })
        .await
    }

    pub(crate) async fn run_transport<F, Fut, T>(self, mut wrap: F) -> io::Result<()>
    where
        F: FnMut(R::Tcp, SocketAddr) -> Fut,
        Fut: Future<Output = io::Result<(T, Accepted)>> + Send + 'static,
        T: Transport + Send + 'static,
    {
        let _stop = StopOnDrop(self.shared.clone());
        // Each connection task holds a clone: the count of live ones, and
        // the channel closes once they have all ended.
        let (alive, all_ended) = async_channel::bounded::<()>(1);
        loop {
            let shutdown = async {
                let _ = self.shared.shutdown.1.recv().await;
                None
            };
            let accept = async { Some(R::accept(&self.listener).await) };
            let Some(accepted) = or(shutdown, accept).await else {
                break;
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    R::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if alive.sender_count() > self.shared.config.max_connections {
                tracing::warn!(%peer, "connection limit reached: closing");
                continue;
            }
            let _ = R::prepare(&tcp);
            let stream = wrap(tcp, peer);
            let (handler, shared) = (self.handler.clone(), self.shared.clone());
            let alive = alive.clone();
            R::spawn(async move {
                serve(handler, shared, stream, peer, None).await;
                drop(alive);
            });
        }
        drop((self.listener, alive));
        self.shared.registry.release_all();
        let _ = all_ended.recv().await;
        Ok(())
    }
}

/// One connection: runs the handler for each request, answers in completion
/// order. With `outbind`, we opened it: send `outbind` first and say how that went.
async fn serve<R: Runtime, H: Handler<Connection>, T: Transport + Send + 'static>(
    handler: Arc<H>,
    shared: Arc<Shared<R>>,
    stream: impl Future<Output = io::Result<(T, Accepted)>>,
    peer: SocketAddr,
    outbind: Option<(Outbind, oneshot::Sender<Result<Connection, Error>>)>,
) {
    // A wrapping handshake (TLS, a PROXY header) must not hold a connection
    // slot for ever.
    let (io, accepted) = match timeout::<R, _>(shared.handshake_limit(), stream).await {
        Some(Ok(wrapped)) => wrapped,
        Some(Err(e)) => return tracing::debug!(%peer, error = %e, "handshake failed"),
        None => return tracing::debug!(%peer, "handshake timed out"),
    };
    let quick = Arc::new(QuickAnswers::default());
    let session = shared.config.session.clone();
    let tallies = Some(driver::Tallies {
        late_responses: shared.config.late_responses.clone(),
        tlvs_dropped: shared.config.tlvs_dropped.clone(),
    });
    let (handle, mut incoming) =
        driver::spawn::<R, _>(io, Role::Mc, session, Some(quick.clone()), tallies);
    let info = ConnectionInfo::accepted(shared.registry.next_id(), accepted);
    let conn = Connection {
        inner: Arc::new(ConnectionInner {
            info,
            handle,
            load: std::sync::atomic::AtomicU8::new(0),
        }),
    };
    // The handler's synchronous answers, given in the connection's task.
    quick.set(Arc::downgrade(&conn.inner), handler.clone(), |inner| {
        Connection { inner }
    });
    let _registered = shared.registry.register(conn.clone());
    if shared.is_shutting_down() {
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
            conn.close();
            return handler.ended(&conn);
        }
    }
    let (handler, info, system_id) = (&*handler, &conn.inner.info, &shared.config.system_id);
    let mut running = FuturesUnordered::new();
    loop {
        // Answers first (biased), then the next request.
        let answered = async {
            if running.is_empty() {
                std::future::pending::<()>().await;
            }
            running.next().await.map(Ok)
        };
        let next = async { Some(Err(incoming.recv().await.map(|item| *item))) };
        let item = match or(answered, next).await {
            Some(Ok(response)) => {
                conn.respond(response);
                continue;
            }
            Some(Err(item)) => item,
            None => continue,
        };
        let Some(item) = item else { break };
        match serve::route(handler, &conn, info, system_id, item) {
            Routed::Answer(response) => conn.respond(response),
            Routed::Later(answer) => running.push(answer),
            Routed::Nothing => {}
        }
    }
    // The driver is done (its end of `incoming` is gone): so is the session.
    handler.ended(&conn);
}
