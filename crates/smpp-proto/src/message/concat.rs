//! Choosing an encoding, counting segments and splitting long messages into parts.
//!
//! Capacities per part follow from the TP-User-Data limit (140 octets by default) minus the
//! UDH: GSM 7-bit `floor((limit − H) · 8 / 7)` septets (160, 153 with the 6-octet 8-bit
//! concat UDH, 152 with the 7-octet 16-bit one), 8-bit `limit − H` octets (140/134/133),
//! UCS-2 `floor((limit − H) / 2)` code units (70/67/66). A character is never split: a GSM
//! extension character (ESC + code, 2 septets) or a UTF-16 surrogate pair stays in one part.

use bytes::Bytes;

use super::charsets::{Charset, CharsetEncodeError};
use super::coding::DataCoding;
use super::gsm7::{self, Gsm7Alphabet, Gsm7EncodeError};
use super::national::NationalLanguage;
use super::ucs2;
use super::udh::{ConcatInfo, ConcatKind, InformationElement, UdhError, UserDataHeader};

/// Default TP-User-Data limit of one SMS in octets.
pub const MAX_USER_DATA: usize = 140;

/// A text encoding the segmenter can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextEncoding {
    /// GSM 7-bit with the given tables (national tables add UDH IEs 0x24/0x25).
    Gsm7(Gsm7Alphabet),
    /// UCS-2 / UTF-16BE.
    Ucs2,
    /// A single-octet character set (Latin-1, ASCII, Cyrillic, Hebrew).
    Charset(Charset),
}

/// The unit capacities are counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeUnit {
    /// GSM septets.
    Septet,
    /// Octets.
    Octet,
    /// UTF-16 code units (2 octets).
    Utf16,
}

impl TextEncoding {
    /// GSM 7-bit with the default alphabet and extension table (no national tables).
    pub const GSM7: TextEncoding = TextEncoding::Gsm7(Gsm7Alphabet::DEFAULT);
    /// ISO-8859-1 (`data_coding` 0x03).
    pub const LATIN1: TextEncoding = TextEncoding::Charset(Charset::Latin1);
    /// ISO-8859-5 Cyrillic (`data_coding` 0x06).
    pub const CYRILLIC: TextEncoding = TextEncoding::Charset(Charset::Cyrillic);
    /// ISO-8859-8 Latin/Hebrew (`data_coding` 0x07).
    pub const HEBREW: TextEncoding = TextEncoding::Charset(Charset::Hebrew);
    /// IA5 / ASCII (`data_coding` 0x01).
    pub const ASCII: TextEncoding = TextEncoding::Charset(Charset::Ascii);
    /// UCS-2 (`data_coding` 0x08).
    pub const UCS2: TextEncoding = TextEncoding::Ucs2;

    /// Whether every character of `text` is representable.
    pub fn can_encode(&self, text: &str) -> bool {
        text.chars().all(|c| self.cost(c).is_some())
    }

    /// The unit of [`cost`](Self::cost).
    pub fn unit(&self) -> CodeUnit {
        match self {
            Self::Gsm7(_) => CodeUnit::Septet,
            Self::Ucs2 => CodeUnit::Utf16,
            Self::Charset(_) => CodeUnit::Octet,
        }
    }

    /// Units one character costs, `None` if it cannot be represented.
    #[inline]
    pub fn cost(&self, c: char) -> Option<usize> {
        match self {
            Self::Gsm7(a) => a.char_septets(c),
            Self::Ucs2 => Some(c.len_utf16()),
            Self::Charset(cs) => cs.encode_char(c).map(|_| 1),
        }
    }

    /// The UDH IEs this encoding needs in every part (national language shifts).
    pub fn information_elements(&self) -> Vec<InformationElement> {
        match self {
            Self::Gsm7(a) => a.information_elements(),
            _ => Vec::new(),
        }
    }

    /// The `data_coding` to send, given the configured GSM and UCS-2 values.
    pub fn data_coding(&self, policy: &SegmentationPolicy) -> DataCoding {
        match self {
            Self::Gsm7(_) => policy.gsm7_data_coding,
            Self::Ucs2 => policy.ucs2_data_coding,
            Self::Charset(Charset::Ascii) => DataCoding::IA5,
            Self::Charset(Charset::Latin1) => DataCoding::LATIN1,
            Self::Charset(Charset::Cyrillic) => DataCoding::CYRILLIC,
            Self::Charset(Charset::Hebrew) => DataCoding::LATIN_HEBREW,
        }
    }

