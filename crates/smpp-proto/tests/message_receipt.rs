//! Delivery receipts: real-world text variants, TLV precedence, id normalisation.

use proptest::prelude::*;
use smpp_proto::message::receipt::{
    canonical_id, IdRadix, NetworkErrorCode, NotAReceipt, ReceiptDate, ReceiptTlvs,
};
use smpp_proto::message::{DeliveryReceipt, MessageIdFormat, MessageState};

fn parse(s: &str) -> DeliveryReceipt {
    DeliveryReceipt::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn date(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: Option<u8>) -> Option<ReceiptDate> {
    Some(ReceiptDate {
        year: y,
        month: mo,
        day: d,
        hour: h,
        minute: mi,
        second: s,
    })
}

#[test]
fn standard_v34_appendix_format() {
    let r = parse("id:1234567890 sub:001 dlvrd:001 submit date:2601171030 done date:2601171031 stat:DELIVRD err:000 text:Hello world");
    assert_eq!(r.id, "1234567890");
    assert_eq!((r.submitted, r.delivered), (Some(1), Some(1)));
    assert_eq!(r.submit_date, date(2026, 1, 17, 10, 30, None));
    assert_eq!(r.done_date, date(2026, 1, 17, 10, 31, None));
    assert_eq!(r.state, MessageState::Delivered);
    assert_eq!(r.stat_word.as_deref(), Some("DELIVRD"));
    assert_eq!(r.error_code(), Some(0));
    assert_eq!(r.text.as_deref(), Some("Hello world"));
}

#[test]
fn capitalised_text_label() {
    let r = parse("id:0123456789 sub:001 dlvrd:000 submit date:1305061020 done date:1305061021 stat:UNDELIV err:001 Text:Test msg");
    assert_eq!(r.state, MessageState::Undeliverable);
    assert_eq!(r.text.as_deref(), Some("Test msg"));
    assert_eq!(r.id, "0123456789");
    assert_eq!(r.submit_date.unwrap().year, 2013);
}

#[test]
fn twelve_digit_dates_and_hex_ids() {
    let r = parse("id:c449ab9744f47b6af1879e49e75e4f40 sub:001 dlvrd:001 submit date:260117103015 done date:260117103122 stat:DELIVRD err:000 text:");
    assert_eq!(r.id, "c449ab9744f47b6af1879e49e75e4f40");
    assert_eq!(r.submit_date, date(2026, 1, 17, 10, 30, Some(15)));
    assert_eq!(r.done_date, date(2026, 1, 17, 10, 31, Some(22)));
    assert_eq!(r.text.as_deref(), Some(""));
}

#[test]
fn fourteen_digit_dates_unpadded_numbers_long_stat() {
    let r = parse("id:7220412 sub:1 dlvrd:1 submit date:20260117103015 done date:20260117103122 stat:DELIVERED err:0 text:hi");
    assert_eq!(r.submit_date, date(2026, 1, 17, 10, 30, Some(15)));
    assert_eq!((r.submitted, r.delivered), (Some(1), Some(1)));
    assert_eq!(r.state, MessageState::Delivered);
    assert_eq!(r.error.as_deref(), Some("0"));
}

#[test]
fn lower_case_stat_and_missing_text() {
    let r = parse(
        "id:42 sub:001 dlvrd:001 submit date:2601171030 done date:2601171030 stat:delivrd err:000",
    );
    assert_eq!(r.state, MessageState::Delivered);
    assert_eq!(r.text, None);
}

#[test]
fn unknown_stat_word_and_missing_fields() {
    let r = parse("id:abc stat:BLAH err:000");
    assert_eq!(r.state, MessageState::Unknown);
    assert_eq!(r.stat_word.as_deref(), Some("BLAH"));
    assert_eq!((r.submitted, r.submit_date), (None, None));
    let r = parse("id:123 stat:EXPIRED");
    assert_eq!(r.state, MessageState::Expired);
    assert_eq!(r.error, None);
}

#[test]
fn long_err_field() {
    let r = parse("id:99 sub:001 dlvrd:000 submit date:2601171030 done date:2601171130 stat:UNDELIV err:0x1A3F text:Your code is 1234");
    assert_eq!(r.error.as_deref(), Some("0x1A3F"));
    assert_eq!(r.error_code(), None);
    let r = parse("id:99 stat:REJECTD err:20013");
    assert_eq!(r.error_code(), Some(20013));
    assert_eq!(r.state, MessageState::Rejected);
}

#[test]
fn extra_fields_are_kept() {
    let r = parse("id:55 sub:001 dlvrd:001 submit date:2601171030 done date:2601171031 stat:DELIVRD err:000 mcc:234 mnc:15 text:Hey");
    assert_eq!(
        r.extra,
        vec![("mcc".into(), "234".into()), ("mnc".into(), "15".into())]
    );
    assert_eq!(r.text.as_deref(), Some("Hey"));
}

#[test]
fn underscore_labels_and_spaces_after_colons() {
    let r = parse("id:77 submit_date:2601171030 done_date:2601171031 stat:ACCEPTD err:000");
    assert_eq!(r.submit_date, date(2026, 1, 17, 10, 30, None));
    assert_eq!(r.state, MessageState::Accepted);
    let r = parse("id: 1A2B3C sub: 001 dlvrd: 001 submit date: 2601171030 done date: 2601171031 stat: REJECTD err: 012 text: foo bar");
    assert_eq!(r.id, "1A2B3C");
    assert_eq!(r.submitted, Some(1));
    assert_eq!(r.done_date, date(2026, 1, 17, 10, 31, None));
    assert_eq!(r.state, MessageState::Rejected);
    assert_eq!(r.error.as_deref(), Some("012"));
    assert_eq!(r.text.as_deref(), Some("foo bar"));
}

#[test]
fn reordered_fields_trailing_nul_and_odd_words() {
    let r = parse("stat:ENROUTE id:5 err:000\0");
    assert_eq!(
        (r.id.as_str(), r.state, r.error.as_deref()),
        ("5", MessageState::Enroute, Some("000"))
    );
    assert_eq!(parse("id:1 stat:FAILED").state, MessageState::Undeliverable);
    assert_eq!(parse("id:1 stat:BUFFERD").state, MessageState::Enroute);
    assert_eq!(
        parse("ID:1 STAT:undeliverable").state,
        MessageState::Undeliverable
    );
    // An invalid date is dropped, the rest still parses.
    let r = parse("id:1 submit date:2613451099 stat:DELIVRD");
    assert_eq!(r.submit_date, None);
    assert_eq!(r.state, MessageState::Delivered);
}

#[test]
fn not_a_receipt() {
    assert_eq!(
        DeliveryReceipt::parse("Hello, see you at 10:30"),
        Err(NotAReceipt)
    );
    assert_eq!(DeliveryReceipt::parse(""), Err(NotAReceipt));
}

#[test]
fn tlvs_take_precedence() {
    let mut r = parse("id:0000A1B2 stat:DELIVRD err:000 text:x");
    r.merge_tlvs(&ReceiptTlvs {
        receipted_message_id: Some("41394\0"),
        message_state: Some(5),
        network_error_code: Some([3, 0x00, 0x22]),
    });
    assert_eq!(r.id, "41394");
    assert_eq!(r.state, MessageState::Undeliverable);
    assert_eq!(
        r.network_error,
        Some(NetworkErrorCode {
            network_type: 3,
            error_code: 0x22
        })
    );
    assert_eq!(r.text.as_deref(), Some("x"));
    r.merge_tlvs(&ReceiptTlvs {
        message_state: Some(200),
        ..ReceiptTlvs::default()
    });
    assert_eq!(r.state, MessageState::Unknown);
    let only = DeliveryReceipt::from_tlvs(&ReceiptTlvs {
        receipted_message_id: Some("abc"),
        message_state: Some(2),
        network_error_code: None,
    })
    .unwrap();
    assert_eq!(
        (only.id.as_str(), only.state),
        ("abc", MessageState::Delivered)
    );
    assert!(DeliveryReceipt::from_tlvs(&ReceiptTlvs::default()).is_none());
}

#[test]
fn message_state_wire_values_and_words() {
    for v in 0..=9u8 {
        let s = MessageState::from_u8(v).unwrap();
        assert_eq!(s.to_u8(), v);
        assert_eq!(MessageState::from_stat_word(s.stat_word()), s);
    }
    assert_eq!(MessageState::from_u8(10), None);
    assert_eq!(MessageState::Delivered.stat_word(), "DELIVRD");
    assert_eq!(MessageState::Undeliverable.to_u8(), 5);
    assert!(MessageState::Rejected.is_final());
    assert!(!MessageState::Enroute.is_final());
}

#[test]
fn message_id_normalisation() {
    let auto = MessageIdFormat::default();
    assert!(auto.matches("0000A1B2", "41394"));
    assert!(auto.matches("00123", "123"));
    assert!(auto.matches("abcDEF", "ABCdef"));
    assert!(auto.matches(" 7f \0", "0x7F"));
    assert!(!auto.matches("10", "16"));
    // Hex without letters needs the explicit format (Kannel msg-id-type 1: submit hex).
    assert!(!auto.matches("00012345", "74565"));
    let kannel = MessageIdFormat::from_kannel_msg_id_type(1);
    assert!(kannel.matches("00012345", "74565"));
    assert!(!kannel.matches("00012345", "12345"));
    assert_eq!(canonical_id("msg-42", IdRadix::Auto), "msg-42");
    assert_eq!(canonical_id("0042", IdRadix::Text), "0042");
    assert_eq!(canonical_id("0042", IdRadix::Decimal), "42");
    // Longer than 128 bits stays text.
    let long = "f".repeat(40);
    assert_eq!(canonical_id(&long, IdRadix::Hex), long);
}

#[test]
fn build_format_matches_appendix() {
    let mut r = DeliveryReceipt::new("1234567890", MessageState::Delivered);
    r.submit_date = date(2026, 1, 17, 10, 30, None);
    r.done_date = date(2026, 1, 17, 10, 31, None);
    r.text = Some("This text is longer than twenty chars".into());
    assert_eq!(
        r.to_text(),
        "id:1234567890 sub:001 dlvrd:001 submit date:2601171030 done date:2601171031 stat:DELIVRD err:000 text:This text is longer "
    );
}

fn state_strategy() -> impl Strategy<Value = MessageState> {
    (0u8..10).prop_map(|v| MessageState::from_u8(v).unwrap())
}

fn date_strategy() -> impl Strategy<Value = ReceiptDate> {
    (
        2000u16..2070,
        1u8..13,
        1u8..29,
        0u8..24,
        0u8..60,
        prop::option::of(0u8..60),
    )
        .prop_map(|(year, month, day, hour, minute, second)| ReceiptDate {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
}

proptest! {
    #[test]
    fn build_parse_round_trip(
        id in "[A-Za-z0-9]{1,24}",
        sub in 0u32..1000,
        dlvrd in 0u32..1000,
        submit in date_strategy(),
        done in date_strategy(),
        state in state_strategy(),
        err in "[0-9]{3,6}",
        text in "([A-Za-z0-9][A-Za-z0-9 ,.!?:]{0,17}[A-Za-z0-9])?",
    ) {
        let r = DeliveryReceipt {
            id,
            submitted: Some(sub),
            delivered: Some(dlvrd),
            submit_date: Some(submit),
            done_date: Some(done),
            state,
            stat_word: Some(state.stat_word().to_owned()),
            error: Some(err),
            text: Some(text),
            network_error: None,
            extra: Vec::new(),
        };
        let parsed = DeliveryReceipt::parse(&r.to_text()).unwrap();
        prop_assert_eq!(parsed, r);
    }
}

/// A receipt an MC builds as a deliver_sm, carried as a data_sm
/// (`ReceiptCarrier::DataSm`): the text moves to message_payload, the TLVs
/// stay, and a receiver reads the same receipt from either body; the carrier
/// follows the rule (data_sm only for a data_sm's receipt, to 5.0 or when an
/// address is too long for a deliver_sm, never to 3.3).
#[test]
fn a_receipt_reads_the_same_from_deliver_sm_and_data_sm() {
    use smpp_proto::message::short_message::DELIVER_SM_MAX_ADDRESS;
    use smpp_proto::message::{DecodeOptions, ReceiptCarrier};
    use smpp_proto::pdu::{Body, DeliverSm, EsmClass, TlvTag};

    let mut receipt = DeliveryReceipt::new("1A2B", MessageState::Undeliverable);
    receipt.error = Some("042".into());
    receipt.text = Some("hello".into());
    let mut sm = DeliverSm {
        source_addr: "447700900002".into(),
        destination_addr: "447700900001".into(),
        esm_class: EsmClass::DELIVERY_RECEIPT.bits(),
        short_message: receipt.to_text().into_bytes().into(),
        ..Default::default()
    };
    sm.tlvs
        .set_text(TlvTag::RECEIPTED_MESSAGE_ID, b"1A2B")
        .unwrap();
    sm.tlvs
        .set_u8(TlvTag::MESSAGE_STATE, MessageState::Undeliverable.to_u8());
    let options = DecodeOptions::default();
    let as_deliver = ReceiptCarrier::DeliverSm.body(sm.clone()).unwrap();
    let as_data = ReceiptCarrier::DataSm.body(sm.clone()).unwrap();
    let Body::DataSm(data) = &as_data else {
        panic!("{as_data:?}")
    };
    assert_eq!(data.tlvs.message_payload(), Some(&sm.short_message[..]));
    assert_eq!((data.esm_class, &data.source_addr), (0x04, &sm.source_addr));
    let from_deliver = DeliveryReceipt::from_body(&as_deliver, &options).unwrap();
    let from_data = DeliveryReceipt::from_body(&as_data, &options).unwrap();
    assert_eq!(from_deliver, from_data);
    assert_eq!(from_data.id, "1A2B");
    assert_eq!(from_data.state, MessageState::Undeliverable);
    assert_eq!(from_data.text.as_deref(), Some("hello"));

    let fits = "4".repeat(DELIVER_SM_MAX_ADDRESS);
    let long = "4".repeat(DELIVER_SM_MAX_ADDRESS + 1);
    for (data_sm, version, from, to, want) in [
        (false, 0x50, &fits, &fits, ReceiptCarrier::DeliverSm),
        (false, 0x34, &long, &fits, ReceiptCarrier::DeliverSm),
        (true, 0x34, &fits, &fits, ReceiptCarrier::DeliverSm),
        (true, 0x50, &fits, &fits, ReceiptCarrier::DataSm),
        (true, 0x34, &long, &fits, ReceiptCarrier::DataSm),
        (true, 0x34, &fits, &long, ReceiptCarrier::DataSm),
        (true, 0x33, &long, &fits, ReceiptCarrier::DeliverSm),
    ] {
        assert_eq!(
            ReceiptCarrier::choose(data_sm, version, from, to),
            want,
            "{data_sm} {version:#x} {} {}",
            from.len(),
            to.len()
        );
    }
}
