//! WAP push over SMS: WDP port addressing (UDH IE 0x05, destination 2948, originator 9200),
//! a WSP push PDU, and WBXML Service Indication (WAP-167) / Service Loading (WAP-168)
//! documents; [`decode_push`] and [`WapPush::from_user_data`] read pushes back (SI, SL
//! and [MMS notifications](super::mms)).
//!
//! ```
//! use smpp_proto::message::wap::{decode_push, PushContent, ServiceIndication};
//!
//! let si = ServiceIndication {
//!     href: "https://example.com/offer".into(),
//!     text: "New offer".into(),
//!     ..Default::default()
//! };
//! let push = decode_push(&si.to_wsp_push(1)?)?;
//! assert_eq!(push.content_type, "application/vnd.wap.sic");
//! assert_eq!(push.content, PushContent::ServiceIndication(si));
//! # Ok::<(), smpp_proto::message::wap::WapPushError>(())
//! ```

use super::coding::DataCoding;
use super::concat::{segment_binary, ReferenceCounter, Segment, SegmentError, SegmentationPolicy};
use super::mms::MmsNotification;
use super::short_message::ShortMessage;
use super::udh::{InformationElement, UserDataHeader};

/// WAP push connectionless port (WSP), the WDP destination port.
pub const PORT_WAP_PUSH: u16 = 2948;
/// WAP connectionless session port, the WDP originator port.
pub const PORT_WAP_WSP: u16 = 9200;

/// WSP PDU type "Push".
const WSP_PUSH: u8 = 0x06;
/// WSP PDU type "ConfirmedPush".
const WSP_CONFIRMED_PUSH: u8 = 0x07;
/// Well-known content type `application/vnd.wap.mms-message` (0x3E), short-integer encoded.
pub(crate) const CONTENT_TYPE_MMS: u8 = 0xBE;
/// Well-known content type `application/vnd.wap.sic` (0x2E), short-integer encoded.
const CONTENT_TYPE_SIC: u8 = 0xAE;
/// Well-known content type `application/vnd.wap.slc` (0x30), short-integer encoded.
const CONTENT_TYPE_SLC: u8 = 0xB0;

// WBXML global tokens.
const WBXML_END: u8 = 0x01;
const WBXML_STR_I: u8 = 0x03;
const WBXML_OPAQUE: u8 = 0xC3;
const WBXML_VERSION_1_2: u8 = 0x02;
const WBXML_UTF8: u8 = 0x6A;
const PUBLIC_ID_SI: u8 = 0x05;
const PUBLIC_ID_SL: u8 = 0x06;

/// The UDH IE of a WAP push: 16-bit ports 2948 / 9200.
pub const fn wap_push_port_element() -> InformationElement {
    InformationElement::AppPort16 {
        destination: PORT_WAP_PUSH,
        originator: PORT_WAP_WSP,
    }
}

/// Why a push document could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WapPushError {
    /// A date was not `YYYY-MM-DDThh:mm:ssZ` (or 14 digits).
    #[error("invalid date {0:?}: expected YYYY-MM-DDThh:mm:ssZ")]
    BadDate(String),
    /// A string contains NUL, which WBXML inline strings cannot carry.
    #[error("string contains NUL")]
    Nul,
    /// Segmenting failed.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// A received push ended in the middle of a field.
    #[error("truncated push")]
    Truncated,
    /// The user data is not a WSP push PDU (another PDU type).
    #[error("not a WSP push (PDU type 0x{0:02x})")]
    NotPush(u8),
    /// A field's value is out of range or malformed (or cannot be encoded).
    #[error("bad {0}")]
    BadField(&'static str),
    /// A required field is missing.
    #[error("no {0}")]
    Missing(&'static str),
}

/// SI `action` attribute (WAP-167 §5.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SiAction {
    /// `signal-none` (token 0x05).
    SignalNone,
    /// `signal-low` (0x06).
    SignalLow,
    /// `signal-medium` (0x07), the default when absent.
    #[default]
    SignalMedium,
    /// `signal-high` (0x08).
    SignalHigh,
    /// `delete` (0x09).
    Delete,
}

/// SL `action` attribute (WAP-168 §5.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SlAction {
    /// `execute-low` (token 0x05), the default.
    #[default]
    ExecuteLow,
    /// `execute-high` (0x06).
    ExecuteHigh,
    /// `cache` (0x07).
    Cache,
}

/// A Service Indication.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceIndication {
    /// The URL to offer.
    pub href: String,
    /// Text shown to the user.
    pub text: String,
    /// `si-id`, to replace or delete an earlier SI.
    pub si_id: Option<String>,
    /// `created`, `YYYY-MM-DDThh:mm:ssZ`.
    pub created: Option<String>,
    /// `si-expires`, `YYYY-MM-DDThh:mm:ssZ`.
    pub expires: Option<String>,
    /// `action`; `None` leaves it out (receivers assume signal-medium).
    pub action: Option<SiAction>,
}

