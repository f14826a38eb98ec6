//! Scenario stories on the simulator: one behaviour each.

use std::time::Duration;

use crate::pdu::{Body, CommandId, CommandStatus, Outbind, Pdu, SequenceNumber, SubmitSm};
use crate::session::tests::sim::{Chunking, End, Sim};
use crate::session::{
    BindKind, CloseReason, Event, InboundOverflow, PeerViolation, RequestError, SendError,
    SessionConfig, SessionError, State, LATE_MEMORY,
};

fn submit(text: &'static str) -> Body {
    Body::SubmitSm(Box::new(SubmitSm {
        source_addr: "447700900123".into(),
        destination_addr: "447700900456".into(),
        short_message: text.into(),
        ..Default::default()
    }))
}

fn config() -> SessionConfig {
    SessionConfig::default()
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

fn closed_reason(events: &[Event]) -> Option<&CloseReason> {
    match events.last() {
        Some(Event::Closed(r)) => Some(r),
        _ => None,
    }
}

/// The PDUs a side wrote, decoded.
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

fn bind_and_unbind(kind: BindKind, chunking: Chunking) {
    let mut sim = Sim::new(config()).chunking(chunking);
    sim.bind(kind);
    assert_eq!(sim.esme.s.state(), kind.bound_state());
    assert_eq!(sim.mc.s.state(), kind.bound_state());
    let esme = sim.esme.take_events();
    assert!(matches!(
        &esme[..],
        [Event::StateChanged { from: State::Open, to }, Event::Response(resp)]
            if *to == kind.bound_state() && resp.command_status == CommandStatus::OK
    ));
    let mc = sim.mc.take_events();
    assert!(
        matches!(&mc[..], [Event::BindRequest { kind: k, .. }, Event::StateChanged { .. }] if *k == kind)
    );

    let seq = sim.esme.s.unbind(sim.now).unwrap();
    sim.settle();
    let esme = sim.esme.take_events();
    assert!(matches!(
        &esme[0],
        Event::StateChanged {
            to: State::Unbound,
            ..
        }
    ));
    assert!(
        matches!(&esme[1], Event::Response(p) if p.sequence_number == seq && p.command_id() == CommandId::UNBIND_RESP)
    );
    assert_eq!(closed_reason(&esme), Some(&CloseReason::Unbound));
    assert_eq!(
        closed_reason(&sim.mc.take_events()),
        Some(&CloseReason::Unbound)
    );
    assert!(sim.esme.s.is_closed() && sim.mc.s.is_closed());
}

#[test]
fn bind_and_unbind_as_transmitter() {
    bind_and_unbind(BindKind::Transmitter, Chunking::Whole);
}

#[test]
fn bind_and_unbind_as_receiver() {
    bind_and_unbind(BindKind::Receiver, Chunking::ByteByByte);
}

#[test]
fn bind_and_unbind_as_transceiver() {
    bind_and_unbind(BindKind::Transceiver, Chunking::Random(7));
}

#[test]
fn bind_rejected_leaves_the_session_open() {
    let mut sim = Sim::new(config());
    sim.mc.app.answer_binds = Some(CommandStatus::BIND_FAILED);
    let seq = sim.bind(BindKind::Transceiver);
    let esme = sim.esme.take_events();
    assert!(matches!(&esme[..], [Event::Response(p)]
        if p.sequence_number == seq && p.command_status == CommandStatus::BIND_FAILED));
    assert_eq!(sim.esme.s.state(), State::Open);
    assert_eq!(sim.mc.s.state(), State::Open);
    // Still not bound: submitting is refused at once, handing the body back.
    let err = sim.esme.s.send_request(sim.now, submit("x")).unwrap_err();
    assert!(matches!(err, SendError::InvalidState(Body::SubmitSm(_))));
    // The ESME may try again.
    sim.mc.app.answer_binds = Some(CommandStatus::OK);
    sim.bind(BindKind::Transceiver);
    assert_eq!(sim.esme.s.state(), State::BoundTrx);
}

#[test]
fn outbind_then_the_esme_binds_as_receiver() {
    let mut sim = Sim::new(config());
    let outbind = Outbind {
        system_id: "SMSC".into(),
        password: "pw".into(),
        ..Default::default()
    };
    sim.mc.s.outbind(sim.now, outbind).unwrap();
    assert_eq!(sim.mc.s.state(), State::Outbound);
    sim.settle();
    assert_eq!(sim.esme.s.state(), State::Outbound);
    let esme = sim.esme.take_events();
    assert!(matches!(&esme[1], Event::Outbind(o) if o.system_id == "SMSC"));
    // A second outbind is not allowed: refused locally.
    assert!(matches!(
        sim.mc.s.outbind(sim.now, Outbind::default()),
        Err(SendError::InvalidState(_))
    ));
    sim.bind(BindKind::Receiver);
    assert_eq!(sim.esme.s.state(), State::BoundRx);
    assert_eq!(sim.mc.s.state(), State::BoundRx);
    // The MC delivers over the receiver bind.
    let seq = sim
        .mc
        .s
        .send_request(sim.now, Body::DeliverSm(Box::default()))
        .unwrap();
    sim.settle();
    assert!(sim.mc.take_events().iter().any(
        |e| matches!(e, Event::Response(p) if p.sequence_number == seq && p.command_id() == CommandId::DELIVER_SM_RESP)
    ));
}

#[test]
fn submit_in_receiver_state_is_refused_locally_and_by_the_peer() {
    let mut sim = Sim::new(config());
    sim.bind(BindKind::Receiver);
    let err = sim.esme.s.send_request(sim.now, submit("no")).unwrap_err();
    assert!(matches!(err, SendError::InvalidState(Body::SubmitSm(_))));
    assert_eq!(err.into_inner(), submit("no"), "the body is handed back");
    // A peer that sends it anyway gets submit_sm_resp ESME_RINVBNDSTS.
    let raw = Pdu::request(SequenceNumber::new(77), submit("no"))
        .to_vec()
        .unwrap();
    sim.inject(End::Mc, &raw);
    sim.settle();
    let answer = written(&sim, End::Mc).pop().unwrap();
    assert_eq!(answer.command_id(), CommandId::SUBMIT_SM_RESP);
    assert_eq!(answer.command_status, CommandStatus::INVALID_BIND_STATUS);
    assert_eq!(answer.sequence_number.get(), 77);
    assert!(sim.mc.take_events().iter().any(|e| matches!(
        e,
        Event::PeerViolation(PeerViolation::IllegalRequest {
            state: State::BoundRx,
            answered: Some(CommandStatus::INVALID_BIND_STATUS),
            ..
        })
    )));
    assert_eq!(sim.mc.s.state(), State::BoundRx, "the session continues");
}

#[test]
fn full_window_refuses_then_announces_room_once() {
    let mut sim = Sim::new(config().with_max_in_flight(2));
    sim.bind(BindKind::Transmitter);
    sim.esme.take_events();
    sim.mc.app.answer_requests = false;
    let a = sim.esme.s.send_request(sim.now, submit("a")).unwrap();
    sim.esme.s.send_request(sim.now, submit("b")).unwrap();
    assert_eq!(sim.esme.s.window_room(), 0);
    let err = sim.esme.s.send_request(sim.now, submit("c")).unwrap_err();
    assert!(matches!(&err, SendError::WindowFull(Body::SubmitSm(_))));
    assert!(matches!(
        sim.esme.s.send_request(sim.now, submit("d")),
        Err(SendError::WindowFull(_))
    ));
    sim.settle();
    // The MC's application answers both; exactly one WindowAvailable follows.
    let requests: Vec<_> = sim
        .mc
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Request(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        let body = super::sim::answer_body(r);
        sim.mc
            .s
            .send_response(sim.now, r.sequence_number, CommandStatus::OK, body)
            .unwrap();
    }
    sim.settle();
    let esme = sim.esme.take_events();
    let available = esme
        .iter()
        .filter(|e| matches!(e, Event::WindowAvailable))
        .count();
    assert_eq!(available, 1);
    assert!(matches!(&esme[0], Event::Response(p) if p.sequence_number == a));
    assert!(matches!(&esme[1], Event::WindowAvailable));
    sim.esme.s.send_request(sim.now, err.into_inner()).unwrap();
}

#[test]
fn unanswered_request_times_out_and_a_late_answer_is_reported() {
    let mut sim = Sim::new(config().with_response_timeout(Duration::from_secs(5)));
    sim.bind(BindKind::Transmitter);
    sim.esme.take_events();
    sim.mc.app.answer_requests = false;
    let seq = sim.esme.s.send_request(sim.now, submit("slow")).unwrap();
    sim.run_for(Duration::from_secs(4));
    assert!(sim.esme.take_events().is_empty());
    sim.run_for(Duration::from_secs(2));
    let esme = sim.esme.take_events();
    assert_eq!(
        esme,
        vec![Event::RequestFailed {
            sequence_number: seq,
            command_id: CommandId::SUBMIT_SM,
            error: RequestError::Timeout
        }]
    );
    assert_eq!(sim.esme.s.in_flight(), 0);
    // The MC answers late: reported, not a crash, not a second resolution.
    let req = match sim.mc.take_events().pop() {
        Some(Event::Request(p)) => p,
        other => panic!("{other:?}"),
    };
    sim.mc
        .s
        .send_response(
            sim.now,
            req.sequence_number,
            CommandStatus::OK,
            super::sim::answer_body(&req),
        )
        .unwrap();
    sim.settle();
    // Late, and told apart from an unknown response: the event carries the
    // response (its message id), and the count is in the stats.
    match &sim.esme.take_events()[..] {
        [Event::LateResponse(pdu)] => {
            assert_eq!(pdu.sequence_number, seq);
            assert_eq!(pdu.command_id(), CommandId::SUBMIT_SM_RESP);
        }
        other => panic!("{other:?}"),
    }
    let stats = sim.esme.s.stats();
    assert_eq!((stats.late_responses, stats.unexpected_responses), (1, 0));
    assert_eq!(sim.esme.s.state(), State::BoundTx);

    // One for a sequence number we never used, and the same response again
    // (a duplicate): unexpected, each once.
    for wire in [
        frame(0x8000_0004, 0, seq.get() + 1000, b"x\0"),
        frame(0x8000_0004, 0, seq.get(), b"x\0"),
    ] {
        assert_eq!(sim.esme.s.handle_input(sim.now, &wire), wire.len());
    }
    sim.settle();
    let events = sim.esme.take_events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|e| matches!(
        e,
        Event::PeerViolation(PeerViolation::UnexpectedResponse { .. })
    )));
    let stats = sim.esme.s.stats();
    assert_eq!((stats.late_responses, stats.unexpected_responses), (1, 2));
}

