//! Decode and encode errors.

use super::{CommandId, CommandStatus, Pdu, SequenceNumber, TlvTag};

/// What was wrong with a received PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// `command_length` below 16: the stream cannot be framed any more.
    #[error("command_length {length} is below the 16-octet header")]
    LengthTooSmall {
        /// The value read.
        length: u32,
    },
    /// `command_length` above the configured maximum: refused before reading it.
    #[error("command_length {length} exceeds the maximum of {max}")]
    LengthTooLarge {
        /// The value read.
        length: u32,
        /// The configured maximum.
        max: usize,
    },
    /// The body ends before a mandatory field.
    #[error("body ends before field `{field}`")]
    UnexpectedEnd {
        /// The field that could not be read.
        field: &'static str,
    },
    /// A C-Octet String has no NUL terminator before the end of the PDU.
    #[error("field `{field}` has no NUL terminator")]
    MissingNul {
        /// The field.
        field: &'static str,
    },
    /// A C-Octet String is longer than the field allows.
    #[error("field `{field}` is {len} octets long with its NUL; at most {max} allowed")]
    StringTooLong {
        /// The field.
        field: &'static str,
        /// Its length including the NUL.
        len: usize,
        /// The field's maximum including the NUL.
        max: usize,
    },
    /// A time field is neither NULL nor 16 characters.
    #[error("time field `{field}` must be empty or 16 characters, not {len}")]
    InvalidTime {
        /// The field.
        field: &'static str,
        /// Its length without the NUL.
        len: usize,
    },
    /// `sm_length` runs past the end of the body.
    #[error("sm_length {sm_length} exceeds the {available} octets left in the body")]
    ShortMessageOverrun {
        /// The declared length.
        sm_length: u8,
        /// Octets actually left.
        available: usize,
    },
    /// An unknown `dest_flag` in submit_multi.
    #[error("invalid dest_flag {flag}")]
    InvalidDestFlag {
        /// The value read.
        flag: u8,
    },
    /// The TLV section is corrupt: stray octets, or a length overrunning the PDU.
    #[error("corrupt TLV section")]
    TlvStream,
    /// A known TLV has a length outside its rules.
    #[error("TLV {tag} has invalid length {len}")]
    TlvLength {
        /// The tag.
        tag: TlvTag,
        /// The length read.
        len: usize,
    },
    /// A known TLV has an invalid value (a C-string without NUL).
    #[error("TLV {tag} has an invalid value")]
    TlvValue {
        /// The tag.
        tag: TlvTag,
    },
}

impl DecodeErrorKind {
    /// The status the specification names for this problem.
    pub fn status(&self, field_status: CommandStatus) -> CommandStatus {
        match self {
            Self::LengthTooSmall { .. }
            | Self::LengthTooLarge { .. }
            | Self::UnexpectedEnd { .. } => CommandStatus::INVALID_COMMAND_LENGTH,
            Self::MissingNul { .. } | Self::StringTooLong { .. } | Self::InvalidTime { .. } => {
                field_status
            }
            Self::ShortMessageOverrun { .. } => CommandStatus::INVALID_MESSAGE_LENGTH,
            Self::InvalidDestFlag { .. } => CommandStatus::INVALID_DESTINATION_FLAG,
            Self::TlvStream => CommandStatus::INVALID_TLV_STREAM,
            Self::TlvLength { .. } => CommandStatus::INVALID_TLV_LENGTH,
            Self::TlvValue { .. } => CommandStatus::INVALID_TLV_VALUE,
        }
    }
}

/// A PDU that could not be decoded, with what to answer.
///
/// Framing errors (`command_length` out of range) are *fatal*: the byte stream
/// can no longer be split into PDUs, so the connection should be closed after
/// a `generic_nack`. Every other error has consumed exactly the bad frame; the
/// stream continues with the next PDU.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{command_id} (seq {sequence_number}): {kind} at offset {offset}")]
pub struct DecodeError {
    pub(crate) kind: DecodeErrorKind,
    pub(crate) offset: usize,
    pub(crate) command_id: CommandId,
    pub(crate) sequence_number: u32,
    pub(crate) status: CommandStatus,
    pub(crate) fatal: bool,
}

impl DecodeError {
    /// What was wrong.
    pub fn kind(&self) -> &DecodeErrorKind {
        &self.kind
    }

    /// Byte offset of the problem from the start of the PDU.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The `command_id` of the bad PDU (whatever its header said).
    pub fn command_id(&self) -> CommandId {
        self.command_id
    }

    /// The bad PDU's sequence number, when its header can be trusted.
    pub fn sequence_number(&self) -> Option<SequenceNumber> {
        (!self.fatal).then_some(SequenceNumber::new(self.sequence_number))
    }

    /// The `command_status` to answer with.
    pub fn status(&self) -> CommandStatus {
        self.status
    }

    /// The stream is no longer framed: answer, then close the connection.
    pub fn is_fatal(&self) -> bool {
        self.fatal
    }

    /// The PDU to send back, per SMPP 5.0 §2.8.2 / 3.4 §2.5: the request's own
    /// `*_resp` with the error status, or `generic_nack` when the header is
    /// unusable or the request has no response PDU. `None` for a bad
    /// response: responses are never answered.
    pub fn response(&self) -> Option<Pdu> {
        if self.fatal {
            return Some(Pdu::generic_nack(SequenceNumber::new(0), self.status));
        }
        if self.command_id.is_response() {
            return None;
        }
        let seq = SequenceNumber::new(self.sequence_number);
        Some(match self.command_id.response_id() {
            Some(id) if self.command_id.is_known() => Pdu::error_response(id, seq, self.status),
            _ => Pdu::generic_nack(seq, self.status),
        })
    }
}

/// A PDU that could not be encoded. Nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A C-Octet String exceeds its field's maximum.
    #[error("field `{field}` is {len} octets long with its NUL; at most {max} allowed")]
    StringTooLong {
        /// The field.
        field: &'static str,
        /// Its length including the NUL.
        len: usize,
        /// The maximum including the NUL.
        max: usize,
    },
    /// A C-Octet String contains a NUL octet.
    #[error("field `{field}` contains a NUL octet")]
    NulInString {
        /// The field.
        field: &'static str,
    },
    /// A time field is neither empty nor 16 characters.
    #[error("time field `{field}` must be empty or 16 characters, not {len}")]
    InvalidTime {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// short_message longer than 255 octets (use `message_payload`).
    #[error("short_message is {len} octets; at most 255 fit (use message_payload)")]
    ShortMessageTooLong {
        /// Its length.
        len: usize,
    },
    /// More than 255 entries in a list with a one-octet count.
    #[error("{field} has {count} entries; at most 255 fit")]
    TooManyEntries {
        /// The list.
        field: &'static str,
        /// Its length.
        count: usize,
    },
    /// A TLV value longer than 65535 octets.
    #[error("TLV {tag} value is {len} octets; at most 65535 fit")]
    TlvTooLong {
        /// The tag.
        tag: TlvTag,
        /// The value length.
        len: usize,
    },
    /// The caller's buffer cannot hold the PDU.
    #[error("buffer has room for {available} octets; the PDU needs {needed}")]
    BufferTooSmall {
        /// Octets needed.
        needed: usize,
        /// Octets available.
        available: usize,
    },
}
