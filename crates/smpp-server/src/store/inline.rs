//! The inline-or-boxed buffers a record is made of ([`Text`], [`Octets`]),
//! and the hex form of octets in the stored JSON.

use serde::{Deserialize, Serialize};

/// Octets held in place up to `N` (at most 255), in one allocation beyond:
/// what [`Text`] and [`Octets`] are made of. A record is cached for every
/// message in memory and forgotten in submission order, so each allocation
/// it owns costs a `malloc` when it is made and a cold `free` when it is
/// evicted.
#[derive(Clone)]
pub(crate) enum Inline<const N: usize> {
    Here { len: u8, buf: [u8; N] },
    Heap(Box<[u8]>),
}

impl<const N: usize> Inline<N> {
    const EMPTY: Inline<N> = Inline::Here {
        len: 0,
        buf: [0; N],
    };

    fn new(v: &[u8]) -> Inline<N> {
        match u8::try_from(v.len()) {
            Ok(len) if v.len() <= N => {
                let mut buf = [0; N];
                buf[..v.len()].copy_from_slice(v);
                Inline::Here { len, buf }
            }
            _ => Inline::Heap(v.into()),
        }
    }

    /// Takes `v`'s allocation when it does not fit in place.
    fn from_vec(v: Vec<u8>) -> Inline<N> {
        if v.len() <= N {
            Inline::new(&v)
        } else {
            Inline::Heap(v.into_boxed_slice())
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Inline::Here { len, buf } => &buf[..usize::from(*len)],
            Inline::Heap(v) => v,
        }
    }

    /// Holds `v` instead: written over the octets in place when it fits
    /// there (only `v`'s octets: past `len` the buffer keeps what an earlier
    /// value left, which nothing reads), else as [`new`](Inline::new).
    fn set(&mut self, v: &[u8]) {
        match (self, u8::try_from(v.len())) {
            (Inline::Here { len, buf }, Ok(n)) if v.len() <= N => {
                buf[..v.len()].copy_from_slice(v);
                *len = n;
            }
            (this, _) => *this = Inline::new(v),
        }
    }
}

/// Equal by content (the octets past `len` are not part of it).
impl<const N: usize> PartialEq for Inline<N> {
    fn eq(&self, other: &Inline<N>) -> bool {
        self.bytes() == other.bytes()
    }
}

impl<const N: usize> Eq for Inline<N> {}

/// A short text of a record (an address, a service type): up to
/// [`TEXT_INLINE`] octets are held in the record itself, longer ones in one
/// allocation. Serialized as a string, like the `String` it replaces (the
/// stored JSON is unchanged).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Text(Inline<TEXT_INLINE>);

/// Fits beside the tags: a `Text` is as large as a `String`.
const TEXT_INLINE: usize = 22;

impl Text {
    /// The empty text.
    pub(crate) const fn new() -> Text {
        Text(Inline::EMPTY)
    }

    /// The text of a received field (lossy: invalid UTF-8 is replaced).
    pub(crate) fn from_field(s: &smpp_proto::pdu::COctetString) -> Text {
        let mut text = Text::new();
        text.set_field(s);
        text
    }

    /// Holds `s` instead (in place when it fits).
    pub(crate) fn set(&mut self, s: &str) {
        self.0.set(s.as_bytes());
    }

    /// Holds the text of a received field instead ([`from_field`](Text::from_field)).
    pub(crate) fn set_field(&mut self, s: &smpp_proto::pdu::COctetString) {
        let octets = s.as_bytes();
        // ASCII (addresses, service types: nearly always) is UTF-8 as it
        // is; its check takes a word at a time where the UTF-8 check of a
        // short field goes octet by octet.
        if octets.is_ascii() {
            self.0.set(octets);
        } else {
            self.set(&s.to_string_lossy());
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Built from a `str` only, whole: always UTF-8.
        std::str::from_utf8(self.0.bytes()).unwrap_or_default()
    }

    /// The text's octets, without the UTF-8 check of [`as_str`](Text::as_str)
    /// (what a `str` method through `Deref` would cost: the record encoder
    /// asks for six per record).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.bytes()
    }

