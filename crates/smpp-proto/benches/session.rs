//! Session-layer cost: submit_sm round trips through an ESME and an MC
//! session in memory (no sockets), window 64, against the codec alone doing
//! the same encodes and decodes.
//!
//! `cargo bench -p smpp-proto --bench session`
//!
//! One iteration = 64 round trips: the ESME sends 64 submit_sm (a full
//! window), the MC decodes them, its application answers each, and the ESME
//! decodes the 64 responses and resolves them. `codec_only` does exactly the
//! encodes and decodes of those 128 PDUs and nothing else; `body_clone` is the
//! cost of handing the session an owned body (the application's side), for
//! subtracting. Throughput is in round trips (2 PDUs each).
//!
//! Measured 2026-11-25 on the shared 2-core build machine (idle at the time),
//! three runs, medians: `sessions` 31.9 µs per 64 round trips (2.0 M round
//! trips/s, 4.0 M PDUs/s through two sessions on one core), `codec_only`
//! 16.1 µs, `body_clone` 6.0 µs. The session layer's own cost per round trip,
//! (sessions − codec_only − body_clone) / codec_only, was 0.51 / 0.71 / 0.59
//! of the codec's (median 0.59); without subtracting the clone, 0.88 / 1.03 /
//! 0.96.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use smpp_proto::pdu::{
    self, Body, CommandStatus, DecodeConfig, Decoded, Pdu, SequenceNumber, SubmitSm, SubmitSmResp,
    TlvTag, Tlvs,
};
use smpp_proto::session::{BindKind, Event, Role, Session, SessionConfig};

const WINDOW: usize = 64;

fn submit_body() -> Body {
    let mut tlvs = Tlvs::new();
    tlvs.set_u16(TlvTag::USER_MESSAGE_REFERENCE, 42);
    let text: Vec<u8> = (0..160).map(|i| b'a' + (i % 26) as u8).collect();
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
    }))
}

fn resp_body() -> Body {
    Body::SubmitSmResp(SubmitSmResp {
        message_id: "5F3A0B7C".into(),
        ..Default::default()
    })
}

/// Moves all of `from`'s output into `to`.
fn transfer(now: Instant, from: &mut Session, to: &mut Session, wire: &mut Vec<u8>) {
    wire.clear();
    while from.poll_transmit(now, wire).is_some() {}
    let mut rest = &wire[..];
    while !rest.is_empty() {
        let n = to.handle_input(now, rest);
        assert!(n > 0);
        rest = &rest[n..];
    }
}

fn bound_pair(now: Instant) -> (Session, Session) {
    let config = Arc::new(
        SessionConfig::default()
            .with_max_in_flight(WINDOW)
            .with_max_inbound(WINDOW),
    );
    let mut esme = Session::new(Role::Esme, config.clone(), now);
    let mut mc = Session::new(Role::Mc, config, now);
    let mut wire = Vec::new();
    esme.bind(now, BindKind::Transceiver, Default::default())
        .unwrap();
    transfer(now, &mut esme, &mut mc, &mut wire);
    while let Some(e) = mc.poll_event() {
        if let Event::BindRequest {
            sequence_number, ..
        } = e
        {
            let body = Body::BindTransceiverResp(Default::default());
            mc.send_response(now, sequence_number, CommandStatus::OK, body)
                .unwrap();
        }
    }
    transfer(now, &mut mc, &mut esme, &mut wire);
    while esme.poll_event().is_some() {}
    assert!(esme.state().is_bound() && mc.state().is_bound());
    (esme, mc)
}

fn round_trips(c: &mut Criterion) {
    #[allow(clippy::disallowed_methods)] // sessions need a `now`; time does not advance here
    let now = Instant::now();
    let mut group = c.benchmark_group("submit_sm_round_trip");
    group.throughput(Throughput::Elements(WINDOW as u64));

    let body = submit_body();
    let resp = resp_body();
    let (mut esme, mut mc) = bound_pair(now);
    let mut wire = Vec::with_capacity(64 * 1024);
    group.bench_function("sessions", |b| {
        b.iter(|| {
            for _ in 0..WINDOW {
                esme.send_request(now, body.clone()).unwrap();
            }
            transfer(now, &mut esme, &mut mc, &mut wire);
            while let Some(e) = mc.poll_event() {
                if let Event::Request(p) = e {
                    mc.send_response(now, p.sequence_number, CommandStatus::OK, resp.clone())
                        .unwrap();
                }
            }
            transfer(now, &mut mc, &mut esme, &mut wire);
            let mut resolved = 0;
            while let Some(e) = esme.poll_event() {
                if let Event::Response(p) = e {
                    black_box(&p);
                    resolved += 1;
                }
            }
            assert_eq!(resolved, WINDOW);
        })
    });

    let config = DecodeConfig::default();
    let submit = Pdu::request(SequenceNumber::new(7), body.clone());
    let answer = Pdu::response(SequenceNumber::new(7), CommandStatus::OK, resp.clone());
    let mut out = Vec::with_capacity(64 * 1024);
    group.bench_function("codec_only", |b| {
        b.iter(|| {
            for pdu in [&submit, &answer] {
                out.clear();
                for _ in 0..WINDOW {
                    pdu.encode(&mut out).unwrap();
                }
                let mut buf = BytesMut::from(&out[..]);
                for _ in 0..WINDOW {
                    match pdu::decode(&mut buf, &config).unwrap() {
                        Decoded::Pdu(p) => {
                            black_box(&p);
                        }
                        Decoded::Partial { .. } => unreachable!(),
                    }
                }
            }
        })
    });

    group.bench_function("body_clone", |b| {
        b.iter(|| {
            for _ in 0..WINDOW {
                black_box(body.clone());
                black_box(resp.clone());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, round_trips);
criterion_main!(benches);
