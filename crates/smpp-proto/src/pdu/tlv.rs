//! TLVs (optional parameters): tags, the per-tag value rules, and the
//! zero-copy [`Tlvs`] list carried at the end of a PDU body.
//!
//! A PDU keeps its TLV section as the raw wire bytes, checked once when it is
//! decoded: reading a TLV is a walk over a few bytes, decoding never allocates,
//! and unknown or vendor tags survive a decode/encode cycle byte for byte and
//! in their original order.

use bytes::{BufMut, Bytes};
use core::fmt;

/// A TLV tag (SMPP 3.4 §5.3.2, 5.0 §4.8.4). Any `u16` is representable.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct TlvTag(pub u16);

/// How a TLV's value is laid out, for checking and for the typed accessors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlvKind {
    /// Unsigned integer, big-endian; read by its actual length (1 to 4 octets).
    Integer,
    /// C-Octet String: text terminated by NUL.
    CString,
    /// Absolute time string of 16 characters, with or without a NUL.
    Time,
    /// Raw octets.
    Octets,
    /// Presence is the information; the value is empty or one octet.
    Flag,
}

/// What the specification says of one tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlvInfo {
    /// The tag.
    pub tag: TlvTag,
    /// The specification's name (`"message_payload"`).
    pub name: &'static str,
    /// Value layout.
    pub kind: TlvKind,
    /// Smallest value length accepted, in octets.
    pub min_len: u16,
    /// Largest value length accepted, in octets.
    pub max_len: u16,
    /// The first SMPP version defining it: `0x34` or `0x50`.
    pub since: u8,
}

