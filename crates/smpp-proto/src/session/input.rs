//! The receive path: framing errors, decode errors, responses matched to
//! our requests, and requests checked against the legality table.

use crate::pdu::profile::{self, Sender, TlvProfile};
use crate::pdu::{self, Body, CommandId, CommandStatus, DecodeError, Decoded, Pdu};

use super::window::Origin;
use super::{
    is_keepalive, rule_for, BindKind, CloseReason, Event, Outcome, PeerViolation, RequestError,
    Role, Rule, Session, SessionError, State, Unbinding, INTERFACE_VERSION,
};

impl Session {
    #[inline(always)]
    pub(super) fn decode_one(&mut self) {
        match pdu::decode(&mut self.inbuf, &self.config.decode) {
            Ok(Decoded::Pdu(pdu)) => self.on_pdu(pdu),
            // The frame is whole: cannot happen.
            Ok(Decoded::Partial { .. }) => {}
            Err(e) if e.is_fatal() => self.lose_framing(e),
            Err(e) => self.on_decode_error(e),
        }
    }

    /// Unframeable input: generic_nack (seq 0), then close.
    pub(super) fn lose_framing(&mut self, e: DecodeError) {
        self.tally.decode_errors += 1;
        if let Some(answer) = e.response() {
            self.write_pdu(&answer);
        }
        self.close_with(CloseReason::Error(SessionError::Framing(e)));
    }

    fn on_decode_error(&mut self, e: DecodeError) {
        self.tally.decode_errors += 1;
        self.timers.last_received = self.now;
        if let Some(answer) = e.response() {
            self.write_pdu(&answer);
        }
        let id = e.command_id();
        if let (true, Some(seq)) = (id.is_response(), e.sequence_number()) {
            let ours = self.in_flight.get(seq.get()).is_some_and(|entry| {
                id == CommandId::GENERIC_NACK || entry.command_id.response_id() == Some(id)
            });
            if ours {
                if let Some((entry, announce)) = self.in_flight.remove(seq.get()) {
                    self.resolve(
                        entry,
                        announce,
                        Outcome::Failed(RequestError::MalformedResponse(e)),
                    );
                    self.maybe_answer_unbind();
                    return;
                }
            }
        }
        self.emit(Event::PeerViolation(PeerViolation::Malformed(e)));
    }

    #[inline(always)]
    fn on_pdu(&mut self, pdu: Pdu) {
        let id = pdu.command_id();
        self.tally.received(id, pdu.command_status);
        self.timers.last_received = self.now;
        if !is_keepalive(id) {
            self.timers.last_transaction = self.now;
        }
        if id.is_response() {
            self.on_response(pdu);
        } else {
            self.on_request(pdu);
        }
    }

    #[inline(always)]
    fn on_response(&mut self, pdu: Pdu) {
        let id = pdu.command_id();
        let seq = pdu.sequence_number.get();
        let ours = self.in_flight.get(seq).is_some_and(|entry| {
            id == CommandId::GENERIC_NACK || entry.command_id.response_id() == Some(id)
        });
        let removed = if ours {
            self.in_flight.remove(seq)
        } else {
            None
        };
        let Some((entry, announce)) = removed else {
            return self.on_unmatched_response(pdu);
        };
        // SMPP 5.0 peers only (a bind's answer is read before the version is
        // agreed, and counts only if it agrees 5.0).
        let congestion = if self.version.unwrap_or(INTERFACE_VERSION) >= 0x50 {
            pdu.body.tlvs().and_then(|t| t.congestion_state())
        } else {
            None
        };
        if id == CommandId::GENERIC_NACK {
            let error = RequestError::GenericNack(pdu.command_status);
            self.resolve(entry, announce, Outcome::Failed(error));
        } else if entry.origin == Origin::App && !announce {
            // The hot path: the PDU moves straight into its event.
            self.emit(Event::Response(pdu));
        } else {
            self.resolve(entry, announce, Outcome::Response(pdu));
        }
        match (congestion, self.version) {
            (Some(c), Some(0x50..)) => self.on_peer_congestion(c),
            (None, Some(0x50..)) => self.on_peer_silence(),
            _ => {}
        }
        self.maybe_answer_unbind();
    }

    /// A response that resolves nothing: late (its request timed out
    /// recently) or unexpected.
    #[cold]
    fn on_unmatched_response(&mut self, pdu: Pdu) {
        let id = pdu.command_id();
        if self.timed_out.take(pdu.sequence_number.get(), id) {
            self.tally.late_responses += 1;
            return self.emit(Event::LateResponse(pdu));
        }
        self.tally.unexpected_responses += 1;
        self.emit(Event::PeerViolation(PeerViolation::UnexpectedResponse {
            command_id: id,
            sequence_number: pdu.sequence_number,
            command_status: pdu.command_status,
        }))
    }

