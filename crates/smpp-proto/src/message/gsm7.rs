//! GSM 7-bit alphabet (3GPP TS 23.038 §6.2.1): septet encoding/decoding with the default
//! alphabet, its extension table and the national language shift tables, plus 7-bit packing
//! with fill bits (TS 23.040 §9.2.3.24) and CR padding (TS 23.038 §6.1.2.3.1).
//!
//! "Unpacked" means one septet per octet, the usual form of `short_message` over SMPP.

use super::national::{default_base, CodeTable, NationalLanguage};
use super::udh::InformationElement;

/// The escape septet that switches to the single shift (extension) table for one character.
pub const ESCAPE: u8 = 0x1B;

/// Carriage return septet, used for padding (TS 23.038 §6.1.2.3.1).
const CR: u8 = 0x0D;

/// A character that the selected GSM tables cannot represent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "character {character:?} at char index {index} is not representable in the GSM 7-bit alphabet"
)]
pub struct Gsm7EncodeError {
    /// The offending character.
    pub character: char,
    /// Its index in the text, counted in `char`s.
    pub index: usize,
}

/// A GSM 7-bit character set: a locking shift table (the base table) and a single shift table.
///
/// [`Gsm7Alphabet::DEFAULT`] is the GSM default alphabet with the default extension table.
/// Spanish has no locking shift table, so `Spanish` is only valid as the single shift language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Gsm7Alphabet {
    locking: NationalLanguage,
    single_shift: NationalLanguage,
}

impl Gsm7Alphabet {
    /// The GSM default alphabet and default extension table.
    pub const DEFAULT: Gsm7Alphabet = Gsm7Alphabet {
        locking: NationalLanguage::Default,
        single_shift: NationalLanguage::Default,
    };

    /// Combines a locking shift and a single shift language; `None` if `locking` has no
    /// locking shift table (Spanish).
    pub const fn new(locking: NationalLanguage, single_shift: NationalLanguage) -> Option<Self> {
        if locking.has_locking_shift() {
            Some(Gsm7Alphabet {
                locking,
                single_shift,
            })
        } else {
            None
        }
    }

    /// Builds the alphabet from the language ids of UDH IEs 0x25 (locking) and 0x24 (single).
    ///
    /// Per TS 23.038 §6.2.1.2.4 a reserved or unsupported id falls back to the default table.
    pub fn from_language_ids(locking: Option<u8>, single_shift: Option<u8>) -> Self {
        let locking = locking
            .and_then(NationalLanguage::from_id)
            .filter(|l| l.has_locking_shift())
            .unwrap_or_default();
        let single_shift = single_shift
            .and_then(NationalLanguage::from_id)
            .unwrap_or_default();
        Gsm7Alphabet {
            locking,
            single_shift,
        }
    }

    /// The locking shift (base table) language.
    pub const fn locking(&self) -> NationalLanguage {
        self.locking
    }

    /// The single shift (extension table) language.
    pub const fn single_shift(&self) -> NationalLanguage {
        self.single_shift
    }

    /// Whether this is the plain default alphabet (no national shift IE needed).
    pub fn is_default(&self) -> bool {
        *self == Self::DEFAULT
    }

    /// The UDH information elements announcing the tables (none for the default alphabet).
    pub fn information_elements(&self) -> Vec<InformationElement> {
        let mut ies = Vec::new();
        if self.single_shift != NationalLanguage::Default {
            ies.push(InformationElement::NationalSingleShift(
                self.single_shift.id(),
            ));
        }
        if self.locking != NationalLanguage::Default {
            ies.push(InformationElement::NationalLockingShift(self.locking.id()));
        }
        ies
    }

    /// Octets those IEs occupy in a UDH (3 per non-default table, not counting UDHL).
    pub fn udh_octets(&self) -> usize {
        3 * usize::from(self.single_shift != NationalLanguage::Default)
            + 3 * usize::from(self.locking != NationalLanguage::Default)
    }

