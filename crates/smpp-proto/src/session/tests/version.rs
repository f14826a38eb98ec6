//! What a session sends follows the peer's version: no TLVs to 3.3, none of
//! 5.0's to 3.4, no operation newer than the peer's (both roles).

use proptest::prelude::*;

use crate::message::receipt::{DeliveryReceipt, MessageState};
use crate::pdu::profile::{count_unfit, fits_version, strip_unfit};
use crate::pdu::{
    BindResp, Body, BroadcastSm, CancelBroadcastSm, CommandId, CommandStatus, DeliverSm, Pdu,
    QueryBroadcastSm, SubmitSm, TlvTag, Tlvs,
};
use crate::session::tests::sim::{End, Sim};
use crate::session::{BindKind, Event, SendError, SessionConfig};

fn written(sim: &Sim, end: End) -> Vec<Pdu> {
    let bytes = match end {
        End::Esme => &sim.esme.written,
        End::Mc => &sim.mc.written,
    };
    let mut buf = bytes::BytesMut::from(&bytes[..]);
    let mut out = Vec::new();
    while let Ok(crate::pdu::Decoded::Pdu(p)) =
        crate::pdu::decode(&mut buf, &crate::pdu::DecodeConfig::lenient())
    {
        out.push(p);
    }
    out
}

fn last_of(sim: &Sim, end: End, id: CommandId) -> Pdu {
    written(sim, end)
        .into_iter()
        .rev()
        .find(|p| p.command_id() == id)
        .unwrap_or_else(|| panic!("{id} written by {end:?}"))
}

/// A receipt as `smpp serve` builds one: the text and the two TLVs.
fn receipt() -> DeliverSm {
    let text = DeliveryReceipt::new("5F3A", MessageState::Delivered).to_text();
    let mut tlvs = Tlvs::new();
    tlvs.set_text(TlvTag::RECEIPTED_MESSAGE_ID, b"5F3A")
        .unwrap();
    tlvs.set_u8(TlvTag::MESSAGE_STATE, MessageState::Delivered.to_u8());
    DeliverSm {
        source_addr: "447700900456".into(),
        destination_addr: "447700900123".into(),
        esm_class: 0x04,
        short_message: text.into_bytes().into(),
        tlvs,
        ..Default::default()
    }
}

/// A submit_sm with a 3.4 TLV (user_message_reference) and a 5.0 one
/// (billing_identification).
fn submit_with_tlvs() -> SubmitSm {
    let mut sm = SubmitSm {
        source_addr: "447700900123".into(),
        destination_addr: "447700900456".into(),
        short_message: "hi".into(),
        ..Default::default()
    };
    sm.tlvs.set_u16(TlvTag::USER_MESSAGE_REFERENCE, 7);
    sm.tlvs
        .set(TlvTag::BILLING_IDENTIFICATION, b"\x01ab")
        .unwrap();
    sm
}

fn broadcasts() -> [Body; 3] {
    let mut bc = BroadcastSm {
        source_addr: "447700900123".into(),
        ..Default::default()
    };
    bc.tlvs
        .set(TlvTag::BROADCAST_AREA_IDENTIFIER, b"\x00area")
        .unwrap();
    bc.tlvs
        .set(TlvTag::BROADCAST_CONTENT_TYPE, b"\x01\x00\x10")
        .unwrap();
    bc.tlvs.set_u16(TlvTag::BROADCAST_REP_NUM, 1);
    bc.tlvs
        .set(TlvTag::BROADCAST_FREQUENCY_INTERVAL, b"\x09\x00\x1f")
        .unwrap();
    [
        Body::BroadcastSm(Box::new(bc)),
        Body::QueryBroadcastSm(Box::new(QueryBroadcastSm {
            message_id: "1".into(),
            ..Default::default()
        })),
        Body::CancelBroadcastSm(Box::new(CancelBroadcastSm {
            message_id: "1".into(),
            ..Default::default()
        })),
    ]
}

