//! The ESME side: [`Client`] and the [`Inbound`] stream of peer requests.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::future::try_join_all;
use smpp_proto::message::{DecodeOptions, DeliveryReceipt, ReferenceCounter, ShortMessage};
use smpp_proto::pdu::{Bind, Body, COctetString, CommandStatus, Outbind, Pdu, SubmitSm};
use smpp_proto::session::{BindKind, CloseReason, Role, SessionConfig, Stats};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::mpsc;

use crate::driver::{self, Control, Handle};
use crate::{check_status, Error};
use smpp_proto::endpoint::{default_answer, outbind_bind_kind, Incoming};

/// A bound ESME session. Cheap to clone: clones share the session, and
/// calls from many tasks run concurrently up to the outbound window
/// (`SessionConfig::max_in_flight`); beyond it they wait their turn.
///
/// A call waits for window room as long as it takes, then at most the
/// session's `response_timeout` for its response; wrap it in
/// `tokio::time::timeout` to bound the whole wait. Once the session is
/// unbinding or closed, calls fail with [`Error::Closed`].
///
/// Dropping every clone (and the [`Inbound`]) unbinds the session.
#[derive(Clone, Debug)]
pub struct Client {
    handle: Handle,
    bind_resp: Arc<Pdu>,
    refs: Arc<Mutex<ReferenceCounter>>,
}

impl Client {
    /// Connects over TCP and binds. Connecting and binding each take at
    /// most the session's `response_timeout` ([`Error::Timeout`]). Fails with
    /// [`Error::Status`] when the MC rejects the bind (e.g. `ESME_RINVPASWD`).
    pub async fn connect(
        addr: impl ToSocketAddrs,
        kind: BindKind,
        bind: Bind,
        config: impl Into<Arc<SessionConfig>>,
    ) -> Result<(Client, Inbound), Error> {
        let config = config.into();
        let connecting = TcpStream::connect(addr);
        let stream = tokio::time::timeout(config.response_timeout, connecting)
            .await
            .map_err(|_| Error::Timeout)??;
        stream.set_nodelay(true)?;
        Client::bind_over(stream, kind, bind, config).await
    }

    /// Binds over an established stream (a TLS stream, a test pipe...).
    pub async fn bind_over<S>(
        io: S,
        kind: BindKind,
        bind: Bind,
        config: impl Into<Arc<SessionConfig>>,
    ) -> Result<(Client, Inbound), Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (handle, incoming) = driver::spawn(io, Role::Esme, config.into(), None);
        Client::finish_bind(handle, incoming, kind, bind).await
    }

    /// ESME side of an outbind, on a connection the MC opened to us (accept
    /// it from your own `TcpListener`, or [`OutbindListener`]): waits for the
    /// MC's `outbind` (at most the session's `session_init_timeout`, or its
    /// `response_timeout`), lets `accept` check it (its `system_id` and
    /// `password`), then binds over the same connection as a receiver, or as
    /// a transceiver when `kind` asks for one (SMPP 5.0; a transmitter
    /// becomes a receiver). A refused outbind closes the connection (there
    /// is no `outbind_resp`) and fails with [`Error::OutbindRefused`].
    pub async fn accept_outbind<S>(
        io: S,
        kind: BindKind,
        bind: Bind,
        config: impl Into<Arc<SessionConfig>>,
        accept: impl FnOnce(&Outbind) -> bool,
    ) -> Result<(Client, Inbound), Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let config = config.into();
        let wait = config
            .session_init_timeout
            .unwrap_or(config.response_timeout);
        let (handle, mut incoming) = driver::spawn(io, Role::Esme, config, None);
        let refused = match tokio::time::timeout(wait, incoming.recv()).await {
            Ok(Some(item)) => match *item {
                Incoming::Outbind(outbind) if accept(&outbind) => None,
                Incoming::Outbind(_) => Some(Error::OutbindRefused),
                _ => Some(Error::Closed),
            },
            Ok(None) => Some(Error::Closed),
            Err(_) => Some(Error::Timeout),
        };
        if let Some(e) = refused {
            handle.close();
            return Err(e);
        }
        Client::finish_bind(handle, incoming, outbind_bind_kind(kind), bind).await
    }

    async fn finish_bind(
        handle: Handle,
        incoming: mpsc::Receiver<Box<Incoming>>,
        kind: BindKind,
        bind: Bind,
    ) -> Result<(Client, Inbound), Error> {
        let resp = handle
            .control(|reply| Control::Bind { kind, bind, reply })
            .await;
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
                control: handle.control.clone(),
            },
        };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u16);
        let client = Client {
            handle,
            bind_resp: Arc::new(resp),
            refs: Arc::new(Mutex::new(ReferenceCounter::new(seed))),
        };
        Ok((client, inbound))
    }

    /// The MC's `bind_*_resp` (its `system_id`, `sc_interface_version`...).
    pub fn bind_response(&self) -> &Pdu {
        &self.bind_resp
    }

    /// Submits one `submit_sm` and returns the MC's message id.
    pub async fn submit(&self, sm: SubmitSm) -> Result<COctetString, Error> {
        let pdu = self.request(Body::SubmitSm(sm)).await?;
        match pdu.body.message_id() {
            Some(id) => Ok(id.clone()),
            None => Err(Error::UnexpectedResponse(pdu.command_id())),
        }
    }

    /// Builds `message` into its parts and submits them all (in order,
    /// pipelined), returning one message id per part. Fails with the first
    /// part that fails; the others may have been accepted.
    pub async fn submit_message(&self, message: &ShortMessage) -> Result<Vec<COctetString>, Error> {
        let parts = {
            let mut refs = self.refs.lock().unwrap_or_else(|e| e.into_inner());
            message.build(&mut refs)?
        };
        try_join_all(parts.into_iter().map(|sm| self.submit(sm))).await
    }

    /// Sends any operation request (`query_sm`, `cancel_sm`, `replace_sm`,
    /// `data_sm`, `submit_multi`, `broadcast_sm`...) and returns its response.
    /// A response with an error status is [`Error::Status`].
    pub async fn request(&self, body: Body) -> Result<Pdu, Error> {
        self.handle.request_any(body).await.and_then(check_status)
    }

    /// Unbinds and waits for the MC's `unbind_resp` (or the unbind timeout);
    /// responses to earlier requests are still accepted meanwhile.
    pub async fn unbind(&self) -> Result<(), Error> {
        let resp = self.handle.control(|reply| Control::Unbind { reply }).await;
        self.handle.closed().await;
        resp.map(drop)
    }

    /// The session's counters (PDUs by command and status) and window use;
    /// [`Error::Closed`] once the connection has ended.
    pub async fn stats(&self) -> Result<Stats, Error> {
        self.handle.stats().await
    }

    /// Closes the connection at once, without unbinding; calls in flight fail.
    pub fn close(&self) {
        self.handle.close();
    }

    /// The session has closed.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Waits until the session closes, and says why.
    pub async fn closed(&self) -> CloseReason {
        self.handle.closed().await
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
/// # async fn run(client: smpp_tokio::Client, mut inbound: smpp_tokio::Inbound) {
/// while let Some(request) = inbound.recv().await {
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
    /// Straight from one session's driver.
    Session {
        incoming: mpsc::Receiver<Box<Incoming>>,
        control: mpsc::UnboundedSender<Box<Control>>,
    },
    /// Merged from successive or several sessions ([`ReconnectingClient`](crate::ReconnectingClient), [`Pool`](crate::Pool)).
    Forwarded(mpsc::Receiver<InboundRequest>),
}

