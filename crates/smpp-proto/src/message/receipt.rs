//! Delivery receipts: the de-facto text format (SMPP v3.4 appendix B)
//! `id:… sub:… dlvrd:… submit date:… done date:… stat:… err:… text:…`, the structured TLVs
//! that take precedence over it, and message id normalisation.
//!
//! The parser is tolerant (our reference §8.3): labels are case-insensitive (`Text:`),
//! `submit_date:`/`submitdate:` are accepted, dates may have 10, 12 or 14 digits, unknown
//! `stat` words map to [`MessageState::Unknown`], fields may be missing, reordered or extra,
//! numbers need not be zero-padded and `err` may be longer than 3 characters.
//!
//! ```
//! use smpp_proto::message::receipt::{DeliveryReceipt, MessageIdFormat, MessageState, ReceiptTlvs};
//!
//! let text = "id:41394 sub:001 dlvrd:001 submit date:2601171030 done date:2601171031 \
//!             stat:DELIVRD err:000 Text:Hello";
//! let mut receipt = DeliveryReceipt::parse(text)?;
//! // TLVs, when the deliver_sm has them, win over the text.
//! receipt.merge_tlvs(&ReceiptTlvs { message_state: Some(2), ..ReceiptTlvs::default() });
//! assert_eq!(receipt.state, MessageState::Delivered);
//! // The submit_sm_resp said "0000A1B2" (hex); the receipt says 41394 (decimal).
//! assert!(MessageIdFormat::default().matches("0000A1B2", &receipt.id));
//! # Ok::<(), smpp_proto::message::receipt::NotAReceipt>(())
//! ```

use std::fmt::Write as _;

/// Longest receipt text considered; longer input is cut (a receipt is ~200 octets).
const MAX_INPUT: usize = 4096;
/// Unknown `label:value` fields kept at most.
const MAX_EXTRA: usize = 16;

/// `message_state` values (TLV 0x0427, `query_sm_resp`), wire values of SMPP v5.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageState {
    /// 0: scheduled (v5.0).
    Scheduled = 0,
    /// 1: en route (intermediate).
    Enroute = 1,
    /// 2: delivered.
    Delivered = 2,
    /// 3: expired.
    Expired = 3,
    /// 4: deleted.
    Deleted = 4,
    /// 5: undeliverable.
    Undeliverable = 5,
    /// 6: accepted (read on the subscriber's behalf).
    Accepted = 6,
    /// 7: unknown / invalid state.
    Unknown = 7,
    /// 8: rejected.
    Rejected = 8,
    /// 9: skipped (v5.0).
    Skipped = 9,
}

impl MessageState {
    /// Maps a wire value; `None` for values above 9.
    pub const fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Scheduled,
            1 => Self::Enroute,
            2 => Self::Delivered,
            3 => Self::Expired,
            4 => Self::Deleted,
            5 => Self::Undeliverable,
            6 => Self::Accepted,
            7 => Self::Unknown,
            8 => Self::Rejected,
            9 => Self::Skipped,
            _ => return None,
        })
    }

    /// The wire value.
    pub const fn to_u8(self) -> u8 {
        self as u8
    }

    /// Whether the state is final (no further receipt expected).
    pub const fn is_final(self) -> bool {
        !matches!(self, Self::Scheduled | Self::Enroute | Self::Unknown)
    }

    /// The `stat:` word of the text format (7 letters for the v3.4 states).
    pub const fn stat_word(self) -> &'static str {
        match self {
            Self::Scheduled => "SCHEDULED",
            Self::Enroute => "ENROUTE",
            Self::Delivered => "DELIVRD",
            Self::Expired => "EXPIRED",
            Self::Deleted => "DELETED",
            Self::Undeliverable => "UNDELIV",
            Self::Accepted => "ACCEPTD",
            Self::Unknown => "UNKNOWN",
            Self::Rejected => "REJECTD",
            Self::Skipped => "SKIPPED",
        }
    }

    /// Maps a `stat:` word, case-insensitively. Besides the standard words it accepts common
    /// long forms (`DELIVERED`, `UNDELIVERABLE`, `REJECTED`, `ACCEPTED`), `FAILED`/`FAIL`
    /// (undeliverable) and `BUFFERED`/`BUFFERD`/`ACKED` (still en route). Anything else is
    /// [`MessageState::Unknown`].
    pub fn from_stat_word(word: &str) -> Self {
        const WORDS: &[(&str, MessageState)] = &[
            ("DELIVRD", MessageState::Delivered),
            ("DELIVERED", MessageState::Delivered),
            ("EXPIRED", MessageState::Expired),
            ("DELETED", MessageState::Deleted),
            ("UNDELIV", MessageState::Undeliverable),
            ("UNDELIVERABLE", MessageState::Undeliverable),
            ("FAILED", MessageState::Undeliverable),
            ("FAIL", MessageState::Undeliverable),
            ("ACCEPTD", MessageState::Accepted),
            ("ACCEPTED", MessageState::Accepted),
            ("UNKNOWN", MessageState::Unknown),
            ("REJECTD", MessageState::Rejected),
            ("REJECTED", MessageState::Rejected),
            ("ENROUTE", MessageState::Enroute),
            ("BUFFERD", MessageState::Enroute),
            ("BUFFERED", MessageState::Enroute),
            ("ACKED", MessageState::Enroute),
            ("SCHEDULED", MessageState::Scheduled),
            ("SKIPPED", MessageState::Skipped),
        ];
        let word = word.trim();
        WORDS
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(word))
            .map_or(MessageState::Unknown, |&(_, s)| s)
    }
}