/// A Service Loading request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceLoading {
    /// The URL to load.
    pub href: String,
    /// `action`; `None` leaves it out (receivers assume execute-low).
    pub action: Option<SlAction>,
}

fn push_inline(out: &mut Vec<u8>, s: &str) -> Result<(), WapPushError> {
    if s.contains('\0') {
        return Err(WapPushError::Nul);
    }
    out.push(WBXML_STR_I);
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    Ok(())
}

/// Encodes an href with the longest matching prefix token of `prefixes`, else `plain`.
fn push_href(
    out: &mut Vec<u8>,
    href: &str,
    plain: u8,
    prefixes: &[(&str, u8)],
) -> Result<(), WapPushError> {
    let (token, rest) = prefixes
        .iter()
        .filter_map(|&(p, t)| href.strip_prefix(p).map(|rest| (t, rest)))
        .min_by_key(|&(_, rest)| rest.len())
        .unwrap_or((plain, href));
    out.push(token);
    if !rest.is_empty() {
        push_inline(out, rest)?;
    }
    Ok(())
}

/// OPAQUE datetime (WAP-167 §8.2.2): 14 digits packed two per octet, trailing zero octets
/// removed.
fn push_date(out: &mut Vec<u8>, date: &str) -> Result<(), WapPushError> {
    let digits: Vec<u8> = date
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    let shape_ok = date
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b':' | b'T' | b'Z'));
    if digits.len() != 14 || !shape_ok {
        return Err(WapPushError::BadDate(date.to_owned()));
    }
    let mut octets: Vec<u8> = digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect();
    while octets.last() == Some(&0) {
        octets.pop();
    }
    out.push(WBXML_OPAQUE);
    out.push(octets.len() as u8);
    out.extend_from_slice(&octets);
    Ok(())
}

impl ServiceIndication {
    /// The WBXML document (SI 1.0, UTF-8, no string table).
    pub fn to_wbxml(&self) -> Result<Vec<u8>, WapPushError> {
        let mut out = vec![WBXML_VERSION_1_2, PUBLIC_ID_SI, WBXML_UTF8, 0x00];
        out.push(0x45); // <si> with content
        out.push(0xC6); // <indication> with attributes and content
        if let Some(action) = self.action {
            out.push(match action {
                SiAction::SignalNone => 0x05,
                SiAction::SignalLow => 0x06,
                SiAction::SignalMedium => 0x07,
                SiAction::SignalHigh => 0x08,
                SiAction::Delete => 0x09,
            });
        }
        push_href(
            &mut out,
            &self.href,
            0x0B,
            &[
                ("http://", 0x0C),
                ("http://www.", 0x0D),
                ("https://", 0x0E),
                ("https://www.", 0x0F),
            ],
        )?;
        if let Some(id) = &self.si_id {
            out.push(0x11);
            push_inline(&mut out, id)?;
        }
        if let Some(created) = &self.created {
            out.push(0x0A);
            push_date(&mut out, created)?;
        }
        if let Some(expires) = &self.expires {
            out.push(0x10);
            push_date(&mut out, expires)?;
        }
        out.push(WBXML_END); // end of <indication> attributes
        if !self.text.is_empty() {
            push_inline(&mut out, &self.text)?;
        }
        out.push(WBXML_END); // </indication>
        out.push(WBXML_END); // </si>
        Ok(out)
    }

    /// WSP push PDU (transaction id `tid`) carrying the SI.
    pub fn to_wsp_push(&self, tid: u8) -> Result<Vec<u8>, WapPushError> {
        Ok(wsp_push(tid, &[CONTENT_TYPE_SIC], &self.to_wbxml()?))
    }

    /// SMS parts: 8-bit data (`data_coding` 0x04) with the WAP port IE in every UDH, plus
    /// concatenation when the PDU needs more than one SMS. `policy.extra_elements` is
    /// replaced by the port IE.
    pub fn to_segments(
        &self,
        tid: u8,
        policy: &SegmentationPolicy,
        refs: &mut ReferenceCounter,
    ) -> Result<Vec<Segment>, WapPushError> {
        push_segments(&self.to_wsp_push(tid)?, policy, refs)
    }

    /// A [`ShortMessage`] carrying the push (8-bit data, WAP ports); set its addresses
    /// and build it like any other.
    pub fn to_short_message(&self, tid: u8) -> Result<ShortMessage, WapPushError> {
        Ok(push_message(self.to_wsp_push(tid)?))
    }
}

