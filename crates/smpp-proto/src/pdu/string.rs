//! `COctetString`: the NUL-terminated text fields of SMPP.

use bytes::Bytes;
use core::fmt;

/// The content of a C-Octet String field, *without* its terminating NUL.
///
/// Short values (up to 22 octets: addresses, service types, times, system ids,
/// passwords, most message ids) are stored inline: copying them out of a
/// received frame is cheaper than sharing it, and costs no allocation and no
/// reference-count traffic. Longer values are zero-copy slices of the frame,
/// and `from_static` never copies. An empty value is the spec's "NULL" string
/// (a lone 0x00 on the wire).
///
/// The codec checks the field's maximum length and that the content holds no
/// NUL when it encodes; the content is ASCII by specification but any bytes
/// are carried (`as_str` fails on non-UTF-8, `Display` is lossy).
#[derive(Clone)]
pub struct COctetString(Repr);

/// Fits beside `Bytes`' non-null vtable pointer: the enum stays 32 bytes.
const INLINE_CAP: usize = 22;

#[derive(Clone)]
enum Repr {
    /// Never holds a NUL octet: a field read off the wire ends at its first
    /// NUL, and a value made with one (which cannot be encoded) is kept
    /// `Shared`. So encoding an inline value (a template cloned per
    /// message, a field passed on) does not look for one again.
    Inline {
        len: u8,
        buf: [u8; INLINE_CAP],
    },
    Shared(Bytes),
}

impl COctetString {
    /// The empty ("NULL") string.
    pub const fn new() -> Self {
        COctetString(Repr::Inline {
            len: 0,
            buf: [0; INLINE_CAP],
        })
    }

    /// A string that borrows static data (no copy).
    pub const fn from_static(s: &'static str) -> Self {
        COctetString(Repr::Shared(Bytes::from_static(s.as_bytes())))
    }

    /// A string copied from `s`.
    pub fn copy_from_str(s: &str) -> Self {
        Self::copy_from_slice(s.as_bytes())
    }

    /// A string copied from raw bytes.
    pub fn copy_from_slice(s: &[u8]) -> Self {
        if s.len() <= INLINE_CAP {
            let mut buf = [0; INLINE_CAP];
            buf[..s.len()].copy_from_slice(s);
            if find_nul(s).is_none() {
                return COctetString(Repr::Inline {
                    len: s.len() as u8,
                    buf,
                });
            }
        }
        COctetString(Repr::Shared(Bytes::copy_from_slice(s)))
    }

    /// The content bytes (no NUL).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..usize::from(*len)],
            Repr::Shared(b) => b,
        }
    }

    /// The content as `&str`, if it is UTF-8 (it is ASCII on conforming links).
    pub fn as_str(&self) -> Result<&str, core::str::Utf8Error> {
        core::str::from_utf8(self.as_bytes())
    }

    /// The content as text, replacing invalid UTF-8.
    pub fn to_string_lossy(&self) -> std::borrow::Cow<'_, str> {
        // Valid text (nearly always) is checked by `from_utf8`, which takes
        // ASCII a word at a time; the lossy decoder walks it byte by byte.
        match self.as_str() {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(self.as_bytes()),
        }
    }

    /// The content as `Bytes` (shared when the value is a slice, copied when inline).
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Inline { .. } => Bytes::copy_from_slice(self.as_bytes()),
            Repr::Shared(b) => b.clone(),
        }
    }

    /// Length of the content in octets (without the NUL).
    #[inline]
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// The "NULL" string.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the content holds a NUL octet (which would cut the field
    /// short on the wire): never an inline value's (see [`Repr::Inline`]).
    #[inline]
    pub(crate) fn has_nul(&self) -> bool {
        match &self.0 {
            Repr::Inline { .. } => false,
            Repr::Shared(b) => b.contains(&0),
        }
    }

    /// Appends the content and its NUL. Inline values are copied as one
    /// fixed-size block and the excess cut off: no variable-length copy.
    #[inline]
    pub(crate) fn append_with_nul(&self, out: &mut Vec<u8>) {
        match &self.0 {
            Repr::Inline { len, buf } => {
                let end = out.len() + usize::from(*len);
                out.extend_from_slice(buf);
                out.truncate(end);
            }
            Repr::Shared(b) => out.extend_from_slice(b),
        }
        out.push(0);
    }

    /// Octets on the wire: content plus NUL.
    #[inline]
    pub(crate) fn wire_len(&self) -> usize {
        self.len() + 1
    }

    /// Takes `range` of a received frame: copied inline when short, else shared.
    #[inline(always)]
    pub(crate) fn from_frame(frame: &Bytes, range: core::ops::Range<usize>) -> Self {
        if range.len() <= INLINE_CAP {
            let mut buf = [0; INLINE_CAP];
            let len = range.len();
            match frame.get(range.start..range.start + INLINE_CAP) {
                // A fixed-size copy (two vector moves); octets past `len` are never read.
                Some(window) => buf.copy_from_slice(window),
                None => buf[..len].copy_from_slice(&frame[range]),
            }
            // No NUL: the field ends at its first one (or at the frame's
            // end when none is left).
            COctetString(Repr::Inline {
                len: len as u8,
                buf,
            })
        } else {
            COctetString(Repr::Shared(frame.slice(range)))
        }
    }
}