    /// Encodes `text` (GSM as unpacked septets), failing on unrepresentable characters.
    pub fn encode(&self, text: &str) -> Result<Vec<u8>, SegmentError> {
        let mut out = Vec::with_capacity(text.len());
        self.encode_into(text, &mut out)?;
        Ok(out)
    }

    /// Like [`encode`](Self::encode), appending to `out`.
    pub fn encode_into(&self, text: &str, out: &mut Vec<u8>) -> Result<(), SegmentError> {
        match self {
            Self::Gsm7(a) => a.encode_into(text, out)?,
            Self::Ucs2 => ucs2::encode_into(text, out),
            Self::Charset(cs) => out.extend_from_slice(&cs.encode(text)?),
        }
        Ok(())
    }
}

/// How long messages are split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConcatMode {
    /// UDH with IE 0x00 (8-bit reference): 153 / 134 / 67 per part.
    #[default]
    Udh8,
    /// UDH with IE 0x08 (16-bit reference): 152 / 133 / 66 per part.
    Udh16,
    /// No UDH; the caller sends `sar_*` TLVs from [`Segment::sar`]. The SMSC inserts the UDH,
    /// so [`SegmentationPolicy::sar_udh_reserve`] octets are kept free. National shift tables
    /// need a UDH and are therefore not used.
    Sar,
    /// One part carrying the whole text (for `message_payload`), up to
    /// [`SegmentationPolicy::max_payload`] octets.
    Payload,
}

/// Whether GSM 7-bit parts are sent one septet per octet or packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Gsm7Packing {
    /// One septet per octet (usual over SMPP; the SMSC packs).
    #[default]
    Unpacked,
    /// Packed with fill bits after the UDH and CR padding (peer must agree).
    Packed,
}

/// A set of national languages, used to enable shift tables in a [`SegmentationPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LanguageSet(u16);

impl LanguageSet {
    /// No language.
    pub const EMPTY: LanguageSet = LanguageSet(0);

    /// A set from a slice.
    pub fn from_languages(languages: &[NationalLanguage]) -> Self {
        let mut set = Self::EMPTY;
        for &l in languages {
            set = set.with(l);
        }
        set
    }

    /// This set plus `language`.
    #[must_use]
    pub const fn with(self, language: NationalLanguage) -> Self {
        LanguageSet(self.0 | 1 << language.id())
    }

    /// Whether `language` is in the set.
    pub const fn contains(self, language: NationalLanguage) -> bool {
        self.0 & (1 << language.id()) != 0
    }

    /// The languages in id order.
    pub fn iter(self) -> impl Iterator<Item = NationalLanguage> {
        NationalLanguage::ALL
            .into_iter()
            .filter(move |&l| self.contains(l))
    }
}

/// The single-octet character sets an SMSC accepts (its profile), used by the
/// automatic coding choice ([`SegmentationPolicy::charsets`]).
///
/// Empty by default: the choice is then GSM 7-bit or UCS-2, which every SMSC
/// takes. Add a set only when the SMSC (and the handsets behind it) handle it:
/// a text that GSM 7-bit cannot carry but Latin-1 (0x03), ISO-8859-5 Cyrillic
/// (0x06) or ISO-8859-8 Hebrew (0x07) can then goes in one octet per character
/// (140 per part) instead of UCS-2's two (70 per part).
///
/// ```
/// use smpp_proto::message::charsets::Charset;
/// use smpp_proto::message::concat::{choose_encoding, CharsetSet, SegmentationPolicy, TextEncoding};
///
/// let policy = SegmentationPolicy {
///     charsets: CharsetSet::EMPTY.with(Charset::Latin1).with(Charset::Cyrillic),
///     ..SegmentationPolicy::default()
/// };
/// // GSM 7-bit first whenever it can carry the text.
/// assert_eq!(choose_encoding("Grüße", &policy), TextEncoding::GSM7);
/// // "ê" has no GSM code: Latin-1 instead of UCS-2.
/// assert_eq!(choose_encoding("crêpe", &policy), TextEncoding::LATIN1);
/// assert_eq!(choose_encoding("Привет", &policy), TextEncoding::CYRILLIC);
/// // Nothing single-octet carries both: UCS-2.
/// assert_eq!(choose_encoding("crêpe Привет", &policy), TextEncoding::UCS2);
/// // Without a profile, UCS-2 as before.
/// assert_eq!(choose_encoding("crêpe", &SegmentationPolicy::default()), TextEncoding::UCS2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CharsetSet(u8);

