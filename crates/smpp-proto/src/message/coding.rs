//! `data_coding` (SMPP §6.8 of our reference; GSM coding groups of 3GPP TS 23.038 §4) and
//! text decoding driven by it.

use bytes::Bytes;

use super::charsets::Charset;
use super::gsm7::{self, Gsm7Alphabet};
use super::mwi::MwiIndication;
use super::ucs2;
use super::udh::{UdhError, UserDataHeader};

/// The SMPP `data_coding` octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DataCoding(pub u8);

impl DataCoding {
    /// 0x00: SMSC default alphabet (v5.0: "MC specific"); usually GSM 7-bit.
    pub const SMSC_DEFAULT: DataCoding = DataCoding(0x00);
    /// 0x01: IA5 (CCITT T.50) / ASCII.
    pub const IA5: DataCoding = DataCoding(0x01);
    /// 0x02: octet unspecified (8-bit binary), TDMA/CDMA.
    pub const OCTET_UNSPECIFIED_2: DataCoding = DataCoding(0x02);
    /// 0x03: Latin-1 (ISO-8859-1).
    pub const LATIN1: DataCoding = DataCoding(0x03);
    /// 0x04: octet unspecified (8-bit binary), all technologies.
    pub const BINARY: DataCoding = DataCoding(0x04);
    /// 0x05: JIS (X 0208-1990).
    pub const JIS: DataCoding = DataCoding(0x05);
    /// 0x06: Cyrillic (ISO-8859-5).
    pub const CYRILLIC: DataCoding = DataCoding(0x06);
    /// 0x07: Latin/Hebrew (ISO-8859-8).
    pub const LATIN_HEBREW: DataCoding = DataCoding(0x07);
    /// 0x08: UCS-2 (UTF-16BE in practice).
    pub const UCS2: DataCoding = DataCoding(0x08);
    /// 0x09: pictogram encoding.
    pub const PICTOGRAM: DataCoding = DataCoding(0x09);
    /// 0x0A: ISO-2022-JP (music codes).
    pub const ISO_2022_JP: DataCoding = DataCoding(0x0A);
    /// 0x0D: extended Kanji JIS (X 0212-1990).
    pub const EXTENDED_KANJI_JIS: DataCoding = DataCoding(0x0D);
    /// 0x0E: KS C 5601.
    pub const KS_C_5601: DataCoding = DataCoding(0x0E);
    /// 0x10: GSM 7-bit, class 0 ("flash").
    pub const GSM7_FLASH: DataCoding = DataCoding(0x10);
    /// 0x18: UCS-2, class 0 ("flash").
    pub const UCS2_FLASH: DataCoding = DataCoding(0x18);
    /// 0xF1: GSM 7-bit, class 1 (some SMSCs require it instead of 0x00).
    pub const GSM7_CLASS1: DataCoding = DataCoding(0xF1);
    /// 0xF6: 8-bit data, class 2 (SIM data download with PID 0x7F).
    pub const BINARY_CLASS2: DataCoding = DataCoding(0xF6);

    /// The raw octet.
    pub const fn value(self) -> u8 {
        self.0
    }

    /// The alphabet this value selects. SMPP values 0x00–0x0F take precedence; 0x10–0x7F and
    /// 0xC0–0xFF follow the GSM coding groups, which is what SMSCs apply in practice.
    pub const fn alphabet(self) -> Alphabet {
        match self.0 {
            0x00 => Alphabet::SmscDefault,
            0x01 => Alphabet::Ia5,
            0x02 | 0x04 => Alphabet::Binary,
            0x03 => Alphabet::Latin1,
            0x05 => Alphabet::Jis,
            0x06 => Alphabet::Cyrillic,
            0x07 => Alphabet::LatinHebrew,
            0x08 => Alphabet::Ucs2,
            0x09 => Alphabet::Pictogram,
            0x0A => Alphabet::Iso2022Jp,
            0x0D => Alphabet::ExtendedKanjiJis,
            0x0E => Alphabet::KsC5601,
            0x0B | 0x0C | 0x0F => Alphabet::Reserved,
            0x10..=0x7F => match (self.0 >> 2) & 0x03 {
                0 => Alphabet::Gsm7,
                1 => Alphabet::Binary,
                2 => Alphabet::Ucs2,
                _ => Alphabet::Reserved,
            },
            0x80..=0xBF => Alphabet::Reserved,
            0xC0..=0xDF => Alphabet::Gsm7,
            0xE0..=0xEF => Alphabet::Ucs2,
            _ => {
                if self.0 & 0x04 == 0 {
                    Alphabet::Gsm7
                } else {
                    Alphabet::Binary
                }
            }
        }
    }

