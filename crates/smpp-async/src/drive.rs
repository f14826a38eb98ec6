//! The poll loop of an async connection task, shared by the async runtime
//! adapters: still no runtime, no clock and no sockets of its own. The
//! adapter supplies them through two small traits, [`Transport`] (the byte
//! stream) and [`Host`] (clock, one timer, the handles' channels), and
//! polls [`Driver::poll_drive`] from its task.
//!
//! Each round: the handles' commands and the requests that fit the
//! window, input into the session (a slice of it, see below), the
//! session's output into one buffer (bounded), outputs routed, one write,
//! one timer at the session's next deadline; repeated while anything
//! moved, with up to [`MAX_READS`] reads per poll (then the task requeues
//! itself, so that a connection that always has input cannot keep a thread
//! of a runtime without a cooperative budget, such as smol's; the rounds
//! without reads are bounded by the window). A cap on rounds as well was
//! measured: requeueing after 32 cost a third of the in-process rate.
//!
//! When requests of the application joined a round, the driver yields
//! (requeues itself behind the other tasks) before writing, as long as
//! that grows the batch: on a multi-thread runtime the callers on other
//! threads add theirs (tokio, client and server in one process, 4 binds:
//! about 315k submit_sm/s without this, 675k with). Where a yield adds
//! nothing (a one-thread runtime, whose callers all ran before the driver
//! was polled) it only delays the write, so after such a yield the next
//! [`SKIP_YIELDS`] writes go out at once.
//!
//! A large read may be handled in slices, what each slice produced
//! (answers given in the connection's task) written before the next slice
//! is decoded: the peer works on the first answers while we work on the
//! rest, so both ends of a busy connection run at once instead of taking
//! turns over whole windows. Measured with `smpp bench` against `smpp
//! serve` on one loopback connection (2 cores), this took window 64 from
//! about 340k to about 600k submit_sm/s and window 256 from about 480k to
//! about 1M. But each slice costs a write, which does not pay when the
//! peer is busy anyway (4 binds from one client thread: about 1.07M
//! without slices, 750k with): so the driver measures its input rate with
//! and without slices, in turns of [`EPOCH`], and keeps the better (see
//! `Slicing`).

use std::io;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use smpp_proto::endpoint::{Command, Endpoint, Failure, Immediate, Incoming, Output, Response};
use smpp_proto::pdu::{Body, CommandStatus, Pdu};
use smpp_proto::session::{CloseReason, Event, Role, SessionConfig};

/// Read chunk: it starts small (an idle bind reads a few octets a minute)
/// and doubles each time a read fills it, up to the largest, where several
/// PDUs arrive per read under load.
const READ_BUF_FIRST: usize = 2 * 1024;
const READ_BUF: usize = 64 * 1024;
/// A connection quiet (nothing read or written) for this long gives its
/// buffers back: the read chunk, the write buffer and the session's empty
/// queues ([`Endpoint::shrink`]). A quiet connection then holds no buffer
/// (what memory an idle bind costs: docs/BENCHMARKS.md); the next read
/// goes through a small buffer on the stack, [`READ_PROBE`], and only
/// input that arrives brings the read chunk back. Busy connections are
/// never quiet this long, so they never pay for it.
pub(crate) const QUIET: Duration = Duration::from_secs(1);
/// The read buffer on the stack while the connection holds none.
const READ_PROBE: usize = 512;
/// Encoded output held before the driver stops draining the session (the
/// session then refuses input and commands: backpressure, not growth).
const WRITE_LIMIT: usize = 256 * 1024;
/// A sliced read is handled in about this many slices (see the module
/// docs), of at least `MIN_SLICE` octets (8 submit_sm of 160 characters):
/// a window of 64 submit_sm in 3, a read of a few PDUs in one. The best of
/// 2, 3, 4, 6 and 8 for one bind at windows 64 and 256 (3 and 4 were within
/// 2 % of each other; 3 costs fewer writes).
const SLICES: usize = 3;
const MIN_SLICE: usize = 1800;
/// Yields before a write while each grows the batch with requests of the
/// application (callers on other tasks are still adding theirs), up to
/// this many times or this many octets.
const MAX_YIELDS: u8 = 64;
const BATCH_TARGET: usize = 64 * 1024;
/// Reads per poll at most.
pub(crate) const MAX_READS: u32 = 32;
/// After a yield that added nothing (the callers had all run already: a
/// one-thread runtime), this many writes go out without yielding.
pub(crate) const SKIP_YIELDS: u8 = 16;
/// How long each trial of slicing on or off lasts (see the module docs).
pub(crate) const EPOCH: Duration = Duration::from_millis(10);
/// Every this many epochs, the mode that measured worse is tried again.
const EXPLORE_EVERY: u32 = 8;
/// An epoch longer than this many `EPOCH`s had idle time in it: not a
/// measure of either mode (nor is one with a gap of an `EPOCH` between two
/// reads).
const IDLE_EPOCHS: u32 = 4;