macro_rules! tlv_tags {
    ($( $(#[$doc:meta])* $name:ident = $value:expr, $spec:literal, $kind:ident, $min:expr, $max:expr, $since:expr; )*) => {
        impl TlvTag {
            $( $(#[$doc])* #[doc = concat!("\n\nWire name `", $spec, "`.")] pub const $name: TlvTag = TlvTag($value); )*

            /// Every tag defined by SMPP 3.4 and 5.0, with its value rules.
            pub const ALL: &'static [TlvInfo] = &[$(
                TlvInfo { tag: TlvTag($value), name: $spec, kind: TlvKind::$kind, min_len: $min, max_len: $max, since: $since }
            ),*];

            /// What the specification says of this tag, or `None` when unknown.
            #[inline]
            pub const fn info(self) -> Option<&'static TlvInfo> {
                // A match compiles to a jump table: this runs for every TLV decoded.
                match self.0 {
                    $( $value => Some(&TlvInfo { tag: TlvTag($value), name: $spec, kind: TlvKind::$kind, min_len: $min, max_len: $max, since: $since }), )*
                    _ => None,
                }
            }
        }
    };
}

tlv_tags! {
    /// Destination address subunit (MS display, SIM...).
    DEST_ADDR_SUBUNIT = 0x0005, "dest_addr_subunit", Integer, 1, 1, 0x34;
    /// Destination network type.
    DEST_NETWORK_TYPE = 0x0006, "dest_network_type", Integer, 1, 1, 0x34;
    /// Destination bearer type.
    DEST_BEARER_TYPE = 0x0007, "dest_bearer_type", Integer, 1, 1, 0x34;
    /// Destination telematics id.
    DEST_TELEMATICS_ID = 0x0008, "dest_telematics_id", Integer, 2, 2, 0x34;
    /// Source address subunit.
    SOURCE_ADDR_SUBUNIT = 0x000D, "source_addr_subunit", Integer, 1, 1, 0x34;
    /// Source network type.
    SOURCE_NETWORK_TYPE = 0x000E, "source_network_type", Integer, 1, 1, 0x34;
    /// Source bearer type.
    SOURCE_BEARER_TYPE = 0x000F, "source_bearer_type", Integer, 1, 1, 0x34;
    /// Source telematics id: 1 octet by the spec, 2 by some stacks; both accepted.
    SOURCE_TELEMATICS_ID = 0x0010, "source_telematics_id", Integer, 1, 2, 0x34;
    /// Seconds to keep the message before expiry.
    QOS_TIME_TO_LIVE = 0x0017, "qos_time_to_live", Integer, 4, 4, 0x34;
    /// Payload type: 0 default/WDP, 1 WCMP.
    PAYLOAD_TYPE = 0x0019, "payload_type", Integer, 1, 1, 0x34;
    /// Free diagnostic text in a response.
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D, "additional_status_info_text", CString, 1, 256, 0x34;
    /// The MC message id a receipt or notification is about.
    RECEIPTED_MESSAGE_ID = 0x001E, "receipted_message_id", CString, 1, 65, 0x34;
    /// Message waiting indication bits.
    MS_MSG_WAIT_FACILITIES = 0x0030, "ms_msg_wait_facilities", Integer, 1, 1, 0x34;
    /// Privacy level.
    PRIVACY_INDICATOR = 0x0201, "privacy_indicator", Integer, 1, 1, 0x34;
    /// Source subaddress.
    SOURCE_SUBADDRESS = 0x0202, "source_subaddress", Octets, 2, 23, 0x34;
    /// Destination subaddress.
    DEST_SUBADDRESS = 0x0203, "dest_subaddress", Octets, 2, 23, 0x34;
    /// ESME-assigned reference.
    USER_MESSAGE_REFERENCE = 0x0204, "user_message_reference", Integer, 2, 2, 0x34;
    /// Application-specific user response code.
    USER_RESPONSE_CODE = 0x0205, "user_response_code", Integer, 1, 1, 0x34;
    /// Originator application port.
    SOURCE_PORT = 0x020A, "source_port", Integer, 2, 2, 0x34;
    /// Destination application port (`dest_port` in 5.0).
    DESTINATION_PORT = 0x020B, "destination_port", Integer, 2, 2, 0x34;
    /// Concatenation reference, the same in every segment.
    SAR_MSG_REF_NUM = 0x020C, "sar_msg_ref_num", Integer, 2, 2, 0x34;
    /// Language of the message.
    LANGUAGE_INDICATOR = 0x020D, "language_indicator", Integer, 1, 1, 0x34;
    /// Number of segments.
    SAR_TOTAL_SEGMENTS = 0x020E, "sar_total_segments", Integer, 1, 1, 0x34;
    /// This segment's number, from 1.
    SAR_SEGMENT_SEQNUM = 0x020F, "sar_segment_seqnum", Integer, 1, 1, 0x34;
    /// The MC's SMPP version, in bind responses.
    SC_INTERFACE_VERSION = 0x0210, "sc_interface_version", Integer, 1, 1, 0x34;
    /// Callback number presentation and screening.
    CALLBACK_NUM_PRES_IND = 0x0302, "callback_num_pres_ind", Integer, 1, 1, 0x34;
    /// Callback number display tag.
    CALLBACK_NUM_ATAG = 0x0303, "callback_num_atag", Octets, 0, 65, 0x34;
    /// Number of messages waiting in a mailbox.
    NUMBER_OF_MESSAGES = 0x0304, "number_of_messages", Integer, 1, 1, 0x34;
    /// Callback number.
    CALLBACK_NUM = 0x0381, "callback_num", Octets, 4, 19, 0x34;
    /// Whether the delivery pending flag was set.
    DPF_RESULT = 0x0420, "dpf_result", Integer, 1, 1, 0x34;
    /// Request to set the delivery pending flag.
    SET_DPF = 0x0421, "set_dpf", Integer, 1, 1, 0x34;
    /// MS availability, in alert_notification.
    MS_AVAILABILITY_STATUS = 0x0422, "ms_availability_status", Integer, 1, 1, 0x34;
    /// Network error: network type octet and a 2-octet code.
    NETWORK_ERROR_CODE = 0x0423, "network_error_code", Octets, 3, 3, 0x34;
    /// User data, an alternative to short_message.
    MESSAGE_PAYLOAD = 0x0424, "message_payload", Octets, 0, 65535, 0x34;
    /// Why a delivery failed.
    DELIVERY_FAILURE_REASON = 0x0425, "delivery_failure_reason", Integer, 1, 1, 0x34;
    /// More messages follow.
    MORE_MESSAGES_TO_SEND = 0x0426, "more_messages_to_send", Integer, 1, 1, 0x34;
    /// Message state (receipts, query_broadcast_sm_resp).
    MESSAGE_STATE = 0x0427, "message_state", Integer, 1, 1, 0x34;
    /// Congestion of the sender, 0–100 (5.0).
    CONGESTION_STATE = 0x0428, "congestion_state", Integer, 1, 1, 0x50;
    /// USSD service operation.
    USSD_SERVICE_OP = 0x0501, "ussd_service_op", Integer, 1, 1, 0x34;
    /// Cell broadcast channel: basic or extended (5.0).
    BROADCAST_CHANNEL_INDICATOR = 0x0600, "broadcast_channel_indicator", Integer, 1, 1, 0x50;
    /// Broadcast content type: network octet and a 2-octet type (5.0).
    BROADCAST_CONTENT_TYPE = 0x0601, "broadcast_content_type", Octets, 3, 3, 0x50;
    /// Free-format broadcast content type information (5.0).
    BROADCAST_CONTENT_TYPE_INFO = 0x0602, "broadcast_content_type_info", Octets, 1, 255, 0x50;
    /// Broadcast message class (5.0).
    BROADCAST_MESSAGE_CLASS = 0x0603, "broadcast_message_class", Integer, 1, 1, 0x50;
    /// Number of repetitions: 2 octets by the spec, 1 by some stacks; both accepted (5.0).
    BROADCAST_REP_NUM = 0x0604, "broadcast_rep_num", Integer, 1, 2, 0x50;
    /// Broadcast frequency: unit octet and a 2-octet count (5.0).
    BROADCAST_FREQUENCY_INTERVAL = 0x0605, "broadcast_frequency_interval", Octets, 3, 3, 0x50;
    /// Broadcast area: format octet and up to 100 octets (5.0). Also used as
    /// `failed_broadcast_area_identifier` in broadcast_sm_resp.
    BROADCAST_AREA_IDENTIFIER = 0x0606, "broadcast_area_identifier", Octets, 1, 101, 0x50;
    /// Error status for a failed broadcast area (5.0).
    BROADCAST_ERROR_STATUS = 0x0607, "broadcast_error_status", Integer, 4, 4, 0x50;
    /// Success rate of a broadcast area (5.0).
    BROADCAST_AREA_SUCCESS = 0x0608, "broadcast_area_success", Integer, 1, 1, 0x50;
    /// Broadcast end time, absolute time format (5.0).
    BROADCAST_END_TIME = 0x0609, "broadcast_end_time", Time, 16, 17, 0x50;
    /// Broadcast service group (5.0).
    BROADCAST_SERVICE_GROUP = 0x060A, "broadcast_service_group", Octets, 1, 255, 0x50;
    /// Billing data: format octet then data (5.0).
    BILLING_IDENTIFICATION = 0x060B, "billing_identification", Octets, 1, 1024, 0x50;
    /// Source network id (5.0).
    SOURCE_NETWORK_ID = 0x060D, "source_network_id", CString, 7, 65, 0x50;
    /// Destination network id (5.0).
    DEST_NETWORK_ID = 0x060E, "dest_network_id", CString, 7, 65, 0x50;
    /// Source node id, 6 decimal digits (5.0).
    SOURCE_NODE_ID = 0x060F, "source_node_id", Octets, 6, 6, 0x50;
    /// Destination node id, 6 decimal digits (5.0).
    DEST_NODE_ID = 0x0610, "dest_node_id", Octets, 6, 6, 0x50;
    /// Number portability query result (5.0).
    DEST_ADDR_NP_RESOLUTION = 0x0611, "dest_addr_np_resolution", Integer, 1, 1, 0x50;
    /// Number portability information (5.0).
    DEST_ADDR_NP_INFORMATION = 0x0612, "dest_addr_np_information", Octets, 10, 10, 0x50;
    /// Number portability country code (5.0).
    DEST_ADDR_NP_COUNTRY = 0x0613, "dest_addr_np_country", Octets, 1, 5, 0x50;
    /// How long the message is displayed.
    DISPLAY_TIME = 0x1201, "display_time", Integer, 1, 1, 0x34;
    /// Alert tone (TIA/EIA-136).
    SMS_SIGNAL = 0x1203, "sms_signal", Integer, 2, 2, 0x34;
    /// Validity behaviour in the MS: 1 octet (3.4) or 4 (5.0 relative period).
    MS_VALIDITY = 0x1204, "ms_validity", Octets, 1, 4, 0x34;
    /// Alert the user on delivery: empty (3.4) or a priority octet (5.0).
    ALERT_ON_MESSAGE_DELIVERY = 0x130C, "alert_on_message_delivery", Flag, 0, 1, 0x34;
    /// ITS reply type.
    ITS_REPLY_TYPE = 0x1380, "its_reply_type", Integer, 1, 1, 0x34;
    /// ITS session number and sequence.
    ITS_SESSION_INFO = 0x1383, "its_session_info", Octets, 2, 2, 0x34;
}

impl TlvTag {
    /// The raw value.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The specification's name, or `None` for an unknown tag.
    pub const fn name(self) -> Option<&'static str> {
        match self.info() {
            Some(i) => Some(i.name),
            None => None,
        }
    }

    /// In the MC vendor-specific range 0x1400–0x3FFF.
    pub const fn is_vendor(self) -> bool {
        matches!(self.0, 0x1400..=0x3FFF)
    }

    /// Looks a tag up by its specification name (`dest_port` is accepted too).
    pub fn from_name(name: &str) -> Option<TlvTag> {
        if name == "dest_port" {
            return Some(TlvTag::DESTINATION_PORT);
        }
        Self::ALL.iter().find(|i| i.name == name).map(|i| i.tag)
    }
}

