//! Session states, and THE table of which request is legal in which state.
//!
//! Everything the session decides about legality comes from [`RULES`]: one
//! row per request `command_id`, with the set of states in which an ESME and
//! an MC may send it (SMPP 5.0 Table 2-1, reference §2.2/§7.3), and how the
//! receiver answers it when it arrives in any other state (§7.4). Responses
//! are not in the table: a response is legal in every state when it answers
//! an outstanding request, and only then.

use core::fmt;

use crate::pdu::{Bind, BindResp, Body, CommandId, CommandStatus};

/// Which end of the connection this session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// External Short Message Entity: the client that binds.
    Esme,
    /// Message Centre (SMSC): the server that accepts binds.
    Mc,
}

impl Role {
    /// The other end.
    pub const fn peer(self) -> Role {
        match self {
            Role::Esme => Role::Mc,
            Role::Mc => Role::Esme,
        }
    }

    /// `"ESME"` or `"MC"`.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Esme => "ESME",
            Role::Mc => "MC",
        }
    }
}

/// The three kinds of bind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BindKind {
    /// `bind_transmitter`: the ESME submits.
    Transmitter,
    /// `bind_receiver`: the MC delivers.
    Receiver,
    /// `bind_transceiver`: both.
    Transceiver,
}

impl BindKind {
    /// All three, in command id order of their requests.
    pub const ALL: [BindKind; 3] = [
        BindKind::Receiver,
        BindKind::Transmitter,
        BindKind::Transceiver,
    ];

    /// The request's command id.
    pub const fn command_id(self) -> CommandId {
        match self {
            BindKind::Transmitter => CommandId::BIND_TRANSMITTER,
            BindKind::Receiver => CommandId::BIND_RECEIVER,
            BindKind::Transceiver => CommandId::BIND_TRANSCEIVER,
        }
    }

    /// The kind of a bind request or bind response id.
    pub const fn from_command_id(id: CommandId) -> Option<BindKind> {
        match id.0 & 0x7FFF_FFFF {
            0x02 => Some(BindKind::Transmitter),
            0x01 => Some(BindKind::Receiver),
            0x09 => Some(BindKind::Transceiver),
            _ => None,
        }
    }

    /// The bind request body of this kind.
    pub fn request(self, bind: Bind) -> Body {
        match self {
            BindKind::Transmitter => Body::BindTransmitter(Box::new(bind)),
            BindKind::Receiver => Body::BindReceiver(Box::new(bind)),
            BindKind::Transceiver => Body::BindTransceiver(Box::new(bind)),
        }
    }

    /// The bind response body of this kind: what an MC passes to
    /// [`Session::send_response`](super::Session::send_response) to answer
    /// [`Event::BindRequest`](super::Event::BindRequest).
    pub fn response(self, resp: BindResp) -> Body {
        match self {
            BindKind::Transmitter => Body::BindTransmitterResp(resp),
            BindKind::Receiver => Body::BindReceiverResp(resp),
            BindKind::Transceiver => Body::BindTransceiverResp(resp),
        }
    }

    /// The state a successful bind of this kind enters.
    pub const fn bound_state(self) -> State {
        match self {
            BindKind::Transmitter => State::BoundTx,
            BindKind::Receiver => State::BoundRx,
            BindKind::Transceiver => State::BoundTrx,
        }
    }
}

/// A session state (reference §7.1; v5.0 names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Connected, not bound (a bind may be in progress).
    Open,
    /// The MC sent `outbind`; the ESME is expected to bind.
    Outbound,
    /// Bound as transmitter.
    BoundTx,
    /// Bound as receiver.
    BoundRx,
    /// Bound as transceiver.
    BoundTrx,
    /// An `unbind` was sent or received: only outstanding responses and
    /// `enquire_link` may follow.
    Unbound,
    /// The session is over; only buffered output remains to be sent.
    Closed,
}

impl State {
    /// Every state, in table order.
    pub const ALL: [State; 7] = [
        State::Open,
        State::Outbound,
        State::BoundTx,
        State::BoundRx,
        State::BoundTrx,
        State::Unbound,
        State::Closed,
    ];

