//! data_coding, character sets, UCS-2 and UDH.

use bytes::Bytes;
use proptest::prelude::*;
use smpp_proto::message::charsets::Charset;
use smpp_proto::message::coding::{
    decode_user_data, Alphabet, ClassAlphabet, Content, DecodeError, MessageClass,
};
use smpp_proto::message::mwi::{MwiGroup, MwiKind};
use smpp_proto::message::udh::{ConcatKind, UdhError};
use smpp_proto::message::{
    decode_text, ucs2, DataCoding, DecodeOptions, InformationElement, SmscDefaultAlphabet,
    UserDataHeader,
};

#[test]
fn data_coding_alphabets() {
    let cases = [
        (0x00, Alphabet::SmscDefault),
        (0x01, Alphabet::Ia5),
        (0x02, Alphabet::Binary),
        (0x03, Alphabet::Latin1),
        (0x04, Alphabet::Binary),
        (0x06, Alphabet::Cyrillic),
        (0x07, Alphabet::LatinHebrew),
        (0x08, Alphabet::Ucs2),
        (0x0B, Alphabet::Reserved),
        (0x10, Alphabet::Gsm7),
        (0x14, Alphabet::Binary),
        (0x18, Alphabet::Ucs2),
        (0x1C, Alphabet::Reserved),
        (0x90, Alphabet::Reserved),
        (0xC8, Alphabet::Gsm7),
        (0xD0, Alphabet::Gsm7),
        (0xE8, Alphabet::Ucs2),
        (0xF0, Alphabet::Gsm7),
        (0xF1, Alphabet::Gsm7),
        (0xF5, Alphabet::Binary),
        (0xF6, Alphabet::Binary),
    ];
    for (v, a) in cases {
        assert_eq!(DataCoding(v).alphabet(), a, "{v:#04x}");
    }
}

#[test]
fn message_classes() {
    assert_eq!(DataCoding(0x10).message_class(), Some(MessageClass::Class0));
    assert_eq!(DataCoding(0x15).message_class(), Some(MessageClass::Class1));
    assert_eq!(DataCoding(0xF6).message_class(), Some(MessageClass::Class2));
    assert_eq!(DataCoding(0xF3).message_class(), Some(MessageClass::Class3));
    assert_eq!(DataCoding(0x08).message_class(), None);
    assert_eq!(DataCoding(0x00).message_class(), None);
    assert_eq!(
        DataCoding::with_class(ClassAlphabet::Ucs2, MessageClass::Class0),
        DataCoding::UCS2_FLASH
    );
    assert_eq!(
        DataCoding::with_class(ClassAlphabet::Gsm7, MessageClass::Class0),
        DataCoding::GSM7_FLASH
    );
    assert!(DataCoding(0x24).is_compressed());
    assert!(DataCoding(0x44).is_auto_delete());
    assert!(!DataCoding(0x04).is_compressed());
}

#[test]
fn mwi_groups_decode() {
    let m = DataCoding(0xC8).mwi().unwrap();
    assert_eq!(m.group, MwiGroup::Discard);
    assert!(m.active);
    assert_eq!(m.kind, MwiKind::Voicemail);
    let m = DataCoding(0xD2).mwi().unwrap();
    assert_eq!(
        (m.group, m.active, m.kind),
        (MwiGroup::StoreGsm7, false, MwiKind::Email)
    );
    let m = DataCoding(0xEB).mwi().unwrap();
    assert_eq!(
        (m.group, m.active, m.kind),
        (MwiGroup::StoreUcs2, true, MwiKind::Other)
    );
    assert!(DataCoding(0xF0).mwi().is_none());
    for v in 0xC0..=0xEFu8 {
        if v & 0x04 == 0 {
            assert_eq!(DataCoding(v).mwi().unwrap().to_data_coding(), v);
        }
    }
}

#[test]
fn single_octet_charsets() {
    assert_eq!(Charset::Latin1.decode(&[0x48, 0xE9, 0xFF]), "Hé\u{FF}");
    assert_eq!(Charset::Latin1.encode("Hé").unwrap(), vec![0x48, 0xE9]);
    assert!(Charset::Latin1.encode("€").is_err());
    // ISO-8859-5: "Привет" = BF E0 D8 D2 D5 E2; Ё = A1, № = F0, ё = F1.
    assert_eq!(
        Charset::Cyrillic.encode("Привет").unwrap(),
        vec![0xBF, 0xE0, 0xD8, 0xD2, 0xD5, 0xE2]
    );
    assert_eq!(Charset::Cyrillic.decode(&[0xA1, 0xF0, 0xF1, 0xFD]), "Ё№ё§");
    // ISO-8859-8: "שלום" = F9 EC E5 ED; × = AA; 0xA1 is undefined.
    assert_eq!(
        Charset::Hebrew.encode("שלום").unwrap(),
        vec![0xF9, 0xEC, 0xE5, 0xED]
    );
    assert_eq!(Charset::Hebrew.decode(&[0xAA, 0xA1, 0xE0]), "×\u{FFFD}א");
    assert_eq!(Charset::Ascii.decode(&[b'a', 0x80]), "a\u{FFFD}");
    assert!(Charset::Ascii.encode("é").is_err());
}

