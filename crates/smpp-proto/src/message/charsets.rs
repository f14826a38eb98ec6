//! Single-octet character sets: IA5/ASCII (`data_coding` 0x01), Latin-1 (0x03),
//! ISO-8859-5 Cyrillic (0x06) and ISO-8859-8 Latin/Hebrew (0x07).
//!
//! Decoding never fails: octets a set leaves undefined become U+FFFD. Encoding reports the
//! first unrepresentable character.

/// A single-octet character set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Charset {
    /// IA5 / US-ASCII (7-bit; octets above 0x7F are invalid).
    Ascii,
    /// ISO-8859-1.
    Latin1,
    /// ISO-8859-5 (Cyrillic).
    Cyrillic,
    /// ISO-8859-8 (Latin/Hebrew).
    Hebrew,
}

/// A character that a [`Charset`] cannot represent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("character {character:?} at char index {index} is not representable in {charset:?}")]
pub struct CharsetEncodeError {
    /// The target set.
    pub charset: Charset,
    /// The offending character.
    pub character: char,
    /// Its index, counted in `char`s.
    pub index: usize,
}

impl Charset {
    /// Maps one octet to a character (`None` where the set has no character).
    pub fn decode_byte(self, b: u8) -> Option<char> {
        if b < 0x80 {
            return Some(char::from(b));
        }
        let cp: u32 = match self {
            Charset::Ascii => return None,
            Charset::Latin1 => u32::from(b),
            Charset::Cyrillic => match b {
                0x80..=0xA0 | 0xAD => u32::from(b),
                0xF0 => 0x2116,
                0xFD => 0x00A7,
                // 0xA1..=0xFF minus the above map linearly onto U+0401..U+045F.
                _ => u32::from(b) - 0xA0 + 0x0400,
            },
            Charset::Hebrew => match b {
                0x80..=0xA0 | 0xA2..=0xA9 | 0xAB..=0xB9 | 0xBB..=0xBE => u32::from(b),
                0xAA => 0x00D7,
                0xBA => 0x00F7,
                0xDF => 0x2017,
                0xE0..=0xFA => u32::from(b) - 0xE0 + 0x05D0,
                0xFD => 0x200E,
                0xFE => 0x200F,
                _ => return None,
            },
        };
        char::from_u32(cp)
    }

    /// Maps one character to an octet.
    pub fn encode_char(self, c: char) -> Option<u8> {
        let cp = u32::from(c);
        if cp < 0x80 {
            return Some(cp as u8);
        }
        match self {
            Charset::Ascii => None,
            Charset::Latin1 => u8::try_from(cp).ok(),
            Charset::Cyrillic => match cp {
                0x80..=0xA0 | 0xAD => Some(cp as u8),
                0x2116 => Some(0xF0),
                0x00A7 => Some(0xFD),
                0x0401..=0x045F if cp != 0x040D && cp != 0x0450 && cp != 0x045D => {
                    Some((cp - 0x0400 + 0xA0) as u8)
                }
                _ => None,
            },
            Charset::Hebrew => match cp {
                0x80..=0xA0 | 0xA2..=0xA9 | 0xAB..=0xB9 | 0xBB..=0xBE => Some(cp as u8),
                0x00D7 => Some(0xAA),
                0x00F7 => Some(0xBA),
                0x2017 => Some(0xDF),
                0x05D0..=0x05EA => Some((cp - 0x05D0 + 0xE0) as u8),
                0x200E => Some(0xFD),
                0x200F => Some(0xFE),
                _ => None,
            },
        }
    }

    /// Decodes octets; undefined octets become U+FFFD.
    pub fn decode(self, data: &[u8]) -> String {
        data.iter()
            .map(|&b| self.decode_byte(b).unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    }

    /// Encodes `text`, failing on the first unrepresentable character.
    pub fn encode(self, text: &str) -> Result<Vec<u8>, CharsetEncodeError> {
        text.chars()
            .enumerate()
            .map(|(index, character)| {
                self.encode_char(character).ok_or(CharsetEncodeError {
                    charset: self,
                    character,
                    index,
                })
            })
            .collect()
    }

    /// Encodes `text`, replacing unrepresentable characters with `'?'`.
    pub fn encode_lossy(self, text: &str) -> Vec<u8> {
        text.chars()
            .map(|c| self.encode_char(c).unwrap_or(b'?'))
            .collect()
    }

    /// Whether every character of `text` is representable.
    pub fn can_encode(self, text: &str) -> bool {
        text.chars().all(|c| self.encode_char(c).is_some())
    }
}
