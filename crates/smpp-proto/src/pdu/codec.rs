//! Framing, the field reader and writer shared by every PDU body.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::{DecodeError, DecodeErrorKind, EncodeError};
use super::tlv::{self, TlvProblem, Tlvs};
use super::{COctetString, CommandId, CommandStatus, Pdu};

/// Length of the PDU header.
pub const HEADER_LEN: usize = 16;

/// Default cap on `command_length`: 64 KiB, as Wireshark's and gosmpp's.
pub const DEFAULT_MAX_PDU_LEN: usize = 64 * 1024;

/// How strictly received PDUs are checked.
///
/// Strict by default. Each switch relaxes one real-world quirk (see the
/// reference, §10); none of them affects framing, which is always strict.
/// Responses are always decoded tolerantly where the specification asks
/// receivers to be: an error response's body may be present or absent, and a
/// success response with no body at all (bind_resp without system_id) is
/// accepted with empty fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeConfig {
    /// Largest `command_length` accepted; larger ones are refused from the
    /// header alone, before any octet of the body is buffered.
    pub max_pdu_len: usize,
    /// Accept C-Octet Strings longer than their field's maximum
    /// (over-long passwords and message ids are common).
    pub allow_oversize_strings: bool,
    /// Accept a C-Octet String that runs to the end of the body without its NUL.
    pub allow_missing_final_nul: bool,
    /// Do not check the length and value rules of known TLVs, and drop 1–3
    /// stray octets at the end of a body instead of refusing the PDU.
    pub lenient_tlvs: bool,
    /// Accept time fields of any length up to 16 characters (12-character
    /// `YYMMDDhhmmss` forms are seen in the wild).
    pub lenient_times: bool,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            max_pdu_len: DEFAULT_MAX_PDU_LEN,
            allow_oversize_strings: false,
            allow_missing_final_nul: false,
            lenient_tlvs: false,
            lenient_times: false,
        }
    }
}

impl DecodeConfig {
    /// Strict checking (the default).
    pub fn strict() -> Self {
        Self::default()
    }

    /// Every leniency switch on.
    pub fn lenient() -> Self {
        DecodeConfig {
            allow_oversize_strings: true,
            allow_missing_final_nul: true,
            lenient_tlvs: true,
            lenient_times: true,
            ..Self::default()
        }
    }

    /// Sets [`DecodeConfig::max_pdu_len`] (at least 16).
    #[must_use]
    pub fn with_max_pdu_len(mut self, max: usize) -> Self {
        self.max_pdu_len = max.max(HEADER_LEN);
        self
    }
}

/// The result of [`decode`] on a stream buffer.
#[derive(Debug)]
#[must_use]
pub enum Decoded {
    /// One whole PDU, removed from the buffer.
    Pdu(Pdu),
    /// Not enough bytes yet; at least `needed` more are required.
    Partial {
        /// How many more octets are needed to make progress.
        needed: usize,
    },
}

/// Reads the header's `command_length` and checks it. `Ok(None)`: fewer than 4 octets.
pub fn frame_len(buf: &[u8], config: &DecodeConfig) -> Result<Option<usize>, DecodeError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let length = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let id = if buf.len() >= 8 {
        u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]])
    } else {
        0
    };
    let kind = if (length as usize) < HEADER_LEN {
        DecodeErrorKind::LengthTooSmall { length }
    } else if length as usize > config.max_pdu_len {
        DecodeErrorKind::LengthTooLarge {
            length,
            max: config.max_pdu_len,
        }
    } else {
        return Ok(Some(length as usize));
    };
    Err(DecodeError {
        kind,
        offset: 0,
        command_id: CommandId(id),
        sequence_number: 0,
        status: CommandStatus::INVALID_COMMAND_LENGTH,
        fatal: true,
    })
}

/// Takes one PDU off the front of a stream buffer.
///
/// Returns [`Decoded::Partial`] until a whole frame is buffered. On success the
/// frame is split off `buf` and its variable fields are slices of it (no
/// copy). On a non-fatal error the bad frame has been removed and decoding can
/// go on with the next one; on a fatal (framing) error nothing was removed.
#[inline]
pub fn decode(buf: &mut BytesMut, config: &DecodeConfig) -> Result<Decoded, DecodeError> {
    if is_header_only(buf, config) {
        // Header-only PDUs (enquire_link, unbind, most responses) never touch
        // the allocator (nor a call frame sized for the bodies').
        let decoded = decode_header_only(&buf[..HEADER_LEN], |p| Ok(Decoded::Pdu(p)));
        buf.advance(HEADER_LEN);
        return decoded;
    }
    decode_any(buf, config)
}

