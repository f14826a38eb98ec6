//! Reassembly: ordering, duplicates, bounds, expiry.

// Tests need some origin for the virtual clock; the crate itself never reads it.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use smpp_proto::message::reassembly::{IncomingPart, PartError};
use smpp_proto::message::udh::{ConcatInfo, ConcatKind};
use smpp_proto::message::{
    DataCoding, DecodeOptions, PartOutcome, Reassembler, ReassemblyConfig, ReassemblyEvent,
};

fn part(src: &str, reference: u16, total: u8, seq: u8, payload: &str) -> IncomingPart {
    IncomingPart {
        source: src.into(),
        destination: "100".into(),
        data_coding: DataCoding(0),
        concat: Some(ConcatInfo {
            reference,
            total,
            seq,
            kind: ConcatKind::Udh8,
        }),
        udh: None,
        payload: Bytes::copy_from_slice(payload.as_bytes()),
    }
}

fn text_of(o: PartOutcome) -> String {
    match o {
        PartOutcome::Complete(m) => m.decode_text(&DecodeOptions::default()).unwrap(),
        other => panic!("expected completion, got {other:?}"),
    }
}

#[test]
fn out_of_order_with_duplicates() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let t = Instant::now();
    assert_eq!(
        r.handle_part(t, part("a", 7, 3, 3, "ghi")).unwrap(),
        PartOutcome::Pending
    );
    assert_eq!(
        r.handle_part(t, part("a", 7, 3, 1, "abc")).unwrap(),
        PartOutcome::Pending
    );
    assert_eq!(
        r.handle_part(t, part("a", 7, 3, 1, "XXX")).unwrap(),
        PartOutcome::Duplicate
    );
    assert_eq!(r.pending_count(), 1);
    assert_eq!(
        text_of(r.handle_part(t, part("a", 7, 3, 2, "def")).unwrap()),
        "abcdefghi"
    );
    assert_eq!(r.pending_count(), 0);
    assert_eq!(r.buffered_bytes(), 0);
    // A late duplicate of a completed message does not start a new one.
    assert_eq!(
        r.handle_part(t, part("a", 7, 3, 2, "def")).unwrap(),
        PartOutcome::Duplicate
    );
    assert_eq!(r.pending_count(), 0);
    // After the duplicate window the same key is a new message.
    let later = t + Duration::from_secs(61);
    assert_eq!(
        r.handle_part(later, part("a", 7, 3, 2, "def")).unwrap(),
        PartOutcome::Pending
    );
}

#[test]
fn reused_reference_within_the_duplicate_window_is_a_new_message() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let t = Instant::now();
    assert_eq!(
        r.handle_part(t, part("a", 9, 2, 1, "one ")).unwrap(),
        PartOutcome::Pending
    );
    assert_eq!(
        text_of(r.handle_part(t, part("a", 9, 2, 2, "two")).unwrap()),
        "one two"
    );
    // A second message from the same originator reuses reference 9 a second later:
    // its parts differ, so it is reassembled, not dropped as a duplicate.
    let t2 = t + Duration::from_secs(1);
    assert_eq!(
        r.handle_part(t2, part("a", 9, 2, 2, "four")).unwrap(),
        PartOutcome::Pending
    );
    assert_eq!(
        text_of(r.handle_part(t2, part("a", 9, 2, 1, "three ")).unwrap()),
        "three four"
    );
    // And a retransmitted part of that second message is still a duplicate.
    assert_eq!(
        r.handle_part(t2, part("a", 9, 2, 1, "three ")).unwrap(),
        PartOutcome::Duplicate
    );
}

#[test]
fn keys_separate_sources_and_totals() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let t = Instant::now();
    assert_eq!(
        r.handle_part(t, part("a", 1, 2, 1, "a1")).unwrap(),
        PartOutcome::Pending
    );
    assert_eq!(
        r.handle_part(t, part("b", 1, 2, 1, "b1")).unwrap(),
        PartOutcome::Pending
    );
    assert_eq!(
        r.handle_part(t, part("a", 1, 3, 1, "c1")).unwrap(),
        PartOutcome::Pending
    );
    assert_eq!(r.pending_count(), 3);
    assert_eq!(
        text_of(r.handle_part(t, part("b", 1, 2, 2, "b2")).unwrap()),
        "b1b2"
    );
}

#[test]
fn single_part_and_invalid_parts() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let t = Instant::now();
    let mut single = part("a", 0, 1, 1, "solo");
    assert_eq!(text_of(r.handle_part(t, single.clone()).unwrap()), "solo");
    single.concat = None;
    assert_eq!(text_of(r.handle_part(t, single).unwrap()), "solo");
    assert_eq!(
        r.handle_part(t, part("a", 1, 0, 0, "x")),
        Err(PartError::InvalidConcat { total: 0, seq: 0 })
    );
    assert_eq!(
        r.handle_part(t, part("a", 1, 2, 3, "x")),
        Err(PartError::InvalidConcat { total: 2, seq: 3 })
    );
    assert_eq!(
        r.handle_part(t, part("a", 1, 2, 0, "x")),
        Err(PartError::InvalidConcat { total: 2, seq: 0 })
    );
    let small = ReassemblyConfig {
        max_parts: 4,
        max_part_len: 3,
        ..ReassemblyConfig::default()
    };
    let mut r = Reassembler::new(small);
    assert_eq!(
        r.handle_part(t, part("a", 1, 5, 1, "x")),
        Err(PartError::TooManyParts(5))
    );
    assert_eq!(
        r.handle_part(t, part("a", 1, 2, 1, "long")),
        Err(PartError::PartTooLong(4))
    );
}

