//! The message layer wired to PDUs: texts built into submit_sm parts go over
//! the wire and come back whole; receipts are read from deliver_sm bodies.
#![allow(clippy::disallowed_methods)] // Instant::now in tests only: the reassembler takes time as input.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use smpp_proto::message::reassembly::{PartOutcome, Reassembler, ReassemblyConfig};
use smpp_proto::message::{
    Address, ConcatMode, DecodeOptions, DeliveryReceipt, IncomingPart, MessageState,
    ReferenceCounter, ShortMessage,
};
use smpp_proto::pdu::*;

/// Sends the parts through the codec as deliver_sm (what the recipient ESME sees),
/// in the given order, and reassembles them.
fn over_the_wire(parts: &[SubmitSm], order: &[usize]) -> String {
    let mut wire = Vec::new();
    for (i, &k) in order.iter().enumerate() {
        Pdu::request(
            SequenceNumber::new(i as u32 + 1),
            Body::DeliverSm(Box::new(parts[k].clone())),
        )
        .encode(&mut wire)
        .unwrap();
    }
    let mut buf = BytesMut::from(&wire[..]);
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let now = Instant::now();
    let mut done = None;
    while let Decoded::Pdu(p) = decode(&mut buf, &DecodeConfig::default()).unwrap() {
        let Body::DeliverSm(sm) = p.body else {
            panic!()
        };
        match r
            .handle_part(now, IncomingPart::from_deliver_sm(&sm).unwrap())
            .unwrap()
        {
            PartOutcome::Complete(m) => {
                assert!(done.is_none(), "completed twice");
                done = Some(m.decode_text(&DecodeOptions::default()).unwrap());
            }
            PartOutcome::Pending | PartOutcome::Duplicate => {}
        }
    }
    done.expect("message completed")
}

#[test]
fn builder_sets_addresses_receipts_and_coding() {
    let mut refs = ReferenceCounter::new(1);
    let parts = ShortMessage::text("Olá, 你好 🙂")
        .from(Address::alphanumeric("Acme"))
        .to("+447700900456")
        .request_receipt()
        .service_type("CMT")
        .validity("000001000000000R")
        .build(&mut refs)
        .unwrap();
    assert_eq!(parts.len(), 1);
    let p = &parts[0];
    assert_eq!(p.data_coding, 0x08, "UCS-2 for CJK and emoji");
    assert_eq!(
        (
            p.source_addr_ton,
            p.source_addr_npi,
            p.source_addr.as_str().unwrap()
        ),
        (5, 0, "Acme")
    );
    assert_eq!((p.dest_addr_ton, p.dest_addr_npi), (1, 1));
    assert_eq!(p.registered_delivery, 1);
    assert_eq!(p.service_type, "CMT");
    assert_eq!(
        p.short_message.len(),
        2 * 10,
        "UTF-16: 9 BMP chars and one surrogate pair"
    );
    assert_eq!(Address::guess("12345"), Address::short_code("12345"));
    assert_eq!(
        Address::guess("447700900123"),
        Address::international("447700900123")
    );
    assert_eq!(
        Address::guess("Acme Bank"),
        Address::alphanumeric("Acme Bank")
    );
}