/// `buf` starts with a header-only frame (`command_length` 16), which the
/// configuration accepts.
#[inline(always)]
fn is_header_only(buf: &[u8], config: &DecodeConfig) -> bool {
    buf.len() >= HEADER_LEN
        && read_u32(buf, 0) == HEADER_LEN as u32
        && config.max_pdu_len >= HEADER_LEN
}

#[inline(never)]
fn decode_any(buf: &mut BytesMut, config: &DecodeConfig) -> Result<Decoded, DecodeError> {
    let Some(len) = frame_len(buf, config)? else {
        return Ok(Decoded::Partial {
            needed: 4 - buf.len(),
        });
    };
    if buf.len() < len {
        return Ok(Decoded::Partial {
            needed: len - buf.len(),
        });
    }
    if len == HEADER_LEN {
        // Header-only PDUs (enquire_link, unbind, error responses...) never touch the allocator.
        let decoded = decode_header_only(&buf[..HEADER_LEN], |p| Ok(Decoded::Pdu(p)));
        buf.advance(HEADER_LEN);
        return decoded;
    }
    let frame = buf.split_to(len).freeze();
    decode_body(frame, config).map(Decoded::Pdu)
}

/// Decodes exactly one PDU from `frame`, whose length must equal its `command_length`.
///
/// To decode a frame you keep, pass a reference: [`decode_frame_ref`] does not
/// touch the frame's reference count for header-only PDUs.
#[inline]
pub fn decode_frame(frame: Bytes, config: &DecodeConfig) -> Result<Pdu, DecodeError> {
    if frame.len() == HEADER_LEN && is_header_only(&frame, config) {
        return header_only_pdu(&frame);
    }
    decode_frame_owned(frame, config)
}

#[inline(never)]
fn decode_frame_owned(frame: Bytes, config: &DecodeConfig) -> Result<Pdu, DecodeError> {
    match frame_len(&frame, config)? {
        Some(HEADER_LEN) if frame.len() == HEADER_LEN => header_only_pdu(&frame),
        Some(len) if len == frame.len() => decode_body(frame, config),
        _ => Err(bad_frame_len(&frame)),
    }
}

/// [`decode_frame`] of a frame the caller keeps. A header-only PDU
/// (`enquire_link`, `unbind`, most responses) is built from the header
/// alone, without a reference to the frame; a PDU with a body takes one (its
/// variable fields are slices of the frame, as with [`decode_frame`]).
#[inline]
pub fn decode_frame_ref(frame: &Bytes, config: &DecodeConfig) -> Result<Pdu, DecodeError> {
    if frame.len() == HEADER_LEN && is_header_only(frame, config) {
        return header_only_pdu(frame);
    }
    decode_frame_any(frame, config)
}

#[inline(never)]
fn decode_frame_any(frame: &Bytes, config: &DecodeConfig) -> Result<Pdu, DecodeError> {
    match frame_len(frame, config)? {
        Some(HEADER_LEN) if frame.len() == HEADER_LEN => header_only_pdu(frame),
        Some(len) if len == frame.len() => decode_body(frame.clone(), config),
        _ => Err(bad_frame_len(frame)),
    }
}

#[inline(always)]
fn header_only_pdu(h: &[u8]) -> Result<Pdu, DecodeError> {
    decode_header_only(h, Ok)
}

/// A frame whose length is not its `command_length`.
#[cold]
#[inline(never)]
fn bad_frame_len(frame: &[u8]) -> DecodeError {
    let (id, seq) = if frame.len() >= HEADER_LEN {
        (read_u32(frame, 4), read_u32(frame, 12))
    } else {
        (0, 0)
    };
    DecodeError {
        kind: DecodeErrorKind::UnexpectedEnd {
            field: "command_length",
        },
        offset: 0,
        command_id: CommandId(id),
        sequence_number: seq,
        status: CommandStatus::INVALID_COMMAND_LENGTH,
        fatal: frame.len() < HEADER_LEN,
    }
}

#[inline(always)]
fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A header-only frame, built in place and wrapped by `ok` (see `Body::header_only`).
#[inline(always)]
fn decode_header_only<R>(
    h: &[u8],
    ok: impl Fn(Pdu) -> Result<R, DecodeError>,
) -> Result<R, DecodeError> {
    let id = CommandId(read_u32(h, 4));
    let status = CommandStatus(read_u32(h, 8));
    let seq = read_u32(h, 12);
    let ok = &ok;
    super::Body::header_only(id, status, super::SequenceNumber::new(seq), ok, move || {
        // A body-less request whose body has mandatory fields: let the body
        // decoder name the missing field and its status.
        missing_body(id, status, seq).and_then(ok)
    })
}

