//! Observability of `smpp serve`: Prometheus [`metrics`], billing records
//! ([`cdr`]) and the HTTP control API ([`http`]: MO injection, message state,
//! metrics).

pub mod cdr;
pub mod http;
pub mod metrics;
pub mod wiring;
