//! SMPP 5.0 `congestion_state`: the MC stamps it, the ESME adapts its window.

use crate::pdu::{Body, CommandId, CommandStatus, Pdu, SubmitSm, SubmitSmResp, TlvTag};
use crate::session::tests::sim::{End, Sim};
use crate::session::{BindKind, Event, SessionConfig, INITIAL_WINDOW};

fn submit() -> Body {
    Body::SubmitSm(Box::new(SubmitSm {
        source_addr: "447700900123".into(),
        destination_addr: "447700900456".into(),
        short_message: "hi".into(),
        ..Default::default()
    }))
}

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

fn congestion_of(p: &Pdu) -> Option<u8> {
    p.body.tlvs().and_then(|t| t.congestion_state())
}

#[test]
fn mc_stamps_congestion_state_for_5_0_peers_only() {
    for version in [0x50, 0x34, 0x33] {
        let mut sim = Sim::new(SessionConfig::default().with_max_in_flight(4));
        sim.bind_as(BindKind::Transceiver, version);
        for _ in 0..3 {
            sim.esme.s.send_request(sim.now, submit()).unwrap();
        }
        sim.settle();
        let responses: Vec<_> = written(&sim, End::Mc)
            .into_iter()
            .filter(|p| p.command_id().is_response())
            .collect();
        assert_eq!(responses.len(), 4, "bind_resp and three submit_sm_resp");
        for p in &responses {
            let c = congestion_of(p);
            // Never on the bind's answer (it carries sc_interface_version).
            if version == 0x50 && p.command_id() == CommandId::SUBMIT_SM_RESP {
                assert!(matches!(c, Some(0..=90)), "{version:#x}: {p:?}");
            } else {
                assert_eq!(c, None, "{version:#x}: {p:?}");
            }
        }
        let esme = sim.esme.s.stats();
        let mc = sim.mc.s.stats();
        if version == 0x50 {
            assert_eq!(esme.congestion_states_received, 3);
            assert!(esme.peer_congestion.is_some());
            assert!(mc.congestion_state_sent.is_some());
        } else {
            assert_eq!(esme.congestion_states_received, 0);
            assert_eq!(sim.esme.s.peer_congestion(), None);
            assert_eq!(sim.esme.s.window(), 4, "3.x: the configured window");
            assert_eq!(mc.congestion_state_sent, None);
        }
    }
}

#[test]
fn a_value_the_application_set_is_kept_and_error_answers_stay_header_only() {
    let mut sim = Sim::new(SessionConfig::default());
    sim.bind_as(BindKind::Transmitter, 0x50);
    sim.mc.app.answer_requests = false;
    sim.mc.take_events();
    let a = sim.esme.s.send_request(sim.now, submit()).unwrap();
    let b = sim.esme.s.send_request(sim.now, submit()).unwrap();
    sim.settle();
    let mut resp = SubmitSmResp {
        message_id: "1".into(),
        ..Default::default()
    };
    resp.tlvs.set_u8(TlvTag::CONGESTION_STATE, 42);
    let now = sim.now;
    sim.mc
        .s
        .send_response(now, a, CommandStatus::OK, Body::SubmitSmResp(resp))
        .unwrap();
    let empty = Body::SubmitSmResp(SubmitSmResp::default());
    sim.mc
        .s
        .send_response(now, b, CommandStatus::SYSTEM_ERROR, empty)
        .unwrap();
    sim.settle();
    let responses: Vec<_> = written(&sim, End::Mc)
        .into_iter()
        .filter(|p| p.command_id() == CommandId::SUBMIT_SM_RESP)
        .collect();
    assert_eq!(responses.len(), 2);
    assert_eq!(
        responses[0]
            .body
            .tlvs()
            .unwrap()
            .get_all(TlvTag::CONGESTION_STATE)
            .count(),
        1
    );
    assert_eq!(congestion_of(&responses[0]), Some(42));
    assert_eq!(congestion_of(&responses[1]), None);
    // The error answer went out header-only: the last 16 octets written.
    let w = &sim.mc.written;
    assert_eq!(&w[w.len() - 16..w.len() - 12], &16u32.to_be_bytes());
    assert_eq!(sim.esme.s.peer_congestion(), Some(42));
}