impl CharsetSet {
    /// No character set (the default: GSM 7-bit or UCS-2 only).
    pub const EMPTY: CharsetSet = CharsetSet(0);

    const ORDER: [Charset; 4] = [
        Charset::Latin1,
        Charset::Cyrillic,
        Charset::Hebrew,
        Charset::Ascii,
    ];

    const fn bit(charset: Charset) -> u8 {
        match charset {
            Charset::Latin1 => 1,
            Charset::Cyrillic => 2,
            Charset::Hebrew => 4,
            Charset::Ascii => 8,
        }
    }

    /// A set from a slice.
    pub fn from_charsets(charsets: &[Charset]) -> Self {
        charsets.iter().fold(Self::EMPTY, |set, &c| set.with(c))
    }

    /// This set plus `charset`.
    #[must_use]
    pub const fn with(self, charset: Charset) -> Self {
        CharsetSet(self.0 | Self::bit(charset))
    }

    /// Whether `charset` is in the set.
    pub const fn contains(self, charset: Charset) -> bool {
        self.0 & Self::bit(charset) != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The sets in the order the automatic choice tries them: Latin-1,
    /// Cyrillic, Hebrew, ASCII.
    pub fn iter(self) -> impl Iterator<Item = Charset> {
        Self::ORDER.into_iter().filter(move |&c| self.contains(c))
    }
}

/// Configuration of encoding choice and segmentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentationPolicy {
    /// How long messages are split.
    pub mode: ConcatMode,
    /// TP-User-Data limit per part in octets, UDH included, measured as sent over the air
    /// (packed for GSM 7-bit). Default 140.
    pub max_user_data: usize,
    /// GSM 7-bit layout in the produced payload.
    pub gsm7_packing: Gsm7Packing,
    /// `data_coding` for GSM 7-bit text (0x00 by default; some SMSCs want 0xF1 or 0x01).
    pub gsm7_data_coding: DataCoding,
    /// `data_coding` for UCS-2 text (0x08 by default).
    pub ucs2_data_coding: DataCoding,
    /// Locking shift languages the choice may use (needs a UDH in every part).
    pub locking_shift: LanguageSet,
    /// Single shift languages the choice may use (needs a UDH in every part).
    pub single_shift: LanguageSet,
    /// Single-octet character sets the SMSC accepts, tried after GSM 7-bit and
    /// before UCS-2 (empty by default: see [`CharsetSet`]).
    pub charsets: CharsetSet,
    /// Extra IEs put in every part's UDH (e.g. application ports). Not allowed with SAR.
    pub extra_elements: Vec<InformationElement>,
    /// Octets kept free for the UDH the SMSC inserts in SAR mode (default 7: 16-bit concat).
    pub sar_udh_reserve: usize,
    /// Largest number of parts (at most 255).
    pub max_parts: u8,
    /// Octet limit of a single [`ConcatMode::Payload`] part.
    pub max_payload: usize,
}

impl Default for SegmentationPolicy {
    fn default() -> Self {
        SegmentationPolicy {
            mode: ConcatMode::Udh8,
            max_user_data: MAX_USER_DATA,
            gsm7_packing: Gsm7Packing::Unpacked,
            gsm7_data_coding: DataCoding::SMSC_DEFAULT,
            ucs2_data_coding: DataCoding::UCS2,
            locking_shift: LanguageSet::EMPTY,
            single_shift: LanguageSet::EMPTY,
            charsets: CharsetSet::EMPTY,
            extra_elements: Vec::new(),
            sar_udh_reserve: 7,
            max_parts: 255,
            max_payload: 65_535,
        }
    }
}

impl SegmentationPolicy {
    fn uses_udh(&self) -> bool {
        !matches!(self.mode, ConcatMode::Sar)
    }
}