#[test]
fn a_3_3_esme_gets_no_sc_interface_version_and_receipts_without_tlvs() {
    let mut sim = Sim::new(SessionConfig::default());
    sim.bind_as(BindKind::Transceiver, 0x33);
    assert_eq!(sim.mc.s.interface_version(), Some(0x33));
    assert_eq!(sim.esme.s.interface_version(), Some(0x33));
    let resp = last_of(&sim, End::Mc, CommandId::BIND_TRANSCEIVER_RESP);
    assert!(resp.body.tlvs().unwrap().is_empty(), "{resp:?}");

    sim.mc
        .s
        .send_request(sim.now, Body::DeliverSm(Box::new(receipt())))
        .unwrap();
    sim.settle();
    let got = sim
        .esme
        .take_events()
        .into_iter()
        .find_map(|e| match e {
            Event::Request(p) if p.command_id() == CommandId::DELIVER_SM => Some(p),
            _ => None,
        })
        .expect("the receipt arrives");
    let Body::DeliverSm(sm) = &got.body else {
        unreachable!()
    };
    assert!(sm.tlvs.is_empty(), "{sm:?}");
    let text = std::str::from_utf8(&sm.short_message).unwrap();
    let parsed = DeliveryReceipt::parse(text).unwrap();
    assert_eq!(
        (parsed.id.as_str(), parsed.state),
        ("5F3A", MessageState::Delivered)
    );
    let stats = sim.mc.s.stats();
    assert_eq!((stats.tlvs_dropped, stats.pdus_trimmed), (2, 1));
    let reported: Vec<_> = sim
        .mc
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::TlvsDropped {
                command_id,
                dropped,
                version,
                ..
            } => Some((command_id, dropped, version)),
            _ => None,
        })
        .collect();
    assert_eq!(reported, [(CommandId::DELIVER_SM, 2, 0x33)]);
}

#[test]
fn an_mc_application_adding_sc_interface_version_for_a_3_3_bind_is_corrected() {
    let mut sim = Sim::new(SessionConfig::default());
    sim.mc.app.answer_binds = None;
    sim.esme
        .s
        .bind(
            sim.now,
            BindKind::Transmitter,
            crate::pdu::Bind {
                interface_version: 0x00,
                ..Default::default()
            },
        )
        .unwrap();
    sim.settle();
    let seq = sim
        .mc
        .take_events()
        .into_iter()
        .find_map(|e| match e {
            Event::BindRequest {
                sequence_number, ..
            } => Some(sequence_number),
            _ => None,
        })
        .unwrap();
    let mut resp = BindResp::default();
    resp.tlvs.set_u8(TlvTag::SC_INTERFACE_VERSION, 0x50);
    sim.mc
        .s
        .send_response(
            sim.now,
            seq,
            CommandStatus::OK,
            BindKind::Transmitter.response(resp),
        )
        .unwrap();
    sim.settle();
    let resp = last_of(&sim, End::Mc, CommandId::BIND_TRANSMITTER_RESP);
    assert!(resp.body.tlvs().unwrap().is_empty(), "{resp:?}");
    assert_eq!(sim.esme.s.interface_version(), Some(0x33));
    assert_eq!(sim.mc.s.stats().tlvs_dropped, 1);
}

#[test]
fn an_esme_on_a_3_3_mc_sends_no_tlvs_and_refuses_what_would_lose_content() {
    let mut sim = Sim::new(SessionConfig::default());
    sim.bind_as(BindKind::Transceiver, 0x33);
    sim.esme.take_events();
    sim.mc.take_events();
    sim.esme
        .s
        .send_request(sim.now, Body::SubmitSm(Box::new(submit_with_tlvs())))
        .unwrap();
    sim.settle();
    let sent = last_of(&sim, End::Esme, CommandId::SUBMIT_SM);
    assert!(sent.body.tlvs().unwrap().is_empty(), "{sent:?}");
    assert_eq!(sim.esme.s.stats().tlvs_dropped, 2);

    // The text in message_payload: refused, handed back whole, nothing sent.
    let mut long = SubmitSm::default();
    long.tlvs
        .set(TlvTag::MESSAGE_PAYLOAD, b"long text")
        .unwrap();
    let before = sim.esme.written.len();
    match sim
        .esme
        .s
        .send_request(sim.now, Body::SubmitSm(Box::new(long.clone())))
    {
        Err(SendError::PeerVersion(Body::SubmitSm(back), 0x33)) => assert_eq!(*back, long),
        other => panic!("{other:?}"),
    }
    // data_sm came with 3.4.
    assert!(matches!(
        sim.esme
            .s
            .send_request(sim.now, Body::DataSm(Box::default())),
        Err(SendError::PeerVersion(_, 0x33))
    ));
    sim.settle();
    assert_eq!(sim.esme.written.len(), before);
    assert_eq!(sim.esme.s.in_flight(), 0);
}

