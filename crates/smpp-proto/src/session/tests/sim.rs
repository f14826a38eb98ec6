//! A deterministic two-session simulator: an ESME and an MC joined by a
//! virtual wire with latency and configurable chunking, on a virtual clock.
//!
//! `Sim::run_for` advances time event by event (wire arrivals and session
//! timers), exactly as an adapter would: after every input, drain
//! `poll_transmit`, then `poll_event`, then read `poll_timeout`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::pdu::{
    Bind, BindResp, Body, CommandId, CommandStatus, Pdu, SequenceNumber, SubmitSmResp,
};
use crate::session::{BindKind, Event, Role, Session, SessionConfig};

use super::fuzz_smoke::Rng;

/// How arriving bytes are cut before `handle_input` sees them.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Chunking {
    /// Everything that arrived, in one call.
    Whole,
    /// One byte per call.
    ByteByByte,
    /// Random cuts from this seed.
    Random(u64),
}

enum Segment {
    Bytes(Vec<u8>),
    /// The sender closed the connection.
    Fin,
}

/// What the simulated application does by itself.
#[derive(Clone, Debug, Default)]
pub(crate) struct App {
    /// MC: answer bind requests with this status.
    pub(crate) answer_binds: Option<CommandStatus>,
    /// Answer every request with status 0 (message id = sequence number).
    pub(crate) answer_requests: bool,
    /// MC: answer a 3.4 or later bind with `sc_interface_version` (the
    /// lower of the bind's and 5.0), as `endpoint::bind_answer` does.
    pub(crate) announce_version: bool,
}

/// One end: a session, what it has seen, and the bytes on their way to it.
pub(crate) struct Side {
    pub(crate) s: Session,
    pub(crate) app: App,
    /// Every event, in order.
    pub(crate) events: Vec<Event>,
    /// Every byte it wrote.
    pub(crate) written: Vec<u8>,
    inbox: VecDeque<(Instant, Segment)>,
    /// Arrived, not accepted yet.
    pending: Vec<u8>,
    fin_pending: bool,
    fin_sent: bool,
}

impl Side {
    fn new(role: Role, config: Arc<SessionConfig>, now: Instant) -> Side {
        Side {
            s: Session::new(role, config, now),
            app: App::default(),
            events: Vec::new(),
            written: Vec::new(),
            inbox: VecDeque::new(),
            pending: Vec::new(),
            fin_pending: false,
            fin_sent: false,
        }
    }

    /// Takes the events seen so far.
    pub(crate) fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Drains events into the log, letting the application policy act.
    fn drain_events(&mut self, now: Instant) {
        while let Some(e) = self.s.poll_event() {
            match &e {
                Event::BindRequest {
                    sequence_number,
                    kind,
                    bind,
                } => {
                    if let Some(status) = self.app.answer_binds {
                        let mut resp = BindResp {
                            system_id: "SMSC".into(),
                            ..Default::default()
                        };
                        if self.app.announce_version && bind.interface_version >= 0x34 {
                            let v = bind
                                .interface_version
                                .min(crate::session::INTERFACE_VERSION);
                            resp.tlvs
                                .set_u8(crate::pdu::TlvTag::SC_INTERFACE_VERSION, v);
                        }
                        let body = kind.response(resp);
                        self.s
                            .send_response(now, *sequence_number, status, body)
                            .expect("bind answer");
                    }
                }
                Event::Request(pdu) if self.app.answer_requests => {
                    let body = answer_body(pdu);
                    self.s
                        .send_response(now, pdu.sequence_number, CommandStatus::OK, body)
                        .expect("answer");
                }
                _ => {}
            }
            self.events.push(e);
        }
    }
}

/// A success response body for a request (message id = its sequence number).
pub(crate) fn answer_body(pdu: &Pdu) -> Body {
    let id = pdu
        .command_id()
        .response_id()
        .expect("a request with a response");
    match id {
        CommandId::SUBMIT_SM_RESP => Body::SubmitSmResp(SubmitSmResp {
            message_id: pdu.sequence_number.get().to_string().into(),
            ..Default::default()
        }),
        _ => Body::default_for(id).expect("known"),
    }
}

/// Two sessions on a virtual wire.
pub(crate) struct Sim {
    pub(crate) esme: Side,
    pub(crate) mc: Side,
    pub(crate) now: Instant,
    /// One-way delay of the wire.
    pub(crate) latency: Duration,
    pub(crate) chunking: Chunking,
    rng: Rng,
}

/// Which end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    Esme,
    Mc,
}

impl Sim {
    pub(crate) fn new(config: SessionConfig) -> Sim {
        Self::with_configs(config.clone(), config)
    }

    pub(crate) fn with_configs(esme: SessionConfig, mc: SessionConfig) -> Sim {
        #[allow(clippy::disallowed_methods)] // the virtual clock's epoch; only differences matter
        let now = Instant::now();
        let mut sim = Sim {
            esme: Side::new(Role::Esme, Arc::new(esme), now),
            mc: Side::new(Role::Mc, Arc::new(mc), now),
            now,
            latency: Duration::from_millis(10),
            chunking: Chunking::Whole,
            rng: Rng(0x5EED),
        };
        sim.mc.app.answer_binds = Some(CommandStatus::OK);
        sim.mc.app.answer_requests = true;
        sim.esme.app.answer_requests = true;
        sim
    }

    pub(crate) fn chunking(mut self, c: Chunking) -> Sim {
        if let Chunking::Random(seed) = c {
            self.rng = Rng(seed | 1);
        }
        self.chunking = c;
        self
    }

