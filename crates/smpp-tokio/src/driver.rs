//! The connection task: one tokio task owns the byte stream and the
//! [`Session`], and only moves bytes, arms one timer and routes events.

use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use smpp_proto::pdu::{Bind, Body, CommandStatus, Pdu, SequenceNumber};
use smpp_proto::session::{
    BindKind, CloseReason, Event, Role, SendError, Session, SessionConfig, State, Stats,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Sleep;

use crate::Error;

/// How a request of ours ends.
pub(crate) type Reply = oneshot::Sender<Result<Pdu, Error>>;

/// Read chunk; several PDUs per read under load.
const READ_BUF: usize = 64 * 1024;
/// Encoded output held by the driver before it stops draining the session
/// (the session then refuses input and commands: backpressure, not growth).
const WRITE_LIMIT: usize = 256 * 1024;
/// Yields before a write while each grows the batch (callers on other
/// threads are still adding requests), up to this many or this many octets.
const MAX_YIELDS: u8 = 64;
const BATCH_TARGET: usize = 64 * 1024;
/// How long a closed session may take to flush its last PDUs.
const LINGER: Duration = Duration::from_secs(2);

/// A request of the application, waiting for window room.
pub(crate) struct Request {
    pub(crate) body: Body,
    pub(crate) reply: Reply,
}

/// Everything else a handle asks of the driver; never refused for window.
pub(crate) enum Control {
    Bind {
        kind: BindKind,
        bind: Bind,
        reply: Reply,
    },
    Respond {
        seq: SequenceNumber,
        status: CommandStatus,
        body: Body,
    },
    Unbind {
        reply: Reply,
    },
    /// A request without a response (`alert_notification`): resolved once sent.
    Send {
        body: Body,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Unbind when bound, close otherwise (shutdown).
    Release,
    Stats(oneshot::Sender<Stats>),
    Close,
}

/// A peer request for the application.
#[derive(Debug)]
pub(crate) enum Incoming {
    Bind {
        seq: SequenceNumber,
        kind: BindKind,
        bind: Bind,
    },
    Request(Pdu),
    Alert(Pdu),
}

/// The sending side of a driver; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Handle {
    requests: mpsc::Sender<Request>,
    pub(crate) control: mpsc::UnboundedSender<Control>,
    closed: watch::Receiver<Option<CloseReason>>,
}

impl Handle {
    /// Sends a request once the window has room, and awaits its response (any status).
    pub(crate) async fn request_any(&self, body: Body) -> Result<Pdu, Error> {
        if body.command_id().response_id().is_none() {
            return Err(Error::Refused(SendError::WrongCommand(())));
        }
        let (reply, rx) = oneshot::channel();
        let req = Request { body, reply };
        self.requests.send(req).await.map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Sends a control command and awaits its response (any status).
    pub(crate) async fn control(&self, make: impl FnOnce(Reply) -> Control) -> Result<Pdu, Error> {
        let (reply, rx) = oneshot::channel();
        self.control.send(make(reply)).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// The session's counters and window use.
    pub(crate) async fn stats(&self) -> Result<Stats, Error> {
        let (reply, rx) = oneshot::channel();
        self.control
            .send(Control::Stats(reply))
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }

    pub(crate) fn close(&self) {
        let _ = self.control.send(Control::Close);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.borrow().is_some()
    }

    pub(crate) async fn closed(&self) -> CloseReason {
        let mut rx = self.closed.clone();
        // The sender goes away only after a reason was set.
        let _ = rx.wait_for(Option::is_some).await;
        let reason = rx.borrow().clone();
        reason.unwrap_or(CloseReason::Local)
    }
}

/// Starts the connection task on `io`.
pub(crate) fn spawn<S>(
    io: S,
    role: Role,
    config: Arc<SessionConfig>,
) -> (Handle, mpsc::Receiver<Incoming>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (req_tx, requests) = mpsc::channel(config.max_in_flight.clamp(1, 1024));
    let (ctl_tx, control) = mpsc::unbounded_channel();
    // Requests in it are unanswered, so the session's inbound window bounds it.
    let (incoming, in_rx) = mpsc::channel(config.max_inbound.max(1) + 8);
    let (closed_tx, closed) = watch::channel(None);
    let session = Session::new(role, config, Instant::now());
    let driver = Driver {
        io,
        session,
        requests,
        requests_open: true,
        control,
        control_open: true,
        released: false,
        incoming,
        pending: HashMap::new(),
        parked: None,
        parked_responses: VecDeque::new(),
        rbuf: vec![0; READ_BUF].into_boxed_slice(),
        rpos: 0,
        rend: 0,
        eof: false,
        wbuf: Vec::new(),
        wpos: 0,
        flush: false,
        yields: 0,
        wlen_at_yield: 0,
        timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        timer_at: None,
        linger: None,
        closed_tx,
    };
    tokio::spawn(driver.run());
    let handle = Handle {
        requests: req_tx,
        control: ctl_tx,
        closed,
    };
    (handle, in_rx)
}

/// Why [`Driver::poll_drive`] returned.
enum Step {
    /// The session is over and its last bytes are out (or lingered too long).
    Done,
    /// Output is ready: yield once before writing it.
    Yield,
}

struct Driver<S> {
    io: S,
    session: Session,
    requests: mpsc::Receiver<Request>,
    requests_open: bool,
    control: mpsc::UnboundedReceiver<Control>,
    control_open: bool,
    /// Every handle is gone and we unbound (or closed).
    released: bool,
    incoming: mpsc::Sender<Incoming>,
    /// Our requests in flight, by sequence number.
    pending: HashMap<u32, Reply>,
    /// A request the session refused for now (window or output full).
    parked: Option<Request>,
    /// Answers the session refused for now (output full).
    parked_responses: VecDeque<(SequenceNumber, CommandStatus, Body)>,
    rbuf: Box<[u8]>,
    rpos: usize,
    rend: usize,
    eof: bool,
    wbuf: Vec<u8>,
    wpos: usize,
    flush: bool,
    /// Times we yielded since the last write, and the output we had then.
    yields: u8,
    wlen_at_yield: usize,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
    /// Closed: the deadline for flushing the last bytes.
    linger: Option<Instant>,
    closed_tx: watch::Sender<Option<CloseReason>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    async fn run(mut self) {
        // Before each write, let the tasks we just woke run once: their new
        // requests and answers join the batch (fewer, larger writes).
        while let Step::Yield = poll_fn(|cx| self.poll_drive(cx)).await {
            // Not `tokio::task::yield_now`: it defers the task until its worker
            // runs out of work, which stalls this connection (for milliseconds)
            // while others keep the worker busy. A self-wake requeues it behind
            // the tasks already queued, where the other worker can steal it.
            let mut yielded = false;
            poll_fn(|cx| {
                if std::mem::replace(&mut yielded, true) {
                    return Poll::Ready(());
                }
                cx.waker().wake_by_ref();
                Poll::Pending
            })
            .await;
        }
        let shutdown = poll_fn(|cx| Pin::new(&mut self.io).poll_shutdown(cx));
        let _ = tokio::time::timeout(LINGER, shutdown).await; // TLS: close_notify
        self.closed_tx
            .send_if_modified(|r| r.is_none() && r.replace(CloseReason::Local).is_none());
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(Error::Closed));
        }
    }

    /// One wake-up: commands, input, drain (transmit, then events), one
    /// write, the timer; repeat while anything moved.
    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        loop {
            let now = Instant::now();
            let mut progress = self.poll_commands(cx, now);
            progress |= self.poll_read(cx, now);
            progress |= self.drain(now);
            // Yield while yielding grows the batch (a few times at most).
            let fresh = self.wpos == 0 && !self.wbuf.is_empty();
            let grew = self.yields == 0
                || (self.wbuf.len() > self.wlen_at_yield && self.wbuf.len() < BATCH_TARGET);
            if fresh && grew && self.yields < MAX_YIELDS && !self.session.is_closed() {
                self.yields += 1;
                self.wlen_at_yield = self.wbuf.len();
                return Poll::Ready(Step::Yield);
            }
            progress |= self.poll_write(cx);
            // Done once the last bytes are out and no request can arrive any more.
            if self.session.is_closed() && self.wpos == self.wbuf.len() && !self.requests_open {
                if self.drain(now) {
                    continue; // output held back by WRITE_LIMIT
                }
                return Poll::Ready(Step::Done);
            }
            let deadline = match self.linger {
                Some(t) => Some(t),
                None => self.session.poll_timeout(),
            };
            if let Some(at) = deadline {
                // Re-arm only for an earlier deadline: deadlines mostly move
                // later (responses arrive), and an early wake-up is a no-op.
                if self.timer_at.is_none_or(|armed| at < armed) {
                    let at = tokio::time::Instant::from_std(at);
                    self.timer.as_mut().reset(at);
                    self.timer_at = Some(at.into_std());
                }
                if self.timer.as_mut().poll(cx).is_ready() {
                    self.timer_at = None;
                    let now = Instant::now();
                    match self.linger {
                        Some(linger) if now >= linger => return Poll::Ready(Step::Done),
                        Some(_) => {}
                        None => self.session.handle_timeout(now),
                    }
                    progress = true;
                }
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }

    fn poll_commands(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut progress = false;
        while let Some((seq, status, body)) = self.parked_responses.pop_front() {
            if let Err(e) = self.respond(now, seq, status, body) {
                self.parked_responses.push_front(e);
                break;
            }
            progress = true;
        }
        while self.control_open {
            match self.control.poll_recv(cx) {
                Poll::Ready(Some(c)) => self.on_control(now, c),
                Poll::Ready(None) => self.control_open = false,
                Poll::Pending => break,
            }
            progress = true;
        }
        if let Some(req) = self.parked.take() {
            if self.session.window_room() > 0 || self.session.is_closed() {
                self.send_request(now, req);
                progress |= self.parked.is_none();
            } else {
                self.parked = Some(req);
            }
        }
        if self.session.is_closed() {
            // `close()` does not stop a sender that already holds a permit from
            // pushing afterwards, and a value pushed after the receiver is
            // dropped is never dropped while a sender lives (tokio#7714): its
            // caller would wait forever. Receive until `None` (no permit left).
            while self.requests_open {
                match self.requests.poll_recv(cx) {
                    Poll::Ready(Some(req)) => drop(req.reply.send(Err(Error::Closed))),
                    Poll::Ready(None) => self.requests_open = false,
                    Poll::Pending => break,
                }
            }
        }
        // Pull requests only while the window has room: the rest wait in the
        // bounded channel, and their senders with them.
        while self.requests_open && self.parked.is_none() && self.session.window_room() > 0 {
            match self.requests.poll_recv(cx) {
                Poll::Ready(Some(req)) => self.send_request(now, req),
                Poll::Ready(None) => self.requests_open = false,
                Poll::Pending => break,
            }
            progress = true;
        }
        if !self.requests_open && !self.control_open && !self.released {
            // Every handle is gone: nobody can use the session any more.
            self.released = true;
            self.release(now);
            progress = true;
        }
        progress
    }

    fn release(&mut self, now: Instant) {
        if self.session.unbind(now).is_err() {
            let _ = self.session.close(now);
        }
    }

    fn send_request(&mut self, now: Instant, req: Request) {
        if req.reply.is_closed() {
            return; // the caller gave up before it was sent
        }
        match self.session.send_request(now, req.body) {
            Ok(seq) => {
                self.pending.insert(seq.get(), req.reply);
            }
            Err(SendError::WindowFull(body) | SendError::OutputFull(body)) => {
                self.parked = Some(Request {
                    body,
                    reply: req.reply,
                });
            }
            // Unbinding: the session will not take new requests any more.
            Err(SendError::InvalidState(_)) if self.session.state() == State::Unbound => {
                let _ = req.reply.send(Err(Error::Closed));
            }
            Err(e) => {
                let _ = req.reply.send(Err(Error::from_send(e)));
            }
        }
    }

    #[allow(clippy::result_large_err)]
    fn respond(
        &mut self,
        now: Instant,
        seq: SequenceNumber,
        status: CommandStatus,
        body: Body,
    ) -> Result<(), (SequenceNumber, CommandStatus, Body)> {
        match self.session.send_response(now, seq, status, body) {
            Err(SendError::OutputFull(body)) => Err((seq, status, body)),
            Err(e) => {
                tracing::debug!(%seq, error = %e, "response not sent");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    fn on_control(&mut self, now: Instant, c: Control) {
        match c {
            Control::Respond { seq, status, body } => {
                if let Err(e) = self.respond(now, seq, status, body) {
                    self.parked_responses.push_back(e);
                }
            }
            Control::Bind { kind, bind, reply } => match self.session.bind(now, kind, bind) {
                Ok(seq) => drop(self.pending.insert(seq.get(), reply)),
                Err(e) => drop(reply.send(Err(Error::from_send(e)))),
            },
            Control::Unbind { reply } => match self.session.unbind(now) {
                Ok(seq) => drop(self.pending.insert(seq.get(), reply)),
                Err(e) => drop(reply.send(Err(Error::from_send(e)))),
            },
            Control::Send { body, reply } => {
                let sent = self.session.send_request(now, body);
                let _ = reply.send(sent.map(drop).map_err(Error::from_send));
            }
            Control::Release => self.release(now),
            Control::Stats(reply) => drop(reply.send(self.session.stats())),
            Control::Close => drop(self.session.close(now)),
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut progress = false;
        loop {
            if self.rpos < self.rend {
                let n = self
                    .session
                    .handle_input(now, &self.rbuf[self.rpos..self.rend]);
                self.rpos += n;
                progress |= n > 0;
                if self.rpos < self.rend || self.session.is_closed() {
                    return progress; // blocked: drain, answer, then offer the rest again
                }
            }
            if self.eof || self.session.is_input_blocked() {
                return progress;
            }
            let mut buf = ReadBuf::new(&mut self.rbuf);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Pending => return progress,
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    (self.rpos, self.rend) = (0, buf.filled().len());
                }
                Poll::Ready(result) => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "read failed");
                    }
                    self.eof = true;
                    self.session.handle_eof(now);
                    return true;
                }
            }
        }
    }

    /// Drains the session: transmit first, then events.
    fn drain(&mut self, now: Instant) -> bool {
        let mut progress = false;
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        while self.wbuf.len() < WRITE_LIMIT {
            match self.session.poll_transmit(now, &mut self.wbuf) {
                Some(_) => progress = true,
                None => break,
            }
        }
        while let Some(event) = self.session.poll_event() {
            progress = true;
            self.on_event(now, event);
        }
        progress
    }

    /// Routes one event; nothing here decides protocol.
    fn on_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Response(pdu) => {
                if let Some(reply) = self.pending.remove(&pdu.sequence_number.get()) {
                    let _ = reply.send(Ok(pdu));
                }
            }
            Event::RequestFailed {
                sequence_number,
                error,
                ..
            } => {
                if let Some(reply) = self.pending.remove(&sequence_number.get()) {
                    let _ = reply.send(Err(error.into()));
                }
            }
            Event::Request(pdu) => self.deliver(now, Incoming::Request(pdu)),
            Event::BindRequest {
                sequence_number,
                kind,
                bind,
            } => self.deliver(
                now,
                Incoming::Bind {
                    seq: sequence_number,
                    kind,
                    bind,
                },
            ),
            Event::AlertNotification(pdu) => self.deliver(now, Incoming::Alert(pdu)),
            Event::Closed(reason) => {
                tracing::debug!(?reason, "session closed");
                if let Some(req) = self.parked.take() {
                    let _ = req.reply.send(Err(Error::Closed));
                }
                self.requests.close();
                while let Ok(req) = self.requests.try_recv() {
                    let _ = req.reply.send(Err(Error::Closed));
                }
                self.linger = Some(now + LINGER);
                self.closed_tx.send_replace(Some(reason));
            }
            Event::WindowAvailable => {} // requests are pulled whenever the window has room
            Event::PeerViolation(violation) => tracing::warn!(%violation, "peer violation"),
            other => tracing::debug!(event = ?other, "session event"),
        }
    }

    /// Hands a peer request to the application; if nobody listens any more,
    /// answers it as a dropped [`InboundRequest`](crate::InboundRequest) would.
    fn deliver(&mut self, now: Instant, item: Incoming) {
        if let Err(e) = self.incoming.try_send(item) {
            match e.into_inner() {
                Incoming::Request(pdu) => {
                    let (seq, status, body) = default_answer(&pdu);
                    if let Err(e) = self.respond(now, seq, status, body) {
                        self.parked_responses.push_back(e);
                    }
                }
                Incoming::Bind { seq, kind, .. } => {
                    let body = kind.response(Default::default());
                    let status = CommandStatus::SYSTEM_ERROR;
                    let _ = self.respond(now, seq, status, body);
                }
                Incoming::Alert(_) => tracing::warn!("alert_notification dropped: nobody listens"),
            }
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>) -> bool {
        if self.wpos < self.wbuf.len() {
            match Pin::new(&mut self.io).poll_write(cx, &self.wbuf[self.wpos..]) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    self.wpos += n;
                    self.yields = 0;
                    self.flush = true;
                    return true;
                }
                Poll::Pending => return false,
                Poll::Ready(result) => {
                    tracing::debug!(?result, "write failed");
                    self.wbuf.clear();
                    self.wpos = 0;
                    self.session.handle_eof(Instant::now());
                    return true;
                }
            }
        }
        // TLS keeps records until flushed; plain TCP flushes at once.
        if self.flush && Pin::new(&mut self.io).poll_flush(cx).is_ready() {
            self.flush = false;
        }
        false
    }
}

/// The answer given to a peer request the application did not answer:
/// status 0 and an empty `*_resp` body.
pub(crate) fn default_answer(pdu: &Pdu) -> (SequenceNumber, CommandStatus, Body) {
    let body = pdu
        .command_id()
        .response_id()
        .and_then(Body::default_for)
        .unwrap_or(Body::GenericNack(Default::default()));
    (pdu.sequence_number, CommandStatus::OK, body)
}
