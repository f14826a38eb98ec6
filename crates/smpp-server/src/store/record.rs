//! The record model: one submitted message as the server keeps it, in
//! memory and in a persistent store.
//!
//! Stored form ([`Record::encode`]): one format byte, then the record in
//! [postcard](https://docs.rs/postcard) (compact, varint integers, octets
//! as bytes): about 70 octets plus the message for a typical submit_sm.
//! Changing a field means a new format byte and a decoder for the old one.
//! The first stores kept JSON (it starts with `{`, which no format byte
//! is); [`Record::decode`] still reads it, so they migrate as they are read.

use serde::{Deserialize, Serialize};
use smpp_proto::message::MessageState;
use smpp_proto::pdu::RegisteredDelivery;

use super::inline::{hex_bytes, Octets, Text};

/// An address: TON, NPI and digits (or alphanumeric text).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addr {
    /// Type of number.
    pub ton: u8,
    /// Numbering plan.
    pub npi: u8,
    /// The address.
    pub addr: String,
}

/// A record's address ([`Addr`] with its text inline when short).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredAddr {
    pub ton: u8,
    pub npi: u8,
    pub addr: Text,
}

impl From<&StoredAddr> for Addr {
    fn from(a: &StoredAddr) -> Addr {
        Addr {
            ton: a.ton,
            npi: a.npi,
            addr: a.addr.as_str().to_owned(),
        }
    }
}

/// A record's destinations: one (submit_sm, data_sm: no list to allocate)
/// or several (submit_multi). Serialized as a sequence, like the `Vec` it
/// replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dests {
    One(StoredAddr),
    Many(Vec<StoredAddr>),
}

impl From<Vec<StoredAddr>> for Dests {
    fn from(mut v: Vec<StoredAddr>) -> Dests {
        match v.len() {
            1 => Dests::One(v.pop().unwrap_or_default()),
            _ => Dests::Many(v),
        }
    }
}

impl std::ops::Deref for Dests {
    type Target = [StoredAddr];

    fn deref(&self) -> &[StoredAddr] {
        match self {
            Dests::One(a) => std::slice::from_ref(a),
            Dests::Many(v) => v,
        }
    }
}

impl Serialize for Dests {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Dests {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Dests, D::Error> {
        Vec::<StoredAddr>::deserialize(d).map(Dests::from)
    }
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// Becomes `state` at `due_ms` (until then ENROUTE): nothing needs to
    /// happen for the state to move, a reader computes it.
    Planned { due_ms: u64, state: u8, error: u16 },
    /// Reached `state` at `done_ms` (delivered to an ESME, cancelled...).
    Fixed { done_ms: u64, state: u8, error: u16 },
    /// Waits for something (an ESME-to-ESME delivery): ENROUTE.
    Pending,
}

/// What kind of submission a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    /// submit_sm, data_sm, submit_multi.
    Message,
    /// broadcast_sm (v5.0).
    Broadcast,
    /// Mobile-originated (injected): no submitter, no receipt.
    Mo,
    /// data_sm: a [`Kind::Message`] whose receipt may go back as a data_sm
    /// (see `smpp_proto::message::receipt::ReceiptCarrier`). Last, so the
    /// stored form of the others is unchanged.
    Data,
}

impl Kind {
    /// A message to one or more addresses (submit_sm, data_sm, submit_multi):
    /// queried, cancelled, replaced, and receipted.
    pub(crate) fn is_message(self) -> bool {
        matches!(self, Kind::Message | Kind::Data)
    }
}

