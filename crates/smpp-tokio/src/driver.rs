//! The connection task: one tokio task owns the byte stream and the
//! connection's [`Endpoint`] (its session and request correlation), and only
//! moves bytes, arms one timer and routes outputs.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use smpp_proto::endpoint::{Command, Endpoint, Immediate, Incoming, Output};
use smpp_proto::pdu::{Body, Pdu};
use smpp_proto::session::{CloseReason, Event, Role, SendError, SessionConfig, Stats};
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
///
/// The channel is unbounded, but bounded by construction: every message
/// that expects a reply (`Bind`, `Unbind`, `Send`, `Outbind`, `Stats`) has a
/// caller awaiting it, so there are at most as many as there are waiting
/// callers; a `Respond` answers one unanswered peer request, of which there
/// are at most the session's inbound window plus the incoming channel's
/// slack; `Close` and `Release` are sent at most once per connection (a
/// flag in the handle coalesces repeats). A bounded channel would make
/// `InboundRequest`'s drop (which must answer, synchronously) able to fail.
pub(crate) type Control = Command<Reply, Sent, oneshot::Sender<Stats>>;

/// How a command that is only sent ends.
pub(crate) type Sent = oneshot::Sender<Result<(), Error>>;

/// The sending side of a driver; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Handle {
    requests: mpsc::Sender<Request>,
    pub(crate) control: mpsc::UnboundedSender<Control>,
    closed: watch::Receiver<Option<CloseReason>>,
    /// `Close` or `Release` was sent: repeats are no-ops.
    ending: Arc<AtomicBool>,
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

    /// Sends a command that resolves once sent.
    pub(crate) async fn send(&self, make: impl FnOnce(Sent) -> Control) -> Result<(), Error> {
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

    /// Closes at once (once; repeats are no-ops).
    pub(crate) fn close(&self) {
        if !self.ending.swap(true, Ordering::AcqRel) {
            let _ = self.control.send(Control::Close);
        }
    }

    /// Unbinds when bound, closes otherwise (once; repeats are no-ops).
    pub(crate) fn release(&self) {
        if !self.ending.swap(true, Ordering::AcqRel) {
            let _ = self.control.send(Control::Release);
        }
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
    let endpoint = Endpoint::new(role, config, Instant::now());
    let driver = Driver {
        io,
        endpoint,
        requests,
        requests_open: true,
        control,
        control_open: true,
        released: false,
        incoming,
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
        ending: Arc::new(AtomicBool::new(false)),
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
    endpoint: Endpoint<Reply>,
    requests: mpsc::Receiver<Request>,
    requests_open: bool,
    control: mpsc::UnboundedReceiver<Control>,
    control_open: bool,
    /// Every handle is gone and we unbound (or closed).
    released: bool,
    incoming: mpsc::Sender<Incoming>,
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
        self.endpoint.abandon();
        self.route(Instant::now());
    }

    /// One wake-up: commands, input, drain (transmit, then outputs), one
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
            if fresh && grew && self.yields < MAX_YIELDS && !self.endpoint.is_closed() {
                self.yields += 1;
                self.wlen_at_yield = self.wbuf.len();
                return Poll::Ready(Step::Yield);
            }
            progress |= self.poll_write(cx);
            if self.endpoint.is_closed() && self.wpos == self.wbuf.len() {
                if self.drain(now) {
                    continue; // output held back by WRITE_LIMIT
                }
                return Poll::Ready(Step::Done);
            }
            let deadline = match self.linger {
                Some(t) => Some(t),
                None => self.endpoint.poll_timeout(),
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
                        None => self.endpoint.handle_timeout(now),
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
        let mut progress = self.endpoint.flush(now);
        while self.control_open {
            match self.control.poll_recv(cx) {
                Poll::Ready(Some(c)) => self.on_control(now, c),
                Poll::Ready(None) => self.control_open = false,
                Poll::Pending => break,
            }
            progress = true;
        }
        // Pull requests only while the window has room: the rest wait in the
        // bounded channel, and their senders with them.
        while self.requests_open && self.endpoint.wants_requests() {
            match self.requests.poll_recv(cx) {
                // The caller gave up before it was sent.
                Poll::Ready(Some(req)) if req.reply.is_closed() => {}
                Poll::Ready(Some(req)) => self.endpoint.request(now, req.body, req.reply),
                Poll::Ready(None) => self.requests_open = false,
                Poll::Pending => break,
            }
            progress = true;
        }
        if !self.requests_open && !self.control_open && !self.released {
            // Every handle is gone: nobody can use the session any more.
            self.released = true;
            self.endpoint.release(now);
            progress = true;
        }
        progress
    }

    fn on_control(&mut self, now: Instant, c: Control) {
        match self.endpoint.command(now, c) {
            Some(Immediate::Sent(reply, sent)) => drop(reply.send(sent.map_err(Error::from))),
            Some(Immediate::Stats(reply, stats)) => drop(reply.send(stats)),
            _ => {}
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut progress = false;
        loop {
            if self.rpos < self.rend {
                let n = self
                    .endpoint
                    .handle_input(now, &self.rbuf[self.rpos..self.rend]);
                self.rpos += n;
                progress |= n > 0;
                if self.rpos < self.rend || self.endpoint.is_closed() {
                    return progress; // blocked: drain, answer, then offer the rest again
                }
            }
            if self.eof || self.endpoint.is_input_blocked() {
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
                    self.endpoint.handle_eof(now);
                    return true;
                }
            }
        }
    }

    /// Drains the session: transmit first, then outputs.
    fn drain(&mut self, now: Instant) -> bool {
        let mut progress = false;
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        while self.wbuf.len() < WRITE_LIMIT {
            match self.endpoint.poll_transmit(now, &mut self.wbuf) {
                Some(_) => progress = true,
                None => break,
            }
        }
        progress | self.route(now)
    }

    /// Routes the endpoint's outputs; nothing here decides protocol.
    fn route(&mut self, now: Instant) -> bool {
        let mut progress = false;
        while let Some(output) = self.endpoint.poll_output() {
            progress = true;
            match output {
                Output::Done(reply, result) => drop(reply.send(result.map_err(Error::from))),
                // Nobody listens any more: answered as a dropped `InboundRequest` would be.
                Output::Incoming(item) => {
                    if let Err(e) = self.incoming.try_send(item) {
                        self.endpoint.answer_default(now, e.into_inner());
                    }
                }
                Output::Closed(reason) => {
                    tracing::debug!(?reason, "session closed");
                    self.requests.close();
                    while let Ok(req) = self.requests.try_recv() {
                        let _ = req.reply.send(Err(Error::Closed));
                    }
                    self.linger = Some(now + LINGER);
                    self.closed_tx.send_replace(Some(reason));
                }
                Output::Event(Event::PeerViolation(v)) => tracing::warn!(%v, "peer violation"),
                Output::Event(event) => tracing::debug!(?event, "session event"),
                _ => {}
            }
        }
        progress
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
                    self.endpoint.handle_eof(Instant::now());
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