/// Why a text could not be segmented.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// A character is not representable in the requested GSM tables.
    #[error(transparent)]
    Gsm7(#[from] Gsm7EncodeError),
    /// A character is not representable in the requested character set.
    #[error(transparent)]
    Charset(#[from] CharsetEncodeError),
    /// More parts would be needed than allowed.
    #[error("{needed} parts needed, at most {max} allowed")]
    TooManyParts {
        /// Parts the text needs (at least).
        needed: usize,
        /// The configured maximum.
        max: u8,
    },
    /// The limit leaves no room for a single character after the UDH.
    #[error("user data limit too small for the headers")]
    NoRoom,
    /// The policy combines options that cannot work together (e.g. UDH IEs with SAR).
    #[error("inconsistent policy: {0}")]
    Policy(&'static str),
    /// The UDH does not fit in 255 octets.
    #[error(transparent)]
    Udh(#[from] UdhError),
}

/// Segment count of a text under a policy (what a "characters left" UI shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The chosen encoding.
    pub encoding: TextEncoding,
    /// The `data_coding` that goes with it.
    pub data_coding: DataCoding,
    /// Number of parts.
    pub parts: usize,
    /// Capacity of each part in [`unit`](Self::unit)s (single-part capacity when `parts == 1`).
    pub units_per_part: usize,
    /// Units the whole text needs (extension characters count 2 septets).
    pub units_used: usize,
    /// Units still free in the last part.
    pub units_left_in_last: usize,
    /// What the unit counts are.
    pub unit: CodeUnit,
    /// Number of `char`s in the text.
    pub chars: usize,
}

/// One part, ready to go in a `submit_sm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The UDH octets (UDHL included) when the part has one; set UDHI in `esm_class` then.
    pub udh: Option<Bytes>,
    /// The encoded text (GSM unpacked septets, packed septets with fill bits, or octets).
    pub payload: Bytes,
    /// The `data_coding` to send.
    pub data_coding: DataCoding,
    /// SAR TLV values in [`ConcatMode::Sar`] with more than one part.
    pub sar: Option<ConcatInfo>,
    /// Units of text in this part.
    pub units: usize,
    /// Unit of `units`.
    pub unit: CodeUnit,
    /// Whether `payload` is packed GSM 7-bit.
    pub packed: bool,
}

impl Segment {
    /// Whether `esm_class` needs UDHI (0x40).
    pub fn udhi(&self) -> bool {
        self.udh.is_some()
    }

    /// `base` with UDHI set when needed.
    pub fn esm_class(&self, base: u8) -> u8 {
        if self.udhi() {
            base | 0x40
        } else {
            base & !0x40
        }
    }

    /// UDH followed by payload: the `short_message` octets.
    pub fn short_message(&self) -> Bytes {
        match &self.udh {
            None => self.payload.clone(),
            Some(udh) => {
                let mut v = Vec::with_capacity(udh.len() + self.payload.len());
                v.extend_from_slice(udh);
                v.extend_from_slice(&self.payload);
                Bytes::from(v)
            }
        }
    }

    /// Size of this part's TP-User-Data over the air (GSM septets packed, with fill bits).
    pub fn air_octets(&self) -> usize {
        let h = self.udh.as_ref().map_or(0, Bytes::len);
        match (self.unit, self.packed) {
            (CodeUnit::Septet, false) => {
                h + (usize::from(gsm7::fill_bits(h)) + 7 * self.units).div_ceil(8)
            }
            _ => h + self.payload.len(),
        }
    }
}

/// A segmented text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentedText {
    /// The encoding used for every part.
    pub encoding: TextEncoding,
    /// The parts in order.
    pub segments: Vec<Segment>,
}

/// Per-session generator of concatenation reference numbers.
///
/// 8-bit references wrap after 256 messages; prefer [`ConcatMode::Udh16`] for high volume
/// to one destination.
#[derive(Debug, Clone, Default)]
pub struct ReferenceCounter {
    next: u16,
}

impl ReferenceCounter {
    /// A counter starting at `start` (e.g. a random value chosen by the caller).
    pub const fn new(start: u16) -> Self {
        ReferenceCounter { next: start }
    }

    /// The next 16-bit reference.
    pub fn next_u16(&mut self) -> u16 {
        let r = self.next;
        self.next = self.next.wrapping_add(1);
        r
    }

