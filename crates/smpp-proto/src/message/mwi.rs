//! Message waiting indication: the `data_coding` MWI groups (TS 23.038 §4, groups 1100,
//! 1101, 1110), the `ms_msg_wait_facilities` TLV (0x0030) and the UDH special SMS
//! indication IE (0x01, TS 23.040 §9.2.3.24.2); [`MessageWaiting`] builds and reads them
//! together.
//!
//! ```
//! use smpp_proto::message::mwi::{MessageWaiting, MwiKind};
//! use smpp_proto::message::ReferenceCounter;
//!
//! let set = MessageWaiting::set(MwiKind::Voicemail, 3);
//! let parts = set.to_short_message("3 new voicemails").to("447700900123")
//!     .build(&mut ReferenceCounter::new(1))?;
//! assert_eq!(parts[0].data_coding, 0xD8); // store, GSM 7-bit, active, voicemail
//! let read = MessageWaiting::from_user_data(parts[0].data_coding, Some(&parts[0].short_message[..]), &parts[0].tlvs);
//! assert_eq!(read, vec![set]);
//! # Ok::<(), smpp_proto::message::BuildError>(())
//! ```

use super::coding::DataCoding;
use super::concat::SegmentationPolicy;
use super::short_message::ShortMessage;
use super::udh::{InformationElement, UserDataHeader};
use crate::pdu::Tlvs;

/// Which mailbox the indication is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MwiKind {
    /// Voicemail (00).
    Voicemail = 0,
    /// Fax (01).
    Fax = 1,
    /// E-mail (10).
    Email = 2,
    /// Other (11).
    Other = 3,
}

impl MwiKind {
    const fn from_bits(v: u8) -> Self {
        match v & 0x03 {
            0 => Self::Voicemail,
            1 => Self::Fax,
            2 => Self::Email,
            _ => Self::Other,
        }
    }
}

/// What the handset does with the message that carries the indication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MwiGroup {
    /// 0xC0–0xCF: discard the message, GSM 7-bit text.
    Discard,
    /// 0xD0–0xDF: store the message, GSM 7-bit text.
    StoreGsm7,
    /// 0xE0–0xEF: store the message, UCS-2 text (SMPP calls the range reserved).
    StoreUcs2,
}

/// A message waiting indication carried in `data_coding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MwiIndication {
    /// Discard or store, and the text alphabet.
    pub group: MwiGroup,
    /// Indication active (set) or inactive (clear).
    pub active: bool,
    /// Mailbox type.
    pub kind: MwiKind,
}

impl MwiIndication {
    /// Parses a `data_coding` octet of the MWI groups; `None` outside 0xC0–0xEF.
    pub const fn from_data_coding(dc: u8) -> Option<Self> {
        let group = match dc >> 4 {
            0xC => MwiGroup::Discard,
            0xD => MwiGroup::StoreGsm7,
            0xE => MwiGroup::StoreUcs2,
            _ => return None,
        };
        Some(MwiIndication {
            group,
            active: dc & 0x08 != 0,
            kind: MwiKind::from_bits(dc),
        })
    }

    /// The `data_coding` octet (bit 2 reserved, left 0).
    pub const fn to_data_coding(self) -> u8 {
        let group = match self.group {
            MwiGroup::Discard => 0xC0,
            MwiGroup::StoreGsm7 => 0xD0,
            MwiGroup::StoreUcs2 => 0xE0,
        };
        group | if self.active { 0x08 } else { 0 } | self.kind as u8
    }
}

/// The `ms_msg_wait_facilities` TLV value: `I00000TT` (bit 7 active, bits 1-0 kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MsMsgWaitFacilities {
    /// Set (true) or clear the indication.
    pub active: bool,
    /// Mailbox type.
    pub kind: MwiKind,
}

impl MsMsgWaitFacilities {
    /// Parses the TLV octet; reserved bits 6-2 are ignored.
    pub const fn from_byte(v: u8) -> Self {
        MsMsgWaitFacilities {
            active: v & 0x80 != 0,
            kind: MwiKind::from_bits(v),
        }
    }

