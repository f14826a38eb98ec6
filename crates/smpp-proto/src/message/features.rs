//! What a received message is, beyond its text: a WAP push (SI, SL, MMS notification,
//! recognised by the WDP ports and the WSP content type), a message waiting indication,
//! a USSD operation, a v5.0 billing identification. One call reads them all, so a
//! receiver shows what arrived without knowing where each feature hides.
//!
//! ```
//! use smpp_proto::message::features::{Feature, MessageFeatures};
//! use smpp_proto::message::wap::ServiceLoading;
//! use smpp_proto::message::{IncomingPart, PartOutcome, Reassembler, ReassemblyConfig, ReferenceCounter};
//! use std::time::Instant;
//!
//! let sl = ServiceLoading { href: "https://example.com/app".into(), action: None };
//! let parts = sl.to_short_message(1)?.to("447700900123").build(&mut ReferenceCounter::new(1))?;
//! let part = IncomingPart::from_deliver_sm(&parts[0])?;
//! let mut r = Reassembler::new(ReassemblyConfig::default());
//! let Ok(PartOutcome::Complete(m)) = r.handle_part(Instant::now(), part) else { panic!() };
//! let features = MessageFeatures::of(&m, &parts[0].tlvs);
//! assert_eq!(features.kind(), Feature::WapPushSl);
//! assert_eq!(features.url(), Some("https://example.com/app"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::broadcast::BillingIdentification;
use super::mwi::MessageWaiting;
use super::reassembly::ReassembledMessage;
use super::ussd::UssdServiceOp;
use super::wap::{decode_push, PushContent, WapPush, WapPushError, PORT_WAP_PUSH};
use crate::pdu::{ItsSessionInfo, Tlvs};

/// The main thing a message is, for a one-word summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Feature {
    /// A plain message (text or data).
    Message,
    /// A WAP push Service Indication.
    WapPushSi,
    /// A WAP push Service Loading.
    WapPushSl,
    /// An MMS notification (M-Notification.ind).
    MmsNotification,
    /// A WAP push of another content type.
    WapPush,
    /// Data on the WAP push port that does not decode.
    BadWapPush,
    /// A message waiting indication.
    MessageWaiting,
    /// A USSD operation.
    Ussd,
}

impl Feature {
    /// A short snake_case name (`wap_push_si`, `mms_notification`, `mwi`, `ussd`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Feature::Message => "message",
            Feature::WapPushSi => "wap_push_si",
            Feature::WapPushSl => "wap_push_sl",
            Feature::MmsNotification => "mms_notification",
            Feature::WapPush => "wap_push",
            Feature::BadWapPush => "bad_wap_push",
            Feature::MessageWaiting => "mwi",
            Feature::Ussd => "ussd",
        }
    }
}

/// The USSD part of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UssdInfo {
    /// `ussd_service_op`.
    pub op: UssdServiceOp,
    /// `its_session_info`, when present.
    pub session: Option<ItsSessionInfo>,
}

/// Everything recognised in one received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFeatures {
    /// A WAP push (the user data is on the WAP push port): decoded, or why it did not.
    pub push: Option<Result<WapPush, WapPushError>>,
    /// Message waiting indications (UDH, TLV or data_coding).
    pub message_waiting: Vec<MessageWaiting>,
    /// The USSD operation, when the message is one.
    pub ussd: Option<UssdInfo>,
    /// `billing_identification` (v5.0).
    pub billing: Option<BillingIdentification>,
}

impl MessageFeatures {
    /// Reads a (reassembled) message and the TLVs of the PDU that carried it (for a
    /// long message, any part's: the features' TLVs are repeated in every part).
    pub fn of(message: &ReassembledMessage, tlvs: &Tlvs) -> MessageFeatures {
        let payload = message.payload();
        // The WDP ports are in the UDH, or (data_sm, payload-mode submits) in the
        // source_port/destination_port TLVs.
        let push = match WapPush::from_user_data(message.udh.as_ref(), &payload) {
            Ok(None) if tlvs.destination_port() == Some(PORT_WAP_PUSH) => {
                decode_push(&payload).map(Some)
            }
            other => other,
        };
        MessageFeatures {
            push: push.transpose(),
            message_waiting: MessageWaiting::from_parts(
                message.data_coding.0,
                message.udh.as_ref(),
                tlvs,
            ),
            ussd: tlvs.ussd_service_op().map(|op| UssdInfo {
                op: UssdServiceOp::from_u8(op),
                session: tlvs.its_session_info(),
            }),
            billing: BillingIdentification::from_tlvs(tlvs),
        }
    }

