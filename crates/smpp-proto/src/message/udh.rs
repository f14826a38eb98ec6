//! User Data Header (3GPP TS 23.040 §9.2.3.24): `UDHL` then information elements
//! `IEI | IEDL | data`.

use bytes::Bytes;

use super::gsm7::Gsm7Alphabet;

/// IEI 0x00: concatenated short message, 8-bit reference.
pub const IEI_CONCAT_8: u8 = 0x00;
/// IEI 0x01: special SMS message indication.
pub const IEI_SPECIAL_SMS_INDICATION: u8 = 0x01;
/// IEI 0x04: application port addressing, 8-bit ports.
pub const IEI_APP_PORT_8: u8 = 0x04;
/// IEI 0x05: application port addressing, 16-bit ports.
pub const IEI_APP_PORT_16: u8 = 0x05;
/// IEI 0x08: concatenated short message, 16-bit reference.
pub const IEI_CONCAT_16: u8 = 0x08;
/// IEI 0x24: national language single shift.
pub const IEI_NATIONAL_SINGLE_SHIFT: u8 = 0x24;
/// IEI 0x25: national language locking shift.
pub const IEI_NATIONAL_LOCKING_SHIFT: u8 = 0x25;

/// Why a UDH could not be parsed or built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UdhError {
    /// The user data is empty, so there is no UDHL octet.
    #[error("user data is empty, no UDHL")]
    Empty,
    /// `UDHL + 1` exceeds the user data length.
    #[error("UDHL {udhl} exceeds the {available} octets that follow it")]
    LengthOverrun {
        /// The UDHL value.
        udhl: u8,
        /// Octets available after UDHL.
        available: usize,
    },
    /// An information element's length runs past the end of the header.
    #[error("information element 0x{iei:02X} overruns the header")]
    ElementOverrun {
        /// The IEI of the broken element.
        iei: u8,
    },
    /// The elements do not fit in 255 octets.
    #[error("header of {0} octets does not fit UDHL")]
    TooLong(usize),
}

/// How a concatenated message announces its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConcatKind {
    /// UDH IE 0x00 (8-bit reference).
    Udh8,
    /// UDH IE 0x08 (16-bit reference).
    Udh16,
    /// SMPP `sar_msg_ref_num` / `sar_total_segments` / `sar_segment_seqnum` TLVs.
    Sar,
}

/// Concatenation parameters of one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConcatInfo {
    /// Reference number, constant over the parts of one message.
    pub reference: u16,
    /// Total number of parts (1..=255).
    pub total: u8,
    /// This part's number, starting at 1.
    pub seq: u8,
    /// Where the parameters came from.
    pub kind: ConcatKind,
}

/// One information element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InformationElement {
    /// IEI 0x00 concatenation with an 8-bit reference.
    Concat8 {
        /// Reference number.
        reference: u8,
        /// Total parts.
        total: u8,
        /// This part (from 1).
        seq: u8,
    },
    /// IEI 0x08 concatenation with a 16-bit reference.
    Concat16 {
        /// Reference number.
        reference: u16,
        /// Total parts.
        total: u8,
        /// This part (from 1).
        seq: u8,
    },
    /// IEI 0x01 special SMS message indication (see [`crate::message::mwi`]).
    SpecialSmsIndication {
        /// Octet 1: bit 7 store (1) / discard (0), bits 6-0 indication type.
        indication: u8,
        /// Octet 2: message count.
        count: u8,
    },
    /// IEI 0x04 application ports, 8-bit.
    AppPort8 {
        /// Destination port.
        destination: u8,
        /// Originator port.
        originator: u8,
    },
    /// IEI 0x05 application ports, 16-bit (WAP push: 2948 / 9200).
    AppPort16 {
        /// Destination port.
        destination: u16,
        /// Originator port.
        originator: u16,
    },
    /// IEI 0x24 national language single shift (language id).
    NationalSingleShift(u8),
    /// IEI 0x25 national language locking shift (language id).
    NationalLockingShift(u8),
    /// Any other element, or a known IEI with an unexpected length, kept raw.
    Other {
        /// The IEI.
        iei: u8,
        /// The element data (IEDL octets).
        data: Bytes,
    },
}