    /// The message class, when the value carries one (GSM general groups with bit 4 set, and
    /// the 0xF0–0xFF group).
    pub const fn message_class(self) -> Option<MessageClass> {
        let has_class = matches!(self.0, 0x10..=0x7F if self.0 & 0x10 != 0) || self.0 >= 0xF0;
        if has_class {
            Some(MessageClass::from_bits(self.0))
        } else {
            None
        }
    }

    /// GSM general group with bit 5 set: the text is compressed (TS 23.042), which this
    /// crate does not decode.
    pub const fn is_compressed(self) -> bool {
        matches!(self.0, 0x20..=0x3F | 0x60..=0x7F)
    }

    /// GSM group 01xx: "marked for automatic deletion".
    pub const fn is_auto_delete(self) -> bool {
        matches!(self.0, 0x40..=0x7F)
    }

    /// The message waiting indication of the MWI groups 0xC0–0xEF.
    pub fn mwi(self) -> Option<MwiIndication> {
        MwiIndication::from_data_coding(self.0)
    }

    /// A general-group value (0x10–0x1F) with a message class.
    #[must_use]
    pub const fn with_class(alphabet: ClassAlphabet, class: MessageClass) -> DataCoding {
        DataCoding(0x10 | ((alphabet as u8) << 2) | class as u8)
    }
}

impl From<u8> for DataCoding {
    fn from(v: u8) -> Self {
        DataCoding(v)
    }
}

impl From<DataCoding> for u8 {
    fn from(v: DataCoding) -> Self {
        v.0
    }
}

/// Alphabet selected by a [`DataCoding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Alphabet {
    /// 0x00: the SMSC default alphabet; see [`SmscDefaultAlphabet`].
    SmscDefault,
    /// GSM 7-bit default alphabet (GSM coding groups).
    Gsm7,
    /// IA5 / ASCII.
    Ia5,
    /// 8-bit binary data.
    Binary,
    /// ISO-8859-1.
    Latin1,
    /// JIS X 0208 (not decoded by this crate).
    Jis,
    /// ISO-8859-5.
    Cyrillic,
    /// ISO-8859-8.
    LatinHebrew,
    /// UCS-2 / UTF-16BE.
    Ucs2,
    /// Pictogram (not decoded by this crate).
    Pictogram,
    /// ISO-2022-JP (not decoded by this crate).
    Iso2022Jp,
    /// JIS X 0212 (not decoded by this crate).
    ExtendedKanjiJis,
    /// KS C 5601 (not decoded by this crate).
    KsC5601,
    /// Reserved value.
    Reserved,
}

/// Alphabet bits of the GSM general data coding group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClassAlphabet {
    /// GSM 7-bit.
    Gsm7 = 0,
    /// 8-bit data.
    Binary = 1,
    /// UCS-2.
    Ucs2 = 2,
}

/// GSM message class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageClass {
    /// Class 0: display immediately ("flash").
    Class0 = 0,
    /// Class 1: ME-specific.
    Class1 = 1,
    /// Class 2: (U)SIM-specific.
    Class2 = 2,
    /// Class 3: TE-specific.
    Class3 = 3,
}

impl MessageClass {
    const fn from_bits(v: u8) -> Self {
        match v & 0x03 {
            0 => Self::Class0,
            1 => Self::Class1,
            2 => Self::Class2,
            _ => Self::Class3,
        }
    }
}

/// What `data_coding` 0x00 means on a connection (SMSC-configurable in practice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SmscDefaultAlphabet {
    /// GSM 7-bit, one septet per octet (the common SMPP form).
    #[default]
    Gsm7Unpacked,
    /// GSM 7-bit, packed.
    Gsm7Packed,
    /// ISO-8859-1.
    Latin1,
    /// IA5 / ASCII.
    Ascii,
}

/// Options for decoding user data to text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecodeOptions {
    /// Meaning of `data_coding` 0x00.
    pub smsc_default: SmscDefaultAlphabet,
    /// GSM coding-group values (e.g. 0xF0, 0x10) carry packed septets rather than one per
    /// octet. Default `false`, as SMPP peers normally send unpacked septets.
    pub gsm7_packed: bool,
    /// Treat `data_coding` 0x01 (IA5) as GSM 7-bit unpacked (a common misuse).
    pub ia5_is_gsm7: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            smsc_default: SmscDefaultAlphabet::Gsm7Unpacked,
            gsm7_packed: false,
            ia5_is_gsm7: false,
        }
    }
}