impl ServiceLoading {
    /// The WBXML document (SL 1.0, UTF-8, no string table).
    pub fn to_wbxml(&self) -> Result<Vec<u8>, WapPushError> {
        let mut out = vec![WBXML_VERSION_1_2, PUBLIC_ID_SL, WBXML_UTF8, 0x00];
        out.push(0x85); // <sl> with attributes, no content
        if let Some(action) = self.action {
            out.push(match action {
                SlAction::ExecuteLow => 0x05,
                SlAction::ExecuteHigh => 0x06,
                SlAction::Cache => 0x07,
            });
        }
        push_href(
            &mut out,
            &self.href,
            0x08,
            &[
                ("http://", 0x09),
                ("http://www.", 0x0A),
                ("https://", 0x0B),
                ("https://www.", 0x0C),
            ],
        )?;
        out.push(WBXML_END); // end of <sl> attributes
        Ok(out)
    }

    /// WSP push PDU (transaction id `tid`) carrying the SL.
    pub fn to_wsp_push(&self, tid: u8) -> Result<Vec<u8>, WapPushError> {
        Ok(wsp_push(tid, &[CONTENT_TYPE_SLC], &self.to_wbxml()?))
    }

    /// A [`ShortMessage`] carrying the push, as [`ServiceIndication::to_short_message`].
    pub fn to_short_message(&self, tid: u8) -> Result<ShortMessage, WapPushError> {
        Ok(push_message(self.to_wsp_push(tid)?))
    }

    /// SMS parts, as [`ServiceIndication::to_segments`].
    pub fn to_segments(
        &self,
        tid: u8,
        policy: &SegmentationPolicy,
        refs: &mut ReferenceCounter,
    ) -> Result<Vec<Segment>, WapPushError> {
        push_segments(&self.to_wsp_push(tid)?, policy, refs)
    }
}

/// Connectionless WSP push: TID, PDU type, headers length (uintvar), headers (the
/// content type first), body.
pub(crate) fn wsp_push(tid: u8, headers: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + headers.len() + body.len());
    out.push(tid);
    out.push(WSP_PUSH);
    push_uintvar(&mut out, headers.len() as u32);
    out.extend_from_slice(headers);
    out.extend_from_slice(body);
    out
}

/// WSP uintvar: 7 bits per octet, most significant first, continuation bit 0x80.
pub fn push_uintvar(out: &mut Vec<u8>, mut v: u32) {
    let mut tmp = [0u8; 5];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = (v & 0x7F) as u8 | if i == tmp.len() - 1 { 0 } else { 0x80 };
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// A [`ShortMessage`] with the push PDU as 8-bit data and the WAP ports in every UDH.
pub(crate) fn push_message(pdu: Vec<u8>) -> ShortMessage {
    let policy = SegmentationPolicy {
        extra_elements: vec![wap_push_port_element()],
        ..SegmentationPolicy::default()
    };
    ShortMessage::binary(pdu, DataCoding::BINARY).policy(policy)
}

pub(crate) fn push_segments(
    pdu: &[u8],
    policy: &SegmentationPolicy,
    refs: &mut ReferenceCounter,
) -> Result<Vec<Segment>, WapPushError> {
    let mut policy = policy.clone();
    policy.extra_elements = vec![wap_push_port_element()];
    Ok(segment_binary(pdu, DataCoding::BINARY, &policy, refs)?)
}

// ---- Reading pushes back ----

/// What a received push carries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushContent {
    /// `application/vnd.wap.sic`: a Service Indication.
    ServiceIndication(ServiceIndication),
    /// `application/vnd.wap.slc`: a Service Loading request.
    ServiceLoading(ServiceLoading),
    /// `application/vnd.wap.mms-message` with an `M-Notification.ind`.
    MmsNotification(MmsNotification),
    /// Another content type; the body is in [`WapPush::body`].
    Other,
}

/// A WSP push read from SMS user data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WapPush {
    /// The WSP transaction id.
    pub tid: u8,
    /// The content type's name (`application/vnd.wap.sic`, ...; `0xNN` for a well-known
    /// code this decoder has no name for).
    pub content_type: String,
    /// `X-Wap-Application-Id` as a number or a URI, when present.
    pub application_id: Option<String>,
    /// The body as sent.
    pub body: Vec<u8>,
    /// The decoded body.
    pub content: PushContent,
}

impl WapPush {
    /// The URL the push points at: the SI/SL `href`, or the MMS content location.
    pub fn url(&self) -> Option<&str> {
        match &self.content {
            PushContent::ServiceIndication(si) => Some(&si.href),
            PushContent::ServiceLoading(sl) => Some(&sl.href),
            PushContent::MmsNotification(n) => Some(&n.content_location),
            PushContent::Other => None,
        }
    }

