//! The ESME side: [`Client`] and the [`Inbound`] queue of peer requests.

use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::{Bind, Body, COctetString, Outbind, Pdu, SubmitSm};
use smpp_proto::session::{BindKind, CloseReason, Role, SessionConfig, Stats};

use std::sync::mpsc::RecvTimeoutError;

use crate::driver::{self, Handle, Msg};
use crate::wire::Wire;
use crate::{check_status, Error};
use smpp_proto::endpoint::client::{check_outbind, message_id, References, Respond};
use smpp_proto::endpoint::Command;
use smpp_proto::endpoint::{outbind_bind_kind, Incoming, Response};

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
    inner: Arc<ClientInner>,
}

#[derive(Debug)]
struct ClientInner {
    handle: Handle,
    bind_resp: Pdu,
    refs: References,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        self.handle.release();
    }
}

impl Client {
    /// Connects over TCP and binds. Connecting (to each resolved address in
    /// turn) and binding each take at most the session's `response_timeout`
    /// ([`Error::Timeout`] for the bind). Fails with [`Error::Status`] when
    /// the MC rejects the bind (e.g. `ESME_RINVPASWD`).
    pub fn connect(
        addr: impl ToSocketAddrs,
        kind: BindKind,
        bind: Bind,
        config: impl Into<Arc<SessionConfig>>,
    ) -> Result<(Client, Inbound), Error> {
        let config = config.into();
        let stream = connect_any(addr, config.response_timeout)?;
        Client::bind_over(stream, kind, bind, config)
    }

    /// Binds over an established TCP connection.
    pub fn bind_over(
        stream: TcpStream,
        kind: BindKind,
        bind: Bind,
        config: impl Into<Arc<SessionConfig>>,
    ) -> Result<(Client, Inbound), Error> {
        stream.set_nodelay(true)?;
        let reader = stream.try_clone()?;
        Client::bind_on(Wire::plain(stream), reader, kind, bind, config.into())
    }

    /// Starts the connection on `wire` (writing) and `reader`, and binds.
    pub(crate) fn bind_on(
        wire: Wire,
        reader: TcpStream,
        kind: BindKind,
        bind: Bind,
        config: Arc<SessionConfig>,
    ) -> Result<(Client, Inbound), Error> {
        let (handle, incoming, _io) = driver::spawn(wire, reader, Role::Esme, config)?;
        Client::finish_bind(handle, incoming, kind, bind)
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
        let reader = stream.try_clone()?;
        let config = config.into();
        let wait = config
            .session_init_timeout
            .unwrap_or(config.response_timeout);
        let (handle, incoming, _io) =
            driver::spawn(Wire::plain(stream), reader, Role::Esme, config)?;
        let first = match incoming.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => Err(Error::Timeout),
            received => Ok(received.ok()),
        };
        if let Err(e) = check_outbind(first, accept) {
            handle.close();
            return Err(e);
        }
        Client::finish_bind(handle, incoming, outbind_bind_kind(kind), bind)
    }

    fn finish_bind(
        handle: Handle,
        incoming: Receiver<Incoming>,
        kind: BindKind,
        bind: Bind,
    ) -> Result<(Client, Inbound), Error> {
        let resp = handle.call(|reply| Command::Bind { kind, bind, reply });
        let resp = match resp.and_then(check_status) {
            Ok(resp) => resp,
            Err(e) => {
                handle.close();
                return Err(e);
            }
        };
        let inbound = Inbound {
            source: Source::Session {
                incoming,
                answers: Arc::new(handle.clone()),
            },
        };
        let client = Client {
            inner: Arc::new(ClientInner {
                handle,
                bind_resp: resp,
                refs: References::default(),
            }),
        };
        Ok((client, inbound))
    }

    /// The MC's `bind_*_resp` (its `system_id`, `sc_interface_version`...).
    pub fn bind_response(&self) -> &Pdu {
        &self.inner.bind_resp
    }

    /// Submits one `submit_sm` and returns the MC's message id.
    pub fn submit(&self, sm: SubmitSm) -> Result<COctetString, Error> {
        message_id(&self.request(Body::SubmitSm(sm))?)
    }

    /// Builds `message` into its parts and submits them all (in order,
    /// pipelined), returning one message id per part. Fails with the first
    /// part that fails; the others may have been accepted.
    pub fn submit_message(&self, message: &ShortMessage) -> Result<Vec<COctetString>, Error> {
        let parts = self.inner.refs.build(message)?;
        // Queue every part first (pipelined), then collect the answers in order.
        let waiting: Vec<_> = parts
            .into_iter()
            .map(|sm| {
                let (reply, rx) = std::sync::mpsc::sync_channel(1);
                let body = Body::SubmitSm(sm);
                self.inner
                    .handle
                    .send(Msg::Request { body, reply })
                    .map(|()| rx)
            })
            .collect();
        let mut ids = Vec::with_capacity(waiting.len());
        for rx in waiting {
            let pdu = rx?.recv().map_err(|_| Error::Closed)??;
            ids.push(message_id(&check_status(pdu)?)?);
        }
        Ok(ids)
    }

    /// Sends any operation request (`query_sm`, `cancel_sm`, `replace_sm`,
    /// `data_sm`, `submit_multi`, `broadcast_sm`...) and returns its response.
    /// A response with an error status is [`Error::Status`].
    pub fn request(&self, body: Body) -> Result<Pdu, Error> {
        self.inner.handle.request_any(body).and_then(check_status)
    }

    /// Unbinds and waits for the MC's `unbind_resp` (or the unbind timeout)
    /// and the end of the session; responses to earlier requests are still
    /// accepted meanwhile.
    pub fn unbind(&self) -> Result<(), Error> {
        let handle = &self.inner.handle;
        let resp = handle.call(|reply| Command::Unbind { reply });
        handle.closed();
        resp.map(drop)
    }

    /// The session's counters (PDUs by command and status) and window use;
    /// [`Error::Closed`] once the connection has ended.
    pub fn stats(&self) -> Result<Stats, Error> {
        self.inner.handle.call(Command::Stats)
    }

    /// Closes the connection at once, without unbinding; calls in flight fail.
    pub fn close(&self) {
        self.inner.handle.close();
    }

    /// The session has closed.
    pub fn is_closed(&self) -> bool {
        self.inner.handle.is_closed()
    }

    /// Blocks until the session closes, and says why.
    pub fn closed(&self) -> CloseReason {
        self.inner.handle.closed()
    }
}