impl Default for COctetString {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for COctetString {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for COctetString {}

impl core::hash::Hash for COctetString {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl PartialOrd for COctetString {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for COctetString {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for COctetString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.to_string_lossy(), f)
    }
}

impl fmt::Display for COctetString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl From<&'static str> for COctetString {
    fn from(s: &'static str) -> Self {
        Self::from_static(s)
    }
}

impl From<String> for COctetString {
    fn from(s: String) -> Self {
        Self::from(s.into_bytes())
    }
}

impl From<&String> for COctetString {
    fn from(s: &String) -> Self {
        Self::copy_from_str(s)
    }
}

impl From<Vec<u8>> for COctetString {
    fn from(s: Vec<u8>) -> Self {
        if s.len() <= INLINE_CAP {
            Self::copy_from_slice(&s)
        } else {
            COctetString(Repr::Shared(Bytes::from(s)))
        }
    }
}

impl From<Bytes> for COctetString {
    fn from(b: Bytes) -> Self {
        COctetString(Repr::Shared(b))
    }
}

impl PartialEq<str> for COctetString {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for COctetString {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl AsRef<[u8]> for COctetString {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for COctetString {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        // Printable ASCII without NUL, short enough for the tightest field (service_type, 5).
        let len = u.int_in_range(0..=5)?;
        let mut v = Vec::with_capacity(len);
        for _ in 0..len {
            v.push(u.int_in_range(0x21u8..=0x7E)?);
        }
        Ok(COctetString::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossy_text_borrows_valid_utf8_and_replaces_invalid() {
        let valid = COctetString::copy_from_slice("447700 €".as_bytes());
        assert!(matches!(
            valid.to_string_lossy(),
            std::borrow::Cow::Borrowed("447700 €")
        ));
        let invalid = COctetString::copy_from_slice(b"44\xff77");
        assert_eq!(invalid.to_string_lossy(), "44\u{fffd}77");
    }

    #[test]
    fn stays_as_small_as_bytes_and_compares_by_content() {
        assert_eq!(
            core::mem::size_of::<COctetString>(),
            core::mem::size_of::<Bytes>()
        );
        let frame = Bytes::from_static(b"0123456789012345678901234567890123456789");
        let short = COctetString::from_frame(&frame, 0..5);
        let long = COctetString::from_frame(&frame, 0..30);
        assert_eq!(short, COctetString::from_static("01234"));
        assert_eq!(short, "01234");
        assert_eq!(
            long.as_bytes().as_ptr(),
            frame.as_ptr(),
            "long values share the frame"
        );
        assert_eq!(long.len(), 30);
        assert_eq!(COctetString::from(vec![b'a'; 40]).len(), 40);
        assert!(COctetString::new().is_empty());
    }

    #[test]
    fn nul_detection_is_exact_for_every_length_and_position() {
        for len in 0..=30usize {
            let clean: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(
                !COctetString::copy_from_slice(&clean).has_nul(),
                "len {len}"
            );
            for at in 0..len {
                let mut v = clean.clone();
                v[at] = 0;
                assert!(
                    COctetString::copy_from_slice(&v).has_nul(),
                    "len {len} at {at}"
                );
            }
            // Garbage past `len` in the inline buffer is never looked at.
            let frame = Bytes::from([clean.clone(), vec![0u8; 30]].concat());
            assert!(
                !COctetString::from_frame(&frame, 0..len).has_nul(),
                "len {len} + zeros after"
            );
        }
    }
}

/// The position of the first NUL in `s` (the decoder's search for a
/// field's end, and the test that keeps an inline value free of them):
/// eight octets at a time, then octet by octet, with a word-at-a-time
/// zero-octet test (a borrow can only flag octets above a real zero, so
/// the lowest flag is exact).
#[inline(always)]
pub(crate) fn find_nul(s: &[u8]) -> Option<usize> {
    const LO: u64 = u64::from_le_bytes([0x01; 8]);
    const HI: u64 = u64::from_le_bytes([0x80; 8]);
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let zero = w.wrapping_sub(LO) & !w & HI;
        if zero != 0 {
            return Some(at + (zero.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == 0)
        .map(|p| at + p)
}

#[cfg(test)]
mod find_nul_tests {
    use super::find_nul;

    /// Against the octet-by-octet search, with the octets that trip word
    /// tests (0x01 and 0x80 beside a zero, 0xFF, 0x00 twice) at every place.
    #[test]
    fn finds_the_first_nul_as_a_plain_search_does() {
        let fills = [0x01u8, 0x80, 0xFF, 0x7F, b'4', 0x81];
        for len in 0..40 {
            for fill in fills {
                let mut s = vec![fill; len];
                assert_eq!(find_nul(&s), None, "{len} {fill:#x}");
                for first in 0..len {
                    s.fill(fill);
                    s[first] = 0;
                    assert_eq!(find_nul(&s), Some(first), "{len} {fill:#x} {first}");
                    for second in first + 1..len {
                        s[second] = 0;
                        assert_eq!(find_nul(&s), Some(first));
                        s[second] = 0x01;
                        assert_eq!(find_nul(&s), Some(first));
                    }
                    if first > 0 {
                        s[first - 1] = 0x01;
                        assert_eq!(find_nul(&s), Some(first));
                    }
                }
            }
        }
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let s: Vec<u8> = (0..(x % 48) as usize)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Mostly non-zero, as text is.
                    if x % 23 == 0 {
                        0
                    } else {
                        (x >> 8) as u8 | 1
                    }
                })
                .collect();
            assert_eq!(find_nul(&s), s.iter().position(|&b| b == 0), "{s:?}");
        }
    }
}
