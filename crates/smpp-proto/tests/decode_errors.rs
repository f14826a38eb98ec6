//! Hostile and broken input: every problem gets the status the spec names,
//! the stream stays framed where it can, and nothing panics.

use bytes::{Bytes, BytesMut};
use smpp_proto::pdu::*;

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

/// A frame with a correct command_length around `body`.
fn frame(id: u32, status: u32, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(16 + body.len() as u32).to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&status.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn submit_body(source_addr: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8, 1, 1];
    b.extend_from_slice(source_addr);
    b.extend_from_slice(b"\x01\x01447700900456\0");
    b.extend_from_slice(tail);
    b
}

const SUBMIT_TAIL: &[u8] = b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\x05Hello";

fn decode_err(wire: &[u8], config: &DecodeConfig) -> (DecodeError, BytesMut) {
    let mut buf = BytesMut::from(wire);
    match decode(&mut buf, config) {
        Err(e) => (e, buf),
        Ok(d) => panic!("expected an error, got {d:?}"),
    }
}

fn decode_ok(wire: &[u8], config: &DecodeConfig) -> Pdu {
    let mut buf = BytesMut::from(wire);
    match decode(&mut buf, config) {
        Ok(Decoded::Pdu(p)) => p,
        other => panic!("expected a PDU, got {other:?}"),
    }
}

#[test]
fn command_length_below_header_is_fatal_and_answered_with_seq_zero() {
    for len in [0u32, 1, 15] {
        let mut wire = len.to_be_bytes().to_vec();
        wire.extend_from_slice(&hex("00000004 00000000 00000005"));
        let (e, buf) = decode_err(&wire, &DecodeConfig::default());
        assert!(e.is_fatal());
        assert_eq!(e.status(), CommandStatus::INVALID_COMMAND_LENGTH);
        assert_eq!(e.sequence_number(), None);
        assert_eq!(
            e.response(),
            Some(Pdu::generic_nack(
                SequenceNumber::new(0),
                CommandStatus::INVALID_COMMAND_LENGTH
            ))
        );
        assert_eq!(buf.len(), wire.len(), "nothing consumed on a fatal error");
    }
}

#[test]
fn oversize_command_length_is_refused_from_the_header_alone() {
    let wire = hex("7FFFFFFF 00000004");
    let (e, _) = decode_err(&wire, &DecodeConfig::default());
    assert!(matches!(
        e.kind(),
        DecodeErrorKind::LengthTooLarge {
            length: 0x7FFF_FFFF,
            max: 65536
        }
    ));
    assert!(e.is_fatal());
    // The cap is configurable.
    let small = DecodeConfig::default().with_max_pdu_len(100);
    let wire = frame(4, 0, 1, &[0u8; 90]);
    assert!(matches!(
        decode_err(&wire, &small).0.kind(),
        DecodeErrorKind::LengthTooLarge { .. }
    ));
}

#[test]
fn missing_nul_in_source_addr_answers_submit_sm_resp_rinvsrcadr_and_the_stream_goes_on() {
    let mut wire = frame(4, 0, 77, &[0, 1, 1, b'1', b'2', b'3']);
    wire.extend(Pdu::enquire_link(SequenceNumber::new(78)).to_vec().unwrap());
    let mut buf = BytesMut::from(&wire[..]);
    let e = decode(&mut buf, &DecodeConfig::default()).unwrap_err();
    assert!(!e.is_fatal());
    assert_eq!(e.status(), CommandStatus::INVALID_SOURCE_ADDRESS);
    assert!(matches!(
        e.kind(),
        DecodeErrorKind::MissingNul {
            field: "source_addr"
        }
    ));
    assert_eq!(e.offset(), 19);
    assert_eq!(
        e.response(),
        Some(Pdu::error_response(
            CommandId::SUBMIT_SM,
            SequenceNumber::new(77),
            CommandStatus::INVALID_SOURCE_ADDRESS
        ))
    );
    assert_eq!(
        e.response().unwrap().to_vec().unwrap(),
        hex("00000010 80000004 0000000A 0000004D")
    );
    match decode(&mut buf, &DecodeConfig::default()).unwrap() {
        Decoded::Pdu(p) => assert_eq!(p, Pdu::enquire_link(SequenceNumber::new(78))),
        d => panic!("{d:?}"),
    }
}