    /// The next 8-bit reference (low octet of the counter).
    pub fn next_u8(&mut self) -> u8 {
        (self.next_u16() & 0xFF) as u8
    }
}

/// Capacity in units after a UDH of `h` octets (0 = no UDH).
fn capacity(unit: CodeUnit, limit: usize, h: usize) -> usize {
    let room = limit.saturating_sub(h);
    match unit {
        // The text starts on the septet boundary after the header: floor(8L/7) - ceil(8H/7).
        CodeUnit::Septet => (limit * 8 / 7).saturating_sub((h * 8).div_ceil(7)),
        CodeUnit::Octet => room,
        CodeUnit::Utf16 => room / 2,
    }
}

/// Layout of the parts: per part the byte range of the text and its units.
struct Plan {
    ranges: Vec<(usize, usize, usize)>,
    single: bool,
    units_total: usize,
    cap: usize,
}

/// UDH octets (UDHL included) of a single part and of a concatenated part.
fn udh_sizes(policy: &SegmentationPolicy, shift_ies: &[InformationElement]) -> (usize, usize) {
    let ies: usize = shift_ies
        .iter()
        .chain(&policy.extra_elements)
        .map(InformationElement::encoded_len)
        .sum();
    let single = if ies > 0 { ies + 1 } else { 0 };
    let multi = match policy.mode {
        ConcatMode::Udh8 => ies + 5 + 1,
        ConcatMode::Udh16 => ies + 6 + 1,
        ConcatMode::Sar => policy.sar_udh_reserve,
        ConcatMode::Payload => single,
    };
    (single, multi)
}

fn plan(
    text: &str,
    encoding: &TextEncoding,
    policy: &SegmentationPolicy,
) -> Result<Option<Plan>, SegmentError> {
    let unit = encoding.unit();
    let (h_single, h_multi) = udh_sizes(policy, &encoding.information_elements());
    let single_cap = match policy.mode {
        ConcatMode::Payload => match unit {
            CodeUnit::Utf16 => policy.max_payload.saturating_sub(h_single) / 2,
            _ => policy.max_payload.saturating_sub(h_single),
        },
        _ => capacity(unit, policy.max_user_data, h_single),
    };
    let mut costs = Vec::with_capacity(text.len());
    let mut total = 0usize;
    for (i, c) in text.char_indices() {
        let Some(cost) = encoding.cost(c) else {
            return Ok(None);
        };
        costs.push((i, cost));
        total += cost;
    }
    if total <= single_cap {
        return Ok(Some(Plan {
            ranges: vec![(0, text.len(), total)],
            single: true,
            units_total: total,
            cap: single_cap,
        }));
    }
    if policy.mode == ConcatMode::Payload {
        return Err(SegmentError::TooManyParts { needed: 2, max: 1 });
    }
    let cap = capacity(unit, policy.max_user_data, h_multi);
    if cap < 2 {
        return Err(SegmentError::NoRoom);
    }
    let mut ranges = Vec::with_capacity(total / cap + 1);
    let (mut start, mut used) = (0usize, 0usize);
    for &(i, cost) in &costs {
        if used + cost > cap {
            ranges.push((start, i, used));
            if ranges.len() > usize::from(policy.max_parts) {
                break;
            }
            start = i;
            used = 0;
        }
        used += cost;
    }
    ranges.push((start, text.len(), used));
    if ranges.len() > usize::from(policy.max_parts) {
        return Err(SegmentError::TooManyParts {
            needed: ranges.len().max(total.div_ceil(cap)),
            max: policy.max_parts,
        });
    }
    Ok(Some(Plan {
        ranges,
        single: false,
        units_total: total,
        cap,
    }))
}

/// The candidate encodings in preference order for `policy`.
fn candidates(policy: &SegmentationPolicy) -> Vec<TextEncoding> {
    let mut v = vec![TextEncoding::Gsm7(Gsm7Alphabet::DEFAULT)];
    if policy.uses_udh() {
        let locking = policy.locking_shift.with(NationalLanguage::Default);
        let single = policy.single_shift.with(NationalLanguage::Default);
        // Fewer IEs first: single shift only, then locking only, then both.
        let mut combos: Vec<Gsm7Alphabet> = Vec::new();
        for l in locking.iter() {
            for s in single.iter() {
                if let Some(a) = Gsm7Alphabet::new(l, s) {
                    if !a.is_default() {
                        combos.push(a);
                    }
                }
            }
        }
        combos.sort_by_key(|a| a.udh_octets());
        v.extend(combos.into_iter().map(TextEncoding::Gsm7));
    }
    v.extend(policy.charsets.iter().map(TextEncoding::Charset));
    v.push(TextEncoding::Ucs2);
    v
}

