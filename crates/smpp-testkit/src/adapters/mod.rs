//! The four adapters under test: `smpp_async` on tokio, on smol and on
//! async-std (one implementation over its `Runtime`, run by each
//! executor), and `smpp_blocking` ([`Blocking`]).

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use smpp_async::{Backoff, Connect, Error, Io, PoolConfig, Runtime, ServerConfig, Tls};
use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::{AlertNotification, Bind, Body, COctetString, Outbind, Pdu, SubmitSm};
use smpp_proto::session::{BindKind, CloseReason, SessionConfig, Stats};

use crate::adapter::{
    timeout, Adapter, ClientOps, ConnOps, Connector, Elapsed, InboundOps, ListenerOps, PoolOps,
    Received, ReconnectingOps, ServerOps, Serving, Task,
};
use crate::smsc::Smsc;

mod blocking;

pub use blocking::{Blocking, BlockingInbound};

/// How a test runs on an async runtime: its executor.
pub trait Executor: Send + Sync + 'static {
    /// The runtime `smpp_async` runs on.
    type Runtime: Runtime + Connect<SocketAddr> + Io<<Self::Runtime as Runtime>::Tcp> + Tls;
    /// Runs a test body to its end.
    fn block_on<T>(test: impl Future<Output = T>) -> T;
    /// Tasks alive in the runtime, if it counts them.
    fn live_tasks() -> Option<usize> {
        None
    }
    /// Runs `task` on the executor.
    fn spawn(task: impl Future<Output = ()> + Send + 'static);
}

/// `smpp_async` (the code of `smpp-tokio` and `smpp-smol`) on executor `E`.
#[derive(Debug)]
pub struct Async<E>(PhantomData<E>);

/// Tokio: a 2-worker runtime per test (`smpp_tokio`).
#[derive(Debug)]
pub struct TokioExecutor;

impl Executor for TokioExecutor {
    type Runtime = smpp_tokio::Tokio;

    fn block_on<T>(test: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(test)
    }

    fn live_tasks() -> Option<usize> {
        Some(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
        )
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
    }
}

/// smol (`smpp_smol`).
#[derive(Debug)]
pub struct SmolExecutor;

impl Executor for SmolExecutor {
    type Runtime = smpp_smol::Smol;

    fn block_on<T>(test: impl Future<Output = T>) -> T {
        smol::block_on(test)
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        smol::spawn(task).detach();
    }
}

/// async-std running the test bodies (`smpp_smol` underneath).
#[derive(Debug)]
pub struct AsyncStdExecutor;

impl Executor for AsyncStdExecutor {
    type Runtime = smpp_smol::Smol;

    fn block_on<T>(test: impl Future<Output = T>) -> T {
        async_std::task::block_on(test)
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        drop(async_std::task::spawn(task));
    }
}

/// `smpp-tokio` under test.
pub type Tokio = Async<TokioExecutor>;
/// `smpp-smol` under test with smol.
pub type Smol = Async<SmolExecutor>;
/// `smpp-smol` under test with async-std.
pub type AsyncStd = Async<AsyncStdExecutor>;