/// Why user data could not be turned into text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The data coding says binary data, not text.
    #[error("data_coding 0x{0:02X} carries binary data, not text")]
    Binary(u8),
    /// Compressed text (TS 23.042) is not supported.
    #[error("data_coding 0x{0:02X} marks compressed text, which is not supported")]
    Compressed(u8),
    /// The alphabet is valid but not implemented (JIS, pictogram, KS C 5601, …) or reserved.
    #[error("data_coding 0x{0:02X} selects an unsupported alphabet")]
    Unsupported(u8),
    /// UDHI was set but the UDH is malformed.
    #[error("bad user data header: {0}")]
    Udh(#[from] UdhError),
}

/// How the septets of GSM text are laid out in the octets handed to the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gsm7Layout {
    Unpacked,
    Packed,
}

/// Decodes `text_bytes` (user data with any UDH already removed) as text.
///
/// `alphabet` selects the GSM national tables (from the UDH, or [`Gsm7Alphabet::DEFAULT`]);
/// `fill_bits` is used only for packed GSM 7-bit that follows a UDH.
pub fn decode_text_with(
    data_coding: DataCoding,
    text_bytes: &[u8],
    options: &DecodeOptions,
    alphabet: Gsm7Alphabet,
    fill_bits: u8,
) -> Result<String, DecodeError> {
    let dc = data_coding.0;
    if data_coding.is_compressed() {
        return Err(DecodeError::Compressed(dc));
    }
    let gsm = |layout: Gsm7Layout| match layout {
        Gsm7Layout::Unpacked => alphabet.decode(text_bytes),
        Gsm7Layout::Packed => alphabet.decode(&gsm7::unpack(text_bytes, fill_bits, None)),
    };
    let packed_groups = if options.gsm7_packed {
        Gsm7Layout::Packed
    } else {
        Gsm7Layout::Unpacked
    };
    Ok(match data_coding.alphabet() {
        Alphabet::SmscDefault => match options.smsc_default {
            SmscDefaultAlphabet::Gsm7Unpacked => gsm(Gsm7Layout::Unpacked),
            SmscDefaultAlphabet::Gsm7Packed => gsm(Gsm7Layout::Packed),
            SmscDefaultAlphabet::Latin1 => Charset::Latin1.decode(text_bytes),
            SmscDefaultAlphabet::Ascii => Charset::Ascii.decode(text_bytes),
        },
        Alphabet::Gsm7 => gsm(packed_groups),
        Alphabet::Ia5 if options.ia5_is_gsm7 => gsm(Gsm7Layout::Unpacked),
        Alphabet::Ia5 => Charset::Ascii.decode(text_bytes),
        Alphabet::Latin1 => Charset::Latin1.decode(text_bytes),
        Alphabet::Cyrillic => Charset::Cyrillic.decode(text_bytes),
        Alphabet::LatinHebrew => Charset::Hebrew.decode(text_bytes),
        Alphabet::Ucs2 => ucs2::decode(text_bytes),
        Alphabet::Binary => return Err(DecodeError::Binary(dc)),
        _ => return Err(DecodeError::Unsupported(dc)),
    })
}

/// Decodes user data without a UDH as text with the default GSM tables.
pub fn decode_text(
    data_coding: DataCoding,
    text_bytes: &[u8],
    options: &DecodeOptions,
) -> Result<String, DecodeError> {
    decode_text_with(data_coding, text_bytes, options, Gsm7Alphabet::DEFAULT, 0)
}

/// Decoded content of one `short_message` / `message_payload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedUserData {
    /// The UDH, when `esm_class` had UDHI set.
    pub udh: Option<UserDataHeader>,
    /// The content after the UDH.
    pub content: Content,
}

/// Text or binary content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Decoded text.
    Text(String),
    /// Binary data (data coding 8-bit), passed through.
    Binary(Bytes),
}

/// Decodes a whole `short_message`: strips the UDH when `esm_class` has UDHI (0x40), applies
/// its national language IEs and fill bits, and decodes the rest per `data_coding`.
/// Binary data codings yield [`Content::Binary`].
pub fn decode_user_data(
    data_coding: DataCoding,
    esm_class: u8,
    user_data: &Bytes,
    options: &DecodeOptions,
) -> Result<DecodedUserData, DecodeError> {
    let (udh, rest, udh_len) = if esm_class & 0x40 != 0 {
        let (udh, len) = UserDataHeader::parse(user_data)?;
        (Some(udh), user_data.slice(len..), len)
    } else {
        (None, user_data.clone(), 0)
    };
    let alphabet = udh
        .as_ref()
        .map_or(Gsm7Alphabet::DEFAULT, UserDataHeader::gsm7_alphabet);
    let content = match decode_text_with(
        data_coding,
        &rest,
        options,
        alphabet,
        gsm7::fill_bits(udh_len),
    ) {
        Ok(text) => Content::Text(text),
        Err(DecodeError::Binary(_)) => Content::Binary(rest),
        Err(e) => return Err(e),
    };
    Ok(DecodedUserData { udh, content })
}