    /// The specification's name (`"BOUND_TRX"`).
    pub const fn name(self) -> &'static str {
        match self {
            State::Open => "OPEN",
            State::Outbound => "OUTBOUND",
            State::BoundTx => "BOUND_TX",
            State::BoundRx => "BOUND_RX",
            State::BoundTrx => "BOUND_TRX",
            State::Unbound => "UNBOUND",
            State::Closed => "CLOSED",
        }
    }

    /// One of the three bound states.
    pub const fn is_bound(self) -> bool {
        matches!(self, State::BoundTx | State::BoundRx | State::BoundTrx)
    }

    /// The bind kind of a bound state.
    pub const fn bind_kind(self) -> Option<BindKind> {
        match self {
            State::BoundTx => Some(BindKind::Transmitter),
            State::BoundRx => Some(BindKind::Receiver),
            State::BoundTrx => Some(BindKind::Transceiver),
            _ => None,
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`State`]s (a bit set), used by the table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StateSet(u8);

impl StateSet {
    /// No state.
    pub const NONE: StateSet = StateSet(0);
    /// OPEN.
    pub const OPEN: StateSet = StateSet(State::Open.bit());
    /// OUTBOUND.
    pub const OUTBOUND: StateSet = StateSet(State::Outbound.bit());
    /// BOUND_TX.
    pub const TX: StateSet = StateSet(State::BoundTx.bit());
    /// BOUND_RX.
    pub const RX: StateSet = StateSet(State::BoundRx.bit());
    /// BOUND_TRX.
    pub const TRX: StateSet = StateSet(State::BoundTrx.bit());
    /// UNBOUND.
    pub const UNBOUND: StateSet = StateSet(State::Unbound.bit());
    /// OPEN and OUTBOUND: before a bind.
    pub const UNBOUND_BEFORE_BIND: StateSet = Self::OPEN.union(Self::OUTBOUND);
    /// The three bound states.
    pub const BOUND: StateSet = Self::TX.union(Self::RX).union(Self::TRX);
    /// BOUND_TX and BOUND_TRX: the ESME may submit.
    pub const TRANSMIT: StateSet = Self::TX.union(Self::TRX);
    /// BOUND_RX and BOUND_TRX: the MC may deliver.
    pub const RECEIVE: StateSet = Self::RX.union(Self::TRX);
    /// Every state with a live connection (all but CLOSED).
    pub const CONNECTED: StateSet = Self::UNBOUND_BEFORE_BIND
        .union(Self::BOUND)
        .union(Self::UNBOUND);

    /// Both sets.
    pub const fn union(self, other: StateSet) -> StateSet {
        StateSet(self.0 | other.0)
    }

    /// `state` is in the set.
    pub const fn contains(self, state: State) -> bool {
        self.0 & state.bit() != 0
    }

    /// The states in the set, in table order.
    pub fn iter(self) -> impl Iterator<Item = State> {
        State::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl fmt::Debug for StateSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(State::name)).finish()
    }
}

/// How a request that is not legal in the receiver's state is answered
/// (reference §7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IllegalAnswer {
    /// The request's own `*_resp`, same sequence number, `ESME_RINVBNDSTS`, no body.
    InvalidBindStatus,
    /// Binds: `ESME_RALYBND` when the receiver is bound, `ESME_RINVBNDSTS` otherwise.
    AlreadyBoundWhenBound,
    /// No response PDU exists (outbind, alert_notification): not answered, only reported.
    NotAnswered,
}

impl IllegalAnswer {
    /// The status to answer with in `state`, or `None` when nothing is sent.
    pub const fn status(self, state: State) -> Option<CommandStatus> {
        match self {
            IllegalAnswer::InvalidBindStatus => Some(CommandStatus::INVALID_BIND_STATUS),
            IllegalAnswer::AlreadyBoundWhenBound if state.is_bound() => {
                Some(CommandStatus::ALREADY_BOUND)
            }
            IllegalAnswer::AlreadyBoundWhenBound => Some(CommandStatus::INVALID_BIND_STATUS),
            IllegalAnswer::NotAnswered => None,
        }
    }
}

