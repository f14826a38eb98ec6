//! `COctetString`: the NUL-terminated text fields of SMPP.

use bytes::Bytes;
use core::fmt;

/// The content of a C-Octet String field, *without* its terminating NUL.
///
/// Decoding slices it out of the received frame without copying; building one
/// from a `&'static str` does not copy either. An empty value is the spec's
/// "NULL" string (a lone 0x00 on the wire).
///
/// The codec checks the field's maximum length and that the content holds no
/// NUL when it encodes; the content is ASCII by specification but any bytes
/// are carried (`as_str` fails on non-UTF-8, `Display` is lossy).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct COctetString(Bytes);

impl COctetString {
    /// The empty ("NULL") string.
    pub const fn new() -> Self {
        COctetString(Bytes::new())
    }

    /// A string that borrows static data (no copy).
    pub const fn from_static(s: &'static str) -> Self {
        COctetString(Bytes::from_static(s.as_bytes()))
    }

    /// A string copied from `s`.
    pub fn copy_from_str(s: &str) -> Self {
        Self::copy_from_slice(s.as_bytes())
    }

    /// A string copied from raw bytes.
    pub fn copy_from_slice(s: &[u8]) -> Self {
        if s.is_empty() {
            Self::new()
        } else {
            COctetString(Bytes::copy_from_slice(s))
        }
    }

    /// The content bytes (no NUL).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The content as `&str`, if it is UTF-8 (it is ASCII on conforming links).
    pub fn as_str(&self) -> Result<&str, core::str::Utf8Error> {
        core::str::from_utf8(&self.0)
    }

    /// The content as text, replacing invalid UTF-8.
    pub fn to_string_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    /// The underlying reference-counted bytes.
    pub fn as_inner(&self) -> &Bytes {
        &self.0
    }

    /// Unwraps the underlying bytes.
    pub fn into_inner(self) -> Bytes {
        self.0
    }

    /// Length of the content in octets (without the NUL).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The "NULL" string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Octets on the wire: content plus NUL.
    pub(crate) fn wire_len(&self) -> usize {
        self.0.len() + 1
    }

    pub(crate) fn from_bytes_unchecked(b: Bytes) -> Self {
        COctetString(b)
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
        COctetString(Bytes::from(s))
    }
}

impl From<Vec<u8>> for COctetString {
    fn from(s: Vec<u8>) -> Self {
        COctetString(Bytes::from(s))
    }
}

impl From<Bytes> for COctetString {
    fn from(b: Bytes) -> Self {
        COctetString(b)
    }
}

impl PartialEq<str> for COctetString {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for COctetString {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl AsRef<[u8]> for COctetString {
    fn as_ref(&self) -> &[u8] {
        &self.0
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