#[test]
fn field_problems_get_their_own_status() {
    let cases: Vec<(Vec<u8>, CommandStatus)> = vec![
        // 21 characters + NUL: one too many for source_addr.
        (
            frame(
                4,
                0,
                1,
                &submit_body(b"123456789012345678901\0", SUBMIT_TAIL),
            ),
            CommandStatus::INVALID_SOURCE_ADDRESS,
        ),
        // sm_length 200 with 5 octets left.
        (
            frame(
                4,
                0,
                1,
                &submit_body(b"1\0", b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\xC8Hello"),
            ),
            CommandStatus::INVALID_MESSAGE_LENGTH,
        ),
        // schedule_delivery_time of 5 characters.
        (
            frame(
                4,
                0,
                1,
                &submit_body(b"1\0", b"\x00\x00\x0012345\x00\x00\x01\x00\x00\x00\x00"),
            ),
            CommandStatus::INVALID_SCHEDULED_DELIVERY_TIME,
        ),
        // validity_period of 17 characters (too long for the field).
        (
            frame(
                4,
                0,
                1,
                &submit_body(
                    b"1\0",
                    b"\x00\x00\x00\x0012345678901234567\x00\x01\x00\x00\x00\x00",
                ),
            ),
            CommandStatus::INVALID_EXPIRY_TIME,
        ),
        // Two stray octets after the body.
        (
            frame(
                4,
                0,
                1,
                &submit_body(b"1\0", &[SUBMIT_TAIL, b"\x02\x0C"].concat()),
            ),
            CommandStatus::INVALID_TLV_STREAM,
        ),
        // A TLV whose length runs past the end.
        (
            frame(
                4,
                0,
                1,
                &submit_body(b"1\0", &[SUBMIT_TAIL, b"\x02\x0C\x00\x09\x00"].concat()),
            ),
            CommandStatus::INVALID_TLV_STREAM,
        ),
        // sar_msg_ref_num with 3 octets.
        (
            frame(
                4,
                0,
                1,
                &submit_body(
                    b"1\0",
                    &[SUBMIT_TAIL, b"\x02\x0C\x00\x03\x00\x01\x02"].concat(),
                ),
            ),
            CommandStatus::INVALID_TLV_LENGTH,
        ),
        // receipted_message_id without its NUL.
        (
            frame(
                5,
                0,
                1,
                &submit_body(b"1\0", &[SUBMIT_TAIL, b"\x00\x1E\x00\x02AB"].concat()),
            ),
            CommandStatus::INVALID_TLV_VALUE,
        ),
        // Body ends after destination_addr.
        (
            frame(4, 0, 1, &submit_body(b"1\0", b"")),
            CommandStatus::INVALID_COMMAND_LENGTH,
        ),
        // submit_multi with dest_flag 3.
        (
            frame(0x21, 0, 1, b"\x00\x00\x00\x00\x01\x03"),
            CommandStatus::INVALID_DESTINATION_FLAG,
        ),
        // bind with a 9-character password.
        (
            frame(2, 0, 1, b"esme\x00123456789\0\0\x34\x00\x00\0"),
            CommandStatus::INVALID_PASSWORD,
        ),
        // bind whose system_id is not terminated.
        (frame(9, 0, 1, b"esme"), CommandStatus::INVALID_SYSTEM_ID),
        // enquire_link with one stray octet.
        (
            frame(0x15, 0, 1, b"\x00"),
            CommandStatus::INVALID_TLV_STREAM,
        ),
    ];
    for (i, (wire, status)) in cases.iter().enumerate() {
        let (e, buf) = decode_err(wire, &DecodeConfig::default());
        assert_eq!(e.status(), *status, "case {i}: {e}");
        assert!(!e.is_fatal(), "case {i}");
        assert!(buf.is_empty(), "case {i}: the bad frame is consumed");
        let resp = e.response().unwrap();
        assert_eq!(resp.command_status, *status);
        assert_eq!(resp.sequence_number, SequenceNumber::new(1));
        assert_eq!(
            resp.command_id(),
            CommandId(u32::from_be_bytes(wire[4..8].try_into().unwrap()) | 0x8000_0000)
        );
        assert_eq!(
            resp.to_vec().unwrap().len(),
            16,
            "error responses are header-only"
        );
    }
}

#[test]
fn requests_without_a_response_pdu_are_nacked_and_bad_responses_never_answered() {
    let (e, _) = decode_err(
        &frame(0x102, 0, 3, b"\x01\x01123"),
        &DecodeConfig::default(),
    );
    assert_eq!(e.response().unwrap().command_id(), CommandId::GENERIC_NACK);
    assert_eq!(
        e.response().unwrap().sequence_number,
        SequenceNumber::new(3)
    );
    // A successful submit_multi_resp with a broken body is an error, but is never answered.
    let (e, _) = decode_err(
        &frame(0x8000_0021, 0, 3, b"id\0\x05"),
        &DecodeConfig::default(),
    );
    assert_eq!(e.response(), None);
}

#[test]
fn unknown_command_ids_are_kept_whole() {
    for id in [0x22u32, 0x0100_0001, 0x8000_000B, 0x0001_0200] {
        let wire = frame(id, 0, 5, b"\x00\xFFabc");
        let p = decode_ok(&wire, &DecodeConfig::default());
        assert_eq!(p.command_id(), CommandId(id));
        assert!(matches!(p.body, Body::Unknown(_)));
        assert_eq!(p.to_vec().unwrap(), wire);
    }
}

#[test]
fn responses_are_read_tolerantly() {
    // Error response with an empty message_id body (length 17).
    let p = decode_ok(
        &frame(0x8000_0004, 0x58, 2, b"\0"),
        &DecodeConfig::default(),
    );
    assert_eq!(p.command_status, CommandStatus::THROTTLED);
    // Error response with a garbage body.
    let p = decode_ok(
        &frame(0x8000_0004, 0x45, 2, b"\xFF\xFF"),
        &DecodeConfig::default(),
    );
    assert_eq!(p.body, Body::SubmitSmResp(SubmitSmResp::default()));
    // bind_transceiver_resp with status 0 and no system_id.
    let p = decode_ok(&frame(0x8000_0009, 0, 1, b""), &DecodeConfig::default());
    assert_eq!(p.body, Body::BindTransceiverResp(BindResp::default()));
    // Sequence number 0 and the high bit are accepted.
    for seq in [0, 0x8000_0001, u32::MAX] {
        let p = decode_ok(&frame(0x15, 0, seq, b""), &DecodeConfig::default());
        assert_eq!(p.sequence_number.get(), seq);
    }
}

#[test]
fn lenient_switches() {
    let lenient = DecodeConfig::lenient();
    // Over-long password.
    let wire = frame(2, 0, 1, b"esme\x00123456789\0\0\x34\x00\x00\0");
    let p = decode_ok(&wire, &lenient);
    let Body::BindTransmitter(b) = p.body else {
        panic!()
    };
    assert_eq!(b.password, "123456789");
    // The last field without its NUL.
    let p = decode_ok(&frame(0x8000_0004, 0, 1, b"abc"), &lenient);
    let Body::SubmitSmResp(r) = p.body else {
        panic!()
    };
    assert_eq!(r.message_id, "abc");
    // A 12-character time.
    let p = decode_ok(
        &frame(
            4,
            0,
            1,
            &submit_body(
                b"1\0",
                b"\x00\x00\x00260117103000\0\x00\x01\x00\x00\x00\x00",
            ),
        ),
        &lenient,
    );
    let Body::SubmitSm(s) = p.body else { panic!() };
    assert_eq!(s.schedule_delivery_time, "260117103000");
    // Stray octets after the TLVs are dropped; a wrong-size known TLV is carried.
    let p = decode_ok(
        &frame(
            4,
            0,
            1,
            &submit_body(
                b"1\0",
                &[SUBMIT_TAIL, b"\x02\x0C\x00\x03\x00\x01\x02\xAA"].concat(),
            ),
        ),
        &lenient,
    );
    let Body::SubmitSm(s) = p.body else { panic!() };
    assert_eq!(s.tlvs.get(TlvTag::SAR_MSG_REF_NUM), Some(&[0u8, 1, 2][..]));
    assert_eq!(
        s.tlvs.sar_msg_ref_num(),
        None,
        "a 3-octet value does not fit a u16"
    );
}

#[test]
fn decoded_fields_share_the_frame() {
    // Long C-strings and the user data are slices of the frame; short C-strings
    // (22 octets or less) are copied inline, which is cheaper than sharing.
    let long_id = b"0123456789abcdef0123456789abcdef0123456789\0";
    let wire = Bytes::from(frame(0x8000_0004, 0, 1, long_id));
    let p = decode_frame(wire.clone(), &DecodeConfig::default()).unwrap();
    let Body::SubmitSmResp(r) = p.body else {
        panic!()
    };
    let range = wire.as_ptr() as usize..wire.as_ptr() as usize + wire.len();
    assert!(
        range.contains(&(r.message_id.as_bytes().as_ptr() as usize)),
        "no copy of a long message_id"
    );

    let wire = Bytes::from(frame(4, 0, 1, &submit_body(b"12345\0", SUBMIT_TAIL)));
    let p = decode_frame(wire.clone(), &DecodeConfig::default()).unwrap();
    let Body::SubmitSm(s) = p.body else { panic!() };
    let range = wire.as_ptr() as usize..wire.as_ptr() as usize + wire.len();
    assert!(
        range.contains(&(s.short_message.as_ptr() as usize)),
        "no copy of short_message"
    );
    assert_eq!(s.source_addr, "12345");
}

#[test]
fn encode_refuses_what_does_not_fit_and_writes_nothing() {
    let mut s = SubmitSm {
        source_addr: "123456789012345678901".into(),
        ..Default::default()
    };
    let pdu =
        |s: &SubmitSm| Pdu::request(SequenceNumber::new(1), Body::SubmitSm(Box::new(s.clone())));
    assert_eq!(
        pdu(&s).encoded_len(),
        Err(EncodeError::StringTooLong {
            field: "source_addr",
            len: 22,
            max: 21
        })
    );
    s.source_addr = COctetString::from(b"12\x003".to_vec());
    assert_eq!(
        pdu(&s).encoded_len(),
        Err(EncodeError::NulInString {
            field: "source_addr"
        })
    );
    s.source_addr = "1".into();
    s.validity_period = "2601".into();
    assert!(matches!(
        pdu(&s).encoded_len(),
        Err(EncodeError::InvalidTime {
            field: "validity_period",
            len: 4
        })
    ));
    s.validity_period = COctetString::new();
    s.short_message = Bytes::from(vec![b'x'; 256]);
    assert_eq!(
        pdu(&s).encoded_len(),
        Err(EncodeError::ShortMessageTooLong { len: 256 })
    );
    s.short_message = Bytes::from_static(b"hi");
    let mut small = [0u8; 20];
    let mut out = &mut small[..];
    assert!(matches!(
        pdu(&s).encode(&mut out),
        Err(EncodeError::BufferTooSmall { available: 20, .. })
    ));
    assert_eq!(small, [0u8; 20], "nothing written");
    let mut v = Vec::new();
    assert_eq!(pdu(&s).encode(&mut v).unwrap(), v.len());
    let multi = SubmitMulti {
        dest_addresses: vec![DestAddress::DistributionList("x".into()); 256],
        ..Default::default()
    };
    let p = Pdu::request(SequenceNumber::new(1), Body::SubmitMulti(Box::new(multi)));
    assert!(matches!(
        p.encoded_len(),
        Err(EncodeError::TooManyEntries { count: 256, .. })
    ));
}

#[test]
fn sequence_numbers_wrap_to_one() {
    assert_eq!(SequenceNumber::MAX.next(), SequenceNumber::FIRST);
    assert_eq!(SequenceNumber::new(0).next(), SequenceNumber::new(1));
    assert_eq!(SequenceNumber::new(u32::MAX).next(), SequenceNumber::FIRST);
    assert!(!SequenceNumber::new(0).is_valid());
}

#[test]
fn a_borrowed_frame_decodes_as_an_owned_one_and_header_only_frames_keep_no_reference() {
    let config = DecodeConfig::default();
    let frames = [
        frame(0x0000_0015, 0, 7, &[]),      // enquire_link
        frame(0x8000_0004, 0x45, 8, &[]),   // submit_sm_resp, error, no body
        frame(0x8000_0004, 0, 9, b"id1\0"), // submit_sm_resp with a body
        frame(
            0x0000_0004,
            0,
            10,
            &submit_body(b"447700900123\0", SUBMIT_TAIL),
        ),
        frame(0x0000_0004, 0, 11, &[]), // submit_sm without its fields
        frame(0x0001_0250, 0, 12, &[]), // vendor id, header only
    ];
    for wire in frames {
        let wire = Bytes::from(wire);
        let owned = decode_frame(wire.clone(), &config);
        let borrowed = decode_frame_ref(&wire, &config);
        assert_eq!(format!("{owned:?}"), format!("{borrowed:?}"), "{wire:02x?}");
        // While both results live: a header-only PDU holds no reference to
        // its frame (one with a body may hold slices of it).
        if wire.len() == HEADER_LEN {
            assert!(wire.is_unique(), "{wire:02x?}");
        }
        drop((owned, borrowed));
    }
    // A frame shorter or longer than its command_length is refused by both.
    let mut long = frame(0x0000_0015, 0, 13, &[]);
    long.push(0);
    let long = Bytes::from(long);
    let e = decode_frame_ref(&long, &config).unwrap_err();
    assert_eq!(e.status(), CommandStatus::INVALID_COMMAND_LENGTH);
    assert!(decode_frame(long, &config).is_err());
    let short = Bytes::from_static(&[0, 0, 0, 16, 0, 0, 0, 0x15]);
    assert!(decode_frame_ref(&short, &config).unwrap_err().is_fatal());
}
