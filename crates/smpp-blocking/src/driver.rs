//! The connection threads: an I/O thread owns the [`Session`] and the write
//! half of the socket, and only moves bytes, waits for one deadline and
//! routes events; a reader thread only reads bytes and hands them over.

use std::collections::VecDeque;
use std::io::Read;
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smpp_proto::endpoint::drive::log_event;
use smpp_proto::endpoint::handle::{check_request, CloseState, Ending};
use smpp_proto::endpoint::{Command, Endpoint, Immediate, Incoming, Output};
use smpp_proto::pdu::{Body, Pdu};
use smpp_proto::session::{CloseReason, Role, SessionConfig, Stats};

use crate::wire::Wire;
use crate::Error;

/// How a request of ours ends.
pub(crate) type Reply = SyncSender<Result<Pdu, Error>>;

/// Read chunk; several PDUs per read under load.
const READ_BUF: usize = 64 * 1024;
/// Read buffers in circulation between the reader and the I/O thread: the
/// reader waits for a free one, so unprocessed input stays bounded.
const READ_BUFFERS: usize = 2;
/// Encoded output gathered before one write.
const WRITE_LIMIT: usize = 256 * 1024;
/// How long one write may block (a peer that stopped reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a closed session may take to flush its last PDUs.
const LINGER: Duration = Duration::from_secs(2);

/// Everything the I/O thread is told.
///
/// The channel is unbounded, but bounded by construction: input is at most
/// the read buffers in circulation; each request and each command with a
/// reply has a caller blocked on it; a `Respond` answers one unanswered peer
/// request (at most the inbound window plus the incoming channel's slack);
/// `Close` and `Release` go at most once each per connection (flags in
/// the handle coalesce repeats).
pub(crate) enum Msg {
    /// Bytes read (in a buffer to hand back), or `None` at end of stream.
    Input(Option<Vec<u8>>),
    /// A request of the application; waits for window room.
    Request { body: Body, reply: Reply },
    /// Everything else a handle asks.
    Cmd(Cmd),
}

/// The commands of [`Msg::Cmd`].
pub(crate) type Cmd =
    Command<Reply, SyncSender<Result<(), Error>>, SyncSender<Result<Stats, Error>>>;

impl From<Cmd> for Msg {
    fn from(c: Cmd) -> Msg {
        Msg::Cmd(c)
    }
}

/// The sending side of a connection; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Handle {
    tx: Sender<Msg>,
    closed: Arc<CloseState>,
    ending: Arc<Ending>,
}

impl Handle {
    pub(crate) fn send(&self, msg: impl Into<Msg>) -> Result<(), Error> {
        self.tx.send(msg.into()).map_err(|_| Error::Closed)
    }

    /// Sends a request once the window has room, and waits for its response (any status).
    pub(crate) fn request_any(&self, body: Body) -> Result<Pdu, Error> {
        check_request(&body)?;
        self.call(|reply| Msg::Request { body, reply })
    }

    /// Sends a request or a command with a reply, and waits for the reply.
    pub(crate) fn call<T, M: Into<Msg>>(
        &self,
        make: impl FnOnce(SyncSender<Result<T, Error>>) -> M,
    ) -> Result<T, Error> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send(make(reply))?;
        rx.recv().map_err(|_| Error::Closed)?
    }

    pub(crate) fn close(&self) {
        if self.ending.close() {
            let _ = self.tx.send(Command::Close.into());
        }
    }

    pub(crate) fn release(&self) {
        if self.ending.release() {
            let _ = self.tx.send(Command::Release.into());
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get().is_some()
    }

    /// Blocks until the session has closed.
    pub(crate) fn closed(&self) -> CloseReason {
        self.closed.wait()
    }
}