/// Whether to slice reads, chosen by measurement: input octets per second
/// with slicing on and with it off, each smoothed over the epochs it ran,
/// and the better mode used, the other retried now and then (the peer's
/// load changes). Only reads of more than `2 * MIN_SLICE` octets are
/// sliced at all: a lightly loaded connection is never affected. Over a
/// link whose round trip is longer than an epoch the measure is noise,
/// but there the CPU this saves or spends hardly matters.
#[derive(Debug, Default)]
pub(crate) struct Slicing {
    on: bool,
    start: Option<Instant>,
    /// The last read.
    last: Option<Instant>,
    octets: usize,
    epochs: u32,
    /// Octets per second with slicing off and on; 0 until measured.
    rate: [f64; 2],
}

impl Slicing {
    /// A read of `n` octets at `now`: whether to slice it.
    pub(crate) fn read(&mut self, now: Instant, n: usize) -> bool {
        let gap = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= EPOCH);
        self.last = Some(now);
        // Idle before this read: a new epoch, in the same mode.
        let start = if gap { None } else { self.start };
        let Some(start) = start else {
            self.start = Some(now);
            self.octets = n;
            return self.on;
        };
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= EPOCH {
            if elapsed < EPOCH * IDLE_EPOCHS {
                let rate = self.octets as f64 / elapsed.as_secs_f64();
                let r = &mut self.rate[usize::from(self.on)];
                *r = if *r == 0.0 {
                    rate
                } else {
                    0.75 * *r + 0.25 * rate
                };
            }
            self.epochs = self.epochs.wrapping_add(1);
            let better = self.rate[1] > self.rate[0];
            self.on = match self.rate {
                [_, 0.0] => true, // measure both first
                [0.0, _] => false,
                _ if self.epochs % EXPLORE_EVERY == 0 => !better,
                _ => better,
            };
            self.start = Some(now);
            self.octets = 0;
        }
        self.octets += n;
        self.on
    }
}
/// How long a closed session may take to flush its last PDUs.
pub(crate) const LINGER: Duration = Duration::from_secs(2);

/// The connection's byte stream, as the runtime's async I/O offers it.
pub trait Transport {
    /// Reads into `buf`; `Ok(0)` at the end of the stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
    /// Writes some of `buf`.
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;
    /// Flushes what a layer (TLS) keeps.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Shuts the writing side down (TLS: sends `close_notify`) once the
    /// session is over; nothing by default.
    fn poll_close(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    /// The longest one write may make no progress before the peer counts
    /// as gone (the driver gives the session's `response_timeout`: a peer
    /// that takes none of our bytes for that long cannot answer a request
    /// in time either). A stream whose writes block the task sets its write
    /// timeout from it, so that a peer that never reads cannot stall the
    /// connection's timers; nothing by default (an async write never
    /// blocks).
    fn stall_limit(&mut self, limit: Duration) {
        let _ = limit;
    }
    /// The session closed: the last bytes (and [`poll_close`](Transport::poll_close))
    /// should be done by `until`. A stream whose writes block shortens its
    /// write timeout here; nothing by default.
    fn linger(&mut self, until: Instant) {
        let _ = until;
    }
}

/// What the runtime adapter gives the driver: the clock, one timer, and
/// the ends of its channels.
pub(crate) trait Host {
    /// How a request of the application ends ([`Endpoint`]'s token).
    type Reply;
    /// How a command that is only sent ends.
    type Sent;
    /// Where the session's counters go.
    type Stats;

