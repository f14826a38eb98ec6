//! What every adapter's server shares: the application's handler traits
//! (async [`Handler`], blocking [`BlockingHandler`]) with the one dispatch
//! of requests by operation, the panic-catching calls that turn a handler's
//! answer into the response to send, and the registry of open connections.
//!
//! Each trait is generic over the adapter's connection handle `C`: a handler
//! written for any `C` runs on every adapter of its kind.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use smpp_proto::pdu::{
    Bind, Body, CancelSm, CommandId, CommandStatus, DataSm, DataSmResp, Pdu, QuerySm, QuerySmResp,
    ReplaceSm, SequenceNumber, SubmitMulti, SubmitMultiResp, SubmitSm, SubmitSmResp, Tlvs,
};
use smpp_proto::session::{negotiate, BindKind, SessionConfig, INTERFACE_VERSION};

use smpp_proto::endpoint::{bind_answer, empty_response, Incoming, Response};

/// A connection's hook for its handler's synchronous answers
/// ([`Handler::answer_now`]), given in the connection's task (the
/// adapter's [`Host::answer_now`](crate::drive::Host::answer_now)).
/// The driver starts before the connection handle exists, so the hook is
/// empty until [`set`](QuickAnswers::set); until then every request takes
/// the usual way.
#[derive(Default)]
pub(crate) struct QuickAnswers(OnceLock<QuickFn>);

type QuickFn = Box<dyn Fn(&Pdu, Instant, &mut QuickHold) -> Option<Quick> + Send + Sync>;

/// A handler's answer given in the connection's task.
pub(crate) enum Quick {
    /// Ready: the status and `*_resp` body.
    Now(CommandStatus, Body),
    /// To come: the connection's task polls it with its own work.
    Soon(SoonResponse),
}

/// A future a handler gives in the connection's task
/// ([`Handler::answer_soon`]): the connection's task polls it itself.
pub type SoonAnswer = Pin<Box<dyn Future<Output = Result<Body, CommandStatus>> + Send + 'static>>;

/// A [`SoonAnswer`] with what its response needs: the request's sequence
/// number and command; a panic while it is polled answers `ESME_RSYSERR`.
pub(crate) struct SoonResponse {
    seq: SequenceNumber,
    id: CommandId,
    answer: SoonAnswer,
}

impl Future for SoonResponse {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let this = &mut *self;
        let polled = catch_unwind(AssertUnwindSafe(|| this.answer.as_mut().poll(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(answer)) => Poll::Ready(settle(this.seq, this.id, Ok(answer))),
            Err(_) => Poll::Ready(settle(this.seq, this.id, Err(()))),
        }
    }
}

/// The connection handle that [`QuickAnswers`] rebuilt for the requests of
/// one routing round, kept by the connection's task until the round ends
/// ([`QuickHold::release`]): one upgrade of the weak reference per round
/// rather than an upgrade and a release (two shared counts moved) per
/// request. Between rounds it holds nothing, so the task never keeps its
/// own handles alive while it waits.
#[derive(Default)]
pub(crate) struct QuickHold(Option<Box<dyn std::any::Any + Send>>);

impl QuickHold {
    /// Forgets the handle (the round ended).
    pub(crate) fn release(&mut self) {
        self.0 = None;
    }
}

impl std::fmt::Debug for QuickAnswers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuickAnswers")
            .field("set", &self.0.get().is_some())
            .finish()
    }
}

impl QuickAnswers {
    /// Answers with `handler` for the connection that `conn` rebuilds from
    /// `inner`, while it lives. Weak: the driver must not keep its own
    /// handles alive (it ends when they are all gone).
    pub(crate) fn set<C, I, H>(
        &self,
        inner: std::sync::Weak<I>,
        handler: Arc<H>,
        conn: fn(Arc<I>) -> C,
    ) where
        C: Send + Sync + 'static,
        I: Send + Sync + 'static,
        H: Handler<C>,
    {
        let _ = self.0.set(Box::new(
            move |pdu: &Pdu, received: Instant, hold: &mut QuickHold| {
                if hold.0.as_ref().is_none_or(|h| !h.is::<C>()) {
                    hold.0 = Some(Box::new(conn(inner.upgrade()?)));
                }
                let held = hold.0.as_ref()?.downcast_ref::<C>()?;
                let (seq, id) = (pdu.sequence_number, pdu.command_id());
                let answered = catch_unwind(AssertUnwindSafe(|| {
                    match handler.answer_now(held, pdu, received) {
                        Some(answer) => Some(Ok(answer)),
                        None => handler.answer_soon(held, pdu, received).map(Err),
                    }
                }));
                let answered = match answered {
                    Ok(None) => return None, // the usual way, then
                    Ok(Some(Ok(answer))) => Ok(answer),
                    Ok(Some(Err(answer))) => {
                        return Some(Quick::Soon(SoonResponse { seq, id, answer }))
                    }
                    Err(_) => Err(()),
                };
                let (_, status, body) = settle(seq, id, answered);
                Some(Quick::Now(status, body))
            },
        ));
    }

