//! PDUs and their codec.
//!
//! Every SMPP 3.3/3.4/5.0 operation is a typed body inside [`Body`]; unknown
//! command ids are kept as [`Body::Unknown`] and re-encode byte for byte.
//!
//! Decoding ([`decode`], [`decode_frame`]) frames on `command_length`, refuses
//! an oversize length from the header alone, checks every field (C-string
//! NULs and maxima, time fields, `sm_length`, TLV lengths, stray octets) and
//! hands variable fields out as slices of the received frame, without copying.
//! An error names the [`CommandStatus`] to answer with and builds the answer
//! ([`DecodeError::response`]).
//!
//! Encoding ([`Pdu::encode`]) checks every field first and then writes into a
//! caller-owned buffer; [`Pdu::encoded_len`] gives the exact size up front.
//!
//! ```
//! use bytes::BytesMut;
//! use smpp_proto::pdu::{self, Body, DecodeConfig, Decoded, Pdu, SequenceNumber, SubmitSm};
//!
//! let submit = SubmitSm {
//!     source_addr: "447700900123".into(),
//!     destination_addr: "447700900456".into(),
//!     short_message: "Hello".into(),
//!     registered_delivery: 1,
//!     ..Default::default()
//! };
//! let pdu = Pdu::request(SequenceNumber::new(2), Body::SubmitSm(submit.into()));
//! let mut wire = Vec::new();
//! pdu.encode(&mut wire).unwrap();
//! assert_eq!(wire.len(), pdu.encoded_len().unwrap());
//!
//! let mut buf = BytesMut::from(&wire[..]);
//! match pdu::decode(&mut buf, &DecodeConfig::default()).unwrap() {
//!     Decoded::Pdu(decoded) => assert_eq!(decoded, pdu),
//!     Decoded::Partial { .. } => unreachable!(),
//! }
//! ```

use bytes::{BufMut, Bytes};
use core::fmt;

mod ancillary;
mod bind;
mod body;
mod broadcast;
mod codec;
mod command_id;
mod error;
mod flags;
mod sm;
mod status;
mod string;
mod tlv;

pub use ancillary::{CancelSm, QuerySm, QuerySmResp, ReplaceSm};
pub use bind::{Bind, BindResp, Outbind};
pub use broadcast::{BroadcastSm, CancelBroadcastSm, QueryBroadcastSm};
pub use codec::{
    decode, decode_frame, decode_frame_ref, frame_len, DecodeConfig, Decoded, DEFAULT_MAX_PDU_LEN,
    HEADER_LEN,
};
pub use command_id::CommandId;
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use flags::{EsmClass, MessageType, MessagingMode, ReceiptRequest, RegisteredDelivery};
pub use sm::{
    AlertNotification, BroadcastSmResp, DataSm, DataSmResp, DeliverSm, DeliverSmResp, DestAddress,
    QueryBroadcastSmResp, SubmitMulti, SubmitMultiResp, SubmitSm, SubmitSmResp, UnsuccessSme,
};
pub use status::CommandStatus;
pub use string::COctetString;
pub use tlv::{
    BroadcastContentType, BroadcastFrequencyInterval, ItsSessionInfo, NetworkErrorCode, Tlv,
    TlvInfo, TlvIter, TlvKind, TlvTag, Tlvs,
};

pub mod profile;

use body::BodyCodec;
use codec::Reader;

/// A `sequence_number`.
///
/// Ours are always in 1..=0x7FFF_FFFF and wrap to 1; a peer's value is echoed
/// as received, whatever it is (some send 0 or use all 32 bits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SequenceNumber(u32);

impl SequenceNumber {
    /// The first number of a session.
    pub const FIRST: SequenceNumber = SequenceNumber(1);
    /// The last valid number; the next one is [`SequenceNumber::FIRST`].
    pub const MAX: SequenceNumber = SequenceNumber(0x7FFF_FFFF);

    /// Any value, as read from or written to the wire.
    pub const fn new(v: u32) -> Self {
        SequenceNumber(v)
    }

    /// The raw value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// In the range a sender may use (1..=0x7FFF_FFFF).
    pub const fn is_valid(self) -> bool {
        self.0 >= 1 && self.0 <= Self::MAX.0
    }

