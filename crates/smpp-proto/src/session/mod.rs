//! One SMPP connection's state machine, for both roles, without I/O.
//!
//! A [`Session`] is fed the bytes read from the connection and the passing
//! of time, is told what the application wants to send, and hands back the
//! bytes to write, the events to act on and the next deadline. It never
//! touches a socket or reads a clock: `now` is always a parameter.
//!
//! # The run loop
//!
//! After **any** input (`handle_input`, `handle_eof`, `handle_timeout`) or
//! command (`bind`, `send_request`, `send_response`, `enquire_link`,
//! `unbind`, `close`, `outbind`):
//!
//! 1. drain [`Session::poll_transmit`] and write the bytes to the connection;
//! 2. drain [`Session::poll_event`] and act on each event;
//! 3. read [`Session::poll_timeout`] and arm one timer for it; when it fires,
//!    call [`Session::handle_timeout`] (early or spurious calls do nothing).
//!
//! [`Session::handle_input`] returns how many bytes it accepted. It accepts
//! fewer than it was given when buffered output or events are not drained, or
//! (in [`InboundOverflow::Backpressure`] mode) when the application has not
//! answered enough requests: keep the rest, drain as above, and offer it again
//! after the next command or drain. After [`Event::Closed`] it accepts nothing.
//!
//! # Guarantees
//!
//! - Every request sent with [`Session::bind`], [`Session::send_request`],
//!   [`Session::enquire_link`] or [`Session::unbind`] resolves exactly once:
//!   [`Event::Response`] or [`Event::RequestFailed`] (timeout, `generic_nack`,
//!   malformed response, session closed). On close they all fail before the
//!   final [`Event::Closed`].
//! - Every request from the peer surfaced as [`Event::Request`] or
//!   [`Event::BindRequest`] must be answered once with
//!   [`Session::send_response`]; `enquire_link` and `unbind` are answered
//!   automatically, and so is anything illegal or malformed (see [`RULES`] and
//!   [`SESSION_RULES`]).
//! - Nothing grows without bound: input is buffered one PDU at a time, output
//!   and events up to the configured limits, in-flight requests up to the window.
//!
//! # Example: an ESME and an MC in memory
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use smpp_proto::pdu::{Bind, BindResp, Body, CommandStatus, SubmitSm, SubmitSmResp};
//! use smpp_proto::session::{BindKind, CloseReason, Event, Role, Session, SessionConfig, State};
//!
//! /// Moves everything `from` has to send into `to`.
//! fn transfer(now: Instant, from: &mut Session, to: &mut Session) {
//!     let mut wire = Vec::new();
//!     while let Some(_transmit) = from.poll_transmit(now, &mut wire) {}
//!     let mut rest = &wire[..];
//!     while !rest.is_empty() {
//!         let accepted = to.handle_input(now, rest);
//!         assert!(accepted > 0, "this example drains events at the end only");
//!         rest = &rest[accepted..];
//!     }
//! }
//!
//! fn events(s: &mut Session) -> Vec<Event> {
//!     std::iter::from_fn(|| s.poll_event()).collect()
//! }
//!
//! let config = Arc::new(SessionConfig::default());
//! let now = Instant::now();
//! let mut esme = Session::new(Role::Esme, config.clone(), now);
//! let mut mc = Session::new(Role::Mc, config, now);
//!
//! // The ESME binds; the MC's application checks the credentials and accepts.
//! let bind = Bind {
//!     system_id: "esme01".into(),
//!     password: "secret".into(),
//!     interface_version: 0x34,
//!     ..Default::default()
//! };
//! esme.bind(now, BindKind::Transceiver, bind)?;
//! transfer(now, &mut esme, &mut mc);
//! let Some(Event::BindRequest { sequence_number, kind, bind }) = mc.poll_event() else {
//!     panic!("expected a bind request")
//! };
//! assert_eq!(bind.system_id, "esme01");
//! let accept = kind.response(BindResp { system_id: "SMSC".into(), ..Default::default() });
//! mc.send_response(now, sequence_number, CommandStatus::OK, accept)?;
//! assert!(matches!(events(&mut mc)[..], [Event::StateChanged { to: State::BoundTrx, .. }]));
//! transfer(now, &mut mc, &mut esme);
//! assert_eq!(esme.state(), State::BoundTrx);
//! assert!(matches!(events(&mut esme)[..], [Event::StateChanged { .. }, Event::Response(_)]));
//!
//! // submit_sm, answered by the MC's application with a message id.
//! let submit = SubmitSm {
//!     source_addr: "447700900123".into(),
//!     destination_addr: "447700900456".into(),
//!     short_message: "Hello".into(),
//!     ..Default::default()
//! };
//! let seq = esme.send_request(now, Body::SubmitSm(submit.into()))?;
//! transfer(now, &mut esme, &mut mc);
//! let Some(Event::Request(request)) = mc.poll_event() else { panic!("expected submit_sm") };
//! let answer = Body::SubmitSmResp(SubmitSmResp { message_id: "5F3A".into(), ..Default::default() });
//! mc.send_response(now, request.sequence_number, CommandStatus::OK, answer)?;
//! transfer(now, &mut mc, &mut esme);
//! match esme.poll_event() {
//!     Some(Event::Response(resp)) => {
//!         assert_eq!(resp.sequence_number, seq);
//!         assert!(matches!(resp.body, Body::SubmitSmResp(ref r) if r.message_id == "5F3A"));
//!     }
//!     other => panic!("expected the response, got {other:?}"),
//! }
//!
//! // The ESME unbinds; the MC answers by itself and both sessions close.
//! esme.unbind(now)?;
//! transfer(now, &mut esme, &mut mc);
//! transfer(now, &mut mc, &mut esme);
//! assert!(matches!(events(&mut mc).last(), Some(Event::Closed(CloseReason::Unbound))));
//! assert!(matches!(events(&mut esme).last(), Some(Event::Closed(CloseReason::Unbound))));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Commands hand the rejected value back inside `SendError<T>` by design;
// boxing it would allocate on every refusal (a full window is routine).
#![allow(clippy::result_large_err)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;