    /// The handler's answer given in the connection's task, if it gives
    /// one (at once, or a future); `hold` keeps the connection's handle
    /// until the caller releases it.
    pub(crate) fn answer(
        &self,
        pdu: &Pdu,
        received: Instant,
        hold: &mut QuickHold,
    ) -> Option<Quick> {
        self.0.get().and_then(|quick| quick(pdu, received, hold))
    }
}

/// The application side of an MC on an async adapter: authenticates binds
/// and answers requests, for connections of type `C` (the adapter's
/// `Connection`).
///
/// Requests of one connection are handled concurrently (up to the session's
/// inbound window); each answer is sent when its future completes. A
/// panicking method answers `ESME_RSYSERR`. Implement
/// [`submit_sm`](Handler::submit_sm) for a plain SMSC, or
/// [`request`](Handler::request) to see every operation.
pub trait Handler<C: Sync>: Send + Sync + 'static {
    /// Accepts (`Ok`) or rejects (an error status such as
    /// `CommandStatus::INVALID_PASSWORD`) a bind.
    fn bind(
        &self,
        conn: &C,
        kind: BindKind,
        bind: &Bind,
    ) -> impl Future<Output = Result<(), CommandStatus>> + Send;

    /// Answers a `submit_sm` with its message id, or an error status.
    fn submit_sm(&self, conn: &C, sm: SubmitSm) -> impl Answer<SubmitSmResp> {
        unsupported(conn, sm)
    }

    /// Answers a `data_sm`.
    fn data_sm(&self, conn: &C, sm: DataSm) -> impl Answer<DataSmResp> {
        unsupported(conn, sm)
    }

    /// Answers a `submit_multi`.
    fn submit_multi(&self, conn: &C, sm: SubmitMulti) -> impl Answer<SubmitMultiResp> {
        unsupported(conn, sm)
    }

    /// Answers a `query_sm`.
    fn query_sm(&self, conn: &C, query: QuerySm) -> impl Answer<QuerySmResp> {
        unsupported(conn, query)
    }

    /// Answers a `cancel_sm`.
    fn cancel_sm(&self, conn: &C, cancel: CancelSm) -> impl Answer<Tlvs> {
        unsupported(conn, cancel)
    }

    /// Answers a `replace_sm`.
    fn replace_sm(&self, conn: &C, replace: ReplaceSm) -> impl Answer<Tlvs> {
        unsupported(conn, replace)
    }

    /// A synchronous fast path: answers a request at once, in the
    /// connection's task (`Some`), or declines (`None`): the request then
    /// goes to [`request`](Handler::request). Implement it for answers that
    /// need no waiting (an in-memory SMSC's submit_sm): they skip a
    /// hand-over between tasks. By default every request goes to `request`.
    /// An optimisation only: its answers should be those `request` would give.
    ///
    /// `received` is the clock reading of the connection task's round that
    /// handles the request (taken as the round starts, before it reads):
    /// where the request's time in the server starts, without a clock read
    /// of its own. Within the inbound window's few microseconds of its
    /// arrival; requests that go to [`request`](Handler::request) start
    /// when that runs.
    fn answer_now(
        &self,
        conn: &C,
        pdu: &Pdu,
        received: Instant,
    ) -> Option<Result<Body, CommandStatus>> {
        let _ = (conn, pdu, received);
        None
    }

    /// The asynchronous fast path, asked when [`answer_now`](Handler::answer_now)
    /// declines: a future of the answer that the connection's task polls
    /// itself, with its reads and writes (`Some`), or `None`: the request
    /// then goes to [`request`](Handler::request). For answers that wait
    /// for something outside the handler but need no task of their own (a
    /// store-and-forward MC's submit_sm, answered once its write is
    /// durable): no hand-over to another task and back, and the answer
    /// joins the connection's next write. The future should do its work
    /// before it returns (the write queued, say) and wait only for the
    /// outcome; a panic while it is polled answers `ESME_RSYSERR`. If the
    /// connection ends first, the future is dropped unfinished (as a
    /// future of `request` is). By default every request goes to
    /// `request`. An optimisation only: its answers should be those
    /// `request` would give.
    fn answer_soon(&self, conn: &C, pdu: &Pdu, received: Instant) -> Option<SoonAnswer> {
        let _ = (conn, pdu, received);
        None
    }

    /// The connection has ended: its session is closed and its task done,
    /// after the last of its requests (those whose answer was still awaited
    /// are dropped). Called once per connection, in the connection's task
    /// (keep it short); where an application forgets a connection it kept
    /// (a registry of binds), without a task per connection to wait for
    /// [`closed`](crate::Connection::closed). Nothing by default.
    fn ended(&self, conn: &C) {
        let _ = conn;
    }

    /// Answers any request with its `*_resp` body, or an error status. The
    /// default hands each operation to its method above (each refusing with
    /// `ESME_RINVCMDID` unless implemented) and refuses the others
    /// (`broadcast_sm` and friends: override this method for them).
    fn request(&self, conn: &C, pdu: Pdu) -> impl Answer<Body> {
        async move {
            match pdu.body {
                Body::SubmitSm(sm) => self.submit_sm(conn, *sm).await.map(Body::SubmitSmResp),
                Body::DataSm(sm) => self.data_sm(conn, *sm).await.map(Body::DataSmResp),
                Body::SubmitMulti(sm) => self
                    .submit_multi(conn, *sm)
                    .await
                    .map(|r| Body::SubmitMultiResp(r.into())),
                Body::QuerySm(q) => self
                    .query_sm(conn, *q)
                    .await
                    .map(|r| Body::QuerySmResp(r.into())),
                Body::CancelSm(c) => self.cancel_sm(conn, *c).await.map(Body::CancelSmResp),
                Body::ReplaceSm(r) => self.replace_sm(conn, *r).await.map(Body::ReplaceSmResp),
                _ => Err(CommandStatus::INVALID_COMMAND_ID),
            }
        }
    }
}