#[test]
fn every_concatenation_mode_survives_the_wire_in_any_order() {
    let text = "Long message with € and {braces} ".repeat(12);
    for mode in [
        ConcatMode::Udh8,
        ConcatMode::Udh16,
        ConcatMode::Sar,
        ConcatMode::Payload,
    ] {
        let mut refs = ReferenceCounter::new(300);
        let parts = ShortMessage::text(text.clone())
            .to("447700900456")
            .concat(mode)
            .build(&mut refs)
            .unwrap();
        match mode {
            ConcatMode::Payload => {
                assert_eq!(parts.len(), 1);
                assert!(
                    parts[0].short_message.is_empty() && parts[0].tlvs.message_payload().is_some()
                );
            }
            ConcatMode::Sar => {
                assert!(parts.len() > 1);
                assert!(parts
                    .iter()
                    .all(|p| p.esm_class & 0x40 == 0 && p.tlvs.sar_msg_ref_num().is_some()));
            }
            _ => assert!(parts.len() > 1 && parts.iter().all(|p| p.esm_class & 0x40 != 0)),
        }
        let reversed: Vec<usize> = (0..parts.len()).rev().collect();
        assert_eq!(over_the_wire(&parts, &reversed), text, "{mode:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn any_text_round_trips_through_submit_sm_parts(text in "[a-zA-Z0-9 €{}\\[\\]~|^äöüñ你好🙂]{1,400}", seed: u64) {
        let mut refs = ReferenceCounter::new(seed as u16);
        let parts = ShortMessage::text(text.clone()).to("447700900456").build(&mut refs).unwrap();
        for p in &parts {
            prop_assert!(p.short_message.len() <= 255);
            let pdu = Pdu::request(SequenceNumber::new(1), Body::SubmitSm(Box::new(p.clone())));
            prop_assert!(pdu.encoded_len().is_ok());
        }
        let mut order: Vec<usize> = (0..parts.len()).collect();
        let n = order.len();
        for i in 0..n {
            order.swap(i, (seed as usize).wrapping_mul(31).wrapping_add(i * 7) % n);
        }
        prop_assert_eq!(over_the_wire(&parts, &order), text);
    }
}

fn receipt_sm(esm_class: u8, data_coding: u8, text: &[u8], tlvs: &[(TlvTag, &[u8])]) -> SubmitSm {
    let mut t = Tlvs::new();
    for (tag, v) in tlvs {
        t.push(*tag, v).unwrap();
    }
    SubmitSm {
        esm_class,
        data_coding,
        short_message: Bytes::copy_from_slice(text),
        tlvs: t,
        ..Default::default()
    }
}

const TEXT: &[u8] = b"id:0012345 sub:001 dlvrd:000 submit date:2601171030 done date:2601171031 stat:UNDELIV err:034 text:Hello";

#[test]
fn receipts_are_read_from_deliver_sm_with_tlvs_first() {
    let o = DecodeOptions::default();
    let r = DeliveryReceipt::from_deliver_sm(&receipt_sm(0x04, 0, TEXT, &[]), &o).unwrap();
    assert_eq!(
        (r.id.as_str(), r.state),
        ("0012345", MessageState::Undeliverable)
    );
    assert_eq!(r.error_code(), Some(34));

    // TLVs win over the text.
    let r = DeliveryReceipt::from_deliver_sm(
        &receipt_sm(
            0x04,
            0,
            TEXT,
            &[
                (TlvTag::RECEIPTED_MESSAGE_ID, b"3039\0"),
                (TlvTag::MESSAGE_STATE, &[2]),
            ],
        ),
        &o,
    )
    .unwrap();
    assert_eq!((r.id.as_str(), r.state), ("3039", MessageState::Delivered));

    // TLVs only, no text.
    let r = DeliveryReceipt::from_deliver_sm(
        &receipt_sm(
            0x04,
            0,
            b"",
            &[
                (TlvTag::RECEIPTED_MESSAGE_ID, b"abc\0"),
                (TlvTag::MESSAGE_STATE, &[3]),
                (TlvTag::NETWORK_ERROR_CODE, &[3, 0, 7]),
            ],
        ),
        &o,
    )
    .unwrap();
    assert_eq!((r.id.as_str(), r.state), ("abc", MessageState::Expired));
    assert_eq!(r.network_error.map(|n| n.error_code), Some(7));

    // UCS-2 receipt text, in message_payload, with UDHI also set in esm_class.
    let ucs2: Vec<u8> = String::from_utf8_lossy(TEXT)
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    let r = DeliveryReceipt::from_deliver_sm(&receipt_sm(0x04, 8, &ucs2, &[]), &o).unwrap();
    assert_eq!(r.state, MessageState::Undeliverable);
    let r = DeliveryReceipt::from_deliver_sm(
        &receipt_sm(0x04, 0, b"", &[(TlvTag::MESSAGE_PAYLOAD, TEXT)]),
        &o,
    )
    .unwrap();
    assert_eq!(r.id, "0012345");

    // Intermediate notification is a receipt too; an MO message is not.
    assert!(DeliveryReceipt::from_deliver_sm(&receipt_sm(0x20, 0, TEXT, &[]), &o).is_some());
    assert!(DeliveryReceipt::from_deliver_sm(&receipt_sm(0x00, 0, TEXT, &[]), &o).is_none());

    // data_sm receipts carry their text in message_payload.
    let mut tlvs = Tlvs::new();
    tlvs.push(TlvTag::MESSAGE_PAYLOAD, TEXT).unwrap();
    let d = DataSm {
        esm_class: 0x04,
        tlvs,
        ..Default::default()
    };
    assert_eq!(
        DeliveryReceipt::from_data_sm(&d, &o).unwrap().state,
        MessageState::Undeliverable
    );
}
