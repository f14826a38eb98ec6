//! GSM 7-bit alphabet, national tables and packing.

use proptest::prelude::*;
use smpp_proto::message::gsm7::{self, Gsm7Alphabet};
use smpp_proto::message::national::{raw_locking_table, raw_single_shift_table};
use smpp_proto::message::NationalLanguage;

fn hex(b: &[u8]) -> String {
    hex::encode_upper(b)
}

#[test]
fn hellohello_packs_to_published_octets() {
    let septets = gsm7::encode_unpacked("hellohello").unwrap();
    assert_eq!(septets, b"hellohello");
    assert_eq!(hex(&gsm7::pack(&septets, 0, false)), "E8329BFD4697D9EC37");
    assert_eq!(
        gsm7::decode_packed(&hex::decode("E8329BFD4697D9EC37").unwrap()),
        "hellohello"
    );
}

#[test]
fn default_alphabet_matches_reference_table() {
    // (code, char) pairs from §9.6 of our reference.
    let cells = [
        (0x00, '@'),
        (0x01, '£'),
        (0x02, '$'),
        (0x03, '¥'),
        (0x04, 'è'),
        (0x09, 'Ç'),
        (0x0A, '\n'),
        (0x0D, '\r'),
        (0x10, 'Δ'),
        (0x11, '_'),
        (0x1A, 'Ξ'),
        (0x1C, 'Æ'),
        (0x1F, 'É'),
        (0x24, '¤'),
        (0x40, '¡'),
        (0x5B, 'Ä'),
        (0x5F, '§'),
        (0x60, '¿'),
        (0x7B, 'ä'),
        (0x7F, 'à'),
    ];
    for (code, c) in cells {
        assert_eq!(
            gsm7::decode_unpacked(&[code]),
            c.to_string(),
            "code {code:#04x}"
        );
        assert_eq!(gsm7::encode_unpacked(&c.to_string()).unwrap(), vec![code]);
    }
    let ext = [
        (0x0A, '\u{c}'),
        (0x14, '^'),
        (0x28, '{'),
        (0x29, '}'),
        (0x2F, '\\'),
        (0x3C, '['),
        (0x3D, '~'),
        (0x3E, ']'),
        (0x40, '|'),
        (0x65, '€'),
    ];
    for (code, c) in ext {
        assert_eq!(gsm7::decode_unpacked(&[0x1B, code]), c.to_string());
        assert_eq!(
            gsm7::encode_unpacked(&c.to_string()).unwrap(),
            vec![0x1B, code]
        );
    }
    assert!(gsm7::encode_unpacked("`").is_err());
}

#[test]
fn decoding_never_fails_on_odd_escapes() {
    // ESC + code undefined in the extension table -> base-table char.
    assert_eq!(gsm7::decode_unpacked(&[0x1B, b'A']), "A");
    // Lone trailing ESC -> space.
    assert_eq!(gsm7::decode_unpacked(&[b'a', 0x1B]), "a ");
    // ESC ESC (reserved) -> space.
    assert_eq!(gsm7::decode_unpacked(&[0x1B, 0x1B, b'b']), " b");
    // Octets above 0x7F are not septets.
    assert_eq!(gsm7::decode_unpacked(&[0x80, b'c']), "\u{FFFD}c");
}

#[test]
fn encode_errors_and_lossy() {
    let err = gsm7::encode_unpacked("ab✓c").unwrap_err();
    assert_eq!(err.character, '✓');
    assert_eq!(err.index, 2);
    assert_eq!(
        Gsm7Alphabet::DEFAULT.encode_lossy("a✓€"),
        vec![b'a', b'?', 0x1B, 0x65]
    );
}

#[test]
fn turkish_locking_shift_example() {
    // TS 23.038 A.3.1: ç 0x60, ğ 0x0C, ı 0x07, ş 0x1D, İ 0x40, Ğ 0x0B, Ş 0x1C; others as default.
    let tr = Gsm7Alphabet::new(NationalLanguage::Turkish, NationalLanguage::Default).unwrap();
    let septets = tr.encode("Çiçek ağacı İŞĞ").unwrap();
    assert_eq!(
        septets,
        vec![
            0x09, b'i', 0x60, b'e', b'k', b' ', b'a', 0x0C, b'a', b'c', 0x07, b' ', 0x40, 0x1C,
            0x0B
        ]
    );
    assert_eq!(tr.decode(&septets), "Çiçek ağacı İŞĞ");
    // The same text is not representable in the default alphabet.
    assert!(!Gsm7Alphabet::DEFAULT.can_encode("ağacı"));
    // UDH announcing the table: IEI 0x25, length 1, id 1.
    let udh = smpp_proto::message::UserDataHeader::new(tr.information_elements());
    assert_eq!(hex(&udh.encode().unwrap()), "03250101");
}