    /// The time now.
    fn now(&self) -> Instant;
    /// Arms the timer at `at` (replacing the previous deadline).
    fn reset_timer(&mut self, at: Instant);
    /// The armed timer fired.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()>;
    /// The next command of a handle; `Ready(None)` once every handle is gone.
    #[allow(clippy::type_complexity)]
    fn poll_command(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Command<Self::Reply, Self::Sent, Self::Stats>>>;
    /// The next request of the application (only polled while the window
    /// has room); `Ready(None)` once every handle is gone. Requests whose
    /// caller gave up may be skipped here.
    fn poll_request(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Body, Self::Reply)>>;
    /// A request ended.
    fn done(&mut self, reply: Self::Reply, result: Result<Pdu, Failure>);
    /// A command's immediate answer.
    fn immediate(&mut self, answer: Immediate<Self::Sent, Self::Stats>);
    /// Hands a peer request to the application; gives it back when nobody
    /// takes it (it is then answered as if dropped).
    #[allow(clippy::result_large_err)] // handed back at once, not propagated
    fn deliver(&mut self, item: Incoming) -> Result<(), Incoming>;
    /// A peer request that the application may answer right here, in the
    /// connection's task (a handler's synchronous fast path: no hand-over to
    /// another task, and the answer joins the batch being written): the
    /// status and `*_resp` body, or `None`: the request is then
    /// [delivered](Host::deliver). By default every request is delivered.
    /// `received` is the clock reading of the round that handles the
    /// request (its arrival, near enough, for the handler's metrics).
    fn answer_now(&mut self, pdu: &Pdu, received: Instant) -> Option<Answered> {
        let _ = (pdu, received);
        None
    }
    /// The next answer that [`answer_now`](Host::answer_now) took for later
    /// ([`Answered::Later`]) and that is now ready: the response to send.
    /// `Pending` (waking the task when one is ready) otherwise.
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<Response> {
        let _ = cx;
        Poll::Pending
    }
    /// The outputs of a round are routed: what [`answer_now`](Host::answer_now)
    /// held for them (the connection's handle) is let go.
    fn routed(&mut self) {}
    /// The session closed: refuse new requests (fail those queued) and tell
    /// the handles why. Called again (with [`CloseReason::Local`]) by
    /// [`Driver::finish`]: the first reason stands.
    fn closed(&mut self, reason: CloseReason);
    /// The connection is quiet: give back what memory the channels hold
    /// beyond their use. Nothing by default.
    fn shrink(&mut self) {}
    /// Something the session reported for the record (peer violations,
    /// state changes); nothing to do. Logged by default ([`log_event`]).
    fn event(&mut self, event: Event) {
        log_event(event);
    }
    /// Reading or writing failed: the connection is over. Logged by default.
    fn io_failed(&mut self, error: &io::Error) {
        tracing::debug!(%error, "i/o failed");
    }
}

/// Logs an event of the session (peer violations as warnings, the rest at debug level).
pub(crate) fn log_event(event: Event) {
    match event {
        Event::PeerViolation(v) => tracing::warn!(%v, "peer violation"),
        Event::LateResponse(pdu) => tracing::info!(
            seq = pdu.sequence_number.get(),
            command = %pdu.command_id(),
            status = %pdu.command_status,
            "late response (its request had timed out)"
        ),
        event => tracing::debug!(?event, "session event"),
    }
}

/// How [`Host::answer_now`] took a request.
#[derive(Debug)]
pub(crate) enum Answered {
    /// Answered: the status and `*_resp` body to send.
    Now(CommandStatus, Body),
    /// The answer comes later, from [`Host::poll_answer`].
    Later,
}

/// One connection's task state; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Driver<T, R: Host> {
    io: T,
    rt: R,
    endpoint: Endpoint<R::Reply>,
    requests_open: bool,
    commands_open: bool,
    /// Every handle is gone and we unbound (or closed).
    released: bool,
    rbuf: Box<[u8]>,
    rpos: usize,
    rend: usize,
    /// Reads left in this poll, and whether we stopped for want of them.
    reads_left: u32,
    out_of_reads: bool,
    slicing: Slicing,
    eof: bool,
    wbuf: Vec<u8>,
    wpos: usize,
    flush: bool,
    /// Requests of the application joined the endpoint in this wake-up.
    pulled: bool,
    /// Times we yielded since the last write, and the output we had then.
    yields: u8,
    /// Writes still to go out without a yield (see `SKIP_YIELDS`).
    skip_yields: u8,
    wlen_at_yield: usize,
    timer_at: Option<Instant>,
    /// Closed: the deadline for flushing the last bytes.
    linger: Option<Instant>,
    /// The last read or write; buffers are held until [`QUIET`] after it.
    active_at: Instant,
    /// Buffers (or the session's queues) may hold memory to give back.
    holding: bool,
}

impl<T: Transport, R: Host> Driver<T, R> {
    /// A new connection on `io`.
    pub(crate) fn new(mut io: T, rt: R, role: Role, config: std::sync::Arc<SessionConfig>) -> Self {
        io.stall_limit(config.response_timeout);
        let now = rt.now();
        let endpoint = Endpoint::new(role, config, now);
        Driver {
            io,
            rt,
            endpoint,
            requests_open: true,
            commands_open: true,
            released: false,
            rbuf: vec![0; READ_BUF_FIRST].into_boxed_slice(),
            rpos: 0,
            rend: 0,
            reads_left: MAX_READS,
            out_of_reads: false,
            slicing: Slicing::default(),
            eof: false,
            wbuf: Vec::new(),
            wpos: 0,
            flush: false,
            pulled: false,
            yields: 0,
            skip_yields: 0,
            wlen_at_yield: 0,
            timer_at: None,
            linger: None,
            active_at: now,
            holding: true,
        }
    }