#[test]
fn a_3_4_peer_gets_no_5_0_tlvs_nor_broadcasts() {
    let mut sim = Sim::new(SessionConfig::default());
    sim.bind_as(BindKind::Transceiver, 0x34);
    let resp = last_of(&sim, End::Mc, CommandId::BIND_TRANSCEIVER_RESP);
    assert_eq!(resp.body.tlvs().unwrap().sc_interface_version(), Some(0x34));
    sim.esme.take_events();
    sim.mc.take_events();

    // ESME -> MC: the 3.4 TLV goes, the 5.0 one does not.
    sim.esme
        .s
        .send_request(sim.now, Body::SubmitSm(Box::new(submit_with_tlvs())))
        .unwrap();
    // MC -> ESME: a receipt carrying a 5.0 TLV too.
    let mut dlr = receipt();
    dlr.tlvs
        .set(TlvTag::SOURCE_NETWORK_ID, b"1234150\0")
        .unwrap();
    sim.mc
        .s
        .send_request(sim.now, Body::DeliverSm(Box::new(dlr)))
        .unwrap();
    sim.settle();
    let sent = last_of(&sim, End::Esme, CommandId::SUBMIT_SM);
    let tlvs = sent.body.tlvs().unwrap();
    assert_eq!(tlvs.user_message_reference(), Some(7));
    assert!(!tlvs.contains(TlvTag::BILLING_IDENTIFICATION));
    let answer = last_of(&sim, End::Mc, CommandId::SUBMIT_SM_RESP);
    assert!(!answer
        .body
        .tlvs()
        .unwrap()
        .contains(TlvTag::CONGESTION_STATE));
    let dlr = last_of(&sim, End::Mc, CommandId::DELIVER_SM);
    let tlvs = dlr.body.tlvs().unwrap();
    assert_eq!(tlvs.receipted_message_id(), Some(&b"5F3A"[..]));
    assert!(tlvs.contains(TlvTag::MESSAGE_STATE));
    assert!(!tlvs.contains(TlvTag::SOURCE_NETWORK_ID));
    assert_eq!(sim.esme.s.stats().tlvs_dropped, 1);
    assert_eq!(sim.mc.s.stats().tlvs_dropped, 1);

    // The 5.0 operations are refused locally, whole.
    let before = sim.esme.written.len();
    for body in broadcasts() {
        let id = body.command_id();
        match sim.esme.s.send_request(sim.now, body.clone()) {
            Err(SendError::PeerVersion(back, 0x34)) => assert_eq!(back, body, "{id}"),
            other => panic!("{id}: {other:?}"),
        }
    }
    sim.settle();
    assert_eq!(sim.esme.written.len(), before);
    assert_eq!(sim.esme.s.in_flight(), 0);
}