#[test]
fn only_the_last_timed_out_requests_are_remembered() {
    let mut sim = Sim::new(
        config()
            .with_response_timeout(Duration::from_secs(5))
            // The MC leaves every request unanswered (the keepalives too):
            // room for all of them.
            .with_max_inbound(4 * LATE_MEMORY),
    );
    sim.bind(BindKind::Transmitter);
    sim.esme.take_events();
    sim.mc.app.answer_requests = false;
    // One at a time, so that they time out in send order.
    let seqs: Vec<_> = (0..=LATE_MEMORY)
        .map(|_| {
            let seq = sim.esme.s.send_request(sim.now, submit("slow")).unwrap();
            sim.run_for(Duration::from_secs(6));
            seq
        })
        .collect();
    let failed = sim.esme.take_events();
    assert_eq!(failed.len(), LATE_MEMORY + 1);
    assert!(failed.iter().all(|e| matches!(
        e,
        Event::RequestFailed {
            error: RequestError::Timeout,
            ..
        }
    )));
    // The first to time out was forgotten; the last is remembered.
    for seq in [seqs[0], seqs[LATE_MEMORY]] {
        let wire = frame(0x8000_0004, 0, seq.get(), b"x\0");
        assert_eq!(sim.esme.s.handle_input(sim.now, &wire), wire.len());
    }
    sim.settle();
    let events = sim.esme.take_events();
    assert!(
        matches!(
            &events[..],
            [
                Event::PeerViolation(PeerViolation::UnexpectedResponse { .. }),
                Event::LateResponse(_)
            ]
        ),
        "{events:?}"
    );
}

