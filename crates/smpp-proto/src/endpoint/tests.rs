//! Two endpoints wired back to back in memory (a virtual clock).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::pdu::{SubmitSm, SubmitSmResp};

struct Pair {
    now: Instant,
    esme: Endpoint<u32>,
    mc: Endpoint<u32>,
    /// Outputs seen, by side.
    esme_out: Vec<Output<u32>>,
    mc_out: Vec<Output<u32>>,
}

fn config(window: usize) -> Arc<SessionConfig> {
    Arc::new(SessionConfig::default().with_max_in_flight(window))
}

impl Pair {
    fn new(window: usize) -> Pair {
        #[allow(clippy::disallowed_methods)] // a test epoch; only differences matter
        let now = Instant::now();
        Pair {
            now,
            esme: Endpoint::new(Role::Esme, config(window), now),
            mc: Endpoint::new(Role::Mc, config(window), now),
            esme_out: Vec::new(),
            mc_out: Vec::new(),
        }
    }

    /// Moves bytes both ways and collects outputs until nothing moves; the MC
    /// answers binds (accepted) and submits (message id = sequence number).
    fn pump(&mut self) {
        for _ in 0..1000 {
            let now = self.now;
            let mut moved = self.esme.flush(now) | self.mc.flush(now);
            let mut buf = Vec::new();
            while self.esme.poll_transmit(now, &mut buf).is_some() {}
            let mut off = 0;
            while off < buf.len() {
                let n = self.mc.handle_input(now, &buf[off..]);
                off += n;
                moved |= n > 0;
                if n == 0 {
                    self.drain_mc();
                }
            }
            let mut buf = Vec::new();
            while self.mc.poll_transmit(now, &mut buf).is_some() {}
            let mut off = 0;
            while off < buf.len() {
                let n = self.esme.handle_input(now, &buf[off..]);
                off += n;
                moved |= n > 0;
                if n == 0 {
                    break;
                }
            }
            moved |= self.drain_mc();
            while let Some(out) = self.esme.poll_output() {
                moved = true;
                self.esme_out.push(out);
            }
            if !moved {
                return;
            }
        }
        panic!("no quiescence");
    }

    fn drain_mc(&mut self) -> bool {
        let mut moved = false;
        let now = self.now;
        while let Some(out) = self.mc.poll_output() {
            moved = true;
            match &out {
                Output::Incoming(Incoming::Bind { seq, kind, bind }) => {
                    let (status, body) = bind_answer(*kind, Ok(()), "SMSC", bind.interface_version);
                    self.mc.respond(now, *seq, status, body).unwrap();
                }
                Output::Incoming(Incoming::Request(pdu)) => {
                    let id = pdu.sequence_number.get().to_string();
                    let body = Body::SubmitSmResp(SubmitSmResp {
                        message_id: id.into(),
                        ..Default::default()
                    });
                    self.mc
                        .respond(now, pdu.sequence_number, CommandStatus::OK, body)
                        .unwrap();
                }
                _ => {}
            }
            self.mc_out.push(out);
        }
        moved
    }

    fn done(&self) -> Vec<(u32, bool)> {
        self.esme_out
            .iter()
            .filter_map(|o| match o {
                Output::Done(token, result) => Some((*token, result.is_ok())),
                _ => None,
            })
            .collect()
    }

    fn bind(&mut self) {
        let bind = Bind {
            system_id: "esme".into(),
            ..Default::default()
        };
        self.esme.bind(self.now, BindKind::Transceiver, bind, 0);
        self.pump();
        assert_eq!(self.done(), vec![(0, true)]);
        self.esme_out.clear();
        assert_eq!(self.esme.session().state(), State::BoundTrx);
    }
}

fn submit() -> Body {
    Body::SubmitSm(Box::new(SubmitSm {
        short_message: "hi".into(),
        ..Default::default()
    }))
}