#[test]
fn a_5_0_peer_gets_everything() {
    let mut sim = Sim::new(SessionConfig::default());
    sim.bind_as(BindKind::Transceiver, 0x50);
    let resp = last_of(&sim, End::Mc, CommandId::BIND_TRANSCEIVER_RESP);
    assert_eq!(resp.body.tlvs().unwrap().sc_interface_version(), Some(0x50));
    sim.esme.take_events();
    sim.mc.take_events();
    sim.esme
        .s
        .send_request(sim.now, Body::SubmitSm(Box::new(submit_with_tlvs())))
        .unwrap();
    for body in broadcasts() {
        sim.esme.s.send_request(sim.now, body).unwrap();
    }
    let mut dlr = receipt();
    dlr.tlvs
        .set(TlvTag::SOURCE_NETWORK_ID, b"1234150\0")
        .unwrap();
    let dlr_tlvs = dlr.tlvs.clone();
    sim.mc
        .s
        .send_request(sim.now, Body::DeliverSm(Box::new(dlr)))
        .unwrap();
    sim.settle();
    let sent = last_of(&sim, End::Esme, CommandId::SUBMIT_SM);
    assert_eq!(sent.body.tlvs(), Some(&submit_with_tlvs().tlvs));
    for body in broadcasts() {
        let id = body.command_id();
        let sent = last_of(&sim, End::Esme, id);
        assert_eq!(sent.body, body);
        // ...and answered, with congestion_state (a 5.0 MC).
        let answer = last_of(&sim, End::Mc, id.response_id().unwrap());
        assert_eq!(answer.command_status, CommandStatus::OK, "{id}");
    }
    let answer = last_of(&sim, End::Mc, CommandId::SUBMIT_SM_RESP);
    assert!(answer
        .body
        .tlvs()
        .unwrap()
        .contains(TlvTag::CONGESTION_STATE));
    let got = last_of(&sim, End::Mc, CommandId::DELIVER_SM);
    assert_eq!(got.body.tlvs(), Some(&dlr_tlvs));
    assert_eq!(sim.esme.s.stats().tlvs_dropped, 0);
    assert_eq!(sim.mc.s.stats().tlvs_dropped, 0);
}

#[test]
fn a_refused_send_hands_the_tlvs_back_as_given_and_counts_nothing() {
    let mut sim = Sim::new(SessionConfig::default().with_max_in_flight(1));
    sim.esme.app.answer_requests = false;
    sim.mc.app.answer_requests = false;
    sim.bind_as(BindKind::Transceiver, 0x34);
    let first = submit_with_tlvs();
    sim.esme
        .s
        .send_request(sim.now, Body::SubmitSm(Box::new(first)))
        .unwrap();
    assert_eq!(sim.esme.s.stats().tlvs_dropped, 1);
    let second = submit_with_tlvs();
    match sim
        .esme
        .s
        .send_request(sim.now, Body::SubmitSm(Box::new(second.clone())))
    {
        Err(SendError::WindowFull(Body::SubmitSm(back))) => assert_eq!(*back, second),
        other => panic!("{other:?}"),
    }
    let stats = sim.esme.s.stats();
    assert_eq!((stats.tlvs_dropped, stats.pdus_trimmed), (1, 1));
}

#[test]
fn responses_to_a_peer_request_go_out_trimmed() {
    // A 3.4 ESME that sends broadcast_sm anyway gets its answer (every
    // request is answered), without the 5.0 TLVs.
    let mut sim = Sim::new(SessionConfig::default());
    sim.mc.app.answer_requests = false;
    sim.bind_as(BindKind::Transmitter, 0x34);
    sim.mc.take_events();
    let [broadcast, ..] = broadcasts();
    let raw = Pdu::request(crate::pdu::SequenceNumber::new(77), broadcast);
    let mut bytes = Vec::new();
    raw.encode(&mut bytes).unwrap();
    sim.inject(End::Mc, &bytes);
    sim.settle();
    let seq = sim
        .mc
        .take_events()
        .into_iter()
        .find_map(|e| match e {
            Event::Request(p) => Some(p.sequence_number),
            _ => None,
        })
        .expect("passed on (receivers are lenient)");
    let mut resp = crate::pdu::BroadcastSmResp {
        message_id: "B1".into(),
        ..Default::default()
    };
    resp.tlvs
        .set_u32(TlvTag::BROADCAST_ERROR_STATUS, 0x0000_0045);
    sim.mc
        .s
        .send_response(sim.now, seq, CommandStatus::OK, Body::BroadcastSmResp(resp))
        .unwrap();
    sim.settle();
    let answer = last_of(&sim, End::Mc, CommandId::BROADCAST_SM_RESP);
    assert_eq!(answer.sequence_number.get(), 77);
    assert!(answer.body.tlvs().unwrap().is_empty(), "{answer:?}");
    assert_eq!(sim.mc.s.pending_inbound(), 0);
}

