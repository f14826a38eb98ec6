//! MMS notification over SMS: the `M-Notification.ind` PDU (OMA-TS-MMS-ENC, §6.2 and
//! §7.2), sent to the phone in a WSP push (`application/vnd.wap.mms-message`, application
//! id `x-wap-application:mms.ua`) on the WAP push ports, so it fetches the message from
//! its content location.
//!
//! ```
//! use smpp_proto::message::mms::{MmsExpiry, MmsNotification};
//! use smpp_proto::message::wap::{decode_push, PushContent};
//!
//! let n = MmsNotification::new("T1", "http://mmsc.example/m/42", 2048, MmsExpiry::Relative(86_400));
//! let pdu = n.to_wsp_push(7)?;
//! let push = decode_push(&pdu)?;
//! assert_eq!(push.content, PushContent::MmsNotification(n));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::concat::{ReferenceCounter, Segment, SegmentationPolicy};
use super::short_message::ShortMessage;
use super::wap::{self, WapPushError, WspReader};

// Header field names (OMA-TS-MMS-ENC §7.4), short-integer encoded (0x80 | code).
const FIELD_CONTENT_LOCATION: u8 = 0x83;
const FIELD_EXPIRY: u8 = 0x88;
const FIELD_FROM: u8 = 0x89;
const FIELD_MESSAGE_CLASS: u8 = 0x8A;
const FIELD_MESSAGE_TYPE: u8 = 0x8C;
const FIELD_MMS_VERSION: u8 = 0x8D;
const FIELD_MESSAGE_SIZE: u8 = 0x8E;
const FIELD_SUBJECT: u8 = 0x96;
const FIELD_TRANSACTION_ID: u8 = 0x98;

/// `X-Mms-Message-Type` value `m-notification-ind`.
const M_NOTIFICATION_IND: u8 = 0x82;
const ABSOLUTE_TOKEN: u8 = 0x80;
const RELATIVE_TOKEN: u8 = 0x81;
const ADDRESS_PRESENT_TOKEN: u8 = 0x80;
const INSERT_ADDRESS_TOKEN: u8 = 0x81;

/// `X-Mms-Message-Class`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum MmsMessageClass {
    /// `Personal` (0x80), the default.
    #[default]
    Personal,
    /// `Advertisement` (0x81).
    Advertisement,
    /// `Informational` (0x82).
    Informational,
    /// `Auto` (0x83).
    Auto,
    /// A class given as text.
    Other(String),
}

impl MmsMessageClass {
    /// The class's name as the specification writes it.
    pub fn name(&self) -> &str {
        match self {
            Self::Personal => "Personal",
            Self::Advertisement => "Advertisement",
            Self::Informational => "Informational",
            Self::Auto => "Auto",
            Self::Other(s) => s,
        }
    }
}

/// `X-Mms-Expiry`: when the MMSC drops the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MmsExpiry {
    /// Seconds since 1970-01-01T00:00:00Z.
    Absolute(u64),
    /// Seconds from now.
    Relative(u64),
}

/// An `M-Notification.ind`: the MMS headers a phone needs to fetch the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MmsNotification {
    /// `X-Mms-Transaction-ID`, echoed by the phone in its `M-NotifyResp.ind`.
    pub transaction_id: String,
    /// `X-Mms-MMS-Version` as (major, minor); 1.2 by default.
    pub version: (u8, u8),
    /// `From`, when the sender is shown (`None`: address hidden or inserted by the MMSC).
    pub from: Option<String>,
    /// `Subject`.
    pub subject: Option<String>,
    /// `X-Mms-Message-Class`.
    pub class: MmsMessageClass,
    /// `X-Mms-Message-Size` in octets.
    pub size: u64,
    /// `X-Mms-Expiry`.
    pub expiry: MmsExpiry,
    /// `X-Mms-Content-Location`: the URL the phone fetches the message from.
    pub content_location: String,
}

