//! What the conformance suite needs from an adapter, as traits: one
//! implementation per adapter ([`crate::adapters`]), the suite written once
//! over them ([`crate::suite`]).
//!
//! Every operation is a `Send` future, so a test body can run it on its
//! own task ([`Adapter::spawn`]) or many at once (`join_all`). The async
//! adapters answer with their own futures; the blocking adapter runs each
//! call on a thread of a pool, so waiting callers really block threads,
//! as its users' do.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smpp_async::{Backoff, Error, InboundRequest, MemberStatus, PoolConfig, ServerConfig};
use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::{AlertNotification, Bind, Body, COctetString, Outbind, Pdu, SubmitSm};
use smpp_proto::session::{BindKind, CloseReason, SessionConfig, Stats};

use crate::smsc::Smsc;

/// An adapter under test: its types and how to run a test on it.
pub trait Adapter: Sized + Send + Sync + 'static {
    /// A bound ESME session.
    type Client: ClientOps;
    /// Requests the MC sent to a client.
    type Inbound: InboundOps;
    /// The MC side of one connection.
    type Conn: ConnOps;
    /// A running server's handle.
    type Server: ServerOps<Conn = Self::Conn>;
    /// A client that reconnects.
    type Reconnecting: ReconnectingOps<Client = Self::Client>;
    /// A pool of reconnecting binds.
    type Pool: PoolOps<Client = Self::Client>;
    /// An ESME's listener for outbind.
    type Listener: ListenerOps<Client = Self::Client, Inbound = Self::Inbound>;

    /// Runs a test body to its end on this adapter's runtime.
    fn block_on<T>(test: impl Future<Output = T>) -> T;

    /// Tasks alive in the runtime (threads of the process for the blocking
    /// adapter), where the runtime counts them: leak checks compare it.
    fn live_tasks() -> Option<usize>;

    /// How many more of [`live_tasks`](Adapter::live_tasks) a leak check
    /// tolerates (a runtime's own tasks that end late).
    const TASK_SLACK: usize;

    /// Runs `task` on its own (a task of the runtime; a thread for the
    /// blocking adapter).
    fn spawn<T: Send + 'static>(task: impl Future<Output = T> + Send + 'static) -> Task<T>;

    /// Binds a server on `at` (127.0.0.1 port 0, or a port to restart
    /// on) and runs it in the background; `tls` makes it a TLS server.
    fn serve(
        at: SocketAddr,
        smsc: Smsc,
        config: ServerConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> impl Future<Output = Serving<Self>> + Send;

    /// Connects and binds over TCP (over TLS for `server_name` with `tls`).
    fn connect(
        to: Connector,
        tls: Option<(Arc<rustls::ClientConfig>, &'static str)>,
    ) -> impl Future<Output = Result<(Self::Client, Self::Inbound), Error>> + Send;

    /// A reconnecting client over `to`.
    fn reconnecting(
        to: Connector,
        backoff: Backoff,
        wait: Duration,
    ) -> (Self::Reconnecting, Self::Inbound);

    /// A pool of `size` binds over `to`.
    fn pool(
        size: usize,
        to: Connector,
        backoff: Backoff,
        wait: Duration,
        config: PoolConfig,
    ) -> (Self::Pool, Self::Inbound);

    /// An outbind listener on 127.0.0.1 port 0.
    fn listen_outbind() -> impl Future<Output = io::Result<Self::Listener>> + Send;
}

/// A server started by [`Adapter::serve`].
#[derive(Debug)]
pub struct Serving<A: Adapter> {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its handle.
    pub server: A::Server,
    /// Its run loop; ends when the server does.
    pub task: Task<io::Result<()>>,
}

/// How a client connects: where to, as what, with which session settings.
#[derive(Clone, Debug)]
pub struct Connector {
    /// The MC's address.
    pub addr: SocketAddr,
    /// The bind's kind.
    pub kind: BindKind,
    /// The bind's body.
    pub bind: Bind,
    /// The session's settings.
    pub config: SessionConfig,
}

/// A bound client session.
pub trait ClientOps: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The bind's response.
    fn bind_response(&self) -> Pdu;
    /// Submits one message, answers its message id.
    fn submit(&self, sm: SubmitSm) -> impl Future<Output = Result<COctetString, Error>> + Send;
    /// Submits a (possibly long) message, answers every part's id.
    fn submit_message(
        &self,
        message: ShortMessage,
    ) -> impl Future<Output = Result<Vec<COctetString>, Error>> + Send;
    /// Sends any request, answers its response.
    fn request(&self, body: Body) -> impl Future<Output = Result<Pdu, Error>> + Send;
    /// Unbinds, waiting for `unbind_resp`.
    fn unbind(&self) -> impl Future<Output = Result<(), Error>> + Send;
    /// The session's counters.
    fn stats(&self) -> impl Future<Output = Result<Stats, Error>> + Send;
    /// Sends `enquire_link`, answers the round trip.
    fn enquire_link(&self) -> impl Future<Output = Result<Duration, Error>> + Send;
    /// The last answered `enquire_link`'s round trip.
    fn last_round_trip(&self) -> Option<Duration>;
    /// Closes without unbinding.
    fn close(&self);
    /// Whether the session has ended.
    fn is_closed(&self) -> bool;
    /// Waits for the session's end.
    fn closed(&self) -> impl Future<Output = CloseReason> + Send;
}

/// What [`InboundOps::recv`] got.
pub type Received = Result<Option<InboundRequest>, Elapsed>;

/// A wait that ran out of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed;

