//! The message layer: text encodings, long messages, delivery receipts.
//!
//! Plain data in, plain data out; only [`short_message`](mod@short_message) touches PDU types:
//!
//! * [`gsm7`], [`national`]: GSM 03.38 / TS 23.038 default alphabet, extension table and the
//!   national language single/locking shift tables; packing with fill bits and CR padding.
//! * [`ucs2`], [`charsets`]: UTF-16BE, IA5, Latin-1, ISO-8859-5, ISO-8859-8.
//! * [`coding`]: the `data_coding` octet ([`DataCoding`]) and text decoding driven by it.
//! * [`udh`]: User Data Header parsing and building.
//! * [`concat`](mod@concat): encoding choice, segment counting and splitting (UDH-8, UDH-16, SAR,
//!   payload).
//! * [`reassembly`]: sans-IO reassembly of concatenated parts with bounded memory.
//! * [`receipt`]: delivery receipts (text format and TLVs) and message id normalisation.
//! * [`wap`], [`mms`], [`ussd`], [`mwi`]: WAP push (SI/SL) and its decoder, MMS notifications,
//!   USSD service ops, message waiting.
//! * [`features`]: what a received message is (WAP push, MMS notification, MWI, USSD,
//!   billing), in one call.
//! * [`broadcast`]: v5.0 cell broadcast (`broadcast_sm` builder, areas) and `billing_identification`.
//! * [`short_message`](mod@short_message): the [`ShortMessage`] builder (text to `submit_sm`
//!   parts) and receipts/parts read from received `deliver_sm`/`data_sm`.
//!
//! ```
//! use smpp_proto::message::concat::{segment_text, ReferenceCounter, SegmentationPolicy};
//!
//! let mut refs = ReferenceCounter::new(7);
//! let parts = segment_text(&"x".repeat(200), &SegmentationPolicy::default(), &mut refs)?;
//! assert_eq!(parts.segments.len(), 2); // 153 + 47 septets
//! assert_eq!(parts.segments[0].esm_class(0x00), 0x40); // UDHI
//! # Ok::<(), smpp_proto::message::concat::SegmentError>(())
//! ```

pub mod broadcast;
pub mod charsets;
pub mod coding;
pub mod concat;
pub mod features;
pub mod gsm7;
pub mod mms;
pub mod mwi;
pub mod national;
pub mod reassembly;
pub mod receipt;
pub mod short_message;
pub mod time;
pub mod ucs2;
pub mod udh;
pub mod ussd;
pub mod wap;

pub use coding::{decode_text, decode_user_data, DataCoding, DecodeOptions, SmscDefaultAlphabet};
pub use concat::{
    choose_encoding, parts_on_air, segment_info, segment_text, submit_parts_on_air, CharsetSet,
    ConcatMode, ReferenceCounter, Segment, SegmentInfo, SegmentationPolicy, TextEncoding,
};
pub use gsm7::Gsm7Alphabet;
pub use national::NationalLanguage;
pub use reassembly::{IncomingPart, PartOutcome, Reassembler, ReassemblyConfig, ReassemblyEvent};
pub use receipt::{DeliveryReceipt, MessageIdFormat, MessageState};
pub use short_message::{Address, BuildError, ReceiptCarrier, ShortMessage};
pub use udh::{InformationElement, UserDataHeader};
pub use ussd::UssdServiceOp;

