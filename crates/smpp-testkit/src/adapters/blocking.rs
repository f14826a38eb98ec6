//! `smpp-blocking` under test.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smpp_async::{Backoff, Error, PoolConfig, ServerConfig};
use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::{AlertNotification, Bind, Body, COctetString, Outbind, Pdu, SubmitSm};
use smpp_proto::session::{BindKind, CloseReason, SessionConfig, Stats};

use super::server_name;
use crate::adapter::{
    Adapter, ClientOps, ConnOps, Connector, Elapsed, InboundOps, ListenerOps, PoolOps, Received,
    ReconnectingOps, ServerOps, Serving, Task,
};
use crate::offload::off;
use crate::smsc::Smsc;

/// `smpp-blocking` under test: every call runs on a thread of a pool, and
/// a test's own tasks are threads.
#[derive(Debug)]
pub struct Blocking;

/// A blocking client's inbound, shared with the threads that wait on it.
pub type BlockingInbound = Arc<smpp_blocking::Inbound>;

/// Connects and binds over `to`, again at each call (for reconnecting).
fn blocking_connector(
    to: Connector,
) -> impl FnMut() -> Result<(smpp_blocking::Client, smpp_blocking::Inbound), Error> + Clone + Send {
    move || {
        let to = to.clone();
        smpp_blocking::Client::connect(to.addr, to.kind, to.bind, to.config)
    }
}

impl Adapter for Blocking {
    type Client = smpp_blocking::Client;
    type Inbound = BlockingInbound;
    type Conn = smpp_blocking::Connection;
    type Server = smpp_blocking::ServerHandle;
    type Reconnecting = Arc<smpp_blocking::ReconnectingClient>;
    type Pool = Arc<smpp_blocking::Pool>;
    type Listener = Arc<smpp_blocking::OutbindListener>;

    fn block_on<T>(test: impl Future<Output = T>) -> T {
        futures_lite::future::block_on(Box::pin(test))
    }

    const TASK_SLACK: usize = 0;

    fn live_tasks() -> Option<usize> {
        Some(crate::threads())
    }