    /// Reads a push from a message's (reassembled) user data: `Ok(None)` unless the
    /// UDH's destination port is the WAP push port (2948), an error when it is and the
    /// WSP push or its body is malformed.
    pub fn from_user_data(
        udh: Option<&UserDataHeader>,
        payload: &[u8],
    ) -> Result<Option<WapPush>, WapPushError> {
        match udh.and_then(UserDataHeader::ports) {
            Some((PORT_WAP_PUSH, _)) => decode_push(payload).map(Some),
            _ => Ok(None),
        }
    }
}

/// Well-known content types (WAP-230 Appendix A, WINA) that pushes use.
fn content_type_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0x02 => "text/html",
        0x03 => "text/plain",
        0x08 => "text/vnd.wap.wml",
        0x2D => "text/vnd.wap.si",
        0x2E => "application/vnd.wap.sic",
        0x2F => "text/vnd.wap.sl",
        0x30 => "application/vnd.wap.slc",
        0x31 => "text/vnd.wap.co",
        0x32 => "application/vnd.wap.coc",
        0x3E => "application/vnd.wap.mms-message",
        0x44 => "application/vnd.syncml.notification",
        _ => return None,
    })
}

/// Decodes a connectionless WSP push PDU (TID, PDU type, headers, body) and, for SI, SL
/// and MMS notifications, its body. Never panics; malformed input is an error.
pub fn decode_push(pdu: &[u8]) -> Result<WapPush, WapPushError> {
    let mut r = WspReader::new(pdu);
    let tid = r.u8()?;
    let pdu_type = r.u8()?;
    if pdu_type != WSP_PUSH && pdu_type != WSP_CONFIRMED_PUSH {
        return Err(WapPushError::NotPush(pdu_type));
    }
    let headers_len = r.uintvar()?;
    let mut headers = WspReader::new(r.take(headers_len as usize)?);
    let body = r.rest();
    let content_type = headers.content_type()?;
    let mut application_id = None;
    while !headers.is_empty() {
        let field = headers.u8()?;
        if field < 0x80 {
            headers.back();
            headers.text()?;
            headers.skip_value()?;
        } else if field == 0xAF {
            // X-Wap-Application-Id: an integer (short or long) or a URI.
            application_id = Some(match headers.peek()? {
                b if b >= 0x80 => u64::from(headers.u8()? & 0x7F).to_string(),
                1..=8 => headers.long_integer()?.to_string(),
                _ => headers.text()?,
            });
        } else {
            headers.skip_value()?;
        }
    }
    let content = match content_type.as_str() {
        "application/vnd.wap.sic" => PushContent::ServiceIndication(parse_si(body)?),
        "application/vnd.wap.slc" => PushContent::ServiceLoading(parse_sl(body)?),
        "application/vnd.wap.mms-message" => {
            PushContent::MmsNotification(MmsNotification::parse(body)?)
        }
        _ => PushContent::Other,
    };
    Ok(WapPush {
        tid,
        content_type,
        application_id,
        body: body.to_vec(),
        content,
    })
}

