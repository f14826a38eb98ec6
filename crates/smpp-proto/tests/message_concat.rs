//! Encoding choice, segment counting and splitting.

// Tests need some origin for the virtual clock; the crate itself never reads it.
#![allow(clippy::disallowed_methods)]

use proptest::prelude::*;
use smpp_proto::message::charsets::Charset;
use smpp_proto::message::concat::{
    segment_binary, segment_info_with, CodeUnit, Gsm7Packing, LanguageSet, SegmentError,
};
use smpp_proto::message::gsm7::{self, Gsm7Alphabet};
use smpp_proto::message::reassembly::{IncomingPart, PartOutcome, Reassembler, ReassemblyConfig};
use smpp_proto::message::udh::ConcatKind;
use smpp_proto::message::{
    choose_encoding, segment_info, segment_text, ucs2, ConcatMode, DataCoding, DecodeOptions,
    NationalLanguage, ReferenceCounter, SegmentationPolicy, TextEncoding, UserDataHeader,
};
use std::time::Instant;

fn policy(mode: ConcatMode) -> SegmentationPolicy {
    SegmentationPolicy {
        mode,
        ..SegmentationPolicy::default()
    }
}

fn parts_for(text: &str, mode: ConcatMode) -> Vec<usize> {
    let mut refs = ReferenceCounter::new(0);
    segment_text(text, &policy(mode), &mut refs)
        .unwrap()
        .segments
        .iter()
        .map(|s| s.units)
        .collect()
}

#[test]
fn gsm7_capacities_160_153_152() {
    assert_eq!(parts_for(&"a".repeat(160), ConcatMode::Udh8), vec![160]);
    assert_eq!(parts_for(&"a".repeat(161), ConcatMode::Udh8), vec![153, 8]);
    assert_eq!(
        parts_for(&"a".repeat(306), ConcatMode::Udh8),
        vec![153, 153]
    );
    assert_eq!(parts_for(&"a".repeat(161), ConcatMode::Udh16), vec![152, 9]);
    // SAR keeps room for a 16-bit concat UDH inserted by the SMSC.
    assert_eq!(parts_for(&"a".repeat(161), ConcatMode::Sar), vec![152, 9]);
    assert_eq!(
        parts_for(&"a".repeat(1000), ConcatMode::Payload),
        vec![1000]
    );
}

#[test]
fn ucs2_capacities_70_67_66() {
    assert_eq!(parts_for(&"я".repeat(70), ConcatMode::Udh8), vec![70]);
    assert_eq!(parts_for(&"я".repeat(71), ConcatMode::Udh8), vec![67, 4]);
    assert_eq!(parts_for(&"я".repeat(71), ConcatMode::Udh16), vec![66, 5]);
}

#[test]
fn binary_capacities_140_134_133() {
    let mut refs = ReferenceCounter::new(0);
    let len = |data: &[u8], mode| {
        segment_binary(
            data,
            DataCoding::BINARY,
            &policy(mode),
            &mut ReferenceCounter::new(0),
        )
        .unwrap()
        .iter()
        .map(|s| s.payload.len())
        .collect::<Vec<_>>()
    };
    assert_eq!(len(&[0; 140], ConcatMode::Udh8), vec![140]);
    assert_eq!(len(&[0; 141], ConcatMode::Udh8), vec![134, 7]);
    assert_eq!(len(&[0; 141], ConcatMode::Udh16), vec![133, 8]);
    let segs = segment_binary(
        &[0; 300],
        DataCoding::BINARY,
        &policy(ConcatMode::Udh8),
        &mut refs,
    )
    .unwrap();
    assert!(segs.iter().all(|s| s.air_octets() <= 140));
}

#[test]
fn info_reports_chars_left() {
    let p = SegmentationPolicy::default();
    let i = segment_info("hello", &p).unwrap();
    assert_eq!(
        (i.parts, i.units_per_part, i.units_left_in_last),
        (1, 160, 155)
    );
    assert_eq!(i.unit, CodeUnit::Septet);
    // Extension characters cost two septets.
    let i = segment_info("€".repeat(80).as_str(), &p).unwrap();
    assert_eq!((i.parts, i.units_used, i.units_left_in_last), (1, 160, 0));
    let i = segment_info("€".repeat(81).as_str(), &p).unwrap();
    // 76 € per part (152 septets, the pair is never split), 81 = 76 + 5.
    assert_eq!(
        (i.parts, i.units_per_part, i.units_left_in_last),
        (2, 153, 143)
    );
    let i = segment_info("日本", &p).unwrap();
    assert_eq!(
        (i.encoding, i.parts, i.units_left_in_last),
        (TextEncoding::Ucs2, 1, 68)
    );
    assert_eq!(i.data_coding, DataCoding::UCS2);
}