    fn spawn<T: Send + 'static>(task: impl Future<Output = T> + Send + 'static) -> Task<T> {
        Task::thread(move || futures_lite::future::block_on(task))
    }

    async fn serve(
        at: SocketAddr,
        smsc: Smsc,
        config: ServerConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Serving<Self> {
        let server = smpp_blocking::Server::bind(at, smsc, config).unwrap();
        let addr = server.local_addr().unwrap();
        let handle = server.handle();
        let task = match tls {
            None => Task::thread(move || server.run()),
            Some(tls) => Task::thread(move || server.run_tls(tls)),
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
        let bound = off(move || match tls {
            None => smpp_blocking::Client::connect(to.addr, to.kind, to.bind, to.config),
            Some((tls, name)) => smpp_blocking::Client::connect_tls(
                to.addr,
                server_name(name),
                tls,
                to.kind,
                to.bind,
                to.config,
            ),
        });
        bound
            .await
            .map(|(client, inbound)| (client, Arc::new(inbound)))
    }

    fn reconnecting(
        to: Connector,
        backoff: Backoff,
        wait: Duration,
    ) -> (Self::Reconnecting, Self::Inbound) {
        let connect = blocking_connector(to);
        let (client, inbound) = smpp_blocking::ReconnectingClient::new(connect, backoff, wait);
        (Arc::new(client), Arc::new(inbound))
    }

    fn pool(
        size: usize,
        to: Connector,
        backoff: Backoff,
        wait: Duration,
        config: PoolConfig,
    ) -> (Self::Pool, Self::Inbound) {
        let connect = blocking_connector(to);
        let (pool, inbound) =
            smpp_blocking::Pool::with_config(size, connect, backoff, wait, config);
        (Arc::new(pool), Arc::new(inbound))
    }

    async fn listen_outbind() -> io::Result<Self::Listener> {
        smpp_blocking::OutbindListener::bind("127.0.0.1:0").map(Arc::new)
    }
}

impl ClientOps for smpp_blocking::Client {
    fn bind_response(&self) -> Pdu {
        smpp_blocking::Client::bind_response(self).clone()
    }

    fn submit(&self, sm: SubmitSm) -> impl Future<Output = Result<COctetString, Error>> + Send {
        let client = self.clone();
        off(move || client.submit(sm))
    }

    fn submit_message(
        &self,
        message: ShortMessage,
    ) -> impl Future<Output = Result<Vec<COctetString>, Error>> + Send {
        let client = self.clone();
        off(move || client.submit_message(&message))
    }

    fn request(&self, body: Body) -> impl Future<Output = Result<Pdu, Error>> + Send {
        let client = self.clone();
        off(move || client.request(body))
    }

    fn unbind(&self) -> impl Future<Output = Result<(), Error>> + Send {
        let client = self.clone();
        off(move || client.unbind())
    }

    fn stats(&self) -> impl Future<Output = Result<Stats, Error>> + Send {
        let client = self.clone();
        off(move || client.stats())
    }

    fn enquire_link(&self) -> impl Future<Output = Result<Duration, Error>> + Send {
        let client = self.clone();
        off(move || smpp_blocking::Client::enquire_link(&client))
    }

    fn last_round_trip(&self) -> Option<Duration> {
        smpp_blocking::Client::last_round_trip(self)
    }

    fn close(&self) {
        smpp_blocking::Client::close(self);
    }

    fn is_closed(&self) -> bool {
        smpp_blocking::Client::is_closed(self)
    }

    fn closed(&self) -> impl Future<Output = CloseReason> + Send {
        let client = self.clone();
        off(move || client.closed())
    }
}

impl InboundOps for BlockingInbound {
    fn recv(&self, limit: Duration) -> impl Future<Output = Received> + Send {
        let inbound = self.clone();
        off(move || match inbound.recv_timeout(limit) {
            Ok(request) => Ok(Some(request)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Ok(None),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(Elapsed),
        })
    }
}

impl ConnOps for smpp_blocking::Connection {
    fn id(&self) -> u64 {
        std::ops::Deref::deref(self).id()
    }

    fn system_id(&self) -> Option<String> {
        std::ops::Deref::deref(self).system_id().map(str::to_owned)
    }

    fn bind_kind(&self) -> Option<BindKind> {
        std::ops::Deref::deref(self).bind_kind()
    }

    fn deliver(&self, sm: SubmitSm) -> impl Future<Output = Result<Pdu, Error>> + Send {
        let conn = self.clone();
        off(move || conn.deliver(sm))
    }

    fn alert(&self, alert: AlertNotification) -> impl Future<Output = Result<(), Error>> + Send {
        let conn = self.clone();
        off(move || conn.alert(alert))
    }

    fn stats(&self) -> impl Future<Output = Result<Stats, Error>> + Send {
        let conn = self.clone();
        off(move || conn.stats())
    }

    fn close(&self) {
        smpp_blocking::Connection::close(self);
    }

    fn closed(&self) -> impl Future<Output = CloseReason> + Send {
        let conn = self.clone();
        off(move || conn.closed())
    }
}

impl ServerOps for smpp_blocking::ServerHandle {
    type Conn = smpp_blocking::Connection;

    fn connections(&self) -> Vec<Self::Conn> {
        smpp_blocking::ServerHandle::connections(self)
    }

    fn receiver(&self, system_id: &str) -> Option<Self::Conn> {
        smpp_blocking::ServerHandle::receiver(self, system_id)
    }

    fn outbind(
        &self,
        addr: SocketAddr,
        outbind: Outbind,
    ) -> impl Future<Output = Result<Self::Conn, Error>> + Send {
        let server = self.clone();
        off(move || server.outbind(addr, outbind))
    }

    fn shutdown(&self) {
        smpp_blocking::ServerHandle::shutdown(self);
    }
}

impl ReconnectingOps for Arc<smpp_blocking::ReconnectingClient> {
    type Client = smpp_blocking::Client;

    fn submit(&self, sm: SubmitSm) -> impl Future<Output = Result<COctetString, Error>> + Send {
        let client = self.clone();
        off(move || smpp_blocking::ReconnectingClient::submit(&client, sm))
    }

    fn client(&self) -> impl Future<Output = Result<Self::Client, Error>> + Send {
        let client = self.clone();
        off(move || smpp_blocking::ReconnectingClient::client(&client))
    }

    fn is_connected(&self) -> bool {
        smpp_blocking::ReconnectingClient::is_connected(self)
    }

    fn current(&self) -> Option<Self::Client> {
        smpp_blocking::ReconnectingClient::current(self)
    }

    fn close(&self) -> impl Future<Output = ()> + Send {
        let client = self.clone();
        off(move || smpp_blocking::ReconnectingClient::close(&client))
    }
}

impl PoolOps for Arc<smpp_blocking::Pool> {
    type Client = smpp_blocking::Client;

    fn submit(&self, sm: SubmitSm) -> impl Future<Output = Result<COctetString, Error>> + Send {
        let pool = self.clone();
        off(move || smpp_blocking::Pool::submit(&pool, sm))
    }

    fn submit_message(
        &self,
        message: ShortMessage,
    ) -> impl Future<Output = Result<Vec<COctetString>, Error>> + Send {
        let pool = self.clone();
        off(move || smpp_blocking::Pool::submit_message(&pool, &message))
    }

    fn client(&self) -> impl Future<Output = Result<Self::Client, Error>> + Send {
        let pool = self.clone();
        off(move || smpp_blocking::Pool::client(&pool))
    }

    fn config(&self) -> PoolConfig {
        smpp_blocking::Pool::config(self).clone()
    }

    fn bound(&self) -> usize {
        smpp_blocking::Pool::bound(self)
    }

    fn paused(&self) -> usize {
        smpp_blocking::Pool::paused(self)
    }

    fn members(&self) -> Vec<smpp_blocking::MemberStatus> {
        smpp_blocking::Pool::members(self)
    }

    fn enquire_link(&self) -> impl Future<Output = Vec<Option<Result<Duration, Error>>>> + Send {
        let pool = self.clone();
        off(move || smpp_blocking::Pool::enquire_link(&pool))
    }

    fn close(&self) -> impl Future<Output = ()> + Send {
        let pool = self.clone();
        off(move || smpp_blocking::Pool::close(&pool))
    }
}

impl ListenerOps for Arc<smpp_blocking::OutbindListener> {
    type Client = smpp_blocking::Client;
    type Inbound = BlockingInbound;

    fn local_addr(&self) -> SocketAddr {
        smpp_blocking::OutbindListener::local_addr(self).unwrap()
    }

    fn accept(
        &self,
        check: fn(&Outbind) -> bool,
        kind: BindKind,
        bind: Bind,
        config: SessionConfig,
    ) -> impl Future<Output = Result<(Self::Client, Self::Inbound), Error>> + Send {
        let listener = self.clone();
        let accepted = off(move || {
            smpp_blocking::OutbindListener::accept(&listener, kind, bind, config, check)
        });
        async move {
            accepted
                .await
                .map(|(client, inbound)| (client, Arc::new(inbound)))
        }
    }
}