/// Fuzz target bodies: call them from `fuzz/fuzz_targets/*.rs` with the fuzzer's bytes.
/// Each exercises a decoder on arbitrary input and asserts its invariants.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use std::time::{Duration, Instant};

    use bytes::Bytes;

    use super::coding::DataCoding;
    use super::gsm7::{self, Gsm7Alphabet};
    use super::national::NationalLanguage;
    use super::reassembly::{
        IncomingPart, PartOutcome, Reassembler, ReassemblyConfig, ReassemblyEvent,
    };
    use super::receipt::DeliveryReceipt;
    use super::udh::{ConcatInfo, ConcatKind, UserDataHeader};

    /// GSM 7-bit: decode arbitrary septets with every table pair, unpack/pack, UDH parse.
    pub fn gsm7_decode(data: &[u8]) {
        let (lang, rest) = match data.split_first() {
            Some((&l, rest)) => (l, rest),
            None => (0, data),
        };
        let alphabet = Gsm7Alphabet::from_language_ids(Some(lang & 0x0F), Some(lang >> 4));
        let text = alphabet.decode(rest);
        // One char per septet at most (an escape pair yields one char).
        assert!(text.chars().count() <= rest.len());
        // Whatever decoded must re-encode, except U+FFFD from non-septet octets and
        // spaces standing for undefined codes, which encode too.
        let clean: String = text.chars().filter(|&c| c != '\u{FFFD}').collect();
        if let Ok(septets) = alphabet.encode(&clean) {
            assert_eq!(alphabet.decode(&septets), clean);
        }
        for fill in 0..7u8 {
            let septets = gsm7::unpack(rest, fill, None);
            assert!(septets.iter().all(|&s| s < 0x80));
            let packed = gsm7::pack(&septets, fill, false);
            assert!(packed.len() <= rest.len() + 1);
            assert_eq!(gsm7::unpack(&packed, fill, Some(septets.len())), septets);
        }
        if let Ok((udh, len)) = UserDataHeader::parse(rest) {
            assert!(len <= rest.len());
            let _ = udh.gsm7_alphabet();
            let _ = udh.concat();
        }
        let _ = NationalLanguage::from_id(lang);
        let _ = DataCoding(lang).alphabet();
    }

    /// WAP push decoding (SI, SL, MMS notification) on arbitrary bytes, both as a WSP
    /// push PDU and as SMS user data (UDH first). What decodes and re-encodes decodes
    /// back to the same content.
    pub fn wap_push(data: &[u8]) {
        use super::mms::MmsNotification;
        use super::wap::{decode_push, PushContent, WapPush};

        if let Ok(push) = decode_push(data) {
            assert!(push.body.len() <= data.len());
            let again = match &push.content {
                PushContent::ServiceIndication(si) => si.to_wsp_push(push.tid).ok(),
                PushContent::ServiceLoading(sl) => sl.to_wsp_push(push.tid).ok(),
                PushContent::MmsNotification(n) if plain_text(n) => n.to_wsp_push(push.tid).ok(),
                _ => None,
            };
            if let Some(again) = again {
                let decoded = decode_push(&again).expect("a re-encoded push decodes");
                assert_eq!(decoded.content, push.content);
                assert_eq!(decoded.url(), push.url());
            }
        }
        if let Ok((udh, len)) = UserDataHeader::parse(data) {
            if let Ok(Some(push)) = WapPush::from_user_data(Some(&udh), &data[len..]) {
                assert!(udh.ports().is_some());
                assert!(push.body.len() < data.len());
            }
        }

        /// WSP text values cannot start with a control character (they would read as a
        /// length); the encoder writes what it is given, so only those round-trip.
        fn plain_text(n: &MmsNotification) -> bool {
            let starts_ok = |s: &str| s.chars().next().is_none_or(|c| c >= ' ');
            [
                Some(&n.transaction_id),
                n.from.as_ref(),
                n.subject.as_ref(),
                Some(&n.content_location),
            ]
            .into_iter()
            .flatten()
            .all(|s| starts_ok(s) && !s.contains('\0'))
                && starts_ok(n.class.name())
        }
    }

    /// Delivery receipt text parsing on arbitrary (lossily decoded) bytes.
    pub fn receipt_parse(data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        if let Ok(r) = DeliveryReceipt::parse(&text) {
            let again = DeliveryReceipt::parse(&r.to_text());
            assert!(again.is_ok());
            assert!(r.extra.len() <= 16);
        }
    }

    /// Receipt-id normalisation (what a gateway maps upstream ids by):
    /// never panics; case never matters; for decimal and text ids the
    /// canonical form is its own canonical form; a numeric id keeps its
    /// key with leading zeros.
    pub fn receipt_ids(data: &[u8]) {
        use super::receipt::{canonical_id, IdRadix};
        let Some((&which, rest)) = data.split_first() else {
            return;
        };
        let radix = match which % 4 {
            0 => IdRadix::Text,
            1 => IdRadix::Decimal,
            2 => IdRadix::Hex,
            _ => IdRadix::Auto,
        };
        let id = String::from_utf8_lossy(rest);
        let key = canonical_id(&id, radix);
        assert_eq!(
            canonical_id(&id.to_ascii_uppercase(), radix),
            canonical_id(&id.to_ascii_lowercase(), radix)
        );
        if matches!(radix, IdRadix::Text | IdRadix::Decimal) {
            assert_eq!(canonical_id(&key, radix), key);
        }
        let trimmed = id.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        let numeric = match radix {
            IdRadix::Decimal => !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()),
            IdRadix::Hex => !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_hexdigit()),
            _ => false,
        };
        if numeric && trimmed.len() < 30 {
            assert_eq!(canonical_id(&format!("00{trimmed}"), radix), key);
        }
    }

    /// Reassembly: the bytes are a sequence of 6-octet records
    /// `[src, ref, total, seq, dt, len]`; `dt` advances the clock in seconds (bit 7 also
    /// runs `handle_timeout`), `len` is the payload length. Asserts the configured bounds
    /// hold after every step.
    ///
    /// `start` is the virtual clock's origin: this crate never reads the clock, so the fuzz
    /// target passes `Instant::now()` (any instant will do; time only advances from it).
    pub fn reassembly(start: Instant, data: &[u8]) {
        let config = ReassemblyConfig {
            max_pending_messages: 8,
            max_parts: 16,
            max_part_len: 64,
            max_buffered_bytes: 4096,
            timeout: Duration::from_secs(60),
            duplicate_window: Duration::from_secs(30),
        };
        let mut r = Reassembler::new(config);
        let mut now = start;
        for rec in data.chunks_exact(6) {
            now += Duration::from_secs(u64::from(rec[4] % 32));
            let part = IncomingPart {
                source: format!("{}", rec[0] % 4),
                destination: "1".to_owned(),
                data_coding: DataCoding(0),
                concat: Some(ConcatInfo {
                    reference: u16::from(rec[1] % 8),
                    total: rec[2] % 20,
                    seq: rec[3] % 21,
                    kind: ConcatKind::Udh8,
                }),
                udh: None,
                payload: Bytes::from(vec![b'a'; usize::from(rec[5] % 80)]),
            };
            let total = rec[2] % 20;
            if let Ok(PartOutcome::Complete(m)) = r.handle_part(now, part) {
                assert_eq!(m.parts.len(), usize::from(total.max(1)));
            }
            if rec[4] & 0x80 != 0 {
                r.handle_timeout(now);
            }
            while let Some(ev) = r.poll_event() {
                let (ReassemblyEvent::Expired(m) | ReassemblyEvent::Evicted(m)) = ev;
                assert!(m.parts.len() < usize::from(m.key.total));
            }
            assert!(r.pending_count() <= config.max_pending_messages);
            assert!(r.buffered_bytes() <= config.max_buffered_bytes);
            if let Some(deadline) = r.poll_timeout() {
                assert!(deadline >= start);
            }
        }
    }
}