#[test]
fn idle_link_is_probed_and_a_dead_peer_closes_the_session() {
    let cfg = config()
        .with_enquire_link_interval(Some(Duration::from_secs(30)))
        .with_enquire_link_timeout(Duration::from_secs(10));
    let mut sim = Sim::with_configs(cfg, config().with_enquire_link_interval(None));
    sim.bind(BindKind::Transceiver);
    // Two idle periods: each probe is answered automatically, silently.
    sim.run_for(Duration::from_secs(65));
    assert_eq!(sim.esme.s.stats().sent(CommandId::ENQUIRE_LINK), 2);
    assert_eq!(sim.mc.s.stats().sent(CommandId::ENQUIRE_LINK_RESP), 2);
    assert_eq!(sim.esme.s.state(), State::BoundTrx);
    // The MC goes silent (a black-holed connection): the probe is unanswered.
    sim.latency = Duration::from_secs(3600);
    sim.run_for(Duration::from_secs(45));
    let esme = sim.esme.take_events();
    assert_eq!(
        closed_reason(&esme),
        Some(&CloseReason::Error(SessionError::KeepaliveTimeout))
    );
}

#[test]
fn session_init_timer_drops_a_connection_that_never_binds() {
    let mut sim = Sim::new(config().with_session_init_timeout(Some(Duration::from_secs(10))));
    sim.run_for(Duration::from_secs(9));
    assert_eq!(sim.mc.s.state(), State::Open);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(
        closed_reason(&sim.mc.take_events()),
        Some(&CloseReason::Error(SessionError::SessionInitTimeout))
    );
}

#[test]
fn inactivity_unbinds_but_keepalives_do_not_count_as_activity() {
    let cfg = config()
        .with_enquire_link_interval(Some(Duration::from_secs(20)))
        .with_inactivity_timeout(Some(Duration::from_secs(60)));
    let mut sim = Sim::with_configs(cfg, config().with_enquire_link_interval(None));
    sim.bind(BindKind::Transmitter);
    sim.esme.take_events();
    sim.run_for(Duration::from_secs(30));
    sim.esme
        .s
        .send_request(sim.now, submit("activity"))
        .unwrap();
    sim.run_for(Duration::from_secs(59));
    assert_eq!(
        sim.esme.s.state(),
        State::BoundTx,
        "the submit restarted the timer"
    );
    sim.run_for(Duration::from_secs(2));
    assert!(sim.esme.s.stats().sent(CommandId::ENQUIRE_LINK) >= 2);
    let esme = sim.esme.take_events();
    assert!(esme.iter().any(|e| matches!(
        e,
        Event::StateChanged {
            to: State::Unbound,
            ..
        }
    )));
    assert_eq!(
        closed_reason(&esme),
        Some(&CloseReason::Error(SessionError::InactivityTimeout))
    );
    assert_eq!(
        closed_reason(&sim.mc.take_events()),
        Some(&CloseReason::Unbound)
    );
}

#[test]
fn unknown_command_id_is_nacked_and_the_session_continues() {
    let mut sim = Sim::new(config());
    sim.bind(BindKind::Transceiver);
    sim.mc.take_events();
    sim.inject(End::Mc, &frame(0x0001_0234, 0, 42, b"vendor"));
    sim.settle();
    let nack = written(&sim, End::Mc).pop().unwrap();
    assert_eq!(
        nack,
        Pdu::generic_nack(SequenceNumber::new(42), CommandStatus::INVALID_COMMAND_ID)
    );
    assert!(matches!(
        &sim.mc.take_events()[..],
        [Event::PeerViolation(PeerViolation::UnknownCommand { sequence_number, .. })] if sequence_number.get() == 42
    ));
    sim.esme
        .s
        .send_request(sim.now, submit("still alive"))
        .unwrap();
    sim.settle();
    assert!(matches!(
        sim.esme.take_events().last(),
        Some(Event::Response(_))
    ));
}