impl fmt::Display for TlvTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:04X}", self.0),
        }
    }
}

impl fmt::Debug for TlvTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "TlvTag({n})"),
            None => write!(f, "TlvTag(0x{:04X})", self.0),
        }
    }
}

/// One TLV, borrowed from a [`Tlvs`] list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag.
    pub tag: TlvTag,
    /// The value octets (`length` of them).
    pub value: &'a [u8],
}

/// Why a TLV section was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TlvProblem {
    /// 1–3 stray octets, or a length running past the end (`ESME_RINVTLVSTREAM`).
    Stream { offset: usize },
    /// A known tag with a length outside its rules (`ESME_RINVTLVLEN`).
    Length {
        tag: TlvTag,
        len: usize,
        offset: usize,
    },
    /// A C-string TLV without its NUL (`ESME_RINVTLVVAL`).
    Value { tag: TlvTag, offset: usize },
}

/// The TLVs of a PDU, in wire order, as their raw encoding.
///
/// Cheap to clone (reference-counted), never allocates when decoded.
/// Build with [`Tlvs::push`] and the typed setters; read with [`Tlvs::get`],
/// [`Tlvs::iter`] and the typed getters (which read integers by their actual
/// length, as real peers do not always send the specified size).
///
/// An empty section is `None` inside (never an empty `Bytes`): building,
/// moving and dropping the TLVs of a header-only PDU or of a response
/// without TLVs touches one word and calls nothing (an empty `Bytes` is
/// dropped through its vtable).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Tlvs {
    /// `None` when empty; `Some` holds at least one octet (so the derived
    /// comparisons and hash see equal sections as equal).
    raw: Option<Bytes>,
}