    /// The TLV octet.
    pub const fn to_byte(self) -> u8 {
        (if self.active { 0x80 } else { 0 }) | self.kind as u8
    }
}

/// UDH IE 0x01 "special SMS message indication".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpecialSmsIndication {
    /// Bit 7 of octet 1: store (true) or discard the message.
    pub store: bool,
    /// Bits 1-0: voicemail, fax, e-mail, other/extended.
    pub kind: MwiKind,
    /// Bits 4-2: multiple subscriber profile (0..=3 used).
    pub profile: u8,
    /// Bits 6-5: extended message type (meaningful with kind `Other`).
    pub extended_type: u8,
    /// Number of waiting messages (0..=255; 255 means 255 or more).
    pub count: u8,
}

impl SpecialSmsIndication {
    /// Parses the two IE data octets.
    pub const fn from_octets(indication: u8, count: u8) -> Self {
        SpecialSmsIndication {
            store: indication & 0x80 != 0,
            kind: MwiKind::from_bits(indication),
            profile: (indication >> 2) & 0x07,
            extended_type: (indication >> 5) & 0x03,
            count,
        }
    }

    /// The IE data octet 1.
    pub const fn indication_octet(self) -> u8 {
        (if self.store { 0x80 } else { 0 })
            | ((self.extended_type & 0x03) << 5)
            | ((self.profile & 0x07) << 2)
            | self.kind as u8
    }

    /// As a UDH information element.
    pub const fn to_information_element(self) -> InformationElement {
        InformationElement::SpecialSmsIndication {
            indication: self.indication_octet(),
            count: self.count,
        }
    }
}

/// A message waiting indication as the handset shows it: a mailbox icon on or off, and
/// how many messages wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageWaiting {
    /// The indication is set (true) or cleared.
    pub active: bool,
    /// Which mailbox.
    pub kind: MwiKind,
    /// How many messages wait, when the message says (the UDH IE or the
    /// `number_of_messages` TLV); the `data_coding` groups carry no count.
    pub count: Option<u8>,
}

impl MessageWaiting {
    /// Sets the indication with `count` messages waiting.
    pub const fn set(kind: MwiKind, count: u8) -> Self {
        MessageWaiting {
            active: true,
            kind,
            count: Some(count),
        }
    }

    /// Clears the indication (no messages waiting).
    pub const fn clear(kind: MwiKind) -> Self {
        MessageWaiting {
            active: false,
            kind,
            count: Some(0),
        }
    }

    /// A [`ShortMessage`] carrying the indication both ways handsets read it: the
    /// `data_coding` MWI group (store the text when there is one, else discard) and the
    /// UDH special SMS indication with the count. Set its addresses and build it as any
    /// other; the text may be empty.
    pub fn to_short_message(&self, text: &str) -> ShortMessage {
        let group = |store| MwiIndication {
            group: if text.is_empty() {
                MwiGroup::Discard
            } else {
                store
            },
            active: self.active,
            kind: self.kind,
        };
        let count = if self.active {
            self.count.unwrap_or(1)
        } else {
            0
        };
        let udh = SpecialSmsIndication {
            store: !text.is_empty(),
            kind: self.kind,
            profile: 0,
            extended_type: 0,
            count,
        };
        let policy = SegmentationPolicy {
            gsm7_data_coding: DataCoding(group(MwiGroup::StoreGsm7).to_data_coding()),
            ucs2_data_coding: DataCoding(group(MwiGroup::StoreUcs2).to_data_coding()),
            extra_elements: vec![udh.to_information_element()],
            ..SegmentationPolicy::default()
        };
        ShortMessage::text(text).policy(policy)
    }

    /// The indications a received message carries: the UDH special SMS indication
    /// IEs (from `short_message` with its UDH, when given), else the
    /// `ms_msg_wait_facilities` TLV, else the `data_coding` group; the
    /// `number_of_messages` TLV supplies a count the others lack. Empty when there is
    /// none.
    pub fn from_user_data(
        data_coding: u8,
        user_data_with_udh: Option<&[u8]>,
        tlvs: &Tlvs,
    ) -> Vec<MessageWaiting> {
        let udh = user_data_with_udh.and_then(|d| UserDataHeader::parse(d).ok().map(|(u, _)| u));
        Self::from_parts(data_coding, udh.as_ref(), tlvs)
    }

