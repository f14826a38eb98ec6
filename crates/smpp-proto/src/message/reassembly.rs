//! Sans-IO reassembly of concatenated messages (UDH 8/16-bit references and SAR TLVs).
//!
//! # Run loop
//!
//! ```text
//! on every received part:   reassembler.handle_part(now, part)   -> Complete / Pending / Duplicate
//! then drain:               while let Some(ev) = reassembler.poll_event() { ... }   (evictions, expiries)
//! arm a timer at:           reassembler.poll_timeout()
//! when it fires:            reassembler.handle_timeout(now); then drain poll_event() again
//! ```
//!
//! Memory is bounded: at most [`ReassemblyConfig::max_pending_messages`] messages and
//! [`ReassemblyConfig::max_buffered_bytes`] octets are held; the oldest incomplete message is
//! evicted (and reported) to make room. The event queue is bounded the same way; events that
//! overflow it are dropped and counted in [`Reassembler::dropped_events`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use smpp_proto::message::reassembly::{IncomingPart, PartOutcome, Reassembler, ReassemblyConfig};
//! use smpp_proto::message::{DataCoding, DecodeOptions};
//!
//! let mut r = Reassembler::new(ReassemblyConfig::default());
//! let now = Instant::now(); // the caller's clock; the reassembler never reads one
//! // Part 2 of 2 arrives first (UDHI set, 8-bit concat IE: ref 0x42).
//! let p2 = Bytes::from_static(&[0x05, 0x00, 0x03, 0x42, 0x02, 0x02, b'l', b'd']);
//! let p1 = Bytes::from_static(&[0x05, 0x00, 0x03, 0x42, 0x02, 0x01, b'w', b'o', b'r']);
//! for sm in [p2, p1] {
//!     let part = IncomingPart::from_user_data("447700900123", "1234", DataCoding(0), 0x40, sm, None)?;
//!     if let PartOutcome::Complete(msg) = r.handle_part(now, part)? {
//!         assert_eq!(msg.decode_text(&DecodeOptions::default())?, "world");
//!     }
//! }
//! while let Some(event) = r.poll_event() { /* report evicted/expired messages */ let _ = event; }
//! r.handle_timeout(now + Duration::from_secs(600)); // when poll_timeout() fires
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::coding::{
    decode_text_with, Alphabet, DataCoding, DecodeError, DecodeOptions, SmscDefaultAlphabet,
};
use super::gsm7::{self, Gsm7Alphabet};
use super::udh::{ConcatInfo, ConcatKind, UdhError, UserDataHeader};

/// A 64-bit digest of a part's payload, to tell a retransmitted part from a new message
/// that reuses a completed message's reference.
fn digest(payload: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    payload.hash(&mut h);
    h.finish()
}

/// Per-entry bookkeeping charged against the byte budget besides the payload itself.
const ENTRY_OVERHEAD: usize = 64;

/// Limits and timeout of a [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// Incomplete messages held at most; the oldest is evicted beyond this.
    pub max_pending_messages: usize,
    /// Parts per message accepted (`total` above this is rejected).
    pub max_parts: u8,
    /// Longest accepted part payload in octets.
    pub max_part_len: usize,
    /// Octets held over all incomplete messages (payloads, addresses and overhead).
    pub max_buffered_bytes: usize,
    /// Time after the first part at which an incomplete message expires.
    pub timeout: Duration,
    /// How long a completed message's key is remembered so that late duplicates of its
    /// parts are reported as [`PartOutcome::Duplicate`] instead of starting a new message.
    /// A part counts as a duplicate only when its payload is identical to the part with the
    /// same number in the completed message: a new message that reuses the reference (8-bit
    /// references wrap quickly for a busy originator) has a different payload and starts a
    /// new message. At most `max_pending_messages` keys are remembered. `Duration::ZERO`
    /// disables this.
    pub duplicate_window: Duration,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            max_pending_messages: 1024,
            max_parts: 255,
            max_part_len: 1024,
            max_buffered_bytes: 4 * 1024 * 1024,
            timeout: Duration::from_secs(300),
            duplicate_window: Duration::from_secs(60),
        }
    }
}