/// Starts the connection's threads: `reader` reads, `wire` writes. The
/// returned join handle ends once the session is over and its threads are gone.
pub(crate) fn spawn(
    wire: Wire,
    reader: TcpStream,
    role: Role,
    config: Arc<SessionConfig>,
) -> std::io::Result<(Handle, Receiver<Incoming>, std::thread::JoinHandle<()>)> {
    reader.set_read_timeout(None)?;
    wire.set_write_timeout(WRITE_TIMEOUT);
    let (tx, rx) = mpsc::channel();
    let (free_tx, free_rx) = mpsc::sync_channel(READ_BUFFERS);
    for _ in 0..READ_BUFFERS {
        let _ = free_tx.send(vec![0; READ_BUF]);
    }
    // Requests in it are unanswered, so the session's inbound window bounds it.
    let (incoming, in_rx) = mpsc::sync_channel(config.max_inbound.max(1) + 8);
    let closed = Arc::new(CloseState::default());
    let input = tx.clone();
    let reader = std::thread::Builder::new()
        .name("smpp-read".into())
        .spawn(move || read_loop(reader, input, free_rx))?;
    let endpoint = Endpoint::new(role, config, Instant::now());
    let driver = Driver {
        wire,
        endpoint,
        rx,
        incoming,
        free: free_tx,
        input: VecDeque::new(),
        rpos: 0,
        eof: false,
        eof_seen: false,
        wbuf: Vec::new(),
        linger: None,
        closed: closed.clone(),
    };
    let io = std::thread::Builder::new()
        .name("smpp-io".into())
        .spawn(move || {
            driver.run();
            let _ = reader.join();
        })?;
    let ending = Arc::default();
    Ok((Handle { tx, closed, ending }, in_rx, io))
}

/// Reads into free buffers and hands them to the I/O thread until the end
/// of the stream, an error, or the I/O thread is gone.
fn read_loop(mut stream: TcpStream, tx: Sender<Msg>, free: Receiver<Vec<u8>>) {
    'buffers: while let Ok(mut buf) = free.recv() {
        buf.resize(READ_BUF, 0);
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break 'buffers,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Msg::Input(Some(buf))).is_err() {
                        return;
                    }
                    continue 'buffers;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "read failed");
                    break 'buffers;
                }
            }
        }
    }
    let _ = tx.send(Msg::Input(None));
}

struct Driver {
    wire: Wire,
    /// The session, our requests in flight and those waiting for window room.
    endpoint: Endpoint<Reply>,
    rx: Receiver<Msg>,
    incoming: SyncSender<Incoming>,
    /// Read buffers go back to the reader here once consumed.
    free: SyncSender<Vec<u8>>,
    /// Input not yet accepted by the session (the first from `rpos`).
    input: VecDeque<Vec<u8>>,
    rpos: usize,
    eof: bool,
    /// The session was told of the end of the stream.
    eof_seen: bool,
    wbuf: Vec<u8>,
    /// Closed: the deadline for flushing the last bytes.
    linger: Option<Instant>,
    closed: Arc<CloseState>,
}