#[test]
fn escape_pair_never_split() {
    let text = format!("{}€tail-tail", "a".repeat(152));
    let mut refs = ReferenceCounter::new(0);
    let out = segment_text(&text, &SegmentationPolicy::default(), &mut refs).unwrap();
    assert_eq!(out.segments[0].units, 152);
    assert_eq!(out.segments[0].payload.last(), Some(&b'a'));
    assert_eq!(out.segments[1].payload[..2], [0x1B, 0x65]);
}

#[test]
fn surrogate_pair_never_split() {
    let text = format!("{}😀xxxxx", "я".repeat(66));
    let mut refs = ReferenceCounter::new(0);
    let out = segment_text(&text, &SegmentationPolicy::default(), &mut refs).unwrap();
    assert_eq!(out.encoding, TextEncoding::Ucs2);
    assert_eq!(out.segments[0].units, 66);
    assert_eq!(ucs2::decode(&out.segments[1].payload), "😀xxxxx");
}

#[test]
fn udh_bytes_and_references() {
    let mut refs = ReferenceCounter::new(0x1234);
    let out = segment_text(&"a".repeat(200), &SegmentationPolicy::default(), &mut refs).unwrap();
    assert_eq!(
        hex::encode_upper(out.segments[0].udh.as_ref().unwrap()),
        "050003340201"
    );
    assert_eq!(
        hex::encode_upper(out.segments[1].udh.as_ref().unwrap()),
        "050003340202"
    );
    assert_eq!(out.segments[0].esm_class(0x03), 0x43);
    let out = segment_text(&"a".repeat(200), &policy(ConcatMode::Udh16), &mut refs).unwrap();
    assert_eq!(
        hex::encode_upper(out.segments[0].udh.as_ref().unwrap()),
        "06080412350201"
    );
    // A single part consumes no reference and has no UDH.
    let out = segment_text("hi", &SegmentationPolicy::default(), &mut refs).unwrap();
    assert!(out.segments[0].udh.is_none());
    assert_eq!(refs.next_u16(), 0x1236);
}

#[test]
fn sar_mode_returns_tlv_values() {
    let mut refs = ReferenceCounter::new(500);
    let out = segment_text(&"b".repeat(300), &policy(ConcatMode::Sar), &mut refs).unwrap();
    assert_eq!(out.segments.len(), 2);
    for (i, s) in out.segments.iter().enumerate() {
        assert!(s.udh.is_none());
        let sar = s.sar.unwrap();
        assert_eq!(
            (sar.reference, sar.total, sar.seq, sar.kind),
            (500, 2, i as u8 + 1, ConcatKind::Sar)
        );
    }
}