/// One row of the legality table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The request's command id.
    pub command: CommandId,
    /// States in which an ESME may send it.
    pub esme: StateSet,
    /// States in which an MC may send it.
    pub mc: StateSet,
    /// How the receiver answers it in any other state.
    pub illegal: IllegalAnswer,
    /// The first SMPP version with this operation (`interface_version`
    /// encoding: 0x33 for 3.3 and earlier, 0x34, 0x50). Once bound, a
    /// session refuses to send it (request or response) to a peer that
    /// speaks an older version ([`SendError::PeerVersion`](super::SendError::PeerVersion)).
    pub since: u8,
    /// Why the row is as it is, where it departs from or refines the v5.0 matrix.
    pub note: &'static str,
}

impl Rule {
    /// States in which `role` may send this request.
    pub const fn states(&self, role: Role) -> StateSet {
        match role {
            Role::Esme => self.esme,
            Role::Mc => self.mc,
        }
    }
}

const fn rule(command: CommandId, esme: StateSet, mc: StateSet, note: &'static str) -> Rule {
    let illegal = match command.response_id() {
        None => IllegalAnswer::NotAnswered,
        Some(_) if matches!(command.0, 0x01 | 0x02 | 0x09) => IllegalAnswer::AlreadyBoundWhenBound,
        Some(_) => IllegalAnswer::InvalidBindStatus,
    };
    Rule {
        command,
        esme,
        mc,
        illegal,
        since: since(command),
        note,
    }
}

/// The first version with each operation (reference §2.1, "Since"):
/// `bind_transceiver`, `outbind` and `data_sm` came with 3.4, the three
/// broadcast operations with 5.0; the rest were in 3.3 (`alert_notification`
/// counts as 3.3: its 3.3 status is not verified, so it is not refused).
const fn since(command: CommandId) -> u8 {
    match command.0 & 0x7FFF_FFFF {
        0x09 | 0x0B | 0x103 => 0x34,
        0x111..=0x113 => 0x50,
        _ => 0x33,
    }
}

use StateSet as S;

/// Which request each role may send in which state: SMPP 5.0 Table 2-1 with
/// the practical v3.4 notes of reference §2.2 (`replace_sm` in TRX,
/// `enquire_link` in every state). Receiving uses the peer's column: a request
/// is accepted in our state when the peer's role may send it there.
pub const RULES: &[Rule] = &[
    rule(
        CommandId::BIND_RECEIVER,
        S::UNBOUND_BEFORE_BIND,
        S::NONE,
        "the answer to outbind in v3.4",
    ),
    rule(
        CommandId::BIND_TRANSMITTER,
        S::UNBOUND_BEFORE_BIND,
        S::NONE,
        "OUTBOUND per the v5.0 matrix",
    ),
    rule(
        CommandId::BIND_TRANSCEIVER,
        S::UNBOUND_BEFORE_BIND,
        S::NONE,
        "new in 3.4; answers outbind in v5.0",
    ),
    rule(
        CommandId::OUTBIND,
        S::NONE,
        S::OPEN,
        "no response PDU; the ESME answers with a bind or closes",
    ),
    rule(
        CommandId::UNBIND,
        S::BOUND,
        S::BOUND,
        "an unbind crossing our own in UNBOUND is answered with unbind_resp OK",
    ),
    rule(
        CommandId::ENQUIRE_LINK,
        S::CONNECTED,
        S::CONNECTED,
        "v5.0: every state; v3.4 listed bound states only",
    ),
    rule(CommandId::SUBMIT_SM, S::TRANSMIT, S::NONE, ""),
    rule(CommandId::SUBMIT_MULTI, S::TRANSMIT, S::NONE, ""),
    rule(CommandId::QUERY_SM, S::TRANSMIT, S::NONE, ""),
    rule(CommandId::CANCEL_SM, S::TRANSMIT, S::NONE, ""),
    rule(
        CommandId::REPLACE_SM,
        S::TRANSMIT,
        S::NONE,
        "v3.4 lists BOUND_TX only; every real MC accepts it on TRX (v5.0 does too)",
    ),
    rule(CommandId::BROADCAST_SM, S::TRANSMIT, S::NONE, ""),
    rule(CommandId::QUERY_BROADCAST_SM, S::TRANSMIT, S::NONE, ""),
    rule(CommandId::CANCEL_BROADCAST_SM, S::TRANSMIT, S::NONE, ""),
    rule(CommandId::DELIVER_SM, S::NONE, S::RECEIVE, ""),
    rule(
        CommandId::DATA_SM,
        S::TRANSMIT,
        S::RECEIVE,
        "either direction",
    ),
    rule(
        CommandId::ALERT_NOTIFICATION,
        S::NONE,
        S::RECEIVE,
        "no response PDU",
    ),
];