use crate::pdu::{
    self, Bind, Body, CommandId, CommandStatus, Outbind, Pdu, SequenceNumber, HEADER_LEN,
};

mod config;
mod congestion;
mod event;
mod input;
mod output;
mod state;
mod stats;
mod timer;
mod version;
mod window;

pub use config::{InboundOverflow, SessionConfig};
pub use congestion::{congestion_state, INITIAL_WINDOW};
pub use event::{
    CloseReason, Event, PeerViolation, RequestError, SendError, SessionError, Transmit,
};
pub use state::{
    may_send, operation_since, rule_for, BindKind, IllegalAnswer, Role, Rule, State, StateSet,
    AUTOMATIC_STATUSES, RULES, SESSION_RULES,
};
pub use stats::Stats;
pub use timer::Timer;

use congestion::{Controller, Gauge};
use stats::Tally;
use timer::Timers;
pub(crate) use window::SeqHasher;
use window::{Entry, InFlight, Inbound, Origin};

/// Input buffer growth step: small frames share one allocation.
const INPUT_CHUNK: usize = 4096;

/// Where an unbind stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unbinding {
    No,
    /// We sent unbind with this sequence number.
    Ours,
    /// The peer sent unbind with this sequence number; not answered yet.
    Peers(SequenceNumber),
}

/// The highest SMPP version this implementation speaks (5.0), as
/// `interface_version` and `sc_interface_version` encode it.
pub const INTERFACE_VERSION: u8 = 0x50;

/// The version two peers speak once bound (SMPP 5.0 §2.11.2, 3.4 §5.3.2.25):
/// the lower of the two, every value below 0x34 meaning 3.3 or earlier
/// (no TLVs). `theirs` is `None` for an MC that sent no
/// `sc_interface_version` in its `bind_*_resp`: it must be taken as pre-3.4.
pub fn negotiate(ours: u8, theirs: Option<u8>) -> u8 {
    let v33 = |v: u8| if v < 0x34 { 0x33 } else { v };
    v33(ours).min(theirs.map_or(0x33, v33))
}

/// How many of our timed-out requests a session remembers, so that a
/// response arriving after its request's timeout is reported as
/// [`Event::LateResponse`] rather than as a peer violation.
pub const LATE_MEMORY: usize = 64;

/// The last [`LATE_MEMORY`] requests of ours that timed out (sequence
/// number and command id), oldest first; bounded.
#[derive(Debug, Default)]
struct TimedOut(VecDeque<(u32, CommandId)>);

impl TimedOut {
    fn push(&mut self, seq: u32, command_id: CommandId) {
        if self.0.len() == LATE_MEMORY {
            self.0.pop_front();
        }
        self.0.push_back((seq, command_id));
    }

    /// Whether a response `id` with sequence number `seq` answers one of
    /// them (then forgotten: a second copy is unexpected).
    fn take(&mut self, seq: u32, id: CommandId) -> bool {
        let found = self.0.iter().position(|&(s, request)| {
            s == seq && (id == CommandId::GENERIC_NACK || request.response_id() == Some(id))
        });
        found.map(|at| self.0.remove(at)).is_some()
    }
}

/// How a request of ours ended.
enum Outcome {
    Response(Pdu),
    Failed(RequestError),
}

