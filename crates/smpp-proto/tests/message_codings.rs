//! Forcing a text coding on a `ShortMessage` (issue #21, point 6b) and the
//! single-octet character sets of an SMSC's profile in the automatic choice
//! (point 7): what is chosen, the errors, and that every choice decodes back
//! to the text on the receiving side.

use proptest::prelude::*;
use smpp_proto::message::charsets::Charset;
use smpp_proto::message::coding::{decode_user_data, Content};
use smpp_proto::message::concat::{segment_info, SegmentError};
use smpp_proto::message::{
    choose_encoding, BuildError, CharsetSet, ConcatMode, DataCoding, DecodeOptions,
    ReferenceCounter, SegmentationPolicy, ShortMessage, TextEncoding,
};
use smpp_proto::pdu::SubmitSm;

fn profile(charsets: &[Charset]) -> SegmentationPolicy {
    SegmentationPolicy {
        charsets: CharsetSet::from_charsets(charsets),
        ..SegmentationPolicy::default()
    }
}

fn build(message: &ShortMessage) -> Result<Vec<SubmitSm>, BuildError> {
    message.build(&mut ReferenceCounter::new(7))
}

/// The text the parts carry, decoded as a receiver decodes them (each part's
/// data_coding, its UDH removed and its national tables applied).
fn decoded(parts: &[SubmitSm]) -> String {
    parts
        .iter()
        .map(|p| {
            let user_data = match p.tlvs.message_payload() {
                Some(payload) => bytes::Bytes::copy_from_slice(payload),
                None => p.short_message.clone(),
            };
            match decode_user_data(
                DataCoding(p.data_coding),
                p.esm_class,
                &user_data,
                &DecodeOptions::default(),
            )
            .expect("decodes")
            .content
            {
                Content::Text(t) => t,
                Content::Binary(b) => panic!("binary part {b:?}"),
            }
        })
        .collect()
}

#[test]
fn auto_choice_prefers_gsm7_then_the_profiles_charsets_then_ucs2() {
    let all = profile(&[Charset::Latin1, Charset::Cyrillic, Charset::Hebrew]);
    // GSM 7-bit whenever it can carry the text, profile or not.
    assert_eq!(
        choose_encoding("Grüße, Jörg! Ça va?", &all),
        TextEncoding::GSM7
    );
    // Latin-1 for what GSM lacks (ê, ¿, «»).
    assert_eq!(
        choose_encoding("¿crêpe «ou» tarte?", &all),
        TextEncoding::LATIN1
    );
    assert_eq!(
        choose_encoding("Привет, мир!", &all),
        TextEncoding::CYRILLIC
    );
    assert_eq!(choose_encoding("שלום עולם", &all), TextEncoding::HEBREW);
    // No single set has it all: UCS-2.
    assert_eq!(choose_encoding("crêpe שלום", &all), TextEncoding::UCS2);
    assert_eq!(choose_encoding("日本語", &all), TextEncoding::UCS2);
    // Only the sets of the profile are used.
    let latin = profile(&[Charset::Latin1]);
    assert_eq!(choose_encoding("Привет", &latin), TextEncoding::UCS2);
    assert_eq!(choose_encoding("crêpe", &latin), TextEncoding::LATIN1);
    // The default profile is unchanged: GSM 7-bit, else UCS-2.
    let default = SegmentationPolicy::default();
    assert_eq!(default.charsets, CharsetSet::EMPTY);
    assert_eq!(choose_encoding("crêpe", &default), TextEncoding::UCS2);
    assert_eq!(choose_encoding("Привет", &default), TextEncoding::UCS2);
}

