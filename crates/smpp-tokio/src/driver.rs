//! The connection task: one tokio task owns the byte stream and runs
//! smpp-proto's [`Driver`] (the session, request correlation and the poll
//! loop); this file only supplies tokio's stream, timer and channels.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use smpp_proto::endpoint::drive::{Driver, Runtime, Transport, LINGER};
use smpp_proto::endpoint::handle::{check_request, Ending};
use smpp_proto::endpoint::serve::QuickAnswers;
use smpp_proto::endpoint::{Command, Failure, Immediate, Incoming};
use smpp_proto::pdu::{Body, CommandStatus, Pdu};
use smpp_proto::session::{CloseReason, Role, SessionConfig, Stats};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Sleep;

use crate::Error;

/// How a request of ours ends.
pub(crate) type Reply = oneshot::Sender<Result<Pdu, Error>>;

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
/// slack; `Close` and `Release` are each sent at most once per connection
/// (flags in the handle coalesce repeats). A bounded channel would make
/// `InboundRequest`'s drop (which must answer, synchronously) able to fail.
pub(crate) type Control = Command<Reply, Sent, oneshot::Sender<Result<Stats, Error>>>;

/// How a command that is only sent ends.
pub(crate) type Sent = oneshot::Sender<Result<(), Error>>;

/// The sending side of a driver; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Handle {
    requests: mpsc::Sender<Box<Request>>,
    pub(crate) control: mpsc::UnboundedSender<Box<Control>>,
    closed: watch::Receiver<Option<CloseReason>>,
    ending: Arc<Ending>,
}

impl Handle {
    /// Sends a request once the window has room, and awaits its response (any status).
    pub(crate) async fn request_any(&self, body: Body) -> Result<Pdu, Error> {
        check_request(&body)?;
        let (reply, rx) = oneshot::channel();
        let req = Box::new(Request { body, reply });
        self.requests.send(req).await.map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Sends a command with a reply (`Bind`, `Unbind`, `Send`, `Outbind`,
    /// `Stats`) and awaits the reply.
    pub(crate) async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Control,
    ) -> Result<T, Error> {
        let (reply, rx) = oneshot::channel();
        self.control
            .send(Box::new(make(reply)))
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Closes at once (once; repeats are no-ops).
    pub(crate) fn close(&self) {
        if self.ending.close() {
            let _ = self.control.send(Box::new(Control::Close));
        }
    }

    /// Unbinds when bound, closes otherwise (once; repeats are no-ops).
    pub(crate) fn release(&self) {
        if self.ending.release() {
            let _ = self.control.send(Box::new(Control::Release));
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
    quick: Option<Arc<QuickAnswers>>,
) -> (Handle, mpsc::Receiver<Box<Incoming>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (req_tx, requests) = mpsc::channel(config.max_in_flight.clamp(1, 1024));
    let (ctl_tx, control) = mpsc::unbounded_channel();
    // Requests in it are unanswered, so the session's inbound window bounds it.
    let (incoming, in_rx) = mpsc::channel(config.max_inbound.max(1) + 8);
    let (closed_tx, closed) = watch::channel(None);
    let rt = Tokio {
        requests,
        control,
        incoming,
        timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        closed_tx,
        quick,
    };
    let driver = Driver::new(Stream(io), rt, role, config);
    tokio::spawn(run(driver));
    let handle = Handle {
        requests: req_tx,
        control: ctl_tx,
        closed,
        ending: Arc::default(),
    };
    (handle, in_rx)
}

async fn run<S: AsyncRead + AsyncWrite + Unpin>(mut driver: Driver<Stream<S>, Tokio>) {
    // Before each write, let the tasks we just woke run once: their new
    // requests and answers join the batch (fewer, larger writes).
    driver.run().await;
    let io = &mut driver.io_mut().0;
    let shutdown = poll_fn(|cx| Pin::new(&mut *io).poll_shutdown(cx));
    let _ = tokio::time::timeout(LINGER, shutdown).await; // TLS: close_notify
    driver.finish();
}

/// A tokio stream as the driver's [`Transport`].
struct Stream<S>(S);

impl<S: AsyncRead + AsyncWrite + Unpin> Transport for Stream<S> {
    #[inline]
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        let read = Pin::new(&mut self.0).poll_read(cx, &mut buf);
        read.map_ok(|()| buf.filled().len())
    }

    #[inline]
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    #[inline]
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
}

/// tokio's clock, timer and channels, for the driver.
struct Tokio {
    requests: mpsc::Receiver<Box<Request>>,
    control: mpsc::UnboundedReceiver<Box<Control>>,
    incoming: mpsc::Sender<Box<Incoming>>,
    timer: Pin<Box<Sleep>>,
    closed_tx: watch::Sender<Option<CloseReason>>,
    quick: Option<Arc<QuickAnswers>>,
}

impl Runtime for Tokio {
    type Reply = Reply;
    type Sent = Sent;
    type Stats = oneshot::Sender<Result<Stats, Error>>;

    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }

    #[inline]
    fn reset_timer(&mut self, at: Instant) {
        self.timer.as_mut().reset(at.into());
    }

    #[inline]
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.timer.as_mut().poll(cx)
    }

    #[inline]
    fn poll_command(&mut self, cx: &mut Context<'_>) -> Poll<Option<Control>> {
        self.control.poll_recv(cx).map(|c| c.map(|c| *c))
    }

    #[inline]
    fn poll_request(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Body, Reply)>> {
        loop {
            match std::task::ready!(self.requests.poll_recv(cx)) {
                // The caller gave up before it was sent.
                Some(req) if req.reply.is_closed() => continue,
                Some(req) => {
                    let Request { body, reply } = *req;
                    return Poll::Ready(Some((body, reply)));
                }
                None => return Poll::Ready(None),
            }
        }
    }

    #[inline]
    fn done(&mut self, reply: Reply, result: Result<Pdu, Failure>) {
        let _ = reply.send(result.map_err(Error::from));
    }

    #[inline]
    fn immediate(&mut self, answer: Immediate<Sent, Self::Stats>) {
        match answer {
            Immediate::Sent(reply, sent) => drop(reply.send(sent.map_err(Error::from))),
            Immediate::Stats(reply, stats) => drop(reply.send(Ok(stats))),
        }
    }

    #[inline]
    fn deliver(&mut self, item: Incoming) -> Result<(), Incoming> {
        self.incoming
            .try_send(Box::new(item))
            .map_err(|e| *e.into_inner())
    }

    #[inline]
    fn answer_now(&mut self, pdu: Pdu) -> Result<(CommandStatus, Body), Pdu> {
        match &self.quick {
            Some(quick) => quick.answer(pdu),
            None => Err(pdu),
        }
    }

    fn closed(&mut self, reason: CloseReason) {
        tracing::debug!(?reason, "session closed");
        self.requests.close();
        while let Ok(req) = self.requests.try_recv() {
            let _ = req.reply.send(Err(Error::Closed));
        }
        self.closed_tx
            .send_if_modified(|r| r.is_none() && r.replace(reason).is_none());
    }
}