/// What a [`Handler`] method returns: the response body, or an error status
/// (sent header-only).
pub trait Answer<T>: Future<Output = Result<T, CommandStatus>> + Send {}

impl<T, F: Future<Output = Result<T, CommandStatus>> + Send> Answer<T> for F {}

fn unsupported<T: Send, C, U>(_: &C, _: U) -> impl Answer<T> {
    std::future::ready(Err(CommandStatus::INVALID_COMMAND_ID))
}

/// The application side of an MC on the blocking adapter: [`Handler`]
/// with plain methods, for connections of type `C`.
///
/// The adapter calls it on each connection's own thread: the requests of
/// one connection are handled one after another, in arrival order. A
/// panicking method answers `ESME_RSYSERR`.
pub trait BlockingHandler<C>: Send + Sync + 'static {
    /// Accepts (`Ok`) or rejects (an error status such as
    /// `CommandStatus::INVALID_PASSWORD`) a bind.
    fn bind(&self, conn: &C, kind: BindKind, bind: &Bind) -> Result<(), CommandStatus>;

    /// Answers a `submit_sm` with its message id, or an error status.
    fn submit_sm(&self, conn: &C, sm: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        let _ = (conn, sm);
        Err(CommandStatus::INVALID_COMMAND_ID)
    }

    /// Answers a `data_sm`.
    fn data_sm(&self, conn: &C, sm: DataSm) -> Result<DataSmResp, CommandStatus> {
        let _ = (conn, sm);
        Err(CommandStatus::INVALID_COMMAND_ID)
    }

    /// Answers a `submit_multi`.
    fn submit_multi(&self, conn: &C, sm: SubmitMulti) -> Result<SubmitMultiResp, CommandStatus> {
        let _ = (conn, sm);
        Err(CommandStatus::INVALID_COMMAND_ID)
    }

    /// Answers a `query_sm`.
    fn query_sm(&self, conn: &C, query: QuerySm) -> Result<QuerySmResp, CommandStatus> {
        let _ = (conn, query);
        Err(CommandStatus::INVALID_COMMAND_ID)
    }

    /// Answers a `cancel_sm`.
    fn cancel_sm(&self, conn: &C, cancel: CancelSm) -> Result<Tlvs, CommandStatus> {
        let _ = (conn, cancel);
        Err(CommandStatus::INVALID_COMMAND_ID)
    }

    /// Answers a `replace_sm`.
    fn replace_sm(&self, conn: &C, replace: ReplaceSm) -> Result<Tlvs, CommandStatus> {
        let _ = (conn, replace);
        Err(CommandStatus::INVALID_COMMAND_ID)
    }

    /// Answers any request with its `*_resp` body, or an error status; the
    /// default dispatches as [`Handler::request`] does.
    fn request(&self, conn: &C, pdu: Pdu) -> Result<Body, CommandStatus> {
        match pdu.body {
            Body::SubmitSm(sm) => self.submit_sm(conn, *sm).map(Body::SubmitSmResp),
            Body::DataSm(sm) => self.data_sm(conn, *sm).map(Body::DataSmResp),
            Body::SubmitMulti(sm) => self
                .submit_multi(conn, *sm)
                .map(|r| Body::SubmitMultiResp(r.into())),
            Body::QuerySm(q) => self.query_sm(conn, *q).map(|r| Body::QuerySmResp(r.into())),
            Body::CancelSm(c) => self.cancel_sm(conn, *c).map(Body::CancelSmResp),
            Body::ReplaceSm(r) => self.replace_sm(conn, *r).map(Body::ReplaceSmResp),
            _ => Err(CommandStatus::INVALID_COMMAND_ID),
        }
    }
}