impl Inbound {
    /// The next request, or `None` once the session has closed.
    pub async fn recv(&mut self) -> Option<InboundRequest> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    pub(crate) fn forwarded(rx: mpsc::Receiver<InboundRequest>) -> Inbound {
        Inbound {
            source: Source::Forwarded(rx),
        }
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<InboundRequest>> {
        let (incoming, control) = match &mut self.source {
            Source::Session { incoming, control } => (incoming, control),
            Source::Forwarded(rx) => return rx.poll_recv(cx),
        };
        loop {
            let Some(item) = std::task::ready!(incoming.poll_recv(cx)) else {
                return Poll::Ready(None);
            };
            let (pdu, answer) = match *item {
                Incoming::Request(pdu) => (pdu, true),
                Incoming::Alert(pdu) => (pdu, false),
                _ => continue, // binds and outbinds: not for an `Inbound`
            };
            let control = answer.then(|| control.clone());
            return Poll::Ready(Some(InboundRequest { pdu, control }));
        }
    }
}

impl futures_core::Stream for Inbound {
    type Item = InboundRequest;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<InboundRequest>> {
        self.get_mut().poll_recv(cx)
    }
}

/// One request from the peer, answered exactly once: with
/// [`respond`](InboundRequest::respond), or with status 0 and an empty body
/// when dropped. (`alert_notification` has no answer.)
#[derive(Debug)]
pub struct InboundRequest {
    pdu: Pdu,
    /// `None` once answered, or for requests without a response.
    control: Option<mpsc::UnboundedSender<Box<Control>>>,
}

impl InboundRequest {
    /// The request.
    pub fn pdu(&self) -> &Pdu {
        &self.pdu
    }

    /// The request's body.
    pub fn body(&self) -> &Body {
        &self.pdu.body
    }

    /// The delivery receipt this `deliver_sm` or `data_sm` carries, if any
    /// (text and TLVs; GSM 7-bit unpacked as the default alphabet).
    pub fn receipt(&self) -> Option<DeliveryReceipt> {
        self.receipt_with(&DecodeOptions::default())
    }

    /// [`receipt`](InboundRequest::receipt) with explicit text decoding options.
    pub fn receipt_with(&self, options: &DecodeOptions) -> Option<DeliveryReceipt> {
        DeliveryReceipt::from_body(&self.pdu.body, options)
    }

    /// Answers with `status` and `body` (the matching `*_resp`, or
    /// `generic_nack`). An error status with a default body goes header-only.
    pub fn respond(mut self, status: CommandStatus, body: Body) {
        self.send(status, Some(body));
    }

    /// Answers with an error status and an empty body.
    pub fn reject(mut self, status: CommandStatus) {
        self.send(status, None);
    }

    fn send(&mut self, status: CommandStatus, body: Option<Body>) {
        if let Some(control) = self.control.take() {
            let (seq, _, default) = default_answer(&self.pdu);
            let body = body.unwrap_or(default);
            let _ = control.send(Box::new(Control::Respond { seq, status, body }));
        }
    }
}

impl Drop for InboundRequest {
    fn drop(&mut self) {
        self.send(CommandStatus::OK, None);
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
    pub async fn bind(addr: impl ToSocketAddrs) -> std::io::Result<OutbindListener> {
        let listener = TcpListener::bind(addr).await?;
        Ok(OutbindListener { listener })
    }

    /// The address it listens on (to give to the MC).
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts the next MC connection and runs [`Client::accept_outbind`] on it.
    pub async fn accept(
        &self,
        kind: BindKind,
        bind: Bind,
        config: impl Into<Arc<SessionConfig>>,
        accept: impl FnOnce(&Outbind) -> bool,
    ) -> Result<(Client, Inbound), Error> {
        let (stream, _) = self.listener.accept().await?;
        stream.set_nodelay(true)?;
        Client::accept_outbind(stream, kind, bind, config, accept).await
    }
}
