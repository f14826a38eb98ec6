//! Sans-IO core of the SMPP toolkit.
//!
//! No sockets, no clock, no runtime: bytes in, bytes and events out. A
//! [`Session`](session::Session) is fed what was read from the connection
//! and the passing of time (`now` is always an argument), is told what the
//! application wants to send, and hands back the bytes to write, the events
//! to act on and the next deadline. After any input or command: drain
//! `poll_transmit`, then `poll_event`, then arm one timer at `poll_timeout`.
//!
//! # Example: an ESME and an MC wired to each other in memory
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use smpp_proto::pdu::{Bind, BindResp, Body, CommandId, CommandStatus, SubmitSm, SubmitSmResp};
//! use smpp_proto::session::{BindKind, Event, Role, Session, SessionConfig, State};
//!
//! /// The wire: what `from` has to send (`poll_transmit`) is read by `to`.
//! fn send(now: Instant, from: &mut Session, to: &mut Session) {
//!     let mut wire = Vec::new();
//!     while from.poll_transmit(now, &mut wire).is_some() {}
//!     let mut rest = &wire[..];
//!     while !rest.is_empty() {
//!         // It may accept less (backpressure): drain its events, then offer the rest again.
//!         let accepted = to.handle_input(now, rest);
//!         assert!(accepted > 0);
//!         rest = &rest[accepted..];
//!     }
//! }
//!
//! let config = Arc::new(SessionConfig::default());
//! let mut now = Instant::now(); // the only clock read: the core takes time as an argument
//! let mut esme = Session::new(Role::Esme, config.clone(), now);
//! let mut mc = Session::new(Role::Mc, config, now);
//!
//! // The ESME binds; the MC's application checks the credentials and accepts.
//! let bind = Bind { system_id: "esme01".into(), password: "secret".into(), ..Default::default() };
//! esme.bind(now, BindKind::Transceiver, bind)?;
//! send(now, &mut esme, &mut mc);
//! while let Some(event) = mc.poll_event() {
//!     if let Event::BindRequest { sequence_number, kind, bind } = event {
//!         let status = match bind.password == "secret" {
//!             true => CommandStatus::OK,
//!             false => CommandStatus::INVALID_PASSWORD,
//!         };
//!         let answer = kind.response(BindResp { system_id: "SMSC".into(), ..Default::default() });
//!         mc.send_response(now, sequence_number, status, answer)?;
//!     }
//! }
//! send(now, &mut mc, &mut esme);
//! assert_eq!(esme.state(), State::BoundTrx);
//! while esme.poll_event().is_some() {} // the state change, then the bind's response
//!
//! // submit_sm: the MC's application answers with a message id.
//! let submit = SubmitSm {
//!     source_addr: "447700900123".into(),
//!     destination_addr: "447700900456".into(),
//!     short_message: "Hello".into(),
//!     ..Default::default()
//! };
//! let sequence_number = esme.send_request(now, Body::SubmitSm(submit.into()))?;
//! send(now, &mut esme, &mut mc);
//! while let Some(event) = mc.poll_event() {
//!     if let Event::Request(request) = event {
//!         let answer = SubmitSmResp { message_id: "5F3A".into(), ..Default::default() };
//!         let answer = Body::SubmitSmResp(answer);
//!         mc.send_response(now, request.sequence_number, CommandStatus::OK, answer)?;
//!     }
//! }
//! send(now, &mut mc, &mut esme);
//! let Some(Event::Response(response)) = esme.poll_event() else { panic!("no submit_sm_resp") };
//! assert_eq!(response.sequence_number, sequence_number);
//! assert!(matches!(response.body, Body::SubmitSmResp(ref r) if r.message_id == "5F3A"));
//!
//! // Timers: one deadline to arm; when it passes, `handle_timeout`. After 30 s
//! // of silence the ESME sends an enquire_link, which the MC answers by itself.
//! now = esme.poll_timeout().expect("the keepalive is armed");
//! esme.handle_timeout(now);
//! send(now, &mut esme, &mut mc);
//! send(now, &mut mc, &mut esme);
//! assert_eq!(esme.stats().sent(CommandId::ENQUIRE_LINK), 1);
//! assert_eq!(esme.stats().received(CommandId::ENQUIRE_LINK_RESP), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A runtime adapter runs this same loop over a socket and a timer. The
//! request layer in [`endpoint`] holds what every adapter would otherwise
//! write again on top of it: each request of the application carries a
//! reply token that comes back exactly once, requests beyond the window wait
//! in order, and peer requests come out to be answered. The same exchange
//! through two [`Endpoint`](endpoint::Endpoint)s, with `&str` tokens:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use smpp_proto::endpoint::{bind_answer, Endpoint, Incoming, Output};
//! use smpp_proto::pdu::{Bind, Body, CommandStatus, SubmitSm, SubmitSmResp};
//! use smpp_proto::session::{BindKind, Role, SessionConfig};
//!
//! /// One turn of `from`'s loop: its bytes go to `to`, its outputs come back.
//! fn turn<'a>(
//!     now: Instant,
//!     from: &mut Endpoint<&'a str>,
//!     to: &mut Endpoint<&'a str>,
//! ) -> Vec<Output<&'a str>> {
//!     from.flush(now); // answers kept for later, requests that waited for the window
//!     let mut wire = Vec::new();
//!     while from.poll_transmit(now, &mut wire).is_some() {}
//!     let outputs = std::iter::from_fn(|| from.poll_output()).collect();
//!     assert_eq!(to.handle_input(now, &wire), wire.len());
//!     outputs
//! }
//!
//! let config = Arc::new(SessionConfig::default());
//! let now = Instant::now();
//! let mut esme = Endpoint::new(Role::Esme, config.clone(), now);
//! let mut mc = Endpoint::new(Role::Mc, config, now);
//!
//! let bind = Bind { system_id: "esme01".into(), password: "secret".into(), ..Default::default() };
//! esme.bind(now, BindKind::Transceiver, bind, "bind");
//! turn(now, &mut esme, &mut mc);
//! for output in turn(now, &mut mc, &mut esme) {
//!     if let Output::Incoming(Incoming::Bind { seq, kind, bind }) = output {
//!         let (status, body) = bind_answer(kind, Ok(()), "SMSC", bind.interface_version);
//!         mc.respond(now, seq, status, body)?;
//!     }
//! }
//! turn(now, &mut mc, &mut esme);
//! let outputs = turn(now, &mut esme, &mut mc);
//! assert!(outputs.iter().any(|o| matches!(o, Output::Done("bind", Ok(_)))));
//!
//! let submit = SubmitSm { destination_addr: "447700900456".into(), ..Default::default() };
//! esme.request(now, Body::SubmitSm(submit.into()), "hello");
//! turn(now, &mut esme, &mut mc);
//! for output in turn(now, &mut mc, &mut esme) {
//!     if let Output::Incoming(Incoming::Request(request)) = output {
//!         let answer = SubmitSmResp { message_id: "5F3A".into(), ..Default::default() };
//!         let answer = Body::SubmitSmResp(answer);
//!         mc.respond(now, request.sequence_number, CommandStatus::OK, answer)?;
//!     }
//! }
//! turn(now, &mut mc, &mut esme);
//! let outputs = turn(now, &mut esme, &mut mc);
//! let Some(Output::Done("hello", Ok(response))) = outputs.into_iter().next() else {
//!     panic!("the token did not come back with the response")
//! };
//! assert!(matches!(response.body, Body::SubmitSmResp(ref r) if r.message_id == "5F3A"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`pdu`]: every SMPP 3.3/3.4/5.0 PDU and TLV, and the zero-copy codec.
//! - [`session`]: one connection's state machine (ESME and MC): binds, windows,
//!   timers, the legality table, exactly-once request resolution.
//! - [`endpoint`]: the sans-IO request layer over a session (reply tokens,
//!   the window-wait queue, routing decisions as data).
//! - [`message`]: text encodings, long messages, delivery receipts.
//!
//! Feature `arbitrary` derives `arbitrary::Arbitrary` for PDUs; feature
//! `fuzzing` adds the bodies of the fuzz targets in `fuzz/` (not a public API).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod endpoint;
pub mod message;
pub mod pdu;
pub mod proxy;
pub mod session;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