    /// The byte stream (to shut it down once [`Driver::run`] returns).
    pub(crate) fn io_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// The runtime's side (its channels).
    pub(crate) fn runtime_mut(&mut self) -> &mut R {
        &mut self.rt
    }

    /// Drives the connection until the session is over and its last bytes
    /// are out (or lingered too long); then shut the stream down (briefly)
    /// and [`finish`](Driver::finish).
    pub(crate) async fn run(&mut self) {
        std::future::poll_fn(|cx| self.poll_drive(cx)).await;
    }

    /// The connection ended: reports the close (if the session did not)
    /// and fails whatever is still held.
    pub(crate) fn finish(&mut self) {
        self.rt.closed(CloseReason::Local);
        self.endpoint.abandon();
        let now = self.rt.now();
        self.route(now);
    }

    /// One wake-up: commands, input (a slice), drain (transmit, then
    /// outputs), one write, the timer; repeat while anything moved.
    /// `Ready` once the session is over and its last bytes are out (or
    /// lingered too long).
    pub(crate) fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.reads_left = MAX_READS;
        self.out_of_reads = false;
        loop {
            let now = self.rt.now();
            let mut progress = self.poll_commands(cx, now);
            progress |= self.poll_read(cx, now);
            progress |= self.drain(now);
            if self.poll_answers(cx, now) {
                // Their responses join this round's write.
                progress = true;
                self.drain(now);
            }
            if self.yield_before_write() {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            progress |= self.poll_write(cx, now);
            // Done once the last bytes are out and no request can arrive any
            // more (or the linger deadline below passed).
            if self.endpoint.is_closed() && self.wpos == self.wbuf.len() && !self.requests_open {
                if self.drain(now) {
                    continue; // output held back by WRITE_LIMIT
                }
                return Poll::Ready(());
            }
            let deadline = match self.linger {
                Some(t) => Some(t),
                None => {
                    let session = self.endpoint.poll_timeout();
                    // Deadlines only move later while busy (`active_at`
                    // advances), so this re-arms the timer at most once a
                    // `QUIET` under load.
                    let quiet = self.holding.then(|| self.active_at + QUIET);
                    match (session, quiet) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    }
                }
            };
            if let Some(at) = deadline {
                // Re-arm only for an earlier deadline: deadlines mostly move
                // later (responses arrive), and an early wake-up is a no-op.
                if self.timer_at.is_none_or(|armed| at < armed) {
                    self.rt.reset_timer(at);
                    self.timer_at = Some(at);
                }
                if self.rt.poll_timer(cx).is_ready() {
                    self.timer_at = None;
                    let now = self.rt.now();
                    match self.linger {
                        Some(linger) if now >= linger => return Poll::Ready(()),
                        Some(_) => {}
                        None => {
                            self.endpoint.handle_timeout(now);
                            if self.holding && now >= self.active_at + QUIET {
                                self.shrink();
                            }
                        }
                    }
                    progress = true;
                }
            }
            if !progress {
                if self.out_of_reads {
                    // More input may wait, unread: come back after the others.
                    cx.waker().wake_by_ref();
                }
                return Poll::Pending;
            }
        }
    }