#[test]
fn requests_beyond_the_window_wait_and_all_resolve_once_in_order() {
    let mut p = Pair::new(2);
    p.bind();
    for token in 1..=20 {
        p.esme.request(p.now, submit(), token);
    }
    assert_eq!(p.esme.waiting(), 18);
    assert!(!p.esme.wants_requests());
    p.pump();
    let done = p.done();
    assert_eq!(done.len(), 20);
    assert!(done.iter().all(|&(_, ok)| ok));
    let tokens: Vec<u32> = done.iter().map(|&(t, _)| t).collect();
    assert_eq!(tokens, (1..=20).collect::<Vec<_>>());
    assert!(p.esme.wants_requests());
}

#[test]
fn a_close_fails_every_held_token_before_closed() {
    let mut p = Pair::new(1);
    p.bind();
    for token in 1..=5 {
        p.esme.request(p.now, submit(), token);
    }
    p.esme.close(p.now);
    p.pump();
    let done = p.done();
    assert_eq!(done.len(), 5, "{done:?}");
    assert!(done.iter().all(|&(_, ok)| !ok));
    assert!(matches!(p.esme_out.last(), Some(Output::Closed(_))));
    // After the close, a request fails at once.
    p.esme.request(p.now, submit(), 99);
    assert!(matches!(
        p.esme.poll_output(),
        Some(Output::Done(99, Err(Failure::Closed)))
    ));
}

#[test]
fn a_request_without_response_is_refused_as_a_request() {
    let mut p = Pair::new(4);
    p.bind();
    let alert = Body::AlertNotification(Default::default());
    p.esme.request(p.now, alert, 7);
    assert!(matches!(
        p.esme.poll_output(),
        Some(Output::Done(
            7,
            Err(Failure::Refused(SendError::WrongCommand(())))
        ))
    ));
    assert!(p.esme.send(p.now, submit()).is_err());
}

#[test]
fn a_timeout_resolves_the_token() {
    let mut p = Pair::new(4);
    p.bind();
    p.esme.request(p.now, submit(), 3);
    // The bytes never reach the MC.
    let mut lost = Vec::new();
    while p.esme.poll_transmit(p.now, &mut lost).is_some() {}
    let at = p.esme.poll_timeout().unwrap();
    p.esme.handle_timeout(at + Duration::from_millis(1));
    let mut done = None;
    while let Some(out) = p.esme.poll_output() {
        if let Output::Done(t, r) = out {
            done = Some((t, r));
        }
    }
    assert_eq!(
        done,
        Some((3, Err(Failure::Request(RequestError::Timeout))))
    );
}

#[test]
fn an_unanswered_peer_request_gets_the_default_answer() {
    let mut p = Pair::new(4);
    p.bind();
    // The MC pushes a deliver_sm; the ESME answers it by default.
    p.mc.request(p.now, Body::DeliverSm(Default::default()), 42);
    p.pump();
    let incoming = p.esme_out.iter().find_map(|o| match o {
        Output::Incoming(i @ Incoming::Request(_)) => Some(i.clone()),
        _ => None,
    });
    p.esme.answer_default(p.now, incoming.unwrap());
    p.pump();
    let answered = p
        .mc_out
        .iter()
        .any(|o| matches!(o, Output::Done(42, Ok(pdu)) if pdu.command_status == CommandStatus::OK));
    assert!(answered, "{:?}", p.mc_out);
}

#[test]
fn outbind_then_bind_as_receiver() {
    let mut p = Pair::new(4);
    let outbind = Outbind {
        system_id: "SMSC".into(),
        password: "pw".into(),
        ..Default::default()
    };
    p.mc.outbind(p.now, outbind).unwrap();
    p.pump();
    let seen = p.esme_out.iter().find_map(|o| match o {
        Output::Incoming(Incoming::Outbind(o)) => Some(o.clone()),
        _ => None,
    });
    assert_eq!(seen.unwrap().password, "pw");
    let kind = outbind_bind_kind(BindKind::Transmitter);
    assert_eq!(kind, BindKind::Receiver);
    p.esme.bind(p.now, kind, Bind::default(), 1);
    p.pump();
    assert!(p.done().contains(&(1, true)));
    assert_eq!(p.esme.session().state(), State::BoundRx);
    assert_eq!(p.mc.session().state(), State::BoundRx);
}

