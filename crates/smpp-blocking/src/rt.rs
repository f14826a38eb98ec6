//! Threads as an [`smpp_async::Runtime`]: every task is a thread running
//! [`block_on`], which parks until woken or until the earliest deadline of
//! the timers polled on that thread (then wakes those timers' wakers), and
//! sockets are `std::net`: a reader thread per connection reads, the
//! connection's thread writes in place.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::{poll_fn, Future};
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::pin::{pin, Pin};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use futures_core::Stream;
use smpp_async::Transport;
use smpp_async::{Connect, Io, Runtime};

use crate::wire::Wire;

/// Read chunk; several PDUs per read under load.
const READ_BUF: usize = 64 * 1024;
/// Read buffers in circulation between the reader and the connection's
/// thread: the reader waits for a free one, so unread input stays bounded.
const READ_BUFFERS: usize = 2;
/// How long one write may block (a peer that stopped reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

thread_local! {
    /// The timers waiting on this thread: (deadline, number) -> whom to wake then.
    static TIMERS: RefCell<BTreeMap<(Instant, u64), Waker>> = const { RefCell::new(BTreeMap::new()) };
    static NEXT_TIMER: Cell<u64> = const { Cell::new(0) };
    /// Unparks this thread (made once per thread, not per blocking call).
    static WAKER: Waker = Waker::from(Arc::new(Unpark(thread::current())));
}

/// Wakes a parked thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to its end on this thread: parks between polls, until
/// woken or until the earliest deadline of this thread's timers, whose
/// wakers it wakes once due (so a timer inside any combinator fires).
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let waker = WAKER.with(Waker::clone);
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        match TIMERS.with_borrow(|t| t.keys().next().map(|&(at, _)| at)) {
            Some(at) => thread::park_timeout(at.saturating_duration_since(Instant::now())),
            None => thread::park(),
        }
        let now = Instant::now();
        let due = |t: &mut BTreeMap<(Instant, u64), Waker>| {
            let first = t.first_entry().filter(|e| e.key().0 <= now);
            first.map(|e| e.remove())
        };
        while let Some(waker) = TIMERS.with_borrow_mut(due) {
            waker.wake();
        }
    }
}

/// A deadline; registered with this thread's [`block_on`] while it waits.
#[derive(Debug, Default)]
pub(crate) struct Timer {
    at: Option<Instant>,
    key: Option<(Instant, u64)>,
}

impl Timer {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(at) = self.at else {
            return Poll::Pending;
        };
        if Instant::now() >= at {
            self.unregister();
            return Poll::Ready(());
        }
        TIMERS.with_borrow_mut(|timers| {
            let same = self.key.filter(|k| k.0 == at);
            if let Some(waker) = same.and_then(|k| timers.get_mut(&k)) {
                waker.clone_from(cx.waker()); // a no-op for the same waker
                return;
            }
            if let Some(old) = self.key.take() {
                timers.remove(&old);
            }
            let key = (at, NEXT_TIMER.replace(NEXT_TIMER.get().wrapping_add(1)));
            timers.insert(key, cx.waker().clone());
            self.key = Some(key);
        });
        Poll::Pending
    }

    fn unregister(&mut self) {
        if let Some(key) = self.key.take() {
            let _ = TIMERS.try_with(|t| t.borrow_mut().remove(&key));
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// Threads and `std::net`: the blocking adapter's runtime. Its timers fire
/// only inside [`block_on`] (every blocking call of this crate).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Threads;

impl Runtime for Threads {
    type Timer = Timer;
    type Tcp = TcpStream;
    type Listener = Listener;

    fn timer() -> Timer {
        Timer::default()
    }

    fn reset_timer(timer: &mut Timer, at: Instant) {
        timer.at = Some(at);
    }

    fn poll_timer(timer: &mut Timer, cx: &mut Context<'_>) -> Poll<()> {
        timer.poll(cx)
    }

    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send {
        let mut timer = Timer {
            at: Some(Instant::now() + duration),
            key: None,
        };
        poll_fn(move |cx| timer.poll(cx))
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        let spawned = thread::Builder::new()
            .name("smpp".into())
            .spawn(move || block_on(task));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a thread");
        }
    }

    fn accept(
        listener: &Listener,
    ) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send {
        let closed = || {
            Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "listener closed",
            ))
        };
        async move { listener.accepted.recv().await.unwrap_or_else(|_| closed()) }
    }

    fn local_addr(listener: &Listener) -> io::Result<SocketAddr> {
        Ok(listener.addr)
    }

    fn prepare(tcp: &TcpStream) -> io::Result<SocketAddr> {
        tcp.set_nodelay(true)?;
        tcp.peer_addr()
    }
}

impl<A: ToSocketAddrs> Connect<A> for Threads {
    /// Connects on a thread of its own (each address within `limit`), so
    /// that the caller's timeout holds.
    fn connect(addr: A, limit: Duration) -> impl Future<Output = io::Result<TcpStream>> + Send {
        let (tx, rx) = futures_channel::oneshot::channel();
        let addrs = addr.to_socket_addrs().map(Iterator::collect::<Vec<_>>);
        let started = addrs.and_then(|addrs| {
            let connect = move || drop(tx.send(connect_any(&addrs, limit)));
            thread::Builder::new()
                .name("smpp-connect".into())
                .spawn(connect)
        });
        async move {
            started?;
            let ended = || Err(io::Error::other("connecting thread ended"));
            rx.await.unwrap_or_else(|_| ended())
        }
    }

    fn listen(addr: A) -> impl Future<Output = io::Result<Listener>> + Send {
        std::future::ready(Listener::bind(addr))
    }
}