#[test]
fn national_tables_chosen_when_enabled() {
    let text = "Günaydın, nasılsın? Çok güzel bir gün ağaçların altında şarkı söyleyelim.";
    let plain = SegmentationPolicy::default();
    assert_eq!(choose_encoding(text, &plain), TextEncoding::Ucs2);
    let tr = SegmentationPolicy {
        locking_shift: LanguageSet::EMPTY.with(NationalLanguage::Turkish),
        single_shift: LanguageSet::EMPTY.with(NationalLanguage::Turkish),
        ..SegmentationPolicy::default()
    };
    let enc = choose_encoding(text, &tr);
    let TextEncoding::Gsm7(a) = enc else {
        panic!("expected GSM, got {enc:?}")
    };
    assert!(!a.is_default());
    let mut refs = ReferenceCounter::new(0);
    let out = segment_text(text, &tr, &mut refs).unwrap();
    assert_eq!(out.segments.len(), 1);
    let s = &out.segments[0];
    let (udh, _) = UserDataHeader::parse(s.udh.as_ref().unwrap()).unwrap();
    assert_eq!(udh.gsm7_alphabet(), a);
    assert_eq!(a.decode(&s.payload), text);
    // Capacity with one shift table: 155 single, 149 with 8-bit concat; with both: 152/146.
    let locking = Gsm7Alphabet::new(NationalLanguage::Turkish, NationalLanguage::Default).unwrap();
    let i = segment_info_with("a", TextEncoding::Gsm7(locking), &tr).unwrap();
    assert_eq!(i.units_per_part, 155);
    let i = segment_info_with(&"a".repeat(200), TextEncoding::Gsm7(locking), &tr).unwrap();
    assert_eq!(i.units_per_part, 149);
    let both = Gsm7Alphabet::new(NationalLanguage::Turkish, NationalLanguage::Turkish).unwrap();
    assert_eq!(
        segment_info_with("a", TextEncoding::Gsm7(both), &tr)
            .unwrap()
            .units_per_part,
        152
    );
    assert_eq!(
        segment_info_with(&"a".repeat(200), TextEncoding::Gsm7(both), &tr)
            .unwrap()
            .units_per_part,
        146
    );
    // SAR cannot carry the shift IEs.
    let sar = SegmentationPolicy {
        mode: ConcatMode::Sar,
        ..tr.clone()
    };
    assert_eq!(choose_encoding(text, &sar), TextEncoding::Ucs2);
    assert!(matches!(
        segment_info_with(text, TextEncoding::Gsm7(both), &sar),
        Err(SegmentError::Policy(_))
    ));
}

#[test]
fn forced_encoding_errors() {
    let mut refs = ReferenceCounter::new(0);
    let err = smpp_proto::message::concat::segment_text_with(
        "a✓",
        TextEncoding::Gsm7(Gsm7Alphabet::DEFAULT),
        &SegmentationPolicy::default(),
        &mut refs,
    )
    .unwrap_err();
    assert!(matches!(err, SegmentError::Gsm7(e) if e.character == '✓'));
    let latin = smpp_proto::message::concat::segment_text_with(
        "héllo",
        TextEncoding::Charset(Charset::Latin1),
        &SegmentationPolicy::default(),
        &mut refs,
    )
    .unwrap();
    assert_eq!(latin.segments[0].data_coding, DataCoding::LATIN1);
    let too_many = SegmentationPolicy {
        max_parts: 2,
        ..SegmentationPolicy::default()
    };
    assert!(matches!(
        segment_text(&"a".repeat(400), &too_many, &mut refs),
        Err(SegmentError::TooManyParts { max: 2, .. })
    ));
}

#[test]
fn packed_parts_fit_140_octets() {
    let p = SegmentationPolicy {
        gsm7_packing: Gsm7Packing::Packed,
        ..SegmentationPolicy::default()
    };
    let mut refs = ReferenceCounter::new(0);
    let text = "x".repeat(400);
    let out = segment_text(&text, &p, &mut refs).unwrap();
    assert_eq!(out.segments.len(), 3);
    let mut decoded = String::new();
    for s in &out.segments {
        assert!(s.short_message().len() <= 140);
        assert_eq!(s.air_octets(), s.short_message().len());
        let udh_len = s.udh.as_ref().unwrap().len();
        let septets = gsm7::unpack(&s.payload, gsm7::fill_bits(udh_len), Some(s.units));
        decoded.push_str(&Gsm7Alphabet::DEFAULT.decode(&septets));
    }
    assert_eq!(decoded, text);
}

/// Text drawn from GSM basic, GSM extension, Latin, Cyrillic, CJK and astral characters.
fn text_strategy() -> impl Strategy<Value = String> {
    let pools = prop_oneof![
        Just("abc xyz@£Ç\n"),
        Just("abc{}[]€~^|\\"),
        Just("abcçğışİöü"),
        Just("привет мир"),
        Just("日本語テキスト"),
        Just("a😀🎉𝄞b"),
    ];
    (prop::collection::vec(pools, 1..3), 0usize..700).prop_flat_map(|(pools, len)| {
        let chars: Vec<char> = pools.iter().flat_map(|p| p.chars()).collect();
        prop::collection::vec(prop::sample::select(chars), len)
            .prop_map(|v| v.into_iter().collect::<String>())
    })
}

