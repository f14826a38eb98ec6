//! The ESME side: [`Client`] and the [`Inbound`] stream of peer requests.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::inbound::{check_outbind, message_id, References, Respond};
use futures_core::Stream;
use futures_util::future::try_join_all;
use smpp_proto::endpoint::{outbind_bind_kind, Incoming, Response};
use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::{Bind, Body, BroadcastSm, COctetString, Outbind, Pdu, SubmitSm};
use smpp_proto::session::{negotiate, BindKind, CloseReason, Role, SessionConfig, Stats};

pub use crate::inbound::InboundRequest;

use crate::driver::{self, Control, Handle};
use crate::queue;
use crate::{timeout, Connect, Error, Io, Runtime};

/// A bound ESME session. Cheap to clone: clones share the session, and
/// calls from many tasks run concurrently up to the outbound window
/// (`SessionConfig::max_in_flight`); beyond it they wait their turn.
/// With an SMPP 5.0 MC that reports `congestion_state`, the window in
/// force is the session's effective one (`Session::window` in smpp-proto:
/// narrower while the MC reports more than 90), and [`Client::stats`]
/// shows it (`max_in_flight`) with the MC's last value (`peer_congestion`).
///
/// A call waits for window room as long as it takes, then at most the
/// session's `response_timeout` for its response; wrap it in your
/// runtime's timeout to bound the whole wait. Once the session is
/// unbinding or closed, calls fail with [`Error::Closed`].
///
/// Dropping every clone (and the [`Inbound`]) unbinds the session.
#[derive(Clone, Debug)]
pub struct Client<R> {
    handle: Handle,
    bind_resp: Arc<Pdu>,
    /// The SMPP version agreed with the MC.
    version: u8,
    refs: Arc<References>,
    /// The last round trip of [`Client::enquire_link`].
    round_trip: Arc<RoundTrip>,
    runtime: PhantomData<R>,
}

/// The last measured round trip, in nanoseconds (`u64::MAX`: none yet).
#[derive(Debug)]
struct RoundTrip(AtomicU64);

impl Default for RoundTrip {
    fn default() -> Self {
        RoundTrip(AtomicU64::new(u64::MAX))
    }
}

impl RoundTrip {
    fn set(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1);
        self.0.store(nanos.min(u64::MAX - 1), Ordering::Relaxed);
    }

    fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            u64::MAX => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }
}

impl<R: Runtime> Client<R> {
    /// Connects over TCP and binds. Connecting and binding each take at
    /// most the session's `response_timeout` ([`Error::Timeout`]). Fails with
    /// [`Error::Status`] when the MC rejects the bind (e.g. `ESME_RINVPASWD`).
    pub async fn connect<A>(
        addr: A,
        kind: BindKind,
        bind: Bind,
        config: impl Into<Arc<SessionConfig>>,
    ) -> Result<(Client<R>, Inbound), Error>
    where
        R: Connect<A> + Io<<R as Runtime>::Tcp>,
    {
        let config = config.into();
        let tcp = connect::<R, A>(addr, &config).await?;
        Client::bind_over(tcp, kind, bind, config).await
    }

    /// Binds over an established stream (a TLS stream, a test pipe...).
    pub async fn bind_over<S>(
        io: S,
        kind: BindKind,
        bind: Bind,
        config: impl Into<Arc<SessionConfig>>,
    ) -> Result<(Client<R>, Inbound), Error>
    where
        R: Io<S>,
    {
        let (handle, incoming) =
            driver::spawn::<R, _>(R::transport(io), Role::Esme, config.into(), None, None);
        Client::finish_bind(handle, incoming, kind, bind).await
    }

    /// ESME side of an outbind, on a connection the MC opened to us (accept
    /// it from your own listener, or [`OutbindListener`]): waits for the
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
    ) -> Result<(Client<R>, Inbound), Error>
    where
        R: Io<S>,
    {
        let config = config.into();
        let wait = config
            .session_init_timeout
            .unwrap_or(config.response_timeout);
        let (handle, mut incoming) =
            driver::spawn::<R, _>(R::transport(io), Role::Esme, config, None, None);
        let first = timeout::<R, _>(wait, incoming.recv()).await;
        let first = first
            .ok_or(Error::Timeout)
            .map(|item| item.map(|item| *item));
        if let Err(e) = check_outbind(first, accept) {
            handle.close();
            return Err(e);
        }
        Client::finish_bind(handle, incoming, outbind_bind_kind(kind), bind).await
    }

    pub(crate) async fn finish_bind(
        handle: Handle,
        incoming: queue::Receiver<Box<Incoming>>,
        kind: BindKind,
        bind: Bind,
    ) -> Result<(Client<R>, Inbound), Error> {
        let offered = bind.interface_version;
        let resp = handle
            .call(|reply| Control::Bind { kind, bind, reply })
            .await;
        let resp = match resp.and_then(Error::check_status) {
            Ok(resp) => resp,
            Err(e) => {
                handle.close();
                return Err(e);
            }
        };
        let answers = Arc::new(Responder(handle.control.clone()));
        let incoming = async_lock::Mutex::new(incoming);
        let inbound = Inbound {
            source: Source::Session { incoming, answers },
        };
        let mc = match &resp.body {
            Body::BindTransmitterResp(r)
            | Body::BindReceiverResp(r)
            | Body::BindTransceiverResp(r) => r.tlvs.sc_interface_version(),
            _ => None,
        };
        let client = Client {
            handle,
            version: negotiate(offered, mc),
            bind_resp: Arc::new(resp),
            refs: Arc::default(),
            round_trip: Arc::default(),
            runtime: PhantomData,
        };
        Ok((client, inbound))
    }
}