#[test]
fn malformed_body_gets_an_error_response_with_its_sequence_number() {
    let mut sim = Sim::new(config());
    sim.bind(BindKind::Transceiver);
    sim.mc.take_events();
    // submit_sm whose source_addr has no NUL before the end of the PDU.
    let mut body = vec![0u8, 1, 1];
    body.extend_from_slice(b"447700900123");
    sim.inject(End::Mc, &frame(0x04, 0, 9, &body));
    sim.settle();
    let answer = written(&sim, End::Mc).pop().unwrap();
    assert_eq!(answer.command_id(), CommandId::SUBMIT_SM_RESP);
    assert_eq!(answer.sequence_number.get(), 9);
    assert!(!answer.command_status.is_ok());
    assert!(matches!(
        &sim.mc.take_events()[..],
        [Event::PeerViolation(PeerViolation::Malformed(_))]
    ));
    assert_eq!(sim.mc.s.state(), State::BoundTrx);
    sim.esme.s.send_request(sim.now, submit("next")).unwrap();
    sim.settle();
    assert!(matches!(
        sim.esme.take_events().last(),
        Some(Event::Response(_))
    ));
}

#[test]
fn bad_command_length_nacks_and_closes() {
    let mut sim = Sim::new(config());
    sim.bind(BindKind::Transceiver);
    sim.mc.app.answer_requests = false;
    let seq = sim.esme.s.send_request(sim.now, submit("lost")).unwrap();
    sim.settle();
    sim.esme.take_events();
    // The MC's side receives a length of 8: the stream cannot be framed any more.
    sim.inject(End::Esme, &[0, 0, 0, 8, 0, 0, 0, 4]);
    sim.settle();
    let nack = written(&sim, End::Esme).pop().unwrap();
    assert_eq!(
        nack,
        Pdu::generic_nack(
            SequenceNumber::new(0),
            CommandStatus::INVALID_COMMAND_LENGTH
        )
    );
    let esme = sim.esme.take_events();
    assert_eq!(
        esme[0],
        Event::RequestFailed {
            sequence_number: seq,
            command_id: CommandId::SUBMIT_SM,
            error: RequestError::SessionClosed
        },
        "in-flight requests fail before Closed"
    );
    assert!(matches!(
        closed_reason(&esme),
        Some(CloseReason::Error(SessionError::Framing(_)))
    ));
    // The MC then sees the connection close.
    assert_eq!(
        closed_reason(&sim.mc.take_events()),
        Some(&CloseReason::Error(SessionError::ConnectionLost))
    );
}

#[test]
fn sequence_numbers_wrap_to_one_and_skip_those_in_flight() {
    let mut sim = Sim::new(config());
    sim.bind(BindKind::Transmitter);
    sim.esme.take_events();
    sim.mc.take_events();
    sim.mc.app.answer_requests = false;
    sim.esme
        .s
        .set_next_sequence_number(SequenceNumber::new(0x7FFF_FFFE));
    let seqs: Vec<u32> = (0..3)
        .map(|_| sim.esme.s.send_request(sim.now, submit("w")).unwrap().get())
        .collect();
    // 0x7FFFFFFF is the last valid number, then 1 (the bind's, resolved long ago).
    assert_eq!(seqs, vec![0x7FFF_FFFE, 0x7FFF_FFFF, 1]);
    // Wrapping onto a number still in flight skips it.
    sim.esme
        .s
        .set_next_sequence_number(SequenceNumber::new(0x7FFF_FFFF));
    let next = sim.esme.s.send_request(sim.now, submit("w")).unwrap();
    assert_eq!(next.get(), 2, "0x7FFFFFFF and 1 are in flight");
    sim.settle();
    // The MC echoes them; each resolves once.
    let reqs: Vec<_> = sim
        .mc
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Request(p) => Some(p),
            _ => None,
        })
        .collect();
    for r in &reqs {
        sim.mc
            .s
            .send_response(
                sim.now,
                r.sequence_number,
                CommandStatus::OK,
                super::sim::answer_body(r),
            )
            .unwrap();
    }
    sim.settle();
    assert_eq!(reqs.len(), 4);
    let mut resolved = Sim::resolutions(&sim.esme.take_events());
    resolved.sort_unstable();
    assert_eq!(resolved, vec![1, 2, 0x7FFF_FFFE, 0x7FFF_FFFF]);
}

#[test]
fn peers_unbind_waits_for_requests_in_flight_then_answers() {
    let mut sim = Sim::new(config());
    sim.bind(BindKind::Transceiver);
    sim.esme.take_events();
    sim.mc.take_events();
    sim.mc.app.answer_requests = false;
    let seqs: Vec<_> = (0..3)
        .map(|_| {
            sim.esme
                .s
                .send_request(sim.now, submit("in flight"))
                .unwrap()
        })
        .collect();
    sim.settle();
    let reqs: Vec<_> = sim
        .mc
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Request(p) => Some(p),
            _ => None,
        })
        .collect();
    // The MC answers one, then unbinds with two still unanswered.
    sim.mc
        .s
        .send_response(
            sim.now,
            reqs[0].sequence_number,
            CommandStatus::OK,
            super::sim::answer_body(&reqs[0]),
        )
        .unwrap();
    sim.mc.s.unbind(sim.now).unwrap();
    sim.settle();
    assert_eq!(sim.esme.s.state(), State::Unbound);
    assert_eq!(sim.esme.s.in_flight(), 2, "unbind_resp waits for them");
    // New requests are refused in UNBOUND; answers to the old ones still count.
    assert!(matches!(
        sim.esme.s.send_request(sim.now, submit("late")),
        Err(SendError::InvalidState(_))
    ));
    for r in &reqs[1..] {
        sim.mc
            .s
            .send_response(
                sim.now,
                r.sequence_number,
                CommandStatus::OK,
                super::sim::answer_body(r),
            )
            .unwrap();
    }
    sim.settle();
    let esme = sim.esme.take_events();
    let resolved: Vec<_> = Sim::resolutions(&esme);
    assert_eq!(resolved, seqs.iter().map(|s| s.get()).collect::<Vec<_>>());
    assert!(esme
        .iter()
        .all(|e| !matches!(e, Event::RequestFailed { .. })));
    assert_eq!(closed_reason(&esme), Some(&CloseReason::Unbound));
    assert_eq!(
        closed_reason(&sim.mc.take_events()),
        Some(&CloseReason::Unbound)
    );
}

