//! The async SMPP [`Client`] (ESME) and [`Server`] (MC), written once for
//! every async runtime: `smpp-tokio` and `smpp-smol` (smol, async-std) are
//! this crate with their [`Runtime`] plugged in, under type aliases
//! (`smpp_tokio::Client` is `Client<smpp_tokio::Tokio>`). Use those crates;
//! this one is for writing another adapter.
//!
//! Code written against [`Client<R>`](Client) runs on every runtime: here a
//! function that sends one message and unbinds, run on tokio against an
//! SMSC on loopback.
//!
//! ```
//! use smpp_async::{Client, Error, Runtime};
//! use smpp_proto::pdu::{Bind, COctetString, CommandStatus, SubmitSm, SubmitSmResp};
//! use smpp_proto::session::{BindKind, SessionConfig};
//!
//! async fn hello<R: Runtime>(client: Client<R>) -> Result<COctetString, Error> {
//!     let submit = SubmitSm {
//!         source_addr: "447700900123".into(),
//!         destination_addr: "447700900456".into(),
//!         short_message: "Hello".into(),
//!         ..Default::default()
//!     };
//!     let id = client.submit(submit).await?;
//!     client.unbind().await?; // waits for unbind_resp
//!     Ok(id)
//! }
//!
//! # use smpp_tokio::{Connection, Handler, Server, ServerConfig};
//! # struct Smsc;
//! # impl Handler<Connection> for Smsc {
//! #     async fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
//! #         Ok(())
//! #     }
//! #     async fn submit_sm(&self, _: &Connection, _: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
//! #         Ok(SubmitSmResp { message_id: "5F3A".into(), ..Default::default() })
//! #     }
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = Server::bind("127.0.0.1:0", Smsc, ServerConfig::default()).await?;
//! # let addr = server.local_addr()?;
//! # tokio::spawn(server.run());
//! let bind = Bind { system_id: "esme01".into(), password: "secret".into(), ..Default::default() };
//! // `smpp_tokio::Client` is `Client<smpp_tokio::Tokio>`.
//! let (client, _inbound) =
//!     smpp_tokio::Client::connect(addr, BindKind::Transceiver, bind, SessionConfig::default()).await?;
//! assert_eq!(hello(client).await?, "5F3A");
//! # Ok(()) }
//! ```
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
//! [`Transport`]. The channels (the crate's own between a connection's
//! handles and its task, `async-channel`, `futures-channel`) and events
//! (`event-listener`) work on any executor.
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
mod order;
mod queue;
mod reconnect;
mod send_check;
mod server;
#[cfg(feature = "tls")]
mod tls;

pub use crate::error::Error;
pub use client::{Client, Inbound, InboundRequest, OutbindListener};
pub use flow::Order;
pub use handler::{Accepted, BlockingHandler, ConnectionInfo};
pub use reconnect::{Backoff, MemberState, MemberStatus, Pool, PoolConfig, ReconnectingClient};
pub use server::{Answer, Connection, Handler, Server, ServerConfig, ServerHandle, SoonAnswer};
#[cfg(feature = "tls")]
pub use tls::{tls_client_config, Tls};

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