#[test]
fn expiry_reports_incomplete_messages() {
    let config = ReassemblyConfig {
        timeout: Duration::from_secs(10),
        ..ReassemblyConfig::default()
    };
    let mut r = Reassembler::new(config);
    let t0 = Instant::now();
    assert!(r.poll_timeout().is_none());
    let _ = r.handle_part(t0, part("a", 1, 2, 1, "one")).unwrap();
    let _ = r
        .handle_part(t0 + Duration::from_secs(5), part("b", 1, 2, 2, "two"))
        .unwrap();
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    r.handle_timeout(t0 + Duration::from_secs(9));
    assert!(r.poll_event().is_none());
    r.handle_timeout(t0 + Duration::from_secs(10));
    match r.poll_event() {
        Some(ReassemblyEvent::Expired(m)) => {
            assert_eq!(m.key.source, "a");
            assert_eq!(m.parts, vec![(1, Bytes::from_static(b"one"))]);
        }
        other => panic!("{other:?}"),
    }
    assert!(r.poll_event().is_none());
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(15)));
    // A late part of an expired message starts over (and the sweep happens on input too).
    let late = t0 + Duration::from_secs(20);
    assert_eq!(
        r.handle_part(late, part("a", 1, 2, 2, "x")).unwrap(),
        PartOutcome::Pending
    );
    assert!(matches!(r.poll_event(), Some(ReassemblyEvent::Expired(m)) if m.key.source == "b"));
}

#[test]
fn bounded_pending_messages_evict_oldest() {
    let config = ReassemblyConfig {
        max_pending_messages: 3,
        ..ReassemblyConfig::default()
    };
    let mut r = Reassembler::new(config);
    let t = Instant::now();
    for i in 0..5u16 {
        let at = t + Duration::from_millis(u64::from(i));
        let _ = r.handle_part(at, part("a", i, 2, 1, "p")).unwrap();
        assert!(r.pending_count() <= 3);
    }
    let evicted: Vec<u16> = std::iter::from_fn(|| r.poll_event())
        .map(|e| match e {
            ReassemblyEvent::Evicted(m) => m.key.reference,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(evicted, vec![0, 1]);
}

#[test]
fn bounded_bytes() {
    let config = ReassemblyConfig {
        max_buffered_bytes: 1000,
        max_part_len: 200,
        ..ReassemblyConfig::default()
    };
    let mut r = Reassembler::new(config);
    let t = Instant::now();
    let big = "x".repeat(200);
    for i in 0..20u16 {
        let _ = r.handle_part(t, part("a", i, 3, 1, &big)).unwrap();
        assert!(r.buffered_bytes() <= 1000);
    }
    assert!(r.pending_count() < 20);
    // Events are bounded too when nobody drains them.
    assert!(r.dropped_events() > 0 || std::iter::from_fn(|| r.poll_event()).count() <= 20);
}

#[test]
fn from_user_data_parses_udh_and_sar() {
    let sm = Bytes::from_static(&[0x05, 0x00, 0x03, 0x42, 0x02, 0x01, b'h', b'i']);
    let p = IncomingPart::from_user_data("1", "2", DataCoding(0), 0x40, sm, None).unwrap();
    let c = p.concat.unwrap();
    assert_eq!((c.reference, c.total, c.seq), (0x42, 2, 1));
    assert_eq!(&p.payload[..], b"hi");
    let p = IncomingPart::from_user_data(
        "1",
        "2",
        DataCoding(0),
        0x00,
        Bytes::from_static(b"yo"),
        Some((9, 2, 2)),
    )
    .unwrap();
    assert_eq!(p.concat.unwrap().kind, ConcatKind::Sar);
    assert!(IncomingPart::from_user_data(
        "1",
        "2",
        DataCoding(0),
        0x40,
        Bytes::from_static(&[7, 0]),
        None
    )
    .is_err());
}

#[test]
fn national_udh_of_first_part_is_kept() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let t = Instant::now();
    // 8-bit concat + Turkish locking shift; 0x07 is 'ı' in Turkish.
    let p1 = Bytes::from_static(&[0x08, 0x00, 0x03, 0x01, 0x02, 0x01, 0x25, 0x01, 0x01, 0x07]);
    let p2 = Bytes::from_static(&[0x08, 0x00, 0x03, 0x01, 0x02, 0x02, 0x25, 0x01, 0x01, 0x60]);
    let a = IncomingPart::from_user_data("1", "2", DataCoding(0), 0x40, p2, None).unwrap();
    let b = IncomingPart::from_user_data("1", "2", DataCoding(0), 0x40, p1, None).unwrap();
    assert_eq!(r.handle_part(t, a).unwrap(), PartOutcome::Pending);
    assert_eq!(text_of(r.handle_part(t, b).unwrap()), "ıç");
}

proptest! {
    #[test]
    fn fuzz_body_reassembly(data in prop::collection::vec(any::<u8>(), 0..2000)) {
        smpp_proto::message::fuzzing::reassembly(Instant::now(), &data);
    }

    #[test]
    fn fuzz_body_gsm7(data in prop::collection::vec(any::<u8>(), 0..400)) {
        smpp_proto::message::fuzzing::gsm7_decode(&data);
    }

    #[test]
    fn fuzz_body_receipt(data in prop::collection::vec(any::<u8>(), 0..400)) {
        smpp_proto::message::fuzzing::receipt_parse(&data);
    }

    #[test]
    fn fuzz_body_receipt_texty(s in "(id|sub|dlvrd|submit date|done date|stat|err|text|Text|x)[: ]{0,2}[0-9a-zA-Z]{0,12}( [a-z]{1,5}:[0-9A-Z]{0,14}){0,10}") {
        smpp_proto::message::fuzzing::receipt_parse(s.as_bytes());
    }
}