impl MmsNotification {
    /// A notification with the required fields, MMS 1.2, class Personal, no From or
    /// Subject.
    pub fn new(
        transaction_id: impl Into<String>,
        content_location: impl Into<String>,
        size: u64,
        expiry: MmsExpiry,
    ) -> Self {
        MmsNotification {
            transaction_id: transaction_id.into(),
            version: (1, 2),
            from: None,
            subject: None,
            class: MmsMessageClass::Personal,
            size,
            expiry,
            content_location: content_location.into(),
        }
    }

    /// The binary `M-Notification.ind` (message type, transaction id and version first,
    /// as §6.2 requires).
    pub fn to_pdu(&self) -> Result<Vec<u8>, WapPushError> {
        let (major, minor) = self.version;
        if major > 7 || minor > 15 {
            return Err(WapPushError::BadField("MMS version"));
        }
        let mut out = vec![FIELD_MESSAGE_TYPE, M_NOTIFICATION_IND, FIELD_TRANSACTION_ID];
        push_text(&mut out, &self.transaction_id)?;
        out.extend_from_slice(&[FIELD_MMS_VERSION, 0x80 | major << 4 | minor]);
        if let Some(from) = &self.from {
            let mut value = vec![ADDRESS_PRESENT_TOKEN];
            push_text(&mut value, from)?;
            out.push(FIELD_FROM);
            push_value_length(&mut out, value.len());
            out.extend_from_slice(&value);
        }
        if let Some(subject) = &self.subject {
            out.push(FIELD_SUBJECT);
            push_text(&mut out, subject)?;
        }
        out.push(FIELD_MESSAGE_CLASS);
        match &self.class {
            MmsMessageClass::Personal => out.push(0x80),
            MmsMessageClass::Advertisement => out.push(0x81),
            MmsMessageClass::Informational => out.push(0x82),
            MmsMessageClass::Auto => out.push(0x83),
            MmsMessageClass::Other(s) => push_text(&mut out, s)?,
        }
        out.push(FIELD_MESSAGE_SIZE);
        push_long_integer(&mut out, self.size);
        out.push(FIELD_EXPIRY);
        let (token, seconds) = match self.expiry {
            MmsExpiry::Absolute(s) => (ABSOLUTE_TOKEN, s),
            MmsExpiry::Relative(s) => (RELATIVE_TOKEN, s),
        };
        let mut value = vec![token];
        push_long_integer(&mut value, seconds);
        push_value_length(&mut out, value.len());
        out.extend_from_slice(&value);
        out.push(FIELD_CONTENT_LOCATION);
        push_text(&mut out, &self.content_location)?;
        Ok(out)
    }

    /// WSP push PDU (transaction id `tid`): content type
    /// `application/vnd.wap.mms-message`, `X-Wap-Application-Id: x-wap-application:mms.ua`.
    pub fn to_wsp_push(&self, tid: u8) -> Result<Vec<u8>, WapPushError> {
        Ok(wap::wsp_push(
            tid,
            &[wap::CONTENT_TYPE_MMS, 0xAF, 0x84],
            &self.to_pdu()?,
        ))
    }

    /// SMS parts: 8-bit data with the WAP push ports (2948/9200) in every UDH, concatenated
    /// when the push needs more than one SMS.
    pub fn to_segments(
        &self,
        tid: u8,
        policy: &SegmentationPolicy,
        refs: &mut ReferenceCounter,
    ) -> Result<Vec<Segment>, WapPushError> {
        wap::push_segments(&self.to_wsp_push(tid)?, policy, refs)
    }

    /// A [`ShortMessage`] carrying the push (8-bit data, WAP ports); set its addresses
    /// and build it like any other.
    pub fn to_short_message(&self, tid: u8) -> Result<ShortMessage, WapPushError> {
        Ok(wap::push_message(self.to_wsp_push(tid)?))
    }