#[test]
fn peers_unbind_with_unanswered_requests_answers_after_the_timeout() {
    let mut sim = Sim::new(
        config()
            .with_unbind_timeout(Duration::from_secs(5))
            .with_response_timeout(Duration::from_secs(60)),
    );
    sim.bind(BindKind::Transceiver);
    sim.esme.take_events();
    sim.mc.app.answer_requests = false;
    let seq = sim
        .esme
        .s
        .send_request(sim.now, submit("never answered"))
        .unwrap();
    sim.settle();
    // The MC's application drops the request and unbinds. The ESME waits for
    // its request; whichever unbind timer fires first ends the session.
    sim.mc.s.unbind(sim.now).unwrap();
    sim.run_for(Duration::from_secs(6));
    let esme = sim.esme.take_events();
    assert_eq!(
        Sim::resolutions(&esme),
        vec![seq.get()],
        "failed exactly once: {esme:?}"
    );
    assert!(matches!(
        &esme[esme.len() - 2],
        Event::RequestFailed {
            error: RequestError::SessionClosed,
            ..
        }
    ));
    assert!(sim.esme.s.is_closed());
}

#[test]
fn inbound_window_overflow_is_throttled_or_backpressured() {
    // Throttle: the third unanswered deliver_sm is answered ESME_RTHROTTLED.
    let mut sim = Sim::new(config().with_max_inbound(2));
    sim.bind(BindKind::Receiver);
    sim.esme.app.answer_requests = false;
    let seqs: Vec<_> = (0..3)
        .map(|_| {
            sim.mc
                .s
                .send_request(sim.now, Body::DeliverSm(Box::default()))
                .unwrap()
        })
        .collect();
    sim.settle();
    assert!(sim.esme.take_events().iter().any(|e| matches!(e, Event::InboundThrottled { sequence_number, .. } if *sequence_number == seqs[2])));
    assert!(sim.mc.take_events().iter().any(|e| matches!(e, Event::Response(p) if p.sequence_number == seqs[2] && p.command_status == CommandStatus::THROTTLED)));

    // Backpressure: the third stays on the wire until the application answers.
    let cfg = config()
        .with_max_inbound(2)
        .with_inbound_overflow(InboundOverflow::Backpressure);
    let mut sim = Sim::new(cfg);
    sim.bind(BindKind::Receiver);
    sim.esme.take_events();
    sim.esme.app.answer_requests = false;
    for _ in 0..3 {
        sim.mc
            .s
            .send_request(sim.now, Body::DeliverSm(Box::default()))
            .unwrap();
    }
    sim.settle();
    assert!(sim.esme.s.is_input_blocked());
    let first = match sim.esme.take_events().remove(0) {
        Event::Request(p) => p,
        other => panic!("{other:?}"),
    };
    assert_eq!(sim.esme.s.pending_inbound(), 2);
    sim.esme
        .s
        .send_response(
            sim.now,
            first.sequence_number,
            CommandStatus::OK,
            super::sim::answer_body(&first),
        )
        .unwrap();
    // A second answer to the same request is refused.
    assert!(matches!(
        sim.esme.s.send_response(
            sim.now,
            first.sequence_number,
            CommandStatus::OK,
            super::sim::answer_body(&first)
        ),
        Err(SendError::NotPending(_))
    ));
    sim.settle();
    let esme = sim.esme.take_events();
    assert!(matches!(&esme[..], [Event::Request(_)]), "{esme:?}");
    assert!(sim
        .mc
        .take_events()
        .iter()
        .all(|e| !matches!(e, Event::Response(p) if p.command_status == CommandStatus::THROTTLED)));
}

#[test]
fn generic_nack_fails_the_request_it_answers() {
    let mut sim = Sim::new(config());
    sim.bind(BindKind::Transmitter);
    sim.esme.take_events();
    sim.mc.app.answer_requests = false;
    let seq = sim.esme.s.send_request(sim.now, submit("nack me")).unwrap();
    sim.settle();
    sim.mc
        .s
        .send_response(
            sim.now,
            seq,
            CommandStatus::SYSTEM_ERROR,
            Body::GenericNack(Default::default()),
        )
        .unwrap();
    sim.settle();
    assert_eq!(
        sim.esme.take_events(),
        vec![Event::RequestFailed {
            sequence_number: seq,
            command_id: CommandId::SUBMIT_SM,
            error: RequestError::GenericNack(CommandStatus::SYSTEM_ERROR)
        }]
    );
}

