//! What we send follows the version the peer speaks (SMPP 3.4 §5.3.2.25,
//! 5.0 §2.11.2): no TLV to a 3.3 peer, none of 5.0's to a 3.4 peer, and no
//! operation newer than the peer's version.
//!
//! TLVs are left out rather than the PDU refused: a delivery receipt to a
//! 3.3 ESME still goes out, its text carrying the id and state that its
//! `receipted_message_id` and `message_state` TLVs would have. Counted in
//! [`Stats::tlvs_dropped`](super::Stats::tlvs_dropped) and
//! [`Stats::pdus_trimmed`](super::Stats::pdus_trimmed), and reported as
//! [`Event::TlvsDropped`]. Two things are
//! refused instead ([`SendError::PeerVersion`]), because leaving them out
//! would change what is delivered: a request whose operation the peer's
//! version lacks, and a request whose content is in `message_payload` to a
//! 3.3 peer.

use crate::pdu::profile::{count_unfit, strip_unfit};
use crate::pdu::{Body, CommandId, SequenceNumber, TlvTag, Tlvs};

use super::state::operation_since;
use super::{negotiate, Event, SendError, Session, INTERFACE_VERSION};

/// A TLV section trimmed for the peer: the original, to hand back if the
/// PDU does not go out after all, and how many TLVs went.
pub(super) struct Trimmed {
    original: Tlvs,
    dropped: usize,
    version: u8,
}

impl Session {
    /// The version a PDU of ours answering `answering` (a peer request's
    /// number, for responses) goes to: the agreed one once bound; for the
    /// MC's answer to a bind, the one that answer agrees. `None` before a
    /// bind (nothing sent then has TLVs to fit).
    pub(super) fn peer_version(&self, answering: Option<SequenceNumber>) -> Option<u8> {
        match answering {
            Some(seq) if self.pending_bind == Some(seq) => {
                Some(negotiate(INTERFACE_VERSION, Some(self.offered_version)))
            }
            _ => self.version,
        }
    }

    /// A request of ours may go to the peer: its operation exists in the
    /// peer's version, and its content is not in a TLV the peer cannot take.
    pub(super) fn check_peer_version(&self, body: &Body) -> Result<(), SendError<()>> {
        let Some(version) = self.version else {
            return Ok(());
        };
        if operation_since(body.command_id()).is_some_and(|since| since > version) {
            return Err(SendError::PeerVersion((), version));
        }
        let payload = || {
            let tlvs = body.tlvs();
            tlvs.is_some_and(|t| {
                t.get(TlvTag::MESSAGE_PAYLOAD)
                    .is_some_and(|v| !v.is_empty())
            })
        };
        if version < 0x34 && payload() {
            return Err(SendError::PeerVersion((), version));
        }
        Ok(())
    }

    /// Leaves out of `body` the TLVs a peer speaking `version` cannot take.
    /// Cheap when there is nothing to do (a 5.0 peer, no TLVs).
    #[inline]
    pub(super) fn trim_for_peer(version: Option<u8>, body: &mut Body) -> Option<Trimmed> {
        let version = version.filter(|&v| v < 0x50)?;
        let tlvs = body.tlvs_mut()?;
        if count_unfit(tlvs, version) == 0 {
            return None;
        }
        let original = tlvs.clone();
        let dropped = strip_unfit(tlvs, version);
        Some(Trimmed {
            original,
            dropped,
            version,
        })
    }

    /// The trimmed PDU went out: count it, and report it
    /// ([`Event::TlvsDropped`], unless the event buffer is full: the
    /// counters still count).
    pub(super) fn count_trimmed(
        &mut self,
        trimmed: Option<Trimmed>,
        command_id: CommandId,
        sequence_number: SequenceNumber,
    ) {
        let Some(t) = trimmed else { return };
        self.tally.tlvs_dropped += t.dropped as u64;
        self.tally.pdus_trimmed += 1;
        if self.events.len() < self.config.max_buffered_events {
            self.emit(Event::TlvsDropped {
                command_id,
                sequence_number,
                dropped: t.dropped,
                version: t.version,
            });
        }
    }
}

/// The PDU did not go out: hand `body` back as the application gave it.
pub(super) fn untrim(trimmed: Option<Trimmed>, body: &mut Body) {
    if let (Some(t), Some(tlvs)) = (trimmed, body.tlvs_mut()) {
        *tlvs = t.original;
    }
}
