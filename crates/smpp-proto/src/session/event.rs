//! What a session tells the application: events, and the three error families
//! (local misuse [`SendError`], peer violations [`PeerViolation`], fatal
//! [`SessionError`]s).

use crate::pdu::{
    Bind, CommandId, CommandStatus, DecodeError, EncodeError, Outbind, Pdu, SequenceNumber,
};

use super::state::{BindKind, State};

/// Something the application should know or act on, from
/// [`Session::poll_event`](super::Session::poll_event).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The state changed (bound, outbound, unbound). Closing is reported by
    /// [`Event::Closed`] instead.
    StateChanged {
        /// Before.
        from: State,
        /// After.
        to: State,
    },
    /// MC: the ESME asks to bind. Answer exactly once with
    /// [`Session::send_response`](super::Session::send_response) and the
    /// matching `bind_*_resp` body: status 0 binds the session, any other
    /// status rejects the bind (the session stays OPEN).
    BindRequest {
        /// Its sequence number, to answer with.
        sequence_number: SequenceNumber,
        /// The kind of bind asked for.
        kind: BindKind,
        /// Credentials and the rest of the body (boxed, as in [`Body`](crate::pdu::Body)).
        bind: Box<Bind>,
    },
    /// ESME: the MC connected to us and asks us to bind. Answer with
    /// [`Session::bind`](super::Session::bind) (receiver or transceiver),
    /// or reject it with [`Session::close`](super::Session::close).
    Outbind(Box<Outbind>),
    /// A request from the peer. Answer it exactly once with
    /// [`Session::send_response`](super::Session::send_response).
    Request(Pdu),
    /// An `alert_notification` from the MC (it has no response).
    AlertNotification(Pdu),
    /// The response to one of our requests: this resolves the request.
    /// Its status may be an error (`ESME_RTHROTTLED`, ...).
    Response(Pdu),
    /// One of our requests failed without a response: this resolves it.
    RequestFailed {
        /// The request's sequence number.
        sequence_number: SequenceNumber,
        /// The request's command id.
        command_id: CommandId,
        /// Why.
        error: RequestError,
    },
    /// The outbound window has room again after a send was refused with
    /// [`SendError::WindowFull`]. Sent once per refusal episode.
    WindowAvailable,
    /// A peer request beyond the inbound window was answered with
    /// `ESME_RTHROTTLED` ([`InboundOverflow::Throttle`](super::InboundOverflow::Throttle)).
    InboundThrottled {
        /// The request's sequence number.
        sequence_number: SequenceNumber,
        /// The request's command id.
        command_id: CommandId,
    },
    /// A response to one of our requests that had already failed with
    /// [`RequestError::Timeout`] (one of the last
    /// [`LATE_MEMORY`](super::LATE_MEMORY) to time out). That request was
    /// resolved then; this is for the record: count it (a slow peer), or
    /// reconcile what it says (a `submit_sm_resp`'s `message_id`). Nothing
    /// to answer. Counted in [`Stats::late_responses`](super::Stats::late_responses).
    LateResponse(Pdu),
    /// A PDU we sent went out without some of its TLVs, which the peer's
    /// SMPP version cannot take (none to a 3.3 peer, none of 5.0's to a 3.4
    /// peer; see `pdu::profile::fits_version`). For the record (an
    /// application may log or count it); also counted in
    /// [`Stats::tlvs_dropped`](super::Stats::tlvs_dropped). Not reported
    /// when the event buffer is full.
    TlvsDropped {
        /// The PDU's command id.
        command_id: CommandId,
        /// Its sequence number.
        sequence_number: SequenceNumber,
        /// How many TLVs were left out.
        dropped: usize,
        /// The version agreed with the peer (`interface_version` encoding).
        version: u8,
    },
    /// The peer broke a rule; what could be answered was answered and the
    /// session goes on.
    PeerViolation(PeerViolation),
    /// The session is over: always the last event. Every request in flight
    /// has been failed before it. Send what `poll_transmit` still returns,
    /// then close the connection.
    Closed(CloseReason),
}

/// Why one of our requests failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No response within [`SessionConfig::response_timeout`](super::SessionConfig::response_timeout).
    /// A response that comes afterwards is reported as [`Event::LateResponse`].
    #[error("no response in time")]
    Timeout,
    /// The peer answered with `generic_nack` and this status.
    #[error("generic_nack: {0}")]
    GenericNack(CommandStatus),
    /// The peer's response could not be decoded.
    #[error("malformed response: {0}")]
    MalformedResponse(DecodeError),
    /// The session closed before a response arrived.
    #[error("session closed")]
    SessionClosed,
}