#[test]
fn bind_answer_rejects_with_an_empty_body() {
    let (status, body) = bind_answer(
        BindKind::Receiver,
        Err(CommandStatus::INVALID_PASSWORD),
        "X",
        0x50,
    );
    assert_eq!(status, CommandStatus::INVALID_PASSWORD);
    assert_eq!(body, Body::BindReceiverResp(BindResp::default()));
    let (status, body) = bind_answer(BindKind::Transmitter, Ok(()), "X", 0x34);
    assert!(status.is_ok());
    match body {
        Body::BindTransmitterResp(resp) => assert_eq!(resp.system_id, "X"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bind_answer_names_the_version_the_session_will_speak() {
    let version = |peer: u8| match bind_answer(BindKind::Transceiver, Ok(()), "X", peer).1 {
        Body::BindTransceiverResp(resp) => resp.tlvs.sc_interface_version(),
        other => panic!("{other:?}"),
    };
    assert_eq!(version(0x50), Some(0x50));
    assert_eq!(version(0x34), Some(0x34));
    // 3.3 and older: no TLV may be sent to it, not even this one.
    assert_eq!(version(0x33), None);
    assert_eq!(version(0x00), None);
    // A newer peer speaks our version.
    assert_eq!(version(0x51), Some(0x50));
}

#[test]
fn both_ends_agree_on_the_version() {
    use crate::session::INTERFACE_VERSION;
    for (offered, agreed) in [(0x50, 0x50), (0x34, 0x34), (0x33, 0x33), (0x00, 0x33)] {
        let mut p = Pair::new(4);
        let bind = Bind {
            interface_version: offered,
            ..Default::default()
        };
        p.esme.bind(p.now, BindKind::Transceiver, bind, 1);
        p.pump();
        assert_eq!(p.esme.session().state(), State::BoundTrx, "{offered:#x}");
        assert_eq!(p.esme.session().interface_version(), Some(agreed));
        assert_eq!(p.mc.session().interface_version(), Some(agreed));
    }
    assert_eq!(INTERFACE_VERSION, 0x50);
    // An MC that does not say is taken as pre-3.4.
    assert_eq!(crate::session::negotiate(0x50, None), 0x33);
}

#[test]
fn an_enquire_link_command_resolves_its_token_with_the_response() {
    let mut p = Pair::new(1);
    // Legal before the bind too (OPEN), as in every connected state.
    let early = p
        .esme
        .command::<(), ()>(p.now, Command::EnquireLink { reply: 1 });
    assert!(early.is_none());
    p.pump();
    assert_eq!(p.done(), vec![(1, true)]);
    p.esme_out.clear();
    p.bind();
    let answer = p
        .esme
        .command::<(), ()>(p.now, Command::EnquireLink { reply: 2 });
    assert!(answer.is_none(), "it comes back as Done");
    p.pump();
    let resp = p.esme_out.iter().find_map(|o| match o {
        Output::Done(2, Ok(pdu)) => Some(pdu.command_id()),
        _ => None,
    });
    assert_eq!(resp, Some(CommandId::ENQUIRE_LINK_RESP));
    // It takes a place in the window like a request: with the window full,
    // it is refused at once rather than held.
    p.esme.request(p.now, submit(), 3);
    let _ = p
        .esme
        .command::<(), ()>(p.now, Command::EnquireLink { reply: 4 });
    let mut sent = Vec::new();
    while p.esme.poll_transmit(p.now, &mut sent).is_some() {}
    let refused = std::iter::from_fn(|| p.esme.poll_output()).any(|o| {
        matches!(
            o,
            Output::Done(4, Err(Failure::Refused(SendError::WindowFull(()))))
        )
    });
    assert!(refused);
}
