//! futures-io adapter for [`smpp_proto`]: an SMPP [`Client`] (ESME) and
//! [`Server`] (MC) over TCP, or any futures-io `AsyncRead + AsyncWrite`
//! stream, that runs on [smol](https://docs.rs/smol) and on
//! [async-std](https://docs.rs/async-std) alike. Its API has the shape of
//! `smpp-tokio`'s: the same names, the same [`Error`].
//!
//! This crate is [`smpp_async`] (the client and server written once for
//! every async runtime) with async-io, async-net and async-global-executor
//! plugged in as [`Smol`]; the types here are aliases (`Client` is
//! `smpp_async::Client<Smol>`), shared in code with `smpp-tokio`.
//!
//! All protocol logic lives in the sans-IO [`Session`](smpp_proto::session::Session).
//! Each connection is one task that owns the stream and the session and
//! follows its run loop: after any input or command it drains `poll_transmit`
//! into one buffered write, then routes `poll_event` (responses to the
//! waiting callers, peer requests to [`Inbound`] or the server's [`Handler`]),
//! then arms one timer (`async_io::Timer`) at `poll_timeout`. The session
//! answers `enquire_link` and `unbind`, sends keepalives, enforces the
//! windows and the timers; this crate only moves bytes.
//!
//! # Runtimes
//!
//! Sockets and timers come from `async-io` (`async-net`), whose reactor is
//! global and runs on its own: it serves smol, async-std (which is built on
//! it) and any other executor. Channels are `async-channel`,
//! `futures-channel` and `oneshot`, which need no runtime either.
//!
//! The connection tasks (one per connection, plus one per server connection
//! for its handler) are spawned on `async-global-executor`, the executor
//! that `async_std::task::spawn` uses. Under async-std they share its
//! threads; under smol (or `futures::executor`, or any `block_on`) they run
//! on that executor's own threads, while your code runs wherever you await
//! it. So nothing here needs to be given a spawner, and no call depends on
//! which executor polls it. [`Server::run`] itself is a plain future: await
//! it or spawn it on your executor.
//!
//! With the `tls` feature, `Client::connect_tls` and `Server::run_tls`
//! speak TLS through rustls (`futures-rustls`, ring provider); any other
//! stream works through [`Client::bind_over`] and [`Server::run_with`].
//!
//! Requests beyond the outbound window wait (they are not refused) in a
//! bounded channel until the session has room. Every request resolves
//! exactly once, and when the connection dies every waiting call returns
//! [`Error::Closed`] (or the session's failure).
//!
//! # Example: an SMSC and an ESME over loopback
//!
//! ```
//! use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp};
//! use smpp_proto::session::{BindKind, CloseReason, SessionConfig};
//! use smpp_smol::{Client, Connection, Handler, Server, ServerConfig};
//!
//! struct Smsc;
//!
//! impl Handler<Connection> for Smsc {
//!     async fn bind(&self, _: &Connection, _: BindKind, bind: &Bind) -> Result<(), CommandStatus> {
//!         if bind.password == "secret" { Ok(()) } else { Err(CommandStatus::INVALID_PASSWORD) }
//!     }
//!
//!     async fn submit_sm(&self, _: &Connection, _: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
//!         Ok(SubmitSmResp { message_id: "5F3A".into(), ..Default::default() })
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # smol::block_on(async {
//! let server = Server::bind("127.0.0.1:0", Smsc, ServerConfig::default()).await?;
//! let addr = server.local_addr()?;
//! let control = server.handle();
//! let serving = smol::spawn(server.run());
//!
//! let bind = Bind { system_id: "esme01".into(), password: "secret".into(), ..Default::default() };
//! let config = SessionConfig::default().with_max_in_flight(64);
//! let (client, _inbound) = Client::connect(addr, BindKind::Transceiver, bind, config).await?;
//! let submit = SubmitSm {
//!     source_addr: "447700900123".into(),
//!     destination_addr: "447700900456".into(),
//!     short_message: "Hello".into(),
//!     ..Default::default()
//! };
//! assert_eq!(client.submit(submit).await?, "5F3A");
//!
//! client.unbind().await?; // waits for unbind_resp
//! assert_eq!(client.closed().await, CloseReason::Unbound);
//! control.shutdown(); // unbinds whoever is left, then `run` returns
//! serving.await?;
//! # Ok(()) })
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::Timer;
use async_net::{AsyncToSocketAddrs, TcpListener, TcpStream};
use futures_lite::{AsyncRead, AsyncWrite};
use smpp_async::Transport;
use smpp_async::{Connect, Io, Runtime};

#[cfg(feature = "tls")]
mod tls;

/// The TLS crates this adapter is built on (feature `tls`), for building configurations.
#[cfg(feature = "tls")]
pub use futures_rustls::{self, rustls};

pub use smpp_async::{
    Answer, Backoff, Connection, Error, Handler, Inbound, InboundRequest, MemberState,
    MemberStatus, Order, PoolConfig, ServerConfig, SoonAnswer,
};

/// A bound ESME session ([`smpp_async::Client`] on smol).
pub type Client = smpp_async::Client<Smol>;
/// An SMPP server (MC) ([`smpp_async::Server`] on smol).
pub type Server<H> = smpp_async::Server<Smol, H>;
/// Finds a [`Server`]'s connections and shuts it down.
pub type ServerHandle = smpp_async::ServerHandle<Smol>;
/// ESME: a listener for MC-initiated sessions (outbind).
pub type OutbindListener = smpp_async::OutbindListener<Smol>;
/// A [`Client`] that reconnects whenever its session ends.
pub type ReconnectingClient = smpp_async::ReconnectingClient<Smol>;
/// N reconnecting binds used in turn, with optional flow control.
pub type Pool = smpp_async::Pool<Smol>;

/// async-io's timers, async-net's sockets and `async-global-executor`'s
/// tasks as an [`smpp_async::Runtime`]: works under smol, async-std or any
/// other executor (see the crate docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct Smol;

impl Runtime for Smol {
    type Timer = Timer;
    type Tcp = TcpStream;
    type Listener = TcpListener;

    fn timer() -> Timer {
        Timer::never()
    }

    #[inline]
    fn reset_timer(timer: &mut Timer, at: Instant) {
        timer.set_at(at);
    }

    #[inline]
    fn poll_timer(timer: &mut Timer, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(timer).poll(cx).map(drop)
    }

    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send {
        let timer = Timer::after(duration);
        async move {
            timer.await;
        }
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        async_global_executor::spawn(task).detach();
    }

    fn accept(
        listener: &TcpListener,
    ) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send {
        listener.accept()
    }

    fn local_addr(listener: &TcpListener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    fn prepare(tcp: &TcpStream) -> io::Result<SocketAddr> {
        tcp.set_nodelay(true)?;
        tcp.peer_addr()
    }
}

impl<A: AsyncToSocketAddrs + Send> Connect<A> for Smol
where
    A::Iter: Send,
{
    fn connect(addr: A, _: Duration) -> impl Future<Output = io::Result<TcpStream>> + Send {
        TcpStream::connect(addr)
    }

    fn listen(addr: A) -> impl Future<Output = io::Result<TcpListener>> + Send {
        TcpListener::bind(addr)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io<S> for Smol {
    type Transport = Stream<S>;

    fn transport(stream: S) -> Stream<S> {
        Stream(stream)
    }
}

/// A futures-io stream as the connection driver's byte stream.
#[derive(Debug)]
pub struct Stream<S>(S);

impl<S: AsyncRead + AsyncWrite + Unpin> Transport for Stream<S> {
    #[inline]
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }

    #[inline]
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    #[inline]
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}