/// A rule the peer broke. Reported in [`Event::PeerViolation`]; the session
/// answered what the protocol lets it answer and continues.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerViolation {
    /// A PDU that does not decode. A request was answered with
    /// [`DecodeError::response`].
    #[error("malformed PDU: {0}")]
    Malformed(DecodeError),
    /// A request with an unknown `command_id`, answered with `generic_nack`
    /// `ESME_RINVCMDID`.
    #[error("unknown command id {command_id} (seq {sequence_number})")]
    UnknownCommand {
        /// The id.
        command_id: CommandId,
        /// Its sequence number.
        sequence_number: SequenceNumber,
    },
    /// A request the peer may not send in our current state.
    #[error("{command_id} (seq {sequence_number}) not allowed in {state}")]
    IllegalRequest {
        /// The request.
        command_id: CommandId,
        /// Its sequence number.
        sequence_number: SequenceNumber,
        /// Our state when it arrived.
        state: State,
        /// The status we answered with; `None` when no response PDU exists.
        answered: Option<CommandStatus>,
    },
    /// A response (or `generic_nack`) that matches none of our outstanding
    /// requests nor a recent timed-out one ([`Event::LateResponse`]):
    /// unknown, or of the wrong command. Dropped. Counted in
    /// [`Stats::unexpected_responses`](super::Stats::unexpected_responses).
    #[error("unexpected {command_id} (seq {sequence_number}, {command_status})")]
    UnexpectedResponse {
        /// The response's id.
        command_id: CommandId,
        /// Its sequence number.
        sequence_number: SequenceNumber,
        /// Its status.
        command_status: CommandStatus,
    },
    /// A request reusing the sequence number of a request of the peer's we
    /// have not answered yet; answered with `ESME_RSYSERR`.
    #[error("duplicate sequence number {sequence_number} ({command_id})")]
    DuplicateSequence {
        /// The request.
        command_id: CommandId,
        /// The reused number.
        sequence_number: SequenceNumber,
    },
    /// A request carrying a TLV its operation may not carry in the
    /// session's version, under [`TlvProfile::Strict`](crate::pdu::profile::TlvProfile::Strict);
    /// answered `ESME_RTLVNOTALLWD`.
    #[error("{command_id} (seq {sequence_number}) carries TLV {tag}, not allowed")]
    TlvNotAllowed {
        /// The request.
        command_id: CommandId,
        /// Its sequence number.
        sequence_number: SequenceNumber,
        /// The first TLV out of place.
        tag: crate::pdu::TlvTag,
    },
}

/// Why a session closed, in [`Event::Closed`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The unbind handshake finished (either side started it), or the peer
    /// closed the connection in UNBOUND.
    Unbound,
    /// The application called [`Session::close`](super::Session::close).
    Local,
    /// A fatal error.
    Error(SessionError),
}

/// A fatal session error, delivered once inside the final [`Event::Closed`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Not bound within [`SessionConfig::session_init_timeout`](super::SessionConfig::session_init_timeout).
    #[error("not bound in time (session_init_timer)")]
    SessionInitTimeout,
    /// No traffic within [`SessionConfig::inactivity_timeout`](super::SessionConfig::inactivity_timeout); we unbound.
    #[error("inactivity timeout")]
    InactivityTimeout,
    /// Our keepalive `enquire_link` went unanswered: the peer is dead.
    #[error("enquire_link unanswered: peer dead")]
    KeepaliveTimeout,
    /// Our `unbind` went unanswered.
    #[error("unbind_resp not received in time")]
    UnbindTimeout,
    /// The peer closed the connection while the session was not unbinding.
    #[error("connection closed by peer")]
    ConnectionLost,
    /// The byte stream cannot be framed any more (bad `command_length`); a
    /// `generic_nack ESME_RINVCMDLEN` was sent.
    #[error("framing lost: {0}")]
    Framing(DecodeError),
}

