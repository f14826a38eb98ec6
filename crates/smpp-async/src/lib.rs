//! The async SMPP [`Client`] (ESME) and [`Server`] (MC), written once for
//! every async runtime: `smpp-tokio` and `smpp-smol` (smol, async-std) are
//! this crate with their [`Runtime`] plugged in, under type aliases
//! (`smpp_tokio::Client` is `Client<smpp_tokio::Tokio>`). Use those crates;
//! this one is for writing another adapter.
//!
//! All protocol logic lives in the sans-IO [`Session`](smpp_proto::session::Session)
//! and its request layer [`smpp_proto::endpoint`]; this crate is the runtime
//! side. Each connection is one task that owns the stream and runs the
//! endpoint's poll loop (the crate-private driver): after any input or
//! command it drains `poll_transmit` into one buffered write, routes
//! responses to the waiting callers and peer requests to [`Inbound`] or the
//! server's [`Handler`], then arms one timer at `poll_timeout`.
//!
//! A runtime supplies only what differs between runtimes: spawning a task,
//! a timer, TCP, and wrapping its streams as a
//! [`Transport`]. The channels
//! (`async-channel`, `futures-channel`) work on any executor.
//!
//! Requests beyond the outbound window wait (they are not refused) in a
//! bounded channel until the session has room. Every request resolves
//! exactly once, and when the connection dies every waiting call returns
//! [`Error::Closed`] (or the session's failure).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub use crate::drive::Transport;

mod client;
mod drive;
mod driver;
mod error;
mod flow;
mod handle;
mod handler;
mod inbound;
mod reconnect;
mod send_check;
mod server;
#[cfg(feature = "tls")]
mod tls;

pub use crate::error::Error;
pub use client::{Client, Inbound, InboundRequest, OutbindListener};
pub use handler::{BlockingHandler, ConnectionInfo};
pub use reconnect::{Backoff, Pool, PoolConfig, ReconnectingClient};
pub use server::{Answer, Connection, Handler, Server, ServerConfig, ServerHandle};
#[cfg(feature = "tls")]
pub use tls::Tls;

/// What an async runtime gives the client and server: tasks, a timer and
/// TCP. Implemented by a unit type of the adapter (`smpp_tokio::Tokio`).
pub trait Runtime: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// A re-armable timer (one per connection).
    type Timer: Send + Unpin + 'static;
    /// A TCP stream.
    type Tcp: Send + Unpin + 'static;
    /// A TCP listener.
    type Listener: std::fmt::Debug + Send + Sync + 'static;

    /// A timer that has not been armed.
    fn timer() -> Self::Timer;
    /// Arms `timer` to fire at `at`.
    fn reset_timer(timer: &mut Self::Timer, at: Instant);
    /// Ready once the armed time has passed.
    fn poll_timer(timer: &mut Self::Timer, cx: &mut Context<'_>) -> Poll<()>;
    /// Completes after `duration`.
    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send;
    /// Runs `task` on its own (detached: nobody awaits it).
    fn spawn(task: impl Future<Output = ()> + Send + 'static);
    /// The next connection on `listener`.
    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Tcp, SocketAddr)>> + Send;
    /// The address `listener` listens on.
    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr>;
    /// Turns Nagle off (SMPP is request/response) and returns the peer's address.
    fn prepare(tcp: &Self::Tcp) -> io::Result<SocketAddr>;
}

/// Connecting to and listening on addresses of type `A` (the runtime's
/// own "to socket addresses" trait).
pub trait Connect<A>: Runtime {
    /// Opens a TCP connection to `addr`. The caller gives up after
    /// `limit`; a runtime whose connect cannot be abandoned (a blocking
    /// one) bounds each attempt by it.
    fn connect(addr: A, limit: Duration) -> impl Future<Output = io::Result<Self::Tcp>> + Send;
    /// Listens on `addr`.
    fn listen(addr: A) -> impl Future<Output = io::Result<Self::Listener>> + Send;
}

/// Streams of type `S` (the runtime's TCP stream, a TLS stream, a test
/// pipe...) as the connection driver's byte stream.
pub trait Io<S>: Runtime {
    /// The wrapped stream.
    type Transport: Transport + Send + 'static;
    /// Wraps `stream`.
    fn transport(stream: S) -> Self::Transport;
}

/// `value`, or `None` when `limit` passes first.
async fn timeout<R: Runtime, T>(limit: Duration, value: impl Future<Output = T>) -> Option<T> {
    let expired = async {
        R::sleep(limit).await;
        None
    };
    futures_lite::future::or(async { Some(value.await) }, expired).await
}