#[cold]
#[inline(never)]
fn missing_body(id: CommandId, status: CommandStatus, seq: u32) -> Result<Pdu, DecodeError> {
    let mut r = Reader::new(Bytes::new(), HEADER_LEN, &STRICT);
    super::decode_pdu_body(id, status, seq, &mut r)
}

static STRICT: DecodeConfig = DecodeConfig {
    max_pdu_len: DEFAULT_MAX_PDU_LEN,
    allow_oversize_strings: false,
    allow_missing_final_nul: false,
    lenient_tlvs: false,
    lenient_times: false,
};

#[inline(always)]
fn decode_body(frame: Bytes, config: &DecodeConfig) -> Result<Pdu, DecodeError> {
    let id = CommandId(read_u32(&frame, 4));
    let status = CommandStatus(read_u32(&frame, 8));
    let seq = read_u32(&frame, 12);
    let mut r = Reader::new(frame, HEADER_LEN, config);
    super::decode_pdu_body(id, status, seq, &mut r)
}

/// A failed field read: the problem, where, and the status the field names.
#[derive(Debug)]
pub(crate) struct FieldError {
    pub(crate) kind: DecodeErrorKind,
    pub(crate) offset: usize,
    pub(crate) status: CommandStatus,
}

impl FieldError {
    pub(crate) fn into_decode_error(self, id: CommandId, seq: u32) -> DecodeError {
        let status = self.kind.status(self.status);
        DecodeError {
            kind: self.kind,
            offset: self.offset,
            command_id: id,
            sequence_number: seq,
            status,
            fatal: false,
        }
    }
}

pub(crate) type FieldResult<T> = Result<T, FieldError>;

/// Cursor over one frame's body.
#[derive(Debug)]
pub(crate) struct Reader<'c> {
    frame: Bytes,
    pos: usize,
    /// End of the frame (the frame may be empty for header-only PDUs).
    end: usize,
    config: &'c DecodeConfig,
}

impl<'c> Reader<'c> {
    #[inline(always)]
    pub(crate) fn new(frame: Bytes, pos: usize, config: &'c DecodeConfig) -> Self {
        let end = frame.len().max(pos);
        Reader {
            frame,
            pos,
            end,
            config,
        }
    }

    #[inline(always)]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    #[inline(always)]
    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    fn err(&self, kind: DecodeErrorKind, status: CommandStatus) -> FieldError {
        FieldError {
            kind,
            offset: self.pos,
            status,
        }
    }

