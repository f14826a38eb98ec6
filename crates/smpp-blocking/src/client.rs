//! The ESME side: [`Client`] and the [`Inbound`] queue of peer requests,
//! blocking calls over [`smpp_async`]'s on [`Threads`].

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::{Bind, Body, BroadcastSm, COctetString, Outbind, Pdu, SubmitSm};
use smpp_proto::session::{BindKind, CloseReason, SessionConfig, Stats};

pub use smpp_async::InboundRequest;

use crate::rt::{block_on, Threads};
use crate::Error;

type Bound = (smpp_async::Client<Threads>, smpp_async::Inbound);

/// A bound ESME session. Cheap to clone: clones share the session, and
/// calls from many threads run concurrently up to the outbound window
/// (`SessionConfig::max_in_flight`); beyond it they wait their turn.
///
/// A call blocks the calling thread: it waits for window room as long as
/// it takes, then at most the session's `response_timeout` for its
/// response. Once the session is unbinding or closed, calls fail with
/// [`Error::Closed`].
///
/// Dropping the last clone unbinds the session.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) session: smpp_async::Client<Threads>,
    /// Shared by the clones of a session this client opened; unbinds when
    /// the last goes. `None` for a session a [`ReconnectingClient`](crate::ReconnectingClient) keeps.
    owner: Option<Arc<Owner>>,
}

#[derive(Debug)]
struct Owner {
    session: smpp_async::Client<Threads>,
    armed: AtomicBool,
}

impl Drop for Owner {
    fn drop(&mut self) {
        if self.armed.load(Ordering::Relaxed) {
            self.session.release();
        }
    }
}

pub(crate) fn wrap(bound: Result<Bound, Error>) -> Result<(Client, Inbound), Error> {
    bound.map(|(session, inbound)| {
        let armed = AtomicBool::new(true);
        let owner = Some(Arc::new(Owner {
            session: session.clone(),
            armed,
        }));
        (Client { session, owner }, Inbound(inbound))
    })
}

impl Client {
    /// A session someone else keeps (dropping this does not unbind it).
    pub(crate) fn kept(session: smpp_async::Client<Threads>) -> Client {
        Client {
            session,
            owner: None,
        }
    }

    /// The session, no longer unbound when this client's clones are gone.
    pub(crate) fn into_kept(self) -> smpp_async::Client<Threads> {
        if let Some(owner) = &self.owner {
            owner.armed.store(false, Ordering::Relaxed);
        }
        self.session.clone()
    }
}

impl Client {
    /// Connects over TCP and binds. Connecting and binding each take at
    /// most the session's `response_timeout` ([`Error::Timeout`]). Fails
    /// with [`Error::Status`] when the MC rejects the bind (e.g. `ESME_RINVPASWD`).
    pub fn connect(
        addr: impl ToSocketAddrs,
        kind: BindKind,
        bind: Bind,
        config: impl Into<Arc<SessionConfig>>,
    ) -> Result<(Client, Inbound), Error> {
        wrap(block_on(smpp_async::Client::connect(
            addr, kind, bind, config,
        )))
    }

    /// Binds over an established TCP connection.
    pub fn bind_over(
        stream: TcpStream,
        kind: BindKind,
        bind: Bind,
        config: impl Into<Arc<SessionConfig>>,
    ) -> Result<(Client, Inbound), Error> {
        stream.set_nodelay(true)?;
        wrap(block_on(smpp_async::Client::bind_over(
            stream, kind, bind, config,
        )))
    }

    /// ESME side of an outbind, on a connection the MC opened to us (accept
    /// it from your own `TcpListener`, or [`OutbindListener`]): waits for the
    /// MC's `outbind` (at most the session's `session_init_timeout`, or its
    /// `response_timeout`), lets `accept` check it (its `system_id` and
    /// `password`), then binds over the same connection as a receiver, or as
    /// a transceiver when `kind` asks for one (SMPP 5.0; a transmitter
    /// becomes a receiver). A refused outbind closes the connection (there
    /// is no `outbind_resp`) and fails with [`Error::OutbindRefused`].
    pub fn accept_outbind(
        stream: TcpStream,
        kind: BindKind,
        bind: Bind,
        config: impl Into<Arc<SessionConfig>>,
        accept: impl FnOnce(&Outbind) -> bool,
    ) -> Result<(Client, Inbound), Error> {
        stream.set_nodelay(true)?;
        let accepted = smpp_async::Client::accept_outbind(stream, kind, bind, config, accept);
        wrap(block_on(accepted))
    }

    /// The MC's `bind_*_resp` (its `system_id`, `sc_interface_version`...).
    pub fn bind_response(&self) -> &Pdu {
        self.session.bind_response()
    }

    /// The SMPP version agreed with the MC (0x50, 0x34, or 0x33 when the MC
    /// sent no `sc_interface_version`: then no TLVs may be sent to it).
    pub fn interface_version(&self) -> u8 {
        self.session.interface_version()
    }

    /// Submits one `submit_sm` and returns the MC's message id.
    pub fn submit(&self, sm: SubmitSm) -> Result<COctetString, Error> {
        block_on(self.session.submit(sm))
    }

    /// Builds `message` into its parts and submits them all (in order,
    /// pipelined), returning one message id per part. Fails with the first
    /// part that fails; the others may have been accepted.
    pub fn submit_message(&self, message: &ShortMessage) -> Result<Vec<COctetString>, Error> {
        block_on(self.session.submit_message(message))
    }