/// A future polled inside [`catch_unwind`]: a panic becomes `Err(())`.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// The response to request `seq` (command `id`) from what the handler said,
/// or whether it panicked: an error status goes with an empty body.
fn settle(
    seq: SequenceNumber,
    id: CommandId,
    answer: Result<Result<Body, CommandStatus>, ()>,
) -> Response {
    match answer {
        Ok(Ok(body)) => (seq, CommandStatus::OK, body),
        Ok(Err(status)) => (seq, status, empty_response(id)),
        Err(()) => {
            tracing::error!(%seq, "handler panicked: answered ESME_RSYSERR");
            (seq, CommandStatus::SYSTEM_ERROR, empty_response(id))
        }
    }
}

/// Runs `handler` on the request `pdu`: the answer to send; a panic answers
/// `ESME_RSYSERR`.
pub(crate) async fn answer<C: Sync, H: Handler<C>>(handler: &H, conn: &C, pdu: Pdu) -> Response {
    let (seq, id) = (pdu.sequence_number, pdu.command_id());
    let result = CatchUnwind(pin!(handler.request(conn, pdu))).await;
    settle(seq, id, result)
}

/// Runs `handler`'s bind check for `conn` (a panic rejects with
/// `ESME_RSYSERR`), records an accepted bind in `info`, and returns the
/// `bind_*_resp` to send (with `system_id`, ours).
pub(crate) async fn bind<C: Sync, H: Handler<C>>(
    handler: &H,
    conn: &C,
    info: &ConnectionInfo,
    (seq, kind, bind): (SequenceNumber, BindKind, Bind),
    system_id: &str,
) -> Response {
    let result = CatchUnwind(pin!(handler.bind(conn, kind, &bind))).await;
    info.bound(
        kind,
        &bind,
        result.unwrap_or(Err(CommandStatus::SYSTEM_ERROR)),
        seq,
        system_id,
    )
}

/// What an MC's connection does with one item from its session.
#[allow(missing_debug_implementations)] // holds a future
pub(crate) enum Routed<'a> {
    /// Send this answer now.
    Answer(Response),
    /// Send the answer of this future once it completes (the handler is
    /// still at work); poll it with the connection's other answers.
    Later(Pin<Box<dyn Future<Output = Response> + Send + 'a>>),
    /// Nothing to answer (alerts and outbinds: only an MC sends these).
    Nothing,
}