#[test]
fn unbinds_crossing_on_the_wire_both_complete() {
    let mut sim = Sim::new(config());
    sim.bind(BindKind::Transceiver);
    sim.esme.take_events();
    sim.mc.take_events();
    let e = sim.esme.s.unbind(sim.now).unwrap();
    let m = sim.mc.s.unbind(sim.now).unwrap();
    sim.settle();
    for (events, seq) in [(sim.esme.take_events(), e), (sim.mc.take_events(), m)] {
        assert!(
            events
                .iter()
                .any(|ev| matches!(ev, Event::Response(p) if p.sequence_number == seq)),
            "{events:?}"
        );
        assert_eq!(closed_reason(&events), Some(&CloseReason::Unbound));
        assert!(!events
            .iter()
            .any(|ev| matches!(ev, Event::PeerViolation(_))));
    }
}

#[test]
fn bind_while_bound_is_answered_already_bound() {
    let mut sim = Sim::new(config());
    sim.bind(BindKind::Transceiver);
    sim.mc.take_events();
    // The application cannot bind twice...
    assert!(matches!(
        sim.esme
            .s
            .bind(sim.now, BindKind::Transmitter, Default::default()),
        Err(SendError::InvalidState(_))
    ));
    // ...and a peer that does gets ESME_RALYBND.
    let raw = Pdu::request(
        SequenceNumber::new(5),
        Body::BindTransmitter(Default::default()),
    );
    sim.inject(End::Mc, &raw.to_vec().unwrap());
    sim.settle();
    let answer = written(&sim, End::Mc).pop().unwrap();
    assert_eq!(answer.command_id(), CommandId::BIND_TRANSMITTER_RESP);
    assert_eq!(answer.command_status, CommandStatus::ALREADY_BOUND);
    assert_eq!(sim.mc.s.state(), State::BoundTrx);
}

#[test]
fn odd_peer_sequence_numbers_are_echoed() {
    let mut sim = Sim::new(config());
    sim.bind(BindKind::Receiver);
    for seq in [0u32, 0x8000_0001, 0xFFFF_FFFF] {
        let raw = Pdu::request(SequenceNumber::new(seq), Body::DeliverSm(Box::default()));
        sim.inject(End::Esme, &raw.to_vec().unwrap());
        let el = Pdu::enquire_link(SequenceNumber::new(seq));
        sim.inject(End::Esme, &el.to_vec().unwrap());
    }
    sim.settle();
    // enquire_link is answered during input, deliver_sm by the application after it.
    let mut answers: Vec<(CommandId, u32)> = written(&sim, End::Esme)
        .iter()
        .skip(1) // the bind
        .map(|p| (p.command_id(), p.sequence_number.get()))
        .collect();
    let mut expected = Vec::new();
    for seq in [0u32, 0x8000_0001, 0xFFFF_FFFF] {
        expected.push((CommandId::DELIVER_SM_RESP, seq));
        expected.push((CommandId::ENQUIRE_LINK_RESP, seq));
    }
    answers.sort_unstable();
    expected.sort_unstable();
    assert_eq!(answers, expected);
}

#[test]
fn duplicate_sequence_from_the_peer_is_refused_and_reported() {
    let mut sim = Sim::new(config());
    sim.bind(BindKind::Transmitter);
    sim.mc.take_events();
    sim.mc.app.answer_requests = false;
    let raw = Pdu::request(SequenceNumber::new(9), submit("one"))
        .to_vec()
        .unwrap();
    sim.inject(End::Mc, &raw);
    sim.inject(End::Mc, &raw);
    sim.settle();
    let mc = sim.mc.take_events();
    assert!(matches!(&mc[0], Event::Request(p) if p.sequence_number.get() == 9));
    assert!(matches!(
        &mc[1],
        Event::PeerViolation(PeerViolation::DuplicateSequence { .. })
    ));
    let answer = written(&sim, End::Mc).pop().unwrap();
    assert_eq!(answer.command_status, CommandStatus::SYSTEM_ERROR);
    assert_eq!(
        sim.mc.s.pending_inbound(),
        1,
        "the first still awaits its answer"
    );
}

#[test]
fn alert_notification_needs_no_answer_and_is_reported_when_illegal() {
    let mut sim = Sim::new(config());
    sim.bind(BindKind::Receiver);
    sim.esme.take_events();
    sim.mc
        .s
        .send_request(sim.now, Body::AlertNotification(Default::default()))
        .unwrap();
    sim.settle();
    assert!(matches!(
        &sim.esme.take_events()[..],
        [Event::AlertNotification(_)]
    ));
    // To a transmitter it is illegal, and there is no response PDU to send.
    let mut sim = Sim::new(config());
    sim.bind(BindKind::Transmitter);
    sim.esme.take_events();
    let raw = Pdu::request(
        SequenceNumber::new(3),
        Body::AlertNotification(Default::default()),
    );
    sim.inject(End::Esme, &raw.to_vec().unwrap());
    sim.settle();
    assert!(matches!(
        &sim.esme.take_events()[..],
        [Event::PeerViolation(PeerViolation::IllegalRequest {
            answered: None,
            ..
        })]
    ));
    assert_eq!(
        written(&sim, End::Esme).len(),
        1,
        "only the bind was ever written"
    );
}

#[test]
fn stats_count_per_command_and_status() {
    let mut sim = Sim::new(config());
    sim.bind(BindKind::Transceiver);
    for _ in 0..3 {
        sim.esme.s.send_request(sim.now, submit("count")).unwrap();
    }
    sim.inject(End::Mc, &frame(0x22, 0, 1, b""));
    sim.settle();
    let esme = sim.esme.s.stats();
    assert_eq!(esme.sent(CommandId::SUBMIT_SM), 3);
    assert_eq!(esme.received(CommandId::SUBMIT_SM_RESP), 3);
    assert_eq!(
        esme.received_status(CommandStatus::OK),
        4,
        "bind_resp and 3 submit_sm_resp"
    );
    let mc = sim.mc.s.stats();
    assert_eq!(mc.received(CommandId::SUBMIT_SM), 3);
    assert_eq!(mc.received_other(), 1);
    assert_eq!(mc.sent_status(CommandStatus::INVALID_COMMAND_ID), 1);
    assert_eq!(mc.max_in_flight, 10);
    assert_eq!(esme.in_flight, 0);
}