/// Identity of a concatenated message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageKey {
    /// Originator address.
    pub source: String,
    /// Destination address.
    pub destination: String,
    /// Concatenation reference (8-bit references widened).
    pub reference: u16,
    /// Total number of parts.
    pub total: u8,
}

/// One received part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingPart {
    /// Originator address.
    pub source: String,
    /// Destination address.
    pub destination: String,
    /// The part's `data_coding`.
    pub data_coding: DataCoding,
    /// Concatenation parameters; `None` for a message in one part.
    pub concat: Option<ConcatInfo>,
    /// The part's UDH, if any (national language IEs, ports, …).
    pub udh: Option<UserDataHeader>,
    /// User data after the UDH.
    pub payload: Bytes,
}

impl IncomingPart {
    /// Builds a part from `short_message` (or `message_payload`) octets: parses the UDH when
    /// `esm_class` has UDHI (0x40) and takes the concatenation IE from it; otherwise uses the
    /// SAR TLV values `(sar_msg_ref_num, sar_total_segments, sar_segment_seqnum)` if given.
    pub fn from_user_data(
        source: impl Into<String>,
        destination: impl Into<String>,
        data_coding: DataCoding,
        esm_class: u8,
        user_data: Bytes,
        sar: Option<(u16, u8, u8)>,
    ) -> Result<Self, UdhError> {
        let (udh, payload) = if esm_class & 0x40 != 0 {
            let (udh, rest) = UserDataHeader::split(&user_data)?;
            (Some(udh), rest)
        } else {
            (None, user_data)
        };
        let concat = udh.as_ref().and_then(UserDataHeader::concat).or_else(|| {
            sar.map(|(reference, total, seq)| ConcatInfo {
                reference,
                total,
                seq,
                kind: ConcatKind::Sar,
            })
        });
        Ok(IncomingPart {
            source: source.into(),
            destination: destination.into(),
            data_coding,
            concat,
            udh,
            payload,
        })
    }
}

/// A complete message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassembledMessage {
    /// Originator address.
    pub source: String,
    /// Destination address.
    pub destination: String,
    /// `data_coding` of the first part.
    pub data_coding: DataCoding,
    /// UDH of part 1 without the concatenation IE (`None` if nothing else was in it).
    pub udh: Option<UserDataHeader>,
    /// Concatenation parameters of the message (`None` for a single part).
    pub concat: Option<ConcatInfo>,
    /// Part payloads in order.
    pub parts: Vec<Bytes>,
    /// Per part, the fill bits that precede packed GSM 7-bit text after that part's UDH
    /// (0 without a UDH); only meaningful when the parts carry packed septets.
    pub fill_bits: Vec<u8>,
}

impl ReassembledMessage {
    /// The part payloads concatenated (meaningful for unpacked GSM, UCS-2 and 8-bit data).
    pub fn payload(&self) -> Bytes {
        if let [one] = self.parts.as_slice() {
            return one.clone();
        }
        let mut b = BytesMut::with_capacity(self.parts.iter().map(Bytes::len).sum());
        for p in &self.parts {
            b.extend_from_slice(p);
        }
        b.freeze()
    }

    /// Decodes the message as text, with the national tables of part 1's UDH.
    ///
    /// Octet-aligned encodings (unpacked GSM, UCS-2, 8-bit sets) are decoded from the
    /// concatenated payload, so a surrogate pair split by the sender still decodes. Packed
    /// GSM 7-bit (per `options`) is unpacked part by part with each part's fill bits.
    pub fn decode_text(&self, options: &DecodeOptions) -> Result<String, DecodeError> {
        let alphabet = self
            .udh
            .as_ref()
            .map_or(Gsm7Alphabet::DEFAULT, UserDataHeader::gsm7_alphabet);
        let packed = match self.data_coding.alphabet() {
            Alphabet::SmscDefault => options.smsc_default == SmscDefaultAlphabet::Gsm7Packed,
            Alphabet::Gsm7 => options.gsm7_packed,
            _ => false,
        };
        if !packed {
            return decode_text_with(self.data_coding, &self.payload(), options, alphabet, 0);
        }
        let mut out = String::new();
        for (i, part) in self.parts.iter().enumerate() {
            let fill = self.fill_bits.get(i).copied().unwrap_or(0);
            out.push_str(&decode_text_with(
                self.data_coding,
                part,
                options,
                alphabet,
                fill,
            )?);
        }
        Ok(out)
    }
}

