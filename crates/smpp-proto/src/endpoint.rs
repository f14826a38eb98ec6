//! A request layer over [`Session`] for runtime adapters: still sans-IO (no
//! runtime, no clock, no sockets), but holding what every adapter would
//! otherwise write again.
//!
//! An [`Endpoint<R>`] owns one connection's [`Session`] and correlates each
//! request of the application with an opaque reply token `R` (a oneshot
//! sender, a channel, an id: whatever the adapter uses to wake the caller):
//! - requests beyond the outbound window wait in order ([`Endpoint::request`])
//!   and go out as the window makes room; the adapter bounds how many it
//!   hands in (a bounded channel before it, or callers blocked on replies);
//! - every token comes back exactly once, in [`Output::Done`], with the
//!   response (any status) or a [`Failure`]; once the session has closed,
//!   every token still held is failed before [`Output::Closed`];
//! - peer requests come out as [`Incoming`] items, to be answered with
//!   [`Endpoint::respond`] (or [`Endpoint::answer_default`] when nobody
//!   takes them); answers the session cannot take yet (output full) are
//!   kept and retried by [`Endpoint::flush`].
//!
//! The adapter's loop: hand commands in, feed input, call
//! [`flush`](Endpoint::flush), drain [`poll_transmit`](Endpoint::poll_transmit)
//! into its write buffer, route [`poll_output`](Endpoint::poll_output), and
//! arm one timer at [`poll_timeout`](Endpoint::poll_timeout).
//!
//! The runtime side (the poll loop of a connection task, handler traits,
//! flow control, the adapter's error type) lives in `smpp-async`: this
//! module is the sans-IO contract it drives.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::sync::Arc;
use std::time::Instant;

use crate::pdu::{
    Bind, BindResp, Body, CommandId, CommandStatus, Outbind, Pdu, SequenceNumber, TlvTag,
};
use crate::session::{
    BindKind, CloseReason, Event, RequestError, Role, SendError, SeqHasher, Session, SessionConfig,
    State, Stats, Transmit,
};

/// Why a request handed to an [`Endpoint`] ended without a response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// Sent, but no response came (timeout, `generic_nack`, malformed response).
    #[error(transparent)]
    Request(RequestError),
    /// Refused at once by the session (wrong state, wrong command, a field
    /// that does not encode...). Nothing was sent.
    #[error("refused: {0}")]
    Refused(SendError<()>),
    /// The session closed (or was unbinding) before the request could complete.
    #[error("session closed")]
    Closed,
}

impl Failure {
    fn from_send<T>(e: SendError<T>) -> Failure {
        match e.map(drop) {
            SendError::Closed(()) => Failure::Closed,
            e => Failure::Refused(e),
        }
    }
}

impl From<RequestError> for Failure {
    fn from(e: RequestError) -> Failure {
        match e {
            RequestError::SessionClosed => Failure::Closed,
            e => Failure::Request(e),
        }
    }
}

/// A peer request for the application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming {
    /// MC: the ESME asks to bind; answer with [`bind_answer`].
    Bind {
        /// Its sequence number, to answer with.
        seq: SequenceNumber,
        /// The kind of bind asked for.
        kind: BindKind,
        /// Credentials and the rest of the body (boxed, as in [`Body`]).
        bind: Box<Bind>,
    },
    /// An operation request (`submit_sm`, `deliver_sm`, `data_sm`...),
    /// answered exactly once.
    Request(Pdu),
    /// An `alert_notification` (no answer).
    Alert(Pdu),
    /// ESME: the MC connected to us and asks us to bind
    /// ([`Endpoint::bind`] as receiver or transceiver, or close).
    Outbind(Box<Outbind>),
}

/// What an [`Endpoint`] has for the adapter, from [`Endpoint::poll_output`].
///
/// Exhaustive on purpose: a variant added later may carry a reply token,
/// and an adapter must not compile until it routes it.
#[derive(Debug)]
pub enum Output<R> {
    /// A request handed in with this token has ended: its response (any
    /// status) or why not. Every token comes back exactly once.
    Done(R, Result<Pdu, Failure>),
    /// A peer request for the application.
    Incoming(Incoming),
    /// Anything else the session reported (state changes, peer violations,
    /// throttled peer requests), for logging; nothing to do.
    Event(Event),
    /// The session is over: the last output. Send what
    /// [`poll_transmit`](Endpoint::poll_transmit) still gives, then close.
    Closed(CloseReason),
}