    pub(crate) fn side(&mut self, end: End) -> &mut Side {
        match end {
            End::Esme => &mut self.esme,
            End::Mc => &mut self.mc,
        }
    }

    /// Binds the ESME (the MC's application accepts) and settles.
    pub(crate) fn bind(&mut self, kind: BindKind) -> SequenceNumber {
        self.bind_as(kind, 0x34)
    }

    /// [`Sim::bind`] offering this `interface_version` (and the MC
    /// announcing its own, as a real one does).
    pub(crate) fn bind_as(&mut self, kind: BindKind, interface_version: u8) -> SequenceNumber {
        self.mc.app.announce_version = true;
        let seq = self
            .esme
            .s
            .bind(
                self.now,
                kind,
                Bind {
                    system_id: "esme01".into(),
                    password: "secret".into(),
                    interface_version,
                    ..Default::default()
                },
            )
            .expect("bind");
        self.settle();
        seq
    }

    /// Bytes "from" one end straight onto the wire (a misbehaving peer).
    pub(crate) fn inject(&mut self, to: End, bytes: &[u8]) {
        let at = self.now + self.latency;
        self.side(to)
            .inbox
            .push_back((at, Segment::Bytes(bytes.to_vec())));
    }

    /// Runs until the wire is empty: time passes only as far as the last
    /// arrival (timers due before then fire).
    pub(crate) fn settle(&mut self) {
        loop {
            while self.step() {}
            let arrival = [self.esme.inbox.front(), self.mc.inbox.front()]
                .into_iter()
                .flatten()
                .map(|(t, _)| *t)
                .min();
            match arrival {
                Some(t) => {
                    let due = [self.esme.s.poll_timeout(), self.mc.s.poll_timeout()]
                        .into_iter()
                        .flatten()
                        .filter(|d| *d < t)
                        .min();
                    self.now = self.now.max(due.unwrap_or(t));
                }
                None => return,
            }
        }
    }

    /// Runs the world for `d` of virtual time.
    pub(crate) fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            while self.step() {}
            let next = [
                self.esme.inbox.front().map(|(t, _)| *t),
                self.mc.inbox.front().map(|(t, _)| *t),
                self.esme.s.poll_timeout(),
                self.mc.s.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= end => self.now = self.now.max(t),
                _ => {
                    self.now = end;
                    while self.step() {}
                    return;
                }
            }
        }
    }

    /// One pass over both ends; `true` if anything moved.
    fn step(&mut self) -> bool {
        let mut moved = false;
        for end in [End::Esme, End::Mc] {
            moved |= self.step_side(end);
        }
        moved
    }

    fn step_side(&mut self, end: End) -> bool {
        let now = self.now;
        let latency = self.latency;
        let chunking = self.chunking;
        let (me, other, rng) = match end {
            End::Esme => (&mut self.esme, &mut self.mc, &mut self.rng),
            End::Mc => (&mut self.mc, &mut self.esme, &mut self.rng),
        };
        let mut moved = false;
        // Timers.
        if me.s.poll_timeout().is_some_and(|t| t <= now) {
            me.s.handle_timeout(now);
            moved = true;
        }
        // Arrivals.
        while me.inbox.front().is_some_and(|(t, _)| *t <= now) {
            match me.inbox.pop_front().expect("checked").1 {
                Segment::Bytes(b) => me.pending.extend_from_slice(&b),
                Segment::Fin => me.fin_pending = true,
            }
            moved = true;
        }
        // Input, cut as configured, re-offering what was not accepted.
        while !me.pending.is_empty() && !me.s.is_closed() {
            let n = match chunking {
                Chunking::Whole => me.pending.len(),
                Chunking::ByteByByte => 1,
                Chunking::Random(_) => 1 + rng.below(me.pending.len() as u64) as usize,
            };
            let accepted = me.s.handle_input(now, &me.pending[..n]);
            me.pending.drain(..accepted);
            moved |= accepted > 0;
            Self::drain(me, other, now, latency);
            if accepted < n {
                break;
            }
        }
        if me.s.is_closed() {
            me.pending.clear();
        }
        if me.fin_pending && me.pending.is_empty() {
            me.fin_pending = false;
            me.s.handle_eof(now);
            moved = true;
        }
        moved |= Self::drain(me, other, now, latency);
        moved
    }

    /// The adapter's drain: transmit, then events; a closed session closes the wire.
    fn drain(me: &mut Side, other: &mut Side, now: Instant, latency: Duration) -> bool {
        let mut moved = false;
        loop {
            let mut wire = Vec::new();
            while me.s.poll_transmit(now, &mut wire).is_some() {}
            if !wire.is_empty() {
                me.written.extend_from_slice(&wire);
                other.inbox.push_back((now + latency, Segment::Bytes(wire)));
                moved = true;
            }
            let before = me.events.len();
            me.drain_events(now);
            moved |= me.events.len() > before;
            if me.events.len() == before {
                break;
            }
        }
        if me.s.is_closed() && !me.fin_sent {
            me.fin_sent = true;
            other.inbox.push_back((now + latency, Segment::Fin));
            moved = true;
        }
        moved
    }

    /// Both ends' resolution events for our requests: (seq, event) pairs.
    pub(crate) fn resolutions(events: &[Event]) -> Vec<u32> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Response(p) => Some(p.sequence_number.get()),
                Event::RequestFailed {
                    sequence_number, ..
                } => Some(sequence_number.get()),
                _ => None,
            })
            .collect()
    }
}
