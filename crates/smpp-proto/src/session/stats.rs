//! Counters per command id and per status, both directions.

use crate::pdu::{CommandId, CommandStatus};

const IDS: usize = 34; // 33 known + "other"
const STATUSES: usize = 68; // 67 named + "other"

/// Index of a command id among [`CommandId::ALL`], or `IDS - 1`.
const fn id_index(id: CommandId) -> usize {
    let base = (id.0 & 0x7FFF_FFFF) as usize;
    if base >= ID_TABLE_LEN {
        return IDS - 1;
    }
    let i = if id.is_response() {
        RESP_INDEX[base]
    } else {
        REQ_INDEX[base]
    };
    i as usize
}

const ID_TABLE_LEN: usize = 0x114;

const fn id_table(response: bool) -> [u8; ID_TABLE_LEN] {
    let mut t = [(IDS - 1) as u8; ID_TABLE_LEN];
    let mut i = 0;
    while i < CommandId::ALL.len() {
        let id = CommandId::ALL[i];
        if id.is_response() == response {
            t[(id.0 & 0x7FFF_FFFF) as usize] = i as u8;
        }
        i += 1;
    }
    t
}

static REQ_INDEX: [u8; ID_TABLE_LEN] = id_table(false);
static RESP_INDEX: [u8; ID_TABLE_LEN] = id_table(true);

const STATUS_TABLE_LEN: usize = 0x113;

static STATUS_INDEX: [u8; STATUS_TABLE_LEN] = {
    let mut t = [(STATUSES - 1) as u8; STATUS_TABLE_LEN];
    let mut i = 0;
    while i < CommandStatus::ALL.len() {
        t[CommandStatus::ALL[i].0 as usize] = i as u8;
        i += 1;
    }
    t
};

fn status_index(s: CommandStatus) -> usize {
    STATUS_INDEX
        .get(s.0 as usize)
        .map_or(STATUSES - 1, |i| *i as usize)
}

/// One direction's counters. Responses with status 0 (nearly all) are
/// counted on their own; the table of the others is allocated with the
/// first one, so an idle session does not carry it (544 octets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Counters {
    ids: [u64; IDS],
    ok: u64,
    /// Indexed like [`CommandStatus::ALL`]; the `ESME_ROK` entry stays 0.
    statuses: Option<Box<[u64; STATUSES]>>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            ids: [0; IDS],
            ok: 0,
            statuses: None,
        }
    }
}

impl Counters {
    #[inline]
    fn count(&mut self, id: CommandId, status: CommandStatus) {
        self.ids[id_index(id)] += 1;
        if id.is_response() {
            if status == CommandStatus::OK {
                self.ok += 1;
            } else {
                self.count_status(status);
            }
        }
    }

    #[cold]
    fn count_status(&mut self, status: CommandStatus) {
        let table = self.statuses.get_or_insert_with(|| Box::new([0; STATUSES]));
        table[status_index(status)] += 1;
    }

    /// Responses with `status`, by its index.
    fn status(&self, status: CommandStatus) -> u64 {
        if status == CommandStatus::OK {
            self.ok
        } else {
            self.statuses
                .as_ref()
                .map_or(0, |table| table[status_index(status)])
        }
    }

    fn status_other(&self) -> u64 {
        self.statuses
            .as_ref()
            .map_or(0, |table| table[STATUSES - 1])
    }
}

/// A snapshot of a session's counters and window use, from
/// [`Session::stats`](super::Session::stats).
///
/// Counters are fixed-size (one per known command id and named status, plus
/// one "other" each): a peer cannot grow them with made-up values.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Stats {
    pub(crate) sent: Counters,
    pub(crate) received: Counters,
    /// Our requests awaiting a response (the application's and internal ones).
    pub in_flight: usize,
    /// The outbound window: the application's requests in flight.
    pub window_in_flight: usize,
    /// The outbound window's size now ([`Session::window`](super::Session::window):
    /// below the configured one while an SMPP 5.0 peer reports congestion).
    pub max_in_flight: usize,
    /// The configured outbound window ([`SessionConfig::max_in_flight`](super::SessionConfig::max_in_flight)).
    pub configured_in_flight: usize,
    /// The last `congestion_state` the peer reported (5.0 peers).
    pub peer_congestion: Option<u8>,
    /// The highest `congestion_state` the peer reported (5.0 peers).
    pub peer_congestion_max: Option<u8>,
    /// Responses whose `congestion_state` was read (5.0 peers).
    pub congestion_states_received: u64,
    /// The `congestion_state` our last stamped response carried (MC, 5.0 peers).
    pub congestion_state_sent: Option<u8>,
    /// Peer requests awaiting the application's answer.
    pub pending_inbound: usize,
    /// The inbound window's size.
    pub max_inbound: usize,
    /// Encoded octets waiting for `poll_transmit`.
    pub buffered_output: usize,
    /// Octets of the partly received PDU being assembled.
    pub buffered_input: usize,
    /// Events waiting for `poll_event`.
    pub buffered_events: usize,
    /// PDUs that failed to decode.
    pub decode_errors: u64,
    /// Responses to our requests after they had timed out ([`Event::LateResponse`](super::Event::LateResponse)).
    pub late_responses: u64,
    /// Responses that matched no request of ours, not even a timed-out one
    /// ([`PeerViolation::UnexpectedResponse`](super::PeerViolation::UnexpectedResponse)).
    pub unexpected_responses: u64,
    /// TLVs the session left out of PDUs it sent because the peer's SMPP
    /// version cannot take them: every TLV to a 3.3 peer, the 5.0-only ones
    /// to a 3.4 peer (see `pdu::profile::fits_version`).
    pub tlvs_dropped: u64,
    /// PDUs it sent without some of their TLVs (each counted once).
    pub pdus_trimmed: u64,
}

