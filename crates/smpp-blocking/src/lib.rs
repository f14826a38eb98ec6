//! Blocking adapter for [`smpp_proto`]: an SMPP [`Client`] (ESME) and
//! [`Server`] (MC) over `std::net` and threads, without an async runtime.
//!
//! All protocol logic lives in the sans-IO [`Session`](smpp_proto::session::Session),
//! and the client and server are [`smpp_async`]'s (the same code as
//! `smpp-tokio` and `smpp-smol`) run on threads: every task is a thread
//! that parks between polls and until its timer's deadline. Each
//! connection has one I/O thread that owns the session and writes to the
//! socket, and a reader thread that only reads bytes; a server connection
//! has one more thread for its [`Handler`]. The I/O thread follows the
//! session's run loop: after any input or command it drains
//! `poll_transmit` into one write, then routes the outputs (responses to
//! the waiting callers, peer requests to [`Inbound`] or the handler), then
//! waits for the next input or command at most until `poll_timeout`. The
//! session answers `enquire_link` and `unbind`, sends keepalives, enforces
//! the windows and the timers; this crate only moves bytes and blocks.
//!
//! With the `tls` feature, `Client::connect_tls` and `Server::run_tls`
//! speak TLS through rustls (ring provider): the handshake runs before the
//! session starts, then the I/O thread encrypts and decrypts in place.
//!
//! Calls block the calling thread. Requests beyond the outbound window wait
//! (they are not refused) until the session has room. Every request
//! resolves exactly once, and when the connection dies every waiting call
//! returns [`Error::Closed`] (or the session's failure).
//!
//! # Example: an SMSC and an ESME over loopback
//!
//! ```
//! use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp};
//! use smpp_proto::session::{BindKind, CloseReason, SessionConfig};
//! use smpp_blocking::{Client, Connection, Handler, Server, ServerConfig};
//!
//! struct Smsc;
//!
//! impl Handler<Connection> for Smsc {
//!     fn bind(&self, _: &Connection, _: BindKind, bind: &Bind) -> Result<(), CommandStatus> {
//!         if bind.password == "secret" { Ok(()) } else { Err(CommandStatus::INVALID_PASSWORD) }
//!     }
//!
//!     fn submit_sm(&self, _: &Connection, _: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
//!         Ok(SubmitSmResp { message_id: "5F3A".into(), ..Default::default() })
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind("127.0.0.1:0", Smsc, ServerConfig::default())?;
//! let addr = server.local_addr()?;
//! let control = server.handle();
//! let serving = std::thread::spawn(move || server.run());
//!
//! let bind = Bind { system_id: "esme01".into(), password: "secret".into(), ..Default::default() };
//! let config = SessionConfig::default().with_max_in_flight(64);
//! let (client, _inbound) = Client::connect(addr, BindKind::Transceiver, bind, config)?;
//! let submit = SubmitSm {
//!     source_addr: "447700900123".into(),
//!     destination_addr: "447700900456".into(),
//!     short_message: "Hello".into(),
//!     ..Default::default()
//! };
//! assert_eq!(client.submit(submit)?, "5F3A");
//!
//! client.unbind()?; // waits for unbind_resp
//! assert_eq!(client.closed(), CloseReason::Unbound);
//! control.shutdown(); // unbinds whoever is left, then `run` returns
//! serving.join().unwrap()?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod client;
mod reconnect;
mod rt;
mod server;
#[cfg(feature = "tls")]
mod tls;
mod wire;

/// The TLS crate this adapter is built on (feature `tls`), for building configurations.
#[cfg(feature = "tls")]
pub use rustls;

pub use client::{Client, Inbound, InboundRequest, OutbindListener};
pub use reconnect::{
    Backoff, MemberState, MemberStatus, Order, Pool, PoolConfig, ReconnectingClient,
};

pub use server::{Connection, Handler, Server, ServerConfig, ServerHandle};

pub use smpp_async::Error;
