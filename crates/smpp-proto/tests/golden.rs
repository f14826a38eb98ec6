//! Golden wire bytes: the reference's worked examples, and one or more PDUs of
//! every operation in `testdata/golden.txt` (also fed to Wireshark's dissector
//! by `cargo xtask interop tshark`, and used as fuzz seeds).
//!
//! `UPDATE_GOLDEN=1 cargo test -p smpp-proto --test golden` rewrites the file.

use bytes::{Bytes, BytesMut};
use smpp_proto::pdu::*;

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

fn decode_one(wire: &[u8]) -> Pdu {
    let mut buf = BytesMut::from(wire);
    match decode(&mut buf, &DecodeConfig::default()).unwrap() {
        Decoded::Pdu(p) => {
            assert!(buf.is_empty(), "frame fully consumed");
            p
        }
        Decoded::Partial { .. } => panic!("partial"),
    }
}

fn seq(n: u32) -> SequenceNumber {
    SequenceNumber::new(n)
}

#[test]
fn reference_worked_examples() {
    let p = decode_one(&hex("00000010 00000015 00000000 00000007"));
    assert_eq!(p, Pdu::enquire_link(seq(7)));

    let p = decode_one(&hex("00000010 80000015 00000000 00000007"));
    assert_eq!(p.command_id(), CommandId::ENQUIRE_LINK_RESP);
    assert_eq!(p.sequence_number, seq(7));

    let wire = hex("00000010 80000000 00000003 00000000");
    let p = decode_one(&wire);
    assert_eq!(
        p,
        Pdu::generic_nack(seq(0), CommandStatus::INVALID_COMMAND_ID)
    );
    assert_eq!(p.to_vec().unwrap(), wire);

    let wire = hex("00000010 80000004 00000058 00000002");
    let p = decode_one(&wire);
    assert_eq!(p.command_status, CommandStatus::THROTTLED);
    assert_eq!(p.body, Body::SubmitSmResp(SubmitSmResp::default()));
    assert_eq!(
        p.to_vec().unwrap(),
        wire,
        "an error response with no body stays header-only"
    );

    let wire = hex("00000015 80000004 00000000 00000002 35463341 00");
    let p = decode_one(&wire);
    let Body::SubmitSmResp(r) = &p.body else {
        panic!()
    };
    assert_eq!(r.message_id, "5F3A");
    assert_eq!(p.to_vec().unwrap(), wire);

    let wire = hex("0000001F 00000009 00000000 00000001 65736D65303100 707700 00 34 00 00 00");
    let p = decode_one(&wire);
    let Body::BindTransceiver(b) = &p.body else {
        panic!()
    };
    assert_eq!(
        (b.system_id.as_str().unwrap(), b.password.as_str().unwrap()),
        ("esme01", "pw")
    );
    assert_eq!(b.interface_version, 0x34);
    assert!(b.system_type.is_empty() && b.address_range.is_empty());
    assert_eq!(p.to_vec().unwrap(), wire);

    let wire = hex("0000003E 00000004 00000000 00000002
         00 01 01 34343737303039303031323300 01 01 34343737303039303034353600
         00 00 00 00 00 01 00 00 00 05 48656C6C6F");
    let p = decode_one(&wire);
    let Body::SubmitSm(s) = &p.body else { panic!() };
    assert_eq!(s.source_addr, "447700900123");
    assert_eq!(s.destination_addr, "447700900456");
    assert_eq!(
        (
            s.source_addr_ton,
            s.source_addr_npi,
            s.dest_addr_ton,
            s.dest_addr_npi
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(s.registered_delivery, 1);
    assert_eq!(&s.short_message[..], b"Hello");
    assert_eq!(p.to_vec().unwrap(), wire);

    let mut t = Tlvs::new();
    t.set_u16(TlvTag::SAR_MSG_REF_NUM, 0x1234);
    assert_eq!(t.as_bytes(), hex("020C 0002 1234"));
}

fn tlvs(list: &[(TlvTag, &[u8])]) -> Tlvs {
    let mut t = Tlvs::new();
    for (tag, v) in list {
        t.push(*tag, v).unwrap();
    }
    t
}

/// A valid value for every TLV the reference lists.
fn sample_value(info: &TlvInfo) -> Vec<u8> {
    match info.tag {
        TlvTag::NETWORK_ERROR_CODE => vec![3, 0x00, 0x01],
        TlvTag::BROADCAST_AREA_IDENTIFIER => b"\x00Area1".to_vec(),
        TlvTag::BROADCAST_CONTENT_TYPE => vec![1, 0x00, 0x10],
        TlvTag::BROADCAST_FREQUENCY_INTERVAL => vec![0x09, 0x00, 0x1F],
        TlvTag::CALLBACK_NUM => b"\x01\x01\x01447700900123".to_vec(),
        TlvTag::CALLBACK_NUM_ATAG => b"\x00Home".to_vec(),
        TlvTag::SOURCE_SUBADDRESS | TlvTag::DEST_SUBADDRESS => b"\xA0\x12\x34".to_vec(),
        TlvTag::SOURCE_NODE_ID | TlvTag::DEST_NODE_ID => b"123456".to_vec(),
        TlvTag::DEST_ADDR_NP_INFORMATION => b"2125551234".to_vec(),
        TlvTag::DEST_ADDR_NP_COUNTRY => b"\x00\x01".to_vec(),
        TlvTag::MS_VALIDITY => vec![0],
        TlvTag::BILLING_IDENTIFICATION => b"\x80bill-7".to_vec(),
        TlvTag::MESSAGE_PAYLOAD => b"payload".to_vec(),
        TlvTag::ITS_SESSION_INFO => vec![1, 3],
        _ => match info.kind {
            TlvKind::Integer => (1..=info.min_len as u8).collect(),
            TlvKind::CString => {
                let mut v = b"2340001".to_vec();
                v.push(0);
                v
            }
            TlvKind::Time => b"260117103000004+\0".to_vec(),
            TlvKind::Flag => vec![],
            _ => vec![0x42; info.min_len.max(1) as usize],
        },
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Dir {
    /// ESME to MC (towards port 2775).
    Em,
    /// MC to ESME.
    Me,
}

fn golden() -> Vec<(&'static str, Dir, Pdu)> {
    use Dir::*;
    let ok = CommandStatus::OK;
    let bind = Bind {
        system_id: "esme01".into(),
        password: "secret".into(),
        system_type: "VMS".into(),
        interface_version: 0x34,
        addr_ton: 1,
        addr_npi: 1,
        address_range: "^4477".into(),
        tlvs: Tlvs::new(),
    };
    let bind_resp = BindResp {
        system_id: "SMSC".into(),
        tlvs: tlvs(&[(TlvTag::SC_INTERFACE_VERSION, &[0x34])]),
    };
    let submit = SubmitSm {
        source_addr_ton: 5,
        source_addr: "Acme".into(),
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: "447700900456".into(),
        esm_class: 0x40,
        registered_delivery: 1,
        data_coding: 8,
        validity_period: "000007000000000R".into(),
        short_message: Bytes::from_static(b"\x05\x00\x03\x2A\x02\x01\x00H\x00i"),
        tlvs: tlvs(&[(TlvTag::USER_MESSAGE_REFERENCE, &[0, 7])]),
        ..Default::default()
    };
    let receipt = DeliverSm {
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: "447700900456".into(),
        destination_addr: "Acme".into(),
        esm_class: 0x04,
        short_message: Bytes::from_static(
            b"id:1234567890 sub:001 dlvrd:001 submit date:2601171030 done date:2601171031 stat:DELIVRD err:000 text:Hi",
        ),
        tlvs: tlvs(&[
            (TlvTag::RECEIPTED_MESSAGE_ID, b"499602D2\0"),
            (TlvTag::MESSAGE_STATE, &[2]),
            (TlvTag::NETWORK_ERROR_CODE, &[3, 0, 0]),
        ]),
        ..Default::default()
    };
    let all_tlvs = {
        let mut t = Tlvs::new();
        for info in TlvTag::ALL {
            t.push(info.tag, &sample_value(info)).unwrap();
        }
        t
    };
    vec![
        (
            "generic_nack",
            Me,
            Pdu::generic_nack(seq(0), CommandStatus::INVALID_COMMAND_ID),
        ),
        (
            "bind_transmitter",
            Em,
            Pdu::request(seq(1), Body::BindTransmitter(Box::new(bind.clone()))),
        ),
        (
            "bind_transmitter_resp",
            Me,
            Pdu::response(seq(1), ok, Body::BindTransmitterResp(bind_resp.clone())),
        ),
        (
            "bind_receiver",
            Em,
            Pdu::request(seq(1), Body::BindReceiver(Box::new(bind.clone()))),
        ),
        (
            "bind_receiver_resp",
            Me,
            Pdu::response(seq(1), ok, Body::BindReceiverResp(bind_resp.clone())),
        ),
        (
            "bind_transceiver",
            Em,
            Pdu::request(seq(1), Body::BindTransceiver(Box::new(bind.clone()))),
        ),
        (
            "bind_transceiver_resp",
            Me,
            Pdu::response(seq(1), ok, Body::BindTransceiverResp(bind_resp)),
        ),
        (
            "bind_transceiver_resp_rejected",
            Me,
            Pdu::error_response(
                CommandId::BIND_TRANSCEIVER,
                seq(1),
                CommandStatus::BIND_FAILED,
            ),
        ),
        (
            "outbind",
            Me,
            Pdu::request(
                seq(1),
                Body::Outbind(Box::new(Outbind {
                    system_id: "SMSC".into(),
                    password: "pw".into(),
                    tlvs: Tlvs::new(),
                })),
            ),
        ),
        ("unbind", Em, Pdu::unbind(seq(9))),
        (
            "unbind_resp",
            Me,
            Pdu::response(seq(9), ok, Body::UnbindResp(Tlvs::new())),
        ),
        ("enquire_link", Em, Pdu::enquire_link(seq(7))),
        (
            "enquire_link_resp",
            Me,
            Pdu::response(seq(7), ok, Body::EnquireLinkResp(Tlvs::new())),
        ),
        (
            "submit_sm",
            Em,
            Pdu::request(seq(2), Body::SubmitSm(Box::new(submit.clone()))),
        ),
        (
            "submit_sm_resp",
            Me,
            Pdu::response(
                seq(2),
                ok,
                Body::SubmitSmResp(SubmitSmResp {
                    message_id: "499602D2".into(),
                    tlvs: Tlvs::new(),
                }),
            ),
        ),
        (
            "submit_sm_resp_throttled",
            Me,
            Pdu::error_response(CommandId::SUBMIT_SM, seq(3), CommandStatus::THROTTLED),
        ),
        (
            "deliver_sm_receipt",
            Me,
            Pdu::request(seq(1), Body::DeliverSm(Box::new(receipt))),
        ),
        (
            "deliver_sm_resp",
            Em,
            Pdu::response(seq(1), ok, Body::DeliverSmResp(SubmitSmResp::default())),
        ),
        (
            "data_sm_all_tlvs",
            Em,
            Pdu::request(
                seq(4),
                Body::DataSm(Box::new(DataSm {
                    service_type: "WAP".into(),
                    source_addr: "12345".into(),
                    dest_addr_ton: 1,
                    dest_addr_npi: 1,
                    destination_addr: "447700900456".into(),
                    data_coding: 4,
                    tlvs: all_tlvs,
                    ..Default::default()
                })),
            ),
        ),
        (
            "data_sm_resp",
            Me,
            Pdu::response(
                seq(4),
                ok,
                Body::DataSmResp(SubmitSmResp {
                    message_id: "m-4".into(),
                    tlvs: tlvs(&[
                        (TlvTag::DELIVERY_FAILURE_REASON, &[3]),
                        (TlvTag::ADDITIONAL_STATUS_INFO_TEXT, b"retry later\0"),
                        (TlvTag::CONGESTION_STATE, &[85]),
                    ]),
                }),
            ),
        ),
        (
            "submit_multi",
            Em,
            Pdu::request(
                seq(5),
                Body::SubmitMulti(Box::new(SubmitMulti {
                    source_addr: "Acme".into(),
                    source_addr_ton: 5,
                    dest_addresses: vec![
                        DestAddress::Sme {
                            ton: 1,
                            npi: 1,
                            addr: "447700900001".into(),
                        },
                        DestAddress::Sme {
                            ton: 1,
                            npi: 1,
                            addr: "447700900002".into(),
                        },
                        DestAddress::DistributionList("staff".into()),
                    ],
                    registered_delivery: 1,
                    short_message: Bytes::from_static(b"Meeting at 10"),
                    ..Default::default()
                })),
            ),
        ),
        (
            "submit_multi_resp",
            Me,
            Pdu::response(
                seq(5),
                ok,
                Body::SubmitMultiResp(Box::new(SubmitMultiResp {
                    message_id: "77".into(),
                    unsuccess_smes: vec![UnsuccessSme {
                        ton: 1,
                        npi: 1,
                        addr: "447700900002".into(),
                        error_status: CommandStatus::INVALID_DESTINATION_ADDRESS,
                    }],
                    tlvs: Tlvs::new(),
                })),
            ),
        ),
        (
            "query_sm",
            Em,
            Pdu::request(
                seq(6),
                Body::QuerySm(Box::new(QuerySm {
                    message_id: "499602D2".into(),
                    source_addr_ton: 5,
                    source_addr: "Acme".into(),
                    ..Default::default()
                })),
            ),
        ),
        (
            "query_sm_resp",
            Me,
            Pdu::response(
                seq(6),
                ok,
                Body::QuerySmResp(Box::new(QuerySmResp {
                    message_id: "499602D2".into(),
                    final_date: "260117103100000+".into(),
                    message_state: 2,
                    error_code: 0,
                    tlvs: Tlvs::new(),
                })),
            ),
        ),
        (
            "cancel_sm",
            Em,
            Pdu::request(
                seq(8),
                Body::CancelSm(Box::new(CancelSm {
                    message_id: "499602D2".into(),
                    source_addr_ton: 5,
                    source_addr: "Acme".into(),
                    dest_addr_ton: 1,
                    dest_addr_npi: 1,
                    destination_addr: "447700900456".into(),
                    ..Default::default()
                })),
            ),
        ),
        (
            "cancel_sm_resp",
            Me,
            Pdu::response(seq(8), ok, Body::CancelSmResp(Tlvs::new())),
        ),
        (
            "replace_sm",
            Em,
            Pdu::request(
                seq(10),
                Body::ReplaceSm(Box::new(ReplaceSm {
                    message_id: "499602D2".into(),
                    source_addr_ton: 5,
                    source_addr: "Acme".into(),
                    schedule_delivery_time: "260117103000004+".into(),
                    registered_delivery: 1,
                    short_message: Bytes::from_static(b"New text"),
                    ..Default::default()
                })),
            ),
        ),
        (
            "replace_sm_resp",
            Me,
            Pdu::response(seq(10), ok, Body::ReplaceSmResp(Tlvs::new())),
        ),
        (
            "alert_notification",
            Me,
            Pdu::request(
                seq(11),
                Body::AlertNotification(Box::new(AlertNotification {
                    source_addr_ton: 1,
                    source_addr_npi: 1,
                    source_addr: "447700900456".into(),
                    esme_addr_ton: 5,
                    esme_addr: "Acme".into(),
                    tlvs: tlvs(&[(TlvTag::MS_AVAILABILITY_STATUS, &[0])]),
                    ..Default::default()
                })),
            ),
        ),
        (
            "broadcast_sm",
            Em,
            Pdu::request(
                seq(12),
                Body::BroadcastSm(Box::new(BroadcastSm {
                    service_type: "CBS".into(),
                    source_addr: "Alerts".into(),
                    source_addr_ton: 5,
                    priority_flag: 1,
                    data_coding: 0,
                    tlvs: tlvs(&[
                        (TlvTag::BROADCAST_AREA_IDENTIFIER, b"\x00Area1"),
                        (TlvTag::BROADCAST_CONTENT_TYPE, &[1, 0x00, 0x01]),
                        (TlvTag::BROADCAST_REP_NUM, &[0, 3]),
                        (TlvTag::BROADCAST_FREQUENCY_INTERVAL, &[0x09, 0x00, 0x1F]),
                        (TlvTag::MESSAGE_PAYLOAD, b"Storm warning"),
                    ]),
                    ..Default::default()
                })),
            ),
        ),
        (
            "broadcast_sm_resp",
            Me,
            Pdu::response(
                seq(12),
                ok,
                Body::BroadcastSmResp(SubmitSmResp {
                    message_id: "b-1".into(),
                    tlvs: Tlvs::new(),
                }),
            ),
        ),
        (
            "query_broadcast_sm",
            Em,
            Pdu::request(
                seq(13),
                Body::QueryBroadcastSm(Box::new(QueryBroadcastSm {
                    message_id: "b-1".into(),
                    source_addr_ton: 5,
                    source_addr: "Alerts".into(),
                    ..Default::default()
                })),
            ),
        ),
        (
            "query_broadcast_sm_resp",
            Me,
            Pdu::response(
                seq(13),
                ok,
                Body::QueryBroadcastSmResp(SubmitSmResp {
                    message_id: "b-1".into(),
                    tlvs: tlvs(&[
                        (TlvTag::MESSAGE_STATE, &[1]),
                        (TlvTag::BROADCAST_AREA_IDENTIFIER, b"\x00Area1"),
                        (TlvTag::BROADCAST_AREA_SUCCESS, &[80]),
                        (TlvTag::BROADCAST_END_TIME, b"260118103000004+\0"),
                    ]),
                }),
            ),
        ),
        (
            "cancel_broadcast_sm",
            Em,
            Pdu::request(
                seq(14),
                Body::CancelBroadcastSm(Box::new(CancelBroadcastSm {
                    service_type: "CBS".into(),
                    message_id: "b-1".into(),
                    source_addr_ton: 5,
                    source_addr: "Alerts".into(),
                    ..Default::default()
                })),
            ),
        ),
        (
            "cancel_broadcast_sm_resp",
            Me,
            Pdu::response(seq(14), ok, Body::CancelBroadcastSmResp(Tlvs::new())),
        ),
        (
            "vendor_command",
            Em,
            Pdu::request(
                seq(15),
                Body::Unknown(RawBody {
                    command_id: CommandId(0x0001_0234),
                    body: Bytes::from_static(b"\x01\x02\x03"),
                }),
            ),
        ),
    ]
}

fn render() -> String {
    let mut out = String::from(
        "# Golden SMPP PDUs: name, direction (em = ESME to MC, me = MC to ESME), hex.\n\
         # Generated by `UPDATE_GOLDEN=1 cargo test -p smpp-proto --test golden`; checked by Wireshark in `cargo xtask interop tshark`.\n",
    );
    for (name, dir, pdu) in golden() {
        let d = if dir == Dir::Em { "em" } else { "me" };
        out.push_str(&format!(
            "{name} {d} {}\n",
            hex::encode(pdu.to_vec().unwrap())
        ));
    }
    out
}

#[test]
fn golden_file_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/golden.txt");
    let want = render();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have =
        std::fs::read_to_string(path).expect("testdata/golden.txt (run with UPDATE_GOLDEN=1)");
    assert_eq!(
        have, want,
        "golden bytes changed; review, then UPDATE_GOLDEN=1"
    );
}

#[test]
fn golden_pdus_decode_to_their_source_and_reencode_exactly() {
    for (name, _, pdu) in golden() {
        let wire = pdu.to_vec().unwrap();
        assert_eq!(wire.len(), pdu.encoded_len().unwrap(), "{name}");
        let back = decode_one(&wire);
        assert_eq!(back, pdu, "{name}");
        assert_eq!(back.to_vec().unwrap(), wire, "{name}");
        assert_eq!(
            decode_frame(Bytes::from(wire), &DecodeConfig::default()).unwrap(),
            pdu,
            "{name}"
        );
    }
}

#[test]
fn every_command_id_and_tlv_tag_is_covered() {
    let g = golden();
    for id in CommandId::ALL {
        assert!(
            g.iter().any(|(_, _, p)| p.command_id() == *id),
            "no golden PDU for {id}"
        );
    }
    let Some((_, _, all)) = g.iter().find(|(n, _, _)| *n == "data_sm_all_tlvs") else {
        panic!()
    };
    let Body::DataSm(d) = &all.body else { panic!() };
    for info in TlvTag::ALL {
        let v = d
            .tlvs
            .get(info.tag)
            .unwrap_or_else(|| panic!("{} missing", info.name));
        assert_eq!(v, &sample_value(info)[..]);
    }
    assert_eq!(d.tlvs.len(), TlvTag::ALL.len());
    // Typed accessors agree with the raw values.
    assert_eq!(
        d.tlvs.network_error_code(),
        Some(NetworkErrorCode {
            network_type: 3,
            error_code: 1
        })
    );
    assert_eq!(
        d.tlvs.broadcast_frequency_interval(),
        Some(BroadcastFrequencyInterval { unit: 9, count: 31 })
    );
    assert_eq!(
        d.tlvs.broadcast_content_type(),
        Some(BroadcastContentType {
            network_type: 1,
            content_type: 0x10
        })
    );
    assert_eq!(
        d.tlvs.its_session_info(),
        Some(ItsSessionInfo {
            session_number: 1,
            sequence_number: 1,
            end_of_session: true
        })
    );
    assert_eq!(d.tlvs.broadcast_end_time(), Some(&b"260117103000004+"[..]));
    assert_eq!(d.tlvs.receipted_message_id(), Some(&b"2340001"[..]));
    assert_eq!(d.tlvs.alert_on_message_delivery(), Some(0));
    assert_eq!(d.tlvs.qos_time_to_live(), Some(0x0102_0304));
    assert_eq!(d.tlvs.message_payload(), Some(&b"payload"[..]));
}

#[test]
fn every_prefix_of_a_valid_stream_is_partial_never_an_error() {
    let mut stream = Vec::new();
    let pdus: Vec<Pdu> = golden().into_iter().map(|(_, _, p)| p).collect();
    for p in &pdus {
        p.encode(&mut stream).unwrap();
    }
    for cut in 0..=stream.len() {
        let mut buf = BytesMut::from(&stream[..cut]);
        let mut n = 0;
        loop {
            match decode(&mut buf, &DecodeConfig::default()) {
                Ok(Decoded::Pdu(p)) => {
                    assert_eq!(p, pdus[n]);
                    n += 1;
                }
                Ok(Decoded::Partial { needed }) => {
                    assert!(needed > 0);
                    break;
                }
                Err(e) => panic!("prefix {cut}: {e}"),
            }
        }
        if cut == stream.len() {
            assert_eq!(n, pdus.len());
        }
    }
}

#[test]
fn message_id_accessor_covers_the_bodies_that_carry_one() {
    let ids: Vec<(&str, Option<String>)> = golden()
        .into_iter()
        .map(|(name, _, p)| (name, p.body.message_id().map(|m| m.to_string())))
        .collect();
    let get = |n: &str| ids.iter().find(|(name, _)| *name == n).unwrap().1.clone();
    assert_eq!(get("submit_sm_resp").as_deref(), Some("499602D2"));
    assert_eq!(get("submit_multi_resp").as_deref(), Some("77"));
    assert_eq!(get("query_sm").as_deref(), Some("499602D2"));
    assert_eq!(get("query_broadcast_sm_resp").as_deref(), Some("b-1"));
    assert_eq!(get("submit_sm"), None);
    assert_eq!(get("enquire_link"), None);
}

#[test]
fn field_visitor_accounts_for_every_body_octet_in_wire_order() {
    for (name, _, pdu) in golden() {
        let wire = pdu.to_vec().unwrap();
        if wire.len() == HEADER_LEN && !pdu.command_status.is_ok() {
            continue; // an error response with an empty body goes header-only
        }
        let mut body = Vec::new();
        pdu.body.for_each_field(|f| match f.value {
            FieldValue::Int(v) if f.name == "error_status_code" => {
                body.extend_from_slice(&v.to_be_bytes())
            }
            FieldValue::Int(v) => body.push(u8::try_from(v).unwrap()),
            FieldValue::Str(s) | FieldValue::Time(s) => {
                body.extend_from_slice(s.as_bytes());
                body.push(0);
            }
            FieldValue::Octets(o) => body.extend_from_slice(o),
            FieldValue::Tlvs(t) => body.extend_from_slice(t.as_bytes()),
            _ => panic!("new field kind"),
        });
        let expect = if wire.len() == HEADER_LEN {
            &[][..]
        } else {
            &wire[HEADER_LEN..]
        };
        assert_eq!(body, expect, "{name}");
    }
}