    fn base(&self) -> &'static CodeTable {
        // `new`/`from_language_ids` guarantee a locking table exists; fall back defensively.
        self.locking.locking_table().unwrap_or(default_base())
    }

    fn shift(&self) -> &'static CodeTable {
        self.single_shift.single_shift_table()
    }

    /// How many septets `c` costs: 1 (base table), 2 (ESC + single shift table) or `None`.
    #[inline]
    pub fn char_septets(&self, c: char) -> Option<usize> {
        if self.base().code_of(c).is_some() {
            Some(1)
        } else if self.shift().code_of(c).is_some() {
            Some(2)
        } else {
            None
        }
    }

    /// Whether every character of `text` is representable.
    pub fn can_encode(&self, text: &str) -> bool {
        text.chars().all(|c| self.char_septets(c).is_some())
    }

    /// Number of septets `text` needs, or the first unrepresentable character.
    pub fn septet_count(&self, text: &str) -> Result<usize, Gsm7EncodeError> {
        let mut n = 0;
        for (index, character) in text.chars().enumerate() {
            n += self
                .char_septets(character)
                .ok_or(Gsm7EncodeError { character, index })?;
        }
        Ok(n)
    }

    /// Appends the septets of one character; `false` if it is unrepresentable.
    #[inline]
    pub(super) fn push_char(&self, c: char, out: &mut Vec<u8>) -> bool {
        if let Some(code) = self.base().code_of(c) {
            out.push(code);
            true
        } else if let Some(code) = self.shift().code_of(c) {
            out.push(ESCAPE);
            out.push(code);
            true
        } else {
            false
        }
    }

    /// Encodes `text` to unpacked septets (one per octet), appending to `out`.
    ///
    /// On error `out` may hold the septets of the characters before the offending one.
    pub fn encode_into(&self, text: &str, out: &mut Vec<u8>) -> Result<(), Gsm7EncodeError> {
        out.reserve(text.len());
        for (index, character) in text.chars().enumerate() {
            if !self.push_char(character, out) {
                return Err(Gsm7EncodeError { character, index });
            }
        }
        Ok(())
    }

    /// Encodes `text` to unpacked septets.
    pub fn encode(&self, text: &str) -> Result<Vec<u8>, Gsm7EncodeError> {
        let mut out = Vec::with_capacity(text.len());
        self.encode_into(text, &mut out)?;
        Ok(out)
    }

    /// Encodes `text`, replacing unrepresentable characters with `'?'`.
    pub fn encode_lossy(&self, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            if !self.push_char(c, &mut out) {
                out.push(b'?');
            }
        }
        out
    }

    /// Decodes unpacked septets. Never fails:
    ///
    /// * ESC followed by a code undefined in the single shift table gives the base-table
    ///   character of that code (TS 23.038 §6.2.1.1 note);
    /// * a lone trailing ESC, ESC ESC (reserved) and codes undefined in the base table give a
    ///   space;
    /// * octets above 0x7F are not septets and give U+FFFD.
    pub fn decode(&self, septets: &[u8]) -> String {
        let mut out = String::with_capacity(septets.len());
        self.decode_into(septets, &mut out);
        out
    }

    /// Like [`decode`](Self::decode), appending to `out`.
    pub fn decode_into(&self, septets: &[u8], out: &mut String) {
        let base = self.base();
        let shift = self.shift();
        let mut i = 0;
        while i < septets.len() {
            let s = septets[i];
            i += 1;
            if s > 0x7F {
                out.push(char::REPLACEMENT_CHARACTER);
            } else if s == ESCAPE {
                match septets.get(i) {
                    None => out.push(' '),
                    Some(&next) => {
                        i += 1;
                        if next > 0x7F {
                            out.push(' ');
                            out.push(char::REPLACEMENT_CHARACTER);
                        } else if next == ESCAPE {
                            out.push(' ');
                        } else {
                            let c = shift
                                .char_at(next)
                                .or_else(|| base.char_at(next))
                                .unwrap_or(' ');
                            out.push(c);
                        }
                    }
                }
            } else {
                out.push(base.char_at(s).unwrap_or(' '));
            }
        }
    }
}

/// Number of fill bits that align the first septet after a UDH of `udh_len` octets
/// (UDHL included) on a septet boundary: `(7 - (udh_len * 8) % 7) % 7` (TS 23.040 §9.2.3.24).
pub const fn fill_bits(udh_len: usize) -> u8 {
    ((7 - (udh_len * 8) % 7) % 7) as u8
}

/// Packs septets into octets, little-endian bitwise (TS 23.038 §6.1.2.1.1), after
/// `fill_bits` (0..=6) zero bits.
///
/// With `cr_padding`, when the last octet would have 7 spare bits they are filled with CR so
/// a receiver cannot mistake them for '@', and a final CR that ends on an octet boundary is
/// doubled (TS 23.038 §6.1.2.3.1; matters for USSD/CBS and for packed text over SMPP, where
/// no septet count travels with the octets).
/// Septet values above 0x7F are masked to 7 bits.
pub fn pack(septets: &[u8], fill_bits: u8, cr_padding: bool) -> Vec<u8> {
    let mut out = Vec::new();
    pack_into(septets, fill_bits, cr_padding, &mut out);
    out
}