/// Picks the cheapest encoding: the one needing the fewest parts, preferring the GSM default
/// alphabet, then national shift tables enabled by the policy (fewest IEs first), then the
/// single-octet character sets of [`SegmentationPolicy::charsets`] (Latin-1, Cyrillic,
/// Hebrew, ASCII; none by default), then UCS-2. A character set that represents the whole
/// text never needs more parts than UCS-2, so it is taken over UCS-2 whenever it can.
pub fn choose_encoding(text: &str, policy: &SegmentationPolicy) -> TextEncoding {
    let mut best: Option<(usize, TextEncoding)> = None;
    // The first encoding that can represent the text but exceeds the limits: returned when
    // nothing fits, so the caller's error is about the cheapest encoding.
    let mut too_long: Option<TextEncoding> = None;
    for enc in candidates(policy) {
        match plan(text, &enc, policy) {
            Ok(Some(p)) => {
                let parts = p.ranges.len();
                if best.is_none_or(|(n, _)| parts < n) {
                    best = Some((parts, enc));
                }
                // With the standard limit the default alphabet never needs more parts than
                // UCS-2 (an extension character costs 2 of 153 septets, a UCS-2 unit 1 of 67)
                // and it needs no shift IEs, so nothing can beat it.
                let default_wins = enc == TextEncoding::Gsm7(Gsm7Alphabet::DEFAULT)
                    && policy.max_user_data >= MAX_USER_DATA;
                if parts == 1 || default_wins {
                    break;
                }
            }
            Ok(None) => {}
            Err(_) => {
                too_long.get_or_insert(enc);
            }
        }
    }
    best.map(|(_, e)| e)
        .or(too_long)
        .unwrap_or(TextEncoding::Ucs2)
}

/// Counts parts and free units for `text` under `policy` (choosing the encoding).
pub fn segment_info(text: &str, policy: &SegmentationPolicy) -> Result<SegmentInfo, SegmentError> {
    segment_info_with(text, choose_encoding(text, policy), policy)
}

/// Counts parts and free units for `text` in a given encoding.
pub fn segment_info_with(
    text: &str,
    encoding: TextEncoding,
    policy: &SegmentationPolicy,
) -> Result<SegmentInfo, SegmentError> {
    let p = plan_or_error(text, &encoding, policy)?;
    let last = p.ranges.last().map_or(0, |r| r.2);
    Ok(SegmentInfo {
        encoding,
        data_coding: encoding.data_coding(policy),
        parts: p.ranges.len(),
        units_per_part: p.cap,
        units_used: p.units_total,
        units_left_in_last: p.cap.saturating_sub(last),
        unit: encoding.unit(),
        chars: text.chars().count(),
    })
}

fn plan_or_error(
    text: &str,
    encoding: &TextEncoding,
    policy: &SegmentationPolicy,
) -> Result<Plan, SegmentError> {
    if policy.mode == ConcatMode::Sar && !policy.extra_elements.is_empty() {
        return Err(SegmentError::Policy("SAR mode cannot carry UDH elements"));
    }
    if let (ConcatMode::Sar, TextEncoding::Gsm7(a)) = (policy.mode, encoding) {
        if !a.is_default() {
            return Err(SegmentError::Policy("national shift tables need a UDH"));
        }
    }
    match plan(text, encoding, policy)? {
        Some(p) => Ok(p),
        None => {
            // Produce the precise "unrepresentable character" error.
            let mut sink = Vec::new();
            encoding.encode_into(text, &mut sink)?;
            Err(SegmentError::Policy("unrepresentable character"))
        }
    }
}

/// Splits `text` with the cheapest encoding, taking a reference from `refs` when more than
/// one part is needed.
pub fn segment_text(
    text: &str,
    policy: &SegmentationPolicy,
    refs: &mut ReferenceCounter,
) -> Result<SegmentedText, SegmentError> {
    segment_text_with(text, choose_encoding(text, policy), policy, refs)
}

