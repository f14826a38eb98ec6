//! The codec race: smpp-proto against the two other serious Rust SMPP codecs,
//! `rusmpp` 0.4.0 and `smpp34` 1.5.1, on the same wire bytes, in one run.
//!
//! `cargo bench -p smpp-bench --bench codec_race`
//!
//! Every contender decodes the same frame and encodes the same PDU. Each one
//! is driven the way its API is meant to be used: ours decodes a `Bytes`
//! frame the caller keeps (`decode_frame_ref`: a reference-count increment
//! per call for PDUs with a body, none for header-only ones) and encodes into
//! a reused caller buffer; rusmpp decodes from a `BytesMut` (a fresh copy per
//! iteration, made outside the timing) and encodes into a reused `BytesMut`;
//! smpp34 decodes from a slice and encodes by value (the clone it needs is made
//! outside the timing). Dropping the decoded value is inside the timing for all.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::hint::black_box;

use smpp_proto::pdu::{
    self, Body, DecodeConfig, Pdu, SequenceNumber, SubmitSm, SubmitSmResp, TlvTag, Tlvs,
};

fn submit_sm() -> Pdu {
    let mut tlvs = Tlvs::new();
    tlvs.set_u16(TlvTag::USER_MESSAGE_REFERENCE, 42);
    tlvs.set_u16(TlvTag::SOURCE_PORT, 9200);
    let text: Vec<u8> = (0..160).map(|i| b'a' + (i % 26) as u8).collect();
    Pdu::request(
        SequenceNumber::new(7),
        Body::SubmitSm(Box::new(SubmitSm {
            source_addr_ton: 1,
            source_addr_npi: 1,
            source_addr: "447700900123".into(),
            dest_addr_ton: 1,
            dest_addr_npi: 1,
            destination_addr: "447700900456".into(),
            registered_delivery: 1,
            short_message: Bytes::from(text),
            tlvs,
            ..Default::default()
        })),
    )
}

fn deliver_sm_receipt() -> Pdu {
    let mut tlvs = Tlvs::new();
    tlvs.set_text(TlvTag::RECEIPTED_MESSAGE_ID, b"499602D2")
        .unwrap();
    tlvs.set_u8(TlvTag::MESSAGE_STATE, 2);
    Pdu::request(
        SequenceNumber::new(9),
        Body::DeliverSm(Box::new(SubmitSm {
            source_addr_ton: 1,
            source_addr_npi: 1,
            source_addr: "447700900456".into(),
            dest_addr_ton: 1,
            dest_addr_npi: 1,
            destination_addr: "447700900123".into(),
            esm_class: 0x04,
            short_message: Bytes::from_static(
                b"id:1234567890 sub:001 dlvrd:001 submit date:2601171030 done date:2601171031 stat:DELIVRD err:000 text:Hello",
            ),
            tlvs,
            ..Default::default()
        })),
    )
}

fn submit_sm_resp() -> Pdu {
    Pdu::response(
        SequenceNumber::new(7),
        pdu::CommandStatus::OK,
        Body::SubmitSmResp(SubmitSmResp {
            message_id: "499602D2".into(),
            tlvs: Tlvs::new(),
        }),
    )
}

fn cases() -> Vec<(&'static str, Pdu)> {
    vec![
        ("submit_sm", submit_sm()),
        ("deliver_sm_receipt", deliver_sm_receipt()),
        ("submit_sm_resp", submit_sm_resp()),
        ("enquire_link", Pdu::enquire_link(SequenceNumber::new(3))),
    ]
}

mod smpp34_side {
    use smpp34::{deliver_sm, enquire_link, submit_sm, submit_sm_resp, CommandHeader};

    /// One decoded PDU of the kinds in the race.
    #[derive(Clone)]
    pub(crate) enum Decoded {
        SubmitSm(Box<submit_sm>),
        DeliverSm(Box<deliver_sm>),
        SubmitSmResp(submit_sm_resp),
        EnquireLink(enquire_link),
    }

    pub(crate) fn decode(wire: &[u8]) -> Decoded {
        let h = CommandHeader::decode(wire).expect("header");
        match h.command_id {
            0x04 => Decoded::SubmitSm(Box::new(submit_sm::decode(h, wire).expect("submit_sm"))),
            0x05 => Decoded::DeliverSm(Box::new(deliver_sm::decode(h, wire).expect("deliver_sm"))),
            0x8000_0004 => {
                Decoded::SubmitSmResp(submit_sm_resp::decode(h, wire).expect("submit_sm_resp"))
            }
            0x15 => Decoded::EnquireLink(enquire_link::decode(h, wire).expect("enquire_link")),
            other => panic!("not in the race: {other:#x}"),
        }
    }