    /// The following number, wrapping from 0x7FFF_FFFF (or anything invalid) to 1.
    pub const fn next(self) -> Self {
        if self.0 >= Self::MAX.0 {
            Self::FIRST
        } else {
            SequenceNumber(self.0 + 1)
        }
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SequenceNumber({})", self.0)
    }
}

/// One field of a PDU body, for display and inspection ([`Body::for_each_field`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    /// The specification's field name (`source_addr`, `sm_length`, ...).
    pub name: &'static str,
    /// Its value.
    pub value: FieldValue<'a>,
}

impl<'a> Field<'a> {
    pub(crate) fn int(name: &'static str, v: impl Into<u32>) -> Self {
        Field {
            name,
            value: FieldValue::Int(v.into()),
        }
    }
    pub(crate) fn text(name: &'static str, v: &'a COctetString) -> Self {
        Field {
            name,
            value: FieldValue::Str(v),
        }
    }
    pub(crate) fn time(name: &'static str, v: &'a COctetString) -> Self {
        Field {
            name,
            value: FieldValue::Time(v),
        }
    }
    pub(crate) fn octets(name: &'static str, v: &'a [u8]) -> Self {
        Field {
            name,
            value: FieldValue::Octets(v),
        }
    }
    pub(crate) fn tlvs(v: &'a Tlvs) -> Self {
        Field {
            name: "tlvs",
            value: FieldValue::Tlvs(v),
        }
    }
}

