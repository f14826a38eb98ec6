//! The connection task: one task owns the byte stream and runs
//! smpp-proto's [`Driver`] (the session, request correlation and the poll
//! loop); this file supplies the runtime's timer and the channels.

use std::future::{poll_fn, Future, IntoFuture as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::drive::{Answered, Driver, Host, Transport, LINGER};
use crate::handle::{check_request, CloseState, Ending};
use crate::handler::{Quick, QuickAnswers, QuickHold, SoonResponse};
use crate::queue;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use smpp_proto::endpoint::{Command, Failure, Immediate, Incoming, Response};
use smpp_proto::pdu::{Body, Pdu};
use smpp_proto::session::{CloseReason, Role, SessionConfig, Stats};
use sync_wrapper::SyncFuture;

use crate::{timeout, Error, Runtime};

/// How a request of ours ends.
pub(crate) type Reply = oneshot::Sender<Result<Pdu, Error>>;

/// A request of the application, waiting for window room.
pub(crate) struct Request {
    body: Body,
    reply: Reply,
}

/// Everything else a handle asks of the driver; never refused for window.
///
/// The channel is unbounded, but bounded by construction: every message
/// that expects a reply (`Bind`, `Unbind`, `EnquireLink`, `Send`,
/// `Outbind`, `Stats`) has a caller awaiting it, so there are at most as
/// many as there are waiting callers; a `Respond` answers one unanswered peer request, of which there
/// are at most the session's inbound window plus the incoming channel's
/// slack; `Close` and `Release` are each sent at most once per connection
/// (flags in the handle coalesce repeats); `SetLoad` only when the value
/// changes, and the driver takes commands as fast as they come. A bounded channel would make
/// `InboundRequest`'s drop (which must answer, synchronously) able to fail.
pub(crate) type Control = Command<Reply, Sent, oneshot::Sender<Result<Stats, Error>>>;

/// How a command that is only sent ends.
pub(crate) type Sent = oneshot::Sender<Result<(), Error>>;

/// The sending side of a driver; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Handle {
    /// Bounded (at most `max_in_flight` requests wait in it: the others'
    /// callers wait for room), and its queue grows only as it fills: a
    /// channel that allocated every slot up front would do so for every
    /// connection, however idle.
    requests: queue::Sender<Box<Request>>,
    pub(crate) control: queue::Sender<Box<Control>>,
    /// Why the session closed, once it did; its waiters wake then.
    closed: Arc<CloseState>,
    ending: Arc<Ending>,
}

impl Handle {
    /// Sends a request once the window has room, and awaits its response;
    /// an error status is [`Error::Status`].
    ///
    /// Not an `async fn`: the request is checked and boxed here, so the
    /// future holds a pointer rather than the body (a `submit_sm` is a few
    /// hundred octets), and callers move and pin it cheaply.
    pub(crate) fn request(
        &self,
        body: Body,
    ) -> impl Future<Output = Result<Pdu, Error>> + Send + '_ {
        let prepared = check_request(&body).map(|()| {
            let (reply, rx) = oneshot::channel();
            // `Sync`, as the caller's future was with futures-channel's.
            let rx = SyncFuture::new(rx.into_future());
            (Box::new(Request { body, reply }), rx)
        });
        async move {
            let (req, rx) = prepared?;
            if self.requests.is_closed() {
                return Err(Error::Closed);
            }
            // Waits for room in the channel.
            self.requests.send(req).await.map_err(|_| Error::Closed)?;
            rx.await
                .map_err(|_| Error::Closed)?
                .and_then(Error::check_status)
        }
    }

    /// Sends a command with a reply (`Bind`, `Unbind`, `Send`, `Outbind`,
    /// `Stats`) and awaits the reply.
    pub(crate) async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Control,
    ) -> Result<T, Error> {
        let (reply, rx) = oneshot::channel();
        let rx = SyncFuture::new(rx.into_future());
        self.command(make(reply))?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Sends a command without waiting (the channel is unbounded).
    pub(crate) fn command(&self, command: Control) -> Result<(), Error> {
        let sent = self.control.try_send(Box::new(command));
        sent.map_err(|_| Error::Closed)
    }

    /// Closes at once (once; repeats are no-ops).
    pub(crate) fn close(&self) {
        if self.ending.close() {
            let _ = self.command(Control::Close);
        }
    }

    /// Unbinds when bound, closes otherwise (once; repeats are no-ops).
    pub(crate) fn release(&self) {
        if self.ending.release() {
            let _ = self.command(Control::Release);
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get().is_some()
    }

    pub(crate) async fn closed(&self) -> CloseReason {
        self.closed.wait().await
    }
}

/// A server's counters over its connections, fed by their sessions' events.
#[derive(Clone, Debug)]
pub(crate) struct Tallies {
    /// `Event::LateResponse`.
    pub(crate) late_responses: Arc<AtomicU64>,
    /// `Event::TlvsDropped`: the TLVs left out.
    pub(crate) tlvs_dropped: Arc<AtomicU64>,
}

/// Starts the connection task on `io`.
pub(crate) fn spawn<R: Runtime, T: Transport + Send + 'static>(
    io: T,
    role: Role,
    config: Arc<SessionConfig>,
    quick: Option<Arc<QuickAnswers>>,
    tallies: Option<Tallies>,
) -> (Handle, queue::Receiver<Box<Incoming>>) {
    let (req_tx, requests) = queue::bounded(config.max_in_flight.clamp(1, 1024));
    let (ctl_tx, control) = queue::channel();
    // Unbounded, but bounded by construction: the requests in it are
    // unanswered, so the session's inbound window bounds them (the other
    // items are a few per connection). A bounded channel would allocate
    // every slot up front (16 KiB per idle connection at a window of 1,024).
    let (incoming, in_rx) = queue::channel();
    let state = Arc::new(CloseState::default());
    let rt = Channels::<R> {
        requests,
        control,
        incoming,
        timer: R::timer(),
        quick,
        hold: QuickHold::default(),
        soon: FuturesUnordered::new(),
        tallies,
        closed: state.clone(),
    };
    // Boxed: the task then holds a pointer, not the driver (an async fn's
    // argument is stored twice in its future: 2.6 KiB more per connection).
    R::spawn(run(Box::new(Driver::new(io, rt, role, config))));
    let handle = Handle {
        requests: req_tx,
        control: ctl_tx,
        closed: state,
        ending: Arc::default(),
    };
    (handle, in_rx)
}

