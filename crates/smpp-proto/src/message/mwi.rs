//! Message waiting indication: the `data_coding` MWI groups (TS 23.038 §4, groups 1100,
//! 1101, 1110), the `ms_msg_wait_facilities` TLV (0x0030) and the UDH special SMS
//! indication IE (0x01, TS 23.040 §9.2.3.24.2).

use super::udh::InformationElement;

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