/// Opens a TCP connection within the session's `response_timeout`.
pub(crate) async fn connect<R: Connect<A>, A>(
    addr: A,
    config: &SessionConfig,
) -> Result<R::Tcp, Error> {
    let limit = config.response_timeout;
    let tcp = timeout::<R, _>(limit, R::connect(addr, limit));
    let tcp = tcp.await.ok_or(Error::Timeout)??;
    R::prepare(&tcp)?;
    Ok(tcp)
}

impl<R> Client<R> {
    /// The MC's `bind_*_resp` (its `system_id`, `sc_interface_version`...).
    pub fn bind_response(&self) -> &Pdu {
        &self.bind_resp
    }

    /// The SMPP version agreed with the MC: the lower of our bind's
    /// `interface_version` and the MC's `sc_interface_version` (0x50, 0x34,
    /// or 0x33 when the MC sent none: then no TLVs may be sent to it).
    pub fn interface_version(&self) -> u8 {
        self.version
    }

    /// Submits one `submit_sm` and returns the MC's message id.
    ///
    /// The request is checked and boxed when this is called, so the future
    /// is small; nothing is sent until it is polled.
    pub fn submit(
        &self,
        sm: SubmitSm,
    ) -> impl Future<Output = Result<COctetString, Error>> + Send + '_ {
        let response = self.request(Body::SubmitSm(Box::new(sm)));
        async move { message_id(&response.await?) }
    }

    /// Builds `message` into its parts and submits them all (in order,
    /// pipelined), returning one message id per part. Fails with the first
    /// part that fails; the others may have been accepted.
    pub async fn submit_message(&self, message: &ShortMessage) -> Result<Vec<COctetString>, Error> {
        let parts = self.refs.build(message)?;
        try_join_all(parts.into_iter().map(|sm| self.submit(sm))).await
    }

    /// Sends one v5.0 `broadcast_sm` (built with
    /// `smpp_proto::message::broadcast::BroadcastBuilder`, with its
    /// `billing_identification` when billed) and returns the MC's message id.
    /// Needs a 5.0 bind ([`interface_version`](Client::interface_version)).
    pub fn broadcast(
        &self,
        sm: BroadcastSm,
    ) -> impl Future<Output = Result<COctetString, Error>> + Send + '_ {
        let response = self.request(Body::BroadcastSm(Box::new(sm)));
        async move { message_id(&response.await?) }
    }

    /// Sends any operation request (`query_sm`, `cancel_sm`, `replace_sm`,
    /// `data_sm`, `submit_multi`, `broadcast_sm`...) and returns its response.
    /// A response with an error status is [`Error::Status`].
    pub fn request(&self, body: Body) -> impl Future<Output = Result<Pdu, Error>> + Send + '_ {
        self.handle.request(body)
    }

    /// Checks the link: sends an `enquire_link` and returns the time until
    /// its `enquire_link_resp` came back (the connection status inquiry an
    /// operator asks for). It waits at most the session's
    /// `response_timeout` ([`Error::Timeout`]: the MC is not answering); it
    /// needs a free place in the outbound window, and fails at once with
    /// [`Error::Refused`] when there is none (a busy window is itself the
    /// answer: the link carries traffic). The session's own keepalive
    /// (`enquire_link_interval`) runs apart from this.
    ///
    /// The last round trip measured is kept: [`Client::last_round_trip`].
    pub async fn enquire_link(&self) -> Result<Duration, Error> {
        let start = Instant::now();
        let resp = self
            .handle
            .call(|reply| Control::EnquireLink { reply })
            .await;
        resp.and_then(Error::check_status)?;
        let rtt = start.elapsed();
        self.round_trip.set(rtt);
        Ok(rtt)
    }

    /// The round trip of the last [`Client::enquire_link`] that was
    /// answered on this session (any clone), if any.
    pub fn last_round_trip(&self) -> Option<Duration> {
        self.round_trip.get()
    }

    /// Unbinds and waits for the MC's `unbind_resp`; responses to earlier
    /// requests are still accepted meanwhile. An MC may answer only once
    /// its own requests are answered: keep taking from [`Inbound`] (or drop
    /// it) while this waits, else the requests it holds stay unanswered and
    /// the unbind ends in [`Error::Timeout`] after the session's
    /// `unbind_timeout`.
    pub async fn unbind(&self) -> Result<(), Error> {
        let resp = self.handle.call(|reply| Control::Unbind { reply }).await;
        self.handle.closed().await;
        resp.map(drop)
    }

    /// The session's counters (PDUs by command and status) and window use;
    /// [`Error::Closed`] once the connection has ended.
    pub async fn stats(&self) -> Result<Stats, Error> {
        self.handle.call(Control::Stats).await
    }

    /// Closes the connection at once, without unbinding; calls in flight fail.
    pub fn close(&self) {
        self.handle.close();
    }

    /// Unbinds without waiting for the answer (closes when not bound yet);
    /// what dropping every clone and the [`Inbound`] does.
    pub fn release(&self) {
        self.handle.release();
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
/// # async fn run(inbound: smpp_async::Inbound) {
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
        /// Locked by the task that waits (several may: each request goes
        /// to one of them).
        incoming: async_lock::Mutex<queue::Receiver<Box<Incoming>>>,
        answers: Arc<dyn Respond>,
    },
    /// Merged from successive or several sessions ([`ReconnectingClient`](crate::ReconnectingClient), [`Pool`](crate::Pool)).
    Forwarded(Pin<Box<async_channel::Receiver<InboundRequest>>>),
}