/// What an application's handle asks of its connection, besides requests
/// (which go through [`Endpoint::request`]): `R` is the reply token of a
/// command with a response, `S` the one of a command that only reports
/// whether it was sent, `T` the one of a stats query. Carry it to the
/// connection over a channel and hand it to [`Endpoint::command`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Command<R, S, T> {
    /// ESME: binds; `reply` comes back in [`Output::Done`] with the `bind_*_resp`.
    Bind {
        /// The kind of bind.
        kind: BindKind,
        /// Credentials and the rest of the body.
        bind: Bind,
        /// Comes back with the response.
        reply: R,
    },
    /// Unbinds; `reply` comes back in [`Output::Done`] with the `unbind_resp`.
    Unbind {
        /// Comes back with the response.
        reply: R,
    },
    /// Sends an `enquire_link` of the application ([`Endpoint::enquire_link`]);
    /// `reply` comes back in [`Output::Done`] with the `enquire_link_resp`.
    EnquireLink {
        /// Comes back with the response.
        reply: R,
    },
    /// Answers the peer request `seq` ([`Endpoint::respond`]).
    Respond {
        /// The request's sequence number.
        seq: SequenceNumber,
        /// The status to answer with.
        status: CommandStatus,
        /// The `*_resp` body.
        body: Body,
    },
    /// Sends a request without a response (`alert_notification`).
    Send {
        /// The request.
        body: Body,
        /// Comes back at once, in [`Immediate::Sent`].
        reply: S,
    },
    /// MC: sends `outbind`.
    Outbind {
        /// The outbind.
        outbind: Outbind,
        /// Comes back at once, in [`Immediate::Sent`].
        reply: S,
    },
    /// The session's counters; comes back at once, in [`Immediate::Stats`].
    Stats(T),
    /// Sets the application's load, 0-100 ([`Session::set_load`]): one input
    /// of the `congestion_state` an MC reports to SMPP 5.0 peers.
    SetLoad(u8),
    /// Unbinds when bound, closes otherwise ([`Endpoint::release`]).
    Release,
    /// Closes at once ([`Endpoint::close`]).
    Close,
}

/// A [`Command`]'s answer that needs no wait.
#[derive(Debug)]
// Returned and consumed at once; boxing the counters would cost an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Immediate<S, T> {
    /// A `Send` or `Outbind` was sent, or why not.
    Sent(S, Result<(), Failure>),
    /// The session's counters.
    Stats(T, Stats),
}

/// One connection's session with request correlation; see the [module docs](self).
#[derive(Debug)]
pub struct Endpoint<R> {
    session: Session,
    /// Our requests in flight, by sequence number (numbers we allocated, so
    /// no SipHash: a peer only picks the numbers looked up, never inserted).
    pending: HashMap<u32, R, BuildHasherDefault<SeqHasher>>,
    /// Requests waiting for window room, oldest first.
    waiting: VecDeque<(Body, R)>,
    /// Answers the session refused for now (output full), oldest first.
    answers: VecDeque<(SequenceNumber, CommandStatus, Body)>,
    /// Outputs decided outside `poll_event` (immediate failures, close).
    outputs: VecDeque<Output<R>>,
}

impl<R> Endpoint<R> {
    /// A new connection's endpoint (its session in the OPEN state).
    pub fn new(role: Role, config: Arc<SessionConfig>, now: Instant) -> Endpoint<R> {
        Endpoint {
            session: Session::new(role, config, now),
            pending: HashMap::default(),
            waiting: VecDeque::new(),
            answers: VecDeque::new(),
            outputs: VecDeque::new(),
        }
    }

    /// The session (state, windows, configuration).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session has closed.
    pub fn is_closed(&self) -> bool {
        self.session.is_closed()
    }

    /// Gives back the capacity of empty queues and buffers (the session's
    /// and this endpoint's). Nothing held is dropped and nothing changes
    /// but memory: a connection that has been quiet for a while calls this
    /// so that an idle bind costs little; the queues grow again on use.
    pub fn shrink(&mut self) {
        self.session.shrink();
        if self.pending.is_empty() {
            self.pending = HashMap::default();
        }
        if self.waiting.is_empty() {
            self.waiting = VecDeque::new();
        }
        if self.answers.is_empty() {
            self.answers = VecDeque::new();
        }
        if self.outputs.is_empty() {
            self.outputs = VecDeque::new();
        }
    }

    /// The session's counters and window use.
    pub fn stats(&self) -> Stats {
        self.session.stats()
    }

    /// Nothing waits for window room and the window has room (or the session
    /// is closed, and a request would fail at once): the adapter may hand in
    /// one more request without it having to wait here.
    pub fn wants_requests(&self) -> bool {
        self.waiting.is_empty() && (self.session.window_room() > 0 || self.session.is_closed())
    }

