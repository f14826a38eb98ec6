//! Property tests: chunking never changes what a session does, and every
//! request resolves exactly once whatever happens.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::pdu::{Bind, Body, CommandId, CommandStatus, Pdu, SequenceNumber};
use crate::session::tests::sim::{answer_body, Sim};
use crate::session::{BindKind, Event, InboundOverflow, Role, Session, SessionConfig};

/// Requests the ESME has in flight before the stream starts: sequence numbers 2..=K+1.
const K: u32 = 6;

/// One piece of what the MC sends the ESME.
#[derive(Clone, Debug)]
enum Piece {
    Resp(u8, u8),
    Nack(u8, u8),
    Deliver(u32),
    EnquireLink(u32),
    Unknown(u32, u32),
    Malformed(u32),
    Unbind(u32),
    Garbage(Vec<u8>),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        4 => (any::<u8>(), prop_oneof![Just(0u8), any::<u8>()]).prop_map(|(k, s)| Piece::Resp(k, s)),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(k, s)| Piece::Nack(k, s)),
        3 => any::<u32>().prop_map(Piece::Deliver),
        1 => any::<u32>().prop_map(Piece::EnquireLink),
        1 => (any::<u32>(), any::<u32>()).prop_map(|(i, s)| Piece::Unknown(i, s)),
        1 => any::<u32>().prop_map(Piece::Malformed),
        1 => any::<u32>().prop_map(Piece::Unbind),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Piece::Garbage),
    ]
}