#[test]
fn ucs2_surrogates_and_broken_input() {
    assert_eq!(hex::encode_upper(ucs2::encode("A😀")), "0041D83DDE00");
    assert_eq!(ucs2::decode(&hex::decode("0041D83DDE00").unwrap()), "A😀");
    // Lone high surrogate, lone low surrogate, odd trailing octet.
    assert_eq!(ucs2::decode(&hex::decode("D83D0041").unwrap()), "\u{FFFD}A");
    assert_eq!(ucs2::decode(&hex::decode("DE00").unwrap()), "\u{FFFD}");
    assert_eq!(ucs2::decode(&[0x00, 0x41, 0x42]), "A\u{FFFD}");
    assert_eq!(ucs2::unit_count("A😀"), 3);
    assert!(!ucs2::is_bmp("😀"));
}

#[test]
fn smsc_default_policy() {
    let bytes = [0x00, b'a', 0x7B];
    let gsm = DecodeOptions::default();
    assert_eq!(decode_text(DataCoding(0), &bytes, &gsm).unwrap(), "@aä");
    let latin = DecodeOptions {
        smsc_default: SmscDefaultAlphabet::Latin1,
        ..DecodeOptions::default()
    };
    assert_eq!(decode_text(DataCoding(0), &bytes, &latin).unwrap(), "\0a{");
    let ascii = DecodeOptions {
        smsc_default: SmscDefaultAlphabet::Ascii,
        ..DecodeOptions::default()
    };
    assert_eq!(decode_text(DataCoding(0), b"a{", &ascii).unwrap(), "a{");
    let packed = DecodeOptions {
        smsc_default: SmscDefaultAlphabet::Gsm7Packed,
        ..DecodeOptions::default()
    };
    let p = hex::decode("E8329BFD4697D9EC37").unwrap();
    assert_eq!(
        decode_text(DataCoding(0), &p, &packed).unwrap(),
        "hellohello"
    );
    let ia5_gsm = DecodeOptions {
        ia5_is_gsm7: true,
        ..DecodeOptions::default()
    };
    assert_eq!(decode_text(DataCoding(1), &[0x00], &ia5_gsm).unwrap(), "@");
    assert_eq!(decode_text(DataCoding(1), &[0x00], &gsm).unwrap(), "\0");
    assert_eq!(
        decode_text(DataCoding(4), &[1], &gsm),
        Err(DecodeError::Binary(4))
    );
    assert_eq!(
        decode_text(DataCoding(5), &[1], &gsm),
        Err(DecodeError::Unsupported(5))
    );
    assert_eq!(
        decode_text(DataCoding(0x24), &[1], &gsm),
        Err(DecodeError::Compressed(0x24))
    );
}

#[test]
fn udh_parse_and_build() {
    let wap = hex::decode("0B05040B8423F0000311 0302".replace(' ', "")).unwrap();
    let (udh, len) = UserDataHeader::parse(&wap).unwrap();
    assert_eq!(len, 12);
    assert_eq!(udh.ports(), Some((2948, 9200)));
    let c = udh.concat().unwrap();
    assert_eq!(
        (c.reference, c.total, c.seq, c.kind),
        (0x11, 3, 2, ConcatKind::Udh8)
    );
    assert_eq!(udh.encode().unwrap(), wap);

    let c16 = hex::decode("060804BEEF0201").unwrap();
    let (udh, _) = UserDataHeader::parse(&c16).unwrap();
    let c = udh.concat().unwrap();
    assert_eq!(
        (c.reference, c.total, c.seq, c.kind),
        (0xBEEF, 2, 1, ConcatKind::Udh16)
    );

    // Unknown IE and known IE with a wrong length are kept raw.
    let odd = hex::decode("0870020102000201FF").unwrap();
    let (udh, _) = UserDataHeader::parse(&odd).unwrap();
    assert!(matches!(
        udh.elements[0],
        InformationElement::Other { iei: 0x70, .. }
    ));
    assert!(matches!(
        udh.elements[1],
        InformationElement::Other { iei: 0x00, .. }
    ));
    assert_eq!(udh.encode().unwrap(), odd);

    assert_eq!(UserDataHeader::parse(&[]), Err(UdhError::Empty));
    assert_eq!(
        UserDataHeader::parse(&[5, 0, 3, 1]),
        Err(UdhError::LengthOverrun {
            udhl: 5,
            available: 3
        })
    );
    assert_eq!(
        UserDataHeader::parse(&[3, 0, 3, 1]),
        Err(UdhError::ElementOverrun { iei: 0 })
    );
}

