//! Sans-IO core of the SMPP toolkit.
//!
//! No sockets, no clock, no runtime: bytes in, bytes and events out.
//!
//! - [`pdu`]: every SMPP 3.3/3.4/5.0 PDU and TLV, and the zero-copy codec.
//! - [`session`]: one connection's state machine (ESME and MC): binds, windows,
//!   timers, the legality table, exactly-once request resolution.
//! - [`message`]: text encodings, long messages, delivery receipts.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod endpoint;
pub mod message;
pub mod pdu;
pub mod session;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