/// A cursor over WSP-encoded octets (WAP-230 §8.4.2); every read is bounds-checked.
#[derive(Debug)]
pub(crate) struct WspReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> WspReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        WspReader { data, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    pub(crate) fn peek(&self) -> Result<u8, WapPushError> {
        self.data
            .get(self.pos)
            .copied()
            .ok_or(WapPushError::Truncated)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WapPushError> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    /// Steps back over the octet just read.
    pub(crate) fn back(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WapPushError> {
        let end = self.pos.checked_add(n).ok_or(WapPushError::Truncated)?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or(WapPushError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    /// uintvar / mb_u_int32: at most 5 octets, at most 32 bits.
    pub(crate) fn uintvar(&mut self) -> Result<u32, WapPushError> {
        let mut v: u32 = 0;
        for _ in 0..5 {
            let b = self.u8()?;
            if v > (u32::MAX >> 7) {
                return Err(WapPushError::BadField("uintvar"));
            }
            v = v << 7 | u32::from(b & 0x7F);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(WapPushError::BadField("uintvar"))
    }

    /// Octets up to a NUL (consumed, not returned).
    fn until_nul(&mut self) -> Result<&'a [u8], WapPushError> {
        let rest = self.rest();
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(WapPushError::Truncated)?;
        self.pos += len + 1;
        Ok(&rest[..len])
    }

    /// Text-string (a leading 0x7F quote dropped), decoded as UTF-8 (lossy).
    pub(crate) fn text(&mut self) -> Result<String, WapPushError> {
        let mut s = self.until_nul()?;
        if let [0x7F, rest @ ..] = s {
            s = rest;
        }
        Ok(String::from_utf8_lossy(s).into_owned())
    }

    /// Value-length: 0-30, or 31 followed by a uintvar.
    fn value_length(&mut self) -> Result<usize, WapPushError> {
        match self.u8()? {
            n @ 0..=30 => Ok(usize::from(n)),
            31 => Ok(self.uintvar()? as usize),
            _ => Err(WapPushError::BadField("value length")),
        }
    }

    /// A Value-length and the value it covers, as a reader of its own.
    pub(crate) fn value_length_block(&mut self) -> Result<WspReader<'a>, WapPushError> {
        let len = self.value_length()?;
        Ok(WspReader::new(self.take(len)?))
    }

    /// Long-integer (or a Short-integer where a sender used one).
    pub(crate) fn long_integer(&mut self) -> Result<u64, WapPushError> {
        let len = self.u8()?;
        if len >= 0x80 {
            return Ok(u64::from(len & 0x7F));
        }
        if !(1..=8).contains(&len) {
            return Err(WapPushError::BadField("long integer"));
        }
        Ok(self
            .take(usize::from(len))?
            .iter()
            .fold(0u64, |v, &b| v << 8 | u64::from(b)))
    }

    /// Encoded-string-value: a Text-string, or a Value-length, a charset and a
    /// Text-string (decoded as UTF-8 whatever the charset).
    pub(crate) fn encoded_string(&mut self) -> Result<String, WapPushError> {
        // An empty text is a lone NUL, not a value length of 0.
        if self.peek()? > 31 || self.peek()? == 0 {
            return self.text();
        }
        let mut value = self.value_length_block()?;
        if value.peek()? >= 0x80 {
            value.u8()?;
        } else {
            value.long_integer()?;
        }
        value.text()
    }

    /// Skips one header value by its first octet (WAP-230 §8.4.1.2).
    pub(crate) fn skip_value(&mut self) -> Result<(), WapPushError> {
        match self.peek()? {
            0..=31 => {
                let len = self.value_length()?;
                self.take(len).map(drop)
            }
            32..=127 => self.until_nul().map(drop),
            _ => self.u8().map(drop),
        }
    }

    /// The Content-type value: well-known (short or long integer), a media type
    /// text, or a Value-length general form (media type and parameters).
    pub(crate) fn content_type(&mut self) -> Result<String, WapPushError> {
        let well_known = |code: u64| {
            u8::try_from(code)
                .ok()
                .and_then(content_type_name)
                .map_or_else(|| format!("0x{code:02x}"), str::to_owned)
        };
        match self.peek()? {
            b if b >= 0x80 => {
                self.u8()?;
                Ok(well_known(u64::from(b & 0x7F)))
            }
            32..=127 => self.text(),
            _ => {
                let mut value = self.value_length_block()?;
                match value.peek()? {
                    b if b >= 0x80 => Ok(well_known(u64::from(value.u8()? & 0x7F))),
                    1..=30 => Ok(well_known(value.long_integer()?)),
                    _ => value.text(),
                }
            }
        }
    }
}

// WBXML global tokens that the reader distinguishes from page tokens.
const WBXML_SWITCH_PAGE: u8 = 0x00;
const WBXML_ENTITY: u8 = 0x02;
const WBXML_LITERAL: u8 = 0x04;
const WBXML_STR_T: u8 = 0x83;
/// Deepest element nesting accepted (SI and SL documents use 3).
const WBXML_MAX_DEPTH: usize = 8;

/// One attribute: its start token and its value (text and attribute-value tokens
/// concatenated; OPAQUE octets kept aside for dates).
#[derive(Debug, Default)]
struct WbxmlAttribute {
    start: u8,
    value: String,
    opaque: Option<Vec<u8>>,
}

/// One element of a WBXML document, code page 0 tags only.
#[derive(Debug, Default)]
struct WbxmlElement {
    tag: u8,
    attributes: Vec<WbxmlAttribute>,
    text: String,
    children: Vec<WbxmlElement>,
}

/// A small WBXML 1.x reader for SI and SL documents: header, string table, elements,
/// attributes, inline and table strings, entities, opaque data.
struct WbxmlReader<'a> {
    r: WspReader<'a>,
    strings: &'a [u8],
    latin1: bool,
}

impl<'a> WbxmlReader<'a> {
    /// Reads the header; `public_id` must be the document's (or given in the string
    /// table, which is accepted as is).
    fn new(doc: &'a [u8], public_id: u8) -> Result<Self, WapPushError> {
        let mut r = WspReader::new(doc);
        let _version = r.u8()?;
        let id = r.uintvar()?;
        if id == 0 {
            r.uintvar()?; // public id given as a string table index
        } else if id != u32::from(public_id) {
            return Err(WapPushError::BadField("WBXML public id"));
        }
        let charset = r.uintvar()?;
        let table_len = r.uintvar()?;
        let strings = r.take(table_len as usize)?;
        Ok(WbxmlReader {
            r,
            strings,
            latin1: charset == 4,
        })
    }