fn any_tag() -> impl Strategy<Value = TlvTag> {
    prop_oneof![
        proptest::sample::select(TlvTag::ALL.iter().map(|i| i.tag).collect::<Vec<_>>()),
        (0x1400u16..=0x3FFF).prop_map(TlvTag),
    ]
}

proptest! {
    /// Stripping keeps exactly the TLVs the version takes, in order, and
    /// says how many went; 5.0 keeps everything, 3.3 nothing.
    #[test]
    fn stripping_keeps_what_the_version_takes(
        tlvs in proptest::collection::vec((any_tag(), proptest::collection::vec(any::<u8>(), 0..4)), 0..12),
        version in prop_oneof![Just(0x00u8), Just(0x33), Just(0x34), Just(0x50), any::<u8>()],
    ) {
        let mut section = Tlvs::new();
        for (tag, value) in &tlvs {
            section.push(*tag, value).unwrap();
        }
        let expected: Vec<_> = tlvs
            .iter()
            .filter(|(tag, _)| fits_version(*tag, version))
            .collect();
        let unfit = count_unfit(&section, version);
        let mut stripped = section.clone();
        let dropped = strip_unfit(&mut stripped, version);
        prop_assert_eq!(dropped, unfit);
        prop_assert_eq!(dropped, tlvs.len() - expected.len());
        let kept: Vec<_> = stripped.iter().map(|t| (t.tag, t.value.to_vec())).collect();
        let expected: Vec<_> = expected.into_iter().map(|(t, v)| (*t, v.clone())).collect();
        prop_assert_eq!(kept, expected);
        prop_assert_eq!(count_unfit(&stripped, version), 0);
        if version >= 0x50 {
            prop_assert_eq!(&stripped, &section);
        }
        if version < 0x34 {
            prop_assert!(stripped.is_empty());
        }
        if (0x34..0x50).contains(&version) {
            let five_oh = stripped.iter().filter_map(|t| t.tag.info()).any(|i| i.since == 0x50);
            prop_assert!(!five_oh);
        }
    }
}

#[test]
fn the_operation_table_knows_each_versions_operations() {
    use crate::session::operation_since;
    for id in [
        CommandId::BROADCAST_SM,
        CommandId::BROADCAST_SM_RESP,
        CommandId::QUERY_BROADCAST_SM,
        CommandId::QUERY_BROADCAST_SM_RESP,
        CommandId::CANCEL_BROADCAST_SM,
        CommandId::CANCEL_BROADCAST_SM_RESP,
    ] {
        assert_eq!(operation_since(id), Some(0x50), "{id}");
    }
    for id in [
        CommandId::DATA_SM,
        CommandId::BIND_TRANSCEIVER,
        CommandId::OUTBIND,
    ] {
        assert_eq!(operation_since(id), Some(0x34), "{id}");
    }
    for id in [
        CommandId::SUBMIT_SM,
        CommandId::DELIVER_SM_RESP,
        CommandId::QUERY_SM,
    ] {
        assert_eq!(operation_since(id), Some(0x33), "{id}");
    }
    assert_eq!(operation_since(CommandId::GENERIC_NACK), None);
    assert_eq!(operation_since(CommandId(0x22)), None);
    assert_eq!(
        operation_since(CommandId(0x8000_0102)),
        None,
        "no alert_notification_resp"
    );
    assert_eq!(
        operation_since(CommandId(0x8000_000B)),
        None,
        "no outbind_resp"
    );
    // Every id near the specified ones: known ids (a request, or a response
    // the specification names) get their request's row, others none.
    for low in 0..0x400u32 {
        for id in [
            CommandId(low),
            CommandId(low | 0x8000_0000),
            CommandId(low | 0x1_0000),
        ] {
            let expected = if id.is_known() && id != CommandId::GENERIC_NACK {
                crate::session::rule_for(CommandId(id.0 & 0x7FFF_FFFF)).map(|r| r.since)
            } else {
                None
            };
            assert_eq!(operation_since(id), expected, "{id}");
        }
    }
}