#[test]
fn turkish_and_spanish_single_shift_examples() {
    let tr = Gsm7Alphabet::new(NationalLanguage::Default, NationalLanguage::Turkish).unwrap();
    // A.2.1: ş at ESC 0x73, ğ ESC 0x67, ı ESC 0x69, € ESC 0x65.
    assert_eq!(tr.encode("ş").unwrap(), vec![0x1B, 0x73]);
    assert_eq!(
        tr.encode("ğı€").unwrap(),
        vec![0x1B, 0x67, 0x1B, 0x69, 0x1B, 0x65]
    );
    let es = Gsm7Alphabet::new(NationalLanguage::Default, NationalLanguage::Spanish).unwrap();
    // A.2.2: á ESC 0x61, í ESC 0x69, ó ESC 0x6F, ú ESC 0x75, ç ESC 0x09.
    assert_eq!(
        es.encode("áíóúç").unwrap(),
        vec![0x1B, 0x61, 0x1B, 0x69, 0x1B, 0x6F, 0x1B, 0x75, 0x1B, 0x09]
    );
    assert!(Gsm7Alphabet::new(NationalLanguage::Spanish, NationalLanguage::Spanish).is_none());
    let pt = Gsm7Alphabet::new(NationalLanguage::Portuguese, NationalLanguage::Portuguese).unwrap();
    // A.3.3: ê 0x04, ú 0x06, ã 0x7B, õ 0x7C, â 0x1D (locking table wins over A.2.3's
    // ESC 0x7F); Greek Φ is only in the single shift table (A.2.3: ESC 0x12).
    assert_eq!(pt.encode("êúãõ").unwrap(), vec![0x04, 0x06, 0x7B, 0x7C]);
    assert_eq!(pt.encode("â").unwrap(), vec![0x1D]);
    assert_eq!(pt.encode("Φ").unwrap(), vec![0x1B, 0x12]);
    assert_eq!(pt.decode(&[0x1B, 0x7F]), "â");
}

#[test]
fn indic_example_hindi() {
    let hi = Gsm7Alphabet::new(NationalLanguage::Hindi, NationalLanguage::Hindi).unwrap();
    // A.3.6: क U+0915 at 0x15, न U+0928 at 0x2F, म U+092E at 0x42, स U+0938 at 0x4C,
    // ् U+094D at 0x5F, ा U+093E at 0x50; A.2.6 । U+0964 at ESC 0x19.
    let text = "नमस्का।";
    let septets = hi.encode(text).unwrap();
    assert_eq!(
        septets,
        vec![0x2F, 0x42, 0x4C, 0x5F, 0x15, 0x50, 0x1B, 0x19]
    );
    assert_eq!(hi.decode(&septets), text);
}

/// Structural checks that catch a shifted or mistyped row in any table.
#[test]
fn national_tables_structure() {
    for lang in NationalLanguage::ALL {
        if let Some(t) = raw_locking_table(lang) {
            assert_eq!(t[0x0A], 0x0A, "{lang:?} LF");
            assert_eq!(t[0x0D], 0x0D, "{lang:?} CR");
            assert_eq!(t[0x1B], 0x1B, "{lang:?} ESC");
            assert_eq!(t[0x20], 0x20, "{lang:?} SP");
            for d in 0..10 {
                assert_eq!(t[0x30 + d], 0x30 + d as u16, "{lang:?} digit {d}");
            }
            for l in 0..26 {
                assert_eq!(
                    t[0x61 + l],
                    u16::from(b'a') + l as u16,
                    "{lang:?} letter {l}"
                );
            }
            assert_eq!(t.iter().filter(|&&u| u == 0x1B).count(), 1, "{lang:?}");
        } else {
            assert_eq!(lang, NationalLanguage::Spanish);
        }
        let s = raw_single_shift_table(lang);
        assert_eq!(s[0x0A], 0x0C, "{lang:?} form feed");
        assert_eq!(s[0x65], 0x20AC, "{lang:?} euro");
        assert_eq!(s[0x1B], 0, "{lang:?} reserved escape");
        if lang.id() >= 4 {
            for l in 0..26 {
                assert_eq!(
                    s[0x41 + l],
                    u16::from(b'A') + l as u16,
                    "{lang:?} capital {l}"
                );
            }
            assert_eq!(s[0x3C], u16::from(b'['), "{lang:?}");
            assert_eq!(s[0x40], u16::from(b'|'), "{lang:?}");
        }
    }
    assert_eq!(NationalLanguage::from_id(13), Some(NationalLanguage::Urdu));
    assert_eq!(NationalLanguage::from_id(14), None);
}