/// Like [`pack`], appending to `out`.
pub fn pack_into(septets: &[u8], fill_bits: u8, cr_padding: bool, out: &mut Vec<u8>) {
    let fill = usize::from(fill_bits % 7);
    let mut bits = fill + septets.len() * 7;
    // A final CR ending exactly on an octet boundary gets a second CR, or a receiver
    // would strip it as padding (TS 23.038 §6.1.2.3.1).
    let extra_cr = cr_padding && bits % 8 == 0 && septets.last().map(|s| s & 0x7F) == Some(CR);
    if extra_cr {
        bits += 7;
    }
    let start = out.len();
    out.resize(start + bits.div_ceil(8), 0);
    let buf = &mut out[start..];
    let mut put = |pos: usize, septet: u8| {
        let s = u16::from(septet & 0x7F) << (pos % 8);
        let byte = pos / 8;
        if let Some(b) = buf.get_mut(byte) {
            *b |= s as u8;
        }
        if let Some(b) = buf.get_mut(byte + 1) {
            *b |= (s >> 8) as u8;
        }
    };
    for (i, &s) in septets.iter().enumerate() {
        put(fill + i * 7, s);
    }
    if extra_cr {
        put(bits - 7, CR);
    }
    if cr_padding && bits % 8 == 1 {
        put(bits, CR);
    }
}

/// Unpacks septets from packed octets, skipping `fill_bits` leading bits.
///
/// With `septet_count = Some(n)` at most `n` septets are returned (the TP-UDL tells how
/// many). With `None`, every complete septet is returned, except that a final CR occupying
/// exactly the 7 spare bits of the last octet is removed as padding (TS 23.038 §6.1.2.3.1).
pub fn unpack(packed: &[u8], fill_bits: u8, septet_count: Option<usize>) -> Vec<u8> {
    let fill = usize::from(fill_bits % 7);
    let available = (packed.len() * 8).saturating_sub(fill) / 7;
    let n = septet_count.map_or(available, |c| c.min(available));
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let pos = fill + i * 7;
        let byte = pos / 8;
        let lo = u16::from(packed.get(byte).copied().unwrap_or(0));
        let hi = u16::from(packed.get(byte + 1).copied().unwrap_or(0));
        out.push((((hi << 8 | lo) >> (pos % 8)) & 0x7F) as u8);
    }
    if septet_count.is_none()
        && (packed.len() * 8).saturating_sub(fill) % 7 == 0
        && out.last() == Some(&CR)
        && !packed.is_empty()
    {
        out.pop();
    }
    out
}

/// Decodes unpacked septets with the default alphabet (see [`Gsm7Alphabet::decode`]).
pub fn decode_unpacked(septets: &[u8]) -> String {
    Gsm7Alphabet::DEFAULT.decode(septets)
}

/// Encodes to unpacked septets with the default alphabet.
pub fn encode_unpacked(text: &str) -> Result<Vec<u8>, Gsm7EncodeError> {
    Gsm7Alphabet::DEFAULT.encode(text)
}

/// Encodes and packs with the default alphabet, no fill bits, with CR padding.
pub fn encode_packed(text: &str) -> Result<Vec<u8>, Gsm7EncodeError> {
    Ok(pack(&Gsm7Alphabet::DEFAULT.encode(text)?, 0, true))
}

/// Unpacks and decodes with the default alphabet, no fill bits, septet count unknown.
pub fn decode_packed(packed: &[u8]) -> String {
    Gsm7Alphabet::DEFAULT.decode(&unpack(packed, 0, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_bits_match_reference() {
        assert_eq!(fill_bits(6), 1);
        assert_eq!(fill_bits(7), 0);
        assert_eq!(fill_bits(12), 2);
        assert_eq!(fill_bits(0), 0);
    }

    #[test]
    fn cr_padding_only_with_seven_spare_bits() {
        // 7 septets = 49 bits -> 7 octets with 7 spare bits.
        let p = pack(&[0; 7], 0, true);
        assert_eq!(p.len(), 7);
        assert_eq!(p[6] >> 1, CR);
        assert_eq!(unpack(&p, 0, None), vec![0; 7]);
        let p = pack(&[0; 7], 0, false);
        assert_eq!(unpack(&p, 0, None).len(), 8);
    }
}