/// A command refused at once, handing the rejected value back. Nothing was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError<T> {
    /// The outbound window is full; an [`Event::WindowAvailable`] follows when it has room.
    #[error("outbound window full")]
    WindowFull(T),
    /// Our role may not send this in the current state (see [`RULES`](super::RULES)).
    #[error("not allowed in the current state")]
    InvalidState(T),
    /// Output not drained: [`Session::poll_transmit`](super::Session::poll_transmit)
    /// (or, for requests, [`Session::poll_event`](super::Session::poll_event)) first.
    #[error("output buffer full")]
    OutputFull(T),
    /// The session is closed.
    #[error("session closed")]
    Closed(T),
    /// Not something this command sends (a response to `send_request`, a bind
    /// body to `send_request`, an unknown command id...).
    #[error("wrong command for this method")]
    WrongCommand(T),
    /// A bind or unbind of ours is already in progress.
    #[error("already in progress")]
    InProgress(T),
    /// No peer request with this sequence number awaits an answer (unknown,
    /// or already answered).
    #[error("no pending request with this sequence number")]
    NotPending(T),
    /// The response body does not answer the pending request's command.
    #[error("response does not match the request")]
    ResponseMismatch(T),
    /// A field does not encode.
    #[error("cannot encode: {1}")]
    Encode(T, EncodeError),
    /// The peer speaks an SMPP version (here, `interface_version` encoding:
    /// 0x33 or 0x34) that cannot take this: an operation that came later
    /// (`broadcast_sm` and its kin to a 3.3 or 3.4 peer, `data_sm` to a 3.3
    /// one; see [`Rule::since`](super::Rule::since)), or a PDU whose content
    /// is in `message_payload`, a TLV, to a 3.3 peer (dropping it would
    /// deliver an empty message; put the text in `short_message`).
    #[error("not in SMPP {:x}.{:x}, the version the peer speaks", .1 >> 4, .1 & 0x0F)]
    PeerVersion(T, u8),
}

impl<T> SendError<T> {
    /// The refusal is about the session now (its state, its window, its
    /// output), not about the PDU: the same PDU may go later, or over another
    /// session. The others (a field that does not encode, an operation the
    /// peer's version lacks, the wrong command) fail the same way anywhere.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SendError::WindowFull(_)
                | SendError::InvalidState(_)
                | SendError::OutputFull(_)
                | SendError::Closed(_)
                | SendError::InProgress(_)
        )
    }

    /// The rejected value.
    pub fn into_inner(self) -> T {
        match self {
            SendError::WindowFull(v)
            | SendError::InvalidState(v)
            | SendError::OutputFull(v)
            | SendError::Closed(v)
            | SendError::WrongCommand(v)
            | SendError::InProgress(v)
            | SendError::NotPending(v)
            | SendError::ResponseMismatch(v)
            | SendError::Encode(v, _)
            | SendError::PeerVersion(v, _) => v,
        }
    }

    /// The same error around another value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> SendError<U> {
        match self {
            SendError::WindowFull(v) => SendError::WindowFull(f(v)),
            SendError::InvalidState(v) => SendError::InvalidState(f(v)),
            SendError::OutputFull(v) => SendError::OutputFull(f(v)),
            SendError::Closed(v) => SendError::Closed(f(v)),
            SendError::WrongCommand(v) => SendError::WrongCommand(f(v)),
            SendError::InProgress(v) => SendError::InProgress(f(v)),
            SendError::NotPending(v) => SendError::NotPending(f(v)),
            SendError::ResponseMismatch(v) => SendError::ResponseMismatch(f(v)),
            SendError::Encode(v, e) => SendError::Encode(f(v), e),
            SendError::PeerVersion(v, version) => SendError::PeerVersion(f(v), version),
        }
    }
}

/// What [`Session::poll_transmit`](super::Session::poll_transmit) appended to the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Octets appended: whole PDUs only.
    pub len: usize,
    /// How many PDUs they hold.
    pub pdus: usize,
}

#[cfg(test)]
mod send_error_tests {
    use super::SendError;
    use crate::pdu::EncodeError;

    #[test]
    fn refusals_about_the_session_are_transient_and_those_about_the_pdu_are_not() {
        let transient = [
            SendError::WindowFull(()),
            SendError::InvalidState(()),
            SendError::OutputFull(()),
            SendError::Closed(()),
            SendError::InProgress(()),
        ];
        assert!(transient.iter().all(SendError::is_transient));
        let lasting = [
            SendError::WrongCommand(()),
            SendError::NotPending(()),
            SendError::ResponseMismatch(()),
            SendError::Encode(
                (),
                EncodeError::BufferTooSmall {
                    needed: 1,
                    available: 0,
                },
            ),
            SendError::PeerVersion((), 0x33),
        ];
        assert!(!lasting.iter().any(SendError::is_transient));
    }
}
