//! The session fuzz driver: the input is a script of peer bytes, application
//! commands and time steps; after every step the driver drains the session
//! and checks its promises (bounded buffers, exactly-once resolution, no
//! stuck input, timers that move forward, whole PDUs out).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::pdu::{
    self, Bind, Body, CommandId, CommandStatus, DecodeConfig, Decoded, Outbind, Pdu, SequenceNumber,
};
use crate::session::{BindKind, Event, InboundOverflow, Role, Session, SessionConfig, State};

const MAX_PDU: usize = 2048;
const MAX_OUT: usize = 1024;
const MAX_EVENTS: usize = 16;
const WINDOW: usize = 4;
const INBOUND: usize = 4;

/// A tiny script reader.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

pub(super) struct Driver {
    role: Role,
    session: Session,
    now: Instant,
    /// Our requests not resolved yet, by sequence number.
    outstanding: HashMap<u32, CommandId>,
    /// Peer requests the application has not answered yet.
    to_answer: VecDeque<(SequenceNumber, CommandId)>,
    closed: bool,
    /// Drain outputs after each step (off: let buffers fill).
    drain: bool,
}

impl Driver {
    pub(super) fn run(role: Role, data: &[u8]) {
        let mut script = Script(data);
        let setup = script.byte().unwrap_or(0);
        let overflow = if setup & 1 == 0 {
            InboundOverflow::Throttle
        } else {
            InboundOverflow::Backpressure
        };
        let config = SessionConfig::default()
            .with_decode(DecodeConfig::default().with_max_pdu_len(MAX_PDU))
            .with_max_in_flight(WINDOW)
            .with_max_inbound(INBOUND)
            .with_inbound_overflow(overflow)
            .with_max_buffered_output(MAX_OUT)
            .with_max_buffered_events(MAX_EVENTS)
            .with_response_timeout(Duration::from_secs(5))
            .with_enquire_link_interval(Some(Duration::from_secs(3)))
            .with_enquire_link_timeout(Duration::from_secs(2))
            .with_session_init_timeout(Some(Duration::from_secs(20)))
            .with_inactivity_timeout((setup & 2 != 0).then_some(Duration::from_secs(15)))
            .with_unbind_timeout(Duration::from_secs(2));
        #[allow(clippy::disallowed_methods)] // the virtual clock's epoch; only differences matter
        let now = Instant::now();
        let mut d = Driver {
            role,
            session: Session::new(role, Arc::new(config), now),
            now,
            outstanding: HashMap::new(),
            to_answer: VecDeque::new(),
            closed: false,
            drain: true,
        };
        let kind = BindKind::ALL[usize::from(setup >> 2) % 3];
        if setup & 0x20 == 0 {
            d.bind(kind);
        }
        while let Some(op) = script.byte() {
            d.step(op, &mut script);
            d.check();
        }
        // The end: close, and everything must have resolved.
        d.drain = true;
        let _ = d.session.close(d.now);
        d.settle();
        assert!(d.closed, "close always ends in Event::Closed");
        assert!(d.outstanding.is_empty(), "unresolved: {:?}", d.outstanding);
        assert_eq!(d.session.poll_timeout(), None);
    }

    fn bind(&mut self, kind: BindKind) {
        match self.role {
            Role::Esme => {
                if let Ok(seq) = self.session.bind(self.now, kind, Bind::default()) {
                    self.outstanding.insert(seq.get(), kind.command_id());
                    let resp = Pdu::response(
                        seq,
                        CommandStatus::OK,
                        Body::default_for(kind.command_id().response_id().expect("has one"))
                            .expect("known"),
                    );
                    self.feed_pdu(&resp);
                }
            }
            Role::Mc => {
                let req = Pdu::request(
                    SequenceNumber::new(1),
                    Body::default_for(kind.command_id()).expect("known"),
                );
                self.feed_pdu(&req);
                if let Some((seq, id)) = self.to_answer.pop_front() {
                    let body =
                        Body::default_for(id.response_id().expect("has one")).expect("known");
                    let _ = self
                        .session
                        .send_response(self.now, seq, CommandStatus::OK, body);
                    self.settle();
                }
            }
        }
    }