/// An incomplete message given up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncompleteMessage {
    /// Its identity.
    pub key: MessageKey,
    /// `data_coding` of the first part received.
    pub data_coding: DataCoding,
    /// The parts received, `(seq, payload)` in `seq` order.
    pub parts: Vec<(u8, Bytes)>,
    /// When its first part arrived.
    pub first_seen: Instant,
}

/// Something the reassembler reports besides completed messages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReassemblyEvent {
    /// The message did not complete within the timeout.
    Expired(IncompleteMessage),
    /// The message was evicted to respect the memory limits.
    Evicted(IncompleteMessage),
}

/// What happened to a part.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum PartOutcome {
    /// The part completed a message.
    Complete(ReassembledMessage),
    /// Stored; more parts are needed.
    Pending,
    /// The same part (same key and `seq`) was already held, or belongs to a message completed
    /// within [`ReassemblyConfig::duplicate_window`]; the first copy is kept.
    Duplicate,
}

/// Why a part was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartError {
    /// `total` is 0, or `seq` is 0 or greater than `total`.
    #[error("invalid concatenation: part {seq} of {total}")]
    InvalidConcat {
        /// Announced total.
        total: u8,
        /// Announced sequence number.
        seq: u8,
    },
    /// `total` exceeds [`ReassemblyConfig::max_parts`].
    #[error("message of {0} parts exceeds the configured limit")]
    TooManyParts(u8),
    /// The part is longer than [`ReassemblyConfig::max_part_len`] (or the whole budget).
    #[error("part of {0} octets exceeds the configured limit")]
    PartTooLong(usize),
}

#[derive(Debug)]
struct Pending {
    data_coding: DataCoding,
    udh: Option<UserDataHeader>,
    concat: ConcatInfo,
    parts: Vec<(u8, Bytes)>,
    /// Fill bits per entry of `parts`.
    fills: Vec<u8>,
    first_seen: Instant,
    serial: u64,
    bytes: usize,
}

/// Reassembles concatenated messages; see the [module docs](self) for the run loop.
#[derive(Debug)]
pub struct Reassembler {
    config: ReassemblyConfig,
    pending: BTreeMap<MessageKey, Pending>,
    /// `(first_seen, serial)` -> key: oldest first, which is also expiry order.
    order: BTreeMap<(Instant, u64), MessageKey>,
    next_serial: u64,
    buffered: usize,
    events: VecDeque<ReassemblyEvent>,
    event_bytes: usize,
    dropped_events: u64,
    /// Recently completed keys -> `(completed_at, serial, digest of each part's payload)`.
    recent: BTreeMap<MessageKey, (Instant, u64, Vec<u64>)>,
    recent_order: VecDeque<(Instant, u64, MessageKey)>,
}

impl Reassembler {
    /// A reassembler with the given limits.
    pub fn new(config: ReassemblyConfig) -> Self {
        Reassembler {
            config,
            pending: BTreeMap::new(),
            order: BTreeMap::new(),
            next_serial: 0,
            buffered: 0,
            events: VecDeque::new(),
            event_bytes: 0,
            dropped_events: 0,
            recent: BTreeMap::new(),
            recent_order: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ReassemblyConfig {
        &self.config
    }

    /// Incomplete messages currently held.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Octets charged against [`ReassemblyConfig::max_buffered_bytes`].
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Events dropped because the event queue was full (caller did not drain it).
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// When the oldest incomplete message expires, if any.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.order
            .keys()
            .next()
            .and_then(|(first, _)| first.checked_add(self.config.timeout))
    }

    /// The next eviction or expiry event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ReassemblyEvent> {
        let ev = self.events.pop_front()?;
        self.event_bytes = self.event_bytes.saturating_sub(event_size(&ev));
        Some(ev)
    }