impl InformationElement {
    /// The IEI octet.
    pub fn iei(&self) -> u8 {
        match self {
            Self::Concat8 { .. } => IEI_CONCAT_8,
            Self::Concat16 { .. } => IEI_CONCAT_16,
            Self::SpecialSmsIndication { .. } => IEI_SPECIAL_SMS_INDICATION,
            Self::AppPort8 { .. } => IEI_APP_PORT_8,
            Self::AppPort16 { .. } => IEI_APP_PORT_16,
            Self::NationalSingleShift(_) => IEI_NATIONAL_SINGLE_SHIFT,
            Self::NationalLockingShift(_) => IEI_NATIONAL_LOCKING_SHIFT,
            Self::Other { iei, .. } => *iei,
        }
    }

    /// Encoded size: IEI + IEDL + data.
    pub fn encoded_len(&self) -> usize {
        2 + match self {
            Self::Concat8 { .. } => 3,
            Self::Concat16 { .. } => 4,
            Self::SpecialSmsIndication { .. } | Self::AppPort8 { .. } => 2,
            Self::AppPort16 { .. } => 4,
            Self::NationalSingleShift(_) | Self::NationalLockingShift(_) => 1,
            Self::Other { data, .. } => data.len(),
        }
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.iei());
        out.push((self.encoded_len() - 2).min(255) as u8);
        match self {
            Self::Concat8 {
                reference,
                total,
                seq,
            } => out.extend_from_slice(&[*reference, *total, *seq]),
            Self::Concat16 {
                reference,
                total,
                seq,
            } => {
                out.extend_from_slice(&reference.to_be_bytes());
                out.extend_from_slice(&[*total, *seq]);
            }
            Self::SpecialSmsIndication { indication, count } => {
                out.extend_from_slice(&[*indication, *count])
            }
            Self::AppPort8 {
                destination,
                originator,
            } => out.extend_from_slice(&[*destination, *originator]),
            Self::AppPort16 {
                destination,
                originator,
            } => {
                out.extend_from_slice(&destination.to_be_bytes());
                out.extend_from_slice(&originator.to_be_bytes());
            }
            Self::NationalSingleShift(id) | Self::NationalLockingShift(id) => out.push(*id),
            Self::Other { data, .. } => out.extend_from_slice(&data[..data.len().min(255)]),
        }
    }

    fn decode(iei: u8, data: &[u8]) -> Self {
        match (iei, data) {
            (IEI_CONCAT_8, &[reference, total, seq]) => Self::Concat8 {
                reference,
                total,
                seq,
            },
            (IEI_CONCAT_16, &[r0, r1, total, seq]) => Self::Concat16 {
                reference: u16::from_be_bytes([r0, r1]),
                total,
                seq,
            },
            (IEI_SPECIAL_SMS_INDICATION, &[indication, count]) => {
                Self::SpecialSmsIndication { indication, count }
            }
            (IEI_APP_PORT_8, &[destination, originator]) => Self::AppPort8 {
                destination,
                originator,
            },
            (IEI_APP_PORT_16, &[d0, d1, o0, o1]) => Self::AppPort16 {
                destination: u16::from_be_bytes([d0, d1]),
                originator: u16::from_be_bytes([o0, o1]),
            },
            (IEI_NATIONAL_SINGLE_SHIFT, &[id]) => Self::NationalSingleShift(id),
            (IEI_NATIONAL_LOCKING_SHIFT, &[id]) => Self::NationalLockingShift(id),
            _ => Self::Other {
                iei,
                data: Bytes::copy_from_slice(data),
            },
        }
    }
}

/// A parsed or to-be-built User Data Header.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct UserDataHeader {
    /// The information elements in wire order.
    pub elements: Vec<InformationElement>,
}

impl UserDataHeader {
    /// A header with the given elements.
    pub fn new(elements: Vec<InformationElement>) -> Self {
        UserDataHeader { elements }
    }