    /// As [`from_user_data`](Self::from_user_data) with the UDH already parsed (a
    /// reassembled message's).
    pub fn from_parts(
        data_coding: u8,
        udh: Option<&UserDataHeader>,
        tlvs: &Tlvs,
    ) -> Vec<MessageWaiting> {
        let tlv_count = tlvs.number_of_messages();
        let mut out: Vec<MessageWaiting> = udh
            .map(|u| {
                u.elements
                    .iter()
                    .filter_map(|ie| match *ie {
                        InformationElement::SpecialSmsIndication { indication, count } => {
                            let s = SpecialSmsIndication::from_octets(indication, count);
                            Some(MessageWaiting {
                                active: s.count > 0,
                                kind: s.kind,
                                count: Some(s.count),
                            })
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if out.is_empty() {
            if let Some(v) = tlvs.ms_msg_wait_facilities() {
                let f = MsMsgWaitFacilities::from_byte(v);
                out.push(MessageWaiting {
                    active: f.active,
                    kind: f.kind,
                    count: tlv_count,
                });
            } else if let Some(i) = MwiIndication::from_data_coding(data_coding) {
                out.push(MessageWaiting {
                    active: i.active,
                    kind: i.kind,
                    count: tlv_count.or(if i.active { None } else { Some(0) }),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::ReferenceCounter;
    use crate::pdu::EsmClass;

    /// The UDH of `short_message` when `esm_class` says there is one.
    fn udh_of(esm_class: u8, short_message: &[u8]) -> Option<&[u8]> {
        EsmClass::from(esm_class).udhi().then_some(short_message)
    }

    #[test]
    fn set_and_clear_round_trip_through_submit_sm() {
        for (mwi, text) in [
            (
                MessageWaiting::set(MwiKind::Voicemail, 2),
                "2 new voicemails",
            ),
            (MessageWaiting::set(MwiKind::Fax, 255), ""),
            (MessageWaiting::clear(MwiKind::Voicemail), ""),
            (MessageWaiting::set(MwiKind::Email, 1), "Письмо"),
        ] {
            let parts = mwi
                .to_short_message(text)
                .to("447700900123")
                .build(&mut ReferenceCounter::new(1))
                .unwrap();
            assert_eq!(parts.len(), 1);
            let sm = &parts[0];
            let dc = MwiIndication::from_data_coding(sm.data_coding).unwrap();
            assert_eq!((dc.active, dc.kind), (mwi.active, mwi.kind));
            assert_eq!(dc.group == MwiGroup::Discard, text.is_empty());
            let udh = udh_of(sm.esm_class, &sm.short_message);
            assert!(udh.is_some());
            assert_eq!(
                MessageWaiting::from_user_data(sm.data_coding, udh, &sm.tlvs),
                vec![mwi]
            );
        }
    }

    #[test]
    fn the_tlvs_and_the_data_coding_alone_are_read_too() {
        let mut tlvs = Tlvs::new();
        assert!(MessageWaiting::from_user_data(0x00, None, &tlvs).is_empty());
        assert_eq!(
            MessageWaiting::from_user_data(0xC8, None, &tlvs),
            vec![MessageWaiting {
                active: true,
                kind: MwiKind::Voicemail,
                count: None
            }]
        );
        assert_eq!(
            MessageWaiting::from_user_data(0xD1, None, &tlvs),
            vec![MessageWaiting::clear(MwiKind::Fax)]
        );
        tlvs.set_u8(crate::pdu::TlvTag::MS_MSG_WAIT_FACILITIES, 0x80);
        tlvs.set_u8(crate::pdu::TlvTag::NUMBER_OF_MESSAGES, 4);
        assert_eq!(
            MessageWaiting::from_user_data(0x00, None, &tlvs),
            vec![MessageWaiting::set(MwiKind::Voicemail, 4)]
        );
    }
}