    /// Its length in octets (without the check, as [`as_bytes`](Text::as_bytes)).
    pub(crate) fn len(&self) -> usize {
        self.0.bytes().len()
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::new()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(Inline::new(s.as_bytes()))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(Inline::from_vec(s.into_bytes()))
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        String::deserialize(d).map(Text::from)
    }
}

/// A record's user data (its `short_message`): up to [`OCTETS_INLINE`]
/// octets (a whole 160-character GSM text, a part of a long message, 70
/// UCS-2 characters) are held in the record itself, longer ones (161 to 255
/// octets) in one allocation, as for [`Text`]. Serialized as hex, like the
/// `Vec` it replaces.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Octets(Inline<OCTETS_INLINE>);

pub(crate) const OCTETS_INLINE: usize = 160;

impl Octets {
    #[cfg(test)]
    pub(crate) fn is_inline(&self) -> bool {
        matches!(self.0, Inline::Here { .. })
    }

    /// Holds `v` instead (in place when it fits).
    pub(crate) fn set(&mut self, v: &[u8]) {
        self.0.set(v);
    }
}

impl Default for Octets {
    fn default() -> Octets {
        Octets(Inline::EMPTY)
    }
}

impl From<&[u8]> for Octets {
    fn from(v: &[u8]) -> Octets {
        Octets(Inline::new(v))
    }
}

impl From<Vec<u8>> for Octets {
    fn from(v: Vec<u8>) -> Octets {
        Octets(Inline::from_vec(v))
    }
}

impl std::ops::Deref for Octets {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.0.bytes()
    }
}

impl std::fmt::Debug for Octets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl Serialize for Octets {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        hex_bytes::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for Octets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Octets, D::Error> {
        hex_bytes::deserialize(d).map(Octets::from)
    }
}

/// Octets as hex text in human-readable formats (the JSON of the records'
/// first format, and of the HTTP API) and as plain bytes in binary ones (the
/// store's own format).
pub(crate) mod hex_bytes {
    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return s.serialize_bytes(v);
        }
        let mut out = String::with_capacity(v.len() * 2);
        for b in v {
            out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        s.serialize_str(&out)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        if d.is_human_readable() {
            d.deserialize_str(HexOrBytes)
        } else {
            d.deserialize_bytes(HexOrBytes)
        }
    }

    /// Takes hex text or plain bytes, whichever the format gives.
    struct HexOrBytes;

    impl<'de> Visitor<'de> for HexOrBytes {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("octets (hex text or bytes)")
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<u8>, E> {
            let digit = |c: u8| match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                b'A'..=b'F' => Ok(c - b'A' + 10),
                _ => Err(E::custom("bad hex")),
            };
            s.as_bytes()
                .chunks(2)
                .map(|p| match p {
                    [h, l] => Ok(digit(*h)? << 4 | digit(*l)?),
                    _ => Err(E::custom("odd hex length")),
                })
                .collect()
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_writes_in_place_and_equals_a_fresh_value() {
        let long = [7u8; OCTETS_INLINE + 1];
        let mut o = Octets::from(&b"a longer first text"[..]);
        o.set(b"short");
        assert_eq!(&*o, b"short");
        assert!(o.is_inline());
        // Equal by content: the first text's tail left in place is no part of it.
        assert_eq!(o, Octets::from(&b"short"[..]));
        o.set(&long);
        assert!(!o.is_inline());
        assert_eq!(&*o, &long[..]);
        o.set(b"");
        assert!(o.is_inline());
        assert_eq!(o, Octets::default());

        let mut t = Text::from("447700900123");
        t.set("44");
        assert_eq!((t.as_str(), t.clone()), ("44", Text::from("44")));
        let field = smpp_proto::pdu::COctetString::copy_from_slice(b"4\xff");
        t.set_field(&field);
        assert_eq!(t, Text::from_field(&field));
        assert_eq!(t.as_str(), "4\u{fffd}");
        // ASCII, and UTF-8 beyond it, are held as they are.
        for text in ["447700900123", "caf\u{e9}"] {
            let field = smpp_proto::pdu::COctetString::copy_from_slice(text.as_bytes());
            t.set_field(&field);
            assert_eq!((t.as_str(), t.clone()), (text, Text::from_field(&field)));
        }
        t.set(&"x".repeat(TEXT_INLINE + 1));
        assert_eq!(t.as_str(), "x".repeat(TEXT_INLINE + 1));
    }
}