async fn run<R: Runtime, T: Transport>(mut driver: Box<Driver<T, Channels<R>>>) {
    driver.run().await;
    let io = driver.io_mut();
    let _ = timeout::<R, _>(LINGER, poll_fn(|cx| io.poll_close(cx))).await; // TLS: close_notify
    driver.finish();
    // Close the commands' channel and fail what is queued (dropped replies
    // read as Closed).
    let rt = driver.runtime_mut();
    rt.control.close();
    while let Some(control) = rt.control.try_recv() {
        drop(control);
    }
    rt.closed(CloseReason::Local);
}

/// The runtime's timer and the channels, for the driver.
struct Channels<R: Runtime> {
    requests: queue::Receiver<Box<Request>>,
    control: queue::Receiver<Box<Control>>,
    incoming: queue::Sender<Box<Incoming>>,
    timer: R::Timer,
    quick: Option<Arc<QuickAnswers>>,
    /// The connection's handle for the quick answers of one round.
    hold: QuickHold,
    /// Quick answers still to come (the handler's futures).
    soon: FuturesUnordered<SoonResponse>,
    /// Where some events are counted (a server's, over its connections).
    tallies: Option<Tallies>,
    /// Why it closed (the first reason wins); setting it wakes the waiters.
    closed: Arc<CloseState>,
}

/// A driver dropped before it ended (its task never ran, or its runtime
/// shut down): the session counts as closed, and its waiters wake.
impl<R: Runtime> Drop for Channels<R> {
    fn drop(&mut self) {
        self.closed.set(CloseReason::Local);
    }
}

impl<R: Runtime> Host for Channels<R> {
    type Reply = Reply;
    type Sent = Sent;
    type Stats = oneshot::Sender<Result<Stats, Error>>;

    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }

    #[inline]
    fn reset_timer(&mut self, at: Instant) {
        R::reset_timer(&mut self.timer, at);
    }

    #[inline]
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        R::poll_timer(&mut self.timer, cx)
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
                    // Out of the channel: the next waiting caller comes in.
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
        self.incoming.try_send(Box::new(item)).map_err(|e| *e)
    }

    #[inline]
    fn answer_now(&mut self, pdu: &Pdu, received: Instant) -> Option<Answered> {
        match self.quick.as_ref()?.answer(pdu, received, &mut self.hold)? {
            Quick::Now(status, body) => Some(Answered::Now(status, body)),
            Quick::Soon(answer) => {
                self.soon.push(answer);
                Some(Answered::Later)
            }
        }
    }

    #[inline]
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<Response> {
        if self.soon.is_empty() {
            return Poll::Pending; // the usual case without a store to wait for
        }
        match self.soon.poll_next_unpin(cx) {
            Poll::Ready(Some(response)) => Poll::Ready(response),
            // None: nothing waits (and nothing to wake for).
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }

    #[inline]
    fn routed(&mut self) {
        self.hold.release();
    }

    fn event(&mut self, event: smpp_proto::session::Event) {
        use smpp_proto::session::Event;
        match (&event, &self.tallies) {
            (Event::LateResponse(_), Some(t)) => {
                t.late_responses.fetch_add(1, Ordering::Relaxed);
            }
            (Event::TlvsDropped { dropped, .. }, Some(t)) => {
                t.tlvs_dropped.fetch_add(*dropped as u64, Ordering::Relaxed);
            }
            _ => {}
        }
        crate::drive::log_event(event);
    }

    fn closed(&mut self, reason: CloseReason) {
        tracing::debug!(?reason, "session closed");
        // Later commands fail at once (`Error::Closed`); queued ones still arrive.
        self.control.close();
        self.requests.close();
        while let Some(req) = self.requests.try_recv() {
            let _ = req.reply.send(Err(Error::Closed));
        }
        self.closed.set(reason);
    }

    fn shrink(&mut self) {
        self.requests.shrink();
        self.control.shrink();
    }
}