    /// Parses an `M-Notification.ind` (the body of the push). Fields it does not know
    /// are skipped by their WSP encoding; the required ones must all be there.
    pub fn parse(pdu: &[u8]) -> Result<Self, WapPushError> {
        let mut r = WspReader::new(pdu);
        let mut message_type = None;
        let mut transaction_id = None;
        let mut version = None;
        let mut from = None;
        let mut subject = None;
        let mut class = MmsMessageClass::Personal;
        let mut size = None;
        let mut expiry = None;
        let mut content_location = None;
        while !r.is_empty() {
            let field = r.u8()?;
            if field < 0x80 {
                // An application header (token-text name): skip name and value.
                r.back();
                r.text()?;
                r.skip_value()?;
                continue;
            }
            match field {
                FIELD_MESSAGE_TYPE => message_type = Some(r.u8()?),
                FIELD_TRANSACTION_ID => transaction_id = Some(r.text()?),
                FIELD_MMS_VERSION => {
                    let v = r.u8()?;
                    if v < 0x80 {
                        return Err(WapPushError::BadField("MMS version"));
                    }
                    version = Some(((v >> 4) & 0x07, v & 0x0F));
                }
                FIELD_FROM => {
                    let mut value = r.value_length_block()?;
                    from = match value.u8()? {
                        ADDRESS_PRESENT_TOKEN => Some(value.encoded_string()?),
                        INSERT_ADDRESS_TOKEN => None,
                        _ => return Err(WapPushError::BadField("From")),
                    };
                }
                FIELD_SUBJECT => subject = Some(r.encoded_string()?),
                FIELD_MESSAGE_CLASS => {
                    class = match r.peek()? {
                        0x80 => MmsMessageClass::Personal,
                        0x81 => MmsMessageClass::Advertisement,
                        0x82 => MmsMessageClass::Informational,
                        0x83 => MmsMessageClass::Auto,
                        b if b >= 0x80 => return Err(WapPushError::BadField("message class")),
                        _ => MmsMessageClass::Other(r.text()?),
                    };
                    if !matches!(class, MmsMessageClass::Other(_)) {
                        r.u8()?;
                    }
                }
                FIELD_MESSAGE_SIZE => size = Some(r.long_integer()?),
                FIELD_EXPIRY => {
                    let mut value = r.value_length_block()?;
                    let token = value.u8()?;
                    let seconds = value.long_integer()?;
                    expiry = Some(match token {
                        ABSOLUTE_TOKEN => MmsExpiry::Absolute(seconds),
                        RELATIVE_TOKEN => MmsExpiry::Relative(seconds),
                        _ => return Err(WapPushError::BadField("expiry")),
                    });
                }
                FIELD_CONTENT_LOCATION => content_location = Some(r.text()?),
                _ => r.skip_value()?,
            }
        }
        if message_type != Some(M_NOTIFICATION_IND) {
            return Err(WapPushError::BadField("message type"));
        }
        Ok(MmsNotification {
            transaction_id: transaction_id.ok_or(WapPushError::Missing("transaction id"))?,
            version: version.ok_or(WapPushError::Missing("MMS version"))?,
            from,
            subject,
            class,
            size: size.ok_or(WapPushError::Missing("message size"))?,
            expiry: expiry.ok_or(WapPushError::Missing("expiry"))?,
            content_location: content_location.ok_or(WapPushError::Missing("content location"))?,
        })
    }
}

/// WSP Text-string: a leading octet of 0x7F or more is quoted with 0x7F; NUL-terminated.
fn push_text(out: &mut Vec<u8>, s: &str) -> Result<(), WapPushError> {
    if s.contains('\0') {
        return Err(WapPushError::Nul);
    }
    // 0x7F itself is quoted too, or a reader would take it for the quote.
    if s.as_bytes().first().is_some_and(|&b| b >= 0x7F) {
        out.push(0x7F);
    }
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    Ok(())
}

/// WSP Value-length: a short length (0-30) or 31 then a uintvar.
fn push_value_length(out: &mut Vec<u8>, len: usize) {
    if len <= 30 {
        out.push(len as u8);
    } else {
        out.push(31);
        wap::push_uintvar(out, len as u32);
    }
}