/// Splits `text` in the given encoding.
pub fn segment_text_with(
    text: &str,
    encoding: TextEncoding,
    policy: &SegmentationPolicy,
    refs: &mut ReferenceCounter,
) -> Result<SegmentedText, SegmentError> {
    let p = plan_or_error(text, &encoding, policy)?;
    let reference = if p.single {
        0
    } else if policy.mode == ConcatMode::Udh8 {
        u16::from(refs.next_u8())
    } else {
        refs.next_u16()
    };
    let total = p.ranges.len() as u8;
    let data_coding = encoding.data_coding(policy);
    let mut segments = Vec::with_capacity(p.ranges.len());
    let mut buf = Vec::new();
    for (index, &(start, end, units)) in p.ranges.iter().enumerate() {
        let seq = (index + 1) as u8;
        let concat = (!p.single).then_some(ConcatInfo {
            reference,
            total,
            seq,
            kind: match policy.mode {
                ConcatMode::Udh16 => ConcatKind::Udh16,
                ConcatMode::Sar => ConcatKind::Sar,
                _ => ConcatKind::Udh8,
            },
        });
        let udh = build_udh(policy, encoding.information_elements(), concat)?;
        buf.clear();
        encoding.encode_into(&text[start..end], &mut buf)?;
        let packed =
            matches!(encoding, TextEncoding::Gsm7(_)) && policy.gsm7_packing == Gsm7Packing::Packed;
        let payload = if packed {
            let h = udh.as_ref().map_or(0, Bytes::len);
            Bytes::from(gsm7::pack(&buf, gsm7::fill_bits(h), true))
        } else {
            Bytes::copy_from_slice(&buf)
        };
        segments.push(Segment {
            udh,
            payload,
            data_coding,
            sar: concat.filter(|c| c.kind == ConcatKind::Sar),
            units,
            unit: encoding.unit(),
            packed,
        });
    }
    Ok(SegmentedText { encoding, segments })
}

fn build_udh(
    policy: &SegmentationPolicy,
    shift_ies: Vec<InformationElement>,
    concat: Option<ConcatInfo>,
) -> Result<Option<Bytes>, SegmentError> {
    // Application ports first (as WAP stacks emit them), then concatenation, then shifts.
    let mut elements: Vec<InformationElement> = policy.extra_elements.clone();
    match concat {
        Some(c) if c.kind == ConcatKind::Udh8 => elements.push(InformationElement::Concat8 {
            reference: (c.reference & 0xFF) as u8,
            total: c.total,
            seq: c.seq,
        }),
        Some(c) if c.kind == ConcatKind::Udh16 => elements.push(InformationElement::Concat16 {
            reference: c.reference,
            total: c.total,
            seq: c.seq,
        }),
        _ => {}
    }
    elements.extend(shift_ies);
    if elements.is_empty() {
        return Ok(None);
    }
    Ok(Some(Bytes::from(UserDataHeader::new(elements).encode()?)))
}

/// Splits binary data (8-bit `data_coding`) into parts, e.g. a WAP push with port IEs in
/// [`SegmentationPolicy::extra_elements`].
pub fn segment_binary(
    data: &[u8],
    data_coding: DataCoding,
    policy: &SegmentationPolicy,
    refs: &mut ReferenceCounter,
) -> Result<Vec<Segment>, SegmentError> {
    if policy.mode == ConcatMode::Sar && !policy.extra_elements.is_empty() {
        return Err(SegmentError::Policy("SAR mode cannot carry UDH elements"));
    }
    let (h_single, h_multi) = udh_sizes(policy, &[]);
    let single_cap = if policy.mode == ConcatMode::Payload {
        policy.max_payload.saturating_sub(h_single)
    } else {
        policy.max_user_data.saturating_sub(h_single)
    };
    let chunks: Vec<&[u8]> = if data.len() <= single_cap {
        vec![data]
    } else if policy.mode == ConcatMode::Payload {
        return Err(SegmentError::TooManyParts { needed: 2, max: 1 });
    } else {
        let cap = policy.max_user_data.saturating_sub(h_multi);
        if cap == 0 {
            return Err(SegmentError::NoRoom);
        }
        let n = data.len().div_ceil(cap);
        if n > usize::from(policy.max_parts) {
            return Err(SegmentError::TooManyParts {
                needed: n,
                max: policy.max_parts,
            });
        }
        data.chunks(cap).collect()
    };
    let single = chunks.len() == 1;
    let reference = match (single, policy.mode) {
        (true, _) => 0,
        (false, ConcatMode::Udh8) => u16::from(refs.next_u8()),
        (false, _) => refs.next_u16(),
    };
    let total = chunks.len() as u8;
    let mut out = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.into_iter().enumerate() {
        let concat = (!single).then_some(ConcatInfo {
            reference,
            total,
            seq: (i + 1) as u8,
            kind: match policy.mode {
                ConcatMode::Udh16 => ConcatKind::Udh16,
                ConcatMode::Sar => ConcatKind::Sar,
                _ => ConcatKind::Udh8,
            },
        });
        let udh = build_udh(policy, Vec::new(), concat)?;
        out.push(Segment {
            udh,
            payload: Bytes::copy_from_slice(chunk),
            data_coding,
            sar: concat.filter(|c| c.kind == ConcatKind::Sar),
            units: chunk.len(),
            unit: CodeUnit::Octet,
            packed: false,
        });
    }
    Ok(out)
}