/// The value of a [`Field`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldValue<'a> {
    /// An integer field (I1, or I4 for error_status_code; counts and lengths).
    Int(u32),
    /// A C-Octet String.
    Str(&'a COctetString),
    /// A time field (C-Octet String of 0 or 16 characters).
    Time(&'a COctetString),
    /// Raw octets (short_message, or the body of an unknown command).
    Octets(&'a [u8]),
    /// The TLV section.
    Tlvs(&'a Tlvs),
}

/// A PDU whose command id is not one of SMPP 3.4/5.0's, kept whole.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawBody {
    /// The command id.
    pub command_id: CommandId,
    /// The body octets after the header.
    pub body: Bytes,
}

macro_rules! bodies {
    ($( $(#[$doc:meta])* $variant:ident($ty:ty) = $id:ident; )*) => {
        /// The body of a PDU: one variant per operation.
        ///
        /// Bodies of more than 64 octets (every request but the header-only
        /// ones, and `submit_multi_resp` and `query_sm_resp`) are boxed, so that a
        /// [`Pdu`] is 80 octets and moves cheaply through queues and channels:
        /// build one with `Body::SubmitSm(sm.into())`; fields read through the
        /// box as usual, and `*sm` takes the body out.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Body {
            $( $(#[$doc])* $variant($ty), )*
            /// A command id SMPP does not define (vendor or legacy), kept as raw octets.
            Unknown(RawBody),
        }

        impl Body {
            /// The command id this body is sent with.
            pub fn command_id(&self) -> CommandId {
                match self {
                    $( Body::$variant(_) => CommandId::$id, )*
                    Body::Unknown(raw) => raw.command_id,
                }
            }

            /// An empty body for a known command id (`None` for unknown ids).
            pub fn default_for(id: CommandId) -> Option<Body> {
                Some(match id {
                    $( CommandId::$id => Body::$variant(Default::default()), )*
                    _ => return None,
                })
            }

            /// A header-only frame as a decoded PDU, built in place: `ok` wraps the
            /// PDU in what the caller returns (`Ok`, `Ok(Decoded::Pdu)`), inside each
            /// arm, so that no `Option` or `Decoded` in between costs a copy of the
            /// whole value; `missing` answers a request whose mandatory fields are
            /// missing.
            #[inline(always)]
            fn header_only<R>(
                id: CommandId,
                command_status: CommandStatus,
                sequence_number: SequenceNumber,
                ok: impl FnOnce(Pdu) -> R,
                missing: impl FnOnce() -> R,
            ) -> R {
                macro_rules! pdu {
                    ($body:expr) => {
                        ok(Pdu { command_status, sequence_number, body: $body })
                    };
                }
                // The two requests without mandatory fields come first; the
                // generated arms then cover every response (bodies are optional).
                #[allow(unreachable_patterns)]
                match id {
                    CommandId::ENQUIRE_LINK => pdu!(Body::EnquireLink(Tlvs::new())),
                    CommandId::UNBIND => pdu!(Body::Unbind(Tlvs::new())),
                    $( CommandId::$id if id.is_response() => pdu!(Body::$variant(Default::default())), )*
                    _ if !id.is_known() => pdu!(Body::Unknown(RawBody { command_id: id, body: Bytes::new() })),
                    _ => missing(),
                }
            }

            fn checked_len(&self) -> Result<usize, EncodeError> {
                match self {
                    $( Body::$variant(b) => b.checked_len(), )*
                    Body::Unknown(raw) => Ok(raw.body.len()),
                }
            }

            fn write<B: BufMut>(&self, out: &mut B) {
                match self {
                    $( Body::$variant(b) => b.write(out), )*
                    Body::Unknown(raw) => out.put_slice(&raw.body),
                }
            }

            /// Calls `f` with every field of the body, in wire order, by its
            /// specification name (`sm_length` and list counts included; the TLVs
            /// as one `tlvs` field). What `smpp decode` and the interop checks print.
            pub fn for_each_field<'a>(&'a self, mut f: impl FnMut(Field<'a>)) {
                match self {
                    $( Body::$variant(b) => b.visit(&mut f), )*
                    Body::Unknown(raw) => f(Field::octets("body", &raw.body)),
                }
            }

            fn write_checked(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
                match self {
                    $( Body::$variant(b) => b.write_checked(out), )*
                    Body::Unknown(raw) => {
                        out.extend_from_slice(&raw.body);
                        Ok(())
                    }
                }
            }

            pub(crate) fn is_default(&self) -> bool {
                match self {
                    $( Body::$variant(b) => b.is_default(), )*
                    Body::Unknown(raw) => raw.body.is_empty(),
                }
            }

            /// An arbitrary body of the operation `id` (`None` for unknown ids).
            #[cfg(feature = "arbitrary")]
            pub fn arbitrary_for(id: CommandId, u: &mut arbitrary::Unstructured<'_>) -> arbitrary::Result<Option<Body>> {
                use arbitrary::Arbitrary;
                Ok(Some(match id {
                    $( CommandId::$id => Body::$variant(<$ty>::arbitrary(u)?), )*
                    _ => return Ok(None),
                }))
            }

            #[inline(always)]
            fn decode(id: CommandId, r: &mut Reader<'_>) -> Result<Body, codec::FieldError> {
                Ok(match id {
                    $( CommandId::$id => Body::$variant(<$ty as BodyCodec>::decode(r)?), )*
                    _ => unreachable!("dispatched on known ids only"),
                })
            }
        }
    };
}

bodies! {
    /// `generic_nack`.
    GenericNack(Tlvs) = GENERIC_NACK;
    /// `bind_receiver`.
    BindReceiver(Box<Bind>) = BIND_RECEIVER;
    /// `bind_receiver_resp`.
    BindReceiverResp(BindResp) = BIND_RECEIVER_RESP;
    /// `bind_transmitter`.
    BindTransmitter(Box<Bind>) = BIND_TRANSMITTER;
    /// `bind_transmitter_resp`.
    BindTransmitterResp(BindResp) = BIND_TRANSMITTER_RESP;
    /// `bind_transceiver`.
    BindTransceiver(Box<Bind>) = BIND_TRANSCEIVER;
    /// `bind_transceiver_resp`.
    BindTransceiverResp(BindResp) = BIND_TRANSCEIVER_RESP;
    /// `outbind`.
    Outbind(Box<Outbind>) = OUTBIND;
    /// `unbind`.
    Unbind(Tlvs) = UNBIND;
    /// `unbind_resp`.
    UnbindResp(Tlvs) = UNBIND_RESP;
    /// `enquire_link`.
    EnquireLink(Tlvs) = ENQUIRE_LINK;
    /// `enquire_link_resp`.
    EnquireLinkResp(Tlvs) = ENQUIRE_LINK_RESP;
    /// `submit_sm`.
    SubmitSm(Box<SubmitSm>) = SUBMIT_SM;
    /// `submit_sm_resp`.
    SubmitSmResp(SubmitSmResp) = SUBMIT_SM_RESP;
    /// `deliver_sm`.
    DeliverSm(Box<DeliverSm>) = DELIVER_SM;
    /// `deliver_sm_resp`.
    DeliverSmResp(DeliverSmResp) = DELIVER_SM_RESP;
    /// `data_sm`.
    DataSm(Box<DataSm>) = DATA_SM;
    /// `data_sm_resp`.
    DataSmResp(DataSmResp) = DATA_SM_RESP;
    /// `submit_multi`.
    SubmitMulti(Box<SubmitMulti>) = SUBMIT_MULTI;
    /// `submit_multi_resp`.
    SubmitMultiResp(Box<SubmitMultiResp>) = SUBMIT_MULTI_RESP;
    /// `query_sm`.
    QuerySm(Box<QuerySm>) = QUERY_SM;
    /// `query_sm_resp`.
    QuerySmResp(Box<QuerySmResp>) = QUERY_SM_RESP;
    /// `cancel_sm`.
    CancelSm(Box<CancelSm>) = CANCEL_SM;
    /// `cancel_sm_resp`.
    CancelSmResp(Tlvs) = CANCEL_SM_RESP;
    /// `replace_sm`.
    ReplaceSm(Box<ReplaceSm>) = REPLACE_SM;
    /// `replace_sm_resp`.
    ReplaceSmResp(Tlvs) = REPLACE_SM_RESP;
    /// `alert_notification`.
    AlertNotification(Box<AlertNotification>) = ALERT_NOTIFICATION;
    /// `broadcast_sm` (5.0).
    BroadcastSm(Box<BroadcastSm>) = BROADCAST_SM;
    /// `broadcast_sm_resp` (5.0).
    BroadcastSmResp(BroadcastSmResp) = BROADCAST_SM_RESP;
    /// `query_broadcast_sm` (5.0).
    QueryBroadcastSm(Box<QueryBroadcastSm>) = QUERY_BROADCAST_SM;
    /// `query_broadcast_sm_resp` (5.0).
    QueryBroadcastSmResp(QueryBroadcastSmResp) = QUERY_BROADCAST_SM_RESP;
    /// `cancel_broadcast_sm` (5.0).
    CancelBroadcastSm(Box<CancelBroadcastSm>) = CANCEL_BROADCAST_SM;
    /// `cancel_broadcast_sm_resp` (5.0).
    CancelBroadcastSmResp(Tlvs) = CANCEL_BROADCAST_SM_RESP;
}

impl Body {
    /// The body's TLV section (`None` for an unknown command id, kept raw).
    pub fn tlvs(&self) -> Option<&Tlvs> {
        Some(match self {
            Body::GenericNack(t)
            | Body::Unbind(t)
            | Body::UnbindResp(t)
            | Body::EnquireLink(t)
            | Body::EnquireLinkResp(t)
            | Body::CancelSmResp(t)
            | Body::ReplaceSmResp(t)
            | Body::CancelBroadcastSmResp(t) => t,
            Body::BindReceiver(b) | Body::BindTransmitter(b) | Body::BindTransceiver(b) => &b.tlvs,
            Body::BindReceiverResp(r)
            | Body::BindTransmitterResp(r)
            | Body::BindTransceiverResp(r) => &r.tlvs,
            Body::Outbind(o) => &o.tlvs,
            Body::SubmitSm(sm) | Body::DeliverSm(sm) => &sm.tlvs,
            Body::SubmitSmResp(r)
            | Body::DeliverSmResp(r)
            | Body::DataSmResp(r)
            | Body::BroadcastSmResp(r)
            | Body::QueryBroadcastSmResp(r) => &r.tlvs,
            Body::DataSm(d) => &d.tlvs,
            Body::SubmitMulti(m) => &m.tlvs,
            Body::SubmitMultiResp(r) => &r.tlvs,
            Body::QuerySm(q) => &q.tlvs,
            Body::QuerySmResp(r) => &r.tlvs,
            Body::CancelSm(c) => &c.tlvs,
            Body::ReplaceSm(r) => &r.tlvs,
            Body::AlertNotification(a) => &a.tlvs,
            Body::BroadcastSm(b) => &b.tlvs,
            Body::QueryBroadcastSm(q) => &q.tlvs,
            Body::CancelBroadcastSm(c) => &c.tlvs,
            Body::Unknown(_) => return None,
        })
    }

    /// The body's TLV section, to change (`None` for an unknown command id).
    pub fn tlvs_mut(&mut self) -> Option<&mut Tlvs> {
        Some(match self {
            Body::GenericNack(t)
            | Body::Unbind(t)
            | Body::UnbindResp(t)
            | Body::EnquireLink(t)
            | Body::EnquireLinkResp(t)
            | Body::CancelSmResp(t)
            | Body::ReplaceSmResp(t)
            | Body::CancelBroadcastSmResp(t) => t,
            Body::BindReceiver(b) | Body::BindTransmitter(b) | Body::BindTransceiver(b) => {
                &mut b.tlvs
            }
            Body::BindReceiverResp(r)
            | Body::BindTransmitterResp(r)
            | Body::BindTransceiverResp(r) => &mut r.tlvs,
            Body::Outbind(o) => &mut o.tlvs,
            Body::SubmitSm(sm) | Body::DeliverSm(sm) => &mut sm.tlvs,
            Body::SubmitSmResp(r)
            | Body::DeliverSmResp(r)
            | Body::DataSmResp(r)
            | Body::BroadcastSmResp(r)
            | Body::QueryBroadcastSmResp(r) => &mut r.tlvs,
            Body::DataSm(d) => &mut d.tlvs,
            Body::SubmitMulti(m) => &mut m.tlvs,
            Body::SubmitMultiResp(r) => &mut r.tlvs,
            Body::QuerySm(q) => &mut q.tlvs,
            Body::QuerySmResp(r) => &mut r.tlvs,
            Body::CancelSm(c) => &mut c.tlvs,
            Body::ReplaceSm(r) => &mut r.tlvs,
            Body::AlertNotification(a) => &mut a.tlvs,
            Body::BroadcastSm(b) => &mut b.tlvs,
            Body::QueryBroadcastSm(q) => &mut q.tlvs,
            Body::CancelBroadcastSm(c) => &mut c.tlvs,
            Body::Unknown(_) => return None,
        })
    }

    /// The `message_id` of a body that carries one: the MC's id in
    /// submit_sm_resp, data_sm_resp, submit_multi_resp, broadcast_sm_resp and
    /// query_sm_resp, or the id a request refers to (query_sm, cancel_sm,
    /// replace_sm and the broadcast queries).
    pub fn message_id(&self) -> Option<&COctetString> {
        Some(match self {
            Body::SubmitSmResp(r)
            | Body::DeliverSmResp(r)
            | Body::DataSmResp(r)
            | Body::BroadcastSmResp(r)
            | Body::QueryBroadcastSmResp(r) => &r.message_id,
            Body::SubmitMultiResp(r) => &r.message_id,
            Body::QuerySmResp(r) => &r.message_id,
            Body::QuerySm(q) => &q.message_id,
            Body::CancelSm(c) => &c.message_id,
            Body::ReplaceSm(r) => &r.message_id,
            Body::BroadcastSm(b) => &b.message_id,
            Body::QueryBroadcastSm(q) => &q.message_id,
            Body::CancelBroadcastSm(c) => &c.message_id,
            _ => return None,
        })
    }
}

/// One SMPP PDU: header fields and a typed body.
// `repr(C)`: the header fields first, then the body (the default layout puts
// them after it). Same size (80 octets); what changes is how a freshly built
// PDU is copied out of a `Result` (`decode_frame_ref(..)?`, `.unwrap()`):
// with the 4-octet fields at the front the copy reads them as they were
// written, where the default layout read them with a 16-octet load over two
// 4-octet stores, which the CPU cannot forward (a stall of the whole copy:
// 36-58 % of a header-only decode's samples in `perf`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct Pdu {
    /// `command_status`: 0 in requests; the outcome in responses.
    pub command_status: CommandStatus,
    /// `sequence_number`.
    pub sequence_number: SequenceNumber,
    /// The operation and its fields (the `command_id` follows from it).
    pub body: Body,
}

impl Pdu {
    /// A request (status 0).
    pub fn request(sequence_number: SequenceNumber, body: Body) -> Pdu {
        Pdu {
            command_status: CommandStatus::OK,
            sequence_number,
            body,
        }
    }

    /// A response with a status.
    pub fn response(
        sequence_number: SequenceNumber,
        command_status: CommandStatus,
        body: Body,
    ) -> Pdu {
        Pdu {
            command_status,
            sequence_number,
            body,
        }
    }

    /// A header-only error response for the request id `request_or_response_id`
    /// (either the request's id or its response's id).
    ///
    /// Falls back to `generic_nack` for ids without a response PDU.
    pub fn error_response(
        request_or_response_id: CommandId,
        seq: SequenceNumber,
        status: CommandStatus,
    ) -> Pdu {
        let id = if request_or_response_id.is_response() {
            Some(request_or_response_id)
        } else {
            request_or_response_id.response_id()
        };
        match id.and_then(Body::default_for) {
            Some(body) => Pdu {
                command_status: status,
                sequence_number: seq,
                body,
            },
            None => Pdu::generic_nack(seq, status),
        }
    }

    /// `generic_nack` with a status.
    pub fn generic_nack(seq: SequenceNumber, status: CommandStatus) -> Pdu {
        Pdu {
            command_status: status,
            sequence_number: seq,
            body: Body::GenericNack(Tlvs::new()),
        }
    }

    /// `enquire_link`.
    pub fn enquire_link(seq: SequenceNumber) -> Pdu {
        Pdu::request(seq, Body::EnquireLink(Tlvs::new()))
    }

    /// `unbind`.
    pub fn unbind(seq: SequenceNumber) -> Pdu {
        Pdu::request(seq, Body::Unbind(Tlvs::new()))
    }

    /// The command id.
    pub fn command_id(&self) -> CommandId {
        self.body.command_id()
    }

    /// A response (including `generic_nack`).
    pub fn is_response(&self) -> bool {
        self.command_id().is_response()
    }

    /// A request.
    pub fn is_request(&self) -> bool {
        self.command_id().is_request()
    }

    /// An error response whose body is empty is sent header-only (SMPP 5.0 §3.2.1.3).
    fn header_only(&self) -> bool {
        !self.command_status.is_ok() && self.is_response() && self.body.is_default()
    }

    /// The exact number of octets [`Pdu::encode`] writes, after checking every
    /// field (an error here is the error `encode` would return).
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        if self.header_only() {
            return Ok(HEADER_LEN);
        }
        let len = HEADER_LEN + self.body.checked_len()?;
        if len > u32::MAX as usize {
            return Err(EncodeError::BufferTooSmall {
                needed: len,
                available: u32::MAX as usize,
            });
        }
        Ok(len)
    }

    /// Writes the PDU to `out` and returns its length. On error nothing is written.
    pub fn encode<B: BufMut>(&self, out: &mut B) -> Result<usize, EncodeError> {
        let len = self.encoded_len()?;
        if out.remaining_mut() < len {
            return Err(EncodeError::BufferTooSmall {
                needed: len,
                available: out.remaining_mut(),
            });
        }
        self.write(len, out);
        Ok(len)
    }

    /// Appends the PDU to a vector and returns its length: the fast path,
    /// checking and writing each field in one pass and filling in
    /// `command_length` last. On error nothing is appended.
    pub fn encode_to_vec(&self, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        encode_parts_to_vec(self.command_status, self.sequence_number, &self.body, out)
    }

    fn write<B: BufMut>(&self, len: usize, out: &mut B) {
        out.put_u32(len as u32);
        out.put_u32(self.command_id().0);
        out.put_u32(self.command_status.0);
        out.put_u32(self.sequence_number.0);
        if len > HEADER_LEN {
            self.body.write(out);
        }
    }

    /// Encodes into a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::new();
        self.encode_to_vec(&mut v)?;
        Ok(v)
    }
}

/// [`Pdu::encode_to_vec`] from the parts of a PDU, for callers that hold a
/// body but no `Pdu` (the session's send path): no PDU is assembled, so the
/// body is not moved.
#[inline]
pub(crate) fn encode_parts_to_vec(
    command_status: CommandStatus,
    sequence_number: SequenceNumber,
    body: &Body,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let start = out.len();
    let id = body.command_id();
    let mut header = [0u8; HEADER_LEN];
    header[4..8].copy_from_slice(&id.0.to_be_bytes());
    header[8..12].copy_from_slice(&command_status.0.to_be_bytes());
    header[12..16].copy_from_slice(&sequence_number.0.to_be_bytes());
    out.extend_from_slice(&header);
    // An error response whose body is empty is sent header-only (SMPP 5.0 §3.2.1.3).
    let header_only = !command_status.is_ok() && id.is_response() && body.is_default();
    if !header_only {
        if let Err(e) = body.write_checked(out) {
            out.truncate(start);
            return Err(e);
        }
    }
    let len = out.len() - start;
    let Ok(len32) = u32::try_from(len) else {
        out.truncate(start);
        return Err(EncodeError::BufferTooSmall {
            needed: len,
            available: u32::MAX as usize,
        });
    };
    out[start..start + 4].copy_from_slice(&len32.to_be_bytes());
    Ok(len)
}

/// Decodes the body of a framed PDU, dispatching on the command id.
#[inline(always)]
pub(crate) fn decode_pdu_body(
    id: CommandId,
    status: CommandStatus,
    seq: u32,
    r: &mut Reader<'_>,
) -> Result<Pdu, DecodeError> {
    let command_status = status;
    let sequence_number = SequenceNumber(seq);
    if !id.is_known() {
        let body = r.rest();
        return Ok(Pdu {
            command_status,
            sequence_number,
            body: Body::Unknown(RawBody {
                command_id: id,
                body,
            }),
        });
    }
    let body = if id.is_response() && (r.remaining() == 0 || !status.is_ok()) {
        // Receivers must accept error responses with or without a body, and
        // some peers omit the body of a successful response too: parse what
        // is there, and ignore a broken body on an error response.
        if r.remaining() == 0 {
            Body::default_for(id).expect("known id")
        } else {
            Body::decode(id, r).unwrap_or_else(|_| Body::default_for(id).expect("known id"))
        }
    } else {
        Body::decode(id, r).map_err(|e| e.into_decode_error(id, seq))?
    };
    Ok(Pdu {
        command_status,
        sequence_number,
        body,
    })
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Pdu {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let id = *u.choose(CommandId::ALL)?;
        let body = Body::arbitrary_for(id, u)?.expect("known id");
        let command_status = if id.is_response() {
            CommandStatus(u.arbitrary()?)
        } else {
            CommandStatus::OK
        };
        Ok(Pdu {
            command_status,
            sequence_number: SequenceNumber(u.arbitrary()?),
            body,
        })
    }
}

/// `arbitrary` generators for field kinds, used by the derives.
#[cfg(feature = "arbitrary")]
pub(crate) mod arb {
    use super::{COctetString, Tlvs};
    use arbitrary::{Arbitrary, Result, Unstructured};
    use bytes::Bytes;

    pub(crate) fn u8(u: &mut Unstructured<'_>) -> Result<u8> {
        u8::arbitrary(u)
    }

    pub(crate) fn cstr(u: &mut Unstructured<'_>) -> Result<COctetString> {
        COctetString::arbitrary(u)
    }

    pub(crate) fn time(u: &mut Unstructured<'_>) -> Result<COctetString> {
        Ok(if bool::arbitrary(u)? {
            COctetString::new()
        } else {
            let d = |u: &mut Unstructured<'_>, hi: u8| -> Result<u8> {
                Ok(b'0' + u.int_in_range(0..=hi)?)
            };
            let mut s = Vec::with_capacity(16);
            for _ in 0..13 {
                s.push(d(u, 9)?);
            }
            s.push(d(u, 4)?);
            s.push(d(u, 8)?);
            s.push(*u.choose(b"+-R")?);
            COctetString::from(s)
        })
    }

    pub(crate) fn sm(u: &mut Unstructured<'_>) -> Result<Bytes> {
        let len = u.int_in_range(0..=255usize)?;
        Ok(Bytes::copy_from_slice(u.bytes(len.min(u.len()))?))
    }

    pub(crate) fn tlvs(u: &mut Unstructured<'_>) -> Result<Tlvs> {
        Tlvs::arbitrary(u)
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// What the boxing of the larger bodies is for: a PDU stays small, and
    /// so do the session's events and the endpoint's outputs that carry one.
    #[test]
    fn a_pdu_stays_small() {
        assert!(
            size_of::<Body>() <= 72,
            "Body is {} octets",
            size_of::<Body>()
        );
        assert!(size_of::<Pdu>() <= 80, "Pdu is {} octets", size_of::<Pdu>());
        // An empty TLV section is a niche (no separate tag), and so is the
        // error of a decode: the `Result` is no larger than the PDU.
        assert_eq!(size_of::<Tlvs>(), size_of::<Bytes>());
        assert_eq!(size_of::<Result<Pdu, DecodeError>>(), size_of::<Pdu>());
        assert!(size_of::<crate::session::Event>() <= 96);
        assert!(size_of::<crate::endpoint::Output<u64>>() <= 104);
    }
}