    #[inline(always)]
    fn on_request(&mut self, pdu: Pdu) {
        let id = pdu.command_id();
        let seq = pdu.sequence_number;
        let Some(rule) = rule_for(id) else {
            // Unknown (vendor, legacy) command id: SMPP 5.0 §2.11.1.
            self.write_header(
                CommandId::GENERIC_NACK,
                CommandStatus::INVALID_COMMAND_ID,
                seq,
            );
            return self.emit(Event::PeerViolation(PeerViolation::UnknownCommand {
                command_id: id,
                sequence_number: seq,
            }));
        };
        if !rule.states(self.role.peer()).contains(self.state) {
            if id == CommandId::UNBIND && self.unbinding == Unbinding::Ours {
                // Both sides unbinding at once: agree, and wait for our own answer.
                return self.write_header(CommandId::UNBIND_RESP, CommandStatus::OK, seq);
            }
            let answered = rule.illegal.status(self.state);
            if let (Some(status), Some(resp)) = (answered, id.response_id()) {
                self.write_header(resp, status, seq);
            }
            return self.emit(Event::PeerViolation(PeerViolation::IllegalRequest {
                command_id: id,
                sequence_number: seq,
                state: self.state,
                answered,
            }));
        }
        match id {
            CommandId::ENQUIRE_LINK => {
                self.write_header(CommandId::ENQUIRE_LINK_RESP, CommandStatus::OK, seq)
            }
            CommandId::UNBIND => {
                self.unbinding = Unbinding::Peers(seq);
                self.timers.unbind = Some(self.after(self.config.unbind_timeout));
                self.set_state(State::Unbound);
                self.maybe_answer_unbind();
            }
            CommandId::OUTBIND => {
                self.set_state(State::Outbound);
                if let Body::Outbind(outbind) = pdu.body {
                    self.emit(Event::Outbind(outbind));
                }
            }
            CommandId::ALERT_NOTIFICATION => self.emit(Event::AlertNotification(pdu)),
            _ => self.on_application_request(pdu, rule),
        }
    }

    /// A legal request for the application: window, duplicates, then an event.
    #[inline(always)]
    fn on_application_request(&mut self, pdu: Pdu, rule: &Rule) {
        let id = pdu.command_id();
        let seq = pdu.sequence_number;
        let bind = BindKind::from_command_id(id);
        let answer = if self.inbound.contains_key(&seq.get()) {
            Some(CommandStatus::SYSTEM_ERROR)
        } else if bind.is_some() && self.pending_bind.is_some() {
            Some(
                rule.illegal
                    .status(self.state)
                    .unwrap_or(CommandStatus::INVALID_BIND_STATUS),
            )
        } else if bind.is_none() && self.inbound.len() >= self.max_inbound() {
            Some(CommandStatus::THROTTLED)
        } else {
            None
        };
        if let Some(status) = answer {
            if let Some(resp) = id.response_id() {
                self.write_header(resp, status, seq);
            }
            if status == CommandStatus::THROTTLED {
                self.gauge.over_window();
            }
            return self.emit(match status {
                CommandStatus::SYSTEM_ERROR => {
                    Event::PeerViolation(PeerViolation::DuplicateSequence {
                        command_id: id,
                        sequence_number: seq,
                    })
                }
                CommandStatus::THROTTLED => Event::InboundThrottled {
                    sequence_number: seq,
                    command_id: id,
                },
                _ => Event::PeerViolation(PeerViolation::IllegalRequest {
                    command_id: id,
                    sequence_number: seq,
                    state: self.state,
                    answered: Some(status),
                }),
            });
        }
        // Duplicates and the inbound window first: a request over the
        // window is throttled, whatever it carries.
        if self.config.tlv_profile == TlvProfile::Strict {
            let version = self.version.unwrap_or(INTERFACE_VERSION);
            let sender = match self.role {
                Role::Mc => Sender::Esme,
                Role::Esme => Sender::Mc,
            };
            if let Some(tag) = profile::first_disallowed(&pdu, version, sender) {
                if let Some(resp) = id.response_id() {
                    self.write_header(resp, CommandStatus::TLV_NOT_ALLOWED, seq);
                }
                return self.emit(Event::PeerViolation(PeerViolation::TlvNotAllowed {
                    command_id: id,
                    sequence_number: seq,
                    tag,
                }));
            }
        }
        self.inbound.insert(seq.get(), id);
        self.gauge.arrived(self.inbound.len());
        let Some(kind) = bind else {
            // The hot path: the PDU moves into the event untouched.
            return self.emit(Event::Request(pdu));
        };
        if let Body::BindReceiver(b) | Body::BindTransmitter(b) | Body::BindTransceiver(b) =
            pdu.body
        {
            self.pending_bind = Some(seq);
            self.offered_version = b.interface_version;
            self.emit(Event::BindRequest {
                sequence_number: seq,
                kind,
                bind: b,
            });
        }
    }
}