impl Tlvs {
    /// No TLVs.
    pub const fn new() -> Self {
        Tlvs { raw: None }
    }

    /// `raw` as the field holds it: `None` for an empty section.
    #[inline(always)]
    fn wrap(raw: Bytes) -> Option<Bytes> {
        if raw.is_empty() {
            None
        } else {
            Some(raw)
        }
    }

    /// Wraps an encoded TLV section after checking it (strict rules).
    pub fn from_bytes(raw: Bytes) -> Result<Self, crate::pdu::DecodeErrorKind> {
        match check(&raw, true) {
            Ok(()) => Ok(Tlvs {
                raw: Self::wrap(raw),
            }),
            Err(p) => Err(p.into_kind()),
        }
    }

    #[inline(always)]
    pub(crate) fn from_checked(raw: Bytes) -> Self {
        Tlvs {
            raw: Self::wrap(raw),
        }
    }

    /// The encoded section.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.raw {
            Some(raw) => raw,
            None => &[],
        }
    }

    /// No TLV present.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.raw.is_none()
    }

    /// Octets on the wire.
    #[inline]
    pub fn wire_len(&self) -> usize {
        self.raw.as_ref().map_or(0, Bytes::len)
    }

    /// Number of TLVs.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// The TLVs in wire order.
    pub fn iter(&self) -> TlvIter<'_> {
        TlvIter {
            rest: self.as_bytes(),
        }
    }

    /// The value of the first TLV with this tag.
    pub fn get(&self, tag: TlvTag) -> Option<&[u8]> {
        self.iter().find(|t| t.tag == tag).map(|t| t.value)
    }

    /// The value of the first TLV with this tag as a zero-copy slice of the frame.
    pub fn get_bytes(&self, tag: TlvTag) -> Option<Bytes> {
        let raw = self.raw.as_ref()?;
        let v = self.get(tag)?;
        let start = v.as_ptr() as usize - raw.as_ptr() as usize;
        Some(raw.slice(start..start + v.len()))
    }

    /// The values of every TLV with this tag, in order (for repeatable tags such
    /// as `callback_num` and `broadcast_area_identifier`).
    pub fn get_all(&self, tag: TlvTag) -> impl Iterator<Item = &[u8]> + '_ {
        self.iter().filter(move |t| t.tag == tag).map(|t| t.value)
    }

    /// Whether a TLV with this tag is present.
    pub fn contains(&self, tag: TlvTag) -> bool {
        self.get(tag).is_some()
    }

    /// An integer TLV read by its actual length (1–4 octets, big-endian).
    pub fn get_int(&self, tag: TlvTag) -> Option<u32> {
        let v = self.get(tag)?;
        if v.is_empty() || v.len() > 4 {
            return None;
        }
        Some(v.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
    }

    /// An integer TLV whose length is within its tag's accepted range.
    fn get_known_int(&self, tag: TlvTag) -> Option<u32> {
        let info = tag.info()?;
        let len = self.get(tag)?.len();
        if len < usize::from(info.min_len) || len > usize::from(info.max_len) {
            return None;
        }
        self.get_int(tag)
    }

    /// A text TLV (C-string or time) without its NUL terminator, if any.
    pub fn get_text(&self, tag: TlvTag) -> Option<&[u8]> {
        let v = self.get(tag)?;
        Some(match v.split_last() {
            Some((0, head)) => head,
            _ => v,
        })
    }

    /// Appends a TLV. Use this for repeatable tags; [`Tlvs::set`] replaces.
    ///
    /// # Panics
    /// Never; a value longer than 65535 octets is refused with an error.
    pub fn push(&mut self, tag: TlvTag, value: &[u8]) -> Result<(), crate::pdu::EncodeError> {
        let len = u16::try_from(value.len()).map_err(|_| crate::pdu::EncodeError::TlvTooLong {
            tag,
            len: value.len(),
        })?;
        let mut out = Vec::with_capacity(self.wire_len() + 4 + value.len());
        out.extend_from_slice(self.as_bytes());
        out.put_u16(tag.0);
        out.put_u16(len);
        out.extend_from_slice(value);
        self.raw = Some(Bytes::from(out));
        Ok(())
    }

    /// Removes every TLV with this tag.
    pub fn remove(&mut self, tag: TlvTag) {
        if !self.contains(tag) {
            return;
        }
        let mut out = Vec::with_capacity(self.wire_len());
        for t in self.iter().filter(|t| t.tag != tag) {
            out.put_u16(t.tag.0);
            out.put_u16(t.value.len() as u16);
            out.extend_from_slice(t.value);
        }
        self.raw = Self::wrap(Bytes::from(out));
    }

    /// Replaces every TLV with this tag by one with this value.
    pub fn set(&mut self, tag: TlvTag, value: &[u8]) -> Result<(), crate::pdu::EncodeError> {
        self.remove(tag);
        self.push(tag, value)
    }

    /// Adds `congestion_state` (clamped to 100) to a section without one:
    /// an empty section takes a static copy (no allocation on the hot path).
    pub(crate) fn add_congestion_state(&mut self, v: u8) {
        static ENCODED: [[u8; 5]; 101] = {
            let mut t = [[0u8; 5]; 101];
            let mut i = 0;
            while i < 101 {
                t[i] = [0x04, 0x28, 0x00, 0x01, i as u8];
                i += 1;
            }
            t
        };
        let tlv = &ENCODED[usize::from(v.min(100))];
        self.raw = Some(match &self.raw {
            None => Bytes::from_static(tlv),
            Some(raw) => {
                let mut out = Vec::with_capacity(raw.len() + tlv.len());
                out.extend_from_slice(raw);
                out.extend_from_slice(tlv);
                Bytes::from(out)
            }
        });
    }

    /// Sets a 1-octet integer TLV.
    pub fn set_u8(&mut self, tag: TlvTag, v: u8) {
        self.set(tag, &[v]).expect("1 octet fits");
    }

    /// Sets a 2-octet integer TLV.
    pub fn set_u16(&mut self, tag: TlvTag, v: u16) {
        self.set(tag, &v.to_be_bytes()).expect("2 octets fit");
    }

    /// Sets a 4-octet integer TLV.
    pub fn set_u32(&mut self, tag: TlvTag, v: u32) {
        self.set(tag, &v.to_be_bytes()).expect("4 octets fit");
    }

    /// Sets a C-string TLV (the NUL is added).
    pub fn set_text(&mut self, tag: TlvTag, text: &[u8]) -> Result<(), crate::pdu::EncodeError> {
        let mut v = Vec::with_capacity(text.len() + 1);
        v.extend_from_slice(text);
        v.push(0);
        self.set(tag, &v)
    }
}