    /// Parses the UDH at the start of `user_data` (which must begin with UDHL).
    ///
    /// Returns the header and its total length in octets (UDHL included). Validates
    /// `UDHL + 1 <= user_data.len()` and that every IE lies within the header.
    pub fn parse(user_data: &[u8]) -> Result<(Self, usize), UdhError> {
        let (&udhl, rest) = user_data.split_first().ok_or(UdhError::Empty)?;
        let header = rest
            .get(..usize::from(udhl))
            .ok_or(UdhError::LengthOverrun {
                udhl,
                available: rest.len(),
            })?;
        let mut elements = Vec::new();
        let mut i = 0;
        while i < header.len() {
            let iei = header[i];
            let len = usize::from(*header.get(i + 1).ok_or(UdhError::ElementOverrun { iei })?);
            let data = header
                .get(i + 2..i + 2 + len)
                .ok_or(UdhError::ElementOverrun { iei })?;
            elements.push(InformationElement::decode(iei, data));
            i += 2 + len;
        }
        Ok((UserDataHeader { elements }, usize::from(udhl) + 1))
    }

    /// Splits `user_data` into its header and the rest, without copying the rest.
    pub fn split(user_data: &Bytes) -> Result<(Self, Bytes), UdhError> {
        let (udh, len) = Self::parse(user_data)?;
        Ok((udh, user_data.slice(len..)))
    }

    /// Encoded length including UDHL.
    pub fn encoded_len(&self) -> usize {
        1 + self
            .elements
            .iter()
            .map(InformationElement::encoded_len)
            .sum::<usize>()
    }

    /// Appends UDHL and the elements to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), UdhError> {
        let len = self.encoded_len();
        if len > 256 {
            return Err(UdhError::TooLong(len));
        }
        out.push((len - 1) as u8);
        for ie in &self.elements {
            ie.encode_into(out);
        }
        Ok(())
    }

    /// Encodes UDHL and the elements.
    pub fn encode(&self) -> Result<Vec<u8>, UdhError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// The concatenation IE (0x00 or 0x08), if any; the first one wins.
    pub fn concat(&self) -> Option<ConcatInfo> {
        self.elements.iter().find_map(|ie| match *ie {
            InformationElement::Concat8 {
                reference,
                total,
                seq,
            } => Some(ConcatInfo {
                reference: u16::from(reference),
                total,
                seq,
                kind: ConcatKind::Udh8,
            }),
            InformationElement::Concat16 {
                reference,
                total,
                seq,
            } => Some(ConcatInfo {
                reference,
                total,
                seq,
                kind: ConcatKind::Udh16,
            }),
            _ => None,
        })
    }

    /// Application ports `(destination, originator)` from IE 0x05 or 0x04.
    pub fn ports(&self) -> Option<(u16, u16)> {
        self.elements.iter().find_map(|ie| match *ie {
            InformationElement::AppPort16 {
                destination,
                originator,
            } => Some((destination, originator)),
            InformationElement::AppPort8 {
                destination,
                originator,
            } => Some((u16::from(destination), u16::from(originator))),
            _ => None,
        })
    }

    /// The GSM 7-bit tables selected by IEs 0x25 / 0x24 (default when absent or reserved).
    pub fn gsm7_alphabet(&self) -> Gsm7Alphabet {
        let mut locking = None;
        let mut single = None;
        for ie in &self.elements {
            match *ie {
                InformationElement::NationalLockingShift(id) => locking = Some(id),
                InformationElement::NationalSingleShift(id) => single = Some(id),
                _ => {}
            }
        }
        Gsm7Alphabet::from_language_ids(locking, single)
    }

    /// A copy without the concatenation IEs (what a reassembled message keeps).
    pub fn without_concat(&self) -> Self {
        UserDataHeader {
            elements: self
                .elements
                .iter()
                .filter(|ie| {
                    !matches!(
                        ie,
                        InformationElement::Concat8 { .. } | InformationElement::Concat16 { .. }
                    )
                })
                .cloned()
                .collect(),
        }
    }
}
