//! WAP push over SMS: WDP port addressing (UDH IE 0x05, destination 2948, originator 9200),
//! a WSP push PDU, and WBXML Service Indication (WAP-167) / Service Loading (WAP-168)
//! documents.

use super::coding::DataCoding;
use super::concat::{segment_binary, ReferenceCounter, Segment, SegmentError, SegmentationPolicy};
use super::udh::InformationElement;

/// WAP push connectionless port (WSP), the WDP destination port.
pub const PORT_WAP_PUSH: u16 = 2948;
/// WAP connectionless session port, the WDP originator port.
pub const PORT_WAP_WSP: u16 = 9200;

/// WSP PDU type "Push".
const WSP_PUSH: u8 = 0x06;
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
        Ok(wsp_push(tid, CONTENT_TYPE_SIC, &self.to_wbxml()?))
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
        Ok(wsp_push(tid, CONTENT_TYPE_SLC, &self.to_wbxml()?))
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

/// Connectionless WSP push: TID, PDU type, headers length (uintvar), headers (just the
/// content type), body.
fn wsp_push(tid: u8, content_type: u8, body: &[u8]) -> Vec<u8> {
    let headers = [content_type];
    let mut out = Vec::with_capacity(4 + body.len());
    out.push(tid);
    out.push(WSP_PUSH);
    push_uintvar(&mut out, headers.len() as u32);
    out.extend_from_slice(&headers);
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

fn push_segments(
    pdu: &[u8],
    policy: &SegmentationPolicy,
    refs: &mut ReferenceCounter,
) -> Result<Vec<Segment>, WapPushError> {
    let mut policy = policy.clone();
    policy.extra_elements = vec![wap_push_port_element()];
    Ok(segment_binary(pdu, DataCoding::BINARY, &policy, refs)?)
}