    fn string(&self, bytes: &[u8]) -> String {
        if self.latin1 {
            bytes.iter().map(|&b| char::from(b)).collect()
        } else {
            String::from_utf8_lossy(bytes).into_owned()
        }
    }

    fn inline(&mut self) -> Result<String, WapPushError> {
        let s = self.r.until_nul()?;
        Ok(self.string(s))
    }

    fn table(&mut self) -> Result<String, WapPushError> {
        let at = self.r.uintvar()? as usize;
        let rest = self
            .strings
            .get(at..)
            .ok_or(WapPushError::BadField("WBXML string table index"))?;
        let len = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        Ok(self.string(&rest[..len]))
    }

    fn entity(&mut self) -> Result<char, WapPushError> {
        char::from_u32(self.r.uintvar()?).ok_or(WapPushError::BadField("WBXML entity"))
    }

    fn opaque(&mut self) -> Result<&'a [u8], WapPushError> {
        let len = self.r.uintvar()? as usize;
        self.r.take(len)
    }

    /// The root element (processing instructions and page switches before it skipped).
    fn root(&mut self) -> Result<WbxmlElement, WapPushError> {
        self.element(0)
    }

    fn element(&mut self, depth: usize) -> Result<WbxmlElement, WapPushError> {
        if depth >= WBXML_MAX_DEPTH {
            return Err(WapPushError::BadField("WBXML nesting"));
        }
        let mut token = self.r.u8()?;
        while token == WBXML_SWITCH_PAGE {
            self.r.u8()?;
            token = self.r.u8()?;
        }
        let mut element = WbxmlElement {
            tag: token & 0x3F,
            ..WbxmlElement::default()
        };
        if element.tag == WBXML_LITERAL {
            self.r.uintvar()?;
        } else if element.tag < 0x05 {
            return Err(WapPushError::BadField("WBXML tag"));
        }
        if token & 0x80 != 0 {
            self.attributes(&mut element)?;
        }
        if token & 0x40 != 0 {
            self.content(&mut element, depth)?;
        }
        Ok(element)
    }

    fn attributes(&mut self, element: &mut WbxmlElement) -> Result<(), WapPushError> {
        loop {
            let token = self.r.u8()?;
            match token {
                WBXML_END => return Ok(()),
                WBXML_SWITCH_PAGE => {
                    self.r.u8()?;
                }
                WBXML_LITERAL => {
                    self.r.uintvar()?;
                    element.attributes.push(WbxmlAttribute::default());
                }
                WBXML_STR_I | WBXML_STR_T | WBXML_ENTITY | WBXML_OPAQUE => {
                    let attribute = element
                        .attributes
                        .last_mut()
                        .ok_or(WapPushError::BadField("WBXML attribute value"))?;
                    match token {
                        WBXML_STR_I => attribute.value.push_str(&self.inline()?),
                        WBXML_STR_T => attribute.value.push_str(&self.table()?),
                        WBXML_ENTITY => attribute.value.push(self.entity()?),
                        _ => attribute.opaque = Some(self.opaque()?.to_vec()),
                    }
                }
                0x05..=0x3F | 0x45..=0x7F => element.attributes.push(WbxmlAttribute {
                    start: token,
                    ..WbxmlAttribute::default()
                }),
                0x85..=0xBF | 0xC5..=0xFF => {
                    let attribute = element
                        .attributes
                        .last_mut()
                        .ok_or(WapPushError::BadField("WBXML attribute value"))?;
                    attribute.value.push_str(match token {
                        0x85 => ".com/",
                        0x86 => ".edu/",
                        0x87 => ".net/",
                        0x88 => ".org/",
                        _ => return Err(WapPushError::BadField("WBXML attribute value")),
                    });
                }
                _ => return Err(WapPushError::BadField("WBXML token in attributes")),
            }
        }
    }