impl Stats {
    /// PDUs sent with this command id (unknown ids: [`Stats::sent_other`]).
    pub fn sent(&self, id: CommandId) -> u64 {
        if id.is_known() {
            self.sent.ids[id_index(id)]
        } else {
            0
        }
    }

    /// PDUs received with this command id (unknown ids: [`Stats::received_other`]).
    pub fn received(&self, id: CommandId) -> u64 {
        if id.is_known() {
            self.received.ids[id_index(id)]
        } else {
            0
        }
    }

    /// PDUs sent with a command id SMPP does not define.
    pub fn sent_other(&self) -> u64 {
        self.sent.ids[IDS - 1]
    }

    /// PDUs received with a command id SMPP does not define.
    pub fn received_other(&self) -> u64 {
        self.received.ids[IDS - 1]
    }

    /// Responses sent with this status (unnamed statuses: [`Stats::sent_status_other`]).
    pub fn sent_status(&self, status: CommandStatus) -> u64 {
        if status.name().is_some() {
            self.sent.status(status)
        } else {
            0
        }
    }

    /// Responses received with this status (unnamed: [`Stats::received_status_other`]).
    pub fn received_status(&self, status: CommandStatus) -> u64 {
        if status.name().is_some() {
            self.received.status(status)
        } else {
            0
        }
    }

    /// Responses sent with a status SMPP does not name (vendor codes...).
    pub fn sent_status_other(&self) -> u64 {
        self.sent.status_other()
    }

    /// Responses received with a status SMPP does not name.
    pub fn received_status_other(&self) -> u64 {
        self.received.status_other()
    }

    /// All PDUs sent.
    pub fn sent_total(&self) -> u64 {
        self.sent.ids.iter().sum()
    }

    /// All PDUs received (decoded).
    pub fn received_total(&self) -> u64 {
        self.received.ids.iter().sum()
    }
}

/// The live counters inside a session.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tally {
    sent: Counters,
    received: Counters,
    pub(crate) decode_errors: u64,
    pub(crate) late_responses: u64,
    pub(crate) unexpected_responses: u64,
    pub(crate) tlvs_dropped: u64,
    pub(crate) pdus_trimmed: u64,
}

impl Tally {
    #[inline]
    pub(crate) fn sent(&mut self, id: CommandId, status: CommandStatus) {
        self.sent.count(id, status);
    }

    #[inline]
    pub(crate) fn received(&mut self, id: CommandId, status: CommandStatus) {
        self.received.count(id, status);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            sent: self.sent.clone(),
            received: self.received.clone(),
            decode_errors: self.decode_errors,
            late_responses: self.late_responses,
            unexpected_responses: self.unexpected_responses,
            tlvs_dropped: self.tlvs_dropped,
            pdus_trimmed: self.pdus_trimmed,
            ..Stats::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_cover_every_known_value_once() {
        assert_eq!(CommandId::ALL.len(), IDS - 1);
        assert_eq!(CommandStatus::ALL.len(), STATUSES - 1);
        for (i, id) in CommandId::ALL.iter().enumerate() {
            assert_eq!(id_index(*id), i, "{id}");
        }
        for (i, s) in CommandStatus::ALL.iter().enumerate() {
            assert_eq!(status_index(*s), i, "{s}");
        }
        for other in [0x22, 0x8000_000B, 0x0001_0200, 0xFFFF_FFFF, 0x114] {
            assert_eq!(id_index(CommandId(other)), IDS - 1);
        }
        assert_eq!(status_index(CommandStatus(0x400)), STATUSES - 1);
        assert_eq!(status_index(CommandStatus(0x09)), STATUSES - 1);
    }
}