impl Inbound {
    /// The next request, or `None` once the session has closed. Several
    /// tasks may wait at once; each request goes to one of them.
    pub async fn recv(&self) -> Option<InboundRequest> {
        match &self.source {
            Source::Session { incoming, answers } => loop {
                let item = *incoming.lock().await.recv().await?;
                if let Some(request) = InboundRequest::from_incoming(item, answers) {
                    return Some(request);
                }
            },
            Source::Forwarded(rx) => rx.recv().await.ok(),
        }
    }

    pub(crate) fn forwarded(rx: async_channel::Receiver<InboundRequest>) -> Inbound {
        Inbound {
            source: Source::Forwarded(Box::pin(rx)),
        }
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<InboundRequest>> {
        let (incoming, answers) = match &mut self.source {
            Source::Session { incoming, answers } => (incoming, answers),
            Source::Forwarded(rx) => return rx.as_mut().poll_next(cx),
        };
        loop {
            let Some(item) = std::task::ready!(incoming.get_mut().poll_recv(cx)) else {
                return Poll::Ready(None);
            };
            if let Some(request) = InboundRequest::from_incoming(*item, answers) {
                return Poll::Ready(Some(request));
            }
        }
    }
}

impl Stream for Inbound {
    type Item = InboundRequest;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<InboundRequest>> {
        self.get_mut().poll_recv(cx)
    }
}

/// Answers peer requests over a connection's command channel.
#[derive(Debug)]
struct Responder(queue::Sender<Box<Control>>);

impl Respond for Responder {
    fn respond(&self, (seq, status, body): Response) {
        let respond = Control::Respond { seq, status, body };
        let _ = self.0.try_send(Box::new(respond));
    }
}

/// ESME: a listener for MC-initiated sessions (outbind). Each accepted
/// connection goes through [`Client::accept_outbind`].
#[derive(Debug)]
pub struct OutbindListener<R: Runtime> {
    listener: R::Listener,
}

impl<R: Runtime> OutbindListener<R>
where
    R: Io<<R as Runtime>::Tcp>,
{
    /// Listens on `addr`.
    pub async fn bind<A>(addr: A) -> std::io::Result<OutbindListener<R>>
    where
        R: Connect<A>,
    {
        let listener = R::listen(addr).await?;
        Ok(OutbindListener { listener })
    }

    /// The address it listens on (to give to the MC).
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        R::local_addr(&self.listener)
    }

    /// Accepts the next MC connection and runs [`Client::accept_outbind`] on it.
    pub async fn accept(
        &self,
        kind: BindKind,
        bind: Bind,
        config: impl Into<Arc<SessionConfig>>,
        accept: impl FnOnce(&Outbind) -> bool,
    ) -> Result<(Client<R>, Inbound), Error> {
        let (tcp, _) = R::accept(&self.listener).await?;
        R::prepare(&tcp)?;
        Client::accept_outbind(tcp, kind, bind, config, accept).await
    }
}