fn frame(id: u32, status: u32, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(16 + body.len() as u32).to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&status.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn wire(pieces: &[Piece]) -> Vec<u8> {
    let mut w = Vec::new();
    for p in pieces {
        let bytes = match p {
            Piece::Resp(k, s) => {
                let seq = SequenceNumber::new(2 + u32::from(*k) % K);
                let status = CommandStatus(u32::from(*s));
                Pdu::response(
                    seq,
                    status,
                    answer_body(&Pdu::request(seq, Body::SubmitSm(Box::default()))),
                )
                .to_vec()
                .unwrap()
            }
            Piece::Nack(k, s) => Pdu::generic_nack(
                SequenceNumber::new(2 + u32::from(*k) % K),
                CommandStatus(u32::from(*s)),
            )
            .to_vec()
            .unwrap(),
            Piece::Deliver(seq) => {
                Pdu::request(SequenceNumber::new(*seq), Body::DeliverSm(Box::default()))
                    .to_vec()
                    .unwrap()
            }
            Piece::EnquireLink(seq) => Pdu::enquire_link(SequenceNumber::new(*seq))
                .to_vec()
                .unwrap(),
            Piece::Unknown(id, seq) => frame(0x0001_0200 | (id & 0xFF), 0, *seq, b"x"),
            Piece::Malformed(seq) => frame(0x05, 0, *seq, &[0, 1, 1, b'4', b'4']),
            Piece::Unbind(seq) => Pdu::unbind(SequenceNumber::new(*seq)).to_vec().unwrap(),
            Piece::Garbage(g) => g.clone(),
        };
        w.extend_from_slice(&bytes);
    }
    w
}

/// A bound ESME with K submits in flight.
fn bound_esme(overflow: InboundOverflow) -> (Session, Instant) {
    #[allow(clippy::disallowed_methods)] // the virtual clock's epoch
    let now = Instant::now();
    let config = SessionConfig::default()
        .with_max_in_flight(K as usize)
        .with_max_inbound(2)
        .with_max_buffered_events(3)
        .with_max_buffered_output(64)
        .with_inbound_overflow(overflow);
    let mut s = Session::new(Role::Esme, Arc::new(config), now);
    let seq = s.bind(now, BindKind::Transceiver, Bind::default()).unwrap();
    let resp = Pdu::response(
        seq,
        CommandStatus::OK,
        Body::default_for(CommandId::BIND_TRANSCEIVER_RESP).unwrap(),
    );
    let bytes = resp.to_vec().unwrap();
    assert_eq!(s.handle_input(now, &bytes), bytes.len());
    let mut sink = Vec::new();
    while s.poll_transmit(now, &mut sink).is_some() {}
    while s.poll_event().is_some() {}
    for _ in 0..K {
        s.send_request(now, Body::SubmitSm(Box::default())).unwrap();
        while s.poll_transmit(now, &mut sink).is_some() {}
    }
    (s, now)
}

/// Feeds `wire` cut at `cuts`, as an adapter would: drain after every call,
/// answer the oldest request when (and only when) input is blocked on the
/// inbound window, offer the rest again. Returns every event and output byte.
fn run(overflow: InboundOverflow, wire: &[u8], cuts: &[usize]) -> (Vec<Event>, Vec<u8>) {
    let (mut s, now) = bound_esme(overflow);
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut pending: Vec<Pdu> = Vec::new();
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    bounds.push(wire.len());
    bounds.sort_unstable();
    let mut pos = 0;
    for end in bounds {
        while pos < end && !s.is_closed() {
            let n = s.handle_input(now, &wire[pos..end]);
            pos += n;
            while s.poll_transmit(now, &mut out).is_some() {}
            while let Some(e) = s.poll_event() {
                if let Event::Request(p) = &e {
                    pending.push(p.clone());
                }
                events.push(e);
            }
            if s.is_input_blocked() && !s.is_closed() {
                let p = pending.remove(0);
                s.send_response(now, p.sequence_number, CommandStatus::OK, answer_body(&p))
                    .unwrap();
                while s.poll_transmit(now, &mut out).is_some() {}
            } else if n == 0 {
                assert!(s.is_closed(), "stuck without being blocked");
            }
        }
    }
    (events, out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_chunking_gives_the_same_events_and_bytes(
        pieces in proptest::collection::vec(piece(), 0..24),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
        backpressure in any::<bool>(),
    ) {
        let overflow = if backpressure { InboundOverflow::Backpressure } else { InboundOverflow::Throttle };
        let w = wire(&pieces);
        let whole = run(overflow, &w, &[]);
        let bytewise: Vec<usize> = (0..w.len()).collect();
        prop_assert_eq!(&run(overflow, &w, &cuts), &whole);
        prop_assert_eq!(&run(overflow, &w, &bytewise), &whole);
    }

    #[test]
    fn arbitrary_bytes_under_any_chunking_give_the_same_events(
        w in proptest::collection::vec(any::<u8>(), 0..300),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let whole = run(InboundOverflow::Throttle, &w, &[]);
        prop_assert_eq!(run(InboundOverflow::Throttle, &w, &cuts), whole);
    }
}

/// What the two applications and the world do, in some order.
#[derive(Clone, Debug)]
enum Op {
    Submit,
    Enquire,
    McAnswer(u8, u8),
    McDeliver,
    EsmeAnswer(u8),
    Advance(u16),
    EsmeUnbind,
    McUnbind,
    Disconnect,
    EsmeClose,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => Just(Op::Submit),
        1 => Just(Op::Enquire),
        5 => (any::<u8>(), prop_oneof![3 => Just(0u8), 1 => any::<u8>()]).prop_map(|(i, s)| Op::McAnswer(i, s)),
        2 => Just(Op::McDeliver),
        2 => any::<u8>().prop_map(Op::EsmeAnswer),
        4 => (0u16..8000).prop_map(Op::Advance),
        1 => Just(Op::EsmeUnbind),
        1 => Just(Op::McUnbind),
        1 => Just(Op::Disconnect),
        1 => Just(Op::EsmeClose),
    ]
}

/// Requests taken from a side's new events.
fn harvest(events: &[Event], seen: &mut usize, into: &mut Vec<Pdu>) {
    for e in &events[*seen..] {
        if let Event::Request(p) = e {
            into.push(p.clone());
        }
    }
    *seen = events.len();
}

/// Every number a side sent is resolved exactly once in its events, and
/// `Closed` is its last event, once.
fn check_exactly_once(sent: &[u32], events: &[Event]) -> Result<(), TestCaseError> {
    let mut count: HashMap<u32, usize> = HashMap::new();
    for seq in Sim::resolutions(events) {
        *count.entry(seq).or_default() += 1;
    }
    for seq in sent {
        prop_assert_eq!(count.remove(seq), Some(1), "seq {} in {:?}", seq, events);
    }
    prop_assert!(count.is_empty(), "resolved but never sent: {:?}", count);
    let closed = events
        .iter()
        .filter(|e| matches!(e, Event::Closed(_)))
        .count();
    prop_assert_eq!(closed, 1);
    prop_assert!(matches!(events.last(), Some(Event::Closed(_))));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_request_resolves_exactly_once(ops in proptest::collection::vec(op(), 0..60)) {
        let config = SessionConfig::default()
            .with_max_in_flight(4)
            .with_response_timeout(Duration::from_secs(3))
            .with_unbind_timeout(Duration::from_secs(2))
            .with_enquire_link_interval(Some(Duration::from_secs(5)))
            .with_enquire_link_timeout(Duration::from_secs(2));
        let mut sim = Sim::new(config);
        sim.mc.app.answer_requests = false;
        sim.esme.app.answer_requests = false;
        let mut esme_sent = vec![sim.bind(BindKind::Transceiver).get()];
        let mut mc_sent = Vec::new();
        let (mut mc_seen, mut esme_seen) = (0, 0);
        let (mut mc_pending, mut esme_pending) = (Vec::new(), Vec::new());
        for op in ops {
            harvest(&sim.mc.events, &mut mc_seen, &mut mc_pending);
            harvest(&sim.esme.events, &mut esme_seen, &mut esme_pending);
            let now = sim.now;
            match op {
                Op::Submit => {
                    if let Ok(seq) = sim.esme.s.send_request(now, Body::SubmitSm(Box::default())) {
                        esme_sent.push(seq.get());
                    }
                }
                Op::Enquire => {
                    if let Ok(seq) = sim.esme.s.enquire_link(now) {
                        esme_sent.push(seq.get());
                    }
                }
                Op::McAnswer(i, status) => {
                    if !mc_pending.is_empty() {
                        let p = mc_pending.remove(usize::from(i) % mc_pending.len());
                        let status = CommandStatus(u32::from(status));
                        let body = if i & 0x80 != 0 { Body::GenericNack(Default::default()) } else { answer_body(&p) };
                        let _ = sim.mc.s.send_response(now, p.sequence_number, status, body);
                    }
                }
                Op::McDeliver => {
                    if let Ok(seq) = sim.mc.s.send_request(now, Body::DeliverSm(Box::default())) {
                        mc_sent.push(seq.get());
                    }
                }
                Op::EsmeAnswer(i) => {
                    if !esme_pending.is_empty() {
                        let p = esme_pending.remove(usize::from(i) % esme_pending.len());
                        let _ = sim.esme.s.send_response(now, p.sequence_number, CommandStatus::OK, answer_body(&p));
                    }
                }
                Op::Advance(ms) => sim.run_for(Duration::from_millis(u64::from(ms))),
                Op::EsmeUnbind => {
                    if let Ok(seq) = sim.esme.s.unbind(now) {
                        esme_sent.push(seq.get());
                    }
                }
                Op::McUnbind => {
                    if let Ok(seq) = sim.mc.s.unbind(now) {
                        mc_sent.push(seq.get());
                    }
                }
                Op::Disconnect => {
                    sim.esme.s.handle_eof(now);
                    sim.mc.s.handle_eof(now);
                }
                Op::EsmeClose => {
                    let _ = sim.esme.s.close(now);
                }
            }
        }
        // Let everything play out, then end whatever is left.
        sim.run_for(Duration::from_secs(60));
        let _ = sim.esme.s.close(sim.now);
        let _ = sim.mc.s.close(sim.now);
        sim.settle();
        check_exactly_once(&esme_sent, &sim.esme.events)?;
        check_exactly_once(&mc_sent, &sim.mc.events)?;
    }
}