#[test]
fn application_load_makes_the_esme_shrink_and_low_load_lets_it_grow_back() {
    // The MC's inbound window (256) has room for the ESME's (64).
    let mut sim = Sim::with_configs(
        SessionConfig::default().with_max_in_flight(64),
        SessionConfig::default().with_max_inbound(256),
    );
    sim.bind_as(BindKind::Transceiver, 0x50);
    // A bind that agrees 5.0 starts the window slow; its answer (no
    // congestion_state: the slow start) adds one, and so does a response
    // reading idle.
    assert_eq!(sim.esme.s.window(), INITIAL_WINDOW + 1);
    sim.esme.s.send_request(sim.now, submit()).unwrap();
    sim.settle();
    assert_eq!(sim.esme.s.window(), INITIAL_WINDOW + 2);
    sim.mc.s.set_load(95);
    assert_eq!(sim.mc.s.congestion_state(), 95);
    let before = sim.esme.s.window();
    sim.esme.s.send_request(sim.now, submit()).unwrap();
    sim.settle();
    assert_eq!(sim.esme.s.peer_congestion(), Some(95));
    let after = sim.esme.s.window();
    assert_eq!(after, before - before / 4, "shrunk by a quarter");
    assert_eq!(sim.esme.s.stats().max_in_flight, after);
    assert_eq!(sim.esme.s.stats().configured_in_flight, 64);
    assert_eq!(sim.esme.s.stats().peer_congestion_max, Some(95));

    // Load gone: the window grows back to the configured one.
    sim.mc.s.set_load(0);
    for _ in 0..200 {
        while sim.esme.s.window_room() > 0 {
            sim.esme.s.send_request(sim.now, submit()).unwrap();
        }
        sim.settle();
    }
    assert_eq!(sim.esme.s.window(), 64);
    assert_eq!(sim.esme.s.stats().max_in_flight, 64);
}

#[test]
fn a_request_over_the_inbound_window_reads_congested() {
    let mut sim = Sim::with_configs(
        SessionConfig::default().with_max_in_flight(8),
        SessionConfig::default().with_max_inbound(2),
    );
    sim.bind_as(BindKind::Transmitter, 0x50);
    sim.mc.app.answer_requests = false;
    sim.mc.take_events();
    // The ESME's controller starts at 8 (> 2): the third request is throttled.
    for _ in 0..3 {
        sim.esme.s.send_request(sim.now, submit()).unwrap();
    }
    sim.settle();
    let throttled = sim.mc.take_events();
    assert!(
        throttled
            .iter()
            .any(|e| matches!(e, Event::InboundThrottled { .. })),
        "{throttled:?}"
    );
    assert_eq!(sim.mc.s.congestion_state(), 100);
    let pending: Vec<_> = throttled
        .iter()
        .filter_map(|e| match e {
            Event::Request(p) => Some(p.sequence_number),
            _ => None,
        })
        .collect();
    let now = sim.now;
    for seq in pending {
        let body = Body::SubmitSmResp(SubmitSmResp::default());
        sim.mc
            .s
            .send_response(now, seq, CommandStatus::OK, body)
            .unwrap();
    }
    sim.settle();
    assert_eq!(sim.esme.s.peer_congestion(), Some(100));
    assert!(sim.esme.s.window() <= 4, "halved: {}", sim.esme.s.window());
}

mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever the MC's load and however many requests the ESME
        /// keeps in flight, the ESME's window stays within [1, configured]
        /// and it never has more in flight than its window allowed; a 3.4
        /// ESME gets no congestion_state and keeps its configured window.
        #[test]
        fn the_window_stays_in_bounds_and_3_4_peers_get_nothing(
            v50 in any::<bool>(),
            window in 1usize..40,
            rounds in proptest::collection::vec((0u8..=120, 1usize..50), 1..25),
        ) {
            let mut sim = Sim::with_configs(
                SessionConfig::default().with_max_in_flight(window),
                SessionConfig::default().with_max_inbound(16),
            );
            sim.bind_as(BindKind::Transceiver, if v50 { 0x50 } else { 0x34 });
            for (load, burst) in rounds {
                sim.mc.s.set_load(load);
                for _ in 0..burst {
                    if sim.esme.s.window_room() == 0 {
                        break;
                    }
                    sim.esme.s.send_request(sim.now, submit()).unwrap();
                }
                let w = sim.esme.s.window();
                prop_assert!((1..=window).contains(&w), "{} of {}", w, window);
                prop_assert!(sim.esme.s.in_flight() <= window);
                sim.settle();
            }
            let stamped = written(&sim, End::Mc)
                .iter()
                .filter(|p| congestion_of(p).is_some())
                .count();
            if v50 {
                prop_assert!(stamped > 0);
            } else {
                prop_assert_eq!(stamped, 0);
                prop_assert_eq!(sim.esme.s.window(), window);
                prop_assert_eq!(sim.esme.s.peer_congestion(), None);
            }
        }
    }
}

#[test]
fn a_5_0_mc_that_never_reports_gets_the_configured_window_after_a_slow_start() {
    let mut sim = Sim::new(SessionConfig::default().with_max_in_flight(64));
    sim.bind_as(BindKind::Transceiver, 0x50);
    // The bind's answer: the slow start's first step.
    assert_eq!(sim.esme.s.window(), INITIAL_WINDOW + 1);
    // An MC that never stamps congestion_state (most do not): every answer
    // without one grows the window by one, up to the configured window.
    for _ in 0..100 {
        sim.esme.s.on_peer_silence();
    }
    assert_eq!(sim.esme.s.window(), 64);
    assert_eq!(sim.esme.s.peer_congestion(), None);
}