/// Requests the MC sent to a client.
pub trait InboundOps: std::fmt::Debug + Send + Sync + 'static {
    /// The next request (`Ok(None)`: the session has ended), or
    /// `Err(Elapsed)` when none comes within `limit`.
    fn recv(&self, limit: Duration) -> impl Future<Output = Received> + Send;
}

/// The MC side of one connection.
pub trait ConnOps: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The connection's id in the server.
    fn id(&self) -> u64;
    /// The bound system id.
    fn system_id(&self) -> Option<String>;
    /// The bind's kind, once bound.
    fn bind_kind(&self) -> Option<BindKind>;
    /// Sends a `deliver_sm`, answers its response.
    fn deliver(&self, sm: SubmitSm) -> impl Future<Output = Result<Pdu, Error>> + Send;
    /// Sends an `alert_notification`.
    fn alert(&self, alert: AlertNotification) -> impl Future<Output = Result<(), Error>> + Send;
    /// The session's counters.
    fn stats(&self) -> impl Future<Output = Result<Stats, Error>> + Send;
    /// Closes without unbinding.
    fn close(&self);
    /// Waits for the session's end.
    fn closed(&self) -> impl Future<Output = CloseReason> + Send;
}

/// A running server's handle.
pub trait ServerOps: std::fmt::Debug + Send + Sync + 'static {
    /// The server's connection type.
    type Conn: ConnOps;
    /// Its open connections.
    fn connections(&self) -> Vec<Self::Conn>;
    /// A bound receiver (or transceiver) of `system_id`.
    fn receiver(&self, system_id: &str) -> Option<Self::Conn>;
    /// Outbinds to `addr` and waits for the ESME's bind.
    fn outbind(
        &self,
        addr: SocketAddr,
        outbind: Outbind,
    ) -> impl Future<Output = Result<Self::Conn, Error>> + Send;
    /// Unbinds everyone and stops listening.
    fn shutdown(&self);
}

/// A client that reconnects.
pub trait ReconnectingOps: std::fmt::Debug + Send + Sync + 'static {
    /// Its session type.
    type Client;
    /// Submits over the current session (waiting for one).
    fn submit(&self, sm: SubmitSm) -> impl Future<Output = Result<COctetString, Error>> + Send;
    /// The session, waiting for one.
    fn client(&self) -> impl Future<Output = Result<Self::Client, Error>> + Send;
    /// Whether a session is up.
    fn is_connected(&self) -> bool;
    /// The session now, if one is up.
    fn current(&self) -> Option<Self::Client>;
    /// Stops reconnecting and unbinds.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// A pool of reconnecting binds.
pub trait PoolOps: std::fmt::Debug + Send + Sync + 'static {
    /// Its session type.
    type Client;
    /// Submits over the next bind.
    fn submit(&self, sm: SubmitSm) -> impl Future<Output = Result<COctetString, Error>> + Send;
    /// Submits a (possibly long) message, every part over one bind.
    fn submit_message(
        &self,
        message: ShortMessage,
    ) -> impl Future<Output = Result<Vec<COctetString>, Error>> + Send;
    /// The next bind's session.
    fn client(&self) -> impl Future<Output = Result<Self::Client, Error>> + Send;
    /// Its flow control.
    fn config(&self) -> PoolConfig;
    /// How many binds are up.
    fn bound(&self) -> usize;
    /// How many binds are paused (throttled).
    fn paused(&self) -> usize;
    /// Each bind's state and last round trip.
    fn members(&self) -> Vec<MemberStatus>;
    /// An `enquire_link` through every bound member.
    fn enquire_link(&self) -> impl Future<Output = Vec<Option<Result<Duration, Error>>>> + Send;
    /// Stops every bind.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// An ESME's listener for outbind.
pub trait ListenerOps: std::fmt::Debug + Send + Sync + 'static {
    /// Its session type.
    type Client;
    /// Its inbound type.
    type Inbound;
    /// Where it listens.
    fn local_addr(&self) -> SocketAddr;
    /// Accepts one outbind whose credentials pass `check`, then binds
    /// back as `kind`.
    fn accept(
        &self,
        check: fn(&Outbind) -> bool,
        kind: BindKind,
        bind: Bind,
        config: SessionConfig,
    ) -> impl Future<Output = Result<(Self::Client, Self::Inbound), Error>> + Send;
}

/// A running task's result.
#[derive(Debug)]
pub struct Task<T> {
    result: async_channel::Receiver<T>,
}

impl<T: Send + 'static> Task<T> {
    /// A task whose result comes through the returned sender.
    pub fn channel() -> (async_channel::Sender<T>, Task<T>) {
        let (tx, result) = async_channel::bounded(1);
        (tx, Task { result })
    }

    /// Runs `f` on a thread of its own.
    pub fn thread(f: impl FnOnce() -> T + Send + 'static) -> Task<T> {
        let (tx, task) = Task::channel();
        std::thread::spawn(move || drop(tx.send_blocking(f())));
        task
    }

    /// Whether it has ended.
    pub fn is_finished(&self) -> bool {
        !self.result.is_empty() || self.result.is_closed()
    }

    /// Its result; panics if the task panicked.
    pub async fn join(self) -> T {
        self.result.recv().await.expect("the task panicked")
    }
}

/// `f`'s output, or `None` when `limit` passes first.
pub async fn timeout<F: Future>(limit: Duration, f: F) -> Option<F::Output> {
    futures_lite::future::or(async { Some(f.await) }, async {
        async_io::Timer::after(limit).await;
        None
    })
    .await
}

/// Waits `d` (on a timer of its own, whatever the runtime).
pub async fn sleep(d: Duration) {
    async_io::Timer::after(d).await;
}
