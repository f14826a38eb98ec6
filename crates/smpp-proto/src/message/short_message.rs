//! Where messages meet PDUs: the [`ShortMessage`] builder that turns a text
//! into ready-to-send `submit_sm` bodies, and readers that turn received
//! `deliver_sm`/`data_sm` bodies into receipts and reassembly parts.

use bytes::Bytes;

use super::coding::{decode_text, DataCoding, DecodeOptions};
use super::concat::{
    segment_binary, segment_text, segment_text_with, CharsetSet, ConcatMode, ReferenceCounter,
    Segment, SegmentError, SegmentationPolicy, TextEncoding,
};
use super::reassembly::IncomingPart;
use super::receipt::{DeliveryReceipt, ReceiptTlvs};
use super::udh::UdhError;
use crate::pdu::{Body, COctetString, DataSm, DeliverSm, EncodeError, SubmitSm, TlvTag, Tlvs};

/// An SME address: TON, NPI and digits (or alphanumeric text).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Address {
    /// Type of number (1 international, 5 alphanumeric, ...).
    pub ton: u8,
    /// Numbering plan (1 ISDN/E.164, 0 unknown, ...).
    pub npi: u8,
    /// The address itself.
    pub addr: COctetString,
}

impl Address {
    /// An international E.164 number: TON 1, NPI 1 (a leading `+` is dropped).
    pub fn international(digits: &str) -> Address {
        Address {
            ton: 1,
            npi: 1,
            addr: COctetString::copy_from_str(digits.trim_start_matches('+')),
        }
    }

    /// A national number: TON 2, NPI 1.
    pub fn national(digits: &str) -> Address {
        Address {
            ton: 2,
            npi: 1,
            addr: COctetString::copy_from_str(digits),
        }
    }

    /// A network-specific short code: TON 3, NPI 0.
    pub fn short_code(digits: &str) -> Address {
        Address {
            ton: 3,
            npi: 0,
            addr: COctetString::copy_from_str(digits),
        }
    }

    /// An alphanumeric sender id: TON 5, NPI 0 (networks usually allow 11 characters).
    pub fn alphanumeric(text: &str) -> Address {
        Address {
            ton: 5,
            npi: 0,
            addr: COctetString::copy_from_str(text),
        }
    }

    /// Guesses the TON/NPI the way most ESMEs configure them: `+` or 7+ digits is
    /// international, up to 6 digits a short code, anything else alphanumeric.
    pub fn guess(s: &str) -> Address {
        let digits = s.strip_prefix('+').unwrap_or(s);
        let all_digits = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        match (all_digits, s.starts_with('+') || digits.len() > 6) {
            (true, true) => Address::international(digits),
            (true, false) => Address::short_code(digits),
            _ => Address::alphanumeric(s),
        }
    }
}

