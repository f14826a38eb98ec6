//! UCS-2 / UTF-16BE (`data_coding` 0x08). In practice peers send UTF-16BE, so characters
//! outside the BMP travel as surrogate pairs.

/// Encodes `text` as UTF-16BE.
pub fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 2);
    encode_into(text, &mut out);
    out
}

/// Encodes `text` as UTF-16BE, appending to `out`.
pub fn encode_into(text: &str, out: &mut Vec<u8>) {
    for unit in text.encode_utf16() {
        out.extend_from_slice(&unit.to_be_bytes());
    }
}

/// Decodes UTF-16BE. Never fails: lone surrogates and a trailing odd octet become U+FFFD.
pub fn decode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len());
    decode_into(data, &mut out);
    out
}

/// Like [`decode`], appending to `out`.
pub fn decode_into(data: &[u8], out: &mut String) {
    let units = data
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
    out.extend(char::decode_utf16(units).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)));
    if data.len() % 2 == 1 {
        out.push(char::REPLACEMENT_CHARACTER);
    }
}

/// Number of UTF-16 code units (2 octets each) `text` needs.
pub fn unit_count(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Whether `text` stays within the BMP, i.e. is strict UCS-2 without surrogate pairs.
pub fn is_bmp(text: &str) -> bool {
    text.chars().all(|c| c.len_utf16() == 1)
}