    #[inline(always)]
    pub(crate) fn u8(&mut self, field: &'static str) -> FieldResult<u8> {
        if self.pos >= self.end {
            return Err(self.err(
                DecodeErrorKind::UnexpectedEnd { field },
                CommandStatus::INVALID_COMMAND_LENGTH,
            ));
        }
        let v = self.frame[self.pos];
        self.pos += 1;
        Ok(v)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> FieldResult<u32> {
        if self.remaining() < 4 {
            return Err(self.err(
                DecodeErrorKind::UnexpectedEnd { field },
                CommandStatus::INVALID_COMMAND_LENGTH,
            ));
        }
        let v = read_u32(&self.frame, self.pos);
        self.pos += 4;
        Ok(v)
    }

    /// A C-Octet String of at most `max` octets including its NUL.
    #[inline(always)]
    pub(crate) fn cstr(
        &mut self,
        max: usize,
        field: &'static str,
        status: CommandStatus,
    ) -> FieldResult<COctetString> {
        if self.pos >= self.end {
            return Err(self.err(
                DecodeErrorKind::UnexpectedEnd { field },
                CommandStatus::INVALID_COMMAND_LENGTH,
            ));
        }
        let rest = &self.frame[self.pos..self.end];
        let (len, consumed) = match super::string::find_nul(rest) {
            Some(n) => (n, n + 1),
            // The string runs to the end of the body.
            None if self.config.allow_missing_final_nul => (rest.len(), rest.len()),
            None => return Err(self.err(DecodeErrorKind::MissingNul { field }, status)),
        };
        if len + 1 > max && !self.config.allow_oversize_strings {
            return Err(self.err(
                DecodeErrorKind::StringTooLong {
                    field,
                    len: len + 1,
                    max,
                },
                status,
            ));
        }
        let s = COctetString::from_frame(&self.frame, self.pos..self.pos + len);
        self.pos += consumed;
        Ok(s)
    }

    /// A time field: C(1|17).
    #[inline(always)]
    pub(crate) fn time(
        &mut self,
        field: &'static str,
        status: CommandStatus,
    ) -> FieldResult<COctetString> {
        let start = self.pos;
        let s = self.cstr(17, field, status)?;
        let ok = s.is_empty() || s.len() == 16 || (self.config.lenient_times && s.len() <= 16);
        if !ok {
            return Err(FieldError {
                kind: DecodeErrorKind::InvalidTime {
                    field,
                    len: s.len(),
                },
                offset: start,
                status,
            });
        }
        Ok(s)
    }

    /// `sm_length` followed by that many octets of `short_message`.
    #[inline(always)]
    pub(crate) fn sm(&mut self) -> FieldResult<Bytes> {
        let n = usize::from(self.u8("sm_length")?);
        if n > self.remaining() {
            return Err(FieldError {
                kind: DecodeErrorKind::ShortMessageOverrun {
                    sm_length: n as u8,
                    available: self.remaining(),
                },
                offset: self.pos - 1,
                status: CommandStatus::INVALID_MESSAGE_LENGTH,
            });
        }
        let s = if n == 0 {
            Bytes::new()
        } else {
            self.frame.slice(self.pos..self.pos + n)
        };
        self.pos += n;
        Ok(s)
    }

    /// The TLV section: everything left in the frame.
    #[inline(always)]
    pub(crate) fn tlvs(&mut self) -> FieldResult<Tlvs> {
        if self.pos >= self.end {
            return Ok(Tlvs::new());
        }
        let start = self.pos;
        let strict = !self.config.lenient_tlvs;
        let mut end = self.end;
        if let Err(p) = tlv::check(&self.frame[start..end], strict) {
            match p {
                TlvProblem::Stream { offset } if !strict => end = start + offset,
                p => {
                    return Err(FieldError {
                        offset: start + p.offset(),
                        kind: p.into_kind(),
                        status: CommandStatus::INVALID_TLV_STREAM,
                    })
                }
            }
        }
        self.pos = self.end;
        // The TLVs take the frame itself: no reference-count traffic.
        let mut raw = core::mem::take(&mut self.frame);
        raw.truncate(end);
        raw.advance(start);
        Ok(Tlvs::from_checked(raw))
    }
}

impl TlvProblem {
    pub(crate) fn offset(&self) -> usize {
        match *self {
            TlvProblem::Stream { offset }
            | TlvProblem::Length { offset, .. }
            | TlvProblem::Value { offset, .. } => offset,
        }
    }

    pub(crate) fn into_kind(self) -> DecodeErrorKind {
        match self {
            TlvProblem::Stream { .. } => DecodeErrorKind::TlvStream,
            TlvProblem::Length { tag, len, .. } => DecodeErrorKind::TlvLength { tag, len },
            TlvProblem::Value { tag, .. } => DecodeErrorKind::TlvValue { tag },
        }
    }
}

/// Length checks shared by `encoded_len` (which validates) and the writers.
#[inline(always)]
pub(crate) fn check_cstr(
    s: &COctetString,
    max: usize,
    field: &'static str,
) -> Result<usize, EncodeError> {
    let len = s.wire_len();
    if len > max {
        return Err(EncodeError::StringTooLong { field, len, max });
    }
    if s.has_nul() {
        return Err(EncodeError::NulInString { field });
    }
    Ok(len)
}

#[inline(always)]
pub(crate) fn check_time(s: &COctetString, field: &'static str) -> Result<usize, EncodeError> {
    if !(s.is_empty() || s.len() == 16) {
        return Err(EncodeError::InvalidTime {
            field,
            len: s.len(),
        });
    }
    check_cstr(s, 17, field)
}

#[inline(always)]
pub(crate) fn check_sm(s: &Bytes) -> Result<usize, EncodeError> {
    if s.len() > 255 {
        return Err(EncodeError::ShortMessageTooLong { len: s.len() });
    }
    Ok(1 + s.len())
}

#[inline(always)]
pub(crate) fn put_cstr<B: BufMut>(out: &mut B, s: &COctetString) {
    out.put_slice(s.as_bytes());
    out.put_u8(0);
}

#[inline(always)]
pub(crate) fn put_sm<B: BufMut>(out: &mut B, s: &Bytes) {
    out.put_u8(s.len() as u8);
    out.put_slice(s);
}

impl Reader<'_> {
    /// Everything left, as one slice (unknown command ids).
    pub(crate) fn rest(&mut self) -> Bytes {
        if self.pos >= self.end {
            return Bytes::new();
        }
        let mut raw = core::mem::take(&mut self.frame);
        raw.advance(self.pos);
        self.pos = self.end;
        raw
    }
}