#[test]
fn a_charset_takes_140_characters_a_part_where_ucs2_takes_70() {
    let text = "ж".repeat(140);
    let cyrillic = profile(&[Charset::Cyrillic]);
    let info = segment_info(&text, &cyrillic).unwrap();
    assert_eq!((info.encoding, info.parts), (TextEncoding::CYRILLIC, 1));
    assert_eq!(info.data_coding, DataCoding::CYRILLIC);
    let ucs2 = segment_info(&text, &SegmentationPolicy::default()).unwrap();
    assert_eq!((ucs2.encoding, ucs2.parts), (TextEncoding::UCS2, 3));

    // 141 characters: two parts of at most 134 octets (UDH 6).
    let text = "ê".repeat(141);
    let parts = build(&ShortMessage::text(&text).charsets(cyrillic.charsets.with(Charset::Latin1)))
        .unwrap();
    assert_eq!(parts.len(), 2);
    assert!(parts.iter().all(|p| p.data_coding == 0x03));
    assert!(parts.iter().all(|p| p.esm_class & 0x40 != 0));
    assert_eq!(parts[0].short_message.len(), 6 + 134);
    assert_eq!(decoded(&parts), text);
}

#[test]
fn short_message_charsets_reach_the_parts_and_decode_back() {
    for (text, dc) in [
        ("crêpe brûlée", 0x03),
        ("До свидания", 0x06),
        ("להתראות", 0x07),
        ("plain GSM text", 0x00),
        ("中文", 0x08),
    ] {
        let message =
            ShortMessage::text(text)
                .to("447700900001")
                .charsets(CharsetSet::from_charsets(&[
                    Charset::Latin1,
                    Charset::Cyrillic,
                    Charset::Hebrew,
                ]));
        let parts = build(&message).unwrap();
        assert_eq!(parts.len(), 1, "{text}");
        assert_eq!(parts[0].data_coding, dc, "{text}");
        assert_eq!(decoded(&parts), text);
    }
}

#[test]
fn a_forced_coding_is_used_even_when_another_would_do() {
    for (coding, dc, octets) in [
        (TextEncoding::GSM7, 0x00, 5),
        (TextEncoding::UCS2, 0x08, 10),
        (TextEncoding::LATIN1, 0x03, 5),
        (TextEncoding::CYRILLIC, 0x06, 5),
        (TextEncoding::HEBREW, 0x07, 5),
        (TextEncoding::ASCII, 0x01, 5),
    ] {
        let parts = build(&ShortMessage::text_in("hello", coding).unwrap()).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].data_coding, dc, "{coding:?}");
        assert_eq!(parts[0].short_message.len(), octets, "{coding:?}");
        assert_eq!(decoded(&parts), "hello");
    }
    // UCS-2 forced on a long GSM text: parts of 67 characters, split on
    // character boundaries.
    let text = "a€".repeat(50);
    let parts = build(&ShortMessage::text_in(&text, TextEncoding::UCS2).unwrap()).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(decoded(&parts), text);
    // The builder form.
    let parts = build(&ShortMessage::text("Привет").coding(TextEncoding::CYRILLIC)).unwrap();
    assert_eq!(parts[0].data_coding, 0x06);
    assert_eq!(parts[0].short_message.len(), 6);
}

#[test]
fn a_forced_coding_that_cannot_carry_the_text_names_the_character() {
    let err = ShortMessage::text_in("Prix: 5€ ou 5£", TextEncoding::CYRILLIC).unwrap_err();
    assert_eq!(
        err.to_string(),
        "character '€' at char index 7 is not representable in Cyrillic"
    );
    assert!(matches!(
        err,
        BuildError::Segment(SegmentError::Charset(e)) if e.character == '€' && e.index == 7
    ));
    let err = ShortMessage::text_in("crêpe", TextEncoding::GSM7).unwrap_err();
    assert_eq!(
        err.to_string(),
        "character 'ê' at char index 2 is not representable in the GSM 7-bit alphabet"
    );
    assert!(ShortMessage::text_in("שלום", TextEncoding::LATIN1).is_err());
    // The builder form fails in build().
    let err = build(&ShortMessage::text("€").coding(TextEncoding::HEBREW)).unwrap_err();
    assert!(err.to_string().contains("'€'"), "{err}");
    // UCS-2 carries anything.
    assert!(ShortMessage::text_in("a😀b", TextEncoding::UCS2).is_ok());
}