#[test]
fn reserved_language_ids_fall_back_to_default() {
    let a = Gsm7Alphabet::from_language_ids(Some(2), Some(99));
    assert!(a.is_default());
}

#[test]
fn packing_with_fill_bits_aligns_after_udh() {
    // After a 6-octet UDH there is 1 fill bit: the first septet starts at bit 1.
    let packed = gsm7::pack(&[0x7F], 1, false);
    assert_eq!(packed, vec![0xFE]);
    assert_eq!(gsm7::unpack(&packed, 1, Some(1)), vec![0x7F]);
    // 8 septets with 0 fill fill 7 octets exactly.
    assert_eq!(gsm7::pack(&[0x41; 8], 0, true).len(), 7);
}

#[test]
fn cr_padding_disambiguates_trailing_at() {
    // 7 septets leave 7 spare bits: with CR padding a trailing '@' is not invented.
    let text = "abcdefg";
    let packed = gsm7::encode_packed(text).unwrap();
    assert_eq!(packed.len(), 7);
    assert_eq!(gsm7::decode_packed(&packed), text);
    let no_pad = gsm7::pack(&gsm7::encode_unpacked(text).unwrap(), 0, false);
    assert_eq!(gsm7::decode_packed(&no_pad), "abcdefg@");
}

fn alphabet_chars(a: Gsm7Alphabet) -> Vec<char> {
    let mut chars: Vec<char> = Vec::new();
    for code in 0u8..128 {
        if code == 0x1B {
            continue;
        }
        chars.extend(a.decode(&[code]).chars());
        chars.extend(a.decode(&[0x1B, code]).chars());
    }
    chars.sort_unstable();
    chars.dedup();
    chars
}

fn any_alphabet() -> impl Strategy<Value = Gsm7Alphabet> {
    (0u8..14, 0u8..14).prop_filter_map("spanish locking", |(l, s)| {
        Gsm7Alphabet::new(NationalLanguage::from_id(l)?, NationalLanguage::from_id(s)?)
    })
}

proptest! {
    #[test]
    fn every_table_pair_round_trips(
        (a, text) in any_alphabet().prop_flat_map(|a| {
            let chars = alphabet_chars(a);
            (Just(a), prop::collection::vec(prop::sample::select(chars), 0..200)
                .prop_map(|v| v.into_iter().collect::<String>()))
        })
    ) {
        let septets = a.encode(&text).unwrap();
        prop_assert_eq!(septets.len(), a.septet_count(&text).unwrap());
        prop_assert!(septets.iter().all(|&s| s < 0x80));
        prop_assert_eq!(a.decode(&septets), text.clone());
        // And through packing, for every fill.
        for fill in 0..7u8 {
            let packed = gsm7::pack(&septets, fill, true);
            prop_assert_eq!(a.decode(&gsm7::unpack(&packed, fill, Some(septets.len()))), text.clone());
        }
    }

    #[test]
    fn decode_is_total(bytes in prop::collection::vec(any::<u8>(), 0..400), l in 0u8..16, s in 0u8..16) {
        let a = Gsm7Alphabet::from_language_ids(Some(l), Some(s));
        let text = a.decode(&bytes);
        prop_assert!(text.chars().count() <= bytes.len());
        let _ = gsm7::unpack(&bytes, l % 7, None);
    }

    #[test]
    fn packed_default_round_trip(text in "[ !#%&()*+,./0-9:;<=>?A-Za-z@£$¥èéùìòÇ\n]{0,300}") {
        let packed = gsm7::encode_packed(&text).unwrap();
        prop_assert_eq!(packed.len(), (text.chars().count() * 7).div_ceil(8));
        prop_assert_eq!(gsm7::decode_packed(&packed), text);
    }
}