/// A receipt date (`YYMMDDhhmm`, `YYMMDDhhmmss` or `YYYYMMDDhhmmss`), local SMSC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReceiptDate {
    /// Full year; two-digit years are taken as 2000–2069 / 1970–1999.
    pub year: u16,
    /// Month 1–12.
    pub month: u8,
    /// Day 1–31.
    pub day: u8,
    /// Hour 0–23.
    pub hour: u8,
    /// Minute 0–59.
    pub minute: u8,
    /// Second 0–59 when the date had seconds.
    pub second: Option<u8>,
}

impl ReceiptDate {
    /// Parses 10, 12 or 14 ASCII digits; `None` otherwise or when a field is out of range.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n = |i: usize, len: usize| -> Option<u16> { s.get(i..i + len)?.parse().ok() };
        let (year, off) = match s.len() {
            10 | 12 => {
                let yy = n(0, 2)?;
                (if yy < 70 { 2000 + yy } else { 1900 + yy }, 2)
            }
            14 => (n(0, 4)?, 4),
            _ => return None,
        };
        let d = ReceiptDate {
            year,
            month: n(off, 2)? as u8,
            day: n(off + 2, 2)? as u8,
            hour: n(off + 4, 2)? as u8,
            minute: n(off + 6, 2)? as u8,
            second: if s.len() > 10 {
                Some(n(off + 8, 2)? as u8)
            } else {
                None
            },
        };
        let valid = (1..=12).contains(&d.month)
            && (1..=31).contains(&d.day)
            && d.hour < 24
            && d.minute < 60
            && d.second.is_none_or(|s| s < 60);
        valid.then_some(d)
    }

    /// `YYMMDDhhmm`, or `YYMMDDhhmmss` when the date has seconds.
    pub fn to_receipt_string(&self) -> String {
        let mut s = format!(
            "{:02}{:02}{:02}{:02}{:02}",
            self.year % 100,
            self.month,
            self.day,
            self.hour,
            self.minute
        );
        if let Some(sec) = self.second {
            let _ = write!(s, "{sec:02}");
        }
        s
    }
}

pub use crate::pdu::NetworkErrorCode;

/// Receipt fields from TLVs, which take precedence over the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiptTlvs<'a> {
    /// `receipted_message_id` (0x001E), without its NUL.
    pub receipted_message_id: Option<&'a str>,
    /// `message_state` (0x0427).
    pub message_state: Option<u8>,
    /// `network_error_code` (0x0423) value.
    pub network_error_code: Option<[u8; 3]>,
}

/// The text is not a delivery receipt (no `id:` and no `stat:` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a delivery receipt: neither id nor stat field found")]
pub struct NotAReceipt;

/// A delivery receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReceipt {
    /// Message id of the original message (`id:` or `receipted_message_id`).
    pub id: String,
    /// `sub:` messages originally submitted.
    pub submitted: Option<u32>,
    /// `dlvrd:` messages delivered.
    pub delivered: Option<u32>,
    /// `submit date:`.
    pub submit_date: Option<ReceiptDate>,
    /// `done date:`.
    pub done_date: Option<ReceiptDate>,
    /// Final state (`stat:` or `message_state`).
    pub state: MessageState,
    /// The `stat:` word as received, when present.
    pub stat_word: Option<String>,
    /// `err:` as received (network- or SMSC-specific, often 3 digits).
    pub error: Option<String>,
    /// `text:` (first characters of the original message).
    pub text: Option<String>,
    /// From the `network_error_code` TLV.
    pub network_error: Option<NetworkErrorCode>,
    /// Other `label:value` fields, labels lower-cased.
    pub extra: Vec<(String, String)>,
}