/// WSP Long-integer: a short length then the value's octets, most significant first.
fn push_long_integer(out: &mut Vec<u8>, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
    out.push((8 - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> MmsNotification {
        MmsNotification {
            transaction_id: "Tx-1".into(),
            version: (1, 2),
            from: Some("+447700900123/TYPE=PLMN".into()),
            subject: Some("Holiday".into()),
            class: MmsMessageClass::Informational,
            size: 70_000,
            expiry: MmsExpiry::Absolute(1_800_000_000),
            content_location: "http://mmsc.example.com/get?id=42".into(),
        }
    }

    #[test]
    fn encodes_the_fields_in_spec_order_with_their_wsp_encodings() {
        let n = MmsNotification::new("A", "http://x/", 300, MmsExpiry::Relative(3600));
        assert_eq!(
            n.to_pdu().unwrap(),
            [
                0x8C, 0x82, // message type m-notification-ind
                0x98, b'A', 0, // transaction id
                0x8D, 0x92, // version 1.2
                0x8A, 0x80, // class personal
                0x8E, 2, 0x01, 0x2C, // size 300 as a long integer
                0x88, 4, 0x81, 2, 0x0E, 0x10, // expiry: value-length 4, relative, 3600
                0x83, b'h', b't', b't', b'p', b':', b'/', b'/', b'x', b'/', 0,
            ]
        );
        let push = n.to_wsp_push(5).unwrap();
        // TID, Push, headers length 3, application/vnd.wap.mms-message, app id mms.ua.
        assert_eq!(&push[..6], [5, 0x06, 3, 0xBE, 0xAF, 0x84]);
    }

    #[test]
    fn parses_what_it_encodes() {
        let n = sample();
        assert_eq!(MmsNotification::parse(&n.to_pdu().unwrap()).unwrap(), n);
        let mut other = sample();
        other.class = MmsMessageClass::Other("Holiday snaps".into());
        other.from = None;
        other.expiry = MmsExpiry::Relative(0);
        assert_eq!(
            MmsNotification::parse(&other.to_pdu().unwrap()).unwrap(),
            other
        );
    }

    #[test]
    fn a_notification_from_another_stack_parses() {
        // A Nokia-style notification: message type, tid, version 1.0, an unknown field
        // (X-Mms-Delivery-Report 0x86, short integer), From with insert-address token,
        // size, expiry, content location.
        let mut pdu = vec![0x8C, 0x82, 0x98];
        pdu.extend_from_slice(b"abc\0");
        pdu.extend_from_slice(&[0x8D, 0x90, 0x86, 0x81, 0x89, 0x01, 0x81]);
        pdu.extend_from_slice(&[0x8E, 0x01, 0x40, 0x88, 0x05, 0x81, 0x03, 0x01, 0x51, 0x80]);
        pdu.push(0x83);
        pdu.extend_from_slice(b"http://m/1\0");
        let n = MmsNotification::parse(&pdu).unwrap();
        assert_eq!(n.version, (1, 0));
        assert_eq!(n.from, None);
        assert_eq!(n.size, 64);
        assert_eq!(n.expiry, MmsExpiry::Relative(86_400));
        assert_eq!(n.content_location, "http://m/1");
    }

    #[test]
    fn truncated_or_incomplete_notifications_are_errors() {
        let pdu = sample().to_pdu().unwrap();
        for len in 0..pdu.len() {
            assert!(MmsNotification::parse(&pdu[..len]).is_err(), "{len}");
        }
        // Another MMS PDU type (m-send-req 0x80) is not a notification.
        let mut other = pdu.clone();
        other[1] = 0x80;
        assert!(MmsNotification::parse(&other).is_err());
    }

    #[test]
    fn long_notifications_split_into_wap_push_parts() {
        let mut n = sample();
        n.content_location = format!("http://mmsc.example.com/{}", "x".repeat(200));
        let mut refs = ReferenceCounter::new(1);
        let parts = n
            .to_segments(9, &SegmentationPolicy::default(), &mut refs)
            .unwrap();
        // 128 octets of push per part after a UDH of 11 (ports and concatenation).
        let push = n.to_wsp_push(9).unwrap();
        assert_eq!(parts.len(), push.len().div_ceil(128));
        let mut joined = Vec::new();
        for p in &parts {
            let udh = p.udh.as_ref().unwrap();
            assert_eq!(&udh[..7], [11, 0x05, 4, 0x0B, 0x84, 0x23, 0xF0]);
            joined.extend_from_slice(&p.payload);
        }
        let decoded = crate::message::wap::decode_push(&joined).unwrap();
        assert_eq!(decoded.url(), Some(n.content_location.as_str()));
    }
}