pub(crate) fn server_name(name: &'static str) -> ServerName<'static> {
    ServerName::try_from(name).expect("a DNS name")
}

/// A connect-and-bind in progress.
type Binding<R> = Pin<
    Box<dyn Future<Output = Result<(smpp_async::Client<R>, smpp_async::Inbound), Error>> + Send>,
>;

/// Connects and binds over `to`, again at each call (for reconnecting).
fn async_connector<R>(to: Connector) -> impl FnMut() -> Binding<R> + Clone + Send + 'static
where
    R: Runtime + Connect<SocketAddr> + Io<<R as Runtime>::Tcp>,
{
    move || {
        let to = to.clone();
        Box::pin(smpp_async::Client::connect(
            to.addr, to.kind, to.bind, to.config,
        ))
    }
}

impl<E: Executor> Adapter for Async<E> {
    type Client = smpp_async::Client<E::Runtime>;
    type Inbound = smpp_async::Inbound;
    type Conn = smpp_async::Connection;
    type Server = smpp_async::ServerHandle<E::Runtime>;
    type Reconnecting = smpp_async::ReconnectingClient<E::Runtime>;
    type Pool = smpp_async::Pool<E::Runtime>;
    type Listener = smpp_async::OutbindListener<E::Runtime>;

    fn block_on<T>(test: impl Future<Output = T>) -> T {
        E::block_on(Box::pin(test)) // on the heap: a test's future is large
    }

    const TASK_SLACK: usize = 2;

    fn live_tasks() -> Option<usize> {
        E::live_tasks()
    }

    fn spawn<T: Send + 'static>(task: impl Future<Output = T> + Send + 'static) -> Task<T> {
        let (tx, joined) = Task::channel();
        E::spawn(async move { drop(tx.send(task.await).await) });
        joined
    }

    async fn serve(
        at: SocketAddr,
        smsc: Smsc,
        config: ServerConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Serving<Self> {
        let server = smpp_async::Server::<E::Runtime, _>::bind(at, smsc, config)
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let handle = server.handle();
        let task = match tls {
            None => Self::spawn(server.run()),
            Some(tls) => Self::spawn(server.run_tls(tls)),
        };
        Serving {
            addr,
            server: handle,
            task,
        }
    }

    async fn connect(
        to: Connector,
        tls: Option<(Arc<rustls::ClientConfig>, &'static str)>,
    ) -> Result<(Self::Client, Self::Inbound), Error> {
        match tls {
            None => smpp_async::Client::connect(to.addr, to.kind, to.bind, to.config).await,
            Some((tls, name)) => {
                let name = server_name(name);
                smpp_async::Client::connect_tls(to.addr, name, tls, to.kind, to.bind, to.config)
                    .await
            }
        }
    }

    fn reconnecting(
        to: Connector,
        backoff: Backoff,
        wait: Duration,
    ) -> (Self::Reconnecting, Self::Inbound) {
        let connect = async_connector::<E::Runtime>(to);
        smpp_async::ReconnectingClient::new(connect, backoff, wait)
    }

    fn pool(
        size: usize,
        to: Connector,
        backoff: Backoff,
        wait: Duration,
        config: PoolConfig,
    ) -> (Self::Pool, Self::Inbound) {
        let connect = async_connector::<E::Runtime>(to);
        smpp_async::Pool::with_config(size, connect, backoff, wait, config)
    }

    async fn listen_outbind() -> io::Result<Self::Listener> {
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
        smpp_async::OutbindListener::bind(local).await
    }
}

impl<R: Runtime> ClientOps for smpp_async::Client<R> {
    fn bind_response(&self) -> Pdu {
        smpp_async::Client::bind_response(self).clone()
    }

    fn submit(&self, sm: SubmitSm) -> impl Future<Output = Result<COctetString, Error>> + Send {
        smpp_async::Client::submit(self, sm)
    }

    async fn submit_message(&self, message: ShortMessage) -> Result<Vec<COctetString>, Error> {
        smpp_async::Client::submit_message(self, &message).await
    }

    fn request(&self, body: Body) -> impl Future<Output = Result<Pdu, Error>> + Send {
        smpp_async::Client::request(self, body)
    }

    fn unbind(&self) -> impl Future<Output = Result<(), Error>> + Send {
        smpp_async::Client::unbind(self)
    }

    fn stats(&self) -> impl Future<Output = Result<Stats, Error>> + Send {
        smpp_async::Client::stats(self)
    }

    fn enquire_link(&self) -> impl Future<Output = Result<Duration, Error>> + Send {
        smpp_async::Client::enquire_link(self)
    }

    fn last_round_trip(&self) -> Option<Duration> {
        smpp_async::Client::last_round_trip(self)
    }

    fn close(&self) {
        smpp_async::Client::close(self);
    }

    fn is_closed(&self) -> bool {
        smpp_async::Client::is_closed(self)
    }

    fn closed(&self) -> impl Future<Output = CloseReason> + Send {
        smpp_async::Client::closed(self)
    }
}

impl InboundOps for smpp_async::Inbound {
    async fn recv(&self, limit: Duration) -> Received {
        timeout(limit, smpp_async::Inbound::recv(self))
            .await
            .ok_or(Elapsed)
    }
}

impl ConnOps for smpp_async::Connection {
    fn id(&self) -> u64 {
        std::ops::Deref::deref(self).id()
    }

    fn system_id(&self) -> Option<String> {
        std::ops::Deref::deref(self).system_id().map(str::to_owned)
    }

    fn bind_kind(&self) -> Option<BindKind> {
        std::ops::Deref::deref(self).bind_kind()
    }

    async fn deliver(&self, sm: SubmitSm) -> Result<Pdu, Error> {
        smpp_async::Connection::deliver(self, sm).await
    }

    fn alert(&self, alert: AlertNotification) -> impl Future<Output = Result<(), Error>> + Send {
        smpp_async::Connection::alert(self, alert)
    }

    fn stats(&self) -> impl Future<Output = Result<Stats, Error>> + Send {
        smpp_async::Connection::stats(self)
    }

    fn close(&self) {
        smpp_async::Connection::close(self);
    }

    fn closed(&self) -> impl Future<Output = CloseReason> + Send {
        smpp_async::Connection::closed(self)
    }
}

impl<R: Runtime + Connect<SocketAddr>> ServerOps for smpp_async::ServerHandle<R> {
    type Conn = smpp_async::Connection;

    fn connections(&self) -> Vec<Self::Conn> {
        smpp_async::ServerHandle::connections(self)
    }

    fn receiver(&self, system_id: &str) -> Option<Self::Conn> {
        smpp_async::ServerHandle::receiver(self, system_id)
    }

    async fn outbind(&self, addr: SocketAddr, outbind: Outbind) -> Result<Self::Conn, Error> {
        smpp_async::ServerHandle::outbind(self, addr, outbind).await
    }

    fn shutdown(&self) {
        smpp_async::ServerHandle::shutdown(self);
    }
}

impl<R: Runtime> ReconnectingOps for smpp_async::ReconnectingClient<R> {
    type Client = smpp_async::Client<R>;

    async fn submit(&self, sm: SubmitSm) -> Result<COctetString, Error> {
        smpp_async::ReconnectingClient::submit(self, sm).await
    }

    async fn client(&self) -> Result<Self::Client, Error> {
        smpp_async::ReconnectingClient::client(self).await
    }

    fn is_connected(&self) -> bool {
        smpp_async::ReconnectingClient::is_connected(self)
    }

    fn current(&self) -> Option<Self::Client> {
        smpp_async::ReconnectingClient::current(self)
    }

    async fn close(&self) {
        smpp_async::ReconnectingClient::close(self).await;
    }
}

impl<R: Runtime> PoolOps for smpp_async::Pool<R> {
    type Client = smpp_async::Client<R>;

    async fn submit(&self, sm: SubmitSm) -> Result<COctetString, Error> {
        smpp_async::Pool::submit(self, sm).await
    }

    async fn submit_message(&self, message: ShortMessage) -> Result<Vec<COctetString>, Error> {
        smpp_async::Pool::submit_message(self, &message).await
    }

    async fn client(&self) -> Result<Self::Client, Error> {
        smpp_async::Pool::client(self).await
    }

    fn config(&self) -> PoolConfig {
        smpp_async::Pool::config(self).clone()
    }

    fn bound(&self) -> usize {
        smpp_async::Pool::bound(self)
    }

    fn paused(&self) -> usize {
        smpp_async::Pool::paused(self)
    }

    fn members(&self) -> Vec<smpp_async::MemberStatus> {
        smpp_async::Pool::members(self)
    }

    async fn enquire_link(&self) -> Vec<Option<Result<Duration, Error>>> {
        smpp_async::Pool::enquire_link(self).await
    }

    async fn close(&self) {
        smpp_async::Pool::close(self).await;
    }
}

impl<R: Runtime + Io<<R as Runtime>::Tcp>> ListenerOps for smpp_async::OutbindListener<R> {
    type Client = smpp_async::Client<R>;
    type Inbound = smpp_async::Inbound;

    fn local_addr(&self) -> SocketAddr {
        smpp_async::OutbindListener::local_addr(self).unwrap()
    }

    async fn accept(
        &self,
        check: fn(&Outbind) -> bool,
        kind: BindKind,
        bind: Bind,
        config: SessionConfig,
    ) -> Result<(Self::Client, Self::Inbound), Error> {
        smpp_async::OutbindListener::accept(self, kind, bind, config, check).await
    }
}