/// Typed getters for the integer TLVs: `None` when absent or malformed.
macro_rules! int_getters {
    ($( $getter:ident: $ty:ty = $tag:ident; )*) => {
        impl Tlvs {
            $(
                #[doc = concat!("`", stringify!($getter), "` (", stringify!($ty), "), read by its actual length.")]
                pub fn $getter(&self) -> Option<$ty> {
                    self.get_known_int(TlvTag::$tag).and_then(|v| <$ty>::try_from(v).ok())
                }
            )*
        }
    };
}

int_getters! {
    dest_addr_subunit: u8 = DEST_ADDR_SUBUNIT;
    dest_network_type: u8 = DEST_NETWORK_TYPE;
    dest_bearer_type: u8 = DEST_BEARER_TYPE;
    dest_telematics_id: u16 = DEST_TELEMATICS_ID;
    source_addr_subunit: u8 = SOURCE_ADDR_SUBUNIT;
    source_network_type: u8 = SOURCE_NETWORK_TYPE;
    source_bearer_type: u8 = SOURCE_BEARER_TYPE;
    source_telematics_id: u16 = SOURCE_TELEMATICS_ID;
    qos_time_to_live: u32 = QOS_TIME_TO_LIVE;
    payload_type: u8 = PAYLOAD_TYPE;
    ms_msg_wait_facilities: u8 = MS_MSG_WAIT_FACILITIES;
    privacy_indicator: u8 = PRIVACY_INDICATOR;
    user_message_reference: u16 = USER_MESSAGE_REFERENCE;
    user_response_code: u8 = USER_RESPONSE_CODE;
    source_port: u16 = SOURCE_PORT;
    destination_port: u16 = DESTINATION_PORT;
    sar_msg_ref_num: u16 = SAR_MSG_REF_NUM;
    language_indicator: u8 = LANGUAGE_INDICATOR;
    sar_total_segments: u8 = SAR_TOTAL_SEGMENTS;
    sar_segment_seqnum: u8 = SAR_SEGMENT_SEQNUM;
    sc_interface_version: u8 = SC_INTERFACE_VERSION;
    callback_num_pres_ind: u8 = CALLBACK_NUM_PRES_IND;
    number_of_messages: u8 = NUMBER_OF_MESSAGES;
    dpf_result: u8 = DPF_RESULT;
    set_dpf: u8 = SET_DPF;
    ms_availability_status: u8 = MS_AVAILABILITY_STATUS;
    delivery_failure_reason: u8 = DELIVERY_FAILURE_REASON;
    more_messages_to_send: u8 = MORE_MESSAGES_TO_SEND;
    message_state: u8 = MESSAGE_STATE;
    congestion_state: u8 = CONGESTION_STATE;
    ussd_service_op: u8 = USSD_SERVICE_OP;
    broadcast_channel_indicator: u8 = BROADCAST_CHANNEL_INDICATOR;
    broadcast_message_class: u8 = BROADCAST_MESSAGE_CLASS;
    broadcast_rep_num: u16 = BROADCAST_REP_NUM;
    broadcast_error_status: u32 = BROADCAST_ERROR_STATUS;
    broadcast_area_success: u8 = BROADCAST_AREA_SUCCESS;
    dest_addr_np_resolution: u8 = DEST_ADDR_NP_RESOLUTION;
    display_time: u8 = DISPLAY_TIME;
    sms_signal: u16 = SMS_SIGNAL;
    its_reply_type: u8 = ITS_REPLY_TYPE;
}