/// How many SMS parts on the air a message of `user_data_len` octets in
/// `data_coding` takes once an SMSC splits it (what a gateway charges and
/// rate-limits by): one when it fits a single SMS (160 septets, 140 octets),
/// else one per 153 septets or 134 octets (the rest of each part carries the
/// concatenation header). Texts in a septet alphabet (the SMSC default,
/// GSM 7-bit, IA5, and the ISO-8859 sets an SMSC converts to GSM) count one
/// septet per octet, as SMPP carries them; UCS-2 and 8-bit data count
/// octets. An empty message is one part.
pub fn parts_on_air(data_coding: u8, user_data_len: usize) -> u32 {
    use crate::message::coding::Alphabet;
    let (single, per_part) = match crate::message::DataCoding(data_coding).alphabet() {
        Alphabet::SmscDefault
        | Alphabet::Gsm7
        | Alphabet::Ia5
        | Alphabet::Latin1
        | Alphabet::Cyrillic
        | Alphabet::LatinHebrew => (160, 153),
        _ => (140, 134),
    };
    if user_data_len <= single {
        1
    } else {
        u32::try_from(user_data_len.div_ceil(per_part)).unwrap_or(u32::MAX)
    }
}

/// [`parts_on_air`] of a `submit_sm` (or `deliver_sm`): its
/// `short_message` is one part as it is (a part of a long message already
/// carries its own header); a `message_payload` counts by its length.
pub fn submit_parts_on_air(sm: &crate::pdu::SubmitSm) -> u32 {
    match sm.tlvs.message_payload() {
        Some(payload) if sm.short_message.is_empty() => parts_on_air(sm.data_coding, payload.len()),
        _ => 1,
    }
}

#[cfg(test)]
mod parts_on_air_tests {
    use super::*;

    #[test]
    fn parts_follow_the_alphabet_and_the_concatenation_header() {
        assert_eq!(parts_on_air(0, 0), 1);
        assert_eq!(parts_on_air(0, 160), 1);
        assert_eq!(parts_on_air(0, 161), 2);
        assert_eq!(parts_on_air(0, 306), 2);
        assert_eq!(parts_on_air(0, 307), 3);
        assert_eq!(parts_on_air(0x08, 140), 1);
        assert_eq!(parts_on_air(0x08, 141), 2);
        assert_eq!(parts_on_air(0x08, 268), 2);
        assert_eq!(parts_on_air(0x04, 269), 3);
        assert_eq!(parts_on_air(0x08, usize::MAX), u32::MAX);
    }

    #[test]
    fn a_short_message_is_one_part_and_a_payload_counts_by_length() {
        let mut sm = crate::pdu::SubmitSm {
            short_message: vec![b'a'; 140].into(),
            ..Default::default()
        };
        assert_eq!(submit_parts_on_air(&sm), 1);
        sm.short_message = Default::default();
        sm.tlvs
            .set(crate::pdu::TlvTag::MESSAGE_PAYLOAD, &[b'a'; 400])
            .unwrap();
        assert_eq!(submit_parts_on_air(&sm), 3);
        sm.data_coding = 0x08;
        assert_eq!(submit_parts_on_air(&sm), 3);
    }
}