/// One submitted message.
///
/// Laid out for the record cache (`#[repr(C)]`, declaration order): the
/// cache holds [`DEFAULT_MAX_MESSAGES`](crate::config::DEFAULT_MAX_MESSAGES)
/// records and forgets the oldest as new ones come, so a record is dropped
/// long after it was last touched, from memory no cache holds any more.
/// Dropping it reads the tag or capacity of every field that may own an
/// allocation; those fields come first, so the drop reads the first 192
/// octets (three or four cache lines, by the allocation's alignment, next
/// to each other) and not the rest. The
/// stored form keeps its own order ([`StoredRecord`], and `Serialize`
/// below), unchanged by this one.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "StoredRecord")]
#[repr(C)]
pub(crate) struct Record {
    /// TLVs to pass on when routed to an ESME (raw wire bytes).
    pub tlvs: Vec<u8>,
    pub billing: Option<Vec<u8>>,
    /// ESME-to-ESME: the account whose receiver gets it as a deliver_sm.
    pub route: Option<String>,
    /// The account's system_id (up to 22 octets held in the record, as any
    /// bind's 16 are: making and dropping a record touches no shared count;
    /// a longer name, an injected message's, takes an allocation).
    pub account: Text,
    pub service_type: Text,
    pub source: StoredAddr,
    pub dests: Dests,
    /// The user data (short_message; a message_payload stays in `tlvs`).
    pub payload: Octets,
    // Nothing to drop from here on.
    pub outcome: Outcome,
    pub id: u64,
    pub submit_ms: u64,
    /// Parts of the concatenated message it belongs to (1 if not).
    pub parts: u32,
    /// Receipts sent (one is owed per destination when registered_delivery asks).
    pub receipts_sent: u32,
    pub kind: Kind,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub data_coding: u8,
    pub registered_delivery: u8,
    /// The final state was reported to the observer.
    pub reported: bool,
}

/// A blank record (id 0, nothing in it): what a record is filled into when
/// no forgotten one's box is at hand.
impl Default for Record {
    fn default() -> Record {
        Record {
            tlvs: Vec::new(),
            billing: None,
            route: None,
            account: Text::new(),
            service_type: Text::new(),
            source: StoredAddr::default(),
            dests: Dests::Many(Vec::new()),
            payload: Octets::default(),
            outcome: Outcome::Pending,
            id: 0,
            submit_ms: 0,
            parts: 1,
            receipts_sent: 0,
            kind: Kind::Message,
            esm_class: 0,
            protocol_id: 0,
            priority_flag: 0,
            data_coding: 0,
            registered_delivery: 0,
            reported: false,
        }
    }
}

/// An unsigned LEB128 varint, as postcard writes integers, lengths and
/// enum variants.
fn varint(w: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        w.push(v as u8 | 0x80);
        v >>= 7;
    }
    w.push(v as u8);
}

/// A length and the octets (postcard's `str` and bytes).
fn octets(w: &mut Vec<u8>, b: &[u8]) {
    varint(w, b.len() as u64);
    w.extend_from_slice(b);
}

/// A [`StoredAddr`] as its derived `Serialize` and postcard write it.
fn addr(w: &mut Vec<u8>, a: &StoredAddr) {
    w.extend_from_slice(&[a.ton, a.npi]);
    octets(w, a.addr.as_bytes());
}

/// A record in the order of its stored form (postcard writes the fields
/// one after the other, in this order, with no names): what a stored
/// record is read into.
#[derive(Deserialize)]
struct StoredRecord {
    id: u64,
    kind: Kind,
    account: Text,
    service_type: Text,
    source: StoredAddr,
    dests: Dests,
    esm_class: u8,
    protocol_id: u8,
    priority_flag: u8,
    data_coding: u8,
    registered_delivery: u8,
    payload: Octets,
    #[serde(with = "hex_bytes")]
    tlvs: Vec<u8>,
    parts: u32,
    billing: Option<Vec<u8>>,
    submit_ms: u64,
    outcome: Outcome,
    route: Option<String>,
    receipts_sent: u32,
    reported: bool,
}

impl From<StoredRecord> for Record {
    fn from(r: StoredRecord) -> Record {
        Record {
            tlvs: r.tlvs,
            billing: r.billing,
            route: r.route,
            account: r.account,
            service_type: r.service_type,
            source: r.source,
            dests: r.dests,
            payload: r.payload,
            outcome: r.outcome,
            id: r.id,
            submit_ms: r.submit_ms,
            parts: r.parts,
            receipts_sent: r.receipts_sent,
            kind: r.kind,
            esm_class: r.esm_class,
            protocol_id: r.protocol_id,
            priority_flag: r.priority_flag,
            data_coding: r.data_coding,
            registered_delivery: r.registered_delivery,
            reported: r.reported,
        }
    }
}