/// Typed getters for the text and octet TLVs.
macro_rules! slice_getters {
    ($( $getter:ident = $tag:ident, $how:ident; )*) => {
        impl Tlvs {
            $(
                #[doc = concat!("`", stringify!($getter), "`", slice_getters!(@doc $how))]
                pub fn $getter(&self) -> Option<&[u8]> {
                    slice_getters!(@get self, $tag, $how)
                }
            )*
        }
    };
    (@doc text) => { ", without its NUL terminator." };
    (@doc octets) => { ", raw value octets." };
    (@get $s:ident, $tag:ident, text) => { $s.get_text(TlvTag::$tag) };
    (@get $s:ident, $tag:ident, octets) => { $s.get(TlvTag::$tag) };
}

slice_getters! {
    additional_status_info_text = ADDITIONAL_STATUS_INFO_TEXT, text;
    receipted_message_id = RECEIPTED_MESSAGE_ID, text;
    source_subaddress = SOURCE_SUBADDRESS, octets;
    dest_subaddress = DEST_SUBADDRESS, octets;
    callback_num_atag = CALLBACK_NUM_ATAG, octets;
    callback_num = CALLBACK_NUM, octets;
    message_payload = MESSAGE_PAYLOAD, octets;
    broadcast_content_type_info = BROADCAST_CONTENT_TYPE_INFO, octets;
    broadcast_area_identifier = BROADCAST_AREA_IDENTIFIER, octets;
    broadcast_end_time = BROADCAST_END_TIME, text;
    broadcast_service_group = BROADCAST_SERVICE_GROUP, octets;
    billing_identification = BILLING_IDENTIFICATION, octets;
    source_network_id = SOURCE_NETWORK_ID, text;
    dest_network_id = DEST_NETWORK_ID, text;
    source_node_id = SOURCE_NODE_ID, octets;
    dest_node_id = DEST_NODE_ID, octets;
    dest_addr_np_information = DEST_ADDR_NP_INFORMATION, octets;
    dest_addr_np_country = DEST_ADDR_NP_COUNTRY, octets;
    ms_validity = MS_VALIDITY, octets;
}

/// `network_error_code` (0x0423): which network reported the error, and its code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NetworkErrorCode {
    /// 1 ANSI-136 access denied, 2 IS-95 access denied, 3 GSM, 4 ANSI-136 cause,
    /// 5 IS-95 cause, 6 ANSI-41 error, 7 SMPP error, 8 MC-specific.
    pub network_type: u8,
    /// The error code.
    pub error_code: u16,
}

/// `broadcast_content_type` (0x0601).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BroadcastContentType {
    /// 0 generic, 1 GSM, 2 TDMA, 3 CDMA.
    pub network_type: u8,
    /// Content type, e.g. 0x0001 emergency broadcasts.
    pub content_type: u16,
}

/// `broadcast_frequency_interval` (0x0605).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BroadcastFrequencyInterval {
    /// 0x00 as often as possible, 0x08 seconds, 0x09 minutes, 0x0A hours,
    /// 0x0B days, 0x0C weeks, 0x0D months, 0x0E years.
    pub unit: u8,
    /// Number of units.
    pub count: u16,
}

/// `its_session_info` (0x1383).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ItsSessionInfo {
    /// Session number.
    pub session_number: u8,
    /// Sequence number within the session (7 bits).
    pub sequence_number: u8,
    /// This message ends the session.
    pub end_of_session: bool,
}

impl NetworkErrorCode {
    /// Parses the 3-octet TLV value; `None` for another length.
    pub fn from_bytes(v: &[u8]) -> Option<Self> {
        let (network_type, error_code) = three(v)?;
        Some(NetworkErrorCode {
            network_type,
            error_code,
        })
    }

    /// The 3-octet TLV value.
    pub fn to_bytes(self) -> [u8; 3] {
        let [hi, lo] = self.error_code.to_be_bytes();
        [self.network_type, hi, lo]
    }
}

fn three(v: &[u8]) -> Option<(u8, u16)> {
    match v {
        [a, b, c] => Some((*a, u16::from_be_bytes([*b, *c]))),
        _ => None,
    }
}

impl Tlvs {
    /// The SAR concatenation of a part, when all three SAR TLVs are present:
    /// `(sar_msg_ref_num, sar_total_segments, sar_segment_seqnum)`.
    pub fn sar(&self) -> Option<(u16, u8, u8)> {
        Some((
            self.sar_msg_ref_num()?,
            self.sar_total_segments()?,
            self.sar_segment_seqnum()?,
        ))
    }

    /// `network_error_code`, decoded.
    pub fn network_error_code(&self) -> Option<NetworkErrorCode> {
        let (network_type, error_code) = three(self.get(TlvTag::NETWORK_ERROR_CODE)?)?;
        Some(NetworkErrorCode {
            network_type,
            error_code,
        })
    }

    /// Sets `network_error_code`.
    pub fn set_network_error_code(&mut self, v: NetworkErrorCode) {
        let [b, c] = v.error_code.to_be_bytes();
        self.set(TlvTag::NETWORK_ERROR_CODE, &[v.network_type, b, c])
            .expect("3 octets fit");
    }