    /// Requests waiting here for window room.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// The session takes no input until its output is drained or the inbound
    /// window has room: read no more for now.
    pub fn is_input_blocked(&self) -> bool {
        self.session.is_input_blocked()
    }

    // ---- inputs ----

    /// Feeds received bytes; returns how many the session took (the rest is
    /// offered again after draining).
    #[must_use]
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> usize {
        self.session.handle_input(now, data)
    }

    /// The byte stream ended (or failed).
    pub fn handle_eof(&mut self, now: Instant) {
        self.session.handle_eof(now);
    }

    /// The deadline of [`poll_timeout`](Endpoint::poll_timeout) passed (early calls are no-ops).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.session.handle_timeout(now);
    }

    // ---- commands ----

    /// Carries out a handle's command; commands with a response come back
    /// in [`Output::Done`], the others at once. A refused answer (already
    /// answered, closed) is dropped.
    pub fn command<S, T>(
        &mut self,
        now: Instant,
        command: Command<R, S, T>,
    ) -> Option<Immediate<S, T>> {
        match command {
            Command::Bind { kind, bind, reply } => self.bind(now, kind, bind, reply),
            Command::Unbind { reply } => self.unbind(now, reply),
            Command::EnquireLink { reply } => self.enquire_link(now, reply),
            Command::Respond { seq, status, body } => {
                let _ = self.respond(now, seq, status, body);
            }
            Command::Send { body, reply } => {
                return Some(Immediate::Sent(reply, self.send(now, body)))
            }
            Command::Outbind { outbind, reply } => {
                return Some(Immediate::Sent(reply, self.outbind(now, outbind)))
            }
            Command::Stats(reply) => return Some(Immediate::Stats(reply, self.stats())),
            Command::SetLoad(load) => self.session.set_load(load),
            Command::Release => self.release(now),
            Command::Close => self.close(now),
        }
        None
    }

    /// Sends an operation request with a response once the window has room;
    /// `reply` comes back in [`Output::Done`].
    pub fn request(&mut self, now: Instant, body: Body, reply: R) {
        if body.command_id().response_id().is_none() {
            let refused = Failure::Refused(SendError::WrongCommand(()));
            self.outputs.push_back(Output::Done(reply, Err(refused)));
            return;
        }
        if self.waiting.is_empty() {
            // The usual case: straight to the session (no queue round trip).
            if let Err(held) = self.try_send(now, body, reply) {
                self.waiting.push_back(held);
            }
            return;
        }
        self.waiting.push_back((body, reply));
        self.send_waiting(now);
    }

    /// Sends a request without a response (`alert_notification`) at once.
    pub fn send(&mut self, now: Instant, body: Body) -> Result<(), Failure> {
        if body.command_id().response_id().is_some() {
            return Err(Failure::Refused(SendError::WrongCommand(())));
        }
        self.session
            .send_request(now, body)
            .map(drop)
            .map_err(Failure::from_send)
    }

    /// ESME: binds (after connecting, or after an [`Incoming::Outbind`]);
    /// `reply` comes back with the `bind_*_resp`.
    pub fn bind(&mut self, now: Instant, kind: BindKind, bind: Bind, reply: R) {
        match self.session.bind(now, kind, bind) {
            Ok(seq) => self.track(seq, reply),
            Err(e) => self.fail(reply, Failure::from_send(e)),
        }
    }

    /// MC: sends `outbind` on a connection we opened to an ESME; the ESME's
    /// bind follows as [`Incoming::Bind`].
    pub fn outbind(&mut self, now: Instant, outbind: Outbind) -> Result<(), Failure> {
        self.session
            .outbind(now, outbind)
            .map(drop)
            .map_err(Failure::from_send)
    }

    /// Unbinds; `reply` comes back with the `unbind_resp`.
    pub fn unbind(&mut self, now: Instant, reply: R) {
        match self.session.unbind(now) {
            Ok(seq) => self.track(seq, reply),
            Err(e) => self.fail(reply, Failure::from_send(e)),
        }
    }

    /// Sends an `enquire_link` (a link check the application asked for; the
    /// session's own keepalive runs apart): `reply` comes back with the
    /// `enquire_link_resp`, or fails as any request does (response timeout,
    /// closed; a full window refuses it at once: it does not wait).
    pub fn enquire_link(&mut self, now: Instant, reply: R) {
        match self.session.enquire_link(now) {
            Ok(seq) => self.track(seq, reply),
            Err(e) => self.fail(reply, Failure::from_send(e)),
        }
    }

    /// Unbinds when bound, closes otherwise (nobody uses the session any
    /// more, or a server shuts down).
    pub fn release(&mut self, now: Instant) {
        if self.session.unbind(now).is_err() {
            let _ = self.session.close(now);
        }
    }

    /// Closes at once, without unbinding.
    pub fn close(&mut self, now: Instant) {
        let _ = self.session.close(now);
    }

    /// Answers the peer request `seq`. An answer the session cannot take yet
    /// is kept and retried; one it refuses (already answered, closed...) is
    /// dropped and returned.
    pub fn respond(
        &mut self,
        now: Instant,
        seq: SequenceNumber,
        status: CommandStatus,
        body: Body,
    ) -> Result<(), SendError<()>> {
        if !self.answers.is_empty() {
            self.answers.push_back((seq, status, body)); // keep the order
            return Ok(());
        }
        self.try_respond(now, seq, status, body)
    }

    /// Answers a peer request that nobody will take: a request with status 0
    /// and an empty body (as a dropped one would be), a bind with
    /// `ESME_RSYSERR`; an alert or outbind is dropped.
    pub fn answer_default(&mut self, now: Instant, incoming: Incoming) {
        match incoming {
            Incoming::Request(pdu) => {
                let (seq, status, body) = default_answer(&pdu);
                let _ = self.respond(now, seq, status, body);
            }
            Incoming::Bind { seq, kind, .. } => {
                let body = kind.response(BindResp::default());
                let _ = self.respond(now, seq, CommandStatus::SYSTEM_ERROR, body);
            }
            Incoming::Outbind(_) => self.close(now),
            Incoming::Alert(_) => {}
        }
    }

    /// Retries kept answers, then sends waiting requests while the window has
    /// room. Call it once per turn, before draining; true when anything moved.
    pub fn flush(&mut self, now: Instant) -> bool {
        let mut progress = false;
        while let Some((seq, status, body)) = self.answers.pop_front() {
            match self.session.send_response(now, seq, status, body) {
                Err(SendError::OutputFull(body)) => {
                    self.answers.push_front((seq, status, body));
                    break;
                }
                _ => progress = true,
            }
        }
        progress | self.send_waiting(now)
    }

    // ---- outputs ----

    /// Appends whole PDUs to `buf`; `None` when there is nothing to send.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.session.poll_transmit(now, buf)
    }

    /// The next output; drain after [`poll_transmit`](Endpoint::poll_transmit).
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output<R>> {
        loop {
            if let Some(out) = self.outputs.pop_front() {
                return Some(out);
            }
            let event = self.session.poll_event()?;
            match event {
                Event::Response(pdu) => {
                    if let Some(reply) = self.pending.remove(&pdu.sequence_number.get()) {
                        return Some(Output::Done(reply, Ok(pdu)));
                    }
                }
                Event::RequestFailed {
                    sequence_number,
                    error,
                    ..
                } => {
                    if let Some(reply) = self.pending.remove(&sequence_number.get()) {
                        return Some(Output::Done(reply, Err(error.into())));
                    }
                }
                Event::Request(pdu) => return Some(Output::Incoming(Incoming::Request(pdu))),
                Event::AlertNotification(pdu) => {
                    return Some(Output::Incoming(Incoming::Alert(pdu)))
                }
                Event::BindRequest {
                    sequence_number,
                    kind,
                    bind,
                } => {
                    return Some(Output::Incoming(Incoming::Bind {
                        seq: sequence_number,
                        kind,
                        bind,
                    }))
                }
                Event::Outbind(outbind) => {
                    return Some(Output::Incoming(Incoming::Outbind(outbind)))
                }
                Event::Closed(reason) => {
                    // The session failed everything in flight before this;
                    // what never went out fails now, then the close.
                    self.fail_held();
                    self.outputs.push_back(Output::Closed(reason));
                }
                Event::WindowAvailable => {} // `flush` sends whenever there is room
                other => return Some(Output::Event(other)),
            }
        }
    }

    /// When to call [`handle_timeout`](Endpoint::handle_timeout).
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    /// Every token still held (the connection ended without the session
    /// closing cleanly, e.g. the adapter gave up lingering): each fails with
    /// [`Failure::Closed`], as an output.
    pub fn abandon(&mut self) {
        self.fail_held();
        for (_, reply) in self.pending.drain() {
            self.outputs
                .push_back(Output::Done(reply, Err(Failure::Closed)));
        }
    }

    fn fail_held(&mut self) {
        for (_, reply) in self.waiting.drain(..) {
            self.outputs
                .push_back(Output::Done(reply, Err(Failure::Closed)));
        }
    }

    fn track(&mut self, seq: SequenceNumber, reply: R) {
        self.pending.insert(seq.get(), reply);
    }

    fn fail(&mut self, reply: R, failure: Failure) {
        self.outputs.push_back(Output::Done(reply, Err(failure)));
    }

    fn try_respond(
        &mut self,
        now: Instant,
        seq: SequenceNumber,
        status: CommandStatus,
        body: Body,
    ) -> Result<(), SendError<()>> {
        match self.session.send_response(now, seq, status, body) {
            Ok(()) => Ok(()),
            Err(SendError::OutputFull(body)) => {
                self.answers.push_back((seq, status, body));
                Ok(())
            }
            Err(e) => Err(e.map(drop)),
        }
    }

    fn send_waiting(&mut self, now: Instant) -> bool {
        let mut progress = false;
        while self.session.window_room() > 0 || self.session.is_closed() {
            let Some((body, reply)) = self.waiting.pop_front() else {
                break;
            };
            if let Err(held) = self.try_send(now, body, reply) {
                self.waiting.push_front(held);
                break;
            }
            progress = true;
        }
        progress
    }

    /// Sends one request, or hands it back when the window or the output
    /// is full (it is then to wait); other refusals fail it.
    #[allow(clippy::result_large_err)] // handed straight back to the queue
    fn try_send(&mut self, now: Instant, body: Body, reply: R) -> Result<(), (Body, R)> {
        match self.session.send_request(now, body) {
            Ok(seq) => self.track(seq, reply),
            Err(SendError::WindowFull(body) | SendError::OutputFull(body)) => {
                return Err((body, reply))
            }
            // Unbinding: the session will not take new requests any more.
            Err(SendError::InvalidState(_)) if self.session.state() == State::Unbound => {
                self.fail(reply, Failure::Closed);
            }
            Err(e) => self.fail(reply, Failure::from_send(e)),
        }
        Ok(())
    }
}