/// Text drawn from GSM, Latin-1, Cyrillic, Hebrew, CJK and astral characters.
fn text_strategy() -> impl Strategy<Value = String> {
    let pools = prop_oneof![
        Just("abc xyz@£Ç\n{}€"),
        Just("àâêîôûëïÿ¿¡«»©®°±"),
        Just("привет мир ЖЩЁ№"),
        Just("שלום עולם ×÷"),
        Just("日本語"),
        Just("a😀b"),
    ];
    (prop::collection::vec(pools, 1..3), 0usize..400).prop_flat_map(|(pools, len)| {
        let chars: Vec<char> = pools.iter().flat_map(|p| p.chars()).collect();
        prop::collection::vec(prop::sample::select(chars), len)
            .prop_map(|v| v.into_iter().collect::<String>())
    })
}

fn charsets_strategy() -> impl Strategy<Value = CharsetSet> {
    prop::collection::vec(
        prop::sample::select(vec![
            Charset::Latin1,
            Charset::Cyrillic,
            Charset::Hebrew,
            Charset::Ascii,
        ]),
        0..4,
    )
    .prop_map(|v| CharsetSet::from_charsets(&v))
}

fn forced_strategy() -> impl Strategy<Value = TextEncoding> {
    prop::sample::select(vec![
        TextEncoding::GSM7,
        TextEncoding::UCS2,
        TextEncoding::LATIN1,
        TextEncoding::CYRILLIC,
        TextEncoding::HEBREW,
        TextEncoding::ASCII,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the profile, the automatic choice round-trips, uses only a
    /// set of the profile, prefers GSM 7-bit, and never needs more parts than
    /// the default choice.
    #[test]
    fn auto_choice_always_round_trips(
        text in text_strategy(),
        charsets in charsets_strategy(),
        sar in any::<bool>(),
    ) {
        let mode = if sar { ConcatMode::Sar } else { ConcatMode::Udh8 };
        let policy = SegmentationPolicy { mode, charsets, ..SegmentationPolicy::default() };
        let chosen = choose_encoding(&text, &policy);
        match chosen {
            TextEncoding::Charset(c) => {
                prop_assert!(charsets.contains(c));
                prop_assert!(!TextEncoding::GSM7.can_encode(&text));
            }
            TextEncoding::Gsm7(_) => prop_assert!(TextEncoding::GSM7.can_encode(&text)),
            TextEncoding::Ucs2 => prop_assert!(
                !TextEncoding::GSM7.can_encode(&text)
                    && charsets.iter().all(|c| !c.can_encode(&text))
            ),
        }
        let parts = build(&ShortMessage::text(&text).policy(policy.clone())).unwrap();
        prop_assert_eq!(decoded(&parts), text.clone());
        let default = build(&ShortMessage::text(&text).concat(mode)).unwrap();
        prop_assert!(parts.len() <= default.len());
    }

    /// A forced coding either fails up front (exactly when the coding cannot
    /// carry a character) or round-trips with its data_coding.
    #[test]
    fn forced_coding_round_trips_or_fails_up_front(
        text in text_strategy(),
        coding in forced_strategy(),
    ) {
        match ShortMessage::text_in(&text, coding) {
            Ok(message) => {
                prop_assert!(coding.can_encode(&text));
                let parts = build(&message).unwrap();
                let expected = coding.data_coding(&SegmentationPolicy::default());
                prop_assert!(parts.iter().all(|p| p.data_coding == expected.value()));
                prop_assert_eq!(decoded(&parts), text);
            }
            Err(e) => {
                prop_assert!(!coding.can_encode(&text), "{}", e);
                prop_assert!(build(&ShortMessage::text(&text).coding(coding)).is_err());
            }
        }
    }
}