#[test]
fn huge_durations_mean_never_not_a_panic() {
    let cfg = config()
        .with_response_timeout(Duration::MAX)
        .with_unbind_timeout(Duration::MAX)
        .with_enquire_link_interval(Some(Duration::MAX))
        .with_inactivity_timeout(Some(Duration::MAX))
        .with_session_init_timeout(Some(Duration::MAX));
    let mut sim = Sim::new(cfg);
    sim.bind(BindKind::Transceiver);
    sim.mc.app.answer_requests = false;
    sim.esme.s.send_request(sim.now, submit("patient")).unwrap();
    sim.run_for(Duration::from_secs(3600 * 24));
    assert_eq!(sim.esme.s.in_flight(), 1);
    sim.esme.s.unbind(sim.now).unwrap();
    sim.settle();
}

#[test]
fn undrained_output_refuses_sends_and_stops_input() {
    let mut sim = Sim::new(config().with_max_buffered_output(100));
    sim.bind(BindKind::Transceiver);
    // Nobody calls poll_transmit: the second submit no longer fits.
    let now = sim.now;
    sim.esme.s.send_request(now, submit("first")).unwrap();
    let err = sim.esme.s.send_request(now, submit("second")).unwrap_err();
    assert!(matches!(err, SendError::OutputFull(Body::SubmitSm(_))));
    // Automatic answers fill the buffer too; then input waits.
    let mut wire = Vec::new();
    for _ in 0..5 {
        Pdu::enquire_link(SequenceNumber::new(1))
            .encode(&mut wire)
            .unwrap();
    }
    let n = sim.esme.s.handle_input(now, &wire);
    assert!(n < wire.len() && n % 16 == 0, "{n}");
    assert!(sim.esme.s.is_input_blocked());
    assert_eq!(sim.esme.s.handle_input(now, &wire[n..]), 0);
    // Draining makes room for the rest.
    let mut out = Vec::new();
    assert!(sim.esme.s.poll_transmit(now, &mut out).is_some());
    assert_eq!(sim.esme.s.handle_input(now, &wire[n..]), wire.len() - n);
    sim.esme.s.send_request(now, err.into_inner()).unwrap();
}

#[test]
fn undrained_events_stop_input_without_losing_anything() {
    let mut sim = Sim::new(config().with_max_buffered_events(2));
    sim.bind(BindKind::Receiver);
    let now = sim.now;
    let mut wire = Vec::new();
    for seq in 1..=5 {
        let p = Pdu::request(SequenceNumber::new(seq), Body::DeliverSm(Box::default()));
        p.encode(&mut wire).unwrap();
    }
    let mut rest = &wire[..];
    let mut seen = Vec::new();
    while !rest.is_empty() {
        let n = sim.esme.s.handle_input(now, rest);
        assert!(n > 0 || sim.esme.s.stats().buffered_events >= 2);
        rest = &rest[n..];
        while let Some(e) = sim.esme.s.poll_event() {
            seen.push(e);
        }
    }
    let seqs: Vec<u32> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Request(p) => Some(p.sequence_number.get()),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
}

#[test]
fn unanswered_unbind_closes_after_the_unbind_timeout() {
    let mut sim = Sim::new(config().with_unbind_timeout(Duration::from_secs(3)));
    sim.bind(BindKind::Transmitter);
    sim.esme.take_events();
    sim.latency = Duration::from_secs(3600); // the MC never hears it
    let seq = sim.esme.s.unbind(sim.now).unwrap();
    sim.run_for(Duration::from_secs(4));
    let esme = sim.esme.take_events();
    // The unbind itself timed out (not "closed": the caller learns why).
    assert!(esme.iter().any(|e| matches!(e,
        Event::RequestFailed { sequence_number, error: RequestError::Timeout, .. } if *sequence_number == seq)));
    assert_eq!(
        closed_reason(&esme),
        Some(&CloseReason::Error(SessionError::UnbindTimeout))
    );
}

#[test]
fn esme_rejects_an_outbind_by_closing() {
    let mut sim = Sim::new(config());
    sim.mc.s.outbind(sim.now, Outbind::default()).unwrap();
    sim.settle();
    assert!(matches!(
        sim.esme.take_events().last(),
        Some(Event::Outbind(_))
    ));
    sim.esme.s.close(sim.now).unwrap();
    assert!(matches!(
        sim.esme.s.close(sim.now),
        Err(SendError::Closed(()))
    ));
    sim.settle();
    assert_eq!(
        closed_reason(&sim.esme.take_events()),
        Some(&CloseReason::Local)
    );
    assert_eq!(
        closed_reason(&sim.mc.take_events()),
        Some(&CloseReason::Error(SessionError::ConnectionLost))
    );
}