    /// Expires every incomplete message whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, _, _)) = self.recent_order.front() {
            let stale = at
                .checked_add(self.config.duplicate_window)
                .is_none_or(|until| until <= now);
            if !stale {
                break;
            }
            if let Some((_, serial, key)) = self.recent_order.pop_front() {
                if self.recent.get(&key).is_some_and(|&(_, s, _)| s == serial) {
                    self.recent.remove(&key);
                }
            }
        }
        while let Some((&(first, serial), _)) = self.order.first_key_value() {
            let expired = first
                .checked_add(self.config.timeout)
                .is_some_and(|deadline| deadline <= now);
            if !expired {
                break;
            }
            if let Some(msg) = self.remove((first, serial)) {
                self.push_event(ReassemblyEvent::Expired(msg));
            }
        }
    }

    /// Feeds one part. Expired messages are swept first, so a late part starts a new message.
    pub fn handle_part(
        &mut self,
        now: Instant,
        part: IncomingPart,
    ) -> Result<PartOutcome, PartError> {
        self.handle_timeout(now);
        if part.payload.len() > self.config.max_part_len {
            return Err(PartError::PartTooLong(part.payload.len()));
        }
        let concat = match part.concat {
            Some(c) if c.total > 1 => c,
            Some(c) if c.total == 0 || c.seq != 1 => {
                return Err(PartError::InvalidConcat {
                    total: c.total,
                    seq: c.seq,
                })
            }
            single => {
                return Ok(PartOutcome::Complete(ReassembledMessage {
                    source: part.source,
                    destination: part.destination,
                    data_coding: part.data_coding,
                    udh: part
                        .udh
                        .as_ref()
                        .map(UserDataHeader::without_concat)
                        .filter(|u| !u.elements.is_empty()),
                    concat: single,
                    fill_bits: vec![part_fill_bits(part.udh.as_ref())],
                    parts: vec![part.payload],
                }))
            }
        };
        if concat.seq == 0 || concat.seq > concat.total {
            return Err(PartError::InvalidConcat {
                total: concat.total,
                seq: concat.seq,
            });
        }
        if concat.total > self.config.max_parts {
            return Err(PartError::TooManyParts(concat.total));
        }
        let key = MessageKey {
            source: part.source,
            destination: part.destination,
            reference: concat.reference,
            total: concat.total,
        };
        let cost = part.payload.len() + ENTRY_OVERHEAD;
        let key_cost = key.source.len() + key.destination.len() + ENTRY_OVERHEAD;

        if !self.pending.contains_key(&key) {
            if let Some((_, _, digests)) = self.recent.get(&key) {
                let seen = digests.get(usize::from(concat.seq) - 1);
                if seen == Some(&digest(&part.payload)) {
                    return Ok(PartOutcome::Duplicate);
                }
                // Same key, different content: the reference was reused for a new message.
                self.recent.remove(&key);
            }
        }
        if let Some(p) = self.pending.get(&key) {
            if p.parts.binary_search_by_key(&concat.seq, |e| e.0).is_ok() {
                return Ok(PartOutcome::Duplicate);
            }
            let serial = (p.first_seen, p.serial);
            self.make_room(cost, Some(serial));
        } else {
            if cost + key_cost > self.config.max_buffered_bytes {
                return Err(PartError::PartTooLong(part.payload.len()));
            }
            while self.pending.len() >= self.config.max_pending_messages.max(1) {
                if !self.evict_oldest(None) {
                    break;
                }
            }
            self.make_room(cost + key_cost, None);
            let serial = self.next_serial;
            self.next_serial += 1;
            self.order.insert((now, serial), key.clone());
            self.pending.insert(
                key.clone(),
                Pending {
                    data_coding: part.data_coding,
                    udh: None,
                    concat,
                    parts: Vec::new(),
                    fills: Vec::new(),
                    first_seen: now,
                    serial,
                    bytes: key_cost,
                },
            );
            self.buffered += key_cost;
        }

        // The message may have been evicted by `make_room` only if it was not protected;
        // it is protected above, so it is present.
        let Some(p) = self.pending.get_mut(&key) else {
            return Err(PartError::PartTooLong(part.payload.len()));
        };
        if self.buffered + cost > self.config.max_buffered_bytes {
            // Could not make room without evicting this very message.
            return Err(PartError::PartTooLong(part.payload.len()));
        }
        if concat.seq == 1 {
            p.udh = part
                .udh
                .as_ref()
                .map(UserDataHeader::without_concat)
                .filter(|u| !u.elements.is_empty());
            p.data_coding = part.data_coding;
        }
        let pos = p
            .parts
            .binary_search_by_key(&concat.seq, |e| e.0)
            .unwrap_or_else(|i| i);
        p.fills.insert(pos, part_fill_bits(part.udh.as_ref()));
        p.parts.insert(pos, (concat.seq, part.payload));
        p.bytes += cost;
        self.buffered += cost;

        if p.parts.len() == usize::from(concat.total) {
            let order_key = (p.first_seen, p.serial);
            let Some(p) = self.pending.remove(&key) else {
                return Ok(PartOutcome::Pending);
            };
            self.order.remove(&order_key);
            self.buffered = self.buffered.saturating_sub(p.bytes);
            let digests = p.parts.iter().map(|(_, b)| digest(b)).collect();
            self.remember_completed(now, &key, digests);
            return Ok(PartOutcome::Complete(ReassembledMessage {
                source: key.source,
                destination: key.destination,
                data_coding: p.data_coding,
                udh: p.udh,
                concat: Some(ConcatInfo { seq: 1, ..p.concat }),
                parts: p.parts.into_iter().map(|(_, b)| b).collect(),
                fill_bits: p.fills,
            }));
        }
        Ok(PartOutcome::Pending)
    }

    fn remember_completed(&mut self, now: Instant, key: &MessageKey, digests: Vec<u64>) {
        if self.config.duplicate_window.is_zero() {
            return;
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        self.recent.insert(key.clone(), (now, serial, digests));
        self.recent_order.push_back((now, serial, key.clone()));
        while self.recent_order.len() > self.config.max_pending_messages.max(1) {
            if let Some((_, serial, key)) = self.recent_order.pop_front() {
                if self.recent.get(&key).is_some_and(|&(_, s, _)| s == serial) {
                    self.recent.remove(&key);
                }
            }
        }
    }

    /// Evicts oldest messages (except `protect`) until `extra` more octets fit.
    fn make_room(&mut self, extra: usize, protect: Option<(Instant, u64)>) {
        while self.buffered + extra > self.config.max_buffered_bytes {
            if !self.evict_oldest(protect) {
                break;
            }
        }
    }

    fn evict_oldest(&mut self, protect: Option<(Instant, u64)>) -> bool {
        let victim = self.order.keys().copied().find(|k| Some(*k) != protect);
        match victim.and_then(|k| self.remove(k)) {
            Some(msg) => {
                self.push_event(ReassemblyEvent::Evicted(msg));
                true
            }
            None => false,
        }
    }

    fn remove(&mut self, order_key: (Instant, u64)) -> Option<IncompleteMessage> {
        let key = self.order.remove(&order_key)?;
        let p = self.pending.remove(&key)?;
        self.buffered = self.buffered.saturating_sub(p.bytes);
        Some(IncompleteMessage {
            key,
            data_coding: p.data_coding,
            parts: p.parts,
            first_seen: p.first_seen,
        })
    }

    fn push_event(&mut self, ev: ReassemblyEvent) {
        let size = event_size(&ev);
        self.events.push_back(ev);
        self.event_bytes += size;
        let max_events = self.config.max_pending_messages.max(1);
        while self.events.len() > max_events || self.event_bytes > self.config.max_buffered_bytes {
            match self.events.pop_front() {
                Some(old) => {
                    self.event_bytes = self.event_bytes.saturating_sub(event_size(&old));
                    self.dropped_events += 1;
                }
                None => break,
            }
        }
    }
}

fn part_fill_bits(udh: Option<&UserDataHeader>) -> u8 {
    udh.map_or(0, |u| gsm7::fill_bits(u.encoded_len()))
}

fn event_size(ev: &ReassemblyEvent) -> usize {
    let (ReassemblyEvent::Expired(m) | ReassemblyEvent::Evicted(m)) = ev;
    m.key.source.len()
        + m.key.destination.len()
        + m.parts
            .iter()
            .map(|(_, b)| b.len() + ENTRY_OVERHEAD)
            .sum::<usize>()
        + ENTRY_OVERHEAD
}
