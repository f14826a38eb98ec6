//! Observability of `smpp serve`: the HTTP control API ([`http`]: MO
//! injection, message state, metrics) and its [`wiring`] to the server.
//! Prometheus [`metrics`] and billing records ([`cdr`]) are the server
//! crate's, re-exported here.

mod dashboard;
pub mod http;
pub mod wiring;

pub use smpp_server::{cdr, metrics};