#[test]
fn misuse_is_refused_with_the_value_handed_back() {
    let mut sim = Sim::new(config());
    let now = sim.now;
    // An MC cannot bind, an ESME cannot outbind or deliver.
    assert!(matches!(
        sim.mc
            .s
            .bind(now, BindKind::Transceiver, Default::default()),
        Err(SendError::WrongCommand(_))
    ));
    assert!(matches!(
        sim.esme.s.outbind(now, Outbind::default()),
        Err(SendError::WrongCommand(_))
    ));
    assert!(matches!(
        sim.esme
            .s
            .send_request(now, Body::DeliverSm(Box::default())),
        Err(SendError::WrongCommand(_))
    ));
    // Responses and session management do not go through send_request.
    assert!(matches!(
        sim.esme
            .s
            .send_request(now, Body::EnquireLink(Default::default())),
        Err(SendError::WrongCommand(_))
    ));
    assert!(matches!(
        sim.esme
            .s
            .send_request(now, Body::SubmitSmResp(Default::default())),
        Err(SendError::WrongCommand(_))
    ));
    // A bind in progress cannot be doubled; an answer to nothing is refused.
    sim.esme
        .s
        .bind(now, BindKind::Transceiver, Default::default())
        .unwrap();
    assert!(matches!(
        sim.esme
            .s
            .bind(now, BindKind::Transceiver, Default::default()),
        Err(SendError::InProgress(_))
    ));
    assert!(matches!(
        sim.esme.s.send_response(
            now,
            SequenceNumber::new(1),
            CommandStatus::OK,
            Body::DeliverSmResp(Default::default())
        ),
        Err(SendError::NotPending(_))
    ));
    // A field that does not encode is refused before anything is sent.
    let too_long = Body::SubmitSm(Box::new(SubmitSm {
        source_addr: "0123456789012345678901234567890".into(),
        ..Default::default()
    }));
    sim.settle();
    assert!(matches!(
        sim.esme.s.send_request(sim.now, too_long),
        Err(SendError::Encode(_, _))
    ));
    // The MC must answer a bind with the matching response.
    let mut sim = Sim::new(config());
    sim.mc.app.answer_binds = None;
    sim.esme
        .s
        .bind(sim.now, BindKind::Receiver, Default::default())
        .unwrap();
    sim.settle();
    let seq = match sim.mc.take_events().pop() {
        Some(Event::BindRequest {
            sequence_number, ..
        }) => sequence_number,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        sim.mc.s.send_response(
            sim.now,
            seq,
            CommandStatus::OK,
            BindKind::Transmitter.response(Default::default())
        ),
        Err(SendError::ResponseMismatch(_))
    ));
    sim.mc
        .s
        .send_response(
            sim.now,
            seq,
            CommandStatus::OK,
            BindKind::Receiver.response(Default::default()),
        )
        .unwrap();
    assert_eq!(sim.mc.s.state(), State::BoundRx);
}

#[test]
fn strict_tlv_profile_refuses_a_tlv_out_of_place_and_lenient_keeps_it() {
    use crate::pdu::profile::TlvProfile;
    use crate::pdu::TlvTag;
    for profile in [TlvProfile::Strict, TlvProfile::Lenient] {
        let mut sim = Sim::with_configs(config(), config().with_tlv_profile(profile));
        sim.bind(BindKind::Transmitter); // a 3.4 bind
        sim.esme.take_events();
        sim.mc.take_events();
        sim.mc.app.answer_requests = true;
        // receipted_message_id is a 3.4 TLV, but not one submit_sm takes.
        // billing_identification is a 5.0 TLV: our ESME leaves it out of a
        // 3.4 session itself, so the MC never sees it.
        let mut sm = SubmitSm {
            source_addr: "447700900123".into(),
            destination_addr: "447700900456".into(),
            short_message: "hi".into(),
            ..Default::default()
        };
        sm.tlvs
            .set(TlvTag::BILLING_IDENTIFICATION, b"\x01ab")
            .unwrap();
        sm.tlvs
            .set_text(TlvTag::RECEIPTED_MESSAGE_ID, b"5F3A")
            .unwrap();
        let seq = sim
            .esme
            .s
            .send_request(sim.now, Body::SubmitSm(Box::new(sm)))
            .unwrap();
        sim.settle();
        let mut esme = sim.esme.take_events();
        let mc = sim.mc.take_events();
        assert_eq!(
            esme.remove(0),
            Event::TlvsDropped {
                command_id: CommandId::SUBMIT_SM,
                sequence_number: seq,
                dropped: 1,
                version: 0x34
            }
        );
        match profile {
            TlvProfile::Strict => {
                assert!(
                    matches!(&esme[..], [Event::Response(p)]
                        if p.sequence_number == seq
                            && p.command_status == CommandStatus::TLV_NOT_ALLOWED),
                    "{esme:?}"
                );
                assert!(
                    matches!(
                        &mc[..],
                        [Event::PeerViolation(PeerViolation::TlvNotAllowed {
                            tag: TlvTag::RECEIPTED_MESSAGE_ID,
                            ..
                        })]
                    ),
                    "{mc:?}"
                );
            }
            _ => {
                assert!(
                    matches!(&esme[..], [Event::Response(p)] if p.command_status.is_ok()),
                    "{esme:?}"
                );
                let [Event::Request(request)] = &mc[..] else {
                    panic!("{mc:?}")
                };
                let tlvs = request.body.tlvs().unwrap();
                assert!(tlvs.contains(TlvTag::RECEIPTED_MESSAGE_ID));
                assert!(!tlvs.contains(TlvTag::BILLING_IDENTIFICATION));
            }
        }
        let stats = sim.esme.s.stats();
        assert_eq!((stats.tlvs_dropped, stats.pdus_trimmed), (1, 1));
    }
}