/// Routes one item of an MC's connection `conn`: a request to `handler`,
/// a bind to its check (recorded in `info`; `system_id` is ours). Each is
/// polled once at once: an answer that is ready needs no task of its own.
pub(crate) fn route<'a, C: Sync, H: Handler<C>>(
    handler: &'a H,
    conn: &'a C,
    info: &'a ConnectionInfo,
    system_id: &'a str,
    item: Incoming,
) -> Routed<'a> {
    let mut answer: Pin<Box<dyn Future<Output = Response> + Send + 'a>> = match item {
        Incoming::Request(pdu) => Box::pin(answer(handler, conn, pdu)),
        Incoming::Bind { seq, kind, bind } => Box::pin(self::bind(
            handler,
            conn,
            info,
            (seq, kind, *bind),
            system_id,
        )),
        _ => return Routed::Nothing,
    };
    match answer
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(response) => Routed::Answer(response),
        Poll::Pending => Routed::Later(answer),
    }
}

/// What a server's accept path learnt of a connection before SMPP: the
/// client's address (the one a PROXY protocol header carried, or the TCP
/// peer's) and, with mutual TLS, the client's certificate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Accepted {
    /// The client's address.
    pub peer: SocketAddr,
    /// The client's end-entity certificate (DER), when it presented one.
    pub client_certificate: Option<Arc<[u8]>>,
    /// The connection is over TLS.
    pub tls: bool,
}

impl Accepted {
    /// A client at `peer`, without a certificate.
    pub fn new(peer: SocketAddr) -> Accepted {
        Accepted {
            peer,
            client_certificate: None,
            tls: false,
        }
    }

    /// Over TLS.
    #[must_use]
    pub fn with_tls(mut self) -> Accepted {
        self.tls = true;
        self
    }

    /// With the client's certificate (DER).
    #[must_use]
    pub fn with_client_certificate(mut self, der: impl Into<Arc<[u8]>>) -> Accepted {
        self.client_certificate = Some(der.into());
        self
    }
}

/// What a server knows of one connection besides its session: a number,
/// the peer's address, its TLS client certificate, and how it bound.
#[derive(Debug)]
pub struct ConnectionInfo {
    id: u64,
    peer: Option<SocketAddr>,
    client_certificate: Option<Arc<[u8]>>,
    tls: bool,
    bound: OnceLock<(String, BindKind, u8)>,
}

impl ConnectionInfo {
    /// A connection not bound yet.
    pub fn new(id: u64, peer: Option<SocketAddr>) -> ConnectionInfo {
        ConnectionInfo {
            id,
            peer,
            client_certificate: None,
            tls: false,
            bound: OnceLock::new(),
        }
    }

    /// A connection not bound yet, as its accept path found it.
    pub fn accepted(id: u64, accepted: Accepted) -> ConnectionInfo {
        ConnectionInfo {
            client_certificate: accepted.client_certificate,
            tls: accepted.tls,
            ..ConnectionInfo::new(id, Some(accepted.peer))
        }
    }

    /// The client's TLS certificate (DER), when it presented one (mutual
    /// TLS, given by the accept path: see `Server::run_accepting`).
    pub fn client_certificate(&self) -> Option<&[u8]> {
        self.client_certificate.as_deref()
    }

    /// Whether the connection is over TLS (as its accept path said).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// A number unique within the server.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The ESME's address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The `system_id` it bound with (`None` until bound).
    pub fn system_id(&self) -> Option<&str> {
        self.bound.get().map(|(s, _, _)| s.as_str())
    }

    /// How it bound (`None` until bound).
    pub fn bind_kind(&self) -> Option<BindKind> {
        self.bound.get().map(|&(_, k, _)| k)
    }

    /// The SMPP version agreed with the ESME (0x50, 0x34, or 0x33 for a
    /// 3.3 peer, to which no TLVs may be sent); `None` until bound.
    pub fn interface_version(&self) -> Option<u8> {
        self.bound.get().map(|&(_, _, v)| v)
    }

    /// Bound as receiver or transceiver with this `system_id`.
    pub fn is_receiver(&self, system_id: &str) -> bool {
        self.system_id() == Some(system_id)
            && matches!(
                self.bind_kind(),
                Some(BindKind::Receiver | BindKind::Transceiver)
            )
    }

    fn bound(
        &self,
        kind: BindKind,
        bind: &Bind,
        result: Result<(), CommandStatus>,
        seq: SequenceNumber,
        system_id: &str,
    ) -> Response {
        if result.is_ok() {
            let peer_id = bind.system_id.to_string_lossy().into_owned();
            let version = negotiate(INTERFACE_VERSION, Some(bind.interface_version));
            let _ = self.bound.set((peer_id, kind, version));
        }
        let (status, body) = bind_answer(kind, result, system_id, bind.interface_version);
        (seq, status, body)
    }
}