    /// The main feature: a push first, then USSD, then MWI, else a plain message.
    pub fn kind(&self) -> Feature {
        match &self.push {
            Some(Ok(p)) => match p.content {
                PushContent::ServiceIndication(_) => Feature::WapPushSi,
                PushContent::ServiceLoading(_) => Feature::WapPushSl,
                PushContent::MmsNotification(_) => Feature::MmsNotification,
                _ => Feature::WapPush,
            },
            Some(Err(_)) => Feature::BadWapPush,
            None if self.ussd.is_some() => Feature::Ussd,
            None if !self.message_waiting.is_empty() => Feature::MessageWaiting,
            None => Feature::Message,
        }
    }

    /// The URL a push points at (SI/SL href, MMS content location).
    pub fn url(&self) -> Option<&str> {
        self.push.as_ref()?.as_ref().ok()?.url()
    }

    /// Whether the message's user data is text to show (not a push).
    pub fn has_text(&self) -> bool {
        self.push.is_none()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::message::mms::{MmsExpiry, MmsNotification};
    use crate::message::mwi::MwiKind;
    use crate::message::ussd::UssdPhone;
    use crate::message::{
        IncomingPart, PartOutcome, Reassembler, ReassemblyConfig, ReferenceCounter, ShortMessage,
    };
    use crate::pdu::SubmitSm;

    /// Every part through a reassembler, as a receiver sees them.
    fn received(parts: &[SubmitSm]) -> MessageFeatures {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        #[allow(clippy::disallowed_methods)] // a test epoch; only differences matter
        let now = Instant::now();
        for p in parts {
            let part = IncomingPart::from_deliver_sm(p).unwrap();
            if let Ok(PartOutcome::Complete(m)) = r.handle_part(now, part) {
                return MessageFeatures::of(&m, &p.tlvs);
            }
        }
        panic!("incomplete");
    }

    #[test]
    fn each_feature_is_recognised_from_what_arrives() {
        let mut refs = ReferenceCounter::new(3);
        let mut mms = MmsNotification::new("t1", "http://mmsc/x", 5000, MmsExpiry::Relative(60));
        mms.subject = Some("s".repeat(150));
        let parts = mms.to_short_message(4).unwrap().build(&mut refs).unwrap();
        assert!(parts.len() > 1);
        let f = received(&parts);
        assert_eq!(f.kind(), Feature::MmsNotification);
        assert_eq!(f.url(), Some("http://mmsc/x"));

        let mwi = MessageWaiting::set(MwiKind::Voicemail, 7);
        let f = received(&mwi.to_short_message("").build(&mut refs).unwrap());
        assert_eq!(f.kind(), Feature::MessageWaiting);
        assert_eq!(f.message_waiting, vec![mwi]);

        let (_, dial) = UssdPhone::dial("4477", "123", 1, "*123#").unwrap();
        let f = received(&dial.to_short_message().build(&mut refs).unwrap());
        assert_eq!(f.kind(), Feature::Ussd);
        assert_eq!(f.ussd.unwrap().op, UssdServiceOp::PssrIndication);

        let billing = BillingIdentification {
            format: 0x80,
            data: bytes::Bytes::from_static(b"\x01\x02"),
        };
        let mut parts = ShortMessage::text("hi").build(&mut refs).unwrap();
        billing.set_in(&mut parts[0].tlvs).unwrap();
        let f = received(&parts);
        assert_eq!((f.kind(), &f.billing), (Feature::Message, &Some(billing)));
        assert!(f.has_text());

        // Ports in TLVs instead of a UDH (a data_sm's way).
        let sl = crate::message::wap::ServiceLoading {
            href: "http://tlv.example/".into(),
            action: None,
        };
        let mut parts = ShortMessage::binary(sl.to_wsp_push(1).unwrap(), 0x04.into())
            .build(&mut refs)
            .unwrap();
        parts[0]
            .tlvs
            .set(
                crate::pdu::TlvTag::DESTINATION_PORT,
                &PORT_WAP_PUSH.to_be_bytes(),
            )
            .unwrap();
        assert_eq!(received(&parts).url(), Some("http://tlv.example/"));

        // Garbage on the push port is recognised as a bad push, not as text.
        let mut bad = crate::message::wap::ServiceLoading::default()
            .to_short_message(1)
            .unwrap()
            .build(&mut refs)
            .unwrap();
        let sm = bad[0].short_message.to_vec();
        bad[0].short_message = bytes::Bytes::from(sm[..sm.len() - 3].to_vec());
        assert_eq!(received(&bad).kind(), Feature::BadWapPush);
    }
}
