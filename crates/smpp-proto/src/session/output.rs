//! The send path: every PDU goes through here into the bounded output
//! buffer, encoded once, counted, with our sequence number patched in only
//! once it is certain to go out.

use std::time::Instant;

use crate::pdu::{self, Body, CommandId, CommandStatus, Pdu, SequenceNumber, HEADER_LEN};

use super::window::Origin;
use super::{is_keepalive, SendError, Session};

impl Session {
    /// Appends a PDU (its status, number and body) to the output unless it
    /// fails to encode or overflows the output limit (a lone PDU always fits
    /// an empty buffer). Encoding validates every field once, in the same
    /// pass that writes it; the body is only borrowed (no PDU is assembled).
    #[inline]
    pub(super) fn encode_bounded(
        &mut self,
        status: CommandStatus,
        seq: SequenceNumber,
        body: &Body,
    ) -> Result<(), SendError<()>> {
        let before = self.out.len();
        if let Err(e) = pdu::encode_parts_to_vec(status, seq, body, &mut self.out) {
            return Err(SendError::Encode((), e));
        }
        if before > 0 && self.out.len() > self.config.max_buffered_output {
            self.out.truncate(before);
            return Err(SendError::OutputFull(()));
        }
        self.sent(body.command_id(), status);
        Ok(())
    }

    /// Checks, encodes, allocates a sequence number and records a request
    /// that has a response.
    #[inline]
    pub(super) fn send_tracked(
        &mut self,
        body: Body,
        origin: Origin,
        deadline: Instant,
        queue_deadline: bool,
    ) -> Result<SequenceNumber, SendError<Body>> {
        let id = body.command_id();
        if self.events.len() >= self.config.max_buffered_events {
            // Each request resolves with one event: none while events are not drained.
            return Err(SendError::OutputFull(body));
        }
        if origin == Origin::App && !self.in_flight.try_reserve() {
            return Err(SendError::WindowFull(body));
        }
        // Encode with a placeholder number, then patch the allocated one in:
        // nothing is allocated for a PDU that does not go out.
        let at = self.out.len();
        if let Err(e) = self.encode_bounded(CommandStatus::OK, SequenceNumber::FIRST, &body) {
            return Err(e.map(|()| body));
        }
        let seq = self.in_flight.insert(id, origin, deadline, queue_deadline);
        self.out[at + 12..at + 16].copy_from_slice(&seq.get().to_be_bytes());
        Ok(seq)
    }

    /// A request without a response (outbind, alert_notification): a number, no tracking.
    pub(super) fn send_untracked(&mut self, body: Body) -> Result<SequenceNumber, SendError<Body>> {
        let at = self.out.len();
        if let Err(e) = self.encode_bounded(CommandStatus::OK, SequenceNumber::FIRST, &body) {
            return Err(e.map(|()| body));
        }
        let seq = self.in_flight.allocate_untracked();
        self.out[at + 12..at + 16].copy_from_slice(&seq.get().to_be_bytes());
        Ok(seq)
    }

    pub(super) fn write_pdu(&mut self, pdu: &Pdu) {
        // PDUs the session builds itself (decode-error answers) always encode.
        if pdu.encode(&mut self.out).is_ok() {
            self.sent(pdu.command_id(), pdu.command_status);
        }
    }

    /// A header-only PDU (automatic answers, keepalives, unbind).
    pub(super) fn write_header(
        &mut self,
        id: CommandId,
        status: CommandStatus,
        seq: SequenceNumber,
    ) {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(&(HEADER_LEN as u32).to_be_bytes());
        h[4..8].copy_from_slice(&id.0.to_be_bytes());
        h[8..12].copy_from_slice(&status.0.to_be_bytes());
        h[12..16].copy_from_slice(&seq.get().to_be_bytes());
        self.out.extend_from_slice(&h);
        self.sent(id, status);
    }

    pub(super) fn sent(&mut self, id: CommandId, status: CommandStatus) {
        self.out_pdus += 1;
        self.tally.sent(id, status);
        if !is_keepalive(id) {
            self.timers.last_transaction = self.now;
        }
    }
}