/// The table row of a request id; `None` for responses and unknown ids.
pub fn rule_for(id: CommandId) -> Option<&'static Rule> {
    // The row index by request id: 19 entries, a match compiles to a jump table.
    let index = match id.0 {
        0x01 => 0,
        0x02 => 1,
        0x09 => 2,
        0x0B => 3,
        0x06 => 4,
        0x15 => 5,
        0x04 => 6,
        0x21 => 7,
        0x03 => 8,
        0x08 => 9,
        0x07 => 10,
        0x111 => 11,
        0x112 => 12,
        0x113 => 13,
        0x05 => 14,
        0x103 => 15,
        0x102 => 16,
        _ => return None,
    };
    Some(&RULES[index])
}

/// The first SMPP version with the operation `id` (a request or its
/// response): 0x33, 0x34 or 0x50; `None` for unknown ids and `generic_nack`
/// (in every version).
pub fn operation_since(id: CommandId) -> Option<u8> {
    // A request is known exactly when the table has its row (generic_nack's
    // request part, 0, has none); a response must be one of the names too
    // (outbind and alert_notification have none), looked up only then.
    let rule = rule_for(CommandId(id.0 & 0x7FFF_FFFF))?;
    if id.is_response() && !id.is_known() {
        return None;
    }
    Some(rule.since)
}

/// `role` may send the request `id` in `state` (false for unknown ids and responses).
pub fn may_send(role: Role, state: State, id: CommandId) -> bool {
    rule_for(id).is_some_and(|r| r.states(role).contains(state))
}

/// The statuses the session itself puts in answers it sends without the
/// application (the decoder adds field-specific ones, see
/// [`DecodeErrorKind::status`](crate::pdu::DecodeErrorKind::status)).
pub const AUTOMATIC_STATUSES: &[(CommandStatus, &str)] = &[
    (CommandStatus::INVALID_COMMAND_LENGTH, "generic_nack (sequence number 0) for a command_length below 16 or above the maximum; the session then closes"),
    (CommandStatus::INVALID_COMMAND_ID, "generic_nack for a request with an unknown command id"),
    (CommandStatus::INVALID_BIND_STATUS, "the `*_resp` of a request not allowed in the current state; a bind while another bind awaits the application"),
    (CommandStatus::ALREADY_BOUND, "`bind_*_resp` for a bind received while bound"),
    (CommandStatus::THROTTLED, "the `*_resp` of a request beyond the inbound window (`InboundOverflow::Throttle`)"),
    (CommandStatus::SYSTEM_ERROR, "the `*_resp` of a request reusing the sequence number of one still awaiting our answer"),
];