impl Driver {
    fn run(mut self) {
        // Plaintext that came with the TLS handshake.
        let mut plain = Vec::new();
        match self.wire.buffered(&mut plain) {
            Ok(()) if !plain.is_empty() => self.input.push_back(plain),
            Ok(()) => {}
            Err(e) => {
                tracing::debug!(error = %e, "tls failed");
                self.endpoint.handle_eof(Instant::now());
            }
        }
        let mut msg = None;
        loop {
            let now = Instant::now();
            if let Some(m) = msg.take() {
                self.on_msg(now, m);
            }
            // Everything already waiting, then the session's run loop.
            while let Ok(m) = self.rx.try_recv() {
                self.on_msg(now, m);
            }
            self.turn();
            if self.endpoint.is_closed() {
                break;
            }
            // A deadline that passed fires now, however busy the channel is.
            let deadline = self.endpoint.poll_timeout();
            let now = Instant::now();
            if deadline.is_some_and(|at| at <= now) {
                self.endpoint.handle_timeout(now);
                continue;
            }
            let received = match deadline {
                Some(at) => self.rx.recv_timeout(at - now),
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match received {
                Ok(m) => msg = Some(m),
                Err(RecvTimeoutError::Timeout) => self.endpoint.handle_timeout(Instant::now()),
                // Every handle and the reader are gone: nobody can use the session.
                Err(RecvTimeoutError::Disconnected) => self.endpoint.close(Instant::now()),
            }
        }
        self.finish();
    }

    /// Feeds input, sends what waits for room, drains the session and
    /// writes; repeats while anything moved.
    fn turn(&mut self) {
        loop {
            // A write may block: read the clock each round.
            let now = Instant::now();
            let mut progress = self.feed(now);
            progress |= self.endpoint.flush(now);
            progress |= self.drain(now);
            if !self.wbuf.is_empty() {
                self.write(now);
                progress = true;
            }
            if !progress {
                return;
            }
        }
    }

    /// The session closed: flush the last bytes, stop the reader, and fail
    /// whatever is still waiting.
    fn finish(mut self) {
        self.linger = Some(Instant::now() + LINGER);
        let now = Instant::now();
        self.drain(now);
        if !self.wbuf.is_empty() {
            self.write(now);
        }
        self.wire.close();
        self.closed.set(CloseReason::Local);
        self.endpoint.abandon();
        self.route(now);
        // Requests sent after the close fail as their replies are dropped
        // with the channel; drop the ones already in it now (a dropped reply
        // reads as `Error::Closed`).
        while let Ok(m) = self.rx.try_recv() {
            drop(m);
        }
    }

    fn on_msg(&mut self, now: Instant, m: Msg) {
        match m {
            Msg::Input(Some(buf)) => {
                let mut plain = Vec::new();
                match self.wire.decrypt(&buf, &mut plain) {
                    Ok(false) => self.input.push_back(buf),
                    // Plaintext takes the read buffer's place in circulation.
                    Ok(true) => self.input.push_back(plain),
                    Err(e) => {
                        tracing::debug!(error = %e, "tls failed");
                        self.eof = true;
                    }
                }
                self.feed(now);
            }
            Msg::Input(None) => {
                self.eof = true;
                // Input still held is offered first; the end follows it.
                self.feed(now);
            }
            Msg::Request { body, reply } => self.endpoint.request(now, body, reply),
            Msg::Cmd(c) => match self.endpoint.command(now, c) {
                Some(Immediate::Sent(reply, sent)) => drop(reply.send(sent.map_err(Error::from))),
                Some(Immediate::Stats(reply, stats)) => drop(reply.send(Ok(stats))),
                _ => {}
            },
        }
    }

    /// Offers held input to the session; hands each buffer back once it is
    /// all taken; reports the end of the stream after the last of it.
    fn feed(&mut self, now: Instant) -> bool {
        let mut progress = false;
        while let Some(buf) = self.input.front() {
            if self.endpoint.is_closed() {
                self.input.clear();
                break;
            }
            let n = self.endpoint.handle_input(now, &buf[self.rpos..]);
            self.rpos += n;
            progress |= n > 0;
            if self.rpos < buf.len() {
                return progress; // blocked: drain, answer, then offer the rest again
            }
            self.rpos = 0;
            if let Some(buf) = self.input.pop_front() {
                let _ = self.free.try_send(buf);
            }
        }
        if self.eof && !self.eof_seen {
            self.eof_seen = true;
            self.endpoint.handle_eof(now);
            progress = true;
        }
        progress
    }

    /// Drains the session: transmit first, then events.
    fn drain(&mut self, now: Instant) -> bool {
        let mut progress = false;
        while self.wbuf.len() < WRITE_LIMIT {
            match self.endpoint.poll_transmit(now, &mut self.wbuf) {
                Some(_) => progress = true,
                None => break,
            }
        }
        progress | self.route(now)
    }

    /// Writes the gathered output (blocking, bounded by the write timeout,
    /// or by the linger once closed).
    fn write(&mut self, now: Instant) {
        if let Some(linger) = self.linger {
            let left = linger.saturating_duration_since(Instant::now());
            self.wire
                .set_write_timeout(left.max(Duration::from_millis(1)));
        }
        let result = self.wire.write_all(&self.wbuf);
        self.wbuf.clear();
        if let Err(e) = result {
            tracing::debug!(error = %e, "write failed");
            self.endpoint.handle_eof(now);
        }
    }

    /// Routes the endpoint's outputs; nothing here decides protocol.
    fn route(&mut self, now: Instant) -> bool {
        let mut progress = false;
        while let Some(output) = self.endpoint.poll_output() {
            progress = true;
            match output {
                Output::Done(reply, result) => drop(reply.send(result.map_err(Error::from))),
                // Nobody listens any more: answered as a dropped `InboundRequest` would be.
                Output::Incoming(item) => match self.incoming.try_send(item) {
                    Ok(()) => {}
                    Err(TrySendError::Full(item) | TrySendError::Disconnected(item)) => {
                        self.endpoint.answer_default(now, item)
                    }
                },
                Output::Closed(reason) => {
                    tracing::debug!(?reason, "session closed");
                    self.closed.set(reason);
                }
                Output::Event(event) => log_event(event),
                _ => {}
            }
        }
        progress
    }
}