    /// Sends one v5.0 `broadcast_sm` (built with
    /// `smpp_proto::message::broadcast::BroadcastBuilder`, with its
    /// `billing_identification` when billed) and returns the MC's message id.
    pub fn broadcast(&self, sm: BroadcastSm) -> Result<COctetString, Error> {
        block_on(self.session.broadcast(sm))
    }

    /// Sends any operation request (`query_sm`, `cancel_sm`, `replace_sm`,
    /// `data_sm`, `submit_multi`, `broadcast_sm`...) and returns its response.
    /// A response with an error status is [`Error::Status`].
    pub fn request(&self, body: Body) -> Result<Pdu, Error> {
        block_on(self.session.request(body))
    }

    /// Sends an `enquire_link` and returns its round trip; at most the
    /// session's `response_timeout` ([`Error::Timeout`]). See
    /// [`smpp_async::Client::enquire_link`].
    pub fn enquire_link(&self) -> Result<Duration, Error> {
        block_on(self.session.enquire_link())
    }

    /// The round trip of the last answered [`Client::enquire_link`] on this session.
    pub fn last_round_trip(&self) -> Option<Duration> {
        self.session.last_round_trip()
    }

    /// Unbinds and waits for the MC's `unbind_resp` (or the unbind timeout:
    /// [`Error::Timeout`]) and the end of the session; responses to earlier
    /// requests are still accepted meanwhile. An MC may answer only once its
    /// own requests are answered: answer (or drop) the inbound requests
    /// meanwhile, from another thread if need be.
    pub fn unbind(&self) -> Result<(), Error> {
        block_on(self.session.unbind())
    }

    /// The session's counters (PDUs by command and status) and window use;
    /// [`Error::Closed`] once the connection has ended.
    pub fn stats(&self) -> Result<Stats, Error> {
        block_on(self.session.stats())
    }

    /// Closes the connection at once, without unbinding; calls in flight fail.
    pub fn close(&self) {
        self.session.close();
    }

    /// The session has closed.
    pub fn is_closed(&self) -> bool {
        self.session.is_closed()
    }

    /// Blocks until the session closes, and says why.
    pub fn closed(&self) -> CloseReason {
        block_on(self.session.closed())
    }
}

/// The MC's requests to this ESME (`deliver_sm` with messages and delivery
/// receipts, `data_sm`, `alert_notification`), in arrival order. Ends when
/// the session closes.
///
/// While nobody takes them, they wait here up to the inbound window
/// (`SessionConfig::max_inbound`); beyond it the session throttles the MC.
/// Once the `Inbound` is dropped, requests are answered with status 0 (as
/// dropped [`InboundRequest`]s are).
///
/// ```no_run
/// # fn run(client: smpp_blocking::Client, inbound: smpp_blocking::Inbound) {
/// for request in inbound {
///     match request.receipt() {
///         Some(receipt) => println!("{}: {:?}", receipt.id, receipt.state),
///         None => println!("message: {:?}", request.body()),
///     }
///     // Dropping `request` answers it: deliver_sm_resp, status 0.
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Inbound(pub(crate) smpp_async::Inbound);

impl Inbound {
    /// The next request, or `None` once the session has closed.
    pub fn recv(&self) -> Option<InboundRequest> {
        block_on(self.0.recv())
    }

    /// The next request within `timeout`: [`RecvTimeoutError::Timeout`] when
    /// nothing came in time, [`RecvTimeoutError::Disconnected`] once the
    /// session has closed.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<InboundRequest, RecvTimeoutError> {
        let next = futures_lite::future::or(self.0.recv().map(Some), async {
            <Threads as smpp_async::Runtime>::sleep(timeout).await;
            None
        });
        match block_on(next) {
            Some(next) => next.ok_or(RecvTimeoutError::Disconnected),
            None => Err(RecvTimeoutError::Timeout),
        }
    }

    /// A request already waiting, if any.
    pub fn try_recv(&self) -> Option<InboundRequest> {
        self.0.recv().now_or_never().flatten()
    }
}

impl Iterator for Inbound {
    type Item = InboundRequest;

    fn next(&mut self) -> Option<InboundRequest> {
        self.recv()
    }
}

/// ESME: a listener for MC-initiated sessions (outbind). Each accepted
/// connection goes through [`Client::accept_outbind`].
#[derive(Debug)]
pub struct OutbindListener(smpp_async::OutbindListener<Threads>);

impl OutbindListener {
    /// Listens on `addr`.
    pub fn bind(addr: impl ToSocketAddrs) -> std::io::Result<OutbindListener> {
        block_on(smpp_async::OutbindListener::bind(addr)).map(OutbindListener)
    }

    /// The address it listens on (to give to the MC).
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.local_addr()
    }

    /// Accepts the next MC connection (blocking) and runs
    /// [`Client::accept_outbind`] on it.
    pub fn accept(
        &self,
        kind: BindKind,
        bind: Bind,
        config: impl Into<Arc<SessionConfig>>,
        accept: impl FnOnce(&Outbind) -> bool,
    ) -> Result<(Client, Inbound), Error> {
        wrap(block_on(self.0.accept(kind, bind, config, accept)))
    }
}