/// Connects to the first address that answers, each within `timeout`.
pub(crate) fn connect_any(
    addr: impl ToSocketAddrs,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    let mut last = None;
    for addr in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    let none = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address");
    Err(last.unwrap_or_else(none))
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
pub struct Inbound {
    source: Source,
}

#[derive(Debug)]
enum Source {
    /// Straight from one session's I/O thread.
    Session {
        incoming: Receiver<Incoming>,
        answers: Arc<dyn Respond>,
    },
    /// Merged from successive or several sessions ([`ReconnectingClient`](crate::ReconnectingClient), [`Pool`](crate::Pool)).
    Forwarded(Receiver<InboundRequest>),
}

impl Inbound {
    pub(crate) fn forwarded(rx: Receiver<InboundRequest>) -> Inbound {
        Inbound {
            source: Source::Forwarded(rx),
        }
    }

    /// The next request, or `None` once the session has closed.
    pub fn recv(&self) -> Option<InboundRequest> {
        let (incoming, answers) = match &self.source {
            Source::Session { incoming, answers } => (incoming, answers),
            Source::Forwarded(rx) => return rx.recv().ok(),
        };
        loop {
            if let Some(request) = InboundRequest::from_incoming(incoming.recv().ok()?, answers) {
                return Some(request);
            }
        }
    }

    /// The next request within `timeout`: [`RecvTimeoutError::Timeout`] when
    /// nothing came in time, [`RecvTimeoutError::Disconnected`] once the
    /// session has closed.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<InboundRequest, RecvTimeoutError> {
        let (incoming, answers) = match &self.source {
            Source::Session { incoming, answers } => (incoming, answers),
            Source::Forwarded(rx) => return rx.recv_timeout(timeout),
        };
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if let Some(request) =
                InboundRequest::from_incoming(incoming.recv_timeout(left)?, answers)
            {
                return Ok(request);
            }
        }
    }

    /// A request already waiting, if any.
    pub fn try_recv(&self) -> Option<InboundRequest> {
        let (incoming, answers) = match &self.source {
            Source::Session { incoming, answers } => (incoming, answers),
            Source::Forwarded(rx) => return rx.try_recv().ok(),
        };
        while let Ok(item) = incoming.try_recv() {
            if let Some(request) = InboundRequest::from_incoming(item, answers) {
                return Some(request);
            }
        }
        None
    }
}

impl Iterator for Inbound {
    type Item = InboundRequest;

    fn next(&mut self) -> Option<InboundRequest> {
        self.recv()
    }
}

pub use smpp_proto::endpoint::client::InboundRequest;

impl Respond for Handle {
    fn respond(&self, (seq, status, body): Response) {
        let _ = self.send(Command::Respond { seq, status, body });
    }
}

/// ESME: a listener for MC-initiated sessions (outbind). Each accepted
/// connection goes through [`Client::accept_outbind`].
#[derive(Debug)]
pub struct OutbindListener {
    listener: TcpListener,
}

impl OutbindListener {
    /// Listens on `addr`.
    pub fn bind(addr: impl ToSocketAddrs) -> std::io::Result<OutbindListener> {
        let listener = TcpListener::bind(addr)?;
        Ok(OutbindListener { listener })
    }

    /// The address it listens on (to give to the MC).
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
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
        let (stream, _) = self.listener.accept()?;
        Client::accept_outbind(stream, kind, bind, config, accept)
    }
}