/// An adapter's server-side connection handle, as the [`Registry`] sees it.
pub(crate) trait Registered: Clone {
    /// Its [`ConnectionInfo`].
    fn info(&self) -> &ConnectionInfo;
    /// Its session has closed.
    fn is_closed(&self) -> bool;
    /// Unbinds when bound, closes otherwise.
    fn release(&self);
}

/// A server's open connections, by [`ConnectionInfo::id`].
#[derive(Debug)]
pub(crate) struct Registry<C> {
    connections: Mutex<HashMap<u64, C>>,
    next_id: AtomicU64,
}

impl<C> Default for Registry<C> {
    fn default() -> Self {
        Registry {
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }
}

impl<C: Registered> Registry<C> {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, C>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new connection's number.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Adds `conn` until the returned guard is dropped; the guard then
    /// removes it and releases it (nobody would answer its requests any more).
    pub(crate) fn register(&self, conn: C) -> Registration<'_, C> {
        self.lock().insert(conn.info().id(), conn.clone());
        Registration {
            registry: self,
            conn,
        }
    }

    /// Every open connection.
    pub(crate) fn connections(&self) -> Vec<C> {
        self.lock().values().cloned().collect()
    }

    /// An open connection bound as receiver or transceiver with this
    /// `system_id` (the one to send `deliver_sm` to).
    pub(crate) fn receiver(&self, system_id: &str) -> Option<C> {
        let connections = self.lock();
        let mut found = connections.values();
        found
            .find(|c| c.info().is_receiver(system_id) && !c.is_closed())
            .cloned()
    }

    /// Releases every connection (a server shutting down).
    pub(crate) fn release_all(&self) {
        for conn in self.connections() {
            conn.release();
        }
    }
}

/// A connection in a [`Registry`], until dropped.
#[derive(Debug)]
pub(crate) struct Registration<'a, C: Registered> {
    registry: &'a Registry<C>,
    conn: C,
}

impl<C: Registered> Drop for Registration<'_, C> {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.conn.info().id());
        self.conn.release();
    }
}
/// An MC's settings, shared by the runtime adapters' servers.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Each connection's session settings (windows, timers; its
    /// `session_init_timeout` closes connections that do not bind in time).
    pub session: Arc<SessionConfig>,
    /// Connections beyond this are closed at once.
    pub max_connections: usize,
    /// Our `system_id` in `bind_*_resp`.
    pub system_id: String,
    /// Late responses of every connection added up: answers to our
    /// requests (`deliver_sm`...) that came after they had timed out. Give
    /// two servers the same counter to count them together
    /// ([`with_late_responses`](ServerConfig::with_late_responses)).
    pub late_responses: Arc<AtomicU64>,
    /// TLVs left out of the PDUs every connection sent, because its peer's
    /// SMPP version cannot take them (none to a 3.3 ESME, none of 5.0's to
    /// a 3.4 one: `Event::TlvsDropped` in smpp-proto), added up
    /// ([`with_tlvs_dropped`](ServerConfig::with_tlvs_dropped)).
    pub tlvs_dropped: Arc<AtomicU64>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            session: Arc::new(SessionConfig::default()),
            max_connections: 1024,
            system_id: "SMSC".into(),
            late_responses: Arc::default(),
            tlvs_dropped: Arc::default(),
        }
    }
}

impl ServerConfig {
    /// Sets [`ServerConfig::session`].
    #[must_use]
    pub fn with_session(mut self, session: impl Into<Arc<SessionConfig>>) -> Self {
        self.session = session.into();
        self
    }

    /// Sets [`ServerConfig::max_connections`].
    #[must_use]
    pub fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets [`ServerConfig::system_id`].
    #[must_use]
    pub fn with_system_id(mut self, system_id: impl Into<String>) -> Self {
        self.system_id = system_id.into();
        self
    }

    /// Sets [`ServerConfig::late_responses`].
    #[must_use]
    pub fn with_late_responses(mut self, counter: Arc<AtomicU64>) -> Self {
        self.late_responses = counter;
        self
    }

