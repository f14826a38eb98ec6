//! Property tests: every operation round-trips, and arbitrary bytes never panic.

use arbitrary::Unstructured;
use bytes::BytesMut;
use proptest::prelude::*;
use smpp_proto::pdu::*;

fn roundtrip(pdu: &Pdu) -> Result<(), TestCaseError> {
    let wire = match pdu.to_vec() {
        Ok(w) => w,
        Err(EncodeError::TooManyEntries { .. }) => return Ok(()),
        Err(e) => return Err(TestCaseError::fail(format!("{e} for {pdu:?}"))),
    };
    prop_assert_eq!(wire.len(), pdu.encoded_len().unwrap());
    let mut buf = BytesMut::from(&wire[..]);
    let back = match decode(&mut buf, &DecodeConfig::default()) {
        Ok(Decoded::Pdu(p)) => p,
        other => return Err(TestCaseError::fail(format!("{other:?} for {pdu:?}"))),
    };
    prop_assert!(buf.is_empty());
    prop_assert_eq!(&back, pdu);
    prop_assert_eq!(back.to_vec().unwrap(), wire);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// decode(encode(p)) == p and encode(decode(b)) == b, for every command id.
    #[test]
    fn every_operation_round_trips(data in proptest::collection::vec(any::<u8>(), 0..4096), status: u32, seq: u32) {
        let mut u = Unstructured::new(&data);
        for id in CommandId::ALL {
            let body = Body::arbitrary_for(*id, &mut u).unwrap().unwrap();
            let command_status = if id.is_response() { CommandStatus(status) } else { CommandStatus::OK };
            roundtrip(&Pdu { command_status, sequence_number: SequenceNumber::new(seq), body })?;
        }
    }

    /// Every standard TLV with a value of each allowed length round-trips inside a submit_sm.
    #[test]
    fn every_tlv_round_trips(values in proptest::collection::vec(any::<u8>(), 1024)) {
        let mut tlvs = Tlvs::new();
        for (i, info) in TlvTag::ALL.iter().enumerate() {
            let len = usize::from(info.min_len.max(1)).min(usize::from(info.max_len));
            let mut v: Vec<u8> = values.iter().cycle().skip(i).take(len).copied().collect();
            if matches!(info.kind, TlvKind::CString | TlvKind::Time) {
                v.iter_mut().for_each(|b| *b = b'0' + *b % 10);
                *v.last_mut().unwrap() = 0;
            }
            if info.kind == TlvKind::Flag { v.clear(); }
            tlvs.push(info.tag, &v).unwrap();
        }
        let pdu = Pdu::request(SequenceNumber::new(1), Body::SubmitSm(Box::new(SubmitSm { tlvs, ..Default::default() })));
        roundtrip(&pdu)?;
    }

    /// Arbitrary bytes behind a plausible header never panic, in either mode,
    /// and a decode either consumes the frame or reports a fatal error.
    #[test]
    fn arbitrary_frames_never_panic(id in prop_oneof![
            proptest::sample::select(CommandId::ALL.to_vec()).prop_map(|c| c.0),
            any::<u32>()
        ],
        status: u32, seq: u32,
        body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut wire = Vec::new();
        wire.extend_from_slice(&(16 + body.len() as u32).to_be_bytes());
        wire.extend_from_slice(&id.to_be_bytes());
        wire.extend_from_slice(&status.to_be_bytes());
        wire.extend_from_slice(&seq.to_be_bytes());
        wire.extend_from_slice(&body);
        for config in [DecodeConfig::strict(), DecodeConfig::lenient()] {
            let mut buf = BytesMut::from(&wire[..]);
            match decode(&mut buf, &config) {
                Ok(Decoded::Pdu(p)) => {
                    prop_assert!(buf.is_empty());
                    // Whatever decodes, encodes.
                    let _ = p.encoded_len();
                }
                Ok(Decoded::Partial { .. }) => prop_assert!(false, "a whole frame is never partial"),
                Err(e) => {
                    prop_assert!(!e.is_fatal());
                    prop_assert!(buf.is_empty());
                    if let Some(r) = e.response() {
                        prop_assert!(r.to_vec().is_ok());
                    }
                }
            }
        }
    }

    /// Any byte stream is consumed or refused in bounded steps.
    #[test]
    fn arbitrary_streams_terminate(stream in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut buf = BytesMut::from(&stream[..]);
        let config = DecodeConfig::default().with_max_pdu_len(512);
        for _ in 0..=stream.len() {
            match decode(&mut buf, &config) {
                Ok(Decoded::Pdu(_)) => {}
                Ok(Decoded::Partial { needed }) => { prop_assert!(needed > 0); break; }
                Err(e) if e.is_fatal() => break,
                Err(_) => {}
            }
        }
    }
}

proptest! {
    /// The fuzz targets' bodies hold on random input (the fuzzer goes much further).
    #[test]
    fn fuzz_target_bodies_hold(stream in proptest::collection::vec(any::<u8>(), 0..1024), data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        smpp_proto::fuzzing::decode_stream(&stream);
        if let Ok(pdu) = Unstructured::new(&data).arbitrary::<Pdu>() {
            smpp_proto::fuzzing::roundtrip(&pdu);
        }
    }
}

#[test]
fn fuzz_target_bodies_hold_on_golden_streams() {
    let golden =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/golden.txt"))
            .unwrap();
    let mut all = Vec::new();
    for line in golden.lines().filter(|l| !l.starts_with('#')) {
        let wire = hex::decode(line.split(' ').nth(2).unwrap()).unwrap();
        smpp_proto::fuzzing::decode_stream(&wire);
        for cut in 0..wire.len() {
            smpp_proto::fuzzing::decode_stream(&wire[..cut]);
        }
        all.extend(wire);
    }
    smpp_proto::fuzzing::decode_stream(&all);
}