    fn poll_commands(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut progress = self.endpoint.flush(now);
        while self.commands_open {
            match self.rt.poll_command(cx) {
                Poll::Ready(Some(c)) => {
                    if let Some(answer) = self.endpoint.command(now, c) {
                        self.rt.immediate(answer);
                    }
                }
                Poll::Ready(None) => self.commands_open = false,
                Poll::Pending => break,
            }
            progress = true;
        }
        if self.endpoint.is_closed() {
            // After the session closed, a sender may still get a request into
            // the channel (tokio's bounded channel lets a sender that already
            // holds a permit push after `close()`, and keeps a value pushed
            // after the receiver is gone until every sender is gone:
            // tokio#7714). Receive until the channel says no more can come,
            // failing each, so no caller waits forever.
            while self.requests_open {
                match self.rt.poll_request(cx) {
                    Poll::Ready(Some((_, reply))) => self.rt.done(reply, Err(Failure::Closed)),
                    Poll::Ready(None) => self.requests_open = false,
                    Poll::Pending => break,
                }
                progress = true;
            }
        }
        // Pull requests only while the window has room: the rest wait in the
        // adapter's bounded channel, and their senders with them.
        while self.requests_open && self.endpoint.wants_requests() {
            match self.rt.poll_request(cx) {
                Poll::Ready(Some((body, reply))) => {
                    self.endpoint.request(now, body, reply);
                    self.pulled = true;
                }
                Poll::Ready(None) => self.requests_open = false,
                Poll::Pending => break,
            }
            progress = true;
        }
        if !self.requests_open && !self.commands_open && !self.released {
            // Every handle is gone: nobody can use the session any more.
            self.released = true;
            self.endpoint.release(now);
            progress = true;
        }
        progress
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut progress = false;
        loop {
            if self.rpos < self.rend {
                let end = self.rend.min(self.rpos + self.slice());
                let n = self.endpoint.handle_input(now, &self.rbuf[self.rpos..end]);
                self.rpos += n;
                progress |= n > 0;
                if self.rpos == end && end < self.rend {
                    return progress; // write what this slice produced, then the next
                }
                if self.rpos < self.rend || self.endpoint.is_closed() {
                    return progress; // blocked: drain, answer, then offer the rest again
                }
            }
            if self.eof || self.endpoint.is_input_blocked() {
                return progress;
            }
            if self.rend == self.rbuf.len() && self.rend < READ_BUF && !self.rbuf.is_empty() {
                // The last read filled it (all handled by now): busy, so a
                // larger one.
                self.rbuf = vec![0; (self.rend * 2).min(READ_BUF)].into_boxed_slice();
                (self.rpos, self.rend) = (0, 0);
            }
            if self.reads_left == 0 {
                self.out_of_reads = true;
                return progress;
            }
            self.reads_left -= 1;
            let read = if self.rbuf.is_empty() {
                // Quiet, no buffer held: a small one on the stack, and the
                // read chunk back only once input comes.
                let mut probe = [0u8; READ_PROBE];
                let read = self.io.poll_read(cx, &mut probe);
                if let Poll::Ready(Ok(n)) = read {
                    if n > 0 {
                        let mut rbuf = vec![0; READ_BUF_FIRST].into_boxed_slice();
                        rbuf[..n].copy_from_slice(&probe[..n]);
                        self.rbuf = rbuf;
                    }
                }
                read
            } else {
                self.io.poll_read(cx, &mut self.rbuf)
            };
            match read {
                Poll::Pending => return progress,
                Poll::Ready(Ok(n)) if n > 0 => {
                    (self.rpos, self.rend) = (0, n);
                    self.slicing.read(now, n);
                    self.active_at = now;
                    self.holding = true;
                }
                Poll::Ready(result) => {
                    if let Err(e) = result {
                        self.rt.io_failed(&e);
                    }
                    self.eof = true;
                    self.endpoint.handle_eof(now);
                    return true;
                }
            }
        }
    }