/// Written in [`StoredRecord`]'s order (the stored form).
impl Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;

        /// `tlvs` as [`hex_bytes`] writes them.
        struct Tlvs<'a>(&'a [u8]);
        impl Serialize for Tlvs<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                hex_bytes::serialize(self.0, s)
            }
        }

        let mut r = s.serialize_struct("Record", 20)?;
        r.serialize_field("id", &self.id)?;
        r.serialize_field("kind", &self.kind)?;
        r.serialize_field("account", &self.account)?;
        r.serialize_field("service_type", &self.service_type)?;
        r.serialize_field("source", &self.source)?;
        r.serialize_field("dests", &self.dests)?;
        r.serialize_field("esm_class", &self.esm_class)?;
        r.serialize_field("protocol_id", &self.protocol_id)?;
        r.serialize_field("priority_flag", &self.priority_flag)?;
        r.serialize_field("data_coding", &self.data_coding)?;
        r.serialize_field("registered_delivery", &self.registered_delivery)?;
        r.serialize_field("payload", &self.payload)?;
        r.serialize_field("tlvs", &Tlvs(&self.tlvs))?;
        r.serialize_field("parts", &self.parts)?;
        r.serialize_field("billing", &self.billing)?;
        r.serialize_field("submit_ms", &self.submit_ms)?;
        r.serialize_field("outcome", &self.outcome)?;
        r.serialize_field("route", &self.route)?;
        r.serialize_field("receipts_sent", &self.receipts_sent)?;
        r.serialize_field("reported", &self.reported)?;
        r.end()
    }
}

/// The format byte of a stored record: postcard, version 1.
const FORMAT_V1: u8 = 1;

impl Record {
    /// The record in the store's binary format: the format byte, then what
    /// postcard makes of `Serialize` above, written here directly (through
    /// serde it took an eighth of the worker's time on the durable path).
    /// postcard's rules, for the types a record holds: `u8` and `bool` are
    /// one octet; `u16`, `u32`, `u64`, lengths and enum variants are
    /// unsigned LEB128 varints; text and octets are a length and the octets;
    /// an `Option` is 0, or 1 and the value. Tests hold the output to
    /// postcard's, and to bytes written by earlier versions.
    pub(crate) fn encode(&self) -> Vec<u8> {
        // Every field named (no `..`): a field added to `Record` must be
        // written here (and in `Serialize`, whose order this follows).
        let Record {
            tlvs,
            billing,
            route,
            account,
            service_type,
            source,
            dests,
            payload,
            outcome,
            id,
            submit_ms,
            parts,
            receipts_sent,
            kind,
            esm_class,
            protocol_id,
            priority_flag,
            data_coding,
            registered_delivery,
            reported,
        } = self;
        let dests_len: usize = dests.iter().map(|a| 3 + a.addr.len()).sum();
        let mut out = Vec::with_capacity(
            64 + account.len()
                + service_type.len()
                + source.addr.len()
                + dests_len
                + payload.len()
                + tlvs.len()
                + billing.as_ref().map_or(0, Vec::len)
                + route.as_ref().map_or(0, String::len),
        );
        let w = &mut out;
        w.push(FORMAT_V1);
        varint(w, *id);
        varint(
            w,
            match kind {
                Kind::Message => 0,
                Kind::Broadcast => 1,
                Kind::Mo => 2,
                Kind::Data => 3,
            },
        );
        octets(w, account.as_bytes());
        octets(w, service_type.as_bytes());
        addr(w, source);
        varint(w, dests.len() as u64);
        for a in dests.iter() {
            addr(w, a);
        }
        w.extend_from_slice(&[
            *esm_class,
            *protocol_id,
            *priority_flag,
            *data_coding,
            *registered_delivery,
        ]);
        octets(w, payload);
        octets(w, tlvs);
        varint(w, u64::from(*parts));
        match billing {
            None => w.push(0),
            Some(b) => {
                w.push(1);
                octets(w, b);
            }
        }
        varint(w, *submit_ms);
        match *outcome {
            Outcome::Planned {
                due_ms: at,
                state,
                error,
            }
            | Outcome::Fixed {
                done_ms: at,
                state,
                error,
            } => {
                w.push(if matches!(outcome, Outcome::Planned { .. }) {
                    0
                } else {
                    1
                });
                varint(w, at);
                w.push(state);
                varint(w, u64::from(error));
            }
            Outcome::Pending => w.push(2),
        }
        match route {
            None => w.push(0),
            Some(r) => {
                w.push(1);
                octets(w, r.as_bytes());
            }
        }
        varint(w, u64::from(*receipts_sent));
        w.push(u8::from(*reported));
        out
    }