    fn content(&mut self, element: &mut WbxmlElement, depth: usize) -> Result<(), WapPushError> {
        loop {
            match self.r.peek()? {
                WBXML_END => {
                    self.r.u8()?;
                    return Ok(());
                }
                WBXML_STR_I => {
                    self.r.u8()?;
                    let s = self.inline()?;
                    element.text.push_str(&s);
                }
                WBXML_STR_T => {
                    self.r.u8()?;
                    let s = self.table()?;
                    element.text.push_str(&s);
                }
                WBXML_ENTITY => {
                    self.r.u8()?;
                    let c = self.entity()?;
                    element.text.push(c);
                }
                WBXML_OPAQUE => {
                    self.r.u8()?;
                    self.opaque()?;
                }
                0x40..=0x44 | 0x80..=0x82 | 0x84 | 0xC0..=0xC2 | 0xC4 => {
                    return Err(WapPushError::BadField("WBXML extension token"));
                }
                _ => element.children.push(self.element(depth + 1)?),
            }
        }
    }
}

/// The URL of an href attribute: its start token's prefix, then its value.
fn href(attribute: &WbxmlAttribute, plain: u8) -> Option<String> {
    let prefix = match attribute.start.checked_sub(plain)? {
        0 => "",
        1 => "http://",
        2 => "http://www.",
        3 => "https://",
        4 => "https://www.",
        _ => return None,
    };
    Some(format!("{prefix}{}", attribute.value))
}

/// An OPAQUE datetime (14 digits, two per octet, trailing zero octets dropped) as
/// `YYYY-MM-DDThh:mm:ssZ`.
fn opaque_date(attribute: &WbxmlAttribute) -> Result<String, WapPushError> {
    let Some(octets) = &attribute.opaque else {
        // Some senders write the date as a string: the same form when it has 14 digits.
        let v = &attribute.value;
        let digits: Vec<u8> = v.bytes().filter(u8::is_ascii_digit).collect();
        let shape_ok = v
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b':' | b'T' | b'Z'));
        if digits.len() != 14 || !shape_ok {
            return Ok(v.clone());
        }
        return Ok(format_date(&digits));
    };
    if octets.len() > 7 {
        return Err(WapPushError::BadField("date"));
    }
    let mut digits = [b'0'; 14];
    for (i, &o) in octets.iter().enumerate() {
        let (hi, lo) = (o >> 4, o & 0x0F);
        if hi > 9 || lo > 9 {
            return Err(WapPushError::BadField("date"));
        }
        digits[2 * i] = b'0' + hi;
        digits[2 * i + 1] = b'0' + lo;
    }
    Ok(format_date(&digits))
}

/// 14 ASCII digits as `YYYY-MM-DDThh:mm:ssZ`.
fn format_date(digits: &[u8]) -> String {
    let d = |r: core::ops::Range<usize>| {
        String::from_utf8_lossy(digits.get(r).unwrap_or_default()).into_owned()
    };
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        d(0..4),
        d(4..6),
        d(6..8),
        d(8..10),
        d(10..12),
        d(12..14)
    )
}

/// Parses an SI document (WAP-167 §8): the first `indication`'s attributes and text.
fn parse_si(doc: &[u8]) -> Result<ServiceIndication, WapPushError> {
    let root = WbxmlReader::new(doc, PUBLIC_ID_SI)?.root()?;
    if root.tag != 0x05 {
        return Err(WapPushError::BadField("SI root element"));
    }
    let indication = root
        .children
        .iter()
        .find(|e| e.tag == 0x06)
        .ok_or(WapPushError::Missing("indication"))?;
    let mut si = ServiceIndication {
        text: indication.text.clone(),
        ..ServiceIndication::default()
    };
    let mut found_href = false;
    for a in &indication.attributes {
        match a.start {
            0x05 => si.action = Some(SiAction::SignalNone),
            0x06 => si.action = Some(SiAction::SignalLow),
            0x07 => si.action = Some(SiAction::SignalMedium),
            0x08 => si.action = Some(SiAction::SignalHigh),
            0x09 => si.action = Some(SiAction::Delete),
            0x0A => si.created = Some(opaque_date(a)?),
            0x0B..=0x0F => {
                si.href = href(a, 0x0B).ok_or(WapPushError::BadField("href"))?;
                found_href = true;
            }
            0x10 => si.expires = Some(opaque_date(a)?),
            0x11 => si.si_id = Some(a.value.clone()),
            _ => {} // class, literal attributes
        }
    }
    if !found_href && si.action != Some(SiAction::Delete) {
        return Err(WapPushError::Missing("href"));
    }
    Ok(si)
}

/// Parses an SL document (WAP-168 §8).
fn parse_sl(doc: &[u8]) -> Result<ServiceLoading, WapPushError> {
    let root = WbxmlReader::new(doc, PUBLIC_ID_SL)?.root()?;
    if root.tag != 0x05 {
        return Err(WapPushError::BadField("SL root element"));
    }
    let mut sl = ServiceLoading::default();
    let mut found_href = false;
    for a in &root.attributes {
        match a.start {
            0x05 => sl.action = Some(SlAction::ExecuteLow),
            0x06 => sl.action = Some(SlAction::ExecuteHigh),
            0x07 => sl.action = Some(SlAction::Cache),
            0x08..=0x0C => {
                sl.href = href(a, 0x08).ok_or(WapPushError::BadField("href"))?;
                found_href = true;
            }
            _ => {}
        }
    }
    if !found_href {
        return Err(WapPushError::Missing("href"));
    }
    Ok(sl)
}