    /// Quiet for [`QUIET`]: gives back the read chunk (when all of it was
    /// handled), the write buffer (when all of it went out) and the
    /// session's empty queues.
    /// What is still in use stays; the next read or write starts the
    /// count again.
    fn shrink(&mut self) {
        if self.rpos == self.rend {
            self.rbuf = Box::default();
            (self.rpos, self.rend) = (0, 0);
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf = Vec::new();
            self.wpos = 0;
        }
        self.endpoint.shrink();
        self.rt.shrink();
        self.holding = false;
    }

    /// Whether to let the other tasks run once before this write (a
    /// self-wake requeues this one behind them): requests of the application
    /// just came in, and the last yield grew the batch, so that theirs may
    /// join it too.
    fn yield_before_write(&mut self) -> bool {
        let fresh = self.wpos == 0 && !self.wbuf.is_empty();
        let grew = self.yields == 0
            || (self.wbuf.len() > self.wlen_at_yield && self.wbuf.len() < BATCH_TARGET);
        let pulled = std::mem::take(&mut self.pulled);
        if fresh && !grew && self.yields < MAX_YIELDS {
            // The last yield added nothing: stop yielding for a while.
            self.skip_yields = SKIP_YIELDS;
        }
        let may_yield = self.skip_yields == 0 && self.yields < MAX_YIELDS;
        if fresh && pulled && grew && may_yield && !self.endpoint.is_closed() {
            self.yields += 1;
            self.wlen_at_yield = self.wbuf.len();
            return true;
        }
        false
    }

    /// Octets of the current read (`rbuf[..rend]`) handled per slice.
    fn slice(&self) -> usize {
        let n = self.rend;
        if self.slicing.on && n > 2 * MIN_SLICE {
            // Rounded up: a remainder would make a slice of its own.
            n.div_ceil(SLICES).max(MIN_SLICE)
        } else {
            n
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
                Output::Done(reply, result) => self.rt.done(reply, result),
                Output::Incoming(Incoming::Request(pdu)) => match self.rt.answer_now(&pdu, now) {
                    Some(Answered::Now(status, body)) => {
                        // Refused only once closed: nobody to answer then.
                        let seq = pdu.sequence_number;
                        let _ = self.endpoint.respond(now, seq, status, body);
                    }
                    Some(Answered::Later) => {}
                    None => self.deliver(now, Incoming::Request(pdu)),
                },
                Output::Incoming(item) => self.deliver(now, item),
                Output::Closed(reason) => {
                    self.linger = Some(now + LINGER);
                    self.io.linger(now + LINGER);
                    self.rt.closed(reason);
                }
                Output::Event(event) => self.rt.event(event),
            }
        }
        self.rt.routed();
        progress
    }

    /// Sends the answers the host took for later that are ready now.
    fn poll_answers(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut progress = false;
        while let Poll::Ready((seq, status, body)) = self.rt.poll_answer(cx) {
            // Refused only once closed: nobody to answer then.
            let _ = self.endpoint.respond(now, seq, status, body);
            progress = true;
        }
        progress
    }

    /// Hands a peer request to the application; when nobody listens any
    /// more, it is answered as a dropped request would be.
    fn deliver(&mut self, now: Instant, item: Incoming) {
        if let Err(item) = self.rt.deliver(item) {
            self.endpoint.answer_default(now, item);
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        if self.wpos < self.wbuf.len() {
            match self.io.poll_write(cx, &self.wbuf[self.wpos..]) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    self.wpos += n;
                    self.active_at = now;
                    self.holding = true;
                    self.yields = 0;
                    self.skip_yields = self.skip_yields.saturating_sub(1);
                    self.flush = true;
                    return true;
                }
                Poll::Pending => return false,
                Poll::Ready(result) => {
                    if let Err(e) = result {
                        self.rt.io_failed(&e);
                    }
                    self.wbuf.clear();
                    self.wpos = 0;
                    let now = self.rt.now();
                    self.endpoint.handle_eof(now);
                    return true;
                }
            }
        }
        // TLS keeps records until flushed; plain TCP flushes at once.
        if self.flush && self.io.poll_flush(cx).is_ready() {
            self.flush = false;
        }
        false
    }
}

#[cfg(test)]
mod tests;
