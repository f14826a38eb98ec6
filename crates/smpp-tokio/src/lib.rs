//! Tokio adapter for [`smpp_proto`]: an SMPP [`Client`] (ESME) and
//! [`Server`] (MC) over TCP, or any `AsyncRead + AsyncWrite` stream (TLS).
//!
//! This crate is [`smpp_async`] (the client and server written once for
//! every async runtime) with tokio plugged in: [`Tokio`] spawns its tasks,
//! arms its timers and opens its sockets, and the types here are aliases
//! (`Client` is `smpp_async::Client<Tokio>`).
//!
//! All protocol logic lives in the sans-IO [`Session`](smpp_proto::session::Session).
//! Each connection is one tokio task that owns the stream and the session and
//! follows its run loop: after any input or command it drains `poll_transmit`
//! into one buffered write, then routes `poll_event` (responses to the
//! waiting callers, peer requests to [`Inbound`] or the server's [`Handler`]),
//! then arms one timer at `poll_timeout`. The session answers
//! `enquire_link` and `unbind`, sends keepalives, enforces the windows and
//! the timers; this crate only moves bytes.
//!
//! With the `tls` feature, `Client::connect_tls` and `Server::run_tls`
//! speak TLS through rustls (ring provider); any other stream works through
//! [`Client::bind_over`] and [`Server::run_with`].
//!
//! Requests beyond the outbound window wait (they are not refused) in a
//! bounded channel until the session has room. Every request resolves
//! exactly once, and when the connection dies every waiting call returns
//! [`Error::Closed`] (or the session's failure).
//!
//! Outbind (an MC-initiated session): the MC side calls
//! [`ServerHandle::outbind`]; the ESME side accepts with [`OutbindListener`]
//! (or [`Client::accept_outbind`] on its own stream), checks the MC's
//! credentials, and binds back as a receiver (or transceiver).
//!
//! The runtime-agnostic parts live in [`smpp_async`] (the poll loop,
//! handler traits, flow control, [`Error`]; shared with `smpp-smol` and the
//! blocking adapter) and in the sans-IO [`smpp_proto::endpoint`] (request
//! correlation, the window-wait queue, commands).
//!
//! [`ReconnectingClient`] keeps one bind up; [`Pool`] spreads requests over
//! several, optionally under flow control ([`PoolConfig`]): a TPS limit for
//! the whole pool, and members paused (and requests retried) when the MC
//! answers `ESME_RTHROTTLED` or `ESME_RMSGQFUL`.
//!
//! # Example: an SMSC and an ESME over loopback
//!
//! ```
//! use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp};
//! use smpp_proto::session::{BindKind, CloseReason, SessionConfig};
//! use smpp_tokio::{Client, Connection, Handler, Server, ServerConfig};
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
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind("127.0.0.1:0", Smsc, ServerConfig::default()).await?;
//! let addr = server.local_addr()?;
//! let control = server.handle();
//! let serving = tokio::spawn(server.run());
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
//! serving.await??;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use smpp_async::Transport;
use smpp_async::{Connect, Io, Runtime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::time::Sleep;

#[cfg(feature = "tls")]
mod tls;

/// The TLS crates this adapter is built on (feature `tls`), for building configurations.
#[cfg(feature = "tls")]
pub use smpp_async::tls_client_config;
#[cfg(feature = "tls")]
pub use tokio_rustls::{self, rustls};

pub use smpp_async::{
    Accepted, Answer, Backoff, Connection, Error, Handler, Inbound, InboundRequest, MemberState,
    MemberStatus, Order, PoolConfig, ServerConfig, SoonAnswer,
};

/// A bound ESME session ([`smpp_async::Client`] on tokio).
pub type Client = smpp_async::Client<Tokio>;
/// An SMPP server (MC) ([`smpp_async::Server`] on tokio).
pub type Server<H> = smpp_async::Server<Tokio, H>;
/// Finds a [`Server`]'s connections and shuts it down.
pub type ServerHandle = smpp_async::ServerHandle<Tokio>;
/// ESME: a listener for MC-initiated sessions (outbind).
pub type OutbindListener = smpp_async::OutbindListener<Tokio>;
/// A [`Client`] that reconnects whenever its session ends.
pub type ReconnectingClient = smpp_async::ReconnectingClient<Tokio>;
/// N reconnecting binds used in turn, with optional flow control.
pub type Pool = smpp_async::Pool<Tokio>;

/// Tokio as an [`smpp_async::Runtime`]: `tokio::spawn`, `tokio::time` and
/// `tokio::net` (call from within a tokio runtime).
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

impl Runtime for Tokio {
    type Timer = Pin<Box<Sleep>>;
    type Tcp = TcpStream;
    type Listener = TcpListener;

    fn timer() -> Self::Timer {
        Box::pin(tokio::time::sleep(Duration::ZERO))
    }

    #[inline]
    fn reset_timer(timer: &mut Self::Timer, at: Instant) {
        timer.as_mut().reset(at.into());
    }

    #[inline]
    fn poll_timer(timer: &mut Self::Timer, cx: &mut Context<'_>) -> Poll<()> {
        timer.as_mut().poll(cx)
    }

    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(duration)
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
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

impl<A: ToSocketAddrs + Send> Connect<A> for Tokio {
    fn connect(addr: A, _: Duration) -> impl Future<Output = io::Result<TcpStream>> + Send {
        TcpStream::connect(addr)
    }

    fn listen(addr: A) -> impl Future<Output = io::Result<TcpListener>> + Send {
        TcpListener::bind(addr)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io<S> for Tokio {
    type Transport = Stream<S>;

    fn transport(stream: S) -> Stream<S> {
        Stream(stream)
    }
}

/// A tokio stream as the connection driver's byte stream.
#[derive(Debug)]
pub struct Stream<S>(S);

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

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