    /// `broadcast_content_type`, decoded.
    pub fn broadcast_content_type(&self) -> Option<BroadcastContentType> {
        let (network_type, content_type) = three(self.get(TlvTag::BROADCAST_CONTENT_TYPE)?)?;
        Some(BroadcastContentType {
            network_type,
            content_type,
        })
    }

    /// Sets `broadcast_content_type`.
    pub fn set_broadcast_content_type(&mut self, v: BroadcastContentType) {
        let [b, c] = v.content_type.to_be_bytes();
        self.set(TlvTag::BROADCAST_CONTENT_TYPE, &[v.network_type, b, c])
            .expect("3 octets fit");
    }

    /// `broadcast_frequency_interval`, decoded.
    pub fn broadcast_frequency_interval(&self) -> Option<BroadcastFrequencyInterval> {
        let (unit, count) = three(self.get(TlvTag::BROADCAST_FREQUENCY_INTERVAL)?)?;
        Some(BroadcastFrequencyInterval { unit, count })
    }

    /// Sets `broadcast_frequency_interval`.
    pub fn set_broadcast_frequency_interval(&mut self, v: BroadcastFrequencyInterval) {
        let [b, c] = v.count.to_be_bytes();
        self.set(TlvTag::BROADCAST_FREQUENCY_INTERVAL, &[v.unit, b, c])
            .expect("3 octets fit");
    }

    /// `its_session_info`, decoded.
    pub fn its_session_info(&self) -> Option<ItsSessionInfo> {
        match self.get(TlvTag::ITS_SESSION_INFO)? {
            [s, q] => Some(ItsSessionInfo {
                session_number: *s,
                sequence_number: q >> 1,
                end_of_session: q & 1 == 1,
            }),
            _ => None,
        }
    }

    /// `alert_on_message_delivery`: `Some(priority)` when present (0 for the
    /// 3.4 empty form, meaning "use the mobile default").
    pub fn alert_on_message_delivery(&self) -> Option<u8> {
        self.get(TlvTag::ALERT_ON_MESSAGE_DELIVERY)
            .map(|v| v.first().copied().unwrap_or(0))
    }
}

impl fmt::Debug for Tlvs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        for t in self.iter() {
            l.entry(&format_args!("{}={:02X?}", t.tag, t.value));
        }
        l.finish()
    }
}

/// Iterator over a checked TLV section.
#[derive(Clone, Debug)]
pub struct TlvIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Tlv<'a>;

    fn next(&mut self) -> Option<Tlv<'a>> {
        // The section was checked when built, but stay total on any input.
        if self.rest.len() < 4 {
            return None;
        }
        let tag = u16::from_be_bytes([self.rest[0], self.rest[1]]);
        let len = usize::from(u16::from_be_bytes([self.rest[2], self.rest[3]]));
        let end = 4 + len;
        if end > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let value = &self.rest[4..end];
        self.rest = &self.rest[end..];
        Some(Tlv {
            tag: TlvTag(tag),
            value,
        })
    }
}

impl<'a> IntoIterator for &'a Tlvs {
    type Item = Tlv<'a>;
    type IntoIter = TlvIter<'a>;
    fn into_iter(self) -> TlvIter<'a> {
        self.iter()
    }
}