#[test]
fn decode_user_data_applies_udh_national_tables() {
    // UDH: locking shift Turkish; text "ı" = 0x07 in the Turkish table ("ì" by default).
    let sm = Bytes::from(vec![0x03, 0x25, 0x01, 0x01, 0x07]);
    let d = decode_user_data(DataCoding(0), 0x40, &sm, &DecodeOptions::default()).unwrap();
    assert_eq!(d.content, Content::Text("ı".into()));
    let d = decode_user_data(
        DataCoding(0),
        0x00,
        &Bytes::from_static(&[0x07]),
        &DecodeOptions::default(),
    )
    .unwrap();
    assert_eq!(d.content, Content::Text("ì".into()));
    let bin = decode_user_data(
        DataCoding(4),
        0,
        &Bytes::from_static(&[1, 2]),
        &DecodeOptions::default(),
    )
    .unwrap();
    assert_eq!(bin.content, Content::Binary(Bytes::from_static(&[1, 2])));
    assert!(decode_user_data(
        DataCoding(0),
        0x40,
        &Bytes::from_static(&[9, 1]),
        &DecodeOptions::default()
    )
    .is_err());
}

proptest! {
    #[test]
    fn ucs2_round_trip(text in any::<String>()) {
        let b = ucs2::encode(&text);
        prop_assert_eq!(b.len(), 2 * ucs2::unit_count(&text));
        prop_assert_eq!(ucs2::decode(&b), text);
    }

    #[test]
    fn ucs2_decode_total(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let s = ucs2::decode(&bytes);
        prop_assert!(s.chars().count() <= bytes.len() / 2 + 1);
    }

    #[test]
    fn latin1_round_trip(text in "[\\u{0}-\\u{ff}]{0,200}") {
        prop_assert_eq!(Charset::Latin1.decode(&Charset::Latin1.encode(&text).unwrap()), text);
    }

    #[test]
    fn cyrillic_and_hebrew_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        for cs in [Charset::Cyrillic, Charset::Hebrew, Charset::Ascii, Charset::Latin1] {
            let text = cs.decode(&bytes);
            let clean: String = text.chars().filter(|&c| c != '\u{FFFD}').collect();
            let enc = cs.encode(&clean).unwrap();
            prop_assert_eq!(cs.decode(&enc), clean);
        }
    }

    #[test]
    fn udh_parse_is_total(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok((udh, len)) = UserDataHeader::parse(&bytes) {
            prop_assert!(len <= bytes.len());
            prop_assert_eq!(udh.encode().unwrap(), bytes[..len].to_vec());
        }
    }
}

#[test]
fn decode_user_data_packed_after_udh_uses_fill_bits() {
    use smpp_proto::message::gsm7;
    let udh = [0x05, 0x00, 0x03, 0x01, 0x01, 0x01];
    let mut sm = udh.to_vec();
    sm.extend(gsm7::pack(b"hellohello", gsm7::fill_bits(udh.len()), true));
    let opts = DecodeOptions {
        smsc_default: SmscDefaultAlphabet::Gsm7Packed,
        ..DecodeOptions::default()
    };
    let d = decode_user_data(DataCoding(0), 0x40, &Bytes::from(sm), &opts).unwrap();
    assert_eq!(d.content, Content::Text("hellohello".into()));
    assert_eq!(d.udh.unwrap().concat().unwrap().seq, 1);
}

#[test]
fn every_data_coding_value_is_classified() {
    for v in 0..=255u8 {
        let dc = DataCoding(v);
        let a = dc.alphabet();
        if dc.mwi().is_some() {
            assert!(matches!(a, Alphabet::Gsm7 | Alphabet::Ucs2), "{v:#04x}");
        }
        let r = decode_text(dc, b"abc", &DecodeOptions::default());
        match a {
            _ if dc.is_compressed() => assert_eq!(r, Err(DecodeError::Compressed(v))),
            Alphabet::Binary => assert_eq!(r, Err(DecodeError::Binary(v))),
            Alphabet::Gsm7
            | Alphabet::SmscDefault
            | Alphabet::Ia5
            | Alphabet::Latin1
            | Alphabet::Cyrillic
            | Alphabet::LatinHebrew => assert_eq!(r.unwrap(), "abc"),
            Alphabet::Ucs2 => assert!(r.is_ok()),
            _ => assert_eq!(r, Err(DecodeError::Unsupported(v))),
        }
    }
}
