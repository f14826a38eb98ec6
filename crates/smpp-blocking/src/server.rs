//! The MC side: [`Server`], its [`Handler`], and per-connection [`Connection`]
//! handles, blocking calls over [`smpp_async`]'s on [`Threads`].

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use smpp_async::{Answer, ConnectionInfo};
use smpp_proto::pdu::{AlertNotification, Bind, Body, CommandStatus, DeliverSm, Outbind, Pdu};
use smpp_proto::session::{BindKind, CloseReason, Stats};

use crate::rt::{block_on, Threads};
use crate::Error;

/// The application side of an MC:
/// [`BlockingHandler`](smpp_async::BlockingHandler) over
/// this crate's [`Connection`]s (`impl Handler<Connection> for MySmsc`).
///
/// Each connection has its own handler thread: the requests of one
/// connection are handled one after another, in arrival order (those of
/// different connections in parallel). A method may block, and may call
/// [`Connection::deliver`] from another thread (a delivery receipt after a
/// `submit_sm`) — not from the handler thread itself while the ESME waits
/// for the answer being computed. A panicking method answers
/// `ESME_RSYSERR`.
pub use smpp_async::BlockingHandler as Handler;
pub use smpp_async::ServerConfig;

/// One ESME connection, as seen by the server. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Connection(smpp_async::Connection);

/// Its number, address, and how it bound.
impl std::ops::Deref for Connection {
    type Target = ConnectionInfo;

    fn deref(&self) -> &ConnectionInfo {
        &self.0
    }
}

impl Connection {
    /// Sends a request to the ESME (`deliver_sm`, `data_sm`...) and waits for
    /// its response; waits while the window is full. An error status is [`Error::Status`].
    pub fn request(&self, body: Body) -> Result<Pdu, Error> {
        block_on(self.0.request(body))
    }

    /// Sends a `deliver_sm` (a mobile-originated message or a delivery receipt).
    pub fn deliver(&self, sm: DeliverSm) -> Result<Pdu, Error> {
        block_on(self.0.deliver(sm))
    }

    /// Sends an `alert_notification` (it has no response).
    pub fn alert(&self, alert: AlertNotification) -> Result<(), Error> {
        block_on(self.0.alert(alert))
    }

    /// Unbinds and waits for the ESME's answer (or the unbind timeout).
    pub fn unbind(&self) -> Result<(), Error> {
        block_on(self.0.unbind())
    }

    /// The session's counters and window use ([`Error::Closed`] once ended).
    pub fn stats(&self) -> Result<Stats, Error> {
        block_on(self.0.stats())
    }

    /// Closes at once, without unbinding.
    pub fn close(&self) {
        self.0.close();
    }

    /// Blocks until the session closes, and says why.
    pub fn closed(&self) -> CloseReason {
        block_on(self.0.closed())
    }
}

/// A blocking handler as the async server's: each method runs when its
/// answer is first polled, on the connection's own thread.
pub(crate) struct Blocking<H>(H);

impl<H: Handler<Connection>> smpp_async::Handler<smpp_async::Connection> for Blocking<H> {
    async fn bind(
        &self,
        conn: &smpp_async::Connection,
        kind: BindKind,
        bind: &Bind,
    ) -> Result<(), CommandStatus> {
        self.0.bind(&Connection(conn.clone()), kind, bind)
    }

    fn request(&self, conn: &smpp_async::Connection, pdu: Pdu) -> impl Answer<Body> {
        async move { self.0.request(&Connection(conn.clone()), pdu) }
    }
}

/// Finds connections and shuts the server down; cheap to clone.
#[derive(Clone, Debug)]
pub struct ServerHandle(smpp_async::ServerHandle<Threads>);

impl ServerHandle {
    /// Every open connection.
    pub fn connections(&self) -> Vec<Connection> {
        self.0.connections().into_iter().map(Connection).collect()
    }

    /// A connection bound as receiver or transceiver with this `system_id`
    /// (the one to send `deliver_sm` to).
    pub fn receiver(&self, system_id: &str) -> Option<Connection> {
        self.0.receiver(system_id).map(Connection)
    }

    /// MC-initiated session: connects to an ESME's outbind listener at
    /// `addr` and sends `outbind`; the ESME then binds (as receiver, or
    /// transceiver) and the server's [`Handler`] authenticates it as any
    /// other bind. Returns the connection once `outbind` is sent; it is
    /// bound when [`bind_kind`](ConnectionInfo::bind_kind) says so. Connecting takes at most
    /// the session's `response_timeout`, and its `session_init_timeout`
    /// closes it when no bind follows.
    pub fn outbind(&self, addr: impl ToSocketAddrs, outbind: Outbind) -> Result<Connection, Error> {
        block_on(self.0.outbind(addr, outbind)).map(Connection)
    }

    /// Stops accepting, unbinds every connection (closing those not bound),
    /// and lets [`Server::run`] return once they are all gone.
    pub fn shutdown(&self) {
        self.0.shutdown();
    }
}

/// An SMPP server (MC): an accept loop with one session per connection.
#[derive(Debug)]
pub struct Server<H>(pub(crate) smpp_async::Server<Threads, Blocking<H>>);

impl<H> std::fmt::Debug for Blocking<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Blocking")
    }
}

impl<H: Handler<Connection>> Server<H> {
    /// Listens on `addr`.
    pub fn bind(
        addr: impl ToSocketAddrs,
        handler: H,
        config: ServerConfig,
    ) -> io::Result<Server<H>> {
        let server = smpp_async::Server::bind(addr, Blocking(handler), config);
        block_on(server).map(Server)
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    /// A handle to find connections and shut down.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle(self.0.handle())
    }

    /// Accepts TCP connections on the calling thread until
    /// [`ServerHandle::shutdown`], then unbinds everyone and returns when
    /// every connection has ended.
    pub fn run(self) -> io::Result<()> {
        block_on(self.0.run())
    }
}