impl DeliveryReceipt {
    /// A receipt with the given id and state and nothing else.
    pub fn new(id: impl Into<String>, state: MessageState) -> Self {
        DeliveryReceipt {
            id: id.into(),
            submitted: None,
            delivered: None,
            submit_date: None,
            done_date: None,
            state,
            stat_word: None,
            error: None,
            text: None,
            network_error: None,
            extra: Vec::new(),
        }
    }

    /// `err:` as a number when it is decimal.
    pub fn error_code(&self) -> Option<u32> {
        self.error.as_deref()?.trim().parse().ok()
    }

    /// Parses the text form. Fails only when neither `id` nor `stat` is present.
    pub fn parse(input: &str) -> Result<Self, NotAReceipt> {
        let mut end = input.len().min(MAX_INPUT);
        while !input.is_char_boundary(end) {
            end -= 1;
        }
        let mut r = DeliveryReceipt::new(String::new(), MessageState::Unknown);
        let (mut have_id, mut have_stat) = (false, false);
        let mut rest = input[..end].trim_matches(|c: char| c == '\0' || c.is_whitespace());
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                break;
            }
            if starts_with_ignore_case(rest, "text:") {
                let text = &rest[5..];
                r.text = Some(text.strip_prefix(' ').unwrap_or(text).to_owned());
                break;
            }
            let (token, after) = split_token(rest);
            rest = after;
            let (label, mut value) = match token.split_once(':') {
                Some(lv) => lv,
                None => {
                    // Two-word labels: "submit date:", "done date:".
                    let (next, after_next) = split_token(rest.trim_start());
                    match next.split_once(':') {
                        Some((d, v)) if d.eq_ignore_ascii_case("date") => {
                            rest = after_next;
                            (token, v)
                        }
                        _ => continue,
                    }
                }
            };
            if value.is_empty() {
                // "id: 123": the value is the next token unless it is another field.
                let (next, after_next) = split_token(rest.trim_start());
                if !next.is_empty() && !next.contains(':') {
                    value = next;
                    rest = after_next;
                }
            }
            let norm: String = label
                .chars()
                .filter(|c| *c != '_' && *c != '-' && *c != ' ')
                .map(|c| c.to_ascii_lowercase())
                .collect();
            match norm.as_str() {
                "id" | "messageid" | "msgid" => {
                    r.id = value.to_owned();
                    have_id = true;
                }
                "sub" => r.submitted = value.parse().ok(),
                "dlvrd" | "dlvd" | "delivered" => r.delivered = value.parse().ok(),
                "submit" | "submitdate" => r.submit_date = ReceiptDate::parse(value),
                "done" | "donedate" => r.done_date = ReceiptDate::parse(value),
                "stat" | "status" | "state" => {
                    r.state = MessageState::from_stat_word(value);
                    r.stat_word = Some(value.to_owned());
                    have_stat = true;
                }
                "err" | "error" => r.error = Some(value.to_owned()),
                _ if r.extra.len() < MAX_EXTRA => r.extra.push((norm, value.to_owned())),
                _ => {}
            }
        }
        if have_id || have_stat {
            Ok(r)
        } else {
            Err(NotAReceipt)
        }
    }

    /// Builds a receipt from TLVs alone (some SMSCs send no text); `None` without an id.
    pub fn from_tlvs(tlvs: &ReceiptTlvs<'_>) -> Option<Self> {
        let mut r = DeliveryReceipt::new(String::new(), MessageState::Unknown);
        r.merge_tlvs(tlvs);
        (!r.id.is_empty()).then_some(r)
    }

    /// Overrides text-derived fields with the TLV values present (TLVs take precedence).
    /// A `message_state` above 9 becomes [`MessageState::Unknown`].
    pub fn merge_tlvs(&mut self, tlvs: &ReceiptTlvs<'_>) {
        if let Some(id) = tlvs.receipted_message_id {
            let id = id.trim_end_matches('\0').trim();
            if !id.is_empty() {
                self.id = id.to_owned();
            }
        }
        if let Some(state) = tlvs.message_state {
            self.state = MessageState::from_u8(state).unwrap_or(MessageState::Unknown);
        }
        if let Some(nec) = tlvs.network_error_code {
            self.network_error = NetworkErrorCode::from_bytes(&nec);
        }
    }

    /// Formats the de-facto text form. Missing counters are written as `001`/`000`
    /// (delivered only when the state is `Delivered`), missing dates as the other date or
    /// `0000000000`, a missing `err` as `000`; `text` is cut to 20 characters.
    pub fn to_text(&self) -> String {
        let date = |d: Option<ReceiptDate>, other: Option<ReceiptDate>| {
            d.or(other)
                .map_or_else(|| "0000000000".to_owned(), |d| d.to_receipt_string())
        };
        let delivered = self
            .delivered
            .unwrap_or(u32::from(self.state == MessageState::Delivered));
        let mut s = String::with_capacity(160);
        let _ = write!(
            s,
            "id:{} sub:{:03} dlvrd:{:03} submit date:{} done date:{} stat:{} err:{} text:",
            self.id,
            self.submitted.unwrap_or(1),
            delivered,
            date(self.submit_date, self.done_date),
            date(self.done_date, self.submit_date),
            self.state.stat_word(),
            self.error.as_deref().unwrap_or("000"),
        );
        if let Some(t) = &self.text {
            s.extend(t.chars().take(20));
        }
        s
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Splits off the first whitespace-delimited token.
fn split_token(s: &str) -> (&str, &str) {
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// How a peer writes message ids (cf. Kannel `msg-id-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IdRadix {
    /// Decide per id: all decimal digits ⇒ decimal number; otherwise all hex digits (an
    /// optional `0x` prefix allowed) ⇒ hex number; otherwise opaque text.
    #[default]
    Auto,
    /// Always a decimal number.
    Decimal,
    /// Always a hex number (even when it has no letters, e.g. `00012345`).
    Hex,
    /// Opaque text, compared case-insensitively after trimming.
    Text,
}

/// Message id conventions of a peer: how ids appear in `submit_sm_resp` and in receipts.
///
/// Normalisation rules, applied by [`canonical_submit`](Self::canonical_submit) and
/// [`canonical_receipt`](Self::canonical_receipt):
///
/// 1. Whitespace and NULs around the id are removed.
/// 2. An id read as a number (per its [`IdRadix`]) becomes its decimal value without
///    leading zeros, so `0000A1B2` (hex) and `41394` (decimal) both become `41394`, and
///    `00123` equals `123`. Values that do not fit 128 bits stay text.
/// 3. Otherwise the id is lower-cased text.
///
/// With [`IdRadix::Auto`] on both sides a hex id made only of digits is read as decimal; set
/// the radix explicitly (or use [`from_kannel_msg_id_type`](Self::from_kannel_msg_id_type))
/// for peers that send such ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MessageIdFormat {
    /// Radix of ids in `submit_sm_resp` (and `receipted_message_id`).
    pub submit_response: IdRadix,
    /// Radix of the `id:` field in receipt text.
    pub receipt: IdRadix,
}