/// An answer to send: the request's sequence number, a status and a body.
pub type Response = (SequenceNumber, CommandStatus, Body);

/// The answer to a peer request the application did not answer: status 0
/// and an empty `*_resp` body (`generic_nack` for an unknown command).
pub fn default_answer(pdu: &Pdu) -> (SequenceNumber, CommandStatus, Body) {
    let body = empty_response(pdu.command_id());
    (pdu.sequence_number, CommandStatus::OK, body)
}

/// The empty `*_resp` body for a request's command id (`generic_nack` for
/// an unknown command).
pub fn empty_response(id: CommandId) -> Body {
    id.response_id()
        .and_then(Body::default_for)
        .unwrap_or(Body::GenericNack(Default::default()))
}

/// MC: the answer to a bind the application accepted (`Ok`) or rejected:
/// the matching `bind_*_resp` with our `system_id` when accepted, an empty
/// one otherwise. An accepted 3.4 or 5.0 bind (its `interface_version`,
/// `peer_version`) gets `sc_interface_version`, the version the session
/// will speak ([`negotiate`](crate::session::negotiate): 0x50 for a 5.0
/// bind, 0x34 for a 3.4 one); a 3.3 bind gets no TLV (none may be sent
/// to it).
pub fn bind_answer(
    kind: BindKind,
    result: Result<(), CommandStatus>,
    system_id: &str,
    peer_version: u8,
) -> (CommandStatus, Body) {
    let mut resp = BindResp::default();
    if result.is_ok() {
        resp.system_id = system_id.to_owned().into();
        let version =
            crate::session::negotiate(crate::session::INTERFACE_VERSION, Some(peer_version));
        if version >= 0x34 {
            resp.tlvs.set_u8(TlvTag::SC_INTERFACE_VERSION, version);
        }
    }
    (
        result.err().unwrap_or(CommandStatus::OK),
        kind.response(resp),
    )
}

/// ESME: how to bind after an outbind. SMPP 3.4 §2.2.1: after `outbind` the
/// ESME binds as a receiver; `preferred` may ask for a transceiver instead
/// (SMPP 5.0 allows `bind_transceiver` after an outbind); a transmitter is
/// not allowed and becomes a receiver.
pub fn outbind_bind_kind(preferred: BindKind) -> BindKind {
    match preferred {
        BindKind::Transceiver => BindKind::Transceiver,
        _ => BindKind::Receiver,
    }
}

#[cfg(test)]
mod tests;