/// Checks a TLV section: framing always, value rules of known tags when `strict`.
pub(crate) fn check(mut rest: &[u8], strict: bool) -> Result<(), TlvProblem> {
    let total = rest.len();
    while !rest.is_empty() {
        let offset = total - rest.len();
        if rest.len() < 4 {
            return Err(TlvProblem::Stream { offset });
        }
        let tag = TlvTag(u16::from_be_bytes([rest[0], rest[1]]));
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        if 4 + len > rest.len() {
            return Err(TlvProblem::Stream { offset });
        }
        if strict {
            if let Some(info) = tag.info() {
                if len < usize::from(info.min_len) || len > usize::from(info.max_len) {
                    return Err(TlvProblem::Length { tag, len, offset });
                }
                if info.kind == TlvKind::CString && rest[3 + len] != 0 {
                    return Err(TlvProblem::Value { tag, offset });
                }
            }
        }
        rest = &rest[4 + len..];
    }
    Ok(())
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Tlvs {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut t = Tlvs::new();
        let n = u.int_in_range(0..=3)?;
        for _ in 0..n {
            // Unknown tags only: they carry any value without breaking strict rules.
            let tag = TlvTag(u.int_in_range(0x2000..=0x3FFF)?);
            let len = u.int_in_range(0..=8)?;
            let v: Vec<u8> = (0..len)
                .map(|_| u.arbitrary())
                .collect::<arbitrary::Result<_>>()?;
            t.push(tag, &v)
                .map_err(|_| arbitrary::Error::IncorrectFormat)?;
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty section is one value however it was made, so that equal
    /// sections compare and hash equal (it is kept as `None` inside).
    #[test]
    fn every_empty_section_is_the_same_value() {
        use std::hash::{BuildHasher, RandomState};
        let hasher = RandomState::new();
        let mut emptied = Tlvs::new();
        emptied.set_u8(TlvTag::MESSAGE_STATE, 2);
        assert!(!emptied.is_empty());
        emptied.remove(TlvTag::MESSAGE_STATE);
        let empties = [
            Tlvs::new(),
            Tlvs::default(),
            Tlvs::from_bytes(Bytes::new()).unwrap(),
            Tlvs::from_checked(Bytes::from_static(b"")),
            emptied,
        ];
        for t in &empties {
            assert!(t.is_empty());
            assert_eq!(t.wire_len(), 0);
            assert_eq!(t.as_bytes(), b"");
            assert_eq!(t.iter().count(), 0);
            assert_eq!(t, &Tlvs::new());
            assert_eq!(hasher.hash_one(t), hasher.hash_one(Tlvs::new()));
        }
        // And a non-empty one built two ways is one value too.
        let mut built = Tlvs::new();
        built.set_u8(TlvTag::MESSAGE_STATE, 2);
        let parsed = Tlvs::from_bytes(Bytes::from_static(&[0x04, 0x27, 0, 1, 2])).unwrap();
        assert_eq!(built, parsed);
        assert_eq!(hasher.hash_one(&built), hasher.hash_one(&parsed));
        assert_eq!(
            parsed.get_bytes(TlvTag::MESSAGE_STATE).as_deref(),
            Some(&[2u8][..])
        );
        assert_eq!(Tlvs::new().get_bytes(TlvTag::MESSAGE_STATE), None);
    }

    #[test]
    fn table_has_every_tag_once() {
        let mut seen = std::collections::HashSet::new();
        for i in TlvTag::ALL {
            assert!(seen.insert(i.tag), "duplicate {:?}", i.tag);
            assert!(i.min_len <= i.max_len);
            assert_eq!(TlvTag::from_name(i.name), Some(i.tag));
        }
        assert_eq!(TlvTag::ALL.len(), 64);
        assert_eq!(
            TlvTag::from_name("dest_port"),
            Some(TlvTag::DESTINATION_PORT)
        );
        assert_eq!(TlvTag(0x1401).to_string(), "0x1401");
    }

    #[test]
    fn push_get_remove_keep_order() {
        let mut t = Tlvs::new();
        t.push(TlvTag(0x1400), b"vendor").unwrap();
        t.set_u16(TlvTag::SAR_MSG_REF_NUM, 0x1234);
        t.push(TlvTag::CALLBACK_NUM, b"\x01\x01\x0112").unwrap();
        t.push(TlvTag::CALLBACK_NUM, b"\x01\x01\x0134").unwrap();
        assert_eq!(t.sar_msg_ref_num(), Some(0x1234));
        assert_eq!(t.sar(), None, "one SAR TLV is not a part");
        assert_eq!(t.get_all(TlvTag::CALLBACK_NUM).count(), 2);
        let order: Vec<u16> = t.iter().map(|x| x.tag.0).collect();
        assert_eq!(order, [0x1400, 0x020C, 0x0381, 0x0381]);
        t.set_u16(TlvTag::SAR_MSG_REF_NUM, 7);
        assert_eq!(t.sar_msg_ref_num(), Some(7));
        assert_eq!(t.len(), 4);
        let mut sar = t.clone();
        sar.set_u8(TlvTag::SAR_TOTAL_SEGMENTS, 3);
        assert_eq!(sar.sar(), None);
        sar.set_u8(TlvTag::SAR_SEGMENT_SEQNUM, 2);
        assert_eq!(sar.sar(), Some((7, 3, 2)));
        t.remove(TlvTag::CALLBACK_NUM);
        assert_eq!(t.len(), 2);
        assert_eq!(&t.as_bytes()[..4], &[0x14, 0x00, 0x00, 0x06]);
    }

    #[test]
    fn integers_read_by_actual_length() {
        let t = Tlvs::from_bytes(Bytes::from_static(&[
            0x06, 0x04, 0x00, 0x01, 0x05, 0x00, 0x10, 0x00, 0x02, 0x01, 0x02,
        ]))
        .unwrap();
        assert_eq!(t.broadcast_rep_num(), Some(5));
        assert_eq!(t.source_telematics_id(), Some(0x0102));
    }

    #[test]
    fn strict_check() {
        assert!(matches!(
            check(&[0, 1, 0], true),
            Err(TlvProblem::Stream { offset: 0 })
        ));
        assert!(matches!(
            check(&[0x02, 0x0C, 0, 3, 1, 2, 3], true),
            Err(TlvProblem::Length { .. })
        ));
        assert!(check(&[0x02, 0x0C, 0, 3, 1, 2, 3], false).is_ok());
        assert!(matches!(
            check(&[0x00, 0x1E, 0, 2, b'a', b'b'], true),
            Err(TlvProblem::Value { .. })
        ));
        assert!(check(&[0x00, 0x1E, 0, 2, b'a', 0], true).is_ok());
        assert!(check(&[0x14, 0x00, 0, 0], true).is_ok());
        assert!(matches!(
            check(&[0x14, 0x00, 0, 9, 1], true),
            Err(TlvProblem::Stream { .. })
        ));
    }
}