    pub(crate) fn encode(d: Decoded) -> Vec<u8> {
        match d {
            Decoded::SubmitSm(p) => p.encode(),
            Decoded::DeliverSm(p) => p.encode(),
            Decoded::SubmitSmResp(p) => p.encode(),
            Decoded::EnquireLink(p) => p.encode(),
        }
    }
}

mod rusmpp_side {
    use bytes::{Buf, BufMut, BytesMut};
    use rusmpp::decode::DecodeWithLength;
    use rusmpp::encode::{owned::Encode, Length};
    use rusmpp::Command;

    /// rusmpp decodes the command after its 4-octet length.
    pub(crate) fn decode(mut src: BytesMut) -> Command {
        let len = src.get_u32() as usize - 4;
        Command::decode(&mut src, len).expect("rusmpp decode").0
    }

    pub(crate) fn encode(c: &Command, dst: &mut BytesMut) {
        dst.clear();
        dst.put_u32(c.length() as u32 + 4);
        c.encode(dst);
    }
}

/// Frames per iteration of the `smpp-proto-stream` decode benchmark.
const STREAM_FRAMES: usize = 64;

fn race(c: &mut Criterion) {
    let config = DecodeConfig::default();
    for (name, pdu) in cases() {
        let wire = Bytes::from(pdu.to_vec().unwrap());

        // Every contender must understand the same bytes the same way.
        let theirs34 = smpp34_side::encode(smpp34_side::decode(&wire));
        assert_eq!(theirs34, wire, "smpp34 re-encodes {name} differently");
        let rus = rusmpp_side::decode(BytesMut::from(&wire[..]));
        let mut rus_buf = BytesMut::with_capacity(512);
        rusmpp_side::encode(&rus, &mut rus_buf);
        assert_eq!(
            &rus_buf[..],
            &wire[..],
            "rusmpp re-encodes {name} differently"
        );

        let mut g = c.benchmark_group(format!("decode/{name}"));
        g.bench_function("smpp-proto", |b| {
            b.iter(|| black_box(pdu::decode_frame_ref(black_box(&wire), &config).unwrap()))
        });
        // The session's path: frames taken one after another off a receive buffer.
        // 64 frames per iteration, refilled into one reused buffer; the table
        // divides by STREAM_FRAMES.
        let stream: Vec<u8> = wire
            .iter()
            .copied()
            .cycle()
            .take(wire.len() * STREAM_FRAMES)
            .collect();
        let mut buf = BytesMut::with_capacity(stream.len());
        g.bench_function("smpp-proto-stream", |b| {
            b.iter(|| {
                // Refilling the warm buffer costs well under 1 ns per frame.
                buf.clear();
                buf.extend_from_slice(&stream);
                while let pdu::Decoded::Pdu(p) = pdu::decode(&mut buf, &config).unwrap() {
                    black_box(&p);
                }
            })
        });
        g.bench_function("rusmpp", |b| {
            b.iter_batched(
                || BytesMut::from(&wire[..]),
                |src| black_box(rusmpp_side::decode(src)),
                BatchSize::SmallInput,
            )
        });
        g.bench_function("smpp34", |b| {
            b.iter(|| black_box(smpp34_side::decode(black_box(&wire))))
        });
        g.finish();

        let mut g = c.benchmark_group(format!("encode/{name}"));
        let mut out = Vec::with_capacity(512);
        g.bench_function("smpp-proto", |b| {
            b.iter(|| {
                out.clear();
                black_box(&pdu).encode_to_vec(&mut out).unwrap();
                black_box(out.len())
            })
        });
        g.bench_function("rusmpp", |b| {
            b.iter(|| {
                rusmpp_side::encode(black_box(&rus), &mut rus_buf);
                black_box(rus_buf.len())
            })
        });
        let d34 = smpp34_side::decode(&wire);
        g.bench_function("smpp34", |b| {
            b.iter_batched(
                || d34.clone(),
                |d| black_box(smpp34_side::encode(d)),
                BatchSize::SmallInput,
            )
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = race
}
criterion_main!(benches);