/// One SMPP session (one connection), ESME or MC. See the [module
/// docs](self) for the run loop: after any input or command, drain
/// [`poll_transmit`](Session::poll_transmit), then
/// [`poll_event`](Session::poll_event), then read
/// [`poll_timeout`](Session::poll_timeout).
#[derive(Debug)]
pub struct Session {
    role: Role,
    config: Arc<SessionConfig>,
    state: State,
    /// The latest `now` seen; time never goes backwards inside the session.
    now: Instant,
    /// The frame being assembled (never more than one, never above `max_pdu_len`).
    inbuf: BytesMut,
    /// Encoded PDUs for `poll_transmit`.
    out: Vec<u8>,
    out_pdus: usize,
    events: VecDeque<Event>,
    in_flight: InFlight,
    /// Peer requests awaiting the application's answer.
    inbound: Inbound,
    /// MC: the bind request awaiting the application's answer.
    pending_bind: Option<SequenceNumber>,
    /// ESME: our bind in flight.
    bind_in_flight: bool,
    unbinding: Unbinding,
    timers: Timers,
    tally: Tally,
    /// Our requests that timed out lately, to tell a late response from an
    /// unexpected one.
    timed_out: TimedOut,
    /// ESME: the `interface_version` of our bind; MC: the peer's.
    offered_version: u8,
    /// The version agreed once bound ([`negotiate`]).
    version: Option<u8>,
    /// The cause of a close still in progress (inactivity unbind).
    close_cause: Option<SessionError>,
    /// What our responses report as `congestion_state` (MC, 5.0 peers).
    gauge: Gauge,
    /// The outbound window adapted to the peer's `congestion_state` (5.0 peers).
    controller: Controller,
}

impl Session {
    /// A session on a connection that opened at `now`, in state OPEN.
    pub fn new(role: Role, config: Arc<SessionConfig>, now: Instant) -> Session {
        let window = config.max_in_flight.max(1);
        Session {
            role,
            state: State::Open,
            now,
            inbuf: BytesMut::new(),
            out: Vec::new(),
            out_pdus: 0,
            events: VecDeque::new(),
            in_flight: InFlight::new(window),
            inbound: Inbound::default(),
            pending_bind: None,
            bind_in_flight: false,
            unbinding: Unbinding::No,
            timers: Timers::new(now),
            tally: Tally::default(),
            timed_out: TimedOut::default(),
            offered_version: INTERFACE_VERSION,
            version: None,
            close_cause: None,
            gauge: Gauge::default(),
            controller: Controller::new(window),
            config,
        }
    }

    // ---- getters ----

    /// ESME or MC.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The SMPP version agreed with the peer, once bound ([`negotiate`]):
    /// 0x50 when both speak 5.0, 0x34 when one speaks 3.4, 0x33 for a 3.3
    /// peer (or an MC that did not say: no `sc_interface_version`), to
    /// which no TLVs may be sent. `None` before the bind.
    pub fn interface_version(&self) -> Option<u8> {
        self.version
    }