#[cfg(test)]
mod decode_tests {
    use super::*;

    fn si() -> ServiceIndication {
        ServiceIndication {
            href: "http://www.example.com/offer?x=1".into(),
            text: "Grab it ✓".into(),
            si_id: Some("offer-1".into()),
            created: Some("2026-12-06T10:00:00Z".into()),
            expires: Some("2026-12-31T23:59:59Z".into()),
            action: Some(SiAction::SignalHigh),
        }
    }

    #[test]
    fn si_and_sl_decode_to_what_was_built() {
        let push = decode_push(&si().to_wsp_push(3).unwrap()).unwrap();
        assert_eq!(push.tid, 3);
        assert_eq!(push.url(), Some("http://www.example.com/offer?x=1"));
        assert_eq!(push.content, PushContent::ServiceIndication(si()));
        for href in [
            "https://a.example/x",
            "ftp://b/",
            "http://c",
            "https://www.d",
        ] {
            let sl = ServiceLoading {
                href: href.into(),
                action: Some(SlAction::Cache),
            };
            let push = decode_push(&sl.to_wsp_push(0).unwrap()).unwrap();
            assert_eq!(push.content, PushContent::ServiceLoading(sl));
        }
    }

    #[test]
    fn a_hand_written_si_with_a_string_table_and_value_tokens_decodes() {
        // WAP-167 Appendix style: a string table, href "http://www." + "xyz" + ".com/" + "ppaid",
        // text from the table, an entity, and a text content type with a charset parameter.
        let mut doc = vec![0x02, 0x05, 0x6A, 0x04, b'a', b'b', b'c', 0x00];
        doc.extend_from_slice(&[0x45, 0xC6, 0x0D, 0x03]);
        doc.extend_from_slice(b"xyz\0");
        doc.extend_from_slice(&[0x85, 0x03]);
        doc.extend_from_slice(b"ppaid\0");
        doc.extend_from_slice(&[0x01, 0x83, 0x00, 0x02, 0x21, 0x01, 0x01]);
        let mut pdu = vec![0x01, 0x06, 0x04, 0x03, 0xAE, 0x81, 0xEA];
        pdu.extend_from_slice(&doc);
        let push = decode_push(&pdu).unwrap();
        let PushContent::ServiceIndication(si) = push.content else {
            panic!("{push:?}");
        };
        assert_eq!(si.href, "http://www.xyz.com/ppaid");
        assert_eq!(si.text, "abc!");
    }

    #[test]
    fn user_data_on_other_ports_is_not_a_push() {
        let pdu = si().to_wsp_push(1).unwrap();
        let other = UserDataHeader::new(vec![InformationElement::AppPort16 {
            destination: 5499,
            originator: 0,
        }]);
        assert_eq!(WapPush::from_user_data(Some(&other), &pdu), Ok(None));
        assert_eq!(WapPush::from_user_data(None, &pdu), Ok(None));
        let wap = UserDataHeader::new(vec![wap_push_port_element()]);
        assert!(WapPush::from_user_data(Some(&wap), &pdu).unwrap().is_some());
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_or_a_value_never_a_panic() {
        let mms = MmsNotification::new(
            "t",
            "http://m/x",
            10,
            crate::message::mms::MmsExpiry::Relative(60),
        );
        for pdu in [
            si().to_wsp_push(1).unwrap(),
            mms.to_wsp_push(2).unwrap(),
            ServiceLoading::default().to_wsp_push(3).unwrap(),
        ] {
            assert!(decode_push(&pdu).is_ok());
            for len in 0..pdu.len() {
                assert!(decode_push(&pdu[..len]).is_err(), "{len} of {pdu:02x?}");
            }
            for i in 0..pdu.len() {
                for flip in [0x01, 0x80, 0xFF] {
                    let mut bad = pdu.clone();
                    bad[i] ^= flip;
                    let _ = decode_push(&bad);
                }
            }
        }
        assert_eq!(decode_push(&[1, 0x40]), Err(WapPushError::NotPush(0x40)));
        // A nesting bomb stops at the depth limit.
        let mut deep = vec![1, 6, 1, 0xAE, 2, 5, 0x6A, 0];
        deep.extend(std::iter::repeat_n(0x45, 10_000));
        assert_eq!(
            decode_push(&deep),
            Err(WapPushError::BadField("WBXML nesting"))
        );
    }
}