fn mode_strategy() -> impl Strategy<Value = ConcatMode> {
    prop_oneof![
        Just(ConcatMode::Udh8),
        Just(ConcatMode::Udh16),
        Just(ConcatMode::Sar)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn split_then_reassemble_any_order(
        text in text_strategy(),
        mode in mode_strategy(),
        national in any::<bool>(),
        seed in any::<u64>(),
        dups in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let policy = SegmentationPolicy {
            mode,
            locking_shift: if national { LanguageSet::EMPTY.with(NationalLanguage::Turkish) } else { LanguageSet::EMPTY },
            single_shift: if national {
                LanguageSet::from_languages(&[NationalLanguage::Turkish, NationalLanguage::Spanish])
            } else { LanguageSet::EMPTY },
            ..SegmentationPolicy::default()
        };
        let mut refs = ReferenceCounter::new((seed >> 16) as u16);
        let out = segment_text(&text, &policy, &mut refs).unwrap();
        let n = out.segments.len();
        let info = segment_info(&text, &policy).unwrap();
        prop_assert_eq!(info.parts, n);

        let mut per_part = String::new();
        for s in &out.segments {
            // Never over 140 octets over the air.
            prop_assert!(s.air_octets() <= 140, "{} octets", s.air_octets());
            // Each part stands alone: no trailing lone ESC, no split surrogate.
            match out.encoding {
                TextEncoding::Gsm7(a) => {
                    let trailing_escapes = s.payload.iter().rev().take_while(|&&b| b == 0x1B).count();
                    prop_assert!(trailing_escapes % 2 == 0);
                    per_part.push_str(&a.decode(&s.payload));
                }
                TextEncoding::Ucs2 => {
                    let first = u16::from_be_bytes([s.payload[0], s.payload[1]]);
                    prop_assert!(!(0xDC00..0xE000).contains(&first), "starts with low surrogate");
                    per_part.push_str(&ucs2::decode(&s.payload));
                }
                TextEncoding::Charset(_) => unreachable!(),
            }
        }
        prop_assert_eq!(&per_part, &text);

        // Shuffle (deterministic from seed) and add duplicates.
        let mut order: Vec<usize> = (0..n).collect();
        let mut x = seed | 1;
        for i in (1..n).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        // A repeated single-part message is a new message, so only multi-part ones get dups.
        for d in dups.iter().filter(|_| n > 1) {
            let at = d.index(order.len() + 1);
            order.insert(at, d.index(n));
        }
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let now = Instant::now();
        let mut complete = None;
        for &i in &order {
            let s = &out.segments[i];
            let part = IncomingPart::from_user_data(
                "4479", "123", s.data_coding, s.esm_class(0), s.short_message(),
                s.sar.map(|c| (c.reference, c.total, c.seq)),
            ).unwrap();
            match r.handle_part(now, part).unwrap() {
                PartOutcome::Complete(m) => {
                    prop_assert!(complete.is_none(), "completed twice");
                    complete = Some(m);
                }
                PartOutcome::Pending | PartOutcome::Duplicate => {}
            }
        }
        let m = complete.expect("message completed");
        prop_assert_eq!(m.decode_text(&DecodeOptions::default()).unwrap(), text);
        prop_assert_eq!(r.pending_count(), 0);
    }
}

#[test]
fn packed_parts_reassemble_with_fill_bits() {
    use smpp_proto::message::SmscDefaultAlphabet;
    let p = SegmentationPolicy {
        gsm7_packing: Gsm7Packing::Packed,
        ..SegmentationPolicy::default()
    };
    let text: String = "Packed {text} with € and @ at the end@"
        .chars()
        .cycle()
        .take(390)
        .collect();
    let mut refs = ReferenceCounter::new(3);
    let out = segment_text(&text, &p, &mut refs).unwrap();
    assert_eq!(out.segments.len(), 3);
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let now = Instant::now();
    let mut done = None;
    for s in out.segments.iter().rev() {
        let part = IncomingPart::from_user_data(
            "1",
            "2",
            s.data_coding,
            s.esm_class(0),
            s.short_message(),
            None,
        )
        .unwrap();
        if let PartOutcome::Complete(m) = r.handle_part(now, part).unwrap() {
            done = Some(m);
        }
    }
    let m = done.unwrap();
    assert_eq!(m.fill_bits, vec![1, 1, 1]);
    let opts = DecodeOptions {
        smsc_default: SmscDefaultAlphabet::Gsm7Packed,
        ..DecodeOptions::default()
    };
    assert_eq!(m.decode_text(&opts).unwrap(), text);
}