impl From<&str> for Address {
    fn from(s: &str) -> Address {
        Address::guess(s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Content {
    /// A text and the coding forced on it (`None`: the automatic choice).
    Text(String, Option<TextEncoding>),
    Binary(Bytes, DataCoding),
}

/// Why a [`ShortMessage`] could not be turned into PDUs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The text or data could not be encoded or split as asked.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// A field does not fit its PDU field (an address too long, ...).
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// A message as users think of it, built into one `submit_sm` per part.
///
/// ```
/// use smpp_proto::message::{ReferenceCounter, ShortMessage};
///
/// let mut refs = ReferenceCounter::new(1);
/// let parts = ShortMessage::text("Your code is 1234")
///     .from("Acme")
///     .to("+447700900456")
///     .request_receipt()
///     .build(&mut refs)
///     .unwrap();
/// assert_eq!(parts.len(), 1);
/// assert_eq!(parts[0].destination_addr, "447700900456");
/// assert_eq!((parts[0].source_addr_ton, parts[0].dest_addr_ton), (5, 1));
/// assert_eq!(parts[0].registered_delivery, 1);
///
/// // 200 GSM characters: two parts with 8-bit concatenation UDHs.
/// let parts = ShortMessage::text("x".repeat(200)).to("447700900456").build(&mut refs).unwrap();
/// assert_eq!(parts.len(), 2);
/// assert!(parts.iter().all(|p| p.esm_class & 0x40 != 0));
/// ```
#[derive(Clone, Debug)]
pub struct ShortMessage {
    content: Content,
    source: Address,
    destination: Address,
    service_type: COctetString,
    esm_class: u8,
    protocol_id: u8,
    priority_flag: u8,
    schedule_delivery_time: COctetString,
    validity_period: COctetString,
    registered_delivery: u8,
    policy: SegmentationPolicy,
    tlvs: Tlvs,
}

impl ShortMessage {
    fn with(content: Content) -> Self {
        ShortMessage {
            content,
            source: Address::default(),
            destination: Address::default(),
            service_type: COctetString::new(),
            esm_class: 0,
            protocol_id: 0,
            priority_flag: 0,
            schedule_delivery_time: COctetString::new(),
            validity_period: COctetString::new(),
            registered_delivery: 0,
            policy: SegmentationPolicy::default(),
            tlvs: Tlvs::new(),
        }
    }

    /// A text message: the cheapest coding that represents it is chosen
    /// (GSM 7-bit, national shift tables if the policy allows, the character
    /// sets the SMSC takes ([`charsets`](Self::charsets)), else UCS-2).
    pub fn text(text: impl Into<String>) -> Self {
        Self::with(Content::Text(text.into(), None))
    }

    /// A text message in the coding given, whatever the automatic choice would
    /// be: GSM 7-bit ([`TextEncoding::GSM7`], or with national tables), a
    /// single-octet set ([`TextEncoding::LATIN1`], [`CYRILLIC`](TextEncoding::CYRILLIC),
    /// [`HEBREW`](TextEncoding::HEBREW), [`ASCII`](TextEncoding::ASCII)) or
    /// [`TextEncoding::UCS2`]. Long texts are split on character boundaries
    /// as usual. Fails at once, naming the first character the coding cannot
    /// represent and its position.
    ///
    /// ```
    /// use smpp_proto::message::{ReferenceCounter, ShortMessage, TextEncoding};
    ///
    /// let mut refs = ReferenceCounter::new(1);
    /// // GSM 7-bit would do; UCS-2 is forced.
    /// let parts = ShortMessage::text_in("hello", TextEncoding::UCS2)
    ///     .unwrap()
    ///     .build(&mut refs)
    ///     .unwrap();
    /// assert_eq!(parts[0].data_coding, 0x08);
    /// assert_eq!(&parts[0].short_message[..4], b"\0h\0e");
    ///
    /// let err = ShortMessage::text_in("crêpe €", TextEncoding::LATIN1).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "character '€' at char index 6 is not representable in Latin1"
    /// );
    /// ```
    pub fn text_in(text: impl Into<String>, coding: TextEncoding) -> Result<Self, BuildError> {
        let text = text.into();
        coding.encode(&text)?;
        Ok(Self::with(Content::Text(text, Some(coding))))
    }

    /// Forces the coding of a text message (see [`text_in`](Self::text_in),
    /// which checks the text at once; here a text the coding cannot represent
    /// fails in [`build`](Self::build)). No effect on binary content.
    #[must_use]
    pub fn coding(mut self, coding: TextEncoding) -> Self {
        if let Content::Text(_, forced) = &mut self.content {
            *forced = Some(coding);
        }
        self
    }

    /// The single-octet character sets the SMSC takes, for the automatic
    /// coding choice (see [`CharsetSet`]; empty by default).
    #[must_use]
    pub fn charsets(mut self, charsets: CharsetSet) -> Self {
        self.policy.charsets = charsets;
        self
    }

    /// Binary user data sent with `data_coding` as given (e.g. 0x04 8-bit).
    pub fn binary(data: impl Into<Bytes>, data_coding: DataCoding) -> Self {
        Self::with(Content::Binary(data.into(), data_coding))
    }

    /// The originator (an empty source lets the MC fill in its default).
    #[must_use]
    pub fn from(mut self, source: impl Into<Address>) -> Self {
        self.source = source.into();
        self
    }

    /// The recipient.
    #[must_use]
    pub fn to(mut self, destination: impl Into<Address>) -> Self {
        self.destination = destination.into();
        self
    }

    /// Asks for an MC delivery receipt on the final outcome (registered_delivery bit 0).
    #[must_use]
    pub fn request_receipt(mut self) -> Self {
        self.registered_delivery = (self.registered_delivery & !0x03) | 0x01;
        self
    }

    /// Sets registered_delivery as a whole.
    #[must_use]
    pub fn registered_delivery(mut self, value: u8) -> Self {
        self.registered_delivery = value;
        self
    }

    /// Sets service_type ("" default, "CMT", "WAP", "USSD", ...).
    #[must_use]
    pub fn service_type(mut self, service_type: &str) -> Self {
        self.service_type = COctetString::copy_from_str(service_type);
        self
    }

    /// Sets the esm_class bits (UDHI is managed by the builder).
    #[must_use]
    pub fn esm_class(mut self, esm_class: u8) -> Self {
        self.esm_class = esm_class & !0x40;
        self
    }

    /// Sets protocol_id.
    #[must_use]
    pub fn protocol_id(mut self, protocol_id: u8) -> Self {
        self.protocol_id = protocol_id;
        self
    }

    /// Sets priority_flag.
    #[must_use]
    pub fn priority(mut self, priority_flag: u8) -> Self {
        self.priority_flag = priority_flag;
        self
    }

    /// Sets schedule_delivery_time (16-character SMPP time, absolute or relative).
    #[must_use]
    pub fn schedule(mut self, time: &str) -> Self {
        self.schedule_delivery_time = COctetString::copy_from_str(time);
        self
    }

    /// Sets validity_period (16-character SMPP time, absolute or relative).
    #[must_use]
    pub fn validity(mut self, time: &str) -> Self {
        self.validity_period = COctetString::copy_from_str(time);
        self
    }

    /// How the text is coded and split.
    #[must_use]
    pub fn policy(mut self, policy: SegmentationPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How long messages are split (UDH 8/16-bit reference, SAR TLVs, or one `message_payload`).
    #[must_use]
    pub fn concat(mut self, mode: ConcatMode) -> Self {
        self.policy.mode = mode;
        self
    }

    /// The v5.0 `billing_identification` TLV, in every part.
    pub fn billing(
        mut self,
        billing: &super::broadcast::BillingIdentification,
    ) -> Result<Self, EncodeError> {
        billing.set_in(&mut self.tlvs)?;
        Ok(self)
    }

    /// Adds a TLV to every part.
    pub fn tlv(mut self, tag: TlvTag, value: &[u8]) -> Result<Self, EncodeError> {
        self.tlvs.push(tag, value)?;
        Ok(self)
    }

    /// The `submit_sm` bodies, one per part, in order. References for
    /// concatenation come from `refs` (keep one counter per session).
    pub fn build(&self, refs: &mut ReferenceCounter) -> Result<Vec<SubmitSm>, BuildError> {
        let segments = match &self.content {
            Content::Text(text, None) => segment_text(text, &self.policy, refs)?.segments,
            Content::Text(text, Some(coding)) => {
                segment_text_with(text, *coding, &self.policy, refs)?.segments
            }
            Content::Binary(data, dc) => segment_binary(data, *dc, &self.policy, refs)?,
        };
        segments.iter().map(|s| self.part(s)).collect()
    }

    fn part(&self, segment: &Segment) -> Result<SubmitSm, BuildError> {
        let mut tlvs = self.tlvs.clone();
        let short_message = if self.policy.mode == ConcatMode::Payload {
            tlvs.set(TlvTag::MESSAGE_PAYLOAD, &segment.short_message())?;
            Bytes::new()
        } else {
            segment.short_message()
        };
        if let Some(sar) = &segment.sar {
            tlvs.set_u16(TlvTag::SAR_MSG_REF_NUM, sar.reference);
            tlvs.set_u8(TlvTag::SAR_TOTAL_SEGMENTS, sar.total);
            tlvs.set_u8(TlvTag::SAR_SEGMENT_SEQNUM, sar.seq);
        }
        if short_message.len() > 255 {
            return Err(EncodeError::ShortMessageTooLong {
                len: short_message.len(),
            }
            .into());
        }
        Ok(SubmitSm {
            service_type: self.service_type.clone(),
            source_addr_ton: self.source.ton,
            source_addr_npi: self.source.npi,
            source_addr: self.source.addr.clone(),
            dest_addr_ton: self.destination.ton,
            dest_addr_npi: self.destination.npi,
            destination_addr: self.destination.addr.clone(),
            esm_class: segment.esm_class(self.esm_class),
            protocol_id: self.protocol_id,
            priority_flag: self.priority_flag,
            schedule_delivery_time: self.schedule_delivery_time.clone(),
            validity_period: self.validity_period.clone(),
            registered_delivery: self.registered_delivery,
            replace_if_present_flag: 0,
            data_coding: segment.data_coding.0,
            sm_default_msg_id: 0,
            short_message,
            tlvs,
        })
    }
}

fn receipt_tlvs(tlvs: &Tlvs) -> ReceiptTlvs<'_> {
    ReceiptTlvs {
        receipted_message_id: tlvs
            .receipted_message_id()
            .and_then(|v| core::str::from_utf8(v).ok()),
        message_state: tlvs.message_state(),
        network_error_code: tlvs
            .get(TlvTag::NETWORK_ERROR_CODE)
            .and_then(|v| v.try_into().ok()),
    }
}

fn receipt_from(
    esm_class: u8,
    data_coding: u8,
    user_data: &[u8],
    tlvs: &Tlvs,
    options: &DecodeOptions,
) -> Option<DeliveryReceipt> {
    // Message type bits 5-2: 0001 MC delivery receipt, 1000 intermediate notification.
    if !crate::pdu::EsmClass::from(esm_class).is_receipt() {
        return None;
    }
    let from_text = decode_text(DataCoding(data_coding), user_data, options)
        .ok()
        .and_then(|t| DeliveryReceipt::parse(&t).ok());
    let t = receipt_tlvs(tlvs);
    match from_text {
        Some(mut r) => {
            r.merge_tlvs(&t);
            Some(r)
        }
        None => DeliveryReceipt::from_tlvs(&t),
    }
}

impl DeliveryReceipt {
    /// Reads the receipt carried by a `deliver_sm`: `None` unless esm_class marks an
    /// MC delivery receipt or intermediate notification. The text (in
    /// `short_message`, or `message_payload`, in whatever data_coding) is parsed
    /// tolerantly, and the `receipted_message_id` / `message_state` /
    /// `network_error_code` TLVs take precedence when present; a receipt with TLVs
    /// and no text is read from the TLVs alone.
    pub fn from_deliver_sm(sm: &SubmitSm, options: &DecodeOptions) -> Option<DeliveryReceipt> {
        receipt_from(
            sm.esm_class,
            sm.data_coding,
            sm.payload(),
            &sm.tlvs,
            options,
        )
    }

    /// Reads the receipt carried by a received request, whatever its operation:
    /// `deliver_sm` or `data_sm`; `None` for anything else.
    pub fn from_body(body: &crate::pdu::Body, options: &DecodeOptions) -> Option<DeliveryReceipt> {
        match body {
            crate::pdu::Body::DeliverSm(sm) => Self::from_deliver_sm(sm, options),
            crate::pdu::Body::DataSm(sm) => Self::from_data_sm(sm, options),
            _ => None,
        }
    }

    /// Reads the receipt carried by a `data_sm` (user data in `message_payload`).
    pub fn from_data_sm(sm: &DataSm, options: &DecodeOptions) -> Option<DeliveryReceipt> {
        receipt_from(
            sm.esm_class,
            sm.data_coding,
            sm.tlvs.message_payload().unwrap_or_default(),
            &sm.tlvs,
            options,
        )
    }
}

/// Longest address a `deliver_sm` (or `submit_sm`) carries: its
/// `source_addr` and `destination_addr` are C-Octet Strings of 21 octets.
/// A `data_sm` carries 64.
pub const DELIVER_SM_MAX_ADDRESS: usize = 20;

/// The operation an MC sends a delivery receipt (or an intermediate
/// notification) with.
///
/// A receipt goes as a `deliver_sm`, as every ESME expects, except for a
/// message that arrived as a `data_sm` (v3.4 and later) when either the ESME
/// speaks v5.0 (where `data_sm` is the symmetric operation both ways), or an
/// address of the receipt does not fit a `deliver_sm` (more than
/// [`DELIVER_SM_MAX_ADDRESS`] characters, which only a `data_sm` could have
/// brought): then as a `data_sm`, the text in `message_payload` with the
/// `receipted_message_id` and `message_state` TLVs. A v3.3 ESME has no
/// `data_sm`: always `deliver_sm`.
///
/// ```
/// use smpp_proto::message::short_message::ReceiptCarrier;
///
/// let long = "x".repeat(30);
/// assert_eq!(ReceiptCarrier::choose(false, 0x50, "447700900001", "1234"), ReceiptCarrier::DeliverSm);
/// assert_eq!(ReceiptCarrier::choose(true, 0x34, "447700900001", "1234"), ReceiptCarrier::DeliverSm);
/// assert_eq!(ReceiptCarrier::choose(true, 0x50, "447700900001", "1234"), ReceiptCarrier::DataSm);
/// assert_eq!(ReceiptCarrier::choose(true, 0x34, &long, "1234"), ReceiptCarrier::DataSm);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiptCarrier {
    /// `deliver_sm` with esm_class "MC delivery receipt" (or intermediate notification).
    DeliverSm,
    /// `data_sm`, same esm_class, the receipt text in `message_payload`.
    DataSm,
}

impl ReceiptCarrier {
    /// The carrier of a receipt for a message that arrived as a `data_sm` or
    /// not (`arrived_as_data_sm`), to an ESME bound with `interface_version`
    /// (the negotiated one), whose `source_addr` / `destination_addr` are
    /// `source` and `destination`.
    pub fn choose(
        arrived_as_data_sm: bool,
        interface_version: u8,
        source: &str,
        destination: &str,
    ) -> ReceiptCarrier {
        let too_long =
            source.len() > DELIVER_SM_MAX_ADDRESS || destination.len() > DELIVER_SM_MAX_ADDRESS;
        if arrived_as_data_sm
            && interface_version >= 0x34
            && (interface_version >= 0x50 || too_long)
        {
            ReceiptCarrier::DataSm
        } else {
            ReceiptCarrier::DeliverSm
        }
    }

    /// The request body carrying `receipt` (a receipt `deliver_sm`, as an MC
    /// builds it): the same PDU, or the `data_sm` of its message (its
    /// `short_message` moved into `message_payload`, the TLVs kept). Fails
    /// only when the text does not fit a `message_payload`.
    pub fn body(self, receipt: DeliverSm) -> Result<Body, EncodeError> {
        Ok(match self {
            ReceiptCarrier::DeliverSm => Body::DeliverSm(Box::new(receipt)),
            ReceiptCarrier::DataSm => Body::DataSm(Box::new(DataSm::from_submit_sm(receipt)?)),
        })
    }
}

impl IncomingPart {
    /// The part carried by a received `deliver_sm` (or `submit_sm` on an MC): UDH
    /// concatenation when UDHI is set, else the SAR TLVs; `message_payload`
    /// supersedes `short_message`.
    pub fn from_deliver_sm(sm: &SubmitSm) -> Result<IncomingPart, UdhError> {
        let user_data = match sm.tlvs.get_bytes(TlvTag::MESSAGE_PAYLOAD) {
            Some(p) => p,
            None => sm.short_message.clone(),
        };
        IncomingPart::from_user_data(
            sm.source_addr.to_string_lossy(),
            sm.destination_addr.to_string_lossy(),
            DataCoding(sm.data_coding),
            sm.esm_class,
            user_data,
            sm.tlvs.sar(),
        )
    }

    /// The part carried by a received `data_sm`: the user data is
    /// `message_payload` (empty without one); UDH concatenation when UDHI is
    /// set, else the SAR TLVs.
    pub fn from_data_sm(sm: &DataSm) -> Result<IncomingPart, UdhError> {
        IncomingPart::from_user_data(
            sm.source_addr.to_string_lossy(),
            sm.destination_addr.to_string_lossy(),
            DataCoding(sm.data_coding),
            sm.esm_class,
            sm.tlvs
                .get_bytes(TlvTag::MESSAGE_PAYLOAD)
                .unwrap_or_default(),
            sm.tlvs.sar(),
        )
    }
}

#[cfg(test)]
mod incoming_tests {
    use super::*;
    use crate::message::udh::ConcatKind;

    #[test]
    fn a_data_sm_part_comes_from_its_payload_and_sar_tlvs() {
        let mut sm = DataSm {
            source_addr: "447700900001".into(),
            destination_addr: "1234".into(),
            ..Default::default()
        };
        sm.tlvs.set(TlvTag::MESSAGE_PAYLOAD, b"hello").unwrap();
        let whole = IncomingPart::from_data_sm(&sm).unwrap();
        assert_eq!((&*whole.payload, whole.concat), (&b"hello"[..], None));
        assert_eq!(whole.source, "447700900001");
        sm.tlvs.set_u16(TlvTag::SAR_MSG_REF_NUM, 9);
        sm.tlvs.set_u8(TlvTag::SAR_TOTAL_SEGMENTS, 2);
        sm.tlvs.set_u8(TlvTag::SAR_SEGMENT_SEQNUM, 1);
        let part = IncomingPart::from_data_sm(&sm).unwrap();
        let concat = part.concat.unwrap();
        assert_eq!((concat.reference, concat.total, concat.seq), (9, 2, 1));
        assert_eq!(concat.kind, ConcatKind::Sar);
        // With UDHI the header's concatenation wins and is cut off the payload.
        sm.esm_class = 0x40;
        sm.tlvs
            .set(TlvTag::MESSAGE_PAYLOAD, &[5, 0, 3, 7, 3, 2, b'h', b'i'])
            .unwrap();
        let part = IncomingPart::from_data_sm(&sm).unwrap();
        let concat = part.concat.unwrap();
        assert_eq!((concat.reference, concat.total, concat.seq), (7, 3, 2));
        assert_eq!(&*part.payload, b"hi");
        assert!(IncomingPart::from_data_sm(&DataSm::default())
            .unwrap()
            .payload
            .is_empty());
    }
}