impl Io<TcpStream> for Threads {
    type Transport = Socket;

    fn transport(tcp: TcpStream) -> Socket {
        Socket::new(Wire::plain(tcp))
    }
}

/// The first of `addrs` that answers, each tried for at most `limit`.
fn connect_any(addrs: &[SocketAddr], limit: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address");
    for addr in addrs {
        match TcpStream::connect_timeout(addr, limit) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A listening socket; a thread accepts on it and hands connections over.
#[derive(Debug)]
pub(crate) struct Listener {
    addr: SocketAddr,
    accepted: async_channel::Receiver<io::Result<(TcpStream, SocketAddr)>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Listener {
    fn bind(addr: impl ToSocketAddrs) -> io::Result<Listener> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let (tx, accepted) = async_channel::bounded(1);
        let accept = move || loop {
            let next = listener.accept();
            let failed = next.is_err();
            if tx.send_blocking(next).is_err() {
                return; // the listener is gone: stop listening
            }
            if failed {
                thread::sleep(Duration::from_millis(50)); // out of descriptors: do not spin
            }
        };
        let acceptor = thread::Builder::new()
            .name("smpp-accept".into())
            .spawn(accept)?;
        Ok(Listener {
            addr,
            accepted,
            acceptor: Some(acceptor),
        })
    }
}

impl Drop for Listener {
    /// Wakes the accepting thread with a connection of our own and waits
    /// for it to close the socket.
    fn drop(&mut self) {
        self.accepted.close();
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(_) => drop(self.acceptor.take().map(JoinHandle::join)),
            // The thread (and the port) stay until a connection comes.
            Err(e) => tracing::warn!(%addr, error = %e, "cannot wake the accepting thread"),
        }
    }
}

/// A connection as the driver's byte stream: a reader thread reads into
/// buffers it hands over; writes block the connection's thread (up to the
/// write timeout).
#[derive(Debug)]
pub(crate) struct Socket {
    wire: Wire,
    /// Read buffers from the reader thread (started at the first read).
    input: Option<Pin<Box<async_channel::Receiver<Vec<u8>>>>>,
    /// Where consumed buffers go back to the reader.
    free: Option<SyncSender<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
    closed: bool,
}

impl Socket {
    pub(crate) fn new(wire: Wire) -> Socket {
        wire.set_write_timeout(WRITE_TIMEOUT);
        Socket {
            wire,
            input: None,
            free: None,
            chunk: Vec::new(),
            pos: 0,
            closed: false,
        }
    }

    /// Starts the reader thread; plaintext that came with a TLS handshake is read first.
    fn start(&mut self) -> io::Result<()> {
        let reader = self.wire.reader()?;
        let (tx, input) = async_channel::bounded(READ_BUFFERS);
        let (free, free_rx) = sync_channel(READ_BUFFERS);
        for _ in 0..READ_BUFFERS {
            let _ = free.send(vec![0; READ_BUF]);
        }
        thread::Builder::new()
            .name("smpp-read".into())
            .spawn(move || read_loop(reader, &tx, &free_rx))?;
        self.input = Some(Box::pin(input));
        self.free = Some(free);
        self.wire.buffered(&mut self.chunk)
    }
}

/// Reads into free buffers and hands them over until the end of the
/// stream, an error, or the connection is gone.
fn read_loop(mut stream: TcpStream, tx: &async_channel::Sender<Vec<u8>>, free: &Receiver<Vec<u8>>) {
    while let Ok(mut buf) = free.recv() {
        buf.resize(READ_BUF, 0);
        let n = loop {
            match stream.read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "read failed");
                    break 0;
                }
                Ok(n) => break n,
            }
        };
        buf.truncate(n);
        // At the end of the stream the channel closes with this thread.
        if n == 0 || tx.send_blocking(buf).is_err() {
            return;
        }
    }
}

impl Transport for Socket {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if self.input.is_none() {
            self.start()?;
        }
        loop {
            if self.pos < self.chunk.len() {
                let n = buf.len().min(self.chunk.len() - self.pos);
                buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
                self.pos += n;
                return Poll::Ready(Ok(n));
            }
            let input = self.input.as_mut().map(|i| i.as_mut());
            let Some(raw) = std::task::ready!(input.map_or(Poll::Ready(None), |i| i.poll_next(cx)))
            else {
                return Poll::Ready(Ok(0));
            };
            self.pos = 0;
            self.chunk.clear();
            let old = if self.wire.decrypt(&raw, &mut self.chunk)? {
                raw // plaintext was appended to our chunk
            } else {
                std::mem::replace(&mut self.chunk, raw)
            };
            if let Some(free) = &self.free {
                let _ = free.try_send(old);
            }
        }
    }

    fn poll_write(&mut self, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.wire.write_all(buf).map(|()| buf.len()))
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// A write that makes no progress for the session's response timeout
    /// fails (the peer stopped reading): the connection ends instead of
    /// holding its thread, and with it the session's timers, for
    /// [`WRITE_TIMEOUT`].
    fn stall_limit(&mut self, limit: Duration) {
        let limit = limit.clamp(Duration::from_millis(100), WRITE_TIMEOUT);
        self.wire.set_write_timeout(limit);
    }

    /// Sends TLS's close_notify and shuts the socket down (which ends the reader).
    /// Later writes (and close_notify) block at most until `until`.
    fn linger(&mut self, until: Instant) {
        let left = until.saturating_duration_since(Instant::now());
        self.wire
            .set_write_timeout(left.max(Duration::from_millis(1)));
    }

    fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !std::mem::replace(&mut self.closed, true) {
            self.wire.close();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if !self.closed {
            self.wire.close();
        }
    }
}
