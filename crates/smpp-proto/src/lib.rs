//! Sans-IO core of the SMPP toolkit.
//!
//! No sockets, no clock, no runtime: bytes in, bytes and events out.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod message;