    /// [`Event::Closed`] has been queued; only buffered output remains.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<SessionConfig> {
        &self.config
    }

    /// The application's requests awaiting a response (the outbound window in use).
    pub fn in_flight(&self) -> usize {
        self.in_flight.app_len()
    }

    /// Room left in the outbound window (the effective one: see
    /// [`Session::window`]).
    pub fn window_room(&self) -> usize {
        self.in_flight.room()
    }

    /// The effective outbound window: [`SessionConfig::max_in_flight`],
    /// unless an SMPP 5.0 peer reports `congestion_state` in its responses;
    /// then it adapts to it, within `[1, max_in_flight]`: it grows while the
    /// peer reports less than 80, holds in the optimum band 80-90, and
    /// shrinks multiplicatively above 90 (at most once per window's worth
    /// of responses). The first value starts it at [`INITIAL_WINDOW`] (or
    /// what is in flight, if more); below 30 it grows by one per response
    /// (doubling every round trip), in 30-79 by one per window's worth.
    /// Peers of 3.3 and 3.4 leave it unchanged.
    pub fn window(&self) -> usize {
        self.in_flight.window()
    }

    /// The last `congestion_state` the peer reported in a response (SMPP
    /// 5.0 peers only; `None` before the first).
    pub fn peer_congestion(&self) -> Option<u8> {
        self.controller.last()
    }

    /// The `congestion_state` our next response would carry (see
    /// [`congestion_state`] for the formula): the inbound window's recent
    /// peak fill mapped to 0-90, 100 after a request arrived beyond the
    /// window lately, or the application's load ([`Session::set_load`]) if
    /// higher. "Lately" spans the last one to two inbound windows' worth
    /// of answers.
    ///
    /// The session adds it to every response the application sends with
    /// [`Session::send_response`] when it is an MC bound to an SMPP 5.0 peer
    /// (never to 3.3/3.4 peers), unless the response carries one already
    /// or is an error answer sent header-only (an error status with an
    /// empty body stays header-only) or a `generic_nack`. The answers the
    /// session sends by itself (`enquire_link_resp`, `unbind_resp`,
    /// `ESME_RTHROTTLED`, error answers) stay header-only.
    pub fn congestion_state(&self) -> u8 {
        self.gauge.current(self.max_inbound())
    }

    /// The application's load last set with [`Session::set_load`].
    pub fn load(&self) -> u8 {
        self.gauge.load()
    }

    /// Peer requests awaiting the application's answer.
    pub fn pending_inbound(&self) -> usize {
        self.inbound.len()
    }

    /// `handle_input` would accept no byte now (output or events not
    /// drained, or the inbound window full in backpressure mode).
    pub fn is_input_blocked(&self) -> bool {
        self.state == State::Closed || (self.inbuf.is_empty() && self.input_blocked())
    }

    /// Gives back the capacity of empty queues and buffers (the output
    /// buffer, events, the in-flight and inbound maps); nothing they hold is
    /// dropped. For a connection that has been quiet a while: an idle
    /// session then holds a few hundred octets, and the queues grow again
    /// on use.
    pub fn shrink(&mut self) {
        if self.out.is_empty() {
            self.out = Vec::new();
        }
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
        if self.inbound.is_empty() {
            self.inbound = Inbound::default();
        }
        if self.inbuf.is_empty() {
            self.inbuf = BytesMut::new();
        }
        self.in_flight.shrink();
    }

    /// Counters and window use.
    pub fn stats(&self) -> Stats {
        Stats {
            in_flight: self.in_flight.len(),
            window_in_flight: self.in_flight.app_len(),
            max_in_flight: self.in_flight.window(),
            configured_in_flight: self.controller.configured(),
            peer_congestion: self.controller.last(),
            peer_congestion_max: self.controller.max(),
            congestion_states_received: self.controller.received(),
            congestion_state_sent: self.gauge.last_sent(),
            pending_inbound: self.inbound.len(),
            max_inbound: self.max_inbound(),
            buffered_output: self.out.len(),
            buffered_input: self.inbuf.len(),
            buffered_events: self.events.len(),
            ..self.tally.snapshot()
        }
    }

    // ---- inputs ----

    /// Bytes read from the connection, in any chunking. Returns how many
    /// were accepted; offer the rest again after draining (see the module
    /// docs). Never more than one PDU (at most `decode.max_pdu_len` octets)
    /// is buffered.
    #[must_use]
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> usize {
        self.tick(now);
        let mut consumed = 0;
        while self.state != State::Closed {
            let have = self.inbuf.len();
            if have == 0 && self.input_blocked() {
                break;
            }
            // Octets still missing from the frame being assembled.
            let need = if have < 4 {
                4 - have
            } else {
                match pdu::frame_len(&self.inbuf, &self.config.decode) {
                    Ok(Some(len)) => len - have,
                    Ok(None) => 4 - have,
                    Err(e) => {
                        self.lose_framing(e);
                        break;
                    }
                }
            };
            if need == 0 {
                self.decode_one();
                continue;
            }
            let rest = &data[consumed..];
            if rest.is_empty() {
                break;
            }
            // At a frame boundary with the length in view, take the whole frame at once.
            let take = if have == 0 && rest.len() >= 4 {
                match pdu::frame_len(rest, &self.config.decode) {
                    Ok(Some(len)) => len.min(rest.len()),
                    _ => 4,
                }
            } else {
                need.min(rest.len())
            };
            if self.inbuf.capacity() - have < take {
                self.inbuf.reserve(take.max(INPUT_CHUNK));
            }
            self.inbuf.extend_from_slice(&rest[..take]);
            consumed += take;
        }
        if self.inbuf.is_empty() && self.inbuf.capacity() > 0 {
            // Between frames: let the chunk go with the last PDU decoded from
            // it, rather than hold it while the peer is quiet.
            self.inbuf = BytesMut::new();
        }
        consumed
    }

    /// The peer closed the connection (or it broke). In UNBOUND this is the
    /// normal end; otherwise the session closes with
    /// [`SessionError::ConnectionLost`].
    pub fn handle_eof(&mut self, now: Instant) {
        self.tick(now);
        let reason = if self.state == State::Unbound {
            CloseReason::Unbound
        } else {
            CloseReason::Error(SessionError::ConnectionLost)
        };
        self.close_with(reason);
    }

    /// Time passed: act on every deadline at or before `now`. Calls before
    /// the deadline from [`poll_timeout`](Session::poll_timeout) do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        if self.state == State::Closed {
            return;
        }
        let now = self.now;
        while let Some(seq) = self.in_flight.pop_expired(now) {
            if let Some((entry, announce)) = self.in_flight.remove(seq) {
                self.timed_out.push(entry.seq, entry.command_id);
                self.resolve(entry, announce, Outcome::Failed(RequestError::Timeout));
            }
        }
        let due = |s: &Self, t: Timer| {
            s.timers
                .deadline(t, s.state, &s.config)
                .is_some_and(|d| d <= now)
        };
        if due(self, Timer::EnquireLinkResponse) {
            return self.close_with(CloseReason::Error(SessionError::KeepaliveTimeout));
        }
        if due(self, Timer::SessionInit) {
            return self.close_with(CloseReason::Error(SessionError::SessionInitTimeout));
        }
        if due(self, Timer::Unbind) {
            match self.unbinding {
                Unbinding::Peers(seq) => {
                    self.write_header(CommandId::UNBIND_RESP, CommandStatus::OK, seq);
                    return self.close_with(CloseReason::Unbound);
                }
                _ => return self.close_with(CloseReason::Error(SessionError::UnbindTimeout)),
            }
        }
        if due(self, Timer::Inactivity) {
            self.close_cause = Some(SessionError::InactivityTimeout);
            self.start_unbind(false);
        }
        if due(self, Timer::EnquireLink) {
            let deadline = self.after(self.config.enquire_link_timeout);
            let seq =
                self.in_flight
                    .insert(CommandId::ENQUIRE_LINK, Origin::Keepalive, deadline, false);
            self.write_header(CommandId::ENQUIRE_LINK, CommandStatus::OK, seq);
            self.timers.keepalive = Some((seq.get(), deadline));
        }
        self.maybe_answer_unbind();
    }

    // ---- commands ----

    /// ESME: binds (OPEN, or OUTBOUND after an outbind). Resolves with
    /// [`Event::Response`] carrying the `bind_*_resp` (status 0: the session
    /// is bound, after an [`Event::StateChanged`]) or [`Event::RequestFailed`].
    pub fn bind(
        &mut self,
        now: Instant,
        kind: BindKind,
        bind: Bind,
    ) -> Result<SequenceNumber, SendError<Bind>> {
        self.tick(now);
        let id = kind.command_id();
        if let Err(e) = self.check_local(id) {
            return Err(e.map(|()| bind));
        }
        if self.bind_in_flight {
            return Err(SendError::InProgress(bind));
        }
        let offered = bind.interface_version;
        let body = kind.request(bind);
        let deadline = self.after(self.config.response_timeout);
        let unwrap_bind = |b: Body| match b {
            Body::BindTransmitter(b) | Body::BindReceiver(b) | Body::BindTransceiver(b) => *b,
            _ => unreachable!("a bind body"),
        };
        let seq = self
            .send_tracked(body, Origin::Bind(kind), deadline, true)
            .map_err(|e| e.map(unwrap_bind))?;
        self.bind_in_flight = true;
        self.offered_version = offered;
        Ok(seq)
    }

    /// MC: sends `outbind` on a connection we opened to the ESME (OPEN
    /// only); the session moves to OUTBOUND and waits for the ESME's bind.
    /// `outbind` has no response.
    pub fn outbind(
        &mut self,
        now: Instant,
        outbind: Outbind,
    ) -> Result<SequenceNumber, SendError<Outbind>> {
        self.tick(now);
        if let Err(e) = self.check_local(CommandId::OUTBIND) {
            return Err(e.map(|()| outbind));
        }
        let seq = self
            .send_untracked(Body::Outbind(Box::new(outbind)))
            .map_err(|e| {
                e.map(|b| match b {
                    Body::Outbind(o) => *o,
                    _ => unreachable!("an outbind body"),
                })
            })?;
        self.set_state(State::Outbound);
        Ok(seq)
    }

    /// Sends an operation request (`submit_sm`, `deliver_sm`, `data_sm`,
    /// `query_sm`, ..., `alert_notification`), legal for our role in the
    /// current state per [`RULES`]. Session management has its own commands
    /// (`bind`, `unbind`, `enquire_link`, `outbind`).
    ///
    /// Returns the sequence number, by which [`Event::Response`] or
    /// [`Event::RequestFailed`] will resolve it (`alert_notification` has no
    /// response and resolves at once). A full window refuses with
    /// [`SendError::WindowFull`] and announces [`Event::WindowAvailable`] later.
    ///
    /// What goes out follows the version agreed with the peer
    /// ([`Session::interface_version`]): TLVs it cannot take are left out
    /// ([`Event::TlvsDropped`]); an operation newer than its version, or
    /// a text in `message_payload` to a 3.3 peer, is refused with
    /// [`SendError::PeerVersion`].
    #[inline]
    pub fn send_request(
        &mut self,
        now: Instant,
        body: Body,
    ) -> Result<SequenceNumber, SendError<Body>> {
        self.tick(now);
        let id = body.command_id();
        if matches!(
            id,
            CommandId::BIND_RECEIVER
                | CommandId::BIND_TRANSMITTER
                | CommandId::BIND_TRANSCEIVER
                | CommandId::UNBIND
                | CommandId::ENQUIRE_LINK
                | CommandId::OUTBIND
        ) || !id.is_request()
        {
            return Err(if self.state == State::Closed {
                SendError::Closed(body)
            } else {
                SendError::WrongCommand(body)
            });
        }
        if let Err(e) = self
            .check_local(id)
            .and_then(|()| self.check_peer_version(&body))
        {
            return Err(e.map(|()| body));
        }
        let mut body = body;
        let trimmed = Self::trim_for_peer(self.version, &mut body);
        let sent = if id.response_id().is_none() {
            self.send_untracked(body)
        } else {
            let deadline = self.after(self.config.response_timeout);
            self.send_tracked(body, Origin::App, deadline, true)
        };
        match sent {
            Ok(seq) => {
                self.count_trimmed(trimmed, id, seq);
                Ok(seq)
            }
            Err(e) => Err(e.map(|mut body| {
                version::untrim(trimmed, &mut body);
                body
            })),
        }
    }

    /// Answers the peer's request `sequence_number` (from [`Event::Request`]
    /// or [`Event::BindRequest`]) with its `*_resp` body, or `generic_nack`.
    /// An error status with a default body is sent header-only. TLVs the
    /// peer's version cannot take are left out ([`Event::TlvsDropped`]):
    /// all of them for a 3.3 peer, `sc_interface_version` in the answer to
    /// its bind included.
    ///
    /// MC: answering a bind with status 0 binds the session.
    #[inline]
    pub fn send_response(
        &mut self,
        now: Instant,
        sequence_number: SequenceNumber,
        status: CommandStatus,
        body: Body,
    ) -> Result<(), SendError<Body>> {
        self.tick(now);
        let id = body.command_id();
        if self.state == State::Closed {
            return Err(SendError::Closed(body));
        }
        if !id.is_response() || !id.is_known() {
            return Err(SendError::WrongCommand(body));
        }
        let Some(&request) = self.inbound.get(&sequence_number.get()) else {
            return Err(SendError::NotPending(body));
        };
        if id != CommandId::GENERIC_NACK && request.response_id() != Some(id) {
            return Err(SendError::ResponseMismatch(body));
        }
        let mut body = body;
        let stamped = self.stamp_congestion_state(status, &mut body);
        let version = self.peer_version(Some(sequence_number));
        let trimmed = Self::trim_for_peer(version, &mut body);
        if let Err(e) = self.encode_bounded(status, sequence_number, &body) {
            version::untrim(trimmed, &mut body);
            if stamped {
                if let Some(tlvs) = body.tlvs_mut() {
                    tlvs.remove(pdu::TlvTag::CONGESTION_STATE);
                }
            }
            return Err(e.map(|()| body));
        }
        drop(body);
        self.count_trimmed(trimmed, id, sequence_number);
        self.inbound.remove(&sequence_number.get());
        self.gauge.answered(self.inbound.len(), self.max_inbound());
        if self.pending_bind == Some(sequence_number) {
            self.pending_bind = None;
            let accepted = status.is_ok() && id != CommandId::GENERIC_NACK;
            if let (true, Some(kind)) = (accepted, BindKind::from_command_id(request)) {
                if matches!(self.state, State::Open | State::Outbound) {
                    self.version = Some(negotiate(INTERFACE_VERSION, Some(self.offered_version)));
                    self.set_state(kind.bound_state());
                }
            }
        }
        self.maybe_answer_unbind();
        Ok(())
    }

    /// Sends `enquire_link` (any connected state); it counts against the
    /// outbound window and resolves like any request. The session sends its
    /// own keepalives too (see [`SessionConfig::enquire_link_interval`]).
    pub fn enquire_link(&mut self, now: Instant) -> Result<SequenceNumber, SendError<()>> {
        self.tick(now);
        self.check_local(CommandId::ENQUIRE_LINK)?;
        let deadline = self.after(self.config.response_timeout);
        self.send_tracked(
            Body::EnquireLink(pdu::Tlvs::new()),
            Origin::App,
            deadline,
            true,
        )
        .map_err(|e| e.map(|_| ()))
    }

    /// Starts a graceful unbind (bound states): the session moves to
    /// UNBOUND, still accepts responses to earlier requests, and closes when
    /// `unbind_resp` arrives (resolving this request) or after
    /// [`SessionConfig::unbind_timeout`].
    pub fn unbind(&mut self, now: Instant) -> Result<SequenceNumber, SendError<()>> {
        self.tick(now);
        self.check_local(CommandId::UNBIND)?;
        if self.unbinding != Unbinding::No {
            return Err(SendError::InProgress(()));
        }
        self.start_unbind(true).ok_or(SendError::OutputFull(()))
    }

    /// Sets the application's own load, 0-100 (higher values count as
    /// 100): queue depth, store backlog, rate-limit headroom, as the
    /// application measures them. It is one input of
    /// [`Session::congestion_state`] (the largest wins), the value an MC
    /// reports to SMPP 5.0 peers; 0 (the default) leaves only the inbound
    /// window's fill.
    pub fn set_load(&mut self, load: u8) {
        self.gauge.set_load(load);
    }

    /// Closes at once, without unbinding: every request in flight fails,
    /// then [`Event::Closed`] with [`CloseReason::Local`].
    pub fn close(&mut self, now: Instant) -> Result<(), SendError<()>> {
        self.tick(now);
        if self.state == State::Closed {
            return Err(SendError::Closed(()));
        }
        self.close_with(CloseReason::Local);
        Ok(())
    }

    // ---- outputs ----

    /// Appends every queued PDU (whole PDUs only) to `buf`. `None` when there
    /// is nothing to send.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.tick(now);
        if self.out.is_empty() {
            return None;
        }
        let t = Transmit {
            len: self.out.len(),
            pdus: self.out_pdus,
        };
        if buf.is_empty() {
            // Appending to nothing is handing over: swap buffers instead of
            // copying (both keep their capacity for reuse).
            std::mem::swap(&mut self.out, buf);
        } else {
            buf.extend_from_slice(&self.out);
        }
        self.out.clear();
        self.out_pdus = 0;
        Some(t)
    }

    /// The next event, if any.
    #[must_use]
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest deadline at which [`handle_timeout`](Session::handle_timeout)
    /// has something to do. `None` when no timer runs.
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let requests = self.in_flight.next_deadline();
        let session = self.timers.earliest(self.state, &self.config);
        match (requests, session) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ---- internals ----

    /// Sets the next sequence number to allocate (tests: wrap-around).
    #[cfg(test)]
    pub(crate) fn set_next_sequence_number(&mut self, seq: SequenceNumber) {
        self.in_flight.set_next(seq);
    }

    /// `now + d`, saturating far in the future instead of overflowing (a
    /// configured `Duration::MAX` means "never", not a panic).
    fn after(&self, d: std::time::Duration) -> Instant {
        const CENTURY: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 86_400);
        self.now.checked_add(d.min(CENTURY)).unwrap_or(self.now)
    }

    fn tick(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    /// MC answering an SMPP 5.0 peer: adds `congestion_state` to the answer
    /// of a message (submit, data, deliver, broadcast) that has none (see
    /// [`Session::congestion_state`]).
    /// Whether it added one.
    #[inline]
    fn stamp_congestion_state(&mut self, status: CommandStatus, body: &mut Body) -> bool {
        // Only on the answers to flow-controlled traffic: the signal is about
        // message rates, and the other responses (cancel_sm_resp,
        // replace_sm_resp...) are header-only in many stacks, which may not
        // expect a TLV there (rusmpp 0.4 closed the session on one in a
        // bind's answer).
        if self.role != Role::Mc
            || !matches!(
                body.command_id(),
                CommandId::SUBMIT_SM_RESP
                    | CommandId::DATA_SM_RESP
                    | CommandId::SUBMIT_MULTI_RESP
                    | CommandId::DELIVER_SM_RESP
                    | CommandId::BROADCAST_SM_RESP
            )
        {
            return false;
        }
        if self.version.unwrap_or(0) < 0x50 || (!status.is_ok() && body.is_default()) {
            return false;
        }
        let value = self.congestion_state();
        let Some(tlvs) = body.tlvs_mut() else {
            return false;
        };
        if tlvs.contains(pdu::TlvTag::CONGESTION_STATE) {
            return false;
        }
        tlvs.add_congestion_state(value);
        self.gauge.sent(value);
        true
    }

    /// A response to one of our requests reported `congestion_state` `c`
    /// (SMPP 5.0 peers): adapt the window.
    pub(super) fn on_peer_congestion(&mut self, c: u8) {
        let window = self
            .controller
            .on_congestion_state(c, self.in_flight.app_len());
        self.in_flight.set_window(window);
    }

    /// A response of an SMPP 5.0 peer without `congestion_state`.
    pub(super) fn on_peer_silence(&mut self) {
        let window = self.controller.on_silence();
        self.in_flight.set_window(window);
    }

    fn max_inbound(&self) -> usize {
        self.config.max_inbound.max(1)
    }

    fn input_blocked(&self) -> bool {
        self.out.len() >= self.config.max_buffered_output
            || self.events.len() >= self.config.max_buffered_events
            || (self.config.inbound_overflow == InboundOverflow::Backpressure
                && self.inbound.len() >= self.max_inbound())
    }

    /// Our role may send `id` now (per [`RULES`]).
    fn check_local(&self, id: CommandId) -> Result<(), SendError<()>> {
        if self.state == State::Closed {
            return Err(SendError::Closed(()));
        }
        match rule_for(id) {
            Some(rule) if rule.states(self.role) == StateSet::NONE => {
                Err(SendError::WrongCommand(()))
            }
            Some(rule) if rule.states(self.role).contains(self.state) => Ok(()),
            Some(_) => Err(SendError::InvalidState(())),
            None => Err(SendError::WrongCommand(())),
        }
    }

    #[inline(always)]
    fn emit(&mut self, event: Event) {
        self.events.push_back(event);
    }

    fn set_state(&mut self, to: State) {
        let from = self.state;
        if from != to {
            self.state = to;
            self.emit(Event::StateChanged { from, to });
        }
    }

    /// Sends unbind and enters UNBOUND. `None` if the output buffer is full.
    fn start_unbind(&mut self, report: bool) -> Option<SequenceNumber> {
        let deadline = self.after(self.config.unbind_timeout);
        if report
            && !self.out.is_empty()
            && self.out.len() + HEADER_LEN > self.config.max_buffered_output
        {
            return None;
        }
        let seq = self.in_flight.insert(
            CommandId::UNBIND,
            Origin::Unbind { report },
            deadline,
            false,
        );
        self.write_header(CommandId::UNBIND, CommandStatus::OK, seq);
        self.unbinding = Unbinding::Ours;
        self.timers.unbind = Some(deadline);
        self.set_state(State::Unbound);
        Some(seq)
    }

    /// The peer unbound us: answer once nothing is outstanding either way.
    fn maybe_answer_unbind(&mut self) {
        let Unbinding::Peers(seq) = self.unbinding else {
            return;
        };
        let keepalive = usize::from(self.timers.keepalive.is_some());
        if self.in_flight.len().saturating_sub(keepalive) == 0 && self.inbound.is_empty() {
            self.write_header(CommandId::UNBIND_RESP, CommandStatus::OK, seq);
            self.close_with(CloseReason::Unbound);
        }
    }

    fn close_with(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        // Our unbind, unanswered in time, timed out; everything else in
        // flight fails with the session.
        let unbind_timed_out = matches!(reason, CloseReason::Error(SessionError::UnbindTimeout));
        for entry in self.in_flight.drain() {
            if entry.origin.reported() {
                let error = if unbind_timed_out && entry.command_id == CommandId::UNBIND {
                    RequestError::Timeout
                } else {
                    RequestError::SessionClosed
                };
                self.emit(Event::RequestFailed {
                    sequence_number: SequenceNumber::new(entry.seq),
                    command_id: entry.command_id,
                    error,
                });
            }
        }
        self.inbound.clear();
        self.pending_bind = None;
        self.bind_in_flight = false;
        self.unbinding = Unbinding::No;
        self.timers.keepalive = None;
        self.timers.unbind = None;
        self.inbuf = BytesMut::new();
        self.state = State::Closed;
        let reason = match (reason, self.close_cause.take()) {
            (CloseReason::Unbound, Some(cause)) => CloseReason::Error(cause),
            (reason, _) => reason,
        };
        self.emit(Event::Closed(reason));
    }

    /// A request of ours ended: one event (if reported) and its side effects.
    #[inline(always)]
    fn resolve(&mut self, entry: Entry, announce: bool, outcome: Outcome) {
        let failed = |error| Event::RequestFailed {
            sequence_number: SequenceNumber::new(entry.seq),
            command_id: entry.command_id,
            error,
        };
        match entry.origin {
            Origin::App => self.emit(match outcome {
                Outcome::Response(pdu) => Event::Response(pdu),
                Outcome::Failed(e) => failed(e),
            }),
            Origin::Bind(kind) => {
                self.bind_in_flight = false;
                match outcome {
                    Outcome::Response(pdu) => {
                        if pdu.command_status.is_ok()
                            && matches!(self.state, State::Open | State::Outbound)
                        {
                            let mc = match &pdu.body {
                                Body::BindTransmitterResp(r)
                                | Body::BindReceiverResp(r)
                                | Body::BindTransceiverResp(r) => r.tlvs.sc_interface_version(),
                                _ => None,
                            };
                            self.version = Some(negotiate(self.offered_version, mc));
                            if self.version >= Some(0x50) {
                                // A 5.0 MC may report congestion: start slow.
                                let window = self.controller.start(self.in_flight.app_len());
                                self.in_flight.set_window(window);
                            }
                            self.set_state(kind.bound_state());
                        }
                        self.emit(Event::Response(pdu));
                    }
                    Outcome::Failed(e) => self.emit(failed(e)),
                }
            }
            Origin::Unbind { report } => {
                if report {
                    self.emit(match outcome {
                        Outcome::Response(pdu) => Event::Response(pdu),
                        Outcome::Failed(e) => failed(e),
                    });
                }
                self.close_with(CloseReason::Unbound);
            }
            Origin::Keepalive => {
                self.timers.keepalive = None;
            }
        }
        if announce && self.state != State::Closed {
            self.emit(Event::WindowAvailable);
        }
    }
}

/// enquire_link and its response prove liveness but are not transactions.
fn is_keepalive(id: CommandId) -> bool {
    id == CommandId::ENQUIRE_LINK || id == CommandId::ENQUIRE_LINK_RESP
}

#[cfg(test)]
mod tests;