    /// Sets [`ServerConfig::tlvs_dropped`].
    #[must_use]
    pub fn with_tlvs_dropped(mut self, counter: Arc<AtomicU64>) -> Self {
        self.tlvs_dropped = counter;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection handle: what keeps the connection alive.
    struct Conn(#[allow(dead_code)] Arc<()>);

    struct Now;

    impl Handler<Conn> for Now {
        async fn bind(&self, _: &Conn, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
            Ok(())
        }

        fn answer_now(
            &self,
            _: &Conn,
            pdu: &Pdu,
            _: Instant,
        ) -> Option<Result<Body, CommandStatus>> {
            matches!(pdu.body, Body::SubmitSm(_))
                .then(|| Ok(Body::SubmitSmResp(SubmitSmResp::default())))
        }
    }

    #[test]
    fn quick_answers_hold_the_connection_for_a_round_only() {
        let inner = Arc::new(());
        let quick = QuickAnswers::default();
        quick.set(Arc::downgrade(&inner), Arc::new(Now), Conn);
        let pdu = Pdu::request(SequenceNumber::new(1), Body::SubmitSm(Box::default()));
        let mut hold = QuickHold::default();
        let now = Instant::now();
        for _ in 0..3 {
            let Some(Quick::Now(status, body)) = quick.answer(&pdu, now, &mut hold) else {
                panic!("answered now");
            };
            assert_eq!(status, CommandStatus::OK);
            assert!(matches!(body, Body::SubmitSmResp(_)));
        }
        // One handle for the whole round, let go at its end.
        assert_eq!(Arc::strong_count(&inner), 2);
        hold.release();
        assert_eq!(Arc::strong_count(&inner), 1);
        // Once every other handle is gone there is nobody to answer for.
        drop(inner);
        assert!(quick.answer(&pdu, now, &mut hold).is_none());
        hold.release();
    }

    /// Answers a data_sm soon (after one pending poll), panics on a
    /// query_sm's future, and leaves the rest to `request`.
    struct Soon;

    impl Handler<Conn> for Soon {
        async fn bind(&self, _: &Conn, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
            Ok(())
        }

        fn answer_soon(&self, _: &Conn, pdu: &Pdu, _: Instant) -> Option<SoonAnswer> {
            match pdu.body {
                Body::DataSm(_) => Some(Box::pin(async {
                    let mut polled = false;
                    std::future::poll_fn(|cx| {
                        if std::mem::replace(&mut polled, true) {
                            Poll::Ready(())
                        } else {
                            cx.waker().wake_by_ref();
                            Poll::Pending
                        }
                    })
                    .await;
                    Ok(Body::DataSmResp(DataSmResp::default()))
                })),
                Body::QuerySm(_) => Some(Box::pin(async { panic!("a handler bug") })),
                _ => None,
            }
        }
    }

    #[test]
    fn soon_answers_are_futures_of_the_response_and_a_panic_is_a_system_error() {
        let inner = Arc::new(());
        let quick = QuickAnswers::default();
        quick.set(Arc::downgrade(&inner), Arc::new(Soon), Conn);
        let mut hold = QuickHold::default();
        let now = Instant::now();
        let mut cx = Context::from_waker(Waker::noop());

        let data = Pdu::request(SequenceNumber::new(7), Body::DataSm(Box::default()));
        let Some(Quick::Soon(mut soon)) = quick.answer(&data, now, &mut hold) else {
            panic!("answered soon");
        };
        assert!(Pin::new(&mut soon).poll(&mut cx).is_pending());
        let Poll::Ready((seq, status, body)) = Pin::new(&mut soon).poll(&mut cx) else {
            panic!("ready on the second poll");
        };
        assert_eq!((seq.get(), status), (7, CommandStatus::OK));
        assert!(matches!(body, Body::DataSmResp(_)));

        let query = Pdu::request(SequenceNumber::new(8), Body::QuerySm(Box::default()));
        let Some(Quick::Soon(mut soon)) = quick.answer(&query, now, &mut hold) else {
            panic!("answered soon");
        };
        let Poll::Ready((seq, status, body)) = Pin::new(&mut soon).poll(&mut cx) else {
            panic!("a panic ends it");
        };
        assert_eq!((seq.get(), status), (8, CommandStatus::SYSTEM_ERROR));
        assert!(matches!(body, Body::QuerySmResp(_)));

        // Neither now nor soon: the usual way.
        let submit = Pdu::request(SequenceNumber::new(9), Body::SubmitSm(Box::default()));
        assert!(quick.answer(&submit, now, &mut hold).is_none());
        hold.release();
    }
}