    fn step(&mut self, op: u8, s: &mut Script<'_>) {
        let now = self.now;
        match op % 24 {
            // Peer bytes, as given.
            0..=5 => {
                let n = usize::from(s.byte().unwrap_or(0));
                let chunk = s.bytes(n).to_vec();
                self.feed(&chunk);
            }
            6 | 7 => {
                self.now += Duration::from_millis(100 * u64::from(s.byte().unwrap_or(1)));
                self.session.handle_timeout(self.now);
                self.settle();
                self.check_timer_moved_on();
            }
            8 => {
                if let Some(t) = self.session.poll_timeout() {
                    self.now = self.now.max(t);
                    self.session.handle_timeout(self.now);
                    self.settle();
                    self.check_timer_moved_on();
                }
            }
            9 | 10 => {
                let body = match self.role {
                    Role::Esme if s.byte().unwrap_or(0) & 1 == 0 => {
                        Body::default_for(CommandId::SUBMIT_SM)
                    }
                    Role::Esme => Body::default_for(CommandId::QUERY_SM),
                    Role::Mc => Body::default_for(CommandId::DELIVER_SM),
                }
                .expect("known");
                let id = body.command_id();
                if let Ok(seq) = self.session.send_request(now, body) {
                    self.track(seq, id);
                }
                self.settle();
            }
            11 | 12 => {
                let status = CommandStatus(u32::from(s.byte().unwrap_or(0)));
                if let Some((seq, id)) = self.to_answer.pop_front() {
                    let body =
                        Body::default_for(id.response_id().expect("has one")).expect("known");
                    let r = self.session.send_response(now, seq, status, body);
                    assert!(
                        r.is_ok() || self.session.is_closed(),
                        "answer refused: {r:?}"
                    );
                    self.settle();
                }
            }
            13 => {
                if let Ok(seq) = self.session.enquire_link(now) {
                    self.track(seq, CommandId::ENQUIRE_LINK);
                }
                self.settle();
            }
            14 => {
                if let Ok(seq) = self.session.unbind(now) {
                    self.track(seq, CommandId::UNBIND);
                }
                self.settle();
            }
            15 => {
                self.session.handle_eof(now);
                self.settle();
            }
            16 => {
                self.drain = !self.drain;
                self.settle();
            }
            // Well-formed peer PDUs, so that the fuzzer reaches deep states quickly.
            17 => {
                // A response (or generic_nack) to one of our requests.
                let pick = usize::from(s.byte().unwrap_or(0));
                let status = CommandStatus(u32::from(s.byte().unwrap_or(0) & 0x0F));
                let mut seqs: Vec<_> = self.outstanding.iter().map(|(s, i)| (*s, *i)).collect();
                seqs.sort_unstable();
                if let Some(&(seq, id)) = seqs.get(pick % seqs.len().max(1)) {
                    let seq = SequenceNumber::new(seq);
                    let pdu = if pick & 0x80 != 0 {
                        Pdu::generic_nack(seq, status)
                    } else {
                        Pdu::error_response(id, seq, status)
                    };
                    self.feed_pdu(&pdu);
                }
            }
            18 => {
                let seq = SequenceNumber::new(u32::from(s.byte().unwrap_or(0)));
                let id = match self.role {
                    Role::Esme => CommandId::DELIVER_SM,
                    Role::Mc => CommandId::SUBMIT_SM,
                };
                self.feed_pdu(&Pdu::request(seq, Body::default_for(id).expect("known")));
            }
            19 => {
                let seq = SequenceNumber::new(u32::from(s.byte().unwrap_or(0)));
                let id = [
                    CommandId::UNBIND,
                    CommandId::ENQUIRE_LINK,
                    CommandId::OUTBIND,
                    CommandId::ALERT_NOTIFICATION,
                    CommandId::BIND_TRANSCEIVER,
                    CommandId::BIND_RECEIVER,
                    CommandId::DATA_SM,
                    CommandId::REPLACE_SM,
                ][usize::from(seq.get() as u8 & 7)];
                self.feed_pdu(&Pdu::request(seq, Body::default_for(id).expect("known")));
            }
            20 => {
                // A second answer, or an answer to nothing, must be refused.
                let seq = SequenceNumber::new(u32::from(s.byte().unwrap_or(0)));
                // Only when every event has been seen is "nothing pending" known.
                if self.drain && !self.to_answer.iter().any(|(s, _)| *s == seq) {
                    let r = self.session.send_response(
                        now,
                        seq,
                        CommandStatus::OK,
                        Body::default_for(CommandId::SUBMIT_SM_RESP).expect("known"),
                    );
                    assert!(r.is_err(), "an answer to nothing was accepted");
                }
            }
            21 => {
                let _ = self.session.close(now);
                self.settle();
            }
            22 => {
                if self.role == Role::Mc {
                    let _ = self.session.outbind(now, Outbind::default());
                } else if let Ok(seq) = self.session.bind(now, BindKind::Receiver, Bind::default())
                {
                    self.track(seq, CommandId::BIND_RECEIVER);
                }
                self.settle();
            }
            _ => {
                // The peer answers our requests in one burst.
                let mut seqs: Vec<_> = self.outstanding.iter().map(|(s, i)| (*s, *i)).collect();
                seqs.sort_unstable();
                let mut wire = Vec::new();
                for (seq, id) in seqs {
                    let resp =
                        Body::default_for(id.response_id().expect("has one")).expect("known");
                    let pdu = Pdu::response(SequenceNumber::new(seq), CommandStatus::OK, resp);
                    pdu.encode(&mut wire).expect("encodes");
                }
                self.feed(&wire);
            }
        }
    }