    /// What postcard writes through `Serialize` (the encoder above is held
    /// to it).
    #[cfg(test)]
    fn encode_postcard(&self) -> Vec<u8> {
        postcard::to_extend(self, vec![FORMAT_V1]).expect("a record serializes")
    }

    /// Reads a stored record: the binary format, or the JSON of the first
    /// stores.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Record, String> {
        match bytes.split_first() {
            Some((&FORMAT_V1, rest)) => postcard::from_bytes(rest).map_err(|e| e.to_string()),
            Some((b'{', _)) => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
            Some((other, _)) => Err(format!("unknown record format {other}")),
            None => Err("empty record".into()),
        }
    }

    /// `registered_delivery`, typed.
    pub(crate) fn registered_delivery(&self) -> RegisteredDelivery {
        RegisteredDelivery::from(self.registered_delivery)
    }

    /// The state now, its time (done) and error code.
    pub(crate) fn state_at(&self, now_ms: u64) -> (MessageState, Option<u64>, u16) {
        match self.outcome {
            Outcome::Planned {
                due_ms,
                state,
                error,
            } if now_ms >= due_ms => (
                MessageState::from_u8(state).unwrap_or(MessageState::Unknown),
                Some(due_ms),
                error,
            ),
            Outcome::Fixed {
                done_ms,
                state,
                error,
            } => (
                MessageState::from_u8(state).unwrap_or(MessageState::Unknown),
                Some(done_ms),
                error,
            ),
            _ => (MessageState::Enroute, None, 0),
        }
    }

    /// Whether it is final at `now_ms`.
    pub(crate) fn is_final(&self, now_ms: u64) -> bool {
        self.state_at(now_ms).1.is_some()
    }

    /// Whether receipts are still owed at `now_ms` (final, asked for, not all sent).
    pub(crate) fn receipts_owed(&self, now_ms: u64) -> bool {
        let (state, done, _) = self.state_at(now_ms);
        self.kind.is_message()
            && done.is_some()
            && self
                .registered_delivery()
                .wants_receipt_for(state == MessageState::Delivered)
            && (self.receipts_sent as usize) < self.dests.len()
    }

    /// It needs nothing now and never will, whatever the time: not routed,
    /// no receipt asked for, final states not reported (`report`). Only a
    /// change to the record (replace_sm) can undo that.
    pub(crate) fn never_has_work(&self, report: bool) -> bool {
        !report
            && self.outcome != Outcome::Pending
            && !(self.kind.is_message() && self.registered_delivery().wants_receipt())
    }

    /// Whether it still needs something done (receipts, routing, reporting).
    /// A message that will become final with nothing to do then needs nothing.
    pub(crate) fn has_work(&self, now_ms: u64, report: bool) -> bool {
        if self.is_final(now_ms) {
            self.receipts_owed(now_ms) || (report && !self.reported)
        } else {
            self.outcome == Outcome::Pending
                || report
                || (self.kind.is_message() && self.registered_delivery().wants_receipt())
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::inline::OCTETS_INLINE;
    use super::*;

    pub(crate) fn record(id: u64) -> Record {
        Record {
            id,
            kind: Kind::Message,
            account: Text::from("a"),
            service_type: Text::new(),
            source: StoredAddr::default(),
            dests: Dests::One(StoredAddr {
                ton: 1,
                npi: 1,
                addr: "447700900000".into(),
            }),
            esm_class: 0,
            protocol_id: 0,
            priority_flag: 0,
            data_coding: 0,
            registered_delivery: 1,
            payload: b"hello \x00\xff".to_vec().into(),
            tlvs: vec![],
            parts: 1,
            billing: None,
            submit_ms: 1,
            outcome: Outcome::Planned {
                due_ms: 10,
                state: 2,
                error: 0,
            },
            route: None,
            receipts_sent: 0,
            reported: false,
        }
    }

    /// The bytes of a record as 6d128e1 wrote them (the account then a
    /// shared `Arc<str>`): the stored format is unchanged, both ways.
    #[test]
    fn a_record_reads_and_writes_the_same_bytes_as_before() {
        const WRITTEN: &str = "01cdd7a6bcd6e848000b736d7070636c69656e7431000000000101010c34343737\
            303039303030303000000000010868656c6c6f2000ff00010001000a0200000000";
        let mut r = record(0x0001_2345_6789_ABCD);
        r.account = Text::from("smppclient1");
        let hex: String = r.encode().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, WRITTEN);
        let bytes: Vec<u8> = (0..WRITTEN.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&WRITTEN[i..i + 2], 16).unwrap())
            .collect();
        let read = Record::decode(&bytes).unwrap();
        assert_eq!(&*read.account, "smppclient1");
        assert_eq!(read.encode(), bytes);
    }

    /// The direct encoder writes what postcard writes, for records of every
    /// shape: each kind and outcome, lengths around the varint's steps and
    /// the inline limits, integers of every width.
    #[test]
    fn the_encoder_writes_what_postcard_writes() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // Lengths around 127/128 (one or two varint octets), the inline limits, empty.
        let lens = [0usize, 1, 21, 22, 23, 127, 128, 160, 161, 255, 300];
        let ints = [
            0u64,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ];
        for round in 0..2_000 {
            let mut pick = |n: usize| (next() % n as u64) as usize;
            let text = |len: usize, c: char| Text::from(c.to_string().repeat(len).as_str());
            let mut r = record(ints[pick(ints.len())]);
            r.kind = [Kind::Message, Kind::Broadcast, Kind::Mo, Kind::Data][pick(4)];
            // Multi-octet characters too (a text's length is in octets).
            r.account = text(lens[pick(lens.len())], ['a', 'é', '€'][pick(3)]);
            r.service_type = text(lens[pick(lens.len())], 's');
            r.source = StoredAddr {
                ton: pick(256) as u8,
                npi: pick(256) as u8,
                addr: text(lens[pick(lens.len())], '4'),
            };
            r.dests = match pick(3) {
                0 => Dests::One(StoredAddr::default()),
                1 => Dests::Many(Vec::new()),
                _ => Dests::Many(
                    (0..lens[pick(lens.len())])
                        .map(|i| StoredAddr {
                            ton: i as u8,
                            npi: 1,
                            addr: text(i % 30, '7'),
                        })
                        .collect(),
                ),
            };
            (r.esm_class, r.protocol_id, r.priority_flag) = (pick(256) as u8, 0xFF, 3);
            (r.data_coding, r.registered_delivery) = (pick(256) as u8, pick(256) as u8);
            r.payload = Octets::from(vec![0xA5; lens[pick(lens.len())]]);
            r.tlvs = vec![round as u8; lens[pick(lens.len())]];
            r.parts = ints[pick(7)] as u32;
            r.billing = [None, Some(Vec::new()), Some(vec![1; 200])][pick(3)].clone();
            r.submit_ms = ints[pick(ints.len())];
            let (at, error) = (ints[pick(ints.len())], ints[pick(6)] as u16);
            r.outcome = match pick(3) {
                0 => Outcome::Planned {
                    due_ms: at,
                    state: pick(256) as u8,
                    error,
                },
                1 => Outcome::Fixed {
                    done_ms: at,
                    state: pick(256) as u8,
                    error,
                },
                _ => Outcome::Pending,
            };
            r.route = [None, Some(String::new()), Some("é".repeat(70))][pick(3)].clone();
            r.receipts_sent = ints[pick(7)] as u32;
            r.reported = pick(2) == 1;
            let bytes = r.encode();
            assert_eq!(bytes, r.encode_postcard(), "round {round}: {r:?}");
            // Read back the same (a list of one reads as `Dests::One`: compared stored).
            assert_eq!(Record::decode(&bytes).unwrap().encode(), bytes);
        }
    }

    /// Every field set, as d60dcb3 wrote them (the fields in their
    /// declaration order then, which the stored form keeps).
    #[test]
    fn a_record_with_every_field_set_keeps_its_stored_bytes() {
        const WRITTEN: &str = "01cdd7a6bcd6e848030b736d7070636c69656e743103434d5405000453686f70\
            02010104343437300209023939407f0208110868656c6c6f2000ff0504240001aa03010207\
            08fbe4ca91af3301e7ebca91af3305a30201056f746865720201";
        let mut r = record(0x0001_2345_6789_ABCD);
        r.kind = Kind::Data;
        r.account = Text::from("smppclient1");
        r.service_type = Text::from("CMT");
        r.source = StoredAddr {
            ton: 5,
            npi: 0,
            addr: Text::from("Shop"),
        };
        r.dests = Dests::Many(vec![
            StoredAddr {
                ton: 1,
                npi: 1,
                addr: Text::from("4470"),
            },
            StoredAddr {
                ton: 2,
                npi: 9,
                addr: Text::from("99"),
            },
        ]);
        (r.esm_class, r.protocol_id, r.priority_flag) = (0x40, 0x7f, 2);
        (r.data_coding, r.registered_delivery) = (8, 0x11);
        r.tlvs = vec![0x04, 0x24, 0x00, 0x01, 0xAA];
        r.parts = 3;
        r.billing = Some(vec![7, 8]);
        r.submit_ms = 1_765_000_000_123;
        r.outcome = Outcome::Fixed {
            done_ms: 1_765_000_000_999,
            state: 5,
            error: 0x0123,
        };
        r.route = Some("other".into());
        r.receipts_sent = 2;
        r.reported = true;
        let bytes = r.encode();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, WRITTEN);
        let read = Record::decode(&bytes).unwrap();
        assert_eq!(format!("{read:?}"), format!("{r:?}"));
    }

    /// What a drop reads (every field that may own an allocation) lies in
    /// the record's first 192 octets; see [`Record`].
    #[test]
    fn the_fields_a_drop_reads_come_first() {
        use std::mem::{offset_of, size_of};
        let owning = [
            offset_of!(Record, tlvs) + size_of::<Vec<u8>>(),
            offset_of!(Record, billing) + size_of::<Option<Vec<u8>>>(),
            offset_of!(Record, route) + size_of::<Option<String>>(),
            offset_of!(Record, account) + size_of::<Text>(),
            offset_of!(Record, service_type) + size_of::<Text>(),
            offset_of!(Record, source) + size_of::<StoredAddr>(),
            offset_of!(Record, dests) + size_of::<Dests>(),
        ];
        assert!(owning.iter().all(|&end| end <= 192), "{owning:?}");
        // So does the start of the payload, where its tag (inline or boxed) is.
        assert!(offset_of!(Record, payload) < 192);
    }

    #[test]
    fn inline_texts_and_one_destination_store_as_strings_and_lists() {
        let mut r = record(9);
        r.service_type = Text::from("CMT");
        r.source.addr = Text::from("a source longer than twenty-two octets");
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""service_type":"CMT""#), "{json}");
        assert!(json.contains(r#""addr":"a source longer than twenty-two octets""#));
        assert!(json.contains(r#""dests":[{"ton":1,"npi":1,"addr":"447700900000"}]"#));
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(back.source, r.source);
        assert_eq!(back.dests, r.dests);
        assert_eq!(&*back.service_type, "CMT");
        let many = r#"[{"ton":1,"npi":1,"addr":"1"},{"ton":1,"npi":1,"addr":"2"}]"#;
        let dests: Dests = serde_json::from_str(many).unwrap();
        assert_eq!(dests.len(), 2);
        assert_eq!(serde_json::to_string(&dests).unwrap(), many);
        let none: Dests = serde_json::from_str("[]").unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn the_binary_form_round_trips_and_is_compact() {
        let mut r = record(u64::MAX - 1);
        r.kind = Kind::Broadcast;
        r.service_type = Text::from("CMT");
        r.dests = Dests::Many(vec![StoredAddr::default(); 3]);
        r.tlvs = vec![0x02, 0x04, 0x00, 0x02, 0x00, 0x01];
        r.billing = Some(vec![1, 2, 3]);
        r.route = Some("other".into());
        r.outcome = Outcome::Fixed {
            done_ms: 1 << 40,
            state: 5,
            error: 0x0123,
        };
        r.payload = Octets::from(vec![0xA5; 300]);
        let bytes = r.encode();
        let back = Record::decode(&bytes).unwrap();
        assert_eq!(format!("{back:?}"), format!("{r:?}"));
        // The JSON of the first stores still reads.
        let json = serde_json::to_vec(&r).unwrap();
        assert_eq!(
            format!("{:?}", Record::decode(&json).unwrap()),
            format!("{r:?}")
        );
        // A data_sm's kind (added last) reads back; the others keep the
        // variant numbers the stores already hold (Message 0 ... Mo 2).
        r.kind = Kind::Data;
        let back = Record::decode(&r.encode()).unwrap();
        assert_eq!(back.kind, Kind::Data);
        for (kind, index) in [
            (Kind::Message, 0u8),
            (Kind::Broadcast, 1),
            (Kind::Mo, 2),
            (Kind::Data, 3),
        ] {
            assert_eq!(postcard::to_allocvec(&kind).unwrap(), [index]);
        }
        // A typical submit_sm: 160 octets of text, one destination.
        let mut typical = record(1_733_000_000_000_000);
        typical.payload = Octets::from(vec![b'x'; 160]);
        let size = typical.encode().len();
        assert!(size < 160 + 64, "{size} octets");
        assert!(size * 2 < serde_json::to_vec(&typical).unwrap().len());
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let good = record(7).encode();
        assert!(Record::decode(&[]).is_err());
        assert!(Record::decode(&[9, 1, 2]).is_err());
        assert!(Record::decode(b"{\"id\":").is_err());
        for cut in 0..good.len() {
            let _ = Record::decode(&good[..cut]);
        }
        let mut flipped = good.clone();
        for i in 1..flipped.len() {
            flipped[i] ^= 0xFF;
            let _ = Record::decode(&flipped);
            flipped[i] ^= 0xFF;
        }
    }

    #[test]
    fn inline_values_are_as_small_as_promised() {
        assert_eq!(size_of::<Text>(), size_of::<String>());
        assert!(size_of::<Octets>() <= OCTETS_INLINE + 8);
        for len in [0, 21, 22, 23, 300] {
            let s = "é".repeat(len / 2) + &"x".repeat(len % 2);
            assert_eq!(Text::from(s.as_str()).as_str(), s);
            assert_eq!(Text::from(s.clone()).as_str(), s);
        }
    }

    #[test]
    fn user_data_inline_or_not_stores_as_hex() {
        for len in [0, 1, 159, 160, 161, 254, 64_000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut r = record(3);
            r.payload = Octets::from(data.as_slice());
            assert_eq!(r.payload.is_inline(), len <= 160, "{len}");
            assert_eq!(&*r.payload, &data[..]);
            assert_eq!(r.payload, Octets::from(data.clone()));
            let json = serde_json::to_string(&r).unwrap();
            let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
            assert!(json.contains(&format!(r#""payload":"{hex}""#)), "{len}");
            let back: Record = serde_json::from_str(&json).unwrap();
            assert_eq!(&*back.payload, &data[..], "{len}");
        }
    }

    #[test]
    fn a_record_that_never_has_work_has_none_at_any_time() {
        let outcomes = [
            Outcome::Planned {
                due_ms: 10,
                state: 2,
                error: 0,
            },
            Outcome::Planned {
                due_ms: 10,
                state: 5,
                error: 1,
            },
            Outcome::Fixed {
                done_ms: 10,
                state: 2,
                error: 0,
            },
            Outcome::Pending,
        ];
        let mut quiet = 0;
        for kind in [Kind::Message, Kind::Broadcast, Kind::Mo, Kind::Data] {
            for outcome in outcomes {
                for registered_delivery in 0..=0x1F {
                    for report in [false, true] {
                        for reported in [false, true] {
                            let mut r = record(1);
                            (r.kind, r.outcome, r.reported) = (kind, outcome, reported);
                            r.registered_delivery = registered_delivery;
                            if !r.never_has_work(report) {
                                continue;
                            }
                            quiet += 1;
                            for now in [0, 9, 10, 11, u64::MAX] {
                                assert!(!r.has_work(now, report), "{r:?} at {now}");
                            }
                        }
                    }
                }
            }
        }
        assert!(quiet > 0);
    }

    #[test]
    fn state_moves_at_the_due_time() {
        let mut r = record(1);
        assert_eq!(r.state_at(9).0, MessageState::Enroute);
        assert_eq!(r.state_at(10), (MessageState::Delivered, Some(10), 0));
        assert!(r.has_work(9, false));
        assert!(r.has_work(10, false), "a receipt is owed");
        r.receipts_sent = 1;
        assert!(!r.has_work(10, false));
        assert!(r.has_work(10, true), "not reported yet");
        r.registered_delivery = 0;
        r.receipts_sent = 0;
        assert!(!r.has_work(9, false), "nothing to do when it becomes final");
    }
}