/// Session rules beyond the table, as (rule, decision) pairs; `docs/CONFORMANCE.md`
/// is generated from them and from [`RULES`].
pub const SESSION_RULES: &[(&str, &str)] = &[
    ("Responses", "A response (generic_nack included) is accepted in every state when it matches an outstanding request of ours by sequence number and command id; a response to one of our last 64 timed-out requests is reported as `Event::LateResponse` and counted (`Stats::late_responses`); any other response is reported (`PeerViolation::UnexpectedResponse`), counted (`Stats::unexpected_responses`) and dropped; neither is answered."),
    ("Unknown command id", "Answered with generic_nack ESME_RINVCMDID echoing the sequence number; reported; the session continues."),
    ("Malformed PDU", "Answered with the request's own `*_resp` carrying the decoder's status (or generic_nack when the header is unusable), same sequence number; reported; the session continues. A malformed response to one of our requests fails that request (`RequestError::MalformedResponse`)."),
    ("Unframeable input", "command_length below 16 or above the configured maximum: generic_nack ESME_RINVCMDLEN with sequence number 0, then the session closes (`SessionError::Framing`)."),
    ("Request in the wrong state", "Answered per the table's last column; reported as `PeerViolation::IllegalRequest`; the session continues."),
    ("Bind while a bind is pending (MC)", "A second bind before the application answered the first is answered ESME_RINVBNDSTS."),
    ("Duplicate sequence number", "A peer request reusing the sequence number of one of its requests we have not answered yet is answered with its `*_resp` and ESME_RSYSERR and reported."),
    ("Version negotiation", "The version spoken once bound is the lower of the two ends' (`session::negotiate`; anything below 0x34 is 3.3). MC: an accepted 3.4 or 5.0 bind is answered with `sc_interface_version` 0x34 or 0x50 (`endpoint::bind_answer`), a 3.3 bind without it. ESME: a `bind_*_resp` without `sc_interface_version` means a pre-3.4 MC. Both ends report it: `Session::interface_version`, `Client::interface_version`, `ConnectionInfo::interface_version`. `Bind::default()` offers 0x34, as ESME libraries do; our clients (`smpp send`, `smpp bench`, the gateway's upstream binds) offer 0x34 unless told otherwise (`--interface-version`)."),
    ("What we send follows the peer's version", "Once bound (and in the MC's answer to a bind), every PDU the session sends is fitted to the version agreed (3.4 §5.3.2.25, 5.0 §2.11.2), in both roles: to a 3.3 peer (a bind offering 0x33 or less; an MC whose `bind_*_resp` has no `sc_interface_version`) no TLV at all, so a delivery receipt goes out with its text only (which carries the id and state) and a 3.3 bind's answer has no `sc_interface_version`; to a 3.4 peer no TLV SMPP 5.0 introduced (the `Since` column of the TLV table: `congestion_state`, `billing_identification`, `broadcast_*`, `source_network_id`, `dest_network_id`, `source_node_id`, `dest_node_id`, `dest_addr_np_*`); to a 5.0 peer everything. Tags no version defines (vendor TLVs) go to 3.4 and 5.0 peers. TLVs left out are counted (`Stats::tlvs_dropped`, and `Stats::pdus_trimmed` per PDU) and reported (`Event::TlvsDropped`; servers add them up in `ServerConfig::tlvs_dropped`, `smpp_tlvs_dropped_total` in `smpp serve`'s `/metrics`); the PDU itself goes out. Refused locally instead, nothing sent and the request handed back whole (`SendError::PeerVersion`): a request whose operation is newer than the peer's version (`broadcast_sm`, `query_broadcast_sm`, `cancel_broadcast_sm` to a 3.3 or 3.4 peer; `data_sm` to a 3.3 peer; see the operations table's `Since`), and a request carrying its content in a non-empty `message_payload` to a 3.3 peer (dropping it would deliver an empty message). Responses are never refused: one answers a request the peer did send (received leniently), so it goes out, trimmed the same way."),
    ("Peer sequence numbers", "Any value (0, high bit set) is accepted and echoed unchanged."),
    ("Our sequence numbers", "1..=0x7FFFFFFF, wrapping to 1, skipping any number still in flight."),
    ("Inbound window", "At most `max_inbound` peer requests await the application's answer. Beyond that: answered ESME_RTHROTTLED and reported (`InboundOverflow::Throttle`), or input stops being accepted until the application answers (`InboundOverflow::Backpressure`)."),
    ("Outbound window", "At most `max_in_flight` of the application's requests await a response (fewer while a 5.0 peer reports congestion, below); more are refused at once (`SendError::WindowFull`) and one `Event::WindowAvailable` follows when room frees."),
    ("congestion_state sent (MC, 5.0)", "An MC bound to an SMPP 5.0 peer adds `congestion_state` to the answers its application sends to flow-controlled traffic (submit_sm_resp, data_sm_resp, submit_multi_resp, deliver_sm_resp, broadcast_sm_resp) that have none: not to the others, which many stacks expect header-only or with one TLV (rusmpp 0.4 closed the session on a second TLV in a `bind_*_resp`); never to 3.3/3.4 peers, never on generic_nack, and an error answer with an empty body stays header-only, as do the session's automatic answers. The value (`session::congestion_state`, `Session::congestion_state`) is the largest of: the inbound window's peak fill over the last one to two windows' worth of answers, mapped to 0-90 (`peak * 90 / max_inbound`: a full window reads 90, the top of the optimum band, so a peer whose window fits ours is told to hold, not to slow down); 100 when a request arrived beyond the inbound window lately (answered ESME_RTHROTTLED); the application's own load, 0-100 (`Session::set_load`; `smpp serve`: 95 after its account's rate limit refused a request, one less per admitted request)."),
    ("congestion_state read (5.0)", "Read from every response to our requests when the session speaks 5.0 (`Session::peer_congestion`, `Stats::peer_congestion`, `peer_congestion_max`, `congestion_states_received`); ignored from 3.3/3.4 peers. It adapts the effective outbound window (`Session::window`, `Stats::max_in_flight`) within [1, `max_in_flight`]: a bind that agrees 5.0 starts it at `INITIAL_WINDOW` (8) and, until the peer reports a first value, every response adds one (a slow start: the configured window within a few round trips, so an MC that never reports loses nothing); then below 30 +1 per response, 30-79 +1 per window's worth of responses, 80-90 hold, above 90 x3/4 (x1/2 at 100) at most once per window's worth. A 3.3/3.4 peer's window is the configured one, unchanged."),
    ("enquire_link from the peer", "Answered automatically in every connected state."),
    ("unbind from the peer", "Answered automatically with unbind_resp, once our own requests in flight have resolved and the application has answered the peer's pending requests (responses are still accepted in UNBOUND, reference §7.2), or when `unbind_timeout` expires; then the session closes."),
    ("Our unbind", "Moves to UNBOUND; responses to earlier requests are still accepted; the session closes on unbind_resp (requests still in flight then fail with `RequestError::SessionClosed`) or after `unbind_timeout`."),
    ("alert_notification / outbind in a wrong state", "No response exists: reported only (`PeerViolation::IllegalRequest` with no answer)."),
    ("Exactly-once resolution", "Every request the application sent ends in exactly one `Event::Response` or `Event::RequestFailed` (timeout, generic_nack, malformed response, session closed); on close all in-flight requests fail before the final `Event::Closed`."),
    ("Bounded memory", "Input is buffered one PDU at a time (at most `max_pdu_len`); output and events are bounded: commands are refused with `SendError::OutputFull` and input stops being accepted while the application does not drain them."),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_id_has_exactly_one_row() {
        for id in CommandId::ALL.iter().filter(|c| c.is_request()) {
            let row = rule_for(*id).unwrap_or_else(|| panic!("{id} has no row"));
            assert_eq!(row.command, *id);
            assert_eq!(RULES.iter().filter(|r| r.command == *id).count(), 1);
        }
        assert_eq!(RULES.len(), 17);
        assert!(rule_for(CommandId::SUBMIT_SM_RESP).is_none());
        assert!(rule_for(CommandId(0x22)).is_none());
    }

    #[test]
    fn matrix_spot_checks() {
        use Role::*;
        assert!(may_send(Esme, State::BoundTrx, CommandId::REPLACE_SM));
        assert!(!may_send(Esme, State::BoundRx, CommandId::SUBMIT_SM));
        assert!(may_send(Mc, State::BoundRx, CommandId::DELIVER_SM));
        assert!(!may_send(Mc, State::BoundTx, CommandId::DELIVER_SM));
        assert!(may_send(Mc, State::Open, CommandId::OUTBIND));
        assert!(!may_send(Esme, State::Open, CommandId::OUTBIND));
        for s in State::ALL {
            assert_eq!(
                may_send(Esme, s, CommandId::ENQUIRE_LINK),
                s != State::Closed
            );
        }
        assert_eq!(
            rule_for(CommandId::BIND_TRANSCEIVER)
                .unwrap()
                .illegal
                .status(State::BoundTx),
            Some(CommandStatus::ALREADY_BOUND)
        );
        assert_eq!(
            rule_for(CommandId::OUTBIND)
                .unwrap()
                .illegal
                .status(State::BoundTx),
            None
        );
    }
}