    fn track(&mut self, seq: SequenceNumber, id: CommandId) {
        assert!(seq.is_valid(), "our numbers are 1..=0x7FFFFFFF");
        let prev = self.outstanding.insert(seq.get(), id);
        assert!(
            prev.is_none(),
            "sequence number {seq} reused while in flight"
        );
    }

    fn feed_pdu(&mut self, pdu: &Pdu) {
        let wire = pdu.to_vec().expect("encodes");
        self.feed(&wire);
    }

    /// Offers bytes until all are accepted (draining in between), or the
    /// session closes, or it is legitimately blocked.
    fn feed(&mut self, mut rest: &[u8]) {
        while !rest.is_empty() && !self.closed {
            let n = self.session.handle_input(self.now, rest);
            rest = &rest[n..];
            self.settle();
            if n == 0 && !rest.is_empty() {
                if !self.drain {
                    return;
                }
                // Drained, so only the inbound window (backpressure) may block.
                let stats = self.session.stats();
                assert!(
                    self.closed || stats.pending_inbound >= stats.max_inbound,
                    "input stuck: {stats:?}"
                );
                // The application answers one request to make room.
                match self.to_answer.pop_front() {
                    Some((seq, id)) => {
                        let body =
                            Body::default_for(id.response_id().expect("has one")).expect("known");
                        let r = self
                            .session
                            .send_response(self.now, seq, CommandStatus::OK, body);
                        assert!(r.is_ok() || self.session.is_closed(), "{r:?}");
                    }
                    None => panic!("blocked with nothing to answer"),
                }
            }
        }
    }

    /// Drains outputs (when draining is on) and checks each event.
    fn settle(&mut self) {
        if !self.drain {
            return;
        }
        let mut wire = Vec::new();
        while let Some(t) = self.session.poll_transmit(self.now, &mut wire) {
            assert!(t.len > 0 && t.pdus > 0);
        }
        check_output(&wire);
        while let Some(event) = self.session.poll_event() {
            assert!(!self.closed, "an event after Closed: {event:?}");
            match event {
                Event::Response(pdu) => {
                    let id = self.outstanding.remove(&pdu.sequence_number.get());
                    assert_eq!(
                        id.and_then(CommandId::response_id),
                        Some(pdu.command_id()),
                        "a response resolves one outstanding request of its command"
                    );
                }
                Event::RequestFailed {
                    sequence_number,
                    command_id,
                    ..
                } => {
                    let id = self.outstanding.remove(&sequence_number.get());
                    assert_eq!(id, Some(command_id), "resolved twice or never sent");
                }
                Event::Request(pdu) => {
                    self.to_answer
                        .push_back((pdu.sequence_number, pdu.command_id()));
                }
                Event::BindRequest {
                    sequence_number,
                    kind,
                    ..
                } => self
                    .to_answer
                    .push_back((sequence_number, kind.command_id())),
                Event::Closed(_) => {
                    assert!(
                        self.outstanding.is_empty(),
                        "closed with requests unresolved: {:?}",
                        self.outstanding
                    );
                    self.closed = true;
                    self.to_answer.clear();
                }
                _ => {}
            }
        }
    }

    /// Bounded memory and consistent counts, after every step.
    fn check(&mut self) {
        let stats = self.session.stats();
        assert!(stats.buffered_input <= MAX_PDU, "{stats:?}");
        assert!(stats.buffered_output <= MAX_OUT + 64, "{stats:?}");
        assert!(
            stats.buffered_events <= MAX_EVENTS + WINDOW + 8,
            "{stats:?}"
        );
        assert!(stats.window_in_flight <= WINDOW, "{stats:?}");
        assert!(stats.in_flight <= WINDOW + 3, "{stats:?}");
        assert!(stats.pending_inbound <= INBOUND, "{stats:?}");
        assert_eq!(
            self.session.is_closed(),
            self.session.state() == State::Closed
        );
        if self.drain && !self.closed {
            assert_eq!(stats.pending_inbound, self.to_answer.len());
            // Internal requests (keepalive) are not ours to track.
            assert!(stats.in_flight >= self.outstanding.len());
        }
    }

    /// After `handle_timeout(now)`, nothing is due at `now` any more.
    fn check_timer_moved_on(&mut self) {
        if let Some(t) = self.session.poll_timeout() {
            assert!(t > self.now, "timer still due after handle_timeout");
        }
    }
}

/// What a session writes is whole, decodable PDUs; its requests use valid numbers.
fn check_output(wire: &[u8]) {
    let mut buf = BytesMut::from(wire);
    let config = DecodeConfig::lenient().with_max_pdu_len(1 << 20);
    while !buf.is_empty() {
        match pdu::decode(&mut buf, &config) {
            Ok(Decoded::Pdu(p)) => {
                if p.is_request() {
                    assert!(p.sequence_number.is_valid(), "{p:?}");
                }
            }
            other => panic!("session wrote a broken PDU: {other:?}"),
        }
    }
}