impl MessageIdFormat {
    /// Kannel's `msg-id-type`: bit 0x01 = submit_sm_resp ids are hex, bit 0x02 = receipt
    /// ids are hex; a clear bit means decimal.
    pub const fn from_kannel_msg_id_type(v: u8) -> Self {
        MessageIdFormat {
            submit_response: if v & 1 != 0 {
                IdRadix::Hex
            } else {
                IdRadix::Decimal
            },
            receipt: if v & 2 != 0 {
                IdRadix::Hex
            } else {
                IdRadix::Decimal
            },
        }
    }

    /// Canonical key of an id from `submit_sm_resp`.
    pub fn canonical_submit(&self, id: &str) -> String {
        canonical_id(id, self.submit_response)
    }

    /// Canonical key of an id from a receipt.
    pub fn canonical_receipt(&self, id: &str) -> String {
        canonical_id(id, self.receipt)
    }

    /// Whether a `submit_sm_resp` id and a receipt id denote the same message.
    pub fn matches(&self, submit_id: &str, receipt_id: &str) -> bool {
        self.canonical_submit(submit_id) == self.canonical_receipt(receipt_id)
    }
}

/// The canonical form of `id` read with `radix` (see [`MessageIdFormat`]).
pub fn canonical_id(id: &str, radix: IdRadix) -> String {
    let id = id.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    let value = match radix {
        IdRadix::Text => None,
        IdRadix::Decimal => parse_radix(id, 10),
        IdRadix::Hex => parse_radix(strip_0x(id), 16),
        IdRadix::Auto => parse_radix(id, 10).or_else(|| parse_radix(strip_0x(id), 16)),
    };
    match value {
        Some(v) => v.to_string(),
        None => id.to_lowercase(),
    }
}

fn strip_0x(s: &str) -> &str {
    s.strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s)
}

fn parse_radix(s: &str, radix: u32) -> Option<u128> {
    if s.is_empty() || !s.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u128::from_str_radix(s, radix).ok()
}
